/* models.h -- the server-side embedders, by name: --model is "default", each
 * NAME=SPEC of --models adds one. Each model has its own embedding workers
 * (embedpool.h); namespaces choose one with their "model" setting. The table
 * is filled at start-up and read-only afterwards, so any thread may look a
 * model up without a lock (a remote model's dimension and state are atomics
 * inside its embedder). */
#ifndef SC_MODELS_H
#define SC_MODELS_H

#include "embedpool.h"
#include "sc_config.h"
#include "sc_embed.h"
#include "sc_guards.h"
#include "sc_log.h"
#include "sc_namespaces.h"

#define SC_MAX_MODELS 8

typedef struct {
    char name[64];
    sc_embedder_t *embedder;  /* owned */
    sc_embed_pool_t *pool;    /* owned; its workers embed with 'embedder' */
    double default_threshold; /* chosen on QQP dev for this embedder; 0 = none */
    unsigned guard_checks;    /* SC_GUARD_* its namespaces apply (sc_models_guard_checks) */
} sc_model_t;

typedef struct {
    sc_model_t m[SC_MAX_MODELS];
    int n;
    /* The semantic-hit guards' word list (sc_guards.h), for every namespace
     * whatever embeds its texts (a model or the client); owned, immutable. */
    sc_guard_words_t *guard_words;
} sc_models_t;

/* Loads the guards' word list, --model as "default", then each NAME=SPEC
 * of --models ("glove-100d" names the default model in the model cache,
 * "remote:URL" an OpenAI-style embeddings endpoint). 'cfg' and 'log' must outlive the models. Logs
 * and returns the first error; what was loaded stays for sc_models_close. */
int sc_models_open(sc_models_t *ms, const sc_config_t *cfg, sc_log_t *log);
/* Stops every model's workers, closes the embedders, frees the word list. */
void sc_models_close(sc_models_t *ms);
/* The model called 'name' ("" or NULL = "default"), or NULL. Valid until
 * sc_models_close. */
const sc_model_t *sc_models_find(const sc_models_t *ms, const char *name);
/* 1 when 'm' can embed: its dimension is known. A remote model whose
 * endpoint did not answer at start (and no --embed-dimensions) is not, until
 * its pool's probe gets an answer; its namespaces answer exact-only. */
int sc_models_available(const sc_model_t *m);
/* The guards a namespace with "guards" on applies (SC_GUARD_* bits):
 * negation and numbers always; the rare-word check too with a built-in
 * static model (GloVe, potion-base-2M: measured to help them, and their
 * default thresholds were chosen with it), not with client vectors or other
 * embedders, which see rare words themselves (docs/quality.md, "Guards"). */
unsigned sc_models_guard_checks(const sc_models_t *ms, const sc_ns_config_t *ns);
/* The SC_GUARD_* bits of 'checks' that refuse serving an entry of text 'b'
 * for a lookup of text 'a' (the semantic texts), 0 to serve; the built-in
 * word list. Either text empty, or a guard failing (memory), serves: like
 * the lookup, fail-open. Any thread. */
unsigned sc_models_guard(const sc_models_t *ms, unsigned checks, const char *a, size_t alen,
                         const char *b, size_t blen);
/* The model namespace settings 'ns' embed with ('ns->model'), or NULL. */
const sc_model_t *sc_models_for(const sc_models_t *ms, const sc_ns_config_t *ns);

/* Where the fixed threshold in force comes from (GET /v1/namespaces/{name}
 * "threshold_source"; "learned" is the error budget's, decided by the
 * caller). */
typedef enum {
    SC_THRESHOLD_NAMESPACE = 0,     /* the namespace's "threshold" setting */
    SC_THRESHOLD_MODEL_DEFAULT = 1, /* its model's default (docs/quality.md) */
    SC_THRESHOLD_SERVER_DEFAULT = 2 /* --threshold */
} sc_threshold_source_t;
extern const char *const sc_threshold_source_names[3];

/* The fixed threshold a namespace serves semantic hits at: its own
 * "threshold" if set; else, with --model-thresholds on, its model's default
 * if the model has one (GloVe-100d, potion-base-2M); else --threshold.
 * 'source' (may be NULL) says which. */
double sc_models_threshold(const sc_models_t *ms, const sc_config_t *cfg, const sc_ns_config_t *ns,
                           sc_threshold_source_t *source);

#endif
