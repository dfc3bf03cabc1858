// Ban policy rules that need no state of their own: how long the nth ban of
// one prefix lasts, and when banned IPv6 hosts are folded into their /64.
// Pure (no clock, no syscalls): the daemon feeds in what its ban table knows.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "portsentry/engine/settings.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::engine {

struct BanPolicy {
    std::chrono::seconds base{3600};    // ban_time; 0 = permanent
    unsigned factor = 4;                // ban_time_factor; 1 = no escalation
    std::chrono::seconds max{30 * 86400};  // ban_time_max
    unsigned aggregate_after = 3;       // ipv6_aggregate_after; 0 = never

    static BanPolicy from_settings(const Settings& s);

    // Length of the `nth` ban (1 = first) of one prefix: base × factor^(nth−1),
    // never beyond max(base, max) — so a ban_time above ban_time_max is kept,
    // not shortened. 0 (permanent) stays permanent.
    std::chrono::seconds duration(uint32_t nth) const noexcept;

    // `offenders` distinct banned hosts inside one /64: ban the /64 instead?
    bool aggregate(size_t offenders) const noexcept { return aggregate_after > 0 && offenders >= aggregate_after; }
};

// The /64 an IPv6 address belongs to (the unit a SLAAC host can hop within).
net::Cidr aggregation_prefix(const net::IpAddr& v6);

// True when the two prefixes share any address (one contains the other).
bool overlaps(const net::Cidr& a, const net::Cidr& b) noexcept;

// The prefixes of `guarded` that a ban of `candidate` would cover or sit
// inside: a /64 is never banned over a protected address.
std::vector<net::Cidr> conflicts(const net::Cidr& candidate, std::span<const net::Cidr> guarded);

}  // namespace portsentry::engine

#include <optional>
#include <string>

#include "portsentry/engine/protection.hpp"

namespace portsentry::engine {

// Why a ban of `c` (admin, fail2ban, fleet) must be refused, or nullopt: `c`
// lies inside a protected or ignored prefix (the whole ban would be exempt),
// or covers one (@never would punch a hole in it, and the admin should know).
std::optional<std::string> refuse_ban(const net::Cidr& c, std::span<const net::Cidr> ignore,
                                      const Protection& protection);

}  // namespace portsentry::engine
