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
trap on_exit EXIT

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
[tunnel]
listen = 127.0.0.1:0
${SWB_TUNNEL_INI:-}
[store]
url = sqlite:$SWB_TMP/hubd.db
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
