// tests/sdk/helpers.mjs -- what the SDK tests share: clients of the official
// SDKs pointed at SC_OPENAI_BASE_URL / SC_ANTHROPIC_BASE_URL (tests/mock_upstream.py
// today; semcached's proxy in front of it later), the mock's deterministic answer,
// and the checks that differ between the two runs. Every client records the
// responses its fetch saw, so any SDK call (stream helpers included) can be
// checked for its X-Cache header once SC_EXPECT_CACHE is set.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

export { OpenAI, Anthropic };
export const OPENAI_BASE_URL = process.env.SC_OPENAI_BASE_URL;
export const ANTHROPIC_BASE_URL = process.env.SC_ANTHROPIC_BASE_URL;
// The mock's own address (its /requests and /stats), when the test can reach it.
export const MOCK_URL = process.env.SC_MOCK_URL;
// Set when the base URLs point at semcached: the second of two identical calls must be a hit.
export const EXPECT_CACHE = Boolean(process.env.SC_EXPECT_CACHE);
// A per-run word in every prompt, so a cache kept from an earlier run cannot answer.
export const RUN = randomUUID().slice(0, 8);

if (!OPENAI_BASE_URL || !ANTHROPIC_BASE_URL) {
  throw new Error('set SC_OPENAI_BASE_URL and SC_ANTHROPIC_BASE_URL (tests/sdk_mock.sh does)');
}

export function prompt(what) {
  return `${what} (run ${RUN})`;
}

// What the mock answers to a last user message (its answer_for without --pairs).
export function expectedAnswer(question) {
  return 'answer-' + createHash('sha256').update(question.trim()).digest('hex').slice(0, 16);
}

// { client, last } where last() is the Response of the client's latest request.
function recordingClient(SDK, baseURL, apiKey, options) {
  const seen = [];
  const record = async (url, init) => {
    const response = await fetch(url, init);
    seen.push(response);
    return response;
  };
  const client = new SDK({ apiKey, baseURL, maxRetries: 0, timeout: 10000, fetch: record, ...options });
  return { client, last: () => seen.at(-1) };
}

export const openai = (options = {}) => recordingClient(OpenAI, OPENAI_BASE_URL, 'sk-test-openai', options);
export const anthropic = (options = {}) =>
  recordingClient(Anthropic, ANTHROPIC_BASE_URL, 'sk-test-anthropic', options);

// Checks a Response's X-Cache header ('miss', 'hit') when running against the proxy.
export function expectCache(response, want) {
  if (!EXPECT_CACHE) return;
  const got = (response.headers.get('x-cache') || '').toLowerCase();
  assert.ok(got.startsWith(want), `X-Cache is '${got || '(none)'}', wanted ${want}`);
}

// Against the proxy: waits until the entry a miss (or a no-cache bypass) named in
// X-Semcached-Key is stored (every one, for embeddings; given 'marker', holding it:
// an entry replaced). The proxy answers without waiting for its commit, so a test
// whose next request must hit waits here first.
export async function stored(response, marker = '') {
  if (!EXPECT_CACHE) return;
  const keys = response.headers.get('x-semcached-key');
  assert.ok(keys, 'no X-Semcached-Key on the miss');
  for (const key of keys.split(',')) {
    const url = new URL(`/v1/entries/${key.trim()}`, response.url);
    let i = 0;
    for (; i < 400; i++) {
      const r = await fetch(url);
      if (r.status === 200 && (await r.text()).includes(marker)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(i < 400, `${url} was never stored`);
  }
}

// Runs call() twice: the first must be a miss, the second a hit (against the
// proxy, once the first is stored); returns both results for the caller to compare.
export async function twice(call, last) {
  const first = await call();
  expectCache(last(), 'miss');
  await stored(last());
  const second = await call();
  expectCache(last(), 'hit');
  return [first, second];
}

// The requests the mock received whose body contains 'marker' (null when the
// mock cannot be reached from here).
export async function mockRequestsWith(marker) {
  if (!MOCK_URL) return null;
  const all = await (await fetch(`${MOCK_URL}/requests`)).json();
  return all.filter((r) => JSON.stringify(r.body ?? '').includes(marker) ||
    Object.values(r.headers).some((v) => v.includes(marker)));
}

// After twice(): the upstream answered both calls (mock) or only the first (proxy).
export async function expectUpstreamCalls(marker) {
  const seen = await mockRequestsWith(marker);
  if (seen) assert.equal(seen.length, EXPECT_CACHE ? 1 : 2, `upstream calls for '${marker}'`);
}

// Collects an async iterable into an array.
export async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

// A weather tool in each API's shape; the mock calls it when the text says "tool".
export const CHAT_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city'] },
  },
};
export const RESPONSES_TOOL = { type: 'function', name: 'get_weather', ...CHAT_TOOL.function, strict: false };
export const ANTHROPIC_TOOL = {
  name: 'get_weather', description: 'Weather for a city', input_schema: CHAT_TOOL.function.parameters,
};
