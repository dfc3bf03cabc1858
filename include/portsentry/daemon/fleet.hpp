// The fleet on CrowdSec's Local API, the loop's side (docs/ARCHITECTURE.md,
// "Fleet"): detector bans go out as alerts (FleetClient), and the decisions
// stream comes in to the sets fleet/fleet6 of table inet portsentry.
// Rules for what comes in, each decided here:
//  - only `type: ban` with scope Ip or Range; anything else is counted and skipped;
//  - a decision inside or over a protected or ignored address is refused
//    whole (engine::refuse_ban, the rule every admin ban follows);
//  - an address this host banned itself (its own push) is skipped;
//  - fleet entries are their own table (<state>.fleet, journaled like the
//    ban table) and their own sets: they never escalate, aggregate, evict
//    or extend a local ban; a full fleet set is counted and logged;
//  - ranges stay ranges and overlapping decisions coexist: the kernel set
//    (an interval set refuses overlaps) holds the widest active prefixes,
//    and when a wide one goes the narrower ones inside it are put back in
//    the same transaction;
//  - a resync (startup=true) replaces the content exactly; deletions are
//    idempotent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "portsentry/base/metric.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/fleet_client.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_saver.hpp"
#include "portsentry/engine/protection.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::daemon {

class Fleet {
public:
    using LogFn = std::function<void(const std::string&)>;
    // `kernel` null: no table (tests, --no-ruleset). `local`: the ban table,
    // to tell this host's own bans.
    Fleet(Loop& loop, kernel::BanTable* kernel, const BanStore& local, LogFn log, const std::string& state_file);
    ~Fleet();

    // <state>.fleet: before the ruleset is applied, whose batch takes elements().
    void load(int64_t now);
    std::vector<kernel::BanElement> elements(int64_t now) const;
    void applied(int64_t now);  // the table was (re)built with elements()
    // How a big batch is sent (RulesetKeeper::quietly): resyncs of thousands.
    using QuietFn = std::function<void(const std::function<void()>&)>;
    void set_quiet(QuietFn q) { quiet_ = std::move(q); }
    static constexpr size_t kQuietBatch = 1000;
    // Starts or restarts the client when the crowdsec section asks for one
    // (secrets read here; a refused one is an error). Also on SIGHUP.
    void configure(const config::Config& cfg, const engine::Protection* protection);

    // This host's ban table changed. `proven`: handshake-proven (classic TCP).
    void detected(const BanRecord& r, bool proven, int64_t now);
    void unbanned(const net::Cidr& c);  // an admin lifted this host's ban
    void apply(FleetUpdate u, const Now& now);
    void tick(const Now& now);
    void save_now() { saver_.save_now(); }

    // `why ADDR` / `unban ADDR` lines; nullopt: no fleet entry covers it.
    std::optional<std::string> why(const net::IpAddr& a, int64_t now) const;
    const BanStore& store() const { return store_; }
    // The client's figures: kept here, so they stay valid (and keep counting)
    // across the clients a SIGHUP starts and stops.
    const FleetClient::Counters& client_counters() const { return client_counters_; }

    static constexpr const char* kSkipReasons[] = {"type", "scope", "invalid", "protected", "own", "full"};
    struct Counters {
        base::Counter pulled;                                // decisions applied
        base::Counter skipped[std::size(kSkipReasons)];      // by kSkipReasons
        base::Counter kernel_errors;
        base::Gauge resync_seconds;                          // the last resync: response end -> kernel commit
    };
    const Counters& counters() const { return counters_; }

private:
    enum Skip : size_t { type, scope, invalid, protected_, own, full };
    std::optional<Skip> refuse(const FleetDecision& d, net::Cidr& out, int64_t now) const;
    void put(const net::Cidr& c, const FleetDecision& d, int64_t now);
    void touch(const net::Cidr& p);
    void inst_set(const net::Cidr& p, int64_t end);
    void inst_erase(const net::Cidr& p);
    void cover(const net::Cidr& p, int64_t now);
    void uncover(const net::Cidr& p, int64_t now);
    double commit(int64_t now);     // the kernel's ms
    double send(const std::vector<net::Cidr>& del, const std::vector<kernel::BanElement>& add);
    double reconcile(int64_t now);  // the kernel's ms
    std::vector<std::pair<net::Cidr, int64_t>> widest(int64_t now) const;  // sorted, with ends
    void install(const std::vector<std::pair<net::Cidr, int64_t>>& widest);

    Loop& loop_;
    kernel::BanTable* kernel_;
    const BanStore& local_;
    LogFn log_;
    BanStore store_;
    StateSaver saver_;
    const engine::Protection* protection_ = nullptr;
    std::vector<net::Cidr> ignore_;
    config::Config::Crowdsec settings_;
    int64_t ban_time_max_ = 30 * 86400;
    std::string queue_path_;
    FleetClient::Counters client_counters_;
    std::unique_ptr<FleetClient> client_;
    QuietFn quiet_;
    // What the kernel sets hold: the widest active prefixes, with their end.
    std::map<net::Cidr, int64_t, CidrLess> installed_;
    struct EndLess {
        bool operator()(const std::pair<int64_t, net::Cidr>& a, const std::pair<int64_t, net::Cidr>& b) const {
            return a.first != b.first ? a.first < b.first : CidrLess{}(a.second, b.second);
        }
    };
    std::set<std::pair<int64_t, net::Cidr>, EndLess> ends_;  // installed_ by end (0: permanent first, skipped)
    std::map<net::Cidr, std::optional<int64_t>, CidrLess> touched_;  // this change's prefixes, as they were
    int64_t full_logged_ = 0;
    std::optional<std::chrono::steady_clock::time_point> resync_logged_;
    Counters counters_;
};

}  // namespace portsentry::daemon
