/* quality_compare.c -- comparing a cached answer with a fresh one: the
 * comparable core of an answer (its text, or the canonical JSON of a
 * structure: JSON-mode text, tool calls without their ids) and the cheap
 * methods (exact, normalized). The methods that need more (semantic: the
 * embeddings; judge: a model) answer 2 here and the caller decides. */
#define _GNU_SOURCE
#include "sc_quality.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sc_request.h"

/* ---- comparing answers ------------------------------------------------- */

/* Tool-call ids are minted fresh by every completion; they say nothing about
 * the answer, so the structure is compared without them. */
static void drop_tool_call_ids(json_t *calls)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) if (json_is_object(c)) json_object_del(c, "id");
}

int sc_answer_core(const char *json, size_t len, char **text, char **structure)
{
    *text = *structure = NULL;
    json_error_t e;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY, &e);
    if (!v)
        return SC_EINVAL;
    json_t *t = v; /* borrowed view of the part that is the answer */
    if (json_is_object(t) && json_is_array(json_object_get(t, "choices"))) {
        json_t *msg = json_object_get(json_array_get(json_object_get(t, "choices"), 0), "message");
        json_t *calls = json_object_get(msg, "tool_calls");
        if (json_is_array(calls) && json_array_size(calls)) {
            drop_tool_call_ids(calls);
            t = calls;
        } else {
            t = json_object_get(msg, "content");
        }
    } else if (json_is_object(t) && json_is_string(json_object_get(t, "content"))) {
        t = json_object_get(t, "content");
    }
    int rc = 0;
    json_t *parsed = NULL;
    if (json_is_string(t)) {
        /* A JSON-mode answer is text that holds a structure. */
        const char *sv = json_string_value(t);
        size_t sl = json_string_length(t), o = 0;
        while (o < sl && (sv[o] == ' ' || sv[o] == '\n' || sv[o] == '\t' || sv[o] == '\r'))
            o++;
        if (o < sl && (sv[o] == '{' || sv[o] == '['))
            parsed = json_loadb(sv, sl, 0, &e);
        if (!parsed) {
            *text = strndup(sv, sl);
            rc = *text ? 0 : SC_ENOMEM;
            json_decref(v);
            return rc;
        }
        t = parsed;
    }
    sc_buf_t b = {0};
    if (t && sc_canonical_json(t, &b) == 0 && b.data) {
        *structure = b.data; /* the buffer's NUL-terminated storage */
    } else {
        sc_buf_free(&b);
        rc = SC_EINVAL;
    }
    json_decref(parsed);
    json_decref(v);
    return rc;
}

char *sc_answer_text(const char *json, size_t len)
{
    char *text, *structure;
    if (sc_answer_core(json, len, &text, &structure))
        return NULL;
    free(structure);
    return text;
}

/* Lower-case letters and digits only, single spaces between words. */
static char *fold(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    int space = 0;
    for (size_t i = 0; out && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c >= 0x80) {
            if (space && o)
                out[o++] = ' ';
            space = 0;
            out[o++] = (char)tolower(c);
        } else {
            space = 1;
        }
    }
    if (out)
        out[o] = '\0';
    return out;
}

int sc_answers_agree(const char *a, size_t alen, const char *b, size_t blen, const char *method)
{
    char *ta, *sa, *tb, *sb;
    int agree = 0;
    int ra = sc_answer_core(a, alen, &ta, &sa), rb = sc_answer_core(b, blen, &tb, &sb);
    if (ra || rb) {
        agree = 0; /* an answer that is not JSON cannot match anything */
    } else if (sa || sb) {
        agree = sa && sb && strcmp(sa, sb) == 0;
    } else if (strcmp(method, "exact") == 0) {
        agree = strcmp(ta, tb) == 0;
    } else {
        char *fa = fold(ta), *fb = fold(tb);
        agree = fa && fb && strcmp(fa, fb) == 0;
        if (!agree && fa && fb && (strcmp(method, "semantic") == 0 || strcmp(method, "judge") == 0))
            agree = 2; /* differ in words: the embeddings or the judge decide */
        free(fa);
        free(fb);
    }
    free(ta);
    free(sa);
    free(tb);
    free(sb);
    return agree;
}
