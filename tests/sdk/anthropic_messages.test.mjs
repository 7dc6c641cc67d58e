// tests/sdk/anthropic_messages.test.mjs -- Anthropic Messages through the
// official SDK: create (plain and stream: true), messages.stream with
// finalMessage, tool_use both ways, and the mock's header requirements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Anthropic, anthropic, EXPECT_CACHE, prompt, expectedAnswer, twice, expectCache, expectUpstreamCalls, collect,
  ANTHROPIC_TOOL,
} from './helpers.mjs';

const MODEL = 'claude-sonnet-4-5';
const ask = (q, extra = {}) => ({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: q }], ...extra });

test('messages.create answers one text block, the same twice, with usage', async () => {
  const { client, last } = anthropic();
  const q = prompt('What is the boiling point of water?');
  const [a, b] = await twice(() => client.messages.create(ask(q, { system: 'Be brief.' })), last);
  for (const m of [a, b]) {
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.equal(m.model, MODEL);
    assert.deepEqual(m.content, [{ type: 'text', text: expectedAnswer(q) }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
  }
  if (!EXPECT_CACHE) assert.notEqual(a.id, b.id); // a fresh answer has a fresh id
  await expectUpstreamCalls(q);
});

test('messages.create with stream: true sends the events in order', async () => {
  const { client } = anthropic();
  const q = prompt('Name a planet.');
  const { data: stream, response } = await client.messages.create(ask(q, { stream: true })).withResponse();
  assert.match(response.headers.get('content-type'), /^text\/event-stream/);
  expectCache(response, 'miss');
  const events = await collect(stream);
  const types = events.map((e) => e.type);
  const deltas = types.filter((t) => t === 'content_block_delta').length;
  assert.ok(deltas >= 2, `${deltas} deltas`);
  // The SDK drops ping events; the rest arrive as sent.
  assert.deepEqual(types, ['message_start', 'content_block_start', ...Array(deltas).fill('content_block_delta'),
    'content_block_stop', 'message_delta', 'message_stop']);
  const text = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join('');
  assert.equal(text, expectedAnswer(q));
  const delta = events.find((e) => e.type === 'message_delta');
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.ok(delta.usage.output_tokens > 0);
});

test('messages.stream gives text events and finalMessage', async () => {
  const { client, last } = anthropic();
  const q = prompt('Name a metal.');
  const [a, b] = await twice(async () => {
    const stream = client.messages.stream(ask(q));
    let text = '';
    stream.on('text', (delta) => { text += delta; });
    const final = await stream.finalMessage();
    return { text, final };
  }, last);
  for (const { text, final } of [a, b]) {
    assert.equal(text, expectedAnswer(q));
    assert.equal(final.content[0].text, expectedAnswer(q));
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);
  }
});

test('tool_use, non-streamed and streamed', async () => {
  const { client } = anthropic();
  const q = prompt('Use the tool for the weather in Cairo');
  const m = await client.messages.create(ask(q, { tools: [ANTHROPIC_TOOL] }));
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content.length, 1);
  assert.equal(m.content[0].type, 'tool_use');
  assert.equal(m.content[0].name, 'get_weather');
  assert.match(m.content[0].id, /^toolu_/);
  assert.deepEqual(m.content[0].input, { city: q, days: 1 });

  const stream = client.messages.stream(ask(q, { tools: [ANTHROPIC_TOOL] }));
  let json = '';
  stream.on('inputJson', (partial) => { json += partial; });
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  assert.equal(final.content[0].type, 'tool_use');
  assert.deepEqual(final.content[0].input, { city: q, days: 1 });
  assert.deepEqual(JSON.parse(json), { city: q, days: 1 });
});

test('a request without anthropic-version is refused in Anthropic\'s error shape', async () => {
  const { client } = anthropic({ defaultHeaders: { 'anthropic-version': null } });
  await assert.rejects(client.messages.create(ask(prompt('hello'))), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError, `got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.error.type, 'error');
    assert.equal(err.error.error.type, 'invalid_request_error');
    assert.match(err.error.error.message, /anthropic-version/);
    return true;
  });
});
