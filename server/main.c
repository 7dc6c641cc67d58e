/* main.c -- the semcached binary: parse options, set up logging, run the
 * server (sc_server.h, server.c) until a signal, exit 0 after a clean drain.
 * Not in the library: tests start the server through the same public API. */
#include <stdio.h>
#include <stdlib.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_log.h"
#include "sc_server.h"

int main(int argc, char **argv)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    int rc = sc_config_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == 1)
        return 0;
    if (rc)
        return 2;
    sc_log_t log;
    if (sc_log_init(&log, cfg.log_file, (sc_log_level_t)cfg.log_level)) {
        fprintf(stderr, "semcached: cannot open log file %s\n", cfg.log_file);
        return 2;
    }
    sc_server_t *srv;
    if ((rc = sc_server_create(&srv, &cfg, &log))) {
        fprintf(stderr, "semcached: cannot start: %s\n", sc_strerror(rc));
        return 1;
    }
    rc = sc_server_run(srv);
    sc_server_destroy(srv);
    sc_log_close(&log);
    return rc ? 1 : 0;
}
