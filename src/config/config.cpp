// Enum names, watched-port computation, diagnostics, format detection, mode
// resolution, cross-key validation and ignore files.
#include "portsentry/config/config.hpp"
#include "portsentry/net/packet.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config {

namespace {
net::L4 l4(bool udp) { return udp ? net::L4::udp : net::L4::tcp; }
}  // namespace


// ---- enums ----------------------------------------------------------------------

const char* to_string(Mode m) {
    switch (m) {
    case Mode::off: return "off";
    case Mode::classic: return "classic";
    case Mode::stealth: return "stealth";
    case Mode::advanced: return "advanced";
    }
    return "?";
}

std::optional<Mode> mode_from_legacy_flag(std::string_view flag, bool* is_udp) {
    static constexpr std::array<std::pair<std::string_view, Mode>, 3> prefixes{
        {{"", Mode::classic}, {"s", Mode::stealth}, {"a", Mode::advanced}}};
    for (auto [prefix, mode] : prefixes) {
        for (std::string_view proto : {"tcp", "udp"}) {
            if (flag.size() == prefix.size() + 3 && flag.substr(0, prefix.size()) == prefix &&
                flag.substr(prefix.size()) == proto) {
                if (is_udp) *is_udp = proto == "udp";
                return mode;
            }
        }
    }
    return std::nullopt;
}

const char* to_string(Steer s) {
    switch (s) {
    case Steer::auto_: return "auto";
    case Steer::queue: return "queue";
    case Steer::xt_queue: return "xt-queue";
    case Steer::nflog: return "nflog";
    }
    return "?";
}

std::optional<Steer> steer_from_string(std::string_view s) {
    for (Steer v : {Steer::auto_, Steer::queue, Steer::xt_queue, Steer::nflog})
        if (s == to_string(v)) return v;
    return std::nullopt;
}

// ---- ProtoConfig / Config ---------------------------------------------------------

namespace {

std::vector<PortRange> merge(std::vector<PortRange> v) {
    std::sort(v.begin(), v.end(), [](const PortRange& a, const PortRange& b) {
        return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi;
    });
    std::vector<PortRange> out;
    for (const auto& r : v) {
        // Adjacent ranges merge too (1-5, 6-9 → 1-9): fewer nft interval elements.
        if (!out.empty() && static_cast<unsigned>(r.lo) <= static_cast<unsigned>(out.back().hi) + 1)
            out.back().hi = std::max(out.back().hi, r.hi);
        else
            out.push_back(r);
    }
    return out;
}

}  // namespace

std::vector<PortRange> ProtoConfig::watched() const {
    switch (mode) {
    case Mode::off: return {};
    case Mode::classic:
    case Mode::stealth: return merge(ports);
    case Mode::advanced: break;
    }
    // "Any port *below* this number will be monitored" (1.2): [1, advanced_ports).
    if (advanced_ports <= 1) return {};
    std::vector<PortRange> out{{1, static_cast<uint16_t>(advanced_ports - 1)}};
    for (const auto& ex : merge(advanced_exclude)) {
        std::vector<PortRange> next;
        for (const auto& r : out) {
            if (ex.hi < r.lo || ex.lo > r.hi) {
                next.push_back(r);
                continue;
            }
            if (ex.lo > r.lo) next.push_back({r.lo, static_cast<uint16_t>(ex.lo - 1)});
            if (ex.hi < r.hi) next.push_back({static_cast<uint16_t>(ex.hi + 1), r.hi});
        }
        out = std::move(next);
    }
    return out;
}

bool Config::kill_route_is_builtin() const {
    std::string_view cmd = detail::trim(kill_route);
    if (cmd.empty()) return false;
    std::string_view first = cmd.substr(0, cmd.find_first_of(" \t"));
    if (first == "nft-set") return true;
    std::string_view base = first.substr(first.rfind('/') == std::string_view::npos ? 0 : first.rfind('/') + 1);
    // The firewall and route commands of the stock portsentry.conf, plus their
    // modern Linux spellings; all of them mean "stop traffic from $TARGET$",
    // which the nft ban set does better. Anything else is the admin's script.
    static constexpr std::array<std::string_view, 12> builtin{
        "iptables",     "ip6tables",     "iptables-legacy", "ip6tables-legacy",
        "iptables-nft", "ip6tables-nft", "route",           "ipchains",
        "ipfwadm",      "ipfw",          "ip",              "ipf"};
    return std::find(builtin.begin(), builtin.end(), base) != builtin.end();
}

// ---- diagnostics ------------------------------------------------------------------

std::string Diagnostic::to_string() const {
    if (file.empty()) return message;
    if (line == 0) return fmt::format("{}: {}", file, message);
    return fmt::format("{}:{}: {}", file, line, message);
}

namespace {
std::string join(const std::vector<Diagnostic>& diags) {
    std::string s;
    for (const auto& d : diags) {
        if (!s.empty()) s += '\n';
        s += d.to_string();
    }
    return s;
}

std::vector<Diagnostic> shown(std::vector<Diagnostic> diags, size_t not_kept) {
    for (auto& d : diags) {
        d.file = detail::escape(d.file);
        d.message = detail::escape(d.message);
    }
    if (diags.size() > kShownDiagnostics || not_kept > 0) {
        const size_t more = diags.size() - std::min(diags.size(), kShownDiagnostics) + not_kept;
        diags.resize(std::min(diags.size(), kShownDiagnostics));
        diags.push_back({"", 0, fmt::format("\u2026 {} more", more)});
    }
    return diags;
}
}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diags, size_t not_kept)
    : ConfigError(shown(std::move(diags), not_kept), Shown{}) {}

ConfigError::ConfigError(std::vector<Diagnostic> diags, Shown)
    : std::runtime_error(join(diags)), diags_(std::move(diags)) {}

// ---- loading ----------------------------------------------------------------------

namespace {
std::string read_config(const std::string& path) {
    int err = 0;
    auto text = detail::read_file(path, &err);
    if (!text)
        throw ConfigError({{path, 0, fmt::format("cannot read configuration: {}", detail::read_error_text(err))}});
    return std::move(*text);
}
}  // namespace

Config load(const std::string& path, const LoadOptions& opts) {
    const std::string text = read_config(path);
    if (detect_format(text) == Format::legacy) return detail::parse_legacy_text(text, path, opts);
    return detail::parse_yaml_text(text, path, opts);
}

Config load_yaml(const std::string& path, const LoadOptions& opts) {
    return detail::parse_yaml_text(read_config(path), path, opts);
}

Config load_legacy(const std::string& path, const LoadOptions& opts) {
    return detail::parse_legacy_text(read_config(path), path, opts);
}

Config import_legacy(const std::string& dir_or_file, const LoadOptions& opts) {
    std::string path = dir_or_file;
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) path += "/portsentry.conf";
    LoadOptions o = opts;
    o.load_ignore_files = false;
    return load_legacy(path, o);
}

namespace detail {

Where ParseState::where_of(std::string_view yaml_path) const {
    if (auto it = where.find(yaml_path); it != where.end()) return it->second;
    return Where{cfg.source_file, 0};
}

bool apply_mode_flags(ParseState& st, const std::vector<std::string>& flags) {
    if (flags.empty()) return false;
    // As in 1.2, each flag starts one protocol; a protocol without a flag is off.
    st.cfg.tcp.mode = Mode::off;
    st.cfg.udp.mode = Mode::off;
    bool seen_tcp = false, seen_udp = false;
    for (const auto& raw : flags) {
        std::string_view f = raw;
        while (!f.empty() && f.front() == '-') f.remove_prefix(1);
        bool is_udp = false;
        auto m = mode_from_legacy_flag(f, &is_udp);
        if (!m) {
            st.error("command line", 0,
                     fmt::format("unknown mode flag '{}': expected -tcp, -stcp, -atcp, -udp, -sudp or -audp", raw));
            continue;
        }
        bool& seen = is_udp ? seen_udp : seen_tcp;
        if (seen) {
            st.error("command line", 0,
                     fmt::format("more than one {0} mode flag ('{1}'): give one of -{2}, -s{2}, -a{2}",
                                 net::to_string(l4(is_udp)), raw, net::keyword(l4(is_udp))));
            continue;
        }
        seen = true;
        (is_udp ? st.cfg.udp : st.cfg.tcp).mode = *m;
        st.where[is_udp ? "udp.mode" : "tcp.mode"] = Where{"command line", 0};
    }
    return true;
}

void apply_defaults_file(ParseState& st, const std::string& path) {
    int err = 0;
    auto text = read_file(path, &err);
    if (!text) {
        if (err == ENOENT) {
            // 1.2 needs a mode and has no built-in one. Debian's postinst writes
            // TCP_MODE="tcp" / UDP_MODE="udp" on first install, so a system
            // without the file behaves like a fresh Debian install: classic.
            st.cfg.tcp.mode = Mode::classic;
            st.cfg.udp.mode = Mode::classic;
            return;
        }
        st.error(path, 0, fmt::format("cannot read defaults file: {}", read_error_text(err)));
        return;
    }
    // It is a shell fragment sourced by the init script; we accept the
    // assignments it contains (NAME=value, quoted or not, optional export).
    st.cfg.tcp.mode = Mode::off;
    st.cfg.udp.mode = Mode::off;
    for_each_line(*text, [&](std::string_view raw, unsigned lineno) {
        std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') return;
        if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
        size_t eq = line.find('=');
        std::string_view name = eq == std::string_view::npos ? line : line.substr(0, eq);
        bool ident = !name.empty();
        for (char ch : name) ident = ident && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
        if (eq == std::string_view::npos || !ident) {
            st.error(path, lineno, "expected NAME=\"value\" (TCP_MODE=\"atcp\" or UDP_MODE=\"audp\")");
            return;
        }
        std::string_view value = trim(line.substr(eq + 1));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
            value = value.substr(1, value.size() - 2);
        } else if (auto hash = value.find(" #"); hash != std::string_view::npos) {
            value = trim(value.substr(0, hash));
        }
        const bool is_udp = name == "UDP_MODE";
        if (name != "TCP_MODE" && !is_udp) {
            static const std::vector<std::string> known{"TCP_MODE", "UDP_MODE"};
            auto hint = did_you_mean(name, known);
            st.error(path, lineno,
                     fmt::format("unknown setting '{}'{}: expected TCP_MODE or UDP_MODE", name,
                                 hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
            return;
        }
        ProtoConfig& pc = is_udp ? st.cfg.udp : st.cfg.tcp;
        st.where[is_udp ? "udp.mode" : "tcp.mode"] = Where{path, lineno};
        if (value.empty()) {  // the init script starts nothing for an empty mode
            pc.mode = Mode::off;
            return;
        }
        bool flag_udp = false;
        auto m = mode_from_legacy_flag(value, &flag_udp);
        if (!m || flag_udp != is_udp) {
            st.error(path, lineno,
                     fmt::format("{0}: '{1}' is not a {2} mode: expected \"{3}\", \"s{3}\", \"a{3}\" or \"\"", name,
                                 value, net::to_string(l4(is_udp)), net::keyword(l4(is_udp))));
            return;
        }
        pc.mode = *m;
    });
}

}  // namespace detail

}  // namespace portsentry::config
