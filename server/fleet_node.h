/* fleet_node.h -- the server's side of fleet mode (docs/fleet.md): the
 * process start-up and shutdown steps around the cache layer's fleet
 * (sc_fleet.h), and the hooks through which the fleet keeps this process's
 * in-memory state in step with its peers. All no-ops without --redis. */
#ifndef SC_FLEET_NODE_H
#define SC_FLEET_NODE_H

#include "process.h"

/* Before the store opens: copies a peer's snapshot if the stream no longer
 * holds what this node needs (then drops the index snapshot in 'index_dir',
 * which describes the old store), creates the fleet and puts the (created,
 * not yet opened) store in fleet mode. '*joining' is set when a snapshot
 * was installed. */
int sc_fleet_node_prepare(sc_ctx_t *ctx, const char *index_dir, int *joining);
/* Once the port is bound: starts replicating, advertising this node's
 * snapshot URL (--fleet-advertise, else http://HOST:'port'). A node that has
 * applied nothing yet, or just installed a snapshot, joins: /readyz waits. */
int sc_fleet_node_start(sc_ctx_t *ctx, int port, int joining);
/* After the loops stopped (no more local writes): publishes what it can
 * for up to two seconds and stops following. Before the writer stops. */
void sc_fleet_node_stop(sc_ctx_t *ctx);
/* After the writer stopped. */
void sc_fleet_node_destroy(sc_ctx_t *ctx);

/* A namespace's stored settings ('doc', JSON) into the in-memory table; a
 * NULL 'doc' removes them. Used at start-up for every stored namespace and
 * by the fleet for a peer's change. 'arg' is the sc_ctx_t. */
void sc_fleet_node_ns_loaded(void *arg, const char *name, size_t len, const char *doc,
                             size_t doc_len);

#endif
