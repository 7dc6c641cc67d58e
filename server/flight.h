/* flight.h -- requests in flight, process-wide, so that identical (or, for
 * the proxy, semantically close) concurrent misses make one upstream call:
 * the first is the leader, the others follow its flight and are woken on
 * their own loop (a posted task) whenever it has news. One mutex guards the
 * whole table; a flight is refcounted (the table, its leader, each
 * follower). Used by the proxy (proxy_flight.c) and the native lease
 * (api_lease.c). Nothing here blocks a loop. */
#ifndef SC_FLIGHT_H
#define SC_FLIGHT_H

#include "process.h"

typedef struct sc_flight_s sc_flight_t; /* the table (sc_ctx_t.flight) */
typedef struct sc_fl_s sc_fl_t;         /* one request in flight */
typedef struct sc_fl_wait_s sc_fl_wait_t; /* a follower's place in a flight */

/* Proxy flights and native leases never meet, even on equal keys. */
typedef enum { SC_FL_PROXY = 1, SC_FL_LEASE = 2 } sc_fl_kind_t;
typedef enum { SC_FL_RUNNING, SC_FL_ENDED, SC_FL_DONE, SC_FL_FAILED } sc_fl_state_t;
/* ENDED: the leader's stream ended well but gave no entry; DONE: an entry
 * (an sc_proxy_entry JSON, or for a lease: "stored"); FAILED: the leader
 * left without either. */

/* 'max_labels' caps the namespaces counted by name (the rest: "_other"). */
int sc_flight_create(sc_flight_t **out, int max_labels);
void sc_flight_destroy(sc_flight_t *t);

/* What a request that missed brings to the table. Borrowed for the call. */
typedef struct {
    sc_fl_kind_t kind;
    const uint8_t *key; /* SC_KEY_BYTES: the exact key (it includes namespace and tenant) */
    uint64_t scope;
    const float *vec; /* NULL: exact only. Unit length, 'dim' floats */
    uint32_t dim;
    double threshold;     /* a semantic follower needs a cosine >= this (< 1) */
    uint64_t deadline_ms; /* a lease's end (sc_now_ms clock); 0 = none */
} sc_fl_probe_t;

/* Runs on the follower's loop thread when its flight has news. */
typedef void (*sc_fl_wake_fn)(void *arg);

enum { SC_FL_FOLLOW = 0, SC_FL_LEAD = 1 };

/* On worker 'w''s loop thread: follows the flight of an identical request
 * (same kind and key; an expired lease counts as none), else (with a
 * vector) the closest one of the same scope at or above the threshold,
 * else leads a new one. SC_FL_LEAD: '*lead' is the new flight (the
 * caller's reference: sc_fl_leave or sc_fl_put). SC_FL_FOLLOW: '*wait' is
 * the follower's place, 'fn(arg)' runs on 'w' at each change until
 * sc_fl_detach; '*similarity' is 1 for an exact match, else the cosine.
 * SC_ENOMEM: neither. */
int sc_flight_join(sc_flight_t *t, sc_worker_t *w, const sc_fl_probe_t *p, sc_fl_wake_fn fn,
                   void *arg, sc_fl_t **lead, sc_fl_wait_t **wait, double *similarity);

/* ---- the leader (its own loop thread) ------------------------------------------- */

/* The answer's head: 'live' says followers may relay its body as it comes
 * (a 2xx event stream); 'ctype' is copied. */
void sc_fl_head(sc_fl_t *f, int status, const char *ctype, int live);
/* Body bytes of a live answer, in order (copied). */
void sc_fl_bytes(sc_fl_t *f, const char *p, size_t n);
/* The stream ended well (every byte was given). */
void sc_fl_ended(sc_fl_t *f);
/* The answer to serve followers from ('entry', copied), as stored. */
void sc_fl_done(sc_fl_t *f, const char *entry, size_t len);
/* The leader lets go: a flight neither ended nor done fails; the flight
 * leaves the table and the leader's reference is dropped. */
void sc_fl_leave(sc_flight_t *t, sc_fl_t *f);
/* Drops the caller's reference only (a lease stays until released or
 * expired). */
void sc_fl_put(sc_flight_t *t, sc_fl_t *f);
/* A lease's key was stored: its flight is done and leaves the table. 1 if
 * there was one. Any thread. */
int sc_flight_release(sc_flight_t *t, sc_fl_kind_t kind, const uint8_t *key);

/* ---- a follower (its own loop thread) -------------------------------------------- */

typedef struct {
    sc_fl_state_t state;
    int head; /* the head is known: status, ctype, live */
    int status;
    int live;
    char ctype[128];
    uint8_t key[SC_KEY_BYTES]; /* the leader's request key */
    uint64_t deadline_ms;      /* a lease's end */
} sc_fl_view_t;

/* The flight as it stands: 'bytes' (may be NULL) gets the live body bytes
 * this follower has not read yet; 'entry' (may be NULL) the entry once
 * DONE. 0 or SC_ENOMEM. */
int sc_fl_read(sc_fl_wait_t *wt, sc_fl_view_t *v, sc_buf_t *bytes, sc_buf_t *entry);
/* The follower stops following ('wt' is invalid afterwards; its wake
 * never runs again). Exactly once per follower. */
void sc_fl_detach(sc_flight_t *t, sc_fl_wait_t *wt);

/* ---- counting ------------------------------------------------------------------ */

/* A follower was answered from its leader's answer ('semantic': by a close
 * request rather than an identical one). Any thread. */
void sc_flight_count(sc_flight_t *t, const char *ns, size_t ns_len, int semantic);
/* Appends the semcached_coalesced_total{namespace,match} family (Prometheus
 * text) to 'b'. */
void sc_flight_prometheus(sc_flight_t *t, sc_buf_t *b);
/* Appends "coalesced":{"exact":N,"semantic":N} (totals) to 'b'. */
void sc_flight_stats_json(sc_flight_t *t, sc_buf_t *b);

#endif
