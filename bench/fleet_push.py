#!/usr/bin/python3
"""Push one ban alert per address to a CrowdSec LAPI, paced: host A's part
without a daemon (DAEMON=0 in bench_fleet_propagation.sh, to check the lab
and the stock bouncer's half alone).

Usage (inside host A's namespace):
    fleet_push.py URL MACHINE PASSWORD_FILE RATE_PER_S ADDR_FILE [JITTER=0.5]

Logs in (POST /v1/watchers/login), then for each address POSTs /v1/alerts
with one alert (CROWDSEC.md's shape, decision ban 4h, origin portsentry) on
one kept-alive connection, gaps jittered as fleet_probe.py does, and prints
    <epoch seconds, µs, when the LAPI answered> <address>
A 500 is reported on stderr (the LAPI may still have stored it).
crowdsec 1.4.6 refuses a login (401 "incorrect Username or Password") unless
the User-Agent holds exactly one "/": this client sends "fleet-push/1".
"""
import datetime
import http.client
import json
import random
import sys
import time
import urllib.parse

UA = "fleet-push/1"


def main():
    url, machine, pwf, rate, path = sys.argv[1:6]
    rate = float(rate)
    jitter = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    rnd = random.Random(14)
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    with open(pwf) as f:
        pw = f.readline().strip()
    c.request("POST", "/v1/watchers/login", body=json.dumps({"machine_id": machine, "password": pw}),
              headers={"Content-Type": "application/json", "User-Agent": UA})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"login: HTTP {r.status} {body[:200]!r}")
    tok = json.loads(body)["token"]
    with open(path) as f:
        addrs = [ln.strip() for ln in f if ln.strip()]
    due = time.time() + 0.05
    for a in addrs:
        d = due - time.time()
        if d > 0:
            time.sleep(d)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        scope = "Ip"
        alert = [{"scenario": "portsentry/portscan", "scenario_hash": "", "scenario_version": "1",
                  "message": f"bench {a}", "events_count": 1, "start_at": now, "stop_at": now,
                  "capacity": 0, "leakspeed": "0", "simulated": False, "remediation": True,
                  "events": [], "source": {"scope": scope, "value": a, "ip": a},
                  "decisions": [{"origin": "portsentry", "type": "ban", "scope": scope, "value": a,
                                 "duration": "4h", "scenario": "portsentry/portscan",
                                 "simulated": False}]}]
        c.request("POST", "/v1/alerts", body=json.dumps(alert), headers={
            "Authorization": "Bearer " + tok, "Content-Type": "application/json", "User-Agent": UA})
        r = c.getresponse()
        r.read()
        print(f"{time.time():.6f} {a}", flush=True)
        if r.status != 201:
            print(f"push {a}: HTTP {r.status}", file=sys.stderr, flush=True)
        due += rnd.uniform(1 - jitter, 1 + jitter) / rate


if __name__ == "__main__":
    main()
