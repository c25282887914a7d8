# tunnel.sock is served by lib/msgsrv, with the discipline of billing.sock:
# a peer posing as a gateway that sends a reply type the wrong way (a
# relay-head, which only the tunnel sends) is refused at the header before
# anyone reads it, logged with its pid and dropped; one whose relay-start
# announces a body it does not carry is dropped after its header passed.
# The tunnel keeps its pid, a stream that was in flight on a real gateway
# finishes whole, and new requests are served.
source "$(dirname "$0")/lib.sh"
hub_with_tunnel
start_mock --chunks 4 --delay-ms 20
start_agent vio
TOK=$(ctl token create --name vio)
GW=$(gw_url)
tun_pid=$(child_pid tunnel)
[ -n "$tun_pid" ] || fail "no tunnel child"

# sizeof(struct ipc_relay_start), from the header the hub is built with.
cat >"$SWB_TMP/rs.c" <<'C'
#include <stdio.h>
#include "lib/ipc.h"
int main(void) { printf("%zu\n", sizeof(struct ipc_relay_start)); return 0; }
C
cc -std=c17 -I"$(dirname "$0")/../.." $(pkg-config --cflags msgpack 2>/dev/null) \
    -o "$SWB_TMP/rs" "$SWB_TMP/rs.c" || fail "cannot build the size probe"
RS_SIZE=$("$SWB_TMP/rs")

# fake TYPE LEN PAYLOAD_HEX: a 16-byte header (host order) then the
# payload, on tunnel.sock; prints "closed" when the tunnel dropped us.
fake() {
    python3 - "$SWB_TMP/run/tunnel.sock" "$1" "$2" "$3" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack("=IHBBQ", int(sys.argv[3]), int(sys.argv[2]), 1, 0, 7)
          + bytes.fromhex(sys.argv[4]))
s.settimeout(5)
try:
    print("closed" if s.recv(1) == b"" else "answered")
except socket.timeout:
    print("open")
PY
}

note "a stream in flight on a real gateway while the fakes misbehave"
curl -sN -o "$SWB_TMP/long.out" -w '%{http_code}' "$GW/v1/chat/completions" \
    -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[mock chunks=40 delay=50] x"}]}' \
    >"$SWB_TMP/long.code" &
long=$!
sleep 0.5

# enum ipc_type (lib/ipc.h): 11 RELAY_START, 12 RELAY_HEAD.
note "a relay-head sent to the tunnel"
[ "$(fake 12 8 0000000000000000)" = closed ] || fail "the tunnel kept a peer sending relay-head"
wait_until 3 grep -q "tunnel.sock: dropping client pid [0-9]* uid [0-9]*: protocol violation: relay-head message arrived at the end that sends it" \
    "$SWB_TMP/hub.log" || fail "the tunnel did not log the wrong-way relay-head"

note "a relay-start whose body_len is not what follows"
# agent_id 0, chan_slot 0, body_len 5, the rest zero, and no body.
payload=$(python3 -c "import struct,sys; n=int(sys.argv[1]); print((struct.pack('=QII', 0, 0, 5) + b'\0' * (n - 16)).hex())" "$RS_SIZE")
[ "$(fake 11 "$RS_SIZE" "$payload")" = closed ] || fail "the tunnel kept a peer with a lying relay-start"
wait_until 3 grep -q "tunnel.sock: dropping client pid [0-9]* uid [0-9]*: protocol violation: relay-start whose body_len" \
    "$SWB_TMP/hub.log" || fail "the tunnel did not log the lying relay-start"

note "the tunnel lives and serves the real gateways"
wait "$long" || true
[ "$(cat "$SWB_TMP/long.code")" = 200 ] || fail "the stream in flight failed: $(cat "$SWB_TMP/long.code")"
n=$(sed -n 's/^data: //p' "$SWB_TMP/long.out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty' | grep -o tok | wc -l)
[ "$n" = 40 ] || fail "the stream in flight lost chunks: $n of 40"
tail -c 20 "$SWB_TMP/long.out" | grep -q 'data: \[DONE\]' || fail "the stream in flight did not end"
[ "$(child_pid tunnel)" = "$tun_pid" ] || fail "the tunnel was restarted"
for i in 1 2 3 4 5 6; do
    code=$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$GW/v1/chat/completions" \
        -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
        -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')
    [ "$code" = 200 ] || fail "request $i after the violations: $code $(cat "$SWB_TMP/out")"
done
echo OK
