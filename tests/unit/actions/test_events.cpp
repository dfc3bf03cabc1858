// json_log: every line one JSON object, attacker-chosen text escaped, a flood
// capped with a count of what was dropped, symlinks refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "portsentry/actions/events.hpp"
#include "test_util.hpp"

using namespace portsentry;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::vector<json> lines_of(const std::string& path) {
    std::vector<json> out;
    std::istringstream in(pstest::read_file(path));
    for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));  // throws on a bad line
    return out;
}

const actions::TimePoint t0 = actions::TimePoint{} + 100s;
const std::time_t wall = 1795622400;  // 2026-11-25T16:00:00Z

}  // namespace

TEST(EventLog, OneObjectPerLineTimeAndEventFirst) {
    pstest::TempDir d;
    actions::EventLog ev(d / "events.json");
    ev.write("scan", {{"src", "198.51.100.2"}, {"proto", "TCP"}, {"port", 7}, {"banned", true}}, wall, t0);
    ev.write("unban", {{"prefix", "198.51.100.0/24"}}, wall + 1, t0 + 1s);
    auto l = lines_of(d / "events.json");
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0]["time"], "2026-11-25T16:00:00Z");
    EXPECT_EQ(l[0]["event"], "scan");
    EXPECT_EQ(l[0]["src"], "198.51.100.2");
    EXPECT_EQ(l[0]["port"], 7);
    EXPECT_EQ(l[0]["banned"], true);
    EXPECT_EQ(l[1]["event"], "unban");
    EXPECT_EQ(l[1]["time"], "2026-11-25T16:00:01Z");
    const std::string text = pstest::read_file(d / "events.json");
    EXPECT_EQ(text.rfind("{\"time\":", 0), 0u) << "time leads each line: " << text;
    EXPECT_EQ(ev.counters().written, 2u);
}

TEST(EventLog, AttackerChosenTextCannotBreakALine) {
    pstest::TempDir d;
    actions::EventLog ev(d / "events.json");
    // A reverse-DNS name is attacker-controlled: newlines, quotes, bad UTF-8.
    ev.write("scan", {{"host", std::string("evil\n{\"event\":\"unban\"}\"\xff\xfe")}}, wall, t0);
    auto l = lines_of(d / "events.json");
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0]["event"], "scan");
    EXPECT_NE(l[0]["host"].get<std::string>().find("evil\n{"), std::string::npos);
}

TEST(EventLog, FloodIsCappedAndTheDropIsCounted) {
    pstest::TempDir d;
    actions::EventLog ev(d / "events.json", {}, /*burst=*/3, /*per_second=*/1);
    for (int i = 0; i < 10; ++i) ev.write("rate_limited", {{"n", i}}, wall, t0);
    EXPECT_EQ(ev.counters().written, 3u);
    EXPECT_EQ(ev.counters().suppressed, 7u);
    ev.flush(wall, t0 + 999ms);  // bucket still empty: nothing yet
    EXPECT_EQ(lines_of(d / "events.json").size(), 3u);
    ev.flush(wall + 1, t0 + 1s);
    auto l = lines_of(d / "events.json");
    ASSERT_EQ(l.size(), 4u);
    EXPECT_EQ(l[3]["event"], "suppressed");
    EXPECT_EQ(l[3]["count"], 7);
    ev.flush(wall + 5, t0 + 5s);  // nothing pending: no line
    EXPECT_EQ(lines_of(d / "events.json").size(), 4u);
}

TEST(EventLog, SymlinkIsRefusedAndReportedOnce) {
    pstest::TempDir d;
    ASSERT_EQ(::symlink((d / "target").c_str(), (d / "events.json").c_str()), 0);
    std::vector<std::string> errors;
    actions::EventLog ev(d / "events.json", [&](const std::string& e) { errors.push_back(e); });
    ev.write("scan", json::object(), wall, t0);
    ev.write("scan", json::object(), wall, t0);
    EXPECT_EQ(ev.counters().errors, 2u);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("symlink"), std::string::npos) << errors[0];
    EXPECT_FALSE(std::filesystem::exists(d / "target"));
}
