/* sc_prices.h -- what tokens cost: a price table (model name prefix ->
 * dollars per million input, cached input, cache-write and output tokens),
 * strictly validated, looked up by longest prefix, and the cost of a usage.
 * Money is integer: prices in micro-dollars per million tokens (exact for any
 * price quoted to 6 decimals), costs in pico-dollars (price x tokens, exact,
 * summable with atomic adds; a uint64 holds $18.4 million, and the arithmetic
 * saturates there). The default table is contrib/prices.json, compiled into
 * the library at build time so the binary always has one. */
#ifndef SC_PRICES_H
#define SC_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

/* One model's prices, in micro-dollars per million tokens ($2.50 / M =
 * 2500000). A field absent from the file takes the input price. */
typedef struct {
    uint64_t input, cached_input, cache_write, output;
} sc_price_t;

/* Tokens of one call. 'input' excludes cached and cache-write tokens: from
 * an OpenAI usage, input = prompt_tokens - prompt_tokens_details.cached_tokens;
 * from an Anthropic one, input_tokens as is (it already excludes them). */
typedef struct {
    uint64_t input, cached_input, cache_write, output;
} sc_usage_t;

typedef struct sc_prices_s sc_prices_t;

/* Parses a price table (the format of contrib/prices.json): an object with
 * "taken" (YYYY-MM-DD), "sources" (non-empty array of non-empty strings),
 * "models" (non-empty object: name -> {"input", "output" required;
 * "cached_input", "cache_write" optional; numbers >= 0 with at most 6
 * decimals, at most 1,000,000; optional "source", a non-empty string saying
 * where the row was read}), optional "note" and "currency" (must be
 * "USD"). Anything else (an unknown key at either level, a duplicate key, a
 * model name that is empty, longer than 128 bytes or has a space or
 * control character) refuses the whole table with SC_EINVAL and a sentence
 * naming the field in 'err' (e.g. "models.gpt-4o.output: must be a number
 * >= 0"). '*out' is owned by the caller (sc_prices_free). */
int sc_prices_parse(sc_prices_t **out, const char *json, size_t len, char *err, size_t err_cap);
/* sc_prices_parse of the file at 'path' (--prices FILE); errors name it. */
int sc_prices_load(sc_prices_t **out, const char *path, char *err, size_t err_cap);
/* The table compiled into the binary (contrib/prices.json at build time). */
int sc_prices_default(sc_prices_t **out, char *err, size_t err_cap);
void sc_prices_free(sc_prices_t *p);

/* The date the prices were taken ("2025-11-24"); valid until free. */
const char *sc_prices_taken(const sc_prices_t *p);
size_t sc_prices_count(const sc_prices_t *p);

/* The price of model 'model' ('len' bytes, need not be NUL-terminated):
 * the longest key that is a prefix of the name, compared without regard to
 * ASCII case, ending where the name ends or before one of '-', ':', '@' (so
 * "gpt-4o-2024-08-06" and "claude-sonnet-4@20250514" match "gpt-4o" and
 * "claude-sonnet-4", and "gpt-4" never matches "gpt-4o" or "gpt-4.1"). When
 * nothing matches and the name has a '/', the part after the last '/' is
 * tried ("openai/gpt-4o"). NULL for an unknown model: count its tokens, not
 * dollars. The price and '*key' (the matched key, may be NULL) live as long
 * as the table. */
const sc_price_t *sc_prices_lookup(const sc_prices_t *p, const char *model, size_t len,
                                   const char **key);

/* The cost of 'u' at price 'pr' in pico-dollars (10^-12 $), saturating at
 * UINT64_MAX. */
uint64_t sc_price_cost(const sc_price_t *pr, const sc_usage_t *u);
/* Lookup and cost in one: 0 with '*pico' set, or SC_ENOTFOUND (unknown
 * model, '*pico' = 0). */
int sc_prices_cost(const sc_prices_t *p, const char *model, size_t len, const sc_usage_t *u,
                   uint64_t *pico);

/* Pico-dollars as dollars (for Prometheus gauges and JSON numbers). */
double sc_pico_to_usd(uint64_t pico);
/* Pico-dollars as an exact decimal number of dollars with no trailing zeros
 * ("0.0000125", "3", "0") for the X-Semcached-Saved-Usd header. Returns the
 * length written, or SC_ETOOBIG when 'cap' (32 is always enough) is short. */
int sc_usd_format(uint64_t pico, char *buf, size_t cap);

/* The token usage of a response body: an OpenAI chat completion or
 * embeddings response ("usage": prompt_tokens, completion_tokens,
 * prompt_tokens_details.cached_tokens), a Responses API object (input_tokens,
 * output_tokens, input_tokens_details.cached_tokens) or an Anthropic message
 * (input_tokens, output_tokens, cache_read_input_tokens,
 * cache_creation_input_tokens), normalized as sc_usage_t says. SC_ENOTFOUND
 * when the body has no usage object, SC_EINVAL when it is not JSON or a
 * count is not a non-negative integer. */
int sc_usage_parse(const char *json, size_t len, sc_usage_t *out);

#endif
