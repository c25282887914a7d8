# agentd reloads its channels on SIGHUP without dropping the tunnel: a
# channel added to its INI is announced (the hub serves its model), the
# connection is the same one (same since), a bad file is refused and the
# running channels stay.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock
SWB_CONNECT_TO=$MOCK_CONNECT_TO  # every official host: the mock
start_agent r1
INI=$SWB_TMP/r1.ini
TOK=$(ctl token create --name r)
GW=$(gw_url)
since() { ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .since_ms'; }
nchan() { ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .channels'; }
chat() { curl -s -o /dev/null -w '%{http_code}' "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; }
s0=$(since)
[ "$(nchan)" = 1 ] || fail "one channel first"
[ "$(chat claude-haiku-4-5)" = 404 ] || fail "claude is not served yet"

note "a channel added, SIGHUP: announced on the same connection"
printf '[channel.claude]\nprovider = anthropic\nmodels = claude-haiku-4-5\nkey = sk-ant-test-provider-key\n' >>"$INI"
kill -HUP "$AG_PID"
two() { [ "$(nchan)" = 2 ]; }
wait_until 5 two || fail "the new channel was not announced: $(ctl agents)"
[ "$(since)" = "$s0" ] || fail "the tunnel was dropped"
[ "$(chat claude-haiku-4-5)" = 200 ] || fail "the new channel does not serve"
[ "$(chat gpt-4o-mini)" = 200 ] || fail "the old channel stopped serving"

note "a bad file is refused; the running channels stay"
echo 'nonsense' >>"$INI"
kill -HUP "$AG_PID"
wait_until 5 grep -q 'reload refused' "$SWB_TMP/agent-r1.log" || fail "no refusal logged"
[ "$(nchan)" = 2 ] && [ "$(since)" = "$s0" ] || fail "a refused reload changed something"
[ "$(chat claude-haiku-4-5)" = 200 ] || fail "serving stopped after a refused reload"
echo "agent_reload: ok"
