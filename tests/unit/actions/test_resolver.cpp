// RESOLVE_HOST: bounded waits, caps, backoff, cache, and hostname hygiene —
// with an injected lookup, so no DNS is involved and timing is controlled.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "portsentry/actions/log.hpp"
#include "portsentry/actions/resolver.hpp"

using namespace portsentry::actions;
using portsentry::net::IpAddr;
using namespace std::chrono_literals;

namespace {
IpAddr ip(const char* s) { return *IpAddr::parse(s); }

ResolverOptions on(std::chrono::milliseconds timeout = 500ms) {
    ResolverOptions o;
    o.enabled = true;
    o.timeout = timeout;
    o.per_second = 1000;
    return o;
}
}  // namespace

TEST(SafeHostname, AcceptsDnsNamesOnly) {
    EXPECT_TRUE(is_safe_hostname("scanner-01.example.net"));
    EXPECT_TRUE(is_safe_hostname("_spf.example.org"));
    EXPECT_FALSE(is_safe_hostname(""));
    EXPECT_FALSE(is_safe_hostname(";rm -rf /"));
    EXPECT_FALSE(is_safe_hostname("$(reboot)"));
    EXPECT_FALSE(is_safe_hostname("evil/192.0.2.1 Port: 1 TCP Blocked"));  // would forge a record
    EXPECT_FALSE(is_safe_hostname("a\nb"));
    EXPECT_TRUE(is_safe_hostname(std::string(253, 'a')));
    EXPECT_FALSE(is_safe_hostname(std::string(254, 'a')));
}

TEST(Resolver, DisabledReturnsAddressWithoutLookup) {
    std::atomic<int> calls{0};
    Resolver r(ResolverOptions{}, [&](const IpAddr&) {
        ++calls;
        return std::optional<std::string>("x.example.net");
    });
    EXPECT_EQ(r.resolve(ip("198.51.100.2")), "198.51.100.2");
    EXPECT_EQ(r.resolve(ip("2001:db8::5")), "2001:db8::5");
    EXPECT_EQ(calls.load(), 0);
}

TEST(Resolver, NameAndFallbacks) {
    Resolver r(on(), [](const IpAddr& a) -> std::optional<std::string> {
        if (a == *IpAddr::parse("198.51.100.2")) return "scanner.example.net";
        if (a == *IpAddr::parse("198.51.100.3")) return "$(reboot).example.net";
        return std::nullopt;  // no PTR
    });
    EXPECT_EQ(r.resolve(ip("198.51.100.2")), "scanner.example.net");
    EXPECT_EQ(r.resolve(ip("198.51.100.3")), "198.51.100.3");  // unsafe answer rejected
    EXPECT_EQ(r.resolve(ip("198.51.100.4")), "198.51.100.4");
    auto c = r.counters();
    EXPECT_EQ(c.resolved, 1u);
    EXPECT_EQ(c.unsafe, 1u);
    EXPECT_EQ(c.no_name, 1u);
    // Cached: no new lookup.
    EXPECT_EQ(r.resolve(ip("198.51.100.2")), "scanner.example.net");
    EXPECT_EQ(r.counters().cache_hits, 1u);
    EXPECT_EQ(r.counters().lookups, 3u);
}

TEST(Resolver, SlowLookupTimesOutThenBacksOff) {
    auto slow = std::make_shared<std::atomic<int>>(0);
    auto o = on(100ms);
    o.backoff = 60s;
    Resolver r(o, [slow](const IpAddr&) -> std::optional<std::string> {
        ++*slow;
        std::this_thread::sleep_for(400ms);
        return "late.example.net";
    });
    auto t = Clock::now();
    EXPECT_EQ(r.resolve(ip("203.0.113.7")), "203.0.113.7");
    auto waited = Clock::now() - t;
    EXPECT_GE(waited, 100ms);
    EXPECT_LT(waited, 350ms);  // bounded by the timeout, not by the lookup
    EXPECT_EQ(r.counters().timeouts, 1u);

    // Backoff: the next lookup is not even tried — no second wait.
    t = Clock::now();
    EXPECT_EQ(r.resolve(ip("203.0.113.8")), "203.0.113.8");
    EXPECT_LT(Clock::now() - t, 50ms);
    EXPECT_EQ(r.counters().capped, 1u);

    // The late answer was cached for next time.
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(r.resolve(ip("203.0.113.7")), "late.example.net");
    EXPECT_EQ(slow->load(), 1);
}

TEST(Resolver, InFlightCapFallsBackImmediately) {
    auto release = std::make_shared<std::atomic<bool>>(false);
    auto o = on(50ms);
    o.workers = 1;
    o.backoff = 0ms;
    Resolver r(o, [release](const IpAddr&) -> std::optional<std::string> {
        while (!*release) std::this_thread::sleep_for(5ms);
        return "x.example.net";
    });
    EXPECT_EQ(r.resolve(ip("192.0.2.1")), "192.0.2.1");  // times out, worker stays busy
    auto t = Clock::now();
    EXPECT_EQ(r.resolve(ip("192.0.2.2")), "192.0.2.2");  // no free worker: no wait at all
    EXPECT_LT(Clock::now() - t, 30ms);
    EXPECT_EQ(r.counters().capped, 1u);
    *release = true;
}

TEST(Resolver, PerSecondCap) {
    auto o = on();
    o.per_second = 1;  // burst 2
    Resolver r(o, [](const IpAddr&) { return std::optional<std::string>("n.example.net"); });
    EXPECT_EQ(r.resolve(ip("192.0.2.1")), "n.example.net");
    EXPECT_EQ(r.resolve(ip("192.0.2.2")), "n.example.net");
    EXPECT_EQ(r.resolve(ip("192.0.2.3")), "192.0.2.3");
    EXPECT_EQ(r.counters().capped, 1u);
}

// The daemon's mode: lookups start when reports are queued (prefetch), so a
// 200 ms resolver costs the response thread one wait, not one per report;
// resolve() never starts a lookup of its own.
TEST(Resolver, PrefetchedLookupsOverlapAndResolveNeverStartsOne) {
    auto o = on(500ms);
    o.prefetch_only = true;
    o.per_second = 100;
    std::atomic<int> calls{0};
    Resolver r(o, [&](const IpAddr&) -> std::optional<std::string> {
        ++calls;
        std::this_thread::sleep_for(200ms);
        return "slow.example.net";
    });
    EXPECT_EQ(r.resolve(ip("192.0.2.9")), "192.0.2.9");  // not prefetched: no lookup, no wait
    EXPECT_EQ(calls.load(), 0);
    r.prefetch(ip("192.0.2.1"));
    r.prefetch(ip("192.0.2.2"));
    r.prefetch(ip("192.0.2.1"));  // already running: not twice
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(r.resolve(ip("192.0.2.1")), "slow.example.net");
    EXPECT_EQ(r.resolve(ip("192.0.2.2")), "slow.example.net");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 350ms);  // one wait, not two
    EXPECT_EQ(calls.load(), 2);
}
