// nftables through libnftnl + libmnl: builds `table inet portsentry` in one
// atomic batch, probes steering backends, and adds/removes ban set elements.
// Only this table is ever touched.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::kernel {

inline constexpr const char* kTable = "portsentry";  // family inet

enum class Backend : uint8_t { queue, xt_queue, nflog };
const char* to_string(Backend b);  // "queue","xt-queue","nflog"
std::optional<Backend> backend_from_string(std::string_view s);

// The backend to use: `steer` forced (returned even when not in `available`:
// apply() then reports the kernel's refusal), or for auto the first of
// queue → xt-queue → nflog that the kernel accepts. nullopt: nothing usable.
std::optional<Backend> pick_backend(config::Steer steer, const std::vector<Backend>& available);

// Everything the ruleset depends on, derived from the config.
struct RulesetSpec {
    std::vector<config::PortRange> tcp_ports;  // watched (sorted, merged); empty = no TCP rule
    std::vector<config::PortRange> udp_ports;
    Backend backend = Backend::queue;
    uint16_t queue_num = 0;
    uint16_t nflog_group = 5;
    bool nflog_drop = true;            // nflog backend: rule drops (block != 0 and not dry-run)
    // Set when UDP's drop decision differs from TCP's (then `nflog_drop` is TCP's
    // and each protocol gets its own nflog rule); nullopt = `nflog_drop` for both.
    std::optional<bool> nflog_drop_udp;
    uint32_t set_size = 65536;         // banned / banned6 / never sets
    uint32_t fleet_set_size = 65536;   // fleet / fleet6 (crowdsec.fleet_set_size)
    std::vector<net::Cidr> ignore;     // -> ignore / ignore6 sets
    std::vector<net::Cidr> never;      // -> never / never6 sets (protected addresses)

    static RulesetSpec from_config(const config::Config& c, Backend b);
};

// The ruleset as nft text (what --print-ruleset prints; `nft -f` loads it on a
// kernel with the chosen backend).
std::string render_ruleset(const RulesetSpec& spec);

// A kernel refusal, located: which object of the batch failed and why.
class NftError : public std::runtime_error {
public:
    NftError(int err, std::string object, const std::string& what)
        : std::runtime_error(what), err_(err), object_(std::move(object)) {}
    int error() const { return err_; }                    // errno value (ENOENT, ...)
    const std::string& object() const { return object_; }  // e.g. "set banned", "rule input#9"

private:
    int err_;
    std::string object_;
};

struct BanElement {
    net::Cidr prefix;                                 // host or prefix (banned6 holds /64s)
    std::optional<std::chrono::seconds> timeout;      // nullopt = permanent
};

// One IPv4 + IPv6 pair of ban sets in table inet portsentry: today
// banned/banned6 (detector, admin, fail2ban); the fleet adds its own pair.
struct BanSets {
    const char* v4;
    const char* v6;
};
inline constexpr BanSets kBannedSets{"banned", "banned6"};
// Decisions pulled from CrowdSec's LAPI (daemon/fleet.cpp), dropped like bans.
inline constexpr BanSets kFleetSets{"fleet", "fleet6"};

// An element the kernel would not take (set full: ENFILE; overlaps an
// interval already there: EEXIST; no table: ENOENT), with the kernel's words.
struct BanRefusal {
    net::Cidr prefix;
    NftError error;
};

// What a ban manager needs of the kernel's ban sets: the Nft socket below,
// or a fake in unit tests.
class BanTable {
public:
    virtual ~BanTable() = default;
    // Adds in one batch; if the kernel refuses it, each element is tried
    // alone once so one bad element cannot keep the others out. Returns the
    // refused ones (empty: all in). Re-adding an element is not a refusal.
    virtual std::vector<BanRefusal> add_bans(const std::vector<BanElement>& bans, const BanSets& sets) = 0;
    // Missing elements are not an error; returns how many were there and went.
    virtual size_t del_bans(const std::vector<net::Cidr>& prefixes, const BanSets& sets) = 0;
    // Delete `del` and add `add` in one transaction (no moment where neither
    // is banned). Throws NftError on refusal.
    virtual void replace_bans(const std::vector<net::Cidr>& del, const std::vector<BanElement>& add,
                              const BanSets& sets) = 0;
};

// A persistent NETLINK_NETFILTER socket speaking nf_tables batches.
class Nft : public BanTable {
public:
    Nft();  // throws std::system_error
    ~Nft() override;
    Nft(const Nft&) = delete;
    Nft& operator=(const Nft&) = delete;

    // Which backends this kernel accepts, probed in a throwaway table
    // (created and deleted in the same call). Order: queue, xt-queue, nflog.
    std::vector<Backend> probe_backends();

    // Create or replace `table inet portsentry` in ONE batch: delete (if present)
    // + add table, sets, chains, rules, and the given bans. Throws
    // std::runtime_error with the kernel's errno text and the failing object.
    void apply(const RulesetSpec& spec, const std::vector<BanElement>& bans = {},
               const std::vector<BanElement>& fleet = {});
    // The same batch without its commit: the kernel validates everything
    // (modules, expressions, set sizes) and changes nothing (`--check`).
    void check(const RulesetSpec& spec);

    // BanTable. Re-adding an existing element is not an error; on kernels
    // >= 6.12 its timeout is refreshed to the new value, on older ones it
    // keeps the old one. Deletions go in kDelSlice slices. replace_bans()
    // falls back to del + add if an element of `del` is already gone (a
    // host ban that timed out in the kernel).
    std::vector<BanRefusal> add_bans(const std::vector<BanElement>& bans, const BanSets& sets = kBannedSets) override;
    size_t del_bans(const std::vector<net::Cidr>& prefixes, const BanSets& sets = kBannedSets) override;
    static constexpr size_t kDelSlice = 512;
    void replace_bans(const std::vector<net::Cidr>& del, const std::vector<BanElement>& add,
                      const BanSets& sets = kBannedSets) override;
    // Replace the never/never6 sets' contents with `prefixes` in one batch
    // (flush + add), for live protection updates. Throws on failure.
    void set_never(const std::vector<net::Cidr>& prefixes);
    bool table_exists();
    // The table exists with every rule the last apply() created: false after
    // `nft flush table`, a deleted chain or rule (sets cannot go while rules
    // use them). Just table_exists() before any apply().
    bool ruleset_intact();
    size_t rule_count();  // rules in table inet portsentry (0 when absent)
    uint32_t portid() const;  // this socket's netlink portid (NftMonitor)
    void remove_table();  // --remove-ruleset; no error if absent

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace portsentry::kernel
