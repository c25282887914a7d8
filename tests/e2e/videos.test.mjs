// tests/e2e/videos.test.mjs — owns the end-to-end tests of OpenAI video jobs
// through the hub with the official `openai` SDK: videos.create, polled
// with videos.retrieve until completed, videos.downloadContent; the job is
// billed once (video seconds x the model's video_second price, in the
// hub's ledger), another token gets 404 for it, and a failed job is voided.
// Needs SWB_URL, SWB_TOKEN, SWB_DIR, SWB_ADMIN and SWB_BIN (tests/stack up,
// run by tests/integration/e2e_openai.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import OpenAI from 'openai';

const { SWB_URL, SWB_TOKEN, SWB_DIR, SWB_ADMIN, SWB_BIN } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR || !SWB_ADMIN || !SWB_BIN)
	throw new Error('SWB_URL, SWB_TOKEN, SWB_DIR, SWB_ADMIN and SWB_BIN must be set');
const client = (key = SWB_TOKEN) => new OpenAI({ apiKey: key, baseURL: SWB_URL,
	maxRetries: 0, timeout: 30_000 });
const ctl = (...args) => JSON.parse(execFileSync(path.join(SWB_BIN, 'hubctl'),
	['-s', SWB_ADMIN, '--json', ...args], { encoding: 'utf8' }));
const PRICE = '0.125';			// per second of video
const PRICE_MICROS = 125000;

// The hub's ledger of the stack's one agent, as rows of its CSV export.
function ledgerRows() {
	const agents = ctl('agent', 'list');
	const id = (agents.agents ?? agents)[0].id;
	const x = ctl('ledger', 'export', String(id));
	const cols = x.header.trim().split(',');
	const lines = x.csv.split('\n').filter((l) => l !== '');
	return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

async function until(fn, ms = 20_000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > end) throw new Error('timed out');
		await new Promise((r) => setTimeout(r, 300));
	}
}

test('videos: create -> retrieve until completed -> download, billed once', async () => {
	ctl('price', 'set', 'sora-2', '--video-second', PRICE);
	const videoRows = () => ledgerRows().filter((r) => r.model === 'sora-2' &&
		Number(r.video_seconds) > 0);
	const before = videoRows().length;
	const c = client();
	const job = await c.videos.create({ model: 'sora-2', prompt: 'a lighthouse at dusk',
		seconds: '8' });
	assert.match(job.id, /^video_/);
	assert.equal(job.object, 'video');
	assert.equal(job.status, 'queued');
	let seen = [];
	const done = await until(async () => {
		const v = await c.videos.retrieve(job.id);
		seen.push(v.status);
		return v.status === 'completed' ? v : null;
	});
	assert.equal(done.id, job.id);
	assert.equal(done.seconds, '8');
	assert.ok(seen.length >= 2, `polled while it rendered: ${seen}`);
	// Retrieved again after completion: never billed again.
	assert.equal((await c.videos.retrieve(job.id)).status, 'completed');
	assert.equal((await c.videos.retrieve(job.id)).status, 'completed');

	const res = await c.videos.downloadContent(job.id);
	assert.equal(res.headers.get('content-type'), 'video/mp4');
	const bytes = Buffer.from(await res.arrayBuffer());
	// What the mock serves for this job: 8 KiB, an ftyp box then a pattern.
	const want = Buffer.alloc(8 * 1024);
	for (let i = 0; i < want.length; i++) want[i] = (i * 7 + job.id.length) % 251;
	Buffer.from('\x00\x00\x00\x18ftypmp42', 'latin1').copy(want, 0);
	assert.equal(crypto.createHash('sha256').update(bytes).digest('hex'),
		crypto.createHash('sha256').update(want).digest('hex'));

	// Billed once: one ledger entry with the job's 8 seconds at the price.
	await until(() => videoRows().length > before);
	await new Promise((r) => setTimeout(r, 500));
	const rows = videoRows().slice(before);
	assert.equal(rows.length, 1, `one billed entry: ${JSON.stringify(rows)}`);
	assert.equal(rows[0].video_seconds, '8');
	assert.equal(rows[0].amount, (8 * PRICE_MICROS / 1e6).toFixed(6));
});

test('videos: another token gets 404 for the job, as for an unknown id', async () => {
	const job = await client().videos.create({ model: 'sora-2', prompt: 'mine', seconds: '4' });
	const other = ctl('token', 'create', '--name', 'video-other', '--models', 'sora-2');
	const key = other.token ?? other.secret ?? other.key;
	assert.ok(typeof key === 'string' && key.length > 0, JSON.stringify(other));
	for (const [k, id] of [[key, job.id], [SWB_TOKEN, 'video_does_not_exist']]) {
		await assert.rejects(client(k).videos.retrieve(id), (e) => {
			assert.equal(e.status, 404);
			assert.equal(e.error?.type, 'invalid_request_error');
			assert.equal(e.error?.code, 'not_found');
			return true;
		});
		await assert.rejects(client(k).videos.downloadContent(id), (e) => e.status === 404);
	}
	// The owner still sees it.
	assert.equal((await client().videos.retrieve(job.id)).id, job.id);
});

test('videos: a failed job is voided, never billed', async () => {
	const c = client();
	const before = ledgerRows().filter((r) => r.model === 'sora-2' &&
		Number(r.video_seconds) > 0).length;
	const job = await c.videos.create({ model: 'sora-2', prompt: 'please [[mock:fail]]',
		seconds: '12' });
	const v = await until(async () => {
		const r = await c.videos.retrieve(job.id);
		return r.status === 'failed' ? r : null;
	});
	assert.equal(v.error?.code, 'video_generation_failed');
	await new Promise((r) => setTimeout(r, 1000));
	const after = ledgerRows().filter((r) => r.model === 'sora-2' &&
		Number(r.video_seconds) > 0).length;
	assert.equal(after, before);
});

test('videos: a create whose seconds is not a whole number of seconds is refused before any job', async () => {
	const post = (body) => fetch(`${SWB_URL}/videos`, { method: 'POST',
		headers: { authorization: `Bearer ${SWB_TOKEN}`, 'content-type': 'application/json' },
		body: JSON.stringify(body) });
	for (const seconds of ['abc', '4.5', '', 99999, true, { n: 4 }, '1'.repeat(40)]) {
		const res = await post({ model: 'sora-2', prompt: 'x', seconds });
		assert.equal(res.status, 400, `seconds ${JSON.stringify(seconds)}`);
		assert.equal((await res.json()).error.code, 'invalid_value');
	}
	const res = await post({ prompt: 'x', seconds: '4' });
	assert.equal(res.status, 400);
	assert.equal((await res.json()).error.code, 'missing_model');
});
