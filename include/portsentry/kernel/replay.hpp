// Replay packet source: packets from a classic pcap file or from memory, fed
// to the same handler the kernel sources feed (STYLE §4; Suricata
// src/source-pcap-file.c next to source-nfq.c). Used by tests and benches.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "portsentry/kernel/packet_source.hpp"

namespace portsentry::kernel {

struct ReplayPacket {
    std::chrono::microseconds ts{0};  // capture time (pcap record), 0 for in-memory packets
    std::vector<uint8_t> l3;          // starts at the IP header
};

// Parse a classic pcap file (magic a1b2c3d4 / a1b23c4d, either byte order).
// Link types: RAW (101), IPV4 (228), IPV6 (229): records are L3 already;
// EN10MB (1, optional 802.1Q tag) and LINUX_SLL (113) / LINUX_SLL2 (276):
// the link header is stripped. Non-IP frames are skipped and counted in
// *skipped. Throws std::runtime_error "NAME: offset N: what" on anything
// malformed (pcapng: convert with `editcap -F pcap`).
std::vector<ReplayPacket> parse_pcap(std::span<const uint8_t> bytes, const std::string& name,
                                     size_t* skipped = nullptr);

class ReplaySource final : public PacketSource {
public:
    explicit ReplaySource(std::vector<ReplayPacket> packets,
                          PacketVerdict default_verdict = PacketVerdict::accept);
    static ReplaySource from_pcap(const std::string& path);  // throws std::runtime_error
    ReplaySource(ReplaySource&&) noexcept;
    ReplaySource& operator=(ReplaySource&&) noexcept;
    ~ReplaySource() override;

    // An eventfd, readable while packets are waiting, so the daemon's poll
    // loop can drive a replay exactly like a kernel source.
    int fd() const override;
    // Hands every waiting packet to the handler (replay has no socket to
    // starve), records one verdict per packet.
    size_t process(const PacketHandler& h) override;
    bool inline_verdict() const override { return true; }
    std::string describe() const override;
    const SourceCounters& counters() const override;

    void push(ReplayPacket p);  // queue one more packet (fd becomes readable)
    size_t pending() const;
    // Verdicts in packet order (the handler's or the default when it threw).
    const std::vector<PacketVerdict>& verdicts() const;
    // Capture time of the packet being handled (valid inside the handler).
    std::chrono::microseconds current_timestamp() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace portsentry::kernel
