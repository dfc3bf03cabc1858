#include "portsentry/kernel/replay.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <system_error>

#include "portsentry/base/error.hpp"

namespace portsentry::kernel {

namespace {

// Link types from https://www.tcpdump.org/linktypes.html
constexpr uint32_t kLinkEthernet = 1, kLinkRaw = 101, kLinkSll = 113, kLinkIpv4 = 228,
                   kLinkIpv6 = 229, kLinkSll2 = 276;
constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherVlan = 0x8100;
// libpcap's MAXIMUM_SNAPLEN: no sane record is larger.
constexpr uint32_t kMaxRecord = 262144;

class Reader {
public:
    Reader(std::span<const uint8_t> b, const std::string& name) : b_(b), name_(name) {}
    [[noreturn]] void fail(size_t at, const std::string& what) const {
        throw std::runtime_error(fmt::format("{}: offset {}: {}", name_, at, what));
    }
    uint32_t u32(size_t at) const {
        uint32_t v;
        std::memcpy(&v, b_.data() + at, 4);
        return swap_ ? __builtin_bswap32(v) : v;
    }
    uint16_t u16(size_t at) const {
        uint16_t v;
        std::memcpy(&v, b_.data() + at, 2);
        return swap_ ? __builtin_bswap16(v) : v;
    }
    std::span<const uint8_t> b_;
    const std::string& name_;
    bool swap_ = false;
};

uint16_t be16(std::span<const uint8_t> p, size_t at) {
    return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

// Strip the link header; empty span = not an IP frame.
std::span<const uint8_t> to_l3(uint32_t linktype, std::span<const uint8_t> f) {
    auto ip_by_ethertype = [&](uint16_t et, size_t off) -> std::span<const uint8_t> {
        if ((et != kEtherIpv4 && et != kEtherIpv6) || f.size() < off) return {};
        return f.subspan(off);
    };
    switch (linktype) {
    case kLinkRaw:
    case kLinkIpv4:
    case kLinkIpv6:
        return f;
    case kLinkEthernet: {
        if (f.size() < 14) return {};
        uint16_t et = be16(f, 12);
        if (et == kEtherVlan) {
            if (f.size() < 18) return {};
            return ip_by_ethertype(be16(f, 16), 18);
        }
        return ip_by_ethertype(et, 14);
    }
    case kLinkSll:
        if (f.size() < 16) return {};
        return ip_by_ethertype(be16(f, 14), 16);
    case kLinkSll2:
        if (f.size() < 20) return {};
        return ip_by_ethertype(be16(f, 0), 20);
    default:
        return {};
    }
}

}  // namespace

std::vector<ReplayPacket> parse_pcap(std::span<const uint8_t> bytes, const std::string& name,
                                     size_t* skipped) {
    Reader r(bytes, name);
    if (bytes.size() < 24) r.fail(0, "shorter than a pcap file header (24 bytes)");
    uint32_t magic;
    std::memcpy(&magic, bytes.data(), 4);
    bool nsec = false;
    switch (magic) {
    case 0xa1b2c3d4: break;
    case 0xd4c3b2a1: r.swap_ = true; break;
    case 0xa1b23c4d: nsec = true; break;
    case 0x4d3cb2a1: nsec = true; r.swap_ = true; break;
    case 0x0a0d0d0a: r.fail(0, "pcapng is not supported: convert with `editcap -F pcap IN OUT`");
    default: r.fail(0, fmt::format("not a pcap file (magic {:#010x})", magic));
    }
    if (r.u16(4) != 2) r.fail(4, fmt::format("unsupported pcap major version {}", r.u16(4)));
    // The upper bits of the link-type field may carry FCS information.
    const uint32_t linktype = r.u32(20) & 0x0fffffffu;
    switch (linktype) {
    case kLinkRaw: case kLinkIpv4: case kLinkIpv6: case kLinkEthernet: case kLinkSll:
    case kLinkSll2: break;
    default: r.fail(20, fmt::format("unsupported link type {}", linktype));
    }
    std::vector<ReplayPacket> out;
    size_t off = 24;
    while (off < bytes.size()) {
        if (bytes.size() - off < 16) r.fail(off, "truncated record header");
        uint32_t sec = r.u32(off), frac = r.u32(off + 4), incl = r.u32(off + 8);
        if (incl > kMaxRecord) r.fail(off + 8, fmt::format("record length {} exceeds {}", incl, kMaxRecord));
        if (bytes.size() - off - 16 < incl)
            r.fail(off, fmt::format("record of {} bytes runs past the end of the file", incl));
        auto frame = bytes.subspan(off + 16, incl);
        auto l3 = to_l3(linktype, frame);
        if (l3.empty()) {
            if (skipped) ++*skipped;
        } else {
            ReplayPacket p;
            p.ts = std::chrono::seconds(sec) +
                   std::chrono::microseconds(nsec ? frac / 1000 : frac);
            p.l3.assign(l3.begin(), l3.end());
            out.push_back(std::move(p));
        }
        off += 16 + incl;
    }
    return out;
}

struct ReplaySource::Impl {
    std::deque<ReplayPacket> queue;
    std::vector<PacketVerdict> verdicts;
    SourceCounters counters;
    PacketVerdict default_verdict;
    std::chrono::microseconds current{0};
    std::string name = "memory";
    int efd = -1;

    explicit Impl(PacketVerdict d) : default_verdict(d) {
        efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd < 0) throw base::sys_error("replay: eventfd");
    }
    ~Impl() {
        if (efd >= 0) ::close(efd);
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    void signal() const {
        uint64_t one = 1;
        (void)!::write(efd, &one, sizeof one);
    }
    void clear_signal() const {
        uint64_t v;
        (void)!::read(efd, &v, sizeof v);
    }
};

ReplaySource::ReplaySource(std::vector<ReplayPacket> packets, PacketVerdict default_verdict)
    : impl_(std::make_unique<Impl>(default_verdict)) {
    for (auto& p : packets) impl_->queue.push_back(std::move(p));
    if (!impl_->queue.empty()) impl_->signal();
}

ReplaySource::ReplaySource(ReplaySource&&) noexcept = default;
ReplaySource& ReplaySource::operator=(ReplaySource&&) noexcept = default;
ReplaySource::~ReplaySource() = default;

ReplaySource ReplaySource::from_pcap(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(fmt::format("{}: open: {}", path, std::strerror(errno)));
    std::vector<uint8_t> bytes;
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            throw std::runtime_error(fmt::format("{}: read: {}", path, std::strerror(err)));
        }
        if (n == 0) break;
        bytes.insert(bytes.end(), buf, buf + n);
    }
    ::close(fd);
    size_t skipped = 0;
    ReplaySource src(parse_pcap(bytes, path, &skipped));
    src.impl_->counters.parse_errors = skipped;
    src.impl_->name = path;
    return src;
}

int ReplaySource::fd() const { return impl_->efd; }

size_t ReplaySource::process(const PacketHandler& h) {
    Impl& im = *impl_;
    im.clear_signal();
    size_t n = 0;
    while (!im.queue.empty()) {
        ReplayPacket p = std::move(im.queue.front());
        im.queue.pop_front();
        im.current = p.ts;
        ++im.counters.received;
        PacketVerdict v = im.default_verdict;
        try {
            v = h(p.l3);
        } catch (...) {
            ++im.counters.handler_errors;
            ++im.counters.default_verdicts;
        }
        im.verdicts.push_back(v);
        ++im.counters.verdicts;
        ++n;
    }
    return n;
}

std::string ReplaySource::describe() const {
    return fmt::format("replay {} ({} packets waiting)", impl_->name, impl_->queue.size());
}

const SourceCounters& ReplaySource::counters() const { return impl_->counters; }

void ReplaySource::push(ReplayPacket p) {
    impl_->queue.push_back(std::move(p));
    impl_->signal();
}

size_t ReplaySource::pending() const { return impl_->queue.size(); }
const std::vector<PacketVerdict>& ReplaySource::verdicts() const { return impl_->verdicts; }
std::chrono::microseconds ReplaySource::current_timestamp() const { return impl_->current; }

}  // namespace portsentry::kernel
