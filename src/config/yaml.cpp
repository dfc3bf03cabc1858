// Native YAML reader (yaml-cpp) and the YAML writer used by --import-legacy.
// Shape: a `tcp:` and a `udp:` section, everything else flat; see
// etc/portsentry.yaml, which documents every key.
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "internal.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config {

namespace {

constexpr std::string_view kSections[] = {"tcp", "udp", "protect"};

bool is_section(std::string_view s) {
    for (auto sec : kSections)
        if (s == sec) return true;
    return false;
}

unsigned line_of(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    return m.line >= 0 ? static_cast<unsigned>(m.line + 1) : 0;
}

const char* node_kind(const YAML::Node& n) {
    switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a single value";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Undefined: break;
    }
    return "an undefined node";
}

class YamlReader {
public:
    explicit YamlReader(detail::ParseState& st) : st_(st) {}

    void read_map(const YAML::Node& map, const std::string& prefix) {
        std::set<std::string, std::less<>> seen;
        for (const auto& kv : map) {
            const YAML::Node& kn = kv.first;
            const YAML::Node& vn = kv.second;
            const unsigned line = line_of(kn);
            if (!kn.IsScalar()) {
                err(line, fmt::format("expected a key name, got {}", node_kind(kn)));
                continue;
            }
            const std::string path = prefix.empty() ? kn.Scalar() : prefix + "." + kn.Scalar();
            if (!seen.insert(path).second) {
                err(line, fmt::format("{} is set twice (first on line {}): keep one", path,
                                      st_.where_of(path).line));
                continue;
            }
            if (prefix.empty() && is_section(path)) {
                st_.where[path] = detail::Where{st_.cfg.source_file, line};
                if (vn.IsMap())
                    read_map(vn, path);
                else if (!vn.IsNull())
                    err(line, fmt::format("{}: expected a mapping of {} settings (mode, ports, ...), got {}", path,
                                          path, node_kind(vn)));
                continue;
            }
            const KeyInfo* k = find_yaml_key(path);
            if (!k) {
                err(line, unknown_key_message(path, prefix));
                continue;
            }
            st_.where[path] = detail::Where{st_.cfg.source_file, line};
            read_value(*k, vn, line);
        }
    }

private:
    void err(unsigned line, std::string msg) { st_.error(st_.cfg.source_file, line, std::move(msg)); }

    void read_value(const KeyInfo& k, const YAML::Node& v, unsigned line) {
        if (k.kind == ValueKind::port_list && v.IsSequence()) {
            // Each element may be a port, "a-b" or even "1,2"; report the element's own line.
            std::vector<PortRange> all;
            for (const auto& el : v) {
                if (!el.IsScalar()) {
                    err(line_of(el), fmt::format("{}: expected a port or \"a-b\" range, got {}", k.yaml, node_kind(el)));
                    continue;
                }
                auto r = parse_port_list(el.Scalar());
                if (!r.error.empty()) {
                    err(line_of(el), fmt::format("{}: {}: expected {}", k.yaml, r.error, expected_text(k, Syntax::yaml)));
                    continue;
                }
                all.insert(all.end(), r.ranges.begin(), r.ranges.end());
            }
            *std::get<std::vector<PortRange>*>(k.field(st_.cfg)) = std::move(all);
            return;
        }
        std::string text;
        if (v.IsScalar()) {
            text = v.Scalar();
        } else if (!v.IsNull()) {
            err(line, fmt::format("{}: expected {}, got {}", k.yaml, expected_text(k, Syntax::yaml), node_kind(v)));
            return;
        }
        if (auto e = set_value(k, st_.cfg, text, Syntax::yaml))
            err(line, fmt::format("{}: {}", k.yaml, *e));
    }

    static std::string unknown_key_message(const std::string& path, const std::string& prefix) {
        // Candidates: keys at the same level, plus 1.2 names so that a pasted
        // "TCP_PORTS:" is pointed at tcp.ports.
        std::vector<std::string> same_level;
        std::vector<std::pair<std::string, std::string>> legacy;  // legacy name → yaml path
        for (const auto& k : keys()) {
            const std::string y(k.yaml);
            const auto dot = y.rfind('.');
            const std::string parent = dot == std::string::npos ? "" : y.substr(0, dot);
            if (parent == prefix) same_level.push_back(y);
            if (!k.legacy.empty()) legacy.emplace_back(std::string(k.legacy), y);
        }
        if (prefix.empty())
            for (auto sec : kSections) same_level.emplace_back(sec);
        const std::string leaf = path.substr(prefix.empty() ? 0 : prefix.size() + 1);
        for (const auto& [lname, y] : legacy)
            if (lname == leaf) return fmt::format("unknown key '{}': the portsentry.conf key {} is {} in YAML", path, lname, y);
        // Compare without the section prefix so that the leaf's typo decides.
        std::vector<std::string> leaves;
        for (const auto& s : same_level) leaves.push_back(prefix.empty() ? s : s.substr(prefix.size() + 1));
        auto hint = did_you_mean(leaf, leaves);
        if (!hint.empty())
            return fmt::format("unknown key '{}' (did you mean {}{}?)", path, prefix.empty() ? "" : prefix + ".", hint);
        return fmt::format("unknown key '{}': expected one of {}", path, fmt::join(same_level, ", "));
    }

    detail::ParseState& st_;
};

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
    detail::ParseState st;
    st.syntax = Syntax::yaml;
    st.base_dir = detail::absolute_dir_of(name);
    st.cfg.source_file = name;
    st.cfg.legacy = false;

    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        const unsigned line = e.mark.line >= 0 ? static_cast<unsigned>(e.mark.line + 1) : 0;
        throw ConfigError({{name, line, fmt::format("YAML syntax error: {}", e.msg)}});
    }
    if (root.IsMap()) {
        YamlReader(st).read_map(root, "");
    } else if (!root.IsNull()) {
        st.error(name, line_of(root),
                 fmt::format("expected a mapping of settings (key: value lines), got {}", node_kind(root)));
    }
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
