#!/usr/bin/env node
// bench/load.mjs: a small closed-loop HTTP load generator (Node built-ins
// only) for POST /v1/chat/completions.
//
//   node bench/load.mjs --url URL [--token T] [--ca PEM | --insecure]
//        [--servername NAME] [--mode plain|stream] [--concurrency N]
//        [--warmup S] [--duration S] [--content TEXT] [--model M]
//
// N workers each send one request at a time over keep-alive connections
// (one http(s).Agent, maxSockets N).  After --warmup seconds the counters
// reset; requests that START inside the next --duration seconds are
// measured (the ones in flight at the end are awaited, so none of them is
// counted as an error).  Prints one JSON object on stdout:
//   plain:  rps, p50_ms, p99_ms (request → whole body), ok, errors, error_kinds
//   stream: rps, ttfb_p50_ms, ttfb_p99_ms (request → first body byte),
//           gap_mean_ms, gap_p99_ms, gap_max_ms (arrival gaps between
//           consecutive content events, i.e. `delta.content` chunks),
//           coalesced (events that arrived within 2 ms of the previous
//           content event), events, ok, errors, error_kinds
// A stream counts as ok only if it is 200 and ends with `data: [DONE]`.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

function parseArgs(argv) {
    const o = {
        mode: 'plain', concurrency: 32, warmup: 2, duration: 10,
        content: 'Say hello.', model: 'gpt-4o-mini', timeout: 30,
    };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i];
        const v = () => {
            if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
            return argv[++i];
        };
        switch (k) {
        case '--url': o.url = v(); break;
        case '--token': o.token = v(); break;
        case '--ca': o.ca = v(); break;
        case '--insecure': o.insecure = true; break;
        case '--servername': o.servername = v(); break;
        case '--mode': o.mode = v(); break;
        case '--concurrency': o.concurrency = +v(); break;
        case '--warmup': o.warmup = +v(); break;
        case '--duration': o.duration = +v(); break;
        case '--content': o.content = v(); break;
        case '--model': o.model = v(); break;
        case '--timeout': o.timeout = +v(); break;
        default: throw new Error(`unknown option ${k}`);
        }
    }
    if (!o.url) throw new Error('--url is required');
    if (!['plain', 'stream'].includes(o.mode)) throw new Error('--mode plain|stream');
    if (!(o.concurrency >= 1)) throw new Error('--concurrency must be >= 1');
    return o;
}

function pct(sorted, p) {
    if (sorted.length === 0) return null;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    return sorted[i];
}
const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);

async function main() {
    const o = parseArgs(process.argv);
    const url = new URL(o.url);
    const tls = url.protocol === 'https:';
    const mod = tls ? https : http;
    const agentOpts = { keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency };
    if (tls) {
        if (o.ca) agentOpts.ca = fs.readFileSync(o.ca);
        if (o.insecure) agentOpts.rejectUnauthorized = false;
        if (o.servername) agentOpts.servername = o.servername;
    }
    const agent = new mod.Agent(agentOpts);
    let conns = 0;
    const body = JSON.stringify({
        model: o.model,
        messages: [{ role: 'user', content: o.content }],
        ...(o.mode === 'stream' ? { stream: true } : {}),
    });
    const headers = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
    };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const reqOpts = {
        method: 'POST', agent, headers,
        hostname: url.hostname, port: url.port || (tls ? 443 : 80),
        path: url.pathname + url.search,
    };
    if (tls && o.servername) reqOpts.servername = o.servername;

    const timeline = [];	// completions per second since the start (warm-up included)
    const tStart = performance.now();
    const st = {
        measuring: false, ok: 0, errors: 0, kinds: {},
        lat: [], ttfb: [], gaps: [], coalesced: 0, events: 0,
    };
    const addErr = (kind) => {
        st.errors++;
        st.kinds[kind] = (st.kinds[kind] || 0) + 1;
    };

    // One request; resolves when it is over (never rejects).
    function one() {
        return new Promise((resolve) => {
            const measured = st.measuring;
            const t0 = performance.now();
            let done = false;
            const finish = (err, res) => {
                if (done) return;
                done = true;
                const sec = Math.floor((performance.now() - tStart) / 1000);
                timeline[sec] = (timeline[sec] || 0) + 1;
                if (measured) {
                    if (err) addErr(err);
                    else {
                        st.ok++;
                        if (o.mode === 'plain') st.lat.push(res.t - t0);
                        else {
                            st.ttfb.push(res.ttfb - t0);
                            st.events += res.arrivals.length;
                            for (let i = 1; i < res.arrivals.length; i++) {
                                const g = res.arrivals[i] - res.arrivals[i - 1];
                                st.gaps.push(g);
                                if (g < 2) st.coalesced++;
                            }
                        }
                    }
                }
                resolve();
            };
            const req = mod.request(reqOpts, (res) => {
                let ttfb = null;
                let buf = '';
                const arrivals = [];
                let sawDone = false;
                let size = 0;
                res.setEncoding('utf8');
                res.on('data', (chunk) => {
                    const now = performance.now();
                    if (ttfb === null) ttfb = now;
                    size += chunk.length;
                    if (o.mode === 'plain') return;
                    buf += chunk;
                    let i;
                    while ((i = buf.indexOf('\n\n')) >= 0) {
                        const ev = buf.slice(0, i);
                        buf = buf.slice(i + 2);
                        if (ev.startsWith('data: [DONE]')) sawDone = true;
                        else if (ev.includes('"content":"tok')) arrivals.push(now);
                    }
                });
                res.on('end', () => {
                    const now = performance.now();
                    if (res.statusCode !== 200) return finish(`status ${res.statusCode}`);
                    if (o.mode === 'plain') {
                        if (size === 0) return finish('empty body');
                        return finish(null, { t: now });
                    }
                    if (!sawDone) return finish('stream without [DONE]');
                    finish(null, { ttfb, arrivals });
                });
                res.on('error', (e) => finish(e.code || e.message));
                res.on('aborted', () => finish('response aborted'));
            });
            req.on('socket', (s) => { if (!s.swbSeen) { s.swbSeen = true; conns++; } });
            req.setTimeout(o.timeout * 1000, () => { req.destroy(new Error('timeout')); });
            req.on('error', (e) => finish(e.code || e.message));
            req.end(body);
        });
    }

    const warmEnd = tStart + o.warmup * 1000;
    const end = warmEnd + o.duration * 1000;
    let mStart = null;
    const timer = setTimeout(() => {
        st.measuring = true;
        mStart = performance.now();
    }, o.warmup * 1000);
    if (o.warmup <= 0) { st.measuring = true; mStart = tStart; clearTimeout(timer); }

    async function worker() {
        while (performance.now() < end) await one();
    }
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const elapsed = (Math.max(performance.now(), end) - (mStart ?? warmEnd)) / 1000;
    agent.destroy();

    const out = {
        mode: o.mode, url: o.url, concurrency: o.concurrency,
        duration_s: r2(elapsed), ok: st.ok, errors: st.errors, error_kinds: st.kinds,
        rps: r2(st.ok / elapsed),
        connections: conns,
        per_second: Array.from(timeline, (x) => x || 0),
    };
    if (o.mode === 'plain') {
        st.lat.sort((a, b) => a - b);
        out.p50_ms = r2(pct(st.lat, 50));
        out.p99_ms = r2(pct(st.lat, 99));
    } else {
        st.ttfb.sort((a, b) => a - b);
        st.gaps.sort((a, b) => a - b);
        out.ttfb_p50_ms = r2(pct(st.ttfb, 50));
        out.ttfb_p99_ms = r2(pct(st.ttfb, 99));
        out.gap_mean_ms = r2(st.gaps.length ? st.gaps.reduce((a, b) => a + b, 0) / st.gaps.length : null);
        out.gap_p99_ms = r2(pct(st.gaps, 99));
        out.gap_max_ms = r2(st.gaps.length ? st.gaps[st.gaps.length - 1] : null);
        out.events = st.events;
        out.gaps = st.gaps.length;
        out.coalesced = st.coalesced;
    }
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
    process.stderr.write(`load: ${e.message}\n`);
    process.exit(2);
});
