// Batch builders: build into a buffer, parse it back with libnftnl, compare.
// No socket, no root (STYLE §3, §13).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include <endian.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cstring>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "nft_build.hpp"
#include "nft_test_util.hpp"

namespace portsentry::kernel::detail {
namespace {

using testutil::cidr;
using Bytes = std::vector<uint8_t>;

struct Msg {
    uint16_t type;  // NFT_MSG_* or NFNL_MSG_BATCH_*
    uint16_t flags;
    uint32_t seq;
    const nlmsghdr* nlh;
};

// The messages of a batch; keeps its own copy of the bytes, so parsing a
// temporary Batch is safe.
struct Parsed : std::vector<Msg> {
    std::shared_ptr<const std::vector<uint8_t>> bytes;
};

Parsed parse(const Batch& b) {
    Parsed out;
    out.bytes = std::make_shared<const std::vector<uint8_t>>(b.bytes());
    int len = static_cast<int>(out.bytes->size());
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(out.bytes->data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
        uint16_t t = nlh->nlmsg_type;
        if (t != NFNL_MSG_BATCH_BEGIN && t != NFNL_MSG_BATCH_END) {
            EXPECT_EQ(t >> 8, NFNL_SUBSYS_NFTABLES);
            t &= 0xff;
        }
        out.push_back({t, nlh->nlmsg_flags, nlh->nlmsg_seq, nlh});
    }
    EXPECT_EQ(len, 0) << "trailing bytes in the batch";
    return out;
}

std::vector<uint16_t> types(const std::vector<Msg>& v) {
    std::vector<uint16_t> t;
    for (auto& m : v) t.push_back(m.type);
    return t;
}

struct RuleFree { void operator()(nftnl_rule* r) const { nftnl_rule_free(r); } };
struct SetFree { void operator()(nftnl_set* s) const { nftnl_set_free(s); } };

std::unique_ptr<nftnl_rule, RuleFree> parse_rule(const nlmsghdr* nlh) {
    std::unique_ptr<nftnl_rule, RuleFree> r(nftnl_rule_alloc());
    EXPECT_EQ(nftnl_rule_nlmsg_parse(nlh, r.get()), 0);
    return r;
}

std::vector<std::string> expr_names(nftnl_rule* r) {
    std::vector<std::string> names;
    nftnl_expr_foreach(r, [](nftnl_expr* e, void* d) {
        static_cast<std::vector<std::string>*>(d)->push_back(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
        return 0;
    }, &names);
    return names;
}

nftnl_expr* last_expr(nftnl_rule* r) {
    nftnl_expr* last = nullptr;
    nftnl_expr_foreach(r, [](nftnl_expr* e, void* d) { *static_cast<nftnl_expr**>(d) = e; return 0; }, &last);
    return last;
}

struct Elem {
    Bytes key;
    uint32_t flags;
    uint64_t timeout;
};

// Parsed by hand: libnftnl numbers the element nests 1, 2, 3... (the kernel
// ignores the nest type) but its own parser accepts only NFTA_LIST_ELEM.
std::pair<std::string, std::vector<Elem>> parse_elems(const nlmsghdr* nlh) {
    struct Out {
        std::string set;
        std::vector<Elem> elems;
    } out;
    mnl_attr_parse(nlh, sizeof(nfgenmsg), [](const nlattr* a, void* d) -> int {
        auto* o = static_cast<Out*>(d);
        if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET) o->set = mnl_attr_get_str(a);
        if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS) return MNL_CB_OK;
        mnl_attr_parse_nested(a, [](const nlattr* el, void* d2) -> int {
            Elem e{{}, 0, 0};
            mnl_attr_parse_nested(el, [](const nlattr* f, void* d3) -> int {
                auto* e = static_cast<Elem*>(d3);
                switch (mnl_attr_get_type(f)) {
                case NFTA_SET_ELEM_FLAGS: e->flags = ntohl(mnl_attr_get_u32(f)); break;
                case NFTA_SET_ELEM_TIMEOUT: e->timeout = be64toh(mnl_attr_get_u64(f)); break;
                case NFTA_SET_ELEM_KEY:
                    mnl_attr_parse_nested(f, [](const nlattr* v, void* d4) -> int {
                        auto* k = static_cast<const uint8_t*>(mnl_attr_get_payload(v));
                        if (mnl_attr_get_type(v) == NFTA_DATA_VALUE)
                            *static_cast<Bytes*>(d4) = Bytes(k, k + mnl_attr_get_payload_len(v));
                        return MNL_CB_OK;
                    }, &e->key);
                    break;
                }
                return MNL_CB_OK;
            }, &e);
            static_cast<Out*>(d2)->elems.push_back(e);
            return MNL_CB_OK;
        }, d);
        return MNL_CB_OK;
    }, &out);
    return {out.set, out.elems};
}

RulesetSpec small_spec(Backend b) {
    RulesetSpec s;
    s.tcp_ports = {{1, 112}, {114, 1023}};
    s.udp_ports = {{53, 53}};
    s.backend = b;
    s.queue_num = 7;
    s.ignore = {cidr("192.0.2.0/24"), cidr("2001:db8::/32")};
    return s;
}

// ---- elements ------------------------------------------------------------------

TEST(NftElements, HostIsStartAndNextAddressAsEnd) {
    auto iv = interval_of(cidr("192.0.2.7"), 3600000);
    EXPECT_EQ(iv.start, (Bytes{192, 0, 2, 7}));
    ASSERT_TRUE(iv.end);
    EXPECT_EQ(*iv.end, (Bytes{192, 0, 2, 8}));
    EXPECT_EQ(iv.timeout_ms, 3600000u);
}

TEST(NftElements, PrefixEndCarriesAcrossBytes) {
    auto iv = interval_of(cidr("198.51.100.0/24"));
    EXPECT_EQ(iv.start, (Bytes{198, 51, 100, 0}));
    EXPECT_EQ(*iv.end, (Bytes{198, 51, 101, 0}));
    auto v6 = interval_of(cidr("2001:db8:1:ffff::/64"));
    ASSERT_TRUE(v6.end);
    EXPECT_EQ(*v6.end, (Bytes{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(NftElements, TopOfAddressSpaceHasNoEnd) {
    EXPECT_FALSE(interval_of(cidr("255.255.255.255")).end.has_value());
    EXPECT_FALSE(interval_of(cidr("0.0.0.0/0")).end.has_value());
    EXPECT_TRUE(interval_of(cidr("255.255.255.254")).end.has_value());
}

TEST(NftElements, PortRangeEndIsOnePastLast) {
    auto iv = interval_of(config::PortRange{114, 1023});
    EXPECT_EQ(iv.start, (Bytes{0, 114}));
    EXPECT_EQ(*iv.end, (Bytes{0x04, 0x00}));  // 1024, big endian
    EXPECT_FALSE(interval_of(config::PortRange{65535, 65535}).end.has_value());
    EXPECT_THROW(interval_of(config::PortRange{0, 10}), std::invalid_argument);
}

TEST(NftElements, UnsetFamilyIsRefused) {
    net::Cidr bad{};
    EXPECT_THROW(interval_of(bad), std::invalid_argument);
}

TEST(NftElements, CoveredPrefixesAreDropped) {
    auto out = drop_covered({{cidr("192.0.2.9"), std::nullopt},
                             {cidr("192.0.2.0/24"), std::nullopt},
                             {cidr("192.0.3.0/24"), std::nullopt},  // adjacent, kept
                             {cidr("2001:db8::1"), std::nullopt},
                             {cidr("2001:db8::/32"), std::nullopt}});
    std::vector<std::string> got;
    for (auto& b : out) got.push_back(cidr_text(b.prefix));
    EXPECT_EQ(got, (std::vector<std::string>{"192.0.2.0/24", "192.0.3.0/24", "2001:db8::/32"}));
}

// The old O(n²) elimination, kept as the reference: shorter prefixes first
// (stable), each kept unless an earlier kept one covers it.
std::vector<BanElement> drop_covered_reference(std::vector<BanElement> v) {
    std::stable_sort(v.begin(), v.end(), [](const BanElement& a, const BanElement& b) {
        return a.prefix.addr.family != b.prefix.addr.family ? a.prefix.addr.family < b.prefix.addr.family
                                                            : a.prefix.prefix < b.prefix.prefix;
    });
    std::vector<BanElement> out;
    for (auto& b : v) {
        bool covered = false;
        for (auto& k : out)
            covered = covered || (k.prefix.addr.family == b.prefix.addr.family && k.prefix.prefix <= b.prefix.prefix &&
                                  k.prefix.contains(b.prefix.addr));
        if (!covered) out.push_back(b);
    }
    return out;
}

// Random prefixes that nest a lot: a few base addresses, each element a
// random length over one of them with a few random low bits, so hosts,
// their /24 or /64, wider ones and exact duplicates (with different
// timeouts: the first given must win) all occur.
std::vector<BanElement> random_nested(std::mt19937& rng, size_t n, bool mixed) {
    std::vector<BanElement> v;
    std::vector<net::IpAddr> bases;
    for (int i = 0; i < 6; ++i) {
        net::IpAddr a;
        a.family = (mixed && i % 2) ? AF_INET6 : AF_INET;
        for (auto& byte : a.bytes) byte = static_cast<uint8_t>(rng());
        if (a.is_v4()) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
        bases.push_back(a);
    }
    for (size_t i = 0; i < n; ++i) {
        net::IpAddr a = bases[rng() % bases.size()];
        const unsigned bits = a.bits();
        // Vary the last 1..12 bits, so prefixes overlap densely.
        const unsigned vary = 1 + rng() % 12;
        for (unsigned b = bits - vary; b < bits; ++b)
            if (rng() & 1) a.bytes[b / 8] ^= static_cast<uint8_t>(0x80u >> (b % 8));
        const unsigned len = rng() % 3 == 0 ? bits : bits - vary + rng() % (vary + 1) - (rng() % 4 == 0 ? 8 : 0);
        net::Cidr c{a, static_cast<uint8_t>(std::min(len, bits))};
        for (unsigned b = c.prefix; b < bits; ++b) c.addr.bytes[b / 8] &= static_cast<uint8_t>(~(0x80u >> (b % 8)));
        std::optional<std::chrono::seconds> t;
        if (rng() % 2) t = std::chrono::seconds(1 + rng() % 1000);
        v.push_back({c, t});
    }
    return v;
}

void expect_same(const std::vector<BanElement>& got, const std::vector<BanElement>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].prefix, want[i].prefix) << "element " << i;
        EXPECT_EQ(got[i].timeout, want[i].timeout) << "element " << i << " " << cidr_text(got[i].prefix);
    }
}

TEST(NftElements, CoveredPrefixesMatchTheBruteForceReference) {
    std::mt19937 rng(20261201);
    for (int round = 0; round < 300; ++round) {
        SCOPED_TRACE(round);
        auto v = random_nested(rng, 1 + rng() % 200, round % 3 != 0);
        expect_same(drop_covered(v), drop_covered_reference(v));
    }
}

TEST(NftElements, CoveredPrefixesEdgeCases) {
    expect_same(drop_covered({}), {});
    // 0.0.0.0/0 and ::/0 cover everything of their family, nothing of the other.
    auto all = drop_covered({{cidr("192.0.2.1"), std::nullopt},
                             {cidr("0.0.0.0/0"), std::nullopt},
                             {cidr("2001:db8::1"), std::nullopt},
                             {cidr("::/0"), std::nullopt},
                             {cidr("255.255.255.255"), std::nullopt}});
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].prefix, cidr("0.0.0.0/0"));
    EXPECT_EQ(all[1].prefix, cidr("::/0"));
    // A prefix with host bits set still covers what its network covers.
    net::Cidr sloppy = cidr("198.51.100.0/24");
    sloppy.addr.bytes[3] = 77;
    auto s = drop_covered({{cidr("198.51.100.200"), std::nullopt}, {sloppy, std::nullopt}});
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].prefix.prefix, 24);
    EXPECT_THROW(drop_covered({{net::Cidr{}, std::nullopt}}), std::invalid_argument);
}

// O(n log n) guard without a clock: a million host bans with their /24s (the
// shape a restore meets) finish well inside the test timeout, where the old
// pairwise check needed ~10^11 comparisons. Every host is covered.
TEST(NftElements, CoveredPrefixesAtAMillion) {
    std::vector<BanElement> v;
    v.reserve(1'050'000);
    for (uint32_t i = 0; i < 1'000'000; ++i)
        v.push_back({net::Cidr::host(net::IpAddr::v4(0x0B000000u + i * 7)), std::chrono::seconds(60)});
    for (uint32_t i = 0; i < 1'000'000 * 7 / 256; i += 2)  // every other /24 of that range
        v.push_back({net::Cidr{net::IpAddr::v4(0x0B000000u + i * 256), 24}, std::nullopt});
    const size_t n24 = v.size() - 1'000'000;
    size_t in_odd = 0;  // hosts in the odd /24s: not covered
    for (uint32_t i = 0; i < 1'000'000; ++i) in_odd += ((i * 7) >> 8) & 1;
    auto out = drop_covered(std::move(v));
    size_t hosts = 0;
    for (auto& e : out) hosts += e.prefix.prefix == 32;
    EXPECT_EQ(out.size() - hosts, n24);
    EXPECT_EQ(hosts, in_odd);
    EXPECT_EQ(out.front().prefix.prefix, 24);  // shorter prefixes first, as before
}

// ---- apply batch ----------------------------------------------------------------

TEST(NftBatch, ApplyIsOneTransactionReplacingTheTable) {
    Batch b = build_apply(small_spec(Backend::queue), {}, 100, true);
    auto m = parse(b);
    ASSERT_GE(m.size(), 5u);
    EXPECT_EQ(m.front().type, NFNL_MSG_BATCH_BEGIN);
    EXPECT_EQ(m.back().type, NFNL_MSG_BATCH_END);
    // add; delete; add — valid whether or not the table exists.
    EXPECT_EQ(m[1].type, NFT_MSG_NEWTABLE);
    EXPECT_EQ(m[2].type, NFT_MSG_DELTABLE);
    EXPECT_EQ(m[3].type, NFT_MSG_NEWTABLE);
    auto t = types(m);
    // Everything is ordered: sets, then their elements, then chains, then rules.
    std::vector<uint16_t> kinds;
    for (size_t i = 4; i + 1 < t.size(); ++i)
        if (kinds.empty() || kinds.back() != t[i]) kinds.push_back(t[i]);
    EXPECT_EQ(kinds, (std::vector<uint16_t>{NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE}));
    EXPECT_EQ(std::count(t.begin(), t.end(), NFT_MSG_NEWSET), 10);
    EXPECT_EQ(std::count(t.begin(), t.end(), NFT_MSG_NEWCHAIN), 2);
    // Sequence numbers are consecutive from the first, each message acked.
    for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m[i].seq, 100 + i);
    for (size_t i = 1; i + 1 < m.size(); ++i) EXPECT_TRUE(m[i].flags & NLM_F_ACK) << i;
    EXPECT_EQ(b.acked_count(), m.size() - 2);
    EXPECT_EQ(b.next_seq(), 100 + m.size());
}

TEST(NftBatch, CheckOmitsTheCommit) {
    auto m = parse(build_apply(small_spec(Backend::queue), {}, 1, false));
    EXPECT_EQ(m.front().type, NFNL_MSG_BATCH_BEGIN);
    EXPECT_EQ(m.back().type, NFT_MSG_NEWRULE);
}

TEST(NftBatch, EveryErrorSourceIsNamed) {
    Batch b = build_apply(small_spec(Backend::queue), {}, 10, true);
    for (auto& m : b.msgs()) EXPECT_FALSE(m.object.empty()) << m.seq;
    const BatchMsg* set = b.find(14);  // begin, 3 table messages, then the first set
    ASSERT_NE(set, nullptr);
    EXPECT_EQ(set->object, "set banned");
    const BatchMsg& last_rule = b.msgs()[b.msgs().size() - 2];
    EXPECT_EQ(last_rule.object, "rule input#10: meta l4proto udp queue num 7 bypass");
    // The expression offsets map an extack offset back to the queue expression.
    ASSERT_EQ(last_rule.parts.size(), 3u);
    EXPECT_EQ(last_rule.parts[2].second, "expression #3 (queue)");
    EXPECT_LT(last_rule.parts[1].first, last_rule.parts[2].first);
}

TEST(NftBatch, SmallBanSetSizeNeverShrinksTheNeverSets) {
    auto spec = small_spec(Backend::queue);
    spec.set_size = 4;
    for (int i = 0; i < 9; ++i) spec.never.push_back(*net::Cidr::parse("192.0.2." + std::to_string(i * 2)));
    auto m = parse(build_apply(spec, {}, 1, true));
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWSET) continue;
        std::unique_ptr<nftnl_set, SetFree> s(nftnl_set_alloc());
        ASSERT_EQ(nftnl_set_nlmsg_parse(x.nlh, s.get()), 0);
        std::string n = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
        if (n == "banned" || n == "banned6") {
            EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_DESC_SIZE), 4u) << n;
        }
        if (n == "never") {
            EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_DESC_SIZE), kNeverSetSize);
        }
    }
}

TEST(NftBatch, SetsCarryFlagsSizeAndTypes) {
    auto spec = small_spec(Backend::queue);
    spec.set_size = 12345;
    spec.fleet_set_size = 777;
    auto m = parse(build_apply(spec, {}, 1, true));
    std::vector<std::string> names;
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWSET) continue;
        std::unique_ptr<nftnl_set, SetFree> s(nftnl_set_alloc());
        ASSERT_EQ(nftnl_set_nlmsg_parse(x.nlh, s.get()), 0);
        std::string n = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
        names.push_back(n);
        // @never grows at run time independently of how many bans fit.
        EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_DESC_SIZE),
                  n.rfind("never", 0) == 0 ? kNeverSetSize : n.rfind("fleet", 0) == 0 ? 777u : 12345u) << n;
        uint32_t flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS);
        EXPECT_TRUE(flags & NFT_SET_INTERVAL) << n;
        EXPECT_EQ(bool(flags & NFT_SET_TIMEOUT), n == "banned" || n == "banned6" || n == "fleet" || n == "fleet6") << n;
        uint32_t klen = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN);
        EXPECT_EQ(klen, n.find("watched") != std::string::npos ? 2u : n.back() == '6' ? 16u : 4u) << n;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"banned", "banned6", "never", "never6", "ignore", "ignore6",
                                               "tcp_watched", "udp_watched", "fleet", "fleet6"}));
}

TEST(NftBatch, FleetElementsGoIntoTheFleetSetsOfTheSameBatch) {
    auto m = parse(build_apply(small_spec(Backend::queue), {{*net::Cidr::parse("192.0.2.1"), std::nullopt}}, 1, true,
                               {{*net::Cidr::parse("198.51.100.0/24"), std::chrono::seconds(60)},
                                {*net::Cidr::parse("2001:db8::1"), std::nullopt}}));
    std::map<std::string, int> elems;
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWSETELEM) continue;
        auto [set, el] = parse_elems(x.nlh);
        if (set == "fleet" && !el.empty()) {
            EXPECT_EQ(el[0].key, (Bytes{198, 51, 100, 0}));
            EXPECT_EQ(el[0].timeout, 60000u);
        }
        elems[set] += static_cast<int>(el.size());
    }
    EXPECT_EQ(elems["banned"], 2);  // an interval: start and end
    EXPECT_EQ(elems["fleet"], 2);
    EXPECT_EQ(elems["fleet6"], 2);
    EXPECT_EQ(elems.count("banned6"), 0u);
}

TEST(NftBatch, WatchedPortsAreIntervalPairs) {
    auto m = parse(build_apply(small_spec(Backend::queue), {}, 1, true));
    bool seen = false;
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWSETELEM) continue;
        auto [set, el] = parse_elems(x.nlh);
        if (set != "tcp_watched") continue;
        seen = true;
        // {1-112, 114-1023}: 1 start, 113 end, 114 start, 1024 end.
        ASSERT_EQ(el.size(), 4u);
        EXPECT_EQ(el[0].key, (Bytes{0, 1}));
        EXPECT_EQ(el[0].flags, 0u);
        EXPECT_EQ(el[1].key, (Bytes{0, 113}));
        EXPECT_EQ(el[1].flags, uint32_t(NFT_SET_ELEM_INTERVAL_END));
        EXPECT_EQ(el[2].key, (Bytes{0, 114}));
        EXPECT_EQ(el[3].key, (Bytes{4, 0}));
        EXPECT_EQ(el[3].flags, uint32_t(NFT_SET_ELEM_INTERVAL_END));
    }
    EXPECT_TRUE(seen);
}

TEST(NftBatch, ApplyCarriesBansIntoTheRightSets) {
    auto m = parse(build_apply(small_spec(Backend::queue),
                               {{cidr("203.0.113.5"), std::chrono::seconds(60)}, {cidr("2001:db8:5::/64"), std::nullopt}},
                               1, true));
    int found = 0;
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWSETELEM) continue;
        auto [set, el] = parse_elems(x.nlh);
        if (set == "banned" && !el.empty() && el[0].key == Bytes{203, 0, 113, 5}) {
            EXPECT_EQ(el[0].timeout, 60000u);
            ++found;
        }
        if (set == "banned6" && !el.empty()) {
            EXPECT_EQ(el[0].timeout, 0u);  // permanent: no timeout attribute
            ++found;
        }
    }
    EXPECT_EQ(found, 2);
}

// ---- steering rules --------------------------------------------------------------

TEST(NftBatch, XtQueueRuleIsTheNfqueueTargetRev3WithBypass) {
    auto m = parse(build_apply(small_spec(Backend::xt_queue), {}, 1, true));
    const Msg& last = m[m.size() - 2];
    ASSERT_EQ(last.type, NFT_MSG_NEWRULE);
    auto r = parse_rule(last.nlh);
    EXPECT_STREQ(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN), "input");
    EXPECT_EQ(expr_names(r.get()), (std::vector<std::string>{"meta", "cmp", "target"}));
    nftnl_expr* tg = last_expr(r.get());
    EXPECT_STREQ(nftnl_expr_get_str(tg, NFTNL_EXPR_TG_NAME), "NFQUEUE");
    EXPECT_EQ(nftnl_expr_get_u32(tg, NFTNL_EXPR_TG_REV), 3u);
    uint32_t len = 0;
    auto* info = static_cast<const xt_NFQ_info_v3*>(nftnl_expr_get(tg, NFTNL_EXPR_TG_INFO, &len));
    ASSERT_EQ(len, 8u);  // XT_ALIGN(sizeof(xt_NFQ_info_v3)) = XT_ALIGN(6)
    EXPECT_EQ(info->queuenum, 7);
    EXPECT_EQ(info->queues_total, 1);
    EXPECT_EQ(info->flags, NFQ_FLAG_BYPASS);
}

TEST(NftBatch, QueueRuleHasBypassAndOneQueue) {
    auto m = parse(build_apply(small_spec(Backend::queue), {}, 1, true));
    auto r = parse_rule(m[m.size() - 2].nlh);
    nftnl_expr* q = last_expr(r.get());
    EXPECT_STREQ(nftnl_expr_get_str(q, NFTNL_EXPR_NAME), "queue");
    EXPECT_EQ(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_NUM), 7);
    EXPECT_EQ(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_TOTAL), 1);
    EXPECT_EQ(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_FLAGS), NFT_QUEUE_FLAG_BYPASS);
}

TEST(NftBatch, NflogRuleDropsOnlyWhenBlocking) {
    auto spec = small_spec(Backend::nflog);
    spec.nflog_group = 9;
    spec.nflog_drop = true;
    spec.nflog_drop_udp = false;
    auto m = parse(build_apply(spec, {}, 1, true));
    auto tcp = parse_rule(m[m.size() - 3].nlh);
    auto udp = parse_rule(m[m.size() - 2].nlh);
    EXPECT_EQ(expr_names(tcp.get()), (std::vector<std::string>{"meta", "cmp", "log", "immediate"}));
    EXPECT_EQ(nftnl_expr_get_u32(last_expr(tcp.get()), NFTNL_EXPR_IMM_VERDICT), uint32_t(NF_DROP));
    EXPECT_EQ(expr_names(udp.get()), (std::vector<std::string>{"meta", "cmp", "log"}));
    EXPECT_EQ(nftnl_expr_get_u16(last_expr(udp.get()), NFTNL_EXPR_LOG_GROUP), 9);
}

TEST(NftBatch, WatchedRuleIsAnInvertedLookup) {
    auto m = parse(build_apply(small_spec(Backend::queue), {}, 1, true));
    // input rules: ct, lo, ignore, ignore6, fib, tcp watched, ...
    int rules = 0;
    for (auto& x : m) {
        if (x.type != NFT_MSG_NEWRULE) continue;
        auto r = parse_rule(x.nlh);
        if (std::string(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)) != "input" || ++rules != 6) continue;
        EXPECT_EQ(expr_names(r.get()), (std::vector<std::string>{"meta", "cmp", "payload", "lookup", "immediate"}));
        nftnl_expr* lk = nullptr;
        nftnl_expr_foreach(r.get(), [](nftnl_expr* e, void* d) {
            if (std::string(nftnl_expr_get_str(e, NFTNL_EXPR_NAME)) == "lookup") *static_cast<nftnl_expr**>(d) = e;
            return 0;
        }, &lk);
        ASSERT_NE(lk, nullptr);
        EXPECT_STREQ(nftnl_expr_get_str(lk, NFTNL_EXPR_LOOKUP_SET), "tcp_watched");
        EXPECT_EQ(nftnl_expr_get_u32(lk, NFTNL_EXPR_LOOKUP_FLAGS), uint32_t(NFT_LOOKUP_F_INV));
    }
    EXPECT_EQ(rules, 10);  // ct, lo, ignore, ignore6, fib, tcp, udp, socket, steer tcp, steer udp
}

// ---- probe, bans, removal ----------------------------------------------------------

TEST(NftBatch, ProbeIsNeverCommitted) {
    Batch b = build_probe(Backend::xt_queue, "portsentry_probe_42", 1);
    auto t = types(parse(b));
    EXPECT_EQ(t, (std::vector<uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWTABLE, NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE}));
    EXPECT_FALSE(b.committed());
    EXPECT_EQ(b.msgs()[1].object, "table inet portsentry_probe_42");
}

TEST(NftBatch, AddBansSplitsFamiliesWithTimeoutOnStartOnly) {
    Batch b = build_add_bans({{cidr("192.0.2.1"), std::chrono::seconds(3600)},
                              {cidr("2001:db8::/64"), std::chrono::seconds(30)},
                              {cidr("198.51.100.0/24"), std::nullopt}},
                             1);
    auto m = parse(b);
    ASSERT_EQ(types(m), (std::vector<uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM,
                                               NFNL_MSG_BATCH_END}));
    // Re-banning must not be an error: create without exclusive.
    EXPECT_TRUE(m[1].flags & NLM_F_CREATE);
    EXPECT_FALSE(m[1].flags & NLM_F_EXCL);
    auto [s4, e4] = parse_elems(m[1].nlh);
    EXPECT_EQ(s4, "banned");
    ASSERT_EQ(e4.size(), 4u);
    // Shorter prefixes first (covering check), so the /24 leads.
    EXPECT_EQ(e4[0].key, (Bytes{198, 51, 100, 0}));
    EXPECT_EQ(e4[0].timeout, 0u);
    EXPECT_EQ(e4[2].key, (Bytes{192, 0, 2, 1}));
    EXPECT_EQ(e4[2].timeout, 3600000u);
    EXPECT_EQ(e4[3].key, (Bytes{192, 0, 2, 2}));
    EXPECT_EQ(e4[3].flags, uint32_t(NFT_SET_ELEM_INTERVAL_END));
    EXPECT_EQ(e4[3].timeout, 0u);
    auto [s6, e6] = parse_elems(m[2].nlh);
    EXPECT_EQ(s6, "banned6");
    EXPECT_EQ(e6.size(), 2u);
    EXPECT_EQ(e6[0].timeout, 30000u);
}

TEST(NftBatch, ZeroTimeoutIsNotPermanent) {
    auto m = parse(build_add_bans({{cidr("192.0.2.1"), std::chrono::seconds(0)}}, 1));
    auto [s, e] = parse_elems(m[1].nlh);
    EXPECT_EQ(e[0].timeout, 1000u);
}

TEST(NftBatch, LargeBanListsAreChunked) {
    std::vector<BanElement> bans;
    for (int i = 0; i < 600; ++i) {
        net::IpAddr a = net::IpAddr::v4(0xC6336400u + static_cast<uint32_t>(i));  // 198.51.100.0 upward
        bans.push_back({net::Cidr::host(a), std::chrono::seconds(60)});
    }
    auto m = parse(build_add_bans(bans, 1));
    ASSERT_EQ(m.size(), 2u + 3u);  // 256 + 256 + 88
    size_t total = 0;
    for (size_t i = 1; i + 1 < m.size(); ++i) {
        EXPECT_LT(m[i].nlh->nlmsg_len, 64u * 1024u);
        total += parse_elems(m[i].nlh).second.size();
    }
    EXPECT_EQ(total, 1200u);  // start + end each
}

TEST(NftBatch, DelBansOneMessagePerPrefix) {
    Batch b = build_del_bans({cidr("192.0.2.1"), cidr("2001:db8::/64")}, 50);
    auto m = parse(b);
    ASSERT_EQ(types(m), (std::vector<uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_DELSETELEM, NFT_MSG_DELSETELEM,
                                               NFNL_MSG_BATCH_END}));
    EXPECT_EQ(parse_elems(m[1].nlh).first, "banned");
    EXPECT_EQ(parse_elems(m[2].nlh).first, "banned6");
    EXPECT_EQ(m[1].seq, 51u);  // del_bans maps seq - begin - 1 back to the prefix index
    EXPECT_EQ(b.msgs()[2].object, "delete element @banned6 { 2001:db8::/64 }");
}

TEST(NftBatch, RemoveTableWorksWhetherOrNotItExists) {
    auto t = types(parse(build_remove_table(1)));
    EXPECT_EQ(t, (std::vector<uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFNL_MSG_BATCH_END}));
}

}  // namespace
}  // namespace portsentry::kernel::detail
