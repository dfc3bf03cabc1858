// --check: the configuration files, and (as root) the kernel's view of the
// ruleset they produce, without changing anything.
#pragma once

#include <ostream>

#include "portsentry/daemon/daemon.hpp"

namespace portsentry::daemon {

// Loads the configuration as the daemon would and prints its diagnostics
// (FILE:LINE: message) to err. As root, also probes the steering backends
// and sends the ruleset for the one the daemon would pick as a batch without
// its commit: the kernel validates it and changes nothing. Returns the exit
// status: 0 ok, 1 errors.
int run_check(const Options& o, std::ostream& out, std::ostream& err);

}  // namespace portsentry::daemon
