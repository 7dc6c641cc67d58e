/* sc_proxy_entry.h -- what the transparent proxy stores as an entry's
 * "response" JSON, and the ways one entry serves both kinds of request: a
 * recorded stream is assembled into the body a non-streamed request gets, a
 * stored body is turned into the events a streamed request gets, and every
 * replayed event gets a fresh id, the current time and the request's model.
 * An entry is a view (sc_proxy_entry_t); who owns its bytes depends on the
 * function that filled it and is said there. */
#ifndef SC_PROXY_ENTRY_H
#define SC_PROXY_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_sse.h"

/* The stored answer's form: the upstream's JSON body, or its event stream. */
typedef enum { SC_PROXY_FORM_JSON = 1, SC_PROXY_FORM_STREAM = 2 } sc_proxy_form_t;

typedef struct {
    sc_slice_t event;   /* SSE event name; len 0 for none (OpenAI chat) */
    sc_slice_t data;    /* the data, as received ("[DONE]" included) */
    uint32_t offset_ms; /* arrival after the first event (for pace "original") */
} sc_proxy_event_t;

typedef struct {
    sc_api_t api;
    sc_proxy_form_t form;
    int status;              /* the upstream's HTTP status */
    sc_slice_t content_type; /* the upstream's Content-Type */
    sc_slice_t model;        /* the model the upstream named (len 0 when unknown) */
    sc_sse_usage_t usage;
    sc_slice_t body;                /* FORM_JSON: the upstream body, verbatim */
    const sc_proxy_event_t *events; /* FORM_STREAM: the events in order */
    size_t n_events;
    void *owned_; /* the one allocation behind an owned entry, else NULL */
} sc_proxy_entry_t;

/* Frees what an entry holds (all of it after decode and synthesize, the
 * event array after from_rec, nothing after from_body) and zeroes it. */
void sc_proxy_entry_free(sc_proxy_entry_t *e);

/* A view of recorder 'r''s stream as an entry (form STREAM, status, type,
 * model, usage). The strings are borrowed from 'r' (valid until r is fed
 * again or destroyed); the event array is the entry's own, so free it with
 * sc_proxy_entry_free. SC_EINVAL unless the recorder's state says storable. */
int sc_proxy_entry_from_rec(sc_proxy_entry_t *e, const sc_sse_rec_t *r);

/* A view of a non-streamed answer: 'body' (borrowed, kept verbatim), with
 * model and usage read from it. SC_EINVAL when the body is not a JSON
 * object. Whether to store it (2xx, no error) is the caller's call. */
int sc_proxy_entry_from_body(sc_proxy_entry_t *e, sc_api_t api, int status,
                             const char *content_type, const char *body, size_t len);

/* Reads the model and usage of a non-streamed body of 'api'. 'model' gets
 * the model ("" when none; truncated to 'model_cap'). SC_EINVAL when the body
 * is not a JSON object. */
int sc_proxy_body_usage(sc_api_t api, const char *body, size_t len, sc_sse_usage_t *usage,
                        char *model, size_t model_cap);

/* Appends the entry's compact JSON to 'out':
 *   {"sc_proxy":1,"api":"chat","form":"stream","status":200,"ctype":"...",
 *    "model":"...","usage":[in,out,cached],"events":[[ms,"data"],[ms,"data","name"],...]}
 * with "body":"..." instead of "events" for FORM_JSON; -1 for unknown
 * counts. SC_EINVAL for an entry with an unknown api or form, or text that is
 * not UTF-8 (which no decoder would take back), SC_ENOMEM. */
int sc_proxy_entry_encode(const sc_proxy_entry_t *e, sc_buf_t *out);
/* Decodes what encode wrote into an owned entry (free with
 * sc_proxy_entry_free). SC_ECORRUPT for anything else: not JSON, another
 * version, a foreign "response", missing or ill-typed members. SC_ENOMEM. */
int sc_proxy_entry_decode(sc_proxy_entry_t *e, const char *json, size_t len);

/* ---- serving the other form ------------------------------------------------- */

/* Appends to 'out' the non-streamed body the SDK would have received for a
 * STREAM entry, as its own accumulator builds it: chat.completion (content,
 * refusal, tool calls merged by index with arguments concatenated,
 * finish_reason, usage, system_fingerprint, service_tier), Anthropic message
 * (text, tool_use with input parsed from the joined partial_json, thinking,
 * stop_reason, stop_sequence, usage), or the Responses object of
 * response.completed, byte for byte. ids, created and model are the
 * recorded ones (see sc_proxy_rewrite_body). SC_EINVAL for a JSON entry;
 * SC_ECORRUPT when the events cannot be assembled. */
int sc_proxy_assemble(const sc_proxy_entry_t *e, sc_buf_t *out);

/* Fills 'out' with an owned STREAM entry whose events are those the API
 * would have streamed for the JSON entry 'e' (free with
 * sc_proxy_entry_free): chat: role chunk, content chunks, tool-call deltas,
 * finish chunk, a usage chunk when the body has usage (replay drops it unless
 * include_usage), [DONE]; messages: message_start, content_block_start /
 * delta / stop per block, message_delta, message_stop; responses:
 * response.created, response.in_progress, per output item its added /
 * delta / done events, then response.completed (response.incomplete or
 * response.failed when that is the body's status). Text is cut into pieces
 * of at most 64 bytes at word and UTF-8 boundaries. Offsets are 0.
 * SC_EINVAL for a STREAM entry; SC_ECORRUPT when the body is not the API's
 * shape. */
int sc_proxy_synthesize(const sc_proxy_entry_t *e, sc_proxy_entry_t *out);

/* ---- replay ------------------------------------------------------------------ */

/* One replay's substitutions, shared by all of its events. */
typedef struct {
    sc_api_t api;
    char id[64];       /* fresh: chatcmpl- + 29 base62, msg_01 + 22 base62, resp_ + 48 hex */
    char created[24];  /* decimal seconds */
    char *model_json;  /* the request's model as a JSON string, owned; NULL keeps the stored one */
    int include_usage; /* chat: the request's stream_options.include_usage */
    int usage_sent;    /* chat: a usage chunk went out */
    char chunk_model[128]; /* chat: the last chunk's raw "model" value, for an added usage chunk */
    char *echo_json[4]; /* responses: SC_PROXY_ECHOED's values for this request as JSON, owned
                         * (NULL: the stored one stays); see sc_proxy_replay_echo */
} sc_proxy_replay_t;

/* The request fields a Response object echoes that the key leaves out (they
 * never change the answer): a hit carries the asking request's values. */
#define SC_PROXY_ECHOED {"user", "metadata", "safety_identifier", "prompt_cache_key"}

/* Prepares a replay of an entry of 'api': draws the fresh id from the
 * caller's RNG state 'rng' (advanced), stamps 'now_s' (seconds since the
 * epoch), echoes 'model' ('model_len' bytes; NULL keeps the recorded model).
 * Free with sc_proxy_replay_free. */
int sc_proxy_replay_init(sc_proxy_replay_t *rp, sc_api_t api, uint64_t *rng, uint64_t now_s,
                         const char *model, size_t model_len, int include_usage);
void sc_proxy_replay_free(sc_proxy_replay_t *rp);
/* Responses: the replayed "response" objects echo the request 'body''s
 * SC_PROXY_ECHOED members (their defaults, null or {}, when it has none)
 * where the stored ones have them, so no client sees another's metadata.
 * 0 (nothing to do for other APIs or a body that is not a JSON object) or
 * SC_ENOMEM. */
int sc_proxy_replay_echo(sc_proxy_replay_t *rp, const char *body, size_t len);

/* Appends "event: NAME\n" (when named) "data: DATA\n\n" for event 'ev' of
 * the replay to 'out', ready to write: top-level "id", "created",
 * "created_at" and "model" (and sc_proxy_replay_echo's members) and the
 * same inside a top-level "message" or "response" object are replaced; everything else is copied byte for byte
 * (tool-call ids and item ids too). Chat: the usage chunk (empty choices,
 * non-null usage) is dropped unless include_usage; when include_usage is
 * asked and the stream had no usage chunk, 'usage' (the entry's, if known)
 * is sent as one just before [DONE] -- a count the upstream really reported,
 * never an invented one ('usage' may be NULL: never added). Data that is not
 * a JSON object ([DONE]) is copied; a line break inside data starts another
 * "data: " line, which the reader joins back with "\n". Call in event order
 * (the chat usage state lives in 'rp'); pacing by ev->offset_ms is the
 * caller's. Returns 0 or SC_ENOMEM. */
int sc_proxy_replay_event(sc_proxy_replay_t *rp, const sc_proxy_event_t *ev,
                          const sc_sse_usage_t *usage, sc_buf_t *out);

/* Appends the non-streamed body 'body' with the same substitutions as
 * sc_proxy_replay_event. The proxy serves stored JSON bodies verbatim (what
 * the SDK would have received, byte for byte); this is for an assembled body,
 * if the caller wants it to carry the replay's ids. SC_EINVAL (nothing
 * appended) when 'body' is not a JSON object, SC_ENOMEM. */
int sc_proxy_rewrite_body(const sc_proxy_replay_t *rp, const char *body, size_t len, sc_buf_t *out);

#endif
