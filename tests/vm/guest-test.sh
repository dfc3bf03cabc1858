#!/bin/sh
# In-guest scenario for tests/vm/run.sh: runs as part of /init on Debian 12's
# stock kernel (dash is /bin/sh, busybox applets, iproute2 ip, nft, nmap).
#
#   attacker 198.51.100.2/.3/.7/.8/.9, 2001:db8:1::2 ── eth-a ┐
#                                                            victim: daemon, httpd :80 (:150 later)
#   friend   203.0.113.2, 2001:db8:2::2 ─────────────── eth-f ┘  (friend nets in ignore.static)
#
# Prints one `VMTEST PASS name` / `VMTEST FAIL name: detail` line per check,
# `VMTEST INFO ...` lines with the figures (nmap results, kernel), and a final
# `VMTEST RESULT PASS|FAIL`. /etc/vmtest.conf says whether a daemon binary is
# present (VMTEST_DAEMON=1); without one only the kernel checks run.
set -u
# shellcheck disable=SC1091  # written by run.sh into the initramfs
. /etc/vmtest.conf
# Busybox applets that run a command (timeout, xargs) exec their own applet of
# that name first: always give them iproute2's ip by its full path.

FAILS=0
pass() { echo "VMTEST PASS $1${2:+ ($2)}"; }
fail() { echo "VMTEST FAIL $1: $2"; FAILS=$((FAILS + 1)); }
info() { echo "VMTEST INFO $*"; }
# Progress marks for the console log: after a hang, the last one says where.
step() { echo "vmtest-step: $*"; }

V_A4=198.51.100.1 V_A6=2001:db8:1::1 V_F4=203.0.113.1 V_F6=2001:db8:2::1
A4=198.51.100.2 A6=2001:db8:1::2 F4=203.0.113.2 F6=2001:db8:2::2
A4_UDP=198.51.100.3 A4_LATE=198.51.100.7 A4_KILL=198.51.100.8 A4_BASE=198.51.100.9
# Debian's stock ADVANCED_EXCLUDE_TCP: these answer as before (docs/ARCHITECTURE.md).
EXCLUDED_TCP="113 139"
EXCLUDED_UDP="520 138 137 67"   # ADVANCED_EXCLUDE_UDP below: they answer as before
PS=/tmp/ps
DAEMON_PID=""

in_v() { ip netns exec victim "$@"; }

info "uname $(uname -r) $(uname -v)"
info "package $VMTEST_KPKG"

finish() {
    if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null; fi
    if [ "$FAILS" -eq 0 ]; then echo "VMTEST RESULT PASS"; else echo "VMTEST RESULT FAIL"; fi
    exit 0
}

# ---------------------------------------------------------------- modules --
# busybox modprobe ignores softdeps: nf_tables needs crc32c before libcrc32c
# or nft reports "Operation not supported". The rest would also autoload via
# /sbin/modprobe; loading them here makes a missing one a named failure.
MODS="crc32c_generic libcrc32c nf_tables nf_conntrack nft_ct nft_queue nfnetlink_queue
nft_socket nf_socket_ipv4 nf_socket_ipv6 nft_fib_inet nft_fib_ipv4 nft_fib_ipv6
nft_reject_inet nft_log nfnetlink_log nft_limit nft_compat xt_NFQUEUE veth"
bad=""
for m in $MODS; do modprobe "$m" 2>/dev/null || bad="$bad $m"; done
if [ -z "$bad" ]; then pass modules "$(echo "$MODS" | wc -w) loaded"; else fail modules "modprobe failed:$bad"; fi

# ---------------------------------------------------- nmap result parsing --
# scan NAME NS SRC TARGET NMAP-ARGS...: nmap from SRC in NS with grepable
# output in $PS/scan-NAME; tiny port ranges, no retries, -T5 (TCG is slow).
scan() {
    name=$1 ns=$2 src=$3 target=$4
    shift 4
    fam=""
    # v6: --send-ip lets the kernel route the probe with the pinned neighbour
    # entry (nmap's own neighbour solicitation would be dropped once banned).
    case $target in *:*) fam="-6 --send-ip" ;; esac
    step "nmap $name"
    # shellcheck disable=SC2086  # $fam: zero or two words
    timeout -s KILL 90 /usr/sbin/ip netns exec "$ns" nmap $fam -n -Pn -T5 --max-retries 0 -e eth0 -S "$src" -oG - "$@" "$target" \
        >"$PS/scan-$name" 2>"$PS/scan-$name.err"
    st=$?
    [ $st -eq 0 ] || { echo "nmap $name exited $st: $(head -c 300 "$PS/scan-$name.err")"; return 1; }
    return 0
}
# ports NAME STATE: the explicitly listed ports in STATE ("closed", "open",
# "filtered", "open|filtered"), one per line.
ports() {
    awk -F'\t' -v want="$2" '{ for (i = 1; i <= NF; i++) if ($i ~ /^Ports: /) {
        sub(/^Ports: /, "", $i); n = split($i, e, ", ")
        for (j = 1; j <= n; j++) { split(e[j], f, "/"); if (f[2] == want) print f[1] } } }' "$PS/scan-$1"
}
# ignored NAME: "STATE COUNT" of nmap's collapsed majority state, if any.
ignored() {
    sed -n 's/.*Ignored State: \([^ ]*\) (\([0-9]*\)).*/\1 \2/p' "$PS/scan-$1" | head -n1
}
# count NAME STATE: listed + collapsed ports in STATE.
count() {
    n=$(ports "$1" "$2" | wc -l)
    set -- "$(ignored "$1")" "$2"
    case $1 in "$2 "*) n=$((n + ${1#* })) ;; esac
    echo "$n"
}
summary() {
    s=""
    for st in open closed filtered "open|filtered"; do
        c=$(count "$1" "$st")
        [ "$c" -eq 0 ] || s="$s $st=$c"
    done
    o=$(ports "$1" open | tr '\n' ',' | sed 's/,$//')
    c=$(ports "$1" closed | tr '\n' ',' | sed 's/,$//')
    [ "$(count "$1" closed)" -gt 20 ] && c="..."
    echo "${s# }${o:+ (open: $o)}${c:+ (closed: $c)}"
}
# closed_watched NAME [EXCLUDED]: closed ports that are watched (not in
# EXCLUDED, default EXCLUDED_TCP).
closed_watched() {
    local excluded=${2:-$EXCLUDED_TCP}
    case $(ignored "$1") in "closed "*) echo "most ports"; return ;; esac
    ports "$1" closed | while read -r p; do
        case " $excluded " in *" $p "*) ;; *) echo "$p" ;; esac
    done | tr '\n' ' '
}

banned() {   # banned SET ADDR: ADDR is an element of inet portsentry SET
    in_v nft get element inet portsentry "$1" "{ $2 }" >/dev/null 2>&1
}

mkdir -p $PS/www
echo "portsentry-nfq vm lab" >$PS/www/index.html

# ------------------------------------------------- ruleset features on 6.1 --
# Every construct the daemon's table uses, loaded in a scratch namespace
# without the daemon: prerouting at raw priority, the socket expression, sets
# with timeouts and an explicit size, interval sets (v4 and v6 prefixes), fib,
# ct state and `queue ... bypass`.
ip netns add scratch
in_s() { ip netns exec scratch "$@"; }
in_s ip link set lo up
# http_get NS ADDR PORT: the page, via nc (busybox's static wget
# segfaults in the guest: glibc NSS in a static binary).
http_get() {
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout -s KILL 10 /usr/sbin/ip netns exec "$1" nc -w 5 "$2" "$3" 2>&1 | grep "vm lab"
}
# wait_http NS ADDR PORT: up to 10 s for a freshly started httpd to answer.
wait_http() {
    i=0
    while [ $i -lt 20 ]; do
        http_get "$@" >/dev/null && return 0
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}
in_s httpd -p 127.0.0.1:7 -h $PS/www
wait_http scratch 127.0.0.1 7 || fail scratch-listener "httpd on 127.0.0.1:7 never answered"
cat >$PS/features.nft <<'EOF'
table inet vmt {
    set banned { type ipv4_addr; flags timeout; size 65536; }
    set banned6 { type ipv6_addr; flags interval, timeout; size 65536; }
    set never { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }
    set never6 { type ipv6_addr; flags interval; elements = { 2001:db8:ffff::/48 } }
    chain prerouting {
        type filter hook prerouting priority raw; policy accept;
        ip saddr @never accept
        ip6 saddr @never6 accept
        ip saddr @banned drop
        ip6 saddr @banned6 drop
    }
    chain input {
        type filter hook input priority -150; policy accept;
        ct state established,related accept
        socket transparent 0 accept
        fib daddr type local tcp dport 1-1024 queue num 0
    }
}
EOF
if out=$(in_s nft -f $PS/features.nft 2>&1) &&
    out=$(in_s nft add element inet vmt banned "{ 192.0.2.7 timeout 1h }" 2>&1) &&
    out=$(in_s nft add element inet vmt banned6 "{ 2001:db8:1::/64 timeout 1h, 2001:db8:3::5 timeout 30m }" 2>&1); then
    pass ruleset-features-load "prerouting raw, socket, timeout sets with size, interval sets, queue"
else
    fail ruleset-features-load "$out"
fi
# Queue without a reader and without bypass drops; the socket expression lets
# a port with a listener through; with bypass the same probe is answered.
if msg=$(http_get scratch 127.0.0.1 7); then
    pass socket-expr-accepts-listener
else
    fail socket-expr-accepts-listener "no answer from a listening port behind the queue rule: $msg"
    in_s nft list ruleset | sed 's/^/nft| /'
fi
t0=$(date +%s)
msg=$(timeout -s KILL 10 /usr/sbin/ip netns exec scratch nc -w 3 127.0.0.1 5 </dev/null 2>&1)
if [ $(($(date +%s) - t0)) -ge 2 ]; then pass queue-no-reader-drops; else fail queue-no-reader-drops "answered: $msg"; fi
in_s nft flush chain inet vmt input
in_s nft add rule inet vmt input ct state established,related accept
in_s nft add rule inet vmt input fib daddr type local tcp dport 1-1024 queue num 0 bypass
msg=$(timeout -s KILL 10 /usr/sbin/ip netns exec scratch nc -w 3 127.0.0.1 5 </dev/null 2>&1)
case $msg in *refused*) pass queue-bypass-fails-open ;; *) fail queue-bypass-fails-open "nc said: $msg" ;; esac
ip netns pids scratch | xargs -r kill -KILL 2>/dev/null
ip netns del scratch

[ "$VMTEST_DAEMON" = 1 ] || finish

# -------------------------------------------------------------------- lab --
lab_up() {
    for ns in victim attacker friend; do ip netns add $ns && ip -n $ns link set lo up || return 1; done
    ip -n victim link add eth-a type veth peer name eth0 netns attacker &&
    ip -n victim link add eth-f type veth peer name eth0 netns friend &&
    ip -n victim addr add $V_A4/24 dev eth-a &&
    ip -n victim addr add $V_A6/64 dev eth-a nodad &&
    ip -n victim addr add $V_F4/24 dev eth-f &&
    ip -n victim addr add $V_F6/64 dev eth-f nodad &&
    ip -n attacker addr add $A4/24 dev eth0 &&
    ip -n attacker addr add $A6/64 dev eth0 nodad &&
    ip -n friend addr add $F4/24 dev eth0 &&
    ip -n friend addr add $F6/64 dev eth0 nodad || return 1
    for a in $A4_UDP $A4_LATE $A4_KILL $A4_BASE; do ip -n attacker addr add "$a/24" dev eth0 || return 1; done
    ip -n victim link set eth-a up && ip -n victim link set eth-f up &&
    ip -n attacker link set eth0 up && ip -n friend link set eth0 up || return 1
    # A banned v6 source also loses neighbour discovery (its NS/NA are
    # dropped at prerouting like everything else), and nmap then reports the
    # victim "down" instead of showing the dropped probe: pin the victim's
    # MAC on the attacker side (and scan v6 with --send-ip) so v6 scans test
    # the TCP path alone.
    mac=$(ip netns exec victim cat /sys/class/net/eth-a/address) && [ -n "$mac" ] || return 1
    ip -n attacker -6 neigh replace $V_A6 lladdr "$mac" dev eth0 nud permanent || return 1
    # Closed UDP ports answer with rate-limited ICMP: lift the limit so the
    # baseline UDP picture is complete and fast.
    in_v sysctl -qw net.ipv4.icmp_ratelimit=0 2>/dev/null
    in_v sysctl -qw net.ipv6.icmp.ratelimit=0 2>/dev/null
    in_v sysctl -qw net.ipv4.icmp_msgs_burst=10000 net.ipv4.icmp_msgs_per_sec=100000 2>/dev/null
    return 0
}
lab_up || { fail lab "namespace/veth setup failed"; finish; }
in_v httpd -p 80 -h $PS/www
if wait_http friend $V_F4 80 && wait_http friend $V_F6 80; then pass lab; else fail lab "friend cannot reach the victim's httpd on v4 and v6"; fi

# Without the daemon the victim is an ordinary host: the scanner sees closed
# ports. Otherwise "0 closed" below would prove nothing.
if scan baseline attacker $A4_BASE $V_A4 -sS -p1-200; then
    c=$(count baseline closed)
    info "nmap baseline (no daemon, $A4_BASE -> $V_A4 tcp 1-200): $(summary baseline)"
    if [ "$c" -ge 150 ]; then pass baseline-scanner-sees-closed "$c closed"; else fail baseline-scanner-sees-closed "only $c closed"; fi
else
    fail baseline-scanner-sees-closed "nmap failed"
fi

# ----------------------------------------------------------------- daemon --
# The tutorial setup: Debian's stock portsentry.conf with BLOCK_TCP/UDP
# switched on and the iptables KILL_ROUTE, advanced modes from
# /etc/default/portsentry, the friend's networks in portsentry.ignore.static.
cat >$PS/portsentry.default <<'EOF'
TCP_MODE="atcp"
UDP_MODE="audp"
EOF
cat >$PS/portsentry.conf <<EOF
TCP_PORTS="1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320"
UDP_PORTS="1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321"
ADVANCED_PORTS_TCP="1024"
ADVANCED_PORTS_UDP="1024"
ADVANCED_EXCLUDE_TCP="113,139"
ADVANCED_EXCLUDE_UDP="520,138,137,67"
IGNORE_FILE="$PS/portsentry.ignore"
HISTORY_FILE="$PS/portsentry.history"
BLOCKED_FILE="$PS/portsentry.blocked"
RESOLVE_HOST = "0"
BLOCK_UDP="1"
BLOCK_TCP="1"
KILL_ROUTE="/sbin/iptables -I INPUT -s \$TARGET\$ -j DROP"
SCAN_TRIGGER="0"
EOF
printf '127.0.0.1/32\n0.0.0.0\n' >$PS/portsentry.ignore
printf '# the friend networks\n203.0.113.0/24\n2001:db8:2::/64\n' >$PS/portsentry.ignore.static

# start_daemon TAG: start in the victim, wait for `ready` on stderr; on
# failure WHY says what happened. Not called in $(...): the daemon would hold
# the substitution's pipe open and the guest would wait forever.
start_daemon() {
    step "start daemon ($1)"
    DLOG=$PS/daemon-$1.log
    # ip netns exec execs the daemon: $! is the daemon itself (SIGKILL below).
    ip netns exec victim portsentry-nfq -c $PS/portsentry.conf --defaults $PS/portsentry.default \
        --state-file $PS/portsentry-nfq.state --control-socket $PS/portsentry-nfq.sock \
        </dev/null >"$PS/daemon-$1.out" 2>"$DLOG" &
    DAEMON_PID=$!
    i=0
    sleep 0.2
    case $(cat /proc/$DAEMON_PID/comm 2>/dev/null) in
        portsentry-nfq | ip | "") ;;
        *) WHY="pid $DAEMON_PID is $(cat /proc/$DAEMON_PID/comm), not the daemon"; return 1 ;;
    esac
    while [ $i -lt 240 ]; do   # up to 120 s under TCG
        grep -q 'portsentry-nfq: ready' "$DLOG" && return 0
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID"
            WHY="daemon exited with status $? before ready"
            DAEMON_PID=""
            return 1
        fi
        sleep 0.5
        i=$((i + 1))
    done
    WHY="no ready line after 120 s"
    return 1
}
dump_log() { sed "s/^/daemon[$1]| /" "$PS/daemon-$1.log" | tail -n 40; }

if ! start_daemon first; then
    fail daemon-ready "$WHY"
    dump_log first
    finish
fi
pass daemon-ready "$(grep -m1 'portsentry-nfq: ready' "$DLOG" | cut -c1-160)"
line=$(grep -m1 'steering backend:' "$DLOG")
case $line in
    *"steering backend: queue (auto"*) pass backend-queue-auto "$line" ;;
    *) fail backend-queue-auto "log says: ${line:-no steering backend line}"; dump_log first ;;
esac

# The daemon's own table uses the features checked above, on this kernel.
ruleset=$(in_v nft list table inet portsentry 2>&1)
missing=""
echo "$ruleset" | grep -q 'hook prerouting priority raw' || missing="$missing prerouting-raw"
echo "$ruleset" | grep -q 'socket transparent' || missing="$missing socket"
echo "$ruleset" | grep -q 'queue .*bypass' || missing="$missing queue-bypass"
echo "$ruleset" | grep -q 'flags .*timeout' || missing="$missing timeout-set"
echo "$ruleset" | grep -q 'size [0-9]' || missing="$missing set-size"
echo "$ruleset" | grep -q 'flags .*interval' || missing="$missing interval-set"
if [ -z "$missing" ]; then pass daemon-ruleset-features; else
    fail daemon-ruleset-features "not in table inet portsentry:$missing"
    echo "$ruleset" | sed 's/^/nft| /'
fi

# --------------------------------------------------------------- attacker --
check_scan() {   # check_scan NAME SET ADDR [EXCLUDED]: 0 watched closed ports, ADDR banned
    c=$(closed_watched "$1" "${4:-$EXCLUDED_TCP}")
    if [ -z "$c" ]; then pass "$1-0-closed" "$(summary "$1")"; else fail "$1-0-closed" "closed watched ports revealed: $c"; fi
    if banned "$2" "$3"; then pass "$1-banned" "$3 in $2"; else fail "$1-banned" "$3 not in $2"; fi
}
if scan scan4 attacker $A4 $V_A4 -sS -p1-200; then
    info "nmap scan4 ($A4 -> $V_A4 tcp 1-200, daemon up): $(summary scan4)"
    check_scan scan4 banned $A4
else fail scan4 "nmap failed"; fi
if scan scan6 attacker $A6 $V_A6 -sS -p1-200; then
    info "nmap scan6 ($A6 -> $V_A6 tcp 1-200, daemon up): $(summary scan6)"
    check_scan scan6 banned6 $A6
else fail scan6 "nmap failed"; fi
if scan scanudp attacker $A4_UDP $V_A4 -sU -p1-100; then
    info "nmap scanudp ($A4_UDP -> $V_A4 udp 1-100, daemon up): $(summary scanudp)"
    check_scan scanudp banned $A4_UDP "$EXCLUDED_UDP"
else fail scanudp "nmap failed"; fi

# ----------------------------------------------------------------- friend --
# The friend scans too (an admin's own monitoring): ignored, never banned,
# sees the host as it is and reaches the web service on v4 and v6.
if scan friend4 friend $F4 $V_F4 -sS -p1-200; then
    info "nmap friend4 ($F4 -> $V_F4 tcp 1-200, daemon up): $(summary friend4)"
    case " $(ports friend4 open | tr '\n' ' ') " in
        *" 80 "*) pass friend-sees-open-80 ;;
        *) fail friend-sees-open-80 "$(summary friend4)" ;;
    esac
else fail friend4 "nmap failed"; fi
if http_get friend $V_F4 80 >/dev/null && http_get friend $V_F6 80 >/dev/null; then
    pass friend-reaches-http "v4 and v6"
else
    fail friend-reaches-http "no page for the friend on $V_F4:80 or [$V_F6]:80"
fi
if banned banned $F4 || banned banned6 $F6; then fail friend-never-banned "friend address in a ban set"; else pass friend-never-banned; fi

# ----------------------------------------------------------- late service --
# A service started after the daemon is owned by a socket: never steered.
in_v httpd -p 150 -h $PS/www
wait_http victim 127.0.0.1 150 || fail late-service "httpd on :150 never answered"
if scan late attacker $A4_LATE $V_A4 -sS -p150; then
    info "nmap late ($A4_LATE -> $V_A4 tcp 150, service started after the daemon): $(summary late)"
    if [ "$(count late open)" -eq 1 ]; then pass late-service-open; else fail late-service-open "$(summary late)"; fi
    if banned banned $A4_LATE || grep -q "$A4_LATE" "$DLOG"; then
        fail late-service-not-flagged "$A4_LATE was flagged: $(grep "$A4_LATE" "$DLOG" | head -n2)"
    else
        pass late-service-not-flagged
    fi
else fail late "nmap failed"; fi

# ---------------------------------------------------------------- SIGKILL --
comm=$(cat /proc/$DAEMON_PID/comm 2>/dev/null)
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=""
if pidof portsentry-nfq >/dev/null; then
    fail sigkill "a portsentry-nfq survived SIGKILL of pid $DAEMON_PID ($comm): $(pidof portsentry-nfq)"
fi
if scan killed attacker $A4_KILL $V_A4 -sS -p1-50; then
    info "nmap killed ($A4_KILL -> $V_A4 tcp 1-50, daemon SIGKILLed): $(summary killed)"
    c=$(count killed closed)
    if [ "$c" -ge 40 ]; then pass sigkill-bypass-answers "$c closed"; else fail sigkill-bypass-answers "$(summary killed)"; fi
else fail killed "nmap failed"; fi
ok=1
for pair in "$A4 $V_A4" "$A6 $V_A6"; do
    # shellcheck disable=SC2086  # two words into $1 $2
    set -- $pair
    if scan "bannedafter-$1" attacker "$1" "$2" -sS -p80; then
        [ "$(count "bannedafter-$1" filtered)" -eq 1 ] ||
            { ok=0; fail sigkill-bans-still-drop "$1 -> :80 $(summary "bannedafter-$1") [$(tr '\n\t' '  ' <"$PS/scan-bannedafter-$1")]"; }
    else ok=0; fail sigkill-bans-still-drop "nmap failed"; fi
done
[ $ok -eq 1 ] && pass sigkill-bans-still-drop "open port 80 filtered for $A4 and $A6"

# ---------------------------------------------------------------- restart --
# As after a reboot: the table is gone; the daemon restores it and every ban
# from its state file.
in_v nft delete table inet portsentry
if ! start_daemon restart; then
    fail restart-ready "$WHY"
    dump_log restart
    finish
fi
pass restart-ready
bad=""
for pair in "banned $A4" "banned6 $A6" "banned $A4_UDP"; do
    # shellcheck disable=SC2086  # two words into $1 $2
    set -- $pair
    banned "$1" "$2" || bad="$bad $2"
done
if [ -z "$bad" ]; then pass restart-bans-restored "$A4 $A6 $A4_UDP"; else fail restart-bans-restored "missing after restart:$bad"; dump_log restart; fi
if banned banned $A4_KILL; then fail restart-no-spurious-ban "$A4_KILL (scanned while the daemon was dead) is banned"; else pass restart-no-spurious-ban; fi

# Live tampering, as `systemctl reload nftables` does with Debian's
# nftables.conf: the daemon hears it through nftables notifications.
in_v nft flush ruleset
restored=0
for _ in $(seq 20); do
    if banned banned "$A4" && banned banned6 "$A6"; then restored=1; break; fi
    sleep 0.1
done
if [ $restored -eq 1 ]; then pass flush-ruleset-restored "table and bans back within 2 s"
else fail flush-ruleset-restored "table or bans missing 2 s after nft flush ruleset"; dump_log restart; fi

[ "$FAILS" -eq 0 ] || { dump_log first; dump_log restart; }
finish
