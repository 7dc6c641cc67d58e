// check.mjs -- what the Node examples share for checking themselves (no
// packages): expect() prints a step and exits 1 when it is not as expected,
// removeNamespaces() deletes a run's namespaces (and their entries, proxied
// ones included) through the native API with the admin token, if any.

export function expect(what, ok, got) {
  console.log((ok ? 'ok    ' : 'FAIL  ') + what);
  if (!ok) {
    console.log('      got:', JSON.stringify(got)?.slice(0, 300));
    process.exit(1);
  }
}

// DELETE /v1/namespaces/{name} for each name; 'entries' is how many each must have held.
export async function removeNamespaces(base, names, entries) {
  const admin = process.env.SEMCACHED_ADMIN_TOKEN || process.env.SEMCACHED_TOKEN;
  for (const name of names) {
    const r = await fetch(`${base}/v1/namespaces/${name}`, {
      method: 'DELETE', headers: admin ? { Authorization: `Bearer ${admin}` } : {},
    });
    const gone = await r.json();
    expect(`removed namespace ${name} (${gone.removed} entries)`,
      r.status === 200 && gone.removed === entries, gone);
  }
}
