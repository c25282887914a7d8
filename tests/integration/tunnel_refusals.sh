# The hub refuses, each with its reason logged: an unregistered agent, a
# registered id with another key, a disabled agent, a replayed handshake,
# junk and out-of-order frames (that connection only).  The agent refuses
# a hub whose certificate matches none of its pins, before sending a byte.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
new_agent good
GOOD_ID=$AGENT_ID; GOOD_KEY=$AGENT_KEY
write_agent_ini "$SWB_TMP/good.ini" "$GOOD_ID" "$GOOD_KEY"
"$AGENTD" -c "$SWB_TMP/good.ini" >"$SWB_TMP/good.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
wait_until 15 agent_online "$GOOD_ID" || fail "good agent not online"

run_agent() {	# NAME INI: start an agentd that should be refused
    "$AGENTD" -c "$2" >"$SWB_TMP/$1.log" 2>&1 &
    SWB_CLEANUP+=("kill $! 2>/dev/null")
}

# First, while only the good agent is connected, so the count of
# connections the hub sees is stable.
note "pinned key mismatch"
write_agent_ini "$SWB_TMP/pinned.ini" "$GOOD_ID" "$GOOD_KEY" "$(spki_pin "$SWB_TMP/certs/other.pem")"
sed -i "s|^state_dir = .*|state_dir = $SWB_TMP/pinned-state|" "$SWB_TMP/pinned.ini"
conns_before=$(grep -c "conn #" "$SWB_TMP/hub.log" || true)
run_agent pinned "$SWB_TMP/pinned.ini"
wait_until 5 grep -q "refusing the hub at 127.0.0.1:[0-9]*: its certificate key sha256//.* matches none of the 1 pinned key" "$SWB_TMP/pinned.log" \
    || fail "agent did not refuse an unpinned hub"
sleep 1
[ "$(grep -c "conn #" "$SWB_TMP/hub.log" || true)" = "$conns_before" ] || fail "a WebSocket was opened to an unpinned hub"
n=$(grep -c "refusing the hub" "$SWB_TMP/pinned.log")
[ "$n" -le 3 ] || fail "refusal logged $n times: a tight loop"

note "unregistered key"
"$AGENTD" keygen -o "$SWB_TMP/stranger.key" >/dev/null
write_agent_ini "$SWB_TMP/stranger.ini" 4242 "$SWB_TMP/stranger.key"
run_agent stranger "$SWB_TMP/stranger.ini"
wait_until 5 grep -q "closing agent 4242 .*: unknown agent id 4242" "$SWB_TMP/hub.log" || fail "unknown agent not refused with a reason"

note "registered id, other key"
"$AGENTD" keygen -o "$SWB_TMP/thief.key" >/dev/null
write_agent_ini "$SWB_TMP/thief.ini" "$GOOD_ID" "$SWB_TMP/thief.key"
sed -i "s|^state_dir = .*|state_dir = $SWB_TMP/thief-state|" "$SWB_TMP/thief.ini"
run_agent thief "$SWB_TMP/thief.ini"
wait_until 5 grep -q "closing agent $GOOD_ID .*bad signature for agent $GOOD_ID 'good'" "$SWB_TMP/hub.log" \
    || fail "wrong key not refused with a reason"
agent_online "$GOOD_ID" || fail "the real agent was dropped by the impostor"

note "disabled agent"
new_agent lazy
write_agent_ini "$SWB_TMP/lazy.ini" "$AGENT_ID" "$AGENT_KEY"
ctl agent disable "$AGENT_ID" >/dev/null
run_agent lazy "$SWB_TMP/lazy.ini"
wait_until 5 grep -q "agent $AGENT_ID 'lazy' is disabled" "$SWB_TMP/hub.log" || fail "disabled agent not refused"
agent_online "$AGENT_ID" && fail "disabled agent is online"

note "replayed handshake"
SWARM=$SWB_BIN/tests/tools/swarm
"$SWARM" keygen 3 "$SWB_TMP/mis.keys"
: >"$SWB_TMP/mis.ids"
i=0
while read -r pk sk; do
    i=$((i+1))
    id=$(ctl --json agent add "mis$i" "$pk" | jq -r .id)
    echo "$id $sk" >"$SWB_TMP/mis$i.ids"
    eval "MIS$i=$id"
done <"$SWB_TMP/mis.keys"
"$SWARM" run -c "$SWB_TMP/good.ini" "$SWB_TMP/mis1.ids" replay >"$SWB_TMP/replay.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
wait_until 8 grep -q "closing agent $MIS1 .*replayed handshake: nonce was issued to connection #" "$SWB_TMP/hub.log" \
    || fail "replayed handshake not refused as a replay"
grep -q "TEST: replaying the first handshake" "$SWB_TMP/replay.log" || fail "the replay did not happen"

note "junk and out-of-order frames close that connection only"
"$SWARM" run -c "$SWB_TMP/good.ini" "$SWB_TMP/mis2.ids" junk >"$SWB_TMP/junk.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
"$SWARM" run -c "$SWB_TMP/good.ini" "$SWB_TMP/mis3.ids" order >"$SWB_TMP/order.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
wait_until 8 grep -q "closing agent $MIS2 .*malformed frame" "$SWB_TMP/hub.log" || fail "junk frame not refused"
wait_until 8 grep -q "closing agent $MIS3 .*out-of-order auth frame" "$SWB_TMP/hub.log" || fail "out-of-order frame not refused"
agent_online "$GOOD_ID" || fail "good agent dropped"
[ "$(status_json | jq '.children[] | select(.name=="tunnel") | .restarts')" = 0 ] || fail "tunnel process crashed"

echo OK
