// Command templates and PORT_BANNER: the one copy of each rule (keys.hpp),
// which load checks and the actions layer runs.
#include <gtest/gtest.h>

#include "portsentry/config/keys.hpp"

using namespace portsentry::config;
using Words = std::vector<std::string>;

TEST(SplitCommand, WordsQuotesAndEmptyWords) {
    std::string err;
    auto w = split_command("  /usr/local/bin/notify $TARGET$\t\"port $PORT$\" --tag=\"a b\" \"\" end ", &err);
    ASSERT_TRUE(w) << err;
    EXPECT_EQ(*w, (Words{"/usr/local/bin/notify", "$TARGET$", "port $PORT$", "--tag=a b", "", "end"}));
}

TEST(SplitCommand, ErrorsSayWhere) {
    std::string err;
    EXPECT_FALSE(split_command("/bin/echo \"open", &err));
    EXPECT_EQ(err, "unterminated double quote (opened at offset 10)");
    EXPECT_FALSE(split_command("   ", &err));
    EXPECT_EQ(err, "empty command");
    EXPECT_FALSE(split_command("\"\" $TARGET$", &err));
    EXPECT_EQ(err, "the program name is empty (\"\")");
}

TEST(BannerError, AcceptsPrintableLineBreaksAndUtf8) {
    EXPECT_EQ(banner_error(""), "");
    EXPECT_EQ(banner_error("** UNAUTHORIZED ACCESS PROHIBITED *** GO AWAY."), "");
    EXPECT_EQ(banner_error("line one\r\nline two\n\tindented"), "");
    EXPECT_EQ(banner_error("Zugriff verweigert – ça va"), "");
}

TEST(BannerError, LengthLimitAtBoundary) {
    EXPECT_EQ(banner_error(std::string(1024, 'x')), "");
    EXPECT_EQ(banner_error(std::string(1025, 'x')), "1025 bytes long, the limit is 1024");
}

TEST(BannerError, RejectsControlCharacters) {
    EXPECT_EQ(banner_error("ok\x1b[2J"), "control character 0x1b at offset 2 (only \\r \\n \\t are allowed)");
    EXPECT_NE(banner_error(std::string("a\0b", 3)), "");
    EXPECT_NE(banner_error("bell\a"), "");
    EXPECT_NE(banner_error("del\x7f"), "");
}
