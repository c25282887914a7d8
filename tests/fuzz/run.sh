#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets in tests/fuzz/ with clang
# (ASan + UBSan) into build/fuzz/ and runs each for a bounded time.
#
#   tests/fuzz/run.sh          build and fuzz every target for FUZZ_SECONDS
#                              (default 30) each
#   tests/fuzz/run.sh seeds    rebuild the seed generator and rewrite the
#                              committed seeds in tests/fuzz/corpus/<target>/
#
# Each run fuzzes a fresh working copy of tests/fuzz/corpus/<target>/ in
# build/fuzz/work/<target>/, so the committed corpus stays a few small
# seeds.  A crash, leak, UB report or timeout leaves the reproducer in
# build/fuzz/artifacts/<target>/ and makes the script exit non-zero.
#
# Adding a target: tests/fuzz/fuzz_<name>.c, a seed directory
# tests/fuzz/corpus/<name>/, and a line in `sources` below.
set -euo pipefail
cd "$(dirname "$0")/../.."

cc=${FUZZ_CC:-clang}
out=build/fuzz

# target -> the library sources it links (besides tests/fuzz/fuzz_<target>.c)
declare -A sources=(
	[frame]="lib/frame.c lib/log.c"
	[h1p]="gateway/gw_h1p.c"
	[xlate]="xlate/xl.c xlate/xl_oa_an.c xlate/xl_an_oa.c xlate/xl_oa_cv.c xlate/xl_an_br.c lib/evstream.c -ljansson"
	[evstream]="lib/evstream.c"
	[sigv4]="agent/ag_sigv4.c -lcrypto"
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

mkdir -p "$out"
if [[ ${1:-} == seeds ]]; then
	seeds
	exit 0
fi

status=0
for t in "${!sources[@]}"; do
	echo "== fuzz_$t: building"
	build_target "$t"
	work=$out/work/$t
	art=$out/artifacts/$t
	rm -rf "$work"
	mkdir -p "$work" "$art"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp -R "tests/fuzz/corpus/$t/." "$work/"
	fi
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	echo "== fuzz_$t: running for ${secs}s"
	if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
	    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$out/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix="$art/" "$work"; then
		echo "== fuzz_$t: ok ($(ls "$work" | wc -l) inputs in $work)"
	else
		echo "== fuzz_$t: FAILED; reproducer(s) in $art/:" >&2
		ls -l "$art" >&2 || true
		status=1
	fi
done
exit $status
