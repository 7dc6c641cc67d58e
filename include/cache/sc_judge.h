/* sc_judge.h -- comparing two free-text answers by asking a model: the fixed
 * prompt (sc_judge_system_prompt, versioned) that asks whether the two
 * answers would satisfy the same request, the request body for each upstream
 * API, and a strict reading of the reply: exactly one word, SAME or
 * DIFFERENT, or no verdict at all. The judge's own usage is returned so its
 * cost can be counted as validation spend. */
#ifndef SC_JUDGE_H
#define SC_JUDGE_H

#include <stddef.h>

#include "sc_common.h"
#include "sc_prices.h"
#include "sc_quality.h"
#include "sc_upstream_api.h"

/* Changes whenever the prompt's wording does: verdicts of two versions are
 * not comparable. */
#define SC_JUDGE_PROMPT_VERSION "judge-v1"
/* Answers (and the request) are cut to this many bytes, at a UTF-8
 * boundary, with " [...]" appended. */
#define SC_JUDGE_MAX_TEXT 8192

/* The fixed instruction (the system message). Static. */
extern const char sc_judge_system_prompt[];

/* Appends to 'out' the JSON request body asking model 'model' for a verdict
 * on answers 'a' and 'b' (texts, not JSON) to request 'request' (the
 * semantic text of the request; may be NULL: it is then left out of the
 * prompt), for 'api': SC_API_OPENAI_CHAT (messages, temperature 0,
 * max_tokens 5), SC_API_OPENAI_RESPONSES (instructions, input, temperature 0,
 * max_output_tokens 16, the API's minimum) or SC_API_ANTHROPIC_MESSAGES
 * (system, messages, temperature 0, max_tokens 5). Reasoning models (names
 * o1, o3, o4 and gpt-5 with any suffix, after an optional "provider/") get
 * neither temperature nor a token limit: they accept only the default
 * temperature and spend hidden tokens before the answer. SC_EINVAL for
 * another api or an empty model name. */
int sc_judge_request(sc_buf_t *out, sc_api_t api, const char *model, const char *request,
                     size_t request_len, const char *a, size_t alen, const char *b, size_t blen);

/* Reads a verdict from the text of a reply: "SAME" -> SC_VERDICT_CORRECT,
 * "DIFFERENT" -> SC_VERDICT_WRONG, in any ASCII case, with leading and
 * trailing whitespace allowed and nothing else (no punctuation, no second
 * word, not both words); SC_EINVAL otherwise. */
int sc_judge_parse_text(const char *text, size_t len, sc_verdict_t *out);

/* Reads a verdict from a whole response body of 'api' (as for
 * sc_judge_request): the text of the first choice (chat), the output_text
 * parts of the message (responses) or the text blocks (messages), which must
 * be the verdict word and nothing else; a refusal, a tool call, a
 * content_filter stop or an error object is SC_EINVAL. '*usage' (may be
 * NULL) receives the judge call's tokens (zeros when the body has none), for
 * its cost (sc_price_cost), also when no verdict could be read. */
int sc_judge_parse(sc_api_t api, const char *body, size_t len, sc_verdict_t *out,
                   sc_usage_t *usage);

#endif
