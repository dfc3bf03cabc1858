#!/usr/bin/python3
"""Writes the packet seed corpus, tests/fuzz/corpus/packet/, deterministically.

Each seed is an L3 packet as NFQUEUE/NFLOG hand it over (starting at the IP
header). Checksums are left zero: the parser never reads them. Run from
anywhere; rerunning rewrites the same bytes.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")

SRC4, DST4 = bytes([198, 51, 100, 2]), bytes([192, 0, 2, 1])
SRC6 = bytes.fromhex("20010db8000000000000000000000002")  # 2001:db8::2
DST6 = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def tcp(sport, dport, flags, options=b"", payload=b""):
    assert len(options) % 4 == 0
    doff = 5 + len(options) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, doff << 4, flags, 1024, 0, 0) + options + payload


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(proto, l4, options=b"", frag=0x4000, total=None):
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    total = 4 * ihl + len(l4) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, frag, 64, proto, 0, SRC4, DST4) + options + l4


def ipv6(next_header, payload, plen=None):
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB16s16s", 0x60000000, plen, next_header, 64, SRC6, DST6) + payload


def ext(next_header, body):
    """Generic extension header (hop-by-hop, routing, destination options)."""
    data = bytes([next_header, 0]) + body
    assert len(data) % 8 == 0
    return bytes([next_header, len(data) // 8 - 1]) + body


def frag6(next_header, offset, more):
    return struct.pack("!BBHI", next_header, 0, (offset << 3) | int(more), 0xDEADBEEF)


def ah(next_header, icv):
    data_len = 12 + len(icv)
    return struct.pack("!BBHII", next_header, data_len // 4 - 2, 0, 0x1000, 1) + icv


NMAP_SYN_OPTS = bytes.fromhex("020405b4" "0103030a" "0101080a" "ffffffff" "00000000" "04020000")
PADN4 = bytes([1, 4, 0, 0, 0, 0])

seeds = {
    "v4-tcp-syn": ipv4(6, tcp(40000, 995, SYN)),
    "v4-tcp-syn-options": ipv4(6, tcp(40000, 22, SYN, NMAP_SYN_OPTS)),
    "v4-tcp-fin": ipv4(6, tcp(40001, 25, FIN)),
    "v4-tcp-null": ipv4(6, tcp(40002, 80, 0)),
    "v4-tcp-xmas": ipv4(6, tcp(40003, 23, FIN | PSH | URG)),
    "v4-tcp-ack": ipv4(6, tcp(40004, 443, ACK)),
    "v4-tcp-maimon": ipv4(6, tcp(40005, 111, FIN | ACK)),
    "v4-tcp-synfin": ipv4(6, tcp(40006, 139, SYN | FIN)),
    "v4-tcp-all-flags": ipv4(6, tcp(40007, 1, 0xFF)),
    "v4-ipopt-router-alert": ipv4(6, tcp(40008, 80, ACK), options=bytes([0x94, 4, 0, 0])),
    "v4-ipopt-record-route": ipv4(6, tcp(40009, 79, SYN), options=bytes([7, 11, 4]) + bytes(8) + b"\x00"),
    "v4-ihl15": ipv4(17, udp(53, 161), options=bytes([1] * 40)),
    "v4-udp": ipv4(17, udp(53000, 161)),
    "v4-udp-payload": ipv4(17, udp(53000, 137, b"\x00" * 50)),
    "v4-frag-first": ipv4(17, udp(53000, 69, b"A" * 16), frag=0x2000),
    "v4-frag-later": ipv4(17, b"B" * 24, frag=0x00B9),
    "v4-icmp-echo": ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])),
    "v4-copy-range-cut": ipv4(6, tcp(40010, 8080, PSH | ACK, payload=b"x" * 200))[:128],
    "v4-padded": ipv4(6, tcp(40011, 21, SYN)) + bytes(6),
    "v4-udp-badlen": ipv4(17, struct.pack("!HHHH", 1, 2, 3, 0)),
    "v6-tcp-syn": ipv6(6, tcp(40000, 22, SYN)),
    "v6-tcp-syn-options": ipv6(6, tcp(40000, 443, SYN, NMAP_SYN_OPTS)),
    "v6-tcp-xmas": ipv6(6, tcp(40001, 23, FIN | PSH | URG)),
    "v6-udp": ipv6(17, udp(53000, 161)),
    "v6-hbh-frag-tcp": ipv6(0, ext(44, PADN4) + frag6(6, 0, True) + tcp(40960, 22, SYN)),
    "v6-dstopt-routing-udp": ipv6(60, ext(43, PADN4) + ext(17, bytes([0, 0, 0, 0, 0, 0])) + udp(1234, 500)),
    "v6-ah-udp": ipv6(51, ah(17, bytes(range(12))) + udp(1234, 500)),
    "v6-frag-later": ipv6(44, frag6(6, 181, False) + b"C" * 16),
    "v6-no-next-header": ipv6(59, b""),
    "v6-icmpv6-echo": ipv6(58, bytes([128, 0, 0, 0, 0, 1, 0, 1])),
    "v6-many-dstopts": ipv6(60, b"".join(ext(60 if i < 8 else 17, PADN4) for i in range(9)) + udp(1, 7)),
    "bad-version-5": b"\x55" + ipv4(6, tcp(1, 2, SYN))[1:],
}

# Truncated copies: cut inside each header of a representative packet.
for name, cut in (("v4-tcp-syn", 0), ("v4-tcp-syn", 1), ("v4-tcp-syn", 19), ("v4-tcp-syn", 33),
                  ("v6-hbh-frag-tcp", 39), ("v6-hbh-frag-tcp", 45), ("v6-hbh-frag-tcp", 55),
                  ("v6-hbh-frag-tcp", 70), ("v6-udp", 47)):
    seeds[f"trunc-{name}-{cut}"] = seeds[name][:cut]

os.makedirs(OUT, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {OUT}")
