# A burst of streams cut at once (their users gone together, as when a
# load balancer or a client fleet restarts) is billed from the agent's own
# usage reports, every one inside the hub's [billing] report_grace: agentd
# sends every report due in one tick of its timer (a page of records at a
# time, agent/ag_bill.c), not one page a second.  With 64 a second, 400
# cut streams took 7 s to report and the hub, after its 4 s grace here,
# billed the late ones from its own estimate — or voided those of which
# nothing had reached it, though the agent had paid its provider for them.
source "$(dirname "$0")/lib.sh"
export SWB_CHANNEL_RPM=0 SWB_CHANNEL_TPM=0
hub_with_tunnel
# Each stream: the head and a first event at once, then one every 3 s, so
# that no stream ends by itself before the cut, however slow the machine.
start_mock --chunks 4 --delay-ms 3000
start_agent cut1
GW=$(gw_url)
TOK=$(ctl token create --name cut1)
N=400

note "$N streams, each cut by its user after its first event"
cat >"$SWB_TMP/cut.mjs" <<'EOF'
// cut.mjs URL TOKEN N: N streams at once; when every one has its first
// body bytes, all are dropped together.  Prints how many got them.
import http from 'node:http';
const [url, tok, n] = [process.argv[2], process.argv[3], +process.argv[4]];
const body = JSON.stringify({ model: 'gpt-4o', stream: true, max_tokens: 4,
  messages: [{ role: 'user', content: 'a stream its user leaves' }] });
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const reqs = []; let started = 0, failed = 0;
const done = () => {
  if (started + failed < n) return;
  for (const r of reqs) r.destroy();
  console.log(JSON.stringify({ started, failed }));
  setTimeout(() => process.exit(0), 200);
};
for (let i = 0; i < n; i++) {
  const r = http.request(url, { method: 'POST', agent, headers: {
    authorization: `Bearer ${tok}`, 'content-type': 'application/json' } },
  (res) => {
    let first = true;
    res.on('data', () => { if (first) { first = false;
      if (res.statusCode === 200) started++; else failed++; done(); } });
    res.on('error', () => {});
  });
  r.on('error', () => { failed++; done(); });
  r.end(body);
  reqs.push(r);
}
setTimeout(() => { console.log(JSON.stringify({ started, failed,
  timeout: true })); process.exit(1); }, 20000);
EOF
node "$SWB_TMP/cut.mjs" "$GW/v1/chat/completions" "$TOK" "$N" >"$SWB_TMP/cut.out" ||
    fail "the streams did not start: $(cat "$SWB_TMP/cut.out")"
cat "$SWB_TMP/cut.out"
[ "$(jq -r .started "$SWB_TMP/cut.out")" = "$N" ] || fail "not every stream started"

note "every cut stream is billed once, from the agent's report"
q() { sqlite3 "$SWB_TMP/hubd.db" "$1"; }
TID=$(ctl --json token list | jq -r '.tokens[] | select(.name=="cut1") | .id')
open_rows() { q "SELECT COUNT(*) FROM charges WHERE token_id = $TID AND state IN ('reserved', 'awaiting')"; }
none_open() { [ "$(open_rows)" = 0 ]; }
wait_until 20 none_open || fail "$(open_rows) charges still open"
q "SELECT state, agent_reported, COUNT(*) FROM charges WHERE token_id = $TID GROUP BY 1, 2"
reported=$(q "SELECT COUNT(*) FROM charges WHERE token_id = $TID AND state = 'posted' AND agent_reported = 1")
[ "$reported" = "$N" ] || fail "$reported of $N cut streams billed from the agent's report"
# The agent's side: each record settled, none ignored by the hub.
AG_LOG=$SWB_TMP/agent-cut1.log
! grep -q "the hub ignored it" "$AG_LOG" || fail "the hub ignored reports: $(grep -m3 'the hub ignored it' "$AG_LOG")"
nrep=$(grep -c "reporting its usage" "$AG_LOG" || true)
((nrep >= N)) || fail "the agent sent $nrep reports for $N cut streams"
echo "cut_burst: ok ($N cut streams, $nrep reports)"
