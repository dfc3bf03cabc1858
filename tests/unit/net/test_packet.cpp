// parse_packet on packets written out byte by byte. Checksums are zero: the
// kernel has verified the IPv4 header before netfilter, and we never check L4
// checksums (a scan probe with a bad one is still a probe).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "portsentry/net/packet.hpp"

using namespace portsentry::net;
using Bytes = std::vector<uint8_t>;

namespace {

// IPv4 TCP SYN 198.51.100.2:40000 -> 192.0.2.1:995, no options.
const Bytes kSynV4 = {
    0x45,                    // version 4, IHL 5 (20 bytes)
    0x00,                    // DSCP/ECN
    0x00, 0x28,              // total length 40
    0x12, 0x34,              // identification
    0x40, 0x00,              // flags DF, fragment offset 0
    0x40,                    // TTL 64
    0x06,                    // protocol TCP
    0x00, 0x00,              // header checksum (not checked)
    198, 51, 100, 2,         // source
    192, 0, 2, 1,            // destination
    0x9c, 0x40,              // TCP source port 40000
    0x03, 0xe3,              // destination port 995
    0x00, 0x00, 0x00, 0x01,  // sequence number
    0x00, 0x00, 0x00, 0x00,  // acknowledgement number
    0x50,                    // data offset 5 (20 bytes)
    0x02,                    // flags SYN
    0x04, 0x00,              // window 1024 (nmap -sS)
    0x00, 0x00,              // checksum
    0x00, 0x00,              // urgent pointer
};

// IPv4 with a Router Alert option (IHL 6), TCP ACK to port 80.
const Bytes kAckV4Options = {
    0x46,                    // version 4, IHL 6 (24 bytes)
    0x00,                    // DSCP/ECN
    0x00, 0x2c,              // total length 44
    0x00, 0x01,              // identification
    0x00, 0x00,              // no flags, offset 0
    0x40,                    // TTL
    0x06,                    // TCP
    0x00, 0x00,              // header checksum
    203, 0, 113, 9,          // source
    192, 0, 2, 1,            // destination
    0x94, 0x04, 0x00, 0x00,  // option: Router Alert (RFC 2113), length 4
    0xc0, 0x01,              // TCP source port 49153
    0x00, 0x50,              // destination port 80
    0x00, 0x00, 0x00, 0x00,  // sequence
    0x00, 0x00, 0x00, 0x00,  // acknowledgement
    0x50,                    // data offset 5
    0x10,                    // flags ACK
    0x04, 0x00,              // window
    0x00, 0x00,              // checksum
    0x00, 0x00,              // urgent pointer
};

// IPv4 TCP XMAS (FIN|PSH|URG) 198.51.100.77:61000 -> 192.0.2.1:23.
const Bytes kXmasV4 = {
    0x45, 0x00, 0x00, 0x28,  // v4 IHL 5, total length 40
    0xbe, 0xef, 0x00, 0x00,  // identification, no flags
    0x31, 0x06, 0x00, 0x00,  // TTL 49, TCP, checksum
    198, 51, 100, 77,        // source
    192, 0, 2, 1,            // destination
    0xee, 0x48,              // source port 61000
    0x00, 0x17,              // destination port 23
    0x00, 0x00, 0x00, 0x00,  // sequence
    0x00, 0x00, 0x00, 0x00,  // acknowledgement
    0x50,                    // data offset 5
    0x29,                    // flags FIN|PSH|URG
    0x04, 0x00,              // window
    0x00, 0x00,              // checksum
    0x00, 0x00,              // urgent pointer
};

// IPv6 UDP 2001:db8::2:53000 -> 2001:db8::1:161, empty payload.
const Bytes kUdpV6 = {
    0x60, 0x00, 0x00, 0x00,  // version 6, traffic class 0, flow label 0
    0x00, 0x08,              // payload length 8
    0x11,                    // next header UDP
    0x40,                    // hop limit 64
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,  // source 2001:db8::2
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // destination 2001:db8::1
    0xcf, 0x08,              // UDP source port 53000
    0x00, 0xa1,              // destination port 161
    0x00, 0x08,              // length 8 (header only)
    0x00, 0x00,              // checksum
};

// IPv6 hop-by-hop + fragment (first, M=1) + TCP SYN 2001:db8::bad -> 2001:db8::1:22.
const Bytes kSynV6HbhFrag = {
    0x60, 0x00, 0x00, 0x00,  // version 6
    0x00, 0x24,              // payload length 36 = 8 HBH + 8 frag + 20 TCP
    0x00,                    // next header: hop-by-hop options
    0x40,                    // hop limit
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0xad,  // source 2001:db8::bad
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,     // destination 2001:db8::1
    0x2c,                    // HBH: next header fragment (44)
    0x00,                    // HBH: length 0 -> 8 bytes
    0x01, 0x04, 0, 0, 0, 0,  // PadN option, 4 bytes of padding
    0x06,                    // fragment: next header TCP
    0x00,                    // reserved
    0x00, 0x01,              // offset 0, M (more fragments) = 1
    0xde, 0xad, 0xbe, 0xef,  // identification
    0xa0, 0x00,              // TCP source port 40960
    0x00, 0x16,              // destination port 22
    0x00, 0x00, 0x00, 0x01,  // sequence
    0x00, 0x00, 0x00, 0x00,  // acknowledgement
    0x50,                    // data offset 5
    0x02,                    // flags SYN
    0xff, 0xff,              // window
    0x00, 0x00,              // checksum
    0x00, 0x00,              // urgent pointer
};

// Offsets used to derive variants from the packets above.
constexpr size_t kV4TotalLen = 2, kV4Frag = 6, kV4Proto = 9;
constexpr size_t kV6PayloadLen = 4, kV6Next = 6;

void put16(Bytes& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

// Parses from an exactly-sized heap copy, so ASan reports any read past it.
ParseResult parse_exact(const Bytes& b, size_t n) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[n ? n : 1]);
    std::copy(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n), copy.get());
    return parse_packet(std::span<const uint8_t>(copy.get(), n));
}
ParseResult parse(const Bytes& b) { return parse_exact(b, b.size()); }

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

}  // namespace

TEST(ParsePacket, TcpSynV4) {
    const auto r = parse(kSynV4);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.src, ip("198.51.100.2"));
    EXPECT_EQ(r.pkt.dst, ip("192.0.2.1"));
    EXPECT_EQ(r.pkt.proto, L4::tcp);
    EXPECT_EQ(r.pkt.sport, 40000);
    EXPECT_EQ(r.pkt.dport, 995);
    EXPECT_EQ(r.pkt.tcp_flags, tcpflag::SYN);
    EXPECT_FALSE(r.pkt.ip_options);
    EXPECT_FALSE(r.pkt.fragment);  // DF alone is not fragmentation
}

TEST(ParsePacket, V4OptionsFlaggedAndSkipped) {
    const auto r = parse(kAckV4Options);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_TRUE(r.pkt.ip_options);
    EXPECT_EQ(r.pkt.src, ip("203.0.113.9"));
    EXPECT_EQ(r.pkt.sport, 49153);  // read after the 4 option bytes
    EXPECT_EQ(r.pkt.dport, 80);
    EXPECT_EQ(r.pkt.tcp_flags, tcpflag::ACK);
}

TEST(ParsePacket, Xmas) {
    const auto r = parse(kXmasV4);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.pkt.tcp_flags, tcpflag::FIN | tcpflag::PSH | tcpflag::URG);
    EXPECT_EQ(r.pkt.dport, 23);
}

TEST(ParsePacket, UdpV6) {
    const auto r = parse(kUdpV6);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.proto, L4::udp);
    EXPECT_EQ(r.pkt.src, ip("2001:db8::2"));
    EXPECT_EQ(r.pkt.dst, ip("2001:db8::1"));
    EXPECT_EQ(r.pkt.sport, 53000);
    EXPECT_EQ(r.pkt.dport, 161);
    EXPECT_EQ(r.pkt.tcp_flags, 0);
}

TEST(ParsePacket, V6HopByHopThenFirstFragment) {
    const auto r = parse(kSynV6HbhFrag);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_TRUE(r.pkt.fragment);
    EXPECT_EQ(r.pkt.src, ip("2001:db8::bad"));
    EXPECT_EQ(r.pkt.sport, 40960);
    EXPECT_EQ(r.pkt.dport, 22);
    EXPECT_EQ(r.pkt.tcp_flags, tcpflag::SYN);
}

TEST(ParsePacket, EveryTruncationIsAnErrorAndStaysInBounds) {
    // Every byte of these packets belongs to a header the parser must read,
    // so every shorter copy must fail, as "truncated" (the IP header still
    // claims the full length), without reading past the copy.
    for (const Bytes* p : {&kSynV4, &kAckV4Options, &kXmasV4, &kUdpV6, &kSynV6HbhFrag}) {
        ASSERT_TRUE(parse(*p).ok());
        for (size_t n = 0; n < p->size(); ++n) {
            const auto r = parse_exact(*p, n);
            EXPECT_EQ(r.error, ParseError::truncated) << "length " << n << " of " << p->size();
        }
    }
}

TEST(ParsePacket, CopyRangeShorterThanDatagramIsFine) {
    // A SYN carrying 100 payload bytes, handed over cut after the TCP header
    // (as NFQUEUE does with a small copy range).
    Bytes b = kSynV4;
    put16(b, kV4TotalLen, 140);
    const auto r = parse(b);  // 40 of 140 bytes
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.dport, 995);

    // TCP options (data offset 8) cut off by the copy: not read, not needed.
    b[20 + 12] = 0x80;
    ASSERT_TRUE(parse(b).ok());
}

TEST(ParsePacket, TrailingPaddingIgnored) {
    Bytes b = kSynV4;
    b.insert(b.end(), 6, 0x00);  // Ethernet minimum-frame padding
    ASSERT_TRUE(parse(b).ok());
}

TEST(ParsePacket, V4LengthInconsistencies) {
    Bytes b = kSynV4;
    put16(b, kV4TotalLen, 19);  // shorter than the IP header itself
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
    put16(b, kV4TotalLen, 39);  // claims a datagram that ends inside the TCP header
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
    put16(b, kV4TotalLen, 40);
    EXPECT_TRUE(parse(b).ok());

    Bytes small_ihl = kSynV4;
    small_ihl[0] = 0x44;  // IHL 4 (16 bytes): below the minimum
    EXPECT_EQ(parse(small_ihl).error, ParseError::bad_header);

    Bytes big_ihl = kSynV4;
    big_ihl[0] = 0x4f;  // IHL 15 (60 bytes)
    put16(big_ihl, kV4TotalLen, 80);
    EXPECT_EQ(parse(big_ihl).error, ParseError::truncated);  // buffer is only 40
}

TEST(ParsePacket, BadVersion) {
    for (uint8_t first : {0x00, 0x35, 0x55, 0xf5}) {
        Bytes b = kSynV4;
        b[0] = first;
        EXPECT_EQ(parse(b).error, ParseError::bad_version) << int(first);
    }
    // The first nibble alone picks the parser: a 6 in front of 30 bytes is
    // judged as IPv6, whose fixed header alone is 40.
    Bytes b(kSynV4.begin(), kSynV4.begin() + 30);
    b[0] = 0x65;
    EXPECT_EQ(parse(b).error, ParseError::truncated);
}

TEST(ParsePacket, V4Fragments) {
    Bytes first = kSynV4;
    put16(first, kV4Frag, 0x2000);  // MF, offset 0
    auto r = parse(first);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.pkt.fragment);

    Bytes later = kSynV4;
    put16(later, kV4Frag, 0x00b9);  // offset 185*8 = 1480, last fragment
    r = parse(later);
    EXPECT_EQ(r.error, ParseError::not_first_fragment);
    EXPECT_EQ(r.pkt.src, ip("198.51.100.2"));  // addresses are still reported

    put16(later, kV4Frag, 0x2001);  // MF and offset 8: a middle fragment
    EXPECT_EQ(parse(later).error, ParseError::not_first_fragment);
}

TEST(ParsePacket, V6LaterFragment) {
    Bytes b = kSynV6HbhFrag;
    const size_t frag_field = 40 + 8 + 2;
    put16(b, frag_field, 0x05a8);  // offset 181 (1448 bytes), M = 0
    auto r = parse(b);
    EXPECT_EQ(r.error, ParseError::not_first_fragment);
    EXPECT_EQ(r.pkt.src, ip("2001:db8::bad"));

    put16(b, frag_field, 0x0000);  // offset 0, M = 0: an atomic fragment (RFC 6946)
    r = parse(b);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.pkt.fragment);
}

TEST(ParsePacket, UnsupportedL4) {
    Bytes icmp = kSynV4;
    icmp[kV4Proto] = 1;  // ICMP
    EXPECT_EQ(parse(icmp).error, ParseError::unsupported_l4);

    Bytes icmp6 = kUdpV6;
    icmp6[kV6Next] = 58;  // ICMPv6
    EXPECT_EQ(parse(icmp6).error, ParseError::unsupported_l4);

    Bytes none = kUdpV6;
    none[kV6Next] = 59;  // no next header
    EXPECT_EQ(parse(none).error, ParseError::unsupported_l4);

    Bytes esp = kUdpV6;
    esp[kV6Next] = 50;  // ESP: the L4 header is encrypted
    EXPECT_EQ(parse(esp).error, ParseError::unsupported_l4);
}

namespace {

// IPv6 header + `n` destination-options headers (8 bytes each) + UDP header.
Bytes v6_with_dstopts(unsigned n) {
    Bytes b(kUdpV6.begin(), kUdpV6.begin() + 40);
    put16(b, kV6PayloadLen, static_cast<uint16_t>(n * 8 + 8));
    b[kV6Next] = n ? 60 : 17;
    for (unsigned i = 0; i < n; ++i) {
        const uint8_t next = i + 1 < n ? 60 : 17;
        b.insert(b.end(), {next, 0x00, 0x01, 0x04, 0, 0, 0, 0});  // next, len 0, PadN(4)
    }
    b.insert(b.end(), {0x30, 0x39, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00});  // UDP 12345 -> 7
    return b;
}

}  // namespace

TEST(ParsePacket, ExtensionHeaderCap) {
    auto r = parse(v6_with_dstopts(8));
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.dport, 7);
    EXPECT_EQ(parse(v6_with_dstopts(9)).error, ParseError::too_many_ext_headers);
}

TEST(ParsePacket, AuthenticationHeaderLengthIn32BitWords) {
    const Bytes b = {
        0x60, 0x00, 0x00, 0x00,  // version 6
        0x00, 0x20,              // payload length 32 = 24 AH + 8 UDP
        0x33,                    // next header AH (51)
        0x40,                    // hop limit
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,  // source
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // destination
        0x11,                    // AH: next header UDP
        0x04,                    // AH: payload len 4 -> (4 + 2) * 4 = 24 bytes
        0x00, 0x00,              // reserved
        0x00, 0x00, 0x10, 0x00,  // SPI
        0x00, 0x00, 0x00, 0x01,  // sequence number
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,  // ICV (HMAC-SHA1-96)
        0x04, 0xd2,              // UDP source port 1234
        0x01, 0xf4,              // destination port 500
        0x00, 0x08,              // length
        0x00, 0x00,              // checksum
    };
    const auto r = parse(b);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.sport, 1234);
    EXPECT_EQ(r.pkt.dport, 500);
}

TEST(ParsePacket, V6ExtensionHeaderPastPayloadLength) {
    Bytes b = kSynV6HbhFrag;
    put16(b, kV6PayloadLen, 4);  // payload ends inside the hop-by-hop header
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
    b[40 + 1] = 0xff;  // and a huge HBH length: still judged against the payload
    put16(b, kV6PayloadLen, 36);
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
}

TEST(ParsePacket, V6PayloadLongerThanCopyIsFine) {
    Bytes b = kUdpV6;
    put16(b, kV6PayloadLen, 1208);  // 1200 bytes of UDP payload not handed over
    put16(b, 40 + 4, 1208);         // UDP length matches
    const auto r = parse(b);
    ASSERT_TRUE(r.ok()) << to_string(r.error);
    EXPECT_EQ(r.pkt.dport, 161);
}

TEST(ParsePacket, TcpDataOffsetChecked) {
    Bytes b = kSynV4;
    b[20 + 12] = 0x40;  // data offset 4: below the 20-byte minimum
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
    b[20 + 12] = 0xf0;  // data offset 15 (60 bytes) in a 40-byte datagram
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
}

TEST(ParsePacket, UdpLengthChecked) {
    Bytes b = kUdpV6;
    put16(b, 40 + 4, 7);  // UDP length below its own header
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
    put16(b, 40 + 4, 9);  // longer than the IPv6 payload
    EXPECT_EQ(parse(b).error, ParseError::bad_header);
}

TEST(ParseError, Names) {
    EXPECT_STREQ(to_string(ParseError::none), "none");
    EXPECT_STREQ(to_string(ParseError::truncated), "truncated");
    EXPECT_STREQ(to_string(ParseError::too_many_ext_headers), "too_many_ext_headers");
    EXPECT_STREQ(to_string(ParseError::not_first_fragment), "not_first_fragment");
}
