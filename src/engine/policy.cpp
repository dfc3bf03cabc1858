#include "portsentry/engine/policy.hpp"

#include <algorithm>

namespace portsentry::engine {

BanPolicy BanPolicy::from_settings(const Settings& s) {
    return BanPolicy{s.ban_time, s.ban_time_factor, s.ban_time_max, s.ipv6_aggregate_after};
}

std::chrono::seconds BanPolicy::duration(uint32_t nth) const noexcept {
    if (base.count() <= 0) return std::chrono::seconds{0};
    const int64_t cap = std::max(base.count(), max.count());
    int64_t d = base.count();
    // Multiply step by step and stop at the cap: factor^n overflows long
    // before a count of repeat offences does.
    for (uint32_t i = 1; i < nth && d < cap && factor > 1; ++i) {
        if (d > cap / static_cast<int64_t>(factor)) {
            d = cap;
            break;
        }
        d *= factor;
    }
    return std::chrono::seconds{std::min(d, cap)};
}

net::Cidr aggregation_prefix(const net::IpAddr& v6) {
    net::IpAddr a = v6;
    for (size_t i = 8; i < a.bytes.size(); ++i) a.bytes[i] = 0;
    return net::Cidr{a, 64};
}

bool overlaps(const net::Cidr& a, const net::Cidr& b) noexcept {
    if (a.addr.family != b.addr.family) return false;
    return a.prefix <= b.prefix ? a.contains(b.addr) : b.contains(a.addr);
}

std::vector<net::Cidr> conflicts(const net::Cidr& candidate, std::span<const net::Cidr> guarded) {
    std::vector<net::Cidr> out;
    for (const auto& g : guarded)
        if (overlaps(candidate, g)) out.push_back(g);
    return out;
}

}  // namespace portsentry::engine

namespace portsentry::engine {

std::optional<std::string> refuse_ban(const net::Cidr& c, std::span<const net::Cidr> ignore,
                                      const Protection& protection) {
    auto inside = [&](const net::Cidr& p) { return p.prefix <= c.prefix && p.contains(c.addr); };
    auto covers = [&](const net::Cidr& p) { return c.contains(p.addr) && p.prefix >= c.prefix; };
    for (const auto& p : ignore)
        if (inside(p)) return "it is protected (ignore list " + p.to_string() + ")";
    if (auto why = protection.match(c.addr))
        for (const auto& p : protection.prefixes())
            if (inside(p)) return std::string("it is protected: ") + to_string(*why);
    for (const auto& p : ignore)
        if (covers(p)) return "it covers " + p.to_string() + ", protected: ignore list";
    for (const auto& p : protection.prefixes())
        if (covers(p)) return "it covers " + p.to_string() + ", protected: " + to_string(*protection.match(p.addr));
    return std::nullopt;
}

}  // namespace portsentry::engine
