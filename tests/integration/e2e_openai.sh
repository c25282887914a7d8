#!/usr/bin/env bash
# tests/integration/e2e_openai.sh — owns the end-to-end run with the
# official `openai` npm SDK as the user's client (tests/e2e): installs the
# SDK from tests/e2e/package-lock.json when node_modules is missing or stale,
# brings a whole stack up (tests/stack: provider mock, hubd, one agentd, a
# token), runs `node --test tests/e2e/` against it, always takes it down, and
# fails on any sanitizer report in the stack's logs.
# Needs node (20+), npm, jq, curl, openssl; SWB_BIN and SWB_TMP as lib.sh.
set -euo pipefail
: "${SWB_BIN:?}" "${SWB_TMP:?}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$ROOT/tests/e2e
export SWB_BIN
export SWB_DIR=$SWB_TMP/stack

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }
show_logs() {
    for f in "$SWB_DIR"/*.log; do
        [ -f "$f" ] && { echo "=== $f"; tail -n 15 "$f"; }
    done
    [ -f "$SWB_DIR/mock.jsonl" ] && { echo "=== $SWB_DIR/mock.jsonl (last 5)"; tail -n 5 "$SWB_DIR/mock.jsonl" | cut -c1-400; }
    return 0
}
stack_up=
on_exit() {
    local rc=$?
    if [ -n "$stack_up" ]; then "$ROOT/tests/stack" down || true; fi
    exit $rc
}
trap on_exit EXIT

note "SDK (npm ci when node_modules is missing or stale)"
want=$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1)
stamp=$E2E/node_modules/.swb-lock.sha256
if [ ! -f "$E2E/node_modules/openai/package.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$E2E" && npm ci --no-audit --no-fund) || fail "npm ci in tests/e2e failed"
    echo "$want" >"$stamp"
fi
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
    fail "node 20 or newer needed, have $(node --version)"

note "stack up ($SWB_DIR)"
stack_up=1
env_lines=$("$ROOT/tests/stack" up 2>"$SWB_TMP/stack-up.err") ||
    { cat "$SWB_TMP/stack-up.err"; show_logs; fail "tests/stack up failed"; }
while IFS= read -r line; do
    [[ $line =~ ^(SWB_URL|SWB_TOKEN|SWB_ADMIN|SWB_DIR)=(.*)$ ]] || continue
    export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
done <<<"$env_lines"
if [ -z "${SWB_URL:-}" ] || [ -z "${SWB_TOKEN:-}" ]; then
    fail "tests/stack up printed no SWB_URL/SWB_TOKEN: $env_lines"
fi
[ "$SWB_DIR" = "$SWB_TMP/stack" ] || fail "stack came up in $SWB_DIR, not $SWB_TMP/stack"

note "node --test tests/e2e/"
rc=0
(cd "$ROOT" && node --test --test-concurrency=1 --test-reporter=spec tests/e2e/) >"$SWB_TMP/node-test.out" 2>&1 || rc=$?

note "ledger: both sides byte-identical after every surface and provider"
ctl() { "$SWB_BIN/hubctl" -s "$SWB_ADMIN" "$@"; }
agent_id=$(sed -n 's/^id = //p' "$SWB_DIR/stack.ini" | head -1)
ledger_ok=1
for _ in $(seq 100); do	# receipts reach the agent asynchronously
    ctl ledger export "$agent_id" >"$SWB_TMP/hub.csv" 2>/dev/null || true
    "$SWB_BIN/agentd" ledger export -c "$SWB_DIR/stack.ini" >"$SWB_TMP/agent.csv" 2>/dev/null || true
    cmp -s "$SWB_TMP/hub.csv" "$SWB_TMP/agent.csv" && [ "$(wc -l <"$SWB_TMP/hub.csv")" -gt 20 ] && break
    sleep 0.2
done
cmp "$SWB_TMP/hub.csv" "$SWB_TMP/agent.csv" || ledger_ok=0
ctl ledger verify "$agent_id" >/dev/null || ledger_ok=0
"$SWB_BIN/agentd" ledger verify -c "$SWB_DIR/stack.ini" >/dev/null || ledger_ok=0
# Every model's provider appears in the ledger.
for m in claude-haiku-4-5 claude-sonnet-4-5 gpt-4o-mini deepseek-chat qwen-plus gpt-4.1 text-embedding-3-small \
    gemini-2.5-flash gemini-embedding-001 gemini-2.5-pro amazon.nova-lite-v1:0 \
    anthropic.claude-3-5-haiku-20241022-v1:0 gpt-realtime; do
    grep -q ",$m," "$SWB_TMP/hub.csv" || { echo "no ledger entry for $m"; ledger_ok=0; }
done
# Cache reads and writes priced by their own components: the streamed
# Claude answer with cache_read=7 cache_write=3 (anthropic.test.mjs).
row=$(awk -F, '$3=="claude-haiku-4-5" && $6==7' "$SWB_TMP/hub.csv" | head -1)
if [ -n "$row" ]; then
    IFS=, read -r _ _ _ in out _ _ amount _ <<<"$row"
    # claude-haiku-4-5: input 1, output 5, cached input 0.1, cache write
    # 1.25 per 1M; each component rounded on its own (lib/money).
    want=$(( (in - 10) * 1 + (7 * 100000 + 500000) / 1000000 + (3 * 1250000 + 500000) / 1000000 + out * 5 ))
    got=$(awk -v a="$amount" 'BEGIN { printf "%d", a * 1000000 + 0.5 }')
    [ "$got" = "$want" ] || { echo "cache-priced row $row: $got micro, want $want"; ledger_ok=0; }
else
    echo "no claude-haiku-4-5 row with 7 cached tokens"; ledger_ok=0
fi
ctl --json disputes 2>/dev/null | jq -e 'length == 0 or (.disputes // [] | length == 0)' >/dev/null ||
    { echo "disputes: $(ctl --json disputes)"; ledger_ok=0; }

note "stack down"
"$ROOT/tests/stack" down
stack_up=
[ $ledger_ok = 1 ] || { head -5 "$SWB_TMP/hub.csv"; diff "$SWB_TMP/hub.csv" "$SWB_TMP/agent.csv" | head; fail "the ledgers differ, do not verify, or miss a provider"; }

if [ $rc -ne 0 ]; then
    show_logs
    echo "=== node --test"
    cat "$SWB_TMP/node-test.out"
    fail "node --test tests/e2e/ exited $rc"
fi
cat "$SWB_TMP/node-test.out"
# The processes have exited: leak reports are in their logs by now.
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$SWB_DIR"/*.log 2>/dev/null; then
    grep -hE -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$SWB_DIR"/*.log | head -60
    fail "sanitizer report in the stack's logs"
fi
echo "e2e_openai: ok"
