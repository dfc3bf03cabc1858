#!/usr/bin/python3
# A stub DNS resolver for bench_probe_ban.sh: answers every PTR query with
# "probe-A-B-C-D.bench.example." after DELAY_MS milliseconds (a slow resolver,
# as RESOLVE_HOST meets one), anything else with NXDOMAIN. Raw UDP, one timer
# per answer so slow answers overlap. Usage: stub_dns.py ADDR PORT DELAY_MS
import socket
import struct
import sys
import threading


def qname(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += n + 1
    return labels, off + 1


def name_bytes(labels):
    return b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0"


def answer(msg):
    qid, _flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    labels, off = qname(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    if qtype == 12 and labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        host = "probe-" + "-".join(reversed(labels[:4])) + ".bench.example"
        rdata = name_bytes(host.split("."))
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, len(rdata)) + rdata
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
    return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN


def main():
    addr, port, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000.0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            reply = answer(msg)
        except (IndexError, struct.error):
            continue
        if reply:
            threading.Timer(delay, s.sendto, (reply, peer)).start()


if __name__ == "__main__":
    main()
