/* quality_budget.c -- what a namespace's validations cost against what its
 * hits save. Every hit served saves one model call; every paid validation
 * (a sampled hit re-inferred, an exploration sent upstream, a judge call)
 * spends one. A namespace may spend at most its validation_budget share of
 * the calls saved over a sliding window (both counts halve once the window
 * fills); beyond it validations pause, except for a small pass-through rate
 * that keeps the false-hit estimate alive. One mutex; a hit costs a hash
 * lookup under it. */
#define _GNU_SOURCE
#include "sc_quality.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define SPEND_BUCKETS 256
#define SPEND_NS_MAX 128

typedef struct spend_ns_s {
    char ns[SPEND_NS_MAX + 1];
    size_t ns_len;
    sc_spend_stats_t st;
    struct spend_ns_s *next;
} spend_ns_t;

struct sc_spend_s {
    pthread_mutex_t mu;
    spend_ns_t *buckets[SPEND_BUCKETS];
};

int sc_spend_create(sc_spend_t **out)
{
    sc_spend_t *s = calloc(1, sizeof(*s));
    if (!s)
        return SC_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void sc_spend_destroy(sc_spend_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < SPEND_BUCKETS; i++)
        for (spend_ns_t *n = s->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The counts of 'ns' (created when 'create'); NULL when absent or out of
 * memory. Names longer than the quality table keeps are cut the same way. */
static spend_ns_t *ns_of(sc_spend_t *s, const char *ns, size_t len, int create)
{
    if (len > SPEND_NS_MAX)
        len = SPEND_NS_MAX;
    spend_ns_t **b = &s->buckets[XXH3_64bits(ns, len) % SPEND_BUCKETS];
    for (spend_ns_t *n = *b; n; n = n->next)
        if (n->ns_len == len && memcmp(n->ns, ns, len) == 0)
            return n;
    if (!create)
        return NULL;
    spend_ns_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n->ns, ns, len);
    n->ns_len = len;
    n->next = *b;
    *b = n;
    return n;
}

void sc_spend_hits(sc_spend_t *s, const char *ns, size_t ns_len, uint64_t count)
{
    pthread_mutex_lock(&s->mu);
    spend_ns_t *n = ns_of(s, ns, ns_len, 1);
    if (n) {
        n->st.hits += count;
        n->st.window_hits += (double)count;
        if (n->st.window_hits >= SC_SPEND_WINDOW) { /* the window slides by halves */
            n->st.window_hits /= 2;
            n->st.window_paid /= 2;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int sc_spend_allow(sc_spend_t *s, const char *ns, size_t ns_len, double budget, int pass)
{
    pthread_mutex_lock(&s->mu);
    spend_ns_t *n = ns_of(s, ns, ns_len, 1);
    int ok = !n || pass || n->st.window_paid + 1 <= budget * n->st.window_hits;
    if (n && ok) {
        n->st.paid++;
        n->st.window_paid += 1;
    } else if (n) {
        n->st.paused++;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void sc_spend_get(sc_spend_t *s, const char *ns, size_t ns_len, sc_spend_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    spend_ns_t *n = ns_of(s, ns, ns_len, 0);
    if (n)
        *out = n->st;
    else
        memset(out, 0, sizeof(*out));
    pthread_mutex_unlock(&s->mu);
}

void sc_spend_foreach(sc_spend_t *s,
                      void (*fn)(void *ctx, const char *ns, const sc_spend_stats_t *st), void *ctx)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SPEND_BUCKETS; i++)
        for (spend_ns_t *n = s->buckets[i]; n; n = n->next)
            fn(ctx, n->ns, &n->st);
    pthread_mutex_unlock(&s->mu);
}
