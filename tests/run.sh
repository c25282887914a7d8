#!/usr/bin/env bash
# Runs the test suite against one build directory.
#   tests/run.sh BUILD_DIR [unit|integration|fuzz|all]
# Unit tests are the cmocka binaries in BUILD_DIR/tests; integration tests
# are tests/integration/*.sh, each started with SWB_BIN=BUILD_DIR and a
# fresh SWB_TMP.  A failing test fails the run; every test is reported.
#
# Integration tests run SWB_JOBS (default 2) at a time, each on its own
# free ports and in its own SWB_TMP; the ones listed in `serial` below
# (they measure time, CPU or memory, or load the machine themselves) run
# alone afterwards.  SWB_ONLY=PATTERN runs the matching ones only.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
what=${2:-all}
jobs=${SWB_JOBS:-2}
export SWB_BIN=$PWD/$build
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
pass=0; fail=0; failed=()
serial=" tunnel_scale emfile slow_readers moderation limits backpressure \
ledger_faults_pg ledger_faults_sqlite http_hostile eject_burst agent_freeze e2e_openai "
t_start=$SECONDS

report() {	# NAME RC LOG SECONDS
    if [ "$2" = 0 ]; then
        pass=$((pass+1)); printf 'PASS %-40s %3ds\n' "$1" "$4"
    else
        fail=$((fail+1)); failed+=("$1")
        printf 'FAIL %-40s %3ds\n' "$1" "$4"
        # The failing assertions first: the tail below is mostly the
        # processes' logs, and a long test's failure scrolls out of it.
        grep -nE '✖|FAIL:|not ok|AssertionError|ERROR: AddressSanitizer|runtime error:' "$3" |
            head -n 20 | sed 's/^/    ! /'
        sed 's/^/    | /' "$3" | tail -n 80
    fi
    rm -f "$3"
}

run_one() {
    local name=$1; shift
    local log; log=$(mktemp /tmp/swb-test.XXXXXX)
    local t0=$SECONDS rc=0
    "$@" >"$log" 2>&1 || rc=$?
    report "$name" "$rc" "$log" $((SECONDS-t0))
}

# One integration test in the background: its result lands in a file.
declare -A bg_name=() bg_log=() bg_t0=() bg_tmp=()
start_bg() {
    local t=$1 name; name=integration/$(basename "$t" .sh)
    local tmp; tmp=$(mktemp -d /tmp/swb-it.XXXXXX)
    local log; log=$(mktemp /tmp/swb-test.XXXXXX)
    ( env SWB_TMP="$tmp" bash "$t" >"$log" 2>&1; echo $? >"$log.rc" ) &
    local pid=$!
    bg_name[$pid]=$name; bg_log[$pid]=$log; bg_t0[$pid]=$SECONDS; bg_tmp[$pid]=$tmp
}
reap_one() {	# wait for any background test, report it
    local pid
    wait -n -p pid 2>/dev/null || true
    [ -n "${pid:-}" ] && [ -n "${bg_name[$pid]:-}" ] || return 0
    local rc; rc=$(cat "${bg_log[$pid]}.rc" 2>/dev/null || echo 1)
    rm -f "${bg_log[$pid]}.rc"
    report "${bg_name[$pid]}" "$rc" "${bg_log[$pid]}" $((SECONDS-bg_t0[$pid]))
    rm -rf "${bg_tmp[$pid]}"
    unset "bg_name[$pid]" "bg_log[$pid]" "bg_t0[$pid]" "bg_tmp[$pid]"
}

if [[ $what == all || $what == unit ]]; then
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "unit/$(basename "$t")" "$t"
    done
fi
if [[ $what == all || $what == integration ]]; then
    later=()
    for t in tests/integration/*.sh; do
        [ -f "$t" ] || continue
        n=$(basename "$t" .sh)
        [[ $n == lib ]] && continue
        [[ -n ${SWB_ONLY:-} && $t != *${SWB_ONLY}* ]] && continue
        if [[ $serial == *" $n "* || $jobs -le 1 ]]; then
            later+=("$t")
            continue
        fi
        while ((${#bg_name[@]} >= jobs)); do reap_one; done
        start_bg "$t"
    done
    while ((${#bg_name[@]} > 0)); do reap_one; done
    for t in "${later[@]}"; do
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
echo "suite time: $((SECONDS - t_start)) s"
echo "$pass passed, $fail failed"
((fail == 0)) || { printf 'failed: %s\n' "${failed[*]}"; exit 1; }
