// Internal to src/kernel: the ruleset as data (sets, chains, rules — each rule
// carrying both its nft text and its libnftnl expressions, so --print-ruleset
// and apply() cannot drift apart) and the nf_tables batch builders. Builders
// only fill byte buffers (no socket): tests parse them back without root.
#pragma once

#include <cstdio>  // libnftnl/expr.h uses FILE
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "portsentry/kernel/nft.hpp"

struct nlmsghdr;

namespace portsentry::kernel::detail {

// Owners of libnftnl objects, for the builders, the Nft queries and the monitor.
struct ExprDel { void operator()(nftnl_expr* e) const { nftnl_expr_free(e); } };
struct RuleDel { void operator()(nftnl_rule* r) const { nftnl_rule_free(r); } };
struct SetDel { void operator()(nftnl_set* s) const { nftnl_set_free(s); } };
struct ChainDel { void operator()(nftnl_chain* c) const { nftnl_chain_free(c); } };
struct TableDel { void operator()(nftnl_table* t) const { nftnl_table_free(t); } };
using ExprPtr = std::unique_ptr<nftnl_expr, ExprDel>;

// ---- ruleset as data -------------------------------------------------------

// One interval element: nft's encoding for interval sets is a start key and an
// "interval end" key one past the last covered value; `end` is empty when the
// range runs to the top of the key space (255.255.255.255, port 65535).
struct Interval {
    std::vector<uint8_t> start;                 // network byte order
    std::optional<std::vector<uint8_t>> end;    // start of the first value NOT covered
    std::optional<uint64_t> timeout_ms;         // on the start element only (as nft does)
};

struct SetDef {
    std::string name;
    uint32_t id = 0;          // batch-local NFTA_SET_ID, referenced by lookups
    uint32_t key_type = 0;    // nft datatype id (7 ipv4_addr, 8 ipv6_addr, 13 inet_service)
    uint32_t key_len = 0;
    uint32_t flags = 0;       // NFT_SET_INTERVAL | NFT_SET_TIMEOUT
    uint32_t size = 0;
    std::string type_text;    // "ipv4_addr"
    std::string comment;      // rendered above the set
    std::vector<Interval> elems;
    std::vector<std::string> elem_text;  // same elements as nft text ("192.0.2.0/24", "1-21")
};

struct ChainDef {
    std::string name;
    uint32_t hooknum = 0;
    int32_t prio = 0;
    std::string hook_text;  // "prerouting"
    std::string prio_text;  // "raw", "-150"
};

using ExprFactory = std::function<nftnl_expr*()>;
struct ExprDef {
    std::string label;  // names the expression in error messages ("queue", "xt NFQUEUE")
    ExprFactory make;
};

struct RuleDef {
    std::string chain;
    std::string text;     // nft statement text
    std::string comment;  // rendered as a comment line above the rule ("" = none)
    std::vector<ExprDef> exprs;
};

struct RulesetDef {
    std::vector<SetDef> sets;
    std::vector<ChainDef> chains;
    std::vector<RuleDef> rules;
};

RulesetDef describe(const RulesetSpec& spec);

// The steering statement for a backend (expressions + text); `l4proto` is
// IPPROTO_TCP or IPPROTO_UDP; `drop` only matters for nflog.
RuleDef steer_rule(Backend b, uint8_t l4proto, uint16_t queue_num, uint16_t nflog_group, bool drop);

// Throws std::invalid_argument for a family other than IPv4/IPv6 or a prefix
// longer than the address.
Interval interval_of(const net::Cidr& c, std::optional<uint64_t> timeout_ms = std::nullopt);
Interval interval_of(const config::PortRange& r);
std::string cidr_text(const net::Cidr& c);  // "192.0.2.0/24", bare address for a host
std::string port_text(const config::PortRange& r);

// CIDR prefixes either nest or are disjoint: keep only prefixes no other one
// covers, since interval sets reject overlapping elements.
std::vector<BanElement> drop_covered(std::vector<BanElement> v);

// ---- batches ---------------------------------------------------------------

// One message of a batch, kept so that a kernel error (which names only a
// sequence number and, with extended ACK, an attribute offset) can be mapped
// back to the object and expression that caused it.
struct BatchMsg {
    uint32_t seq = 0;
    uint16_t type = 0;   // NFT_MSG_*, or NFNL_MSG_BATCH_BEGIN/END
    bool acked = false;  // NLM_F_ACK set: exactly one reply will come
    std::string object;  // "set banned", "rule input#7: meta l4proto tcp queue num 0 bypass"
    std::vector<std::pair<uint32_t, std::string>> parts;  // attr offset in message -> label
};

class Batch {
public:
    explicit Batch(uint32_t first_seq);

    void begin();
    // Without end() the kernel validates every message and then aborts the
    // transaction (what `nft -c` does): nothing is changed.
    void end();

    // Appends one nf_tables message (family inet, NLM_F_ACK added) whose
    // payload `fill` writes; returns its sequence number.
    uint32_t add(uint16_t nft_msg, uint16_t flags, std::string object,
                 const std::function<void(nlmsghdr*)>& fill);
    // Labels attribute offsets of the last message (after add()).
    void label_last(std::vector<std::pair<uint32_t, std::string>> parts);

    const std::vector<uint8_t>& bytes() const { return buf_; }
    const std::vector<BatchMsg>& msgs() const { return msgs_; }
    const BatchMsg* find(uint32_t seq) const;
    uint32_t next_seq() const { return seq_; }
    uint32_t begin_seq() const { return begin_seq_; }
    bool committed() const { return committed_; }
    size_t acked_count() const;

private:
    std::vector<uint8_t> buf_;
    std::vector<BatchMsg> msgs_;
    uint32_t seq_;
    uint32_t begin_seq_ = 0;
    bool committed_ = false;
};

// Elements per NEWSETELEM message: the element list is one netlink nest whose
// length field is 16 bits, so a message must stay below 64 KiB; 256 elements of
// at most ~100 bytes (IPv6 start + end + timeout) keep well below it.
inline constexpr size_t kElemsPerMsg = 256;
// Smallest size of @never/@never6, whatever ban_set_size says.
inline constexpr uint32_t kNeverSetSize = 65536;

// Replace `table inet portsentry` (add; delete; add) with sets, elements,
// chains and rules; `bans` into banned/banned6, `fleet` into fleet/fleet6.
// `commit` false: validation only.
Batch build_apply(const RulesetSpec& spec, const std::vector<BanElement>& bans,
                  uint32_t first_seq, bool commit, const std::vector<BanElement>& fleet = {});
// A throwaway table with one base chain and one steering rule, never committed.
Batch build_probe(Backend b, const std::string& table, uint32_t first_seq);
Batch build_add_bans(const std::vector<BanElement>& bans, uint32_t first_seq, const BanSets& sets = kBannedSets);
// Replace the contents of never/never6 in one transaction: flush both sets,
// then add `prefixes` (covered prefixes dropped: interval sets reject
// overlaps). Packets never see a half-filled set.
Batch build_set_never(const std::vector<net::Cidr>& prefixes, uint32_t first_seq);
// One message per prefix, so that an absent element's ENOENT can be told
// apart and the batch resent without it.
Batch build_del_bans(const std::vector<net::Cidr>& prefixes, uint32_t first_seq, const BanSets& sets = kBannedSets);
// How many rules build_apply() creates for `spec`.
size_t rule_count(const RulesetSpec& spec);
// Deletes `del`, then adds `add`, in one transaction.
Batch build_replace_bans(const std::vector<net::Cidr>& del, const std::vector<BanElement>& add, uint32_t first_seq,
                         const BanSets& sets = kBannedSets);
// add + delete: no error whether or not the table exists.
Batch build_remove_table(uint32_t first_seq);

}  // namespace portsentry::kernel::detail
