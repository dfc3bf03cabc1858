#!/bin/bash
# Runs inside the booted Debian 12 guest (tests/systemd/run.sh enters it with
# nsenter). /root/t holds our .deb and tests/data/tutorial/*; /root/debs
# holds portsentry 1.2's .deb. Prints "ok:"/"FAIL:" per check and finally
# "SDTEST RESULT PASS" or "SDTEST RESULT FAIL". The guest has no network: the
# scanner and an office host are network namespaces inside it.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER='' SYSTEMD_COLORS=0
T=/root/t
SCANNER=203.0.113.5
SCANNER2=203.0.113.6
OFFICE=192.0.2.10   # inside 192.0.2.0/24 of the tutorial's ignore.static
STATE=/var/lib/portsentry/portsentry-nfq.state
FAILS=0
T0=$(date +%s)

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
step() { printf '\n== %s (%s s)\n' "$*" "$(($(date +%s) - T0))"; }
fatal() {
    echo "FAIL: $*"
    journalctl -q --no-pager -n 40 -u portsentry-nfq || true
    echo "SDTEST RESULT FAIL"
    exit 1
}
# wait_until SECONDS CMD...: poll every 0.2 s.
wait_until() {
    local n=$(($1 * 5))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    return 1
}
unit_log() { journalctl -q --no-pager -o cat -u portsentry-nfq; }
# Lines the daemon sent to syslog (ident portsentry), via the journal.
sys_log() { journalctl -q --no-pager -o cat -t portsentry; }
main_pid() { systemctl show -p MainPID --value portsentry-nfq; }
banned() { nft list set inet portsentry banned 2>/dev/null | grep -qw "$1"; }
in_log() { unit_log | grep -qF -- "$1"; }
in_syslog() { sys_log | grep -qF -- "$1"; }
in_varlog() { grep -qF -- "$1" /var/log/syslog 2>/dev/null; }
is_active() { systemctl is-active -q portsentry-nfq; }
not() { ! "$@"; }
has_table() { nft list table inet portsentry >/dev/null 2>&1; }
running() { pgrep -x "$1" >/dev/null; }

# ---------------------------------------------------------------------------
step "portsentry 1.2, installed and configured as the tutorials do"
dpkg -i /root/debs/portsentry_*.deb >/tmp/dpkg-1.2.log 2>&1 || { cat /tmp/dpkg-1.2.log; fatal "dpkg -i portsentry 1.2"; }
cp "$T/default-portsentry" /etc/default/portsentry
cp "$T/portsentry.conf" /etc/portsentry/portsentry.conf
cp "$T/portsentry.ignore.static" /etc/portsentry/portsentry.ignore.static
systemctl restart portsentry || true
check "portsentry 1.2 runs (systemd's unit generated from /etc/init.d/portsentry)" \
    wait_until 10 running portsentry

# ---------------------------------------------------------------------------
step "our package installed over it"
dpkg -i "$T"/portsentry-nfq_*.deb >/tmp/dpkg-nfq.log 2>&1 || { cat /tmp/dpkg-nfq.log; fatal "dpkg -i portsentry-nfq"; }
# dpkg removes a conflicting package it replaces down to its conffiles.
st=$(dpkg-query -W -f='${db:Status-Status}' portsentry 2>&1)
check "portsentry 1.2 removed, its conffiles kept (dpkg: $st)" test "$st" = config-files
check "portsentry.conf untouched" cmp -s /etc/portsentry/portsentry.conf "$T/portsentry.conf"
check "/etc/default/portsentry untouched" cmp -s /etc/default/portsentry "$T/default-portsentry"
check "portsentry.ignore.static untouched" cmp -s /etc/portsentry/portsentry.ignore.static "$T/portsentry.ignore.static"
check "portsentry 1.2 no longer runs" not running portsentry
check "portsentry-nfq is active" wait_until 10 is_active
check "portsentry.service is our unit (Alias=)" \
    test "$(systemctl show -p Id --value portsentry.service)" = portsentry-nfq.service
check "the journal names portsentry.conf and /etc/default/portsentry" \
    in_log "config: /etc/portsentry/portsentry.conf (portsentry 1.2 format; modes from /etc/default/portsentry"
check "the journal names the ignore files" \
    in_log "ignore list: /etc/portsentry/portsentry.ignore + /etc/portsentry/portsentry.ignore.static"
status=$(portsentry-nfq status 2>&1)
check "status: config is portsentry.conf" grep -q "^config: /etc/portsentry/portsentry.conf" <<<"$status"
check "status: modes atcp/audp, BLOCK 1, from /etc/default/portsentry" \
    grep -q "tcp: advanced block 1  udp: advanced block 1" <<<"$status"
check "state directory mode 0700" test "$(stat -c %a /var/lib/portsentry)" = 700
verify=$(systemd-analyze verify /lib/systemd/system/portsentry-nfq.service 2>&1)
[ -z "$verify" ] || echo "$verify"
check "systemd-analyze verify is clean" test -z "$verify"
score=$(systemd-analyze security portsentry-nfq 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "   systemd-analyze security (live): ${score:-?}"
check "exposure level <= 4.5" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 4.5) }'

# ---------------------------------------------------------------------------
step "Type=notify: active only once the table is loaded and the queue bound"
systemctl stop portsentry-nfq
nft delete table inet portsentry 2>/dev/null
check "no table before the start" not has_table
systemctl start portsentry-nfq || fatal "systemctl start portsentry-nfq"
# `systemctl start` of a Type=notify unit returns when READY=1 arrived.
check "active when start returns" is_active
check "table inet portsentry exists at that moment" has_table
check "queue 0 is bound at that moment" grep -q '^ *0 ' /proc/net/netfilter/nfnetlink_queue
check "unit is Type=notify with WatchdogSec=10" \
    test "$(systemctl show -p Type,WatchdogUSec --value portsentry-nfq | tr '\n' ' ')" = "notify 10s "
check "STATUS= shows backend, bans, drops" \
    wait_until 3 sh -c 'systemctl show -p StatusText --value portsentry-nfq | grep -q "^backend xt-queue; [0-9]* bans; [0-9]* probes dropped"'

# ---------------------------------------------------------------------------
step "a scan from a network namespace"
{ ip netns add scan && ip netns add office; } || fatal "ip netns add"
ip link add vs type veth peer name vs0 netns scan
ip addr add 203.0.113.1/24 dev vs && ip link set vs up
ip -n scan addr add "$SCANNER/24" dev vs0
ip -n scan addr add "$SCANNER2/24" dev vs0
ip -n scan link set vs0 up && ip -n scan link set lo up
ip link add vo type veth peer name vo0 netns office
ip addr add 192.0.2.1/24 dev vo && ip link set vo up
ip -n office addr add "$OFFICE/24" dev vo0 && ip -n office link set vo0 up && ip -n office link set lo up
sleep 1   # the daemon's protection follows new local addresses (rtnetlink)
# A floor on the rate: once the scanner is banned every probe is dropped, and
# nmap's congestion control would otherwise crawl on a busy host.
ip netns exec scan nmap -n -Pn -sS -T4 --max-retries 0 --min-rate 1000 --max-rtt-timeout 500ms -S "$SCANNER" -e vs0 -p 1-1023 203.0.113.1 -oG /tmp/nmap.txt \
    >/tmp/nmap.out 2>&1 || { cat /tmp/nmap.out; bad "nmap ran"; }
closed=$(grep -o '[0-9]*/closed/[a-z]*' /tmp/nmap.txt | grep -cvE '^(113|139)/' || true)
echo "   nmap: $(grep -o 'Ignored State: [a-z]* ([0-9]*)' /tmp/nmap.txt || echo '?'); closed watched ports: $closed"
check "nmap sees 0 closed watched ports" test "$closed" -eq 0
check "the journal has the attackalert scan line" \
    wait_until 5 in_syslog "attackalert: TCP SYN/Normal scan from host: $SCANNER/$SCANNER to TCP port:"
check "the journal has the attackalert ban line" \
    in_syslog "attackalert: Host $SCANNER has been blocked via nft set"
check "/var/log/syslog has them (grep attackalert /var/log/syslog)" \
    wait_until 5 in_varlog "attackalert: TCP SYN/Normal scan from host: $SCANNER/$SCANNER"
check "nft set banned holds the scanner" banned "$SCANNER"
check "/etc/hosts.deny has its line (KILL_HOSTS_DENY)" grep -qx "ALL: $SCANNER : DENY" /etc/hosts.deny
ip netns exec office nmap -n -Pn -sS -T4 --max-retries 0 --min-rate 1000 --max-rtt-timeout 500ms -p 1-200 192.0.2.1 >/dev/null 2>&1
sleep 1
check "the ignore.static host is never banned" not banned "$OFFICE"
check "why: the ignore.static host is protected by the ignore list" \
    sh -c "portsentry-nfq why $OFFICE | grep -q 'protected: ignore list (192.0.2.0/24)'"

# ---------------------------------------------------------------------------
step "systemctl restart portsentry restarts portsentry-nfq; bans kept"
pid=$(main_pid)
systemctl restart portsentry || bad "systemctl restart portsentry"
check "a new daemon runs" test "$(main_pid)" != "$pid" -a "$(main_pid)" != 0
check "active" is_active
check "the ban survived the restart (nft set)" banned "$SCANNER"
list=$(portsentry-nfq list 2>&1)
check "the ban survived the restart (list)" grep -q "^$SCANNER " <<<"$list" || echo "$list"

# ---------------------------------------------------------------------------
step "a package upgrade (reinstall) keeps the table and the bans"
restores() { unit_log | grep -c "table inet portsentry restored" || true; }
before=$(restores)
dpkg -i "$T"/portsentry-nfq_*.deb >/tmp/dpkg-upgrade.log 2>&1 || { cat /tmp/dpkg-upgrade.log; bad "dpkg -i (upgrade)"; }
check "active after the upgrade" wait_until 10 is_active
check "the ban survived the upgrade" banned "$SCANNER"
sleep 1
check "prerm upgrade did not delete the table (the daemon never had to restore it)" test "$(restores)" = "$before"

# ---------------------------------------------------------------------------
step "systemctl reload: a broken config fails with FILE:LINE, the old one keeps running"
cp /etc/portsentry/portsentry.conf /root/conf.good
echo 'SCAN_TRIGGER="many"' >>/etc/portsentry/portsentry.conf
line=$(wc -l </etc/portsentry/portsentry.conf)
pid=$(main_pid)
rc=0
systemctl reload portsentry-nfq >/tmp/reload.out 2>&1 || rc=$?
check "systemctl reload fails" test "$rc" -ne 0
check "the journal has FILE:LINE" in_log "/etc/portsentry/portsentry.conf:$line:"
check "systemctl status shows FILE:LINE (STATUS=)" \
    sh -c "systemctl status --full --no-pager portsentry-nfq | grep -q 'last reload refused: /etc/portsentry/portsentry.conf:$line:'"
check "same daemon, still active" test "$(main_pid)" = "$pid"
check "still active" is_active
check "bans kept" banned "$SCANNER"
check "old config still running (status)" sh -c "portsentry-nfq status | grep -q '^config: /etc/portsentry/portsentry.conf'"
cp /root/conf.good /etc/portsentry/portsentry.conf
check "reload of the repaired config succeeds" systemctl reload portsentry-nfq
check "the refusal is gone from STATUS=" \
    sh -c "! systemctl show -p StatusText --value portsentry-nfq | grep -q refused"

# ---------------------------------------------------------------------------
step "watchdog: a stopped loop gets the daemon restarted"
pid=$(main_pid)
t_stop=$(date +%s)
kill -STOP "$pid"
restarted() { local p; p=$(main_pid); [ "$p" != "$pid" ] && [ "$p" != 0 ] && is_active; }
if wait_until 40 restarted; then
    took=$(($(date +%s) - t_stop))
    echo "   restarted ${took} s after SIGSTOP"
    check "restarted within WatchdogSec (10 s) + 8 s" test "$took" -le 18
else
    bad "the watchdog restarted the daemon"
fi
check "systemd logged the watchdog timeout" sh -c "journalctl -q --no-pager -u portsentry-nfq | grep -q 'Watchdog timeout'"
check "bans kept after the watchdog restart" banned "$SCANNER"

# ---------------------------------------------------------------------------
step "dpkg --purge portsentry (1.2) does not silently change what runs"
dpkg --purge portsentry >/tmp/purge-1.2.log 2>&1 || { cat /tmp/purge-1.2.log; bad "dpkg --purge portsentry"; }
check "1.2's purge deleted portsentry.conf and /etc/default/portsentry" \
    not test -e /etc/portsentry/portsentry.conf -o -e /etc/default/portsentry
check "the running daemon keeps its settings" sh -c "portsentry-nfq status | grep -q '^config: /etc/portsentry/portsentry.conf'"
check "a restart is refused" not systemctl restart portsentry-nfq
check "the journal names what vanished" in_log "/etc/portsentry/portsentry.conf: is gone"
check "--check names it too" sh -c "portsentry-nfq --check 2>&1 | grep -q '/etc/portsentry/portsentry.conf: is gone'"
check "the packaged defaults did not take over" not is_active
# The way out README.Debian gives: convert, then restart.
mkdir -p /etc/portsentry   # 1.2's purge removed the emptied directory
cp "$T/portsentry.ignore.static" /etc/portsentry/portsentry.ignore.static
portsentry-nfq --import-legacy "$T/portsentry.conf" --defaults "$T/default-portsentry" >/etc/portsentry/portsentry.yaml ||
    bad "--import-legacy"
systemctl reset-failed portsentry-nfq
check "after --import-legacy to portsentry.yaml it starts" systemctl restart portsentry-nfq
check "on the YAML file" sh -c "portsentry-nfq status | grep -q '^config: /etc/portsentry/portsentry.yaml'"
check "with the bans" banned "$SCANNER"
# A write path outside the sandbox: ExecStartPre='s --check names it.
cp /etc/portsentry/portsentry.yaml /root/yaml.good
sed -i 's|^history_file:.*|history_file: "/opt/portsentry.history"|' /etc/portsentry/portsentry.yaml
hline=$(grep -n '^history_file:' /etc/portsentry/portsentry.yaml | cut -d: -f1)
check "a history_file outside ReadWritePaths= stops the start" not systemctl restart portsentry-nfq
check "--check in the sandbox named it with FILE:LINE" \
    in_log "/etc/portsentry/portsentry.yaml:$hline: history_file: /opt is not writable here (Read-only file system)"
cp /root/yaml.good /etc/portsentry/portsentry.yaml
systemctl reset-failed portsentry-nfq
check "back on a writable history_file it starts" systemctl restart portsentry-nfq
ip netns exec scan nmap -n -Pn -sS -T4 --max-retries 0 --min-rate 1000 --max-rtt-timeout 500ms -S "$SCANNER2" -e vs0 -p 1-100 203.0.113.1 >/dev/null 2>&1
check "a second scanner is banned" wait_until 5 banned "$SCANNER2"
check "its history line is written" wait_until 5 grep -q "Host: $SCANNER2/$SCANNER2 Port: " /var/lib/portsentry/portsentry.history

# ---------------------------------------------------------------------------
step "apt remove leaves no table; purge leaves no state, keeps history"
apt-get remove -y -q portsentry-nfq >/tmp/remove.log 2>&1 || { cat /tmp/remove.log; bad "apt-get remove"; }
check "no daemon" not running portsentry-nfq
check "no table inet portsentry after remove" not has_table
# The ban table is the state file plus its journals; a table that only
# changed since the last compaction may be in journals alone.
check "remove keeps the ban table (state file or its journal)" sh -c "test -e $STATE || ls $STATE.journal.* >/dev/null 2>&1"
check "the state has a journal to purge" sh -c "ls $STATE.journal.* >/dev/null 2>&1"
apt-get purge -y -q portsentry-nfq >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; bad "apt-get purge"; }
check "purge deletes the state file" not test -e "$STATE"
check "purge deletes its journals" not sh -c "ls $STATE.journal.* >/dev/null 2>&1"
check "purge deletes the config record" not test -e /var/lib/portsentry/portsentry-nfq.config-used
check "purge deletes the runtime dir (socket, lock)" not test -e /run/portsentry-nfq
check "purge keeps the history file" grep -q "Host: $SCANNER2/" /var/lib/portsentry/portsentry.history
check "purge keeps the blocked files" sh -c 'ls /var/lib/portsentry/portsentry.blocked.* >/dev/null 2>&1'
check "purge keeps the admin's files" test -e /etc/portsentry/portsentry.yaml -a -e /etc/portsentry/portsentry.ignore.static
check "the portsentry.service alias is gone" not test -e /etc/systemd/system/portsentry.service
check "still no table" not has_table

echo
echo "guest scenario: $(($(date +%s) - T0)) s, $FAILS failure(s)"
if [ "$FAILS" -eq 0 ]; then echo "SDTEST RESULT PASS"; else echo "SDTEST RESULT FAIL"; fi
