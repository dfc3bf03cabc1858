// parse_yaml (the reader itself is yaml_reader.cpp) and the YAML writer used by
// --import-legacy.
// Shape: a `tcp:` and a `udp:` section, everything else flat; see
// etc/portsentry.yaml, which documents every key.
#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"
#include "yaml_reader.hpp"

namespace portsentry::config {

namespace {

void wrap_comment(std::string& out, std::string_view indent, std::string_view text) {
    constexpr size_t kWidth = 78;
    std::string line;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t sp = text.find(' ', pos);
        if (sp == std::string_view::npos) sp = text.size();
        std::string_view word = text.substr(pos, sp - pos);
        if (!line.empty() && indent.size() + 2 + line.size() + 1 + word.size() > kWidth) {
            out += fmt::format("{}# {}\n", indent, line);
            line.clear();
        }
        if (!line.empty()) line += ' ';
        line += word;
        pos = sp + 1;
    }
    if (!line.empty()) out += fmt::format("{}# {}\n", indent, line);
}

}  // namespace

Config parse_yaml(const std::string& text, const std::string& name, const LoadOptions& opts) {
    std::string t = text;
    detail::normalize(t);
    return detail::parse_yaml_text(t, name, opts);
}

Config detail::parse_yaml_text(std::string_view text, const std::string& name, const LoadOptions& opts) {
    detail::ParseState st;
    st.syntax = Syntax::yaml;
    st.base_dir = detail::absolute_dir_of(name);
    st.cfg.source_file = name;
    st.cfg.legacy = false;
    detail::YamlEvents(st, text).run();
    // argv mode flags win over the file, with the same meaning as for legacy files.
    detail::apply_mode_flags(st, opts.mode_flags);
    return detail::finish(std::move(st), opts);
}

std::string to_yaml(const Config& c) {
    std::string out;
    out += "# portsentry-nfq configuration.\n";
    if (c.legacy && !c.source_file.empty()) {
        out += fmt::format("# Converted by portsentry-nfq --import-legacy from {}.\n", c.source_file);
        out += "# ban_time is 0 (permanent) because that is what portsentry 1.2 did.\n";
    }
    out += "# Relative paths are relative to this file's directory.\n";
    std::string section;
    for (const auto& k : keys()) {
        const std::string y(k.yaml);
        const auto dot = y.rfind('.');
        const std::string sec = dot == std::string::npos ? "" : y.substr(0, dot);
        const std::string leaf = dot == std::string::npos ? y : y.substr(dot + 1);
        bool first_in_section = false;
        if (sec != section) {
            section = sec;
            if (!sec.empty()) out += fmt::format("\n{}:\n", sec);
            first_in_section = !sec.empty();
        }
        const std::string indent = sec.empty() ? "" : "  ";
        if (!first_in_section) out += '\n';
        std::string desc(k.description);
        if (!k.legacy.empty()) desc += fmt::format(" (portsentry.conf: {})", k.legacy);
        wrap_comment(out, indent, desc);
        out += fmt::format("{}{}: {}\n", indent, leaf, format_value(k, c));
    }
    return out;
}

}  // namespace portsentry::config
