/* api_lease.h -- the native API's single flight: a lookup with "lease": true
 * that misses leads (its caller is expected to store) until the store of
 * its key or --lease-ms; identical leased lookups meanwhile wait, then are
 * looked up again (a hit once the store committed, else a miss). Built on
 * flight.h; private to the cache handlers. */
#ifndef SC_API_LEASE_H
#define SC_API_LEASE_H

#include "api.h"

enum { SC_LEASE_NONE = -1, SC_LEASE_GRANTED = 0, SC_LEASE_WAITING = 1 };

/* Runs the lookup of 'req' (taken over) again, with no lease, answering
 * 'c' (or holding it meanwhile): the cache handlers' own lookup, passed in
 * so that this module needs nothing of theirs. */
typedef void (*sc_lease_again_fn)(sc_worker_t *w, sc_conn_t *c, sc_request_t *req);

/* A leased lookup 'req' missed, on 'w''s loop: SC_LEASE_GRANTED (the
 * caller answers the miss, saying so), SC_LEASE_WAITING ('req' taken over,
 * 'c' held; once the lease's key is stored or the lease ended, 'again'
 * answers it), or SC_LEASE_NONE (no table or no memory: a plain miss). */
int sc_lease_on_miss(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, sc_lease_again_fn again);
/* An entry under 'key' was stored (or its store failed): the lease on it,
 * if any, ends and its waiters look up again. Any thread. */
void sc_lease_release(sc_ctx_t *ctx, const uint8_t key[SC_KEY_BYTES]);

#endif
