// Enum names, watched-port computation, diagnostics, format detection, mode
// resolution, cross-key validation and ignore files.
#include "portsentry/config/config.hpp"

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
}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diags)
    : std::runtime_error(join(diags)), diags_(std::move(diags)) {}

// ---- loading ----------------------------------------------------------------------

Config load(const std::string& path, const LoadOptions& opts) {
    int err = 0;
    auto text = detail::read_file(path, &err);
    if (!text)
        throw ConfigError({{path, 0, fmt::format("cannot read configuration: {}", std::strerror(err))}});
    if (detect_format(*text) == Format::legacy) {
        Config c = parse_legacy(*text, path, opts);
        return c;
    }
    return parse_yaml(*text, path, opts);
}

Config load_yaml(const std::string& path, const LoadOptions& opts) {
    int err = 0;
    auto text = detail::read_file(path, &err);
    if (!text)
        throw ConfigError({{path, 0, fmt::format("cannot read configuration: {}", std::strerror(err))}});
    return parse_yaml(*text, path, opts);
}

Config load_legacy(const std::string& path, const LoadOptions& opts) {
    int err = 0;
    auto text = detail::read_file(path, &err);
    if (!text)
        throw ConfigError({{path, 0, fmt::format("cannot read configuration: {}", std::strerror(err))}});
    return parse_legacy(*text, path, opts);
}

Config import_legacy(const std::string& dir_or_file, const LoadOptions& opts) {
    std::string path = dir_or_file;
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) path += "/portsentry.conf";
    LoadOptions o = opts;
    o.load_ignore_files = false;
    return load_legacy(path, o);
}

bool load_ignore_file(const std::string& path, net::CidrSet& out) {
    int err = 0;
    auto text = detail::read_file(path, &err);
    if (!text) {
        if (err == ENOENT) return false;
        if (err == EISDIR)
            throw ConfigError({{path, 0, "ignore file is a directory: expected a file with one address or CIDR per line"}});
        throw ConfigError({{path, 0, fmt::format("cannot read ignore file: {}", std::strerror(err))}});
    }
    std::vector<Diagnostic> diags;
    auto lines = detail::split_lines(*text);
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = detail::trim(line);
        if (line.empty()) continue;
        const unsigned lineno = static_cast<unsigned>(i + 1);
        if (line.find_first_of(" \t") != std::string_view::npos) {
            diags.push_back({path, lineno,
                             fmt::format("'{}': expected one address or CIDR per line", line)});
            continue;
        }
        auto cidr = net::Cidr::parse(line);
        if (!cidr) {
            diags.push_back({path, lineno,
                             fmt::format("'{}' is not an address or CIDR: expected e.g. 192.0.2.1, "
                                         "192.0.2.0/24 or 2001:db8::/32",
                                         line)});
            continue;
        }
        out.insert(*cidr);
    }
    if (!diags.empty()) throw ConfigError(std::move(diags));
    return true;
}

namespace detail {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
        out.push_back(line);
        pos = nl + 1;
    }
    return out;
}

namespace {
// Move-only fd owner (STYLE §8).
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

// Config files are small; anything this large is not one (and reading it
// whole would let a wrong -c path, e.g. a disk image, eat memory).
constexpr off_t kMaxConfigBytes = 16 * 1024 * 1024;
}  // namespace

std::optional<std::string> read_file(const std::string& path, int* err) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        *err = errno;
        return std::nullopt;
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) {
        *err = errno;
        return std::nullopt;
    }
    if (S_ISDIR(st.st_mode)) {
        *err = EISDIR;
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > kMaxConfigBytes) {
        // FIFOs and devices could block or never end.
        *err = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        return std::nullopt;
    }
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            *err = errno;
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > static_cast<size_t>(kMaxConfigBytes)) {
            *err = EFBIG;
            return std::nullopt;
        }
    }
    return out;
}

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : slash == 0 ? "/" : path.substr(0, slash);
    if (!dir.empty() && dir.front() == '/') return dir;
    // Made absolute now: the daemon may change directory later, and a reload
    // must find the same files.
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return dir;  // keep relative: still correct until a chdir
    std::string abs = cwd;
    if (!dir.empty()) abs += (abs == "/" ? "" : "/") + dir;
    return abs;
}

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
                     fmt::format("more than one {} mode flag ('{}'): give one of -{}, -s{}, -a{}",
                                 is_udp ? "UDP" : "TCP", raw, is_udp ? "udp" : "tcp", is_udp ? "udp" : "tcp",
                                 is_udp ? "udp" : "tcp"));
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
        st.error(path, 0, fmt::format("cannot read defaults file: {}", std::strerror(err)));
        return;
    }
    // It is a shell fragment sourced by the init script; we accept the
    // assignments it contains (NAME=value, quoted or not, optional export).
    st.cfg.tcp.mode = Mode::off;
    st.cfg.udp.mode = Mode::off;
    auto lines = split_lines(*text);
    for (size_t i = 0; i < lines.size(); ++i) {
        const unsigned lineno = static_cast<unsigned>(i + 1);
        std::string_view line = trim(lines[i]);
        if (line.empty() || line.front() == '#') continue;
        if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
        size_t eq = line.find('=');
        std::string_view name = eq == std::string_view::npos ? line : line.substr(0, eq);
        bool ident = !name.empty();
        for (char ch : name) ident = ident && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
        if (eq == std::string_view::npos || !ident) {
            st.error(path, lineno, "expected NAME=\"value\" (TCP_MODE=\"atcp\" or UDP_MODE=\"audp\")");
            continue;
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
            continue;
        }
        ProtoConfig& pc = is_udp ? st.cfg.udp : st.cfg.tcp;
        st.where[is_udp ? "udp.mode" : "tcp.mode"] = Where{path, lineno};
        if (value.empty()) {  // the init script starts nothing for an empty mode
            pc.mode = Mode::off;
            continue;
        }
        bool flag_udp = false;
        auto m = mode_from_legacy_flag(value, &flag_udp);
        if (!m || flag_udp != is_udp) {
            st.error(path, lineno,
                     fmt::format("{}: '{}' is not a {} mode: expected \"{}\", \"s{}\", \"a{}\" or \"\"", name,
                                 value, is_udp ? "UDP" : "TCP", is_udp ? "udp" : "tcp", is_udp ? "udp" : "tcp",
                                 is_udp ? "udp" : "tcp"));
            continue;
        }
        pc.mode = *m;
    }
}

namespace {

void validate(ParseState& st) {
    Config& c = st.cfg;
    auto key = [](std::string_view path) { return *find_yaml_key(path); };

    for (bool udp : {false, true}) {
        const ProtoConfig& pc = udp ? c.udp : c.tcp;
        const std::string prefix = udp ? "udp" : "tcp";
        const KeyInfo& ports = key(prefix + ".ports");
        if ((pc.mode == Mode::classic || pc.mode == Mode::stealth) && pc.ports.empty()) {
            Where w = st.where.count(prefix + ".ports") ? st.where_of(prefix + ".ports") : st.where_of(prefix + ".mode");
            st.error(w, fmt::format("{} is empty but {} mode is {}: expected at least one port", st.name(ports),
                                    udp ? "UDP" : "TCP", to_string(pc.mode)));
        }
        const KeyInfo& block = key(prefix + ".block");
        if (pc.mode != Mode::off && pc.block == 2 && c.kill_run_cmd.empty()) {
            st.error(st.where_of(prefix + ".block"),
                     fmt::format("{} is 2 (run {} only) but {} is not set: set it, or use 0 or 1", st.name(block),
                                 st.name(key("kill_run_cmd")), st.name(key("kill_run_cmd"))));
        }
    }

    const KeyInfo& deny = key("kill_hosts_deny");
    if (!c.kill_hosts_deny.empty() && c.kill_hosts_deny.find("$TARGET$") == std::string::npos)
        st.error(st.where_of("kill_hosts_deny"),
                 fmt::format("{} must contain $TARGET$ (the attacker's address): expected e.g. "
                             "\"ALL: $TARGET$ : DENY\"",
                             st.name(deny)));

    auto check_command = [&](std::string_view path, const std::string& cmd) {
        const KeyInfo& k = key(path);
        if (auto tok = find_shell_syntax(cmd))
            st.error(st.where_of(path),
                     fmt::format("{} contains shell syntax ({}): it is run without a shell; put it in a "
                                 "script and give the script's path with $TARGET$ $PORT$ $MODE$ arguments",
                                 st.name(k), *tok));
    };
    if (!c.kill_run_cmd.empty()) check_command("kill_run_cmd", c.kill_run_cmd);
    if (!c.kill_route.empty() && !c.kill_route_is_builtin()) {
        check_command("kill_route", c.kill_route);
        if (c.kill_route.find("$TARGET$") == std::string::npos)
            st.error(st.where_of("kill_route"),
                     fmt::format("{} is a custom command without $TARGET$: expected the attacker's address "
                                 "as an argument, e.g. \"/usr/local/sbin/block $TARGET$\"",
                                 st.name(key("kill_route"))));
    }

    for (const auto& k : keys()) {
        if (k.kind != ValueKind::path || !k.required) continue;
        if (std::get<std::string*>(k.field(c))->empty())
            st.error(st.where_of(k.yaml), fmt::format("{} is empty: expected {}", st.name(k), expected_text(k, st.syntax)));
    }
}

}  // namespace

namespace {

// Writable as the daemon will need it: the file itself if it exists (appended
// or rewritten in place), else its directory (created, or temp + rename).
void check_writable(ParseState& st, std::string_view yaml_key, const std::string& path, bool dir_only) {
    if (path.empty()) return;
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const std::string target = !dir_only && ::access(path.c_str(), F_OK) == 0 ? path : dir;
    if (::access(target.c_str(), W_OK) == 0) return;
    const int e = errno;
    // EROFS is the sandbox (ProtectSystem=strict and no ReadWritePaths= for
    // it); EACCES means something only as root; a missing directory is for
    // the daemon to report when it starts.
    if (e != EROFS && !(e == EACCES && ::geteuid() == 0)) return;
    const KeyInfo* k = find_yaml_key(yaml_key);
    st.error(st.where_of(yaml_key),
             fmt::format("{}: {} is not writable here ({}){}", k ? st.name(*k) : yaml_key, target, std::strerror(e),
                         e == EROFS ? ": under systemd, add it to ReadWritePaths= (systemctl edit portsentry-nfq) or "
                                      "choose a path in one (portsentry-nfq(8), SYSTEMD)"
                                    : ""));
}

void check_write_paths(ParseState& st) {
    const Config& c = st.cfg;
    check_writable(st, "history_file", c.history_file, false);
    check_writable(st, "blocked_file", c.blocked_file, true);
    check_writable(st, "state_file", c.state_file, true);
    // Legacy files have no hosts_deny_file key: KILL_HOSTS_DENY is the line that asks for it.
    if (!c.kill_hosts_deny.empty())
        check_writable(st, st.where.count("hosts_deny_file") ? "hosts_deny_file" : "kill_hosts_deny",
                       c.hosts_deny_file, false);
    if (!c.json_log.empty()) check_writable(st, "json_log", c.json_log, false);
}

}  // namespace

Config finish(ParseState st, const LoadOptions& opts) {
    Config& c = st.cfg;
    if (!st.base_dir.empty()) {
        for (const auto& k : keys()) {
            if (k.kind != ValueKind::path) continue;
            std::string& p = *std::get<std::string*>(k.field(c));
            if (!p.empty() && p.front() != '/')
                p = (std::filesystem::path(st.base_dir) / p).lexically_normal().string();
        }
    }
    validate(st);
    if (opts.check_write_paths && st.diags.empty()) check_write_paths(st);
    if (opts.load_ignore_files && !c.ignore_file.empty()) {
        for (const std::string& f : {c.ignore_file, c.ignore_file + ".static"}) {
            try {
                load_ignore_file(f, c.ignore);
            } catch (const ConfigError& e) {
                st.diags.insert(st.diags.end(), e.diagnostics().begin(), e.diagnostics().end());
            }
        }
    }
    if (!st.diags.empty()) {
        // Readers report as they go and validation reports afterwards; admins
        // fix files top to bottom, so order by file (first mention) then line.
        std::vector<std::string> files;
        for (const auto& d : st.diags)
            if (std::find(files.begin(), files.end(), d.file) == files.end()) files.push_back(d.file);
        auto rank = [&](const Diagnostic& d) {
            return std::pair(std::find(files.begin(), files.end(), d.file) - files.begin(), d.line);
        };
        std::stable_sort(st.diags.begin(), st.diags.end(),
                         [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
        throw ConfigError(std::move(st.diags));
    }
    return std::move(st.cfg);
}

}  // namespace detail

}  // namespace portsentry::config
