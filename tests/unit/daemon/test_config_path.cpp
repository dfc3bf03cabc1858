// resolve_config: which configuration runs (issue 15, item 3), on a fake
// /etc, /usr/share/portsentry-nfq and /var/lib/portsentry under a temp dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "portsentry/config/config.hpp"
#include "portsentry/daemon/config_path.hpp"

namespace fs = std::filesystem;
using portsentry::config::ConfigError;
using portsentry::daemon::ConfigRoots;
using portsentry::daemon::remember_config;
using portsentry::daemon::resolve_config;

namespace {

struct Tree {
    fs::path root;
    ConfigRoots roots;
    Tree() {
        char tmpl[] = "/tmp/ps-config-path-XXXXXX";
        root = ::mkdtemp(tmpl);
        roots = {(root / "etc").string(), (root / "share").string(), (root / "state").string()};
        for (const char* d : {"etc/portsentry", "etc/default", "share", "state"}) fs::create_directories(root / d);
    }
    ~Tree() { fs::remove_all(root); }
    static void touch(const std::string& p) { std::ofstream(p) << "# test\n"; }
};

std::string first_diagnostic(const ConfigError& e) { return e.diagnostics().at(0).to_string(); }

}  // namespace

TEST(ResolveConfig, DashCWinsOverEverything) {
    Tree t;
    Tree::touch(t.roots.yaml());
    auto r = resolve_config("/srv/my.yaml", std::nullopt, t.roots);
    EXPECT_EQ(r.path, "/srv/my.yaml");
    EXPECT_FALSE(r.searched);
    EXPECT_EQ(r.defaults_file, t.roots.defaults());
    EXPECT_EQ(r.why, "config: /srv/my.yaml (-c)");
}

TEST(ResolveConfig, YamlBeforeLegacy) {
    Tree t;
    Tree::touch(t.roots.yaml());
    Tree::touch(t.roots.legacy());
    auto r = resolve_config(std::nullopt, std::nullopt, t.roots);
    EXPECT_EQ(r.path, t.roots.yaml());
    EXPECT_TRUE(r.searched);
}

TEST(ResolveConfig, LegacyWithTheDefaultsFileWhenNoYaml) {
    Tree t;
    Tree::touch(t.roots.legacy());
    Tree::touch(t.roots.defaults());
    auto r = resolve_config(std::nullopt, std::nullopt, t.roots);
    EXPECT_EQ(r.path, t.roots.legacy());
    EXPECT_EQ(r.defaults_file, t.roots.defaults());
    EXPECT_NE(r.why.find("modes from " + t.roots.defaults()), std::string::npos) << r.why;
}

TEST(ResolveConfig, DefaultsOptionReplacesEtcDefault) {
    Tree t;
    Tree::touch(t.roots.legacy());
    auto r = resolve_config(std::nullopt, std::string("/srv/modes"), t.roots);
    EXPECT_EQ(r.defaults_file, "/srv/modes");
}

TEST(ResolveConfig, PackagedDefaultsWhenNeitherExists) {
    Tree t;
    auto r = resolve_config(std::nullopt, std::nullopt, t.roots);
    EXPECT_EQ(r.path, t.roots.packaged());
    EXPECT_NE(r.why.find("packaged defaults"), std::string::npos) << r.why;
}

TEST(ResolveConfig, RefusesWhenTheLegacyConfigTheLastStartRanOnVanished) {
    Tree t;
    Tree::touch(t.roots.legacy());
    Tree::touch(t.roots.defaults());
    auto r = resolve_config(std::nullopt, std::nullopt, t.roots);
    ASSERT_EQ(remember_config(r, t.roots), "");
    // dpkg --purge portsentry: conffiles and /etc/default/portsentry go.
    fs::remove(t.roots.legacy());
    fs::remove(t.roots.defaults());
    try {
        resolve_config(std::nullopt, std::nullopt, t.roots);
        FAIL() << "a vanished portsentry.conf must not silently become the packaged defaults";
    } catch (const ConfigError& e) {
        const auto d = first_diagnostic(e);
        EXPECT_EQ(d.rfind(t.roots.legacy() + ": is gone", 0), 0u) << d;
        EXPECT_NE(d.find(t.roots.last_used()), std::string::npos) << d;
    }
    // -c is the admin's explicit choice: no guard.
    EXPECT_NO_THROW(resolve_config("/srv/x.yaml", std::nullopt, t.roots));
    // Deleting the record accepts what the rule finds now.
    fs::remove(t.roots.last_used());
    EXPECT_EQ(resolve_config(std::nullopt, std::nullopt, t.roots).path, t.roots.packaged());
}

TEST(ResolveConfig, RefusesWhenOnlyTheDefaultsFileVanished) {
    Tree t;
    Tree::touch(t.roots.legacy());
    Tree::touch(t.roots.defaults());
    ASSERT_EQ(remember_config(resolve_config(std::nullopt, std::nullopt, t.roots), t.roots), "");
    fs::remove(t.roots.defaults());  // modes would silently become classic
    try {
        resolve_config(std::nullopt, std::nullopt, t.roots);
        FAIL() << "a vanished /etc/default/portsentry must be named";
    } catch (const ConfigError& e) {
        EXPECT_EQ(first_diagnostic(e).rfind(t.roots.defaults() + ": is gone", 0), 0u) << first_diagnostic(e);
    }
}

TEST(ResolveConfig, ANewYamlAboveTheRememberedFileIsAChoiceNotALoss) {
    Tree t;
    Tree::touch(t.roots.legacy());
    ASSERT_EQ(remember_config(resolve_config(std::nullopt, std::nullopt, t.roots), t.roots), "");
    Tree::touch(t.roots.yaml());
    fs::remove(t.roots.legacy());
    EXPECT_EQ(resolve_config(std::nullopt, std::nullopt, t.roots).path, t.roots.yaml());
}

TEST(ResolveConfig, RememberedYamlVanishedIsRefusedToo) {
    Tree t;
    Tree::touch(t.roots.yaml());
    Tree::touch(t.roots.legacy());
    ASSERT_EQ(remember_config(resolve_config(std::nullopt, std::nullopt, t.roots), t.roots), "");
    fs::remove(t.roots.yaml());
    EXPECT_THROW(resolve_config(std::nullopt, std::nullopt, t.roots), ConfigError);
}

TEST(ResolveConfig, RememberWithDashCWritesNothing) {
    Tree t;
    ASSERT_EQ(remember_config(resolve_config("/srv/x.yaml", std::nullopt, t.roots), t.roots), "");
    EXPECT_FALSE(fs::exists(t.roots.last_used()));
}

TEST(ResolveConfig, RememberReportsAnUnwritableStateDir) {
    Tree t;
    t.roots.state = (t.root / "no-such-dir").string();
    EXPECT_NE(remember_config(resolve_config(std::nullopt, std::nullopt, t.roots), t.roots), "");
}
