// BanManager: every ban rule at its boundary, against an interval-set model
// of the kernel's ban sets (fake_ban_table.hpp), and the equivalence of the
// daemon's and the offline CLI's command paths.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

#include "fake_ban_table.hpp"
#include "daemon_test_util.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/views.hpp"

namespace fs = std::filesystem;
using namespace portsentry;
using namespace std::chrono_literals;
using daemon::BanManager;
using daemon::BanStore;
using portsentry::testing::FakeBanTable;

using pstest::TempDir;
using pstest::cidr;
using pstest::ip;

namespace {


struct Recorder final : daemon::BanListener {
    struct Blocked {
        std::string addr;
        std::optional<std::chrono::seconds> left;
    };
    std::vector<Blocked> blocked_;
    std::vector<std::string> forgotten_;
    std::vector<std::pair<std::string, nlohmann::ordered_json>> events;
    std::vector<std::string> notes;
    std::vector<bool> changes;

    void blocked(const net::IpAddr& a, std::optional<std::chrono::seconds> left) override {
        blocked_.push_back({a.to_string(), left});
    }
    void forgotten(const net::IpAddr& a) override { forgotten_.push_back(a.to_string()); }
    void event(const char* name, nlohmann::ordered_json fields) override { events.emplace_back(name, std::move(fields)); }
    void note(const std::string& line) override { notes.push_back(line); }
    void changed(bool soon) override { changes.push_back(soon); }

    size_t count_events(const std::string& name) const {
        return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.first == name; }));
    }
    bool forgot(const std::string& a) const {
        return std::find(forgotten_.begin(), forgotten_.end(), a) != forgotten_.end();
    }
    bool any_note(const std::string& part) const {
        return std::any_of(notes.begin(), notes.end(), [&](const auto& n) { return n.find(part) != std::string::npos; });
    }
};

daemon::BanSettings settings(uint32_t set_size = 65536) {
    daemon::BanSettings s;
    s.policy.base = 100s;
    s.policy.factor = 4;
    s.policy.max = 1000s;
    s.policy.aggregate_after = 3;
    s.set_size = set_size;
    return s;
}

BanManager::Detection det(const char* a, std::chrono::seconds base = 100s) {
    return {ip(a), base, 22, "TCP", "TCP SYN/Normal scan"};
}

// One BanManager over a store, a fake kernel and a recorder.
struct Rig {
    BanStore store{"/nonexistent/state"};
    FakeBanTable nft;
    Recorder heard;
    engine::Protection protection;
    std::unique_ptr<BanManager> bans;
    explicit Rig(daemon::BanSettings s = settings(), size_t capacity = 65536, bool kernel = true)
        : nft(capacity), bans(std::make_unique<BanManager>(store, kernel ? &nft : nullptr, heard, std::move(s),
                                                          &protection)) {}
    BanManager* operator->() { return bans.get(); }
    std::vector<std::string> v4() const { return nft.prefixes("banned"); }
    std::vector<std::string> v6() const { return nft.prefixes("banned6"); }
};

using Strings = std::vector<std::string>;

}  // namespace

// ---- escalation ----------------------------------------------------------------

TEST(BanManagerEscalation, FirstBaseThenTimesFactorCappedAtMax) {
    Rig r;
    // 1st: base (100), 2nd: ×4 (400), 3rd: 1600 capped at max (1000), 4th: still 1000.
    const std::chrono::seconds expected[] = {100s, 400s, 1000s, 1000s};
    int64_t now = 1000;
    for (size_t i = 0; i < 4; ++i) {
        auto out = r->ban_detected({det("192.0.2.1")}, now);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].error, "");
        EXPECT_EQ(out[0].time, expected[i]) << "ban #" << i + 1;
        const auto* e = r.nft.element(cidr("192.0.2.1"));
        ASSERT_NE(e, nullptr);
        ASSERT_TRUE(e->timeout);
        EXPECT_EQ(*e->timeout, expected[i]);
        const auto* rec = r->record(cidr("192.0.2.1"));
        ASSERT_NE(rec, nullptr);
        EXPECT_EQ(rec->count, i + 1);
        EXPECT_EQ(rec->expires, now + expected[i].count());
        EXPECT_EQ(rec->origin, "detector");
        EXPECT_EQ(rec->last_port, 22);
        now = rec->expires + 1;  // this ban ended: the next detection is a repeat offence
    }
    EXPECT_EQ(r->counters().bans, 4u);
    // The engine asked for 100 s; the listener hears the escalated length
    // only when it differs (bans 2..4).
    ASSERT_EQ(r.heard.blocked_.size(), 3u);
    EXPECT_EQ(r.heard.blocked_[0].left, std::optional(400s));
    EXPECT_EQ(r.heard.blocked_[2].left, std::optional(1000s));
}

TEST(BanManagerEscalation, PermanentStaysPermanent) {
    Rig r;
    int64_t now = 1000;
    for (int i = 0; i < 3; ++i) {
        auto out = r->ban_detected({det("192.0.2.2", 0s)}, now + i);
        EXPECT_EQ(out[0].time, 0s);
        const auto* e = r.nft.element(cidr("192.0.2.2"));
        ASSERT_NE(e, nullptr);
        EXPECT_FALSE(e->timeout) << "a permanent ban has no kernel timeout";
        EXPECT_EQ(r->record(cidr("192.0.2.2"))->expires, 0);
    }
    EXPECT_TRUE(r.heard.blocked_.empty());
}

TEST(BanManagerEscalation, NextBanTimeReadsTheHistory) {
    Rig r;
    EXPECT_EQ(r->next_ban_time(cidr("192.0.2.3"), 100s), 100s);
    r->ban_detected({det("192.0.2.3")}, 1000);
    EXPECT_EQ(r->next_ban_time(cidr("192.0.2.3"), 100s), 400s);
    EXPECT_EQ(r->next_ban_time(cidr("192.0.2.3"), 0s), 0s);
}

// ---- replace-narrower ----------------------------------------------------------

TEST(BanManagerReplace, PrefixBanSupersedesTheHostsInside) {
    Rig r;
    r->ban_detected({det("192.0.2.5")}, 1000);
    r->ban_detected({det("198.51.100.5")}, 1000);  // outside: untouched
    r.nft.reset_counts();
    auto res = r->ban(cidr("192.0.2.0/24"), "admin", std::nullopt, 1010);
    EXPECT_EQ(res.error, "");
    EXPECT_EQ(res.time, 100s);
    // One transaction, not an add that the interval set would refuse.
    EXPECT_EQ(r.nft.replace_calls, 1u);
    EXPECT_EQ(r.nft.add_calls, 0u);
    EXPECT_EQ(r.v4(), (Strings{"192.0.2.0/24", "198.51.100.5"}));
    const auto* host = r->record(cidr("192.0.2.5"));
    ASSERT_NE(host, nullptr);
    EXPECT_FALSE(host->active(1010));
    EXPECT_EQ(host->ended, "192.0.2.0/24");
    const auto* net = r->record(cidr("192.0.2.0/24"));
    ASSERT_NE(net, nullptr);
    EXPECT_TRUE(net->active(1010));
    EXPECT_EQ(net->origin, "admin");
    EXPECT_TRUE(r->record(cidr("198.51.100.5"))->active(1010));
    EXPECT_EQ(r.heard.count_events("ban"), 1u);
    ASSERT_FALSE(r.heard.changes.empty());
    EXPECT_TRUE(r.heard.changes.back()) << "an admin ban is saved soon";
}

TEST(BanManagerReplace, KernelRefusalLeavesTheTableAlone) {
    Rig r;
    r->ban_detected({det("192.0.2.5")}, 1000);
    r.nft.fail_replace_errno = EMSGSIZE;
    auto res = r->ban(cidr("192.0.2.0/24"), "admin", std::nullopt, 1010);
    EXPECT_NE(res.error.find("cannot ban 192.0.2.0/24"), std::string::npos) << res.error;
    EXPECT_TRUE(r->record(cidr("192.0.2.5"))->active(1010));
    EXPECT_EQ(r->record(cidr("192.0.2.0/24")), nullptr);
    EXPECT_EQ(r->counters().ban_errors, 1u);
    EXPECT_EQ(r.v4(), (Strings{"192.0.2.5"}));
}

// ---- full-set eviction ---------------------------------------------------------

TEST(BanManagerEviction, FullSetEvictsOldestDetectorBanBeforeAdmin) {
    Rig r(settings(3), 3);
    ASSERT_EQ(r->ban(cidr("198.51.100.1"), "admin", std::nullopt, 100).error, "");  // oldest, but admin
    r->ban_detected({det("198.51.100.2")}, 110);
    r->ban_detected({det("198.51.100.3")}, 120);
    EXPECT_EQ(r->counters().evictions, 0u);
    EXPECT_EQ(r.nft.size("banned"), 3u);

    auto out = r->ban_detected({det("198.51.100.4")}, 130);  // the N+1th
    EXPECT_EQ(out[0].error, "");
    EXPECT_EQ(r->counters().evictions, 1u);
    EXPECT_EQ(r->counters().ban_errors, 0u);
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.1", "198.51.100.3", "198.51.100.4"}));
    EXPECT_EQ(r->record(cidr("198.51.100.2"))->ended, "evicted");
    EXPECT_FALSE(r->record(cidr("198.51.100.2"))->active(130));
    EXPECT_TRUE(r.heard.forgot("198.51.100.2"));
    ASSERT_EQ(r.heard.count_events("evicted"), 1u);
    auto ev = std::find_if(r.heard.events.begin(), r.heard.events.end(), [](auto& e) { return e.first == "evicted"; });
    EXPECT_EQ(ev->second["prefix"], "198.51.100.2");
    EXPECT_EQ(ev->second["origin"], "detector");
    EXPECT_TRUE(r.heard.any_note("is full"));
}

TEST(BanManagerEviction, OnlyAdminBansLeftTheOldestAdminGoes) {
    Rig r(settings(2), 2);
    r->ban(cidr("198.51.100.1"), "admin", std::nullopt, 100);
    r->ban(cidr("198.51.100.2"), "fail2ban", std::nullopt, 110);
    auto res = r->ban(cidr("198.51.100.3"), "admin", std::nullopt, 120);
    EXPECT_EQ(res.error, "");
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.2", "198.51.100.3"}));
    EXPECT_EQ(r->counters().evictions, 1u);
    EXPECT_EQ(r->record(cidr("198.51.100.1"))->ended, "evicted");
}

TEST(BanManagerEviction, EvictionIsPerFamily) {
    Rig r(settings(1), 1);
    r->ban_detected({det("198.51.100.1")}, 100);
    auto out = r->ban_detected({det("2001:db8::1")}, 200);  // banned6 is empty
    EXPECT_EQ(out[0].error, "");
    EXPECT_EQ(r->counters().evictions, 0u);
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.1"}));
    EXPECT_EQ(r.v6(), (Strings{"2001:db8::1"}));
}

TEST(BanManagerEviction, NothingToEvictFailsWithTheKernelsWords) {
    Rig r(settings(2), 2);
    // Elements added by hand with nft: in the set, not in our table.
    r.nft.put(cidr("203.0.113.1"), "banned");
    r.nft.put(cidr("203.0.113.2"), "banned");
    auto out = r->ban_detected({det("198.51.100.9")}, 100);
    EXPECT_NE(out[0].error.find("set is full"), std::string::npos) << out[0].error;
    EXPECT_EQ(r->record(cidr("198.51.100.9")), nullptr) << "a refused ban is not recorded";
    EXPECT_EQ(r->counters().ban_errors, 1u);
    EXPECT_EQ(r->counters().bans, 0u);
    EXPECT_EQ(r->counters().evictions, 0u);

    auto res = r->ban(cidr("198.51.100.10"), "admin", std::nullopt, 100);
    EXPECT_NE(res.error.find("cannot ban 198.51.100.10"), std::string::npos) << res.error;
    EXPECT_NE(res.error.find("set is full"), std::string::npos) << res.error;
    EXPECT_EQ(r->record(cidr("198.51.100.10")), nullptr);
}

// A stale record (gone from the kernel already) is forgotten, not counted
// as an eviction, and the next oldest makes the room.
TEST(BanManagerEviction, StaleRecordIsForgottenAndTheNextOldestEvicted) {
    Rig r(settings(2), 2);
    r->ban_detected({det("198.51.100.1")}, 100);
    r->ban_detected({det("198.51.100.2")}, 110);
    r.nft.del_bans({cidr("198.51.100.1")}, kernel::kBannedSets);  // timed out in the kernel
    r.nft.put(cidr("203.0.113.7"), "banned");                     // and someone filled its place
    auto out = r->ban_detected({det("198.51.100.3")}, 120);
    EXPECT_EQ(out[0].error, "");
    EXPECT_EQ(r->counters().evictions, 1u);
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.3", "203.0.113.7"}));
    EXPECT_TRUE(r.heard.any_note("no longer in the kernel set"));
}

// ---- kernel round trips --------------------------------------------------------

// Nft::add_bans retries each element of a refused batch once: a batch of N
// with one refused element costs 1 + N element attempts. The manager must
// not retry on top (only after an eviction made room).
TEST(BanManagerRoundTrips, OneRefusedElementCostsOnePlusNAttempts) {
    Rig r;
    r.nft.put(cidr("203.0.113.0/24"), "banned");  // by hand: 203.0.113.9 overlaps it (EEXIST)
    std::vector<BanManager::Detection> d = {det("198.51.100.1"), det("203.0.113.9"), det("198.51.100.2")};
    auto out = r->ban_detected(d, 100);
    EXPECT_EQ(r.nft.add_calls, 1u);
    EXPECT_EQ(r.nft.add_batches, 1u + d.size());
    EXPECT_EQ(r.nft.add_elements, d.size() + d.size());
    EXPECT_EQ(r.nft.del_calls, 0u);
    EXPECT_EQ(out[0].error, "");
    EXPECT_NE(out[1].error.find("overlaps"), std::string::npos) << out[1].error;
    EXPECT_EQ(out[2].error, "");
    EXPECT_EQ(r->counters().ban_errors, 1u);
    EXPECT_EQ(r->counters().bans, 2u);
    EXPECT_EQ(r->record(cidr("203.0.113.9")), nullptr);
}

TEST(BanManagerRoundTrips, AllInOneBatch) {
    Rig r;
    auto out = r->ban_detected({det("198.51.100.1"), det("198.51.100.2"), det("2001:db8::1")}, 100);
    EXPECT_EQ(r.nft.add_calls, 1u);
    EXPECT_EQ(r.nft.batches(), 1u);
}

TEST(BanManagerRoundTrips, FullSetRetriesOnlyAfterEachEviction) {
    Rig r(settings(3), 3);
    r->ban_detected({det("198.51.100.1")}, 100);
    r->ban_detected({det("198.51.100.2")}, 110);
    r->ban_detected({det("198.51.100.3")}, 120);
    r.nft.reset_counts();
    auto out = r->ban_detected({det("198.51.100.4"), det("198.51.100.5")}, 130);
    EXPECT_EQ(out[0].error, "");
    EXPECT_EQ(out[1].error, "");
    // add_bans: the batch (1 + 2 attempts), then one per eviction.
    EXPECT_EQ(r.nft.add_calls, 1u + 2u);
    EXPECT_EQ(r.nft.add_elements, 2u + 2u + 2u);
    EXPECT_EQ(r.nft.del_calls, 2u);
    EXPECT_EQ(r->counters().evictions, 2u);
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.3", "198.51.100.4", "198.51.100.5"}));
}

TEST(BanManagerRoundTrips, EvictionTriesAreBounded) {
    Rig r(settings(2), 2);
    // Every record is stale: each try forgets one and makes no room.
    for (int i = 1; i <= 6; ++i) r.store.record_ban(cidr(fmt::format("198.51.100.{}", i)), "detector", 100 + i, 0);
    r.nft.put(cidr("203.0.113.1"), "banned");
    r.nft.put(cidr("203.0.113.2"), "banned");
    auto out = r->ban_detected({det("192.0.2.1")}, 200);
    EXPECT_NE(out[0].error.find("set is full"), std::string::npos);
    EXPECT_EQ(r.nft.add_calls, 1u + BanManager::kMaxEvictTries);
    EXPECT_EQ(r->counters().evictions, 0u);
}

// ---- /64 aggregation -----------------------------------------------------------

TEST(BanManagerAggregation, ExactlyAtIpv6AggregateAfter) {
    Rig r;  // aggregate_after = 3
    r->ban_detected({det("2001:db8:1::1"), det("2001:db8:1::2")}, 100);
    r->aggregate({ip("2001:db8:1::2")}, 100);
    EXPECT_EQ(r->counters().aggregations, 0u) << "2 hosts = ipv6_aggregate_after - 1: no";
    EXPECT_EQ(r.v6(), (Strings{"2001:db8:1::1", "2001:db8:1::2"}));

    r->ban_detected({det("2001:db8:1::3", 300s)}, 110);
    r.nft.reset_counts();
    r->aggregate({ip("2001:db8:1::3")}, 110);
    EXPECT_EQ(r->counters().aggregations, 1u) << "3 hosts = ipv6_aggregate_after: yes";
    EXPECT_EQ(r.nft.replace_calls, 1u);
    EXPECT_EQ(r.v6(), (Strings{"2001:db8:1::/64"}));
    for (const char* h : {"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"}) {
        const auto* rec = r->record(cidr(h));
        ASSERT_NE(rec, nullptr);
        EXPECT_FALSE(rec->active(110)) << h;
        EXPECT_EQ(rec->ended, "2001:db8:1::/64") << h;
    }
    const auto* p = r->record(cidr("2001:db8:1::/64"));
    ASSERT_NE(p, nullptr);
    // Never ends before any of its hosts' would have: ::3 had 300 s left.
    EXPECT_EQ(p->expires, 110 + 300);
    EXPECT_EQ(*r.nft.element(cidr("2001:db8:1::/64"))->timeout, 300s);
    EXPECT_EQ(r.heard.count_events("aggregated"), 1u);
    // A fourth host of an aggregated /64 changes nothing.
    r->aggregate({ip("2001:db8:1::3")}, 120);
    EXPECT_EQ(r->counters().aggregations, 1u);
}

TEST(BanManagerAggregation, PermanentHostMakesThePrefixPermanent) {
    Rig r;
    r->ban_detected({det("2001:db8:1::1"), det("2001:db8:1::2", 0s), det("2001:db8:1::3")}, 100);
    r->aggregate({ip("2001:db8:1::3")}, 100);
    ASSERT_EQ(r->counters().aggregations, 1u);
    EXPECT_EQ(r->record(cidr("2001:db8:1::/64"))->expires, 0);
    EXPECT_FALSE(r.nft.element(cidr("2001:db8:1::/64"))->timeout);
}

TEST(BanManagerAggregation, NotOverAProtectedAddress) {
    Rig r;
    r.protection.add(ip("2001:db8:2::53"), engine::ProtectReason::resolver);
    r->ban_detected({det("2001:db8:2::1"), det("2001:db8:2::2"), det("2001:db8:2::3")}, 100);
    r->aggregate({ip("2001:db8:2::3")}, 100);
    EXPECT_EQ(r->counters().aggregations, 0u);
    EXPECT_EQ(r.nft.replace_calls, 0u);
    EXPECT_EQ(r.v6(), (Strings{"2001:db8:2::1", "2001:db8:2::2", "2001:db8:2::3"}));
    EXPECT_TRUE(r.heard.any_note("protected 2001:db8:2::53"));
}

TEST(BanManagerAggregation, NotOverAnIgnoredAddress) {
    auto s = settings();
    s.ignore = {cidr("2001:db8:3::100/124")};
    Rig r(s);
    r->ban_detected({det("2001:db8:3::1"), det("2001:db8:3::2"), det("2001:db8:3::3")}, 100);
    r->aggregate({ip("2001:db8:3::3")}, 100);
    EXPECT_EQ(r->counters().aggregations, 0u);
    EXPECT_EQ(r.v6().size(), 3u);
}

TEST(BanManagerAggregation, ZeroMeansNever) {
    auto s = settings();
    s.policy.aggregate_after = 0;
    Rig r(s);
    r->ban_detected({det("2001:db8:4::1"), det("2001:db8:4::2"), det("2001:db8:4::3"), det("2001:db8:4::4")}, 100);
    r->aggregate({ip("2001:db8:4::4")}, 100);
    EXPECT_EQ(r->counters().aggregations, 0u);
}

// ---- refusal -------------------------------------------------------------------

TEST(BanManagerRefusal, InsideOrOverTheIgnoreList) {
    auto s = settings();
    s.ignore = {cidr("192.0.2.0/25")};
    Rig r(s);
    auto in = r->ban(cidr("192.0.2.7"), "admin", std::nullopt, 100);
    EXPECT_NE(in.error.find("refusing to ban 192.0.2.7"), std::string::npos) << in.error;
    auto over = r->ban(cidr("192.0.2.0/24"), "admin", std::nullopt, 100);
    EXPECT_NE(over.error.find("refusing to ban 192.0.2.0/24"), std::string::npos) << over.error;
    EXPECT_EQ(r->ban(cidr("192.0.2.128"), "admin", std::nullopt, 100).error, "") << "first address outside";
    EXPECT_EQ(r.nft.add_calls, 1u) << "refusals never reach the kernel";
    EXPECT_EQ(r.v4(), (Strings{"192.0.2.128"}));
    EXPECT_EQ(r.store.records().size(), 1u);
}

TEST(BanManagerRefusal, InsideOrOverAProtectionPrefix) {
    Rig r;
    r.protection.add(ip("198.51.100.53"), engine::ProtectReason::resolver);
    r.protection.add(cidr("203.0.113.0/28"), engine::ProtectReason::local);
    EXPECT_NE(r->ban(cidr("198.51.100.53"), "admin", std::nullopt, 100).error, "");
    EXPECT_NE(r->ban(cidr("198.51.100.0/24"), "admin", std::nullopt, 100).error, "");
    EXPECT_NE(r->ban(cidr("203.0.113.15"), "admin", std::nullopt, 100).error, "");
    EXPECT_EQ(r->ban(cidr("198.51.100.54"), "admin", std::nullopt, 100).error, "");
    EXPECT_EQ(r->ban(cidr("203.0.113.16"), "admin", std::nullopt, 100).error, "");
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.54", "203.0.113.16"}));
}

// ---- unban, foreign unbans, trim -----------------------------------------------

TEST(BanManagerUnban, CidrLiftsEveryBanInsideAndForgetsTheHosts) {
    Rig r;
    r->ban_detected({det("192.0.2.1"), det("192.0.2.2"), det("198.51.100.1")}, 100);
    ASSERT_EQ(r->ban(cidr("192.0.2.128/25"), "admin", std::nullopt, 110).error, "");
    // History inside is forgiven too.
    r.store.record_ban(cidr("192.0.2.3"), "detector", 10, 5);
    auto res = r->unban(cidr("192.0.2.0/24"), 120);
    EXPECT_EQ(res.error, "");
    std::vector<std::string> lifted;
    for (const auto& p : res.lifted) lifted.push_back(p.to_string());
    std::sort(lifted.begin(), lifted.end());
    EXPECT_EQ(lifted, (Strings{"192.0.2.1", "192.0.2.128/25", "192.0.2.2"}));
    EXPECT_EQ(r.v4(), (Strings{"198.51.100.1"}));
    EXPECT_TRUE(r.store.within(cidr("192.0.2.0/24"), 120, false).empty());
    EXPECT_TRUE(r.heard.forgot("192.0.2.1"));
    EXPECT_TRUE(r.heard.forgot("192.0.2.2"));
    EXPECT_FALSE(r.heard.forgot("198.51.100.1"));
    EXPECT_EQ(r->counters().unbans, 3u);
    EXPECT_EQ(r.heard.count_events("unban"), 1u);
    ASSERT_FALSE(r.heard.changes.empty());
    EXPECT_TRUE(r.heard.changes.back());
}

TEST(BanManagerUnban, HostUnbanForgetsTheHostEvenWithoutARecord) {
    Rig r;
    r.nft.put(cidr("192.0.2.9"), "banned");  // by hand
    auto res = r->unban(cidr("192.0.2.9"), 100);
    EXPECT_EQ(res.error, "");
    EXPECT_TRUE(res.lifted.empty());
    EXPECT_TRUE(r.v4().empty()) << "the element is deleted even if the table did not know it";
    EXPECT_TRUE(r.heard.forgot("192.0.2.9"));
}

TEST(BanManagerUnban, UnbanElementsAddsTheCidrOnce) {
    auto v = daemon::unban_elements({cidr("192.0.2.1"), cidr("192.0.2.0/24")}, cidr("192.0.2.0/24"));
    EXPECT_EQ(v.size(), 2u);
    v = daemon::unban_elements({cidr("192.0.2.1")}, cidr("192.0.2.0/24"));
    EXPECT_EQ(v.size(), 2u);
}

TEST(BanManagerForeign, DeletedWithNftIsTreatedAsUnban) {
    Rig r;
    r->ban_detected({det("192.0.2.9")}, 100);
    r->ban(cidr("192.0.2.64/26"), "admin", std::nullopt, 100);
    r->forget_foreign({ip("192.0.2.64"), ip("198.51.100.1")}, 110);
    EXPECT_EQ(r->record(cidr("192.0.2.64/26")), nullptr);
    ASSERT_NE(r->record(cidr("192.0.2.9")), nullptr);
    EXPECT_EQ(r->counters().foreign_unbans, 1u);
    ASSERT_EQ(r.heard.count_events("unban"), 1u);
    EXPECT_EQ(r.heard.events.back().second["origin"], "nft");
    EXPECT_TRUE(r.heard.any_note("deleted outside portsentry-nfq"));
    // A host deleted with nft: the engine counts it afresh.
    r->forget_foreign({ip("192.0.2.9")}, 120);
    EXPECT_TRUE(r.heard.forgot("192.0.2.9"));
    EXPECT_EQ(r->counters().foreign_unbans, 2u);
    // Nothing known: no news at all.
    const auto events = r.heard.events.size();
    r->forget_foreign({ip("203.0.113.1")}, 130);
    EXPECT_EQ(r.heard.events.size(), events);
}

TEST(BanManagerTrim, MoreThanSetSizeEvictsTheOldestDetectorBansFirst) {
    Rig r(settings(10), 10, false);
    r->ban(cidr("198.51.100.1"), "admin", 5000s, 100);
    r->ban_detected({det("198.51.100.2", 5000s)}, 200);
    r->ban_detected({det("198.51.100.3", 5000s)}, 300);
    r->ban_detected({det("198.51.100.4", 5000s)}, 400);
    r->ban_detected({det("2001:db8::1", 5000s)}, 100);
    r->trim(500);
    EXPECT_EQ(r->counters().evictions, 0u) << "4 <= 10";
    r->reconfigure(settings(2));
    r->trim(500);
    EXPECT_EQ(r->counters().evictions, 2u);
    EXPECT_EQ(r->record(cidr("198.51.100.2"))->ended, "evicted");
    EXPECT_EQ(r->record(cidr("198.51.100.3"))->ended, "evicted");
    EXPECT_TRUE(r->record(cidr("198.51.100.1"))->active(500));
    EXPECT_TRUE(r->record(cidr("198.51.100.4"))->active(500));
    EXPECT_TRUE(r->record(cidr("2001:db8::1"))->active(500)) << "the other family is within bounds";
    EXPECT_EQ(r->active_count(500), 3u);
    EXPECT_EQ(r.heard.count_events("evicted"), 2u);
    EXPECT_TRUE(r.heard.forgot("198.51.100.2"));
    // Exactly set_size: nothing more.
    r->trim(500);
    EXPECT_EQ(r->counters().evictions, 2u);
}

// ---- offline, no table ---------------------------------------------------------

TEST(BanManagerNoKernel, BansAndUnbansEditOnlyTheStore) {
    Rig r(settings(2), 2, false);
    EXPECT_EQ(r->ban(cidr("192.0.2.1"), "admin", 600s, 100).error, "");
    EXPECT_EQ(r->ban(cidr("192.0.2.0/24"), "admin", std::nullopt, 110).error, "");  // replace-narrower, store only
    EXPECT_EQ(r->record(cidr("192.0.2.1"))->ended, "192.0.2.0/24");
    auto out = r->ban_detected({det("198.51.100.1"), det("198.51.100.2"), det("198.51.100.3")}, 120);
    for (const auto& o : out) EXPECT_EQ(o.error, "");
    EXPECT_EQ(r->active_count(120), 4u) << "no set to be full: trim() bounds it at the next start";
    auto un = r->unban(cidr("192.0.2.0/24"), 130);
    EXPECT_EQ(un.error, "");
    EXPECT_EQ(un.lifted.size(), 1u);
    EXPECT_EQ(r->record(cidr("192.0.2.0/24")), nullptr);
    EXPECT_EQ(r.nft.add_calls + r.nft.del_calls + r.nft.replace_calls, 0u);
    EXPECT_EQ(r->active_elements(130).size(), 3u);
}

// ---- the equivalence of the daemon's and the offline CLI's paths ---------------

namespace {

// Mirrors Service::Impl's CommandHandler (src/daemon/service.cpp): one
// long-lived store and manager; the clock is the loop's.
struct Online final : daemon::CommandHandler {
    BanStore store;
    Recorder heard;
    BanManager bans;
    int64_t now = 0;
    Online(const std::string& path, FakeBanTable& nft, const engine::Protection& p, daemon::BanSettings s)
        : store(path), bans(store, &nft, heard, std::move(s), &p) {}
    daemon::ControlReply status(bool) override { return {1, "n/a\n"}; }
    daemon::ControlReply list(bool json) override { return daemon::render_list(store, json, now); }
    daemon::ControlReply why(const std::string&) override { return {1, "n/a\n"}; }
    daemon::ControlReply ban(const net::Cidr& c, std::optional<std::chrono::seconds> t,
                             const std::string& origin) override {
        auto r = bans.ban(c, origin, t, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        return {0, fmt::format("banned {}{}\n", c.to_string(),
                               r.time.count() > 0 ? fmt::format(" for {}s", r.time.count()) : " permanently")};
    }
    daemon::ControlReply unban(const net::Cidr& c) override {
        auto r = bans.unban(c, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        return {0, daemon::render_unban(store, c, r.lifted, now)};
    }
};

// Mirrors struct Offline in src/daemon/cli.cpp (not reachable from a test:
// it lives in an anonymous namespace and owns a real kernel::Nft): a new
// process per command, loading the state file, editing it through the same
// BanManager, saving it. The `where()` suffix is left out.
struct OfflineCmd final : daemon::CommandHandler, daemon::BanListener {
    BanStore store;
    BanManager bans;
    const int64_t now;
    OfflineCmd(const std::string& path, FakeBanTable* nft, const engine::Protection& p, daemon::BanSettings s,
               int64_t t)
        : store(path), bans(store, nft, *this, std::move(s), &p), now(t) {
        std::vector<std::string> warnings;
        store.load(&warnings);
        EXPECT_TRUE(warnings.empty());
    }
    daemon::ControlReply status(bool) override { return {1, "n/a\n"}; }
    daemon::ControlReply list(bool json) override { return daemon::render_list(store, json, now); }
    daemon::ControlReply why(const std::string&) override { return {1, "n/a\n"}; }
    daemon::ControlReply ban(const net::Cidr& c, std::optional<std::chrono::seconds> t,
                             const std::string& origin) override {
        auto r = bans.ban(c, origin, t, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        store.save();
        return {0, fmt::format("banned {}{}\n", c.to_string(),
                               r.time.count() > 0 ? fmt::format(" for {}s", r.time.count()) : " permanently")};
    }
    daemon::ControlReply unban(const net::Cidr& c) override {
        auto r = bans.unban(c, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        store.save();
        return {0, daemon::render_unban(store, c, r.lifted, now)};
    }
};

}  // namespace

TEST(BanManagerEquivalence, DaemonAndOfflineCommandsGiveTheSameTableAndSets) {
    TempDir d;
    const int64_t t0 = 1'800'000'000;
    const size_t capacity = 4;
    engine::Protection protection;
    protection.add(ip("203.0.113.53"), engine::ProtectReason::resolver);
    const std::vector<std::string> commands = {
        "ban 198.51.100.9 --time 10m",   // timed; the oldest ban
        "ban 192.0.2.5",                 // host
        "ban 192.0.2.0/24",              // covering /24: replaces the host
        "unban 192.0.2.7",               // a host inside: lifts nothing, the /24 stays
        "ban 198.51.100.1 --origin fail2ban",
        "ban 198.51.100.2",              // the set is full now (4)
        "ban 198.51.100.3 --time 1h",    // into a full set: evicts the oldest (198.51.100.9)
        "ban 203.0.113.53",              // refused: protected
        "unban 192.0.2.0/24",            // lifts the /24
        "ban 2001:db8::1 --time 0",      // permanent
    };

    FakeBanTable online_nft(capacity), offline_nft(capacity);
    Online online((d.path / "online.state").string(), online_nft, protection, settings(capacity));
    const std::string offline_path = (d.path / "offline.state").string();

    for (size_t i = 0; i < commands.size(); ++i) {
        const int64_t now = t0 + static_cast<int64_t>(i) * 10;
        online.now = now;
        auto a = daemon::dispatch_command(commands[i], online);
        OfflineCmd off(offline_path, &offline_nft, protection, settings(capacity), now);
        auto b = daemon::dispatch_command(commands[i], off);
        EXPECT_EQ(a.status, b.status) << commands[i];
        EXPECT_EQ(a.text, b.text) << commands[i];
        EXPECT_EQ(online.store.serialize(), off.store.serialize()) << "after: " << commands[i];
        EXPECT_EQ(online_nft.contents("banned"), offline_nft.contents("banned")) << "after: " << commands[i];
        EXPECT_EQ(online_nft.contents("banned6"), offline_nft.contents("banned6")) << "after: " << commands[i];
        if (i == 7) {
            EXPECT_EQ(a.status, 1) << "protected address refused";
        }
    }
    // And what the sequence should have left.
    BanStore disk(offline_path);
    disk.load();
    EXPECT_EQ(disk.serialize(), online.store.serialize());
    const int64_t end = t0 + 100;
    EXPECT_EQ(online_nft.prefixes("banned"), (Strings{"198.51.100.1", "198.51.100.2", "198.51.100.3"}));
    EXPECT_EQ(online_nft.prefixes("banned6"), (Strings{"2001:db8::1"}));
    EXPECT_EQ(online.store.find(cidr("192.0.2.0/24")), nullptr);
    EXPECT_EQ(online.store.find(cidr("192.0.2.5")), nullptr) << "an unban forgives the history inside";
    EXPECT_EQ(online.store.find(cidr("198.51.100.9"))->ended, "evicted");
    EXPECT_TRUE(online.store.find(cidr("198.51.100.3"))->active(end));
    EXPECT_EQ(online.store.find(cidr("198.51.100.3"))->expires, t0 + 60 + 3600);
    EXPECT_EQ(online.bans.counters().evictions, 1u);
    EXPECT_EQ(online.store.find(cidr("2001:db8::1"))->expires, 0);
    EXPECT_EQ(online.store.find(cidr("198.51.100.1"))->origin, "fail2ban");
}

// An IPv4-mapped IPv6 address names the IPv4 host (Protection::add and the
// engine unmap it). A ban of ::ffff:198.51.100.53 must be refused like a ban
// of 198.51.100.53 when that address is protected, and must never land in
// banned6 as a ::ffff: element (no IPv6 packet carries such a source: the
// ban would report success and block nothing).
TEST(BanManagerRefusal, MappedIpv4IsTheIpv4Address) {
    auto s = settings();
    s.ignore = {cidr("192.0.2.0/24")};
    Rig r(s);
    r.protection.add(ip("198.51.100.53"), engine::ProtectReason::resolver);
    EXPECT_NE(r->ban(cidr("::ffff:198.51.100.53"), "admin", std::nullopt, 100).error, "")
        << "protected resolver banned through its mapped form";
    EXPECT_NE(r->ban(cidr("::ffff:192.0.2.7"), "admin", std::nullopt, 100).error, "")
        << "ignore-listed address banned through its mapped form";
    r->ban(cidr("::ffff:203.0.113.9"), "admin", std::nullopt, 100);
    for (const auto& e : r.v6()) EXPECT_EQ(e.find("::ffff:"), std::string::npos) << "ineffective element " << e;
}

// A full set evicting a /64 forgets the hosts folded into it (evict_oldest:
// "a /64's folded hosts too"), so the engine counts them afresh. trim() is
// the same eviction when ban_set_size was lowered (reload, restore): it must
// do the same, or the folded hosts stay "already blocked" in the engine
// while no ban covers them any more.
TEST(BanManagerTrim, EvictingAPrefixForgetsTheHostsFoldedIntoIt) {
    Rig r(settings(10), 10);
    r->ban_detected({det("2001:db8:1::1", 5000s), det("2001:db8:1::2", 5000s), det("2001:db8:1::3", 5000s)}, 100);
    r->aggregate({ip("2001:db8:1::3")}, 100);
    ASSERT_EQ(r->counters().aggregations, 1u);
    r->ban_detected({det("2001:db8:9::1", 5000s)}, 200);
    r.heard.forgotten_.clear();
    r->reconfigure(settings(1));
    r->trim(300);
    ASSERT_EQ(r->record(cidr("2001:db8:1::/64"))->ended, "evicted");
    EXPECT_TRUE(r->record(cidr("2001:db8:9::1"))->active(300));
    for (const char* h : {"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"})
        EXPECT_TRUE(r.heard.forgot(h)) << h << " still counts as blocked in the engine";
}

TEST(BanManagerEviction, EvictingAPrefixForgetsTheHostsFoldedIntoIt) {
    Rig r(settings(3), 3);
    r->ban_detected({det("2001:db8:1::1", 5000s), det("2001:db8:1::2", 5000s), det("2001:db8:1::3", 5000s)}, 100);
    r->aggregate({ip("2001:db8:1::3")}, 100);
    ASSERT_EQ(r.v6(), (Strings{"2001:db8:1::/64"}));
    r->ban_detected({det("2001:db8:9::1", 5000s)}, 200);
    r->ban_detected({det("2001:db8:9::2", 5000s)}, 250);
    r.heard.forgotten_.clear();
    auto out = r->ban_detected({det("2001:db8:9::3", 5000s)}, 300);  // full: the /64 goes
    EXPECT_EQ(out[0].error, "");
    EXPECT_EQ(r->record(cidr("2001:db8:1::/64"))->ended, "evicted");
    for (const char* h : {"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"}) EXPECT_TRUE(r.heard.forgot(h)) << h;
}

// Replace-narrower: an admin ban of a prefix supersedes the host bans inside
// it. When the prefix ban is shorter than a host's (here: a permanent
// detector ban under a 10-minute /24), either the prefix must last as long
// as the hosts (as a /64 aggregation does), or the engine must hear that the
// host's own ban ended (forgotten, or blocked for the prefix's time).
// Otherwise, after the /24 expires, 192.0.2.5 is in no set and the engine
// still counts it "already blocked" forever: never banned again.
TEST(BanManagerReplace, ShorterPrefixBanDoesNotLeaveHostsBlockedInTheEngine) {
    Rig r;
    r->ban_detected({det("192.0.2.5", 0s)}, 1000);  // permanent
    r.heard.blocked_.clear();
    auto res = r->ban(cidr("192.0.2.0/24"), "admin", 600s, 1010);
    ASSERT_EQ(res.error, "");
    const auto* net = r->record(cidr("192.0.2.0/24"));
    const bool prefix_lasts = net->expires == 0;
    bool engine_told = r.heard.forgot("192.0.2.5");
    for (const auto& b : r.heard.blocked_)
        if (b.addr == "192.0.2.5" && b.left && *b.left <= 600s) engine_told = true;
    EXPECT_TRUE(prefix_lasts || engine_told)
        << "the /24 ends at " << net->expires << " but the engine still holds 192.0.2.5 as blocked permanently";
}

// ---- kernel refusals on delete, history, replay ---------------------------------

TEST(BanManagerUnban, KernelRefusalKeepsTheTableTruthful) {
    Rig r;
    r->ban_detected({det("192.0.2.1")}, 100);
    r.nft.fail_del_errno = ENOBUFS;
    auto res = r->unban(cidr("192.0.2.1"), 110);
    EXPECT_NE(res.error.find("cannot unban 192.0.2.1"), std::string::npos) << res.error;
    EXPECT_TRUE(r->record(cidr("192.0.2.1"))->active(110)) << "still in the kernel: still in the table";
    EXPECT_FALSE(r.heard.forgot("192.0.2.1"));
    EXPECT_EQ(r->counters().unbans, 0u);
}

TEST(BanManagerEviction, VictimTheKernelWillNotDeleteIsKeptAndTheBanFails) {
    Rig r(settings(1), 1);
    r->ban_detected({det("198.51.100.1")}, 100);
    r.nft.fail_del_errno = ENOBUFS;
    auto out = r->ban_detected({det("198.51.100.2")}, 110);
    EXPECT_NE(out[0].error.find("set is full"), std::string::npos) << out[0].error;
    EXPECT_TRUE(r->record(cidr("198.51.100.1"))->active(110));
    EXPECT_EQ(r->counters().evictions, 0u);
    EXPECT_TRUE(r.heard.any_note("cannot evict 198.51.100.1"));
}

TEST(BanManagerHistory, EndedBansAreRememberedForBanTimeMax) {
    Rig r;  // max = 1000 s
    r->ban_detected({det("192.0.2.1")}, 100);  // ends at 200
    r->forget_history(1199);
    ASSERT_NE(r->record(cidr("192.0.2.1")), nullptr) << "ended 999 s ago: remembered";
    EXPECT_EQ(r->next_ban_time(cidr("192.0.2.1"), 100s), 400s);
    r->forget_history(1200);
    EXPECT_EQ(r->record(cidr("192.0.2.1")), nullptr) << "ended ban_time_max ago: forgotten";
    EXPECT_EQ(r->next_ban_time(cidr("192.0.2.1"), 100s), 100s);
}

TEST(BanManagerReplay, RetellsActiveHostBansOnly) {
    Rig r;
    r->ban_detected({det("192.0.2.1"), det("192.0.2.2", 0s)}, 100);
    r->ban(cidr("198.51.100.0/24"), "admin", std::nullopt, 100);
    r->ban_detected({det("192.0.2.3")}, 10);  // ended at 110
    r.heard.blocked_.clear();
    r->replay_blocked(150);
    ASSERT_EQ(r.heard.blocked_.size(), 2u);
    EXPECT_EQ(r.heard.blocked_[0].addr, "192.0.2.1");
    EXPECT_EQ(r.heard.blocked_[0].left, std::optional(50s));
    EXPECT_EQ(r.heard.blocked_[1].addr, "192.0.2.2");
    EXPECT_FALSE(r.heard.blocked_[1].left);
}
