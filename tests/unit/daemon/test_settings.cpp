// daemon::engine_settings: the one mapping from the config to what the engine reads.
#include <gtest/gtest.h>

#include "portsentry/daemon/settings.hpp"
#include "portsentry/engine/policy.hpp"

namespace portsentry {
namespace {

using engine::KillRoute;
using namespace std::chrono_literals;

TEST(EngineSettings, ConfigDefaultsAreTheEngineDefaults) {
    const engine::Settings s = daemon::engine_settings(config::Config{});
    const engine::Settings d;
    EXPECT_EQ(s.tcp.block, d.tcp.block);
    EXPECT_EQ(s.udp.block, d.udp.block);
    EXPECT_EQ(s.scan_trigger, d.scan_trigger);
    EXPECT_EQ(s.scan_window, d.scan_window);
    EXPECT_EQ(s.kill_route, KillRoute::unset);
    EXPECT_EQ(s.ban_time, d.ban_time);
    EXPECT_EQ(s.ban_time_factor, d.ban_time_factor);
    EXPECT_EQ(s.ban_time_max, d.ban_time_max);
    EXPECT_EQ(s.ipv6_aggregate_after, d.ipv6_aggregate_after);
    EXPECT_EQ(s.ban_rate_per_second, d.ban_rate_per_second);
    EXPECT_EQ(s.ban_rate_per_prefix_per_minute, d.ban_rate_per_prefix_per_minute);
    EXPECT_EQ(s.max_tracked_sources, d.max_tracked_sources);
}

TEST(EngineSettings, KillRouteStockCommandsAreBuiltinOthersCustom) {
    config::Config c;
    c.kill_route = "/sbin/iptables -I INPUT -s $TARGET$ -j DROP";
    EXPECT_EQ(daemon::engine_settings(c).kill_route, KillRoute::builtin);
    c.kill_route = "nft-set";
    EXPECT_EQ(daemon::engine_settings(c).kill_route, KillRoute::builtin);
    c.kill_route = "/usr/local/sbin/site-block $TARGET$";
    EXPECT_EQ(daemon::engine_settings(c).kill_route, KillRoute::custom);
}

TEST(EngineSettings, EveryReadValueIsCopied) {
    config::Config c;
    c.tcp.block = 0;
    c.udp.block = 2;
    c.dry_run = true;
    c.scan_trigger = 3;
    c.scan_window = 60s;
    c.kill_hosts_deny = "ALL: $TARGET$";
    c.kill_run_cmd = "/usr/local/bin/notify $TARGET$";
    c.ban_time = 0s;
    c.ban_time_factor = 2;
    c.ban_time_max = 7200s;
    c.ipv6_aggregate_after = 0;
    c.ban_rate_per_second = 1;
    c.ban_rate_per_prefix_per_minute = 2;
    c.max_tracked_sources = 5;
    c.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    const engine::Settings s = daemon::engine_settings(c);
    EXPECT_EQ(s.tcp.block, 0);
    EXPECT_EQ(s.udp.block, 2);
    EXPECT_TRUE(s.dry_run);
    EXPECT_EQ(s.scan_trigger, 3u);
    EXPECT_EQ(s.scan_window, 60s);
    EXPECT_TRUE(s.kill_hosts_deny);
    EXPECT_TRUE(s.kill_run_cmd);
    EXPECT_EQ(s.ban_rate_per_second, 1u);
    EXPECT_EQ(s.ban_rate_per_prefix_per_minute, 2u);
    EXPECT_EQ(s.max_tracked_sources, 5u);
    EXPECT_TRUE(s.ignore.contains(*net::IpAddr::parse("192.0.2.7")));
    const auto p = engine::BanPolicy::from_settings(s);
    EXPECT_EQ(p.base, 0s);
    EXPECT_EQ(p.factor, 2u);
    EXPECT_EQ(p.max, 7200s);
    EXPECT_EQ(p.aggregate_after, 0u);
}

}  // namespace
}  // namespace portsentry
