// Shared oracle of the two config harnesses: a configuration that loaded must
// survive to_yaml() (what --import-legacy prints) and load again to the same
// values. Anything else that goes wrong in the loaders must be a ConfigError
// carrying located diagnostics, or at least a std::exception (expected).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "portsentry/config/config.hpp"

namespace fuzz {

inline void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "config fuzz oracle: %s\n%s\n", what, detail.c_str());
    std::abort();
}

inline void check_error(const portsentry::config::ConfigError& e) {
    if (e.diagnostics().empty()) fail("ConfigError without diagnostics", e.what());
    for (const auto& d : e.diagnostics())
        if (d.message.empty()) fail("diagnostic without message", d.to_string());
}

inline void check_roundtrip(const portsentry::config::Config& c) {
    using namespace portsentry::config;
    const std::string yaml = to_yaml(c);
    LoadOptions opts;
    opts.load_ignore_files = false;
    Config back;
    try {
        back = parse_yaml(yaml, "to_yaml-output", opts);
    } catch (const ConfigError& e) {
        std::string all = yaml + "\n---- diagnostics:\n";
        for (const auto& d : e.diagnostics()) all += d.to_string() + "\n";
        fail("to_yaml() output does not load", all);
    }
    if (!(back.tcp == c.tcp) || !(back.udp == c.udp) || back.kill_route != c.kill_route ||
        back.kill_run_cmd != c.kill_run_cmd || back.kill_hosts_deny != c.kill_hosts_deny ||
        back.port_banner != c.port_banner || back.scan_trigger != c.scan_trigger ||
        back.ban_time != c.ban_time || back.ignore_file != c.ignore_file)
        fail("to_yaml() output loads to different values", yaml);
}

}  // namespace fuzz
