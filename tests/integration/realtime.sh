# Realtime (GET /v1/realtime, a WebSocket) through the hub: a tokenless or
# wrong-token upgrade is refused as plain HTTP (no 101, and the provider is
# never dialled); a session answers response.create and its user's close
# closes the provider's side (the mock logs it); each response is billed
# on its own and a token whose quota runs out mid-session gets an
# insufficient_quota error event and a close; an agent lost mid-session
# ends it with an agent_unavailable error event and a close; a provider
# close or drop ends it (clean close, or an error event); a user who stops
# reading makes the stream wait within its window and loses nothing.
#
# With SWB_RT_TLS set (realtime_tls.sh) all of it runs over the TLS user
# port ([gateway] cert/key): wss://, HTTP/1.1 (the client offers no h2).
source "$(dirname "$0")/lib.sh"
CURL_TLS=()
if [ -n "${SWB_RT_TLS:-}" ]; then
    make_certs "$SWB_TMP/certs"
    SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s
handshake_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini"
    sed -i "s|^workers = .*|&\ncert = $SWB_TMP/certs/server.pem\nkey = $SWB_TMP/certs/server.key\nheader_timeout = 2s|" "$SWB_TMP/hubd.ini"
    start_hub "$SWB_TMP/hubd.ini"
    GW="https://$(status_json | jq -r .listen.gateway)"
    WS="wss://${GW#https://}"
    CURL_TLS=(--cacert "$SWB_TMP/certs/ca.pem")
    export WSC_CA=$SWB_TMP/certs/ca.pem
else
    hub_with_tunnel
    GW=$(gw_url)
    WS=${GW/http:/ws:}
fi
start_mock
SWB_AGENT_CHANNELS='[channel.main]
provider = openai
models = gpt-realtime
key = sk-test-provider-key' start_agent one
TOKEN=$(ctl token create)
ctl price set gpt-realtime --input 1500 --output 2000 >/dev/null
if [ -n "${SWB_RT_TLS:-}" ]; then
    note "the TLS port serves HTTP/2 and HTTP/1.1 requests"
    for v in 2 1.1; do
        out=$(curl -s --http"$v" "${CURL_TLS[@]}" -w '\n%{http_version} %{http_code}' \
            "$GW/v1/models" -H "Authorization: Bearer $TOKEN")
        [ "$(tail -1 <<<"$out")" = "$v 200" ] || fail "HTTP/$v over TLS: $(tail -1 <<<"$out")"
        grep -q '"gpt-realtime"' <<<"$out" || fail "HTTP/$v over TLS: $out"
    done
    note "a ClientHello that stops halfway: closed within header_timeout, no spinning"
    cpu() {	# the gateway workers' CPU ticks
        local t=0 p
        for p in $(status_json | jq -r '.children[] | select(.kind=="gateway") | .pid'); do
            t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
        done
        echo "$t"
    }
    half() {	# MODE: "stall" keeps the socket open, "close" shuts it; prints seconds to close
        python3 - "${GW#https://}" "$1" <<'PY'
import socket, sys, time
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # claims 512 bytes
t = time.time()
if sys.argv[2] == "close":
    s.shutdown(socket.SHUT_WR)
s.settimeout(15)
try:
    while s.recv(100):
        pass
except (socket.timeout, ConnectionResetError):
    pass
print(round(time.time() - t, 1))
PY
    }
    c0=$(cpu)
    secs=$(half stall)
    c1=$(cpu)
    awk -v s="$secs" 'BEGIN { exit !(s >= 1 && s <= 5) }' || fail "a half hello held for ${secs}s (header_timeout 2s)"
    [ $((c1 - c0)) -lt 100 ] || fail "the workers spun on a half hello: $((c1 - c0)) ticks in ${secs}s"
    secs=$(half close)
    awk -v s="$secs" 'BEGIN { exit !(s < 1) }' || fail "a half hello whose sender left was held ${secs}s"
fi

# A raw WebSocket client (no package): prints HEAD <status line>, then
# MSG <text>, CLOSE <code>, EOF.  Steps: "create" sends response.create
# and waits for its response.done (or the end); "close" sends a close and
# waits for the end; "hold" waits for the end.
cat >"$SWB_TMP/wsc.mjs" <<'JS'
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import crypto from 'node:crypto';
const [url, mode, token, ...steps] = process.argv.slice(2);
const u = new URL(url);
// wss: TLS with the test CA and no ALPN, as WebSocket clients connect.
const s = u.protocol === 'wss:' ?
	tls.connect({ host: u.hostname, port: Number(u.port), ca: fs.readFileSync(process.env.WSC_CA) }) :
	net.connect(Number(u.port), u.hostname);
const hdrs = [`GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Upgrade: websocket',
	'Connection: Upgrade', `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`,
	'Sec-WebSocket-Version: 13'];
if (mode === 'bearer') hdrs.push(`Authorization: Bearer ${token}`);
if (mode === 'proto') hdrs.push(`Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.${token}`);
s.write(hdrs.join('\r\n') + '\r\n\r\n');
const frame = (op, p) => {
	const m = crypto.randomBytes(4), q = Buffer.from(p);
	for (let i = 0; i < q.length; i++) q[i] ^= m[i & 3];
	return Buffer.concat([Buffer.from([0x80 | op, 0x80 | q.length]), m, q]);
};
let buf = Buffer.alloc(0), upgraded = false, waiting = null;
const step = () => {
	const st = steps.shift();
	if (st && st.startsWith('create')) {
		waiting = 'response.done';
		s.write(frame(1, JSON.stringify({ type: 'response.create',
			response: { instructions: st.slice(7) } })));
	}
	else if (st === 'close') s.write(frame(8, Buffer.from([3, 232])));
	else if (st && st.startsWith('stall:')) {
		s.pause();
		// After the stall, the next step waits for the response to end.
		setTimeout(() => { s.resume(); if (!waiting) step(); }, 1000 * Number(st.slice(6)));
	}
};
s.on('data', (d) => {
	buf = Buffer.concat([buf, d]);
	if (!upgraded) {
		const i = buf.indexOf('\r\n\r\n');
		if (i < 0) return;
		const head = buf.subarray(0, i).toString();
		console.log('HEAD ' + head.split('\r\n')[0]);
		if (!/^HTTP\/1\.1 101/.test(head)) {	// refused: the answer is all here
			console.log('BODY ' + buf.subarray(i + 4).toString());
			process.exit(0);
		}
		upgraded = true;
		buf = buf.subarray(i + 4);
	}
	for (;;) {
		if (buf.length < 2) return;
		let len = buf[1] & 0x7f, off = 2;
		if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
		if (buf.length < off + len) return;
		const op = buf[0] & 15, p = buf.subarray(off, off + len);
		buf = buf.subarray(off + len);
		if (op === 8) { console.log('CLOSE ' + (p.length >= 2 ? p.readUInt16BE(0) : 1005)); continue; }
		const t = p.toString();
		console.log('MSG ' + t);
		const type = JSON.parse(t).type;
		if (type === 'session.created' || (waiting && type === waiting)) { waiting = null; step(); }
		if (steps[0] && steps[0].startsWith('stall:') && type === 'response.created') step();
	}
});
s.on('close', () => { console.log('EOF'); process.exit(0); });
s.on('error', () => {});
setTimeout(() => { console.log('TIMEOUT'); process.exit(1); }, 15000);
JS
wsc() { node "$SWB_TMP/wsc.mjs" "$WS/v1/realtime?model=gpt-realtime" "$@"; }
mock_opens() {
    local n; n=$(grep -c '"event":"realtime_open"' "$SWB_TMP/mock.jsonl" 2>/dev/null || true)
    echo "${n:-0}"
}

note "no token, a wrong token (either form): refused as plain HTTP"
for args in "none x" "bearer sk-wrong" "proto sk-wrong"; do
    # shellcheck disable=SC2086
    wsc $args hold >"$SWB_TMP/out" || true
    grep -q '^HEAD HTTP/1.1 401' "$SWB_TMP/out" || fail "$args: $(cat "$SWB_TMP/out")"
    grep -qE '(invalid|missing)_api_key' "$SWB_TMP/out" || fail "$args: $(cat "$SWB_TMP/out")"
done
[ "$(mock_opens)" = 0 ] || fail "a refused upgrade reached the provider"
curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' "$GW/v1/realtime?model=gpt-realtime" \
    -H "Authorization: Bearer $TOKEN" >"$SWB_TMP/code"
[ "$(cat "$SWB_TMP/code")" = 400 ] || fail "a plain GET with a token: $(cat "$SWB_TMP/code"), want 400"

note "a session: deltas, response.done; the user's close closes the provider side"
wsc proto "$TOKEN" create close >"$SWB_TMP/out" || fail "session: $(cat "$SWB_TMP/out")"
grep -q '^HEAD HTTP/1.1 101' "$SWB_TMP/out" || fail "no 101: $(cat "$SWB_TMP/out")"
grep -q '"type":"session.created"' "$SWB_TMP/out" || fail "no session.created"
[ "$(grep -c '"type":"response.output_text.delta"' "$SWB_TMP/out")" = 3 ] || fail "deltas: $(cat "$SWB_TMP/out")"
grep -q '"type":"response.done"' "$SWB_TMP/out" || fail "no response.done"
grep -q '^CLOSE 1000' "$SWB_TMP/out" || fail "the close was not answered: $(tail -3 "$SWB_TMP/out")"
closed_by_client() { grep -q '"event":"realtime_close".*"by":"client"' "$SWB_TMP/mock.jsonl"; }
wait_until 5 closed_by_client || fail "the provider side was not closed: $(grep realtime_ "$SWB_TMP/mock.jsonl")"

note "each response billed on its own; out of quota mid-session: error event and close"
QTOK=$(ctl token create --name rt-quota --quota 0.035)
wsc bearer "$QTOK" create create hold >"$SWB_TMP/out" || fail "quota session: $(cat "$SWB_TMP/out")"
[ "$(grep -c '"type":"response.done"' "$SWB_TMP/out")" = 2 ] || fail "responses: $(cat "$SWB_TMP/out")"
grep -q '"type":"error".*"insufficient_quota"' "$SWB_TMP/out" || fail "no insufficient_quota event: $(tail -4 "$SWB_TMP/out")"
grep -q '^CLOSE 1008' "$SWB_TMP/out" || fail "no close 1008: $(tail -3 "$SWB_TMP/out")"
# The first response (in 12, out 3) was charged: 12*1500 + 3*2000 micro / 1M.
micro() { awk -v u="$(used_of rt-quota)" 'BEGIN { printf "%d", u * 1000000 + 0.5 }'; }
charged_once() { [ "$(micro)" = 24000 ]; }
wait_until 5 charged_once || fail "used $(used_of rt-quota), want 0.024"

note "the provider closes: the user gets a close; the provider drops: an error event"
wsc bearer "$TOKEN" "create:[mock close]" >"$SWB_TMP/out" || fail "close: $(cat "$SWB_TMP/out")"
grep -q '^CLOSE 1000' "$SWB_TMP/out" || fail "no close 1000: $(cat "$SWB_TMP/out")"
! grep -q '"type":"error"' "$SWB_TMP/out" || fail "an error event on a clean close"
grep -q '^EOF' "$SWB_TMP/out" || fail "the connection stayed open"
wsc bearer "$TOKEN" "create:[mock drop]" >"$SWB_TMP/out" || fail "drop: $(cat "$SWB_TMP/out")"
grep -q '"type":"error".*"upstream_error"' "$SWB_TMP/out" || fail "no upstream_error event: $(cat "$SWB_TMP/out")"
grep -q '^CLOSE 1011' "$SWB_TMP/out" || fail "no close 1011: $(cat "$SWB_TMP/out")"

note "a user who stops reading: the stream waits for them (the window), nothing is lost"
wsc bearer "$TOKEN" "create:[mock big]" stall:3 close >"$SWB_TMP/out" || fail "big: $(tail -c 300 "$SWB_TMP/out")"
[ "$(grep -c '"type":"response.output_text.delta"' "$SWB_TMP/out")" = 384 ] ||
    fail "deltas: $(grep -c '"type":"response.output_text.delta"' "$SWB_TMP/out") of 384"
grep -q '"type":"response.done"' "$SWB_TMP/out" || fail "no response.done after the stall"
# In order: delta i is 16384 times the digit i mod 10.
grep -o '"delta":"[0-9]' "$SWB_TMP/out" | cut -c10 | tr -d '\n' >"$SWB_TMP/digits"
[ "$(cat "$SWB_TMP/digits")" = "$(for i in $(seq 0 383); do printf '%d' $((i % 10)); done)" ] ||
    fail "deltas out of order: $(cat "$SWB_TMP/digits")"
grep -q 'the user reads slowly' "$SWB_TMP/hub.log" || fail "the stream never waited for the user"
! grep -q 'beyond its window' "$SWB_TMP/hub.log" || fail "the agent overran the window"
agent_online "$AGENT_ID" || fail "the agent was dropped"

note "the agent lost mid-session: an agent_unavailable error event and a close"
# A file of its own: the background client opens (and empties) it only
# once it runs, and "out" still holds the session of the step before.
LOST=$SWB_TMP/lost.out
wsc bearer "$TOKEN" hold >"$LOST" &
CL=$!
opened() { grep -q '"type":"session.created"' "$LOST" 2>/dev/null; }
wait_until 10 opened || fail "no session: $(cat "$LOST")"
kill -9 "$AG_PID"
wait "$CL" || fail "client: $(cat "$LOST")"
grep -q '"type":"error".*"agent_unavailable"' "$LOST" || fail "no agent_unavailable event: $(cat "$LOST")"
grep -q '^CLOSE 1011' "$LOST" || fail "no close 1011: $(tail -3 "$LOST")"
grep -q '^EOF' "$LOST" || fail "the connection stayed open"
echo "realtime: ok"
