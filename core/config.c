/* config.c -- the options table. Each row names an option, its type, bounds,
 * default and the config field it fills; parsing, environment variables and
 * --help are all driven from this one table so they cannot drift apart. */
#define _GNU_SOURCE
#include "sc_common.h"
#include "sc_config.h"
#include "sc_log.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_INT, OPT_SIZE, OPT_ENUM, OPT_STR, OPT_DOUBLE } opt_type_t;

typedef struct {
    const char *name;
    opt_type_t type;
    int64_t min, max;
    const char *def;            /* default, as text, parsed like user input */
    size_t off;                 /* offsetof field in sc_config_t */
    size_t str_cap;             /* for OPT_STR: field capacity */
    const char *const *choices; /* for OPT_ENUM: NULL-terminated */
    const char *help;
    double dmin, dmax; /* for OPT_DOUBLE (int64 bounds would truncate 0.01 to 0) */
} opt_t;

static const char *const sync_choices[] = {"full", "periodic", "none", NULL};
static const char *const evict_choices[] = {"lru", "none", "value", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const onoff_choices[] = {"off", "on", NULL};
static const char *const proxy_tenant_choices[] = {"key", "header", "none", NULL};
static const char *const pace_choices[] = {"none", "original", NULL};

#define F(f) offsetof(sc_config_t, f)
#define INT_OPT(n, lo, hi, d, f, h)                                                                \
    {                                                                                              \
        n, OPT_INT, lo, hi, d, F(f), 0, NULL, h, 0, 0                                              \
    }
#define SIZE_OPT(n, lo, hi, d, f, h)                                                               \
    {                                                                                              \
        n, OPT_SIZE, lo, hi, d, F(f), 0, NULL, h, 0, 0                                             \
    }
#define ENUM_OPT(n, ch, d, f, h)                                                                   \
    {                                                                                              \
        n, OPT_ENUM, 0, 0, d, F(f), 0, ch, h, 0, 0                                                 \
    }
#define DOUBLE_OPT(n, lo, hi, d, f, h)                                                             \
    {                                                                                              \
        n, OPT_DOUBLE, 0, 0, d, F(f), 0, NULL, h, lo, hi                                           \
    }
#define STR_OPT(n, d, f, h)                                                                        \
    {                                                                                              \
        n, OPT_STR, 0, 0, d, F(f), sizeof(((sc_config_t *)0)->f), NULL, h, 0, 0                    \
    }

static const opt_t options[] = {
    STR_OPT("config", "", config_file,
            "read options (and [namespace NAME] presets) from this file first: flags win over the "
            "environment, which wins over the file; see CONFIGURATION FILE in semcached(1)"),
    STR_OPT("host", "127.0.0.1", host, "address to listen on"),
    INT_OPT("port", 1, 65535, "8080", port, "TCP port to listen on"),
    INT_OPT("threads", 0, 256, "0", threads,
            "event-loop threads sharing the port (SO_REUSEPORT); 0 = one per core"),
    STR_OPT("data-dir", "./data", data_dir, "directory of the LMDB environment"),
    SIZE_OPT("map-size", 1 << 20, INT64_MAX / 2, "4G", map_size,
             "LMDB map size: the most the store may hold on disk (K/M/G suffixes)"),
    ENUM_OPT("sync", sync_choices, "full", sync,
             "full: a store is acknowledged after fsync; periodic: after commit, fsync every "
             "--sync-interval-ms; none: never fsync (survives process crashes, not OS crashes)"),
    INT_OPT("sync-interval-ms", 10, 3600000, "1000", sync_interval_ms,
            "fsync period with --sync periodic"),
    ENUM_OPT("evict", evict_choices, "lru", evict,
             "when the store (or a namespace) is full: lru evicts the least recently hit entries; "
             "value the least valuable (tokens saved per byte) among the 8x as many least recently "
             "hit; none answers 507"),
    INT_OPT("max-entries", 0, INT64_MAX / 2, "0", max_entries,
            "most cached entries, all namespaces together; beyond it --evict lru evicts the least "
            "recently hit and --evict none answers 507; 0 = bounded by --map-size only"),
    INT_OPT("default-ttl-s", 0, 315360000, "604800", default_ttl_s,
            "TTL of entries stored without ttl_s (7 days); 0 = never expire"),
    INT_OPT("max-ttl-s", 1, 3153600000LL, "315360000", max_ttl_s,
            "largest ttl_s a store may ask for (10 years)"),
    INT_OPT("sweep-interval-ms", 10, 3600000, "1000", sweep_interval_ms,
            "how often the sweeper purges expired entries"),
    INT_OPT("hit-flush-ms", 10, 3600000, "10000", hit_flush_ms,
            "how often hit counts and LRU recency are written to the store (eviction always sees "
            "them exactly)"),
    SIZE_OPT("max-header-bytes", 1024, 1 << 20, "16K", max_header_bytes,
             "request line plus headers; larger gets 431"),
    SIZE_OPT("max-body-bytes", 1024, 1LL << 30, "4M", max_body_bytes,
             "request body; larger gets 413"),
    INT_OPT("max-connections", 1, 1000000, "10000", max_connections,
            "open client connections; more are answered 503 and closed"),
    INT_OPT("idle-timeout-ms", 100, 86400000, "60000", idle_timeout_ms,
            "a keep-alive connection with no request in progress is closed after this"),
    INT_OPT("request-timeout-ms", 100, 3600000, "30000", request_timeout_ms,
            "a request must arrive completely within this (slow clients get 408)"),
    INT_OPT("drain-timeout-ms", 0, 3600000, "10000", drain_timeout_ms,
            "on SIGTERM, how long connections may take to answer the requests already received; "
            "then they are closed"),
    INT_OPT("writer-batch", 1, 100000, "1024", writer_batch,
            "most writes committed in one transaction (group commit)"),
    INT_OPT("writer-queue", 16, 10000000, "65536", writer_queue,
            "most writes waiting for the writer; beyond it stores get 503"),
    ENUM_OPT("semantic", onoff_choices, "on", semantic,
             "semantic lookup for namespaces that do not configure it (requests still need an "
             "embedding)"),
    DOUBLE_OPT("threshold", -1, 1, "0.90", threshold,
               "default cosine similarity a semantic hit needs (with --model-thresholds on, "
               "only for embedders without a default of their own)"),
    ENUM_OPT("model-thresholds", onoff_choices, "on", model_thresholds,
             "namespaces without a threshold of their own use their model's default when it has "
             "one (GloVe-100d 0.99, potion-base-2M 0.955: docs/quality.md); off: --threshold"),
    ENUM_OPT("allow-lower-threshold", onoff_choices, "off", allow_lower_threshold,
             "may a request's \"threshold\" go below its namespace's (namespaces can override)"),
    INT_OPT("max-dimensions", 1, 65536, "4096", max_dimensions, "longest embedding accepted"),
    INT_OPT("index-flat-max", 0, 100000000, "8000", index_flat_max,
            "a scope is searched by exact BLAS scan up to this many vectors, then promoted to HNSW "
            "(measured at 384-d against the threshold-aware search: the float scan costs 108 us of CPU "
            "at 4k against 158, 254 at 8k against 201, so the crossover is near 7k and 8k keeps a "
            "little more of the exact scan; see BENCHMARKS.md), unless --index-scan-max keeps it "
            "flat"),
    INT_OPT("index-scan-max", 0, 1000000000, "16000000", index_scan_max,
            "on CPUs with AVX-512 VNNI a flat scope is scanned with an exact int8 pre-pass (float "
            "scores for the rows it cannot rule out) and stays flat up to this many vectors x "
            "dimensions (16M: 160k at 100-d, 41k at 384-d): exact, and at 384-d as fast as the HNSW "
            "decide-search up to 32k (271 against 268 us of CPU, BENCHMARKS.md); 0 = promote at "
            "--index-flat-max"),
    INT_OPT("hnsw-m", 4, 128, "16", hnsw_m, "HNSW graph degree"),
    INT_OPT("hnsw-ef-construction", 8, 4096, "200", hnsw_ef_construction, "HNSW build beam"),
    INT_OPT("hnsw-ef-search", 1, 16384, "512", hnsw_ef_search,
            "the widest HNSW search beam: lookups the small beam cannot decide, scopes that "
            "distrust it, and searches without a threshold (recall@1 >= 0.99 on SIFT-5k needs 512; "
            "see BENCHMARKS.md)"),
    INT_OPT("hnsw-ef-search-min", 0, 16384, "128", hnsw_ef_search_min,
            "the first, small HNSW beam of a semantic lookup: its answer is served when the hit or "
            "miss is clear (see --search-margin), the widest beam answers otherwise; 0 = always "
            "the widest beam (128: on 100k clustered 384-d vectors a fixed beam of 64 agreed with "
            "an exact scan on 0.9978 of decisions at threshold 0.80, 128 on all of them)"),
    ENUM_OPT("hnsw-int8", onoff_choices, "on", hnsw_int8,
             "HNSW searches walk the graph on an int8 copy of the vectors (a quarter of the bytes "
             "per distance; about dim bytes more memory per vector) and score the beam's candidates "
             "in float32, so similarities stay exact (see BENCHMARKS.md); off = float32 throughout"),
    DOUBLE_OPT("search-margin", 0, 1, "0.03", search_margin,
               "the small beam decides at once when its best candidate is at least this far above "
               "or below the threshold (measured: see BENCHMARKS.md)"),
    DOUBLE_OPT("search-gap", 0, 1, "0.02", search_gap,
               "... and, for a hit, at least this far above its second best (a crowded "
               "neighbourhood goes to the widest beam)"),
    INT_OPT(
        "search-verify-every", 0, 1000000, "64", search_verify_every,
        "re-run 1 in N at-once decisions of an HNSW scope (and its first 256 hits and 256 misses) "
        "at the widest beam to estimate how often the small beam is wrong there; 0 = never"),
    DOUBLE_OPT("search-max-disagree", 0, 1, "0.002", search_max_disagree,
               "a scope whose small beam disagreed with the widest beam (hits and misses apart) on "
               "more than this fraction of verified decisions uses the widest beam for that kind "
               "of decision until its estimate recovers (0.002: at-once decisions cost at most "
               "~0.1 % of lookups their exact answer)"),
    INT_OPT(
        "semantic-candidates", 1, SC_SEMANTIC_CANDIDATES_MAX, "8", semantic_candidates,
        "nearest neighbours examined per semantic lookup (expired or deleted ones are skipped)"),
    INT_OPT("search-threads", -1, 256, "0", search_threads,
            "semantic-search workers (an HNSW search can take milliseconds, so the event loops "
            "hand it off); 0 = one per event loop; -1 = search on the event loops"),
    INT_OPT("search-queue", 1, 1000000, "4096", search_queue,
            "semantic searches waiting for a worker; beyond it lookups answer exact-only "
            "(\"semantic\":\"skipped\", reason queue_full)"),
    INT_OPT("index-delta-max", 1, 1000000, "1024", index_delta_max,
            "new vectors and removals an HNSW scope keeps beside its graph (searched exactly) "
            "before they are merged into a copy of the graph in the background; searches never "
            "wait for graph inserts"),
    DOUBLE_OPT("compact-deleted-ratio", 0.01, 1, "0.25", compact_deleted_ratio,
               "a scope's index is rebuilt in the background once this fraction of it is deleted"),
    STR_OPT("model", "", model,
            "server-side embedder: glove-100d (the default model, from `make model`), a model2vec "
            "or BERT directory, a .scglove file, or remote:URL (an OpenAI-compatible "
            "/v1/embeddings endpoint); empty = clients send vectors"),
    INT_OPT("embed-threads", 1, 64, "1", embed_threads,
            "embedding worker threads (event loops never run model code)"),
    INT_OPT("embed-intra-threads", 1, 64, "1", embed_intra_threads,
            "threads sharing one BERT forward pass (token rows and attention heads split between "
            "them; other embedders ignore it): lowers the latency of one batch, where "
            "--embed-threads raises throughput"),
    INT_OPT("blas-threads", 1, 256, "1", blas_threads,
            "OpenBLAS threads inside one BLAS call; 1 keeps its idle helpers from spinning on the "
            "event loops' cores (parallelism comes from --threads and --embed-threads)"),
    INT_OPT("embed-batch", 1, 256, "32", embed_batch, "most texts embedded in one batch"),
    INT_OPT("embed-wait-us", 0, 100000, "1000", embed_wait_us,
            "longest a worker waits for more texts to fill a batch (never longer than a batch "
            "takes to embed)"),
    INT_OPT("embed-inline-us", 0, 10000, "100", embed_inline_us,
            "an event loop embeds a lookup's or store's text itself when the local model is "
            "measured to embed it within this (a static model: microseconds, less than the two "
            "thread hand-offs it saves); longer texts and slower models go to the embedding "
            "workers; 0 = never"),
    INT_OPT("embed-queue", 1, 1000000, "4096", embed_queue,
            "most texts waiting to be embedded; beyond it lookups answer exact-only "
            "(\"semantic\":\"skipped\")"),
    INT_OPT("embed-timeout-ms", 1, 60000, "2000", embed_timeout_ms,
            "a text not embedded within this is skipped (exact-only lookup)"),
    STR_OPT("models", "", models,
            "more server-side models that namespaces choose with their \"model\" setting, as "
            "NAME=SPEC,NAME=SPEC (SPEC as for --model); --model itself is \"default\". Each has "
            "its own --embed-threads workers"),
    STR_OPT("embed-remote-model", "text-embedding-3-small", embed_remote_model,
            "model name sent to a remote:URL embedder (its API key comes from "
            "SEMCACHED_EMBED_API_KEY)"),
    INT_OPT("embed-remote-concurrency", 1, 1024, "8", embed_remote_concurrency,
            "remote embedding calls in flight"),
    INT_OPT("embed-dimensions", 0, 65536, "0", embed_dimensions,
            "dimension of the remote:URL embedders' vectors, so the server starts without asking "
            "the endpoint (an answer of another size then fails as an embedding error); 0 = learn "
            "it from a probe: an endpoint that does not answer at start leaves its model "
            "unavailable (lookups exact-only) until a background probe gets an answer"),
    DOUBLE_OPT("sample-rate", 0, 1, "0.05", sample_rate,
               "default fraction of hits marked for validation (namespaces can override)"),
    INT_OPT("validate-first", 0, 1000000, "5", validate_first,
            "a new scope's first semantic hits are always marked for validation"),
    INT_OPT("validation-pending", 1, 10000000, "10000", validation_pending,
            "most validations awaiting feedback; beyond, samples are dropped and counted"),
    INT_OPT("validation-retention", 1, 100000000, "100000", validation_retention,
            "validation records kept in LMDB (the oldest go first)"),
    INT_OPT("validation-timeout-s", 1, 604800, "3600", validation_timeout_s,
            "a pending validation not answered within this is forgotten (counted as expired) when "
            "room is needed"),
    STR_OPT("upstream-url", "", upstream_url,
            "OpenAI-compatible POST /v1/chat/completions URL that namespaces with delivery "
            "\"upstream\" re-infer sampled hits against"),
    STR_OPT("upstream-key-env", "SEMCACHED_UPSTREAM_API_KEY", upstream_key_env,
            "environment variable holding the upstream API key (sent as a bearer token)"),
    STR_OPT("judge-model", "", judge_model,
            "model that namespaces with compare \"judge\" ask (through --upstream-url) whether "
            "two answers would serve the same request; \"\" = the request's own model"),
    INT_OPT("upstream-timeout-ms", 100, 600000, "30000", upstream_timeout_ms,
            "one upstream re-inference; a timeout drops the validation, never the caller's answer"),
    INT_OPT("upstream-concurrency", 1, 4096, "8", upstream_concurrency,
            "upstream (and webhook) calls in flight"),
    INT_OPT("upstream-queue", 1, 1000000, "1024", upstream_queue,
            "upstream (and webhook) calls waiting; beyond it samples are dropped and counted"),
    STR_OPT("webhook-url", "", webhook_url,
            "URL that namespaces with delivery \"webhook\" post sampled hits to; the receiver "
            "answers through POST /v1/feedback"),
    STR_OPT("webhook-key-env", "SEMCACHED_WEBHOOK_TOKEN", webhook_key_env,
            "environment variable holding a bearer token sent with webhook posts"),
    STR_OPT("prices", "", prices,
            "price table (JSON, the format of contrib/prices.json) for the dollar figures; "
            "\"\" = the built-in copy of contrib/prices.json. A bad file refuses to start"),
    DOUBLE_OPT("answer-similarity", -1, 1, "0.90", answer_similarity,
               "default cosine similarity two answers need to agree under compare \"semantic\" "
               "(namespaces can override)"),
    DOUBLE_OPT("budget-confidence", 0.5, 0.9999, "0.95", budget_confidence,
               "one-sided confidence of the upper bound a max_error_rate namespace's learned "
               "threshold must meet"),
    INT_OPT("budget-min-scope-obs", 1, 1000000, "200", budget_min_scope_obs,
            "validated semantic lookups a scope needs before it gets its own learned threshold "
            "(until then its namespace's)"),
    INT_OPT("budget-max-scopes", 0, 10000000, "4096", budget_max_scopes,
            "scopes whose validations are tracked for their own learned threshold; others use "
            "their namespace's"),
    DOUBLE_OPT("explore-rate", 0, 1, "0.2", explore_rate,
               "default fraction of below-threshold semantic candidates validated instead of "
               "missed, in max_error_rate namespaces"),
    DOUBLE_OPT("explore-floor", -1, 1, "0.7", explore_floor,
               "default similarity below which a max_error_rate namespace never explores"),
    DOUBLE_OPT("validation-budget", 0, 1, "0.05", validation_budget,
               "default share of the model calls a namespace's hits saved that its paid "
               "validations (sampled hits, upstream explorations) may spend; beyond it sampling "
               "pauses (namespaces can override)"),
    DOUBLE_OPT("validation-min-rate", 0, 1, "0.01", validation_min_rate,
               "fraction of hits still validated while a namespace's validation budget is spent, "
               "so its false-hit estimate stays alive"),
    STR_OPT("auth-token", "", auth_token,
            "require \"Authorization: Bearer <token>\" on every endpoint but /healthz and /readyz; "
            "set it through SEMCACHED_AUTH_TOKEN rather than the command line"),
    STR_OPT("admin-token", "", admin_token,
            "token required for invalidate, flush and namespace changes (SEMCACHED_ADMIN_TOKEN); "
            "empty = the auth token"),
    ENUM_OPT("metrics-auth", onoff_choices, "off", metrics_auth,
             "does /metrics need the auth token (Prometheus usually scrapes without one)"),
    INT_OPT("max-label-values", 1, 100000, "200", max_label_values,
            "distinct namespace (and namespace+model) label values in /metrics; the rest are "
            "reported as _other"),
    ENUM_OPT("log-level", level_choices, "info", log_level, "least severe level that is logged"),
    STR_OPT("log-file", "", log_file, "log to this file instead of stderr (reopened on SIGHUP)"),
    /* A fleet of nodes sharing one cache through a Redis stream (docs/fleet.md). */
    STR_OPT("redis", "", redis,
            "fleet mode: Redis at redis://[user:password@]host:port[/db] or a unix socket path "
            "(set it through SEMCACHED_REDIS to keep the password off the command line); with "
            "--fleet, every change is replicated to the other nodes; empty = no fleet"),
    STR_OPT("fleet", "", fleet,
            "fleet name: the nodes that share one cache (its Redis keys are semcached:{NAME}:*)"),
    INT_OPT(
        "fleet-retention", 0, INT64_MAX / 2, "100000", fleet_retention,
        "stream records Redis keeps (XADD MAXLEN ~; about 2.4 KB each with a 384-d vector); a node "
        "down for more changes than this copies a peer's snapshot when it returns; 0 = unbounded"),
    INT_OPT(
        "fleet-retention-s", 0, 315360000, "0", fleet_retention_s,
        "keep stream records by age instead (XADD MINID ~ now - this); 0 = by --fleet-retention"),
    INT_OPT("fleet-outbox-max", 0, INT64_MAX / 2, "1000000", fleet_outbox_max,
            "local changes kept for publishing while Redis is unreachable; beyond it the oldest "
            "unpublished ones are dropped and counted (never the local data); 0 = unbounded"),
    INT_OPT("fleet-max-lag-ms", 0, 86400000, "1000", fleet_max_lag_ms,
            "a joining node answers /readyz 200 once it has read the stream to its end with a lag "
            "within this"),
    INT_OPT("fleet-tombstone-s", 1, 315360000, "86400", fleet_tombstone_s,
            "how long deletes and invalidations are remembered, so a store older than one that "
            "arrives later (up to this late) cannot bring an entry back"),
    ENUM_OPT("fleet-auto-resync", onoff_choices, "on", fleet_auto_resync,
             "a running node whose stream position was trimmed away (it missed changes) drains, "
             "copies a peer's snapshot and serves again, in the same process; off = it keeps "
             "serving what it has and says so (restart it to resync)"),
    STR_OPT("fleet-advertise", "", fleet_advertise,
            "base URL the other nodes reach this one at for its snapshot (joining nodes copy it); "
            "empty = http://HOST:PORT"),
    /* ---- the transparent proxy (README "Use it as a proxy") ---- */
    STR_OPT("openai-base-url", "https://api.openai.com/v1", openai_base_url,
            "upstream of the OpenAI-compatible proxy routes (POST /v1/chat/completions, "
            "/v1/responses, /v1/embeddings and other /v1/ paths): /v1/X is forwarded to <this>/X"),
    STR_OPT("anthropic-base-url", "https://api.anthropic.com/v1", anthropic_base_url,
            "upstream of POST /v1/messages (and of other /v1/ paths sent with an anthropic-version "
            "header)"),
    STR_OPT("openai-key-env", "", openai_key_env,
            "environment variable (read once at start) whose key is sent upstream as "
            "\"Authorization: Bearer\" when an OpenAI client sends no key; empty = none"),
    STR_OPT("anthropic-key-env", "", anthropic_key_env,
            "environment variable (read once at start) whose key is sent upstream as x-api-key "
            "when an Anthropic client sends no key; empty = none"),
    DOUBLE_OPT("proxy-max-error-rate", 0, 0.5, "0.02", proxy_max_error_rate,
               "error budget proxied traffic gets in a namespace with neither a threshold nor a "
               "max_error_rate of its own (sampled hits re-inferred through the same upstream, "
               "misses observed for free); 0 = the namespace's fixed threshold"),
    ENUM_OPT("proxy-tenant", proxy_tenant_choices, "key", proxy_tenant,
             "proxied requests' tenant: key = a keyed hash of the client's API key (two keys never "
             "share entries), header = the X-Semcached-Tenant header (\"\" when absent), none = "
             "every client shares"),
    INT_OPT("proxy-timeout-ms", 100, 86400000, "600000", proxy_timeout_ms,
            "one whole upstream call, a stream to its last event included; then 504 (or the stream "
            "is cut)"),
    INT_OPT("proxy-connect-timeout-ms", 10, 600000, "10000", proxy_connect_timeout_ms,
            "TCP and TLS set-up of an upstream connection"),
    INT_OPT("proxy-idle-timeout-ms", 10, 86400000, "300000", proxy_idle_timeout_ms,
            "no upstream byte (first byte included) for this long ends the call; also the longest "
            "a slow client may keep an upstream stream paused"),
    INT_OPT("proxy-concurrency", 1, 1000000, "1024", proxy_concurrency,
            "upstream transfers in flight (libcurl multi on one thread; connections are reused, "
            "HTTP/2 where offered)"),
    INT_OPT("proxy-queue", 1, 10000000, "4096", proxy_queue,
            "upstream calls waiting beyond --proxy-concurrency; beyond, the proxy answers 503 in "
            "the API's error shape"),
    INT_OPT("proxy-max-host-connections", 0, 1000000, "0", proxy_max_host_connections,
            "most connections to one upstream host; 0 = no cap"),
    SIZE_OPT("proxy-record-max-bytes", 1024, 1LL << 30, "8M", proxy_record_max_bytes,
             "most bytes of one upstream answer (stream events or body) recorded for the cache; a "
             "larger answer is relayed but not stored"),
    INT_OPT("proxy-finish-after-disconnect-ms", 0, 3600000, "30000",
            proxy_finish_after_disconnect_ms,
            "when a client leaves during a miss, the upstream answer is still recorded and stored "
            "if it ends within this; 0 = stop at once"),
    ENUM_OPT("stream-replay-pace", pace_choices, "none", stream_replay_pace,
             "how a streamed hit is replayed: none = every event at once; original = with the "
             "recorded gaps between events"),
    SIZE_OPT("proxy-buffer-high", 4096, 1LL << 30, "1M", proxy_buffer_high,
             "a streamed miss pauses its upstream transfer while this much output waits for a slow "
             "client"),
    SIZE_OPT("proxy-buffer-low", 0, 1LL << 30, "256K", proxy_buffer_low,
             "... and resumes it once the waiting output is below this"),
    INT_OPT("coalesce-wait-ms", 0, 3600000, "30000", coalesce_wait_ms,
            "a proxied miss identical to (or, semantically, within the serving threshold of) one "
            "in flight waits this long for that one's answer instead of calling upstream; then, or "
            "when that call fails, it calls upstream itself; 0 = off"),
    INT_OPT("lease-ms", 1, 3600000, "30000", lease_ms,
            "a native lookup with \"lease\": true that misses leads until it stores or this "
            "passes; identical leased lookups meanwhile wait for that store"),
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static int parse_int(const char *s, int64_t *out, int allow_suffix)
{
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return -1;
    int64_t mult = 1;
    if (allow_suffix && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mult = 1LL << 10;
            break;
        case 'M':
            mult = 1LL << 20;
            break;
        case 'G':
            mult = 1LL << 30;
            break;
        case 'T':
            mult = 1LL << 40;
            break;
        default:
            return -1;
        }
        end++;
        /* "2G", "2GB", "2Gi" and "2GiB" all mean 2 x 2^30. */
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    }
    if (*end)
        return -1;
    if (v != 0 && (v > INT64_MAX / mult || v < INT64_MIN / mult))
        return -1;
    *out = (int64_t)v * mult;
    return 0;
}

static int apply(sc_config_t *cfg, const opt_t *o, const char *value, FILE *err)
{
    char *field = (char *)cfg + o->off;
    int64_t v;
    switch (o->type) {
    case OPT_INT:
    case OPT_SIZE:
        if (parse_int(value, &v, o->type == OPT_SIZE) || v < o->min || v > o->max) {
            if (err)
                fprintf(err, "semcached: --%s: '%s' is not a%s number in [%lld, %lld]\n", o->name,
                        value, o->type == OPT_SIZE ? " size" : "n integer", (long long)o->min,
                        (long long)o->max);
            return SC_EINVAL;
        }
        *(int64_t *)field = v;
        return 0;
    case OPT_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (end == value || *end || errno || !(d >= o->dmin && d <= o->dmax)) {
            if (err)
                fprintf(err, "semcached: --%s: '%s' is not a number in [%g, %g]\n", o->name, value,
                        o->dmin, o->dmax);
            return SC_EINVAL;
        }
        *(double *)field = d;
        return 0;
    }
    case OPT_ENUM:
        for (int i = 0; o->choices[i]; i++)
            if (strcmp(o->choices[i], value) == 0) {
                *(int64_t *)field = i;
                return 0;
            }
        if (err)
            fprintf(err, "semcached: --%s: '%s' is not one of the choices\n", o->name, value);
        return SC_EINVAL;
    case OPT_STR:
        if (strlen(value) >= o->str_cap) {
            if (err)
                fprintf(err, "semcached: --%s: value longer than %zu bytes\n", o->name,
                        o->str_cap - 1);
            return SC_EINVAL;
        }
        strcpy(field, value);
        return 0;
    }
    return SC_EINVAL;
}

static const opt_t *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

void sc_config_defaults(sc_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (apply(cfg, &options[i], options[i].def, stderr))
            abort(); /* a bad default is a programming error caught by any test run */
}

int sc_config_set(sc_config_t *cfg, const char *name, const char *value, FILE *err)
{
    const opt_t *o = find(name, strlen(name));
    if (!o) {
        if (err)
            fprintf(err, "semcached: unknown option --%s (see --help)\n", name);
        return SC_EINVAL;
    }
    return apply(cfg, o, value, err);
}

static void env_name(const char *opt, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "SEMCACHED_");
    for (; *opt && n + 1 < cap; opt++)
        out[n++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
    out[n] = '\0';
}

/* What an option takes, as --help shows it: N, X, TEXT or "a|b|c". */
static void choices_text(const opt_t *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s", o->type == OPT_STR ? "TEXT" : o->type == OPT_DOUBLE ? "X" : "N");
    if (o->type == OPT_ENUM)
        for (size_t c = 0, n = 0; o->choices[c] && n < cap; c++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", c ? "|" : "", o->choices[c]);
}

void sc_config_usage(FILE *out)
{
    fprintf(out, "usage: semcached [--config FILE] [--option value]...\n\n"
                 "A semantic and exact-match response cache for LLM applications.\n"
                 "Every option can also be set as an environment variable or in the --config\n"
                 "file; flags win over the environment, which wins over the file.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_t *o = &options[i];
        char env[96];
        env_name(o->name, env, sizeof(env));
        char arg[128];
        choices_text(o, arg, sizeof(arg));
        fprintf(out, "  --%s %s\n      %s\n      default: %s   env: %s\n", o->name, arg, o->help,
                o->def[0] ? o->def : "\"\"", env);
    }
    fprintf(out, "  --help      print this and exit\n  --version   print the version and exit\n");
}

int sc_config_apply_env(sc_config_t *cfg, FILE *err)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[96];
        env_name(options[i].name, env, sizeof(env));
        const char *v = getenv(env);
        if (v && apply(cfg, &options[i], v, err))
            return SC_EINVAL;
    }
    return 0;
}

int sc_config_apply_args(sc_config_t *cfg, int argc, char **argv, FILE *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "semcached: unexpected argument '%s' (see --help)\n", a);
            return SC_EINVAL;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt_t *o = find(a, nlen);
        if (!o) {
            fprintf(err, "semcached: unknown option --%.*s (see --help)\n", (int)nlen, a);
            return SC_EINVAL;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(err, "semcached: --%s needs a value\n", o->name);
                return SC_EINVAL;
            }
            val = argv[++i];
        }
        if (apply(cfg, o, val, err))
            return SC_EINVAL;
    }
    return 0;
}

int sc_config_option(size_t i, sc_config_opt_t *out)
{
    if (i >= N_OPTIONS)
        return SC_ENOTFOUND;
    const opt_t *o = &options[i];
    out->name = o->name;
    out->def = o->def;
    out->help = o->help;
    out->is_string = o->type == OPT_STR;
    env_name(o->name, out->env, sizeof(out->env));
    choices_text(o, out->arg, sizeof(out->arg));
    return 0;
}
