// parse_packet (see packet.hpp). Every read is preceded by a check against
// both the buffer and the length the IP header claims: NFQUEUE/NFLOG may hand
// over a copy cut at the configured copy range (128 bytes here), so the buffer
// can be shorter than the datagram; that is fine as long as every header byte
// we read lies inside the buffer.
#include "portsentry/net/packet.hpp"

namespace portsentry::net {

namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kTcpMinHeader = 20;
constexpr size_t kUdpHeader = 8;

// More extension headers than any legitimate stack sends (RFC 8200 §4.1 lists
// six kinds, each at most once, dest-opts twice); long chains are an evasion
// trick that pushes the L4 header out of firewalls' sight.
constexpr unsigned kMaxIpv6ExtHeaders = 8;

constexpr uint8_t kIpProtoHopOpts = 0, kIpProtoRouting = 43, kIpProtoFragment = 44,
                  kIpProtoAh = 51, kIpProtoNone = 59, kIpProtoDstOpts = 60;

inline uint16_t be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// The bytes of one datagram: `buf` is what we were given, `claimed` what the
// IP header says the datagram holds (may exceed buf, never trusted beyond it).
struct View {
    const uint8_t* p;
    size_t buf;
    size_t claimed;

    // Can n bytes at off be read? A header reaching past the datagram's own
    // length is malformed; one inside the datagram but past the copy is truncated.
    ParseError need(size_t off, size_t n) const noexcept {
        if (off > claimed || n > claimed - off) return ParseError::bad_header;
        if (off > buf || n > buf - off) return ParseError::truncated;
        return ParseError::none;
    }
};

ParseError parse_l4(const View& v, size_t off, uint8_t proto, Packet& pkt) noexcept {
    if (proto == static_cast<uint8_t>(L4::tcp)) {
        if (auto e = v.need(off, kTcpMinHeader); e != ParseError::none) return e;
        const uint8_t* t = v.p + off;
        const size_t doff = static_cast<size_t>(t[12] >> 4) * 4;
        // Options past the fixed 20 bytes may be cut off by the copy range; we
        // never read them, but they must fit in the datagram.
        if (doff < kTcpMinHeader || doff > v.claimed - off) return ParseError::bad_header;
        pkt.proto = L4::tcp;
        pkt.sport = be16(t);
        pkt.dport = be16(t + 2);
        pkt.tcp_flags = t[13];
        return ParseError::none;
    }
    if (proto == static_cast<uint8_t>(L4::udp)) {
        if (auto e = v.need(off, kUdpHeader); e != ParseError::none) return e;
        const uint8_t* u = v.p + off;
        const size_t ulen = be16(u + 4);
        // The kernel's UDP input drops these too (udp_rcv checks ulen), so a
        // probe with such a length draws no answer and is not a useful scan.
        if (ulen < kUdpHeader || ulen > v.claimed - off) return ParseError::bad_header;
        pkt.proto = L4::udp;
        pkt.sport = be16(u);
        pkt.dport = be16(u + 2);
        return ParseError::none;
    }
    return ParseError::unsupported_l4;
}

ParseError parse_v4(std::span<const uint8_t> d, Packet& pkt) noexcept {
    if (d.size() < kIpv4MinHeader) return ParseError::truncated;
    const uint8_t* h = d.data();
    const size_t ihl = static_cast<size_t>(h[0] & 0x0f) * 4;
    if (ihl < kIpv4MinHeader) return ParseError::bad_header;
    const size_t total = be16(h + 2);
    if (total < ihl) return ParseError::bad_header;
    if (d.size() < ihl) return ParseError::truncated;

    pkt.src = IpAddr::from_bytes(2, h + 12);
    pkt.dst = IpAddr::from_bytes(2, h + 16);
    pkt.ip_options = ihl > kIpv4MinHeader;

    const uint16_t frag = be16(h + 6);
    const bool more_fragments = frag & 0x2000;
    const uint16_t offset = frag & 0x1fff;
    if (offset != 0) return ParseError::not_first_fragment;
    pkt.fragment = more_fragments;

    // A buffer longer than total length carries trailing padding: ignore it.
    const View v{h, d.size() < total ? d.size() : total, total};
    return parse_l4(v, ihl, h[9], pkt);
}

ParseError parse_v6(std::span<const uint8_t> d, Packet& pkt) noexcept {
    if (d.size() < kIpv6Header) return ParseError::truncated;
    const uint8_t* h = d.data();
    pkt.src = IpAddr::from_bytes(10, h + 8);
    pkt.dst = IpAddr::from_bytes(10, h + 24);

    // Payload length 0 means a jumbogram (RFC 2675), which needs a >64 KiB
    // link MTU: we never see one, and reading it as "no payload" is safe.
    const size_t total = kIpv6Header + be16(h + 4);
    const View v{h, d.size() < total ? d.size() : total, total};

    uint8_t next = h[6];
    size_t off = kIpv6Header;
    for (unsigned count = 0;; ++count) {
        switch (next) {
        case kIpProtoHopOpts:
        case kIpProtoRouting:
        case kIpProtoDstOpts:
        case kIpProtoAh: {
            if (count == kMaxIpv6ExtHeaders) return ParseError::too_many_ext_headers;
            if (auto e = v.need(off, 2); e != ParseError::none) return e;
            // Generic headers count 8-octet units beyond the first (RFC 8200
            // §4.3); AH counts 4-octet units minus 2 (RFC 4302 §2.2).
            const size_t len = next == kIpProtoAh ? (static_cast<size_t>(h[off + 1]) + 2) * 4
                                                  : (static_cast<size_t>(h[off + 1]) + 1) * 8;
            if (auto e = v.need(off, len); e != ParseError::none) return e;
            next = h[off];
            off += len;
            break;
        }
        case kIpProtoFragment: {
            if (count == kMaxIpv6ExtHeaders) return ParseError::too_many_ext_headers;
            if (auto e = v.need(off, 8); e != ParseError::none) return e;
            const uint16_t fo = be16(h + off + 2);
            if ((fo >> 3) != 0) return ParseError::not_first_fragment;
            if (fo & 1) pkt.fragment = true;
            next = h[off];
            off += 8;
            break;
        }
        case kIpProtoNone:
            return ParseError::unsupported_l4;
        default:
            return parse_l4(v, off, next, pkt);
        }
    }
}

}  // namespace

const char* to_string(ParseError e) {
    switch (e) {
    case ParseError::none: return "none";
    case ParseError::truncated: return "truncated";
    case ParseError::bad_version: return "bad_version";
    case ParseError::bad_header: return "bad_header";
    case ParseError::not_first_fragment: return "not_first_fragment";
    case ParseError::unsupported_l4: return "unsupported_l4";
    case ParseError::too_many_ext_headers: return "too_many_ext_headers";
    }
    return "unknown";
}

ParseResult parse_packet(std::span<const uint8_t> data) noexcept {
    ParseResult r;
    if (data.empty()) {
        r.error = ParseError::truncated;
        return r;
    }
    switch (data[0] >> 4) {
    case 4: r.error = parse_v4(data, r.pkt); break;
    case 6: r.error = parse_v6(data, r.pkt); break;
    default: r.error = ParseError::bad_version; break;
    }
    return r;
}

}  // namespace portsentry::net
