/* sc_config.h -- the server's configuration: one struct, one options table.
 * Every option is declared once in config.c with its bounds, default and help;
 * it can be set as --name value, --name=value, or SEMCACHED_NAME (flags win). */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef enum { SC_SYNC_FULL = 0, SC_SYNC_PERIODIC = 1, SC_SYNC_NONE = 2 } sc_sync_mode_t;
typedef enum { SC_EVICT_LRU = 0, SC_EVICT_NONE = 1, SC_EVICT_VALUE = 2 } sc_evict_mode_t;

typedef struct sc_config_s {
    char host[256];              /* listen address; loopback by default */
    int64_t port;                /* listen port */
    int64_t threads;             /* event loops; 0 = one per core */
    char data_dir[1024];         /* LMDB environment directory */
    int64_t map_size;            /* LMDB map size in bytes (upper bound of the store) */
    int64_t sync;                /* sc_sync_mode_t: when a store counts as durable */
    int64_t sync_interval_ms;    /* fsync period for --sync periodic */
    int64_t evict;               /* sc_evict_mode_t: what a full store does */
    int64_t max_entries;         /* most entries the store holds; 0 = bounded by map_size only */
    int64_t default_ttl_s;       /* TTL of entries stored without ttl_s; 0 = never */
    int64_t max_ttl_s;           /* largest ttl_s a store may ask for */
    int64_t sweep_interval_ms;   /* how often expired entries are purged */
    int64_t hit_flush_ms;        /* how often coalesced hit counts are written */
    int64_t max_header_bytes;    /* request line + headers */
    int64_t max_body_bytes;      /* request body after de-chunking */
    int64_t max_connections;     /* open client connections, all loops together */
    int64_t idle_timeout_ms;     /* keep-alive connection with no request */
    int64_t request_timeout_ms;  /* first byte of a request to its last byte */
    int64_t drain_timeout_ms;    /* on SIGTERM: most time to answer what was received */
    int64_t writer_batch;        /* most writes in one group commit */
    int64_t writer_queue;        /* most writes waiting; more get 503 */
    int64_t semantic;            /* 1: semantic lookup on for namespaces that do not say */
    double threshold;            /* default cosine threshold of a semantic hit */
    int64_t allow_lower_threshold; /* may a request lower its namespace's threshold */
    int64_t max_dimensions;      /* longest embedding accepted */
    int64_t index_flat_max;      /* a scope is promoted from flat to HNSW past this many vectors */
    int64_t hnsw_m;              /* HNSW graph degree */
    int64_t hnsw_ef_construction;/* HNSW build beam */
    int64_t hnsw_ef_search;      /* HNSW search beam */
    int64_t semantic_candidates; /* nearest neighbours checked per semantic lookup */
    int64_t search_threads;      /* semantic-search workers; 0 = one per event loop, -1 = on the loops */
    int64_t search_queue;        /* searches waiting; beyond, lookups answer exact-only */
    int64_t index_delta_max;     /* changes kept beside an HNSW graph before a merge */
    double compact_deleted_ratio;/* rebuild a scope when this fraction is deleted */
    char model[1024];            /* server-side embedder: model dir, .scglove file or "glove-100d"; "" = none */
    char models[4096];           /* more models, NAME=SPEC,... that namespaces choose by name */
    int64_t embed_threads;       /* embedding worker threads */
    int64_t embed_intra_threads; /* threads sharing one BERT forward pass */
    int64_t blas_threads;        /* OpenBLAS threads inside one BLAS call */
    int64_t embed_batch;         /* most texts embedded in one call */
    int64_t embed_wait_us;       /* how long a worker waits to fill a batch */
    int64_t embed_queue;         /* most texts waiting; beyond, lookups skip semantic */
    int64_t embed_timeout_ms;    /* a text not embedded within this is skipped */
    char embed_remote_model[256];/* model name sent to a remote:URL embedder */
    int64_t embed_remote_concurrency; /* remote embedding calls in flight */
    double sample_rate;          /* default fraction of hits validated */
    int64_t validate_first;      /* a new scope's first semantic hits are always validated */
    int64_t validation_pending;  /* most validations awaiting feedback */
    int64_t validation_retention;/* validation records kept in LMDB */
    int64_t validation_timeout_s;/* a validation not answered within this is forgotten */
    char upstream_url[1024];     /* OpenAI-compatible chat completions URL for delivery "upstream"; "" = none */
    char upstream_key_env[128];  /* environment variable holding the upstream API key */
    int64_t upstream_timeout_ms; /* one re-inference call */
    int64_t upstream_concurrency;/* re-inference calls in flight */
    int64_t upstream_queue;      /* re-inference calls waiting; beyond, samples are dropped */
    char webhook_url[1024];      /* where delivery "webhook" posts sampled hits; "" = none */
    char webhook_key_env[128];   /* environment variable holding the webhook bearer token */
    double answer_similarity;    /* default cosine two answers need to agree ("semantic" compare) */
    double budget_confidence;    /* one-sided confidence of the error-budget bound */
    int64_t budget_min_scope_obs;/* validations a scope needs before it gets its own threshold */
    int64_t budget_max_scopes;   /* scopes whose validations are tracked for the error budget */
    double explore_rate;         /* default fraction of below-threshold candidates explored */
    double explore_floor;        /* default similarity below which nothing is explored */
    char auth_token[256];        /* bearer token for every endpoint but /healthz, /readyz (and /metrics); "" = none */
    char admin_token[256];       /* token for invalidate, flush and namespace changes; "" = auth_token */
    int64_t metrics_auth;        /* does /metrics need the token */
    int64_t max_label_values;    /* distinct namespace (or namespace+model) label values in /metrics */
    int64_t log_level;           /* sc_log_level_t */
    char log_file[512];          /* "" = stderr */
    /* ---- the transparent proxy (server/proxy*.c) ---- */
    char openai_base_url[1024];  /* upstream of /v1/chat/completions, /v1/responses, /v1/embeddings, ... */
    char anthropic_base_url[1024]; /* upstream of /v1/messages and Anthropic's other /v1/ paths */
    char openai_key_env[128];    /* environment variable with a key for clients that send none; "" = none */
    char anthropic_key_env[128];
    int64_t proxy_tenant;        /* sc_proxy_tenant_mode_t: key, header, none */
    int64_t proxy_timeout_ms;    /* one whole upstream call (streams included) */
    int64_t proxy_connect_timeout_ms;
    int64_t proxy_idle_timeout_ms; /* no upstream byte for this long ends the call */
    int64_t proxy_concurrency;   /* upstream transfers in flight */
    int64_t proxy_queue;         /* upstream calls waiting beyond those */
    int64_t proxy_max_host_connections; /* 0 = no cap */
    int64_t proxy_record_max_bytes; /* most recorded stream (or answer) bytes worth storing */
    int64_t proxy_finish_after_disconnect_ms; /* keep recording after the client left, this long */
    int64_t stream_replay_pace;  /* 0 none, 1 original */
    int64_t proxy_buffer_high;   /* pause the upstream when this much output is queued */
    int64_t proxy_buffer_low;    /* resume it below this */
} sc_config_t;

/* Fills 'cfg' with every option's default. */
void sc_config_defaults(sc_config_t *cfg);
/* Applies SEMCACHED_* environment variables, then argv. On a bad value writes
 * a message to 'err' and returns SC_EINVAL. Returns 1 if --help or --version
 * was handled (the caller should exit 0). */
int sc_config_parse(sc_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);
/* Prints every option, its environment variable, default and help. */
void sc_config_usage(FILE *out);
/* Sets one option by name from text; for tests and config presets. */
int sc_config_set(sc_config_t *cfg, const char *name, const char *value, FILE *err);

#endif
