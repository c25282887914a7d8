#!/usr/bin/env bash
# bench/instr.sh (make bench-instr): instructions a request, per process,
# counted by valgrind's callgrind — a figure that does not move with the
# machine's load, so that a change of a few per cent shows (bench/run.sh's
# CPU times vary by a third from one row to the next on a shared machine).
#
# Each scenario starts the stack of tests/stack (fast test build, SQLite)
# with hubd and agentd under callgrind (SWB_WRAP; the mock runs as it is),
# sends INSTR_WARMUP requests, then INSTR_N counted ones, one at a time at
# a fixed pace (INSTR_RATE a second, so that billing's and the ledger's
# 200 ms batches hold as many requests whatever the build's speed), and
# stops the stack; callgrind writes each process's counts as it exits.
# A baseline run does the same with no counted request (it waits as long
# instead): a scenario's count less the baseline's, divided by INSTR_N, is
# a request's.  (callgrind_control cannot zero counters here: valgrind's
# gdbserver, which it talks to, does not follow hubd's forked children.)
# Scenarios: non-streaming chat with a token without a quota and with one,
# and a stream of 20 chunks.
# Writes bench/INSTR.md: instructions a request (Ir) of each process and
# the functions that execute most of them (self cost).
# Knobs: INSTR_N (requests a scenario, default 400), INSTR_RATE (default
# 50; streams half as many; the counted requests must keep to
# it, or the baseline's idle time would not match theirs), INSTR_WARMUP (default 40), INSTR_OUT (default bench/INSTR.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
N=${INSTR_N:-400}
RATE=${INSTR_RATE:-50}
WARM=${INSTR_WARMUP:-40}
OUT=${INSTR_OUT:-$top/bench/INSTR.md}
work=$(mktemp -d /tmp/swb-instr.XXXXXX)
stack_dir=
say() { echo "instr: $*" >&2; }
die() { echo "instr: $*" >&2; exit 1; }
for t in valgrind callgrind_control callgrind_annotate node jq; do
    command -v "$t" >/dev/null || die "$t is missing (tools/deps.sh installs it)"
done

cleanup() { [ -z "$stack_dir" ] || SWB_DIR=$stack_dir tests/stack down >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "building the fast test build (make test-build)"
make -s test-build >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "make test-build failed"; }
BIN=$top/build/test

# The processes counted, by name (hubd's children and master, agentd).
procs() {
    local hub; hub=$(cat "$stack_dir/hub.pid")
    for p in $(pgrep -P "$hub") "$hub"; do echo "$p $(cat "/proc/$p/comm")"; done
    echo "$(cat "$stack_dir/agent.pid") agentd"
}

# drive URL TOKEN N STREAM: N requests, one at a time, at most RATE a second.
drive() {
    node - "$1" "$2" "$3" "$RATE" "$4" <<'JS'
const [url, token, n, rate, stream] = process.argv.slice(2);
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ model: 'gpt-4o-mini', stream: stream === '1',
    messages: [{ role: 'user', content: stream === '1' ?
        'Say hello. [mock chunks=20 delay=0]' : 'Say hello.' }] });
function one() {
    return new Promise((resolve, reject) => {
        const rq = http.request(url, { method: 'POST', agent, headers: {
            'content-type': 'application/json', authorization: `Bearer ${token}` } }, (rs) => {
            let b = '';
            rs.on('data', (d) => { b += d; });
            rs.on('end', () => rs.statusCode === 200 ? resolve() :
                reject(new Error(`status ${rs.statusCode}: ${b.slice(0, 200)}`)));
        });
        rq.on('error', reject);
        rq.end(body);
    });
}
(async () => {
    const gap = 1000 / +rate, t0 = Date.now();
    for (let i = 0; i < +n; i++) {
        const t = Date.now();
        await one();
        const w = gap - (Date.now() - t);
        if (w > 0) await new Promise((r) => setTimeout(r, w));
    }
    agent.destroy();
    console.log(((Date.now() - t0) / 1000).toFixed(2));
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
}

# one NAME QUOTA STREAM COUNTED RATE: a stack under callgrind, the warm-up, COUNTED
# requests (none: the baseline waits as long), the stack stopped; appends
# "NAME|process|Ir|dump" lines to $results.
results=$work/results
: >"$results"
one() {
    local name=$1 quota=$2 stream=$3 n=$4 RATE=$5 d=$work/run.$RANDOM url tok p comm f ir
    mkdir -p "$d"
    stack_dir=$d/stack
    say "$name: stack up under callgrind"
    SWB_DIR=$stack_dir SWB_BIN=$BIN SWB_LOG_LEVEL=warn SWB_WORKERS=2 SWB_CHANNEL_RPM=0 \
        SWB_CHANNEL_TPM=0 SWB_MOCK_ARGS="--chunks 1 --delay-ms 0 --log=" \
        SWB_WRAP="valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=$d/cg.%p" \
        tests/stack up >"$d/stack.env" 2>"$d/stack.err" ||
        { cat "$d/stack.err" >&2; die "tests/stack up failed"; }
    url=$(sed -n 's/^SWB_URL=//p' "$d/stack.env")/chat/completions
    tok=$(sed -n 's/^SWB_TOKEN=//p' "$d/stack.env")
    if [ "$quota" = 1 ]; then
        tok=$(SWB_ADMIN=$stack_dir/run/hubd.sock "$BIN/hubctl" token create --name instr-quota \
            --quota 1000000000) || die "hubctl token create --quota failed"
    fi
    procs >"$d/procs"
    say "$name: $WARM requests of warm-up, then ${n:-none} counted, $RATE a second"
    drive "$url" "$tok" "$WARM" "$stream" >/dev/null || die "$name: warm-up failed"
    sleep 1
    local want took
    want=$(awk -v n="$N" -v r="$RATE" 'BEGIN {print n / r}')
    if [ "$n" -gt 0 ]; then
        took=$(drive "$url" "$tok" "$n" "$stream") || die "$name: a request failed"
        awk -v t="$took" -v w="$want" 'BEGIN {exit !(t > w * 1.05)}' &&
            die "$name: $n requests took ${took}s, not ${want}s: lower INSTR_RATE"
    else sleep "$want"; fi
    sleep 1	# the last posts, receipts and commits (30 ms windows)
    SWB_DIR=$stack_dir tests/stack down >/dev/null 2>&1
    for _ in $(seq 300); do pgrep -f "callgrind-out-file=$d/" >/dev/null || break; sleep 0.1; done
    while read -r p comm; do
        f=$d/cg.$p
        [ -s "$f" ] || die "no callgrind dump of $comm ($p)"
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
        echo "$name|$comm|${ir:-0}|$f" >>"$results"
    done <"$d/procs"
}

one baseline 0 0 0 "$RATE"
one "non-streaming" 0 0 "$N" "$RATE"
one "non-streaming, quota token" 1 0 "$N" "$RATE"
one "baseline, streams" 0 1 0 "$((RATE / 2))"
one "streaming, 20 chunks" 0 1 "$N" "$((RATE / 2))"

say "writing $OUT"
rev="$(git rev-parse --short HEAD)$(git diff --quiet -- . ':!bench/INSTR.md' || echo -dirty)"
python3 - "$results" "$N" "$RATE" "$WARM" "$rev" "$(valgrind --version | sed 's/valgrind-//')" >"$OUT" <<'PY'
# Per scenario and process: (Ir − the baseline's) ÷ N; the functions by
# self cost, the baseline's taken off the same way.
import collections, re, subprocess, sys, time
results, n, rate, warm, rev, vgv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def proc(c):
    return 'gateways' if c.startswith('gateway#') else c
tot = collections.defaultdict(lambda: collections.defaultdict(int))
dumps = collections.defaultdict(lambda: collections.defaultdict(list))
order = []
for line in open(results):
    scen, comm, ir, f = line.rstrip('\n').split('|')
    if scen not in order:
        order.append(scen)
    tot[scen][proc(comm)] += int(ir)
    dumps[scen][proc(comm)].append(f)
line_re = re.compile(r'^\s*([0-9,]+) \(\s*[0-9.]+%\)  (.*)$')
def selfcost(files):
    out = collections.defaultdict(int)
    for f in files:
        a = subprocess.run(['callgrind_annotate', '--inclusive=no', '--auto=no', '--threshold=100', f],
                           capture_output=True, text=True).stdout
        for l in a.splitlines():
            m = line_re.match(l)
            if not m or 'PROGRAM TOTALS' in m.group(2):
                continue
            fn = m.group(2)
            obj = re.sub(r'^.*\[(.*)\]$', r'\1', fn).rsplit('/', 1)[-1]
            name = re.sub(r' \[.*$', '', fn).rsplit(':', 1)[-1]
            out[(name, obj)] += int(m.group(1).replace(',', ''))
    return out
cols = [c for c in ['gateways', 'tunnel', 'billing', 'agentd']
        if any(c in tot[s] for s in order)]
def base_of(s):
    return 'baseline, streams' if s.startswith('streaming') else 'baseline'
print('# Instructions a request (callgrind)\n')
print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — build `build/test` at `{rev}`, "
      f"valgrind {vgv}. Each scenario: a stack of its own under callgrind, {warm} requests "
      f"of warm-up, then {n} counted, one at a time, {rate} a second (streams {int(rate) // 2}); "
      f"a baseline stack does the same with none counted (waiting as long; one for each pace). Ir = instructions executed: (the scenario's count − the "
      f"baseline's) ÷ {n}, per process. Unlike CPU time it does not move with the machine's "
      f"load, so builds compare to about a per cent; it weighs a cache miss and an "
      f"instruction alike, and the kernel's work in system calls is not in it (bench/README.md's "
      f"CPU times are). hubd's master, moderation and admin children are left out: they do "
      f"nothing a request, and what they do on their timers moves with how long a run takes. "
      f"Made by `make bench-instr` (bench/instr.sh).\n")
print('| scenario | ' + ' | '.join(cols) + ' | hub + agentd |')
print('|---|' + '---:|' * (len(cols) + 1))
for s in order:
    if s.startswith('baseline'):
        continue
    v = [(tot[s][c] - tot[base_of(s)][c]) / n for c in cols]
    print(f'| {s} | ' + ' | '.join(f'{x:,.0f}' for x in v) + f' | {sum(v):,.0f} |')
print('\nWhere they go: the functions of each process (its own instructions, not its callees\'; '
      '`0x…` where the library has no symbols) that execute at least 2 % of its '
      'instructions a request, the first ten, baseline taken off.')
bself = {b: {c: selfcost(dumps[b][c]) for c in cols} for b in ('baseline', 'baseline, streams')}
for s in order:
    if s.startswith('baseline'):
        continue
    for c in cols:
        per = (tot[s][c] - tot[base_of(s)][c]) / n
        if per < 2000:
            continue
        sc = selfcost(dumps[s][c])
        d = sorted(((v - bself[base_of(s)][c].get(k, 0)) / n, k) for k, v in sc.items())
        d.reverse()
        print(f'\n**{s} — {c}** ({per:,.0f} a request):\n')
        for x, (name, obj) in d[:10]:
            if x < 0.02 * per:
                break
            print(f'- {name} ({obj}): {x:,.0f} ({100 * x / per:.1f} %)')
PY
say "done: $OUT"
