// SystemdNotifier against a fake NOTIFY_SOCKET: the messages systemd would
// read, and the watchdog pinging only while the loop turns.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/notify.hpp"

using portsentry::daemon::Loop;
using portsentry::daemon::Now;
using portsentry::daemon::SystemdNotifier;

namespace {

// A datagram socket where systemd's would be; sets NOTIFY_SOCKET and, if
// asked, WATCHDOG_USEC/WATCHDOG_PID for this process.
struct FakeSystemd {
    std::string path;
    int fd = -1;
    explicit FakeSystemd(long watchdog_usec = 0) {
        char tmpl[] = "/tmp/ps-notify-XXXXXX";
        path = std::string(::mkdtemp(tmpl)) + "/notify";
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        path.copy(sa.sun_path, sizeof sa.sun_path - 1);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
        if (watchdog_usec > 0) {
            ::setenv("WATCHDOG_USEC", std::to_string(watchdog_usec).c_str(), 1);
            ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
        }
    }
    ~FakeSystemd() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
        ::close(fd);
        ::unlink(path.c_str());
        ::rmdir(path.substr(0, path.rfind('/')).c_str());
    }
    std::vector<std::string> read_all() {
        std::vector<std::string> out;
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.emplace_back(buf, static_cast<size_t>(n));
        return out;
    }
};

// Runs `loop` for `d`, then stops it from a timer callback.
void run_for(Loop& loop, std::chrono::milliseconds d) {
    int t = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec its{};
    its.it_value.tv_sec = d.count() / 1000;
    its.it_value.tv_nsec = (d.count() % 1000) * 1000000;
    ::timerfd_settime(t, 0, &its, nullptr);
    loop.add(t, "test stop", [&](const Now&) { loop.stop(); });
    loop.run();
    loop.remove(t);
    ::close(t);
}

size_t count(const std::vector<std::string>& v, const std::string& s) {
    size_t n = 0;
    for (const auto& m : v) n += m == s;
    return n;
}

}  // namespace

TEST(SystemdNotifier, OutsideSystemdEverythingIsANoOp) {
    ::unsetenv("NOTIFY_SOCKET");
    Loop loop;
    SystemdNotifier n(loop);
    EXPECT_FALSE(n.under_systemd());
    EXPECT_EQ(n.watchdog_interval().count(), 0);
    EXPECT_EQ(loop.registered(), 0u);  // no watchdog timer
    n.ready("x");
    n.stopping();
}

TEST(SystemdNotifier, ReadyStatusReloadStoppingMessages) {
    FakeSystemd sd;
    Loop loop;
    SystemdNotifier n(loop);
    ASSERT_TRUE(n.under_systemd());
    n.ready("backend xt-queue; 0 bans; 0 probes dropped");
    n.status("backend xt-queue; 0 bans; 0 probes dropped");  // unchanged: not sent again
    n.status("backend xt-queue; 1 bans; 7 probes dropped");
    n.reloading();
    n.reloaded("backend xt-queue; 1 bans; 7 probes dropped", "/etc/portsentry/portsentry.conf:12: bad");
    n.status("backend xt-queue; 2 bans; 9 probes dropped");
    n.reloaded("backend xt-queue; 2 bans; 9 probes dropped");
    n.stopping();
    const auto m = sd.read_all();
    ASSERT_EQ(m.size(), 7u);
    EXPECT_EQ(m[0], "READY=1\nSTATUS=backend xt-queue; 0 bans; 0 probes dropped");
    EXPECT_EQ(m[1], "STATUS=backend xt-queue; 1 bans; 7 probes dropped");
    EXPECT_EQ(m[2], "RELOADING=1\nSTATUS=reloading");
    EXPECT_EQ(m[3], "READY=1\nSTATUS=backend xt-queue; 1 bans; 7 probes dropped; last reload refused: "
                    "/etc/portsentry/portsentry.conf:12: bad");
    // The refusal stays visible in `systemctl status` until a reload succeeds.
    EXPECT_EQ(m[4], "STATUS=backend xt-queue; 2 bans; 9 probes dropped; last reload refused: "
                    "/etc/portsentry/portsentry.conf:12: bad");
    EXPECT_EQ(m[5], "READY=1\nSTATUS=backend xt-queue; 2 bans; 9 probes dropped");
    EXPECT_EQ(m[6].rfind("STOPPING=1\n", 0), 0u);
}

TEST(SystemdNotifier, WatchdogPingsAtHalfTheIntervalWhileTheLoopTurns) {
    FakeSystemd sd(200000);  // WatchdogSec=0.2: a ping every 100 ms
    Loop loop;
    SystemdNotifier n(loop);
    EXPECT_EQ(n.watchdog_interval().count(), 200000);
    run_for(loop, std::chrono::milliseconds(550));
    const auto m = sd.read_all();
    EXPECT_GE(count(m, "WATCHDOG=1"), 4u);
    EXPECT_LE(count(m, "WATCHDOG=1"), 6u);
    EXPECT_EQ(n.pings(), count(m, "WATCHDOG=1"));
}

TEST(SystemdNotifier, AWedgedLoopSendsNoPing) {
    FakeSystemd sd(100000);
    Loop loop;
    SystemdNotifier n(loop);
    // A callback that never returns in time: the loop is stuck in it.
    int t = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec its{};
    its.it_value.tv_nsec = 1000000;
    ::timerfd_settime(t, 0, &its, nullptr);
    loop.add(t, "packets", [&](const Now&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        loop.stop();
    });
    loop.run();
    EXPECT_EQ(count(sd.read_all(), "WATCHDOG=1"), 0u);
    loop.remove(t);
    ::close(t);
}

TEST(SystemdNotifier, WatchdogForAnotherPidIsNotOurs) {
    FakeSystemd sd(100000);
    ::setenv("WATCHDOG_PID", "1", 1);  // a KILL_RUN_CMD child inherits the variables
    Loop loop;
    SystemdNotifier n(loop);
    EXPECT_EQ(n.watchdog_interval().count(), 0);
    EXPECT_EQ(loop.registered(), 0u);
}
