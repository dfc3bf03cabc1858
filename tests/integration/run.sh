#!/bin/bash
# shellcheck disable=SC2317,SC2154  # scenarios run via scenario_run; NM_* set by eval
# End-to-end tests for portsentry-nfq: real kernel, real nmap, network
# namespaces. For each steering backend the kernel has (probed by loading the
# backend's rule in a throwaway namespace) and for each config flavour (native
# YAML, legacy portsentry.conf + /etc/default/portsentry), a fresh lab
#
#     attacker 198.51.100.2-9, 2001:db8:1::2 ──┐
#                                              victim: daemon, http :80 :8080 (:81 later)
#     friend   203.0.113.2, 2001:db8:2::2 ─────┘      (friend's nets in the ignore list)
#
# runs the scenarios below; prints PASS/FAIL/SKIP per scenario and backend,
# and the nmap figures (also written to $RESULTS). Exit 0 only if nothing
# failed; 77 if not root; 1 otherwise.
#
# Usage: tests/integration/run.sh [--lab-only] [BINARY]
#   BINARY (or PORTSENTRY_NFQ=path): the daemon (default: build/, then build-integ/)
#   BACKENDS="xt-queue nflog"  FLAVOURS="yaml legacy"  restrict the matrix
#   KEEP_TMP=1  keep the run directory (logs, nmap XML, history files)
#   F2B=0  skip the fail2ban scenarios (f2b/f2b.sh; alone: f2b/run-f2b.sh)
set -u

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (network namespaces, nft); skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=protect.sh
. "$(dirname "$0")/protect.sh"
# shellcheck source-path=SCRIPTDIR source=f2b/f2b.sh
. "$(dirname "$0")/f2b/f2b.sh"
lab_traps

RESULTS=${RESULTS:-$IT_DIR/last-results.txt}
: >"$RESULTS"
CUR_TAG=lab

for tool in nft iptables-nft nmap curl fail2ban-regex unshare "$PY"; do
    command -v "$tool" >/dev/null || { say "run.sh: missing $tool (scripts/install-deps)"; exit 1; }
done

# --------------------------------------------------------------- lab check --
# Without any daemon the lab must behave like an undefended host, or every
# "zero closed ports" result below would prove nothing.
lab_self_check() {
    nmap_run lab-attacker-v4 "$NS_A" "1-1023" -sS -T4 -p1-1024 "$V_A4"
    expect_ge "undefended: closed ports seen by the attacker (RST)" "${NM_closed:-0}" 1000
    expect_eq "undefended: port 80 open" "${NM_open:-0}" 1
    nmap_run lab-attacker-v6 "$NS_A" "1-1023" -6 -sS -T4 -p1-1024 "$V_A6"
    expect_ge "undefended: v6 closed ports seen by the attacker" "${NM_closed:-0}" 1000
    nmap_run lab-attacker-udp "$NS_A" "1-1023" -sU -T4 --max-retries 2 -p1-50 "$V_A4"
    expect_ge "undefended: UDP closed ports answer (ICMP unreachable)" "${NM_closed:-0}" 45
    expect "friend reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
    expect "friend reaches [v6]:8080" in_f curl -sf -g -o /dev/null --max-time 3 "http://[$V_F6]:8080/"
}

# ---------------------------------------------------------------- configs --
# write_config FLAVOUR DIR: config for the flavour in DIR; sets CONF, CONF_ARGS,
# WATCHED_TCP/UDP (ports the daemon steers: advanced range minus excludes),
# HISTORY, BLOCKED, HOSTS_DENY.
write_config() {
    local flavour=$1 dir=$2
    mkdir -p "$dir"
    sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.ignore.static.in" >"$dir/portsentry.ignore.static"
    HISTORY=$dir/portsentry.history
    BLOCKED=$dir/portsentry.blocked
    case $flavour in
    yaml)
        CONF=$dir/portsentry.yaml
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.yaml.in" >"$CONF"
        CONF_ARGS=()
        WATCHED_TCP=1-1023 WATCHED_UDP=1-1023
        HOSTS_DENY=$dir/hosts.deny ;;
    legacy)
        CONF=$dir/portsentry.conf
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.conf.in" >"$CONF"
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/default.in" >"$dir/default"
        # No -atcp/-audp flags: the modes must come from the defaults file.
        # 1.2's config has no keys for these two paths: command-line overrides.
        CONF_ARGS=(--defaults "$dir/default" --state-file "$dir/portsentry-nfq.state"
                   --control-socket "$dir/portsentry-nfq.sock")
        WATCHED_TCP=$(ports_minus 1 1023 113,139)
        WATCHED_UDP=$(ports_minus 1 1023 520,138,137,67)
        # KILL_HOSTS_DENY writes 1.2's compiled-in /etc/hosts.deny: that is the
        # daemon's /etc overlay, whose upper layer is here.
        HOSTS_DENY=$RUN_TMP/ovl/etc/up/hosts.deny ;;
    esac
}

# -------------------------------------------------------------- scenarios --
# Each reads BACKEND, FLAVOUR and the variables of write_config.

s_startup() {
    expect "log names the backend: 'steering backend: $BACKEND'" \
        log_has "portsentry-nfq: steering backend: $BACKEND"
    expect "table inet portsentry exists in the victim" in_v nft list table inet portsentry
    expect "set banned exists" in_v nft list set inet portsentry banned
    expect "set banned6 exists" in_v nft list set inet portsentry banned6
    # Port 80 has a listener started before the daemon and lies inside the
    # watched range: the socket rule must keep it reachable.
    expect "attacker (not yet banned) reaches watched-range service :80" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:80/"
    expect "attacker reaches :8080" in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect_not "a connect to an open service is not an attack" log_has "attackalert"
}

s_syn_scan() {
    nmap_run syn "$NS_A" "$WATCHED_TCP" -sS -T4 -p1-1024 "$V_A4"
    expect_eq "zero closed ports among watched TCP ports (closed: ${NM_watched_closed_ports:0:60})" \
        "${NM_watched_closed:-?}" 0
    expect "attacker $A4 in set banned" set_has banned "$A4"
    expect "alert line: TCP SYN/Normal scan from $A4" \
        log_has "attackalert: TCP SYN/Normal scan from host: [^ ]+/${A4//./\\.} to TCP port: [0-9]+"
    expect "ban line: Host $A4 has been blocked" log_has "attackalert: Host:? ${A4//./\\.} has been blocked"
    expect_not "banned attacker can no longer reach :8080" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect_not "banned attacker can no longer reach :80" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:80/"
}

# stealth_one NAME NMAPFLAG SRC LABEL
stealth_one() {
    local name=$1 flag=$2 src=$3 label=$4
    nmap_run "$name" "$NS_A" "$WATCHED_TCP" "$flag" -T4 -p1-1024 -e eth0 -S "$src" "$V_A4"
    expect_eq "$label: zero closed among watched TCP ports (closed: ${NM_watched_closed_ports:0:60})" \
        "${NM_watched_closed:-?}" 0
    expect "$label: alert line from $src" \
        log_has "attackalert: TCP $label scan from host: [^ ]+/${src//./\\.} to TCP port: [0-9]+"
    expect "$label: $src in set banned" set_has banned "$src"
}
s_stealth_scans() {
    stealth_one fin -sF "$A4_FIN" FIN
    stealth_one null -sN "$A4_NULL" NULL
    stealth_one xmas -sX "$A4_XMAS" XMAS
    nmap_run udp "$NS_A" "$WATCHED_UDP" -sU -T4 --max-retries 0 -p1-200 -e eth0 -S "$A4_UDP" "$V_A4"
    expect_eq "UDP: zero closed among watched UDP ports (closed: ${NM_watched_closed_ports:0:60})" \
        "${NM_watched_closed:-?}" 0
    expect "UDP: alert line from $A4_UDP" \
        log_has "attackalert: UDP scan from host: [^ ]+/${A4_UDP//./\\.} to UDP port: [0-9]+"
    expect "UDP: $A4_UDP in set banned" set_has banned "$A4_UDP"
}

s_ipv6_scan() {
    nmap_run syn6 "$NS_A" "$WATCHED_TCP" -6 -sS -T4 -p1-1024 "$V_A6"
    expect_eq "v6: zero closed among watched TCP ports (closed: ${NM_watched_closed_ports:0:60})" \
        "${NM_watched_closed:-?}" 0
    expect "v6: attacker $A6 in set banned6" set_has banned6 "$A6"
    expect "v6: alert line from $A6" \
        log_has "attackalert: TCP SYN/Normal scan from host: [^ ]+/$A6 to TCP port: [0-9]+"
    expect_not "v6: banned attacker can no longer reach [v6]:8080" \
        in_a curl -sf -g -o /dev/null --max-time 3 "http://[$V_A6]:8080/"
}

s_friend() {
    nmap_run friend "$NS_F" "$WATCHED_TCP" -sS -T4 -p1-1024 "$V_F4"
    expect_ge "friend sees closed ports answer with RST, as without the daemon" "${NM_closed:-0}" 1000
    expect_eq "friend sees no filtered port" "${NM_filtered:-?}" 0
    nmap_run friend6 "$NS_F" "$WATCHED_TCP" -6 -sS -T4 -p1-1024 "$V_F6"
    expect_ge "friend (v6) sees closed ports" "${NM_closed:-0}" 1000
    expect_not "friend $F4 not in banned" set_has banned "$F4"
    expect_not "friend $F6 not in banned6" set_has banned6 "$F6"
    expect_not "no attackalert names the friend" log_has "attackalert.*(${F4//./\\.}|$F6)([^0-9a-f:]|$)"
    expect "friend reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
    expect "friend reaches [v6]:80" in_f curl -sf -g -o /dev/null --max-time 3 "http://[$V_F6]:80/"
}

s_late_service() {
    start_service 81 || { bad "could not start the service on :81"; return; }
    expect "friend reaches :81 (started after the daemon)" \
        in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:81/"
    expect "fresh attacker address $A4_LATE reaches :81" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4_LATE" "http://$V_A4:81/"
    expect_not "$A4_LATE not banned by the connect" set_has banned "$A4_LATE"
    expect_not "no attackalert for port 81" log_has "attackalert: .* port: 81$"
}

s_records() {
    local out matched missed
    expect "history file exists" test -s "$HISTORY"
    out=$(fail2ban-regex "$HISTORY" /etc/fail2ban/filter.d/portsentry.conf 2>&1)
    matched=$(printf '%s\n' "$out" | sed -n 's/^Lines: .* \([0-9]\+\) matched, \([0-9]\+\) missed.*/\1/p')
    missed=$(printf '%s\n' "$out" | sed -n 's/^Lines: .* \([0-9]\+\) matched, \([0-9]\+\) missed.*/\2/p')
    expect_ge "fail2ban-regex: stock portsentry filter matches history lines" "${matched:-0}" 6
    expect_eq "fail2ban-regex: missed lines" "${missed:-?}" 0
    [ "${missed:-1}" = 0 ] || { say "    history:"; sed 's/^/    | /' "$HISTORY" >&2 || true; }
    local h
    for h in "$A4" "$A4_FIN" "$A4_NULL" "$A4_XMAS" "$A4_UDP" "$A6"; do
        expect "history names $h once" test "$(grep -c "/$h Port: " "$HISTORY" 2>/dev/null)" = 1
    done
    expect "blocked file (BLOCKED_FILE.<mode>) names $A4" \
        sh -c "grep -qs '/$A4 Port: [0-9]* TCP Blocked\$' '$BLOCKED'.*"
    expect "hosts.deny has 'ALL: $A4 : DENY'" grep -qxF "ALL: $A4 : DENY" "$HOSTS_DENY"
    expect_not "friend never in hosts.deny" grep -qs "$F4" "$HOSTS_DENY"
    # The /etc and /var/lib overlays catch writes to default paths the config
    # should have redirected (YAML sets every path; legacy only hosts.deny).
    local stray
    stray=$(cd "$RUN_TMP/ovl" && find etc/up var-lib/up -mindepth 1 ! -path etc/up/hosts.deny 2>/dev/null | head -5 | tr '\n' ' ')
    expect_eq "nothing written to /etc or /var/lib outside configured paths" "$stray" ""
}

s_control() {
    local out rc
    # In the victim: offline commands edit the set of the namespace they run
    # in, and the root namespace's firewall is never touched.
    # Options before the verb: the socket path comes from the same config
    # (and, for legacy, the same --control-socket) the daemon was started with.
    local ctl=(ip netns exec "$NS_V" "$BIN" -c "$CONF" "${CONF_ARGS[@]}")
    out=$(timeout 10 "${ctl[@]}" status 2>&1); rc=$?
    expect_eq "status via control socket: exit status (output: ${out:0:80})" "$rc" 0
    out=$(timeout 10 "${ctl[@]}" list 2>&1)
    expect "list names $A4" grep -qF "$A4" <<<"$out"
    expect "list names $A6" grep -qF "$A6" <<<"$out"
    expect_not "list does not name the friend" grep -qF "$F4" <<<"$out"
    out=$(timeout 10 "${ctl[@]}" unban "$A4_XMAS" 2>&1); rc=$?
    expect_eq "unban $A4_XMAS: exit status (output: ${out:0:80})" "$rc" 0
    expect_not "unban: $A4_XMAS gone from set banned" set_has banned "$A4_XMAS"
    expect "unban: $A4_XMAS reaches :8080 again" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4_XMAS" "http://$V_A4:8080/"
    expect "unban: $A4 still banned" set_has banned "$A4"
    # The form admins and fail2ban actions write: options after the verb.
    out=$(timeout 10 ip netns exec "$NS_V" "$BIN" status --control-socket "$(dirname "$CONF")/portsentry-nfq.sock" 2>&1); rc=$?
    expect_eq "'status --control-socket PATH' (option after the verb) works (output: ${out:0:80})" "$rc" 0
}

s_reload() {
    kill -HUP "$DAEMON_PID" 2>/dev/null
    sleep 1
    expect "SIGHUP: daemon still running" kill -0 "$DAEMON_PID"
    expect "SIGHUP: $A4 still in banned" set_has banned "$A4"
    expect "SIGHUP: $A6 still in banned6" set_has banned6 "$A6"
    # The reloaded ruleset must still steer probes to the daemon.
    nmap_run after-hup "$NS_A" "$WATCHED_TCP" -sS -T4 -p1-1024 -e eth0 -S "$A4_SPARE" "$V_A4"
    expect_eq "SIGHUP: new scan still meets zero closed watched ports" "${NM_watched_closed:-?}" 0
    expect "SIGHUP: new scanner $A4_SPARE banned" set_has banned "$A4_SPARE"
    expect "SIGHUP: friend reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
}

s_restart() {
    daemon_stop TERM
    expect_eq "SIGTERM: clean exit status" "$STOP_RC" 0
    expect "after exit: table still loaded, $A4 still in banned" set_has banned "$A4"
    expect_not "after exit: banned attacker still dropped" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    # docs/ARCHITECTURE.md: list and unban work with the daemon down, on the state file
    # and the set element, and a restart does not undo them.
    local ctl=(ip netns exec "$NS_V" "$BIN" -c "$CONF" "${CONF_ARGS[@]}") out rc
    out=$(timeout 10 "${ctl[@]}" list 2>&1)
    expect "daemon down: list names $A4 (from the state file)" grep -qF "$A4" <<<"$out"
    out=$(timeout 10 "${ctl[@]}" unban "$A4_NULL" 2>&1); rc=$?
    expect_eq "daemon down: unban $A4_NULL exit status (output: ${out:0:80})" "$rc" 0
    expect_not "daemon down: $A4_NULL gone from set banned" set_has banned "$A4_NULL"
    if ! daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then bad "restart: daemon not ready"; return; fi
    ok "restart: daemon ready again"
    expect "after restart: $A4 in banned (restored)" set_has banned "$A4"
    expect "after restart: $A4_UDP in banned" set_has banned "$A4_UDP"
    expect "after restart: $A6 in banned6" set_has banned6 "$A6"
    expect_not "after restart: unbanned $A4_XMAS not re-banned (unban persisted)" set_has banned "$A4_XMAS"
    expect_not "after restart: offline-unbanned $A4_NULL not re-banned" set_has banned "$A4_NULL"
    expect_not "after restart: banned attacker still dropped" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect "after restart: friend reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
}

s_sigkill() {
    daemon_stop KILL
    expect_eq "SIGKILL: killed" "$STOP_RC" 137
    expect "after SIGKILL: friend reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
    nmap_run kill-friend "$NS_F" "1-1023" -sS -T4 -p7 "$V_F4"
    expect_eq "after SIGKILL: friend's probe to closed port 7 answered" "${NM_closed:-?}" 1
    nmap_run kill-fresh "$NS_A" "1-1023" -sS -T4 -p7 -e eth0 -S "$A4_KILL" "$V_A4"
    if [ "$BACKEND" = nflog ]; then
        # docs/ARCHITECTURE.md: on nflog the rule itself drops probes, daemon or not.
        expect_eq "after SIGKILL (nflog): fresh source's probe still dropped" "${NM_filtered:-?}" 1
    else
        expect_eq "after SIGKILL ($BACKEND): queue bypass, fresh source gets RST" "${NM_closed:-?}" 1
    fi
    expect "after SIGKILL: $A4 still in banned" set_has banned "$A4"
    expect_not "after SIGKILL: banned attacker still dropped" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
}

# docs/ARCHITECTURE.md order: queue, xt-queue, nflog; the choice is logged.
s_auto() {
    if ! daemon_start auto "$CONF"; then bad "daemon with --steer auto not ready"; return; fi
    expect "auto chose ${AVAILABLE[0]}, the first the kernel has" \
        log_has "steering backend: ${AVAILABLE[0]} \\(auto[;)]"
    expect "daemon's own probe agrees: kernel offers ${AVAILABLE[*]}" \
        log_has "kernel offers: $(IFS=,; echo "${AVAILABLE[*]}")\\)"
    daemon_stop TERM
    expect_eq "auto: clean exit" "$STOP_RC" 0
    # Forcing a backend the kernel lacks is a start-up error, not a fallback.
    local b
    for b in queue xt-queue nflog; do
        [[ " ${AVAILABLE[*]} " == *" $b "* ]] && continue
        if daemon_start "$b" "$CONF" 2>/dev/null; then
            bad "--steer $b started although the kernel lacks it"; daemon_stop TERM
        else
            expect "--steer $b refused with a reason" log_has "$b.*not supported by this kernel"
        fi
    done
}

# --dry-run: detect, log and record as BLOCK 0 (history line, verdict
# ACCEPT), but no ban, no drop, no hosts.deny.
s_dry_run() {
    in_v nft delete table inet portsentry 2>/dev/null
    if ! daemon_start "$BACKEND" "$CONF" --dry-run; then bad "daemon --dry-run not ready"; return; fi
    nmap_run dry-run "$NS_A" "$WATCHED_TCP" -sS -T4 -p1-1024 "$V_A4"
    expect_ge "dry-run: closed ports still answer (verdict accept)" "${NM_watched_closed:-0}" 1000
    expect "dry-run: alert logged" \
        log_has "attackalert: TCP SYN/Normal scan from host: [^ ]+/${A4//./\\.} to TCP port: [0-9]+"
    expect_not "dry-run: $A4 not in banned" set_has banned "$A4"
    expect "dry-run: attacker still reaches :8080" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect "dry-run: history records the host (fail2ban can still act)" grep -qs "/$A4 Port: " "$HISTORY"
    expect_not "dry-run: no hosts.deny line" grep -qs "$A4" "$HOSTS_DENY"
    daemon_stop TERM
}

# ------------------------------------------------------------------ main ---
LAB_ONLY=0
[ "${1:-}" = --lab-only ] && { LAB_ONLY=1; shift; }
[ -n "${1:-}" ] && PORTSENTRY_NFQ=$1
if [ -n "${PORTSENTRY_NFQ:-}" ] && [ ! -x "$PORTSENTRY_NFQ" ]; then
    say "run.sh: $PORTSENTRY_NFQ is not an executable"; exit 1
fi
if [ -z "${PORTSENTRY_NFQ:-}" ]; then
    for c in "$SRC_ROOT/build/portsentry-nfq" "$SRC_ROOT/build-integ/portsentry-nfq"; do
        [ -x "$c" ] && { PORTSENTRY_NFQ=$c; break; }
    done
fi
BIN=${PORTSENTRY_NFQ:-}

say "=== lab self-check (no daemon)"
lab_up || { say "lab_up failed"; exit 1; }
start_service 80 && start_service 8080 || exit 1
scenario_run "lab self-check (no daemon)" lab_self_check
lab_down

if [ "$LAB_ONLY" = 1 ]; then
    :
elif [ -z "$BIN" ]; then
    say "run.sh: no daemon binary (set PORTSENTRY_NFQ or build build-integ/)"
    SUMMARY+=("FAIL  no daemon binary")
    FAILED=1
else
    say "=== daemon: $BIN ($("$BIN" --version 2>&1 | head -1))"
    AVAILABLE=()
    for backend in queue xt-queue nflog; do
        if why=$(probe_backend "$backend"); then
            AVAILABLE+=("$backend")
        else
            reason="kernel lacks it: ${why:-rule refused}"
            scenario_skip "$backend" "all scenarios" "$reason"
            say "SKIP $backend: $reason"
        fi
    done
    for BACKEND in ${BACKENDS:-${AVAILABLE[*]}}; do
        [[ " ${AVAILABLE[*]} " == *" $BACKEND "* ]] || {
            scenario_skip "$BACKEND" "all scenarios" "not available here"; continue; }
        for FLAVOUR in ${FLAVOURS:-yaml legacy}; do
            CUR_TAG="$BACKEND/$FLAVOUR"
            say "=== $CUR_TAG"
            lab_up || { say "lab_up failed"; exit 1; }
            start_service 80 && start_service 8080 || exit 1
            write_config "$FLAVOUR" "$RUN_TMP/$BACKEND-$FLAVOUR"
            if ! daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then
                SUMMARY+=("$(printf 'FAIL  %-22s %s' "$CUR_TAG" "daemon did not start (remaining scenarios not run)")")
                FAILED=1; lab_down; continue
            fi
            scenario_run "1 startup, open service :80"   s_startup
            scenario_run "2 SYN scan -> ban"             s_syn_scan
            scenario_run "3 FIN/NULL/XMAS/UDP scans"     s_stealth_scans
            scenario_run "4 IPv6 SYN scan -> banned6"    s_ipv6_scan
            scenario_run "5 friend (ignore list)"        s_friend
            scenario_run "6 service started later"       s_late_service
            scenario_run "7 history/blocked/hosts.deny"  s_records
            scenario_run "8 control: status/list/unban"  s_control
            scenario_run "9 SIGHUP reload keeps bans"    s_reload
            scenario_run "10 SIGTERM + restart keeps bans" s_restart
            scenario_run "11 SIGKILL fail-open"          s_sigkill
            lab_down
        done
    done
    # One more lab for the start-up variants: --steer auto, --dry-run.
    if [ ${#AVAILABLE[@]} -gt 0 ] && [ -z "${BACKENDS:-}" ]; then
        lab_up || exit 1
        start_service 80 && start_service 8080 || exit 1
        CUR_TAG="auto/yaml"
        write_config yaml "$RUN_TMP/auto-yaml"
        scenario_run "auto backend selection" s_auto
        BACKEND=${AVAILABLE[0]}
        CUR_TAG="$BACKEND/yaml --dry-run"
        write_config yaml "$RUN_TMP/dry-run-yaml"
        scenario_run "dry-run: detect, change nothing" s_dry_run
        # Every backend: on nflog the kernel rule itself drops, so protected
        # sources need their own accept rule there.
        for BACKEND in "${AVAILABLE[@]}"; do
            CUR_TAG="$BACKEND/yaml protect"
            write_config yaml "$RUN_TMP/protect-yaml-$BACKEND"
            scenario_run "never ban: gateway, resolver (live)" s_protect
        done
        lab_down
    fi
    # fail2ban both ways (f2b/f2b.sh): once, on the first backend.
    if [ ${#AVAILABLE[@]} -gt 0 ] && [ "${F2B:-1}" != 0 ]; then
        f2b_scenarios || FAILED=1
    fi
fi

echo
echo "==== nmap figures ($RESULTS)"
cat "$RESULTS"
echo
echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILED" -eq 0 ] && echo "ALL PASSED" || echo "FAILURES"
exit "$FAILED"
