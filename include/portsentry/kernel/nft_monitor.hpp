// Listens to nftables change notifications (NFNLGRP_NFTABLES, what
// `nft monitor` reads) for deletions in `table inet portsentry` made by
// anyone but us: `nft flush ruleset` (Debian's nftables.conf does it on
// every `systemctl reload nftables`), `nft flush table`, a deleted chain or
// set. The daemon then restores the table and its bans at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "portsentry/net/address.hpp"

namespace portsentry::kernel {

struct NftMonitorCounters {
    uint64_t foreign_changes = 0;  // deletions in our table by another socket
    uint64_t overruns = 0;         // ENOBUFS: notifications lost (caller must check the table)
    uint64_t foreign_unbans = 0;   // ban elements deleted by another program
};

class NftMonitor {
public:
    // `own_portid`: the daemon's Nft socket (Nft::portid()); its own changes
    // (the replace in apply(), element updates) are not reported.
    explicit NftMonitor(uint32_t own_portid);  // throws std::system_error
    ~NftMonitor();
    NftMonitor(const NftMonitor&) = delete;
    NftMonitor& operator=(const NftMonitor&) = delete;

    int fd() const;
    // Reads every pending notification (non-blocking). True when a foreign
    // deletion of our table, or of a chain, rule or set in it, was seen, or
    // when notifications were lost: the caller should check (Nft::
    // ruleset_intact) and restore only what is really gone.
    bool drain();
    // Start addresses of ban elements another program deleted from banned /
    // banned6 since the last call (`nft delete element`, `nft flush set`):
    // the daemon treats them as unbans. Filled by drain().
    std::vector<net::IpAddr> take_removed_bans();
    // Reads and drops everything pending: after our own apply() (thousands
    // of element notifications, perhaps an overrun) nothing in the queue
    // can be news.
    void discard();
    // Leaves (true) or rejoins (false) the notification group. While no
    // socket listens the kernel builds no notification at all: a batch of
    // 100,000 elements costs a third of the time (docs/BENCHMARKS.md, Fleet).
    void mute(bool on);
    const NftMonitorCounters& counters() const { return counters_; }

private:
    void collect_removed(const void* nlh);

    struct Impl;
    std::unique_ptr<Impl> impl_;
    NftMonitorCounters counters_;
    std::vector<net::IpAddr> removed_;
};

}  // namespace portsentry::kernel
