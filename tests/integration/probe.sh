# GET /probe on the tunnel listener answers the caller's address as the hub
# sees it; only from [tunnel] trusted_proxy is X-Forwarded-For believed.
# agentd probes after each welcome over TLS pinned like the tunnel, logs
# its public address and reports it with its version in a hello frame:
# `hubctl agents` shows the tunnel's remote address, the probed one and
# whether they differ.
source "$(dirname "$0")/lib.sh"
make_certs "$SWB_TMP/certs"
SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s
trusted_proxy = 127.0.0.2" write_hub_ini "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"
SWB_CLEANUP+=("kill -TERM $HUB_PID")
TUN=$(status_json | jq -r .listen.tunnel)
PORT=${TUN##*:}

note "GET /probe"
probe() { curl -s --cacert "$SWB_TMP/certs/ca.pem" --resolve "localhost:$PORT:$1" "${@:2}" "https://localhost:$PORT/probe"; }
out=$(probe 127.0.0.1)
[ "$(jq -r .ip <<<"$out")" = 127.0.0.1 ] || fail "probe answered '$out'"
# Not the trusted proxy: X-Forwarded-For is ignored.
out=$(probe 127.0.0.1 -H "X-Forwarded-For: 203.0.113.9")
[ "$(jq -r .ip <<<"$out")" = 127.0.0.1 ] || fail "an untrusted X-Forwarded-For was believed: $out"
# From the trusted proxy (127.0.0.2): its last X-Forwarded-For entry.
out=$(curl -s --cacert "$SWB_TMP/certs/ca.pem" --interface 127.0.0.2 --resolve "localhost:$PORT:127.0.0.1" \
    -H "X-Forwarded-For: 198.51.100.1, 203.0.113.9" "https://localhost:$PORT/probe")
[ "$(jq -r .ip <<<"$out")" = 203.0.113.9 ] || fail "trusted proxy's X-Forwarded-For not used: $out"
out=$(curl -s --cacert "$SWB_TMP/certs/ca.pem" --interface 127.0.0.2 --resolve "localhost:$PORT:127.0.0.1" \
    -H "X-Forwarded-For: <script>" "https://localhost:$PORT/probe")
[ "$(jq -r .ip <<<"$out")" = 127.0.0.2 ] || fail "a malformed X-Forwarded-For was used: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SWB_TMP/certs/ca.pem" --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/other")
[ "$code" = 404 ] || fail "another path answered $code"

note "agentd learns and reports its public address"
new_agent prober
write_agent_ini "$SWB_TMP/agentd.ini" "$AGENT_ID" "$AGENT_KEY"
"$AGENTD" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 5 agent_online "$AGENT_ID" || fail "agent not online"
row() { ctl --json agents | jq -c --argjson id "$AGENT_ID" '.agents[] | select(.id==$id)'; }
probed() { [ "$(row | jq -r .public)" = 127.0.0.1 ]; }
wait_until 5 probed || { tail -40 "$SWB_TMP/agent.log"; fail "hubctl agents lacks the probed address: $(row)"; }
r=$(row)
[ "$(jq -r .address <<<"$r")" = 127.0.0.1 ] || fail "address: $r"
[ "$(jq -r .differs <<<"$r")" = false ] || fail "differs: $r"
jq -e '.version | test("^[0-9]+\\.[0-9]+")' <<<"$r" >/dev/null || fail "version: $r"
grep -q "public address as the hub sees it: 127.0.0.1" "$SWB_TMP/agent.log" || fail "agentd did not show its address"
ctl agents | grep -E "^$AGENT_ID +prober +127.0.0.1 .* 127.0.0.1 +no " >/dev/null ||
    fail "human listing: $(ctl agents)"
echo "probe: ok"
