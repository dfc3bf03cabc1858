// History/blocked append files, the blocked-file lookup and hosts.deny updates.
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
using Status = HostsDenyResult::Status;

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

// ------------------------------------------------------------------ hosts.deny

TEST(HostsDeny, AddsLinePreservingContentAndMode) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "# /etc/hosts.deny\nsshd: 192.0.2.66");  // no final newline
    chmod(p.c_str(), 0640);
    auto r = hosts_deny_add(p, "ALL: 198.51.100.2 : DENY");
    EXPECT_EQ(r.status, Status::added) << r.error;
    EXPECT_FALSE(r.appended_in_place);
    EXPECT_EQ(pstest::read_file(p), "# /etc/hosts.deny\nsshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(mode_of(p), 0640u);
    // No temp file left behind.
    int entries = 0;
    for (auto& e : std::filesystem::directory_iterator(d.path())) (void)e, ++entries;
    EXPECT_EQ(entries, 1);
}

TEST(HostsDeny, NeverDuplicatesALine) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    EXPECT_EQ(hosts_deny_add(p, "ALL: 198.51.100.2 : DENY").status, Status::added);  // creates
    EXPECT_EQ(hosts_deny_add(p, "ALL: 198.51.100.2 : DENY").status, Status::already_present);
    EXPECT_EQ(hosts_deny_add(p, "ALL: 198.51.100.20 : DENY").status, Status::added);  // a prefix is not a match
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.2 : DENY\nALL: 198.51.100.20 : DENY\n");
    EXPECT_EQ(mode_of(p), 0644u);
}

TEST(HostsDeny, CrlfLineCountsAsPresent) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "ALL: 192.0.2.5\r\n");
    EXPECT_EQ(hosts_deny_add(p, "ALL: 192.0.2.5").status, Status::already_present);
}

TEST(HostsDeny, RefusesSymlink) {
    pstest::TempDir d;
    pstest::write_file(d / "shadow", "root:x:0\n");
    ASSERT_EQ(symlink((d / "shadow").c_str(), (d / "hosts.deny").c_str()), 0);
    auto r = hosts_deny_add(d / "hosts.deny", "ALL: 198.51.100.2");
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_NE(r.error.find("symlink"), std::string::npos) << r.error;
    EXPECT_EQ(pstest::read_file(d / "shadow"), "root:x:0\n");
    struct stat st {};
    ASSERT_EQ(lstat((d / "hosts.deny").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));  // not replaced either
}

TEST(HostsDeny, RefusesLineWithNewline) {
    pstest::TempDir d;
    auto r = hosts_deny_add(d / "hosts.deny", "ALL: 192.0.2.1\nALL: ALL");
    EXPECT_EQ(r.status, Status::failed);
}

TEST(HostsDeny, EbusyFromRenameAppendsInPlace) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "sshd: 192.0.2.66\n");
    int calls = 0;
    RenameFn busy = [&](const char*, const char*) {
        ++calls;
        errno = EBUSY;
        return -1;
    };
    auto r = hosts_deny_add(p, "ALL: 198.51.100.2 : DENY", busy);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(r.status, Status::added) << r.error;
    EXPECT_TRUE(r.appended_in_place);
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    int entries = 0;  // the temp file was removed
    for (auto& e : std::filesystem::directory_iterator(d.path())) (void)e, ++entries;
    EXPECT_EQ(entries, 1);
    // Dedup still applies on the fallback path.
    EXPECT_EQ(hosts_deny_add(p, "ALL: 198.51.100.2 : DENY", busy).status, Status::already_present);
}

TEST(HostsDeny, OtherRenameErrorsFail) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "");
    RenameFn eacces = [](const char*, const char*) {
        errno = EACCES;
        return -1;
    };
    auto r = hosts_deny_add(p, "ALL: 198.51.100.2", eacces);
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_NE(r.error.find("Permission denied"), std::string::npos) << r.error;
    EXPECT_EQ(pstest::read_file(p), "");
}

// The real thing: hosts.deny bind-mounted (as in a container), where rename()
// over it fails with EBUSY. Runs the helper in a private mount namespace.
TEST(HostsDeny, RealBindMountedFileGetsTheLine) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare -m";
    pstest::TempDir d;
    const std::string outside = d / "host-hosts.deny";
    const std::string inside = d / "hosts.deny";
    pstest::write_file(outside, "sshd: 192.0.2.66\n");
    pstest::write_file(inside, "");
    // sh only sequences mount and the helper; every value arrives as "$1".."$4".
    auto r = pstest::run_capture({"unshare", "-m", "--propagation", "private", "sh", "-c",
                                  "mount --bind \"$1\" \"$2\" && exec \"$3\" \"$2\" \"$4\"", "sh",
                                  outside, inside, HOSTS_DENY_HELPER, "ALL: 198.51.100.2 : DENY"});
    if (r.output.find("mount:") != std::string::npos || r.output.find("unshare:") != std::string::npos)
        GTEST_SKIP() << "mount namespaces unavailable: " << r.output;
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
    EXPECT_EQ(r.output, "added-in-place\n");
    // The bind source received the line; the mount point file outside the namespace did not change.
    EXPECT_EQ(pstest::read_file(outside), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(pstest::read_file(inside), "");
}

// The systemd unit's sandbox: ProtectSystem=strict makes /etc read-only and
// ReadWritePaths=-/etc/hosts.deny bind-mounts the file itself writable. No
// temp file can be made next to it (EROFS): the line is appended in place.
TEST(HostsDeny, ReadOnlyDirectoryWritableFileGetsTheLine) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare -m";
    pstest::TempDir d;
    const std::string dir = d / "etc";
    const std::string file = dir + "/hosts.deny";
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    pstest::write_file(file, "sshd: 192.0.2.66\n");
    auto r = pstest::run_capture(
        {"unshare", "-m", "--propagation", "private", "sh", "-c",
         "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && mount --bind \"$2\" \"$2\" && "
         "mount -o remount,bind,rw \"$2\" && exec \"$3\" \"$2\" \"$4\"",
         "sh", dir, file, HOSTS_DENY_HELPER, "ALL: 198.51.100.2 : DENY"});
    if (r.output.find("mount:") != std::string::npos || r.output.find("unshare:") != std::string::npos)
        GTEST_SKIP() << "mount namespaces unavailable: " << r.output;
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
    EXPECT_EQ(r.output, "added-in-place\n");
    EXPECT_EQ(pstest::read_file(file), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
}
