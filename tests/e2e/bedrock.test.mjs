// tests/e2e/bedrock.test.mjs — owns the end-to-end tests of AWS Bedrock
// through the hub, with the official @aws-sdk/client-bedrock-runtime as
// the user's client (endpoint at the hub, the hub token as its bearer
// token: the Bedrock API-key scheme): Converse and ConverseStream on
// amazon.nova-lite-v1:0 and InvokeModelWithResponseStream on Claude,
// passed through to the stack's bedrock channel; the provider (the mock)
// must have seen a valid SigV4 signature of the channel's credentials and
// never the hub token.  And the `openai` SDK streaming the Nova model as
// OpenAI chunks with usage (OpenAI chat translated to Converse); and the
// Bedrock SDK's Converse and ConverseStream on gpt-4o-mini (Converse
// translated to OpenAI chat, the stream's chunks to event-stream frames).
// Needs SWB_URL, SWB_TOKEN and SWB_DIR from `tests/stack up`.
//
// The SDK talks HTTP/2 by default; the hub's plain port speaks HTTP/1.1
// (HTTP/2 needs TLS), so the client is given the SDK's HTTP/1.1 handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import {
	BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand,
	InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');
const NOVA = 'amazon.nova-lite-v1:0';
const CLAUDE = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const content = (n) => Array.from({ length: n }, (_, i) => `tok${i} `).join('');
const mockLog = () => fs.readFileSync(MOCK_LOG, 'utf8').split('\n')
	.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const lastUpstream = (pred) => mockLog().filter((e) => !e.event && pred(e)).at(-1);

const bedrock = () => new BedrockRuntimeClient({
	region: 'us-east-1',
	endpoint: SWB_URL.replace(/\/v1\/?$/, ''),
	token: { token: SWB_TOKEN },
	authSchemePreference: ['httpBearerAuth'],
	requestHandler: new NodeHttpHandler(),
	maxAttempts: 1,
});

// The upstream request the mock saw: signed by the channel, no hub token.
function checkUpstream(model, op) {
	const want = `/model/${encodeURIComponent(model)}/${op}`;
	const up = lastUpstream((e) => e.host === 'bedrock-runtime.us-east-1.amazonaws.com' && e.path === want);
	assert.ok(up, `the provider saw ${want}`);
	assert.equal(up.auth.sigv4, 'valid', 'a valid SigV4 signature of the channel\'s credentials');
	assert.match(up.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/bedrock\/aws4_request, /);
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the hub token never reaches the provider');
	return up;
}

test('Converse on amazon.nova-lite-v1:0 through the hub (bearer hub token)', async () => {
	const out = await bedrock().send(new ConverseCommand({
		modelId: NOVA,
		system: [{ text: 'terse' }],
		messages: [{ role: 'user', content: [{ text: 'hi [mock chunks=3 delay=5]' }] }],
		inferenceConfig: { maxTokens: 50 },
	}));
	assert.equal(out.output.message.content[0].text, content(3));
	assert.equal(out.stopReason, 'end_turn');
	assert.equal(out.usage.outputTokens, 3);
	assert.ok(out.usage.inputTokens > 0);
	const up = checkUpstream(NOVA, 'converse');
	assert.equal(up.body.system[0].text, 'terse', 'the body was passed through');
});

test('ConverseStream on amazon.nova-lite-v1:0: event-stream frames relayed', async () => {
	const out = await bedrock().send(new ConverseStreamCommand({
		modelId: NOVA,
		messages: [{ role: 'user', content: [{ text: 'hi [mock chunks=4 delay=5]' }] }],
	}));
	let text = '', stop = null, usage = null, starts = 0;
	for await (const ev of out.stream) {
		if (ev.messageStart) starts++;
		if (ev.contentBlockDelta) text += ev.contentBlockDelta.delta.text;
		if (ev.messageStop) stop = ev.messageStop.stopReason;
		if (ev.metadata) usage = ev.metadata.usage;
	}
	assert.equal(starts, 1);
	assert.equal(text, content(4));
	assert.equal(stop, 'end_turn');
	assert.equal(usage.outputTokens, 4);
	checkUpstream(NOVA, 'converse-stream');
});

test('InvokeModelWithResponseStream on Claude: chunk events relayed', async () => {
	const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 64,
		messages: [{ role: 'user', content: 'hi [mock chunks=3 delay=5]' }] });
	const out = await bedrock().send(new InvokeModelWithResponseStreamCommand({
		modelId: CLAUDE, contentType: 'application/json', accept: 'application/json', body,
	}));
	const events = [];
	for await (const ev of out.body) {
		assert.ok(ev.chunk, `a chunk event, got ${Object.keys(ev)}`);
		events.push(JSON.parse(Buffer.from(ev.chunk.bytes).toString('utf8')));
	}
	assert.equal(events[0].type, 'message_start');
	assert.equal(events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join(''),
		content(3));
	const last = events.at(-1);
	assert.equal(last.type, 'message_stop');
	assert.equal(last['amazon-bedrock-invocationMetrics'].outputTokenCount, 3);
	const up = checkUpstream(CLAUDE, 'invoke-with-response-stream');
	assert.equal(up.body.anthropic_version, 'bedrock-2023-05-31');
});

test('a wrong hub token gets Bedrock\'s error shape', async () => {
	const c = new BedrockRuntimeClient({
		region: 'us-east-1', endpoint: SWB_URL.replace(/\/v1\/?$/, ''),
		token: { token: 'not-a-hub-token' }, authSchemePreference: ['httpBearerAuth'],
		requestHandler: new NodeHttpHandler(), maxAttempts: 1,
	});
	await assert.rejects(c.send(new ConverseCommand({ modelId: NOVA,
		messages: [{ role: 'user', content: [{ text: 'hi' }] }] })), (e) => {
		assert.equal(e.$metadata.httpStatusCode, 401);
		assert.equal(e.name, 'UnrecognizedClientException');
		return true;
	});
});

test('the openai SDK streams amazon.nova-lite-v1:0 as OpenAI chunks with usage', async () => {
	const client = new OpenAI({ apiKey: SWB_TOKEN, baseURL: SWB_URL, maxRetries: 0, timeout: 20_000 });
	const stream = await client.chat.completions.create({
		model: NOVA, stream: true, stream_options: { include_usage: true },
		messages: [{ role: 'system', content: 'terse' },
			{ role: 'user', content: 'hi [mock chunks=3 delay=5]' }],
	});
	const chunks = [];
	for await (const c of stream)
		chunks.push(c);
	for (const c of chunks) {
		assert.equal(c.object, 'chat.completion.chunk');
		assert.equal(c.model, NOVA);
	}
	assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), content(3));
	assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
	assert.deepEqual(chunks.at(-1).choices, []);
	assert.equal(chunks.at(-1).usage.completion_tokens, 3);
	assert.ok(chunks.at(-1).usage.prompt_tokens > 0);
	const up = checkUpstream(NOVA, 'converse-stream');
	assert.equal(up.body.system[0].text, 'terse', 'the system message became Converse\'s system');
	assert.equal(up.body.model, undefined, 'the model is in the path, not the body');
});

test('Converse and ConverseStream on gpt-4o-mini: the Bedrock surface on an OpenAI provider', async () => {
	const GPT = 'gpt-4o-mini';
	const upstream = () => {
		const up = lastUpstream((e) => e.host === 'api.openai.com' && e.path === '/v1/chat/completions');
		assert.ok(up, 'the OpenAI provider saw a chat completion');
		assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the hub token never reaches the provider');
		return up;
	};
	const out = await bedrock().send(new ConverseCommand({
		modelId: GPT,
		system: [{ text: 'terse' }],
		messages: [{ role: 'user', content: [{ text: 'hi [mock chunks=3 delay=5]' }] }],
		inferenceConfig: { maxTokens: 50, temperature: 0.5 },
	}));
	assert.equal(out.output.message.role, 'assistant');
	assert.equal(out.output.message.content[0].text, content(3));
	assert.equal(out.stopReason, 'end_turn');
	assert.equal(out.usage.outputTokens, 3);
	assert.ok(out.usage.inputTokens > 0);
	assert.equal(out.usage.totalTokens, out.usage.inputTokens + 3);
	let up = upstream();
	assert.equal(up.body.model, GPT);
	assert.deepEqual(up.body.messages[0], { role: 'system', content: 'terse' });
	assert.equal(up.body.max_tokens, 50);
	assert.equal(up.body.temperature, 0.5);
	assert.notEqual(up.body.stream, true);

	const st = await bedrock().send(new ConverseStreamCommand({
		modelId: GPT,
		messages: [{ role: 'user', content: [{ text: 'hi [mock chunks=5 delay=5]' }] }],
		inferenceConfig: { maxTokens: 3 },
	}));
	const kinds = [];
	let text = '', stop = null, usage = null;
	for await (const ev of st.stream) {
		kinds.push(Object.keys(ev)[0]);
		if (ev.contentBlockDelta) text += ev.contentBlockDelta.delta.text;
		if (ev.messageStop) stop = ev.messageStop.stopReason;
		if (ev.metadata) usage = ev.metadata.usage;
	}
	assert.equal(kinds[0], 'messageStart');
	assert.deepEqual(kinds.slice(-3), ['contentBlockStop', 'messageStop', 'metadata']);
	assert.equal(kinds.filter((k) => k === 'contentBlockDelta').length, 3, 'one frame per text delta');
	assert.equal(text, content(3));
	assert.equal(stop, 'max_tokens');
	assert.equal(usage.outputTokens, 3);
	assert.ok(usage.inputTokens > 0);
	assert.equal(usage.totalTokens, usage.inputTokens + 3);
	up = upstream();
	assert.equal(up.body.stream, true);
	assert.equal(up.body.stream_options.include_usage, true);
	assert.equal(up.body.max_tokens, 3);

	// the provider's error in Bedrock's shape, its exception name too
	await assert.rejects(bedrock().send(new ConverseCommand({ modelId: GPT,
		messages: [{ role: 'user', content: [{ text: 'hi [mock status=429]' }] }] })), (e) => {
		assert.equal(e.$metadata.httpStatusCode, 429);
		assert.equal(e.name, 'ThrottlingException');
		assert.ok(typeof e.message === 'string' && e.message.length > 0);
		return true;
	});
});
