# Least privilege (run as root): hubd started as root with [hub] user drops
# every child to that user once it loaded what needs root; the master
# stays root so that a child killed -9 comes back (billing re-reads the
# root-only ledger key, the tunnel its TLS key) and serves again; the
# ledger key file stays 0600 root and its secret is in billing's memory
# and no other process's; each child holds only its own listeners;
# billing runs SCHED_BATCH, the relay path's children do not.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 0; }
U=swb-privsep
id -u "$U" >/dev/null 2>&1 || useradd --system --no-create-home \
    --shell /usr/sbin/nologin "$U" || fail "useradd $U"
UID_U=$(id -u "$U")
PY="python3 $(dirname "$0")/privsep.py"
# The user must pass through SWB_TMP to reach run_dir; nothing else there
# is its (the store is chowned by billing, the key stays root's).
chmod 0711 "$SWB_TMP"

make_certs "$SWB_TMP/certs"
SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s
handshake_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini"
sed -i "s|^\[hub\]|[hub]\nuser = $U|" "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"
start_mock
start_agent priv1
GW=$(gw_url)
TOK=$(ctl token create --name priv)
chat() {
    curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
        -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
}
served() { [ "$(chat)" = 200 ]; }

note "every child runs as $U ($UID_U); the master stays root"
check_uids() {
    [ "$(status_json | jq '.uid')" = 0 ] || fail "master is not root"
    local n; n=$(status_json | jq '.children | length')
    [ "$(status_json | jq --argjson u "$UID_U" '[.children[] | select(.uid==$u)] | length')" = "$n" ] \
        || fail "not every child reports uid $UID_U: $(status_json | jq -c '[.children[] | {name, uid}]')"
    for pid in $(status_json | jq -r '.children[].pid'); do
        read -r _ r e s f < <(grep '^Uid:' "/proc/$pid/status")
        [ "$r $e $s $f" = "$UID_U $UID_U $UID_U $UID_U" ] || fail "pid $pid runs as $r $e $s $f"
    done
}
check_uids
ctl status | grep -E "^billing +running +[0-9]+ +0 +[0-9a-z]+ +[0-9]+ +$UID_U\$" >/dev/null \
    || fail "human status lacks the uid: $(ctl status)"
served || fail "request not served: $(cat "$SWB_TMP/out")"

note "ledger key: 0600 root; the internal sockets are the user's, hubd.sock root's"
[ "$(stat -c '%a %u' "$SWB_TMP/ledger.key")" = "600 0" ] || fail "ledger key is $(stat -c '%a %u' "$SWB_TMP/ledger.key")"
for s in tunnel billing moderation; do
    [[ $(stat -c '%a %u' "$SWB_TMP/run/$s.sock") =~ ^[67]00\ $UID_U$ ]] || fail "$s.sock is $(stat -c '%a %u' "$SWB_TMP/run/$s.sock")"
done
[ "$(stat -c '%a %u' "$SWB_TMP/run/hubd.sock")" = "600 0" ] || fail "hubd.sock is not root's"
[ "$(stat -c %u "$SWB_TMP/hubd.db")" = "$UID_U" ] || fail "the store is not the user's"

note "the ledger key's secret is in billing's memory and nobody else's"
bill=$(child_pid billing)
all="$(status_json | jq -r .pid) $(status_json | jq -r '.children[].pid')"
holders=$($PY seed "$SWB_TMP/ledger.key" $all)
[ "$holders" = "$bill" ] || fail "the secret key is held by pids [$holders], billing is $bill"

note "each child holds only its own listeners"
gwport=$(status_json | jq -r .listen.gateway | sed 's/.*://')
tunport=$(status_json | jq -r .listen.tunnel | sed 's/.*://')
expect_listeners() {	# NAME EXPECTED (space separated, sorted)
    local pid; pid=$(child_pid "$1")
    local got; got=$($PY listeners "$pid" | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$2" ] || fail "$1 (pid $pid) listens on [$got], expected [$2]"
}
expect_listeners gateway#0 "tcp:$gwport"
expect_listeners gateway#1 "tcp:$gwport"
expect_listeners tunnel "tcp:$tunport unix:tunnel.sock"
expect_listeners billing "unix:billing.sock"
expect_listeners moderation "unix:moderation.sock"
master_l=$($PY listeners "$HUB_PID")
grep -qx 'unix:hubd.sock' <<<"$master_l" || fail "the master has no hubd.sock: $master_l"

note "billing runs SCHED_BATCH (a waking billing does not preempt a relay), the relay path does not"
policy() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $39}'; }	# stat field 41
[ "$(policy "$bill")" = 3 ] || fail "billing's scheduling policy is $(policy "$bill"), not SCHED_BATCH (3)"
for c in 'gateway#0' tunnel; do
    [ "$(policy "$(child_pid "$c")")" = 0 ] || fail "$c's scheduling policy is $(policy "$(child_pid "$c")")"
done

note "billing killed -9 comes back as $U (re-reading the root-only key) and serves"
kill -9 "$bill"
back() { p=$(child_pid billing); [ "$p" != "$bill" ] && [ "$p" != 0 ] &&
    [ "$(status_json | jq '.children[] | select(.name=="billing") | .uid')" = "$UID_U" ]; }
wait_until 5 back || fail "billing did not come back: $(tail -5 "$SWB_TMP/hub.log")"
wait_until 5 served || fail "not served after billing's restart: $(cat "$SWB_TMP/out")"
bill=$(child_pid billing)
[ "$(policy "$bill")" = 3 ] || fail "the restarted billing is not SCHED_BATCH"
holders=$($PY seed "$SWB_TMP/ledger.key" $bill $(child_pid tunnel))
[ "$holders" = "$bill" ] || fail "after the restart the key is held by [$holders]"

note "the tunnel killed -9 comes back, the agent returns and is served"
tun=$(child_pid tunnel)
kill -9 "$tun"
tback() { p=$(child_pid tunnel); [ "$p" != "$tun" ] && [ "$p" != 0 ]; }
wait_until 5 tback || fail "tunnel did not come back"
wait_until 10 agent_online "$AGENT_ID" || fail "agent not back online"
wait_until 5 served || fail "not served after the tunnel's restart: $(cat "$SWB_TMP/out")"
check_uids
curl -fsS "$GW/healthz" >/dev/null || fail "healthz"
echo OK
