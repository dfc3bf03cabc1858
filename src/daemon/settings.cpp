#include "portsentry/daemon/settings.hpp"

namespace portsentry::daemon {

namespace {

engine::KillRoute kill_route(const config::Config& cfg) {
    if (cfg.kill_route.empty()) return engine::KillRoute::unset;
    return cfg.kill_route_is_builtin() ? engine::KillRoute::builtin : engine::KillRoute::custom;
}

}  // namespace

engine::Settings engine_settings(const config::Config& cfg) {
    engine::Settings s;
    s.tcp.block = cfg.tcp.block;
    s.udp.block = cfg.udp.block;
    s.dry_run = cfg.dry_run;
    s.scan_trigger = cfg.scan_trigger;
    s.scan_window = cfg.scan_window;
    s.kill_route = kill_route(cfg);
    s.kill_hosts_deny = !cfg.kill_hosts_deny.empty();
    s.kill_run_cmd = !cfg.kill_run_cmd.empty();
    s.ban_time = cfg.ban_time;
    s.ban_time_factor = cfg.ban_time_factor;
    s.ban_time_max = cfg.ban_time_max;
    s.ipv6_aggregate_after = cfg.ipv6_aggregate_after;
    s.ban_rate_per_second = cfg.ban_rate_per_second;
    s.ban_rate_per_prefix_per_minute = cfg.ban_rate_per_prefix_per_minute;
    s.max_tracked_sources = cfg.max_tracked_sources;
    s.ignore = cfg.ignore;
    return s;
}

}  // namespace portsentry::daemon
