#!/usr/bin/python3
"""Summarise one nmap -oX file for the integration tests.

Usage: nmap-ports.py FILE.xml [WATCHED]
  WATCHED: port list such as "1-112,114-138,140-1023" (the ports the daemon
  steers). Prints one line of shell assignments:
      open=N closed=N filtered=N open_filtered=N other=N \
      watched_closed=N watched_closed_ports=LIST host_up=0|1 \
      scanned=N expected=N
scanned counts the ports with a state; expected is what <scaninfo
numservices> says nmap set out to scan. They differ when the host timed out:
then every count above is meaningless (all zero), and callers must fail.
nmap groups ports of the commonest state into <extraports>; since nmap 7.80
the <extrareasons ports="..."> attribute lists them, so every scanned port is
accounted for. A missing attribute (older nmap) is an error, not a guess:
counting "closed" ports we cannot name would make the watched-port assertion
meaningless.
"""
import sys
import xml.etree.ElementTree as ET


def expand(spec):
    ports = set()
    for part in filter(None, spec.split(",")):
        if "-" in part:
            lo, hi = part.split("-", 1)
            ports.update(range(int(lo), int(hi) + 1))
        else:
            ports.add(int(part))
    return ports


def compress(ports):
    out, run = [], None
    for p in sorted(ports):
        if run and p == run[1] + 1:
            run[1] = p
        else:
            if run:
                out.append(run)
            run = [p, p]
    if run:
        out.append(run)
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in out) or "none"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    root = ET.parse(sys.argv[1]).getroot()
    watched = expand(sys.argv[2]) if len(sys.argv) == 3 else set()
    states = {}  # port -> state
    host_up = 0
    expected = sum(int(si.get("numservices", "0")) for si in root.iter("scaninfo"))
    for host in root.iter("host"):
        st = host.find("status")
        if st is not None and st.get("state") == "up":
            host_up = 1
        for ports in host.iter("ports"):
            for extra in ports.iter("extraports"):
                state = extra.get("state")
                listed = 0
                for reason in extra.iter("extrareasons"):
                    spec = reason.get("ports")
                    if spec is None:
                        sys.exit(f"{sys.argv[1]}: <extrareasons> without ports= (nmap < 7.80?)")
                    for p in expand(spec):
                        states[p] = state
                        listed += 1
                if listed != int(extra.get("count", "0")):
                    sys.exit(f"{sys.argv[1]}: extraports {state}: count {extra.get('count')} "
                             f"but {listed} ports listed")
            for port in ports.iter("port"):
                states[int(port.get("portid"))] = port.find("state").get("state")
    counts = {"open": 0, "closed": 0, "filtered": 0, "open|filtered": 0}
    other = 0
    for s in states.values():
        if s in counts:
            counts[s] += 1
        else:
            other += 1
    wc = {p for p, s in states.items() if s == "closed" and p in watched}
    print(f"open={counts['open']} closed={counts['closed']} filtered={counts['filtered']} "
          f"open_filtered={counts['open|filtered']} other={other} "
          f"watched_closed={len(wc)} watched_closed_ports={compress(wc)} host_up={host_up} "
          f"scanned={len(states)} expected={expected}")


if __name__ == "__main__":
    main()
