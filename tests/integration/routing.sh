# Routing by token policy, end to end.  Three agents: good (grade B), low
# (grade C) and bad (grade B, provider unreachable).  A best token: the bad
# channel is ejected after three errors and gets no traffic in its
# cool-down while every request succeeds through retries.  A bound token
# reaches only its agent; a graded (min B) token never reaches the grade-C
# channel.  Recovery: bad is restarted with a reachable provider and, once
# its cool-down ends, serves again (its errors streak and ejection count
# reset by the success).  hubctl channels shows the figures and scores;
# [router] weights change on reload.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 2 --delay-ms 0
SWB_AGENT_GRADE=B start_agent good
GOOD=$AGENT_ID
SWB_AGENT_GRADE=C start_agent low
LOW=$AGENT_ID
SWB_AGENT_GRADE=B SWB_CONNECT_TO="api.openai.com:443:127.0.0.1:1" start_agent bad
BAD=$AGENT_ID BAD_PID=$AG_PID
GW=$(gw_url)
LOG=$SWB_TMP/hub.log

chat() {	# chat TOKEN: one request; prints the status
    curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $1" \
        -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'
}
chan_of() {	# chan_of AGENT_ID: that agent's entry in hubctl channels --json
    ctl --json channels | jq -c --argjson id "$1" '.channels[] | select(.agent_id==$id)'
}
mark() { wc -l <"$LOG"; }
relays_since() { tail -n +"$(($1 + 1))" "$LOG" | grep -o 'relaying to agent [0-9]*' | awk '{print $4}' || true; }

note "hubctl channels: three channels with their grades"
[ "$(ctl --json channels | jq '.channels | length')" = 3 ] || fail "expected 3 channels"
[ "$(chan_of "$GOOD" | jq -r .grade)" = B ] || fail "good's channel is not grade B"
[ "$(chan_of "$LOW" | jq -r .grade)" = C ] || fail "low's channel is not grade C"
[ "$(chan_of "$BAD" | jq -r .grade)" = B ] || fail "bad's channel is not grade B"
chan_of "$GOOD" | jq -e '.scores.best.why.load.weight == 250 and .scores.graded.why.rating != null
    and .scores.bound.why.headroom.value == 1000 and .rpm_limit == 600' >/dev/null ||
    fail "channels --json lacks scores/why: $(chan_of "$GOOD")"
ctl channels | head -1 | grep -q '^SLOT  *AGENT  *NAME  *CHANNEL' || fail "no human table: $(ctl channels)"

note "best token: bad is ejected after three errors, every request succeeds"
BEST=$(ctl token create)
m0=$(mark)
for i in $(seq 15); do
    code=$(chat "$BEST")
    [ "$code" = 200 ] || fail "request $i: $code $(cat "$SWB_TMP/out")"
done
grep -q "(agent $BAD) failed 3 times in a row: ejected for 5000 ms" "$LOG" || fail "bad channel not ejected"
tries=$(relays_since "$m0" | grep -cx "$BAD" || true)
[ "$tries" = 3 ] || fail "bad was tried $tries times, expected 3 before ejection"
after=$(sed -n "/(agent $BAD) failed 3 times in a row: ejected/,\$p" "$LOG" | grep -c "relaying to agent $BAD " || true)
[ "$after" = 0 ] || fail "ejected channel still got $after request(s)"
relays_since "$m0" | grep -qx "$LOW" || fail "low got no traffic from a best token"
chan_of "$BAD" | jq -e '.ejected == true and .ejected_until_ms > 0 and .err == 3' >/dev/null ||
    fail "channels does not show bad ejected: $(chan_of "$BAD")"
ctl channels | grep -E "^ *[0-9]+ +$BAD +bad " | grep -qE ' [0-9.]+s ' || fail "human table shows no cool-down"

note "bound token: 20 requests, all to its agent"
BOUND=$(ctl token create --policy bound --channels "$GOOD")
m1=$(mark)
for i in $(seq 20); do
    code=$(chat "$BOUND")
    [ "$code" = 200 ] || fail "bound request $i: $code $(cat "$SWB_TMP/out")"
done
n=$(relays_since "$m1" | wc -l)
other=$(relays_since "$m1" | grep -cvx "$GOOD" || true)
[ "$n" = 20 ] && [ "$other" = 0 ] || fail "bound token: $n relays, $other to another agent"
BOUND2=$(ctl token create --policy bound --channels "$LOW:main")
m1=$(mark)
for i in $(seq 10); do [ "$(chat "$BOUND2")" = 200 ] || fail "bound AGENT:CHANNEL request $i"; done
[ "$(relays_since "$m1" | grep -cvx "$LOW" || true)" = 0 ] || fail "bound AGENT:CHANNEL left its set"
NOWHERE=$(ctl token create --policy bound --channels 999999)
[ "$(chat "$NOWHERE")" = 404 ] || fail "a token bound to no online channel must get 404"

note "recovery: bad restarted with a reachable provider serves after its cool-down"
kill "$BAD_PID"
bad_offline() { ! agent_online "$BAD"; }
wait_until 5 bad_offline || fail "bad did not go offline"
sed -i "s|^connect_to = .*|connect_to = $SWB_CONNECT_TO|" "$SWB_TMP/bad.ini"
"$AGENTD" -c "$SWB_TMP/bad.ini" >>"$SWB_TMP/agent-bad.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
wait_until 15 agent_online "$BAD" || fail "bad not back online"
not_ejected() { chan_of "$BAD" | jq -e '.ejected == false' >/dev/null; }
wait_until 8 not_ejected || fail "bad still ejected: $(chan_of "$BAD")"
m2=$(mark)
served=0
for i in $(seq 20); do
    code=$(chat "$BEST")
    [ "$code" = 200 ] || fail "request $i after recovery: $code $(cat "$SWB_TMP/out")"
    if relays_since "$m2" | grep -qx "$BAD"; then served=1; break; fi
done
[ $served = 1 ] || fail "bad got no traffic after its cool-down"
ok_now() { chan_of "$BAD" | jq -e '.ok >= 1 and .err_streak == 0 and .ejections == 0 and .ejected == false' >/dev/null; }
wait_until 3 ok_now || fail "bad did not recover: $(chan_of "$BAD")"
ctl channels

note "graded token (min B): 20 requests, never the grade-C channel"
GRADED=$(ctl token create --policy graded --min-grade B)
m3=$(mark)
for i in $(seq 20); do
    code=$(chat "$GRADED")
    [ "$code" = 200 ] || fail "graded request $i: $code $(cat "$SWB_TMP/out")"
done
[ "$(relays_since "$m3" | wc -l)" = 20 ] || fail "graded: not 20 relays"
[ "$(relays_since "$m3" | grep -cx "$LOW" || true)" = 0 ] || fail "graded token reached the grade-C channel"
relays_since "$m3" | grep -qx "$BAD" && relays_since "$m3" | grep -qx "$GOOD" ||
    fail "graded token did not spread over both grade-B channels"
GRADED_A=$(ctl token create --policy graded --min-grade A)
[ "$(chat "$GRADED_A")" = 404 ] || fail "no grade-A channel: a min-A token must get 404"

note "[router] weights change on reload"
printf '[router]\nw_speed = 0\ntie_break = random\ntie_margin = 10\n' >>"$SWB_TMP/hubd.ini"
ctl reload >/dev/null || fail "reload failed"
ctl --json channels | jq -e '.weights.speed == 0 and .weights.tie_break == "random" and
    .weights.tie_margin == 10' >/dev/null || fail "weights not reloaded: $(ctl --json channels | jq -c .weights)"
for i in $(seq 5); do [ "$(chat "$BEST")" = 200 ] || fail "request after reload"; done
echo OK
