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
//        [--delay-ms 20] [--moderation-words w1,w2]
//
// Prints exactly one line, `listening PORT`, on stdout once it accepts
// connections; diagnostics go to stderr.  SIGTERM/SIGINT exit 0.

import fs from 'node:fs';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

// ---------------------------------------------------------------- options

function usage(msg) {
	if (msg) process.stderr.write(`openai_mock: ${msg}\n`);
	process.stderr.write(
		'usage: openai_mock.mjs --cert PEM --key PEM [--port N] [--host ADDR] [--log FILE]\n' +
		'       [--keys k1,k2] [--models m1,m2] [--chunks N] [--delay-ms MS]\n' +
		'       [--moderation-words w1,w2]\n');
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
			'moderation-words': { type: 'string', default: '' },
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
	modWords: list(args['moderation-words']).map((w) => w.toLowerCase()),
};

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

// POST /v1/chat/completions
async function chatCompletions(x, body) {
	x.id = `chatcmpl-mock-${x.n}`;
	if (!checkAuth(x)) return;
	if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
		return x.sendError(400, parseError());
	}
	const messages = Array.isArray(body.messages) ? body.messages : null;
	let lastUser = '';
	for (const m of messages || []) {
		if (m && typeof m === 'object' && m.role === 'user') lastUser = contentText(m.content);
	}
	const k = knobs(x.req.headers, parseDirectives(lastUser, 'mock'),
		{ chunks: cfg.chunks, delay: cfg.delayMs, status: null, failAfter: null, first: 0,
			retryAfter: undefined });

	if (!(await x.wait(k.first))) return;
	if (k.status !== null) {
		if (!(await x.wait(k.delay))) return;
		return x.sendError(k.status, statusError(k.status, body.model), k.retryAfter);
	}

	if (typeof body.model !== 'string' || body.model === '') {
		return x.sendError(400, errorBody('you must provide a model parameter', 'invalid_request_error', null, 'model'));
	}
	if (!messages || messages.length === 0) {
		return x.sendError(400, errorBody(messages ? "Invalid 'messages': empty array. Expected an array with minimum length 1."
			: "Missing required parameter: 'messages'.", 'invalid_request_error',
		messages ? 'empty_array' : 'missing_required_parameter', 'messages'));
	}
	if (!cfg.models.includes(body.model)) {
		return x.sendError(404, statusError(404, body.model));
	}

	// The reply: chunk i is `tok${i} `; max_tokens (or max_completion_tokens)
	// below the chunk count cuts it short with finish_reason "length".
	let n = k.chunks, finish = 'stop';
	const limit = Number.isInteger(body.max_completion_tokens) ? body.max_completion_tokens
		: Number.isInteger(body.max_tokens) ? body.max_tokens : null;
	if (limit !== null && limit >= 0 && limit < n) { n = limit; finish = 'length'; }
	const pieces = Array.from({ length: n }, (_, i) => `tok${i} `);
	const usage = () => {
		const p = promptTokens(messages);
		return { prompt_tokens: p, completion_tokens: n, total_tokens: p + n,
			prompt_tokens_details: { cached_tokens: 0 },
			completion_tokens_details: { reasoning_tokens: 0 } };
	};
	const created = nowS();

	if (body.stream === true) {
		const includeUsage = !!(body.stream_options && typeof body.stream_options === 'object' &&
			body.stream_options.include_usage === true);
		const chunk = (delta, finishReason) => {
			const c = { id: x.id, object: 'chat.completion.chunk', created, model: body.model,
				system_fingerprint: SYSTEM_FINGERPRINT,
				choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
			if (includeUsage) c.usage = null;
			return c;
		};
		x.startEvents();
		x.event(chunk({ role: 'assistant', content: '' }, null));
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
			x.event({ id: x.id, object: 'chat.completion.chunk', created, model: body.model,
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
	x.sendJson(200, {
		id: x.id, object: 'chat.completion', created, model: body.model,
		choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), refusal: null },
			logprobs: null, finish_reason: finish }],
		usage: usage(),
		system_fingerprint: SYSTEM_FINGERPRINT,
	});
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

// ---------------------------------------------------------------- dispatch

async function handle(req, res) {
	let path = '/', query = '';
	try {
		const u = new URL(req.url || '/', 'https://mock.invalid');
		path = u.pathname;
		query = u.search;
	} catch { /* keep "/" */ }
	const x = new Exchange(req, res, path);
	const { raw, aborted, tooLarge } = await readBody(req);

	// Body as logged: parsed JSON if it parses, the raw text otherwise,
	// null when empty.
	const text = raw.toString('utf8');
	let body, parsed = false;
	if (text.length > 0) {
		try { body = JSON.parse(text); parsed = true; } catch { body = undefined; }
	}
	const method = req.method || 'GET';
	const isChat = path === '/v1/chat/completions' && method === 'POST';
	const isMod = path === '/v1/moderations' && method === 'POST';
	const rec = { ts: Date.now(), method, path };
	if (query) rec.query = query;
	rec.headers = loggedHeaders(req.headers);
	rec.body = text.length === 0 ? null : parsed ? body : text;
	rec.aborted = aborted;
	rec.http = req.httpVersion;
	if (isChat) rec.id = `chatcmpl-mock-${x.n}`;
	if (isMod) rec.id = `modr-mock-${x.n}`;
	logLine(rec);
	x.logged = true;
	if (aborted || x.gone) return;

	if (tooLarge) return x.sendError(413, errorBody('Request body too large.', 'invalid_request_error'));
	if (isChat) return chatCompletions(x, body);
	if (isMod) return moderations(x, body);

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
