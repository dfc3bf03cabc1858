// The only file that talks to the nf_tables netlink socket: send a batch
// built by nft_build.cpp, read one reply per acknowledged message, and turn a
// refusal into an error naming the object (and expression) that caused it.
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include "nft_build.hpp"
#include "nl_socket.hpp"
#include "portsentry/base/error.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::kernel {

namespace {

// One kernel reply to one of our messages.
struct Reply {
    uint32_t seq = 0;
    int err = 0;                     // positive errno, 0 = ACK
    std::string ext_msg;             // NLMSGERR_ATTR_MSG
    std::optional<uint32_t> ext_off; // NLMSGERR_ATTR_OFFS: offset into our message
};

// Receive buffer of the socket. Every acknowledged message of a batch gets its
// reply queued before sendmsg() returns (nfnetlink processes the batch in the
// sender's context), one skb each, so a large batch needs room for thousands
// of small skbs; 4 MiB covers ~4000 replies at ~1 KiB truesize each.
constexpr int kRcvBuf = 4 << 20;
// Replies are already queued when sendmsg() returns; this is only a guard
// against waiting forever if the kernel ever drops one.
constexpr int kRecvTimeoutSec = 10;

std::string hint_for(int err, uint16_t type, const std::string& part) {
    switch (err) {
    case EPERM: return "needs CAP_NET_ADMIN (run as root)";
    case ENOENT:
        if (part.find("(queue)") != std::string::npos)
            return "this kernel has no nft queue expression (CONFIG_NFT_QUEUE): use --steer xt-queue or nflog";
        if (part.find("(xt NFQUEUE)") != std::string::npos)
            return "nft_compat or xt_NFQUEUE is not available: use --steer nflog";
        if (part.find("(log)") != std::string::npos) return "nft log / nfnetlink_log is not available";
        if (type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM)
            return "table inet portsentry or its set is missing (deleted by someone else?)";
        return "";
    case EOPNOTSUPP:
        return part.empty() ? "" : "the kernel does not support this expression";
    case ENFILE: return "the set is full (its size bound): raise ban_set_size";
    case EEXIST:
        if (type == NFT_MSG_NEWSETELEM) return "overlaps an element already in the set (a host inside a banned prefix?)";
        return "";
    case EMSGSIZE: return "the batch exceeds the socket buffer";
    default: return "";
    }
}

NftError make_error(const detail::Batch& b, const Reply& r) {
    const detail::BatchMsg* m = b.find(r.seq);
    std::string object = m ? m->object : fmt::format("message seq {}", r.seq);
    if (m && r.seq == b.begin_seq()) object = "batch";
    std::string part;
    if (m && r.ext_off) {
        for (auto& [off, label] : m->parts)
            if (off <= *r.ext_off) part = label;
    }
    std::string what = fmt::format("nftables: {}{}: {}", object, part.empty() ? "" : ", " + part, std::strerror(r.err));
    if (!r.ext_msg.empty()) what += " (kernel: " + r.ext_msg + ")";
    std::string hint = hint_for(r.err, m ? m->type : 0, part);
    if (!hint.empty()) what += "; " + hint;
    return NftError(r.err, part.empty() ? object : object + ", " + part, what);
}

}  // namespace

struct Nft::Impl {
    detail::MnlSocket nl;
    uint32_t portid = 0;
    uint32_t seq = 0;
    int sndbuf = 0;
    size_t applied_rules = 0;  // rules of the last apply() (ruleset_intact)

    Impl() {
        nl.reset(mnl_socket_open(NETLINK_NETFILTER));
        if (!nl) throw base::sys_error("nftables: netlink socket");
        if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
            throw base::sys_error("nftables: netlink bind");
        portid = mnl_socket_get_portid(nl.get());
        int one = 1;
        // Extended ACK: the kernel's message and the offset of the refused
        // attribute (which expression of a rule); capped ACKs: replies do not
        // echo our whole message back.
        mnl_socket_setsockopt(nl.get(), NETLINK_EXT_ACK, &one, sizeof one);
        mnl_socket_setsockopt(nl.get(), NETLINK_CAP_ACK, &one, sizeof one);
        int fd = mnl_socket_get_fd(nl.get());
        // FORCE needs CAP_NET_ADMIN, which everything here needs anyway; without
        // it the plain option (capped by rmem_max) is still better than nothing.
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kRcvBuf, sizeof kRcvBuf) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof kRcvBuf);
        timeval tv{kRecvTimeoutSec, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        // Sequence numbers only need to be distinct on this socket; start
        // from the clock like nft, so replies to an earlier process are ignored.
        seq = static_cast<uint32_t>(time(nullptr));
    }

    // netlink_sendmsg() refuses a message larger than the send buffer (EMSGSIZE).
    void ensure_sndbuf(size_t len) {
        if (static_cast<int64_t>(len) + 4096 <= sndbuf) return;
        int want = static_cast<int>(std::min<size_t>(len + 4096, INT32_MAX / 2));
        int fd = mnl_socket_get_fd(nl.get());
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
        sndbuf = want;
    }

    // Sends the batch and returns every non-zero reply. Throws only for socket
    // failures (not for kernel refusals).
    std::vector<Reply> talk(const detail::Batch& b) {
        seq = b.next_seq();
        ensure_sndbuf(b.bytes().size());
        if (mnl_socket_sendto(nl.get(), b.bytes().data(), b.bytes().size()) < 0)
            throw base::sys_error("nftables: send batch");
        std::set<uint32_t> pending;
        for (auto& m : b.msgs())
            if (m.acked) pending.insert(m.seq);
        std::vector<Reply> errors;
        bool batch_refused = false;
        std::array<char, 65536> buf;
        int flags = 0;
        while (!pending.empty() || batch_refused) {
            ssize_t n = recv(mnl_socket_get_fd(nl.get()), buf.data(), buf.size(), flags);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (batch_refused && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    throw std::runtime_error(fmt::format(
                        "nftables: no reply from the kernel for {} of {} messages", pending.size(), b.acked_count()));
                // ENOBUFS: replies were dropped; the batch outcome is unknown.
                throw base::sys_error("nftables: receive replies");
            }
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, static_cast<int>(n));
                 nlh = mnl_nlmsg_next(nlh, reinterpret_cast<int*>(&n))) {
                if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != portid) continue;
                if (!b.find(nlh->nlmsg_seq)) continue;  // stale reply to an earlier batch
                auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                Reply r;
                r.seq = nlh->nlmsg_seq;
                r.err = -e->error;
                if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
                    size_t off = sizeof(nlmsgerr);
                    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(nlmsghdr);
                    const char* p = reinterpret_cast<const char*>(e) + off;
                    const char* end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
                    while (p + sizeof(nlattr) <= end) {
                        auto* a = reinterpret_cast<const nlattr*>(p);
                        if (a->nla_len < sizeof(nlattr) || p + a->nla_len > end) break;
                        uint16_t t = a->nla_type & NLA_TYPE_MASK;
                        const char* data = p + NLA_HDRLEN;
                        size_t dlen = a->nla_len - NLA_HDRLEN;
                        if (t == NLMSGERR_ATTR_MSG && dlen > 0) r.ext_msg.assign(data, strnlen(data, dlen));
                        if (t == NLMSGERR_ATTR_OFFS && dlen >= 4) {
                            uint32_t o;
                            std::memcpy(&o, data, 4);
                            r.ext_off = o;
                        }
                        p += NLA_ALIGN(a->nla_len);
                    }
                }
                pending.erase(r.seq);
                // An error against the batch-begin message means the whole batch
                // was refused (permissions, commit failure): others may not reply.
                if (r.seq == b.begin_seq() && r.err) {
                    batch_refused = true;
                    flags = MSG_DONTWAIT;
                }
                if (r.err) errors.push_back(std::move(r));
            }
            if (pending.empty() && !batch_refused) break;
        }
        return errors;
    }

    // One GET request (`build` fills the header it is given) and its replies:
    // each message of this request goes to `on_msg` until the dump ends
    // (NLMSG_DONE) or the ACK arrives. Returns 0 or the kernel's errno.
    int query(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& build,
              const std::function<void(const nlmsghdr*)>& on_msg, const char* what) {
        std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 8);
        const uint32_t req = seq++;
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), type, NFPROTO_INET, flags, req);
        build(nlh);
        if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0)
            throw base::sys_error(fmt::format("nftables: {}", what));
        for (;;) {  // replies and the final ACK/DONE may come in separate reads
            ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                throw base::sys_error(fmt::format("nftables: {} reply", what));
            }
            int len = static_cast<int>(n);
            for (auto* r = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(r, len);
                 r = mnl_nlmsg_next(r, &len)) {
                if (r->nlmsg_seq != req) continue;
                if (r->nlmsg_type == NLMSG_DONE) return 0;
                if (r->nlmsg_type == NLMSG_ERROR) return -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(r))->error;
                on_msg(r);
            }
        }
    }

    // Runs a batch; the first (most specific) kernel error is thrown.
    void run(const detail::Batch& b) {
        auto errors = talk(b);
        if (errors.empty()) return;
        // Prefer an error tied to an object over the batch-level one.
        auto it = std::find_if(errors.begin(), errors.end(), [&](const Reply& r) { return r.seq != b.begin_seq(); });
        throw make_error(b, it != errors.end() ? *it : errors.front());
    }
};

Nft::Nft() : impl_(std::make_unique<Impl>()) {}
Nft::~Nft() = default;

std::vector<Backend> Nft::probe_backends() {
    std::vector<Backend> ok;
    const std::string table = fmt::format("portsentry_probe_{}", getpid());
    for (Backend b : {Backend::queue, Backend::xt_queue, Backend::nflog}) {
        // Never committed: the kernel loads modules and checks the rule, then
        // aborts the transaction, so no table ever appears (not even briefly).
        detail::Batch batch = detail::build_probe(b, table, impl_->seq);
        if (impl_->talk(batch).empty()) ok.push_back(b);
    }
    return ok;
}

void Nft::apply(const RulesetSpec& spec, const std::vector<BanElement>& bans, const std::vector<BanElement>& fleet) {
    auto b = detail::build_apply(spec, bans, impl_->seq, true, fleet);
    impl_->run(b);
    impl_->applied_rules = detail::rule_count(spec);
}

size_t Nft::rule_count() {
    size_t count = 0;
    int err = impl_->query(
        NFT_MSG_GETRULE, NLM_F_DUMP,
        [](nlmsghdr* nlh) {
            std::unique_ptr<nftnl_rule, detail::RuleDel> filter(nftnl_rule_alloc());
            if (!filter) throw std::bad_alloc();
            nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, kTable);  // the kernel dumps this table only
            nftnl_rule_nlmsg_build_payload(nlh, filter.get());
        },
        [&](const nlmsghdr* r) {
            if (NFNL_MSG_TYPE(r->nlmsg_type) != NFT_MSG_NEWRULE) return;
            std::unique_ptr<nftnl_rule, detail::RuleDel> rule(nftnl_rule_alloc());
            if (rule && nftnl_rule_nlmsg_parse(r, rule.get()) == 0 &&
                nftnl_rule_get_u32(rule.get(), NFTNL_RULE_FAMILY) == NFPROTO_INET) {
                const char* t = nftnl_rule_get_str(rule.get(), NFTNL_RULE_TABLE);
                if (t && std::strcmp(t, kTable) == 0) ++count;
            }
        },
        "list rules");
    if (err == ENOENT) return 0;
    if (err) throw std::system_error(err, std::generic_category(), "nftables: list rules of inet portsentry");
    return count;
}

bool Nft::ruleset_intact() {
    if (!table_exists()) return false;
    // A flushed table or a deleted chain leaves the table with fewer rules;
    // a set cannot go while a rule still uses it.
    return impl_->applied_rules == 0 || rule_count() == impl_->applied_rules;
}

void Nft::check(const RulesetSpec& spec) { impl_->run(detail::build_apply(spec, {}, impl_->seq, false)); }

std::vector<BanRefusal> Nft::add_bans(const std::vector<BanElement>& bans, const BanSets& sets) {
    std::vector<BanRefusal> refused;
    if (bans.empty()) return refused;
    try {
        impl_->run(detail::build_add_bans(bans, impl_->seq, sets));
        return refused;
    } catch (const NftError& e) {
        if (bans.size() == 1) {
            refused.push_back({bans.front().prefix, e});
            return refused;
        }
    }
    // One refused element aborts its whole batch: each alone, once.
    for (const auto& b : bans) {
        try {
            impl_->run(detail::build_add_bans({b}, impl_->seq, sets));
        } catch (const NftError& e) {
            refused.push_back({b.prefix, e});
        }
    }
    return refused;
}

size_t Nft::del_bans(const std::vector<net::Cidr>& prefixes, const BanSets& sets) {
    // One acknowledged message per prefix: thousands of ACKs at once would
    // overrun the receive buffer, so large unbans go in slices.
    if (prefixes.size() > kDelSlice) {
        size_t deleted = 0;
        for (size_t i = 0; i < prefixes.size(); i += kDelSlice) {
            const auto end = std::min(i + kDelSlice, prefixes.size());
            deleted += del_bans(std::vector<net::Cidr>(prefixes.begin() + static_cast<std::ptrdiff_t>(i),
                                                       prefixes.begin() + static_cast<std::ptrdiff_t>(end)),
                                sets);
        }
        return deleted;
    }
    std::vector<net::Cidr> todo = prefixes;
    // Deleting an absent element fails its message with ENOENT and aborts the
    // batch (kernels before 6.3 have no DESTROYSETELEM): drop those and resend.
    // Each round removes at least one prefix, so this ends.
    while (!todo.empty()) {
        detail::Batch b = detail::build_del_bans(todo, impl_->seq, sets);
        auto errors = impl_->talk(b);
        if (errors.empty()) return todo.size();
        std::set<size_t> absent;
        for (auto& r : errors) {
            if (r.err != ENOENT || r.seq == b.begin_seq()) throw make_error(b, r);
            // Messages: begin, then one per prefix in order.
            absent.insert(r.seq - b.begin_seq() - 1);
        }
        std::vector<net::Cidr> rest;
        for (size_t i = 0; i < todo.size(); ++i)
            if (!absent.count(i)) rest.push_back(todo[i]);
        todo = std::move(rest);
    }
    return 0;
}

void Nft::replace_bans(const std::vector<net::Cidr>& del, const std::vector<BanElement>& add, const BanSets& sets) {
    try {
        impl_->run(detail::build_replace_bans(del, add, impl_->seq, sets));
        return;
    } catch (const NftError& e) {
        if (e.error() != ENOENT) throw;  // a host ban timed out in the kernel already
    }
    del_bans(del, sets);
    if (auto refused = add_bans(add, sets); !refused.empty()) throw refused.front().error;
}

void Nft::set_never(const std::vector<net::Cidr>& prefixes) {
    impl_->run(detail::build_set_never(prefixes, impl_->seq));
}

bool Nft::table_exists() {
    bool found = false;
    int err = impl_->query(
        NFT_MSG_GETTABLE, NLM_F_ACK,
        [](nlmsghdr* nlh) {
            std::unique_ptr<nftnl_table, detail::TableDel> t(nftnl_table_alloc());
            if (!t) throw std::bad_alloc();
            nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTable);
            nftnl_table_nlmsg_build_payload(nlh, t.get());
        },
        [&](const nlmsghdr* r) { found |= NFNL_MSG_TYPE(r->nlmsg_type) == NFT_MSG_NEWTABLE; }, "get table");
    if (err == ENOENT) return false;
    if (err) throw std::system_error(err, std::generic_category(), "nftables: get table inet portsentry");
    return found;
}

uint32_t Nft::portid() const { return impl_->portid; }

void Nft::remove_table() { impl_->run(detail::build_remove_table(impl_->seq)); }

}  // namespace portsentry::kernel
