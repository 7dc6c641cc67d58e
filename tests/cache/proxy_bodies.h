/* tests/cache/proxy_bodies.h -- what the proxy mapping tests share: request
 * bodies written with single quotes (turned into double quotes by dq(), so
 * the JSON stays readable in C strings) and the context they are keyed in. */
#ifndef SC_TEST_PROXY_BODIES_H
#define SC_TEST_PROXY_BODIES_H

#include <stdlib.h>
#include <string.h>

#include "sc_proxy_request.h"

static const sc_proxy_ctx_t ctx_t1 = {
    .ns = "default", .ns_len = 7, .tenant = "t1", .tenant_len = 2};

/* 's' with every ' turned into "; the caller frees. */
static char *dq(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

#endif
