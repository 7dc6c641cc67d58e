/* main.c -- the semcached binary: parse options, set up logging, run the
 * server (sc_server.h, server.c) until a signal, exit 0 after a clean drain.
 * A fleet node that stopped itself to re-bootstrap is created and run again
 * in the same process, on the port it had.
 * Not in the library: tests start the server through the same public API. */
#include <stdio.h>
#include <stdlib.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_index.h"
#include "sc_log.h"
#include "sc_server.h"

/* `git describe --always --dirty` at build time, from the Makefile. */
#ifndef SC_GIT_DESCRIBE
#define SC_GIT_DESCRIBE "unknown"
#endif

int main(int argc, char **argv)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    int rc = sc_config_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == SC_CONFIG_VERSION)
        sc_config_version(stdout, SC_GIT_DESCRIBE, sc_hnsw_simd());
    if (rc == SC_CONFIG_DONE || rc == SC_CONFIG_VERSION)
        return 0;
    sc_log_t log;
    if (rc || sc_log_init(&log, cfg.log_file, (sc_log_level_t)cfg.log_level)) {
        if (!rc)
            fprintf(stderr, "semcached: cannot open log file %s\n", cfg.log_file);
        sc_config_release(&cfg);
        return 2;
    }
    int again;
    do {
        sc_server_t *srv;
        if ((rc = sc_server_create(&srv, &cfg, &log))) {
            fprintf(stderr, "semcached: cannot start: %s\n", sc_strerror(rc));
            sc_log_close(&log);
            sc_config_release(&cfg);
            return 1;
        }
        rc = sc_server_run(srv);
        again = !rc && sc_server_restart_wanted(srv);
        if (again)
            cfg.port = sc_server_port(srv);
        sc_server_destroy(srv);
    } while (again);
    sc_log_close(&log);
    sc_config_release(&cfg); /* after the server: its copy of cfg shares the presets */
    return rc ? 1 : 0;
}
