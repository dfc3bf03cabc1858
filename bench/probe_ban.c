/* probe_ban: probe→ban latency. Sends one TCP SYN at a time from a fresh
 * source address (raw socket in the attacker's network namespace, source
 * written by us) and waits for the nftables event announcing that address as
 * a new element of set `banned` (a netlink socket in the victim's namespace
 * subscribed to NFNLGRP_NFTABLES, which is what `nft monitor` reads). The
 * event is sent at commit, i.e. when the element is visible to the packet
 * path, so send → event is "probe sent" to "ban in force".
 *
 *   probe_ban VICTIM_NETNS ATTACKER_NETNS DST DPORT COUNT FIRST_SRC [GAP_MS=50] [RAW_OUT]
 *
 * VICTIM_NETNS/ATTACKER_NETNS are namespace files (/run/netns/NAME). Sources
 * are FIRST_SRC, FIRST_SRC+1, ... (use a range the victim has never seen).
 * Whoever bans (the daemon or nfq_ban_bare) must be running already. Prints
 * p50/p90/p99/max in µs and the number of probes with no ban within 1 s;
 * RAW_OUT, if given, receives one latency per line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "syn_packet.h"

#define PKT_LEN SYN_PKT_LEN
#define BAN_WAIT_MS 1000 /* a ban slower than this counts as missed */

static void die(const char *what) {
    fprintf(stderr, "probe_ban: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void enter(const char *netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(netns);
    if (setns(fd, CLONE_NEWNET) < 0) die("setns");
    close(fd);
}

/* Does this netlink message add `want` (network order) to set "banned"?
 * The set is an interval set: an element comes as a start key and an
 * interval-end key (address + 1); only the start counts. */
struct match {
    uint32_t want;
    int found;
};

static int elem_cb(struct nftnl_set_elem *e, void *data) {
    struct match *m = data;
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
        (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END))
        return 0;
    uint32_t len = 0;
    const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (key && len == 4 && memcmp(key, &m->want, 4) == 0) m->found = 1;
    return 0;
}

static int event_cb(const struct nlmsghdr *nlh, void *data) {
    if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWSETELEM) return MNL_CB_OK;
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s) return MNL_CB_ERROR;
    if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
        const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
        if (name && strcmp(name, "banned") == 0) nftnl_set_elem_foreach(s, elem_cb, data);
    }
    nftnl_set_free(s);
    return MNL_CB_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, int n, double p) {
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
    if (argc < 7 || argc > 9) {
        fprintf(stderr, "usage: %s VICTIM_NETNS ATTACKER_NETNS DST DPORT COUNT FIRST_SRC [GAP_MS] [RAW_OUT]\n",
                argv[0]);
        return 2;
    }
    struct in_addr dst, first;
    if (inet_pton(AF_INET, argv[3], &dst) != 1 || inet_pton(AF_INET, argv[6], &first) != 1) {
        fprintf(stderr, "probe_ban: bad address\n");
        return 2;
    }
    uint16_t dport = (uint16_t)atoi(argv[4]);
    int count = atoi(argv[5]);
    int gap_ms = argc > 7 ? atoi(argv[7]) : 50;
    if (count <= 0) return 2;

    /* Sockets keep the namespace they were created in, so one process (one
     * clock) can watch the victim and send from the attacker. */
    enter(argv[1]);
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (!nl) die("mnl_socket_open");
    if (mnl_socket_bind(nl, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) die("bind NFNLGRP_NFTABLES");
    int nfd = mnl_socket_get_fd(nl);
    int rcvbuf = 4 << 20;
    /* Events for other elements (interval ends, earlier bans) must never be
     * lost to an overrun: a lost event would read as a missed ban. */
    setsockopt(nfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    enter(argv[2]);
    int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW); /* implies IP_HDRINCL */
    if (raw < 0) die("raw socket");
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};

    double *lat = calloc((size_t)count, sizeof *lat);
    if (!lat) die("calloc");
    int got = 0, missed = 0;
    static char buf[1 << 16];
    for (int i = 0; i < count; ++i) {
        uint32_t src = htonl(ntohl(first.s_addr) + (uint32_t)i);
        uint8_t pkt[PKT_LEN];
        build_syn(pkt, src, dst.s_addr, (uint16_t)(20000 + i % 40000), dport, 1);
        struct match m = {src, 0};
        double t0 = now_us();
        if (sendto(raw, pkt, PKT_LEN, 0, (struct sockaddr *)&to, sizeof to) != PKT_LEN) die("sendto");
        double t1 = 0;
        while (!m.found) {
            int left = BAN_WAIT_MS - (int)((now_us() - t0) / 1000);
            if (left <= 0) break;
            struct pollfd p = {nfd, POLLIN, 0};
            int r = poll(&p, 1, left);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) die("poll");
            if (r == 0) break;
            ssize_t n = recv(nfd, buf, sizeof buf, 0);
            t1 = now_us();
            if (n < 0) {
                if (errno == ENOBUFS) {
                    fprintf(stderr, "probe_ban: event socket overrun\n");
                    continue;
                }
                die("recv");
            }
            (void)mnl_cb_run(buf, (size_t)n, 0, 0, event_cb, &m);
        }
        if (m.found) lat[got++] = t1 - t0;
        else ++missed;
        /* Let the banner finish its after-ban work (logs, files) so each probe
         * meets an idle banner, as a lone probe does. */
        struct timespec gap = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
        nanosleep(&gap, NULL);
    }
    if (argc > 8) {
        FILE *f = fopen(argv[8], "w");
        if (!f) die(argv[8]);
        for (int i = 0; i < got; ++i) fprintf(f, "%.1f\n", lat[i]);
        fclose(f);
    }
    if (got == 0) {
        printf("probe_ban: n=0 missed=%d\n", missed);
        return 1;
    }
    qsort(lat, (size_t)got, sizeof *lat, cmp_double);
    printf("probe_ban: n=%d missed=%d p50 %.1f us p90 %.1f us p99 %.1f us max %.1f us\n", got, missed,
           pct(lat, got, 50), pct(lat, got, 90), pct(lat, got, 99), lat[got - 1]);
    free(lat);
    mnl_socket_close(nl);
    close(raw);
    return missed == 0 ? 0 : 1;
}
