// The key table and the per-kind parse/format functions it drives.
#include "portsentry/config/keys.hpp"

#include <limits>

#include <fmt/format.h>

#include "internal.hpp"

namespace portsentry::config {

namespace {

using detail::lower;
using detail::parse_uint;
std::string_view trim(std::string_view s) { return detail::trim_space(s); }

constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kDay = 86400;

// Field accessors: captureless lambdas decay to the table's function pointer.
#define PS_FIELD(expr) [](Config& c) -> FieldRef { return &(c.expr); }

// Order here is documentation order (to_yaml output, etc/portsentry.yaml).
// default_value must describe Config{} exactly: a unit test checks it.
const KeyInfo kKeys[] = {
    // ---- tcp ------------------------------------------------------------
    {"tcp.mode", "", ValueKind::mode, "off", nullptr, 0, 0, false,
     "How TCP is watched. off: not at all. classic (-tcp): bind the listed ports as "
     "tripwires; a full connect is the detection and proves the source is real. "
     "stealth (-stcp): probes to the listed ports are steered to the daemon, nothing "
     "is bound. advanced (-atcp): probes to every port below advanced_ports that no "
     "local socket owns, minus advanced_exclude. Legacy configs take this from the "
     "-tcp/-stcp/-atcp flag or TCP_MODE in /etc/default/portsentry.",
     PS_FIELD(tcp.mode)},
    {"tcp.ports", "TCP_PORTS", ValueKind::port_list, "[]", nullptr, 0, 0, false,
     "Ports watched in classic and stealth modes (ignored in advanced mode). "
     "A list of port numbers and a-b ranges.",
     PS_FIELD(tcp.ports)},
    {"tcp.advanced_ports", "ADVANCED_PORTS_TCP", ValueKind::port, "1024", nullptr, 1, 65535, false,
     "Advanced mode watches every port below this number (1.2 recommends 1024).",
     PS_FIELD(tcp.advanced_ports)},
    {"tcp.advanced_exclude", "ADVANCED_EXCLUDE_TCP", ValueKind::port_list, "[]", nullptr, 0, 0, false,
     "Ports advanced mode never reacts to, as if a service were bound there "
     "(stock: 113 ident, 139 NetBIOS).",
     PS_FIELD(tcp.advanced_exclude)},
    {"tcp.block", "BLOCK_TCP", ValueKind::block, "1", nullptr, 0, 2, false,
     "Response to a TCP scan. 0: detect and record only (history line, no ban, probes "
     "answered as before). 1: drop probes and, at the trigger, ban (kill_route), write "
     "hosts.deny (kill_hosts_deny) and run kill_run_cmd, each if set. 2: run "
     "kill_run_cmd only.",
     PS_FIELD(tcp.block)},
    // ---- udp ------------------------------------------------------------
    {"udp.mode", "", ValueKind::mode, "off", nullptr, 0, 0, false,
     "How UDP is watched: off, classic (-udp), stealth (-sudp) or advanced (-audp), "
     "as for tcp.mode. UDP sources are trivially forged: blocking on UDP lets anyone "
     "make this host ban an address of their choosing.",
     PS_FIELD(udp.mode)},
    {"udp.ports", "UDP_PORTS", ValueKind::port_list, "[]", nullptr, 0, 0, false,
     "Ports watched in classic and stealth modes (ignored in advanced mode).",
     PS_FIELD(udp.ports)},
    {"udp.advanced_ports", "ADVANCED_PORTS_UDP", ValueKind::port, "1024", nullptr, 1, 65535, false,
     "Advanced mode watches every UDP port below this number.",
     PS_FIELD(udp.advanced_ports)},
    {"udp.advanced_exclude", "ADVANCED_EXCLUDE_UDP", ValueKind::port_list, "[]", nullptr, 0, 0, false,
     "UDP ports advanced mode ignores (stock: 520 RIP, 138/137 NetBIOS, 67 bootp "
     "broadcasts).",
     PS_FIELD(udp.advanced_exclude)},
    {"udp.block", "BLOCK_UDP", ValueKind::block, "1", nullptr, 0, 2, false,
     "Response to a UDP scan: 0 record only, 1 block, 2 run kill_run_cmd only.",
     PS_FIELD(udp.block)},
    // ---- files ----------------------------------------------------------
    {"ignore_file", "IGNORE_FILE", ValueKind::path, "\"/etc/portsentry/portsentry.ignore\"",
     nullptr, 0, 0, false,
     "Addresses never reported or banned: one IPv4/IPv6 address or CIDR per line; "
     "text after a # is a comment. This file and the same name plus \".static\" are both read; a "
     "missing file is fine. Local addresses are always added. \"\" = none.",
     PS_FIELD(ignore_file)},
    {"history_file", "HISTORY_FILE", ValueKind::path,
     "\"/var/lib/portsentry/portsentry.history\"", nullptr, 0, 0, true,
     "Appended with one line per reported host, in portsentry 1.2's format "
     "(fail2ban's portsentry filter reads it). Never renamed; SIGHUP reopens it.",
     PS_FIELD(history_file)},
    {"blocked_file", "BLOCKED_FILE", ValueKind::path,
     "\"/var/lib/portsentry/portsentry.blocked\"", nullptr, 0, 0, true,
     "Hosts with an active ban, one file per mode: this name plus \".tcp\", "
     "\".atcp\", ... as in 1.2.",
     PS_FIELD(blocked_file)},
    // ---- detection --------------------------------------------------------
    {"resolve_host", "RESOLVE_HOST", ValueKind::flag, "false", nullptr, 0, 0, false,
     "Look up the reverse DNS name of attackers for log lines (capped; falls back "
     "to the address). The name is attacker-controlled and never reaches a shell.",
     PS_FIELD(resolve_host)},
    {"scan_trigger", "SCAN_TRIGGER", ValueKind::integer, "0", nullptr, 0, kU32Max, false,
     "The Nth probe from one source (counting repeats) within scan_window fires "
     "the response; 0 and 1 both mean the first probe.",
     PS_FIELD(scan_trigger)},
    {"scan_window", "", ValueKind::duration, "1h", nullptr, 1, 365 * kDay, false,
     "How long probes from one source are counted toward scan_trigger.",
     PS_FIELD(scan_window)},
    {"port_banner", "PORT_BANNER", ValueKind::text, "\"\"", nullptr, 0, 0, false,
     "Text written to a client that connects to a classic-mode tripwire "
     "(UDP replies are rate-limited). \"\" = none.",
     PS_FIELD(port_banner)},
    // ---- response ---------------------------------------------------------
    {"kill_route", "KILL_ROUTE", ValueKind::command, "\"\"", nullptr, 0, 0, false,
     "Ban the source (block 1). \"nft-set\", or any stock firewall/route command "
     "(iptables, ip6tables, route, ipchains, ipfwadm, ipfw, ...), means: add it to "
     "the kernel ban set (logged \"blocked via nft set\"); nothing is exec'd. Any "
     "other command is your own script: it runs after the ban, without a shell, "
     "with $TARGET$ $PORT$ $MODE$ expanded. \"\" = no ban.",
     PS_FIELD(kill_route)},
    {"ban_time", "", ValueKind::duration, "1h", "0", 0, 10 * 365 * kDay, false,
     "How long a ban lasts; repeat offenders are banned longer. 0 = permanent "
     "(portsentry 1.2 behaviour, the default for legacy configs).",
     PS_FIELD(ban_time)},
    {"ban_time_factor", "", ValueKind::integer, "4", nullptr, 1, 1000, false,
     "Repeat offenders: each new ban of the same address (or /64) lasts this many "
     "times the previous one, up to ban_time_max. 1 = every ban lasts ban_time. "
     "Offences are remembered for ban_time_max after a ban ends, across restarts.",
     PS_FIELD(ban_time_factor)},
    {"ban_time_max", "", ValueKind::duration, "30d", nullptr, 1, 10 * 365 * kDay, false,
     "Longest ban escalation reaches (a ban_time above it is kept as is).",
     PS_FIELD(ban_time_max)},
    {"ipv6_aggregate_after", "", ValueKind::integer, "3", nullptr, 0, 65536, false,
     "Once this many addresses inside one IPv6 /64 are banned, ban the whole /64 "
     "and drop the single bans (an IPv6 host can hop across its /64 at will). "
     "Never done over a protected address. 0 = never aggregate.",
     PS_FIELD(ipv6_aggregate_after)},
    {"kill_hosts_deny", "KILL_HOSTS_DENY", ValueKind::deny_line, "\"\"", nullptr, 0, 0, false,
     "Line appended to hosts_deny_file once per new ban (block 1), with $TARGET$ and $PORT$ "
     "expanded, and removed when the ban ends; must contain $TARGET$. \"\" = do not touch hosts.deny.",
     PS_FIELD(kill_hosts_deny)},
    {"hosts_deny_file", "", ValueKind::path, "\"/etc/hosts.deny\"", nullptr, 0, 0, true,
     "The TCP wrappers file kill_hosts_deny is written to.",
     PS_FIELD(hosts_deny_file)},
    {"kill_run_cmd", "KILL_RUN_CMD", ValueKind::command, "\"\"", nullptr, 0, 0, false,
     "Command run on a ban (block 1 or 2): words split on spaces, $TARGET$ $PORT$ "
     "$MODE$ expanded, exec'd without a shell, so no &&, |, ;, redirections or $(...): "
     "put those in a script. \"\" = none.",
     PS_FIELD(kill_run_cmd)},
    {"kill_run_cmd_first", "KILL_RUN_CMD_FIRST", ValueKind::flag, "false", nullptr, 0, 0, false,
     "Run kill_run_cmd before the ban instead of after it; the ban waits until it completes "
     "(or run_cmd_timeout), as in 1.2. Verdicts never wait.",
     PS_FIELD(kill_run_cmd_first)},
    {"run_cmd_timeout", "", ValueKind::duration, "10s", nullptr, 1, 3600, false,
     "kill_run_cmd and a custom kill_route are killed after this long. On SIGTERM, pending "
     "responses get this long plus 1 s to finish.",
     PS_FIELD(run_cmd_timeout)},
    // ---- kernel -----------------------------------------------------------
    {"steer", "", ValueKind::steer, "auto", nullptr, 0, 0, false,
     "How probes reach the daemon: queue (nft queue), xt-queue (nft + xt NFQUEUE "
     "target), nflog (nft log group; no inline verdict, the rule drops) or auto "
     "(the first of these the kernel supports; the choice is logged).",
     PS_FIELD(steer)},
    {"queue_num", "", ValueKind::integer, "0", nullptr, 0, 65535, false,
     "NFQUEUE number for queue and xt-queue.",
     PS_FIELD(queue_num)},
    {"nflog_group", "", ValueKind::integer, "5", nullptr, 0, 65535, false,
     "NFLOG group for nflog.",
     PS_FIELD(nflog_group)},
    {"ban_set_size", "", ValueKind::integer, "65536", nullptr, 1, kU32Max, false,
     "Maximum number of bans in each kernel ban set (nft set size). When a set is "
     "full the oldest ban is evicted to make room, logged and counted.",
     PS_FIELD(ban_set_size)},
    {"ban_rate_per_second", "", ValueKind::integer, "20", nullptr, 0, 100000, false,
     "At most this many new bans per second (0 = no cap). Beyond it probes are still "
     "dropped and detections logged and counted, but not banned, so a random-source "
     "spoofed flood cannot fill the ban set. Classic-mode TCP connects are exempt: a "
     "completed handshake cannot be spoofed.",
     PS_FIELD(ban_rate_per_second)},
    {"ban_rate_per_prefix_per_minute", "", ValueKind::integer, "16", nullptr, 0, 100000, false,
     "At most this many new bans per minute inside one IPv4 /24 or IPv6 /48 "
     "(0 = no cap), so spoofed sources cannot ban a whole neighbouring network.",
     PS_FIELD(ban_rate_per_prefix_per_minute)},
    {"max_tracked_sources", "", ValueKind::integer, "100000", nullptr, 1, kU32Max, false,
     "Per-source scan state kept in memory; least recently seen sources are "
     "forgotten first, so a random-source flood cannot exhaust memory.",
     PS_FIELD(max_tracked_sources)},
    // ---- daemon -----------------------------------------------------------
    {"state_file", "", ValueKind::path, "\"/var/lib/portsentry/portsentry-nfq.state\"", nullptr,
     0, 0, true,
     "Every ban (address, origin, times, count): a snapshot rewritten atomically, and a journal of "
     "changes beside it (<state>.journal.N); bans are restored from them after a restart.",
     PS_FIELD(state_file)},
    {"control_socket", "", ValueKind::path, "\"/run/portsentry-nfq/portsentry-nfq.sock\"", nullptr, 0, 0, true,
     "Root-only socket for status, list, why, ban, unban and reload; the instance lock "
     "is this path plus \".lock\". A missing directory is created (mode 0700).",
     PS_FIELD(control_socket)},
    {"json_log", "", ValueKind::path, "\"\"", nullptr, 0, 0, false,
     "Append one JSON object per event (scan, ban, unban, rate_limited, protected, "
     "evicted, aggregated, ...) to this file; reopened on SIGHUP. \"\" = off.",
     PS_FIELD(json_log)},
    {"dry_run", "", ValueKind::flag, "false", nullptr, 0, 0, false,
     "Detect, log and record as with block 0, but never ban, drop or run anything "
     "(also --dry-run).",
     PS_FIELD(dry_run)},
    // ---- protect (never ban; all on by default, legacy configs too) --------
    {"protect.ignore_list", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Put the ignore files' prefixes in the kernel never-ban sets (@never/@never6) as well, so they pass even a ban made by hand.",
     PS_FIELD(protect.ignore_list)},
    {"protect.local_addresses", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Never ban this host's own addresses, followed live (a new DHCP or SLAAC address is protected at once).",
     PS_FIELD(protect.local_addresses)},
    {"protect.gateways", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Never ban the next hops of default routes (IPv4 and IPv6), followed live.",
     PS_FIELD(protect.gateways)},
    {"protect.resolvers", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Never ban the nameservers of /etc/resolv.conf, re-read when it changes.",
     PS_FIELD(protect.resolvers)},
    {"protect.special", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Never ban 0.0.0.0/8, loopback, link-local, multicast and broadcast addresses.",
     PS_FIELD(protect.special)},
    {"protect.sessions", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Never ban the remote addresses of logged-in sessions (utmp, what `who` shows), picked up within a second of the login.",
     PS_FIELD(protect.sessions)},
    // ---- metrics (YAML only) ---------------------------------------------
    {"metrics.listen", "", ValueKind::text, "\"\"", nullptr, 0, 0, false,
     "Serve the daemon's metrics (what `status --json` shows) as Prometheus text at "
     "http://LISTEN/metrics, e.g. \"127.0.0.1:9470\" or \"[::1]:9470\". Unauthenticated: "
     "bind it to loopback or firewall it. A listen address that cannot be bound stops the "
     "start; SIGHUP rebinds. IPv6 needs a civetweb built with it (Debian 12's is not). \"\" = off.",
     PS_FIELD(metrics.listen)},
    // ---- crowdsec: the fleet on CrowdSec's LAPI (YAML only) ---------------
    {"crowdsec.lapi_url", "", ValueKind::url_list, "\"\"", nullptr, 0, 0, false,
     "The fleet: the URL of a CrowdSec Local API (LAPI), http:// or https://, e.g. "
     "\"http://192.0.2.1:8080\"; a list of URLs fails over in order. This host's detector "
     "bans are pushed to it as alerts (push) and the ban decisions of the whole fleet are "
     "pulled into the kernel sets @fleet/@fleet6 (pull), so an address one host caught "
     "scanning is dropped by all. The fleet needs this native YAML format: --import-legacy "
     "converts a portsentry.conf. \"\" or [] = off.",
     PS_FIELD(crowdsec.lapi_url)},
    {"crowdsec.machine_id", "", ValueKind::text, "\"\"", nullptr, 0, 0, false,
     "Watcher login used to push: a machine name registered on the LAPI host with "
     "`cscli machines add NAME --password ...`. Needed when push is on.",
     PS_FIELD(crowdsec.machine_id)},
    {"crowdsec.password_file", "", ValueKind::path, "\"\"", nullptr, 0, 0, false,
     "File holding the watcher's password alone on its first line (surrounding blanks "
     "ignored). It must be a regular file of mode 0600 or stricter (no access for group or "
     "others); it is checked at every load and never logged. Needed when push is on.",
     PS_FIELD(crowdsec.password_file)},
    {"crowdsec.bouncer_key_file", "", ValueKind::path, "\"\"", nullptr, 0, 0, false,
     "File holding a bouncer API key (`cscli bouncers add NAME` prints one) alone on its "
     "first line, mode 0600 as for password_file. Needed when pull is on. Give each host "
     "its own key: the LAPI keeps one stream position per key.",
     PS_FIELD(crowdsec.bouncer_key_file)},
    {"crowdsec.ca_file", "", ValueKind::path, "\"\"", nullptr, 0, 0, false,
     "PEM file of the CA that signed an https LAPI's certificate, when the system does not "
     "already trust it; must be readable. \"\" = the system's CAs.",
     PS_FIELD(crowdsec.ca_file)},
    {"crowdsec.push", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Send this host's detector bans to the LAPI as alerts (scenario portsentry/portscan; "
     "an IPv6 /64 as a range), batched at most every poll_interval. Bans made by an admin, "
     "by fail2ban or by the fleet are never pushed.",
     PS_FIELD(crowdsec.push)},
    {"crowdsec.push_only_proven", "", ValueKind::flag, "false", nullptr, 0, 0, false,
     "Push only handshake-proven bans (classic-mode TCP tripwires). A probe that is not a "
     "completed handshake can carry a spoofed source: an attacker can make this host ban "
     "addresses of their choosing (within the ban-rate caps), and the fleet then bans them "
     "on every host. true closes that door; the default false pushes every detector ban, "
     "because SYN scans (stealth and advanced modes) never complete a handshake.",
     PS_FIELD(crowdsec.push_only_proven)},
    {"crowdsec.pull", "", ValueKind::flag, "true", nullptr, 0, 0, false,
     "Apply the LAPI's ban decisions on IP addresses and ranges (from this fleet, cscli or "
     "any other watcher) in the kernel sets @fleet/@fleet6. Protected and ignored addresses "
     "are never applied.",
     PS_FIELD(crowdsec.pull)},
    {"crowdsec.poll_interval", "", ValueKind::duration_ms, "1s", nullptr, 10, 3'600'000, false,
     "How often the decision stream is polled, and the longest a push waits to be batched: "
     "lower protects the fleet sooner and costs the LAPI more requests.",
     PS_FIELD(crowdsec.poll_interval)},
    {"crowdsec.resync_interval", "", ValueKind::duration, "5m", nullptr, 30, kDay, false,
     "How often the whole decision list is fetched again (startup=true) and the fleet sets "
     "reconciled with it, which repairs changes the stream missed.",
     PS_FIELD(crowdsec.resync_interval)},
    {"crowdsec.fleet_set_size", "", ValueKind::integer, "65536", nullptr, 1, 16'777'216, false,
     "Maximum number of decisions in each fleet set (@fleet, @fleet6: the nft set size). "
     "Decisions beyond it are skipped and counted.",
     PS_FIELD(crowdsec.fleet_set_size)},
};

// FieldRef has no uint32_t* of its own: it is unsigned* (fleet_set_size, ban_set_size).
static_assert(std::is_same_v<uint32_t, unsigned>);

#undef PS_FIELD

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20 || u == 0x7f) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

// Store an already range-checked integer into whichever integer field the key has.
bool store_integer(FieldRef f, uint64_t v) {
    return std::visit(
        [v](auto* p) -> bool {
            using T = std::remove_pointer_t<decltype(p)>;
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                *p = static_cast<T>(v);
                return true;
            } else {
                return false;
            }
        },
        f);
}

uint64_t load_integer(FieldRef f) {
    return std::visit(
        [](auto* p) -> uint64_t {
            using T = std::remove_pointer_t<decltype(p)>;
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                return static_cast<uint64_t>(*p);
            } else {
                return 0;
            }
        },
        f);
}

template <class T>
T* field_as(const KeyInfo& k, Config& c) {
    auto f = k.field(c);
    auto** p = std::get_if<T*>(&f);
    return p ? *p : nullptr;
}

}  // namespace

std::span<const KeyInfo> keys() { return kKeys; }

const KeyInfo* find_yaml_key(std::string_view path) {
    for (const auto& k : kKeys)
        if (k.yaml == path) return &k;
    return nullptr;
}

const KeyInfo* find_legacy_key(std::string_view name) {
    if (name.empty()) return nullptr;
    for (const auto& k : kKeys)
        if (k.legacy == name) return &k;
    return nullptr;
}

std::string expected_text(const KeyInfo& k, Syntax syn) {
    switch (k.kind) {
    case ValueKind::port_list:
        return syn == Syntax::legacy
                   ? "a comma-separated list of ports 1-65535 and a-b ranges, e.g. \"1,11,6000-6010\""
                   : "a list of ports 1-65535 and \"a-b\" ranges, e.g. [1, 11, 6000-6010]";
    case ValueKind::port: return "a port number 1-65535";
    case ValueKind::block: return "0 (record only), 1 (block) or 2 (run KILL_RUN_CMD only)";
    case ValueKind::flag: return syn == Syntax::legacy ? "0 or 1" : "true or false";
    case ValueKind::integer: return fmt::format("an integer from {} to {}", k.min, k.max);
    case ValueKind::path: return k.required ? "a file path" : "a file path or \"\"";
    case ValueKind::text: return "text";
    case ValueKind::command: return "a command line";
    case ValueKind::deny_line: return "a hosts.deny line containing $TARGET$";
    case ValueKind::duration:
        return fmt::format("a duration like 30s, 10m, 1h, 2d or a number of seconds, from {} to {}",
                           format_duration(std::chrono::seconds(k.min)),
                           format_duration(std::chrono::seconds(k.max)));
    case ValueKind::mode: return "off, classic, stealth or advanced";
    case ValueKind::steer: return "auto, queue, xt-queue or nflog";
    case ValueKind::url_list:
        return "an http:// or https:// URL, e.g. \"http://192.0.2.1:8080\", a list of them, or \"\" (off)";
    case ValueKind::duration_ms:
        return fmt::format("a duration like 100ms, 1s, 1s500ms, 2m or a number of seconds, from {} to {}",
                           format_duration_ms(std::chrono::milliseconds(k.min)),
                           format_duration_ms(std::chrono::milliseconds(k.max)));
    }
    return "a value";
}

std::optional<std::string> url_item_error(const KeyInfo& k, std::string_view url, Syntax syn) {
    std::string why;
    if (parse_lapi_url(url, &why)) return std::nullopt;
    return fmt::format("'{}': {}: expected {}", url, why, expected_text(k, syn));
}

std::optional<std::string> set_value(const KeyInfo& k, Config& c, std::string_view text, Syntax syn) {
    const std::string_view raw = text;
    text = trim(text);
    auto bad = [&](std::string_view what) {
        return fmt::format("{}: expected {}", what, expected_text(k, syn));
    };
    switch (k.kind) {
    case ValueKind::port_list: {
        auto r = parse_port_list(text);
        if (!r.error.empty()) return fmt::format("{}: expected {}", r.error, expected_text(k, syn));
        *field_as<std::vector<PortRange>>(k, c) = std::move(r.ranges);
        return std::nullopt;
    }
    case ValueKind::port:
    case ValueKind::block:
    case ValueKind::integer: {
        auto v = parse_uint(text);
        if (!v) return bad(text.empty() ? std::string("empty value") : fmt::format("'{}' is not a number", text));
        if (*v < k.min || *v > k.max) {
            if (k.kind == ValueKind::port) return bad(fmt::format("port {} is out of range", *v));
            return bad(fmt::format("{} is out of range", *v));
        }
        store_integer(k.field(c), *v);
        return std::nullopt;
    }
    case ValueKind::flag: {
        bool v;
        const std::string t = lower(text);
        if (syn == Syntax::legacy) {
            // 1.2 treated anything but "1" as off; a typo silently disabling a
            // setting is exactly what --check should catch, so be strict.
            if (t == "0") v = false;
            else if (t == "1") v = true;
            else return bad(fmt::format("'{}' is not 0 or 1", text));
        } else {
            if (t == "true" || t == "yes" || t == "on" || t == "1") v = true;
            else if (t == "false" || t == "no" || t == "off" || t == "0") v = false;
            else return bad(fmt::format("'{}' is not a boolean", text));
        }
        *field_as<bool>(k, c) = v;
        return std::nullopt;
    }
    case ValueKind::path:
    case ValueKind::command:
    case ValueKind::deny_line:
        // Content rules (required, $TARGET$, shell syntax) are cross-checks done
        // by validation, so that they are reported once with the final value.
        *field_as<std::string>(k, c) = std::string(text);
        return std::nullopt;
    case ValueKind::text:
        // A banner may carry deliberate leading/trailing spaces.
        *field_as<std::string>(k, c) = std::string(raw);
        return std::nullopt;
    case ValueKind::duration: {
        auto d = parse_duration(text);
        if (!d) return bad(fmt::format("'{}' is not a duration", text));
        if (static_cast<uint64_t>(d->count()) < k.min || static_cast<uint64_t>(d->count()) > k.max)
            return bad(fmt::format("{} is out of range", text));
        *field_as<std::chrono::seconds>(k, c) = *d;
        return std::nullopt;
    }
    case ValueKind::mode: {
        for (Mode m : {Mode::off, Mode::classic, Mode::stealth, Mode::advanced}) {
            if (lower(text) == to_string(m)) {
                *field_as<Mode>(k, c) = m;
                return std::nullopt;
            }
        }
        return bad(fmt::format("'{}' is not a mode", text));
    }
    case ValueKind::steer: {
        auto s = steer_from_string(lower(text));
        if (!s) return bad(fmt::format("'{}' is not a steering backend", text));
        *field_as<Steer>(k, c) = *s;
        return std::nullopt;
    }
    case ValueKind::url_list: {
        // A single value: one URL, or "" for none. A YAML sequence is read
        // item by item by the YAML reader (url_item_error).
        auto& urls = *field_as<std::vector<std::string>>(k, c);
        if (text.empty()) {
            urls.clear();
            return std::nullopt;
        }
        if (auto e = url_item_error(k, text, syn)) return e;
        urls.assign(1, std::string(text));
        return std::nullopt;
    }
    case ValueKind::duration_ms: {
        auto d = parse_duration_ms(text);
        if (!d) return bad(fmt::format("'{}' is not a duration", text));
        if (static_cast<uint64_t>(d->count()) < k.min || static_cast<uint64_t>(d->count()) > k.max)
            return bad(fmt::format("{} is out of range", text));
        *field_as<std::chrono::milliseconds>(k, c) = *d;
        return std::nullopt;
    }
    }
    return std::string("internal error: unhandled kind");
}

std::string format_value(const KeyInfo& k, const Config& cc) {
    // Accessors take a mutable Config; this function only reads through them.
    auto& c = const_cast<Config&>(cc);
    switch (k.kind) {
    case ValueKind::port_list: return "[" + format_port_list(*field_as<std::vector<PortRange>>(k, c)) + "]";
    case ValueKind::port:
    case ValueKind::block:
    case ValueKind::integer: return std::to_string(load_integer(k.field(c)));
    case ValueKind::flag: return *field_as<bool>(k, c) ? "true" : "false";
    case ValueKind::path:
    case ValueKind::text:
    case ValueKind::command:
    case ValueKind::deny_line: return quote(*field_as<std::string>(k, c));
    case ValueKind::duration: return format_duration(*field_as<std::chrono::seconds>(k, c));
    case ValueKind::mode: return to_string(*field_as<Mode>(k, c));
    case ValueKind::steer: return to_string(*field_as<Steer>(k, c));
    case ValueKind::url_list: {
        const auto& urls = *field_as<std::vector<std::string>>(k, c);
        if (urls.empty()) return "\"\"";
        if (urls.size() == 1) return quote(urls.front());
        std::string out;
        for (const auto& u : urls) out += (out.empty() ? "[" : ", ") + quote(u);
        return out + "]";
    }
    case ValueKind::duration_ms: return format_duration_ms(*field_as<std::chrono::milliseconds>(k, c));
    }
    return "";
}

bool same_settings(const Config& a, const Config& b) {
    for (const auto& k : kKeys)
        if (format_value(k, a) != format_value(k, b)) return false;
    return a.ignore.entries() == b.ignore.entries();
}

}  // namespace portsentry::config
