// Legacy reader: Debian's stock files and a typical tutorial's edits load, the
// mode comes from flags or /etc/default/portsentry, and --import-legacy
// round-trips through YAML to an equal Config.
#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace pc = portsentry::config;
using pc::Mode;
using pc::PortRange;
using std::chrono::seconds;

namespace {

const std::string kData = PS_TEST_DATA_DIR;

std::vector<PortRange> R(std::initializer_list<std::pair<int, int>> l) {
    std::vector<PortRange> v;
    for (auto [a, b] : l) v.push_back({static_cast<uint16_t>(a), static_cast<uint16_t>(b)});
    return v;
}

pc::LoadOptions opts(const std::string& defaults, std::vector<std::string> flags = {}) {
    pc::LoadOptions o;
    o.defaults_file = defaults;
    o.mode_flags = std::move(flags);
    o.load_ignore_files = false;  // IGNORE_FILE points at /etc; tested in test_ignore
    return o;
}

// Every setting compared field by field (not through the key table, so that a
// table bug cannot hide itself).
void expect_same(const pc::Config& a, const pc::Config& b) {
    EXPECT_EQ(a.tcp, b.tcp);
    EXPECT_EQ(a.udp, b.udp);
    EXPECT_EQ(a.ignore_file, b.ignore_file);
    EXPECT_EQ(a.history_file, b.history_file);
    EXPECT_EQ(a.blocked_file, b.blocked_file);
    EXPECT_EQ(a.resolve_host, b.resolve_host);
    EXPECT_EQ(a.kill_route, b.kill_route);
    EXPECT_EQ(a.kill_hosts_deny, b.kill_hosts_deny);
    EXPECT_EQ(a.kill_run_cmd, b.kill_run_cmd);
    EXPECT_EQ(a.kill_run_cmd_first, b.kill_run_cmd_first);
    EXPECT_EQ(a.scan_trigger, b.scan_trigger);
    EXPECT_EQ(a.port_banner, b.port_banner);
    EXPECT_EQ(a.scan_window, b.scan_window);
    EXPECT_EQ(a.ban_time, b.ban_time);
    EXPECT_EQ(a.run_cmd_timeout, b.run_cmd_timeout);
    EXPECT_EQ(a.steer, b.steer);
    EXPECT_EQ(a.queue_num, b.queue_num);
    EXPECT_EQ(a.nflog_group, b.nflog_group);
    EXPECT_EQ(a.ban_set_size, b.ban_set_size);
    EXPECT_EQ(a.max_tracked_sources, b.max_tracked_sources);
    EXPECT_EQ(a.hosts_deny_file, b.hosts_deny_file);
    EXPECT_EQ(a.state_file, b.state_file);
    EXPECT_EQ(a.control_socket, b.control_socket);
    EXPECT_EQ(a.json_log, b.json_log);
    EXPECT_EQ(a.dry_run, b.dry_run);
    EXPECT_TRUE(pc::same_settings(a, b));
}

}  // namespace

TEST(Legacy, DebianStockFilesLoad) {
    auto c = pc::load_legacy(kData + "/debian-stock/portsentry.conf",
                             opts(kData + "/debian-stock/default-portsentry"));
    EXPECT_TRUE(c.legacy);
    EXPECT_EQ(c.source_file, kData + "/debian-stock/portsentry.conf");
    // /etc/default/portsentry from postinst: TCP_MODE="tcp", UDP_MODE="udp".
    EXPECT_EQ(c.tcp.mode, Mode::classic);
    EXPECT_EQ(c.udp.mode, Mode::classic);
    // The "just want to be aware" lists are the live ones; the others are commented out.
    EXPECT_EQ(c.tcp.ports, R({{1, 1},         {11, 11},       {15, 15},       {79, 79},       {111, 111},
                              {119, 119},     {143, 143},     {540, 540},     {635, 635},     {1080, 1080},
                              {1524, 1524},   {2000, 2000},   {5742, 5742},   {6667, 6667},   {12345, 12345},
                              {12346, 12346}, {20034, 20034}, {27665, 27665}, {31337, 31337}, {32771, 32771},
                              {32772, 32772}, {32773, 32773}, {32774, 32774}, {40421, 40421}, {49724, 49724},
                              {54320, 54320}}));
    EXPECT_EQ(c.udp.ports.size(), 21u);
    EXPECT_EQ(c.udp.ports.front(), (PortRange{1, 1}));
    EXPECT_EQ(c.udp.ports[11], (PortRange{37444, 37444}));
    EXPECT_EQ(c.tcp.advanced_ports, 1024);
    EXPECT_EQ(c.udp.advanced_ports, 1024);
    EXPECT_EQ(c.tcp.advanced_exclude, R({{113, 113}, {139, 139}}));
    EXPECT_EQ(c.udp.advanced_exclude, R({{520, 520}, {138, 138}, {137, 137}, {67, 67}}));
    EXPECT_EQ(c.ignore_file, "/etc/portsentry/portsentry.ignore");
    EXPECT_EQ(c.history_file, "/var/lib/portsentry/portsentry.history");
    EXPECT_EQ(c.blocked_file, "/var/lib/portsentry/portsentry.blocked");
    EXPECT_FALSE(c.resolve_host);  // RESOLVE_HOST = "0" (spaced in the stock file)
    EXPECT_EQ(c.tcp.block, 0);
    EXPECT_EQ(c.udp.block, 0);
    EXPECT_EQ(c.kill_route, "/sbin/route add -host $TARGET$ reject");
    EXPECT_TRUE(c.kill_route_is_builtin());
    EXPECT_EQ(c.kill_hosts_deny, "ALL: $TARGET$ : DENY");
    EXPECT_EQ(c.kill_run_cmd, "");
    EXPECT_FALSE(c.kill_run_cmd_first);
    EXPECT_EQ(c.scan_trigger, 0u);
    EXPECT_EQ(c.port_banner, "");  // commented out
    EXPECT_EQ(c.ban_time, seconds(0));  // permanent, as 1.2
    EXPECT_EQ(c.scan_window, seconds(3600));
}

TEST(Legacy, TutorialEditsLoad) {
    auto c = pc::load_legacy(kData + "/tutorial/portsentry.conf", opts(kData + "/tutorial/default-portsentry"));
    EXPECT_EQ(c.tcp.mode, Mode::advanced);
    EXPECT_EQ(c.udp.mode, Mode::advanced);
    EXPECT_EQ(c.tcp.block, 1);  // BLOCK_TCP = "1"
    EXPECT_EQ(c.udp.block, 1);
    EXPECT_EQ(c.kill_route, "/sbin/iptables -I INPUT -s $TARGET$ -j DROP");
    EXPECT_TRUE(c.kill_route_is_builtin());
    EXPECT_EQ(c.kill_hosts_deny, "ALL: $TARGET$ : DENY");
    EXPECT_EQ(c.tcp.advanced_exclude, R({{113, 113}, {139, 139}}));  // ADVANCED_EXCLUDE_TCP = "113,139"
    EXPECT_EQ(c.scan_trigger, 1u);
    EXPECT_EQ(c.tcp.watched(), R({{1, 112}, {114, 138}, {140, 1023}}));
    EXPECT_EQ(c.udp.watched(), R({{1, 66}, {68, 136}, {139, 519}, {521, 1023}}));
}

TEST(Legacy, ModeFlagsOverrideTheDefaultsFile) {
    const std::string conf = kData + "/debian-stock/portsentry.conf";
    auto c = pc::load_legacy(conf, opts(kData + "/debian-stock/default-portsentry", {"atcp", "sudp"}));
    EXPECT_EQ(c.tcp.mode, Mode::advanced);
    EXPECT_EQ(c.udp.mode, Mode::stealth);
    // As in 1.2, `portsentry -atcp` alone watches TCP only.
    c = pc::load_legacy(conf, opts(kData + "/debian-stock/default-portsentry", {"-atcp"}));
    EXPECT_EQ(c.tcp.mode, Mode::advanced);
    EXPECT_EQ(c.udp.mode, Mode::off);
}

TEST(Legacy, MissingDefaultsFileMeansDebiansClassicDefault) {
    auto c = pc::load_legacy(kData + "/debian-stock/portsentry.conf", opts(kData + "/does-not-exist"));
    EXPECT_EQ(c.tcp.mode, Mode::classic);
    EXPECT_EQ(c.udp.mode, Mode::classic);
}

TEST(Legacy, DefaultsFileShellSpellings) {
    // Written to a temp file: the reader takes a path.
    const std::string path = ::testing::TempDir() + "ps-defaults-spellings";
    {
        FILE* f = std::fopen(path.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs("# comment\n\nexport TCP_MODE=stcp\r\nUDP_MODE=''\n", f);
        std::fclose(f);
    }
    auto c = pc::parse_legacy("TCP_PORTS=\"1,2\"\n", "x.conf", opts(path));
    EXPECT_EQ(c.tcp.mode, Mode::stealth);
    EXPECT_EQ(c.udp.mode, Mode::off);  // empty: the init script starts nothing
    std::remove(path.c_str());
}

TEST(Legacy, LineSyntaxVariants) {
    auto c = pc::parse_legacy(
        "   # indented comment\n"
        "TCP_PORTS=\"1,11,6000-6010\"\n"
        "UDP_PORTS = \"7,9\"   # trailing comment\n"
        "ADVANCED_PORTS_TCP=2048\n"
        "ADVANCED_PORTS_UDP = 512 # bare value with comment\n"
        "\tBLOCK_TCP=\"2\"\r\n"
        "KILL_RUN_CMD=\"/usr/local/bin/page #ops $TARGET$\"\n"
        "KILL_RUN_CMD_FIRST = \"1\"\n"
        "PORT_BANNER=\"** GO AWAY **\"\n"
        "RESOLVE_HOST=1\n",
        "/etc/portsentry/portsentry.conf", opts("/nonexistent", {"stcp", "udp"}));
    EXPECT_EQ(c.tcp.ports, R({{1, 1}, {11, 11}, {6000, 6010}}));
    EXPECT_EQ(c.udp.ports, R({{7, 7}, {9, 9}}));
    EXPECT_EQ(c.tcp.advanced_ports, 2048);
    EXPECT_EQ(c.udp.advanced_ports, 512);
    EXPECT_EQ(c.tcp.block, 2);
    EXPECT_EQ(c.udp.block, 1);  // not set: default
    EXPECT_EQ(c.kill_run_cmd, "/usr/local/bin/page #ops $TARGET$");  // # inside quotes is data
    EXPECT_TRUE(c.kill_run_cmd_first);
    EXPECT_EQ(c.port_banner, "** GO AWAY **");
    EXPECT_TRUE(c.resolve_host);
}

TEST(Legacy, RelativePathsAreRelativeToTheConfigFile) {
    auto c = pc::parse_legacy("TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\nHISTORY_FILE=\"hist\"\n", "/srv/ps/portsentry.conf",
                              opts("/nonexistent"));
    EXPECT_EQ(c.history_file, "/srv/ps/hist");
    EXPECT_EQ(c.blocked_file, "/var/lib/portsentry/portsentry.blocked");
}

TEST(Legacy, ImportLegacyRoundTripsThroughYaml) {
    for (const char* dir : {"debian-stock", "tutorial"}) {
        SCOPED_TRACE(dir);
        const auto o = opts(kData + "/" + dir + "/default-portsentry");
        auto legacy = pc::import_legacy(kData + "/" + dir, o);  // a directory: DIR/portsentry.conf
        EXPECT_EQ(legacy.source_file, kData + "/" + dir + "/portsentry.conf");
        const std::string yaml = pc::to_yaml(legacy);
        EXPECT_NE(yaml.find("--import-legacy from " + legacy.source_file), std::string::npos);
        pc::LoadOptions yo;
        yo.load_ignore_files = false;
        auto back = pc::parse_yaml(yaml, "imported.yaml", yo);
        EXPECT_FALSE(back.legacy);
        expect_same(legacy, back);
        // And the YAML writer is stable: writing the re-read config gives the same body.
        std::string again = pc::to_yaml(back);
        EXPECT_EQ(yaml.substr(yaml.find("\ntcp:")), again.substr(again.find("\ntcp:")));
    }
}

TEST(Legacy, RoundTripKeepsAwkwardStrings) {
    auto legacy = pc::parse_legacy(
        "TCP_PORTS=\"1,2-9\"\nUDP_PORTS=\"1\"\n"
        "KILL_HOSTS_DENY=\"ALL: $TARGET$ : spawn (echo \\%c \\%h) : DENY\"\n"
        "PORT_BANNER=\"  spaces kept # not a comment  \"\n"
        "KILL_ROUTE=\"/usr/local/sbin/ban-it --reason 'scan' $TARGET$\"\n",
        "t.conf", opts("/nonexistent"));
    EXPECT_EQ(legacy.kill_hosts_deny, "ALL: $TARGET$ : spawn (echo \\%c \\%h) : DENY");
    EXPECT_EQ(legacy.port_banner, "  spaces kept # not a comment  ");
    pc::LoadOptions yo;
    yo.load_ignore_files = false;
    auto back = pc::parse_yaml(pc::to_yaml(legacy), "imported.yaml", yo);
    expect_same(legacy, back);
}
