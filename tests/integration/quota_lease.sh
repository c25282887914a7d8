# Quota leases under load (billing/bill_lease.c), 12 requests at a time
# over both gateway workers.  A token far from its quota: 200 requests,
# at least three in four relayed on a lease (/metrics counts each
# request's reservation once, waited for or leased).  A token whose quota
# runs out: 300 requests, some still leased; it is never taken past its
# quota (used = the exact sum of the answered requests' costs, and at most
# the quota), the requests that did not fit get 429 insufficient_quota,
# every charge is posted (none stays reserved), and billing never had to
# refuse a reservation a worker did not wait for.
source "$(dirname "$0")/lib.sh"
export SWB_WORKERS=2
make_certs "$SWB_TMP/certs"
SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini" "[admin]
listen = 127.0.0.1:0"
start_hub "$SWB_TMP/hubd.ini"
ADM="http://$(status_json | jq -r .listen.admin)"
KEY=$(ctl admin-key create --name lease)
start_mock --chunks 1 --delay-ms 0
start_agent lease1
GW=$(gw_url)
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
PIN=1000000000 POUT=2000000000
BODY='{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hello world!"}]}'
QUOTA=1000000	# micro-units: about 190 of these requests
TOK=$(ctl token create --name lease1 --quota 1)
BIG=$(ctl token create --name lease2 --quota 100)
mkdir -p "$SWB_TMP/r"
one() {	# TOKEN N: one request, its status in r/N.st
    curl -s -o "$SWB_TMP/r/$2" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $1" -H 'content-type: application/json' \
        -d "$BODY" >"$SWB_TMP/r/$2.st"
}
export -f one
export SWB_TMP GW BODY
counter() {	# HOW: swb_quota_reservations_total{how=HOW} now
    curl -s "$ADM/metrics" -H "Authorization: Bearer $KEY" |
        awk -v k="swb_quota_reservations_total{how=\"$1\"}" '$1 == k {print $2}'
}

note "a quota far from spent: 200 requests, 12 at a time, mostly on leases"
seq 1001 1200 | xargs -P 12 -I{} bash -c "one $BIG {}"
for i in $(seq 1001 1200); do
    [ "$(cat "$SWB_TMP/r/$i.st")" = 200 ] || fail "request $i: $(cat "$SWB_TMP/r/$i.st") $(cat "$SWB_TMP/r/$i")"
done
waited=$(counter waited) leased=$(counter leased)
echo "quota_lease: $waited reservations waited for, $leased leased"
[[ $waited =~ ^[0-9]+$ && $leased =~ ^[0-9]+$ ]] || fail "no quota reservation counters in /metrics"
((waited + leased == 200)) || fail "$waited + $leased reservations for 200 requests"
((leased >= 3 * waited)) || fail "only $leased of 200 reservations were leased"

note "a quota spent: 300 requests, 12 at a time"
seq 1 300 | xargs -P 12 -I{} bash -c "one $TOK {}"
ok=0 refused=0 spent=0
for i in $(seq 1 300); do
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
w2=$(counter waited) l2=$(counter leased)
echo "quota_lease: then $((w2 - waited)) waited for, $((l2 - leased)) leased"
((w2 - waited + l2 - leased == 300)) || fail "$((w2 - waited)) + $((l2 - leased)) reservations for 300 requests"
((l2 > leased)) || fail "no reservation was leased while the quota ran out"

note "used is exactly what was answered; nothing stays reserved"
wait_until 10 used_is lease1 "$spent" || fail "used $(used_of lease1), expected $(fmt $spent)"
open=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state IN ('reserved', 'awaiting')")
[ "$open" = 0 ] || fail "$open charges still open"
posted=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges c JOIN tokens t ON t.id = c.token_id WHERE t.name = 'lease1' AND c.state = 'posted'")
[ "$posted" = "$ok" ] || fail "$posted charges posted for $ok answers"
grep -q "did not wait for" "$SWB_TMP/hub.log" && fail "billing refused a leased reservation: $(grep 'did not wait for' "$SWB_TMP/hub.log" | head -3)"
echo "quota_lease: ok"
