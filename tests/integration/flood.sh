#!/bin/bash
# Spoofed random-source SYN flood at closed ports (hping3 --rand-source, 20 s):
# the ban set stays within the configured ban-rate cap, the daemon stays up
# with bounded memory, and a friend's HTTP traffic keeps flowing. Then a flood
# that queues every packet, over a ban table near full size, while nmap scans:
# no probe leaks through fail-open, the scanner sees no closed port.
# Run as root: tests/integration/flood.sh [BINARY]; prints the figures.
set -u
[ "$(id -u)" -eq 0 ] || { echo "flood.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=flood
SECS=${FLOOD_SECONDS:-20}
RATE=20  # ban_rate_per_second below
RESULTS=${RESULTS:-$IT_DIR/last-results.txt}  # nmap figures appended, as ssh.sh does

# flood_config DIR: advanced TCP mode on 1-1023, bans capped at RATE/s.
flood_config() {
    local dir=$1
    write_yaml_config "$dir" \
        'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
        'udp: {mode: off}' \
        'kill_route: nft-set' \
        "ban_rate_per_second: $RATE" \
        'ban_rate_per_prefix_per_minute: 16' \
        'ban_time: 1h'
    printf '%s\n' 203.0.113.0/24 2001:db8:2::/64 >"$dir/portsentry.ignore"
}

s_flood() {
    local dir=$RUN_TMP/flood out
    flood_config "$dir"
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    # Friend: one HTTP request every 50 ms for the whole flood.
    in_f bash -c "ok=0; n=0; end=\$((SECONDS + $SECS)); while [ \$SECONDS -lt \$end ]; do
        n=\$((n+1)); curl -s -o /dev/null --max-time 2 http://$V_F4:8080/ && ok=\$((ok+1)); sleep 0.05; done
        echo \$ok \$n" >"$dir/friend.out" 2>/dev/null &
    local friend=$!
    local t0=$SECONDS
    # hping3 --flood prints its count on exit (SIGINT).
    in_a timeout -s INT "$SECS" hping3 --flood --rand-source -S -p ++1 "$V_A4" >"$dir/hping.out" 2>&1
    local secs=$((SECONDS - t0))
    wait "$friend"
    local sent bans rss ok n
    sent=$(sed -n 's/^\([0-9]\+\) packets transmitted.*/\1/p' "$dir/hping.out")
    bans=$(in_v nft list set inet portsentry banned | tr ',{}' '\n' | grep -cE '^\s*[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+')
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null)
    read -r ok n <"$dir/friend.out"
    out=$(in_v timeout 10 "$BIN" status --control-socket "$dir/portsentry-nfq.sock" 2>&1)
    local limited
    limited=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]\+\) rate-limited.*/\1/p')
    say "    flood: ${sent:-?} packets sent in ${secs}s, $bans bans, ${limited:-?} rate-limited detections, peak RSS ${rss:-?} kB, friend $ok/$n HTTP ok"
    echo "flood: hping3 --flood --rand-source -S ${secs}s: sent=${sent:-?} bans=$bans rate_limited=${limited:-?} peak_rss_kb=${rss:-?} friend_ok=$ok/$n" >>"$RESULTS"
    expect "daemon alive after the flood" kill -0 "$DAEMON_PID"
    expect_ge "flood really happened (packets sent)" "${sent:-0}" 10000
    # The cap allows RATE bans per second (+1 second of slack for the window edges).
    if [ "$bans" -le $((RATE * (secs + 1))) ]; then ok "bans $bans <= cap $((RATE * (secs + 1)))"; else bad "bans $bans > cap $((RATE * (secs + 1)))"; fi
    expect_ge "detections beyond the cap were counted" "${limited:-0}" 1
    if [ -n "$rss" ] && [ "$rss" -lt 200000 ]; then ok "peak RSS ${rss} kB < 200 MB"; else bad "peak RSS ${rss:-?} kB"; fi
    if [ "$n" -gt 0 ] && [ $((ok * 100)) -ge $((n * 99)) ]; then ok "friend HTTP success $ok/$n >= 99%"; else bad "friend HTTP success $ok/$n < 99%"; fi
    daemon_stop TERM
}

# A flood at one watched port (every packet queued, ~70k/s here, where -p ++1
# above queues one in 64), with the ban table near a set's size (60,000
# active bans and 60,000 ended ones kept for escalation, as a long attack
# leaves it), while a real scanner runs nmap. Every new flood ban changes the
# table, and saving it must not stall the packet loop: the queue would
# overflow and the kernel accept probes itself (fail-open), answering them as
# closed. Before the state writer thread, nmap saw every watched port closed
# here: the loop stalled about 0.5 s each second saving the table.
s_flood_big_table() {
    local dir=$RUN_TMP/flood-big out
    flood_config "$dir"
    "$PY" -c '
import sys, time
now = int(time.time())
w = sys.stdout.write
for i in range(120000):
    a = "10.%d.%d.%d" % (100 + i // 65536, i // 256 % 256, i % 256)
    if i % 2:  # ended 10 min ago, remembered for escalation
        w("{\"prefix\":\"%s\",\"origin\":\"detector\",\"first_seen\":%d,\"last_seen\":%d,\"expires\":%d,\"count\":1}\n"
          % (a, now - 4200, now - 4200, now - 600))
    else:
        w("{\"prefix\":\"%s\",\"origin\":\"detector\",\"first_seen\":%d,\"last_seen\":%d,\"expires\":%d,\"count\":1}\n"
          % (a, now, now, now + 3600))' >"$dir/portsentry-nfq.state"
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    expect "120,000 records loaded (60,000 bans restored)" grep -q '60000 bans restored' "$DAEMON_LOG"
    in_a timeout -s INT 12 hping3 --flood --rand-source -S -p 7 "$V_A4" >"$dir/hping.out" 2>&1 &
    local flood=$!
    sleep 3
    # Advanced mode watches 1-1023; nmap's -p1-1024 also shows port 1024 answering.
    nmap_run big-table-scan "$NS_A" "1-1023" -sS -T4 -p1-1024 -e eth0 -S "$A4_SPARE" "$V_A4"
    expect_eq "scanner during the flood sees no watched port closed" "${NM_watched_closed:-?}" 0
    out=$(in_v timeout 10 "$BIN" status --control-socket "$dir/portsentry-nfq.sock" 2>&1)
    wait "$flood"
    local sent state loop
    sent=$(sed -n 's/^\([0-9]\+\) packets transmitted.*/\1/p' "$dir/hping.out")
    state=$(printf '%s\n' "$out" | grep '^state file')
    loop=$(printf '%s\n' "$out" | grep '^loop:')
    say "    big table: ${sent:-?} flood packets; ${loop:-no loop line in status}; ${state:-no state line in status}"
    echo "flood-big-table: sent=${sent:-?} watched_closed_seen_by_scanner=${NM_watched_closed:-?} ${loop} ${state}" >>"$RESULTS"
    expect "status reports the state writer" test -n "$state"
    expect "status reports the loop's longest turn" test -n "$loop"
    expect "daemon alive after the flood" kill -0 "$DAEMON_PID"
    daemon_stop TERM
}

lab_up || exit 1
mkdir -p "$RUN_TMP/www"
start_service 8080 || exit 1
scenario_run "rand-source SYN flood: capped bans" s_flood
scenario_run "flood at :7 over a 120k-record ban table, nmap meanwhile" s_flood_big_table
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
