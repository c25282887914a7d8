# Hostile and unlucky HTTP/1.1 clients on the user port (raw sockets from
# python3), each a finding that once took a worker down or leaked memory:
# pipelined requests are answered in order (tokenless and authenticated);
# RFC 9112 framing (Content-Length with Transfer-Encoding -> 400 and close,
# chunked bodies accepted, bad lengths -> 400, HTTP/1.0 answered without
# chunked framing, 431 for heads over the limit, 408 for a head that never
# ends); the token is checked from the headers before any body is read (100
# tokenless connections announcing 4 MB do not grow the workers); no
# WebSocket upgrade without a token or route; the workers stay responsive
# and idle afterwards.
source "$(dirname "$0")/lib.sh"
SWB_GW_INI="header_timeout = 1500ms
keepalive_timeout = 5s" hub_with_tunnel
start_mock --chunks 3 --delay-ms 5
start_agent hostile1
TOK=$(ctl token create --name hostile)
GW=$(gw_url)
HOSTPORT=${GW#http://}
export HOSTPORT TOK
PY=$SWB_TMP/raw.py
cat >"$PY" <<'EOF'
import os, socket, sys, time
host, port = os.environ["HOSTPORT"].rsplit(":", 1)
TOK = os.environ["TOK"]

def conn(rcvbuf=None):
    s = socket.create_connection((host, int(port)), timeout=10)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return s

def read_all(s, limit=10.0):
    s.settimeout(limit)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    return out

def read_responses(s, n, limit=10.0):
    """Read n HTTP/1.1 responses (content-length or chunked bodies)."""
    s.settimeout(limit)
    buf = b""
    res = []
    end = time.time() + limit
    while len(res) < n and time.time() < end:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return res, buf
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, v = l.split(b":", 1)
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        if "content-length" in hdrs:
            cl = int(hdrs["content-length"])
            while len(rest) < cl:
                d = s.recv(65536)
                if not d:
                    break
                rest += d
            body, buf = rest[:cl], rest[cl:]
        elif hdrs.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                while b"\r\n" not in rest:
                    rest += s.recv(65536)
                szl, rest = rest.split(b"\r\n", 1)
                sz = int(szl, 16)
                while len(rest) < sz + 2:
                    rest += s.recv(65536)
                body += rest[:sz]
                rest = rest[sz + 2:]
                if sz == 0:
                    break
            buf = rest
        else:
            body, buf = rest + read_all(s, 3), b""
        res.append((status, hdrs, body))
    return res, buf

def chat(stream=False):
    b = ('{"model":"gpt-4o-mini","stream":%s,"messages":[{"role":"user","content":"x"}]}'
         % ("true" if stream else "false")).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
            + TOK.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(b)).encode() + b"\r\n\r\n" + b)

def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)

case = sys.argv[1]
if case == "pipeline-tokenless":
    for _ in range(2):
        s = conn()
        s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
                  b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        res, _ = read_responses(s, 2, 5)
        check([r[0] for r in res] in ([404, 404], [404]), "pipelined tokenless requests answered: %s" % [r[0] for r in res])
        s.close()
elif case == "pipeline-auth":
    s = conn()
    s.sendall(chat() + chat(True) + chat())
    res, _ = read_responses(s, 3, 10)
    check([r[0] for r in res] == [200, 200, 200], "three pipelined chats answered in order: %s" % [r[0] for r in res])
    check(b'"object":"chat.completion"' in res[0][2] and b"data: [DONE]" in res[1][2]
          and b'"object":"chat.completion"' in res[2][2], "each answer is its own request's")
elif case == "cl-te":
    s = conn()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    out = read_all(s, 5)
    check(out.startswith(b"HTTP/1.1 400"), "CL+TE refused with 400: %r" % out[:40])
    check(out.count(b"HTTP/1.1") == 1, "nothing after it is parsed as a request")
elif case == "chunked-body":
    b = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}'
    s = conn()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
              + TOK.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"%x\r\n" % 10 + b[:10] + b"\r\n" + b"%x;ext=1\r\n" % (len(b) - 10) + b[10:]
              + b"\r\n0\r\nX-Trailer: y\r\n\r\n" + chat())
    res, _ = read_responses(s, 2, 10)
    check([r[0] for r in res] == [200, 200], "a chunked body is read, and the next request after it: %s" % [r[0] for r in res])
elif case == "bad-length":
    for cl in (b"-1", b"abc", b"1, 2", b"99999999999999999999"):
        s = conn()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                  + TOK.encode() + b"\r\nContent-Length: " + cl + b"\r\n\r\n{}")
        out = read_all(s, 5)
        check(out.startswith(b"HTTP/1.1 400"), "Content-Length %r -> 400 (%r)" % (cl, out[:30]))
    s = conn()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
              + TOK.encode() + b"\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    out = read_all(s, 5)
    check(out.startswith(b"HTTP/1.1 501"), "unknown transfer coding -> 501")
elif case == "http10":
    b = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}'
    s = conn()
    s.sendall(b"POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer " + TOK.encode()
              + b"\r\nContent-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b)
    out = read_all(s, 10)
    head, body = out.split(b"\r\n\r\n", 1)
    check(head.startswith(b"HTTP/1.0 200"), "HTTP/1.0 answered as 1.0: %r" % head[:20])
    check(b"transfer-encoding" not in head.lower(), "no chunked framing for HTTP/1.0")
    check(body.startswith(b"data: ") and b"data: [DONE]" in body, "the stream is the body, ended by the close")
elif case == "big-head":
    s = conn()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    out = read_all(s, 5)
    check(out.startswith(b"HTTP/1.1 431"), "a 100 KB header line -> 431 (%r)" % out[:30])
    s = conn()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 10000 + b"\r\n")
    out = read_all(s, 5)
    check(out.startswith(b"HTTP/1.1 431"), "10,000 headers -> 431 (%r)" % out[:30])
    s = conn()
    s.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    out = read_all(s, 5)
    check(out.startswith(b"HTTP/1.1 414"), "a 9 KB request line -> 414")
elif case == "slow-head":
    s = conn()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
    t0 = time.time()
    out = read_all(s, 6)
    check(out.startswith(b"HTTP/1.1 408") and time.time() - t0 < 5, "an unfinished head gets 408 after header_timeout")
elif case == "split-head":
    # A head whose blank line arrives in pieces, cut inside it at each
    # place, with CRLF and with bare LF lines; and one sent a byte at a
    # time: each is answered once its last byte is in.
    heads = [b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
             b"GET /healthz HTTP/1.1\nHost: a\n\n"]
    for h in heads:
        for cut in range(len(h) - 4, len(h)):
            s = conn()
            s.sendall(h[:cut])
            s.settimeout(0.2)
            try:
                early = s.recv(100)
            except socket.timeout:
                early = b""
            check(early == b"", "no answer before the head ends (cut at %d of %r)" % (cut, h))
            s.sendall(h[cut:])
            res, _ = read_responses(s, 1, 5)
            check(len(res) == 1 and res[0][0] == 200, "answered once the head ended (cut at %d of %r): %r" % (cut, h, res))
    s = conn()
    for b in heads[0]:
        s.sendall(bytes([b]))
        time.sleep(0.002)
    res, _ = read_responses(s, 1, 5)
    check(len(res) == 1 and res[0][0] == 200, "a head sent a byte at a time is answered: %r" % (res,))
elif case == "upgrade":
    for path in (b"/anything", b"/v1/chat/completions", b"/v1/realtime"):
        s = conn()
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        out = read_all(s, 3)
        check(not out.startswith(b"HTTP/1.1 101") and out[:12] in (b"HTTP/1.1 401", b"HTTP/1.1 404"),
              "tokenless upgrade on %s refused: %r" % (path, out[:12]))
elif case == "tokenless-flood":
    socks = []
    for i in range(100):
        s = conn()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n")
        socks.append(s)
    for r in range(20):
        for s in socks:
            try:
                s.send(b"x" * 8192)
            except OSError:
                pass
        time.sleep(0.05)
    answered = 0
    for s in socks:
        s.settimeout(2)
        try:
            if s.recv(12).startswith(b"HTTP/1.1 401"):
                answered += 1
        except OSError:
            pass
    check(answered == 100, "every tokenless upload was refused 401 before its body (%d/100)" % answered)
    for s in socks:
        s.close()
EOF

rss_sum() {	# total RSS (kB) of the gateway workers
    local t=0
    for p in $(status_json | jq -r '.children[] | select(.name|startswith("gateway")) | .pid'); do
        t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status")))
    done
    echo $t
}
cpu_ticks() {	# utime+stime of the gateway workers
    local t=0
    for p in $(status_json | jq -r '.children[] | select(.name|startswith("gateway")) | .pid'); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $t
}

for c in pipeline-tokenless pipeline-auth cl-te chunked-body bad-length http10 big-head slow-head split-head upgrade; do
    note "$c"
    python3 "$PY" "$c" || fail "$c"
done

note "tokenless uploads do not grow the workers"
before=$(rss_sum)
python3 "$PY" tokenless-flood || fail "tokenless-flood"
after=$(rss_sum)
echo "gateway RSS: $before kB -> $after kB"
(( after - before < 30000 )) || fail "gateway workers grew by $((after - before)) kB"

note "the workers are idle and serving afterwards"
c0=$(cpu_ticks); sleep 2; c1=$(cpu_ticks)
(( c1 - c0 < 40 )) || fail "gateway workers busy while idle: $((c1 - c0)) ticks in 2 s"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/healthz")" = 200 ] || fail "healthz after the attacks"
status_json | jq -e '[.children[] | select(.name|startswith("gateway")) | .restarts] | add == 0' >/dev/null ||
    fail "a gateway worker restarted"
echo "http_hostile: ok"
