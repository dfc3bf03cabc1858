// Operator views and commands: the text (and JSON) `list`, `why`, `ban`,
// `unban` and `status` answer with, the same whether the daemon answers over
// its control socket or the CLI answers offline. `now` is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/engine/policy.hpp"
#include "portsentry/engine/protection.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::daemon {

// `fleet`: the fleet's table (daemon/fleet.cpp), listed after the bans, marked "fleet".
ControlReply render_list(const BanStore& store, bool json, int64_t now, const BanStore* fleet = nullptr);

// What `why` needs besides the table.
struct WhyContext {
    const net::CidrSet& ignore;
    const engine::Protection* protection = nullptr;  // nullable
    engine::BanPolicy policy;
};
ControlReply render_why(const BanStore& store, const WhyContext& ctx, const std::string& addr, int64_t now);

// What `unban C` reports: the bans it lifted (C's own and every ban inside
// it), and a wider ban that still covers C.
std::string render_unban(const BanStore& store, const net::Cidr& c, const std::vector<net::Cidr>& lifted,
                         int64_t now);

// What each control command does; the daemon and the offline CLI each
// implement it, and dispatch_command() parses for both.
class CommandHandler {
public:
    virtual ~CommandHandler() = default;
    virtual ControlReply status(bool json) = 0;
    virtual ControlReply list(bool json) = 0;
    virtual ControlReply why(const std::string& addr) = 0;
    virtual ControlReply ban(const net::Cidr& c, std::optional<std::chrono::seconds> time,
                             const std::string& origin) = 0;
    virtual ControlReply unban(const net::Cidr& c) = 0;
    // Only a running daemon reloads; status 1 with FILE:LINE when refused.
    virtual ControlReply reload() { return {1, "error: reload: portsentry-nfq is not running\n"}; }
};

// "status [--json]", "list [--json]", "why ADDR", "ban ADDR|CIDR [--time DUR]
// [--origin WHO]", "unban ADDR|CIDR", "reload" (docs/ARCHITECTURE.md, "Control commands").
// DUR is config::parse_duration's grammar (30s, 10m, 1h30m, 2d, 0, 3600).
ControlReply dispatch_command(const std::string& line, CommandHandler& h);

}  // namespace portsentry::daemon
