# agentd's TLS to a provider.  The provider's certificate is checked
# against the CA agentd is given alone: a provider whose certificate
# another CA signed is refused (502 in the surface's shape, the request
# never reaches it, agentd says why).  A new connection resumes the TLS
# session an earlier one made, whichever transfer made it (agentd's
# transfers share one session cache), and an idle connection is reused:
# the mock logs, per request, its connection and whether the session was
# resumed.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
TOK=$(ctl token create --name tls)
GW=$(gw_url)
# ask MARK [DIRECTIVE]: one chat completion; the status; the body in MARK.body
ask() {
    curl -s -o "$SWB_TMP/$1.body" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" \
        -d "$(jq -cn --arg c "$1 ${2:-}" '{model:"gpt-4o-mini", messages:[{role:"user", content:$c}]}')"
}

note "a provider certificate from another CA"
bash "$(dirname "$0")/../mock/certs.sh" "$SWB_TMP/rogue"
node "$(dirname "$0")/../mock/openai_mock.mjs" --cert "$SWB_TMP/rogue/server.pem" \
    --key "$SWB_TMP/rogue/server.key" --port 0 --log "$SWB_TMP/rogue.jsonl" \
    >"$SWB_TMP/rogue.out" 2>"$SWB_TMP/rogue.log" &
SWB_CLEANUP+=("kill $!")
wait_until 10 grep -q '^listening' "$SWB_TMP/rogue.out" || fail "rogue mock did not start"
RPORT=$(awk '/^listening/ {print $2}' "$SWB_TMP/rogue.out")
SWB_CONNECT_TO="api.openai.com:443:127.0.0.1:$RPORT" start_agent rogue
ROGUE_PID=$AG_PID
code=$(ask refused)
[ "$code" = 502 ] || fail "a provider with an unknown CA answered $code: $(cat "$SWB_TMP/refused.body")"
jq -e '.error.message | type == "string"' "$SWB_TMP/refused.body" >/dev/null ||
    fail "not an OpenAI error: $(cat "$SWB_TMP/refused.body")"
grep -qi "certificate" "$SWB_TMP/agent-rogue.log" || fail "agentd did not say why: $(tail -5 "$SWB_TMP/agent-rogue.log")"
! grep -q '"refused' "$SWB_TMP/rogue.jsonl" 2>/dev/null || fail "the request reached the rogue provider"
kill "$ROGUE_PID"; wait "$ROGUE_PID" 2>/dev/null || true

note "sessions resumed across connections"
start_mock
start_agent good
# A stream holds the first connection; the request beside it needs a
# second, which resumes the first one's session.
curl -s -N "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" \
    -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"held [mock chunks=8 delay=250]"}]}' \
    >"$SWB_TMP/held.out" &
held=$!
wait_until 5 grep -q '"held' "$SWB_TMP/mock.jsonl" || fail "the held stream did not reach the mock"
[ "$(ask beside)" = 200 ] || fail "the request beside the stream: $(cat "$SWB_TMP/beside.body")"
wait "$held" || fail "the held stream failed"
grep -q '\[DONE\]' "$SWB_TMP/held.out" || fail "the held stream did not end: $(tail -3 "$SWB_TMP/held.out")"
line() { jq -c --arg m "$1" 'select(.body.messages[0].content? // "" | startswith($m))' "$SWB_TMP/mock.jsonl"; }
h=$(line held) b=$(line beside)
[ -n "$h" ] && [ -n "$b" ] || fail "mock log: $(cat "$SWB_TMP/mock.jsonl")"
[ "$(jq .conn <<<"$h")" != "$(jq .conn <<<"$b")" ] || fail "both went over one connection: $h / $b"
[ "$(jq .tls_resumed <<<"$h")" = false ] || fail "the first connection resumed a session: $h"
[ "$(jq .tls_resumed <<<"$b")" = true ] || fail "the second connection did not resume the first one's session: $b"
note "an idle connection is reused"
[ "$(ask again)" = 200 ] || fail "the request after them: $(cat "$SWB_TMP/again.body")"
a=$(line again)
jq -e --argjson h "$(jq .conn <<<"$h")" --argjson b "$(jq .conn <<<"$b")" '.conn == $h or .conn == $b' \
    <<<"$a" >/dev/null || fail "a new connection while two were idle: $a"
echo OK
