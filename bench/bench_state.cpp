// Cost of persisting the ban table, as the packet loop sees it. The daemon
// serializes on the loop in slices of 2000 records between packet batches
// and hands the text to a StateWriter thread for write + fsync + rename.
// Figures per table size, each beside the baselines of the same run:
//   stall:  the longest slice (the longest the loop is held up) vs
//   before: the old save(), one stall (nlohmann object per record, then
//           write + fsync + rename, all on the loop);
//   pass:   the loop time of all slices together (its CPU cost);
//   io:     write + fsync + rename of the same bytes (the disk's floor; now
//           off the loop).
// Usage: bench_state [DIR] [ROUNDS]   (DIR: where the files go, default /tmp)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/base/files.hpp"
#include "portsentry/daemon/state.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using portsentry::daemon::BanStore;
using portsentry::net::Cidr;
using portsentry::net::IpAddr;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A table as a sustained spoofed flood leaves it: active bans and ended
// ones kept for escalation, from 198.18.0.0/15 (RFC 2544).
BanStore make_table(const std::string& path, uint32_t n) {
    BanStore s(path);
    for (uint32_t i = 0; i < n; ++i) {
        auto& r = s.record_ban(Cidr::host(IpAddr::v4(0xC6120000u + i)), "detector", 1'700'000'000 + i, 3600);
        r.last_port = static_cast<uint16_t>(1 + i % 1024);
        r.last_proto = "TCP";
        r.last_type = "SYN";
        if (i % 2) s.end_ban(r.prefix, 1'700'000'000 + i + 60, "evicted");
    }
    return s;
}

// The save() this replaces, kept here as the baseline.
void old_save(const BanStore& s, const std::string& path) {
    using nlohmann::json;
    std::string out = "# header\n";
    for (const auto& [_, r] : s.records()) {
        json j = {{"prefix", r.prefix.to_string()}, {"origin", r.origin},       {"first_seen", r.first_seen},
                  {"last_seen", r.last_seen},       {"expires", r.expires},     {"count", r.count},
                  {"last_port", r.last_port},       {"last_proto", r.last_proto}, {"last_type", r.last_type}};
        if (!r.ended.empty()) j["ended"] = r.ended;
        out += j.dump();
        out += '\n';
    }
    portsentry::base::write_file_atomically(path, out);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : "/tmp";
    const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
    const std::string path = dir + "/bench_state." + std::to_string(::getpid());
    std::printf("ban table persistence, median of %d rounds, files in %s\n", rounds, dir.c_str());
    std::printf("%9s %10s | %11s %12s %8s | %10s | %12s\n", "records", "bytes", "stall (ms)", "before (ms)",
                "ratio", "pass (ms)", "io, off loop");
    for (uint32_t n : {1'000u, 13'000u, 65'536u, 131'072u}) {
        BanStore s = make_table(path, n);
        std::vector<double> stall, pass, before, io;
        size_t bytes = 0;
        for (int r = 0; r < rounds; ++r) {
            // As Service::continue_state_pass(): one part per slice.
            std::vector<std::string> parts{std::string(BanStore::header())};
            std::optional<Cidr> cursor;
            double longest = 0, total = 0;
            bytes = parts[0].size();
            for (bool done = false; !done;) {
                auto t0 = Clock::now();
                std::string& part = parts.emplace_back();
                part.reserve(2000 * 200);
                done = s.serialize_some(part, cursor, 2000);  // Service's kStateSlice
                const double ms = ms_since(t0);
                longest = std::max(longest, ms);
                total += ms;
                bytes += part.size();
            }
            stall.push_back(longest);
            pass.push_back(total);
            auto t0 = Clock::now();
            portsentry::base::write_file_atomically(path, parts);
            io.push_back(ms_since(t0));
            t0 = Clock::now();
            old_save(s, path);
            before.push_back(ms_since(t0));
        }
        const double stall_ms = median(stall), before_ms = median(before);
        std::printf("%9u %10zu | %11.2f %12.2f %7.1f%% | %10.2f | %12.2f\n", n, bytes, stall_ms, before_ms,
                    100.0 * stall_ms / before_ms, median(pass), median(io));
    }
    ::unlink(path.c_str());
    ::unlink((path + ".tmp").c_str());
    return 0;
}
