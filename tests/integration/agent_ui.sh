# agentd's local page: [ui] listen beyond loopback is refused unless
# allow_remote; the secret is made (0600) and printed once at first start,
# kept across restarts and replaced by `agentd ui-secret`; every /api/...
# needs it; /api/status shows links, channels and caps, /api/requests the
# served requests and their receipts, /api/log the last log lines.  Then
# the page itself in headless Chromium (tests/e2e/agent_ui.mjs).
source "$(dirname "$0")/lib.sh"
E2E=$(cd "$(dirname "$0")/../e2e" && pwd)
hub_with_tunnel
SWB_CLEANUP+=("kill -TERM $HUB_PID")
start_mock
UIPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

note "a page beyond loopback needs allow_remote"
new_agent paged
write_agent_ini "$SWB_TMP/agentd.ini" "$AGENT_ID" "$AGENT_KEY" "" "[ui]
listen = 0.0.0.0:$UIPORT"
sed -i "/^\[test\]/a connect_to = $SWB_CONNECT_TO" "$SWB_TMP/agentd.ini"
if "$AGENTD" -t -c "$SWB_TMP/agentd.ini" 2>"$SWB_TMP/err"; then fail "0.0.0.0 accepted without allow_remote"; fi
grep -q "not a loopback address" "$SWB_TMP/err" || fail "unclear refusal: $(cat "$SWB_TMP/err")"
echo "allow_remote = yes" >>"$SWB_TMP/agentd.ini"
"$AGENTD" -t -c "$SWB_TMP/agentd.ini" >/dev/null || fail "allow_remote = yes refused"
sed -i "s|^listen = 0.0.0.0:.*|listen = 127.0.0.1:$UIPORT|; /^allow_remote/d" "$SWB_TMP/agentd.ini"

note "first start: the secret is made and printed"
"$AGENTD" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent.out" 2>"$SWB_TMP/agent.log" &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 5 agent_online "$AGENT_ID" || fail "agent not online"
SECF=$SWB_TMP/agent-$AGENT_ID/ui.secret
[ -f "$SECF" ] || fail "no ui.secret"
[ "$(stat -c %a "$SECF")" = 600 ] || fail "ui.secret mode $(stat -c %a "$SECF")"
SECRET=$(cat "$SECF")
grep -q "$SECRET" "$SWB_TMP/agent.out" || fail "the secret was not printed"
UI=http://127.0.0.1:$UIPORT
api() { curl -s -H "Authorization: Bearer ${2:-$SECRET}" "$UI/api/$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$UI/")" = 200 ] || fail "the page is not served"
page=$(curl -s "$UI/"); grep -q "<title>agentd</title>" <<<"$page" || fail "the page is not the page"
[ "$(code "$UI/api/status")" = 401 ] || fail "status without the secret"
[ "$(code -H "Authorization: Bearer 0123456789abcdef0123456789abcdef" "$UI/api/status")" = 401 ] || fail "a wrong secret was taken"
[ "$(code -H "Authorization: Bearer $SECRET" "$UI/api/status")" = 200 ] || fail "the secret was refused"

note "status, requests and receipts, log"
TOK=$(ctl token create --name ui)
GW=$(gw_url)
for i in 1 2; do
    curl -s -o /dev/null "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
        -d '{"model":"gpt-4o","messages":[{"role":"user","content":"page"}]}'
done
st=$(api status)
jq -e '.links[0].online == true and .channels[0].name == "main" and .channels[0].rpm == 600' <<<"$st" >/dev/null || fail "status: $st"
jq -e '.channels[0].requests_total >= 2' <<<"$st" >/dev/null || fail "requests not counted: $st"
receipted() { api requests | jq -e '[.[] | select(.state == "receipted")] | length >= 2' >/dev/null; }
wait_until 10 receipted || fail "receipts not shown: $(api requests)"
api log | jq -e 'map(select(test("online \\(session"))) | length >= 1' >/dev/null || fail "log lines: $(api log | head -c 400)"
api earnings | jq -e 'type == "array"' >/dev/null || fail "earnings: $(api earnings)"
api disputes | jq -e 'type == "array"' >/dev/null || fail "disputes: $(api disputes)"

note "a restart keeps the secret; agentd ui-secret replaces it"
kill "$AG_PID"; wait "$AG_PID" 2>/dev/null || true
"$AGENTD" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent2.out" 2>>"$SWB_TMP/agent.log" &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 5 agent_online "$AGENT_ID" || fail "agent not back"
[ "$(cat "$SECF")" = "$SECRET" ] || fail "the secret changed on restart"
if grep -q "$SECRET" "$SWB_TMP/agent2.out"; then fail "the secret was printed again"; fi
"$AGENTD" ui-secret -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/new.out" || fail "ui-secret"
NEW=$(cat "$SECF")
[ "$NEW" != "$SECRET" ] && grep -q "$NEW" "$SWB_TMP/new.out" || fail "ui-secret did not make and print a new one"
old_refused() { [ "$(code -H "Authorization: Bearer $SECRET" "$UI/api/status")" = 401 ]; }
wait_until 3 old_refused || fail "the old secret still works"
[ "$(code -H "Authorization: Bearer $NEW" "$UI/api/status")" = 200 ] || fail "the new secret is refused"

note "the page in headless Chromium"
[ -x /usr/bin/chromium ] || fail "chromium is missing (make deps installs it)"
# tests/e2e's modules as e2e_openai.sh installs them (npm ci when missing
# or stale against package-lock.json).
want=$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1)
stamp=$E2E/node_modules/.swb-lock.sha256
if [ ! -f "$E2E/node_modules/puppeteer-core/package.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$E2E" && npm ci --no-audit --no-fund) || fail "npm ci in tests/e2e failed"
    echo "$want" >"$stamp"
fi
node "$E2E/agent_ui.mjs" "$UI/" "$NEW" "$GW" "$TOK" || fail "the browser test failed"
echo "agent_ui: ok"
