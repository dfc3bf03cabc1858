// engine::Engine: TCP and UDP are separate detectors, as in portsentry 1.2
// (two processes, two blocked files). A host reported for one protocol is
// reported again when it probes the other; the nft ban, which drops every
// protocol, is per source and is never asked for twice. Clock injected.
#include <gtest/gtest.h>

#include <optional>

#include "portsentry/engine/engine.hpp"
#include "probes.hpp"

namespace portsentry::engine {
namespace {

using namespace std::chrono_literals;
using Outcome = Decision::Outcome;
using net::L4;

const TimePoint t0 = TimePoint{} + 1000h;
const char* const kHost = "198.51.100.2";

net::IpAddr ip(const char* text) { return *net::IpAddr::parse(text); }

net::Packet udp_probe(const char* src, uint16_t dport = 161) {
    net::Packet p = pstest::syn(src, dport);
    p.proto = L4::udp;
    p.tcp_flags = 0;
    return p;
}

class ProtocolTest : public ::testing::Test {
protected:
    ProtocolTest() {
        cfg.tcp.block = 1;
        cfg.udp.block = 1;
        cfg.scan_trigger = 0;
        cfg.scan_window = 3600s;
        cfg.ban_time = 3600s;
    }
    Engine& engine() {
        if (!eng_) eng_.emplace(cfg, 0x5eed);
        return *eng_;
    }
    Decision tcp(TimePoint now, const char* src = kHost) { return engine().on_probe(pstest::syn(src, 23), true, now); }
    Decision udp(TimePoint now, const char* src = kHost) { return engine().on_probe(udp_probe(src), true, now); }

    Settings cfg;

private:
    std::optional<Engine> eng_;
};

// BLOCK 0 (the fail2ban setup): each protocol reports the host once.
TEST_F(ProtocolTest, Block0TcpFirstThenUdpIsReportedForEach) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    const Decision first = tcp(t0);
    EXPECT_EQ(first.outcome, Outcome::reported);
    EXPECT_FALSE(first.other_protocol);
    EXPECT_EQ(tcp(t0 + 1s).outcome, Outcome::already_blocked);
    const Decision second = udp(t0 + 2s);
    EXPECT_EQ(second.outcome, Outcome::reported);
    EXPECT_TRUE(second.other_protocol);
    EXPECT_EQ(second.verdict, Verdict::accept);
    EXPECT_EQ(udp(t0 + 3s).outcome, Outcome::already_blocked);
    EXPECT_EQ(tcp(t0 + 4s).outcome, Outcome::already_blocked);
    EXPECT_EQ(engine().counters().reported, 2u);
}

TEST_F(ProtocolTest, Block0UdpFirstThenTcpIsReportedForEach) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    EXPECT_EQ(udp(t0).outcome, Outcome::reported);
    EXPECT_EQ(udp(t0 + 1s).outcome, Outcome::already_blocked);
    const Decision d = tcp(t0 + 2s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.other_protocol);
    EXPECT_EQ(tcp(t0 + 3s).outcome, Outcome::already_blocked);
}

// hosts.deny without KILL_ROUTE: probes keep arriving; each protocol gets its
// own responses, none of them an nft ban.
TEST_F(ProtocolTest, HostsDenyOnlyRespondsOncePerProtocol) {
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    const Decision t = tcp(t0);
    ASSERT_EQ(t.outcome, Outcome::reported);
    EXPECT_TRUE(t.hosts_deny);
    EXPECT_FALSE(t.ban);
    EXPECT_EQ(tcp(t0 + 1s).outcome, Outcome::already_blocked);
    const Decision u = udp(t0 + 1s);
    ASSERT_EQ(u.outcome, Outcome::reported);
    EXPECT_TRUE(u.hosts_deny);
    EXPECT_TRUE(u.run_cmd);
    EXPECT_FALSE(u.ban);
    EXPECT_TRUE(u.other_protocol);
    EXPECT_EQ(u.verdict, Verdict::drop);
    EXPECT_EQ(udp(t0 + 2s).outcome, Outcome::already_blocked);
    EXPECT_TRUE(engine().is_blocked(ip(kHost), L4::tcp, t0 + 2s));
    EXPECT_TRUE(engine().is_blocked(ip(kHost), L4::udp, t0 + 2s));
}

// Each protocol's response lasts ban_time from its own report: at N-1 still
// blocked, at N reported afresh (DESIGN §7: an expired block is detected again).
TEST_F(ProtocolTest, EachProtocolsBlockExpiresOnItsOwnClock) {
    cfg.kill_hosts_deny = true;
    ASSERT_EQ(tcp(t0).outcome, Outcome::reported);
    ASSERT_EQ(udp(t0 + 10s).outcome, Outcome::reported);
    EXPECT_EQ(tcp(t0 + 1h - 1ns).outcome, Outcome::already_blocked);
    EXPECT_EQ(tcp(t0 + 1h).outcome, Outcome::reported);
    EXPECT_EQ(udp(t0 + 1h + 10s - 1ns).outcome, Outcome::already_blocked);
    const Decision d = udp(t0 + 1h + 10s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.other_protocol);  // TCP's renewed block is active
}

TEST_F(ProtocolTest, Block2RunsTheCommandForEachProtocol) {
    cfg.tcp.block = 2;
    cfg.udp.block = 2;
    cfg.kill_run_cmd = true;
    EXPECT_TRUE(tcp(t0).run_cmd);
    const Decision u = udp(t0 + 1s);
    EXPECT_EQ(u.outcome, Outcome::reported);
    EXPECT_TRUE(u.run_cmd);
    EXPECT_FALSE(u.ban);
    EXPECT_EQ(udp(t0 + 2s).outcome, Outcome::already_blocked);
}

// The nft ban drops every protocol: a probe of the other protocol that still
// reaches us (queued in the same batch, before the element was in the set) is
// already blocked, and no second ban (no extension, no escalation) is asked for.
TEST_F(ProtocolTest, AnNftBanCoversTheOtherProtocol) {
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    const Decision t = tcp(t0);
    ASSERT_EQ(t.outcome, Outcome::reported);
    EXPECT_TRUE(t.ban);
    const Decision u = udp(t0);
    EXPECT_EQ(u.outcome, Outcome::already_blocked);
    EXPECT_FALSE(u.ban);
    EXPECT_EQ(engine().counters().reported, 1u);
}

TEST_F(ProtocolTest, AnOutsideBanCoversBothProtocols) {
    cfg.kill_route = KillRoute::builtin;
    engine().mark_blocked(ip(kHost), t0, t0 + 1h);  // admin ban, restore, escalation
    EXPECT_EQ(tcp(t0 + 1s).outcome, Outcome::already_blocked);
    EXPECT_EQ(udp(t0 + 1s).outcome, Outcome::already_blocked);
    // At the ban's end both protocols detect the host again.
    EXPECT_EQ(udp(t0 + 1h).outcome, Outcome::reported);
}

// BLOCK_TCP 0, BLOCK_UDP 1 with KILL_ROUTE: the UDP report is the host's first
// nft ban, asked for even though TCP reported it already.
TEST_F(ProtocolTest, SecondProtocolMayBanWhenTheFirstDidNot) {
    cfg.tcp.block = 0;
    cfg.kill_route = KillRoute::builtin;
    const Decision t = tcp(t0);
    ASSERT_EQ(t.outcome, Outcome::reported);
    EXPECT_FALSE(t.ban);
    const Decision u = udp(t0 + 1s);
    EXPECT_EQ(u.outcome, Outcome::reported);
    EXPECT_TRUE(u.ban);
    EXPECT_TRUE(u.other_protocol);
    EXPECT_EQ(tcp(t0 + 2s).outcome, Outcome::already_blocked);  // now banned: every protocol
}

// "already blocked" lines: one per source and protocol per interval.
TEST_F(ProtocolTest, AlreadyBlockedLogLimitIsPerProtocol) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    tcp(t0);
    udp(t0);
    EXPECT_FALSE(tcp(t0 + 1s).log_suppressed);
    EXPECT_FALSE(udp(t0 + 1s).log_suppressed);  // the other protocol's first line
    EXPECT_TRUE(tcp(t0 + 2s).log_suppressed);
    EXPECT_TRUE(udp(t0 + 61s - 1ns).log_suppressed);
    EXPECT_FALSE(udp(t0 + 61s).log_suppressed);
    EXPECT_EQ(engine().counters().log_suppressed, 2u);
}

// SCAN_TRIGGER counts a source's probes of both protocols; the probe that
// fires decides which protocol reports.
TEST_F(ProtocolTest, TriggerCountsBothProtocolsAndTheFiringProbeReports) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    cfg.scan_trigger = 2;
    EXPECT_EQ(tcp(t0).outcome, Outcome::counting);
    const Decision u = udp(t0 + 1s);
    EXPECT_EQ(u.outcome, Outcome::reported);
    EXPECT_EQ(u.type, ScanType::udp);
    EXPECT_EQ(tcp(t0 + 2s).outcome, Outcome::counting);  // TCP not reported yet: counts afresh
    EXPECT_EQ(tcp(t0 + 3s).outcome, Outcome::reported);
}

// The second protocol's report takes a ban-rate slot like any other (BLOCK 1).
TEST_F(ProtocolTest, SecondProtocolIsSubjectToTheBanRateCaps) {
    cfg.kill_hosts_deny = true;
    cfg.ban_rate_per_second = 1;
    ASSERT_EQ(tcp(t0).outcome, Outcome::reported);
    EXPECT_EQ(udp(t0 + 999ms).outcome, Outcome::rate_limited);
    EXPECT_EQ(udp(t0 + 1s).outcome, Outcome::reported);
}

// A failed response forgets that protocol's report (and the ban it asked
// for), not the other protocol's.
TEST_F(ProtocolTest, ForgetOneProtocolKeepsTheOther) {
    cfg.tcp.block = 0;
    cfg.kill_route = KillRoute::builtin;
    ASSERT_EQ(tcp(t0).outcome, Outcome::reported);
    ASSERT_TRUE(udp(t0).ban);
    engine().forget(ip(kHost), L4::udp);  // the ban failed: "Could not block host"
    EXPECT_FALSE(engine().is_blocked(ip(kHost), t0));
    EXPECT_EQ(tcp(t0 + 1s).outcome, Outcome::already_blocked);  // TCP's report is kept
    const Decision again = udp(t0 + 1s);
    EXPECT_EQ(again.outcome, Outcome::reported);
    EXPECT_TRUE(again.ban);
}

TEST_F(ProtocolTest, ForgetTheSourceForgetsBothProtocols) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    tcp(t0);
    udp(t0);
    engine().forget(ip(kHost));  // unban / ban ended early
    EXPECT_EQ(tcp(t0 + 1s).outcome, Outcome::reported);
    EXPECT_EQ(udp(t0 + 1s).outcome, Outcome::reported);
}

TEST_F(ProtocolTest, ClassicTripwiresAreSeparateDetectorsToo) {
    cfg.tcp.block = 0;
    cfg.udp.block = 0;
    EXPECT_EQ(engine().on_tripwire(ip(kHost), L4::tcp, 143, t0).outcome, Outcome::reported);
    const Decision u = engine().on_tripwire(ip(kHost), L4::udp, 69, t0 + 1s);
    EXPECT_EQ(u.outcome, Outcome::reported);
    EXPECT_EQ(u.type, ScanType::udp_tripwire);
    EXPECT_EQ(engine().on_tripwire(ip(kHost), L4::udp, 69, t0 + 2s).outcome, Outcome::already_blocked);
}

}  // namespace
}  // namespace portsentry::engine
