// tests/e2e/media.test.mjs — owns the end-to-end tests of the OpenAI media
// endpoints through the hub with the official `openai` SDK: image
// generation and edits (a real PNG upload whose bytes reach the provider
// unchanged), speech (audio bytes reach the user while the provider is still
// sending; billed by the characters of its input, in the hub's ledger),
// transcriptions and translations (uploads unchanged).  Needs SWB_URL,
// SWB_TOKEN, SWB_DIR, SWB_ADMIN and SWB_BIN from `tests/stack up`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import OpenAI, { toFile } from 'openai';

const { SWB_URL, SWB_TOKEN, SWB_DIR, SWB_ADMIN, SWB_BIN } = process.env;
if (!SWB_URL || !SWB_TOKEN || !SWB_DIR || !SWB_ADMIN || !SWB_BIN)
	throw new Error('SWB_URL, SWB_TOKEN, SWB_DIR, SWB_ADMIN and SWB_BIN must be set (run tests/stack up)');
const ctl = (...args) => JSON.parse(execFileSync(path.join(SWB_BIN, 'hubctl'),
	['-s', SWB_ADMIN, '--json', ...args], { encoding: 'utf8' }));
// The hub's ledger entry of one request (its x-request-id), or undefined.
function ledgerRow(rid) {
	const agents = ctl('agent', 'list');
	const x = ctl('ledger', 'export', String((agents.agents ?? agents)[0].id));
	const cols = x.header.trim().split(',');
	return x.csv.split('\n').filter((l) => l !== '')
		.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])))
		.find((r) => r.request_id === rid);
}
const MOCK_LOG = path.join(SWB_DIR, 'mock.jsonl');
const client = () => new OpenAI({ apiKey: SWB_TOKEN, baseURL: SWB_URL, maxRetries: 0,
	timeout: 30_000 });
const mockLog = () => fs.readFileSync(MOCK_LOG, 'utf8').split('\n')
	.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const lastUpstream = (p) => mockLog().filter((e) => !e.event && e.path === p).at(-1);
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// A real PNG: 2x2 RGBA, built here (signature, IHDR, IDAT, IEND, CRCs).
function png() {
	const crcTable = Array.from({ length: 256 }, (_, n) => {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		return c >>> 0;
	});
	const crc = (buf) => {
		let c = 0xffffffff;
		for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
	const chunk = (type, data) => {
		const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
		const td = Buffer.concat([Buffer.from(type), data]);
		const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
		return Buffer.concat([len, td, c]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(2, 0); ihdr.writeUInt32BE(2, 4); ihdr[8] = 8; ihdr[9] = 6;
	const raw = Buffer.from([0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
	return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
		chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

test('images.generate: an image and the token usage', async () => {
	const r = await client().images.generate({ model: 'gpt-image-1', prompt: 'a red square' });
	assert.equal(r.data.length, 1);
	const img = Buffer.from(r.data[0].b64_json, 'base64');
	assert.equal(img.subarray(1, 4).toString(), 'PNG');
	assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
});

test('images.edit: the uploaded PNG reaches the provider byte for byte', async () => {
	const bytes = png();
	const r = await client().images.edit({ model: 'gpt-image-1', prompt: 'make it blue',
		image: await toFile(bytes, 'square.png', { type: 'image/png' }) });
	assert.equal(r.data.length, 1);
	const up = lastUpstream('/v1/images/edits');
	assert.equal(up.host, 'api.openai.com');
	assert.equal(up.files.length, 1);
	assert.equal(up.files[0].size, bytes.length);
	assert.equal(up.files[0].sha256, sha256(bytes), 'the upload is unchanged upstream');
	assert.equal(up.body.model, 'gpt-image-1');
	assert.ok(!JSON.stringify(up).includes(SWB_TOKEN));
});

test('audio.speech.create: bytes arrive while the provider is still sending', async () => {
	ctl('price', 'set', 'gpt-4o-mini-tts', '--audio-char', '0.00002');	// 20 micro-units a character
	const input = 'héllo there [mock chunks=6 delay=200]';	// 37 characters, 38 bytes
	const t0 = performance.now();
	const res = await client().audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy',
		input, response_format: 'mp3' });
	assert.equal(res.headers.get('content-type'), 'audio/mpeg');
	const arrivals = [];
	let total = Buffer.alloc(0);
	for await (const piece of res.body) {
		arrivals.push(performance.now() - t0);
		total = Buffer.concat([total, Buffer.from(piece)]);
	}
	assert.equal(total.length, 6 * 4096, 'every byte arrived');
	for (let i = 0; i < 6; i++)
		assert.equal(total.subarray(i * 4096, i * 4096 + 7).toString(), `CHUNK${i}:`.slice(0, 7));
	// The provider takes ~1.2 s: the first bytes came long before the last.
	assert.ok(arrivals.at(-1) - arrivals[0] > 600,
		`pieces spread over time: ${arrivals.map(Math.round).join(',')}`);
	// Billed by characters (not bytes), in the hub's ledger.
	const rid = res.headers.get('x-request-id');
	let row;
	for (let i = 0; i < 50 && !(row = ledgerRow(rid)); i++) await new Promise((r) => setTimeout(r, 100));
	assert.ok(row, `no ledger entry for ${rid}`);
	assert.equal(row.audio_chars, '37');
	assert.equal(row.amount, '0.000740');
});

test('audio.transcriptions.create and translations: uploads unchanged, usage as reported', async () => {
	const audio = Buffer.from(Array.from({ length: 40000 }, (_, i) => (i * 7) % 251));
	const t = await client().audio.transcriptions.create({ model: 'gpt-4o-transcribe',
		file: await toFile(audio, 'talk.wav', { type: 'audio/wav' }) });
	assert.equal(t.text, `transcribed ${audio.length} bytes ${sha256(audio)}`);
	assert.equal(t.usage.type, 'tokens');
	const up = lastUpstream('/v1/audio/transcriptions');
	assert.equal(up.files[0].sha256, sha256(audio));
	const tr = await client().audio.translations.create({ model: 'whisper-1',
		file: await toFile(audio, 'talk.wav', { type: 'audio/wav' }) });
	assert.equal(tr.text, `translated ${audio.length} bytes ${sha256(audio)}`);
});
