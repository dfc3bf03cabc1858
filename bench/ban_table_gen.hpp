// The ban table bench_restore.sh and bench_views measure: N distinct
// pseudo-random IPv4 hosts (fixed seed) in 11.0.0.0 - 126.255.255.255, so it
// holds scattered hosts as a scanned host's table does, not one dense range;
// each an active detector ban with 1 to 2 hours left at `now`.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <unordered_set>

#include "portsentry/daemon/state.hpp"

namespace bench {

// Fills `store`; `each(host, ttl)` is told every ban (the nft file's elements).
inline void generate_bans(portsentry::daemon::BanStore& store, uint32_t n, int64_t now,
                          const std::function<void(const portsentry::net::Cidr&, int64_t)>& each = {}) {
    using portsentry::net::Cidr;
    using portsentry::net::IpAddr;
    std::mt19937 rng(12);
    std::uniform_int_distribution<uint32_t> addr(0x0B000000u, 0x7EFFFFFFu);
    std::unordered_set<uint32_t> seen;
    seen.reserve(size_t{n} * 2);
    for (uint32_t i = 0; i < n;) {
        const uint32_t a = addr(rng);
        if (!seen.insert(a).second) continue;
        const int64_t ttl = 3600 + (a % 3600);
        portsentry::daemon::BanRecord r;
        r.prefix = Cidr::host(IpAddr::v4(a));
        r.origin = "detector";
        r.count = 1;
        r.first_seen = now - 120;
        r.last_seen = now - 60;
        r.expires = now + ttl;
        r.last_port = static_cast<uint16_t>(1 + i % 1024);
        r.last_proto = "TCP";
        r.last_type = "SYN";
        if (each) each(r.prefix, ttl);
        store.put(std::move(r));
        ++i;
    }
}

}  // namespace bench
