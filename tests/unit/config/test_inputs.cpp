// Hostile and odd inputs (issue 13): files that could block, line endings and
// BOMs, one YAML document, quotes, aliases and brackets at the right line,
// command templates and banners checked at load, no follow-up errors, the
// 100-error cap and escaped terminal control bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace pc = portsentry::config;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string kData = PS_TEST_DATA_DIR;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class Dir {
public:
    Dir() {
        std::string t = ::testing::TempDir() + "ps-inputs-XXXXXX";
        path_ = ::mkdtemp(t.data()) ? t : "";
    }
    ~Dir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    std::string file(const std::string& name, const std::string& text) const {
        std::ofstream(path_ + "/" + name, std::ios::binary) << text;
        return path_ + "/" + name;
    }
    std::string fifo(const std::string& name) const {
        const std::string p = path_ + "/" + name;
        EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0);
        return p;
    }

private:
    std::string path_;
};

pc::LoadOptions legacy_opts() {
    pc::LoadOptions o;
    o.defaults_file = kData + "/debian-stock/default-portsentry";
    o.load_ignore_files = false;
    return o;
}

template <class F>
std::vector<std::string> errors_of(F&& load) {
    try {
        load();
    } catch (const pc::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.to_string());
        return out;
    }
    return {};
}

std::vector<std::string> yaml_errors(const std::string& text) {
    pc::LoadOptions o;
    o.load_ignore_files = false;
    return errors_of([&] { pc::parse_yaml(text, "x.yaml", o); });
}

std::vector<std::string> legacy_errors(const std::string& text, pc::LoadOptions o = legacy_opts()) {
    return errors_of([&] { pc::parse_legacy(text, "t.conf", o); });
}

}  // namespace

// ---- opening never blocks ------------------------------------------------------

TEST(Inputs, FifoConfigIsNotARegularFile) {
    Dir d;
    const std::string f = d.fifo("cfg");
    ::alarm(10);  // a regression blocks in open(): fail loudly instead of hanging
    EXPECT_THAT(errors_of([&] { pc::load(f); }), ElementsAre(f + ": cannot read configuration: not a regular file"));
    ::alarm(0);
}

TEST(Inputs, FifoIgnoreAndDefaultsFilesAreNotRegularFiles) {
    Dir d;
    const std::string ign = d.fifo("ignore");
    const std::string def = d.fifo("defaults");
    ::alarm(10);
    portsentry::net::CidrSet set;
    EXPECT_THAT(errors_of([&] { pc::load_ignore_file(ign, set); }),
                ElementsAre(ign + ": cannot read ignore file: not a regular file"));
    pc::LoadOptions o = legacy_opts();
    o.defaults_file = def;
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\"\n", o),
                ElementsAre(def + ": cannot read defaults file: not a regular file"));
    ::alarm(0);
}

TEST(Inputs, DeviceIsNotARegularFile) {
    EXPECT_THAT(errors_of([] { pc::load("/dev/zero"); }),
                ElementsAre("/dev/zero: cannot read configuration: not a regular file"));
}

// ---- line endings and BOM ------------------------------------------------------

TEST(Inputs, CrOnlyAndCrlfReadLikeLf) {
    const std::string lf = slurp(kData + "/debian-stock/portsentry.conf");
    std::string cr = lf, crlf;
    for (char& c : cr)
        if (c == '\n') c = '\r';
    for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    Dir d;
    const auto want = pc::load(d.file("lf.conf", lf), legacy_opts());
    ASSERT_FALSE(want.tcp.ports.empty());
    EXPECT_TRUE(pc::same_settings(pc::load(d.file("cr.conf", cr), legacy_opts()), want));
    EXPECT_TRUE(pc::same_settings(pc::load(d.file("crlf.conf", crlf), legacy_opts()), want));
    // Line numbers count CR-only lines too.
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\"\rUDP_PORTS=\"1\"\rBLOCK_TCP=\"3\"\r"),
                ElementsAre(HasSubstr("t.conf:3: BLOCK_TCP")));
    EXPECT_THAT(yaml_errors("tcp:\r  mode: stealth\r  ports: [1]\rscan_trigger: x\r"),
                ElementsAre(HasSubstr("x.yaml:4: scan_trigger")));
}

TEST(Inputs, LeadingBomIsIgnored) {
    const std::string stock = slurp(kData + "/debian-stock/portsentry.conf");
    Dir d;
    const auto want = pc::load(d.file("plain.conf", stock), legacy_opts());
    EXPECT_TRUE(pc::same_settings(pc::load(d.file("bom.conf", "\xEF\xBB\xBF" + stock), legacy_opts()), want));
    portsentry::net::CidrSet set;
    EXPECT_TRUE(pc::load_ignore_file(d.file("bom.ignore", "\xEF\xBB\xBF" "192.0.2.1\n"), set));
    EXPECT_TRUE(set.contains(*portsentry::net::IpAddr::parse("192.0.2.1")));
    EXPECT_THAT(yaml_errors("\xEF\xBB\xBFscan_trigger: x\n"), ElementsAre(HasSubstr("x.yaml:1: scan_trigger")));
}

// ---- YAML: one document, quotes, positions ---------------------------------------

TEST(YamlInputs, SecondDocumentIsAnErrorAtItsLine) {
    EXPECT_THAT(yaml_errors("---\n---\ntcp: {mode: off}\n"), ElementsAre(HasSubstr("x.yaml:2: a second YAML document")));
    EXPECT_THAT(yaml_errors("scan_trigger: 1\n---\nbogus: 1\n"),
                ElementsAre(HasSubstr("x.yaml:2: a second YAML document")));
    EXPECT_THAT(yaml_errors("---\nscan_trigger: 1\n...\n"), ElementsAre());
}

TEST(YamlInputs, UnterminatedQuoteAtTheLineItOpens) {
    EXPECT_THAT(yaml_errors("kill_route: \"nft-set\nscan_trigger: banana\nudp: {mode: turbo}\n"),
                ElementsAre(HasSubstr("x.yaml:1: the double quote opened on this line is not closed")));
    EXPECT_THAT(yaml_errors("scan_trigger: 1\nport_banner: 'it''s\n"),
                ElementsAre(HasSubstr("x.yaml:2: the single quote")));
    EXPECT_THAT(yaml_errors("port_banner: \"a \\\" b\"\nkill_route: 'it''s nft-set'\n"),
                Not(::testing::Contains(HasSubstr("quote"))));
}

TEST(YamlInputs, AliasIsReportedWhereItIsUsed) {
    EXPECT_THAT(yaml_errors("scan_window: &w 1h\n\n\nscan_trigger: *w\n"),
                ElementsAre(HasSubstr("x.yaml:4: scan_trigger")));
    // A port list alias resolves to the anchored list.
    pc::LoadOptions o;
    o.load_ignore_files = false;
    auto c = pc::parse_yaml("tcp:\n  mode: stealth\n  ports: &p [1, 2]\nudp:\n  mode: stealth\n  ports: *p\n", "x.yaml", o);
    EXPECT_EQ(c.udp.ports, c.tcp.ports);
}

TEST(YamlInputs, UnclosedBracketAtTheLineItOpens) {
    EXPECT_THAT(yaml_errors("tcp:\n  mode: stealth\n  ports: [1, 2\nudp:\n  mode: off\n"),
                ElementsAre("x.yaml:3: YAML syntax error: the '[' opened on this line is never closed: expected ']'"));
    EXPECT_THAT(yaml_errors("scan_trigger: 1\ntcp: {mode: off\nudp:\n"), ElementsAre(HasSubstr("x.yaml:2:")));
}

TEST(YamlInputs, LineWithoutColonAndTabsAreNamed) {
    EXPECT_THAT(yaml_errors("tcp:\n  mode: stealth\n  ports: [1]\nscan_trigger = 3\nudp:\n  mode: off\n"),
                ElementsAre(HasSubstr("x.yaml:4: YAML syntax error: 'scan_trigger = 3' is not a 'key: value' line")));
    EXPECT_THAT(yaml_errors("tcp:\n\tmode: off\n"), ElementsAre(HasSubstr("x.yaml:2: YAML syntax error: this line is "
                                                                         "indented with a tab")));
}

TEST(YamlInputs, DeepNestingIsNamed) {
    EXPECT_THAT(yaml_errors(std::string(5000, '[')), ElementsAre(HasSubstr("x.yaml:1: nested too deeply")));
}

TEST(YamlInputs, HugeListIsRefusedAtItsKey) {
    std::string y = "tcp:\n  mode: stealth\n  ports:\n";
    for (int i = 0; i < 70000; ++i) y += "    - 1\n";
    EXPECT_THAT(yaml_errors(y), ElementsAre(HasSubstr("x.yaml:3: tcp.ports: a list of more than 65536 items")));
}

// ---- checks moved to load -------------------------------------------------------

TEST(LoadChecks, CommandTemplatesAtTheirLine) {
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\nKILL_RUN_CMD=/usr/local/bin/notify \"$TARGET$\n"),
                ElementsAre(HasSubstr("t.conf:3: KILL_RUN_CMD: unterminated double quote")));
    EXPECT_THAT(yaml_errors("kill_run_cmd: '\"\" $TARGET$'\n"),
                ElementsAre(HasSubstr("x.yaml:1: kill_run_cmd: the program name is empty")));
    EXPECT_THAT(yaml_errors("\nkill_route: '/sbin/block \"$TARGET$'\n"),
                ElementsAre(HasSubstr("x.yaml:2: kill_route: unterminated double quote")));
    EXPECT_THAT(yaml_errors("kill_run_cmd: '/bin/notify \"a b\" $TARGET$'\nkill_route: nft-set\n"), ElementsAre());
}

TEST(LoadChecks, BannerErrorHasItsLineAndNameAndIsNotHidden) {
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\nBLOCK_TCP=\"3\"\nPORT_BANNER=\"a\x01" "b\"\n"),
                ElementsAre(HasSubstr("t.conf:3: BLOCK_TCP"),
                            "t.conf:4: PORT_BANNER: control character 0x01 at offset 1 (only \\r \\n \\t are allowed)"));
    EXPECT_THAT(yaml_errors("\nport_banner: \"" + std::string(1025, 'x') + "\"\n"),
                ElementsAre("x.yaml:2: port_banner: 1025 bytes long, the limit is 1024"));
}

TEST(LoadChecks, ImportLegacyRefusesABadBanner) {
    Dir d;
    const std::string f = d.file("portsentry.conf", "TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\nPORT_BANNER=\"\x1b[2J\"\n");
    EXPECT_THAT(errors_of([&] { pc::import_legacy(f, legacy_opts()); }),
                ElementsAre(HasSubstr("portsentry.conf:3: PORT_BANNER: control character 0x1b")));
}

TEST(LoadChecks, NoFollowUpForAKeyThatAlreadyFailed) {
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1,abc\"\nUDP_PORTS=\"1\"\n"), ElementsAre(HasSubstr("t.conf:1: TCP_PORTS")));
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\nUDP_PORTS=\"1\"\n"),
                ElementsAre("t.conf:1: TCP_PORTS: missing closing quote: expected KEY=\"value\""));
    EXPECT_THAT(yaml_errors("tcp:\n  mode: stealth\n  ports: [x]\n"), ElementsAre(HasSubstr("x.yaml:3: tcp.ports")));
}

TEST(LoadChecks, LegacyTypoIsReportedAtItsLine) {
    EXPECT_THAT(legacy_errors("# ports\nTCP_PORTS \"1,11\"\nUDP_PORTS=\"1\"\n"),
                ElementsAre(HasSubstr("t.conf:2: expected '=' after TCP_PORTS")));
    Dir d;
    EXPECT_EQ(pc::detect_format("# ports\nTCP_PORTS \"1,11\"\n"), pc::Format::legacy);
    EXPECT_EQ(pc::detect_format("TCP_PORTS: [1]\n"), pc::Format::yaml);
}

TEST(LoadChecks, ModeKeysInPortsentryConfPointAtTheDefaultsFile) {
    EXPECT_THAT(legacy_errors("TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\nTCP_MODE=\"atcp\"\n"),
                ElementsAre(AllOf(HasSubstr("t.conf:3: TCP_MODE does not belong in portsentry.conf"),
                                  HasSubstr("default-portsentry"))));
}

// ---- output bounds and escaping --------------------------------------------------

TEST(Diagnostics, AtMost100ThenHowManyMore) {
    std::string junk = "TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n";
    for (int i = 0; i < 5000; ++i) junk += "x\n";
    auto e = legacy_errors(junk);
    ASSERT_EQ(e.size(), pc::kShownDiagnostics + 1);
    EXPECT_EQ(e[0], "t.conf:3: expected '=' after x: KEY=\"value\"");
    EXPECT_EQ(e.back(), "\u2026 4900 more");
}

TEST(Diagnostics, TerminalControlBytesAreEscaped) {
    auto e = legacy_errors(std::string("TCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n\x1b]0;t\x07\x1b[2J=\"1\"\n") +
                           "ADVANCED_EXCLUDE_TCP=\"A\xc2\x9b" "B\"\nADVANCED_EXCLUDE_UDP=\"C\xff\"\nBLOCK_UDP=\"D\xC3\x84\"\n");
    ASSERT_EQ(e.size(), 4u);
    EXPECT_THAT(e[0], HasSubstr("'\\x1b]0;t\\x07\\x1b[2J=\"1\"'"));
    EXPECT_THAT(e[1], HasSubstr("\\xc2\\x9b"));  // C1 CSI as UTF-8
    EXPECT_THAT(e[2], HasSubstr("\\xff"));       // invalid UTF-8
    EXPECT_THAT(e[3], HasSubstr("\xC3\x84"));    // valid UTF-8 is kept
    for (const auto& s : e)
        for (unsigned char c : s) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << s;
    EXPECT_THAT(yaml_errors(std::string("scan_trigger: 'a\0b'\n", 20)), ElementsAre(HasSubstr("a\\x00b")));
}
