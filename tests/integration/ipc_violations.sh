# One policy for a peer that breaks the message protocol: the receiver
# logs the peer and the reason and drops that connection; it never dies of
# it.  Raw bytes on billing.sock, moderation.sock and hubd.sock: a reply
# type on the request side (refused at the header), a wrong version, a
# huge length; each receiver keeps its pid and keeps serving.
source "$(dirname "$0")/lib.sh"
write_hub_ini "$SWB_TMP/hubd.ini" "[moderation]
enabled = yes
url = http://127.0.0.1:9/v1/moderations
timeout = 200ms"
start_hub "$SWB_TMP/hubd.ini"
before=$(status_json | jq -c '[.children[] | {name, pid}]')

# raw SOCKET MSG...: each MSG "TYPE:LEN:VERSION:BYTES" is a 16-byte header
# (host order) and BYTES zeros; prints what the receiver did: "closed"
# when it dropped us.
raw() {
    python3 - "$SWB_TMP/run/$1" "${@:2}" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
for m in sys.argv[2:]:
    t, n, v, b = map(int, m.split(":"))
    s.sendall(struct.pack("=IHBBQ", n, t, v, 0, 7) + b"\0" * b)
s.settimeout(5)
try:
    print("closed" if s.recv(1) == b"" else "answered")
except socket.timeout:
    print("open")
PY
}
# send SOCKET TYPE LEN VERSION: one header and 8 bytes.
send() { raw "$1" "$2:$3:$4:8"; }
# enum ipc_type (lib/ipc.h): 6 ADMIN_RESP, 10 TOKEN_INFO, 18 MOD_VERDICT.
note "a token-info (billing's own answer) sent to billing"
[ "$(send billing.sock 10 416 1)" = closed ] || fail "billing did not drop the peer"
grep -q "billing.sock: dropping client pid [0-9]* uid [0-9]*: protocol violation: token-info message arrived at the end that sends it" \
    "$SWB_TMP/hub.log" || fail "billing did not log the violation"
# deferred TYPE LEN: on billing.sock, a bill-defer (39) first, then a
# message of TYPE and LEN bytes of zeros.
deferred() { raw billing.sock 39:8:1:8 "$1:$2:1:$2"; }
note "a deferred connection (bill-defer) asks for a token, or waits for a reservation"
[ "$(deferred 9 72)" = closed ] || fail "billing kept a deferred peer that asked for a token"
grep -q "billing.sock: dropping client pid [0-9]* uid [0-9]*: protocol violation: message type 9 is not allowed here" \
    "$SWB_TMP/hub.log" || fail "billing did not log the token-get on a deferred connection"
[ "$(deferred 19 168)" = closed ] || fail "billing kept a deferred peer waiting for a reservation"
grep -q "billing.sock: dropping client pid [0-9]* uid [0-9]*: protocol violation: a reservation waited for on a deferred connection" \
    "$SWB_TMP/hub.log" || fail "billing did not log the waited reservation on a deferred connection"
note "a verdict sent to moderation; a wrong version"
[ "$(send moderation.sock 18 168 1)" = closed ] || fail "moderation did not drop the peer"
[ "$(send moderation.sock 17 8 9)" = closed ] || fail "moderation kept a wrong version"
grep -q "moderation.sock: dropping client .*mod-verdict message arrived" "$SWB_TMP/hub.log" \
    || fail "moderation did not log the violation"
note "an admin response and a 4 GB length sent to the master"
[ "$(send hubd.sock 6 8 1)" = closed ] || fail "the master did not drop the peer"
[ "$(send hubd.sock 5 4294967295 1)" = closed ] || fail "the master kept a huge length"
grep -q "hubd.sock: dropping client .*admin-resp message arrived" "$SWB_TMP/hub.log" \
    || fail "the master did not log the violation"

note "every receiver is alive and serves"
sleep 0.5
after=$(status_json | jq -c '[.children[] | {name, pid}]')
[ "$before" = "$after" ] || fail "a child died: $before -> $after"
all_running || fail "not every child is running"
TOK=$(ctl token create --name ipc) || fail "billing does not answer after the violations"
code=$(curl -s -o "$SWB_TMP/out" -w '%{http_code}' "$(gw_url)/v1/chat/completions" \
    -H "Authorization: Bearer $TOK" -H 'content-type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
# Moderation answers (fail-open: its service is down) and the request
# goes on to routing, which finds no agent: 503, not a hang or a 502.
[ "$code" = 503 ] || fail "expected 503 (no channel), got $code: $(cat "$SWB_TMP/out")"
echo OK
