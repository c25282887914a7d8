# A burst of the hub's receipts (billing answers a whole group commit at
# once) is applied by agentd a slice per turn of its loop, the rest
# queued in order (agent/ag_ledq.c, ag_ledq_defer): 160 requests, 32 at
# a time, are all charged, and the agent's copy of the chain ends
# byte-identical to the hub's, verifies, and holds no dispute, without
# a gap the agent had to sync for (which would heal a lost one).  A
# signed receipt stores the batch it closes a slice a turn, the link's
# later frames waiting behind it: 16 entries by default, 4 here, so that
# a slow machine, whose group commits close fewer entries, still
# makes batches longer than a slice.  The agent's log (debug) must
# show that frames did wait for later turns and that a batch was stored
# in slices, or this test would not be testing them.
source "$(dirname "$0")/lib.sh"
export SWB_TEST_LEDGER_SLICE=4
hub_with_tunnel
start_mock --chunks 1 --delay-ms 0
start_agent burst1
GW=$(gw_url)
AINI=$SWB_TMP/burst1.ini
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
TOK=$(ctl token create --name burst)
# The agent at debug, so that the queue says when it is used.
sed -i '/^\[agent\]/a log_level = debug' "$AINI"
kill -HUP "$AG_PID"
wait_until 5 grep -q "reloaded" "$SWB_TMP/agent-burst1.log" ||
    fail "agentd did not reload: $(tail -3 "$SWB_TMP/agent-burst1.log")"

N=160
note "$N requests, 32 at a time"
BODY='{"model":"gpt-4o","max_tokens":3,"messages":[{"role":"user","content":"a burst"}]}'
seq "$N" | xargs -P 32 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -H 'content-type: application/json' -d "$BODY" >"$SWB_TMP/codes"
[ "$(grep -c '^200$' "$SWB_TMP/codes")" = "$N" ] ||
    fail "not every request answered 200: $(sort "$SWB_TMP/codes" | uniq -c | tr '\n' ' ')"

hub_csv() { ctl ledger export "$AGENT_ID"; }
agent_csv() { "$AGENTD" ledger export -c "$AINI"; }
all() { [ "$(hub_csv | tail -n +2 | wc -l)" = "$N" ]; }
same() { [ "$(hub_csv)" = "$(agent_csv)" ]; }
wait_until 15 all || fail "hub entries: $(hub_csv | tail -n +2 | wc -l) of $N"
wait_until 15 same || fail "the agent's chain differs from the hub's:
$(diff <(hub_csv) <(agent_csv) | head -20)"
"$AGENTD" ledger verify -c "$AINI" || fail "agentd ledger verify failed"
ctl ledger verify "$AGENT_ID" >/dev/null || fail "hubctl ledger verify failed"
grep -q "ledger frames wait for the next turns" "$SWB_TMP/agent-burst1.log" ||
    fail "no burst reached the queue: the test did not test it"
grep -q "closes a batch longer than a slice: stored a slice a turn" "$SWB_TMP/agent-burst1.log" ||
    fail "no signed batch was stored in slices: the test did not test it"
# A receipt lost or applied out of order shows as a gap the agent syncs
# for (the hub then replays, and the chains still end equal).
! grep -q "but our chain ends at" "$SWB_TMP/agent-burst1.log" ||
    fail "receipts were lost or reordered: $(grep -m1 'but our chain ends at' "$SWB_TMP/agent-burst1.log")"
! grep -qiE "dispute|refused|not applied" "$SWB_TMP/agent-burst1.log" ||
    fail "agentd: $(grep -iE 'dispute|refused|not applied' "$SWB_TMP/agent-burst1.log" | head -3)"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/v1/chat/completions" \
    -H "Authorization: Bearer $TOK" -H 'content-type: application/json' -d "$BODY")" = 200 ] ||
    fail "the hub stopped serving"
echo "ledger_burst: ok"
