// Engine decisions per second on one core (Google Benchmark).
//  - HotSource*: one source probing again and again (a single noisy scanner;
//    the entry stays in cache).
//  - RandomSources*: every probe from a new random source with the table at its
//    cap, so each decision also evicts (a spoofed-source flood).
#include <benchmark/benchmark.h>

#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "portsentry/engine/engine.hpp"

namespace {

using namespace portsentry;
using namespace std::chrono_literals;
using engine::KillRoute;
using engine::Settings;

Settings make_settings(unsigned trigger, size_t cap) {
    Settings c;
    c.tcp.block = 1;
    c.scan_trigger = trigger;
    c.kill_route = KillRoute::builtin;
    c.max_tracked_sources = cap;
    // A realistic ignore list, so its lookup is part of the cost.
    for (const char* s : {"127.0.0.0/8", "192.0.2.0/24", "::1/128", "2001:db8:ffff::/48"})
        c.ignore.insert(*net::Cidr::parse(s));
    return c;
}

net::Packet syn_from(const net::IpAddr& a) {
    net::Packet p;
    p.src = a;
    p.proto = net::L4::tcp;
    p.dport = 23;
    p.tcp_flags = net::tcpflag::SYN;
    return p;
}

// Pre-generated so the generator is not measured; xorshift keeps them random.
std::vector<net::Packet> random_probes(size_t n, bool v6) {
    std::vector<net::Packet> out;
    out.reserve(n);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
        for (int k = 0; k < 8; ++k) b[(v6 ? 8 : 0) + k] = static_cast<uint8_t>(x >> (8 * k));
        if (!v6) b[0] = static_cast<uint8_t>(b[0] | 1);  // keep clear of 0.0.0.0/8
        out.push_back(syn_from(net::IpAddr::from_bytes(v6 ? AF_INET6 : AF_INET, b)));
    }
    return out;
}

// One source, trigger long past: every decision is already_blocked (the
// common case for a scanner that keeps going with BLOCK 0 or a full ban set).
void HotSourceAlreadyBlocked(benchmark::State& st) {
    const Settings cfg = make_settings(1, 100000);
    engine::Engine e(cfg, 42);
    const net::Packet p = syn_from(*net::IpAddr::parse("198.51.100.7"));
    engine::TimePoint now{};
    for (auto _ : st) {
        now += 1us;
        benchmark::DoNotOptimize(e.on_probe(p, true, now));
    }
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}
BENCHMARK(HotSourceAlreadyBlocked);

// One source below a trigger it never reaches: every decision is counting.
void HotSourceCounting(benchmark::State& st) {
    const Settings cfg = make_settings(UINT32_MAX, 100000);
    engine::Engine e(cfg, 42);
    const net::Packet p = syn_from(*net::IpAddr::parse("198.51.100.7"));
    engine::TimePoint now{};
    for (auto _ : st) {
        now += 1us;
        benchmark::DoNotOptimize(e.on_probe(p, true, now));
    }
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}
BENCHMARK(HotSourceCounting);

// Random sources with the table full: lookup miss + LRU eviction + insert.
// Arg 0: IPv4 / IPv6; Arg 1: trigger (1 = each source reported and banned).
void RandomSourcesAtCap(benchmark::State& st) {
    const bool v6 = st.range(0) != 0;
    const auto trigger = static_cast<unsigned>(st.range(1));
    constexpr size_t cap = 100000;  // the default max_tracked_sources
    const Settings cfg = make_settings(trigger, cap);
    engine::Engine e(cfg, 42);
    const std::vector<net::Packet> probes = random_probes(1 << 22, v6);
    engine::TimePoint now{};
    size_t i = 0;
    for (; i < 2 * cap; ++i) e.on_probe(probes[i], true, now);  // fill to the cap first
    for (auto _ : st) {
        now += 1us;
        benchmark::DoNotOptimize(e.on_probe(probes[i], true, now));
        i = (i + 1) & (probes.size() - 1);
    }
    if (e.tracked_sources() > cap) st.SkipWithError("state table exceeded its cap");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
    st.counters["tracked"] = static_cast<double>(e.tracked_sources());
    st.counters["state_MB"] = static_cast<double>(e.state_bytes()) / 1e6;
}
BENCHMARK(RandomSourcesAtCap)
    ->ArgNames({"v6", "trigger"})
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({1, 1})
    ->Args({1, 2});

}  // namespace

BENCHMARK_MAIN();
