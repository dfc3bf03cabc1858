// The directories the daemon writes into: made 0700 when missing, start-up
// refused naming the one that cannot be made.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "daemon_test_util.hpp"
#include "portsentry/base/files.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/daemon.hpp"

using pstest::TempDir;

namespace {
mode_t mode_of(const std::string& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}
}  // namespace

TEST(PrepareDirectories, MissingOnesAreMade0700WithTheirParents) {
    TempDir t;
    portsentry::config::Config c;
    const std::string base = t.path.string();
    c.state_file = base + "/var/lib/portsentry/portsentry-nfq.state";
    c.history_file = base + "/log/a/portsentry.history";
    c.blocked_file = base + "/log/b/portsentry.blocked";
    c.json_log = base + "/log/json/events.json";
    portsentry::daemon::prepare_directories(c);
    for (const char* d : {"/var/lib/portsentry", "/var/lib", "/log/a", "/log/b", "/log/json"})
        EXPECT_EQ(mode_of(base + d), 0700u) << d;
}

TEST(PrepareDirectories, AnExistingDirectoryKeepsItsMode) {
    TempDir t;
    const std::string d = t.path.string() + "/shared";
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
    portsentry::base::make_directories(d, 0700);
    EXPECT_EQ(mode_of(d), 0755u);
}

TEST(PrepareDirectories, AFileInTheWayIsNamed) {
    TempDir t;
    const std::string file = t.path.string() + "/lib";
    std::ofstream(file) << "not a directory\n";
    portsentry::config::Config c;
    c.state_file = file + "/portsentry/portsentry-nfq.state";
    c.json_log.clear();
    c.history_file = c.blocked_file = t.path.string() + "/portsentry.history";
    try {
        portsentry::daemon::prepare_directories(c);
        ADD_FAILURE() << "a regular file accepted as a directory";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
}
