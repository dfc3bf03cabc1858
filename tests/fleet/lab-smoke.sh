#!/bin/bash
# Self-check of the fleet lab (tests/fleet/lapi.sh) with curl only, no
# portsentry: every LAPI behaviour the fleet code will rely on, in namespaces.
#   S  192.0.2.1     LAPI "sq" (SQLite, http :8080), LAPI "tls" (SQLite, https :8443)
#   C  192.0.2.2 / 198.51.100.2 / 203.0.113.2   the client (watcher + bouncers)
#   P1 198.51.100.1  PostgreSQL (tcp :5432 + unix socket), LAPI "pg1" (:8080, over tcp)
#   P2 203.0.113.1   LAPI "pg2" (:8080, same database over the unix socket)
# plus the stock crowdsec-firewall-bouncer in C (own tables, then set-only).
# Prints PASS/FAIL per check and timings; exits 1 on any failure.
# Usage: sudo tests/fleet/lab-smoke.sh   (FL_KEEP_TMP=1 keeps the temp dir)
set -u
[ "$(id -u)" -eq 0 ] || { echo "lab-smoke: must run as root" >&2; exit 1; }
for c in crowdsec cscli curl jq openssl; do
    command -v "$c" >/dev/null || { echo "lab-smoke: $c missing (scripts/install-deps)" >&2; exit 1; }
done
# shellcheck source=tests/fleet/lapi.sh
. "$(dirname "$0")/lapi.sh"
fl_traps

FAILS=0 CHECKS=0
TIMINGS=()
pass() { CHECKS=$((CHECKS + 1)); printf 'PASS  %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL  %s\n' "$*"; }
check() {  # check NAME CMD...: PASS if CMD succeeds
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
timing() { TIMINGS+=("$(printf '%-46s %s' "$1" "$2")"); }
die() { fail "$*"; summary; exit 1; }
summary() {
    echo "--- timings"
    printf '  %s\n' "${TIMINGS[@]}"
    echo "--- $((CHECKS - FAILS))/$CHECKS checks passed"
}

# json_has JSON LIST SCOPE VALUE TYPE: LIST ("new"/"deleted") has that entry.
json_has() {
    printf '%s' "$1" | jq -e --arg l "$2" --arg s "$3" --arg v "$4" --arg t "$5" \
        '(.[$l] // []) | any(.scope == $s and .value == $v and .type == $t)' >/dev/null
}

# stream_until NS LAPI KEYFILE LIST SCOPE VALUE TYPE [TIMEOUT_MS]: polls the
# delta stream (every ~10 ms plus curl's own time) until the entry shows up in
# LIST. Sets SEEN_BODY (the answer that had it) and SEEN_MS (from the call to
# the answer), and SEEN_POLLS. Every answer in between is consumed: callers
# poll one key from one place only.
# jqe JSON FILTER [jq args...]: FILTER is true on JSON.
jqe() { local j=$1; shift; printf '%s' "$j" | jq -e "$@" >/dev/null; }

SEEN_BODY="" SEEN_MS=0 SEEN_POLLS=0
stream_until() {
    local ns=$1 lapi=$2 key=$3 list=$4 scope=$5 value=$6 type=$7 tmo=${8:-5000} t0 body
    t0=$(fl_ms) SEEN_POLLS=0
    while [ $(($(fl_ms) - t0)) -lt "$tmo" ]; do
        SEEN_POLLS=$((SEEN_POLLS + 1))
        if body=$(fl_stream "$ns" "$lapi" "$key") && json_has "$body" "$list" "$scope" "$value" "$type"; then
            SEEN_BODY=$body SEEN_MS=$(($(fl_ms) - t0))
            return 0
        fi
        sleep 0.01
    done
    return 1
}

S=fl-s-$FL_SUFFIX C=fl-c-$FL_SUFFIX P1=fl-p1-$FL_SUFFIX P2=fl-p2-$FL_SUFFIX
T0=$(fl_ms)
fl_ns_add "$S" && fl_ns_add "$C" && fl_ns_add "$P1" && fl_ns_add "$P2" &&
fl_link "$C" eth-s 192.0.2.2/24 "$S" eth0 192.0.2.1/24 &&
fl_link "$C" eth-p1 198.51.100.2/24 "$P1" eth0 198.51.100.1/24 &&
fl_link "$C" eth-p2 203.0.113.2/24 "$P2" eth0 203.0.113.1/24 || die "namespaces and links"
pass "lab namespaces ($S $C $P1 $P2), no default route"

# ------------------------------------------------------------- SQLite -------
echo "--- SQLite LAPI in a namespace"
lapi_new sq "$S" 192.0.2.1 8080 || die "lapi_new sq"
W_PW=$(lapi_add_watcher sq web-1) && K_B=$(lapi_add_bouncer sq host-b) &&
K_B2=$(lapi_add_bouncer sq host-c) || die "watcher and bouncer keys"
check "password and key files are mode 0600" \
    test "$(stat -c %a "$W_PW" "$K_B" "$K_B2" | sort -u)" = 600
lapi_start sq || die "LAPI sq starts"
pass "LAPI sq answers at ${LAPI_URL[sq]} (from its namespace)"
timing "LAPI start (SQLite, exec -> first HTTP answer)" "${LAPI_START_MS[sq]} ms"
check "client namespace reaches LAPI sq (403 without a key)" \
    test "$(fl_curl "$C" sq /v1/decisions/stream | tail -1)" = 403

TOK=$(fl_login "$C" sq web-1 "$W_PW") || die "watcher login"
check "watcher login returns a JWT" test "$(printf '%s' "$TOK" | tr -cd . | wc -c)" = 2

t=$(fl_ms)
R=$(fl_push "$C" sq "$TOK" \
    "$(fl_alert_json Ip 198.51.100.7)" "$(fl_alert_json Range 198.51.100.0/24)" \
    "$(fl_alert_json Ip 2001:db8:1::7)" "$(fl_alert_json Range 2001:db8:1::/64)")
timing "POST /v1/alerts, 4 alerts, from bash (jq+curl)" "$(($(fl_ms) - t)) ms"
check "POST /v1/alerts (Ip, Range, IPv6 Ip, IPv6 Range) -> 201 and 4 ids: $R" \
    eval '[ "${R%% *}" = 201 ] && [ "$(printf "%s" "${R#* }" | jq length)" = 4 ]'

BODY=$(fl_stream "$C" sq "$K_B" startup) || BODY='{}'
echo "$BODY" >"$FL_TMP/startup.json"
for e in "Ip 198.51.100.7" "Range 198.51.100.0/24" "Ip 2001:db8:1::7" "Range 2001:db8:1::/64"; do
    # shellcheck disable=SC2086
    check "stream?startup=true has ban $e" json_has "$BODY" new $e ban
done
check "stream entries carry origin portsentry, scenario, id, Go duration" jqe "$BODY" \
    '[.new[] | select(.origin == "portsentry" and .scenario == "portsentry/portscan" and
      (.id | type) == "number" and (.duration | test("^3h59m[0-9.]+s$")))] | length == 4'
check "next delta is empty ({\"deleted\":null,\"new\":null})" \
    test "$(fl_stream "$C" sq "$K_B" | jq -c .)" = '{"deleted":null,"new":null}'

# measure_push IV PUSH_LAPI TOKEN ALERT_JSON WATCH_LAPI KEY SCOPE VALUE LABEL:
# stream-watch.py in C polls WATCH_LAPI's stream every IV ms and pushes the
# alert to PUSH_LAPI itself (one process, one clock); records the push's
# round trip and push sent -> seen in the stream. SEEN_BODY: the entry as a
# one-entry "new" list. Fails if it never shows.
measure_push() {
    local iv=$1 pl=$2 tok=$3 alert=$4 wl=$5 key=$6 scope=$7 value=$8 label=$9
    fl_watch_start "$C" "$wl" "$key" new "$scope" "$value" ban "$iv" "$pl" "$tok" "$alert" || return 1
    fl_watch_wait || return 1
    [ "$FL_WATCH_PUSH_STATUS" = 201 ] || { fl_say "push: HTTP $FL_WATCH_PUSH_STATUS"; return 1; }
    timing "push round trip ($label)" "$((FL_WATCH_PUSH_DONE - FL_WATCH_PUSH_SENT)) ms"
    timing "push sent -> in stream ($label, poll ${iv} ms)" "$((FL_WATCH_SEEN_MS - FL_WATCH_PUSH_SENT)) ms ($FL_WATCH_POLLS polls)"
    SEEN_BODY="{\"new\":[$FL_WATCH_ENTRY]}"
}

check "a pushed ban appears in the delta stream (100 ms polling)" \
    measure_push 100 sq "$TOK" "$(fl_alert_json Ip 198.51.100.8 90s)" sq "$K_B" Ip 198.51.100.8 SQLite
check "duration 90s arrives as a Go duration < 90s" jqe "$SEEN_BODY" \
    '.new[0].duration | test("^1m[0-2][0-9](\\.[0-9]+)?s$")'
check "a second key still gets its own copy (cursor per key)" \
    stream_until "$C" sq "$K_B2" new Ip 198.51.100.8 ban 2000
t=$(fl_ms); for _ in 1 2 3 4 5; do fl_stream "$C" sq "$K_B2" >/dev/null; done
timing "one delta poll from bash (ip netns exec + curl)" "$((($(fl_ms) - t) / 5)) ms"

# cscli decisions go through the LAPI over HTTP, as machine cscli-sq.
lapi_cscli sq decisions add --ip 203.0.113.50 --duration 1h >/dev/null 2>&1 ||
    fail "cscli decisions add --ip"
check "cscli decisions add --ip -> new (origin cscli)" \
    stream_until "$C" sq "$K_B" new Ip 203.0.113.50 ban
echo "$SEEN_BODY" >"$FL_TMP/cscli-add.json"
check "  ... origin cscli, scenario \"manual 'ban' from 'cscli-sq'\"" jqe "$SEEN_BODY" \
    '.new[0] | .origin == "cscli" and .scenario == "manual \u0027ban\u0027 from \u0027cscli-sq\u0027"'
lapi_cscli sq decisions delete --ip 203.0.113.50 >/dev/null 2>&1 || fail "cscli decisions delete --ip"
if stream_until "$C" sq "$K_B" deleted Ip 203.0.113.50 ban; then
    pass "cscli decisions delete --ip -> deleted"
    timing "cscli delete returned -> in deleted (SQLite)" "$SEEN_MS ms, $SEEN_POLLS poll(s)"
else fail "cscli decisions delete --ip -> deleted"; fi
echo "$SEEN_BODY" >"$FL_TMP/cscli-delete.json"
check "  ... deleted entry has a negative duration" jqe "$SEEN_BODY" '.deleted[0].duration | startswith("-")'

lapi_cscli sq decisions add --ip 203.0.113.51 --type captcha --duration 90s >/dev/null 2>&1 ||
    fail "cscli decisions add --type captcha"
check "captcha decision -> new with type captcha" \
    stream_until "$C" sq "$K_B" new Ip 203.0.113.51 captcha
echo "$SEEN_BODY" >"$FL_TMP/captcha.json"
lapi_cscli sq decisions add --range 203.0.113.0/28 --duration 30m >/dev/null 2>&1 ||
    fail "cscli decisions add --range"
check "cscli decisions add --range -> new, scope Range" \
    stream_until "$C" sq "$K_B" new Range 203.0.113.0/28 ban

# A restart without CS_LAPI_SECRET draws a new JWT secret.
t=$(fl_ms); lapi_stop sq
timing "LAPI stop (SIGTERM -> exit)" "$(($(fl_ms) - t)) ms, status $LAPI_STOP_RC"
lapi_start sq || die "LAPI sq restarts"
timing "LAPI restart (SQLite, existing DB)" "${LAPI_START_MS[sq]} ms"
OUT=$(fl_curl "$C" sq /v1/alerts -H "Authorization: Bearer $TOK")
check "old JWT after restart -> 401" test "${OUT##*$'\n'}" = 401
echo "${OUT%$'\n'*}" >"$FL_TMP/401.json"
check "  ... body {\"code\":401,\"message\":\"signature is invalid\"}" \
    test "${OUT%$'\n'*}" = '{"code":401,"message":"signature is invalid"}'
TOK2=$(fl_login "$C" sq web-1 "$W_PW") || fail "re-login after restart"
R=$(fl_push "$C" sq "$TOK2" "$(fl_alert_json Ip 198.51.100.9)")
check "re-login, then push -> 201: $R" test "${R%% *}" = 201
check "the stream cursor survived the restart (only the new ban)" eval \
    'stream_until "$C" sq "$K_B" new Ip 198.51.100.9 ban && [ "$(printf "%s" "$SEEN_BODY" | jq ".new | length")" = 1 ]'

# ------------------------------------------------- stock firewall bouncer ---
echo "--- stock crowdsec-firewall-bouncer in a namespace (baseline)"
root_cs_tables() { nft list tables 2>/dev/null | grep -c 'crowdsec' ; }
ROOT_BEFORE=$(root_cs_tables)
K_F=$(lapi_add_bouncer sq fwb-own) || fail "bouncer key for the firewall bouncer"
if fl_bouncer_start own "$C" sq "$K_F" 1s; then
    pass "crowdsec-firewall-bouncer runs in the client namespace (own tables)"
    E4=$(fl_nft_elements "$C" ip crowdsec crowdsec-blacklists | sort | tr '\n' ' ')
    E6=$(fl_nft_elements "$C" ip6 crowdsec6 crowdsec6-blacklists | sort | tr '\n' ' ')
    echo "  ip crowdsec: $E4"
    echo "  ip6 crowdsec6: $E6"
    check "its set has the Ip bans (198.51.100.7, 2001:db8:1::7)" \
        eval '[[ " $E4" == *" 198.51.100.7 "* && " $E6" == *" 2001:db8:1::7 "* ]]'
    check "ranges became single addresses (198.51.100.0, 203.0.113.0, 2001:db8:1::)" \
        eval '[[ " $E4" == *" 198.51.100.0 "* && " $E4" == *" 203.0.113.0 "* && " $E6" == *" 2001:db8:1:: "* && "$E4$E6" != */* ]]'
    check "the captcha decision is not in its set" eval '[[ " $E4" != *" 203.0.113.51 "* ]]'
    check "its table has the input-hook drop chain" \
        eval 'ip netns exec "$C" nft list chain ip crowdsec crowdsec-chain | grep -q "saddr @crowdsec-blacklists .*drop"'
    t=$(fl_ms)
    R=$(fl_push "$C" sq "$TOK2" "$(fl_alert_json Ip 198.51.100.77)")
    t1=$(fl_ms) ok=0
    while [ $(($(fl_ms) - t1)) -lt 5000 ]; do
        fl_nft_elements "$C" ip crowdsec crowdsec-blacklists | grep -qx 198.51.100.77 && { ok=1; break; }
        sleep 0.05
    done
    if [ $ok = 1 ]; then
        pass "a new push reaches the stock bouncer's set (1 s polling)"
        timing "push answered -> in stock bouncer's set (poll 1s)" "$(($(fl_ms) - t1)) ms (push $((t1 - t)) ms from bash)"
    else fail "a new push reaches the stock bouncer's set"; fi
    fl_bouncer_stop own
    check "SIGTERM: it exits 0 and removes its own tables (status $FWB_STOP_RC)" \
        eval '[ "$FWB_STOP_RC" = 0 ] && ! ip netns exec "$C" nft list tables | grep -q crowdsec'
else
    fail "crowdsec-firewall-bouncer runs in the client namespace"
fi

# set-only into sets of an existing inet table, beside an element of ours.
ip netns exec "$C" nft -f - <<'EOF'
table inet lab {
    set b4 { type ipv4_addr; flags timeout; elements = { 192.0.2.99 timeout 1h }; }
    set b6 { type ipv6_addr; flags timeout; elements = { 2001:db8:99::99 timeout 1h }; }
}
EOF
K_S=$(lapi_add_bouncer sq fwb-setonly) || fail "bouncer key (set-only)"
if fl_bouncer_start setonly "$C" sq "$K_S" 1s --set-only lab b4 lab b6; then
    check "set-only: fills the sets of an existing inet table" \
        eval 'fl_nft_elements "$C" inet lab b4 | grep -qx 198.51.100.7 && fl_nft_elements "$C" inet lab b6 | grep -qx 2001:db8:1::7'
    check "set-only: creates no table of its own" \
        eval '[ "$(ip netns exec "$C" nft list tables)" = "table inet lab" ]'
    fl_bouncer_stop setonly
    check "set-only SIGTERM: flushes the whole IPv4 set, ours included (known bug)" \
        eval '[ -z "$(fl_nft_elements "$C" inet lab b4)" ]'
    check "set-only SIGTERM: leaves the IPv6 set as it was" \
        eval 'fl_nft_elements "$C" inet lab b6 | grep -qx 2001:db8:99::99 && fl_nft_elements "$C" inet lab b6 | grep -qx 2001:db8:1::7'
else
    fail "crowdsec-firewall-bouncer set-only starts"
fi
check "root namespace: no crowdsec table appeared" test "$(root_cs_tables)" = "$ROOT_BEFORE"

# ------------------------------------------------------------- https --------
echo "--- https with a private CA"
ca_new lab || die "private CA"
lapi_new tls "$S" 192.0.2.1 8443 --tls lab || die "lapi_new tls"
K_T=$(lapi_add_bouncer tls host-b) && W_T=$(lapi_add_watcher tls web-1) || die "tls credentials"
lapi_start tls || die "LAPI tls starts"
timing "LAPI start (SQLite, https)" "${LAPI_START_MS[tls]} ms"
check "certificate has the LAPI's IP in subjectAltName" eval \
    'openssl x509 -in "${CA_DIR[lab]}/lapi-tls.pem" -noout -ext subjectAltName | grep -q "IP Address:192.0.2.1"'
check "https stream with --cacert -> 200" eval 'fl_stream "$C" tls "$K_T" startup >/dev/null'
OUT=$(ip netns exec "$C" curl -s -o /dev/null -w '%{http_code}' "${LAPI_URL[tls]}/v1/decisions/stream"; echo " rc=$?")
check "https without the CA -> refused (curl 60): $OUT" test "$OUT" = "000 rc=60"
TOKT=$(fl_login "$C" tls web-1 "$W_T") || fail "watcher login over https"
R=$(fl_push "$C" tls "$TOKT" "$(fl_alert_json Ip 198.51.100.20)")
check "push over https -> 201" test "${R%% *}" = 201
lapi_cscli tls decisions add --ip 203.0.113.60 >/dev/null 2>&1 || fail "cscli over https (ca_cert_path)"
check "cscli decisions add over https -> in stream" \
    stream_until "$C" tls "$K_T" new Ip 203.0.113.60 ban
K_TF=$(lapi_add_bouncer tls fwb-tls) || fail "bouncer key (https)"
if fl_bouncer_start tlsb "$C" tls "$K_TF" 1s; then
    check "stock bouncer over https (ca_cert_path) fills its set" \
        eval 'fl_nft_elements "$C" ip crowdsec crowdsec-blacklists | grep -qx 203.0.113.60'
    fl_bouncer_stop tlsb
else fail "stock bouncer over https starts"; fi

# --------------------------------------------------------- PostgreSQL -------
echo "--- two LAPIs on one PostgreSQL"
t=$(fl_ms)
pg_new fleet "$P1" 198.51.100.1 || die "postgres"
timing "PostgreSQL initdb + start + role/db" "$(($(fl_ms) - t)) ms"
SECRET=$(fl_secret)
lapi_new pg1 "$P1" 198.51.100.1 8080 --pg-tcp fleet --secret "$SECRET" || die "lapi_new pg1"
lapi_new pg2 "$P2" 203.0.113.1 8080 --pg fleet --secret "$SECRET" || die "lapi_new pg2"
# One database: credentials made through either LAPI's cscli count for both.
W_A=$(lapi_add_watcher pg1 host-a) && K_PB=$(lapi_add_bouncer pg2 host-b) || die "pg credentials"
lapi_start pg1 || die "LAPI pg1 starts"
timing "LAPI start (PostgreSQL over tcp)" "${LAPI_START_MS[pg1]} ms"
lapi_start pg2 || die "LAPI pg2 starts"
timing "LAPI start (PostgreSQL over unix socket)" "${LAPI_START_MS[pg2]} ms"
pass "two LAPIs up on one database (pg1 tcp, pg2 unix socket)"
TOKA=$(fl_login "$C" pg1 host-a "$W_A") || fail "login at pg1"
OUT=$(fl_curl "$C" pg2 /v1/alerts -H "Authorization: Bearer $TOKA")
check "pg2 accepts pg1's JWT (shared CS_LAPI_SECRET)" test "${OUT##*$'\n'}" = 200
# 1 s polling, the daemon's default: at 10 ms, about 1 push in 35 never shows
# as a delta on PostgreSQL (stream-loss.sh; docs/FLEET-LAB.md).
check "push to pg1 -> pull from pg2 sees it (1 s polling)" \
    measure_push 1000 pg1 "$TOKA" "$(fl_alert_json Ip 198.51.100.30)" pg2 "$K_PB" Ip 198.51.100.30 "pg1 -> pg2"

lapi_kill pg2
check "pg2 killed (SIGKILL, status $LAPI_STOP_RC), no longer answers" \
    eval '! lapi_running pg2 && [ "$(lapi_http_code pg2)" = 000 ]'
check "pg2 down: push to pg1, the same bouncer key pulls it from pg1" \
    measure_push 1000 pg1 "$TOKA" "$(fl_alert_json Range 198.51.100.128/25)" pg1 "$K_PB" Range 198.51.100.128/25 "pg1 after fail-over"
check "  ... the cursor moved with the key: the earlier ban did not come again" \
    eval '! grep -q 198.51.100.30 "$FL_WATCH_OUT"'
check "startup=true at pg1 has both bans" eval \
    'B=$(fl_stream "$C" pg1 "$K_PB" startup) && json_has "$B" new Ip 198.51.100.30 ban && json_has "$B" new Range 198.51.100.128/25 ban'

# ---------------------------------------------------------------------------
timing "whole smoke run" "$(($(fl_ms) - T0)) ms"
summary
[ "$FAILS" -eq 0 ]
