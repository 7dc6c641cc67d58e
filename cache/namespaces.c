/* namespaces.c -- the in-memory namespace settings table. A chained hash map
 * under a read-write lock: lookups take the read lock for one copy of a small
 * struct; configuration changes (rare) take the write lock. */
#define _GNU_SOURCE
#include "sc_namespaces.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct ns_node_s {
    char *name;
    size_t len;
    sc_ns_config_t cfg;
    struct ns_node_s *next;
} ns_node_t;

#define N_BUCKETS 1024

struct sc_namespaces_s {
    const sc_config_t *cfg;
    pthread_rwlock_t lock;
    ns_node_t *buckets[N_BUCKETS];
};

void sc_ns_config_defaults(const sc_config_t *cfg, sc_ns_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->semantic = cfg->semantic != 0;
    c->threshold = cfg->threshold;
    c->allow_lower_threshold = cfg->allow_lower_threshold != 0;
    c->ttl_s = -1;
    c->sample_rate = cfg->sample_rate;
    snprintf(c->compare, sizeof(c->compare), "normalized");
    c->answer_similarity = cfg->answer_similarity;
    c->invalidate_on_wrong = 1;
    c->delivery = SC_DELIVERY_CALLER;
    c->explore_rate = cfg->explore_rate;
    c->explore_floor = cfg->explore_floor;
    c->validation_budget = cfg->validation_budget;
    c->guards = 1;
}

const char *const sc_delivery_names[3] = {"caller", "upstream", "webhook"};

/* A number in [lo, hi] for setting 'k', or an error sentence. */
static int number_in(const json_t *v, const char *k, double lo, double hi, double *out, char *err,
                     size_t err_cap)
{
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        snprintf(err, err_cap, "\"%s\" must be a number in [%g, %g]", k, lo, hi);
        return SC_EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

int sc_namespaces_create(sc_namespaces_t **out, const sc_config_t *cfg)
{
    sc_namespaces_t *t = calloc(1, sizeof(*t));
    if (!t)
        return SC_ENOMEM;
    t->cfg = cfg;
    pthread_rwlock_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void sc_namespaces_destroy(sc_namespaces_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        ns_node_t *n = t->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            free(n->name);
            free(n);
        }
    }
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static ns_node_t *find(sc_namespaces_t *t, const char *name, size_t len)
{
    for (ns_node_t *n = t->buckets[XXH3_64bits(name, len) % N_BUCKETS]; n; n = n->next)
        if (n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    return NULL;
}

void sc_namespaces_get(sc_namespaces_t *t, const char *name, size_t len, sc_ns_config_t *out)
{
    pthread_rwlock_rdlock(&t->lock);
    ns_node_t *n = find(t, name, len);
    if (n)
        *out = n->cfg;
    else
        sc_ns_config_defaults(t->cfg, out);
    pthread_rwlock_unlock(&t->lock);
}

/* Caller holds the write lock. */
static ns_node_t *upsert(sc_namespaces_t *t, const char *name, size_t len)
{
    ns_node_t *n = find(t, name, len);
    if (n)
        return n;
    n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strndup(name, len))) {
        free(n);
        return NULL;
    }
    n->len = len;
    sc_ns_config_defaults(t->cfg, &n->cfg);
    size_t b = XXH3_64bits(name, len) % N_BUCKETS;
    n->next = t->buckets[b];
    t->buckets[b] = n;
    return n;
}

int sc_namespaces_set(sc_namespaces_t *t, const char *name, size_t len, const sc_ns_config_t *c)
{
    pthread_rwlock_wrlock(&t->lock);
    ns_node_t *n = upsert(t, name, len);
    if (n)
        n->cfg = *c;
    pthread_rwlock_unlock(&t->lock);
    return n ? 0 : SC_ENOMEM;
}

void sc_namespaces_remove(sc_namespaces_t *t, const char *name, size_t len)
{
    pthread_rwlock_wrlock(&t->lock);
    ns_node_t **pp = &t->buckets[XXH3_64bits(name, len) % N_BUCKETS];
    for (; *pp; pp = &(*pp)->next) {
        ns_node_t *n = *pp;
        if (n->len == len && memcmp(n->name, name, len) == 0) {
            *pp = n->next;
            free(n->name);
            free(n);
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
}

int sc_namespaces_check_vector(sc_namespaces_t *t, const char *name, size_t len, uint32_t dim,
                               const char *embedder, int record, int *recorded, sc_ns_config_t *out)
{
    int rc = 0;
    *recorded = 0;
    pthread_rwlock_wrlock(&t->lock);
    ns_node_t *n = record ? upsert(t, name, len) : find(t, name, len);
    sc_ns_config_t c;
    if (n)
        c = n->cfg;
    else
        sc_ns_config_defaults(t->cfg, &c);
    if (c.dimensions && c.dimensions != dim)
        rc = SC_EDIM;
    else if (embedder && *embedder && c.embedder[0] && strcmp(c.embedder, embedder) != 0)
        rc = SC_ECONFLICT;
    else if (record && n) {
        if (!c.dimensions) {
            c.dimensions = dim;
            *recorded = 1;
        }
        if (embedder && *embedder && !c.embedder[0]) {
            snprintf(c.embedder, sizeof(c.embedder), "%s", embedder);
            *recorded = 1;
        }
        if (*recorded) {
            c.configured = 1;
            n->cfg = c;
        }
    }
    *out = c;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* Long for a function (about 130 lines) on purpose: it is the table of the
 * settings a namespace accepts, one short block per setting with its bounds
 * and message, in the order the README lists them; split up, that table
 * would be scattered over helpers that each check one field. */
int sc_ns_config_apply_json(sc_ns_config_t *c, const json_t *j, char *err, size_t err_cap)
{
    if (!json_is_object(j)) {
        snprintf(err, err_cap, "namespace settings must be a JSON object");
        return SC_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        /* null means "not set" for the fields that have such a state. */
        if (json_is_null(v) && strcmp(k, "dimensions") == 0) {
            c->dimensions = 0;
        } else if (json_is_null(v) && strcmp(k, "embedder") == 0) {
            c->embedder[0] = '\0';
        } else if (json_is_null(v) && strcmp(k, "ttl_s") == 0) {
            c->ttl_s = -1;
        } else if (strcmp(k, "semantic") == 0 || strcmp(k, "allow_lower_threshold") == 0 ||
                   strcmp(k, "invalidate_on_wrong") == 0 || strcmp(k, "guards") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, err_cap, "\"%s\" must be true or false", k);
                return SC_EINVAL;
            }
            *(k[0] == 's'   ? &c->semantic
              : k[0] == 'a' ? &c->allow_lower_threshold
              : k[0] == 'g' ? &c->guards
                            : &c->invalidate_on_wrong) = json_is_true(v);
        } else if (strcmp(k, "sample_rate") == 0) {
            if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1)) {
                snprintf(err, err_cap, "\"sample_rate\" must be a number in [0, 1]");
                return SC_EINVAL;
            }
            c->sample_rate = json_number_value(v);
        } else if (strcmp(k, "model") == 0) {
            /* Whether the server has it is the caller's check. */
            if (!(json_is_null(v) || (json_is_string(v) && json_string_length(v) > 0 &&
                                      json_string_length(v) < sizeof(c->model)))) {
                snprintf(err, err_cap,
                         "\"model\" must be the name of a server model (--model is "
                         "\"default\", --models names more) or null");
                return SC_EINVAL;
            }
            snprintf(c->model, sizeof(c->model), "%s",
                     json_is_null(v) || strcmp(json_string_value(v), "default") == 0
                         ? ""
                         : json_string_value(v));
        } else if (strcmp(k, "compare") == 0) {
            if (!json_is_string(v) || (strcmp(json_string_value(v), "exact") != 0 &&
                                       strcmp(json_string_value(v), "normalized") != 0 &&
                                       strcmp(json_string_value(v), "semantic") != 0 &&
                                       strcmp(json_string_value(v), "judge") != 0)) {
                snprintf(err, err_cap,
                         "\"compare\" must be \"exact\", \"normalized\", \"semantic\" or "
                         "\"judge\"");
                return SC_EINVAL;
            }
            snprintf(c->compare, sizeof(c->compare), "%s", json_string_value(v));
        } else if (strcmp(k, "delivery") == 0) {
            int d = -1;
            for (int i = 0; i < 3 && json_is_string(v); i++)
                if (strcmp(json_string_value(v), sc_delivery_names[i]) == 0)
                    d = i;
            if (d < 0) {
                snprintf(err, err_cap,
                         "\"delivery\" must be \"caller\", \"upstream\" or \"webhook\"");
                return SC_EINVAL;
            }
            c->delivery = d;
        } else if (strcmp(k, "answer_similarity") == 0) {
            if (number_in(v, k, -1, 1, &c->answer_similarity, err, err_cap))
                return SC_EINVAL;
        } else if (strcmp(k, "max_error_rate") == 0) {
            if (json_is_null(v))
                c->max_error_rate = 0;
            else if (number_in(v, k, 0.0001, 0.5, &c->max_error_rate, err, err_cap))
                return SC_EINVAL;
        } else if (strcmp(k, "explore_rate") == 0) {
            if (number_in(v, k, 0, 1, &c->explore_rate, err, err_cap))
                return SC_EINVAL;
        } else if (strcmp(k, "explore_floor") == 0) {
            if (number_in(v, k, -1, 1, &c->explore_floor, err, err_cap))
                return SC_EINVAL;
        } else if (strcmp(k, "validation_budget") == 0) {
            if (number_in(v, k, 0, 1, &c->validation_budget, err, err_cap))
                return SC_EINVAL;
        } else if (strcmp(k, "max_entries") == 0 || strcmp(k, "max_bytes") == 0) {
            uint64_t *f = k[4] == 'e' ? &c->max_entries : &c->max_bytes;
            if (json_is_null(v)) {
                *f = 0;
            } else if (!json_is_integer(v) || json_integer_value(v) < 1) {
                snprintf(err, err_cap, "\"%s\" must be a positive integer, or null for no cap", k);
                return SC_EINVAL;
            } else {
                *f = (uint64_t)json_integer_value(v);
            }
        } else if (strcmp(k, "threshold") == 0 && json_is_null(v)) {
            c->threshold_explicit = 0; /* with a budget: the learned threshold alone */
        } else if (strcmp(k, "threshold") == 0) {
            if (!json_is_number(v) || !(json_number_value(v) >= -1 && json_number_value(v) <= 1)) {
                snprintf(err, err_cap, "\"threshold\" must be a cosine similarity in [-1, 1]");
                return SC_EINVAL;
            }
            c->threshold = json_number_value(v);
            c->threshold_explicit = 1;
        } else if (strcmp(k, "dimensions") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65536) {
                snprintf(err, err_cap, "\"dimensions\" must be an integer in [1, 65536]");
                return SC_EINVAL;
            }
            c->dimensions = (uint32_t)json_integer_value(v);
        } else if (strcmp(k, "embedder") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                json_string_length(v) >= SC_MAX_EMBEDDER) {
                snprintf(err, err_cap, "\"embedder\" must be a string of 1 to %d bytes",
                         SC_MAX_EMBEDDER - 1);
                return SC_EINVAL;
            }
            snprintf(c->embedder, sizeof(c->embedder), "%s", json_string_value(v));
        } else if (strcmp(k, "ttl_s") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(err, err_cap,
                         "\"ttl_s\" must be a non-negative integer (0 = never expires)");
                return SC_EINVAL;
            }
            c->ttl_s = json_integer_value(v);
        } else {
            snprintf(err, err_cap,
                     "unknown namespace setting '%s' (semantic, threshold, "
                     "allow_lower_threshold, dimensions, embedder, model, ttl_s, sample_rate, "
                     "delivery, compare, answer_similarity, invalidate_on_wrong, max_error_rate, "
                     "explore_rate, explore_floor, validation_budget, max_entries, max_bytes, "
                     "guards)",
                     k);
            return SC_EINVAL;
        }
    }
    return 0;
}

int sc_ns_config_to_json(const sc_ns_config_t *c, sc_buf_t *out)
{
    sc_buf_printf(out, "{\"semantic\":%s,\"threshold\":", c->semantic ? "true" : "false");
    if (!c->threshold_explicit)
        sc_buf_puts(out, "null"); /* the model's (or server's) default, or the learned one */
    else
        sc_buf_double(out, c->threshold);
    sc_buf_printf(out, ",\"allow_lower_threshold\":%s,",
                  c->allow_lower_threshold ? "true" : "false");
    if (c->dimensions)
        sc_buf_printf(out, "\"dimensions\":%u,", c->dimensions);
    else
        sc_buf_puts(out, "\"dimensions\":null,");
    sc_buf_puts(out, "\"embedder\":");
    if (c->embedder[0])
        sc_buf_json_str(out, c->embedder, strlen(c->embedder));
    else
        sc_buf_puts(out, "null");
    sc_buf_puts(out, ",\"model\":");
    sc_buf_json_str(out, c->model[0] ? c->model : "default",
                    strlen(c->model[0] ? c->model : "default"));
    if (c->ttl_s >= 0)
        sc_buf_printf(out, ",\"ttl_s\":%lld", (long long)c->ttl_s);
    else
        sc_buf_puts(out, ",\"ttl_s\":null");
    sc_buf_puts(out, ",\"sample_rate\":");
    sc_buf_double(out, c->sample_rate);
    sc_buf_printf(out, ",\"delivery\":\"%s\",\"compare\":\"%s\",\"answer_similarity\":",
                  sc_delivery_names[c->delivery], c->compare);
    sc_buf_double(out, c->answer_similarity);
    sc_buf_printf(out, ",\"invalidate_on_wrong\":%s,\"max_error_rate\":",
                  c->invalidate_on_wrong ? "true" : "false");
    if (c->max_error_rate > 0)
        sc_buf_double(out, c->max_error_rate);
    else
        sc_buf_puts(out, "null");
    sc_buf_puts(out, ",\"explore_rate\":");
    sc_buf_double(out, c->explore_rate);
    sc_buf_puts(out, ",\"explore_floor\":");
    sc_buf_double(out, c->explore_floor);
    sc_buf_puts(out, ",\"validation_budget\":");
    sc_buf_double(out, c->validation_budget);
    for (int i = 0; i < 2; i++) {
        uint64_t cap = i ? c->max_bytes : c->max_entries;
        sc_buf_printf(out, ",\"%s\":", i ? "max_bytes" : "max_entries");
        if (cap)
            sc_buf_printf(out, "%llu", (unsigned long long)cap);
        else
            sc_buf_puts(out, "null");
    }
    sc_buf_printf(out, ",\"guards\":%s}", c->guards ? "true" : "false");
    return out->data ? 0 : SC_ENOMEM;
}
