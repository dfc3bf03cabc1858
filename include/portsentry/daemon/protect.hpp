// Where protected ("never ban") addresses come from: pure parsers for the
// files that name them, and gather(), which reads those files and the
// interfaces and builds one engine::Protection snapshot.
#pragma once

#include <utmpx.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/engine/protection.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::daemon {

// "nameserver ADDR" lines of resolv.conf(5). Comments (# or ;), other
// keywords and unparsable addresses are skipped; an IPv6 zone ("%eth0") is
// dropped. Order kept, duplicates removed.
std::vector<net::IpAddr> parse_resolv_conf(std::string_view text);

// Default-route gateways from /proc/net/route: lines with Destination and
// Mask 0 and flags RTF_UP|RTF_GATEWAY. The kernel prints the __be32 fields
// with %08X, so the text is in this host's byte order: parse on the host
// that wrote it.
std::vector<net::IpAddr> parse_proc_route(std::string_view text);

// Default-route gateways from /proc/net/ipv6_route: destination ::/0 with a
// non-zero next hop and RTF_UP|RTF_GATEWAY (fields are plain hex, network order).
std::vector<net::IpAddr> parse_proc_ipv6_route(std::string_view text);

// Remote addresses of logged-in sessions: USER_PROCESS records whose
// ut_addr_v6 is non-zero (IPv4 in word 0 only, as glibc stores it).
std::vector<net::IpAddr> session_addresses(std::span<const struct utmpx> records);

// Reads a utmp file as raw records (not getutxent(): that API works on one
// process-wide file and cannot be pointed at a test fixture safely). A missing
// file gives no records; a trailing partial record is ignored.
std::vector<struct utmpx> read_utmp(const std::string& path);

struct ProtectSources {
    std::string resolv_conf = "/etc/resolv.conf";
    std::string route = "/proc/net/route";
    std::string ipv6_route = "/proc/net/ipv6_route";
    std::string utmp = "/run/utmp";
};

// The protection snapshot for `cfg`, every source its cfg.protect switch
// allows. Unreadable files contribute nothing (a host without IPv6 has no
// /proc/net/ipv6_route).
engine::Protection gather(const config::Config& cfg, const ProtectSources& src = {});

// Tells when a protection source may have changed, so the daemon re-gathers
// at once: an rtnetlink socket subscribed to address and route events (a new
// DHCP/SLAAC address, a new default gateway) and inotify on resolv.conf's
// directory (editors and resolvconf replace the file by rename) and on utmp
// (a login or logout rewrites one record). Events only say "look again": the
// snapshot is always rebuilt from scratch by gather().
class ProtectWatch {
public:
    explicit ProtectWatch(const ProtectSources& src);  // throws std::system_error
    ~ProtectWatch();
    ProtectWatch(const ProtectWatch&) = delete;
    ProtectWatch& operator=(const ProtectWatch&) = delete;

    std::vector<int> fds() const;
    // Reads everything pending on `fd` (one of fds()); true if a relevant
    // event (or a lost one: ENOBUFS / queue overflow) was seen.
    bool drain(int fd);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace portsentry::daemon
