// restore_gen: the inputs of bench/bench_restore.sh. Writes a state file of N
// active IPv4 host bans in the daemon's own format (BanStore::save, so it is
// exactly what the running daemon writes) and the same elements, with the
// same remaining time, as an `nft -f` file filling an equal set: interval +
// timeout, size SET_SIZE, the flags of `banned`.
//
// Usage: restore_gen N STATE_FILE NFT_FILE SET_SIZE
// Addresses: N distinct pseudo-random hosts (fixed seed) in 11.0.0.0 -
// 126.255.255.255, so the set holds scattered hosts as a scanned host's does,
// not one dense range. Expiry: 1 to 2 hours ahead.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <unordered_set>

#include <fmt/format.h>

#include "portsentry/base/files.hpp"
#include "portsentry/daemon/state.hpp"

using portsentry::daemon::BanStore;
using portsentry::net::Cidr;
using portsentry::net::IpAddr;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: restore_gen N STATE_FILE NFT_FILE SET_SIZE\n");
        return 2;
    }
    const uint32_t n = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10));
    const std::string state = argv[2], nft = argv[3];
    const unsigned long size = std::strtoul(argv[4], nullptr, 10);
    const int64_t now = std::time(nullptr);

    std::mt19937 rng(12);
    std::uniform_int_distribution<uint32_t> addr(0x0B000000u, 0x7EFFFFFFu);
    std::unordered_set<uint32_t> seen;
    seen.reserve(n * 2);
    BanStore store(state);
    std::string elems;
    elems.reserve(size_t{n} * 32);
    for (uint32_t i = 0; i < n;) {
        const uint32_t a = addr(rng);
        if (!seen.insert(a).second) continue;
        const int64_t ttl = 3600 + (a % 3600);
        const auto host = Cidr::host(IpAddr::v4(a));
        auto& r = store.record_ban(host, "detector", now - 60, 0);
        r.expires = now + ttl;
        r.first_seen = now - 120;
        r.last_port = static_cast<uint16_t>(1 + i % 1024);
        r.last_proto = "TCP";
        r.last_type = "SYN";
        elems += fmt::format("{}{} timeout {}s", i ? ",\n    " : "    ", host.to_string(), ttl);
        ++i;
    }
    store.save();
    std::string text = fmt::format(
        "table inet restore_bench {{\n"
        "  set banned {{\n"
        "    type ipv4_addr; flags interval, timeout; size {};\n"
        "    elements = {{\n{}\n    }}\n"
        "  }}\n"
        "}}\n",
        size, elems);
    portsentry::base::write_file_atomically(nft, text);
    return 0;
}
