// ResponseWorker: the 1.2 responses off the packet thread. A real Loop, a
// real Responder writing into a temp dir, real commands; the "packet thread"
// is the test thread calling submit() and running the loop.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "daemon_test_util.hpp"
#include "portsentry/daemon/responses.hpp"

using namespace portsentry;
using namespace portsentry::daemon;
using namespace std::chrono_literals;
using Outcome = engine::Decision::Outcome;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string read_file(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

actions::Report report(const char* src, bool ban, bool run_cmd) {
    actions::Report r;
    r.src = pstest::ip(src);
    r.port = 995;
    r.tcp_flags = 0x02;
    r.mode = "atcp";
    r.d.outcome = Outcome::reported;
    r.d.block = 1;
    r.d.verdict = engine::Verdict::drop;
    r.d.ban = ban;
    r.d.run_cmd = run_cmd;
    r.d.ban_time = 60s;
    return r;
}

// Runs the loop until `done()` or `limit`; a 10 ms timer checks.
void run_until(Loop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit) {
    base::UniqueFd t(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    itimerspec its{{0, 10000000}, {0, 10000000}};
    ::timerfd_settime(t.get(), 0, &its, nullptr);
    const auto end = SteadyClock::now() + limit;
    loop.add(t.get(), "test timer", [&](const Now&) {
        uint64_t n;
        (void)!::read(t.get(), &n, sizeof n);
        if (done() || SteadyClock::now() >= end) loop.stop();
    });
    loop.run();
    loop.remove(t.get());
}

class ResponsesTest : public ::testing::Test {
protected:
    void SetUp() override {
        cfg.tcp.mode = config::Mode::advanced;
        cfg.history_file = dir.path / "history";
        cfg.blocked_file = dir.path / "blocked";
        cfg.hosts_deny_file = dir.path / "hosts.deny";
    }
    void start(ResponseWorker::Options o = {}) {
        responder = std::make_unique<actions::Responder>(cfg, log, ropts);
        worker = std::make_unique<ResponseWorker>(
            loop, *responder, log,
            [this](const actions::Report& r, const Now&) {
                bans.push_back(r.src.to_string());
                if (on_ban) on_ban();
                return BanManager::Installed{120s, ""};
            },
            [this](const ResponseWorker::Done& d, const Now&) { dones.push_back(d); }, o);
    }
    void TearDown() override {
        worker.reset();
        responder.reset();
    }
    // A script: sleeps `secs`, then creates the file named by $1.
    std::string slow_script(const char* secs) {
        const std::string p = dir.path / "slow.sh";
        std::ofstream(p) << "#!/bin/sh\nsleep " << secs << "\n: > \"$1\"\n";
        ::chmod(p.c_str(), 0755);
        return p;
    }

    pstest::TempDir dir;
    config::Config cfg;
    std::vector<std::string> lines;
    actions::Log log{actions::LogOptions{false, false, 1e6, 1e6}, [this](std::string_view l) {
                         std::lock_guard lk(lines_mu);
                         lines.emplace_back(l);
                     }};
    std::mutex lines_mu;
    actions::ResponderOptions ropts;
    Loop loop;
    std::unique_ptr<actions::Responder> responder;
    std::unique_ptr<ResponseWorker> worker;
    std::vector<std::string> bans;
    std::function<void()> on_ban;
    std::vector<ResponseWorker::Done> dones;
};

}  // namespace

// RESOLVE_HOST against a resolver that takes 300 ms: submit() returns at
// once (the packet thread never waits); the records appear in order.
TEST_F(ResponsesTest, SlowResolverDoesNotDelayTheCaller) {
    cfg.resolve_host = true;
    ropts.resolver.timeout = 500ms;
    ropts.resolver.workers = 4;
    ropts.resolver.per_second = 100;
    ropts.lookup = [](const net::IpAddr&) -> std::optional<std::string> {
        std::this_thread::sleep_for(300ms);
        return "slow.example";
    };
    start();
    const auto t0 = SteadyClock::now();
    const char* hosts[] = {"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"};
    for (const char* h : hosts) ASSERT_TRUE(worker->submit({report(h, false, false), "", false}));
    EXPECT_LT(SteadyClock::now() - t0, 50ms);
    run_until(loop, [&] { return dones.size() == 4; }, 10s);
    ASSERT_EQ(dones.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(dones[i].rep.src.to_string(), hosts[i]);
    const std::string h = read_file(cfg.history_file);
    ASSERT_EQ(count_lines(h), 4u);
    EXPECT_LT(h.find("198.51.100.1 Port"), h.find("198.51.100.4 Port"));
}

// KILL_RUN_CMD_FIRST: the command completes before the ban, which the loop
// makes when the worker asks; submit() does not wait for any of it, and the
// loop keeps turning meanwhile (the test timer runs).
TEST_F(ResponsesTest, RunCmdFirstBansAfterTheCommandWithoutHoldingTheLoop) {
    const std::string flag = dir.path / "done";
    cfg.kill_run_cmd = slow_script("0.3") + " " + flag;
    cfg.kill_run_cmd_first = true;
    bool done_at_ban = false;
    on_ban = [&] { done_at_ban = ::access(flag.c_str(), F_OK) == 0; };
    start();
    const auto t0 = SteadyClock::now();
    ASSERT_TRUE(worker->submit({report("198.51.100.7", true, true), "", true}));
    // A second host's report, queued behind: order is kept.
    ASSERT_TRUE(worker->submit({report("198.51.100.8", true, false), "", false}));
    EXPECT_LT(SteadyClock::now() - t0, 50ms);
    int turns = 0;
    run_until(loop, [&] { return ++turns, dones.size() == 2; }, 10s);
    ASSERT_EQ(dones.size(), 2u);
    EXPECT_GE(turns, 20);  // the loop kept turning (10 ms timer) while the command ran
    EXPECT_EQ(bans, std::vector<std::string>{"198.51.100.7"});  // only the deferred one asks the loop
    EXPECT_TRUE(done_at_ban);
    EXPECT_TRUE(dones[0].res.banned);
    EXPECT_EQ(dones[0].rep.d.ban_time, 120s);  // as the loop's ban escalated it
    EXPECT_EQ(dones[1].rep.src.to_string(), "198.51.100.8");
    std::lock_guard lk(lines_mu);
    // Per host: scan line, command, ban; then the next host.
    ASSERT_GE(lines.size(), 5u);
    EXPECT_NE(lines[0].find("scan from host: 198.51.100.7"), std::string::npos);
    EXPECT_NE(lines[1].find("External command run for host: 198.51.100.7"), std::string::npos);
    EXPECT_NE(lines[2].find("198.51.100.7 has been blocked via nft"), std::string::npos);
    EXPECT_NE(lines[3].find("scan from host: 198.51.100.8"), std::string::npos);
}

// A full queue refuses, counts, and says so in one summary line per interval
// naming the hosts whose history record was not written.
TEST_F(ResponsesTest, OverflowIsCountedAndSummarised) {
    cfg.resolve_host = true;
    ropts.lookup = [](const net::IpAddr&) -> std::optional<std::string> {
        std::this_thread::sleep_for(200ms);
        return std::nullopt;
    };
    ResponseWorker::Options o;
    o.capacity = 2;
    start(o);
    ASSERT_TRUE(worker->submit({report("198.51.100.1", false, false), "", false}));
    std::this_thread::sleep_for(50ms);  // the worker took it and waits for the resolver
    ASSERT_TRUE(worker->submit({report("198.51.100.2", false, false), "", false}));
    ASSERT_TRUE(worker->submit({report("198.51.100.3", false, false), "", false}));
    EXPECT_FALSE(worker->submit({report("198.51.100.4", false, false), "", false}));
    EXPECT_FALSE(worker->submit({report("198.51.100.5", false, false), "", false}));
    EXPECT_EQ(worker->counters().overflow.value(), 2u);
    const Now now = Now::read();
    worker->tick(now);
    worker->tick(now);  // at most one summary per interval
    run_until(loop, [&] { return dones.size() == 3; }, 10s);
    log.sync();
    std::lock_guard lk(lines_mu);
    size_t summaries = 0;
    for (const auto& l : lines)
        if (l.find("response queue full") != std::string::npos) {
            ++summaries;
            EXPECT_NE(l.find("2 reports dropped: no history record"), std::string::npos) << l;
            EXPECT_NE(l.find(" 198.51.100.4 198.51.100.5"), std::string::npos) << l;
        }
    EXPECT_EQ(summaries, 1u);
    EXPECT_EQ(count_lines(read_file(cfg.history_file)), 3u);
}

// Drain: idle() turns true once queued responses and their commands are
// done; stop() interrupts a KILL_RUN_CMD_FIRST wait at once.
TEST_F(ResponsesTest, DrainsAndStopsWithinTheDeadline) {
    cfg.kill_run_cmd = "sleep 0.4";
    start();
    bool idle_seen = false;
    worker->on_idle([&] { idle_seen = true; });
    const auto t0 = SteadyClock::now();
    ASSERT_TRUE(worker->submit({report("198.51.100.1", false, true), "", false}));
    run_until(loop, [&] { return idle_seen; }, 5s);
    const auto took = SteadyClock::now() - t0;
    EXPECT_TRUE(idle_seen);
    EXPECT_TRUE(worker->idle());
    EXPECT_GE(took, 400ms);  // the command was waited for...
    EXPECT_LT(took, 1500ms);  // ...and noticed within a tick or so

    // A KILL_RUN_CMD_FIRST command of 30 s (limit 10 s) is interrupted by stop().
    worker.reset();
    cfg.kill_run_cmd = "sleep 30";
    cfg.kill_run_cmd_first = true;
    cfg.run_cmd_timeout = 10s;
    start();
    ASSERT_TRUE(worker->submit({report("198.51.100.2", true, true), "", true}));
    std::this_thread::sleep_for(100ms);
    const auto t1 = SteadyClock::now();
    worker.reset();
    EXPECT_LT(SteadyClock::now() - t1, 1s);
}

// Ban-ended notices reach hosts.deny in order with the jobs, and are never
// refused by a full queue.
TEST_F(ResponsesTest, BanEndedRemovesTheHostsDenyLine) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    // the default interval: the first clean-up is not delayed by it
    start();
    auto r = report("198.51.100.9", false, false);
    r.d.hosts_deny = true;
    ASSERT_TRUE(worker->submit({r, "", false}));
    worker->ban_ended(pstest::ip("198.51.100.9"));
    run_until(loop, [&] { return dones.size() == 1 && read_file(cfg.hosts_deny_file).empty() && worker->idle(); },
              5s);
    EXPECT_EQ(read_file(cfg.hosts_deny_file), "");
    EXPECT_EQ(responder->hosts_deny_file().counters().lines_removed.value(), 1u) << ::testing::PrintToString(lines);
}

// Start-up after a restart: the adoption runs on the worker, in order with
// the notices queued after it, so an unban right after start removes the
// line the daemon wrote before the restart.
TEST_F(ResponsesTest, RestoredBanLineAdoptedThenRemovedWhenUnbanned) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    {
        std::ofstream out(cfg.hosts_deny_file);
        out << "sshd: 192.0.2.66\nALL: 198.51.100.9\n";
    }
    start();
    worker->adopt_hosts_deny({{pstest::ip("198.51.100.9"), net::L4::tcp, 995, 0}});
    worker->ban_ended(pstest::ip("198.51.100.9"));
    run_until(loop, [&] { return read_file(cfg.hosts_deny_file) == "sshd: 192.0.2.66\n" && worker->idle(); }, 5s);
    EXPECT_EQ(read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\n");
    EXPECT_EQ(responder->hosts_deny_file().counters().lines_removed.value(), 1u) << ::testing::PrintToString(lines);
}
