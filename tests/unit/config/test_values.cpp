// Value helpers, enum names, watched ports, KILL_ROUTE classification and the
// key table's own consistency.
#include <set>

#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace pc = portsentry::config;
using pc::PortRange;
using std::chrono::seconds;

namespace {
std::vector<PortRange> R(std::initializer_list<std::pair<int, int>> l) {
    std::vector<PortRange> v;
    for (auto [a, b] : l) v.push_back({static_cast<uint16_t>(a), static_cast<uint16_t>(b)});
    return v;
}
}  // namespace

TEST(PortList, ParsesPortsAndRangesInOrder) {
    auto r = pc::parse_port_list("1,11,6000-6010, 79 ,65535");
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.ranges, R({{1, 1}, {11, 11}, {6000, 6010}, {79, 79}, {65535, 65535}}));
    EXPECT_EQ(pc::format_port_list(r.ranges), "1, 11, 6000-6010, 79, 65535");
    EXPECT_TRUE(pc::parse_port_list("").ranges.empty());
    EXPECT_EQ(pc::parse_port_list("").error, "");
}

TEST(PortList, BoundariesAndBadItems) {
    EXPECT_EQ(pc::parse_port_list("0").error, "port 0 is out of range");
    EXPECT_EQ(pc::parse_port_list("65536").error, "port 65536 is out of range");
    EXPECT_EQ(pc::parse_port_list("1,65535").error, "");
    EXPECT_EQ(pc::parse_port_list("20-10").error, "bad range '20-10': start is greater than end");
    EXPECT_EQ(pc::parse_port_list("10-10").ranges, R({{10, 10}}));
    EXPECT_EQ(pc::parse_port_list("10-").error, "bad range '10-'");
    EXPECT_EQ(pc::parse_port_list("0-10").error, "port 0 is out of range");
    EXPECT_EQ(pc::parse_port_list("1,,2").error, "empty item in port list");
    EXPECT_EQ(pc::parse_port_list("1,").error, "empty item in port list");
    EXPECT_EQ(pc::parse_port_list("ssh").error, "'ssh' is not a port number");
    EXPECT_EQ(pc::parse_port_list("-5").error, "bad range '-5'");
    EXPECT_EQ(pc::parse_port_list("99999999999999999999").error, "'99999999999999999999' is not a port number");
}

TEST(Duration, ParsesUnitsAndPlainSeconds) {
    EXPECT_EQ(pc::parse_duration("30s"), seconds(30));
    EXPECT_EQ(pc::parse_duration("10m"), seconds(600));
    EXPECT_EQ(pc::parse_duration("1h"), seconds(3600));
    EXPECT_EQ(pc::parse_duration("2d"), seconds(172800));
    EXPECT_EQ(pc::parse_duration("1h30m"), seconds(5400));
    EXPECT_EQ(pc::parse_duration("3600"), seconds(3600));
    EXPECT_EQ(pc::parse_duration("0"), seconds(0));
    EXPECT_EQ(pc::parse_duration(" 5M "), seconds(300));
    for (const char* bad : {"", "h", "1x", "1h1h", "30m1h", "-1", "1.5h", "1 h", "99999999999999999999d"})
        EXPECT_FALSE(pc::parse_duration(bad).has_value()) << bad;
}

TEST(Duration, FormatsLargestExactUnitAndRoundTrips) {
    EXPECT_EQ(pc::format_duration(seconds(0)), "0");
    EXPECT_EQ(pc::format_duration(seconds(90)), "90s");
    EXPECT_EQ(pc::format_duration(seconds(5400)), "90m");
    EXPECT_EQ(pc::format_duration(seconds(3600)), "1h");
    EXPECT_EQ(pc::format_duration(seconds(172800)), "2d");
    for (int64_t s : {0, 1, 59, 61, 3599, 3601, 86399, 86400, 90061})
        EXPECT_EQ(pc::parse_duration(pc::format_duration(seconds(s))), seconds(s)) << s;
}

TEST(ShellSyntax, FindsEveryConstructAndNothingInPlainCommands) {
    EXPECT_FALSE(pc::find_shell_syntax("/usr/local/bin/alert $TARGET$ $PORT$ $MODE$"));
    EXPECT_FALSE(pc::find_shell_syntax("/sbin/iptables -I INPUT -s $TARGET$ -j DROP"));
    EXPECT_EQ(pc::find_shell_syntax("a && b"), "&&");
    EXPECT_EQ(pc::find_shell_syntax("a || b"), "||");
    EXPECT_EQ(pc::find_shell_syntax("echo x | mail root"), "|");
    EXPECT_EQ(pc::find_shell_syntax("a; b"), ";");
    EXPECT_EQ(pc::find_shell_syntax("a &"), "&");
    EXPECT_EQ(pc::find_shell_syntax("echo $TARGET$ >> /tmp/x"), ">");
    EXPECT_EQ(pc::find_shell_syntax("mail root < /tmp/x"), "<");
    EXPECT_EQ(pc::find_shell_syntax("echo $(id)"), "$(");
    EXPECT_EQ(pc::find_shell_syntax("echo `id`"), "`");
    EXPECT_EQ(pc::find_shell_syntax("a\nb"), "a newline");
}

TEST(DidYouMean, SuggestsCloseKeysOnly) {
    const std::vector<std::string> keys{"TCP_PORTS", "UDP_PORTS", "BLOCK_TCP", "SCAN_TRIGGER"};
    EXPECT_EQ(pc::did_you_mean("TCP_PORT", keys), "TCP_PORTS");
    EXPECT_EQ(pc::did_you_mean("tcp_ports", keys), "TCP_PORTS");
    EXPECT_EQ(pc::did_you_mean("SCAN_TRIGER", keys), "SCAN_TRIGGER");
    EXPECT_EQ(pc::did_you_mean("HOSTNAME", keys), "");
    EXPECT_EQ(pc::edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(pc::edit_distance("", "abc"), 3u);
    EXPECT_EQ(pc::edit_distance("ABC", "abc"), 0u);
}

TEST(DetectFormat, LegacyByKeyEqualsLine) {
    EXPECT_EQ(pc::detect_format("# c\n\nTCP_PORTS=\"1\"\n"), pc::Format::legacy);
    EXPECT_EQ(pc::detect_format("RESOLVE_HOST = \"0\"\n"), pc::Format::legacy);
    EXPECT_EQ(pc::detect_format("# c\ntcp:\n  mode: advanced\n"), pc::Format::yaml);
    EXPECT_EQ(pc::detect_format("---\nban_time: 1h\n"), pc::Format::yaml);
    EXPECT_EQ(pc::detect_format(""), pc::Format::yaml);
}

TEST(Enums, NamesAndLegacyFlags) {
    bool udp = true;
    EXPECT_EQ(pc::mode_from_legacy_flag("tcp", &udp), pc::Mode::classic);
    EXPECT_FALSE(udp);
    EXPECT_EQ(pc::mode_from_legacy_flag("stcp", &udp), pc::Mode::stealth);
    EXPECT_EQ(pc::mode_from_legacy_flag("atcp", &udp), pc::Mode::advanced);
    EXPECT_EQ(pc::mode_from_legacy_flag("audp", &udp), pc::Mode::advanced);
    EXPECT_TRUE(udp);
    EXPECT_EQ(pc::mode_from_legacy_flag("sudp", nullptr), pc::Mode::stealth);
    EXPECT_FALSE(pc::mode_from_legacy_flag("xtcp", nullptr));
    EXPECT_FALSE(pc::mode_from_legacy_flag("-atcp", nullptr));
    EXPECT_FALSE(pc::mode_from_legacy_flag("", nullptr));
    EXPECT_STREQ(pc::to_string(pc::Mode::advanced), "advanced");
    EXPECT_STREQ(pc::to_string(pc::Steer::xt_queue), "xt-queue");
    for (auto s : {pc::Steer::auto_, pc::Steer::queue, pc::Steer::xt_queue, pc::Steer::nflog})
        EXPECT_EQ(pc::steer_from_string(pc::to_string(s)), s);
    EXPECT_FALSE(pc::steer_from_string("nfqueue"));
}

TEST(Watched, ClassicAndStealthSortAndMergeTheList) {
    pc::ProtoConfig p;
    p.ports = R({{143, 143}, {1, 1}, {2, 5}, {6, 6}, {4, 10}, {20, 30}});
    EXPECT_TRUE(p.watched().empty());  // off
    p.mode = pc::Mode::classic;
    EXPECT_EQ(p.watched(), R({{1, 10}, {20, 30}, {143, 143}}));
    p.mode = pc::Mode::stealth;
    EXPECT_EQ(p.watched(), R({{1, 10}, {20, 30}, {143, 143}}));
}

TEST(Watched, AdvancedIsBelowLimitMinusExcludes) {
    pc::ProtoConfig p;
    p.mode = pc::Mode::advanced;
    p.ports = R({{5000, 5000}});  // ignored in advanced mode
    p.advanced_ports = 1024;
    p.advanced_exclude = R({{139, 139}, {113, 113}, {1, 1}, {1023, 2000}});
    EXPECT_EQ(p.watched(), R({{2, 112}, {114, 138}, {140, 1022}}));
    p.advanced_exclude.clear();
    EXPECT_EQ(p.watched(), R({{1, 1023}}));
    p.advanced_ports = 65535;
    EXPECT_EQ(p.watched(), R({{1, 65534}}));
    p.advanced_ports = 2;
    EXPECT_EQ(p.watched(), R({{1, 1}}));
    p.advanced_ports = 1;
    EXPECT_TRUE(p.watched().empty());
}

TEST(KillRoute, StockFirewallAndRouteCommandsAreBuiltin) {
    pc::Config c;
    EXPECT_FALSE(c.kill_route_is_builtin());  // unset
    for (const char* cmd : {"/sbin/route add -host $TARGET$ reject", "/sbin/iptables -I INPUT -s $TARGET$ -j DROP",
                            "iptables -I INPUT -s $TARGET$ -j DROP", "/usr/sbin/ip6tables -I INPUT -s $TARGET$ -j DROP",
                            "/usr/sbin/iptables-nft -A x", "/usr/sbin/iptables-legacy -A x",
                            "/sbin/ipchains -I input -s $TARGET$ -j DENY -l", "/sbin/ipfwadm -I -i deny -S $TARGET$",
                            "/sbin/ipfw add 1 deny all from $TARGET$:255.255.255.255 to any",
                            "route add -net $TARGET$ -netmask 255.255.255.255 127.0.0.1 -blackhole",
                            "/usr/sbin/route add $TARGET$ 333.444.555.666 1", "nft-set", "  /sbin/iptables\t-A"}) {
        c.kill_route = cmd;
        EXPECT_TRUE(c.kill_route_is_builtin()) << cmd;
    }
    for (const char* cmd : {"/usr/local/sbin/block-it $TARGET$", "/bin/echo 'block in' | /sbin/ipf -f -",
                            "/sbin/iptables.sh $TARGET$", "routes $TARGET$"}) {
        c.kill_route = cmd;
        EXPECT_FALSE(c.kill_route_is_builtin()) << cmd;
    }
}

TEST(Diagnostics, FormatAndCollect) {
    EXPECT_EQ((pc::Diagnostic{"a.conf", 12, "bad"}).to_string(), "a.conf:12: bad");
    EXPECT_EQ((pc::Diagnostic{"a.conf", 0, "bad"}).to_string(), "a.conf: bad");
    pc::ConfigError e({{"a", 1, "x"}, {"b", 0, "y"}});
    EXPECT_EQ(e.diagnostics().size(), 2u);
    EXPECT_STREQ(e.what(), "a:1: x\nb: y");
}

TEST(KeyTable, NamesAreUniqueAndDocumented) {
    std::set<std::string_view> yaml, legacy;
    for (const auto& k : pc::keys()) {
        EXPECT_TRUE(yaml.insert(k.yaml).second) << k.yaml;
        if (!k.legacy.empty()) {
            EXPECT_TRUE(legacy.insert(k.legacy).second) << k.legacy;
        }
        EXPECT_GT(k.description.size(), 20u) << k.yaml;
        EXPECT_EQ(pc::find_yaml_key(k.yaml), &k);
        if (!k.legacy.empty()) {
            EXPECT_EQ(pc::find_legacy_key(k.legacy), &k);
        }
    }
    // Every portsentry 1.2 key (docs/ARCHITECTURE.md) is in the table.
    for (const char* k : {"TCP_PORTS", "UDP_PORTS", "ADVANCED_PORTS_TCP", "ADVANCED_PORTS_UDP", "ADVANCED_EXCLUDE_TCP",
                          "ADVANCED_EXCLUDE_UDP", "IGNORE_FILE", "HISTORY_FILE", "BLOCKED_FILE", "RESOLVE_HOST",
                          "BLOCK_TCP", "BLOCK_UDP", "KILL_ROUTE", "KILL_HOSTS_DENY", "KILL_RUN_CMD",
                          "KILL_RUN_CMD_FIRST", "SCAN_TRIGGER", "PORT_BANNER"})
        EXPECT_NE(pc::find_legacy_key(k), nullptr) << k;
    EXPECT_EQ(legacy.size(), 18u);
    EXPECT_EQ(pc::find_legacy_key(""), nullptr);
    EXPECT_EQ(pc::find_legacy_key("tcp_ports"), nullptr);  // 1.2 is case-sensitive
}

TEST(KeyTable, DefaultsDescribeConfigDefaults) {
    // The table's default_value is what docs and --import-legacy show; it must be
    // what a Config{} really holds.
    const pc::Config def;
    for (const auto& k : pc::keys()) {
        pc::Config c;
        auto err = pc::set_value(k, c, k.default_value.front() == '"'
                                           ? k.default_value.substr(1, k.default_value.size() - 2)
                                           : (k.default_value == "[]" ? std::string_view("") : k.default_value),
                                 pc::Syntax::yaml);
        ASSERT_FALSE(err) << k.yaml << ": " << *err;
        EXPECT_EQ(pc::format_value(k, c), k.default_value) << k.yaml;
        EXPECT_EQ(pc::format_value(k, def), k.default_value) << k.yaml;
    }
}

TEST(KeyTable, SetValueChecksBoundsPerKind) {
    pc::Config c;
    auto k = [](const char* y) { return *pc::find_yaml_key(y); };
    EXPECT_FALSE(pc::set_value(k("tcp.advanced_ports"), c, "65535", pc::Syntax::legacy));
    EXPECT_EQ(c.tcp.advanced_ports, 65535);
    EXPECT_EQ(*pc::set_value(k("tcp.advanced_ports"), c, "0", pc::Syntax::legacy),
              "port 0 is out of range: expected a port number 1-65535");
    EXPECT_EQ(*pc::set_value(k("tcp.advanced_ports"), c, "1024,2048", pc::Syntax::legacy),
              "'1024,2048' is not a number: expected a port number 1-65535");
    EXPECT_FALSE(pc::set_value(k("udp.block"), c, "2", pc::Syntax::legacy));
    EXPECT_EQ(c.udp.block, 2);
    EXPECT_TRUE(pc::set_value(k("udp.block"), c, "3", pc::Syntax::legacy));
    EXPECT_TRUE(pc::set_value(k("resolve_host"), c, "yes", pc::Syntax::legacy));
    EXPECT_FALSE(pc::set_value(k("resolve_host"), c, "yes", pc::Syntax::yaml));
    EXPECT_TRUE(c.resolve_host);
    EXPECT_FALSE(pc::set_value(k("queue_num"), c, "65535", pc::Syntax::yaml));
    EXPECT_TRUE(pc::set_value(k("queue_num"), c, "65536", pc::Syntax::yaml));
    EXPECT_EQ(c.queue_num, 65535);
    EXPECT_FALSE(pc::set_value(k("max_tracked_sources"), c, "4000000000", pc::Syntax::yaml));
    EXPECT_EQ(c.max_tracked_sources, 4000000000u);
    EXPECT_TRUE(pc::set_value(k("scan_window"), c, "0", pc::Syntax::yaml));  // min 1s
    EXPECT_FALSE(pc::set_value(k("ban_time"), c, "0", pc::Syntax::yaml));    // 0 = permanent
    EXPECT_FALSE(pc::set_value(k("steer"), c, "nflog", pc::Syntax::yaml));
    EXPECT_EQ(c.steer, pc::Steer::nflog);
    EXPECT_FALSE(pc::set_value(k("port_banner"), c, "  Go away. ", pc::Syntax::legacy));
    EXPECT_EQ(c.port_banner, "  Go away. ");
}

TEST(KeyTable, FormatValueQuotesStringsForYaml) {
    pc::Config c;
    c.kill_hosts_deny = "ALL: $TARGET$ : DENY \\%h \"x\"";
    EXPECT_EQ(pc::format_value(*pc::find_yaml_key("kill_hosts_deny"), c), R"("ALL: $TARGET$ : DENY \\%h \"x\"")");
    c.tcp.ports = R({{1, 1}, {6000, 6010}});
    EXPECT_EQ(pc::format_value(*pc::find_yaml_key("tcp.ports"), c), "[1, 6000-6010]");
    c.ban_time = seconds(0);
    EXPECT_EQ(pc::format_value(*pc::find_yaml_key("ban_time"), c), "0");
}

TEST(Values, ParseListen) {
    std::string why;
    auto a = pc::parse_listen("127.0.0.1:9470", &why);
    ASSERT_TRUE(a) << why;
    EXPECT_EQ(a->port, 9470);
    EXPECT_EQ(a->to_string(), "127.0.0.1:9470");
    auto b = pc::parse_listen("[2001:db8::1]:1", &why);
    ASSERT_TRUE(b) << why;
    EXPECT_TRUE(b->addr.is_v6());
    EXPECT_EQ(b->to_string(), "[2001:db8::1]:1");
    for (const char* bad : {"", ":9470", "[]:1", "[::1", "192.0.2.1", "192.0.2.1:", "192.0.2.1:x", "192.0.2.1:-1",
                            "192.0.2.1:9470s", "fe80::1%eth0:1", "[fe80::1%eth0]:1", "example.org:80"})
        EXPECT_FALSE(pc::parse_listen(bad, &why)) << bad;
}

// ---- crowdsec.*: the two kinds the fleet added -------------------------------

using std::chrono::milliseconds;

TEST(DurationMs, ParsesMillisecondsUnitsAndPlainSeconds) {
    EXPECT_EQ(pc::parse_duration_ms("100ms"), milliseconds(100));
    EXPECT_EQ(pc::parse_duration_ms("1s"), milliseconds(1000));
    EXPECT_EQ(pc::parse_duration_ms("2m"), milliseconds(120000));
    EXPECT_EQ(pc::parse_duration_ms("1s500ms"), milliseconds(1500));
    EXPECT_EQ(pc::parse_duration_ms("1h"), milliseconds(3600000));
    EXPECT_EQ(pc::parse_duration_ms("1m1s1ms"), milliseconds(61001));
    EXPECT_EQ(pc::parse_duration_ms("3"), milliseconds(3000));  // plain seconds, as every duration
    EXPECT_EQ(pc::parse_duration_ms(" 10MS "), milliseconds(10));
    EXPECT_EQ(pc::parse_duration_ms("0"), milliseconds(0));
    for (const char* bad : {"", "ms", "1x", "1.5s", "500ms1s", "1s1s", "1ms1ms", "-1s", "1 s", "10msec", "1sms",
                            "99999999999999999999ms", "9999999999999999s"})
        EXPECT_FALSE(pc::parse_duration_ms(bad).has_value()) << bad;
}

TEST(DurationMs, FormatsCanonicallyAndRoundTrips) {
    EXPECT_EQ(pc::format_duration_ms(milliseconds(100)), "100ms");
    EXPECT_EQ(pc::format_duration_ms(milliseconds(1000)), "1s");
    EXPECT_EQ(pc::format_duration_ms(milliseconds(1500)), "1500ms");
    EXPECT_EQ(pc::format_duration_ms(milliseconds(120000)), "2m");
    EXPECT_EQ(pc::format_duration_ms(milliseconds(3600000)), "1h");
    EXPECT_EQ(pc::format_duration_ms(milliseconds(0)), "0");
    for (int64_t ms : {1, 10, 999, 1000, 1001, 59999, 60000, 61001, 3600000})
        EXPECT_EQ(pc::parse_duration_ms(pc::format_duration_ms(milliseconds(ms))), milliseconds(ms)) << ms;
}

TEST(LapiUrl, AcceptsHttpAndHttpsWithHostAndPort) {
    std::string why;
    auto a = pc::parse_lapi_url("http://192.0.2.1:8080", &why);
    ASSERT_TRUE(a) << why;
    EXPECT_FALSE(a->https);
    EXPECT_EQ(a->host, "192.0.2.1");
    EXPECT_EQ(a->port, 8080);
    EXPECT_EQ(a->path, "");
    auto b = pc::parse_lapi_url("HTTPS://[2001:db8::1]:8443/", &why);
    ASSERT_TRUE(b) << why;
    EXPECT_TRUE(b->https);
    EXPECT_EQ(b->host, "2001:db8::1");
    EXPECT_EQ(b->port, 8443);
    EXPECT_EQ(b->path, "/");
    auto c = pc::parse_lapi_url("https://lapi.example.org", &why);
    ASSERT_TRUE(c) << why;
    EXPECT_EQ(c->port, 443);  // the scheme's port when none is written
    EXPECT_EQ(pc::parse_lapi_url("http://[::1]", &why)->port, 80);
    EXPECT_EQ(pc::parse_lapi_url("http://lapi_1.internal:1/crowdsec", &why)->path, "/crowdsec");
}

TEST(LapiUrl, RefusesWhatIsNotABaseUrlAndSaysWhy) {
    auto why = [](std::string_view url) {
        std::string w;
        EXPECT_FALSE(pc::parse_lapi_url(url, &w)) << url;
        return w;
    };
    EXPECT_EQ(why(""), "empty URL");
    EXPECT_EQ(why("192.0.2.1:8080"), "no http:// or https:// in front");
    EXPECT_EQ(why("ftp://192.0.2.1"), "scheme 'ftp' is not http or https");
    EXPECT_EQ(why("http://"), "no host after the scheme");
    EXPECT_EQ(why("http://:8080"), "no host before the port");
    EXPECT_EQ(why("http://192.0.2.1:"), "'' is not a port 1-65535");
    EXPECT_EQ(why("http://192.0.2.1:0"), "'0' is not a port 1-65535");
    EXPECT_EQ(why("http://192.0.2.1:65536"), "'65536' is not a port 1-65535");
    EXPECT_EQ(why("http://192.0.2.1:80x"), "'80x' is not a port 1-65535");
    EXPECT_EQ(why("http://2001:db8::1:8080"),
              "an IPv6 address must be written in brackets, e.g. http://[2001:db8::1]:8080");
    EXPECT_EQ(why("http://[2001:db8::1"), "'[' without ']'");
    EXPECT_EQ(why("http://[192.0.2.1]:80"), "'192.0.2.1' in brackets is not an IPv6 address");
    EXPECT_EQ(why("http://[::1]x"), "text after the ']': expected :PORT or nothing");
    EXPECT_EQ(why("http://lapi!:80"), "'lapi!' is not a host name or address");
    EXPECT_EQ(why("http://u:pw@192.0.2.1"),
              "user@ in the URL: the credentials go in crowdsec.password_file and crowdsec.bouncer_key_file");
    EXPECT_EQ(why("http://192.0.2.1/?x=1"), "a query (?...) in the URL: give the LAPI's base URL");
    EXPECT_EQ(why("http://192.0.2.1/#top"), "a fragment (#...) in the URL: give the LAPI's base URL");
    EXPECT_EQ(why("http://192.0.2.1:8080,http://192.0.2.2:8080"),
              "a comma in the URL: give several URLs as a YAML list, e.g. [\"http://192.0.2.1:8080\", "
              "\"http://192.0.2.2:8080\"]");
    EXPECT_EQ(why("http://192.0.2.1 http://192.0.2.2"), "a blank in the URL (several URLs go in a YAML list)");
    EXPECT_EQ(why("http://192.0.2.1/\x1b[2J"), "control character 0x1b in the URL");
}

TEST(KeyTable, CrowdsecKindsParseAndFormat) {
    pc::Config c;
    auto k = [](const char* y) { return *pc::find_yaml_key(y); };
    const auto& url = k("crowdsec.lapi_url");
    EXPECT_EQ(url.kind, pc::ValueKind::url_list);
    EXPECT_FALSE(pc::set_value(url, c, " http://192.0.2.1:8080 ", pc::Syntax::yaml));
    EXPECT_EQ(c.crowdsec.lapi_url, std::vector<std::string>{"http://192.0.2.1:8080"});
    EXPECT_TRUE(c.crowdsec.enabled());
    EXPECT_EQ(pc::format_value(url, c), "\"http://192.0.2.1:8080\"");
    c.crowdsec.lapi_url = {"http://192.0.2.1:8080", "https://[2001:db8::1]:8080/"};
    EXPECT_EQ(pc::format_value(url, c), "[\"http://192.0.2.1:8080\", \"https://[2001:db8::1]:8080/\"]");
    EXPECT_EQ(*pc::set_value(url, c, "ftp://192.0.2.1", pc::Syntax::yaml),
              "'ftp://192.0.2.1': scheme 'ftp' is not http or https: expected an http:// or https:// URL, e.g. "
              "\"http://192.0.2.1:8080\", a list of them, or \"\" (off)");
    EXPECT_EQ(c.crowdsec.lapi_url.size(), 2u);  // a refused value changes nothing
    EXPECT_FALSE(pc::set_value(url, c, "", pc::Syntax::yaml));
    EXPECT_TRUE(c.crowdsec.lapi_url.empty());
    EXPECT_FALSE(c.crowdsec.enabled());
    EXPECT_EQ(pc::format_value(url, c), "\"\"");

    const auto& poll = k("crowdsec.poll_interval");
    EXPECT_FALSE(pc::set_value(poll, c, "10ms", pc::Syntax::yaml));  // the minimum
    EXPECT_EQ(c.crowdsec.poll_interval, milliseconds(10));
    EXPECT_FALSE(pc::set_value(poll, c, "1h", pc::Syntax::yaml));  // the maximum
    EXPECT_EQ(*pc::set_value(poll, c, "9ms", pc::Syntax::yaml),
              "9ms is out of range: expected a duration like 100ms, 1s, 1s500ms, 2m or a number of seconds, from "
              "10ms to 1h");
    EXPECT_TRUE(pc::set_value(poll, c, "3601", pc::Syntax::yaml));
    EXPECT_EQ(*pc::set_value(poll, c, "1.5s", pc::Syntax::yaml),
              "'1.5s' is not a duration: expected a duration like 100ms, 1s, 1s500ms, 2m or a number of seconds, "
              "from 10ms to 1h");
    EXPECT_FALSE(pc::set_value(poll, c, "1s500ms", pc::Syntax::yaml));
    EXPECT_EQ(pc::format_value(poll, c), "1500ms");

    const auto& resync = k("crowdsec.resync_interval");
    EXPECT_FALSE(pc::set_value(resync, c, "30s", pc::Syntax::yaml));
    EXPECT_FALSE(pc::set_value(resync, c, "1d", pc::Syntax::yaml));
    EXPECT_TRUE(pc::set_value(resync, c, "29s", pc::Syntax::yaml));
    EXPECT_TRUE(pc::set_value(resync, c, "1d1s", pc::Syntax::yaml));
    EXPECT_EQ(c.crowdsec.resync_interval, seconds(86400));

    const auto& size = k("crowdsec.fleet_set_size");
    EXPECT_FALSE(pc::set_value(size, c, "16777216", pc::Syntax::yaml));
    EXPECT_EQ(c.crowdsec.fleet_set_size, 16777216u);
    EXPECT_FALSE(pc::set_value(size, c, "1", pc::Syntax::yaml));
    EXPECT_EQ(*pc::set_value(size, c, "16777217", pc::Syntax::yaml),
              "16777217 is out of range: expected an integer from 1 to 16777216");
    EXPECT_TRUE(pc::set_value(size, c, "0", pc::Syntax::yaml));
    EXPECT_EQ(c.crowdsec.fleet_set_size, 1u);

    // YAML only: none of them has a portsentry.conf name.
    for (const auto& key : pc::keys())
        if (key.yaml.substr(0, 9) == "crowdsec.") {
            EXPECT_TRUE(key.legacy.empty()) << key.yaml;
        }
}
