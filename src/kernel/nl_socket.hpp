// Private to src/kernel: the pieces NfQueue and NfLog share — an owned
// NETLINK_NETFILTER socket, its buffer options, batched receive, and a
// request/ACK exchange for configuration messages. Header-only and small on
// purpose (STYLE §3: the code that can block or fail in a syscall stays
// readable in one sitting).
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "portsentry/base/error.hpp"
#include "portsentry/kernel/mnl_socket.hpp"

namespace portsentry::kernel::detail {

[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw base::sys_error(what, err);
}

using kernel::MnlSocket;

inline MnlSocket open_netfilter_socket(const std::string& who) {
    MnlSocket s(mnl_socket_open(NETLINK_NETFILTER));
    if (!s) throw_errno(errno, who + ": mnl_socket_open(NETLINK_NETFILTER)");
    if (mnl_socket_bind(s.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        throw_errno(errno, who + ": mnl_socket_bind");
    return s;
}

// SO_RCVBUFFORCE ignores net.core.rmem_max (we run as root / CAP_NET_ADMIN);
// without the capability fall back to SO_RCVBUF, which the kernel silently
// caps at rmem_max. Returns what the kernel actually granted (it doubles the
// request for bookkeeping overhead, so the read-back is reported as is).
inline int set_receive_buffer(int fd, int bytes) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0) return -1;
    return got;
}

// NETLINK_NO_ENOBUFS: when the socket overruns, the kernel drops the message
// but does not latch ENOBUFS onto the socket. An overrun is not an error for
// us (with fail-open the packet was accepted, with NFLOG it was only a log
// copy); we count it from the gaps in the packet ids / sequence numbers
// instead of taking an error return per overrun (conntrack-tools src/ctnl.c
// makes the same call for its event socket). Linux ≥ 2.6.30.
inline bool set_no_enobufs(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) == 0;
}

// recvmmsg() on a netlink socket: each datagram is one kernel skb (one
// queued packet for NFQUEUE, one or more log messages for NFLOG). Pulling a
// batch per syscall is where we gain over one recv() per packet.
class RecvBatch {
public:
    RecvBatch(size_t slots, size_t slot_size)
        : slot_size_(slot_size), storage_(slots * slot_size), iov_(slots), addr_(slots),
          msgs_(slots) {}

    // Returns datagrams received (>0), 0 when nothing is readable, or -errno.
    int receive(int fd) noexcept {
        for (size_t i = 0; i < msgs_.size(); ++i) {
            iov_[i] = {storage_.data() + i * slot_size_, slot_size_};
            std::memset(&msgs_[i], 0, sizeof msgs_[i]);
            msgs_[i].msg_hdr.msg_iov = &iov_[i];
            msgs_[i].msg_hdr.msg_iovlen = 1;
            msgs_[i].msg_hdr.msg_name = &addr_[i];
            msgs_[i].msg_hdr.msg_namelen = sizeof addr_[i];
        }
        int n = recvmmsg(fd, msgs_.data(), static_cast<unsigned>(msgs_.size()), MSG_DONTWAIT,
                         nullptr);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
        return n;
    }
    std::span<const uint8_t> datagram(size_t i) const noexcept {
        size_t len = msgs_[i].msg_len < slot_size_ ? msgs_[i].msg_len : slot_size_;
        return {storage_.data() + i * slot_size_, len};
    }
    bool truncated(size_t i) const noexcept { return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
    // Only the kernel (portid 0) may feed us; anything else is ignored.
    bool from_kernel(size_t i) const noexcept { return addr_[i].nl_pid == 0; }
    size_t slots() const noexcept { return msgs_.size(); }

private:
    size_t slot_size_;
    std::vector<uint8_t> storage_;
    std::vector<iovec> iov_;
    std::vector<sockaddr_nl> addr_;
    std::vector<mmsghdr> msgs_;
};

// Send one configuration request with NLM_F_ACK and wait for its ACK.
// Returns 0 or the kernel's errno. Packet messages that arrive meanwhile
// (the queue/group is live as soon as BIND succeeds) are handed to
// `other` so the caller can still give each one its verdict.
inline int request_ack(mnl_socket* nl, nlmsghdr* nlh, uint32_t seq,
                       const std::function<void(const nlmsghdr*)>& other) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return errno;
    std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE * 2);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue;
            return errno;
        }
        int len = static_cast<int>(n);
        for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
             m = mnl_nlmsg_next(m, &len)) {
            if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == seq) {
                const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
                if (m->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) return EBADMSG;
                return -e->error;  // 0 is the ACK
            }
            if (other) other(m);
        }
    }
}

}  // namespace portsentry::kernel::detail
