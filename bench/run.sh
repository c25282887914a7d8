#!/usr/bin/env bash
# bench/run.sh (`make bench`): the user → hub → tunnel → agent → provider
# path against two references, side by side in one run on this machine:
#   mock   the OpenAI mock (tests/mock/openai_mock.mjs) called directly, TLS
#   nginx  nginx as a plain reverse proxy in front of that same mock
#          (plain HTTP on loopback → proxy_pass https, keep-alive upstream,
#          proxy_buffering off); a foreground nginx with its own temp dir
#   hub    tests/stack: hubd (2 gateway workers, log_level warn) → tunnel
#          → agentd → that same mock; the fast test build (build/test)
# Scenarios (bench/load.mjs, closed loop, keep-alive clients):
#   non-streaming chat completion (mock: 1 chunk, no delay) at 32 and 256
#   concurrent clients; streaming (20 chunks x 20 ms, asked for with a mock
#   directive in the prompt, so all three paths get the same request) at 1
#   and 32.  Writes the table to bench/README.md (BENCH_OUT) and prints it.
# Knobs: BENCH_WARMUP / BENCH_DURATION (non-streaming, s; default 3 / 10),
# BENCH_STREAM_WARMUP / BENCH_STREAM_DURATION (default 1 / 8), BENCH_OUT,
# BENCH_KEEP=1 keeps the temp dirs (logs) even on success.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

WARMUP=${BENCH_WARMUP:-3}
DURATION=${BENCH_DURATION:-10}
S_WARMUP=${BENCH_STREAM_WARMUP:-1}
S_DURATION=${BENCH_STREAM_DURATION:-8}
OUT=${BENCH_OUT:-$top/bench/README.md}
STREAM_CHUNKS=20
STREAM_DELAY=20
PROMPT='Say hello.'
STREAM_PROMPT="Say hello. [mock chunks=$STREAM_CHUNKS delay=$STREAM_DELAY]"

say() { echo "bench: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

for c in node jq curl make openssl; do
    command -v "$c" >/dev/null || die "$c not found (make deps)"
done
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } ||
    die "nginx not found (make deps installs nginx-light)"

# ---------------------------------------------------------------- clean-up
work=$(mktemp -d /tmp/swb-bench.XXXXXX)
chmod 755 "$work"
stack_dir=$work/stack
ngx_dir=$work/nginx
NGX_PID=
ok=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
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
    if [ "$ok" = 1 ] && [ -z "${BENCH_KEEP:-}" ]; then
        rm -rf "$work"
    else
        say "logs kept in $work (stack/hub.log, stack/agent-stack.log, stack/mock.log, nginx/error.log)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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
say "starting the stack (mock + hubd + agentd)"
SWB_DIR=$stack_dir SWB_BIN=$BIN SWB_LOG_LEVEL=warn SWB_WORKERS=2 SWB_CHANNEL_RPM=0 SWB_CHANNEL_TPM=0 \
    SWB_MOCK_ARGS="--chunks 1 --delay-ms 0 --log=" \
    tests/stack up >"$work/stack.env" 2>"$work/stack.err" ||
    { cat "$work/stack.err" >&2; die "tests/stack up failed"; }
SWB_URL=$(sed -n 's/^SWB_URL=//p' "$work/stack.env")
SWB_TOKEN=$(sed -n 's/^SWB_TOKEN=//p' "$work/stack.env")
if [ -z "$SWB_URL" ] || [ -z "$SWB_TOKEN" ]; then die "tests/stack up printed no SWB_URL/SWB_TOKEN"; fi
MOCK_PORT=$(awk '/^listening/ {print $2}' "$stack_dir/mock.out")
[ -n "$MOCK_PORT" ] || die "no mock port in $stack_dir/mock.out"
CA=$stack_dir/certs/ca.pem

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
worker_rlimit_nofile 16384;
pid $ngx_dir/nginx.pid;
error_log $ngx_dir/error.log warn;
events { worker_connections 4096; }
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

# run SCENARIO PATH MODE CONCURRENCY
run() {
    local scen=$1 path=$2 mode=$3 conc=$4 url args=() warm dur content
    case $path in
        mock)  url="https://127.0.0.1:$MOCK_PORT/v1/chat/completions"
               args=(--token sk-test-provider-key --ca "$CA" --servername api.openai.com) ;;
        nginx) url="http://127.0.0.1:$NGX_PORT/v1/chat/completions" ;;
        hub)   url="$SWB_URL/chat/completions"; args=(--token "$SWB_TOKEN") ;;
    esac
    if [ "$mode" = stream ]; then warm=$S_WARMUP dur=$S_DURATION content=$STREAM_PROMPT
    else warm=$WARMUP dur=$DURATION content=$PROMPT; fi
    say "$scen / $path (${warm}s warm-up + ${dur}s)"
    node bench/load.mjs --url "$url" "${args[@]}" --mode "$mode" --concurrency "$conc" \
        --warmup "$warm" --duration "$dur" --content "$content" >"$work/one.json" ||
        die "load generator failed ($scen / $path)"
    jq -c --arg s "$scen" --arg p "$path" '. + {scenario: $s, path: $p}' "$work/one.json" | tee -a "$results" >&2
}
for c in 32 256; do
    for p in mock nginx hub; do run "non-streaming, c=$c" "$p" plain "$c"; done
done
for c in 1 32; do
    for p in mock nginx hub; do run "streaming, c=$c" "$p" stream "$c"; done
done
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- logs
# Lines the hub (warn and above), agentd and the mock logged during the runs,
# grouped by message (timestamps, pids and request ids dropped).
group() { sed -E 's/^[^ ]+ //; s/\[([a-z]+)(#[0-9]+)?:[0-9]+\]/[\1\2]/; s/req=[0-9a-f]+ //' | sort | uniq -c | sort -rn | head -12; }
tail -n +"$((hub_log_start + 1))" "$stack_dir/hub.log" | group >"$work/hub.groups"
tail -n +"$((agent_log_start + 1))" "$stack_dir/agent-stack.log" | group >"$work/agent.groups"
tail -n +"$((mock_log_start + 1))" "$stack_dir/mock.log" | group >"$work/mock.groups"
grep -vE '^\s*$' "$ngx_dir/error.log" 2>/dev/null | sed -E 's/^[0-9\/]+ [0-9:]+ //; s/\*[0-9]+ //; s/client: .*//' |
    sort | uniq -c | sort -rn | head -12 >"$work/nginx.groups" || true

# ---------------------------------------------------------------- report
cpu=$(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)
B_NPROC=$(nproc); B_KERNEL=$(uname -r); B_DEBIAN=$(cat /etc/debian_version 2>/dev/null || echo '?')
B_NODE=$(node --version); B_NGINX=$("$NGINX" -v 2>&1 | sed 's/.*version: nginx\///')
B_COMMIT=$(git describe --always --dirty 2>/dev/null || echo '?')
export B_DATE=$started_at B_CPU=$cpu B_MEM=$mem B_NPROC B_KERNEL B_DEBIAN B_NODE B_NGINX B_COMMIT \
    B_LOAD_START=$loadavg_start B_LOAD_END=$loadavg_end \
    B_WARMUP=$WARMUP B_DURATION=$DURATION B_SWARMUP=$S_WARMUP B_SDURATION=$S_DURATION \
    B_CHUNKS=$STREAM_CHUNKS B_DELAY=$STREAM_DELAY
node - "$results" "$work" "$OUT" <<'JS'
const fs = require('node:fs');
const [results, work, out] = process.argv.slice(2);
const E = process.env;
const rows = fs.readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const find = (s, p) => rows.find((r) => r.scenario === s && r.path === p);
const f = (x, d = 1) => (x == null ? '—' : Number(x).toFixed(d));
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : (a / b).toFixed(2));
const errs = (r) => (r.errors ? `${r.errors} (${Object.entries(r.error_kinds).map(([k, v]) => `${v}× ${k}`).join(', ')})` : '0');
const scen = (mode) => [...new Set(rows.filter((r) => r.mode === mode).map((r) => r.scenario))];

let md = [];
md.push('| scenario | path | req/s | p50 ms | p99 ms | errors | new conns | ÷ mock (req/s · p50 · p99) | ÷ nginx (req/s · p50 · p99) |');
md.push('|---|---|---:|---:|---:|---|---:|---|---|');
for (const s of scen('plain')) {
    const m = find(s, 'mock'), n = find(s, 'nginx');
    for (const r of rows.filter((x) => x.scenario === s)) {
        const rat = (b) => (b ? [ratio(r.rps, b.rps), ratio(r.p50_ms, b.p50_ms), ratio(r.p99_ms, b.p99_ms)].join(' · ') : '—');
        md.push(`| ${s} | ${r.path} | ${f(r.rps, 0)} | ${f(r.p50_ms, 2)} | ${f(r.p99_ms, 2)} | ${errs(r)} | ${r.connections} | ${rat(m)} | ${rat(n)} |`);
    }
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
const stream = md.join('\n');

const block = (name, title) => {
    const t = fs.readFileSync(`${work}/${name}.groups`, 'utf8').trimEnd();
    return `${title}:\n\n\`\`\`\n${t || '(nothing)'}\n\`\`\``;
};

const tables = `Non-streaming \`POST /v1/chat/completions\` (mock: 1 chunk, no delay),
${E.B_WARMUP} s warm-up then ${E.B_DURATION} s measured per row; latency = request sent → whole
body read; "new conns" = TCP connections the client had to open (keep-alive
clients: ideally = concurrency):

${plain}

Streaming (${E.B_CHUNKS} chunks × ${E.B_DELAY} ms), ${E.B_SWARMUP} s warm-up then ${E.B_SDURATION} s per row; TTFB = request
sent → first body byte; gaps = arrival time between consecutive content
events at the client (≈ ${E.B_DELAY} ms if nothing coalesces or stalls); "coalesced" =
gaps under 2 ms (two events delivered together):

${stream}`;

const readme = `# bench

\`bench/run.sh\` (\`make bench\`) measures the whole user → hub → tunnel →
agent → provider path against two references, side by side in one run on
one machine, all three in front of the same provider mock:

- **mock** — \`tests/mock/openai_mock.mjs\` called directly (HTTPS, keep-alive);
- **nginx** — nginx as a plain reverse proxy in front of the mock (client →
  plain HTTP on loopback → \`proxy_pass https://\`, HTTP/1.1 keep-alive upstream,
  \`proxy_buffering off\`, 2 workers, the provider key added by nginx): the
  cost of one ordinary proxy hop;
- **hub** — \`tests/stack\`: hubd (2 gateway workers, \`log_level = warn\`, SQLite
  store) → tunnel → agentd (WebSocket over TLS) → mock (libcurl, HTTP/2:
  agentd multiplexes its requests on one connection), with the fast test
  build (\`make test-build\`: \`build/test\`, \`TEST_BUILD=1\`, -O2, no sanitizers).

The load generator is \`bench/load.mjs\` (Node built-ins only): a closed loop
of N clients, each one request at a time over keep-alive connections. The
mock, nginx, hub, agent and the load generator share the machine's cores,
so the figures are relative: read the ratio columns.

## Latest results

${E.B_DATE} — ${E.B_NPROC} cores (${E.B_CPU}), ${E.B_MEM} RAM, Debian ${E.B_DEBIAN}, Linux
${E.B_KERNEL}, Node ${E.B_NODE}, nginx ${E.B_NGINX}; build: \`build/test\` at
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
${rows.map((r) => JSON.stringify(r)).join('\n')}
\`\`\`
</details>

## Rerun

\`\`\`sh
make deps        # once: nginx-light, nodejs, jq, curl, the build deps
bench/run.sh     # or: make bench — about 2½ minutes; rewrites this file
\`\`\`

\`BENCH_WARMUP\`/\`BENCH_DURATION\` (non-streaming, s), \`BENCH_STREAM_WARMUP\`/
\`BENCH_STREAM_DURATION\`, \`BENCH_OUT=FILE\` (write the report elsewhere),
\`BENCH_KEEP=1\` (keep the temp dir with hub, agent, mock and nginx logs). One
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
