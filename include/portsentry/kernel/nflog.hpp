// NFLOG packet source (nfnetlink_log via libmnl + libnetfilter_log's
// nflog_* message helpers): the `nflog` steering backend on kernels without
// NFQUEUE. Observe only: the rule itself accepts or drops, so the handler's
// return value is ignored and inline_verdict() is false.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "portsentry/kernel/packet_source.hpp"

namespace portsentry::kernel {

struct NfLogOptions {
    uint16_t group = 5;
    uint32_t copy_range = 128;  // headers only, as for NFQUEUE
    // The kernel batches log messages until `qthresh` packets are pending or
    // `timeout` (1/100 s) expires; its defaults (100 packets, 1 s) would hold
    // a lone probe back for a second. 1 delivers each packet at once; the
    // timeout then only matters if qthresh is raised for flood efficiency.
    uint32_t qthresh = 1;
    uint32_t timeout_cs = 1;
    int rcvbuf_bytes = 8 << 20;  // same reasoning as NfQueueOptions::rcvbuf_bytes
    size_t recv_batch = 32;
    size_t max_per_process = 1024;
};

class NfLog final : public PacketSource {
public:
    explicit NfLog(const NfLogOptions& opts);  // throws std::system_error
    explicit NfLog(uint16_t group, uint32_t copy_range = 128);
    ~NfLog() override;  // unbinds the group
    NfLog(const NfLog&) = delete;
    NfLog& operator=(const NfLog&) = delete;

    int fd() const override;
    size_t process(const PacketHandler& h) override;
    bool inline_verdict() const override { return false; }
    std::string describe() const override;
    const SourceCounters& counters() const override { return counters_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    SourceCounters counters_;
    int rcvbuf_ = 0;
};

namespace nflogwire {

struct DispatchState {
    SourceCounters* counters;
    std::optional<uint32_t> last_seq;  // NFULA_SEQ: gaps are lost log messages
};

// Parse every message in one datagram (the kernel may pack several), call
// `h` per logged packet (its return value is ignored). Returns packets seen.
size_t dispatch(std::span<const uint8_t> datagram, const PacketHandler& h,
                DispatchState& st) noexcept;

}  // namespace nflogwire
}  // namespace portsentry::kernel
