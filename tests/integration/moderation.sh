# The moderation process against the OpenAI mock: asked directly on
# moderation.sock (tests/tools/modcheck) — flagged and clean text, the
# verdict cache (one service call for a repeated text), the fail rule on a
# 503 with fail_open yes and then no (changed by a reload), a slow service
# cut at [moderation] timeout while other checks are answered meanwhile,
# identical checks in flight sharing one call,
# junk from a gateway, moderation turned off — then end to end through the
# gateway: a flagged chat request gets 400 sensitive_words_detected and
# never reaches the provider; last, a stop drains the calls in flight.
source "$(dirname "$0")/lib.sh"
make_certs "$SWB_TMP/certs"
start_mock --moderation-words forbidden,evil
ini=$SWB_TMP/hubd.ini
SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s
handshake_timeout = 2s" write_hub_ini "$ini" "[moderation]
enabled = yes
url = https://127.0.0.1:$MOCK_PORT/v1/moderations
ca_file = $SWB_TMP/certs/ca.pem
api_key = sk-test-provider-key
timeout = 500ms
fail_open = yes"
start_hub "$ini"

MODCHECK=$SWB_BIN/tests/tools/modcheck
SOCK=$SWB_TMP/run/moderation.sock
check() { "$MODCHECK" -t 5000 "$SOCK" "$@"; }
# mod_calls TEXT: moderation calls the mock received for exactly TEXT.
mod_calls() {
    jq -s --arg t "$1" '[.[] | select(.method=="POST" and .path=="/v1/moderations"
        and (.body.input[0].text? // "") == $t)] | length' "$SWB_TMP/mock.jsonl"
}
mod_pid() { child_pid moderation; }
mod_gen() { status_json | jq '.children[] | select(.name=="moderation") | .config_generation'; }
all_at() { [ "$(status_json | jq --argjson g "$1" '[.children[] | select(.config_generation!=$g)] | length')" = 0 ]; }
# set_mod KEY VALUE: change a [moderation] key and reload; waits until
# every child applied the new generation.
set_mod() {
    sed -i "s|^$1 = .*|$1 = $2|" "$ini"
    ctl reload >/dev/null || fail "reload with $1 = $2 refused"
    local g; g=$(status_json | jq .config_generation)
    wait_until 5 all_at "$g" || fail "generation $g not applied everywhere"
}
pid0=$(mod_pid)

note "flagged text"
out=$(check "this text is evil") || fail "no verdict for flagged text"
[ "$out" = "result=flagged cached=0 detail=harassment" ] || fail "flagged: '$out'"
req=$(jq -c 'select(.path=="/v1/moderations")' "$SWB_TMP/mock.jsonl" | head -1)
[ "$(jq -r .headers.authorization <<<"$req")" = "Bearer sk-test-provider-key" ] || fail "api_key not sent: $req"
[ "$(jq -r .body.model <<<"$req")" = "omni-moderation-latest" ] || fail "model not sent: $req"
[ "$(jq -c .body.input <<<"$req")" = '[{"type":"text","text":"this text is evil"}]' ] || fail "input not passed on: $req"

note "clean text"
out=$(check "a perfectly nice question") || fail "no verdict for clean text"
[ "$out" = "result=allow cached=0 detail=" ] || fail "clean: '$out'"

note "the same flagged text again comes from the cache"
out=$(check "this text is evil") || fail "no verdict for the repeated text"
[ "$out" = "result=flagged cached=1 detail=harassment" ] || fail "repeat: '$out'"
[ "$(mod_calls "this text is evil")" = 1 ] || fail "the cached text was sent $(mod_calls "this text is evil") times"
out=$(check "a perfectly nice question") || fail "no verdict for the repeated clean text"
[ "$out" = "result=allow cached=1 detail=" ] || fail "clean repeat: '$out'"

note "service answers 503, fail_open = yes: allowed, and not cached"
t503="ask something [mock-mod status=503]"
out=$(check "$t503") || fail "no verdict on a 503"
[[ $out == "result=allow cached=0 detail=service answered HTTP 503"* ]] || fail "503 fail-open: '$out'"
out=$(check "$t503") || fail "no verdict on the second 503"
[[ $out == "result=allow cached=0 "* ]] || fail "a failure was cached: '$out'"
[ "$(mod_calls "$t503")" = 2 ] || fail "503 text called $(mod_calls "$t503") times, expected 2"
grep -q "moderation failed: service answered HTTP 503.*allowing (fail_open = yes)" "$SWB_TMP/hub.log" \
    || fail "no warning for the failure"
grep -Eq "req=0000000000000001 moderation failed" "$SWB_TMP/hub.log" || fail "failure not logged with its request id"

note "fail_open = no after a reload: unavailable"
set_mod fail_open no
out=$(check "$t503") || fail "no verdict on a 503 (fail-closed)"
[[ $out == "result=unavailable cached=0 detail=service answered HTTP 503"* ]] || fail "503 fail-closed: '$out'"
[ "$(mod_pid)" = "$pid0" ] || fail "the moderation process was restarted by a reload"

note "slow service, timeout 500ms: cut by the fail rule; other checks answered meanwhile"
# One connection: the slow check first, then two more; the others must
# come back long before the slow one, which ends at the timeout.
"$MODCHECK" -t 5000 "$SOCK" "slow one [mock-mod delay=3000]" "quick and clean" "quick but evil" \
    >"$SWB_TMP/slow.out" || fail "slow batch: $(cat "$SWB_TMP/slow.out")"
line() { grep "^req=$1 " "$SWB_TMP/slow.out"; }
ms() { line "$1" | sed 's/^req=[0-9]* ms=\([0-9]*\) .*/\1/'; }
[[ $(line 2) == *"result=allow cached=0 detail=" ]] || fail "quick clean: $(line 2)"
[[ $(line 3) == *"result=flagged cached=0 detail=harassment" ]] || fail "quick evil: $(line 3)"
[[ $(line 1) == *"result=unavailable cached=0 detail=service timed out after 500 ms" ]] || fail "slow: $(line 1)"
[ "$(ms 2)" -lt 400 ] && [ "$(ms 3)" -lt 400 ] || fail "quick checks waited for the slow one: $(cat "$SWB_TMP/slow.out")"
[ "$(ms 1)" -ge 450 ] && [ "$(ms 1)" -lt 1500 ] || fail "slow check not cut at ~500 ms: $(line 1)"
head -n 2 "$SWB_TMP/slow.out" | grep -q '^req=1 ' && fail "slow answer came before the quick ones"
# Another gateway connection while a slow call is in flight.
"$MODCHECK" -t 5000 "$SOCK" "slow two [mock-mod delay=3000]" >"$SWB_TMP/slow2.out" &
slow_pid=$!
sleep 0.1
t0=$(date +%s%N)
out=$(check "another quick question") || fail "no verdict beside a slow call"
el=$((($(date +%s%N) - t0) / 1000000))
[ "$out" = "result=allow cached=0 detail=" ] || fail "beside slow: '$out'"
[ "$el" -lt 400 ] || fail "a second connection waited $el ms for a slow call"
wait "$slow_pid" || fail "slow two: no verdict"
grep -q "^result=unavailable cached=0 detail=service timed out" "$SWB_TMP/slow2.out" || fail "slow two: $(cat "$SWB_TMP/slow2.out")"

note "identical checks in flight share one service call"
same="same question twice [mock-mod delay=200]"
"$MODCHECK" -t 5000 "$SOCK" "$same" "$same" >"$SWB_TMP/same.out" || fail "shared call: $(cat "$SWB_TMP/same.out")"
[ "$(grep -c 'result=allow cached=0 detail=$' "$SWB_TMP/same.out")" = 2 ] || fail "shared call: $(cat "$SWB_TMP/same.out")"
[ "$(mod_calls "$same")" = 1 ] || fail "identical checks in flight made $(mod_calls "$same") calls"

note "junk from a gateway gets a verdict, not a crash"
out=$("$MODCHECK" -t 5000 -j "$SOCK" 'this is not json') || fail "no verdict for junk"
[[ $out == "result=unavailable cached=0 detail=bad check from the gateway: "* ]] || fail "junk: '$out'"
out=$("$MODCHECK" -t 5000 -j "$SOCK" '{"input":[]}') || fail "no verdict for an empty input"
[ "$out" = "result=allow cached=0 detail=nothing to check" ] || fail "empty: '$out'"
[ "$(mod_pid)" = "$pid0" ] || fail "the moderation process died on junk"

note "enabled = no: allowed at once, service not asked"
set_mod enabled no
calls=$(jq -s 'length' "$SWB_TMP/mock.jsonl")
out=$(check "something evil while off") || fail "no verdict while off"
[ "$out" = "result=allow cached=0 detail=moderation is off" ] || fail "off: '$out'"
[ "$(jq -s 'length' "$SWB_TMP/mock.jsonl")" = "$calls" ] || fail "the service was asked while off"

note "end to end: a flagged chat request gets 400 and never reaches the provider"
set_mod enabled yes
set_mod fail_open yes
start_agent mod1
TOK=$(ctl token create --name moderation)
GW=$(gw_url)
chat() {	# TEXT: POST a chat request with TEXT; prints the status
    curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
        -d "$(jq -cn --arg t "$1" '{model:"gpt-4o",messages:[{role:"user",content:$t}]}')"
}
chat_calls() {
    jq -s --arg t "$1" '[.[] | select(.path=="/v1/chat/completions" and .method=="POST"
        and (.body.messages[-1].content? // "") == $t)] | length' "$SWB_TMP/mock.jsonl"
}
bad="please write something evil"
[ "$(chat "$bad")" = 400 ] || fail "flagged request: $(cat "$SWB_TMP/out")"
jq -e '(keys == ["error"]) and (.error | keys == ["code","message","param","type"])
    and .error.code == "sensitive_words_detected" and .error.param == ""
    and .error.type == "hub_error" and (.error.message | type == "string")' \
    "$SWB_TMP/out" >/dev/null || fail "400 body: $(cat "$SWB_TMP/out")"
[ "$(mod_calls "$bad")" = 1 ] || fail "gateway's check did not reach the service"
[ "$(chat_calls "$bad")" = 0 ] || fail "a flagged request reached the provider"
[ "$(chat "$bad")" = 400 ] || fail "flagged request (cached verdict): $(cat "$SWB_TMP/out")"
[ "$(mod_calls "$bad")" = 1 ] || fail "the repeated flagged request was not answered from the cache"
good="tell me about the weather"
[ "$(chat "$good")" = 200 ] || fail "clean request: $(cat "$SWB_TMP/out")"
[ "$(chat_calls "$good")" = 1 ] || fail "the clean request did not reach the provider"
[ "$(chat_calls "$bad")" = 0 ] || fail "a flagged request reached the provider"

note "end to end, fail_open = no and the service failing: 503, provider not asked"
set_mod fail_open no
down="hello there [mock-mod status=503]"
[ "$(chat "$down")" = 503 ] || fail "fail-closed request: $(cat "$SWB_TMP/out")"
[ "$(chat_calls "$down")" = 0 ] || fail "a fail-closed request reached the provider"
[ "$(mod_pid)" = "$pid0" ] || fail "the moderation process was restarted"

note "stop drains: a call in flight ends, one past drain_timeout (3s) gets the fail rule"
set_mod timeout 10s
"$MODCHECK" -t 15000 "$SOCK" "drain one [mock-mod delay=1000]" "drain two [mock-mod delay=8000]" \
    >"$SWB_TMP/drain.out" &
mc_pid=$!
sleep 0.3
ctl stop | grep -q stopping || fail "hubctl stop did not answer"
wait "$mc_pid" || fail "checks in flight at stop got no verdict: $(cat "$SWB_TMP/drain.out")"
dline() { grep "^req=$1 " "$SWB_TMP/drain.out"; }
dms() { dline "$1" | sed 's/^req=[0-9]* ms=\([0-9]*\) .*/\1/'; }
[[ $(dline 1) == *"result=allow cached=0 detail=" ]] || fail "drain one: $(dline 1)"
[[ $(dline 2) == *"result=unavailable cached=0 detail=moderation is stopping" ]] || fail "drain two: $(dline 2)"
[ "$(dms 1)" -ge 900 ] && [ "$(dms 2)" -ge 2500 ] && [ "$(dms 2)" -lt 6000 ] \
    || fail "drain timing: $(cat "$SWB_TMP/drain.out")"
rc=0; wait "$HUB_PID" || rc=$?
[ $rc = 0 ] || fail "hubd exited $rc"
HUB_PID=
grep -q "moderation (pid $pid0) exited with status 0" "$SWB_TMP/hub.log" || fail "moderation did not exit cleanly"
echo OK
