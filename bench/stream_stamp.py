#!/usr/bin/python3
"""Timestamp every new decision in a CrowdSec LAPI's stream (a fast poller).

Usage (inside a namespace that reaches the LAPI):
    stream_stamp.py URL KEY_FILE [INTERVAL_MS=20]

With its own bouncer key (the stream cursor is per key), polls
GET URL/v1/decisions/stream every INTERVAL_MS on one kept-alive connection
(the first poll with startup=true, whose content is ignored) and for every
entry of "new" prints
    <epoch seconds, µs, of the answer> lapi/stream <value>
in nft_stamp.py's format: stored in the LAPI ≤ that stamp, so with A's and
B's stamps it splits propagation into push (A → LAPI) and pull (LAPI → B).
Prints "ready" on stderr after the first poll.
"""
import http.client
import json
import sys
import time
import urllib.parse


def main():
    url, key_file = sys.argv[1], sys.argv[2]
    iv = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.02
    with open(key_file) as f:
        key = f.readline().strip()
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)

    def poll(q=""):
        nonlocal conn
        for attempt in (1, 2):
            try:
                conn.request("GET", "/v1/decisions/stream" + q, headers={"X-Api-Key": key})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    sys.exit(f"stream: HTTP {r.status} {body[:200]!r}")
                return json.loads(body)
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                if attempt == 2:
                    raise
        return {}

    poll("?startup=true")
    print("ready", file=sys.stderr, flush=True)
    while True:
        time.sleep(iv)
        doc = poll()
        t = time.time()
        for e in doc.get("new") or []:
            sys.stdout.write(f"{t:.6f} lapi/stream {e.get('value')}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
