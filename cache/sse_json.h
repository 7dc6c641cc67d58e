/* sse_json.h -- JSON helpers shared by the proxy's stream files (private to
 * cache/): usage extraction per API, compact dumping into an sc_buf, and a
 * byte-level scanner that finds and replaces members without re-encoding
 * anything else, so unknown fields survive verbatim. */
#ifndef SC_SSE_JSON_H
#define SC_SSE_JSON_H

#include <jansson.h>

#include "sc_sse.h"

/* Updates 'u' from an API usage object: only the counts present in it
 * (Anthropic's message_delta repeats some and omits others). */
void sc__usage_merge(sc_api_t api, const json_t *usage, sc_sse_usage_t *u);
/* Cuts 'b' back to 'len' bytes (an undo mark), keeping it NUL-terminated. */
void sc__buf_truncate(sc_buf_t *b, size_t len);
/* Appends 'j' as compact JSON (keys in their order). SC_ENOMEM or 0. */
int sc__json_dump(sc_buf_t *out, const json_t *j);
/* Parses 'len' bytes as a JSON object; NULL when they are not one. The
 * caller json_decref's. */
json_t *sc__json_object(const char *s, size_t len);
/* The string member 'key' of 'o', or NULL. */
const char *sc__json_str(const json_t *o, const char *key);

/* Returns the end of the JSON value starting at 's' (after leading white
 * space), or NULL when there is none well-formed before 'end'. Validates
 * structure only (not escapes or numbers in detail). */
const char *sc__json_skip(const char *s, const char *end);
/* Finds member 'key' of the object text [s, end): its value's raw bytes in
 * '*val'. 0, SC_ENOTFOUND, or SC_EINVAL when the text is not an object. */
int sc__json_member(const char *s, const char *end, const char *key, sc_slice_t *val);

/* One replacement for sc__json_rewrite: the value of member 'key' becomes
 * 'val' (raw JSON text, quotes included for a string). */
typedef struct {
    const char *key;
    sc_slice_t val;
} sc__json_repl_t;

/* Copies the object text [s, end) to 'out' with the values of the members
 * named in 'repl' replaced, at the top level and inside the top-level
 * members named 'nest' (NULL-ended, may be NULL) when those are objects.
 * Everything else is copied byte for byte. SC_EINVAL when the text is not an
 * object (nothing appended), SC_ENOMEM. */
int sc__json_rewrite(const char *s, const char *end, const sc__json_repl_t *repl, size_t n_repl,
                     const char *const *nest, sc_buf_t *out);

#endif
