# shellcheck shell=bash
# shellcheck disable=SC2034  # FB_* are read by the scripts that source this
# The fleet benchmarks' lab (bench_fleet_*.sh): tests/fleet/lapi.sh's LAPI in a
# namespace, plus portsentry-nfq daemons in namespaces of their own, nft
# monitor readers (nft_stamp.py) and a prober. Sourced after BIN is set.
#
#   L  LAPI (SQLite)     192.0.2.1/25 (eth-a)   192.0.2.129/25 (eth-b)
#   A  host A (push)     192.0.2.2/25 (eth-l)   198.51.100.1/24, 203.0.113.1/24,
#                                               2001:db8:1::1/64 (eth-x)
#   B  host B (pull)     192.0.2.130/25 (eth-l), route 192.0.2.0/25 via .129
#   X  attacker          198.51.100.2/24, 203.0.113.2/24, 2001:db8:1::2/64 (eth0)
#                        + one address per probe (fb_attackers)
#
# Rules (the same as tests/fleet/lapi.sh and tests/integration/lib.sh): only
# documentation addresses; every process inside a namespace created here;
# veths created inside a namespace with the peer moved straight into another
# (nothing in the root namespace); no default route (B's one route is to the
# LAPI's /25); the root namespace's firewall is never touched; the daemons run
# in a mount namespace of their own where /etc, /var/lib and /run are overlays
# (upper layers in $FL_TMP); fl_traps removes everything on every exit.

FB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/fleet/lapi.sh
. "$FB_DIR/../tests/fleet/lapi.sh"
fl_traps
PY=/usr/bin/python3
FB_L=fb-l-$FL_SUFFIX FB_A=fb-a-$FL_SUFFIX FB_B=fb-b-$FL_SUFFIX FB_X=fb-x-$FL_SUFFIX
FB_LAPI_URL=http://192.0.2.1:8080
declare -A FB_PID FB_LOG FB_CONF FB_DDIR FB_NSOF FB_RUNS FB_STAMP
FB_STAMP_PIDS=()

# fb_lab_up: the four namespaces, the LAPI (running), host A's watcher
# password (FB_A_PW), host B's two bouncer keys: FB_B_KEY (ours) and FB_FWB_KEY
# (the stock bouncer's: one key per consumer, the stream cursor is per key),
# FB_WATCH_KEY for stream_stamp.py, FB_A_KEY for host A when it pulls too.
fb_lab_up() {
    fl_ns_add "$FB_L" && fl_ns_add "$FB_A" && fl_ns_add "$FB_B" && fl_ns_add "$FB_X" &&
    fl_link "$FB_A" eth-l 192.0.2.2/25 "$FB_L" eth-a 192.0.2.1/25 &&
    fl_link "$FB_B" eth-l 192.0.2.130/25 "$FB_L" eth-b 192.0.2.129/25 &&
    ip -n "$FB_B" route add 192.0.2.0/25 via 192.0.2.129 &&
    fl_link "$FB_X" eth0 198.51.100.2/24 "$FB_A" eth-x 198.51.100.1/24 &&
    fl_addr "$FB_X" eth0 203.0.113.2/24 && fl_addr "$FB_A" eth-x 203.0.113.1/24 &&
    fl_addr "$FB_X" eth0 2001:db8:1::2/64 && fl_addr "$FB_A" eth-x 2001:db8:1::1/64 &&
    ip -n "$FB_A" -6 route add 2001:db8:100::/48 dev eth-x || return 1
    lapi_new lapi "$FB_L" 192.0.2.1 8080 || return 1
    FB_A_PW=$(lapi_add_watcher lapi host-a) && FB_B_KEY=$(lapi_add_bouncer lapi host-b) &&
    FB_FWB_KEY=$(lapi_add_bouncer lapi fwb-b) && FB_WATCH_KEY=$(lapi_add_bouncer lapi bench-watch) &&
    FB_A_KEY=$(lapi_add_bouncer lapi host-a) || return 1
    lapi_start lapi
}

# fb_attackers FILE: adds every address of FILE (one a line) to the
# attacker's eth0 (IPv4 as /24 secondaries of the two /24s above, IPv6 /128
# nodad), in one `ip -batch`.
fb_attackers() {
    awk '/:/ { print "addr add " $1 "/128 dev eth0 nodad"; next }
         NF { print "addr add " $1 "/24 dev eth0" }' "$1" | ip -n "$FB_X" -batch -
}

# fb_conf NAME NS [YAML-LINE...]: writes $FL_TMP/d-NAME/portsentry.yaml with the
# given lines and then every file the daemon reads or writes, in that dir.
fb_conf() {
    local name=$1 ns=$2 d="$FL_TMP/d-$1"; shift 2
    mkdir -p "$d" && : >"$d/portsentry.ignore" || return 1
    FB_DDIR[$name]=$d FB_CONF[$name]=$d/portsentry.yaml FB_NSOF[$name]=$ns
    {
        printf '%s\n' "$@"
        cat <<CONF
ignore_file: "$d/portsentry.ignore"
history_file: "$d/portsentry.history"
blocked_file: "$d/portsentry.blocked"
hosts_deny_file: "$d/hosts.deny"
state_file: "$d/portsentry-nfq.state"
control_socket: "$d/portsentry-nfq.sock"
CONF
    } >"$d/portsentry.yaml"
}

# The detector settings of host A: advanced TCP below 1024, a ban on the
# first probe into the kernel set, no hosts.deny line, the ban-rate caps off
# (200 sources of one /24 in 20 s, 1000 of one /48 in 10 s).
FB_DETECT=('tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}'
    'kill_route: "nft-set"' 'kill_hosts_deny: ""' 'scan_trigger: 0' 'ban_time: 4h'
    'ban_rate_per_second: 0' 'ban_rate_per_prefix_per_minute: 0')

# fb_conf_a POLL [PULL] / fb_conf_b POLL [EXTRA-LINE...]: host A pushes (and
# pulls with PULL=1: the default of a fleet config), host B pulls (no push),
# both at POLL ("1s", "100ms").
fb_conf_a() {
    local pull=('pull: false')
    [ "${2:-0}" = 1 ] && pull=('pull: true' "  bouncer_key_file: \"$FB_A_KEY\"")
    fb_conf a "$FB_A" "${FB_DETECT[@]}" \
        'crowdsec:' "  lapi_url: \"$FB_LAPI_URL\"" '  machine_id: host-a' \
        "  password_file: \"$FB_A_PW\"" '  push: true' "  ${pull[0]}" "${pull[@]:1}" "  poll_interval: $1"
}
fb_conf_b() {
    local poll=$1; shift
    fb_conf b "$FB_B" "${FB_DETECT[@]}" \
        'crowdsec:' "  lapi_url: \"$FB_LAPI_URL\"" "  bouncer_key_file: \"$FB_B_KEY\"" \
        '  push: false' '  pull: true' "  poll_interval: $poll" "$@" \
        'metrics: {listen: "127.0.0.1:9470"}'
}

# fb_daemon_start NAME: runs $BIN with NAME's config in its namespace, in a
# mount namespace of its own whose /etc, /var/lib and /run are overlays (as
# tests/integration/lib.sh does); FB_PID[NAME] is the daemon itself (ip netns
# exec, unshare and sh exec). Waits for "portsentry-nfq: ready" (30 s).
fb_daemon_start() {
    local name=$1 d=${FB_DDIR[$1]} ns=${FB_NSOF[$1]} o
    FB_RUNS[$name]=$((${FB_RUNS[$name]:-0} + 1))
    FB_LOG[$name]=$d/daemon-${FB_RUNS[$name]}.log
    o=$d/ovl
    for x in etc var-lib run; do mkdir -p "$o/$x/up" "$o/$x/work"; done
    # shellcheck disable=SC2016
    ip netns exec "$ns" unshare --mount --propagation private /bin/sh -c '
        o=$1; shift
        mount -t overlay ovl-etc -o "lowerdir=/etc,upperdir=$o/etc/up,workdir=$o/etc/work" /etc &&
        mount -t overlay ovl-varlib -o "lowerdir=/var/lib,upperdir=$o/var-lib/up,workdir=$o/var-lib/work" /var/lib &&
        mount -t overlay ovl-run -o "lowerdir=/run,upperdir=$o/run/up,workdir=$o/run/work" /run || exit 99
        exec "$@"' sh "$o" "$BIN" -c "${FB_CONF[$name]}" >"${FB_LOG[$name]}" 2>&1 &
    FB_PID[$name]=$!
    FL_PIDS+=("${FB_PID[$name]}")
    for _ in $(seq 300); do
        grep -q 'portsentry-nfq: ready' "${FB_LOG[$name]}" && return 0
        kill -0 "${FB_PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    fl_say "daemon $name not ready; log:"; tail -20 "${FB_LOG[$name]}" | sed 's/^/    | /' >&2
    return 1
}

# fb_daemon_stop NAME: SIGTERM, SIGKILL after 10 s, reaped.
fb_daemon_stop() {
    local pid=${FB_PID[$1]:-}
    [ -n "$pid" ] || return 0
    {
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" || break; sleep 0.1; done
        kill -0 "$pid" && kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    fl_forget_pid "$pid"
    FB_PID[$1]=""
}

# fb_stamp_start NAME NS [TABLE/SET...]: nft_stamp.py in NS, its lines in
# FB_STAMP[NAME] ($FL_TMP/stamp-NAME.txt); returns once it runs.
fb_stamp_start() {
    local name=$1 ns=$2; shift 2
    FB_STAMP[$name]=$FL_TMP/stamp-$name.txt
    ip netns exec "$ns" "$PY" "$FB_DIR/nft_stamp.py" "$@" >"${FB_STAMP[$name]}" 2>"$FL_TMP/stamp-$name.err" &
    FL_PIDS+=("$!") FB_STAMP_PIDS+=("$!")
    for _ in $(seq 100); do grep -q ready "$FL_TMP/stamp-$name.err" && { sleep 0.2; return 0; }; sleep 0.05; done
    fl_say "nft_stamp $name did not start"; return 1
}

# fb_finish: stops what is still running (daemons, the stock bouncer, the
# readers, the LAPI) in order and quietly, before fl_cleanup's SIGKILLs (whose
# "Killed" job notices would end the output).
fb_finish() {
    local n p
    for n in "${!FWB_PID[@]}"; do fl_bouncer_stop "$n"; done
    for n in "${!FB_PID[@]}"; do fb_daemon_stop "$n"; done
    for p in "${FB_STAMP_PIDS[@]}"; do
        { kill -TERM "$p" && wait "$p"; } 2>/dev/null
        fl_forget_pid "$p"
    done
    FB_STAMP_PIDS=()
    lapi_stop lapi
}

# fb_stream_stamp_start NAME INTERVAL_MS: stream_stamp.py in the LAPI's
# namespace with FB_WATCH_KEY, its lines in FB_STAMP[NAME]; once it polls.
fb_stream_stamp_start() {
    local name=$1
    FB_STAMP[$name]=$FL_TMP/stamp-$name.txt
    ip netns exec "$FB_L" "$PY" "$FB_DIR/stream_stamp.py" "$FB_LAPI_URL" "$FB_WATCH_KEY" "$2" \
        >"${FB_STAMP[$name]}" 2>"$FL_TMP/stamp-$name.err" &
    FL_PIDS+=("$!") FB_STAMP_PIDS+=("$!")
    for _ in $(seq 100); do grep -q ready "$FL_TMP/stamp-$name.err" && return 0; sleep 0.05; done
    fl_say "stream_stamp $name did not start:"; cat "$FL_TMP/stamp-$name.err" >&2; return 1
}

# fb_count_seen STAMPFILE SETS ADDRFILE: how many addresses of ADDRFILE have
# an element in one of SETS (comma-separated TABLE/SET) in the stamp file.
fb_count_seen() {
    awk -v sets=",$2," 'FNR == NR { want[$1] = 1; next }
        index(sets, "," $2 ",") && ($3 in want) && !($3 in got) { got[$3] = 1; n++ }
        END { print n + 0 }' "$3" "$1"
}

# fb_wait_seen STAMPFILE SETS ADDRFILE TIMEOUT_S: until every address is seen.
fb_wait_seen() {
    local want end
    want=$(grep -c . "$3")
    end=$(($(fl_ms) + $4 * 1000))
    while [ "$(fl_ms)" -lt "$end" ]; do
        [ "$(fb_count_seen "$1" "$2" "$3")" -ge "$want" ] && return 0
        sleep 0.2
    done
    return 1
}

# fb_ticks PID: utime + stime of the whole process (all threads), clock ticks.
fb_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
FB_HZ=$(getconf CLK_TCK)

# fb_pct TICKS MS: CPU as % of one core over MS milliseconds of wall time.
fb_pct() { awk -v t="$1" -v ms="$2" -v hz="$FB_HZ" 'BEGIN { printf "%.1f", 100 * t / hz / (ms / 1000) }'; }
