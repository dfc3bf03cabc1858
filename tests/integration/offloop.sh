#!/bin/bash
# Issue 12, items 4 and 5, end to end:
#  - a KILL_RUN_CMD that sleeps 3 s does not delay a second scanner's ban, the
#    DROP of probes, or the control socket;
#  - KILL_RUN_CMD_FIRST: the ban follows the command's completion, the probes
#    are dropped meanwhile, and the loop keeps answering;
#  - SIGTERM during such a command: pending responses finish, then exit, within
#    run_cmd_timeout + 1 s;
#  - hosts.deny: one line per ban (never twice), an admin's lines untouched,
#    the line gone within ~10 s of an unban, back once for a new ban; after a
#    restart (SIGTERM, start again) the restored ban's line is adopted and
#    goes within ~10 s of its unban, or of its expiry (a 6 s ban ending after
#    the restart).
# Run as root: tests/integration/offloop.sh [BINARY]
set -u
[ "$(id -u)" -eq 0 ] || { echo "offloop.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
CUR_TAG=offloop
PORT=11

now_ms() { date +%s%3N; }
ctl_quiet() { ctl "$@" >/dev/null; }
line_count() { local n; n=$(grep -cxF -- "$1" "$2" 2>/dev/null); echo "${n:-0}"; }
# For wait_until, which runs its command again each poll (a "$(...)" in its
# arguments would be expanded once, before the first).
lines_are() { [ "$(line_count "$2" "$3")" = "$1" ]; }  # lines_are N LINE FILE
lines_matching_are() { local n; n=$(grep -cF -- "$2" "$3" 2>/dev/null); [ "${n:-0}" = "$1" ]; }
# dropped SRC: a connect from SRC to the watched port times out (DROP), it is
# not refused (RST, what the kernel answers without us).
dropped() {
    in_a "$PY" -c '
import socket, sys
s = socket.socket(); s.settimeout(1.0); s.bind((sys.argv[1], 0))
try: s.connect((sys.argv[2], int(sys.argv[3]))); sys.exit(1)
except socket.timeout: sys.exit(0)
except OSError: sys.exit(1)' "$1" "$V_A4" "$PORT"
}

# slow_cmd DIR: a KILL_RUN_CMD that sleeps 3 s, then records its host.
slow_cmd() {
    printf '#!/bin/sh\necho "start $1" >>"%s/cmd.log"\nsleep 3\necho "done $1" >>"%s/cmd.log"\n' "$1" "$1" \
        >"$1/slow.sh"
    chmod 755 "$1/slow.sh"
}

config() {  # config DIR FIRST
    local dir=$1
    mkdir -p "$dir"
    slow_cmd "$dir"
    printf 'sshd: 192.0.2.66\n' >"$dir/hosts.deny"
    write_yaml_config "$dir" "tcp: {mode: stealth, ports: [$PORT], block: 1}" 'udp: {mode: off}' \
        'kill_route: nft-set' 'ban_time: 1h' "kill_run_cmd: \"$dir/slow.sh \$TARGET\$\"" \
        "kill_run_cmd_first: $2" 'run_cmd_timeout: 5s' \
        "kill_hosts_deny: \"ALL: \$TARGET\$\"" "hosts_deny_file: \"$dir/hosts.deny\""
}

s_slow_command() {
    local dir=$RUN_TMP/slow t0 t1
    config "$dir" false
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    probe_from "$A4" "$V_A4" "$PORT"
    expect "first scanner banned" wait_until 2 set_has banned "$A4"
    expect "its command started" wait_until 2 grep -qF "start $A4" "$dir/cmd.log"
    t0=$(now_ms)
    probe_from "$A4_FIN" "$V_A4" "$PORT"
    expect "second scanner banned while the first's command sleeps" wait_until 2 set_has banned "$A4_FIN"
    t1=$(now_ms)
    expect_not "  (the first command still runs)" grep -qF "done $A4" "$dir/cmd.log"
    say "    second ban $((t1 - t0)) ms after its probe (incl. the 0.5 s connect attempt)"
    expect "second scanner's probe dropped" dropped "$A4_FIN"
    t0=$(now_ms)
    expect "control socket answers meanwhile" ctl_quiet "$dir/portsentry.yaml" status
    t1=$(now_ms)
    expect "  within 1 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
    expect "hosts.deny: one line per ban" test "$(line_count "ALL: $A4" "$dir/hosts.deny")" = 1
    expect "hosts.deny: second ban's line" wait_until 2 lines_are 1 "ALL: $A4_FIN" "$dir/hosts.deny"
    expect "history records for both" wait_until 2 lines_matching_are 2 'Port: 11 TCP Blocked' "$dir/portsentry.history"
    daemon_stop TERM
}

s_run_cmd_first() {
    local dir=$RUN_TMP/first t0 t1
    config "$dir" true
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    probe_from "$A4" "$V_A4" "$PORT"
    expect "command started" wait_until 2 grep -qF "start $A4" "$dir/cmd.log"
    expect "a probe during the command is dropped" dropped "$A4"
    expect_not "not banned before the command completed" set_has banned "$A4"
    t0=$(now_ms)
    expect "control socket answers meanwhile" ctl_quiet "$dir/portsentry.yaml" status
    t1=$(now_ms)
    expect "  within 1 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
    expect "banned once the command completed" wait_until 5 set_has banned "$A4"
    expect "  command done first" grep -qF "done $A4" "$dir/cmd.log"
    # 1.2's order in the log: command line, then the ban line.
    local cmd_line ban_line
    cmd_line=$(grep -n "External command run for host: $A4" "$DAEMON_LOG" | head -1 | cut -d: -f1)
    ban_line=$(grep -n "Host $A4 has been blocked via nft" "$DAEMON_LOG" | head -1 | cut -d: -f1)
    expect "log: command line before the ban line" test "${cmd_line:-99999}" -lt "${ban_line:-0}"

    # SIGTERM while another host's command runs: its ban and records still
    # happen, and the daemon exits within run_cmd_timeout (5 s) + 1 s.
    probe_from "$A4_FIN" "$V_A4" "$PORT"
    expect "second command started" wait_until 2 grep -qF "start $A4_FIN" "$dir/cmd.log"
    t0=$(now_ms)
    daemon_stop TERM
    t1=$(now_ms)
    expect_eq "exit status after SIGTERM" "$STOP_RC" 0
    expect "  exited within 6 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 6000
    expect "  the pending ban was made before exit" set_has banned "$A4_FIN"
    expect "  and its history record written" grep -qF "Host: $A4_FIN/$A4_FIN Port: $PORT TCP Blocked" \
        "$dir/portsentry.history"
    expect "  the drain was logged" log_has "SIGTERM: finishing pending responses"
}

s_hosts_deny_lifecycle() {
    local dir=$RUN_TMP/deny t0 t1
    config "$dir" false
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    probe_from "$A4_NULL" "$V_A4" "$PORT"
    expect "banned" wait_until 2 set_has banned "$A4_NULL"
    expect "hosts.deny line" wait_until 2 lines_are 1 "ALL: $A4_NULL" "$dir/hosts.deny"
    local ino
    ino=$(stat -c %i "$dir/hosts.deny")
    expect "unban" ctl_quiet "$dir/portsentry.yaml" unban "$A4_NULL"
    t0=$(now_ms)
    expect "line gone within 12 s of the unban" wait_until 12 lines_are 0 "ALL: $A4_NULL" "$dir/hosts.deny"
    t1=$(now_ms)
    say "    removed $((t1 - t0)) ms after the unban"
    expect "admin's line kept" grep -qxF "sshd: 192.0.2.66" "$dir/hosts.deny"
    expect "  the clean-up replaced the file (not a bind mount)" test "$(stat -c %i "$dir/hosts.deny")" != "$ino"
    # Banned again: the line comes back, once.
    probe_from "$A4_NULL" "$V_A4" "$PORT"
    expect "banned again" wait_until 2 set_has banned "$A4_NULL"
    expect "hosts.deny line again, once" wait_until 2 lines_are 1 "ALL: $A4_NULL" "$dir/hosts.deny"
    # A restart (a package upgrade): the new daemon adopts the line it wrote
    # before for the ban it restores, and removes it when that ban ends.
    daemon_stop TERM
    expect_eq "  stopped cleanly" "$STOP_RC" 0
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not restart"; return; }
    expect "restart: ban restored" wait_until 2 set_has banned "$A4_NULL"
    expect "restart: the line is still there, once" test "$(line_count "ALL: $A4_NULL" "$dir/hosts.deny")" = 1
    expect "restart: the line was adopted" wait_until 2 log_has "1 hosts.deny line of restored bans in .*: removed when the ban ends"
    expect "unban after the restart" ctl_quiet "$dir/portsentry.yaml" unban "$A4_NULL"
    t0=$(now_ms)
    expect "line gone within 12 s of the unban after a restart" \
        wait_until 12 lines_are 0 "ALL: $A4_NULL" "$dir/hosts.deny"
    t1=$(now_ms)
    say "    removed $((t1 - t0)) ms after the unban"
    expect "admin's line kept across the restart" grep -qxF "sshd: 192.0.2.66" "$dir/hosts.deny"
    daemon_stop TERM
}

# A short ban that expires after a restart: its line, written by the daemon
# before the restart, goes within ~10 s of the expiry.
s_hosts_deny_restart_expiry() {
    local dir=$RUN_TMP/deny-expiry t0 t1
    config "$dir" false
    sed -i 's/^ban_time: 1h$/ban_time: 6s/' "$dir/portsentry.yaml"
    grep -qx 'ban_time: 6s' "$dir/portsentry.yaml" || { bad "config: ban_time not set"; return; }
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not start"; return; }
    probe_from "$A4_NULL" "$V_A4" "$PORT"
    expect "banned for 6 s" wait_until 2 set_has banned "$A4_NULL"
    expect "hosts.deny line" wait_until 2 lines_are 1 "ALL: $A4_NULL" "$dir/hosts.deny"
    t0=$(now_ms)
    daemon_stop TERM
    daemon_start auto "$dir/portsentry.yaml" || { bad "daemon did not restart"; return; }
    expect "restart: the line was adopted" wait_until 2 log_has "1 hosts.deny line of restored bans in "
    expect "line gone within 18 s of the ban (6 s + 10 s + margin)" \
        wait_until 18 lines_are 0 "ALL: $A4_NULL" "$dir/hosts.deny"
    t1=$(now_ms)
    say "    removed $((t1 - t0)) ms after the ban"
    expect "admin's line kept" grep -qxF "sshd: 192.0.2.66" "$dir/hosts.deny"
    daemon_stop TERM
}

lab_up || exit 1
# ONLY=NAME-PREFIX runs only that scenario (debugging).
for s in "slow KILL_RUN_CMD:s_slow_command" "KILL_RUN_CMD_FIRST + SIGTERM:s_run_cmd_first" \
    "hosts.deny lifecycle:s_hosts_deny_lifecycle" "hosts.deny expiry after a restart:s_hosts_deny_restart_expiry"; do
    [[ "${s%%:*}" == "${ONLY:-}"* ]] && scenario_run "${s%%:*}" "${s##*:}"
done
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
