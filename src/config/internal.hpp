// Shared machinery of the two readers: diagnostics with positions, the
// cross-key validation both formats go through, and file reading.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config::detail {

struct Where {
    std::string file;
    unsigned line = 0;
};

// One reader run: the config being built, where each key was set, and every
// problem found so far.
struct ParseState {
    Config cfg;
    Syntax syntax = Syntax::yaml;
    std::string base_dir;  // absolute dir of the config file: relative paths resolve here
    std::map<std::string, Where, std::less<>> where;  // YAML path → where it was set
    std::vector<Diagnostic> diags;

    void error(const Where& w, std::string message) {
        diags.push_back(Diagnostic{w.file, w.line, std::move(message)});
    }
    void error(std::string file, unsigned line, std::string message) {
        diags.push_back(Diagnostic{std::move(file), line, std::move(message)});
    }
    // The key's name as the admin wrote it: TCP_PORTS in legacy files, tcp.ports in YAML.
    std::string_view name(const KeyInfo& k) const {
        return syntax == Syntax::legacy && !k.legacy.empty() ? k.legacy : k.yaml;
    }
    Where where_of(std::string_view yaml_path) const;
};

// Resolves mode flags (LoadOptions::mode_flags) into cfg.tcp/udp.mode. Returns
// false when there were none.
bool apply_mode_flags(ParseState& st, const std::vector<std::string>& flags);
// Legacy: TCP_MODE/UDP_MODE from the defaults file (Debian's /etc/default/portsentry).
void apply_defaults_file(ParseState& st, const std::string& path);

// Resolve relative paths, cross-check keys, load ignore files; throws
// ConfigError with every diagnostic if anything was wrong.
Config finish(ParseState st, const LoadOptions& opts);

// Whole file, or nullopt with errno preserved in *err.
std::optional<std::string> read_file(const std::string& path, int* err);
// The directory of `path`, made absolute (relative ignore files resolve against it).
std::string absolute_dir_of(const std::string& path);

// Splits text into lines (LF or CRLF), 1-based numbering by index + 1.
std::vector<std::string_view> split_lines(std::string_view text);
std::string_view trim(std::string_view s);

}  // namespace portsentry::config::detail
