// One small interface for every way a probe reaches the daemon: NFQUEUE
// (`queue` and `xt-queue` rules both feed it), NFLOG, and a replay source for
// tests and benches. The engine never knows which one delivered a packet.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace portsentry::kernel {

enum class PacketVerdict : uint8_t { accept, drop };

struct SourceCounters {
    uint64_t received = 0;
    uint64_t verdicts = 0;
    uint64_t default_verdicts = 0;  // handler failed/threw: default verdict sent
    uint64_t parse_errors = 0;      // netlink message without payload etc.
    uint64_t enobufs = 0;           // kernel dropped messages (socket overrun)
    uint64_t send_errors = 0;
    // Reasons behind default_verdicts / parse_errors, counted separately:
    uint64_t handler_errors = 0;    // the handler threw (packet got the default verdict)
    uint64_t unverdictable = 0;     // message without a packet id: no verdict possible
};

// Called for every packet: `l3` starts at the IP header (possibly truncated
// to the copy range). Returns the verdict. Must be noexcept in practice; a
// throwing handler gets the source's default verdict, counted.
using PacketHandler = std::function<PacketVerdict(std::span<const uint8_t> l3)>;

class PacketSource {
public:
    virtual ~PacketSource() = default;
    virtual int fd() const = 0;            // poll for readability
    // Drain what is readable without blocking, call the handler per packet,
    // send (batched) verdicts before returning. Returns packets handled;
    // throws std::system_error only for unrecoverable socket errors.
    virtual size_t process(const PacketHandler& h) = 0;
    virtual bool inline_verdict() const = 0;  // false for NFLOG (observe only)
    virtual std::string describe() const = 0;
    virtual const SourceCounters& counters() const = 0;
};

}  // namespace portsentry::kernel
