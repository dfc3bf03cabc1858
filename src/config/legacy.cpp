// portsentry 1.2 portsentry.conf reader. The format: one KEY="value" per line
// (Debian's own file also has KEY = "value"), whole-line # comments, blank
// lines. We also take bare values and trailing # comments, and report every
// problem with FILE:LINE instead of 1.2's silent fallbacks.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config {

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return out;
}

std::string unknown_key_message(std::string_view name, const LoadOptions& opts) {
    // The two settings of Debian's /etc/default/portsentry, pasted here.
    if (name == "TCP_MODE" || name == "UDP_MODE")
        return fmt::format("{} does not belong in portsentry.conf: set it in {} (the --defaults file) or "
                           "give -{} on the command line",
                           name, opts.defaults_file, name == "TCP_MODE" ? "atcp/-stcp/-tcp" : "audp/-sudp/-udp");
    // A native-only knob spelled the 1.2 way (BAN_TIME, METRICS_LISTEN,
    // CROWDSEC_LAPI_URL): say where it lives instead.
    for (const auto& k : keys()) {
        std::string flat = upper(k.yaml);
        std::replace(flat.begin(), flat.end(), '.', '_');
        if (k.legacy.empty() && flat == upper(name))
            return fmt::format("'{}' exists only in the YAML configuration (as {}): convert this file with "
                               "--import-legacy",
                               name, k.yaml);
    }
    std::vector<std::string> known;
    for (const auto& k : keys())
        if (!k.legacy.empty()) known.emplace_back(k.legacy);
    auto hint = did_you_mean(name, known);
    if (!hint.empty()) return fmt::format("unknown key '{}' (did you mean {}?)", name, hint);
    return fmt::format("unknown key '{}': expected a portsentry.conf key such as TCP_PORTS or BLOCK_TCP", name);
}

}  // namespace

Config parse_legacy(const std::string& text, const std::string& name, const LoadOptions& opts) {
    std::string t = text;
    detail::normalize(t);
    return detail::parse_legacy_text(t, name, opts);
}

Config detail::parse_legacy_text(std::string_view text, const std::string& name, const LoadOptions& opts) {
    detail::ParseState st;
    st.syntax = Syntax::legacy;
    st.base_dir = detail::absolute_dir_of(name);
    st.cfg.source_file = name;
    st.cfg.legacy = true;
    for (const auto& k : keys()) {
        // Defaults that differ for legacy files (ban_time 0: 1.2 bans forever).
        if (k.legacy_default) (void)set_value(k, st.cfg, k.legacy_default, Syntax::yaml);
    }

    detail::for_each_line(text, [&](std::string_view raw, unsigned lineno) {
        std::string_view line = detail::trim(raw);
        if (line.empty() || line.front() == '#') return;

        size_t n = 0;
        while (n < line.size() && (std::isalnum(static_cast<unsigned char>(line[n])) || line[n] == '_')) ++n;
        std::string_view key = line.substr(0, n);
        std::string_view rest = detail::trim(line.substr(n));
        // A line refused before its value is read still names its key: no
        // follow-up error ("TCP_PORTS is empty") for it.
        auto refuse = [&](std::string msg) {
            if (const KeyInfo* k = find_legacy_key(key)) st.failed.emplace(k->yaml);
            st.error(name, lineno, std::move(msg));
        };
        if (key.empty() || rest.empty() || rest.front() != '=') {
            refuse(key.empty() ? fmt::format("'{}': expected KEY=\"value\"", line)
                                 : fmt::format("expected '=' after {}: KEY=\"value\"", key));
            return;
        }
        rest = detail::trim(rest.substr(1));

        std::string_view value;
        if (!rest.empty() && rest.front() == '"') {
            size_t close = rest.find('"', 1);
            if (close == std::string_view::npos) {
                refuse(fmt::format("{}: missing closing quote: expected KEY=\"value\"", key));
                return;
            }
            value = rest.substr(1, close - 1);
            std::string_view after = detail::trim(rest.substr(close + 1));
            if (!after.empty() && after.front() != '#') {
                refuse(fmt::format("{}: unexpected text after the closing quote: '{}'", key, after));
                return;
            }
        } else {
            // Bare value: up to a # that starts a comment (preceded by a blank).
            value = rest;
            for (size_t p = 0; p < value.size(); ++p) {
                if (value[p] == '#' && (p == 0 || value[p - 1] == ' ' || value[p - 1] == '\t')) {
                    value = detail::trim(value.substr(0, p));
                    break;
                }
            }
        }

        const KeyInfo* k = find_legacy_key(key);
        if (!k) {
            // Past the kept diagnostics only the count matters: skip the costly hint.
            st.error(name, lineno, st.full() ? std::string() : unknown_key_message(key, opts));
            return;
        }
        if (auto prev = st.where.find(k->yaml); prev != st.where.end()) {
            // 1.2 silently used the first one; the stock file warns to
            // uncomment only one KILL_ROUTE, so a second one is a mistake.
            st.key_error(k->yaml, {name, lineno},
                     fmt::format("{} is set twice (first on line {}): keep one", key, prev->second.line));
            return;
        }
        st.where[std::string(k->yaml)] = detail::Where{name, lineno};
        if (auto err = set_value(*k, st.cfg, value, Syntax::legacy))
            st.key_error(k->yaml, {name, lineno}, fmt::format("{}: {}", key, *err));
    });

    // Modes live outside portsentry.conf: argv flags, else /etc/default/portsentry.
    if (!detail::apply_mode_flags(st, opts.mode_flags)) detail::apply_defaults_file(st, opts.defaults_file);
    return detail::finish(std::move(st), opts);
}

}  // namespace portsentry::config
