/* observe.h -- free observations and the validation budget, as the lookup
 * (api_cache.c), the store (api_store.c) and the proxy (proxy_observe.c)
 * use them: near misses settled by the answer the miss gets anyway, paid
 * validations capped by what the namespace's hits save, and the settings
 * proxied traffic gets by default. See docs/quality.md. */
#ifndef SC_SERVER_OBSERVE_H
#define SC_SERVER_OBSERVE_H

#include "api.h"

/* Fills 'v' (zeroed first) for a validation of 'match' of entry
 * 'entry_key' by request 'req' (borrowed; copied). */
void sc_observe_validation(const sc_request_t *req, const uint8_t entry_key[SC_KEY_BYTES],
                           sc_match_t match, double similarity, sc_validation_t *v);
/* Is a miss whose best candidate was at 'similarity' worth observing in a
 * namespace with settings 'ns'? (an error budget, and at or above its
 * exploration floor) */
int sc_observe_wanted(const sc_ns_config_t *ns, double similarity);
/* A native near miss: registers an observation of candidate 'entry_key'
 * that the store following the lookup settles (api_store.c), at no model
 * call. Dropped silently when the pending table is half full. */
void sc_observe_near_miss(sc_worker_t *w, const sc_request_t *req,
                          const uint8_t entry_key[SC_KEY_BYTES], double similarity);
/* After 'v' was registered: may it be paid for? Hits always cost a model
 * call, explorations unless the caller's own store settles them (delivery
 * "caller"). Within the namespace's validation_budget, or through the
 * minimum rate (--validation-min-rate; 'drawn_rate' is the rate 'v' was
 * drawn at, 0 for a forced one), 1. Otherwise 0: 'v' is taken back (an
 * exploration becomes a free observation) and the pause counted. */
int sc_observe_may_pay(sc_worker_t *w, const sc_ns_config_t *ns, sc_validation_t *v,
                       double drawn_rate);
/* The settings proxied traffic uses in namespace 'ns' (read by the
 * caller): with neither an explicit threshold nor a max_error_rate, the
 * error budget --proxy-max-error-rate, validated through the proxy's
 * upstream (delivery "upstream"). */
void sc_observe_proxy_ns(const sc_config_t *cfg, sc_ns_config_t *ns);
/* The same for the proxy's lookup step: delivery "upstream" becomes
 * "caller", since the proxy itself re-infers a sampled hit (with the
 * client's request and credentials) once the validation id comes back. */
void sc_observe_proxy_lookup_ns(const sc_config_t *cfg, sc_ns_config_t *ns);

#endif
