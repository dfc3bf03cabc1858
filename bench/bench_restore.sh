#!/bin/bash
# bench_restore.sh: start-up with N bans in the state file until the daemon's
# `ready` line, beside the baseline `nft -f` of the same timed elements into
# an equal set (interval + timeout, size = ban_set_size), in the same run.
# Each size: ROUNDS alternating rounds (daemon, nft, daemon, nft, ...), each in
# a fresh network namespace of its own (the root namespace's firewall is never
# touched); prints every round, the medians and the daemon's peak RSS (VmHWM,
# read just after `ready`: start-up is where the peak is).
#
# Usage: sudo bench/bench_restore.sh [BUILD_DIR=build]
#   SIZES="10000 65536 100000 1000000"  ROUNDS=3  TMPDIR=/var/tmp
#   VIEWS=1: also time status, why and list through the CLI once each daemon is ready
# Targets (issue 12): at 1M no slower than nft -f; at 65,536 under 1 s.
set -u
[ "$(id -u)" -eq 0 ] || { echo "bench_restore.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
GEN=$BUILD/bench/restore_gen
for f in "$BIN" "$GEN"; do
    [ -x "$f" ] || { echo "missing $f (meson compile -C $BUILD portsentry-nfq bench/restore_gen)" >&2; exit 1; }
done
SIZES=${SIZES:-"10000 65536 100000 1000000"} ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/ps-restore.XXXXXX")
NS=""
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_ns() {
    NS=ps-restore-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    ip netns add "$NS" && ip -n "$NS" link set lo up
}
del_ns() { ip netns del "$NS"; NS=""; }
now_ns() { date +%s%N; }

# config SIZE: the daemon's config for one size, every file in $WORK.
config() {
    cat >"$WORK/portsentry.yaml" <<EOF
tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}
udp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}
ban_set_size: $1
ignore_file: "$WORK/portsentry.ignore"
history_file: "$WORK/portsentry.history"
blocked_file: "$WORK/portsentry.blocked"
hosts_deny_file: "$WORK/hosts.deny"
state_file: "$WORK/run.state"
control_socket: "$WORK/portsentry-nfq.sock"
EOF
    : >"$WORK/portsentry.ignore"
}

# daemon_round: seconds from exec to `ready`, and VmHWM (KiB), as "S KIB".
daemon_round() {
    new_ns || return 1
    rm -f "$WORK"/run.state.journal.*  # the last round's journal: not part of this start
    cp "$WORK/gen.state" "$WORK/run.state"
    sync
    local t0 t1 log=$WORK/daemon.log hwm
    : >"$log"
    t0=$(now_ns)
    ip netns exec "$NS" "$BIN" -c "$WORK/portsentry.yaml" >"$log" 2>&1 &
    DPID=$!
    until grep -q 'portsentry-nfq: ready' "$log"; do
        kill -0 "$DPID" 2>/dev/null || { echo "daemon died:" >&2; tail -5 "$log" >&2; DPID=""; return 1; }
        sleep 0.005
    done
    t1=$(now_ns)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
    if ! grep -q "ready: .* $N bans restored" "$log"; then
        echo "unexpected ready line: $(grep ready "$log")" >&2
    fi
    [ "${VIEWS:-0}" = 1 ] && views
    kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; DPID=""
    del_ns
    echo "$(( (t1 - t0) / 1000000 )) $hwm"
}

# views: with VIEWS=1, the exchange of status, why (a banned and an unbanned
# address) and list on the control socket of the daemon just started, timed by
# bench/control_time.py (a client process's own start-up left out), on stderr.
views() {
    local hit
    hit=$(grep -m1 -o '"prefix":"[^"/]*' "$WORK/gen.state" | cut -d'"' -f4)
    echo "  n=$N views: $(python3 "$HERE/control_time.py" "$WORK/portsentry-nfq.sock" status "why $hit" \
        "why 10.9.8.7" list "list --json" status)" >&2
}

# nft_round: milliseconds of `nft -f` loading the same elements.
nft_round() {
    new_ns || return 1
    sync
    local t0 t1
    t0=$(now_ns)
    ip netns exec "$NS" nft -f "$WORK/gen.nft" || { del_ns; return 1; }
    t1=$(now_ns)
    del_ns
    echo $(( (t1 - t0) / 1000000 ))
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }

echo "bench_restore: $ROUNDS alternating rounds per size; kernel $(uname -r), $(nproc) CPUs, $(nft --version)"
echo "  load: $(cut -d' ' -f1-3 /proc/loadavg); daemon: $BIN"
printf '%9s  %14s  %14s  %7s  %12s\n' bans "daemon ms" "nft -f ms" ratio "daemon VmHWM"
for N in $SIZES; do
    "$GEN" "$N" "$WORK/gen.state" "$WORK/gen.nft" "$N" || exit 1
    config "$N"
    d=() n=() h=()
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r ms kib < <(daemon_round) || exit 1
        [ -n "${ms:-}" ] || exit 1
        d+=("$ms") h+=("$kib")
        nms=$(nft_round) || exit 1
        n+=("$nms")
        echo "  n=$N round $r: daemon ${ms} ms (VmHWM ${kib} KiB), nft -f ${nms} ms" >&2
    done
    md=$(median "${d[@]}") mn=$(median "${n[@]}") mh=$(median "${h[@]}")
    printf '%9s  %14s  %14s  %7s  %9s MiB\n' "$N" "$md" "$mn" \
        "$(awk -v a="$md" -v b="$mn" 'BEGIN {printf "%.2f", a / b}')" "$((mh / 1024))"
done
