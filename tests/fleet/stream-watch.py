#!/usr/bin/python3
"""Poll a CrowdSec LAPI decisions stream until one decision shows up.

Usage: stream-watch.py URL KEY_FILE LIST SCOPE VALUE TYPE [--cacert F]
                       [--interval-ms 10] [--timeout-ms 10000]
                       [--push-url URL2 --push-token-file F --push-body-file F]

Keeps one HTTP(S) connection open and polls GET URL/v1/decisions/stream with
X-Api-Key every INTERVAL ms (a new connection only if the LAPI closes it), so
what it measures is the LAPI, not process start-up. Prints "ready" once the
first poll answered (start the push after that line), then, when LIST
("new" or "deleted") has an entry with SCOPE, VALUE and TYPE:
    seen <epoch ms> polls=<n> entry=<the entry as JSON>
With --push-*, it also makes the push itself right after its first poll
(POST URL2/v1/alerts, Bearer token, the body file as is, on its own
connection) in a thread while polling goes on, and prints
    pushed <sent epoch ms> <answered epoch ms> <status>
before the result: the latency figures then exclude process start-up on
both sides.
Exit 0 when seen, 1 on timeout, 2 on an HTTP error.
Run it inside the client's network namespace (ip netns exec NS ...).
"""
import argparse
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse


def main():
    p = argparse.ArgumentParser()
    for a in ("url", "key_file", "list", "scope", "value", "type"):
        p.add_argument(a)
    p.add_argument("--cacert")
    p.add_argument("--interval-ms", type=float, default=10)
    p.add_argument("--timeout-ms", type=float, default=10000)
    p.add_argument("--push-url")
    p.add_argument("--push-token-file")
    p.add_argument("--push-body-file")
    a = p.parse_args()
    with open(a.key_file) as f:
        key = f.readline().strip()
    u = urllib.parse.urlsplit(a.url)

    def connect(u=u):
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=a.cacert)
            return http.client.HTTPSConnection(u.hostname, u.port, timeout=5, context=ctx)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=5)

    def push():
        pu = urllib.parse.urlsplit(a.push_url)
        with open(a.push_token_file) as f:
            tok = f.readline().strip()
        with open(a.push_body_file, "rb") as f:
            body = f.read()
        c = connect(pu)
        c.connect()  # connection set-up is not part of the push
        t0 = time.time()
        c.request("POST", "/v1/alerts", body=body, headers={
            "Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        t1 = time.time()
        c.close()
        pushed.append(f"pushed {int(t0 * 1000)} {int(t1 * 1000)} {r.status}")

    pushed = []

    conn = connect()

    def poll():
        nonlocal conn
        for attempt in (1, 2):
            try:
                conn.request("GET", "/v1/decisions/stream", headers={"X-Api-Key": key})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    print(f"error HTTP {r.status} {body[:200]!r}", flush=True)
                    sys.exit(2)
                return json.loads(body)
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = connect()
                if attempt == 2:
                    raise
        return None

    def match(doc):
        for e in doc.get(a.list) or []:
            if e.get("scope") == a.scope and e.get("value") == a.value and e.get("type") == a.type:
                return e
        return None

    polls = 1
    e = match(poll())
    print("ready", flush=True)
    pusher = None
    if a.push_url:  # in a thread: polling goes on while the push is in flight
        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
    deadline = time.time() + a.timeout_ms / 1000
    while e is None and time.time() < deadline:
        time.sleep(a.interval_ms / 1000)
        polls += 1
        e = match(poll())
    if pusher is not None:
        pusher.join(10)
        print(pushed[0] if pushed else "pushed none", flush=True)
    if e is None:
        print(f"timeout polls={polls}", flush=True)
        sys.exit(1)
    print(f"seen {int(time.time() * 1000)} polls={polls} entry={json.dumps(e)}", flush=True)


if __name__ == "__main__":
    main()
