// The fleet's secret files (config/secret.hpp) and their checks at load:
// the secret alone on the first line, mode 0600 or stricter, every problem
// named with the file (and FILE:LINE of the key) but never with the secret.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "portsentry/config/config.hpp"
#include "portsentry/config/secret.hpp"

namespace pc = portsentry::config;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

constexpr const char* kSecret = "Zq7-TOPSECRET-91x";

// A scratch directory removed at the end of each test.
class Secret : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ps-secret-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
        const std::string p = dir_ + "/" + name;
        std::ofstream(p, std::ios::binary) << text;
        EXPECT_EQ(::chmod(p.c_str(), mode), 0) << p;
        return p;
    }
    // read_secret_file's message; the secret must not be in it.
    std::string refusal(const std::string& path) {
        try {
            const std::string s = pc::read_secret_file(path);
            ADD_FAILURE() << path << ": read " << s.size() << " bytes, expected a refusal";
            return {};
        } catch (const std::runtime_error& e) {
            const std::string what = e.what();
            EXPECT_EQ(what.find("TOPSECRET"), std::string::npos) << what;
            EXPECT_EQ(pc::secret_file_problem(path), what);  // the same checks, as a message
            return what;
        }
    }
    // The diagnostics of loading `yaml` as DIR/portsentry.yaml.
    std::vector<std::string> load_errors(const std::string& yaml, const pc::LoadOptions& o = opts()) {
        const std::string conf = write("portsentry.yaml", yaml, 0644);
        try {
            pc::load(conf, o);
        } catch (const pc::ConfigError& e) {
            std::vector<std::string> out;
            for (const auto& d : e.diagnostics()) {
                out.push_back(d.to_string());
                EXPECT_EQ(out.back().find("TOPSECRET"), std::string::npos) << out.back();
            }
            return out;
        }
        return {};
    }
    static pc::LoadOptions opts() {
        pc::LoadOptions o;
        o.load_ignore_files = false;
        return o;
    }
    std::string dir_;
};

}  // namespace

TEST_F(Secret, FirstLineWithoutSurroundingWhitespaceOrLineEnd) {
    EXPECT_EQ(pc::read_secret_file(write("lf", std::string(kSecret) + "\n")), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("crlf", std::string(kSecret) + "\r\n")), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("none", kSecret)), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("blanks", std::string(" \t") + kSecret + " \t\r\n")), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("more", std::string(kSecret) + "\nsecond line\n")), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("ro", std::string(kSecret) + "\n", 0400)), kSecret);
    EXPECT_EQ(pc::read_secret_file(write("inner", "a b\n")), "a b");  // inner blanks are the secret's
    EXPECT_FALSE(pc::secret_file_problem(dir_ + "/lf"));
    // A symlink is followed: the file it names is checked.
    const std::string link = dir_ + "/link";
    ASSERT_EQ(::symlink((dir_ + "/lf").c_str(), link.c_str()), 0);
    EXPECT_EQ(pc::read_secret_file(link), kSecret);
}

TEST_F(Secret, EmptyFirstLineIsRefused) {
    for (const char* text : {"", "\n", "  \r\n", "\nsecret on line two\n"}) {
        const std::string p = write("empty", text);
        EXPECT_EQ(refusal(p), p + ": the first line is empty: expected the secret on it") << text;
    }
}

TEST_F(Secret, GroupOrOtherAccessIsRefusedWithTheFix) {
    const std::string p = write("pw", std::string(kSecret) + "\n", 0644);
    EXPECT_EQ(refusal(p), p + ": mode 0644: readable by group or others; chmod 600 " + p);
    EXPECT_EQ(refusal(write("g", "x\n", 0640)), dir_ + "/g: mode 0640: readable by group or others; chmod 600 " +
                                                    dir_ + "/g");
    EXPECT_EQ(refusal(write("w", "x\n", 0602)), dir_ + "/w: mode 0602: writable by group or others; chmod 600 " +
                                                    dir_ + "/w");
    EXPECT_EQ(refusal(write("x", "x\n", 0610)), dir_ + "/x: mode 0610: executable by group or others; chmod 600 " +
                                                    dir_ + "/x");
}

TEST_F(Secret, MissingDirectoryFifoAreNamed) {
    EXPECT_EQ(refusal(dir_ + "/nope"), dir_ + "/nope: No such file or directory");
    EXPECT_EQ(refusal(dir_), dir_ + ": is a directory: expected a file");
    const std::string fifo = dir_ + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(refusal(fifo), fifo + ": not a regular file");  // and did not wait for a writer
}

TEST_F(Secret, UnreadableFileIsAnError) {
    const std::string p = write("locked", "x\n", 0000);
    if (::geteuid() != 0) {
        EXPECT_EQ(refusal(p), p + ": Permission denied");
        return;
    }
    // Root reads mode 000 files: the reader runs as nobody.
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) std::_Exit(2);
            std::_Exit(pc::secret_file_problem(p) == p + ": Permission denied" ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(Secret, LongLinesAndControlCharactersAreRefusedWithoutTheSecret) {
    const std::string long_line = write("long", std::string(pc::kMaxSecretLength + 1, 'a'));
    EXPECT_EQ(refusal(long_line), long_line + ": the first line is longer than 4096 bytes: expected the secret alone "
                                              "on it");
    EXPECT_EQ(pc::read_secret_file(write("max", std::string(pc::kMaxSecretLength, 'a') + "\n")).size(),
              pc::kMaxSecretLength);
    const std::string ctl = write("ctl", std::string("TOPSECRET\x1b[2Jrest\n"));
    EXPECT_EQ(refusal(ctl), ctl + ": control character 0x1b at offset 9 of the first line: expected the secret "
                                  "alone on it");
    const std::string cr = write("cr", std::string("TOPSECRET\rInjected: 1\n"));
    EXPECT_THAT(refusal(cr), HasSubstr(": control character 0x0d at offset 9"));
}

// ---- at load: --check, start and SIGHUP ----------------------------------------

// `--check` run by a user other than root cannot open root's 0600 secrets:
// that is no error (the daemon runs as root), but a bad mode still is.
TEST_F(Secret, NonRootLoadSkipsWhatOnlyRootCanRead) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to hand the files to root and check as another user";
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    write("pw", std::string(kSecret) + "\n");
    write("key", std::string(kSecret) + "\n", 0640);
    const std::string conf = write("portsentry.yaml",
                                   "crowdsec:\n  lapi_url: http://192.0.2.1:8080\n  machine_id: web-1\n"
                                   "  password_file: pw\n  bouncer_key_file: key\n",
                                   0644);
    const std::string expected =
        conf + ":5: crowdsec.bouncer_key_file: " + dir_ + "/key: mode 0640: readable by group or others; chmod 600 " +
        dir_ + "/key";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) std::_Exit(2);
            try {
                pc::load(conf, opts());
            } catch (const pc::ConfigError& e) {
                std::_Exit(e.diagnostics().size() == 1 && e.diagnostics()[0].to_string() == expected ? 0 : 3);
            }
            std::_Exit(4);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(Secret, LoadChecksTheFilesTheFleetUses) {
    write("pw", std::string(kSecret) + "\n");
    write("key", std::string(kSecret) + "\n");
    write("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);  // not a secret: any mode
    const std::string ok = "crowdsec:\n"
                           "  lapi_url: https://192.0.2.1:8080\n"
                           "  machine_id: web-1\n"
                           "  password_file: pw\n"  // relative to the config's directory
                           "  bouncer_key_file: key\n"
                           "  ca_file: ca.pem\n";
    EXPECT_THAT(load_errors(ok), ElementsAre());
    const std::string conf = dir_ + "/portsentry.yaml";
    auto c = pc::load(conf, opts());
    EXPECT_EQ(c.crowdsec.password_file, dir_ + "/pw");
    EXPECT_EQ(pc::read_secret_file(c.crowdsec.bouncer_key_file), kSecret);

    ::chmod((dir_ + "/pw").c_str(), 0644);
    ::unlink((dir_ + "/key").c_str());
    ::unlink((dir_ + "/ca.pem").c_str());
    EXPECT_THAT(load_errors(ok),
                ElementsAre(conf + ":4: crowdsec.password_file: " + dir_ + "/pw: mode 0644: readable by group or "
                                   "others; chmod 600 " + dir_ + "/pw",
                            conf + ":5: crowdsec.bouncer_key_file: " + dir_ + "/key: No such file or directory",
                            conf + ":6: crowdsec.ca_file: " + dir_ + "/ca.pem: No such file or directory"));
    // Readers alone (tests): the files are not looked at.
    pc::LoadOptions no_files = opts();
    no_files.check_fleet_files = false;
    EXPECT_THAT(load_errors(ok, no_files), ElementsAre());
}

TEST_F(Secret, OnlyTheSideInUseIsChecked) {
    write("pw", "\n", 0644);  // bad, but push is off
    write("key", std::string(kSecret) + "\n");
    EXPECT_THAT(load_errors("crowdsec:\n  lapi_url: http://192.0.2.1:8080\n  push: false\n  password_file: pw\n"
                            "  bouncer_key_file: key\n"),
                ElementsAre());
    // Fleet off: nothing is checked.
    EXPECT_THAT(load_errors("crowdsec:\n  lapi_url: \"\"\n  password_file: pw\n  bouncer_key_file: nope\n"),
                ElementsAre());
    // An empty secret with pull on is at its key's line.
    write("key", "\n");
    EXPECT_THAT(load_errors("crowdsec:\n  lapi_url: http://192.0.2.1:8080\n  push: false\n  bouncer_key_file: key\n"),
                ElementsAre(dir_ + "/portsentry.yaml:4: crowdsec.bouncer_key_file: " + dir_ +
                            "/key: the first line is empty: expected the secret on it"));
}
