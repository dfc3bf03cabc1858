#!/usr/bin/python3
"""Join probe stamps with nft_stamp.py stamps: propagation latencies.

Usage: fleet_latency.py [--slack-ms=5] PROBES REF OURS BASE [OTHER...]
  PROBES  fleet_probe.py output: "<epoch s> <source>" a line
  REF     LABEL=FILE=TABLE/SET[,TABLE/SET...]  (host A's ban sets)
  OURS    same form (host B's @fleet sets), BASE: same (the stock bouncer's);
  OTHER   more of the same form, printed only (e.g. lapi/stream from
          stream_stamp.py: when the decision was in the LAPI)

For every probed source: t_ban = its first element in REF at or after the
probe; then, for each of the others, the first element at or after t_ban
minus the slack (5 ms: the readers run in different namespaces but on one
clock; more when REF is a poller's stamp, itself late by up to its
interval), latency = that - t_ban (so it can be slightly negative). Prints probe -> ban on A, and for each of the
others n, p50, p99, max (ms; nearest rank, as bench_probe_ban.sh) and the
sources that never showed, then the ratio OURS/BASE.
"""
import ipaddress
import sys


def norm(e):
    """Canonical text of an element's first address (ADDR, ADDR/LEN, A-B)."""
    a = e.split("-")[0].split("/")[0]
    try:
        return str(ipaddress.ip_address(a))
    except ValueError:
        return a


def load_stamps(path, sets):
    """address -> sorted list of stamps (seconds) of its elements in SETS."""
    seen = {}
    with open(path) as f:
        for ln in f:
            w = ln.split()
            if len(w) != 3 or w[1] not in sets:
                continue
            seen.setdefault(norm(w[2]), []).append(float(w[0]))
    for v in seen.values():
        v.sort()
    return seen


def first_after(lst, t):
    for x in lst or []:
        if x >= t:
            return x
    return None


def spec(s):
    label, path, sets = s.split("=", 2)
    return label, path, set(sets.split(","))


def pct(v, q):
    v = sorted(v)
    return v[int(q * (len(v) - 1) + 0.5)]


def summary(label, lat, total, missing):
    if not lat:
        print(f"  {label:<50} n=0/{total}  (none seen)")
        return None
    p50, p99, mx = pct(lat, 0.50), pct(lat, 0.99), max(lat)
    miss = f"  missing {len(missing)}: {' '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}" \
        if missing else ""
    print(f"  {label:<50} n={len(lat)}/{total}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {mx:7.1f} ms{miss}")
    return p50, p99, mx


def main():
    args = sys.argv[1:]
    slack = 0.005
    if args and args[0].startswith("--slack-ms="):
        slack = float(args.pop(0).split("=", 1)[1]) / 1000
    probes_path, ref = args[0:2]
    probes = []
    with open(probes_path) as f:
        for ln in f:
            w = ln.split()
            if len(w) == 2:
                probes.append((float(w[0]), norm(w[1])))
    rl, rp, rs = spec(ref)
    ref_st = load_stamps(rp, rs)
    t_ban = {}
    ban_lat, ban_miss = [], []
    for t, a in probes:
        b = first_after(ref_st.get(a), t)
        if b is None:
            ban_miss.append(a)
        else:
            t_ban[a] = b
            ban_lat.append((b - t) * 1000)
    summary(f"probe -> {rl}", ban_lat, len(probes), ban_miss)
    res = []
    for s in args[2:]:
        label, path, sets = spec(s)
        st = load_stamps(path, sets)
        lat, miss = [], []
        for a, b in t_ban.items():
            x = first_after(st.get(a), b - slack)
            if x is None:
                miss.append(a)
            else:
                lat.append((x - b) * 1000)
        res.append(summary(f"{rl} -> {label}", lat, len(t_ban), miss))
    if len(res) >= 2 and res[0] and res[1]:
        r = [o / b if b > 0 else float("inf") for o, b in zip(res[0], res[1])]
        print(f"  ratio ours/stock: p50 {r[0]:.2f}x  p99 {r[1]:.2f}x  max {r[2]:.2f}x")


if __name__ == "__main__":
    main()
