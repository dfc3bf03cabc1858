// engine::Engine: every rule at its boundary, with an injected clock.
#include <gtest/gtest.h>

#include <optional>

#include "portsentry/engine/engine.hpp"

namespace portsentry::engine {
namespace {

using namespace std::chrono_literals;
using Outcome = Decision::Outcome;
using net::L4;

// Any fixed point works: the engine never reads the clock itself.
const TimePoint t0 = TimePoint{} + 1000h;

net::IpAddr ip(const char* text) {
    auto a = net::IpAddr::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(net::IpAddr{});
}

net::Packet probe(const char* src, uint16_t dport, L4 proto = L4::tcp,
                  uint8_t flags = net::tcpflag::SYN) {
    net::Packet p;
    p.src = ip(src);
    p.dst = ip(p.src.is_v6() ? "2001:db8:ffff::1" : "203.0.113.1");
    p.proto = proto;
    p.sport = 40000;
    p.dport = dport;
    p.tcp_flags = proto == L4::tcp ? flags : 0;
    return p;
}

class EngineTest : public ::testing::Test {
protected:
    EngineTest() {
        cfg.tcp.block = 1;
        cfg.udp.block = 1;
        cfg.scan_trigger = 0;
        cfg.scan_window = 3600s;
        cfg.ban_time = 3600s;
    }
    // Built on first use so each test can shape `cfg` first.
    Engine& engine() {
        if (!eng_) eng_.emplace(cfg, 0x5eed);
        return *eng_;
    }
    Decision syn(const char* src, TimePoint now, uint16_t port = 23) {
        return engine().on_probe(probe(src, port), true, now);
    }
    Decision udp(const char* src, TimePoint now, uint16_t port = 161) {
        return engine().on_probe(probe(src, port, L4::udp), true, now);
    }

    Settings cfg;

private:
    std::optional<Engine> eng_;
};

// ---- SCAN_TRIGGER -----------------------------------------------------------

TEST_F(EngineTest, TriggerFiresOnTheNthProbeNotBefore) {
    cfg.scan_trigger = 3;
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::counting);
    EXPECT_EQ(syn("198.51.100.2", t0 + 1s, 24).outcome, Outcome::counting);  // N-1
    const Decision d = syn("198.51.100.2", t0 + 2s, 25);                      // N
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_EQ(engine().counters().counting, 2u);
    EXPECT_EQ(engine().counters().reported, 1u);
}

class TriggerFirstProbe : public EngineTest, public ::testing::WithParamInterface<unsigned> {};

TEST_P(TriggerFirstProbe, ZeroAndOneFireOnTheFirstProbe) {
    cfg.scan_trigger = GetParam();
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::reported);
}
INSTANTIATE_TEST_SUITE_P(Trigger, TriggerFirstProbe, ::testing::Values(0u, 1u));

TEST_F(EngineTest, TriggerTwoDoesNotFireOnTheFirstProbe) {
    cfg.scan_trigger = 2;
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::counting);
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::reported);
}

TEST_F(EngineTest, RepeatsToTheSamePortCount) {
    cfg.scan_trigger = 3;
    syn("198.51.100.2", t0, 80);
    syn("198.51.100.2", t0, 80);
    EXPECT_EQ(syn("198.51.100.2", t0, 80).outcome, Outcome::reported);
}

TEST_F(EngineTest, SourcesAreCountedSeparately) {
    cfg.scan_trigger = 2;
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::counting);
    EXPECT_EQ(syn("198.51.100.3", t0).outcome, Outcome::counting);
    EXPECT_EQ(syn("2001:db8::2", t0).outcome, Outcome::counting);
    EXPECT_EQ(syn("198.51.100.3", t0).outcome, Outcome::reported);
    EXPECT_EQ(syn("2001:db8::2", t0).outcome, Outcome::reported);
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::reported);
}

TEST_F(EngineTest, ProbeJustInsideTheWindowStillCounts) {
    cfg.scan_trigger = 2;
    syn("198.51.100.2", t0);
    EXPECT_EQ(syn("198.51.100.2", t0 + cfg.scan_window - 1ns).outcome, Outcome::reported);
}

TEST_F(EngineTest, ProbeExactlyAtWindowEndStartsANewWindow) {
    cfg.scan_trigger = 2;
    syn("198.51.100.2", t0);
    const TimePoint t1 = t0 + cfg.scan_window;
    EXPECT_EQ(syn("198.51.100.2", t1).outcome, Outcome::counting);  // count restarts at 1
    // The new window opened at t1, so a probe before t1 + window completes it.
    EXPECT_EQ(syn("198.51.100.2", t1 + cfg.scan_window - 1s).outcome, Outcome::reported);
}

TEST_F(EngineTest, ZeroWindowNeverExpires) {
    cfg.scan_trigger = 2;
    cfg.scan_window = 0s;
    syn("198.51.100.2", t0);
    EXPECT_EQ(syn("198.51.100.2", t0 + 24h * 365).outcome, Outcome::reported);
}

TEST_F(EngineTest, NotWatchedIsAcceptedAndNotCounted) {
    cfg.scan_trigger = 2;
    const Decision d = engine().on_probe(probe("198.51.100.2", 22), false, t0);
    EXPECT_EQ(d.outcome, Outcome::not_watched);
    EXPECT_EQ(d.verdict, Verdict::accept);
    EXPECT_EQ(engine().tracked_sources(), 0u);
    EXPECT_EQ(syn("198.51.100.2", t0).outcome, Outcome::counting);  // first counted probe
    EXPECT_EQ(engine().counters().not_watched, 1u);
}

// ---- BLOCK_* responses ------------------------------------------------------

TEST_F(EngineTest, Block1WithEveryKillSetRunsEveryResponse) {
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_EQ(d.verdict, Verdict::drop);
    EXPECT_EQ(d.block, 1);
    EXPECT_TRUE(d.ban);
    EXPECT_FALSE(d.custom_kill_route);  // stock iptables line: the nft ban replaces it
    EXPECT_TRUE(d.hosts_deny);
    EXPECT_TRUE(d.run_cmd);
    EXPECT_EQ(d.ban_time, 3600s);
}

TEST_F(EngineTest, Block1CustomKillRouteIsBannedAndExeced) {
    cfg.kill_route = KillRoute::custom;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_TRUE(d.ban);
    EXPECT_TRUE(d.custom_kill_route);
    EXPECT_FALSE(d.hosts_deny);
    EXPECT_FALSE(d.run_cmd);
}

TEST_F(EngineTest, Block1WithoutKillsDropsReportsButDoesNotBan) {
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_EQ(d.verdict, Verdict::drop);
    EXPECT_FALSE(d.ban);
    EXPECT_FALSE(d.hosts_deny);
    EXPECT_FALSE(d.run_cmd);
    EXPECT_FALSE(d.custom_kill_route);
    // Still "blocked" for ban_time, so the responses are not repeated per probe.
    EXPECT_EQ(syn("198.51.100.2", t0 + 1s).outcome, Outcome::already_blocked);
}

TEST_F(EngineTest, Block1DropsWhileCountingAndWhenAlreadyBlocked) {
    cfg.scan_trigger = 2;
    cfg.kill_route = KillRoute::builtin;
    EXPECT_EQ(syn("198.51.100.2", t0).verdict, Verdict::drop);        // counting
    EXPECT_EQ(syn("198.51.100.2", t0).verdict, Verdict::drop);        // reported
    const Decision d = syn("198.51.100.2", t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::already_blocked);
    EXPECT_EQ(d.verdict, Verdict::drop);
    EXPECT_FALSE(d.ban);  // responses only at the trigger
    EXPECT_EQ(engine().counters().drops, 3u);
}

TEST_F(EngineTest, Block2RunsOnlyTheCommandAndDrops) {
    cfg.tcp.block = 2;
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_EQ(d.verdict, Verdict::drop);
    EXPECT_EQ(d.block, 2);
    EXPECT_TRUE(d.run_cmd);
    EXPECT_FALSE(d.ban);
    EXPECT_FALSE(d.hosts_deny);
    EXPECT_FALSE(d.custom_kill_route);
    const Decision again = syn("198.51.100.2", t0 + 1s);
    EXPECT_EQ(again.outcome, Outcome::already_blocked);  // the command runs once per ban_time
    EXPECT_FALSE(again.run_cmd);
    EXPECT_EQ(again.verdict, Verdict::drop);
}

TEST_F(EngineTest, Block0AcceptsReportsOnceAndRunsNothing) {
    cfg.tcp.block = 0;
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.outcome, Outcome::reported);  // history/blocked still written
    EXPECT_EQ(d.verdict, Verdict::accept);
    EXPECT_EQ(d.block, 0);
    EXPECT_FALSE(d.ban || d.hosts_deny || d.run_cmd || d.custom_kill_route);
    EXPECT_FALSE(engine().is_blocked(ip("198.51.100.2"), t0));
    // Reported once per run: long after any ban_time it is still "already blocked".
    const Decision later = syn("198.51.100.2", t0 + 30 * 24h);
    EXPECT_EQ(later.outcome, Outcome::already_blocked);
    EXPECT_EQ(later.verdict, Verdict::accept);
}

TEST_F(EngineTest, Block0CountingIsAccepted) {
    cfg.tcp.block = 0;
    cfg.scan_trigger = 2;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.outcome, Outcome::counting);
    EXPECT_EQ(d.verdict, Verdict::accept);
}

// BLOCK value × protocol: the probed protocol's value applies, the other
// protocol is set to a different value to prove it is not consulted.
struct BlockCase {
    int block;
    L4 proto;
};
class BlockMatrix : public EngineTest, public ::testing::WithParamInterface<BlockCase> {};

TEST_P(BlockMatrix, ProtocolSelectsItsBlockValue) {
    const auto [block, proto] = GetParam();
    (proto == L4::tcp ? cfg.tcp : cfg.udp).block = block;
    (proto == L4::tcp ? cfg.udp : cfg.tcp).block = block == 1 ? 0 : 1;
    cfg.scan_trigger = 2;
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    auto send = [&](TimePoint t) {
        return proto == L4::tcp ? syn("192.0.2.9", t) : udp("192.0.2.9", t);
    };
    const Verdict expect = block == 0 ? Verdict::accept : Verdict::drop;

    const Decision counting = send(t0);
    EXPECT_EQ(counting.outcome, Outcome::counting);
    EXPECT_EQ(counting.verdict, expect);
    EXPECT_EQ(counting.block, block);

    const Decision rep = send(t0 + 1s);
    EXPECT_EQ(rep.outcome, Outcome::reported);
    EXPECT_EQ(rep.verdict, expect);
    EXPECT_EQ(rep.type, proto == L4::tcp ? ScanType::tcp_syn : ScanType::udp);
    EXPECT_EQ(rep.ban, block == 1);
    EXPECT_EQ(rep.hosts_deny, block == 1);
    EXPECT_EQ(rep.run_cmd, block != 0);
    EXPECT_EQ(engine().is_blocked(ip("192.0.2.9"), t0 + 1s), block != 0);

    const Decision again = send(t0 + 2s);
    EXPECT_EQ(again.outcome, Outcome::already_blocked);
    EXPECT_EQ(again.verdict, expect);
}

INSTANTIATE_TEST_SUITE_P(
    Block, BlockMatrix,
    ::testing::Values(BlockCase{0, L4::tcp}, BlockCase{1, L4::tcp}, BlockCase{2, L4::tcp},
                      BlockCase{0, L4::udp}, BlockCase{1, L4::udp}, BlockCase{2, L4::udp}),
    [](const auto& info) {
        return std::string(net::keyword(info.param.proto)) + "_block" +
               std::to_string(info.param.block);
    });

TEST_F(EngineTest, DryRunActsAsBlock0ForEverything) {
    cfg.dry_run = true;
    cfg.tcp.block = 1;
    cfg.udp.block = 2;
    cfg.kill_route = KillRoute::builtin;
    cfg.kill_hosts_deny = true;
    cfg.kill_run_cmd = true;
    for (const Decision& d : {syn("198.51.100.2", t0), udp("198.51.100.3", t0)}) {
        EXPECT_EQ(d.outcome, Outcome::reported);
        EXPECT_EQ(d.verdict, Verdict::accept);
        EXPECT_EQ(d.block, 0);
        EXPECT_FALSE(d.ban || d.hosts_deny || d.run_cmd || d.custom_kill_route);
    }
    EXPECT_FALSE(engine().is_blocked(ip("198.51.100.2"), t0));
    const Decision again = syn("198.51.100.2", t0 + 1s);
    EXPECT_EQ(again.outcome, Outcome::already_blocked);
    EXPECT_EQ(again.verdict, Verdict::accept);
    EXPECT_EQ(engine().counters().drops, 0u);
}

// ---- ignore list --------------------------------------------------------------

TEST_F(EngineTest, IgnoredIPv4CidrIsAcceptedAndNotTracked) {
    cfg.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    const Decision d = syn("192.0.2.77", t0);
    EXPECT_EQ(d.outcome, Outcome::ignored);
    EXPECT_EQ(d.verdict, Verdict::accept);
    EXPECT_EQ(engine().tracked_sources(), 0u);
    EXPECT_EQ(syn("192.0.3.1", t0).outcome, Outcome::reported);  // just outside the /24
    EXPECT_EQ(engine().counters().ignored, 1u);
}

TEST_F(EngineTest, IgnoredIPv6CidrIsAccepted) {
    cfg.ignore.insert(*net::Cidr::parse("2001:db8:1::/48"));
    EXPECT_EQ(syn("2001:db8:1:ffff::5", t0).outcome, Outcome::ignored);
    EXPECT_EQ(udp("2001:db8:1::5", t0).outcome, Outcome::ignored);
    EXPECT_EQ(syn("2001:db8:2::5", t0).outcome, Outcome::reported);
}

TEST_F(EngineTest, MappedIPv4IsTheSameSourceAsPlainIPv4) {
    cfg.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    cfg.scan_trigger = 2;
    EXPECT_EQ(engine().on_tripwire(ip("::ffff:192.0.2.5"), L4::tcp, 23, t0).outcome,
              Outcome::ignored);
    EXPECT_EQ(engine().on_tripwire(ip("::ffff:198.51.100.5"), L4::tcp, 23, t0).outcome,
              Outcome::counting);
    EXPECT_EQ(syn("198.51.100.5", t0).outcome, Outcome::reported);
    EXPECT_TRUE(engine().is_blocked(ip("::ffff:198.51.100.5"), t0));
}

// ---- already blocked ----------------------------------------------------------

TEST_F(EngineTest, BanExpiresExactlyAtBanTime) {
    cfg.kill_route = KillRoute::builtin;
    cfg.scan_trigger = 2;
    syn("198.51.100.2", t0 - 1s);
    ASSERT_EQ(syn("198.51.100.2", t0).outcome, Outcome::reported);
    EXPECT_TRUE(engine().is_blocked(ip("198.51.100.2"), t0 + cfg.ban_time - 1ns));
    EXPECT_EQ(syn("198.51.100.2", t0 + cfg.ban_time - 1ns).outcome, Outcome::already_blocked);
    EXPECT_FALSE(engine().is_blocked(ip("198.51.100.2"), t0 + cfg.ban_time));
    // Detected again from zero: the trigger needs its N probes anew.
    EXPECT_EQ(syn("198.51.100.2", t0 + cfg.ban_time).outcome, Outcome::counting);
    const Decision again = syn("198.51.100.2", t0 + cfg.ban_time + 1s);
    EXPECT_EQ(again.outcome, Outcome::reported);
    EXPECT_TRUE(again.ban);
}

TEST_F(EngineTest, BanTimeZeroIsPermanent) {
    cfg.ban_time = 0s;
    cfg.kill_route = KillRoute::builtin;
    const Decision d = syn("198.51.100.2", t0);
    EXPECT_EQ(d.ban_time, 0s);
    EXPECT_TRUE(engine().is_blocked(ip("198.51.100.2"), t0 + 24h * 3650));
    EXPECT_EQ(syn("198.51.100.2", t0 + 24h * 3650).outcome, Outcome::already_blocked);
}

TEST_F(EngineTest, AlreadyBlockedLogIsRateLimitedPerSource) {
    ASSERT_EQ(syn("198.51.100.2", t0).outcome, Outcome::reported);
    ASSERT_EQ(syn("198.51.100.3", t0).outcome, Outcome::reported);
    const TimePoint t1 = t0 + 1s;
    EXPECT_FALSE(syn("198.51.100.2", t1).log_suppressed);  // first line is written
    EXPECT_TRUE(syn("198.51.100.2", t1 + 1s).log_suppressed);
    EXPECT_FALSE(syn("198.51.100.3", t1 + 1s).log_suppressed);  // another source: own limit
    EXPECT_TRUE(syn("198.51.100.2", t1 + 60s - 1ns).log_suppressed);
    const Decision at = syn("198.51.100.2", t1 + 60s);
    EXPECT_EQ(at.outcome, Outcome::already_blocked);
    EXPECT_FALSE(at.log_suppressed);  // exactly 60 s later: written again
    EXPECT_EQ(engine().counters().log_suppressed, 2u);
    EXPECT_EQ(engine().counters().already_blocked, 5u);
}

TEST_F(EngineTest, ForgetMakesTheSourceDetectedAgain) {
    cfg.kill_route = KillRoute::builtin;
    ASSERT_EQ(syn("2001:db8::7", t0).outcome, Outcome::reported);
    engine().forget(ip("2001:db8::7"));  // admin unban
    EXPECT_FALSE(engine().is_blocked(ip("2001:db8::7"), t0));
    EXPECT_EQ(engine().tracked_sources(), 0u);
    const Decision d = syn("2001:db8::7", t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.ban);
}

TEST_F(EngineTest, ForgetClearsBlock0ReportedOnce) {
    cfg.tcp.block = 0;
    syn("198.51.100.2", t0);
    engine().forget(ip("198.51.100.2"));
    EXPECT_EQ(syn("198.51.100.2", t0 + 1s).outcome, Outcome::reported);
}

TEST_F(EngineTest, MarkBlockedFromOutside) {
    const net::IpAddr a = ip("203.0.113.50");
    const net::IpAddr b = ip("2001:db8::50");
    engine().mark_blocked(a, t0, std::nullopt);  // admin ban, permanent
    engine().mark_blocked(b, t0, t0 + 10min);    // restored ban with its expiry
    EXPECT_TRUE(engine().is_blocked(a, t0 + 24h * 3650));
    EXPECT_TRUE(engine().is_blocked(b, t0 + 10min - 1ns));
    EXPECT_FALSE(engine().is_blocked(b, t0 + 10min));
    EXPECT_EQ(syn("203.0.113.50", t0 + 1s).outcome, Outcome::already_blocked);
    EXPECT_EQ(syn("2001:db8::50", t0 + 10min).outcome, Outcome::reported);
    // An expiry already in the past clears the ban.
    engine().mark_blocked(a, t0 + 1h, t0 + 1h);
    EXPECT_FALSE(engine().is_blocked(a, t0 + 1h));
    EXPECT_FALSE(engine().is_blocked(ip("198.51.100.99"), t0));  // never seen
}

TEST_F(EngineTest, BannedHostThatProbesUnderBlock0StaysAccepted) {
    cfg.tcp.block = 0;
    engine().mark_blocked(ip("203.0.113.50"), t0, t0 + 1h);
    const Decision d = syn("203.0.113.50", t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::already_blocked);
    EXPECT_EQ(d.verdict, Verdict::accept);
}

// ---- reconfigure --------------------------------------------------------------

TEST_F(EngineTest, ReconfigureKeepsCountsAndBans) {
    cfg.scan_trigger = 3;
    cfg.kill_route = KillRoute::builtin;
    syn("198.51.100.2", t0);
    syn("198.51.100.2", t0 + 1s);
    engine().mark_blocked(ip("198.51.100.9"), t0, t0 + 1h);

    Settings next = cfg;  // SIGHUP: a new snapshot with another response
    next.tcp.block = 2;
    next.kill_run_cmd = true;
    engine().reconfigure(next);

    const Decision d = syn("198.51.100.2", t0 + 2s);
    EXPECT_EQ(d.outcome, Outcome::reported);  // third probe, counts survived
    EXPECT_EQ(d.block, 2);
    EXPECT_TRUE(d.run_cmd);
    EXPECT_FALSE(d.ban);
    EXPECT_EQ(syn("198.51.100.9", t0 + 3s).outcome, Outcome::already_blocked);
    EXPECT_EQ(engine().tracked_sources(), 2u);
}

TEST_F(EngineTest, ReconfigureFromBlock0ToBlock1BansAHostReportedUnder0) {
    cfg.tcp.block = 0;
    cfg.kill_route = KillRoute::builtin;
    syn("198.51.100.2", t0);
    Settings next = cfg;
    next.tcp.block = 1;
    engine().reconfigure(next);
    // "already blocked" under 1 means an active ban, which this host never had.
    const Decision d = syn("198.51.100.2", t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.ban);
}

TEST_F(EngineTest, ReconfigureReadsTheNewKillRoute) {
    cfg.kill_route = KillRoute::builtin;
    engine();
    Settings next = cfg;
    next.kill_route = KillRoute::custom;
    engine().reconfigure(next);
    EXPECT_TRUE(syn("198.51.100.2", t0).custom_kill_route);
}

// ---- tripwires, IP options ------------------------------------------------------

TEST_F(EngineTest, TripwiresUseTheSameTriggerAndBlocking) {
    cfg.scan_trigger = 2;
    cfg.udp.block = 0;
    cfg.kill_route = KillRoute::builtin;
    Decision d = engine().on_tripwire(ip("198.51.100.2"), L4::tcp, 143, t0);
    EXPECT_EQ(d.outcome, Outcome::counting);
    EXPECT_EQ(d.type, ScanType::tcp_connect);
    d = engine().on_tripwire(ip("198.51.100.2"), L4::tcp, 143, t0 + 1s);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_TRUE(d.ban);
    EXPECT_EQ(scan_name(d.type, 0), "Connect");

    engine().on_tripwire(ip("198.51.100.3"), L4::udp, 69, t0);
    d = engine().on_tripwire(ip("198.51.100.3"), L4::udp, 69, t0);
    EXPECT_EQ(d.outcome, Outcome::reported);
    EXPECT_EQ(d.type, ScanType::udp_tripwire);
    EXPECT_EQ(d.verdict, Verdict::accept);  // BLOCK_UDP 0
    EXPECT_FALSE(d.ban);
}

TEST_F(EngineTest, IpOptionsAreCarriedIntoTheDecision) {
    net::Packet p = probe("198.51.100.2", 23);
    p.ip_options = true;
    EXPECT_TRUE(engine().on_probe(p, true, t0).ip_options);
    EXPECT_FALSE(syn("198.51.100.3", t0).ip_options);
}

TEST_F(EngineTest, ProbeTypeComesFromTheFlags) {
    net::Packet p = probe("198.51.100.2", 23, L4::tcp, net::tcpflag::FIN | net::tcpflag::ACK);
    EXPECT_EQ(engine().on_probe(p, true, t0).type, ScanType::tcp_maimon);
}

TEST_F(EngineTest, CountersAddUp) {
    cfg.scan_trigger = 2;
    cfg.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    engine().on_probe(probe("198.51.100.2", 22), false, t0);  // not watched
    syn("192.0.2.1", t0);                                     // ignored
    syn("198.51.100.2", t0);                                  // counting
    syn("198.51.100.2", t0);                                  // reported
    syn("198.51.100.2", t0);                                  // already
    const Counters& c = engine().counters();
    EXPECT_EQ(c.packets, 5u);
    EXPECT_EQ(c.not_watched + c.ignored + c.counting + c.reported + c.already_blocked, c.packets);
    EXPECT_EQ(c.accepts, 2u);
    EXPECT_EQ(c.drops, 3u);
}

}  // namespace
}  // namespace portsentry::engine
