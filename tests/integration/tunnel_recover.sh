# The tunnel process killed with -9 is restarted by the master and the
# agent reconnects; a restarted hub gets its agent back by itself.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
# Pin the tunnel to the port it got, so a restarted hub listens there again.
port=$(status_json | jq -r .listen.tunnel | sed 's/.*://')
sed -i "0,/^listen = 127.0.0.1:0/! s|^listen = 127.0.0.1:0|listen = 127.0.0.1:$port|" "$SWB_TMP/hubd.ini"
grep -q "listen = 127.0.0.1:$port" "$SWB_TMP/hubd.ini" || fail "could not fix the tunnel port"
new_agent bob
write_agent_ini "$SWB_TMP/agentd.ini" "$AGENT_ID" "$AGENT_KEY"
"$AGENTD" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 15 agent_online "$AGENT_ID" || fail "agent not online"

note "kill -9 the tunnel process"
tpid=$(child_pid tunnel)
kill -9 "$tpid"
wait_until 2 test "$(child_pid tunnel)" != "$tpid" || fail "tunnel not restarted"
wait_until 15 agent_online "$AGENT_ID" || fail "agent did not reconnect to the new tunnel"
[ "$(status_json | jq '.children[] | select(.name=="tunnel") | .restarts')" = 1 ] || fail "restart not counted"

note "restart the whole hub"
kill -TERM "$HUB_PID"; wait "$HUB_PID" || true; HUB_PID=
start_hub "$SWB_TMP/hubd.ini"
wait_until 20 agent_online "$AGENT_ID" || fail "agent not back after a hub restart"
kill -0 "$AG_PID" || fail "agentd died while the hub was away"
echo OK
