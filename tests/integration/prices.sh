#!/usr/bin/env bash
# tests/integration/prices: `hubctl price set|list` against a real hubd on
# SQLite.  Amounts are exact decimals per 1,000,000 tokens (no floating
# point): 2.5 lists as 2.500000, 0.000001 is the smallest, finer, negative
# or non-numeric amounts are refused by hubctl and by billing alike; each
# set is a new version; the prices survive a restart of the hub.
source "$(dirname "$0")/lib.sh"
ini=$SWB_TMP/hubd.ini
write_hub_ini "$ini"
start_hub "$ini"

note "empty list"
[ "$(ctl --json price list | jq '.prices | length')" = 0 ] || fail "prices not empty at start"

note "price set"
out=$(ctl price set gpt-4o --input 2.5 --output 10 --cached-input 1.25) || fail "price set gpt-4o"
grep -q "gpt-4o: prices version 1" <<<"$out" || fail "set answer: $out"
ctl price set tiny --input 0.000001 --output 0 >/dev/null || fail "0.000001 refused"
j=$(ctl --json price set big --input 9223372036854.775807 --output 0.1 --cache-write 3) || fail "INT64_MAX refused"
[ "$(jq -r .input <<<"$j")" = 9223372036854.775807 ] || fail "big input: $j"
# jq reads numbers as doubles: check the int64 in the raw text.
grep -q '"input_micros": 9223372036854775807,' <<<"$j" || fail "big input micros: $j"
[ "$(jq -r .version <<<"$j")" = 1 ] || fail "big version: $j"

note "price list --json: micro-units and decimals"
list() { ctl --json price list; }
row() { list | jq -c --arg m "$1" '.prices[] | select(.model==$m)'; }
r=$(row gpt-4o)
[ "$(jq -r '[.version, .input, .input_micros, .output, .output_micros, .cached_input, .cached_input_micros, .cache_write, .cache_write_micros] | @tsv' <<<"$r")" = \
  "$(printf '1\t2.500000\t2500000\t10.000000\t10000000\t1.250000\t1250000\t0.000000\t0')" ] || fail "gpt-4o row: $r"
r=$(row tiny)
[ "$(jq -r '[.input, .input_micros] | @tsv' <<<"$r")" = "$(printf '0.000001\t1')" ] || fail "tiny row: $r"
[ "$(jq -r .cache_write_micros <<<"$(row big)")" = 3000000 ] || fail "big cache_write"
jq -e '.created_at > 0' <<<"$(row gpt-4o)" >/dev/null || fail "created_at missing"

note "price list for people: aligned columns, exact decimals"
ctl price list >"$SWB_TMP/list.txt" || fail "price list"
cat "$SWB_TMP/list.txt"
head -1 "$SWB_TMP/list.txt" | grep -q "^MODEL  *VERSION  *INPUT  *OUTPUT  *CACHED_INPUT  *CACHE_WRITE" || fail "header"
grep -Eq '^gpt-4o +1 +2\.500000 +10\.000000 +1\.250000 +0\.000000 ' "$SWB_TMP/list.txt" || fail "gpt-4o line"
grep -Eq '^tiny +1 +0\.000001 +0\.000000 ' "$SWB_TMP/list.txt" || fail "tiny line"
grep -q '9223372036854.775807' "$SWB_TMP/list.txt" || fail "big line"
# The OUTPUT column is right-aligned: it ends at one place on every line.
cols=$(grep -E '^(MODEL|gpt-4o|tiny|big) ' "$SWB_TMP/list.txt" | awk '{ print index($0, $4) + length($4) }' | sort -u | wc -l)
[ "$cols" = 1 ] || fail "OUTPUT column not right-aligned"

note "refusals: hubctl itself, with a clear message and non-zero exit"
refuse() {
    local what=$1; shift
    if ctl price set gpt-4o "$@" >"$SWB_TMP/out" 2>"$SWB_TMP/err"; then fail "accepted $what"; fi
    grep -qF -e "$what" "$SWB_TMP/err" || fail "refusal of $what unclear: $(cat "$SWB_TMP/err")"
}
refuse "'0.0000001' is not an amount" --input 0.0000001 --output 1
refuse "'-1' is not an amount" --input -1 --output 1
refuse "'abc' is not an amount" --input 1 --output abc
refuse "'1e3' is not an amount" --input 1e3 --output 1
refuse "'9223372036854.775808' is not an amount" --input 9223372036854.775808 --output 1
refuse "'' is not an amount" --input "" --output 1
refuse "usage: price set" --input 1
refuse "unexpected '--bogus'" --input 1 --output 1 --bogus 2
if ctl price set >/dev/null 2>&1; then fail "price set without a model"; fi

note "refusals by billing itself (a client that skips hubctl's checks)"
# admin_raw ARGS...: one IPC_ADMIN_REQ (type 5, argv NUL-separated) straight
# to the admin socket; prints the JSON answer.  Header: u32 len, u16 type,
# u8 version 1, u8 flags, u64 reqid, host (little-endian) order.
admin_raw() {
    node -e '
const net = require("net");
const body = Buffer.concat(process.argv.slice(2).map(a => Buffer.from(a + "\0")));
const h = Buffer.alloc(16); h.writeUInt32LE(body.length, 0); h.writeUInt16LE(5, 4); h.writeUInt8(1, 6);
const c = net.connect(process.argv[1]); let got = Buffer.alloc(0);
c.on("connect", () => c.write(Buffer.concat([h, body])));
c.on("data", d => { got = Buffer.concat([got, d]);
  if (got.length >= 16 && got.length >= 16 + got.readUInt32LE(0)) {
    process.stdout.write(got.subarray(16, 16 + got.readUInt32LE(0)).toString().replace(/\0+$/, "") + "\n"); c.end(); } });
' "$SWB_TMP/run/hubd.sock" "$@"
}
braw() {
    local what=$1; shift
    local a; a=$(admin_raw price set gpt-4o "$@")
    jq -e '.ok == false' <<<"$a" >/dev/null || fail "billing accepted $what: $a"
    grep -qF -e "$what" <<<"$a" || fail "billing refusal of $what unclear: $a"
}
admin_raw price list | jq -e '.ok == true' >/dev/null || fail "raw admin client broken"
braw "'0.0000001' is not an amount" --input 0.0000001 --output 1
braw "'-1' is not an amount" --input 1 --output -1
braw "'abc' is not an amount" --input abc --output 1
braw "'9223372036854.775808' is not an amount" --input 9223372036854.775808 --output 1
braw "--input and --output are required" --input 1
braw "--cache-write needs an amount" --input 1 --output 1 --cache-write
braw "unknown option '--bogus'" --input 1 --output 1 --bogus 1
if ctl price frobnicate >/dev/null 2>"$SWB_TMP/err"; then fail "price frobnicate accepted"; fi
grep -q "usage: price set MODEL" "$SWB_TMP/err" || fail "billing usage: $(cat "$SWB_TMP/err")"
if ctl price set "bad model" --input 1 --output 1 >/dev/null 2>"$SWB_TMP/err"; then fail "model with a space accepted"; fi
grep -q "model name must be" "$SWB_TMP/err" || fail "bad model message: $(cat "$SWB_TMP/err")"
[ "$(row gpt-4o | jq .version)" = 1 ] || fail "a refusal wrote a version"

note "set again: version 2 is listed"
out=$(ctl price set gpt-4o --input 2 --output 8) || fail "second set"
grep -q "prices version 2" <<<"$out" || fail "second set answer: $out"
r=$(row gpt-4o)
[ "$(jq -r '[.version, .input, .output, .cached_input] | @tsv' <<<"$r")" = "$(printf '2\t2.000000\t8.000000\t0.000000')" ] || fail "version 2 row: $r"
[ "$(list | jq '.prices | length')" = 3 ] || fail "one row per model"

note "prices survive a restart"
ctl stop >/dev/null
rc=0; wait "$HUB_PID" || rc=$?
[ $rc = 0 ] || fail "hubd exited $rc after hubctl stop"
HUB_PID=
start_hub "$ini"
r=$(row gpt-4o)
[ "$(jq -r '[.version, .input_micros, .output_micros] | @tsv' <<<"$r")" = "$(printf '2\t2000000\t8000000')" ] || fail "after restart: $r"
ctl --json price list | grep -q '"input_micros": 9223372036854775807,' || fail "big after restart"
out=$(ctl price set gpt-4o --input 3 --output 9) || fail "third set"
grep -q "prices version 3" <<<"$out" || fail "version after restart: $out"
echo "prices: ok"
