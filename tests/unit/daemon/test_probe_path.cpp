// ProbePath's figures: probes by protocol and scan type, and the probe →
// ban latency (the turn's clock reading to the kernel's acknowledgement),
// measured with a clock the test controls.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "daemon_test_util.hpp"
#include "fake_ban_table.hpp"
#include "portsentry/actions/log.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/probe_path.hpp"
#include "portsentry/daemon/settings.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/engine/engine.hpp"

using namespace portsentry;
using pstest::ip;
using pstest::TempDir;

TEST(ProbePath, CountsProbesByTypeAndTimesProbeToBan) {
    TempDir d;
    config::Config cfg;
    cfg.tcp.mode = config::Mode::classic;
    cfg.tcp.ports = {{1, 1}};
    cfg.tcp.block = 1;
    cfg.kill_route = "/sbin/iptables -I INPUT -s $TARGET$ -j DROP";  // built in: the nft set
    cfg.history_file = (d.path / "history").string();
    cfg.blocked_file = (d.path / "blocked").string();
    cfg.hosts_deny_file = (d.path / "hosts.deny").string();
    cfg.state_file = (d.path / "state").string();

    actions::Log log(actions::LogOptions{.use_syslog = false, .foreground = false});
    daemon::JsonEvents events(log);
    daemon::BanStore store(cfg.state_file);
    engine::Engine engine(daemon::engine_settings(cfg), 42);
    portsentry::testing::FakeBanTable table;
    daemon::BanListener quiet;
    daemon::BanManager bans(store, &table, quiet,
                            daemon::BanSettings{engine::BanPolicy::from_settings(daemon::engine_settings(cfg)),
                                                cfg.ban_set_size, {}},
                            nullptr);
    // No ResponseWorker: the responses are not this test's subject.
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    auto acked = t0 + std::chrono::milliseconds(3);
    daemon::ProbePath probes(engine, bans, log, events, cfg, [&] { return acked; });

    daemon::Now now{t0, 1'800'000'000};
    probes.on_tripwire(ip("192.0.2.7"), net::L4::tcp, 1, now);
    const auto& c = probes.counters();
    EXPECT_EQ(c.probes[static_cast<size_t>(engine::ScanType::tcp_connect)].value(), 1u);
    EXPECT_EQ(bans.counters().bans_by_origin[daemon::BanManager::origin_slot("detector")].value(), 1u);
    EXPECT_EQ(c.probe_to_ban_seconds.count(), 1u);
    EXPECT_NEAR(c.probe_to_ban_seconds.sum(), 0.003, 1e-9);
    EXPECT_EQ(c.probe_to_ban_seconds.bucket(2), 0u);  // <= 0.0025
    EXPECT_EQ(c.probe_to_ban_seconds.bucket(3), 1u);  // <= 0.005

    // Already blocked: a probe, but no second ban and no second latency.
    probes.on_tripwire(ip("192.0.2.7"), net::L4::tcp, 1, now);
    EXPECT_EQ(c.probes[static_cast<size_t>(engine::ScanType::tcp_connect)].value(), 2u);
    EXPECT_EQ(c.probe_to_ban_seconds.count(), 1u);

    // The kernel refuses the ban: no latency observed.
    table.capacity = 0;
    probes.on_tripwire(ip("192.0.2.8"), net::L4::tcp, 1, now);
    EXPECT_EQ(c.probe_to_ban_seconds.count(), 1u);
}

TEST(ProbePath, EveryScanTypeHasProtoAndTypeLabels) {
    std::set<std::pair<std::string, std::string>> seen;
    for (size_t i = 0; i < daemon::ProbePath::kScanTypes; ++i) {
        const auto l = daemon::ProbePath::probe_labels(static_cast<engine::ScanType>(i));
        EXPECT_TRUE(std::string(l.proto) == "tcp" || std::string(l.proto) == "udp") << i;
        EXPECT_TRUE(seen.insert({l.proto, l.type}).second) << "twice: " << l.proto << " " << l.type;
    }
    EXPECT_EQ(std::string(daemon::ProbePath::probe_labels(engine::ScanType::tcp_syn).type), "syn");
    EXPECT_EQ(std::string(daemon::ProbePath::probe_labels(engine::ScanType::udp).type), "datagram");
}

TEST(BanManager, OriginsOutsideTheListCountAsOther) {
    EXPECT_EQ(daemon::BanManager::origin_slot("detector"), 0u);
    EXPECT_EQ(daemon::BanManager::origin_slot("fail2ban"), 2u);
    EXPECT_EQ(std::string(daemon::BanManager::kOrigins[daemon::BanManager::origin_slot("x\"y")]), "other");
    EXPECT_EQ(std::string(daemon::BanManager::kOrigins[daemon::BanManager::origin_slot("")]), "other");
}
