// native.mjs -- semcached's native API from Node (global fetch, no packages).
// The same walk-through as examples/python/native.py: store, exact and
// semantic hits, a miss, then cachedCompletion(), the lookup -> model -> store
// pattern around a fake model, answering the validations its namespace asks
// for, and the stats. Each run uses namespaces of its own and removes them.
// Exits 1 when an answer is not as expected.
//   SEMCACHED_URL (default http://127.0.0.1:8080), SEMCACHED_TOKEN,
//   SEMCACHED_ADMIN_TOKEN (namespace PUT and DELETE), when the server has them.
import { randomUUID } from 'node:crypto';
import { expect, removeNamespaces } from './check.mjs';

const BASE = (process.env.SEMCACHED_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const TOKEN = process.env.SEMCACHED_TOKEN || '';
const ADMIN_TOKEN = process.env.SEMCACHED_ADMIN_TOKEN || TOKEN;
const RUN = randomUUID().slice(0, 8);
const NS = `examples-node-${RUN}`; // the first part's entries
const APP_NS = `examples-node-app-${RUN}`; // cachedCompletion()'s, validated
const MODEL = 'gpt-4o-mini';

// [status, parsed JSON answer] of one request ('body' an object, or JSON text
// sent as it is); errors are problem+json.
async function call(method, path, body, token = TOKEN) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(BASE + path, {
    method, headers, body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  return [r.status, text ? JSON.parse(text) : null];
}

// A request as the native API takes it: the same fields for lookup and store.
const chat = (question, namespace = NS) => ({
  namespace, model: MODEL, params: { temperature: 0 },
  messages: [{ role: 'user', content: question }],
});

// ---- the fake model and the pattern an application writes ---------------------

let modelCalls = 0;

// Stands in for the LLM call: { answer, usage }.
async function fakeModel(question) {
  modelCalls += 1;
  return {
    answer: { role: 'assistant', content: `An answer to: ${question}` },
    usage: { prompt_tokens: question.split(/\s+/).length, completion_tokens: 5 },
  };
}

// The answer to 'question': from the cache when it has one, else from the
// model, then stored. A cache that is down or failing only costs a model call.
async function cachedCompletion(question) {
  const req = chat(question, APP_NS);
  const [status, hit] = await call('POST', '/v1/lookup', req).catch(() => [0, null]);
  if (status === 200 && hit.status === 'hit') {
    if (hit.validate) { // the namespace samples this hit: ask the model too
      const fresh = await fakeModel(question);
      await call('POST', '/v1/feedback', { validation_id: hit.validation_id, fresh_response: fresh.answer });
    }
    return hit.response;
  }
  const { answer, usage } = await fakeModel(question);
  await call('POST', '/v1/store', { ...req, response: answer, usage, ttl_s: 3600 }).catch(() => {});
  return answer;
}

// ---- the walk-through ----------------------------------------------------------

async function main() {
  const [rs, ready] = await call('GET', '/readyz');
  expect(`${BASE} is ready`, rs === 200, ready);

  console.log('\n# store an answer');
  const q = 'What is the capital of France?';
  const answer = { role: 'assistant', content: 'Paris.' };
  const [ss, stored] = await call('POST', '/v1/store', {
    ...chat(q), response: answer, ttl_s: 3600, usage: { prompt_tokens: 14, completion_tokens: 2 },
  });
  expect(`stored under key ${stored?.key}`, ss === 201, stored);

  console.log('\n# the same request, fields in another order and 0.0 for 0: an exact hit');
  let [st, hit] = await call('POST', '/v1/lookup',
    `{"params":{"temperature":0.0},"model":"${MODEL}","namespace":"${NS}",` +
    `"messages":[{"content":"${q}","role":"user"}]}`);
  expect('exact hit with the stored answer', st === 200 && hit.match === 'exact' &&
    hit.key === stored.key && JSON.stringify(hit.response) === JSON.stringify(answer), hit);

  console.log('\n# the same question in other words: a semantic hit (the server\'s model)');
  if (ready.embedders?.default !== 'up') {
    console.log('SKIP: semantic lookup: the server has no --model');
  } else {
    [st, hit] = await call('POST', '/v1/lookup', chat("What is France's capital?"));
    expect(`semantic hit, similarity ${hit.similarity} to '${hit.matched_prompt}'`,
      st === 200 && hit.match === 'semantic' && hit.response?.content === answer.content, hit);
  }

  console.log('\n# an unrelated question: a miss, with the key to store under');
  const [ms, miss] = await call('POST', '/v1/lookup', chat('How tall is Mount Everest?'));
  expect('miss', ms === 200 && miss.status === 'miss' && miss.key?.length === 32, miss);

  console.log('\n# lookup -> model -> store, in a namespace that validates every hit');
  // A real namespace samples a few hits (sample_rate 0.05, say); 1 shows it here.
  let [ns, nsBody] = await call('PUT', `/v1/namespaces/${APP_NS}`,
    { sample_rate: 1, validation_budget: 1, delivery: 'caller', compare: 'normalized' }, ADMIN_TOKEN);
  expect(`namespace ${APP_NS} samples every hit`, ns === 200, nsBody);
  const first = await cachedCompletion('Name a prime number.');
  expect('first call: a miss, so the model answered', modelCalls === 1, modelCalls);
  const second = await cachedCompletion('Name a prime number.');
  expect('second call: the cached answer', JSON.stringify(second) === JSON.stringify(first), second);
  expect('the hit was validated against the model (2 model calls)', modelCalls === 2, modelCalls);
  [ns, nsBody] = await call('GET', `/v1/namespaces/${APP_NS}`);
  const quality = nsBody?.quality ?? {};
  expect(`namespace quality: ${quality.validated} validated, ${quality.wrong} wrong`,
    ns === 200 && quality.validated === 1 && quality.wrong === 0, nsBody);

  console.log('\n# stats');
  const [ts, stats] = await call('GET', '/v1/stats');
  const lookups = stats?.lookups ?? {};
  expect(`${stats?.entries} entries, lookups ${JSON.stringify(lookups)}, hit rate ${stats?.hit_rate}`,
    ts === 200 && lookups.exact_hit >= 2 && lookups.miss >= 2, stats);

  await removeNamespaces(BASE, [NS, APP_NS], 1);
}

main().catch((e) => {
  console.log(`FAIL  ${e.cause?.message ?? e.message} (${BASE})`);
  process.exit(1);
});
