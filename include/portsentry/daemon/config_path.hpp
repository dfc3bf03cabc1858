// Which configuration runs (issue 15, item 3): one rule, used by every
// command (daemon, --check, --print-ruleset, status, list, why, ban, unban,
// reload, the fail2ban action):
//   -c FILE if given;
//   else /etc/portsentry/portsentry.yaml if it exists;
//   else /etc/portsentry/portsentry.conf (portsentry 1.2's file, left in place
//        when this package replaced it) with the modes from /etc/default/portsentry;
//   else the packaged defaults, /usr/share/portsentry-nfq/portsentry.yaml.
// The roots are parameters so unit tests can point them at a temporary tree.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace portsentry::daemon {

struct ConfigRoots {
    std::string etc = "/etc";
    std::string share = "/usr/share/portsentry-nfq";
    // Where the daemon remembers which files its last start ran on (the
    // package's StateDirectory).
    std::string state = "/var/lib/portsentry";

    std::string yaml() const { return etc + "/portsentry/portsentry.yaml"; }
    std::string legacy() const { return etc + "/portsentry/portsentry.conf"; }
    std::string defaults() const { return etc + "/default/portsentry"; }
    std::string packaged() const { return share + "/portsentry.yaml"; }
    std::string last_used() const { return state + "/portsentry-nfq.config-used"; }
};

struct ResolvedConfig {
    std::string path;           // the configuration file to load
    std::string defaults_file;  // legacy: TCP_MODE/UDP_MODE (meaningless for YAML)
    std::string why;            // one line for the log: "config: PATH (...)"
    bool searched = false;      // true when -c was not given (the rule chose)
};

// Applies the rule. `given` is -c; `defaults_given` is --defaults. Without
// -c, a file the previous start ran on (remembered by remember_config in
// roots.last_used()) that has vanished since is an error naming it, never a
// silent switch to other settings: `dpkg --purge portsentry` deletes
// portsentry.conf and /etc/default/portsentry (throws config::ConfigError).
ResolvedConfig resolve_config(const std::optional<std::string>& given, const std::optional<std::string>& defaults_given,
                              const ConfigRoots& roots = {});

// The daemon calls this once its table is loaded: records the files `r`
// ran on. Failures are returned as text (logged), never thrown.
std::string remember_config(const ResolvedConfig& r, const ConfigRoots& roots = {});

}  // namespace portsentry::daemon
