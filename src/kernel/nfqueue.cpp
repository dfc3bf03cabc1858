// NFQUEUE reader. Shape after libmnl examples/netfilter/nf-queue.c (build
// into a buffer, parse from a buffer) and Suricata src/source-nfq.c (fail
// open, verdict cache flushed when the socket is idle, an unverdicted packet
// always released with a counted reason).
#include "portsentry/kernel/nfqueue.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "nl_socket.hpp"

namespace portsentry::kernel {

namespace nfqwire {

size_t verdict_msg_size() {
    return MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)) + MNL_ATTR_HDRLEN +
           MNL_ALIGN(sizeof(nfqnl_msg_verdict_hdr));
}

namespace {

int to_nf(PacketVerdict v) { return v == PacketVerdict::drop ? NF_DROP : NF_ACCEPT; }

void put_verdict(uint8_t* at, int type, uint16_t queue_num, uint32_t id, PacketVerdict v) {
    nlmsghdr* nlh = nfq_nlmsg_put(reinterpret_cast<char*>(at), type, queue_num);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), to_nf(v));
}

}  // namespace

size_t build_verdicts(uint16_t queue_num, std::span<const PendingVerdict> v,
                      std::span<uint8_t> out) noexcept {
    const size_t msg = verdict_msg_size();
    if (out.size() < v.size() * msg) return 0;
    size_t used = 0;
    size_t i = 0;
    while (i < v.size()) {
        // Extend a run while the verdict is equal and the id is the next one.
        size_t j = i + 1;
        while (j < v.size() && v[j].verdict == v[i].verdict && v[j].id == v[j - 1].id + 1) ++j;
        if (j - i >= 2) {
            put_verdict(out.data() + used, NFQNL_MSG_VERDICT_BATCH, queue_num, v[j - 1].id,
                        v[i].verdict);
            used += msg;
        } else {
            put_verdict(out.data() + used, NFQNL_MSG_VERDICT, queue_num, v[i].id, v[i].verdict);
            used += msg;
        }
        i = j;
    }
    return used;
}

namespace {

struct CbCtx {
    const PacketHandler* handler;
    DispatchState* st;
    size_t seen = 0;
};

// The default verdict for a packet nobody else gave one to, with its reason
// already counted by whoever bailed out (STYLE §5).
class VerdictGuard {
public:
    VerdictGuard(DispatchState& st, uint32_t id) : st_(st), id_(id) {}
    VerdictGuard(const VerdictGuard&) = delete;
    VerdictGuard& operator=(const VerdictGuard&) = delete;
    void set(PacketVerdict v) {
        st_.pending->push_back({id_, v});
        done_ = true;
    }
    ~VerdictGuard() {
        if (done_) return;
        st_.pending->push_back({id_, st_.default_verdict});
        ++st_.counters->default_verdicts;
    }

private:
    DispatchState& st_;
    uint32_t id_;
    bool done_ = false;
};

void note_id(DispatchState& st, uint32_t id) {
    // Ids come from one per-queue counter; the kernel skips nothing except a
    // packet it could not deliver to our socket (overrun; with fail-open the
    // packet was accepted). A forward gap is therefore a count of overruns.
    if (st.last_id) {
        uint32_t delta = id - *st.last_id;  // 1 for the next id (wraps like the kernel's)
        if (delta == 0 || delta >= 0x80000000u) return;  // repeat or older: no gap to count
        st.counters->enobufs += delta - 1;
    }
    st.last_id = id;
}

void deliver(CbCtx& c, uint32_t id, const nlattr* payload) {
    DispatchState& st = *c.st;
    ++st.counters->received;
    ++c.seen;
    note_id(st, id);
    VerdictGuard guard(st, id);
    if (payload == nullptr) {
        ++st.counters->parse_errors;  // copy mode without payload: nothing to judge
        return;
    }
    std::span<const uint8_t> l3(static_cast<const uint8_t*>(mnl_attr_get_payload(payload)),
                                mnl_attr_get_payload_len(payload));
    try {
        guard.set((*c.handler)(l3));
    } catch (...) {
        ++st.counters->handler_errors;
    }
}

int on_message(const nlmsghdr* nlh, void* data) {
    auto& c = *static_cast<CbCtx*>(data);
    if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) {
        ++c.st->counters->parse_errors;
        return MNL_CB_OK;
    }
    nlattr* attr[NFQA_MAX + 1] = {};
    // A failed validation leaves the attributes parsed before it in place:
    // the packet header (always first) may still give us an id to verdict.
    bool parsed = nfq_nlmsg_parse(nlh, attr) >= 0;
    if (attr[NFQA_PACKET_HDR] == nullptr ||
        mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(nfqnl_msg_packet_hdr)) {
        ++c.st->counters->parse_errors;
        ++c.st->counters->unverdictable;
        return MNL_CB_OK;
    }
    nfqnl_msg_packet_hdr ph;
    std::memcpy(&ph, mnl_attr_get_payload(attr[NFQA_PACKET_HDR]), sizeof ph);
    uint32_t id = ntohl(ph.packet_id);
    if (!parsed) {
        deliver(c, id, nullptr);  // default verdict, counted as a parse error
        return MNL_CB_OK;
    }
    deliver(c, id, attr[NFQA_PAYLOAD]);
    return MNL_CB_OK;
}

// A datagram cut short by a too-small buffer: nlmsg lengths no longer hold,
// but the kernel writes NFQA_PACKET_HDR first, so the id is at a fixed offset.
void salvage_truncated(std::span<const uint8_t> d, CbCtx& c) {
    const size_t attr_off = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg));
    nlattr a;
    nfqnl_msg_packet_hdr ph;
    if (d.size() >= attr_off + MNL_ATTR_HDRLEN + sizeof ph) {
        std::memcpy(&a, d.data() + attr_off, sizeof a);
        if ((a.nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
            a.nla_len >= MNL_ATTR_HDRLEN + sizeof ph) {
            std::memcpy(&ph, d.data() + attr_off + MNL_ATTR_HDRLEN, sizeof ph);
            deliver(c, ntohl(ph.packet_id), nullptr);
            return;
        }
    }
    ++c.st->counters->parse_errors;
    ++c.st->counters->unverdictable;
}

}  // namespace

size_t dispatch(std::span<const uint8_t> datagram, bool truncated, const PacketHandler& h,
                DispatchState& st) noexcept {
    CbCtx c{&h, &st};
    if (truncated) {
        salvage_truncated(datagram, c);
        return c.seen;
    }
    int rc = mnl_cb_run(datagram.data(), datagram.size(), 0, 0, on_message, &c);
    if (rc < 0) {
        // NLMSG_ERROR from the kernel: a verdict we sent was refused (e.g. an
        // id that is no longer queued). The packet itself was not lost here.
        ++st.counters->send_errors;
    }
    return c.seen;
}

}  // namespace nfqwire

struct NfQueue::Impl {
    NfQueueOptions opts;
    detail::MnlSocket nl;
    detail::RecvBatch batch;
    std::vector<nfqwire::PendingVerdict> pending;
    std::vector<uint8_t> sendbuf;
    nfqwire::DispatchState st;
    uint32_t seq = 1;
    unsigned portid = 0;

    Impl(const NfQueueOptions& o, SourceCounters& c)
        : opts(o),
          nl(detail::open_netfilter_socket(fmt::format("nfqueue {}", o.queue_num))),
          // One packet per datagram: the payload (≤ copy_range) plus the
          // metadata attributes (ids, ifindexes, hwaddr, timestamp, vlan,
          // skb info: < 300 bytes); 1 KiB spare keeps MSG_TRUNC theoretical.
          batch(o.recv_batch, MNL_ALIGN(o.copy_range) + 1024) {
        pending.reserve(o.recv_batch * 2);
        sendbuf.resize(o.recv_batch * 2 * nfqwire::verdict_msg_size());
        st.pending = &pending;
        st.counters = &c;
        st.default_verdict = o.default_verdict;
        portid = mnl_socket_get_portid(nl.get());
    }

    std::string who() const { return fmt::format("nfqueue {}", opts.queue_num); }

    // Packets that arrive while configuration is still being ACKed get the
    // default verdict at once: the handler is not ours to call yet.
    void on_setup_message(const nlmsghdr* m) {
        PacketHandler dflt = [this](std::span<const uint8_t>) { return opts.default_verdict; };
        nfqwire::dispatch({reinterpret_cast<const uint8_t*>(m), m->nlmsg_len}, false, dflt, st);
    }

    int config(const std::function<void(nlmsghdr*)>& fill) {
        alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, opts.queue_num);
        fill(nlh);
        int err = detail::request_ack(nl.get(), nlh, seq++,
                                      [this](const nlmsghdr* m) { on_setup_message(m); });
        flush();
        return err;
    }

    void flush() noexcept {
        if (pending.empty()) return;
        if (sendbuf.size() < pending.size() * nfqwire::verdict_msg_size())
            sendbuf.resize(pending.size() * nfqwire::verdict_msg_size());
        size_t len = nfqwire::build_verdicts(opts.queue_num, pending, sendbuf);
        // One sendmsg carries every verdict of the batch; the kernel processes
        // the messages in order. Transient allocation failures are retried a
        // few times because an unsent verdict leaves packets stuck in the queue.
        for (int attempt = 0;; ++attempt) {
            if (mnl_socket_sendto(nl.get(), sendbuf.data(), len) >= 0) {
                st.counters->verdicts += pending.size();
                break;
            }
            int err = errno;
            if (attempt < 3 && (err == EINTR || err == ENOBUFS || err == ENOMEM || err == EAGAIN))
                continue;
            ++st.counters->send_errors;
            break;
        }
        pending.clear();
    }
};

NfQueue::NfQueue(uint16_t queue_num, uint32_t copy_range, uint32_t queue_maxlen)
    : NfQueue([&] {
          NfQueueOptions o;
          o.queue_num = queue_num;
          o.copy_range = copy_range;
          o.queue_maxlen = queue_maxlen;
          return o;
      }()) {}

NfQueue::NfQueue(const NfQueueOptions& opts) : impl_(std::make_unique<Impl>(opts, counters_)) {
    Impl& im = *impl_;
    const std::string who = im.who();
    int fd = mnl_socket_get_fd(im.nl.get());
    rcvbuf_ = detail::set_receive_buffer(fd, opts.rcvbuf_bytes);
    (void)detail::set_no_enobufs(fd);  // without it an overrun is an ENOBUFS return: also counted

    // Since Linux 3.8 queue handlers are no longer per address family, so the
    // old NFQNL_CFG_CMD_PF_UNBIND/PF_BIND dance is a no-op; BIND alone suffices.
    int err = im.config([&](nlmsghdr* nlh) { nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND); });
    // nfnetlink_queue answers EPERM both without CAP_NET_ADMIN and when
    // another socket owns the queue (peer portid mismatch).
    if (err == EPERM)
        detail::throw_errno(err, who + ": bind: the queue is already bound by another process "
                                       "(or CAP_NET_ADMIN is missing)");
    if (err != 0) detail::throw_errno(err, who + ": bind");

    err = im.config([&](nlmsghdr* nlh) {
        nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, static_cast<int>(opts.copy_range));
    });
    if (err != 0) detail::throw_errno(err, fmt::format("{}: set copy range {}", who, opts.copy_range));

    err = im.config([&](nlmsghdr* nlh) { nfq_nlmsg_cfg_put_qmaxlen(nlh, opts.queue_maxlen); });
    if (err != 0)
        detail::throw_errno(err, fmt::format("{}: set queue maxlen {}", who, opts.queue_maxlen));

    // NFQA_CFG_F_GSO (Linux 3.10): hand over a GSO aggregate as one packet
    // instead of segmenting it in the kernel first; we read headers only and
    // one verdict covers the aggregate. Optional: if refused, segments arrive.
    (void)im.config([&](nlmsghdr* nlh) {
        mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
        mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
    });

    // NFQA_CFG_F_FAIL_OPEN (Linux 3.6): when the queue is full (or our socket
    // overruns) the kernel accepts the packet instead of dropping it. Together
    // with `bypass` in the rule (no reader → accept) the detector can never
    // take the host's services down with it.
    if (opts.fail_open) {
        err = im.config([&](nlmsghdr* nlh) {
            mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
            mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
        });
        fail_open_ = err == 0;
        if (!fail_open_)
            fail_open_note_ = fmt::format("fail-open unsupported by this kernel ({}): a full "
                                          "queue drops packets",
                                          std::strerror(err));
    } else {
        fail_open_note_ = "fail-open disabled by configuration: a full queue drops packets";
    }
}

NfQueue::~NfQueue() {
    if (!impl_) return;
    impl_->flush();
    // Unbinding (or closing the socket) makes the kernel drop whatever is
    // still queued for us; the rule's `bypass` then accepts new packets.
    alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, impl_->opts.queue_num);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
    (void)mnl_socket_sendto(impl_->nl.get(), nlh, nlh->nlmsg_len);
}

int NfQueue::fd() const { return mnl_socket_get_fd(impl_->nl.get()); }

size_t NfQueue::process(const PacketHandler& h) {
    Impl& im = *impl_;
    size_t handled = 0;
    while (handled < im.opts.max_per_process) {
        int n = im.batch.receive(fd());
        if (n == 0) break;  // idle: everything is verdicted, nothing waits
        if (n < 0) {
            if (n == -EINTR) continue;
            if (n == -ENOBUFS) {  // overrun reported (NETLINK_NO_ENOBUFS unavailable)
                ++counters_.enobufs;
                continue;
            }
            im.flush();
            detail::throw_errno(-n, im.who() + ": recvmmsg");
        }
        for (int i = 0; i < n; ++i) {
            if (!im.batch.from_kernel(static_cast<size_t>(i))) {
                ++counters_.parse_errors;
                continue;
            }
            handled += nfqwire::dispatch(im.batch.datagram(static_cast<size_t>(i)),
                                         im.batch.truncated(static_cast<size_t>(i)), h, im.st);
        }
        im.flush();  // one sendmsg per received batch, before reading more
    }
    return handled;
}

std::string NfQueue::describe() const {
    const auto& o = impl_->opts;
    return fmt::format("nfqueue {} (copy range {} B, queue maxlen {}, rcvbuf {} B, {})",
                       o.queue_num, o.copy_range, o.queue_maxlen, rcvbuf_,
                       fail_open_ ? "fail-open" : fail_open_note_);
}

std::optional<NfQueueKernelStats> NfQueue::kernel_stats() const {
    // Columns (net/netfilter/nfnetlink_queue.c seq_show): queue_num portid
    // queue_total copy_mode copy_range queue_dropped queue_user_dropped
    // id_sequence 1
    std::ifstream in("/proc/net/netfilter/nfnetlink_queue");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        unsigned qnum = 0, portid = 0;
        NfQueueKernelStats s;
        if (!(ls >> qnum >> portid >> s.queue_total >> s.copy_mode >> s.copy_range >>
              s.queue_dropped >> s.user_dropped >> s.id_sequence))
            continue;
        if (qnum == impl_->opts.queue_num && portid == impl_->portid) return s;
    }
    return std::nullopt;
}

std::optional<QueueKernelStats> parse_queue_stats(std::string_view text, uint16_t queue_num) {
    // "%5u %6u %5u %1u %5u %5u %5u %8u %2d": queue, portid, waiting, copy
    // mode, copy range, queue dropped, user dropped, id sequence, 1.
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        uint64_t v[7];
        bool ok = true;
        for (auto& x : v) ok = ok && static_cast<bool>(f >> x);
        if (ok && v[0] == queue_num) return QueueKernelStats{v[2], v[5], v[6]};
    }
    return std::nullopt;
}

std::optional<QueueKernelStats> read_queue_stats(uint16_t queue_num, const std::string& path) {
    std::ifstream f(path);
    if (!f) return std::nullopt;
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_queue_stats(ss.str(), queue_num);
}

}  // namespace portsentry::kernel
