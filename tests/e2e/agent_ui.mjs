// tests/e2e/agent_ui.mjs UI_URL SECRET GATEWAY_URL TOKEN: agentd's local
// page in a real headless Chromium (Debian's, driven by puppeteer-core):
// a wrong secret is refused, the right one signs in; the channel's
// requests this minute change on the page as requests pass through the
// hub, and a receipt appears in the recent requests.  Exits non-zero with
// a FAIL line on the first check that does not hold.
import puppeteer from 'puppeteer-core';

const [uiUrl, secret, gw, token] = process.argv.slice(2);
const chromium = process.env.SWB_CHROMIUM || '/usr/bin/chromium';
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };
if (!uiUrl || !secret || !gw || !token) fail('usage: agent_ui.mjs UI_URL SECRET GATEWAY_URL TOKEN');

async function ask(n) {
	for (let i = 0; i < n; i++) {
		const r = await fetch(`${gw}/v1/chat/completions`, {
			method: 'POST',
			headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
			body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `from the browser test ${i}` }] }),
		});
		if (r.status !== 200) fail(`request ${i} answered ${r.status}`);
		await r.text();
	}
}
const num = async (page, sel) => Number(await page.$eval(sel, (e) => e.textContent));

const browser = await puppeteer.launch({
	executablePath: chromium, headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const timer = setTimeout(() => fail('timed out'), 60000);
try {
	const page = await browser.newPage();
	await page.goto(uiUrl, { waitUntil: 'load' });
	await page.waitForSelector('#secret', { visible: true });

	await page.type('#secret', 'not-the-secret');
	await page.click('#go');
	await page.waitForFunction(() => document.getElementById('lerr').textContent.includes('wrong'), { timeout: 5000 })
		.catch(() => fail('a wrong secret was not refused'));
	if (!(await page.$eval('#app', (e) => e.hidden))) fail('the page showed data without the secret');

	await page.$eval('#secret', (e) => { e.value = ''; });
	await page.type('#secret', secret);
	await page.click('#go');
	await page.waitForSelector('#app:not([hidden]) .req-min', { timeout: 5000 })
		.catch(() => fail('signing in with the secret did not show the channels'));
	// "This minute" is the wall clock's (agent/ag_metrics.c): the three
	// requests and the check below stay inside one minute.
	const sec = new Date().getSeconds();
	if (sec >= 45)
		await new Promise((r) => setTimeout(r, (61 - sec) * 1000 + 1500));
	const before = await num(page, '.req-min');
	console.log(`requests this minute before: ${before}`);

	await ask(3);
	await page.waitForFunction((b) => Number(document.querySelector('.req-min').textContent) >= b + 3,
		{ timeout: 10000 }, before).catch(() => fail('the live figures did not change'));
	console.log(`requests this minute after: ${await num(page, '.req-min')}`);

	await page.waitForFunction(() => [...document.querySelectorAll('.receipt')].some((e) => e.textContent === 'receipted'),
		{ timeout: 20000 }).catch(() => fail('no receipt appeared in the recent requests'));
	const ip = await page.$eval('#public-ip', (e) => e.textContent);
	if (ip !== '127.0.0.1') fail(`public address shows '${ip}'`);
	console.log('agent_ui: ok');
} finally {
	clearTimeout(timer);
	await browser.close();
}
