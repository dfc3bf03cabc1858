// The Responder end to end: judged probes in, lines/records/commands out, in
// 1.2's order, against real files in a temp dir and real exec'd commands.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "portsentry/actions/responder.hpp"
#include "test_util.hpp"

using namespace portsentry;
using namespace portsentry::actions;
using namespace std::chrono_literals;
using engine::Decision;
using engine::ScanType;
using net::IpAddr;
using net::L4;
using Outcome = Decision::Outcome;

namespace {

constexpr std::time_t kWhen = 1700000000;  // 11/14/2023 22:13:20 UTC
const std::string kWhenText = "1700000000 - 11/14/2023 22:13:20";

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

Decision reported(int block, ScanType t = ScanType::tcp_syn) {
    Decision d;
    d.outcome = Outcome::reported;
    d.type = t;
    d.block = block;
    d.verdict = block == 0 ? engine::Verdict::accept : engine::Verdict::drop;
    return d;
}

Decision already(ScanType t = ScanType::tcp_syn) {
    Decision d;
    d.outcome = Outcome::already_blocked;
    d.type = t;
    return d;
}

Report report(const char* src, uint16_t port, Decision d, std::string mode = "atcp",
              L4 proto = L4::tcp) {
    Report r;
    r.src = ip(src);
    r.proto = proto;
    r.port = port;
    r.tcp_flags = 0x02;  // SYN
    r.d = d;
    r.mode = std::move(mode);
    return r;
}

std::vector<std::string> recorded_argv(const std::string& path) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : pstest::read_file(path)) {
        if (c == '\0') out.push_back(std::exchange(cur, {}));
        else cur.push_back(c);
    }
    return out;
}

class ResponderTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tz = std::getenv("TZ");
        saved_tz_ = tz ? std::optional<std::string>(tz) : std::nullopt;
        setenv("TZ", "UTC", 1);
        tzset();
        cfg.tcp.mode = config::Mode::advanced;
        cfg.udp.mode = config::Mode::advanced;
        cfg.history_file = dir / "portsentry.history";
        cfg.blocked_file = dir / "portsentry.blocked";
        cfg.hosts_deny_file = dir / "hosts.deny";
        opts.wall_clock = [] { return kWhen; };
    }
    void TearDown() override {
        if (saved_tz_) setenv("TZ", saved_tz_->c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }
    Responder& responder() {
        if (!resp) resp = std::make_unique<Responder>(cfg, cl.log, opts);
        return *resp;
    }
    // Finishes running commands (real children) within a bound.
    void wait_commands() {
        auto end = Clock::now() + 5s;
        while (responder().commands().in_flight() > 0 && Clock::now() < end) {
            responder().reap();
            std::this_thread::sleep_for(10ms);
        }
        ASSERT_EQ(responder().commands().in_flight(), 0u);
    }
    BanFn counting_ban(std::string result = "") {
        return [this, result] {
            ++bans;
            ban_order = cl.lines.size();
            return result;
        };
    }
    std::string history() { return pstest::read_file(cfg.history_file); }
    std::string blocked(const char* mode) { return pstest::read_file(cfg.blocked_file + "." + mode); }

    pstest::TempDir dir;
    pstest::CapturedLog cl;
    config::Config cfg;
    ResponderOptions opts;
    std::unique_ptr<Responder> resp;
    int bans = 0;
    size_t ban_order = 0;
    std::optional<std::string> saved_tz_;
};

const std::string kSyn1 =
    "attackalert: TCP SYN/Normal scan from host: 198.51.100.2/198.51.100.2 to TCP port: 995";
const std::string kRecord1 =
    kWhenText + " Host: 198.51.100.2/198.51.100.2 Port: 995 TCP Blocked\n";

}  // namespace

// BLOCK_TCP=0: log, record, no ban — what fail2ban's [portsentry] jail reads.
TEST_F(ResponderTest, Block0RecordsForFail2banWithoutBanning) {
    cfg.tcp.block = 0;
    auto res = responder().handle(report("198.51.100.2", 995, reported(0)), counting_ban());
    EXPECT_TRUE(res.recorded);
    EXPECT_FALSE(res.banned);
    EXPECT_EQ(bans, 0);
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            kSyn1, "attackalert: Ignoring TCP response per configuration file setting."}));
    EXPECT_EQ(history(), kRecord1);
    EXPECT_EQ(blocked("atcp"), kRecord1);

    const std::string filter = "/etc/fail2ban/filter.d/portsentry.conf";
    if (access(filter.c_str(), R_OK) != 0) GTEST_SKIP() << "fail2ban not installed";
    auto r = pstest::run_capture({"fail2ban-regex", cfg.history_file, filter});
    EXPECT_NE(r.output.find("Lines: 1 lines, 0 ignored, 1 matched, 0 missed"), std::string::npos) << r.output;
    auto ips = pstest::run_capture({"fail2ban-regex", "-o", "ip", cfg.history_file, filter});
    EXPECT_EQ(ips.output, "198.51.100.2\n");
}

// The engine decides "second probe → already_blocked"; the writer must add
// exactly one record per reported call and nothing for already_blocked.
TEST_F(ResponderTest, ExactlyOneRecordPerReportAndNoneWhenAlreadyBlocked) {
    auto& r = responder();
    r.handle(report("198.51.100.2", 995, reported(0)), {});
    EXPECT_EQ(pstest::lines_of(history()).size(), 1u);
    cl.lines.clear();
    auto res = r.handle(report("198.51.100.2", 996, already()), {});
    EXPECT_FALSE(res.recorded);
    EXPECT_EQ(history(), kRecord1);
    EXPECT_EQ(blocked("atcp"), kRecord1);
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            "attackalert: TCP SYN/Normal scan from host: 198.51.100.2/198.51.100.2 to TCP port: 996",
                            "attackalert: Host: 198.51.100.2/198.51.100.2 is already blocked Ignoring"}));
    // The blocked-file check sees the host, and only it.
    EXPECT_TRUE(blocked_file_contains(cfg.blocked_file + ".atcp", ip("198.51.100.2")));
    EXPECT_FALSE(blocked_file_contains(cfg.blocked_file + ".atcp", ip("198.51.100.20")));

    // A second reported call (e.g. after the ban expired) writes exactly one more.
    r.handle(report("198.51.100.2", 995, reported(0)), {});
    EXPECT_EQ(history(), kRecord1 + kRecord1);
}

TEST_F(ResponderTest, SuppressedAndUnreportedOutcomesAreSilent) {
    auto d = already();
    d.log_suppressed = true;
    responder().handle(report("198.51.100.2", 995, d), {});
    for (auto o : {Outcome::not_watched, Outcome::ignored, Outcome::counting}) {
        Decision x;
        x.outcome = o;
        responder().handle(report("198.51.100.2", 995, x), {});
    }
    EXPECT_TRUE(cl.lines.empty());
    EXPECT_EQ(access(cfg.history_file.c_str(), F_OK), -1);
}

TEST_F(ResponderTest, Block1OrderBanThenHostsDenyThenCommand) {
    const std::string out = dir / "argv";
    cfg.kill_hosts_deny = "ALL: $TARGET$ : DENY";
    cfg.kill_run_cmd = std::string(RECORD_ARGV) + " " + out + " $TARGET$ $PORT$ $MODE$";
    auto d = reported(1);
    d.ban = d.hosts_deny = d.run_cmd = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), counting_ban());
    wait_commands();
    EXPECT_TRUE(res.banned);
    EXPECT_TRUE(res.recorded);
    EXPECT_EQ(bans, 1);
    EXPECT_EQ(ban_order, 1u);  // right after the scan line
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            kSyn1,
                            "attackalert: Host 198.51.100.2 has been blocked via nft set inet portsentry banned",
                            "attackalert: Host 198.51.100.2 has been blocked via wrappers with string: \"ALL: "
                            "198.51.100.2 : DENY\"",
                            "attackalert: External command run for host: 198.51.100.2 using command: \"" +
                                std::string(RECORD_ARGV) + " " + out + " 198.51.100.2 995 atcp\""}));
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "ALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(recorded_argv(out), (std::vector<std::string>{"198.51.100.2", "995", "atcp"}));
    EXPECT_EQ(history(), kRecord1);
}

TEST_F(ResponderTest, Block1RunCmdFirst) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    cfg.kill_run_cmd = "true $TARGET$";
    cfg.kill_run_cmd_first = true;
    auto d = reported(1);
    d.ban = d.hosts_deny = d.run_cmd = true;
    responder().handle(report("198.51.100.2", 995, d), counting_ban());
    wait_commands();
    ASSERT_EQ(cl.lines.size(), 4u);
    EXPECT_EQ(cl.lines[1], "attackalert: External command run for host: 198.51.100.2 using command: \"true 198.51.100.2\"");
    EXPECT_EQ(ban_order, 2u);
    EXPECT_EQ(cl.lines[2], "attackalert: Host 198.51.100.2 has been blocked via nft set inet portsentry banned");
    EXPECT_EQ(cl.lines[3], "attackalert: Host 198.51.100.2 has been blocked via wrappers with string: \"ALL: 198.51.100.2\"");
}

// KILL_RUN_CMD_FIRST keeps 1.2's meaning: the command has completed when
// the ban runs (1.2's system() waited for it).
TEST_F(ResponderTest, RunCmdFirstCompletesBeforeTheBan) {
    const std::string script = dir / "slow.sh";
    const std::string done = dir / "done";
    pstest::write_file(script, "#!/bin/sh\nsleep 0.3\n: > \"$1\"\n");
    chmod(script.c_str(), 0755);
    cfg.kill_run_cmd = script + " " + done;
    cfg.kill_run_cmd_first = true;
    auto d = reported(1);
    d.ban = d.run_cmd = true;
    bool done_at_ban = false;
    responder().handle(report("198.51.100.2", 995, d), [&] {
        done_at_ban = access(done.c_str(), F_OK) == 0;
        return std::string();
    });
    EXPECT_TRUE(done_at_ban);
    EXPECT_EQ(responder().commands().in_flight(), 0u);
    EXPECT_EQ(responder().counters().commands_waited, 1u);
}

// ... or until run_cmd_timeout: a hanging command does not hold the ban back longer.
TEST_F(ResponderTest, RunCmdFirstWaitsAtMostTheTimeLimit) {
    cfg.kill_run_cmd = "sleep 30";
    cfg.kill_run_cmd_first = true;
    cfg.run_cmd_timeout = 1s;
    auto d = reported(1);
    d.ban = d.run_cmd = true;
    const auto t0 = Clock::now();
    auto res = responder().handle(report("198.51.100.2", 995, d), counting_ban());
    const auto took = Clock::now() - t0;
    EXPECT_TRUE(res.banned);
    EXPECT_GE(took, 1s);
    EXPECT_LT(took, 3s);
    responder().reap(Clock::now());  // past the limit: terminated
    wait_commands();
}

TEST_F(ResponderTest, BanFailureMeansNoRecord) {
    auto d = reported(1);
    d.ban = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), counting_ban("set banned is full"));
    EXPECT_FALSE(res.responded_ok);
    EXPECT_FALSE(res.recorded);
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            kSyn1,
                            "adminalert: ERROR: There was an error trying to block host (nft set) 198.51.100.2: set banned is full",
                            "attackalert: ERROR: Could not block host 198.51.100.2/198.51.100.2 !!"}));
    EXPECT_EQ(access(cfg.history_file.c_str(), F_OK), -1);
    EXPECT_EQ(responder().counters().bans_failed, 1u);
}

TEST_F(ResponderTest, Block2RunsOnlyTheCommand) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    cfg.kill_run_cmd = "true";
    auto d = reported(2);
    d.run_cmd = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), counting_ban());
    wait_commands();
    EXPECT_EQ(bans, 0);
    EXPECT_TRUE(res.recorded);
    EXPECT_EQ(access(cfg.hosts_deny_file.c_str(), F_OK), -1);
    ASSERT_EQ(cl.lines.size(), 2u);
    EXPECT_EQ(cl.lines[1], "attackalert: External command run for host: 198.51.100.2 using command: \"true\"");
}

TEST_F(ResponderTest, CommandExecFailureMeansNoRecord) {
    cfg.kill_run_cmd = "/nonexistent/notify $TARGET$";
    auto d = reported(2);
    d.run_cmd = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), {});
    EXPECT_FALSE(res.recorded);
    ASSERT_EQ(cl.lines.size(), 3u);
    EXPECT_EQ(cl.lines[1],
              "adminalert: ERROR: There was an error trying to run command (exec fail) 198.51.100.2: "
              "/nonexistent/notify: No such file or directory");
    EXPECT_EQ(cl.lines[2], "attackalert: ERROR: Could not block host 198.51.100.2/198.51.100.2 !!");
}

TEST_F(ResponderTest, CustomKillRouteRunsAfterTheBan) {
    const std::string out = dir / "route-argv";
    cfg.kill_route = std::string(RECORD_ARGV) + " " + out + " add $TARGET$ \"port $PORT$\"";
    auto d = reported(1);
    d.ban = d.custom_kill_route = true;
    responder().handle(report("198.51.100.2", 995, d), counting_ban());
    wait_commands();
    ASSERT_EQ(cl.lines.size(), 3u);
    EXPECT_EQ(cl.lines[1], "attackalert: Host 198.51.100.2 has been blocked via nft set inet portsentry banned");
    EXPECT_EQ(cl.lines[2], "attackalert: Host 198.51.100.2 has been blocked via dropped route using command: \"" +
                               std::string(RECORD_ARGV) + " " + out + " add 198.51.100.2 \"port 995\"\"");
    EXPECT_EQ(recorded_argv(out), (std::vector<std::string>{"add", "198.51.100.2", "port 995"}));
}

TEST_F(ResponderTest, CustomKillRouteWithoutTargetIsRefused) {
    cfg.kill_route = "/usr/local/sbin/blackhole";
    auto d = reported(1);
    d.custom_kill_route = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), {});
    EXPECT_FALSE(res.responded_ok);
    EXPECT_EQ(cl.lines[1], "adminalert: No target variable specified in KILL_ROUTE option. Skipping.");
    EXPECT_EQ(responder().commands().counters().started, 0u);
}

TEST_F(ResponderTest, HostsDenyWithoutTargetIsRefused) {
    cfg.kill_hosts_deny = "ALL: ALL";
    auto d = reported(1);
    d.hosts_deny = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), {});
    EXPECT_FALSE(res.responded_ok);
    EXPECT_EQ(cl.lines[1], "adminalert: No target variable specified in KILL_HOSTS_DENY option. Skipping.");
    EXPECT_EQ(access(cfg.hosts_deny_file.c_str(), F_OK), -1);
}

// The line lasts as long as the ban (seen + ban_time); reap() removes it
// once ended, in one rewrite; a report of the same host again does not
// write it twice.
TEST_F(ResponderTest, HostsDenyLineEndsWithTheBan) {
    cfg.kill_hosts_deny = "ALL: $TARGET$ : DENY";
    pstest::write_file(cfg.hosts_deny_file, "sshd: 192.0.2.66\n");
    auto d = reported(1);
    d.hosts_deny = true;
    d.ban_time = 60s;
    const TimePoint t0 = Clock::now();
    auto rep = report("198.51.100.2", 995, d);
    rep.seen = t0;
    auto res = responder().handle(rep, {}, t0);
    EXPECT_TRUE(res.recorded);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    responder().handle(rep, {}, t0 + 1s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(responder().counters().hosts_deny_present, 1u);
    responder().reap(t0 + 59s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    responder().reap(t0 + 60s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\n");
    // An unban ends it early.
    rep.d.ban_time = 0s;
    responder().handle(rep, {}, t0 + 61s);
    responder().ban_ended(ip("198.51.100.2"));
    responder().reap(t0 + 70s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\n");
    EXPECT_EQ(responder().hosts_deny_file().counters().rewrites.value(), 2u);
}

// A restart: the new responder adopts the line the old one wrote for a ban
// it restored (the same template expansion: $TARGET$ $PORT$ $MODE$), and
// removes it when the ban ends; it never adds the line of a restored ban
// that is not in the file, nor adopts an admin's line of another wording.
TEST_F(ResponderTest, RestoredBansAdoptTheirHostsDenyLines) {
    cfg.kill_hosts_deny = "ALL: $TARGET$ : DENY # $MODE$ $PORT$";
    pstest::write_file(cfg.hosts_deny_file, "sshd: 192.0.2.66\nALL: 198.51.100.9\n");
    auto d = reported(1);
    d.hosts_deny = true;
    d.ban_time = 3600s;
    const TimePoint t0 = Clock::now();
    {
        Responder before(cfg, cl.log, opts);
        before.handle(report("198.51.100.2", 995, d), {}, t0);
        before.handle(report("198.51.100.3", 53, d, "sudp", L4::udp), {}, t0);
        before.handle(report("198.51.100.5", 22, d), {}, t0);
    }
    const std::string written = "sshd: 192.0.2.66\nALL: 198.51.100.9\nALL: 198.51.100.2 : DENY # atcp 995\n"
                                "ALL: 198.51.100.3 : DENY # sudp 53\nALL: 198.51.100.5 : DENY # atcp 22\n";
    ASSERT_EQ(pstest::read_file(cfg.hosts_deny_file), written);

    cfg.udp.mode = config::Mode::classic;  // changed across the restart: $MODE$ still matches
    std::vector<RestoredBan> restored{
        {ip("198.51.100.2"), L4::tcp, 995, kWhen + 60},  // ends in 60 s
        {ip("198.51.100.3"), L4::udp, 53, 0},            // permanent: until unbanned
        {ip("198.51.100.4"), L4::tcp, 80, kWhen + 60},   // no line: none added
        {ip("198.51.100.9"), L4::tcp, 80, kWhen + 60},   // the admin's wording: not ours
        {ip("198.51.100.5"), L4::tcp, 22, kWhen - 1},    // ended since it was restored: goes first
    };
    const TimePoint t1 = t0 + 10s;
    EXPECT_EQ(responder().adopt_hosts_deny(restored, t1), 3u);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), written);
    EXPECT_EQ(cl.lines.back().find("portsentry-nfq: 3 hosts.deny lines of restored bans in "), 0u);
    responder().reap(t1);
    const std::string left = "sshd: 192.0.2.66\nALL: 198.51.100.9\nALL: 198.51.100.2 : DENY # atcp 995\n"
                             "ALL: 198.51.100.3 : DENY # sudp 53\n";
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), left);
    responder().reap(t1 + 59s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), left);
    responder().reap(t1 + 60s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file),
              "sshd: 192.0.2.66\nALL: 198.51.100.9\nALL: 198.51.100.3 : DENY # sudp 53\n");
    responder().reap(t1 + 3600s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file),
              "sshd: 192.0.2.66\nALL: 198.51.100.9\nALL: 198.51.100.3 : DENY # sudp 53\n");
    responder().ban_ended(ip("198.51.100.3"));
    responder().reap(t1 + 3610s);
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "sshd: 192.0.2.66\nALL: 198.51.100.9\n");
}

// Without KILL_HOSTS_DENY, or with one that names nobody, the daemon never
// wrote a line: nothing is adopted.
TEST_F(ResponderTest, NoAdoptionWithoutATemplate) {
    pstest::write_file(cfg.hosts_deny_file, "ALL: 198.51.100.2\n");
    std::vector<RestoredBan> restored{{ip("198.51.100.2"), L4::tcp, 995, 0}};
    EXPECT_EQ(responder().adopt_hosts_deny(restored, Clock::now()), 0u);  // KILL_HOSTS_DENY unset
    cfg.kill_hosts_deny = "ALL: ALL";  // names nobody: never written
    resp.reset();
    EXPECT_EQ(responder().adopt_hosts_deny(restored, Clock::now()), 0u);
}

TEST_F(ResponderTest, HostsDenySymlinkRefused) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    pstest::write_file(dir / "passwd", "root:x:0:0\n");
    ASSERT_EQ(symlink((dir / "passwd").c_str(), cfg.hosts_deny_file.c_str()), 0);
    auto d = reported(1);
    d.hosts_deny = true;
    auto res = responder().handle(report("198.51.100.2", 995, d), {});
    EXPECT_FALSE(res.recorded);
    EXPECT_EQ(pstest::read_file(dir / "passwd"), "root:x:0:0\n");
    ASSERT_EQ(cl.lines.size(), 4u);
    EXPECT_EQ(cl.lines[1].rfind("adminalert: cannot open hosts.deny file: " + cfg.hosts_deny_file + " for blocking.", 0), 0u);
    EXPECT_EQ(cl.lines[2], "securityalert: ERROR: There was an error trying to block host 198.51.100.2");
}

// RESOLVE_HOST with an attacker's PTR record: the name never reaches a line,
// a record or a command; a clean name does, as one argv word.
TEST_F(ResponderTest, ResolvedNamesAreFilteredBeforeUse) {
    const std::string out = dir / "argv";
    cfg.resolve_host = true;
    cfg.kill_run_cmd = std::string(RECORD_ARGV) + " " + out + " $HOST$ $TARGET$";
    opts.lookup = [](const IpAddr& a) -> std::optional<std::string> {
        if (a == *IpAddr::parse("203.0.113.7")) return "x;rm -rf /;$(reboot)";
        return "scanner.example.net";
    };
    auto d = reported(2);
    d.run_cmd = true;
    responder().handle(report("203.0.113.7", 22, d), {});
    wait_commands();
    EXPECT_EQ(recorded_argv(out), (std::vector<std::string>{"203.0.113.7", "203.0.113.7"}));
    EXPECT_EQ(history(), kWhenText + " Host: 203.0.113.7/203.0.113.7 Port: 22 TCP Blocked\n");

    responder().handle(report("198.51.100.2", 995, d), {});
    wait_commands();
    EXPECT_EQ(recorded_argv(out), (std::vector<std::string>{"scanner.example.net", "198.51.100.2"}));
    ASSERT_GE(cl.lines.size(), 2u);
    EXPECT_EQ(cl.lines[cl.lines.size() - 2],
              "attackalert: TCP SYN/Normal scan from host: scanner.example.net/198.51.100.2 to TCP port: 995");
}

TEST_F(ResponderTest, ClassicModeWording) {
    cfg.tcp.mode = config::Mode::classic;
    auto& r = responder();
    r.handle(report("198.51.100.2", 143, reported(0, ScanType::tcp_connect), ""), {});
    r.handle(report("198.51.100.2", 143, already(ScanType::tcp_connect), ""), {});
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            "attackalert: Connect from host: 198.51.100.2/198.51.100.2 to TCP port: 143",
                            "attackalert: Ignoring TCP response per configuration file setting.",
                            "attackalert: Connect from host: 198.51.100.2/198.51.100.2 to TCP port: 143",
                            "attackalert: Host: 198.51.100.2 is already blocked. Ignoring"}));
    // Mode derived from the config when the caller gives none: BLOCKED_FILE.tcp.
    EXPECT_EQ(blocked("tcp"), kWhenText + " Host: 198.51.100.2/198.51.100.2 Port: 143 TCP Blocked\n");
}

TEST_F(ResponderTest, ClassicUdpWording) {
    cfg.udp.mode = config::Mode::classic;
    responder().handle(report("198.51.100.2", 513, reported(0, ScanType::udp_tripwire), "udp", L4::udp), {});
    EXPECT_EQ(cl.lines[0], "attackalert: Connect from host: 198.51.100.2/198.51.100.2 to UDP port: 513");
    EXPECT_EQ(cl.lines[1], "attackalert: Ignoring UDP response per configuration file setting.");
    EXPECT_EQ(blocked("udp"), kWhenText + " Host: 198.51.100.2/198.51.100.2 Port: 513 UDP Blocked\n");
}

TEST_F(ResponderTest, UdpScanWithIpOptionsAndIpv6Ban) {
    auto d = reported(1, ScanType::udp);
    d.ban = true;
    d.ip_options = true;
    responder().handle(report("192.0.2.9", 31337, d, "audp", L4::udp), counting_ban());
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            "attackalert: UDP scan from host: 192.0.2.9/192.0.2.9 to UDP port: 31337",
                            "attackalert: Packet from host: 192.0.2.9/192.0.2.9 to UDP port: 31337 has IP "
                            "options set (detection avoidance technique).",
                            "attackalert: Host 192.0.2.9 has been blocked via nft set inet portsentry banned"}));
    EXPECT_EQ(blocked("audp"), kWhenText + " Host: 192.0.2.9/192.0.2.9 Port: 31337 UDP Blocked\n");

    cl.lines.clear();
    auto d6 = reported(1);
    d6.ban = true;
    responder().handle(report("2001:db8::5", 22, d6), counting_ban());
    EXPECT_EQ(cl.lines[1], "attackalert: Host 2001:db8::5 has been blocked via nft set inet portsentry banned6");
    EXPECT_NE(history().find("Host: 2001:db8::5/2001:db8::5 Port: 22 TCP Blocked\n"), std::string::npos);
}

// 1.2's separate detectors: a host reported for TCP and then for UDP gets the
// UDP scan line, a UDP history record, a line in the UDP blocked file and
// UDP's own responses (its hosts.deny line, KILL_RUN_CMD with $MODE$ audp).
TEST_F(ResponderTest, SecondProtocolGetsItsOwnLinesRecordsAndResponses) {
    const std::string out = dir / "argv";
    cfg.kill_hosts_deny = "ALL: $TARGET$ : $PORT$";
    cfg.kill_run_cmd = std::string(RECORD_ARGV) + " " + out + " $TARGET$ $PORT$ $MODE$";
    auto t = reported(1);
    t.hosts_deny = t.run_cmd = true;
    responder().handle(report("198.51.100.2", 995, t), counting_ban());
    wait_commands();
    cl.lines.clear();
    auto u = reported(1, ScanType::udp);
    u.hosts_deny = u.run_cmd = true;
    u.other_protocol = true;
    auto res = responder().handle(report("198.51.100.2", 161, u, "audp", L4::udp), counting_ban());
    wait_commands();
    EXPECT_TRUE(res.recorded);
    EXPECT_EQ(bans, 0);
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            "attackalert: UDP scan from host: 198.51.100.2/198.51.100.2 to UDP port: 161",
                            "attackalert: Host 198.51.100.2 has been blocked via wrappers with string: \"ALL: "
                            "198.51.100.2 : 161\"",
                            "attackalert: External command run for host: 198.51.100.2 using command: \"" +
                                std::string(RECORD_ARGV) + " " + out + " 198.51.100.2 161 audp\""}));
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "ALL: 198.51.100.2 : 995\nALL: 198.51.100.2 : 161\n");
    EXPECT_EQ(recorded_argv(out), (std::vector<std::string>{"198.51.100.2", "161", "audp"}));
    const std::string udp_record = kWhenText + " Host: 198.51.100.2/198.51.100.2 Port: 161 UDP Blocked\n";
    EXPECT_EQ(blocked("atcp"), kRecord1);
    EXPECT_EQ(blocked("audp"), udp_record);
    EXPECT_EQ(history(), kRecord1 + udp_record);
}

// De-duplicated: the second protocol's hosts.deny line and KILL_RUN_CMD are
// not repeated when they expand to what the first protocol's report did.
TEST_F(ResponderTest, SecondProtocolDoesNotRepeatAnIdenticalResponse) {
    cfg.kill_hosts_deny = "ALL: $TARGET$";
    cfg.kill_run_cmd = "true $TARGET$";
    auto t = reported(2);
    t.run_cmd = true;
    responder().handle(report("198.51.100.2", 995, t), {});
    wait_commands();
    auto u = reported(2, ScanType::udp);
    u.run_cmd = true;
    u.other_protocol = true;
    cl.lines.clear();
    auto res = responder().handle(report("198.51.100.2", 161, u, "audp", L4::udp), {});
    EXPECT_TRUE(res.responded_ok);
    EXPECT_TRUE(res.recorded);  // still reported and recorded for UDP
    EXPECT_EQ(cl.lines, (std::vector<std::string>{
                            "attackalert: UDP scan from host: 198.51.100.2/198.51.100.2 to UDP port: 161"}));
    EXPECT_EQ(responder().counters().commands_deduplicated, 1u);
    EXPECT_EQ(responder().commands().counters().started, 1u);

    // Another host, or the same host's next ban (not other_protocol): runs.
    auto again = reported(2);
    again.run_cmd = true;
    responder().handle(report("198.51.100.2", 995, again), {});
    responder().handle(report("198.51.100.3", 161, u, "audp", L4::udp), {});
    wait_commands();
    EXPECT_EQ(responder().commands().counters().started, 3u);

    // hosts.deny: the identical line is not written twice.
    auto ht = reported(1);
    ht.hosts_deny = true;
    responder().handle(report("198.51.100.4", 995, ht), {});
    auto hu = reported(1, ScanType::udp);
    hu.hosts_deny = true;
    hu.other_protocol = true;
    responder().handle(report("198.51.100.4", 161, hu, "audp", L4::udp), {});
    EXPECT_EQ(pstest::read_file(cfg.hosts_deny_file), "ALL: 198.51.100.4\n");
    EXPECT_EQ(responder().counters().hosts_deny_present, 1u);
}

// A spoofed-source flood: records are capped, counted, summarised once.
TEST_F(ResponderTest, RecordsAreRateLimitedUnderFlood) {
    opts.record_burst = 2;
    opts.record_per_second = 1;
    auto& r = responder();
    const TimePoint t0 = Clock::now();
    for (int i = 1; i <= 5; ++i) {
        std::string src = "203.0.113." + std::to_string(i);
        r.handle(report(src.c_str(), 80, reported(0)), {}, t0);
    }
    EXPECT_EQ(pstest::lines_of(history()).size(), 2u);
    EXPECT_EQ(r.counters().records_suppressed, 3u);
    cl.lines.clear();
    r.reap(t0 + 1s);
    EXPECT_EQ(cl.lines,
              (std::vector<std::string>{"adminalert: Rate limit: 3 history/blocked records suppressed under a flood"}));
    r.reap(t0 + 2s);  // once
    EXPECT_EQ(cl.lines.size(), 1u);
}

TEST_F(ResponderTest, HistorySymlinkIsRefusedAndLogged) {
    pstest::write_file(dir / "target", "");
    ASSERT_EQ(symlink((dir / "target").c_str(), cfg.history_file.c_str()), 0);
    auto res = responder().handle(report("198.51.100.2", 995, reported(0)), {});
    EXPECT_FALSE(res.recorded);
    EXPECT_EQ(pstest::read_file(dir / "target"), "");
    EXPECT_EQ(blocked("atcp"), kRecord1);  // the other file is still written
    EXPECT_EQ(cl.lines.back(), "adminalert: ERROR: Cannot open history file: " + cfg.history_file +
                                   ". (is a symlink, refusing to follow it)");
}

TEST_F(ResponderTest, ReopenFollowsLogrotate) {
    auto& r = responder();
    r.handle(report("198.51.100.2", 995, reported(0)), {});
    ASSERT_EQ(rename(cfg.history_file.c_str(), (cfg.history_file + ".1").c_str()), 0);
    r.reopen();
    r.handle(report("198.51.100.3", 995, reported(0)), {});
    EXPECT_EQ(pstest::read_file(cfg.history_file + ".1"), kRecord1);
    EXPECT_EQ(history(), kWhenText + " Host: 198.51.100.3/198.51.100.3 Port: 995 TCP Blocked\n");
}

TEST_F(ResponderTest, CommandTimeLimitFromConfig) {
    cfg.kill_run_cmd = "sleep 100";
    cfg.run_cmd_timeout = 1s;
    auto d = reported(2);
    d.run_cmd = true;
    const TimePoint t0 = Clock::now();
    responder().handle(report("198.51.100.2", 995, d), {}, t0);
    EXPECT_EQ(responder().commands().in_flight(), 1u);
    responder().reap(t0 + 1s);
    EXPECT_EQ(cl.lines.back(),
              "adminalert: ERROR: Command for host 198.51.100.2 timed out after 1s, terminating: \"sleep 100\"");
    wait_commands();
}

TEST_F(ResponderTest, ReconfigureMovesHistory) {
    auto& r = responder();
    r.handle(report("198.51.100.2", 995, reported(0)), {});
    config::Config cfg2 = cfg;
    cfg2.history_file = dir / "new.history";
    r.reconfigure(cfg2);
    r.handle(report("198.51.100.3", 995, reported(0)), {});
    EXPECT_EQ(history(), kRecord1);
    EXPECT_EQ(pstest::read_file(dir / "new.history"),
              kWhenText + " Host: 198.51.100.3/198.51.100.3 Port: 995 TCP Blocked\n");
}
