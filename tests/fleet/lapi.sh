# shellcheck shell=bash
# shellcheck disable=SC2034  # FL_*/LAPI_*/PG_* are read by the scripts that source this
# CrowdSec Local API (LAPI) lab for the fleet tests and benchmarks.
# Sourced; needs bash, root, iproute2, curl, openssl, crowdsec + cscli (1.4.6),
# PostgreSQL 15 (/usr/lib/postgresql/15/bin) for the multi-LAPI setups.
# docs/FLEET-LAB.md describes every function and the LAPI's observed behaviour.
#
# Rules kept here: every LAPI, database and certificate lives in one private
# temp dir ($FL_TMP); every process runs inside a network namespace created by
# fl_ns_add (no interface, route or firewall rule is ever added to the root
# namespace, and the lab has no default route, so nothing leaves it); only
# documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# 2001:db8::/32). fl_cleanup removes everything this library started; fl_traps
# runs it on every exit. Processes are tracked by pid, never found by name.
#
# A LAPI is named (NAME, [a-z0-9-]); its state is in the LAPI_* arrays:
#   LAPI_NS[NAME] LAPI_ADDR LAPI_PORT LAPI_URL LAPI_DIR LAPI_CONF LAPI_PID
#   LAPI_CA (CA file for https, empty for http) LAPI_START_MS (last start)
# A PostgreSQL cluster likewise in PG_* (PG_DIR PG_SOCK PG_NS PG_ADDR PG_PORT
# PG_PID PG_DB PG_USER PG_PASSWORD), a private CA in CA_DIR[NAME].

FL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FL_PG_BIN=${FL_PG_BIN:-/usr/lib/postgresql/15/bin}  # explicit: /usr/local/bin has an unrelated pg_ctl
FL_SUFFIX=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
FL_TMP=$(mktemp -d /tmp/ps-fleet.XXXXXX)
chmod 711 "$FL_TMP"   # the postgres user must reach its data dir below it
FL_KEEP_TMP=${FL_KEEP_TMP:-${KEEP_TMP:-0}}
FL_NETNS=()           # namespaces we created
FL_PIDS=()            # other background processes we started (e.g. a bouncer)
FL_LAPIS=()           # LAPI names, for cleanup
FL_PGS=()             # PostgreSQL cluster names, for cleanup

declare -A LAPI_NS LAPI_ADDR LAPI_PORT LAPI_URL LAPI_DIR LAPI_CONF LAPI_PID LAPI_CA \
    LAPI_SECRET LAPI_START_MS LAPI_RUNS
declare -A PG_DIR PG_SOCK PG_NS PG_ADDR PG_PORT PG_PID PG_DB PG_USER PG_PASSWORD
declare -A CA_DIR

fl_say() { printf '%s\n' "$*" >&2; }
fl_ms() { echo $(($(date +%s%N) / 1000000)); }           # wall clock, milliseconds
fl_rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }  # 2*N hex chars
# A CS_LAPI_SECRET for LAPIs that must accept each other's JWTs: crowdsec 1.4.6
# refuses to start ("CS_LAPI_SECRET not strong enough") below 64 characters.
fl_secret() { fl_rand_hex 48; }

# ------------------------------------------------------------ network -------

# fl_ns_add NS: a new namespace with lo up, removed by fl_cleanup.
fl_ns_add() {
    ip netns add "$1" || return 1
    FL_NETNS+=("$1")
    ip -n "$1" link set lo up
}

fl_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# fl_link NS1 IF1 ADDR1/PFX NS2 IF2 ADDR2/PFX: a veth pair between two of our
# namespaces, created inside NS1 with its peer moved straight into NS2 (it never
# exists in the root namespace). More addresses: fl_addr. IPv6 gets nodad.
fl_link() {
    local ns1=$1 if1=$2 a1=$3 ns2=$4 if2=$5 a2=$6
    ip -n "$ns1" link add "$if1" type veth peer name "$if2" netns "$ns2" || return 1
    fl_addr "$ns1" "$if1" "$a1" && fl_addr "$ns2" "$if2" "$a2" || return 1
    ip -n "$ns1" link set "$if1" up && ip -n "$ns2" link set "$if2" up
}

# fl_switch NS: an L2 switch, bridge br0 (up, no STP: ports forward at once),
# inside namespace NS; fl_plug connects namespaces to it.
FL_PORTS=0
fl_switch() {
    ip -n "$1" link add br0 type bridge && ip -n "$1" link set br0 up
}

# fl_plug SW NS IF [ADDR/PFX...]: a veth from NS (interface IF, up, with every
# ADDR) to a port of SW's br0, created inside NS with its peer moved straight
# into SW (never in the root namespace).
fl_plug() {
    local sw=$1 ns=$2 if=$3 a; shift 3
    FL_PORTS=$((FL_PORTS + 1))
    local port=port$FL_PORTS
    ip -n "$ns" link add "$if" type veth peer name "$port" netns "$sw" || return 1
    ip -n "$sw" link set "$port" master br0 && ip -n "$sw" link set "$port" up || return 1
    for a in "$@"; do fl_addr "$ns" "$if" "$a" || return 1; done
    ip -n "$ns" link set "$if" up
}

# fl_addr NS IF ADDR/PFX: one more address on an interface of ours.
fl_addr() {
    case $3 in
    *:*) ip -n "$1" addr add "$3" dev "$2" nodad ;;
    *) ip -n "$1" addr add "$3" dev "$2" ;;
    esac
}

# ---------------------------------------------------------- private CA ------

# ca_new CA: a private certificate authority (EC P-256, valid 2 days) in
# $FL_TMP/ca-CA/ca.pem (+ ca.key, mode 0600).
ca_new() {
    local ca=$1 d="$FL_TMP/ca-$1"
    mkdir -p "$d" || return 1
    CA_DIR[$ca]=$d
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=portsentry-lab-ca-$ca" \
        >"$d/openssl.log" 2>&1 || { fl_say "ca_new $ca failed:"; cat "$d/openssl.log" >&2; return 1; }
    chmod 600 "$d/ca.key"
}

# ca_cert CA NAME ADDR...: a server certificate NAME signed by CA, with every
# ADDR (IPv4/IPv6 literal, or a DNS name) in subjectAltName, serverAuth.
# Writes $FL_TMP/ca-CA/NAME.pem and NAME.key (0600); prints nothing.
ca_cert() {
    local ca=$1 name=$2; shift 2
    local d=${CA_DIR[$ca]} san="" a
    [ -n "$d" ] || { fl_say "ca_cert: no CA $ca"; return 1; }
    for a in "$@"; do
        case $a in
        *:* | [0-9]*.[0-9]*.[0-9]*.[0-9]*) san="$san,IP:$a" ;;
        *) san="$san,DNS:$a" ;;
        esac
    done
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n' \
        "${san#,}" >"$d/$name.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$1" >>"$d/openssl.log" 2>&1 &&
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -out "$d/$name.pem" -days 2 -extfile "$d/$name.ext" >>"$d/openssl.log" 2>&1 ||
        { fl_say "ca_cert $ca $name failed:"; tail -5 "$d/openssl.log" >&2; return 1; }
    chmod 600 "$d/$name.key"
}

# ---------------------------------------------------------- PostgreSQL ------

# pg_new NAME [NS ADDR [PORT]]: a private PostgreSQL 15 cluster (initdb into
# $FL_TMP/pg-NAME, run as the postgres user, fsync off: test data only) with a role and a
# database for crowdsec (PG_USER/PG_PASSWORD/PG_DB). It always listens on a
# unix socket in PG_SOCK[NAME] (reachable from every namespace: it is a file);
# with NS and ADDR it also listens on ADDR:PORT (default 5432) inside NS, with
# password (scram) authentication for TCP. Started and ready on return.
pg_new() {
    local name=$1 ns=${2:-} addr=${3:-} port=${4:-5432}
    local d="$FL_TMP/pg-$name" t0
    mkdir -p "$d/sock" && chown postgres:postgres "$d" "$d/sock" && chmod 700 "$d" || return 1
    PG_DIR[$name]=$d PG_SOCK[$name]=$d/sock PG_NS[$name]=$ns PG_ADDR[$name]=$addr
    PG_PORT[$name]=$port PG_DB[$name]=crowdsec PG_USER[$name]=crowdsec
    PG_PASSWORD[$name]=$(fl_rand_hex 16)
    FL_PGS+=("$name")
    t0=$(fl_ms)
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$FL_PG_BIN/initdb" -D "$d/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$d/initdb.log" 2>&1 ||
        { fl_say "pg_new $name: initdb failed:"; tail -5 "$d/initdb.log" >&2; return 1; }
    # Local (socket) connections: trust, the socket dir is private to postgres
    # and root. TCP: password only.
    cat >"$d/data/pg_hba.conf" <<'EOF'
local all all trust
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
EOF
    pg_start "$name" || return 1
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$FL_PG_BIN/psql" -qX -v ON_ERROR_STOP=1 -h "$d/sock" -p "$port" \
        -U postgres -d postgres \
        -c "CREATE ROLE ${PG_USER[$name]} LOGIN PASSWORD '${PG_PASSWORD[$name]}'" \
        -c "CREATE DATABASE ${PG_DB[$name]} OWNER ${PG_USER[$name]}" >>"$d/initdb.log" 2>&1 ||
        { fl_say "pg_new $name: role/database creation failed:"; tail -5 "$d/initdb.log" >&2; return 1; }
    fl_say "postgres $name ready in $(($(fl_ms) - t0)) ms (socket ${PG_SOCK[$name]}${addr:+, tcp $addr:$port in $ns})"
}

# pg_start NAME: (re)starts a cluster made by pg_new: the postmaster itself is
# our child (setpriv execs it as postgres inside the namespace, no pg_ctl
# daemonizing), so PG_PID is its pid and pg_stop reaps it. Waits until it
# accepts connections (30 s).
pg_start() {
    local name=$1 d=${PG_DIR[$1]} ns=${PG_NS[$1]:-}
    local run=(setpriv --reuid=postgres --regid=postgres --init-groups --
        "$FL_PG_BIN/postgres" -D "$d/data" -c "listen_addresses=${PG_ADDR[$name]}"
        -c "port=${PG_PORT[$name]}" -c "unix_socket_directories=$d/sock"
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "${run[@]}" >>"$d/postgres.log" 2>&1 &
    else
        "${run[@]}" >>"$d/postgres.log" 2>&1 &
    fi
    PG_PID[$name]=$!
    for _ in $(seq 300); do
        if "$FL_PG_BIN/pg_isready" -q -h "$d/sock" -p "${PG_PORT[$name]}"; then return 0; fi
        kill -0 "${PG_PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    fl_say "pg_start $name failed:"; tail -5 "$d/postgres.log" | sed 's/^/    | /' >&2
    return 1
}

# pg_stop NAME [MODE]: MODE fast (default: SIGINT, sessions aborted, clean
# shutdown) or immediate (SIGQUIT, crash-like); SIGKILL after 10 s; reaped.
pg_stop() {
    local name=$1 pid=${PG_PID[$1]:-} sig=INT
    [ -n "$pid" ] || return 0
    [ "${2:-fast}" = immediate ] && sig=QUIT
    {
        kill "-$sig" "$pid"
        for _ in $(seq 100); do kill -0 "$pid" || break; sleep 0.1; done
        kill -0 "$pid" && kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    PG_PID[$name]=""
}

# ---------------------------------------------------------------- LAPI ------

# lapi_new NAME NS ADDR PORT [--pg PG | --pg-tcp PG] [--tls CA] [--secret S]
# Writes the config of a LAPI that will listen on ADDR:PORT inside NS, all its
# files in $FL_TMP/lapi-NAME: SQLite (WAL) by default; --pg uses PostgreSQL
# cluster PG over its unix socket, --pg-tcp over TCP to PG_ADDR (password auth;
# the LAPI's namespace must reach it). --tls CA: https with a server
# certificate for ADDR signed by CA (made now). --secret: CS_LAPI_SECRET in
# the LAPI's environment (LAPIs sharing a database and a secret accept each
# other's JWTs, and a restart keeps tokens valid); without it every start
# draws a random secret, so a restart voids every token.
# Also registers machine "cscli-NAME", whose credentials cscli uses (lapi_cscli):
# `cscli decisions add/delete/list` talk to the LAPI over HTTP(S).
lapi_new() {
    local name=$1 ns=$2 addr=$3 port=$4; shift 4
    local pg="" pg_tcp=0 ca="" secret=""
    while [ $# -gt 0 ]; do
        case $1 in
        --pg) pg=$2; shift 2 ;;
        --pg-tcp) pg=$2; pg_tcp=1; shift 2 ;;
        --tls) ca=$2; shift 2 ;;
        --secret) secret=$2; shift 2 ;;
        *) fl_say "lapi_new: unknown option $1"; return 1 ;;
        esac
    done
    local d="$FL_TMP/lapi-$name" scheme=http hostport=$addr:$port
    case $addr in *:*) hostport="[$addr]:$port" ;; esac
    mkdir -p "$d/data" "$d/log" "$d/notifications" || return 1
    chmod 700 "$d"
    LAPI_NS[$name]=$ns LAPI_ADDR[$name]=$addr LAPI_PORT[$name]=$port LAPI_DIR[$name]=$d
    LAPI_CONF[$name]=$d/config.yaml LAPI_PID[$name]="" LAPI_CA[$name]="" LAPI_SECRET[$name]=$secret
    LAPI_RUNS[$name]=0
    FL_LAPIS+=("$name")
    cp /etc/crowdsec/profiles.yaml "$d/profiles.yaml" &&
    printf 'simulation: off\n' >"$d/simulation.yaml" || return 1

    local tls=""
    if [ -n "$ca" ]; then
        ca_cert "$ca" "lapi-$name" "$addr" || return 1
        scheme=https
        LAPI_CA[$name]=${CA_DIR[$ca]}/ca.pem
        tls="    tls:
      cert_file: ${CA_DIR[$ca]}/lapi-$name.pem
      key_file: ${CA_DIR[$ca]}/lapi-$name.key"
    fi
    LAPI_URL[$name]=$scheme://$hostport

    local db
    if [ -z "$pg" ]; then
        db="  type: sqlite
  db_path: $d/data/crowdsec.db
  use_wal: true"
    else
        [ -n "${PG_DIR[$pg]:-}" ] || { fl_say "lapi_new $name: no postgres $pg"; return 1; }
        local host=${PG_SOCK[$pg]}
        if [ "$pg_tcp" = 1 ]; then
            [ -n "${PG_ADDR[$pg]}" ] || { fl_say "lapi_new $name: postgres $pg has no address"; return 1; }
            host=${PG_ADDR[$pg]}
        fi
        db="  type: postgresql
  user: ${PG_USER[$pg]}
  password: ${PG_PASSWORD[$pg]}
  db_name: ${PG_DB[$pg]}
  host: $host
  port: ${PG_PORT[$pg]}
  sslmode: disable"
    fi

    # Written from scratch rather than copied from /etc/crowdsec/config.yaml:
    # no online_client (Central API) section, no acquisition (the agent is not
    # run: -no-cs), prometheus off, and nothing under /etc or /var/lib written.
    # The hub is read from the package's offline copy and never written.
    cat >"$d/config.yaml" <<EOF
common:
  daemonize: false
  log_media: file
  log_level: info
  log_dir: $d/log/
  working_dir: .
config_paths:
  config_dir: $d/
  data_dir: $d/data/
  simulation_path: $d/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: $d/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
cscli:
  output: human
  color: "no"
db_config:
  log_level: info
$db
  flush:
    max_items: 5000
    max_age: 7d
api:
  client:
    insecure_skip_verify: false
    credentials_path: $d/cscli-credentials.yaml
  server:
    log_level: info
    listen_uri: "$hostport"
$tls
    profiles_path: $d/profiles.yaml
    console_path: $d/console.yaml
    trusted_ips:
      - 127.0.0.1
      - ::1
prometheus:
  enabled: false
  level: full
  listen_addr: 127.0.0.1
  listen_port: 6060
EOF
    # In the LAPI's namespace: -t opens the database (a --pg-tcp address may
    # only be reachable there).
    ip netns exec "$ns" crowdsec -c "$d/config.yaml" -t >"$d/check.log" 2>&1 ||
        { fl_say "lapi_new $name: crowdsec -t refused the config:"; tail -5 "$d/check.log" >&2; return 1; }

    # cscli's own machine. Several LAPIs on one database share the machines
    # table: one "cscli-NAME" per LAPI.
    local pw; pw=$(fl_rand_hex 16)
    lapi_cscli "$name" machines add "cscli-$name" --password "$pw" --force -f /dev/null \
        >"$d/cscli-setup.log" 2>&1 ||
        { fl_say "lapi_new $name: cscli machines add failed:"; tail -5 "$d/cscli-setup.log" >&2; return 1; }
    {
        echo "url: ${LAPI_URL[$name]}"
        echo "login: cscli-$name"
        echo "password: $pw"
        # cscli 1.4.6 trusts this CA for the LAPI's certificate.
        [ -z "${LAPI_CA[$name]}" ] || echo "ca_cert_path: ${LAPI_CA[$name]}"
    } >"$d/cscli-credentials.yaml"
    chmod 600 "$d/cscli-credentials.yaml"
}

# lapi_cscli NAME ARGS...: cscli against NAME's config, inside NAME's
# namespace (machines/bouncers go straight to the database; decisions go
# through the LAPI, which must be running).
lapi_cscli() {
    local name=$1; shift
    ip netns exec "${LAPI_NS[$name]}" cscli -c "${LAPI_CONF[$name]}" "$@"
}

# lapi_add_watcher NAME MACHINE: registers machine MACHINE with a random
# password; prints the path of the password file (the secret alone on its
# first line, mode 0600), $LAPI_DIR/MACHINE.password.
lapi_add_watcher() {
    local name=$1 machine=$2 d=${LAPI_DIR[$1]} pw
    pw=$(fl_rand_hex 16)
    (umask 077 && printf '%s\n' "$pw" >"$d/$machine.password") || return 1
    lapi_cscli "$name" machines add "$machine" --password "$pw" --force -f /dev/null \
        >>"$d/cscli-setup.log" 2>&1 ||
        { fl_say "lapi_add_watcher $name $machine failed:"; tail -3 "$d/cscli-setup.log" >&2; return 1; }
    echo "$d/$machine.password"
}

# lapi_add_bouncer NAME CONSUMER: a bouncer API key for one consumer (the
# stream cursor is per key: one key per consumer); prints the path of the key
# file (the key alone on its first line, mode 0600), $LAPI_DIR/CONSUMER.key.
lapi_add_bouncer() {
    local name=$1 who=$2 d=${LAPI_DIR[$1]} key
    key=$(fl_rand_hex 16)
    (umask 077 && printf '%s\n' "$key" >"$d/$who.key") || return 1
    lapi_cscli "$name" bouncers add "$who" -k "$key" >>"$d/cscli-setup.log" 2>&1 ||
        { fl_say "lapi_add_bouncer $name $who failed:"; tail -3 "$d/cscli-setup.log" >&2; return 1; }
    echo "$d/$who.key"
}

# lapi_start NAME [TIMEOUT_S]: starts `crowdsec -c CONF -no-cs` (the LAPI
# alone, foreground) in NAME's namespace, stdout/stderr to
# $LAPI_DIR/run-N.log, and waits until it answers HTTP. LAPI_START_MS[NAME]:
# exec to first answer. Returns 1 with the log tail if it exits or times out
# (default 20 s).
lapi_start() {
    local name=$1 timeout=${2:-20} d=${LAPI_DIR[$1]} t0 pid
    LAPI_RUNS[$name]=$((LAPI_RUNS[$name] + 1))
    local log="$d/run-${LAPI_RUNS[$name]}.log"
    t0=$(fl_ms)
    # env and ip netns exec both exec: $! is crowdsec itself.
    if [ -n "${LAPI_SECRET[$name]}" ]; then
        env CS_LAPI_SECRET="${LAPI_SECRET[$name]}" \
            ip netns exec "${LAPI_NS[$name]}" crowdsec -c "${LAPI_CONF[$name]}" -no-cs >"$log" 2>&1 &
    else
        env -u CS_LAPI_SECRET \
            ip netns exec "${LAPI_NS[$name]}" crowdsec -c "${LAPI_CONF[$name]}" -no-cs >"$log" 2>&1 &
    fi
    pid=$!
    LAPI_PID[$name]=$pid
    if ! lapi_wait "$name" "$timeout"; then
        fl_say "lapi $name (pid $pid) not answering; log:"
        { tail -5 "$log"; tail -5 "$d/log/crowdsec_api.log" 2>/dev/null; } | sed 's/^/    | /' >&2
        return 1
    fi
    LAPI_START_MS[$name]=$(($(fl_ms) - t0))
}

# lapi_http_code NAME: the HTTP status of an unauthenticated GET of the
# stream from inside NAME's namespace (403 when up; 000 when not answering).
lapi_http_code() {
    local name=$1 ca=()
    [ -z "${LAPI_CA[$name]}" ] || ca=(--cacert "${LAPI_CA[$name]}")
    ip netns exec "${LAPI_NS[$name]}" curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        "${ca[@]}" "${LAPI_URL[$name]}/v1/decisions/stream" 2>/dev/null
}

# lapi_wait NAME [TIMEOUT_S]: until the LAPI answers (any HTTP status); fails
# at once if its process is gone.
lapi_wait() {
    local name=$1 timeout=${2:-20} pid=${LAPI_PID[$1]} end code
    end=$(($(fl_ms) + timeout * 1000))
    while [ "$(fl_ms)" -lt "$end" ]; do
        code=$(lapi_http_code "$name")
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            { wait "$pid"; } 2>/dev/null
            fl_say "lapi $name exited with status $?"
            LAPI_PID[$name]=""
            return 1
        fi
        sleep 0.02
    done
    return 1
}

# lapi_stop NAME [SIGNAL]: sends SIGNAL (TERM by default) and waits up to
# 10 s, then SIGKILL. LAPI_STOP_RC: the exit status (128+N for a signal).
LAPI_STOP_RC=""
lapi_stop() {
    local name=$1 sig=${2:-TERM} pid=${LAPI_PID[$1]}
    LAPI_STOP_RC="not-running"
    [ -n "$pid" ] || return 0
    # One redirected block: bash reports a job killed by a signal ("Killed")
    # whenever it notices, which may be during the polling loop.
    {
        kill "-$sig" "$pid"
        for _ in $(seq 200); do
            kill -0 "$pid" || break
            sleep 0.05
        done
        kill -0 "$pid" && kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    LAPI_STOP_RC=$?
    LAPI_PID[$name]=""
}

# lapi_kill NAME: SIGKILL, the "LAPI vanished" case.
lapi_kill() { lapi_stop "$1" KILL; }

# lapi_restart NAME: stop (TERM) then start; LAPI_START_MS is the new start.
lapi_restart() { lapi_stop "$1" && lapi_start "$1"; }

# lapi_running NAME: its process is alive.
lapi_running() { [ -n "${LAPI_PID[$1]}" ] && kill -0 "${LAPI_PID[$1]}" 2>/dev/null; }

# --------------------------------------------------------- HTTP clients -----

# fl_curl NS NAME PATH [CURL-ARGS...]: curl from namespace NS to LAPI NAME's
# URL + PATH (with its CA for https), body to stdout; appends
# "\n<HTTP status>" as the last line so callers can split status and body.
fl_curl() {
    local ns=$1 name=$2 path=$3; shift 3
    local ca=()
    [ -z "${LAPI_CA[$name]}" ] || ca=(--cacert "${LAPI_CA[$name]}")
    ip netns exec "$ns" curl -sS --max-time 10 "${ca[@]}" -w '\n%{http_code}' "$@" \
        "${LAPI_URL[$name]}$path"
}

# fl_login NS NAME MACHINE PASSWORD_FILE: POST /v1/watchers/login; prints the
# JWT, fails (status and body on stderr) on anything but 200.
fl_login() {
    local out code body
    out=$(fl_curl "$1" "$2" /v1/watchers/login -X POST -H 'Content-Type: application/json' \
        -d "{\"machine_id\":\"$3\",\"password\":\"$(head -1 "$4")\"}") || return 1
    code=${out##*$'\n'} body=${out%$'\n'*}
    [ "$code" = 200 ] || { fl_say "login $3 at $2: HTTP $code $body"; return 1; }
    printf '%s' "$body" | jq -er .token
}

# fl_alert_json SCOPE VALUE [DURATION [TYPE [SCENARIO]]]: one alert (as an
# element, not an array) with one decision, in the exact shape of
# CROWDSEC.md; start_at = stop_at = now (UTC), so the ban lasts DURATION.
fl_alert_json() {
    local scope=$1 value=$2 dur=${3:-4h} type=${4:-ban} scen=${5:-portsentry/portscan} now ip=""
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    [ "$scope" = Ip ] && ip=$value
    jq -cn --arg scope "$scope" --arg value "$value" --arg ip "$ip" --arg dur "$dur" \
        --arg type "$type" --arg scen "$scen" --arg now "$now" '{
        scenario: $scen, scenario_hash: "", scenario_version: "1",
        message: "portsentry-nfq lab: \($scope) \($value)", events_count: 3,
        start_at: $now, stop_at: $now, capacity: 0, leakspeed: "0",
        simulated: false, remediation: true, events: [],
        source: {scope: $scope, value: $value, ip: $ip},
        decisions: [{origin: "portsentry", type: $type, scope: $scope, value: $value,
                     duration: $dur, scenario: $scen, simulated: false}]}'
}

# fl_push NS NAME TOKEN ALERT_JSON...: POST /v1/alerts with the alerts as one
# array; prints "STATUS BODY".
fl_push() {
    local ns=$1 name=$2 tok=$3 out; shift 3
    out=$(printf '%s\n' "$@" | jq -cs . | fl_curl "$ns" "$name" /v1/alerts -X POST \
        -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' --data-binary @-)
    printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}

# fl_stream NS NAME KEY_FILE [startup]: one GET of the decisions stream with
# the bouncer key; prints the body; fails unless HTTP 200.
fl_stream() {
    local ns=$1 name=$2 key q="" out code
    key=$(head -1 "$3")
    [ "${4:-}" = startup ] && q="?startup=true"
    out=$(fl_curl "$ns" "$name" "/v1/decisions/stream$q" -H "X-Api-Key: $key") || return 1
    code=${out##*$'\n'}
    [ "$code" = 200 ] || { fl_say "stream at $name: HTTP $code ${out%$'\n'*}"; return 1; }
    printf '%s\n' "${out%$'\n'*}"
}

# fl_watch_start NS LAPI KEY_FILE LIST SCOPE VALUE TYPE [INTERVAL_MS
#                [PUSH_LAPI TOKEN ALERT_JSON...]]
# Starts stream-watch.py in NS (one kept-alive connection, a poll every
# INTERVAL_MS, default 10) and returns once its first poll answered. With
# PUSH_LAPI, the watcher itself pushes the alerts (as one array) to PUSH_LAPI
# with TOKEN right after that first poll, in a thread while it keeps polling:
# push and sighting are then timed by one clock in one process.
# fl_watch_wait [TIMEOUT_S] waits for it: status 0 when the decision was seen,
# with FL_WATCH_SEEN_MS (epoch ms of the answer that had it), FL_WATCH_POLLS,
# FL_WATCH_ENTRY (the stream entry, JSON) and, after a push,
# FL_WATCH_PUSH_SENT / FL_WATCH_PUSH_DONE (epoch ms) / FL_WATCH_PUSH_STATUS.
FL_WATCH_PID="" FL_WATCH_OUT="" FL_WATCH_SEEN_MS="" FL_WATCH_POLLS="" FL_WATCH_ENTRY="" FL_WATCHES=0
FL_WATCH_PUSH_SENT="" FL_WATCH_PUSH_DONE="" FL_WATCH_PUSH_STATUS=""
fl_watch_start() {
    local ns=$1 name=$2 key=$3 list=$4 scope=$5 value=$6 type=$7 iv=${8:-10} opt=()
    shift 8 2>/dev/null || shift $#
    [ -z "${LAPI_CA[$name]}" ] || opt=(--cacert "${LAPI_CA[$name]}")
    FL_WATCHES=$((FL_WATCHES + 1))
    local w="$FL_TMP/watch-$FL_WATCHES"
    FL_WATCH_OUT="$w.out"
    if [ $# -ge 3 ]; then
        local pl=$1 tok=$2; shift 2
        [ -z "${LAPI_CA[$pl]}" ] || [ "${LAPI_CA[$pl]}" = "${LAPI_CA[$name]}" ] ||
            { fl_say "fl_watch_start: push and watch LAPIs need the same CA"; return 1; }
        (umask 077 && printf '%s\n' "$tok" >"$w.token") &&
        printf '%s\n' "$@" | jq -cs . >"$w.body" || return 1
        opt+=(--push-url "${LAPI_URL[$pl]}" --push-token-file "$w.token" --push-body-file "$w.body")
    fi
    ip netns exec "$ns" /usr/bin/python3 "$FL_DIR/stream-watch.py" "${LAPI_URL[$name]}" "$key" \
        "$list" "$scope" "$value" "$type" --interval-ms "$iv" "${opt[@]}" >"$FL_WATCH_OUT" 2>&1 &
    FL_WATCH_PID=$!
    FL_PIDS+=("$FL_WATCH_PID")
    for _ in $(seq 500); do
        grep -q '^ready' "$FL_WATCH_OUT" && return 0
        kill -0 "$FL_WATCH_PID" 2>/dev/null || break
        sleep 0.02
    done
    fl_say "stream watcher did not start:"; sed 's/^/    | /' "$FL_WATCH_OUT" >&2
    return 1
}
fl_watch_wait() {
    local tmo=${1:-15} pid=$FL_WATCH_PID line
    for _ in $(seq $((tmo * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
    fl_forget_pid "$pid"
    FL_WATCH_PUSH_SENT="" FL_WATCH_PUSH_DONE="" FL_WATCH_PUSH_STATUS=""
    if line=$(grep -m1 '^pushed [0-9]' "$FL_WATCH_OUT"); then
        read -r _ FL_WATCH_PUSH_SENT FL_WATCH_PUSH_DONE FL_WATCH_PUSH_STATUS <<<"$line"
    fi
    line=$(grep -m1 '^seen ' "$FL_WATCH_OUT") || { fl_say "watch: $(tail -2 "$FL_WATCH_OUT" | tr '\n' ' ')"; return 1; }
    FL_WATCH_SEEN_MS=$(printf '%s' "$line" | awk '{print $2}')
    FL_WATCH_POLLS=$(printf '%s' "$line" | sed -n 's/.* polls=\([0-9]*\) .*/\1/p')
    FL_WATCH_ENTRY=${line#* entry=}
}

# fl_forget_pid PID: drop a reaped process from FL_PIDS (its pid may be reused).
fl_forget_pid() {
    local p keep=()
    for p in "${FL_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    FL_PIDS=("${keep[@]}")
}

# ------------------------------------------- stock firewall bouncer ------
# The baseline for the benchmarks: crowdsec-firewall-bouncer 0.0.25 (nftables
# mode), run inside a namespace of ours, so its tables exist only there.
declare -A FWB_PID FWB_DIR FWB_NS

# fl_bouncer_start NAME NS LAPI KEY_FILE [INTERVAL] [--set-only T4 S4 T6 S6]
# Writes $FL_TMP/fwb-NAME/config.yaml and starts the bouncer in NS against
# LAPI with that key, polling every INTERVAL (Go duration, default 1s). By
# default it creates its own tables (ip crowdsec / ip6 crowdsec6, sets
# crowdsec-blacklists / crowdsec6-blacklists, drop in an input hook chain);
# --set-only fills the existing sets S4 in table T4 and S6 in T6 (found by
# name: inet tables work too) and creates nothing. daemonize: true does not
# fork; it is what makes SIGTERM clean up (own tables removed; set-only: the
# IPv4 set flushed whole, the IPv6 set left as is). With daemonize: false,
# SIGTERM kills it and everything stays. Returns once it has processed its
# first stream answer (sets filled), 1 with the log tail otherwise (20 s).
fl_bouncer_start() {
    local name=$1 ns=$2 lapi=$3 key=$4 iv=${5:-1s} so=false t4=crowdsec s4=crowdsec-blacklists
    local t6=crowdsec6 s6=crowdsec6-blacklists d="$FL_TMP/fwb-$1" ca_line=""
    if [ "${6:-}" = --set-only ]; then so=true t4=$7 s4=$8 t6=$9 s6=${10}; fi
    mkdir -p "$d" && chmod 700 "$d" || return 1
    [ -z "${LAPI_CA[$lapi]}" ] || ca_line="ca_cert_path: ${LAPI_CA[$lapi]}"
    cat >"$d/config.yaml" <<EOF
mode: nftables
pid_dir: $d/
update_frequency: $iv
daemonize: true
log_mode: stdout
log_dir: $d/
log_level: info
api_url: ${LAPI_URL[$lapi]}/
api_key: $(head -1 "$key")
$ca_line
insecure_skip_verify: false
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: $s4
blacklists_ipv6: $s6
nftables:
  ipv4:
    enabled: true
    set-only: $so
    table: $t4
    chain: crowdsec-chain
  ipv6:
    enabled: true
    set-only: $so
    table: $t6
    chain: crowdsec6-chain
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
EOF
    chmod 600 "$d/config.yaml"
    FWB_DIR[$name]=$d FWB_NS[$name]=$ns
    ip netns exec "$ns" crowdsec-firewall-bouncer -c "$d/config.yaml" >"$d/bouncer.log" 2>&1 &
    FWB_PID[$name]=$!
    FL_PIDS+=("${FWB_PID[$name]}")
    for _ in $(seq 200); do
        grep -q 'decisions\? \(added\|deleted\)' "$d/bouncer.log" && return 0
        kill -0 "${FWB_PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    fl_say "bouncer $name not running; log:"; tail -5 "$d/bouncer.log" | sed 's/^/    | /' >&2
    return 1
}

# fl_bouncer_stop NAME [SIGNAL]: SIGTERM by default (its clean-up), waits up
# to 10 s, then SIGKILL. FWB_STOP_RC: exit status (0 after a clean SIGTERM).
FWB_STOP_RC=""
fl_bouncer_stop() {
    local pid=${FWB_PID[$1]:-}
    FWB_STOP_RC="not-running"
    [ -n "$pid" ] || return 0
    {
        kill "-${2:-TERM}" "$pid"
        for _ in $(seq 100); do kill -0 "$pid" || break; sleep 0.1; done
        kill -0 "$pid" && kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    FWB_STOP_RC=$?
    fl_forget_pid "$pid"
    FWB_PID[$1]=""
}

# fl_nft_elements NS FAMILY TABLE SET: the set's elements in NS, one a line
# (addresses; prefixes as ADDR/LEN).
fl_nft_elements() {
    ip netns exec "$1" nft -j list set "$2" "$3" "$4" 2>/dev/null |
        jq -r '.nftables[] | select(.set) | (.set.elem // [])[] |
            if type == "object" and has("elem") then .elem.val else . end |
            if type == "object" and has("prefix") then "\(.prefix.addr)/\(.prefix.len)" else . end'
}

# ------------------------------------------------------------- cleanup ------

# fl_cleanup: kill every LAPI and process we started, stop every PostgreSQL
# cluster, kill anything left in our namespaces, delete them, remove $FL_TMP
# (kept with FL_KEEP_TMP=1). Safe to call twice. Does not exit: scripts that
# also source tests/integration/lib.sh call it from their own cleanup.
fl_cleanup() {
    local n pid ns
    for n in "${FL_LAPIS[@]}"; do
        pid=${LAPI_PID[$n]:-}
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${FL_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for n in "${FL_LAPIS[@]}"; do
        pid=${LAPI_PID[$n]:-}
        [ -n "$pid" ] && { wait "$pid"; } 2>/dev/null
        LAPI_PID[$n]=""
    done
    for pid in "${FL_PIDS[@]}"; do { wait "$pid"; } 2>/dev/null; done
    FL_PIDS=()
    for n in "${FL_PGS[@]}"; do pg_stop "$n" immediate; done
    for ns in "${FL_NETNS[@]}"; do
        # Anything still running inside our namespaces was started by us.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    FL_NETNS=()
    if [ "$FL_KEEP_TMP" = 1 ]; then
        fl_say "kept $FL_TMP"
    else
        rm -rf "$FL_TMP"
    fi
    return 0
}

# fl_traps: fl_cleanup on every exit, with the usual status on INT/TERM.
fl_traps() {
    trap 'fl__exit' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
fl__exit() {
    local rc=$?
    trap - EXIT INT TERM
    fl_cleanup
    exit "$rc"
}
