#!/usr/bin/env bash
# tools/run.sh (make run): a working switchboard on this machine, in the
# foreground until Ctrl-C.
#   - a tunnel certificate for the hub, made once (openssl), in $RUN/tls;
#   - a release build in build/run whose agentd carries that certificate's
#     pin (make HUB_PINS=...: a release agentd takes pins at build time
#     only, so no test build is needed), rebuilt when the pin changes;
#   - hubd from etc/hubd.ini with the tunnel's certificate and the admin
#     API on (RUN/hubd.ini, made from etc/hubd.ini each run);
#   - one agentd beside it (key made and registered once), with a channel
#     for each provider credential found in the environment
#     (OPENAI_API_KEY, ANTHROPIC_API_KEY, DEEPSEEK_API_KEY,
#     DASHSCOPE_API_KEY, AZURE_OPENAI_API_KEY + AZURE_OPENAI_RESOURCE)
#     and the [channel.NAME] sections of $RUN/channels.ini;
#   - a token and an admin key (made once, kept in $RUN), and the lines to
#     call the hub with curl and the SDKs.
# RUN defaults to var/; SWB_RUN_GW, SWB_RUN_TUN, SWB_RUN_ADMIN override the
# listen addresses (port 0: any free port).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
RUN=${RUN:-var}
mkdir -p "$RUN" "$RUN/tls" "$RUN/log"
RUN=$(cd "$RUN" && pwd)
chmod 700 "$RUN"
GW=${SWB_RUN_GW:-127.0.0.1:8080}
TUN=${SWB_RUN_TUN:-127.0.0.1:8443}
ADM=${SWB_RUN_ADMIN:-127.0.0.1:8081}
B=build/run

say() { printf 'run: %s\n' "$*" >&2; }

# ---- the tunnel certificate and its pin --------------------------------
if [ ! -s "$RUN/tls/hub.pem" ] || [ ! -s "$RUN/tls/hub.key" ]; then
    say "making the hub's tunnel certificate ($RUN/tls/hub.pem)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$RUN/tls/hub.key" -out "$RUN/tls/hub.pem" -days 3650 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        2>/dev/null
    chmod 600 "$RUN/tls/hub.key"
fi
pin="sha256//$(openssl x509 -in "$RUN/tls/hub.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"

# ---- a release build pinned to it ----------------------------------------
if [ "$(cat "$B/.pins" 2>/dev/null)" != "$pin" ]; then
    rm -rf "$B"
fi
say "building the release binaries in $B (agentd pinned to $pin)"
make --no-print-directory -s BUILD="$B" HUB_PINS="$pin" all >&2
echo "$pin" >"$B/.pins"

# ---- the hub ----------------------------------------------------------------
# etc/hubd.ini with this run's paths and listeners (section-aware: [gateway]
# and [tunnel] both have listen/cert/key).
awk -v run="$RUN" -v gw="$GW" -v tun="$TUN" -v adm="$ADM" '
    /^\[/ { sec = $0 }
    sec == "[hub]" && /^run_dir *=/ { $0 = "run_dir = " run "/sock" }
    sec == "[gateway]" && /^listen *=/ { $0 = "listen = " gw }
    sec == "[tunnel]" && /^listen *=/ { $0 = "listen = " tun }
    sec == "[tunnel]" && /^cert *=/ { $0 = "cert = " run "/tls/hub.pem" }
    sec == "[tunnel]" && /^key *=/ { $0 = "key = " run "/tls/hub.key" }
    sec == "[store]" && /^url *=/ { $0 = "url = sqlite:" run "/hubd.db" }
    sec == "[store]" && /^ledger_key *=/ { $0 = "ledger_key = " run "/ledger.key" }
    sec == "[admin]" && /^listen *=/ { $0 = "listen = " adm }
    { print }
' etc/hubd.ini >"$RUN/hubd.ini"
grep -q '^\[admin\]' "$RUN/hubd.ini" || printf '[admin]\nlisten = %s\n' "$ADM" >>"$RUN/hubd.ini"
"$B/hubd" -t -c "$RUN/hubd.ini" >/dev/null

ctl() { "$B/hubctl" -s "$RUN/sock/hubd.sock" "$@"; }
HUB_PID= AG_PID=
stop() {
    trap - INT TERM EXIT
    [ -n "$AG_PID" ] && kill -TERM "$AG_PID" 2>/dev/null || true
    [ -n "$HUB_PID" ] && kill -TERM "$HUB_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    say "stopped"
}
trap stop INT TERM EXIT

"$B/hubd" -c "$RUN/hubd.ini" >>"$RUN/log/hubd.log" 2>&1 &
HUB_PID=$!
for _ in $(seq 100); do
    ctl --json status >/dev/null 2>&1 && break
    kill -0 "$HUB_PID" 2>/dev/null || { tail -5 "$RUN/log/hubd.log" >&2; exit 1; }
    sleep 0.1
done
status=$(ctl --json status)
gw=$(jq -r .listen.gateway <<<"$status")
tun=$(jq -r .listen.tunnel <<<"$status")
adm=$(jq -r .listen.admin <<<"$status")

# ---- the agent: key, registration, channels -----------------------------
if [ ! -s "$RUN/agent.key" ] || [ ! -s "$RUN/agent.pub" ]; then
    "$B/agentd" keygen -f -o "$RUN/agent.key" 2>/dev/null >"$RUN/agent.pub"
fi
mypub=$(head -1 "$RUN/agent.pub")
id=$(ctl --json agent list | jq -r --arg p "$mypub" '.agents[] | select(.pubkey==$p) | .id' | head -1)
if [ -z "$id" ]; then
    id=$(ctl --json agent add "local-$(date +%s)" "$mypub" --grade A | jq -r .id)
fi

channels=
found=()
add_channel() {   # add_channel NAME PROVIDER MODELS KEY [EXTRA]
    channels+="[channel.$1]
provider = $2
models = $3
key = $4
${5:-}
"
    found+=("$1 ($2: $3)")
}
[ -n "${OPENAI_API_KEY:-}" ] && add_channel openai openai "gpt-4o-mini, gpt-4o, text-embedding-3-small" "$OPENAI_API_KEY"
[ -n "${ANTHROPIC_API_KEY:-}" ] && add_channel anthropic anthropic "claude-sonnet-4-5, claude-haiku-4-5" "$ANTHROPIC_API_KEY"
[ -n "${DEEPSEEK_API_KEY:-}" ] && add_channel deepseek deepseek "deepseek-chat, deepseek-reasoner" "$DEEPSEEK_API_KEY"
[ -n "${DASHSCOPE_API_KEY:-}" ] && add_channel qwen qwen "qwen-plus" "$DASHSCOPE_API_KEY"
if [ -n "${AZURE_OPENAI_API_KEY:-}" ] && [ -n "${AZURE_OPENAI_RESOURCE:-}" ]; then
    add_channel azure azure "${AZURE_OPENAI_MODELS:-gpt-4o-mini}" "$AZURE_OPENAI_API_KEY" \
        "resource = $AZURE_OPENAI_RESOURCE"
fi
if [ ! -e "$RUN/channels.ini" ]; then
    cat >"$RUN/channels.ini" <<'INI'
# Channels of the local agent besides those make run finds in the
# environment: [channel.NAME] sections as in etc/agentd.ini, e.g.
#[channel.mine]
#provider = openai
#models = gpt-4o-mini
#key = sk-...
INI
    chmod 600 "$RUN/channels.ini"
fi
while read -r sec; do
    found+=("${sec#\[channel.}")
done < <(grep -o '^\[channel\.[A-Za-z0-9_-]*' "$RUN/channels.ini" || true)

umask 077
cat >"$RUN/agentd.ini" <<INI
# Written by make run (tools/run.sh) on each run; edit $RUN/channels.ini.
[agent]
id = $id
key_file = $RUN/agent.key
hub_url = wss://$tun/tunnel/connect
reconnect_min = 200ms
reconnect_max = 5s
state_dir = $RUN/agent
[ledger]
$channels
INI
grep -v '^#' "$RUN/channels.ini" >>"$RUN/agentd.ini" || true
"$B/agentd" -t -c "$RUN/agentd.ini" >/dev/null
"$B/agentd" -c "$RUN/agentd.ini" >>"$RUN/log/agentd.log" 2>&1 &
AG_PID=$!
online=
for _ in $(seq 100); do
    if ctl --json agents | jq -e --argjson id "$id" '.agents[] | select(.id==$id)' >/dev/null; then
        online=1
        break
    fi
    kill -0 "$AG_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$online" ] || { say "the agent did not connect:"; tail -5 "$RUN/log/agentd.log" >&2; exit 1; }

# ---- a token and an admin key (kept) ---------------------------------------
token=$(cat "$RUN/token" 2>/dev/null || true)
if [ -n "$token" ]; then
    h=$(printf '%s' "$token" | sha256sum | cut -c1-12)
    ctl --json token list | jq -e --arg h "$h" '.tokens[] | select(.hash_prefix==$h and .enabled)' >/dev/null || token=
fi
if [ -z "$token" ]; then
    token=$(ctl token create --name make-run)
    echo "$token" >"$RUN/token"
fi
akey=$(cat "$RUN/admin.key" 2>/dev/null || true)
if [ -n "$akey" ]; then
    h=$(printf '%s' "$akey" | sha256sum | cut -c1-12)
    ctl --json admin-key list | jq -e --arg h "$h" '.keys[] | select(.hash_prefix==$h and .valid)' >/dev/null || akey=
fi
if [ -z "$akey" ]; then
    akey=$(ctl admin-key create --name make-run)
    echo "$akey" >"$RUN/admin.key"
fi

model=gpt-4o-mini
case "${found[0]:-}" in
    anthropic*) model=claude-sonnet-4-5 ;;
    deepseek*) model=deepseek-chat ;;
    qwen*) model=qwen-plus ;;
esac
cat <<EOF

switchboard is running (Ctrl-C stops it; logs in $RUN/log/).
  hub     http://$gw/v1        (tunnel wss://$tun, pinned $pin)
  agent   $id connected: hub and agent are talking
  admin   http://$adm           key $akey
  token   $token
EOF
if [ ${#found[@]} -eq 0 ]; then
    cat <<EOF

No provider credentials: the agent offers no channel yet, so calls answer
503 no_channel_available.  Set one of
  OPENAI_API_KEY, ANTHROPIC_API_KEY, DEEPSEEK_API_KEY, DASHSCOPE_API_KEY (Qwen),
  AZURE_OPENAI_API_KEY with AZURE_OPENAI_RESOURCE (and AZURE_OPENAI_MODELS)
and run make run again, or add [channel.NAME] sections (provider, models,
key) to $RUN/channels.ini, then: kill -HUP $AG_PID  (the agent reloads
its channels without dropping the tunnel).
EOF
else
    echo "  channels: ${found[*]}"
fi
cat <<EOF

Call it:
  curl http://$gw/v1/chat/completions -H "Authorization: Bearer $token" \\
       -d '{"model":"$model","messages":[{"role":"user","content":"hi"}]}'
  python3 -c 'from openai import OpenAI; c = OpenAI(base_url="http://$gw/v1", api_key="$token"); print(c.chat.completions.create(model="$model", messages=[{"role":"user","content":"hi"}]).choices[0].message.content)'
  node -e 'const OpenAI = require("openai"); new OpenAI({baseURL: "http://$gw/v1", apiKey: "$token"}).chat.completions.create({model: "$model", messages: [{role: "user", content: "hi"}]}).then(r => console.log(r.choices[0].message.content))'
  curl http://$adm/admin/agents -H "Authorization: Bearer $akey"
EOF
wait "$HUB_PID"
