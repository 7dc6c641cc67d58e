/* api_stats_internal.h -- what the two renderers of the process's figures
 * share: api_stats.c (the Prometheus text of /metrics, the health checks) and
 * api_stats_json.c (GET /v1/stats). Private to those files. */
#ifndef SC_SERVER_API_STATS_INTERNAL_H
#define SC_SERVER_API_STATS_INTERNAL_H

#include "api.h"

/* A walk over the namespaces' quality counts ('left' bounds the labels). */
typedef struct {
    sc_buf_t *b;
    int section; /* 0 counts, 1 rate, 2 upper, 3 semantic rate, 4 semantic upper */
    int left;
} quality_render_t;

/* The registry rows of this node's peers (and itself), at most this many
 * in the output: a fleet's size bounds the labels. */
#define FLEET_PEERS_SHOWN 64

#endif
