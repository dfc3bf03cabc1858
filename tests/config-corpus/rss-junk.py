#!/usr/bin/python3
"""Peak memory of `portsentry-nfq --check` on 16 MiB of junk (issue 13).

usage: rss-junk.py PORTSENTRY-NFQ [--sanitized] [--bench]

Writes three 16 MiB inputs (8 million junk lines in a portsentry.conf, a
YAML port list of 4 million junk items, 1.9 million unknown YAML keys),
runs --check on each under /usr/bin/time and fails when a peak RSS reaches
64 MiB. Sanitizer builds skip (exit 77): ASan's shadow memory and quarantine
are not ours to count. --bench prints the times instead of asserting.
"""
import os
import subprocess
import sys
import tempfile

LIMIT_KIB = 64 * 1024
SIZE = 16 * 1024 * 1024  # the largest input the readers accept


def inputs():
    conf = b'TCP_PORTS="1"\n' + b"x\n" * SIZE
    ylist = b"tcp:\n  mode: stealth\n  ports:\n" + b"- x\n" * (SIZE // 4)
    keys = bytearray()
    i = 0
    while len(keys) < SIZE:
        keys += b"k%d: 1\n" % i
        i += 1
    return {"junk-lines.conf": conf[:SIZE], "junk-list.yaml": ylist[:SIZE], "junk-keys.yaml": bytes(keys[:SIZE])}


def main():
    exe = os.path.abspath(sys.argv[1])
    bench = "--bench" in sys.argv
    if "--sanitized" in sys.argv and not bench:
        print("SKIP: built with sanitizers; peak RSS is only asserted in the plain build")
        return 77
    if not os.access("/usr/bin/time", os.X_OK):
        print("SKIP: /usr/bin/time is missing (Debian package 'time')")
        return 77
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ps-rss-") as d:
        for name, data in inputs().items():
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            p = subprocess.run(["/usr/bin/time", "-f", "%M %e", exe, "--check", "-c", path, "--defaults",
                                os.path.join(d, "none")], capture_output=True, timeout=600)
            rss_kib, secs = p.stderr.decode(errors="replace").strip().splitlines()[-1].split()
            ok = p.returncode == 1 and int(rss_kib) < LIMIT_KIB
            if bench:
                print(f"{name}: {len(data)} bytes, {secs} s, peak RSS {int(rss_kib) / 1024:.1f} MiB")
                continue
            print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {p.returncode}, peak RSS {rss_kib} KiB (limit {LIMIT_KIB})")
            failed += not ok
            os.unlink(path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
