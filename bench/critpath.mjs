// bench/critpath.mjs: where a request's time goes at c=1, hop by hop,
// from the scheduler's own record (`perf sched record -a`, then
// `perf sched timehist -w` on stdin).
//
// At c=1 a request passes through its processes one after another: the
// client wakes the first, which wakes the next, and so on back to the
// client.  Each "awakened" event of the path (waker → wakee, in order) is a
// hand-over; the time from one hand-over to the next is what the process
// woken by the first spent before it woke the next: the scheduler's delay
// in giving it a CPU, its own work, and any time it was preempted.  A
// request's hops are read off in order; one whose hand-overs do not follow
// the path (another process's wake-up in between is fine, a missing hop
// is not) is not read, nor one with a hop over --max-hop-ms (10).  The
// per-process CPU of bench/README.md says what each process costs; this
// says what it adds to the wait.
//
// Usage: perf sched timehist -w -i DATA | node bench/critpath.mjs
//   --path 'client=PID;gateway=PID,PID;tunnel=PID;agentd=PID;mock=PID;agentd;tunnel;gateway;client'
// Each step names a process (its pids, comma separated, the first time it
// appears) and the path returns to the first.  Prints one JSON line:
// {requests, hops: [{step, by, next, p50_us, p90_us}], total_p50_us,
// delay: {name: {p50_us, p90_us, n}}}: hop i is step's time from the
// wake-up by `by` to its own of `next`; delay is each process's wake-up
// delay (woken → on a CPU) over every wake-up of it in the record.
import { createInterface } from 'node:readline';

const arg = (name) => {
	const i = process.argv.indexOf(`--${name}`);
	return i > 0 ? process.argv[i + 1] : undefined;
};
const spec = arg('path');
if (!spec) {
	process.stderr.write('usage: perf sched timehist -w | node critpath.mjs --path SPEC\n');
	process.exit(2);
}

// The path: step names in order; pids of each name.
const pidsOf = new Map();	// pid → name
const steps = [];
for (const part of spec.split(';')) {
	const [name, pids] = part.split('=');
	if (pids) for (const p of pids.split(',')) pidsOf.set(Number(p), name);
	steps.push(name);
}
if (steps.length < 3 || steps[0] !== steps[steps.length - 1]) {
	process.stderr.write('critpath: the path must have 3 steps or more and end where it began\n');
	process.exit(2);
}
const edges = steps.slice(0, -1).map((from, i) => `${from}>${steps[i + 1]}`);

// "comm[tid/pid]" or "comm[pid]" → the process id.
const procOf = (s) => {
	const m = /\[(\d+)(?:\/(\d+))?\]$/.exec(s);
	return m ? Number(m[2] ?? m[1]) : null;
};

// A process already running when its input came is not woken: the path
// then matches a later wake-up (a stream's next chunk, 20 ms on), which
// is no hop of this request.  A request with a hop this long is skipped.
const MAX_HOP_MS = Number(arg('max-hop-ms') ?? 10);
let skipped = 0;
const hops = edges.slice(0, -1).map(() => []);	// between edge i and i+1
const totals = [];
const delays = new Map();	// name → [ms]
let at = -1;	// index of the last edge of the request in progress
let times = [];

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
	const f = line.trim().split(/\s+/);
	if (f.length < 4 || !/^\d+\.\d+$/.test(f[0])) continue;
	const t = Number(f[0]) * 1000;	// ms
	const who = procOf(f[2]);
	if (f[3] === 'awakened:') {
		const whom = procOf(f[4] ?? '');
		const a = pidsOf.get(who), b = pidsOf.get(whom);
		if (a === undefined || b === undefined) continue;
		const edge = `${a}>${b}`;
		if (at >= 0 && edges[at + 1] === edge) {
			times.push(t);
			at++;
		} else if (edges[0] === edge) {
			times = [t];
			at = 0;
		} else {
			continue;
		}
		if (at === edges.length - 1) {
			const d = hops.map((_, i) => times[i + 1] - times[i]);
			const whole = t - times[0];
			at = -1;
			times = [];
			if (d.some((x) => x > MAX_HOP_MS)) {
				skipped++;	/* a hand-over with no wake-up: see above */
				continue;
			}
			d.forEach((x, i) => hops[i].push(x));
			totals.push(whole);
		}
	} else if (f.length >= 6 && /^\d+\.\d+$/.test(f[4])) {
		// A switch-out line: wait, sch delay, run time (ms).
		const name = pidsOf.get(who);
		if (name !== undefined) {
			if (!delays.has(name)) delays.set(name, []);
			delays.get(name).push(Number(f[4]));
		}
	}
}

// p50 and p90 of a (ms) in µs, from one sort; nulls when a is empty.
const p5090 = (a) => {
	const s = [...a].sort((x, y) => x - y);
	const at = (q) => (s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 1000) : null);
	return { p50_us: at(0.5), p90_us: at(0.9) };
};
const out = {
	requests: totals.length,
	skipped,
	hops: hops.map((h, i) => ({ step: steps[i + 1], by: steps[i], next: steps[i + 2], ...p5090(h) })),
	total_p50_us: p5090(totals).p50_us,
	delay: Object.fromEntries([...delays].map(([k, v]) => [k, { ...p5090(v), n: v.length }])),
};
process.stdout.write(JSON.stringify(out) + '\n');
