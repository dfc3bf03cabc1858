# shellcheck shell=bash
# shellcheck disable=SC2154  # lab globals come from lib.sh, BIN/AVAILABLE from run.sh
# fail2ban integration, both directions, with a real fail2ban-server (the
# Debian package's, stock filters and actions) running in the victim
# namespace of the lab in lib.sh:
#
#   (a) the tutorial setup: BLOCK_TCP/UDP="0" and fail2ban's stock
#       [portsentry] jail (logpath = the history file, maxretry = 1, stock
#       banaction iptables-multiport): fail2ban bans the scanner, our set
#       stays empty.
#   (b) etc/fail2ban/action.d/portsentry-nfq.conf: sshd jails (stock
#       filter) with banaction = portsentry-nfq ban into our sets through
#       `portsentry-nfq ban/unban`, origin fail2ban: timed, permanent
#       (bantime = -1), IPv6; unbanip, expiry, an address in
#       our ignore list (refused), and bans made while the daemon is down.
#
# Sourced by run.sh (after lib.sh); f2b_scenarios runs once, not per backend.
# tests/integration/f2b/run-f2b.sh runs it alone.

F2B_SERVER=/usr/bin/fail2ban-server
F2B_CLIENT=/usr/bin/fail2ban-client
F2B_PID=""
F2B_CONF=""   # the private config dir of the running server
F2B_SOCK=""

# f2b_client ARGS...: fail2ban-client on the running server's socket.
f2b_client() { timeout 20 "$F2B_CLIENT" -c "$F2B_CONF" -s "$F2B_SOCK" "$@"; }

# f2b_prepare NAME: a private copy of /etc/fail2ban in $RUN_TMP/f2b-NAME/etc
# whose fail2ban.local points socket, pid file and log into that directory
# and keeps the database in memory; the Debian jail.d (enables sshd with its
# systemd backend) is dropped. The caller writes etc/jail.local.
f2b_prepare() {
    local dir=$RUN_TMP/f2b-$1
    F2B_CONF=$dir/etc F2B_SOCK=$dir/fail2ban.sock
    rm -rf "$dir" && mkdir -p "$dir" && cp -a /etc/fail2ban "$F2B_CONF" || return 1
    rm -f "$F2B_CONF"/jail.d/* "$F2B_CONF"/jail.local "$F2B_CONF"/fail2ban.d/*
    cp "$SRC_ROOT/etc/fail2ban/action.d/portsentry-nfq.conf" "$F2B_CONF/action.d/" || return 1
    cat >"$F2B_CONF/fail2ban.local" <<EOF
[Definition]
loglevel = INFO
logtarget = $dir/fail2ban.log
socket = $F2B_SOCK
pidfile = $dir/fail2ban.pid
dbfile = :memory:
EOF
}

# f2b_start JAIL: runs fail2ban-server in the foreground in the victim, in
# its own mount namespace with overlays on /etc, /var/lib and /run (as the
# daemon's, separate upper layers) so a forgotten default path cannot write
# to the host; waits until JAIL answers `status` (the log file exists and
# the jail is running). Returns 1 with the log tail otherwise.
f2b_start() {
    local jail=$1 o=$RUN_TMP/ovl-f2b d
    for d in etc var-lib run; do rm -rf "${o:?}/$d"; mkdir -p "$o/$d/up" "$o/$d/work"; done
    # shellcheck disable=SC2016
    ip netns exec "$NS_V" unshare --mount --propagation private /bin/sh -c '
        o=$1; shift
        mount -t overlay ovl-etc -o "lowerdir=/etc,upperdir=$o/etc/up,workdir=$o/etc/work" /etc &&
        mount -t overlay ovl-varlib -o "lowerdir=/var/lib,upperdir=$o/var-lib/up,workdir=$o/var-lib/work" /var/lib &&
        mount -t overlay ovl-run -o "lowerdir=/run,upperdir=$o/run/up,workdir=$o/run/work" /run || exit 99
        exec "$@"' sh "$o" "$F2B_SERVER" -f -x -c "$F2B_CONF" \
        >"$(dirname "$F2B_CONF")/fail2ban.out" 2>&1 &
    F2B_PID=$!
    LAB_PIDS+=("$F2B_PID")
    for _ in $(seq 100); do
        if f2b_client status "$jail" >/dev/null 2>&1; then return 0; fi
        kill -0 "$F2B_PID" 2>/dev/null || break
        sleep 0.2
    done
    say "fail2ban-server (jail $jail) not running; output and log:"
    cat "$(dirname "$F2B_CONF")/fail2ban.out" "$(dirname "$F2B_CONF")/fail2ban.log" 2>/dev/null |
        tail -25 | sed 's/^/    | /' >&2
    return 1
}

# f2b_stop: `fail2ban-client stop` (runs every actionstop), waits for exit.
F2B_STOP_RC=""
f2b_stop() {
    local pid=$F2B_PID
    [ -n "$pid" ] || return 1
    f2b_client stop >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    { wait "$pid"; } 2>/dev/null
    F2B_STOP_RC=$?
    F2B_PID=""
}

# f2b_banned JAIL COUNT IP...: fail2ban-client status JAIL shows
# "Currently banned: COUNT" and every IP in its banned list.
f2b_banned() {
    local jail=$1 count=$2 out list ip; shift 2
    out=$(f2b_client status "$jail" 2>/dev/null) || return 1
    grep -qE "Currently banned:[[:space:]]+$count\$" <<<"$out" || return 1
    list=" $(grep -E 'Banned IP list:' <<<"$out" | sed 's/.*Banned IP list:[[:space:]]*//') "
    for ip; do [[ $list == *" $ip "* ]] || return 1; done
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s.
wait_for() {
    local n=$(($1 * 5)); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
    "$@"
}

# set_empty SET: inet portsentry SET in the victim exists and has no element.
set_empty() {
    local out; out=$(in_v nft list set inet portsentry "$1" 2>/dev/null) || return 1
    ! grep -q 'elements' <<<"$out"
}

f2b_log_errors() {
    grep -E ' (ERROR|CRITICAL) ' "$(dirname "$F2B_CONF")/fail2ban.log" 2>/dev/null | head -5
}

# Nothing the fail2ban-server wrote outside its private dir (its /etc,
# /var/lib overlay upper layers stay empty).
f2b_stray() {
    (cd "$RUN_TMP/ovl-f2b" && find etc/up var-lib/up -mindepth 1 2>/dev/null | head -5 | tr '\n' ' ')
}

# f2b_config FLAVOUR DIR: the lab's config templates (tests/integration/
# configs) instantiated in DIR; sets CONF, CONF_ARGS, CTL_SOCK, HISTORY,
# WATCHED_TCP. Legacy is the tutorial setup (portsentry.conf plus
# /etc/default/portsentry); the socket path is a command-line override there.
f2b_config() {
    local flavour=$1 dir=$2
    mkdir -p "$dir" || return 1
    sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.ignore.static.in" >"$dir/portsentry.ignore.static"
    HISTORY=$dir/portsentry.history CTL_SOCK=$dir/portsentry-nfq.sock
    case $flavour in
    yaml)
        CONF=$dir/portsentry.yaml CONF_ARGS=() WATCHED_TCP=1-1023
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.yaml.in" >"$CONF" ;;
    legacy)
        CONF=$dir/portsentry.conf
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/portsentry.conf.in" >"$CONF"
        sed "s|@DIR@|$dir|g" "$IT_DIR/configs/default.in" >"$dir/default"
        CONF_ARGS=(--defaults "$dir/default" --state-file "$dir/portsentry-nfq.state"
                   --control-socket "$CTL_SOCK")
        WATCHED_TCP=$(ports_minus 1 1023 113,139) ;;
    esac
}

# ------------------------------------------------------------ (a) ----------
# The tutorial setup: portsentry detects and records (BLOCK 0), fail2ban's
# stock [portsentry] jail reads the history file and bans with its stock
# banaction (iptables-multiport, in the victim namespace only).
s_f2b_stock_jail() {
    local dir=$RUN_TMP/f2b-a-daemon
    f2b_config legacy "$dir"
    sed -i 's/^BLOCK_TCP=.*/BLOCK_TCP="0"/; s/^BLOCK_UDP=.*/BLOCK_UDP="0"/' "$CONF"
    grep -qx 'BLOCK_TCP="0"' "$CONF" || { bad "could not set BLOCK_TCP=0 in $CONF"; return; }
    # fail2ban refuses a jail whose log file does not exist yet; the daemon
    # appends to it.
    : >"$HISTORY"
    f2b_prepare a || { bad "could not copy /etc/fail2ban"; return; }
    # The stock jail as jail.conf has it (logpath, maxretry = 1, banaction
    # iptables-multiport on every port): only enabled, pointed at our
    # history file, and polled (no systemd journal or pyinotify assumed).
    cat >"$F2B_CONF/jail.local" <<EOF
[DEFAULT]
backend = polling

[portsentry]
enabled = true
logpath = $HISTORY
EOF
    if ! f2b_start portsentry; then bad "fail2ban-server with the stock [portsentry] jail did not start"; return; fi
    ok "fail2ban-server running the stock [portsentry] jail in the victim"
    if ! daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then bad "daemon (BLOCK 0) not ready"; return; fi

    nmap_run f2b-stock "$NS_A" "$WATCHED_TCP" -sS -T4 -p1-1024 "$V_A4"
    expect_ge "BLOCK 0: closed ports still answer (verdict accept)" "${NM_watched_closed:-0}" 1000
    expect "BLOCK 0: daemon says it ignores the TCP response" \
        log_has "Ignoring TCP response per configuration file setting"
    expect "BLOCK 0: history has the line fail2ban reads (/$A4 Port: N TCP Blocked)" \
        grep -qE "/${A4//./\\.} Port: [0-9]+ TCP Blocked$" "$HISTORY"
    expect "fail2ban [portsentry]: Currently banned: 1, $A4 in its list" \
        wait_for 15 f2b_banned portsentry 1 "$A4"
    expect "BLOCK 0: our set banned stayed empty" set_empty banned
    expect "BLOCK 0: our set banned6 stayed empty" set_empty banned6
    # fail2ban counts the ban before its action has run (and iptables-
    # multiport creates its chain on the first ban): wait for the rule.
    expect "fail2ban's stock iptables-multiport rule names $A4 (victim namespace)" \
        wait_for 10 sh -c "ip netns exec '$NS_V' iptables -w -S f2b-portsentry 2>/dev/null | grep -qF -- '-s $A4/32'"
    expect_not "fail2ban's ban bites: $A4 no longer reaches :8080" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect "friend still reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
    local errs; errs=$(f2b_log_errors)
    expect_eq "fail2ban log has no ERROR line" "$errs" ""
    f2b_stop
    expect_eq "fail2ban-client stop: server exited cleanly" "$F2B_STOP_RC" 0
    expect_eq "fail2ban wrote nothing to /etc or /var/lib" "$(f2b_stray)" ""
    daemon_stop TERM
    expect_eq "daemon: clean exit" "$STOP_RC" 0
}

# ------------------------------------------------------------ (b) ----------
# sshd_line IP: one failed password line as sshd logs it through syslog,
# dated now (fail2ban ignores lines older than findtime).
sshd_line() {
    printf '%s victim sshd[%d]: Failed password for root from %s port %d ssh2\n' \
        "$(date '+%b %e %H:%M:%S')" "$((1000 + RANDOM % 9000))" "$1" "$((40000 + RANDOM % 20000))"
}

# why_says_fail2ban IP: the daemon's `why IP` says "banned as IP by fail2ban".
why_says_fail2ban() {
    timeout 10 ip netns exec "$NS_V" "$BIN" why "$1" --control-socket "$CTL_SOCK" 2>&1 |
        grep -qF "$1: banned as $1 by fail2ban "
}

# list_origin IP: the ORIGIN column of IP's row in `portsentry-nfq list`
# (empty if IP has no row).
list_origin() {
    timeout 10 ip netns exec "$NS_V" "$BIN" list -c "$CONF" --control-socket "$CTL_SOCK" 2>/dev/null |
        awk -v ip="$1" '$1 == ip { print $2 }'
}

# The nft element for IP in SET carries no timeout (a permanent ban).
element_permanent() {
    local line
    line=$(in_v nft list set inet portsentry "$1" 2>/dev/null | tr ',{}' '\n' | grep -wF -- "$2") || return 1
    ! grep -q 'timeout\|expires' <<<"$line"
}
element_expires() {
    in_v nft list set inet portsentry "$1" 2>/dev/null | tr ',{}' '\n' | grep -wF -- "$2" | grep -q 'expires'
}

s_f2b_action() {
    local dir=$RUN_TMP/f2b-b-daemon
    f2b_config yaml "$dir"
    if ! daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then bad "daemon not ready"; return; fi
    f2b_prepare b || { bad "could not copy /etc/fail2ban"; return; }
    local authlog=$RUN_TMP/f2b-b/auth.log authlog2=$RUN_TMP/f2b-b/auth-forever.log
    local authlog3=$RUN_TMP/f2b-b/auth-short.log
    : >"$authlog"; : >"$authlog2"; : >"$authlog3"
    # How an admin points the shipped action at a non-default binary/socket.
    cat >"$F2B_CONF/action.d/portsentry-nfq.local" <<EOF
[Init]
portsentry_nfq = $(realpath -- "$BIN")
control_socket = $CTL_SOCK
options = -c $CONF
EOF
    # Three jails on the stock sshd filter: timed, permanent (bantime = -1,
    # which the action must turn into the CLI's 0), and one whose bans end
    # while we watch (fail2ban's timer and the element's kernel timeout
    # both end it).
    cat >"$F2B_CONF/jail.local" <<EOF
[DEFAULT]
backend = polling
banaction = portsentry-nfq
banaction_allports = portsentry-nfq

[sshd]
enabled = true
logpath = $authlog
maxretry = 2
bantime = 1h

[sshd-forever]
enabled = true
filter = sshd
port = ssh
logpath = $authlog2
maxretry = 2
bantime = -1

[sshd-short]
enabled = true
filter = sshd
port = ssh
logpath = $authlog3
maxretry = 2
bantime = 3
EOF
    if ! f2b_start sshd; then bad "fail2ban-server with banaction = portsentry-nfq did not start"; return; fi
    ok "fail2ban-server running jails sshd, sshd-forever, sshd-short with banaction = portsentry-nfq"

    expect "before: $A4 reaches :8080" in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    { sshd_line "$A4"; sshd_line "$A4"; } >>"$authlog"
    { sshd_line "$A4_UDP"; sshd_line "$A4_UDP"; sshd_line "$A6"; sshd_line "$A6"; } >>"$authlog2"
    expect "fail2ban [sshd]: Currently banned: 1, $A4 in its list" wait_for 15 f2b_banned sshd 1 "$A4"
    expect "fail2ban [sshd-forever]: $A4_UDP and $A6 banned" wait_for 15 f2b_banned sshd-forever 2 "$A4_UDP" "$A6"
    expect "$A4 in our set banned" wait_for 5 set_has banned "$A4"
    expect "bantime = 1h: the element expires" element_expires banned "$A4"
    expect "$A4_UDP in our set banned" wait_for 5 set_has banned "$A4_UDP"
    expect "bantime = -1: the element is permanent (no timeout)" element_permanent banned "$A4_UDP"
    expect "IPv6 $A6 in our set banned6, permanent" element_permanent banned6 "$A6"
    local out
    expect_eq "portsentry-nfq list: $A4 with origin" "$(list_origin "$A4")" fail2ban
    expect_eq "portsentry-nfq list: $A6 with origin" "$(list_origin "$A6")" fail2ban
    expect "portsentry-nfq why $A4: origin fail2ban" why_says_fail2ban "$A4"
    expect_not "the daemon's ban bites: $A4 no longer reaches :8080" \
        in_a curl -sf -o /dev/null --max-time 3 --interface "$A4" "http://$V_A4:8080/"
    expect "friend still reaches :8080" in_f curl -sf -o /dev/null --max-time 3 "http://$V_F4:8080/"
    expect_not "no iptables rule was made (the action only talks to the daemon)" \
        sh -c "ip netns exec '$NS_V' iptables -w -S 2>/dev/null | grep -q f2b-"

    # A ban that ends by itself: in the set with a 3 s timeout, then gone
    # from the set and from fail2ban, and fail2ban's unban did not fail.
    { sshd_line "$A4_FIN"; sshd_line "$A4_FIN"; } >>"$authlog3"
    expect "fail2ban [sshd-short]: $A4_FIN banned" wait_for 15 f2b_banned sshd-short 1 "$A4_FIN"
    expect "bantime = 3: $A4_FIN in our set, expiring" element_expires banned "$A4_FIN"
    expect "bantime = 3: fail2ban unbanned $A4_FIN" wait_for 15 f2b_banned sshd-short 0
    expect_not "bantime = 3: $A4_FIN gone from our set" set_has banned "$A4_FIN"
    # fail2ban logs a failed command as "ERROR ... -- exec: COMMAND".
    local errs; errs=$(grep -F ' ERROR ' "$(dirname "$F2B_CONF")/fail2ban.log" | grep -F "unban '$A4_FIN'" || true)
    expect_eq "fail2ban's unban of the expired $A4_FIN ran without error" "$errs" ""

    # The unban direction, as an admin would trigger it.
    out=$(f2b_client set sshd unbanip "$A4" 2>&1)
    expect "fail2ban-client set sshd unbanip $A4 (output: ${out:0:60})" wait_for 10 sh -c "! ip netns exec '$NS_V' nft list set inet portsentry banned | tr ',{}' '\n' | awk '{print \$1}' | grep -qxF '$A4'"
    expect "after unbanip: $A4 reaches :8080 again" \
        wait_for 5 in_a curl -sf -o /dev/null --max-time 2 --interface "$A4" "http://$V_A4:8080/"
    expect_eq "after unbanip: list has no row for $A4" "$(list_origin "$A4")" ""
    expect "after unbanip: $A4_UDP (other jail) still banned" set_has banned "$A4_UDP"

    # An admin lifts a fail2ban ban behind fail2ban's back; fail2ban's own
    # unban later finds no element and must not fail (no ERROR, exit 0).
    out=$(timeout 10 ip netns exec "$NS_V" "$BIN" unban "$A4_UDP" --control-socket "$CTL_SOCK" 2>&1)
    expect_not "admin unban: $A4_UDP gone from our set (output: ${out:0:50})" set_has banned "$A4_UDP"
    f2b_client set sshd-forever unbanip "$A4_UDP" >/dev/null 2>&1
    expect "fail2ban then unbans $A4_UDP too" wait_for 10 f2b_banned sshd-forever 1 "$A6"
    errs=$(grep -F ' ERROR ' "$(dirname "$F2B_CONF")/fail2ban.log" | grep -F "unban '$A4_UDP'" || true)
    expect_eq "fail2ban's unban of the already lifted $A4_UDP ran without error" "$errs" ""
    expect "$A6 still in banned6" set_has banned6 "$A6"

    # The ignore list wins over fail2ban: the action fails, nothing banned.
    { sshd_line "$F4"; sshd_line "$F4"; } >>"$authlog"
    sleep 3
    expect_not "friend $F4 (ignore list) not put in our set by fail2ban" set_has banned "$F4"
    expect "fail2ban logged the daemon's refusal to ban $F4" \
        grep -qF "refusing to ban $F4" "$(dirname "$F2B_CONF")/fail2ban.log"

    # Daemon down: the action's command edits the state file and the set
    # element itself (docs/ARCHITECTURE.md); the restarted daemon keeps the ban, and
    # fail2ban's unban reaches it.
    daemon_stop TERM
    expect_eq "daemon stopped (clean exit)" "$STOP_RC" 0
    { sshd_line "$A4_NULL"; sshd_line "$A4_NULL"; } >>"$authlog"
    expect "daemon down: fail2ban's ban of $A4_NULL lands in our set" wait_for 15 set_has banned "$A4_NULL"
    expect_eq "daemon down: list (state file) has $A4_NULL with origin" "$(list_origin "$A4_NULL")" fail2ban
    if daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then
        ok "daemon restarted"
        expect "after restart: $A4_NULL still in banned" set_has banned "$A4_NULL"
        expect_eq "after restart: list has $A4_NULL with origin" "$(list_origin "$A4_NULL")" fail2ban
        f2b_client set sshd unbanip "$A4_NULL" >/dev/null 2>&1
        expect "after restart: fail2ban's unbanip removes $A4_NULL" \
            wait_for 10 sh -c "! ip netns exec '$NS_V' nft list set inet portsentry banned | tr ',{}' '\n' | awk '{print \$1}' | grep -qxF '$A4_NULL'"
    else
        bad "daemon did not restart"
    fi

    f2b_stop
    expect_eq "fail2ban-client stop: server exited cleanly" "$F2B_STOP_RC" 0
    expect "daemon still running after fail2ban stopped" kill -0 "$DAEMON_PID"
    expect "set banned still loaded (empty actionstop)" in_v nft list set inet portsentry banned >/dev/null
    expect_eq "fail2ban wrote nothing to /etc or /var/lib" "$(f2b_stray)" ""
    daemon_stop TERM
    expect_eq "daemon: clean exit" "$STOP_RC" 0
}

# The action file through fail2ban's own reader and CommandAction, with a
# stand-in binary: exact command lines, bantime mapping (action-tags.py).
s_f2b_action_tags() {
    local out rc
    out=$("$PY" "$IT_DIR/f2b/action-tags.py" "$SRC_ROOT/etc/fail2ban/action.d/portsentry-nfq.conf" 2>&1); rc=$?
    printf '%s\n' "$out" | sed 's/^/    | /' >&2
    expect_eq "action file rendered by fail2ban gives the expected commands" "$rc" 0
}

# f2b_scenarios: one lab, both directions, on the first available backend.
f2b_scenarios() {
    local saved_tag=$CUR_TAG
    BACKEND=${AVAILABLE[0]}
    CUR_TAG="fail2ban"
    scenario_run "f2b action: rendered commands" s_f2b_action_tags
    CUR_TAG="fail2ban/$BACKEND"
    if ! lab_up || ! start_service 8080; then
        SUMMARY+=("$(printf 'FAIL  %-22s %s' "$CUR_TAG" "lab did not come up (fail2ban scenarios not run)")")
        lab_down; CUR_TAG=$saved_tag; return 1
    fi
    say "=== $CUR_TAG"
    scenario_run "f2b a: stock [portsentry] jail" s_f2b_stock_jail
    scenario_run "f2b b: banaction=portsentry-nfq" s_f2b_action
    lab_down
    CUR_TAG=$saved_tag
}
