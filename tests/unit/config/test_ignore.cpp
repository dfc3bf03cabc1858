// Ignore files: one address or CIDR per line, comments; missing is fine,
// unreadable or malformed is a located error; loaders merge ignore_file and
// ignore_file + ".static".
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"

namespace pc = portsentry::config;
namespace net = portsentry::net;
using ::testing::ElementsAre;

namespace {

const std::string kData = PS_TEST_DATA_DIR;

net::IpAddr ip(const char* s) { return *net::IpAddr::parse(s); }

// A scratch directory removed at the end of each test.
class IgnoreFile : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ps-config-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        const std::string p = dir_ + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
    std::string dir_;
};

std::vector<std::string> errors_of(const std::string& path) {
    net::CidrSet set;
    try {
        pc::load_ignore_file(path, set);
    } catch (const pc::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.to_string());
        return out;
    }
    return {};
}

}  // namespace

TEST_F(IgnoreFile, DebianStockAndTutorialFilesLoad) {
    net::CidrSet stock;
    EXPECT_TRUE(pc::load_ignore_file(kData + "/debian-stock/portsentry.ignore.static", stock));
    EXPECT_EQ(stock.size(), 2u);  // 127.0.0.1/32 and 0.0.0.0
    EXPECT_TRUE(stock.contains(ip("127.0.0.1")));
    EXPECT_TRUE(stock.contains(ip("0.0.0.0")));
    EXPECT_FALSE(stock.contains(ip("127.0.0.2")));

    net::CidrSet tut;
    EXPECT_TRUE(pc::load_ignore_file(kData + "/tutorial/portsentry.ignore.static", tut));
    EXPECT_EQ(tut.size(), 6u);
    EXPECT_TRUE(tut.contains(ip("192.0.2.200")));
    EXPECT_TRUE(tut.contains(ip("198.51.100.7")));  // "198.51.100.7   # nagios"
    EXPECT_FALSE(tut.contains(ip("198.51.100.8")));
    EXPECT_TRUE(tut.contains(ip("2001:db8:1:ffff::1")));
    EXPECT_FALSE(tut.contains(ip("2001:db8:2::1")));
    EXPECT_TRUE(tut.contains(ip("::1")));
}

TEST_F(IgnoreFile, MissingIsFalseNotAnError) {
    net::CidrSet set;
    EXPECT_FALSE(pc::load_ignore_file(dir_ + "/none", set));
    EXPECT_TRUE(set.empty());
}

TEST_F(IgnoreFile, BadLinesAreAllReportedWithTheirLine) {
    const std::string p = write("bad", "# header\n"
                                       "192.0.2.1\n"
                                       "\n"
                                       "192.0.2.300\n"
                                       "192.0.2.0/33\n"
                                       "198.51.100.1 198.51.100.2\n"
                                       "   2001:db8::/32   # fine\n"
                                       "host.example.com\n");
    EXPECT_THAT(errors_of(p),
                ElementsAre(p + ":4: '192.0.2.300' is not an address or CIDR: expected e.g. 192.0.2.1, 192.0.2.0/24 "
                                "or 2001:db8::/32",
                            p + ":5: '192.0.2.0/33' is not an address or CIDR: expected e.g. 192.0.2.1, "
                                "192.0.2.0/24 or 2001:db8::/32",
                            p + ":6: '198.51.100.1 198.51.100.2': expected one address or CIDR per line",
                            p + ":8: 'host.example.com' is not an address or CIDR: expected e.g. 192.0.2.1, "
                                "192.0.2.0/24 or 2001:db8::/32"));
}

TEST_F(IgnoreFile, DirectoryIsAnError) {
    EXPECT_THAT(errors_of(dir_),
                ElementsAre(dir_ + ": ignore file is a directory: expected a file with one address or CIDR per line"));
}

TEST_F(IgnoreFile, PermissionDeniedIsAnError) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads mode 000 files: EACCES cannot be produced";
    const std::string p = write("secret", "192.0.2.1\n");
    ASSERT_EQ(::chmod(p.c_str(), 0), 0);
    EXPECT_THAT(errors_of(p), ElementsAre(p + ": cannot read ignore file: Permission denied"));
}

TEST_F(IgnoreFile, LoadersMergeTheFileAndItsStaticTwin) {
    write("ps.ignore", "# generated\n203.0.113.9\n");
    write("ps.ignore.static", "192.0.2.0/24\n2001:db8:1::/48\n");
    const std::string conf = write("portsentry.yaml", "ignore_file: ps.ignore\n");
    auto c = pc::load(conf);
    EXPECT_EQ(c.ignore.size(), 3u);
    EXPECT_TRUE(c.ignore.contains(ip("203.0.113.9")));
    EXPECT_TRUE(c.ignore.contains(ip("192.0.2.77")));
    EXPECT_TRUE(c.ignore.contains(ip("2001:db8:1::5")));

    // Legacy reader, same rule.
    const std::string legacy = write("portsentry.conf", "IGNORE_FILE=\"" + dir_ + "/ps.ignore\"\nTCP_PORTS=\"1\"\n");
    pc::LoadOptions o;
    o.mode_flags = {"tcp"};
    auto l = pc::load(legacy, o);
    EXPECT_TRUE(l.legacy);
    EXPECT_EQ(l.ignore.size(), 3u);

    // Only the .static file present: fine.
    std::filesystem::remove(dir_ + "/ps.ignore");
    EXPECT_EQ(pc::load(conf).ignore.size(), 2u);
}

TEST_F(IgnoreFile, ErrorsInIgnoreFilesJoinTheConfigErrors) {
    write("ps.ignore.static", "192.0.2.0/24\nnot-an-address\n");
    const std::string conf = write("portsentry.yaml", "ignore_file: ps.ignore\nban_tim: 1h\n");
    try {
        pc::load(conf);
        FAIL() << "no error";
    } catch (const pc::ConfigError& e) {
        std::vector<std::string> got;
        for (const auto& d : e.diagnostics()) got.push_back(d.to_string());
        EXPECT_THAT(got, ElementsAre(conf + ":2: unknown key 'ban_tim' (did you mean ban_time?)",
                                     dir_ + "/ps.ignore.static:2: 'not-an-address' is not an address or CIDR: "
                                            "expected e.g. 192.0.2.1, 192.0.2.0/24 or 2001:db8::/32"));
    }
    // An ignore file that is a directory stops the load too.
    std::filesystem::remove(dir_ + "/ps.ignore.static");
    std::filesystem::create_directory(dir_ + "/ps.ignore");
    const std::string conf2 = write("p2.yaml", "ignore_file: ps.ignore\n");
    EXPECT_THROW(pc::load(conf2), pc::ConfigError);
}
