// tests/e2e/anthropic.test.mjs — owns the end-to-end tests with the official
// `@anthropic-ai/sdk` as the user's client: the hub's Anthropic surface
// (/v1/messages, /v1/messages/count_tokens) on a Claude model served by the
// stack's Anthropic channel (passthrough) and on an OpenAI model (translated
// both ways), with the hub token as the SDK's API key.  Needs SWB_URL,
// SWB_TOKEN and SWB_DIR from `tests/stack up` (tests/integration/e2e_openai.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');
const BASE = SWB_URL.replace(/\/v1$/, '');	// the SDK adds /v1 itself
const ANTHROPIC_KEY = 'sk-ant-test-provider-key';	// the channel's (DESIGN.md)
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');

const client = (apiKey = SWB_TOKEN) =>
	new Anthropic({ apiKey, baseURL: BASE, maxRetries: 0, timeout: 20_000 });
const content = (n) => Array.from({ length: n }, (_, i) => `tok${i} `).join('');
const mockLog = () => fs.readFileSync(MOCK_LOG, 'utf8').split('\n')
	.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const upstream = (id) => mockLog().find((e) => !e.event && e.id === id);

// What the provider saw for an Anthropic answer: its host and the channel's
// key, never the user's hub token anywhere in what was sent.
function assertUpstreamAnthropic(msgId) {
	const up = upstream(msgId);
	assert.ok(up, `the provider saw ${msgId}`);
	assert.equal(up.host, 'api.anthropic.com');
	assert.equal(up.path, '/v1/messages');
	assert.equal(up.headers['x-api-key'], ANTHROPIC_KEY, 'the channel key upstream');
	assert.ok(up.headers['anthropic-version'], 'anthropic-version passed on');
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the user token never reaches the provider');
	return up;
}

test('messages.create, not streamed, on claude-haiku-4-5 (native)', async () => {
	const r = await client().messages.create({
		model: 'claude-haiku-4-5', max_tokens: 64,
		messages: [{ role: 'user', content: 'hello [mock chunks=3]' }],
	});
	assert.equal(r.type, 'message');
	assert.equal(r.role, 'assistant');
	assert.equal(r.model, 'claude-haiku-4-5');
	assert.equal(r.content[0].type, 'text');
	assert.equal(r.content[0].text, content(3));
	assert.equal(r.stop_reason, 'end_turn');
	assert.equal(r.usage.output_tokens, 3);
	assert.ok(r.usage.input_tokens >= 1);
	assertUpstreamAnthropic(r.id);
});

test('messages.create streamed: deltas arrive as sent, usage at the end', async () => {
	const t0 = performance.now();
	const stream = await client().messages.create({
		model: 'claude-haiku-4-5', max_tokens: 64, stream: true,
		messages: [{ role: 'user', content: 'stream [mock chunks=4 delay=150 cache_read=7 cache_write=3]' }],
	});
	const seen = [];
	let id, usageOut, stop, startUsage;
	for await (const ev of stream) {
		if (ev.type === 'message_start') { id = ev.message.id; startUsage = ev.message.usage; }
		if (ev.type === 'content_block_delta')
			seen.push({ at: performance.now() - t0, text: ev.delta.text });
		if (ev.type === 'message_delta') { usageOut = ev.usage.output_tokens; stop = ev.delta.stop_reason; }
	}
	assert.equal(seen.map((s) => s.text).join(''), content(4));
	// 150 ms between the provider's deltas: they reached the user one by
	// one, not all at once at the end.
	assert.ok(seen[3].at - seen[0].at > 300,
		`deltas spread over time: ${seen.map((s) => Math.round(s.at)).join(',')}`);
	assert.equal(usageOut, 4);
	assert.equal(stop, 'end_turn');
	assert.equal(startUsage.cache_read_input_tokens, 7);
	assert.equal(startUsage.cache_creation_input_tokens, 3);
	assertUpstreamAnthropic(id);
});

test('a tool-use round trip', async () => {
	const tools = [{
		name: 'lookup', description: 'look something up',
		input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
	}];
	const first = await client().messages.create({
		model: 'claude-haiku-4-5', max_tokens: 64, tools,
		messages: [{ role: 'user', content: 'use the tool [mock tool=1 chunks=1]' }],
	});
	assert.equal(first.stop_reason, 'tool_use');
	const use = first.content.find((b) => b.type === 'tool_use');
	assert.ok(use, `a tool_use block: ${JSON.stringify(first.content)}`);
	assert.equal(use.name, 'lookup');
	assert.deepEqual(use.input, { q: 'mock' });
	const second = await client().messages.create({
		model: 'claude-haiku-4-5', max_tokens: 64, tools,
		messages: [
			{ role: 'user', content: 'use the tool [mock tool=1 chunks=1]' },
			{ role: 'assistant', content: first.content },
			{ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'found it' }] },
		],
	});
	assert.equal(second.stop_reason, 'end_turn');
	assert.match(second.content[0].text, /^tok0 /);
	const up = assertUpstreamAnthropic(second.id);
	assert.equal(up.body.messages[2].content[0].type, 'tool_result', 'the tool result went upstream');
	assert.equal(up.body.messages[2].content[0].tool_use_id, use.id);
});

test('messages.countTokens', async () => {
	const r = await client().messages.countTokens({
		model: 'claude-haiku-4-5',
		messages: [{ role: 'user', content: 'count these words please' }],
	});
	assert.equal(r.input_tokens, Math.ceil('count these words please'.length / 4));
	const up = mockLog().filter((e) => !e.event && e.path === '/v1/messages/count_tokens').at(-1);
	assert.equal(up.headers['x-api-key'], ANTHROPIC_KEY);
});

test('the Anthropic SDK on gpt-4o-mini gets an Anthropic-shaped answer', async () => {
	const r = await client().messages.create({
		model: 'gpt-4o-mini', max_tokens: 64, system: 'be brief',
		messages: [{ role: 'user', content: 'hi [mock chunks=2]' }],
	});
	assert.equal(r.type, 'message');
	assert.equal(r.content[0].text, content(2));
	assert.equal(r.stop_reason, 'end_turn');
	assert.equal(r.usage.output_tokens, 2);
	const up = mockLog().filter((e) => !e.event && e.host === 'api.openai.com' &&
		e.path === '/v1/chat/completions').at(-1);
	assert.equal(up.body.messages[0].role, 'system', 'the system prompt became a system message');
	assert.equal(up.body.messages[0].content, 'be brief');
	assert.equal(up.body.max_tokens, 64);

	// ... and streamed.
	const stream = await client().messages.create({
		model: 'gpt-4o-mini', max_tokens: 64, stream: true,
		messages: [{ role: 'user', content: 'hi [mock chunks=3 delay=20]' }],
	});
	let text = '', types = [], outTokens;
	for await (const ev of stream) {
		types.push(ev.type);
		if (ev.type === 'content_block_delta') text += ev.delta.text;
		if (ev.type === 'message_delta') outTokens = ev.usage.output_tokens;
	}
	assert.equal(text, content(3));
	assert.equal(types[0], 'message_start');
	assert.equal(types.at(-1), 'message_stop');
	assert.equal(outTokens, 3);
});

test('errors come in Anthropic\'s shape', async () => {
	await assert.rejects(client('sk-not-a-token').messages.create({
		model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }],
	}), (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 &&
		e.error?.type === 'error' && e.error?.error?.type === 'authentication_error');
	await assert.rejects(client().messages.create({
		model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }],
	}), (e) => e instanceof Anthropic.NotFoundError && e.error?.error?.type === 'not_found_error');
});
