// One running instance: builds the parts, wires them to each other and to
// the loop, and reloads them. Each part has one job and a file of its own
// (docs/ARCHITECTURE.md, "Layers"); Service holds no logic of theirs.
#pragma once

#include <memory>

#include "portsentry/daemon/daemon.hpp"

namespace portsentry::daemon {

class Service {
public:
    // Loads config, table and queue; throws on failure. A SIGTERM/SIGINT
    // pending during start-up stops it (logged); run() then returns at once.
    explicit Service(const Options& o);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Runs the loop until SIGTERM/SIGINT. Returns the exit code.
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    bool interrupted_ = false;
};

}  // namespace portsentry::daemon
