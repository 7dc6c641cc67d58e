/* sc_embed_internal.h -- the BERT encoder's own interface, used by the
 * embedder front (static.c) and by tests that check the forward pass on
 * token ids against a numpy reference. Not part of the public headers. */
#ifndef SC_EMBED_INTERNAL_H
#define SC_EMBED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sc_embed.h"

typedef struct sc_bert_s sc_bert_t;

/* 1 if 'dir' holds a Hugging Face BERT model (config.json model_type "bert"). */
int sc_bert_is_model_dir(const char *dir);
/* Loads config.json, model.safetensors, vocab.txt or tokenizer.json and the
 * sentence-transformers pooling config. '*hash' receives the weights' hash. */
int sc_bert_open(sc_bert_t **out, const char *dir, uint64_t *hash, char *err, size_t err_cap);
void sc_bert_close(sc_bert_t *b);
uint32_t sc_bert_dim(const sc_bert_t *b);
/* Threads that share one forward pass (1 by default): the calling thread
 * plus threads started for the pass, each with a range of token rows and a
 * share of the attention heads. Call before the encoder is shared. */
#define SC_BERT_MAX_THREADS 64
void sc_bert_set_threads(sc_bert_t *b, int threads);
/* Forward pass on token ids ([CLS] ... [SEP] included), 'n' sequences of
 * 'lens[i]' ids, into 'out' (n x dim, pooled and L2-normalized). */
int sc_bert_encode_ids(const sc_bert_t *b, const int32_t *const *ids, const size_t *lens, size_t n,
                       float *out);
/* Tokenizes (adding [CLS]/[SEP], truncating to the model's length) and encodes. */
int sc_bert_embed(const sc_bert_t *b, const char *const *texts, const size_t *lens, size_t n,
                  float *out);

/* ---- remote (OpenAI-compatible) ------------------------------------------ */

#include "sc_log.h"

typedef struct sc_remote_s sc_remote_t;

/* 'url' is a base URL (…/v1/embeddings is appended) or a full …/embeddings
 * URL; 'api_key' may be NULL. 'dimensions' 0: probes the endpoint once to
 * learn the dimension; fails (SC_EINVAL, a sentence in 'err') if it refuses
 * the probe (4xx but 408/429, or no embeddings in a 2xx), and opens with the
 * dimension unknown (sc_remote_dim 0) if it does not answer. A given
 * 'dimensions' needs no call at open. */
int sc_remote_open(sc_remote_t **out, const char *url, const char *model, const char *api_key,
                   long timeout_ms, int max_inflight, uint32_t dimensions, sc_log_t *log, char *err,
                   size_t err_cap);
void sc_remote_close(sc_remote_t *r);
/* 0 while unknown; once known it never changes. Any thread. */
uint32_t sc_remote_dim(const sc_remote_t *r);
/* 1 if the last call (embedding or probe) answered with embeddings. */
int sc_remote_up(const sc_remote_t *r);
/* One blocking call with a fixed text (worker threads only): learns the
 * dimension if unknown, checks it otherwise. 0; SC_EINVAL when the endpoint
 * refused it (see open); another SC_E* when it did not answer. 'err' says
 * why. */
int sc_remote_probe(sc_remote_t *r, char *err, size_t err_cap);
/* Embeds 'n' texts (one HTTP call) into 'out' (n x dim, L2-normalized);
 * SC_EREMOTE while the dimension is unknown. */
int sc_remote_embed(sc_remote_t *r, const char *const *texts, const size_t *lens, size_t n,
                    float *out);

#endif
