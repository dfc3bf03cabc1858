#!/bin/bash
# shellcheck disable=SC2154  # FB_*/LAPI_*/FWB_* come from bench/fleet_lib.sh
# bench_fleet_burst.sh: CPU during a burst of bans (issue 14): portsentry-nfq
# on host A (detecting and pushing), portsentry-nfq on host B (pulling), the
# LAPI, and — the baseline on B, same run, same decisions — the stock
# crowdsec-firewall-bouncer, each as % of one core, from /proc/PID/stat
# utime+stime (all threads) before and after.
#
# Same lab as bench_fleet_propagation.sh. The attacker sends RATE probes/s for
# BURST_S seconds (one TCP SYN each from its own IPv6 address, one /64 each:
# 2001:db8:100:N::2 (N from 1, canonical text), so nothing aggregates and the documentation ranges
# suffice), to closed watched port 9 of A. Measured windows:
#   idle:  IDLE_S seconds of steady polling before the burst;
#   burst: from the first probe to TAIL_S seconds after the last one (time
#          for the last pushes and pulls; a fixed window, so a decision the
#          stream loses does not stretch it). Then, outside the window, up to
#          30 s more for every source to show in B's sets.
# Also prints the propagation (A's @banned6 → B's sets) during the burst, and
# how many sources each set got.
#
# Usage: sudo bench/bench_fleet_burst.sh [BUILD_DIR=build]
#   RATE=100  BURST_S=10  IDLE_S=10  TAIL_S=5  POLL=1s (daemons' poll_interval and the
#   stock bouncer's update_frequency)   FL_KEEP_TMP=1 keeps the lab's files.
#   DAEMON=0: no daemon; bench/fleet_push.py in A's namespace pushes the
#   alerts itself at RATE/s: the LAPI's and the stock bouncer's half alone.
set -u
[ "$(id -u)" -eq 0 ] || { echo "bench_fleet_burst.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
DAEMON=${DAEMON:-1}
[ "$DAEMON" = 0 ] || [ -x "$BIN" ] || { echo "missing $BIN (meson compile -C $BUILD portsentry-nfq)" >&2; exit 1; }
for c in crowdsec cscli crowdsec-firewall-bouncer jq; do
    command -v "$c" >/dev/null || { echo "bench_fleet_burst.sh: $c missing (scripts/install-deps)" >&2; exit 1; }
done
RATE=${RATE:-100} BURST_S=${BURST_S:-10} IDLE_S=${IDLE_S:-10} TAIL_S=${TAIL_S:-5} POLL=${POLL:-1s}
NPROBES=$((RATE * BURST_S))
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

fb_lab_up || { fl_say "lab set-up failed"; exit 1; }
lapi_cscli lapi decisions add --ip 203.0.113.250 --duration 4h >/dev/null 2>&1 ||
    { fl_say "cscli decisions add failed"; exit 1; }
ADDRS=$FL_TMP/addrs.txt
awk -v n="$NPROBES" 'BEGIN { for (i = 1; i <= n; i++) printf "2001:db8:100:%x::2\n", i }' >"$ADDRS"
fb_attackers "$ADDRS" || exit 1
fb_stamp_start a "$FB_A" portsentry/banned6 &&
fb_stamp_start b "$FB_B" portsentry/fleet6 crowdsec6/crowdsec6-blacklists || exit 1

if [ "$DAEMON" = 1 ]; then
    fb_conf_a "$POLL" && fb_daemon_start a || exit 1
    fb_conf_b "$POLL" && fb_daemon_start b || exit 1
fi
fl_bouncer_start fwb "$FB_B" lapi "$FB_FWB_KEY" "$POLL" || exit 1
sleep 2

NAMES=("portsentry-nfq A (detect + push)" "portsentry-nfq B (pull)" "LAPI (crowdsec -no-cs, SQLite)" "stock bouncer B (baseline)")
PIDS=("${FB_PID[a]:-}" "${FB_PID[b]:-}" "${LAPI_PID[lapi]}" "${FWB_PID[fwb]}")
ticks_all() { local p; for p in "${PIDS[@]}"; do if [ -n "$p" ]; then printf '%s ' "$(fb_ticks "$p")"; else printf '0 '; fi; done; }

echo "bench_fleet_burst: $NPROBES bans at ${RATE}/s (jittered) over ~${BURST_S} s; poll interval $POLL; idle window ${IDLE_S} s"
echo "  kernel $(uname -r), $(nproc) CPUs; daemon $BIN; load $(cut -d' ' -f1-3 /proc/loadavg)"

read -ra I0 <<<"$(ticks_all)"; ti0=$(fl_ms)
sleep "$IDLE_S"
read -ra I1 <<<"$(ticks_all)"; ti1=$(fl_ms)

read -ra B0 <<<"$(ticks_all)"; tb0=$(fl_ms)
if [ "$DAEMON" = 1 ]; then
    ip netns exec "$FB_X" "$PY" "$HERE/fleet_probe.py" 2001:db8:1::1 9 "$RATE" "$ADDRS" \
        >"$FL_TMP/probes.txt" 2>"$FL_TMP/probes.err" || { cat "$FL_TMP/probes.err" >&2; exit 1; }
else
    ip netns exec "$FB_A" "$PY" "$HERE/fleet_push.py" "$FB_LAPI_URL" host-a "$FB_A_PW" "$RATE" "$ADDRS" \
        >"$FL_TMP/probes.txt" 2>"$FL_TMP/probes.err" || { cat "$FL_TMP/probes.err" >&2; exit 1; }
    awk '{ print $1, "portsentry/banned6", $2 }' "$FL_TMP/probes.txt" >>"${FB_STAMP[a]}"
    echo "probes $(wc -l <"$FL_TMP/probes.txt") pushed by fleet_push.py (DAEMON=0), $(grep -c HTTP "$FL_TMP/probes.err") not answered 201" >"$FL_TMP/probes.err"
fi
# fleet_probe.py lingers 2 s after its last probe (open sockets): the tail
# counts from the last probe's stamp.
last=$(tail -1 "$FL_TMP/probes.txt" | awk '{ printf "%d", $1 * 1000 }')
while [ "$(fl_ms)" -lt $((last + TAIL_S * 1000)) ]; do sleep 0.05; done
read -ra B1 <<<"$(ticks_all)"; tb1=$(fl_ms)
if [ "$DAEMON" = 1 ]; then
    fb_wait_seen "${FB_STAMP[b]}" portsentry/fleet6 "$ADDRS" 30 || echo "  (not all in B's @fleet6 30 s after the burst window)"
fi
fb_wait_seen "${FB_STAMP[b]}" crowdsec6/crowdsec6-blacklists "$ADDRS" 5 || echo "  (not all in the stock bouncer's set)"
echo "  attacker: $(cat "$FL_TMP/probes.err"); burst window (first probe -> ${TAIL_S} s after the last): $((tb1 - tb0)) ms"
echo "  sources in A's @banned6: $(fb_count_seen "${FB_STAMP[a]}" portsentry/banned6 "$ADDRS"), B's @fleet6: $(fb_count_seen "${FB_STAMP[b]}" portsentry/fleet6 "$ADDRS"), stock set: $(fb_count_seen "${FB_STAMP[b]}" crowdsec6/crowdsec6-blacklists "$ADDRS") (of $NPROBES)"
echo
printf '  %-36s %16s %16s\n' process "idle % of 1 core" "burst % of 1 core"
for i in 0 1 2 3; do
    printf '  %-36s %16s %16s\n' "${NAMES[$i]}" "$(fb_pct $((I1[i] - I0[i])) $((ti1 - ti0)))" "$(fb_pct $((B1[i] - B0[i])) $((tb1 - tb0)))"
done
awk -v o=$((B1[1] - B0[1])) -v s=$((B1[3] - B0[3])) 'BEGIN {
    if (s > 0) printf "  ratio B ours/stock during the burst: %.2fx\n", o / s
    else printf "  ratio B ours/stock during the burst: n/a (stock used < 1 tick)\n" }'
echo
echo "  propagation during the burst:"
"$PY" "$HERE/fleet_latency.py" "$FL_TMP/probes.txt" \
    "ban on A=${FB_STAMP[a]}=portsentry/banned6" \
    "B @fleet6 (portsentry-nfq)=${FB_STAMP[b]}=portsentry/fleet6" \
    "B crowdsec6-blacklists (stock)=${FB_STAMP[b]}=crowdsec6/crowdsec6-blacklists"
ip netns exec "$FB_B" curl -s --max-time 2 http://127.0.0.1:9470/metrics 2>/dev/null |
    grep -E '^portsentry_fleet_(pulled|skipped|errors)' | sed 's/^/  B metrics: /'
fb_finish
exit 0
