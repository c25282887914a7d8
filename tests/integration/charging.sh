# Charging tokens' quota through the real stack: each request reserves its
# estimate and then costs exactly what its usage says at the model's price
# (used = sum over requests of round(in*price_in) + round(out*price_out));
# a token out of quota gets 429 insufficient_quota; a user who leaves
# mid-stream before the usage chunk is billed once, by the cut-stream rule
# (none stays 'reserved' or 'awaiting'); many concurrent requests on one
# token never take it past its quota.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 4 --delay-ms 5
start_agent charge1
GW=$(gw_url)
# Large prices (units per 1,000,000 tokens) so a few tokens cost visible
# micro-units: 1000 -> 1e9 micro-units per Mtok = 1000 micro-units a token.
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
PIN=1000000000 POUT=2000000000
cost() { echo $(( ($1 * PIN + 500000) / 1000000 + ($2 * POUT + 500000) / 1000000 )); }
BODY='{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hello world!"}]}'
chat() {	# TOKEN OUTFILE [curl args]: prints the status
    local tok=$1 out=$2; shift 2
    curl -sN -o "$out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $tok" -H 'content-type: application/json' "$@"
}

note "each request costs exactly its usage; out of quota: 429"
TOK=$(ctl token create --name quota1 --quota 0.1)
expect=0 n=0
while :; do
    st=$(chat "$TOK" "$SWB_TMP/out" -d "$BODY")
    if [ "$st" = 429 ]; then
        [ "$(jq -r .error.code "$SWB_TMP/out")" = insufficient_quota ] || fail "429 body: $(cat "$SWB_TMP/out")"
        [ "$(jq -r .error.type "$SWB_TMP/out")" = insufficient_quota ] || fail "429 type: $(cat "$SWB_TMP/out")"
        break
    fi
    [ "$st" = 200 ] || fail "status $st: $(cat "$SWB_TMP/out")"
    in=$(jq -r .usage.prompt_tokens "$SWB_TMP/out")
    outt=$(jq -r .usage.completion_tokens "$SWB_TMP/out")
    expect=$((expect + $(cost "$in" "$outt")))
    n=$((n + 1))
    wait_until 5 used_is quota1 "$expect" || fail "after $n requests used is $(used_of quota1), expected $(fmt $expect)"
    ((n < 50)) || fail "the quota never ran out"
done
echo "quota1: $n requests charged, used $(used_of quota1) of 0.1"
((n >= 2)) || fail "only $n requests fit in the quota"
((expect <= 100000)) || fail "used $expect is past the quota"
sleep 0.3
used_is quota1 "$expect" || fail "the refused request changed used: $(used_of quota1)"

note "streams are charged from their usage chunk"
TOK2=$(ctl token create --name stream1 --quota 10)
SB='{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":4,"messages":[{"role":"user","content":"a somewhat longer prompt here"}]}'
[ "$(chat "$TOK2" "$SWB_TMP/out" -d "$SB")" = 200 ] || fail "stream status"
u=$(sed -n 's/^data: //p' "$SWB_TMP/out" | grep '"choices":\[\]')
e2=$(cost "$(jq -r .usage.prompt_tokens <<<"$u")" "$(jq -r .usage.completion_tokens <<<"$u")")
wait_until 5 used_is stream1 "$e2" || fail "stream: used $(used_of stream1), expected $(fmt $e2)"

note "a user who leaves mid-stream is billed once, by the cut-stream rule"
# The hub never sees the usage chunk: the charge awaits the agent's own
# report (its usage_estimate_cut of what it received) and is posted from
# it, or from the hub's estimate after [billing] report_grace.
AB='{"model":"gpt-4o","stream":true,"max_tokens":4,"messages":[{"role":"user","content":"x [mock delay=400]"}]}'
curl -sN -m 0.6 -o /dev/null "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK2" -d "$AB" || true
open_rows() { sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state IN ('reserved', 'awaiting')"; }
none_open() { [ "$(open_rows)" = 0 ]; }
wait_until 15 none_open || fail "the abort's charge is still open"
TID2=$(ctl --json token list | jq -r '.tokens[] | select(.name=="stream1") | .id')
billed=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COALESCE(SUM(amount), 0) FROM charges WHERE token_id = $TID2 AND state = 'posted'")
nposted=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE token_id = $TID2 AND state = 'posted'")
[ "$nposted" = 2 ] || fail "abort: $nposted posted charges on the token, expected the stream and the abort"
((billed >= e2)) || fail "abort: billed $billed < the stream's $e2"
used_is stream1 "$billed" || fail "abort: used $(used_of stream1), expected $(fmt "$billed")"
sleep 1
used_is stream1 "$billed" || fail "abort: billed twice: used $(used_of stream1)"

note "concurrent requests on one token never pass its quota"
TOK3=$(ctl token create --name conc1 --quota 0.15)
pids=()
for i in $(seq 1 20); do
    chat "$TOK3" "$SWB_TMP/c$i" -d "$BODY" >"$SWB_TMP/c$i.st" &
    pids+=($!)
done
wait "${pids[@]}"
ok=0 refused=0 e3=0
for i in $(seq 1 20); do
    case $(cat "$SWB_TMP/c$i.st") in
    200) ok=$((ok + 1))
         e3=$((e3 + $(cost "$(jq -r .usage.prompt_tokens "$SWB_TMP/c$i")" "$(jq -r .usage.completion_tokens "$SWB_TMP/c$i")"))) ;;
    429) refused=$((refused + 1)) ;;
    *) fail "concurrent request $i: $(cat "$SWB_TMP/c$i.st") $(cat "$SWB_TMP/c$i")" ;;
    esac
done
echo "concurrent: $ok answered, $refused refused, used $(fmt $e3) of 0.15"
((ok >= 1 && refused >= 1)) || fail "expected both answers and refusals"
((e3 <= 150000)) || fail "used $e3 is past the quota"
wait_until 5 used_is conc1 "$e3" || fail "concurrent: used $(used_of conc1), expected $(fmt $e3)"
[ "$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state = 'reserved'")" = 0 ] \
    || fail "a reservation was left dangling"
echo "charging: ok"
