# A frozen agent.  Two agents serve the same model; the one relaying a slow
# stream is stopped with SIGSTOP (its connection stays open but silent).
# Within heartbeat_timeout (+ a ping period) the hub marks it down, ends
# its in-flight stream with an error event ("code":"agent_lost") and routes
# a new request to the other agent.  After SIGCONT the first agent
# reconnects and serves again.
source "$(dirname "$0")/lib.sh"
SWB_HB=500ms SWB_HB_TIMEOUT=2s hub_with_tunnel
start_mock --chunks 2 --delay-ms 0
start_agent one
ONE=$AGENT_ID ONE_PID=$AG_PID
start_agent two
TWO=$AGENT_ID TWO_PID=$AG_PID
GW=$(gw_url)
TOKEN=$(ctl token create)
LOG=$SWB_TMP/hub.log
SWB_CLEANUP+=("kill -CONT $ONE_PID $TWO_PID")

chat() {	# chat TEXT STREAM OUTFILE: one request; prints the status
    curl -sN -m 60 -o "$3" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOKEN" \
        -d "{\"model\":\"gpt-4o\",\"stream\":$2,\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}"
}
relayed_to() { grep -o 'relaying to agent [0-9]*' "$LOG" | awk '{print $4}' | tail -n +"$(($1 + 1))"; }
count_relays() { grep -c 'relaying to agent' "$LOG" || true; }

note "a slow stream in flight"
r0=$(count_relays)
chat "slow [mock chunks=200 delay=200]" true "$SWB_TMP/stream" >"$SWB_TMP/stream.code" &
STREAM=$!
got_chunk() { grep -q 'tok1 ' "$SWB_TMP/stream"; }
wait_until 10 got_chunk || fail "the stream did not start: $(cat "$SWB_TMP/stream")"
FROZEN=$(relayed_to "$r0" | head -1)
if [ "$FROZEN" = "$ONE" ]; then FPID=$ONE_PID OTHER=$TWO; else FPID=$TWO_PID OTHER=$ONE; fi
[ "$FROZEN" = "$ONE" ] || [ "$FROZEN" = "$TWO" ] || fail "stream relayed to '$FROZEN'"

note "SIGSTOP agent $FROZEN"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(now_ms)
kill -STOP "$FPID"
frozen_down() { ! agent_online "$FROZEN"; }
stream_done() { ! kill -0 "$STREAM" 2>/dev/null; }
wait_until 6 frozen_down || fail "agent $FROZEN still online after SIGSTOP: $(ctl --json agents)"
down_ms=$(( $(now_ms) - t0 ))
wait_until 6 stream_done || fail "the stream of the frozen agent is still open"
end_ms=$(( $(now_ms) - t0 ))
echo "marked down after $down_ms ms, stream ended after $end_ms ms (heartbeat_timeout 2000 ms)"
grep -q "missed heartbeats" "$LOG" || fail "no heartbeat timeout logged"
# heartbeat_timeout, plus a tick of the tunnel and the test's own polling
# (hubctl under a sanitizer); without the fix it is twice the timeout.
(( down_ms <= 2000 + 1500 )) || fail "marked down only after $down_ms ms"
(( end_ms <= 2000 + 1500 )) || fail "its stream ended only after $end_ms ms"
agent_online "$OTHER" || fail "the other agent went down too"

note "its stream ended with an agent_lost error event"
wait "$STREAM" || true
[ "$(cat "$SWB_TMP/stream.code")" = 200 ] || fail "stream status $(cat "$SWB_TMP/stream.code")"
grep '^data: ' "$SWB_TMP/stream" | tail -3
grep -q '"code":"agent_lost"' "$SWB_TMP/stream" || fail "no agent_lost event: $(tail -c 400 "$SWB_TMP/stream")"
! grep -q '^data: \[DONE\]' "$SWB_TMP/stream" || fail "a cut stream must not end with [DONE]"

note "new requests go to the other agent"
r1=$(count_relays)
for i in 1 2 3; do
    code=$(chat "after $i" false "$SWB_TMP/out")
    [ "$code" = 200 ] || fail "request $i while one agent is frozen: $code $(cat "$SWB_TMP/out")"
done
[ "$(relayed_to "$r1" | sort -u)" = "$OTHER" ] || fail "requests went to: $(relayed_to "$r1" | tr '\n' ' ')"

note "SIGCONT: the frozen agent reconnects and serves again"
kill -CONT "$FPID"
wait_until 15 agent_online "$FROZEN" || fail "agent $FROZEN did not reconnect"
kill -0 "$FPID" || fail "agent $FROZEN exited"
has_chan() { ctl --json channels | jq -e --argjson id "$FROZEN" '.channels[] | select(.agent_id==$id)' >/dev/null; }
wait_until 5 has_chan || fail "agent $FROZEN announced no channel after reconnecting"
r2=$(count_relays)
served=0
for i in $(seq 20); do
    code=$(chat "back $i" false "$SWB_TMP/out")
    [ "$code" = 200 ] || fail "request $i after SIGCONT: $code $(cat "$SWB_TMP/out")"
    if relayed_to "$r2" | grep -qx "$FROZEN"; then served=1; break; fi
done
[ $served = 1 ] || fail "the reconnected agent got no traffic"
echo OK
