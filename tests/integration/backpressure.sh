# Back-pressure end to end: a user who reads slowly holds back only their
# own stream (its credit window, lib/frame.h: gateway -> tunnel -> agent ->
# upstream transfer), the hub holds about a window for them, another
# user's stream runs at full speed, and the slow one still arrives whole.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 4 --delay-ms 0
start_agent bp
TOK=$(ctl token create --name bp)
GW=$(gw_url)
body='{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=40000 delay=0]"}]}'
# ~10 MB of events; this user reads 64 kB/s.
curl -sN --limit-rate 64k -m 60 "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" -d "$body" >"$SWB_TMP/slow.out" &
slow=$!
SWB_CLEANUP+=("kill $slow 2>/dev/null")
wait_until 10 grep -q "the user reads slowly" "$SWB_TMP/hub.log" || fail "the slow stream never waited for its reader"
gw_pid=$(grep "the user reads slowly" "$SWB_TMP/hub.log" | head -1 | sed 's/.*hubd\[gateway#[0-9]*:\([0-9]*\)\].*/\1/')
note "another user meanwhile"
t0=$(date +%s%3N)
curl -sN -m 30 "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=2000 delay=0]"}]}' >"$SWB_TMP/fast.out"
t1=$(date +%s%3N)
grep -q 'data: \[DONE\]' "$SWB_TMP/fast.out" || fail "the other user's stream did not finish"
echo "other user's 2000-chunk stream took $((t1 - t0)) ms"
kill -0 "$slow" || fail "the slow stream finished already: no back-pressure to observe"
# The gateway holds a bounded amount for the slow user, not the 10 MB.
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gw_pid/status")
echo "gateway RSS while the slow stream waits: $rss kB"
got=$(wc -c <"$SWB_TMP/slow.out")
echo "slow user has $got bytes so far"
[ "$got" -lt 8000000 ] || fail "slow user got everything: rate limit not effective"
kill "$slow"

note "a slow reader still gets the whole stream"
curl -sN --limit-rate 200k -m 60 "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=6000 delay=0]"}]}' >"$SWB_TMP/slow2.out"
content=$(sed -n 's/^data: //p' "$SWB_TMP/slow2.out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty')
n=$(grep -o 'tok[0-9]* ' <<<"$content" | wc -l)
[ "$n" = 6000 ] || fail "the slow stream brought $n of 6000 chunks"
[[ $content == *"tok5999 " ]] || fail "the slow stream ends with '${content: -20}'"
tail -c 20 "$SWB_TMP/slow2.out" | grep -q 'data: \[DONE\]' || fail "no [DONE] for the slow stream"
echo OK
