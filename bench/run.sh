#!/usr/bin/env bash
# bench/run.sh (`make bench`): the user → hub → tunnel → agent → provider
# path against two references, side by side in one run on this machine:
#   mock   the OpenAI mock (tests/mock/openai_mock.mjs) called directly, TLS
#   nginx  nginx as a plain reverse proxy in front of that same mock
#          (plain HTTP on loopback → proxy_pass https, keep-alive upstream,
#          proxy_buffering off); a foreground nginx with its own temp dir
#   hub    tests/stack: hubd (2 gateway workers, log_level warn) → tunnel
#          → agentd → that same mock; the fast test build (build/test)
# Scenarios (closed loops of keep-alive clients):
#   non-streaming chat completion (mock: 1 chunk, no delay) at 1, 32 and
#   256 clients, driven by wrk (bench/chat.lua), with every process's CPU
#   time per request (/proc/PID/stat); the same request paced
#   (bench/load.mjs --rate: BENCH_PACED_RATE a second, an open loop), what
#   a lightly loaded proxy costs a request; streaming (bench/load.mjs; 20 chunks
#   x 20 ms, asked for with a mock directive in the prompt, so all three
#   paths get the same request) at 1 and 32; perf profiles of each hub
#   process and agentd; each path's critical path at c=1, hop by hop
#   (bench/critpath.mjs, from perf's scheduler record); the tunnel's
#   memory per idle agent (the swarm of
#   tests/integration/tunnel_scale.sh); BENCH_STREAMS (10,000) concurrent
#   slow streams (bench/load.mjs --mode hold: one connection each, opened
#   over a ramp) on every path, with each process's memory (PSS from
#   /proc/PID/smaps_rollup) before, at the plateau (all open) and after,
#   and the client's own CPU.  Writes the tables to bench/README.md
#   (BENCH_OUT) and prints them.
# Knobs: BENCH_WARMUP / BENCH_DURATION (non-streaming, s; default 3 / 10),
# BENCH_ROUNDS (default 3: each scenario's paths, streaming ones too, run
# in that many interleaved rounds, each starting one path later (mock,
# nginx, hub, hub-quota; then nginx, hub, hub-quota, mock; ...); the report
# gives each path's median, the machine's speed drifting by a third from
# one row to the next on this 2-core host, and a c=1 streaming row's p50
# resting on about 20 streams),
# BENCH_STREAM_WARMUP / BENCH_STREAM_DURATION (default 1 / 8),
# BENCH_PACED_RATE (default 30 requests a second, 0 skips the paced row)
# and BENCH_PACED_DURATION (s, default 15), BENCH_OUT,
# BENCH_KEEP=1 keeps the temp dirs (logs) even on success, BENCH_NO_PERF=1
# skips the profiles and the critical paths (BENCH_CRIT_SECONDS: each
# path's record, default 2), BENCH_SCALE_AGENTS=N (default 300, 0 skips)
# the swarm,
# BENCH_STREAMS=N (default 10000, 0 skips) the concurrent slow streams,
# BENCH_STREAMS_DELAY (ms between a stream's events, default 1000: at 500,
# 20,000 events a second, the machine's two cores were saturated by the
# mock and the client alone, and the mock and nginx paths failed streams
# too, so the row no longer measured the proxy), BENCH_STREAMS_RAMP (s, default N/200,
# at least 5: every stream is a fresh TLS connection to the mock, one Node
# thread, which at 500 new connections a second on this machine queued them
# past its accept backlog (30 s TTFBs, resets, 502s on the nginx path too)),
# BENCH_STREAMS_CHUNKS (default: enough for each stream to outlive the ramp
# by 15 s, so all N are open together for ~15 s),
# BENCH_STREAMS_PATHS (default "mock nginx hub"); each path's gaps over
# 1150 ms go to gaps-PATH.txt in the temp dir (BENCH_KEEP=1 keeps it).
# BENCH_HALT_POLL_NS sets a virtual machine's guest halt polling for the
# run (restored at the end; see B_IDLE below).
# BENCH_MOCK_OLD_MB (default 2048; 0: V8's own) is the mock's initial old
# generation (node --initial-old-space-size).  BENCH_ONLY=LIST (comma or
# space separated: plain, paced, stream, perf, scale, streams10k) runs only those
# rows; the report then goes to the temp dir (kept), not bench/README.md,
# unless BENCH_OUT is set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

WARMUP=${BENCH_WARMUP:-3}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
[[ $ROUNDS =~ ^[1-9]$ ]] || { echo "bench: BENCH_ROUNDS: 1 to 9" >&2; exit 2; }
S_WARMUP=${BENCH_STREAM_WARMUP:-1}
S_DURATION=${BENCH_STREAM_DURATION:-8}
P_RATE=${BENCH_PACED_RATE:-30}
P_DURATION=${BENCH_PACED_DURATION:-15}
ONLY=${BENCH_ONLY:-}
if [ -n "$ONLY" ]; then
    for r in ${ONLY//,/ }; do
        case $r in plain|paced|stream|perf|scale|streams10k) ;; *) echo "bench: BENCH_ONLY: unknown row $r" >&2; exit 2 ;; esac
    done
fi
# want ROW: is this row to run (BENCH_ONLY unset, or naming it)?
want() { [ -z "$ONLY" ] || [[ " ${ONLY//,/ } " == *" $1 "* ]]; }
OUT=${BENCH_OUT:-$top/bench/README.md}
[ -z "$ONLY" ] || [ -n "${BENCH_OUT:-}" ] || OUT=
NSTREAMS=${BENCH_STREAMS:-10000}
H_DELAY=${BENCH_STREAMS_DELAY:-1000}
H_RAMP=${BENCH_STREAMS_RAMP:-$(( NSTREAMS / 200 > 5 ? NSTREAMS / 200 : 5 ))}
H_CHUNKS=${BENCH_STREAMS_CHUNKS:-$(( ((H_RAMP + 15) * 1000 + H_DELAY - 1) / (H_DELAY > 0 ? H_DELAY : 1) ))}
H_PATHS=${BENCH_STREAMS_PATHS:-mock nginx hub}
MOCK_OLD_MB=${BENCH_MOCK_OLD_MB:-2048}
[[ $MOCK_OLD_MB =~ ^[0-9]+$ ]] || { echo "bench: BENCH_MOCK_OLD_MB: a number of MB" >&2; exit 2; }
STREAM_CHUNKS=20
STREAM_DELAY=20
PROMPT='Say hello.'
STREAM_PROMPT="Say hello. [mock chunks=$STREAM_CHUNKS delay=$STREAM_DELAY]"

say() { echo "bench: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

for c in node jq curl make openssl wrk; do
    command -v "$c" >/dev/null || die "$c not found (make deps)"
done
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } ||
    die "nginx not found (make deps installs nginx-light)"

# ---------------------------------------------------------------- clean-up
work=$(mktemp -d /tmp/swb-bench.XXXXXX)
chmod 755 "$work"
keep_work=
if [ -z "$OUT" ]; then OUT=$work/README.md; keep_work=1; fi
stack_dir=$work/stack
ngx_dir=$work/nginx
NGX_PID=
ok=0
HALT_POLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns
HALT_POLL_WAS=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$HALT_POLL_WAS" ] || echo "$HALT_POLL_WAS" >"$HALT_POLL" 2>/dev/null || true
    if [ -n "$NGX_PID" ] && kill -0 "$NGX_PID" 2>/dev/null; then
        kill -TERM "$NGX_PID" 2>/dev/null || true     # nginx master stops its workers
        for _ in $(seq 50); do kill -0 "$NGX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGX_PID" 2>/dev/null || true
    fi
    if [ -d "$stack_dir" ]; then
        SWB_DIR=$stack_dir tests/stack down >/dev/null 2>&1 || true
        # `up` may have failed before writing a pid file: whatever still runs
        # from this run's own (unique) stack directory is ours; end it by id.
        local pids
        pids=$(pgrep -f -- "$stack_dir/" 2>/dev/null || true)
        for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
        sleep 0.3
        for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    fi
    if [ "$ok" = 1 ] && [ -z "${BENCH_KEEP:-}" ] && [ -z "$keep_work" ]; then
        rm -rf "$work"
    else
        say "logs kept in $work (stack/hub.log, stack/agent-stack.log, stack/mock.log, nginx/error.log)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# BENCH_HALT_POLL_NS: the guest's halt polling for this run only (a virtual
# machine's cpuidle-haltpoll, root), given back at the end; the report's
# header says which was measured.
if [ -n "${BENCH_HALT_POLL_NS:-}" ]; then
    [[ $BENCH_HALT_POLL_NS =~ ^[0-9]+$ ]] || die "BENCH_HALT_POLL_NS: a number of ns"
    [ -w "$HALT_POLL" ] || die "BENCH_HALT_POLL_NS: $HALT_POLL is not writable here"
    HALT_POLL_WAS=$(cat "$HALT_POLL")
    echo "$BENCH_HALT_POLL_NS" >"$HALT_POLL" || die "BENCH_HALT_POLL_NS: cannot write $HALT_POLL"
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Every process started from here inherits it (hubd raises its own to the
# hard limit anyway); nginx's workers get it by worker_rlimit_nofile.  The
# slow-streams row needs about N + 100 descriptors in the client, the mock,
# agentd and (nginx: twice N) an nginx worker.
NOFILE=$(ulimit -n)

# ---------------------------------------------------------------- build
say "building the fast test build (make test-build)"
make -s test-build >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "make test-build failed"; }
BIN=$top/build/test
for b in hubd agentd hubctl; do [ -x "$BIN/$b" ] || die "$BIN/$b missing after make test-build"; done

# ---------------------------------------------------------------- stack
# One mock for all three paths: non-streaming replies are 1 chunk with no
# delay (command line); streams ask for more with a directive in the prompt.
# --log= (empty) turns the mock's synchronous request log off: it would
# weigh on every path and fill /tmp at thousands of requests per second.
# The mock's old generation starts at MOCK_OLD_MB: a Node heap grown from
# V8's small default collects its old generation every ~3 s while 10,000
# streams ramp up, each collection a burst of garbage-collector threads
# that, on two cores shared with the hub, held every stream's next event
# for up to ~350 ms (most of the hub row's chunk-gap tail; see the 10,000
# streams' paragraph of the report).  The same mock serves every path.
say "starting the stack (mock + hubd + agentd)"
SWB_DIR=$stack_dir SWB_BIN=$BIN SWB_LOG_LEVEL=warn SWB_WORKERS=2 SWB_CHANNEL_RPM=0 SWB_CHANNEL_TPM=0 \
    SWB_MOCK_ARGS="--chunks 1 --delay-ms 0 --log=" SWB_MOCK_NODE_ARGS="--initial-old-space-size=$MOCK_OLD_MB" \
    tests/stack up >"$work/stack.env" 2>"$work/stack.err" ||
    { cat "$work/stack.err" >&2; die "tests/stack up failed"; }
SWB_URL=$(sed -n 's/^SWB_URL=//p' "$work/stack.env")
SWB_TOKEN=$(sed -n 's/^SWB_TOKEN=//p' "$work/stack.env")
if [ -z "$SWB_URL" ] || [ -z "$SWB_TOKEN" ]; then die "tests/stack up printed no SWB_URL/SWB_TOKEN"; fi
MOCK_PORT=$(awk '/^listening/ {print $2}' "$stack_dir/mock.out")
[ -n "$MOCK_PORT" ] || die "no mock port in $stack_dir/mock.out"
CA=$stack_dir/certs/ca.pem
# The path "hub-quota": the hub path with a token that has a quota (far
# more than the bench spends), whose requests wait for billing's
# reservation before the relay; SWB_TOKEN has none, and its reservations
# are not waited for (gateway/gw_token.c).
SWB_QTOKEN=$(SWB_ADMIN=$stack_dir/run/hubd.sock "$BIN/hubctl" token create --name bench-quota \
    --quota 1000000000) || die "hubctl token create --quota failed"

# ---------------------------------------------------------------- nginx
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
start_nginx() {
    mkdir -p "$ngx_dir/tmp"
    chmod 755 "$ngx_dir" "$ngx_dir/tmp"
    NGX_PORT=$(free_port)
    cat >"$ngx_dir/nginx.conf" <<NGX
daemon off;
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid $ngx_dir/nginx.pid;
error_log $ngx_dir/error.log warn;
events { worker_connections $((NOFILE - 64)); }
http {
    access_log off;
    client_body_temp_path $ngx_dir/tmp/body;
    proxy_temp_path $ngx_dir/tmp/proxy;
    fastcgi_temp_path $ngx_dir/tmp/fastcgi;
    uwsgi_temp_path $ngx_dir/tmp/uwsgi;
    scgi_temp_path $ngx_dir/tmp/scgi;
    keepalive_requests 1000000;
    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 512;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location / {
            proxy_pass https://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host api.openai.com;
            proxy_set_header Authorization "Bearer sk-test-provider-key";
            proxy_buffering off;
            proxy_ssl_server_name on;
            proxy_ssl_name api.openai.com;
            proxy_ssl_trusted_certificate $CA;
            proxy_ssl_verify on;
            proxy_ssl_session_reuse on;
            proxy_read_timeout 60s;
        }
    }
}
NGX
    "$NGINX" -p "$ngx_dir" -c "$ngx_dir/nginx.conf" -e "$ngx_dir/error.log" \
        >"$ngx_dir/stdout.log" 2>&1 &
    NGX_PID=$!
    for _ in $(seq 50); do
        curl -sf -o /dev/null "http://127.0.0.1:$NGX_PORT/v1/models" && return 0
        kill -0 "$NGX_PID" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}
say "starting nginx"
started=0
for _ in 1 2 3; do                     # a port race with another process: retry
    if start_nginx; then started=1; break; fi
    kill -TERM "$NGX_PID" 2>/dev/null || true; wait "$NGX_PID" 2>/dev/null || true; NGX_PID=
done
[ "$started" = 1 ] || { cat "$ngx_dir/error.log" "$ngx_dir/stdout.log" >&2 2>/dev/null || true; die "nginx did not start"; }

# ---------------------------------------------------------------- runs
results=$work/results.jsonl
: >"$results"
hub_log_start=$(wc -l <"$stack_dir/hub.log")
agent_log_start=$(wc -l <"$stack_dir/agent-stack.log")
mock_log_start=$(wc -l <"$stack_dir/mock.log")
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')

# Processes whose CPU time is counted per request, as "NAME PID" lines:
# every hub child (by its name in `hubctl status`), the master, agentd,
# nginx's workers, the mock.
procs() {
    local hub ag
    hub=$(cat "$stack_dir/hub.pid"); ag=$(cat "$stack_dir/agent.pid")
    echo "hub-master $hub"
    SWB_ADMIN=$stack_dir/run/hubd.sock "$BIN/hubctl" --json status |
        jq -r '.children[] | "hub-\(.name | sub("#"; "")) \(.pid)"'
    echo "agentd $ag"
    local i=0
    for w in $(pgrep -P "$NGX_PID"); do echo "nginx-worker$i $w"; i=$((i + 1)); done
    echo "mock $(cat "$stack_dir/mock.pid")"
}
# "NAME PID TICKS" for each process: utime + stime from /proc/PID/stat
# (fields 14 and 15, counted after the command name's closing paren).
cpu_snap() {
    while read -r name pid; do
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        echo "$name $pid ${t:-0}"
    done <"$work/procs"
}
HZ=$(getconf CLK_TCK)
# cpu_json: each process's CPU µs between the snapshots cpu0 and cpu1,
# as {"NAME":µs,...} in cpu.json.
cpu_json() {
    paste -d' ' "$work/cpu0" "$work/cpu1" |
        awk -v hz="$HZ" '{printf "%s\"%s\":%.0f", (NR > 1 ? "," : "{"), $1, ($6 - $3) * 1e6 / hz} END {print "}"}' \
        >"$work/cpu.json"
}

# target PATH: where a client of PATH goes, set in the caller's url, args
# (bench/load.mjs's credentials), auth and hdr (wrk's Authorization and
# headers), which the caller declares local.
target() {
    args=() auth= hdr=()
    case $1 in
        mock)  url="https://127.0.0.1:$MOCK_PORT/v1/chat/completions"
               args=(--token sk-test-provider-key --ca "$CA" --servername api.openai.com)
               auth="Bearer sk-test-provider-key"; hdr=(-H "Host: api.openai.com") ;;
        nginx) url="http://127.0.0.1:$NGX_PORT/v1/chat/completions" ;;
        hub)   url="$SWB_URL/chat/completions"; args=(--token "$SWB_TOKEN")
               auth="Bearer $SWB_TOKEN" ;;
        hub-quota) url="$SWB_URL/chat/completions"; args=(--token "$SWB_QTOKEN")
               auth="Bearer $SWB_QTOKEN" ;;
    esac
}

# run SCENARIO PATH MODE CONCURRENCY [ROUND]
run() {
    local scen=$1 path=$2 mode=$3 conc=$4 round=${5:-1} url args auth hdr warm dur content
    target "$path"
    if [ "$mode" = stream ]; then warm=$S_WARMUP dur=$S_DURATION content=$STREAM_PROMPT
    elif [ "$mode" = paced ]; then warm=$WARMUP dur=$P_DURATION content=$PROMPT
    else warm=$WARMUP dur=$DURATION content=$PROMPT; fi
    say "$scen / $path (${warm}s warm-up + ${dur}s${5:+, round $round of $ROUNDS})"
    if [ "$mode" = plain ]; then
        run_wrk "$scen" "$path" "$conc" "$warm" "$dur" "$round"
        return
    fi
    if [ "$mode" = paced ]; then
        run_paced "$scen" "$path" "$conc" "$warm" "$round"
        return
    fi
    node bench/load.mjs --url "$url" "${args[@]}" --mode "$mode" --concurrency "$conc" \
        --warmup "$warm" --duration "$dur" --content "$content" >"$work/one.json" ||
        die "load generator failed ($scen / $path)"
    jq -c --arg s "$scen" --arg p "$path" --argjson round "$round" '. + {scenario: $s, path: $p, round: $round}' \
        "$work/one.json" | tee -a "$results" >&2
}

# The machine's TCP persist-timer probes and zero-window announcements
# (TcpExt TCPWinProbe, TCPToZeroWindowAdv): a connection stuck on a full
# receive window waits about 200 ms for a probe (the c=32 stall the tunnel's
# 16 KB segments fixed); "PROBES ZEROWIN".
tcp_snap() {
    awk '/^TcpExt:/ { if (!h) { for (i = 2; i <= NF; i++) n[$i] = i; h = 1 }
        else print $n["TCPWinProbe"] + 0, $n["TCPToZeroWindowAdv"] + 0 }' /proc/net/netstat
}

# Non-streaming rows: wrk (C, bench/chat.lua builds the POST), a warm-up
# run then the measured one, with every process's CPU time read before and
# after it: CPU per request = ticks / CLK_TCK / requests.
run_wrk() {
    local scen=$1 path=$2 conc=$3 warm=$4 dur=$5 round=$6 url args auth hdr thr=1
    target "$path"
    [ "$conc" -ge 32 ] && thr=2
    BENCH_AUTH=$auth wrk -t1 -c"$conc" -d"${warm}s" "${hdr[@]}" -s bench/chat.lua "$url" >/dev/null 2>&1 || true
    cpu_snap >"$work/cpu0"
    tcp_snap >"$work/tcp0"
    BENCH_AUTH=$auth wrk -t"$thr" -c"$conc" -d"${dur}s" --latency --timeout 10s "${hdr[@]}" \
        -s bench/chat.lua "$url" >"$work/wrk.out" 2>&1 || die "wrk failed ($scen / $path): $(tail -3 "$work/wrk.out")"
    cpu_snap >"$work/cpu1"
    tcp_snap >"$work/tcp1"
    tail -1 "$work/wrk.out" | jq -e . >/dev/null 2>&1 || die "wrk printed no result ($scen / $path): $(tail -3 "$work/wrk.out")"
    cpu_json
    tail -1 "$work/wrk.out" | jq -c --arg s "$scen" --arg p "$path" --argjson c "$conc" \
        --argjson round "$round" \
        --slurpfile cpu "$work/cpu.json" \
        --argjson tcp "$(paste -d' ' "$work/tcp0" "$work/tcp1" |
            awk '{printf "{\"win_probes\":%d,\"zero_window\":%d}", $3 - $1, $4 - $2}')" \
        '{mode: "plain", scenario: $s, path: $p, concurrency: $c, round: $round, ok: (.requests - .errors_status),
          errors: (.errors_status + .errors_connect + .errors_read + .errors_write + .errors_timeout),
          error_kinds: {status: .errors_status, connect: .errors_connect, read: .errors_read,
                        write: .errors_write, timeout: .errors_timeout},
          rps: (.requests / (.duration_us / 1e6)), p50_ms: (.p50_us / 1000), p99_ms: (.p99_us / 1000),
          requests: .requests, cpu_us: $cpu[0], tcp: $tcp}' | tee -a "$results" >&2
}

# Paced rows: bench/load.mjs starts P_RATE requests a second (an open
# loop: each request nearly alone, as on a lightly loaded hub, where each
# is its own turn of every process and a batch of billing's and the
# agent's holds few), a warm-up run then the measured one, CPU read
# around it as for wrk's rows; the row is "plain" in the report.
run_paced() {
    local scen=$1 path=$2 rate=$3 warm=$4 round=$5 url args auth hdr
    target "$path"
    node bench/load.mjs --url "$url" "${args[@]}" --mode plain --rate "$rate" --concurrency 8 \
        --warmup 0 --duration "$warm" --content "$PROMPT" >/dev/null || die "load generator failed ($scen / $path)"
    cpu_snap >"$work/cpu0"
    node bench/load.mjs --url "$url" "${args[@]}" --mode plain --rate "$rate" --concurrency 8 \
        --warmup 0 --duration "$P_DURATION" --content "$PROMPT" >"$work/one.json" ||
        die "load generator failed ($scen / $path)"
    cpu_snap >"$work/cpu1"
    cpu_json
    jq -c --arg s "$scen" --arg p "$path" --argjson round "$round" --slurpfile cpu "$work/cpu.json" \
        '. + {mode: "plain", scenario: $s, path: $p, round: $round, requests: (.ok + .errors), cpu_us: $cpu[0]}' \
        "$work/one.json" | tee -a "$results" >&2
}

# in_rounds SCENARIO MODE CONCURRENCY "PATHS": ROUNDS rounds of every path;
# each round starts one path later, so no path always follows the same one.
in_rounds() {
    local scen=$1 mode=$2 conc=$3 order r i
    read -ra order <<<"$4"
    for r in $(seq "$ROUNDS"); do
        for ((i = 0; i < ${#order[@]}; i++)); do
            run "$scen" "${order[(i + r - 1) % ${#order[@]}]}" "$mode" "$conc" "$r"
        done
    done
}

procs >"$work/procs"
if want plain; then
    for c in 1 32 256; do
        paths="mock nginx hub"
        [ "$c" -le 32 ] && paths="$paths hub-quota"
        in_rounds "non-streaming, c=$c" plain "$c" "$paths"
    done
fi
if want paced && [ "$P_RATE" -gt 0 ]; then
    in_rounds "non-streaming, $P_RATE a second" paced "$P_RATE" "mock nginx hub"
fi
if want stream; then
    for c in 1 32; do in_rounds "streaming, c=$c" stream "$c" "mock nginx hub"; done
fi

# ---------------------------------------------------------------- 10k streams
# "NAME PID PSS_KB RSS_KB" for each process (PSS from smaps_rollup: pages
# shared by the hub's forked children counted once in the sum).
mem_snap() {
    while read -r name pid; do
        awk -v n="$name" -v p="$pid" '/^Pss:/ {pss = $2} END {printf "%s %s %d ", n, p, pss}' \
            "/proc/$pid/smaps_rollup" 2>/dev/null || printf '%s %s 0 ' "$name" "$pid"
        awk '/^VmRSS:/ {r = $2} END {print r + 0}' "/proc/$pid/status" 2>/dev/null || echo 0
    done <"$work/procs"
}
# restart_mock [ARG]: a fresh mock on the same port with the same arguments
# (and ARG, once), so each path's row starts from a mock that has served
# nothing (a Node mock that held 10,000 streams keeps hundreds of MB and a
# slower heap).
restart_mock() {
    local old args=() new i
    old=$(cat "$stack_dir/mock.pid")
    mapfile -d '' args <"/proc/$old/cmdline" || die "no mock process $old"
    for i in "${!args[@]}"; do
        [ "${args[$i]}" = --port ] && args[i+1]=$MOCK_PORT
    done
    if [ -n "${1:-}" ] && ! printf '%s\n' "${args[@]}" | grep -qxF -- "$1"; then
        args+=("$1")
    fi
    kill "$old"
    for i in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$old" 2>/dev/null || true
    "${args[@]}" >"$stack_dir/mock.out" 2>>"$stack_dir/mock.log" &
    new=$!
    echo "$new" >"$stack_dir/mock.pid"
    for i in $(seq 100); do grep -q '^listening' "$stack_dir/mock.out" && break; sleep 0.1; done
    grep -q '^listening' "$stack_dir/mock.out" || die "the mock did not restart"
    procs >"$work/procs"
}
# The machine's stolen time so far (ticks: /proc/stat's steal, what the
# host ran instead of this virtual machine's CPUs).
steal_snap() { awk '$1 == "cpu" {print $9 + 0}' /proc/stat; }
# streams_row PATH: BENCH_STREAMS concurrent slow streams on one path.
# Memory of every process before (nothing open), at the plateau (every
# stream started and answered: load.mjs writes the plateau file, then is
# told by SIGUSR2 how long the sample took, so the count it reports as
# open_at_mark is the one still open after it) and after (all ended).
streams_row() {
    local path=$1 url args auth hdr lp t steal0 steal1
    target "$path"
    say "$NSTREAMS concurrent slow streams / $path ($H_CHUNKS chunks x $H_DELAY ms, ${H_RAMP}s ramp)"
    restart_mock --stamp	# each chunk says when the mock made it
    rm -f "$work/plateau"
    sleep 2
    mem_snap >"$work/mem0"
    cpu_snap >"$work/cpu0"
    steal0=$(steal_snap)
    node bench/load.mjs --mode hold --url "$url" "${args[@]}" --concurrency "$NSTREAMS" \
        --ramp "$H_RAMP" --timeout $(( H_CHUNKS * H_DELAY / 1000 + H_RAMP + 60 )) \
        --content "Say hello. [mock chunks=$H_CHUNKS delay=$H_DELAY]" \
        --plateau-file "$work/plateau" --gap-log "$work/gaps-$path.txt" \
        >"$work/one.json" 2>"$work/load.err" &
    lp=$!
    while [ ! -s "$work/plateau" ] && kill -0 "$lp" 2>/dev/null; do sleep 0.1; done
    if [ -s "$work/plateau" ]; then
        mem_snap >"$work/mem1"
        kill -USR2 "$lp" 2>/dev/null || true
    else
        cp "$work/mem0" "$work/mem1"
    fi
    wait "$lp" || die "load generator failed ($NSTREAMS streams / $path): $(tail -3 "$work/load.err")"
    cpu_snap >"$work/cpu1"
    steal1=$(steal_snap)
    sleep 2
    mem_snap >"$work/mem2"
    paste -d' ' "$work/mem0" "$work/mem1" "$work/mem2" |
        awk '{printf "%s\"%s\":{\"pss0\":%d,\"pss1\":%d,\"pss2\":%d,\"rss0\":%d,\"rss1\":%d,\"rss2\":%d}",
              (NR > 1 ? "," : "{"), $1, $3, $7, $11, $4, $8, $12} END {print "}"}' >"$work/mem.json"
    cpu_json
    jq -c --arg p "$path" --argjson nofile "$NOFILE" --argjson chunks "$H_CHUNKS" --argjson delay "$H_DELAY" \
        --slurpfile mem "$work/mem.json" --slurpfile cpu "$work/cpu.json" \
        --argjson steal "$(( (steal1 - steal0) * 1000 / HZ ))" \
        '. + {scenario: "streams10k", path: $p, nofile: $nofile, chunks: $chunks, delay_ms: $delay,
              mem_kb: $mem[0], cpu_us: $cpu[0], steal_ms: $steal}' "$work/one.json" | tee -a "$results" >&2
}
if want streams10k && [ "$NSTREAMS" -gt 0 ]; then
    [ "$NOFILE" -ge $(( NSTREAMS + 200 )) ] ||
        say "warning: open file limit $NOFILE < $NSTREAMS streams + 200: expect EMFILE errors (reported as such)"
    for p in $H_PATHS; do streams_row "$p"; done
fi

# Profiles: each hub process, agentd and an nginx worker under perf at
# c=32 (hub) — the top symbols go to the report.
: >"$work/profiles.txt"
if want perf && [ -z "${BENCH_NO_PERF:-}" ] && command -v perf >/dev/null; then
    say "profiling (perf record, ${PERF_SECONDS:-5}s at c=32)"
    BENCH_AUTH="Bearer $SWB_TOKEN" wrk -t1 -c32 -d"$(( ${PERF_SECONDS:-5} + 2 ))s" -s bench/chat.lua \
        "$SWB_URL/chat/completions" >/dev/null 2>&1 &
    wrk_pid=$!
    sleep 1
    pp=()
    while read -r name pid; do
        case $name in hub-master|hub-moderation|mock|nginx-worker*) continue ;; esac
        perf record -F 499 -g -p "$pid" -o "$work/perf.$name.data" -- sleep "${PERF_SECONDS:-5}" \
            >/dev/null 2>&1 & pp+=($!)
    done <"$work/procs"
    wait "${pp[@]}" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
    while read -r name pid; do
        [ -f "$work/perf.$name.data" ] || continue
        {
            echo "== $name (self time, top 8)"
            perf report -i "$work/perf.$name.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
                grep '%' | head -8 | sed -E 's/ +/ /g; s/^ //' || true
        } >>"$work/profiles.txt"
    done <"$work/procs"
fi

# The critical path at c=1: each path's hops in turn, from the scheduler's
# record of who woke whom (bench/critpath.mjs), a short wrk run each.
: >"$work/critpath.jsonl"
if want perf && [ -z "${BENCH_NO_PERF:-}" ] && command -v perf >/dev/null; then
    say "critical path at c=1 (perf sched, ${BENCH_CRIT_SECONDS:-2}s a path)"
    pids_of() { awk -v re="$1" '$1 ~ re {printf "%s%s", (n++ ? "," : ""), $2}' "$work/procs"; }
    for path in mock nginx hub; do
        target "$path"
        BENCH_AUTH=$auth wrk -t1 -c1 -d"$(( ${BENCH_CRIT_SECONDS:-2} + 3 ))s" "${hdr[@]}" -s bench/chat.lua \
            "$url" >/dev/null 2>&1 &
        wrk_pid=$!
        sleep 1.5
        perf sched record -a -o "$work/sched.data" -- sleep "${BENCH_CRIT_SECONDS:-2}" >/dev/null 2>&1 || true
        wait "$wrk_pid" 2>/dev/null || true
        m=$(pids_of '^mock$')
        case $path in
            mock)  spec="client=$wrk_pid;mock=$m;client" ;;
            nginx) spec="client=$wrk_pid;nginx=$(pids_of '^nginx-worker');mock=$m;nginx;client" ;;
            hub)   spec="client=$wrk_pid;gateway=$(pids_of '^hub-gateway');tunnel=$(pids_of '^hub-tunnel$')"
                   spec="$spec;agentd=$(pids_of '^agentd$');mock=$m;agentd;tunnel;gateway;client" ;;
        esac
        [ -s "$work/sched.data" ] &&
            perf sched timehist -w -i "$work/sched.data" 2>/dev/null |
            node bench/critpath.mjs --path "$spec" | jq -c --arg p "$path" '. + {path: $p}' \
                >>"$work/critpath.jsonl" || say "critical path of $path: not measured"
        rm -f "$work/sched.data"
    done
fi

# Memory: the hub's tunnel per idle connected agent (the swarm of
# tests/integration/tunnel_scale.sh), BENCH_SCALE_AGENTS of them (0: skip).
SCALE=${BENCH_SCALE_AGENTS:-300}
want scale || SCALE=0
echo '' >"$work/scale.txt"
if [ "$SCALE" -gt 0 ]; then
    say "memory: $SCALE idle agents (tunnel_scale)"
    if SWB_ONLY=tunnel_scale SWB_SCALE_AGENTS=$SCALE SWB_SCALE_OUT=$work/scale.txt \
        tests/run.sh build/test integration >"$work/scale.log" 2>&1; then :; else
        say "tunnel_scale failed (see $work/scale.log)"; echo '' >"$work/scale.txt"
    fi
fi
export B_SCALE_AGENTS=$SCALE B_SCALE_BYTES=$(tr -d '\n' <"$work/scale.txt")
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- logs
# Lines the hub (warn and above), agentd and the mock logged during the runs,
# grouped by message (timestamps, pids and request ids dropped).
group() { sed -E 's/^[^ ]+ //; s/\[([a-z]+)(#[0-9]+)?:[0-9]+\]/[\1\2]/; s/req=[0-9a-f]+ //' | sort | uniq -c | sort -rn | sed -n 1,12p; }
tail -n +"$((hub_log_start + 1))" "$stack_dir/hub.log" | group >"$work/hub.groups"
tail -n +"$((agent_log_start + 1))" "$stack_dir/agent-stack.log" | group >"$work/agent.groups"
tail -n +"$((mock_log_start + 1))" "$stack_dir/mock.log" | group >"$work/mock.groups"
grep -vE '^\s*$' "$ngx_dir/error.log" 2>/dev/null | sed -E 's/^[0-9\/]+ [0-9:]+ //; s/\*[0-9]+ //; s/client: .*//' |
    sort | uniq -c | sort -rn | sed -n 1,12p >"$work/nginx.groups" || true

# ---------------------------------------------------------------- report
cpu=$(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)
B_NPROC=$(nproc); B_KERNEL=$(uname -r); B_DEBIAN=$(cat /etc/debian_version 2>/dev/null || echo '?')
# How an idle CPU sleeps: every wake-up of a process whose CPU went idle
# pays for it, and a request on the hub path has about eight of them.  A
# virtual machine's guest halt polling at 0 ns halts at once (each wake-up
# then costs tens of µs); Linux's default polls up to 200 µs first.
B_IDLE=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo '?')
[ -r "$HALT_POLL" ] && B_IDLE="$B_IDLE, guest halt polling $(cat "$HALT_POLL") ns"
B_NODE=$(node --version); B_NGINX=$("$NGINX" -v 2>&1 | sed 's/.*version: nginx\///')
# The build's commit, "-dirty" when a tracked file differs from it — the
# last run's report, which every run rewrites, does not count.
B_COMMIT=$(git describe --always 2>/dev/null || echo '?')
git diff --quiet HEAD -- . ':(exclude)bench/README.md' 2>/dev/null || B_COMMIT="$B_COMMIT-dirty"
export B_DATE=$started_at B_CPU=$cpu B_MEM=$mem B_NPROC B_KERNEL B_DEBIAN B_NODE B_NGINX B_COMMIT B_IDLE \
    B_LOAD_START=$loadavg_start B_LOAD_END=$loadavg_end \
    B_WARMUP=$WARMUP B_DURATION=$DURATION B_SWARMUP=$S_WARMUP B_SDURATION=$S_DURATION \
    B_PRATE=$P_RATE B_PDURATION=$P_DURATION \
    B_CHUNKS=$STREAM_CHUNKS B_DELAY=$STREAM_DELAY B_ROUNDS=$ROUNDS B_MOCK_OLD_MB=$MOCK_OLD_MB \
    B_CRIT_SECONDS=${BENCH_CRIT_SECONDS:-2}
node - "$results" "$work" "$OUT" <<'JS'
const fs = require('node:fs');
const [results, work, out] = process.argv.slice(2);
const E = process.env;
const all = fs.readFileSync(results, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
// CPU per request of the proxy processes: the hub's children + agentd on
// the hub path, nginx's workers on the nginx path (the mock's own is shown
// apart: it serves every path).  A row folded from rounds has it as
// proxy_us (the rounds' median).
const proxyCpu = (r) => {
    if (r.proxy_us != null) return r.proxy_us;
    const c = r.cpu_us || {}, n = r.requests || 0;
    if (!n) return null;
    const sum = (pred) => Object.entries(c).filter(([k]) => pred(k)).reduce((a, [, v]) => a + v, 0) / n;
    if (r.path === 'hub' || r.path === 'hub-quota') return sum((k) => k.startsWith('hub-') || k === 'agentd');
    if (r.path === 'nginx') return sum((k) => k.startsWith('nginx-worker'));
    return 0;
};
// The non-streaming rounds of a path, folded into one row of medians:
// req/s, p50, p99, the proxy's CPU per request and each process's (so
// cpu_us is per 1,000,000 requests); errors and probes summed; each
// round's req/s, p50 and p99 kept in .rounds.
const median = (xs) => {
    const a = xs.filter((x) => x != null).sort((x, y) => x - y), n = a.length;
    return n === 0 ? null : n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
};
const fold = (g) => {
    if (g.length === 1) return g[0];
    const keys = [...new Set(g.flatMap((r) => Object.keys(r.cpu_us || {})))];
    const cpu = Object.fromEntries(keys.map((k) => [k, median(g.map((r) => (r.requests ? ((r.cpu_us || {})[k] || 0) / r.requests : null))) * 1e6]));
    const add = (get) => g.reduce((a, r) => a + (get(r) || 0), 0);
    const kinds = Object.fromEntries(Object.keys(g[0].error_kinds || {}).map((k) => [k, add((r) => r.error_kinds[k])]));
    return { ...g[0], round: undefined, rps: median(g.map((r) => r.rps)), p50_ms: median(g.map((r) => r.p50_ms)),
        p99_ms: median(g.map((r) => r.p99_ms)), ok: add((r) => r.ok), errors: add((r) => r.errors), error_kinds: kinds,
        requests: 1e6, cpu_us: cpu, proxy_us: median(g.map(proxyCpu)),
        tcp: { win_probes: add((r) => r.tcp && r.tcp.win_probes), zero_window: add((r) => r.tcp && r.tcp.zero_window) },
        rounds: g.map((r) => ({ rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms })) };
};
// The streaming rounds of a path, likewise: medians of the rounds' rates,
// TTFB and gap percentiles, the worst gap, counts summed.
const foldStream = (g) => {
    if (g.length === 1) return g[0];
    const add = (k) => g.reduce((a, r) => a + (r[k] || 0), 0);
    const med = (k) => median(g.map((r) => r[k]));
    const kinds = {};
    for (const r of g) for (const [k, v] of Object.entries(r.error_kinds || {})) kinds[k] = (kinds[k] || 0) + v;
    return { ...g[0], round: undefined, rps: med('rps'), ttfb_p50_ms: med('ttfb_p50_ms'), ttfb_p99_ms: med('ttfb_p99_ms'),
        gap_mean_ms: med('gap_mean_ms'), gap_p99_ms: med('gap_p99_ms'), gap_max_ms: Math.max(...g.map((r) => r.gap_max_ms ?? 0)),
        ok: add('ok'), errors: add('errors'), error_kinds: kinds, events: add('events'), gaps: add('gaps'),
        coalesced: add('coalesced'), rounds: g.map((r) => ({ ttfb_p50_ms: r.ttfb_p50_ms, ok: r.ok })) };
};
const rows = [];
{
    const groups = new Map();
    for (const r of all) {
        if (r.mode !== 'plain' && r.mode !== 'stream') { rows.push(r); continue; }
        const k = `${r.scenario}\0${r.path}`;
        if (!groups.has(k)) { groups.set(k, []); rows.push(k); }
        groups.get(k).push(r);
    }
    for (let i = 0; i < rows.length; i++) {
        if (typeof rows[i] !== 'string') continue;
        const g = groups.get(rows[i]);
        rows[i] = g[0].mode === 'stream' ? foldStream(g) : fold(g);
    }
}
const find = (s, p) => rows.find((r) => r.scenario === s && r.path === p);
const f = (x, d = 1) => (x == null ? '—' : Number(x).toFixed(d));
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : (a / b).toFixed(2));
const errs = (r) => (r.errors ? `${r.errors} (${Object.entries(r.error_kinds).filter(([, v]) => v).map(([k, v]) => `${v}× ${k}`).join(', ')})` : '0');
const scen = (mode) => [...new Set(rows.filter((r) => r.mode === mode).map((r) => r.scenario))];

let md = [];
const perProc = (r, k) => (r.requests ? ((r.cpu_us || {})[k] || 0) / r.requests : null);
// A hub row's name in the lines under the tables.
const label = (r) => `${r.scenario}${r.path === 'hub-quota' ? ' (hub-quota)' : ''}`;
md.push('| scenario | path | req/s | p50 ms | p99 ms | errors | proxy CPU µs/req | mock CPU µs/req | p50 added over mock ms | ÷ nginx (req/s · p50 · p99 · CPU) |');
md.push('|---|---|---:|---:|---:|---|---:|---:|---:|---|');
for (const s of scen('plain')) {
    const m = find(s, 'mock'), n = find(s, 'nginx');
    for (const r of rows.filter((x) => x.scenario === s)) {
        const rat = (b) => (b ? [ratio(r.rps, b.rps), ratio(r.p50_ms, b.p50_ms), ratio(r.p99_ms, b.p99_ms),
            r.path === 'mock' ? '—' : ratio(proxyCpu(r), proxyCpu(b))].join(' · ') : '—');
        const added = m && r.path !== 'mock' ? f(r.p50_ms - m.p50_ms, 2) : '—';
        md.push(`| ${s} | ${r.path} | ${f(r.rps, 0)} | ${f(r.p50_ms, 2)} | ${f(r.p99_ms, 2)} | ${errs(r)} | ${r.path === 'mock' ? '—' : f(proxyCpu(r), 0)} | ${f(perProc(r, 'mock'), 0)} | ${added} | ${rat(n)} |`);
    }
}
md.push('');
md.push('CPU per request of each process on the hub path (µs, utime + stime from `/proc/PID/stat` over the measured run ÷ requests):');
md.push('');
const onHub = (r) => r.path === 'hub' || r.path === 'hub-quota';
const names = [...new Set(rows.filter((r) => r.mode === 'plain' && onHub(r)).flatMap((r) => Object.keys(r.cpu_us || {})))]
    .filter((k) => k.startsWith('hub-') || k === 'agentd');
md.push(`| scenario | ${names.join(' | ')} | hub + agentd |`);
md.push(`|---|${names.map(() => '---:').join('|')}|---:|`);
for (const r of rows.filter((x) => x.mode === 'plain' && onHub(x)))
    md.push(`| ${label(r)} | ${names.map((k) => f(perProc(r, k), 0)).join(' | ')} | ${f(proxyCpu(r), 0)} |`);
md.push('');
if (rows.some((x) => x.mode === 'plain' && onHub(x) && x.tcp))
    md.push('TCP persist-timer probes during each hub row (the machine\'s TcpExt TCPWinProbe; a connection whose peer\'s receive window stayed too small for a segment waits about 200 ms for each, as the tunnel\'s did before its segments were clamped to 16 KB): ' +
    rows.filter((x) => x.mode === 'plain' && onHub(x) && x.tcp).map((x) => `${label(x)} ${x.tcp.win_probes}`).join(', ') + '.');
const ranged = rows.filter((x) => x.mode === 'plain' && x.rounds && onHub(x));
if (ranged.length) {
    md.push('');
    md.push(`Each non-streaming row is the median of ${E.B_ROUNDS} rounds run in turn, each round starting one path later (mock, nginx, hub, hub-quota; nginx, hub, hub-quota, mock; ...); req/s of each round, in order: ` +
        ranged.map((x) => `${label(x)} ${x.rounds.map((q) => f(q.rps, 0)).join(' / ')}`).join('; ') +
        '; nginx: ' + rows.filter((x) => x.mode === 'plain' && x.rounds && x.path === 'nginx').map((x) => `${x.scenario} ${x.rounds.map((q) => f(q.rps, 0)).join(' / ')}`).join('; ') + '.');
}
const plain = md.join('\n');
md = [];
md.push('| scenario | path | streams/s | TTFB p50 ms | TTFB p99 ms | gap mean ms | gap p99 ms | gap max ms | coalesced gaps | errors | ÷ mock (TTFB p50 · p99 · gap mean · p99) | ÷ nginx (TTFB p50 · p99 · gap mean · p99) |');
md.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|');
for (const s of scen('stream')) {
    const m = find(s, 'mock'), n = find(s, 'nginx');
    for (const r of rows.filter((x) => x.scenario === s)) {
        const rat = (b) => (b ? [ratio(r.ttfb_p50_ms, b.ttfb_p50_ms), ratio(r.ttfb_p99_ms, b.ttfb_p99_ms),
            ratio(r.gap_mean_ms, b.gap_mean_ms), ratio(r.gap_p99_ms, b.gap_p99_ms)].join(' · ') : '—');
        md.push(`| ${s} | ${r.path} | ${f(r.rps, 1)} | ${f(r.ttfb_p50_ms, 2)} | ${f(r.ttfb_p99_ms, 2)} | ${f(r.gap_mean_ms, 2)} | ${f(r.gap_p99_ms, 2)} | ${f(r.gap_max_ms, 2)} | ${r.coalesced}/${r.gaps} | ${errs(r)} | ${rat(m)} | ${rat(n)} |`);
    }
}
const sranged = rows.filter((x) => x.mode === 'stream' && x.rounds);
if (sranged.length)
    md.push('', `Each streaming row is the median of ${E.B_ROUNDS} rounds run in turn, each round starting one path later (mock, nginx, hub; nginx, hub, mock; ...); TTFB p50 ms of each round, in order (streams in the round): ` +
        sranged.map((x) => `${x.scenario} / ${x.path} ${x.rounds.map((q) => `${f(q.ttfb_p50_ms, 2)} (${q.ok})`).join(' · ')}`).join('; ') + '.');
const stream = md.join('\n');

// The concurrent slow streams (mode hold): one row per path, then memory
// per process, then the issue's targets beside what was measured.
const holds = rows.filter((r) => r.mode === 'hold');
const hm = holds.find((r) => r.path === 'mock'), hh = holds.find((r) => r.path === 'hub');
const holdProcs = (r) => Object.keys(r.mem_kb || {}).filter((k) => (r.path === 'hub' ? k.startsWith('hub-') || k === 'agentd'
    : r.path === 'nginx' ? k.startsWith('nginx-worker') : k === 'mock'));
const inflight = (r) => Math.min(...[r.open_at_plateau, r.open_at_mark].filter((x) => x != null));
// Per stream only when the sample saw (nearly) all of them open: with most
// streams failed before it, the difference means nothing.
const perStream = (r, keys) => {
    const n = inflight(r);
    if (!(n > 0) || n < 0.9 * r.concurrency) return null;
    return keys.reduce((a, k) => a + r.mem_kb[k].pss1 - r.mem_kb[k].pss0, 0) / n;
};
const mb = (kb) => (kb / 1024).toFixed(1);
md = [];
md.push('| path | streams | ok | errors | open at the plateau | TTFB p50 ms | TTFB p99 ms | gap p50 ms | gap p99 ms | gap max ms | gap p99 − mock\'s ms | transit p50 ms | transit p99 ms | transit p99 − mock\'s ms | coalesced gaps | memory per in-flight stream (PSS) | CPU per stream, proxy / mock | client CPU |');
md.push('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of holds) {
    const keys = holdProcs(r);
    const cpuOf = (pred) => Object.entries(r.cpu_us || {}).filter(([k]) => pred(k)).reduce((a, [, v]) => a + v, 0) / r.concurrency;
    const pcpu = r.path === 'mock' ? '—' : f(cpuOf((k) => keys.includes(k)), 0) + ' µs';
    md.push(`| ${r.path} | ${r.concurrency} | ${r.ok} | ${errs(r)} | ${r.open_at_plateau ?? '—'}${r.open_at_mark != null && r.open_at_mark !== r.open_at_plateau ? ` (${r.open_at_mark} after the sample)` : ''} | ${f(r.ttfb_p50_ms, 2)} | ${f(r.ttfb_p99_ms, 2)} | ${f(r.gap_p50_ms, 2)} | ${f(r.gap_p99_ms, 2)} | ${f(r.gap_max_ms, 2)} | ${hm && r !== hm ? f(r.gap_p99_ms - hm.gap_p99_ms, 2) : '—'} | ${f(r.transit_p50_ms, 2)} | ${f(r.transit_p99_ms, 2)} | ${hm && r !== hm && r.transit_p99_ms != null && hm.transit_p99_ms != null ? f(r.transit_p99_ms - hm.transit_p99_ms, 2) : '—'} | ${r.coalesced}/${r.gaps} | ${f(perStream(r, keys), 1)} KB | ${pcpu} / ${f(cpuOf((k) => k === 'mock'), 0)} µs | ${f(r.client_cpu_pct, 0)} % of a core (${mb(r.client_maxrss_kb)} MB max RSS) |`);
}
md.push('');
if (holds.some((r) => r.steal_ms != null)) {
    md.push('CPU time the host took from this virtual machine during each row (its steal time, /proc/stat; the rows need both cores): ' +
        holds.map((r) => `${r.path} ${r.steal_ms != null ? f(r.steal_ms / 1000, 1) + ' s' : '—'}`).join(', ') + '.');
    md.push('');
}
md.push('Memory of each process (PSS, MB: before the ramp · at the plateau · after every stream ended; per in-flight stream = (plateau − before) ÷ streams open):');
md.push('');
md.push('| path | process | before MB | plateau MB | after MB | per stream KB |');
md.push('|---|---|---:|---:|---:|---:|');
for (const r of holds) {
    const keys = holdProcs(r);
    for (const k of keys) {
        const m = r.mem_kb[k];
        md.push(`| ${r.path} | ${k} | ${mb(m.pss0)} | ${mb(m.pss1)} | ${mb(m.pss2)} | ${f(perStream(r, [k]), 1)} |`);
    }
    if (keys.length > 1) {
        const sum = (fld) => keys.reduce((a, k) => a + r.mem_kb[k][fld], 0);
        md.push(`| ${r.path} | **all** | ${mb(sum('pss0'))} | ${mb(sum('pss1'))} | ${mb(sum('pss2'))} | ${f(perStream(r, keys), 1)} |`);
    }
}
md.push('');
const pf = (okk, by) => (okk ? `**pass**${by ? ` (${by})` : ''}` : `**FAIL**${by ? ` (${by})` : ''}`);
md.push('| target (issue 14) | measured | result |');
md.push('|---|---|---|');
{
    // The request-path targets, from the rows above.
    const P = (c, p) => find(`non-streaming, c=${c}`, p), S = (c, p) => find(`streaming, c=${c}`, p);
    for (const c of [1, 32]) {
        const h = P(c, 'hub');
        if (!h) continue;
        const cpu = proxyCpu(h);
        md.push(`| CPU per non-streaming request, hub + agentd ≤ 200 µs, c=${c} | ${f(cpu, 0)} µs | ${pf(cpu <= 200, cpu <= 200 ? '' : `${f(cpu - 200, 0)} µs over, ${f(cpu / 200, 2)}×`)} |`);
    }
    const h1 = P(1, 'hub'), m1 = P(1, 'mock');
    if (h1 && m1) {
        const a50 = h1.p50_ms - m1.p50_ms, a99 = h1.p99_ms - m1.p99_ms;
        md.push(`| added latency over the mock at c=1, p50 ≤ 0.3 ms | ${f(h1.p50_ms, 2)} − ${f(m1.p50_ms, 2)} = ${f(a50, 2)} ms | ${pf(a50 <= 0.3, a50 <= 0.3 ? '' : `${f(a50 - 0.3, 2)} ms over`)} |`);
        md.push(`| added latency over the mock at c=1, p99 ≤ 1.5 ms | ${f(h1.p99_ms, 2)} − ${f(m1.p99_ms, 2)} = ${f(a99, 2)} ms | ${pf(a99 <= 1.5, a99 <= 1.5 ? '' : `${f(a99 - 1.5, 2)} ms over`)} |`);
    }
    for (const c of [32, 256]) {
        const h = P(c, 'hub'), n = P(c, 'nginx');
        if (!h || !n) continue;
        const r = h.rps / n.rps;
        md.push(`| throughput at c=${c} ≥ 0.5× nginx's | ${f(h.rps, 0)} ÷ ${f(n.rps, 0)} req/s = ${f(r, 2)}× | ${pf(r >= 0.5, r >= 0.5 ? '' : `${f(0.5 * n.rps - h.rps, 0)} req/s short of ${f(0.5 * n.rps, 0)}, ${f(r, 3)}×`)} |`);
    }
    for (const c of [1, 32]) {
        const h = S(c, 'hub'), m = S(c, 'mock');
        if (!h || !m) continue;
        const a = h.ttfb_p50_ms - m.ttfb_p50_ms;
        md.push(`| streaming: added time to first byte p50 ≤ 0.5 ms, c=${c} | ${f(h.ttfb_p50_ms, 2)} − ${f(m.ttfb_p50_ms, 2)} = ${f(a, 2)} ms | ${pf(a <= 0.5, a <= 0.5 ? '' : `${f(a - 0.5, 2)} ms over`)} |`);
        md.push(`| streaming: chunk gaps kept (nothing coalesced), c=${c} | ${h.coalesced}/${h.gaps} gaps under 2 ms (mock ${m.coalesced}/${m.gaps}); gap mean ${f(h.gap_mean_ms, 2)} ms (mock ${f(m.gap_mean_ms, 2)}) | ${pf(h.coalesced <= m.coalesced + h.gaps / 1000, h.coalesced ? `${h.coalesced} coalesced` : '')} |`);
    }
    if (E.B_SCALE_BYTES) {
        const kb = E.B_SCALE_BYTES / 1024;
        md.push(`| hub memory per idle agent ≤ 16 KB | ${f(kb, 1)} KB (tunnel anonymous RSS growth ÷ ${E.B_SCALE_AGENTS} agents) | ${pf(kb <= 16, kb <= 16 ? '' : `${f(kb - 16, 1)} KB over, ${f(kb / 16, 2)}×`)} |`);
    }
}
if (hh) {
    const full = hh.concurrency >= 10000;
    md.push(`| 10,000 concurrent slow streams through one hub and one agent, no errors | ${hh.concurrency} streams: ${hh.ok} ok, ${errs(hh)} errors; ${inflight(hh)} open at once | ${pf(full && hh.errors === 0 && hh.ok === hh.concurrency, full ? (hh.errors ? `${hh.errors} errors` : '') : `only ${hh.concurrency} streams run`)} |`);
    if (hm) {
        const d = hh.gap_p99_ms - hm.gap_p99_ms;
        md.push(`| chunk-gap p99 within 5 ms of the mock's | hub ${f(hh.gap_p99_ms, 2)} ms − mock ${f(hm.gap_p99_ms, 2)} ms = ${f(d, 2)} ms | ${pf(d <= 5, d <= 5 ? `${f(5 - d, 2)} ms to spare` : `${f(d - 5, 2)} ms over`)} |`);
        // The same tail without the mock's own stalls: each event's
        // arrival less the mock's stamp in it (no verdict of its own).
        if (hh.transit_p99_ms != null && hm.transit_p99_ms != null) {
            const t = hh.transit_p99_ms - hm.transit_p99_ms;
            md.push(`| (beside it, no target of its own) chunk transit p99, mock's stamp → client, over the mock's | hub ${f(hh.transit_p99_ms, 2)} ms − mock ${f(hm.transit_p99_ms, 2)} ms = ${f(t, 2)} ms (${hh.stamps} and ${hm.stamps} events) | — |`);
        }
    } else md.push('| chunk-gap p99 within 5 ms of the mock\'s | the mock path was not run | — |');
    // "Hub memory" is the hub's own processes, as for the idle agent;
    // agentd runs on the agent owner's host and is reported beside it.
    const keys = holdProcs(hh), hubKeys = keys.filter((k) => k.startsWith('hub-'));
    const per = perStream(hh, hubKeys), all = perStream(hh, keys);
    const part = (pred) => f(perStream(hh, keys.filter(pred)), 1);
    if (per == null) md.push(`| hub memory per in-flight stream ≤ 32 KB (hubd's processes, PSS) | not measurable: only ${inflight(hh)} of ${hh.concurrency} streams open at the sample; peak PSS growth ${mb(hubKeys.reduce((a, k) => a + Math.max(hh.mem_kb[k].pss1, hh.mem_kb[k].pss2) - hh.mem_kb[k].pss0, 0))} MB with ${hh.peak_open} open at most | **FAIL** |`);
    else md.push(`| hub memory per in-flight stream ≤ 32 KB (hubd's processes, PSS) | ${f(per, 1)} KB: gateways ${part((k) => k.startsWith('hub-gateway'))}, tunnel ${part((k) => k === 'hub-tunnel')}, billing ${part((k) => k === 'hub-billing')}, others ${part((k) => k.startsWith('hub-') && !/^hub-(gateway|tunnel|billing)/.test(k))} | ${pf(per <= 32, per <= 32 ? `${f(32 - per, 1)} KB to spare` : `${f(per - 32, 1)} KB over, ${f(per / 32, 2)}×`)} |`);
    if (all != null) md.push(`| (no target) agentd's memory per in-flight stream, on the agent's host | agentd ${part((k) => k === 'agentd')} KB; hub and agentd together ${f(all, 1)} KB | — |`);
}
const held = md.join('\n');

const block = (name, title) => {
    const t = fs.readFileSync(`${work}/${name}.groups`, 'utf8').trimEnd();
    return `${title}:\n\n\`\`\`\n${t || '(nothing)'}\n\`\`\``;
};

const prof = fs.readFileSync(`${work}/profiles.txt`, 'utf8').trimEnd();
// The critical path at c=1 (bench/critpath.mjs): each path's hops.
const crit = fs.readFileSync(`${work}/critpath.jsonl`, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l));
let critTable = '(perf not run)';
if (crit.length) {
    const cm = ['| path | requests | hop: the process woken, until it wakes the next | p50 µs | p90 µs | its wake-up delay p50 µs |',
        '|---|---:|---|---:|---:|---:|'];
    for (const c of crit) {
        c.hops.forEach((h, i) => cm.push(`| ${i ? '' : c.path} | ${i ? '' : c.requests} | ${h.step} (woken by ${h.by}, wakes ${h.next}) | ${h.p50_us ?? '—'} | ${h.p90_us ?? '—'} | ${c.delay[h.step]?.p50_us ?? '—'} |`));
        cm.push(`| | | **the whole path** (the client's write → the client woken), p50 | **${c.total_p50_us ?? '—'}** | | |`);
    }
    critTable = cm.join('\n');
}
const tables = `Non-streaming \`POST /v1/chat/completions\` (mock: 1 chunk, no delay), wrk
(bench/chat.lua), ${E.B_WARMUP} s warm-up then ${E.B_DURATION} s measured per run, each row the median of ${E.B_ROUNDS} runs; latency
= wrk's (request written → response read); CPU = utime + stime of the
proxy's processes over the measured run ÷ requests (hub: every hub child
and agentd; nginx: its workers). The hub path's token has no quota, so its
requests do not wait for billing's reservation; hub-quota is the same path
with a token that has one (a gateway waits for billing's answer about once
in 32 requests, when its lease of the token's quota runs out), at c=1 and
c=32; the targets are read on the hub path. The paced row ("${E.B_PRATE} a
second") is the same request started ${E.B_PRATE} times a second by
\`bench/load.mjs --rate\` (an open loop, ${E.B_WARMUP} s warm-up then ${E.B_PDURATION} s; latency = request
written → whole body read): a lightly loaded proxy, each request nearly
alone, woken for it and cold; its CPU per request is what a quiet hub
and agent really cost, with ticks of 10 ms over ${E.B_PRATE * E.B_PDURATION} requests, so about ${Math.round(1e4 / (E.B_PRATE * E.B_PDURATION))} µs
a process apart:

${plain}

Streaming (${E.B_CHUNKS} chunks × ${E.B_DELAY} ms), ${E.B_SWARMUP} s warm-up then ${E.B_SDURATION} s per run, each row the median of ${E.B_ROUNDS} runs; TTFB = request
sent → first body byte; gaps = arrival time between consecutive content
events at the client (≈ ${E.B_DELAY} ms if nothing coalesces or stalls); "coalesced" =
gaps under 2 ms (two events delivered together):

${stream}

${holds.length ? `Concurrent slow streams: ${holds[0].concurrency} streaming chat completions per path
(mock: ${holds[0].chunks} chunks × ${holds[0].delay_ms} ms, so each lives ~${f(holds[0].chunks * holds[0].delay_ms / 1000, 0)} s), each on its own
connection, started evenly over a ${holds[0].ramp_s} s ramp, all held open together
(\`bench/load.mjs --mode hold\`, one Node process; open file limit ${holds[0].nofile}).
Gaps = arrival times between consecutive content events of a stream at the
client (≈ ${holds[0].delay_ms} ms when nothing stalls); transit = an event's
arrival at the client less the time the mock stamped in it when it made it
(\`openai_mock.mjs --stamp\`: its system_fingerprint; one monotonic clock):
what the path between them took, which a stall of the mock's own does not
move (it delays the stamp too); memory = PSS from
\`/proc/PID/smaps_rollup\`; CPU per stream = utime + stime over the row ÷ streams.
The mock is a Node process: with V8's default heap it collected its old
generation every ~3 s of the ramp, and each collection's helper threads,
sharing the two cores with the hub, held every stream's next event for up
to ~350 ms: most of the hub row's chunk-gap tail, 204 ms over the mock's
p99 before and tens of ms since (a system-wide \`perf\` profile put the
gap log's stalls on the mock's collector threads). Its
old generation therefore starts at ${E.B_MOCK_OLD_MB} MB on every path
(\`BENCH_MOCK_OLD_MB\`; 0 is V8's default). Each path's gaps over 1150 ms,
with their times, are in \`gaps-PATH.txt\` of the kept temp dir:

${held}

` : ''}Memory: the hub's tunnel process per idle connected agent (${E.B_SCALE_AGENTS} agents from the
swarm of tests/integration/tunnel_scale.sh, anonymous RSS growth ÷ agents — heap and
stacks; the shared code pages the first handshakes touch are paid once, not per agent —
read once they are idle after the heartbeats, when the tunnel has given the handshakes'
heap back): ${E.B_SCALE_BYTES ? (E.B_SCALE_BYTES / 1024).toFixed(1) + ' KB' : 'not measured'}.

Critical path at c=1 (\`bench/critpath.mjs\`): a ${E.B_CRIT_SECONDS} s record of the
scheduler (\`perf sched record -a\`) during a wrk run of each path at c=1.
At c=1 a request passes through its processes one at a time, each waking
the next; a hop is the time from one hand-over to the next (the client's
wake-up of the first process, that one's of the second, ...): the wake-up
delay until the woken process has a CPU, its own work until it writes to
the next, and any time it is preempted. Medians over every request whose
hand-overs followed the path; the wake-up delay column is the process's
own, over all its wake-ups in the record:

${critTable}

Profiles (\`perf record -g\`, each process at c=32 on the hub path; self
time by symbol, top 8):

\`\`\`
${prof || '(perf not run)'}
\`\`\``;

const readme = `# bench

\`bench/run.sh\` (\`make bench\`) measures the whole user → hub → tunnel →
agent → provider path against two references, side by side in one run on
one machine, all three in front of the same provider mock:

- **mock** — \`tests/mock/openai_mock.mjs\` called directly (HTTPS, keep-alive),
  run as \`node --initial-old-space-size=${E.B_MOCK_OLD_MB}\` (see the concurrent
  slow streams below);
- **nginx** — nginx as a plain reverse proxy in front of the mock (client →
  plain HTTP on loopback → \`proxy_pass https://\`, HTTP/1.1 keep-alive upstream,
  \`proxy_buffering off\`, 2 workers, the provider key added by nginx): the
  cost of one ordinary proxy hop;
- **hub** — \`tests/stack\`: hubd (2 gateway workers, \`log_level = warn\`, SQLite
  store) → tunnel → agentd (WebSocket over TLS) → mock (libcurl: HTTP/2
  multiplexed where libcurl ≥ 8.1, else one kept-alive connection per request
  in flight, HTTP/1.1 for answers that are not streams), with the fast test
  build (\`make test-build\`: \`build/test\`, \`TEST_BUILD=1\`, -O2, no sanitizers).

Non-streaming rows are driven by \`wrk\` (C; \`bench/chat.lua\` writes the
POST), so the client is not the bottleneck; streaming rows by
\`bench/load.mjs\` (Node built-ins only; it times every SSE event). Both are
closed loops of N keep-alive clients; the paced row's \`load.mjs --rate\`
is an open one (a request every 1/rate s). Each row also reads every process's
CPU time (\`/proc/PID/stat\`) before and after: CPU per request is what the
proxy itself costs, whatever else the machine runs. The mock, nginx, hub,
agent and the load generators share the machine's cores, so throughput
and latency are relative: read the ratio columns.

## Latest results

${E.B_DATE} — ${E.B_NPROC} cores (${E.B_CPU}), ${E.B_MEM} RAM, Debian ${E.B_DEBIAN}, Linux
${E.B_KERNEL} (cpuidle: ${E.B_IDLE}), Node ${E.B_NODE}, nginx ${E.B_NGINX}; build: \`build/test\` at
\`${E.B_COMMIT}\`. Load average before / after the run: ${E.B_LOAD_START} / ${E.B_LOAD_END}.

${tables}

### Logged during the runs

${block('hub', 'Hub (hub.log, warn and above), grouped by message')}

${block('agent', 'agentd (agent log, info and above), grouped')}

${block('mock', 'Mock (stderr), grouped')}

${block('nginx', 'nginx (error.log), grouped')}

<details><summary>Raw results (one bench/load.mjs line per row; per_second = completions in
each second since the start, warm-up included)</summary>

\`\`\`
${all.map((r) => JSON.stringify(r)).join('\n')}
\`\`\`
</details>

## Rerun

\`\`\`sh
make deps        # once: nginx-light, wrk, linux-perf, nodejs, jq, curl, the build deps
bench/run.sh     # or: make bench — about 25 minutes; rewrites this file
\`\`\`

\`BENCH_WARMUP\`/\`BENCH_DURATION\` (non-streaming, s), \`BENCH_ROUNDS\` (rounds of each scenario, 3), \`BENCH_STREAM_WARMUP\`/
\`BENCH_STREAM_DURATION\`, \`BENCH_PACED_RATE\`/\`BENCH_PACED_DURATION\` (the paced row, 30 a second for 15 s; rate 0: none),
\`BENCH_OUT=FILE\` (write the report elsewhere),
\`BENCH_KEEP=1\` (keep the temp dir with hub, agent, mock and nginx logs),
\`BENCH_HALT_POLL_NS=N\` (a virtual machine's guest halt polling for the run, root; restored after),
\`BENCH_MOCK_OLD_MB=N\` (the mock's initial old generation, 2048; 0: V8's default),
\`BENCH_NO_PERF=1\` (no profiles, no critical paths; \`BENCH_CRIT_SECONDS=N\`: each path's scheduler record, 2), \`BENCH_SCALE_AGENTS=N\` (0: no memory row),
\`BENCH_STREAMS=N\` (concurrent slow streams, default 10000, 0: none; \`BENCH_STREAMS_RAMP\`,
\`_CHUNKS\`, \`_DELAY\`, \`_PATHS\`), \`BENCH_ONLY=streams10k\` (only the named rows: plain,
paced, stream, perf, scale, streams10k; the report then goes to the kept temp dir). One
scenario by hand: \`tests/stack up\`, then e.g.
\`node bench/load.mjs --url $SWB_URL/chat/completions --token $SWB_TOKEN --concurrency 32\`
(\`--mode stream\`, \`--content 'hi [mock chunks=20 delay=20]'\`; it prints one
JSON line).
`;
fs.writeFileSync(out, readme);
process.stdout.write(tables + '\n\n' + ['hub', 'agent', 'mock', 'nginx'].map((n) => block(n, n)).join('\n\n') + '\n');
JS
say "report written to ${OUT#"$top"/}"
ok=1
