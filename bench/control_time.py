#!/usr/bin/env python3
"""control_time.py SOCKET COMMAND...: each COMMAND's exchange on the daemon's
control socket (connect, request line, reply until EOF), in ms, without a
client process's start-up; for bench_restore.sh VIEWS=1."""
import socket
import sys
import time

sock_path = sys.argv[1]
out = []
for cmd in sys.argv[2:]:
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(cmd.encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    n = 0
    first = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        if not first:
            first = b[:2]
        n += len(b)
    s.close()
    ms = (time.monotonic() - t0) * 1000
    out.append(f"{cmd}: {ms:.1f} ms ({n} bytes{'' if first.startswith(b'0') else ', FAILED'})")
print("; ".join(out))
