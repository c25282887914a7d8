// tests/mock/openai_mock.mjs — owns the test double of OpenAI's HTTP API
// (chat completions, streaming and not, models, moderations) that the
// integration tests put behind agentd.  It speaks OpenAI's documented wire
// format over TLS (HTTP/2 via ALPN, HTTP/1.1 as fall-back), makes its replies
// deterministic, lets each request choose its timing and failure mode, and
// appends every request it sees to a JSON-lines log the tests inspect.
// Node.js 20, built-in modules only.  See tests/mock/README.md for the knobs.
//
//   node tests/mock/openai_mock.mjs --cert C --key K [--port 0] [--log FILE]
//        [--host 127.0.0.1] [--keys k1,k2] [--models m1,m2] [--chunks 8]
//        [--delay-ms 20] [--moderation-words w1,w2] [--stamp]
//
// --stamp: each chat stream chunk's system_fingerprint is `fp_t` and the
// monotonic clock in microseconds when it was made (the bench's client
// subtracts it from its arrival: the time the path took, free of the
// mock's own stalls).
// Prints exactly one line, `listening PORT`, on stdout once it accepts
// connections; diagnostics go to stderr.  SIGTERM/SIGINT exit 0.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';

// ---------------------------------------------------------------- options

function usage(msg) {
	if (msg) process.stderr.write(`openai_mock: ${msg}\n`);
	process.stderr.write(
		'usage: openai_mock.mjs --cert PEM --key PEM [--port N] [--host ADDR] [--log FILE]\n' +
		'       [--keys k1,k2] [--models m1,m2] [--chunks N] [--delay-ms MS]\n' +
		'       [--moderation-words w1,w2] [--stamp]\n');
	process.exit(2);
}

let args;
try {
	args = parseArgs({
		options: {
			cert: { type: 'string' },
			key: { type: 'string' },
			port: { type: 'string', default: '0' },
			host: { type: 'string', default: '127.0.0.1' },
			log: { type: 'string' },
			keys: { type: 'string', default: 'sk-test-provider-key' },
			models: { type: 'string', default: 'gpt-4o-mini,gpt-4o' },
			chunks: { type: 'string', default: '8' },
			'delay-ms': { type: 'string', default: '20' },
			stamp: { type: 'boolean', default: false },
			'moderation-words': { type: 'string', default: '' },
			// The other providers (recognised by the Host header):
			'anthropic-keys': { type: 'string', default: 'sk-ant-test-provider-key' },
			'anthropic-models': { type: 'string', default: 'claude-sonnet-4-5,claude-haiku-4-5' },
			'azure-keys': { type: 'string', default: 'azure-test-provider-key' },
			'azure-deployments': { type: 'string', default: 'gpt41-deploy=gpt-4.1' },
			'deepseek-keys': { type: 'string', default: 'sk-deepseek-test-key' },
			'deepseek-models': { type: 'string', default: 'deepseek-chat,deepseek-reasoner' },
			'qwen-keys': { type: 'string', default: 'sk-qwen-test-key' },
			'qwen-models': { type: 'string', default: 'qwen-plus' },
			// Google: Gemini (AI Studio), Vertex AI and its OAuth token endpoint
			'gemini-keys': { type: 'string', default: 'gemini-test-provider-key' },
			'gemini-models': { type: 'string', default: 'gemini-2.5-flash,gemini-embedding-001' },
			'vertex-models': { type: 'string', default: 'gemini-2.5-pro' },
			'vertex-sa': { type: 'string' },
			'vertex-expires-in': { type: 'string', default: '3599' },
			help: { type: 'boolean', short: 'h' },
		},
		strict: true,
		allowPositionals: false,
	}).values;
} catch (e) {
	usage(e.message);
}
if (args.help) usage();
if (!args.cert || !args.key) usage('--cert and --key are required');

// A comma-separated list, blanks dropped.
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
// A non-negative integer option, or exit with a usage error.
function intOpt(name, max) {
	const v = Number(args[name]);
	if (!Number.isInteger(v) || v < 0 || v > max) usage(`--${name}: want an integer 0..${max}`);
	return v;
}

const MAX_CHUNKS = 100000;          // caps on per-request knobs, so a bad
const MAX_DELAY_MS = 10 * 60 * 1000;  // directive cannot wedge the mock
const MAX_BODY = 32 * 1024 * 1024;  // request bodies above this get a 413

const cfg = {
	port: intOpt('port', 65535),
	host: args.host,
	log: args.log || null,
	keys: new Set(list(args.keys)),
	models: list(args.models),
	chunks: intOpt('chunks', MAX_CHUNKS),
	delayMs: intOpt('delay-ms', MAX_DELAY_MS),
	stamp: !!args.stamp,
	modWords: list(args['moderation-words']).map((w) => w.toLowerCase()),
	anthropicKeys: new Set(list(args['anthropic-keys'])),
	anthropicModels: list(args['anthropic-models']),
	azureKeys: new Set(list(args['azure-keys'])),
	// deployment -> the model it runs
	azureDeployments: new Map(list(args['azure-deployments']).map((d) => {
		const [dep, model] = d.split('=');
		return [dep, model || dep];
	})),
	deepseekKeys: new Set(list(args['deepseek-keys'])),
	deepseekModels: list(args['deepseek-models']),
	qwenKeys: new Set(list(args['qwen-keys'])),
	qwenModels: list(args['qwen-models']),
	geminiKeys: new Set(list(args['gemini-keys'])),
	geminiModels: list(args['gemini-models']),
	vertexModels: list(args['vertex-models']),
	vertexExpiresIn: intOpt('vertex-expires-in', 86400),
	vertexSa: null,     // { email, key: KeyObject } once --vertex-sa is read
};

// --vertex-sa FILE: a service-account JSON (its private key's public half
// checks the signatures; client_email the issuer) or a public key PEM
// (then any issuer ending in .iam.gserviceaccount.com is taken).
if (args['vertex-sa']) {
	try {
		const text = fs.readFileSync(args['vertex-sa'], 'utf8');
		if (text.trimStart().startsWith('{')) {
			const sa = JSON.parse(text);
			cfg.vertexSa = { email: sa.client_email, key: crypto.createPublicKey(sa.private_key) };
		} else {
			cfg.vertexSa = { email: null, key: crypto.createPublicKey(text) };
		}
	} catch (e) {
		usage(`--vertex-sa: ${e.message}`);
	}
}

// Fixed "created" stamps for /v1/models, so the listing is deterministic.
const MODEL_CREATED = { 'gpt-4o': 1715367049, 'gpt-4o-mini': 1721172741 };
const SYSTEM_FINGERPRINT = 'fp_mock0000';

// ---------------------------------------------------------------- request log

// One JSON object per line, appended synchronously so a test that reads the
// file right after getting its response always finds the line.
function logLine(obj) {
	if (!cfg.log) return;
	try {
		fs.appendFileSync(cfg.log, JSON.stringify(obj) + '\n');
	} catch (e) {
		process.stderr.write(`openai_mock: cannot write log: ${e.message}\n`);
	}
}

// Request headers as logged: every header, names lowercased (Node already
// does that).  HTTP/2 pseudo-headers are dropped; :authority becomes host.
function loggedHeaders(h) {
	const out = {};
	for (const [k, v] of Object.entries(h)) {
		if (k.startsWith(':')) continue;
		out[k.toLowerCase()] = v;
	}
	if (out.host === undefined && typeof h[':authority'] === 'string') out.host = h[':authority'];
	return out;
}

// ---------------------------------------------------------------- helpers

let seq = 0;                          // numbers requests: ids and request-ids
const nowS = () => Math.floor(Date.now() / 1000);

// OpenAI's error envelope.
const errorBody = (message, type, code = null, param = null) =>
	({ error: { message, type, param, code } });

// The error body OpenAI sends for a given HTTP status (used by x-mock-status).
function statusError(status, model) {
	switch (status) {
	case 400: return errorBody('Mock: the request was rejected (forced 400).', 'invalid_request_error');
	case 401: return errorBody('Incorrect API key provided: (forced by mock).', 'invalid_request_error', 'invalid_api_key');
	case 403: return errorBody('You are not allowed to perform this request (forced 403).', 'invalid_request_error', 'permission_denied');
	case 404: return errorBody(`The model \`${model || 'unknown'}\` does not exist or you do not have access to it.`,
		'invalid_request_error', 'model_not_found');
	case 429: return errorBody(`Rate limit reached for ${model || 'default'} in organization org-mock on requests per min (RPM): ` +
		'Limit 3, Used 3, Requested 1. Please try again in 1s.', 'requests', 'rate_limit_exceeded');
	case 500: return errorBody('The server had an error while processing your request. Sorry about that!', 'server_error');
	case 502: return errorBody('Bad gateway.', 'server_error');
	case 503: return errorBody('The engine is currently overloaded, please try again later.', 'server_error');
	default:
		return status >= 500
			? errorBody(`The server had an error (forced ${status}).`, 'server_error')
			: errorBody(`The request failed (forced ${status}).`, 'invalid_request_error');
	}
}

// "sk-test-provider-key" -> "sk-t************-key": what OpenAI echoes back.
function maskKey(k) {
	if (k.length <= 8) return '*'.repeat(k.length);
	return k.slice(0, 4) + '*'.repeat(k.length - 8) + k.slice(-4);
}

// The text of a message "content": a string, or an array of parts of which
// the {type:"text", text} ones count.  Anything else has no text.
function contentText(c) {
	if (typeof c === 'string') return c;
	if (Array.isArray(c)) {
		return c.map((p) => (p && typeof p === 'object' && typeof p.text === 'string' ? p.text : ''))
			.join('');
	}
	return '';
}

// Token-count rule for prompts: Unicode code points of every message's text
// content, summed, divided by 4, rounded up, at least 1.
function promptTokens(messages) {
	let chars = 0;
	for (const m of messages) {
		if (m && typeof m === 'object') chars += [...contentText(m.content)].length;
	}
	return Math.max(1, Math.ceil(chars / 4));
}

// Directives in request text: `[mock chunks=3 delay=50 status=500]` for chat
// completions, `[mock-mod status=503 delay=2000]` for moderations (a separate
// tag, so a chat directive that the gateway also sends to moderation does not
// fail the moderation call too).  Keys are case-insensitive; values are
// integers; later keys win.  Returns { key: number }.
const DIRECTIVE_KEYS = {
	chunks: 'chunks', delay: 'delay', delay_ms: 'delay', 'delay-ms': 'delay',
	status: 'status', fail_after: 'failAfter', 'fail-after': 'failAfter', fail: 'failAfter',
	first: 'first', first_delay: 'first', 'first-delay': 'first',
	retry_after: 'retryAfter', 'retry-after': 'retryAfter',
	drop_reused: 'dropReused', 'drop-reused': 'dropReused',
	idle_close: 'idleClose', 'idle-close': 'idleClose',
	// Used by the other providers' handlers (read from the directive itself):
	cache_read: 'cacheRead', 'cache-read': 'cacheRead',
	cache_write: 'cacheWrite', 'cache-write': 'cacheWrite',
	tool: 'tool', sse_error: 'sseError', 'sse-error': 'sseError',
	keepalive: 'keepalive', 'keep-alive': 'keepalive',
};
function parseDirectives(text, tag) {
	const out = {};
	if (typeof text !== 'string' || text.indexOf('[' + tag) < 0) return out;
	const re = new RegExp(`\\[${tag}((?:\\s+[A-Za-z_-]+=-?\\d+)*)\\s*\\]`, 'g');
	for (const m of text.matchAll(re)) {
		for (const kv of m[1].trim().split(/\s+/).filter(Boolean)) {
			const [k, v] = kv.split('=');
			const name = DIRECTIVE_KEYS[k.toLowerCase()];
			if (name) out[name] = Number(v);
		}
	}
	return out;
}

// The per-request knobs: header x-mock-* beats a text directive beats the
// command line.  Out-of-range values are ignored.
const HEADER_KNOBS = {
	chunks: 'x-mock-chunks', delay: 'x-mock-delay-ms', status: 'x-mock-status',
	failAfter: 'x-mock-fail-after', first: 'x-mock-first-delay-ms',
	retryAfter: 'x-mock-retry-after',
};
const KNOB_RANGE = {
	chunks: [0, MAX_CHUNKS], delay: [0, MAX_DELAY_MS], status: [400, 599],
	failAfter: [0, MAX_CHUNKS], first: [0, MAX_DELAY_MS], retryAfter: [0, 86400],
};
function knobs(headers, directive, defaults) {
	const k = { ...defaults };
	const ok = (name, v) => Number.isInteger(v) && v >= KNOB_RANGE[name][0] && v <= KNOB_RANGE[name][1];
	for (const name of Object.keys(HEADER_KNOBS)) {
		const d = directive[name];
		if (ok(name, d)) k[name] = d;
		const hv = headers[HEADER_KNOBS[name]];
		if (typeof hv === 'string' && /^\s*\d+\s*$/.test(hv) && ok(name, Number(hv))) k[name] = Number(hv);
	}
	return k;
}

// ---------------------------------------------------------------- per-request context

// Wraps one request/response pair: knows whether the client went away,
// sends JSON/SSE, and can break the connection on purpose.
class Exchange {
	constructor(req, res, path) {
		this.req = req;
		this.res = res;
		this.path = path;
		this.h2 = req.httpVersionMajor === 2;
		this.n = ++seq;
		this.prior = 0;	// requests its connection carried before (handle)
		this.t0 = Date.now();
		this.id = null;           // chatcmpl-/modr- id, when there is one
		this.chunksSent = 0;      // content chunks written so far (streams)
		this.done = false;        // response fully handed to Node
		this.failed = false;      // we broke the connection ourselves
		this.flushed = null;      // settles when the last SSE write is out
		this.closed = false;      // the client went away first
		this.full = false;        // the last write filled Node's buffer
		this.writes = 0;          // events written (streams)
		this.abort = new AbortController();
		res.on('close', () => this.onClose());
		res.on('error', () => {});
	}

	// The response's stream closed.  If we had not finished, the client left:
	// stop any timers and, once past the request-log line, record it.
	onClose() {
		if (this.done || this.failed || this.closed) return;
		this.closed = true;
		this.abort.abort();
		if (this.logged) {
			logLine({ ts: Date.now(), event: 'client_closed', path: this.path, id: this.id,
				after_chunks: this.chunksSent });
		}
	}

	get gone() { return this.closed || this.failed || this.done; }

	// Sleep ms, returning false if the client left meanwhile.
	async wait(ms) {
		if (this.gone) return false;
		if (ms > 0) {
			try {
				await sleep(ms, undefined, { signal: this.abort.signal });
			} catch {
				return false;
			}
		}
		return !this.gone;
	}

	// Headers every OpenAI response carries (static rate-limit figures).
	baseHeaders(extra = {}) {
		return {
			'x-request-id': `req_mock_${this.n}`,
			'openai-version': '2020-10-01',
			'openai-organization': 'org-mock',
			'openai-processing-ms': String(Date.now() - this.t0),
			'x-ratelimit-limit-requests': '10000',
			'x-ratelimit-remaining-requests': '9999',
			'x-ratelimit-reset-requests': '6ms',
			'x-ratelimit-limit-tokens': '10000000',
			'x-ratelimit-remaining-tokens': '9999000',
			'x-ratelimit-reset-tokens': '6ms',
			...extra,
		};
	}

	sendJson(status, obj, extra = {}) {
		if (this.gone) return;
		const body = JSON.stringify(obj);
		this.res.writeHead(status, this.baseHeaders({
			'content-type': 'application/json',
			'content-length': String(Buffer.byteLength(body)),
			...extra,
		}));
		this.done = true;
		this.res.end(body);
	}

	sendError(status, obj, retryAfter) {
		const extra = {};
		if (status === 429) {
			extra['retry-after'] = String(retryAfter ?? 1);
			extra['x-ratelimit-remaining-requests'] = '0';
		} else if (retryAfter !== undefined) {
			extra['retry-after'] = String(retryAfter);
		}
		this.sendJson(status, obj, extra);
	}

	// Start an SSE response.
	startEvents() {
		if (this.gone) return;
		this.res.writeHead(200, this.baseHeaders({
			'content-type': 'text/event-stream; charset=utf-8',
			'cache-control': 'no-cache',
		}));
	}

	// One SSE event per write, so each is its own chunk/DATA frame.
	// Remembers the last write's completion, so fail() can let it out first.
	event(data) {
		if (this.gone) return;
		this.flushed = new Promise((resolve) => {
			if (!this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`, () => resolve()))
				this.full = true;
		});
	}

	// An SSE event with a name (Anthropic's streams): `event: NAME` first.
	namedEvent(name, data) {
		if (this.gone) return;
		this.flushed = new Promise((resolve) => {
			this.res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`, () => resolve());
		});
	}

	// An SSE comment line (DeepSeek's `: keep-alive` while a request queues).
	comment(text) {
		if (this.gone) return;
		this.res.write(`: ${text}\n\n`);
	}

	// Wait while Node's buffer for this response is full (the client
	// reads slowly or not at all); false if the client left meanwhile.
	// Also lets other connections in now and then when delay is 0.
	async drain() {
		if (this.gone) return false;
		if (this.full) {
			this.full = false;
			await new Promise((resolve) => {
				const done = () => {
					this.res.off('drain', done);
					this.abort.signal.removeEventListener('abort', done);
					resolve();
				};
				this.res.on('drain', done);
				this.abort.signal.addEventListener('abort', done);
			});
		} else if (++this.writes % 256 === 0) {
			await new Promise((resolve) => setImmediate(resolve));
		}
		return !this.gone;
	}

	endEvents() {
		if (this.gone) return;
		this.done = true;
		this.res.end();
	}

	// Break the exchange abruptly: HTTP/1.1 loses its TCP connection;
	// HTTP/2 gets RST_STREAM(INTERNAL_ERROR) on this stream only, so other
	// requests multiplexed on the same connection are unaffected.  Events
	// already written are let out first, so the client does see them.
	async fail() {
		if (this.gone) return;
		this.failed = true;
		logLine({ ts: Date.now(), event: 'mock_failed', path: this.path, id: this.id,
			after_chunks: this.chunksSent });
		if (this.flushed) {
			await Promise.race([this.flushed, sleep(1000)]);
			await new Promise((r) => setImmediate(r));
		}
		if (this.h2 && this.res.stream) {
			this.res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
		} else {
			(this.req.socket || this.res.socket)?.destroy();
		}
	}
}

// Reads the whole request body.  Resolves { raw: Buffer, aborted, tooLarge }.
function readBody(req) {
	return new Promise((resolve) => {
		const parts = [];
		let size = 0, tooLarge = false, settled = false;
		const finish = (aborted) => {
			if (settled) return;
			settled = true;
			resolve({ raw: Buffer.concat(parts), aborted, tooLarge });
		};
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_BODY) tooLarge = true;
			else parts.push(c);
		});
		req.on('end', () => finish(false));
		req.on('error', () => finish(true));
		req.on('aborted', () => finish(true));
		req.on('close', () => finish(!req.complete && !req.readableEnded));
	});
}

// Bearer key check.  Returns true, or sends the 401 and returns false.
function checkAuth(x) {
	const h = x.req.headers.authorization;
	const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
	if (m && cfg.keys.has(m[1])) return true;
	const shown = m ? maskKey(m[1]) : '(none)';
	x.sendError(401, errorBody(`Incorrect API key provided: ${shown}. You can find your API key at ` +
		'https://platform.openai.com/account/api-keys.', 'invalid_request_error', 'invalid_api_key'));
	return false;
}

const parseError = () => errorBody('We could not parse the JSON body of your request. The OpenAI API ' +
	'expects a JSON payload, but what was sent was not valid JSON.', 'invalid_request_error');

// ---------------------------------------------------------------- endpoints

// POST /v1/chat/completions, and the OpenAI-compatible providers' chat
// (flavors in the providers section below: Azure, DeepSeek, Qwen).
async function chatCompletions(x, body, fl = OPENAI_CHAT) {
	x.id = `chatcmpl-mock-${x.n}`;
	if (!fl.auth(x)) return;
	if (fl.pre && !fl.pre(x)) return;
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
		return x.sendError(400, parseError());
	}
	const messages = Array.isArray(body.messages) ? body.messages : null;
	let lastUser = '';
	for (const m of messages || []) {
		if (m && typeof m === 'object' && m.role === 'user') lastUser = contentText(m.content);
	}
	const directive = parseDirectives(lastUser, 'mock');
	const k = knobs(x.req.headers, directive,
		{ chunks: cfg.chunks, delay: cfg.delayMs, status: null, failAfter: null, first: 0,
			retryAfter: undefined });
	// drop_reused=1: a request that arrives on a connection which served one
	// before is not answered: the whole connection (HTTP/2 session) is
	// destroyed, as a provider ending a kept-alive connection does.  On a
	// fresh connection it is answered normally.
	if (directive.dropReused === 1 && x.prior > 0) {
		const conn = x.req.stream ? x.req.stream.session : x.req.socket;
		try { conn.destroy(); } catch { /* gone */ }
		return;
	}

	// idle_close=MS: once this answer is out, the connection it came on
	// (socket or HTTP/2 session) is closed MS ms later, as a provider
	// closes a kept-alive connection that sat idle.
	if (Number.isInteger(directive.idleClose) && directive.idleClose >= 0) {
		const conn = x.req.stream ? x.req.stream.session : x.req.socket;
		x.res.on('finish', () => setTimeout(() => {
			try { conn.destroy(); } catch { /* gone */ }
		}, directive.idleClose));
	}
	if (!(await x.wait(k.first))) return;
	if (k.status !== null) {
		if (!(await x.wait(k.delay))) return;
		return x.sendError(k.status, fl.statusError(k.status, body.model), k.retryAfter);
	}

	if (fl.modelInBody && (typeof body.model !== 'string' || body.model === '')) {
		return x.sendError(400, errorBody('you must provide a model parameter', 'invalid_request_error', null, 'model'));
	}
	if (!messages || messages.length === 0) {
		return x.sendError(400, errorBody(messages ? "Invalid 'messages': empty array. Expected an array with minimum length 1."
			: "Missing required parameter: 'messages'.", 'invalid_request_error',
		messages ? 'empty_array' : 'missing_required_parameter', 'messages'));
	}
	if (fl.modelInBody && !fl.models().includes(body.model)) {
		return x.sendError(404, fl.statusError(404, body.model));
	}
	const replyModel = fl.replyModel ? fl.replyModel(x, body) : body.model;
	// DeepSeek's reasoner thinks first: that many reasoning_content pieces,
	// counted in completion_tokens as reasoning_tokens.
	const thinking = fl.reasoning ? fl.reasoning(body) : 0;

	// The reply: chunk i is `tok${i} `; max_tokens (or max_completion_tokens)
	// below the chunk count cuts it short with finish_reason "length".
	let n = k.chunks, finish = 'stop';
	const limit = Number.isInteger(body.max_completion_tokens) ? body.max_completion_tokens
		: Number.isInteger(body.max_tokens) ? body.max_tokens : null;
	if (limit !== null && limit >= 0 && limit < n) { n = limit; finish = 'length'; }
	const pieces = Array.from({ length: n }, (_, i) => `tok${i} `);
	const usage = () => {
		const p = promptTokens(messages);
		const u = { prompt_tokens: p, completion_tokens: n + thinking, total_tokens: p + n + thinking,
			prompt_tokens_details: { cached_tokens: 0 },
			completion_tokens_details: { reasoning_tokens: thinking } };
		return fl.usage ? fl.usage(u, directive) : u;
	};
	const created = nowS();

	if (body.stream === true) {
		const includeUsage = !!(body.stream_options && typeof body.stream_options === 'object' &&
			body.stream_options.include_usage === true);
		const chunk = (delta, finishReason) => {
			const c = { id: x.id, object: 'chat.completion.chunk', created, model: replyModel,
				system_fingerprint: cfg.stamp ? `fp_t${process.hrtime.bigint() / 1000n}` : SYSTEM_FINGERPRINT,
				choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
			if (includeUsage) c.usage = null;
			return c;
		};
		x.startEvents();
		for (let i = 0; fl.keepAlive && i < (directive.keepalive ?? 0) && i < 100; i++) x.comment('keep-alive');
		if (fl.firstChunk) x.event(fl.firstChunk(x, created));
		x.event(chunk({ role: 'assistant', content: '' }, null));
		for (let i = 0; i < thinking; i++) x.event(chunk({ reasoning_content: `think${i} ` }, null));
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			// As a server does: no more while the client does not read.
			if (!(await x.drain())) return;
			if (k.failAfter === i) return x.fail();
			x.event(chunk({ content: pieces[i] }, null));
			x.chunksSent++;
		}
		if (k.failAfter !== null && k.failAfter >= n) return x.fail();
		x.event(chunk({}, finish));
		if (includeUsage) {
			x.event({ id: x.id, object: 'chat.completion.chunk', created, model: replyModel,
				system_fingerprint: SYSTEM_FINGERPRINT, choices: [], usage: usage() });
		}
		x.event('[DONE]');
		return x.endEvents();
	}

	// Not streaming: the whole answer after the time the stream would take
	// (or, with fail-after, the connection breaks after that many chunks' time).
	const steps = k.failAfter !== null ? Math.min(k.failAfter, n) : n;
	if (!(await x.wait(k.delay * steps))) return;
	if (k.failAfter !== null) return x.fail();
	const message = { role: 'assistant', content: pieces.join(''), refusal: null };
	if (thinking > 0) message.reasoning_content = Array.from({ length: thinking }, (_, i) => `think${i} `).join('');
	x.sendJson(200, {
		id: x.id, object: 'chat.completion', created, model: replyModel,
		choices: [{ index: 0, message,
			logprobs: null, finish_reason: finish }],
		usage: usage(),
		system_fingerprint: SYSTEM_FINGERPRINT,
	});
}

// The text of a Responses API `input` (a string, or items with content).
function responsesInputText(input) {
	if (typeof input === 'string') return input;
	let last = '';
	for (const it of Array.isArray(input) ? input : []) {
		if (it && typeof it === 'object' && (it.role === 'user' || it.type === 'message'))
			last = contentText(Array.isArray(it.content) ? it.content.map((c) =>
				(c && typeof c === 'object' && typeof c.text === 'string' ? { type: 'text', text: c.text } : c))
				: it.content);
	}
	return last;
}

// POST /v1/responses: a message of `tok<i> ` pieces, streamed as the
// Responses API's named events (response.created ... response.completed,
// each with a sequence_number) or whole; usage in the final response.
async function responses(x, body) {
	x.id = `resp_mock_${x.n}`;
	if (!checkAuth(x)) return;
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
		return x.sendError(400, parseError());
	}
	if (typeof body.model !== 'string' || body.model === '')
		return x.sendError(400, errorBody('Missing required parameter: \'model\'.', 'invalid_request_error', 'missing_required_parameter', 'model'));
	if (!cfg.models.includes(body.model)) return x.sendError(404, statusError(404, body.model));
	const text = responsesInputText(body.input);
	const directive = parseDirectives(text, 'mock');
	const k = knobs(x.req.headers, directive, { chunks: cfg.chunks, delay: cfg.delayMs, status: null,
		failAfter: null, first: 0, retryAfter: undefined });
	if (!(await x.wait(k.first))) return;
	if (k.status !== null) return x.sendError(k.status, statusError(k.status, body.model), k.retryAfter);
	const n = k.chunks;
	const pieces = Array.from({ length: n }, (_, i) => `tok${i} `);
	const inTok = Math.max(1, Math.ceil([...text].length / 4));
	const msgId = `msg_mock_${x.n}`;
	const created = nowS();
	const base = (status, output, usage) => ({ id: x.id, object: 'response', created_at: created,
		status, model: body.model, output, usage, error: null, incomplete_details: null });
	const item = (done) => ({ type: 'message', id: msgId, status: done ? 'completed' : 'in_progress',
		role: 'assistant', content: done ? [{ type: 'output_text', text: pieces.join(''), annotations: [] }] : [] });
	const usage = { input_tokens: inTok, input_tokens_details: { cached_tokens: 0 },
		output_tokens: n, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inTok + n };
	if (body.stream !== true) {
		if (!(await x.wait(k.delay * n))) return;
		return x.sendJson(200, base('completed', [item(true)], usage));
	}
	let seq = 0;
	const ev = (type, extra) => x.namedEvent(type, { type, sequence_number: seq++, ...extra });
	x.startEvents();
	ev('response.created', { response: base('in_progress', [], null) });
	ev('response.in_progress', { response: base('in_progress', [], null) });
	ev('response.output_item.added', { output_index: 0, item: item(false) });
	ev('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0,
		part: { type: 'output_text', text: '', annotations: [] } });
	for (let i = 0; i < n; i++) {
		if (!(await x.wait(k.delay))) return;
		if (k.failAfter === i) return x.fail();
		ev('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: pieces[i] });
		x.chunksSent++;
	}
	ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text: pieces.join('') });
	ev('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0,
		part: { type: 'output_text', text: pieces.join(''), annotations: [] } });
	ev('response.output_item.done', { output_index: 0, item: item(true) });
	ev('response.completed', { response: base('completed', [item(true)], usage) });
	return x.endEvents();
}

// POST /v1/embeddings: one 8-dimension vector per input, derived from its
// text; `encoding_format: "base64"` (what the openai SDK asks for) gets the
// little-endian float32 bytes in base64.
function embeddings(x, body) {
	if (!checkAuth(x)) return;
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body))
		return x.sendError(400, parseError());
	const inputs = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? body.input : null;
	if (!inputs || inputs.length === 0 || typeof body.model !== 'string')
		return x.sendError(400, errorBody('\'input\' and \'model\' are required.', 'invalid_request_error'));
	let tokens = 0;
	const data = inputs.map((t, index) => {
		const str = String(t);
		tokens += Math.max(1, Math.ceil([...str].length / 4));
		const v = Array.from({ length: 8 }, (_, i) => ((str.charCodeAt(i % Math.max(1, str.length)) || 0) % 97) / 97);
		let embedding = v;
		if (body.encoding_format === 'base64')
			embedding = Buffer.from(new Float32Array(v).buffer).toString('base64');
		return { object: 'embedding', index, embedding };
	});
	x.sendJson(200, { object: 'list', data, model: body.model,
		usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

// ---------------------------------------------------------------- OpenAI media

// multipart/form-data: the parts of a body (RFC 7578), as
// { name, filename?, type?, data: Buffer }.  null when not multipart.
function multipartParts(ctype, raw) {
	const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ctype || '');
	if (!/^multipart\/form-data/i.test(ctype || '') || !m) return null;
	const delim = Buffer.from(`--${m[1] || m[2]}`);
	const parts = [];
	let pos = raw.indexOf(delim);
	while (pos >= 0) {
		const start = pos + delim.length;
		if (raw.subarray(start, start + 2).toString() === '--') break;
		const hend = raw.indexOf('\r\n\r\n', start);
		if (hend < 0) break;
		const next = raw.indexOf(delim, hend + 4);
		if (next < 0) break;
		const head = raw.subarray(start + 2, hend).toString('utf8');
		const cd = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? '';
		const ct = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1];
		parts.push({ name: /name="([^"]*)"/i.exec(cd)?.[1] ?? '',
			filename: /filename="([^"]*)"/i.exec(cd)?.[1], type: ct,
			data: raw.subarray(hend + 4, next - 2) });
		pos = next;
	}
	return parts;
}
const formField = (parts, name) => parts?.find((p) => p.name === name && p.filename === undefined)
	?.data.toString('utf8');
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// A 1x1 PNG, the image every image endpoint answers.
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

// POST /v1/images/generations (JSON) and /v1/images/edits (multipart with
// one or more `image` files): n images as b64_json, with gpt-image-1's
// token usage.
function images(x, body, parts) {
	if (!checkAuth(x)) return;
	const model = parts ? formField(parts, 'model') : body?.model;
	const prompt = parts ? formField(parts, 'prompt') : body?.prompt;
	if (typeof model !== 'string' || typeof prompt !== 'string')
		return x.sendError(400, errorBody('\'model\' and \'prompt\' are required.', 'invalid_request_error'));
	if (!cfg.models.includes(model)) return x.sendError(404, statusError(404, model));
	const files = parts ? parts.filter((p) => p.filename !== undefined) : [];
	if (parts && files.length === 0)
		return x.sendError(400, errorBody('\'image\' is required.', 'invalid_request_error'));
	const n = Math.max(1, Math.min(4, Number(parts ? formField(parts, 'n') : body?.n) || 1));
	const textTokens = Math.max(1, Math.ceil([...prompt].length / 4));
	const imageTokens = files.length * 65;
	x.sendJson(200, { created: nowS(), data: Array.from({ length: n }, () => ({ b64_json: PNG_1X1 })),
		usage: { input_tokens: textTokens + imageTokens, output_tokens: 272 * n,
			total_tokens: textTokens + imageTokens + 272 * n,
			input_tokens_details: { text_tokens: textTokens, image_tokens: imageTokens } } });
}

// Video jobs (POST /v1/videos, GET /v1/videos/{id}[/content]) in OpenAI's
// documented shape: a job is queued, in_progress while it "renders" (it
// completes VIDEO_MS after it was made), then completed; a prompt holding
// [[mock:fail]] makes it fail instead.  The content is `seconds` KiB of
// video/mp4 bytes (an ftyp box, then a pattern), the same on every read.
// Jobs are the mock's own: another key's job is not found.
const VIDEO_MS = 2500;
const videos = new Map();
const videoBytes = (v) => {
	const b = Buffer.alloc(1024 * Number(v.seconds), 0);
	for (let i = 0; i < b.length; i++) b[i] = (i * 7 + v.id.length) % 251;
	Buffer.from('\x00\x00\x00\x18ftypmp42', 'latin1').copy(b, 0);
	return b;
};
function videoView(v) {
	const age = Date.now() - v.t0;
	const done = age >= VIDEO_MS;
	const status = !done ? (age < VIDEO_MS / 3 ? 'queued' : 'in_progress') : v.fail ? 'failed' : 'completed';
	return { id: v.id, object: 'video', model: v.model, status,
		progress: done ? 100 : Math.floor((100 * age) / VIDEO_MS), seconds: v.seconds, size: v.size,
		created_at: Math.floor(v.t0 / 1000), completed_at: done && !v.fail ? Math.floor((v.t0 + VIDEO_MS) / 1000) : null,
		expires_at: null, remixed_from_video_id: null,
		error: done && v.fail ? { code: 'video_generation_failed', message: 'The mock was asked to fail.' } : null };
}
function videoCreate(x, body, parts) {
	if (!checkAuth(x)) return;
	const f = (k) => (parts ? formField(parts, k) : body?.[k]);
	const model = f('model'), prompt = f('prompt');
	if (typeof model !== 'string' || typeof prompt !== 'string')
		return x.sendError(400, errorBody('\'model\' and \'prompt\' are required.', 'invalid_request_error'));
	if (!cfg.models.includes(model)) return x.sendError(404, statusError(404, model));
	const seconds = String(f('seconds') ?? '4');
	if (!['4', '8', '12'].includes(seconds))
		return x.sendError(400, errorBody(`Invalid 'seconds': '${seconds}'.`, 'invalid_request_error'));
	const id = `video_mock_${crypto.randomBytes(12).toString('hex')}`;
	const v = { id, model, seconds, size: String(f('size') ?? '720x1280'), t0: Date.now(),
		fail: prompt.includes('[[mock:fail]]'), key: x.req.headers.authorization };
	videos.set(id, v);
	x.sendJson(200, videoView(v));
}
function videoGet(x, id, content) {
	if (!checkAuth(x)) return;
	const v = videos.get(id);
	if (!v || v.key !== x.req.headers.authorization)
		return x.sendError(404, errorBody(`Video with id '${id}' not found.`, 'invalid_request_error'));
	const view = videoView(v);
	if (!content) return x.sendJson(200, view);
	if (view.status !== 'completed')
		return x.sendError(400, errorBody(`Video is not ready yet (status ${view.status}).`, 'invalid_request_error'));
	const b = videoBytes(v);
	x.res.writeHead(200, x.baseHeaders({ 'content-type': 'video/mp4', 'content-length': String(b.length) }));
	x.done = true;
	x.res.end(b);
}

// POST /v1/audio/speech: audio bytes, sent in `chunks` pieces of 4 KiB with
// `delay` ms before each (a slow, chunked answer), content type by
// response_format.
async function speech(x, body) {
	if (!checkAuth(x)) return;
	if (!body || typeof body.input !== 'string' || typeof body.model !== 'string')
		return x.sendError(400, errorBody('\'model\' and \'input\' are required.', 'invalid_request_error'));
	const k = knobs(x.req.headers, parseDirectives(body.input, 'mock'),
		{ chunks: cfg.chunks, delay: cfg.delayMs, status: null, failAfter: null, first: 0,
			retryAfter: undefined });
	if (k.status !== null) return x.sendError(k.status, statusError(k.status, body.model));
	const types = { mp3: 'audio/mpeg', wav: 'audio/wav', opus: 'audio/ogg', aac: 'audio/aac',
		flac: 'audio/flac', pcm: 'audio/pcm' };
	x.res.writeHead(200, x.baseHeaders({ 'content-type': types[body.response_format] ?? 'audio/mpeg' }));
	for (let i = 0; i < k.chunks; i++) {
		if (!(await x.wait(k.delay))) return;
		const piece = Buffer.alloc(4096, i % 256);
		piece.write(`CHUNK${i}:`, 0);
		x.res.write(piece);
		x.chunksSent++;
	}
	x.done = true;
	x.res.end();
}

// POST /v1/audio/transcriptions and /translations (multipart: file, model):
// the text names the upload's SHA-256 so a test can tell it arrived
// unchanged; usage as the model reports it (tokens, or seconds for
// whisper-1).
function transcription(x, parts, translate) {
	if (!checkAuth(x)) return;
	const model = formField(parts, 'model');
	const file = parts?.find((p) => p.name === 'file' && p.filename !== undefined);
	if (typeof model !== 'string' || !file)
		return x.sendError(400, errorBody('\'file\' and \'model\' are required.', 'invalid_request_error'));
	if (!cfg.models.includes(model)) return x.sendError(404, statusError(404, model));
	const text = `${translate ? 'translated' : 'transcribed'} ${file.data.length} bytes ${sha256(file.data)}`;
	const usage = model === 'whisper-1' ? { type: 'duration', seconds: Math.max(1, Math.ceil(file.data.length / 16000)) }
		: { type: 'tokens', input_tokens: Math.max(1, Math.ceil(file.data.length / 1000)),
			output_tokens: Math.ceil(text.length / 4),
			total_tokens: Math.max(1, Math.ceil(file.data.length / 1000)) + Math.ceil(text.length / 4) };
	x.sendJson(200, { text, usage });
}

// GET /v1/models and GET /v1/models/{id}
function models(x, id) {
	if (!checkAuth(x)) return;
	const obj = (m) => ({ id: m, object: 'model', created: MODEL_CREATED[m] ?? 1700000000, owned_by: 'openai' });
	if (id === undefined) return x.sendJson(200, { object: 'list', data: cfg.models.map(obj) });
	if (cfg.models.includes(id)) return x.sendJson(200, obj(id));
	x.sendError(404, errorBody(`The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model'));
}

// omni-moderation categories; those an image input applies to as well.
const MOD_CATEGORIES = ['harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit',
	'illicit/violent', 'self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual',
	'sexual/minors', 'violence', 'violence/graphic'];
const MOD_IMAGE = new Set(['self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual',
	'violence', 'violence/graphic']);

// POST /v1/moderations
async function moderations(x, body) {
	x.id = `modr-mock-${x.n}`;
	if (!checkAuth(x)) return;
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
		return x.sendError(400, parseError());
	}
	// The inputs to classify: each is { text, image } and gets one result.
	// A string is one input; an array of strings is one input each; an array
	// of parts ({type:"text",text} / {type:"image_url",...}) is one input.
	const inp = body.input;
	let inputs = null;
	if (typeof inp === 'string') inputs = [{ text: inp, image: false }];
	else if (Array.isArray(inp) && inp.every((s) => typeof s === 'string')) {
		inputs = inp.map((s) => ({ text: s, image: false }));
	} else if (Array.isArray(inp) && inp.every((p) => p && typeof p === 'object')) {
		inputs = [{
			text: inp.filter((p) => p.type === 'text' && typeof p.text === 'string').map((p) => p.text).join('\n'),
			image: inp.some((p) => p.type === 'image_url'),
		}];
	}

	const allText = (inputs || []).map((i) => i.text).join('\n');
	const k = knobs(x.req.headers, parseDirectives(allText, 'mock-mod'),
		{ chunks: 0, delay: 0, status: null, failAfter: null, first: 0, retryAfter: undefined });
	if (!(await x.wait(k.first + k.delay))) return;
	if (k.failAfter !== null) return x.fail();
	if (k.status !== null) return x.sendError(k.status, statusError(k.status, body.model), k.retryAfter);

	if (!inputs) {
		return x.sendError(400, errorBody(inp === undefined ? "Missing required parameter: 'input'."
			: "Invalid type for 'input': expected a string, an array of strings or an array of content parts.",
		'invalid_request_error', null, 'input'));
	}
	const results = inputs.map(({ text, image }) => {
		const lower = text.toLowerCase();
		const flagged = cfg.modWords.some((w) => lower.includes(w));
		const categories = {}, scores = {}, applied = {};
		for (const c of MOD_CATEGORIES) {
			categories[c] = flagged && c === 'harassment';
			scores[c] = categories[c] ? 0.9 : 0.0001;
			applied[c] = image && MOD_IMAGE.has(c) ? ['text', 'image'].filter((t) => t !== 'text' || text) : ['text'];
		}
		return { flagged, categories, category_scores: scores, category_applied_input_types: applied };
	});
	x.sendJson(200, {
		id: x.id,
		model: typeof body.model === 'string' && body.model ? body.model : 'omni-moderation-latest',
		results,
	});
}

// ---------------------------------------------------------------- providers
//
// Which provider a request is for comes from its Host header (agentd's
// test build sends each official host name to this one mock).  Each
// provider checks its own credential and answers in its own shapes.

// The provider of a host name (port dropped); anything unknown is OpenAI,
// so clients that address the mock as localhost keep working.
function providerOf(host) {
	const h = String(host || '').replace(/:\d+$/, '').toLowerCase();
	if (h === 'api.anthropic.com') return 'anthropic';
	if (/^[a-z0-9-]+\.openai\.azure\.com$/.test(h)) return 'azure';
	if (h === 'api.deepseek.com') return 'deepseek';
	if (h === 'dashscope.aliyuncs.com' || h === 'dashscope-intl.aliyuncs.com') return 'qwen';
	if (h === 'generativelanguage.googleapis.com') return 'gemini';
	if (/^([a-z0-9-]+-)?aiplatform\.googleapis\.com$/.test(h)) return 'vertex';
	if (h === 'oauth2.googleapis.com') return 'google-oauth';
	if (/^bedrock-runtime\.[a-z0-9-]+\.amazonaws\.com$/.test(h)) return 'bedrock';
	return 'openai';
}

// What the request log says about the credential: which header carried
// it, and whether it was one of that provider's keys (the key itself is
// already in the logged headers; the test keys are not secrets).
function authSeen(provider, headers) {
	const bearer = (h) => {
		const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
		return m ? m[1] : null;
	};
	switch (provider) {
	case 'anthropic': {
		const k = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'] : null;
		return { header: k !== null ? 'x-api-key' : null, ok: k !== null && cfg.anthropicKeys.has(k) };
	}
	case 'azure': {
		const k = typeof headers['api-key'] === 'string' ? headers['api-key'] : null;
		return { header: k !== null ? 'api-key' : null, ok: k !== null && cfg.azureKeys.has(k) };
	}
	case 'gemini':
	case 'vertex':
	case 'google-oauth':
		return googleAuthSeen(provider, headers, bearer);
	default: {
		const keys = provider === 'deepseek' ? cfg.deepseekKeys : provider === 'qwen' ? cfg.qwenKeys : cfg.keys;
		const k = bearer(headers.authorization);
		return { header: k !== null ? 'authorization' : null, ok: k !== null && keys.has(k) };
	}
	}
}

// The OpenAI flavor of chatCompletions: its keys, models and errors.
const OPENAI_CHAT = {
	auth: (x) => checkAuth(x),
	statusError,
	modelInBody: true,
	models: () => cfg.models,
};

// --- Azure OpenAI: /openai/deployments/{d}/chat/completions?api-version=V,
// header api-key; the model is the deployment's, the body's is ignored; the
// first stream chunk has empty choices and prompt_filter_results.

const azureError = (code, message) => ({ error: { code, message } });

function azureStatusError(status) {
	switch (status) {
	case 429: return azureError('429', 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API ' +
		'have exceeded token rate limit of your current pricing tier. Please retry after 1 second.');
	case 401: return azureError('401', 'Access denied due to invalid subscription key or wrong API endpoint.');
	default: return statusError(status);
	}
}

function azureFlavor(deployment) {
	return {
		auth(x) {
			if (authSeen('azure', x.req.headers).ok) return true;
			x.sendError(401, azureError('401', 'Access denied due to invalid subscription key or wrong API ' +
				'endpoint. Make sure to provide a valid key for an active subscription and use a correct ' +
				'regional API endpoint for your resource.'));
			return false;
		},
		pre(x) {
			const v = new URL(x.req.url || '/', 'https://mock.invalid').searchParams.get('api-version');
			if (!v) {
				x.sendError(404, azureError('404', 'Resource not found'));
				return false;
			}
			if (!/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v)) {
				x.sendError(400, azureError('BadRequest', 'API version not supported'));
				return false;
			}
			if (!cfg.azureDeployments.has(deployment)) {
				x.sendError(404, azureError('DeploymentNotFound', 'The API deployment for this resource does ' +
					'not exist. If you created the deployment within the last 5 minutes, please wait a moment ' +
					'and try again.'));
				return false;
			}
			return true;
		},
		statusError: azureStatusError,
		modelInBody: false,
		replyModel: () => cfg.azureDeployments.get(deployment),
		firstChunk: (x, created) => ({ id: '', object: '', created: 0, model: '', choices: [],
			prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] }),
	};
}

// --- DeepSeek: api.deepseek.com/chat/completions (or /v1/...), Bearer;
// usage adds prompt_cache_hit_tokens/prompt_cache_miss_tokens (directive
// cache_read=N makes N of the prompt a hit); deepseek-reasoner streams
// reasoning_content first; directive keepalive=N sends N `: keep-alive`.

const DEEPSEEK_CHAT = {
	auth(x) {
		if (authSeen('deepseek', x.req.headers).ok) return true;
		x.sendError(401, errorBody('Authentication Fails, Your api key: ****' +
			'is invalid', 'authentication_error', 'invalid_request_error'));
		return false;
	},
	statusError,
	modelInBody: true,
	models: () => cfg.deepseekModels,
	reasoning: (body) => (body.model === 'deepseek-reasoner' ? 2 : 0),
	keepAlive: true,
	usage(u, d) {
		const hit = Math.min(Number.isInteger(d.cacheRead) && d.cacheRead > 0 ? d.cacheRead : 0, u.prompt_tokens);
		u.prompt_tokens_details = { cached_tokens: hit };
		u.prompt_cache_hit_tokens = hit;
		u.prompt_cache_miss_tokens = u.prompt_tokens - hit;
		return u;
	},
};

// --- Qwen (DashScope compatible mode): /compatible-mode/v1/chat/completions,
// Bearer.

const QWEN_CHAT = {
	auth(x) {
		if (authSeen('qwen', x.req.headers).ok) return true;
		const e = errorBody('Incorrect API key provided. ', 'invalid_request_error', 'invalid_api_key');
		e.request_id = `mock-${x.n}`;
		x.sendError(401, e);
		return false;
	},
	statusError,
	modelInBody: true,
	models: () => cfg.qwenModels,
};

// --- Anthropic Messages: /v1/messages, /v1/messages/count_tokens; headers
// x-api-key and anthropic-version (both required); max_tokens required.

const anthropicError = (type, message) => ({ type: 'error', error: { type, message } });

function anthropicStatusError(status) {
	const t = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
		404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error',
		529: 'overloaded_error' }[status] || (status >= 500 ? 'api_error' : 'invalid_request_error');
	return anthropicError(t, t === 'overloaded_error' ? 'Overloaded' : `Mock: forced ${status}.`);
}

// The text of Anthropic's system (a string or text blocks) and messages.
function anthropicPromptTokens(body) {
	let chars = [...contentText(body.system)].length;
	for (const m of Array.isArray(body.messages) ? body.messages : []) {
		if (m && typeof m === 'object') chars += [...contentText(m.content)].length;
	}
	return Math.max(1, Math.ceil(chars / 4));
}

// Checks every Messages request shares; the parsed knobs, or null after
// answering the error.
function anthropicCheck(x, body, needMaxTokens) {
	const h = x.req.headers;
	if (!authSeen('anthropic', h).ok) {
		x.sendError(401, anthropicError('authentication_error', typeof h['x-api-key'] === 'string'
			? 'invalid x-api-key' : 'x-api-key header is required'));
		return null;
	}
	if (typeof h['anthropic-version'] !== 'string' || h['anthropic-version'] === '') {
		x.sendError(400, anthropicError('invalid_request_error', 'anthropic-version: header is required'));
		return null;
	}
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
		x.sendError(400, anthropicError('invalid_request_error', 'There was an error parsing the body of your request.'));
		return null;
	}
	if (typeof body.model !== 'string' || body.model === '') {
		x.sendError(400, anthropicError('invalid_request_error', 'model: Field required'));
		return null;
	}
	if (!Array.isArray(body.messages) || body.messages.length === 0) {
		x.sendError(400, anthropicError('invalid_request_error', 'messages: Field required'));
		return null;
	}
	if (needMaxTokens && !(Number.isInteger(body.max_tokens) && body.max_tokens >= 1)) {
		x.sendError(400, anthropicError('invalid_request_error', 'max_tokens: Field required'));
		return null;
	}
	let lastUser = '';
	for (const m of body.messages) {
		if (m && typeof m === 'object' && m.role === 'user') lastUser = contentText(m.content);
	}
	return parseDirectives(lastUser, 'mock');
}

// POST /v1/messages: a message, or its SSE event sequence.  Directives:
// the chat ones, plus cache_read=N / cache_write=N (the usage's cache
// counts), tool=1 (a tool_use block, when the request gives tools) and
// sse_error=N (an `event: error` overloaded_error after N text deltas).
async function anthropicMessages(x, body) {
	x.id = `msg_mock_${x.n}`;
	const d = anthropicCheck(x, body, true);
	if (d === null) return;
	const k = knobs(x.req.headers, d, { chunks: cfg.chunks, delay: cfg.delayMs, status: null, failAfter: null,
		first: 0, retryAfter: undefined });
	if (!(await x.wait(k.first))) return;
	if (k.status !== null) {
		if (!(await x.wait(k.delay))) return;
		return x.sendError(k.status, anthropicStatusError(k.status), k.retryAfter);
	}
	if (!cfg.anthropicModels.includes(body.model)) {
		return x.sendError(404, anthropicError('not_found_error', `model: ${body.model}`));
	}
	let n = k.chunks, stop = 'end_turn';
	if (body.max_tokens < n) { n = body.max_tokens; stop = 'max_tokens'; }
	const pieces = Array.from({ length: n }, (_, i) => `tok${i} `);
	const tool = d.tool === 1 && Array.isArray(body.tools) && body.tools.length > 0 &&
		body.tools[0] && typeof body.tools[0].name === 'string' ? body.tools[0].name : null;
	const toolJson = ['{"q":', ' "mock"}'];
	if (tool !== null && stop === 'end_turn') stop = 'tool_use';
	const out = n + (tool !== null ? toolJson.length : 0);
	const cacheRead = Number.isInteger(d.cacheRead) && d.cacheRead > 0 ? d.cacheRead : 0;
	const cacheWrite = Number.isInteger(d.cacheWrite) && d.cacheWrite > 0 ? d.cacheWrite : 0;
	const usage = (output) => ({ input_tokens: anthropicPromptTokens(body), cache_creation_input_tokens: cacheWrite,
		cache_read_input_tokens: cacheRead, output_tokens: output });
	const toolId = `toolu_mock_${x.n}`;

	if (body.stream === true) {
		x.startEvents();
		x.namedEvent('message_start', { type: 'message_start', message: { id: x.id, type: 'message',
			role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null,
			usage: usage(1) } });
		x.namedEvent('content_block_start', { type: 'content_block_start', index: 0,
			content_block: { type: 'text', text: '' } });
		x.namedEvent('ping', { type: 'ping' });
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			if (k.failAfter === i) return x.fail();
			if (d.sseError === i) {
				x.namedEvent('error', anthropicError('overloaded_error', 'Overloaded'));
				return x.endEvents();
			}
			x.namedEvent('content_block_delta', { type: 'content_block_delta', index: 0,
				delta: { type: 'text_delta', text: pieces[i] } });
			x.chunksSent++;
		}
		if (k.failAfter !== null && k.failAfter >= n) return x.fail();
		x.namedEvent('content_block_stop', { type: 'content_block_stop', index: 0 });
		if (tool !== null) {
			x.namedEvent('content_block_start', { type: 'content_block_start', index: 1,
				content_block: { type: 'tool_use', id: toolId, name: tool, input: {} } });
			for (const part of toolJson) {
				x.namedEvent('content_block_delta', { type: 'content_block_delta', index: 1,
					delta: { type: 'input_json_delta', partial_json: part } });
			}
			x.namedEvent('content_block_stop', { type: 'content_block_stop', index: 1 });
		}
		x.namedEvent('message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null },
			usage: { output_tokens: out } });
		x.namedEvent('message_stop', { type: 'message_stop' });
		return x.endEvents();
	}
	const steps = k.failAfter !== null ? Math.min(k.failAfter, n) : n;
	if (!(await x.wait(k.delay * steps))) return;
	if (k.failAfter !== null) return x.fail();
	const content = [{ type: 'text', text: pieces.join('') }];
	if (tool !== null) content.push({ type: 'tool_use', id: toolId, name: tool, input: { q: 'mock' } });
	x.sendJson(200, { id: x.id, type: 'message', role: 'assistant', model: body.model, content,
		stop_reason: stop, stop_sequence: null, usage: usage(out) });
}

// POST /v1/messages/count_tokens
function anthropicCountTokens(x, body) {
	if (anthropicCheck(x, body, false) === null) return;
	if (!cfg.anthropicModels.includes(body.model)) {
		return x.sendError(404, anthropicError('not_found_error', `model: ${body.model}`));
	}
	x.sendJson(200, { input_tokens: anthropicPromptTokens(body) });
}

// --- Google: Gemini (AI Studio) on generativelanguage.googleapis.com
// (/v1beta/models/{m}:generateContent|streamGenerateContent?alt=sse|
// embedContent|batchEmbedContents|countTokens, header x-goog-api-key),
// Vertex AI on {location}-aiplatform.googleapis.com (the same Gemini
// methods under /v1/projects/{p}/locations/{l}/publishers/google/models/,
// Claude under publishers/anthropic/models/{m}:rawPredict|streamRawPredict;
// Authorization: Bearer with an access token issued below) and the OAuth
// token endpoint oauth2.googleapis.com/token, which verifies the JWT
// assertion's RS256 signature with --vertex-sa's public key and its claims.
// Errors in Google's shape {"error":{"code","message","status"}}.

const GOOGLE_STATUS = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED',
	404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };
const googleError = (code, message, details) => ({ error: { code, message,
	status: GOOGLE_STATUS[code] || (code >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT'), ...(details ? { details } : {}) } });
const vertexTokens = new Map();     // access token -> expiry (ms)
const GOOGLE_AUD = 'https://oauth2.googleapis.com/token';
const GOOGLE_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

function googleAuthSeen(provider, headers, bearer) {
	if (provider === 'gemini') {
		const k = typeof headers['x-goog-api-key'] === 'string' ? headers['x-goog-api-key'] : null;
		return { header: k !== null ? 'x-goog-api-key' : null, ok: k !== null && cfg.geminiKeys.has(k) };
	}
	if (provider === 'vertex') {
		const t = bearer(headers.authorization);
		return { header: t !== null ? 'authorization' : null,
			ok: t !== null && vertexTokens.has(t) && vertexTokens.get(t) > Date.now() };
	}
	return { header: null, ok: true };   // the token endpoint: the assertion is the credential
}

// The text of Gemini contents (and systemInstruction): parts[].text.
function geminiText(c) {
	if (!c || typeof c !== 'object') return '';
	return (Array.isArray(c.parts) ? c.parts : []).map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('');
}
function geminiPromptTokens(body) {
	let chars = [...geminiText(body.systemInstruction)].length;
	for (const c of Array.isArray(body.contents) ? body.contents : []) chars += [...geminiText(c)].length;
	return Math.max(1, Math.ceil(chars / 4));
}

// generateContent / streamGenerateContent (Gemini's and Vertex's).
// Directives in the last user text: chunks, delay, status, fail_after,
// first, tool=1 (a functionCall part, when the request declares functions).
async function geminiGenerate(x, body, model, stream) {
	if (!body || typeof body !== 'object' || !Array.isArray(body.contents) || body.contents.length === 0) {
		return x.sendError(400, googleError(400, '* GenerateContentRequest.contents: contents is not specified'));
	}
	const users = body.contents.filter((c) => c && (c.role === 'user' || c.role === undefined));
	const d = parseDirectives(users.length ? geminiText(users[users.length - 1]) : '', 'mock');
	const k = knobs(x.req.headers, d, { chunks: cfg.chunks, delay: cfg.delayMs, status: null, failAfter: null,
		first: 0, retryAfter: undefined });
	if (!(await x.wait(k.first))) return;
	if (k.status !== null) {
		if (!(await x.wait(k.delay))) return;
		return x.sendError(k.status, googleError(k.status, `Mock: forced ${k.status}.`), k.retryAfter);
	}
	const gc = body.generationConfig && typeof body.generationConfig === 'object' ? body.generationConfig : {};
	let n = k.chunks, finish = 'STOP';
	if (Number.isInteger(gc.maxOutputTokens) && gc.maxOutputTokens < n) { n = gc.maxOutputTokens; finish = 'MAX_TOKENS'; }
	const decls = (Array.isArray(body.tools) ? body.tools : []).flatMap((t) =>
		(t && Array.isArray(t.functionDeclarations) ? t.functionDeclarations : []));
	const tool = d.tool === 1 && decls.length > 0 && typeof decls[0].name === 'string' ? decls[0].name : null;
	const prompt = geminiPromptTokens(body);
	const out = n + (tool !== null ? 2 : 0);
	const usage = (cand) => ({ promptTokenCount: prompt, candidatesTokenCount: cand, totalTokenCount: prompt + cand,
		promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }] });
	const responseId = `gem-mock-${x.n}`;
	const chunk = (parts, extra = {}, cand) => ({ candidates: [{ content: { parts, role: 'model' }, index: 0, ...extra }],
		usageMetadata: cand === undefined ? { promptTokenCount: prompt, totalTokenCount: prompt } : usage(cand),
		modelVersion: model, responseId });
	const call = tool !== null ? { functionCall: { name: tool, args: { q: 'mock' } } } : null;
	if (stream) {
		x.startEvents();
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			if (k.failAfter === i) return x.fail();
			const last = i === n - 1 && call === null;
			x.event(chunk([{ text: `tok${i} ` }], last ? { finishReason: finish } : {}, last ? out : undefined));
			x.chunksSent++;
		}
		if (k.failAfter !== null && k.failAfter >= n) return x.fail();
		if (call !== null) x.event(chunk([call], { finishReason: 'STOP' }, out));
		else if (n === 0) x.event(chunk([{ text: '' }], { finishReason: finish }, out));
		return x.endEvents();
	}
	if (!(await x.wait(k.delay * n))) return;
	const parts = [{ text: Array.from({ length: n }, (_, i) => `tok${i} `).join('') }];
	if (call !== null) parts.push(call);
	x.sendJson(200, chunk(parts, { finishReason: finish }, out));
}

// A deterministic 8-value embedding of a text.
function embedValues(text) {
	const h = crypto.createHash('sha256').update(String(text)).digest();
	return Array.from({ length: 8 }, (_, i) => (h[i] - 128) / 128);
}

function geminiMethod(x, body, model, method, models) {
	if (!models.includes(model)) {
		return Promise.resolve(x.sendError(404, googleError(404, `models/${model} is not found for API version ` +
			'v1beta, or is not supported for this method.')));
	}
	const b = body && typeof body === 'object' ? body : null;
	switch (method) {
	case 'generateContent': return geminiGenerate(x, b, model, false);
	case 'streamGenerateContent': {
		const alt = new URL(x.req.url || '/', 'https://mock.invalid').searchParams.get('alt');
		if (alt !== 'sse') {
			return Promise.resolve(x.sendError(400, googleError(400, 'Mock: only alt=sse streams are served.')));
		}
		return geminiGenerate(x, b, model, true);
	}
	case 'countTokens':
		return Promise.resolve(x.sendJson(200, { totalTokens: geminiPromptTokens(b || {}) }));
	case 'embedContent':
		if (!b || !b.content) return Promise.resolve(x.sendError(400, googleError(400, 'content is required')));
		return Promise.resolve(x.sendJson(200, { embedding: { values: embedValues(geminiText(b.content)) } }));
	case 'batchEmbedContents':
		if (!b || !Array.isArray(b.requests)) {
			return Promise.resolve(x.sendError(400, googleError(400, 'requests is required')));
		}
		return Promise.resolve(x.sendJson(200, { embeddings: b.requests.map((r) =>
			({ values: embedValues(geminiText(r && r.content)) })) }));
	default:
		return null;
	}
}

// POST oauth2.googleapis.com/token: grant_type jwt-bearer, assertion JWT.
function googleToken(x) {
	const form = new URLSearchParams(x.text || '');
	const refuse = (error, description) => {
		logLine({ ts: Date.now(), event: 'token_refused', provider: 'google-oauth', error, description });
		x.sendJson(400, { error, error_description: description });
	};
	if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
		return refuse('unsupported_grant_type', 'Invalid grant_type: ' + form.get('grant_type'));
	}
	const parts = String(form.get('assertion') || '').split('.');
	if (parts.length !== 3) return refuse('invalid_request', 'Invalid JWT: not three segments');
	let header, claims;
	try {
		header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
		claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
	} catch {
		return refuse('invalid_request', 'Invalid JWT: segments are not base64url JSON');
	}
	if (header.alg !== 'RS256' || header.typ !== 'JWT') return refuse('invalid_grant', 'Invalid JWT header');
	if (!cfg.vertexSa) return refuse('invalid_grant', 'Invalid JWT Signature.');
	const sigOk = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), cfg.vertexSa.key,
		Buffer.from(parts[2], 'base64url'));
	if (!sigOk) return refuse('invalid_grant', 'Invalid JWT Signature.');
	const now = Math.floor(Date.now() / 1000);
	const emailOk = cfg.vertexSa.email ? claims.iss === cfg.vertexSa.email
		: typeof claims.iss === 'string' && claims.iss.endsWith('.iam.gserviceaccount.com');
	if (!emailOk) return refuse('invalid_grant', 'Invalid JWT: iss is not the service account');
	if (claims.aud !== GOOGLE_AUD) return refuse('invalid_grant', 'Invalid JWT: Failed audience check.');
	if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(GOOGLE_SCOPE)) {
		return refuse('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
	}
	if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp) || claims.iat > now + 300 ||
		claims.exp < now || claims.exp <= claims.iat || claims.exp - claims.iat > 3600) {
		return refuse('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a ' +
			'reasonable timeframe. Check your iat and exp values in the JWT claim.');
	}
	const token = `ya29.mock-${crypto.randomBytes(12).toString('hex')}`;
	vertexTokens.set(token, Date.now() + cfg.vertexExpiresIn * 1000);
	logLine({ ts: Date.now(), event: 'token_issued', provider: 'google-oauth', iss: claims.iss, aud: claims.aud,
		scope: claims.scope, iat: claims.iat, exp: claims.exp, token });
	x.sendJson(200, { access_token: token, expires_in: cfg.vertexExpiresIn, token_type: 'Bearer' });
}

// Claude on Vertex: Anthropic's Messages with the model from the path,
// anthropic_version "vertex-2023-10-16" in the body and no model in it;
// answered by the Anthropic handler (credential already checked here).
function vertexClaude(x, body, model, method) {
	if (!body || typeof body !== 'object' || body.anthropic_version !== 'vertex-2023-10-16' || 'model' in body) {
		return Promise.resolve(x.sendError(400, googleError(400, 'anthropic_version must be vertex-2023-10-16 and ' +
			'the body must not name a model')));
	}
	if ((method === 'streamRawPredict') !== (body.stream === true)) {
		return Promise.resolve(x.sendError(400, googleError(400, `${method}: stream must be ${method === 'streamRawPredict'}`)));
	}
	// The request is logged already: the Anthropic handler may see the
	// headers it checks.
	x.req.headers['x-api-key'] = [...cfg.anthropicKeys][0];
	x.req.headers['anthropic-version'] = '2023-06-01';
	const { anthropic_version: _v, ...rest } = body;
	return anthropicMessages(x, { ...rest, model: model.replace(/@.*$/, '') });
}

function googleRoute(provider, x, path, body) {
	if (provider === 'google-oauth') return path === '/token' ? Promise.resolve(googleToken(x)) : null;
	const h = x.req.headers;
	if (provider === 'gemini') {
		const m = /^\/v1beta\/models\/([^/:]+):([A-Za-z]+)$/.exec(path);
		if (!m) return null;
		const key = typeof h['x-goog-api-key'] === 'string' ? h['x-goog-api-key'] : null;
		if (key === null) {
			return Promise.resolve(x.sendError(403, googleError(403, 'Method doesn\'t allow unregistered callers ' +
				'(callers without established identity). Please use API Key or other form of API consumer identity ' +
				'to call this API.')));
		}
		if (!cfg.geminiKeys.has(key)) {
			return Promise.resolve(x.sendError(400, googleError(400, 'API key not valid. Please pass a valid API key.',
				[{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID',
					domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }])));
		}
		return geminiMethod(x, body, decodeURIComponent(m[1]), m[2], cfg.geminiModels);
	}
	// vertex
	const m = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):([A-Za-z]+)$/
		.exec(path);
	if (!m) return null;
	if (!googleAuthSeen('vertex', h, (v) => {
		const b = typeof v === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(v) : null;
		return b ? b[1] : null;
	}).ok) {
		return Promise.resolve(x.sendError(401, googleError(401, 'Request had invalid authentication credentials. ' +
			'Expected OAuth 2 access token, login cookie or other valid authentication credential.')));
	}
	const model = decodeURIComponent(m[4]);
	if (m[3] === 'anthropic') {
		if (m[5] !== 'rawPredict' && m[5] !== 'streamRawPredict') return null;
		return vertexClaude(x, body, model, m[5]);
	}
	if (m[5] === 'embedContent' || m[5] === 'batchEmbedContents') return null;
	return geminiMethod(x, body, model, m[5], cfg.vertexModels);
}

// The routes of the providers other than OpenAI.  Returns a promise when
// it handled the request, else null (then the answer is a 404 in the
// provider's shape).
function providerRoute(provider, x, method, path, body) {
	if (method !== 'POST') return null;
	switch (provider) {
	case 'anthropic':
		if (path === '/v1/messages') return anthropicMessages(x, body);
		if (path === '/v1/messages/count_tokens') return Promise.resolve(anthropicCountTokens(x, body));
		return null;
	case 'azure': {
		const m = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(path);
		return m ? chatCompletions(x, body, azureFlavor(decodeURIComponent(m[1]))) : null;
	}
	case 'deepseek':
		if (path === '/chat/completions' || path === '/v1/chat/completions') {
			return chatCompletions(x, body, DEEPSEEK_CHAT);
		}
		return null;
	case 'qwen':
		if (path === '/compatible-mode/v1/chat/completions') return chatCompletions(x, body, QWEN_CHAT);
		return null;
	case 'gemini':
	case 'vertex':
	case 'google-oauth':
		return googleRoute(provider, x, path, body);
	default:
		return null;
	}
}

// ---------------------------------------------------------------- bedrock
//
// AWS Bedrock runtime (bedrock-runtime.REGION.amazonaws.com): Converse,
// ConverseStream, InvokeModel and InvokeModelWithResponseStream for
// amazon.nova-lite-v1:0 and anthropic.claude-3-5-haiku-20241022-v1:0.
// Every request's SigV4 signature is recomputed as AWS does (service
// "bedrock", the fixed test credentials, the canonical URI being the path
// as received encoded once more) and refused in AWS's shape when wrong.
// Streams are application/vnd.amazon.eventstream frames with their CRCs.

const BEDROCK_KEYS = new Map([['AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY']]);
const BEDROCK_REGION = 'us-east-1';
const BEDROCK_MODELS = ['amazon.nova-lite-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0'];

const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();

// RFC 3986 encoding of every byte but A-Z a-z 0-9 - . _ ~ (and '/').
function awsEncode(s, keepSlash) {
	let out = '';
	for (const byte of Buffer.from(s, 'utf8')) {
		const c = String.fromCharCode(byte);
		if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
		else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
	}
	return out;
}

// Verify req's SigV4 over path (as received) and the raw body.
// { ok, type, message } — type is AWS's error type when not ok.
function bedrockVerify(req, rawPath, query, raw) {
	const auth = String(req.headers.authorization || '');
	const m = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
	if (!m) {
		return { ok: false, type: auth.startsWith('Bearer ') ? 'UnrecognizedClientException' :
			'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
	}
	const [, akid, date, region, service, signed, sig] = m;
	const secret = BEDROCK_KEYS.get(akid);
	if (secret === undefined) {
		return { ok: false, type: 'UnrecognizedClientException',
			message: 'The security token included in the request is invalid.' };
	}
	const amzDate = String(req.headers['x-amz-date'] || '');
	const names = signed.split(';');
	if (region !== BEDROCK_REGION || service !== 'bedrock' || !amzDate.startsWith(date) ||
	    !names.includes('host') || !names.includes('x-amz-date')) {
		return { ok: false, type: 'InvalidSignatureException',
			message: `Credential should be scoped to a valid region and service 'bedrock'.` };
	}
	const hash = sha256hex(raw);
	if (req.headers['x-amz-content-sha256'] !== undefined && req.headers['x-amz-content-sha256'] !== hash) {
		return { ok: false, type: 'InvalidSignatureException',
			message: 'The provided x-amz-content-sha256 header does not match what was computed.' };
	}
	const hdr = (n) => {
		const v = n === 'host' ? (req.headers.host ?? req.headers[':authority']) : req.headers[n];
		return String(Array.isArray(v) ? v.join(',') : v ?? '').trim().replace(/\s+/g, ' ');
	};
	const q = (query || '').replace(/^\?/, '').split('&').filter(Boolean).map((p) => {
		const i = p.indexOf('=');
		const k = decodeURIComponent(i < 0 ? p : p.slice(0, i)), v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1));
		return [awsEncode(k, false), awsEncode(v, false)];
	}).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
		.map(([k, v]) => `${k}=${v}`).join('&');
	const canonical = [req.method, awsEncode(rawPath, true), q,
		names.map((n) => `${n}:${hdr(n)}\n`).join(''), signed, hash].join('\n');
	const sts = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`,
		sha256hex(canonical)].join('\n');
	const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
	const want = hmac(key, sts).toString('hex');
	if (want !== sig) {
		return { ok: false, type: 'InvalidSignatureException', message: 'The request signature we calculated ' +
			'does not match the signature you provided. Check your AWS Secret Access Key and signing method.' };
	}
	return { ok: true };
}

function bedrockError(x, status, type, message) {
	x.sendJson(status, { message }, { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
		'x-amzn-requestid': `mock-${x.n}` });
}

// One event-stream frame: string headers, then the payload.
function evFrame(headers, payload) {
	const hb = Buffer.concat(Object.entries(headers).map(([k, v]) => {
		const name = Buffer.from(k), val = Buffer.from(v);
		const h = Buffer.alloc(1 + name.length + 3);
		h[0] = name.length;
		name.copy(h, 1);
		h[1 + name.length] = 7;
		h.writeUInt16BE(val.length, 2 + name.length);
		return Buffer.concat([h, val]);
	}));
	const body = Buffer.from(payload);
	const total = 16 + hb.length + body.length;
	const pre = Buffer.alloc(12);
	pre.writeUInt32BE(total, 0);
	pre.writeUInt32BE(hb.length, 4);
	pre.writeUInt32BE(zlib.crc32(pre.subarray(0, 8)), 8);
	const msg = Buffer.concat([pre, hb, body]);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(zlib.crc32(msg), 0);
	return Buffer.concat([msg, crc]);
}
const evEvent = (type, obj) => evFrame({ ':event-type': type, ':content-type': 'application/json',
	':message-type': 'event' }, JSON.stringify(obj));

// Text of Converse messages / system, or of a Claude body.
function bedrockPromptTokens(body) {
	let n = 0;
	const text = (c) => {
		if (typeof c === 'string') n += c.length;
		else if (Array.isArray(c)) for (const b of c) if (b && typeof b.text === 'string') n += b.text.length;
	};
	if (Array.isArray(body.messages)) for (const m of body.messages) text(m && m.content);
	text(body.system);
	return Math.max(1, Math.ceil(n / 4));
}

async function bedrockRoute(x, path, body) {
	const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(path);
	if (!m) return bedrockError(x, 404, 'UnknownOperationException', `Not found: ${path}`);
	const model = decodeURIComponent(m[1]), op = m[2];
	if (!x.bedrockAuth.ok) return bedrockError(x, 403, x.bedrockAuth.type, x.bedrockAuth.message);
	if (!BEDROCK_MODELS.includes(model)) {
		return bedrockError(x, 400, 'ValidationException', 'The provided model identifier is invalid.');
	}
	if (typeof body !== 'object' || body === null || Array.isArray(body)) {
		return bedrockError(x, 400, 'ValidationException', 'Malformed input request, please reformat your input and try again.');
	}
	const claude = model.startsWith('anthropic.');
	const converse = op.startsWith('converse');
	if (!converse && claude && (body.anthropic_version !== 'bedrock-2023-05-31' || 'model' in body ||
	    'stream' in body || !Number.isInteger(body.max_tokens))) {
		return bedrockError(x, 400, 'ValidationException', 'Malformed input request: anthropic_version ' +
			'bedrock-2023-05-31 and max_tokens required, no model or stream.');
	}
	if (converse && !Array.isArray(body.messages)) {
		return bedrockError(x, 400, 'ValidationException', 'messages is required');
	}
	// Directives "[mock chunks=N ...]" in the text of the last user turn.
	const lastUser = (body.messages || []).filter((mm) => mm && mm.role === 'user').at(-1);
	const ltext = lastUser === undefined ? '' : typeof lastUser.content === 'string' ? lastUser.content :
		(Array.isArray(lastUser.content) ? lastUser.content : []).map((b) => (b && b.text) || '').join(' ');
	const k = knobs(x.req.headers, parseDirectives(ltext, 'mock'), { chunks: cfg.chunks, delay: cfg.delayMs,
		status: null, failAfter: null, first: 0, retryAfter: undefined });
	if (!(await x.wait(k.first))) return;
	if (k.status !== null) {
		return bedrockError(x, k.status, k.status === 429 ? 'ThrottlingException' : 'InternalServerException',
			`mock status ${k.status}`);
	}
	const n = k.chunks, input = bedrockPromptTokens(body);
	const pieces = Array.from({ length: n }, (_, i) => `tok${i} `);
	const usage = { inputTokens: input, outputTokens: n, totalTokens: input + n };
	const metrics = { inputTokenCount: input, outputTokenCount: n, invocationLatency: 10, firstByteLatency: 5 };
	if (op === 'converse') {
		if (!(await x.wait(k.delay * n))) return;
		return x.sendJson(200, { output: { message: { role: 'assistant', content: [{ text: pieces.join('') }] } },
			stopReason: 'end_turn', usage, metrics: { latencyMs: 10 } });
	}
	if (op === 'invoke') {
		if (!(await x.wait(k.delay * n))) return;
		if (claude) {
			return x.sendJson(200, { id: `msg_bdrk_${x.n}`, type: 'message', role: 'assistant',
				model: 'claude-3-5-haiku-20241022', content: [{ type: 'text', text: pieces.join('') }],
				stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: input, output_tokens: n } });
		}
		return x.sendJson(200, { output: { message: { role: 'assistant', content: [{ text: pieces.join('') }] } },
			stopReason: 'end_turn', usage });
	}
	// The streams.
	x.res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream',
		'x-amzn-requestid': `mock-${x.n}` });
	const send = (buf) => new Promise((resolve) => x.res.write(buf, () => resolve()));
	const chunk = (obj) => evEvent('chunk', { bytes: Buffer.from(JSON.stringify(obj)).toString('base64') });
	if (op === 'converse-stream') {
		await send(evEvent('messageStart', { role: 'assistant' }));
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			if (k.failAfter === i) return x.fail();
			await send(evEvent('contentBlockDelta', { delta: { text: pieces[i] }, contentBlockIndex: 0 }));
			x.chunksSent++;
		}
		await send(evEvent('contentBlockStop', { contentBlockIndex: 0 }));
		await send(evEvent('messageStop', { stopReason: 'end_turn' }));
		await send(evEvent('metadata', { usage, metrics: { latencyMs: 10 } }));
	} else if (claude) {
		await send(chunk({ type: 'message_start', message: { id: `msg_bdrk_${x.n}`, type: 'message',
			role: 'assistant', model: 'claude-3-5-haiku-20241022', content: [], stop_reason: null,
			stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } }));
		await send(chunk({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			if (k.failAfter === i) return x.fail();
			await send(chunk({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: pieces[i] } }));
			x.chunksSent++;
		}
		await send(chunk({ type: 'content_block_stop', index: 0 }));
		await send(chunk({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null },
			usage: { output_tokens: n } }));
		await send(chunk({ type: 'message_stop', 'amazon-bedrock-invocationMetrics': metrics }));
	} else {
		await send(chunk({ messageStart: { role: 'assistant' } }));
		for (let i = 0; i < n; i++) {
			if (!(await x.wait(k.delay))) return;
			if (k.failAfter === i) return x.fail();
			await send(chunk({ contentBlockDelta: { delta: { text: pieces[i] }, contentBlockIndex: 0 } }));
			x.chunksSent++;
		}
		await send(chunk({ contentBlockStop: { contentBlockIndex: 0 } }));
		await send(chunk({ messageStop: { stopReason: 'end_turn' } }));
		await send(chunk({ metadata: { usage }, 'amazon-bedrock-invocationMetrics': metrics }));
	}
	x.done = true;
	x.res.end();
}

// ---------------------------------------------------------------- dispatch

const servedOn = new WeakMap();	// connection -> requests it carried

async function handle(req, res) {
	let path = '/', query = '';
	try {
		const u = new URL(req.url || '/', 'https://mock.invalid');
		path = u.pathname;
		query = u.search;
	} catch { /* keep "/" */ }
	const x = new Exchange(req, res, path);
	// How many requests this connection (HTTP/2 session or socket) had before.
	const conn = req.stream ? req.stream.session : req.socket;
	if (conn) { x.prior = servedOn.get(conn) ?? 0; servedOn.set(conn, x.prior + 1); }
	const { raw, aborted, tooLarge } = await readBody(req);

	// Body as logged: parsed JSON if it parses, the raw text otherwise,
	// null when empty.
	const text = raw.toString('utf8');
	let body, parsed = false;
	if (text.length > 0) {
		try { body = JSON.parse(text); parsed = true; } catch { body = undefined; }
	}
	const method = req.method || 'GET';
	const headers = loggedHeaders(req.headers);
	const provider = providerOf(headers.host);
	const isChat = provider === 'openai' && path === '/v1/chat/completions' && method === 'POST';
	const isMod = provider === 'openai' && path === '/v1/moderations' && method === 'POST';
	const rec = { ts: Date.now(), method, path };
	if (query) rec.query = query;
	rec.provider = provider;
	rec.host = headers.host ?? null;
	if (provider === 'bedrock') {
		const rawPath = String(req.url || '/').split('?')[0];
		x.bedrockAuth = bedrockVerify(req, rawPath, query, raw);
		rec.auth = { header: req.headers.authorization !== undefined ? 'authorization' : null,
			ok: x.bedrockAuth.ok, sigv4: x.bedrockAuth.ok ? 'valid' : x.bedrockAuth.type };
	} else rec.auth = authSeen(provider, req.headers);
	rec.headers = headers;
	rec.body = text.length === 0 ? null : parsed ? body : text;
	rec.aborted = aborted;
	{	// uploads: each file part's name, size and SHA-256
		const parts = multipartParts(req.headers['content-type'], raw);
		if (parts) {
			rec.files = parts.filter((p) => p.filename !== undefined).map((p) =>
				({ name: p.name, filename: p.filename, type: p.type, size: p.data.length,
					sha256: sha256(p.data) }));
			rec.body = Object.fromEntries(parts.filter((p) => p.filename === undefined)
				.map((p) => [p.name, p.data.toString('utf8')]));
		}
	}
	rec.http = req.httpVersion;
	// Which connection (the client's port) and whether its TLS session was
	// resumed from an earlier connection's (upstream_tls.sh).
	rec.conn = req.socket ? req.socket.remotePort ?? null : null;
	rec.tls_resumed = req.socket && typeof req.socket.isSessionReused === 'function' ?
		req.socket.isSessionReused() : null;
	if (isChat) rec.id = `chatcmpl-mock-${x.n}`;
	if (isMod) rec.id = `modr-mock-${x.n}`;
	if (provider === 'openai' && method === 'POST' && path === '/v1/responses') rec.id = `resp_mock_${x.n}`;
	if (provider !== 'openai' && method === 'POST' && /\/chat\/completions$/.test(path)) rec.id = `chatcmpl-mock-${x.n}`;
	if (provider === 'anthropic' && method === 'POST' && path === '/v1/messages') rec.id = `msg_mock_${x.n}`;
	logLine(rec);
	x.logged = true;
	x.text = text;
	if (aborted || x.gone) return;

	if (tooLarge) return x.sendError(413, errorBody('Request body too large.', 'invalid_request_error'));
	if (isChat) return chatCompletions(x, body);
	if (isMod) return moderations(x, body);
	if (provider === 'openai' && method === 'POST' && path === '/v1/responses') return responses(x, body);
	if (provider === 'openai' && method === 'POST' && path === '/v1/embeddings') return embeddings(x, body);
	if (provider === 'openai' && method === 'POST' && path === '/v1/images/generations') return images(x, body, null);
	if (provider === 'openai' && method === 'POST' && path === '/v1/images/edits')
		return images(x, null, multipartParts(req.headers['content-type'], raw) ?? []);
	if (provider === 'openai' && method === 'POST' && path === '/v1/audio/speech') return speech(x, body);
	if (provider === 'openai' && method === 'POST' && (path === '/v1/audio/transcriptions' ||
	    path === '/v1/audio/translations'))
		return transcription(x, multipartParts(req.headers['content-type'], raw),
			path.endsWith('translations'));
	if (provider === 'openai' && method === 'POST' && path === '/v1/videos')
		return videoCreate(x, body, multipartParts(req.headers['content-type'], raw));
	{
		const m = provider === 'openai' && method === 'GET' &&
			/^\/v1\/videos\/([A-Za-z0-9_-]+)(\/content)?$/.exec(path);
		if (m) return videoGet(x, m[1], m[2] !== undefined);
	}
	if (provider === 'bedrock') return bedrockRoute(x, path, body);
	if (provider !== 'openai') {
		const p = providerRoute(provider, x, method, path, body);
		if (p !== null) return p;
		if (provider === 'anthropic') {
			return x.sendError(404, anthropicError('not_found_error', `Not found: ${method} ${path}`));
		}
		if (provider === 'azure') return x.sendError(404, azureError('404', 'Resource not found'));
		if (provider === 'gemini' || provider === 'vertex') {
			return x.sendError(404, googleError(404, `Not found: ${method} ${path}`));
		}
		return x.sendError(404, errorBody(`Invalid URL (${method} ${path})`, 'invalid_request_error'));
	}

	// Everything else: knobs from headers only, then the simple endpoints.
	const k = knobs(req.headers, {}, { delay: 0, status: null, first: 0, failAfter: null,
		chunks: 0, retryAfter: undefined });
	if (!(await x.wait(k.first + k.delay))) return;
	if (k.failAfter !== null) return x.fail();
	if (k.status !== null) return x.sendError(k.status, statusError(k.status), k.retryAfter);
	if (method === 'GET' && path === '/v1/models') return models(x);
	const mm = /^\/v1\/models\/([^/]+)$/.exec(path);
	if (method === 'GET' && mm) return models(x, decodeURIComponent(mm[1]));
	x.sendError(404, errorBody(`Invalid URL (${method} ${path})`, 'invalid_request_error'));
}

// ---------------------------------------------------------------- server

let cert, key;
try {
	cert = fs.readFileSync(args.cert);
	key = fs.readFileSync(args.key);
} catch (e) {
	usage(`cannot read certificate/key: ${e.message}`);
}

const server = http2.createSecureServer({ cert, key, allowHTTP1: true }, (req, res) => {
	handle(req, res).catch((e) => {
		// A bug here must not take the mock down: answer 500 if we still can.
		process.stderr.write(`openai_mock: handler error: ${e && e.stack || e}\n`);
		try {
			if (!res.headersSent) {
				res.writeHead(500, { 'content-type': 'application/json' });
				res.end(JSON.stringify(statusError(500)));
			} else {
				res.end();
			}
		} catch { /* already gone */ }
	});
});

// No Nagle: every SSE event leaves as soon as it is written.
server.on('secureConnection', (s) => s.setNoDelay(true));
server.on('tlsClientError', () => {});
server.on('sessionError', () => {});
server.on('clientError', (_e, sock) => { try { sock.destroy(); } catch { /* gone */ } });
server.on('error', (e) => {
	process.stderr.write(`openai_mock: server error: ${e.message}\n`);
	process.exit(1);
});


// ---------------------------------------------------------------- Realtime
// GET /v1/realtime?model=M as a WebSocket upgrade (HTTP/1.1; the http2
// server with allowHTTP1 emits 'upgrade' for those), minimal server-side
// RFC 6455 framing, no package.  Checks the Bearer key like the HTTP API;
// sends session.created on open; answers each response.create with
// response.created, three response.output_text.delta and response.done
// carrying usage (input 12 + 2 per user message so far, output 3, cached
// 0); echoes nothing else.  Logged: the upgrade like a request (method,
// path, query, provider, host, auth, headers, event "realtime_open"), each
// client message type ("realtime_msg") and the close, by whom
// ("realtime_close", by "client" or "peer_gone").

const REALTIME_OUT = [12, 3];  // base input tokens, output tokens

function wsFrame(op, payload) {
	const n = payload.length;
	const head = n < 126 ? Buffer.from([0x80 | op, n]) :
		n < 65536 ? Buffer.from([0x80 | op, 126, n >> 8, n & 255]) :
			Buffer.concat([Buffer.from([0x80 | op, 127]), (() => {
				const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b;
			})()]);
	return Buffer.concat([head, payload]);
}

function realtimeUpgrade(req, sock, head) {
	const [path, query] = (req.url || '').split('?', 2);
	const headers = loggedHeaders(req.headers);
	const provider = providerOf(headers.host);
	const auth = authSeen(provider, req.headers);
	const n = ++seq;
	const model = new URLSearchParams(query || '').get('model');
	logLine({ ts: Date.now(), event: 'realtime_open', method: req.method, path, query: query ?? null,
		provider, host: headers.host ?? null, auth, headers, id: `rt_mock_${n}`, model });
	const refuse = (status, text, body) => {
		sock.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\n` +
			`content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
	};
	if (provider !== 'openai' || path !== '/v1/realtime' || req.method !== 'GET') {
		return refuse(404, 'Not Found', JSON.stringify(errorBody(`Invalid URL (${req.method} ${path})`,
			'invalid_request_error')));
	}
	if (!auth.ok) {
		return refuse(401, 'Unauthorized', JSON.stringify(errorBody('Incorrect API key provided.',
			'invalid_request_error', 'invalid_api_key')));
	}
	const wkey = req.headers['sec-websocket-key'];
	if (typeof wkey !== 'string' || !model) {
		return refuse(400, 'Bad Request', JSON.stringify(errorBody('Bad WebSocket upgrade.',
			'invalid_request_error')));
	}
	const accept = crypto.createHash('sha1').update(wkey + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
		.digest('base64');
	sock.setNoDelay(true);
	sock.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
		`sec-websocket-accept: ${accept}\r\n\r\n`);
	let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
	let parts = [];
	let userMsgs = 0;
	let closed = false;
	let ev = 0;
	const send = (o) => { if (!closed) sock.write(wsFrame(1, Buffer.from(JSON.stringify(o)))); };
	const close = (by) => {
		if (closed) return;
		closed = true;
		logLine({ ts: Date.now(), event: 'realtime_close', id: `rt_mock_${n}`, by, user_messages: userMsgs });
	};
	send({ type: 'session.created', event_id: `event_${n}_${++ev}`,
		session: { id: `sess_mock_${n}`, object: 'realtime.session', model } });
	const onMessage = (op, data) => {
		if (op !== 1) return;
		let m;
		try { m = JSON.parse(data.toString('utf8')); } catch { return; }
		userMsgs++;
		logLine({ ts: Date.now(), event: 'realtime_msg', id: `rt_mock_${n}`, type: m && m.type });
		if (!m || m.type !== 'response.create') return;
		// Test directives in response.instructions: "[mock close]" ends the
		// session with a close frame (1000), "[mock drop]" drops the socket.
		const instr = String(m.response?.instructions ?? '');
		if (instr.includes('[mock close]')) {
			close('server');
			sock.end(wsFrame(8, Buffer.from([3, 232])));
			return;
		}
		if (instr.includes('[mock drop]')) { close('server_drop'); sock.destroy(); return; }
		// "[mock big]": 384 deltas of 16 KiB (6 MiB: under what agentd holds for a session, over what the kernel buffers of a paused reader take) each before response.done.
		const deltas = instr.includes('[mock big]') ?
			Array.from({ length: 384 }, (_, i) => String(i % 10).repeat(16384)) : ['Hello', ' from', ' realtime'];
		const rid = `resp_mock_${n}_${userMsgs}`;
		const base = { id: rid, object: 'realtime.response', output: [] };
		send({ type: 'response.created', event_id: `event_${n}_${++ev}`, response: { ...base, status: 'in_progress' } });
		for (const d of deltas) {
			send({ type: 'response.output_text.delta', event_id: `event_${n}_${++ev}`, response_id: rid,
				item_id: `item_${rid}`, output_index: 0, content_index: 0, delta: d });
		}
		const input = REALTIME_OUT[0] + 2 * (userMsgs - 1);
		send({ type: 'response.done', event_id: `event_${n}_${++ev}`, response: { ...base, status: 'completed',
			usage: { total_tokens: input + REALTIME_OUT[1], input_tokens: input, output_tokens: REALTIME_OUT[1],
				input_token_details: { cached_tokens: 0, text_tokens: input, audio_tokens: 0 },
				output_token_details: { text_tokens: REALTIME_OUT[1], audio_tokens: 0 } } } });
	};
	sock.on('data', (d) => {
		buf = Buffer.concat([buf, d]);
		for (;;) {
			if (buf.length < 2) return;
			const fin = buf[0] & 0x80, op = buf[0] & 0x0f, masked = buf[1] & 0x80;
			let len = buf[1] & 0x7f, off = 2;
			if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
			else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
			if (!masked || len > 16 * 1024 * 1024) { close('protocol_error'); sock.destroy(); return; }
			if (buf.length < off + 4 + len) return;
			const mask = buf.subarray(off, off + 4);
			const p = Buffer.from(buf.subarray(off + 4, off + 4 + len));
			for (let i = 0; i < p.length; i++) p[i] ^= mask[i & 3];
			buf = buf.subarray(off + 4 + len);
			if (op === 8) {
				close('client');
				try { sock.end(wsFrame(8, p.subarray(0, 2))); } catch { /* gone */ }
				return;
			}
			if (op === 9) { sock.write(wsFrame(10, p)); continue; }
			if (op === 10) continue;
			parts.push(p);
			if (fin) {
				const whole = Buffer.concat(parts);
				const first = op === 0 ? parts.op : op;
				parts = [];
				onMessage(first ?? op, whole);
			} else if (op !== 0) {
				parts.op = op;
			}
		}
	});
	sock.on('close', () => close('peer_gone'));
	sock.on('error', () => close('peer_gone'));
}

server.on('upgrade', realtimeUpgrade);

server.listen(cfg.port, cfg.host, () => {
	process.stdout.write(`listening ${server.address().port}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('uncaughtException', (e) => {
	process.stderr.write(`openai_mock: uncaught: ${e && e.stack || e}\n`);
});
process.on('unhandledRejection', (e) => {
	process.stderr.write(`openai_mock: unhandled rejection: ${e && e.stack || e}\n`);
});
