/* api_feedback.c -- the caller's side of validation: POST /v1/feedback
 * answers a sampled hit (by validation id, or any entry by key) with a fresh
 * answer to compare or a verdict, and GET /v1/validations lists the recent
 * validation records. A comparison that needs the embedder finishes on an
 * embedding worker; the verdict is applied and answered on the loop. */
#define _GNU_SOURCE
#include "api.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* A feedback request whose fresh answer is being compared (possibly by the
 * embedding workers); the verdict is applied and answered on the loop. */
typedef struct {
    sc_task_t task;
    sc_worker_t *w;
    sc_conn_t *conn;
    sc_validation_t val;
    sc_buf_t fresh, cached;
    int have_entry;
    const char *method;
    int verdict;
    double answer_sim;
} feedback_wait_t;

/* No verdict could be reached. */
static const char compare_failed[] =
    "the answers could not be compared (embedding queue full or timeout, or compare \"judge\" "
    "got no verdict: a failed call or a reply other than SAME or DIFFERENT); this validation "
    "was dropped";

static void feedback_finish(sc_ctx_t *ctx, sc_conn_t *c, sc_validation_t *val, sc_verdict_t verd,
                            const char *method, double answer_sim, const sc_buf_t *fresh,
                            const sc_buf_t *cached, int have_entry)
{
    int invalidated = sc_validation_apply(ctx, val, verd, method, answer_sim, fresh->data,
                                          fresh->len, cached->data, cached->len) &&
                      have_entry;
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(val->entry_key, SC_KEY_BYTES, hex);
    sc_buf_t b = {0};
    sc_buf_printf(&b,
                  "{\"validation_id\":\"%s\",\"key\":\"%s\",\"match\":\"%s\",\"verdict\":\"%s\","
                  "\"method\":\"%s\",",
                  val->id, hex, sc_match_names[val->match],
                  verd == SC_VERDICT_WRONG ? "wrong" : "correct", method);
    if (answer_sim > -2)
        sc_buf_printf(&b, "\"answer_similarity\":%.6f,", answer_sim);
    sc_buf_printf(&b, "\"invalidated\":%s}", invalidated ? "true" : "false");
    sc_conn_respond(c, 200, SC_JSON_CT, NULL, b.data, b.len);
    sc_buf_free(&b);
}

static void feedback_task_run(sc_task_t *t)
{
    feedback_wait_t *fw = (feedback_wait_t *)t;
    sc_conn_t *c = fw->conn;
    if (fw->verdict < 0) {
        sc_conn_problem(c, 503, "compare-failed", compare_failed);
    } else {
        feedback_finish(fw->w->ctx, c, &fw->val, (sc_verdict_t)fw->verdict, fw->method,
                        fw->answer_sim, &fw->fresh, &fw->cached, fw->have_entry);
    }
    sc_buf_free(&fw->fresh);
    sc_buf_free(&fw->cached);
    free(fw);
    sc_conn_release(c);
}

static void feedback_compared(void *arg, int verdict, double answer_sim)
{
    feedback_wait_t *fw = arg;
    fw->verdict = verdict;
    fw->answer_sim = answer_sim;
    sc_worker_post(fw->w, &fw->task);
}

/* The body's members: exactly one of validation_id and key, one of
 * fresh_response and verdict. 0, or the complaint in 'err'. */
typedef struct {
    json_t *vid, *key, *fresh, *verdict;
} feedback_body_t;

static int parse_body(json_t *root, const json_error_t *je, feedback_body_t *f, char *err,
                      size_t cap)
{
    const char *k;
    json_t *v;
    memset(f, 0, sizeof(*f));
    if (!json_is_object(root)) {
        snprintf(err, cap, "body must be a JSON object%s%s", root ? "" : ": ",
                 root ? "" : je->text);
        return SC_EINVAL;
    }
    json_object_foreach(root, k, v)
    {
        json_t **slot = strcmp(k, "validation_id") == 0    ? &f->vid
                        : strcmp(k, "key") == 0            ? &f->key
                        : strcmp(k, "fresh_response") == 0 ? &f->fresh
                        : strcmp(k, "verdict") == 0        ? &f->verdict
                                                           : NULL;
        if (!slot) {
            snprintf(err, cap,
                     "unknown field '%s' (validation_id or key, and fresh_response or verdict)", k);
            return SC_EINVAL;
        }
        *slot = v;
    }
    if (!f->vid == !f->key || !f->fresh == !f->verdict) {
        snprintf(err, cap,
                 "give one of validation_id or key, and one of fresh_response or verdict");
        return SC_EINVAL;
    }
    if ((f->vid && !json_is_string(f->vid)) || (f->key && !json_is_string(f->key)) ||
        (f->verdict &&
         (!json_is_string(f->verdict) || (strcmp(json_string_value(f->verdict), "correct") &&
                                          strcmp(json_string_value(f->verdict), "wrong"))))) {
        snprintf(err, cap,
                 "validation_id and key are strings; verdict is \"correct\" or \"wrong\"");
        return SC_EINVAL;
    }
    return 0;
}

/* The pending validation the body names, or (by key, nobody asked) an
 * exact-hit check of that entry. 0, 404 or 400 (with 'err'). */
static int take_validation(sc_ctx_t *ctx, const feedback_body_t *f, sc_validation_t *val, char *err,
                           size_t cap)
{
    uint8_t kb[SC_KEY_BYTES];
    memset(val, 0, sizeof(*val));
    if (f->key &&
        sc_hex_decode(json_string_value(f->key), json_string_length(f->key), kb, SC_KEY_BYTES)) {
        snprintf(err, cap, "\"key\" is 32 hexadecimal digits");
        return 400;
    }
    if (f->vid)
        return sc_quality_take(ctx->quality, json_string_value(f->vid), val) ? 404 : 0;
    if (sc_quality_take_by_key(ctx->quality, kb, val)) {
        memcpy(val->entry_key, kb, SC_KEY_BYTES);
        memcpy(val->request_key, kb, SC_KEY_BYTES);
        val->match = SC_MATCH_EXACT;
        val->similarity = 1;
    }
    return 0;
}

/* The served answer into 'cached', its model into 'model' (for compare
 * "judge"), and the namespace and scope when the validation did not say. 1
 * if the entry is still there. */
static int read_served(sc_worker_t *w, sc_validation_t *val, sc_buf_t *cached, char model[128])
{
    sc_entry_t e;
    sc_entry_meta_t meta;
    int have = sc_store_read_begin(w->reader) == 0 &&
               sc_store_get(w->reader, val->entry_key, &e, &meta) == 0;
    if (have) {
        sc_buf_append(cached, e.response.ptr, e.response.len);
        snprintf(model, 128, "%.*s", (int)e.model.len, e.model.ptr);
        if (!val->ns[0])
            snprintf(val->ns, sizeof(val->ns), "%.*s", (int)e.ns.len, e.ns.ptr);
        if (!val->scope)
            val->scope = e.scope;
    }
    sc_store_read_end(w->reader);
    return have;
}

/* Compares the fresh answer with the served one; answered by feedback_task_run. */
static void compare_fresh(const sc_call_t *a, const sc_validation_t *val, sc_buf_t *fresh,
                          sc_buf_t *cached, int have_entry, const char *model)
{
    sc_ctx_t *ctx = a->ctx;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, val->ns, strlen(val->ns), &ns);
    feedback_wait_t *fw = calloc(1, sizeof(*fw));
    if (!fw) {
        atomic_fetch_add(&ctx->compare_failures, 1);
        sc_buf_free(fresh);
        sc_buf_free(cached);
        sc_conn_problem(a->c, 503, "out-of-memory", "out of memory");
        return;
    }
    fw->task.run = feedback_task_run;
    fw->w = a->w;
    fw->conn = a->c;
    fw->val = *val;
    fw->fresh = *fresh;
    fw->cached = *cached;
    fw->have_entry = have_entry;
    /* The verdict comes back as a task (posted at once for a plain compare,
     * from an embedding worker otherwise) that runs after this returns, so
     * the request is held only once the comparison is under way. */
    sc_compare_about_t about = {val->ns, model, NULL, 0};
    if (sc_compare_answers_about(ctx, &ns, &about, fw->fresh.data ? fw->fresh.data : "",
                                 fw->fresh.len, fw->cached.data, fw->cached.len, feedback_compared,
                                 fw, &fw->method)) {
        sc_buf_free(&fw->fresh);
        sc_buf_free(&fw->cached);
        free(fw);
        sc_conn_problem(a->c, 503, "compare-failed", compare_failed);
        return;
    }
    sc_api_hold(a->w, a->c);
}

void sc_api_feedback(const sc_call_t *a)
{
    if (!sc_api_require_json(a))
        return;
    char err[256] = "";
    json_error_t je;
    json_t *root = json_loadb(a->http->body.ptr, a->http->body.len, JSON_REJECT_DUPLICATES, &je);
    feedback_body_t f;
    sc_validation_t val;
    int status = parse_body(root, &je, &f, err, sizeof(err))
                     ? 400
                     : take_validation(a->ctx, &f, &val, err, sizeof(err));
    if (status) {
        json_decref(root);
        if (status == 404)
            sc_conn_problem(a->c, 404, "not-found",
                            "unknown validation_id, or it was already answered");
        else
            sc_conn_problem(a->c, 400, "invalid-request", err);
        return;
    }
    sc_buf_t cached = {0}, fresh = {0};
    char model[128] = "";
    int have_entry = read_served(a->w, &val, &cached, model);
    if (!have_entry && (f.fresh || !val.ns[0])) {
        sc_buf_free(&cached);
        json_decref(root);
        sc_conn_problem(a->c, 404, "not-found",
                        "the entry is gone (deleted or expired); nothing to compare with");
        return;
    }
    if (f.verdict) {
        sc_verdict_t verd = strcmp(json_string_value(f.verdict), "wrong") == 0 ? SC_VERDICT_WRONG
                                                                               : SC_VERDICT_CORRECT;
        json_decref(root);
        feedback_finish(a->ctx, a->c, &val, verd, "reported", -2, &fresh, &cached, have_entry);
        sc_buf_free(&cached);
        return;
    }
    sc_api_dump_compact(f.fresh, &fresh);
    json_decref(root);
    compare_fresh(a, &val, &fresh, &cached, have_entry, model);
}

void sc_api_validations(const sc_call_t *a)
{
    size_t limit = 100;
    const char *q = a->http->query.ptr;
    if (q && a->http->query.len > 6 && strncmp(q, "limit=", 6) == 0) {
        long v = strtol(q + 6, NULL, 10);
        limit = v < 1 ? 1 : v > 10000 ? 10000 : (size_t)v;
    }
    sc_buf_t b = {0};
    int rc = sc_store_read_begin(a->w->reader);
    if (!rc)
        rc = sc_quality_validations_json(a->w->reader, limit, &b);
    sc_store_read_end(a->w->reader);
    if (rc) {
        sc_buf_free(&b);
        sc_conn_problem(a->c, 500, "store-error", sc_strerror(rc));
        return;
    }
    sc_api_reply_json(a->c, 200, &b);
    sc_buf_free(&b);
}
