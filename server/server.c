/* server.c -- worker threads, listeners and shutdown.
 * Each worker binds its own socket to the shared port with SO_REUSEPORT, so
 * the kernel spreads connections across loops with no accept lock; a loop
 * that got two more connections than another hands the new one over (the
 * kernel's hash is uneven, and a loop is the unit of CPU). Store
 * writes complete on the writer thread and come back to the owning loop
 * through a mutex-guarded list and a uv_async wake-up. The main thread only
 * waits for signals: SIGTERM/SIGINT drain and exit, SIGHUP reopens the log. */
#define _GNU_SOURCE
#include "server_internal.h"
#include "sc_httpclient.h"
#include "sc_veccache.h"
#include "searchpool.h"

#include <arpa/inet.h>
#include <cblas.h>
#include <jansson.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void sc__conn_accept(sc_worker_t *w, uv_stream_t *listener);
void sc__conn_shutdown_all(sc_worker_t *w);

/* ---- the vector indexes ------------------------------------------------ */

static void index_on_put(void *ctx, const uint8_t key[SC_STORE_KEY_BYTES], uint64_t scope,
                         const float *vec, uint32_t dim)
{
    sc_server_t *srv = ctx;
    int rc = sc_scopes_add(srv->scopes, scope, sc_store_label(key), vec, dim);
    if (rc)
        sc_log(srv->log, SC_ERROR, "index: add failed: %s", sc_strerror(rc));
}

static void index_on_delete(void *ctx, const uint8_t key[SC_STORE_KEY_BYTES], uint64_t scope,
                            uint32_t dim)
{
    sc_server_t *srv = ctx;
    (void)dim;
    sc_scopes_remove(srv->scopes, scope, sc_store_label(key)); /* absent is fine */
}

static int rebuild_one(void *ctx, const uint8_t key[SC_STORE_KEY_BYTES], uint64_t scope,
                       const float *vec, uint32_t dim)
{
    sc_server_t *srv = ctx;
    sc_scopes_load_add(srv->scopes, scope, sc_store_label(key), vec, dim);
    return atomic_load(&srv->stopping); /* stop scanning on shutdown */
}

/* Loads the index snapshot if it matches LMDB, else rebuilds from LMDB. Runs
 * beside the event loops: exact lookups are served meanwhile, /readyz says
 * 503, and changes committed meanwhile are replayed at the end. */
static void *loader_main(void *arg)
{
    sc_server_t *srv = arg;
    pthread_setname_np(pthread_self(), "sc-loader");
    uint64_t t0 = sc_mono_ns();
    uint64_t txnid = sc_store_txnid_at_open(srv->store);
    int rc = sc_scopes_load_snapshot(srv->scopes, srv->index_dir, txnid);
    const char *how = "loaded from snapshot";
    if (rc) {
        how = rc == SC_ENOTFOUND   ? "rebuilt from LMDB (no snapshot)"
              : rc == SC_ECONFLICT ? "rebuilt from LMDB (snapshot is stale)"
                                   : "rebuilt from LMDB (snapshot is damaged)";
        rc = sc_store_scan_vectors(srv->store, sc_now_ms(), rebuild_one, srv);
        if (rc)
            sc_log(srv->log, SC_ERROR, "index: rebuild scan failed: %s", sc_strerror(rc));
    }
    if (atomic_load(&srv->stopping))
        return NULL; /* interrupted: stay "not ready" so no partial snapshot is written */
    sc_scopes_finish_load(srv->scopes);
    srv->index_source = rc ? "rebuild_failed" : how[0] == 'l' ? "snapshot"
                        : strstr(how, "stale") ? "rebuild_stale_snapshot"
                        : strstr(how, "damaged") ? "rebuild_damaged_snapshot" : "rebuild";
    srv->index_load_s = (double)(sc_mono_ns() - t0) / 1e9;
    sc_scopes_stats_t st;
    sc_scopes_stats(srv->scopes, &st);
    sc_log(srv->log, SC_INFO, "index: %s in %.2f s: %llu vectors in %llu scopes", how,
           (double)(sc_mono_ns() - t0) / 1e9,
           (unsigned long long)(st.vectors_flat + st.vectors_hnsw),
           (unsigned long long)(st.scopes_flat + st.scopes_hnsw));
    atomic_store(&srv->ready, 1); /* publishes index_source and index_load_s */
    return NULL;
}

static void load_namespace(void *ctx, const char *name, size_t len, const char *doc, size_t doc_len)
{
    sc_server_t *srv = ctx;
    json_error_t e;
    json_t *j = json_loadb(doc, doc_len, 0, &e);
    sc_ns_config_t c;
    char err[256];
    sc_ns_config_defaults(&srv->cfg, &c);
    if (j && sc_ns_config_apply_json(&c, j, err, sizeof(err)) == 0) {
        c.configured = 1;
        sc_namespaces_set(srv->namespaces, name, len, &c);
    } else {
        sc_log(srv->log, SC_ERROR, "namespace %.*s: stored settings are unreadable; using defaults",
               (int)len, name);
    }
    json_decref(j);
}

/* "glove-100d" names the default model in the model cache (`make model`). */
static void resolve_model(const char *spec, char *out, size_t cap)
{
    if (strcmp(spec, "glove-100d") == 0) {
        const char *cache = getenv("SEMCACHED_MODEL_CACHE");
        const char *home = getenv("HOME");
        if (cache && *cache)
            snprintf(out, cap, "%s/glove-100d.scglove", cache);
        else
            snprintf(out, cap, "%s/.cache/semcached/glove-100d.scglove", home ? home : ".");
    } else {
        snprintf(out, cap, "%s", spec);
    }
}

const sc_model_t *sc_server_model_named(const sc_server_t *srv, const char *name)
{
    if (!name || !*name)
        name = "default";
    for (int i = 0; i < srv->n_models; i++)
        if (strcmp(srv->models[i].name, name) == 0)
            return &srv->models[i];
    return NULL;
}

const sc_model_t *sc_server_model(const sc_server_t *srv, const sc_ns_config_t *ns)
{
    return sc_server_model_named(srv, ns->model);
}

/* Loads model 'spec' as 'name' with its own embedding workers. */
static int open_model(sc_server_t *srv, const char *name, const char *spec)
{
    char path[2048], err[512];
    resolve_model(spec, path, sizeof(path));
    if (srv->n_models >= SC_MAX_MODELS || strlen(name) >= sizeof(srv->models[0].name) ||
        sc_server_model_named(srv, name)) {
        sc_log(srv->log, SC_ERROR, "model %s: too many models (%d), a name too long or twice",
               name, SC_MAX_MODELS);
        return SC_EINVAL;
    }
    sc_model_t *m = &srv->models[srv->n_models];
    uint64_t t0 = sc_mono_ns();
    int rc;
    if (strncmp(path, "remote:", 7) == 0)
        rc = sc_embedder_open_remote(&m->embedder, path + 7, srv->cfg.embed_remote_model,
                                     getenv("SEMCACHED_EMBED_API_KEY"), (long)srv->cfg.embed_timeout_ms,
                                     (int)srv->cfg.embed_remote_concurrency, srv->log, err, sizeof(err));
    else
        rc = sc_embedder_open(&m->embedder, path, err, sizeof(err));
    if (rc) {
        sc_log(srv->log, SC_ERROR, "cannot load the model %s: %s (run `make model`?)", path, err);
        return rc;
    }
    sc_embedder_set_threads(m->embedder, (int)srv->cfg.embed_intra_threads);
    rc = sc_embed_pool_create(&m->pool, m->embedder, (int)srv->cfg.embed_threads,
                              (size_t)srv->cfg.embed_batch, (uint64_t)srv->cfg.embed_wait_us,
                              (size_t)srv->cfg.embed_queue);
    if (rc) {
        sc_embedder_close(m->embedder);
        m->embedder = NULL;
        return rc;
    }
    snprintf(m->name, sizeof(m->name), "%s", name);
    srv->n_models++;
    sc_log(srv->log, SC_INFO, "model %s (%s) loaded in %.2f s: %u dimensions", name,
           sc_embedder_identity(m->embedder), (double)(sc_mono_ns() - t0) / 1e9,
           sc_embedder_dim(m->embedder));
    return 0;
}

/* --model as "default", then each NAME=SPEC of --models. */
static int open_models(sc_server_t *srv)
{
    int rc = 0;
    if (srv->cfg.model[0] && (rc = open_model(srv, "default", srv->cfg.model)))
        return rc;
    char list[sizeof(srv->cfg.models)], *save = NULL;
    snprintf(list, sizeof(list), "%s", srv->cfg.models);
    for (char *item = strtok_r(list, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item || !eq[1]) {
            sc_log(srv->log, SC_ERROR, "--models: '%s' is not NAME=SPEC", item);
            return SC_EINVAL;
        }
        *eq = '\0';
        rc = open_model(srv, item, eq + 1);
    }
    if (!rc && srv->n_models)
        rc = sc_vec_cache_create(&srv->vec_cache, 4096, 300000);
    return rc;
}

int sc_server_create(sc_server_t **out, const sc_config_t *cfg, sc_log_t *log)
{
    sc_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return SC_ENOMEM;
    srv->cfg = *cfg;
    srv->log = log;
    srv->n_workers = cfg->threads > 0 ? (int)cfg->threads : (int)uv_available_parallelism();
    if (srv->n_workers < 1)
        srv->n_workers = 1;
    int rc = sc_metrics_create(&srv->metrics, srv->n_workers, (int)cfg->max_label_values);
    if (rc) {
        free(srv);
        return rc;
    }
    srv->workers = calloc((size_t)srv->n_workers, sizeof(sc_worker_t));
    if (!srv->workers) {
        sc_metrics_destroy(srv->metrics);
        free(srv);
        return SC_ENOMEM;
    }
    *out = srv;
    return 0;
}

/* Binds a listening socket with SO_REUSEPORT so every worker can own one. */
static int bind_socket(const char *host, int port, int *out_fd, int *bound_port)
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
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
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

static void on_connection(uv_stream_t *listener, int status)
{
    sc_worker_t *w = listener->data;
    if (status < 0 || w->stopping)
        return;
    sc__conn_accept(w, listener);
}

static void close_wakeup_if_done(sc_worker_t *w)
{
    if (w->stopping && w->pending_ops == 0 && !uv_is_closing((uv_handle_t *)&w->wakeup))
        uv_close((uv_handle_t *)&w->wakeup, NULL);
}

/* Runs completed store ops on their loop, and notices a stop request. */
static void on_wakeup(uv_async_t *a)
{
    sc_worker_t *w = a->data;
    pthread_mutex_lock(&w->done_mu);
    /* Connections other loops handed over (balancing): take the whole list. */
    int *adopt = w->adopt_fds;
    size_t n_adopt = w->n_adopt;
    w->adopt_fds = NULL;
    w->n_adopt = w->cap_adopt = 0;
    sc_task_t *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->done_mu);
    for (size_t i = 0; i < n_adopt; i++)
        sc__conn_adopt(w, adopt[i]);
    free(adopt);
    /* Posted in reverse push order; reverse so replies keep their order. */
    sc_task_t *rev = NULL;
    while (list) {
        sc_task_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        sc_task_t *next = rev->next;
        w->pending_ops--;
        rev->run(rev);
        rev = next;
    }
    if (atomic_load(&w->srv->stopping) && !w->stopping) {
        w->stopping = 1;
        w->drain_deadline_ns = sc_mono_ns() + (uint64_t)w->srv->cfg.drain_timeout_ms * 1000000u;
        if (w->listener_open) {
            uv_close((uv_handle_t *)&w->listener, NULL);
            w->listener_open = 0;
        }
        sc__conn_shutdown_all(w);
    }
    close_wakeup_if_done(w);
}

void sc_worker_post(sc_worker_t *w, sc_task_t *t)
{
    pthread_mutex_lock(&w->done_mu);
    t->next = w->done_head;
    w->done_head = t;
    pthread_mutex_unlock(&w->done_mu);
    uv_async_send(&w->wakeup);
}

static void pending_run(sc_task_t *t)
{
    sc_pending_t *p = (sc_pending_t *)((char *)t - offsetof(sc_pending_t, task));
    p->complete(p);
}

void sc_api_op_done(sc_write_op_t *op)
{
    sc_pending_t *p = (sc_pending_t *)op;
    p->task.run = pending_run;
    sc_worker_post(p->conn->w, &p->task);
}

static void *worker_main(void *arg)
{
    sc_worker_t *w = arg;
    /* Named so `top -H` shows which loop is busy. */
    pthread_setname_np(pthread_self(), "sc-loop");
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Every handle is closed once uv_run returns; close_cb's have run. */
    return NULL;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    sc_server_t *srv = sig->data;
    if (signum == SIGHUP) {
        int rc = sc_log_reopen(srv->log);
        sc_log(srv->log, rc ? SC_ERROR : SC_INFO, "SIGHUP: log reopened%s%s",
               rc ? ": " : "", rc ? sc_strerror(rc) : "");
        return;
    }
    sc_log(srv->log, SC_INFO, "signal %d: draining and shutting down", signum);
    sc_server_stop(srv);
}

static void on_main_wakeup(uv_async_t *a)
{
    sc_server_t *srv = a->data;
    if (!atomic_load(&srv->stopping))
        return;
    for (int i = 0; i < srv->n_workers; i++)
        uv_async_send(&srv->workers[i].wakeup);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->main_wakeup, NULL);
}

void sc_server_stop(sc_server_t *srv)
{
    atomic_store(&srv->stopping, 1);
    uv_async_send(&srv->main_wakeup);
}

static int worker_init(sc_server_t *srv, sc_worker_t *w, int id)
{
    int rc, fd = -1;
    w->srv = srv;
    w->id = id;
    w->metrics = sc_metrics_shard(srv->metrics, id);
    w->rng = (sc_mono_ns() ^ 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1)) | 1;
    if ((rc = uv_loop_init(&w->loop)))
        return rc;
    pthread_mutex_init(&w->done_mu, NULL);
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    if ((rc = sc_store_reader_create(srv->store, &w->reader)))
        return rc;
    /* Port 0 means "any free port": the first worker picks it, the rest join. */
    int port = id == 0 ? (int)srv->cfg.port : srv->bound_port;
    if ((rc = bind_socket(srv->cfg.host, port, &fd, &srv->bound_port)))
        return rc;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((rc = uv_tcp_open(&w->listener, fd)) ||
        (rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection))) {
        close(fd);
        return rc;
    }
    w->listener_open = 1;
    return 0;
}

int sc_server_run(sc_server_t *srv)
{
    int rc;
    srv->started_ms = sc_now_ms();
    /* OpenBLAS parallelises each call by default, and its helper threads
     * spin (sched_yield) between calls: with BLAS called from the event
     * loops (flat index) and the embedding workers, that burns a core the
     * loops need. Measured: a helper at 90 % of a core on a text replay. */
    openblas_set_num_threads((int)srv->cfg.blas_threads);
    sc_scopes_config_t icfg = {
        .flat_max = (size_t)srv->cfg.index_flat_max,
        .hnsw_m = (size_t)srv->cfg.hnsw_m,
        .hnsw_ef_construction = (size_t)srv->cfg.hnsw_ef_construction,
        .hnsw_ef_search = (size_t)srv->cfg.hnsw_ef_search,
        .compact_deleted_ratio = srv->cfg.compact_deleted_ratio,
        .delta_max = (size_t)srv->cfg.index_delta_max,
    };
    snprintf(srv->index_dir, sizeof(srv->index_dir), "%s/index", srv->cfg.data_dir);
    sc_quality_opts_t qopts = {
        .max_pending = (size_t)srv->cfg.validation_pending,
        .first_n = (uint32_t)srv->cfg.validate_first,
        .budget_confidence = srv->cfg.budget_confidence,
        .budget_min_scope_obs = (uint32_t)srv->cfg.budget_min_scope_obs,
        .budget_max_scopes = (size_t)srv->cfg.budget_max_scopes,
        .pending_timeout_ms = (uint64_t)srv->cfg.validation_timeout_s * 1000u,
    };
    if ((rc = sc_store_create(&srv->store, &srv->cfg, srv->log)) ||
        (rc = sc_namespaces_create(&srv->namespaces, &srv->cfg)) ||
        (rc = sc_scopes_create(&srv->scopes, &icfg, srv->log)) ||
        (rc = sc_quality_create(&srv->quality, &qopts)))
        return rc;
    if (srv->cfg.upstream_url[0] || srv->cfg.webhook_url[0]) {
        const char *k = getenv(srv->cfg.upstream_key_env);
        snprintf(srv->upstream_key, sizeof(srv->upstream_key), "%s", k ? k : "");
        k = getenv(srv->cfg.webhook_key_env);
        snprintf(srv->webhook_key, sizeof(srv->webhook_key), "%s", k ? k : "");
        if ((rc = sc_http_client_create(&srv->vclient, (int)srv->cfg.upstream_concurrency,
                                        (size_t)srv->cfg.upstream_queue, srv->log)))
            return rc;
    }
    sc_store_listener_t listener = {index_on_put, index_on_delete, srv};
    sc_store_set_listener(srv->store, &listener);
    if ((rc = sc_store_open(srv->store, srv->cfg.data_dir))) {
        sc_log(srv->log, SC_ERROR, "cannot open the store in %s: %s", srv->cfg.data_dir,
               sc_strerror(rc));
        return rc;
    }
    if ((rc = sc_store_ns_foreach(srv->store, load_namespace, srv)))
        return rc;
    int search_threads = srv->cfg.search_threads ? (int)srv->cfg.search_threads : srv->n_workers;
    if (search_threads > 0 &&
        (rc = sc_search_pool_create(&srv->search_pool, srv->store, search_threads,
                                    (size_t)srv->cfg.search_queue)))
        return rc;
    if ((rc = open_models(srv)))
        return rc;
    if ((rc = pthread_create(&srv->loader, NULL, loader_main, srv)))
        return -rc;
    srv->loader_started = 1;
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
    signal(SIGPIPE, SIG_IGN);
    int started = 0;
    for (int i = 0; i < srv->n_workers; i++) {
        if ((rc = worker_init(srv, &srv->workers[i], i))) {
            sc_log(srv->log, SC_ERROR, "cannot listen on %s:%lld: %s", srv->cfg.host,
                   (long long)srv->cfg.port, rc > -4096 && rc < 0 ? uv_strerror(rc) : sc_strerror(rc));
            goto stop;
        }
    }
    for (int i = 0; i < srv->n_workers; i++) {
        if ((rc = pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]))) {
            rc = -rc;
            goto stop;
        }
        started++;
    }
    sc_log(srv->log, SC_INFO, "semcached listening on %s:%d with %d event loops, data in %s",
           srv->cfg.host, srv->bound_port, srv->n_workers, srv->cfg.data_dir);
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    rc = 0;
stop:
    atomic_store(&srv->stopping, 1);
    for (int i = 0; i < started; i++) {
        uv_async_send(&srv->workers[i].wakeup);
        pthread_join(srv->workers[i].thread, NULL);
    }
    for (int i = started; i < srv->n_workers; i++) {
        /* Never ran: close what worker_init opened and spin the loop once. */
        sc_worker_t *w = &srv->workers[i];
        if (!w->srv)
            continue;
        if (w->listener_open)
            uv_close((uv_handle_t *)&w->listener, NULL);
        uv_close((uv_handle_t *)&w->wakeup, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
    }
    if (!uv_is_closing((uv_handle_t *)&srv->main_wakeup)) {
        for (int i = 0; i < 3; i++)
            uv_close((uv_handle_t *)sigs[i], NULL);
        uv_close((uv_handle_t *)&srv->main_wakeup, NULL);
    }
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->main_loop);
    /* Validation calls still in flight are dropped; their writes (and the
     * verdicts already reached) go in with the final commit. */
    sc_http_client_destroy(srv->vclient);
    srv->vclient = NULL;
    /* Commit what is queued, then snapshot the indexes at that exact LMDB
     * transaction so the next start can skip the rebuild. */
    sc_store_stop_writer(srv->store);
    if (srv->loader_started) {
        pthread_join(srv->loader, NULL);
        srv->loader_started = 0;
    }
    if (sc_scopes_ready(srv->scopes)) {
        sc_scopes_quiesce(srv->scopes);
        uint64_t t0 = sc_mono_ns();
        int src = sc_scopes_save(srv->scopes, srv->index_dir, sc_store_txnid(srv->store));
        if (src)
            sc_log(srv->log, SC_ERROR, "index: snapshot failed: %s", sc_strerror(src));
        else
            sc_log(srv->log, SC_INFO, "index: snapshot written in %.2f s",
                   (double)(sc_mono_ns() - t0) / 1e9);
    }
    sc_log(srv->log, SC_INFO, "semcached stopped");
    return rc;
}

void sc_server_destroy(sc_server_t *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->n_workers; i++) {
        sc_worker_t *w = &srv->workers[i];
        if (!w->srv)
            continue;
        uv_loop_close(&w->loop);
        sc_store_reader_destroy(w->reader);
        for (size_t k = 0; k < w->n_adopt; k++) /* handed over as the loop stopped */
            close(w->adopt_fds[k]);
        free(w->adopt_fds);
        pthread_mutex_destroy(&w->done_mu);
    }
    if (srv->loader_started) {
        atomic_store(&srv->stopping, 1);
        pthread_join(srv->loader, NULL);
    }
    /* The writer commits everything still queued before the store closes. */
    sc_http_client_destroy(srv->vclient); /* if sc_server_run failed before stopping it */
    sc_search_pool_destroy(srv->search_pool); /* after the loops: none is waiting on it */
    for (int i = 0; i < srv->n_models; i++) { /* after the loops: none is waiting on them */
        sc_embed_pool_destroy(srv->models[i].pool);
        sc_embedder_close(srv->models[i].embedder);
    }
    sc_vec_cache_destroy(srv->vec_cache);
    sc_store_destroy(srv->store);
    sc_scopes_destroy(srv->scopes);
    sc_namespaces_destroy(srv->namespaces);
    sc_quality_destroy(srv->quality);
    sc_metrics_destroy(srv->metrics);
    free(srv->workers);
    free(srv);
}
