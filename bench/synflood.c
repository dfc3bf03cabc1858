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

#include "syn_packet.h"

#define BATCH 64
#define PKT_LEN SYN_PKT_LEN

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
            build_syn(pkts[i], src.s_addr, dst.s_addr, (uint16_t)(1024 + n % 64000), dport, (uint32_t)n);
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
