# The caps a channel's owner sets in agentd.ini, which the hub cannot
# exceed: max_tokens_per_request (400 max_tokens_per_request),
# max_concurrency (429 rate_limit_exceeded beyond N at once) and
# daily_budget (429 insufficient_quota once what the channel served today,
# priced with the agent's copy of the hub's prices, leaves too little).
# Every refusal comes from agentd before the provider is called: the mock's
# request log holds none of the refused requests.  The spending survives a
# restart of agentd (seeded from its ledger).
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock
SWB_AGENT_CHANNELS="[channel.main]
provider = openai
models = gpt-4o-mini,gpt-4o
key = sk-test-provider-key
rpm = 600
tpm = 1000000
max_concurrency = 2
max_tokens_per_request = 500
daily_budget = 0.1" start_agent capped
TOK=$(ctl token create --name caps --quota 100)
GW=$(gw_url)
# ask MARK [MAX_TOKENS] [EXTRA-DIRECTIVE]: one chat completion; prints the
# status, body in $SWB_TMP/MARK.body
ask() {
    local mark=$1 mt=${2:-} dir=${3:-}
    local body
    body=$(jq -cn --arg c "$mark $dir" --arg mt "$mt" \
        '{model:"gpt-4o", messages:[{role:"user", content:$c}]} + (if $mt == "" then {} else {max_tokens: ($mt|tonumber)} end)')
    curl -s -o "$SWB_TMP/$mark.body" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -d "$body"
}
mock_saw() { grep -c -- "$1" "$SWB_TMP/mock.jsonl" || true; }

note "max_tokens_per_request = 500"
[ "$(ask cap-small 100)" = 200 ] || fail "a request within the caps was refused: $(cat "$SWB_TMP/cap-small.body")"
code=$(ask cap-big 1000)
[ "$code" = 400 ] || fail "max_tokens 1000 answered $code: $(cat "$SWB_TMP/cap-big.body")"
[ "$(jq -r .error.code "$SWB_TMP/cap-big.body")" = max_tokens_per_request ] || fail "body: $(cat "$SWB_TMP/cap-big.body")"
jq -r .error.message "$SWB_TMP/cap-big.body" | grep -q "at most 500 per request" || fail "message: $(cat "$SWB_TMP/cap-big.body")"
[ "$(mock_saw cap-small)" = 1 ] || fail "the mock did not see the small request"
[ "$(mock_saw cap-big)" = 0 ] || fail "the mock saw the refused request"
grep -q "refused by a cap" "$SWB_TMP/agent-capped.log" || fail "agentd logged no refusal"

note "max_concurrency = 2: 5 slow requests at once"
pids=()
for i in 1 2 3 4 5; do
    ( ask "cap-conc-$i" "" "[mock delay=400]" >"$SWB_TMP/conc.$i" ) &
    pids+=($!)
done
wait "${pids[@]}"
ok=0; lim=0
for i in 1 2 3 4 5; do
    c=$(cat "$SWB_TMP/conc.$i")
    case $c in
    200) ok=$((ok + 1)) ;;
    429) lim=$((lim + 1))
         [ "$(jq -r .error.code "$SWB_TMP/cap-conc-$i.body")" = rate_limit_exceeded ] ||
             fail "429 body: $(cat "$SWB_TMP/cap-conc-$i.body")" ;;
    *) fail "request $i answered $c: $(cat "$SWB_TMP/cap-conc-$i.body")" ;;
    esac
done
echo "5 at once: $ok answered, $lim refused"
[ "$ok" = 2 ] && [ "$lim" = 3 ] || fail "expected 2 answered and 3 refused"
[ "$(mock_saw cap-conc-)" = 2 ] || fail "the mock saw $(mock_saw cap-conc-) of them, not 2"
# Once they are over, the slots are free again.
[ "$(ask cap-after)" = 200 ] || fail "a request after the burst was refused"

note "daily_budget = 0.1 at 1000 per 1M output tokens: 40 tokens cost 0.04"
ctl price set gpt-4o --input 0 --output 1000 >/dev/null || fail "price set"
price_known() { [ "$(sqlite3 "$SWB_TMP/state-capped/ledger.db" "SELECT count(*) FROM prices WHERE model='gpt-4o'")" = 1 ]; }
wait_until 5 price_known || fail "the agent did not receive the price"
[ "$(ask cap-b1 40 '[mock chunks=40]')" = 200 ] || fail "budget request 1 refused: $(cat "$SWB_TMP/cap-b1.body")"
[ "$(ask cap-b2 40 '[mock chunks=40]')" = 200 ] || fail "budget request 2 refused: $(cat "$SWB_TMP/cap-b2.body")"
code=$(ask cap-b3 40 '[mock chunks=40]')
[ "$code" = 429 ] || fail "budget request 3 answered $code: $(cat "$SWB_TMP/cap-b3.body")"
[ "$(jq -r .error.code "$SWB_TMP/cap-b3.body")" = insufficient_quota ] || fail "body: $(cat "$SWB_TMP/cap-b3.body")"
jq -r .error.message "$SWB_TMP/cap-b3.body" | grep -q "spent 0.080000 of its daily budget of 0.100000" ||
    fail "message: $(cat "$SWB_TMP/cap-b3.body")"
[ "$(mock_saw cap-b3)" = 0 ] || fail "the mock saw the request beyond the budget"
# A smaller one still fits (10 tokens: 0.01).
[ "$(ask cap-b4 10 '[mock chunks=10]')" = 200 ] || fail "a request within what is left was refused"

note "the spending survives a restart of agentd"
kill "$AG_PID"; wait "$AG_PID" 2>/dev/null || true
"$AGENTD" -c "$SWB_TMP/capped.ini" >>"$SWB_TMP/agent-capped.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 5 agent_online "$AGENT_ID" || fail "agent not back online"
sleep 0.5
code=$(ask cap-b5 40 '[mock chunks=40]')
[ "$code" = 429 ] || fail "after a restart the budget was forgotten ($code)"
[ "$(mock_saw cap-b5)" = 0 ] || fail "the mock saw the request beyond the budget after a restart"
echo "caps: ok"
