# A channel that keeps failing is ejected after three consecutive errors;
# requests keep succeeding through retries on the healthy channel, and the
# ejected one gets no traffic during its cool-down.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 2 --delay-ms 0
start_agent good
GOOD=$AGENT_ID
# The bad agent's provider is unreachable (nothing listens on port 1).
SWB_CONNECT_TO="api.openai.com:443:127.0.0.1:1" start_agent bad
BAD=$AGENT_ID
TOK=$(ctl token create)
GW=$(gw_url)
ok=0
for i in $(seq 12); do
    code=$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}')
    if [ "$code" = 200 ]; then ok=$((ok+1)); else echo "request $i: $code $(cat "$SWB_TMP/out")"; fi
done
[ $ok = 12 ] || fail "only $ok of 12 requests succeeded"
grep -q "(agent $BAD) failed 3 times in a row: ejected for 5000 ms" "$SWB_TMP/hub.log" || fail "bad channel not ejected"
bad_after=$(sed -n "/(agent $BAD) failed 3 times in a row: ejected/,\$p" "$SWB_TMP/hub.log" | grep -c "relaying to agent $BAD " || true)
[ "$bad_after" = 0 ] || fail "ejected channel still got $bad_after request(s)"
tries=$(grep -c "relaying to agent $BAD " "$SWB_TMP/hub.log" || true)
[ "$tries" = 3 ] || fail "bad channel was tried $tries times, expected exactly 3 before ejection"
grep -q "retrying on channel main of agent $GOOD" "$SWB_TMP/hub.log" || fail "no retry logged"
echo OK
