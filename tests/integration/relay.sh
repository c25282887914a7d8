# The relay through real processes with curl as the user: streamed and
# whole answers, OpenAI-shaped errors (401, 400, 404, 413, 503), upstream
# errors passed through with their status, an agent lost mid-stream ends
# the stream with an error event (never a hang), a user who leaves cancels
# the upstream call within a second, a provider dropping a kept-alive
# connection is retried by the agent on a fresh one.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 4 --delay-ms 20
TOK=$(ctl token create --name relay)
GW=$(gw_url)
chat() {	# BODY [curl args]: POST to the hub, prints body then the status
    local body=$1; shift
    curl -sN -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' "$@" -d "$body"
}
err_code() { jq -r .error.code "$SWB_TMP/out"; }

note "no agent online: 503"
[ "$(chat '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}')" = 503 ] || fail "expected 503 with no agent"
[ "$(err_code)" = no_channel_available ] || fail "503 body: $(cat "$SWB_TMP/out")"

start_agent relay1

note "streamed answer"
[ "$(chat '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "stream status"
content=$(sed -n 's/^data: //p' "$SWB_TMP/out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty')
[ "$content" = "tok0 tok1 tok2 tok3 " ] || fail "content was '$content'"
tail -c 20 "$SWB_TMP/out" | grep -q 'data: \[DONE\]' || fail "no [DONE]"
! grep -q '"choices":\[\]' "$SWB_TMP/out" || fail "usage chunk reached a user who did not ask"
! grep -q '"usage"' "$SWB_TMP/out" || fail "usage fields reached a user who did not ask"
[ "$(chat '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "stream status"
grep -q '"choices":\[\],"usage":{"prompt_tokens"' "$SWB_TMP/out" || fail "usage chunk missing for a user who asked"
hdrs=$(curl -sN -D - -o /dev/null "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}')
grep -qi '^x-accel-buffering: no' <<<"$hdrs" || fail "no X-Accel-Buffering header"
grep -qi '^cache-control: no-cache' <<<"$hdrs" || fail "no Cache-Control header"
grep -qi '^content-type: text/event-stream' <<<"$hdrs" || fail "not an event stream"

note "keep-alive: streams are chunked, the connection is reused"
sb='{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}'
kv=$(curl -sv -N "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" -d "$sb" \
    --next "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" -d "$sb" 2>&1)
grep -q "Re-using existing connection" <<<"$kv" || fail "the connection was not reused after a stream"
[ "$(grep -c 'data: \[DONE\]' <<<"$kv")" = 2 ] || fail "two streams on one connection did not both finish"
grep -qi "^< transfer-encoding: chunked" <<<"$kv" || fail "stream not chunked"

note "whole answer"
[ "$(chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "status"
[ "$(jq -r .choices[0].message.content "$SWB_TMP/out")" = "tok0 tok1 tok2 tok3 " ] || fail "content"

note "errors"
[ "$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" -d '{"model":"gpt-4o"}')" = 401 ] || fail "no token"
[ "$(err_code)" = missing_api_key ] || fail "401 body"
[ "$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" -H 'Authorization: Bearer sk-wrong' -d '{"model":"gpt-4o"}')" = 401 ] || fail "bad token"
[ "$(err_code)" = invalid_api_key ] || fail "401 body"
[ "$(chat '{"model":')" = 400 ] || fail "malformed JSON"
[ "$(err_code)" = invalid_json ] || fail "400 body"
[ "$(chat '{"messages":[]}')" = 400 ] || fail "missing model"
[ "$(err_code)" = missing_model ] || fail "400 body"
[ "$(chat '{"model":"gpt-4o-mini","stream":"yes","messages":[]}')" = 400 ] || fail "a stream that is not a boolean"
[ "$(err_code)" = invalid_type ] || fail "400 body: $(cat "$SWB_TMP/out")"
[ "$(chat '{"model":"gpt-4o-mini","stream":null,"messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "stream null is no stream"
[ "$(jq -r .object "$SWB_TMP/out")" = chat.completion ] || fail "stream null answered as a stream"
[ "$(chat '{"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"}')" = 400 ] || fail "a model named twice"
[ "$(err_code)" = invalid_json ] || fail "400 body: $(cat "$SWB_TMP/out")"
jq -r .error.message "$SWB_TMP/out" | grep -q 'names `model` more than once' || fail "the message names the member: $(cat "$SWB_TMP/out")"
[ "$(chat '{"model":"gpt-4o-mini","stream":false,"messages":[],"stre\u0061m":true}')" = 400 ] || fail "stream named twice, once escaped"
[ "$(chat '{"model":"gpt-4o-m\u0000ini","messages":[]}')" = 400 ] || fail "a model with a NUL"
[ "$(err_code)" = missing_model ] || fail "400 body: $(cat "$SWB_TMP/out")"
[ "$(chat '{"model":["gpt-4o-mini"],"messages":[]}')" = 400 ] || fail "a model that is not a string"
[ "$(chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x","role":"user"}]}')" = 200 ] || fail "a repeat below the root goes upstream as sent"
[ "$(chat '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "stream with include_usage"
grep -q '"usage":{' "$SWB_TMP/out" || fail "include_usage: the user's usage chunk is kept: $(tail -c 300 "$SWB_TMP/out")"
[ "$(chat '{"model":"gpt-5-imaginary","messages":[]}')" = 404 ] || fail "unknown model"
[ "$(err_code)" = model_not_found ] || fail "404 body"
head -c 5000000 /dev/zero | tr '\0' a >"$SWB_TMP/big"
[ "$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" --data-binary @"$SWB_TMP/big")" = 413 ] || fail "big body"
[ "$(err_code)" = request_too_large ] || fail "413 body"
narrow=$(ctl token create --models gpt-4o-mini)
[ "$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" -H "Authorization: Bearer $narrow" -d '{"model":"gpt-4o","messages":[]}')" = 404 ] || fail "model outside the token"
[ "$(curl -s "$GW/v1/models" -H "Authorization: Bearer $narrow" | jq -c '[.data[].id]')" = '["gpt-4o-mini"]' ] || fail "models list not filtered by token"
[ "$(curl -s "$GW/v1/models?key=$TOK" | jq -c '[.data[].id] | sort')" = '["gpt-4o","gpt-4o-mini"]' ] || fail "models list"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/v1/models" -H "x-api-key: $TOK")" = 200 ] || fail "x-api-key not accepted"
[ "$(chat '{"model":"gpt-4o","messages":[{"role":"user","content":"[mock status=429]"}]}')" = 429 ] || fail "upstream 429 not passed through"
[ "$(err_code)" = rate_limit_exceeded ] || fail "upstream error body: $(cat "$SWB_TMP/out")"
[ "$(chat '{"model":"gpt-4o","messages":[{"role":"user","content":"[mock status=500]"}]}')" = 500 ] || fail "upstream 500 not passed through"
note "a provider that drops a kept-alive connection: the agent sends the request again on a fresh one"
[ "$(chat '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "warm-up"
[ "$(chat '{"model":"gpt-4o","messages":[{"role":"user","content":"[mock drop_reused=1]"}]}')" = 200 ] ||
    fail "a dropped reused connection reached the user: $(cat "$SWB_TMP/out")"
[ "$(jq -r '.choices[0].message.content' "$SWB_TMP/out")" = "tok0 tok1 tok2 tok3 " ] || fail "retried answer: $(cat "$SWB_TMP/out")"
# (Over HTTP/1.1, where libcurl cannot multiplex, libcurl itself retries a
# request whose reused connection died before any answer; over HTTP/2
# agentd does it, and logs it.)
[ "$(chat '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}')" = 200 ] || fail "stream warm-up"
[ "$(chat '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock drop_reused=1]"}]}')" = 200 ] ||
    fail "a stream on a dropped reused connection reached the user: $(cat "$SWB_TMP/out")"
content=$(sed -n 's/^data: //p' "$SWB_TMP/out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty')
[ "$content" = "tok0 tok1 tok2 tok3 " ] || fail "retried stream: $(cat "$SWB_TMP/out")"
read -r cmaj cmin < <(curl --version | sed -n '1s|.*libcurl/\([0-9]*\)\.\([0-9]*\).*|\1 \2|p')
if [ "$cmaj" -gt 8 ] || { [ "$cmaj" -eq 8 ] && [ "$cmin" -ge 1 ]; }; then
    grep -q 'on a reused connection before any answer; sent again on a fresh one' "$SWB_TMP/agent-relay1.log" ||
        fail "the agent did not send the stream again on a fresh connection"
fi
ctl token disable "$(ctl --json token list | jq '.tokens[] | select(.name=="relay") | .id')" >/dev/null
sleep 5.5	# the gateways' token cache holds a token for 5 s
[ "$(chat '{"model":"gpt-4o","messages":[]}')" = 401 ] || fail "disabled token still works"
TOK=$(ctl token create --name relay2)

note "user leaves: upstream cancelled within 1 s"
curl -sN "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=100 delay=100]"}]}' >"$SWB_TMP/c.out" &
cpid=$!
wait_until 5 grep -q tok1 "$SWB_TMP/c.out" || fail "stream did not start"
kill "$cpid"; t0=$(date +%s%3N)
closed() { grep -q '"event":"client_closed","path":"/v1/chat/completions"' "$SWB_TMP/mock.jsonl"; }
wait_until 2 closed || fail "upstream not closed after the user left"
t1=$(jq -r 'select(.event=="client_closed") | .ts' "$SWB_TMP/mock.jsonl" | tail -1)
echo "upstream closed $((t1 - t0)) ms after the user left"
[ $((t1 - t0)) -lt 1000 ] || fail "upstream closed after $((t1 - t0)) ms"

note "agent lost mid-stream: error event, no hang"
curl -sN -m 20 "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=100 delay=100]"}]}' >"$SWB_TMP/l.out" &
cpid=$!
wait_until 5 grep -q tok1 "$SWB_TMP/l.out" || fail "stream did not start"
kill -9 "$AG_PID"
rc=0; wait "$cpid" || rc=$?
[ $rc = 0 ] || fail "the user's stream did not end cleanly (curl rc $rc)"
tail -n 3 "$SWB_TMP/l.out" | grep -q '"code":"agent_lost"' || fail "no error event at the end: $(tail -c 300 "$SWB_TMP/l.out")"
echo OK
