#include "portsentry/kernel/nft_monitor.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

#include "nft_build.hpp"
#include "nl_socket.hpp"
#include "portsentry/base/error.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::kernel {

namespace {

// The table a deletion notification names, or "" for other messages.
std::string deleted_in(const nlmsghdr* nlh) {
    const auto type = static_cast<uint16_t>(NFNL_MSG_TYPE(nlh->nlmsg_type));
    auto table_of = [&](auto alloc, auto parse, auto get, auto release, uint16_t attr) {
        auto* o = alloc();
        if (!o) return std::string();
        std::string name;
        if (parse(nlh, o) == 0)
            if (const char* t = get(o, attr)) name = t;
        release(o);
        return name;
    };
    switch (type) {
    case NFT_MSG_DELTABLE:
        return table_of(nftnl_table_alloc, nftnl_table_nlmsg_parse, nftnl_table_get_str, nftnl_table_free,
                        NFTNL_TABLE_NAME);
    case NFT_MSG_DELCHAIN:
        return table_of(nftnl_chain_alloc, nftnl_chain_nlmsg_parse, nftnl_chain_get_str, nftnl_chain_free,
                        NFTNL_CHAIN_TABLE);
    case NFT_MSG_DELRULE:
        return table_of(nftnl_rule_alloc, nftnl_rule_nlmsg_parse, nftnl_rule_get_str, nftnl_rule_free,
                        NFTNL_RULE_TABLE);
    case NFT_MSG_DELSET:
        return table_of(nftnl_set_alloc, nftnl_set_nlmsg_parse, nftnl_set_get_str, nftnl_set_free, NFTNL_SET_TABLE);
    default:
        return {};  // additions, element changes (bans come and go), generations
    }
}

}  // namespace

struct NftMonitor::Impl {
    detail::MnlSocket nl;
    uint32_t own_portid = 0;
    std::vector<char> buf = std::vector<char>(MNL_SOCKET_BUFFER_SIZE * 4);
};

NftMonitor::NftMonitor(uint32_t own_portid) : impl_(std::make_unique<Impl>()) {
    impl_->own_portid = own_portid;
    impl_->nl.reset(mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!impl_->nl) throw base::sys_error("nftables monitor: netlink socket");
    if (mnl_socket_bind(impl_->nl.get(), 1U << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0)
        throw base::sys_error("nftables monitor: bind to NFNLGRP_NFTABLES");
    // Every ban is an element notification too: room for bursts of them.
    detail::set_receive_buffer(mnl_socket_get_fd(impl_->nl.get()), 8 << 20);
}

NftMonitor::~NftMonitor() = default;

int NftMonitor::fd() const { return mnl_socket_get_fd(impl_->nl.get()); }

void NftMonitor::mute(bool on) {
    const int group = NFNLGRP_NFTABLES;
    ::setsockopt(fd(), SOL_NETLINK, on ? NETLINK_DROP_MEMBERSHIP : NETLINK_ADD_MEMBERSHIP, &group, sizeof group);
}

bool NftMonitor::drain() {
    bool changed = false;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(impl_->nl.get(), impl_->buf.data(), impl_->buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {  // a burst of changes overflowed us: assume the worst
                ++counters_.overruns;
                changed = true;
                continue;
            }
            break;  // EAGAIN: all read
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(impl_->buf.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES) continue;
            // nf_tables stamps notifications with the portid of the socket
            // that made the change: ours are the daemon's own replaces.
            if (nlh->nlmsg_pid == impl_->own_portid) continue;
            const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
            if (nfg->nfgen_family != NFPROTO_INET) continue;
            if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_DELSETELEM) {
                // Portid 0 is the kernel itself (an element timing out), not a person.
                if (nlh->nlmsg_pid != 0) collect_removed(nlh);
                continue;
            }
            if (deleted_in(nlh) == kTable) {
                ++counters_.foreign_changes;
                changed = true;
            }
        }
    }
    return changed;
}

void NftMonitor::collect_removed(const void* msg) {
    const auto* nlh = static_cast<const nlmsghdr*>(msg);
    std::unique_ptr<nftnl_set, detail::SetDel> set(nftnl_set_alloc());
    if (!set || nftnl_set_elems_nlmsg_parse(nlh, set.get()) < 0) return;
    const char* table = nftnl_set_get_str(set.get(), NFTNL_SET_TABLE);
    const char* name = nftnl_set_get_str(set.get(), NFTNL_SET_NAME);
    if (!table || !name || std::strcmp(table, kTable) != 0) return;
    const bool v6 = std::strcmp(name, "banned6") == 0;
    if (!v6 && std::strcmp(name, "banned") != 0) return;
    auto* it = nftnl_set_elems_iter_create(set.get());
    if (!it) return;
    while (nftnl_set_elem* e = nftnl_set_elems_iter_next(it)) {
        // An interval is a start element and an END element: the start names the ban.
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
            (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END))
            continue;
        uint32_t len = 0;
        const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
        if (!key || len != (v6 ? 16U : 4U)) continue;
        removed_.push_back(net::IpAddr::from_bytes(v6 ? AF_INET6 : AF_INET, static_cast<const uint8_t*>(key)));
        ++counters_.foreign_unbans;
    }
    nftnl_set_elems_iter_destroy(it);
}

std::vector<net::IpAddr> NftMonitor::take_removed_bans() { return std::exchange(removed_, {}); }

void NftMonitor::discard() {
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(impl_->nl.get(), impl_->buf.data(), impl_->buf.size());
        if (n < 0 && errno != EINTR && errno != ENOBUFS) return;  // EAGAIN: empty
    }
}

}  // namespace portsentry::kernel
