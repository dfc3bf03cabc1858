// BanPolicy: escalation steps and /64 aggregation thresholds, each at its
// boundary; plus what `why` reads from the engine (the rate-limited flag).
#include <gtest/gtest.h>

#include "portsentry/engine/engine.hpp"
#include "portsentry/engine/policy.hpp"
#include "probes.hpp"

using namespace portsentry;
using namespace std::chrono_literals;
using engine::BanPolicy;
using engine::KillRoute;
using engine::Settings;

namespace {

net::Cidr cidr(const char* s) { return *net::Cidr::parse(s); }

}  // namespace

TEST(Escalation, DefaultsAreTimesFourUpToThirtyDays) {
    Settings c;  // the defaults (those of the config too: see test_settings in tests/unit/daemon)
    auto p = BanPolicy::from_settings(c);
    EXPECT_EQ(p.duration(1), 1h);
    EXPECT_EQ(p.duration(2), 4h);
    EXPECT_EQ(p.duration(3), 16h);
    EXPECT_EQ(p.duration(4), 64h);
    EXPECT_EQ(p.duration(5), 256h);
    EXPECT_EQ(p.duration(6), 720h) << "1024 h is capped at 30 days";
    EXPECT_EQ(p.duration(7), 720h);
    EXPECT_EQ(p.duration(UINT32_MAX), 720h) << "no overflow however often a source returns";
}

TEST(Escalation, CapReachedExactlyAndNotBefore) {
    BanPolicy p{100s, 2, 400s, 3};
    EXPECT_EQ(p.duration(2), 200s);
    EXPECT_EQ(p.duration(3), 400s);  // exactly the cap
    EXPECT_EQ(p.duration(4), 400s);
    BanPolicy q{100s, 2, 399s, 3};
    EXPECT_EQ(q.duration(2), 200s);
    EXPECT_EQ(q.duration(3), 399s);  // one below: clamped
}

TEST(Escalation, FactorOneAndPermanentAndBaseAboveCap) {
    EXPECT_EQ((BanPolicy{60s, 1, 3600s, 3}).duration(10), 60s);
    EXPECT_EQ((BanPolicy{0s, 4, 3600s, 3}).duration(5), 0s) << "permanent (legacy) stays permanent";
    EXPECT_EQ((BanPolicy{7200s, 4, 3600s, 3}).duration(1), 7200s) << "never shorter than ban_time";
    EXPECT_EQ((BanPolicy{7200s, 4, 3600s, 3}).duration(3), 7200s);
    EXPECT_EQ((BanPolicy{1s, 1000, 315360000s, 3}).duration(4), 315360000s) << "1e9 s capped without overflow";
}

TEST(Aggregation, AtKAndNotBefore) {
    BanPolicy p;  // K = 3
    EXPECT_FALSE(p.aggregate(0));
    EXPECT_FALSE(p.aggregate(2));  // N-1
    EXPECT_TRUE(p.aggregate(3));   // N
    EXPECT_TRUE(p.aggregate(4));
    p.aggregate_after = 1;
    EXPECT_TRUE(p.aggregate(1));
    p.aggregate_after = 0;  // switched off
    EXPECT_FALSE(p.aggregate(1000));
}

TEST(Aggregation, PrefixIsTheSlash64) {
    EXPECT_EQ(engine::aggregation_prefix(*net::IpAddr::parse("2001:db8:1:2:3:4:5:6")), cidr("2001:db8:1:2::/64"));
    EXPECT_EQ(engine::aggregation_prefix(*net::IpAddr::parse("2001:db8:1:2::")), cidr("2001:db8:1:2::/64"));
}

TEST(Aggregation, NeverOverAProtectedAddress) {
    const auto p64 = cidr("2001:db8:1:2::/64");
    std::vector<net::Cidr> guarded = {cidr("192.0.2.0/24"), cidr("2001:db8:1:3::1"), cidr("2001:db8:9::/48")};
    EXPECT_TRUE(engine::conflicts(p64, guarded).empty());
    guarded.push_back(cidr("2001:db8:1:2::53"));  // the resolver sits inside
    ASSERT_EQ(engine::conflicts(p64, guarded).size(), 1u);
    EXPECT_EQ(engine::conflicts(p64, guarded)[0], cidr("2001:db8:1:2::53"));
    // A protected prefix around the /64 conflicts as well.
    EXPECT_EQ(engine::conflicts(p64, std::vector{cidr("2001:db8::/32")}).size(), 1u);
    EXPECT_FALSE(engine::overlaps(cidr("192.0.2.0/24"), cidr("2001:db8::/32")));
    EXPECT_TRUE(engine::overlaps(cidr("192.0.2.0/24"), cidr("192.0.2.128/25")));
    EXPECT_FALSE(engine::overlaps(cidr("192.0.2.0/25"), cidr("192.0.2.128/25")));
}

TEST(SourceInfo, WhySeesWhetherTheLastProbeWasRateLimited) {
    Settings c;
    c.tcp.block = 1;
    c.kill_route = KillRoute::builtin;
    c.ban_rate_per_second = 1;
    c.ban_rate_per_prefix_per_minute = 0;
    engine::Engine e(c);
    const auto t0 = engine::TimePoint{} + 1000s;
    auto probe = [&](const char* src, engine::TimePoint t) { return e.on_probe(pstest::syn(src, 995), true, t).outcome; };
    const auto b = *net::IpAddr::parse("198.51.100.2");
    EXPECT_FALSE(e.source_info(b, t0).has_value());
    EXPECT_EQ(probe("198.51.100.1", t0), engine::Decision::Outcome::reported);
    EXPECT_EQ(probe("198.51.100.2", t0 + 10ms), engine::Decision::Outcome::rate_limited);
    auto i = e.source_info(b, t0 + 20ms);
    ASSERT_TRUE(i.has_value());
    EXPECT_TRUE(i->last_rate_limited);
    EXPECT_FALSE(i->blocked);
    EXPECT_EQ(i->last_probe, t0 + 10ms);
    // A second later the slot is free: banned, and no longer "rate-limited".
    EXPECT_EQ(probe("198.51.100.2", t0 + 1s), engine::Decision::Outcome::reported);
    i = e.source_info(b, t0 + 1s);
    EXPECT_FALSE(i->last_rate_limited);
    EXPECT_TRUE(i->blocked);
}
