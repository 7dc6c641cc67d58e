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

#include "fuzz_embed_check.h"

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
    fuzz_check_embedder(e);
    sc_embedder_close(e);
    return 0;
}
