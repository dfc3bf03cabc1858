// IpAddr, IpAddrHash and Cidr: text forms in and out, good and bad.
#include <gtest/gtest.h>

#include <unordered_set>

#include "portsentry/net/address.hpp"

using portsentry::net::Cidr;
using portsentry::net::IpAddr;
using portsentry::net::IpAddrHash;

namespace {

IpAddr ip(const char* s) {
    auto a = IpAddr::parse(s);
    EXPECT_TRUE(a.has_value()) << s;
    return a.value_or(IpAddr{});
}

}  // namespace

TEST(IpAddr, ParsesV4AndV6) {
    const auto a = IpAddr::parse("192.0.2.1");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->is_v4());
    EXPECT_EQ(a->size(), 4u);
    EXPECT_EQ(a->bits(), 32u);
    EXPECT_EQ(a->bytes[0], 192);
    EXPECT_EQ(a->bytes[3], 1);
    EXPECT_EQ(a->bytes[4], 0);  // v4 uses bytes[0..3] only
    EXPECT_EQ(a->to_string(), "192.0.2.1");

    const auto b = IpAddr::parse("2001:DB8::1");
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->is_v6());
    EXPECT_EQ(b->bits(), 128u);
    EXPECT_EQ(b->bytes[0], 0x20);
    EXPECT_EQ(b->bytes[1], 0x01);
    EXPECT_EQ(b->bytes[15], 0x01);
    EXPECT_EQ(b->to_string(), "2001:db8::1");  // canonical lower-case form
}

TEST(IpAddr, ParsesExtremes) {
    EXPECT_EQ(ip("0.0.0.0").to_string(), "0.0.0.0");
    EXPECT_EQ(ip("255.255.255.255").to_string(), "255.255.255.255");
    EXPECT_EQ(ip("::").to_string(), "::");
    EXPECT_EQ(ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").to_string(),
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");  // 45 chars: the longest form
}

TEST(IpAddr, RejectsJunk) {
    for (const char* bad : {"", " ", "192.0.2", "192.0.2.256", "192.0.2.1 ", " 192.0.2.1",
                            "192.0.2.1/24", "0x7f.0.0.1", "1.2.3.4.5", "2001:db8::1::2",
                            "2001:db8::g", "fe80::1%eth0", "localhost", "::ffff:1.2.3",
                            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555"}) {
        EXPECT_FALSE(IpAddr::parse(bad)) << '"' << bad << '"';
    }
    // Embedded NUL: inet_pton would see only "192.0.2.1".
    EXPECT_FALSE(IpAddr::parse(std::string_view("192.0.2.1\0x", 11)));
    // Longer than any address text: rejected before the stack buffer.
    EXPECT_FALSE(IpAddr::parse(std::string(200, '1')));
}

TEST(IpAddr, V4FromHostOrderAndBytes) {
    EXPECT_EQ(IpAddr::v4(0xC6336402u).to_string(), "198.51.100.2");
    const uint8_t raw4[] = {203, 0, 113, 7};
    EXPECT_EQ(IpAddr::from_bytes(2, raw4), ip("203.0.113.7"));
    const uint8_t raw6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
    EXPECT_EQ(IpAddr::from_bytes(10, raw6), ip("2001:db8::42"));
    // Unknown family: unset, not a guessed-length read.
    const IpAddr none = IpAddr::from_bytes(7, raw6);
    EXPECT_EQ(none.family, 0);
    EXPECT_EQ(none.to_string(), "");
}

TEST(IpAddr, Unmapped) {
    EXPECT_EQ(ip("::ffff:192.0.2.9").unmapped(), ip("192.0.2.9"));
    EXPECT_TRUE(ip("::ffff:192.0.2.9").unmapped().is_v4());
    // Not mapped: unchanged (v4-compatible ::a.b.c.d, NAT64 64:ff9b::, plain v6, v4).
    EXPECT_EQ(ip("::192.0.2.9").unmapped(), ip("::192.0.2.9"));
    EXPECT_EQ(ip("64:ff9b::192.0.2.9").unmapped(), ip("64:ff9b::192.0.2.9"));
    EXPECT_EQ(ip("::fffe:192.0.2.9").unmapped(), ip("::fffe:192.0.2.9"));
    EXPECT_EQ(ip("2001:db8::1").unmapped(), ip("2001:db8::1"));
    EXPECT_EQ(ip("192.0.2.9").unmapped(), ip("192.0.2.9"));
}

TEST(IpAddr, OrderingAndEquality) {
    EXPECT_EQ(ip("192.0.2.1"), ip("192.0.2.1"));
    EXPECT_NE(ip("192.0.2.1"), ip("192.0.2.2"));
    EXPECT_LT(ip("192.0.2.1"), ip("192.0.2.2"));
    EXPECT_LT(ip("203.0.113.1"), ip("2001:db8::"));  // AF_INET (2) sorts before AF_INET6 (10)
}

TEST(IpAddrHash, SipHashReferenceVector) {
    // SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e (15 bytes).
    std::array<uint8_t, 16> key{};
    for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
    uint8_t msg[15];
    for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(portsentry::net::detail::siphash24(key, msg, sizeof msg), 0xa129ca6149be45e5ULL);
}

TEST(IpAddrHash, EqualAddressesHashEqualAndKeyMatters) {
    const IpAddrHash h;
    EXPECT_EQ(h(ip("192.0.2.1")), h(ip("192.0.2.1")));
    EXPECT_EQ(h(ip("2001:db8::1")), h(ip("2001:db8::1")));

    std::array<uint8_t, 16> k1{}, k2{};
    k2[0] = 1;
    EXPECT_NE(IpAddrHash(k1)(ip("192.0.2.1")), IpAddrHash(k2)(ip("192.0.2.1")));

    // Distinct addresses land in distinct values (no systematic collision on
    // the last octet, nor between a v4 and the v6 with the same leading bytes).
    std::unordered_set<size_t> seen;
    for (unsigned i = 0; i < 256; ++i) seen.insert(h(IpAddr::v4(0xC0000200u + i)));
    IpAddr v6 = ip("::");
    v6.bytes = ip("192.0.2.0").bytes;
    seen.insert(h(v6));
    EXPECT_EQ(seen.size(), 257u);

    std::unordered_set<IpAddr, IpAddrHash> set{ip("192.0.2.1"), ip("192.0.2.1"), ip("2001:db8::1")};
    EXPECT_EQ(set.size(), 2u);
}

TEST(Cidr, ParsesPrefixes) {
    auto c = Cidr::parse("192.0.2.0/24");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->addr, ip("192.0.2.0"));
    EXPECT_EQ(c->prefix, 24);
    EXPECT_EQ(c->to_string(), "192.0.2.0/24");

    c = Cidr::parse("2001:db8::/32");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 32);
    EXPECT_EQ(c->to_string(), "2001:db8::/32");
}

TEST(Cidr, BareAddressIsFullLength) {
    auto c = Cidr::parse("198.51.100.7");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 32);
    EXPECT_EQ(c->to_string(), "198.51.100.7");
    c = Cidr::parse("2001:db8::7");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 128);
    EXPECT_EQ(c->to_string(), "2001:db8::7");
    EXPECT_EQ(Cidr::host(ip("192.0.2.1")), *Cidr::parse("192.0.2.1/32"));
}

TEST(Cidr, ClearsHostBits) {
    EXPECT_EQ(Cidr::parse("192.0.2.77/24")->addr, ip("192.0.2.0"));
    EXPECT_EQ(Cidr::parse("192.0.2.255/25")->addr, ip("192.0.2.128"));
    EXPECT_EQ(Cidr::parse("198.51.100.7/0")->addr, ip("0.0.0.0"));
    EXPECT_EQ(Cidr::parse("203.0.113.255/31")->addr, ip("203.0.113.254"));
    EXPECT_EQ(Cidr::parse("2001:db8:ffff::1/33")->addr, ip("2001:db8:8000::"));
    EXPECT_EQ(Cidr::parse("2001:db8::ffff/127")->addr, ip("2001:db8::fffe"));
    EXPECT_EQ(Cidr::parse("2001:db8::1/0")->to_string(), "::/0");
}

TEST(Cidr, PrefixBoundaries) {
    EXPECT_TRUE(Cidr::parse("192.0.2.1/32"));
    EXPECT_FALSE(Cidr::parse("192.0.2.1/33"));
    EXPECT_TRUE(Cidr::parse("2001:db8::1/128"));
    EXPECT_FALSE(Cidr::parse("2001:db8::1/129"));
    EXPECT_TRUE(Cidr::parse("0.0.0.0/0"));
    EXPECT_TRUE(Cidr::parse("::/0"));
}

TEST(Cidr, RejectsJunk) {
    for (const char* bad : {"", "/", "/24", "192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/+8",
                            "192.0.2.0/ 24", "192.0.2.0 /24", "192.0.2.0/24 ", " 192.0.2.0/24",
                            "192.0.2.0/24/8", "192.0.2.0/2a", "192.0.2.0/0024", "192.0.2.0/99999999999",
                            "192.0.2/24", "host.example/24", "2001:db8::/1280", "#192.0.2.0/24"}) {
        EXPECT_FALSE(Cidr::parse(bad)) << '"' << bad << '"';
    }
}

TEST(Cidr, ContainsAtEdges) {
    const Cidr c = *Cidr::parse("192.0.2.0/24");
    EXPECT_FALSE(c.contains(ip("192.0.1.255")));
    EXPECT_TRUE(c.contains(ip("192.0.2.0")));
    EXPECT_TRUE(c.contains(ip("192.0.2.255")));
    EXPECT_FALSE(c.contains(ip("192.0.3.0")));
    EXPECT_FALSE(c.contains(ip("::ffff:192.0.2.1")));  // families never mix

    const Cidr odd = *Cidr::parse("198.51.100.64/26");
    EXPECT_FALSE(odd.contains(ip("198.51.100.63")));
    EXPECT_TRUE(odd.contains(ip("198.51.100.64")));
    EXPECT_TRUE(odd.contains(ip("198.51.100.127")));
    EXPECT_FALSE(odd.contains(ip("198.51.100.128")));

    EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("203.0.113.9")));
    EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains(ip("2001:db8::1")));
    EXPECT_TRUE(Cidr::parse("::/0")->contains(ip("2001:db8::1")));
    EXPECT_TRUE(Cidr::parse("2001:db8::/32")->contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(Cidr::parse("2001:db8::/32")->contains(ip("2001:db9::")));
}
