/* validate_judge.c -- compare "judge": two answers that differ in words go
 * to a model (--judge-model, else the request's own) through --upstream-url
 * with the fixed prompt of cache/judge.c, and its strictly read reply is the
 * verdict. A second, cheap method (semantic when the namespace has a model,
 * else normalized) judges the same pair first, and both verdicts are
 * recorded as method agreement. Nothing here blocks: the embedding runs on
 * the model's workers, the call on the shared curl-multi client, and the
 * verdict is handed to 'done' from the client's thread. */
#define _GNU_SOURCE
#include "savings.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#include "sc_judge.h"

typedef struct {
    sc_http_call_t call; /* first: the call leads back to the job */
    sc_ctx_t *ctx;
    char ns[SC_MAX_NAMESPACE + 1];
    char model[128];
    const char *second; /* the cheap method (static name) */
    int second_verdict; /* its verdict, or -1 */
    sc_compare_done_fn done;
    void *arg;
    sc_buf_t text, fresh, cached; /* the request's semantic text; both answers */
} judge_job_t;

static void judge_free(judge_job_t *j)
{
    sc_http_call_clear(&j->call);
    sc_buf_free(&j->text);
    sc_buf_free(&j->fresh);
    sc_buf_free(&j->cached);
    free(j);
}

/* Both verdicts of one pair, when both exist, as method agreement. */
static void record_agreement(sc_ctx_t *ctx, const char *ns, int judge, const char *second,
                             int second_verdict)
{
    if (judge >= 0 && second_verdict >= 0)
        sc_quality_record_agreement(ctx->quality, ns, "judge", (sc_verdict_t)judge, second,
                                    (sc_verdict_t)second_verdict);
}

static void judge_answered(sc_http_call_t *call)
{
    judge_job_t *j = (judge_job_t *)call;
    sc_ctx_t *ctx = j->ctx;
    atomic_fetch_add(&ctx->upstream_calls, 1);
    sc_verdict_t v;
    sc_usage_t usage;
    int verdict = -1;
    if (call->error || call->status < 200 || call->status >= 300) {
        atomic_fetch_add(&ctx->judge_verdicts[SC_JUDGE_FAILED], 1);
    } else {
        int rc = sc_judge_parse(SC_API_OPENAI_CHAT, call->response.data ? call->response.data : "",
                                call->response.len, &v, &usage);
        /* The judge call is validation spend: its usage at the table's price. */
        sc_savings_validation_answer(ctx, j->ns, strlen(j->ns), call->body.data, call->body.len,
                                     call->response.data, call->response.len);
        if (rc == 0)
            verdict = (int)v;
        atomic_fetch_add(&ctx->judge_verdicts[rc                        ? SC_JUDGE_NO_VERDICT
                                              : v == SC_VERDICT_CORRECT ? SC_JUDGE_SAME
                                                                        : SC_JUDGE_DIFFERENT],
                         1);
    }
    record_agreement(ctx, j->ns, verdict, j->second, j->second_verdict);
    j->done(j->arg, verdict, -2);
    judge_free(j);
}

/* Sends the judge call; on failure to queue, no verdict. */
static void judge_send(judge_job_t *j)
{
    sc_ctx_t *ctx = j->ctx;
    char *a = sc_answer_text(j->fresh.data, j->fresh.len);
    char *b = sc_answer_text(j->cached.data, j->cached.len);
    snprintf(j->call.url, sizeof(j->call.url), "%s", ctx->cfg.upstream_url);
    if (ctx->upstream_key[0])
        snprintf(j->call.auth, sizeof(j->call.auth), "Bearer %s", ctx->upstream_key);
    j->call.timeout_ms = (long)ctx->cfg.upstream_timeout_ms;
    j->call.done = judge_answered;
    int rc = sc_judge_request(&j->call.body, SC_API_OPENAI_CHAT, j->model,
                              j->text.len ? j->text.data : NULL, j->text.len, a ? a : j->fresh.data,
                              a ? strlen(a) : j->fresh.len, b ? b : j->cached.data,
                              b ? strlen(b) : j->cached.len);
    free(a);
    free(b);
    if (rc || !ctx->vclient || sc_http_client_submit(ctx->vclient, &j->call)) {
        atomic_fetch_add(&ctx->judge_verdicts[SC_JUDGE_FAILED], 1);
        j->done(j->arg, -1, -2);
        judge_free(j);
    }
}

static void second_done(void *arg, int verdict, double answer_sim)
{
    (void)answer_sim;
    judge_job_t *j = arg;
    j->second_verdict = verdict;
    judge_send(j);
}

int sc_judge_compare(sc_ctx_t *ctx, const sc_ns_config_t *ns, const sc_compare_about_t *about,
                     sc_compare_fn semantic, const char *fresh, size_t flen, const char *cached,
                     size_t clen, sc_compare_done_fn done, void *arg)
{
    const char *second = sc_models_for(&ctx->models, ns) ? "semantic" : "normalized";
    const char *ns_name = about && about->ns ? about->ns : "";
    int agree = sc_answers_agree(fresh, flen, cached, clen, "judge");
    if (agree != 2) { /* equal once normalized, or structured: no call */
        record_agreement(ctx, ns_name, agree ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG, second,
                         agree ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG);
        done(arg, agree ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG, -2);
        return 0;
    }
    const char *model = ctx->cfg.judge_model[0] ? ctx->cfg.judge_model
                        : about && about->model ? about->model
                                                : "";
    if (!*model || !ctx->cfg.upstream_url[0]) {
        atomic_fetch_add(&ctx->judge_verdicts[SC_JUDGE_FAILED], 1);
        done(arg, -1, -2); /* nobody to ask: no verdict, never a guess */
        return 0;
    }
    judge_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return SC_ENOMEM;
    j->ctx = ctx;
    snprintf(j->ns, sizeof(j->ns), "%s", ns_name);
    snprintf(j->model, sizeof(j->model), "%s", model);
    j->second = second;
    j->second_verdict = -1;
    j->done = done;
    j->arg = arg;
    if ((about && about->text_len && sc_buf_append(&j->text, about->text, about->text_len)) ||
        sc_buf_append(&j->fresh, fresh, flen) || sc_buf_append(&j->cached, cached, clen) ||
        !j->fresh.data || !j->cached.data) {
        judge_free(j);
        return SC_ENOMEM;
    }
    if (strcmp(second, "normalized") == 0) {
        j->second_verdict = SC_VERDICT_WRONG; /* they differ once normalized */
        judge_send(j);
        return 0;
    }
    if (semantic(ctx, ns, fresh, flen, cached, clen, second_done, j))
        second_done(j, -1, -2); /* the embedder is busy: the judge alone */
    return 0;
}
