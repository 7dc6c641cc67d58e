/* server.c -- the process: it opens the cache engine (store, namespaces,
 * indexes, quality, models, pools), starts one worker per event loop
 * (process.c) and wires each loop's HTTP side (http.c) to the API router
 * (api.h): the only file that knows all three. The indexes load on a thread
 * beside the loops. The main thread only waits for signals: SIGTERM/SIGINT
 * drain and exit, SIGHUP reopens the log. */
#define _GNU_SOURCE
#include "api.h"
#include "fleet_node.h"
#include "process.h"
#include "flight.h"
#include "proxy.h"
#include "sc_server.h"

#include <arpa/inet.h>
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct sc_server_s {
    sc_ctx_t ctx;     /* what the handlers see; first member */
    pthread_t loader; /* loads or rebuilds the indexes at start */
    int loader_started;
    char index_dir[1100]; /* snapshots of the indexes */
    int bound_port;       /* the port actually bound */
    int fleet_joining;    /* a peer's snapshot was installed at start-up */
    uv_loop_t main_loop;  /* signals only */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t main_wakeup; /* sc_server_stop from any thread */
    uv_timer_t resync_timer; /* fleet: watches for a stream trimmed past this node */
    int restart;             /* it was: stopped to re-bootstrap (sc_server_restart_wanted) */
};

/* ---- the vector indexes ------------------------------------------------ */

static void index_on_put(void *arg, const uint8_t key[SC_KEY_BYTES], uint64_t scope,
                         const float *vec, uint32_t dim)
{
    sc_ctx_t *ctx = arg;
    int rc = sc_scopes_add(ctx->scopes, scope, sc_store_label(key), vec, dim);
    if (rc)
        sc_log(ctx->log, SC_ERROR, "index: add failed: %s", sc_strerror(rc));
}

static void index_on_delete(void *arg, const uint8_t key[SC_KEY_BYTES], uint64_t scope,
                            uint32_t dim)
{
    sc_ctx_t *ctx = arg;
    (void)dim;
    sc_scopes_remove(ctx->scopes, scope, sc_store_label(key)); /* absent is fine */
}

static int rebuild_one(void *arg, const uint8_t key[SC_KEY_BYTES], uint64_t scope, const float *vec,
                       uint32_t dim)
{
    sc_ctx_t *ctx = arg;
    sc_scopes_load_add(ctx->scopes, scope, sc_store_label(key), vec, dim);
    return atomic_load(&ctx->stopping); /* stop scanning on shutdown */
}

/* What the snapshot's load result means for the indexes. */
static sc_index_source_t snapshot_outcome(int rc)
{
    return rc == 0              ? SC_INDEX_SNAPSHOT
           : rc == SC_ENOTFOUND ? SC_INDEX_REBUILT
           : rc == SC_ECONFLICT ? SC_INDEX_REBUILT_STALE
                                : SC_INDEX_REBUILT_DAMAGED;
}

static const char *index_story(sc_index_source_t s)
{
    switch (s) {
    case SC_INDEX_SNAPSHOT:
        return "loaded from snapshot";
    case SC_INDEX_REBUILT:
        return "rebuilt from LMDB (no snapshot)";
    case SC_INDEX_REBUILT_STALE:
        return "rebuilt from LMDB (snapshot is stale)";
    case SC_INDEX_REBUILT_DAMAGED:
        return "rebuilt from LMDB (snapshot is damaged)";
    default:
        return "rebuild from LMDB failed";
    }
}

/* Loads the index snapshot if it matches LMDB, else rebuilds from LMDB. Runs
 * beside the event loops: exact lookups are served meanwhile, /readyz says
 * 503, and changes committed meanwhile are replayed at the end. */
static void *loader_main(void *arg)
{
    sc_server_t *srv = arg;
    sc_ctx_t *ctx = &srv->ctx;
    pthread_setname_np(pthread_self(), "sc-loader");
    uint64_t t0 = sc_mono_ns();
    uint64_t txnid = sc_store_txnid_at_open(ctx->store);
    sc_index_source_t source =
        snapshot_outcome(sc_scopes_load_snapshot(ctx->scopes, srv->index_dir, txnid));
    if (source != SC_INDEX_SNAPSHOT) {
        int rc = sc_store_scan_vectors(ctx->store, sc_now_ms(), rebuild_one, ctx);
        if (rc) {
            sc_log(ctx->log, SC_ERROR, "index: rebuild scan failed: %s", sc_strerror(rc));
            source = SC_INDEX_REBUILD_FAILED;
        }
    }
    if (atomic_load(&ctx->stopping))
        return NULL; /* interrupted: stay "not ready" so no partial snapshot is written */
    sc_scopes_finish_load(ctx->scopes);
    ctx->index_source = source;
    ctx->index_load_s = (double)(sc_mono_ns() - t0) / 1e9;
    sc_scopes_stats_t st;
    sc_scopes_stats(ctx->scopes, &st);
    sc_log(ctx->log, SC_INFO, "index: %s in %.2f s: %llu vectors in %llu scopes",
           index_story(source), ctx->index_load_s,
           (unsigned long long)(st.vectors_flat + st.vectors_hnsw),
           (unsigned long long)(st.scopes_flat + st.scopes_hnsw));
    atomic_store(&ctx->ready, 1); /* publishes index_source and index_load_s */
    return NULL;
}

int sc_server_create(sc_server_t **out, const sc_config_t *cfg, sc_log_t *log)
{
    sc_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return SC_ENOMEM;
    sc_ctx_t *ctx = &srv->ctx;
    ctx->cfg = *cfg;
    ctx->log = log;
    ctx->n_workers = cfg->threads > 0 ? (int)cfg->threads : (int)uv_available_parallelism();
    if (ctx->n_workers < 1)
        ctx->n_workers = 1;
    int rc =
        sc_metrics_create(&ctx->metrics, ctx->n_workers, SC_EP_COUNT, (int)cfg->max_label_values);
    if (rc) {
        free(srv);
        return rc;
    }
    char err[512] = "";
    rc = cfg->prices[0] ? sc_prices_load(&ctx->prices, cfg->prices, err, sizeof(err))
                        : sc_prices_default(&ctx->prices, err, sizeof(err));
    if (rc)
        sc_log(log, SC_ERROR, "--prices: %s", err[0] ? err : sc_strerror(rc));
    ctx->workers = rc ? NULL : calloc((size_t)ctx->n_workers, sizeof(sc_worker_t));
    if (!ctx->workers) {
        sc_prices_free(ctx->prices);
        sc_metrics_destroy(ctx->metrics);
        free(srv);
        return rc ? rc : SC_ENOMEM;
    }
    *out = srv;
    return 0;
}

/* Binds a socket to 'host':'port'; with 'reuseport' (SO_REUSEPORT) every
 * worker can own one. */
static int bind_socket(const char *host, int port, int reuseport, int *out_fd, int *bound_port)
{
    struct addrinfo hints = {0}, *res;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int grc = getaddrinfo(host, portstr, &hints, &res);
    if (grc)
        return SC_EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
        bind(fd, res->ai_addr, res->ai_addrlen)) {
        int e = -errno;
        close(fd);
        freeaddrinfo(res);
        return e;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    *out_fd = fd;
    return 0;
}

/* ---- signals and stopping ---------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    sc_server_t *srv = sig->data;
    if (signum == SIGHUP) {
        int rc = sc_log_reopen(srv->ctx.log);
        sc_log(srv->ctx.log, rc ? SC_ERROR : SC_INFO, "SIGHUP: log reopened%s%s", rc ? ": " : "",
               rc ? sc_strerror(rc) : "");
        return;
    }
    sc_log(srv->ctx.log, SC_INFO, "signal %d: draining and shutting down", signum);
    sc_server_stop(srv);
}

static void close_main_handles(sc_server_t *srv)
{
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->main_wakeup, NULL);
    uv_close((uv_handle_t *)&srv->resync_timer, NULL);
}

/* A fleet node whose last applied record lies before what the stream still
 * holds missed changes it can no longer read. With --fleet-auto-resync it
 * stops itself (a drain, as on SIGTERM: every acknowledged store committed,
 * the outbox published) so that main() creates it again, and the start-up
 * bootstrap copies a peer's snapshot, as a Redis replica resyncs. */
static void on_resync_check(uv_timer_t *t)
{
    sc_server_t *srv = t->data;
    sc_fleet_stats_t st;
    if (!srv->ctx.fleet || atomic_load(&srv->ctx.stopping))
        return;
    sc_fleet_stats(srv->ctx.fleet, &st);
    if (!st.resync_needed)
        return;
    sc_log(srv->ctx.log, SC_WARN,
           "fleet: this node missed changes trimmed from the stream; draining to copy a peer's "
           "snapshot and serve again (--fleet-auto-resync)");
    srv->restart = 1;
    uv_timer_stop(t);
    sc_server_stop(srv);
}

int sc_server_restart_wanted(const sc_server_t *srv)
{
    return srv->restart;
}

int sc_server_port(const sc_server_t *srv)
{
    return srv->bound_port;
}

static void on_main_wakeup(uv_async_t *a)
{
    sc_server_t *srv = a->data;
    if (!atomic_load(&srv->ctx.stopping))
        return;
    for (int i = 0; i < srv->ctx.n_workers; i++)
        sc_worker_wake(&srv->ctx.workers[i]);
    close_main_handles(srv);
}

void sc_server_stop(sc_server_t *srv)
{
    atomic_store(&srv->ctx.stopping, 1);
    uv_async_send(&srv->main_wakeup);
}

/* ---- start-up -------------------------------------------------------------- */

/* The config file's [namespace NAME] sections, applied as PUTs once the
 * store and the models are open; a preset the API would refuse stops the
 * start, naming its section's line. */
static int apply_presets(sc_ctx_t *ctx)
{
    const sc_config_t *cfg = &ctx->cfg;
    for (size_t i = 0; i < cfg->n_ns_presets; i++) {
        const sc_config_ns_t *p = &cfg->ns_presets[i];
        sc_buf_t b = {0};
        char err[768];
        json_t *j = NULL;
        int rc = sc_config_ns_json(p, &b);
        if (!rc && !(j = json_loadb(b.data, b.len, 0, NULL)))
            rc = SC_ENOMEM;
        if (rc)
            snprintf(err, sizeof(err), "%s", sc_strerror(rc));
        else
            rc = sc_api_ns_preset(ctx, p->name, j, err, sizeof(err));
        json_decref(j);
        sc_buf_free(&b);
        if (rc) {
            sc_log(ctx->log, SC_ERROR, "%s:%d: [namespace %s]: %s", cfg->config_file, p->line,
                   p->name, err);
            return SC_EINVAL;
        }
    }
    return 0;
}

/* The store, namespaces, indexes, quality, validation client, search pool,
 * models: everything the loops use, in dependency order. */
static int open_engine(sc_server_t *srv)
{
    sc_ctx_t *ctx = &srv->ctx;
    const sc_config_t *cfg = &ctx->cfg;
    int rc;
    /* OpenBLAS parallelises each call by default, and its helper threads
     * spin (sched_yield) between calls: with BLAS called from the event
     * loops (flat index) and the embedding workers, that burns a core the
     * loops need. Measured: a helper at 90 % of a core on a text replay. */
    openblas_set_num_threads((int)cfg->blas_threads);
    sc_scopes_config_t icfg;
    sc_scopes_config_from(&icfg, cfg);
    snprintf(srv->index_dir, sizeof(srv->index_dir), "%s/index", cfg->data_dir);
    sc_quality_opts_t qopts = {
        .max_pending = (size_t)cfg->validation_pending,
        .first_n = (uint32_t)cfg->validate_first,
        .budget_confidence = cfg->budget_confidence,
        .budget_min_scope_obs = (uint32_t)cfg->budget_min_scope_obs,
        .budget_max_scopes = (size_t)cfg->budget_max_scopes,
        .pending_timeout_ms = (uint64_t)cfg->validation_timeout_s * 1000u,
    };
    if ((rc = sc_store_create(&ctx->store, cfg, ctx->log)) ||
        (rc = sc_fleet_node_prepare(ctx, srv->index_dir, &srv->fleet_joining)) ||
        (rc = sc_namespaces_create(&ctx->namespaces, cfg)) ||
        (rc = sc_scopes_create(&ctx->scopes, &icfg, ctx->log)) ||
        (rc = sc_quality_create(&ctx->quality, &qopts)))
        return rc;
    if (cfg->upstream_url[0] || cfg->webhook_url[0]) {
        const char *k = getenv(cfg->upstream_key_env);
        snprintf(ctx->upstream_key, sizeof(ctx->upstream_key), "%s", k ? k : "");
        k = getenv(cfg->webhook_key_env);
        snprintf(ctx->webhook_key, sizeof(ctx->webhook_key), "%s", k ? k : "");
        if ((rc = sc_http_client_create(&ctx->vclient, (int)cfg->upstream_concurrency,
                                        (size_t)cfg->upstream_queue, ctx->log)))
            return rc;
    }
    sc_store_listener_t listener = {index_on_put, index_on_delete, ctx};
    sc_store_set_listener(ctx->store, &listener);
    if ((rc = sc_store_open(ctx->store, cfg->data_dir))) {
        sc_log(ctx->log, SC_ERROR, "cannot open the store in %s: %s", cfg->data_dir,
               sc_strerror(rc));
        return rc;
    }
    if ((rc = sc_store_ns_foreach(ctx->store, sc_fleet_node_ns_loaded, ctx)))
        return rc;
    if ((rc = sc_proxy_create(&ctx->proxy, ctx)))
        return rc;
    if ((rc = sc_flight_create(&ctx->flight, (int)cfg->max_label_values)))
        return rc;
    int search_threads = cfg->search_threads ? (int)cfg->search_threads : ctx->n_workers;
    if (search_threads > 0 &&
        (rc = sc_search_pool_create(&ctx->search_pool, ctx->store, search_threads,
                                    (size_t)cfg->search_queue)))
        return rc;
    if ((rc = sc_models_open(&ctx->models, cfg, ctx->log)))
        return rc;
    if (ctx->models.n && (rc = sc_vec_cache_create(&ctx->vec_cache, 4096, 300000)))
        return rc;
    return apply_presets(ctx);
}

static int start_main_loop(sc_server_t *srv)
{
    int rc;
    if ((rc = uv_loop_init(&srv->main_loop)))
        return rc;
    uv_async_init(&srv->main_loop, &srv->main_wakeup, on_main_wakeup);
    srv->main_wakeup.data = srv;
    uv_signal_t *sigs[] = {&srv->sig_term, &srv->sig_int, &srv->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&srv->main_loop, sigs[i]);
        sigs[i]->data = srv;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    uv_timer_init(&srv->main_loop, &srv->resync_timer);
    srv->resync_timer.data = srv;
    if (srv->ctx.cfg.fleet_auto_resync && srv->ctx.cfg.redis[0])
        uv_timer_start(&srv->resync_timer, on_resync_check, 1000, 1000);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* The loops' sockets share the port through SO_REUSEPORT, which would just as
 * well let a second semcached (another data directory, another cache) join
 * it, and the kernel would split connections between the two. So before
 * anything else a probe binds the address without SO_REUSEPORT, which fails
 * while any socket is bound there, as nginx and Redis refuse. Port 0 (any
 * free port) needs no probe. */
static int probe_address(const sc_ctx_t *ctx)
{
    int fd, port;
    if (ctx->cfg.port == 0)
        return 0;
    int rc = bind_socket(ctx->cfg.host, (int)ctx->cfg.port, 0, &fd, &port);
    if (rc == -EADDRINUSE) {
        sc_log(ctx->log, SC_ERROR,
               "cannot listen on %s:%lld: address already in use (another "
               "process listens there; semcached does not share a port)",
               ctx->cfg.host, (long long)ctx->cfg.port);
        return rc;
    }
    if (rc == 0)
        close(fd);
    return rc == SC_EINVAL ? 0 : rc; /* an unresolvable host is reported by the real bind */
}

/* Binds worker 'i''s socket (port 0 means "any free port": the first worker
 * picks it, the rest join) and sets the worker up with the API as handler. */
static int start_worker(sc_server_t *srv, int i)
{
    sc_ctx_t *ctx = &srv->ctx;
    sc_worker_t *w = &ctx->workers[i];
    int fd = -1, port = i == 0 ? (int)ctx->cfg.port : srv->bound_port;
    int rc = bind_socket(ctx->cfg.host, port, 1, &fd, &srv->bound_port);
    if (rc)
        return rc;
    sc_http_handler_t h = {sc_api_on_request, sc_api_on_response, w, sc_api_on_refused};
    return sc_worker_init(w, ctx, i, fd, &h);
}

/* Commits what is queued, then snapshots the indexes at that exact LMDB
 * transaction so the next start can skip the rebuild. */
static void stop_engine(sc_server_t *srv)
{
    sc_ctx_t *ctx = &srv->ctx;
    /* Validation calls still in flight are dropped; their writes (and the
     * verdicts already reached) go in with the final commit. */
    sc_http_client_destroy(ctx->vclient);
    ctx->vclient = NULL;
    /* The loops have stopped, and each waited for its proxied calls. */
    sc_proxy_destroy(ctx->proxy);
    ctx->proxy = NULL;
    sc_store_stop_writer(ctx->store);
    if (srv->loader_started) {
        pthread_join(srv->loader, NULL);
        srv->loader_started = 0;
    }
    if (sc_scopes_ready(ctx->scopes)) {
        sc_scopes_quiesce(ctx->scopes);
        uint64_t t0 = sc_mono_ns();
        int rc = sc_scopes_save(ctx->scopes, srv->index_dir, sc_store_txnid(ctx->store));
        if (rc)
            sc_log(ctx->log, SC_ERROR, "index: snapshot failed: %s", sc_strerror(rc));
        else
            sc_log(ctx->log, SC_INFO, "index: snapshot written in %.2f s",
                   (double)(sc_mono_ns() - t0) / 1e9);
    }
}

int sc_server_run(sc_server_t *srv)
{
    sc_ctx_t *ctx = &srv->ctx;
    int rc, started = 0;
    ctx->started_ms = sc_now_ms();
    if ((rc = probe_address(ctx)) || (rc = open_engine(srv)))
        return rc;
    if ((rc = pthread_create(&srv->loader, NULL, loader_main, srv)))
        return -rc;
    srv->loader_started = 1;
    if ((rc = start_main_loop(srv)))
        return rc;
    for (int i = 0; i < ctx->n_workers; i++) {
        if ((rc = start_worker(srv, i))) {
            sc_log(ctx->log, SC_ERROR, "cannot listen on %s:%lld: %s", ctx->cfg.host,
                   (long long)ctx->cfg.port,
                   rc > -4096 && rc < 0 ? uv_strerror(rc) : sc_strerror(rc));
            goto stop;
        }
    }
    for (int i = 0; i < ctx->n_workers; i++) {
        if ((rc =
                 pthread_create(&ctx->workers[i].thread, NULL, sc_worker_main, &ctx->workers[i]))) {
            rc = -rc;
            goto stop;
        }
        started++;
    }
    sc_log(ctx->log, SC_INFO, "semcached listening on %s:%d with %d event loops, data in %s",
           ctx->cfg.host, srv->bound_port, ctx->n_workers, ctx->cfg.data_dir);
    if ((rc = sc_fleet_node_start(ctx, srv->bound_port, srv->fleet_joining)))
        goto stop;
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    rc = 0;
stop:
    atomic_store(&ctx->stopping, 1);
    for (int i = 0; i < started; i++) {
        sc_worker_wake(&ctx->workers[i]);
        pthread_join(ctx->workers[i].thread, NULL);
    }
    for (int i = started; i < ctx->n_workers; i++) /* never ran */
        sc_worker_abandon(&ctx->workers[i]);
    if (!uv_is_closing((uv_handle_t *)&srv->main_wakeup))
        close_main_handles(srv);
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->main_loop);
    sc_fleet_node_stop(ctx); /* the loops are gone: publish the last changes */
    stop_engine(srv);
    sc_log(ctx->log, SC_INFO, "semcached stopped");
    return rc;
}

void sc_server_destroy(sc_server_t *srv)
{
    if (!srv)
        return;
    sc_ctx_t *ctx = &srv->ctx;
    for (int i = 0; i < ctx->n_workers; i++)
        sc_worker_destroy(&ctx->workers[i]);
    if (srv->loader_started) {
        atomic_store(&ctx->stopping, 1);
        pthread_join(srv->loader, NULL);
    }
    /* The writer commits everything still queued before the store closes. */
    sc_http_client_destroy(ctx->vclient); /* if sc_server_run failed before stopping it */
    sc_proxy_destroy(ctx->proxy);
    sc_flight_destroy(ctx->flight); /* after the loops: no follower is left */
    ctx->flight = NULL;
    sc_search_pool_destroy(ctx->search_pool); /* after the loops: none is waiting on them */
    sc_models_close(&ctx->models);
    sc_vec_cache_destroy(ctx->vec_cache);
    if (ctx->store)
        sc_store_stop_writer(ctx->store); /* its hooks call the fleet until it stops */
    sc_fleet_node_destroy(ctx);
    sc_store_destroy(ctx->store);
    sc_scopes_destroy(ctx->scopes);
    sc_namespaces_destroy(ctx->namespaces);
    sc_quality_destroy(ctx->quality);
    sc_metrics_destroy(ctx->metrics);
    sc_prices_free(ctx->prices);
    free(ctx->workers);
    free(srv);
}
