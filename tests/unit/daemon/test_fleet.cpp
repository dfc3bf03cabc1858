// Fleet: what the decisions stream does to the fleet table and the kernel's
// fleet sets (an interval-set model, fake_ban_table.hpp), and the Go
// durations the LAPI speaks. The HTTP side is proven against a real LAPI by
// tests/fleet/fleet.sh.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon_test_util.hpp"
#include "fake_ban_table.hpp"
#include "portsentry/daemon/fleet.hpp"
#include "portsentry/daemon/fleet_wire.hpp"

using namespace portsentry;
using daemon::Fleet;
using daemon::FleetDecision;
using daemon::FleetUpdate;
using portsentry::testing::FakeBanTable;
using pstest::cidr;
using pstest::ip;
using pstest::TempDir;

namespace {

constexpr int64_t kNow = 1'800'000'000;

FleetDecision ban(const std::string& value, int64_t secs = 3600, const std::string& scope = "Ip",
                  const std::string& type = "ban") {
    return {value, scope, type, "cscli", "manual 'ban' from 'localhost'", secs};
}

struct FleetTest : ::testing::Test {
    TempDir dir;
    daemon::Loop loop;
    FakeBanTable nft;
    daemon::BanStore local{dir.path.string() + "/state"};
    engine::Protection protection;
    config::Config cfg;
    std::vector<std::string> lines;
    std::unique_ptr<Fleet> fleet;

    void SetUp() override {
        protection.add(ip("192.0.2.2"), engine::ProtectReason::local);
        protection.add(cidr("127.0.0.0/8"), engine::ProtectReason::special);
        cfg.state_file = dir.path.string() + "/state";
        make();
    }
    void make() {
        fleet.reset();
        fleet = std::make_unique<Fleet>(loop, &nft, local, [this](const std::string& l) { lines.push_back(l); },
                                        cfg.state_file);
        fleet->load(kNow);
        fleet->configure(cfg, &protection);  // lapi_url empty: no client, the table alone
        nft.add_bans(fleet->elements(kNow), kernel::kFleetSets);
        fleet->applied(kNow);
    }
    void apply(std::vector<FleetDecision> add, std::vector<FleetDecision> del = {}, bool resync = false,
               int64_t now = kNow) {
        FleetUpdate u;
        u.resync = resync;
        u.added = std::move(add);
        u.deleted = std::move(del);
        daemon::Now n{std::chrono::steady_clock::now(), now};
        fleet->apply(std::move(u), n);
    }
    bool holds(const std::string& c) const { return nft.holds(cidr(c), kernel::kFleetSets); }
    uint64_t skipped(const char* reason) const {
        for (size_t i = 0; i < std::size(Fleet::kSkipReasons); ++i)
            if (std::string(Fleet::kSkipReasons[i]) == reason) return fleet->counters().skipped[i].value();
        return ~0ull;
    }
};

TEST(GoDuration, ParsesWhatTheLapiSends) {
    EXPECT_EQ(daemon::parse_go_duration("4h"), 14400);
    EXPECT_EQ(daemon::parse_go_duration("3h59m58.123456789s"), 14398);
    EXPECT_EQ(daemon::parse_go_duration("90s"), 90);
    EXPECT_EQ(daemon::parse_go_duration("1m30s"), 90);
    EXPECT_EQ(daemon::parse_go_duration("500ms"), 0);
    EXPECT_EQ(daemon::parse_go_duration("-1.5s"), -1);
    EXPECT_EQ(daemon::parse_go_duration("0"), 0);
    EXPECT_EQ(daemon::parse_go_duration(""), std::nullopt);
    EXPECT_EQ(daemon::parse_go_duration("4d"), std::nullopt);  // Go has no day unit
    EXPECT_EQ(daemon::parse_go_duration("h"), std::nullopt);
    EXPECT_EQ(daemon::go_duration(3600), "3600s");
}

TEST(FleetWire, AnAlertCarriesEveryFieldTheLapiRequires) {
    daemon::FleetAlert a{cidr("2001:db8:7::/64"), kNow, kNow + 600, "TCP SYN/Normal scan", "TCP", 23};
    const auto j = daemon::fleet_wire::alert_json(a, kNow + 100);
    for (const char* k : {"capacity", "events", "events_count", "leakspeed", "message", "scenario", "scenario_hash",
                          "scenario_version", "simulated", "source", "start_at", "stop_at"})
        EXPECT_TRUE(j.contains(k)) << k;
    const auto& d = j["decisions"][0];
    EXPECT_EQ(d["origin"], "portsentry");
    EXPECT_EQ(d["scenario"], "portsentry/portscan");
    EXPECT_EQ(d["scope"], "Range");  // a /64
    EXPECT_EQ(d["value"], "2001:db8:7::/64");
    EXPECT_EQ(d["duration"], "500s");  // what is left of the ban
    EXPECT_NE(j["message"].get<std::string>().find("TCP SYN/Normal scan"), std::string::npos);
    auto back = daemon::fleet_wire::queue_entry(daemon::fleet_wire::queue_line(a));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->prefix, a.prefix);
    EXPECT_EQ(back->until, a.until);
    EXPECT_EQ(back->port, 23);
}

TEST(FleetWire, TheStreamsAnswerIsReadIntoDecisions) {
    std::vector<FleetDecision> added, deleted;
    ASSERT_TRUE(daemon::fleet_wire::parse_stream(R"({"deleted":null,"new":[
        {"duration":"3h59m1.5s","id":41,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip",
         "type":"ban","value":"192.0.2.9","simulated":false,"uuid":"x"}, 7,
        {"duration":"1h","id":42,"origin":"cscli","scenario":"manual","scope":"Range","type":"ban",
         "value":"198.51.100.0/24"}]})", added, deleted));
    EXPECT_TRUE(deleted.empty());  // null: the LAPI's empty list
    ASSERT_EQ(added.size(), 2u);   // 7 is not an entry
    EXPECT_EQ(added[0].value, "192.0.2.9");
    EXPECT_EQ(added[0].seconds, 14341);
    EXPECT_EQ(added[0].id, 41);
    EXPECT_EQ(added[0].scenario, "crowdsecurity/ssh-bf");
    EXPECT_EQ(added[1].scope, "Range");
    EXPECT_EQ(added[1].origin, "cscli");
    added.clear();
    ASSERT_TRUE(daemon::fleet_wire::parse_stream(R"({"new":null,"deleted":[{"value":"192.0.2.9","duration":"-2s","scope":"Ip","type":"ban"}]})",
                                                 added, deleted));
    ASSERT_EQ(deleted.size(), 1u);
    EXPECT_EQ(deleted[0].seconds, -2);
    EXPECT_FALSE(daemon::fleet_wire::parse_stream("[]", added, deleted));
    EXPECT_FALSE(daemon::fleet_wire::parse_stream("{\"new\": [", added, deleted));
    EXPECT_FALSE(daemon::fleet_wire::parse_stream("<html>", added, deleted));
}

TEST_F(FleetTest, BansOfAddressesAndRangesGoToTheFleetSetsWithTheirTime) {
    apply({ban("203.0.113.7", 600), ban("198.51.100.0/24", 3600, "Range"), ban("2001:db8:5::1")});
    EXPECT_TRUE(holds("203.0.113.7"));
    EXPECT_TRUE(holds("198.51.100.0/24"));  // a range stays a range
    EXPECT_TRUE(holds("2001:db8:5::1"));
    EXPECT_EQ(nft.element(cidr("203.0.113.7"), kernel::kFleetSets)->timeout, std::chrono::seconds(600));
    EXPECT_FALSE(nft.holds(cidr("203.0.113.7")));  // never in @banned
    EXPECT_EQ(fleet->counters().pulled.value(), 3u);
    auto why = fleet->why(ip("198.51.100.9"), kNow);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("fleet"), std::string::npos);
    EXPECT_NE(why->find("origin cscli"), std::string::npos);
    EXPECT_NE(why->find("manual 'ban'"), std::string::npos);
}

TEST_F(FleetTest, OnlyBansOfIpsAndRangesAreApplied) {
    apply({ban("203.0.113.8", 600, "Ip", "captcha"), ban("FR", 600, "Country"), ban("AS1234", 600, "AS"),
           ban("not-an-ip"), ban("203.0.113.9", 0)});
    EXPECT_EQ(skipped("type"), 1u);
    EXPECT_EQ(skipped("scope"), 2u);
    EXPECT_EQ(skipped("invalid"), 2u);
    EXPECT_TRUE(fleet->elements(kNow).empty());
}

TEST_F(FleetTest, ProtectedAddressesAndRangesCoveringThemAreRefusedWhole) {
    cfg.ignore.insert(cidr("203.0.113.128/25"));
    fleet->configure(cfg, &protection);
    apply({ban("192.0.2.2"), ban("127.0.0.1"), ban("192.0.2.0/24", 600, "Range"), ban("203.0.113.200"),
           ban("203.0.113.0/24", 600, "Range")});
    EXPECT_EQ(skipped("protected"), 5u);
    EXPECT_TRUE(fleet->elements(kNow).empty());
}

TEST_F(FleetTest, ThisHostsOwnBanIsNotAddedToItsFleetSet) {
    local.record_ban(cidr("198.51.100.7"), "detector", kNow, 3600);
    apply({ban("198.51.100.7")});
    EXPECT_EQ(skipped("own"), 1u);
    EXPECT_FALSE(holds("198.51.100.7"));
}

TEST_F(FleetTest, OverlappingDecisionsCoexistAndTheNarrowOneStaysWhenTheWideOneGoes) {
    apply({ban("198.51.100.77", 7200)});
    apply({ban("198.51.100.0/24", 600, "Range")});
    // The interval set holds the covering range only ...
    EXPECT_TRUE(holds("198.51.100.0/24"));
    EXPECT_FALSE(holds("198.51.100.77"));
    EXPECT_EQ(fleet->store().records().size(), 2u);
    // ... and when it is deleted the address inside is back, in the same transaction.
    apply({}, {ban("198.51.100.0/24", -1, "Range")});
    EXPECT_FALSE(holds("198.51.100.0/24"));
    EXPECT_TRUE(holds("198.51.100.77"));
    // When it expires on its own, the tick puts the narrower one back.
    apply({ban("198.51.100.0/24", 600, "Range")});
    EXPECT_FALSE(holds("198.51.100.77"));
    fleet->tick(daemon::Now{std::chrono::steady_clock::now(), kNow + 601});
    EXPECT_TRUE(holds("198.51.100.77"));
}

TEST_F(FleetTest, DeletionsAreIdempotent) {
    apply({ban("203.0.113.7")});
    apply({}, {ban("203.0.113.7", -1)});
    apply({}, {ban("203.0.113.7", -1)});  // the LAPI repeats a deletion for ~2 s
    EXPECT_FALSE(holds("203.0.113.7"));
    EXPECT_TRUE(fleet->store().records().empty());
}

TEST_F(FleetTest, AResyncReplacesTheContentExactly) {
    apply({ban("203.0.113.7"), ban("203.0.113.8")});
    apply({ban("203.0.113.8"), ban("203.0.113.9")}, {}, true);
    EXPECT_FALSE(holds("203.0.113.7"));
    EXPECT_TRUE(holds("203.0.113.8"));
    EXPECT_TRUE(holds("203.0.113.9"));
    apply({}, {}, true);  // the LAPI has nothing: nothing stays
    EXPECT_TRUE(fleet->elements(kNow).empty());
    EXPECT_FALSE(holds("203.0.113.8"));
}

TEST_F(FleetTest, AFullFleetSetIsCountedAndLoggedNeverEvictingAnything) {
    cfg.crowdsec.fleet_set_size = 2;
    fleet->configure(cfg, &protection);
    apply({ban("203.0.113.1"), ban("203.0.113.2"), ban("203.0.113.3")});
    EXPECT_EQ(skipped("full"), 1u);
    EXPECT_TRUE(holds("203.0.113.1"));
    EXPECT_TRUE(holds("203.0.113.2"));
    EXPECT_FALSE(holds("203.0.113.3"));
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                            [](const auto& l) { return l.find("fleet set is full") != std::string::npos; }));
}

TEST_F(FleetTest, EntriesSurviveARestartUntilTheirOwnEnd) {
    apply({ban("203.0.113.7", 600), ban("198.51.100.0/24", 60, "Range")});
    fleet->save_now();
    nft = FakeBanTable{};
    make();  // a restart with the LAPI away: the table alone
    EXPECT_TRUE(holds("203.0.113.7"));
    EXPECT_TRUE(holds("198.51.100.0/24"));
    EXPECT_LE(nft.element(cidr("203.0.113.7"), kernel::kFleetSets)->timeout, std::chrono::seconds(600));
    EXPECT_EQ(fleet->elements(kNow + 61).size(), 1u);  // the range's own end passed
}

}  // namespace
