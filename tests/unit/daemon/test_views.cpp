// Operator views: dispatch_command's parsing (one parser for the daemon and
// the offline CLI) and the list/why/unban renderings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/daemon/views.hpp"

using namespace portsentry;
using namespace std::chrono_literals;
using daemon::BanStore;
using daemon::ControlReply;

namespace {

net::Cidr cidr(const char* s) { return *net::Cidr::parse(s); }

// Records what dispatch_command asked for.
struct Calls final : daemon::CommandHandler {
    std::vector<std::string> seen;
    std::optional<bool> json;
    std::string addr;
    std::optional<net::Cidr> c;
    std::optional<std::chrono::seconds> time;
    std::string origin;

    ControlReply status(bool j) override {
        seen.push_back("status");
        json = j;
        return {0, "status\n"};
    }
    ControlReply list(bool j) override {
        seen.push_back("list");
        json = j;
        return {0, "list\n"};
    }
    ControlReply why(const std::string& a) override {
        seen.push_back("why");
        addr = a;
        return {0, "why\n"};
    }
    ControlReply ban(const net::Cidr& x, std::optional<std::chrono::seconds> t, const std::string& o) override {
        seen.push_back("ban");
        c = x;
        time = t;
        origin = o;
        return {0, "ban\n"};
    }
    ControlReply unban(const net::Cidr& x) override {
        seen.push_back("unban");
        c = x;
        return {0, "unban\n"};
    }
};

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(DispatchCommand, BanTimeIsADuration) {
    Calls h;
    auto r = daemon::dispatch_command("ban 192.0.2.1 --time 1h30m", h);
    EXPECT_EQ(r.status, 0);
    ASSERT_EQ(h.seen, std::vector<std::string>{"ban"});
    EXPECT_EQ(*h.c, cidr("192.0.2.1"));
    ASSERT_TRUE(h.time);
    EXPECT_EQ(*h.time, 5400s);
    EXPECT_EQ(h.origin, "admin");
}

TEST(DispatchCommand, BanDefaults) {
    Calls h;
    daemon::dispatch_command("ban 2001:db8::/64", h);
    ASSERT_EQ(h.seen, std::vector<std::string>{"ban"});
    EXPECT_EQ(*h.c, cidr("2001:db8::/64"));
    EXPECT_FALSE(h.time) << "no --time: the manager's ban_time";
    EXPECT_EQ(h.origin, "admin");
}

TEST(DispatchCommand, BanTimeZeroIsPermanentNotDefault) {
    Calls h;
    daemon::dispatch_command("ban 192.0.2.1 --time 0", h);
    ASSERT_TRUE(h.time);
    EXPECT_EQ(*h.time, 0s);
}

TEST(DispatchCommand, BanOriginAndTimeInAnyOrder) {
    Calls h;
    daemon::dispatch_command("ban 198.51.100.0/24 --origin fail2ban --time 90", h);
    EXPECT_EQ(h.origin, "fail2ban");
    EXPECT_EQ(*h.time, 90s);
}

TEST(DispatchCommand, BadTimeIsAnErrorAndBansNothing) {
    Calls h;
    auto r = daemon::dispatch_command("ban 192.0.2.1 --time banana", h);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.text, "--time")) << r.text;
    EXPECT_TRUE(has(r.text, "'banana'")) << r.text;
    EXPECT_TRUE(h.seen.empty());
}

TEST(DispatchCommand, UnknownOptionAndMissingValue) {
    Calls h;
    auto r = daemon::dispatch_command("ban 192.0.2.1 --colour red", h);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.text, "unknown option '--colour'")) << r.text;
    r = daemon::dispatch_command("ban 192.0.2.1 --time", h);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.text, "--time needs a value")) << r.text;
    EXPECT_TRUE(h.seen.empty());
}

TEST(DispatchCommand, BadAddressAndUnbanExtraWords) {
    Calls h;
    auto r = daemon::dispatch_command("ban 192.0.2.300", h);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.text, "'192.0.2.300'")) << r.text;
    r = daemon::dispatch_command("unban 192.0.2.1 --time 1h", h);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.text, "usage: unban")) << r.text;
    EXPECT_TRUE(h.seen.empty());
    r = daemon::dispatch_command("unban 192.0.2.0/24", h);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(*h.c, cidr("192.0.2.0/24"));
}

TEST(DispatchCommand, StatusAndListJson) {
    Calls h;
    daemon::dispatch_command("status --json", h);
    ASSERT_EQ(h.seen.back(), "status");
    EXPECT_EQ(h.json, std::optional(true));
    daemon::dispatch_command("status", h);
    EXPECT_EQ(h.json, std::optional(false));
    daemon::dispatch_command("  list   --json  ", h);
    ASSERT_EQ(h.seen.back(), "list");
    EXPECT_EQ(h.json, std::optional(true));
    daemon::dispatch_command("why 192.0.2.4", h);
    EXPECT_EQ(h.addr, "192.0.2.4");
    EXPECT_EQ(h.seen.size(), 4u);
}

TEST(DispatchCommand, UnknownCommandsAndWrongArity) {
    Calls h;
    for (const char* line : {"", "   ", "flush", "status --xml", "list --json extra", "why", "why a b", "ban"}) {
        auto r = daemon::dispatch_command(line, h);
        EXPECT_EQ(r.status, 1) << "'" << line << "'";
        EXPECT_TRUE(has(r.text, "error:")) << r.text;
    }
    EXPECT_TRUE(h.seen.empty());
}

// ---- renderings --------------------------------------------------------------

TEST(RenderList, JsonParsesEvenWithHostileStrings) {
    BanStore s("/nonexistent/state");
    const daemon::BanStore::Probe bad_utf8{0, std::string("T\xffP"), ""};  // invalid UTF-8
    s.record_ban(cidr("192.0.2.1"), "ad\"min\\x\n\t\x01y", 100, 0, &bad_utf8);
    s.record_ban(cidr("2001:db8::/64"), std::string("caf\xc3\xa9 \xc3"), 100, 600);  // truncated UTF-8
    s.record_ban(cidr("198.51.100.1"), "admin", 10, 5);                             // expired: not listed
    auto r = daemon::render_list(s, true, 200);
    EXPECT_EQ(r.status, 0);
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(r.text)) << r.text;
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 2u);
    bool seen_v4 = false;
    for (const auto& e : j) {
        if (e["prefix"] == "192.0.2.1") {
            seen_v4 = true;
            EXPECT_EQ(e["origin"], "ad\"min\\x\n\t\x01y");
            EXPECT_EQ(e["last_proto"], "T\xef\xbf\xbdP");
            EXPECT_EQ(e["expires"], 0);
            EXPECT_EQ(e["count"], 1);
        } else {
            EXPECT_EQ(e["prefix"], "2001:db8::/64");
            EXPECT_EQ(e["expires"], 700);
        }
    }
    EXPECT_TRUE(seen_v4);
}

TEST(RenderList, EmptyJsonIsAnEmptyArray) {
    BanStore s("/nonexistent/state");
    auto r = daemon::render_list(s, true, 200);
    EXPECT_EQ(nlohmann::json::parse(r.text), nlohmann::json::array());
}

TEST(RenderList, TextShowsActiveBansOnly) {
    BanStore s("/nonexistent/state");
    const daemon::BanStore::Probe probe{23, "TCP", "TCP SYN/Normal scan"};
    s.record_ban(cidr("192.0.2.1"), "detector", 100, 0, &probe);
    s.record_ban(cidr("198.51.100.1"), "admin", 10, 5);
    auto r = daemon::render_list(s, false, 200);
    EXPECT_TRUE(has(r.text, "192.0.2.1")) << r.text;
    EXPECT_TRUE(has(r.text, "TCP/23 TCP SYN/Normal scan")) << r.text;
    EXPECT_FALSE(has(r.text, "198.51.100.1")) << r.text;
}

TEST(RenderWhy, SupersededHostTellsWhichPrefix) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("192.0.2.5"), "detector", 100, 600);
    s.end_ban(cidr("192.0.2.5"), 150, "192.0.2.0/24");
    net::CidrSet ignore;
    engine::BanPolicy policy;
    policy.base = 100s;
    auto r = daemon::render_why(s, {ignore, nullptr, policy}, "192.0.2.5", 200);
    EXPECT_EQ(r.status, 0);
    EXPECT_TRUE(has(r.text, "192.0.2.5: not banned")) << r.text;
    EXPECT_TRUE(has(r.text, "(superseded by 192.0.2.0/24)")) << r.text;
    EXPECT_TRUE(has(r.text, "a new detection would ban it for 400s")) << r.text;
    EXPECT_EQ(daemon::render_why(s, {ignore, nullptr, policy}, "banana", 200).status, 1);
}

TEST(RenderWhy, ProtectedAddressHasNoEscalationLine) {
    BanStore s("/nonexistent/state");
    net::CidrSet ignore;
    ignore.insert(cidr("192.0.2.0/24"));
    auto r = daemon::render_why(s, {ignore, nullptr, engine::BanPolicy{}}, "192.0.2.9", 200);
    EXPECT_TRUE(has(r.text, "protected: ignore list (192.0.2.0/24)")) << r.text;
    EXPECT_FALSE(has(r.text, "would ban")) << r.text;
}

TEST(RenderUnban, ListsLiftedAndAWiderBanStillCovering) {
    BanStore s("/nonexistent/state");
    s.record_ban(cidr("2001:db8:1::/64"), "detector", 100, 0);
    auto t = daemon::render_unban(s, cidr("2001:db8:1::5"), {}, 200);
    EXPECT_TRUE(has(t, "it was not in the ban table")) << t;
    EXPECT_TRUE(has(t, "still banned as 2001:db8:1::/64")) << t;
    std::vector<net::Cidr> lifted;
    for (int i = 1; i <= 20; ++i) lifted.push_back(cidr(("198.51.100." + std::to_string(i)).c_str()));
    t = daemon::render_unban(s, cidr("198.51.100.0/24"), lifted, 200);
    EXPECT_TRUE(has(t, "20 bans lifted")) << t;
    EXPECT_TRUE(has(t, "... and 4 more")) << t;
    EXPECT_FALSE(has(t, "still banned")) << t;
}
