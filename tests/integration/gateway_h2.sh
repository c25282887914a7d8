# With [gateway] cert/key the user API speaks TLS and offers HTTP/2: a
# streamed answer over h2 and a plain request over HTTP/1.1 on one port.
source "$(dirname "$0")/lib.sh"
make_certs "$SWB_TMP/certs"
SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key" write_hub_ini "$SWB_TMP/hubd.ini"
sed -i "s|^workers = .*|&\ncert = $SWB_TMP/certs/server.pem\nkey = $SWB_TMP/certs/server.key|" "$SWB_TMP/hubd.ini"
start_hub "$SWB_TMP/hubd.ini"
start_mock --chunks 3 --delay-ms 30
start_agent h2
TOK=$(ctl token create)
A=$(status_json | jq -r .listen.gateway)
out=$(curl -sN --http2 --cacert "$SWB_TMP/certs/ca.pem" -w '\n%{http_version} %{http_code}' \
    "https://$A/v1/chat/completions" -H "Authorization: Bearer $TOK" \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}')
[ "$(tail -1 <<<"$out")" = "2 200" ] || fail "not an HTTP/2 200: $(tail -1 <<<"$out")"
content=$(sed -n 's/^data: //p' <<<"$out" | grep -v '^\[DONE\]' | jq -rj '.choices[0].delta.content // empty')
[ "$content" = "tok0 tok1 tok2 " ] || fail "h2 content was '$content'"
out=$(curl -s --http1.1 --cacert "$SWB_TMP/certs/ca.pem" -w '\n%{http_version} %{http_code}' \
    "https://$A/v1/models" -H "Authorization: Bearer $TOK")
[ "$(tail -1 <<<"$out")" = "1.1 200" ] || fail "HTTP/1.1 over TLS failed"
echo OK
