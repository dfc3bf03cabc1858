#!/usr/bin/python3
"""One TCP SYN from each of many local source addresses, paced.

Usage (inside the attacker's namespace):
    fleet_probe.py DST PORT RATE_PER_S SRC_FILE [JITTER=0.5]

SRC_FILE: one local source address a line (already on an interface here).
Gaps between probes are 1/RATE times a uniform random factor in
[1 - JITTER, 1 + JITTER] (fixed seed): without it, probes at 10/s against a
100 ms poll would all land at the same phase of the poll cycle.
For each source, at its due time: a non-blocking connect() bound to that
source (the kernel sends the SYN at once), and a line
    <epoch seconds, µs> <source>
on stdout. Each socket is kept open for 3 s (the kernel's retransmissions
are dropped once the source is banned), then closed: a 1000-probe burst stays
below the default limit of 1024 open files.
Prints a summary on stderr: probes sent, wall time, achieved rate.
"""
import collections
import random
import socket
import sys
import time


def main():
    dst, port, rate, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    jitter = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
    rnd = random.Random(14)
    with open(path) as f:
        srcs = [ln.strip() for ln in f if ln.strip()]
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    keep = collections.deque()
    t0 = time.time() + 0.05
    due = t0
    for src in srcs:
        while True:
            d = due - time.time()
            if d <= 0:
                break
            time.sleep(d)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        t = time.time()
        s.connect_ex((dst, port))
        sys.stdout.write(f"{t:.6f} {src}\n")
        keep.append((t, s))
        while keep and keep[0][0] < t - 3:
            keep.popleft()[1].close()
        due += rnd.uniform(1 - jitter, 1 + jitter) / rate
    sys.stdout.flush()
    wall = time.time() - t0
    print(f"probes {len(srcs)} in {wall:.2f} s ({len(srcs) / max(wall, 1e-9):.1f}/s)",
          file=sys.stderr, flush=True)
    time.sleep(2)
    for _, s in keep:
        s.close()


if __name__ == "__main__":
    main()
