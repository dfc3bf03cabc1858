// Native YAML reader: the shipped etc/portsentry.yaml, the shape and spellings
// it accepts, defaults, mode flags, format detection through load().
#include <unistd.h>

#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace pc = portsentry::config;
using pc::Mode;
using pc::PortRange;
using std::chrono::seconds;

namespace {

const std::string kRoot = PS_SOURCE_ROOT;
const std::string kData = PS_TEST_DATA_DIR;

std::vector<PortRange> R(std::initializer_list<std::pair<int, int>> l) {
    std::vector<PortRange> v;
    for (auto [a, b] : l) v.push_back({static_cast<uint16_t>(a), static_cast<uint16_t>(b)});
    return v;
}

pc::LoadOptions no_ignore() {
    pc::LoadOptions o;
    o.load_ignore_files = false;
    return o;
}

// Readers only: the fleet's secret files are not there (test_secret.cpp has them).
pc::LoadOptions no_files() {
    pc::LoadOptions o = no_ignore();
    o.check_fleet_files = false;
    return o;
}

std::string read(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return {};
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
    return s;
}

}  // namespace

TEST(Yaml, ShippedConfigIsAdvancedBlockingWithItsIgnoreFile) {
    const std::string path = kRoot + "/etc/portsentry.yaml";
    auto c = pc::load(path);  // detected as YAML; ignore files loaded
    EXPECT_FALSE(c.legacy);
    EXPECT_EQ(c.tcp.mode, Mode::advanced);
    EXPECT_EQ(c.udp.mode, Mode::advanced);
    EXPECT_EQ(c.tcp.block, 1);
    EXPECT_EQ(c.udp.block, 1);
    EXPECT_EQ(c.tcp.advanced_ports, 1024);
    EXPECT_EQ(c.tcp.advanced_exclude, R({{113, 113}, {139, 139}}));
    EXPECT_EQ(c.udp.advanced_exclude, R({{520, 520}, {138, 138}, {137, 137}, {67, 67}}));
    EXPECT_EQ(c.tcp.ports.size(), 23u);
    EXPECT_EQ(c.tcp.ports[19], (PortRange{32771, 32774}));
    EXPECT_EQ(c.history_file, "/var/lib/portsentry/portsentry.history");
    EXPECT_EQ(c.blocked_file, "/var/lib/portsentry/portsentry.blocked");
    EXPECT_EQ(c.ignore_file, kRoot + "/etc/portsentry.ignore");  // relative to the YAML file
    EXPECT_TRUE(c.kill_route_is_builtin());
    EXPECT_EQ(c.ban_time, seconds(3600));
    // etc/portsentry.ignore.static was merged.
    EXPECT_TRUE(c.ignore.contains(*portsentry::net::IpAddr::parse("127.0.0.1")));
    EXPECT_TRUE(c.ignore.contains(*portsentry::net::IpAddr::parse("::1")));
    EXPECT_FALSE(c.ignore.contains(*portsentry::net::IpAddr::parse("192.0.2.1")));
}

TEST(Yaml, ShippedConfigDocumentsEveryKey) {
    // etc/portsentry.yaml is the user's reference: every key of the table is
    // present, uncommented, with its table description above it.
    const std::string text = read(kRoot + "/etc/portsentry.yaml");
    ASSERT_FALSE(text.empty());
    for (const auto& k : pc::keys()) {
        const std::string y(k.yaml);
        const auto dot = y.rfind('.');
        const std::string leaf = dot == std::string::npos ? y : y.substr(dot + 1);
        const std::string indent = dot == std::string::npos ? "" : "  ";
        EXPECT_NE(text.find("\n" + indent + leaf + ":"), std::string::npos) << y;
        // The first words of the description appear as a comment.
        const std::string first(k.description.substr(0, k.description.find(' ', 12)));
        EXPECT_NE(text.find("# " + first), std::string::npos) << y << ": " << first;
    }
}

TEST(Yaml, EmptyDocumentIsAllDefaults) {
    auto c = pc::parse_yaml("# nothing\n", "x.yaml", no_ignore());
    EXPECT_TRUE(pc::same_settings(c, pc::Config{}));
    EXPECT_EQ(c.tcp.mode, Mode::off);
    EXPECT_TRUE(c.tcp.watched().empty());
    EXPECT_EQ(c.ban_time, seconds(3600));  // YAML default; legacy files get 0
}

TEST(Yaml, SpellingsOfListsBooleansDurationsAndNulls) {
    auto c = pc::parse_yaml(
        "---\n"
        "tcp:\n"
        "  mode: Stealth\n"
        "  ports:\n"
        "    - 1\n"
        "    - \"6000-6010\"\n"
        "    - 7,9\n"
        "  block: 2\n"
        "udp:\n"
        "  mode: classic\n"
        "  ports: \"1,7-9\"\n"
        "  block: 0\n"
        "resolve_host: yes\n"
        "kill_run_cmd_first: true\n"
        "kill_run_cmd: /usr/local/bin/page $TARGET$ $PORT$ $MODE$\n"
        "kill_route: nft-set\n"
        "kill_hosts_deny: 'ALL: $TARGET$ : DENY'\n"
        "port_banner: ~\n"
        "ban_time: 2d\n"
        "scan_window: 90\n"
        "run_cmd_timeout: 1m30s\n"
        "steer: xt-queue\n"
        "queue_num: 3\n"
        "nflog_group: 7\n"
        "ban_set_size: 1048576\n"
        "max_tracked_sources: 5000\n"
        "json_log: /var/log/ps.json\n"
        "dry_run: on\n",
        "/etc/portsentry/portsentry.yaml", no_ignore());
    EXPECT_EQ(c.tcp.mode, Mode::stealth);
    EXPECT_EQ(c.tcp.ports, R({{1, 1}, {6000, 6010}, {7, 7}, {9, 9}}));
    EXPECT_EQ(c.tcp.watched(), R({{1, 1}, {7, 7}, {9, 9}, {6000, 6010}}));
    EXPECT_EQ(c.tcp.block, 2);
    EXPECT_EQ(c.udp.mode, Mode::classic);
    EXPECT_EQ(c.udp.ports, R({{1, 1}, {7, 9}}));
    EXPECT_EQ(c.udp.block, 0);
    EXPECT_TRUE(c.resolve_host);
    EXPECT_TRUE(c.kill_run_cmd_first);
    EXPECT_EQ(c.kill_run_cmd, "/usr/local/bin/page $TARGET$ $PORT$ $MODE$");
    EXPECT_TRUE(c.kill_route_is_builtin());
    EXPECT_EQ(c.kill_hosts_deny, "ALL: $TARGET$ : DENY");
    EXPECT_EQ(c.port_banner, "");
    EXPECT_EQ(c.ban_time, seconds(172800));
    EXPECT_EQ(c.scan_window, seconds(90));
    EXPECT_EQ(c.run_cmd_timeout, seconds(90));
    EXPECT_EQ(c.steer, pc::Steer::xt_queue);
    EXPECT_EQ(c.queue_num, 3);
    EXPECT_EQ(c.nflog_group, 7);
    EXPECT_EQ(c.ban_set_size, 1048576u);
    EXPECT_EQ(c.max_tracked_sources, 5000u);
    EXPECT_EQ(c.json_log, "/var/log/ps.json");
    EXPECT_TRUE(c.dry_run);
}

TEST(Yaml, ModeFlagsOverrideTheFile) {
    pc::LoadOptions o = no_ignore();
    o.mode_flags = {"-audp"};
    auto c = pc::parse_yaml("tcp:\n  mode: advanced\nudp:\n  mode: off\n", "x.yaml", o);
    EXPECT_EQ(c.tcp.mode, Mode::off);
    EXPECT_EQ(c.udp.mode, Mode::advanced);
}

TEST(Yaml, RelativePathsFollowTheConfigFile) {
    auto c = pc::parse_yaml("history_file: ../log/hist\nstate_file: ./ps.state\n", "/srv/ps/conf/x.yaml", no_ignore());
    EXPECT_EQ(c.history_file, "/srv/ps/log/hist");
    EXPECT_EQ(c.state_file, "/srv/ps/conf/ps.state");
    // A relative config path is made absolute now, so a later chdir cannot break a reload.
    char cwd[4096];
    ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
    c = pc::parse_yaml("json_log: events.json\n", "sub/x.yaml", no_ignore());
    EXPECT_EQ(c.json_log, std::string(cwd) + "/sub/events.json");
}

TEST(Yaml, LoadDetectsTheFormat) {
    pc::LoadOptions o = no_ignore();
    o.defaults_file = kData + "/tutorial/default-portsentry";
    auto legacy = pc::load(kData + "/tutorial/portsentry.conf", o);
    EXPECT_TRUE(legacy.legacy);
    EXPECT_EQ(legacy.tcp.mode, Mode::advanced);
    EXPECT_EQ(legacy.ban_time, seconds(0));
    auto yaml = pc::load(kRoot + "/etc/portsentry.yaml", o);
    EXPECT_FALSE(yaml.legacy);
}

TEST(Yaml, ToYamlOfEveryNonDefaultValueRoundTrips) {
    pc::Config c;
    c.tcp = {Mode::stealth, R({{1, 1}, {100, 200}}), 4096, R({{113, 113}}), 2};
    c.udp = {Mode::classic, R({{53, 53}}), 1, {}, 0};
    c.ignore_file = "";
    c.history_file = "/h";
    c.blocked_file = "/b";
    c.resolve_host = true;
    c.kill_route = "/usr/local/sbin/ban $TARGET$ 'quoted arg'";
    c.kill_hosts_deny = "ALL: $TARGET$ : spawn \\%h";
    c.kill_run_cmd = "/x $TARGET$";
    c.kill_run_cmd_first = true;
    c.scan_trigger = 3;
    c.port_banner = " tab\there \"quoted\" # not a comment ";
    c.scan_window = seconds(61);
    c.ban_time = seconds(0);
    c.run_cmd_timeout = seconds(3600);
    c.steer = pc::Steer::nflog;
    c.queue_num = 65535;
    c.nflog_group = 0;
    c.ban_set_size = 4294967295u;
    c.max_tracked_sources = 1;
    c.hosts_deny_file = "/etc/hosts.deny.test";
    c.state_file = "/s";
    c.control_socket = "/c.sock";
    c.json_log = "/j";
    c.dry_run = true;
    auto back = pc::parse_yaml(pc::to_yaml(c), "x.yaml", no_ignore());
    EXPECT_EQ(back.tcp, c.tcp);
    EXPECT_EQ(back.udp, c.udp);
    EXPECT_EQ(back.port_banner, c.port_banner);
    EXPECT_EQ(back.kill_hosts_deny, c.kill_hosts_deny);
    EXPECT_EQ(back.ban_set_size, c.ban_set_size);
    EXPECT_TRUE(pc::same_settings(back, c));
}

// crowdsec.lapi_url is a single URL or a list of them, in any YAML spelling.
TEST(Yaml, CrowdsecSectionInEverySpelling) {
    const std::string creds = "  machine_id: web-1\n  password_file: pw\n  bouncer_key_file: /k\n";
    auto c = pc::parse_yaml("crowdsec:\n  lapi_url: http://192.0.2.1:8080\n" + creds +
                                "  ca_file: ca.pem\n  push: false\n  push_only_proven: yes\n  pull: on\n"
                                "  poll_interval: 100ms\n  resync_interval: 1h\n  fleet_set_size: 1024\n",
                            "/etc/portsentry/portsentry.yaml", no_files());
    EXPECT_EQ(c.crowdsec.lapi_url, std::vector<std::string>{"http://192.0.2.1:8080"});
    EXPECT_EQ(c.crowdsec.machine_id, "web-1");
    EXPECT_EQ(c.crowdsec.password_file, "/etc/portsentry/pw");  // relative to the config, as every path
    EXPECT_EQ(c.crowdsec.bouncer_key_file, "/k");
    EXPECT_EQ(c.crowdsec.ca_file, "/etc/portsentry/ca.pem");
    EXPECT_FALSE(c.crowdsec.push);
    EXPECT_TRUE(c.crowdsec.push_only_proven);
    EXPECT_TRUE(c.crowdsec.pull);
    EXPECT_EQ(c.crowdsec.poll_interval, std::chrono::milliseconds(100));
    EXPECT_EQ(c.crowdsec.resync_interval, seconds(3600));
    EXPECT_EQ(c.crowdsec.fleet_set_size, 1024u);

    const std::vector<std::string> two{"http://192.0.2.1:8080", "https://[2001:db8::2]:8080/"};
    c = pc::parse_yaml("crowdsec:\n  lapi_url:\n    - http://192.0.2.1:8080\n    - \"https://[2001:db8::2]:8080/\"\n" +
                           creds,
                       "x.yaml", no_files());
    EXPECT_EQ(c.crowdsec.lapi_url, two);
    c = pc::parse_yaml("crowdsec:\n  lapi_url: [http://192.0.2.1:8080, \"https://[2001:db8::2]:8080/\"]\n" + creds,
                       "x.yaml", no_files());
    EXPECT_EQ(c.crowdsec.lapi_url, two);
    for (const char* off : {"lapi_url: \"\"", "lapi_url: []", "lapi_url:", "lapi_url: ~"}) {
        c = pc::parse_yaml(std::string("crowdsec:\n  ") + off + "\n", "x.yaml", no_files());
        EXPECT_FALSE(c.crowdsec.enabled()) << off;
    }
    // Off by default, and the defaults are Config{}'s.
    c = pc::parse_yaml("crowdsec:\n  push: true\n", "x.yaml", no_files());
    EXPECT_EQ(c.crowdsec, pc::Config{}.crowdsec);
}

TEST(Yaml, CrowdsecRoundTripsThroughToYaml) {
    pc::Config c;
    c.crowdsec.lapi_url = {"http://192.0.2.1:8080", "https://lapi.example.org/"};
    c.crowdsec.machine_id = "web \"1\"";
    c.crowdsec.password_file = "/etc/portsentry/pw";
    c.crowdsec.bouncer_key_file = "/etc/portsentry/key";
    c.crowdsec.ca_file = "/etc/ssl/lapi-ca.pem";
    c.crowdsec.push = false;
    c.crowdsec.push_only_proven = true;
    c.crowdsec.poll_interval = std::chrono::milliseconds(1500);
    c.crowdsec.resync_interval = seconds(90);
    c.crowdsec.fleet_set_size = 16777216;
    const std::string y = pc::to_yaml(c);
    EXPECT_NE(y.find("\ncrowdsec:\n"), std::string::npos);
    EXPECT_NE(y.find("  lapi_url: [\"http://192.0.2.1:8080\", \"https://lapi.example.org/\"]\n"), std::string::npos);
    EXPECT_NE(y.find("  poll_interval: 1500ms\n"), std::string::npos);
    auto back = pc::parse_yaml(y, "x.yaml", no_files());
    EXPECT_EQ(back.crowdsec, c.crowdsec);
    EXPECT_TRUE(pc::same_settings(back, c));
    c.crowdsec.lapi_url = {"http://192.0.2.1:8080"};  // one URL: a plain string
    EXPECT_NE(pc::to_yaml(c).find("  lapi_url: \"http://192.0.2.1:8080\"\n"), std::string::npos);
    EXPECT_EQ(pc::parse_yaml(pc::to_yaml(c), "x.yaml", no_files()).crowdsec, c.crowdsec);
}
