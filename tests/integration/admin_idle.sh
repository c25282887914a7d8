# hubd.sock cannot be locked by idle clients: with 32 connections (every
# slot) open and silent, hubctl status still answers at once, because the
# client idle longest makes room for a new one.
source "$(dirname "$0")/lib.sh"
write_hub_ini "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"

python3 - "$SWB_TMP/run/hubd.sock" "$SWB_TMP/idle.ready" <<'PY' &
import socket, sys, time
conns = []
for _ in range(32):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
open(sys.argv[2], "w").close()
time.sleep(30)
PY
IDLE=$!
SWB_CLEANUP+=("kill $IDLE")
wait_until 15 test -f "$SWB_TMP/idle.ready" || fail "idle clients not connected"
sleep 0.5	# the master has accepted them all

t0=$(date +%s%N)
out=$(timeout 5 "$HUBCTL" -s "$SWB_TMP/run/hubd.sock" --json status) || fail "hubctl status failed with 32 idle clients: $out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "hubctl status answered in $ms ms"
jq -e '.ok' <<<"$out" >/dev/null || fail "no status: $out"
(( ms < 2000 )) || fail "hubctl status took $ms ms"
grep -q "hubd.sock: 32 clients, the most it serves: closing the one idle longest" "$SWB_TMP/hub.log" \
    || fail "no eviction logged"
echo OK
