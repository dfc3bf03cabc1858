#!/bin/bash
# shellcheck disable=SC2317,SC2154,SC2016  # scenarios run via scenario_run; NM_* set by eval; eval'd checks
# The fleet (issue 14, item 6) end to end: two portsentry-nfq hosts sharing
# bans through CrowdSec Local APIs, all in namespaces of ours, one L2 switch:
#
#   LAPI ns   192.0.2.1  LAPI "sq" (SQLite, http :8080), later "tls" (https :8443)
#             192.0.2.2 / 192.0.2.3  LAPIs "pg1" / "pg2" on one PostgreSQL (socket)
#   host A    192.0.2.11, 203.0.113.11   portsentry-nfq (tcp advanced), http :8081
#   host B    192.0.2.12, 203.0.113.12   portsentry-nfq (tcp advanced), http :8082,
#             default route via 203.0.113.254 (inside B only: B's "gateway")
#   attacker  198.51.100.2 .. .77 (on-link routes both ways, no default route)
#
# Scenarios (each a PASS/FAIL line; every check inside prints ok/FAIL):
#   --check      password_file/bouncer_key_file mode 0644 refused naming the
#                file; a bad lapi_url refused with FILE:LINE
#   scan         nmap -sS of A: banned on A, in B's @fleet within 2 s, B drops
#                the scanner and not another attacker address; why/list/unban on B
#   cscli        decisions add --ip: dropped by A and B (and an IPv6 one in
#                @fleet6); delete: gone from both within 3 s
#   protected    B's own address, B's gateway, 127.0.0.1, a range over B's
#                address, a captcha: never in B's @fleet; skipped_total counts them
#   metrics      pushed (A, moved by the scan), pulled/skipped/lag/active_bans/
#                bans_total{origin=fleet} (B)
#   range        a /24 and an address inside it coexist; deleting the range
#                leaves the address dropped
#   lapi down    local bans go on; "unreachable" logged once; "is back" once;
#                the ban B made meanwhile reaches A's @fleet
#   restart      B restarted while the LAPI is down keeps its @fleet entries
#   https        private CA, ca_file: a cscli decision reaches B; B's push lands
#   pg fail-over two LAPIs on one PostgreSQL: A pushes to pg1, B pulls from
#                [pg2, pg1]; pg2 killed: "using LAPI pg1", a new scan of A
#                still reaches B
# Exit 0 only if every check passed; 77 if not root; 1 otherwise. Every
# namespace and process goes away on every exit (KEEP_TMP=1 keeps the files).
# Usage: tests/fleet/fleet.sh [BINARY]   FLEET_WITHIN=2 (s, scan -> B's @fleet)
set -u
[ "$(id -u)" -eq 0 ] || { echo "fleet.sh: needs root (network namespaces, nft); skipping" >&2; exit 77; }
FLEET_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$FLEET_DIR/../integration/lib.sh"
# shellcheck source=tests/fleet/lapi.sh
. "$FLEET_DIR/lapi.sh"
lab_traps
LAB_CLEANUP_HOOKS+=(fl_cleanup)

BIN=$(realpath "${1:-$SRC_ROOT/build/portsentry-nfq}")
CUR_TAG=fleet
RESULTS=$RUN_TMP/results
: >"$RESULTS"
T_START=$(date +%s)
for tool in nft nmap curl jq openssl crowdsec cscli "$FL_PG_BIN/initdb" unshare "$PY"; do
    command -v "$tool" >/dev/null || { say "fleet.sh: missing $tool (scripts/install-deps)"; exit 1; }
done
[ -x "$BIN" ] || { say "fleet.sh: no binary $BIN"; exit 1; }

FLEET_WITHIN=${FLEET_WITHIN:-2}   # A's ban seen -> in B's @fleet (poll_interval 1s)
MPORT=9470
WATCH='tcp: {mode: advanced, advanced_ports: 1024, advanced_exclude: [], block: 1}'

# Addresses (documentation ranges only).
L_IP=192.0.2.1 PG1_IP=192.0.2.2 PG2_IP=192.0.2.3
B_GW=203.0.113.254                   # B's default-route next hop (nobody there)
X_IP=198.51.100.2                    # the attacker's primary address
X_SCAN=198.51.100.10 X_OK=198.51.100.11       # scan: the scanner, a bystander
X_CS=198.51.100.50 X6_CS=2001:db8:9::7        # cscli decisions
X_CAPTCHA=198.51.100.60 X_CTRL=198.51.100.61  # protected: captcha, control ban
X_IN=198.51.100.77 RANGE=198.51.100.0/24      # range: address inside the range
X_DOWN_B=198.51.100.20 X_DOWN_A=198.51.100.21 # lapi down: scanners of B and A
X_TLS=198.51.100.70 X_TLS_SCAN=198.51.100.71  # https
X_PG1=198.51.100.30 X_PG2=198.51.100.31       # pg fail-over
X_ADDRS="$X_SCAN $X_OK $X_CS $X_CAPTCHA $X_CTRL $X_IN $X_DOWN_B $X_DOWN_A $X_TLS $X_TLS_SCAN $X_PG1 $X_PG2"

NS_SW=ps-fl-s-$SUFFIX NS_L=ps-fl-l-$SUFFIX NS_X=ps-fl-x-$SUFFIX
declare -A HOST_NS HOST_IP HOST_MG HOST_SVC HOST_DIR HOST_CONF HOST_PID HOST_LOG HOST_PW HOST_KEY
HOST_NS=([A]=ps-fl-a-$SUFFIX [B]=ps-fl-b-$SUFFIX)
HOST_IP=([A]=203.0.113.11 [B]=203.0.113.12)   # facing the attacker
HOST_MG=([A]=192.0.2.11 [B]=192.0.2.12)       # facing the LAPIs; metrics here
HOST_SVC=([A]=8081 [B]=8082)                  # a listening service (unwatched port)
HOST_DIR=([A]=$RUN_TMP/host-a [B]=$RUN_TMP/host-b)
HOST_CONF=([A]=$RUN_TMP/host-a/portsentry.yaml [B]=$RUN_TMP/host-b/portsentry.yaml)
# lib.sh's helpers act on NS_V (the "victim"; `on H` points it at a host), NS_A
# (the attacker) and NS_F; lab_down removes those three on exit, fl_cleanup the rest.
NS_V=${HOST_NS[B]} NS_A=$NS_X NS_F=${HOST_NS[A]}

die() {
    say "fleet.sh: setup failed: $*"
    SUMMARY+=("$(printf 'FAIL  %-22s %s' "$CUR_TAG" "setup: $*")")
    printf '%s\n' "${SUMMARY[@]}"
    exit 1
}

# on H CMD...: runs CMD (a lib.sh helper, e.g. set_has, ctl, scrape) with
# NS_V = host H's namespace.
on() { local h=$1; shift; NS_V=${HOST_NS[$h]} "$@"; }

# ------------------------------------------------------------- daemons ------

# fleet_conf DIR LISTEN URLS MACHINE PW_FILE KEY_FILE [CA_FILE]: a host's
# config (URLS is YAML: "\"url\"" or "[\"url1\", \"url2\"]").
fleet_conf() {
    local dir=$1 listen=$2 urls=$3 machine=$4 pw=$5 key=$6 cafile=${7:-}
    local block=('crowdsec:' "  lapi_url: $urls" "  machine_id: \"$machine\"" "  password_file: \"$pw\""
        "  bouncer_key_file: \"$key\"" '  poll_interval: 1s')
    [ -z "$cafile" ] || block+=("  ca_file: \"$cafile\"")
    write_yaml_config "$dir" "$WATCH" 'udp: {mode: off}' 'kill_route: nft-set' 'ban_time: 1h' \
        "metrics: {listen: \"$listen\"}" "${block[@]}"
}
# host_conf H LAPI [LAPI2 ...]: host H's config against these LAPIs (in
# fail-over order) with H's credentials (HOST_PW/HOST_KEY) and the first one's CA.
host_conf() {
    local h=$1 urls="" n; shift
    for n in "$@"; do urls+="${urls:+, }\"${LAPI_URL[$n]}\""; done
    [ $# -gt 1 ] && urls="[$urls]"
    fleet_conf "${HOST_DIR[$h]}" "${HOST_MG[$h]}:$MPORT" "$urls" "host-${h,,}" \
        "${HOST_PW[$h]}" "${HOST_KEY[$h]}" "${LAPI_CA[$1]}"
}
# host_creds H LAPI: a watcher and a bouncer key for host H made with LAPI's cscli.
host_creds() {
    HOST_PW[$1]=$(lapi_add_watcher "$2" "host-${1,,}") &&
    HOST_KEY[$1]=$(lapi_add_bouncer "$2" "host-${1,,}")
}
# host_start H / host_stop H: the daemon of host H in H's namespace, with its
# own overlay (etc, var-lib, run: its own hosts.deny) beside its own state
# file and control socket (write_yaml_config).
host_start() {
    local h=$1
    DAEMON_OVL=$RUN_TMP/ovl-$h on "$h" daemon_start auto "${HOST_CONF[$h]}" || return 1
    HOST_PID[$h]=$DAEMON_PID HOST_LOG[$h]=$DAEMON_LOG
}
host_stop() {
    DAEMON_PID=${HOST_PID[$1]:-}
    daemon_stop TERM
    HOST_PID[$1]=""
}

hctl() { local h=$1; shift; on "$h" ctl "${HOST_CONF[$h]}" "$@" 2>&1; }
# hlog_count H TEXT: lines of H's current daemon log containing TEXT.
hlog_count() { local n; n=$(grep -cF -- "$2" "${HOST_LOG[$1]}" 2>/dev/null); echo "${n:-0}"; }
hlog_has() { [ "$(hlog_count "$1" "$2")" -ge 1 ]; }
hmetrics() { on "$1" scrape "http://${HOST_MG[$1]}:$MPORT/metrics"; }
# fleet_covers ADDR: some element of @fleet (an address or a range) covers ADDR.
fleet_covers() { in_v nft get element inet portsentry fleet "{ $1 }" >/dev/null 2>&1; }
gone_from() { ! set_has "$1" "$2"; }
# max_of NAME TEXT: the largest value among NAME's series ("" if none).
max_of() {
    awk -v n="$1" '(index($1, n "{") == 1 || $1 == n) && (m == "" || $2 + 0 > m + 0) { m = $2 }
        END { printf "%s", m }' <<<"$2"
}
# metric_ge H NAME MIN: the sum of NAME's series on H's endpoint is >= MIN.
metric_ge() { [ "$(sum_of "$2" "$(hmetrics "$1")")" -ge "$3" ]; }

cs() {  # cs LAPI ARGS...: cscli decisions ..., quiet; its output on failure
    local out
    out=$(lapi_cscli "$@" 2>&1) || { say "    cscli $*: $out"; return 1; }
}
# scan NAME SRC H: nmap -sS of host H's watched ports from attacker address SRC.
scan() {
    nmap_run "$1" "$NS_X" 1-100 -sS -T4 -p1-100 -e eth0 -S "$2" "${HOST_IP[$3]}"
}
# poke SRC H: one SYN from SRC to a watched closed port of H (advanced mode
# bans at once).
poke() { probe_from "$1" "${HOST_IP[$2]}" 7; }
svc() { tcp_answer "$1" "${HOST_IP[$2]}" "${HOST_SVC[$2]}"; }   # svc SRC H

# ----------------------------------------------------------------- lab ------

lab_fleet_up() {
    local h a
    fl_ns_add "$NS_SW" && fl_ns_add "$NS_L" && fl_ns_add "$NS_X" &&
    fl_ns_add "${HOST_NS[A]}" && fl_ns_add "${HOST_NS[B]}" && fl_switch "$NS_SW" || return 1
    fl_plug "$NS_SW" "$NS_L" eth0 "$L_IP/24" "$PG1_IP/24" "$PG2_IP/24" || return 1
    for h in A B; do
        fl_plug "$NS_SW" "${HOST_NS[$h]}" eth0 "${HOST_MG[$h]}/24" "${HOST_IP[$h]}/24" &&
        ip -n "${HOST_NS[$h]}" route add 198.51.100.0/24 dev eth0 || return 1
    done
    # B's gateway: a next hop on B's own subnet, in B's namespace only (the
    # lab has no way out; nobody answers there).
    ip -n "${HOST_NS[B]}" route add default via "$B_GW" dev eth0 || return 1
    fl_plug "$NS_SW" "$NS_X" eth0 "$X_IP/24" &&
    ip -n "$NS_X" route add 203.0.113.0/24 dev eth0 || return 1
    for a in $X_ADDRS; do fl_addr "$NS_X" eth0 "$a/24" || return 1; done
    mkdir -p "$RUN_TMP/www" && echo "portsentry-nfq fleet lab" >"$RUN_TMP/www/index.html"
    on A start_service "${HOST_SVC[A]}" && on B start_service "${HOST_SVC[B]}"
}

# ----------------------------------------------------------- scenarios ------

s_check() {
    local dir=$RUN_TMP/check conf=$RUN_TMP/check/portsentry.yaml out rc line
    local pw=$RUN_TMP/check/pw-0644 key=$RUN_TMP/check/key-0640
    mkdir -p "$dir"
    cp "${HOST_PW[A]}" "$pw" && chmod 644 "$pw"
    cp "${HOST_KEY[A]}" "$key" && chmod 640 "$key"
    fleet_conf "$dir" "192.0.2.11:$MPORT" "\"${LAPI_URL[sq]}\"" host-a "${HOST_PW[A]}" "${HOST_KEY[A]}"
    out=$(on A in_v "$BIN" -c "$conf" --check 2>&1); rc=$?
    expect_eq "--check accepts the fleet config (0600 secrets)" "$rc" 0
    [ "$rc" -eq 0 ] || say "$out"

    fleet_conf "$dir" "192.0.2.11:$MPORT" "\"${LAPI_URL[sq]}\"" host-a "$pw" "${HOST_KEY[A]}"
    out=$(on A in_v "$BIN" -c "$conf" --check 2>&1); rc=$?
    expect_eq "--check: password_file mode 0644 -> exit 1" "$rc" 1
    expect "  ... the message names $pw (got: ${out//$'\n'/ | })" grep -qF "$pw" <<<"$out"

    fleet_conf "$dir" "192.0.2.11:$MPORT" "\"${LAPI_URL[sq]}\"" host-a "${HOST_PW[A]}" "$key"
    out=$(on A in_v "$BIN" -c "$conf" --check 2>&1); rc=$?
    expect_eq "--check: bouncer_key_file mode 0640 -> exit 1" "$rc" 1
    expect "  ... the message names $key (got: ${out//$'\n'/ | })" grep -qF "$key" <<<"$out"

    local bad
    for bad in '"192.0.2.1:8080"' '["http://192.0.2.1:8080", "ftp://192.0.2.1:8080"]'; do
        fleet_conf "$dir" "192.0.2.11:$MPORT" "$bad" host-a "${HOST_PW[A]}" "${HOST_KEY[A]}"
        line=$(grep -n '^  lapi_url:' "$conf" | cut -d: -f1)
        out=$(on A in_v "$BIN" -c "$conf" --check 2>&1); rc=$?
        expect_eq "--check: lapi_url $bad -> exit 1" "$rc" 1
        expect "  ... names $conf:$line and lapi_url (got: ${out//$'\n'/ | })" \
            eval 'grep -qF "$conf:$line:" <<<"$out" && grep -qF lapi_url <<<"$out"'
    done
}

A_M0=""   # A's endpoint before the scan (for metrics)
s_scan() {
    local out np rc
    A_M0=$(hmetrics A)
    expect "precondition: $X_OK reaches B's service" test "$(svc "$X_OK" B)" = open
    # nmap in the background: A's ban is seen while nmap still runs, so the
    # fleet delay is measured from the ban, not from nmap's end.
    scan scan "$X_SCAN" A &
    np=$!
    if within 5 on A set_has banned "$X_SCAN"; then
        ok "A bans the scanner $X_SCAN (seen ${WITHIN_MS} ms after nmap started)"
        if within "$FLEET_WITHIN" on B set_has fleet "$X_SCAN"; then
            ok "$X_SCAN in B's @fleet ${WITHIN_MS} ms after A's ban was seen (<= ${FLEET_WITHIN} s)"
        else
            bad "$X_SCAN not in B's @fleet within ${FLEET_WITHIN} s of A's ban"
            expect "  ... but within 5 s more" within 5 on B set_has fleet "$X_SCAN"
            # Which side lost it: A's push, or B's delta stream (docs/FLEET-LAB.md,
            # "deltas can be lost": a poll overlapping the push's transaction)?
            say "    (the LAPI has: $(lapi_cscli sq decisions list -o json 2>/dev/null |
                jq -c --arg v "$X_SCAN" '[.[]?.decisions[]? | select(.value == $v) | {origin, type}]');" \
                "B's pulled_total $(sum_of portsentry_fleet_pulled_total "$(hmetrics B)"))"
        fi
    else
        bad "A did not ban the scanner $X_SCAN"
    fi
    wait "$np"
    expect_not "$X_SCAN is not in B's @banned (B saw no probe)" on B set_has banned "$X_SCAN"
    expect_eq "B drops $X_SCAN: connect to B:${HOST_SVC[B]}" "$(svc "$X_SCAN" B)" timeout
    expect_eq "another attacker address $X_OK still connects to B" "$(svc "$X_OK" B)" open
    out=$(hctl B why "$X_SCAN")
    expect "B: why $X_SCAN says fleet, origin portsentry (got: ${out//$'\n'/ | })" \
        eval 'grep -qi fleet <<<"$out" && grep -qw portsentry <<<"$out"'
    out=$(hctl B list)
    expect "B: list marks $X_SCAN as fleet" eval 'grep -F "$X_SCAN" <<<"$out" | grep -qi fleet'
    out=$(hctl B unban "$X_SCAN"); rc=$?
    expect "B: unban $X_SCAN refused, says fleet and cscli decisions delete (got: ${out//$'\n'/ | })" \
        eval 'grep -qi fleet <<<"$out" && grep -qF "cscli decisions delete" <<<"$out"'
    expect_eq "  ... exit status 1" "$rc" 1
    expect_not "  ... and B does not log it as done (\"$X_SCAN unbanned by admin\")" \
        hlog_has B "$X_SCAN unbanned by admin"
    expect "  ... $X_SCAN still in B's @fleet" on B set_has fleet "$X_SCAN"
}

s_metrics() {
    local a b lag p0
    p0=$(sum_of portsentry_fleet_pushed_total "$A_M0")
    expect "A: portsentry_fleet_pushed_total moved after the scan (was $p0)" \
        within 3 metric_ge A portsentry_fleet_pushed_total $((p0 + 1))
    expect "B: portsentry_fleet_pulled_total > 0" within 3 metric_ge B portsentry_fleet_pulled_total 1
    expect "B: portsentry_bans_total{origin=\"fleet\"} >= 1" \
        within 3 eval '[ "$(value "$(hmetrics B)" "portsentry_bans_total{origin=\"fleet\"}")" -ge 1 ]'
    expect "B: portsentry_active_bans{set=\"fleet\"} >= 1" \
        within 3 eval '[ "$(value "$(hmetrics B)" "portsentry_active_bans{set=\"fleet\"}")" -ge 1 ]'
    a=$(hmetrics A) b=$(hmetrics B)
    local n
    for n in portsentry_fleet_pushed_total portsentry_fleet_pulled_total portsentry_fleet_skipped_total \
        portsentry_fleet_errors_total portsentry_fleet_lag_seconds 'portsentry_active_bans{set="fleet6"}'; do
        expect "B serves $n" grep -qE "^${n//[\{\}\"]/.}[{ ]" <<<"$b"
    done
    lag=$(max_of portsentry_fleet_lag_seconds "$b")
    expect "B: portsentry_fleet_lag_seconds < 5 (${lag:-absent})" \
        awk -v l="$lag" 'BEGIN { exit !(l != "" && l + 0 < 5) }'
    expect "A serves portsentry_fleet_pushed_total" grep -q '^portsentry_fleet_pushed_total' <<<"$a"
}

s_cscli() {
    cs sq decisions add --ip "$X_CS" --duration 1h || bad "cscli decisions add --ip $X_CS"
    expect "$X_CS in A's @fleet" within 3 on A set_has fleet "$X_CS"
    expect "$X_CS in B's @fleet" within 3 on B set_has fleet "$X_CS"
    expect_eq "A drops $X_CS" "$(svc "$X_CS" A)" timeout
    expect_eq "B drops $X_CS" "$(svc "$X_CS" B)" timeout
    local out
    out=$(hctl A why "$X_CS")
    expect "A: why $X_CS says fleet, origin cscli (got: ${out//$'\n'/ | })" \
        eval 'grep -qi fleet <<<"$out" && grep -qw cscli <<<"$out"'
    cs sq decisions add --ip "$X6_CS" --duration 1h || bad "cscli decisions add --ip $X6_CS"
    expect "IPv6 $X6_CS in B's @fleet6" within 3 on B set_has fleet6 "$X6_CS"
    cs sq decisions delete --ip "$X_CS" || bad "cscli decisions delete --ip $X_CS"
    if within 3 eval 'on A gone_from fleet "$X_CS" && on B gone_from fleet "$X_CS"'; then
        ok "deleted: $X_CS gone from A's and B's @fleet in ${WITHIN_MS} ms"
    else
        bad "deleted: $X_CS still in A's or B's @fleet after 3 s"
    fi
    expect_eq "  ... A lets $X_CS in again" "$(svc "$X_CS" A)" open
    expect_eq "  ... B lets $X_CS in again" "$(svc "$X_CS" B)" open
    cs sq decisions delete --ip "$X6_CS" || bad "cscli decisions delete --ip $X6_CS"
    expect "IPv6 $X6_CS gone from B's @fleet6" within 3 on B gone_from fleet6 "$X6_CS"
}

s_protected() {
    local b0 b1 sk0 ty0 own_range=203.0.113.0/28 a
    expect "precondition: B protects its gateway $B_GW (@never)" on B set_has never "$B_GW"
    b0=$(hmetrics B)
    sk0=$(sum_of portsentry_fleet_skipped_total "$b0")
    ty0=$(value "$b0" 'portsentry_fleet_skipped_total{reason="type"}')
    cs sq decisions add --ip "${HOST_IP[B]}" --duration 1h || bad "cscli add B's own address"
    cs sq decisions add --ip "$B_GW" --duration 1h || bad "cscli add B's gateway"
    cs sq decisions add --ip 127.0.0.1 --duration 1h || bad "cscli add 127.0.0.1"
    cs sq decisions add --range "$own_range" --duration 1h || bad "cscli add range $own_range"
    cs sq decisions add --ip "$X_CAPTCHA" --type captcha --duration 1h || bad "cscli add captcha"
    # A plain ban added last: once B has it, B has seen the five before it.
    cs sq decisions add --ip "$X_CTRL" --duration 1h || bad "cscli add control ban"
    expect "control ban $X_CTRL in B's @fleet" within 4 on B set_has fleet "$X_CTRL"
    for a in "${HOST_IP[B]}" "$B_GW" 127.0.0.1 "$X_CAPTCHA"; do
        expect_not "$a not covered by B's @fleet" on B fleet_covers "$a"
    done
    expect_not "range $own_range (over B's address) not in B's @fleet" on B set_has fleet "$own_range"
    # Protection is per host: A owns neither B's address nor B's gateway.
    expect "A applies B's address ${HOST_IP[B]} (not A's own)" within 3 on A set_has fleet "${HOST_IP[B]}"
    expect "A applies B's gateway $B_GW (not A's gateway)" on A set_has fleet "$B_GW"
    if within 3 metric_ge B portsentry_fleet_skipped_total $((sk0 + 5)); then
        b1=$(hmetrics B)
        ok "portsentry_fleet_skipped_total +$(($(sum_of portsentry_fleet_skipped_total "$b1") - sk0)) ($(grep '^portsentry_fleet_skipped_total' <<<"$b1" | tr '\n' ' '))"
    else
        b1=$(hmetrics B)
        bad "portsentry_fleet_skipped_total moved by less than 5 (from $sk0: $(grep '^portsentry_fleet_skipped_total' <<<"$b1" | tr '\n' ' '))"
    fi
    expect_ge "skipped_total{reason=\"type\"} counts the captcha" \
        "$(value "$b1" 'portsentry_fleet_skipped_total{reason="type"}')" $((ty0 + 1))
    # A must not keep dropping B's address (the lab has no A <-> B traffic, but
    # later scenarios should meet a sane fleet).
    cs sq decisions delete --ip "${HOST_IP[B]}" && cs sq decisions delete --ip "$B_GW" ||
        bad "cscli decisions delete (B's address, B's gateway)"
}

s_range() {
    cs sq decisions add --range "$RANGE" --duration 1h || bad "cscli decisions add --range $RANGE"
    cs sq decisions add --ip "$X_IN" --duration 1h || bad "cscli decisions add --ip $X_IN"
    expect "range $RANGE in B's @fleet" within 3 on B set_has fleet "$RANGE"
    expect "$X_IN covered by B's @fleet" on B fleet_covers "$X_IN"
    expect_eq "B drops $X_OK (in the range)" "$(svc "$X_OK" B)" timeout
    local out
    out=$(lapi_cscli sq decisions list -o json 2>/dev/null | jq -r '[.[]?.decisions[]?.value] | join(" ")')
    expect "the LAPI holds both decisions ($out)" \
        eval '[[ " $out " == *" $RANGE "* && " $out " == *" $X_IN "* ]]'
    cs sq decisions delete --range "$RANGE" || bad "cscli decisions delete --range $RANGE"
    expect "range gone from B's @fleet" within 3 on B gone_from fleet "$RANGE"
    expect "$X_IN still in B's @fleet" on B set_has fleet "$X_IN"
    expect "$X_CTRL (an earlier ban inside the range) still in B's @fleet" on B set_has fleet "$X_CTRL"
    expect_eq "B still drops $X_IN" "$(svc "$X_IN" B)" timeout
    expect_eq "B lets $X_OK in again" "$(svc "$X_OK" B)" open
    out=$(hctl B why "$X_IN")
    expect "B: why $X_IN says fleet, origin cscli (got: ${out//$'\n'/ | })" \
        eval 'grep -qi fleet <<<"$out" && grep -qw cscli <<<"$out"'
}

s_lapi_down() {
    local url=${LAPI_URL[sq]} h
    local down="fleet: LAPI $url unreachable" back="fleet: LAPI $url is back"
    lapi_kill sq
    poke "$X_DOWN_B" B
    expect "LAPI down: B still bans its scanner $X_DOWN_B" within 3 on B set_has banned "$X_DOWN_B"
    poke "$X_DOWN_A" A
    expect "LAPI down: A still bans its scanner $X_DOWN_A" within 3 on A set_has banned "$X_DOWN_A"
    for h in A B; do
        expect "$h logs \"$down\"" within 5 hlog_has "$h" "$down"
    done
    expect "LAPI down: B keeps $X_CTRL in @fleet" on B set_has fleet "$X_CTRL"
    sleep 2   # a few more failed polls and pushes
    for h in A B; do expect_eq "$h: the unreachable line is logged once" "$(hlog_count "$h" "$down")" 1; done
    lapi_start sq || { bad "LAPI sq restarts"; return; }
    for h in A B; do
        expect "$h logs \"$back\"" within 5 hlog_has "$h" "$back"
    done
    expect "B's ban of $X_DOWN_B reaches A's @fleet" within 5 on A set_has fleet "$X_DOWN_B"
    expect "A's ban of $X_DOWN_A reaches B's @fleet" within 5 on B set_has fleet "$X_DOWN_A"
    for h in A B; do
        expect_eq "$h: \"is back\" logged once" "$(hlog_count "$h" "$back")" 1
        expect_eq "$h: still one unreachable line" "$(hlog_count "$h" "$down")" 1
    done
}

s_restart() {
    local a
    lapi_kill sq
    host_stop B
    expect_eq "B stops on SIGTERM (exit 0)" "$STOP_RC" 0
    host_start B || { bad "B restarts while the LAPI is down"; return; }
    # X_DOWN_A: pushed by A; X_CTRL, X_IN: cscli.
    for a in "$X_DOWN_A" "$X_CTRL" "$X_IN"; do
        expect "after the restart: $a in B's @fleet" on B set_has fleet "$a"
    done
    sleep 1.5   # failed polls must not clear it
    expect "  ... still there after failed polls" eval \
        'on B set_has fleet "$X_DOWN_A" && on B set_has fleet "$X_IN"'
    expect_eq "B drops $X_IN after the restart" "$(svc "$X_IN" B)" timeout
    lapi_start sq || { bad "LAPI sq restarts"; return; }
    expect "B resyncs once the LAPI is back (\"fleet: resync:\")" within 6 hlog_has B "fleet: resync:"
    expect "  ... the entries stay ($X_DOWN_A, $X_CTRL, $X_IN)" eval \
        'on B set_has fleet "$X_DOWN_A" && on B set_has fleet "$X_CTRL" && on B set_has fleet "$X_IN"'
    expect "  ... and B has A's scanner $X_SCAN" on B set_has fleet "$X_SCAN"
}

s_https() {
    ca_new lab && lapi_new tls "$NS_L" "$L_IP" 8443 --tls lab && host_creds B tls &&
        lapi_start tls || { bad "https LAPI tls"; return; }
    host_stop B
    host_conf B tls
    expect "B's config has ca_file" grep -qF "ca_file: \"${LAPI_CA[tls]}\"" "${HOST_CONF[B]}"
    host_start B || { bad "B starts against ${LAPI_URL[tls]}"; return; }
    cs tls decisions add --ip "$X_TLS" --duration 1h || bad "cscli (https) decisions add --ip $X_TLS"
    expect "https: $X_TLS in B's @fleet" within 4 on B set_has fleet "$X_TLS"
    poke "$X_TLS_SCAN" B
    expect "B bans $X_TLS_SCAN" within 3 on B set_has banned "$X_TLS_SCAN"
    expect "https: B's ban of $X_TLS_SCAN pushed (origin portsentry at the LAPI)" within 5 eval \
        'lapi_cscli tls decisions list -a -o json 2>/dev/null | jq -e --arg v "$X_TLS_SCAN" \
            "[.[]?.decisions[]? | select(.value == \$v and .origin == \"portsentry\")] | length > 0" >/dev/null'
    expect_eq "B's log has no unreachable line" "$(hlog_count B unreachable)" 0
}

s_pg() {
    local secret u1
    secret=$(fl_secret)
    pg_new fleet "$NS_L" &&
        lapi_new pg1 "$NS_L" "$PG1_IP" 8080 --pg fleet --secret "$secret" &&
        lapi_new pg2 "$NS_L" "$PG2_IP" 8080 --pg fleet --secret "$secret" &&
        host_creds A pg1 && host_creds B pg2 && lapi_start pg1 && lapi_start pg2 ||
        { bad "two LAPIs on one PostgreSQL"; return; }
    u1=${LAPI_URL[pg1]}
    host_stop A; host_stop B
    host_conf A pg1
    host_conf B pg2 pg1
    host_start A && host_start B || { bad "A and B start against pg1 / [pg2, pg1]"; return; }
    scan pg-1 "$X_PG1" A
    expect "A bans $X_PG1" within 3 on A set_has banned "$X_PG1"
    expect "pushed to pg1, pulled from pg2: $X_PG1 in B's @fleet" within 4 on B set_has fleet "$X_PG1"
    lapi_kill pg2
    scan pg-2 "$X_PG2" A
    expect "A bans $X_PG2" within 3 on A set_has banned "$X_PG2"
    expect "B logs \"fleet: using LAPI $u1\"" within 10 hlog_has B "fleet: using LAPI $u1"
    expect "pg2 down: $X_PG2 reaches B's @fleet through pg1" within 10 on B set_has fleet "$X_PG2"
    expect "  ... and B keeps $X_PG1" on B set_has fleet "$X_PG1"
}

# ---------------------------------------------------------------- main ------

lab_fleet_up || die "namespaces, switch, addresses, services"
for a in "${HOST_IP[A]}" "${HOST_IP[B]}"; do
    [ "$(tcp_answer "$X_IP" "$a" 7)" = refused ] || die "attacker does not reach $a"
done
lapi_new sq "$NS_L" "$L_IP" 8080 && host_creds A sq && host_creds B sq || die "LAPI sq and credentials"
lapi_start sq || die "LAPI sq starts"
for h in A B; do
    [ "$(stat -c %a "${HOST_PW[$h]}" "${HOST_KEY[$h]}" | sort -u)" = 600 ] || die "host $h's secret files are not 0600"
    [ "$(fl_curl "${HOST_NS[$h]}" sq /v1/decisions/stream | tail -1)" = 403 ] || die "host $h does not reach ${LAPI_URL[sq]}"
done
say "lab up in $(($(date +%s) - T_START)) s; LAPI sq started in ${LAPI_START_MS[sq]} ms"

scenario_run "--check: secrets, lapi_url" s_check
host_conf A sq && host_conf B sq || die "configs"
host_start A || die "host A's daemon"
host_start B || die "host B's daemon"
scenario_run "scan of A -> B's @fleet" s_scan
scenario_run "cscli add/delete" s_cscli
scenario_run "protected never applied" s_protected
scenario_run "metrics" s_metrics
scenario_run "range + address inside" s_range
scenario_run "LAPI down and back" s_lapi_down
scenario_run "restart B, LAPI down" s_restart
scenario_run "https, private CA" s_https
scenario_run "2 LAPIs, 1 PostgreSQL" s_pg

printf '%s\n' "${SUMMARY[@]}"
say "fleet.sh: $(($(date +%s) - T_START)) s"
exit "$FAILED"
