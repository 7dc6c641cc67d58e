// tests/sdk/errors_and_controls.test.mjs -- failures as the SDKs surface them
// (a 429 as RateLimitError, an unreachable base URL as APIConnectionError, a
// hang as a timeout, a stream cut mid-way), headers passed through
// (defaultHeaders, organization/project), models pass-through, and the mock's
// per-request X-Mock-* controls that the proxy tests will lean on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  OpenAI, Anthropic, openai, anthropic, prompt, collect, mockRequestsWith, MOCK_URL,
} from './helpers.mjs';

const chat = (q) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: q }] });
const message = (q) => ({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: q }] });

// A loopback port nothing listens on (bound, then released).
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a 429 surfaces as RateLimitError in both SDKs, with retry-after', async () => {
  const headers = { 'X-Mock-Status': '429' };
  await assert.rejects(openai().client.chat.completions.create(chat(prompt('limit me')), { headers }), (err) => {
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '1');
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.error.message, 'configured failure');
    return true;
  });
  await assert.rejects(anthropic().client.messages.create(message(prompt('limit me')), { headers }), (err) => {
    assert.ok(err instanceof Anthropic.RateLimitError, `got ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.error.error.type, 'rate_limit_error');
    assert.match(err.requestID ?? err.request_id ?? '', /^req_/);
    return true;
  });
});

test('a 500 surfaces as InternalServerError; the SDK retries as told by retry-after', async () => {
  await assert.rejects(openai().client.chat.completions.create(chat(prompt('fail me')),
    { headers: { 'X-Mock-Status': '500' } }), OpenAI.InternalServerError);
  const q = prompt('retry me');
  const { client } = openai({ maxRetries: 2 });
  await assert.rejects(client.chat.completions.create(chat(q),
    { headers: { 'X-Mock-Status': '429', 'X-Mock-Retry-After': '0' } }), OpenAI.RateLimitError);
  const seen = await mockRequestsWith(q);
  if (seen) assert.equal(seen.length, 3, 'one call and two retries');
});

test('an unreachable base URL surfaces as APIConnectionError', async () => {
  const port = await closedPort();
  const o = new OpenAI({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 2000 });
  await assert.rejects(o.chat.completions.create(chat('anyone there?')), OpenAI.APIConnectionError);
  const a = new Anthropic({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}`, maxRetries: 0, timeout: 2000 });
  await assert.rejects(a.messages.create(message('anyone there?')), Anthropic.APIConnectionError);
});

test('a hanging upstream surfaces as APIConnectionTimeoutError', async () => {
  const { client } = openai({ timeout: 300 });
  const t0 = Date.now();
  await assert.rejects(client.chat.completions.create(chat(prompt('hang')), { headers: { 'X-Mock-Hang': '1' } }),
    OpenAI.APIConnectionTimeoutError);
  assert.ok(Date.now() - t0 < 5000);
});

test('a stream cut after N events fails the iteration after those N chunks', async () => {
  const { client } = openai();
  const stream = await client.chat.completions.create({ ...chat(prompt('cut me')), stream: true },
    { headers: { 'X-Mock-Fail-After-Chunks': '3' } });
  const got = [];
  await assert.rejects(async () => { for await (const c of stream) got.push(c); });
  assert.equal(got.length, 3);
  const ms = anthropic().client.messages.stream(message(prompt('cut me')),
    { headers: { 'X-Mock-Fail-After-Chunks': '2' } });
  await assert.rejects(ms.finalMessage());
  // A JSON answer cut half-way fails too.
  await assert.rejects(openai().client.chat.completions.create(chat(prompt('cut me')),
    { headers: { 'X-Mock-Fail-After-Chunks': '0' } }));
});

test('chunk and first-byte delays, and the number of chunks, follow the headers', async () => {
  const { client } = openai();
  const t0 = Date.now();
  const chunks = await collect(await client.chat.completions.create({ ...chat(prompt('slowly')), stream: true },
    { headers: { 'X-Mock-Chunk-Delay-Ms': '40', 'X-Mock-First-Byte-Delay-Ms': '100', 'X-Mock-Chunks': '6' } }));
  const content = chunks.filter((c) => c.choices[0]?.delta?.content);
  assert.equal(content.length, 6);
  // 8 chunks (role, 6 contents, finish) and [DONE]: 8 gaps of 40 ms after 100 ms.
  assert.ok(Date.now() - t0 >= 100 + 8 * 40, `took ${Date.now() - t0} ms`);
});

test('defaultHeaders, organization and project reach the upstream', async (t) => {
  if (!MOCK_URL) return t.skip('SC_MOCK_URL not set');
  const marker = prompt('trace');
  const { client } = openai({
    organization: 'org-test', project: 'proj-test', defaultHeaders: { 'X-Trace-Id': marker },
  });
  await client.chat.completions.create(chat('headers please'));
  const [seen] = await mockRequestsWith(marker);
  assert.equal(seen.headers['x-trace-id'], marker);
  assert.equal(seen.headers['openai-organization'], 'org-test');
  assert.equal(seen.headers['openai-project'], 'proj-test');
  assert.equal(seen.headers.authorization, 'Bearer sk-test-openai');

  const a = anthropic({ defaultHeaders: { 'anthropic-beta': 'test-beta-1', 'X-Trace-Id': marker + '-a' } });
  await a.client.messages.create(message('headers please'));
  const [seenA] = await mockRequestsWith(marker + '-a');
  // @anthropic-ai/sdk 1.x sends its key as a bearer token, not as x-api-key.
  assert.equal(seenA.headers.authorization, 'Bearer sk-test-anthropic');
  assert.equal(seenA.headers['anthropic-beta'], 'test-beta-1');
  assert.ok(seenA.headers['anthropic-version']);
});

test('Anthropic: an x-api-key header is accepted, no key at all is a 401', async (t) => {
  const legacy = anthropic({ apiKey: null, defaultHeaders: { 'X-Api-Key': 'sk-legacy' } });
  const m = await legacy.client.messages.create(message(prompt('old style key')));
  assert.equal(m.type, 'message');
  const none = anthropic({ apiKey: null, defaultHeaders: { Authorization: null } });
  await assert.rejects(none.client.messages.create(message(prompt('no key'))), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err}`);
    assert.equal(err.error.error.type, 'authentication_error');
    return true;
  });
  if (!MOCK_URL) return t.skip('SC_MOCK_URL not set');
  const [seen] = await mockRequestsWith(prompt('old style key'));
  assert.equal(seen.headers['x-api-key'], 'sk-legacy');
  assert.equal(seen.headers.authorization, undefined);
});

test('models.list passes through in both shapes', async () => {
  const ids = [];
  for await (const m of openai().client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o-mini'), ids.join());
  const claude = [];
  for await (const m of anthropic().client.models.list()) claude.push(m.id);
  assert.ok(claude.length > 0 && claude.every((id) => id.startsWith('claude')), claude.join());
  const one = await openai().client.models.retrieve('gpt-4.1');
  assert.equal(one.id, 'gpt-4.1');
  await assert.rejects(openai().client.models.retrieve('no-such-model'), OpenAI.NotFoundError);
});
