// What a SIGHUP may change. Derived from the key table (config/keys.cpp):
// every key is compared, and every change is applied by the parts'
// reconfigure() — except the few a running daemon cannot take, which are
// reported by name and keep their running value.
#pragma once

#include <string>
#include <vector>

#include "portsentry/config/config.hpp"

namespace portsentry::daemon {

struct ReloadPlan {
    std::vector<std::string> changed;         // keys applied now
    std::vector<std::string> needs_restart;   // keys kept at the running value
};

// Compares `next` with `running` key by key; copies the running value of
// each restart-only key into `next`.
ReloadPlan plan_reload(const config::Config& running, config::Config& next);

// Keys only a restart applies, and why.
struct RestartKey {
    const char* key;
    const char* why;
};
const std::vector<RestartKey>& restart_keys();

}  // namespace portsentry::daemon
