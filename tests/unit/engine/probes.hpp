// One TCP SYN probe for the engine tests: the engine reads only the source,
// protocol, destination port and flags.
#pragma once

#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace pstest {

inline portsentry::net::Packet syn(const portsentry::net::IpAddr& src, uint16_t dport = 23) {
    portsentry::net::Packet p;
    p.src = src;
    // Parsed once: the LRU flood test builds ten million of these.
    static const auto dst4 = *portsentry::net::IpAddr::parse("203.0.113.1");
    static const auto dst6 = *portsentry::net::IpAddr::parse("2001:db8:ffff::1");
    p.dst = src.is_v6() ? dst6 : dst4;
    p.proto = portsentry::net::L4::tcp;
    p.sport = 40000;
    p.dport = dport;
    p.tcp_flags = portsentry::net::tcpflag::SYN;
    return p;
}

inline portsentry::net::Packet syn(const char* src, uint16_t dport = 23) {
    return syn(*portsentry::net::IpAddr::parse(src), dport);
}

}  // namespace pstest
