# SIGHUP with a broken INI keeps the old config and says why; SIGHUP with a
# changed reloadable key bumps the generation everywhere; a changed
# non-reloadable key is kept and logged; hubd -t checks a file.
source "$(dirname "$0")/lib.sh"
ini=$SWB_TMP/hubd.ini
write_hub_ini "$ini"
start_hub "$ini"
gen() { status_json | jq .config_generation; }
[ "$(gen)" = 1 ] || fail "generation does not start at 1"

note "hubd -t"
"$HUBD" -t -c "$ini" | grep -qx "configuration OK" || fail "-t on a good file"
cp "$ini" "$SWB_TMP/good.ini"
sed -i 's/^workers = .*/workers = lots/' "$ini"
line=$(grep -n '^workers = lots' "$ini" | cut -d: -f1)
if out=$("$HUBD" -t -c "$ini" 2>&1); then fail "-t accepted a bad file"; fi
grep -q "hubd.ini:$line: \[gateway\] workers = 'lots' is not an integer" <<<"$out" || fail "-t error unclear: $out"

note "SIGHUP with the broken file"
kill -HUP "$HUB_PID"
wait_until 3 grep -q "reload refused, keeping configuration generation 1: .*hubd.ini:$line: \[gateway\] workers = 'lots'" "$SWB_TMP/hub.log" \
    || fail "broken reload not logged with its reason"
[ "$(gen)" = 1 ] || fail "generation moved on a broken reload"
curl -fsS "$(gw_url)/healthz" >/dev/null || fail "not serving after a refused reload"
if ctl reload 2>"$SWB_TMP/err"; then fail "hubctl reload accepted a broken file"; fi
grep -q "is not an integer" "$SWB_TMP/err" || fail "hubctl reload error unclear"

note "SIGHUP with a changed reloadable key"
cp "$SWB_TMP/good.ini" "$ini"
sed -i 's/^log_level = info/log_level = debug/' "$ini"
kill -HUP "$HUB_PID"
wait_until 3 test "$(gen)" = 2 || fail "generation not bumped to 2"
all_acked() { [ "$(status_json | jq '[.children[] | select(.config_generation!=2)] | length')" = 0 ]; }
wait_until 3 all_acked || fail "not every child applied generation 2"
[ "$(curl -fsS "$(gw_url)/healthz" | jq .config_generation)" = 2 ] || fail "gateway serves an old generation"
grep -q "1 reloadable key(s) changed" "$SWB_TMP/hub.log" || fail "reload summary missing"

note "a non-reloadable key is kept"
old_listen=$(status_json | jq -r .listen.gateway)
sed -i 's/^workers = .*/workers = 5/' "$ini"
ctl reload | grep -q "generation 3" || fail "hubctl reload did not report generation 3"
grep -q "\[gateway\] workers changed from '2' to '5' but needs a restart; keeping '2'" "$SWB_TMP/hub.log" \
    || fail "non-reloadable change not logged"
[ "$(status_json | jq '[.children[] | select(.kind=="gateway")] | length')" = 2 ] || fail "worker count changed on reload"
[ "$(status_json | jq -r .listen.gateway)" = "$old_listen" ] || fail "listener moved"
echo OK
