// restore_gen: the inputs of bench/bench_restore.sh. Writes a state file of N
// active IPv4 host bans in the daemon's own format (BanStore::save, so it is
// exactly what the running daemon writes) and the same elements, with the
// same remaining time, as an `nft -f` file filling an equal set: interval +
// timeout, size SET_SIZE, the flags of `banned`.
//
// Usage: restore_gen N STATE_FILE NFT_FILE SET_SIZE
// The table: bench/ban_table_gen.hpp (scattered hosts, 1 to 2 hours left).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "portsentry/base/files.hpp"
#include "portsentry/daemon/state.hpp"
#include "ban_table_gen.hpp"

using portsentry::daemon::BanStore;
using portsentry::net::Cidr;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: restore_gen N STATE_FILE NFT_FILE SET_SIZE\n");
        return 2;
    }
    const uint32_t n = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10));
    const std::string state = argv[2], nft = argv[3];
    const unsigned long size = std::strtoul(argv[4], nullptr, 10);
    const int64_t now = std::time(nullptr);

    BanStore store(state);
    std::string elems;
    elems.reserve(size_t{n} * 32);
    bool first = true;
    bench::generate_bans(store, n, now, [&](const Cidr& host, int64_t ttl) {
        elems += fmt::format("{}{} timeout {}s", first ? "    " : ",\n    ", host.to_string(), ttl);
        first = false;
    });
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
