/* quality.c -- validation sampling, pending validations and verdict counts.
 * One mutex guards small structures touched only when a hit is sampled or a
 * verdict arrives (a few percent of hits), never on every lookup. */
#define _GNU_SOURCE
#include "sc_quality.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sc_request.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct ns_stats_s {
    char ns[129];
    uint64_t validated[2], wrong[2];
    struct ns_stats_s *next;
} ns_stats_t;

struct sc_quality_s {
    pthread_mutex_t mu;
    sc_validation_t *pending;     /* ring of max_pending slots; id[0] == 0 = free */
    size_t max_pending, n_pending, next_slot;
    uint64_t *scope_seen;         /* open addressing: scope -> semantic hits validated */
    uint32_t *scope_count;
    size_t scope_cap;
    uint32_t first_n;
    ns_stats_t *stats;
    uint64_t dropped;
};

int sc_quality_create(sc_quality_t **out, size_t max_pending, uint32_t first_n)
{
    sc_quality_t *q = calloc(1, sizeof(*q));
    if (!q)
        return SC_ENOMEM;
    q->max_pending = max_pending ? max_pending : 1;
    q->pending = calloc(q->max_pending, sizeof(sc_validation_t));
    q->scope_cap = 65536;
    q->scope_seen = calloc(q->scope_cap, sizeof(uint64_t));
    q->scope_count = calloc(q->scope_cap, sizeof(uint32_t));
    q->first_n = first_n;
    pthread_mutex_init(&q->mu, NULL);
    if (!q->pending || !q->scope_seen || !q->scope_count) {
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
    free(q->pending);
    free(q->scope_seen);
    free(q->scope_count);
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

int sc_quality_sample(sc_quality_t *q, double sample_rate, sc_validation_t *v, uint64_t now_ms,
                      uint64_t *rng)
{
    pthread_mutex_lock(&q->mu);
    int forced = v->match == SC_MATCH_SEMANTIC && scope_bump(q, v->scope) < q->first_n;
    int take = forced || ((double)(next_rand(rng) >> 11) / 9007199254740992.0 < sample_rate);
    if (!take) {
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    if (q->n_pending >= q->max_pending) {
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
        return SC_EBUSY;
    }
    /* Ids are random, not sequential, so they cannot be guessed. */
    uint64_t a = next_rand(rng) ^ XXH3_64bits(v->entry_key, 16), b = next_rand(rng) ^ now_ms;
    uint8_t raw[16];
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    sc_hex_encode(raw, 16, v->id);
    v->created_ms = now_ms;
    while (q->pending[q->next_slot].id[0])
        q->next_slot = (q->next_slot + 1) % q->max_pending;
    q->pending[q->next_slot] = *v;
    q->n_pending++;
    pthread_mutex_unlock(&q->mu);
    return 1;
}

int sc_quality_take(sc_quality_t *q, const char *id, sc_validation_t *out)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->max_pending; i++) {
        if (q->pending[i].id[0] && strcmp(q->pending[i].id, id) == 0) {
            *out = q->pending[i];
            q->pending[i].id[0] = '\0';
            q->n_pending--;
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return SC_ENOTFOUND;
}

int sc_quality_take_by_key(sc_quality_t *q, const uint8_t key[16], sc_validation_t *out)
{
    pthread_mutex_lock(&q->mu);
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < q->max_pending; i++)
        if (q->pending[i].id[0] && memcmp(q->pending[i].entry_key, key, 16) == 0 &&
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
    uint64_t n = out->validated[0] + out->validated[1], k = out->wrong[0] + out->wrong[1];
    out->rate = n ? (double)k / (double)n : 0;
    out->upper = sc_wilson_upper(k, n);
}

void sc_quality_ns(sc_quality_t *q, const char *ns, sc_quality_ns_t *out)
{
    pthread_mutex_lock(&q->mu);
    fill(stats_of(q, ns, 0), out);
    pthread_mutex_unlock(&q->mu);
}

void sc_quality_foreach(sc_quality_t *q, void (*fn)(void *ctx, const char *ns,
                                                    const sc_quality_ns_t *st), void *ctx)
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

uint64_t sc_quality_pending(sc_quality_t *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->n_pending;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- comparing answers ------------------------------------------------- */

char *sc_answer_text(const char *json, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY, &e);
    if (!v)
        return NULL;
    json_t *t = v;
    if (json_is_object(t) && json_is_array(json_object_get(t, "choices")))
        t = json_object_get(json_object_get(json_array_get(json_object_get(t, "choices"), 0), "message"),
                            "content");
    else if (json_is_object(t) && json_object_get(t, "content"))
        t = json_object_get(t, "content");
    char *out = json_is_string(t) ? strndup(json_string_value(t), json_string_length(t)) : NULL;
    json_decref(v);
    return out;
}

/* Lower-case letters and digits only, single spaces between words. */
static char *fold(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    int space = 0;
    for (size_t i = 0; out && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c >= 0x80) {
            if (space && o)
                out[o++] = ' ';
            space = 0;
            out[o++] = (char)tolower(c);
        } else {
            space = 1;
        }
    }
    if (out)
        out[o] = '\0';
    return out;
}

int sc_answers_agree(const char *a, size_t alen, const char *b, size_t blen, const char *method)
{
    if (strcmp(method, "exact") == 0)
        return alen == blen && memcmp(a, b, alen) == 0;
    char *ta = sc_answer_text(a, alen), *tb = sc_answer_text(b, blen);
    int agree;
    if (ta && tb) {
        char *fa = fold(ta), *fb = fold(tb);
        agree = fa && fb && strcmp(fa, fb) == 0;
        free(fa);
        free(fb);
    } else {
        /* Structured answers (JSON, tool calls): equal canonical structure. */
        json_error_t e;
        json_t *ja = json_loadb(a, alen, JSON_DECODE_ANY, &e), *jb = json_loadb(b, blen, JSON_DECODE_ANY, &e);
        sc_buf_t ca = {0}, cb = {0};
        agree = ja && jb && !sc_canonical_json(ja, &ca) && !sc_canonical_json(jb, &cb) &&
                ca.len == cb.len && memcmp(ca.data, cb.data, ca.len) == 0;
        sc_buf_free(&ca);
        sc_buf_free(&cb);
        json_decref(ja);
        json_decref(jb);
    }
    free(ta);
    free(tb);
    return agree;
}
