/* fuzz_request.c -- libFuzzer harness for request decoding, validation,
 * canonicalization and key derivation (server/request.c): any bytes, as a
 * lookup and as a store body, must either decode or be refused with
 * SC_EINVAL and a message; decoding twice must give the same key. */
#include <stdint.h>
#include <string.h>

#include "sc_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int kind = SC_REQ_LOOKUP; kind <= SC_REQ_STORE; kind++) {
        sc_request_t a, b;
        char err[256];
        int rc =
            sc_request_parse(&a, (sc_req_kind_t)kind, (const char *)data, size, err, sizeof(err));
        if (rc) {
            if (rc != SC_EINVAL && rc != SC_ENOMEM)
                __builtin_trap();
            continue;
        }
        if (sc_request_parse(&b, (sc_req_kind_t)kind, (const char *)data, size, err, sizeof(err)) ||
            memcmp(a.key, b.key, sizeof(a.key)) || a.scope != b.scope)
            __builtin_trap(); /* keys must be deterministic */
        sc_request_free(&a);
        sc_request_free(&b);
    }
    return 0;
}
