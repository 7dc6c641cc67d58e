// proxy_openai.mjs -- OpenAI's official Node SDK with its baseURL pointed at
// semcached's proxy; nothing else in the application changes. One call (a
// miss, forwarded upstream), the same call again (a hit, read from X-Cache via
// .withResponse()), the same question streamed (served from the same entry as
// events), and per-request headers (Cache-Control: no-cache; another
// X-Semcached-Namespace). Each run uses a namespace of its own (a client
// default header) and removes it at the end. Exits 1 when something is off.
//   SEMCACHED_URL (default http://127.0.0.1:8080), OPENAI_API_KEY (sent on to
//   the upstream semcached was started with), OPENAI_MODEL (default
//   gpt-4o-mini), SEMCACHED_TOKEN / SEMCACHED_ADMIN_TOKEN when the server has them.
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { expect, removeNamespaces } from './check.mjs';

const BASE = (process.env.SEMCACHED_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const MODEL = process.env.OPENAI_MODEL || 'gpt-4o-mini';
const TOKEN = process.env.SEMCACHED_TOKEN || '';
const NS = `examples-openai-${randomUUID().slice(0, 8)}`;

const openai = new OpenAI({
  baseURL: `${BASE}/v1`,
  maxRetries: 0,
  // semcached's own headers ride along with every request of this client.
  defaultHeaders: { 'X-Semcached-Namespace': NS, ...(TOKEN && { 'X-Semcached-Token': TOKEN }) },
});

const ask = (question, extra = {}) => ({
  model: MODEL, messages: [{ role: 'user', content: question }], ...extra,
});
const question = 'Name a prime number.';

console.log(`# ${question} (${MODEL} through ${BASE}, namespace ${NS})`);
const first = await openai.chat.completions.create(ask(question)).withResponse();
const text = first.data.choices[0].message.content;
expect(`first call: X-Cache ${first.response.headers.get('x-cache')}, "${text}"`,
  first.response.headers.get('x-cache') === 'MISS' && text, first.data);

const again = await openai.chat.completions.create(ask(question)).withResponse();
const h = again.response.headers;
expect(`same call: X-Cache ${h.get('x-cache')}, match ${h.get('x-semcached-match')}, ` +
  `age ${h.get('age')} s, key ${h.get('x-semcached-key')}`,
  h.get('x-cache') === 'HIT' && h.get('x-semcached-match') === 'exact' &&
  again.data.choices[0].message.content === text, again.data);

console.log('\n# the same question streamed: the stored answer replayed as events');
const streamed = await openai.chat.completions.create(ask(question, { stream: true })).withResponse();
let pieces = '';
for await (const chunk of streamed.data) pieces += chunk.choices[0]?.delta?.content ?? '';
expect(`streamed: X-Cache ${streamed.response.headers.get('x-cache')}, "${pieces}"`,
  streamed.response.headers.get('x-cache') === 'HIT' && pieces === text, pieces);

console.log('\n# per-request headers');
const fresh = await openai.chat.completions
  .create(ask(question), { headers: { 'Cache-Control': 'no-cache' } }).withResponse();
expect(`Cache-Control: no-cache: X-Cache ${fresh.response.headers.get('x-cache')} (asked upstream, stored again)`,
  fresh.response.headers.get('x-cache') === 'BYPASS', fresh.data);
const other = `${NS}-other`;
const elsewhere = await openai.chat.completions
  .create(ask(question), { headers: { 'X-Semcached-Namespace': other } }).withResponse();
expect(`X-Semcached-Namespace: ${other}: X-Cache ${elsewhere.response.headers.get('x-cache')} ` +
  '(namespaces never share entries)', elsewhere.response.headers.get('x-cache') === 'MISS', elsewhere.data);

// Proxied entries are ordinary entries: the native API removes them.
await removeNamespaces(BASE, [NS, other], 1);
