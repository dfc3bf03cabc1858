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
//           (1.2 ran hosts.deny before the route; we ban first, the ban being
//           the response that matters). With KILL_RUN_CMD_FIRST the command
//           completes (or reaches run_cmd_timeout) before the ban, as 1.2's
//           system() did: handle() waits for it, so it runs off the packet
//           thread (daemon/responses.cpp);
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

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "portsentry/actions/command.hpp"
#include "portsentry/actions/files.hpp"
#include "portsentry/actions/hosts_deny.hpp"
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
    // When the packet was judged (the loop's clock): a hosts.deny line ends
    // with the ban, at seen + d.ban_time. Default: when handle() runs.
    std::optional<TimePoint> seen;
};

// A detector ban of one address that the daemon restored from its state file
// at start-up: the daemon that ran before may have written its hosts.deny line.
struct RestoredBan {
    net::IpAddr ip;
    net::L4 proto = net::L4::tcp;  // of the probe that got it banned
    uint16_t port = 0;             // ditto
    int64_t expires = 0;           // epoch seconds; 0 = permanent
};

// The KILL_HOSTS_DENY line for a ban of `ip` (address text), the one place it
// is built: `tmpl` with $TARGET$ = ip, $PORT$, $MODE$, $HOST$ = host.
// *target_count gets how many $TARGET$ it named (0: the line names nobody).
std::string hosts_deny_line(std::string_view tmpl, const std::string& ip, uint16_t port, const std::string& mode,
                            const std::string& host, int* target_count = nullptr);

// The nft-set ban: returns "" on success or the error text. Called at the
// point in the order where 1.2 ran KillRoute(). It may update the report's
// d.ban_time (escalation) before hosts.deny reads it.
using BanFn = std::function<std::string()>;

struct HandleResult {
    bool logged = false;     // an attackalert line was written (or rate-limited)
    bool responded_ok = true;// every response that ran succeeded
    bool banned = false;     // BanFn ran and succeeded
    bool recorded = false;   // history and blocked records appended
};

// Written by the thread that runs handle() (the daemon's response worker),
// read by the loop's metrics: single-writer atomic cells.
struct ResponderCounters {
    base::Counter reports;
    base::Counter records_written;
    base::Counter records_suppressed;  // history/blocked rate limit
    base::Counter file_errors;         // history/blocked open/write failures
    base::Counter bans_ok;
    base::Counter bans_failed;
    base::Counter hosts_deny_added;
    base::Counter hosts_deny_present;
    base::Counter hosts_deny_failed;
    base::Counter response_failures;      // "Could not block host" reports
    base::Counter commands_deduplicated;  // a second protocol's KILL_RUN_CMD identical to the first's
    base::Counter commands_waited;        // KILL_RUN_CMD_FIRST: waited for before the ban
};

struct ResponderOptions {
    ResolverOptions resolver;          // .enabled and nothing else is overridden by cfg.resolve_host
    Resolver::LookupFn lookup;         // default: getnameinfo
    CommandOptions command;            // .timeout is overridden by cfg.run_cmd_timeout
    double record_burst = 200;         // history/blocked records back to back
    double record_per_second = 20;     // sustained records per second under a flood
    HostsDenyOptions hosts_deny;       // rewrite interval; rename (tests inject EBUSY)
    std::function<std::time_t()> wall_clock;  // default: time(nullptr) (tests pin it)
};

// One thread at a time: the daemon runs it on its response worker (handle,
// reap, reopen, reconfigure, ban_ended all there); counters() and
// resolver_counters() may be read from any thread.
class Responder {
public:
    // `cfg` is copied (the worker must not share the loop's config, which a
    // reload replaces); `log` must outlive the responder.
    Responder(const config::Config& cfg, Log& log, ResponderOptions opts = {});
    ~Responder();
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;

    HandleResult handle(const Report& r, const BanFn& do_ban);
    HandleResult handle(const Report& r, const BanFn& do_ban, TimePoint now);

    // Regularly: reap commands, enforce their time limit, emit pending
    // rate-limit summaries, remove hosts.deny lines of ended bans (batched).
    void reap();
    void reap(TimePoint now);
    // Set by the daemon's worker: a KILL_RUN_CMD_FIRST wait ends when it turns true (exit).
    void set_abort(const std::atomic<bool>* abort) { abort_ = abort; }
    // Any thread (the daemon's loop, when it queues a report): start the
    // reverse lookup handle() will want, so lookups overlap.
    void prefetch(const net::IpAddr& a) {
        std::lock_guard lk(resolver_mu_);
        resolver_->prefetch(a.unmapped());
    }
    // A ban ended early (unban, eviction): its hosts.deny lines go at the next clean-up.
    void ban_ended(const net::IpAddr& a) { hosts_deny_.ended(a.unmapped()); }
    // Start-up: the hosts.deny lines of restored bans that the daemon wrote
    // before a restart (the exact line of the template, present in the file)
    // become this responder's again, and go when their bans end. $HOST$ is
    // taken as the address (a line with a resolved name is not recognised);
    // $MODE$ as any mode of the ban's protocol. Returns how many were adopted.
    size_t adopt_hosts_deny(const std::vector<RestoredBan>& bans, TimePoint now);
    // SIGHUP: reopen history and blocked files (logrotate).
    void reopen();
    // SIGHUP with a new config: paths, resolver and command limits follow it.
    void reconfigure(const config::Config& cfg);

    const ResponderCounters& counters() const { return counters_; }
    const CommandRunner& commands() const { return runner_; }
    ResolverCounters resolver_counters() const;
    const HostsDenyFile& hosts_deny_file() const { return hosts_deny_; }

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

    config::Config cfg_;
    Log& log_;
    ResponderOptions opts_;
    mutable std::mutex resolver_mu_;  // resolver_ is replaced on reconfigure; metrics read it
    std::unique_ptr<Resolver> resolver_;
    HostsDenyFile hosts_deny_;
    CommandRunner runner_;
    AppendFile history_;
    std::map<std::string, AppendFile> blocked_;  // by mode
    TokenBucket record_bucket_;
    uint64_t pending_suppressed_ = 0;
    ResponderCounters counters_;
    const std::atomic<bool>* abort_ = nullptr;
};

}  // namespace portsentry::actions
