// engine::Engine with a never-ban set: protected sources are accepted, never
// counted or banned, and logged once per source per hour.
#include <gtest/gtest.h>

#include "portsentry/engine/engine.hpp"
#include "probes.hpp"

namespace portsentry::engine {
namespace {

using namespace std::chrono_literals;
using Outcome = Decision::Outcome;

const TimePoint t0 = TimePoint{} + 1000h;

net::IpAddr ip(const char* s) { return *net::IpAddr::parse(s); }

using pstest::syn;

class ProtectedEngine : public ::testing::Test {
protected:
    static Settings settings() {
        Settings s;
        s.tcp.block = 1;
        s.kill_route = KillRoute::builtin;
        s.scan_trigger = 0;  // the first probe would ban
        return s;
    }
    ProtectedEngine() {
        prot.add(ip("203.0.113.2"), ProtectReason::gateway);
        prot.add(ip("198.51.100.53"), ProtectReason::resolver);
        prot.add(*net::Cidr::parse("2001:db8:5::/48"), ProtectReason::session);
        eng.set_protection(&prot);
    }
    Settings cfg = settings();  // the engine takes a copy: reconfigure() after a change
    Protection prot;
    Engine eng{cfg, 0x5eed};
};

TEST_F(ProtectedEngine, ProtectedSourceIsAcceptedNotBanned) {
    auto d = eng.on_probe(syn("203.0.113.2"), true, t0);
    EXPECT_EQ(d.outcome, Outcome::protected_addr);
    EXPECT_EQ(d.verdict, Verdict::accept);
    EXPECT_EQ(d.protect_reason, ProtectReason::gateway);
    EXPECT_FALSE(d.ban);
    EXPECT_FALSE(d.log_suppressed);
    EXPECT_FALSE(eng.is_blocked(ip("203.0.113.2"), t0));
    EXPECT_EQ(eng.tracked_sources(), 0u);  // no per-source state for protected hosts
    EXPECT_EQ(eng.counters().protected_hits, 1u);
    EXPECT_EQ(eng.counters().reported, 0u);
    // IPv6 prefix and the mapped form of a protected IPv4 address.
    EXPECT_EQ(eng.on_probe(syn("2001:db8:5:1::9"), true, t0).protect_reason, ProtectReason::session);
    EXPECT_EQ(eng.on_tripwire(ip("::ffff:198.51.100.53"), net::L4::tcp, 23, t0).outcome, Outcome::protected_addr);
}

TEST_F(ProtectedEngine, UnprotectedNeighbourIsStillBanned) {
    auto d = eng.on_probe(syn("203.0.113.3"), true, t0);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.ban);
    EXPECT_EQ(d.verdict, Verdict::drop);
}

TEST_F(ProtectedEngine, LoggedOncePerSourcePerHour) {
    EXPECT_FALSE(eng.on_probe(syn("203.0.113.2"), true, t0).log_suppressed);
    EXPECT_TRUE(eng.on_probe(syn("203.0.113.2", 24), true, t0 + 1s).log_suppressed);
    // Another protected source has its own hour.
    EXPECT_FALSE(eng.on_probe(syn("198.51.100.53"), true, t0 + 2s).log_suppressed);
    EXPECT_TRUE(eng.on_probe(syn("203.0.113.2"), true, t0 + 3599s).log_suppressed);
    EXPECT_FALSE(eng.on_probe(syn("203.0.113.2"), true, t0 + 3600s).log_suppressed);  // exactly one hour later
    EXPECT_TRUE(eng.on_probe(syn("203.0.113.2"), true, t0 + 3601s).log_suppressed);
    EXPECT_EQ(eng.counters().protected_hits, 6u);
    EXPECT_EQ(eng.counters().protected_log_suppressed, 3u);
}

TEST_F(ProtectedEngine, LogMemoryIsBoundedUnderASpoofedFlood) {
    Protection wide;
    wide.add(*net::Cidr::parse("10.0.0.0/8"), ProtectReason::ignore);
    eng.set_protection(&wide);
    auto src = [](uint32_t i) {
        net::Packet p = syn("10.0.0.0");
        p.src = net::IpAddr::v4(0x0a000000u + i);
        return p;
    };
    size_t logged = 0;
    for (uint32_t i = 0; i < protected_log_max_sources + 100; ++i)
        logged += !eng.on_probe(src(i), true, t0).log_suppressed;
    EXPECT_EQ(logged, protected_log_max_sources);  // the rest stay quiet within the hour
    // An hour later the remembered sources age out and new ones are logged again.
    EXPECT_FALSE(eng.on_probe(src(protected_log_max_sources + 200), true, t0 + 3600s).log_suppressed);
}

TEST_F(ProtectedEngine, IgnoreListStaysSilentAndWinsOverProtection) {
    cfg.ignore.insert(*net::Cidr::parse("203.0.113.0/24"));
    eng.reconfigure(cfg);
    EXPECT_EQ(eng.on_probe(syn("203.0.113.2"), true, t0).outcome, Outcome::ignored);
    EXPECT_EQ(eng.counters().protected_hits, 0u);
}

TEST_F(ProtectedEngine, NoProtectionSetMeansNoneProtected) {
    eng.set_protection(nullptr);
    EXPECT_EQ(eng.on_probe(syn("203.0.113.2"), true, t0).outcome, Outcome::reported);
}

TEST_F(ProtectedEngine, UnwatchedPortIsNotAProtectedHit) {
    EXPECT_EQ(eng.on_probe(syn("203.0.113.2"), false, t0).outcome, Outcome::not_watched);
    EXPECT_EQ(eng.counters().protected_hits, 0u);
}

}  // namespace
}  // namespace portsentry::engine
