// Shared fixtures for the nft tests: readable configs and specs.
#pragma once

#include <string>
#include <vector>

#include "portsentry/config/config.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::kernel::testutil {

inline net::Cidr cidr(const char* s) {
    auto c = net::Cidr::parse(s);
    if (!c) throw std::invalid_argument(std::string("bad cidr in test: ") + s);
    return *c;
}

inline std::vector<config::PortRange> ports(std::initializer_list<config::PortRange> l) { return l; }

// Debian's stock portsentry.conf, advanced mode: ADVANCED_PORTS_TCP/UDP=1024,
// ADVANCED_EXCLUDE_TCP="113,139", ADVANCED_EXCLUDE_UDP="520,138,137,67".
inline config::Config advanced_config() {
    config::Config c;
    c.tcp.mode = config::Mode::advanced;
    c.tcp.advanced_ports = 1024;
    c.tcp.advanced_exclude = {{113, 113}, {139, 139}};
    c.tcp.block = 1;
    c.udp.mode = config::Mode::advanced;
    c.udp.advanced_ports = 1024;
    c.udp.advanced_exclude = {{520, 520}, {138, 138}, {137, 137}, {67, 67}};
    c.udp.block = 0;  // differs from TCP: the nflog form gets one rule per protocol
    c.ignore.insert(cidr("192.0.2.0/24"));
    c.ignore.insert(cidr("192.0.2.9"));  // covered by the /24: must not become an element
    c.ignore.insert(cidr("198.51.100.7"));
    c.ignore.insert(cidr("2001:db8::/32"));
    return c;
}

// Debian's stock TCP_PORTS / UDP_PORTS, classic (-tcp / -udp) mode.
inline config::Config classic_config() {
    config::Config c;
    c.tcp.mode = config::Mode::classic;
    c.tcp.ports = {{1, 1},         {11, 11},       {15, 15},       {79, 79},       {111, 111},
                   {119, 119},     {143, 143},     {540, 540},     {635, 635},     {1080, 1080},
                   {1524, 1524},   {2000, 2000},   {5742, 5742},   {6667, 6667},   {12345, 12346},
                   {20034, 20034}, {27665, 27665}, {31337, 31337}, {32771, 32774}, {40421, 40421},
                   {49724, 49724}, {54320, 54320}};
    c.udp.mode = config::Mode::classic;
    c.udp.ports = {{1, 1},         {7, 7},         {9, 9},         {69, 69},       {161, 162},
                   {513, 513},     {635, 635},     {640, 641},     {700, 700},     {37444, 37444},
                   {34555, 34555}, {31335, 31335}, {32770, 32774}, {31337, 31337}, {54321, 54321}};
    c.queue_num = 3;
    c.ban_set_size = 100000;
    return c;
}

}  // namespace portsentry::kernel::testutil
