/* sc_guards.h -- rules that refuse a semantic hit whose two texts are close
 * in embedding space but differ in a way embeddings are known to miss:
 *   negation    one text negates and the other does not;
 *   numbers     a number or a date in one text is not in the other;
 *   rare word   a content word of high IDF (rare in English) in one text has
 *               no counterpart in the other.
 * They work on the texts alone (any embedder benefits), are deterministic and
 * stateless, and are measured on QQP in docs/quality.md (false hits removed
 * against true hits lost). English only: other languages pass the negation
 * check and rely on the numbers and rare-word checks. */
#ifndef SC_GUARDS_H
#define SC_GUARDS_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_embed.h"

/* A word list in descending frequency (rank 0 = most frequent), for the
 * rare-word check. Immutable once made; share it between threads. */
typedef struct sc_guard_words_s sc_guard_words_t;

/* The built-in list: the most frequent words of English news and Wikipedia
 * text (the first SC_GUARD_WORDS_BUILTIN words of the GloVe vocabulary, in
 * its order; cache/guard_words.txt, compiled in). */
#define SC_GUARD_WORDS_BUILTIN 5000
int sc_guard_words_default(sc_guard_words_t **out);
/* A list from a file: one word per line, most frequent first, at most
 * 'max_words' read (0 = all). Words are matched case-folded. */
int sc_guard_words_load(sc_guard_words_t **out, const char *path, size_t max_words);
void sc_guard_words_free(sc_guard_words_t *w);
/* The rank of 'word' (case-folded, 'len' bytes), or -1 when not listed. */
int32_t sc_guard_words_rank(const sc_guard_words_t *w, const char *word, size_t len);

enum {
    SC_GUARD_NEGATION = 1,
    SC_GUARD_NUMBERS = 2,
    SC_GUARD_RARE_WORD = 4,
    SC_GUARD_ALL = 7,
};

typedef struct {
    unsigned checks; /* SC_GUARD_* bits to apply */
    /* rare word: a word of rank >= rare_rank, or not in the list, is rare
     * (0 = SC_GUARD_RARE_RANK). NULL 'words' skips the check. */
    const sc_guard_words_t *words;
    uint32_t rare_rank;
    /* Optional: word vectors for counterparts. A rare word also has a
     * counterpart when some word of the other text has a vector at cosine
     * >= counterpart_sim with its own (each word embedded alone). Only for
     * static embedders (GloVe, model2vec): it embeds every word of the other
     * text. NULL = spelling rules only. */
    const sc_embedder_t *embedder;
    double counterpart_sim;
} sc_guard_opts_t;

/* The rank cut chosen on QQP (docs/quality.md, "Guards"). */
#define SC_GUARD_RARE_RANK 5000

typedef struct {
    unsigned refused; /* SC_GUARD_* bits that fired; 0 = may be served */
    char detail[160]; /* the first reason, e.g. "number 2019 in one text only" */
    /* The highest rank among the rare words without a counterpart
     * (INT32_MAX: a word not in the list), -1 if none: the check would
     * fire for any rare_rank at or below it (for measuring cuts). */
    int32_t lone_rank;
} sc_guard_result_t;

/* Applies the checks of 'o' to texts 'a' and 'b' (UTF-8, 'alen' / 'blen'
 * bytes; invalid bytes separate words). Returns 1 when the hit must be
 * refused ('out->refused' says why), 0 when it may be served, or a negative
 * SC_E* (allocation, embedder failure). Tokens: runs of letters and of
 * digits after Unicode case folding and accent stripping; English
 * contractions' "n't" is a negation. Only the first 2,048 tokens of each
 * text are examined. Thread-safe for shared 'o'. */
int sc_guard_check(const char *a, size_t alen, const char *b, size_t blen, const sc_guard_opts_t *o,
                   sc_guard_result_t *out);

#endif
