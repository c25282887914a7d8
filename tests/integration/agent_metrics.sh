# agentd's own figures reach the hub: every couple of seconds a metrics
# frame per channel, which the tunnel stores in the scoreboard beside the
# hub's counters (`hubctl channels` shows them as agent_metrics): requests
# and tokens this minute, errors, in-flight, latency and its rpm bucket.
# Also: an idle agentd sleeps between its timers (no burst of zero-timeout
# polls before each, as lws's own timers made: lib/ltimer.h).
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock
SWB_CHANNEL_RPM=100 start_agent metered
TOK=$(ctl token create --name met)
GW=$(gw_url)
am() { ctl --json channels | jq -c --argjson id "$AGENT_ID" '.channels[] | select(.agent_id==$id) | .agent_metrics'; }
has_metrics() { [ -n "$(am)" ] && [ "$(am)" != null ]; }
wait_until 5 has_metrics || fail "no metrics from the agent: $(am)"
s=$(( $(date +%s) % 60 )); if ((s >= 45)); then sleep $((61 - s)); fi
for i in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
        -d '{"model":"gpt-4o","messages":[{"role":"user","content":"metered"}]}')" = 200 ] || fail "request $i"
done
three() { am | jq -e '.requests_minute == 3 and .inflight == 0' >/dev/null; }
wait_until 5 three || fail "the agent's requests this minute did not reach 3: $(am)"
m=$(am)
echo "agent metrics: $m"
jq -e '.tokens_minute >= 3*8' <<<"$m" >/dev/null || fail "tokens not counted (8 output tokens each): $m"
jq -e '.errors_minute == 0 and .inflight == 0' <<<"$m" >/dev/null || fail "errors/inflight: $m"
jq -e '.bucket_requests >= 0 and .bucket_requests <= 100' <<<"$m" >/dev/null || fail "bucket: $m"
jq -e '.latency_ms >= 0 and .age_ms < 5000' <<<"$m" >/dev/null || fail "latency/age: $m"
# A failing upstream call counts as an error.
curl -s -o /dev/null "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"[mock status=500] bad"}]}'
err1() { [ "$(am | jq .errors_minute)" -ge 1 ]; }
wait_until 5 err1 || fail "the upstream 500 was not counted: $(am)"
note "an idle agentd sleeps between its timers"
# Its 100 ms tick (heartbeats, usage reports, these metrics) is about 40
# system calls a second; lws timers ended each wait with hundreds of
# poll(..., 0) (about 560 a second in all).  Counted by perf where it can
# count system calls (tools/deps.sh installs it).
sleep 1
n=$(perf stat -x, -e raw_syscalls:sys_enter -p "$AG_PID" -- sleep 3 2>&1 |
    awk -F, '/raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ {print $1}' || true)
if [ -z "$n" ]; then
    echo "agent_metrics: perf cannot count system calls here: the idle check is skipped"
else
    echo "idle agentd: $n system calls in 3 s"
    [ "$n" -lt 600 ] || fail "an idle agentd made $n system calls in 3 s (a busy loop?)"
fi
echo "agent_metrics: ok"
