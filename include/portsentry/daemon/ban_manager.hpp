// The one path every ban takes — detector, admin (daemon or offline CLI),
// fail2ban, and the fleet next — into the ban table (BanStore) and the
// kernel's sets (kernel::BanTable). Its rules, each decided here once:
//  - escalation: a repeat offender's detector ban lasts BanPolicy::duration
//    of its offence count (the table remembers ended bans);
//  - replace-narrower: a prefix ban replaces the bans inside it in one
//    transaction (an interval set refuses overlaps);
//  - full-set eviction: a set that is full evicts its oldest ban (detector
//    bans first), logged and counted, never a silent refusal;
//  - /64 aggregation: ipv6_aggregate_after banned hosts of one /64 become a
//    /64 ban, never over a protected or ignored address;
//  - refusal: a ban inside or over a protected address is refused, with why.
// What the rest of the daemon must hear (the engine's "already blocked"
// memory, JSON events, log lines, "save the table") goes to a BanListener.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <iterator>
#include <vector>

#include "portsentry/base/metric.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/engine/policy.hpp"
#include "portsentry/engine/protection.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::daemon {

class BanListener {
public:
    virtual ~BanListener() = default;
    // `a` counts as blocked for `left` more seconds (nullopt: permanently).
    virtual void blocked(const net::IpAddr& a, std::optional<std::chrono::seconds> left) { (void)a, (void)left; }
    // `a` must be counted afresh: its ban went early (unban, eviction).
    virtual void forgotten(const net::IpAddr& a) { (void)a; }
    virtual void event(const char* name, nlohmann::ordered_json fields) { (void)name, (void)fields; }
    virtual void note(const std::string& line) { (void)line; }  // a log line
    // A detector ban is in the table (a host, or a /64 aggregation);
    // `proven`: its source completed a handshake (classic TCP tripwire).
    virtual void detected(const BanRecord& r, bool proven, int64_t now) { (void)r, (void)proven, (void)now; }
    // The table changed; `soon`: someone waits for it on disk (admin, fail2ban).
    virtual void changed(bool soon) { (void)soon; }
};

struct BanSettings {
    engine::BanPolicy policy;
    uint32_t set_size = 65536;            // per set (ban_set_size)
    std::vector<net::Cidr> ignore;        // ignore-list prefixes
};

class BanManager {
public:
    // `kernel` null: no table loaded (offline with the daemon down and no
    // ruleset): the table is edited and the next start installs it.
    BanManager(BanStore& store, kernel::BanTable* kernel, BanListener& listener, BanSettings settings,
               const engine::Protection* protection, kernel::BanSets sets = kernel::kBannedSets);

    void reconfigure(BanSettings s) { settings_ = std::move(s); }
    void set_protection(const engine::Protection* p) { protection_ = p; }

    // Detector bans for one batch of probes (one kernel batch).
    struct Detection {
        net::IpAddr src;
        std::chrono::seconds base{0};  // the engine's ban_time; 0 = permanent
        uint16_t port = 0;
        std::string proto;             // "TCP" / "UDP"
        std::string type;              // scan name
        bool proven = false;           // a completed handshake (classic TCP tripwire)
    };
    struct Installed {
        std::chrono::seconds time{0};  // after escalation; 0 = permanent
        std::string error;             // "" = in the set and recorded
    };
    std::vector<Installed> ban_detected(const std::vector<Detection>& d, int64_t now);
    // After the responses: fold banned IPv6 hosts into their /64 where due.
    void aggregate(const std::vector<net::IpAddr>& v6_hosts, int64_t now);

    struct BanResult {
        std::string error;                  // "" = banned
        std::chrono::seconds time{0};       // 0 = permanent
    };
    // `ban C` (admin, fail2ban): refusal, replace-narrower, eviction; no escalation.
    BanResult ban(const net::Cidr& c, const std::string& origin, std::optional<std::chrono::seconds> time,
                  int64_t now);
    struct UnbanResult {
        std::string error;             // "" = done
        std::vector<net::Cidr> lifted; // active bans lifted (c's own and every one inside)
    };
    // `unban C`: kernel first (if it refuses, the table still tells the truth).
    UnbanResult unban(const net::Cidr& c, int64_t now);
    // Elements someone deleted with nft: their decision stands, as an unban.
    void forget_foreign(const std::vector<net::IpAddr>& starts, int64_t now);
    // More active bans than a set holds (ban_set_size lowered, offline bans):
    // the oldest are evicted as a full set would.
    void trim(int64_t now);
    // Ended bans are remembered for ban_time_max (escalation), at most as
    // many as a set holds.
    void forget_history(int64_t now);
    // Re-tells the listener every active host ban (start, after a restore).
    void replay_blocked(int64_t now);

    std::vector<kernel::BanElement> active_elements(int64_t now) const;
    size_t active_count(int64_t now) const;
    // The length of the next detector ban of `prefix` from `base` (escalated).
    std::chrono::seconds next_ban_time(const net::Cidr& prefix, std::chrono::seconds base) const;
    const BanSettings& settings() const { return settings_; }
    const kernel::BanSets& sets() const { return sets_; }
    const BanRecord* record(const net::Cidr& prefix) const { return store_.find(prefix); }

    // portsentry_bans_total{origin}: the origins a ban can name. `--origin`
    // takes any word; words outside this list count as "other", so a
    // caller cannot grow the label set.
    static constexpr const char* kOrigins[] = {"detector", "admin", "fail2ban", "other"};
    static size_t origin_slot(std::string_view origin);
    struct Counters {
        base::Counter bans_by_origin[std::size(kOrigins)];  // bans added, by kOrigins
        uint64_t bans() const {  // every origin
            uint64_t n = 0;
            for (const auto& c : bans_by_origin) n += c.value();
            return n;
        }
        base::Counter ban_errors;    // bans the kernel refused
        base::Counter evictions;     // bans evicted from a full set
        base::Counter aggregations;  // /64s banned in place of their hosts
        base::Counter unbans;        // bans lifted by unban
        base::Counter foreign_unbans;  // bans deleted with nft by someone else
    };
    const Counters& counters() const { return counters_; }

    // A full set evicts one ban per try; a few tries cover elements that are
    // in the set but not in our table (added by hand with nft).
    static constexpr int kMaxEvictTries = 4;

private:
    std::map<net::Cidr, std::string, CidrLess> install(const std::vector<kernel::BanElement>& bans, int64_t now);
    bool evict_oldest(uint8_t family, int64_t now, const std::vector<net::Cidr>& spare);
    void forget_hosts(const std::vector<net::Cidr>& prefixes);
    std::vector<net::Cidr> erase_within(const net::Cidr& c, int64_t now);
    void aggregate_one(const net::IpAddr& host, int64_t now);

    BanStore& store_;
    kernel::BanTable* kernel_;
    BanListener& listener_;
    BanSettings settings_;
    const engine::Protection* protection_;
    kernel::BanSets sets_;
    Counters counters_;
};

// The set elements `unban C` deletes: the bans it lifts, and C itself (the
// kernel may hold C without the table knowing: added by hand with nft).
std::vector<net::Cidr> unban_elements(const std::vector<net::Cidr>& lifted, const net::Cidr& c);

}  // namespace portsentry::daemon
