/* sc_strindex.h -- read-only string -> id index shared by the WordPiece
 * vocabulary and the GloVe word list: open addressing over XXH3, slots hold
 * id + 1 (0 = empty). The strings are borrowed (the caller keeps them alive
 * as long as the index); the first occurrence of a duplicate wins, as in HF.
 * Lookups are inline because they sit on the tokenizers' per-token path. */
#ifndef SC_STRINDEX_H
#define SC_STRINDEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct {
    const char *const *strs; /* borrowed: id -> NUL-terminated string */
    int32_t *slots;          /* owned */
    size_t mask;             /* slot count - 1 (a power of two) */
} sc_strindex_t;

/* Indexes strs[0..n-1]. Returns 0 or SC_ENOMEM. */
int sc_strindex_build(sc_strindex_t *ix, const char *const *strs, size_t n);
void sc_strindex_free(sc_strindex_t *ix);

/* The id of the 'len' bytes at 's' (not NUL-terminated), or -1. */
static inline int32_t sc_strindex_find(const sc_strindex_t *ix, const char *s, size_t len)
{
    for (size_t i = XXH3_64bits(s, len) & ix->mask;; i = (i + 1) & ix->mask) {
        int32_t v = ix->slots[i];
        if (!v)
            return -1;
        /* Compared byte by byte, stopping at the stored string's NUL: 's' may
         * hold NUL bytes, and a shorter string must not be read past its end. */
        const char *str = ix->strs[v - 1];
        size_t k = 0;
        while (k < len && str[k] && str[k] == s[k])
            k++;
        if (k == len && str[len] == '\0')
            return v - 1;
    }
}

#endif
