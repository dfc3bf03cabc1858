#!/bin/bash
# The metrics endpoint (metrics.listen) end to end:
#  - a bad listen value fails --check with FILE:LINE;
#  - an address in use stops the start with an error naming it and the errno;
#  - the endpoint on the victim's address serves Prometheus text with the
#    names issue 14 fixes, and an nmap scan from the attacker moves
#    portsentry_probes_total, portsentry_bans_total{origin="detector"} and
#    portsentry_probe_to_ban_seconds_count;
#  - 200 scrapes in a tight loop do not stop detection (a probe during them
#    is banned at once);
#  - SIGHUP moves the endpoint, and a new address in use keeps the old one
#    serving; IPv6 is served where civetweb has it, else refused saying so
#    (Debian 12's libcivetweb1 is built without IPv6).
# Run as root: tests/integration/metrics.sh [BINARY]
set -u
[ "$(id -u)" -eq 0 ] || { echo "metrics.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=metrics
MPORT=9470
WATCHED=1-100

serves() { [ -n "$(scrape "$1")" ]; }

mconf() {  # mconf DIR LISTEN
    write_yaml_config "$1" \
        "tcp: {mode: stealth, ports: [$WATCHED], block: 1}" \
        'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 1h' \
        "metrics: {listen: \"$2\"}"
}

s_check() {
    local dir=$RUN_TMP/check out rc
    mconf "$dir" "$V_A4"   # no port
    out=$(in_v "$BIN" -c "$dir/portsentry.yaml" --check 2>&1); rc=$?
    expect_eq "--check exits 1 on a bad metrics.listen" "$rc" 1
    local line; line=$(grep -n '^metrics:' "$dir/portsentry.yaml" | cut -d: -f1)
    expect "--check names FILE:LINE and the key" grep -qF "$dir/portsentry.yaml:$line: metrics.listen: no :PORT" <<<"$out"
    mconf "$dir" "localhost:$MPORT"
    out=$(in_v "$BIN" -c "$dir/portsentry.yaml" --check 2>&1)
    expect "--check refuses a host name" grep -qF "metrics.listen: 'localhost' is not an IP address" <<<"$out"
    mconf "$dir" "[::1]:$MPORT"
    out=$(in_v "$BIN" -c "$dir/portsentry.yaml" --check 2>&1); rc=$?
    if [ "$rc" -eq 0 ]; then ok "--check accepts [::1]:$MPORT (civetweb has IPv6)"
    else expect "--check: [::1] refused with the reason (civetweb without IPv6)" grep -qF \
        "metrics.listen [::1]:$MPORT: this system's civetweb (the HTTP server of prometheus-cpp) is built without IPv6" <<<"$out"
    fi
    mconf "$dir" "$V_A4:$MPORT"
    out=$(in_v "$BIN" -c "$dir/portsentry.yaml" --check 2>&1); rc=$?
    expect_eq "--check accepts $V_A4:$MPORT" "$rc" 0
    [ "$rc" -eq 0 ] || say "$out"
}

s_in_use() {
    local dir=$RUN_TMP/inuse out rc holder
    mconf "$dir" "$V_A4:$MPORT"
    # Something else holds the port in the victim.
    ip netns exec "$NS_V" "$PY" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); time.sleep(60)' "$V_A4" "$MPORT" &
    holder=$!
    LAB_PIDS+=("$holder")
    wait_until 3 bash -c "ip netns exec $NS_V ss -Hltn 'sport = :$MPORT' | grep -q LISTEN"
    # In a subshell, which is then the daemon's parent and reports its exit
    # status; the log file is the next daemon-N.log.
    out=$(daemon_start auto "$dir/portsentry.yaml" 2>&1); rc=$?
    DAEMON_RUNS=$((DAEMON_RUNS + 1))
    DAEMON_LOG="$RUN_TMP/daemon-$DAEMON_RUNS.log"
    if [ "$rc" -eq 0 ]; then
        bad "daemon started although its metrics address is in use"
    else
        expect "start refused with exit status 1" grep -qF "daemon exited with status 1 before ready" <<<"$out"
    fi
    expect "error names the address and errno" grep -qF \
        "portsentry-nfq: error: metrics.listen $V_A4:$MPORT: cannot bind: Address already in use" "$DAEMON_LOG"
    expect_not "nothing was loaded into the kernel" in_v nft list table inet portsentry 2>/dev/null
    kill -KILL "$holder" 2>/dev/null
    { wait "$holder"; } 2>/dev/null
}

s_scan() {
    local dir=$RUN_TMP/scan url="http://$V_A4:$MPORT/metrics" before after
    mconf "$dir" "$V_A4:$MPORT"
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    expect "ready line announces the endpoint" log_has "serving metrics at http://$V_A4:$MPORT/metrics"
    before=$(scrape "$url")
    expect "endpoint answers from the victim" test -n "$before"
    local n
    for n in 'portsentry_bans_total{origin="detector"}' 'portsentry_bans_total{origin="admin"}' \
        'portsentry_probes_total{proto="tcp",type="syn"}' 'portsentry_rate_limited_total' \
        'portsentry_protected_hits_total' 'portsentry_queue_packets_total' 'portsentry_queue_drops_total' \
        'portsentry_active_bans{set="banned"}' 'portsentry_active_bans{set="banned6"}' \
        'portsentry_probe_to_ban_seconds_count' 'portsentry_probe_to_ban_seconds_bucket{le="+Inf"}' \
        'portsentry_loop_longest_turn_seconds'; do
        expect "serves $n" grep -qF "$n " <<<"$before"
    done
    expect "TYPE lines" grep -qxF '# TYPE portsentry_probe_to_ban_seconds histogram' <<<"$before"
    # Every metric `status --json` shows is served.
    local missing
    missing=$(ctl "$dir/portsentry.yaml" status --json | "$PY" -c '
import json, sys
served = sys.argv[1]
for m in json.load(sys.stdin)["metrics"]:
    if "# TYPE " + m["name"] + " " not in served: print(m["name"])' "$before" | sort -u)
    expect_eq "every status --json metric is served" "$missing" ""

    nmap_run syn "$NS_A" "$WATCHED" -sS -p "$WATCHED" "$V_A4"
    expect "scanner banned" wait_until 3 set_has banned "$A4"
    sleep 1.5   # sampled figures follow within one tick
    after=$(scrape "$url")
    expect_ge "portsentry_probes_total rose" "$(sum_of portsentry_probes_total "$after")" \
        $(($(sum_of portsentry_probes_total "$before") + 1))
    expect_ge "portsentry_probes_total{proto=\"tcp\",type=\"syn\"} rose" \
        "$(value "$after" 'portsentry_probes_total{proto="tcp",type="syn"}')" 1
    expect_eq "portsentry_bans_total{origin=\"detector\"} moved by one" \
        "$(value "$after" 'portsentry_bans_total{origin="detector"}')" \
        $(($(value "$before" 'portsentry_bans_total{origin="detector"}') + 1))
    expect_eq "portsentry_probe_to_ban_seconds_count moved by one" \
        "$(value "$after" 'portsentry_probe_to_ban_seconds_count')" \
        $(($(value "$before" 'portsentry_probe_to_ban_seconds_count') + 1))
    expect_eq "portsentry_active_bans{set=\"banned\"}" "$(value "$after" 'portsentry_active_bans{set="banned"}')" 1
    expect_ge "portsentry_queue_packets_total rose" "$(value "$after" portsentry_queue_packets_total)" 1
    # An admin ban counts under its own origin.
    ctl "$dir/portsentry.yaml" ban "$A4_SPARE" >/dev/null
    expect "admin ban counted as origin admin" wait_until 3 bash -c \
        "ip netns exec $NS_V curl -s '$url' | grep -qxF 'portsentry_bans_total{origin=\"admin\"} 1'"

    # 200 scrapes in a tight loop; a probe in the middle is still banned.
    local codes="$RUN_TMP/scrape-codes"
    in_v bash -c "for i in \$(seq 200); do curl -s -o /dev/null -w '%{http_code}\n' --max-time 3 '$url'; done" \
        >"$codes" 2>&1 &
    local loop=$!
    sleep 0.2
    probe_from "$A4_FIN" "$V_A4" 7
    expect "probe during the scrape loop banned within 2 s" wait_until 2 set_has banned "$A4_FIN"
    wait "$loop"
    expect_eq "200 scrapes answered 200" "$(grep -cx 200 "$codes")" 200

    # SIGHUP moves the endpoint to the loopback address.
    local lo="127.0.0.1:$((MPORT + 1))"
    mconf "$dir" "$lo"
    kill -HUP "$DAEMON_PID"
    expect "reload serves $lo" wait_until 5 serves "http://$lo/metrics"
    expect_not "old address closed" serves "$url"
    expect "reload names metrics.listen" log_has 'configuration reloaded from .*changed: metrics.listen'
    # IPv6: served where civetweb has IPv6; else refused with a line that says why.
    mconf "$dir" "[::1]:$MPORT"
    kill -HUP "$DAEMON_PID"
    if wait_until 5 log_has "reload: metrics.listen \[::1\]:$MPORT: this system's civetweb .* is built without IPv6: use an IPv4 address, e.g. 127.0.0.1:$MPORT: still serving $lo"; then
        ok "[::1]: civetweb has no IPv6 here: refused with its reason, $lo still served"
        expect "old endpoint still serves" serves "http://$lo/metrics"
    else
        expect "reload serves [::1]" wait_until 5 serves "http://[::1]:$MPORT/metrics"
        mconf "$dir" "$lo"
        kill -HUP "$DAEMON_PID"
        expect "back on $lo" wait_until 5 serves "http://$lo/metrics"
    fi
    # A new address in use: logged, the old one keeps serving.
    ip netns exec "$NS_V" "$PY" -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9480)); s.listen(1); time.sleep(30)' &
    local holder=$!
    LAB_PIDS+=("$holder")
    wait_until 3 bash -c "ip netns exec $NS_V ss -Hltn 'sport = :9480' | grep -q LISTEN"
    mconf "$dir" "127.0.0.1:9480"
    kill -HUP "$DAEMON_PID"
    expect "failed rebind logged with address and errno" wait_until 5 log_has \
        "reload: metrics.listen 127.0.0.1:9480: cannot bind: Address already in use: still serving $lo"
    expect "old endpoint still serves" serves "http://$lo/metrics"
    kill -KILL "$holder" 2>/dev/null
    { wait "$holder"; } 2>/dev/null
    # Off.
    mconf "$dir" ""
    kill -HUP "$DAEMON_PID"
    expect "metrics.listen \"\" closes the endpoint" wait_until 5 log_has "metrics endpoint $lo closed"
    expect_not "nothing serves after that" serves "http://$lo/metrics"
    expect "daemon still running" kill -0 "$DAEMON_PID"
    daemon_stop TERM
    expect_eq "SIGTERM: exit 0" "$STOP_RC" 0
}

RESULTS=$RUN_TMP/results
: >"$RESULTS"
lab_up || exit 1
scenario_run "--check: bad metrics.listen" s_check
scenario_run "start: address in use" s_in_use
scenario_run "scan moves the counters" s_scan
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
