// Ban-rate caps (ban_rate_per_second, ban_rate_per_prefix_per_minute): a
// spoofed flood is still dropped and logged, but cannot fill the ban set or
// ban a whole /24 (/48). Every rule at its boundary, clock injected.
#include <gtest/gtest.h>

#include "portsentry/engine/engine.hpp"
#include "probes.hpp"

using namespace portsentry;
using engine::Decision;
using engine::KillRoute;
using engine::Settings;
using namespace std::chrono_literals;

namespace {

using Outcome = Decision::Outcome;
const engine::TimePoint t0 = engine::TimePoint{} + 1000s;

Settings base(unsigned per_second, unsigned per_prefix) {
    Settings c;
    c.tcp.block = 1;
    c.kill_route = KillRoute::builtin;
    c.scan_trigger = 1;
    c.ban_rate_per_second = per_second;
    c.ban_rate_per_prefix_per_minute = per_prefix;
    return c;
}

net::Packet syn(const char* src) { return pstest::syn(src, 995); }

std::string v4(unsigned net24, unsigned host) {
    return "198.51." + std::to_string(net24) + "." + std::to_string(host);
}

}  // namespace

TEST(BanRateCaps, GlobalPerSecondCapAtNAndNPlusOne) {
    auto cfg = base(5, 0);
    engine::Engine e(cfg);
    for (unsigned i = 0; i < 5; ++i) {  // five different /24s: only the global cap applies
        auto d = e.on_probe(syn(v4(i, 1).c_str()), true, t0);
        EXPECT_EQ(d.outcome, Outcome::reported) << i;
        EXPECT_TRUE(d.ban);
    }
    auto d = e.on_probe(syn(v4(9, 1).c_str()), true, t0 + 999ms);
    EXPECT_EQ(d.outcome, Outcome::rate_limited);
    EXPECT_EQ(d.verdict, engine::Verdict::drop) << "still dropped";
    EXPECT_FALSE(d.ban);
    EXPECT_FALSE(e.is_blocked(*net::IpAddr::parse(v4(9, 1)), t0 + 999ms));
    EXPECT_EQ(e.counters().rate_limited, 1u);
    // A second later the same scanner is banned on its next probe.
    d = e.on_probe(syn(v4(9, 1).c_str()), true, t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.ban);
}

TEST(BanRateCaps, PerPrefixPerMinuteCapAndOtherPrefixUnaffected) {
    auto cfg = base(0, 3);
    engine::Engine e(cfg);
    for (unsigned h = 1; h <= 3; ++h)
        EXPECT_EQ(e.on_probe(syn(v4(100, h).c_str()), true, t0 + std::chrono::seconds(h)).outcome,
                  Outcome::reported);
    EXPECT_EQ(e.on_probe(syn(v4(100, 4).c_str()), true, t0 + 59s).outcome, Outcome::rate_limited)
        << "4th ban in 198.51.100.0/24 within the minute";
    EXPECT_EQ(e.on_probe(syn(v4(101, 4).c_str()), true, t0 + 59s).outcome, Outcome::reported)
        << "another /24 has its own budget";
    // The /24's minute opened with its first ban at t0+1s.
    EXPECT_EQ(e.on_probe(syn(v4(100, 4).c_str()), true, t0 + 60s).outcome, Outcome::rate_limited)
        << "59 s into the /24's minute";
    EXPECT_EQ(e.on_probe(syn(v4(100, 4).c_str()), true, t0 + 61s).outcome, Outcome::reported)
        << "exactly a minute after the first ban: a new minute for the /24";
}

TEST(BanRateCaps, Ipv6CountsPer48) {
    auto cfg = base(0, 1);
    engine::Engine e(cfg);
    EXPECT_EQ(e.on_probe(syn("2001:db8:1:1::1"), true, t0).outcome, Outcome::reported);
    EXPECT_EQ(e.on_probe(syn("2001:db8:1:ffff::2"), true, t0).outcome, Outcome::rate_limited) << "same /48";
    EXPECT_EQ(e.on_probe(syn("2001:db8:2::1"), true, t0).outcome, Outcome::reported) << "other /48";
}

TEST(BanRateCaps, ZeroDisablesAndBlockZeroIsNeverCapped) {
    auto cfg = base(0, 0);
    engine::Engine e(cfg);
    for (unsigned h = 1; h <= 200; ++h)
        ASSERT_EQ(e.on_probe(syn(v4(100, h).c_str()), true, t0).outcome, Outcome::reported) << h;

    auto log_only = base(1, 1);
    log_only.tcp.block = 0;  // record only: nothing to cap, fail2ban reads the history
    engine::Engine f(log_only);
    for (unsigned h = 1; h <= 5; ++h)
        ASSERT_EQ(f.on_probe(syn(v4(100, h).c_str()), true, t0).outcome, Outcome::reported) << h;
}

TEST(BanRateCaps, HandshakeProvenTripwireIsExemptUdpIsNot) {
    auto cfg = base(1, 1);
    engine::Engine e(cfg);
    EXPECT_EQ(e.on_probe(syn(v4(100, 1).c_str()), true, t0).outcome, Outcome::reported);
    // Both caps are used up now.
    auto tcp = e.on_tripwire(*net::IpAddr::parse(v4(100, 2)), net::L4::tcp, 11, t0);
    EXPECT_EQ(tcp.outcome, Outcome::reported);
    EXPECT_TRUE(tcp.ban);
    auto udp = e.on_tripwire(*net::IpAddr::parse(v4(100, 3)), net::L4::udp, 69, t0);
    EXPECT_EQ(udp.outcome, Outcome::rate_limited) << "a UDP source address proves nothing";
}

TEST(BanRateCaps, RandomPrefixFloodKeepsBoundedMemoryAndBansAtMostTheCap) {
    auto cfg = base(20, 16);
    engine::Engine e(cfg);
    // 100k spoofed sources in 10 s of clock, each in its own /24.
    uint64_t reported = 0;
    for (uint32_t i = 0; i < 100000; ++i) {
        const uint32_t a = 0x0a000000u + (i << 8) + 1;  // 10.x.y.1, distinct /24s
        net::Packet p = syn("192.0.2.9");
        p.src = net::IpAddr::v4(a);
        auto d = e.on_probe(p, true, t0 + std::chrono::microseconds(i * 100));
        reported += d.outcome == Outcome::reported;
    }
    EXPECT_LE(reported, 20u * 11u) << "at most 20 bans per second over ~10 s";
    EXPECT_GE(reported, 20u * 9u);
    EXPECT_EQ(e.counters().rate_limited + reported, 100000u);
}
