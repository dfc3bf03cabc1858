#!/bin/bash
# shellcheck disable=SC2317,SC2154  # scenarios run via scenario_run; NM_* set by nmap_run's eval
# A real SSH login protects its address (issue 7, item 6; docs/ARCHITECTURE.md): a real
# sshd serves the victim, sharing the daemon's mount namespace so that it
# writes the very /run/utmp the daemon watches. From the attacker namespace
#   - 198.51.100.2 logs in with a key (ssh -tt: utmp records only logins
#     with a terminal) and, while logged in, SYN-scans closed ports: never
#     banned, `why` and the log say "protected: logged-in session";
#     after logout the same address scanning again is banned;
#   - 198.51.100.7 only opens a TCP connection to port 22 (reads the banner,
#     no login) and then scans: banned.
# Negative control: the same login with protect.sessions off gets banned,
# so the first scenario cannot pass by accident.
# Run as root: tests/integration/ssh.sh [BINARY]   (BACKEND=xt-queue to force one)
set -u
[ "$(id -u)" -eq 0 ] || { echo "ssh.sh: needs root; skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
lab_traps
BIN=${1:-$SRC_ROOT/build/portsentry-nfq}
RESULTS=${RESULTS:-$IT_DIR/last-results.txt}  # nmap figures appended, as flood.sh does
[ -x "$BIN" ] || { say "ssh.sh: $BIN is not an executable"; exit 1; }
for tool in /usr/sbin/sshd ssh ssh-keygen nsenter utmpdump nmap; do
    command -v "$tool" >/dev/null || { say "ssh.sh: missing $tool (scripts/install-deps)"; exit 1; }
done

S_LOGIN=$A4        # logs in over ssh, then scans
S_TCP=$A4_LATE     # only connects to :22, then scans
SSHD_PID="" SSH_PID=""
KEYS=$RUN_TMP/ssh

# The first steering backend this kernel has (the order of --steer auto),
# named explicitly so the log and the summary say which one was tested.
if [ -z "${BACKEND:-}" ]; then
    for b in queue xt-queue nflog; do
        if probe_backend "$b" >/dev/null; then BACKEND=$b; break; fi
    done
fi
[ -n "${BACKEND:-}" ] || { say "ssh.sh: no steering backend available"; exit 1; }

# Keys once per run: a host key for sshd and a client key it accepts for root.
mkdir -p "$KEYS" && chmod 700 "$KEYS"
if ! { ssh-keygen -q -t ed25519 -N '' -C lab-host -f "$KEYS/host_ed25519" &&
        ssh-keygen -q -t ed25519 -N '' -C lab-client -f "$KEYS/client_ed25519" &&
        cp "$KEYS/client_ed25519.pub" "$KEYS/authorized_keys"; }; then
    say "ssh.sh: ssh-keygen failed"; exit 1
fi
cat >"$KEYS/sshd_config" <<CONF
ListenAddress $V_A4:22
HostKey $KEYS/host_ed25519
AuthorizedKeysFile $KEYS/authorized_keys
PidFile $KEYS/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files live under /tmp, which is world-writable: StrictModes refuses.
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
CONF

# write_conf DIR SESSIONS: YAML config (advanced TCP below 1024, bans in the
# nft set) with protect.sessions = SESSIONS; sets CONF.
write_conf() {
    local dir=$1 sessions=$2
    CONF=$dir/portsentry.yaml
    write_yaml_config "$dir" \
        'tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}' \
        'udp: {mode: off}' \
        'kill_route: nft-set' \
        'scan_trigger: 0' \
        'ban_time: 1h' \
        "protect: {sessions: $sessions}"
    printf '%s\n' 203.0.113.0/24 2001:db8:2::/64 >"$dir/portsentry.ignore"
}

# start_sshd: sshd -D in the victim's network namespace and the daemon's
# mount namespace (whose /run is the overlay the daemon reads /run/utmp
# from), one more private mount namespace deep so a tmpfs on /var/log keeps
# its wtmp/lastlog writes off the host. Waits until it listens on :22.
start_sshd() {
    # nsenter and unshare exec without forking (no pid namespace), and sh
    # execs sshd: $! is sshd's pid.
    # shellcheck disable=SC2016
    nsenter -t "$DAEMON_PID" -m -n -- unshare --mount --propagation private /bin/sh -c '
        mount -t tmpfs lab-varlog /var/log && mkdir -p -m 755 /run/sshd &&
        { [ -e /run/utmp ] || : >/run/utmp; } || exit 99
        exec /usr/sbin/sshd -D -e -f "$1"' sh "$KEYS/sshd_config" >"$RUN_TMP/sshd.log" 2>&1 &
    SSHD_PID=$!
    LAB_PIDS+=("$SSHD_PID")
    if wait_for 5 sh -c "ip netns exec '$NS_V' ss -Hltn 'sport = :22' | grep -q ."; then return 0; fi
    say "sshd did not listen on :22; log:"; sed 's/^/    | /' "$RUN_TMP/sshd.log" >&2
    return 1
}

SSH_OPTS=(-F /dev/null -i "$KEYS/client_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=5 -o ControlPath="$KEYS/mux-%r@%h")

# ssh_login SRC: key login from SRC with a terminal, kept open (sleep) in the
# background; SSH_PID is the client. It is also a connection master, so
# ssh_alive can open a channel over the same TCP connection later.
ssh_login() {
    ip netns exec "$NS_A" ssh "${SSH_OPTS[@]}" -o ControlMaster=yes -tt -b "$1" \
        "root@$V_A4" 'echo lab-logged-in; exec sleep 120' </dev/null >"$RUN_TMP/ssh-$1.log" 2>&1 &
    SSH_PID=$!
    LAB_PIDS+=("$SSH_PID")
}

# ssh_alive: a command still runs over the login's TCP connection (no pty:
# no second utmp record). Fails once that connection's packets are dropped.
# Output to a file, not $(...): the mux client hands its fds to the master,
# which would hold a command substitution's pipe open until TCP gives up
# (~15 min) after timeout killed the client.
ssh_alive() {
    local out=$RUN_TMP/ssh-alive.out
    rm -f "$out"
    ip netns exec "$NS_A" timeout 5 ssh "${SSH_OPTS[@]}" -o ControlMaster=no "root@$V_A4" echo alive \
        </dev/null >"$out" 2>/dev/null
    grep -qx 'alive.*' "$out"
}

# utmp_has_login ADDR: the daemon's /run/utmp holds a USER_PROCESS record
# (utmpdump type 7) from ADDR.
utmp_has_login() {
    nsenter -t "$DAEMON_PID" -m utmpdump /run/utmp 2>/dev/null |
        grep -qE "^\[7\] .*\[${1//./\\.} *\]"
}

why() { ip netns exec "$NS_V" timeout 10 "$BIN" -c "$CONF" why "$1" 2>&1; }
why_says() { why "$1" | grep -qF "$1: $2"; }

# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}

dump_on_failure() {
    [ "$SCEN_FAILS" -eq 0 ] && return
    say "    sshd log:"; tail -15 "$RUN_TMP/sshd.log" | sed 's/^/    | /' >&2
    say "    daemon's /run/utmp:"
    nsenter -t "$DAEMON_PID" -m utmpdump /run/utmp 2>/dev/null | sed 's/^/    | /' >&2
    say "    daemon log:"; daemon_logs | tail -15 | sed 's/^/    | /' >&2
}

# lab_with_sshd SESSIONS: fresh lab, daemon, sshd.
lab_with_sshd() {
    lab_up || { bad "lab_up failed"; return 1; }
    rm -rf "$RUN_TMP/ovl"
    write_conf "$RUN_TMP/sessions-$1" "$1"
    daemon_start "$BACKEND" "$CONF" || { bad "daemon did not start"; return 1; }
    start_sshd || { bad "sshd did not start"; return 1; }
}

s_login_protects() {
    local out
    lab_with_sshd true || { lab_down; return; }
    ssh_login "$S_LOGIN"
    expect "sshd wrote a USER_PROCESS record from $S_LOGIN to the daemon's /run/utmp" \
        wait_for 10 utmp_has_login "$S_LOGIN"
    expect "ssh -tt session is up (remote command ran)" wait_for 5 grep -q lab-logged-in "$RUN_TMP/ssh-$S_LOGIN.log"
    expect "why $S_LOGIN: protected: logged-in session within 2 s of the login" \
        wait_for 2 why_says "$S_LOGIN" "protected: logged-in session"
    expect "$S_LOGIN in set never" set_has never "$S_LOGIN"

    nmap_run ssh-login "$NS_A" 1-1023 -sS -T4 -p1-200 -e eth0 -S "$S_LOGIN" "$V_A4"
    expect_ge "logged-in address scanning: closed ports answer (verdict accept)" "${NM_closed:-0}" 199
    expect_not "logged-in $S_LOGIN not banned" set_has banned "$S_LOGIN"
    out=$(why "$S_LOGIN")
    expect "why after the scan: protected: logged-in session (got: ${out//$'\n'/ | })" \
        grep -qF "$S_LOGIN: protected: logged-in session" <<<"$out"
    expect "why after the scan: not banned" grep -qF "$S_LOGIN: not banned" <<<"$out"
    expect "log: attackalert: protected: logged-in session: host .../$S_LOGIN" \
        log_has "attackalert: protected: logged-in session: host [^ ]+/${S_LOGIN//./\\.} "
    expect "the login's ssh connection still carries commands after the scan" ssh_alive

    # A TCP connection to sshd without a login protects nothing.
    out=$(ip netns exec "$NS_A" "$PY" - "$S_TCP" "$V_A4" 2>&1 <<'PYEOF'
import socket, sys
s = socket.socket()
s.settimeout(3)
s.bind((sys.argv[1], 0))
s.connect((sys.argv[2], 22))
print(s.recv(64).decode(errors="replace").strip())
s.close()
PYEOF
    )
    expect "$S_TCP connected to :22 and read the banner (got: ${out:0:40})" grep -q '^SSH-2.0-' <<<"$out"
    sleep 1.2   # longer than the daemon's 1 s pick-up: it had every chance to protect it
    expect "why $S_TCP after the bare connect: not protected" why_says "$S_TCP" "not protected"
    expect_not "no utmp login from $S_TCP" utmp_has_login "$S_TCP"
    nmap_run ssh-tcp-only "$NS_A" 1-1023 -sS -T4 -p1-200 -e eth0 -S "$S_TCP" "$V_A4"
    expect_eq "bare-connect address: zero closed among watched ports" "${NM_watched_closed:-?}" 0
    expect "bare-connect $S_TCP banned" set_has banned "$S_TCP"
    expect "log: TCP SYN/Normal scan from $S_TCP" \
        log_has "attackalert: TCP SYN/Normal scan from host: [^ ]+/${S_TCP//./\\.} to TCP port: [0-9]+"
    expect_not "logged-in $S_LOGIN still not banned" set_has banned "$S_LOGIN"

    # Logout: sshd marks the record DEAD_PROCESS, protection goes with it.
    kill -TERM "$SSH_PID" 2>/dev/null
    { wait "$SSH_PID"; } 2>/dev/null
    expect "after logout: utmp has no live login from $S_LOGIN" wait_for 5 sh -c "! nsenter -t $DAEMON_PID -m utmpdump /run/utmp 2>/dev/null | grep -qE '^\[7\] .*\[${S_LOGIN//./\\.} *\]'"
    expect "after logout: why $S_LOGIN says not protected within 2 s" \
        wait_for 2 why_says "$S_LOGIN" "not protected"
    expect_not "after logout: $S_LOGIN left set never" set_has never "$S_LOGIN"
    nmap_run ssh-after-logout "$NS_A" 1-1023 -sS -T4 -p300-400 -e eth0 -S "$S_LOGIN" "$V_A4"
    expect "after logout: $S_LOGIN scanning again is banned" set_has banned "$S_LOGIN"
    dump_on_failure
    lab_down
}

# Negative control: with protect.sessions off the same login is banned.
s_sessions_off() {
    lab_with_sshd false || { lab_down; return; }
    ssh_login "$S_LOGIN"
    expect "sshd wrote a USER_PROCESS record from $S_LOGIN (control: the login happened)" \
        wait_for 10 utmp_has_login "$S_LOGIN"
    sleep 1.2   # the pick-up time the protected case needed at most
    expect "sessions off: why $S_LOGIN says not protected" why_says "$S_LOGIN" "not protected"
    nmap_run ssh-sessions-off "$NS_A" 1-1023 -sS -T4 -p1-200 -e eth0 -S "$S_LOGIN" "$V_A4"
    expect_eq "sessions off: zero closed among watched ports" "${NM_watched_closed:-?}" 0
    expect "sessions off: logged-in $S_LOGIN banned" set_has banned "$S_LOGIN"
    expect_not "sessions off: no 'protected: logged-in session' line" log_has "protected: logged-in session"
    expect_not "sessions off: the login's ssh connection is cut (packets dropped)" ssh_alive
    dump_on_failure
    lab_down
}

CUR_TAG="ssh/$BACKEND"
say "=== $CUR_TAG: $BIN"
t0=$SECONDS
scenario_run "ssh login protects, bare :22 connect does not" s_login_protects
scenario_run "control: protect.sessions off -> banned" s_sessions_off
say "ssh.sh: $((SECONDS - t0)) s"
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
