// render_ruleset (--print-ruleset) against checked-in golden files, and
// RulesetSpec::from_config. No root needed.
//
// To regenerate the golden files after an intended change:
//   PS_UPDATE_GOLDEN=1 build/tests/unit/kernel/test_kernel --gtest_filter='NftRender*'
// and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nft_test_util.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::kernel {
namespace {

using testutil::cidr;

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

void expect_golden(const std::string& name, const std::string& actual) {
    const std::string path = std::string(PS_GOLDEN_DIR) + "/" + name;
    if (std::getenv("PS_UPDATE_GOLDEN")) {
        std::ofstream(path) << actual;
        GTEST_SKIP() << "rewrote " << path;
    }
    const std::string expected = read_file(path);
    ASSERT_FALSE(expected.empty()) << "missing golden file " << path;
    EXPECT_EQ(expected, actual) << "render_ruleset differs from " << path;
}

// Lines that are not comments or blank: what nft actually parses.
std::string statements(const std::string& text) {
    std::istringstream in(text);
    std::string line, out;
    while (std::getline(in, line)) {
        auto p = line.find_first_not_of(" \t");
        if (p == std::string::npos || line[p] == '#') continue;
        out += line.substr(p) + "\n";
    }
    return out;
}

TEST(NftRender, AdvancedXtQueueMatchesGolden) {
    auto spec = RulesetSpec::from_config(testutil::advanced_config(), Backend::xt_queue);
    expect_golden("ruleset-advanced-xt-queue.nft", render_ruleset(spec));
}

TEST(NftRender, AdvancedNflogMatchesGolden) {
    auto spec = RulesetSpec::from_config(testutil::advanced_config(), Backend::nflog);
    expect_golden("ruleset-advanced-nflog.nft", render_ruleset(spec));
}

TEST(NftRender, ClassicQueueMatchesGolden) {
    auto spec = RulesetSpec::from_config(testutil::classic_config(), Backend::queue);
    expect_golden("ruleset-classic-queue.nft", render_ruleset(spec));
}

// nft/portsentry.nft is the documented stock-kernel form: the same statements
// the daemon builds for Debian's stock advanced config on the queue backend.
TEST(NftRender, ShippedRulesetFileIsTheQueueFormOfTheStockConfig) {
    auto c = testutil::advanced_config();
    c.ignore = net::CidrSet();
    c.udp.block = 1;
    auto spec = RulesetSpec::from_config(c, Backend::queue);
    const std::string shipped = read_file(std::string(PS_SOURCE_ROOT) + "/nft/portsentry.nft");
    ASSERT_FALSE(shipped.empty());
    EXPECT_EQ(statements(render_ruleset(spec)), statements(shipped));
}

TEST(NftRender, QueueAndXtQueueDifferOnlyInTheComment) {
    auto c = testutil::advanced_config();
    auto q = render_ruleset(RulesetSpec::from_config(c, Backend::queue));
    auto x = render_ruleset(RulesetSpec::from_config(c, Backend::xt_queue));
    EXPECT_NE(q, x);
    EXPECT_EQ(statements(q), statements(x));
    EXPECT_NE(x.find("# loaded as the xt NFQUEUE target"), std::string::npos);
}

TEST(NftRender, OffProtocolIsAcceptedAndNotSteered) {
    RulesetSpec s;
    s.tcp_ports = {{22, 22}};
    s.backend = Backend::queue;
    auto text = render_ruleset(s);
    EXPECT_NE(text.find("tcp dport != @tcp_watched accept"), std::string::npos);
    EXPECT_NE(text.find("meta l4proto udp accept"), std::string::npos);
    EXPECT_NE(text.find("meta l4proto tcp queue num 0 bypass"), std::string::npos);
    EXPECT_EQ(text.find("meta l4proto udp queue"), std::string::npos);
    // The set still exists (names are a contract), empty.
    EXPECT_NE(text.find("set udp_watched {"), std::string::npos);
}

TEST(NftSpec, FromConfigAdvancedWatchesRangeMinusExcludes) {
    auto s = RulesetSpec::from_config(testutil::advanced_config(), Backend::nflog);
    EXPECT_EQ(s.tcp_ports, (std::vector<config::PortRange>{{1, 112}, {114, 138}, {140, 1023}}));
    EXPECT_EQ(s.udp_ports, (std::vector<config::PortRange>{{1, 66}, {68, 136}, {139, 519}, {521, 1023}}));
    EXPECT_EQ(s.backend, Backend::nflog);
    EXPECT_EQ(s.queue_num, 0);
    EXPECT_EQ(s.nflog_group, 5);
    EXPECT_EQ(s.set_size, 65536u);
    EXPECT_EQ(s.ignore.size(), 4u);  // from_config passes the list; the builder drops covered ones
}

TEST(NftSpec, NflogDropFollowsBlockPerProtocolAndDryRun) {
    auto c = testutil::advanced_config();  // TCP block 1, UDP block 0
    auto s = RulesetSpec::from_config(c, Backend::nflog);
    EXPECT_TRUE(s.nflog_drop);
    ASSERT_TRUE(s.nflog_drop_udp.has_value());
    EXPECT_FALSE(*s.nflog_drop_udp);
    auto text = render_ruleset(s);
    EXPECT_NE(text.find("meta l4proto tcp log group 5 drop\n"), std::string::npos);
    EXPECT_NE(text.find("meta l4proto udp log group 5\n"), std::string::npos);

    c.udp.block = 2;  // command only: still a DROP verdict
    s = RulesetSpec::from_config(c, Backend::nflog);
    EXPECT_TRUE(s.nflog_drop);
    EXPECT_FALSE(s.nflog_drop_udp.has_value());

    c.dry_run = true;  // dry run never drops
    s = RulesetSpec::from_config(c, Backend::nflog);
    EXPECT_FALSE(s.nflog_drop);
    EXPECT_FALSE(s.nflog_drop_udp.has_value());

    c.dry_run = false;
    c.tcp.mode = config::Mode::off;  // only UDP watched: its decision is the one
    c.udp.block = 0;
    s = RulesetSpec::from_config(c, Backend::nflog);
    EXPECT_TRUE(s.tcp_ports.empty());
    EXPECT_FALSE(s.nflog_drop);
}

TEST(NftSpec, BackendNamesRoundTrip) {
    for (Backend b : {Backend::queue, Backend::xt_queue, Backend::nflog})
        EXPECT_EQ(backend_from_string(to_string(b)), b);
    EXPECT_FALSE(backend_from_string("xt_queue").has_value());
}

TEST(NftSpec, PickBackendPrefersInlineVerdictsAndHonoursForce) {
    using config::Steer;
    EXPECT_EQ(pick_backend(Steer::auto_, {Backend::queue, Backend::xt_queue, Backend::nflog}), Backend::queue);
    EXPECT_EQ(pick_backend(Steer::auto_, {Backend::xt_queue, Backend::nflog}), Backend::xt_queue);
    EXPECT_EQ(pick_backend(Steer::auto_, {Backend::nflog}), Backend::nflog);
    EXPECT_FALSE(pick_backend(Steer::auto_, {}).has_value());
    // Forced: returned even if the probe refused it (apply() then says why).
    EXPECT_EQ(pick_backend(Steer::queue, {Backend::nflog}), Backend::queue);
    EXPECT_EQ(pick_backend(Steer::nflog, {Backend::queue}), Backend::nflog);
}

}  // namespace
}  // namespace portsentry::kernel
