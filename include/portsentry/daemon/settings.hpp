// The engine's settings snapshot, taken from the loaded configuration. The
// one place that knows which config keys the engine reads.
#pragma once

#include "portsentry/config/config.hpp"
#include "portsentry/engine/settings.hpp"

namespace portsentry::daemon {

engine::Settings engine_settings(const config::Config& cfg);

}  // namespace portsentry::daemon
