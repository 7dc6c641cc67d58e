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
#include "sc_log.h"
#include "sc_namespaces.h"

#define SC_MAX_MODELS 8

typedef struct {
    char name[64];
    sc_embedder_t *embedder; /* owned */
    sc_embed_pool_t *pool;   /* owned; its workers embed with 'embedder' */
} sc_model_t;

typedef struct {
    sc_model_t m[SC_MAX_MODELS];
    int n;
} sc_models_t;

/* Loads --model as "default", then each NAME=SPEC of --models ("glove-100d"
 * names the default model in the model cache, "remote:URL" an OpenAI-style
 * embeddings endpoint). 'cfg' and 'log' must outlive the models. Logs and
 * returns the first error; what was loaded stays for sc_models_close. */
int sc_models_open(sc_models_t *ms, const sc_config_t *cfg, sc_log_t *log);
/* Stops every model's workers and closes the embedders. */
void sc_models_close(sc_models_t *ms);
/* The model called 'name' ("" or NULL = "default"), or NULL. Valid until
 * sc_models_close. */
const sc_model_t *sc_models_find(const sc_models_t *ms, const char *name);
/* 1 when 'm' can embed: its dimension is known. A remote model whose
 * endpoint did not answer at start (and no --embed-dimensions) is not, until
 * its pool's probe gets an answer; its namespaces answer exact-only. */
int sc_models_available(const sc_model_t *m);
/* The model namespace settings 'ns' embed with ('ns->model'), or NULL. */
const sc_model_t *sc_models_for(const sc_models_t *ms, const sc_ns_config_t *ns);

#endif
