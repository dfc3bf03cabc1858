// What the engine reads from the configuration, as its own snapshot: the
// engine links no YAML library and knows nothing of config files (STYLE §1,
// §2). The daemon builds one from config::Config (daemon::engine_settings);
// tests and benches fill one in directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "portsentry/net/address.hpp"

namespace portsentry::engine {

// KILL_ROUTE as the engine needs it: whether a ban is asked for, and whether
// it is one of the stock firewall/route commands (honoured by the nft-set ban
// instead of being run).
enum class KillRoute : uint8_t { unset, builtin, custom };

struct Settings {
    struct Proto {
        // BLOCK_TCP / BLOCK_UDP: 0 log, 1 block, 2 command only. The engine
        // treats anything else as 1 (errs on the protective side).
        int block = 1;
    };
    Proto tcp;
    Proto udp;
    bool dry_run = false;  // --dry-run: every protocol acts as block 0

    unsigned scan_trigger = 0;                // SCAN_TRIGGER: 0 and 1 = first probe fires
    std::chrono::seconds scan_window{3600};   // per-source probe counting window; 0 = never closes

    // Responses a report under block 1 (or 2: run_cmd only) asks for.
    KillRoute kill_route = KillRoute::unset;  // KILL_ROUTE
    bool kill_hosts_deny = false;             // KILL_HOSTS_DENY set
    bool kill_run_cmd = false;                // KILL_RUN_CMD set

    // Ban policy (BanPolicy::from_settings).
    std::chrono::seconds ban_time{3600};            // 0 = permanent
    unsigned ban_time_factor = 4;                   // repeat offenders: × per ban ...
    std::chrono::seconds ban_time_max{30 * 86400};  // ... up to this
    unsigned ipv6_aggregate_after = 3;              // banned hosts in one /64 → ban the /64; 0 = never

    // Caps on new bans (spoofed probes must not fill the ban set); 0 = no cap.
    unsigned ban_rate_per_second = 20;
    unsigned ban_rate_per_prefix_per_minute = 16;  // per IPv4 /24 or IPv6 /48
    size_t max_tracked_sources = 100000;           // per-source state cap (LRU)

    // Sources never counted or reported, silently (the ignore files).
    net::CidrSet ignore;
};

}  // namespace portsentry::engine
