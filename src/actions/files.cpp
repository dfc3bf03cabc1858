#include "portsentry/actions/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"
#include "portsentry/base/unique_fd.hpp"

namespace portsentry::actions {

using base::UniqueFd;

namespace {
// "what: strerror(err)", the text a failed file action is logged with.
std::string sys_error(const std::string& what, int err) { return base::sys_error(what, err).what(); }
}  // namespace

// ---------------------------------------------------------------- AppendFile

AppendFile::AppendFile(std::string path) : path_(std::move(path)) {}

void AppendFile::close() { fd_.reset(); }

std::string AppendFile::open() {
    // O_NOFOLLOW: these files live in directories an admin may have made
    // group-writable; a planted symlink must not make us append to /etc/shadow.
    // O_NONBLOCK: a FIFO planted at the path must not hang the daemon in open();
    // it is then refused by the S_ISREG check below (no effect on regular files).
    UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                       0600));
    if (!fd) {
        int err = errno;
        if (err == ELOOP) return "is a symlink, refusing to follow it";
        return sys_error("open", err);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error("fstat", errno);
    if (!S_ISREG(st.st_mode)) return "not a regular file, refusing to write to it";
    fd_ = std::move(fd);
    return {};
}

std::string AppendFile::reopen() {
    close();
    return open();
}

std::string AppendFile::append(std::string_view data) {
    if (!fd_) {
        if (auto err = open(); !err.empty()) return err;
    }
    if (int err = base::write_all(fd_.get(), data); err != 0) {
        close();  // the next append opens again (a full disk may have been fixed)
        return sys_error("write", err);
    }
    return {};
}

std::string blocked_file_path(const std::string& blocked_file, std::string_view mode) {
    return blocked_file + "." + std::string(mode);
}

bool blocked_file_contains(const std::string& path, const net::IpAddr& ip) {
    std::ifstream in(path);
    if (!in) return false;
    const net::IpAddr want = ip.unmapped();
    std::string line;
    while (std::getline(in, line)) {
        // "... Host: H/IP Port: N TCP Blocked": the address sits between the last
        // '/' before " Port: " and " Port: " (a hostname never contains '/').
        size_t port_pos = line.rfind(" Port: ");
        if (port_pos == std::string::npos) continue;
        size_t host_pos = line.rfind("Host: ", port_pos);
        if (host_pos == std::string::npos) continue;
        size_t slash = line.rfind('/', port_pos);
        if (slash == std::string::npos || slash < host_pos) continue;
        auto a = net::IpAddr::parse(std::string_view(line).substr(slash + 1, port_pos - slash - 1));
        if (a && a->unmapped() == want) return true;
    }
    return false;
}

}  // namespace portsentry::actions
