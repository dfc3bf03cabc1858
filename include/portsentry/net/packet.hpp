// Bounds-checked parsing of the L3 packets NFQUEUE/NFLOG hand over (they start
// at the IP header). Never reads past the buffer; anything odd is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "portsentry/net/address.hpp"

namespace portsentry::net {

enum class L4 : uint8_t { tcp = 6, udp = 17 };  // the IPPROTO_* numbers

// "TCP" / "UDP": as 1.2 writes them in log lines, history and blocked files,
// and as the JSON events and the state file carry them.
constexpr const char* to_string(L4 p) noexcept { return p == L4::udp ? "UDP" : "TCP"; }
// "tcp" / "udp": the config section, legacy mode flag, blocked-file suffix and nft keyword.
constexpr const char* keyword(L4 p) noexcept { return p == L4::udp ? "udp" : "tcp"; }

namespace tcpflag {
inline constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20,
                         ECE = 0x40, CWR = 0x80;
}

struct Packet {
    IpAddr src;
    IpAddr dst;
    L4 proto = L4::tcp;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t tcp_flags = 0;      // TCP only
    bool ip_options = false;    // IPv4 header longer than 20 bytes
    bool fragment = false;      // first fragment (offset 0, MF set) of a fragmented datagram
};

enum class ParseError : uint8_t {
    none = 0,
    truncated,        // buffer shorter than a header claims
    bad_version,      // not 4 or 6
    bad_header,       // IHL < 5, data offset < 5, lengths inconsistent
    not_first_fragment,  // non-zero fragment offset: no L4 header to read
    unsupported_l4,   // neither TCP nor UDP (after walking IPv6 extension headers)
    too_many_ext_headers,
};

const char* to_string(ParseError e);

struct ParseResult {
    Packet pkt;
    ParseError error = ParseError::none;
    bool ok() const { return error == ParseError::none; }
};

// Parse an IPv4 or IPv6 packet (version taken from the first nibble).
// noexcept and allocation-free: this is the per-packet hot path.
ParseResult parse_packet(std::span<const uint8_t> data) noexcept;

}  // namespace portsentry::net
