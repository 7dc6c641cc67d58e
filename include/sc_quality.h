/* sc_quality.h -- measuring the cache's own false-hit rate. A fraction of
 * served hits (and every one of a new scope's first semantic hits) is marked
 * for validation; the caller re-infers and reports back, the answers are
 * compared, and every verdict updates per-namespace counts whose upper
 * confidence bound (Wilson, 95 %) is what a namespace's promise is checked
 * against. Pending validations live in a bounded in-memory table: when it is
 * full, samples are dropped and counted, never blocking a lookup. */
#ifndef SC_QUALITY_H
#define SC_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

#define SC_VALIDATION_ID_HEX 32

typedef enum { SC_MATCH_EXACT = 0, SC_MATCH_SEMANTIC = 1 } sc_match_t;
typedef enum { SC_VERDICT_CORRECT = 0, SC_VERDICT_WRONG = 1 } sc_verdict_t;

typedef struct {
    char id[SC_VALIDATION_ID_HEX + 1];
    uint8_t entry_key[16];        /* the entry that was served */
    uint8_t request_key[16];      /* the exact key of the lookup that hit */
    uint64_t scope;
    sc_match_t match;
    double similarity;            /* 1 for exact hits */
    char ns[129];
    uint64_t created_ms;
} sc_validation_t;

typedef struct sc_quality_s sc_quality_t;

/* 'max_pending' bounds validations awaiting an answer; 'first_n' is how many
 * semantic hits of each new scope are always validated. */
int sc_quality_create(sc_quality_t **out, size_t max_pending, uint32_t first_n);
void sc_quality_destroy(sc_quality_t *q);

/* Decides whether a hit is validated: always for a scope's first semantic
 * hits, else with probability 'sample_rate'. On yes, registers it (filling
 * v->id) and returns 1; 0 when not sampled; SC_EBUSY when the table is full
 * (the sample is dropped and counted). 'rng' is the caller's thread state. */
int sc_quality_sample(sc_quality_t *q, double sample_rate, sc_validation_t *v, uint64_t now_ms,
                      uint64_t *rng);
/* Removes and returns the pending validation 'id' (SC_ENOTFOUND if unknown
 * or already answered). */
int sc_quality_take(sc_quality_t *q, const char *id, sc_validation_t *out);
/* Removes and returns the newest pending validation of entry 'key'. */
int sc_quality_take_by_key(sc_quality_t *q, const uint8_t key[16], sc_validation_t *out);

/* Records a verdict in the namespace's counts. */
void sc_quality_record(sc_quality_t *q, const char *ns, sc_match_t match, sc_verdict_t verdict);

typedef struct {
    uint64_t validated[2], wrong[2];  /* by match kind */
    double rate, upper;               /* all kinds: wrong / validated and its 95 % Wilson bound */
} sc_quality_ns_t;

/* Counts of namespace 'ns' (zeros if none). */
void sc_quality_ns(sc_quality_t *q, const char *ns, sc_quality_ns_t *out);
/* Calls 'fn' for each namespace with validations. */
void sc_quality_foreach(sc_quality_t *q, void (*fn)(void *ctx, const char *ns,
                                                    const sc_quality_ns_t *st), void *ctx);
uint64_t sc_quality_dropped(sc_quality_t *q);
uint64_t sc_quality_pending(sc_quality_t *q);

/* Upper end of the two-sided 95 % Wilson score interval for 'k' of 'n'. */
double sc_wilson_upper(uint64_t k, uint64_t n);

/* Compares two answers (compact JSON) by 'method': "exact" (byte-equal),
 * "normalized" (the answer text with case, whitespace and punctuation
 * folded; JSON and tool-call answers compare by canonical structure). Returns
 * 1 if they agree. The "semantic" method is the caller's (it needs vectors). */
int sc_answers_agree(const char *a, size_t alen, const char *b, size_t blen, const char *method);
/* The text of an answer for comparison: a string, an object's "content", or
 * choices[0].message.content; NULL if none (a structured answer). Malloc'd. */
char *sc_answer_text(const char *json, size_t len);

#endif
