// ui_check.js -- the dashboard (/ui) against a real semcached (started by
// tests/ui.sh with --auth-token and the GloVe model): HTTP checks of the page
// routes (types, ETag/304, CSP, public page but 401 data), then known traffic
// (stores, exact hits, semantic hits, near misses, misses, validations), then
// headless Chromium through playwright-core: the token prompt, no console
// error, no request off loopback, charts with drawn series, the namespace
// table's thresholds and false-hit upper bound. Saves a screenshot.
// Usage: node tests/ui_check.js PORT TOKEN SCREENSHOT.png [CHROMIUM]
// Prints "ok"/"FAIL" lines, "SKIP:" for the browser part without Chromium,
// and the SC-RESULT line.
'use strict';

const fs = require('fs');

const [port, token, shot, chromiumPath] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
let passed = 0, failed = 0, skipped = 0;
let vendored = false; // does this build carry uPlot (else the page shows tables)?

function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail !== undefined ? ': ' + detail : ''}`); }
}

async function req(method, path, body, headers = {}) {
  const h = {...headers};
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(base + path, {method, headers: h, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return {status: r.status, headers: r.headers, text, json};
}
const auth = {Authorization: `Bearer ${token}`};
const api = (method, path, body) => req(method, path, body, auth);

// ---- the page routes ------------------------------------------------------

async function httpChecks() {
  const page = await req('GET', '/ui');
  check('GET /ui without a token is 200 html', page.status === 200 &&
        /^text\/html/.test(page.headers.get('content-type')) && page.text.includes('/ui/ui.js'),
        `${page.status} ${page.headers.get('content-type')}`);
  const csp = page.headers.get('content-security-policy') || '';
  check('the page has a same-origin CSP', csp.includes("default-src 'none'") && csp.includes("connect-src 'self'"), csp);
  const etag = page.headers.get('etag');
  const again = await req('GET', '/ui/', undefined, {'If-None-Match': etag});
  check('a matching If-None-Match is a 304', etag && again.status === 304 && again.text === '', `${etag} ${again.status}`);
  const assets = {'/ui/ui.js': 'text/javascript', '/ui/ui.css': 'text/css', '/ui/uPlot.iife.min.js': 'text/javascript',
                  '/ui/uPlot.min.css': 'text/css', '/ui/uPlot.LICENSE': 'text/plain', '/ui/index.html': 'text/html'};
  for (const [path, type] of Object.entries(assets)) {
    const r = await req('GET', path);
    check(`${path} is ${type}, no-cache`, r.status === 200 && r.headers.get('content-type').startsWith(type) &&
          r.headers.get('cache-control') === 'no-cache' && r.text.length > 0, `${r.status} ${r.headers.get('content-type')}`);
  }
  const lic = await req('GET', '/ui/uPlot.LICENSE');
  vendored = /MIT License/.test(lic.text);
  check('uPlot is vendored with its MIT license (or the page says it is not)', vendored || /not vendored/.test(lic.text),
        lic.text.slice(0, 80));
  const missing = await req('GET', '/ui/nope.js');
  const uix = await req('GET', '/uix');
  check('unknown assets are 404', missing.status === 404 && uix.status === 404, `${missing.status} ${uix.status}`);
  const stats = await req('GET', '/v1/stats');
  const ns = await req('GET', '/v1/namespaces/faq');
  check('the data wants the token: /v1/stats and namespaces 401 without it', stats.status === 401 && ns.status === 401,
        `${stats.status} ${ns.status}`);
}

// ---- known traffic ------------------------------------------------------------

const faq = [
  ['What is the capital of France?', 'what is the capital city of france', 'Paris.'],
  ['How do I reset my password?', 'how can i reset my password', 'Use the Forgot password link.'],
  ['What time does the store open?', 'what time does the shop open', 'At nine.'],
  ['How long does shipping take?', 'how long does the shipping take', 'Three to five days.'],
];

async function traffic(round) {
  let hits = 0, semantic = 0;
  for (const [q, para, a] of faq) {
    if (round === 0) {
      const s = await api('POST', '/v1/store', {namespace: 'faq', model: 'm', prompt: q, response: a,
                                               usage: {prompt_tokens: 12, completion_tokens: 4}});
      if (s.status !== 201) throw new Error(`store answered ${s.status}: ${s.text}`);
    }
    for (const [prompt, want] of [[q, 'exact'], [para, 'semantic']]) {
      const r = await api('POST', '/v1/lookup', {namespace: 'faq', model: 'm', prompt});
      if (r.json && r.json.status === 'hit') {
        hits++;
        if (r.json.match === 'semantic') semantic++;
        if (r.json.validation_id)
          await api('POST', '/v1/feedback', {validation_id: r.json.validation_id, verdict: 'correct'});
      } else if (want === 'exact') {
        throw new Error(`exact lookup of "${prompt}" answered ${r.status} ${r.text}`);
      }
    }
  }
  // Related but different questions (near misses or misses) and unrelated ones.
  for (const p of ['what is the capital of germany', 'how do i change my email address',
                   'purple elephants dance at midnight ' + round]) {
    await api('POST', '/v1/lookup', {namespace: 'faq', model: 'm', prompt: p});
    await api('POST', '/v1/lookup', {namespace: 'budget', model: 'm', prompt: p});
  }
  return {hits, semantic};
}

async function setup() {
  const put1 = await api('PUT', '/v1/namespaces/faq', {threshold: 0.85, sample_rate: 1, validation_budget: 1});
  const put2 = await api('PUT', '/v1/namespaces/budget', {threshold: null, max_error_rate: 0.05});
  check('namespaces configured', put1.status === 200 && put2.status === 200, `${put1.status} ${put1.text} ${put2.status} ${put2.text}`);
  const t = await traffic(0);
  check('traffic has exact and semantic hits', t.hits >= 4 && t.semantic >= 1, JSON.stringify(t));
  const s = (await api('GET', '/v1/stats')).json || {};
  const sim = s.similarity || {};
  const sum = (a) => (a || []).reduce((x, y) => x + y, 0);
  check('/v1/stats has the similarity histogram with the semantic hits',
        Array.isArray(sim.le) && sim.le.length === (sim.hit || []).length && sum(sim.hit) === s.lookups.semantic_hit,
        JSON.stringify(sim) + ' ' + JSON.stringify(s.lookups));
  check('/v1/stats has lookups by namespace and the embed queue',
        s.lookups_by_namespace && s.lookups_by_namespace.faq && s.lookups_by_namespace.faq.exact_hit >= 4 &&
        typeof s.embed_queue === 'number', JSON.stringify(s.lookups_by_namespace));
  const q = ((await api('GET', '/v1/namespaces/faq')).json || {}).quality || {};
  check('faq has validations and a false-hit upper bound', q.validated >= 1 && q.false_hit_rate_upper > 0, JSON.stringify(q));
}

// ---- the browser ------------------------------------------------------------------

function loopback(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'data:' || ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch (e) { return false; }
}

// Pixels of each chart's canvas that are near a series colour (uPlot draws
// axes and grid in grey, so these are the plotted data).
async function coloredPixels(page, id, colors) {
  return page.evaluate(([id, colors]) => {
    const c = document.querySelector(`#${id} canvas`);
    if (!c) return -1;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const rgb = colors.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 200) continue;
      for (const [r, g, b] of rgb)
        if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) { n++; break; }
    }
    return n;
  }, [id, colors]);
}

// The charts: each has data points, and its canvas shows the series colours.
async function charts(page) {
  const ids = ['c-lookups', 'c-hitrate', 'c-similarity', 'c-queues'];
  for (const id of ids) {
    const pts = Number(await page.getAttribute(`#${id}`, 'data-points'));
    if (id !== 'c-queues') check(`${id} has data`, pts > 0, pts);
  }
  const px = {
    'c-lookups': await coloredPixels(page, 'c-lookups', ['#2a7de1', '#e6a700', '#c8323c']),
    'c-hitrate': await coloredPixels(page, 'c-hitrate', ['#2e9e5b']),
    'c-similarity': await coloredPixels(page, 'c-similarity', ['#2e9e5b']),
  };
  for (const [id, n] of Object.entries(px)) check(`${id} drew its series (${n} pixels)`, n > 50, n);
}

async function browser() {
  let chromium;
  try { ({chromium} = require('playwright-core')); } catch (e) {
    console.log('SKIP: playwright-core is not installed (make deps-node)'); skipped++; return;
  }
  if (!chromiumPath || !fs.existsSync(chromiumPath)) {
    console.log('SKIP: no Chromium (apt-get install chromium; make deps-test installs it)'); skipped++; return;
  }
  const b = await chromium.launch({executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu']});
  try {
    const ctx = await b.newContext({viewport: {width: 1400, height: 1300}});
    const page = await ctx.newPage();
    const errors = [], offsite = [], urls = [];
    // Before the token is typed, the page's first fetch is answered 401,
    // which Chromium logs as a failed resource: that one is expected.
    let tokenSent = false;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (!tokenSent && /401/.test(m.text()) && /\/v1\/stats$/.test(m.location().url || '')) return;
      errors.push(m.text() + ' at ' + (m.location().url || '?'));
    });
    page.on('pageerror', (e) => errors.push('uncaught: ' + e.message));
    page.on('request', (r) => { urls.push(r.url()); if (!loopback(r.url())) offsite.push(r.url()); });
    await page.route('**/*', (route) => (loopback(route.request().url()) ? route.continue() : route.abort()));

    await page.goto(base + '/ui', {waitUntil: 'load'});
    await page.waitForSelector('#auth:not([hidden])', {timeout: 10000});
    check('without a token the page asks for it', await page.isVisible('#token'));
    await page.fill('#token', token);
    await page.click('#auth button[type=submit]');
    tokenSent = true;
    await page.selectOption('#interval', '1000');
    await page.waitForFunction(() => Number(document.body.getAttribute('data-samples')) >= 2, null, {timeout: 15000});
    for (let round = 1; round <= 3; round++) { // lookups between samples: non-zero rates
      await traffic(round);
      await page.waitForTimeout(1300);
    }
    await page.waitForFunction(() => Number(document.body.getAttribute('data-samples')) >= 6, null, {timeout: 20000});
    await page.waitForTimeout(1200);

    const mode = await page.getAttribute('body', 'data-charts');
    check(`the page draws with ${vendored ? 'uPlot' : 'tables'}`, mode === (vendored ? 'uplot' : 'tables'), mode);
    if (mode === 'tables') {
      // A build without node_modules/uplot: the same numbers as tables.
      console.log('NOTE: this build has no uPlot; checking the table fallback');
      const simRows = await page.$$eval('#similarity tbody tr', (rs) => rs.map((r) => r.textContent));
      const rates = await page.$$eval('#samples tbody tr td:nth-child(2)', (cs) => cs.map((c) => Number(c.textContent)));
      check('the fallback shows the similarity histogram', simRows.length >= 10, simRows.length);
      check('the fallback shows lookup rates', rates.some((r) => r > 0), JSON.stringify(rates));
      check('the fallback says why', await page.isVisible('#fallback'));
    } else {
      await charts(page);
    }
    const row = (ns, cls) => page.textContent(`#namespaces tr[data-namespace="${ns}"] td.${cls}`);
    check('faq shows its threshold', (await row('faq', 'threshold')) === '0.850', await row('faq', 'threshold'));
    check('faq shows a false-hit upper bound', /^\d+\.\d\d %$/.test(await row('faq', 'upper')), await row('faq', 'upper'));
    check('budget shows its learned threshold (still learning)', (await row('budget', 'learned')) === 'learning',
          await row('budget', 'learned'));
    check('tokens saved shown', /\d/.test(await page.textContent('#t-saved')), await page.textContent('#t-saved'));

    check('no console error or uncaught exception', errors.length === 0, JSON.stringify(errors));
    check('no request left loopback', offsite.length === 0, JSON.stringify(offsite));
    check('the token never appears in a URL', !urls.some((u) => u.includes(token)), '');
    check('the token is in sessionStorage only',
          (await page.evaluate(() => sessionStorage.getItem('semcached.token'))) === token &&
          !(await page.evaluate(() => JSON.stringify(localStorage))).includes(token));
    await page.screenshot({path: shot, fullPage: true});
    check(`screenshot saved to ${shot}`, fs.statSync(shot).size > 10000);
  } finally {
    await b.close();
  }
}

(async () => {
  try {
    await httpChecks();
    await setup();
    await browser();
  } catch (e) {
    check('the run', false, e && e.stack ? e.stack : String(e));
  }
  console.log(`SC-RESULT passed=${passed} failed=${failed} skipped=${skipped}`);
  process.exit(failed ? 1 : 0);
})();
