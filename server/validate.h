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
 * normalized and structured answers, from an embedding worker for
 * "semantic" texts that differ in words, or from the HTTP client's thread
 * for "judge". On error 'done' is not called. '*method' receives the method
 * used (static string). Same as sc_compare_answers_about with no 'about':
 * a judge then asks --judge-model only. */
int sc_compare_answers(sc_ctx_t *ctx, const sc_ns_config_t *ns, const char *fresh, size_t flen,
                       const char *cached, size_t clen, sc_compare_done_fn done, void *arg,
                       const char **method);

/* What compare "judge" needs to know of the request the answers are for;
 * every field may be NULL / 0; all borrowed for the call only (copied). */
typedef struct {
    const char *ns;    /* namespace name (NUL-terminated), for method agreement */
    const char *model; /* the request's model (NUL-terminated): asked when no --judge-model */
    const char *text;  /* the request's semantic text, shown to the judge */
    size_t text_len;
} sc_compare_about_t;
int sc_compare_answers_about(sc_ctx_t *ctx, const sc_ns_config_t *ns,
                             const sc_compare_about_t *about, const char *fresh, size_t flen,
                             const char *cached, size_t clen, sc_compare_done_fn done, void *arg,
                             const char **method);

/* compare "judge" (validate_judge.c): answers equal once normalized (or
 * structurally) agree at once; others are judged first by the cheap second
 * method (semantic when the namespace has a model, else normalized), then
 * by the judge model through --upstream-url (chat completions body,
 * sc_judge_request); its reply read by sc_judge_parse is the verdict, -1
 * when unreadable or the call failed (counted in ctx->judge_verdicts).
 * Both verdicts go to sc_quality_record_agreement. 'done' as above;
 * 'semantic' compares by "semantic" (validate.c passes its own, so the
 * judge module does not call back into it). */
typedef int (*sc_compare_fn)(sc_ctx_t *ctx, const sc_ns_config_t *ns, const char *fresh,
                             size_t flen, const char *cached, size_t clen,
                             sc_compare_done_fn done, void *arg);
int sc_judge_compare(sc_ctx_t *ctx, const sc_ns_config_t *ns, const sc_compare_about_t *about,
                     sc_compare_fn semantic, const char *fresh, size_t flen, const char *cached,
                     size_t clen, sc_compare_done_fn done, void *arg);

/* Acts on a verdict, from any thread: counts it, feeds the error-budget
 * observations (semantic hits and explorations), appends the validation
 * record (with both answers, cut to 1 KiB), remembers a wrong semantic pair
 * as a negative, and deletes a wrongly served entry when the namespace says
 * so. Fills v->id if empty. Returns 1 if the entry is being invalidated. */
int sc_validation_apply(sc_ctx_t *ctx, sc_validation_t *v, sc_verdict_t verd, const char *method,
                        double answer_sim, const char *fresh, size_t flen, const char *cached,
                        size_t clen);

#endif
