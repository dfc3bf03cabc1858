#!/bin/bash
# Does every pushed decision reach a polling bouncer's delta stream, and how
# fast? N trials, each: a watcher polls the stream every INTERVAL ms on a
# kept-alive connection, pushes one ban itself, and waits for it (timeout
# max(5 s, 5 polls)). A miss is then looked up with startup=true: stored but
# never delivered as a delta = lost by the stream.
# Usage: tests/fleet/stream-loss.sh [N=20] [INTERVAL_MS=10] [sqlite|pg=sqlite]
#   pg: push to LAPI 1, watch LAPI 2, both on one PostgreSQL.
set -u
[ "$(id -u)" -eq 0 ] || { echo "stream-loss: must run as root" >&2; exit 1; }
N=${1:-20} IV=${2:-10} DB=${3:-sqlite}
# shellcheck source=tests/fleet/lapi.sh
. "$(dirname "$0")/lapi.sh"
fl_traps

L=fl-l-$FL_SUFFIX C=fl-c-$FL_SUFFIX
fl_ns_add "$L" && fl_ns_add "$C" && fl_link "$C" eth0 192.0.2.2/24 "$L" eth0 192.0.2.1/24 || exit 1
fl_addr "$L" eth0 192.0.2.3/24 || exit 1
if [ "$DB" = pg ]; then
    pg_new loss || exit 1
    S=$(fl_secret)
    lapi_new push "$L" 192.0.2.1 8080 --pg loss --secret "$S" &&
    lapi_new pull "$L" 192.0.2.3 8080 --pg loss --secret "$S" || exit 1
else
    lapi_new push "$L" 192.0.2.1 8080 || exit 1
    PULL=push
fi
W=$(lapi_add_watcher push web-1) && K=$(lapi_add_bouncer push host-b) || exit 1
lapi_start push || exit 1
if [ "$DB" = pg ]; then lapi_start pull || exit 1; PULL=pull; fi
fl_stream "$C" "$PULL" "$K" startup >/dev/null || exit 1
TOK=$(fl_login "$C" push web-1 "$W") || exit 1

tmo=$((IV * 5 / 1000)); [ "$tmo" -ge 5 ] || tmo=5
seen=0 lost=0 other=0 lat=()
for i in $(seq "$N"); do
    a=198.51.$((100 + i / 250)).$((i % 250 + 1))
    [ "$i" -ge 250 ] && a=203.0.113.$((i % 250 + 1))
    fl_watch_start "$C" "$PULL" "$K" new Ip "$a" ban "$IV" push "$TOK" "$(fl_alert_json Ip "$a")" || exit 1
    if fl_watch_wait $((tmo + 5)) 2>/dev/null; then
        seen=$((seen + 1)); lat+=($((FL_WATCH_SEEN_MS - FL_WATCH_PUSH_SENT)))
    elif [ "$FL_WATCH_PUSH_STATUS" = 201 ] &&
        fl_stream "$C" "$PULL" "$K" startup | jq -e --arg a "$a" '.new | any(.value == $a)' >/dev/null; then
        lost=$((lost + 1))
        echo "trial $i: $a stored (push $((FL_WATCH_PUSH_DONE - FL_WATCH_PUSH_SENT)) ms) but never in the delta stream"
    else
        other=$((other + 1)); echo "trial $i: push failed or not stored: $(tail -2 "$FL_WATCH_OUT" | tr '\n' ' ')"
    fi
done
stats=$(printf '%s\n' "${lat[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    if (NR > 0) { p90 = int(NR * 0.9 + 0.5); if (p90 < 1) p90 = 1
        printf "p50 %d ms, p90 %d ms, max %d ms", v[int((NR + 1) / 2)], v[p90], v[NR] } }')
echo "db=$DB interval=${IV}ms trials=$N seen=$seen lost=$lost failed=$other push-sent->seen: $stats"
[ "$lost" -eq 0 ] && [ "$other" -eq 0 ]
