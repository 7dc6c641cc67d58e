// tests/sdk/openai_chat.test.mjs -- OpenAI Chat Completions through the
// official SDK: create (plain and stream: true), the .stream() helper's
// accumulator (finalChatCompletion), and tool calls both ways. Each question is
// asked twice: same text both times, a cache hit the second time (proxy run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openai, EXPECT_CACHE, prompt, expectedAnswer, twice, stored, expectCache, expectUpstreamCalls, collect, CHAT_TOOL,
} from './helpers.mjs';

const MODEL = 'gpt-4o-mini';
const ask = (q, extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: q }], ...extra });

test('chat.completions.create answers the same text twice, with usage', async () => {
  const { client, last } = openai();
  const q = prompt('What is the capital of France?');
  const [a, b] = await twice(() => client.chat.completions.create(ask(q)), last);
  for (const c of [a, b]) {
    assert.equal(c.object, 'chat.completion');
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.model, MODEL);
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(c.choices[0].message.content, expectedAnswer(q));
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.ok(c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  }
  if (!EXPECT_CACHE) assert.notEqual(a.id, b.id); // a fresh answer has a fresh id
  await expectUpstreamCalls(q);
});

test('chat.completions.create with stream: true yields role, content and finish chunks', async () => {
  const { client } = openai();
  const q = prompt('Name a prime number.');
  const run = async () => {
    const { data: stream, response } = await client.chat.completions
      .create(ask(q, { stream: true, stream_options: { include_usage: true } }))
      .withResponse();
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    return { chunks: await collect(stream), response };
  };
  const first = await run();
  expectCache(first.response, 'miss');
  await stored(first.response);
  const second = await run();
  expectCache(second.response, 'hit');
  for (const { chunks } of [first, second]) {
    assert.ok(chunks.length >= 4, `only ${chunks.length} chunks`);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, expectedAnswer(q));
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.deepEqual(finish.map((c) => c.choices[0].finish_reason), ['stop']);
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.ok(usage.usage.completion_tokens > 0);
  }
  await expectUpstreamCalls(q);
});

test('the .stream() helper accumulates deltas into finalChatCompletion', async () => {
  const { client, last } = openai();
  const q = prompt('Tell me a colour.');
  const [a, b] = await twice(async () => {
    const stream = client.chat.completions.stream(ask(q));
    let deltas = '';
    stream.on('content', (delta) => { deltas += delta; });
    const final = await stream.finalChatCompletion();
    return { deltas, final };
  }, last);
  for (const { deltas, final } of [a, b]) {
    assert.equal(deltas, expectedAnswer(q));
    assert.equal(final.choices[0].message.content, expectedAnswer(q));
    assert.equal(final.choices[0].finish_reason, 'stop');
  }
});

test('a tool call, non-streamed', async () => {
  const { client, last } = openai();
  const q = prompt('Use the tool for the weather in Paris');
  const [a, b] = await twice(() => client.chat.completions.create(ask(q, { tools: [CHAT_TOOL] })), last);
  for (const c of [a, b]) {
    const choice = c.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: q, days: 1 });
  }
});

test('a tool call, streamed: deltas and the .stream() helper agree', async () => {
  const { client } = openai();
  const q = prompt('Use the tool for the weather in Oslo');
  const chunks = await collect(await client.chat.completions.create(ask(q, { tools: [CHAT_TOOL], stream: true })));
  const args = chunks.map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '').join('');
  assert.deepEqual(JSON.parse(args), { city: q, days: 1 });
  assert.equal(chunks[0].choices[0].delta.tool_calls[0].function.name, 'get_weather');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');

  const stream = client.chat.completions.stream(ask(q, { tools: [CHAT_TOOL] }));
  const done = [];
  stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await stream.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.equal(call.function.arguments, args);
  assert.equal(done.length, 1);
  assert.equal(done[0].arguments, args);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('tools without the trigger word, or with tool_choice none, get a text answer', async () => {
  const { client } = openai();
  const plain = prompt('What is the weather in Rome?');
  const c = await client.chat.completions.create(ask(plain, { tools: [CHAT_TOOL] }));
  assert.equal(c.choices[0].message.content, expectedAnswer(plain));
  const none = prompt('Use the tool for Rome');
  const d = await client.chat.completions.create(ask(none, { tools: [CHAT_TOOL], tool_choice: 'none' }));
  assert.equal(d.choices[0].message.content, expectedAnswer(none));
});
