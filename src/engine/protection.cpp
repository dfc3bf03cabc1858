#include "portsentry/engine/protection.hpp"

#include <algorithm>

namespace portsentry::engine {

const char* to_string(ProtectReason r) {
    switch (r) {
        case ProtectReason::ignore: return "ignore list";
        case ProtectReason::local: return "local address";
        case ProtectReason::gateway: return "gateway";
        case ProtectReason::resolver: return "resolver";
        case ProtectReason::special: return "special address";
        case ProtectReason::session: return "logged-in session";
    }
    return "?";
}

std::vector<net::Cidr> special_prefixes() {
    std::vector<net::Cidr> out;
    for (const char* t : {
             "0.0.0.0/8",           // "this network" (RFC 1122 3.2.1.3): never a real source
             "127.0.0.0/8",         // loopback
             "169.254.0.0/16",      // IPv4 link-local (RFC 3927)
             "224.0.0.0/4",         // multicast
             "255.255.255.255/32",  // limited broadcast
             "::/128",              // unspecified (DAD probes use it as source)
             "::1/128",             // loopback
             "fe80::/10",           // IPv6 link-local: routers and neighbours speak from here
             "ff00::/8",            // IPv6 multicast
         })
        out.push_back(*net::Cidr::parse(t));
    return out;
}

void Protection::add(const net::Cidr& c, ProtectReason r) { sets_[static_cast<size_t>(r)].insert(c); }

std::optional<ProtectReason> Protection::match(const net::IpAddr& raw) const {
    const net::IpAddr a = raw.unmapped();
    std::optional<ProtectReason> best;
    int best_len = -1;
    for (size_t i = 0; i < kProtectReasons; ++i) {
        if (sets_[i].empty()) continue;
        auto m = sets_[i].match(a);
        if (m && static_cast<int>(m->prefix) > best_len) {  // strict: ties keep the earlier reason
            best_len = m->prefix;
            best = static_cast<ProtectReason>(i);
        }
    }
    return best;
}

std::vector<net::Cidr> Protection::prefixes() const {
    std::vector<net::Cidr> out;
    for (const auto& s : sets_)
        for (const auto& c : s.entries())
            if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    return out;
}

size_t Protection::size() const {
    size_t n = 0;
    for (const auto& s : sets_) n += s.size();
    return n;
}

bool operator==(const Protection& a, const Protection& b) {
    for (size_t i = 0; i < kProtectReasons; ++i) {
        const auto& x = a.sets_[i].entries();
        const auto& y = b.sets_[i].entries();
        if (x.size() != y.size()) return false;
        for (const auto& c : x)
            if (std::find(y.begin(), y.end(), c) == y.end()) return false;
    }
    return true;
}

}  // namespace portsentry::engine
