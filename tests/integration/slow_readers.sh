# Slow readers never stall other users.  Seven users start long, fast
# streams and then stop reading; meanwhile and afterwards other users'
# plain requests must all succeed with normal latency, and the hub's
# tunnel and gateway processes may hold only about a window per stalled
# stream (lib/frame.h: per-stream credit windows), not the streams.
source "$(dirname "$0")/lib.sh"
N=7
WINDOW_KB=256			# FRAME_WINDOW
BOUND_MS=${SWB_SLOW_BOUND_MS:-5000}	# a correctness bound, not a benchmark (shared CPUs)
# Freed memory must come back, so that RSS tells what is held (ASan builds).
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
hub_with_tunnel
start_mock --chunks 4 --delay-ms 0
start_agent slow
TOK=$(ctl token create --name slow)
GW=$(gw_url)
hostport=${GW#http://}

plain() {	# one non-stream request: prints "STATUS MS"
    curl -s -o "$SWB_TMP/plain.out" -m 20 -w '%{http_code} %{time_total}\n' \
        "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
        -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"[mock chunks=4 delay=0]"}]}' |
        awk '{printf "%s %d\n", $1, $2 * 1000}'
}
# plains LABEL COUNT: COUNT plain requests in a row; each must be a 200
# within BOUND_MS.
plains() {
    local label=$1 count=$2 worst=0 st ms
    for _ in $(seq "$count"); do
        read -r st ms < <(plain)
        [ "$st" = 200 ] || fail "$label: a plain request got '$st' after $ms ms"
        ((ms <= BOUND_MS)) || fail "$label: a plain request took $ms ms"
        ((ms > worst)) && worst=$ms
        sleep 0.1
    done
    echo "$label: $count plain requests, all 200, slowest $worst ms"
}
rss_kb() {	# tunnel + every gateway worker
    local sum=0 p
    for p in $(status_json | jq -r '.children[] | select(.name=="tunnel" or (.name|startswith("gateway"))) | .pid'); do
        sum=$((sum + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
    done
    echo "$sum"
}

note "warm-up"
plains before 10
# A few streams through every worker first, so that RSS is past start-up.
for _ in 1 2 3 4; do
    curl -sN -m 30 -o "$SWB_TMP/warm.out" "$GW/v1/chat/completions" -H "Authorization: Bearer $TOK" \
        -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=300 delay=0]"}]}' ||
        fail "a warm-up stream failed"
    grep -q 'data: \[DONE\]' "$SWB_TMP/warm.out" || fail "a warm-up stream did not finish"
done
rss0=$(rss_kb)
echo "hub RSS before: $rss0 kB"

note "$N users start long streams and stop reading"
cat >"$SWB_TMP/slow.mjs" <<'JS'
// Opens N streams, reads each one's head and first bytes, then never reads
// again (a tiny receive window: the socket is paused).
import net from 'node:net';
const [host, port] = process.argv[2].split(':');
const tok = process.argv[3], n = +process.argv[4];
const body = JSON.stringify({ model: 'gpt-4o', stream: true,
    messages: [{ role: 'user', content: '[mock chunks=100000 delay=0]' }] });
let ready = 0;
for (let i = 0; i < n; i++) {
    const s = net.connect({ host, port: +port }, () => {
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n` +
            `Authorization: Bearer ${tok}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    let got = '';
    const onData = (d) => {
        got += d.toString('latin1');
        if (got.includes('data: ')) {
            s.off('data', onData);
            s.pause();
            if (!/^HTTP\/1\.1 200/.test(got)) { console.log('bad', got.slice(0, 200)); process.exit(1); }
            if (++ready === n) console.log('ready');
        }
    };
    s.on('data', onData);
    s.on('error', (e) => { console.log('error', e.message); process.exit(1); });
}
setInterval(() => {}, 1000);
JS
node "$SWB_TMP/slow.mjs" "$hostport" "$TOK" "$N" >"$SWB_TMP/slow.out" 2>&1 &
SLOW=$!
SWB_CLEANUP+=("kill $SLOW 2>/dev/null")
# Every stream starts (its head and first event arrive) however the others
# are read; checked after the plain requests, which matter most.
started=yes
wait_until 15 grep -q '^ready' "$SWB_TMP/slow.out" || started=no
# Let every buffer between the provider and the stalled users fill up.
sleep 3

note "other users while the $N streams are stalled"
plains during 30
rss1=$(rss_kb)
grow=$((rss1 - rss0))
limit=$((N * WINDOW_KB * 2 + 24 * 1024))
echo "hub RSS with $N stalled streams: $rss1 kB (+$grow kB, bound $limit kB)"
((grow <= limit)) || fail "the hub holds $grow kB for $N stalled streams"
kill -0 "$SLOW" || fail "the slow readers are gone: $(cat "$SWB_TMP/slow.out")"
[ $started = yes ] || fail "not all $N streams started within 15 s"

note "after the stalled users leave"
kill "$SLOW"
plains after 20

note "an agent that ignores the window is dropped, and only it"
SWARM=$SWB_BIN/tests/tools/swarm
"$SWARM" keygen 1 "$SWB_TMP/greedy.keys"
read -r gpk gsk <"$SWB_TMP/greedy.keys"
GID=$(ctl --json agent add greedy "$gpk" | jq -r .id)
echo "$GID $gsk" >"$SWB_TMP/greedy.ids"
sed "s|^state_dir = .*|state_dir = $SWB_TMP/state-greedy|" "$SWB_TMP/slow.ini" >"$SWB_TMP/greedy.ini"
chmod 600 "$SWB_TMP/greedy.ini"
"$SWARM" run -c "$SWB_TMP/greedy.ini" "$SWB_TMP/greedy.ids" greedy >"$SWB_TMP/greedy.log" 2>&1 &
SWB_CLEANUP+=("kill $! 2>/dev/null")
wait_until 10 agent_online "$GID" || fail "greedy agent not online: $(cat "$SWB_TMP/greedy.log")"
GTOK=$(ctl token create --name greedy --policy bound --channels "$GID")
node "$SWB_TMP/slow.mjs" "$hostport" "$GTOK" 1 >"$SWB_TMP/greedy-user.out" 2>&1 &
SWB_CLEANUP+=("kill $! 2>/dev/null")
wait_until 20 grep -q "closing agent $GID .*data bytes beyond its window" "$SWB_TMP/hub.log" ||
    fail "the greedy agent was not dropped"
grep "closing agent $GID" "$SWB_TMP/hub.log" | head -1
[ "$(status_json | jq '.children[] | select(.name=="tunnel") | .restarts')" = 0 ] ||
    fail "the tunnel process restarted"
agent_online "$AGENT_ID" || fail "the well-behaved agent was dropped too"
plains "with a greedy agent" 3
echo OK
