# A gateway worker killed with -9 is replaced within 2 s; the other
# children keep their pids; hubctl shows the restart; hubctl refuses an
# unknown command; the admin socket is private.
source "$(dirname "$0")/lib.sh"
SWB_WORKERS=3 write_hub_ini "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"

[ "$(stat -c %a "$SWB_TMP/run/hubd.sock")" = 600 ] || fail "admin socket mode is not 0600"
ctl status | grep -q '^gateway#1 ' || fail "hubctl status lists no gateway#1"
[ "$(status_json | jq '.children | length')" = 6 ] || fail "expected 3 gateways + 3 others"
curl -fsS "$(gw_url)/healthz" | jq -e '.status=="ok"' >/dev/null || fail "gateway not serving"

before=$(status_json | jq -c '[.children[] | {name, pid}]')
victim=$(child_pid gateway#1)
note "kill -9 gateway#1 (pid $victim)"
kill -9 "$victim"
t0=$(date +%s%N)
new_pid() { p=$(child_pid gateway#1); [ "$p" != "$victim" ] && [ "$p" != 0 ] && kill -0 "$p"; }
wait_until 2 new_pid || fail "no new gateway#1 within 2 s"
echo "replaced in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
after=$(status_json | jq -c '[.children[] | {name, pid}]')
for n in gateway#0 gateway#2 tunnel billing moderation; do
    b=$(jq -r --arg n "$n" '.[] | select(.name==$n) | .pid' <<<"$before")
    a=$(jq -r --arg n "$n" '.[] | select(.name==$n) | .pid' <<<"$after")
    [ "$a" = "$b" ] || fail "$n changed pid ($b -> $a) though only gateway#1 died"
done
[ "$(status_json | jq '.children[] | select(.name=="gateway#1") | .restarts')" = 1 ] \
    || fail "restart count of gateway#1 is not 1"
[ "$(status_json | jq '[.children[] | select(.name!="gateway#1") | .restarts] | add')" = 0 ] \
    || fail "other children show restarts"
ctl status | grep -E '^gateway#1 +running +[0-9]+ +1 ' >/dev/null || fail "human status lacks the restart"
grep -q "gateway#1 (pid $victim) killed by signal 9" "$SWB_TMP/hub.log" || fail "crash not logged with its signal"
wait_until 3 curl -fsS "$(gw_url)/healthz" || fail "gateway not serving after restart"

note "unknown command"
if out=$(ctl frobnicate 2>&1); then fail "unknown command exited 0"; fi
grep -q "unknown command 'frobnicate'" <<<"$out" || fail "unclear error: $out"
note "unknown HTTP path gets an OpenAI-shaped 404"
code=$(curl -s -o "$SWB_TMP/body" -w '%{http_code}' "$(gw_url)/v1/nothing")
[ "$code" = 404 ] || fail "expected 404, got $code"
jq -e '.error.type and .error.message' "$SWB_TMP/body" >/dev/null || fail "404 body not in OpenAI shape"
echo OK
