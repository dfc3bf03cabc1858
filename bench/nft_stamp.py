#!/usr/bin/python3
"""Timestamp every new nftables set element, as `nft monitor` reports it.

Usage (inside a network namespace): nft_stamp.py [TABLE/SET ...]

Runs `nft monitor new elements` and, for each element of each
"add element FAMILY TABLE SET { e1 timeout .., e2 .. }" line, prints
    <epoch seconds, µs> TABLE/SET <element>
(element: the address, or ADDR/LEN, or A-B, as nft prints it), unbuffered.
With TABLE/SET arguments, only those sets. The clock is time.time()
(CLOCK_REALTIME), which is the same in every network namespace: stamps taken
by readers in different namespaces compare directly. nft writes each event
as soon as it has it (measured: lines arrive within ~1 ms of the commit), so
the stamp is the moment the element is in force, give or take the reader's
own scheduling. Prints "ready" on stderr once the monitor runs.
"""
import subprocess
import sys
import time


def main():
    want = set(sys.argv[1:])
    p = subprocess.Popen(["nft", "monitor", "new", "elements"], stdout=subprocess.PIPE, bufsize=0)
    out = sys.stdout
    print("ready", file=sys.stderr, flush=True)
    for raw in p.stdout:
        t = time.time()
        line = raw.decode(errors="replace").strip()
        if not line.startswith("add element "):
            continue
        head, _, rest = line.partition("{")
        words = head.split()  # add element FAMILY TABLE SET
        if len(words) < 5:
            continue
        name = words[3] + "/" + words[4]
        if want and name not in want:
            continue
        body = rest.rpartition("}")[0]
        for e in body.split(","):
            e = e.split()
            if e:
                out.write(f"{t:.6f} {name} {e[0]}\n")
        out.flush()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
