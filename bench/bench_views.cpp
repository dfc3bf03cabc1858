// `status`, `why` and `list` over a big ban table: what the control socket's
// answer costs the loop, beside baselines from the same run (status in µs,
// the rest in ms).
//  - status: the table-dependent part of `status` (Stats::sample() reads the
//    active-ban gauges, one per family, and the record count) vs the O(n)
//    scans it did before (BanStore::active_count walked every record).
//  - why: render_why() for a banned and an unbanned address (covering():
//    one map lookup per prefix length), beside the status figure.
//  - list: render_list() text and JSON; linear means the same time per
//    record at every size (ratio to the smallest size's per-record time).
// The table is bench_restore.sh's (bench/ban_table_gen.hpp).
// Usage: bench_views [SIZES...]   (default 125000 250000 500000 1000000)
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "ban_table_gen.hpp"
#include "portsentry/daemon/views.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using portsentry::daemon::BanStore;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

size_t old_active_count(const BanStore& s, uint8_t family, int64_t now) {
    size_t n = 0;
    for (const auto& [p, r] : s.records()) n += p.addr.family == family && r.active(now);
    return n;
}

template <class F>
double timed(int rounds, F f) {
    std::vector<double> v;
    for (int i = 0; i < rounds; ++i) {
        const auto t0 = Clock::now();
        f(i);
        v.push_back(ms_since(t0));
    }
    return median(v);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<uint32_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<uint32_t>(std::strtoul(argv[i], nullptr, 10)));
    if (sizes.empty()) sizes = {125'000u, 250'000u, 500'000u, 1'000'000u};
    const int64_t now = std::time(nullptr);
    std::printf("status / why / list over N active bans (medians of 5; ms)\n");
    std::printf("%9s | %10s %12s %9s | %9s %9s | %9s %9s %10s %10s\n", "bans", "status us", "before ms", "ratio",
                "why hit", "why miss", "list", "list json", "ns/record", "vs first");
    double first_ns = 0;
    for (uint32_t n : sizes) {
        BanStore s("/nonexistent/bench_views");
        bench::generate_bans(s, n, now);
        const std::string hit = s.records().begin()->first.addr.to_string();
        // The first query after a load walks the ended records once (the daemon
        // pays it for its `ready` line); later ones only what ended since.
        (void)s.active_count(AF_INET, now);
        size_t sink = 0;
        const double status = timed(5, [&](int i) {
            sink += s.active_count(AF_INET, now + 1 + i) + s.active_count(AF_INET6, now + 1 + i) + s.records().size();
        });
        const double before = timed(5, [&](int i) {
            sink += old_active_count(s, AF_INET, now + 1 + i) + old_active_count(s, AF_INET6, now + 1 + i);
        });
        const portsentry::net::CidrSet ignore;
        const portsentry::daemon::WhyContext ctx{ignore, nullptr, {}};
        const double why_hit = timed(5, [&](int) { sink += portsentry::daemon::render_why(s, ctx, hit, now).text.size(); });
        const double why_miss =
            timed(5, [&](int) { sink += portsentry::daemon::render_why(s, ctx, "10.9.8.7", now).text.size(); });
        const double list = timed(5, [&](int) { sink += portsentry::daemon::render_list(s, false, now).text.size(); });
        const double list_json = timed(5, [&](int) { sink += portsentry::daemon::render_list(s, true, now).text.size(); });
        const double ns = list * 1e6 / n;
        if (first_ns == 0) first_ns = ns;
        std::printf("%9u | %10.2f %12.2f %9.6f | %9.4f %9.4f | %9.1f %9.1f %10.0f %9.2fx\n", n, status * 1e3, before,
                    status / before, why_hit, why_miss, list, list_json, ns, ns / first_ns);
        if (sink == 42) std::printf(" ");
    }
    return 0;
}
