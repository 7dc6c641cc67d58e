/* tests/cache/sse.c -- the SSE parser (cache/sse.c) and the stream recorder
 * (cache/sse_rec.c): split invariance over every cut of a stream mixing
 * LF, CRLF and CR endings, the field rules, the size bound, and per API the
 * end/error detection and usage extraction. The payloads are written from
 * the providers' API references (OpenAI chat streaming and include_usage,
 * Anthropic Messages streaming, OpenAI Responses streaming events): the
 * SDK packages on this machine ship no stream fixtures. */
#include "sc_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- parser -------------------------------------------------------------- */

typedef struct {
    sc_buf_t log;   /* one line per block: every parsed field */
    sc_buf_t raw;   /* the blocks' raw bytes, concatenated */
    int n, stop_at; /* blocks seen; return 7 at this block (0 = never) */
} collect_t;

static int collect(void *ud, const sc_sse_event_t *ev)
{
    collect_t *c = ud;
    sc_buf_printf(&c->log, "D%d E[%.*s] d%d[%.*s] I%d[%.*s] R%lld\n", ev->dispatch,
                  (int)ev->event.len, ev->event.ptr, ev->n_data, (int)ev->data.len, ev->data.ptr,
                  ev->has_id, (int)ev->id.len, ev->id.ptr, (long long)ev->retry);
    sc_buf_append(&c->raw, ev->raw.ptr, ev->raw.len);
    return ++c->n == c->stop_at ? 7 : 0;
}

static void collect_free(collect_t *c)
{
    sc_buf_free(&c->log);
    sc_buf_free(&c->raw);
}

/* Feeds 'in' cut at the positions in 'cuts' (ascending, 'n_cuts' of them). */
static int feed_cut(collect_t *c, const char *in, size_t len, const size_t *cuts, size_t n_cuts,
                    size_t max_event, size_t *pending)
{
    sc_sse_parser_t *p;
    ck_assert_int_eq(sc_sse_parser_create(&p, max_event), 0);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= n_cuts && !rc; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        rc = sc_sse_parser_feed(p, in + at, to - at, collect, c);
        at = to;
    }
    if (pending)
        *pending = sc_sse_parser_pending(p);
    sc_sse_parser_destroy(p);
    return rc;
}

static int feed_bytes(collect_t *c, const char *in, size_t len, size_t max_event)
{
    sc_sse_parser_t *p;
    ck_assert_int_eq(sc_sse_parser_create(&p, max_event), 0);
    int rc = 0;
    for (size_t i = 0; i < len && !rc; i++)
        rc = sc_sse_parser_feed(p, in + i, 1, collect, c);
    sc_sse_parser_destroy(p);
    return rc;
}

/* LF, CRLF and lone-CR endings, a comment, multi-line data, id and retry,
 * a field without a colon, a keep-alive, and CRLF blank lines. */
static const char MIXED[] =
    ": keep-alive comment\n\n"
    "event: first\r\ndata: {\"a\":1}\r\n\r\n"
    "data: line one\rdata: line two\r\rid: 42\ndata:no-space\ndata:  two-spaces\n\n"
    "retry: 1500\nretry: x1\nevent: named-only\n\n"
    "data\nunknown: field\n\n"
    "event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"
    "data: tail without blank line\n";

START_TEST(parser_every_split_equals_one_shot)
{
    size_t len = strlen(MIXED), pending = 0;
    collect_t one = {0};
    ck_assert_int_eq(feed_cut(&one, MIXED, len, NULL, 0, 4096, &pending), 0);
    ck_assert_int_eq(one.n, 7);
    /* The raw bytes of the blocks are the input up to the unterminated tail. */
    ck_assert_uint_eq(pending, strlen("data: tail without blank line\n"));
    ck_assert_uint_eq(one.raw.len, len - pending);
    ck_assert_int_eq(memcmp(one.raw.data, MIXED, one.raw.len), 0);
    ck_assert_str_eq(one.log.data, "D0 E[] d0[] I0[] R-1\n"
                                   "D1 E[first] d1[{\"a\":1}] I0[] R-1\n"
                                   "D1 E[] d2[line one\nline two] I0[] R-1\n"
                                   "D1 E[] d2[no-space\n two-spaces] I1[42] R-1\n"
                                   "D1 E[named-only] d0[] I0[] R1500\n"
                                   "D1 E[] d1[] I0[] R-1\n"
                                   "D1 E[ping] d1[{\"type\":\"ping\"}] I0[] R-1\n");
    /* Every two-way cut, including inside each CRLF, and byte by byte. */
    for (size_t cut = 0; cut <= len; cut++) {
        collect_t two = {0};
        size_t held;
        ck_assert_int_eq(feed_cut(&two, MIXED, len, &cut, 1, 4096, &held), 0);
        ck_assert_msg(strcmp(two.log.data, one.log.data) == 0, "cut at %zu differs", cut);
        /* The raw bytes are still the input: a CRLF blank line cut between
         * its CR and LF leaves the LF to lead the next block. */
        ck_assert_uint_eq(two.raw.len + held, len);
        ck_assert_int_eq(memcmp(two.raw.data, MIXED, two.raw.len), 0);
        collect_free(&two);
    }
    collect_t bytes = {0};
    ck_assert_int_eq(feed_bytes(&bytes, MIXED, len, 4096), 0);
    ck_assert_str_eq(bytes.log.data, one.log.data);
    ck_assert_int_eq(memcmp(bytes.raw.data, MIXED, bytes.raw.len), 0);
    /* Three-way cuts around every CR: the pairs straddling "\r" "\n". */
    for (size_t i = 0; i + 1 < len; i++) {
        if (MIXED[i] != '\r')
            continue;
        size_t cuts[2] = {i, i + 1};
        collect_t three = {0};
        ck_assert_int_eq(feed_cut(&three, MIXED, len, cuts, 2, 4096, NULL), 0);
        ck_assert_str_eq(three.log.data, one.log.data);
        collect_free(&three);
    }
    collect_free(&bytes);
    collect_free(&one);
}
END_TEST

START_TEST(parser_field_rules)
{
    /* A leading BOM is ignored; an id holding NUL is ignored; an empty
     * "event:" alone is not dispatched (the SDKs test the name's truth). */
    static const char in[] = "\xEF\xBB\xBF"
                             "data: x\n\n"
                             "id: a\0b\ndata: y\n\n"
                             "event:\n\n"
                             "event: e\nevent: last\ndata: z\n\n";
    collect_t c = {0};
    ck_assert_int_eq(feed_cut(&c, in, sizeof(in) - 1, NULL, 0, 4096, NULL), 0);
    ck_assert_str_eq(c.log.data, "D1 E[] d1[x] I0[] R-1\n"
                                 "D1 E[] d1[y] I0[] R-1\n"
                                 "D0 E[] d0[] I0[] R-1\n"
                                 "D1 E[last] d1[z] I0[] R-1\n");
    collect_free(&c);
    /* The BOM split over feeds is still skipped. */
    collect_t b = {0};
    size_t cuts[2] = {1, 2};
    ck_assert_int_eq(feed_cut(&b, in, 12, cuts, 2, 4096, NULL), 0);
    ck_assert_str_eq(b.log.data, "D1 E[] d1[x] I0[] R-1\n");
    collect_free(&b);
}
END_TEST

START_TEST(parser_oversize_event)
{
    /* A 100-byte data line with max_event 64: the block before it is
     * delivered, then SC_ETOOBIG, and it stays. */
    char in[256];
    int n = snprintf(in, sizeof(in), "data: ok\n\ndata: %0100d\n\n", 7);
    collect_t one = {0}, bytes = {0};
    ck_assert_int_eq(feed_cut(&one, in, (size_t)n, NULL, 0, 64, NULL), SC_ETOOBIG);
    ck_assert_int_eq(feed_bytes(&bytes, in, (size_t)n, 64), SC_ETOOBIG);
    ck_assert_int_eq(one.n, 1);
    ck_assert_int_eq(bytes.n, 1);
    sc_sse_parser_t *p;
    ck_assert_int_eq(sc_sse_parser_create(&p, 64), 0);
    collect_t c = {0};
    ck_assert_int_eq(sc_sse_parser_feed(p, in, (size_t)n, collect, &c), SC_ETOOBIG);
    ck_assert_int_eq(sc_sse_parser_feed(p, "data: x\n\n", 9, collect, &c), SC_ETOOBIG);
    ck_assert_int_eq(c.n, 1);
    sc_sse_parser_destroy(p);
    /* Exactly max_event bytes is allowed. */
    collect_t fit = {0};
    ck_assert_int_eq(feed_cut(&fit, "data: 123456789\n\n", 17, NULL, 0, 17, NULL), 0);
    ck_assert_int_eq(fit.n, 1);
    ck_assert_int_eq(sc_sse_parser_create(&p, 8), SC_EINVAL);
    collect_free(&one);
    collect_free(&bytes);
    collect_free(&c);
    collect_free(&fit);
}
END_TEST

START_TEST(parser_callback_stops)
{
    collect_t c = {.stop_at = 2};
    ck_assert_int_eq(feed_cut(&c, MIXED, strlen(MIXED), NULL, 0, 4096, NULL), 7);
    ck_assert_int_eq(c.n, 2);
    collect_free(&c);
}
END_TEST

/* ---- recorder ------------------------------------------------------------ */

static const char CHAT_STREAM[] =
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{"
    "\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{"
    "\"index\":0,"
    "\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}"
    "\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{"
    "\"index\":0,"
    "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":2,\"total_tokens\":21,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

static const char MSG_STREAM[] =
    "event: message_start\n"
    "data: "
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":"
    "\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\","
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: "
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":"
    "\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
    "\"Hello\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: "
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char RESP_STREAM[] =
    "event: response.created\n"
    "data: "
    "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_67c9fdcecf\","
    "\"object\":\"response\",\"created_at\":1741290958,\"status\":\"in_progress\",\"model\":"
    "\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_67c9\","
    "\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n"
    "event: response.completed\n"
    "data: "
    "{\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_"
    "67c9fdcecf\","
    "\"object\":\"response\",\"created_at\":1741290958,\"status\":\"completed\",\"model\":"
    "\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":{\"input_tokens\":36,\"input_tokens_details\":"
    "{\"cached_tokens\":4},\"output_tokens\":87,\"output_tokens_details\":{\"reasoning_tokens\":0},"
    "\"total_tokens\":123}}}\n\n";

typedef struct {
    int n_raw;
    sc_buf_t raw;
} relay_t;

static int relay(void *ud, const sc_sse_event_t *ev)
{
    relay_t *r = ud;
    r->n_raw++;
    return sc_buf_append(&r->raw, ev->raw.ptr, ev->raw.len);
}

/* Records 'in' (fed in 'chunk'-byte pieces, 10 ms apart) with 'status'. */
static sc_sse_rec_t *record(sc_api_t api, const char *in, size_t len, size_t chunk, int status,
                            const char *ct, size_t max_total, sc_sse_rec_state_t *st)
{
    sc_sse_rec_t *r;
    ck_assert_int_eq(sc_sse_rec_create(&r, api, 1 << 16, max_total), 0);
    ck_assert_int_eq(sc_sse_rec_set_response(r, status, ct), 0);
    relay_t rl = {0};
    for (size_t at = 0, t = 0; at < len; at += chunk, t++) {
        size_t n = len - at < chunk ? len - at : chunk;
        ck_assert_int_eq(sc_sse_rec_feed(r, in + at, n, 1000 + 10 * t, relay, &rl), 0);
    }
    /* The relay saw every byte of a well-terminated stream, in order. */
    ck_assert_uint_eq(rl.raw.len, len);
    ck_assert_int_eq(memcmp(rl.raw.data, in, len), 0);
    sc_buf_free(&rl.raw);
    sc_sse_rec_state(r, st);
    return r;
}

#define SSE_CT "text/event-stream; charset=utf-8"

START_TEST(rec_chat_end_usage_and_model)
{
    sc_sse_rec_state_t st;
    sc_sse_rec_t *r =
        record(SC_API_OPENAI_CHAT, CHAT_STREAM, strlen(CHAT_STREAM), 7, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.ended, 1);
    ck_assert_int_eq(st.error, 0);
    ck_assert_int_eq(st.storable, 1);
    ck_assert_uint_eq(st.n_events, 5);
    sc_sse_usage_t u = sc_sse_rec_usage(r);
    ck_assert_int_eq(u.input, 19);
    ck_assert_int_eq(u.output, 2);
    ck_assert_int_eq(u.cached_input, 0);
    ck_assert_str_eq(sc_sse_rec_model(r), "gpt-4o-mini-2024-07-18");
    sc_slice_t name, data;
    uint32_t off;
    ck_assert_int_eq(sc_sse_rec_event(r, 4, &name, &data, &off), 0);
    ck_assert_uint_eq(name.len, 0);
    ck_assert_int_eq(data.len == 6 && memcmp(data.ptr, "[DONE]", 6) == 0, 1);
    ck_assert_uint_gt(off, 0);
    ck_assert_int_eq(sc_sse_rec_event(r, 5, &name, &data, &off), SC_ENOTFOUND);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(rec_chat_missing_end_error_status)
{
    sc_sse_rec_state_t st;
    /* Cut before [DONE]: the usage came but the stream did not end. */
    size_t cut = strlen(CHAT_STREAM) - strlen("data: [DONE]\n\n");
    sc_sse_rec_t *r = record(SC_API_OPENAI_CHAT, CHAT_STREAM, cut, 64, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.ended, 0);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
    /* An error object mid-stream (openai throws APIError on it). */
    static const char err[] =
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
        "data: [DONE]\n\n";
    r = record(SC_API_OPENAI_CHAT, err, strlen(err), 5, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.error, 1);
    ck_assert_int_eq(st.ended, 0); /* nothing after an error counts */
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
    /* Data that is not JSON is an error too. */
    r = record(SC_API_OPENAI_CHAT, "data: {oops\n\ndata: [DONE]\n\n", 27, 100, 200, SSE_CT, 1 << 20,
               &st);
    ck_assert_int_eq(st.error, 1);
    sc_sse_rec_destroy(r);
    /* A complete stream with a non-2xx status or another type is not stored. */
    r = record(SC_API_OPENAI_CHAT, CHAT_STREAM, strlen(CHAT_STREAM), 4096, 500, SSE_CT, 1 << 20,
               &st);
    ck_assert_int_eq(st.ended, 1);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
    r = record(SC_API_OPENAI_CHAT, CHAT_STREAM, strlen(CHAT_STREAM), 4096, 200, "application/json",
               1 << 20, &st);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(rec_messages)
{
    sc_sse_rec_state_t st;
    sc_sse_rec_t *r = record(SC_API_ANTHROPIC_MESSAGES, MSG_STREAM, strlen(MSG_STREAM), 13, 200,
                             SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.storable, 1);
    ck_assert_uint_eq(st.n_events, 6); /* the ping is not kept */
    sc_sse_usage_t u = sc_sse_rec_usage(r);
    ck_assert_int_eq(u.input, 25);
    ck_assert_int_eq(u.output, 15); /* message_delta's count replaces message_start's */
    ck_assert_int_eq(u.cached_input, 10);
    ck_assert_str_eq(sc_sse_rec_model(r), "claude-sonnet-4-20250514");
    sc_slice_t name, data;
    uint32_t off;
    ck_assert_int_eq(sc_sse_rec_event(r, 0, &name, &data, &off), 0);
    ck_assert_int_eq(name.len == 13 && memcmp(name.ptr, "message_start", 13) == 0, 1);
    ck_assert_uint_eq(off, 0);
    sc_sse_rec_destroy(r);
    /* An error event mid-stream; and a stream without message_stop. */
    static const char err[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    r = record(SC_API_ANTHROPIC_MESSAGES, err, strlen(err), 9, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.error, 1);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
    size_t cut =
        strlen(MSG_STREAM) - strlen("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    r = record(SC_API_ANTHROPIC_MESSAGES, MSG_STREAM, cut, 100, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.ended, 0);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(rec_responses)
{
    sc_sse_rec_state_t st;
    sc_sse_rec_t *r = record(SC_API_OPENAI_RESPONSES, RESP_STREAM, strlen(RESP_STREAM), 33, 200,
                             SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.storable, 1);
    sc_sse_usage_t u = sc_sse_rec_usage(r);
    ck_assert_int_eq(u.input, 36);
    ck_assert_int_eq(u.output, 87);
    ck_assert_int_eq(u.cached_input, 4);
    ck_assert_str_eq(sc_sse_rec_model(r), "gpt-4.1-2025-04-14");
    sc_sse_rec_destroy(r);
    static const char failed[] =
        "event: response.created\ndata: "
        "{\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n"
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\","
        "\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}\n\n";
    r = record(SC_API_OPENAI_RESPONSES, failed, strlen(failed), 100, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.error, 1);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
    static const char err[] =
        "event: error\ndata: {\"type\":\"error\",\"code\":\"ERR_SOMETHING\","
        "\"message\":\"Something happened\",\"param\":null,\"sequence_number\":1}\n\n";
    r = record(SC_API_OPENAI_RESPONSES, err, strlen(err), 100, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.error, 1);
    sc_sse_rec_destroy(r);
    /* Without response.completed nothing is stored. */
    size_t cut = (size_t)(strstr(RESP_STREAM, "event: response.completed") - RESP_STREAM);
    r = record(SC_API_OPENAI_RESPONSES, RESP_STREAM, cut, 100, 200, SSE_CT, 1 << 20, &st);
    ck_assert_int_eq(st.ended, 0);
    ck_assert_int_eq(st.storable, 0);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(rec_bounds_and_offsets)
{
    /* Past max_total the recorder gives up: nothing kept, the relay still
     * gets every byte (checked in record()). */
    sc_sse_rec_state_t st;
    sc_sse_rec_t *r =
        record(SC_API_OPENAI_CHAT, CHAT_STREAM, strlen(CHAT_STREAM), 50, 200, SSE_CT, 300, &st);
    ck_assert_int_eq(st.gave_up, 1);
    ck_assert_int_eq(st.ended, 1);
    ck_assert_int_eq(st.storable, 0);
    ck_assert_uint_eq(st.n_events, 0);
    sc_slice_t name, data;
    uint32_t off;
    ck_assert_int_eq(sc_sse_rec_event(r, 0, &name, &data, &off), SC_ENOTFOUND);
    sc_sse_rec_destroy(r);
    /* Offsets: arrival after the first recorded event, in ms. */
    ck_assert_int_eq(sc_sse_rec_create(&r, SC_API_OPENAI_CHAT, 4096, 1 << 20), 0);
    ck_assert_int_eq(sc_sse_rec_feed(r, ": hi\n\n", 6, 500, NULL, NULL), 0);
    ck_assert_int_eq(sc_sse_rec_feed(r, "data: {\"a\":1}\n\nda", 17, 1000, NULL, NULL), 0);
    ck_assert_int_eq(sc_sse_rec_feed(r, "ta: {\"b\":2}\n\n", 13, 1042, NULL, NULL), 0);
    ck_assert_int_eq(sc_sse_rec_event(r, 0, &name, &data, &off), 0);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(sc_sse_rec_event(r, 1, &name, &data, &off), 0);
    ck_assert_uint_eq(off, 42);
    ck_assert_int_eq(data.len == 7 && memcmp(data.ptr, "{\"b\":2}", 7) == 0, 1);
    /* An event over max_event: the feed says so and the recorder gives up. */
    char big[5000];
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    ck_assert_int_eq(sc_sse_rec_feed(r, big, sizeof(big), 1100, NULL, NULL), SC_ETOOBIG);
    sc_sse_rec_state(r, &st);
    ck_assert_int_eq(st.gave_up, 1);
    sc_sse_rec_destroy(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("parser");
    tcase_add_test(tc, parser_every_split_equals_one_shot);
    tcase_add_test(tc, parser_field_rules);
    tcase_add_test(tc, parser_oversize_event);
    tcase_add_test(tc, parser_callback_stops);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("recorder");
    tcase_add_test(tr, rec_chat_end_usage_and_model);
    tcase_add_test(tr, rec_chat_missing_end_error_status);
    tcase_add_test(tr, rec_messages);
    tcase_add_test(tr, rec_responses);
    tcase_add_test(tr, rec_bounds_and_offsets);
    suite_add_tcase(s, tr);
    return tu_run(s);
}
