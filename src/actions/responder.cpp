#include "portsentry/actions/responder.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "portsentry/actions/messages.hpp"

namespace portsentry::actions {

using engine::Decision;
using engine::ScanType;

namespace {

// Detection type when the caller did not name one: what 1.2's command-line
// flag would have been for this protocol's mode.
std::string default_mode(const config::Config& cfg, net::L4 proto) {
    const auto& pc = proto == net::L4::udp ? cfg.udp : cfg.tcp;
    const char* base = net::keyword(proto);
    switch (pc.mode) {
        case config::Mode::stealth: return std::string("s") + base;
        case config::Mode::advanced: return std::string("a") + base;
        default: return base;
    }
}

CommandOptions command_options(const CommandOptions& base, const config::Config& cfg) {
    CommandOptions o = base;
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.run_cmd_timeout);
    return o;
}

}  // namespace

std::string hosts_deny_line(std::string_view tmpl, const std::string& ip, uint16_t port, const std::string& mode,
                            const std::string& host, int* target_count) {
    return expand_macros(tmpl, Macros{ip, std::to_string(port), mode, host}, target_count);
}

struct Responder::Ctx {
    const Report& r;
    std::string ip;    // address text, the "IP" of every line
    std::string host;  // resolved name, or the address
    std::string mode;
    bool classic;      // -tcp/-udp tripwire: 1.2's "Connect from host" wording
};

Responder::Responder(const config::Config& cfg, Log& log, ResponderOptions opts)
    : cfg_(cfg),
      log_(log),
      opts_(std::move(opts)),
      hosts_deny_(cfg.hosts_deny_file, opts_.hosts_deny),
      runner_(log, command_options(opts_.command, cfg)),
      history_(cfg.history_file),
      record_bucket_(opts_.record_burst, opts_.record_per_second) {
    make_resolver();
    // A big hosts.deny (tens of thousands of lines) is read at start, not in
    // the middle of the first scan's responses.
    if (!cfg_.kill_hosts_deny.empty()) hosts_deny_.preload();
}

Responder::~Responder() = default;

void Responder::make_resolver() {
    ResolverOptions ro = opts_.resolver;
    ro.enabled = cfg_.resolve_host;
    auto r = std::make_unique<Resolver>(ro, opts_.lookup);
    std::lock_guard lk(resolver_mu_);
    resolver_ = std::move(r);
}

ResolverCounters Responder::resolver_counters() const {
    std::lock_guard lk(resolver_mu_);
    return resolver_->counters();
}

HandleResult Responder::handle(const Report& r, const BanFn& do_ban) {
    return handle(r, do_ban, Clock::now());
}

HandleResult Responder::handle(const Report& r, const BanFn& do_ban, TimePoint now) {
    HandleResult res;
    const Decision& d = r.d;
    if (d.outcome != Decision::Outcome::reported && d.outcome != Decision::Outcome::already_blocked)
        return res;
    if (d.outcome == Decision::Outcome::already_blocked && d.log_suppressed) return res;

    const std::string ip = r.src.unmapped().to_string();
    // Resolved per line, as 1.2 did; the resolver's cache and caps keep this cheap.
    Ctx c{r, ip, resolver_->resolve(r.src.unmapped()), r.mode.empty() ? default_mode(cfg_, r.proto) : r.mode,
          d.type == ScanType::tcp_connect || d.type == ScanType::udp_tripwire};

    // 1. what was seen
    if (c.classic)
        log_.write(msg::connect(c.host, ip, r.proto, r.port), now);
    else if (r.proto == net::L4::udp)
        log_.write(msg::udp_scan(c.host, ip, r.port), now);
    else
        log_.write(msg::tcp_scan(engine::scan_name(d.type, r.tcp_flags), c.host, ip, r.port), now);
    if (d.ip_options) log_.write(msg::ip_options(c.host, ip, r.proto, r.port), now);
    res.logged = true;

    if (d.outcome == Decision::Outcome::already_blocked) {
        log_.write(c.classic ? msg::classic_already_blocked(ip) : msg::already_blocked(c.host, ip), now);
        return res;
    }
    ++counters_.reports;

    // 2. responses (1.2 DisposeTCP/DisposeUDP)
    bool ok = true;
    switch (d.block) {
        case 1: ok = respond_block1(c, do_ban, res, now); break;
        case 2:
            if (d.run_cmd) ok = run_command(c, false, now);
            break;
        default: log_.write(msg::ignoring_response(r.proto), now); break;
    }
    res.responded_ok = ok;

    // 3. records, only after a successful dispose (1.2 WriteBlocked)
    if (ok) {
        record(c, res, now);
    } else {
        ++counters_.response_failures;
        log_.write(c.classic ? msg::classic_could_not_block(ip) : msg::could_not_block(c.host, ip), now);
    }
    return res;
}

bool Responder::respond_block1(const Ctx& c, const BanFn& do_ban, HandleResult& res, TimePoint now) {
    const Decision& d = c.r.d;
    bool ok = true;
    auto route = [&] {
        if (d.ban) {
            std::string err = do_ban ? do_ban() : std::string("no ban function configured");
            if (err.empty()) {
                ++counters_.bans_ok;
                res.banned = true;
                log_.write(msg::blocked_nft(c.ip, c.r.src.unmapped().is_v6()), now);
            } else {
                ++counters_.bans_failed;
                ok = false;
                log_.write(msg::nft_ban_failed(c.ip, err), now);
            }
        }
        // An admin's own KILL_ROUTE script runs after the native ban.
        if (d.custom_kill_route && !run_command(c, true, now)) ok = false;
    };
    auto deny = [&] {
        if (d.hosts_deny && !hosts_deny(c, now)) ok = false;
    };
    auto cmd = [&] {
        if (d.run_cmd && !run_command(c, false, now)) ok = false;
    };
    if (cfg_.kill_run_cmd_first) {
        const uint64_t started = runner_.counters().started;
        cmd();
        // 1.2's system() returned when the command did: the ban follows its
        // completion, or its time limit (reap() then stops it).
        if (runner_.counters().started != started) {
            counters_.commands_waited.inc();
            runner_.wait_newest(now + std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.run_cmd_timeout),
                                abort_);
        }
        route();
        deny();
    } else {
        route();
        deny();
        cmd();
    }
    return ok;
}

bool Responder::run_command(const Ctx& c, bool route, TimePoint now) {
    const char* key = route ? "KILL_ROUTE" : "KILL_RUN_CMD";
    const std::string& tmpl = route ? cfg_.kill_route : cfg_.kill_run_cmd;
    Macros m{c.ip, std::to_string(c.r.port), c.mode, c.host};
    std::string err;
    int targets = 0;
    auto argv = build_argv(tmpl, m, &err, &targets);
    if (!argv) {
        log_.write(msg::bad_command(key, err), now);
        return false;
    }
    if (route && targets == 0) {  // 1.2 KillRoute(): a route command without $TARGET$ is a mistake
        log_.write(msg::no_target_variable(key), now);
        return false;
    }
    // The second protocol's report of a host runs its own command (1.2's
    // other detector did), but not one identical to the command its first
    // protocol's report already ran for it (a template without $PORT$/$MODE$).
    std::string argv_key;
    if (!route) {
        for (const auto& w : *argv) argv_key.append(w).push_back('\0');
        if (c.r.d.other_protocol) {
            auto it = commands_run_.find(c.ip);
            if (it != commands_run_.end() && it->second == argv_key) {
                ++counters_.commands_deduplicated;
                return true;
            }
        }
    }
    const uint64_t refused_before = runner_.counters().refused;
    err = runner_.start(*argv, c.ip, now);
    if (!err.empty()) {
        if (runner_.counters().refused == refused_before)  // a refusal was logged by the runner
            log_.write(route ? msg::route_cmd_exec_failed(c.ip, err) : msg::run_cmd_exec_failed(c.ip, err),
                       now);
        return false;
    }
    const std::string shown = argv_for_log(*argv);
    log_.write(route ? msg::blocked_route_cmd(c.ip, shown) : msg::external_command(c.ip, shown), now);
    if (!route) remember_command(c.ip, std::move(argv_key));
    return true;
}

void Responder::remember_command(const std::string& ip, std::string key) {
    // Bounded: forgetting the oldest host only means a second protocol's
    // identical command may run once more for it.
    auto [it, fresh] = commands_run_.insert_or_assign(ip, std::move(key));
    (void)it;
    if (!fresh) return;
    commands_order_.push_back(ip);
    if (commands_order_.size() > kCommandsRemembered) {
        commands_run_.erase(commands_order_.front());
        commands_order_.pop_front();
    }
}

bool Responder::hosts_deny(const Ctx& c, TimePoint now) {
    int targets = 0;
    const std::string line = hosts_deny_line(cfg_.kill_hosts_deny, c.ip, c.r.port, c.mode, c.host, &targets);
    if (targets == 0) {  // as 1.2 KillHostsDeny(): a line that names nobody blocks nobody
        log_.write(msg::no_target_variable("KILL_HOSTS_DENY"), now);
        ++counters_.hosts_deny_failed;
        return false;
    }
    // The line ends with the ban (its escalated length: do_ban ran before).
    std::optional<TimePoint> until;
    if (c.r.d.ban_time.count() > 0) until = c.r.seen.value_or(now) + c.r.d.ban_time;
    HostsDenyResult r = hosts_deny_.add(line, c.r.src.unmapped(), until);
    switch (r.status) {
        case HostsDenyResult::Status::added: ++counters_.hosts_deny_added; break;
        case HostsDenyResult::Status::already_present: ++counters_.hosts_deny_present; break;
        case HostsDenyResult::Status::failed:
            ++counters_.hosts_deny_failed;
            log_.write(msg::hosts_deny_failed(cfg_.hosts_deny_file, r.error), now);
            log_.write(msg::security_block_error(c.ip), now);
            return false;
    }
    log_.write(msg::blocked_wrappers(c.ip, line), now);
    return true;
}

size_t Responder::adopt_hosts_deny(const std::vector<RestoredBan>& bans, TimePoint now) {
    if (cfg_.kill_hosts_deny.empty() || bans.empty()) return 0;
    const std::time_t wall = opts_.wall_clock ? opts_.wall_clock() : std::time(nullptr);
    // $MODE$ was the mode of the ban's protocol then: the config may have
    // changed it since, so each of that protocol's modes is tried.
    const bool any_mode = cfg_.kill_hosts_deny.find("$MODE$") != std::string::npos;
    size_t adopted = 0;
    hosts_deny_.preload();  // read again if it changed since the constructor read it
    for (const auto& b : bans) {
        const net::IpAddr ip = b.ip.unmapped();
        const std::string text = ip.to_string();
        std::optional<TimePoint> until;
        // Ended since the loop restored it (the ban was active then): due now.
        if (b.expires != 0) until = now + std::chrono::seconds(std::max<int64_t>(b.expires - wall, 0));
        std::vector<std::string> modes{default_mode(cfg_, b.proto)};
        if (any_mode) {
            const std::string base = net::keyword(b.proto);
            for (const auto& m : {base, "s" + base, "a" + base})
                if (m != modes.front()) modes.push_back(m);
        }
        for (const auto& mode : modes) {
            int targets = 0;
            const std::string line = hosts_deny_line(cfg_.kill_hosts_deny, text, b.port, mode, text, &targets);
            if (targets == 0) return adopted;  // the template names nobody: we never wrote a line
            if (hosts_deny_.adopt(line, ip, until)) ++adopted;
        }
    }
    if (adopted > 0)
        log_.write(fmt::format("portsentry-nfq: {} hosts.deny line{} of restored bans in {}: removed when the ban ends",
                               adopted, adopted == 1 ? "" : "s", hosts_deny_.path()),
                   now);
    return adopted;
}

AppendFile& Responder::blocked_file(const std::string& mode) {
    auto it = blocked_.find(mode);
    if (it == blocked_.end())
        it = blocked_.emplace(mode, AppendFile(blocked_file_path(cfg_.blocked_file, mode))).first;
    return it->second;
}

void Responder::record(const Ctx& c, HandleResult& res, TimePoint now) {
    // Spoofed sources are free for an attacker; disk and fail2ban are not.
    if (!record_bucket_.take(now)) {
        ++pending_suppressed_;
        ++counters_.records_suppressed;
        return;
    }
    if (pending_suppressed_ > 0) {
        log_.write(msg::records_suppressed(pending_suppressed_), now);
        pending_suppressed_ = 0;
    }
    const std::time_t when = opts_.wall_clock ? opts_.wall_clock() : std::time(nullptr);
    const std::string line = msg::history_record(when, c.host, c.ip, c.r.port, c.r.proto);
    bool ok = true;
    AppendFile& blocked = blocked_file(c.mode);
    if (auto err = blocked.append(line); !err.empty()) {
        ok = false;
        ++counters_.file_errors;
        log_.write(msg::blocked_failed(blocked.path(), err), now);
    }
    if (auto err = history_.append(line); !err.empty()) {
        ok = false;
        ++counters_.file_errors;
        log_.write(msg::history_failed(history_.path(), err), now);
    }
    if (ok) ++counters_.records_written;
    res.recorded = ok;
}

void Responder::reap() { reap(Clock::now()); }

void Responder::reap(TimePoint now) {
    runner_.reap(now);
    if (auto err = hosts_deny_.maintain(now); !err.empty())  // retried (and logged) once per interval at most
        log_.write(msg::hosts_deny_failed(hosts_deny_.path(), err), now);
    log_.flush(now);
    if (pending_suppressed_ > 0 && record_bucket_.would_allow(now)) {
        log_.write(msg::records_suppressed(pending_suppressed_), now);
        pending_suppressed_ = 0;
    }
}

void Responder::reopen() {
    // Reported now, at SIGHUP, rather than at the next detection.
    if (auto err = history_.reopen(); !err.empty())
        log_.write(msg::history_failed(history_.path(), err));
    for (auto& [mode, f] : blocked_) {
        if (auto err = f.reopen(); !err.empty()) log_.write(msg::blocked_failed(f.path(), err));
    }
}

void Responder::reconfigure(const config::Config& cfg) {
    const bool resolve_changed = cfg.resolve_host != cfg_.resolve_host;
    if (cfg.hosts_deny_file != cfg_.hosts_deny_file) hosts_deny_.reset(cfg.hosts_deny_file);
    cfg_ = cfg;
    history_ = AppendFile(cfg.history_file);
    blocked_.clear();  // reopened lazily under the (possibly new) BLOCKED_FILE
    runner_.set_options(command_options(opts_.command, cfg));
    if (resolve_changed) make_resolver();
}

}  // namespace portsentry::actions
