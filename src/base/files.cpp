#include "portsentry/base/files.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "portsentry/base/error.hpp"
#include "portsentry/base/unique_fd.hpp"

namespace portsentry::base {

void make_directories(const std::string& dir, mode_t mode) {
    if (dir.empty()) return;
    struct stat st{};
    if (::stat(dir.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return;
        throw std::system_error(ENOTDIR, std::generic_category(), "cannot use directory " + dir);
    }
    if (errno != ENOENT) throw sys_error("cannot use directory " + dir);
    if (const std::string parent = dir_of(dir); parent != dir && parent != ".") make_directories(parent, mode);
    // EEXIST: another process made it in between; fine if it is a directory.
    if (::mkdir(dir.c_str(), mode) != 0 && !(errno == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
        throw sys_error("cannot create directory " + dir);
}


int write_all(int fd, std::string_view data, std::chrono::milliseconds wait_writable) noexcept {
    bool socket = true;  // until send() says ENOTSOCK: then plain write()
    while (!data.empty()) {
        ssize_t n = socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                           : ::write(fd, data.data(), data.size());
        if (n < 0) {
            const int err = errno;
            if (err == ENOTSOCK && socket) {
                socket = false;
                continue;
            }
            if (err == EINTR) continue;
            if (err == EAGAIN && wait_writable.count() > 0) {
                pollfd p{fd, POLLOUT, 0};
                int r;
                do r = ::poll(&p, 1, static_cast<int>(wait_writable.count()));
                while (r < 0 && errno == EINTR);
                if (r > 0) continue;
            }
            return err;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return 0;
}

std::string dir_of(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

namespace {

// Creates the temp file (see AtomicWriteOptions::temp); returns it and its name.
UniqueFd create_temp(const std::string& path, const AtomicWriteOptions& opts, std::string& name) {
    name = opts.temp.empty() ? path + ".tmp" : opts.temp;
    if (name.ends_with("XXXXXX")) {
        UniqueFd fd(::mkostemp(name.data(), O_CLOEXEC));
        if (!fd) throw sys_error("cannot create a temp file " + name);
        return fd;
    }
    UniqueFd fd(::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, opts.mode));
    if (!fd) throw sys_error("cannot write " + name);
    return fd;
}

// Everything up to the rename: contents, permissions, fsync, close. The
// fsync comes before the rename: after a crash the file is old or new, never empty.
void fill_temp(UniqueFd fd, const std::string& tmp, std::span<const std::string> parts,
               const AtomicWriteOptions& opts) {
    for (const std::string& part : parts)
        if (int err = write_all(fd.get(), part); err != 0) throw sys_error("cannot write " + tmp, err);
    if (const struct stat* st = opts.keep_owner_of) {
        if (::fchmod(fd.get(), st->st_mode & 07777) != 0 ||
            (::fchown(fd.get(), st->st_uid, st->st_gid) != 0 && errno != EPERM))
            throw sys_error("cannot set the mode/owner of " + tmp);
    }
    if (::fsync(fd.get()) != 0) throw sys_error("cannot flush " + tmp);
    if (::close(fd.release()) != 0) throw sys_error("cannot flush " + tmp);
}

}  // namespace

void write_file_atomically(const std::string& path, std::span<const std::string> parts,
                           const AtomicWriteOptions& opts) {
    std::string tmp;
    UniqueFd fd = create_temp(path, opts, tmp);
    try {
        fill_temp(std::move(fd), tmp, parts, opts);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    const int rc = opts.rename ? opts.rename(tmp.c_str(), path.c_str()) : ::rename(tmp.c_str(), path.c_str());
    if (rc != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw RenameError(err, std::generic_category(), "cannot rename " + tmp + " to " + path);
    }
    // Makes the rename itself durable; best effort: the new contents are in
    // place either way, and a failure here has nothing left to undo.
    UniqueFd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) (void)::fsync(dir.get());
}

}  // namespace portsentry::base
