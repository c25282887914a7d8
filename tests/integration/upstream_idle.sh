# A provider that goes silent mid-answer: agentd ends the transfer once
# nothing arrived for its idle timeout (agent/ag_upstream.c's idle sweep;
# 300 s, 2 s here through the test builds' SWB_TEST_UP_IDLE_MS), and the
# user's stream ends instead of hanging.  A stream paused because its user
# does not read is waiting for the hub, not the provider: it is not cut,
# however long the pause.
source "$(dirname "$0")/lib.sh"
export SWB_TEST_UP_IDLE_MS=2000
hub_with_tunnel
start_mock --chunks 4 --delay-ms 0
start_agent idle
TOK=$(ctl token create --name idle)
GW=$(gw_url)

note "the provider sends one event, then nothing for 6 s"
rc=0
curl -sN -m 20 "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=3 delay=6000]"}]}' \
    >"$SWB_TMP/silent.out" || rc=$?
[ "$rc" != 28 ] || fail "the stream hung until the client gave up"
content=$(sed -n 's/^data: //p' "$SWB_TMP/silent.out" | grep -v '^\[DONE\]' |
    jq -rj '.choices[0].delta.content // empty' 2>/dev/null || true)
grep -q '"role":"assistant"' "$SWB_TMP/silent.out" || fail "the first event did not arrive: $(head -c 300 "$SWB_TMP/silent.out")"
[[ $content != *"tok"* ]] || fail "the stream was not cut at the silence: $content"
grep -q '^data: {"error":{"message":"no data from the provider for 2 s' "$SWB_TMP/silent.out" ||
    fail "the user was not told why the stream ended: $(tail -c 300 "$SWB_TMP/silent.out")"
wait_until 5 grep -q "no data from the provider for 2 s" "$SWB_TMP/agent-idle.log" ||
    fail "agentd did not say why it ended the transfer: $(grep -i upstream "$SWB_TMP/agent-idle.log" | tail -3)"

note "a user who stops reading for 6 s still gets the whole stream"
python3 - "$GW" "$TOK" >"$SWB_TMP/paused.out" <<'PY'
import http.client, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
body = '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=40000 delay=0]"}]}'
c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
r = c.getresponse()
first = r.read(65536)
time.sleep(6)
sys.stdout.buffer.write(first + r.read())
PY
tail -c 20 "$SWB_TMP/paused.out" | grep -q 'data: \[DONE\]' || fail "the paused stream did not end with [DONE]: $(tail -c 200 "$SWB_TMP/paused.out")"
n=$(sed -n 's/^data: //p' "$SWB_TMP/paused.out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty' | grep -o 'tok[0-9]* ' | wc -l)
[ "$n" = 40000 ] || fail "the paused stream brought $n of 40000 events"
[ "$(grep -c "no data from the provider" "$SWB_TMP/agent-idle.log")" = 1 ] || fail "a paused stream was cut as idle"
echo OK
