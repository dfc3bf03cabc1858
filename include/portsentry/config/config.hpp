// The validated configuration object. Both readers (native YAML and legacy
// portsentry 1.2 portsentry.conf + /etc/default/portsentry) produce this.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/net/address.hpp"

namespace portsentry::config {

enum class Mode : uint8_t {
    off,       // protocol not watched
    classic,   // -tcp / -udp: bind listed ports as tripwires
    stealth,   // -stcp / -sudp: steer probes to listed ports
    advanced,  // -atcp / -audp: steer probes to every unbound port below advanced_ports
};
const char* to_string(Mode m);  // "off","classic","stealth","advanced"
// Legacy flag names: "tcp","stcp","atcp","udp","sudp","audp" (no dash).
std::optional<Mode> mode_from_legacy_flag(std::string_view flag, bool* is_udp);

enum class Steer : uint8_t { auto_, queue, xt_queue, nflog };
const char* to_string(Steer s);  // "auto","queue","xt-queue","nflog"
std::optional<Steer> steer_from_string(std::string_view s);

struct PortRange {
    uint16_t lo = 0, hi = 0;  // inclusive, 1..65535
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct ProtoConfig {
    Mode mode = Mode::off;
    std::vector<PortRange> ports;             // TCP_PORTS / UDP_PORTS (classic, stealth)
    uint16_t advanced_ports = 1024;           // ADVANCED_PORTS_*: watch ports 1..N-1
    std::vector<PortRange> advanced_exclude;  // ADVANCED_EXCLUDE_*
    int block = 1;                            // BLOCK_TCP / BLOCK_UDP: 0 log, 1 block, 2 command only

    // Ports steered to the daemon for this mode, sorted, merged, non-overlapping.
    // classic/stealth: ports; advanced: [1, advanced_ports) minus excludes; off: empty.
    std::vector<PortRange> watched() const;

    friend bool operator==(const ProtoConfig&, const ProtoConfig&) = default;
};

struct Config {
    // Where it came from (for messages and reload).
    std::string source_file;
    bool legacy = false;

    ProtoConfig tcp;
    ProtoConfig udp;

    std::string ignore_file = "/etc/portsentry/portsentry.ignore";        // IGNORE_FILE
    std::string history_file = "/var/lib/portsentry/portsentry.history";  // HISTORY_FILE
    std::string blocked_file = "/var/lib/portsentry/portsentry.blocked";  // BLOCKED_FILE (+ .<mode>)
    bool resolve_host = false;                                            // RESOLVE_HOST
    std::string kill_route;        // KILL_ROUTE ("" = unset)
    std::string kill_hosts_deny;   // KILL_HOSTS_DENY ("" = unset); must contain $TARGET$
    std::string kill_run_cmd;      // KILL_RUN_CMD ("" = unset)
    bool kill_run_cmd_first = false;  // KILL_RUN_CMD_FIRST
    unsigned scan_trigger = 0;     // SCAN_TRIGGER: 0 and 1 = first probe fires
    std::string port_banner;       // PORT_BANNER ("" = unset)

    std::chrono::seconds scan_window{3600};  // per-source probe counting window
    std::chrono::seconds ban_time{3600};     // 0 = permanent (legacy default)
    unsigned ban_time_factor = 4;            // repeat offenders: × per ban ...
    std::chrono::seconds ban_time_max{30 * 86400};  // ... up to this
    unsigned ipv6_aggregate_after = 3;       // banned hosts in one /64 → ban the /64; 0 = never
    std::chrono::seconds run_cmd_timeout{10};

    Steer steer = Steer::auto_;
    uint16_t queue_num = 0;
    uint16_t nflog_group = 5;
    uint32_t ban_set_size = 65536;        // explicit nft set size
    // Caps on NEW bans (docs/ARCHITECTURE.md, "Under attack"): spoofed probes must not
    // fill the ban set or ban whole networks. 0 = no cap. Handshake-proven
    // (classic TCP tripwire) bans are exempt.
    unsigned ban_rate_per_second = 20;
    unsigned ban_rate_per_prefix_per_minute = 16;  // per IPv4 /24 or IPv6 /48
    size_t max_tracked_sources = 100000;  // engine per-source state cap (LRU)

    std::string hosts_deny_file = "/etc/hosts.deny";
    std::string state_file = "/var/lib/portsentry/portsentry-nfq.state";
    // In the unit's RuntimeDirectory= (writable under ProtectSystem=strict);
    // the instance lock is this path + ".lock".
    std::string control_socket = "/run/portsentry-nfq/portsentry-nfq.sock";
    std::string json_log;  // "" = off; else path of JSON event lines
    bool dry_run = false;

    // Section metrics: (YAML only; a legacy portsentry.conf has no such key).
    struct Metrics {
        std::string listen;  // metrics.listen: "127.0.0.1:9470", "[::1]:9470"; "" = off
        friend bool operator==(const Metrics&, const Metrics&) = default;
    } metrics;

    // Section crowdsec: (YAML only): the fleet on CrowdSec's Local API
    // (docs/ARCHITECTURE.md, "Fleet"). Key names and meanings are a contract.
    struct Crowdsec {
        std::vector<std::string> lapi_url;  // crowdsec.lapi_url: empty = fleet off; several = fail over in order
        std::string machine_id;             // crowdsec.machine_id: watcher login (push)
        std::string password_file;          // crowdsec.password_file: watcher password, first line
        std::string bouncer_key_file;       // crowdsec.bouncer_key_file: bouncer API key, first line (pull)
        std::string ca_file;                // crowdsec.ca_file: private CA for https ("" = system CAs)
        bool push = true;                   // crowdsec.push: detector bans become alerts
        bool push_only_proven = false;      // crowdsec.push_only_proven: only handshake-proven bans
        bool pull = true;                   // crowdsec.pull: decisions stream into @fleet/@fleet6
        std::chrono::milliseconds poll_interval{1000};  // crowdsec.poll_interval (>= 10ms)
        std::chrono::seconds resync_interval{300};      // crowdsec.resync_interval: startup=true again
        uint32_t fleet_set_size = 65536;    // crowdsec.fleet_set_size: per fleet set
        bool enabled() const { return !lapi_url.empty(); }
        friend bool operator==(const Crowdsec&, const Crowdsec&) = default;
    } crowdsec;

    // Sources of the never-ban sets (@never/@never6); each can be switched off.
    struct Protect {
        bool ignore_list = true;      // protect.ignore_list: the ignore files' prefixes
        bool local_addresses = true;  // protect.local_addresses: this host's addresses
        bool gateways = true;         // protect.gateways: default-route next hops
        bool resolvers = true;        // protect.resolvers: /etc/resolv.conf nameservers
        bool special = true;          // protect.special: loopback, link-local, multicast, ...
        bool sessions = true;         // protect.sessions: remote ends of utmp logins
        friend bool operator==(const Protect&, const Protect&) = default;
    } protect;

    // Loaded from ignore_file and ignore_file + ".static" (missing files are fine,
    // unreadable ones are errors). Local addresses are added by the daemon.
    net::CidrSet ignore;

    // KILL_ROUTE is one of the stock firewall/route commands (iptables, ip6tables,
    // route, ipchains, ipfwadm, ipfw, ...): honoured by the nft-set ban instead.
    bool kill_route_is_builtin() const;
};

// One problem in one input, located.
struct Diagnostic {
    std::string file;
    unsigned line = 0;  // 0 = whole file
    std::string message;
    std::string to_string() const;  // "FILE:LINE: message" (or "FILE: message", or "message")
};

// A ConfigError shows at most this many diagnostics, then "… N more".
inline constexpr size_t kShownDiagnostics = 100;

// Thrown by loaders; carries every problem found (not just the first), up to
// kShownDiagnostics, then one file-less "… N more" diagnostic counting the
// rest (`not_kept` of them were counted but never stored). File bytes in
// messages and names are escaped (\x1b): a file must not drive the terminal.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<Diagnostic> diags, size_t not_kept = 0);
    const std::vector<Diagnostic>& diagnostics() const { return diags_; }

private:
    struct Shown {};
    ConfigError(std::vector<Diagnostic> diags, Shown);
    std::vector<Diagnostic> diags_;
};

struct LoadOptions {
    // Legacy only: /etc/default/portsentry (TCP_MODE/UDP_MODE) when no mode flag given.
    std::string defaults_file = "/etc/default/portsentry";
    // Legacy mode flags from argv ("atcp", "audp", ...); override defaults_file.
    std::vector<std::string> mode_flags;
    bool load_ignore_files = true;
    // --check: every path the daemon would write must be writable here. Run
    // by the unit's ExecStartPre= inside the same sandbox, this names each
    // path outside its ReadWritePaths= (EROFS) with FILE:LINE.
    bool check_write_paths = false;
    // The fleet's files, when the fleet uses them: crowdsec.password_file
    // (push) and crowdsec.bouncer_key_file (pull) exist, are regular files of
    // mode 0600 or stricter and hold a secret on their first line;
    // crowdsec.ca_file is readable. At start, --check and SIGHUP alike; off
    // only for tests of the readers.
    bool check_fleet_files = true;
};

// Detects YAML vs legacy by content (legacy: KEY="value" lines) and loads it.
Config load(const std::string& path, const LoadOptions& opts = {});
Config load_yaml(const std::string& path, const LoadOptions& opts = {});
Config load_legacy(const std::string& path, const LoadOptions& opts = {});
// Parses from memory (tests, fuzzing); `name` is used in diagnostics.
Config parse_yaml(const std::string& text, const std::string& name, const LoadOptions& opts = {});
Config parse_legacy(const std::string& text, const std::string& name, const LoadOptions& opts = {});

// Reads one ignore file into `out`; a missing file is fine (returns false),
// an unreadable file or bad line throws ConfigError with FILE:LINE.
bool load_ignore_file(const std::string& path, net::CidrSet& out);

// The equivalent native YAML, commented (for --import-legacy).
std::string to_yaml(const Config& c);

}  // namespace portsentry::config
