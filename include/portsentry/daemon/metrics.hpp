// The one place every figure is registered (register_metrics), and the two
// renderings of the snapshot: `status` for people, `status --json` for
// programs. Names follow Prometheus conventions (portsentry_..._total for
// counters) so a metrics endpoint can export the same table unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "portsentry/actions/log.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/daemon/responses.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/fleet.hpp"
#include "portsentry/daemon/keepers.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/probe_path.hpp"
#include "portsentry/daemon/state_saver.hpp"
#include "portsentry/daemon/stats.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/kernel/packet_source.hpp"

namespace portsentry::daemon {

// Everything that keeps a figure. References must outlive the registration
// (Service re-registers after a reload replaced a part).
struct MetricParts {
    const engine::Engine& engine;
    const kernel::PacketSource& source;
    const actions::Responder& responder;
    const ResponseWorker& responses;
    const actions::Log& log;
    const JsonEvents& events;
    const BanManager& bans;
    const StateSaver& saver;
    const Loop& loop;
    const RulesetKeeper& ruleset;
    const ProbePath& probes;
    const BanStore& store;
    const ProtectionKeeper& protection;
    const Fleet& fleet;
    size_t tripwires;
    uint16_t queue_num;
    kernel::Backend backend;
};

void register_metrics(Stats& stats, const MetricParts& p);

// The lines above the metric table.
struct StatusInfo {
    std::string version, started, config, modes, steering, protection, longest_turn_what, state_error;
};
std::string render_status_text(const StatusInfo& info, const std::vector<Sample>& snap);
std::string render_status_json(const StatusInfo& info, const std::vector<Sample>& snap);

}  // namespace portsentry::daemon
