// CidrSet: trie lookups at prefix edges, most-specific match, dedup, and
// copy/move semantics (run under ASan: leaks and double frees fail the test).
#include <gtest/gtest.h>

#include <utility>

#include "portsentry/net/address.hpp"

using portsentry::net::Cidr;
using portsentry::net::CidrSet;
using portsentry::net::IpAddr;

namespace {

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }
Cidr cidr(const char* s) { return Cidr::parse(s).value(); }

CidrSet make(std::initializer_list<const char*> prefixes) {
    CidrSet s;
    for (const char* p : prefixes) s.insert(cidr(p));
    return s;
}

}  // namespace

TEST(CidrSet, EmptyMatchesNothing) {
    const CidrSet s;
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.size(), 0u);
    EXPECT_FALSE(s.contains(ip("192.0.2.1")));
    EXPECT_FALSE(s.contains(ip("2001:db8::1")));
    EXPECT_FALSE(s.match(ip("192.0.2.1")));
    EXPECT_FALSE(s.contains(IpAddr{}));  // unset address: never covered
}

TEST(CidrSet, Slash24Edges) {
    const CidrSet s = make({"198.51.100.0/24"});
    EXPECT_FALSE(s.contains(ip("198.51.99.255")));
    EXPECT_TRUE(s.contains(ip("198.51.100.0")));
    EXPECT_TRUE(s.contains(ip("198.51.100.255")));
    EXPECT_FALSE(s.contains(ip("198.51.101.0")));
}

TEST(CidrSet, HostRoutesV4AndV6) {
    const CidrSet s = make({"192.0.2.10", "2001:db8::10"});
    EXPECT_TRUE(s.contains(ip("192.0.2.10")));
    EXPECT_FALSE(s.contains(ip("192.0.2.11")));
    EXPECT_FALSE(s.contains(ip("192.0.2.9")));
    EXPECT_TRUE(s.contains(ip("2001:db8::10")));
    EXPECT_FALSE(s.contains(ip("2001:db8::11")));
    EXPECT_EQ(s.match(ip("192.0.2.10"))->prefix, 32);
    EXPECT_EQ(s.match(ip("2001:db8::10"))->prefix, 128);
}

TEST(CidrSet, SlashZeroCoversItsFamilyOnly) {
    const CidrSet v4all = make({"0.0.0.0/0"});
    EXPECT_TRUE(v4all.contains(ip("0.0.0.0")));
    EXPECT_TRUE(v4all.contains(ip("255.255.255.255")));
    EXPECT_FALSE(v4all.contains(ip("2001:db8::1")));
    EXPECT_FALSE(v4all.contains(ip("::")));
    EXPECT_EQ(v4all.match(ip("203.0.113.5"))->to_string(), "0.0.0.0/0");

    const CidrSet v6all = make({"::/0"});
    EXPECT_TRUE(v6all.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(v6all.contains(ip("203.0.113.5")));
}

TEST(CidrSet, FamiliesNeverMix) {
    // ::c000:200/120 carries the same leading bytes as 192.0.2.0/24 once
    // shifted; more to the point ::ffff:192.0.2.0/120 is the mapped form.
    // Neither may make a v4 lookup succeed, nor the reverse.
    const CidrSet s = make({"::ffff:192.0.2.0/120", "198.51.100.0/24"});
    EXPECT_FALSE(s.contains(ip("192.0.2.1")));
    EXPECT_TRUE(s.contains(ip("::ffff:192.0.2.1")));
    EXPECT_FALSE(s.contains(ip("::ffff:198.51.100.1")));
    IpAddr v6_same_bytes = ip("::");
    v6_same_bytes.bytes = ip("198.51.100.1").bytes;  // c633:6401::
    EXPECT_FALSE(s.contains(v6_same_bytes));
}

TEST(CidrSet, MostSpecificMatchWins) {
    // Inserted broadest last, so insertion order cannot be what decides.
    const CidrSet s = make({"203.0.113.128/25", "203.0.113.200", "203.0.113.0/24", "203.0.0.0/16"});
    EXPECT_EQ(s.match(ip("203.0.113.200"))->to_string(), "203.0.113.200");
    EXPECT_EQ(s.match(ip("203.0.113.201"))->to_string(), "203.0.113.128/25");
    EXPECT_EQ(s.match(ip("203.0.113.127"))->to_string(), "203.0.113.0/24");
    EXPECT_EQ(s.match(ip("203.0.1.1"))->to_string(), "203.0.0.0/16");
    EXPECT_FALSE(s.match(ip("203.1.0.0")));

    const CidrSet s6 = make({"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64"});
    EXPECT_EQ(s6.match(ip("2001:db8:1:2::99"))->to_string(), "2001:db8:1:2::/64");
    EXPECT_EQ(s6.match(ip("2001:db8:1:3::99"))->to_string(), "2001:db8:1::/48");
    EXPECT_EQ(s6.match(ip("2001:db8:2::1"))->to_string(), "2001:db8::/32");
    EXPECT_FALSE(s6.match(ip("2001:db9::1")));
}

TEST(CidrSet, InsertDeduplicatesAndNormalises) {
    CidrSet s;
    s.insert(cidr("192.0.2.0/24"));
    s.insert(cidr("192.0.2.99/24"));  // same prefix after clearing host bits
    s.insert(Cidr{ip("192.0.2.5"), 24});  // hand-built with host bits: normalised
    s.insert(cidr("192.0.2.0/25"));  // nested but different: kept
    s.insert(cidr("2001:db8::/32"));
    s.insert(cidr("2001:db8::/32"));
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s.entries()[0].to_string(), "192.0.2.0/24");
    EXPECT_EQ(s.entries()[1].to_string(), "192.0.2.0/25");
    EXPECT_EQ(s.entries()[2].to_string(), "2001:db8::/32");
}

TEST(CidrSet, InsertRejectsInvalid) {
    CidrSet s;
    EXPECT_THROW(s.insert(Cidr{}), std::invalid_argument);
    EXPECT_THROW(s.insert(Cidr{ip("192.0.2.1"), 33}), std::invalid_argument);
    EXPECT_TRUE(s.empty());
}

TEST(CidrSet, ManyEntriesAgreeWithLinearScan) {
    // Every /28 of 192.0.2.0/24 with an even index, plus some hosts: the trie
    // and a plain loop over Cidr::contains must agree on every address.
    CidrSet s;
    std::vector<Cidr> all;
    for (unsigned i = 0; i < 16; i += 2) all.push_back(Cidr{IpAddr::v4(0xC0000200u + i * 16), 28});
    for (unsigned h : {17u, 33u, 200u, 255u}) all.push_back(Cidr::host(IpAddr::v4(0xC0000200u + h)));
    for (const auto& c : all) s.insert(c);
    for (unsigned last = 0; last < 256; ++last) {
        const IpAddr a = IpAddr::v4(0xC0000200u + last);
        bool linear = false;
        for (const auto& c : all) linear |= c.contains(a);
        EXPECT_EQ(s.contains(a), linear) << a.to_string();
    }
}

TEST(CidrSet, CopyIsDeepAndIndependent) {
    CidrSet a = make({"192.0.2.0/24", "2001:db8::/32"});
    CidrSet b(a);
    b.insert(cidr("198.51.100.0/24"));
    EXPECT_FALSE(a.contains(ip("198.51.100.1")));
    EXPECT_TRUE(b.contains(ip("198.51.100.1")));
    EXPECT_TRUE(b.contains(ip("2001:db8::1")));

    CidrSet c = make({"203.0.113.0/24"});
    c = a;  // replaces, frees the old trie
    EXPECT_FALSE(c.contains(ip("203.0.113.1")));
    EXPECT_TRUE(c.contains(ip("192.0.2.1")));
    EXPECT_EQ(c.size(), 2u);

    const CidrSet& self = c;
    c = self;  // self-assignment keeps the contents
    EXPECT_TRUE(c.contains(ip("2001:db8::1")));
    EXPECT_EQ(c.size(), 2u);

    CidrSet empty;
    CidrSet from_empty(empty);  // copying null tries
    EXPECT_FALSE(from_empty.contains(ip("192.0.2.1")));
}

TEST(CidrSet, MoveLeavesSourceEmptyAndUsable) {
    CidrSet a = make({"192.0.2.0/24", "2001:db8::/32"});
    CidrSet b(std::move(a));
    EXPECT_TRUE(b.contains(ip("192.0.2.1")));
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented moved-from state
    EXPECT_FALSE(a.contains(ip("192.0.2.1")));
    a.insert(cidr("198.51.100.0/24"));  // a moved-from set can be reused
    EXPECT_TRUE(a.contains(ip("198.51.100.1")));

    CidrSet c = make({"203.0.113.0/24"});
    c = std::move(b);
    EXPECT_TRUE(c.contains(ip("2001:db8::1")));
    EXPECT_FALSE(c.contains(ip("203.0.113.1")));
    EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)

    CidrSet& self = c;
    c = std::move(self);
    EXPECT_TRUE(c.contains(ip("192.0.2.1")));
}

TEST(CidrSet, TwentyThousandPrefixes) {
    // 2001:db8:0:N::/64 for N < 20000: every one found, its neighbours outside
    // the set not, and insertion stays cheap (entries_ grows geometrically).
    CidrSet s;
    auto net = [](unsigned n) {
        IpAddr a = IpAddr::parse("2001:db8::").value();
        a.bytes[6] = static_cast<uint8_t>(n >> 8);
        a.bytes[7] = static_cast<uint8_t>(n);
        return a;
    };
    for (unsigned n = 0; n < 20000; n += 1) s.insert(Cidr{net(n), 64});
    EXPECT_EQ(s.size(), 20000u);
    for (unsigned n = 0; n < 20000; n += 997) {
        IpAddr inside = net(n);
        inside.bytes[15] = 0x42;
        EXPECT_TRUE(s.contains(inside));
        EXPECT_EQ(s.match(inside)->prefix, 64);
    }
    EXPECT_FALSE(s.contains(net(20000)));
    EXPECT_FALSE(s.contains(net(65535)));
}
