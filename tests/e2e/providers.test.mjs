// tests/e2e/providers.test.mjs — owns the end-to-end tests of the other
// providers behind the OpenAI surface, with the official `openai` SDK as the
// user's client: a Claude model streamed as OpenAI chunks (translated), and
// DeepSeek, Qwen and Azure OpenAI channels (OpenAI-compatible, passed
// through); the Responses API and embeddings on the OpenAI channel; the
// Azure-style deployment path with the SDK's AzureOpenAI client.  Needs
// SWB_URL, SWB_TOKEN and SWB_DIR from `tests/stack up`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { AzureOpenAI } from 'openai';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');
const client = () => new OpenAI({ apiKey: SWB_TOKEN, baseURL: SWB_URL, maxRetries: 0,
	timeout: 20_000 });
const content = (n) => Array.from({ length: n }, (_, i) => `tok${i} `).join('');
const mockLog = () => fs.readFileSync(MOCK_LOG, 'utf8').split('\n')
	.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const upstream = (id) => mockLog().find((e) => !e.event && e.id === id);
const lastUpstream = (pred) => mockLog().filter((e) => !e.event && pred(e)).at(-1);

async function streamText(model, n, extra = {}) {
	const stream = await client().chat.completions.create({
		model, stream: true, stream_options: { include_usage: true },
		messages: [{ role: 'user', content: `hi [mock chunks=${n} delay=10]` }], ...extra,
	});
	const chunks = [];
	for await (const c of stream)
		chunks.push(c);
	return {
		chunks,
		text: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''),
		usage: chunks.at(-1).usage,
	};
}

test('the openai SDK streams claude-sonnet-4-5 as OpenAI chunks with usage', async () => {
	const { chunks, text, usage } = await streamText('claude-sonnet-4-5', 3, {
		messages: [{ role: 'system', content: 'terse' },
			{ role: 'user', content: 'hi [mock chunks=3 delay=10 cache_read=2]' }],
	});
	assert.equal(text, content(3));
	for (const c of chunks) {
		assert.equal(c.object, 'chat.completion.chunk');
		assert.equal(c.model, 'claude-sonnet-4-5');
	}
	assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
	assert.deepEqual(chunks.at(-1).choices, []);
	assert.equal(usage.completion_tokens, 3);
	assert.equal(usage.prompt_tokens_details.cached_tokens, 2,
		'cache reads are counted in prompt_tokens and shown as cached');
	const up = lastUpstream((e) => e.host === 'api.anthropic.com' && e.path === '/v1/messages');
	assert.equal(up.body.system, 'terse', 'the system message became Anthropic\'s system');
	assert.ok(up.body.max_tokens > 0, 'Anthropic requires max_tokens: the hub set one');
	assert.equal(up.body.stream, true);
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN));
});

for (const [model, host, key, pathRe] of [
	['deepseek-chat', 'api.deepseek.com', 'sk-deepseek-test-key', /chat\/completions$/],
	['qwen-plus', 'dashscope.aliyuncs.com', 'sk-qwen-test-key',
		/^\/compatible-mode\/v1\/chat\/completions$/],
	['gpt-4.1', 'swb-test.openai.azure.com', 'azure-test-provider-key',
		/^\/openai\/deployments\/gpt41-deploy\/chat\/completions$/],
]) {
	test(`${model} streams through the hub (${host})`, async () => {
		const { chunks, text, usage } = await streamText(model, 4);
		assert.equal(text, content(4));
		assert.equal(usage.completion_tokens, 4);
		const id = chunks.find((c) => /mock/.test(c.id ?? ''))?.id;
		const up = upstream(id);
		assert.ok(up, `the provider saw ${id}`);
		assert.equal(up.host, host);
		assert.match(up.path, pathRe);
		assert.equal(up.auth.ok, true, 'the channel credential was accepted');
		const cred = up.headers['api-key'] ?? up.headers.authorization;
		assert.ok(cred.endsWith(key), `the channel's key upstream (${up.auth.header})`);
		if (model === 'gpt-4.1')
			assert.match(up.query, /api-version=2024-10-21/);
		assert.ok(!JSON.stringify(up).includes(SWB_TOKEN));
	});
}

test('the AzureOpenAI client on the hub\'s deployment path', async () => {
	const az = new AzureOpenAI({ endpoint: SWB_URL.replace(/\/v1$/, ''), apiKey: SWB_TOKEN,
		apiVersion: '2024-10-21', deployment: 'gpt-4.1', maxRetries: 0 });
	const r = await az.chat.completions.create({ model: 'gpt-4.1',
		messages: [{ role: 'user', content: 'hi [mock chunks=2]' }] });
	assert.equal(r.choices[0].message.content, content(2));
	assert.equal(upstream(r.id).path, '/openai/deployments/gpt41-deploy/chat/completions');
});

test('responses.create, streamed and not, on the OpenAI channel', async () => {
	const r = await client().responses.create({ model: 'gpt-4o-mini', input: 'hi [mock chunks=3]' });
	assert.equal(r.object, 'response');
	assert.equal(r.status, 'completed');
	assert.equal(r.output_text, content(3));
	assert.ok(r.usage.output_tokens === 3);
	const stream = await client().responses.create({ model: 'gpt-4o-mini', stream: true,
		input: 'hi [mock chunks=2 delay=10]' });
	let text = '', last;
	for await (const ev of stream) {
		if (ev.type === 'response.output_text.delta') text += ev.delta;
		last = ev;
	}
	assert.equal(text, content(2));
	assert.equal(last.type, 'response.completed');
	assert.equal(last.response.usage.output_tokens, 2);
});

test('embeddings.create on the OpenAI channel', async () => {
	const r = await client().embeddings.create({ model: 'text-embedding-3-small',
		input: ['one', 'two'] });
	assert.equal(r.data.length, 2);
	assert.ok(r.data[0].embedding.length > 0);
	assert.ok(r.usage.prompt_tokens > 0);
});

test('an operation the model\'s providers cannot do: 400, not a hang or a 502', async () => {
	await assert.rejects(client().embeddings.create({ model: 'claude-haiku-4-5', input: 'x' }),
		(e) => e.status === 400 && e.code === 'unsupported_operation');
});
