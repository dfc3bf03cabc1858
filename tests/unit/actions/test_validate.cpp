// PORT_BANNER and command-template checks used by --check and at load.
#include <gtest/gtest.h>

#include "portsentry/actions/validate.hpp"

using namespace portsentry::actions;

TEST(ValidateBanner, AcceptsPrintableAndLineBreaks) {
    EXPECT_EQ(validate_banner(""), "");
    EXPECT_EQ(validate_banner("** UNAUTHORIZED ACCESS PROHIBITED *** YOUR CONNECTION ATTEMPT HAS BEEN LOGGED. GO AWAY."), "");
    EXPECT_EQ(validate_banner("line one\r\nline two\n\tindented"), "");
    EXPECT_EQ(validate_banner("Zugriff verweigert – ça va"), "");  // UTF-8
}

TEST(ValidateBanner, LengthLimitAtBoundary) {
    EXPECT_EQ(validate_banner(std::string(1024, 'x')), "");
    EXPECT_EQ(validate_banner(std::string(1025, 'x')), "PORT_BANNER is 1025 bytes long, the limit is 1024");
}

TEST(ValidateBanner, RejectsControlCharacters) {
    EXPECT_EQ(validate_banner("ok\x1b[2J"),
              "PORT_BANNER contains control character 0x1b at offset 2 (only \\r \\n \\t are allowed)");
    EXPECT_NE(validate_banner(std::string("a\0b", 3)), "");
    EXPECT_NE(validate_banner("bell\a"), "");
    EXPECT_NE(validate_banner("del\x7f"), "");
}

TEST(ValidateCommand, AcceptsPlainCommands) {
    EXPECT_EQ(validate_command_template("/usr/local/bin/notify $TARGET$ $PORT$ $MODE$"), "");
    EXPECT_EQ(validate_command_template("/sbin/route add -host $TARGET$ reject"), "");
    EXPECT_EQ(validate_command_template("/usr/bin/logger \"portsentry saw $TARGET$\""), "");
}

TEST(ValidateCommand, RejectsShellSyntax) {
    EXPECT_EQ(validate_command_template("/bin/echo $TARGET$ >> /tmp/x"),
              "contains a redirection at offset 19: commands run without a shell; put it in a script");
    EXPECT_NE(validate_command_template("a && b"), "");
    EXPECT_NE(validate_command_template("a | b"), "");
    EXPECT_NE(validate_command_template("a; b"), "");
    EXPECT_NE(validate_command_template("echo $(id)"), "");
    EXPECT_NE(validate_command_template("echo `id`"), "");
    EXPECT_NE(validate_command_template("a < b"), "");
    EXPECT_EQ(validate_command_template("echo \"open"), "unterminated double quote");
    EXPECT_EQ(validate_command_template("  "), "empty command");
}
