#include "portsentry/daemon/control.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"

namespace portsentry::daemon {

namespace {

constexpr size_t kMaxRequest = 4096;
// A client that connects and says nothing must not stall the packet loop.
constexpr int kIoTimeoutMs = 500;

sockaddr_un make_addr(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
        throw base::sys_error("control socket path " + path, ENAMETOOLONG);
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    return sa;
}

bool wait_fd(int fd, short events) {
    pollfd p{fd, events, 0};
    int r;
    do r = ::poll(&p, 1, kIoTimeoutMs);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

std::string read_until_eof(int fd, size_t limit, bool stop_at_newline) {
    std::string buf;
    char chunk[1024];
    while (buf.size() < limit) {
        if (!wait_fd(fd, POLLIN)) break;
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
        if (stop_at_newline && buf.find('\n') != std::string::npos) break;
    }
    return buf;
}

}  // namespace

ControlServer::ControlServer(std::string path) : path_(std::move(path)) {
    auto sa = make_addr(path_);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_) throw base::sys_error("socket(AF_UNIX)");
    ::unlink(path_.c_str());  // stale socket of a killed daemon; the instance lock guards a live one
    // umask during bind so the socket never exists with wider permissions.
    mode_t old = ::umask(0077);
    int r = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    int e = errno;
    ::umask(old);
    if (r == 0) ::chmod(path_.c_str(), 0600);  // docs/ARCHITECTURE.md, "Files": mode 0600 exactly
    if (r < 0 || ::listen(fd_.get(), 16) < 0) {
        if (r >= 0) e = errno;
        fd_.reset();
        throw base::sys_error("cannot listen on control socket " + path_, e);
    }
}

ControlServer::~ControlServer() {
    if (fd_) {
        fd_.reset();
        ::unlink(path_.c_str());
    }
}

void ControlServer::serve_one(const std::function<ControlReply(const std::string&)>& handler) {
    base::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!c) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    ControlReply reply;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
        reply = {1, "error: permission denied: the control socket is root-only\n"};
    } else {
        std::string req = read_until_eof(c.get(), kMaxRequest, true);
        if (auto nl = req.find('\n'); nl != std::string::npos) req.resize(nl);
        try {
            reply = handler(req);
        } catch (const std::exception& e) {
            reply = {1, std::string("error: ") + e.what() + "\n"};
        }
    }
    // A client that left gets nothing; the reply is best effort.
    (void)base::write_all(c.get(), std::to_string(reply.status) + "\n" + reply.text,
                          std::chrono::milliseconds{kIoTimeoutMs});
}

std::optional<ControlReply> control_request(const std::string& path, const std::string& request) {
    auto sa = make_addr(path);
    base::UniqueFd owner(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int fd = owner.get();
    if (!owner) throw base::sys_error("socket(AF_UNIX)");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED) return std::nullopt;
        throw base::sys_error("cannot connect to " + path, e);
    }
    std::string req = request + "\n";
    if (int e = base::write_all(fd, req); e != 0) {
        throw base::sys_error("cannot send to " + path, e);
    }
    ::shutdown(fd, SHUT_WR);
    // Replies can be long (`list`), and the daemon may be busy for a moment.
    std::string buf;
    char chunk[4096];
    for (;;) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
    }
    owner.reset();
    ControlReply r;
    auto nl = buf.find('\n');
    if (nl == std::string::npos) return ControlReply{1, "error: empty reply from daemon\n"};
    r.status = std::atoi(buf.substr(0, nl).c_str());
    r.text = buf.substr(nl + 1);
    return r;
}

}  // namespace portsentry::daemon
