// Wires the layers together: config → engine, kernel sources and nft sets,
// actions; runs the epoll loop. The only place that owns all of them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/daemon/config_path.hpp"

namespace portsentry::daemon {

struct Options {
    // Set by cli_main from resolve_config (config_path.hpp): the one rule.
    std::string config_path = "/etc/portsentry/portsentry.yaml";
    ResolvedConfig resolved;
    config::LoadOptions load;
    std::optional<config::Steer> steer;                // --steer
    bool dry_run = false;                              // --dry-run
    bool no_ruleset = false;                           // --no-ruleset
    std::optional<std::chrono::seconds> ban_time;      // --ban-time
    std::optional<std::string> state_file;             // --state-file
    std::optional<std::string> control_socket;         // --control-socket
};

// Loads the config with command-line overrides applied (throws ConfigError).
config::Config load_config(const Options& o);

// The directories the daemon writes into (state, history, blocked, json_log):
// made 0700 when missing. Throws std::system_error naming the one that
// cannot be made: a daemon that cannot keep its bans must not start.
void prepare_directories(const config::Config& c);

// Runs the daemon in the foreground until SIGTERM/SIGINT. Returns the exit code.
int run(const Options& o);

// Local addresses of this host (getifaddrs): always ignored (docs/ARCHITECTURE.md, "Data path").
std::vector<net::Cidr> local_addresses();

}  // namespace portsentry::daemon
