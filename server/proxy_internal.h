/* proxy_internal.h -- one proxied request (px_t) as the proxy's files share
 * it: proxy.c reads the request and decides (hit, miss, bypass, pass-through),
 * proxy_upstream.c runs the upstream call on the HTTP client's thread and
 * brings its bytes back to the request's loop, proxy_stream.c relays and
 * records them and replays hits, proxy_embeddings.c serves embeddings input
 * by input, proxy_tenant.c derives the tenant. Private to those files. */
#ifndef SC_SERVER_PROXY_INTERNAL_H
#define SC_SERVER_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "proxy.h"
#include "sc_proxy_entry.h"
#include "sc_proxy_request.h"
#include "sc_sse.h"

/* Whose API a request speaks: the upstream it goes to, the key variable
 * that fills in a missing key, and the shape of the proxy's own errors. */
typedef enum { PX_OPENAI = 0, PX_ANTHROPIC = 1 } px_provider_t;

struct sc_proxy_s {
    sc_ctx_t *ctx;
    sc_http_client_t *client; /* the upstream calls, on its own thread */
    uint8_t secret[32];       /* the tenant hash key, from <data-dir>/proxy.secret */
    char key[2][512];         /* [provider]: from --openai-key-env / --anthropic-key-env */
    _Atomic uint64_t fallbacks[SC_PXF_COUNT];
    _Atomic uint64_t pauses; /* upstream transfers paused for a slow client */
};

typedef struct px_s px_t;

/* What becomes of the upstream's answer on the loop: relayed to the client
 * as it arrives (recorded for the cache when 'store'), or collected whole
 * for 'collected' to answer from (embeddings). */
typedef enum { PX_RELAY, PX_COLLECT } px_mode_t;

struct px_s {
    sc_worker_t *w;
    sc_proxy_t *proxy;
    sc_conn_t *conn;               /* until answered, then NULL */
    int held;                      /* we hold 'conn' (px_hold): the answer is asynchronous */
    const sc_http_request_t *http; /* &http_copy while 'conn' is set, then NULL */
    sc_http_request_t http_copy;   /* the handler's struct is its stack's; the slices in it
                                    * stay valid until the response is complete */
    px_provider_t provider;
    sc_api_t api;   /* the cached API, 0 for another path */
    sc_pxa_t label; /* metrics api label */
    sc_pxr_t result;
    int stream;        /* the client asked for a stream */
    int include_usage; /* ... with stream_options.include_usage */
    int inject_usage;  /* we asked upstream for usage the client did not: filter it out */
    int store;         /* store the answer when it ends well */
    int has_req;
    sc_request_t req;          /* owned when has_req: what the entry is stored under */
    uint8_t key[SC_KEY_BYTES]; /* the request's key (X-Semcached-Key on a miss) */
    int has_key;
    sc_proxy_controls_t ctl; /* the client's header controls (ns borrowed from the request) */
    struct px_obs_s *obs;    /* a near miss to compare with the fresh answer (proxy_observe.c) */

    /* ---- the upstream call ------------------------------------------------ */
    sc_http_call_t call; /* data = this px */
    px_mode_t mode;
    void (*collected)(px_t *px); /* PX_COLLECT: the answer is in 'body' (or call.error is set) */
    void *ext;                   /* the mode's own state (embeddings), freed by 'ext_free' */
    void (*ext_free)(void *ext);
    uint64_t submitted_ns;
    int stores_pending;            /* writes of this answer not yet committed */
    void (*after_store)(px_t *px); /* then: frees px (the client was answered already) */

    /* ---- handed over from the client thread (guarded by 'mu') -------------- */
    pthread_mutex_t mu;
    sc_buf_t inbox; /* body bytes not yet taken by the loop */
    sc_buf_t spare; /* loop: the last inbox, emptied, swapped back in */
    int up_headers; /* on_headers ran */
    int up_done;    /* done ran: the client thread is finished with this px */
    int queued;     /* 'task' is posted and has not run yet */
    int paused;     /* the upstream transfer is paused: the inbox or the
                     * client's output passed --proxy-buffer-high */
    sc_task_t task;

    /* ---- the loop's side --------------------------------------------------- */
    int headers_taken;
    int begun;                 /* the client's response head went out */
    sc_sse_rec_t *rec;         /* a streamed answer being recorded */
    sc_sse_parser_t *filter;   /* inject_usage: events relayed one by one */
    sc_buf_t out;              /* bytes to relay from one feed */
    sc_buf_t body;             /* a JSON answer being recorded, or collected */
    int body_over;             /* ... it outgrew --proxy-record-max-bytes */
    int gone;                  /* the client left */
    uint64_t gone_deadline_ms; /* cancel the upstream call if it is not done by then */
    uv_timer_t timer;          /* flow control, the finish window, replay pacing */
    int timer_on;              /* its period in ms, 0 when stopped */

    /* ---- a streamed hit being replayed at its original pace ---------------- */
    sc_proxy_entry_t entry;
    sc_proxy_replay_t rp;
    size_t next_ev;
    uint64_t replay_t0_ms;

    /* ---- single flight (proxy_flight.c) ------------------------------------ */
    struct sc_fl_s *flight;       /* leading: the flight identical misses follow */
    struct sc_fl_wait_s *fl_wait; /* following: our place in a leader's flight */
    double fl_similarity;         /* ... 1 for an identical request */
    int coalesced;                /* answered from a leader's answer */
};

/* ---- proxy.c ---------------------------------------------------------------- */

/* A px for the request 'a' carries, holding its connection. NULL when out
 * of memory (then answered). */
px_t *px_new(const sc_call_t *a, sc_api_t api, sc_pxa_t label, px_provider_t provider);
/* Frees 'px' (its timer closes first); the connection must be answered. */
void px_free(px_t *px);
/* Answers the client (once) and lets its connection go: a whole response. */
void px_respond(px_t *px, int status, const char *ctype, const char *headers, const char *body,
                size_t len);
/* Answers an error of the proxy's own in the provider's shape:
 * {"error":{"message","type","param":null,"code"}} for OpenAI,
 * {"type":"error","error":{"type","message"}} for Anthropic. */
void px_error(px_t *px, int status, const char *message);
/* Holds the connection before going asynchronous (once). */
void px_hold(px_t *px);
/* Forgets the connection after its answer is complete (a stream ended or
 * was cut), releasing our hold. */
void px_release(px_t *px);
/* Ends the client's stream, lets the connection go and frees 'px'. */
void px_end_stream(px_t *px);
/* Appends our response headers: X-Cache, X-Semcached-Key (and for hits
 * X-Semcached-Match, -Similarity, Age, -Validation-Id). */
void px_cache_headers(const px_t *px, sc_buf_t *out, const sc_lookup_out_t *hit);
void px_fallback(sc_proxy_t *p, sc_pxf_t why);
/* Forwards a cacheable request upstream as a miss (a chat stream to be
 * stored asks for its usage). */
void px_forward_request(px_t *px);

/* ---- proxy_upstream.c --------------------------------------------------------- */

/* Sends the client's request upstream ('body' replaces its body when not
 * NULL; taken over) and answers from what comes back. On a submit failure
 * the client gets a 503 (or 502) in the API's shape and 'px' is freed. */
void px_forward(px_t *px, sc_buf_t *body);
/* The upstream's response headers worth passing on to the client (not
 * framing, hop-by-hop or cache headers), as CRLF-terminated lines. */
void px_upstream_headers(const px_t *px, sc_buf_t *out);
/* The client left (or a write found it gone): an answer being stored may
 * finish within --proxy-finish-after-disconnect-ms, anything else is
 * cancelled now. */
void px_client_gone(px_t *px);
/* Ends the upstream call (its done still comes); nothing if none runs. */
void px_cancel(px_t *px);
/* The store of a finished answer: 'entry_json' (taken over) under px->req,
 * with 'usage'. */
void px_store(px_t *px, sc_buf_t *entry_json, const sc_sse_usage_t *usage);
/* Queues the write of 'req' (taken over) with 'entry_json' (taken over) and
 * counts it in stores_pending; px->after_store runs once every write of the
 * px is committed (or failed, counted as a fallback). */
void px_store_request(px_t *px, sc_request_t *req, sc_buf_t *entry_json);

/* ---- proxy_stream.c ---------------------------------------------------------- */

/* The upstream's head arrived: set up the recording of its answer. */
void px_record_begin(px_t *px, int status, const char *ctype);
/* Relays 'n' upstream body bytes to the client (when still there) and
 * records them. */
void px_relay(px_t *px, const char *p, size_t n);
/* The upstream's answer ended well: store it if it is storable. */
void px_record_end(px_t *px);
/* Serves the stored answer 'out' (a hit) in the form the request asked for.
 * Returns 0 (answered; px freed), or SC_ECORRUPT when the entry cannot
 * serve it (nothing was sent: treat as a miss). */
int px_serve_hit(px_t *px, sc_lookup_out_t *out);
/* A chat stream request whose client did not ask for usage: 'body' is
 * the client's body with stream_options.include_usage set, to send
 * upstream instead. 0 or SC_E*. */
int px_usage_body(const char *body, size_t len, sc_buf_t *out);

/* ---- proxy_flight.c ---------------------------------------------------------- */

/* A cacheable miss about to be forwarded ('out' is its lookup): follows the
 * flight of an identical (or, with a vector, close) request in flight and
 * returns 1 (answered later from that one's answer), or returns 0 to be
 * forwarded, leading a flight of its own when it can. */
int px_flight_join(px_t *px, const sc_lookup_out_t *out);
/* The leader's hooks: its answer's head, each relayed body piece, the end
 * of a stream that ended well, and the entry it stores. */
void px_flight_head(px_t *px, int status, const char *ctype);
void px_flight_bytes(px_t *px, const char *p, size_t n);
void px_flight_ended(px_t *px);
void px_flight_done(px_t *px, const sc_buf_t *entry_json);
/* px_free's: a leader lets its flight go (failing it if it gave no
 * answer), a follower stops following. */
void px_flight_leave(px_t *px);

/* ---- proxy_tenant.c ---------------------------------------------------------- */

/* Reads <data-dir>/proxy.secret, creating it (32 random bytes, 0600) the
 * first time. */
int px_secret_load(const char *data_dir, uint8_t secret[32]);
/* The tenant of a proxied request under --proxy-tenant, into 'out' (at
 * least 65 bytes): the hex HMAC-SHA256 of the API key (x-api-key, else
 * the Authorization bearer value, else the configured key), the
 * X-Semcached-Tenant header, or "". Returns its length, or SC_EINVAL for a
 * header longer than SC_MAX_TENANT ('out' is then ""). */
int px_tenant(const sc_proxy_t *p, const sc_http_request_t *http, px_provider_t provider, char *out,
              size_t cap);

/* ---- proxy_observe.c ----------------------------------------------------------- */

/* A miss that 'out' says is worth observing: keeps its candidate (moved
 * out of 'out') in px->obs, with the request's namespace and scope. */
void px_observe_keep(px_t *px, sc_lookup_out_t *out);
/* The fresh answer 'entry_json' (an encoded entry, borrowed) is being
 * stored: compares it with the kept candidate and records the verdict
 * (match "observed"); px->obs is consumed. */
void px_observe_settle(px_t *px, const sc_buf_t *entry_json);
/* Frees px->obs if it was never settled. */
void px_observe_free(px_t *px);
/* A hit 'out' that was sampled for validation in a namespace whose proxied
 * delivery is "upstream": re-infers the client's request (stream off) with
 * its credentials through the proxy's client, after the hit is served, and
 * applies the verdict. Call before serving (the request is read here). */
void px_validate_hit(px_t *px, const sc_lookup_out_t *out);

/* ---- proxy_upstream.c (the re-inference's URL) ----------------------------------- */

/* The upstream URL of the client's request (as the forwarded call's). */
int px_upstream_url(px_t *px, char *url, size_t cap);
/* Copies the client's headers that 'keep' accepts onto 'call' (one curl
 * cannot send is left out), then, when the client sent no key, the
 * configured one of the px's provider: x-api-key for Anthropic, a bearer
 * token otherwise. 0 or SC_E*. */
int px_carry_headers(const px_t *px, sc_http_call_t *call,
                     int (*keep)(const px_t *px, sc_slice_t name));

/* ---- proxy_embeddings.c ------------------------------------------------------ */

/* POST /v1/embeddings with the controls read: input by input from the
 * cache, the rest upstream. */
void px_embeddings(px_t *px, const sc_proxy_ctx_t *pctx);

#endif
