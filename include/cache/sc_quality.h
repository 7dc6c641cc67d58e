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
#include "sc_key.h"
#include "sc_store.h"

#define SC_VALIDATION_ID_HEX 32

/* What was validated: a served exact or semantic hit, an exploration (a
 * candidate below the learned threshold, answered as a miss and checked), or
 * an observation (a near miss's candidate compared, at no extra model call,
 * with the fresh answer the miss got anyway: the proxy's upstream answer, or
 * the native store that follows the lookup). */
typedef enum {
    SC_MATCH_EXACT = 0,
    SC_MATCH_SEMANTIC = 1,
    SC_MATCH_EXPLORE = 2,
    SC_MATCH_OBSERVED = 3
} sc_match_t;
#define SC_MATCH_KINDS 4
extern const char *const sc_match_names[SC_MATCH_KINDS];
typedef enum { SC_VERDICT_CORRECT = 0, SC_VERDICT_WRONG = 1 } sc_verdict_t;

typedef struct {
    char id[SC_VALIDATION_ID_HEX + 1];
    uint8_t entry_key[SC_KEY_BYTES];   /* the entry that was served */
    uint8_t request_key[SC_KEY_BYTES]; /* the exact key of the lookup that hit */
    uint64_t scope;
    sc_match_t match;
    double similarity; /* 1 for exact hits */
    char ns[129];
    uint64_t created_ms;
} sc_validation_t;

typedef struct sc_quality_s sc_quality_t;

typedef struct {
    size_t max_pending;            /* validations awaiting an answer */
    uint32_t first_n;              /* semantic hits of each new scope always validated */
    double budget_confidence;      /* one-sided confidence of the error-budget bound (0.95) */
    uint32_t budget_min_scope_obs; /* observations before a scope gets its own threshold */
    size_t budget_max_scopes;      /* scopes tracked for their own threshold */
    uint64_t pending_timeout_ms; /* unanswered validations older than this make room (0 = never) */
} sc_quality_opts_t;

int sc_quality_create(sc_quality_t **out, const sc_quality_opts_t *opts);
void sc_quality_destroy(sc_quality_t *q);

/* Decides whether a hit is validated: always for a scope's first semantic
 * hits, else with probability 'sample_rate' (an exploration or observation
 * with probability 'sample_rate' alone). On yes, registers it (filling v->id)
 * and returns 1; 0 when not sampled; SC_EBUSY when the table is full (the
 * sample is dropped and counted). Observations are free and never fill more
 * than half the table (beyond, 0: not taken, not counted). 'rng' is the
 * caller's thread state. */
int sc_quality_sample(sc_quality_t *q, double sample_rate, sc_validation_t *v, uint64_t now_ms,
                      uint64_t *rng);
/* Returns 1 with probability 'rate' (the draw sc_quality_sample makes), so a
 * caller can skip preparing a validation that will not be taken: only
 * semantic hits can be taken without winning the draw. */
int sc_quality_draw(uint64_t *rng, double rate);
/* Takes back a registered validation that could not be delivered (counted
 * as dropped). */
void sc_quality_abandon(sc_quality_t *q, const char *id);
/* Removes and returns the pending exploration or observation whose lookup
 * had exact key 'request_key' (the store that follows the miss settles it). */
int sc_quality_take_explore(sc_quality_t *q, const uint8_t request_key[SC_KEY_BYTES],
                            sc_validation_t *out);
/* Removes and returns the pending validation 'id' (SC_ENOTFOUND if unknown
 * or already answered). */
int sc_quality_take(sc_quality_t *q, const char *id, sc_validation_t *out);
/* Removes and returns the newest pending validation of entry 'key'. */
int sc_quality_take_by_key(sc_quality_t *q, const uint8_t key[SC_KEY_BYTES], sc_validation_t *out);

/* Records a verdict in the namespace's counts. */
void sc_quality_record(sc_quality_t *q, const char *ns, sc_match_t match, sc_verdict_t verdict);

typedef struct {
    uint64_t validated[SC_MATCH_KINDS], wrong[SC_MATCH_KINDS]; /* by match kind */
    double rate, upper; /* served hits (exact + semantic): wrong / validated, 95 % Wilson bound */
    double semantic_rate, semantic_upper; /* the same for semantic hits alone */
} sc_quality_ns_t;

/* ---- what validation costs against what hits save -------------------------
 * Paid validations (sampled hits, explorations sent upstream, judge calls)
 * may spend at most 'budget' of the model calls a namespace's hits saved
 * (one per hit served), over a sliding window: once the namespace has seen
 * SC_SPEND_WINDOW hits, both counts are halved, so old traffic fades. Beyond
 * the budget, a validation goes ahead only when the caller's draw at its
 * minimum rate says so, and is otherwise paused (counted). Thread-safe;
 * its own lock (cache/quality_budget.c). */

#define SC_SPEND_WINDOW 10000
typedef struct sc_spend_s sc_spend_t;

typedef struct {
    uint64_t hits;   /* hits served (model calls saved), all time */
    uint64_t paid;   /* paid validations let through, all time */
    uint64_t paused; /* validations the budget paused, all time */
    double window_hits, window_paid; /* the sliding window's counts */
} sc_spend_stats_t;

int sc_spend_create(sc_spend_t **out);
void sc_spend_destroy(sc_spend_t *s);
/* The spend table of 'q' (lives as long as 'q'). */
sc_spend_t *sc_quality_spend(sc_quality_t *q);
/* Counts 'n' hits served in namespace 'ns' ('ns_len' bytes). */
void sc_spend_hits(sc_spend_t *s, const char *ns, size_t ns_len, uint64_t n);
/* May namespace 'ns' pay for one more validation? 1 (counted as paid) when
 * it is within 'budget' of the window's hits, or when 'pass' (the caller's
 * draw at its minimum rate) lets it through anyway; else 0 (counted as
 * paused). */
int sc_spend_allow(sc_spend_t *s, const char *ns, size_t ns_len, double budget, int pass);
/* Counts of 'ns' (zeros if none). */
void sc_spend_get(sc_spend_t *s, const char *ns, size_t ns_len, sc_spend_stats_t *out);
/* Calls 'fn' for each namespace with counts, under the table's lock. */
void sc_spend_foreach(sc_spend_t *s, void (*fn)(void *ctx, const char *ns, const sc_spend_stats_t *st),
                      void *ctx);

/* ---- agreement between comparison methods -------------------------------
 * The same answer pair can be compared by two methods (the namespace's own
 * and a second one, e.g. semantic and judge); counting how often they agree
 * shows how much the choice of method matters for that traffic. */

#define SC_COMPARE_METHODS 4
/* "exact", "normalized", "semantic", "judge": the order counts are kept in. */
extern const char *const sc_compare_method_names[SC_COMPARE_METHODS];
/* The index of method 'name' in sc_compare_method_names, or -1. */
int sc_compare_method(const char *name);

typedef struct {
    const char *a, *b; /* the methods (static names), a before b in the list above */
    uint64_t pairs;    /* answer pairs compared by both */
    uint64_t both_correct, both_wrong;
    uint64_t a_wrong_only; /* a said wrong, b said correct */
    uint64_t b_wrong_only;
    double agreement; /* (both_correct + both_wrong) / pairs; 0 when no pairs */
} sc_agreement_t;

/* Records that one answer pair was judged 'va' by method 'ma' and 'vb' by
 * 'mb' in namespace 'ns' (the order of the two methods does not matter).
 * SC_EINVAL for an unknown method, the same method twice or a bad verdict. */
int sc_quality_record_agreement(sc_quality_t *q, const char *ns, const char *ma, sc_verdict_t va,
                                const char *mb, sc_verdict_t vb);
/* The counts of methods 'ma' and 'mb' in 'ns' (zeros if none), with 'a' and
 * 'b' in the list's order whatever the order asked. SC_EINVAL as above. */
int sc_quality_agreement(sc_quality_t *q, const char *ns, const char *ma, const char *mb,
                         sc_agreement_t *out);
/* Calls 'fn' for each pair of methods with at least one pair recorded in
 * 'ns', under the quality lock ('fn' must not call back into 'q'). */
void sc_quality_agreement_foreach(sc_quality_t *q, const char *ns,
                                  void (*fn)(void *ctx, const sc_agreement_t *ag), void *ctx);

/* Counts of namespace 'ns' (zeros if none). */
void sc_quality_ns(sc_quality_t *q, const char *ns, sc_quality_ns_t *out);
/* Calls 'fn' for each namespace with validations. */
void sc_quality_foreach(sc_quality_t *q,
                        void (*fn)(void *ctx, const char *ns, const sc_quality_ns_t *st),
                        void *ctx);
uint64_t sc_quality_dropped(sc_quality_t *q);
/* Validations forgotten unanswered after pending_timeout_ms. */
uint64_t sc_quality_expired(sc_quality_t *q);
uint64_t sc_quality_pending(sc_quality_t *q);

/* Upper end of the two-sided 95 % Wilson score interval for 'k' of 'n'. */
double sc_wilson_upper(uint64_t k, uint64_t n);

/* ---- error budget ------------------------------------------------------ */

/* Records a validated semantic lookup (a served hit or an exploration) at
 * 'similarity' with its verdict, for the learned thresholds of 'ns' and of
 * 'scope'. */
void sc_quality_observe(sc_quality_t *q, const char *ns, uint64_t scope, double similarity,
                        sc_verdict_t verdict);
/* The lowest similarity at which semantic hits in 'scope' of 'ns' meet
 * 'max_error_rate' with the configured confidence. Cuts on a fixed grid
 * (0.995, 0.99, ... 0) are tested from the highest down: a cut passes when
 * the exact (Clopper-Pearson) upper bound of the error rate of the
 * observations at or above it is within the budget; the first failure ends
 * the scan (a fixed-sequence test, so no multiple-testing penalty); cuts with
 * too few observations to be tested fairly are skipped, not failed. A scope
 * with budget_min_scope_obs observations uses its own; others their
 * namespace's; 'scope' 0 asks for the namespace's. Returns 1 with '*t' set,
 * or 0 when the data cannot support any threshold yet (no semantic hit may
 * be served). '*n_obs' receives the observations the answer rests on (may
 * be NULL). */
int sc_quality_budget_threshold(sc_quality_t *q, const char *ns, uint64_t scope,
                                double max_error_rate, double *t, int *from_scope, uint64_t *n_obs);
/* The largest k with P(Binomial(n, eps) <= k) <= alpha, i.e. the most wrong
 * answers out of n whose exact upper bound at confidence 1 - alpha is still
 * at most eps; -1 when even k = 0 is too many (n too small). */
int64_t sc_budget_max_wrong(uint64_t n, double eps, double alpha);

/* ---- the quality loop's records in the store ------------------------------ */

/* Two tables in the store hold the quality loop's records, opaque to the
 * store (sc_store.h); these functions are the only code that knows their
 * bytes (cache/quality_records.c):
 *   validations: be64 time_ms | the first 8 bytes of the validation id ->
 *                a JSON object (one verdict), listed by GET /v1/validations;
 *   negatives:   request key | entry key -> nothing: a pairing judged wrong,
 *                never served again. */

/* A verdict on validation 'v', as its record tells it. */
typedef struct {
    sc_verdict_t verdict;
    const char *method;       /* how the answers were compared ("normalized", ...) */
    double answer_similarity; /* cosine between the answers; -2 or less = not measured */
    const char *cached;       /* the served answer (compact JSON), NULL = unknown */
    size_t cached_len;
    const char *fresh; /* the re-inferred answer, NULL = unknown */
    size_t fresh_len;
    uint64_t time_ms;   /* when the verdict was reached: orders the log */
    uint64_t retention; /* validation records the store keeps (0 = no bound) */
} sc_verdict_info_t;

/* Answers in validation records are cut to this many bytes: enough to audit
 * a verdict. */
#define SC_RECORD_ANSWER_MAX 1024

/* Makes 'op' (zeroed by the caller) the store write of verdict 'info' on
 * validation 'v' ('v->id' must be set). The record it allocates belongs to
 * the op (sc_write_op_clear frees it). 0 or SC_ENOMEM. */
int sc_quality_validation_op(sc_write_op_t *op, const sc_validation_t *v,
                             const sc_verdict_info_t *info);
/* Makes 'op' (zeroed by the caller) the store write that remembers that
 * request 'request_key' must never match entry 'entry_key' again. */
void sc_quality_negative_op(sc_write_op_t *op, const uint8_t request_key[SC_KEY_BYTES],
                            const uint8_t entry_key[SC_KEY_BYTES]);
/* 1 if request 'request_key' was judged not to match entry 'entry_key', in
 * the reader's snapshot (between sc_store_read_begin and _end); else 0. */
int sc_quality_is_negative(sc_store_reader_t *r, const uint8_t request_key[SC_KEY_BYTES],
                           const uint8_t entry_key[SC_KEY_BYTES]);
/* Appends up to 'limit' validation records, newest first, to 'out' as a JSON
 * array, from the reader's snapshot. */
int sc_quality_validations_json(sc_store_reader_t *r, size_t limit, sc_buf_t *out);

/* ---- comparing answers --------------------------------------------------- */

/* The comparable core of an answer (compact JSON): its text (a string, an
 * object's "content", or choices[0].message.content), or, for structured
 * answers (JSON mode text that parses as an object or array, tool calls,
 * other JSON), the canonical encoding of the structure with tool-call ids
 * left out. Exactly one of '*text' and '*structure' is set (malloc'd). */
int sc_answer_core(const char *json, size_t len, char **text, char **structure);
/* Compares two answers by 'method': "exact" (byte-equal text), "normalized"
 * (text with case, whitespace and punctuation folded), "semantic" or
 * "judge" (as normalized here; the caller then compares embeddings, or asks
 * a model through sc_judge.h, when they differ). Structured answers agree
 * when their canonical structures are equal, whatever the method. Returns 1
 * if they agree, 0 if not, and for "semantic" and "judge" 2 when both are
 * texts that differ after folding (the verdict then needs the embeddings or
 * the judge). */
int sc_answers_agree(const char *a, size_t alen, const char *b, size_t blen, const char *method);
/* The text of an answer, as in sc_answer_core; NULL for a structured one. */
char *sc_answer_text(const char *json, size_t len);

#endif
