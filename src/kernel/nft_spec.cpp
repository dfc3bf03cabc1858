// RulesetSpec from the config, backend names and the auto choice.
#include <algorithm>

#include "portsentry/kernel/nft.hpp"

namespace portsentry::kernel {

const char* to_string(Backend b) {
    switch (b) {
    case Backend::queue: return "queue";
    case Backend::xt_queue: return "xt-queue";
    case Backend::nflog: return "nflog";
    }
    return "?";
}

std::optional<Backend> backend_from_string(std::string_view s) {
    if (s == "queue") return Backend::queue;
    if (s == "xt-queue") return Backend::xt_queue;
    if (s == "nflog") return Backend::nflog;
    return std::nullopt;
}

std::optional<Backend> pick_backend(config::Steer steer, const std::vector<Backend>& available) {
    switch (steer) {
    case config::Steer::queue: return Backend::queue;
    case config::Steer::xt_queue: return Backend::xt_queue;
    case config::Steer::nflog: return Backend::nflog;
    case config::Steer::auto_: break;
    }
    // Preference: inline verdicts first; nft's own queue expr before nft_compat.
    for (Backend b : {Backend::queue, Backend::xt_queue, Backend::nflog})
        if (std::find(available.begin(), available.end(), b) != available.end()) return b;
    return std::nullopt;
}

RulesetSpec RulesetSpec::from_config(const config::Config& c, Backend b) {
    RulesetSpec s;
    s.tcp_ports = c.tcp.watched();
    s.udp_ports = c.udp.watched();
    s.backend = b;
    s.queue_num = c.queue_num;
    s.nflog_group = c.nflog_group;
    s.set_size = c.ban_set_size;
    s.fleet_set_size = c.crowdsec.fleet_set_size;
    s.ignore = c.ignore.entries();
    // nflog has no inline verdict, so the rule decides: drop when this
    // protocol blocks (BLOCK_* 1 or 2) and this is not a dry run.
    const bool tcp_drop = c.tcp.block != 0 && !c.dry_run;
    const bool udp_drop = c.udp.block != 0 && !c.dry_run;
    if (s.tcp_ports.empty()) {
        s.nflog_drop = udp_drop;
    } else {
        s.nflog_drop = tcp_drop;
        if (!s.udp_ports.empty() && udp_drop != tcp_drop) s.nflog_drop_udp = udp_drop;
    }
    return s;
}

}  // namespace portsentry::kernel
