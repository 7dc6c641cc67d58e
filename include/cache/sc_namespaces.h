/* sc_namespaces.h -- per-namespace settings: semantic on/off, threshold,
 * whether requests may lower it, the embedder identity and dimensions its
 * vectors have, and a default TTL. Kept in memory for the request path (a
 * read lock per lookup) and persisted in LMDB by the caller. A namespace that
 * was never configured gets the server's defaults. */
#ifndef SC_NAMESPACES_H
#define SC_NAMESPACES_H

#include <jansson.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_config.h"

#define SC_MAX_EMBEDDER 128

typedef struct {
    int configured;                 /* settings were stored for this namespace */
    int semantic;                   /* semantic lookup on */
    double threshold;               /* cosine similarity a semantic hit needs */
    int allow_lower_threshold;      /* a request may ask for less than 'threshold' */
    uint32_t dimensions;            /* of its vectors; 0 = none seen yet */
    char embedder[SC_MAX_EMBEDDER]; /* identity of its embedder; "" = not recorded */
    char model[64];           /* server model it embeds texts with; "" = "default" (--model) */
    int64_t ttl_s;            /* default TTL of its entries; -1 = server default */
    double sample_rate;       /* fraction of hits sent for validation */
    char compare[16];         /* answers compared by "exact", "normalized", "semantic", "judge" */
    double answer_similarity; /* "semantic" compare: cosine two answers need to agree */
    int invalidate_on_wrong;  /* a wrong verdict deletes the entry */
    int delivery;             /* sc_delivery_t: who re-infers a sampled hit */
    double max_error_rate;    /* error budget of semantic hits; 0 = fixed threshold only */
    int threshold_explicit;   /* "threshold" was set: with a budget it is a floor on top */
    double explore_rate;      /* budget mode: fraction of below-threshold candidates explored */
    double explore_floor;     /* budget mode: no exploring below this similarity */
    double validation_budget; /* paid validations: at most this share of the hits served */
    uint64_t max_entries;     /* entries the namespace may hold; 0 = no cap of its own */
    uint64_t max_bytes;       /* bytes of entry records it may hold; 0 = no cap of its own */
    int guards;               /* refuse semantic hits whose texts fail sc_guard_check (on) */
} sc_ns_config_t;

typedef enum {
    SC_DELIVERY_CALLER = 0,
    SC_DELIVERY_UPSTREAM = 1,
    SC_DELIVERY_WEBHOOK = 2
} sc_delivery_t;
extern const char *const sc_delivery_names[3];

typedef struct sc_namespaces_s sc_namespaces_t;

/* 'cfg' supplies the defaults and must outlive the table. */
int sc_namespaces_create(sc_namespaces_t **out, const sc_config_t *cfg);
void sc_namespaces_destroy(sc_namespaces_t *t);

/* Copies the settings of 'name' (defaults if never configured) into 'out'. */
void sc_namespaces_get(sc_namespaces_t *t, const char *name, size_t len, sc_ns_config_t *out);
int sc_namespaces_set(sc_namespaces_t *t, const char *name, size_t len, const sc_ns_config_t *c);
void sc_namespaces_remove(sc_namespaces_t *t, const char *name, size_t len);

/* Checks a vector against the namespace's recorded dimensions and embedder
 * and records them if none are yet (atomically, so two first stores with
 * different embedders cannot both win). 'embedder' may be NULL (unnamed).
 * Returns 0, SC_EDIM or SC_ECONFLICT; '*recorded' is set when this call
 * recorded something, and 'out' receives the settings after the call. */
int sc_namespaces_check_vector(sc_namespaces_t *t, const char *name, size_t len, uint32_t dim,
                               const char *embedder, int record, int *recorded,
                               sc_ns_config_t *out);

/* Applies the fields of JSON object 'j' onto 'c' (unknown fields, wrong
 * types and out-of-range values are refused with a sentence in 'err'). */
int sc_ns_config_apply_json(sc_ns_config_t *c, const json_t *j, char *err, size_t err_cap);
/* Appends 'c' as a JSON object. */
int sc_ns_config_to_json(const sc_ns_config_t *c, sc_buf_t *out);
/* The settings a never-configured namespace has. */
void sc_ns_config_defaults(const sc_config_t *cfg, sc_ns_config_t *c);

#endif
