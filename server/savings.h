/* savings.h -- what the cache saves and what checking it costs, in tokens
 * and dollars: a served hit saved the call its stored usage records, priced
 * by the price table (sc_prices.h, --prices); a paid validation call
 * (upstream re-inference, judge) costs its own usage. Models the table does
 * not price count tokens (as "unpriced"), never dollars. The counters live
 * in the metrics (sc_metrics.h); this module prices and renders them. */
#ifndef SC_SAVINGS_H
#define SC_SAVINGS_H

#include <stddef.h>
#include <stdint.h>

#include "process.h"

/* A served hit (exact or semantic, native or proxied) of namespace 'ns' whose
 * entry recorded 'prompt_tokens' and 'completion_tokens' for 'model': counts
 * the tokens and, when the model is priced, prompt x input price +
 * completion x output price. The full input price is used: a repeated call
 * might have had part of its prompt served from the provider's prompt cache
 * (cheaper), which the stored usage cannot tell, so for long shared prompts
 * this is an upper bound (docs: README "FinOps"). Loop thread of 'w'. */
void sc_savings_hit(sc_worker_t *w, const char *ns, size_t ns_len, const char *model,
                    size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens);

/* THE function for a paid validation call (upstream re-inference, judge
 * call, proxy re-inference) of namespace 'ns' to 'model' that used
 * 'prompt_tokens' and 'completion_tokens': counts the call, its tokens and,
 * when the model is priced, its cost (same formula as a hit). Any thread;
 * the strings are read during the call only. */
void sc_savings_validation(sc_ctx_t *ctx, const char *ns, size_t ns_len, const char *model,
                           size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens);

/* The same from the upstream's answer body 'answer' (OpenAI chat/responses or
 * Anthropic messages JSON): its "model" (else the "model" of 'request', the
 * body that was sent) and its usage, with cached prompt tokens at the cached
 * price. A call whose answer has no usage counts as a call with no tokens. */
void sc_savings_validation_answer(sc_ctx_t *ctx, const char *ns, size_t ns_len, const char *request,
                                  size_t rlen, const char *answer, size_t alen);

/* Appends "X-Semcached-Saved-Usd: <dollars>\r\n" for a proxied hit of
 * 'model' with that usage (exact decimal, the hit's formula). Nothing when
 * the model has no price or the usage is unknown (no tokens). */
void sc_savings_header(const sc_ctx_t *ctx, const char *model, size_t model_len,
                       uint64_t prompt_tokens, uint64_t completion_tokens, sc_buf_t *out);

/* The /metrics families (tokens saved, dollars saved, validation calls and
 * dollars, unpriced tokens) by namespace and model; 'label' writes an
 * escaped Prometheus label value. */
void sc_savings_prometheus(sc_metrics_t *m, sc_buf_t *b,
                           void (*label)(sc_buf_t *b, const char *v, size_t len));

/* Namespace 'ns''s savings as a JSON object: {"saved_usd", "validation_usd",
 * "net_usd", "hit_tokens", "unpriced_hit_tokens", "validation_calls",
 * "validation_tokens", "unpriced_validation_tokens"}. */
void sc_savings_ns_json(sc_ctx_t *ctx, const char *ns, size_t ns_len, sc_buf_t *b);
/* The /v1/stats member "savings":{"prices_taken", "total":{...},
 * "namespaces":{name:{...}}} (namespaces past the label cap are in total). */
void sc_savings_stats_json(sc_ctx_t *ctx, sc_buf_t *b);

#endif
