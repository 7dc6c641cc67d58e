/* sc_config.h -- the server's configuration: one struct, one options table.
 * Every option is declared once in config.c with its bounds, default and help;
 * it can be set as --name value, --name=value, SEMCACHED_NAME, or a line of
 * the --config file (flags win over the environment, which wins over the file).
 * The man page, the example config file and --help all come from the table. */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "sc_common.h"

#ifndef SC_VERSION
#define SC_VERSION "0.1.0"
#endif

typedef enum { SC_SYNC_FULL = 0, SC_SYNC_PERIODIC = 1, SC_SYNC_NONE = 2 } sc_sync_mode_t;
typedef enum { SC_EVICT_LRU = 0, SC_EVICT_NONE = 1, SC_EVICT_VALUE = 2 } sc_evict_mode_t;

/* The top of --semantic-candidates: the most nearest neighbours a semantic
 * lookup examines. The server sizes its candidate arrays by it and
 * static-asserts that one index search can return that many. */
#define SC_SEMANTIC_CANDIDATES_MAX 256

/* One "key = value" line of a [namespace NAME] section of the config file. */
typedef struct {
    char *key;   /* setting name as written, e.g. "threshold" */
    char *value; /* its text, quotes and backslash escapes removed */
    int quoted;  /* written as "...": always a string, never a number */
    int line;    /* line number in the file, for messages */
} sc_config_kv_t;

/* A [namespace NAME] section: settings the server gives namespace NAME at
 * start, in the form PUT /v1/namespaces/NAME takes (converted to JSON by
 * sc_config_ns_json; core does not know the namespace settings). */
typedef struct {
    char *name;         /* namespace name, checked like the API's */
    int line;           /* line of the section header */
    sc_config_kv_t *kv; /* settings in file order; a repeated key keeps its last value */
    size_t n_kv;
} sc_config_ns_t;

typedef struct sc_config_s {
    char host[256];                /* listen address; loopback by default */
    int64_t port;                  /* listen port */
    int64_t threads;               /* event loops; 0 = one per core */
    char data_dir[1024];           /* LMDB environment directory */
    int64_t map_size;              /* LMDB map size in bytes (upper bound of the store) */
    int64_t sync;                  /* sc_sync_mode_t: when a store counts as durable */
    int64_t sync_interval_ms;      /* fsync period for --sync periodic */
    int64_t evict;                 /* sc_evict_mode_t: what a full store does */
    int64_t max_entries;           /* most entries the store holds; 0 = bounded by map_size only */
    int64_t default_ttl_s;         /* TTL of entries stored without ttl_s; 0 = never */
    int64_t max_ttl_s;             /* largest ttl_s a store may ask for */
    int64_t sweep_interval_ms;     /* how often expired entries are purged */
    int64_t hit_flush_ms;          /* how often coalesced hit counts are written */
    int64_t max_header_bytes;      /* request line + headers */
    int64_t max_body_bytes;        /* request body after de-chunking */
    int64_t max_connections;       /* open client connections, all loops together */
    int64_t idle_timeout_ms;       /* keep-alive connection with no request */
    int64_t request_timeout_ms;    /* first byte of a request to its last byte */
    int64_t drain_timeout_ms;      /* on SIGTERM: most time to answer what was received */
    int64_t writer_batch;          /* most writes in one group commit */
    int64_t writer_queue;          /* most writes waiting; more get 503 */
    int64_t semantic;              /* 1: semantic lookup on for namespaces that do not say */
    double threshold;              /* default cosine threshold of a semantic hit */
    /* on: built-in models' own default thresholds win over --threshold */
    int64_t model_thresholds;
    int64_t allow_lower_threshold; /* may a request lower its namespace's threshold */
    int64_t max_dimensions;        /* longest embedding accepted */
    int64_t index_flat_max;       /* a scope is promoted from flat to HNSW past this many vectors */
    int64_t index_scan_max;       /* ... unless its int8 scan runs and vectors x dims <= this */
    int64_t hnsw_m;               /* HNSW graph degree */
    int64_t hnsw_ef_construction; /* HNSW build beam */
    int64_t hnsw_ef_search;       /* the widest HNSW search beam */
    int64_t hnsw_ef_search_min;   /* a semantic lookup's first, small beam; 0 = widest only */
    int64_t hnsw_int8;            /* 1: walk graphs on an int8 copy, rescore in float32 */
    double search_margin;         /* small beam decides when best is this far from the threshold */
    double search_gap;            /* ... and, for a hit, this far above the second best */
    int64_t search_verify_every;  /* 1 in N at-once decisions re-run at the widest beam */
    double search_max_disagree;   /* past this disagreement rate a scope uses the widest beam */
    int64_t semantic_candidates;  /* nearest neighbours checked per semantic lookup */
    int64_t search_threads; /* semantic-search workers; 0 = one per event loop, -1 = on the loops */
    int64_t search_queue;   /* searches waiting; beyond, lookups answer exact-only */
    int64_t index_delta_max;      /* changes kept beside an HNSW graph before a merge */
    double compact_deleted_ratio; /* rebuild a scope when this fraction is deleted */
    char
        model[1024]; /* server-side embedder: model dir, .scglove file or "glove-100d"; "" = none */
    char models[4096];            /* more models, NAME=SPEC,... that namespaces choose by name */
    int64_t embed_threads;        /* embedding worker threads */
    int64_t embed_intra_threads;  /* threads sharing one BERT forward pass */
    int64_t blas_threads;         /* OpenBLAS threads inside one BLAS call */
    int64_t embed_batch;          /* most texts embedded in one call */
    int64_t embed_wait_us;        /* how long a worker waits to fill a batch */
    int64_t embed_inline_us;      /* a loop embeds texts measured to take at most this */
    int64_t embed_queue;          /* most texts waiting; beyond, lookups skip semantic */
    int64_t embed_timeout_ms;     /* a text not embedded within this is skipped */
    char embed_remote_model[256]; /* model name sent to a remote:URL embedder */
    int64_t embed_remote_concurrency; /* remote embedding calls in flight */
    int64_t embed_dimensions;         /* remote embedders' dimension; 0 = learn it from a probe */
    double sample_rate;               /* default fraction of hits validated */
    int64_t validate_first;           /* a new scope's first semantic hits are always validated */
    int64_t validation_pending;       /* most validations awaiting feedback */
    int64_t validation_retention;     /* validation records kept in LMDB */
    int64_t validation_timeout_s;     /* a validation not answered within this is forgotten */
    char upstream_url[1024]; /* OpenAI-compatible chat completions URL for delivery "upstream"; "" =
                                none */
    /* compare "judge": the model asked; "" = the request's own */
    char judge_model[128];
    char upstream_key_env[128];   /* environment variable holding the upstream API key */
    int64_t upstream_timeout_ms;  /* one re-inference call */
    int64_t upstream_concurrency; /* re-inference calls in flight */
    int64_t upstream_queue;       /* re-inference calls waiting; beyond, samples are dropped */
    char webhook_url[1024];       /* where delivery "webhook" posts sampled hits; "" = none */
    char webhook_key_env[128];    /* environment variable holding the webhook bearer token */
    char prices[1024];            /* price table file; "" = the built-in contrib/prices.json */
    double answer_similarity; /* default cosine two answers need to agree ("semantic" compare) */
    double budget_confidence; /* one-sided confidence of the error-budget bound */
    int64_t budget_min_scope_obs; /* validations a scope needs before it gets its own threshold */
    int64_t budget_max_scopes;    /* scopes whose validations are tracked for the error budget */
    double explore_rate;          /* default fraction of below-threshold candidates explored */
    double explore_floor;         /* default similarity below which nothing is explored */
    double validation_budget;     /* default share of saved calls paid validations may spend */
    double validation_min_rate;   /* hits still validated while that budget is spent */
    char auth_token[256];  /* bearer token for every endpoint but /healthz, /readyz (and /metrics);
                              "" = none */
    char admin_token[256]; /* token for invalidate, flush and namespace changes; "" = auth_token */
    int64_t metrics_auth;  /* does /metrics need the token */
    int64_t max_label_values; /* distinct namespace (or namespace+model) label values in /metrics */
    int64_t log_level;        /* sc_log_level_t */
    char log_file[512];       /* "" = stderr */
    char config_file[1024];   /* --config: file the options were read from; "" = none */
    sc_config_ns_t *ns_presets; /* its [namespace NAME] sections; owned, freed by sc_config_release
                                 * (a struct copy shares them: release the original last) */
    size_t n_ns_presets;
    /* fleet (docs/fleet.md) */
    char redis[1024];          /* Redis URL or unix socket path; "" = no fleet */
    char fleet[128];           /* fleet name: names the stream and registry keys */
    int64_t fleet_retention;   /* stream records kept (MAXLEN ~); 0 = unbounded */
    int64_t fleet_retention_s; /* or by age (MINID ~); 0 = by count */
    int64_t fleet_outbox_max;  /* unpublished local changes kept; 0 = unbounded */
    int64_t fleet_max_lag_ms;  /* a joining node is ready once caught up within this */
    int64_t fleet_tombstone_s; /* how long deletes and invalidations are remembered */
    char fleet_advertise[256]; /* URL peers reach this node at; "" = http://host:port */
    int64_t fleet_auto_resync; /* 1: re-bootstrap in process when trimmed past */
    /* ---- the transparent proxy (server/proxy*.c) ---- */
    char openai_base_url[1024]; /* upstream of /v1/chat/completions, /v1/responses, /v1/embeddings,
                                   ... */
    char anthropic_base_url[1024]; /* upstream of /v1/messages and Anthropic's other /v1/ paths */
    char openai_key_env[128]; /* environment variable with a key for clients that send none; "" =
                                 none */
    char anthropic_key_env[128];
    int64_t proxy_tenant;     /* sc_proxy_tenant_mode_t: key, header, none */
    int64_t proxy_timeout_ms; /* one whole upstream call (streams included) */
    int64_t proxy_connect_timeout_ms;
    int64_t proxy_idle_timeout_ms;      /* no upstream byte for this long ends the call */
    int64_t proxy_concurrency;          /* upstream transfers in flight */
    int64_t proxy_queue;                /* upstream calls waiting beyond those */
    int64_t proxy_max_host_connections; /* 0 = no cap */
    double proxy_max_error_rate;        /* error budget of proxied traffic by default; 0 = none */
    int64_t proxy_record_max_bytes;     /* most recorded stream (or answer) bytes worth storing */
    int64_t proxy_finish_after_disconnect_ms; /* keep recording after the client left, this long */
    int64_t stream_replay_pace;               /* 0 none, 1 original */
    int64_t proxy_buffer_high; /* pause the upstream when this much output is queued */
    int64_t proxy_buffer_low;  /* resume it below this */
    int64_t coalesce_wait_ms;  /* a proxied miss waits this long for an identical one's answer;
                                * 0 = every miss calls upstream */
    int64_t lease_ms;          /* a native lookup's lease lasts this long */
} sc_config_t;

/* What sc_config_parse returns besides 0 and SC_EINVAL: the caller exits 0. */
#define SC_CONFIG_DONE 1 /* --help, --help-man or --help-config was printed to 'out' */
#define SC_CONFIG_VERSION                                                                          \
    2 /* --version: print sc_config_version() (the caller knows the SIMD level) */

/* Fills 'cfg' with every option's default (no namespace presets). Overwrites
 * the whole struct: call sc_config_release first on one that has presets. */
void sc_config_defaults(sc_config_t *cfg);
/* Applies, lowest precedence first, the config file (--config FILE or
 * SEMCACHED_CONFIG), SEMCACHED_* environment variables, then argv (in
 * core/config_file.c, above the table in config.c). On a bad value writes a
 * message to 'err' ("FILE:LINE: ..." for the file) and returns SC_EINVAL;
 * 'cfg' may then hold presets to release. Returns SC_CONFIG_DONE or
 * SC_CONFIG_VERSION when a flag that prints and exits was given (nothing is
 * read then). */
int sc_config_parse(sc_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);
/* The two last steps of sc_config_parse, on their own (core/config.c):
 * SEMCACHED_* variables, then --name value / --name=value arguments (argv[0]
 * skipped; no --help handling). SC_EINVAL with a message on a bad value. */
int sc_config_apply_env(sc_config_t *cfg, FILE *err);
int sc_config_apply_args(sc_config_t *cfg, int argc, char **argv, FILE *err);
/* Frees the namespace presets; every other field stays valid. Idempotent. */
void sc_config_release(sc_config_t *cfg);
/* Prints every option, its environment variable, default and help. */
void sc_config_usage(FILE *out);
/* Sets one option by name from text; for tests and config presets. */
int sc_config_set(sc_config_t *cfg, const char *name, const char *value, FILE *err);

/* One row of the options table, for the generated documents. Every pointer is
 * static (the table's) but 'arg' and 'env', which are copies. */
typedef struct {
    const char *name; /* flag without "--", e.g. "data-dir" */
    const char *def;  /* default as text; "" = empty */
    const char *help; /* one or more sentences */
    int is_string;    /* a TEXT option (quoted in the config file) */
    char arg[128];    /* "N", "X", "TEXT" or the choices "a|b|c" */
    char env[96];     /* its environment variable, SEMCACHED_... */
} sc_config_opt_t;
/* Fills 'out' with row 'i'; SC_ENOTFOUND past the last row. */
int sc_config_option(size_t i, sc_config_opt_t *out);

/* ---- core/config_file.c: the --config file --------------------------------
 * Lines are "name = value" (the option's flag name without --), '#' comments
 * and blank lines; a value may be "quoted" with \\ \" \n \t \r escapes; an
 * unquoted value ends at a '#' that follows a blank. After a "[namespace
 * NAME]" header, lines are that namespace's settings until the next header. */

/* Reads 'path' into 'cfg' (options applied, presets appended). On an error
 * writes "PATH:LINE: message" to 'err' and returns SC_EINVAL; a file that
 * cannot be read gives "PATH: reason" and -errno (SC_ETOOBIG past 1 MiB). */
int sc_config_load_file(sc_config_t *cfg, const char *path, FILE *err);
/* The same from 'len' bytes of 'text'; 'name' stands for the path in messages. */
int sc_config_load_text(sc_config_t *cfg, const char *name, const char *text, size_t len,
                        FILE *err);
/* Appends preset 'ns' as a JSON object (the body PUT /v1/namespaces/NAME
 * takes): a quoted value is a string; an unquoted one is a JSON number,
 * true/false (also on/off) or null when it reads as one, else a string. */
int sc_config_ns_json(const sc_config_ns_t *ns, sc_buf_t *out);
/* Appends the single setting 'kv' as a one-member JSON object, so a server
 * can apply settings one at a time and name the line of a bad one. */
int sc_config_kv_json(const sc_config_kv_t *kv, sc_buf_t *out);

/* ---- core/config_doc.c: documents generated from the options table -------- */

/* --help-man: the semcached(1) man page in roff (man(7) macros). */
void sc_config_man(FILE *out);
/* --help-config: an example config file, every option commented out with its
 * default and help, and a commented namespace section. */
void sc_config_template(FILE *out);
/* --version: version, 'git' (git describe at build time), compiler, 'simd'
 * (the hnswlib kernels, from sc_hnsw_simd) and the BLAS library. */
void sc_config_version(FILE *out, const char *git, const char *simd);

#endif
