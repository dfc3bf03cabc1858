// The state file's journal (docs/ARCHITECTURE.md, "Files the daemon owns"):
// replay, torn and uncommitted tails, compaction, crash at every step, old
// files, and the expiry index that keeps status O(1).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon_test_util.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_saver.hpp"

namespace fs = std::filesystem;
using namespace portsentry;
using daemon::BanRecord;
using daemon::BanStore;
using daemon::StateSaver;
using pstest::cidr;
using pstest::TempDir;

namespace {

using Table = std::map<net::Cidr, BanRecord, daemon::CidrLess>;

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void append_to(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::app);
    out << s;
}

// Tables as text, for readable failures.
std::string text(const Table& t) {
    std::string out;
    for (const auto& [p, r] : t) daemon::append_record_line(out, r);
    return out;
}

Table loaded(const std::string& path, std::vector<std::string>* warnings = nullptr) {
    BanStore s(path);
    s.load(warnings);
    return s.records();
}

std::vector<uint64_t> journals(const fs::path& dir) {
    std::vector<uint64_t> g;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.starts_with("state.journal.") && n.find(".tmp") == std::string::npos)
            g.push_back(std::stoull(n.substr(14)));
    }
    std::sort(g.begin(), g.end());
    return g;
}

void drain(StateSaver& saver) {
    const auto now = StateSaver::Clock::now() + std::chrono::hours(24);
    for (int i = 0; i < 100000 && saver.pending(); ++i) saver.step(now);
}

const daemon::BanStore::Probe kProbe{22, "TCP", "TCP SYN/Normal scan"};

// Some of everything the daemon does to the table.
void churn(BanStore& s, int round) {
    const int64_t t = 1000 + round * 10;
    for (int i = 0; i < 5; ++i)
        s.record_ban(cidr("198.51.100." + std::to_string(round * 5 + i)), "detector", t, 60, &kProbe);
    s.record_ban(cidr("2001:db8:" + std::to_string(round) + "::/64"), "admin", t, 0);
    s.end_ban(cidr("198.51.100." + std::to_string(round * 5)), t + 1, "evicted");
    s.erase(cidr("198.51.100." + std::to_string(round * 5 + 1)));
    s.forget(t, 30, 1000);
}

}  // namespace

TEST(StateJournal, ChangesAreJournaledAndReplayed) {
    TempDir d;
    const std::string path = (d.path / "state").string();
    BanStore s(path);
    s.load();
    StateSaver saver(s, [](const std::string&) {}, {}, false);
    saver.start();
    for (int r = 0; r < 4; ++r) {
        churn(s, r);
        drain(saver);
    }
    EXPECT_FALSE(fs::exists(path));  // no snapshot yet: everything is in the journal
    EXPECT_EQ(journals(d.path), std::vector<uint64_t>{0});
    EXPECT_EQ(loaded(path), s.records());
    const std::string j = slurp(d.path / "state.journal.0");
    EXPECT_NE(j.find("\n+{\"prefix\":\"198.51.100.0\""), std::string::npos) << j;
    EXPECT_NE(j.find("\n-198.51.100.1\n"), std::string::npos) << j;
    EXPECT_TRUE(j.ends_with("\n.\n")) << j;
}

// A crash while appending: a torn last line, or a batch without its commit
// line; load drops both (and says so), and the next start cuts them off
// before appending.
TEST(StateJournal, TornLineAndUncommittedBatchAreDropped) {
    TempDir d;
    const std::string path = (d.path / "state").string();
    BanStore s(path);
    s.load();
    {
        StateSaver saver(s, [](const std::string&) {}, {}, false);
        saver.start();
        s.record_ban(cidr("192.0.2.1"), "admin", 100, 0);
        drain(saver);
    }
    const Table committed = s.records();
    append_to(d.path / "state.journal.0", "+{\"prefix\":\"192.0.2.2\",\"origin\":\"admin\"}\n-192.0.2.1\n+{\"pre");
    std::vector<std::string> w;
    EXPECT_EQ(loaded(path, &w), committed);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_NE(w[0].find("2 changes after the last commit dropped"), std::string::npos) << w[0];

    BanStore again(path);
    again.load();
    StateSaver saver(again, [](const std::string&) {}, {}, false);
    saver.start();
    again.record_ban(cidr("192.0.2.3"), "admin", 100, 0);
    drain(saver);
    w.clear();
    EXPECT_EQ(loaded(path, &w), again.records());
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(slurp(d.path / "state.journal.0").find("192.0.2.2"), std::string::npos);
}

TEST(StateJournal, CompactionWritesSnapshotAndDropsOldJournal) {
    TempDir d;
    const std::string path = (d.path / "state").string();
    BanStore s(path);
    s.load();
    StateSaver saver(s, [](const std::string&) {}, {}, false);
    saver.start();
    for (int r = 0; r < 3; ++r) churn(s, r);
    drain(saver);
    saver.compact_soon();
    saver.tick(StateSaver::Clock::now());
    drain(saver);
    EXPECT_EQ(saver.writer_counters().written, 1u);
    EXPECT_EQ(journals(d.path), std::vector<uint64_t>{1});  // journal 0 is in the snapshot
    EXPECT_NE(slurp(path).find("\n# generation 1\n"), std::string::npos);
    churn(s, 3);
    drain(saver);
    EXPECT_EQ(loaded(path), s.records());
    // The journal holds only what came after the compaction.
    EXPECT_EQ(slurp(d.path / "state.journal.1").find("198.51.100.0\""), std::string::npos);
}

// A crash at every step of the protocol (throwing from the hook), with a torn
// line where a batch was being written: the table loaded is the last one the
// journal committed, or the one being committed, never a mix; and a daemon
// restarted on it carries on.
TEST(StateJournal, CrashAtEveryStepRestoresACommittedTable) {
    struct Crash {};
    std::map<std::string, int> seen;  // crashes per step name
    for (int kill_at = 0;; ++kill_at) {
        SCOPED_TRACE("kill at step " + std::to_string(kill_at));
        TempDir d;
        const std::string path = (d.path / "state").string();
        BanStore s(path);
        s.load();
        Table last_committed;
        int steps = 0;
        std::string where;
        auto hook = [&](std::string_view step) {
            if (steps++ != kill_at) return;
            where = step;
            if (step == "append" && !journals(d.path).empty())  // the write began: a torn line
                append_to(d.path / ("state.journal." + std::to_string(journals(d.path).back())), "+{\"prefix\":\"19");
            throw Crash{};
        };
        bool crashed = false;
        try {
            StateSaver saver(s, [](const std::string&) {}, hook, false);
            saver.start();
            for (int r = 0; r < 6; ++r) {
                churn(s, r);
                drain(saver);
                last_committed = s.records();
                if (r == 1 || r == 3) {  // compactions, with changes while they run
                    // Past the throttle between passes: the same steps every run.
                    const auto later = StateSaver::Clock::now() + std::chrono::hours(24);
                    saver.compact_soon();
                    saver.tick(later);
                    saver.step(later);
                    s.record_ban(cidr("203.0.113." + std::to_string(r)), "fail2ban", 2000, 600);
                    drain(saver);
                    last_committed = s.records();
                }
            }
        } catch (const Crash&) {
            crashed = true;
        }
        if (!crashed) break;  // every step has been a kill point
        SCOPED_TRACE("crashed at " + where);
        // The last batch the test saw committed, or (a crash after a batch
        // that ended in a commit: the sync, or a compaction started right
        // after it) the table as it is.
        const Table got = loaded(path);
        EXPECT_TRUE(got == last_committed || got == s.records()) << text(got);
        if (where == "append") {
            EXPECT_EQ(text(got), text(last_committed));
        }
        seen[where]++;

        BanStore again(path);
        again.load();
        StateSaver saver(again, [](const std::string&) {}, {}, false);
        saver.start();
        again.record_ban(cidr("192.0.2.99"), "admin", 3000, 0);
        drain(saver);
        EXPECT_EQ(loaded(path), again.records());
        ASSERT_LT(kill_at, 1000);
    }
    for (const char* step : {"append", "append.sync", "rotate", "snapshot", "snapshot.cleanup"})
        EXPECT_GE(seen[step], step[0] == 'a' ? 8 : 2) << step;
}

// A state file written by the version before the journal: no generation
// line, no journal. It loads, and the journal starts beside it.
TEST(StateJournal, PreJournalStateFileStillLoads) {
    TempDir d;
    const std::string path = (d.path / "state").string();
    {
        std::ofstream out(path);
        out << "# portsentry-nfq ban table: one JSON object per line; edit only with the daemon stopped\n"
               "{\"prefix\":\"198.51.100.2\",\"origin\":\"detector\",\"first_seen\":1000,\"last_seen\":2000,"
               "\"expires\":0,\"count\":3,\"last_port\":995,\"last_proto\":\"TCP\",\"last_type\":\"TCP SYN/Normal scan\"}\n";
    }
    BanStore s(path);
    s.load();
    ASSERT_EQ(s.records().size(), 1u);
    EXPECT_EQ(s.on_disk().generation, 0u);
    StateSaver saver(s, [](const std::string&) {}, {}, false);
    saver.start();
    s.record_ban(cidr("192.0.2.1"), "admin", 100, 0);
    drain(saver);
    EXPECT_EQ(journals(d.path), std::vector<uint64_t>{0});
    const Table t = loaded(path);
    EXPECT_EQ(t, s.records());
    EXPECT_EQ(t.size(), 2u);
}

// Offline commands write a whole snapshot: journals below its generation are
// stale and removed; one left behind (a crash before the removal) is ignored.
TEST(StateJournal, SnapshotSupersedesOlderJournals) {
    TempDir d;
    const std::string path = (d.path / "state").string();
    BanStore s(path);
    s.load();
    {
        StateSaver saver(s, [](const std::string&) {}, {}, false);
        saver.start();
        s.record_ban(cidr("192.0.2.1"), "admin", 100, 0);
        drain(saver);
    }
    const std::string stale = slurp(d.path / "state.journal.0");
    BanStore offline(path);
    offline.load();
    offline.erase(cidr("192.0.2.1"));
    offline.save();
    EXPECT_TRUE(journals(d.path).empty());
    EXPECT_NE(slurp(path).find("\n# generation 1\n"), std::string::npos);
    std::ofstream(d.path / "state.journal.0") << stale;  // as if the removal had not happened
    EXPECT_TRUE(loaded(path).empty());
}

// active_count and forget use the expiry index; the scans they replaced are
// the reference, over random changes and a clock that also goes back.
TEST(BanStoreIndex, AgreesWithScansUnderRandomChanges) {
    BanStore s("/nonexistent/state");
    std::mt19937 rng(7);
    auto brute = [&](uint8_t fam, int64_t now) {
        size_t n = 0;
        for (const auto& [p, r] : s.records()) n += p.addr.family == fam && r.active(now);
        return n;
    };
    int64_t now = 1000;
    size_t active_seen = 0;
    for (int i = 0; i < 3000; ++i) {
        const std::string a = rng() % 2 ? "198.51.100." + std::to_string(rng() % 200)
                                        : "2001:db8::" + std::to_string(rng() % 200);
        switch (rng() % 8) {
            case 0:
            case 6:
            case 7: s.record_ban(cidr(a), "detector", now, rng() % 400, &kProbe); break;
            case 1: s.end_ban(cidr(a), now, "evicted"); break;
            case 2: s.erase(cidr(a)); break;
            case 3: now += rng() % 20; break;
            case 4: now -= rng() % 5; break;  // the wall clock set back a little
            case 5: s.forget(now, rng() % 30, 40 + rng() % 40); break;
        }
        ASSERT_EQ(s.active_count(AF_INET, now), brute(AF_INET, now)) << i;
        ASSERT_EQ(s.active_count(AF_INET6, now), brute(AF_INET6, now)) << i;
        active_seen = std::max(active_seen, brute(AF_INET, now));
    }
    EXPECT_GT(active_seen, 20u);  // the table was not trivially empty
}

TEST(BanStoreIndex, ForgetBoundsHistoryAcrossFamilies) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("192.0.2.1"), "detector", 0, 10);     // ends at 10
    s.record_ban(cidr("2001:db8::1"), "detector", 0, 20);   // ends at 20
    s.record_ban(cidr("192.0.2.2"), "detector", 0, 30);     // ends at 30
    EXPECT_EQ(s.forget(100, 1000, 1), 2u);  // the two that ended first
    EXPECT_NE(s.find(cidr("192.0.2.2")), nullptr);
}

// SIGKILL during churn, with the real writer thread: a child process bans
// host r, raises a counter record to r and erases host r-5 each round (one
// journal commit per round), compacting every 10 rounds. Whatever the moment
// of the kill, the table loaded is one round's: counter R, hosts R-4..R.
TEST(StateJournal, KillDuringChurnRestoresOneRound) {
    std::mt19937 rng(11);
    for (int attempt = 0; attempt < 8; ++attempt) {
        SCOPED_TRACE("attempt " + std::to_string(attempt));
        TempDir d;
        const std::string path = (d.path / "state").string();
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            BanStore s(path);
            s.load();
            StateSaver saver(s, [](const std::string&) {});
            saver.start();
            const auto host = [](int r) { return net::Cidr::host(net::IpAddr::v4(0xC6336400u + static_cast<uint32_t>(r))); };
            for (int r = 1;; ++r) {
                s.record_ban(host(r), "detector", 1000 + r, 0);
                daemon::BanRecord counter;
                counter.prefix = cidr("192.0.2.1");
                counter.count = static_cast<uint32_t>(r);
                s.put(counter);
                if (r > 5) s.erase(host(r - 5));
                if (r % 10 == 0) saver.compact_soon();
                saver.tick(StateSaver::Clock::now() + std::chrono::hours(r));
                drain(saver);
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 300));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        std::vector<std::string> warnings;
        const Table t = loaded(path, &warnings);
        const auto* counter = t.find(cidr("192.0.2.1")) != t.end() ? &t.at(cidr("192.0.2.1")) : nullptr;
        if (!counter) {  // killed before the first commit
            EXPECT_TRUE(t.empty());
            continue;
        }
        const int R = static_cast<int>(counter->count);
        EXPECT_EQ(t.size(), static_cast<size_t>(1 + std::min(R, 5))) << R;
        for (int r = std::max(1, R - 4); r <= R; ++r)
            EXPECT_EQ(t.count(net::Cidr::host(net::IpAddr::v4(0xC6336400u + static_cast<uint32_t>(r)))), 1u) << r;
        RecordProperty("rounds_" + std::to_string(attempt), R);
    }
}
