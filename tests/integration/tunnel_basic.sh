# A registered agentd connects, shows in `hubctl agents` within 2 s with its
# channel, `hubctl send` round-trips, `hubctl kick` drops it until its
# back-off ends, and it never sends its provider key to the hub.  Its
# connection's TCP segments are at most 16 KB each way.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
new_agent alice
write_agent_ini "$SWB_TMP/agentd.ini" "$AGENT_ID" "$AGENT_KEY"
"$AGENTD" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
t0=$(date +%s%N)
wait_until 15 agent_online "$AGENT_ID" || fail "agent not online within 15 s"
echo "online after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
row=$(ctl --json agents | jq -c --argjson id "$AGENT_ID" '.agents[] | select(.id==$id)')
[ "$(jq -r .name <<<"$row")" = alice ] || fail "wrong name: $row"
[ "$(jq -r .address <<<"$row")" = 127.0.0.1 ] || fail "wrong address: $row"
wait_until 2 test "$(ctl --json agents | jq '.agents[0].channels')" = 1 || fail "channel not announced"
ctl agents | grep -E "^$AGENT_ID +alice +127.0.0.1 " >/dev/null || fail "human listing lacks the agent"

note "segments of at most 16 KB both ways, on loopback too"
# (a 64 KB segment does not fit a busy agent's window: 200 ms stalls)
tport=$(status_json | jq -r .listen.tunnel | sed 's/.*://')
for side in dport sport; do
    mss=$(ss -tniH state established "( $side = :$tport )" | grep -o ' mss:[0-9]*' | head -1 | cut -d: -f2)
    [ -n "$mss" ] && [ "$mss" -le 16384 ] || fail "tunnel connection ($side $tport): mss ${mss:-not found}, want at most 16384"
done

note "send round-trips"
out=$(ctl send "$AGENT_ID" "ping through the pipe")
[ "$out" = "ping through the pipe" ] || fail "echo came back as '$out'"
out=$(ctl --json send "$AGENT_ID" 'quotes " and ünïcode')
[ "$(jq -r .message <<<"$out")" = 'quotes " and ünïcode' ] || fail "echo mangled: $out"
if ctl send 999 hi 2>"$SWB_TMP/err"; then fail "send to an offline agent succeeded"; fi
grep -q "agent 999 is not online" "$SWB_TMP/err" || fail "unclear error for an offline agent"

note "heartbeats keep it up"
hb1=$(ctl --json agents | jq '.agents[0].last_heartbeat_ms')
sleep 1.5
hb2=$(ctl --json agents | jq '.agents[0].last_heartbeat_ms')
[ "$hb2" -gt "$hb1" ] || fail "last heartbeat did not move ($hb1 -> $hb2)"

note "kick"
since1=$(ctl --json agents | jq '.agents[0].since_ms')
ctl kick "$AGENT_ID" | grep -q kicked || fail "kick not acknowledged"
wait_until 2 grep -q "kicked by the hub" "$SWB_TMP/agent.log" || fail "agent did not log the kick"
wait_until 15 agent_online "$AGENT_ID" || fail "agent did not come back after its back-off"
since2=$(ctl --json agents | jq '.agents[0].since_ms')
[ "$since2" -gt "$since1" ] || fail "agent did not reconnect (since unchanged)"
grep -q "closing agent $AGENT_ID .*kicked by the operator" "$SWB_TMP/hub.log" || fail "kick not logged by the hub"

note "the provider key stays on the agent's host"
! grep -rq "sk-test-provider-key" "$SWB_TMP/hub.log" "$SWB_TMP/hubd.db"* || fail "provider key reached the hub"
echo OK
