// Move-only owner of a file descriptor (STYLE §8: every fd lives in an owner,
// so an early return or an exception on reload cannot leak it).
#pragma once

#include <unistd.h>

#include <utility>

namespace portsentry::base {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    // Hands the fd to the caller, who now closes it.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the owned fd (close errors are not reportable here: callers that
    // must know, e.g. after writing a file, release() and close() themselves).
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace portsentry::base
