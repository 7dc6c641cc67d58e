/* validate.h -- delivery of sampled hits for validation (caller, upstream
 * re-inference, webhook), answer comparison that may need the embedder, and
 * applying verdicts. Used by the lookup, store and feedback handlers; it
 * stands on the process context (process.h) and the models, never on a
 * handler or server.c. See docs/quality.md. */
#ifndef SC_VALIDATE_H
#define SC_VALIDATE_H

#include "process.h"
#include "sc_httpclient.h"
#include "sc_request.h"

/* Hands a registered validation (v->id set) to its namespace's delivery.
 * Returns 1 when the caller is the one asked (the lookup response must carry
 * the validation id), 0 otherwise; a delivery that cannot be queued drops the
 * validation (counted). Loop thread; copies what it needs, never blocks. */
int sc_validation_deliver(sc_ctx_t *ctx, const sc_ns_config_t *ns, const sc_validation_t *v,
                          const sc_request_t *req, const char *cached, size_t clen);

/* 'verdict' is an sc_verdict_t, or -1 when no verdict could be reached (the
 * embedder failed); 'answer_sim' is the answers' cosine, or -2 if unused. */
typedef void (*sc_compare_done_fn)(void *arg, int verdict, double answer_sim);

/* Compares a fresh answer with the cached one by the namespace's method.
 * 'done' is called exactly once when 0 is returned: at once for exact,
 * normalized and structured answers, or from an embedding worker for
 * "semantic" texts that differ in words. On error 'done' is not called.
 * '*method' receives the method used (static string). */
int sc_compare_answers(sc_ctx_t *ctx, const sc_ns_config_t *ns, const char *fresh, size_t flen,
                       const char *cached, size_t clen, sc_compare_done_fn done, void *arg,
                       const char **method);

/* Acts on a verdict, from any thread: counts it, feeds the error-budget
 * observations (semantic hits and explorations), appends the validation
 * record (with both answers, cut to 1 KiB), remembers a wrong semantic pair
 * as a negative, and deletes a wrongly served entry when the namespace says
 * so. Fills v->id if empty. Returns 1 if the entry is being invalidated. */
int sc_validation_apply(sc_ctx_t *ctx, sc_validation_t *v, sc_verdict_t verd, const char *method,
                        double answer_sim, const char *fresh, size_t flen, const char *cached,
                        size_t clen);

#endif
