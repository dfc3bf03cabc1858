// Stats (the metric table), its renderings, and register_metrics over the
// daemon's real parts: every registered metric must appear in `status` and
// in `status --json`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "daemon_test_util.hpp"
#include "portsentry/actions/log.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/keepers.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/metrics.hpp"
#include "portsentry/daemon/metrics_http.hpp"
#include "portsentry/daemon/probe_path.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_saver.hpp"
#include "portsentry/daemon/settings.hpp"
#include "portsentry/daemon/stats.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/kernel/replay.hpp"

namespace fs = std::filesystem;
using namespace portsentry;
using daemon::MetricType;
using daemon::Sample;
using daemon::Stats;

using pstest::TempDir;
using pstest::cidr;
using pstest::ip;

namespace {

const Sample* find(const std::vector<Sample>& snap, const std::string& key) {
    for (const auto& s : snap)
        if (s.key() == key) return &s;
    return nullptr;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Does the JSON "metrics" array hold an entry with this name and these labels?
bool json_holds(const nlohmann::json& metrics, const Sample& s) {
    for (const auto& m : metrics) {
        if (m.value("name", "") != s.name) continue;
        if (!m.contains("labels") || !m["labels"].is_object()) continue;
        daemon::Labels l;
        for (auto it = m["labels"].begin(); it != m["labels"].end(); ++it) l[it.key()] = it.value().get<std::string>();
        if (l == s.labels) return true;
    }
    return false;
}

}  // namespace

TEST(Stats, KeyRendersLabelsInOrder) {
    Sample s;
    s.name = "portsentry_x_total";
    EXPECT_EQ(s.key(), "portsentry_x_total");
    s.labels = {{"b", "2"}, {"a", "1"}};
    EXPECT_EQ(s.key(), "portsentry_x_total{a=\"1\",b=\"2\"}");
}

TEST(Stats, LiveCellsReadAtSnapshot) {
    Stats st;
    base::Counter c;
    base::Gauge g;
    base::Histogram h({1, 10, 100});
    st.add("c_total", {{"k", "v"}}, "a counter", c);
    st.add("g", {}, "a gauge", g);
    st.add("h_ms", {}, "a histogram", h);
    EXPECT_EQ(st.size(), 3u);
    c += 5;
    ++c;
    g.set(2.5);
    h.observe(0.5);
    h.observe(10);
    h.observe(1000);
    auto snap = st.snapshot();
    ASSERT_EQ(snap.size(), 3u);
    const auto* sc = find(snap, "c_total{k=\"v\"}");
    ASSERT_NE(sc, nullptr);
    EXPECT_EQ(sc->type, MetricType::counter);
    EXPECT_EQ(sc->value, 6);
    EXPECT_EQ(sc->help, "a counter");
    EXPECT_EQ(find(snap, "g")->value, 2.5);
    const auto* sh = find(snap, "h_ms");
    ASSERT_NE(sh, nullptr);
    EXPECT_EQ(sh->type, MetricType::histogram);
    EXPECT_EQ(sh->count, 3u);
    EXPECT_DOUBLE_EQ(sh->sum, 1010.5);
    ASSERT_EQ(sh->buckets.size(), 3u);
    // Cumulative: <=1: 1, <=10: 2, <=100: 2 (1000 only in count).
    EXPECT_EQ(sh->buckets[0], (std::pair<double, uint64_t>{1, 1}));
    EXPECT_EQ(sh->buckets[1], (std::pair<double, uint64_t>{10, 2}));
    EXPECT_EQ(sh->buckets[2], (std::pair<double, uint64_t>{100, 2}));
}

TEST(Stats, SampledEntriesChangeOnlyOnSample) {
    Stats st;
    uint64_t plain = 7;
    double level = 1.5;
    st.counter_fn("s_total", {}, "sampled", [&] { return plain; });
    st.gauge_fn("s_level", {}, "sampled", [&] { return level; });
    EXPECT_EQ(find(st.snapshot(), "s_total")->value, 7) << "read once at registration";
    plain = 9;
    level = 3;
    EXPECT_EQ(find(st.snapshot(), "s_total")->value, 7);
    EXPECT_EQ(find(st.snapshot(), "s_level")->value, 1.5);
    st.sample();
    EXPECT_EQ(find(st.snapshot(), "s_total")->value, 9);
    EXPECT_EQ(find(st.snapshot(), "s_level")->value, 3);
    EXPECT_EQ(find(st.snapshot(), "s_total")->type, MetricType::counter);
    EXPECT_EQ(find(st.snapshot(), "s_level")->type, MetricType::gauge);
}

TEST(Stats, ClearEmptiesTheTable) {
    Stats st;
    base::Counter c;
    st.add("c_total", {}, "", c);
    st.clear();
    EXPECT_EQ(st.size(), 0u);
    EXPECT_TRUE(st.snapshot().empty());
}

// The owner thread writes and samples while another thread snapshots
// (`status` from a metrics endpoint): must not crash or tear.
TEST(Stats, SnapshotFromAnotherThreadWhileTheOwnerWrites) {
    Stats st;
    base::Counter c;
    base::Histogram h({1, 10});
    uint64_t plain = 0;
    st.add("c_total", {}, "", c);
    st.add("h", {}, "", h);
    st.counter_fn("p_total", {}, "", [&] { return plain; });
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0};
    double last = 0;
    bool monotonic = true;
    std::thread reader([&] {
        while (!stop.load()) {
            auto snap = st.snapshot();
            const double v = find(snap, "c_total")->value;
            if (v < last) monotonic = false;
            last = v;
            (void)daemon::render_stats_text(snap);
            reads.fetch_add(1);
        }
    });
    for (int i = 0; i < 200000; ++i) {
        ++c;
        h.observe(i % 20);
        ++plain;
        if (i % 1000 == 0) st.sample();
    }
    while (reads.load() < 10) std::this_thread::yield();
    stop = true;
    reader.join();
    EXPECT_TRUE(monotonic);
    st.sample();
    auto snap = st.snapshot();
    EXPECT_EQ(find(snap, "c_total")->value, 200000);
    EXPECT_EQ(find(snap, "p_total")->value, 200000);
    EXPECT_EQ(find(snap, "h")->count, 200000u);
}

TEST(Stats, RenderingsHoldEveryKey) {
    Stats st;
    base::Counter c1, c2;
    base::Gauge g;
    base::Histogram h({0.5, 5});
    st.add("a_total", {{"by", "admin"}}, "lifted", c1);
    st.add("a_total", {{"by", "nft"}}, "lifted", c2);
    st.add("b_level", {}, "level", g);
    st.add("c_ms", {}, "durations", h);
    st.gauge_fn("d_quoted", {{"q", "x\"y"}}, "help with \"quotes\"", [] { return 0.25; });
    c2 += 3;
    g.set(1.5);
    h.observe(1);
    const auto snap = st.snapshot();
    const auto text = daemon::render_stats_text(snap);
    const auto json = daemon::render_stats_json(snap);
    ASSERT_TRUE(json.is_array());
    EXPECT_EQ(json.size(), snap.size());
    for (const auto& s : snap) {
        EXPECT_TRUE(has(text, s.key())) << s.key() << "\n" << text;
        EXPECT_TRUE(json_holds(json, s)) << s.key();
    }
    EXPECT_TRUE(has(text, "a_total{by=\"nft\"} 3")) << text;
    EXPECT_TRUE(has(text, "b_level 1.500")) << text;
    EXPECT_TRUE(has(text, "c_ms count 1 sum 1 <=0.500:0 <=5:1")) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '#'), 4) << "one header per name:\n" << text;
    // The JSON survives a round trip through text.
    auto back = nlohmann::json::parse(json.dump());
    EXPECT_EQ(back, json);
}

// THE ISSUE'S TEST: every metric register_metrics() registers, from the
// daemon's real parts, appears in `status` and in `status --json`.
TEST(Metrics, EveryRegisteredMetricAppearsInStatusAndStatusJson) {
    std::unique_ptr<kernel::Nft> nft;
    try {
        nft = std::make_unique<kernel::Nft>();
    } catch (const std::exception& e) {
        GTEST_SKIP() << "RulesetKeeper needs a kernel::Nft (root + netlink): " << e.what();
    }
    TempDir d;
    config::Config cfg;
    cfg.history_file = (d.path / "history").string();
    cfg.blocked_file = (d.path / "blocked").string();
    cfg.ignore_file = (d.path / "ignore").string();
    cfg.hosts_deny_file = (d.path / "hosts.deny").string();
    cfg.state_file = (d.path / "state").string();
    cfg.control_socket = (d.path / "sock").string();
    cfg.json_log = (d.path / "events.json").string();

    actions::Log log(actions::LogOptions{.use_syslog = false, .foreground = false});
    daemon::Loop loop;
    daemon::JsonEvents events(log);
    events.open(cfg.json_log);
    daemon::BanStore store(cfg.state_file);
    engine::Engine engine(daemon::engine_settings(cfg), 42);
    daemon::ProtectionKeeper protection(loop, nullptr, log);
    daemon::RulesetKeeper ruleset(loop, *nft, log);
    daemon::BanListener quiet;
    daemon::BanManager bans(store, nullptr, quiet,
                            daemon::BanSettings{engine::BanPolicy::from_settings(daemon::engine_settings(cfg)), cfg.ban_set_size, {}},
                            &protection.current());
    daemon::StateSaver saver(store, [](const std::string&) {});
    actions::Responder responder(cfg, log);
    daemon::ProbePath probes(engine, bans, log, events, cfg);
    daemon::ResponseWorker worker(
        loop, responder, log, [](const actions::Report&, const daemon::Now&) { return daemon::BanManager::Installed{}; },
        [](const daemon::ResponseWorker::Done&, const daemon::Now&) {});
    kernel::ReplaySource source(std::vector<kernel::ReplayPacket>{});
    daemon::Fleet fleet(loop, nullptr, store, [](const std::string&) {}, store.path());
    // The nftables monitor's figures are registered when it runs (a
    // netlink subscription; if it cannot open, the daemon runs without it).
    ruleset.watch([](const char*) {}, [](const std::vector<net::IpAddr>&, const daemon::Now&) {});

    // Some figures that are not zero.
    ASSERT_EQ(bans.ban(*net::Cidr::parse("192.0.2.1"), "admin", std::nullopt, std::time(nullptr)).error, "");
    ASSERT_EQ(bans.ban(*net::Cidr::parse("2001:db8::/64"), "admin", std::nullopt, std::time(nullptr)).error, "");

    for (auto backend : {kernel::Backend::queue, kernel::Backend::nflog}) {
        SCOPED_TRACE(kernel::to_string(backend));
        Stats stats;
        daemon::register_metrics(stats, daemon::MetricParts{engine, source, responder, worker, log, events, bans, saver, loop,
                                                            ruleset, probes, store, protection, fleet, 3, 0, backend});
        stats.sample();
        const auto snap = stats.snapshot();
        ASSERT_GT(snap.size(), 50u);
        std::set<std::string> keys;
        for (const auto& s : snap) EXPECT_TRUE(keys.insert(s.key()).second) << "registered twice: " << s.key();

        daemon::StatusInfo info{"0.0-test", "2026-12-01 18:10:22 UTC", "/etc/portsentry/portsentry.yaml",
                                "tcp: stealth block 1  udp: stealth block 1", "queue (replay)",
                                "ignore list: 0", "packets", ""};
        const std::string text = daemon::render_status_text(info, snap);
        const std::string js = daemon::render_status_json(info, snap);
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(js)) << js;
        ASSERT_TRUE(j.contains("metrics"));
        ASSERT_TRUE(j["metrics"].is_array());
        EXPECT_EQ(j["metrics"].size(), snap.size());
        // The metrics endpoint serves the same table: one series per sample.
        const auto families = daemon::to_families(snap);
        size_t series = 0;
        for (const auto& f : families) series += f.metric.size();
        EXPECT_EQ(series, snap.size());
        for (const auto& s : snap) {
            EXPECT_TRUE(has(text, "  " + s.key() + " ")) << "status lacks " << s.key();
            EXPECT_TRUE(json_holds(j["metrics"], s)) << "status --json lacks " << s.key();
            const auto f = std::find_if(families.begin(), families.end(), [&](const auto& x) { return x.name == s.name; });
            EXPECT_TRUE(f != families.end() && std::any_of(f->metric.begin(), f->metric.end(), [&](const auto& m) {
                            daemon::Labels l;
                            for (const auto& x : m.label) l[x.name] = x.value;
                            return l == s.labels;
                        }))
                << "metrics endpoint lacks " << s.key();
        }
        EXPECT_TRUE(has(text, "bans: 2 active")) << text;
        EXPECT_EQ(find(snap, "portsentry_bans_total{origin=\"admin\"}")->value, 2);
        EXPECT_EQ(find(snap, "portsentry_bans_total{origin=\"detector\"}")->value, 0);
        EXPECT_EQ(find(snap, "portsentry_active_bans{set=\"banned6\"}")->value, 1);
        EXPECT_EQ(find(snap, "portsentry_active_bans{set=\"banned\"}")->value, 1);
        // The names and label sets issue 14 fixes for the metrics endpoint.
        for (const char* k : {"portsentry_bans_total{origin=\"fail2ban\"}", "portsentry_bans_total{origin=\"other\"}",
                              "portsentry_probes_total{proto=\"tcp\",type=\"syn\"}",
                              "portsentry_probes_total{proto=\"udp\",type=\"datagram\"}",
                              "portsentry_probes_total{proto=\"tcp\",type=\"connect\"}",
                              "portsentry_rate_limited_total", "portsentry_protected_hits_total",
                              "portsentry_queue_packets_total", "portsentry_queue_drops_total",
                              "portsentry_probe_to_ban_seconds", "portsentry_loop_longest_turn_seconds"})
            EXPECT_NE(find(snap, k), nullptr) << k;
        EXPECT_EQ(find(snap, "portsentry_probe_to_ban_seconds")->type, daemon::MetricType::histogram);
        EXPECT_EQ(find(snap, "portsentry_tripwires")->value, 3);
        EXPECT_EQ(backend == kernel::Backend::queue,
                  find(snap, "portsentry_nfqueue_kernel_waiting") != nullptr);
        EXPECT_EQ(j["version"], "0.0-test");
        EXPECT_EQ(ruleset.monitor() != nullptr,
                  find(snap, "portsentry_nft_monitor_total{event=\"overrun\"}") != nullptr);
        if (!ruleset.monitor()) std::cerr << "note: no nftables monitor here: its 3 metrics were not checked\n";
    }
}
