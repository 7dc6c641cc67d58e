// proxy_anthropic.mjs -- Anthropic's official Node SDK with its baseURL
// pointed at semcached's proxy (no /v1: the SDK adds it). One call (a miss,
// forwarded upstream), the same call again (a hit, read from X-Cache via
// .withResponse()), the same question streamed with the SDK's stream helper
// (served from the same entry as events), and per-request headers
// (Cache-Control: no-cache, read through .asResponse(); another
// X-Semcached-Namespace). Each run uses a namespace of its own (a client
// default header) and removes it at the end. Exits 1 when something is off.
//   SEMCACHED_URL (default http://127.0.0.1:8080), ANTHROPIC_API_KEY (sent on
//   to the upstream semcached was started with), ANTHROPIC_MODEL (default
//   claude-haiku-4-5), SEMCACHED_TOKEN / SEMCACHED_ADMIN_TOKEN when the server has them.
import { randomUUID } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { expect, removeNamespaces } from './check.mjs';

const BASE = (process.env.SEMCACHED_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const MODEL = process.env.ANTHROPIC_MODEL || 'claude-haiku-4-5';
const TOKEN = process.env.SEMCACHED_TOKEN || '';
const NS = `examples-anthropic-${randomUUID().slice(0, 8)}`;

const anthropic = new Anthropic({
  baseURL: BASE,
  maxRetries: 0,
  // semcached's own headers ride along with every request of this client.
  defaultHeaders: { 'X-Semcached-Namespace': NS, ...(TOKEN && { 'X-Semcached-Token': TOKEN }) },
});

const ask = (question) => ({
  model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: question }],
});
const textOf = (message) => message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
const question = 'Name a planet.';

console.log(`# ${question} (${MODEL} through ${BASE}, namespace ${NS})`);
const first = await anthropic.messages.create(ask(question)).withResponse();
const text = textOf(first.data);
expect(`first call: X-Cache ${first.response.headers.get('x-cache')}, "${text}"`,
  first.response.headers.get('x-cache') === 'MISS' && text, first.data);

const again = await anthropic.messages.create(ask(question)).withResponse();
const h = again.response.headers;
expect(`same call: X-Cache ${h.get('x-cache')}, match ${h.get('x-semcached-match')}, ` +
  `age ${h.get('age')} s, key ${h.get('x-semcached-key')}`,
  h.get('x-cache') === 'HIT' && h.get('x-semcached-match') === 'exact' && textOf(again.data) === text,
  again.data);

console.log('\n# the same question streamed: the stored answer replayed as events');
const stream = anthropic.messages.stream(ask(question));
let pieces = '';
stream.on('text', (t) => { pieces += t; });
const final = await stream.finalMessage();
const { response: streamed } = await stream.withResponse();
expect(`streamed: X-Cache ${streamed.headers.get('x-cache')}, "${pieces}"`,
  streamed.headers.get('x-cache') === 'HIT' && pieces === text && textOf(final) === text, pieces);

console.log('\n# per-request headers');
const raw = await anthropic.messages
  .create(ask(question), { headers: { 'Cache-Control': 'no-cache' } }).asResponse();
const body = await raw.json();
expect(`Cache-Control: no-cache: ${raw.status}, X-Cache ${raw.headers.get('x-cache')} ` +
  '(asked upstream, stored again)', raw.status === 200 && raw.headers.get('x-cache') === 'BYPASS', body);
const other = `${NS}-other`;
const elsewhere = await anthropic.messages
  .create(ask(question), { headers: { 'X-Semcached-Namespace': other } }).withResponse();
expect(`X-Semcached-Namespace: ${other}: X-Cache ${elsewhere.response.headers.get('x-cache')} ` +
  '(namespaces never share entries)', elsewhere.response.headers.get('x-cache') === 'MISS', elsewhere.data);

// Proxied entries are ordinary entries: the native API removes them.
await removeNamespaces(BASE, [NS, other], 1);
