# [hub] event_loop = poll: the gateway workers and the tunnel on
# libwebsockets' own poll() loop, which is also what a hub runs where
# libwebsockets cannot load its libev support.  The same service as on
# epoll: whole and streamed answers, 24 requests at once, every one billed,
# an agent that reconnects, a reload, and the end-of-turn work (billing's
# answers, the relay's flushes) still done every turn.
source "$(dirname "$0")/lib.sh"
SWB_EVENT_LOOP=poll hub_with_tunnel
start_mock --chunks 3 --delay-ms 10
start_agent poll1
TOK=$(ctl token create --name poll)
TID=$(ctl --json token list | jq -r '.tokens[] | select(.name=="poll") | .id')
GW=$(gw_url)
chat() {	# OUT BODY: POST to the hub, prints the status
    curl -sN -o "$1" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' -d "$2"
}

note "every loop child said which loop it runs"
n=$(grep -c "event loop: libwebsockets' poll() (\[hub\] event_loop = poll)" "$SWB_TMP/hub.log" || true)
[ "$n" -ge 3 ] || fail "$n children on poll(), expected the 2 gateway workers and the tunnel"
! grep -q "cannot run on libev" "$SWB_TMP/hub.log" || fail "the poll loop was taken for a failure"

note "a whole answer"
[ "$(chat "$SWB_TMP/whole" '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}')" = 200 ] ||
    fail "whole answer: $(cat "$SWB_TMP/whole")"
[ "$(jq -r '.choices[0].message.content' "$SWB_TMP/whole")" = "tok0 tok1 tok2 " ] ||
    fail "whole answer content: $(cat "$SWB_TMP/whole")"

note "a streamed answer, chunk by chunk"
[ "$(chat "$SWB_TMP/stream" '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}')" = 200 ] ||
    fail "stream status"
content=$(sed -n 's/^data: //p' "$SWB_TMP/stream" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty')
[ "$content" = "tok0 tok1 tok2 " ] || fail "streamed content was '$content'"
tail -c 20 "$SWB_TMP/stream" | grep -q 'data: \[DONE\]' || fail "no [DONE]"

note "24 at once, streamed and whole"
pids=()
for i in $(seq 24); do
    if [ $((i % 2)) = 0 ]; then s=true; else s=false; fi
    chat "$SWB_TMP/par$i" "{\"model\":\"gpt-4o\",\"stream\":$s,\"messages\":[{\"role\":\"user\",\"content\":\"p$i\"}]}" \
        >"$SWB_TMP/par$i.code" &
    pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 24); do
    [ "$(cat "$SWB_TMP/par$i.code")" = 200 ] || fail "parallel request $i: $(cat "$SWB_TMP/par$i.code") $(head -c 300 "$SWB_TMP/par$i")"
done

note "every request billed, nothing left reserved"
posted() { [ "$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE token_id = $TID AND state = 'posted'")" = 26 ]; }
wait_until 10 posted || fail "posted charges: $(sqlite3 "$SWB_TMP/hubd.db" "SELECT state, COUNT(*) FROM charges WHERE token_id = $TID GROUP BY state")"
used=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT used FROM tokens WHERE id = $TID")
sum=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT SUM(amount) FROM charges WHERE token_id = $TID")
[ "$used" = "$sum" ] || fail "token used $used != sum of its charges $sum"
ledger_n() { "$AGENTD" ledger verify -c "$SWB_TMP/poll1.ini" 2>/dev/null | grep -q "^ok: 26 entries"; }
wait_until 10 ledger_n || fail "agent's ledger: $("$AGENTD" ledger verify -c "$SWB_TMP/poll1.ini" 2>&1)"

note "the agent reconnects, a reload, and it still serves"
kill -9 "$AG_PID"
wait "$AG_PID" 2>/dev/null || true
"$AGENTD" -c "$SWB_TMP/poll1.ini" >>"$SWB_TMP/agent-poll1.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 15 agent_online "$AGENT_ID" || fail "agent did not come back"
gen2() { [ "$(status_json | jq .config_generation)" = 2 ]; }
sed -i 's/^log_level = .*/log_level = warn/' "$SWB_TMP/hubd.ini"
kill -HUP "$HUB_PID"
wait_until 5 gen2 || fail "reload not applied"
back() { [ "$(chat "$SWB_TMP/after" '{"model":"gpt-4o","messages":[{"role":"user","content":"y"}]}')" = 200 ]; }
wait_until 10 back || fail "after the reconnect and the reload: $(cat "$SWB_TMP/after")"
echo OK
