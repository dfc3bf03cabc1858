/* nfq_bare: the baseline for bench_queue — the plainest NFQUEUE reader one
 * would write from libmnl's examples/netfilter/nf-queue.c: blocking recv of
 * one packet, one DROP verdict sent per packet, copy range 128. Same socket
 * and queue settings as portsentry's NfQueue (8 MiB receive buffer,
 * NETLINK_NO_ENOBUFS, queue maxlen 8192, fail-open) so that the ratio
 * measures the loop, not the configuration.
 *
 *   nfq_bare QUEUE WARMUP_S SECONDS
 *
 * Prints "ready" once bound, then counts verdicts over SECONDS starting
 * WARMUP_S after the first packet, and prints the rate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static struct mnl_socket *nl;
static unsigned queue_num;
static unsigned long long counted;
static int counting;

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "nfq_bare: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void config(void (*fill)(struct nlmsghdr *, void *), void *arg) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
    fill(nlh, arg);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die("config");
}

static void fill_bind(struct nlmsghdr *nlh, void *arg) {
    (void)arg;
    nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
}
static void fill_params(struct nlmsghdr *nlh, void *arg) {
    (void)arg;
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 128);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 8192);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
}

static int on_packet(const struct nlmsghdr *nlh, void *data) {
    (void)data;
    struct nlattr *attr[NFQA_MAX + 1] = {0};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) return MNL_CB_OK;
    struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *v = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, queue_num);
    nfq_nlmsg_verdict_put(v, (int)ntohl(ph->packet_id), NF_DROP);
    if (mnl_socket_sendto(nl, v, v->nlmsg_len) < 0) die("verdict");
    if (counting) ++counted;
    return MNL_CB_OK;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s QUEUE WARMUP_S SECONDS\n", argv[0]);
        return 2;
    }
    queue_num = (unsigned)atoi(argv[1]);
    double warmup = atof(argv[2]), seconds = atof(argv[3]);

    nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl) die("mnl_socket_open");
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
    int fd = mnl_socket_get_fd(nl);
    int rcvbuf = 8 << 20, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    struct timeval tv = {0, 200000}; /* wake up to check the clock */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    config(fill_bind, NULL);
    config(fill_params, NULL);
    printf("ready\n");
    fflush(stdout);

    char buf[MNL_SOCKET_BUFFER_SIZE];
    double cpu0 = 0;
    double first = 0, start = 0, give_up = now() + warmup + seconds + 10;
    for (;;) {
        double t = now();
        if (!first && t > give_up) break;
        if (start && t >= start + seconds) break;
        if (first && !counting && t >= first + warmup) {
            counting = 1;
            start = t;
            cpu0 = cpu_seconds();
        }
        ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS) continue;
            die("recv");
        }
        if (!first) first = now();
        /* A rejected verdict (NLMSG_ERROR) needs no handling in a baseline. */
        (void)mnl_cb_run(buf, (size_t)n, 0, 0, on_packet, NULL);
    }
    double el = start ? now() - start : 0;
    double cpu = start ? cpu_seconds() - cpu0 : 0;
    /* CPU time per verdict (user + system, the verdict's kernel work included)
     * gives the reader's capacity even when the generator is the bottleneck. */
    printf("nfq_bare verdicts %llu in %.2f s, cpu %.3f s: %.0f pps\n", counted, el, cpu,
           el > 0 ? (double)counted / el : 0.0);
    mnl_socket_close(nl);
    return 0;
}
