// KILL_RUN_CMD / custom KILL_ROUTE: word splitting, macro expansion, and real
// exec'd children — hostile hostnames arrive as one inert argv word, no shell
// ever sees them; time limits and reaping work on real processes.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "portsentry/actions/command.hpp"
#include "test_util.hpp"

using namespace portsentry::actions;
using namespace std::chrono_literals;

namespace {

using Words = std::vector<std::string>;

// The NUL-separated argv written by the record_argv helper.
Words recorded(const std::string& path) {
    Words out;
    std::string s = pstest::read_file(path), cur;
    for (char c : s) {
        if (c == '\0') out.push_back(std::exchange(cur, {}));
        else cur.push_back(c);
    }
    return out;
}

// Reaps with the real clock until nothing runs (bounded).
bool wait_all(CommandRunner& r, std::chrono::milliseconds limit = 5s) {
    auto end = Clock::now() + limit;
    while (r.in_flight() > 0 && Clock::now() < end) {
        r.reap();
        std::this_thread::sleep_for(10ms);
    }
    return r.in_flight() == 0;
}

const char* kHostile[] = {
    ";rm -rf /",
    "$(touch CANARY)",
    "`touch CANARY`",
    "a b\tc",
    "x\"y'z",
    "$TARGET$",  // must not be expanded a second time
    "*",
    "-rf",
};

}  // namespace

// ------------------------------------------------------------------ splitting

TEST(ExpandMacros, AllMacrosOnePass) {
    Macros m{"198.51.100.2", "995", "atcp", "$TARGET$.example.net"};
    int targets = -1;
    EXPECT_EQ(expand_macros("$TARGET$:$PORT$/$MODE$ $HOST$ $OTHER$ $", m, &targets),
              "198.51.100.2:995/atcp $TARGET$.example.net $OTHER$ $");
    EXPECT_EQ(targets, 1);  // the $TARGET$ inside the hostname was not expanded
    EXPECT_EQ(expand_macros("$TARGET$$TARGET$", m, &targets), "198.51.100.2198.51.100.2");
    EXPECT_EQ(targets, 2);
}

TEST(BuildArgv, HostileHostStaysOneWord) {
    for (const char* host : kHostile) {
        Macros m{"203.0.113.7", "22", "stcp", host};
        std::string err;
        auto argv = build_argv("/usr/local/bin/notify --host=$HOST$ $TARGET$ \"$HOST$\"", m, &err);
        ASSERT_TRUE(argv) << err;
        EXPECT_EQ(*argv, (Words{"/usr/local/bin/notify", std::string("--host=") + host, "203.0.113.7", host}))
            << host;
    }
}

TEST(ArgvForLog, QuotesAndEscapes) {
    EXPECT_EQ(argv_for_log({"/bin/notify", "198.51.100.2", "a b", "", "q\"x", "nl\n"}),
              "/bin/notify 198.51.100.2 \"a b\" \"\" \"q\\\"x\" nl\\x0a");
}

// ------------------------------------------------------------------ real children

TEST(CommandRunner, HostileHostnamesReachArgvInertNoShell) {
    pstest::TempDir d;
    pstest::CapturedLog cl;
    CommandRunner runner(cl.log, CommandOptions{});
    const std::string canary = d / "CANARY";
    const std::string cwd = std::filesystem::current_path();
    ASSERT_EQ(chdir(d.path().c_str()), 0);  // `touch CANARY`, if a shell ran it, would land here
    int i = 0;
    for (const char* host : kHostile) {
        const std::string out = d / ("argv" + std::to_string(i++));
        Macros m{"203.0.113.7", "22", "atcp", host};
        std::string err;
        auto argv = build_argv(std::string(RECORD_ARGV) + " " + out + " $HOST$ $TARGET$ $PORT$ $MODE$", m, &err);
        ASSERT_TRUE(argv) << err;
        ASSERT_EQ(runner.start(*argv, "203.0.113.7"), "");
        ASSERT_TRUE(wait_all(runner));
        EXPECT_EQ(recorded(out), (Words{host, "203.0.113.7", "22", "atcp"})) << host;
    }
    ASSERT_EQ(chdir(cwd.c_str()), 0);
    EXPECT_NE(access(canary.c_str(), F_OK), 0) << "a shell interpreted the hostname";
    EXPECT_EQ(runner.counters().exited_ok, std::size(kHostile));
    EXPECT_EQ(runner.counters().exited_failed, 0u);
}

TEST(CommandRunner, SystemPrintfSeesOneArgumentPerWord) {
    pstest::TempDir d;
    pstest::CapturedLog cl;
    CommandOptions o;
    o.output_file = d / "out";
    CommandRunner runner(cl.log, o);
    Macros m{"203.0.113.7", "22", "atcp", "$(id) ; rm -rf / `id`"};
    std::string err;
    auto argv = build_argv("/usr/bin/printf [%s]\\n $HOST$ $TARGET$", m, &err);
    ASSERT_TRUE(argv) << err;
    ASSERT_EQ(runner.start(*argv, "203.0.113.7"), "");
    ASSERT_TRUE(wait_all(runner));
    EXPECT_EQ(pstest::read_file(d / "out"), "[$(id) ; rm -rf / `id`]\n[203.0.113.7]\n");
}

TEST(CommandRunner, StdinIsDevNull) {
    pstest::TempDir d;
    pstest::CapturedLog cl;
    CommandOptions o;
    o.output_file = d / "out";
    CommandRunner runner(cl.log, o);
    ASSERT_EQ(runner.start({"readlink", "/proc/self/fd/0"}, "192.0.2.1"), "");
    ASSERT_TRUE(wait_all(runner));
    EXPECT_EQ(pstest::read_file(d / "out"), "/dev/null\n");
}

TEST(CommandRunner, ExecFailureIsReportedAtStart) {
    pstest::CapturedLog cl;
    CommandRunner runner(cl.log, CommandOptions{});
    std::string err = runner.start({"/nonexistent/portsentry-test-cmd", "x"}, "192.0.2.1");
    EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
    EXPECT_EQ(runner.counters().spawn_failed, 1u);
    EXPECT_EQ(runner.in_flight(), 0u);
}

TEST(CommandRunner, NonZeroExitIsLogged) {
    pstest::CapturedLog cl;
    CommandRunner runner(cl.log, CommandOptions{});
    ASSERT_EQ(runner.start({"false"}, "192.0.2.1"), "");
    ASSERT_TRUE(wait_all(runner));
    EXPECT_EQ(runner.counters().exited_failed, 1u);
    ASSERT_EQ(cl.lines.size(), 1u);
    EXPECT_EQ(cl.lines[0], "adminalert: ERROR: Command for host 192.0.2.1 exited with status 1: \"false\"");
}

TEST(CommandRunner, TimeoutTerminatesEvenWithSigtermBlockedInDaemon) {
    pstest::CapturedLog cl;
    CommandOptions o;
    o.timeout = 1s;
    CommandRunner runner(cl.log, o);
    // The daemon blocks signals for signalfd; the child must not inherit that.
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    const TimePoint t0 = Clock::now();
    std::string err = runner.start({"sleep", "100"}, "192.0.2.1", t0);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ASSERT_EQ(err, "");

    runner.reap(t0 + 999ms);  // just inside the limit: left alone
    EXPECT_EQ(runner.in_flight(), 1u);
    EXPECT_EQ(runner.counters().timed_out, 0u);
    runner.reap(t0 + 1s);  // at the limit: SIGTERM
    EXPECT_EQ(runner.counters().timed_out, 1u);
    ASSERT_TRUE(wait_all(runner, 3s));
    EXPECT_EQ(runner.counters().exited_failed, 1u);
    ASSERT_EQ(cl.lines.size(), 1u);  // the timeout line; the resulting signal is not news
    EXPECT_EQ(cl.lines[0],
              "adminalert: ERROR: Command for host 192.0.2.1 timed out after 1s, terminating: \"sleep 100\"");
}

TEST(CommandRunner, SigkillAfterGraceWhenTermIgnored) {
    pstest::CapturedLog cl;
    CommandOptions o;
    o.timeout = 1s;
    o.kill_grace = 2s;
    CommandRunner runner(cl.log, o);
    const TimePoint t0 = Clock::now();
    // A command that ignores SIGTERM (and so do its children).
    ASSERT_EQ(runner.start({"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}, "192.0.2.1", t0), "");
    std::this_thread::sleep_for(300ms);  // let sh install its trap
    runner.reap(t0 + 1s);                // SIGTERM: ignored
    std::this_thread::sleep_for(200ms);
    runner.reap(t0 + 1s + 1999ms);  // grace not over: still running
    EXPECT_EQ(runner.in_flight(), 1u);
    runner.reap(t0 + 3s);  // SIGKILL to the whole process group
    auto end = Clock::now() + 3s;
    while (runner.in_flight() > 0 && Clock::now() < end) {
        runner.reap(t0 + 3s);
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(runner.in_flight(), 0u);
    EXPECT_EQ(runner.counters().timed_out, 1u);
}

TEST(CommandRunner, InFlightCapRefusesAndLogs) {
    pstest::CapturedLog cl;
    CommandOptions o;
    o.max_in_flight = 2;
    CommandRunner runner(cl.log, o);
    ASSERT_EQ(runner.start({"sleep", "100"}, "192.0.2.1"), "");
    ASSERT_EQ(runner.start({"sleep", "100"}, "192.0.2.2"), "");
    EXPECT_NE(runner.start({"sleep", "100"}, "192.0.2.3"), "");
    EXPECT_EQ(runner.counters().refused, 1u);
    ASSERT_EQ(cl.lines.size(), 1u);
    EXPECT_EQ(cl.lines[0],
              "adminalert: ERROR: 2 commands still running, not running command for host 192.0.2.3: "
              "\"sleep 100\"");
    runner.terminate_all();
    EXPECT_EQ(runner.in_flight(), 0u);
    ASSERT_EQ(runner.start({"true"}, "192.0.2.3"), "");  // room again
    EXPECT_TRUE(wait_all(runner));
}

TEST(CommandRunner, DestructorLeavesNoChild) {
    pstest::TempDir d;
    pstest::CapturedLog cl;
    CommandOptions o;
    o.output_file = d / "pid";
    {
        CommandRunner runner(cl.log, o);
        // sh prints its pid, then becomes sleep (exec keeps the pid).
        ASSERT_EQ(runner.start({"sh", "-c", "echo $$; exec sleep 100"}, "192.0.2.1"), "");
        auto end = Clock::now() + 3s;
        while (pstest::read_file(d / "pid").empty() && Clock::now() < end) std::this_thread::sleep_for(10ms);
    }
    pid_t pid = std::stoi(pstest::read_file(d / "pid"));
    EXPECT_EQ(kill(pid, 0), -1);  // killed and reaped: no such process (not even a zombie)
    EXPECT_EQ(errno, ESRCH);
}
