#!/bin/bash
# Classic mode (-tcp/-udp): the daemon binds the listed ports as tripwires.
# A real TCP client completes the handshake, receives PORT_BANNER, and its
# source is then banned (a handshake cannot be spoofed); a UDP datagram gets
# the banner back. Run as root: tests/integration/classic.sh [BINARY]
set -u
[ "$(id -u)" -eq 0 ] || { echo "classic.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=classic

s_classic() {
    local dir=$RUN_TMP/classic out
    write_yaml_config "$dir" \
        'tcp: {mode: classic, ports: [1, 11, 79, 8080], block: 1}' \
        'udp: {mode: classic, ports: [7, 69], block: 1}' \
        'kill_route: nft-set' \
        'port_banner: "** UNAUTHORIZED ACCESS PROHIBITED **"' \
        'ban_time: 1h'
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    # 8080 is taken by a real service started before the daemon: 1.2 skips it.
    expect "port 8080 in use: logged and skipped" log_has 'TCP port 8080 is in use, not a tripwire'

    # UDP from a second attacker address: the datagram is a detection too
    # and bans its source.
    out=$(in_a "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.bind(("'"$A4_UDP"'", 0))
s.sendto(b"x", ("'"$V_A4"'", 69)); print(s.recv(200).decode().strip())' 2>&1)
    expect_eq "UDP tripwire answers PORT_BANNER" "$out" "** UNAUTHORIZED ACCESS PROHIBITED **"
    sleep 0.3
    expect "UDP tripwire source banned" set_has banned "$A4_UDP"

    out=$(in_f curl -s --max-time 3 "http://$V_F4:8080/" -o /dev/null -w '%{http_code}')
    expect_eq "real service on 8080 still answers" "$out" 200

    out=$(in_a timeout 3 "$PY" -c '
import socket
s = socket.create_connection(("'"$V_A4"'", 11), timeout=2); print(s.recv(200).decode().strip())' 2>&1)
    expect_eq "TCP tripwire delivers PORT_BANNER to a real client" "$out" "** UNAUTHORIZED ACCESS PROHIBITED **"
    sleep 0.3
    expect "Connect from host line" log_has "attackalert: Connect from host: $A4/$A4 to TCP port: 11"
    expect "handshake-proven source banned" set_has banned "$A4"
    expect "history records the connect" grep -q "Host: $A4/$A4 Port: 11 TCP Blocked" "$dir/portsentry.history"
    expect_not "banned client can no longer connect" in_a timeout 3 "$PY" -c '
import socket; socket.create_connection(("'"$V_A4"'", 79), timeout=2)' 2>/dev/null
    daemon_stop TERM
}

lab_up || exit 1
mkdir -p "$RUN_TMP/www"
start_service 8080 || exit 1
scenario_run "classic tripwires: banner, connect, ban" s_classic
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
