// Ban insertion latency: kernel::Nft::add_bans() of one element on a
// persistent netlink socket vs a forked `nft add element` (the baseline every
// shell-script ban action pays), measured in the same run inside a private
// network namespace. Root only. Usage: bench_ban [LIBNFTNL_BANS] [FORKED_BANS]
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "portsentry/kernel/nft.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using portsentry::kernel::BanElement;
using portsentry::kernel::Nft;

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// Distinct documentation/test-net sources: 198.18.0.0/15 (RFC 2544) has room
// for every ban of a run without overlapping earlier ones.
portsentry::net::Cidr source(uint32_t i) {
    return portsentry::net::Cidr::host(portsentry::net::IpAddr::v4(0xC6120000u + i));
}

int run_nft(const std::string& addr) {
    std::string elem = "{ " + addr + " timeout 1h }";
    const char* argv[] = {"nft", "add", "element", "inet", "portsentry", "banned", elem.c_str(), nullptr};
    pid_t pid;
    if (posix_spawnp(&pid, "nft", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) return -1;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

int main(int argc, char** argv) {
    const int n_lib = argc > 1 ? std::atoi(argv[1]) : 2000;
    const int n_fork = argc > 2 ? std::atoi(argv[2]) : 100;
    if (geteuid() != 0) {
        std::fprintf(stderr, "bench_ban: needs root (creates a network namespace)\n");
        return 77;
    }
    // Our own namespace: the host firewall is never touched, and the
    // namespace disappears with the process.
    if (unshare(CLONE_NEWNET) != 0) {
        std::perror("bench_ban: unshare(CLONE_NEWNET)");
        return 1;
    }
    try {
        Nft nft;
        portsentry::kernel::RulesetSpec spec;
        spec.tcp_ports = {{1, 1023}};
        spec.backend = portsentry::kernel::Backend::nflog;  // steering is irrelevant here
        spec.set_size = static_cast<uint32_t>(n_lib + n_fork + 16);
        nft.apply(spec);

        // Interleaved, so both see the same set size and the same machine
        // load: nft reads an interval set's existing elements before adding
        // (overlap checks), so its cost grows with the set; ours does not.
        std::vector<double> lib_us, fork_us;
        const int per_fork = std::max(1, n_lib / std::max(1, n_fork));
        uint32_t next = 0;
        for (int i = 0; i < std::max(n_lib, n_fork) && (int(lib_us.size()) < n_lib || int(fork_us.size()) < n_fork); ++i) {
            if (int(fork_us.size()) < n_fork) {
                std::string a = source(next++).to_string();
                auto t0 = Clock::now();
                if (run_nft(a) != 0) {
                    std::fprintf(stderr, "bench_ban: nft add element %s failed\n", a.c_str());
                    return 1;
                }
                fork_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
            for (int k = 0; k < per_fork && int(lib_us.size()) < n_lib; ++k) {
                std::vector<BanElement> one{{source(next++), std::chrono::seconds(3600)}};
                auto t0 = Clock::now();
                nft.add_bans(one);
                lib_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
        }
        // Also: one batch of many bans (what a burst coalesces into).
        std::vector<BanElement> burst;
        for (int i = 0; i < 1000; ++i)
            burst.push_back({source(static_cast<uint32_t>(n_lib + n_fork + 16 + i)), std::chrono::seconds(3600)});
        spec.set_size += 2000;
        nft.apply(spec);  // fresh sets with room for the burst
        auto t0 = Clock::now();
        nft.add_bans(burst);
        double burst_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();

        double lp50 = pct(lib_us, 50), lp99 = pct(lib_us, 99);
        double fp50 = pct(fork_us, 50), fp99 = pct(fork_us, 99);
        std::printf("ban insertion latency, single element, network namespace, set growing to %d elements\n",
                    n_lib + n_fork);
        std::printf("  libnftnl batch, persistent socket: n=%d  p50 %8.1f us  p99 %8.1f us  (%.0f bans/s at p50)\n",
                    n_lib, lp50, lp99, 1e6 / lp50);
        std::printf("  forked `nft add element`:          n=%d  p50 %8.1f us  p99 %8.1f us  (%.0f bans/s at p50)\n",
                    n_fork, fp50, fp99, 1e6 / fp50);
        std::printf("  ratio forked/libnftnl: p50 %.1fx  p99 %.1fx\n", fp50 / lp50, fp99 / lp99);
        std::printf("  coalesced burst: 1000 bans in one batch: %.1f us (%.2f us/ban)\n", burst_us, burst_us / 1000);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_ban: %s\n", e.what());
        return 1;
    }
    return 0;
}
