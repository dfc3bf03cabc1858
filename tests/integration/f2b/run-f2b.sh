#!/bin/bash
# shellcheck disable=SC2317  # scenarios run via scenario_run
# The fail2ban scenarios alone (run.sh also runs them, once, after the
# backend matrix). Same lab, same rules: root, namespaces only.
#
# Usage: tests/integration/f2b/run-f2b.sh [BINARY]
#   BINARY (or PORTSENTRY_NFQ=path): the daemon (default: build/, then build-integ/)
#   KEEP_TMP=1  keep the run directory (daemon and fail2ban logs)
set -u

[ "$(id -u)" -eq 0 ] || { echo "run-f2b.sh: needs root (network namespaces, nft); skipping" >&2; exit 77; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=f2b.sh
. "$(dirname "$0")/f2b.sh"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RESULTS=${RESULTS:-$RUN_TMP/results.txt}
: >"$RESULTS"
CUR_TAG=fail2ban

for tool in nft iptables nmap curl unshare "$F2B_SERVER" "$F2B_CLIENT" "$PY"; do
    command -v "$tool" >/dev/null || { say "run-f2b.sh: missing $tool (scripts/install-deps)"; exit 1; }
done

[ -n "${1:-}" ] && PORTSENTRY_NFQ=$1
if [ -z "${PORTSENTRY_NFQ:-}" ]; then
    for c in "$SRC_ROOT/build/portsentry-nfq" "$SRC_ROOT/build-integ/portsentry-nfq"; do
        [ -x "$c" ] && { PORTSENTRY_NFQ=$c; break; }
    done
fi
BIN=${PORTSENTRY_NFQ:-}
# fail2ban runs the action from its own working directory.
[ -n "$BIN" ] && BIN=$(realpath -- "$BIN")
[ -x "$BIN" ] || { say "run-f2b.sh: no daemon binary (set PORTSENTRY_NFQ or pass it)"; exit 1; }

AVAILABLE=()
for backend in queue xt-queue nflog; do
    probe_backend "$backend" >/dev/null && AVAILABLE+=("$backend")
done
[ ${#AVAILABLE[@]} -gt 0 ] || { say "run-f2b.sh: the kernel has no steering backend"; exit 1; }

f2b_scenarios || FAILED=1

echo
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILED" -eq 0 ] && echo "ALL PASSED" || echo "FAILURES"
exit "$FAILED"
