// Log sink: token-bucket limits at their boundary, the suppression summary,
// and the stderr-vs-journal rule.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstring>
#include <regex>

#include "portsentry/actions/log.hpp"
#include "test_util.hpp"

using namespace portsentry::actions;
using namespace std::chrono_literals;

TEST(TokenBucket, BurstThenRefillAtRate) {
    TokenBucket b(3, 2);  // 3 back to back, then 2 per second
    const TimePoint t0{};
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.take(t0));          // burst spent
    EXPECT_FALSE(b.take(t0 + 499ms));  // 0.998 tokens: not yet
    EXPECT_TRUE(b.take(t0 + 500ms));   // exactly one token after 1/rate
    EXPECT_FALSE(b.take(t0 + 500ms));
    // A long pause refills only up to the burst.
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_FALSE(b.take(t0 + 1h));
}

TEST(TokenBucket, WouldAllowConsumesNothing) {
    TokenBucket b(1, 1);
    const TimePoint t0{};
    EXPECT_TRUE(b.would_allow(t0));
    EXPECT_TRUE(b.would_allow(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.would_allow(t0));
}

TEST(Log, StderrOnlyInForegroundOutsideJournal) {
    EXPECT_TRUE(stderr_wanted(true, nullptr));
    EXPECT_TRUE(stderr_wanted(true, ""));
    EXPECT_FALSE(stderr_wanted(true, "8:123456"));  // systemd captures stderr already
    EXPECT_FALSE(stderr_wanted(false, nullptr));
}

TEST(Log, FloodIsCappedAndSummarisedOnce) {
    pstest::CapturedLog cl(/*burst=*/3, /*per_second=*/1);
    const TimePoint t0{};
    for (int i = 0; i < 10; ++i) cl.log.write("attackalert: line " + std::to_string(i), t0);
    ASSERT_EQ(cl.lines.size(), 3u);
    EXPECT_EQ(cl.lines[2], "attackalert: line 2");
    EXPECT_EQ(cl.log.counters().suppressed, 7u);

    // Recovery: the next line that passes is preceded by exactly one summary.
    cl.log.write("attackalert: after", t0 + 1s);
    ASSERT_EQ(cl.lines.size(), 5u);
    EXPECT_EQ(cl.lines[3], "adminalert: Rate limit: 7 log lines suppressed");
    EXPECT_EQ(cl.lines[4], "attackalert: after");
    EXPECT_EQ(cl.log.counters().summaries, 1u);
    EXPECT_EQ(cl.log.counters().written, 5u);
}

TEST(Log, FlushReportsSuppressionWithoutAFurtherLine) {
    pstest::CapturedLog cl(1, 1);
    const TimePoint t0{};
    cl.log.write("a", t0);
    cl.log.write("b", t0);
    cl.log.flush(t0);  // bucket still empty: nothing yet
    ASSERT_EQ(cl.lines.size(), 1u);
    cl.log.flush(t0 + 1s);
    ASSERT_EQ(cl.lines.size(), 2u);
    EXPECT_EQ(cl.lines[1], "adminalert: Rate limit: 1 log lines suppressed");
    cl.log.flush(t0 + 2s);  // nothing pending: no repeat
    EXPECT_EQ(cl.lines.size(), 2u);
}

namespace {
// Runs `fn` with fd 2 redirected to a temp file; returns what was written.
template <typename F>
std::string capture_stderr(F fn) {
    pstest::TempDir d;
    const std::string p = d / "stderr";
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    return pstest::read_file(p);
}
}  // namespace

TEST(Log, ForegroundWritesStderrUnlessJournalCaptures) {
    const char* old = std::getenv("JOURNAL_STREAM");
    std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
    unsetenv("JOURNAL_STREAM");
    std::string out = capture_stderr([] {
        Log log(LogOptions{false, true, 10, 10});
        log.write("attackalert: to the terminal");
    });
    EXPECT_EQ(out, "attackalert: to the terminal\n");

    setenv("JOURNAL_STREAM", "8:12345", 1);
    out = capture_stderr([] {
        Log log(LogOptions{false, true, 10, 10});
        log.write("attackalert: only to syslog");
    });
    EXPECT_EQ(out, "");

    unsetenv("JOURNAL_STREAM");
    out = capture_stderr([] {
        Log log(LogOptions{false, false, 10, 10});  // not foreground
        log.write("attackalert: daemonised");
    });
    EXPECT_EQ(out, "");
    if (saved) setenv("JOURNAL_STREAM", saved->c_str(), 1);
}

// On the wire: ident "portsentry" with the pid, facility daemon, level notice
// (<29> = 3*8 + 5), as 1.2's openlog("portsentry", LOG_PID, LOG_DAEMON).
// The helper runs in a mount namespace where /dev is a dir holding our socket.
TEST(Log, SyslogIdentFacilityLevel) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare -m";
    pstest::TempDir d;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string sock = d / "log";
    ASSERT_LT(sock.size(), sizeof sa.sun_path);
    std::strcpy(sa.sun_path, sock.c_str());
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    timeval tv{3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    const std::string line = "attackalert: TCP SYN/Normal scan from host: 198.51.100.2/198.51.100.2 to TCP port: 995";
    auto r = pstest::run_capture({"unshare", "-m", "--propagation", "private", "sh", "-c",
                                  "mount --bind \"$1\" /dev && exec \"$2\" \"$3\"", "sh", d.path(),
                                  SYSLOG_HELPER, line});
    if (r.output.find("mount:") != std::string::npos || r.output.find("unshare:") != std::string::npos) {
        close(s);
        GTEST_SKIP() << "mount namespaces unavailable: " << r.output;
    }
    ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
    char buf[2048];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    close(s);
    ASSERT_GT(n, 0) << "no datagram on our /dev/log";
    std::string got(buf, static_cast<size_t>(n));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(got, m, std::regex(R"(^<29>[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} portsentry\[[0-9]+\]: )")))
        << got;
    EXPECT_EQ(got.substr(static_cast<size_t>(m.length())), line);
}
