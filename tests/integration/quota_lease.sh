# Quota leases under load (billing/bill_lease.c): 120 requests on one
# token with a quota, 12 at a time over both gateway workers, each worker
# relaying on its lease most of the time.  The token is never taken past
# its quota (used = the exact sum of the answered requests' costs, and at
# most the quota), the requests that did not fit get 429
# insufficient_quota, every charge is posted (none stays reserved), and
# billing never had to refuse a reservation a worker did not wait for.
source "$(dirname "$0")/lib.sh"
export SWB_WORKERS=2
hub_with_tunnel
start_mock --chunks 1 --delay-ms 0
start_agent lease1
GW=$(gw_url)
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
PIN=1000000000 POUT=2000000000
BODY='{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hello world!"}]}'
QUOTA=300000	# micro-units: about 60 of these requests
TOK=$(ctl token create --name lease1 --quota 0.3)

note "120 requests, 12 at a time"
mkdir -p "$SWB_TMP/r"
one() {	# N: one request, its status in r/N.st
    curl -s -o "$SWB_TMP/r/$1" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
        -d "$BODY" >"$SWB_TMP/r/$1.st"
}
export -f one
export SWB_TMP GW TOK BODY
seq 1 120 | xargs -P 12 -I{} bash -c 'one {}'

ok=0 refused=0 spent=0
for i in $(seq 1 120); do
    case $(cat "$SWB_TMP/r/$i.st") in
    200) ok=$((ok + 1))
         in=$(jq -r .usage.prompt_tokens "$SWB_TMP/r/$i")
         out=$(jq -r .usage.completion_tokens "$SWB_TMP/r/$i")
         spent=$((spent + (in * PIN + 500000) / 1000000 + (out * POUT + 500000) / 1000000)) ;;
    429) [ "$(jq -r .error.code "$SWB_TMP/r/$i")" = insufficient_quota ] ||
             fail "request $i: 429 body $(cat "$SWB_TMP/r/$i")"
         refused=$((refused + 1)) ;;
    *) fail "request $i: status $(cat "$SWB_TMP/r/$i.st") $(cat "$SWB_TMP/r/$i")" ;;
    esac
done
echo "quota_lease: $ok answered, $refused refused, spent $(fmt $spent) of $(fmt $QUOTA)"
((ok >= 20 && refused >= 20)) || fail "expected many answers and many refusals: $ok and $refused"
((spent <= QUOTA)) || fail "the answered requests cost $(fmt $spent), past the quota"

note "used is exactly what was answered; nothing stays reserved"
wait_until 10 used_is lease1 "$spent" || fail "used $(used_of lease1), expected $(fmt $spent)"
open=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state IN ('reserved', 'awaiting')")
[ "$open" = 0 ] || fail "$open charges still open"
posted=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges c JOIN tokens t ON t.id = c.token_id WHERE t.name = 'lease1' AND c.state = 'posted'")
[ "$posted" = "$ok" ] || fail "$posted charges posted for $ok answers"
grep -q "did not wait for" "$SWB_TMP/hub.log" && fail "billing refused a leased reservation: $(grep 'did not wait for' "$SWB_TMP/hub.log" | head -3)"
echo "quota_lease: ok"
