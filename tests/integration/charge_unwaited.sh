# A token without a quota that has been charged before does not wait for
# billing's reservation (gateway/gw_token.c): with billing stopped
# (SIGSTOP), its request is still answered, and once billing runs again
# it is charged exactly once.  So does a token with a quota while the
# lease its last reservation brought lasts (billing/bill_lease.c).  A
# token with a quota past its lease, and an unlimited one never charged
# yet, still wait for their reservation: their requests answer only
# after billing is back.  Nothing stays reserved.  A reservation waited
# for holds nothing when its token is still unlimited
# (IPC_CHARGE_F_UNLIMITED); a quota token's holds its estimate.  An
# answer's charge shows to hubctl at once; a gateway killed after its
# answers, while billing is stopped, loses none of their posts.
source "$(dirname "$0")/lib.sh"
export SWB_WORKERS=1	# one token cache: the stop below must not hit a look-up
hub_with_tunnel
start_mock --chunks 2 --delay-ms 0
start_agent unwaited1
GW=$(gw_url)
ctl price set gpt-4o --input 1000 --output 2000 >/dev/null
PIN=1000000000 POUT=2000000000
cost_of() {	# FILE: the cost of the answer in it
    echo $(( ($(jq -r .usage.prompt_tokens "$1") * PIN + 500000) / 1000000 +
             ($(jq -r .usage.completion_tokens "$1") * POUT + 500000) / 1000000 ))
}
BODY='{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hello there"}]}'
chat() {	# TOKEN OUTFILE [curl args]: prints the status
    local tok=$1 out=$2; shift 2
    curl -s -o "$out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $tok" -H 'content-type: application/json' \
        -d "$BODY" "$@"
}
UNL=$(ctl token create --name unl)
QUO=$(ctl token create --name quo --quota 10)
NEW=$(ctl token create --name new)
[ "$(ctl --json token list | jq -r '.tokens[] | select(.name=="unl") | .quota')" = unlimited ] ||
    fail "a token made without --quota is not unlimited"

note "first charges (billing running)"
[ "$(chat "$UNL" "$SWB_TMP/u1")" = 200 ] || fail "unl 1: $(cat "$SWB_TMP/u1")"
eu=$(cost_of "$SWB_TMP/u1")
((eu > 0)) || fail "the first answer cost nothing"
wait_until 5 used_is unl "$eu" || fail "unl: used $(used_of unl), expected $(fmt "$eu")"
# The worker looked unl up with used 0: only a look-up after its cache
# expires (5 s) sees that it was charged.
sleep 5.5
# new is looked up (and kept) by a request refused for its body.
st=$(curl -s -o "$SWB_TMP/n0" -w '%{http_code}' "$GW/v1/chat/completions" \
    -H "Authorization: Bearer $NEW" -H 'content-type: application/json' --data-raw '{')
[ "$st" = 400 ] || fail "a broken body: status $st $(cat "$SWB_TMP/n0")"
[ "$(chat "$UNL" "$SWB_TMP/u2")" = 200 ] || fail "unl 2: $(cat "$SWB_TMP/u2")"
eu=$((eu + $(cost_of "$SWB_TMP/u2")))
# quo's first reservation is waited for, and brings a lease of 2 s.
[ "$(chat "$QUO" "$SWB_TMP/q1")" = 200 ] || fail "quo 1: $(cat "$SWB_TMP/q1")"
leased_at=$(date +%s%N)
eq=$(cost_of "$SWB_TMP/q1")

note "billing stopped: the charged unlimited token is answered"
BPID=$(child_pid billing)
[[ $BPID =~ ^[0-9]+$ ]] || fail "no billing pid"
SWB_CLEANUP+=("kill -CONT $BPID 2>/dev/null")
kill -STOP "$BPID"
st=$(chat "$QUO" "$SWB_TMP/q1b" -m 4) || true
lease_ms=$((($(date +%s%N) - leased_at) / 1000000))
st2=$(chat "$UNL" "$SWB_TMP/u3" -m 4) || true
[ "$st2" = 200 ] || fail "unl while billing is stopped: status $st2 $(cat "$SWB_TMP/u3" 2>/dev/null)"
[ "$(jq -r '.choices[0].message.content | length > 0' "$SWB_TMP/u3")" = true ] ||
    fail "unl answer without content: $(cat "$SWB_TMP/u3")"
eu=$((eu + $(cost_of "$SWB_TMP/u3")))

note "billing stopped: a token with a quota is answered on its lease"
# (Unless this machine took most of the lease's life to get here.)
if [ "$st" != 200 ] && ((lease_ms < 1500)); then
    fail "quo on its lease while billing is stopped, ${lease_ms} ms after the lease: status $st"
fi
[ "$st" = 200 ] && eq=$((eq + $(cost_of "$SWB_TMP/q1b")))
echo "quo answered on its lease ${lease_ms} ms after it came: $st"

note "billing stopped: a token with a quota past its lease, and one never charged, wait"
sleep 2
chat "$QUO" "$SWB_TMP/q2" -m 30 >"$SWB_TMP/q2.st" &
QP=$!
chat "$NEW" "$SWB_TMP/n1" -m 30 >"$SWB_TMP/n1.st" &
NP=$!
sleep 1.5
kill -0 "$QP" 2>/dev/null || fail "quo was answered without its reservation: $(cat "$SWB_TMP/q2.st")"
kill -0 "$NP" 2>/dev/null || fail "new was answered without its reservation: $(cat "$SWB_TMP/n1.st")"
kill -CONT "$BPID"
wait "$QP" "$NP"
[ "$(cat "$SWB_TMP/q2.st")" = 200 ] || fail "quo after billing came back: $(cat "$SWB_TMP/q2.st") $(cat "$SWB_TMP/q2")"
[ "$(cat "$SWB_TMP/n1.st")" = 200 ] || fail "new after billing came back: $(cat "$SWB_TMP/n1.st") $(cat "$SWB_TMP/n1")"
eq=$((eq + $(cost_of "$SWB_TMP/q2")))
en=$(cost_of "$SWB_TMP/n1")

note "each request charged exactly once"
wait_until 10 used_is unl "$eu" || fail "unl: used $(used_of unl), expected $(fmt "$eu")"
wait_until 10 used_is quo "$eq" || fail "quo: used $(used_of quo), expected $(fmt "$eq")"
wait_until 10 used_is new "$en" || fail "new: used $(used_of new), expected $(fmt "$en")"
open=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state <> 'posted' AND amount > 0")
posted=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state = 'posted'")
[ "$open" = 0 ] || fail "$open charges not posted"
want=$((6 + ($st == 200 ? 1 : 0)))
[ "$posted" = "$want" ] || fail "$posted charges posted, expected $want"
sleep 1
used_is unl "$eu" || fail "unl charged twice: used $(used_of unl)"
grep -q "did not wait for" "$SWB_TMP/hub.log" && fail "billing refused an unwaited reservation"

note "a reservation waited for holds nothing when the token is still unlimited"
# fresh (never charged) waits for its reservation; billing records it as
# the unwaited ones, a row of 0 (IPC_CHARGE_F_UNLIMITED); quo's holds its
# estimate.  Both requests stay in flight 3 s (the mock's delay).
FRESH=$(ctl token create --name fresh)
SLOW='{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hello there [mock chunks=2 delay=1500]"}]}'
SLOWP=()
for t in "$FRESH" "$QUO"; do
    curl -s -o /dev/null -m 20 "$GW/v1/chat/completions" -H "Authorization: Bearer $t" \
        -H 'content-type: application/json' -d "$SLOW" &
    SLOWP+=($!)
    SWB_CLEANUP+=("kill $! 2>/dev/null")
done
reserved_of() {	# NAME: the reserved column of its charge in flight
    sqlite3 "$SWB_TMP/hubd.db" "SELECT c.reserved FROM charges c JOIN tokens t ON t.id = c.token_id WHERE t.name = '$1' AND c.state = 'reserved'"
}
in_flight() { [ -n "$(reserved_of fresh)" ] && [ -n "$(reserved_of quo)" ]; }
wait_until 3 in_flight || fail "the slow requests' reservations never showed (fresh '$(reserved_of fresh)', quo '$(reserved_of quo)')"
[ "$(reserved_of fresh)" = 0 ] || fail "fresh, still unlimited, had $(reserved_of fresh) reserved"
(( $(reserved_of quo) > 0 )) || fail "quo's reservation held no estimate: $(reserved_of quo)"
used_is fresh 0 || fail "fresh: used $(used_of fresh) while its request is in flight"
wait "${SLOWP[@]}"

note "an answer's charge shows to the operator at once"
# Its post went on the worker's deferred connection before the answer;
# billing reads that before an admin command (lib/msgsrv.h): no waiting.
for i in 1 2 3 4 5; do
    [ "$(chat "$UNL" "$SWB_TMP/u5")" = 200 ] || fail "unl $i: $(cat "$SWB_TMP/u5")"
    eu=$((eu + $(cost_of "$SWB_TMP/u5")))
    used_is unl "$eu" || fail "right after answer $i: used $(used_of unl), expected $(fmt "$eu")"
done

note "a gateway killed after its answers: billing, stopped meanwhile, still charges them"
# The posts wait in billing's end of the worker's deferred connection;
# billing reads them when it runs again, then the connection's end.
# The worker's cache entry for unl is fetched afresh first (it lasts 5 s
# from its fetch), so that no look-up falls in the stop.
sleep 5.5
[ "$(chat "$UNL" "$SWB_TMP/u6")" = 200 ] || fail "unl before the stop: $(cat "$SWB_TMP/u6")"
eu=$((eu + $(cost_of "$SWB_TMP/u6")))
GPID=$(child_pid gateway)	# one worker: named "gateway"
[[ $GPID =~ ^[0-9]+$ ]] || fail "no gateway pid: $(status_json | jq -c .children)"
kill -STOP "$BPID"
for i in 1 2 3; do
    [ "$(chat "$UNL" "$SWB_TMP/u6" -m 4)" = 200 ] || fail "unl $i while billing is stopped: $(cat "$SWB_TMP/u6")"
    eu=$((eu + $(cost_of "$SWB_TMP/u6")))
done
kill -9 "$GPID"
kill -CONT "$BPID"
wait_until 10 used_is unl "$eu" || fail "after the gateway's kill: used $(used_of unl), expected $(fmt "$eu")"
regw() { p=$(child_pid gateway); [[ $p =~ ^[0-9]+$ ]] && [ "$p" != "$GPID" ] && [ "$(chat "$UNL" "$SWB_TMP/u4")" = 200 ]; }
wait_until 15 regw || fail "no new gateway worker serving after the kill"
eu=$((eu + $(cost_of "$SWB_TMP/u4")))
wait_until 10 used_is unl "$eu" || fail "the new worker's answer: used $(used_of unl), expected $(fmt "$eu")"
open=$(sqlite3 "$SWB_TMP/hubd.db" "SELECT COUNT(*) FROM charges WHERE state <> 'posted' AND amount > 0")
[ "$open" = 0 ] || fail "$open charges not posted after the gateway's kill"
echo "charge_unwaited: ok"
