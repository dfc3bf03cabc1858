#!/bin/bash
# run-all.sh: every benchmark of docs/BENCHMARKS.md, once, in order, with the
# machine's load before each; output also saved to BUILD_DIR/bench-last-run.txt.
#
#   sudo bench/run-all.sh [BUILD_DIR=build]
#
# (a) bench_engine (Google Benchmark, one core)  (b) bench_probe_ban.sh
# (c) bench_queue (NfQueue vs bare C reader vs plain nft drop)
# ban insertion: bench_ban (libnftnl vs forked nft)  (d) bench_established.sh
# ban table persistence: bench_state (journal + compaction vs the whole-file rewrite: loop steps, bytes/min)
# operator views: bench_views (status, why, list over 125k-1M bans)
# restore: bench_restore.sh (start-up with 10k-1M bans vs nft -f of the same elements)
# fleet (issue 14; needs crowdsec + crowdsec-firewall-bouncer, scripts/install-deps):
#   bench_fleet_propagation.sh (ban on A -> in force on B, ours vs the stock bouncer, 1 s and 100 ms),
#   bench_fleet_resync.sh (100k decisions vs nft -f; STOCK=0 here: the stock bouncer takes >20 min),
#   bench_fleet_burst.sh (CPU during 100 bans/s for 10 s)
# Everything needing packets runs in network namespaces of its own.
set -u
[ "$(id -u)" -eq 0 ] || { echo "run-all.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd) || exit 1
OUT=${OUT:-$BUILD/bench-last-run.txt}

meson compile -C "$BUILD" portsentry-nfq bench/bench_engine bench/bench_queue bench/nfq_bare bench/synflood \
    bench/bench_ban bench/probe_ban bench/nfq_ban_bare bench/bench_state bench/bench_views bench/restore_gen >/dev/null || { echo "run-all.sh: build failed" >&2; exit 1; }

rc=0
step() {
    echo
    echo "=== $1   [$(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)]"
    shift
    "$@" 2>&1 || { echo "(exit status $?)"; rc=1; }
}
{
    echo "run-all: $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "build: $BUILD ($(meson introspect --buildoptions "$BUILD" 2>/dev/null |
        python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null))"
    step "(a) engine decisions/s" taskset -c 1 "$BUILD/bench/bench_engine" --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true
    step "(b) probe->ban latency" "$HERE/bench_probe_ban.sh" "$BUILD"
    step "(c) queued probes/s" "$BUILD/bench/bench_queue" 3 3
    step "ban insertion latency" "$BUILD/bench/bench_ban"
    step "(d) established traffic" "$HERE/bench_established.sh" "$BUILD"
    step "ban table persistence" "$BUILD/bench/bench_state" /var/tmp 131072 1000000
    step "status, why, list" "$BUILD/bench/bench_views"
    step "restore" "$HERE/bench_restore.sh" "$BUILD"
    step "fleet propagation" "$HERE/bench_fleet_propagation.sh" "$BUILD"
    step "fleet resync" env STOCK=0 "$HERE/bench_fleet_resync.sh" "$BUILD"
    step "fleet burst" "$HERE/bench_fleet_burst.sh" "$BUILD"
    exit "$rc"  # this group is a pipeline's subshell: its status is rc
} | tee "$OUT"
exit "${PIPESTATUS[0]}"
