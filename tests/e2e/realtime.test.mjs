// tests/e2e/realtime.test.mjs — owns the end-to-end test of the Realtime
// API with the official `openai` SDK's OpenAIRealtimeWS (over the `ws`
// package): SDK -> hubd gateway (WebSocket upgrade on the plain port) ->
// tunnel -> agentd -> the provider mock's WebSocket and back.  One session
// asks for two responses: session.created, then per response.create the
// mock's response.created, three text deltas and response.done with usage.
// The session is billed per response: tests/integration/e2e_openai.sh
// checks afterwards that gpt-realtime rows are in both ledgers, identical.
// The SDK always dials wss://; the hub serves Realtime on its plain
// HTTP/1.1 port (SWB_URL), so the test hands `ws` a plain TCP connection
// to it (createConnection): everything above TCP is the SDK's own.
// Needs SWB_URL, SWB_TOKEN, SWB_DIR (tests/stack up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');

function mockLines() {
	return fs.readFileSync(MOCK_LOG, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// The next event of one of the given types (others are collected).
function nextEvent(rt, seen, types, ms = 10000) {
	return new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error(`no ${types} within ${ms} ms; seen ${seen.map((e) => e.type)}`)), ms);
		const on = (ev) => {
			seen.push(ev);
			if (types.includes(ev.type)) {
				clearTimeout(t);
				rt.off('event', on);
				resolve(ev);
			}
		};
		rt.on('event', on);
	});
}

test('realtime session through the hub: deltas and per-response usage', async () => {
	const client = new OpenAI({ apiKey: SWB_TOKEN, baseURL: SWB_URL });
	const hub = new URL(SWB_URL);
	const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: {
		createConnection: () => net.connect(Number(hub.port), hub.hostname) } }, client);
	const seen = [];
	const errors = [];
	rt.on('error', (e) => errors.push(e));
	const created = await nextEvent(rt, seen, ['session.created']);
	assert.equal(created.session.model, 'gpt-realtime');

	for (let i = 1; i <= 2; i++) {
		const before = seen.length;
		rt.send({ type: 'response.create', response: { instructions: `say hello ${i}` } });
		const done = await nextEvent(rt, seen, ['response.done']);
		const mine = seen.slice(before);
		assert.deepEqual(mine.map((e) => e.type), ['response.created', 'response.output_text.delta',
			'response.output_text.delta', 'response.output_text.delta', 'response.done']);
		assert.equal(mine.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''),
			'Hello from realtime');
		assert.equal(done.response.usage.input_tokens, 12 + 2 * (i - 1));
		assert.equal(done.response.usage.output_tokens, 3);
	}
	const closed = new Promise((r) => rt.socket.once('close', (code) => r(code)));
	rt.close();
	assert.equal(await closed, 1000);
	assert.deepEqual(errors, []);

	// The provider saw the channel's key (never the hub token) and the
	// user's close reached it.
	let lines = [];
	for (let i = 0; i < 50; i++) {
		lines = mockLines().filter((l) => l.event && l.event.startsWith('realtime_'));
		if (lines.some((l) => l.event === 'realtime_close')) break;
		await sleep(100);
	}
	const open = lines.find((l) => l.event === 'realtime_open');
	assert.ok(open, 'the mock logged the upgrade');
	assert.equal(open.auth.ok, true);
	assert.equal(open.model, 'gpt-realtime');
	assert.ok(!JSON.stringify(open.headers).includes(SWB_TOKEN), 'the hub token reached the provider');
	const close = lines.find((l) => l.event === 'realtime_close' && l.id === open.id);
	assert.ok(close, 'the provider side was closed');
	assert.equal(close.user_messages, 2);
});
