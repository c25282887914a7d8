// tests/e2e/gemini.test.mjs — owns the end-to-end tests of Google's
// providers and surface: the official `@google/genai` SDK as the user's
// client on the hub's Gemini surface (generateContent, generateContentStream,
// embedContent — which the SDK sends as batchEmbedContents — on the gemini
// channel; generateContentStream on the vertex channel, whose agent mints an
// access token from its service account), and the `openai` SDK streaming a
// Gemini model as OpenAI chunks with usage, and the Gemini SDK on an OpenAI
// model (both translated).  Asserts what the
// provider mock saw: the official hosts and paths, the channel's credential
// (x-goog-api-key; a Bearer token the token endpoint issued after verifying
// the JWT assertion), never the hub token.  Needs SWB_URL, SWB_TOKEN and
// SWB_DIR from `tests/stack up`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';

const { SWB_URL, SWB_TOKEN, SWB_DIR } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR)
	throw new Error('SWB_URL, SWB_TOKEN and SWB_DIR must be set (run tests/stack up)');
const BASE = SWB_URL.replace(/\/v1$/, '');
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');
const GEMINI_KEY = 'gemini-test-provider-key';
const content = (n) => Array.from({ length: n }, (_, i) => `tok${i} `).join('');
const mockLog = () => fs.readFileSync(MOCK_LOG, 'utf8').split('\n')
	.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const lastUpstream = (pred) => mockLog().filter((e) => !e.event && pred(e)).at(-1);
const genai = () => new GoogleGenAI({ apiKey: SWB_TOKEN, httpOptions: { baseUrl: BASE } });

// What every Gemini call upstream must look like: the channel's key in
// x-goog-api-key, none in the URL, never the hub token.
function assertGeminiUpstream(up, method) {
	assert.ok(up, `the mock saw no ${method} call`);
	assert.equal(up.host, 'generativelanguage.googleapis.com');
	assert.equal(up.headers['x-goog-api-key'], GEMINI_KEY);
	assert.equal(up.auth.ok, true);
	assert.ok(!(up.query ?? '').includes('key='), 'no key in the URL');
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the hub token reached the provider');
}

test('@google/genai generateContent on gemini-2.5-flash (AI Studio)', async () => {
	const r = await genai().models.generateContent({
		model: 'gemini-2.5-flash',
		contents: 'hello [mock chunks=3]',
		config: { systemInstruction: 'be brief', temperature: 0.5 },
	});
	assert.equal(r.text, content(3));
	assert.equal(r.candidates[0].finishReason, 'STOP');
	assert.equal(r.usageMetadata.candidatesTokenCount, 3);
	const up = lastUpstream((e) => e.path === '/v1beta/models/gemini-2.5-flash:generateContent');
	assertGeminiUpstream(up, 'generateContent');
	assert.equal(up.body.systemInstruction.parts[0].text, 'be brief');
});

test('@google/genai generateContentStream on gemini-2.5-flash: SSE chunks, usage on the last', async () => {
	const stream = await genai().models.generateContentStream({
		model: 'gemini-2.5-flash', contents: 'stream please [mock chunks=4 delay=10]',
	});
	const chunks = [];
	for await (const c of stream)
		chunks.push(c);
	assert.equal(chunks.length, 4);
	assert.equal(chunks.map((c) => c.text).join(''), content(4));
	assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
	assert.equal(chunks.at(-1).usageMetadata.candidatesTokenCount, 4);
	const up = lastUpstream((e) => e.path === '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
	assertGeminiUpstream(up, 'streamGenerateContent');
	assert.equal(up.query, '?alt=sse');
});

test('@google/genai embedContent on gemini-embedding-001 (sent as batchEmbedContents)', async () => {
	const r = await genai().models.embedContent({
		model: 'gemini-embedding-001', contents: ['first text', 'second text'],
	});
	assert.equal(r.embeddings.length, 2);
	assert.equal(r.embeddings[0].values.length, 8);
	assert.notDeepEqual(r.embeddings[0].values, r.embeddings[1].values);
	const up = lastUpstream((e) => e.path === '/v1beta/models/gemini-embedding-001:batchEmbedContents');
	assertGeminiUpstream(up, 'batchEmbedContents');
	assert.equal(up.body.requests.length, 2);
});

test('@google/genai generateContentStream on gemini-2.5-pro through Vertex: a minted access token, never the hub token', async () => {
	const stream = await genai().models.generateContentStream({
		model: 'gemini-2.5-pro', contents: 'vertex [mock chunks=3 delay=10]',
	});
	let text = '', last;
	for await (const c of stream) {
		text += c.text ?? '';
		last = c;
	}
	assert.equal(text, content(3));
	assert.equal(last.usageMetadata.candidatesTokenCount, 3);
	const log = mockLog();
	const up = log.filter((e) => !e.event && e.provider === 'vertex').at(-1);
	assert.ok(up, 'no Vertex call');
	assert.equal(up.host, 'us-central1-aiplatform.googleapis.com');
	assert.equal(up.path, '/v1/projects/swb-test/locations/us-central1/publishers/google/models/' +
		'gemini-2.5-pro:streamGenerateContent');
	assert.equal(up.query, '?alt=sse');
	assert.equal(up.auth.ok, true, 'the Bearer token is one the token endpoint issued');
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the hub token reached Vertex');
	// The token came from a verified JWT exchange with the channel's
	// service account.
	const bearer = /^Bearer (\S+)$/.exec(up.headers.authorization)[1];
	const issued = log.filter((e) => e.event === 'token_issued' && e.token === bearer);
	assert.equal(issued.length, 1, 'the Bearer token was issued by the mock\'s token endpoint');
	assert.equal(issued[0].iss, 'switchboard-test@swb-test.iam.gserviceaccount.com');
	assert.equal(issued[0].aud, 'https://oauth2.googleapis.com/token');
	assert.equal(issued[0].scope, 'https://www.googleapis.com/auth/cloud-platform');
	assert.ok(issued[0].exp - issued[0].iat <= 3600);
	const exch = log.filter((e) => !e.event && e.provider === 'google-oauth');
	assert.ok(exch.length >= 1 && exch.every((e) => e.path === '/token' && e.method === 'POST'));
	assert.ok(exch.every((e) => !JSON.stringify(e).includes(SWB_TOKEN)));
	assert.equal(log.filter((e) => e.event === 'token_refused').length, 0);
});

test('the hub token as ?key= works and is refused in Google\'s error shape when wrong', async () => {
	const url = `${BASE}/v1beta/models/gemini-2.5-flash:generateContent`;
	const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'q [mock chunks=1]' }] }] });
	let r = await fetch(`${url}?key=${SWB_TOKEN}`, { method: 'POST', body,
		headers: { 'content-type': 'application/json' } });
	assert.equal(r.status, 200);
	assert.equal((await r.json()).candidates[0].content.parts[0].text, 'tok0 ');
	r = await fetch(`${url}?key=sk-not-a-token`, { method: 'POST', body,
		headers: { 'content-type': 'application/json' } });
	assert.equal(r.status, 401);
	const e = await r.json();
	assert.equal(e.error.code, 401);
	assert.equal(e.error.status, 'UNAUTHENTICATED');
	assert.equal(typeof e.error.message, 'string');
	// No log line of the hub or the agent shows the token.
	for (const f of fs.readdirSync(SWB_DIR).filter((n) => n.endsWith('.log')))
		assert.ok(!fs.readFileSync(path.join(SWB_DIR, f), 'utf8').includes(SWB_TOKEN), `${f} shows the token`);
});

test('the openai SDK streams gemini-2.5-flash as OpenAI chunks with usage', async () => {
	const client = new OpenAI({ apiKey: SWB_TOKEN, baseURL: SWB_URL, maxRetries: 0, timeout: 20_000 });
	const stream = await client.chat.completions.create({
		model: 'gemini-2.5-flash', stream: true, stream_options: { include_usage: true },
		messages: [{ role: 'system', content: 'terse' },
			{ role: 'user', content: 'hi [mock chunks=3 delay=10]' }],
	});
	const chunks = [];
	for await (const c of stream)
		chunks.push(c);
	assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), content(3));
	for (const c of chunks) {
		assert.equal(c.object, 'chat.completion.chunk');
		assert.equal(c.model, 'gemini-2.5-flash');
	}
	assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
	assert.deepEqual(chunks.at(-1).choices, []);
	assert.equal(chunks.at(-1).usage.completion_tokens, 3);
	assert.ok(chunks.at(-1).usage.prompt_tokens > 0);
	const up = lastUpstream((e) => e.path === '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
	assertGeminiUpstream(up, 'streamGenerateContent');
	assert.equal(up.body.systemInstruction.parts[0].text, 'terse');
	assert.equal(up.body.contents[0].role, 'user');
	assert.equal(up.body.model, undefined, 'Gemini takes the model from the path');
});

test('@google/genai on gpt-4o-mini: the Gemini surface served by an OpenAI channel (translated both ways)', async () => {
	// generateContent: a history with a function call and its response,
	// a declared function, sampling; the answer comes back as Gemini's.
	const r = await genai().models.generateContent({
		model: 'gpt-4o-mini',
		contents: [
			{ role: 'user', parts: [{ text: 'weather in Paris?' }] },
			{ role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
			{ role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 20 } } }] },
			{ role: 'user', parts: [{ text: 'so? [mock chunks=3]' }] },
		],
		config: {
			systemInstruction: 'be brief', temperature: 0.5, maxOutputTokens: 100,
			tools: [{ functionDeclarations: [{ name: 'get_weather', description: 'the weather',
				parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] } }] }],
		},
	});
	assert.equal(r.text, content(3));
	assert.equal(r.candidates[0].finishReason, 'STOP');
	assert.equal(r.candidates[0].content.role, 'model');
	assert.equal(r.usageMetadata.candidatesTokenCount, 3);
	assert.ok(r.usageMetadata.promptTokenCount > 0);
	assert.equal(r.usageMetadata.totalTokenCount, r.usageMetadata.promptTokenCount + 3);
	assert.equal(r.modelVersion, 'gpt-4o-mini');
	let up = mockLog().find((e) => !e.event && e.id === r.responseId);
	assert.ok(up, `the mock saw no call answered ${r.responseId}`);
	assert.equal(up.host, 'api.openai.com');
	assert.equal(up.path, '/v1/chat/completions');
	assert.equal(up.auth.ok, true);
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN), 'the hub token reached the provider');
	assert.equal(up.body.model, 'gpt-4o-mini');
	assert.equal(up.body.temperature, 0.5);
	assert.equal(up.body.max_tokens, 100);
	assert.equal(up.body.stream, undefined);
	const m = up.body.messages;
	assert.deepEqual(m.map((x) => x.role), ['system', 'user', 'assistant', 'tool', 'user']);
	assert.equal(m[0].content, 'be brief');
	assert.equal(m[2].tool_calls[0].function.name, 'get_weather');
	assert.deepEqual(JSON.parse(m[2].tool_calls[0].function.arguments), { city: 'Paris' });
	assert.equal(m[3].tool_call_id, m[2].tool_calls[0].id, 'the response answers the call');
	assert.deepEqual(JSON.parse(m[3].content), { temp: 20 });
	assert.deepEqual(up.body.tools[0].function.parameters,
		{ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });

	// generateContentStream: Gemini chunks as the text arrives, the last
	// with finishReason and the usage of OpenAI's usage chunk.
	const stream = await genai().models.generateContentStream({
		model: 'gpt-4o-mini', contents: 'stream please [mock chunks=4 delay=10]',
	});
	const chunks = [];
	for await (const c of stream)
		chunks.push(c);
	assert.equal(chunks.map((c) => c.text ?? '').join(''), content(4));
	assert.equal(chunks.length, 5, 'one chunk per delta and the last');
	for (const c of chunks.slice(0, -1))
		assert.equal(c.candidates[0].finishReason, undefined);
	const last = chunks.at(-1);
	assert.equal(last.candidates[0].finishReason, 'STOP');
	assert.equal(last.usageMetadata.candidatesTokenCount, 4);
	assert.ok(last.usageMetadata.promptTokenCount > 0);
	assert.equal(last.modelVersion, 'gpt-4o-mini');
	up = mockLog().find((e) => !e.event && e.id === last.responseId);
	assert.ok(up, `the mock saw no call answered ${last.responseId}`);
	assert.equal(up.host, 'api.openai.com');
	assert.equal(up.body.stream, true);
	assert.equal(up.body.stream_options.include_usage, true);
	assert.deepEqual(up.body.messages, [{ role: 'user', content: 'stream please [mock chunks=4 delay=10]' }]);
});
