# Running out of file descriptors.  hubd runs under a low hard `ulimit -n`
# (the master cannot raise it, and logs what it got); 1,000 idle
# connections exhaust the gateway workers' descriptors.  accept() failing
# with EMFILE must not spin: the workers stop polling the listener for a
# moment, log a handful of warnings (with a count) instead of one per
# try, and use little CPU.  Once the idle connections close, a normal
# request succeeds.
source "$(dirname "$0")/lib.sh"
LIMIT=${SWB_EMFILE_LIMIT:-256}
write_hub_ini "$SWB_TMP/hubd.ini"
( ulimit -n "$LIMIT" && exec "$HUBD" -c "$SWB_TMP/hubd.ini" ) >>"$SWB_TMP/hub.log" 2>&1 &
HUB_PID=$!
wait_until 10 all_running || fail "hubd did not start: $(tail -5 "$SWB_TMP/hub.log")"
grep -q "open file limit: $LIMIT (hard limit $LIMIT)" "$SWB_TMP/hub.log" ||
    fail "the master did not log its open file limit"
GW=$(gw_url)
HOSTPORT=${GW#http://}
curl -sf "$GW/healthz" >/dev/null || fail "healthz before the flood"
mapfile -t WORKERS < <(status_json | jq -r '.children[] | select(.kind=="gateway") | .pid')
[ "${#WORKERS[@]}" -ge 1 ] || fail "no gateway workers"

cpu_ticks() {	# utime + stime of every worker, in clock ticks
    local t=0 p f
    for p in "${WORKERS[@]}"; do
        # fields 14 and 15 (1-based), counted after the ")" of the name
        f=($(sed 's/^.*) //' "/proc/$p/stat"))
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}

note "1,000 idle connections against $LIMIT descriptors per process"
python3 - "$HOSTPORT" "$SWB_TMP/idle.ready" "$SWB_TMP/idle.stop" <<'PY' &
import resource, socket, sys, time, os
host, port = sys.argv[1].rsplit(":", 1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
socks = []
for i in range(1000):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((host, int(port)))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(1.0)
open(sys.argv[2], "w").write("%d\n" % len(socks))
while not os.path.exists(sys.argv[3]):
    time.sleep(0.1)
for s in socks:
    s.close()
PY
IDLE=$!
SWB_CLEANUP+=("kill $IDLE")
wait_until 20 test -s "$SWB_TMP/idle.ready" || fail "the idle connections were not opened"
sleep 1
c0=$(cpu_ticks)
sleep 4
c1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
used_ms=$(( (c1 - c0) * 1000 / hz ))
echo "workers used $used_ms ms of CPU in 4 s with descriptors exhausted"
warnings=$(grep -c 'accept: ' "$SWB_TMP/hub.log" || true)
echo "accept warnings: $warnings"
grep -m2 'accept: ' "$SWB_TMP/hub.log" || true
grep -q 'accept: Too many open files' "$SWB_TMP/hub.log" ||
    fail "the workers never ran out of descriptors (the test tested nothing)"
(( warnings <= 3 * ${#WORKERS[@]} )) || fail "$warnings accept warnings (expected a handful)"
(( used_ms < 800 * ${#WORKERS[@]} )) || fail "workers spin: $used_ms ms of CPU in 4 s"

note "the idle connections close: a normal request succeeds"
touch "$SWB_TMP/idle.stop"
wait "$IDLE" || true
healthy() { curl -sf -m 2 "$GW/healthz" >/dev/null; }
wait_until 10 healthy || fail "healthz fails after the idle connections closed"
kill -0 "$HUB_PID" || fail "hubd died"
echo OK
