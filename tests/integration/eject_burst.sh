# Ejection reacts to a channel, not to a burst.  The only channel's
# provider answers 500 to 16 parallel requests: the channel is ejected
# once, for the first cool-down (5 s), not once per three failures with a
# doubling cool-down each time.  While it cools a trickle of probes gets
# through (one per second): a probe that succeeds puts the channel back
# in service at once (and the next burst gets the first cool-down again);
# a probe that fails leaves the cool-down as it was, and the next request
# within the second is refused.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 2 --delay-ms 0
start_agent solo
SOLO=$AGENT_ID
GW=$(gw_url)
TOKEN=$(ctl token create)
LOG=$SWB_TMP/hub.log

chat() {	# chat TEXT OUTFILE: one request; prints the status
    curl -s -o "$2" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOKEN" \
        -d "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}"
}
chan() { ctl --json channels | jq -c --argjson id "$SOLO" '.channels[] | select(.agent_id==$id)'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

note "healthy first"
[ "$(chat hi "$SWB_TMP/out")" = 200 ] || fail "first request: $(cat "$SWB_TMP/out")"

note "a burst of 16 parallel requests answered 500 by the provider"
t0=$(now_ms)
pids=()
for i in $(seq 16); do
    chat "burst $i [mock status=500 delay=1500]" "$SWB_TMP/burst.$i" >"$SWB_TMP/code.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq 16); do
    [ "$(cat "$SWB_TMP/code.$i")" = 500 ] || fail "burst request $i: $(cat "$SWB_TMP/code.$i") $(cat "$SWB_TMP/burst.$i")"
done
c=$(chan)
echo "after the burst: $c"
n=$(grep -c "(agent $SOLO) failed 3 times in a row: ejected" "$LOG" || true)
[ "$n" = 1 ] || fail "the burst ejected the channel $n times (expected once)"
grep -q "(agent $SOLO) failed 3 times in a row: ejected for 5000 ms" "$LOG" ||
    fail "the first cool-down is not 5000 ms: $(grep ejected "$LOG")"
echo "$c" | jq -e '.ejected == true and .ejections == 1 and .err == 16' >/dev/null ||
    fail "channel after the burst: $c"
until1=$(echo "$c" | jq .ejected_until_ms)
(( until1 - t0 <= 5000 + 4000 )) || fail "cool-down ends $((until1 - t0)) ms after the burst began"

note "while cooling, a probe that succeeds puts the channel back in service"
code=$(chat "healthy probe" "$SWB_TMP/out")
[ "$code" = 200 ] || fail "healthy probe while cooling: $code $(cat "$SWB_TMP/out")"
# Logged only when the success ends a cool-down that was still running.
grep -q "(agent $SOLO): probe succeeded, back in service" "$LOG" ||
    fail "the request after the burst was no probe: $(chan)"
chan | jq -e '.ejected == false and .ejections == 0 and .err_streak == 0' >/dev/null ||
    fail "not back in service after a good probe: $(chan)"
for i in $(seq 5); do
    code=$(chat "after $i" "$SWB_TMP/out")
    [ "$code" = 200 ] || fail "request $i after re-admission: $code $(cat "$SWB_TMP/out")"
done

note "a second burst after a success: the first cool-down again, not a doubled one"
pids=()
for i in $(seq 16); do
    chat "again $i [mock status=500 delay=1500]" "$SWB_TMP/burst.$i" >"$SWB_TMP/code.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
[ "$(grep -c "(agent $SOLO) failed 3 times in a row: ejected for 5000 ms" "$LOG")" = 2 ] ||
    fail "second burst: $(grep 'ejected for' "$LOG")"
chan | jq -e '.ejected == true and .ejections == 1' >/dev/null || fail "after the second burst: $(chan)"

note "while cooling: one failing probe gets through, the next is refused, the cool-down stands"
code=$(chat "probe [mock status=500]" "$SWB_TMP/out")
[ "$code" = 500 ] || fail "probe while cooling: $code $(cat "$SWB_TMP/out") (expected the provider's 500)"
code=$(chat "second" "$SWB_TMP/out")
[ "$code" = 503 ] && jq -e '.error.code == "no_channel_available"' "$SWB_TMP/out" >/dev/null ||
    fail "a second request within the probe interval: $code $(cat "$SWB_TMP/out")"
[ "$(grep -c "(agent $SOLO) failed 3 times in a row: ejected" "$LOG")" = 2 ] ||
    fail "a failed probe ejected again: $(grep 'ejected for' "$LOG")"
[ "$(grep -c "(agent $SOLO): probe succeeded" "$LOG")" = 1 ] || fail "a failed probe re-admitted"
chan | jq -e '.ejections == 1' >/dev/null || fail "a failed probe changed the repeat count: $(chan)"
echo OK
