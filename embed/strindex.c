/* strindex.c -- builds the string -> id index of sc_strindex.h. The table is
 * kept at most half full so linear probing stays short. */
#include "sc_strindex.h"

#include <stdlib.h>

#include "sc_common.h"

int sc_strindex_build(sc_strindex_t *ix, const char *const *strs, size_t n)
{
    size_t n_slots = 16;
    while (n_slots < n * 2)
        n_slots *= 2;
    ix->strs = strs;
    ix->mask = n_slots - 1;
    ix->slots = calloc(n_slots, sizeof(int32_t));
    if (!ix->slots)
        return SC_ENOMEM;
    for (size_t id = 0; id < n; id++) {
        size_t len = strlen(strs[id]);
        if (sc_strindex_find(ix, strs[id], len) >= 0)
            continue; /* duplicate: the first id wins */
        size_t i = XXH3_64bits(strs[id], len) & ix->mask;
        while (ix->slots[i])
            i = (i + 1) & ix->mask;
        ix->slots[i] = (int32_t)id + 1;
    }
    return 0;
}

void sc_strindex_free(sc_strindex_t *ix)
{
    free(ix->slots);
    ix->slots = NULL;
}
