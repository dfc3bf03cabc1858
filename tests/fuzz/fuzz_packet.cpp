// libFuzzer harness: net::parse_packet on arbitrary bytes (what NFQUEUE/NFLOG
// hand over is attacker-chosen). Besides ASan/UBSan findings, it checks that a
// successful parse is self-consistent with the bytes it came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "portsentry/net/packet.hpp"

using namespace portsentry::net;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const ParseResult r = parse_packet(std::span<const uint8_t>(data, size));
    if (!r.ok()) return 0;

    const Packet& p = r.pkt;
    const unsigned version = data[0] >> 4;  // ok() implies size >= 1
    const bool v4 = version == 4;
    // Family of both addresses follows the version nibble.
    if (v4 ? !(p.src.is_v4() && p.dst.is_v4()) : !(version == 6 && p.src.is_v6() && p.dst.is_v6()))
        std::abort();
    // Only IPv4 has options; only TCP has flags.
    if (!v4 && p.ip_options) std::abort();
    if (p.proto == L4::udp && p.tcp_flags != 0) std::abort();
    if (p.proto != L4::tcp && p.proto != L4::udp) std::abort();
    // The smallest parseable packets: IPv4 + UDP = 28 bytes, IPv6 + UDP = 48.
    if (size < (v4 ? 28u : 48u)) std::abort();
    // Same input, same answer (no hidden state on the hot path).
    const ParseResult again = parse_packet(std::span<const uint8_t>(data, size));
    if (!again.ok() || again.pkt.src != p.src || again.pkt.dport != p.dport ||
        again.pkt.tcp_flags != p.tcp_flags)
        std::abort();
    return 0;
}
