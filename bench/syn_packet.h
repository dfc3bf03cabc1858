/* One IPv4 + TCP SYN builder for the bench generators (synflood, probe_ban).
 * Both checksums are valid: the victim's stack drops a bad one before the
 * input hook, and the probe would never be queued. */
#ifndef PORTSENTRY_BENCH_SYN_PACKET_H
#define PORTSENTRY_BENCH_SYN_PACKET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SYN_PKT_LEN 40 /* IPv4 (20) + TCP (20), no options */

static inline uint32_t syn_csum_add(uint32_t sum, const uint8_t *p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    return sum;
}

static inline uint16_t syn_csum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* src_be, dst_be: addresses in network byte order. */
static inline void build_syn(uint8_t *p, uint32_t src_be, uint32_t dst_be, uint16_t sport, uint16_t dport,
                             uint32_t seq) {
    memset(p, 0, SYN_PKT_LEN);
    p[0] = 0x45;
    p[3] = SYN_PKT_LEN;
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    memcpy(&p[12], &src_be, 4);
    memcpy(&p[16], &dst_be, 4);
    uint16_t ipsum = syn_csum_fold(syn_csum_add(0, p, 20));
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
    uint32_t sum = syn_csum_add(0, &p[12], 8) + IPPROTO_TCP + 20;
    uint16_t tsum = syn_csum_fold(syn_csum_add(sum, t, 20));
    t[16] = (uint8_t)(tsum >> 8);
    t[17] = (uint8_t)tsum;
}

#endif
