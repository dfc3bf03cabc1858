// Every bad input gives a located, specific message (FILE:LINE: what is wrong:
// what was expected), and all of them are collected, not just the first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"

namespace pc = portsentry::config;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

const std::string kData = PS_TEST_DATA_DIR;

pc::LoadOptions opts(std::vector<std::string> flags = {"stcp", "sudp"}) {
    pc::LoadOptions o;
    o.defaults_file = "/nonexistent/default-portsentry";
    o.mode_flags = std::move(flags);
    o.load_ignore_files = false;
    return o;
}

// Minimal valid legacy prefix (stealth modes need port lists) + the bad lines.
// Line numbers in expectations count from the first line of `body`, which is line 3.
constexpr const char* kOk = "TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n";

std::vector<std::string> legacy_errors(const std::string& body, const pc::LoadOptions& o = opts()) {
    try {
        pc::parse_legacy(kOk + body, "t.conf", o);
    } catch (const pc::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.to_string());
        return out;
    }
    return {};
}

std::vector<std::string> yaml_errors(const std::string& text, const pc::LoadOptions& o = opts({})) {
    try {
        pc::parse_yaml(text, "x.yaml", o);
    } catch (const pc::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.to_string());
        return out;
    }
    return {};
}

const std::string kPortList =
    "expected a comma-separated list of ports 1-65535 and a-b ranges, e.g. \"1,11,6000-6010\"";

}  // namespace

TEST(LegacyErrors, UnknownKeyWithDidYouMean) {
    EXPECT_THAT(legacy_errors("TCP_PORT=\"1\"\n"), ElementsAre("t.conf:3: unknown key 'TCP_PORT' (did you mean TCP_PORTS?)"));
    EXPECT_THAT(legacy_errors("SCAN_TRIGER=\"0\"\n"),
                ElementsAre("t.conf:3: unknown key 'SCAN_TRIGER' (did you mean SCAN_TRIGGER?)"));
    EXPECT_THAT(legacy_errors("Block_Tcp=\"1\"\n"), ElementsAre("t.conf:3: unknown key 'Block_Tcp' (did you mean BLOCK_TCP?)"));
    EXPECT_THAT(legacy_errors("HOSTNAME=\"x\"\n"),
                ElementsAre("t.conf:3: unknown key 'HOSTNAME': expected a portsentry.conf key such as TCP_PORTS or "
                            "BLOCK_TCP"));
    EXPECT_THAT(legacy_errors("BAN_TIME=\"1h\"\n"),
                ElementsAre("t.conf:3: 'BAN_TIME' exists only in the YAML configuration (as ban_time): convert this "
                            "file with --import-legacy"));
}

TEST(LegacyErrors, PortValues) {
    auto err = [](const std::string& line) {
        try {
            pc::parse_legacy(line, "t.conf", opts({"atcp"}));
        } catch (const pc::ConfigError& e) {
            return e.diagnostics().at(0).to_string();
        }
        return std::string("no error");
    };
    EXPECT_EQ(err("TCP_PORTS=\"1,0\""), "t.conf:1: TCP_PORTS: port 0 is out of range: " + kPortList);
    EXPECT_EQ(err("UDP_PORTS=\"7,70000\""), "t.conf:1: UDP_PORTS: port 70000 is out of range: " + kPortList);
    EXPECT_EQ(err("TCP_PORTS=\"1,20-10\""),
              "t.conf:1: TCP_PORTS: bad range '20-10': start is greater than end: " + kPortList);
    EXPECT_EQ(err("TCP_PORTS=\"1 2\""), "t.conf:1: TCP_PORTS: '1 2' is not a port number: " + kPortList);
    EXPECT_EQ(err("ADVANCED_EXCLUDE_TCP=\"113,x\""),
              "t.conf:1: ADVANCED_EXCLUDE_TCP: 'x' is not a port number: " + kPortList);
    EXPECT_EQ(err("ADVANCED_PORTS_TCP=\"0\""),
              "t.conf:1: ADVANCED_PORTS_TCP: port 0 is out of range: expected a port number 1-65535");
    EXPECT_EQ(err("ADVANCED_PORTS_UDP=\"65536\""),
              "t.conf:1: ADVANCED_PORTS_UDP: port 65536 is out of range: expected a port number 1-65535");
    EXPECT_EQ(err("ADVANCED_PORTS_TCP=\"1-1024\""),
              "t.conf:1: ADVANCED_PORTS_TCP: '1-1024' is not a number: expected a port number 1-65535");
}

TEST(LegacyErrors, EnumeratedAndNumericValues) {
    EXPECT_THAT(legacy_errors("BLOCK_TCP=\"3\"\n"),
                ElementsAre("t.conf:3: BLOCK_TCP: 3 is out of range: expected 0 (record only), 1 (block) or 2 (run "
                            "KILL_RUN_CMD only)"));
    EXPECT_THAT(legacy_errors("RESOLVE_HOST=\"yes\"\n"),
                ElementsAre("t.conf:3: RESOLVE_HOST: 'yes' is not 0 or 1: expected 0 or 1"));
    EXPECT_THAT(legacy_errors("KILL_RUN_CMD_FIRST=\"\"\n"),
                ElementsAre("t.conf:3: KILL_RUN_CMD_FIRST: '' is not 0 or 1: expected 0 or 1"));
    EXPECT_THAT(legacy_errors("SCAN_TRIGGER=\"-1\"\n"),
                ElementsAre("t.conf:3: SCAN_TRIGGER: '-1' is not a number: expected an integer from 0 to 4294967295"));
}

TEST(LegacyErrors, LineSyntax) {
    EXPECT_THAT(legacy_errors("TCP_PORTS \"1\"\n"), ElementsAre("t.conf:3: expected '=' after TCP_PORTS: KEY=\"value\""));
    EXPECT_THAT(legacy_errors("=\"1\"\n"), ElementsAre("t.conf:3: '=\"1\"': expected KEY=\"value\""));
    EXPECT_THAT(legacy_errors("KILL_ROUTE=\"/sbin/iptables -I INPUT -s $TARGET$\n"),
                ElementsAre("t.conf:3: KILL_ROUTE: missing closing quote: expected KEY=\"value\""));
    EXPECT_THAT(legacy_errors("PORT_BANNER=\"say \"no\"\"\n"),
                ElementsAre("t.conf:3: PORT_BANNER: unexpected text after the closing quote: 'no\"\"'"));
    EXPECT_THAT(legacy_errors("KILL_ROUTE=\"/sbin/iptables -I INPUT -s $TARGET$ -j DROP\"\n"
                              "KILL_ROUTE=\"/sbin/route add -host $TARGET$ reject\"\n"),
                ElementsAre("t.conf:4: KILL_ROUTE is set twice (first on line 3): keep one"));
}

TEST(LegacyErrors, HostsDenyNeedsTarget) {
    EXPECT_THAT(legacy_errors("KILL_HOSTS_DENY=\"ALL: 192.0.2.1\"\n"),
                ElementsAre("t.conf:3: KILL_HOSTS_DENY must contain $TARGET$ (the attacker's address): expected e.g. "
                            "\"ALL: $TARGET$ : DENY\""));
    EXPECT_THAT(legacy_errors("KILL_HOSTS_DENY=\"ALL: $TARGET$\"\n"), ElementsAre());
}

TEST(LegacyErrors, ShellSyntaxInCommandsMustGoInAScript) {
    const std::string tail =
        "): it is run without a shell; put it in a script and give the script's path with $TARGET$ $PORT$ $MODE$ "
        "arguments";
    for (const char* tok : {"&&", "|", ";", ">", "<", "$(", "`"}) {
        SCOPED_TRACE(tok);
        EXPECT_THAT(legacy_errors(std::string("KILL_RUN_CMD=\"/usr/bin/logger $TARGET$ ") + tok + " x\"\n"),
                    ElementsAre("t.conf:3: KILL_RUN_CMD contains shell syntax (" + std::string(tok) + tail));
    }
    // Stock file's ipfilter line: a custom KILL_ROUTE (echo … | ipf) is rejected…
    EXPECT_THAT(legacy_errors("KILL_ROUTE=\"/bin/echo 'block in log on eth0 from $TARGET$/32 to any' | /sbin/ipf -f -\"\n"),
                ElementsAre("t.conf:3: KILL_ROUTE contains shell syntax (|" + tail));
    // …but its iptables+LOG line is a builtin: the nft ban replaces it, nothing is exec'd.
    EXPECT_THAT(legacy_errors("KILL_ROUTE=\"/sbin/iptables -I INPUT -s $TARGET$ -j DROP && /sbin/iptables -I INPUT -s "
                              "$TARGET$ -m limit --limit 3/minute -j LOG\"\n"),
                ElementsAre());
    EXPECT_THAT(legacy_errors("KILL_ROUTE=\"/usr/local/sbin/block-all\"\n"),
                ElementsAre("t.conf:3: KILL_ROUTE is a custom command without $TARGET$: expected the attacker's "
                            "address as an argument, e.g. \"/usr/local/sbin/block $TARGET$\""));
}

TEST(LegacyErrors, CrossKeyChecks) {
    // Stealth TCP (from the flags) with no TCP_PORTS line at all: point at the flag.
    try {
        pc::parse_legacy("UDP_PORTS=\"1\"\n", "t.conf", opts());
        FAIL() << "no error";
    } catch (const pc::ConfigError& e) {
        EXPECT_THAT(e.diagnostics().at(0).to_string(),
                    "command line: TCP_PORTS is empty but TCP mode is stealth: expected at least one port");
    }
    EXPECT_THAT(legacy_errors("BLOCK_UDP=\"2\"\n"),
                ElementsAre("t.conf:3: BLOCK_UDP is 2 (run KILL_RUN_CMD only) but KILL_RUN_CMD is not set: set it, "
                            "or use 0 or 1"));
    EXPECT_THAT(legacy_errors("HISTORY_FILE=\"\"\n"), ElementsAre("t.conf:3: HISTORY_FILE is empty: expected a file path"));
}

TEST(LegacyErrors, ModesFromFlagsAndDefaultsFile) {
    EXPECT_THAT(legacy_errors("", opts({"-xtcp"})),
                ElementsAre("command line: unknown mode flag '-xtcp': expected -tcp, -stcp, -atcp, -udp, -sudp or "
                            "-audp"));
    EXPECT_THAT(legacy_errors("", opts({"-atcp", "-stcp"})),
                ElementsAre("command line: more than one TCP mode flag ('-stcp'): give one of -tcp, -stcp, -atcp"));

    const std::string path = ::testing::TempDir() + "ps-defaults-bad";
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("TCP_MODE=\"udp\"\nUDP_MODE=\"xudp\"\nTCP_MDOE=\"atcp\"\nif true; then :; fi\n", f);
    std::fclose(f);
    pc::LoadOptions o = opts({});
    o.defaults_file = path;
    EXPECT_THAT(legacy_errors("", o),
                ElementsAre(path + ":1: TCP_MODE: 'udp' is not a TCP mode: expected \"tcp\", \"stcp\", \"atcp\" or \"\"",
                            path + ":2: UDP_MODE: 'xudp' is not a UDP mode: expected \"udp\", \"sudp\", \"audp\" or \"\"",
                            path + ":3: unknown setting 'TCP_MDOE' (did you mean TCP_MODE?): expected TCP_MODE or "
                                   "UDP_MODE",
                            path + ":4: expected NAME=\"value\" (TCP_MODE=\"atcp\" or UDP_MODE=\"audp\")"));
    std::remove(path.c_str());
    o.defaults_file = "/";  // a directory: unreadable, not "missing"
    EXPECT_THAT(legacy_errors("", o), ElementsAre("/: cannot read defaults file: Is a directory"));
}

TEST(LegacyErrors, AllProblemsAreReportedInOrder) {
    EXPECT_THAT(legacy_errors("TCP_PORT=\"1\"\n"
                              "# fine\n"
                              "BLOCK_TCP=\"9\"\n"
                              "KILL_HOSTS_DENY=\"ALL\"\n"),
                ElementsAre("t.conf:3: unknown key 'TCP_PORT' (did you mean TCP_PORTS?)",
                            HasSubstr("t.conf:5: BLOCK_TCP: 9 is out of range"),
                            HasSubstr("t.conf:6: KILL_HOSTS_DENY must contain $TARGET$")));
}

TEST(LegacyErrors, ValidationErrorsAreSortedIntoLineOrder) {
    // KILL_HOSTS_DENY (validation, line 3) comes before BLOCK_TCP (read error, line 4).
    EXPECT_THAT(legacy_errors("KILL_HOSTS_DENY=\"ALL\"\nBLOCK_TCP=\"x\"\n"),
                ElementsAre(HasSubstr("t.conf:3: KILL_HOSTS_DENY must contain $TARGET$"),
                            HasSubstr("t.conf:4: BLOCK_TCP: 'x' is not a number")));
}

TEST(LegacyErrors, MissingAndUnreadableFiles) {
    try {
        pc::load_legacy(kData + "/nope/portsentry.conf", opts());
        FAIL() << "no error";
    } catch (const pc::ConfigError& e) {
        EXPECT_EQ(e.diagnostics().at(0).to_string(),
                  kData + "/nope/portsentry.conf: cannot read configuration: No such file or directory");
    }
    try {
        pc::load(kData, opts());
        FAIL() << "no error";
    } catch (const pc::ConfigError& e) {
        EXPECT_EQ(e.diagnostics().at(0).to_string(), kData + ": cannot read configuration: Is a directory");
    }
}

TEST(YamlErrors, UnknownKeysWithDidYouMean) {
    EXPECT_THAT(yaml_errors("tcp:\n  mode: advanced\n  advanced_port: 1024\n"),
                ElementsAre("x.yaml:3: unknown key 'tcp.advanced_port' (did you mean tcp.advanced_ports?)"));
    EXPECT_THAT(yaml_errors("ban_tme: 1h\n"), ElementsAre("x.yaml:1: unknown key 'ban_tme' (did you mean ban_time?)"));
    EXPECT_THAT(yaml_errors("tpc:\n  mode: advanced\n"), ElementsAre("x.yaml:1: unknown key 'tpc' (did you mean tcp?)"));
    EXPECT_THAT(yaml_errors("BLOCK_TCP: 1\n"),
                ElementsAre("x.yaml:1: unknown key 'BLOCK_TCP': the portsentry.conf key BLOCK_TCP is tcp.block in YAML"));
    EXPECT_THAT(yaml_errors("tcp:\n  colour: blue\n"),
                ElementsAre("x.yaml:2: unknown key 'tcp.colour': expected one of tcp.mode, tcp.ports, "
                            "tcp.advanced_ports, tcp.advanced_exclude, tcp.block"));
}

TEST(YamlErrors, ValuesAreCheckedWithTheirLine) {
    EXPECT_THAT(yaml_errors("tcp:\n  mode: stealth\n  ports:\n    - 1\n    - 0\n    - 20-10\n"),
                ElementsAre("x.yaml:5: tcp.ports: port 0 is out of range: expected a list of ports 1-65535 and \"a-b\" "
                            "ranges, e.g. [1, 11, 6000-6010]",
                            "x.yaml:6: tcp.ports: bad range '20-10': start is greater than end: expected a list of "
                            "ports 1-65535 and \"a-b\" ranges, e.g. [1, 11, 6000-6010]"));
    EXPECT_THAT(yaml_errors("udp:\n  mode: stealthy\n"),
                ElementsAre("x.yaml:2: udp.mode: 'stealthy' is not a mode: expected off, classic, stealth or advanced"));
    EXPECT_THAT(yaml_errors("ban_time: 1w\n"),
                ElementsAre("x.yaml:1: ban_time: '1w' is not a duration: expected a duration like 30s, 10m, 1h, 2d or "
                            "a number of seconds, from 0 to 3650d"));
    EXPECT_THAT(yaml_errors("scan_window: 0\n"),
                ElementsAre("x.yaml:1: scan_window: 0 is out of range: expected a duration like 30s, 10m, 1h, 2d or a "
                            "number of seconds, from 1s to 365d"));
    EXPECT_THAT(yaml_errors("steer: nfqueue\n"),
                ElementsAre("x.yaml:1: steer: 'nfqueue' is not a steering backend: expected auto, queue, xt-queue or "
                            "nflog"));
    EXPECT_THAT(yaml_errors("resolve_host: maybe\n"),
                ElementsAre("x.yaml:1: resolve_host: 'maybe' is not a boolean: expected true or false"));
    EXPECT_THAT(yaml_errors("queue_num: 70000\n"),
                ElementsAre("x.yaml:1: queue_num: 70000 is out of range: expected an integer from 0 to 65535"));
    EXPECT_THAT(yaml_errors("kill_run_cmd: \"/usr/bin/mail root < /tmp/x\"\n"),
                ElementsAre(HasSubstr("x.yaml:1: kill_run_cmd contains shell syntax (<): it is run without a shell; "
                                      "put it in a script")));
    EXPECT_THAT(yaml_errors("kill_hosts_deny: \"ALL: x\"\n"),
                ElementsAre(HasSubstr("x.yaml:1: kill_hosts_deny must contain $TARGET$")));
}

TEST(YamlErrors, ShapeProblems) {
    EXPECT_THAT(yaml_errors("tcp: 5\n"),
                ElementsAre("x.yaml:1: tcp: expected a mapping of tcp settings (mode, ports, ...), got a single value"));
    EXPECT_THAT(yaml_errors("tcp:\n  block: [1]\n"),
                ElementsAre("x.yaml:2: tcp.block: expected 0 (record only), 1 (block) or 2 (run KILL_RUN_CMD only), "
                            "got a list"));
    EXPECT_THAT(yaml_errors("tcp:\n  ports: {a: 1}\n"), ElementsAre(HasSubstr("x.yaml:2: tcp.ports: expected a list")));
    EXPECT_THAT(yaml_errors("- a\n- b\n"),
                ElementsAre("x.yaml:1: expected a mapping of settings (key: value lines), got a list"));
    EXPECT_THAT(yaml_errors("ban_time: 1h\nban_time: 2h\n"),
                ElementsAre("x.yaml:2: ban_time is set twice (first on line 1): keep one"));
    EXPECT_THAT(yaml_errors("tcp:\n  mode: classic\n"),
                ElementsAre("x.yaml:2: tcp.ports is empty but TCP mode is classic: expected at least one port"));
    EXPECT_THAT(yaml_errors("history_file:\n"), ElementsAre("x.yaml:1: history_file is empty: expected a file path"));
}

TEST(YamlErrors, SyntaxErrorHasALine) {
    auto e = yaml_errors("tcp:\n  mode: advanced\n  ports: [1, 2\nudp:\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_THAT(e[0], ::testing::MatchesRegex("x\\.yaml:[0-9]+: YAML syntax error: .+"));
    EXPECT_THAT(yaml_errors("a: b: c\n"), ElementsAre(HasSubstr("x.yaml:1: YAML syntax error")));
}

// metrics.listen: an explicit address and port, refused at its line.
TEST(YamlErrors, MetricsListenIsAnAddressAndPort) {
    const std::string expected =
        ": expected ADDRESS:PORT, e.g. \"127.0.0.1:9470\" or \"[::1]:9470\", or \"\" (off)";
    EXPECT_THAT(yaml_errors("# comment\nmetrics:\n  listen: \"localhost:9470\"\n"),
                ElementsAre("x.yaml:3: metrics.listen: 'localhost' is not an IP address" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"127.0.0.1:0\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: '0' is not a port 1-65535" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"9470\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: no :PORT" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"::1:9470\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: an IPv6 address must be written in brackets" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"[::1]9470\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: no :PORT after the ']'" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"[192.0.2.1]:9470\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: '192.0.2.1' in brackets is not an IPv6 address" + expected));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"127.0.0.1:65536\"\n"),
                ElementsAre("x.yaml:2: metrics.listen: '65536' is not a port 1-65535" + expected));
    EXPECT_THAT(yaml_errors("metrics: 5\n"), ElementsAre(HasSubstr("x.yaml:1: metrics: expected a mapping")));
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"127.0.0.1:9470\"\n"), ElementsAre());
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"[2001:db8::1]:9470\"\n"), ElementsAre());
    EXPECT_THAT(yaml_errors("metrics:\n  listen: \"\"\n"), ElementsAre());
}

TEST(LegacyErrors, MetricsNeedYaml) {
    // A legacy portsentry.conf has no metrics key: --import-legacy converts.
    EXPECT_THAT(legacy_errors("METRICS_LISTEN=\"127.0.0.1:9470\"\n"), ElementsAre(HasSubstr("t.conf:3:")));
}

// crowdsec.*: each URL refused at its own line, durations and sizes with their bounds.
TEST(YamlErrors, CrowdsecValuesAtTheirLine) {
    const std::string expected = ": expected an http:// or https:// URL, e.g. \"http://192.0.2.1:8080\", a list of "
                                 "them, or \"\" (off)";
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url: ftp://192.0.2.1\n"),
                ElementsAre("x.yaml:2: crowdsec.lapi_url: 'ftp://192.0.2.1': scheme 'ftp' is not http or https" +
                            expected));
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url:\n    - http://192.0.2.1:8080\n    - http://192.0.2.2:x\n"
                            "    - \"\"\n    - [http://192.0.2.3]\n"),
                ElementsAre("x.yaml:4: crowdsec.lapi_url: 'http://192.0.2.2:x': 'x' is not a port 1-65535" + expected,
                            "x.yaml:5: crowdsec.lapi_url: '': empty URL" + expected,
                            "x.yaml:6: crowdsec.lapi_url: expected a URL, got a list"));
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url: \"http://192.0.2.1:8080, http://192.0.2.2:8080\"\n"),
                ElementsAre(HasSubstr("x.yaml:2: crowdsec.lapi_url: 'http://192.0.2.1:8080, http://192.0.2.2:8080': "
                                      "a comma in the URL: give several URLs as a YAML list")));
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url: {url: http://192.0.2.1}\n"),
                ElementsAre(HasSubstr("x.yaml:2: crowdsec.lapi_url: expected an http:// or https:// URL")));
    EXPECT_THAT(yaml_errors("crowdsec:\n  poll_interval: 5ms\n"),
                ElementsAre("x.yaml:2: crowdsec.poll_interval: 5ms is out of range: expected a duration like 100ms, "
                            "1s, 1s500ms, 2m or a number of seconds, from 10ms to 1h"));
    EXPECT_THAT(yaml_errors("crowdsec:\n  poll_interval: 0.5s\n"),
                ElementsAre(HasSubstr("x.yaml:2: crowdsec.poll_interval: '0.5s' is not a duration")));
    EXPECT_THAT(yaml_errors("crowdsec:\n  resync_interval: 10s\n"),
                ElementsAre("x.yaml:2: crowdsec.resync_interval: 10s is out of range: expected a duration like 30s, "
                            "10m, 1h, 2d or a number of seconds, from 30s to 1d"));
    EXPECT_THAT(yaml_errors("crowdsec:\n  fleet_set_size: 0\n"),
                ElementsAre("x.yaml:2: crowdsec.fleet_set_size: 0 is out of range: expected an integer from 1 to "
                            "16777216"));
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_ulr: x\n"),
                ElementsAre("x.yaml:2: unknown key 'crowdsec.lapi_ulr' (did you mean crowdsec.lapi_url?)"));
    EXPECT_THAT(yaml_errors("crowdsec: on\n"), ElementsAre(HasSubstr("x.yaml:1: crowdsec: expected a mapping")));
}

TEST(LegacyErrors, FleetNeedsYaml) {
    // A legacy portsentry.conf has no fleet keys: --import-legacy converts it.
    EXPECT_THAT(legacy_errors("CROWDSEC_LAPI_URL=\"http://192.0.2.1:8080\"\n"),
                ElementsAre("t.conf:3: 'CROWDSEC_LAPI_URL' exists only in the YAML configuration (as "
                            "crowdsec.lapi_url): convert this file with --import-legacy"));
    EXPECT_THAT(legacy_errors("METRICS_LISTEN=\"127.0.0.1:9470\"\n"),
                ElementsAre(HasSubstr("t.conf:3: 'METRICS_LISTEN' exists only in the YAML configuration (as "
                                      "metrics.listen)")));
}

// What the fleet needs once crowdsec.lapi_url is set: at the key's own line
// when it is written, else at lapi_url's.
TEST(YamlErrors, CrowdsecNeedsItsCredentials) {
    const std::string url = "# fleet\ncrowdsec:\n  lapi_url: http://192.0.2.1:8080\n";
    EXPECT_THAT(
        yaml_errors(url),
        ElementsAre("x.yaml:3: crowdsec.push needs crowdsec.machine_id: the watcher's login (cscli machines add NAME "
                    "--password ...), or set crowdsec.push to false",
                    "x.yaml:3: crowdsec.push needs crowdsec.password_file: a file of mode 0600 with the watcher's "
                    "password on its first line, or set crowdsec.push to false",
                    "x.yaml:3: crowdsec.pull needs crowdsec.bouncer_key_file: a file of mode 0600 with a bouncer API "
                    "key (cscli bouncers add NAME) on its first line, or set crowdsec.pull to false"));
    EXPECT_THAT(yaml_errors(url + "  push: false\n  bouncer_key_file: \"\"\n"),
                ElementsAre(HasSubstr("x.yaml:5: crowdsec.pull needs crowdsec.bouncer_key_file")));
    EXPECT_THAT(yaml_errors(url + "  pull: false\n  machine_id: \"\"\n"),
                ElementsAre(HasSubstr("x.yaml:3: crowdsec.push needs crowdsec.password_file"),  // in line order
                            HasSubstr("x.yaml:5: crowdsec.push needs crowdsec.machine_id")));
    EXPECT_THAT(yaml_errors(url + "  push: false\n  pull: false\n"),
                ElementsAre("x.yaml:5: crowdsec.push and crowdsec.pull are both false: the fleet would neither send "
                            "nor receive a ban: set one of them to true, or crowdsec.lapi_url to \"\" (off)"));
    // Off: nothing is needed, whatever else the section says.
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url: []\n  push: false\n  pull: false\n"), ElementsAre());
    // A refused URL gets no follow-ups.
    EXPECT_THAT(yaml_errors("crowdsec:\n  lapi_url: http//192.0.2.1\n"),
                ElementsAre(HasSubstr("x.yaml:2: crowdsec.lapi_url: 'http//192.0.2.1': no http:// or https://")));
}
