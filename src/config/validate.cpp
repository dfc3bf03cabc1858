// Cross-key validation both readers go through, and the last step of a load:
// relative paths, ignore files, one ConfigError with every problem in order.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::config {

std::optional<std::vector<std::string>> split_command(std::string_view tmpl, std::string* error) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false, in_quote = false;
    size_t quote_at = 0;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        const char c = tmpl[i];
        if (c == '"') {
            in_quote = !in_quote;
            quote_at = i;
            in_word = true;  // "" is an (empty) word of its own
        } else if (!in_quote && (c == ' ' || c == '\t')) {
            if (in_word) words.push_back(std::move(cur));
            cur.clear();
            in_word = false;
        } else {
            cur.push_back(c);
            in_word = true;
        }
    }
    auto fail = [&](std::string why) -> std::optional<std::vector<std::string>> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    if (in_quote) return fail(fmt::format("unterminated double quote (opened at offset {})", quote_at));
    if (in_word) words.push_back(std::move(cur));
    if (words.empty()) return fail("empty command");
    if (words[0].empty()) return fail("the program name is empty (\"\")");
    return words;
}

std::string banner_error(std::string_view text) {
    if (text.size() > kMaxBannerLength)
        return fmt::format("{} bytes long, the limit is {}", text.size(), kMaxBannerLength);
    for (size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            return fmt::format("control character 0x{:02x} at offset {} (only \\r \\n \\t are allowed)", c, i);
    }
    return {};
}

}  // namespace portsentry::config

namespace portsentry::config::detail {

namespace {
std::string command_error(std::string_view cmd) {
    std::string why;
    return split_command(cmd, &why) ? std::string() : why;
}
}  // namespace

namespace {

// crowdsec.*: what the fleet needs once lapi_url is set. A missing key is
// reported at its own line when it is written (as ""), else at lapi_url's.
void validate_fleet(ParseState& st) {
    const Config::Crowdsec& cs = st.cfg.crowdsec;
    if (!cs.enabled() || st.failed.count("crowdsec.lapi_url")) return;
    auto at = [&](std::string_view key) {
        return st.where.count(key) ? st.where_of(key) : st.where_of("crowdsec.lapi_url");
    };
    if (!cs.push && !cs.pull) {
        st.error(at(st.where.count("crowdsec.pull") ? "crowdsec.pull" : "crowdsec.push"),
                 "crowdsec.push and crowdsec.pull are both false: the fleet would neither send nor receive a ban: "
                 "set one of them to true, or crowdsec.lapi_url to \"\" (off)");
        return;
    }
    if (cs.push && cs.machine_id.empty() && !st.failed.count("crowdsec.machine_id"))
        st.error(at("crowdsec.machine_id"),
                 "crowdsec.push needs crowdsec.machine_id: the watcher's login (cscli machines add NAME "
                 "--password ...), or set crowdsec.push to false");
    if (cs.push && cs.password_file.empty() && !st.failed.count("crowdsec.password_file"))
        st.error(at("crowdsec.password_file"),
                 "crowdsec.push needs crowdsec.password_file: a file of mode 0600 with the watcher's password on its "
                 "first line, or set crowdsec.push to false");
    if (cs.pull && cs.bouncer_key_file.empty() && !st.failed.count("crowdsec.bouncer_key_file"))
        st.error(at("crowdsec.bouncer_key_file"),
                 "crowdsec.pull needs crowdsec.bouncer_key_file: a file of mode 0600 with a bouncer API key (cscli "
                 "bouncers add NAME) on its first line, or set crowdsec.pull to false");
}

void validate(ParseState& st) {
    Config& c = st.cfg;
    auto key = [](std::string_view path) { return *find_yaml_key(path); };

    for (net::L4 proto : {net::L4::tcp, net::L4::udp}) {
        const ProtoConfig& pc = proto == net::L4::udp ? c.udp : c.tcp;
        const std::string prefix = net::keyword(proto);
        const KeyInfo& ports = key(prefix + ".ports");
        if ((pc.mode == Mode::classic || pc.mode == Mode::stealth) && pc.ports.empty() &&
            !st.failed.count(prefix + ".ports")) {
            Where w = st.where.count(prefix + ".ports") ? st.where_of(prefix + ".ports") : st.where_of(prefix + ".mode");
            st.error(w, fmt::format("{} is empty but {} mode is {}: expected at least one port", st.name(ports),
                                    net::to_string(proto), to_string(pc.mode)));
        }
        const KeyInfo& block = key(prefix + ".block");
        if (pc.mode != Mode::off && pc.block == 2 && c.kill_run_cmd.empty() && !st.failed.count("kill_run_cmd")) {
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
        if (st.failed.count(path)) return;
        // The argv split the actions layer will do when the command runs:
        // refused here, with its line, instead of at the first ban.
        if (auto why = command_error(cmd); !why.empty())
            st.key_error(path, st.where_of(path),
                         fmt::format("{}: {}: expected a program path and arguments, e.g. "
                                     "/usr/local/sbin/notify \"$TARGET$\" $PORT$",
                                     st.name(k), why));
        else if (auto tok = find_shell_syntax(cmd))
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

    if (auto why = config::banner_error(c.port_banner); !why.empty() && !st.failed.count("port_banner"))
        st.key_error("port_banner", st.where_of("port_banner"), fmt::format("{}: {}", st.name(key("port_banner")), why));

    if (!c.metrics.listen.empty() && !st.failed.count("metrics.listen")) {
        std::string why;
        if (!parse_listen(c.metrics.listen, &why))
            st.key_error("metrics.listen", st.where_of("metrics.listen"),
                         fmt::format("{}: {}: expected ADDRESS:PORT, e.g. \"127.0.0.1:9470\" or \"[::1]:9470\", "
                                     "or \"\" (off)",
                                     st.name(key("metrics.listen")), why));
    }

    validate_fleet(st);

    for (const auto& k : keys()) {
        if (k.kind != ValueKind::path || !k.required) continue;
        if (std::get<std::string*>(k.field(c))->empty())
            st.error(st.where_of(k.yaml), fmt::format("{} is empty: expected {}", st.name(k), expected_text(k, st.syntax)));
    }
}

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

// The files of the fleet, as the daemon (root) will open them: the secrets
// only when their side (push, pull) is on. Messages name the file, never the
// secret.
void check_fleet_files(ParseState& st) {
    const Config::Crowdsec& cs = st.cfg.crowdsec;
    if (!cs.enabled() || st.failed.count("crowdsec.lapi_url")) return;
    const bool unreadable_ok = ::geteuid() != 0;
    auto report = [&](std::string_view key, const std::optional<std::string>& why) {
        if (why) st.key_error(key, st.where_of(key), fmt::format("{}: {}", key, *why));
    };
    if (cs.push && !cs.password_file.empty() && !st.failed.count("crowdsec.password_file"))
        report("crowdsec.password_file", secret_problem(cs.password_file, unreadable_ok, nullptr));
    if (cs.pull && !cs.bouncer_key_file.empty() && !st.failed.count("crowdsec.bouncer_key_file"))
        report("crowdsec.bouncer_key_file", secret_problem(cs.bouncer_key_file, unreadable_ok, nullptr));
    if (!cs.ca_file.empty() && !st.failed.count("crowdsec.ca_file"))
        report("crowdsec.ca_file", readable_file_problem(cs.ca_file, unreadable_ok));
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
    if (!st.truncated) validate(st);
    if (!st.truncated && opts.check_fleet_files) check_fleet_files(st);
    if (opts.check_write_paths && st.diags.empty()) check_write_paths(st);
    if (opts.load_ignore_files && !c.ignore_file.empty()) {
        for (const std::string& f : {c.ignore_file, c.ignore_file + ".static"})
            read_ignore(f, c.ignore, st.diags, st.dropped);
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
        throw ConfigError(std::move(st.diags), st.dropped);
    }
    return std::move(st.cfg);
}


}  // namespace portsentry::config::detail
