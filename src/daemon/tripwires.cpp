#include "portsentry/daemon/tripwires.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <set>

namespace portsentry::daemon {

Tripwires::Tripwires(Loop& loop, HitFn hit, LogFn log) : loop_(loop), hit_(std::move(hit)), log_(std::move(log)) {}

Tripwires::~Tripwires() {
    for (auto& [key, fd] : socks_) {
        loop_.remove(fd);
        ::close(fd);
    }
}

void Tripwires::reconcile(const config::Config& cfg) {
    banner_ = cfg.port_banner;
    std::set<Key> want;
    for (auto proto : {net::L4::tcp, net::L4::udp}) {
        const auto& pc = proto == net::L4::tcp ? cfg.tcp : cfg.udp;
        if (pc.mode != config::Mode::classic) continue;
        for (const auto& r : pc.ports)
            for (unsigned port = r.lo; port <= r.hi; ++port) want.insert({proto, static_cast<uint16_t>(port)});
    }
    for (auto it = socks_.begin(); it != socks_.end();) {
        if (want.count(it->first)) {
            ++it;
            continue;
        }
        loop_.remove(it->second);
        ::close(it->second);
        log_(fmt::format("portsentry-nfq: {} port {} is no longer a tripwire", net::to_string(it->first.first),
                         it->first.second));
        it = socks_.erase(it);
    }
    for (const auto& k : want)
        if (!socks_.count(k)) bind_one(k.first, k.second);
}

void Tripwires::bind_one(net::L4 proto, uint16_t port) {
    const int type = proto == net::L4::tcp ? SOCK_STREAM : SOCK_DGRAM;
    const int fd = ::socket(AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_(fmt::format("portsentry-nfq: {} port {}: socket: {}", net::to_string(proto), port, std::strerror(errno)));
        return;
    }
    int off = 0;  // dual-stack: one socket sees IPv4 (mapped) and IPv6
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    // A restart right after scans: the tripwire's closed connections sit in
    // TIME_WAIT. SO_REUSEADDR lets the listener come back; a port a live
    // service listens on still refuses the bind (and is skipped, as 1.2 did).
    int on = 1;
    if (proto == net::L4::tcp) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
        (proto == net::L4::tcp && ::listen(fd, 16) < 0)) {
        // 1.2 behaviour: a port in use by a real service is skipped, and said so.
        log_(fmt::format("portsentry-nfq: {} port {} is in use, not a tripwire: {}", net::to_string(proto), port,
                         std::strerror(errno)));
        ::close(fd);
        return;
    }
    try {
        loop_.add(fd, "tripwire", [this, fd, proto, port](const Now& now) { on_readable(fd, proto, port, now); });
    } catch (...) {
        ::close(fd);
        throw;
    }
    socks_[{proto, port}] = fd;
}

void Tripwires::on_readable(int fd, net::L4 proto, uint16_t port, const Now& now) {
    sockaddr_in6 peer{};
    socklen_t len = sizeof peer;
    int c = -1;
    if (proto == net::L4::tcp) {
        c = ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) return;
    } else {
        char buf[512];
        if (::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) < 0) return;
    }
    const auto src = net::IpAddr::from_bytes(AF_INET6, reinterpret_cast<const uint8_t*>(&peer.sin6_addr)).unmapped();
    if (!banner_.empty()) {
        const std::string banner = banner_ + "\n";
        if (c >= 0)
            (void)::send(c, banner.data(), banner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        else if (udp_banner_bucket_.take(now.steady))  // never a reflector (docs/ARCHITECTURE.md, "Under attack")
            (void)::sendto(fd, banner.data(), banner.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), len);
    }
    if (c >= 0) ::close(c);
    hit_(src, proto, port, now);
}

}  // namespace portsentry::daemon
