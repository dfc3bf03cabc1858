// HostsDenyFile: one appended line per new ban, never twice; lines of ended
// bans removed in batches, at most one rewrite per interval (the clock is
// passed in); in place when the file cannot be replaced (bind mount).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "portsentry/actions/hosts_deny.hpp"
#include "test_util.hpp"

using namespace portsentry::actions;
using namespace std::chrono_literals;
using portsentry::net::IpAddr;
using Status = HostsDenyResult::Status;
using TP = std::chrono::steady_clock::time_point;

namespace {
IpAddr ip(const char* s) { return *IpAddr::parse(s); }
mode_t mode_of(const std::string& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 07777;
}
ino_t inode_of(const std::string& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_ino;
}
int entries_in(const std::string& dir) {
    int n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++n;
    return n;
}
const TP t0{std::chrono::hours(1000)};
}  // namespace

TEST(HostsDeny, AppendsInPlacePreservingContentModeAndInode) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "# /etc/hosts.deny\nsshd: 192.0.2.66");  // no final newline
    chmod(p.c_str(), 0640);
    const ino_t before = inode_of(p);
    HostsDenyFile f(p);
    auto r = f.add("ALL: 198.51.100.2 : DENY", ip("198.51.100.2"), std::nullopt);
    EXPECT_EQ(r.status, Status::added) << r.error;
    EXPECT_EQ(pstest::read_file(p), "# /etc/hosts.deny\nsshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(mode_of(p), 0640u);
    EXPECT_EQ(inode_of(p), before);  // appended, not replaced
    EXPECT_EQ(entries_in(d.path()), 1);
}

TEST(HostsDeny, NeverWritesAnIdenticalLineTwice) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    HostsDenyFile f(p);
    EXPECT_EQ(f.add("ALL: 198.51.100.2 : DENY", ip("198.51.100.2"), std::nullopt).status, Status::added);  // creates
    EXPECT_EQ(f.add("ALL: 198.51.100.2 : DENY", ip("198.51.100.2"), std::nullopt).status, Status::already_present);
    EXPECT_EQ(f.add("ALL: 198.51.100.20 : DENY", ip("198.51.100.20"), std::nullopt).status,
              Status::added);  // a prefix is not a match
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.2 : DENY\nALL: 198.51.100.20 : DENY\n");
    EXPECT_EQ(mode_of(p), 0644u);
    // A second instance (a restart) reads what is there.
    HostsDenyFile g(p);
    EXPECT_EQ(g.add("ALL: 198.51.100.2 : DENY", ip("198.51.100.2"), std::nullopt).status, Status::already_present);
}

TEST(HostsDeny, LineAddedBySomeoneElseIsSeen) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    HostsDenyFile f(p);
    ASSERT_EQ(f.add("ALL: 192.0.2.1", ip("192.0.2.1"), std::nullopt).status, Status::added);
    pstest::write_file(p, "ALL: 192.0.2.1\nALL: 192.0.2.5\n");  // an admin's edit
    EXPECT_EQ(f.add("ALL: 192.0.2.5", ip("192.0.2.5"), std::nullopt).status, Status::already_present);
    EXPECT_EQ(f.counters().rereads.value(), 1u);
}

TEST(HostsDeny, CrlfLineCountsAsPresent) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "ALL: 192.0.2.5\r\n");
    HostsDenyFile f(p);
    EXPECT_EQ(f.add("ALL: 192.0.2.5", ip("192.0.2.5"), std::nullopt).status, Status::already_present);
}

TEST(HostsDeny, RefusesSymlinkAndNewline) {
    pstest::TempDir d;
    pstest::write_file(d / "shadow", "root:x:0\n");
    ASSERT_EQ(symlink((d / "shadow").c_str(), (d / "hosts.deny").c_str()), 0);
    HostsDenyFile f(d / "hosts.deny");
    auto r = f.add("ALL: 198.51.100.2", ip("198.51.100.2"), std::nullopt);
    EXPECT_EQ(r.status, Status::failed);
    EXPECT_NE(r.error.find("symlink"), std::string::npos) << r.error;
    EXPECT_EQ(pstest::read_file(d / "shadow"), "root:x:0\n");
    HostsDenyFile g(d / "other");
    EXPECT_EQ(g.add("ALL: 192.0.2.1\nALL: ALL", ip("192.0.2.1"), std::nullopt).status, Status::failed);
}

// Expired and unbanned lines go in one rewrite; the admin's lines stay; the
// next rewrite waits for the interval (10 s), checked at 9.999 s and 10 s.
TEST(HostsDeny, EndedBansAreRemovedInBatchesAtMostOncePerInterval) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "sshd: 192.0.2.66\n");
    chmod(p.c_str(), 0640);
    HostsDenyFile f(p);
    f.add("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s);  // expires
    f.add("ALL: 198.51.100.2", ip("198.51.100.2"), std::nullopt);  // unbanned below
    f.add("ALL: 198.51.100.3", ip("198.51.100.3"), std::nullopt);  // stays
    f.add("ALL: 198.51.100.4", ip("198.51.100.4"), t0 + 65s);
    EXPECT_EQ(f.maintain(t0), "");
    EXPECT_EQ(f.counters().rewrites.value(), 0u);  // nothing ended: no rewrite

    f.ended(ip("198.51.100.2"));
    EXPECT_EQ(f.removal_due(t0 + 60s), 2u);
    EXPECT_EQ(f.maintain(t0 + 60s), "");
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\nALL: 198.51.100.3\nALL: 198.51.100.4\n");
    EXPECT_EQ(f.counters().rewrites.value(), 1u);
    EXPECT_EQ(f.counters().lines_removed.value(), 2u);
    EXPECT_EQ(mode_of(p), 0640u);
    EXPECT_EQ(entries_in(d.path()), 1);  // no temp file left

    // .4 expires at 65 s, but the last rewrite was at 60 s.
    EXPECT_EQ(f.maintain(t0 + 69999ms), "");
    EXPECT_EQ(f.counters().rewrites.value(), 1u);
    EXPECT_EQ(f.maintain(t0 + 70s), "");
    EXPECT_EQ(f.counters().rewrites.value(), 2u);
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\nALL: 198.51.100.3\n");
    // A removed line is written again for a new ban.
    EXPECT_EQ(f.add("ALL: 198.51.100.2", ip("198.51.100.2"), std::nullopt).status, Status::added);
}

// A host banned again before the clean-up keeps its line.
TEST(HostsDeny, NewBanKeepsALineWaitingForRemoval) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    HostsDenyFile f(p);
    f.add("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s);
    f.ended(ip("198.51.100.1"));
    EXPECT_EQ(f.add("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 600s).status, Status::already_present);
    EXPECT_EQ(f.maintain(t0 + 61s), "");
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.1\n");
}

// A line that was there before (an admin's, or one this object did not
// write) is never removed by a ban ending.
TEST(HostsDeny, ForeignLinesAreNeverRemoved) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "ALL: 198.51.100.1\n");
    HostsDenyFile f(p);
    EXPECT_EQ(f.add("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 1s).status, Status::already_present);
    f.ended(ip("198.51.100.1"));
    EXPECT_EQ(f.maintain(t0 + 60s), "");
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.1\n");
}

// rename over a bind-mounted file fails with EBUSY: the clean-up rewrites
// the same inode in place instead, losing no other line.
TEST(HostsDeny, BusyRenameRewritesInPlace) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "sshd: 192.0.2.66\n");
    int calls = 0;
    HostsDenyOptions o;
    o.rename = [&](const char*, const char*) {
        ++calls;
        errno = EBUSY;
        return -1;
    };
    HostsDenyFile f(p, o);
    const ino_t before = inode_of(p);
    f.add("ALL: 198.51.100.2 : DENY", ip("198.51.100.2"), std::nullopt);
    f.add("ALL: 198.51.100.3 : DENY", ip("198.51.100.3"), std::nullopt);
    EXPECT_EQ(calls, 0);  // appends never rename
    f.ended(ip("198.51.100.2"));
    EXPECT_EQ(f.maintain(t0), "");
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(f.counters().rewrites_in_place.value(), 1u);
    EXPECT_EQ(inode_of(p), before);
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\nALL: 198.51.100.3 : DENY\n");
    EXPECT_EQ(entries_in(d.path()), 1);  // the temp file was removed
    // Dedup still holds after the in-place rewrite.
    EXPECT_EQ(f.add("ALL: 198.51.100.3 : DENY", ip("198.51.100.3"), std::nullopt).status, Status::already_present);
}

TEST(HostsDeny, OtherRenameErrorsFailAndAreRetried) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    HostsDenyOptions o;
    bool refuse = true;
    o.rename = [&](const char* a, const char* b) {
        if (!refuse) return ::rename(a, b);
        errno = EACCES;
        return -1;
    };
    HostsDenyFile f(p, o);
    f.add("ALL: 198.51.100.2", ip("198.51.100.2"), std::nullopt);
    f.ended(ip("198.51.100.2"));
    EXPECT_NE(f.maintain(t0).find("Permission denied"), std::string::npos);
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.2\n");
    refuse = false;
    EXPECT_EQ(f.maintain(t0 + 5s), "");  // not before the interval
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.2\n");
    EXPECT_EQ(f.maintain(t0 + 10s), "");
    EXPECT_EQ(pstest::read_file(p), "");
}

// The real thing: hosts.deny bind-mounted (as in a container). The append
// and the in-place clean-up both reach the bind source. Runs the helper in
// a private mount namespace.
TEST(HostsDeny, RealBindMountedFileKeepsWorking) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare -m";
    pstest::TempDir d;
    const std::string outside = d / "host-hosts.deny";
    const std::string inside = d / "hosts.deny";
    pstest::write_file(outside, "sshd: 192.0.2.66\n");
    pstest::write_file(inside, "");
    // sh only sequences mount and the helper; every value arrives as "$1".."$4".
    auto run = [&](const char* extra) {
        return pstest::run_capture({"unshare", "-m", "--propagation", "private", "sh", "-c",
                                    "mount --bind \"$1\" \"$2\" && exec \"$3\" \"$2\" \"$4\" $5", "sh", outside,
                                    inside, HOSTS_DENY_HELPER, "ALL: 198.51.100.2 : DENY", extra});
    };
    auto r = run("");
    if (r.output.find("mount:") != std::string::npos || r.output.find("unshare:") != std::string::npos)
        GTEST_SKIP() << "mount namespaces unavailable: " << r.output;
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
    EXPECT_EQ(r.output, "added\n");
    EXPECT_EQ(pstest::read_file(outside), "sshd: 192.0.2.66\nALL: 198.51.100.2 : DENY\n");
    EXPECT_EQ(pstest::read_file(inside), "");  // the mount point outside the namespace did not change
    r = run("remove");
    EXPECT_EQ(r.output, "present\n");  // written by another process: not ours to remove
    pstest::write_file(outside, "sshd: 192.0.2.66\n");
    r = run("remove");
    EXPECT_EQ(r.output, "added\nremoved-in-place\n") << r.output;
    EXPECT_EQ(pstest::read_file(outside), "sshd: 192.0.2.66\n");
}

// The systemd unit's sandbox: ProtectSystem=strict makes /etc read-only and
// ReadWritePaths=-/etc/hosts.deny bind-mounts the file itself writable. No
// temp file can be made next to it (EROFS): the line is appended, and the
// clean-up rewrites the file in place.
TEST(HostsDeny, ReadOnlyDirectoryWritableFileKeepsWorking) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare -m";
    pstest::TempDir d;
    const std::string dir = d / "etc";
    const std::string file = dir + "/hosts.deny";
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    pstest::write_file(file, "sshd: 192.0.2.66\n");
    auto r = pstest::run_capture(
        {"unshare", "-m", "--propagation", "private", "sh", "-c",
         "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && mount --bind \"$2\" \"$2\" && "
         "mount -o remount,bind,rw \"$2\" && exec \"$3\" \"$2\" \"$4\" remove",
         "sh", dir, file, HOSTS_DENY_HELPER, "ALL: 198.51.100.2 : DENY"});
    if (r.output.find("mount:") != std::string::npos || r.output.find("unshare:") != std::string::npos)
        GTEST_SKIP() << "mount namespaces unavailable: " << r.output;
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
    EXPECT_EQ(r.output, "added\nremoved-in-place\n");
    EXPECT_EQ(pstest::read_file(file), "sshd: 192.0.2.66\n");
}

// preload() reads the lines at start-up (no file is created); the first ban
// then only appends.
TEST(HostsDeny, PreloadReadsWithoutCreating) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    HostsDenyFile missing(p);
    missing.preload();
    EXPECT_NE(access(p.c_str(), F_OK), 0);
    pstest::write_file(p, "ALL: 198.51.100.1\n");
    HostsDenyFile f(p);
    f.preload();
    EXPECT_EQ(f.add("ALL: 198.51.100.1", ip("198.51.100.1"), std::nullopt).status, Status::already_present);
    EXPECT_EQ(f.counters().rereads.value(), 0u);
}

// After a restart: a line the daemon wrote before for a ban it still holds
// is adopted when it is in the file, and goes when that ban ends.
TEST(HostsDeny, AdoptedLineIsRemovedAtExpiry) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "sshd: 192.0.2.66\nALL: 198.51.100.1\n");
    HostsDenyFile f(p);
    f.preload();
    EXPECT_TRUE(f.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s));
    EXPECT_EQ(f.maintain(t0 + 59s), "");
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\nALL: 198.51.100.1\n");
    EXPECT_EQ(f.removal_due(t0 + 60s), 1u);
    EXPECT_EQ(f.maintain(t0 + 60s), "");
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\n");
    EXPECT_EQ(f.counters().lines_removed.value(), 1u);
}

TEST(HostsDeny, AdoptedLineIsRemovedWhenTheBanEnds) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "ALL: 198.51.100.1\nALL: 198.51.100.2\n");
    HostsDenyFile f(p);  // no preload: adopt reads the file itself
    EXPECT_TRUE(f.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 3600s));
    EXPECT_TRUE(f.adopt("ALL: 198.51.100.2", ip("198.51.100.2"), t0 + 3600s));
    f.ended(ip("198.51.100.1"));
    EXPECT_EQ(f.maintain(t0), "");
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.2\n");
}

TEST(HostsDeny, AdoptNeverAddsAnAbsentLine) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "sshd: 192.0.2.66\n");
    HostsDenyFile f(p);
    f.preload();
    EXPECT_FALSE(f.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s));
    EXPECT_EQ(f.removal_due(t0 + 3600s), 0u);
    EXPECT_EQ(f.maintain(t0 + 3600s), "");
    EXPECT_EQ(pstest::read_file(p), "sshd: 192.0.2.66\n");
    // A missing file is not created either.
    HostsDenyFile missing(d / "none");
    EXPECT_FALSE(missing.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s));
    EXPECT_NE(access((d / "none").c_str(), F_OK), 0);
}

// Lines that do not match exactly (an admin's own wording for the same
// host, other hosts) are never adopted, so never removed.
TEST(HostsDeny, ForeignLinesNotMatchingAreKept) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    const std::string text = "sshd: 198.51.100.1\nALL: 198.51.100.10\nALL: 198.51.100.1\n";
    pstest::write_file(p, text);
    HostsDenyFile f(p);
    f.preload();
    EXPECT_TRUE(f.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), t0 + 60s));
    EXPECT_EQ(f.maintain(t0 + 60s), "");
    EXPECT_EQ(pstest::read_file(p), "sshd: 198.51.100.1\nALL: 198.51.100.10\n");
}

TEST(HostsDeny, AdoptedPermanentLineStaysUntilEnded) {
    pstest::TempDir d;
    const std::string p = d / "hosts.deny";
    pstest::write_file(p, "ALL: 198.51.100.1\n");
    HostsDenyFile f(p);
    f.preload();
    EXPECT_TRUE(f.adopt("ALL: 198.51.100.1", ip("198.51.100.1"), std::nullopt));
    EXPECT_EQ(f.maintain(t0 + std::chrono::hours(24 * 365)), "");
    EXPECT_EQ(pstest::read_file(p), "ALL: 198.51.100.1\n");
    // A new ban of the host finds it present and keeps owning it.
    EXPECT_EQ(f.add("ALL: 198.51.100.1", ip("198.51.100.1"), std::nullopt).status, Status::already_present);
    f.ended(ip("198.51.100.1"));
    EXPECT_EQ(f.maintain(t0 + std::chrono::hours(24 * 366)), "");
    EXPECT_EQ(pstest::read_file(p), "");
}
