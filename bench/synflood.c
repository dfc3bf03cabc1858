/* synflood: the packet generator for bench_queue. Sends TCP SYNs to
 * DST:DPORT through a raw IPv4 socket (we write the IP header) in sendmmsg()
 * batches, varying the source port so every probe is a distinct flow, for
 * SECONDS seconds, then prints how many it sent. Only ever run inside the
 * bench's private network namespace pair (bench_queue starts it there).
 *
 *   synflood SRC DST DPORT SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT_LEN 40

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    return sum;
}

static uint16_t csum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* IPv4 (20 bytes) + TCP SYN (20 bytes), both checksums valid. */
static void build_syn(uint8_t *p, struct in_addr src, struct in_addr dst, uint16_t sport,
                      uint16_t dport, uint32_t seq) {
    memset(p, 0, PKT_LEN);
    p[0] = 0x45;
    p[3] = PKT_LEN;
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    memcpy(&p[12], &src, 4);
    memcpy(&p[16], &dst, 4);
    uint16_t ipsum = csum_fold(csum_add(0, p, 20));
    p[10] = (uint8_t)(ipsum >> 8);
    p[11] = (uint8_t)ipsum;
    uint8_t *t = p + 20;
    t[0] = (uint8_t)(sport >> 8);
    t[1] = (uint8_t)sport;
    t[2] = (uint8_t)(dport >> 8);
    t[3] = (uint8_t)dport;
    t[4] = (uint8_t)(seq >> 24);
    t[5] = (uint8_t)(seq >> 16);
    t[6] = (uint8_t)(seq >> 8);
    t[7] = (uint8_t)seq;
    t[12] = 5 << 4;
    t[13] = 0x02; /* SYN */
    t[14] = 0xff;
    t[15] = 0xff;
    uint32_t sum = csum_add(0, &p[12], 8) + IPPROTO_TCP + 20;
    uint16_t tsum = csum_fold(csum_add(sum, t, 20));
    t[16] = (uint8_t)(tsum >> 8);
    t[17] = (uint8_t)tsum;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SRC DST DPORT SECONDS\n", argv[0]);
        return 2;
    }
    struct in_addr src, dst;
    if (inet_pton(AF_INET, argv[1], &src) != 1 || inet_pton(AF_INET, argv[2], &dst) != 1) {
        fprintf(stderr, "synflood: bad address\n");
        return 2;
    }
    uint16_t dport = (uint16_t)atoi(argv[3]);
    double seconds = atof(argv[4]);

    int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW); /* implies IP_HDRINCL */
    if (s < 0) {
        fprintf(stderr, "synflood: socket: %s\n", strerror(errno));
        return 1;
    }
    static uint8_t pkts[BATCH][PKT_LEN];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; ++i) {
        iov[i].iov_base = pkts[i];
        iov[i].iov_len = PKT_LEN;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
    }
    uint64_t sent = 0, errors = 0;
    uint32_t n = 0;
    double end = now() + seconds;
    while (now() < end) {
        for (int i = 0; i < BATCH; ++i, ++n)
            build_syn(pkts[i], src, dst, (uint16_t)(1024 + n % 64000), dport, n);
        int r = sendmmsg(s, msgs, BATCH, 0);
        if (r < 0) {
            ++errors; /* ENOBUFS under load: keep going */
            continue;
        }
        sent += (uint64_t)r;
    }
    printf("synflood sent %llu packets in %.1f s (%.0f pps), %llu send errors\n",
           (unsigned long long)sent, seconds, (double)sent / seconds, (unsigned long long)errors);
    close(s);
    return 0;
}
