// --check (daemon::run_check): diagnostics and exit status, the "checked the
// files only" answer without root, and as root a kernel check that commits
// nothing (no table, no backend-probe table), in a private network namespace.
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "portsentry/config/config.hpp"
#include "portsentry/daemon/check.hpp"

using portsentry::daemon::Options;
using portsentry::daemon::run_check;

namespace {

std::string write_config(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0644);  // readable by the unprivileged child below
    return path;
}

Options options(const std::string& path) {
    Options o;
    o.config_path = path;
    o.load.defaults_file = "/nonexistent";
    return o;
}

constexpr const char* kValid =
    "ignore_file: /nonexistent/ignore\ntcp:\n  mode: stealth\n  ports: [1, 11]\nudp:\n  mode: off\n";

std::string run_output(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        ::pclose(p);
    }
    return out;
}

}  // namespace

TEST(Check, ErrorsGoToErrWithTheirLineAndExit1) {
    const std::string path = write_config("ps-check-bad.yaml", "scan_trigger: x\nkill_run_cmd: '\"\" $TARGET$'\n");
    std::ostringstream out, err;
    EXPECT_EQ(run_check(options(path), out, err), 1);
    EXPECT_EQ(out.str(), "");
    EXPECT_NE(err.str().find(path + ":1: scan_trigger"), std::string::npos) << err.str();
    EXPECT_NE(err.str().find(path + ":2: kill_run_cmd: the program name is empty"), std::string::npos) << err.str();
}

TEST(Check, WithoutRootItSaysItCheckedTheFilesOnly) {
    const std::string path = write_config("ps-check-ok.yaml", kValid);
    if (::geteuid() != 0) {
        std::ostringstream out, err;
        ASSERT_EQ(run_check(options(path), out, err), 0) << err.str();
        EXPECT_EQ(out.str(), path + ": OK (tcp stealth, udp off); checked the files only: run as root to have the "
                                    "kernel check the ruleset too\n");
        return;
    }
    // As root: the same from a child that dropped to nobody.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(3);
        std::ostringstream out, err;
        const int rc = run_check(options(path), out, err);
        const std::string s = out.str() + err.str();
        (void)!::write(fds[1], s.data(), s.size());
        ::_exit(rc);
    }
    ::close(fds[1]);
    std::string got;
    char buf[1024];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_NE(WEXITSTATUS(st), 3) << "cannot drop to uid 65534";
    EXPECT_EQ(WEXITSTATUS(st), 0) << got;
    EXPECT_NE(got.find("checked the files only"), std::string::npos) << got;
}

namespace {
struct RootRun {
    int rc = -1;
    std::string out, err, ruleset, skip;
};

// run_check as root in a fresh network namespace; `ruleset` is what that
// namespace holds afterwards (popen's shell inherits this thread's namespace).
RootRun run_in_netns(const std::string& path) {
    RootRun r;
    if (::geteuid() != 0) return r.skip = "needs root", r;
    if (std::system("command -v nft >/dev/null 2>&1") != 0) return r.skip = "needs the nft tool", r;
    const int saved = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0) return r.skip = std::strerror(errno), r;
    if (::unshare(CLONE_NEWNET) != 0) {
        ::close(saved);
        return r.skip = std::string("cannot create a network namespace: ") + std::strerror(errno), r;
    }
    std::ostringstream out, err;
    r.rc = run_check(options(path), out, err);
    r.out = out.str();
    r.err = err.str();
    r.ruleset = run_output("nft list ruleset 2>&1");
    EXPECT_EQ(::setns(saved, CLONE_NEWNET), 0) << std::strerror(errno);
    ::close(saved);
    return r;
}
}  // namespace

TEST(Check, AsRootTheKernelChecksAndNothingIsCommitted) {
    const std::string path = write_config("ps-check-root.yaml", kValid);
    auto [rc, out_s, err_s, ruleset, skip] = run_in_netns(path);
    if (!skip.empty()) GTEST_SKIP() << skip;
    std::ostringstream out(out_s), err(err_s);
    if (rc != 0 && err.str().find("no steering backend") != std::string::npos)
        GTEST_SKIP() << "this kernel offers no steering backend: " << err.str();
    EXPECT_EQ(rc, 0) << err.str();
    EXPECT_NE(out.str().find(path + ": OK (tcp stealth, udp off)\n"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("the kernel accepts the ruleset for backend"), std::string::npos) << out.str();
    EXPECT_EQ(ruleset, "") << "--check left this behind:\n" << ruleset;
}

TEST(Check, AsRootWhatTheKernelRefusesIsReported) {
    // Forcing a backend is taken as is (kernel::pick_backend); a kernel
    // without it refuses the batch, and --check must say so, naming it.
    const std::string path = write_config("ps-check-forced.yaml", std::string(kValid) + "steer: queue\n");
    auto r = run_in_netns(path);
    if (!r.skip.empty()) GTEST_SKIP() << r.skip;
    if (r.rc == 0) GTEST_SKIP() << "this kernel has nft_queue: nothing to refuse";
    EXPECT_EQ(r.rc, 1);
    EXPECT_NE(r.err.find(path + ": the kernel refuses the ruleset for backend queue: "), std::string::npos) << r.err;
    EXPECT_EQ(r.ruleset, "") << r.ruleset;
}
