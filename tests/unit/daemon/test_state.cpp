// BanStore (the daemon's own ban table) and the control socket round trip.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "daemon_test_util.hpp"
#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/state.hpp"

namespace fs = std::filesystem;
using namespace portsentry;
using daemon::BanStore;

using pstest::TempDir;
using pstest::cidr;
using pstest::ip;

namespace {

// load()'s old reader, the reference for its fast path: every line through
// nlohmann, absent keys defaulted exactly as before.
std::optional<daemon::BanRecord> nlohmann_record(const std::string& line) {
    try {
        auto j = nlohmann::json::parse(line);
        auto prefix = net::Cidr::parse(j.at("prefix").get<std::string>());
        if (!prefix) return std::nullopt;
        daemon::BanRecord r;
        r.prefix = *prefix;
        r.origin = j.value("origin", "detector");
        r.first_seen = j.value("first_seen", int64_t{0});
        r.last_seen = j.value("last_seen", int64_t{0});
        r.expires = j.value("expires", int64_t{0});
        r.count = j.value("count", uint32_t{1});
        r.last_port = j.value("last_port", uint16_t{0});
        r.last_proto = j.value("last_proto", "");
        r.last_type = j.value("last_type", "");
        r.ended = j.value("ended", "");
        return r;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

void expect_same_record(const daemon::BanRecord& a, const daemon::BanRecord& b) {
    EXPECT_EQ(a.prefix, b.prefix);
    EXPECT_EQ(a.origin, b.origin);
    EXPECT_EQ(a.first_seen, b.first_seen);
    EXPECT_EQ(a.last_seen, b.last_seen);
    EXPECT_EQ(a.expires, b.expires);
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.last_port, b.last_port);
    EXPECT_EQ(a.last_proto, b.last_proto);
    EXPECT_EQ(a.last_type, b.last_type);
    EXPECT_EQ(a.ended, b.ended);
}

// A record of `prefix` (otherwise default) that expires at `expires`.
void put_expiring(BanStore& s, const std::string& prefix, int64_t expires) {
    daemon::BanRecord r;
    r.prefix = cidr(prefix);
    r.expires = expires;
    s.put(r);
}

}  // namespace

// Every line serialize() writes takes the fast path and reads back as the
// full JSON parser reads it.
TEST(BanStore, FastLineReaderTakesEverySerializedLine) {
    BanStore a("/nonexistent");
    const BanStore::Probe probe{65535, "TCP", "TCP SYN/Normal scan"};
    a.record_ban(cidr("198.51.100.2"), "detector", 1'700'000'000, 3600, &probe);
    auto big = a.record_ban(cidr("2001:db8:1::/64"), "fail2ban", 1, 0);
    big.count = 4'294'967'295u;
    a.put(big);
    a.record_ban(cidr("0.0.0.0/0"), "admin", 0, 0);
    a.record_ban(cidr("203.0.113.0/24"), "fleet", 5, 5);
    a.end_ban(cidr("203.0.113.0/24"), 7, "2001:db8:1::/64");
    std::istringstream text(a.serialize());
    std::string line;
    size_t n = 0;
    while (std::getline(text, line)) {
        if (line[0] == '#') continue;
        ++n;
        SCOPED_TRACE(line);
        auto fast = daemon::parse_record_line(line);
        auto ref = nlohmann_record(line);
        ASSERT_TRUE(fast.has_value());
        ASSERT_TRUE(ref.has_value());
        expect_same_record(*fast, *ref);
    }
    EXPECT_EQ(n, 4u);
}

// Lines a hand edit or another writer could leave: the fast path either
// reads them exactly as nlohmann does or leaves them to it; load() keeps the
// same records and warns about the same lines as the old reader.
TEST(BanStore, FastLineReaderAgreesWithJsonOnOddLines) {
    const std::vector<std::string> lines = {
        R"({"prefix":"192.0.2.1","origin":"admin","first_seen":1,"last_seen":2,"expires":3,"count":4,"last_port":5,"last_proto":"UDP","last_type":"x"})",
        R"({"prefix":"192.0.2.2"})",                                   // defaults
        R"({"expires":9,"prefix":"192.0.2.3"})",                       // other order
        R"({ "prefix" : "192.0.2.4" , "count" : 2 })",                 // whitespace
        R"({"prefix":"192.0.2.5","origin":"admin"})",             // escape
        R"({"prefix":"192.0.2.6","color":"red"})",                     // unknown key
        R"({"prefix":"192.0.2.7","count":2,"count":3})",               // repeated key
        R"({"prefix":"192.0.2.8","first_seen":-5})",                   // negative
        R"({"prefix":"192.0.2.9","first_seen":1.5})",                  // float
        R"({"prefix":"192.0.2.10","first_seen":1e3})",                 // exponent
        R"({"prefix":"192.0.2.11","count":4294967296})",               // beyond u32
        R"({"prefix":"192.0.2.12","last_port":65536})",                // beyond u16
        R"({"prefix":"192.0.2.13","count":"7"})",                      // wrong type
        R"({"prefix":"192.0.2.14","expires":007})",                    // leading zeros
        R"({"prefix":"192.0.2.15","expires":99999999999999999999})",   // huge
        R"({"prefix":"192.0.2.16"} )",                                 // trailing space
        R"({"prefix":"192.0.2.17"}garbage)",
        R"({"prefix":"192.0.2.18")",                                   // truncated
        R"({"prefix":"192.0.2.19","origin":"caf)" "Ã©" R"("})",   // UTF-8
        R"({"prefix":"not an address"})",
        R"({"origin":"admin"})",
        R"({})",
        R"([1,2])",
        "not json at all",
        R"({"prefix":"192.0.2.20/24"})",                               // host bits: cleared
        R"({"prefix":"2001:db8::1","ended":"evicted"})",
        R"({"prefix":"192.0.2.21","last_proto":null})",
    };
    for (const auto& line : lines) {
        SCOPED_TRACE(line);
        auto ref = nlohmann_record(line);
        if (auto fast = daemon::parse_record_line(line)) {
            ASSERT_TRUE(ref.has_value()) << "fast path took a line JSON refuses";
            expect_same_record(*fast, *ref);
        }
    }
    // The whole file: the same records, the same lines warned about.
    TempDir d;
    const std::string path = (d.path / "state").string();
    {
        std::ofstream out(path);
        out << BanStore::header();
        for (const auto& line : lines) out << line << "\n";
    }
    BanStore b(path);
    std::vector<std::string> warnings;
    b.load(&warnings);
    size_t good = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
        SCOPED_TRACE(lines[i]);
        auto ref = nlohmann_record(lines[i]);
        if (!ref) {
            const std::string at = path + ":" + std::to_string(i + 2) + ":";
            EXPECT_TRUE(std::any_of(warnings.begin(), warnings.end(),
                                    [&](const std::string& w) { return w.rfind(at, 0) == 0; }));
            continue;
        }
        ++good;
        const auto* got = b.find(ref->prefix);
        ASSERT_NE(got, nullptr);
        expect_same_record(*got, *ref);
    }
    EXPECT_EQ(b.records().size(), good);
    EXPECT_EQ(warnings.size(), lines.size() - good);
}

// The progress callback runs every kLoadSlice lines and may stop the load
// (start-up's SIGTERM check).
TEST(BanStore, LoadCallsProgressAndStopsWhenItThrows) {
    TempDir d;
    BanStore a((d.path / "state").string());
    for (uint32_t i = 0; i < 2 * BanStore::kLoadSlice + 10; ++i)
        a.record_ban(net::Cidr::host(net::IpAddr::v4(0xC6120000u + i)), "detector", 1, 0);
    a.save();
    BanStore b(a.path());
    int calls = 0;
    b.load(nullptr, [&] { ++calls; });
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(b.records().size(), a.records().size());
    struct Stop {};
    EXPECT_THROW(b.load(nullptr, [] { throw Stop{}; }), Stop);
}

TEST(BanStore, SaveLoadRoundTripKeepsEveryField) {
    TempDir d;
    BanStore a((d.path / "state").string());
    daemon::BanRecord r;
    r.prefix = cidr("198.51.100.2");
    r.origin = "detector";
    r.first_seen = 1000;
    r.last_seen = 2000;
    r.expires = 0;
    r.count = 3;
    r.last_port = 995;
    r.last_proto = "TCP";
    r.last_type = "TCP SYN/Normal scan";
    a.put(r);
    put_expiring(a, "2001:db8:1::/64", 5000);
    a.save();

    BanStore b(a.path());
    b.load();
    ASSERT_EQ(b.records().size(), 2u);
    const auto* x = b.find(cidr("198.51.100.2"));
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->origin, "detector");
    EXPECT_EQ(x->first_seen, 1000);
    EXPECT_EQ(x->last_seen, 2000);
    EXPECT_EQ(x->count, 3u);
    EXPECT_EQ(x->last_port, 995);
    EXPECT_EQ(x->last_type, "TCP SYN/Normal scan");
    ASSERT_NE(b.find(cidr("2001:db8:1::/64")), nullptr);
    EXPECT_EQ(b.find(cidr("2001:db8:1::/64"))->expires, 5000);
    EXPECT_FALSE(fs::exists(a.path() + ".tmp"));
}


// serialize() quotes plain strings itself and hands the rest to nlohmann:
// a quote, a backslash, a control character or invalid UTF-8 in a field
// (an origin given on the control socket) must still load back.
TEST(BanStore, SerializeEscapesWhatIsNotPlainAscii) {
    TempDir d;
    BanStore a((d.path / "state").string());
    daemon::BanRecord r;
    r.prefix = cidr("198.51.100.7");
    r.origin = "ad\"min\\x\n\ty";
    r.last_type = "caf\xc3\xa9";          // valid UTF-8
    r.last_proto = std::string("T\xffP");  // invalid UTF-8: replaced, not thrown
    r.ended = "evicted";
    a.put(r);
    a.save();

    BanStore b(a.path());
    std::vector<std::string> warnings;
    b.load(&warnings);
    EXPECT_TRUE(warnings.empty());
    const auto* x = b.find(cidr("198.51.100.7"));
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->origin, "ad\"min\\x\n\ty");
    EXPECT_EQ(x->last_type, "caf\xc3\xa9");
    EXPECT_EQ(x->last_proto, "T\xef\xbf\xbdP");  // U+FFFD
    EXPECT_EQ(x->ended, "evicted");
}

TEST(BanStore, SerializeIsWhatSaveWrites) {
    TempDir d;
    BanStore a((d.path / "state").string());
    a.record_ban(cidr("198.51.100.8"), "admin", 100, 60);
    a.record_ban(cidr("2001:db8:5::/64"), "detector", 100, 0);
    a.save();
    std::ifstream in(a.path());
    std::string disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A fresh file: generation 1 (above any journal; none here).
    EXPECT_EQ(disk, BanStore::snapshot_header(1) + a.serialize().substr(BanStore::header().size()));
    EXPECT_EQ(std::count(disk.begin(), disk.end(), '\n'), 4);  // comment, generation + 2 records
}

// The daemon serializes a big table in slices between packet batches.
TEST(BanStore, SlicesConcatenateToTheWholeFile) {
    BanStore a("/nonexistent/state");
    for (int i = 1; i <= 25; ++i) a.record_ban(cidr(("198.51.100." + std::to_string(i)).c_str()), "detector", 100, 60);
    for (size_t slice : {1u, 2u, 7u, 25u, 1000u}) {
        std::string out(BanStore::header());
        std::optional<net::Cidr> cursor;
        int calls = 1;
        while (!a.serialize_some(out, cursor, slice)) ++calls;
        EXPECT_EQ(out, a.serialize()) << "slice " << slice;
        EXPECT_EQ(calls, static_cast<int>((25 + slice - 1) / slice)) << "slice " << slice;
        EXPECT_FALSE(cursor.has_value());
    }
    std::string out(BanStore::header());
    std::optional<net::Cidr> cursor;
    EXPECT_TRUE(BanStore("/x").serialize_some(out, cursor, 10));  // empty table: done at once
    EXPECT_EQ(out, BanStore::header());
}

TEST(BanStore, SlicesSurviveChangesBetweenCalls) {
    BanStore a("/nonexistent/state");
    for (int i = 10; i < 20; ++i) a.record_ban(cidr(("198.51.100." + std::to_string(i)).c_str()), "detector", 100, 60);
    std::string out;
    std::optional<net::Cidr> cursor;
    ASSERT_FALSE(a.serialize_some(out, cursor, 3));  // .10 .11 .12; cursor at .13
    ASSERT_TRUE(cursor.has_value());
    EXPECT_EQ(cursor->to_string(), "198.51.100.13");
    a.erase(cidr("198.51.100.13"));                              // the cursor's own record goes
    a.record_ban(cidr("198.51.100.2"), "detector", 100, 60);     // behind the cursor: next pass
    a.record_ban(cidr("198.51.100.15"), "admin", 200, 60);       // ahead of it: this pass, as it is now
    a.record_ban(cidr("198.51.100.200"), "detector", 100, 60);   // new, ahead
    while (!a.serialize_some(out, cursor, 3)) {
    }
    EXPECT_EQ(out.find("\"198.51.100.2\""), std::string::npos);
    EXPECT_EQ(out.find("\"198.51.100.13\""), std::string::npos);
    EXPECT_NE(out.find("\"198.51.100.200\""), std::string::npos);
    EXPECT_NE(out.find("{\"prefix\":\"198.51.100.15\",\"origin\":\"admin\""), std::string::npos);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 10);  // .10-.19 minus .13, plus .200
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(BanStore, MissingFileIsEmptyAndMalformedLinesAreSkippedWithLocation) {
    TempDir d;
    BanStore s((d.path / "none").string());
    s.load();
    EXPECT_TRUE(s.records().empty());

    auto p = d.path / "state";
    std::ofstream(p) << "# comment\n{\"prefix\":\"192.0.2.1\",\"expires\":0}\nnot json\n{\"prefix\":\"999.1.1.1\"}\n";
    BanStore t(p.string());
    std::vector<std::string> warnings;
    t.load(&warnings);
    EXPECT_EQ(t.records().size(), 1u);
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_NE(warnings[0].find(":3: skipped malformed"), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[1].find(":4: skipped malformed"), std::string::npos) << warnings[1];
}

TEST(BanStore, EndedBansAreRememberedForKeepForThenForgotten) {
    BanStore s("/nonexistent/state");
    put_expiring(s, "192.0.2.1", 100);
    put_expiring(s, "192.0.2.2", 0);
    EXPECT_TRUE(s.find(cidr("192.0.2.1"))->active(99));
    EXPECT_FALSE(s.find(cidr("192.0.2.1"))->active(100));  // expires: first second the ban no longer holds
    // Ended at 100, remembered 50 s: still there at 149, gone at 150.
    EXPECT_EQ(s.forget(149, 50, 1000), 0u);
    ASSERT_NE(s.find(cidr("192.0.2.1")), nullptr);
    EXPECT_EQ(s.forget(150, 50, 1000), 1u);
    EXPECT_EQ(s.find(cidr("192.0.2.1")), nullptr);
    EXPECT_NE(s.find(cidr("192.0.2.2")), nullptr);  // permanent: never forgotten
}

TEST(BanStore, HistoryIsBoundedLongestEndedGoFirst) {
    BanStore s("/nonexistent/state");
    put_expiring(s, "192.0.2.1", 10);
    put_expiring(s, "192.0.2.2", 30);
    put_expiring(s, "192.0.2.3", 20);
    put_expiring(s, "192.0.2.4", 1000);  // active at 100: not history
    EXPECT_EQ(s.forget(100, 10000, 3), 0u);       // 3 ended, max 3
    EXPECT_EQ(s.forget(100, 10000, 1), 2u);       // keep the one that ended last
    EXPECT_EQ(s.find(cidr("192.0.2.1")), nullptr);
    EXPECT_EQ(s.find(cidr("192.0.2.3")), nullptr);
    EXPECT_NE(s.find(cidr("192.0.2.2")), nullptr);
    EXPECT_NE(s.find(cidr("192.0.2.4")), nullptr);
}

TEST(BanStore, RebanOfRememberedOffenderCountsOnAndClearsEnded) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("192.0.2.9"), "detector", 100, 60);
    s.end_ban(cidr("192.0.2.9"), 120, "evicted");
    const auto* r = s.find(cidr("192.0.2.9"));
    EXPECT_FALSE(r->active(120));
    EXPECT_EQ(r->ended, "evicted");
    EXPECT_EQ(s.active_count(AF_INET, 120), 0u);
    s.record_ban(cidr("192.0.2.9"), "detector", 500, 240);
    r = s.find(cidr("192.0.2.9"));
    EXPECT_EQ(r->count, 2u);
    EXPECT_TRUE(r->active(500));
    EXPECT_EQ(r->ended, "");
    EXPECT_EQ(r->expires, 740);
}

TEST(BanStore, OldestActivePrefersDetectorBansAndSkipsSpare) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("192.0.2.1"), "admin", 10, 0);
    s.record_ban(cidr("192.0.2.2"), "detector", 20, 0);
    s.record_ban(cidr("192.0.2.3"), "detector", 30, 0);
    s.record_ban(cidr("192.0.2.4"), "detector", 5, 1);  // ended at 6
    s.record_ban(cidr("2001:db8::1"), "detector", 1, 0);
    ASSERT_NE(s.oldest_active(AF_INET, 100), nullptr);
    EXPECT_EQ(s.oldest_active(AF_INET, 100)->prefix, cidr("192.0.2.2"));  // admin's older ban is spared
    EXPECT_EQ(s.oldest_active(AF_INET, 100, {cidr("192.0.2.2")})->prefix, cidr("192.0.2.3"));
    // Only an admin ban left: it goes rather than refusing the new ban.
    EXPECT_EQ(s.oldest_active(AF_INET, 100, {cidr("192.0.2.2"), cidr("192.0.2.3")})->prefix, cidr("192.0.2.1"));
    EXPECT_EQ(s.oldest_active(AF_INET6, 100)->prefix, cidr("2001:db8::1"));
    EXPECT_EQ(s.active_count(AF_INET, 100), 3u);
    // The whole order (what a state larger than the set is trimmed by).
    auto order = s.eviction_order(AF_INET, 100, 10);
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order[0]->prefix, cidr("192.0.2.2"));
    EXPECT_EQ(order[1]->prefix, cidr("192.0.2.3"));
    EXPECT_EQ(order[2]->prefix, cidr("192.0.2.1"));
    EXPECT_EQ(s.eviction_order(AF_INET, 100, 2).size(), 2u);
}

TEST(BanStore, EraseWithinLiftsThePrefixAndEverythingInsideOnly) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("198.51.100.0/24"), "admin", 10, 0);
    s.record_ban(cidr("198.51.100.0/25"), "admin", 10, 0);
    s.record_ban(cidr("198.51.100.5"), "detector", 10, 0);
    s.record_ban(cidr("198.51.100.255"), "detector", 10, 5);  // ended: history, erased silently
    s.record_ban(cidr("198.51.101.0"), "detector", 10, 0);    // next /24: untouched
    s.record_ban(cidr("198.51.0.0/16"), "admin", 10, 0);      // wider: untouched
    auto lifted = s.erase_within(cidr("198.51.100.0/25"), 100);
    ASSERT_EQ(lifted.size(), 2u);
    EXPECT_EQ(lifted[0], cidr("198.51.100.0/25"));
    EXPECT_EQ(lifted[1], cidr("198.51.100.5"));
    EXPECT_NE(s.find(cidr("198.51.100.0/24")), nullptr) << "a wider ban at the same address stays";
    EXPECT_NE(s.find(cidr("198.51.100.255")), nullptr) << "outside the /25";
    lifted = s.erase_within(cidr("198.51.100.0/24"), 100);
    ASSERT_EQ(lifted.size(), 1u);  // the /24 itself; .255 was history
    EXPECT_EQ(s.find(cidr("198.51.100.255")), nullptr);
    EXPECT_NE(s.find(cidr("198.51.101.0")), nullptr);
    EXPECT_NE(s.find(cidr("198.51.0.0/16")), nullptr);
    EXPECT_TRUE(s.erase_within(cidr("192.0.2.1"), 100).empty());
}

TEST(BanStore, HostsWithinListsActiveHostBansOfOnePrefix) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("2001:db8:1:2::a"), "detector", 10, 0);
    s.record_ban(cidr("2001:db8:1:2::b"), "detector", 10, 0);
    s.record_ban(cidr("2001:db8:1:2:ffff:ffff:ffff:ffff"), "detector", 10, 0);
    s.record_ban(cidr("2001:db8:1:2::c"), "detector", 10, 5);  // ended at 15
    s.record_ban(cidr("2001:db8:1:3::a"), "detector", 10, 0);  // next /64
    s.record_ban(cidr("2001:db8:1:1:ffff:ffff:ffff:ffff"), "detector", 10, 0);  // previous /64
    s.record_ban(cidr("2001:db8:1:2::/64"), "detector", 10, 0);  // a prefix, not a host
    auto h = s.hosts_within(cidr("2001:db8:1:2::/64"), 100);
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0], cidr("2001:db8:1:2::a"));
    EXPECT_EQ(h[2], cidr("2001:db8:1:2:ffff:ffff:ffff:ffff"));
}

TEST(BanStore, CoveringFindsHostOrPrefix) {
    BanStore s("/nonexistent/state");
    put_expiring(s, "2001:db8:1::/64", 0);
    put_expiring(s, "198.51.100.7", 50);
    auto a6 = *net::IpAddr::parse("2001:db8:1::99");
    ASSERT_NE(s.covering(a6, 10), nullptr);
    EXPECT_EQ(s.covering(a6, 10)->prefix, cidr("2001:db8:1::/64"));
    EXPECT_EQ(s.covering(*net::IpAddr::parse("2001:db8:2::1"), 10), nullptr);
    EXPECT_NE(s.covering(*net::IpAddr::parse("198.51.100.7"), 49), nullptr);
    EXPECT_EQ(s.covering(*net::IpAddr::parse("198.51.100.7"), 50), nullptr);  // expired
}

TEST(LockFile, SecondHolderIsRefused) {
    TempDir d;
    auto path = (d.path / "lock").string();
    auto a = daemon::LockFile::acquire(path, false);
    ASSERT_TRUE(a.locked());
    auto b = daemon::LockFile::acquire(path, false);
    EXPECT_FALSE(b.locked());
    a = daemon::LockFile{};
    EXPECT_TRUE(daemon::LockFile::acquire(path, false).locked());
}

TEST(Control, RequestReplyRoundTripAndNoDaemon) {
    // The server answers uid 0 only (SO_PEERCRED): as anyone else the round
    // trip is the refusal (dh_auto_test runs the suite unprivileged).
    if (::geteuid() != 0) GTEST_SKIP() << "the control socket serves uid 0 only";
    TempDir d;
    auto path = (d.path / "ctl.sock").string();
    EXPECT_FALSE(daemon::control_request(path, "status").has_value());  // nobody listens

    daemon::ControlServer server(path);
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write)
        << "control socket must be 0600";
    std::string seen;
    std::thread t([&] {
        // the server socket is non-blocking: wait for the client
        for (int i = 0; i < 200 && seen.empty(); ++i) {
            server.serve_one([&](const std::string& req) {
                seen = req;
                return daemon::ControlReply{1, "error: refusing\n"};
            });
            if (seen.empty()) ::usleep(10000);
        }
    });
    auto r = daemon::control_request(path, "ban 192.0.2.1");
    t.join();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(seen, "ban 192.0.2.1");
    EXPECT_EQ(r->status, 1);
    EXPECT_EQ(r->text, "error: refusing\n");
}

TEST(BanStore, RecordBanCountsKeepsFirstSeenAndSetsExpiry) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("192.0.2.1"), "detector", 100, 3600);
    auto& r = s.record_ban(cidr("192.0.2.1"), "admin", 200, 0);
    EXPECT_EQ(r.first_seen, 100);
    EXPECT_EQ(r.last_seen, 200);
    EXPECT_EQ(r.count, 2u);
    EXPECT_EQ(r.origin, "admin");
    EXPECT_EQ(r.expires, 0);  // permanent
    EXPECT_EQ(s.record_ban(cidr("192.0.2.2"), "fail2ban", 50, 10).expires, 60);
}
