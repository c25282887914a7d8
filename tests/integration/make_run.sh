# make run, the README's quick start, with no provider credentials at all:
# it makes a tunnel certificate, builds agentd pinned to it, starts hubd
# and a local agentd that connect, creates a token and an admin key,
# prints the curl / SDK lines (which reach the hub: 503 no channel, not
# 401) and says which variables or INI keys to set; stopping it stops both.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
RUN=$SWB_TMP/var
(cd "$top" && exec env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u DEEPSEEK_API_KEY \
    -u DASHSCOPE_API_KEY -u AZURE_OPENAI_API_KEY RUN="$RUN" SWB_RUN_GW=127.0.0.1:0 \
    SWB_RUN_TUN=127.0.0.1:0 SWB_RUN_ADMIN=127.0.0.1:0 setsid make --no-print-directory run \
    >"$SWB_TMP/run.out" 2>"$SWB_TMP/run.log") &
RUN_PID=$!
SWB_CLEANUP+=("kill -TERM -- -$RUN_PID 2>/dev/null")
wait_until 400 grep -q '^Call it:' "$SWB_TMP/run.out" ||
    fail "make run printed no call lines: $(cat "$SWB_TMP/run.out") $(tail -5 "$SWB_TMP/run.log")"
cat "$SWB_TMP/run.out"
grep -q 'agent .* connected' "$SWB_TMP/run.out" || fail "no agent connected line"
grep -q 'No provider credentials' "$SWB_TMP/run.out" || fail "no hint about credentials"
for v in OPENAI_API_KEY ANTHROPIC_API_KEY DEEPSEEK_API_KEY DASHSCOPE_API_KEY AZURE_OPENAI_API_KEY channels.ini; do
    grep -q "$v" "$SWB_TMP/run.out" || fail "the hint does not name $v"
done
[ -s "$RUN/tls/hub.pem" ] || fail "no tunnel certificate"
ctl() { "$top/build/run/hubctl" -s "$RUN/sock/hubd.sock" "$@"; }
id=$(ctl --json agents | jq -r '.agents[0].id')
[[ $id =~ ^[0-9]+$ ]] || fail "no agent online: $(ctl agents)"
grep -q 'pinned sha256//' "$SWB_TMP/run.out" || fail "no pin shown"
strings "$top/build/run/agentd" >"$SWB_TMP/strings"
grep -qF "$(grep -o 'sha256//[A-Za-z0-9+/=]*' "$SWB_TMP/run.out" | head -1)" "$SWB_TMP/strings" ||
    fail "build/run/agentd does not carry the certificate's pin"
# The printed curl line, as printed: it reaches the hub with a good token.
line=$(grep -A1 '^  curl http.*/v1/chat/completions' "$SWB_TMP/run.out" | tr -d '\\\n')
code=$(eval "${line/curl /curl -s -o $SWB_TMP/answer -w %\{http_code\} }")
[ "$code" = 503 ] || fail "the printed curl line answered $code: $(cat "$SWB_TMP/answer")"
grep -q no_channel_available "$SWB_TMP/answer" || fail "$(cat "$SWB_TMP/answer")"
grep -q "python3 -c 'from openai import OpenAI" "$SWB_TMP/run.out" || fail "no SDK line"
adm=$(grep -o 'curl http://[0-9.:]*/admin/agents.*' "$SWB_TMP/run.out")
eval "${adm/curl /curl -s }" | jq -e --argjson id "$id" '.agents[] | select(.id==$id)' >/dev/null ||
    fail "the printed admin line does not list the agent"

note "stopping make run stops hub and agent"
hub=$(ctl --json status | jq -r .pid)
kill -TERM -- -"$RUN_PID"
stopped() { ! kill -0 "$hub" 2>/dev/null && ! pgrep -f "$RUN/agentd.ini" >/dev/null; }
wait_until 15 stopped || fail "hubd or agentd still running"
echo "make_run: ok"
