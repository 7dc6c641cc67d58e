/* quality.c -- validation sampling, pending validations, verdict counts,
 * the error-budget thresholds learned from them, and how often two
 * comparison methods agree. One
 * mutex guards small structures touched when a hit is sampled, a verdict
 * arrives, or a lookup in a max_error_rate namespace asks for its threshold
 * (a cached number, only recomputed after new observations). What the loop
 * keeps in the store (verdict records, negatives) is quality_records.c;
 * comparing answers is quality_compare.c. */
#define _GNU_SOURCE
#include "sc_quality.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define SIM_BINS 1000 /* namespace observations: similarity to 0.001 */

typedef struct ns_stats_s {
    char ns[129];
    uint64_t validated[SC_MATCH_KINDS], wrong[SC_MATCH_KINDS];
    uint32_t obs_n[SIM_BINS], obs_wrong[SIM_BINS]; /* semantic observations by similarity */
    uint64_t obs_total;
    uint64_t version;        /* bumped by each observation */
    uint64_t cached_version; /* the threshold below was computed at */
    double cached_eps, cached_t;
    int cached_ok;
    /* pairs judged by methods i < j: [i][j][verdict of i][verdict of j] */
    uint64_t agree[SC_COMPARE_METHODS][SC_COMPARE_METHODS][2][2];
    struct ns_stats_s *next;
} ns_stats_t;

/* A scope's own observations: a ring of the most recent ones. */
typedef struct {
    uint64_t scope; /* 0 = free slot */
    float *sim;
    uint8_t *wrong;
    uint32_t n, cap, head; /* head: next slot to overwrite once full */
    uint64_t version, cached_version;
    double cached_eps, cached_t;
    int cached_ok;
} scope_obs_t;

const char *const sc_match_names[SC_MATCH_KINDS] = {"exact", "semantic", "explore", "observed"};
const char *const sc_compare_method_names[SC_COMPARE_METHODS] = {"exact", "normalized", "semantic",
                                                                 "judge"};

struct sc_quality_s {
    pthread_mutex_t mu;
    sc_validation_t *pending; /* ring of max_pending slots; id[0] == 0 = free */
    size_t max_pending, n_pending, next_slot;
    _Atomic size_t n_explore; /* pending explorations and observations (read without the lock) */
    uint64_t *scope_seen;     /* open addressing: scope -> semantic hits validated */
    uint32_t *scope_count;
    size_t scope_cap;
    uint32_t first_n;
    ns_stats_t *stats;
    uint64_t dropped, expired;
    uint64_t pending_timeout_ms;
    uint64_t next_expiry_scan_ms; /* a full table is scanned for stale entries at most this often */
    double alpha;                 /* 1 - budget confidence */
    uint32_t min_scope_obs;
    scope_obs_t *scopes; /* open addressing, budget_max_scopes * 2 slots */
    size_t scopes_cap, scopes_used, scopes_max;
    sc_spend_t *spend; /* paid validations against hits served (quality_budget.c) */
};

/* Never served: an exploration, or a near miss the next store settles. */
static int unserved(sc_match_t m)
{
    return m == SC_MATCH_EXPLORE || m == SC_MATCH_OBSERVED;
}

sc_spend_t *sc_quality_spend(sc_quality_t *q)
{
    return q->spend;
}

int sc_quality_create(sc_quality_t **out, const sc_quality_opts_t *o)
{
    sc_quality_t *q = calloc(1, sizeof(*q));
    if (!q)
        return SC_ENOMEM;
    size_t max_pending = o->max_pending;
    uint32_t first_n = o->first_n;
    q->alpha = 1.0 - (o->budget_confidence > 0 ? o->budget_confidence : 0.95);
    q->min_scope_obs = o->budget_min_scope_obs ? o->budget_min_scope_obs : 1;
    q->pending_timeout_ms = o->pending_timeout_ms;
    q->scopes_max = o->budget_max_scopes;
    q->scopes_cap = 16;
    while (q->scopes_cap < 2 * q->scopes_max)
        q->scopes_cap *= 2;
    if (q->scopes_max && !(q->scopes = calloc(q->scopes_cap, sizeof(scope_obs_t)))) {
        free(q);
        return SC_ENOMEM;
    }
    q->max_pending = max_pending ? max_pending : 1;
    q->pending = calloc(q->max_pending, sizeof(sc_validation_t));
    q->scope_cap = 65536;
    q->scope_seen = calloc(q->scope_cap, sizeof(uint64_t));
    q->scope_count = calloc(q->scope_cap, sizeof(uint32_t));
    q->first_n = first_n;
    pthread_mutex_init(&q->mu, NULL);
    if (!q->pending || !q->scope_seen || !q->scope_count || sc_spend_create(&q->spend)) {
        sc_quality_destroy(q);
        return SC_ENOMEM;
    }
    *out = q;
    return 0;
}

void sc_quality_destroy(sc_quality_t *q)
{
    if (!q)
        return;
    for (ns_stats_t *s = q->stats, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    for (size_t i = 0; q->scopes && i < q->scopes_cap; i++) {
        free(q->scopes[i].sim);
        free(q->scopes[i].wrong);
    }
    free(q->scopes);
    free(q->pending);
    free(q->scope_seen);
    free(q->scope_count);
    sc_spend_destroy(q->spend);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Semantic hits already validated in 'scope' (then counts this one). The
 * table forgets scopes when it fills up, which only means extra validation. */
static uint32_t scope_bump(sc_quality_t *q, uint64_t scope)
{
    uint64_t k = scope ? scope : 1;
    size_t mask = q->scope_cap - 1;
    for (size_t i = (size_t)k & mask, probes = 0; probes < 32; i = (i + 1) & mask, probes++) {
        if (q->scope_seen[i] == k)
            return q->scope_count[i]++;
        if (!q->scope_seen[i]) {
            q->scope_seen[i] = k;
            q->scope_count[i] = 1;
            return 0;
        }
    }
    return 0;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int sc_quality_draw(uint64_t *rng, double rate)
{
    return (double)(next_rand(rng) >> 11) / 9007199254740992.0 < rate;
}

int sc_quality_sample(sc_quality_t *q, double sample_rate, sc_validation_t *v, uint64_t now_ms,
                      uint64_t *rng)
{
    /* The draw needs no lock, and only semantic hits can be forced (the
     * first hits of a scope), so most exact hits leave here without
     * touching the shared table. */
    int drawn = sc_quality_draw(rng, sample_rate);
    if (!drawn && v->match != SC_MATCH_SEMANTIC)
        return 0;
    pthread_mutex_lock(&q->mu);
    int forced = v->match == SC_MATCH_SEMANTIC && scope_bump(q, v->scope) < q->first_n;
    if (!forced && !drawn) {
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    if (q->n_pending >= q->max_pending && q->pending_timeout_ms &&
        now_ms >= q->next_expiry_scan_ms) {
        /* Full: forget what nobody answered in time (callers that never
         * report back must not disable sampling for good). The scan walks
         * the whole table, so it runs at most every quarter timeout: with
         * a caller that never answers, every sampled hit scanned it (6 % of
         * the server's CPU at 50k exact hits/s). */
        uint64_t gap = q->pending_timeout_ms / 4 < 1000 ? q->pending_timeout_ms / 4 : 1000;
        q->next_expiry_scan_ms = now_ms + gap;
        for (size_t i = 0; i < q->max_pending; i++)
            if (q->pending[i].id[0] && now_ms > q->pending[i].created_ms &&
                now_ms - q->pending[i].created_ms > q->pending_timeout_ms) {
                q->pending[i].id[0] = '\0';
                q->n_pending--;
                q->n_explore -= unserved(q->pending[i].match);
                q->expired++;
            }
    }
    if (v->match == SC_MATCH_OBSERVED && q->n_pending >= q->max_pending / 2) {
        pthread_mutex_unlock(&q->mu);
        return 0; /* free observations never crowd out sampled hits */
    }
    if (q->n_pending >= q->max_pending) {
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
        return SC_EBUSY;
    }
    /* Ids are random, not sequential, so they cannot be guessed. */
    uint64_t a = next_rand(rng) ^ XXH3_64bits(v->entry_key, SC_KEY_BYTES);
    uint64_t b = next_rand(rng) ^ now_ms;
    uint8_t raw[16];
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    sc_hex_encode(raw, 16, v->id);
    v->created_ms = now_ms;
    while (q->pending[q->next_slot].id[0])
        q->next_slot = (q->next_slot + 1) % q->max_pending;
    q->pending[q->next_slot] = *v;
    q->n_pending++;
    q->n_explore += unserved(v->match);
    pthread_mutex_unlock(&q->mu);
    return 1;
}

/* Removes and returns the first pending validation 'match' accepts. */
static int take_where(sc_quality_t *q, int (*match)(const sc_validation_t *v, const void *arg),
                      const void *arg, sc_validation_t *out)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->max_pending; i++) {
        if (q->pending[i].id[0] && match(&q->pending[i], arg)) {
            *out = q->pending[i];
            q->pending[i].id[0] = '\0';
            q->n_pending--;
            q->n_explore -= unserved(out->match);
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return SC_ENOTFOUND;
}

static int id_is(const sc_validation_t *v, const void *id)
{
    return strcmp(v->id, id) == 0;
}

static int explores(const sc_validation_t *v, const void *request_key)
{
    return unserved(v->match) && memcmp(v->request_key, request_key, SC_KEY_BYTES) == 0;
}

int sc_quality_take(sc_quality_t *q, const char *id, sc_validation_t *out)
{
    return take_where(q, id_is, id, out);
}

void sc_quality_abandon(sc_quality_t *q, const char *id)
{
    sc_validation_t v;
    if (sc_quality_take(q, id, &v) == 0) {
        pthread_mutex_lock(&q->mu);
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
    }
}

int sc_quality_take_explore(sc_quality_t *q, const uint8_t request_key[SC_KEY_BYTES],
                            sc_validation_t *out)
{
    /* Every store asks: without explorations pending, skip the scan. */
    if (!atomic_load_explicit(&q->n_explore, memory_order_relaxed))
        return SC_ENOTFOUND;
    return take_where(q, explores, request_key, out);
}

int sc_quality_take_by_key(sc_quality_t *q, const uint8_t key[SC_KEY_BYTES], sc_validation_t *out)
{
    pthread_mutex_lock(&q->mu);
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < q->max_pending; i++)
        if (q->pending[i].id[0] && !unserved(q->pending[i].match) &&
            memcmp(q->pending[i].entry_key, key, SC_KEY_BYTES) == 0 &&
            (best == SIZE_MAX || q->pending[i].created_ms >= q->pending[best].created_ms))
            best = i;
    if (best != SIZE_MAX) {
        *out = q->pending[best];
        q->pending[best].id[0] = '\0';
        q->n_pending--;
    }
    pthread_mutex_unlock(&q->mu);
    return best == SIZE_MAX ? SC_ENOTFOUND : 0;
}

static ns_stats_t *stats_of(sc_quality_t *q, const char *ns, int create)
{
    for (ns_stats_t *s = q->stats; s; s = s->next)
        if (strcmp(s->ns, ns) == 0)
            return s;
    if (!create)
        return NULL;
    ns_stats_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->ns, sizeof(s->ns), "%s", ns);
    s->next = q->stats;
    q->stats = s;
    return s;
}

void sc_quality_record(sc_quality_t *q, const char *ns, sc_match_t match, sc_verdict_t verdict)
{
    pthread_mutex_lock(&q->mu);
    ns_stats_t *s = stats_of(q, ns, 1);
    if (s) {
        s->validated[match]++;
        s->wrong[match] += verdict == SC_VERDICT_WRONG;
    }
    pthread_mutex_unlock(&q->mu);
}

double sc_wilson_upper(uint64_t k, uint64_t n)
{
    if (!n)
        return 1.0; /* nothing measured: promise nothing */
    const double z = 1.959963984540054;
    double p = (double)k / (double)n, nn = (double)n;
    double centre = p + z * z / (2 * nn);
    double margin = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn));
    double up = (centre + margin) / (1 + z * z / nn);
    return up > 1 ? 1 : up;
}

static void fill(const ns_stats_t *s, sc_quality_ns_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s) {
        memcpy(out->validated, s->validated, sizeof(out->validated));
        memcpy(out->wrong, s->wrong, sizeof(out->wrong));
    }
    /* Explorations and observations were never served: not part of the rate. */
    uint64_t n = out->validated[0] + out->validated[1], k = out->wrong[0] + out->wrong[1];
    out->rate = n ? (double)k / (double)n : 0;
    out->upper = sc_wilson_upper(k, n);
    n = out->validated[SC_MATCH_SEMANTIC];
    k = out->wrong[SC_MATCH_SEMANTIC];
    out->semantic_rate = n ? (double)k / (double)n : 0;
    out->semantic_upper = sc_wilson_upper(k, n);
}

/* ---- error budget -------------------------------------------------------- */

int64_t sc_budget_max_wrong(uint64_t n, double eps, double alpha)
{
    if (!n || eps <= 0)
        return -1;
    if (eps >= 1)
        return (int64_t)n;
    /* P(Bin(n, eps) <= k), summed term by term in log space so large n
     * cannot underflow (1 - eps)^n to zero before the ratio brings it back. */
    double log_pmf = (double)n * log1p(-eps), cdf = 0, ratio = log(eps) - log1p(-eps);
    int64_t k = -1;
    for (uint64_t i = 0; i <= n; i++) {
        cdf += exp(log_pmf);
        if (cdf > alpha)
            break;
        k = (int64_t)i;
        log_pmf += log((double)(n - i)) - log((double)(i + 1)) + ratio;
    }
    return k;
}

/* Candidate thresholds: a fixed grid of CUTS cuts over [0, 1), tested from
 * the highest down at the full level alpha, stopping at the first that fails
 * (a fixed-sequence test: since a cut is only tested after every higher one
 * passed, the chance of accepting any cut whose true error rate exceeds the
 * budget stays at most alpha, with no multiple-testing penalty). The order
 * is fixed before the verdicts are seen; which cuts are tested depends only
 * on how many observations lie above them (the similarities, not the
 * verdicts): a cut is skipped, not failed, until it has START_FACTOR times
 * the fewest observations that could pass at all. Without that, one wrong
 * answer among the top few dozen observations would stop the scan for good. */
#define CUTS 200
#define START_FACTOR 4

typedef struct {
    double eps, alpha;
    uint64_t start_n; /* observations a cut needs to be tested */
    int ok, stopped;
    double t;
} scan_t;

static void scan_init(scan_t *sc, double eps, double alpha)
{
    memset(sc, 0, sizeof(*sc));
    sc->eps = eps;
    sc->alpha = alpha;
    /* With no wrong answer, n must reach log(alpha) / log(1 - eps). */
    sc->start_n = (uint64_t)(START_FACTOR * ceil(log(alpha) / log1p(-eps)));
}

/* Tests cut 't' with 'n' observations at or above it, 'k' of them wrong;
 * called from the highest cut down. */
static void scan_cut(scan_t *sc, uint64_t n, uint64_t k, double t)
{
    if (sc->stopped || n < sc->start_n)
        return;
    int64_t allowed = sc_budget_max_wrong(n, sc->eps, sc->alpha);
    if (allowed >= 0 && (int64_t)k <= allowed) {
        sc->ok = 1;
        sc->t = t;
    } else {
        sc->stopped = 1;
    }
}

static scope_obs_t *scope_obs(sc_quality_t *q, uint64_t scope, int create)
{
    if (!q->scopes)
        return NULL;
    uint64_t k = scope ? scope : 1;
    size_t mask = q->scopes_cap - 1;
    for (size_t i = (size_t)(k * 0x9E3779B97F4A7C15ull) & mask, probes = 0; probes < q->scopes_cap;
         i = (i + 1) & mask, probes++) {
        if (q->scopes[i].scope == k)
            return &q->scopes[i];
        if (!q->scopes[i].scope) {
            if (!create || q->scopes_used >= q->scopes_max)
                return NULL; /* untracked: the namespace's threshold serves it */
            q->scopes[i].scope = k;
            q->scopes_used++;
            return &q->scopes[i];
        }
    }
    return NULL;
}

void sc_quality_observe(sc_quality_t *q, const char *ns, uint64_t scope, double similarity,
                        sc_verdict_t verdict)
{
    int wrong = verdict == SC_VERDICT_WRONG;
    int bin = similarity <= 0 ? 0 : similarity >= 1 ? SIM_BINS - 1 : (int)(similarity * SIM_BINS);
    pthread_mutex_lock(&q->mu);
    ns_stats_t *s = stats_of(q, ns, 1);
    if (s) {
        s->obs_n[bin]++;
        s->obs_wrong[bin] += (uint32_t)wrong;
        s->obs_total++;
        s->version++;
    }
    scope_obs_t *so = scope_obs(q, scope, 1);
    if (so) {
        /* Keep up to 4x what a scope needs; the oldest go first. */
        uint32_t want = q->min_scope_obs * 4 < 64 ? 64 : q->min_scope_obs * 4;
        if (!so->sim) {
            so->sim = malloc(want * sizeof(float));
            so->wrong = malloc(want);
            so->cap = so->sim && so->wrong ? want : 0;
        }
        if (so->cap) {
            uint32_t at = so->n < so->cap ? so->n++ : so->head;
            if (so->n == so->cap && at == so->head)
                so->head = (so->head + 1) % so->cap;
            so->sim[at] = (float)similarity;
            so->wrong[at] = (uint8_t)wrong;
            so->version++;
        }
    }
    pthread_mutex_unlock(&q->mu);
}

typedef struct {
    float sim;
    uint8_t wrong;
} obs_t;

static int by_sim_desc(const void *a, const void *b)
{
    float x = ((const obs_t *)a)->sim, y = ((const obs_t *)b)->sim;
    return (x < y) - (x > y);
}

static void scope_threshold(sc_quality_t *q, scope_obs_t *so, double eps)
{
    obs_t *o = malloc(so->n * sizeof(obs_t));
    so->cached_ok = 0;
    if (o) {
        for (uint32_t i = 0; i < so->n; i++)
            o[i] = (obs_t){so->sim[i], so->wrong[i]};
        qsort(o, so->n, sizeof(obs_t), by_sim_desc);
        scan_t sc;
        scan_init(&sc, eps, q->alpha);
        uint32_t i = 0;
        uint64_t k = 0;
        for (int c = CUTS - 1; c >= 0; c--) {
            double t = (double)c / CUTS;
            while (i < so->n && o[i].sim >= (float)t)
                k += o[i++].wrong;
            scan_cut(&sc, i, k, t);
        }
        so->cached_ok = sc.ok;
        so->cached_t = sc.t;
        free(o);
    }
    so->cached_version = so->version;
    so->cached_eps = eps;
}

static void ns_threshold(sc_quality_t *q, ns_stats_t *s, double eps)
{
    scan_t sc;
    scan_init(&sc, eps, q->alpha);
    uint64_t n = 0, k = 0;
    int b = SIM_BINS - 1;
    for (int c = CUTS - 1; c >= 0; c--) {
        for (; b >= c * (SIM_BINS / CUTS); b--) { /* the bins at or above the cut */
            n += s->obs_n[b];
            k += s->obs_wrong[b];
        }
        scan_cut(&sc, n, k, (double)c / CUTS);
    }
    s->cached_ok = sc.ok;
    s->cached_t = sc.t;
    s->cached_version = s->version;
    s->cached_eps = eps;
}

int sc_quality_budget_threshold(sc_quality_t *q, const char *ns, uint64_t scope,
                                double max_error_rate, double *t, int *from_scope, uint64_t *n_obs)
{
    int ok = 0;
    pthread_mutex_lock(&q->mu);
    scope_obs_t *so = scope ? scope_obs(q, scope, 0) : NULL; /* 0: the namespace's */
    if (so && so->n >= q->min_scope_obs) {
        if (so->cached_version != so->version || so->cached_eps != max_error_rate)
            scope_threshold(q, so, max_error_rate);
        ok = so->cached_ok;
        *t = so->cached_t;
        *from_scope = 1;
        if (n_obs)
            *n_obs = so->n;
    } else {
        ns_stats_t *s = stats_of(q, ns, 0);
        *from_scope = 0;
        if (n_obs)
            *n_obs = s ? s->obs_total : 0;
        if (s) {
            if (s->cached_version != s->version || s->cached_eps != max_error_rate || !s->version)
                ns_threshold(q, s, max_error_rate);
            ok = s->cached_ok;
            *t = s->cached_t;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void sc_quality_ns(sc_quality_t *q, const char *ns, sc_quality_ns_t *out)
{
    pthread_mutex_lock(&q->mu);
    fill(stats_of(q, ns, 0), out);
    pthread_mutex_unlock(&q->mu);
}

void sc_quality_foreach(sc_quality_t *q,
                        void (*fn)(void *ctx, const char *ns, const sc_quality_ns_t *st), void *ctx)
{
    pthread_mutex_lock(&q->mu);
    for (ns_stats_t *s = q->stats; s; s = s->next) {
        sc_quality_ns_t st;
        fill(s, &st);
        fn(ctx, s->ns, &st);
    }
    pthread_mutex_unlock(&q->mu);
}

uint64_t sc_quality_dropped(sc_quality_t *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return d;
}

uint64_t sc_quality_expired(sc_quality_t *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t e = q->expired;
    pthread_mutex_unlock(&q->mu);
    return e;
}

uint64_t sc_quality_pending(sc_quality_t *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->n_pending;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- agreement between comparison methods ----------------------------- */

int sc_compare_method(const char *name)
{
    for (int i = 0; name && i < SC_COMPARE_METHODS; i++)
        if (strcmp(name, sc_compare_method_names[i]) == 0)
            return i;
    return -1;
}

int sc_quality_record_agreement(sc_quality_t *q, const char *ns, const char *ma, sc_verdict_t va,
                                const char *mb, sc_verdict_t vb)
{
    int a = sc_compare_method(ma), b = sc_compare_method(mb);
    if (a < 0 || b < 0 || a == b || (va != SC_VERDICT_CORRECT && va != SC_VERDICT_WRONG) ||
        (vb != SC_VERDICT_CORRECT && vb != SC_VERDICT_WRONG))
        return SC_EINVAL;
    if (a > b) { /* kept once per unordered pair, in the names' order */
        int m = a;
        a = b;
        b = m;
        sc_verdict_t v = va;
        va = vb;
        vb = v;
    }
    pthread_mutex_lock(&q->mu);
    ns_stats_t *s = stats_of(q, ns, 1);
    if (s)
        s->agree[a][b][va][vb]++;
    pthread_mutex_unlock(&q->mu);
    return s ? 0 : SC_ENOMEM;
}

static void agreement_of(const ns_stats_t *s, int a, int b, sc_agreement_t *out)
{
    memset(out, 0, sizeof(*out));
    out->a = sc_compare_method_names[a];
    out->b = sc_compare_method_names[b];
    if (!s)
        return;
    const uint64_t(*c)[2] = s->agree[a][b];
    out->both_correct = c[SC_VERDICT_CORRECT][SC_VERDICT_CORRECT];
    out->both_wrong = c[SC_VERDICT_WRONG][SC_VERDICT_WRONG];
    out->a_wrong_only = c[SC_VERDICT_WRONG][SC_VERDICT_CORRECT];
    out->b_wrong_only = c[SC_VERDICT_CORRECT][SC_VERDICT_WRONG];
    out->pairs = out->both_correct + out->both_wrong + out->a_wrong_only + out->b_wrong_only;
    out->agreement =
        out->pairs ? (double)(out->both_correct + out->both_wrong) / (double)out->pairs : 0;
}

int sc_quality_agreement(sc_quality_t *q, const char *ns, const char *ma, const char *mb,
                         sc_agreement_t *out)
{
    int a = sc_compare_method(ma), b = sc_compare_method(mb);
    if (a < 0 || b < 0 || a == b)
        return SC_EINVAL;
    pthread_mutex_lock(&q->mu);
    agreement_of(stats_of(q, ns, 0), a < b ? a : b, a < b ? b : a, out);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void sc_quality_agreement_foreach(sc_quality_t *q, const char *ns,
                                  void (*fn)(void *ctx, const sc_agreement_t *ag), void *ctx)
{
    pthread_mutex_lock(&q->mu);
    const ns_stats_t *s = stats_of(q, ns, 0);
    for (int a = 0; s && a < SC_COMPARE_METHODS; a++)
        for (int b = a + 1; b < SC_COMPARE_METHODS; b++) {
            sc_agreement_t ag;
            agreement_of(s, a, b, &ag);
            if (ag.pairs)
                fn(ctx, &ag);
        }
    pthread_mutex_unlock(&q->mu);
}
