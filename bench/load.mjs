#!/usr/bin/env node
// bench/load.mjs: a small closed-loop HTTP load generator (Node built-ins
// only) for POST /v1/chat/completions.
//
//   node bench/load.mjs --url URL [--token T] [--ca PEM | --insecure]
//        [--servername NAME] [--mode plain|stream] [--concurrency N]
//        [--warmup S] [--duration S] [--content TEXT] [--model M] [--rate R]
//
// N workers each send one request at a time over keep-alive connections
// (one http(s).Agent, maxSockets N).  With --rate R (plain and stream)
// the loop is open instead: a request starts every 1/R s whatever the
// ones before it are doing, at most N in flight at once over the Agent's
// N sockets (the rest wait for one), so a paced row sees what a lightly
// loaded proxy costs, each request nearly alone.  After --warmup seconds
// the counters reset; requests that START inside the next --duration
// seconds are measured (the ones in flight at the end are awaited, so none
// of them is counted as an error).  Prints one JSON object on stdout:
//   plain:  rps, p50_ms, p99_ms (request → whole body), ok, errors, error_kinds
//   stream: rps, ttfb_p50_ms, ttfb_p99_ms (request → first body byte),
//           gap_mean_ms, gap_p99_ms, gap_max_ms (arrival gaps between
//           consecutive content events, i.e. `delta.content` chunks),
//           coalesced (events that arrived within 2 ms of the previous
//           content event), events, ok, errors, error_kinds
// A stream counts as ok only if it is 200 and ends with `data: [DONE]`.
//
// --mode hold [--gap-log FILE]: N concurrent slow streams, each opened once (its own
// connection, no keep-alive), the N starts spread evenly over --ramp
// seconds; then every stream is held to its end.  See hold() below.  When
// the mock stamps its chunks (openai_mock.mjs --stamp), it also prints
// transit_p50_ms / transit_p99_ms / transit_max_ms: an event's arrival
// less the mock's stamp in it (one monotonic clock), the time the path
// took, which the mock's own stalls do not move.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
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
        case '--rate': o.rate = +v(); break;
        case '--ramp': o.ramp = +v(); break;
        case '--plateau-file': o.plateauFile = v(); break;
        case '--gap-log': o.gapLog = v(); break;
        default: throw new Error(`unknown option ${k}`);
        }
    }
    if (!o.url) throw new Error('--url is required');
    if (!['plain', 'stream', 'hold'].includes(o.mode)) throw new Error('--mode plain|stream|hold');
    if (!(o.concurrency >= 1)) throw new Error('--concurrency must be >= 1');
    if (o.rate !== undefined && !(o.rate > 0)) throw new Error('--rate must be > 0');
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
    if (o.mode === 'hold') return hold(o);
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
    // Paced: one start every 1/rate s from the first, late timers
    // catching up rather than slipping the schedule.
    async function paced() {
        const inflight = [];
        for (let next = performance.now(); next < end; next += 1000 / o.rate) {
            const wait = next - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            inflight.push(one());
        }
        await Promise.all(inflight);
    }
    if (o.rate) await paced();
    else await Promise.all(Array.from({ length: o.concurrency }, worker));
    const elapsed = (Math.max(performance.now(), end) - (mStart ?? warmEnd)) / 1000;
    agent.destroy();

    const out = {
        mode: o.mode, url: o.url, concurrency: o.concurrency, ...(o.rate ? { rate: o.rate } : {}),
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

// A byte-string matcher fed chunk after chunk (KMP, so a marker split
// across two reads is still found); counts matches, allocates nothing.
function matcher(text) {
    const m = Buffer.from(text, 'latin1');
    const fail = new Int32Array(m.length);
    for (let i = 1, k = 0; i < m.length; i++) {
        while (k > 0 && m[i] !== m[k]) k = fail[k - 1];
        if (m[i] === m[k]) k++;
        fail[i] = k;
    }
    return { m, fail };
}
// Feed buf to a matcher in state st (a number: bytes matched); returns the
// new state * 2^20 + matches (matches < 2^20 per chunk).
function feed(mt, st, buf) {
    const { m, fail } = mt;
    let k = st, n = 0;
    for (let i = 0; i < buf.length; i++) {
        const b = buf[i];
        while (k > 0 && b !== m[k]) k = fail[k - 1];
        if (b === m[k]) k++;
        if (k === m.length) { n++; k = fail[k - 1]; }
    }
    return k * 1048576 + n;
}

// Histogram of milliseconds at 0.05 ms resolution up to 120 s (the last
// bucket holds anything longer): percentiles without keeping samples.
const H_RES = 0.05, H_N = Math.ceil(120000 / H_RES) + 1;
function hist() { return { b: new Uint32Array(H_N), n: 0, sum: 0, max: 0 }; }
function hadd(h, ms) {
    const i = Math.min(H_N - 1, Math.max(0, Math.round(ms / H_RES)));
    h.b[i]++; h.n++; h.sum += ms;
    if (ms > h.max) h.max = ms;
}
function hpct(h, p) {
    if (h.n === 0) return null;
    const want = Math.max(1, Math.ceil(p / 100 * h.n));
    for (let i = 0, c = 0; i < H_N; i++) if ((c += h.b[i]) >= want) return i * H_RES;
    return h.max;
}

// --mode hold: --concurrency N streams of one request each, stream i
// started at i * ramp / N seconds on its own connection, every one held
// to its end (or --timeout).  Per content event nothing is allocated but
// what Node's HTTP parser does: the SSE bytes go through two streaming
// matchers (content events, `data: [DONE]`), gaps and TTFBs into
// histograms.  When every stream has been started and each has either
// its response head or an error, the "plateau" is reached: {t_ms, open}
// is written to --plateau-file (the caller measures the servers' memory
// then) and SIGUSR2 afterwards records how many were still open.  Prints
// one JSON line: ok, errors, error_kinds, open_at_plateau,
// open_at_mark, peak_open, ttfb/gap percentiles, coalesced (gaps under
// 2 ms: two events in one read), events, the client's own CPU and RSS.
async function hold(o) {
    const url = new URL(o.url);
    const secure = url.protocol === 'https:';
    const mod = secure ? https : http;
    const N = o.concurrency, ramp = (o.ramp ?? 5) * 1000;
    const body = JSON.stringify({
        model: o.model, messages: [{ role: 'user', content: o.content }], stream: true,
    });
    const headers = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
    };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const reqOpts = {
        method: 'POST', agent: false, headers,
        hostname: url.hostname, port: url.port || (secure ? 443 : 80),
        path: url.pathname + url.search,
    };
    if (secure) {
        // One TLS context for every connection (a CA per request would
        // parse the PEM 10,000 times).
        reqOpts.secureContext = tls.createSecureContext(o.ca ? { ca: fs.readFileSync(o.ca) } : {});
        if (o.insecure) reqOpts.rejectUnauthorized = false;
        if (o.servername) reqOpts.servername = o.servername;
    }
    const mContent = matcher('"content":"tok'), mDone = matcher('data: [DONE]');
    const gaps = hist(), ttfbs = hist(), transit = hist();
    const STAMP = Buffer.from('fp_t', 'latin1');
    // The mock's stamps in buf (µs, monotonic) against nowUs; a stamp
    // cut across two reads is skipped.
    const stamps = (buf, nowUs) => {
        for (let at = buf.indexOf(STAMP); at >= 0; at = buf.indexOf(STAMP, at + 4)) {
            let i = at + 4, v = 0;
            while (i < buf.length && buf[i] >= 48 && buf[i] <= 57) v = v * 10 + (buf[i++] - 48);
            if (i > at + 4 && i < buf.length && buf[i] === 34) hadd(transit, (nowUs - v) / 1000);
        }
    };
    // --gap-log FILE: one line per gap over 1150 ms (the bench's pace is
    // 1000 ms): "t_ms gap_ms stream event", t since the first start.  A
    // stall that holds every stream at once shows as a run of lines.
    const slowLog = o.gapLog ? [] : null;
    const kinds = {};
    let started = 0, settled = 0, open = 0, peak = 0, ended = 0, ok = 0, errors = 0;
    let events = 0, coalesced = 0, plateau = null, mark = null;
    const cpu0 = process.cpuUsage(), t0 = performance.now();
    let finishAll;
    const allDone = new Promise((r) => { finishAll = r; });

    const checkPlateau = () => {
        if (plateau !== null || started < N || settled < N) return;
        plateau = { t_ms: Math.round(performance.now() - t0), open };
        if (o.plateauFile) fs.writeFileSync(o.plateauFile, JSON.stringify(plateau) + '\n');
    };
    process.on('SIGUSR2', () => { mark = { t_ms: Math.round(performance.now() - t0), open }; });

    function one() {
        started++;
        const ts = performance.now();
        const sid = started;
        let nev = 0;
        let gotHead = false, done = false, last = -1, cst = 0, dst = 0, sawDone = false, status = 0;
        const end = (err) => {
            if (done) return;
            done = true;
            if (gotHead) open--;
            else settled++;
            if (err) { errors++; kinds[err] = (kinds[err] || 0) + 1; } else ok++;
            if (++ended === N) finishAll();
            checkPlateau();
        };
        const req = mod.request(reqOpts, (res) => {
            status = res.statusCode;
            res.on('data', (buf) => {
                const now = performance.now();
                stamps(buf, Number(process.hrtime.bigint() / 1000n));
                if (!gotHead) {
                    gotHead = true; open++; settled++;
                    if (open > peak) peak = open;
                    hadd(ttfbs, now - ts);
                    checkPlateau();
                }
                let r = feed(mContent, cst, buf);
                cst = Math.floor(r / 1048576);
                const n = r % 1048576;
                for (let i = 0; i < n; i++) {
                    if (last >= 0) {
                        const g = now - last;
                        hadd(gaps, g);
                        if (g < 2) coalesced++;
                        if (slowLog && g > 1150) slowLog.push(`${Math.round(now - t0)} ${Math.round(g)} ${sid} ${nev}`);
                    }
                    last = now;
                    events++;
                    nev++;
                }
                r = feed(mDone, dst, buf);
                dst = Math.floor(r / 1048576);
                if (r % 1048576) sawDone = true;
            });
            res.on('end', () => {
                if (status !== 200) end(`status ${status}`);
                else if (!sawDone) end('stream without [DONE]');
                else end(null);
            });
            res.on('error', (e) => end(e.code || e.message));
            res.on('aborted', () => end('response aborted'));
        });
        req.setTimeout(o.timeout * 1000, () => req.destroy(new Error('timeout')));
        req.on('error', (e) => end(e.code || e.message));
        req.end(body);
    }

    // Starts on a 10 ms tick: as many as are due by now.
    await new Promise((resolve) => {
        const tick = setInterval(() => {
            const due = ramp <= 0 ? N : Math.min(N, Math.floor((performance.now() - t0) / ramp * N) + 1);
            while (started < due) one();
            if (started >= N) { clearInterval(tick); resolve(); }
        }, 10);
    });
    checkPlateau();
    await allDone;
    const elapsed = performance.now() - t0;
    if (slowLog) fs.writeFileSync(o.gapLog, slowLog.join('\n') + (slowLog.length ? '\n' : ''));
    const cpu = process.cpuUsage(cpu0);
    const out = {
        mode: 'hold', url: o.url, concurrency: N, ramp_s: ramp / 1000,
        duration_s: r2(elapsed / 1000), ok, errors, error_kinds: kinds,
        open_at_plateau: plateau ? plateau.open : null, plateau_t_ms: plateau ? plateau.t_ms : null,
        open_at_mark: mark ? mark.open : null, mark_t_ms: mark ? mark.t_ms : null,
        peak_open: peak,
        ttfb_p50_ms: r2(hpct(ttfbs, 50)), ttfb_p99_ms: r2(hpct(ttfbs, 99)), ttfb_max_ms: r2(ttfbs.max || null),
        gap_p50_ms: r2(hpct(gaps, 50)), gap_p99_ms: r2(hpct(gaps, 99)), gap_max_ms: r2(gaps.max || null),
        gap_mean_ms: r2(gaps.n ? gaps.sum / gaps.n : null),
        gaps: gaps.n, coalesced, events,
        transit_p50_ms: r2(hpct(transit, 50)), transit_p99_ms: r2(hpct(transit, 99)),
        transit_max_ms: r2(transit.max || null), stamps: transit.n,
        client_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
        client_cpu_pct: r2((cpu.user + cpu.system) / 1000 / elapsed * 100),
        client_maxrss_kb: process.resourceUsage().maxRSS,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
    process.stderr.write(`load: ${e.message}\n`);
    process.exit(2);
});
