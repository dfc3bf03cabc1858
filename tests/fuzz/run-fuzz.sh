#!/bin/sh
# Build the libFuzzer harnesses with clang in a separate build directory and
# run each for DURATION seconds against a scratch copy of its seed corpus
# (the checked-in corpus never grows). Prints, per harness, the number of
# executions and of crashes; exits 1 if any harness crashed (or failed to
# build or run), 2 on bad usage.
#
#   tests/fuzz/run-fuzz.sh DURATION [HARNESS...]      e.g. run-fuzz.sh 5, run-fuzz.sh 60 packet
#
# Environment: BUILD_DIR (default build-fuzz, relative to the repo root),
# FUZZ_JOBS (meson compile -j, default: all cores).
# Crash inputs are kept under $BUILD_DIR/fuzz-artifacts/<harness>/; replay one with
#   $BUILD_DIR/tests/fuzz/fuzz-<harness> <file>
set -eu

usage() { echo "usage: $0 DURATION_SECONDS [packet|ignore|legacy-config|yaml-config ...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
duration=$1
shift
case $duration in '' | *[!0-9]*) usage ;; esac
[ "$duration" -ge 1 ] || usage

all="packet ignore legacy-config yaml-config"
harnesses=${*:-$all}
for h in $harnesses; do
    case " $all " in *" $h "*) ;; *) echo "run-fuzz: unknown harness '$h' (have: $all)" >&2; exit 2 ;; esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-fuzz}

command -v clang++ >/dev/null 2>&1 || { echo "run-fuzz: clang++ not found (scripts/install-deps installs clang)" >&2; exit 1; }

# A separate directory: libFuzzer needs clang and instruments everything it
# compiles, which the ordinary gcc build must not be.
if [ -f "$build/build.ninja" ]; then
    if ! grep -qE '^ command = (ccache )?clang\+\+' "$build/build.ninja"; then
        echo "run-fuzz: $build exists but was not configured with clang; remove it or set BUILD_DIR" >&2
        exit 1
    fi
    meson configure "$build" -Dfuzz=true -Dtests=true -Dbench=false >/dev/null
else
    CXX=clang++ meson setup "$build" -Dfuzz=true -Dtests=true -Dbench=false >/dev/null
fi
targets=""
for h in $harnesses; do targets="$targets fuzz-$h"; done
# shellcheck disable=SC2086
meson compile -C "$build" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} $targets >"$build/fuzz-compile.log" 2>&1 || {
    tail -40 "$build/fuzz-compile.log" >&2
    echo "run-fuzz: building the fuzzers failed (full log: $build/fuzz-compile.log)" >&2
    exit 1
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ps-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM

failed=0
printf '%-22s %12s %8s  %s\n' harness execs crashes notes
for h in $harnesses; do
    exe="$build/tests/fuzz/fuzz-$h"
    corpus="$scratch/corpus-$h"
    artifacts="$build/fuzz-artifacts/$h"
    log="$build/fuzz-$h.log"
    mkdir -p "$corpus" "$artifacts"
    cp -R "tests/fuzz/corpus/$h/." "$corpus/"
    before=$(find "$artifacts" -type f | wc -l)

    # -timeout: an input taking 10 s is a hang worth reporting.
    # -max_len: room for the ~12 KB Debian portsentry.conf seed and mutations of it.
    # -close_fd_mask=1: harness stdout (config diagnostics) would drown the log.
    rc=0
    "$exe" -max_total_time="$duration" -timeout=10 -max_len=16384 -print_final_stats=1 \
        -close_fd_mask=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    # After a crash libFuzzer prints no final stats: use the last progress line.
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
    [ -n "$execs" ] || execs=0
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    note=""
    if [ "$rc" -ne 0 ]; then
        [ "$crashes" -gt 0 ] || crashes=1   # died without writing an artifact (e.g. build mismatch)
        note="exit $rc, see $log; inputs in $artifacts/"
        failed=1
    elif [ "$crashes" -gt 0 ]; then
        note="artifacts in $artifacts/"
        failed=1
    fi
    printf '%-22s %12s %8s  %s\n' "fuzz-$h" "$execs" "$crashes" "$note"
done
exit $failed
