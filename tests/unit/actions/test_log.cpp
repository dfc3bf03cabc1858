// Log sink: token-bucket limits at their boundary, the suppression summary,
// and the stderr-vs-journal rule.
#include <gtest/gtest.h>

#include "portsentry/actions/log.hpp"
#include "test_util.hpp"

using namespace portsentry::actions;
using namespace std::chrono_literals;

TEST(TokenBucket, BurstThenRefillAtRate) {
    TokenBucket b(3, 2);  // 3 back to back, then 2 per second
    const TimePoint t0{};
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.take(t0));          // burst spent
    EXPECT_FALSE(b.take(t0 + 499ms));  // 0.998 tokens: not yet
    EXPECT_TRUE(b.take(t0 + 500ms));   // exactly one token after 1/rate
    EXPECT_FALSE(b.take(t0 + 500ms));
    // A long pause refills only up to the burst.
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_TRUE(b.take(t0 + 1h));
    EXPECT_FALSE(b.take(t0 + 1h));
}

TEST(TokenBucket, WouldAllowConsumesNothing) {
    TokenBucket b(1, 1);
    const TimePoint t0{};
    EXPECT_TRUE(b.would_allow(t0));
    EXPECT_TRUE(b.would_allow(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.would_allow(t0));
}

TEST(Log, StderrOnlyInForegroundOutsideJournal) {
    EXPECT_TRUE(stderr_wanted(true, nullptr));
    EXPECT_TRUE(stderr_wanted(true, ""));
    EXPECT_FALSE(stderr_wanted(true, "8:123456"));  // systemd captures stderr already
    EXPECT_FALSE(stderr_wanted(false, nullptr));
}

TEST(Log, FloodIsCappedAndSummarisedOnce) {
    pstest::CapturedLog cl(/*burst=*/3, /*per_second=*/1);
    const TimePoint t0{};
    for (int i = 0; i < 10; ++i) cl.log.write("attackalert: line " + std::to_string(i), t0);
    ASSERT_EQ(cl.lines.size(), 3u);
    EXPECT_EQ(cl.lines[2], "attackalert: line 2");
    EXPECT_EQ(cl.log.counters().suppressed, 7u);

    // Recovery: the next line that passes is preceded by exactly one summary.
    cl.log.write("attackalert: after", t0 + 1s);
    ASSERT_EQ(cl.lines.size(), 5u);
    EXPECT_EQ(cl.lines[3], "adminalert: Rate limit: 7 log lines suppressed");
    EXPECT_EQ(cl.lines[4], "attackalert: after");
    EXPECT_EQ(cl.log.counters().summaries, 1u);
    EXPECT_EQ(cl.log.counters().written, 5u);
}

TEST(Log, FlushReportsSuppressionWithoutAFurtherLine) {
    pstest::CapturedLog cl(1, 1);
    const TimePoint t0{};
    cl.log.write("a", t0);
    cl.log.write("b", t0);
    cl.log.flush(t0);  // bucket still empty: nothing yet
    ASSERT_EQ(cl.lines.size(), 1u);
    cl.log.flush(t0 + 1s);
    ASSERT_EQ(cl.lines.size(), 2u);
    EXPECT_EQ(cl.lines[1], "adminalert: Rate limit: 1 log lines suppressed");
    cl.log.flush(t0 + 2s);  // nothing pending: no repeat
    EXPECT_EQ(cl.lines.size(), 2u);
}
