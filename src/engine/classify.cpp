// Scan classification by TCP flags and the 1.2 names used in attackalert lines.
#include <cstdio>

#include "portsentry/engine/engine.hpp"

namespace portsentry::engine {

using namespace net::tcpflag;

ScanType classify(const net::Packet& p) noexcept {
    if (p.proto == net::L4::udp) return ScanType::udp;
    // ECE/CWR only negotiate ECN (a Linux or nmap SYN may carry both), so they
    // never change what kind of probe this is.
    switch (p.tcp_flags & ~(ECE | CWR)) {
        case SYN: return ScanType::tcp_syn;
        case 0: return ScanType::tcp_null;
        case FIN: return ScanType::tcp_fin;
        case FIN | PSH | URG: return ScanType::tcp_xmas;
        case ACK: return ScanType::tcp_ack;   // nmap -sA and -sW
        case FIN | ACK: return ScanType::tcp_maimon;
        default: return ScanType::tcp_other;
    }
}

std::string scan_name(ScanType t, uint8_t f) {
    switch (t) {
        case ScanType::tcp_syn: return "TCP SYN/Normal scan";
        case ScanType::tcp_fin: return "TCP FIN scan";
        case ScanType::tcp_null: return "TCP NULL scan";
        case ScanType::tcp_xmas: return "TCP XMAS scan";
        case ScanType::tcp_ack: return "TCP ACK/Window scan";
        case ScanType::tcp_maimon: return "TCP Maimon scan";
        case ScanType::udp:
        case ScanType::udp_tripwire: return "UDP scan";
        case ScanType::tcp_connect: return "Connect";
        case ScanType::tcp_other: break;
    }
    // 1.2's wording and flag order, one digit per flag.
    char buf[96];
    std::snprintf(buf, sizeof buf,
                  "Unknown Type: TCP Packet Flags: SYN: %d FIN: %d ACK: %d PSH: %d URG: %d RST: %d",
                  (f & SYN) ? 1 : 0, (f & FIN) ? 1 : 0, (f & ACK) ? 1 : 0, (f & PSH) ? 1 : 0,
                  (f & URG) ? 1 : 0, (f & RST) ? 1 : 0);
    return buf;
}

}  // namespace portsentry::engine
