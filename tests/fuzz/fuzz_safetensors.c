/* fuzz_safetensors.c -- libFuzzer harness for the safetensors reader
 * (embed/safetensors.c): any bytes are either refused or yield tensors whose
 * every element can be read without leaving the buffer (ASan checks that). */
#include <stdint.h>

#include "sc_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_safetensors_t *s;
    char err[256];
    if (sc_safetensors_parse(&s, data, size, err, sizeof(err)))
        return 0;
    volatile float sink = 0;
    for (size_t i = 0; i < sc_safetensors_count(s); i++) {
        const sc_tensor_t *t = sc_safetensors_at(s, i);
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size)
            __builtin_trap();
        for (uint64_t k = 0; k < t->count && k < 4096; k++)
            sink += sc_tensor_f32(t, k);
        if (t->count)
            sink += sc_tensor_f32(t, t->count - 1);
    }
    (void)sink;
    sc_safetensors_close(s);
    return 0;
}
