#!/usr/bin/python3
"""Inputs of bench_fleet_resync.sh.

  fleet_resync_gen.py csv N
      A `cscli decisions import` CSV of N IPv6 bans (4h): 2001:db8:2XX:YYYY::1,
      one per /64 (only documentation addresses; IPv4 has too few of them).
  fleet_resync_gen.py nft STREAM_JSON SIZE
      From a `GET /v1/decisions/stream?startup=true` answer: an `nft -f` file
      creating table inet fleet_bench with the sets the daemon keeps fleet
      decisions in (fleet: ipv4_addr, fleet6: ipv6_addr; flags interval,
      timeout; size SIZE) holding every ban (scope Ip or Range), each with its
      remaining duration as timeout (whole seconds), the same form as
      bench/restore_gen's file.
"""
import ipaddress
import json
import re
import sys

UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_seconds(d):
    """Go time.Duration text ("3h59m58.79s", "-121.1ms") to seconds."""
    sign = -1 if d.startswith("-") else 1
    total = sum(float(n) * UNIT[u] for n, u in re.findall(r"([0-9.]+)(ms|us|µs|ns|h|m|s)", d))
    return sign * total


def csv(n):
    out = ["duration,scope,value,type,reason"]
    for i in range(n):
        a = ipaddress.ip_address(f"2001:db8:{(i >> 16) + 0x200:x}:{i & 0xffff:x}::1")
        out.append(f"4h,Ip,{a},ban,bench")
    sys.stdout.write("\n".join(out) + "\n")


def nft(path, size):
    with open(path) as f:
        doc = json.load(f)
    elems = {4: [], 6: []}
    for e in doc.get("new") or []:
        if e.get("type") != "ban" or e.get("scope", "").lower() not in ("ip", "range"):
            continue
        net = ipaddress.ip_network(e["value"], strict=False)
        ttl = int(go_seconds(e["duration"]))
        if ttl < 1:
            continue
        v = str(net.network_address) if net.num_addresses == 1 else str(net)
        elems[net.version].append(f"{v} timeout {ttl}s")
    sets = []
    for name, typ, v in (("fleet", "ipv4_addr", 4), ("fleet6", "ipv6_addr", 6)):
        body = f"    type {typ}; flags interval, timeout; size {size};\n"
        if elems[v]:
            body += "    elements = {\n    " + ",\n    ".join(elems[v]) + "\n    }\n"
        sets.append(f"  set {name} {{\n{body}  }}\n")
    sys.stdout.write("table inet fleet_bench {\n" + "".join(sets) + "}\n")
    print(f"{len(elems[4])} IPv4 and {len(elems[6])} IPv6 elements", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "csv":
        csv(int(sys.argv[2]))
    else:
        nft(sys.argv[2], int(sys.argv[3]))
