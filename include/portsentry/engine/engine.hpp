// The pure verdict engine: parsed packets and a clock in, decisions out.
// No syscalls, no globals: every rule (trigger window, ban expiry, LRU cap)
// is testable exactly at its boundary without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::engine {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class ScanType : uint8_t {
    tcp_syn,     // "TCP SYN/Normal scan"
    tcp_fin,     // "TCP FIN scan"
    tcp_null,    // "TCP NULL scan"
    tcp_xmas,    // "TCP XMAS scan"   (FIN|PSH|URG)
    tcp_ack,     // "TCP ACK/Window scan" (nmap -sA and -sW send the same probe)
    tcp_maimon,  // "TCP Maimon scan" (FIN|ACK)
    tcp_other,   // 1.2's "Unknown Type: TCP Packet Flags: ..." line
    udp,         // "UDP scan"
    tcp_connect, // classic-mode tripwire: a completed handshake ("Connect from host")
    udp_tripwire,
};
ScanType classify(const net::Packet& p) noexcept;
// The 1.2 wording used in "attackalert: <name> from host: ..." lines.
std::string scan_name(ScanType t, uint8_t tcp_flags);

enum class Verdict : uint8_t { accept, drop };

// What the daemon must do for one probe. Actions are derived from config; the
// engine only says whether the trigger fired and which response applies.
struct Decision {
    Verdict verdict = Verdict::accept;
    ScanType type = ScanType::tcp_syn;
    enum class Outcome : uint8_t {
        not_watched,      // port not watched / bound: accept, nothing to do
        ignored,          // source in the ignore list: accept, no log
        counting,         // below SCAN_TRIGGER: no report yet
        reported,         // trigger fired: log attackalert, write history/blocked, respond
        already_blocked,  // source already reported/blocked: "already blocked Ignoring"
    } outcome = Outcome::not_watched;
    // Valid when outcome == reported:
    int block = 0;           // effective BLOCK_* (0 when dry_run)
    bool ban = false;        // add to nft set (block 1 and KILL_ROUTE set)
    bool hosts_deny = false; // block 1 and KILL_HOSTS_DENY set
    bool run_cmd = false;    // (block 1 or 2) and KILL_RUN_CMD set
    bool custom_kill_route = false;  // block 1, KILL_ROUTE not a stock command: exec it
    std::chrono::seconds ban_time{0};  // 0 = permanent
    bool ip_options = false;
    bool log_suppressed = false;  // already_blocked line rate-limited for this source
};

struct Counters {
    uint64_t packets = 0;
    uint64_t ignored = 0;
    uint64_t counting = 0;
    uint64_t reported = 0;
    uint64_t already_blocked = 0;
    uint64_t drops = 0;
    uint64_t accepts = 0;
    uint64_t evictions = 0;  // per-source entries evicted by the LRU cap
};

class Engine {
public:
    // `cfg` must outlive the engine (the daemon swaps both on reload).
    explicit Engine(const config::Config& cfg, uint64_t hash_seed = 0);

    // One steered probe. `watched` = the port is in the watched set and no local
    // socket owns it (the kernel rule already checked; replay sources pass true).
    Decision on_probe(const net::Packet& p, bool watched, TimePoint now) noexcept;

    // A classic-mode tripwire connection/datagram (handshake-proven for TCP).
    Decision on_tripwire(const net::IpAddr& src, net::L4 proto, uint16_t port, TimePoint now) noexcept;

    // Ban lifecycle seen from outside (admin unban, expiry, state restore).
    void mark_blocked(const net::IpAddr& a, TimePoint now, std::optional<TimePoint> until);
    void forget(const net::IpAddr& a);
    bool is_blocked(const net::IpAddr& a, TimePoint now) const;

    // Swap configuration (SIGHUP); per-source state and blocks survive.
    void reconfigure(const config::Config& cfg);

    size_t tracked_sources() const { return lru_.size(); }
    const Counters& counters() const { return counters_; }

private:
    struct Source {
        net::IpAddr addr;
        TimePoint window_start{};
        uint32_t count = 0;
        bool reported = false;          // 1.2 "in the blocked file"
        std::optional<TimePoint> blocked_until;  // nullopt + reported = permanent
        TimePoint last_already_log{};
    };
    Decision decide(const net::IpAddr& src, net::L4 proto, uint16_t port, ScanType type,
                    bool ip_options, TimePoint now) noexcept;
    Source& touch(const net::IpAddr& a, TimePoint now);

    const config::Config* cfg_;
    uint64_t seed_;
    struct SeededHash {
        uint64_t seed;
        size_t operator()(const net::IpAddr& a) const noexcept;
    };
    std::list<Source> lru_;  // front = most recent
    std::unordered_map<net::IpAddr, std::list<Source>::iterator, SeededHash> index_;
    Counters counters_;
};

}  // namespace portsentry::engine
