// tests/sdk/proxy/cache.test.mjs -- what only semcached's proxy does, seen
// through the official SDKs (tests/sdk_proxy.sh runs these, never against the
// mock alone). A miss's answer does not wait for its store, so a test whose next
// identical request must hit waits for the entry first (stored()). Two API keys never share an entry; an answer stored streamed
// serves a plain request and the reverse, through each SDK's own parser;
// Cache-Control no-store / no-cache as per-request headers; a 429 is the
// SDK's RateLimitError and is not cached; an unreachable upstream is a 502 the
// SDK raises as InternalServerError, an unreachable semcached a connection error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  OpenAI, Anthropic, openai, anthropic, prompt, expectedAnswer, collect, stored, EXPECT_CACHE,
} from '../helpers.mjs';

const DOWN_URL = process.env.SC_PROXY_DOWN_URL;
const chat = (q, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: q }], ...extra });
const message = (q, extra = {}) => ({
  model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: q }], ...extra,
});
const cache = (response) => response.headers.get('x-cache');

test('two API keys never share an entry', { skip: !EXPECT_CACHE }, async () => {
  const one = openai({ apiKey: 'sk-one' }).client, two = openai({ apiKey: 'sk-two' }).client;
  const q = prompt('Whose answer is this?');
  const a = await one.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(a.response), 'MISS');
  await stored(a.response);
  const b = await two.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(b.response), 'MISS');
  assert.notEqual(b.data.id, a.data.id);
  const again = await one.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(again.response), 'HIT');
  assert.deepEqual(again.data, a.data);

  const x = anthropic({ apiKey: 'sk-ant-one' }).client, y = anthropic({ apiKey: 'sk-ant-two' }).client;
  const m = await x.messages.create(message(q)).withResponse();
  await stored(m.response);
  assert.equal(cache((await y.messages.create(message(q)).withResponse()).response), 'MISS');
  assert.equal(cache((await x.messages.create(message(q)).withResponse()).response), 'HIT');
});

test('a streamed answer serves a plain request, and the reverse, through the SDK parsers',
  { skip: !EXPECT_CACHE }, async () => {
    const { client } = openai();
    const q = prompt('Stream it first.');
    const s = await client.chat.completions.create(chat(q, { stream: true })).withResponse();
    const chunks = await collect(s.data);
    assert.equal(cache(s.response), 'MISS');
    await stored(s.response);
    const p = await client.chat.completions.create(chat(q)).withResponse();
    assert.equal(cache(p.response), 'HIT');
    assert.equal(p.data.choices[0].message.content, chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''));
    assert.equal(p.data.choices[0].message.content, expectedAnswer(q));
    assert.ok(p.data.usage.completion_tokens > 0); // asked of the upstream for the cache's sake

    const { client: ant } = anthropic();
    const r = prompt('Plain first.');
    const plain = await ant.messages.create(message(r)).withResponse();
    assert.equal(cache(plain.response), 'MISS');
    await stored(plain.response);
    const stream = ant.messages.stream(message(r));
    const final = await stream.finalMessage();
    assert.equal(cache((await stream.withResponse()).response), 'HIT');
    assert.deepEqual(final.content, plain.data.content);
    assert.equal(final.stop_reason, plain.data.stop_reason);

    const t = prompt('A response, streamed first.');
    const rs = await client.responses.create({ model: 'gpt-4.1', input: t, stream: true }).withResponse();
    const events = await collect(rs.data);
    const done = events.find((e) => e.type === 'response.completed');
    await stored(rs.response);
    const rp = await client.responses.create({ model: 'gpt-4.1', input: t }).withResponse();
    assert.equal(cache(rp.response), 'HIT');
    assert.equal(rp.data.output_text, expectedAnswer(t));
    assert.deepEqual(rp.data.output, done.response.output);
  });

test('Cache-Control no-store and no-cache as per-request headers', { skip: !EXPECT_CACHE }, async () => {
  const { client } = openai();
  const q = prompt('Do not keep this.');
  const nostore = await client.chat.completions.create(chat(q), { headers: { 'Cache-Control': 'no-store' } })
    .withResponse();
  assert.equal(cache(nostore.response), 'BYPASS');
  const first = await client.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(first.response), 'MISS'); // no-store kept nothing
  await stored(first.response);
  const fresh = await client.chat.completions.create(chat(q), { headers: { 'Cache-Control': 'no-cache' } })
    .withResponse();
  assert.equal(cache(fresh.response), 'BYPASS');
  assert.notEqual(fresh.data.id, first.data.id); // asked upstream again
  await stored(fresh.response, fresh.data.id); // replaces the first's
  const hit = await client.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(hit.response), 'HIT');
  assert.equal(hit.data.id, fresh.data.id); // no-cache stored its fresh answer
});

test('an upstream 429 is the SDK\'s RateLimitError and is not cached', { skip: !EXPECT_CACHE }, async () => {
  const { client } = openai();
  const q = prompt('Slow down.');
  await assert.rejects(client.chat.completions.create(chat(q), { headers: { 'X-Mock-Status': '429' } }), (err) => {
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
    assert.equal(err.headers.get('retry-after'), '1');
    return true;
  });
  const ok = await client.chat.completions.create(chat(q)).withResponse();
  assert.equal(cache(ok.response), 'MISS');
  assert.equal(ok.data.choices[0].message.content, expectedAnswer(q));
});

test('an unreachable upstream is a 502 in each SDK, an unreachable semcached a connection error',
  { skip: !DOWN_URL }, async () => {
    const o = new OpenAI({ apiKey: 'k', baseURL: `${DOWN_URL}/v1`, maxRetries: 0, timeout: 5000 });
    await assert.rejects(o.chat.completions.create(chat('anyone?')), (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError, `got ${err}`);
      assert.equal(err.status, 502);
      assert.equal(err.code, 'upstream_unreachable');
      return true;
    });
    const a = new Anthropic({ apiKey: 'k', baseURL: DOWN_URL, maxRetries: 0, timeout: 5000 });
    await assert.rejects(a.messages.create(message('anyone?', { stream: true })), (err) => {
      assert.ok(err instanceof Anthropic.InternalServerError, `got ${err}`);
      assert.equal(err.error.error.type, 'api_error');
      return true;
    });
    const server = createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    const gone = new OpenAI({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
    await assert.rejects(gone.chat.completions.create(chat('anyone?')), OpenAI.APIConnectionError);
  });
