# The randomized fault test of the ledger, shared by ledger_faults_sqlite.sh
# and ledger_faults_pg.sh (FAULTS_ENGINE=sqlite|postgresql).  A fixed seed
# (printed; SWB_SEED=N replays another) draws the plan: many concurrent
# streaming and non-streaming requests on three tokens through two agents,
# some cut short by their user, while one agent is killed (-9) and
# restarted, then the other, and the billing process is stopped for a
# moment (requests and posts queue up unread) and then killed (-9), twice.
# When the dust settles:
#   - the hub's export equals each agent's export byte for byte;
#   - both sides' chains verify;
#   - the sum of all amounts equals what the tokens were charged;
#   - no request id is in the ledger twice;
#   - every request that completed is in the ledger, exactly once;
#   - no charge is left reserved or awaiting, and every posted charge has
#     its ledger entry.
source "$(dirname "$0")/lib.sh"
SEED=${SWB_SEED:-20261126}
echo "ledger_faults ($FAULTS_ENGINE): seed $SEED (SWB_SEED=$SEED replays it)"
RANDOM=$SEED
N=${SWB_FAULT_REQUESTS:-160}
PAR=8
# agentd stores a signed batch 1 entry a turn here (16 by default), so
# that the kills also land while a batch is being stored.
export SWB_TEST_LEDGER_SLICE=1
SVC=$(dirname "$0")/../services

make_certs "$SWB_TMP/certs"
SWB_REPORT_GRACE=6s SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s
handshake_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini"
if [ "$FAULTS_ENGINE" = postgresql ]; then
    PG=$(bash "$SVC/pg.sh" start "$SWB_TMP/pg")
    SWB_CLEANUP+=("bash $SVC/pg.sh stop $SWB_TMP/pg")
    sed -i "s|^url = sqlite:.*|url = $PG|" "$SWB_TMP/hubd.ini"
    sql() { psql "$PG" -Atqc "$1"; }
else
    sql() { sqlite3 "$SWB_TMP/hubd.db" "$1"; }
fi
start_hub "$SWB_TMP/hubd.ini"
start_mock --chunks 8 --delay-ms 15
start_agent fa; A1=$AGENT_ID P1=$AG_PID
start_agent fb; A2=$AGENT_ID P2=$AG_PID
GW=$(gw_url)
ctl price set gpt-4o --input 1000 --output 2000 --cached-input 500 >/dev/null
ctl price set gpt-4o-mini --input 150 --output 600 >/dev/null
TOKS=()
for t in 1 2 3; do TOKS+=("$(ctl token create --name fault$t --quota 1000)"); done

restart_agent() {	# NAME: start its agentd again; prints the pid
    "$AGENTD" -c "$SWB_TMP/$1.ini" >>"$SWB_TMP/agent-$1.log" 2>&1 &
    echo $!
}
one() {	# I KIND TOKEN ABORT
    local i=$1 kind=$2 tok=$3 abort=$4 model body m=()
    model=gpt-4o; ((i % 3 == 0)) && model=gpt-4o-mini
    if [ "$kind" = stream ]; then
        body='{"model":"'$model'","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"request '$i' streams"}]}'
    else
        body='{"model":"'$model'","max_tokens":8,"messages":[{"role":"user","content":"request '$i' in one piece"}]}'
    fi
    ((abort)) && m=(-m 0.07)
    curl -sN "${m[@]}" -D "$SWB_TMP/r/$i.h" -o "$SWB_TMP/r/$i.b" -w '%{http_code}' \
        "$GW/v1/chat/completions" -H "Authorization: Bearer $tok" \
        -H 'content-type: application/json' -d "$body" >"$SWB_TMP/r/$i.st" 2>/dev/null || true
}
mkdir -p "$SWB_TMP/r"
RP=()
# The plan, drawn in this shell so that the seed alone decides it.
KA=$((20 + RANDOM % 20)); RA=$((KA + 10 + RANDOM % 10))
KB=$((RA + 25 + RANDOM % 15)); RB=$((KB + 10 + RANDOM % 10))
BK1=$((10 + RANDOM % 30)); BK2=$((70 + RANDOM % 50))
echo "plan: $N requests, $PAR at a time; agent fa killed at $KA, back at $RA; agent fb killed at $KB, back at $RB; billing killed at $BK1 and $BK2"
for i in $(seq 1 "$N"); do
    kind=plain; ((RANDOM % 2)) && kind=stream
    abort=0; ((RANDOM % 7 == 0)) && abort=1
    tok=${TOKS[RANDOM % 3]}
    case $i in
    "$KA") kill -9 "$P1"; echo "request $i: agent fa killed" ;;
    "$RA") P1=$(restart_agent fa); SWB_CLEANUP+=("kill $P1"); echo "request $i: agent fa restarted" ;;
    "$KB") wait_until 10 agent_online "$A1" || fail "agent fa did not come back"
          kill -9 "$P2"; echo "request $i: agent fb killed" ;;
    "$RB") P2=$(restart_agent fb); SWB_CLEANUP+=("kill $P2"); echo "request $i: agent fb restarted" ;;
    esac
    if [ "$i" = "$BK1" ] || [ "$i" = "$BK2" ]; then
        # Stopped first, so that reservations and posts pile up unread
        # in its socket, then killed: they are lost with it and must be
        # sent again by the gateways.
        bp=$(child_pid billing)
        kill -STOP "$bp"; sleep 0.4; kill -9 "$bp"
        echo "request $i: billing stopped 0.4 s, then killed"
    fi
    one "$i" "$kind" "$tok" "$abort" &
    RP+=($!)
    while :; do	# at most PAR requests in flight
        live=()
        for p in "${RP[@]}"; do kill -0 "$p" 2>/dev/null && live+=("$p"); done
        RP=("${live[@]}")
        ((${#RP[@]} < PAR)) && break
        sleep 0.02
    done
    sleep 0.04	# spread the load over the faults
done
for p in "${RP[@]}"; do wait "$p" || true; done
for a in fa fb; do wait_until 10 agent_online "$([ $a = fa ] && echo "$A1" || echo "$A2")" || fail "agent $a is not back"; done

completed=()
for i in $(seq 1 "$N"); do
    [ "$(cat "$SWB_TMP/r/$i.st")" = 200 ] || continue
    if grep -q '^data: ' "$SWB_TMP/r/$i.b"; then
        grep -q '^data: \[DONE\]' "$SWB_TMP/r/$i.b" || continue
        grep -q '"error"' "$SWB_TMP/r/$i.b" && continue
    else
        jq -e '.choices[0].message' "$SWB_TMP/r/$i.b" >/dev/null 2>&1 || continue
    fi
    completed+=("$(tr -d '\r' <"$SWB_TMP/r/$i.h" | awk -F': ' 'tolower($1)=="x-request-id" {print $2}')")
done
echo "${#completed[@]} of $N requests completed"
((${#completed[@]} >= N / 2)) || fail "too few requests completed: ${#completed[@]}"

open_charges() { sql "SELECT COUNT(*) FROM charges WHERE state IN ('reserved', 'awaiting')"; }
no_open() { [ "$(open_charges)" = 0 ]; }
wait_until 30 no_open \
    || fail "charges still open: $(sql "SELECT request_id, state, agent_id FROM charges WHERE state IN ('reserved', 'awaiting')")"
AINI1=$SWB_TMP/fa.ini AINI2=$SWB_TMP/fb.ini
same() { [ "$(ctl ledger export "$1")" = "$("$AGENTD" ledger export -c "$2")" ]; }
wait_until 30 same "$A1" "$AINI1" || fail "agent fa's export differs:
$(diff <(ctl ledger export "$A1") <("$AGENTD" ledger export -c "$AINI1") | head -20)"
wait_until 30 same "$A2" "$AINI2" || fail "agent fb's export differs:
$(diff <(ctl ledger export "$A2") <("$AGENTD" ledger export -c "$AINI2") | head -20)"
ctl ledger verify >/dev/null || fail "hubctl ledger verify: $(ctl ledger verify 2>&1)"
"$AGENTD" ledger verify -c "$AINI1" >/dev/null || fail "agent fa's chain does not verify"
"$AGENTD" ledger verify -c "$AINI2" >/dev/null || fail "agent fb's chain does not verify"

{ ctl ledger export "$A1" | tail -n +2; ctl ledger export "$A2" | tail -n +2; } >"$SWB_TMP/all.csv"
entries=$(wc -l <"$SWB_TMP/all.csv")
dups=$(cut -d, -f2 "$SWB_TMP/all.csv" | sort | uniq -d)
[ -z "$dups" ] || fail "charged twice: $dups"
for r in "${completed[@]}"; do
    [ "$(grep -c ",$r," "$SWB_TMP/all.csv")" = 1 ] || fail "completed request $r is not in the ledger exactly once"
done
amounts=$(awk -F, '{gsub(/\./, "", $8); s += $8} END {printf "%d\n", s}' "$SWB_TMP/all.csv")
used=$(ctl --json token list | jq -r '.tokens[] | select(.name|startswith("fault")) | .used' |
    tr -d . | awk '{s += $1} END {printf "%d\n", s}')
[ "$amounts" = "$used" ] || fail "sum of amounts $amounts != quota consumed $used (micro-units)"
posted=$(sql "SELECT COUNT(*) FROM charges WHERE state = 'posted'")
[ "$posted" = "$entries" ] || fail "$posted posted charges but $entries ledger entries"
agent_rep=$(sql "SELECT COUNT(*) FROM ledger WHERE agent_reported = 1")
echo "ledger_faults ($FAULTS_ENGINE): ok — $entries entries ($agent_rep agent-reported), $amounts micro-units, disputes: $(ctl --json disputes | jq '.disputes | length')"
