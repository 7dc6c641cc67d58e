/* sc_sse.h -- server-sent events for the transparent proxy: an incremental
 * parser (WHATWG EventSource line rules, dispatching as the openai and
 * @anthropic-ai SDKs do) that hands out each block's raw bytes for relaying,
 * and the recorder of one upstream stream, which knows per API whether the
 * stream ended properly and extracts the usage and model to store. */
#ifndef SC_SSE_H
#define SC_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

#include "sc_upstream_api.h"

/* Token counts as the API reported them; -1 where it reported none.
 * input: prompt_tokens (chat) / input_tokens (responses, messages). For
 *   Anthropic this excludes cached input, as the API counts it.
 * output: completion_tokens / output_tokens.
 * cached_input: prompt_tokens_details.cached_tokens (chat),
 *   input_tokens_details.cached_tokens (responses),
 *   cache_read_input_tokens (messages). */
typedef struct {
    int64_t input;
    int64_t output;
    int64_t cached_input;
} sc_sse_usage_t;

#define SC_SSE_USAGE_UNKNOWN ((sc_sse_usage_t){-1, -1, -1})

/* ---- parser ------------------------------------------------------------ */

/* One block of the stream: the lines up to and including a blank line.
 * Every slice points into the caller's input or the parser's buffers and is
 * valid only during the callback. Concatenating every block's 'raw' gives
 * back the input byte for byte (minus an unterminated tail, see
 * sc_sse_parser_pending), so a relay that writes 'raw' keeps the upstream's
 * boundaries and bytes unchanged. (A block ends at its blank line's CR when
 * the LF of that CRLF has not arrived yet; the LF then leads the next
 * block's raw bytes, which is what the client would have seen anyway.) */
typedef struct {
    sc_slice_t raw;   /* every byte of the block as received, its blank line included */
    sc_slice_t event; /* the last "event:" value; len 0 when none (type "message") */
    sc_slice_t data;  /* the "data:" values joined by "\n", no trailing newline */
    sc_slice_t id;    /* the last "id:" value (valid when has_id) */
    int64_t retry;    /* the last valid "retry:" value in ms, -1 when none */
    int has_id;
    int n_data;   /* "data:" lines seen (data "" with n_data 1 is an empty data line) */
    int dispatch; /* 1 when the SDKs deliver it: a non-empty event: or any data: field
                   * was seen; 0 for comments, keep-alives and field-less blocks */
} sc_sse_event_t;

/* Called once per block, in order. A non-zero return stops the feed, which
 * returns that value; like a parse error it is sticky (the rest of the input
 * was not scanned, so the parser cannot resume). */
typedef int (*sc_sse_event_cb)(void *ud, const sc_sse_event_t *ev);

typedef struct sc_sse_parser_s sc_sse_parser_t;

/* A parser whose blocks may be at most 'max_event' raw bytes (at least 16). */
int sc_sse_parser_create(sc_sse_parser_t **out, size_t max_event);
void sc_sse_parser_destroy(sc_sse_parser_t *p);
/* Parses 'n' more bytes of the stream, split anywhere (a CRLF may straddle
 * two calls), calling 'cb' for every block they complete. Returns 0, the
 * callback's non-zero value, SC_ETOOBIG when a block exceeds 'max_event' or
 * SC_ENOMEM. An error is sticky: every later feed returns it. 'p' is copied
 * only for an unfinished block; complete blocks are handed out in place. */
int sc_sse_parser_feed(sc_sse_parser_t *p, const char *buf, size_t n, sc_sse_event_cb cb, void *ud);
/* Bytes of an unterminated block held back; non-zero at the end of the
 * stream means it was cut mid-event (the SDKs drop such a tail too). */
size_t sc_sse_parser_pending(const sc_sse_parser_t *p);

/* ---- recorder ---------------------------------------------------------- */

typedef struct sc_sse_rec_s sc_sse_rec_t;

/* A recorder of one upstream stream of 'api': blocks of at most 'max_event'
 * bytes, and at most 'max_total' bytes of recorded event names and data,
 * beyond which it gives up recording (feeding still parses, tracks the end
 * and forwards; nothing is storable). */
int sc_sse_rec_create(sc_sse_rec_t **out, sc_api_t api, size_t max_event, size_t max_total);
void sc_sse_rec_destroy(sc_sse_rec_t *r);
/* The upstream's HTTP status and Content-Type (copied; NULL = none), once
 * its headers arrived. A stream is storable only with a 2xx status and a
 * text/event-stream type. */
int sc_sse_rec_set_response(sc_sse_rec_t *r, int status, const char *content_type);
/* Feeds upstream body bytes that arrived at 'now_ms' (any clock in ms; only
 * differences are kept). 'cb' (optional) sees every block first, for the
 * relay to write ev->raw. Returns 0, the callback's value, or the parser's
 * error (SC_ETOOBIG: the recorder gives up, and the relay should forward the
 * rest of the upstream bytes unparsed). */
int sc_sse_rec_feed(sc_sse_rec_t *r, const char *buf, size_t n, uint64_t now_ms, sc_sse_event_cb cb,
                    void *ud);
/* Records one parsed block, for a relay that runs its own parser. Blocks the
 * SDK would not deliver (and Anthropic pings) are not recorded. Returns 0 or
 * SC_ENOMEM. */
int sc_sse_rec_add(sc_sse_rec_t *r, const sc_sse_event_t *ev, uint64_t now_ms);

typedef struct {
    int status;   /* upstream HTTP status, 0 before set_response */
    int ended;    /* the API's end marker came: [DONE], message_stop, response.completed */
    int error;    /* an error event came, data did not parse, or response.failed */
    int gave_up;  /* the recording outgrew max_total or a block max_event */
    int storable; /* 2xx event stream, ended, no error, not given up */
    size_t n_events;
    size_t bytes; /* recorded event names and data */
} sc_sse_rec_state_t;

void sc_sse_rec_state(const sc_sse_rec_t *r, sc_sse_rec_state_t *out);
/* Usage as the stream reported it (SC_SSE_USAGE_UNKNOWN fields where not). */
sc_sse_usage_t sc_sse_rec_usage(const sc_sse_rec_t *r);
/* The model the upstream named, "" when none; owned by 'r'. */
const char *sc_sse_rec_model(const sc_sse_rec_t *r);
/* The content type given to set_response, "" when none; owned by 'r'. */
const char *sc_sse_rec_content_type(const sc_sse_rec_t *r);
/* The api given at create. */
sc_api_t sc_sse_rec_api(const sc_sse_rec_t *r);

/* Recorded event 'i' (< n_events): name (len 0 when none), data and arrival
 * offset in ms after the first recorded event. Slices are owned by 'r' and
 * valid until the next feed/add or destroy. SC_ENOTFOUND past the end or once
 * the recorder gave up. */
int sc_sse_rec_event(const sc_sse_rec_t *r, size_t i, sc_slice_t *name, sc_slice_t *data,
                     uint32_t *offset_ms);

#endif
