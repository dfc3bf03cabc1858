#!/bin/bash
# shellcheck disable=SC2154  # FB_*/LAPI_*/FWB_* come from bench/fleet_lib.sh
# bench_fleet_resync.sh: host B's full resync (GET /v1/decisions/stream?
# startup=true) of N decisions into its @fleet sets (issue 14), beside the
# baseline `nft -f` of a file adding the same N elements, with the same
# timeouts, to an equal set (interval + timeout, size fleet_set_size) in a
# scratch table in the same namespace, in the same run.
#
# The LAPI (SQLite, its own namespace) gets N bans through `cscli decisions
# import` (IPv6 host addresses in 2001:db8::/32, one per /64: the documentation
# ranges hold too few IPv4 addresses). Each round, alternately:
#   - portsentry-nfq on B, pull only, fresh (no state file, no table): its log
#     line "fleet: resync: N decisions in X ms (parse P ms, kernel K ms)" —
#     X is from the end of the HTTP answer to the kernel's commit; also the
#     wall time from exec to that line (start-up + HTTP included);
#   - `nft -f` of the same elements (from the same stream answer), timed;
# Prints every round, the medians and the ratio X / nft -f
# (target: no slower than nft -f). Then, once, for reference: the stock
# crowdsec-firewall-bouncer (own tables) from exec to its "N decisions added"
# line (HTTP included, like the daemon's exec → line), or how many elements
# it had after STOCK_TIMEOUT_S (it adds them slowly: minutes at 100k).
#
# Usage: sudo bench/bench_fleet_resync.sh [BUILD_DIR=build]
#   N=100000  ROUNDS=3  STOCK=1 (0: leave the stock bouncer out)  STOCK_TIMEOUT_S=900
#   DAEMON=0: the baselines alone (checks the lab without a fleet-capable daemon)
#   FL_KEEP_TMP=1 keeps the lab's files.
set -u
[ "$(id -u)" -eq 0 ] || { echo "bench_fleet_resync.sh: needs root (network namespaces, nft)" >&2; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd) || exit 1
BIN=$BUILD/portsentry-nfq
DAEMON=${DAEMON:-1}
[ "$DAEMON" = 0 ] || [ -x "$BIN" ] || { echo "missing $BIN (meson compile -C $BUILD portsentry-nfq)" >&2; exit 1; }
for c in crowdsec cscli crowdsec-firewall-bouncer jq; do
    command -v "$c" >/dev/null || { echo "bench_fleet_resync.sh: $c missing (scripts/install-deps)" >&2; exit 1; }
done
N=${N:-100000} ROUNDS=${ROUNDS:-3} STOCK=${STOCK:-1} STOCK_TIMEOUT_S=${STOCK_TIMEOUT_S:-900}
SIZE=65536
while [ "$SIZE" -le "$N" ]; do SIZE=$((SIZE * 2)); done   # fleet_set_size: room for N
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
. "$HERE/fleet_lib.sh"

fb_lab_up || { fl_say "lab set-up failed"; exit 1; }
REF_KEY=$(lapi_add_bouncer lapi bench-ref) || exit 1

echo "bench_fleet_resync: $N decisions, $ROUNDS alternating rounds; fleet_set_size $SIZE"
echo "  kernel $(uname -r), $(nproc) CPUs, $(nft --version), crowdsec $(crowdsec -version 2>&1 | sed -n 's/.*version: //p' | head -1)"
echo "  daemon $BIN; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HERE/fleet_resync_gen.py" csv "$N" >"$FL_TMP/decisions.csv" || exit 1
t0=$(fl_ms)
lapi_cscli lapi decisions import -i "$FL_TMP/decisions.csv" >"$FL_TMP/import.log" 2>&1 ||
    { fl_say "cscli decisions import failed:"; tail -3 "$FL_TMP/import.log" >&2; exit 1; }
echo "  LAPI filled: cscli decisions import of $N in $(($(fl_ms) - t0)) ms"
t0=$(fl_ms)
fl_stream "$FB_B" lapi "$REF_KEY" startup >"$FL_TMP/startup.json" || exit 1
echo "  one startup=true GET from B with curl: $(($(fl_ms) - t0)) ms (ip netns exec + curl included), $(stat -c %s "$FL_TMP/startup.json") bytes"
"$PY" "$HERE/fleet_resync_gen.py" nft "$FL_TMP/startup.json" "$SIZE" >"$FL_TMP/fleet.nft" 2>"$FL_TMP/gen.err" || exit 1
echo "  nft -f file: $(cat "$FL_TMP/gen.err"), $(stat -c %s "$FL_TMP/fleet.nft") bytes"

fb_conf_b 1s "  fleet_set_size: $SIZE" || exit 1

# daemon_round: sets x p k n from the resync line and w (exec → line, ms).
# Not for $(...): the daemon must be this shell's child.
daemon_round() {
    local t0 line end
    x=- p=- k=- n=- w=-
    [ "$DAEMON" = 1 ] || return 0
    ip netns exec "$FB_B" nft delete table inet portsentry 2>/dev/null
    rm -f "${FB_DDIR[b]}"/portsentry-nfq.state*
    t0=$(fl_ms)
    fb_daemon_start b || return 1
    end=$(($(fl_ms) + 300000))
    until line=$(grep -m1 'fleet: resync: [0-9]* decisions in' "${FB_LOG[b]}"); do
        if [ "$(fl_ms)" -ge "$end" ] || ! kill -0 "${FB_PID[b]}" 2>/dev/null; then
            fl_say "no resync line; log:"; tail -5 "${FB_LOG[b]}" >&2; fb_daemon_stop b; return 1
        fi
        sleep 0.01
    done
    w=$(($(fl_ms) - t0))
    fb_daemon_stop b
    ip netns exec "$FB_B" nft delete table inet portsentry 2>/dev/null
    # "fleet: resync: N decisions in X ms (parse P ms, kernel K ms)"
    read -r n x p k < <(printf '%s\n' "$line" | sed -n 's/.*fleet: resync: \([0-9]*\) decisions in \([0-9.]*\) ms (parse \([0-9.]*\) ms, kernel \([0-9.]*\) ms).*/\1 \2 \3 \4/p')
    [ -n "${k:-}" ] || { fl_say "resync line not parsed: $line"; return 1; }
}

# nft_round: ms of `nft -f` loading the same elements into table inet fleet_bench.
nft_round() {
    local t0 t1
    sync
    t0=$(date +%s%N)
    ip netns exec "$FB_B" nft -f "$FL_TMP/fleet.nft" || return 1
    t1=$(date +%s%N)
    ip netns exec "$FB_B" nft delete table inet fleet_bench
    echo $(((t1 - t0) / 1000000))
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }

X=() P=() K=() W=() F=()
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        daemon_round || exit 1
        f=$(nft_round) || exit 1
    else
        f=$(nft_round) || exit 1
        daemon_round || exit 1
    fi
    X+=("$x") P+=("$p") K+=("$k") W+=("$w") F+=("$f")
    echo "  round $r: portsentry-nfq resync $n decisions in $x ms (parse $p, kernel $k; exec -> line $w ms) | nft -f $f ms  [load $(cut -d' ' -f1 /proc/loadavg)]"
done
mf=$(median "${F[@]}")
mx=$mf
[ "$DAEMON" = 1 ] && mx=$(median "${X[@]}")
echo
printf '%-58s %10s ms  (parse %s, kernel %s)\n' "portsentry-nfq resync (HTTP answer end -> commit), median" "$mx" "$(median "${P[@]}")" "$(median "${K[@]}")"
printf '%-58s %10s ms\n' "nft -f of the same elements (baseline), median" "$mf"
awk -v a="$mx" -v b="$mf" 'BEGIN { printf "ratio   resync / nft -f: %.2fx  (target: <= 1x)\n", a / b }'
printf '%-58s %10s ms\n' "portsentry-nfq exec -> resync line (start-up + HTTP), median" "$(median "${W[@]}")"

# The stock bouncer once (it takes minutes at 100k): exec → its "N decisions
# added" line, or how far it got by STOCK_TIMEOUT_S.
if [ "$STOCK" = 1 ]; then
    t0=$(fl_ms) s=""
    # Not in a subshell: the bouncer must be this shell's child to be stopped.
    fl_bouncer_start fwb "$FB_B" lapi "$FB_FWB_KEY" 1s 2>/dev/null
    end=$((t0 + STOCK_TIMEOUT_S * 1000))
    while [ "$(fl_ms)" -lt "$end" ]; do
        grep -q "$N decisions added" "${FWB_DIR[fwb]}/bouncer.log" && { s=$(($(fl_ms) - t0)); break; }
        sleep 0.05
    done
    if [ -n "$s" ]; then
        printf '%-58s %10s ms  [load %s]\n' "stock bouncer exec -> '$N decisions added' (one run)" "$s" "$(cut -d' ' -f1 /proc/loadavg)"
    else
        got=$(ip netns exec "$FB_B" nft -j list set ip6 crowdsec6 crowdsec6-blacklists 2>/dev/null |
            jq '[.nftables[] | select(.set) | .set.elem // [] | length] | add // 0')
        echo "stock bouncer: not done after ${STOCK_TIMEOUT_S} s ($got of $N elements in its set)"
    fi
    fl_bouncer_stop fwb
fi
fb_finish
exit 0
