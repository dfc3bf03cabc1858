// History/blocked append files and the blocked-file lookup.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "portsentry/actions/files.hpp"
#include "portsentry/actions/messages.hpp"
#include "test_util.hpp"

using namespace portsentry::actions;
using portsentry::net::IpAddr;
using portsentry::net::L4;

namespace {
IpAddr ip(const char* s) { return *IpAddr::parse(s); }
mode_t mode_of(const std::string& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 07777;
}
}  // namespace

// ------------------------------------------------------------------ AppendFile

TEST(AppendFile, CreatesWith0600AndAppends) {
    pstest::TempDir d;
    AppendFile f(d / "portsentry.history");
    EXPECT_EQ(f.append("one\n"), "");
    EXPECT_EQ(f.append("two\n"), "");
    EXPECT_EQ(pstest::read_file(d / "portsentry.history"), "one\ntwo\n");
    EXPECT_EQ(mode_of(d / "portsentry.history"), 0600u);
}

TEST(AppendFile, KeepsExistingContent) {
    pstest::TempDir d;
    pstest::write_file(d / "h", "old\n");
    AppendFile f(d / "h");
    EXPECT_EQ(f.append("new\n"), "");
    EXPECT_EQ(pstest::read_file(d / "h"), "old\nnew\n");
}

TEST(AppendFile, RefusesSymlink) {
    pstest::TempDir d;
    pstest::write_file(d / "victim", "precious\n");
    ASSERT_EQ(symlink((d / "victim").c_str(), (d / "portsentry.history").c_str()), 0);
    AppendFile f(d / "portsentry.history");
    std::string err = f.append("line\n");
    EXPECT_NE(err.find("symlink"), std::string::npos) << err;
    EXPECT_FALSE(f.is_open());
    EXPECT_EQ(pstest::read_file(d / "victim"), "precious\n");  // untouched
}

TEST(AppendFile, RefusesFifoWithoutHanging) {
    pstest::TempDir d;
    ASSERT_EQ(mkfifo((d / "h").c_str(), 0600), 0);
    AppendFile f(d / "h");
    // O_NONBLOCK open of a FIFO with no reader fails (ENXIO) instead of hanging.
    EXPECT_NE(f.append("x\n"), "");
}

TEST(AppendFile, ReopenFollowsLogrotate) {
    pstest::TempDir d;
    AppendFile f(d / "h");
    ASSERT_EQ(f.append("before\n"), "");
    ASSERT_EQ(rename((d / "h").c_str(), (d / "h.1").c_str()), 0);  // logrotate's move
    ASSERT_EQ(f.append("still old fd\n"), "");                   // until SIGHUP
    ASSERT_EQ(f.reopen(), "");
    ASSERT_EQ(f.append("after\n"), "");
    EXPECT_EQ(pstest::read_file(d / "h.1"), "before\nstill old fd\n");
    EXPECT_EQ(pstest::read_file(d / "h"), "after\n");
}

TEST(BlockedFile, PathCarriesMode) {
    EXPECT_EQ(blocked_file_path("/var/lib/portsentry/portsentry.blocked", "atcp"),
              "/var/lib/portsentry/portsentry.blocked.atcp");
    EXPECT_EQ(blocked_file_path("/x/b", "sudp"), "/x/b.sudp");
}

TEST(BlockedFile, ContainsMatchesAddressFieldExactly) {
    pstest::TempDir d;
    const std::string p = d / "portsentry.blocked.atcp";
    EXPECT_FALSE(blocked_file_contains(p, ip("192.0.2.1")));  // missing file
    pstest::write_file(p, msg::history_record(1700000000, "192.0.2.10", "192.0.2.10", 80, L4::tcp) +
                              msg::history_record(1700000000, "scan.example.net", "203.0.113.7", 1, L4::tcp) +
                              msg::history_record(1700000000, "2001:db8::5", "2001:db8::5", 1, L4::udp) +
                              "garbage line without the format\n");
    EXPECT_TRUE(blocked_file_contains(p, ip("192.0.2.10")));
    EXPECT_FALSE(blocked_file_contains(p, ip("192.0.2.1")));  // 1.2's substring match said yes
    EXPECT_TRUE(blocked_file_contains(p, ip("203.0.113.7")));
    EXPECT_TRUE(blocked_file_contains(p, ip("2001:db8:0::5")));  // any spelling of the address
    EXPECT_TRUE(blocked_file_contains(p, ip("::ffff:203.0.113.7")));
    EXPECT_FALSE(blocked_file_contains(p, ip("198.51.100.2")));
}
