// plan_reload: what a SIGHUP applies, and what only a restart can.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/daemon/reload.hpp"

using namespace portsentry;
using daemon::plan_reload;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST(PlanReload, NoChangeNothingToDo) {
    config::Config running, next;
    auto plan = plan_reload(running, next);
    EXPECT_TRUE(plan.changed.empty());
    EXPECT_TRUE(plan.needs_restart.empty());
}

TEST(PlanReload, TcpPortsAreAppliedNow) {
    config::Config running, next;
    running.tcp.ports = {{1, 1}, {23, 23}};
    next.tcp.ports = {{1, 1}, {23, 23}, {2222, 2222}};
    auto plan = plan_reload(running, next);
    EXPECT_EQ(plan.changed, std::vector<std::string>{"tcp.ports"});
    EXPECT_TRUE(plan.needs_restart.empty());
    EXPECT_EQ(next.tcp.ports.size(), 3u) << "an applied key keeps its new value";
}

TEST(PlanReload, RestartOnlyKeysKeepTheRunningValue) {
    config::Config running, next;
    running.state_file = "/var/lib/portsentry/a.state";
    running.control_socket = "/run/a.sock";
    running.steer = config::Steer::queue;
    next.state_file = "/var/lib/portsentry/b.state";
    next.control_socket = "/run/b.sock";
    next.steer = config::Steer::nflog;
    next.ban_time = std::chrono::seconds(60);  // and one that applies now
    auto plan = plan_reload(running, next);
    EXPECT_EQ(plan.needs_restart.size(), 3u);
    for (const char* k : {"state_file", "control_socket", "steer"}) EXPECT_TRUE(contains(plan.needs_restart, k)) << k;
    EXPECT_EQ(plan.changed, std::vector<std::string>{"ban_time"});
    EXPECT_EQ(next.state_file, running.state_file);
    EXPECT_EQ(next.control_socket, running.control_socket);
    EXPECT_EQ(next.steer, config::Steer::queue);
    EXPECT_EQ(next.ban_time, std::chrono::seconds(60));
    // Planned again, the corrected config is no change at all.
    config::Config again = next;
    running.ban_time = next.ban_time;
    auto plan2 = plan_reload(running, again);
    EXPECT_TRUE(plan2.changed.empty());
    EXPECT_TRUE(plan2.needs_restart.empty());
}

TEST(PlanReload, EveryRestartKeyIsAKnownKeyWithAReason) {
    for (const auto& k : daemon::restart_keys()) {
        EXPECT_NE(std::string(k.why), "");
        // A restart key that is no config key would silently never be kept.
        bool known = false;
        for (const auto& info : config::keys()) known |= info.yaml == k.key;
        EXPECT_TRUE(known) << k.key;
    }
}

TEST(PlanReload, IgnoreListContentsChangeIsReported) {
    config::Config running, next;
    running.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    next.ignore.insert(*net::Cidr::parse("192.0.2.0/24"));
    EXPECT_TRUE(plan_reload(running, next).changed.empty()) << "same contents";
    next.ignore.insert(*net::Cidr::parse("2001:db8::/32"));
    auto plan = plan_reload(running, next);
    EXPECT_EQ(plan.changed, std::vector<std::string>{"ignore list (contents)"});
    EXPECT_TRUE(plan.needs_restart.empty());
    EXPECT_EQ(next.ignore.entries().size(), 2u);
}

TEST(PlanReload, CrowdsecKeysAreComparedByValue) {
    // A URL added to the list and a poll interval in milliseconds are changes;
    // the same list again is none.
    config::Config running, next;
    running.crowdsec.lapi_url = {"http://192.0.2.1:8080"};
    next.crowdsec.lapi_url = {"http://192.0.2.1:8080", "http://192.0.2.2:8080"};
    next.crowdsec.poll_interval = std::chrono::milliseconds(100);
    auto plan = plan_reload(running, next);
    EXPECT_EQ(plan.changed, (std::vector<std::string>{"crowdsec.lapi_url", "crowdsec.poll_interval"}));
    EXPECT_TRUE(plan.needs_restart.empty());
    running = next;
    EXPECT_TRUE(plan_reload(running, next).changed.empty());
}
