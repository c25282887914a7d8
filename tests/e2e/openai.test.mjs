// tests/e2e/openai.test.mjs — owns the end-to-end tests with the official
// `openai` npm SDK as the user's client: SDK -> hubd gateway -> tunnel ->
// agentd -> provider mock (tests/mock/openai_mock.mjs, over TLS) and back.
// Needs a running stack: SWB_URL, SWB_TOKEN and SWB_DIR as printed by
// `tests/stack up` (tests/integration/e2e_openai.sh does all of it).
//
// The tests run in order in this one process; the last one scans everything
// the provider saw ($SWB_DIR/mock.jsonl) and everything the client received
// (recorded by the fetch wrapper below) for leaked secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');

const PROVIDER_KEY = 'sk-test-provider-key';	// the agent's key (lib.sh)
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');
const CHAT_PATH = '/v1/chat/completions';

// Everything the client received: status, headers and body of every
// response, the body read from a clone as it arrives (so a stream that is
// aborted still leaves what had come).
const received = [];
async function recordingFetch(url, init) {
	const res = await fetch(url, init);
	const rec = {
		url: String(url), status: res.status,
		headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n'),
		body: '',
	};
	const reader = res.clone().body?.getReader();
	const dec = new TextDecoder();
	rec.done = (async () => {
		if (!reader) return;
		try {
			for (;;) {
				const { done, value } = await reader.read();
				if (done) break;
				rec.body += dec.decode(value, { stream: true });
			}
		} catch { /* aborted: keep what came */ }
	})();
	received.push(rec);
	return res;
}

const client = (apiKey = SWB_TOKEN) => new OpenAI({
	apiKey, baseURL: SWB_URL, maxRetries: 0, timeout: 20_000, fetch: recordingFetch,
});

// The mock's content for n chunks: "tok0 tok1 ... tok{n-1} ".
const content = (n) => Array.from({ length: n }, (_, i) => `tok${i} `).join('');
// Its prompt_tokens: ceil(code points of every message's text / 4), >= 1.
const promptTokens = (msgs) =>
	Math.max(1, Math.ceil(msgs.reduce((a, m) => a + [...m.content].length, 0) / 4));
const user = (text) => [{ role: 'user', content: text }];

function mockLog() {
	let text = '';
	try { text = fs.readFileSync(MOCK_LOG, 'utf8'); } catch { return []; }
	return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}
// The request the provider saw for an answer of id `id` (chatcmpl-mock-N).
const upstreamRequest = (id) => mockLog().find((e) => !e.event && e.id === id);

// Ids (chatcmpl-mock-N) of the provider's answers the client got.
const answerIds = new Set();

// Drain a stream, noting when each chunk arrived (ms since `t0`).
async function drain(stream, t0) {
	const chunks = [];
	for await (const c of stream) {
		chunks.push({ at: performance.now() - t0, c });
		answerIds.add(c.id);
	}
	return chunks;
}

test('non-streaming chat completion: exact content, usage, model echoed', async () => {
	for (const [model, n] of [['gpt-4o-mini', 4], ['gpt-4o', 7]]) {
		const messages = user(`say something [mock chunks=${n} delay=5]`);
		const r = await client().chat.completions.create({ model, messages });
		answerIds.add(r.id);
		assert.equal(r.object, 'chat.completion');
		assert.equal(r.model, model, 'the model is echoed');
		assert.equal(r.choices.length, 1);
		assert.equal(r.choices[0].message.role, 'assistant');
		assert.equal(r.choices[0].message.content, content(n));
		assert.equal(r.choices[0].finish_reason, 'stop');
		assert.ok(r.usage, 'usage present');
		assert.equal(r.usage.completion_tokens, n);
		assert.equal(r.usage.prompt_tokens, promptTokens(messages));
		assert.equal(r.usage.total_tokens, n + promptTokens(messages));
		assert.match(r.id, /^chatcmpl-mock-\d+$/, 'the answer came from the provider');
	}
});

test('streaming without include_usage: exact content, no usage chunk', async () => {
	const n = 5;
	const stream = await client().chat.completions.create({
		model: 'gpt-4o-mini', stream: true, messages: user(`stream please [mock chunks=${n} delay=10]`),
	});
	const chunks = (await drain(stream, performance.now())).map((x) => x.c);
	assert.ok(chunks.length > 0, 'some chunks');
	const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
	assert.equal(text, content(n));
	for (const c of chunks) {
		assert.equal(c.object, 'chat.completion.chunk');
		assert.equal(c.model, 'gpt-4o-mini');
		assert.equal(c.choices.length, 1,
			`every chunk has one choice (no usage-only chunk): ${JSON.stringify(c)}`);
		assert.ok(c.usage == null, `no usage reaches the user: ${JSON.stringify(c)}`);
	}
	assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
	// The hiding is only exercised if the hub did ask the provider for usage.
	const up = upstreamRequest(chunks[0].id);
	assert.ok(up, `the provider saw request ${chunks[0].id}`);
	assert.equal(up.body?.stream_options?.include_usage, true,
		`the hub asks the provider for usage: ${JSON.stringify(up.body)}`);
});

test('streaming with include_usage: the user gets the final usage chunk', async () => {
	const n = 3;
	const messages = user(`with usage [mock chunks=${n} delay=10]`);
	const stream = await client().chat.completions.create({
		model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, messages,
	});
	const chunks = (await drain(stream, performance.now())).map((x) => x.c);
	const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
	assert.equal(text, content(n));
	const usageChunks = chunks.filter((c) => c.usage != null);
	assert.equal(usageChunks.length, 1, 'exactly one usage chunk');
	const last = chunks.at(-1);
	assert.equal(last, usageChunks[0], 'the usage chunk is the last one');
	assert.deepEqual(last.choices, []);
	assert.equal(last.usage.completion_tokens, n);
	assert.equal(last.usage.prompt_tokens, promptTokens(messages));
	assert.equal(last.usage.total_tokens, n + promptTokens(messages));
});

test('streaming is not coalesced: chunks arrive as the provider sends them', async (t) => {
	const n = 6, delay = 150;
	const t0 = performance.now();
	const stream = await client().chat.completions.create({
		model: 'gpt-4o-mini', stream: true, messages: user(`slowly [mock chunks=${n} delay=${delay}]`),
	});
	const all = await drain(stream, t0);
	const total = performance.now() - t0;
	const at = all.filter((x) => x.c.choices[0]?.delta?.content).map((x) => x.at);
	const times = at.map((t) => Math.round(t)).join(', ');
	t.diagnostic(`content chunk arrivals (ms): ${times}; stream end ${Math.round(total)}`);
	assert.equal(at.length, n, `${n} content chunks (arrivals ms: ${times})`);
	for (let i = 1; i < n; i++) {
		assert.ok(at[i] - at[i - 1] >= 0.6 * delay,
			`gap before chunk ${i} is ${Math.round(at[i] - at[i - 1])} ms < ${0.6 * delay} ms ` +
			`(arrivals ms: ${times}, total ${Math.round(total)})`);
	}
	assert.ok(at[0] < total - 2 * delay,
		`first token at ${Math.round(at[0])} ms is not well before the end at ${Math.round(total)} ms`);
});

test('client abort: the provider sees the stream closed within 1 s', async (t) => {
	const ac = new AbortController();
	const stream = await client().chat.completions.create({
		model: 'gpt-4o-mini', stream: true, messages: user('long story [mock chunks=50 delay=200]'),
	}, { signal: ac.signal });
	let id, got = 0, tAbort;
	try {
		for await (const c of stream) {
			id = c.id;
			answerIds.add(id);
			if (c.choices[0]?.delta?.content && ++got === 2) {
				tAbort = Date.now();
				ac.abort();
			}
		}
	} catch (e) {
		// The SDK ends the iteration quietly on an abort; accept a throw too.
		if (!(e instanceof OpenAI.APIUserAbortError) && e?.name !== 'AbortError') throw e;
	}
	assert.ok(tAbort !== undefined, `the stream ended after ${got} content chunks, before the abort`);
	assert.ok(Date.now() - tAbort < 1000, 'the client stopped reading when it aborted');
	assert.match(id, /^chatcmpl-mock-\d+$/);
	const isClose = (e) => e.event === 'client_closed' && e.path === CHAT_PATH && e.id === id;
	let ev;
	while (!(ev = mockLog().find(isClose)) && Date.now() - tAbort < 3000)
		await sleep(50);
	assert.ok(ev, `no client_closed for ${id} in ${MOCK_LOG} within 3 s of the abort`);
	const lag = ev.ts - tAbort;
	t.diagnostic(`client_closed ${lag} ms after the abort, after_chunks=${ev.after_chunks}`);
	assert.ok(lag <= 1000, `client_closed for ${id} came ${lag} ms after the abort (> 1000 ms)`);
	assert.ok(ev.after_chunks < 50, `the provider stopped early (after_chunks=${ev.after_chunks})`);
});

test('bad token: AuthenticationError 401 with an OpenAI-shaped body', async () => {
	const n0 = received.length;
	await assert.rejects(
		client('sk-not-a-valid-token').chat.completions.create({
			model: 'gpt-4o-mini', messages: user('hello'),
		}),
		(e) => {
			assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e?.constructor?.name}: ${e}`);
			assert.equal(e.status, 401);
			assert.equal(typeof e.error?.type, 'string', 'error.type present');
			assert.equal(typeof e.error?.message, 'string', 'error.message present');
			assert.ok(e.error.message.length > 0);
			return true;
		});
	const rec = received.slice(n0).find((r) => r.status === 401);
	await rec.done;
	const body = JSON.parse(rec.body);
	assert.equal(typeof body.error?.type, 'string', `raw body: ${rec.body}`);
	assert.equal(typeof body.error?.message, 'string', `raw body: ${rec.body}`);
});

test('unknown model: 404 model_not_found', async () => {
	await assert.rejects(
		client().chat.completions.create({ model: 'gpt-no-such-model', messages: user('hello') }),
		(e) => {
			assert.ok(e instanceof OpenAI.NotFoundError, `got ${e?.constructor?.name}: ${e}`);
			assert.equal(e.status, 404);
			assert.equal(e.code, 'model_not_found');
			assert.equal(typeof e.error?.message, 'string');
			return true;
		});
});

test('upstream error passthrough: the provider\'s 429 reaches the client', async () => {
	const since = Date.now();
	for (const stream of [false, true]) {
		await assert.rejects(
			client().chat.completions.create({
				model: 'gpt-4o-mini', stream, messages: user(`hello [mock status=429] ${stream}`),
			}),
			(e) => {
				assert.ok(e instanceof OpenAI.RateLimitError, `stream=${stream}: got ${e?.constructor?.name}: ${e}`);
				assert.equal(e.status, 429);
				assert.equal(e.code, 'rate_limit_exceeded', `stream=${stream}: ${JSON.stringify(e.error)}`);
				assert.equal(e.type, 'requests');
				assert.match(e.error.message, /^Rate limit reached for gpt-4o-mini in organization org-mock/);
				return true;
			});
	}
	// It was the provider's answer, not one the hub made up.
	const seen = mockLog().filter((e) => !e.event && e.path === CHAT_PATH && e.ts >= since - 5 &&
		/\[mock status=429\]/.test(JSON.stringify(e.body)));
	assert.equal(seen.length, 2, 'both requests reached the provider');
});

test('GET /v1/models lists gpt-4o-mini and gpt-4o', async () => {
	const ids = [];
	for await (const m of client().models.list()) {
		assert.equal(m.object, 'model');
		ids.push(m.id);
	}
	assert.ok(ids.includes('gpt-4o-mini'), `models: ${ids}`);
	assert.ok(ids.includes('gpt-4o'), `models: ${ids}`);
});

// Last: everything above is in the provider's log and in `received`.
test('secrets: the hub token never reaches the provider, the provider key never reaches the user', async () => {
	await Promise.all(received.map((r) => r.done));
	const raw = fs.readFileSync(MOCK_LOG, 'utf8');
	const secret = SWB_TOKEN.replace(/^sk-/, '');
	assert.ok(secret.length >= 16);
	assert.ok(!raw.includes(secret), `the user's hub token appears in ${MOCK_LOG}`);

	const chats = mockLog().filter((e) => !e.event && e.method === 'POST' && e.path === CHAT_PATH);
	const seen = new Set(chats.map((e) => e.id));
	assert.ok(answerIds.size > 0, `the tests got ${answerIds.size} answers`);
	for (const id of answerIds)
		assert.ok(seen.has(id), `answer ${id} has no request in ${MOCK_LOG}`);
	for (const e of chats)
		assert.equal(e.headers.authorization, `Bearer ${PROVIDER_KEY}`,
			`upstream request ${e.id} carried authorization ${JSON.stringify(e.headers.authorization)}`);

	assert.ok(received.length >= 10, `recorded ${received.length} responses`);
	assert.ok(received.some((r) => r.body.includes('tok0 ')), 'the recorder saw the bodies');
	for (const r of received) {
		assert.ok(!r.headers.includes(PROVIDER_KEY), `provider key in the headers of ${r.url}`);
		assert.ok(!r.body.includes(PROVIDER_KEY), `provider key in the body of ${r.url}`);
	}
});
