#!/bin/bash
# shellcheck disable=SC2154  # FB_*/LAPI_*/FWB_* come from bench/fleet_lib.sh
# bench_fleet_propagation.sh: a ban on host A → in force on host B, through a
# CrowdSec LAPI (issue 14): portsentry-nfq on B (pull) beside the stock
# crowdsec-firewall-bouncer on B (its own key, its own tables), both polling at
# the same interval, in the same run, on the same bans.
#
# Host A runs portsentry-nfq (advanced TCP, crowdsec push to a SQLite LAPI in
# its own namespace, ban caps off). The attacker sends BANS probes, one TCP SYN
# each from a distinct source address to closed watched port 9 of A, at RATE/s
# (gaps jittered ±50 %, so the probes do not lock to the poll phase).
# `nft monitor` readers in A and in B (bench/nft_stamp.py; one clock,
# CLOCK_REALTIME, is the same in every namespace) time each source's element
# appearing
#   - in A's @banned               (ban on A),
#   - in B's @fleet                (ours),
#   - in B's crowdsec-blacklists   (the stock bouncer: baseline).
# Propagation = B's element − A's element. For each poll interval (daemons A
# and B and the stock bouncer restarted with it; A's pushes are batched at its
# poll_interval too) it prints probe → ban on A, then p50/p99/max of both and
# the ratio ours/stock. Target (issue 14): ours p99 ≤ stock p99 and
# ≤ interval + 100 ms.
#
# Usage: sudo bench/bench_fleet_propagation.sh [BUILD_DIR=build]
#   POLLS="1s 100ms" (one round each, fresh sources: 198.51.100.0/24, then
#   203.0.113.0/24)  BANS=200 (at most 200)  RATE=10 (probes/s)
#   A_PULL=1: host A pulls too (pull: true, its own key; the default of a
#   fleet config); by default it only pushes.
#   LAPI_WATCH_MS=20: bench/stream_stamp.py polls the LAPI's stream with a key
#   of its own every 20 ms and times each decision's arrival there, which
#   splits propagation into push (A → LAPI) and pull (LAPI → B); 0 = off.
#   FL_KEEP_TMP=1 keeps the lab's files (logs, stamps).
#   DAEMON=0: no daemon; bench/fleet_push.py in A's namespace pushes the
#   alerts itself (its 201 = "ban on A"): checks the lab and the stock
#   bouncer's half alone.
set -u
[ "$(id -u)" -eq 0 ] || { echo "bench_fleet_propagation.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
DAEMON=${DAEMON:-1}
[ "$DAEMON" = 0 ] || [ -x "$BIN" ] || { echo "missing $BIN (meson compile -C $BUILD portsentry-nfq)" >&2; exit 1; }
for c in crowdsec cscli crowdsec-firewall-bouncer jq; do
    command -v "$c" >/dev/null || { echo "bench_fleet_propagation.sh: $c missing (scripts/install-deps)" >&2; exit 1; }
done
POLLS=${POLLS:-"1s 100ms"} BANS=${BANS:-200} RATE=${RATE:-10} LAPI_WATCH_MS=${LAPI_WATCH_MS:-20} A_PULL=${A_PULL:-0}
[ "$BANS" -le 200 ] || BANS=200
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

fb_lab_up || { fl_say "lab set-up failed"; exit 1; }
# One decision before the stock bouncer's first start: it reports its first
# pull ("1 decision added"), which fl_bouncer_start waits for. Never probed.
lapi_cscli lapi decisions add --ip 203.0.113.250 --duration 4h >/dev/null 2>&1 ||
    { fl_say "cscli decisions add failed"; exit 1; }
fb_stamp_start a "$FB_A" portsentry/banned portsentry/banned6 &&
fb_stamp_start b "$FB_B" portsentry/fleet portsentry/fleet6 crowdsec/crowdsec-blacklists || exit 1
LAPI_ROW=()
if [ "$LAPI_WATCH_MS" -gt 0 ]; then
    fb_stream_stamp_start lapi "$LAPI_WATCH_MS" || exit 1
    LAPI_ROW=("in the LAPI's stream (${LAPI_WATCH_MS} ms poller)=${FB_STAMP[lapi]}=lapi/stream")
fi

ms_of() {  # ms_of GO-DURATION ("1s", "100ms", "1.5s")
    awk -v d="$1" 'BEGIN { if (d ~ /ms$/) print d + 0; else if (d ~ /s$/) print (d + 0) * 1000; else print d }'
}

echo "bench_fleet_propagation: $BANS bans per interval at ${RATE}/s (jittered); intervals: $POLLS"
echo "  kernel $(uname -r), $(nproc) CPUs, crowdsec $(crowdsec -version 2>&1 | sed -n 's/.*version: //p' | head -1)," \
    "crowdsec-firewall-bouncer $(dpkg-query -W -f '${Version}' crowdsec-firewall-bouncer 2>/dev/null); daemon $BIN"
R=0
SUMMARY=()
for POLL in $POLLS; do
    R=$((R + 1))
    case $R in
    1) NET=198.51.100 ;;
    2) NET=203.0.113 ;;
    *) fl_say "at most two intervals (two /24s of sources)"; break ;;
    esac
    ADDRS=$FL_TMP/addrs-$R.txt
    seq 10 $((9 + BANS)) | sed "s/^/$NET./" >"$ADDRS"
    fb_attackers "$ADDRS" || exit 1

    if [ "$DAEMON" = 1 ]; then
        fb_conf_a "$POLL" "$A_PULL" && fb_daemon_start a || exit 1
        fb_conf_b "$POLL" && fb_daemon_start b || exit 1
    fi
    fl_bouncer_start fwb "$FB_B" lapi "$FB_FWB_KEY" "$POLL" || exit 1
    sleep 2   # both pullers past their startup pull, in steady polling

    echo
    echo "--- poll interval $POLL (A: push$([ "$A_PULL" = 1 ] && echo " + pull"), poll_interval $POLL; B: poll_interval $POLL; stock bouncer: update_frequency $POLL)  load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$DAEMON" = 1 ]; then
        ip netns exec "$FB_X" "$PY" "$HERE/fleet_probe.py" "$NET.1" 9 "$RATE" "$ADDRS" \
            >"$FL_TMP/probes-$R.txt" 2>"$FL_TMP/probes-$R.err" || { cat "$FL_TMP/probes-$R.err" >&2; exit 1; }
        echo "  attacker: $(cat "$FL_TMP/probes-$R.err")"
    else
        ip netns exec "$FB_A" "$PY" "$HERE/fleet_push.py" "$FB_LAPI_URL" host-a "$FB_A_PW" "$RATE" "$ADDRS" \
            >"$FL_TMP/probes-$R.txt" 2>"$FL_TMP/probes-$R.err" || { cat "$FL_TMP/probes-$R.err" >&2; exit 1; }
        echo "  DAEMON=0: $(wc -l <"$FL_TMP/probes-$R.txt") alerts pushed by fleet_push.py; $(grep -c HTTP "$FL_TMP/probes-$R.err") not answered 201"
        awk '{ print $1, "portsentry/banned", $2 }' "$FL_TMP/probes-$R.txt" >>"${FB_STAMP[a]}"
    fi
    wait_s=12
    if [ "$DAEMON" = 1 ]; then
        fb_wait_seen "${FB_STAMP[b]}" portsentry/fleet "$ADDRS" 10 ||
            echo "  (not all seen in B's @fleet 10 s after the last probe)"
        wait_s=2
    fi
    fb_wait_seen "${FB_STAMP[b]}" crowdsec/crowdsec-blacklists "$ADDRS" "$wait_s" ||
        echo "  (not all seen in the stock bouncer's set 12 s after the last probe)"
    OUT=$("$PY" "$HERE/fleet_latency.py" "$FL_TMP/probes-$R.txt" \
        "ban on A=${FB_STAMP[a]}=portsentry/banned" \
        "B @fleet (portsentry-nfq)=${FB_STAMP[b]}=portsentry/fleet" \
        "B crowdsec-blacklists (stock)=${FB_STAMP[b]}=crowdsec/crowdsec-blacklists" "${LAPI_ROW[@]}")
    if [ "$LAPI_WATCH_MS" -gt 0 ]; then
        # The pull alone: from the decision's first sighting in the LAPI's stream.
        OUT2=$("$PY" "$HERE/fleet_latency.py" --slack-ms=$((LAPI_WATCH_MS + 5)) "$FL_TMP/probes-$R.txt" \
            "in the LAPI=${FB_STAMP[lapi]}=lapi/stream" \
            "B @fleet (portsentry-nfq)=${FB_STAMP[b]}=portsentry/fleet" \
            "B crowdsec-blacklists (stock)=${FB_STAMP[b]}=crowdsec/crowdsec-blacklists" |
            grep -v '^  probe ->' | sed 's/ratio ours/pull-only ratio ours/')
        OUT=$OUT$'\n'$OUT2
    fi
    echo "$OUT"
    echo "  target: ours p99 <= stock p99 and <= $(( $(ms_of "$POLL") + 100 )) ms (interval + 100 ms)"
    if [ "$DAEMON" = 1 ]; then
        # What B counted, and the daemons' fleet log lines.
        ip netns exec "$FB_B" curl -s --max-time 2 http://127.0.0.1:9470/metrics 2>/dev/null |
            grep -E '^portsentry_fleet_(pulled|skipped|errors)' | sed 's/^/  B metrics: /'
        grep -E 'fleet: ' "${FB_LOG[a]}" "${FB_LOG[b]}" | sed "s|$FL_TMP/||; s/^/  log: /" | tail -6
    fi
    SUMMARY+=("$(printf '%s\n' "$OUT" | grep -E 'B @fleet|crowdsec-blacklists|stream|ratio' | sed "s/^ */$(printf '%-6s' "$POLL") /")")

    fl_bouncer_stop fwb
    fb_daemon_stop b
    fb_daemon_stop a
done
fb_finish
echo
echo "summary (propagation = element in B's set - element in A's @banned):"
printf '%s\n' "${SUMMARY[@]}" | sed 's/^/  /'
