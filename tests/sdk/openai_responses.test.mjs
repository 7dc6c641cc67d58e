// tests/sdk/openai_responses.test.mjs -- OpenAI Responses through the official
// SDK: create (plain and stream: true with its typed, numbered events), the
// .stream() helper's finalResponse, and a function call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openai, prompt, expectedAnswer, twice, expectUpstreamCalls, collect, RESPONSES_TOOL,
} from './helpers.mjs';

const MODEL = 'gpt-4.1';

test('responses.create answers output_text, the same twice, with usage', async () => {
  const { client, last } = openai();
  const q = prompt('Which ocean is the largest?');
  const [a, b] = await twice(() => client.responses.create({ model: MODEL, input: q }), last);
  for (const r of [a, b]) {
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, expectedAnswer(q));
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].content[0].type, 'output_text');
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  }
  await expectUpstreamCalls(q);
});

test('responses.create takes input items as well as a string', async () => {
  const { client } = openai();
  const q = prompt('How many legs has a spider?');
  const r = await client.responses.create({
    model: MODEL, instructions: 'Be brief.',
    input: [{ role: 'user', content: [{ type: 'input_text', text: q }] }],
  });
  assert.equal(r.output_text, expectedAnswer(q));
  assert.equal(r.instructions, 'Be brief.');
});

test('responses.create with stream: true sends the typed events in order', async () => {
  const { client } = openai();
  const q = prompt('Name a river.');
  const events = await collect(await client.responses.create({ model: MODEL, input: q, stream: true }));
  const types = events.map((e) => e.type);
  const deltas = types.filter((t) => t === 'response.output_text.delta').length;
  assert.ok(deltas >= 2, `${deltas} deltas`);
  assert.deepEqual(types, [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    ...Array(deltas).fill('response.output_text.delta'), 'response.output_text.done',
    'response.content_part.done', 'response.output_item.done', 'response.completed',
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(text, expectedAnswer(q));
  const completed = events.at(-1).response;
  assert.equal(completed.status, 'completed');
  assert.equal(completed.id, events[0].response.id);
  assert.equal(completed.output[0].content[0].text, expectedAnswer(q));
});

test('the .stream() helper gives finalResponse with output_text, its own id and metadata', async () => {
  const { client, last } = openai();
  const q = prompt('Name a mountain.');
  let call = 0;
  const [a, b] = await twice(async () => {
    const metadata = { call: String(++call) }; // not in the key: a hit echoes the asker's
    const stream = client.responses.stream({ model: MODEL, input: q, metadata });
    let deltas = '';
    let created;
    stream.on('response.created', (e) => { created = e.response; });
    stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
    const final = await stream.finalResponse();
    return { deltas, final, created, metadata };
  }, last);
  for (const { deltas, final, created, metadata } of [a, b]) {
    assert.equal(deltas, expectedAnswer(q));
    assert.equal(final.output_text, expectedAnswer(q));
    assert.equal(final.status, 'completed');
    assert.equal(final.model, MODEL);
    assert.equal(created.id, final.id);
    assert.deepEqual(final.metadata, metadata);
    assert.deepEqual(created.metadata, metadata);
  }
  assert.match(b.final.id, /^resp_/);
  assert.notEqual(b.final.id, a.final.id); // a hit's events carry a fresh id
  assert.ok(b.final.created_at >= a.final.created_at);
});

test('a function call, non-streamed and streamed', async () => {
  const { client } = openai();
  const q = prompt('Use the tool for the weather in Lima');
  const r = await client.responses.create({ model: MODEL, input: q, tools: [RESPONSES_TOOL] });
  assert.equal(r.output[0].type, 'function_call');
  assert.equal(r.output[0].name, 'get_weather');
  assert.match(r.output[0].call_id, /^call_/);
  assert.deepEqual(JSON.parse(r.output[0].arguments), { city: q, days: 1 });

  const stream = client.responses.stream({ model: MODEL, input: q, tools: [RESPONSES_TOOL] });
  let args = '';
  stream.on('response.function_call_arguments.delta', (e) => { args += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(final.output[0].type, 'function_call');
  assert.equal(final.output[0].arguments, r.output[0].arguments);
  assert.equal(args, r.output[0].arguments);
});
