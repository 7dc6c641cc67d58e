/* fuzz_embed_check.h -- what the model-loader harnesses check of a model that
 * loaded from fuzzed bytes: it embeds sample texts (known words, unknown
 * ones, empty) into finite vectors. Trapping makes libFuzzer keep the input. */
#ifndef FUZZ_EMBED_CHECK_H
#define FUZZ_EMBED_CHECK_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sc_embed.h"

static inline void fuzz_check_embedder(sc_embedder_t *e)
{
    static const char *const texts[] = {"the cat sat on the mat", "don't stop", "",
                                        "unknownword ##x [UNK] 123"};
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(texts[i]);
    uint32_t dim = sc_embedder_dim(e);
    float *out = malloc(4 * (size_t)dim * sizeof(float));
    if (out && sc_embedder_embed(e, texts, lens, 4, out, NULL) == 0)
        for (size_t i = 0; i < 4 * (size_t)dim; i++)
            if (!isfinite(out[i]))
                __builtin_trap();
    free(out);
}

#endif
