#include "portsentry/daemon/protect.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/route.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "portsentry/daemon/daemon.hpp"

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
        const bool v4 = w[1] == 0 && w[2] == 0 && w[3] == 0;
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
