/* nfq_ban_bare: the baseline for probe→ban latency (docs/ARCHITECTURE.md: "a bare
 * reader + libnftnl"). The plainest program that does the daemon's job on
 * the hot path: an NFQUEUE reader (blocking recv, one DROP verdict per
 * packet, copy range 128, fail-open: nfq_bare.c's settings) that, after the
 * verdict, adds the IPv4 source to `inet portsentry banned` in one libnftnl
 * batch on a persistent socket and waits for the kernel's ACK — the same
 * order and the same kernel work as the daemon (an interval set, so a start
 * key with a 1 h timeout plus an interval-end key). No engine, no state, no
 * logs, no files.
 *
 *   nfq_ban_bare QUEUE
 *
 * Run inside the victim namespace, after the set exists. Prints "ready" once
 * bound, then runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct mnl_socket *q, *nft;
static unsigned queue_num, nft_portid;
static uint32_t seq = 1;

static void die(const char *what) {
    fprintf(stderr, "nfq_ban_bare: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void ban(uint32_t src_be) {
    static char buf[1 << 16]; /* replies and the batch both fit */
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s) die("nftnl_set_alloc");
    nftnl_set_set_str(s, NFTNL_SET_TABLE, "portsentry");
    nftnl_set_set_str(s, NFTNL_SET_NAME, "banned");
    struct nftnl_set_elem *start = nftnl_set_elem_alloc(), *end = nftnl_set_elem_alloc();
    if (!start || !end) die("nftnl_set_elem_alloc");
    uint32_t next = htonl(ntohl(src_be) + 1);
    nftnl_set_elem_set(start, NFTNL_SET_ELEM_KEY, &src_be, sizeof src_be);
    nftnl_set_elem_set_u64(start, NFTNL_SET_ELEM_TIMEOUT, 3600 * 1000);
    nftnl_set_elem_set(end, NFTNL_SET_ELEM_KEY, &next, sizeof next);
    nftnl_set_elem_set_u32(end, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    nftnl_set_elem_add(s, start);
    nftnl_set_elem_add(s, end);

    struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof buf);
    nftnl_batch_begin(mnl_nlmsg_batch_current(b), seq++);
    mnl_nlmsg_batch_next(b);
    uint32_t elem_seq = seq++;
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWSETELEM, NFPROTO_INET,
                                                 NLM_F_CREATE | NLM_F_ACK, elem_seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    mnl_nlmsg_batch_next(b);
    nftnl_batch_end(mnl_nlmsg_batch_current(b), seq++);
    mnl_nlmsg_batch_next(b);
    nftnl_set_free(s);
    if (mnl_socket_sendto(nft, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0) die("send batch");
    mnl_nlmsg_batch_stop(b);
    /* The ACK (an NLMSG_ERROR with error 0) of the element message. */
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nft, buf, sizeof buf);
        if (n < 0) die("recv ack");
        int r = mnl_cb_run(buf, (size_t)n, elem_seq, nft_portid, NULL, NULL);
        if (r == MNL_CB_STOP) return;
        if (r < 0) die("add element");
    }
}

static int on_packet(const struct nlmsghdr *nlh, void *data) {
    (void)data;
    struct nlattr *attr[NFQA_MAX + 1] = {0};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) return MNL_CB_OK;
    struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *v = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, queue_num);
    nfq_nlmsg_verdict_put(v, (int)ntohl(ph->packet_id), NF_DROP);
    if (mnl_socket_sendto(q, v, v->nlmsg_len) < 0) die("verdict");
    if (attr[NFQA_PAYLOAD] && mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]) >= 20) {
        const uint8_t *ip = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
        uint32_t src;
        memcpy(&src, ip + 12, 4);
        if ((ip[0] >> 4) == 4) ban(src);
    }
    return MNL_CB_OK;
}

static void config(struct nlmsghdr *nlh) {
    if (mnl_socket_sendto(q, nlh, nlh->nlmsg_len) < 0) die("queue config");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s QUEUE\n", argv[0]);
        return 2;
    }
    queue_num = (unsigned)atoi(argv[1]);

    nft = mnl_socket_open(NETLINK_NETFILTER);
    if (!nft || mnl_socket_bind(nft, 0, MNL_SOCKET_AUTOPID) < 0) die("nftables socket");
    nft_portid = mnl_socket_get_portid(nft);

    q = mnl_socket_open(NETLINK_NETFILTER);
    if (!q || mnl_socket_bind(q, 0, MNL_SOCKET_AUTOPID) < 0) die("queue socket");
    int fd = mnl_socket_get_fd(q);
    int rcvbuf = 8 << 20, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
    config(nlh);
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 128);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 8192);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
    config(nlh);
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        ssize_t n = mnl_socket_recvfrom(q, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue;
            die("recv");
        }
        (void)mnl_cb_run(buf, (size_t)n, 0, 0, on_packet, NULL);
    }
}
