# Shared helpers of the integration tests (sourced).  Each test gets
# SWB_BIN (build dir with hubd/agentd/hubctl) and SWB_TMP (fresh dir).
set -euo pipefail
: "${SWB_BIN:?}" "${SWB_TMP:?}"
HUBD=$SWB_BIN/hubd
HUBCTL=$SWB_BIN/hubctl
AGENTD=$SWB_BIN/agentd
# SWB_WRAP: words put before hubd's and agentd's command lines (bench/instr.sh
# runs both under a profiler); the waits for them to come up are longer then.
read -r -a SWB_WRAP_A <<<"${SWB_WRAP:-}"
SWB_WAIT_UP=$([ -n "${SWB_WRAP:-}" ] && echo 120 || echo 15)
HUB_PID=
declare -a SWB_CLEANUP=()

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }
on_exit() {
    local rc=$?
    for c in "${SWB_CLEANUP[@]}"; do eval "$c" || true; done
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$HUB_PID" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ]; then
        for f in "$SWB_TMP"/*.log; do [ -f "$f" ] && { echo "=== $f"; tail -n 40 "$f"; }; done
    fi
    exit $rc
}
[ -n "${SWB_NO_TRAP:-}" ] || trap on_exit EXIT

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local limit=$1; shift
    local end=$((SECONDS + limit + 1))
    while ((SECONDS < end)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# write_hub_ini FILE [extra INI text]: a hub on free ports inside SWB_TMP.
write_hub_ini() {
    local f=$1; shift
    cat >"$f" <<INI
[hub]
run_dir = $SWB_TMP/run
log_level = info
event_loop = ${SWB_EVENT_LOOP:-epoll}
drain_timeout = 3s
restart_backoff_max = 2s
[gateway]
listen = 127.0.0.1:0
workers = ${SWB_WORKERS:-2}
${SWB_GW_INI:-}
[tunnel]
listen = 127.0.0.1:0
${SWB_TUNNEL_INI:-}
[store]
url = sqlite:$SWB_TMP/hubd.db
ledger_key = $SWB_TMP/ledger.key
[billing]
report_grace = ${SWB_REPORT_GRACE:-4s}
stale_reservation = ${SWB_STALE:-15m}
INI
    if [ $# -gt 0 ]; then printf '%s\n' "$*" >>"$f"; fi
}

ctl() { "$HUBCTL" -s "$SWB_TMP/run/hubd.sock" "$@"; }
# Tokens' money as hubctl prints it: fmt MICRO-UNITS -> "U.UUUUUU";
# used_of NAME -> the token's used; used_is NAME MICRO-UNITS.
fmt() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
used_of() { ctl --json token list | jq -r --arg n "$1" '.tokens[] | select(.name==$n) | .used'; }
used_is() { [ "$(used_of "$1")" = "$(fmt "$2")" ]; }
status_json() { ctl --json status; }
child_pid() { status_json | jq -r --arg n "$1" '.children[] | select(.name==$n) | .pid'; }
gw_url() { echo "http://$(status_json | jq -r .listen.gateway)"; }

# start_hub INI: start hubd in the background, wait for every child.
start_hub() {
    local ini=$1
    "${SWB_WRAP_A[@]}" "$HUBD" -c "$ini" >>"$SWB_TMP/hub.log" 2>&1 &
    HUB_PID=$!
    wait_until $((SWB_WAIT_UP * 4)) all_running || fail "hubd did not start: $(tail -5 "$SWB_TMP/hub.log")"
}
all_running() {
    local up all
    up=$(status_json | jq '[.children[] | select(.state=="running" and .pid>0)] | length') &&
        all=$(status_json | jq '.children | length') && [ -n "$all" ] && [ "$up" = "$all" ]
}

# make_certs DIR: a test CA, the hub's tunnel certificate and an impostor
# certificate (same CA, another key) for the pinning tests.
make_certs() {
    local d=$1
    mkdir -p "$d"
    # One test CA for the provider mock (server.pem) and the hub (hub.pem).
    bash "$(dirname "${BASH_SOURCE[0]}")/../mock/certs.sh" "$d"
    for n in hub other; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$d/$n.key" -out "$d/$n.csr" -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/$n.ext"
        openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/$n.ext" -out "$d/$n.pem" 2>/dev/null
    done
    chmod 600 "$d"/*.key
}
# spki_pin CERT: sha256//BASE64 of the certificate's public key.
spki_pin() {
    echo "sha256//$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)"
}
tun_url() { echo "wss://$(status_json | jq -r .listen.tunnel)/tunnel/connect"; }

# write_agent_ini FILE ID KEYFILE [PIN] [extra INI]: a test-build agent.
write_agent_ini() {
    local f=$1 id=$2 key=$3 pin=${4:-$(spki_pin "$SWB_TMP/certs/hub.pem")}
    cat >"$f" <<INI
[agent]
id = $id
key_file = $key
hub_url = $(tun_url)
hub_pin = $pin
reconnect_min = 200ms
reconnect_max = 2s
heartbeat_interval = 1s
state_dir = $SWB_TMP/agent-$id
[ledger]
report_after = ${SWB_REPORT_AFTER:-1s}
[test]
ca_file = $SWB_TMP/certs/ca.pem
${SWB_AGENT_CHANNELS:-[channel.main]
provider = openai
models = gpt-4o-mini,gpt-4o
key = sk-test-provider-key
rpm = ${SWB_CHANNEL_RPM:-600}
tpm = ${SWB_CHANNEL_TPM:-100000}}
INI
    if [ $# -gt 4 ]; then printf '%s\n' "$5" >>"$f"; fi
    chmod 600 "$f"
}

# hub_with_tunnel: certificates + a hub whose tunnel serves them.
hub_with_tunnel() {
    make_certs "$SWB_TMP/certs"
    SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = ${SWB_HB:-500ms}
heartbeat_timeout = ${SWB_HB_TIMEOUT:-2s}
handshake_timeout = 2s" write_hub_ini "$SWB_TMP/hubd.ini"
    start_hub "$SWB_TMP/hubd.ini"
}

# new_agent NAME: keygen + registration; sets AGENT_ID and AGENT_KEY.
# The registry grade is $SWB_AGENT_GRADE, B when unset.
new_agent() {
    local name=$1
    AGENT_KEY=$SWB_TMP/$name.key
    local pk; pk=$("$AGENTD" keygen -o "$AGENT_KEY")
    AGENT_ID=$(ctl --json agent add "$name" "$pk" --grade "${SWB_AGENT_GRADE:-B}" | jq -r .id)
    [[ $AGENT_ID =~ ^[0-9]+$ ]] || fail "agent add $name failed"
}
agent_online() { ctl --json agents | jq -e --argjson id "$1" '.agents[] | select(.id==$id)' >/dev/null; }

# Every official host agentd's adapters may call (and the later ones'),
# all of which the mock answers (it tells providers apart by Host).
OFFICIAL_HOSTS="api.openai.com api.anthropic.com swb-test.openai.azure.com
api.deepseek.com dashscope.aliyuncs.com dashscope-intl.aliyuncs.com
bedrock-runtime.us-east-1.amazonaws.com generativelanguage.googleapis.com
us-central1-aiplatform.googleapis.com oauth2.googleapis.com"

# connect_to_lines LIST: curl CONNECT_TO entries (comma-separated) as
# agentd.ini lines, one "connect_to = ENTRY" each (a line holds 199 bytes).
connect_to_lines() {
    local e
    tr ',' '\n' <<<"$1" | while read -r e; do
        [ -n "$e" ] && printf 'connect_to = %s\n' "$e"
    done
}

# The stack's channels (../shared/DESIGN.md's table) as agentd.ini text:
# one channel per provider agentd has an adapter for.  The bedrock, gemini
# and vertex channels are kept in stack_channels_later, added by
# start_agent only when this agentd accepts them (agentd -t).
stack_channels() {
    cat <<'INI'
[channel.openai]
provider = openai
models = gpt-4o-mini, gpt-4o, text-embedding-3-small, gpt-image-1, gpt-4o-mini-tts, gpt-4o-transcribe, whisper-1, sora-2, gpt-realtime
key = sk-test-provider-key
[channel.anthropic]
provider = anthropic
models = claude-sonnet-4-5, claude-haiku-4-5
key = sk-ant-test-provider-key
[channel.azure]
provider = azure
models = gpt-4.1
deployments = gpt-4.1:gpt41-deploy
host = swb-test.openai.azure.com
api_version = 2024-10-21
key = azure-test-provider-key
[channel.deepseek]
provider = deepseek
models = deepseek-chat, deepseek-reasoner
key = sk-deepseek-test-key
[channel.qwen]
provider = qwen
models = qwen-plus
host = dashscope.aliyuncs.com
key = sk-qwen-test-key
INI
}
# make_vertex_sa FILE: a service-account JSON for the vertex channel, as
# Google issues them (an RSA key of our own, client_email, token_uri),
# mode 0600; the mock gets the same file (--vertex-sa) and checks the
# JWT assertions' signatures with its public half.
make_vertex_sa() {
    local f=$1 key
    key=$(openssl genrsa 2048 2>/dev/null) || fail "openssl genrsa failed"
    ( umask 077
      jq -n --arg k "$key" '{type: "service_account", project_id: "swb-test",
          private_key_id: "0123456789abcdef0123456789abcdef01234567", private_key: ($k + "\n"),
          client_email: "switchboard-test@swb-test.iam.gserviceaccount.com",
          client_id: "100000000000000000001",
          auth_uri: "https://accounts.google.com/o/oauth2/auth",
          token_uri: "https://oauth2.googleapis.com/token"}' >"$f" )
    chmod 600 "$f"
}

# One channel per line group, separated by blank lines: each is tried
# alone.  The vertex channel's key is the path of its service-account file.
stack_channels_later() {
    cat <<INI
[channel.bedrock]
provider = bedrock
models = anthropic.claude-3-5-haiku-20241022-v1:0, amazon.nova-lite-v1:0
region = us-east-1
access_key_id = AKIDEXAMPLE
secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY

[channel.gemini]
provider = gemini
models = gemini-2.5-flash, gemini-embedding-001
key = gemini-test-provider-key

[channel.vertex]
provider = vertex
models = gemini-2.5-pro
project = swb-test
location = us-central1
key = ${SWB_VERTEX_SA:-$SWB_TMP/vertex-sa.json}
INI
}
# Every model of the stack's table, comma-separated.
STACK_MODELS=gpt-4o-mini,gpt-4o,text-embedding-3-small,gpt-image-1,gpt-4o-mini-tts,gpt-4o-transcribe,whisper-1,sora-2,gpt-realtime,claude-sonnet-4-5,claude-haiku-4-5,gpt-4.1,anthropic.claude-3-5-haiku-20241022-v1:0,amazon.nova-lite-v1:0,gemini-2.5-flash,gemini-embedding-001,gemini-2.5-pro,deepseek-chat,deepseek-reasoner,qwen-plus

# start_mock [ARGS...]: the provider mock on a free port (certs from
# make_certs); sets MOCK_PORT, SWB_CONNECT_TO (api.openai.com to it) and
# MOCK_CONNECT_TO (every official host to it) for agents.
# SWB_MOCK_NODE_ARGS: options for node itself (the bench sizes the mock's
# heap with it), split on spaces.
start_mock() {
    local out=$SWB_TMP/mock.out
    node ${SWB_MOCK_NODE_ARGS:-} "$(dirname "${BASH_SOURCE[0]}")/../mock/openai_mock.mjs" \
        --cert "$SWB_TMP/certs/server.pem" --key "$SWB_TMP/certs/server.key" \
        --port 0 --log "$SWB_TMP/mock.jsonl" "$@" >"$out" 2>"$SWB_TMP/mock.log" &
    MOCK_PID=$!
    SWB_CLEANUP+=("kill $MOCK_PID")
    wait_until 10 grep -q '^listening' "$out" || fail "mock did not start"
    MOCK_PORT=$(awk '/^listening/ {print $2}' "$out")
    SWB_CONNECT_TO="api.openai.com:443:127.0.0.1:$MOCK_PORT"
    local h
    MOCK_CONNECT_TO=
    for h in $OFFICIAL_HOSTS; do MOCK_CONNECT_TO+="${MOCK_CONNECT_TO:+,}$h:443:127.0.0.1:$MOCK_PORT"; done
}

# start_agent NAME: register, configure (channel to the mock) and start one
# agentd; waits until it is online.  Sets AGENT_ID, AG_PID.  With
# SWB_AGENT_GRADE the agent is registered with that grade and its channel
# claims it too (a channel's grade is the lower of claim and registry;
# agentd claims C by default).
start_agent() {
    local name=$1
    new_agent "$name"
    write_agent_ini "$SWB_TMP/$name.ini" "$AGENT_ID" "$AGENT_KEY" "" \
        "${SWB_AGENT_GRADE:+grade = $SWB_AGENT_GRADE}"
    connect_to_lines "$SWB_CONNECT_TO" >"$SWB_TMP/$name.connect_to"
    sed -i "/^\[test\]/r $SWB_TMP/$name.connect_to" "$SWB_TMP/$name.ini"
    sed -i "s|^state_dir = .*|state_dir = $SWB_TMP/state-$name|" "$SWB_TMP/$name.ini"
    # Channels this agentd may not serve yet: each only if it is accepted.
    if [ -n "${SWB_AGENT_LATER:-}" ]; then
        local chunk
        while IFS= read -r -d '' chunk; do
            [ -n "$chunk" ] || continue
            { cat "$SWB_TMP/$name.ini"; printf '%s\n' "$chunk"; } >"$SWB_TMP/$name.try"
            if "$AGENTD" -t -c "$SWB_TMP/$name.try" >/dev/null 2>&1; then
                printf '%s\n' "$chunk" >>"$SWB_TMP/$name.ini"
            fi
        done < <(stack_channels_later | awk 'BEGIN{RS=""; ORS="\0"} {print}')
        rm -f "$SWB_TMP/$name.try"
    fi
    "${SWB_WRAP_A[@]}" "$AGENTD" -c "$SWB_TMP/$name.ini" >"$SWB_TMP/agent-$name.log" 2>&1 &
    AG_PID=$!
    SWB_CLEANUP+=("kill $AG_PID")
    wait_until "$SWB_WAIT_UP" agent_online "$AGENT_ID" || fail "agent $name not online"
    local want; want=$(grep -c '^\[channel\.' "$SWB_TMP/$name.ini")
    has_channel() { [ "$(ctl --json agents | jq --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .channels')" = "$want" ]; }
    wait_until $((SWB_WAIT_UP / 5)) has_channel || fail "agent $name did not announce its $want channel(s)"
}

# ---- agent updates (ota.sh, ota_rollback.sh) -------------------------------
# A hub with a tunnel certificate and a [release] key and directory.
start_release_hub() {
    make_certs "$SWB_TMP/certs"
    SWB_TUNNEL_INI="cert = $SWB_TMP/certs/hub.pem
key = $SWB_TMP/certs/hub.key
heartbeat_interval = 500ms
heartbeat_timeout = 3s" write_hub_ini "$SWB_TMP/hubd.ini" "[release]
key = $SWB_TMP/release.key
dir = $SWB_TMP/releases"
    start_hub "$SWB_TMP/hubd.ini"
    SWB_CLEANUP+=("kill -TERM $HUB_PID")
}

# patch_build SRC DST VERSION [FROM TO]: a copy of agentd SRC whose version
# stamp says VERSION (so the version it reports comes from the running
# file), with FROM replaced by TO (same length) when given.
patch_build() {
    python3 - "$@" <<'PY'
import sys
src, dst, new = sys.argv[1], sys.argv[2], sys.argv[3].encode()
b = bytearray(open(src, 'rb').read())
pre = b'swb-agent-version='
i = b.index(pre) + len(pre)
n = 48 - len(pre)
b[i:i + n] = new + b'\0' * (n - len(new))
if len(sys.argv) > 5:
    old, rep = sys.argv[4].encode(), sys.argv[5].encode()
    assert len(old) == len(rep) and b.count(old) == 1, old
    b = b.replace(old, rep)
open(dst, 'wb').write(b)
PY
    chmod 755 "$2"
}
