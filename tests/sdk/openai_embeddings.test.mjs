// tests/sdk/openai_embeddings.test.mjs -- OpenAI Embeddings through the official
// SDK: float vectors, the SDK's default (base64, decoded by the SDK), token
// arrays and "dimensions". The mock's vectors are bags of words: the same words
// in another order give the same vector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openai, prompt, twice, EXPECT_CACHE } from './helpers.mjs';

const MODEL = 'text-embedding-3-small';

test('float embeddings come in order, with index and usage', async () => {
  const { client, last } = openai();
  const words = prompt('reset my password please');
  const reordered = words.split(' ').reverse().join(' ');
  const other = prompt('bananas grow on trees');
  const [a, b] = await twice(() => client.embeddings.create({
    model: MODEL, input: [words, other, reordered], encoding_format: 'float',
  }), last);
  for (const e of [a, b]) {
    assert.equal(e.object, 'list');
    assert.equal(e.model, MODEL);
    assert.deepEqual(e.data.map((d) => d.index), [0, 1, 2]);
    assert.ok(e.data.every((d) => d.object === 'embedding' && d.embedding.length === 64));
    assert.ok(e.data[0].embedding.every((x) => typeof x === 'number'));
    assert.deepEqual(e.data[2].embedding, e.data[0].embedding);
    assert.notDeepEqual(e.data[1].embedding, e.data[0].embedding);
    // Through the proxy, usage is what the upstream billed for this call:
    // nothing when every input came from the cache.
    assert.ok(e === b && EXPECT_CACHE ? e.usage.prompt_tokens === 0 : e.usage.prompt_tokens > 0);
    assert.equal(e.usage.total_tokens, e.usage.prompt_tokens);
  }
  assert.deepEqual(a.data, b.data);
});

test('the SDK default (base64) decodes to the same vectors as float', async () => {
  const { client } = openai();
  const input = prompt('the quick brown fox');
  const floats = await client.embeddings.create({ model: MODEL, input, encoding_format: 'float' });
  const decoded = await client.embeddings.create({ model: MODEL, input });
  assert.equal(decoded.data.length, 1);
  assert.deepEqual(decoded.data[0].embedding, floats.data[0].embedding);
  const raw = await client.embeddings.create({ model: MODEL, input, encoding_format: 'base64' });
  assert.equal(typeof raw.data[0].embedding, 'string');
  assert.equal(Buffer.from(raw.data[0].embedding, 'base64').length, 64 * 4);
});

test('token arrays and dimensions', async () => {
  const { client } = openai();
  const one = await client.embeddings.create({ model: MODEL, input: [1, 2, 3], encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  const two = await client.embeddings.create({ model: MODEL, input: [[1, 2, 3], [3, 2, 1]], encoding_format: 'float' });
  assert.deepEqual(two.data[0].embedding, one.data[0].embedding);
  assert.deepEqual(two.data[1].embedding, one.data[0].embedding);
  const small = await client.embeddings.create({ model: MODEL, input: 'x y z', dimensions: 16 });
  assert.equal(small.data[0].embedding.length, 16);
});
