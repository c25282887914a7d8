# When billing signs the chains (billing/bill_sign.c): a burst of requests
# to one agent is covered by a few signatures — at most one each 250 ms
# (and each 256 entries), not one per batch — and its receipts
# still all reach the agent's SQLite with no operator command, the last
# one signed on its timer once the requests stop; billing killed while a
# chain's last entry is unsigned signs it when it starts again, and the
# agent gets every entry; both exports stay byte-identical and verify.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 1 --delay-ms 0
start_agent sig1
GW=$(gw_url)
AINI=$SWB_TMP/sig1.ini
ctl price set gpt-4o-mini --input 1000 --output 2000 >/dev/null
TOK=$(ctl token create --name sig)
HUBDB=$SWB_TMP/hubd.db
AGDB=$SWB_TMP/state-sig1/ledger.db
NS='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"sign me"}]}'
# db FILE SQL: one value, read-only (WAL lets it read beside the writer).
db() {
    python3 - "$1" "$2" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True, timeout=5)
print(c.execute(sys.argv[2]).fetchone()[0])
PY
}
hub_n() { db "$HUBDB" "SELECT COUNT(*) FROM ledger WHERE agent_id = $AGENT_ID"; }
hub_signed() { db "$HUBDB" "SELECT COUNT(*) FROM ledger WHERE agent_id = $AGENT_ID AND sig != ''"; }
hub_last_signed() { db "$HUBDB" "SELECT sig != '' FROM ledger WHERE agent_id = $AGENT_ID ORDER BY seq DESC LIMIT 1"; }
agent_n() { db "$AGDB" "SELECT COUNT(*) FROM ledger WHERE agent_id = $AGENT_ID"; }
chat() {
    curl -s -o /dev/null -w '%{http_code}\n' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' -d "$NS"
}
export -f chat
export GW TOK NS

note "60 requests, 8 at a time: a few signatures, every receipt at the agent"
t0=$(date +%s%N)
seq 60 | xargs -P 8 -I{} bash -c chat >"$SWB_TMP/codes"
t1=$(date +%s%N)
[ "$(grep -c '^200$' "$SWB_TMP/codes")" = 60 ] || fail "statuses: $(sort "$SWB_TMP/codes" | uniq -c)"
n60() { [ "$(hub_n)" = 60 ]; }
wait_until 10 n60 || fail "hub entries: $(hub_n)"
# No ledger command here (it would sign): the agent must get the last
# receipts' signature from billing's own timer.
agent60() { [ "$(agent_n)" = 60 ]; }
wait_until 10 agent60 || fail "the agent stored $(agent_n) of 60 entries (the chain's end was never signed?)"
[ "$(hub_last_signed)" = 1 ] || fail "the chain's last entry is unsigned after the burst"
ms=$(((t1 - t0) / 1000000))
signed=$(hub_signed)
# One signature each 250 ms of the burst at most, one more for its end,
# one more for a boundary; the old rule (each batch, then 30 ms) gave
# about ms/30.
max=$((ms / 250 + 3))
note "burst of $ms ms: $signed signatures over 60 entries (at most $max)"
[ "$signed" -ge 1 ] && [ "$signed" -le "$max" ] && [ "$signed" -lt 60 ] ||
    fail "$signed of 60 entries signed in a $ms ms burst (at most $max expected)"

note "billing killed with the chain's last entry unsigned: signed when it is back"
BILL=$(child_pid billing)
# catch_unsigned BEFORE: wait for an entry past seq BEFORE; if it is
# unsigned (it stays so for 250 ms), kill billing at once and print its seq.
catch_unsigned() {
    python3 - "$HUBDB" "$AGENT_ID" "$BILL" "$1" <<'PY'
import os, signal, sqlite3, sys, time
db, agent, pid, before = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=5)
end = time.time() + 10
while time.time() < end:
    r = c.execute('SELECT seq, sig FROM ledger WHERE agent_id = ? ORDER BY seq DESC LIMIT 1',
                  (agent,)).fetchone()
    if r and r[0] > before:
        if r[1] != '':
            sys.exit(1)
        os.kill(pid, signal.SIGKILL)
        print(r[0])
        sys.exit(0)
    time.sleep(0.002)
sys.exit(1)
PY
}
killed=
for try in 1 2 3; do
    before=$(hub_n)
    chat >/dev/null &
    cp=$!
    killed=$(catch_unsigned "$before") || killed=
    wait "$cp" || true
    [ -z "$killed" ] || break
    sleep 0.5
done
[ -n "$killed" ] || fail "never saw the chain's last entry unsigned (3 tries)"
N=$(hub_n)
back() { p=$(child_pid billing); [ -n "$p" ] && [ "$p" != "$BILL" ] && [ "$p" != null ]; }
wait_until 30 back || fail "billing did not come back"
resigned() { grep -q "signed its chain's last entry (seq $N), left unsigned when billing stopped" "$SWB_TMP/hub.log"; }
wait_until 10 resigned || fail "no re-signing of seq $N: $(grep -i sign "$SWB_TMP/hub.log" | tail -5)"
[ "$(hub_last_signed)" = 1 ] || fail "seq $N still unsigned after billing's restart"
agentN() { [ "$(agent_n)" = "$N" ]; }
wait_until 15 agentN || fail "the agent has $(agent_n) of $N entries after billing's restart"

note "both chains verify and the exports are the same"
ctl ledger verify "$AGENT_ID" >/dev/null || fail "hubctl ledger verify failed"
"$AGENTD" ledger verify -c "$AINI" || fail "agentd ledger verify failed"
[ "$(ctl ledger export "$AGENT_ID")" = "$("$AGENTD" ledger export -c "$AINI")" ] ||
    fail "exports differ: $(diff <(ctl ledger export "$AGENT_ID") <("$AGENTD" ledger export -c "$AINI"))"
echo "ok"
