#include "portsentry/daemon/reload.hpp"

#include <type_traits>
#include <variant>

#include "portsentry/config/keys.hpp"

namespace portsentry::daemon {

const std::vector<RestartKey>& restart_keys() {
    static const std::vector<RestartKey> keys = {
        // The instance lock and the socket operators talk to: moving them
        // under a running daemon would let a second daemon start.
        {"control_socket", "the instance lock and the operators' socket"},
        // The table was loaded from it; another file would be a second truth.
        {"state_file", "the ban table was loaded from the old file"},
        // The queue or log group is bound to the backend chosen at start.
        {"steer", "the steering backend is chosen at start"},
    };
    return keys;
}

namespace {

bool restart_only(std::string_view key) {
    for (const auto& k : restart_keys())
        if (key == k.key) return true;
    return false;
}

// *to = *from for the same field of two configs.
void copy_field(const config::KeyInfo& k, const config::Config& from, config::Config& to) {
    auto src = k.field(const_cast<config::Config&>(from));
    auto dst = k.field(to);
    std::visit(
        [&](auto* d) {
            using T = std::remove_pointer_t<decltype(d)>;
            *d = *std::get<T*>(src);
        },
        dst);
}

}  // namespace

ReloadPlan plan_reload(const config::Config& running, config::Config& next) {
    ReloadPlan plan;
    for (const auto& k : config::keys()) {
        if (config::format_value(k, running) == config::format_value(k, next)) continue;
        if (restart_only(k.yaml)) {
            plan.needs_restart.emplace_back(k.yaml);
            copy_field(k, running, next);
        } else {
            plan.changed.emplace_back(k.yaml);
        }
    }
    // The ignore files' contents are not a key: compare the loaded prefixes.
    if (running.ignore.entries() != next.ignore.entries()) plan.changed.emplace_back("ignore list (contents)");
    return plan;
}

}  // namespace portsentry::daemon
