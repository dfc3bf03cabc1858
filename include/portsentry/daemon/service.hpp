// The daemon's state and reactions, separate from the epoll plumbing in
// daemon.cpp: one object per running instance.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/daemon.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/engine/protection.hpp"

namespace portsentry::daemon {

// Operator views of the ban table, shared by the daemon and the offline CLI.
ControlReply render_list(const BanStore& store, bool json);
// `protection` (nullable) names why an address is never banned ("protected: gateway").
ControlReply render_why(const BanStore& store, const config::Config& cfg, const std::string& addr,
                        const engine::Protection* protection = nullptr);
// Why `ban C` must be refused (C is protected, or covers a protected or
// ignored address), or nullopt. Shared by the daemon and the offline CLI.
std::optional<std::string> refuse_ban(const net::Cidr& c, const config::Config& cfg,
                                      const engine::Protection& protection);
// The set elements `unban C` deletes: the bans it lifts, and C itself.
std::vector<net::Cidr> unban_elements(const std::vector<net::Cidr>& lifted, const net::Cidr& c);
// What `unban C` reports: the bans it lifted (C's own and every ban inside
// it), and a wider ban that still covers C.
std::string render_unban(const BanStore& store, const net::Cidr& c, const std::vector<net::Cidr>& lifted,
                         int64_t now);

class Service {
public:
    explicit Service(const Options& o);  // loads config, ruleset, binds queue; throws on failure
    ~Service();

    int source_fd() const;
    int control_fd() const;
    std::vector<int> tripwire_fds() const;
    // rtnetlink + inotify fds: protection sources (addresses, routes,
    // resolv.conf, utmp) changed; on_protect(fd) re-gathers and updates @never.
    std::vector<int> protect_fds() const;
    void on_protect(int fd);

    // nftables change notifications (-1 with --no-ruleset): someone deleted
    // our table or part of it; on_monitor() restores table and bans at once.
    int monitor_fd() const;
    void on_monitor();

    void log_ready();
    void on_packets();
    void on_control();
    void on_tick();
    void on_tick_children();
    // Work done in slices between events (serializing a big ban table): the
    // loop polls instead of sleeping while it is pending.
    bool background_pending() const;
    void on_background();
    // One event handled in `took`: the longest is shown by `status`.
    void note_turn(const char* what, std::chrono::steady_clock::duration took);
    void on_tripwire(size_t index);
    void reload();
    void shutdown(int signo);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace portsentry::daemon
