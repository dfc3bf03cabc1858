// dispatch_command: the `reload` control command (systemctl reload's path).
#include <gtest/gtest.h>

#include "portsentry/daemon/views.hpp"

using namespace portsentry;
using daemon::CommandHandler;
using daemon::ControlReply;
using daemon::dispatch_command;

namespace {

// Answers every command with its name, so the test sees which one ran.
struct Named : CommandHandler {
    ControlReply status(bool) override { return {0, "status"}; }
    ControlReply list(bool) override { return {0, "list"}; }
    ControlReply why(const std::string&) override { return {0, "why"}; }
    ControlReply ban(const net::Cidr&, std::optional<std::chrono::seconds>, const std::string&) override {
        return {0, "ban"};
    }
    ControlReply unban(const net::Cidr&) override { return {0, "unban"}; }
};

struct Reloads : Named {
    int reloads = 0;
    ControlReply reload() override {
        ++reloads;
        return {1, "/etc/portsentry/portsentry.conf:3: bad\n"};
    }
};

}  // namespace

TEST(DispatchCommand, ReloadReachesTheHandlerAndKeepsItsOutcome) {
    Reloads h;
    const auto r = dispatch_command("reload", h);
    EXPECT_EQ(h.reloads, 1);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.text, "/etc/portsentry/portsentry.conf:3: bad\n");
}

TEST(DispatchCommand, ReloadTakesNoArgument) {
    Reloads h;
    const auto r = dispatch_command("reload now", h);
    EXPECT_EQ(h.reloads, 0);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.text.find("unknown command"), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("reload"), std::string::npos) << "the usage line lists reload: " << r.text;
}

TEST(DispatchCommand, AHandlerWithoutADaemonRefusesReload) {
    Named offline;  // the CLI's offline handler does not override reload()
    const auto r = dispatch_command("reload", offline);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.text.find("not running"), std::string::npos) << r.text;
}
