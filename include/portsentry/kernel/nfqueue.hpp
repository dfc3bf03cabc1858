// NFQUEUE packet source on libmnl + libnetfilter_queue's nfq_nlmsg_* API.
// Both steering rules (`queue num N bypass` and the xt NFQUEUE target) feed
// it. Guarantees (STYLE §5, §6): exactly one verdict per queued packet on
// every path (handler throws, payload missing → the default verdict, counted);
// verdicts are sent in one sendmsg per received batch, before process()
// returns, so no verdict waits for the next packet; the queue fails open.
#pragma once

#include <cstdint>
#include <string_view>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "portsentry/kernel/packet_source.hpp"


namespace portsentry::kernel {

struct NfQueueOptions {
    uint16_t queue_num = 0;
    // Only the headers are needed to classify a probe: IPv4 (≤60) or IPv6 with
    // a few extension headers, plus the TCP/UDP header. 128 bytes covers that
    // and keeps each queued message small (more fit in the socket buffer).
    uint32_t copy_range = 128;
    // Kernel default is 1024 entries; under a flood the queue fills in a few
    // ms at 300k pps. 8192 ≈ 27 ms of headroom; beyond it fail-open accepts.
    uint32_t queue_maxlen = 8192;
    // Each queued packet costs ~1 KiB of socket accounting (skb truesize), so
    // 8 MiB holds about one full queue (queue_maxlen) of messages: the socket
    // overruns no earlier than the queue itself fills.
    int rcvbuf_bytes = 8 << 20;
    bool fail_open = true;  // NFQA_CFG_F_FAIL_OPEN: queue full → accept, not drop
    // Verdict when the handler throws or the message has no payload. ACCEPT:
    // the blocker must never become the outage (a closed port just answers).
    PacketVerdict default_verdict = PacketVerdict::accept;
    size_t recv_batch = 64;        // datagrams per recvmmsg() (one packet each)
    size_t max_per_process = 1024;  // bound one process() call so timers still run
};

// Kernel-side per-queue figures from /proc/net/netfilter/nfnetlink_queue
// (current network namespace).
struct NfQueueKernelStats {
    uint32_t queue_total = 0;     // packets waiting for a verdict right now
    uint32_t copy_mode = 0;
    uint32_t copy_range = 0;
    uint64_t queue_dropped = 0;   // queue full without fail-open
    uint64_t user_dropped = 0;    // netlink delivery failed without fail-open
    uint32_t id_sequence = 0;     // last packet id handed out
};

class NfQueue final : public PacketSource {
public:
    explicit NfQueue(const NfQueueOptions& opts);  // throws std::system_error
    explicit NfQueue(uint16_t queue_num, uint32_t copy_range = 128,
                     uint32_t queue_maxlen = 8192);
    ~NfQueue() override;  // unbinds: the kernel drops what is still queued
    NfQueue(const NfQueue&) = delete;
    NfQueue& operator=(const NfQueue&) = delete;

    int fd() const override;
    size_t process(const PacketHandler& h) override;
    bool inline_verdict() const override { return true; }
    std::string describe() const override;
    const SourceCounters& counters() const override { return counters_; }

    bool fail_open_active() const { return fail_open_; }
    int receive_buffer_bytes() const { return rcvbuf_; }  // as granted by the kernel
    std::optional<NfQueueKernelStats> kernel_stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    SourceCounters counters_;
    bool fail_open_ = false;
    int rcvbuf_ = 0;
    std::string fail_open_note_;
};

// Wire helpers, pure (no socket): unit-testable without root.
namespace nfqwire {

struct PendingVerdict {
    uint32_t id;
    PacketVerdict verdict;
};

// Bytes one verdict message takes: nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR.
size_t verdict_msg_size();

// Write verdict messages for `v` (arrival order) into `out`, back to back, for
// one sendmsg. A run of ≥2 equal verdicts with consecutive ids becomes one
// NFQNL_MSG_VERDICT_BATCH (the kernel applies it to every queued id ≤ the
// run's last id; earlier runs were verdicted by the messages before it);
// anything else becomes individual NFQNL_MSG_VERDICT messages.
// Returns bytes written, or 0 if `out` is smaller than
// v.size() * verdict_msg_size().
size_t build_verdicts(uint16_t queue_num, std::span<const PendingVerdict> v,
                      std::span<uint8_t> out) noexcept;

// Per-datagram dispatch state shared across calls.
struct DispatchState {
    std::vector<PendingVerdict>* pending;
    SourceCounters* counters;
    PacketVerdict default_verdict = PacketVerdict::accept;
    std::optional<uint32_t> last_id;  // for counting id gaps (socket overruns)
};

// Parse every netlink message in one received datagram, call `h` for each
// queued packet and append exactly one verdict per packet id to
// st.pending (the handler's, or the default with its reason counted).
// A truncated datagram still yields the default verdict if its packet id is
// readable. NLMSG_ERROR replies (a verdict the kernel rejected) count as
// send_errors. Returns packets seen.
size_t dispatch(std::span<const uint8_t> datagram, bool truncated, const PacketHandler& h,
                DispatchState& st) noexcept;

}  // namespace nfqwire
// The kernel's own figures for one queue (/proc/net/netfilter/nfnetlink_queue):
// packets waiting, dropped because the queue was full (with fail-open: answered
// by the kernel instead), and dropped because our socket buffer was full.
struct QueueKernelStats {
    uint64_t waiting = 0;
    uint64_t queue_dropped = 0;
    uint64_t user_dropped = 0;
};
// Parses that file's text; nullopt when `queue_num` has no line (not bound).
std::optional<QueueKernelStats> parse_queue_stats(std::string_view text, uint16_t queue_num);
std::optional<QueueKernelStats> read_queue_stats(uint16_t queue_num,
                                                 const std::string& path = "/proc/net/netfilter/nfnetlink_queue");

}  // namespace portsentry::kernel
