#!/bin/bash
# shellcheck disable=SC2154  # lab variables come from tests/integration/lib.sh
# bench_probe_ban.sh: probe→ban latency of the real daemon (xt-queue backend)
# beside the baseline of docs/ARCHITECTURE.md, "a bare reader + libnftnl"
# (bench/nfq_ban_bare.c), measured in the same lab, in alternating rounds.
#
# One probe at a time: bench/probe_ban sends a single SYN from a fresh source
# (198.18.0.0/15, spoofed with a raw socket in the attacker namespace) to the
# watched, closed port 9 of the victim and stops the clock when the nftables
# "new element" event for that source arrives (what `nft monitor` prints as
# "add element inet portsentry banned { X }"): send → ban in force.
# CPU 0: prober (and, through it, the kernel's receive path and the enqueue);
# CPU 1: the daemon or the baseline reader.
#
# Usage: sudo bench/bench_probe_ban.sh [BUILD_DIR=build]
#   PROBES=300 per round and contender; ROUNDS=3; GAP_MS=50 between probes
#   (a lone probe); GAP_MS=5 shows what back-to-back fresh sources meet.
#   HOSTS_DENY_LINES=N: the daemon's hosts.deny starts with N lines (issue 12:
#   60000), so a per-ban rewrite of it would show.
#   RESOLVE_DELAY_MS=M: RESOLVE_HOST on, against a stub DNS resolver
#   (bench/stub_dns.py, in the victim namespace, the daemon's only
#   nameserver) that answers each PTR query after M ms (issue 12: 200).
#   The issue's run: GAP_MS=5 HOSTS_DENY_LINES=60000 RESOLVE_DELAY_MS=200.
# Prints each round and the pooled p50/p99 of both, with the ratio
# (target: daemon p99 ≤ 1.2× baseline p99, and ≤ 100 µs absolute).
set -u

[ "$(id -u)" -eq 0 ] || { echo "bench_probe_ban.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
# The integration lab: victim/attacker/friend namespaces on veth pairs, a
# private run directory, the daemon in its own mount namespace (overlays on
# /etc, /var/lib, /run), and `cleanup` removing all of it on any exit.
# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib.sh
. "$HERE/../tests/integration/lib.sh"
lab_traps

BUILD=$(cd "${1:-$SRC_ROOT/build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
PROBE=$BUILD/bench/probe_ban
BARE=$BUILD/bench/nfq_ban_bare
for f in "$BIN" "$PROBE" "$BARE"; do
    [ -x "$f" ] || { say "missing $f (meson compile -C $BUILD portsentry-nfq bench/probe_ban bench/nfq_ban_bare)"; exit 1; }
done
PROBES=${PROBES:-300} ROUNDS=${ROUNDS:-3} GAP_MS=${GAP_MS:-50}
HOSTS_DENY_LINES=${HOSTS_DENY_LINES:-0} RESOLVE_DELAY_MS=${RESOLVE_DELAY_MS:-0}
PORT=9

lab_up || { say "lab set-up failed"; exit 1; }

# The daemon's config: advanced TCP/UDP below 1024 (port 9 is watched and
# closed), ban on the first probe, the 1.2 responses on (history, blocked,
# hosts.deny), every file in the run directory. The ban-rate caps are off:
# the probes come from one /24 faster than they allow, and this measures the
# latency of a ban, not the caps (tests/integration/flood.sh covers those).
D=$RUN_TMP/d
CONF=$D/portsentry.yaml
write_yaml_config "$D" \
    'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
    'udp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
    "hosts_deny_file: \"$D/hosts.deny\"" \
    'kill_route: "/sbin/iptables -I INPUT -s $TARGET$ -j DROP"' \
    'kill_hosts_deny: "ALL: $TARGET$ : DENY"' \
    'scan_trigger: 0' \
    'ban_time: 1h' \
    'ban_rate_per_second: 0' \
    'ban_rate_per_prefix_per_minute: 0' \
    "resolve_host: $([ "$RESOLVE_DELAY_MS" -gt 0 ] && echo true || echo false)"

# hosts_deny_fill: the daemon's hosts.deny before each daemon round:
# HOSTS_DENY_LINES lines of other hosts (2001:db8::/32, never a probe source).
hosts_deny_fill() {
    : >"$D/hosts.deny"
    [ "$HOSTS_DENY_LINES" -gt 0 ] || return 0
    awk -v n="$HOSTS_DENY_LINES" 'BEGIN { for (i = 0; i < n; i++)
        printf "ALL: [2001:db8:%x:%x::1] : DENY\n", int(i / 65536), i % 65536 }' >"$D/hosts.deny"
}

# A slow reverse DNS: the stub answers on the victim's loopback, and the
# daemon's /etc (an overlay in its mount namespace, see lib.sh) names it as
# the only resolver.
if [ "$RESOLVE_DELAY_MS" -gt 0 ]; then
    mkdir -p "$RUN_TMP/ovl/etc/up"
    printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$RUN_TMP/ovl/etc/up/resolv.conf"
    in_v "$PY" "$HERE/stub_dns.py" 127.0.0.1 53 "$RESOLVE_DELAY_MS" >"$RUN_TMP/stub_dns.log" 2>&1 &
    LAB_PIDS+=("$!")
    for _ in $(seq 50); do grep -q ready "$RUN_TMP/stub_dns.log" && break; sleep 0.1; done
    grep -q ready "$RUN_TMP/stub_dns.log" || { say "stub DNS did not start"; exit 1; }
fi

# Baseline ruleset: the same set (interval + timeout) in the same table, the
# prerouting lookup the daemon's table also has, and the xt NFQUEUE rule the
# xt-queue backend loads (built here by iptables-nft: same nft_compat target).
baseline_up() {
    in_v nft -f - <<'EOF' || return 1
table inet portsentry {
    set banned { type ipv4_addr; flags interval, timeout; size 65536; }
    chain prerouting { type filter hook prerouting priority raw; ip saddr @banned drop; }
}
EOF
    in_v iptables-nft -w -A INPUT -p tcp --dport "$PORT" -j NFQUEUE --queue-num 0 --queue-bypass
}
baseline_down() {
    in_v nft delete table inet portsentry 2>/dev/null
    in_v nft delete table ip filter 2>/dev/null
    return 0
}

# run_probes NAME ROUND FIRST_SRC: one prober run; raw latencies to $RUN_TMP.
run_probes() {
    local name=$1 round=$2 first=$3 out
    out=$(taskset -c 0 "$PROBE" "/run/netns/$NS_V" "/run/netns/$NS_A" "$V_A4" "$PORT" "$PROBES" "$first" \
        "$GAP_MS" "$RUN_TMP/lat-$name-$round.txt")
    printf '  round %d %-28s %s\n' "$round" "$name" "$out"
}

round_baseline() {
    local r=$1 first=$2 pid
    baseline_up || { say "baseline ruleset refused"; return 1; }
    ip netns exec "$NS_V" taskset -c 1 "$BARE" 0 >"$RUN_TMP/bare.log" 2>&1 &
    pid=$!
    LAB_PIDS+=("$pid")
    for _ in $(seq 50); do grep -q ready "$RUN_TMP/bare.log" && break; sleep 0.1; done
    run_probes "bare reader + libnftnl" "$r" "$first"
    kill "$pid"; { wait "$pid"; } 2>/dev/null
    baseline_down
}

round_daemon() {
    local r=$1 first=$2
    hosts_deny_fill
    daemon_start xt-queue "$CONF" || return 1
    taskset -a -pc 1 "$DAEMON_PID" >/dev/null
    run_probes "portsentry-nfq (xt-queue)" "$r" "$first"
    # What the responses did (they run off the packet thread, after the bans).
    sleep 1
    local named
    named=$(grep -c 'bench.example' "$D/portsentry.history" 2>/dev/null)
    say "    daemon: hosts.deny $(wc -l <"$D/hosts.deny") lines, $(wc -l <"$D/portsentry.history") history records (${named:-0} with a resolved name)"
    daemon_stop TERM
    baseline_down  # SIGTERM leaves the table (and its bans) in place
}

# pooled NAME: p50 p99 n over every round of one contender.
pooled() {
    cat "$RUN_TMP"/lat-"$1"-*.txt | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "n/a n/a 0"; exit }
        i50 = int(0.50 * (NR - 1) + 0.5) + 1; i99 = int(0.99 * (NR - 1) + 0.5) + 1
        printf "%.1f %.1f %d\n", v[i50], v[i99], NR }'
}

say "bench_probe_ban: $ROUNDS rounds x $PROBES probes per contender, ${GAP_MS} ms apart; prober CPU 0, banner CPU 1"
say "  daemon: hosts.deny starts with $HOSTS_DENY_LINES lines; RESOLVE_HOST $([ "$RESOLVE_DELAY_MS" -gt 0 ] && echo "on, stub resolver answering after $RESOLVE_DELAY_MS ms" || echo off)"
say "  kernel $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    # Fresh sources every round: 198.18.0.0/15 carved into /22s (1022 probes max).
    b="198.18.$(( (r - 1) * 8 )).1" d="198.18.$(( (r - 1) * 8 + 4 )).1"
    if ((r % 2)); then round_baseline "$r" "$b" && round_daemon "$r" "$d"
    else round_daemon "$r" "$d" && round_baseline "$r" "$b"; fi || exit 1
done
read -r bp50 bp99 bn <<<"$(pooled "bare reader + libnftnl")"
read -r dp50 dp99 dn <<<"$(pooled "portsentry-nfq (xt-queue)")"
printf 'pooled  bare reader + libnftnl:    n=%s  p50 %s us  p99 %s us\n' "$bn" "$bp50" "$bp99"
printf 'pooled  portsentry-nfq (xt-queue): n=%s  p50 %s us  p99 %s us\n' "$dn" "$dp50" "$dp99"
awk -v a="$dp50" -v b="$bp50" -v c="$dp99" -v d="$bp99" \
    'BEGIN { printf "ratio   daemon/baseline: p50 %.2fx  p99 %.2fx  (target p99 <= 1.2x; absolute p99 <= 100 us)\n", a/b, c/d }'
