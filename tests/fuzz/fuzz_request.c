/* fuzz_request.c -- libFuzzer harness for request decoding, validation,
 * canonicalization and key derivation (cache/request.c, request_fast.c): any
 * bytes, as a lookup and as a store body, must either decode or be refused
 * with SC_EINVAL and a message; decoding twice must give the same key; and a
 * lookup the fast path accepts must decode identically through jansson. */
#include <stdint.h>
#include <string.h>

#include "request_diff.h"
#include "sc_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[128];
    if (request_diff((const char *)data, size, why, sizeof(why)) < 0)
        __builtin_trap(); /* the fast path accepted something differently */
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
