#!/bin/bash
# shellcheck disable=SC2154  # lab variables come from tests/integration/lib.sh
# bench_established.sh: what legitimate traffic costs the daemon. wrk loads
# an HTTP service in the victim from a host that is NOT in the ignore list,
# once on port 80 (a watched port: advanced mode below 1024, kept out of the
# queue only by "a local socket owns this port") and once on 8080 (not
# watched); the same loads also run before the daemon starts, as the
# baseline. Reported per load: the daemon's CPU seconds (utime + stime from
# /proc/PID/stat, all threads), its queue counter ("packets: N received" from
# `portsentry-nfq status`), and wrk's requests/s with and without the daemon.
# Target: ~0 CPU seconds and 0 packets received during the loads. A last
# single probe to a closed watched port must move the counter by exactly 1,
# so a counter that never moves cannot pass for "zero".
#
# The service is python's http.server (HTTP/1.0: one request per
# connection), so every request of the load is a new TCP handshake through
# the input chain: the strictest case for "no legitimate packet reaches
# userspace".
#
# Usage: sudo bench/bench_established.sh [BUILD_DIR=build]
#   SECONDS_PER_LOAD=10  WRK_ARGS="-t2 -c50"
set -u

[ "$(id -u)" -eq 0 ] || { echo "bench_established.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib.sh
. "$HERE/../tests/integration/lib.sh"
lab_traps

BUILD=$(cd "${1:-$SRC_ROOT/build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
[ -x "$BIN" ] || { say "missing $BIN"; exit 1; }
for tool in wrk curl; do command -v "$tool" >/dev/null || { say "missing $tool (scripts/install-deps)"; exit 1; }; done
SECS=${SECONDS_PER_LOAD:-10}
read -r -a WRK <<<"${WRK_ARGS:--t2 -c50}"
TICK=$(getconf CLK_TCK)

lab_up || { say "lab set-up failed"; exit 1; }

D=$RUN_TMP/d
CONF=$D/portsentry.yaml
# Empty ignore file: the wrk client (203.0.113.2) gets no shortcut.
write_yaml_config "$D" \
    'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
    'udp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
    "hosts_deny_file: \"$D/hosts.deny\"" \
    'kill_route: "/sbin/iptables -I INPUT -s $TARGET$ -j DROP"' \
    'scan_trigger: 0' \
    'ban_time: 1h'

start_service 80 && start_service 8080 || exit 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
received() {
    timeout 10 ip netns exec "$NS_V" "$BIN" status --control-socket "$D/portsentry-nfq.sock" 2>/dev/null |
        sed -n 's/^packets: \([0-9]*\) received.*/\1/p'
}
# load PORT: wrk from the friend namespace; prints requests/s and errors.
load() {
    local out
    out=$(ip netns exec "$NS_F" wrk "${WRK[@]}" -d"${SECS}s" "http://$V_F4:$1/" 2>&1)
    printf '%s %s\n' "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
        "$(awk '/Socket errors|Non-2xx/ {printf "%s;", $0}' <<<"$out" | tr -s ' ')"
}

say "bench_established: wrk ${WRK[*]} -d${SECS}s from $F4 (not ignored) to python http.server in the victim"
say "  kernel $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A BASE
for port in 80 8080; do
    read -r rps errs <<<"$(load "$port")"
    BASE[$port]=$rps
    printf '  no daemon           port %-5s %10s req/s  %s\n' "$port" "$rps" "$errs"
done

daemon_start xt-queue "$CONF" || exit 1
say "  daemon pid $DAEMON_PID, backend xt-queue, $(cut -d' ' -f1-3 /proc/loadavg) load"
rc=0
for port in 80 8080; do
    c0=$(cpu_ticks) p0=$(received)
    read -r rps errs <<<"$(load "$port")"
    c1=$(cpu_ticks) p1=$(received)
    cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" 'BEGIN {printf "%.2f", (b - a) / t}')
    ratio=$(awk -v a="$rps" -v b="${BASE[$port]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    printf '  with daemon         port %-5s %10s req/s  (%sx of no daemon)  daemon CPU %s s  queued packets %s -> %s  %s\n' \
        "$port" "$rps" "$ratio" "$cpu" "$p0" "$p1" "$errs"
    [ "$p0" = "$p1" ] || rc=1
done
# Control: one SYN to a closed watched port from the attacker must be queued.
p0=$(received)
in_a curl -s -o /dev/null --max-time 1 "http://$V_A4:7/"
p1=$(received)
printf '  control probe       port 7     queued packets %s -> %s (must move by 1)\n' "$p0" "$p1"
[ "$((p1 - p0))" -eq 1 ] || rc=1
daemon_stop TERM
exit $rc
