#!/usr/bin/env bash
# Runs the test suite against one build directory.
#   tests/run.sh BUILD_DIR [unit|integration|fuzz|all]
# Unit tests are the cmocka binaries in BUILD_DIR/tests; integration tests
# are tests/integration/*.sh, each started with SWB_BIN=BUILD_DIR and a
# fresh SWB_TMP.  A failing test fails the run; every test is reported.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
what=${2:-all}
export SWB_BIN=$PWD/$build
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
pass=0; fail=0; failed=()

run_one() {
    local name=$1; shift
    local log; log=$(mktemp /tmp/swb-test.XXXXXX)
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        pass=$((pass+1)); printf 'PASS %-40s %3ds\n' "$name" $((SECONDS-t0))
    else
        fail=$((fail+1)); failed+=("$name")
        printf 'FAIL %-40s %3ds\n' "$name" $((SECONDS-t0))
        sed 's/^/    | /' "$log" | tail -n 80
    fi
    rm -f "$log"
}

if [[ $what == all || $what == unit ]]; then
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "unit/$(basename "$t")" "$t"
    done
fi
if [[ $what == all || $what == integration ]]; then
    for t in tests/integration/*.sh; do
        [ -f "$t" ] || continue
        [[ $(basename "$t") == lib.sh ]] && continue
        [[ -n ${SWB_ONLY:-} && $t != *${SWB_ONLY}* ]] && continue
        tmp=$(mktemp -d /tmp/swb-it.XXXXXX)
        run_one "integration/$(basename "$t" .sh)" env SWB_TMP="$tmp" bash "$t"
        rm -rf "$tmp"
    done
fi
if [[ $what == all || $what == fuzz ]]; then
    if [ -x tests/fuzz/run.sh ]; then
        run_one "fuzz" tests/fuzz/run.sh
    fi
fi
echo "passed $pass, failed $fail"
((fail == 0)) || { printf 'failed: %s\n' "${failed[*]}"; exit 1; }
