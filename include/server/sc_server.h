/* sc_server.h -- the semcached HTTP server, the one public header of the
 * server layer: one libuv event loop per worker thread, all accepting on the
 * same port through SO_REUSEPORT, plus the store's writer thread. The main
 * thread only waits for signals. Everything else in server/ is private. */
#ifndef SC_SERVER_H
#define SC_SERVER_H

#include "sc_config.h"
#include "sc_log.h"

typedef struct sc_server_s sc_server_t;

/* Creates a server from 'cfg' (copied). 'log' must outlive the server. */
int sc_server_create(sc_server_t **out, const sc_config_t *cfg, sc_log_t *log);
/* Opens the store, binds, starts the workers, and blocks until SIGTERM/SIGINT
 * or sc_server_stop; then drains connections, commits and returns 0. */
int sc_server_run(sc_server_t *srv);
/* Asks a running server to shut down; callable from any thread. */
void sc_server_stop(sc_server_t *srv);
/* 1 when the server stopped itself to re-bootstrap (a fleet node whose
 * stream position was trimmed away, --fleet-auto-resync): the caller
 * destroys it and creates and runs it again with the same options, and the
 * start-up copies a peer's snapshot. */
int sc_server_restart_wanted(const sc_server_t *srv);
/* The port the server listened on (the one bound for port 0). */
int sc_server_port(const sc_server_t *srv);
void sc_server_destroy(sc_server_t *srv);

#endif
