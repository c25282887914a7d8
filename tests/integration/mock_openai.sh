# tests/integration/mock_openai.sh — owns the self-test of the OpenAI mock
# (tests/mock/openai_mock.mjs) and its certificate helper: the wire format
# of streamed and plain chat completions, the timing and failure knobs, auth,
# moderation, the request log and client_closed, under HTTP/2 and HTTP/1.1.
# Needs node, curl, jq, openssl.  Uses SWB_TMP (a fresh dir; made if unset).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SWB_TMP=${SWB_TMP:-$(mktemp -d /tmp/swb-mock.XXXXXX)}
LOG=$SWB_TMP/openai_requests.jsonl
MOCK_PID=

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }
on_exit() {
    local rc=$?
    if [ -n "$MOCK_PID" ] && kill -0 "$MOCK_PID" 2>/dev/null; then
        kill -TERM "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ]; then
        echo "=== mock stderr"; tail -n 20 "$SWB_TMP/mock.err" 2>/dev/null || true
        echo "=== request log"; tail -n 10 "$LOG" 2>/dev/null || true
    fi
    exit $rc
}
trap on_exit EXIT

note "certificates"
out=$("$ROOT/tests/mock/certs.sh" "$SWB_TMP/certs")
[ -z "$out" ] || fail "certs.sh printed: $out"
openssl verify -CAfile "$SWB_TMP/certs/ca.pem" "$SWB_TMP/certs/server.pem" >/dev/null ||
    fail "server certificate does not verify against the CA"

note "start the mock"
node "$ROOT/tests/mock/openai_mock.mjs" --cert "$SWB_TMP/certs/server.pem" \
    --key "$SWB_TMP/certs/server.key" --port 0 --log "$LOG" \
    --moderation-words forbidden,zorblax >"$SWB_TMP/mock.out" 2>"$SWB_TMP/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do
    grep -q '^listening [0-9]*$' "$SWB_TMP/mock.out" 2>/dev/null && break
    kill -0 "$MOCK_PID" 2>/dev/null || fail "mock exited at start-up"
    sleep 0.05
done
[ "$(wc -l <"$SWB_TMP/mock.out")" = 1 ] || fail "stdout is not one line: $(cat "$SWB_TMP/mock.out")"
PORT=$(awk '{print $2}' "$SWB_TMP/mock.out")
[[ $PORT =~ ^[0-9]+$ ]] || fail "no port announced"
URL=https://api.openai.com:$PORT
KEY=sk-test-provider-key

# oc [curl args...]: curl to the mock, trusting the test CA, with the real
# host name resolved to the loopback address.
oc() {
    curl -sS --cacert "$SWB_TMP/certs/ca.pem" --resolve "api.openai.com:$PORT:127.0.0.1" "$@"
}
# chat BODY [curl args...]: POST BODY to /v1/chat/completions with the key.
chat() {
    local body=$1; shift
    oc -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d "$body" "$@" "$URL/v1/chat/completions"
}
# events FILE: the JSON payloads of an SSE capture, one a line ([DONE] kept).
events() { sed -n 's/^data: //p' "$1"; }
# log_count JQ_FILTER: how many log lines satisfy the filter.
log_count() { jq -c "select($1)" "$LOG" | wc -l; }
MSG='"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Say hi"}]'

for proto in --http2 --http1.1; do
    note "streaming event sequence ($proto)"
    chat '{"model":"gpt-4o-mini","stream":true,'"$MSG"'}' "$proto" -N -D "$SWB_TMP/h" \
        -H 'x-mock-chunks: 5' -H 'x-mock-delay-ms: 10' -o "$SWB_TMP/s"
    want_ver=$([ "$proto" = --http2 ] && echo 'HTTP/2' || echo 'HTTP/1.1')
    head -1 "$SWB_TMP/h" | grep -q "^$want_ver 200" || fail "status line: $(head -1 "$SWB_TMP/h")"
    grep -qi '^content-type: text/event-stream' "$SWB_TMP/h" || fail "not an event stream"
    # Every event is `data: ...` followed by a blank line, and nothing else.
    [ "$(grep -c . "$SWB_TMP/s")" = "$(grep -c '^data: ' "$SWB_TMP/s")" ] || fail "stray lines in the stream"
    [ "$(grep -c '^$' "$SWB_TMP/s")" = "$(grep -c '^data: ' "$SWB_TMP/s")" ] || fail "events not blank-line separated"
    [ "$(events "$SWB_TMP/s" | tail -1)" = '[DONE]' ] || fail "stream does not end with [DONE]"
    events "$SWB_TMP/s" | sed '$d' >"$SWB_TMP/j"
    [ "$(wc -l <"$SWB_TMP/j")" = 7 ] || fail "want role + 5 content + finish, got $(wc -l <"$SWB_TMP/j")"
    jq -e -s 'all(.[]; .object=="chat.completion.chunk" and .model=="gpt-4o-mini"
               and (.id|test("^chatcmpl-mock-[0-9]+$")) and (.created|type)=="number"
               and (.system_fingerprint|type)=="string" and (has("usage")|not)
               and (.choices|length)==1 and .choices[0].index==0 and .choices[0].logprobs==null)
              and ([.[].id]|unique|length)==1' "$SWB_TMP/j" >/dev/null || fail "chunk shape"
    jq -e -s '.[0].choices[0].delta=={"role":"assistant","content":""} and .[0].choices[0].finish_reason==null
              and .[6].choices[0].delta=={} and .[6].choices[0].finish_reason=="stop"
              and all(.[1:6][]; .choices[0].finish_reason==null and (.choices[0].delta|keys)==["content"])' \
        "$SWB_TMP/j" >/dev/null || fail "role/finish chunks wrong"
    content=$(jq -j -s '[.[].choices[0].delta.content // empty]|join("")' "$SWB_TMP/j")
    [ "$content" = "tok0 tok1 tok2 tok3 tok4 " ] || fail "content '$content'"

    note "include_usage adds the usage chunk ($proto)"
    chat '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},'"$MSG"'}' \
        "$proto" -N -H 'x-mock-chunks: 3' -H 'x-mock-delay-ms: 0' -o "$SWB_TMP/s"
    events "$SWB_TMP/s" | sed '$d' >"$SWB_TMP/j"
    [ "$(wc -l <"$SWB_TMP/j")" = 6 ] || fail "want role + 3 + finish + usage"
    # Prompt: "be brief" + "Say hi" = 14 characters -> ceil(14/4) = 4 tokens.
    jq -e -s '(.[0:5]|all(.[]; has("usage") and .usage==null))
              and .[4].choices[0].finish_reason=="stop"
              and .[5].choices==[] and .[5].usage=={"prompt_tokens":4,"completion_tokens":3,"total_tokens":7,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}' \
        "$SWB_TMP/j" >/dev/null || fail "usage chunk wrong: $(tail -2 "$SWB_TMP/j")"
done

note "delays separate the events"
# Timestamp each line as curl hands it over; the first and last content
# events must be at least (N-1) * delay * 0.8 apart.
N=5 D=150
chat '{"model":"gpt-4o","stream":true,'"$MSG"'}' -N -H "x-mock-chunks: $N" -H "x-mock-delay-ms: $D" |
    while IFS= read -r line; do
        if [[ $line == data:* ]]; then printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; fi
    done >"$SWB_TMP/ts"
grep '"content":"tok' "$SWB_TMP/ts" | awk '{print $1}' >"$SWB_TMP/tc"
[ "$(wc -l <"$SWB_TMP/tc")" = $N ] || fail "want $N content events, got $(wc -l <"$SWB_TMP/tc")"
gap_ms=$(( ($(tail -1 "$SWB_TMP/tc") - $(head -1 "$SWB_TMP/tc")) / 1000 ))
echo "first->last content: ${gap_ms} ms"
((gap_ms * 10 >= (N - 1) * D * 8)) || fail "events only ${gap_ms} ms apart (delay ignored or coalesced)"

note "directive in the last user message"
chat '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=9]"},
      {"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"text","text":"go [mock chunks=2 delay=0]"}]}]}' \
    -N -o "$SWB_TMP/s"
content=$(events "$SWB_TMP/s" | sed '$d' | jq -j '.choices[0].delta.content // empty')
[ "$content" = "tok0 tok1 " ] || fail "directive ignored: '$content'"

note "non-streaming shape"
chat '{"model":"gpt-4o-mini","max_tokens":100,'"$MSG"'}' -H 'x-mock-chunks: 4' -H 'x-mock-delay-ms: 0' \
    -D "$SWB_TMP/h" -o "$SWB_TMP/r"
grep -qi '^content-type: application/json' "$SWB_TMP/h" || fail "non-stream content type"
jq -e '(.id|test("^chatcmpl-mock-")) and .object=="chat.completion" and .model=="gpt-4o-mini"
       and (.created|type)=="number" and (.system_fingerprint|type)=="string"
       and .choices==[{"index":0,"message":{"role":"assistant","content":"tok0 tok1 tok2 tok3 ","refusal":null},
                       "logprobs":null,"finish_reason":"stop"}]
       and .usage=={"prompt_tokens":4,"completion_tokens":4,"total_tokens":8,
                    "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}' \
    "$SWB_TMP/r" >/dev/null || fail "non-stream body: $(cat "$SWB_TMP/r")"
chat '{"model":"gpt-4o","max_tokens":2,'"$MSG"'}' -H 'x-mock-delay-ms: 0' |
    jq -e '.choices[0].finish_reason=="length" and .choices[0].message.content=="tok0 tok1 "' >/dev/null ||
    fail "max_tokens does not cut the reply"

note "errors"
code=$(KEY=sk-wrong-key-0000 chat '{"model":"gpt-4o",'"$MSG"'}' -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 401 ] || fail "bad key gave $code"
jq -e '.error.code=="invalid_api_key" and .error.type=="invalid_request_error" and .error.param==null
       and (.error.message|startswith("Incorrect API key provided: "))
       and (.error.message|contains("sk-wrong-key-0000")|not)' "$SWB_TMP/r" >/dev/null ||
    fail "401 body: $(cat "$SWB_TMP/r")"
code=$(oc -d '{}' -o "$SWB_TMP/r" -w '%{http_code}' "$URL/v1/chat/completions")
[ "$code" = 401 ] || fail "missing key gave $code"
code=$(chat '{"model":"gpt-4o",'"$MSG"'}' -H 'x-mock-status: 500' -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 500 ] || fail "x-mock-status 500 gave $code"
jq -e '.error.type=="server_error" and (.error.message|length)>0 and has("error") and (.error|has("code"))' \
    "$SWB_TMP/r" >/dev/null || fail "500 body: $(cat "$SWB_TMP/r")"
code=$(chat '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x [mock status=429]"}]}' \
    -D "$SWB_TMP/h" -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 429 ] || fail "directive status=429 gave $code"
jq -e '.error.code=="rate_limit_exceeded"' "$SWB_TMP/r" >/dev/null || fail "429 body: $(cat "$SWB_TMP/r")"
grep -qi '^retry-after: ' "$SWB_TMP/h" || fail "429 without retry-after"
code=$(chat '{"model":"gpt-4o",' -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 400 ] || fail "bad JSON gave $code"
jq -e '.error.type=="invalid_request_error"' "$SWB_TMP/r" >/dev/null || fail "400 body"
code=$(chat '{"model":"gpt-9000",'"$MSG"'}' -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 404 ] || fail "unknown model gave $code"
jq -e '.error.code=="model_not_found"' "$SWB_TMP/r" >/dev/null || fail "404 body"

note "fail-after breaks the stream"
for proto in --http2 --http1.1; do
    rc=0
    chat '{"model":"gpt-4o","stream":true,'"$MSG"'}' "$proto" -N -H 'x-mock-fail-after: 2' \
        -H 'x-mock-delay-ms: 0' -o "$SWB_TMP/s" 2>/dev/null || rc=$?
    [ $rc -ne 0 ] || fail "$proto: curl saw a clean end despite fail-after"
    [ "$(grep -c '"content":"tok' "$SWB_TMP/s")" = 2 ] || fail "$proto: want 2 chunks before the break"
    grep -q 'DONE' "$SWB_TMP/s" && fail "$proto: [DONE] after a break"
done
[ "$(log_count '.event=="mock_failed" and .after_chunks==2')" = 2 ] || fail "mock_failed not logged"
[ "$(log_count '.event=="client_closed"')" = 0 ] || fail "a deliberate break was logged as client_closed"

note "models"
oc -H "Authorization: Bearer $KEY" "$URL/v1/models" |
    jq -e '.object=="list" and ([.data[].id]|sort)==["gpt-4o","gpt-4o-mini"]
           and all(.data[]; .object=="model" and .owned_by=="openai" and (.created|type)=="number")' >/dev/null ||
    fail "model list"

note "moderation"
mod() { oc -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$1" "${@:2}" "$URL/v1/moderations"; }
mod '{"model":"omni-moderation-latest","input":"this has a ZorBlax in it"}' |
    jq -e '(.id|type)=="string" and .model=="omni-moderation-latest" and (.results|length)==1
           and .results[0].flagged==true and .results[0].categories.harassment==true
           and ([.results[0].categories[]]|map(select(.))|length)==1
           and (.results[0].category_scores.harassment|type)=="number"' >/dev/null || fail "word not flagged"
mod '{"input":["all good","also fine"]}' |
    jq -e '(.results|length)==2 and all(.results[]; .flagged==false
           and ([.categories[]]|any)==false)' >/dev/null || fail "clean text flagged"
mod '{"input":[{"type":"text","text":"nothing"},{"type":"text","text":"forbidden"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}' |
    jq -e '(.results|length)==1 and .results[0].flagged==true' >/dev/null || fail "multimodal input not flagged"
code=$(mod '{"input":"hi"}' -H 'x-mock-status: 503' -o "$SWB_TMP/r" -w '%{http_code}')
[ "$code" = 503 ] || fail "moderation x-mock-status gave $code"
jq -e '.error.type=="server_error"' "$SWB_TMP/r" >/dev/null || fail "503 body"
t=$(mod '{"input":"hi"}' -H 'x-mock-delay-ms: 400' -o /dev/null -w '%{time_total}')
awk -v t="$t" 'BEGIN{exit !(t >= 0.38)}' || fail "moderation delay ignored (${t}s)"
rc=0; mod '{"input":"hi"}' -H 'x-mock-delay-ms: 3000' -m 0.5 -o /dev/null 2>/dev/null || rc=$?
[ $rc = 28 ] || fail "client timeout on a slow moderation: curl rc $rc"

note "request log"
jq -e -s 'all(.[]; (.ts|type)=="number")' "$LOG" >/dev/null || fail "log line without ts"
jq -e -s '[.[] | select(.method=="POST" and .path=="/v1/chat/completions" and .aborted==false
           and .headers.authorization=="Bearer sk-test-provider-key"
           and .headers["x-mock-chunks"]=="5" and .body.model=="gpt-4o-mini" and .body.stream==true)] | length==2' \
    "$LOG" >/dev/null || fail "streaming requests not logged with headers and body"
jq -e -s 'any(.[]; .path=="/v1/chat/completions" and .body=="{\"model\":\"gpt-4o\",")' "$LOG" >/dev/null ||
    fail "unparsable body not logged raw"
jq -e -s 'any(.[]; .method=="GET" and .path=="/v1/models" and .body==null)' "$LOG" >/dev/null ||
    fail "GET not logged"
jq -e -s 'any(.[]; .path=="/v1/moderations" and .body.input=="this has a ZorBlax in it")' "$LOG" >/dev/null ||
    fail "moderation not logged"

note "keep-alive"
n=$(oc --http1.1 -H "Authorization: Bearer $KEY" -o /dev/null -w '%{num_connects}\n' "$URL/v1/models" \
    -o /dev/null -w '%{num_connects}\n' "$URL/v1/models" | tr '\n' ' ')
[ "$n" = "1 0 " ] || fail "second request did not reuse the connection: $n"

note "client_closed when the client goes away mid-stream"
for proto in --http2 --http1.1; do
    before=$(log_count '.event=="client_closed"')
    rm -f "$SWB_TMP/s"
    # curl itself in the background (not the chat function's subshell), so
    # the kill below hits the process that holds the connection.
    curl -sS --cacert "$SWB_TMP/certs/ca.pem" --resolve "api.openai.com:$PORT:127.0.0.1" "$proto" -N \
        -H "Authorization: Bearer $KEY" -H 'x-mock-chunks: 100' -H 'x-mock-delay-ms: 50' \
        -d '{"model":"gpt-4o","stream":true,'"$MSG"'}' -o "$SWB_TMP/s" "$URL/v1/chat/completions" 2>/dev/null &
    cpid=$!
    for _ in $(seq 100); do [ "$(grep -c '"content":"tok' "$SWB_TMP/s" 2>/dev/null)" -ge 3 ] && break; sleep 0.02; done
    killed_ms=$(( ${EPOCHREALTIME/./} / 1000 ))
    kill -KILL $cpid; wait $cpid 2>/dev/null || true
    for _ in $(seq 50); do [ "$(log_count '.event=="client_closed"')" -gt "$before" ] && break; sleep 0.02; done
    line=$(jq -c 'select(.event=="client_closed")' "$LOG" | tail -1)
    [ "$(log_count '.event=="client_closed"')" = $((before + 1)) ] || fail "$proto: no client_closed logged"
    jq -e --argjson k "$killed_ms" '.path=="/v1/chat/completions" and (.id|test("^chatcmpl-mock-"))
           and .after_chunks>=3 and .after_chunks<100 and .ts-$k < 1000' <<<"$line" >/dev/null ||
        fail "$proto: client_closed record: $line (killed at $killed_ms)"
    echo "$proto: $line"
done

note "bad input does not kill it"
printf 'not tls at all\r\n\r\n' >/dev/tcp/127.0.0.1/"$PORT" || true
oc --http1.1 -X POST -H "Authorization: Bearer $KEY" --data-binary @/dev/null "$URL/v1/chat/completions" -o /dev/null
chat '{"model":"gpt-4o","messages":[{"role":"user","content":{"weird":1}},null,7]}' -o /dev/null
chat '[1,2]' -o /dev/null
mod '{"input":42}' -o /dev/null
oc -X DELETE "$URL/nowhere" -o /dev/null
kill -0 "$MOCK_PID" || fail "mock died on bad input"
code=$(oc -H "Authorization: Bearer $KEY" -o /dev/null -w '%{http_code}' "$URL/v1/models")
[ "$code" = 200 ] || fail "mock unwell after bad input ($code)"

note "SIGTERM exits 0"
kill -TERM "$MOCK_PID"
rc=0; wait "$MOCK_PID" || rc=$?
MOCK_PID=
[ $rc = 0 ] || fail "mock exited $rc on SIGTERM"
[ ! -s "$SWB_TMP/mock.err" ] || fail "mock complained: $(cat "$SWB_TMP/mock.err")"
echo "ok"
