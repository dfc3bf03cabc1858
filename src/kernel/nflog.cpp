// NFLOG reader: same shape as nfqueue.cpp (build into a buffer, parse from a
// buffer), minus verdicts.
#include "portsentry/kernel/nflog.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_log/libnetfilter_log.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "nl_socket.hpp"

namespace portsentry::kernel {

namespace nflogwire {
namespace {

struct CbCtx {
    const PacketHandler* handler;
    DispatchState* st;
    size_t seen = 0;
};

int on_message(const nlmsghdr* nlh, void* data) {
    auto& c = *static_cast<CbCtx*>(data);
    SourceCounters& k = *c.st->counters;
    if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) {
        ++k.parse_errors;
        return MNL_CB_OK;
    }
    nlattr* attr[NFULA_MAX + 1] = {};
    if (nflog_nlmsg_parse(nlh, attr) < 0) {
        ++k.parse_errors;
        return MNL_CB_OK;
    }
    ++k.received;
    ++c.seen;
    if (attr[NFULA_SEQ] != nullptr && mnl_attr_get_payload_len(attr[NFULA_SEQ]) >= 4) {
        uint32_t seq = ntohl(mnl_attr_get_u32(attr[NFULA_SEQ]));
        if (c.st->last_seq) {
            uint32_t delta = seq - *c.st->last_seq;
            if (delta != 0 && delta < 0x80000000u) k.enobufs += delta - 1;
        }
        c.st->last_seq = seq;
    }
    if (attr[NFULA_PAYLOAD] == nullptr) {
        ++k.parse_errors;
        return MNL_CB_OK;
    }
    std::span<const uint8_t> l3(static_cast<const uint8_t*>(mnl_attr_get_payload(attr[NFULA_PAYLOAD])),
                                mnl_attr_get_payload_len(attr[NFULA_PAYLOAD]));
    try {
        (void)(*c.handler)(l3);  // observe only: the rule already decided
    } catch (...) {
        ++k.handler_errors;
    }
    return MNL_CB_OK;
}

}  // namespace

size_t dispatch(std::span<const uint8_t> datagram, const PacketHandler& h,
                DispatchState& st) noexcept {
    CbCtx c{&h, &st};
    // NLMSG_DONE ends a multi-message batch (MNL_CB_STOP); an NLMSG_ERROR has
    // no packet to lose here, so the return value needs no handling.
    (void)mnl_cb_run(datagram.data(), datagram.size(), 0, 0, on_message, &c);
    return c.seen;
}

}  // namespace nflogwire

struct NfLog::Impl {
    NfLogOptions opts;
    detail::MnlSocket nl;
    detail::RecvBatch batch;
    nflogwire::DispatchState st;
    uint32_t seq = 1;

    Impl(const NfLogOptions& o, SourceCounters& c)
        : opts(o),
          nl(detail::open_netfilter_socket(fmt::format("nflog group {}", o.group))),
          // One datagram is one kernel skb: up to the instance's nlbufsiz
          // (default NLMSG_GOODSIZE, ≤ 8 KiB) holding several messages, or a
          // single larger message. 16 KiB covers both at copy range 128.
          batch(o.recv_batch, std::max<size_t>(16384, MNL_ALIGN(o.copy_range) + 1024)) {
        st.counters = &c;
    }

    std::string who() const { return fmt::format("nflog group {}", opts.group); }

    int config(const std::function<void(nlmsghdr*)>& fill) {
        alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = nflog_nlmsg_put_header(buf, NFULNL_MSG_CONFIG, AF_UNSPEC, opts.group);
        fill(nlh);
        // Log messages that race the ACKs are observed like any other.
        PacketHandler ignore = [](std::span<const uint8_t>) { return PacketVerdict::accept; };
        return detail::request_ack(nl.get(), nlh, seq++, [&](const nlmsghdr* m) {
            nflogwire::dispatch({reinterpret_cast<const uint8_t*>(m), m->nlmsg_len}, ignore, st);
        });
    }
};

NfLog::NfLog(uint16_t group, uint32_t copy_range)
    : NfLog([&] {
          NfLogOptions o;
          o.group = group;
          o.copy_range = copy_range;
          return o;
      }()) {}

NfLog::NfLog(const NfLogOptions& opts) : impl_(std::make_unique<Impl>(opts, counters_)) {
    Impl& im = *impl_;
    const std::string who = im.who();
    int fd = mnl_socket_get_fd(im.nl.get());
    rcvbuf_ = detail::set_receive_buffer(fd, opts.rcvbuf_bytes);
    (void)detail::set_no_enobufs(fd);  // losses are counted from NFULA_SEQ gaps instead

    // No NFULNL_CFG_CMD_PF_BIND: nft `log group N` / xt NFLOG request the
    // nfnetlink_log logger themselves on current kernels.
    int err = im.config([](nlmsghdr* nlh) { nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_BIND); });
    // nfnetlink_log answers EPERM both without CAP_NET_ADMIN and when another
    // socket owns the group (peer portid mismatch).
    if (err == EPERM)
        detail::throw_errno(err, who + ": bind: the group is already bound by another process "
                                       "(ulogd?) or CAP_NET_ADMIN is missing");
    if (err != 0) detail::throw_errno(err, who + ": bind");

    err = im.config([&](nlmsghdr* nlh) {
        nflog_attr_put_cfg_mode(nlh, NFULNL_COPY_PACKET, opts.copy_range);
        mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(opts.qthresh));
        mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(opts.timeout_cs));
        // Per-instance sequence numbers (NFULA_SEQ): with NETLINK_NO_ENOBUFS
        // they are how we learn that the socket overran.
        mnl_attr_put_u16(nlh, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
    });
    if (err != 0)
        detail::throw_errno(err, fmt::format("{}: set copy range {}, qthresh {}, timeout {}", who,
                                             opts.copy_range, opts.qthresh, opts.timeout_cs));
}

NfLog::~NfLog() {
    if (!impl_) return;
    alignas(nlmsghdr) char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = nflog_nlmsg_put_header(buf, NFULNL_MSG_CONFIG, AF_UNSPEC, impl_->opts.group);
    nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_UNBIND);
    (void)mnl_socket_sendto(impl_->nl.get(), nlh, nlh->nlmsg_len);
}

int NfLog::fd() const { return mnl_socket_get_fd(impl_->nl.get()); }

size_t NfLog::process(const PacketHandler& h) {
    Impl& im = *impl_;
    size_t handled = 0;
    while (handled < im.opts.max_per_process) {
        int n = im.batch.receive(fd());
        if (n == 0) break;
        if (n < 0) {
            if (n == -EINTR) continue;
            if (n == -ENOBUFS) {
                ++counters_.enobufs;
                continue;
            }
            detail::throw_errno(-n, im.who() + ": recvmmsg");
        }
        for (int i = 0; i < n; ++i) {
            auto idx = static_cast<size_t>(i);
            if (!im.batch.from_kernel(idx) || im.batch.truncated(idx)) {
                ++counters_.parse_errors;
                continue;
            }
            handled += nflogwire::dispatch(im.batch.datagram(idx), h, im.st);
        }
    }
    return handled;
}

std::string NfLog::describe() const {
    const auto& o = impl_->opts;
    return fmt::format("nflog group {} (copy range {} B, qthresh {}, timeout {} cs, rcvbuf {} B, "
                       "observe only: the rule decides)",
                       o.group, o.copy_range, o.qthresh, o.timeout_cs, rcvbuf_);
}

}  // namespace portsentry::kernel
