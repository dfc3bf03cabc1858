// Classic-mode tripwires (-tcp/-udp): a socket bound to each listed port. A
// completed TCP connect or a UDP datagram is the detection; PORT_BANNER is
// written back first. Each socket registers itself with the loop, and
// reconcile() opens and closes sockets to match the config (SIGHUP).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "portsentry/actions/log.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::daemon {

class Tripwires {
public:
    using HitFn = std::function<void(const net::IpAddr& src, net::L4 proto, uint16_t port, const Now& now)>;
    using LogFn = std::function<void(const std::string&)>;
    Tripwires(Loop& loop, HitFn hit, LogFn log);
    ~Tripwires();
    Tripwires(const Tripwires&) = delete;
    Tripwires& operator=(const Tripwires&) = delete;

    // Binds the classic-mode ports of `cfg` not bound yet, closes the ones no
    // longer listed. `banner` is PORT_BANNER ("" = none).
    void reconcile(const config::Config& cfg);
    size_t size() const { return socks_.size(); }

private:
    using Key = std::pair<net::L4, uint16_t>;
    void bind_one(net::L4 proto, uint16_t port);
    void on_readable(int fd, net::L4 proto, uint16_t port, const Now& now);
    Loop& loop_;
    HitFn hit_;
    LogFn log_;
    std::string banner_;
    std::map<Key, int> socks_;
    // UDP replies go to an unverified source address: a global cap keeps a
    // spoofed flood from turning PORT_BANNER into a reflection amplifier.
    actions::TokenBucket udp_banner_bucket_{20, 10};
};

}  // namespace portsentry::daemon
