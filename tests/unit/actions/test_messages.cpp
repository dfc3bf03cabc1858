// The message catalogue, line by line: these are the lines fail2ban, logcheck
// and admins' scripts parse, so each is pinned against 1.2's wording.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <sys/wait.h>

#include "portsentry/actions/messages.hpp"
#include "test_util.hpp"

namespace msg = portsentry::actions::msg;
using portsentry::net::L4;

namespace {

// Local time is part of the history format; pin it.
class UtcTime : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tz = std::getenv("TZ");
        saved_ = tz ? std::optional<std::string>(tz) : std::nullopt;
        setenv("TZ", "UTC", 1);
        tzset();
    }
    void TearDown() override {
        if (saved_) setenv("TZ", saved_->c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }
    std::optional<std::string> saved_;
};

}  // namespace

TEST(Messages, DetectionLinesMatch12) {
    EXPECT_EQ(msg::tcp_scan("TCP SYN/Normal scan", "198.51.100.2", "198.51.100.2", 995),
              "attackalert: TCP SYN/Normal scan from host: 198.51.100.2/198.51.100.2 to TCP port: 995");
    EXPECT_EQ(msg::tcp_scan("TCP FIN scan", "scanner.example.net", "203.0.113.7", 1),
              "attackalert: TCP FIN scan from host: scanner.example.net/203.0.113.7 to TCP port: 1");
    EXPECT_EQ(msg::udp_scan("198.51.100.2", "198.51.100.2", 31337),
              "attackalert: UDP scan from host: 198.51.100.2/198.51.100.2 to UDP port: 31337");
    EXPECT_EQ(msg::ip_options("h", "192.0.2.9", L4::tcp, 111),
              "attackalert: Packet from host: h/192.0.2.9 to TCP port: 111 has IP options set "
              "(detection avoidance technique).");
    EXPECT_EQ(msg::ip_options("h", "192.0.2.9", L4::udp, 7),
              "attackalert: Packet from host: h/192.0.2.9 to UDP port: 7 has IP options set "
              "(detection avoidance technique).");
    EXPECT_EQ(msg::already_blocked("198.51.100.2", "198.51.100.2"),
              "attackalert: Host: 198.51.100.2/198.51.100.2 is already blocked Ignoring");
    EXPECT_EQ(msg::could_not_block("h", "192.0.2.9"),
              "attackalert: ERROR: Could not block host h/192.0.2.9 !!");
}

TEST(Messages, ClassicLinesMatch12) {
    EXPECT_EQ(msg::connect("198.51.100.2", "198.51.100.2", L4::tcp, 143),
              "attackalert: Connect from host: 198.51.100.2/198.51.100.2 to TCP port: 143");
    EXPECT_EQ(msg::connect("198.51.100.2", "198.51.100.2", L4::udp, 513),
              "attackalert: Connect from host: 198.51.100.2/198.51.100.2 to UDP port: 513");
    EXPECT_EQ(msg::classic_already_blocked("198.51.100.2"),
              "attackalert: Host: 198.51.100.2 is already blocked. Ignoring");
    EXPECT_EQ(msg::classic_could_not_block("198.51.100.2"),
              "attackalert: ERROR: Could not block host 198.51.100.2 !!");
}

TEST(Messages, ResponseLines) {
    EXPECT_EQ(msg::ignoring_response(L4::tcp),
              "attackalert: Ignoring TCP response per configuration file setting.");
    EXPECT_EQ(msg::ignoring_response(L4::udp),
              "attackalert: Ignoring UDP response per configuration file setting.");
    EXPECT_EQ(msg::blocked_nft("198.51.100.2", false),
              "attackalert: Host 198.51.100.2 has been blocked via nft set inet portsentry banned");
    EXPECT_EQ(msg::blocked_nft("2001:db8::5", true),
              "attackalert: Host 2001:db8::5 has been blocked via nft set inet portsentry banned6");
    EXPECT_EQ(msg::blocked_wrappers("198.51.100.2", "ALL: 198.51.100.2 : DENY"),
              "attackalert: Host 198.51.100.2 has been blocked via wrappers with string: \"ALL: "
              "198.51.100.2 : DENY\"");
    EXPECT_EQ(msg::blocked_route_cmd("192.0.2.9", "/usr/local/sbin/blackhole 192.0.2.9"),
              "attackalert: Host 192.0.2.9 has been blocked via dropped route using command: "
              "\"/usr/local/sbin/blackhole 192.0.2.9\"");
    EXPECT_EQ(msg::external_command("192.0.2.9", "/usr/local/bin/notify 192.0.2.9 22"),
              "attackalert: External command run for host: 192.0.2.9 using command: "
              "\"/usr/local/bin/notify 192.0.2.9 22\"");
}

TEST(Messages, ErrorLines) {
    EXPECT_EQ(msg::run_cmd_exec_failed("192.0.2.9", "/nonexistent: No such file or directory"),
              "adminalert: ERROR: There was an error trying to run command (exec fail) 192.0.2.9: "
              "/nonexistent: No such file or directory");
    EXPECT_EQ(msg::no_target_variable("KILL_HOSTS_DENY"),
              "adminalert: No target variable specified in KILL_HOSTS_DENY option. Skipping.");
    EXPECT_EQ(msg::security_block_error("192.0.2.9"),
              "securityalert: ERROR: There was an error trying to block host 192.0.2.9");
    EXPECT_EQ(msg::command_failed("192.0.2.9", "false", 1 << 8),
              "adminalert: ERROR: Command for host 192.0.2.9 exited with status 1: \"false\"");
    EXPECT_EQ(msg::command_failed("192.0.2.9", "x", SIGKILL),
              "adminalert: ERROR: Command for host 192.0.2.9 was killed by signal 9: \"x\"");
    EXPECT_EQ(msg::command_timed_out("192.0.2.9", "sleep 100", 10),
              "adminalert: ERROR: Command for host 192.0.2.9 timed out after 10s, terminating: "
              "\"sleep 100\"");
    EXPECT_EQ(msg::history_failed("/var/lib/portsentry/portsentry.history", "is a symlink"),
              "adminalert: ERROR: Cannot open history file: /var/lib/portsentry/portsentry.history. "
              "(is a symlink)");
    EXPECT_EQ(msg::lines_suppressed(42), "adminalert: Rate limit: 42 log lines suppressed");
    EXPECT_EQ(msg::records_suppressed(7),
              "adminalert: Rate limit: 7 history/blocked records suppressed under a flood");
}

TEST_F(UtcTime, HistoryRecordIs12Format) {
    // 1700000000 = 2023-11-14 22:13:20 UTC
    EXPECT_EQ(msg::history_record(1700000000, "198.51.100.2", "198.51.100.2", 995, L4::tcp),
              "1700000000 - 11/14/2023 22:13:20 Host: 198.51.100.2/198.51.100.2 Port: 995 TCP Blocked\n");
    // Single-digit fields are zero-padded; UDP; a resolved name before the slash.
    EXPECT_EQ(msg::history_record(1000000000 - 86400 * 250, "scanner.example.net", "203.0.113.7", 7, L4::udp),
              "978400000 - 01/02/2001 01:46:40 Host: scanner.example.net/203.0.113.7 Port: 7 UDP Blocked\n");
}

TEST_F(UtcTime, HistoryRecordFollowsLocalTime) {
    setenv("TZ", "America/New_York", 1);  // UTC-5 in November
    tzset();
    EXPECT_EQ(msg::history_record(1700000000, "h", "192.0.2.1", 1, L4::tcp),
              "1700000000 - 11/14/2023 17:13:20 Host: h/192.0.2.1 Port: 1 TCP Blocked\n");
}

// fail2ban's stock filter (/etc/fail2ban/filter.d/portsentry.conf) must match
// every record we write and extract the address — IPv4, IPv6 and named hosts.
TEST(Messages, Fail2banStockFilterMatchesRecords) {
    const std::string filter = "/etc/fail2ban/filter.d/portsentry.conf";
    if (access(filter.c_str(), R_OK) != 0) GTEST_SKIP() << "fail2ban not installed: " << filter;
    pstest::TempDir dir;
    const std::string path = dir / "portsentry.history";
    const std::time_t now = std::time(nullptr);
    pstest::write_file(path, msg::history_record(now, "198.51.100.2", "198.51.100.2", 995, L4::tcp) +
                                 msg::history_record(now, "scanner.example.net", "203.0.113.7", 7, L4::udp) +
                                 msg::history_record(now, "2001:db8::5", "2001:db8::5", 22, L4::tcp));
    auto r = pstest::run_capture({"fail2ban-regex", path, filter});
    ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
    EXPECT_NE(r.output.find("Lines: 3 lines, 0 ignored, 3 matched, 0 missed"), std::string::npos) << r.output;

    auto ips = pstest::run_capture({"fail2ban-regex", "-o", "ip", path, filter});
    EXPECT_EQ(ips.output, "198.51.100.2\n203.0.113.7\n2001:db8::5\n");
}

TEST(Messages, ProtectedAndRateLimitedLines) {
    EXPECT_EQ(msg::protected_probe("gateway", "192.0.2.1", L4::tcp, 22),
              "attackalert: protected: gateway: host 192.0.2.1/192.0.2.1 probed TCP port 22: never banned");
    EXPECT_EQ(msg::rate_limited("TCP SYN/Normal scan", "198.51.100.7", L4::udp, 53),
              "attackalert: TCP SYN/Normal scan from host: 198.51.100.7/198.51.100.7 to UDP port: 53: not banned "
              "(ban rate limit reached)");
}
