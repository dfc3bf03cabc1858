// Shared machinery of the two readers: diagnostics with positions, the
// cross-key validation both formats go through, and file reading.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config::detail {

// ParseState keeps this many diagnostics and counts the rest: a file of
// millions of junk lines must not cost memory per line (ConfigError prints
// at most kShownDiagnostics of them).
inline constexpr size_t kKeepDiagnostics = 1000;

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
    size_t dropped = 0;  // diagnostics beyond kKeepDiagnostics, counted only
    // YAML paths of keys that already have an error: validation does not add
    // a follow-up ("TCP_PORTS is empty") to a key whose line was refused.
    std::set<std::string, std::less<>> failed;
    // The reader stopped before the end (YAML syntax error, second document,
    // broken quote): cross-key checks would report settings it never saw.
    bool truncated = false;

    bool full() const { return diags.size() >= kKeepDiagnostics; }
    void error(const Where& w, std::string message) { error(w.file, w.line, std::move(message)); }
    void error(std::string file, unsigned line, std::string message) {
        if (diags.size() >= kKeepDiagnostics) {
            ++dropped;
            return;
        }
        diags.push_back(Diagnostic{std::move(file), line, std::move(message)});
    }
    // An error about one key's value: also marks the key as failed.
    void key_error(std::string_view yaml_path, const Where& w, std::string message) {
        failed.emplace(yaml_path);
        error(w, std::move(message));
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

// secret.cpp, for validation. A secret file's problem as "PATH: why"
// (secret_file_problem), the secret into *secret when there is none.
// unreadable_ok: EACCES is no problem (a --check run by a user other than
// root, who runs the daemon); a mode with group/other bits still is.
std::optional<std::string> secret_problem(const std::string& path, bool unreadable_ok, std::string* secret);
// "PATH: why" when `path` cannot be opened for reading or is not a regular
// file (crowdsec.ca_file).
std::optional<std::string> readable_file_problem(const std::string& path, bool unreadable_ok);

// Resolve relative paths, cross-check keys, load ignore files; throws
// ConfigError with every diagnostic if anything was wrong.
Config finish(ParseState st, const LoadOptions& opts);

// read_file's *err when the path is a FIFO, socket or device.
inline constexpr int kNotRegularFile = -1;
// Whole file, normalized, or nullopt with errno (or kNotRegularFile) in *err.
// Never blocks: FIFOs are opened non-blocking and then refused.
std::optional<std::string> read_file(const std::string& path, int* err);
// "not a regular file", "No such file or directory", ...
std::string read_error_text(int err);
// The directory of `path`, made absolute (relative ignore files resolve against it).
std::string absolute_dir_of(const std::string& path);

// In place: drops a leading UTF-8 BOM; CRLF and lone CR become LF.
void normalize(std::string& text);
// Bytes that could drive a terminal (controls except tab, DEL, C1 controls,
// invalid UTF-8) as \xHH; everything else unchanged.
std::string escape(std::string_view s);

// Calls f(line, lineno) for each line of normalized text (LF only), 1-based,
// without materializing a vector: a 16 MiB file may have 8 million lines.
template <class F>
void for_each_line(std::string_view text, F&& f) {
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        f(text.substr(pos, nl - pos), ++lineno);
        pos = nl + 1;
    }
}
std::string_view trim(std::string_view s);  // blanks and CR only (line-oriented inputs)

// Value text helpers of the key table (values.cpp).
std::string lower(std::string_view s);
std::string_view trim_space(std::string_view s);  // everything isspace() on both ends
// Strict unsigned decimal: digits only, no sign, no overflow.
std::optional<uint64_t> parse_uint(std::string_view s);

// One ignore file into `out`; problems go to diags (at most kKeepDiagnostics,
// the rest counted in dropped). False when the file does not exist.
bool read_ignore(const std::string& path, net::CidrSet& out, std::vector<Diagnostic>& diags, size_t& dropped);

// Readers over normalized text (parse_yaml/parse_legacy normalize a copy).
Config parse_yaml_text(std::string_view text, const std::string& name, const LoadOptions& opts);
Config parse_legacy_text(std::string_view text, const std::string& name, const LoadOptions& opts);


}  // namespace portsentry::config::detail
