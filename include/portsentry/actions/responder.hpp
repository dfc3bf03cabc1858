// Everything portsentry 1.2 does once a probe is judged (except the kernel
// ban itself, which the daemon passes in as a callback): attackalert lines,
// history and blocked records, hosts.deny, KILL_RUN_CMD and custom KILL_ROUTE.
//
// Order for a `reported` decision (1.2 PortSentry*Mode*() + DisposeTCP/UDP):
//   1. the scan line ("... scan from host" or classic "Connect from host"),
//      then the IP-options line if the packet had options;
//   2. the responses for the effective BLOCK value:
//        0: "Ignoring TCP response per configuration file setting."
//        1: KILL_RUN_CMD_FIRST ? command, ban (+custom KILL_ROUTE), hosts.deny
//                              : ban (+custom KILL_ROUTE), hosts.deny, command
//           (1.2 ran hosts.deny before the route; we ban first because the
//           fsync'd hosts.deny rewrite would otherwise sit in probe→ban latency)
//        2: command only;
//      a host reported before for the other protocol (Decision::other_protocol)
//      gets this protocol's responses too (1.2's separate detectors), except
//      a KILL_RUN_CMD identical to the one already run for it (hosts.deny
//      never writes an identical line twice anyway);
//   3. if every response succeeded, the history record and the blocked record
//      (as 1.2's WriteBlocked() after a successful Dispose) — with BLOCK 0 and
//      --dry-run too, which is what fail2ban's [portsentry] jail reads; if one
//      failed, "Could not block host ... !!" instead.
// An `already_blocked` decision logs the scan line and the "already blocked"
// line (1.2 logged both), unless the engine marked it log_suppressed.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "portsentry/actions/command.hpp"
#include "portsentry/actions/files.hpp"
#include "portsentry/actions/log.hpp"
#include "portsentry/actions/resolver.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::actions {

// One judged probe.
struct Report {
    net::IpAddr src;
    net::L4 proto = net::L4::tcp;
    uint16_t port = 0;
    uint8_t tcp_flags = 0;   // for the scan name of unusual flag combinations
    engine::Decision d;
    // Legacy detection type without the dash: "atcp","audp","stcp","sudp","tcp","udp".
    // Names the blocked file (BLOCKED_FILE.<mode>) and expands $MODE$.
    std::string mode;
};

// The nft-set ban: returns "" on success or the error text. Called at the
// point in the order where 1.2 ran KillRoute().
using BanFn = std::function<std::string()>;

struct HandleResult {
    bool logged = false;     // an attackalert line was written (or rate-limited)
    bool responded_ok = true;// every response that ran succeeded
    bool banned = false;     // BanFn ran and succeeded
    bool recorded = false;   // history and blocked records appended
};

struct ResponderCounters {
    uint64_t reports = 0;
    uint64_t records_written = 0;
    uint64_t records_suppressed = 0;  // history/blocked rate limit
    uint64_t file_errors = 0;         // history/blocked open/write failures
    uint64_t bans_ok = 0;
    uint64_t bans_failed = 0;
    uint64_t hosts_deny_added = 0;
    uint64_t hosts_deny_present = 0;
    uint64_t hosts_deny_failed = 0;
    uint64_t response_failures = 0;   // "Could not block host" reports
    uint64_t commands_deduplicated = 0;  // a second protocol's KILL_RUN_CMD identical to the first's
};

struct ResponderOptions {
    ResolverOptions resolver;          // .enabled and nothing else is overridden by cfg.resolve_host
    Resolver::LookupFn lookup;         // default: getnameinfo
    CommandOptions command;            // .timeout is overridden by cfg.run_cmd_timeout
    double record_burst = 200;         // history/blocked records back to back
    double record_per_second = 20;     // sustained records per second under a flood
    RenameFn hosts_deny_rename;        // default: rename(2) (tests inject EBUSY)
    std::function<std::time_t()> wall_clock;  // default: time(nullptr) (tests pin it)
};

class Responder {
public:
    // `cfg` and `log` must outlive the responder (reconfigure() swaps cfg).
    Responder(const config::Config& cfg, Log& log, ResponderOptions opts = {});
    ~Responder();
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;

    HandleResult handle(const Report& r, const BanFn& do_ban);
    HandleResult handle(const Report& r, const BanFn& do_ban, TimePoint now);

    // Each loop turn: reap commands, enforce their time limit, emit pending
    // rate-limit summaries.
    void reap();
    void reap(TimePoint now);
    // SIGHUP: reopen history and blocked files (logrotate).
    void reopen();
    // SIGHUP with a new config: paths, resolver and command limits follow it.
    void reconfigure(const config::Config& cfg);

    const ResponderCounters& counters() const { return counters_; }
    const CommandRunner& commands() const { return runner_; }
    const Resolver& resolver() const { return *resolver_; }

private:
    struct Ctx;
    bool respond_block1(const Ctx& c, const BanFn& do_ban, HandleResult& res, TimePoint now);
    bool run_command(const Ctx& c, bool route, TimePoint now);
    bool hosts_deny(const Ctx& c, TimePoint now);
    void record(const Ctx& c, HandleResult& res, TimePoint now);
    AppendFile& blocked_file(const std::string& mode);
    void make_resolver();
    void remember_command(const std::string& ip, std::string key);

    // The last KILL_RUN_CMD argv run per host, for the de-duplication of a
    // second protocol's report (Decision::other_protocol); oldest forgotten first.
    static constexpr size_t kCommandsRemembered = 4096;
    std::unordered_map<std::string, std::string> commands_run_;
    std::deque<std::string> commands_order_;

    const config::Config* cfg_;
    Log& log_;
    ResponderOptions opts_;
    std::unique_ptr<Resolver> resolver_;
    CommandRunner runner_;
    AppendFile history_;
    std::map<std::string, AppendFile> blocked_;  // by mode
    TokenBucket record_bucket_;
    uint64_t pending_suppressed_ = 0;
    ResponderCounters counters_;
};

}  // namespace portsentry::actions
