# SIGTERM: children stop, hubd exits 0, no child left behind; hubctl stop
# does the same; a child whose config can never work is not respawned.
source "$(dirname "$0")/lib.sh"
ini=$SWB_TMP/hubd.ini
write_hub_ini "$ini"
start_hub "$ini"
pids=$(status_json | jq -r '.children[].pid')
note "SIGTERM"
kill -TERM "$HUB_PID"
rc=0; wait "$HUB_PID" || rc=$?
[ $rc = 0 ] || fail "hubd exited $rc on SIGTERM"
HUB_PID=
for p in $pids; do kill -0 "$p" 2>/dev/null && fail "child $p left behind"; done
[ ! -e "$SWB_TMP/run/hubd.sock" ] || fail "admin socket left behind"
grep -q "hubd stopped" "$SWB_TMP/hub.log" || fail "no stop line"

note "hubctl stop"
start_hub "$ini"
pids=$(status_json | jq -r '.children[].pid')
ctl stop | grep -q stopping || fail "hubctl stop did not answer"
rc=0; wait "$HUB_PID" || rc=$?
[ $rc = 0 ] || fail "hubd exited $rc after hubctl stop"
HUB_PID=
for p in $pids; do kill -0 "$p" 2>/dev/null && fail "child $p left behind"; done

note "a fatal child config is not respawned"
printf '[tunnel]\ncert = %s/missing.pem\nkey = %s/missing.key\n' "$SWB_TMP" "$SWB_TMP" >"$SWB_TMP/extra"
SWB_TUNNEL_INI="$(cat "$SWB_TMP/extra" | tail -2)" write_hub_ini "$ini"
"$HUBD" -c "$ini" >>"$SWB_TMP/hub.log" 2>&1 &
HUB_PID=$!
tunnel_failed() { [ "$(status_json | jq -r '.children[] | select(.name=="tunnel") | .state')" = failed ]; }
wait_until 5 tunnel_failed || fail "tunnel with a missing certificate not marked failed"
sleep 1
[ "$(status_json | jq '.children[] | select(.name=="tunnel") | .restarts')" = 0 ] || fail "failed tunnel was respawned"
grep -q "its configuration cannot work; not restarting it" "$SWB_TMP/hub.log" || fail "no log line for the fatal child"
curl -fsS "$(gw_url)/healthz" >/dev/null || fail "gateway down because the tunnel failed"
echo OK
