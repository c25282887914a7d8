# Shared helpers of the integration tests (sourced).  Each test gets
# SWB_BIN (build dir with hubd/agentd/hubctl) and SWB_TMP (fresh dir).
set -euo pipefail
: "${SWB_BIN:?}" "${SWB_TMP:?}"
HUBD=$SWB_BIN/hubd
HUBCTL=$SWB_BIN/hubctl
AGENTD=$SWB_BIN/agentd
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
status_json() { ctl --json status; }
child_pid() { status_json | jq -r --arg n "$1" '.children[] | select(.name==$n) | .pid'; }
gw_url() { echo "http://$(status_json | jq -r .listen.gateway)"; }

# start_hub INI: start hubd in the background, wait for every child.
start_hub() {
    local ini=$1
    "$HUBD" -c "$ini" >>"$SWB_TMP/hub.log" 2>&1 &
    HUB_PID=$!
    wait_until 10 all_running || fail "hubd did not start: $(tail -5 "$SWB_TMP/hub.log")"
}
all_running() {
    [ "$(status_json | jq '[.children[] | select(.state=="running" and .pid>0)] | length')" = \
      "$(status_json | jq '.children | length')" ]
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
[channel.main]
provider = openai
models = gpt-4o-mini,gpt-4o
key = sk-test-provider-key
rpm = ${SWB_CHANNEL_RPM:-600}
tpm = ${SWB_CHANNEL_TPM:-100000}
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

# start_mock [ARGS...]: the OpenAI mock on a free port (certs from
# make_certs); sets MOCK_PORT and SWB_CONNECT_TO for agents.
start_mock() {
    local out=$SWB_TMP/mock.out
    node "$(dirname "${BASH_SOURCE[0]}")/../mock/openai_mock.mjs" \
        --cert "$SWB_TMP/certs/server.pem" --key "$SWB_TMP/certs/server.key" \
        --port 0 --log "$SWB_TMP/mock.jsonl" "$@" >"$out" 2>"$SWB_TMP/mock.log" &
    MOCK_PID=$!
    SWB_CLEANUP+=("kill $MOCK_PID")
    wait_until 10 grep -q '^listening' "$out" || fail "mock did not start"
    MOCK_PORT=$(awk '/^listening/ {print $2}' "$out")
    SWB_CONNECT_TO="api.openai.com:443:127.0.0.1:$MOCK_PORT"
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
    sed -i "s|^\[test\]|[test]\nconnect_to = $SWB_CONNECT_TO|" "$SWB_TMP/$name.ini"
    sed -i "s|^state_dir = .*|state_dir = $SWB_TMP/state-$name|" "$SWB_TMP/$name.ini"
    "$AGENTD" -c "$SWB_TMP/$name.ini" >"$SWB_TMP/agent-$name.log" 2>&1 &
    AG_PID=$!
    SWB_CLEANUP+=("kill $AG_PID")
    wait_until 5 agent_online "$AGENT_ID" || fail "agent $name not online"
    has_channel() { [ "$(ctl --json agents | jq --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .channels')" = 1 ]; }
    wait_until 3 has_channel || fail "agent $name announced no channel"
}
