#!/bin/bash
# portsentry 1.2's per-protocol reporting: TCP and UDP are separate detectors
# with separate blocked files. In every mode (classic, stealth, advanced),
# under BLOCK 0 and under hosts.deny without KILL_ROUTE (configurations where
# probes keep reaching the daemon after the first detection), a host first
# reported for TCP is reported again when it probes UDP, and vice versa:
#  - its UDP scan line (classic: "Connect from host: ... to UDP port"),
#  - a history record "... Port: N UDP Blocked" and a line in the UDP blocked
#    file (BLOCKED_FILE.udp / .sudp / .audp),
#  - UDP's own responses: its hosts.deny line and KILL_RUN_CMD with $MODE$
#    udp / sudp / audp;
# and each later probe of that protocol logs its scan line, then the
# "already blocked" line. Run as root: tests/integration/protocols.sh [BINARY]
set -u
[ "$(id -u)" -eq 0 ] || { echo "protocols.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=protocols
TPORT=11 UPORT=61   # set per scenario below

log_count() { daemon_logs | grep -cF -- "$1"; }
log_count_at_least() { [ "$(log_count "$1")" -ge "$2" ]; }
file_has() { [ -f "$2" ] && grep -qF -- "$1" "$2"; }

# tcp_probe SRC: a full connect (classic tripwires need the handshake; in the
# other modes the SYN is the probe).
tcp_probe() { probe_from "$1" "$V_A4" "$TPORT"; }
udp_probe() {
    in_a "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0))
s.sendto(b"x", (sys.argv[2], int(sys.argv[3])))' "$1" "$V_A4" "$UPORT"
}

# The words 1.2 logs for each mode and protocol.
scan_line() {  # scan_line MODE PROTO SRC
    local port=$TPORT; [ "$2" = UDP ] && port=$UPORT
    if [ "$1" = classic ]; then echo "attackalert: Connect from host: $3/$3 to $2 port: $port"
    elif [ "$2" = UDP ]; then echo "attackalert: UDP scan from host: $3/$3 to UDP port: $port"
    else echo "attackalert: TCP SYN/Normal scan from host: $3/$3 to TCP port: $port"; fi
}
already_line() {  # already_line MODE SRC
    if [ "$1" = classic ]; then echo "attackalert: Host: $2 is already blocked. Ignoring"
    else echo "attackalert: Host: $2/$2 is already blocked Ignoring"; fi
}
mode_word() {  # mode_word MODE PROTO: tcp, sudp, atcp, ...
    local p=${2,,}
    case $1 in classic) echo "$p" ;; stealth) echo "s$p" ;; advanced) echo "a$p" ;; esac
}

# probe_and_wait MODE PROTO SRC: one probe, then waits (3 s) for its scan line
# to appear one more time than before.
probe_and_wait() {
    local line before
    line=$(scan_line "$1" "$2" "$3")
    before=$(log_count "$line")
    if [ "$2" = TCP ]; then tcp_probe "$3"; else udp_probe "$3"; fi
    wait_until 3 log_count_at_least "$line" $((before + 1))
}

# check_protocol MODE RESP PROTO SRC: SRC was reported for PROTO (after the
# other protocol): its record, blocked-file line and responses.
check_protocol() {
    local mode=$1 resp=$2 proto=$3 src=$4 port=$TPORT dir=$RUN_TMP/$1-$2 m
    [ "$proto" = UDP ] && port=$UPORT
    m=$(mode_word "$mode" "$proto")
    local record="Host: $src/$src Port: $port $proto Blocked"
    expect "$src $proto: history record" wait_until 2 file_has "$record" "$dir/portsentry.history"
    expect "$src $proto: line in portsentry.blocked.$m" file_has "$record" "$dir/portsentry.blocked.$m"
    if [ "$resp" = block0 ]; then
        # The report's own response line follows its (first) scan line.
        local after
        after=$(daemon_logs | grep -m1 -A1 -F -- "$(scan_line "$mode" "$proto" "$src")" | tail -1)
        expect_eq "$src $proto: then 'Ignoring $proto response'" "${after#*attackalert: }" \
            "Ignoring $proto response per configuration file setting."
    else
        expect "$src $proto: its hosts.deny line" file_has "ALL: $src : $port" "$dir/hosts.deny"
        expect "$src $proto: KILL_RUN_CMD with \$MODE\$ $m" wait_until 2 file_has "$src $port $m" "$dir/cmd.log"
    fi
}

# check_again MODE PROTO SRC: a later probe of PROTO logs its scan line, then
# the "already blocked" line, and writes no second record.
check_again() {
    local mode=$1 proto=$2 src=$3 dir=$4 line next port=$TPORT
    [ "$proto" = UDP ] && port=$UPORT
    line=$(scan_line "$mode" "$proto" "$src")
    expect "$src $proto again: scan line" probe_and_wait "$mode" "$proto" "$src"
    sleep 0.2
    next=$(daemon_logs | grep -A1 -F -- "$line" | tail -1)
    expect_eq "$src $proto again: then 'already blocked'" "${next#*attackalert: }" \
        "$(already_line "$mode" "$src" | sed 's/^attackalert: //')"
    expect_eq "$src $proto again: one history record" \
        "$(grep -cF "Host: $src/$src Port: $port $proto Blocked" "$dir/portsentry.history")" 1
}

# scenario MODE RESP: RESP block0 (BLOCK 0: record only) or hostsdeny (BLOCK 1,
# KILL_HOSTS_DENY and KILL_RUN_CMD, no KILL_ROUTE: no nft ban).
scenario() {
    local mode=$1 resp=$2 dir=$RUN_TMP/$1-$2 ports ports_u extra=()
    case $mode in
    classic | stealth) ports="ports: [$TPORT]"; ports_u="ports: [$UPORT]" ;;
    advanced) ports="advanced_ports: 1024, advanced_exclude: []"; ports_u=$ports ;;
    esac
    if [ "$resp" = block0 ]; then
        extra=("tcp: {mode: $mode, $ports, block: 0}" "udp: {mode: $mode, $ports_u, block: 0}")
    else
        mkdir -p "$dir"
        printf '#!/bin/sh\necho "$*" >>"%s/cmd.log"\n' "$dir" >"$dir/record.sh"
        chmod 755 "$dir/record.sh"
        extra=("tcp: {mode: $mode, $ports, block: 1}" "udp: {mode: $mode, $ports_u, block: 1}"
            "kill_hosts_deny: \"ALL: \$TARGET\$ : \$PORT\$\"" "hosts_deny_file: \"$dir/hosts.deny\""
            "kill_run_cmd: \"$dir/record.sh \$TARGET\$ \$PORT\$ \$MODE\$\"")
    fi
    write_yaml_config "$dir" "${extra[@]}" 'ban_time: 1h'
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }

    # A4: TCP first, then UDP.  A4_UDP: UDP first, then TCP.
    expect "$A4 TCP: scan line" probe_and_wait "$mode" TCP "$A4"
    check_protocol "$mode" "$resp" TCP "$A4"
    expect "$A4 UDP after TCP: scan line" probe_and_wait "$mode" UDP "$A4"
    check_protocol "$mode" "$resp" UDP "$A4"
    check_again "$mode" UDP "$A4" "$dir"

    expect "$A4_UDP UDP: scan line" probe_and_wait "$mode" UDP "$A4_UDP"
    check_protocol "$mode" "$resp" UDP "$A4_UDP"
    expect "$A4_UDP TCP after UDP: scan line" probe_and_wait "$mode" TCP "$A4_UDP"
    check_protocol "$mode" "$resp" TCP "$A4_UDP"
    check_again "$mode" TCP "$A4_UDP" "$dir"

    expect_not "no nft ban in either configuration" set_has banned "$A4"
    daemon_stop TERM
}

lab_up || exit 1
n=0
for mode in classic stealth advanced; do
    for resp in block0 hostsdeny; do
        # ONLY="classic" or ONLY="classic hostsdeny": run only those (debugging).
        [[ "$mode $resp" == "${ONLY:-}"* ]] || continue
        # Ports of their own per scenario: the connections a classic daemon
        # accepted and closed sit in TIME_WAIT on its port, and the next
        # daemon could not bind that port as a tripwire.
        n=$((n + 1)) TPORT=$((10 + n)) UPORT=$((60 + n))
        eval "s_${mode}_$resp() { scenario $mode $resp; }"
        scenario_run "$mode $resp" "s_${mode}_$resp"
    done
done
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
