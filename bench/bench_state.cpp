// Cost of persisting the ban table at scale, as the packet loop and the disk
// see it, beside the policy it replaced, measured in the same run:
//   journal (now): each change appends the changed record to
//     <state>.journal.<N> (formatted on the loop, written off it); a
//     compaction rewrites the snapshot when the journal has grown as big as
//     it (serialized in slices of 2000 records on the loop).
//   rewrite (before): a whole-file snapshot per pass, a pass starting at
//     most once per 20 × its own loop time (and per 1 s tick); same slices.
// Per table size: the loop steps spent saving (journal batches and
// compaction slices; wall and thread CPU time, max and p99.9) beside the old
// saver's fixed 2000-record slices, the bytes written per minute at CHURN bans/s, and the
// per-tick housekeeping that scaled with the table before (active-ban
// counts for status and the metrics, forgetting ended bans) vs the O(n) scans
// they replaced.
// Churn runs on a simulated clock (CHURN bans a second for MINUTES minutes,
// every change then journaled as the idle step would); the writer thread does
// real writes and fdatasyncs in DIR.
// Usage: bench_state [DIR] [SIZES...]   (default /var/tmp, 131072 1000000)
//        CHURN (default 20) and MINUTES (default 2) from the environment.
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_saver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using portsentry::daemon::BanStore;
using portsentry::daemon::StateSaver;
using portsentry::net::Cidr;
using portsentry::net::IpAddr;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

constexpr int64_t kEpoch = 1'700'000'000;

// A table as a sustained spoofed flood leaves it: active bans and ended
// ones kept for escalation, from 11.0.0.0 up (scattered like real sources).
void fill(BanStore& s, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
        const Cidr host = Cidr::host(IpAddr::v4(0x0B000000u + i * 97u));
        const BanStore::Probe probe{static_cast<uint16_t>(1 + i % 1024), "TCP", "TCP SYN/Normal scan"};
        s.record_ban(host, "detector", kEpoch - 3600 + i % 3600, 7200, &probe);
        if (i % 2) s.end_ban(host, kEpoch - 60, "evicted");
    }
}

// The scans status and the tick did before: every record, every second.
size_t old_active_count(const BanStore& s, uint8_t family, int64_t now) {
    size_t n = 0;
    for (const auto& [p, r] : s.records()) n += p.addr.family == family && r.active(now);
    return n;
}

double thread_cpu_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Every saver step, as the loop would run it: its wall time (what the loop
// waits, preemption by other processes included) and its thread CPU time
// (the work itself).
struct Steps {
    std::vector<double> wall, cpu;
    void run(StateSaver& saver, Clock::time_point now) {
        while (saver.pending()) {
            const double c0 = thread_cpu_ms();
            const auto t0 = Clock::now();
            saver.step(now);
            wall.push_back(ms_since(t0));
            cpu.push_back(thread_cpu_ms() - c0);
        }
    }
    static double pct(std::vector<double> v, double q) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
    }
    std::string describe() const {
        char buf[240];
        std::snprintf(buf, sizeof buf,
                      "%zu steps: wall max %.2f ms, p99.9 %.3f, p50 %.3f; CPU max %.2f ms, p99.9 %.3f, p50 %.3f",
                      wall.size(), pct(wall, 1.0), pct(wall, 0.999), pct(wall, 0.5), pct(cpu, 1.0), pct(cpu, 0.999),
                      pct(cpu, 0.5));
        return buf;
    }
};

// The machine's noise floor, timed the same way: a fixed computation of about
// 0.3 ms per step. Whatever its max exceeds its p50 by is preemption (and, on
// a VM, steal counted as CPU), not work.
Steps noise_floor(int steps) {
    Steps st;
    volatile uint64_t sink = 0;
    for (int i = 0; i < steps; ++i) {
        const double c0 = thread_cpu_ms();
        const auto t0 = Clock::now();
        uint64_t x = 88172645463325252ull;
        for (int k = 0; k < 300000; ++k) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sink = sink + x;
        st.wall.push_back(ms_since(t0));
        st.cpu.push_back(thread_cpu_ms() - c0);
    }
    return st;
}

// The saver before the journal: fixed slices of 2000 records (its
// StateSaver::step), the whole table each pass.
Steps old_slices(const BanStore& s) {
    Steps st;
    std::optional<Cidr> cursor;
    for (bool done = false; !done;) {
        const double c0 = thread_cpu_ms();
        const auto t0 = Clock::now();
        std::string part;
        part.reserve(2000 * 200);
        done = s.serialize_some(part, cursor, 2000);
        st.wall.push_back(ms_since(t0));
        st.cpu.push_back(thread_cpu_ms() - c0);
    }
    return st;
}

struct Churn {
    Steps steps;
    uint64_t journal_bytes = 0, snapshot_bytes = 0, compactions = 0;
};

// CHURN new bans a second (each forgetting the longest-ended record, so the
// table keeps its size), as the daemon's loop runs them: change, idle step.
Churn churn(BanStore& s, StateSaver& saver, int churn_per_s, int minutes, uint32_t& next) {
    const auto c0 = saver.writer_counters();
    const auto start = Clock::now();
    Churn out;
    for (int sec = 0; sec < minutes * 60; ++sec) {
        const int64_t now = kEpoch + sec;
        for (int k = 0; k < churn_per_s; ++k, ++next) {
            const BanStore::Probe probe{22, "TCP", "TCP SYN/Normal scan"};
            s.record_ban(Cidr::host(IpAddr::v4(0x60000000u + next)), "detector", now, 3600, &probe);
            out.steps.run(saver, start + std::chrono::seconds(sec));
        }
        s.forget(now, 86400, s.records().size() / 2);  // BanManager::forget_history each tick
        saver.tick(start + std::chrono::seconds(sec));
        out.steps.run(saver, start + std::chrono::seconds(sec));
    }
    saver.save_now();
    const auto c1 = saver.writer_counters();
    out.journal_bytes = c1.journal_bytes - c0.journal_bytes;
    out.snapshot_bytes = c1.snapshot_bytes - c0.snapshot_bytes;
    out.compactions = c1.written - c0.written;
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : "/var/tmp";
    std::vector<uint32_t> sizes;
    for (int i = 2; i < argc; ++i) sizes.push_back(static_cast<uint32_t>(std::strtoul(argv[i], nullptr, 10)));
    if (sizes.empty()) sizes = {131'072u, 1'000'000u};
    const int churn_per_s = std::getenv("CHURN") ? std::atoi(std::getenv("CHURN")) : 20;
    const int minutes = std::getenv("MINUTES") ? std::atoi(std::getenv("MINUTES")) : 2;
    const std::string path = dir + "/bench_state." + std::to_string(::getpid());
    std::printf("ban table persistence; files in %s; churn %d bans/s for %d simulated minutes\n", dir.c_str(),
                churn_per_s, minutes);
    for (uint32_t n : sizes) {
        BanStore s(path);
        fill(s, n);
        s.save();  // the snapshot a running daemon starts from
        s.load();
        StateSaver saver(s, [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); });
        saver.start();
        uint32_t next = 0;
        const Churn c = churn(s, saver, churn_per_s, minutes, next);

        // One compaction at this size, forced: its longest slice is also the
        // old policy's stall (the same slices), its loop time sets the old
        // policy's pass rate, its size what each old pass wrote.
        saver.compact_soon();
        saver.tick(Clock::now() + std::chrono::hours(1));
        Steps compaction;
        compaction.run(saver, Clock::now() + std::chrono::hours(1));
        saver.save_now();
        const Steps before = old_slices(s);
        const auto& f = saver.figures();
        const auto wc = saver.writer_counters();
        const double pass_ms = f.busy_ms.value();
        const double snap = static_cast<double>(wc.last_bytes);

        // Before: a pass every max(1 s, its wall time + 20 × its loop time),
        // rounded up to the 1 s tick that starts it.
        double old_pass_ms = 0;
        for (double w : before.wall) old_pass_ms += w;
        const double interval_s = std::max(1.0, std::ceil((old_pass_ms * (1 + StateSaver::kSaveShare)) / 1000.0));
        const double old_per_min = snap * 60.0 / interval_s;
        const double journal_per_min = static_cast<double>(c.journal_bytes) / minutes;
        // Now: the journal, plus a compaction each time it has grown by the
        // threshold (max(1 MiB, the snapshot)): amortized.
        const double threshold = std::max<double>(StateSaver::kMinCompactBytes, snap);
        const double new_per_min = journal_per_min * (1.0 + snap / threshold);

        // Housekeeping per tick: status/metrics counts and forget, vs the scans.
        const int64_t now = kEpoch + minutes * 60 + 1;
        auto t0 = Clock::now();
        const size_t a_new = s.active_count(AF_INET, now) + s.active_count(AF_INET6, now);
        s.forget(now, 86400, s.records().size());
        const double tick_new = ms_since(t0);
        t0 = Clock::now();
        const size_t a_old = old_active_count(s, AF_INET, now + 1) + old_active_count(s, AF_INET6, now + 1);
        const double tick_old = ms_since(t0);

        std::printf("\n%u records (%u active), snapshot %.1f MB\n", n, static_cast<unsigned>(a_new), snap / 1e6);
        std::printf("  loop steps saving, churn (journal batches): %s\n", c.steps.describe().c_str());
        std::printf("  loop steps saving, one compaction (slices): %s; pass %.0f ms of loop time in all\n",
                    compaction.describe().c_str(), pass_ms);
        std::printf("  before, each rewrite pass (2000-record slices): %s\n", before.describe().c_str());
        std::printf("  noise floor (a fixed computation, same timing): %s\n", noise_floor(2000).describe().c_str());
        std::printf("  bytes written per minute at %d bans/s: journal %.0f KB + compactions %.0f KB (one per %.0f "
                    "min) = %.2f MB/min;  before (whole-file rewrite every %.0f s) %.1f MB/min;  ratio %.5f\n",
                    churn_per_s, journal_per_min / 1e3, (new_per_min - journal_per_min) / 1e3,
                    threshold / std::max(journal_per_min, 1.0), new_per_min / 1e6, interval_s, old_per_min / 1e6,
                    new_per_min / old_per_min);
        std::printf("  measured in the churn run: journal %.0f KB, snapshots %.1f MB (%llu compactions)\n",
                    static_cast<double>(c.journal_bytes) / 1e3, static_cast<double>(c.snapshot_bytes) / 1e6,
                    static_cast<unsigned long long>(c.compactions));
        std::printf("  compaction io off the loop: %.0f ms (write + fsync + rename of %.1f MB)\n", wc.last_ms,
                    snap / 1e6);
        std::printf("  per-tick housekeeping (active counts + forget): %.3f ms;  before (O(n) scans) %.1f ms "
                    "(counts agree: %s)\n",
                    tick_new, tick_old, a_new == a_old ? "yes" : "NO");
    }
    namespace fs = std::filesystem;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with("bench_state." + std::to_string(::getpid())))
            fs::remove(e.path());
    return 0;
}
