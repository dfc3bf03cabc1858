// The pure verdict engine: parsed packets and a clock in, decisions out.
// No syscalls, no globals: every rule (trigger window, ban expiry, LRU cap)
// is testable exactly at its boundary without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "portsentry/engine/protection.hpp"
#include "portsentry/engine/settings.hpp"
#include "portsentry/engine/source_table.hpp"
#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::engine {

// Clock and TimePoint (std::chrono::steady_clock) come from source_table.hpp.

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
    udp_tripwire,  // classic-mode UDP tripwire datagram ("UDP scan", as 1.2)
};
// ECE and CWR (ECN negotiation) are ignored: a SYN|ECE|CWR is a plain SYN.
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
        protected_addr,   // source is protected (never ban): accept, log "protected: <reason>"
        rate_limited,     // trigger fired but a ban-rate cap was reached: drop, log, no response
    } outcome = Outcome::not_watched;
    int block = 0;           // effective BLOCK_* of the protocol (0 when dry_run); always set
    // Set only when outcome == reported (the responses to run now):
    bool ban = false;        // add to nft set (block 1 and KILL_ROUTE set)
    bool hosts_deny = false; // block 1 and KILL_HOSTS_DENY set
    bool run_cmd = false;    // (block 1 or 2) and KILL_RUN_CMD set
    bool custom_kill_route = false;  // block 1, KILL_ROUTE not a stock command: exec it
    std::chrono::seconds ban_time{0};  // Settings::ban_time; 0 = permanent
    bool ip_options = false;          // IPv4 options present (1.2 logs a warning)
    bool log_suppressed = false;  // already_blocked / protected line rate-limited for this source
    ProtectReason protect_reason = ProtectReason::ignore;  // set when outcome == protected_addr
    // Set only when outcome == reported: the source is already reported or
    // blocked for the other protocol (its responses ran; the responder does
    // not repeat an identical KILL_RUN_CMD).
    bool other_protocol = false;
};

struct Counters {
    uint64_t packets = 0;
    uint64_t not_watched = 0;
    uint64_t ignored = 0;
    uint64_t counting = 0;
    uint64_t reported = 0;
    uint64_t already_blocked = 0;
    uint64_t drops = 0;
    uint64_t accepts = 0;
    uint64_t evictions = 0;  // per-source entries evicted by the LRU cap
    uint64_t log_suppressed = 0;  // already_blocked lines rate-limited away
    uint64_t protected_hits = 0;  // probes from protected sources (never banned)
    uint64_t protected_log_suppressed = 0;  // "protected" lines rate-limited away
    uint64_t rate_limited = 0;    // detections not banned: ban_rate_* cap reached
};

// Bounded memory for the per-prefix ban cap under a flood of random prefixes.
inline constexpr size_t ban_prefix_max_entries = 4096;

// One "already blocked" line per source and protocol per this interval; the
// rest are counted.
inline constexpr std::chrono::seconds already_blocked_log_interval{60};
// One "protected" line per protected source per this interval (the issue: once
// per address and hour), remembered for at most this many sources: a spoofed
// flood from inside a protected prefix must not grow memory without bound.
inline constexpr std::chrono::seconds protected_log_interval{3600};
inline constexpr size_t protected_log_max_sources = 4096;

// Per-source rules, all evaluated against the `now` passed in:
//  - SCAN_TRIGGER N: the Nth probe (0 and 1: the first) inside one window fires.
//    The window opens at a source's first counted probe and closes scan_window
//    later; a probe at or after the close opens a new window (scan_window 0:
//    the window never closes). Every probe counts, repeats included.
//  - TCP and UDP are separate detectors, as in 1.2: what follows is
//    remembered per source and protocol, so a host reported for one protocol
//    is still reported when it probes the other (its own scan line, history
//    and blocked-file record, hosts.deny line and KILL_RUN_CMD). The nft ban
//    drops every protocol: a source with one is already_blocked on both, and
//    a report never asks to ban a source that has one (no extension, no
//    escalation). The SCAN_TRIGGER count is per source, both protocols.
//  - A report under BLOCK 1/2 marks the source blocked for that protocol for
//    ban_time (0 = permanent), whether or not an nft ban was asked for
//    (KILL_ROUTE unset), so hosts.deny and KILL_RUN_CMD run once per ban, not
//    once per probe. At or after the expiry the source is counted and
//    reported afresh.
//  - A report under BLOCK 0 or --dry-run is remembered for the rest of the run
//    (1.2: the host is in that protocol's blocked file): later probes of that
//    protocol are already_blocked.
//  - "already blocked" lines: one per source and protocol per
//    already_blocked_log_interval; the rest are log_suppressed.
//  - The table holds at most Settings::max_tracked_sources entries (LRU; see
//    SourceTable::evict_one). An evicted entry only loses its counts and its
//    report memory; the kernel set keeps any ban it had.
class Engine {
public:
    // `settings` is copied: the caller may drop its config after the call.
    // `hash_seed` keys the per-source hash: the daemon passes random bits (the
    // engine itself reads no entropy: it makes no syscalls).
    explicit Engine(Settings settings, uint64_t hash_seed = 0);

    // One steered probe. `watched` = the port is in the watched set and no local
    // socket owns it (the kernel rule already checked; replay sources pass true).
    Decision on_probe(const net::Packet& p, bool watched, TimePoint now) noexcept;

    // A classic-mode tripwire connection/datagram (handshake-proven for TCP).
    Decision on_tripwire(const net::IpAddr& src, net::L4 proto, uint16_t port, TimePoint now) noexcept;

    // Ban lifecycle seen from outside (admin unban, expiry, state restore).
    // `until` nullopt = permanent; an `until` at or before `now` clears the ban.
    // These concern the nft ban, which drops every protocol: mark_blocked
    // makes the source already_blocked on both; forget drops everything known
    // about it (both protocols).
    void mark_blocked(const net::IpAddr& a, TimePoint now, std::optional<TimePoint> until);
    void forget(const net::IpAddr& a);
    // One protocol's report failed (no response took): that protocol's memory
    // goes, and the ban its report asked for; the other protocol's stays.
    void forget(const net::IpAddr& a, net::L4 proto);
    // Blocked for either protocol (nft ban or an active response).
    bool is_blocked(const net::IpAddr& a, TimePoint now) const;
    bool is_blocked(const net::IpAddr& a, net::L4 proto, TimePoint now) const;

    // What the engine remembers about one source (`why`); nullopt: nothing
    // (never seen, or forgotten by the LRU cap).
    struct SourceInfo {
        uint32_t count = 0;              // probes in the current trigger window
        bool blocked = false;
        bool last_rate_limited = false;  // last probe: trigger fired, ban-rate cap reached
        TimePoint last_probe{};
    };
    std::optional<SourceInfo> source_info(const net::IpAddr& a, TimePoint now) const;

    // The never-ban set (nullptr: none). Must outlive the engine or the next
    // call; the daemon swaps it when a source of protection changes. A
    // protected source is accepted and never counted or reported; the
    // ignore list (Settings::ignore) is still checked first and stays silent.
    void set_protection(const Protection* p) { protection_ = p; }

    // Swap settings (SIGHUP); per-source state and blocks survive.
    void reconfigure(Settings settings);

    const Settings& settings() const { return settings_; }
    size_t tracked_sources() const { return table_.size(); }
    size_t max_tracked_sources() const { return table_.capacity(); }
    // Bytes held by the per-source table; bounded by the cap, not by traffic.
    size_t state_bytes() const { return table_.memory_bytes(); }
    const Counters& counters() const { return counters_; }

private:
    Decision decide(const net::IpAddr& src, net::L4 proto, ScanType type, bool ip_options,
                    bool watched, TimePoint now, bool proven = false) noexcept;

    bool protected_log_due(const net::IpAddr& src, TimePoint now) noexcept;
    // Takes one new-ban slot (global per second, per /24 or /48 per minute);
    // false when a cap is reached.
    bool take_ban_slot(const net::IpAddr& src, TimePoint now) noexcept;

    Settings settings_;
    const Protection* protection_ = nullptr;
    std::unordered_map<net::IpAddr, TimePoint, net::IpAddrHash> protected_logged_;
    TimePoint ban_second_start_{};
    unsigned bans_this_second_ = 0;
    struct PrefixWindow {
        TimePoint start;
        unsigned bans;
    };
    std::unordered_map<net::IpAddr, PrefixWindow, net::IpAddrHash> ban_prefixes_;
    detail::SourceTable table_;
    Counters counters_;
};

}  // namespace portsentry::engine
