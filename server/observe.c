/* observe.c -- free observations and the validation budget. A miss whose
 * best candidate lies above the namespace's exploration floor is an
 * observation: the answer the miss gets anyway (the native store that
 * follows, the proxy's upstream answer) is compared with the candidate's,
 * at no model call. Paid validations are let through only within the
 * namespace's validation_budget of the hits it served (cache/quality_budget.c). */
#define _GNU_SOURCE
#include "observe.h"

#include <stdio.h>
#include <string.h>

void sc_observe_validation(const sc_request_t *req, const uint8_t entry_key[SC_KEY_BYTES],
                           sc_match_t match, double similarity, sc_validation_t *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->entry_key, entry_key, SC_KEY_BYTES);
    memcpy(v->request_key, req->key, SC_KEY_BYTES);
    v->scope = req->scope;
    v->match = match;
    v->similarity = similarity;
    snprintf(v->ns, sizeof(v->ns), "%.*s", (int)req->ns_len, req->ns);
}

int sc_observe_wanted(const sc_ns_config_t *ns, double similarity)
{
    return ns->max_error_rate > 0 && similarity >= ns->explore_floor;
}

void sc_observe_near_miss(sc_worker_t *w, const sc_request_t *req,
                          const uint8_t entry_key[SC_KEY_BYTES], double similarity)
{
    sc_validation_t v;
    sc_observe_validation(req, entry_key, SC_MATCH_OBSERVED, similarity, &v);
    sc_quality_sample(w->ctx->quality, 1.0, &v, sc_now_ms(), &w->rng);
}

int sc_observe_may_pay(sc_worker_t *w, const sc_ns_config_t *ns, sc_validation_t *v,
                       double drawn_rate)
{
    sc_ctx_t *ctx = w->ctx;
    if (v->match == SC_MATCH_EXPLORE && ns->delivery == SC_DELIVERY_CALLER)
        return 1; /* the caller's store settles it */
    double min = ctx->cfg.validation_min_rate;
    /* Over budget, hits are still validated at the minimum rate overall;
     * explorations are not (their miss is observed for free instead). */
    double pass = v->match == SC_MATCH_EXPLORE ? 0 : drawn_rate > min ? min / drawn_rate : 1.0;
    if (drawn_rate <= 0 && v->match != SC_MATCH_EXPLORE)
        pass = min; /* a forced (first hits of a scope) validation */
    if (sc_spend_allow(sc_quality_spend(ctx->quality), v->ns, strlen(v->ns), ns->validation_budget,
                       sc_quality_draw(&w->rng, pass)))
        return 1;
    sc_validation_t back;
    if (sc_quality_take(ctx->quality, v->id, &back) == 0 && back.match == SC_MATCH_EXPLORE) {
        back.match = SC_MATCH_OBSERVED;
        back.id[0] = '\0';
        sc_quality_sample(ctx->quality, 1.0, &back, sc_now_ms(), &w->rng);
    }
    return 0;
}

void sc_observe_proxy_ns(const sc_config_t *cfg, sc_ns_config_t *ns)
{
    if (cfg->proxy_max_error_rate <= 0 || ns->threshold_explicit || ns->max_error_rate > 0)
        return; /* a fixed threshold, or a budget, chosen for this namespace */
    ns->max_error_rate = cfg->proxy_max_error_rate;
    if (ns->delivery == SC_DELIVERY_CALLER)
        ns->delivery = SC_DELIVERY_UPSTREAM;
}

void sc_observe_proxy_lookup_ns(const sc_config_t *cfg, sc_ns_config_t *ns)
{
    sc_observe_proxy_ns(cfg, ns);
    if (ns->delivery == SC_DELIVERY_UPSTREAM)
        ns->delivery = SC_DELIVERY_CALLER;
}
