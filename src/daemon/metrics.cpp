#include "portsentry/daemon/metrics.hpp"

#include <netinet/in.h>

#include <fmt/format.h>

#include "portsentry/kernel/nfqueue.hpp"

namespace portsentry::daemon {

namespace {

// Sampled figures read a plain struct on the loop thread (Stats::sample).
template <class F>
auto fn(F f) {
    return std::function<uint64_t()>([f] { return static_cast<uint64_t>(f()); });
}

void engine_metrics(Stats& s, const engine::Engine& e) {
    const auto& c = e.counters();
    const char* n = "portsentry_engine_probes_total";
    const char* h = "steered probes the engine judged, by outcome";
    s.counter_fn(n, {{"outcome", "not_watched"}}, h, fn([&c] { return c.not_watched; }));
    s.counter_fn(n, {{"outcome", "ignored"}}, h, fn([&c] { return c.ignored; }));
    s.counter_fn(n, {{"outcome", "counting"}}, h, fn([&c] { return c.counting; }));
    s.counter_fn(n, {{"outcome", "reported"}}, h, fn([&c] { return c.reported; }));
    s.counter_fn(n, {{"outcome", "already_blocked"}}, h, fn([&c] { return c.already_blocked; }));
    s.counter_fn("portsentry_protected_hits_total", {}, "probes from protected (never-ban) sources",
                 fn([&c] { return c.protected_hits; }));
    s.counter_fn("portsentry_rate_limited_total", {},
                 "detections not banned because a ban-rate cap was reached (dropped and logged)",
                 fn([&c] { return c.rate_limited; }));
    s.counter_fn("portsentry_engine_packets_total", {}, "probes seen by the engine", fn([&c] { return c.packets; }));
    s.counter_fn("portsentry_engine_verdicts_total", {{"verdict", "drop"}}, "engine verdicts",
                 fn([&c] { return c.drops; }));
    s.counter_fn("portsentry_engine_verdicts_total", {{"verdict", "accept"}}, "engine verdicts",
                 fn([&c] { return c.accepts; }));
    s.counter_fn("portsentry_engine_source_evictions_total", {}, "per-source entries evicted by max_tracked_sources",
                 fn([&c] { return c.evictions; }));
    s.counter_fn("portsentry_engine_lines_suppressed_total", {{"line", "already_blocked"}},
                 "log lines the per-source limit held back", fn([&c] { return c.log_suppressed; }));
    s.counter_fn("portsentry_engine_lines_suppressed_total", {{"line", "protected"}},
                 "log lines the per-source limit held back", fn([&c] { return c.protected_log_suppressed; }));
    s.gauge_fn("portsentry_engine_tracked_sources", {}, "sources with per-source state",
               [&e] { return static_cast<double>(e.tracked_sources()); });
    s.gauge_fn("portsentry_engine_state_bytes", {}, "bytes held by the per-source table",
               [&e] { return static_cast<double>(e.state_bytes()); });
}

void source_metrics(Stats& s, const kernel::PacketSource& src, uint16_t queue_num, kernel::Backend backend) {
    const auto& c = src.counters();
    const char* h = "packet source (NFQUEUE/NFLOG socket) figures";
    s.counter_fn("portsentry_queue_packets_total", {}, "steered packets received from the kernel (NFQUEUE or NFLOG)",
                 fn([&c] { return c.received; }));
    const std::pair<const char*, const uint64_t*> figs[] = {
        {"verdicts", &c.verdicts},
        {"default_verdicts", &c.default_verdicts}, {"netlink_parse_errors", &c.parse_errors},
        {"enobufs", &c.enobufs},           {"send_errors", &c.send_errors},
        {"handler_errors", &c.handler_errors},     {"unverdictable", &c.unverdictable},
    };
    for (const auto& [name, v] : figs)
        s.counter_fn(fmt::format("portsentry_source_{}_total", name), {}, h, fn([v = v] { return *v; }));
    const char* dh = "steered packets lost before the daemon read them: NFQUEUE: the kernel's queue or our socket "
                     "buffer was full (answered by the kernel, fail-open); NFLOG: socket overruns (ENOBUFS)";
    if (backend == kernel::Backend::nflog) {
        s.counter_fn("portsentry_queue_drops_total", {}, dh, fn([&c] { return c.enobufs; }));
        return;
    }
    // The kernel's side of the queue: what it dropped (fail-open: answered
    // itself) while we were slow, and what our socket buffer could not take.
    auto kernel_fig = [queue_num](uint64_t kernel::QueueKernelStats::*f) {
        return fn([queue_num, f] {
            auto st = kernel::read_queue_stats(queue_num);
            return st ? (*st).*f : 0;
        });
    };
    s.counter_fn("portsentry_queue_drops_total", {}, dh, fn([queue_num] {
        auto st = kernel::read_queue_stats(queue_num);
        return st ? st->queue_dropped + st->user_dropped : 0;
    }));
    const char* kh = "the kernel's figures for our NFQUEUE (/proc/net/netfilter/nfnetlink_queue)";
    s.counter_fn("portsentry_nfqueue_kernel_dropped_total", {{"reason", "queue_full"}}, kh,
                 kernel_fig(&kernel::QueueKernelStats::queue_dropped));
    s.counter_fn("portsentry_nfqueue_kernel_dropped_total", {{"reason", "socket_full"}}, kh,
                 kernel_fig(&kernel::QueueKernelStats::user_dropped));
    s.gauge_fn("portsentry_nfqueue_kernel_waiting", {}, kh, [queue_num] {
        auto st = kernel::read_queue_stats(queue_num);
        return st ? static_cast<double>(st->waiting) : 0.0;
    });
}

void action_metrics(Stats& s, const actions::Responder& r, const actions::Log& log, const JsonEvents& ev) {
    const auto& c = r.counters();
    const char* h = "1.2 responses (history/blocked, hosts.deny, commands)";
    const std::pair<const char*, const base::Counter*> figs[] = {
        {"reports", &c.reports},
        {"records_written", &c.records_written},
        {"records_suppressed", &c.records_suppressed},
        {"file_errors", &c.file_errors},
        {"nft_bans_ok", &c.bans_ok},
        {"nft_bans_failed", &c.bans_failed},
        {"hosts_deny_added", &c.hosts_deny_added},
        {"hosts_deny_present", &c.hosts_deny_present},
        {"hosts_deny_failed", &c.hosts_deny_failed},
        {"response_failures", &c.response_failures},
        {"commands_deduplicated", &c.commands_deduplicated},
        {"commands_waited", &c.commands_waited},
        {"hosts_deny_rewrites", &r.hosts_deny_file().counters().rewrites},
        {"hosts_deny_rewrites_in_place", &r.hosts_deny_file().counters().rewrites_in_place},
        {"hosts_deny_lines_removed", &r.hosts_deny_file().counters().lines_removed},
    };
    for (const auto& [name, v] : figs)
        s.counter_fn(fmt::format("portsentry_responder_{}_total", name), {}, h, fn([v = v] { return v->value(); }));
    const auto& cmd = r.commands().counters();
    const std::pair<const char*, const base::Counter*> cmds[] = {
        {"started", &cmd.started},   {"spawn_failed", &cmd.spawn_failed}, {"refused", &cmd.refused},
        {"exited_ok", &cmd.exited_ok}, {"exited_failed", &cmd.exited_failed}, {"timed_out", &cmd.timed_out},
    };
    for (const auto& [name, v] : cmds)
        s.counter_fn("portsentry_commands_total", {{"result", name}}, "KILL_RUN_CMD / custom KILL_ROUTE runs",
                     fn([v = v] { return v->value(); }));
    using RC = actions::ResolverCounters;
    const std::pair<const char*, uint64_t RC::*> res[] = {
        {"lookups", &RC::lookups}, {"resolved", &RC::resolved}, {"cache_hits", &RC::cache_hits},
        {"timeouts", &RC::timeouts}, {"capped", &RC::capped}, {"no_name", &RC::no_name}, {"unsafe", &RC::unsafe},
    };
    for (const auto& [name, f] : res)
        s.counter_fn("portsentry_resolver_total", {{"result", name}}, "RESOLVE_HOST reverse lookups",
                     fn([&r, f = f] { return r.resolver_counters().*f; }));
    using LC = actions::LogCounters;
    const std::pair<const char*, uint64_t LC::*> logs[] = {
        {"written", &LC::written}, {"suppressed", &LC::suppressed}, {"summaries", &LC::summaries}};
    for (const auto& [name, f] : logs)
        s.counter_fn("portsentry_log_lines_total", {{"result", name}}, "syslog lines",
                     fn([&log, f = f] { return log.counters().*f; }));
    using EC = actions::EventLogCounters;
    const std::pair<const char*, uint64_t EC::*> evs[] = {
        {"written", &EC::written}, {"suppressed", &EC::suppressed}, {"errors", &EC::errors}};
    for (const auto& [name, f] : evs)
        s.counter_fn("portsentry_json_log_events_total", {{"result", name}}, "json_log events",
                     fn([&ev, f = f] { return ev.file() ? ev.file()->counters().*f : 0; }));
}

void response_metrics(Stats& s, const ResponseWorker& w) {
    const auto& c = w.counters();
    const char* h = "reports handed to the response worker (issue 12: nothing slow on the packet thread)";
    s.add("portsentry_responses_total", {{"result", "queued"}}, h, c.queued);
    s.add("portsentry_responses_total", {{"result", "overflow"}}, h, c.overflow);
    s.add("portsentry_responses_total", {{"result", "handled"}}, h, c.handled);
    s.add("portsentry_responses_total", {{"result", "abandoned"}}, h, c.abandoned);
    s.add("portsentry_responses_deferred_bans_total", {}, "KILL_RUN_CMD_FIRST bans made after their command",
          c.ban_requests);
    s.gauge_fn("portsentry_responses_waiting", {}, "reports and notices waiting for the response worker",
               [&w] { return static_cast<double>(w.waiting()); });
}

void ban_metrics(Stats& s, const BanManager& b, const BanStore& store, const RulesetKeeper& rk) {
    const auto& c = b.counters();
    for (size_t i = 0; i < std::size(BanManager::kOrigins); ++i)
        s.add("portsentry_bans_total", {{"origin", BanManager::kOrigins[i]}},
              "bans added, by origin (detector, admin, fail2ban; other --origin words: other)", c.bans_by_origin[i]);
    s.add("portsentry_ban_errors_total", {}, "bans the kernel refused", c.ban_errors);
    s.add("portsentry_ban_evictions_total", {}, "bans evicted from a full set", c.evictions);
    s.add("portsentry_ban_aggregations_total", {}, "IPv6 /64s banned in place of their hosts", c.aggregations);
    s.add("portsentry_unbans_total", {{"by", "admin"}}, "bans lifted", c.unbans);
    s.add("portsentry_unbans_total", {{"by", "nft"}}, "bans lifted", c.foreign_unbans);
    for (auto [fam, set] : {std::pair{AF_INET, b.sets().v4}, std::pair{AF_INET6, b.sets().v6}})
        s.gauge_fn("portsentry_active_bans", {{"set", set}}, "active bans in the ban table, by nft set",
                   [&store, fam = fam] { return static_cast<double>(store.active_count(fam, std::time(nullptr))); });
    s.gauge_fn("portsentry_ban_table_records", {}, "records in the ban table (active and remembered)",
               [&store] { return static_cast<double>(store.records().size()); });
    s.add("portsentry_ruleset_restores_total", {}, "table restored after changes by others", rk.restores());
    if (const auto* m = rk.monitor()) {
        const auto& mc = m->counters();
        s.counter_fn("portsentry_nft_monitor_total", {{"event", "foreign_change"}}, "nftables notifications",
                     fn([&mc] { return mc.foreign_changes; }));
        s.counter_fn("portsentry_nft_monitor_total", {{"event", "overrun"}}, "nftables notifications",
                     fn([&mc] { return mc.overruns; }));
        s.counter_fn("portsentry_nft_monitor_total", {{"event", "foreign_unban"}}, "nftables notifications",
                     fn([&mc] { return mc.foreign_unbans; }));
    }
}

// The fleet (crowdsec.*): its table and counters; the client's only while it runs.
void fleet_metrics(Stats& s, const Fleet& f) {
    const auto& c = f.counters();
    s.add("portsentry_bans_total", {{"origin", "fleet"}},
          "bans added, by origin (detector, admin, fail2ban; other --origin words: other)", c.pulled);
    s.add("portsentry_fleet_pulled_total", {}, "decisions from the LAPI applied to @fleet/@fleet6", c.pulled);
    for (size_t i = 0; i < std::size(Fleet::kSkipReasons); ++i)
        s.add("portsentry_fleet_skipped_total", {{"reason", Fleet::kSkipReasons[i]}},
              "decisions from the LAPI not applied, by reason", c.skipped[i]);
    s.add("portsentry_fleet_resync_seconds", {}, "the last resync: end of the LAPI's answer to the kernel's commit",
          c.resync_seconds);
    for (auto [fam, set] : {std::pair{AF_INET, kernel::kFleetSets.v4}, std::pair{AF_INET6, kernel::kFleetSets.v6}})
        s.gauge_fn("portsentry_active_bans", {{"set", set}}, "active bans in the ban table, by nft set",
                   [&st = f.store(), fam = fam] { return static_cast<double>(st.active_count(fam, std::time(nullptr))); });
    const auto& k = f.client_counters();
    s.add("portsentry_fleet_pushed_total", {}, "alerts the LAPI accepted", k.pushed);
    s.add("portsentry_fleet_push_dropped_total", {}, "alerts dropped (queue full, expired, refused)", k.push_dropped);
    s.add("portsentry_fleet_push_queue", {}, "alerts waiting to be pushed", k.queued);
    s.add("portsentry_fleet_errors_total", {}, "failed LAPI requests (network, HTTP status) and kernel refusals",
          k.errors);
    s.add("portsentry_fleet_failovers_total", {}, "switches to the next lapi_url", k.failovers);
    s.add("portsentry_fleet_catch_ups_total", {}, "full polls after a delta poll that may have missed a decision (slow, or skipping ids: LAPI 1.4.6)",
          k.catch_ups);
    s.add("portsentry_fleet_up", {}, "1: the last request reached a LAPI", k.up);
    s.gauge_fn("portsentry_fleet_lag_seconds", {}, "now - the last successful decisions poll (-1: none yet)",
               [&k] {
                   const int64_t last = k.last_poll_ms.load();
                   if (last == 0) return -1.0;
                   const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
                   return static_cast<double>(now - last) / 1000.0;
               });
}

void daemon_metrics(Stats& s, const MetricParts& p) {
    const auto& t = p.loop.timing();
    s.add("portsentry_loop_turns_total", {}, "events handled by the loop", t.turns);
    s.add("portsentry_loop_slow_turns_total", {}, "turns over 50 ms (queued probes waited)", t.slow_turns);
    s.add("portsentry_loop_longest_turn_seconds", {}, "the longest turn since start", t.longest_seconds);
    s.add("portsentry_loop_turn_ms", {}, "loop turn durations", t.turn_ms);
    s.gauge_fn("portsentry_loop_fds", {}, "fds registered with the loop",
               [&l = p.loop] { return static_cast<double>(l.registered()); });
    const auto& pc = p.probes.counters();
    s.add("portsentry_malformed_packets_total", {}, "steered packets the parser refused (accepted unread)",
          pc.malformed);
    for (size_t i = 0; i < ProbePath::kScanTypes; ++i) {
        const auto l = ProbePath::probe_labels(static_cast<engine::ScanType>(i));
        s.add("portsentry_probes_total", {{"proto", l.proto}, {"type", l.type}},
              "probes from sources that are not ignored, by protocol and scan type", pc.probes[i]);
    }
    s.add("portsentry_probe_to_ban_seconds", {},
          "detector bans: packet received by the daemon to its ban batch acknowledged by the kernel",
          pc.probe_to_ban_seconds);
    const auto& f = p.saver.figures();
    s.add("portsentry_state_passes_total", {}, "state file compactions (serializing passes)", f.passes);
    s.add("portsentry_state_serialize_errors_total", {}, "passes dropped (out of memory)", f.serialize_errors);
    s.add("portsentry_state_last_pass_loop_ms", {}, "loop time the last pass took", f.busy_ms);
    s.add("portsentry_state_last_pass_longest_slice_ms", {}, "the last pass's longest slice", f.longest_ms);
    s.add("portsentry_state_last_pass_slices", {}, "slices of the last pass", f.slices);
    s.add("portsentry_state_longest_step_ms", {}, "the longest loop step spent saving (journal or compaction)",
          f.longest_step_ms);
    s.add("portsentry_state_journal_records_total", {}, "changed records formatted for the journal", f.journal_records);
    using WC = StateWriter::Counters;
    const std::pair<const char*, uint64_t WC::*> wr[] = {{"written", &WC::written}, {"failed", &WC::failed}};
    for (const auto& [name, m] : wr)
        s.counter_fn("portsentry_state_writes_total", {{"result", name}},
                     "state file snapshots written (compactions), and failed writes (writer thread)",
                     fn([&sv = p.saver, m = m] { return sv.writer_counters().*m; }));
    const std::pair<const char*, uint64_t WC::*> bytes[] = {{"journal", &WC::journal_bytes},
                                                            {"snapshot", &WC::snapshot_bytes}};
    for (const auto& [name, m] : bytes)
        s.counter_fn("portsentry_state_bytes_written_total", {{"file", name}}, "bytes written to the state files",
                     fn([&sv = p.saver, m = m] { return sv.writer_counters().*m; }));
    s.counter_fn("portsentry_state_journal_batches_total", {}, "journal batches appended",
                 fn([&sv = p.saver] { return sv.writer_counters().journal_batches; }));
    s.gauge_fn("portsentry_state_last_write_ms", {}, "duration of the last snapshot write",
               [&sv = p.saver] { return sv.writer_counters().last_ms; });
    s.gauge_fn("portsentry_state_last_write_bytes", {}, "size of the last snapshot",
               [&sv = p.saver] { return static_cast<double>(sv.writer_counters().last_bytes); });
    s.gauge_fn("portsentry_state_failing", {}, "1 while the state file cannot be written",
               [&sv = p.saver] { return sv.error().empty() ? 0.0 : 1.0; });
    s.gauge_fn("portsentry_protected_prefixes", {}, "prefixes in the never-ban sets",
               [&pk = p.protection] { return static_cast<double>(pk.current().prefixes().size()); });
    s.gauge_fn("portsentry_tripwires", {}, "classic-mode ports bound as tripwires",
               [n = p.tripwires] { return static_cast<double>(n); });
}

double value(const std::vector<Sample>& snap, const std::string& key) {
    for (const auto& m : snap)
        if (m.key() == key) return m.value;
    return 0;
}

// Every sample of one metric (all label sets).
uint64_t sum(const std::vector<Sample>& snap, const std::string& name) {
    double n = 0;
    for (const auto& m : snap)
        if (m.name == name) n += m.value;
    return static_cast<uint64_t>(n);
}

}  // namespace

void register_metrics(Stats& stats, const MetricParts& p) {
    engine_metrics(stats, p.engine);
    source_metrics(stats, p.source, p.queue_num, p.backend);
    action_metrics(stats, p.responder, p.log, p.events);
    response_metrics(stats, p.responses);
    ban_metrics(stats, p.bans, p.store, p.ruleset);
    daemon_metrics(stats, p);
    fleet_metrics(stats, p.fleet);
}

std::string render_status_text(const StatusInfo& i, const std::vector<Sample>& snap) {
    auto v = [&](const std::string& k) { return static_cast<uint64_t>(value(snap, k)); };
    auto d = [&](const std::string& k) { return value(snap, k); };
    std::string s;
    s += fmt::format("portsentry-nfq {} running since {}\n", i.version, i.started);
    s += fmt::format("config: {}\n", i.config);
    s += i.modes + "\n";
    s += fmt::format("steering: {}\n", i.steering);
    uint64_t active = 0;
    for (const auto& m : snap)
        if (m.name == "portsentry_active_bans" && m.key().find("fleet") == std::string::npos)
            active += static_cast<uint64_t>(m.value);
    s += fmt::format("bans: {} active\n", active);
    s += fmt::format("fleet: {} decisions in @fleet/@fleet6, {} pulled, {} skipped, {} pushed, {} waiting to push, "
                     "{} errors\n",
                     v("portsentry_active_bans{set=\"fleet\"}") + v("portsentry_active_bans{set=\"fleet6\"}"),
                     v("portsentry_fleet_pulled_total"), sum(snap, "portsentry_fleet_skipped_total"),
                     v("portsentry_fleet_pushed_total"), v("portsentry_fleet_push_queue"), v("portsentry_fleet_errors_total"));
    s += fmt::format("loop: longest turn {:.1f} ms ({}), {} turns over {} ms\n", d("portsentry_loop_longest_turn_seconds") * 1000,
                     i.longest_turn_what, v("portsentry_loop_slow_turns_total"), Loop::kSlowTurn.count());
    s += fmt::format("packets: {} received, {} verdicts, {} default verdicts, {} malformed\n",
                     v("portsentry_queue_packets_total"), v("portsentry_source_verdicts_total"),
                     v("portsentry_source_default_verdicts_total"), v("portsentry_malformed_packets_total"));
    const std::string p = "portsentry_engine_probes_total{outcome=\"";
    s += fmt::format("engine: {} probes, {} reported, {} rate-limited (not banned), {} already blocked, {} ignored, "
                     "{} tracked sources, {} evicted\n",
                     v("portsentry_engine_packets_total"), v(p + "reported\"}"), v("portsentry_rate_limited_total"),
                     v(p + "already_blocked\"}"), v(p + "ignored\"}"), v("portsentry_engine_tracked_sources"),
                     v("portsentry_engine_source_evictions_total"));
    s += fmt::format("protected: {} probes from protected sources; {}\n", v("portsentry_protected_hits_total"), i.protection);
    s += fmt::format("ban errors: {}; evicted from a full set: {}; IPv6 /64s aggregated: {}\n",
                     v("portsentry_ban_errors_total"), v("portsentry_ban_evictions_total"),
                     v("portsentry_ban_aggregations_total"));
    s += fmt::format("nftables monitor: table restored {} times after changes by others, {} bans deleted with nft "
                     "(forgotten), {} overruns\n",
                     v("portsentry_ruleset_restores_total"), v("portsentry_unbans_total{by=\"nft\"}"),
                     v("portsentry_nft_monitor_total{event=\"overrun\"}"));
    s += fmt::format("state file: {} records; journal {} bytes in {} batches; {} compactions ({} failed writes){}; "
                     "last compaction {:.1f} ms of loop time (longest slice {:.1f} ms); longest saving step {:.1f} ms\n",
                     v("portsentry_ban_table_records"), v("portsentry_state_bytes_written_total{file=\"journal\"}"),
                     v("portsentry_state_journal_batches_total"), v("portsentry_state_writes_total{result=\"written\"}"),
                     v("portsentry_state_writes_total{result=\"failed\"}"),
                     i.state_error.empty() ? "" : ", FAILING: " + i.state_error,
                     d("portsentry_state_last_pass_loop_ms"), d("portsentry_state_last_pass_longest_slice_ms"),
                     d("portsentry_state_longest_step_ms"));
    s += "metrics:\n" + render_stats_text(snap);
    return s;
}

std::string render_status_json(const StatusInfo& i, const std::vector<Sample>& snap) {
    nlohmann::json j = {{"version", i.version},   {"started", i.started},   {"config", i.config},
                        {"modes", i.modes},       {"steering", i.steering}, {"protection", i.protection},
                        {"longest_turn", i.longest_turn_what},              {"state_error", i.state_error},
                        {"metrics", render_stats_json(snap)}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace portsentry::daemon
