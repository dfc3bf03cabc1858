#include "portsentry/daemon/service.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>
#include <random>
#include <system_error>

#include "portsentry/actions/log.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/base/error.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/fleet.hpp"
#include "portsentry/daemon/keepers.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/metrics.hpp"
#include "portsentry/daemon/metrics_http.hpp"
#include "portsentry/daemon/notify.hpp"
#include "portsentry/daemon/probe_path.hpp"
#include "portsentry/daemon/reload.hpp"
#include "portsentry/daemon/responses.hpp"
#include "portsentry/daemon/settings.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_saver.hpp"
#include "portsentry/daemon/stats.hpp"
#include "portsentry/daemon/tripwires.hpp"
#include "portsentry/daemon/views.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/kernel/nflog.hpp"
#include "portsentry/kernel/nfqueue.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::daemon {

namespace {

BanSettings ban_settings(const config::Config& c) {
    return {engine::BanPolicy::from_settings(engine_settings(c)), c.ban_set_size, c.ignore.entries()};
}

// SIGTERM/SIGINT during start-up. Signals are blocked before Service is built
// (daemon.cpp run()) and the signalfd is read only once the loop runs, so a
// signal sent meanwhile waits in the pending set: start() looks there between
// phases and in its long loops (a million-ban restore), and gives up cleanly.
struct StartInterrupted {
    int signo;
};

void stop_if_asked() {
    sigset_t pending;
    if (::sigpending(&pending) < 0) return;
    for (int s : {SIGTERM, SIGINT})
        if (sigismember(&pending, s)) throw StartInterrupted{s};
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

}  // namespace

// BanListener: what the ban manager's decisions mean for the other parts.
// CommandHandler: the control socket's commands, answered live.
struct Service::Impl final : BanListener, CommandHandler {
    Options opts;
    std::unique_ptr<config::Config> cfg;
    // Lines are emitted on the log's own thread: syslog() must not hold the loop.
    actions::Log log{actions::LogOptions{.use_syslog = true, .foreground = true, .async = true}};
    Loop loop;
    JsonEvents events{log};
    BanStore store;
    LockFile lock;
    kernel::Nft nft;
    engine::Engine engine;
    ProtectionKeeper protection;
    RulesetKeeper ruleset{loop, nft, log};
    BanManager bans;
    StateSaver saver;
    Fleet fleet;
    std::unique_ptr<actions::Responder> responder;
    std::unique_ptr<ProbePath> probes;
    // After responder and probes: destroyed (stopped and joined) before them.
    std::unique_ptr<ResponseWorker> worker;
    std::unique_ptr<Tripwires> tripwires;
    std::unique_ptr<kernel::PacketSource> source;
    std::unique_ptr<ControlServer> control;
    std::unique_ptr<SystemdNotifier> notifier;
    kernel::Backend backend = kernel::Backend::nflog;
    Stats stats;
    int signal_fd = -1, timer_fd = -1, drain_fd = -1;
    bool draining = false;
    // After `stats` and every part whose cells it reads: destroyed first, so
    // no scrape runs while they go (its destructor joins the HTTP threads).
    std::unique_ptr<MetricsEndpoint> metrics_http;
    const std::time_t started = std::time(nullptr);

    Impl(const Options& o, std::unique_ptr<config::Config> c)
        : opts(o),
          cfg(std::move(c)),
          store(cfg->state_file),
          engine(engine_settings(*cfg), std::random_device{}() | (uint64_t{std::random_device{}()} << 32)),
          protection(loop, o.no_ruleset ? nullptr : &nft, log),
          bans(store, o.no_ruleset ? nullptr : &nft, *this, ban_settings(*cfg), &protection.current()),
          saver(store, [this](const std::string& l) { log.write(l); }),
          fleet(loop, o.no_ruleset ? nullptr : &nft, store, [this](const std::string& l) { log.write(l); },
                cfg->state_file) {
        engine.set_protection(&protection.current());
    }

    ~Impl() override {
        worker.reset();  // joined while the loop and the parts it calls still exist
        if (signal_fd >= 0) ::close(signal_fd);
        if (timer_fd >= 0) ::close(timer_fd);
        if (drain_fd >= 0) ::close(drain_fd);
    }

    void start();
    void apply_ruleset();
    void restore_ruleset(const char* why);
    void adopt_hosts_deny();
    void open_source();
    void open_timers();
    void on_signal();
    void drain(int signo);
    void exit_now(int signo);
    void on_tick();
    ControlReply reload() override;
    std::string status_line();
    void register_all_metrics();

    // BanListener
    void blocked(const net::IpAddr& a, std::optional<std::chrono::seconds> left) override {
        std::optional<engine::TimePoint> until;
        if (left) until = loop.now().steady + *left;
        engine.mark_blocked(a, loop.now().steady, until);
    }
    void forgotten(const net::IpAddr& a) override {
        engine.forget(a);
        if (worker) worker->ban_ended(a);  // its hosts.deny line goes
    }
    void event(const char* name, nlohmann::ordered_json fields) override { events.emit(name, std::move(fields)); }
    void note(const std::string& line) override { log.write(line); }
    void detected(const BanRecord& r, bool proven, int64_t now) override { fleet.detected(r, proven, now); }
    void changed(bool soon) override {
        // Every change is journaled by the idle step; one someone waits
        // for is formatted right away.
        if (soon) saver.save_soon(loop.now().steady);
    }

    // CommandHandler
    ControlReply status(bool json) override;
    ControlReply list(bool json) override { return render_list(store, json, loop.now().wall, &fleet.store()); }
    ControlReply why(const std::string& addr) override;
    ControlReply ban(const net::Cidr& c, std::optional<std::chrono::seconds> t, const std::string& origin) override {
        auto r = bans.ban(c, origin, t, loop.now().wall);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        return {0, fmt::format("banned {}{}\n", c.to_string(),
                               r.time.count() > 0 ? fmt::format(" for {}s", r.time.count()) : " permanently")};
    }
    ControlReply unban(const net::Cidr& c) override {
        const int64_t now = loop.now().wall;
        // Lifting a fleet decision is the LAPI's job: refused, nothing done.
        if (store.within(c, now, true).empty() && !store.covering(c.addr, now))
            if (auto f = fleet.why(c.addr, now))
                return {1, *f + fmt::format("error: {} is banned by the fleet, not by this host: lift it at the LAPI "
                                            "(cscli decisions delete --ip {})\n",
                                            c.to_string(), c.addr.to_string())};
        const BanRecord* own = store.find(c);
        const bool pushed = own && own->origin == "detector" && own->active(now);
        auto r = bans.unban(c, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        if (pushed) fleet.unbanned(c);  // the decision this host pushed goes too
        return {0, render_unban(store, c, r.lifted, now)};
    }
};

void Service::Impl::start() {
    log.write(fmt::format("portsentry-nfq: {}; ignore list: {}", opts.resolved.why,
                          cfg->ignore_file.empty() ? std::string("none")
                                                   : fmt::format("{} + {}.static ({} entries)", cfg->ignore_file,
                                                                 cfg->ignore_file, cfg->ignore.entries().size())));
    lock = LockFile::acquire(cfg->control_socket + ".lock", false);
    if (!lock.locked())
        throw std::runtime_error("another portsentry-nfq already runs with control socket " + cfg->control_socket);
    prepare_directories(*cfg);
    // Before the kernel is touched: an explicit listen address that cannot be
    // bound stops the start (an admin who asked for metrics gets them, or an
    // error naming the address), and nothing is left half-started.
    if (!cfg->metrics.listen.empty())
        metrics_http = std::make_unique<MetricsEndpoint>(*config::parse_listen(cfg->metrics.listen, nullptr), stats);
    // Lookups are started when a report is queued (ResponseWorker::submit);
    // the worker only waits for the rest of one, never starts one in turn.
    actions::ResponderOptions ropts;
    ropts.resolver.prefetch_only = true;
    responder = std::make_unique<actions::Responder>(*cfg, log, ropts);
    events.open(cfg->json_log);
    std::vector<std::string> warnings;
    store.load(&warnings, stop_if_asked);
    for (const auto& w : warnings) log.write("portsentry-nfq: " + w);
    stop_if_asked();
    saver.start();  // from here on every change is journaled
    fleet.load(loop.now().wall);
    bans.forget_history(loop.now().wall);
    backend = ruleset.choose(cfg->steer);
    protection.start(*cfg);
    stop_if_asked();
    // Ruleset first, then the queue: packets that arrive in between are
    // accepted by `bypass` (fail-open), never lost.
    apply_ruleset();
    stop_if_asked();
    fleet.set_quiet([this](const std::function<void()>& f) { ruleset.quietly(f); });
    if (!opts.no_ruleset)
        ruleset.watch([this](const char* why) { restore_ruleset(why); },
                      [this](const std::vector<net::IpAddr>& starts, const Now& n) { bans.forget_foreign(starts, n.wall); });
    fleet.configure(*cfg, &protection.current());
    probes = std::make_unique<ProbePath>(engine, bans, log, events, *cfg);
    worker = std::make_unique<ResponseWorker>(
        loop, *responder, log, [this](const actions::Report& r, const Now& n) { return probes->ban_now(r, n); },
        [this](const ResponseWorker::Done& d, const Now& n) { probes->on_done(d, n); });
    probes->set_worker(worker.get());
    adopt_hosts_deny();
    open_source();
    bans.replay_blocked(loop.now().wall);
    tripwires = std::make_unique<Tripwires>(
        loop, [this](const net::IpAddr& src, net::L4 p, uint16_t port, const Now& n) { probes->on_tripwire(src, p, port, n); },
        [this](const std::string& l) { log.write(l); });
    tripwires->reconcile(*cfg);
    control = std::make_unique<ControlServer>(cfg->control_socket);
    loop.add(control->fd(), "control command", [this](const Now&) {
        control->serve_one([this](const std::string& line) { return dispatch_command(line, *this); });
    });
    loop.add_idle("state serializing", [this] { return saver.pending(); }, [this](const Now& n) { saver.step(n.steady); });
    open_timers();
    register_all_metrics();
    notifier = std::make_unique<SystemdNotifier>(loop);
    // The queue is bound: start-up changes (trimmed or forgotten records)
    // are journaled in slices by the idle step, never in one go on the loop.
    saver.tick(loop.now().steady);
}

// After a restart, the hosts.deny lines the daemon wrote for bans it still
// holds are its own again (removed when those bans end). Only detector bans
// of one address write a line; the worker reads the file, not the loop.
void Service::Impl::adopt_hosts_deny() {
    if (cfg->kill_hosts_deny.empty()) return;
    const int64_t now = loop.now().wall;
    std::vector<actions::RestoredBan> restored;
    for (const auto& [prefix, r] : store.records()) {
        if (r.origin != "detector" || !r.active(now) || prefix != net::Cidr::host(prefix.addr)) continue;
        actions::RestoredBan b;
        b.ip = prefix.addr;
        b.proto = r.last_proto == "UDP" ? net::L4::udp : net::L4::tcp;
        b.port = r.last_port;
        b.expires = r.expires;
        restored.push_back(b);
    }
    worker->adopt_hosts_deny(std::move(restored));
}

void Service::Impl::apply_ruleset() {
    bans.trim(loop.now().wall);
    if (opts.no_ruleset) return;
    auto spec = kernel::RulesetSpec::from_config(*cfg, backend);
    spec.never = protection.current().prefixes();
    nft.apply(spec, bans.active_elements(loop.now().wall), fleet.elements(loop.now().wall));
    fleet.applied(loop.now().wall);
    ruleset.applied();
}

// Someone removed our table or part of it: table, never-ban sets and every
// active ban go back in one transaction.
void Service::Impl::restore_ruleset(const char* why) {
    try {
        apply_ruleset();
        ruleset.count_restore();
        log.write(fmt::format("portsentry-nfq: {}: table inet portsentry restored with {} bans", why,
                              bans.active_count(loop.now().wall)));
    } catch (const std::exception& e) {
        log.write(fmt::format("portsentry-nfq: cannot restore ruleset: {}", e.what()));
    }
}

void Service::Impl::open_source() {
    if (source) loop.remove(source->fd());
    source.reset();  // unbind first: the new one may use the same number
    if (backend == kernel::Backend::nflog)
        source = std::make_unique<kernel::NfLog>(cfg->nflog_group);
    else
        source = std::make_unique<kernel::NfQueue>(cfg->queue_num);
    loop.add(source->fd(), "packets", [this](const Now& n) {
        try {
            source->process([&](std::span<const uint8_t> l3) { return probes->on_packet(l3, n); });
        } catch (const std::exception& e) {
            log.write(fmt::format("portsentry-nfq: packet source: {}", e.what()));
        }
        probes->flush(n);
    });
}

void Service::Impl::open_timers() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
    signal_fd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) throw base::sys_error("signalfd");
    loop.add(signal_fd, "signal", [this](const Now&) { on_signal(); });
    timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (timer_fd < 0) throw base::sys_error("timerfd_create");
    // One housekeeping tick per second: expiry, child reaping, state save,
    // metrics sampling, and the fallback check that our table still exists.
    itimerspec its{{1, 0}, {1, 0}};
    ::timerfd_settime(timer_fd, 0, &its, nullptr);
    loop.add(timer_fd, "tick", [this](const Now&) {
        uint64_t ticks;
        while (::read(timer_fd, &ticks, sizeof ticks) > 0) {
        }
        on_tick();
    });
}

void Service::Impl::on_signal() {
    signalfd_siginfo si;
    while (::read(signal_fd, &si, sizeof si) == sizeof si) {
        switch (si.ssi_signo) {
            case SIGHUP: reload(); break;
            case SIGCHLD: worker->wake(); break;
            case SIGTERM:
            case SIGINT: drain(static_cast<int>(si.ssi_signo)); return;
        }
    }
}

// Responses still queued or running (a KILL_RUN_CMD_FIRST command, its ban)
// get run_cmd_timeout + 1 s to finish; the loop keeps serving meanwhile
// (verdicts, the bans the worker asks for). Then, or as soon as the worker
// is idle, the state is saved and the loop stops.
void Service::Impl::drain(int signo) {
    if (draining) return;
    draining = true;
    notifier->stopping();
    if (worker->idle()) return exit_now(signo);
    const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(cfg->run_cmd_timeout) +
                       std::chrono::seconds(1);
    log.write(fmt::format("portsentry-nfq: {}: finishing pending responses (at most {} ms)",
                          signo == SIGTERM ? "SIGTERM" : "SIGINT", limit.count()));
    drain_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (drain_fd < 0) return exit_now(signo);
    itimerspec its{};
    its.it_value.tv_sec = limit.count() / 1000;
    its.it_value.tv_nsec = (limit.count() % 1000) * 1000000;
    ::timerfd_settime(drain_fd, 0, &its, nullptr);
    loop.add(drain_fd, "exit deadline", [this, signo](const Now&) {
        log.write(fmt::format("portsentry-nfq: {} responses abandoned at the exit deadline", worker->waiting()));
        exit_now(signo);
    });
    worker->on_idle([this, signo] { exit_now(signo); });
}

void Service::Impl::exit_now(int signo) {
    worker->on_idle({});
    if (drain_fd >= 0) loop.remove(drain_fd);
    saver.save_now();
    fleet.save_now();
    // The table stays: bans keep dropping, and `bypass` answers probes again.
    log.write(fmt::format("portsentry-nfq: exiting on {}; table inet portsentry and its bans stay in place",
                          signo == SIGTERM ? "SIGTERM" : "SIGINT"));
    loop.stop();
}

void Service::Impl::on_tick() {
    worker->tick(loop.now());
    events.tick(loop.now());
    protection.tick(loop.now());
    bans.forget_history(loop.now().wall);
    saver.tick(loop.now().steady);
    fleet.tick(loop.now());
    ruleset.tick(loop.now());
    stats.sample();
    notifier->status(status_line());
}

// systemd's STATUS= line: `status` in one line.
std::string Service::Impl::status_line() {
    stats.sample();
    uint64_t bans_now = 0, drops = 0;
    for (const auto& m : stats.snapshot()) {
        const auto k = m.key();
        if (m.name == "portsentry_active_bans" && k.find("fleet") == std::string::npos)  // banned, banned6
            bans_now += static_cast<uint64_t>(m.value);
        else if (k == "portsentry_engine_verdicts_total{verdict=\"drop\"}")
            drops = static_cast<uint64_t>(m.value);
    }
    return fmt::format("backend {}; {} bans; {} probes dropped", kernel::to_string(backend), bans_now, drops);
}

ControlReply Service::Impl::why(const std::string& addr) {
    auto r = render_why(store, {cfg->ignore, &protection.current(), engine::BanPolicy::from_settings(engine.settings())}, addr,
                        loop.now().wall);
    auto a = net::IpAddr::parse(addr);
    if (!a || r.status != 0) return r;
    if (auto f = fleet.why(*a, loop.now().wall)) r.text += *f;
    if (cfg->ignore.match(*a) || protection.current().match(*a)) return r;  // the engine never tracks them
    auto info = engine.source_info(*a, loop.now().steady);
    if (!info) {
        r.text += fmt::format("{}: no probe from it is remembered (none, or forgotten by the max_tracked_sources cap)\n",
                              addr);
        return r;
    }
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(loop.now().steady - info->last_probe).count();
    r.text += fmt::format("{}: last probe {}s ago{}; {} probe{} counting toward scan_trigger; engine: {}\n", addr, ago,
                          info->last_rate_limited ? ", RATE-LIMITED: the trigger fired but a ban-rate cap was reached "
                                                    "(dropped and logged, not banned)"
                                                  : ", not rate-limited",
                          info->count, info->count == 1 ? "" : "s", info->blocked ? "blocked" : "not blocked");
    return r;
}

ControlReply Service::Impl::status(bool json) {
    stats.sample();
    const auto snap = stats.snapshot();
    StatusInfo info{PORTSENTRY_VERSION,
                    format_epoch(started),
                    cfg->source_file + (cfg->dry_run ? " (dry run)" : ""),
                    fmt::format("tcp: {} block {}  udp: {} block {}", config::to_string(cfg->tcp.mode), cfg->tcp.block,
                                config::to_string(cfg->udp.mode), cfg->udp.block),
                    fmt::format("{} ({})", kernel::to_string(backend), source->describe()),
                    protection_summary(protection.current()),
                    loop.timing().longest_what,
                    saver.error()};
    return {0, json ? render_status_json(info, snap) : render_status_text(info, snap)};
}

// Registered into a fresh table that replaces the live one in one step: a
// scrape during a reload sees the old table or the new one, never half.
void Service::Impl::register_all_metrics() {
    Stats fresh;
    register_metrics(fresh,
                     MetricParts{engine, *source, *responder, *worker, log, events, bans, saver, loop, ruleset, *probes, store,
                                 protection, fleet, tripwires->size(), cfg->queue_num, backend});
    stats.adopt(std::move(fresh));
}

// SIGHUP: every setting the key table names is compared; the parts take the
// new config as a whole, except the restart-only keys (reload.cpp).
ControlReply Service::Impl::reload() {
    notifier->reloading();
    const auto refused = [this](const std::string& why) {
        notifier->reloaded(status_line(), why);
        return ControlReply{1, why + "\nreload refused: keeping the running configuration\n"};
    };
    std::unique_ptr<config::Config> next;
    try {
        next = std::make_unique<config::Config>(load_config(opts));
    } catch (const config::ConfigError& e) {
        std::string diags;
        for (const auto& d : e.diagnostics()) {
            log.write("portsentry-nfq: reload: " + d.to_string());
            diags += (diags.empty() ? "" : "\n") + d.to_string();
        }
        log.write("portsentry-nfq: reload failed: keeping the running configuration");
        return refused(diags);
    } catch (const std::exception& e) {
        log.write(fmt::format("portsentry-nfq: reload failed ({}): keeping the running configuration", e.what()));
        return refused(fmt::format("{}: {}", opts.config_path, e.what()));
    }
    const ReloadPlan plan = plan_reload(*cfg, *next);
    try {
        prepare_directories(*next);
    } catch (const std::exception& e) {
        log.write(fmt::format("portsentry-nfq: reload failed ({}): keeping the running configuration", e.what()));
        return refused(e.what());
    }
    auto old = std::move(cfg);
    cfg = std::move(next);
    auto next_protection = protection.gather_for(*cfg);
    auto old_protection = protection.current();
    protection.install(*cfg, std::move(next_protection));
    bans.reconfigure(ban_settings(*cfg));
    try {
        apply_ruleset();
    } catch (const std::exception& e) {
        log.write(fmt::format("portsentry-nfq: reload: ruleset rejected ({}): keeping the running configuration",
                              e.what()));
        cfg = std::move(old);
        protection.install(*cfg, std::move(old_protection));
        bans.reconfigure(ban_settings(*cfg));
        return refused(fmt::format("{}: ruleset rejected: {}", cfg->source_file, e.what()));
    }
    engine.reconfigure(engine_settings(*cfg));
    worker->reconfigure(*cfg);
    worker->reopen();
    try {
        fleet.configure(*cfg, &protection.current());
    } catch (const std::exception& e) {
        log.write(fmt::format("portsentry-nfq: reload: fleet off: {}", e.what()));
    }
    probes->reconfigure(*cfg);
    events.open(cfg->json_log);
    tripwires->reconcile(*cfg);
    if (cfg->queue_num != old->queue_num || cfg->nflog_group != old->nflog_group) open_source();
    register_all_metrics();
    if (cfg->metrics.listen != old->metrics.listen)
        rebind_metrics(metrics_http, cfg->metrics.listen, old->metrics.listen, stats,
                       [this](const std::string& l) { log.write(l); });
    for (const auto& k : plan.needs_restart)
        log.write(fmt::format("portsentry-nfq: reload: {} changed: needs a restart (still using {})", k,
                              config::format_value(*config::find_yaml_key(k), *cfg)));
    const auto done = fmt::format("configuration reloaded from {}{}", cfg->source_file,
                                  plan.changed.empty() ? " (no setting changed)" : " (changed: " + join(plan.changed) + ")");
    log.write("portsentry-nfq: " + done);
    notifier->reloaded(status_line());
    return {0, done + "\n"};
}

Service::Service(const Options& o) {
    impl_ = std::make_unique<Impl>(o, std::make_unique<config::Config>(load_config(o)));
    try {
        impl_->start();
    } catch (const StartInterrupted& s) {
        // Whatever start() got to stays as it is: an applied table keeps its
        // bans (as after any SIGTERM); the state file is untouched.
        impl_->log.write(fmt::format("portsentry-nfq: exiting on {} during start-up, before ready",
                                     s.signo == SIGTERM ? "SIGTERM" : "SIGINT"));
        interrupted_ = true;
    }
}

Service::~Service() = default;

int Service::run() {
    if (interrupted_) return 0;
    auto& m = *impl_;
    if (m.metrics_http)
        m.log.write(fmt::format("portsentry-nfq: serving metrics at http://{}/metrics", m.metrics_http->address()));
    m.log.write(fmt::format("portsentry-nfq: ready: tcp {} ({}), udp {} ({}), {} bans restored{}",
                            config::to_string(m.cfg->tcp.mode), m.cfg->tcp.block, config::to_string(m.cfg->udp.mode),
                            m.cfg->udp.block, m.bans.active_count(m.loop.now().wall), m.cfg->dry_run ? ", DRY RUN" : ""));
    m.notifier->ready(m.status_line());
    m.loop.run();
    return 0;
}

}  // namespace portsentry::daemon
