/* scopes_search.c -- searches of the scope manager: flat scopes by exact
 * scan, HNSW scopes by their exact delta layers plus the graph, and the
 * decide-search that lets a cheap small beam answer when the cache decision
 * it supports is clear, widening only near the threshold or for a scope
 * whose own measured disagreement says the small beam cannot be trusted.
 * The graph is searched after the scope's lock is released, through a
 * reference, so no change ever waits for a search. The index options' helpers
 * (sc_scopes_config_from, sc_scopes_set_search) end the file. */
#define _GNU_SOURCE
#include <math.h>

#include "sc_config.h"
#include "scopes_internal.h"

/* Extra graph candidates asked for when tombstones may hide some. */
#define TOMB_SLACK_MAX 64
/* A scope's first at-once hits, and misses, are all verified at the widest
 * beam (a few hundred wide searches in the life of a scope). */
#define VERIFY_WARMUP 256
/* Verified decisions the estimate remembers: counts halve past this. */
#define TRUST_WINDOW 1024
/* Two candidates this close in similarity are the same decision. */
#define TIE_EPS 1e-6f

typedef struct {
    uint64_t label;
    float sim;
} cand_t;

static int cand_by_sim_desc(const void *a, const void *b)
{
    float x = ((const cand_t *)a)->sim, y = ((const cand_t *)b)->sim;
    return (x < y) - (x > y);
}

/* One search's answer, best first. */
typedef struct {
    uint64_t labels[SC_SCOPES_K_MAX];
    float sims[SC_SCOPES_K_MAX];
    size_t n;
} answer_t;

/* What an HNSW search read under the scope's lock: the top candidates of the
 * exact layers and a reference to the graph. */
typedef struct {
    cand_t layer[2 * SC_SCOPES_K_MAX];
    size_t nl;
    graph_ref_t *g;
    size_t slack; /* tombstones that may hide graph candidates (capped) */
} view_t;

/* Appends a flat layer's top-k, leaving out tombstoned labels. */
static int search_flat_layer(const sc_flat_t *f, const labelset_t *tomb, const float *q, size_t k,
                             cand_t *out, size_t *n)
{
    if (!f || !sc_flat_count(f))
        return 0;
    uint64_t labels[SC_SCOPES_K_MAX];
    float sims[SC_SCOPES_K_MAX];
    size_t m = 0;
    int rc = sc_flat_search(f, q, k, labels, sims, &m);
    for (size_t i = 0; !rc && i < m; i++)
        if (!tomb || !labelset_has(tomb, labels[i]))
            out[(*n)++] = (cand_t){labels[i], sims[i]};
    return rc;
}

/* Whether 'label', found in graph 'g' by a search that ran without the lock,
 * is still live (caller holds the lock). While 'g' is current its
 * tombstones say; if a merge swapped graphs meanwhile, the current layers
 * are asked directly, so a removal that finished is never undone. (After a
 * swap, a vector replaced and merged meanwhile keeps its old similarity in
 * this one answer; the lookup recomputes similarities from the store.) */
static int graph_hit_live(const scope_t *sc, const graph_ref_t *g, uint64_t label)
{
    if (sc->flat)
        return 0; /* reset to another embedder */
    if (sc->graph == g)
        return !labelset_has(&sc->tomb, label) && !labelset_has(&sc->frozen_tomb, label);
    /* A copy in a delta is the current one (and the delta scan reports it). */
    if (sc_flat_contains(sc->delta, label) ||
        (sc->frozen_delta && sc_flat_contains(sc->frozen_delta, label)))
        return 0;
    return sc_hnsw_contains(sc->graph->h, label) && !labelset_has(&sc->tomb, label) &&
           !labelset_has(&sc->frozen_tomb, label);
}

/* Scans the exact layers and takes a graph reference (caller holds the
 * scope's lock; view_close drops the reference). */
static int view_open(scope_t *sc, const float *q, size_t k, view_t *v)
{
    v->nl = 0;
    int rc = search_flat_layer(sc->delta, NULL, q, k, v->layer, &v->nl);
    if (!rc)
        rc = search_flat_layer(sc->frozen_delta, &sc->tomb, q, k, v->layer, &v->nl);
    v->g = sc->graph;
    atomic_fetch_add(&v->g->refs, 1);
    v->slack = sc->tomb.n + sc->frozen_tomb.n;
    if (v->slack > TOMB_SLACK_MAX)
        v->slack = TOMB_SLACK_MAX;
    return rc;
}

static void view_close(view_t *v)
{
    graph_unref(v->g);
}

/* Searches the view's graph with beam 'ef', keeps the candidates still live,
 * merges them with the exact layers' and writes the best 'k' to 'a'. */
static int graph_answer(scope_t *sc, const view_t *v, const float *q, size_t k, size_t ef,
                        answer_t *a)
{
    cand_t cand[3 * SC_SCOPES_K_MAX + TOMB_SLACK_MAX];
    uint64_t glabels[SC_SCOPES_K_MAX + TOMB_SLACK_MAX];
    float gsims[SC_SCOPES_K_MAX + TOMB_SLACK_MAX];
    size_t nc = v->nl, gn = 0;
    memcpy(cand, v->layer, v->nl * sizeof(cand_t));
    a->n = 0;
    int rc = sc_hnsw_search_ef(v->g->h, q, k + v->slack, ef, glabels, gsims, &gn);
    if (rc)
        return rc;
    if (gn) {
        pthread_rwlock_rdlock(&sc->lock);
        for (size_t i = 0; i < gn; i++)
            if (graph_hit_live(sc, v->g, glabels[i]))
                cand[nc++] = (cand_t){glabels[i], gsims[i]};
        pthread_rwlock_unlock(&sc->lock);
    }
    qsort(cand, nc, sizeof(cand[0]), cand_by_sim_desc);
    for (size_t i = 0; i < nc && a->n < k; i++) {
        int seen = 0;
        for (size_t j = 0; j < a->n && !seen; j++)
            seen = a->labels[j] == cand[i].label;
        if (seen)
            continue;
        a->labels[a->n] = cand[i].label;
        a->sims[a->n] = cand[i].sim;
        a->n++;
    }
    return 0;
}

static void answer_copy(const answer_t *a, size_t k, uint64_t *labels, float *sims, size_t *n)
{
    *n = a->n < k ? a->n : k;
    memcpy(labels, a->labels, *n * sizeof(uint64_t));
    memcpy(sims, a->sims, *n * sizeof(float));
}

/* ---- the decision and the scope's trust in its small beam ----------------- */

/* Whether the small beam's answer decides at once: its best is clearly
 * below the threshold, or clearly above it and clearly ahead of the second
 * best (a close second means a crowded neighbourhood, where a small beam
 * is most often wrong about which candidate is best). */
static int clear_at_once(const sc_scopes_config_t *c, const answer_t *a, double t)
{
    if (a->n == 0)
        return 0; /* everything found is dead: let the wide beam look */
    double best = a->sims[0];
    if (best < t - c->search_margin)
        return 1;
    return best >= t + c->search_margin && (a->n < 2 || best - (double)a->sims[1] >= c->search_gap);
}

/* The same cache decision: both misses, or hits on the same entry (or on
 * two entries equally similar). */
static int same_decision(const answer_t *x, const answer_t *y, double t)
{
    int hx = x->n && x->sims[0] >= t, hy = y->n && y->sims[0] >= t;
    if (hx != hy)
        return 0;
    return !hx || x->labels[0] == y->labels[0] || fabsf(x->sims[0] - y->sims[0]) < TIE_EPS;
}

/* Trusted while its disagreements are within the configured rate of its
 * verified decisions: at 0.002 one disagreement in the first 500 checks
 * already distrusts (the estimate decays, so trust returns once 1 in
 * search_verify_every lookups show the rate is down again). */
static int trusted(const sc_scopes_config_t *c, const trust_t *t, int side)
{
    uint64_t v = atomic_load_explicit(&t->checks[side], memory_order_relaxed);
    double checks = (double)(v >> 32), dis = (double)(v & 0xffffffffu);
    return dis == 0 || dis <= c->search_max_disagree * checks;
}

static uint64_t verified(const trust_t *t, int side)
{
    return atomic_load_explicit(&t->checks[side], memory_order_relaxed) >> 32;
}

static void trust_record(trust_t *t, int side, int disagreed)
{
    uint64_t old = atomic_load(&t->checks[side]), next;
    do {
        uint64_t c = (old >> 32) + 1, d = (old & 0xffffffffu) + (disagreed != 0);
        if (c >= TRUST_WINDOW) {
            c /= 2;
            d /= 2;
        }
        next = c << 32 | d;
    } while (!atomic_compare_exchange_weak(&t->checks[side], &old, next));
}

int scopes_untrusted(const sc_scopes_t *s, const scope_t *sc)
{
    return !sc->flat && (!trusted(&s->cfg, &sc->trust, 0) || !trusted(&s->cfg, &sc->trust, 1));
}

/* The decide-search on an HNSW scope whose view is open: see
 * sc_scopes_search_decide. Writes the served answer to 'out'. A decision
 * the small beam takes at once is served unless it is picked for
 * verification (every one until its side has VERIFY_WARMUP checks, then 1
 * in search_verify_every) or its side is distrusted; either way the widest
 * beam answers. With both sides distrusted the small beam only runs for
 * the lookups picked for verification. */
static int decide(sc_scopes_t *s, scope_t *sc, const view_t *v, const float *q, size_t k,
                  double threshold, answer_t *out, sc_search_info_t *info)
{
    const sc_scopes_config_t *c = &s->cfg;
    size_t wide = c->hnsw_ef_search, small = c->hnsw_ef_search_min;
    info->beam = SC_SEARCH_WIDE;
    if (threshold < -1.0 || !small || small >= wide)
        return graph_answer(sc, v, q, k, wide, out);
    trust_t *t = &sc->trust;
    unsigned nth = atomic_fetch_add_explicit(&t->lookups, 1, memory_order_relaxed);
    size_t every = c->search_verify_every;
    int picked = every && nth % every == 0;
    int trust_hit = trusted(c, t, 0), trust_miss = trusted(c, t, 1);
    info->trusted = trust_hit && trust_miss;
    int rc;
    answer_t a;
    if (!trust_hit && !trust_miss && !picked) {
        rc = graph_answer(sc, v, q, k, wide, out);
    } else if ((rc = graph_answer(sc, v, q, k < 2 ? 2 : k, small, &a)) == 0) {
        /* Two candidates at least, for the gap to the second best. */
        int side = !(a.n && a.sims[0] >= threshold);
        int verify = every && (picked || verified(t, side) < VERIFY_WARMUP);
        if (!clear_at_once(c, &a, threshold) || verify || !(side ? trust_miss : trust_hit)) {
            rc = graph_answer(sc, v, q, k, wide, out);
            if (!rc && verify && clear_at_once(c, &a, threshold)) {
                info->verified = 1;
                info->disagreed = !same_decision(&a, out, threshold);
                trust_record(t, side, info->disagreed);
                atomic_fetch_add(&s->verified, 1);
                atomic_fetch_add(&s->disagreed, (uint64_t)info->disagreed);
            }
        } else {
            *out = a;
            info->beam = SC_SEARCH_SMALL;
        }
    }
    if (!rc)
        atomic_fetch_add(info->beam == SC_SEARCH_SMALL ? &s->decided_small : &s->decided_wide, 1);
    return rc;
}

int sc_scopes_search_decide(sc_scopes_t *s, uint64_t scope, const float *q, uint32_t dim, size_t k,
                            double threshold, uint64_t *labels, float *sims, size_t *n,
                            sc_search_info_t *info)
{
    sc_search_info_t scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    info->trusted = 1;
    *n = 0;
    if (k > SC_SCOPES_K_MAX)
        k = SC_SCOPES_K_MAX;
    /* Before the load finishes, graphs are still being filled in place. */
    if (!atomic_load(&s->ready))
        return SC_ENOTFOUND;
    scope_t *sc = scopes_find(s, scope);
    if (!sc)
        return SC_ENOTFOUND;
    pthread_rwlock_rdlock(&sc->lock);
    if (sc->dim != dim) {
        pthread_rwlock_unlock(&sc->lock);
        return SC_EDIM;
    }
    if (sc->flat) {
        int rc = sc_flat_search(sc->flat, q, k, labels, sims, n);
        pthread_rwlock_unlock(&sc->lock);
        return rc;
    }
    view_t v;
    int rc = view_open(sc, q, k < 2 ? 2 : k, &v);
    pthread_rwlock_unlock(&sc->lock);
    answer_t a;
    if (!rc)
        rc = decide(s, sc, &v, q, k, threshold, &a, info);
    view_close(&v);
    if (!rc)
        answer_copy(&a, k, labels, sims, n);
    return rc;
}

int sc_scopes_search(sc_scopes_t *s, uint64_t scope, const float *q, uint32_t dim, size_t k,
                     uint64_t *labels, float *sims, size_t *n)
{
    return sc_scopes_search_decide(s, scope, q, dim, k, SC_SCOPES_NO_THRESHOLD, labels, sims, n,
                                   NULL);
}

/* ---- options ---------------------------------------------------------------- */

void sc_scopes_config_from(sc_scopes_config_t *out, const sc_config_t *c)
{
    memset(out, 0, sizeof(*out));
    out->flat_max = (size_t)c->index_flat_max;
    out->scan_max = (size_t)c->index_scan_max;
    out->hnsw_m = (size_t)c->hnsw_m;
    out->hnsw_ef_construction = (size_t)c->hnsw_ef_construction;
    out->hnsw_ef_search = (size_t)c->hnsw_ef_search;
    out->hnsw_int8 = c->hnsw_int8 != 0;
    out->compact_deleted_ratio = c->compact_deleted_ratio;
    out->delta_max = (size_t)c->index_delta_max;
    out->hnsw_ef_search_min = (size_t)c->hnsw_ef_search_min;
    out->search_margin = c->search_margin;
    out->search_gap = c->search_gap;
    out->search_verify_every = (size_t)c->search_verify_every;
    out->search_max_disagree = c->search_max_disagree;
}

void sc_scopes_set_search(sc_scopes_t *s, const sc_scopes_config_t *cfg)
{
    s->cfg.hnsw_ef_search = cfg->hnsw_ef_search;
    s->cfg.hnsw_ef_search_min = cfg->hnsw_ef_search_min;
    s->cfg.search_margin = cfg->search_margin;
    s->cfg.search_gap = cfg->search_gap;
    s->cfg.search_verify_every = cfg->search_verify_every;
    s->cfg.search_max_disagree = cfg->search_max_disagree;
}
