// Nft against the real kernel, each test inside a fresh network namespace
// (unshare(CLONE_NEWNET) on the test thread, restored afterwards), so the
// host's firewall is never touched. Skipped without root; results are
// checked with the nft tool, which is independent of our code.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "nft_test_util.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::kernel {
namespace {

using testutil::cidr;
using std::chrono::seconds;

struct Cmd {
    int status;
    std::string out;  // stdout + stderr
};

Cmd sh(const std::string& cmd) {
    Cmd r{-1, {}};
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::pair<int, int> kernel_version() {
    utsname u{};
    uname(&u);
    int maj = 0, min = 0;
    std::sscanf(u.release, "%d.%d", &maj, &min);
    return {maj, min};
}

class NftNetns : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root";
        if (sh("command -v nft").status != 0) GTEST_SKIP() << "needs the nft tool";
        saved_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(saved_, 0) << strerror(errno);
        if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "cannot create a network namespace: " << strerror(errno);
        in_ns_ = true;
    }
    void TearDown() override {
        if (in_ns_) {
            EXPECT_EQ(setns(saved_, CLONE_NEWNET), 0) << strerror(errno);
        }
        if (saved_ >= 0) close(saved_);
    }

    static RulesetSpec spec(Backend b) {
        RulesetSpec s = RulesetSpec::from_config(testutil::advanced_config(), b);
        s.never = {cidr("203.0.113.1")};
        return s;
    }

    int saved_ = -1;
    bool in_ns_ = false;
};

TEST_F(NftNetns, ProbeMatchesWhatTheKernelAcceptsAndLeavesNoTable) {
    Nft nft;
    auto avail = nft.probe_backends();
    std::string names;
    for (auto b : avail) names += std::string(to_string(b)) + " ";
    std::printf("[ info ] backends accepted by this kernel: %s\n", names.c_str());
    EXPECT_EQ(sh("nft list tables").out, "") << "the probe left a table behind";

    // Cross-check each verdict with nft itself (or, for xt-queue, which nft
    // cannot express, with apply()).
    auto in = [&](Backend b) { return std::find(avail.begin(), avail.end(), b) != avail.end(); };
    auto nft_accepts = [](const std::string& stmt) {
        return sh("printf 'table inet t {\\n chain c {\\n type filter hook input priority 0;\\n " + stmt +
                  "\\n }\\n}\\n' | nft -c -f -").status == 0;
    };
    EXPECT_EQ(in(Backend::queue), nft_accepts("meta l4proto tcp queue num 0 bypass"));
    EXPECT_EQ(in(Backend::nflog), nft_accepts("meta l4proto tcp log group 5 drop"));
    for (Backend b : {Backend::queue, Backend::xt_queue, Backend::nflog}) {
        bool applied = true;
        try {
            nft.apply(spec(b));
        } catch (const NftError& e) {
            applied = false;
            // Refused for the steering expression, not for anything else.
            EXPECT_TRUE(has(e.object(), "expression #3")) << e.what();
        }
        EXPECT_EQ(in(b), applied) << to_string(b);
    }
    // On this project's kernels (docs/ARCHITECTURE.md): no nft_queue, xt NFQUEUE and log work.
    EXPECT_TRUE(in(Backend::xt_queue) || in(Backend::queue));
    EXPECT_TRUE(in(Backend::nflog));
}

TEST_F(NftNetns, ApplyBuildsTheTableNftCanList) {
    Nft nft;
    EXPECT_FALSE(nft.table_exists());
    nft.apply(spec(Backend::nflog), {{cidr("198.51.100.2"), seconds(3600)}});
    EXPECT_TRUE(nft.table_exists());
    Cmd l = sh("nft list table inet portsentry");
    ASSERT_EQ(l.status, 0) << l.out;
    for (const char* want : {"set banned {", "set banned6 {", "set never {", "set never6 {", "set ignore {",
                             "set ignore6 {", "set tcp_watched {", "set udp_watched {", "flags interval,timeout",
                             "size 65536", "chain prerouting {", "hook prerouting priority raw; policy accept;",
                             "chain input {", "ip saddr @never accept", "ip6 saddr @banned6 drop",
                             "ct state established,related accept", "iif \"lo\" accept", "fib daddr type != local accept",
                             "tcp dport != @tcp_watched accept", "socket transparent 0 accept",
                             "meta l4proto tcp log group 5 drop", "meta l4proto udp log group 5\n",
                             "elements = { 1-112, 114-138, 140-1023 }", "192.0.2.0/24", "2001:db8::/32",
                             "203.0.113.1", "198.51.100.2 timeout 1h"})
        EXPECT_TRUE(has(l.out, want)) << "missing: " << want << "\n" << l.out;
    EXPECT_FALSE(has(l.out, "192.0.2.9")) << "covered ignore entry became an element";
}

TEST_F(NftNetns, ApplyTwiceReplacesAndNeverTouchesOtherTables) {
    ASSERT_EQ(sh("nft add table inet other && nft add chain inet other c").status, 0);
    Nft nft;
    nft.apply(spec(Backend::nflog));
    auto s2 = spec(Backend::nflog);
    s2.tcp_ports = {{22, 22}};
    s2.udp_ports = {};
    nft.apply(s2, {{cidr("192.0.2.50"), std::nullopt}});
    Cmd l = sh("nft list table inet portsentry");
    EXPECT_TRUE(has(l.out, "elements = { 22 }")) << l.out;
    EXPECT_FALSE(has(l.out, "1-112")) << "old elements survived the replace";
    EXPECT_TRUE(has(l.out, "meta l4proto udp accept")) << l.out;
    EXPECT_TRUE(has(l.out, "192.0.2.50")) << l.out;
    EXPECT_EQ(sh("nft list table inet other").status, 0);
    nft.remove_table();
    EXPECT_FALSE(nft.table_exists());
    nft.remove_table();  // absent: not an error
    EXPECT_EQ(sh("nft list table inet other").status, 0);
}

TEST_F(NftNetns, RulesetIntactSeesAFlushedTableOrADeletedRule) {
    Nft nft;
    EXPECT_FALSE(nft.ruleset_intact());
    EXPECT_EQ(nft.rule_count(), 0u);
    nft.apply(spec(Backend::nflog));
    const size_t rules = nft.rule_count();
    EXPECT_GT(rules, 4u);
    EXPECT_TRUE(nft.ruleset_intact());
    ASSERT_EQ(sh("nft delete rule inet portsentry prerouting handle "
                 "$(nft -a list chain inet portsentry prerouting | awk '/@banned drop/ {print $NF; exit}')")
                  .status,
              0);
    EXPECT_EQ(nft.rule_count(), rules - 1);
    EXPECT_FALSE(nft.ruleset_intact());
    nft.apply(spec(Backend::nflog));
    EXPECT_TRUE(nft.ruleset_intact());
    ASSERT_EQ(sh("nft flush table inet portsentry").status, 0);
    EXPECT_TRUE(nft.table_exists()) << "a flushed table is still there";
    EXPECT_EQ(nft.rule_count(), 0u);
    EXPECT_FALSE(nft.ruleset_intact());
}

TEST_F(NftNetns, CheckValidatesWithoutChangingAnything) {
    Nft nft;
    nft.check(spec(Backend::nflog));
    EXPECT_FALSE(nft.table_exists());
}

TEST_F(NftNetns, AddAndDeleteBans) {
    Nft nft;
    nft.apply(spec(Backend::nflog));
    nft.add_bans({{cidr("192.0.2.7"), seconds(3600)},
                  {cidr("198.51.100.0/24"), std::nullopt},
                  {cidr("2001:db8:1::/64"), seconds(600)}});
    Cmd v4 = sh("nft list set inet portsentry banned");
    EXPECT_TRUE(has(v4.out, "192.0.2.7 timeout 1h expires")) << v4.out;
    EXPECT_TRUE(has(v4.out, "198.51.100.0/24")) << v4.out;
    Cmd v6 = sh("nft list set inet portsentry banned6");
    EXPECT_TRUE(has(v6.out, "2001:db8:1::/64 timeout 10m")) << v6.out;

    // Re-banning is not an error; 6.12+ refreshes the timeout, older kernels keep it.
    nft.add_bans({{cidr("192.0.2.7"), seconds(7200)}});
    v4 = sh("nft list set inet portsentry banned");
    if (kernel_version() >= std::pair{6, 12})
        EXPECT_TRUE(has(v4.out, "192.0.2.7 timeout 2h")) << v4.out;
    else
        EXPECT_TRUE(has(v4.out, "192.0.2.7 timeout 1h")) << v4.out;

    // Deleting present and absent elements together: the absent one is ignored.
    nft.del_bans({cidr("192.0.2.7"), cidr("203.0.113.9"), cidr("2001:db8:1::/64")});
    v4 = sh("nft list set inet portsentry banned");
    EXPECT_FALSE(has(v4.out, "192.0.2.7")) << v4.out;
    EXPECT_TRUE(has(v4.out, "198.51.100.0/24")) << v4.out;
    EXPECT_FALSE(has(sh("nft list set inet portsentry banned6").out, "2001:db8:1::")) ;
    nft.del_bans({cidr("192.0.2.7")});  // already gone
}

TEST_F(NftNetns, SetNeverReplacesBothSetsInOneBatch) {
    Nft nft;
    nft.apply(spec(Backend::nflog));  // never = { 203.0.113.1 }
    nft.set_never({cidr("192.0.2.1"), cidr("192.0.2.0/24"), cidr("127.0.0.0/8"), cidr("2001:db8::53"),
                   cidr("fe80::/10")});
    Cmd v4 = sh("nft list set inet portsentry never");
    EXPECT_FALSE(has(v4.out, "203.0.113.1")) << v4.out;  // the old content is gone
    EXPECT_TRUE(has(v4.out, "192.0.2.0/24")) << v4.out;  // 192.0.2.1 is covered: dropped, no overlap error
    EXPECT_TRUE(has(v4.out, "127.0.0.0/8")) << v4.out;
    Cmd v6 = sh("nft list set inet portsentry never6");
    EXPECT_TRUE(has(v6.out, "2001:db8::53")) << v6.out;
    EXPECT_TRUE(has(v6.out, "fe80::/10")) << v6.out;
    // Again with different content (the flush must not fail on full sets), then empty.
    nft.set_never({cidr("198.51.100.53")});
    v4 = sh("nft list set inet portsentry never");
    EXPECT_TRUE(has(v4.out, "198.51.100.53")) << v4.out;
    EXPECT_FALSE(has(v4.out, "192.0.2.0/24")) << v4.out;
    EXPECT_FALSE(has(sh("nft list set inet portsentry never6").out, "2001:db8")) ;
    nft.set_never({});
    EXPECT_FALSE(has(sh("nft list set inet portsentry never").out, "198.51.100.53"));
}

TEST_F(NftNetns, RefusedBanNamesTheElementAndSparesTheOthers) {
    Nft nft;
    nft.apply(spec(Backend::nflog), {{cidr("198.51.100.0/24"), std::nullopt}});
    // 198.51.100.5 overlaps the banned /24: refused; 192.0.2.1 still goes in.
    auto refused = nft.add_bans({{cidr("198.51.100.5"), seconds(60)}, {cidr("192.0.2.1"), seconds(60)}});
    ASSERT_EQ(refused.size(), 1u) << "overlap accepted";
    EXPECT_EQ(refused[0].prefix, cidr("198.51.100.5"));
    EXPECT_EQ(refused[0].error.error(), EEXIST) << refused[0].error.what();
    EXPECT_TRUE(has(refused[0].error.object(), "198.51.100.5")) << refused[0].error.object();
    EXPECT_TRUE(has(sh("nft list set inet portsentry banned").out, "192.0.2.1"));
}

TEST_F(NftNetns, FullSetIsReportedAtItsSize) {
    Nft nft;
    auto s = spec(Backend::nflog);
    s.set_size = 2;  // the static sets (3 watched TCP ranges) grow to fit their elements
    s.ignore.clear();
    s.never.clear();
    nft.apply(s);
    EXPECT_TRUE(nft.add_bans({{cidr("192.0.2.1"), seconds(60)}, {cidr("192.0.2.3"), seconds(60)}}).empty());  // exactly full
    auto refused = nft.add_bans({{cidr("192.0.2.5"), seconds(60)}});
    ASSERT_EQ(refused.size(), 1u) << "third element accepted in a set of size 2";
    EXPECT_EQ(refused[0].error.error(), ENFILE) << refused[0].error.what();
    EXPECT_TRUE(has(refused[0].error.what(), "set is full")) << refused[0].error.what();
}

TEST_F(NftNetns, BanWithoutTableSaysWhatIsMissing) {
    Nft nft;
    auto refused = nft.add_bans({{cidr("192.0.2.1"), seconds(60)}});
    ASSERT_EQ(refused.size(), 1u) << "accepted without a table";
    EXPECT_EQ(refused[0].error.error(), ENOENT);
    EXPECT_TRUE(has(refused[0].error.object(), "add element @banned { 192.0.2.1 timeout 60s }"))
        << refused[0].error.object();
}

TEST_F(NftNetns, QueueRefusalNamesTheQueueExpression) {
    Nft nft;
    auto avail = nft.probe_backends();
    if (std::find(avail.begin(), avail.end(), Backend::queue) != avail.end())
        GTEST_SKIP() << "this kernel has nft_queue";
    try {
        nft.apply(spec(Backend::queue));
        ADD_FAILURE() << "queue accepted although the probe refused it";
    } catch (const NftError& e) {
        EXPECT_EQ(e.error(), ENOENT);
        EXPECT_TRUE(has(e.object(), "rule input#9: meta l4proto tcp queue num 0 bypass, expression #3 (queue)"))
            << e.object();
        EXPECT_TRUE(has(e.what(), "--steer xt-queue or nflog")) << e.what();
    }
    EXPECT_FALSE(nft.table_exists()) << "a failed batch must change nothing";
}

// nft/portsentry.nft loads with `nft -f` on a kernel with nft_queue. Here it
// is checked with `nft -c`: if the kernel lacks nft_queue, the check must fail
// only because of the queue statements (they become `log group 5` and pass).
TEST_F(NftNetns, ShippedRulesetFileChecks) {
    const std::string file = std::string(PS_SOURCE_ROOT) + "/nft/portsentry.nft";
    Cmd c = sh("nft -c -f " + file);
    if (c.status == 0) return;  // kernel with nft_queue: loads as is
    EXPECT_TRUE(has(c.out, "queue")) << c.out;
    Cmd c2 = sh("sed -E 's/queue num [0-9]+ bypass/log group 5/' " + file + " | nft -c -f -");
    EXPECT_EQ(c2.status, 0) << c2.out;
    // And it really loads (then lists the same sets and chains).
    Cmd c3 = sh("sed -E 's/queue num [0-9]+ bypass/log group 5/' " + file +
                " | nft -f - && nft list table inet portsentry");
    ASSERT_EQ(c3.status, 0) << c3.out;
    EXPECT_TRUE(has(c3.out, "elements = { 1-112, 114-138, 140-1023 }")) << c3.out;
}

// --print-ruleset output is loadable by nft (nflog form, which this kernel has).
TEST_F(NftNetns, RenderedRulesetLoadsWithNft) {
    const std::string text = render_ruleset(spec(Backend::nflog));
    std::string path = "/tmp/ps-render-" + std::to_string(getpid()) + ".nft";
    std::ofstream(path) << text;
    Cmd c = sh("nft -f " + path + " && nft list table inet portsentry");
    unlink(path.c_str());
    ASSERT_EQ(c.status, 0) << c.out << "\n" << text;
    EXPECT_TRUE(has(c.out, "meta l4proto tcp log group 5 drop")) << c.out;
    // Loading it again works too (the replace idiom at the top of the file).
    std::ofstream(path) << text;
    EXPECT_EQ(sh("nft -f " + path).status, 0);
    unlink(path.c_str());
}

}  // namespace
}  // namespace portsentry::kernel
