/* fuzz_glove.c -- libFuzzer harness for the .scglove model loader
 * (embed/static.c, open_glove): any bytes are either refused with an error or
 * load a model that embeds text without reading outside the file (ASan checks
 * that; a loaded model's vectors must be finite). The bytes go to a memfd, so
 * the real path-based loader (stat, mmap) runs without touching the disk. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sc_embed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("scglove", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[256];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    sc_embedder_t *e;
    int rc = sc_embedder_open(&e, path, err, sizeof(err));
    close(fd); /* the loader keeps its own mapping */
    if (rc)
        return 0;
    static const char *const texts[] = {"the cat sat on the mat", "don't stop", "", "x y z 123"};
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = __builtin_strlen(texts[i]);
    uint32_t dim = sc_embedder_dim(e);
    float *out = malloc(4 * (size_t)dim * sizeof(float));
    if (out && sc_embedder_embed(e, texts, lens, 4, out, NULL) == 0)
        for (size_t i = 0; i < 4 * (size_t)dim; i++)
            if (!isfinite(out[i]))
                __builtin_trap();
    free(out);
    sc_embedder_close(e);
    return 0;
}
