// Ruleset description and nf_tables batch builders (no socket here; see nft.cpp).
#include "nft_build.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "portsentry/net/packet.hpp"

namespace portsentry::kernel::detail {
namespace {

// nft's datatype ids (nftables include/datatype.h), stored in NFTA_SET_KEY_TYPE
// so that `nft list` prints addresses and ports rather than raw integers.
constexpr uint32_t kTypeIpAddr = 7;
constexpr uint32_t kTypeIp6Addr = 8;
constexpr uint32_t kTypeInetService = 13;

// nf_conntrack_common.h: NF_CT_STATE_BIT(IP_CT_ESTABLISHED) = 1 << 1,
// NF_CT_STATE_BIT(IP_CT_RELATED) = 1 << 2 (bit 0 is `invalid`).
constexpr uint32_t kCtEstablishedRelated = (1u << 1) | (1u << 2);

// Scratch space reserved per message while libnftnl writes it; libmnl does no
// bounds checking, so every message we build must stay below this (the
// largest is a NEWSETELEM of kElemsPerMsg elements, ~26 KiB).
constexpr size_t kMaxMsg = 64 * 1024;


ExprPtr new_expr(const char* name) {
    ExprPtr e(nftnl_expr_alloc(name));
    if (!e) throw std::bad_alloc();
    return e;
}

// ---- expression factories (each returns an owned nftnl_expr*) --------------

ExprFactory meta_load(uint32_t key) {
    return [key] {
        auto e = new_expr("meta");
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, NFT_REG_1);
        return e.release();
    };
}

ExprFactory cmp(uint32_t op, std::vector<uint8_t> data) {
    return [op, data] {
        auto e = new_expr("cmp");
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_OP, op);
        nftnl_expr_set(e.get(), NFTNL_EXPR_CMP_DATA, data.data(), static_cast<uint32_t>(data.size()));
        return e.release();
    };
}

template <class T>
std::vector<uint8_t> host_bytes(T v) {  // registers hold meta/ct/fib results in host order
    std::vector<uint8_t> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

ExprFactory payload_load(uint32_t base, uint32_t offset, uint32_t len) {
    return [=] {
        auto e = new_expr("payload");
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
        return e.release();
    };
}

ExprFactory lookup(const SetDef& set, bool inverted) {
    return [name = set.name, id = set.id, inverted] {
        auto e = new_expr("lookup");
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
        nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOOKUP_SET, name.c_str());
        // The set is created in the same batch: the id resolves it before commit.
        if (id) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SET_ID, id);
        if (inverted) nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        return e.release();
    };
}

ExprFactory verdict(int v) {
    return [v] {
        auto e = new_expr("immediate");
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(v));
        return e.release();
    };
}

// `ip saddr` / `ip6 saddr` in an inet table: check the family first, as nft does.
std::vector<ExprDef> saddr_in(const SetDef& set, bool v6) {
    return {
        {"meta nfproto", meta_load(NFT_META_NFPROTO)},
        {"cmp nfproto", cmp(NFT_CMP_EQ, {static_cast<uint8_t>(v6 ? NFPROTO_IPV6 : NFPROTO_IPV4)})},
        {v6 ? "ip6 saddr" : "ip saddr",
         payload_load(NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4)},
        {"lookup @" + set.name, lookup(set, false)},
    };
}

std::vector<ExprDef> l4proto_is(uint8_t proto) {
    return {
        {"meta l4proto", meta_load(NFT_META_L4PROTO)},
        {"cmp l4proto", cmp(NFT_CMP_EQ, {proto})},
    };
}

// `p` is IPPROTO_TCP or IPPROTO_UDP, the values of net::L4.
const char* proto_name(uint8_t p) { return net::keyword(static_cast<net::L4>(p)); }

const SetDef& set_named(const std::vector<SetDef>& sets, const std::string& n) {
    for (auto& s : sets)
        if (s.name == n) return s;
    throw std::logic_error("nft_build: no set " + n);
}

RuleDef rule(std::string chain, std::string text, std::vector<std::vector<ExprDef>> groups) {
    RuleDef r{std::move(chain), std::move(text), {}, {}};
    for (auto& g : groups)
        for (auto& e : g) r.exprs.push_back(std::move(e));
    return r;
}

// big-endian "+1 at bit position" for interval ends; returns false on overflow.
bool add_pow2(std::vector<uint8_t>& key, unsigned bit_from_lsb) {
    size_t idx = key.size() - 1 - bit_from_lsb / 8;
    unsigned carry = 1u << (bit_from_lsb % 8);
    for (size_t i = idx + 1; i-- > 0;) {
        unsigned s = key[i] + carry;
        key[i] = static_cast<uint8_t>(s & 0xff);
        carry = s >> 8;
        if (!carry) return true;
    }
    return false;
}

}  // namespace

// ---- elements ----------------------------------------------------------------

// The address length of `c` in bits; throws for what no set can hold.
unsigned address_bits(const net::Cidr& c) {
    unsigned bits;
    if (c.addr.family == AF_INET) bits = 32;
    else if (c.addr.family == AF_INET6) bits = 128;
    else throw std::invalid_argument("nft: address family " + std::to_string(c.addr.family) + " is not IPv4/IPv6");
    if (c.prefix > bits)
        throw std::invalid_argument(fmt::format("nft: prefix /{} longer than the address", c.prefix));
    return bits;
}

Interval interval_of(const net::Cidr& c, std::optional<uint64_t> timeout_ms) {
    const unsigned bits = address_bits(c);
    Interval iv;
    iv.start.assign(c.addr.bytes.begin(), c.addr.bytes.begin() + bits / 8);
    for (unsigned b = c.prefix; b < bits; ++b)  // clear host bits
        iv.start[b / 8] &= static_cast<uint8_t>(~(0x80u >> (b % 8)));
    std::vector<uint8_t> end = iv.start;
    if (add_pow2(end, bits - c.prefix)) iv.end = std::move(end);
    iv.timeout_ms = timeout_ms;
    return iv;
}

Interval interval_of(const config::PortRange& r) {
    if (r.lo == 0 || r.hi < r.lo)
        throw std::invalid_argument(fmt::format("nft: bad port range {}-{}", r.lo, r.hi));
    Interval iv;
    iv.start = {static_cast<uint8_t>(r.lo >> 8), static_cast<uint8_t>(r.lo & 0xff)};
    if (r.hi < 65535) {
        unsigned e = r.hi + 1u;
        iv.end = std::vector<uint8_t>{static_cast<uint8_t>(e >> 8), static_cast<uint8_t>(e & 0xff)};
    }
    return iv;
}

std::string cidr_text(const net::Cidr& c) {
    Interval iv = interval_of(c);  // validates and clears host bits
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(c.addr.family, iv.start.data(), buf, sizeof buf)) throw std::invalid_argument("nft: inet_ntop");
    unsigned bits = c.addr.family == AF_INET ? 32 : 128;
    return c.prefix == bits ? std::string(buf) : fmt::format("{}/{}", buf, c.prefix);
}

std::string port_text(const config::PortRange& r) {
    return r.lo == r.hi ? std::to_string(r.lo) : fmt::format("{}-{}", r.lo, r.hi);
}

namespace {

// An element's prefix reduced to what drop_covered() compares: family, the
// address with host bits cleared, and the prefix length. Throws as
// interval_of() does for a family other than IPv4/IPv6 or an overlong prefix.
struct PrefixKey {
    uint8_t family;
    uint8_t len;
    std::array<uint8_t, 16> start;
};

PrefixKey key_of(const net::Cidr& c) {
    (void)address_bits(c);  // validates: an element no set can hold throws here
    PrefixKey k{c.addr.family, c.prefix, {}};
    const unsigned full = c.prefix / 8, rest = c.prefix % 8;
    std::copy_n(c.addr.bytes.begin(), full, k.start.begin());
    if (rest) k.start[full] = static_cast<uint8_t>(c.addr.bytes[full] & (0xff00u >> rest));
    return k;
}

// `outer` covers `inner`: same family, no longer, and inner's first
// outer.len bits equal outer's (both have their host bits cleared).
bool covers(const PrefixKey& outer, const PrefixKey& inner) {
    if (outer.family != inner.family || outer.len > inner.len) return false;
    const unsigned full = outer.len / 8, rest = outer.len % 8;
    if (std::memcmp(outer.start.data(), inner.start.data(), full) != 0) return false;
    return !rest || outer.start[full] == (inner.start[full] & (0xff00u >> rest));
}

}  // namespace

std::vector<BanElement> drop_covered(std::vector<BanElement> v) {
    // O(n log n): sort by (family, start, length). CIDR prefixes nest or are
    // disjoint, so in that order whatever covers an element is the last kept
    // one before it: any kept prefix between the two would start inside the
    // cover, hence be covered itself and not kept. One comparison per element.
    std::vector<PrefixKey> keys;
    keys.reserve(v.size());
    for (const auto& b : v) keys.push_back(key_of(b.prefix));
    std::vector<uint32_t> order(v.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    // Stable: of equal prefixes the first given is kept (its timeout wins).
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const PrefixKey &x = keys[a], &y = keys[b];
        if (x.family != y.family) return x.family < y.family;
        if (int c = std::memcmp(x.start.data(), y.start.data(), 16); c != 0) return c < 0;
        return x.len < y.len;
    });
    std::vector<uint32_t> kept;
    kept.reserve(v.size());
    for (uint32_t i : order)
        if (kept.empty() || !covers(keys[kept.back()], keys[i])) kept.push_back(i);
    // Output in the order callers have always seen (family, then shorter
    // prefixes first, then as given): --print-ruleset and its golden dumps
    // list the elements this way.
    std::stable_sort(kept.begin(), kept.end(), [&](uint32_t a, uint32_t b) {
        const PrefixKey &x = keys[a], &y = keys[b];
        if (x.family != y.family) return x.family < y.family;
        if (x.len != y.len) return x.len < y.len;
        return a < b;
    });
    std::vector<BanElement> out;
    out.reserve(kept.size());
    for (uint32_t i : kept) out.push_back(std::move(v[i]));
    return out;
}

// ---- ruleset description -----------------------------------------------------

RuleDef steer_rule(Backend b, uint8_t l4proto, uint16_t queue_num, uint16_t nflog_group, bool drop) {
    std::string proto = proto_name(l4proto);
    RuleDef r{"input", "", "", l4proto_is(l4proto)};
    switch (b) {
    case Backend::queue:
        r.text = fmt::format("meta l4proto {} queue num {} bypass", proto, queue_num);
        r.exprs.push_back({"queue", [queue_num] {
            auto e = new_expr("queue");
            nftnl_expr_set_u16(e.get(), NFTNL_EXPR_QUEUE_NUM, queue_num);
            nftnl_expr_set_u16(e.get(), NFTNL_EXPR_QUEUE_TOTAL, 1);
            // bypass: with no reader bound to the queue the packet is accepted,
            // so a dead daemon never blackholes the host (fail open).
            nftnl_expr_set_u16(e.get(), NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
            return e.release();
        }});
        break;
    case Backend::xt_queue:
        r.text = fmt::format("meta l4proto {} queue num {} bypass", proto, queue_num);
        r.comment = "loaded as the xt NFQUEUE target (nft_compat, as iptables-nft does); nft lists it as:";
        r.exprs.push_back({"xt NFQUEUE", [queue_num] {
            auto e = new_expr("target");
            nftnl_expr_set_str(e.get(), NFTNL_EXPR_TG_NAME, "NFQUEUE");
            nftnl_expr_set_u32(e.get(), NFTNL_EXPR_TG_REV, 3);
            // nft_compat insists on XT_ALIGN(targetsize) bytes, and libnftnl takes
            // ownership of the buffer (frees it with the expression): malloc it.
            const size_t len = XT_ALIGN(sizeof(xt_NFQ_info_v3));
            auto* info = static_cast<xt_NFQ_info_v3*>(std::calloc(1, len));
            if (!info) throw std::bad_alloc();
            info->queuenum = queue_num;
            info->queues_total = 1;
            info->flags = NFQ_FLAG_BYPASS;
            nftnl_expr_set(e.get(), NFTNL_EXPR_TG_INFO, info, static_cast<uint32_t>(len));
            return e.release();
        }});
        break;
    case Backend::nflog:
        r.text = fmt::format("meta l4proto {} log group {}{}", proto, nflog_group, drop ? " drop" : "");
        r.exprs.push_back({"log", [nflog_group] {
            auto e = new_expr("log");
            nftnl_expr_set_u16(e.get(), NFTNL_EXPR_LOG_GROUP, nflog_group);
            return e.release();
        }});
        // NFLOG gives no inline verdict: with blocking on, the rule itself drops.
        if (drop) r.exprs.push_back({"drop", verdict(NF_DROP)});
        break;
    }
    return r;
}

// Long on purpose (~160 lines): it reads top to bottom in the order of the
// ruleset it describes (sets, then each chain's rules as nft lists them), and
// the golden dumps in tests/unit/kernel pin that order; split, the order
// would live in the calls between the pieces.
RulesetDef describe(const RulesetSpec& spec) {
    RulesetDef d;
    auto add_set = [&](std::string name, uint32_t type, uint32_t len, std::string type_text, uint32_t flags,
                       std::string comment) -> SetDef& {
        SetDef s;
        s.name = std::move(name);
        s.id = static_cast<uint32_t>(d.sets.size() + 1);
        s.key_type = type;
        s.key_len = len;
        s.type_text = std::move(type_text);
        s.flags = flags;
        s.size = spec.set_size;
        s.comment = std::move(comment);
        d.sets.push_back(std::move(s));
        return d.sets.back();
    };
    // interval everywhere: banned6 must hold /64 prefixes, ignore/never hold CIDRs.
    add_set("banned", kTypeIpAddr, 4, "ipv4_addr", NFT_SET_INTERVAL | NFT_SET_TIMEOUT,
            "bans: dropped at prerouting; elements carry their own timeout");
    add_set("banned6", kTypeIp6Addr, 16, "ipv6_addr", NFT_SET_INTERVAL | NFT_SET_TIMEOUT,
            "IPv6 bans: hosts or whole prefixes (/64)");
    add_set("never", kTypeIpAddr, 4, "ipv4_addr", NFT_SET_INTERVAL,
            "never dropped, even if banned (own addresses, gateways, resolvers)");
    add_set("never6", kTypeIp6Addr, 16, "ipv6_addr", NFT_SET_INTERVAL, "");
    add_set("ignore", kTypeIpAddr, 4, "ipv4_addr", NFT_SET_INTERVAL,
            "portsentry.ignore: never steered to the daemon");
    add_set("ignore6", kTypeIp6Addr, 16, "ipv6_addr", NFT_SET_INTERVAL, "");
    add_set("tcp_watched", kTypeInetService, 2, "inet_service", NFT_SET_INTERVAL,
            "ports steered to the daemon (classic list, or advanced range minus excludes)");
    add_set("udp_watched", kTypeInetService, 2, "inet_service", NFT_SET_INTERVAL, "");
    // The fleet's decisions (CrowdSec LAPI): their own pair, so they never
    // touch a local ban; sized by crowdsec.fleet_set_size.
    add_set("fleet", kTypeIpAddr, 4, "ipv4_addr", NFT_SET_INTERVAL | NFT_SET_TIMEOUT,
            "CrowdSec decisions pulled from the LAPI: dropped at prerouting").size = spec.fleet_set_size;
    add_set("fleet6", kTypeIp6Addr, 16, "ipv6_addr", NFT_SET_INTERVAL | NFT_SET_TIMEOUT, "").size =
        spec.fleet_set_size;

    auto fill_cidrs = [&](const std::string& v4, const std::string& v6, const std::vector<net::Cidr>& cidrs) {
        std::vector<BanElement> els;
        for (auto& c : cidrs) els.push_back({c, std::nullopt});
        for (auto& b : drop_covered(std::move(els))) {
            SetDef* s = nullptr;
            for (auto& x : d.sets)
                if (x.name == (b.prefix.addr.family == AF_INET6 ? v6 : v4)) s = &x;
            s->elems.push_back(interval_of(b.prefix));
            s->elem_text.push_back(cidr_text(b.prefix));
        }
    };
    fill_cidrs("ignore", "ignore6", spec.ignore);
    fill_cidrs("never", "never6", spec.never);
    for (auto& [name, ports] : {std::pair{"tcp_watched", &spec.tcp_ports}, std::pair{"udp_watched", &spec.udp_ports}}) {
        for (auto& x : d.sets) {
            if (x.name != name) continue;
            for (auto& r : *ports) {
                x.elems.push_back(interval_of(r));
                x.elem_text.push_back(port_text(r));
            }
        }
    }

    // Sets filled only here (not at run time) are never smaller than their
    // contents: a small ban_set_size must not make the ruleset unloadable.
    for (auto& x : d.sets)
        if (x.name.rfind("ignore", 0) == 0 || x.name.find("_watched") != std::string::npos)
            x.size = std::max<uint32_t>(x.size, static_cast<uint32_t>(x.elems.size()));
    // The never-ban sets grow at run time (new addresses, logins) and have
    // nothing to do with how many bans fit: never sized below kNeverSetSize.
    for (auto& x : d.sets)
        if (x.name.rfind("never", 0) == 0)
            x.size = std::max<uint32_t>({x.size, kNeverSetSize, static_cast<uint32_t>(x.elems.size())});

    d.chains.push_back({"prerouting", NF_INET_PRE_ROUTING, -300, "prerouting", "raw"});
    d.chains.push_back({"input", NF_INET_LOCAL_IN, -150, "input", "-150"});

    const auto& S = d.sets;
    auto accept = std::vector<ExprDef>{{"accept", verdict(NF_ACCEPT)}};
    auto drop = std::vector<ExprDef>{{"drop", verdict(NF_DROP)}};
    // prerouting at raw priority: before conntrack, so banned sources cost no ct entry.
    d.rules.push_back(rule("prerouting", "ip saddr @never accept", {saddr_in(set_named(S, "never"), false), accept}));
    d.rules.push_back(rule("prerouting", "ip6 saddr @never6 accept", {saddr_in(set_named(S, "never6"), true), accept}));
    d.rules.push_back(rule("prerouting", "ip saddr @banned drop", {saddr_in(set_named(S, "banned"), false), drop}));
    d.rules.push_back(rule("prerouting", "ip6 saddr @banned6 drop", {saddr_in(set_named(S, "banned6"), true), drop}));
    d.rules.push_back(rule("prerouting", "ip saddr @fleet drop", {saddr_in(set_named(S, "fleet"), false), drop}));
    d.rules.push_back(rule("prerouting", "ip6 saddr @fleet6 drop", {saddr_in(set_named(S, "fleet6"), true), drop}));

    // Stealth probes (FIN, NULL, XMAS) are ct state invalid: only established
    // and related are accepted here, so invalid and new both go on.
    d.rules.push_back(rule("input", "ct state established,related accept",
        {{{"ct state", [] {
              auto e = new_expr("ct");
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CT_DREG, NFT_REG_1);
              return e.release();
          }},
          {"bitwise", [] {
              auto e = new_expr("bitwise");
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_BITWISE_LEN, 4);
              uint32_t mask = kCtEstablishedRelated, x = 0;
              nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_MASK, &mask, 4);
              nftnl_expr_set(e.get(), NFTNL_EXPR_BITWISE_XOR, &x, 4);
              return e.release();
          }},
          {"cmp", cmp(NFT_CMP_NEQ, host_bytes<uint32_t>(0))}},
         accept}));
    // lo is ifindex 1 in every network namespace (registered first).
    d.rules.push_back(rule("input", "iif \"lo\" accept",
        {{{"meta iif", meta_load(NFT_META_IIF)}, {"cmp", cmp(NFT_CMP_EQ, host_bytes<uint32_t>(1))}}, accept}));
    d.rules.push_back(rule("input", "ip saddr @ignore accept", {saddr_in(set_named(S, "ignore"), false), accept}));
    d.rules.push_back(rule("input", "ip6 saddr @ignore6 accept", {saddr_in(set_named(S, "ignore6"), true), accept}));
    // Only packets addressed to this host are steered: no bans for broadcasts.
    d.rules.push_back(rule("input", "fib daddr type != local accept",
        {{{"fib daddr type", [] {
              auto e = new_expr("fib");
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_FIB_DREG, NFT_REG_1);
              return e.release();
          }},
          {"cmp", cmp(NFT_CMP_NEQ, host_bytes<uint32_t>(RTN_LOCAL))}},
         accept}));
    // Unwatched ports pass; an unwatched protocol passes entirely.
    for (uint8_t p : {uint8_t(IPPROTO_TCP), uint8_t(IPPROTO_UDP)}) {
        const auto& ports = p == IPPROTO_TCP ? spec.tcp_ports : spec.udp_ports;
        std::string name = std::string(proto_name(p)) + "_watched";
        if (ports.empty()) {
            d.rules.push_back(rule("input", fmt::format("meta l4proto {} accept", proto_name(p)), {l4proto_is(p), accept}));
        } else {
            d.rules.push_back(rule("input", fmt::format("{} dport != @{} accept", proto_name(p), name),
                {l4proto_is(p),
                 {{fmt::format("{} dport", proto_name(p)), payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2)},
                  {"lookup @" + name, lookup(set_named(S, name), true)}},
                 accept}));
        }
    }
    // A local socket owns the port (a service, or our own classic tripwire).
    d.rules.push_back(rule("input", "socket transparent 0 accept",
        {{{"socket transparent", [] {
              auto e = new_expr("socket");
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_TRANSPARENT);
              nftnl_expr_set_u32(e.get(), NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
              return e.release();
          }},
          {"cmp", cmp(NFT_CMP_EQ, {0})}},
         accept}));
    // nflog has no inline verdict, so the steer rule drops by itself: a
    // protected source (gateway, resolver, a logged-in admin) must still get
    // the kernel's normal answer, and the daemon still hears of the probe.
    if (spec.backend == Backend::nflog && (spec.nflog_drop || spec.nflog_drop_udp.value_or(false))) {
        const uint16_t group = spec.nflog_group;
        auto log_expr = std::vector<ExprDef>{{"log", [group] {
            auto e = new_expr("log");
            nftnl_expr_set_u16(e.get(), NFTNL_EXPR_LOG_GROUP, group);
            return e.release();
        }}};
        d.rules.push_back(rule("input", fmt::format("ip saddr @never log group {} accept", group),
                               {saddr_in(set_named(S, "never"), false), log_expr, accept}));
        d.rules.push_back(rule("input", fmt::format("ip6 saddr @never6 log group {} accept", group),
                               {saddr_in(set_named(S, "never6"), true), log_expr, accept}));
    }
    if (!spec.tcp_ports.empty())
        d.rules.push_back(steer_rule(spec.backend, IPPROTO_TCP, spec.queue_num, spec.nflog_group, spec.nflog_drop));
    if (!spec.udp_ports.empty())
        d.rules.push_back(steer_rule(spec.backend, IPPROTO_UDP, spec.queue_num, spec.nflog_group,
                                     spec.nflog_drop_udp.value_or(spec.nflog_drop)));
    return d;
}

// ---- batch -----------------------------------------------------------------------

Batch::Batch(uint32_t first_seq) : seq_(first_seq) {}

void Batch::begin() {
    size_t off = buf_.size();
    buf_.resize(off + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)));
    begin_seq_ = seq_;
    nftnl_batch_begin(reinterpret_cast<char*>(&buf_[off]), seq_);
    msgs_.push_back({seq_++, NFNL_MSG_BATCH_BEGIN, false, "batch begin", {}});
}

void Batch::end() {
    size_t off = buf_.size();
    buf_.resize(off + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)));
    nftnl_batch_end(reinterpret_cast<char*>(&buf_[off]), seq_);
    msgs_.push_back({seq_++, NFNL_MSG_BATCH_END, false, "batch end (commit)", {}});
    committed_ = true;
}

uint32_t Batch::add(uint16_t nft_msg, uint16_t flags, std::string object,
                    const std::function<void(nlmsghdr*)>& fill) {
    size_t off = buf_.size();
    buf_.resize(off + kMaxMsg);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(&buf_[off]), nft_msg, NFPROTO_INET,
                                          static_cast<uint16_t>(flags | NLM_F_ACK), seq_);
    fill(nlh);
    if (nlh->nlmsg_len > kMaxMsg) std::abort();  // already overran the scratch: a builder bug
    buf_.resize(off + MNL_ALIGN(nlh->nlmsg_len));
    msgs_.push_back({seq_, nft_msg, true, std::move(object), {}});
    return seq_++;
}

void Batch::label_last(std::vector<std::pair<uint32_t, std::string>> parts) { msgs_.back().parts = std::move(parts); }

const BatchMsg* Batch::find(uint32_t seq) const {
    for (auto& m : msgs_)
        if (m.seq == seq) return &m;
    return nullptr;
}

size_t Batch::acked_count() const {
    return static_cast<size_t>(std::count_if(msgs_.begin(), msgs_.end(), [](auto& m) { return m.acked; }));
}

namespace {

std::unique_ptr<nftnl_table, TableDel> make_table(const char* name) {
    std::unique_ptr<nftnl_table, TableDel> t(nftnl_table_alloc());
    if (!t) throw std::bad_alloc();
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name);
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    return t;
}

void add_table_msg(Batch& b, uint16_t msg, const char* name, uint16_t flags) {
    auto t = make_table(name);
    b.add(msg, flags, fmt::format("table inet {}", name),
          [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, t.get()); });
}

void add_chain_msg(Batch& b, const char* table, const ChainDef& c) {
    std::unique_ptr<nftnl_chain, ChainDel> ch(nftnl_chain_alloc());
    if (!ch) throw std::bad_alloc();
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, table);
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name.c_str());
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, c.hooknum);
    nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, c.prio);
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    b.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, "chain " + c.name,
          [&](nlmsghdr* nlh) { nftnl_chain_nlmsg_build_payload(nlh, ch.get()); });
}

// Offsets of each NFTA_LIST_ELEM inside NFTA_RULE_EXPRESSIONS of a built rule
// message, paired with the expression labels: an extack offset pointing into
// one of them names the expression the kernel refused.
std::vector<std::pair<uint32_t, std::string>> expr_offsets(const nlmsghdr* nlh, const RuleDef& r) {
    struct Ctx {
        const uint8_t* base;
        const RuleDef* rule;
        std::vector<std::pair<uint32_t, std::string>> out;
    } ctx{reinterpret_cast<const uint8_t*>(nlh), &r, {}};
    mnl_attr_parse(nlh, sizeof(nfgenmsg), [](const nlattr* a, void* d) -> int {
        if (mnl_attr_get_type(a) != NFTA_RULE_EXPRESSIONS) return MNL_CB_OK;
        mnl_attr_parse_nested(a, [](const nlattr* el, void* d2) -> int {
            auto* c = static_cast<Ctx*>(d2);
            size_t i = c->out.size();
            std::string label = i < c->rule->exprs.size() ? c->rule->exprs[i].label : "?";
            c->out.emplace_back(static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(el) - c->base),
                                fmt::format("expression #{} ({})", i + 1, label));
            return MNL_CB_OK;
        }, d);
        return MNL_CB_OK;
    }, &ctx);
    return std::move(ctx.out);
}

void add_rule_msg(Batch& b, const char* table, const RuleDef& r, size_t index) {
    std::unique_ptr<nftnl_rule, RuleDel> rl(nftnl_rule_alloc());
    if (!rl) throw std::bad_alloc();
    nftnl_rule_set_str(rl.get(), NFTNL_RULE_TABLE, table);
    nftnl_rule_set_str(rl.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
    nftnl_rule_set_u32(rl.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    for (auto& e : r.exprs) nftnl_rule_add_expr(rl.get(), e.make());  // the rule owns them
    std::vector<std::pair<uint32_t, std::string>> parts;
    b.add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
          fmt::format("rule {}#{}: {}", r.chain, index, r.text), [&](nlmsghdr* nlh) {
              nftnl_rule_nlmsg_build_payload(nlh, rl.get());
              parts = expr_offsets(nlh, r);
          });
    b.label_last(std::move(parts));
}

std::unique_ptr<nftnl_set, SetDel> make_set_ref(const char* table, const std::string& name, uint32_t id) {
    std::unique_ptr<nftnl_set, SetDel> s(nftnl_set_alloc());
    if (!s) throw std::bad_alloc();
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
    if (id) nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    return s;
}

void add_elem(nftnl_set* s, const std::vector<uint8_t>& key, bool end, std::optional<uint64_t> timeout_ms) {
    nftnl_set_elem* e = nftnl_set_elem_alloc();
    if (!e) throw std::bad_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), static_cast<uint32_t>(key.size()));
    if (end) nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    if (timeout_ms) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, *timeout_ms);
    nftnl_set_elem_add(s, e);  // the set owns it
}

// The text of element i, for error messages; called for the first element
// of each message only, so a million-element restore formats ~4000 of them.
using TextOf = std::function<std::string(size_t)>;
TextOf texts_of(const std::vector<std::string>& t) {
    return [&t](size_t i) { return i < t.size() ? t[i] : std::string("?"); };
}

// NEWSETELEM / DELSETELEM messages for `elems`, kElemsPerMsg intervals each
// (an interval's start and end stay in one message).
void add_elem_msgs(Batch& b, uint16_t msg, const char* table, const std::string& set, uint32_t set_id,
                   const std::vector<Interval>& elems, const TextOf& text_of, size_t per_msg) {
    for (size_t i = 0; i < elems.size(); i += per_msg) {
        auto s = make_set_ref(table, set, set_id);
        size_t n = std::min(per_msg, elems.size() - i);
        for (size_t k = i; k < i + n; ++k) {
            add_elem(s.get(), elems[k].start, false, elems[k].timeout_ms);
            if (elems[k].end) add_elem(s.get(), *elems[k].end, true, std::nullopt);
        }
        std::string what = n == 1 ? text_of(i) : fmt::format("{} elements from {}", n, text_of(i));
        b.add(msg, msg == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
              fmt::format("{} @{} {{ {} }}", msg == NFT_MSG_NEWSETELEM ? "add element" : "delete element", set, what),
              [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); });
    }
}

// Bans split into banned / banned6 intervals (timeouts in ms), each beside
// the ban it came from (for its text).
struct SplitBans {
    std::vector<Interval> iv[2];
    std::vector<BanElement> src[2];

    TextOf text_of(int k) const {
        return [this, k](size_t i) {
            const BanElement& b = src[k][i];
            return cidr_text(b.prefix) + (b.timeout ? fmt::format(" timeout {}s", b.timeout->count()) : "");
        };
    }
};

SplitBans split_bans(const std::vector<BanElement>& bans) {
    SplitBans out;
    auto kept = drop_covered(bans);
    for (auto& b : kept) {
        std::optional<uint64_t> ms;
        if (b.timeout) {
            // The kernel reads a zero timeout as "the set default" (none here),
            // i.e. permanent. A zero/negative remaining time (a ban restored just
            // as it expires) becomes one second instead.
            ms = b.timeout->count() > 0 ? static_cast<uint64_t>(b.timeout->count()) * 1000 : 1000;
        }
        int k = b.prefix.addr.family == AF_INET6 ? 1 : 0;
        if (out.iv[k].empty()) {
            out.iv[k].reserve(kept.size());
            out.src[k].reserve(kept.size());
        }
        out.iv[k].push_back(interval_of(b.prefix, ms));
        out.src[k].push_back(b);
    }
    return out;
}


void del_ban_msgs(Batch& b, const std::vector<net::Cidr>& prefixes, const BanSets& sets) {
    // One message per prefix: del_bans() maps an ENOENT back to its prefix by seq.
    for (auto& p : prefixes) {
        bool v6 = p.addr.family == AF_INET6;
        const std::vector<std::string> text{cidr_text(p)};
        add_elem_msgs(b, NFT_MSG_DELSETELEM, kTable, v6 ? sets.v6 : sets.v4, 0, {interval_of(p)}, texts_of(text), 1);
    }
}

void add_ban_msgs(Batch& b, const std::vector<BanElement>& bans, const BanSets& sets) {
    const SplitBans sb = split_bans(bans);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, sets.v4, 0, sb.iv[0], sb.text_of(0), kElemsPerMsg);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, sets.v6, 0, sb.iv[1], sb.text_of(1), kElemsPerMsg);
}

}  // namespace

Batch build_apply(const RulesetSpec& spec, const std::vector<BanElement>& bans, uint32_t first_seq, bool commit,
                  const std::vector<BanElement>& fleet) {
    RulesetDef d = describe(spec);
    Batch b(first_seq);
    b.begin();
    // The replace idiom (nft: `table t; delete table t; table t {...}`): the
    // first add makes the delete valid whether or not the table existed, and
    // the whole swap is one transaction, so there is no moment without bans.
    add_table_msg(b, NFT_MSG_NEWTABLE, kTable, NLM_F_CREATE);
    add_table_msg(b, NFT_MSG_DELTABLE, kTable, 0);
    add_table_msg(b, NFT_MSG_NEWTABLE, kTable, NLM_F_CREATE);
    for (auto& s : d.sets) {
        std::unique_ptr<nftnl_set, SetDel> st = make_set_ref(kTable, s.name, s.id);
        nftnl_set_set_u32(st.get(), NFTNL_SET_KEY_TYPE, s.key_type);
        nftnl_set_set_u32(st.get(), NFTNL_SET_KEY_LEN, s.key_len);
        nftnl_set_set_u32(st.get(), NFTNL_SET_FLAGS, s.flags);
        // Explicit size: without one a set is capped at 65535 elements (when
        // filled from the packet path) or sized by the kernel's backend default.
        nftnl_set_set_u32(st.get(), NFTNL_SET_DESC_SIZE, s.size);
        b.add(NFT_MSG_NEWSET, NLM_F_CREATE, "set " + s.name,
              [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, st.get()); });
    }
    for (auto& s : d.sets)
        add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, s.name, s.id, s.elems, texts_of(s.elem_text), kElemsPerMsg);
    const SplitBans sb = split_bans(bans);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "banned", 1, sb.iv[0], sb.text_of(0), kElemsPerMsg);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "banned6", 2, sb.iv[1], sb.text_of(1), kElemsPerMsg);
    const SplitBans fb = split_bans(fleet);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "fleet", set_named(d.sets, "fleet").id, fb.iv[0], fb.text_of(0),
                  kElemsPerMsg);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "fleet6", set_named(d.sets, "fleet6").id, fb.iv[1], fb.text_of(1),
                  kElemsPerMsg);
    for (auto& c : d.chains) add_chain_msg(b, kTable, c);
    size_t idx = 0;
    std::string last_chain;
    for (auto& r : d.rules) {
        idx = r.chain == last_chain ? idx + 1 : 1;
        last_chain = r.chain;
        add_rule_msg(b, kTable, r, idx);
    }
    if (commit) b.end();
    return b;
}

Batch build_probe(Backend be, const std::string& table, uint32_t first_seq) {
    Batch b(first_seq);
    b.begin();
    add_table_msg(b, NFT_MSG_NEWTABLE, table.c_str(), NLM_F_CREATE | NLM_F_EXCL);
    // Same hook and priority as the real input chain: nft_compat validates a
    // target against the hooks it is reachable from.
    add_chain_msg(b, table.c_str(), ChainDef{"input", NF_INET_LOCAL_IN, -150, "input", "-150"});
    add_rule_msg(b, table.c_str(), steer_rule(be, IPPROTO_TCP, 0, 5, true), 1);
    return b;  // no end(): validated by the kernel, then aborted
}

Batch build_add_bans(const std::vector<BanElement>& bans, uint32_t first_seq, const BanSets& sets) {
    Batch b(first_seq);
    b.begin();
    add_ban_msgs(b, bans, sets);
    b.end();
    return b;
}

Batch build_set_never(const std::vector<net::Cidr>& prefixes, uint32_t first_seq) {
    Batch b(first_seq);
    b.begin();
    // DELSETELEM naming a set and no elements flushes it (what `nft flush set` sends).
    for (const char* name : {"never", "never6"}) {
        auto s = make_set_ref(kTable, name, 0);
        b.add(NFT_MSG_DELSETELEM, 0, fmt::format("flush set {}", name),
              [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); });
    }
    std::vector<BanElement> els;
    for (const auto& c : prefixes) els.push_back({c, std::nullopt});
    std::vector<Interval> iv[2];
    std::vector<std::string> tx[2];
    for (const auto& e : drop_covered(std::move(els))) {
        const int k = e.prefix.addr.family == AF_INET6 ? 1 : 0;
        iv[k].push_back(interval_of(e.prefix));
        tx[k].push_back(cidr_text(e.prefix));
    }
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "never", 0, iv[0], texts_of(tx[0]), kElemsPerMsg);
    add_elem_msgs(b, NFT_MSG_NEWSETELEM, kTable, "never6", 0, iv[1], texts_of(tx[1]), kElemsPerMsg);
    b.end();
    return b;
}

Batch build_del_bans(const std::vector<net::Cidr>& prefixes, uint32_t first_seq, const BanSets& sets) {
    Batch b(first_seq);
    b.begin();
    del_ban_msgs(b, prefixes, sets);
    b.end();
    return b;
}

size_t rule_count(const RulesetSpec& spec) { return describe(spec).rules.size(); }

Batch build_replace_bans(const std::vector<net::Cidr>& del, const std::vector<BanElement>& add, uint32_t first_seq,
                         const BanSets& sets) {
    Batch b(first_seq);
    b.begin();
    del_ban_msgs(b, del, sets);
    add_ban_msgs(b, add, sets);
    b.end();
    return b;
}

Batch build_remove_table(uint32_t first_seq) {
    Batch b(first_seq);
    b.begin();
    add_table_msg(b, NFT_MSG_NEWTABLE, kTable, NLM_F_CREATE);
    add_table_msg(b, NFT_MSG_DELTABLE, kTable, 0);
    b.end();
    return b;
}

}  // namespace portsentry::kernel::detail
