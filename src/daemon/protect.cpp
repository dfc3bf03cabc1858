#include "portsentry/daemon/protect.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/inotify.h>
#include <fcntl.h>
#include <net/route.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <sstream>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"
#include "portsentry/daemon/daemon.hpp"
#include "portsentry/kernel/mnl_socket.hpp"

namespace portsentry::daemon {

namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

template <typename F>
void for_each_line(std::string_view text, F f) {
    while (!text.empty()) {
        size_t nl = text.find('\n');
        f(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

bool parse_hex32(std::string_view s, uint32_t& out) {
    if (s.empty() || s.size() > 8) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// 32 hex digits -> 16 bytes in the order written.
bool parse_hex128(std::string_view s, std::array<uint8_t, 16>& out) {
    if (s.size() != 32) return false;
    for (size_t i = 0; i < 16; ++i) {
        unsigned v = 0;
        auto r = std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, v, 16);
        if (r.ec != std::errc{} || r.ptr != s.data() + 2 * i + 2) return false;
        out[i] = static_cast<uint8_t>(v);
    }
    return true;
}

void push_unique(std::vector<net::IpAddr>& v, const net::IpAddr& a) {
    if (std::find(v.begin(), v.end(), a) == v.end()) v.push_back(a);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

constexpr unsigned kDefaultRouteFlags = RTF_UP | RTF_GATEWAY;

}  // namespace

std::vector<net::IpAddr> parse_resolv_conf(std::string_view text) {
    std::vector<net::IpAddr> out;
    for_each_line(text, [&](std::string_view line) {
        auto w = split_ws(line);
        if (w.size() < 2 || w[0] != "nameserver") return;
        std::string_view addr = w[1];
        if (auto pct = addr.find('%'); pct != std::string_view::npos) addr = addr.substr(0, pct);
        if (auto a = net::IpAddr::parse(addr)) push_unique(out, a->unmapped());
    });
    return out;
}

std::vector<net::IpAddr> parse_proc_route(std::string_view text) {
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    std::vector<net::IpAddr> out;
    for_each_line(text, [&](std::string_view line) {
        auto w = split_ws(line);
        uint32_t dst = 0, gw = 0, flags = 0, mask = 0;
        if (w.size() < 8 || !parse_hex32(w[1], dst) || !parse_hex32(w[2], gw) || !parse_hex32(w[3], flags) ||
            !parse_hex32(w[7], mask))
            return;  // the header line, or something we do not understand
        if (dst != 0 || mask != 0 || gw == 0 || (flags & kDefaultRouteFlags) != kDefaultRouteFlags) return;
        // The value printed is the __be32 as this host reads it: its memory
        // bytes are the address in network order.
        uint8_t b[4];
        std::memcpy(b, &gw, 4);
        push_unique(out, net::IpAddr::from_bytes(AF_INET, b));
    });
    return out;
}

std::vector<net::IpAddr> parse_proc_ipv6_route(std::string_view text) {
    // dest dest_plen src src_plen next_hop metric refcnt use flags iface
    std::vector<net::IpAddr> out;
    for_each_line(text, [&](std::string_view line) {
        auto w = split_ws(line);
        std::array<uint8_t, 16> dst{}, hop{};
        uint32_t plen = 0, flags = 0;
        if (w.size() < 10 || !parse_hex128(w[0], dst) || !parse_hex32(w[1], plen) || !parse_hex128(w[4], hop) ||
            !parse_hex32(w[8], flags))
            return;
        if (plen != 0 || (flags & kDefaultRouteFlags) != kDefaultRouteFlags) return;
        if (std::all_of(hop.begin(), hop.end(), [](uint8_t x) { return x == 0; })) return;
        push_unique(out, net::IpAddr::from_bytes(AF_INET6, hop.data()));
    });
    return out;
}

std::vector<net::IpAddr> session_addresses(std::span<const struct utmpx> records) {
    std::vector<net::IpAddr> out;
    for (const auto& r : records) {
        if (r.ut_type != USER_PROCESS) continue;
        const auto* w = r.ut_addr_v6;
        if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0) continue;  // local login: no address
        uint8_t b[16];
        std::memcpy(b, w, 16);
        bool v4 = w[1] == 0 && w[2] == 0 && w[3] == 0;
        // The binary field cannot tell 192.0.2.1 from an IPv6 address whose
        // last 96 bits are zero; ut_host (sshd writes the address there
        // unless UseDNS resolves it) settles it when it holds one.
        const std::string host(r.ut_host, strnlen(r.ut_host, sizeof r.ut_host));
        if (auto h = net::IpAddr::parse(host); h && h->is_v6() && !h->unmapped().is_v4()) v4 = false;
        push_unique(out, net::IpAddr::from_bytes(v4 ? AF_INET : AF_INET6, b).unmapped());
    }
    return out;
}

std::vector<struct utmpx> read_utmp(const std::string& path) {
    std::vector<struct utmpx> out;
    const std::string bytes = read_file(path);
    const size_t n = bytes.size() / sizeof(struct utmpx);
    out.resize(n);
    if (n) std::memcpy(out.data(), bytes.data(), n * sizeof(struct utmpx));
    return out;
}

engine::Protection gather(const config::Config& cfg, const ProtectSources& src) {
    using engine::ProtectReason;
    engine::Protection p;
    const auto& on = cfg.protect;
    if (on.ignore_list)
        for (const auto& c : cfg.ignore.entries()) p.add(c, ProtectReason::ignore);
    if (on.local_addresses)
        for (const auto& c : local_addresses()) p.add(c, ProtectReason::local);
    if (on.gateways) {
        for (const auto& a : parse_proc_route(read_file(src.route))) p.add(a, ProtectReason::gateway);
        for (const auto& a : parse_proc_ipv6_route(read_file(src.ipv6_route))) p.add(a, ProtectReason::gateway);
    }
    if (on.resolvers)
        for (const auto& a : parse_resolv_conf(read_file(src.resolv_conf))) p.add(a, ProtectReason::resolver);
    if (on.special)
        for (const auto& c : engine::special_prefixes()) p.add(c, ProtectReason::special);
    if (on.sessions) {
        auto recs = read_utmp(src.utmp);
        for (const auto& a : session_addresses(recs)) p.add(a, ProtectReason::session);
    }
    return p;
}

}  // namespace portsentry::daemon

// ---- ProtectWatch ---------------------------------------------------------------

namespace portsentry::daemon {

namespace {

std::string base_of(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace

struct ProtectWatch::Impl {
    kernel::MnlSocket nl;
    int ino = -1;
    // Watch descriptor -> file names in that directory we care about.
    std::vector<std::pair<int, std::vector<std::string>>> dirs;

    ~Impl() {
        if (ino >= 0) ::close(ino);
    }

    void watch_dir(const std::string& dir, const std::string& name) {
        // Whole-directory watch: the files are replaced by rename (resolvconf,
        // NetworkManager) or created late (utmp after boot), which a watch on
        // the file itself would miss.
        int wd = ::inotify_add_watch(ino, dir.c_str(),
                                     IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE);
        if (wd < 0) return;  // no such directory: that source simply never changes
        for (auto& [w, names] : dirs)
            if (w == wd) {
                names.push_back(name);
                return;
            }
        dirs.push_back({wd, {name}});
    }
};

ProtectWatch::ProtectWatch(const ProtectSources& src) : impl_(std::make_unique<Impl>()) {
    auto& m = *impl_;
    m.nl.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!m.nl) throw base::sys_error("rtnetlink socket");
    const unsigned groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (mnl_socket_bind(m.nl.get(), groups, MNL_SOCKET_AUTOPID) < 0) throw base::sys_error("rtnetlink bind (address/route events)");
    m.ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (m.ino < 0) throw base::sys_error("inotify_init1");
    m.watch_dir(base::dir_of(src.resolv_conf), base_of(src.resolv_conf));
    // A symlinked resolv.conf (systemd-resolved, resolvconf) changes in its
    // target's directory, not in /etc.
    std::error_code ec;
    auto target = std::filesystem::canonical(src.resolv_conf, ec);
    if (!ec && target.string() != src.resolv_conf) m.watch_dir(target.parent_path().string(), target.filename().string());
    m.watch_dir(base::dir_of(src.utmp), base_of(src.utmp));
}

ProtectWatch::~ProtectWatch() = default;

std::vector<int> ProtectWatch::fds() const { return {mnl_socket_get_fd(impl_->nl.get()), impl_->ino}; }

bool ProtectWatch::drain(int fd) {
    auto& m = *impl_;
    bool changed = false;
    // Sized for a burst of events per read; more simply takes another read.
    alignas(inotify_event) char buf[8192];
    if (fd == m.ino) {
        for (;;) {
            ssize_t n = ::read(m.ino, buf, sizeof buf);
            if (n <= 0) break;  // EAGAIN: drained
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<inotify_event*>(p);
                if (ev->mask & IN_Q_OVERFLOW) changed = true;
                for (const auto& [wd, names] : m.dirs)
                    if (wd == ev->wd && ev->len > 0)
                        for (const auto& name : names)
                            if (name == ev->name) changed = true;
                p += sizeof(inotify_event) + ev->len;
            }
        }
        return changed;
    }
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(m.nl.get(), buf, sizeof buf);
        if (n < 0) {
            // ENOBUFS: events were lost, so look again; EAGAIN: drained.
            if (errno == ENOBUFS) {
                changed = true;
                continue;
            }
            break;
        }
        // Any address or route message may change the snapshot: gather()
        // re-reads everything, which costs less than classifying events.
        if (n > 0) changed = true;
    }
    return changed;
}

}  // namespace portsentry::daemon
