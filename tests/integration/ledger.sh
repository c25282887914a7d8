# The ledger through the real stack: every charged request becomes one
# entry of its agent's hash chain, signed by the hub; the agent checks it
# against its own usage and prices and keeps a copy in its SQLite.  The
# two exports are byte-identical, both chains verify, the amounts add up
# to what the token was charged, a price change reaches the agent, an
# agent that lost its database gets the whole chain replayed, a stream its
# user left is settled once from the agent's own report (flagged), an
# entry billed while its agent was down reaches it when it returns, a
# request whose gateway died is billed from its agent's report, a
# tampered entry makes verify fail on either side, and a disagreement is a
# dispute.
source "$(dirname "$0")/lib.sh"
SWB_STALE=4s hub_with_tunnel
start_mock --chunks 4 --delay-ms 5
start_agent led1
GW=$(gw_url)
AINI=$SWB_TMP/led1.ini
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
TOK=$(ctl token create --name led --quota 100)
chat() {	# OUTFILE BODY: prints the status; headers in OUTFILE.h
    curl -sN -D "$1.h" -o "$1" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' -d "$2"
}
rid() { tr -d '\r' <"$1.h" | awk -F': ' 'tolower($1)=="x-request-id" {print $2}'; }
NS='{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hello ledger"}]}'
ST='{"model":"gpt-4o","stream":true,"max_tokens":6,"messages":[{"role":"user","content":"stream me"}]}'
hub_csv() { ctl ledger export "$AGENT_ID"; }
agent_csv() { "$AGENTD" ledger export -c "$AINI"; }
lines() { hub_csv | tail -n +2 | wc -l; }
same() { [ "$(hub_csv)" = "$(agent_csv)" ]; }
used_micros() { ctl --json token list | jq -r '.tokens[] | select(.name=="led") | .used' | tr -d . | sed 's/^0*//;s/^$/0/'; }
sum_amounts() { hub_csv | tail -n +2 | awk -F, '{gsub(/\./, "", $8); s += $8} END {printf "%d\n", s}'; }

note "six requests: six entries, the same on both sides"
ids=()
for i in 1 2 3; do
    [ "$(chat "$SWB_TMP/n$i" "$NS")" = 200 ] || fail "request $i: $(cat "$SWB_TMP/n$i")"
    ids+=("$(rid "$SWB_TMP/n$i")")
    [ "$(chat "$SWB_TMP/s$i" "$ST")" = 200 ] || fail "stream $i: $(cat "$SWB_TMP/s$i")"
    ids+=("$(rid "$SWB_TMP/s$i")")
done
for r in "${ids[@]}"; do [[ $r =~ ^[0-9a-f]{16}-[0-9a-f]{16}$ ]] || fail "x-request-id '$r'"; done
six() { [ "$(lines)" = 6 ]; }
wait_until 10 six || fail "hub entries: $(hub_csv)"
wait_until 10 same || fail "exports differ:
$(diff <(hub_csv) <(agent_csv))"
hub_csv | head -1 | grep -qx 'seq,request_id,model,input_tokens,output_tokens,cached_tokens,price_version,amount,prev_hash,hash,images,audio_seconds,audio_chars,video_seconds' \
    || fail "header: $(hub_csv | head -1)"
for r in "${ids[@]}"; do hub_csv | grep -q ",$r," || fail "request $r is not in the ledger"; done
hub_csv | tail -n +2 | awk -F, '$1 != NR || $7 != 1 {exit 1}' || fail "seq or price version: $(hub_csv)"
[ "$(hub_csv | tail -n +2 | grep -cE '^[0-9]+,[0-9a-f]{16}-[0-9a-f]{16},gpt-4o,[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+\.[0-9]{6},[0-9a-f]{64},[0-9a-f]{64},0,0,0,0$')" = 6 ] \
    || fail "malformed lines: $(hub_csv)"
[ "$(hub_csv | sed -n 2p | cut -d, -f9)" = "$(printf '0%.0s' $(seq 64))" ] || fail "seq 1 does not start from the genesis hash"
ctl ledger verify "$AGENT_ID" >/dev/null || fail "hubctl ledger verify failed"
"$AGENTD" ledger verify -c "$AINI" || fail "agentd ledger verify failed"
[ "$(sum_amounts)" = "$(used_micros)" ] || fail "sum of amounts $(sum_amounts) != used $(used_micros)"

note "a new price version reaches the agent and prices the next request"
ctl price set gpt-4o --input 3000 --output 4000 >/dev/null
[ "$(chat "$SWB_TMP/p1" "$NS")" = 200 ] || fail "request after the price change"
# Billing reads a post up to 2 ms after the answer (lib/msgsrv.h,
# Deferred clients) and commits it with its batch: wait for its entry.
seven() { [ "$(lines)" = 7 ]; }
wait_until 10 seven || fail "the request after the price change is not in the ledger: $(hub_csv)"
wait_until 10 same || fail "exports differ after the price change"
[ "$(hub_csv | tail -1 | cut -d, -f7)" = 2 ] || fail "not priced at version 2: $(hub_csv | tail -1)"
[ "$(ctl --json disputes | jq '.disputes | length')" = 0 ] || fail "disputes: $(ctl disputes)"
[ "$(sum_amounts)" = "$(used_micros)" ] || fail "sum of amounts != used after the price change"

note "an agent that lost its database gets the whole chain replayed"
kill "$AG_PID"; wait "$AG_PID" 2>/dev/null || true
rm -rf "$SWB_TMP/state-led1"
"$AGENTD" -c "$AINI" >>"$SWB_TMP/agent-led1.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 same || fail "no replay after the agent came back:
$(diff <(hub_csv) <(agent_csv))"
"$AGENTD" ledger verify -c "$AINI" || fail "the replayed chain does not verify"

note "a user who leaves mid-stream: the agent's own report settles it, once, flagged"
CUT='{"model":"gpt-4o","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"cut me [mock chunks=20 delay=100]"}]}'
cut() {	# OUTFILE: a stream its user leaves after 0.5 s
    curl -sN -m 0.5 -D "$1.h" -o "$1" "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
        -H 'content-type: application/json' -d "$CUT" || true
}
hubdb() { sqlite3 "$SWB_TMP/hubd.db" "$1"; }
cut "$SWB_TMP/c1"
C1=$(rid "$SWB_TMP/c1")
flag_of() { hubdb "SELECT agent_reported FROM ledger WHERE request_id = '$1'"; }
reported() { [ "$(flag_of "$C1")" = 1 ]; }
wait_until 15 reported || fail "cut stream $C1 not settled from the agent's report: $(hubdb "SELECT state, agent_id FROM charges WHERE request_id = '$C1'")"
wait_until 10 same || fail "exports differ after the cut stream"
[ "$(hub_csv | grep -c ",$C1,")" = 1 ] || fail "$C1 is not in the ledger exactly once"
[ "$(sum_amounts)" = "$(used_micros)" ] || fail "sum of amounts != used after the cut stream"

note "an entry made while its agent is offline is replayed when it returns"
cut "$SWB_TMP/c2"
C2=$(rid "$SWB_TMP/c2")
kill -9 "$AG_PID"; wait "$AG_PID" 2>/dev/null || true
posted() { [ "$(flag_of "$C2")" = 0 ]; }
wait_until 15 posted || fail "with its agent gone, $C2 was not billed from the hub's estimate after report_grace"
[ "$(agent_csv | grep -c ",$C2,")" = 0 ] || fail "the agent has $C2 although it was down"
"$AGENTD" -c "$AINI" >>"$SWB_TMP/agent-led1.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 same || fail "the entry made while the agent was down was not replayed:
$(diff <(hub_csv) <(agent_csv))"
"$AGENTD" ledger verify -c "$AINI" >/dev/null || fail "the chain does not verify after the replay"
[ "$(sum_amounts)" = "$(used_micros)" ] || fail "sum of amounts != used after the replay"

note "a gateway that dies mid-stream: its agent's report bills the request"
# Both gateway workers are killed while the stream runs: the post is lost
# with them.  The agent reports what it served; after stale_reservation
# (4 s here) billing bills that report instead of voiding the reservation.
curl -sN -D "$SWB_TMP/g1.h" -o "$SWB_TMP/g1" "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -H 'content-type: application/json' -d "$CUT" &
CP=$!
head_in() { grep -qi '^x-request-id' "$SWB_TMP/g1.h" 2>/dev/null; }
wait_until 5 head_in || fail "no answer head for the gateway-kill stream"
G1=$(rid "$SWB_TMP/g1")
kill -9 "$(child_pid 'gateway#0')" "$(child_pid 'gateway#1')"
wait "$CP" 2>/dev/null || true
billed_g1() { [ "$(flag_of "$G1")" = 1 ]; }
wait_until 20 billed_g1 || fail "$G1 (gateway killed) not billed from its agent's report: $(hubdb "SELECT state, agent_id FROM charges WHERE request_id = '$G1'")"
wait_until 10 all_running || fail "the gateways did not come back"
wait_until 10 same || fail "exports differ after the gateway kill"
[ "$(sum_amounts)" = "$(used_micros)" ] || fail "sum of amounts != used after the gateway kill"
GW=$(gw_url)

note "tampering is found on either side"
cp "$SWB_TMP/hubd.db" "$SWB_TMP/tampered.db"
sqlite3 "$SWB_TMP/hubd.db" "UPDATE ledger SET amount = amount + 1 WHERE seq = 3"
if ctl ledger verify "$AGENT_ID" 2>"$SWB_TMP/verify.err"; then fail "hubctl verify missed a changed amount"; fi
grep -q "seq 3" "$SWB_TMP/verify.err" || fail "verify did not name seq 3: $(cat "$SWB_TMP/verify.err")"
sqlite3 "$SWB_TMP/hubd.db" "UPDATE ledger SET amount = amount - 1 WHERE seq = 3"
ctl ledger verify "$AGENT_ID" >/dev/null || fail "verify fails after the repair"
ADB=$(ls "$SWB_TMP"/state-led1/*.db | head -1)
sqlite3 "$ADB" "UPDATE ledger SET output_tokens = output_tokens + 1 WHERE seq = 2"
if "$AGENTD" ledger verify -c "$AINI" >/dev/null 2>&1; then fail "agentd verify missed a changed entry"; fi
sqlite3 "$ADB" "UPDATE ledger SET output_tokens = output_tokens - 1 WHERE seq = 2"
"$AGENTD" ledger verify -c "$AINI" || fail "agentd verify fails after the repair"

note "an agent whose prices disagree disputes the entry"
sqlite3 "$ADB" "UPDATE prices SET output = output + 1000000 WHERE version = 2"
[ "$(chat "$SWB_TMP/d1" "$NS")" = 200 ] || fail "request for the dispute"
D=$(rid "$SWB_TMP/d1")
disputed() { ctl --json disputes | jq -e --arg r "$D" '.disputes[] | select(.request_id==$r)' >/dev/null; }
wait_until 10 disputed || fail "no dispute for $D: $(ctl disputes)"
wait_until 10 same || fail "a disputed entry must still be in both chains"
ctl disputes | grep -q "$D" || fail "hubctl disputes does not list $D"
echo "ledger: ok ($(lines) entries)"
