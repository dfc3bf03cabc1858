#!/bin/bash
# SIGHUP reload end to end: each kind of setting is changed under a running
# daemon and the effect is proven with real probes or observable state:
#  - watched ports (stealth tcp.ports, advanced_exclude): a newly watched port
#    bans, a port no longer watched answers RST again;
#  - classic tripwires added (bound, a connect bans) and removed (closed);
#  - engine (scan_trigger raised), ban policy (ban_time), files (history_file
#    moved, json_log switched on), the ignore file's contents;
#  - restart-only keys (state_file, control_socket): logged as needing a
#    restart, the old socket and state file stay in use;
#  - a broken config: reload failed, the old settings keep working.
# Run as root: tests/integration/reload.sh [BINARY]
set -u
[ "$(id -u)" -eq 0 ] || { echo "reload.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=reload

# Attacker sources beyond lib.sh's: one fresh address per probe that must meet
# a fresh per-source state (198.51.100.20 .. .59, inside the attacker's /24).
src() { echo "198.51.100.$((20 + $1))"; }

banned() { wait_until 2 set_has banned "$1"; }
# not_banned SRC: still not in the ban set after a second (the daemon had
# time to see the probe and act on it).
not_banned() { sleep 1; ! set_has banned "$1"; }

# rconf DIR [YAML-LINE...]: writes DIR/portsentry.yaml like write_yaml_config,
# but the file keys come from R_HIST, R_STATE, R_SOCK (defaults inside DIR)
# so a reload can move them, and an existing ignore file is kept.
rconf() {
    local dir=$1; shift
    mkdir -p "$dir" && touch "$dir/portsentry.ignore"
    {
        printf '%s\n' "$@"
        cat <<CONF
ignore_file: "$dir/portsentry.ignore"
history_file: "${R_HIST:-$dir/portsentry.history}"
blocked_file: "$dir/portsentry.blocked"
state_file: "${R_STATE:-$dir/portsentry-nfq.state}"
control_socket: "${R_SOCK:-$dir/portsentry-nfq.sock}"
CONF
    } >"$dir/portsentry.yaml.new"
    mv "$dir/portsentry.yaml.new" "$dir/portsentry.yaml"
}

# hup: SIGHUP the daemon and wait (5 s) for the reload's verdict line.
hup() {
    local before
    before=$(grep -cE 'configuration reloaded from|reload failed' "$DAEMON_LOG")
    kill -HUP "$DAEMON_PID" || return 1
    wait_until 5 bash -c "[ \$(grep -cE 'configuration reloaded from|reload failed' '$DAEMON_LOG') -gt $before ]"
}
reloaded_with() {  # reloaded_with "k1, k2": the last reload's changed list
    grep 'configuration reloaded from' "$DAEMON_LOG" | tail -1 | grep -qF "(changed: $1)"
}

listening() { in_v ss -Hltn "sport = :$1" | grep -q LISTEN; }

BASE=('udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 1h')

# (1a) stealth: tcp.ports [7] -> [8].
s_stealth_ports() {
    local dir=$RUN_TMP/stealth conf=$RUN_TMP/stealth/portsentry.yaml
    rconf "$dir" 'tcp: {mode: stealth, ports: [7], block: 1}' "${BASE[@]}"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    expect_eq "before: unwatched port 8 answers RST" "$(tcp_answer "$(src 0)" "$V_A4" 8)" refused
    probe_from "$(src 1)" "$V_A4" 7
    expect "before: a probe of watched port 7 bans" banned "$(src 1)"
    rconf "$dir" 'tcp: {mode: stealth, ports: [8], block: 1}' "${BASE[@]}"
    expect "SIGHUP answered" hup
    expect "reload names tcp.ports" reloaded_with "tcp.ports"
    probe_from "$(src 2)" "$V_A4" 8
    expect "after: a probe of newly watched port 8 bans" banned "$(src 2)"
    expect_eq "after: port 7, no longer watched, answers RST again" "$(tcp_answer "$(src 3)" "$V_A4" 7)" refused
    expect "after: ... and does not ban" not_banned "$(src 3)"
    daemon_stop TERM
}

# (1b) advanced: advanced_exclude [] -> [25].
s_advanced_exclude() {
    local dir=$RUN_TMP/advanced conf=$RUN_TMP/advanced/portsentry.yaml
    rconf "$dir" 'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' "${BASE[@]}"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    probe_from "$(src 4)" "$V_A4" 25
    expect "before: a probe of port 25 bans" banned "$(src 4)"
    rconf "$dir" 'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [25], block: 1}' "${BASE[@]}"
    expect "SIGHUP answered" hup
    expect "reload names tcp.advanced_exclude" reloaded_with "tcp.advanced_exclude"
    expect_eq "after: excluded port 25 answers RST" "$(tcp_answer "$(src 5)" "$V_A4" 25)" refused
    expect "after: ... and does not ban" not_banned "$(src 5)"
    probe_from "$(src 6)" "$V_A4" 26
    expect "after: port 26, still watched, bans" banned "$(src 6)"
    daemon_stop TERM
}

# (2) classic tripwires [11, 79] -> [11, 8081].
s_classic() {
    local dir=$RUN_TMP/classic conf=$RUN_TMP/classic/portsentry.yaml
    rconf "$dir" 'tcp: {mode: classic, ports: [11, 79], block: 1}' "${BASE[@]}"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    expect "before: 79 is listening" listening 79
    expect_not "before: 8081 is not listening" listening 8081
    rconf "$dir" 'tcp: {mode: classic, ports: [11, 8081], block: 1}' "${BASE[@]}"
    expect "SIGHUP answered" hup
    expect "reload names tcp.ports" reloaded_with "tcp.ports"
    expect "after: added tripwire 8081 is listening (ss -ltn)" listening 8081
    expect "after: kept tripwire 11 is still listening" listening 11
    expect_not "after: removed tripwire 79 is no longer listening" listening 79
    expect "removal logged" log_has "port 79 is no longer a tripwire"
    expect_eq "after: a connect to 8081 completes (tripwire)" "$(tcp_answer "$(src 7)" "$V_A4" 8081)" open
    expect "after: ... and bans its source" banned "$(src 7)"
    expect "after: Connect line for 8081" log_has "attackalert: Connect from host: [^ ]+/$(src 7) to TCP port: 8081"
    expect_eq "after: port 79 answers RST" "$(tcp_answer "$(src 8)" "$V_A4" 79)" refused
    expect "after: ... and does not ban" not_banned "$(src 8)"
    daemon_stop TERM
}

ADV='tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}'

# (3) engine: scan_trigger 0 -> 3.
s_trigger() {
    local dir=$RUN_TMP/trigger conf=$RUN_TMP/trigger/portsentry.yaml s
    rconf "$dir" "$ADV" "${BASE[@]}" 'scan_trigger: 0'
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    probe_from "$(src 9)" "$V_A4" 7
    expect "before: a single probe bans" banned "$(src 9)"
    rconf "$dir" "$ADV" "${BASE[@]}" 'scan_trigger: 3'
    expect "SIGHUP answered" hup
    expect "reload names scan_trigger" reloaded_with "scan_trigger"
    s=$(src 10)
    probe_from "$s" "$V_A4" 7
    expect "after: a single probe no longer bans" not_banned "$s"
    probe_from "$s" "$V_A4" 8
    expect "after: two probes do not either" not_banned "$s"
    probe_from "$s" "$V_A4" 9
    expect "after: the third probe bans" banned "$s"
    daemon_stop TERM
}

# (4) ban policy: ban_time 1h -> 2m.
s_ban_time() {
    local dir=$RUN_TMP/bantime conf=$RUN_TMP/bantime/portsentry.yaml
    rconf "$dir" "$ADV" 'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 1h'
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    probe_from "$(src 11)" "$V_A4" 7
    banned "$(src 11)"
    expect_eq "before: the ban's nft timeout" "$(set_timeout banned "$(src 11)")" 1h
    rconf "$dir" "$ADV" 'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 2m'
    expect "SIGHUP answered" hup
    expect "reload names ban_time" reloaded_with "ban_time"
    probe_from "$(src 12)" "$V_A4" 7
    expect "after: banned" banned "$(src 12)"
    expect_eq "after: the next ban's nft timeout is the new ban_time" "$(set_timeout banned "$(src 12)")" 2m
    daemon_stop TERM
}

# (5) history_file moved, (6) json_log switched on: one reload, two keys.
s_files() {
    local dir=$RUN_TMP/files conf=$RUN_TMP/files/portsentry.yaml
    local old=$RUN_TMP/files/old.history new=$RUN_TMP/files/new.history json=$RUN_TMP/files/events.json
    R_HIST=$old rconf "$dir" "$ADV" "${BASE[@]}"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    expect_not "before: json_log off, no file" test -e "$json"
    probe_from "$(src 13)" "$V_A4" 7
    banned "$(src 13)"
    expect "before: the detection is in the old history file" grep -q "$(src 13)/" "$old"
    R_HIST=$new rconf "$dir" "$ADV" "${BASE[@]}" "json_log: \"$json\""
    expect "SIGHUP answered" hup
    expect "reload names history_file and json_log" reloaded_with "history_file, json_log"
    probe_from "$(src 14)" "$V_A4" 7
    expect "after: banned" banned "$(src 14)"
    expect "after: the next detection is in the new history file" \
        wait_until 2 grep -q "Host: $(src 14)/$(src 14) Port: 7 TCP Blocked" "$new"
    expect_not "after: ... and not in the old one" grep -q "$(src 14)/" "$old"
    expect "after: json_log is written" wait_until 2 test -s "$json"
    expect "after: json_log has the scan event of the new detection" "$PY" -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(e.get("event") == "scan" and e.get("src") == sys.argv[2] for e in evs) else 1)' "$json" "$(src 14)"
    expect_not "after: json_log has nothing from before the switch" grep -q "\"$(src 13)\"" "$json"
    daemon_stop TERM
}

# (7) the ignore file's contents.
s_ignore() {
    local dir=$RUN_TMP/ignore conf=$RUN_TMP/ignore/portsentry.yaml
    rconf "$dir" "$ADV" "${BASE[@]}"
    : >"$dir/portsentry.ignore"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    probe_from "$(src 15)" "$V_A4" 7
    expect "before: a source not yet ignored is banned" banned "$(src 15)"
    printf '%s\n' "$(src 16)" "$(src 17)/32" >>"$dir/portsentry.ignore"
    expect "SIGHUP answered" hup
    expect "reload names the ignore list" reloaded_with "ignore list (contents)"
    probe_from "$(src 16)" "$V_A4" 7
    expect "after: an address added to the ignore file is not banned" not_banned "$(src 16)"
    expect_not "after: ... not even reported" log_has "attackalert: .*/$(src 16) "
    expect "after: ... and is in the kernel never-ban set" set_has never "$(src 16)"
    probe_from "$(src 18)" "$V_A4" 7
    expect "after: a source not in the ignore file is still banned" banned "$(src 18)"
    daemon_stop TERM
}

# (8) restart-only keys: state_file and control_socket.
s_restart_only() {
    local dir=$RUN_TMP/restart conf=$RUN_TMP/restart/portsentry.yaml out
    local st_old=$RUN_TMP/restart/old.state sock_old=$RUN_TMP/restart/old.sock
    local st_new=$RUN_TMP/restart/new.state sock_new=$RUN_TMP/restart/new.sock
    R_STATE=$st_old R_SOCK=$sock_old rconf "$dir" "$ADV" "${BASE[@]}" 'scan_trigger: 0'
    cp "$conf" "$dir/old.yaml"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    expect "before: ctl answers on the old socket" ctl "$dir/old.yaml" status >/dev/null
    R_STATE=$st_new R_SOCK=$sock_new rconf "$dir" "$ADV" "${BASE[@]}" 'scan_trigger: 2'
    cp "$conf" "$dir/new.yaml"
    expect "SIGHUP answered" hup
    expect "state_file: needs a restart, still using the old file" \
        log_has "portsentry-nfq: reload: state_file changed: needs a restart \\(still using \"?$st_old\"?\\)"
    expect "control_socket: needs a restart, still using the old socket" \
        log_has "portsentry-nfq: reload: control_socket changed: needs a restart \\(still using \"?$sock_old\"?\\)"
    expect "the other change is applied and listed alone" reloaded_with "scan_trigger"
    expect "the daemon answers status on the OLD control socket" ctl "$dir/old.yaml" status >/dev/null
    expect_not "nothing listens on the new socket path" test -S "$sock_new"
    expect_not "ctl on the new socket path fails" ctl "$dir/new.yaml" status >/dev/null 2>&1
    # The next ban is written to the old state file only.
    probe_from "$(src 19)" "$V_A4" 7
    probe_from "$(src 19)" "$V_A4" 8
    expect "scan_trigger 2 applied: two probes ban" banned "$(src 19)"
    # (journaled: the change is in the old state file's journal, <state>.journal.N)
    expect "the ban is saved to the OLD state file" wait_until 3 grep -qs "\"$(src 19)\"" "$st_old" "$st_old".journal.*
    expect_not "the new state file is not written" compgen -G "$st_new*"
    out=$(ctl "$dir/old.yaml" why "$(src 19)" 2>&1)
    expect "why on the OLD socket reports the ban (got: ${out%%$'\n'*})" grep -q "^$(src 19): banned as $(src 19) " <<<"$out"
    daemon_stop TERM
}

# (9) a broken config: reload failed, old settings stay.
s_broken() {
    local dir=$RUN_TMP/broken conf=$RUN_TMP/broken/portsentry.yaml out reloads
    rconf "$dir" "$ADV" "${BASE[@]}" 'scan_trigger: 0'
    cp "$conf" "$dir/good.yaml"   # ctl reads the config too: not the broken one
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    # Valid lines that would be visible if applied (trigger 5, ban_time 2m),
    # plus one bad value.
    rconf "$dir" "$ADV" 'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 2m' 'scan_trigger: 5' \
        'ban_time_factor: banana'
    reloads=$(grep -c 'configuration reloaded from' "$DAEMON_LOG")
    expect "SIGHUP answered" hup
    expect "reload failed logged" log_has "portsentry-nfq: reload failed: keeping the running configuration"
    expect_eq "no 'configuration reloaded' line" "$(grep -c 'configuration reloaded from' "$DAEMON_LOG")" "$reloads"
    expect "the daemon is still running" kill -0 "$DAEMON_PID"
    expect "the daemon still answers status on its control socket" ctl "$dir/good.yaml" status >/dev/null
    probe_from "$(src 20)" "$V_A4" 7
    expect "old scan_trigger: a single probe still bans" banned "$(src 20)"
    out=$(ctl "$dir/good.yaml" why "$(src 20)" 2>&1)
    expect "why reports the ban (got: ${out%%$'\n'*})" grep -q "^$(src 20): banned as $(src 20) " <<<"$out"
    expect_eq "old ban_time: the ban's nft timeout" "$(set_timeout banned "$(src 20)")" 1h
    # A good config afterwards is applied again.
    rconf "$dir" "$ADV" 'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 2m' 'scan_trigger: 0'
    expect "SIGHUP answered (fixed config)" hup
    expect "the fixed config reloads" reloaded_with "ban_time"
    probe_from "$(src 21)" "$V_A4" 7
    banned "$(src 21)"
    expect_eq "fixed config: the new ban_time applies" "$(set_timeout banned "$(src 21)")" 2m
    daemon_stop TERM
    expect_eq "the daemon exits cleanly on TERM after all this" "$STOP_RC" 0
}

# (10) issue 12: the state directory does not exist (no package made it):
# made 0700 at start, the ban survives a restart; a directory that cannot be
# made refuses start-up and names it.
s_state_dir() {
    local dir=$RUN_TMP/statedir conf=$RUN_TMP/statedir/portsentry.yaml
    R_STATE=$dir/var/lib/portsentry/portsentry-nfq.state R_HIST=$dir/log/portsentry/portsentry.history \
        rconf "$dir" 'tcp: {mode: stealth, ports: [7], block: 1}' "${BASE[@]}"
    expect_not "before: the state directory does not exist" test -e "$dir/var/lib/portsentry"
    daemon_start auto "$conf" || { bad "daemon did not start"; return; }
    expect_eq "the state directory was made 0700" "$(stat -c %a "$dir/var/lib/portsentry" 2>&1)" 700
    expect_eq "the history directory was made 0700" "$(stat -c %a "$dir/log/portsentry" 2>&1)" 700
    probe_from "$(src 30)" "$V_A4" 7
    expect "a probe bans" banned "$(src 30)"
    daemon_stop TERM
    in_v nft delete element inet portsentry banned "{ $(src 30) }" 2>/dev/null
    daemon_start auto "$conf" || { bad "daemon did not restart"; return; }
    expect "after a restart the ban is restored" banned "$(src 30)"
    expect "the ready line counts it" log_has "1 bans restored"
    daemon_stop TERM
    # A file where the directory should be: start-up refused, naming it.
    : >"$dir/blocker"
    R_STATE=$dir/blocker/portsentry-nfq.state rconf "$dir" 'tcp: {mode: stealth, ports: [7], block: 1}' "${BASE[@]}"
    local out
    out=$(in_v timeout 20 "$BIN" -c "$conf" --steer nflog 2>&1); local rc=$?
    expect_eq "start-up refused (exit 1)" "$rc" 1
    expect "the refusal names the directory (${out##*$'\n'})" grep -qF "$dir/blocker" <<<"$out"
}

lab_up || exit 1
for i in $(seq 0 39); do ip -n "$NS_A" addr add "$(src "$i")/24" dev eth0 || exit 1; done
scenario_run "stealth tcp.ports swapped" s_stealth_ports
scenario_run "advanced_exclude added" s_advanced_exclude
scenario_run "classic tripwires +/-" s_classic
scenario_run "scan_trigger raised" s_trigger
scenario_run "ban_time changed" s_ban_time
scenario_run "history moved, json_log on" s_files
scenario_run "ignore list contents" s_ignore
scenario_run "restart-only keys" s_restart_only
scenario_run "broken config kept out" s_broken
scenario_run "missing state directory" s_state_dir
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
