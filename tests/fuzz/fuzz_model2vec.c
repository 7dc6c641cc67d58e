/* fuzz_model2vec.c -- libFuzzer harness for the model2vec directory loader
 * (embed/static.c, open_model2vec): the input is split into config.json,
 * tokenizer.json and model.safetensors (two little-endian u32 lengths, then
 * the three parts, the last taking the rest), written to a fresh directory,
 * and opened as a model. Any bytes are either refused with an error or load a
 * model that embeds text into finite vectors without reading outside its
 * files (ASan checks that). */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_embed_check.h"

static int put_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint32_t lc, lt;
    memcpy(&lc, data, 4);
    memcpy(&lt, data + 4, 4);
    data += 8;
    size -= 8;
    size_t nc = lc < size ? lc : size, nt = lt < size - nc ? lt : size - nc;
    char dir[] = "/tmp/sc-fuzz-m2v-XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    if (put_file(dir, "config.json", data, nc) == 0 &&
        put_file(dir, "tokenizer.json", data + nc, nt) == 0 &&
        put_file(dir, "model.safetensors", data + nc + nt, size - nc - nt) == 0) {
        char err[256];
        sc_embedder_t *e;
        if (sc_embedder_open(&e, dir, err, sizeof(err)) == 0) {
            fuzz_check_embedder(e);
            sc_embedder_close(e);
        }
    }
    char path[512];
    const char *names[] = {"config.json", "tokenizer.json", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
