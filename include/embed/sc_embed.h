/* sc_embed.h -- text embedders behind one interface: open a model, embed a
 * batch of texts into L2-normalized float32 vectors, and report the model's
 * identity (name + hash of its weights) and dimensions. Implementations:
 * static word-vector models (GloVe, model2vec) and the tokenizers they use.
 * An embedder is immutable after open (a remote one's dimension and state
 * are atomics) and may be used from several threads at once; the server
 * calls it only from its embedding worker threads. */
#ifndef SC_EMBED_H
#define SC_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

typedef struct sc_embedder_s sc_embedder_t;

/* Opens 'spec': a model directory (model2vec: model.safetensors +
 * tokenizer.json + config.json), or a converted GloVe file (*.scglove).
 * On failure writes a sentence to 'err'. */
int sc_embedder_open(sc_embedder_t **out, const char *spec, char *err, size_t err_cap);
/* An OpenAI-compatible endpoint ("remote:URL" in --model): 'model' is the
 * name sent with each request, 'api_key' may be NULL, 'timeout_ms' bounds
 * each call and 'max_inflight' the calls in flight. 'dimensions' 0 = learn
 * it from a probe at open: an endpoint that refuses the probe (a 4xx but
 * 408/429, or a 2xx without embeddings: wrong key, URL or model) fails the
 * open with a sentence in 'err'; one that does not answer opens the embedder
 * "unavailable" (dimension 0) until sc_embedder_probe succeeds. A given
 * 'dimensions' needs no call at open. 'log' outlives 'e'. */
struct sc_log_s;
int sc_embedder_open_remote(sc_embedder_t **out, const char *url, const char *model,
                            const char *api_key, long timeout_ms, int max_inflight,
                            uint32_t dimensions, struct sc_log_s *log, char *err, size_t err_cap);
void sc_embedder_close(sc_embedder_t *e);

/* 0 while a remote embedder's dimension is unknown (see the state below);
 * once known it never changes. */
uint32_t sc_embedder_dim(const sc_embedder_t *e);

/* Whether the embedder can be used. A local model is always up. A remote
 * one is "unavailable" while its dimension is unknown (nothing may be
 * embedded: callers answer exact-only without trying), then "up" or "down"
 * as its last call (embedding or probe) answered or not. Any thread. */
typedef enum { SC_EMBEDDER_UP, SC_EMBEDDER_DOWN, SC_EMBEDDER_UNAVAILABLE } sc_embedder_state_t;
sc_embedder_state_t sc_embedder_state(const sc_embedder_t *e);
/* "up", "down", "unavailable" (static strings). */
const char *sc_embedder_state_name(sc_embedder_state_t s);
/* One probe of an embedder whose state is not up (blocking for at most its
 * call timeout: embedding worker threads only, one at a time): learns a
 * remote dimension, or checks a given one. 0 when it answered (the state is
 * then up); SC_EINVAL when it refused (wrong key, URL or model), SC_EDIM when
 * it answers another dimension than was given, another SC_E* when it did
 * not answer; 'err' says why. A local model answers 0 at once. */
int sc_embedder_probe(sc_embedder_t *e, char *err, size_t err_cap);
/* Threads one embedding call may use (a BERT forward pass splits its token
 * rows and attention heads over them; other embedders ignore it). Call right
 * after open, before the embedder is shared. */
void sc_embedder_set_threads(sc_embedder_t *e, int threads);
/* "kind:name@hash", e.g. "model2vec:potion-base-2M@1a2b3c4d5e6f7a8b"; the hash
 * covers the weights, so two files with the same name but different weights
 * never share a namespace. Valid until close. */
const char *sc_embedder_identity(const sc_embedder_t *e);

/* Embeds 'n' texts into 'out' (n x dim, row-major), each L2-normalized.
 * A text with no known token gets a zero vector and '*empty' bit i set
 * (bitmap of n bits, may be NULL); callers treat it as "no semantic text". */
int sc_embedder_embed(const sc_embedder_t *e, const char *const *texts, const size_t *lens,
                      size_t n, float *out, uint8_t *empty);

/* ---- tokenizers (shared by the embedders; exposed for tests) -------------- */

typedef struct sc_wordpiece_s sc_wordpiece_t;

typedef struct {
    int lowercase;         /* uncased models: lower-case and strip accents */
    int strip_accents;     /* -1 = follow lowercase (Hugging Face's default) */
    int chinese_chars;     /* put spaces around CJK ideographs */
    int clean_text;        /* drop control characters, map whitespace to ' ' */
    size_t max_word_chars; /* longer words become [UNK] (100) */
} sc_wordpiece_opts_t;

/* From a vocab.txt (one token per line, id = line number). */
int sc_wordpiece_load_vocab(sc_wordpiece_t **out, const char *path, const sc_wordpiece_opts_t *o);
/* From a Hugging Face tokenizer.json whose model is WordPiece (options are
 * read from its BertNormalizer). */
int sc_wordpiece_load_json(sc_wordpiece_t **out, const char *path, char *err, size_t err_cap);
void sc_wordpiece_free(sc_wordpiece_t *t);

/* Tokenizes 'text' into at most 'cap' ids (no [CLS]/[SEP]); returns how many
 * were written, or a negative SC_E*. Unknown words give the [UNK] id. */
int sc_wordpiece_encode(const sc_wordpiece_t *t, const char *text, size_t len, int32_t *ids,
                        size_t cap);
int32_t sc_wordpiece_unk(const sc_wordpiece_t *t);
int32_t sc_wordpiece_id(const sc_wordpiece_t *t, const char *token);
size_t sc_wordpiece_vocab_size(const sc_wordpiece_t *t);
/* The token string of 'id' (NULL if out of range). */
const char *sc_wordpiece_token(const sc_wordpiece_t *t, int32_t id);

/* Hugging Face's BertNormalizer alone (clean text, CJK spacing, accents,
 * case), as UTF-8: '*out' is malloc'd, the caller frees it. */
int sc_bert_normalize(const sc_wordpiece_opts_t *o, const char *text, size_t len, char **out,
                      size_t *out_len);

/* A Unigram (SentencePiece-style) tokenizer from a Hugging Face
 * tokenizer.json: its normalizer sequence (BertNormalizer, Lowercase,
 * Replace of strings or of "\\s+", Strip), the Metaspace pre-tokenizer, then
 * the Viterbi segmentation that maximizes the sum of piece scores, with
 * unknown characters as [UNK] (score: lowest piece score - 10), as
 * tokenizers' Unigram does. Other normalizers or pre-tokenizers are refused
 * with a message in 'err'. */
typedef struct sc_unigram_s sc_unigram_t;
int sc_unigram_load_json(sc_unigram_t **out, const char *path, char *err, size_t err_cap);
void sc_unigram_free(sc_unigram_t *t);
/* Like sc_wordpiece_encode: at most 'cap' ids, count or SC_E*. */
int sc_unigram_encode(const sc_unigram_t *t, const char *text, size_t len, int32_t *ids,
                      size_t cap);
int32_t sc_unigram_unk(const sc_unigram_t *t);
size_t sc_unigram_vocab_size(const sc_unigram_t *t);
const char *sc_unigram_token(const sc_unigram_t *t, int32_t id);

#endif
