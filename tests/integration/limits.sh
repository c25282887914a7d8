# Rate limits through real processes: (a) one hub without Redis — a token
# with --rpm 5 gets exactly 5 answers in a burst of 12, the rest 429
# rate_limit_exceeded with retry-after; (b) two hubs sharing one Redis and
# one PostgreSQL store (so they share tokens), an agent on each — a burst
# of 10 to each hub with a token --rpm 7 admits exactly 7 in all;
# (c) Redis stopped: requests are still served on local counters and each
# hub logs the fallback once; Redis back on its port: logged once, used.
source "$(dirname "$0")/lib.sh"
ROOT=$SWB_TMP
SVC=$(cd "$(dirname "$0")/../services" && pwd)
BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'

# The checks count within one minute window: never start one near its end.
fresh_minute() {
    local s=$(( $(date +%s) % 60 ))
    if ((s >= 45)); then sleep $((61 - s)); fi
}
# burst N OUTDIR URL TOKEN: N concurrent requests; files OUTDIR/{code,hdr,body}.i
burst() {
    local n=$1 dir=$2 url=$3 tok=$4 pids=()
    mkdir -p "$dir"
    for i in $(seq "$n"); do
        curl -s -o "$dir/body.$i" -D "$dir/hdr.$i" -w '%{http_code}' \
            "$url/v1/chat/completions" -H "Authorization: Bearer $tok" \
            -d "$BODY" >"$dir/code.$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
}
count() { awk -v c="$2" '$0 == c { n++ } END { print n + 0 }' "$1"/code.*; }
# Every 429 in DIR is OpenAI's rate-limit shape with a sane retry-after.
check_429s() {
    local dir=$1 f i ra
    for f in "$dir"/code.*; do
        i=${f##*.}
        [ "$(cat "$f")" = 429 ] || continue
        [ "$(jq -r .error.code "$dir/body.$i")" = rate_limit_exceeded ] || fail "429 body: $(cat "$dir/body.$i")"
        [ "$(jq -r .error.type "$dir/body.$i")" = requests ] || fail "429 type: $(cat "$dir/body.$i")"
        [ "$(jq -c .error.param "$dir/body.$i")" = null ] || fail "429 param"
        ra=$(tr -d '\r' <"$dir/hdr.$i" | awk -F': ' 'tolower($1)=="retry-after" {print $2}')
        [[ $ra =~ ^[0-9]+$ ]] && ((ra >= 1 && ra <= 60)) || fail "retry-after '$ra' in $(cat "$dir/hdr.$i")"
    done
}

note "(a) one hub, local counters: --rpm 5, burst of 12"
hub_with_tunnel
SWB_CLEANUP+=("kill -TERM $HUB_PID")
start_mock
start_agent lim1
TOK=$(ctl token create --name lim --rpm 5)
fresh_minute
burst 12 "$ROOT/a" "$(gw_url)" "$TOK"
ok=$(count "$ROOT/a" 200); lim=$(count "$ROOT/a" 429)
echo "burst of 12: $ok answered, $lim refused"
[ "$ok" = 5 ] || fail "expected exactly 5 answers, got $ok ($(cat "$ROOT"/a/code.* | tr '\n' ' '))"
[ "$lim" = 7 ] || fail "expected 7 refusals, got $lim"
check_429s "$ROOT/a"
# A token without limits is not affected.
FREE=$(ctl token create --name free)
burst 8 "$ROOT/a2" "$(gw_url)" "$FREE"
[ "$(count "$ROOT/a2" 200)" = 8 ] || fail "a token without limits was refused"

note "(b) two hubs, one Redis, one PostgreSQL: --rpm 7, 10 + 10 at once"
PG=$(bash "$SVC/pg.sh" start "$ROOT/pg")
SWB_CLEANUP+=("bash $SVC/pg.sh stop $ROOT/pg")
REDIS=$(bash "$SVC/redis.sh" start "$ROOT/redis")
SWB_CLEANUP+=("bash $SVC/redis.sh stop $ROOT/redis")
echo "PostgreSQL $PG, Redis $REDIS"
declare -A GWS
for h in h1 h2; do
    SWB_TMP=$ROOT/$h
    mkdir -p "$SWB_TMP"
    cp -r "$ROOT/certs" "$SWB_TMP/certs"
    SWB_WORKERS=1 SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini" "[redis]
url = $REDIS"
    sed -i "s|^url = sqlite:.*|url = $PG|" "$SWB_TMP/hubd.ini"
    start_hub "$SWB_TMP/hubd.ini"
    SWB_CLEANUP+=("kill -TERM $HUB_PID")
    start_agent "ag-$h"
    GWS[$h]=$(gw_url)
    wait_until 5 grep -q "global counters in redis $REDIS" "$SWB_TMP/hub.log" ||
        fail "$h did not connect to Redis"
done
SWB_TMP=$ROOT/h1
TOK7=$(ctl token create --name shared --rpm 7)
# Both gateways know the token before the burst (GET /v1/models counts nowhere).
for h in h1 h2; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${GWS[$h]}/v1/models" -H "Authorization: Bearer $TOK7")" = 200 ] ||
        fail "$h does not know the shared token"
done
fresh_minute
burst 10 "$ROOT/b1" "${GWS[h1]}" "$TOK7" &
b1=$!
burst 10 "$ROOT/b2" "${GWS[h2]}" "$TOK7" &
b2=$!
wait $b1 $b2
ok1=$(count "$ROOT/b1" 200); ok2=$(count "$ROOT/b2" 200)
lim=$(( $(count "$ROOT/b1" 429) + $(count "$ROOT/b2" 429) ))
echo "hub 1 answered $ok1, hub 2 answered $ok2, $lim refused"
[ $((ok1 + ok2)) = 7 ] || fail "expected exactly 7 answers over both hubs, got $ok1 + $ok2"
[ "$lim" = 13 ] || fail "expected 13 refusals, got $lim"
check_429s "$ROOT/b1"
check_429s "$ROOT/b2"

note "(c) Redis stopped: local counters, one warning per hub; then back"
bash "$SVC/redis.sh" stop "$ROOT/redis"
for h in h1 h2; do
    wait_until 5 grep -q "rate limits fall back" "$ROOT/$h/hub.log" || fail "$h logged no fallback"
done
TOK9=$(ctl token create --name after --rpm 100)
sleep 2.5	# reconnect attempts meanwhile (one a second) must stay quiet
burst 4 "$ROOT/c1" "${GWS[h1]}" "$TOK9"
burst 4 "$ROOT/c2" "${GWS[h2]}" "$TOK9"
[ "$(count "$ROOT/c1" 200)" = 4 ] || fail "hub 1 refused requests with Redis down: $(cat "$ROOT"/c1/code.* | tr '\n' ' ')"
[ "$(count "$ROOT/c2" 200)" = 4 ] || fail "hub 2 refused requests with Redis down"
for h in h1 h2; do
    n=$(grep -c "rate limits fall back" "$ROOT/$h/hub.log")
    [ "$n" = 1 ] || fail "$h logged the fallback $n times"
done
# Local counters still limit: hub 1 alone admits 5 of 8 for --rpm 5.
TOK5=$(ctl token create --name local5 --rpm 5)
fresh_minute
burst 8 "$ROOT/c3" "${GWS[h1]}" "$TOK5"
[ "$(count "$ROOT/c3" 200)" = 5 ] || fail "local fallback did not limit: $(cat "$ROOT"/c3/code.* | tr '\n' ' ')"
# Redis again on the same port: each hub says so once and uses it.
port=${REDIS##*:}
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --pidfile "$ROOT/redis/redis.pid" --logfile "$ROOT/redis/redis2.log" --dir "$ROOT/redis" >/dev/null
for h in h1 h2; do
    wait_until 5 grep -q "is back: rate limits are global again" "$ROOT/$h/hub.log" || fail "$h did not return to Redis"
done
TOK3=$(ctl token create --name back --rpm 3)
fresh_minute
burst 3 "$ROOT/d1" "${GWS[h1]}" "$TOK3"
burst 3 "$ROOT/d2" "${GWS[h2]}" "$TOK3"
[ $(( $(count "$ROOT/d1" 200) + $(count "$ROOT/d2" 200) )) = 3 ] || fail "limits not global again after Redis came back"
echo OK
