// Command line: the daemon, its one-shot modes (--check, --print-ruleset,
// --import-legacy, --remove-ruleset) and the operator commands.
#include "portsentry/daemon/cli.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <iostream>

#include "portsentry/config/config.hpp"
#include "portsentry/daemon/check.hpp"
#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/daemon.hpp"
#include "portsentry/daemon/protect.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/settings.hpp"
#include "portsentry/daemon/views.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::daemon {

namespace {

constexpr const char* kDescription =
    "portsentry-nfq: port-scan detector and blocker on nftables + NFQUEUE.\n"
    "Steers new inbound packets to closed (watched) ports into the daemon, which drops them,\n"
    "applies SCAN_TRIGGER and the ignore lists, and bans the source in the nft set\n"
    "'banned'/'banned6' of table inet portsentry. Reads native YAML or an unchanged\n"
    "portsentry 1.2 portsentry.conf (with /etc/default/portsentry or -tcp/-udp/-stcp/-sudp/-atcp/-audp).";

constexpr const char* kFooter =
    "\nLegacy mode flags (portsentry 1.2): -tcp -udp (classic tripwires), -stcp -sudp (stealth),\n"
    "-atcp -audp (advanced); they override TCP_MODE/UDP_MODE of the defaults file.\n"
    "Operator commands talk to the running daemon over its root-only control socket;\n"
    "list, why, ban and unban also work while it is stopped (state file + nft set).\n"
    "Signals: SIGHUP reloads (a bad config is reported and the old one kept; bans survive)\n"
    "and reopens history/blocked files; SIGTERM exits leaving the table and bans in place.\n"
    "Exit status: 0 ok, 1 error (config errors print FILE:LINE: message), 2 usage error.";

void print_diagnostics(const config::ConfigError& e) {
    for (const auto& d : e.diagnostics()) std::cerr << d.to_string() << "\n";
}

int print_reply(const ControlReply& r) {
    (r.status == 0 ? std::cout : std::cerr) << r.text;
    return r.status == 0 ? 0 : 1;
}

// Offline commands: no daemon listens, so the same commands edit the state
// file under the instance lock and the set elements, through the same ban
// manager the daemon uses (docs/ARCHITECTURE.md, "Control commands").
struct Offline final : CommandHandler, BanListener {
    const config::Config& cfg;
    BanStore store;
    kernel::Nft nft;
    const bool table;
    // The daemon is down: gather the protection sources ourselves, so the
    // answers match what a running daemon would say.
    const engine::Protection protection;
    BanManager bans;
    const int64_t now = std::time(nullptr);

    explicit Offline(const config::Config& c)
        : cfg(c),
          store(c.state_file),
          table(nft.table_exists()),
          protection(gather(c)),
          bans(store, table ? &nft : nullptr, *this,
               BanSettings{engine::BanPolicy::from_settings(engine_settings(c)), c.ban_set_size, c.ignore.entries()}, &protection) {
        std::vector<std::string> warnings;
        store.load(&warnings);
        for (const auto& x : warnings) std::cerr << "warning: " << x << "\n";
    }
    std::string where() const {
        return table ? "(daemon not running: state file and nft set edited)\n"
                     : "(daemon not running and no table inet portsentry loaded: state file edited, restored on "
                       "start)\n";
    }
    ControlReply status(bool) override {
        return {1, "portsentry-nfq is not running (no daemon on " + cfg.control_socket + ")\n"};
    }
    ControlReply list(bool json) override { return render_list(store, json, now); }
    ControlReply why(const std::string& addr) override {
        return render_why(store, {cfg.ignore, &protection, engine::BanPolicy::from_settings(engine_settings(cfg))}, addr, now);
    }
    // The state file's directory: a fresh host may not have it yet; made
    // before the kernel is touched, so a refusal changes nothing.
    std::optional<ControlReply> prepare() const {
        try {
            prepare_directories(cfg);
        } catch (const std::exception& e) {
            return ControlReply{1, fmt::format("error: {}\n", e.what())};
        }
        return std::nullopt;
    }
    ControlReply ban(const net::Cidr& c, std::optional<std::chrono::seconds> t, const std::string& origin) override {
        if (auto err = prepare()) return *err;
        auto r = bans.ban(c, origin, t, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        store.save();
        return {0, fmt::format("banned {}{}\n", c.to_string(),
                               r.time.count() > 0 ? fmt::format(" for {}s", r.time.count()) : " permanently") +
                       where()};
    }
    ControlReply unban(const net::Cidr& c) override {
        if (auto err = prepare()) return *err;
        auto r = bans.unban(c, now);
        if (!r.error.empty()) return {1, "error: " + r.error + "\n"};
        store.save();
        return {0, render_unban(store, c, r.lifted, now) + where()};
    }
};

int offline(const Options& o, const std::string& request) {
    config::Config cfg;
    try {
        cfg = load_config(o);
    } catch (const config::ConfigError& e) {
        print_diagnostics(e);
        return 1;
    }
    LockFile lock = LockFile::acquire(cfg.control_socket + ".lock", false);
    if (!lock.locked()) {
        std::cerr << "error: the daemon holds " << cfg.control_socket << ".lock but does not answer on "
                  << cfg.control_socket << "\n";
        return 1;
    }
    Offline off(cfg);
    return print_reply(dispatch_command(request, off));
}

int operator_command(const Options& o, std::vector<std::string> w) {
    config::Config cfg;
    try {
        cfg = load_config(o);
    } catch (const config::ConfigError& e) {
        // The socket path may still be the default; do not fail a `status`
        // because the config on disk is being edited.
        cfg.control_socket = o.control_socket.value_or(cfg.control_socket);
    }
    std::string req;
    for (const auto& s : w) req += (req.empty() ? "" : " ") + s;
    try {
        if (auto r = control_request(cfg.control_socket, req)) return print_reply(*r);
    } catch (const std::system_error& e) {
        std::cerr << "error: " << e.what() << (e.code().value() == EACCES ? " (root only)" : "") << "\n";
        return 1;
    }
    // Only a daemon reloads: nothing to edit offline.
    if (w.front() == "reload") {
        std::cerr << "error: reload: portsentry-nfq is not running (no daemon on " << cfg.control_socket << ")\n";
        return 1;
    }
    return offline(o, req);
}

}  // namespace

namespace {

// What argv asked for, once parsed.
struct Args {
    Options o;
    bool check = false, print_ruleset = false, remove_ruleset = false, version = false, json = false;
    std::string import_legacy, steer, ban_time, state_file, control_socket, config_arg, defaults_arg;
    std::string verb;  // status, list, why, ban, unban ("" = none)
    std::string addr, time_arg, origin = "admin";
};

// The six single-dash legacy flags would be read by the option parser as
// bundles of short options (-a -t -c -p): take them out first.
std::vector<char*> take_legacy_flags(int argc, char** argv, Options& o) {
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (i > 0 && (a == "-tcp" || a == "-udp" || a == "-stcp" || a == "-sudp" || a == "-atcp" || a == "-audp"))
            o.load.mode_flags.push_back(a.substr(1));
        else
            rest.push_back(argv[i]);
    }
    return rest;
}

void add_options(CLI::App& app, Args& a) {
    app.add_option("-c,--config", a.config_arg,
                   "configuration file: YAML or legacy portsentry.conf (detected). Default: "
                   "/etc/portsentry/portsentry.yaml if it exists, else /etc/portsentry/portsentry.conf "
                   "(modes from /etc/default/portsentry), else /usr/share/portsentry-nfq/portsentry.yaml");
    app.add_option("--defaults", a.defaults_arg,
                   "legacy: file with TCP_MODE/UDP_MODE when no mode flag is given (default: /etc/default/portsentry)");
    app.add_flag("--check", a.check, "validate the configuration and exit (0 ok, 1 errors as FILE:LINE: message)");
    app.add_flag("--print-ruleset", a.print_ruleset, "print table inet portsentry for this config as nft text and exit");
    app.add_option("--import-legacy", a.import_legacy,
                   "print the YAML equivalent of a legacy portsentry.conf (file, or directory holding one)");
    app.add_flag("--remove-ruleset", a.remove_ruleset, "delete table inet portsentry (and every ban in it) and exit");
    app.add_option("--steer", a.steer, "steering backend: auto (default), queue, xt-queue, nflog");
    app.add_flag("--dry-run", a.o.dry_run, "detect, log and record only: never drop a packet, ban or run a command");
    app.add_flag("--no-ruleset", a.o.no_ruleset, "do not create the nft table (the admin loads nft/portsentry.nft)");
    app.add_option("--ban-time", a.ban_time, "ban duration (30s, 10m, 1h30m, 2d; 0 = permanent); overrides the config");
    app.add_option("--state-file", a.state_file, "ban table state file; overrides the config");
    app.add_option("--control-socket", a.control_socket, "control socket path; overrides the config");
    app.add_flag("-V,--version", a.version, "print the version and exit");
}

void add_commands(CLI::App& app, Args& a) {
    auto verb = [&a](const char* name) { return [&a, name] { a.verb = name; }; };
    auto* st = app.add_subcommand("status", "show backend, ban count and every metric of the running daemon");
    st->add_flag("--json", a.json, "one JSON object (metrics as name, labels, type, help, value)");
    st->final_callback(verb("status"));
    auto* ls = app.add_subcommand("list", "list active bans (from the daemon's ban table, never the kernel set)");
    ls->add_flag("--json", a.json, "JSON array output");
    ls->final_callback(verb("list"));
    auto* why = app.add_subcommand("why", "explain an address: protected? banned since/until, how often, last probe");
    why->add_option("ADDR", a.addr, "IPv4 or IPv6 address")->required();
    why->final_callback(verb("why"));
    auto* ban = app.add_subcommand("ban", "ban an address or CIDR in the nft set (refused for protected addresses)");
    ban->add_option("ADDR", a.addr, "IPv4/IPv6 address or CIDR")->required();
    ban->add_option("--time", a.time_arg, "ban duration (30s, 10m, 1h30m, 2d; 0 = permanent); default: ban_time");
    ban->add_option("--origin", a.origin, "who asks (admin, fail2ban, fleet)")->capture_default_str();
    ban->final_callback(verb("ban"));
    auto* unban = app.add_subcommand("unban", "lift a ban (address or CIDR)");
    unban->add_option("ADDR", a.addr, "IPv4/IPv6 address or CIDR")->required();
    unban->final_callback(verb("unban"));
    auto* reload = app.add_subcommand(
        "reload", "reload the running daemon's configuration and wait: exit 1 with FILE:LINE if it was refused");
    reload->final_callback(verb("reload"));
}

// The option values that need checking beyond the parser's; 2 on a usage error.
int apply_options(Args& a) {
    auto usage = [](const std::string& what, const std::string& expected, const std::string& got) {
        std::cerr << "error: " << what << ": expected " << expected << ", got '" << got << "'\n";
        return 2;
    };
    const char* duration = "a duration like 30s, 10m, 1h30m, 2d or 0";
    if (!a.steer.empty() && !(a.o.steer = config::steer_from_string(a.steer)))
        return usage("--steer", "auto, queue, xt-queue or nflog", a.steer);
    if (!a.ban_time.empty() && !(a.o.ban_time = config::parse_duration(a.ban_time)))
        return usage("--ban-time", duration, a.ban_time);
    if (!a.time_arg.empty() && !config::parse_duration(a.time_arg)) return usage("--time", duration, a.time_arg);
    if (!a.state_file.empty()) a.o.state_file = a.state_file;
    if (!a.control_socket.empty()) a.o.control_socket = a.control_socket;
    return 0;
}

// The control-socket line for an operator command.
std::vector<std::string> request_of(const Args& a) {
    std::vector<std::string> w{a.verb};
    if ((a.verb == "status" || a.verb == "list") && a.json) w.push_back("--json");
    if (a.verb == "why" || a.verb == "unban" || a.verb == "ban") w.push_back(a.addr);
    if (a.verb == "ban") {
        w.insert(w.end(), {"--origin", a.origin});
        if (!a.time_arg.empty()) w.insert(w.end(), {"--time", a.time_arg});
    }
    return w;
}

int import_legacy(const Args& a) {
    std::string path = a.import_legacy;
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) path += "/portsentry.conf";
    std::cout << config::to_yaml(config::load_legacy(path, a.o.load));
    return 0;
}

int print_ruleset(const Options& o) {
    auto cfg = load_config(o);
    for (const auto& l : local_addresses()) cfg.ignore.insert(l);
    // As if every backend were there: auto prints the stock-kernel (`queue`)
    // form that nft/portsentry.nft holds.
    const auto b = *kernel::pick_backend(o.steer.value_or(config::Steer::auto_),
                                         {kernel::Backend::queue, kernel::Backend::xt_queue, kernel::Backend::nflog});
    std::cout << kernel::render_ruleset(kernel::RulesetSpec::from_config(cfg, b));
    return 0;
}

// The one rule (config_path.hpp), for every command that reads the daemon's
// configuration; --import-legacy names its own input.
void resolve(Args& a) {
    if (!a.import_legacy.empty() || a.remove_ruleset) {
        if (!a.defaults_arg.empty()) a.o.load.defaults_file = a.defaults_arg;
        return;
    }
    auto opt = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional<std::string>(s); };
    try {
        a.o.resolved = resolve_config(opt(a.config_arg), opt(a.defaults_arg));
    } catch (const config::ConfigError& e) {
        // A running daemon still answers on its socket: operator commands
        // try it (load_config then fails: default socket).
        if (a.verb.empty()) throw;
        print_diagnostics(e);
        a.o.resolved.path = e.diagnostics().front().file;
    }
    a.o.config_path = a.o.resolved.path;
    a.o.load.defaults_file = a.o.resolved.defaults_file;
}

// One mode per invocation: an operator command, a one-shot mode, or the daemon.
int run_mode(Args& a) {
    resolve(a);
    if (!a.verb.empty()) return operator_command(a.o, request_of(a));
    if (!a.import_legacy.empty()) return import_legacy(a);
    if (a.remove_ruleset) {
        kernel::Nft nft;
        nft.remove_table();
        std::cout << "table inet portsentry removed\n";
        return 0;
    }
    if (a.check) return run_check(a.o, std::cout, std::cerr);
    if (a.print_ruleset) return print_ruleset(a.o);
    if (::geteuid() != 0) {
        std::cerr << "error: the daemon needs root (CAP_NET_ADMIN) to load its nft table and bind the queue\n";
        return 1;
    }
    return run(a.o);
}

}  // namespace

int cli_main(int argc, char** argv) {
    Args a;
    std::vector<char*> rest = take_legacy_flags(argc, argv, a.o);
    CLI::App app{kDescription, "portsentry-nfq"};
    app.footer(kFooter);
    app.require_subcommand(0, 1);
    // Subcommands inherit this: `status --control-socket P` works like
    // `--control-socket P status`.
    app.fallthrough();
    add_options(app, a);
    add_commands(app, a);
    try {
        app.parse(static_cast<int>(rest.size()), rest.data());
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (a.version) {
        std::cout << "portsentry-nfq " << PORTSENTRY_VERSION << "\n";
        return 0;
    }
    if (int rc = apply_options(a)) return rc;
    try {
        return run_mode(a);
    } catch (const config::ConfigError& e) {
        print_diagnostics(e);
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "portsentry-nfq: error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace portsentry::daemon
