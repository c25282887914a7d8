# The admin HTTP API and /metrics against a real hub, agent and mock:
# no key, a wrong key and a revoked key are the same 401; every route of
# docs/admin-openapi.yaml answers (not 404/405); token CRUD over HTTP
# changes what the gateway accepts; usage totals and a token's request
# log are what the charges table holds and match hubctl's answers (one
# implementation); the ledger export over HTTP is byte-identical to
# hubctl's; a price set over HTTP reaches the agent's ledger prices; a
# dispute resolved over HTTP changes both sides' records; a kick drops the
# agent, which comes back after its back-off; /metrics passes promtool
# after traffic and its counters match the requests sent; with
# log_format = json every log line is JSON and access_log writes one line
# per request.
source "$(dirname "$0")/lib.sh"
make_certs "$SWB_TMP/certs"
SWB_GW_INI="access_log = yes" SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini" "[admin]
listen = 127.0.0.1:0"
sed -i 's/^log_level = info$/log_level = info\nlog_format = json/' "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"
start_mock --chunks 3 --delay-ms 2
start_agent a1
AINI=$SWB_TMP/a1.ini
ADB=$SWB_TMP/state-a1/ledger.db
GW=$(gw_url)
ADM="http://$(status_json | jq -r .listen.admin)"
KEY=$(ctl admin-key create --name test)
[[ $KEY == swb-admin-* ]] || fail "admin-key create printed '$KEY'"
ctl price set gpt-4o-mini --input 150 --output 600 >/dev/null

# api METHOD PATH [BODY]: the body on stdout, the status in $SWB_TMP/st
api() {
    local m=$1 p=$2 b=${3:-}
    curl -s -o "$SWB_TMP/body" -w '%{http_code}' -X "$m" "$ADM$p" \
        -H "Authorization: Bearer ${K:-$KEY}" ${b:+-H 'content-type: application/json' -d "$b"} \
        >"$SWB_TMP/st"
    cat "$SWB_TMP/body"
}
st() { cat "$SWB_TMP/st"; }
chat() {   # TOKEN MODEL [stream]: the status; headers in $SWB_TMP/h
    curl -sN -D "$SWB_TMP/h" -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $1" \
        -d "{\"model\":\"$2\",\"stream\":${3:-false},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
rid() { tr -d '\r' <"$SWB_TMP/h" | awk -F': ' 'tolower($1)=="x-request-id" {print $2}'; }

note "no key, a wrong key, a revoked key: the same 401"
no=$(curl -s -w ' %{http_code}' "$ADM/admin/agents")
[ "$no" = '{"error":"unauthorized"} 401' ] || fail "no key: $no"
wrong=$(curl -s -w ' %{http_code}' "$ADM/admin/agents" -H 'Authorization: Bearer swb-admin-nope')
[ "$wrong" = "$no" ] || fail "wrong key answered differently: $wrong"
[ "$(curl -s -w ' %{http_code}' "$ADM/admin/nope")" = "$no" ] || fail "no key on an unknown path must be 401 too"
SPARE=$(ctl admin-key create --name spare)
K=$SPARE api GET /admin/status >/dev/null; [ "$(st)" = 200 ] || fail "a fresh key: $(st)"
spare_id=$(ctl --json admin-key list | jq -r '.keys[] | select(.name=="spare") | .id')
api DELETE "/admin/keys/$spare_id" >/dev/null; [ "$(st)" = 200 ] || fail "revoke over HTTP: $(st)"
[ "$(curl -s -w ' %{http_code}' "$ADM/admin/agents" -H "Authorization: Bearer $SPARE")" = "$no" ] ||
    fail "a revoked key still works"
ctl --json admin-key list | jq -e '.keys[] | select(.name=="spare") | .valid == false' >/dev/null ||
    fail "hubctl does not see the key revoked"

note "the seed's agents endpoint is hubctl agents"
api GET /admin/agents | jq -e --argjson id "$AGENT_ID" '.ok and (.agents[] | select(.id==$id))' >/dev/null ||
    fail "GET /admin/agents: $(cat "$SWB_TMP/body")"

note "traffic: 5 requests, 3 streams, 1 unknown model, 1 bad token"
TOK=$(ctl token create --name main)
TOK_ID=$(ctl --json token list | jq -r '.tokens[] | select(.name=="main") | .id')
ids=()
for i in 1 2 3 4 5; do
    [ "$(chat "$TOK" gpt-4o-mini)" = 200 ] || fail "request $i: $(cat "$SWB_TMP/out")"
    ids+=("$(rid)")
done
for i in 1 2 3; do
    [ "$(chat "$TOK" gpt-4o-mini true)" = 200 ] || fail "stream $i"
    ids+=("$(rid)")
done
[ "$(chat "$TOK" no-such-model)" = 404 ] || fail "unknown model"
[ "$(chat sk-wrong gpt-4o-mini)" = 401 ] || fail "bad token"

note "/metrics: promtool passes and the counters match"
metric() { curl -s "$ADM/metrics" -H "Authorization: Bearer $KEY" >"$SWB_TMP/metrics"; }
sum_of() { awk -v re="$1" '$0 ~ re {s += $NF} END {print s + 0}' "$SWB_TMP/metrics"; }
counted() { metric; [ "$(sum_of '^swb_requests_total')" = 10 ]; }
wait_until 5 counted || { cat "$SWB_TMP/metrics" | grep requests_total; fail "requests_total is not 10"; }
promtool check metrics <"$SWB_TMP/metrics" || fail "promtool refused /metrics"
[ "$(sum_of '^swb_requests_total\{surface="openai",model="gpt-4o-mini",provider="openai",status="200"\}')" = 8 ] ||
    fail "8 served requests expected: $(grep requests_total "$SWB_TMP/metrics")"
[ "$(sum_of '^swb_requests_total\{.*status="404"\}')" = 1 ] || fail "one 404 expected"
[ "$(sum_of '^swb_requests_total\{.*status="401"\}')" = 1 ] || fail "one 401 expected"
[ "$(sum_of '^swb_request_duration_seconds_count')" = 10 ] || fail "latency histogram count"
[ "$(sum_of '^swb_request_duration_seconds_bucket\{le="\+Inf"\}')" = 10 ] || fail "+Inf bucket"
[ "$(sum_of '^swb_time_to_first_byte_seconds_count')" = 10 ] || fail "TTFB histogram count"
[ "$(sum_of '^swb_agents_online')" = 1 ] || fail "agents online"
[ "$(sum_of '^swb_channel_ok_total')" -ge 8 ] || fail "channel ok counter"
grep -q '^swb_channel_score{agent="'"$AGENT_ID"'",channel="main",provider="openai",strategy="best"}' "$SWB_TMP/metrics" ||
    fail "no channel score"
grep -q '^swb_child_restarts_total{kind="billing",instance="0"} 0' "$SWB_TMP/metrics" || fail "restarts"
grep -q '^swb_billing_settlement_lag_seconds ' "$SWB_TMP/metrics" || fail "settlement lag"

note "log_format = json and one access line per request"
grep -v '^{' "$SWB_TMP/hub.log" | grep -q . && fail "a log line that is not JSON: $(grep -v '^{' "$SWB_TMP/hub.log" | head -2)"
jq -e . "$SWB_TMP/hub.log" >/dev/null || fail "hub.log is not JSON lines"
for r in "${ids[@]}"; do
    jq -c --arg k "${r#*-}" 'select(.req == $k and (.msg | startswith("access status=200 surface=openai model=gpt-4o-mini provider=openai channel=main@")))' \
        "$SWB_TMP/hub.log" | grep -q . || fail "no access line for $r"
done
[ "$(jq -r 'select(.msg | startswith("access ")) | .msg' "$SWB_TMP/hub.log" | wc -l)" = 10 ] ||
    fail "not one access line per request"
note "each served request's access line carries the amount billing charged"
for r in "${ids[@]}"; do
    want=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT amount FROM charges WHERE request_id='$r' AND state='posted'")
    [ -n "$want" ] && [ "$want" -gt 0 ] || fail "no posted charge for $r"
    got=$(jq -r --arg k "${r#*-}" 'select(.req == $k and (.msg | startswith("access "))) | .msg' "$SWB_TMP/hub.log" |
        sed -n 's/.* amount=\([0-9]*\)$/\1/p')
    [ "$got" = "$want" ] || fail "access line of $r says amount=$got, the charge is $want"
done
jq -r 'select(.msg | startswith("access status=401")) | .msg' "$SWB_TMP/hub.log" | grep -q ' amount=0$' ||
    fail "the refused request's access line lacks amount=0"

note "usage and the request log answer what the charges table holds"
from=$(( $(date +%s) - 3600 )); to=$(( $(date +%s) + 60 ))
db_sum=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) || ' ' || SUM(amount) FROM charges WHERE state='posted' AND token_id=$TOK_ID")
api GET "/admin/usage?by=token&bucket=day&from=$from&to=$to" >"$SWB_TMP/usage.json"
[ "$(st)" = 200 ] || fail "usage: $(cat "$SWB_TMP/usage.json")"
[ "$(jq -r --arg t "$TOK_ID" '[.rows[] | select(.key==$t)] | "\(map(.requests) | add) \(map(.amount_micros) | add)"' "$SWB_TMP/usage.json")" = "$db_sum" ] ||
    fail "usage by token $(cat "$SWB_TMP/usage.json") != charges $db_sum"
ctl --json usage --by token --bucket day --from "$from" --to "$to" | jq -S . >"$SWB_TMP/usage.ctl"
jq -S . "$SWB_TMP/usage.json" | cmp -s - "$SWB_TMP/usage.ctl" || fail "hubctl usage and GET /admin/usage differ"
api GET "/admin/usage?by=channel&from=$from&to=$to" | jq -e --arg k "$AGENT_ID:main" '.rows[] | select(.key==$k and .requests==8)' >/dev/null ||
    fail "usage by channel: $(cat "$SWB_TMP/body")"
api GET "/admin/usage?by=model&from=$from&to=$to" | jq -e '.rows[] | select(.key=="gpt-4o-mini" and .requests==8)' >/dev/null ||
    fail "usage by model"
# The request log, paged by 3: every request once, newest first.
seen=() cursor=
for _ in 1 2 3 4; do
    api GET "/admin/tokens/$TOK_ID/requests?limit=3${cursor:+&before=$cursor}" >"$SWB_TMP/page.json"
    [ "$(st)" = 200 ] || fail "requests page: $(cat "$SWB_TMP/page.json")"
    mapfile -t -O "${#seen[@]}" seen < <(jq -r '.requests[].request_id' "$SWB_TMP/page.json")
    jq -e '.requests | all(.model=="gpt-4o-mini" and .channel=="main" and .status=="posted" and (.amount | test("^[0-9]+\\.[0-9]{6}$")))' \
        "$SWB_TMP/page.json" >/dev/null || fail "request row: $(cat "$SWB_TMP/page.json")"
    cursor=$(jq -r '.next // empty' "$SWB_TMP/page.json")
    [ -n "$cursor" ] || break
done
[ "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" = 8 ] || fail "request log: ${#seen[@]} rows, want 8 distinct"
for r in "${ids[@]}"; do printf '%s\n' "${seen[@]}" | grep -qx "$r" || fail "$r not in the request log"; done

note "token CRUD over HTTP"
api POST /admin/tokens '{"name":"crud","quota":"5","models":["gpt-4o-mini"],"rpm":100}' >"$SWB_TMP/t.json"
[ "$(st)" = 201 ] || fail "create: $(cat "$SWB_TMP/t.json")"
T2=$(jq -r .secret "$SWB_TMP/t.json"); T2_ID=$(jq -r .id "$SWB_TMP/t.json")
[[ $T2 == sk-* ]] || fail "no secret"
api GET "/admin/tokens/$T2_ID" | jq -e '.name=="crud" and .quota=="5.000000" and .models=="gpt-4o-mini" and .rpm==100' >/dev/null ||
    fail "get: $(cat "$SWB_TMP/body")"
[ "$(chat "$T2" gpt-4o-mini)" = 200 ] || fail "the new token does not work"
api PATCH "/admin/tokens/$T2_ID" '{"name":"crud2","quota":"unlimited","tpm":5000,"expires":"2099-01-01"}' >/dev/null
[ "$(st)" = 200 ] || fail "update: $(cat "$SWB_TMP/body")"
ctl --json token get "$T2_ID" | jq -e '.name=="crud2" and .quota=="unlimited" and .rpm==100 and .tpm==5000 and .expires_at==4070995199' >/dev/null ||
    fail "update not in the store: $(ctl --json token get "$T2_ID")"
api POST "/admin/tokens/$T2_ID/disable" >/dev/null; [ "$(st)" = 200 ] || fail "disable"
refused() { [ "$(chat "$T2" gpt-4o-mini)" = 401 ]; }
wait_until 8 refused || fail "a disabled token still works"
api POST "/admin/tokens/$T2_ID/enable" >/dev/null; [ "$(st)" = 200 ] || fail "enable"
works() { [ "$(chat "$T2" gpt-4o-mini)" = 200 ]; }
wait_until 8 works || fail "an enabled token does not work"
api DELETE "/admin/tokens/$T2_ID" >/dev/null
[ "$(st)" = 400 ] || fail "a charged token must not be deleted: $(st) $(cat "$SWB_TMP/body")"
T3_ID=$(api POST /admin/tokens '{"name":"unused"}' | jq -r .id)
api DELETE "/admin/tokens/$T3_ID" >/dev/null; [ "$(st)" = 200 ] || fail "delete: $(cat "$SWB_TMP/body")"
api GET "/admin/tokens/$T3_ID" >/dev/null; [ "$(st)" = 404 ] || fail "a deleted token: $(st)"
api GET /admin/tokens | jq -e --argjson id "$T3_ID" '[.tokens[] | select(.id==$id)] | length == 0' >/dev/null ||
    fail "a deleted token is listed"

note "the ledger export over HTTP is hubctl's"
curl -s "$ADM/admin/ledger/$AGENT_ID/export" -H "Authorization: Bearer $KEY" >"$SWB_TMP/http.csv"
ctl ledger export "$AGENT_ID" >"$SWB_TMP/ctl.csv"
cmp "$SWB_TMP/http.csv" "$SWB_TMP/ctl.csv" || fail "exports differ"
[ "$(wc -l <"$SWB_TMP/http.csv")" -ge 10 ] || fail "export too short"
api GET "/admin/ledger/$AGENT_ID/verify" | jq -e '.ok' >/dev/null || fail "verify: $(cat "$SWB_TMP/body")"

note "a price set over HTTP reaches the agent's ledger prices"
api POST /admin/price '{"model":"gpt-4o-mini","input":"1.5","output":3,"cached_input":"0.75"}' >/dev/null
[ "$(st)" = 201 ] || fail "price: $(cat "$SWB_TMP/body")"
agent_price() { [ "$(sqlite3 "$ADB" "SELECT input || ',' || output || ',' || cached_input FROM prices WHERE model='gpt-4o-mini' ORDER BY version DESC LIMIT 1")" = "1500000,3000000,750000" ]; }
wait_until 5 agent_price || fail "the agent has $(sqlite3 "$ADB" "SELECT * FROM prices")"
api POST /admin/price '{"model":"sora-2","video_second":"0.125","image":0.04}' >/dev/null
[ "$(st)" = 201 ] || fail "unit price: $(cat "$SWB_TMP/body")"
agent_unit_price() { [ "$(sqlite3 "$ADB" "SELECT video_second || ',' || image FROM prices WHERE model='sora-2' ORDER BY version DESC LIMIT 1")" = "125000,40000" ]; }
wait_until 5 agent_unit_price || fail "the agent's unit prices: $(sqlite3 "$ADB" "SELECT * FROM prices WHERE model='sora-2'")"

note "a dispute resolved over HTTP changes both sides"
sqlite3 "$ADB" "UPDATE prices SET output = output + 1000000 WHERE model='gpt-4o-mini' AND version = (SELECT MAX(version) FROM prices WHERE model='gpt-4o-mini')"
[ "$(chat "$TOK" gpt-4o-mini)" = 200 ] || fail "request for the dispute"
D_RID=$(rid)
disputed() { ctl --json disputes | jq -e --arg r "$D_RID" '.disputes[] | select(.request_id==$r)' >/dev/null; }
wait_until 10 disputed || fail "no dispute: $(ctl disputes)"
DID=$(api GET /admin/disputes | jq -r --arg r "$D_RID" '.disputes[] | select(.request_id==$r) | .id')
api POST "/admin/disputes/$DID/resolve" '{"outcome":"reject","reason":"the hub prices stand"}' |
    jq -e '.status=="rejected"' >/dev/null || fail "resolve: $(cat "$SWB_TMP/body")"
ctl --json disputes | jq -e --arg r "$D_RID" '.disputes[] | select(.request_id==$r) | .status=="rejected"' >/dev/null ||
    fail "hub: $(ctl disputes)"
agent_knows() { "$AGENTD" ledger disputes -c "$AINI" | grep -F "$D_RID" | grep -q ',rejected,"the hub prices stand"$'; }
wait_until 5 agent_knows || fail "agent: $("$AGENTD" ledger disputes -c "$AINI")"
api POST "/admin/disputes/$DID/resolve" '{"outcome":"accept"}' >/dev/null
[ "$(st)" = 400 ] || fail "a resolved dispute resolved again: $(st)"

note "every route of the OpenAPI document answers"
SPARE2_ID=$(ctl --json admin-key create --name spare2 | jq -r .id)
T4_ID=$(api POST /admin/tokens '{"name":"route"}' | jq -r .id)
python3 - "$(dirname "$0")/../../docs/admin-openapi.yaml" >"$SWB_TMP/routes" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for path, ops in doc["paths"].items():
    for m in ops:
        if m in ("get", "post", "patch", "delete", "put"):
            print(m.upper(), path)
PY
[ "$(wc -l <"$SWB_TMP/routes")" -ge 25 ] || fail "the OpenAPI document lists too few routes"
while read -r m p; do
    case "$m $p" in
        "POST /admin/kick") continue ;;       # below, on its own
        "DELETE /admin/tokens/{id}") p=${p/\{id\}/$T4_ID} ;;
        "DELETE /admin/keys/{id}") p=${p/\{id\}/$SPARE2_ID} ;;
        *"/admin/disputes/{id}"*) p=${p/\{id\}/$DID} ;;
        *"/admin/registry/{id}"*) p=${p/\{id\}/$AGENT_ID} ;;
    esac
    p=${p/\{id\}/$TOK_ID}; p=${p/\{agent\}/$AGENT_ID}
    body='{}'
    case "$m $p" in "POST /admin/registry/"*"/disable") continue ;; esac
    api "$m" "$p" "$body" >/dev/null
    case "$(st)" in 404|405|000|5*) fail "$m $p answered $(st): $(cat "$SWB_TMP/body")" ;; esac
done <"$SWB_TMP/routes"

note "a kick over HTTP drops the agent; it comes back after its back-off"
since=$(ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .since_ms')
api POST /admin/kick "{\"agent_id\":$AGENT_ID}" >/dev/null; [ "$(st)" = 200 ] || fail "kick: $(cat "$SWB_TMP/body")"
gone() { ! agent_online "$AGENT_ID" || [ "$(ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .since_ms')" != "$since" ]; }
wait_until 3 gone || fail "the kicked agent stayed"
back() { agent_online "$AGENT_ID" && [ "$(ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .since_ms')" != "$since" ]; }
wait_until 10 back || fail "the agent did not come back"
grep -q 'kicked by the hub' "$SWB_TMP/agent-a1.log" || fail "the agent does not say it was kicked"
echo "admin_api: ok"
