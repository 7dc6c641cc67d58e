/* flight.c -- the process-wide table of requests in flight (flight.h). One
 * mutex guards everything: joins, the leader's news and the followers'
 * reads are short copies, and a change only posts each follower's task (at
 * most one queued per follower), so loops never wait on each other. Flights
 * are chained in buckets by scope, so an identical request and the
 * semantic candidates of one scope are found in the same chain. */
#define _GNU_SOURCE
#include "flight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_request.h"
#include "sc_vec.h"

#define BUCKETS 1024
/* The most live bytes a flight keeps for its followers (a larger stream is
 * no longer followed live: its followers wait for the stored entry). */
#define LOG_MAX ((size_t)16 << 20)

struct sc_fl_wait_s {
    sc_task_t task; /* first member */
    sc_worker_t *w;
    sc_fl_t *f;
    sc_fl_wake_fn fn;
    void *arg;
    size_t cursor; /* live bytes read so far */
    sc_flight_t *t;
    int queued;    /* 'task' is posted and has not run (under the table's mutex) */
    int cancelled; /* detached: the next run frees (written on the follower's loop) */
    sc_fl_wait_t *next;
};

struct sc_fl_s {
    sc_flight_t *t;
    sc_fl_kind_t kind;
    uint8_t key[SC_KEY_BYTES];
    uint64_t scope;
    float *vec; /* owned, or NULL */
    uint32_t dim;
    uint64_t deadline_ms;
    int in_table;
    int refs;
    sc_fl_state_t state;
    int head, status, live;
    char ctype[128];
    sc_buf_t log;   /* live body bytes */
    sc_buf_t entry; /* DONE: the answer */
    sc_fl_wait_t *waiters;
    sc_fl_t *next; /* bucket chain */
};

typedef struct {
    char ns[SC_MAX_NAMESPACE + 1];
    uint64_t n[2];
} ns_count_t;

struct sc_flight_s {
    pthread_mutex_t mu;
    sc_fl_t *buckets[BUCKETS];
    size_t sweep; /* the bucket the next join checks for expired leases */
    ns_count_t *counts;
    int n_counts, max_labels;
    uint64_t other[2], total[2];
};

int sc_flight_create(sc_flight_t **out, int max_labels)
{
    sc_flight_t *t = calloc(1, sizeof(*t));
    if (!t)
        return SC_ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->max_labels = max_labels;
    *out = t;
    return 0;
}

static void fl_free(sc_fl_t *f)
{
    free(f->vec);
    sc_buf_free(&f->log);
    sc_buf_free(&f->entry);
    free(f);
}

/* At the end every loop has stopped: no follower is left, only flights. */
void sc_flight_destroy(sc_flight_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        while (t->buckets[i]) {
            sc_fl_t *f = t->buckets[i];
            t->buckets[i] = f->next;
            fl_free(f);
        }
    free(t->counts);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- under the mutex --------------------------------------------------------- */

static void wake_locked(sc_fl_wait_t *wt)
{
    if (!wt->queued) {
        wt->queued = 1;
        sc_worker_post(wt->w, &wt->task);
    }
}

static void news_locked(sc_fl_t *f)
{
    for (sc_fl_wait_t *wt = f->waiters; wt; wt = wt->next)
        wake_locked(wt);
}

static void unref_locked(sc_fl_t *f)
{
    if (--f->refs == 0)
        fl_free(f);
}

/* Proxy flights are chained by scope (semantic followers search one
 * chain), leases by key (a store knows only its key). */
static size_t bucket_of(sc_fl_kind_t kind, const uint8_t *key, uint64_t scope)
{
    uint64_t k;
    memcpy(&k, key, sizeof(k));
    return (size_t)((kind == SC_FL_LEASE ? k : scope) % BUCKETS);
}

/* Takes 'f' out of its chain (the table's reference goes with it). */
static void unlink_locked(sc_flight_t *t, sc_fl_t *f)
{
    if (!f->in_table)
        return;
    for (sc_fl_t **pp = &t->buckets[bucket_of(f->kind, f->key, f->scope)]; *pp;
         pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->in_table = 0;
    unref_locked(f);
}

static int expired(const sc_fl_t *f, uint64_t now)
{
    return f->deadline_ms && now >= f->deadline_ms;
}

/* Expired leases of bucket 'b' fail (their followers answer) and go. */
static void prune_locked(sc_flight_t *t, size_t b, uint64_t now)
{
    sc_fl_t *f = t->buckets[b];
    while (f) {
        sc_fl_t *next = f->next;
        if (expired(f, now)) {
            if (f->state == SC_FL_RUNNING)
                f->state = SC_FL_FAILED;
            news_locked(f);
            unlink_locked(t, f);
        }
        f = next;
    }
}

/* ---- joining ---------------------------------------------------------------------- */

static void wait_task(sc_task_t *task)
{
    sc_fl_wait_t *wt = (sc_fl_wait_t *)task;
    /* Only this loop thread cancels, so 'cancelled' reads without the lock. */
    if (wt->cancelled) {
        free(wt); /* the last post (news or the detach's): nothing refers to 'wt' */
        return;
    }
    pthread_mutex_lock(&wt->t->mu);
    wt->queued = 0; /* news from now on posts again */
    pthread_mutex_unlock(&wt->t->mu);
    sc_worker_expect(wt->w); /* the next post: news, or the detach's */
    wt->fn(wt->arg);
}

static sc_fl_t *lead_locked(sc_flight_t *t, const sc_fl_probe_t *p)
{
    sc_fl_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    if (p->vec && p->dim) {
        f->vec = malloc(p->dim * sizeof(float));
        if (!f->vec) {
            free(f);
            return NULL;
        }
        memcpy(f->vec, p->vec, p->dim * sizeof(float));
        f->dim = p->dim;
    }
    f->t = t;
    f->kind = p->kind;
    memcpy(f->key, p->key, SC_KEY_BYTES);
    f->scope = p->scope;
    f->deadline_ms = p->deadline_ms;
    f->state = SC_FL_RUNNING;
    f->refs = 2; /* the table's and the leader's */
    f->in_table = 1;
    size_t b = bucket_of(p->kind, p->key, p->scope);
    f->next = t->buckets[b];
    t->buckets[b] = f;
    return f;
}

/* The flight 'p' should follow in its chain, or NULL; '*sim' its match. */
static sc_fl_t *find_locked(sc_flight_t *t, const sc_fl_probe_t *p, double *sim)
{
    sc_fl_t *best = NULL;
    double best_sim = -2.0;
    int semantic = p->vec && p->dim && p->threshold < 1.0;
    for (sc_fl_t *f = t->buckets[bucket_of(p->kind, p->key, p->scope)]; f; f = f->next) {
        if (f->kind != p->kind || f->state == SC_FL_FAILED)
            continue;
        if (memcmp(f->key, p->key, SC_KEY_BYTES) == 0) {
            *sim = 1.0;
            return f;
        }
        if (!semantic || f->scope != p->scope || !f->vec || f->dim != p->dim)
            continue;
        double d = sc_vec_dot(f->vec, p->vec, p->dim);
        if (d >= p->threshold && d > best_sim) {
            best = f;
            best_sim = d;
        }
    }
    *sim = best_sim;
    return best;
}

int sc_flight_join(sc_flight_t *t, sc_worker_t *w, const sc_fl_probe_t *p, sc_fl_wake_fn fn,
                   void *arg, sc_fl_t **lead, sc_fl_wait_t **wait, double *similarity)
{
    uint64_t now = sc_now_ms();
    sc_fl_wait_t *wt = calloc(1, sizeof(*wt));
    if (!wt)
        return SC_ENOMEM;
    pthread_mutex_lock(&t->mu);
    prune_locked(t, t->sweep++ % BUCKETS, now);
    prune_locked(t, bucket_of(p->kind, p->key, p->scope), now);
    double sim;
    sc_fl_t *f = find_locked(t, p, &sim);
    if (!f) {
        free(wt);
        *lead = lead_locked(t, p);
        pthread_mutex_unlock(&t->mu);
        return *lead ? SC_FL_LEAD : SC_ENOMEM;
    }
    wt->task.run = wait_task;
    wt->t = t;
    wt->w = w;
    wt->f = f;
    wt->fn = fn;
    wt->arg = arg;
    wt->next = f->waiters;
    f->waiters = wt;
    f->refs++;
    sc_worker_expect(w); /* the first post: news, or the detach's */
    if (f->state != SC_FL_RUNNING || f->head)
        wake_locked(wt);
    pthread_mutex_unlock(&t->mu);
    *wait = wt;
    *similarity = sim;
    return SC_FL_FOLLOW;
}

/* ---- the leader ------------------------------------------------------------------ */

static pthread_mutex_t *mu_of(sc_fl_t *f)
{
    return &f->t->mu;
}

void sc_fl_head(sc_fl_t *f, int status, const char *ctype, int live)
{
    pthread_mutex_lock(mu_of(f));
    f->head = 1;
    f->status = status;
    f->live = live;
    snprintf(f->ctype, sizeof(f->ctype), "%s", ctype ? ctype : "");
    news_locked(f);
    pthread_mutex_unlock(mu_of(f));
}

void sc_fl_bytes(sc_fl_t *f, const char *p, size_t n)
{
    pthread_mutex_lock(mu_of(f));
    if (f->live && f->state == SC_FL_RUNNING && n) {
        if (f->log.len + n > LOG_MAX || sc_buf_append(&f->log, p, n)) {
            f->live = 0; /* followers that began are cut; the others wait for the entry */
            sc_buf_free(&f->log);
        }
        news_locked(f);
    }
    pthread_mutex_unlock(mu_of(f));
}

void sc_fl_ended(sc_fl_t *f)
{
    pthread_mutex_lock(mu_of(f));
    if (f->state == SC_FL_RUNNING) {
        f->state = SC_FL_ENDED;
        news_locked(f);
    }
    pthread_mutex_unlock(mu_of(f));
}

void sc_fl_done(sc_fl_t *f, const char *entry, size_t len)
{
    pthread_mutex_lock(mu_of(f));
    if (f->state == SC_FL_RUNNING || f->state == SC_FL_ENDED) {
        sc_buf_reset(&f->entry);
        if (sc_buf_append(&f->entry, entry, len) == 0) {
            f->state = SC_FL_DONE;
            news_locked(f);
        }
    }
    pthread_mutex_unlock(mu_of(f));
}

void sc_fl_leave(sc_flight_t *t, sc_fl_t *f)
{
    pthread_mutex_lock(&t->mu);
    if (f->state == SC_FL_RUNNING || f->state == SC_FL_ENDED) { /* no entry came */
        f->state = SC_FL_FAILED;
        news_locked(f);
    }
    unlink_locked(t, f);
    unref_locked(f);
    pthread_mutex_unlock(&t->mu);
}

void sc_fl_put(sc_flight_t *t, sc_fl_t *f)
{
    pthread_mutex_lock(&t->mu);
    unref_locked(f);
    pthread_mutex_unlock(&t->mu);
}

int sc_flight_release(sc_flight_t *t, sc_fl_kind_t kind, const uint8_t *key)
{
    int found = 0;
    pthread_mutex_lock(&t->mu);
    for (sc_fl_t *f = t->buckets[bucket_of(kind, key, 0)]; f; f = f->next)
        if (f->kind == kind && memcmp(f->key, key, SC_KEY_BYTES) == 0) {
            found = 1;
            f->state = SC_FL_DONE;
            news_locked(f);
            unlink_locked(t, f);
            break;
        }
    pthread_mutex_unlock(&t->mu);
    return found;
}

/* ---- a follower ------------------------------------------------------------------ */

int sc_fl_read(sc_fl_wait_t *wt, sc_fl_view_t *v, sc_buf_t *bytes, sc_buf_t *entry)
{
    sc_fl_t *f = wt->f;
    int rc = 0;
    pthread_mutex_lock(mu_of(f));
    v->state = f->state;
    v->head = f->head;
    v->status = f->status;
    v->live = f->live;
    memcpy(v->ctype, f->ctype, sizeof(v->ctype));
    memcpy(v->key, f->key, SC_KEY_BYTES);
    v->deadline_ms = f->deadline_ms;
    if (bytes && f->log.len > wt->cursor) {
        rc = sc_buf_append(bytes, f->log.data + wt->cursor, f->log.len - wt->cursor);
        if (!rc)
            wt->cursor = f->log.len;
    }
    if (!rc && entry && f->state == SC_FL_DONE)
        rc = sc_buf_append(entry, f->entry.data ? f->entry.data : "", f->entry.len);
    pthread_mutex_unlock(mu_of(f));
    return rc;
}

void sc_fl_detach(sc_flight_t *t, sc_fl_wait_t *wt)
{
    sc_fl_t *f = wt->f;
    pthread_mutex_lock(&t->mu);
    for (sc_fl_wait_t **pp = &f->waiters; *pp; pp = &(*pp)->next)
        if (*pp == wt) {
            *pp = wt->next;
            break;
        }
    wt->cancelled = 1;
    wt->f = NULL;
    unref_locked(f);
    wake_locked(wt); /* the run that frees it (or the one already queued) */
    pthread_mutex_unlock(&t->mu);
}

/* ---- counting ---------------------------------------------------------------------- */

void sc_flight_count(sc_flight_t *t, const char *ns, size_t ns_len, int semantic)
{
    int m = semantic ? 1 : 0;
    pthread_mutex_lock(&t->mu);
    t->total[m]++;
    int i = 0;
    while (i < t->n_counts &&
           !(strlen(t->counts[i].ns) == ns_len && memcmp(t->counts[i].ns, ns, ns_len) == 0))
        i++;
    if (i == t->n_counts && i < t->max_labels && ns_len <= SC_MAX_NAMESPACE) {
        ns_count_t *c = realloc(t->counts, (size_t)(i + 1) * sizeof(*c));
        if (c) {
            t->counts = c;
            memset(&c[i], 0, sizeof(c[i]));
            memcpy(c[i].ns, ns, ns_len);
            t->n_counts++;
        }
    }
    if (i < t->n_counts)
        t->counts[i].n[m]++;
    else
        t->other[m]++;
    pthread_mutex_unlock(&t->mu);
}

void sc_flight_prometheus(sc_flight_t *t, sc_buf_t *b)
{
    static const char *const match[2] = {"exact", "semantic"};
    sc_buf_puts(b, "# HELP semcached_coalesced_total Proxied misses (and native leased lookups) "
                   "answered from a concurrent request's answer instead of their own upstream "
                   "call, by namespace and match.\n# TYPE semcached_coalesced_total counter\n");
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= t->n_counts; i++) {
        const uint64_t *n = i < t->n_counts ? t->counts[i].n : t->other;
        if (i == t->n_counts && !n[0] && !n[1])
            break;
        for (int m = 0; m < 2; m++) /* names are [A-Za-z0-9_.-]: nothing to escape */
            sc_buf_printf(b, "semcached_coalesced_total{namespace=\"%s\",match=\"%s\"} %llu\n",
                          i < t->n_counts ? t->counts[i].ns : "_other", match[m],
                          (unsigned long long)n[m]);
    }
    pthread_mutex_unlock(&t->mu);
}

void sc_flight_stats_json(sc_flight_t *t, sc_buf_t *b)
{
    uint64_t n[2] = {0, 0};
    if (t) {
        pthread_mutex_lock(&t->mu);
        memcpy(n, t->total, sizeof(n));
        pthread_mutex_unlock(&t->mu);
    }
    sc_buf_printf(b, "\"coalesced\":{\"exact\":%llu,\"semantic\":%llu}", (unsigned long long)n[0],
                  (unsigned long long)n[1]);
}
