// The never-ban set: protected prefixes, each tagged with why it is protected
// (docs/ARCHITECTURE.md: the @never/@never6 sets, "Under attack"). Pure value type: the daemon
// gathers the sources (files, netlink) and hands a snapshot to the engine and
// to the kernel sets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "portsentry/net/address.hpp"

namespace portsentry::engine {

// In reporting priority: when one address is protected for several reasons
// (a home router is both gateway and resolver), the first listed is named.
enum class ProtectReason : uint8_t { ignore, local, gateway, resolver, special, session };
inline constexpr size_t kProtectReasons = 6;
const char* to_string(ProtectReason r);  // "ignore list", "local address", "gateway", ...

// Addresses no host should ever ban: "this network" 0.0.0.0/8, loopback,
// link-local, multicast, limited broadcast (IPv4 and IPv6).
std::vector<net::Cidr> special_prefixes();

class Protection {
public:
    void add(const net::Cidr& c, ProtectReason r);
    void add(const net::IpAddr& a, ProtectReason r) { add(net::Cidr::host(a.unmapped()), r); }

    // Why `a` is protected: the most specific covering prefix decides; on a
    // tie the reason listed first in ProtectReason wins. nullopt: not protected.
    std::optional<ProtectReason> match(const net::IpAddr& a) const;

    // Every protected prefix, both families, in reason order, deduplicated (the kernel layer
    // drops prefixes covered by others before filling an interval set).
    std::vector<net::Cidr> prefixes() const;
    // The prefixes protected for one reason, in insertion order.
    const std::vector<net::Cidr>& prefixes(ProtectReason r) const {
        return sets_[static_cast<size_t>(r)].entries();
    }
    size_t size() const;
    bool empty() const { return size() == 0; }

    // Same prefixes for the same reasons (insertion order does not matter):
    // lets the daemon skip a kernel update when an event changed nothing.
    friend bool operator==(const Protection& a, const Protection& b);

private:
    std::array<net::CidrSet, kProtectReasons> sets_;
};

}  // namespace portsentry::engine
