# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # NM_* set by eval; globals read by run.sh
# Lab and assertion helpers for the portsentry-nfq end-to-end tests.
# Sourced by run.sh; needs bash, root, iproute2, nft, iptables-nft, nmap, curl,
# /usr/bin/python3. Everything that touches the network happens inside
# namespaces created here; the root namespace's firewall and routes are never
# touched, and nothing is routed out (the lab has no default route at all).

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$(cd "$IT_DIR/../.." && pwd)
export SRC_ROOT
PY=/usr/bin/python3   # the system python: pyenv shims may not see http.server's env

# Lab addresses (documentation ranges only).
V_A4=198.51.100.1 A4=198.51.100.2 V_A6=2001:db8:1::1 A6=2001:db8:1::2
V_F4=203.0.113.1 F4=203.0.113.2 V_F6=2001:db8:2::1 F6=2001:db8:2::2
# Extra attacker sources, one per scan type, so each scan meets a fresh
# per-source state without restarting the daemon.
A4_FIN=198.51.100.3 A4_NULL=198.51.100.4 A4_XMAS=198.51.100.5 A4_UDP=198.51.100.6
A4_LATE=198.51.100.7 A4_KILL=198.51.100.8 A4_SPARE=198.51.100.9

SUFFIX=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
NS_V=ps-v-$SUFFIX NS_A=ps-a-$SUFFIX NS_F=ps-f-$SUFFIX
RUN_TMP=$(mktemp -d /tmp/ps-integ.XXXXXX)
chmod 755 "$RUN_TMP"   # the http.server document root lives here
LAB_PIDS=()            # every background process we started (services, daemons)
DAEMON_RUNS=0          # daemons started so far; daemon-N.log per start
DAEMON_PID=""
DAEMON_LOG=""
KEEP_TMP=${KEEP_TMP:-0}

in_v() { ip netns exec "$NS_V" "$@"; }
in_a() { ip netns exec "$NS_A" "$@"; }
in_f() { ip netns exec "$NS_F" "$@"; }

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- lab ------

LAB_FIRST_RUN=1
lab_up() {
    LAB_FIRST_RUN=$((DAEMON_RUNS + 1))
    ip netns add "$NS_V" && ip netns add "$NS_A" && ip netns add "$NS_F" || return 1
    # Create the veths inside the victim and move the peer straight into the
    # other namespace: no interface ever exists in the root namespace.
    ip -n "$NS_V" link add eth-a type veth peer name eth0 netns "$NS_A" || return 1
    ip -n "$NS_V" link add eth-f type veth peer name eth0 netns "$NS_F" || return 1
    local ns
    for ns in "$NS_V" "$NS_A" "$NS_F"; do ip -n "$ns" link set lo up || return 1; done
    # nodad: v6 addresses usable at once instead of "tentative" for ~2 s.
    ip -n "$NS_V" addr add "$V_A4/24" dev eth-a &&
    ip -n "$NS_V" addr add "$V_A6/64" dev eth-a nodad &&
    ip -n "$NS_V" addr add "$V_F4/24" dev eth-f &&
    ip -n "$NS_V" addr add "$V_F6/64" dev eth-f nodad &&
    ip -n "$NS_A" addr add "$A4/24" dev eth0 &&
    ip -n "$NS_A" addr add "$A6/64" dev eth0 nodad &&
    ip -n "$NS_F" addr add "$F4/24" dev eth0 &&
    ip -n "$NS_F" addr add "$F6/64" dev eth0 nodad || return 1
    local a
    for a in "$A4_FIN" "$A4_NULL" "$A4_XMAS" "$A4_UDP" "$A4_LATE" "$A4_KILL" "$A4_SPARE"; do
        ip -n "$NS_A" addr add "$a/24" dev eth0 || return 1
    done
    ip -n "$NS_V" link set eth-a up && ip -n "$NS_V" link set eth-f up &&
    ip -n "$NS_A" link set eth0 up && ip -n "$NS_F" link set eth0 up || return 1
    # Closed UDP ports answer with ICMP port unreachable, which the kernel
    # rate-limits twice: per peer (1/s by default: a UDP scan of the undefended
    # victim would take minutes) and by a token bucket shared by all peers
    # (burst 50, which a 50-port scan sits right at). Per-namespace sysctls;
    # best effort, as older kernels keep the shared bucket global.
    in_v sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 2>/dev/null || true
    in_v sysctl -qw net.ipv4.icmp_msgs_burst=10000 net.ipv4.icmp_msgs_per_sec=100000 2>/dev/null || true
    mkdir -p "$RUN_TMP/www" && echo "portsentry-nfq integration lab" > "$RUN_TMP/www/index.html"
}

lab_down() {
    local pid
    for pid in "${LAB_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${LAB_PIDS[@]}"; do
        { wait "$pid"; } 2>/dev/null || true
    done
    LAB_PIDS=()
    DAEMON_PID=""
    local ns
    for ns in "$NS_V" "$NS_A" "$NS_F"; do
        # Anything still running inside our namespaces was started by us.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}

# run.sh's trap: every exit path, including ^C and a failed assertion.
# lab_traps: tear the lab down however the script ends (and exit with the
# usual status on INT/TERM, so the EXIT trap runs then too).
lab_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# LAB_CLEANUP_HOOKS: functions cleanup runs after lab_down (e.g. fl_cleanup
# of tests/fleet/lapi.sh, for a script that sources both libraries).
LAB_CLEANUP_HOOKS=()
cleanup() {
    local rc=$? hook
    trap - EXIT INT TERM
    lab_down
    for hook in "${LAB_CLEANUP_HOOKS[@]}"; do "$hook"; done
    ip netns del "ps-p-$SUFFIX" 2>/dev/null || true
    if [ "$KEEP_TMP" = 1 ]; then say "kept $RUN_TMP"; else rm -rf "$RUN_TMP"; fi
    exit "$rc"
}

# start_service PORT: python http.server in the victim on [::]:PORT (v4-mapped
# too), waits until it accepts connections.
start_service() {
    local port=$1
    # Not through in_v: a backgrounded function is a subshell, and $! would
    # name the subshell, not the server.
    ip netns exec "$NS_V" "$PY" -m http.server "$port" --bind :: --directory "$RUN_TMP/www" \
        >"$RUN_TMP/http-$port.log" 2>&1 &
    LAB_PIDS+=($!)
    for _ in $(seq 50); do
        if in_v curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then return 0; fi
        sleep 0.1
    done
    say "service on port $port did not come up"; return 1
}

# ------------------------------------------------------- backend probes ----
# Each backend is probed by loading its rule in a throwaway namespace, not by
# asking the daemon: a daemon bug must show up as FAIL, never as SKIP.
# Prints the kernel's complaint on failure.
probe_backend() {
    local backend=$1 ns="ps-p-$SUFFIX" out rc
    ip netns add "$ns" || return 1
    case $backend in
    queue)
        out=$(ip netns exec "$ns" nft -f - 2>&1 <<'EOF'
table inet probe {
    chain c { type filter hook input priority 0; meta l4proto tcp queue num 0 bypass; }
}
EOF
        ); rc=$? ;;
    xt-queue)
        # iptables-nft builds exactly the nft_compat `target NFQUEUE` rule the
        # daemon loads through libnftnl.
        out=$(ip netns exec "$ns" iptables-nft -w -A INPUT -p tcp -j NFQUEUE \
            --queue-num 1 --queue-bypass 2>&1); rc=$? ;;
    nflog)
        out=$(ip netns exec "$ns" nft -f - 2>&1 <<'EOF'
table inet probe {
    chain c { type filter hook input priority 0; meta l4proto tcp log group 5; }
}
EOF
        ); rc=$? ;;
    *) out="unknown backend"; rc=1 ;;
    esac
    ip netns del "$ns" 2>/dev/null || true
    [ $rc -eq 0 ] && return 0
    # One line: the kernel's error and the statement it refused.
    local err; err=$(printf '%s\n' "$out" | grep -m1 -o 'Error: .*\|iptables.*' || true)
    case $backend in
    queue) echo "${err:-error} (nft 'queue num 0 bypass')" ;;
    xt-queue) echo "${err:-error} (nft_compat target NFQUEUE)" ;;
    nflog) echo "${err:-error} (nft 'log group 5')" ;;
    *) echo "$out" ;;
    esac
    return 1
}

# ------------------------------------------------------------- daemon ------

# daemon_start BACKEND CONFIG [extra args...]: runs the daemon in the victim in
# its own mount namespace, where /etc, /var/lib and /run are overlays whose
# upper layers live in $RUN_TMP: even a default path the config forgot to
# override can never write to the real /etc or /var/lib, and a lock under /run
# never collides with another instance on this host. Waits for "ready".
# Returns 1 (with the log tail) if the daemon exits or is not ready in 20 s.
# Several daemons at once (the fleet test): run each in its own namespace
# (NS_V=... for the call) with its own overlay directory, DAEMON_OVL (default
# $RUN_TMP/ovl; two live overlays must not share upper/work directories);
# DAEMON_PID and DAEMON_LOG are then the last one started.
daemon_start() {
    local backend=$1 conf=$2; shift 2
    local ovl=${DAEMON_OVL:-$RUN_TMP/ovl}
    DAEMON_RUNS=$((DAEMON_RUNS + 1))
    DAEMON_LOG="$RUN_TMP/daemon-$DAEMON_RUNS.log"
    local d
    for d in etc var-lib run; do mkdir -p "$ovl/$d/up" "$ovl/$d/work"; done
    # The overlays are mounted by the shell that then execs the daemon, so
    # $! is the daemon's pid (ip netns exec and unshare exec, they do not fork).
    # shellcheck disable=SC2016
    ip netns exec "$NS_V" unshare --mount --propagation private /bin/sh -c '
        o=$1; shift
        mount -t overlay ovl-etc -o "lowerdir=/etc,upperdir=$o/etc/up,workdir=$o/etc/work" /etc &&
        mount -t overlay ovl-varlib -o "lowerdir=/var/lib,upperdir=$o/var-lib/up,workdir=$o/var-lib/work" /var/lib &&
        mount -t overlay ovl-run -o "lowerdir=/run,upperdir=$o/run/up,workdir=$o/run/work" /run || exit 99
        exec "$@"' sh "$ovl" "$BIN" -c "$conf" --steer "$backend" "$@" \
        >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    LAB_PIDS+=("$DAEMON_PID")
    for _ in $(seq 200); do
        if grep -q 'portsentry-nfq: ready' "$DAEMON_LOG"; then return 0; fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null; local rc=$?
            say "daemon exited with status $rc before ready; log:"; sed 's/^/    | /' "$DAEMON_LOG" | tail -20 >&2
            DAEMON_PID=""; return 1
        fi
        sleep 0.1
    done
    say "daemon not ready after 20 s; log:"; sed 's/^/    | /' "$DAEMON_LOG" | tail -20 >&2
    return 1
}

# daemon_stop SIGNAL: sends it, waits up to 10 s; sets STOP_RC to the exit
# status (128+N for a signal) or "hung" (then SIGKILLs it). Not for $(...):
# only this shell can wait for its child.
STOP_RC=""
daemon_stop() {
    local sig=$1 pid=$DAEMON_PID
    STOP_RC="no-daemon"
    [ -n "$pid" ] || return 1
    kill "-$sig" "$pid" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        STOP_RC="hung"
    fi
    # Braces: bash reports a job killed by a signal ("Killed") on the
    # shell's stderr, which a redirection of wait alone does not cover.
    { wait "$pid"; } 2>/dev/null
    local rc=$?
    [ "$STOP_RC" = hung ] || STOP_RC=$rc
    DAEMON_PID=""
}

# The logs of every daemon started since the current lab came up (a restart
# starts a new file); earlier labs' logs must not satisfy a check.
daemon_logs() {
    local n
    for ((n = LAB_FIRST_RUN; n <= DAEMON_RUNS; n++)); do
        cat "$RUN_TMP/daemon-$n.log" 2>/dev/null
    done
}

# write_yaml_config DIR [YAML-LINE...]: writes DIR/portsentry.yaml with the
# given lines (modes, blocks, policy keys) followed by every file the daemon
# reads or writes, all inside DIR (an empty ignore file is created). Later
# keys must not repeat these; the YAML reader rejects duplicates.
write_yaml_config() {
    local dir=$1; shift
    mkdir -p "$dir" && : >"$dir/portsentry.ignore"
    {
        printf '%s\n' "$@"
        cat <<CONF
ignore_file: "$dir/portsentry.ignore"
history_file: "$dir/portsentry.history"
blocked_file: "$dir/portsentry.blocked"
state_file: "$dir/portsentry-nfq.state"
control_socket: "$dir/portsentry-nfq.sock"
CONF
    } >"$dir/portsentry.yaml"
}

# ctl CONF ARGS...: an operator command (why, ban, status, ...) against the
# daemon of CONF, from inside the victim.
ctl() {
    local conf=$1; shift
    in_v "$BIN" -c "$conf" "$@"
}

# probe_from SRC DST PORT: one TCP connect attempt (a SYN, retried by the
# kernel for 0.5 s) from local address SRC in the attacker namespace.
probe_from() {
    in_a "$PY" -c '
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.5); s.bind((src, 0))
try: s.connect((dst, port))
except OSError: pass' "$1" "$2" "$3"
}

# tcp_answer SRC DST PORT: how a connect from SRC (in the attacker namespace)
# ends: open, refused (RST) or timeout (dropped).
tcp_answer() {
    in_a "$PY" -c '
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(1); s.bind((src, 0))
try: s.connect((dst, port)); print("open")
except ConnectionRefusedError: print("refused")
except OSError: print("timeout")' "$1" "$2" "$3"
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s, at most SECONDS*10 times.
wait_until() {
    local n=$(($1 * 10)); shift
    for ((; n > 0; n--)); do "$@" && return 0; sleep 0.1; done
    return 1
}

# within SECONDS CMD...: CMD succeeds before SECONDS (fractions allowed) of
# wall-clock time have passed, polling every 0.05 s; unlike wait_until, a CMD
# that is itself slow (ip netns exec + nft: 0.1-0.3 s here) does not stretch
# the deadline. WITHIN_MS: milliseconds from the call to the success.
WITHIN_MS=""
within() {
    local t0 end
    t0=$(date +%s%3N)
    end=$((t0 + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'))); shift
    while :; do
        if "$@"; then WITHIN_MS=$(($(date +%s%3N) - t0)); return 0; fi
        [ "$(date +%s%3N)" -lt "$end" ] || break
        sleep 0.05
    done
    WITHIN_MS=""
    return 1
}

# set_timeout SET ADDR: the timeout nft shows for ADDR's element ("8s", "1h")
set_timeout() {
    in_v nft list set inet portsentry "$1" 2>/dev/null | tr ',{}' '\n' |
        awk -v a="$2" '$1 == a { for (i = 2; i <= NF; i++) if ($i == "timeout") print $(i + 1) }'
}

# set_has SET ADDR: ADDR is an element of inet portsentry SET in the victim.
# nft prints elements as "elements = { 198.51.100.2 timeout 1h expires ... }".
set_has() {
    in_v nft list set inet portsentry "$1" 2>/dev/null |
        tr ',{}' '\n' | awk '{print $1}' | grep -qxF "$2"
}

# ------------------------------------------------------------ metrics -------

# scrape URL: the body of GET URL from inside the victim ("" on failure).
scrape() { in_v curl -s --max-time 3 "$1" || true; }
# value TEXT SERIES: the value of one series line ("name{labels}"), 0 if absent.
value() {
    awk -v k="$2" '$1 == k { v = $2 } END { printf "%d", (v == "" ? 0 : v) }' <<<"$1"
}
# sum_of NAME TEXT: the sum of every series of NAME.
sum_of() {
    awk -v n="$1" 'index($1, n "{") == 1 || $1 == n { s += $2 } END { printf "%d", s }' <<<"$2"
}

# -------------------------------------------------------------- nmap -------

# nmap_run NAME NS WATCHED NMAP-ARGS...: runs nmap in namespace NS with XML
# output into $RUN_TMP/nmap-NAME.xml, then sets NM_* from nmap-ports.py and
# appends a figures line to $RESULTS. WATCHED: port list for watched_closed.
nmap_run() {
    local name=$1 ns=$2 watched=$3; shift 3
    local xml="$RUN_TMP/nmap-$name.xml" t0 t1 line
    t0=$(date +%s.%N)
    # --min-rate/--max-rtt-timeout: once probes go unanswered, nmap's
    # congestion control backs off so far that a 1024-port scan of a host
    # that drops everything took 90-220 s here; with them, ~2 s.
    ip netns exec "$ns" nmap -n -Pn --max-retries 1 --min-rate 1000 --max-rtt-timeout 200ms \
        --host-timeout 60s "$@" \
        -oX "$xml" >"$RUN_TMP/nmap-$name.txt" 2>&1
    t1=$(date +%s.%N)
    if ! line=$("$IT_DIR/nmap-ports.py" "$xml" "$watched"); then
        say "nmap $name: no usable output"; sed 's/^/    | /' "$RUN_TMP/nmap-$name.txt" >&2
        return 1
    fi
    eval "NM_${line// / NM_}"
    if [ "$NM_scanned" -ne "$NM_expected" ] || [ "$NM_expected" -eq 0 ]; then
        # Host timeout: counts of zero would make "0 closed" pass vacuously.
        bad "nmap $name incomplete: $NM_scanned of $NM_expected ports have a state (host timeout?)"
        NM_watched_closed="incomplete" NM_closed="incomplete"
    fi
    local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
    printf '%-28s %-40s open=%s closed=%s filtered=%s open|filtered=%s watched_closed=%s (%ss)\n' \
        "$CUR_TAG" "$name: nmap $*" "$NM_open" "$NM_closed" "$NM_filtered" "$NM_open_filtered" \
        "$NM_watched_closed" "$secs" >>"$RESULTS"
}

# ports_minus RANGE_LO RANGE_HI EXCLUDES: "1-112,114-138,..." (for WATCHED).
ports_minus() {
    local lo=$1 hi=$2 ex=" ${3//,/ } " p out="" start=""
    for ((p = lo; p <= hi + 1; p++)); do
        if [ $p -le "$hi" ] && [[ $ex != *" $p "* ]]; then
            [ -z "$start" ] && start=$p
        elif [ -n "$start" ]; then
            if [ "$start" -eq $((p - 1)) ]; then out+="$start,"; else out+="$start-$((p - 1)),"; fi
            start=""
        fi
    done
    echo "${out%,}"
}

# ---------------------------------------------------------- assertions -----
# A scenario is a shell function; `expect_*` record failures without aborting
# so one run reports every broken expectation. scenario_run prints the verdict.

SCEN_FAILS=0
ok()  { say "    ok   $*"; }
bad() { say "    FAIL $*"; SCEN_FAILS=$((SCEN_FAILS + 1)); }

expect() {  # expect DESC CMD...: CMD succeeds
    local desc=$1; shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}
expect_not() {  # expect_not DESC CMD...: CMD fails
    local desc=$1; shift
    if "$@"; then bad "$desc"; else ok "$desc"; fi
}
expect_eq() {  # expect_eq DESC GOT WANT
    if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}
expect_ge() {  # expect_ge DESC GOT MIN
    if [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1 ($2 >= $3)"; else bad "$1: got '$2', want >= $3"; fi
}
log_has() { daemon_logs | grep -qE -- "$1"; }

SUMMARY=()
FAILED=0
scenario_run() {  # scenario_run NAME FUNCTION
    local name=$1 fn=$2 t0 secs
    say "--- $CUR_TAG $name"
    SCEN_FAILS=0
    t0=$(date +%s)
    "$fn"
    secs=$(( $(date +%s) - t0 ))
    if [ "$SCEN_FAILS" -eq 0 ]; then
        SUMMARY+=("$(printf 'PASS  %-22s %-34s %3ss' "$CUR_TAG" "$name" "$secs")")
    else
        SUMMARY+=("$(printf 'FAIL  %-22s %-34s %3ss  (%s failed checks)' "$CUR_TAG" "$name" "$secs" "$SCEN_FAILS")")
        FAILED=1
    fi
}
scenario_skip() {  # scenario_skip TAG NAME REASON
    SUMMARY+=("$(printf 'SKIP  %-22s %-34s       %s' "$1" "$2" "$3")")
}
