// portsentry-nfq.yaml(5) against the key table: the KEYS section is rendered
// from the table, so a key added to the table without regenerating the page
// (as the six protect.* keys once were) fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "man_keys.hpp"
#include "portsentry/config/keys.hpp"

using namespace portsentry::config;

namespace {
std::string read_page() {
    std::ifstream in(PS_SOURCE_ROOT "/docs/portsentry-nfq.yaml.5");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

TEST(ManPage, KeysSectionIsTheRenderedTable) {
    std::string why;
    auto sec = man_keys::section(read_page(), &why);
    ASSERT_TRUE(sec) << why;
    EXPECT_EQ(*sec, render_man_keys())
        << "docs/portsentry-nfq.yaml.5 differs from the key table: run "
           "build/tests/unit/config/gen-man-keys --update docs/portsentry-nfq.yaml.5";
}

TEST(ManPage, EveryKeyHasAnEntry) {
    // Independent of the renderer: each key's name appears as an entry heading.
    std::string why;
    const std::string sec = man_keys::section(read_page(), &why).value_or("");
    for (const auto& k : keys()) {
        std::string name;
        for (char c : k.yaml) name += c == '-' ? std::string("\\-") : std::string(1, c);
        const std::string heading = k.legacy.empty() ? ".TP\n.B " + name + "\n"
                                                      : ".TP\n.BR " + name + " \" (\" " + std::string(k.legacy) + " )\n";
        EXPECT_NE(sec.find(heading), std::string::npos) << k.yaml;
    }
}

TEST(ManPage, RenderedSectionNamesProtectKeys) {
    const std::string r = render_man_keys();
    for (const char* k : {"protect.ignore_list", "protect.local_addresses", "protect.gateways", "protect.resolvers",
                          "protect.special", "protect.sessions"})
        EXPECT_NE(r.find(std::string(".B ") + k + "\n"), std::string::npos) << k;
}

TEST(ManPage, DetailsNameTableKeys) {
    for (auto name : man_detail_keys()) EXPECT_NE(find_yaml_key(name), nullptr) << name;
}
