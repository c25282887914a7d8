#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets in tests/fuzz/ with clang
# (ASan + UBSan) into build/fuzz/ and runs each for a bounded time.
#
#   tests/fuzz/run.sh [TARGET...]  build and fuzz every target (or those
#                              named) for FUZZ_SECONDS (default 15) each,
#                              FUZZ_JOBS (default 2) at a time
#   tests/fuzz/run.sh seeds    rebuild the seed generators and rewrite the
#                              generated seeds in tests/fuzz/corpus/<target>/
#                              (targets whose source has a FUZZ_SEEDGEN main;
#                              the others keep hand-written seed files)
#
# Each run fuzzes a fresh working copy of tests/fuzz/corpus/<target>/ in
# build/fuzz/work/<target>/, so the committed corpus stays a few small
# seeds.  A crash, leak, UB report or timeout leaves the reproducer in
# build/fuzz/artifacts/<target>/ and makes the script exit non-zero; the
# target's log is build/fuzz/<target>.log (its tail is printed on failure).
#
# Adding a target: tests/fuzz/fuzz_<name>.c, a seed directory
# tests/fuzz/corpus/<name>/, and a line in `sources` below.
set -euo pipefail
cd "$(dirname "$0")/../.."

jobs=${FUZZ_JOBS:-2}
cc=${FUZZ_CC:-clang}
out=build/fuzz

# target -> the library sources it links (besides tests/fuzz/fuzz_<target>.c)
declare -A sources=(
	[frame]="lib/frame.c lib/log.c"
	[h1p]="gateway/gw_h1p.c"
	[sse]="lib/sse.c"
	[usage]="lib/usage.c lib/evstream.c lib/jscan.c"
	[msg]="lib/msg.c lib/ipc.c lib/clock.c lib/str.c"
	[xlate]="$(echo xlate/*.c) lib/evstream.c -ljansson"
	[gtoken]="agent/ag_token.c -ljansson -lcrypto -lsodium"
	[evstream]="lib/evstream.c"
	[sigv4]="agent/ag_sigv4.c -lcrypto"
	[ws]="gateway/gw_ws.c -lcrypto"
	[route]="gateway/gw_route.c gateway/gw_body.c lib/jscan.c lib/tokest.c lib/str.c -ljansson"
	[hello]="gateway/gw_hello.c"
	[jscan]="lib/jscan.c"
)
secs=${FUZZ_SECONDS:-$(( ${FUZZ_TOTAL:-90} / ${#sources[@]} ))}
# pkg-config modules every target may need
pkgs="msgpack jansson"

cflags=(-std=c17 -D_GNU_SOURCE -g -O1 -I. -Wall -Wextra -Werror
	-fno-omit-frame-pointer)
read -r -a pkgflags <<<"$(pkg-config --cflags --libs $pkgs)"

build_target() {
	local t=$1
	# shellcheck disable=SC2086
	"$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined \
	    "tests/fuzz/fuzz_$t.c" ${sources[$t]} "${pkgflags[@]}" \
	    -o "$out/fuzz_$t"
}

seeds() {
	local t
	for t in "${!sources[@]}"; do
		grep -q FUZZ_SEEDGEN "tests/fuzz/fuzz_$t.c" || continue
		# shellcheck disable=SC2086
		"$cc" "${cflags[@]}" -DFUZZ_SEEDGEN -fsanitize=address,undefined \
		    -fno-sanitize-recover=undefined \
		    "tests/fuzz/fuzz_$t.c" ${sources[$t]} "${pkgflags[@]}" \
		    -o "$out/fuzz_$t-seedgen"
		rm -rf "tests/fuzz/corpus/$t"
		mkdir -p "tests/fuzz/corpus/$t"
		"$out/fuzz_$t-seedgen" "tests/fuzz/corpus/$t"
		echo "seeds for $t: $(ls "tests/fuzz/corpus/$t" | wc -l) files"
	done
}

# fuzz_one TARGET: build and run one target, output in its log; exit status.
fuzz_one() {
	local t=$1 work=$out/work/$1 art=$out/artifacts/$1
	local dict=()
	build_target "$t" || return 1
	rm -rf "$work"
	mkdir -p "$work" "$art"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp -R "tests/fuzz/corpus/$t/." "$work/"
	fi
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$out/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix="$art/" "$work"
}

mkdir -p "$out"
if [[ ${1:-} == seeds ]]; then
	seeds
	exit 0
fi

if [ $# -gt 0 ]; then
	targets=("$@")
else
	mapfile -t targets < <(printf '%s\n' "${!sources[@]}" | sort)
fi
for t in "${targets[@]}"; do
	[ -n "${sources[$t]:-}" ] || { echo "unknown fuzz target: $t" >&2; exit 2; }
done

status=0
declare -A pid_of=()
# finish T: wait for one running target and report it.
finish() {
	local t=$1
	if wait "${pid_of[$t]}"; then
		echo "== fuzz_$t: ok ($(ls "$out/work/$t" | wc -l) inputs; $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | awk '{print $2}') runs)"
	else
		echo "== fuzz_$t: FAILED; log $out/$t.log, reproducer(s) in $out/artifacts/$t/:" >&2
		tail -n 40 "$out/$t.log" >&2 || true
		ls -l "$out/artifacts/$t" >&2 || true
		status=1
	fi
	unset "pid_of[$t]"
}
running=()
for t in "${targets[@]}"; do
	if [ "${#running[@]}" -ge "$jobs" ]; then
		finish "${running[0]}"
		running=("${running[@]:1}")
	fi
	echo "== fuzz_$t: building and running for ${secs}s"
	fuzz_one "$t" >"$out/$t.log" 2>&1 &
	pid_of[$t]=$!
	running+=("$t")
done
for t in "${running[@]}"; do
	finish "$t"
done
exit $status
