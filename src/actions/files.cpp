#include "portsentry/actions/files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <utility>

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

// ---------------------------------------------------------------- hosts.deny

namespace {

HostsDenyResult fail(std::string why) {
    HostsDenyResult r;
    r.status = HostsDenyResult::Status::failed;
    r.error = std::move(why);
    return r;
}

// Non-blocking attempts for up to ~200 ms: another writer (an admin's editor,
// fail2ban's hostsdeny action) holds it briefly, and we are on the packet path.
bool lock_briefly(int fd) {
    for (int i = 0; i < 100; ++i) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
        if (errno != EWOULDBLOCK && errno != EINTR) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
}

bool has_line(std::string_view content, std::string_view line) {
    size_t pos = 0;
    while (pos <= content.size()) {
        size_t nl = content.find('\n', pos);
        std::string_view l = content.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (l == line) return true;
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return false;
}

}  // namespace

HostsDenyResult hosts_deny_add(const std::string& path, std::string_view line,
                               const RenameFn& rename_fn) {
    if (line.find('\n') != std::string_view::npos || line.find('\0') != std::string_view::npos)
        return fail("line contains a newline or NUL");

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) return fail(path + " is a symlink, refusing to replace it");
        if (!S_ISREG(st.st_mode)) return fail(path + " is not a regular file");
    } else if (errno != ENOENT) {
        return fail(sys_error("lstat " + path, errno));
    }

    // One descriptor for lock, read and (fallback) append: flock() locks held
    // through different descriptors of one file conflict even within a process.
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644));
    if (!fd.valid()) {
        int err = errno;
        if (err == ELOOP) return fail(path + " is a symlink, refusing to replace it");
        return fail(sys_error("open " + path, err));
    }
    if (::fstat(fd.get(), &st) != 0) return fail(sys_error("fstat " + path, errno));
    if (!S_ISREG(st.st_mode)) return fail(path + " is not a regular file");
    if (!lock_briefly(fd.get())) return fail("flock " + path + ": held by another process");

    std::string content;
    {
        char buf[8192];
        off_t off = 0;
        for (;;) {
            ssize_t n = ::pread(fd.get(), buf, sizeof buf, off);
            if (n < 0) {
                if (errno == EINTR) continue;
                return fail(sys_error("read " + path, errno));
            }
            if (n == 0) break;
            content.append(buf, static_cast<size_t>(n));
            off += n;
        }
    }
    HostsDenyResult res;
    if (has_line(content, line)) {
        res.status = HostsDenyResult::Status::already_present;
        return res;
    }
    std::string addition;
    if (!content.empty() && content.back() != '\n') addition.push_back('\n');
    addition.append(line);
    addition.push_back('\n');

    // In place under the lock we hold: never lose the line.
    auto append_in_place = [&](const char* why) {
        int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_APPEND) != 0)
            return fail(sys_error("fcntl O_APPEND " + path, errno));
        if (int werr = base::write_all(fd.get(), addition); werr != 0)
            return fail(sys_error(std::string("append ") + path + " (" + why + ")", werr));
        (void)::fsync(fd.get());
        HostsDenyResult r;
        r.status = HostsDenyResult::Status::added;
        r.appended_in_place = true;
        return r;
    };

    // Temp file in the same directory, so rename() stays within one filesystem.
    base::AtomicWriteOptions w;
    w.temp = base::dir_of(path) + "/.hosts.deny.portsentry.XXXXXX";
    w.keep_owner_of = &st;
    w.rename = rename_fn;
    try {
        base::write_file_atomically(path, content + addition, w);
        res.status = HostsDenyResult::Status::added;
        return res;
    } catch (const base::RenameError& e) {
        // EBUSY: `path` is a mount point (a file bind-mounted into a container or a
        // test namespace) and cannot be replaced. EXDEV likewise for odd mounts.
        if (e.code().value() != EBUSY && e.code().value() != EXDEV) return fail(e.what());
        return append_in_place("rename gave EBUSY");
    } catch (const std::system_error& e) {
        // EROFS: the systemd unit's ProtectSystem=strict leaves /etc read-only
        // and only the file itself writable (ReadWritePaths=-/etc/hosts.deny).
        if (e.code().value() == EROFS) return append_in_place("its directory is read-only");
        return fail(e.what());
    }
}

}  // namespace portsentry::actions
