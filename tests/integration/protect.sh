# shellcheck shell=bash
# shellcheck disable=SC2154  # globals from lib.sh / run.sh
# Never-ban protection (sourced by run.sh): spoofed SYNs to watched closed
# ports from the victim's default gateway and from a nameserver of the
# resolv.conf the daemon reads are never banned and `why` names the reason;
# a spoofed source that is not protected is banned. All sources sit on the
# attacker link (198.51.100.0/24): the friend's /24 is in the ignore list,
# which would hide the gateway/resolver reasons behind "ignore list".

P_GW=198.51.100.254     # victim's default gateway, added while the daemon runs
P_NS=198.51.100.53      # nameserver in the daemon's /etc/resolv.conf
P_OTHER=198.51.100.77   # spoofed, protected by nothing
P_SESS=198.51.100.88    # remote end of a login written to the daemon's utmp

# utmp_login TYPE ADDR: appends one utmpx record (USER_PROCESS=7: a login)
# to /run/utmp as the daemon sees it: written from
# inside its mount namespace (its /run is an overlay), so inotify fires as it
# would for sshd. The record layout is glibc's x86-64/aarch64 struct utmpx.
utmp_login() {
    nsenter -t "$DAEMON_PID" -m -- "$PY" - "$1" "$2" <<'PYEOF'
import socket, struct, sys, time
typ, addr = int(sys.argv[1]), socket.inet_aton(sys.argv[2])
now = time.time()
rec = struct.pack("<hxxi32s4s32s256shhiii16s20x", typ, 4242, b"pts/9", b"ts/9", b"lab",
                  sys.argv[2].encode(), 0, 0, 0, int(now), 0, addr + bytes(12))
assert len(rec) == 384, len(rec)
with open("/run/utmp", "ab") as f:
    f.write(rec)
PYEOF
}

# spoof_syn SRC PORT...: one SYN per port from SRC to the victim (scapy, L3).
spoof_syn() {
    local src=$1; shift
    in_a "$PY" - "$src" "$V_A4" "$@" <<'PYEOF' >/dev/null 2>&1
import sys
from scapy.all import IP, TCP, send, conf
conf.verb = 0
src, dst, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
send([IP(src=src, dst=dst) / TCP(sport=40000 + p, dport=p, flags="S") for p in ports])
PYEOF
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}

s_protect() {
    local etc_up=$RUN_TMP/ovl/etc/up out
    mkdir -p "$etc_up"
    printf '# lab resolver\nnameserver %s\n' "$P_NS" >"$etc_up/resolv.conf"
    in_v nft delete table inet portsentry 2>/dev/null
    if ! daemon_start "$BACKEND" "$CONF" "${CONF_ARGS[@]}"; then
        bad "daemon not ready"; rm -f "$etc_up/resolv.conf"; return
    fi
    expect "resolver $P_NS in set never at start" set_has never "$P_NS"
    expect_not "$P_GW not protected before the route exists" set_has never "$P_GW"
    # Live: the route event must reach the daemon and the set within a second.
    in_v ip route add default via "$P_GW" dev eth-a
    expect "gateway $P_GW in set never within 1 s of the route (rtnetlink)" wait_for 1 set_has never "$P_GW"

    spoof_syn "$P_GW" 23 25 111
    spoof_syn "$P_NS" 23 25 111
    spoof_syn "$P_OTHER" 23 25
    expect "unprotected spoofed $P_OTHER is banned" wait_for 5 set_has banned "$P_OTHER"
    expect_not "gateway $P_GW never banned" set_has banned "$P_GW"
    expect_not "resolver $P_NS never banned" set_has banned "$P_NS"
    expect "log: protected: gateway" log_has "attackalert: protected: gateway: host [^ ]+/${P_GW//./\\.} "
    expect "log: protected: resolver" log_has "attackalert: protected: resolver: host [^ ]+/${P_NS//./\\.} "
    expect_eq "protected line logged once per source (3 probes from the gateway)" \
        "$(grep -c "protected: gateway: host [^ ]*/$P_GW " "$DAEMON_LOG")" 1
    local ctl=(ip netns exec "$NS_V" "$BIN" -c "$CONF" "${CONF_ARGS[@]}")
    out=$(timeout 10 "${ctl[@]}" why "$P_GW" 2>&1)
    expect "why $P_GW says 'protected: gateway' (got: ${out//$'\n'/ | })" grep -qF "$P_GW: protected: gateway" <<<"$out"
    out=$(timeout 10 "${ctl[@]}" why "$P_NS" 2>&1)
    expect "why $P_NS says 'protected: resolver' (got: ${out//$'\n'/ | })" grep -qF "$P_NS: protected: resolver" <<<"$out"
    out=$(timeout 10 "${ctl[@]}" ban "$P_GW" 2>&1)
    expect "ban $P_GW is refused with the reason (got: ${out//$'\n'/ | })" grep -qF "protected: gateway" <<<"$out"
    expect_not "refused ban left no element" set_has banned "$P_GW"
    # A login (utmp) protects its remote address within a second.
    if utmp_login 7 "$P_SESS"; then
        expect "session $P_SESS in set never within 1 s of the login (inotify on utmp)" \
            wait_for 1 set_has never "$P_SESS"
        spoof_syn "$P_SESS" 23 25
        sleep 0.5
        expect_not "session $P_SESS never banned" set_has banned "$P_SESS"
        out=$(timeout 10 "${ctl[@]}" why "$P_SESS" 2>&1)
        expect "why $P_SESS says 'protected: logged-in session' (got: ${out//$'\n'/ | })" \
            grep -qF "$P_SESS: protected: logged-in session" <<<"$out"
    else
        bad "could not write a utmp record in the daemon's mount namespace"
    fi
    # Route removed: protection follows.
    in_v ip route del default via "$P_GW" dev eth-a
    expect "gateway leaves set never within 1 s of the route removal" \
        wait_for 1 sh -c "! ip netns exec '$NS_V' nft list set inet portsentry never | grep -qF '$P_GW'"
    daemon_stop TERM
    # Later daemons of this run see the host's /etc and /run again.
    rm -f "$etc_up/resolv.conf" "$RUN_TMP/ovl/run/up/utmp"
}
