/* tests/cache/proxy_entry.c -- stored proxy entries (cache/proxy_entry.c)
 * and serving them in the other form: assembling recorded streams into the
 * non-streamed bodies (cache/sse_assemble.c), synthesizing streams from
 * bodies (cache/sse_synth.c) and replaying with fresh ids
 * (cache/sse_replay.c). Payload shapes are written from the providers' API
 * references (OpenAI chat completions and streaming with tool calls,
 * Anthropic Messages streaming with tool_use, OpenAI Responses streaming):
 * the installed SDK packages ship no fixtures. */
#include "sc_proxy_entry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SSE_CT "text/event-stream; charset=utf-8"

/* Records the stream 'in' as a well-behaved upstream would send it. */
static sc_sse_rec_t *record(sc_api_t api, const char *in, size_t len)
{
    sc_sse_rec_t *r;
    ck_assert_int_eq(sc_sse_rec_create(&r, api, 1 << 16, 1 << 22), 0);
    ck_assert_int_eq(sc_sse_rec_set_response(r, 200, SSE_CT), 0);
    for (size_t at = 0; at < len; at += 100)
        ck_assert_int_eq(
            sc_sse_rec_feed(r, in + at, len - at < 100 ? len - at : 100, at / 10, NULL, NULL), 0);
    return r;
}

/* A NUL-terminated copy of 's' (event data in an arena is not). Owned. */
static char *dup_slice(sc_slice_t s)
{
    char *p = malloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* Records 'in' and views it as an entry in '*e' (free both). */
static sc_sse_rec_t *recorded(sc_api_t api, const char *in, size_t len, sc_proxy_entry_t *e)
{
    sc_sse_rec_t *r = record(api, in, len);
    ck_assert_int_eq(sc_proxy_entry_from_rec(e, r), 0);
    return r;
}

/* Appends the replay of every event of 'e' to 'wire'. */
static void replay_all(sc_proxy_replay_t *rp, const sc_proxy_entry_t *e,
                       const sc_sse_usage_t *usage, sc_buf_t *wire)
{
    for (size_t i = 0; i < e->n_events; i++)
        ck_assert_int_eq(sc_proxy_replay_event(rp, &e->events[i], usage, wire), 0);
}

/* Asserts that the JSON texts 'got' and 'want' are equal as JSON. */
static void assert_json_eq(const char *got, const char *want)
{
    json_error_t e1, e2;
    json_t *g = json_loads(got, 0, &e1), *w = json_loads(want, 0, &e2);
    ck_assert_msg(g != NULL, "got is not JSON: %s (%s)", got, e1.text);
    ck_assert_msg(w != NULL, "want is not JSON: %s (%s)", want, e2.text);
    ck_assert_msg(json_equal(g, w), "JSON differs:\n got  %s\n want %s", got, want);
    json_decref(g);
    json_decref(w);
}

/* ---- fixtures ------------------------------------------------------------ */

#define CHUNK(delta, finish)                                                                       \
    "data: {\"id\":\"chatcmpl-T1\",\"object\":\"chat.completion.chunk\",\"created\":1718000001,"   \
    "\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_"    \
    "x\","                                                                                         \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" finish    \
    "}]}\n\n"

/* Two parallel tool calls whose arguments arrive split, then usage. */
static const char CHAT_TOOLS[] = CHUNK(
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_A\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}],"
    "\"refusal\":null}",
    "null") CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"loc\"}}]}",
                  "null") CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                "\"ation\\\": \\\"Paris\\\"}\"}}]}",
                                "null")
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\",\"type\":\"function\",\"function\":"
          "{\"name\":\"get_time\",\"arguments\":\"\"}}]}",
          "null") CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"tz\\\":"
                        "\\\"CET\\\"}\"}}]}",
                        "null")
        CHUNK("{}", "\"tool_calls\"") "data: "
                                      "{\"id\":\"chatcmpl-T1\",\"object\":\"chat.completion."
                                      "chunk\",\"created\":1718000001,"
                                      "\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":"
                                      "\"default\",\"system_fingerprint\":\"fp_x\","
                                      "\"choices\":[],\"usage\":{\"prompt_tokens\":82,\"completion_"
                                      "tokens\":41,\"total_tokens\":123,"
                                      "\"prompt_tokens_details\":{\"cached_tokens\":64}}}\n\n"
                                      "data: [DONE]\n\n";

static const char CHAT_TOOLS_BODY[] =
    "{\"id\":\"chatcmpl-T1\",\"object\":\"chat.completion\",\"created\":1718000001,\"model\":"
    "\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":null,"
    "\"refusal\":null,\"tool_calls\":[{\"id\":\"call_A\",\"type\":\"function\",\"function\":{"
    "\"name\":"
    "\"get_weather\",\"arguments\":\"{\\\"location\\\": "
    "\\\"Paris\\\"}\"}},{\"id\":\"call_B\",\"type\":"
    "\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]"
    "},"
    "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,"
    "\"completion_tokens\":41,\"total_tokens\":123,\"prompt_tokens_details\":{\"cached_tokens\":64}"
    "},"
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_x\"}";

/* Plain text in three chunks, without include_usage. */
static const char CHAT_TEXT[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null")
        CHUNK("{\"content\":\"Hello\"}", "null") CHUNK("{\"content\":\" there,\"}", "null")
            CHUNK("{\"content\":\" world\"}", "null") CHUNK("{}", "\"stop\"") "data: [DONE]\n\n";

static const char MSG_TOOL[] =
    "event: message_start\ndata: "
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\","
    "\"content\":[],"
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_"
    "input_tokens\":0,"
    "\"cache_read_input_tokens\":0,\"output_tokens\":2}}}\n\n"
    "event: content_block_start\ndata: "
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
    "{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"Okay, let me check\"}}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\" the weather.\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\ndata: "
    "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\","
    "\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San Fra\"}}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"ncisco, CA\\\", \\\"unit\\\": \\\"fah\"}}\n\n"
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"renheit\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\ndata: "
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char MSG_TOOL_BODY[] =
    "{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":"
    "\"claude-sonnet-4-20250514\",\"content\":[{\"type\":\"text\",\"text\":\"Okay, let me check "
    "the weather.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\","
    "\"input\":"
    "{\"location\":\"San Francisco, CA\",\"unit\":\"fahrenheit\"}}],\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":0,\"output_tokens\":89}}";

/* A pretty-printed Responses body, as the API sends it. */
static const char RESP_BODY[] =
    "{\n  \"id\": \"resp_67ccd2bed1ec8190b14f964abc054267\",\n  \"object\": \"response\",\n"
    "  \"created_at\": 1741476542,\n  \"status\": \"completed\",\n  \"error\": null,\n"
    "  \"model\": \"gpt-4.1-2025-04-14\",\n  \"output\": [\n    {\n      \"type\": \"message\",\n"
    "      \"id\": \"msg_67ccd2bf17f0819081ff3bb2cf6508e6\",\n      \"status\": \"completed\",\n"
    "      \"role\": \"assistant\",\n      \"content\": [\n        {\n          \"type\": "
    "\"output_text\",\n"
    "          \"text\": \"In a peaceful grove beneath a silver moon, a unicorn named Lumina "
    "discovered a "
    "hidden pool that reflected the stars. \\u00c9t\\u00e9 \xe6\x97\xa5\xe6\x9c\xac.\",\n"
    "          \"annotations\": []\n        }\n      ]\n    },\n    {\n      \"type\": "
    "\"function_call\",\n"
    "      \"id\": \"fc_12345xyz\",\n      \"call_id\": \"call_12345xyz\",\n      \"name\": "
    "\"get_weather\",\n"
    "      \"arguments\": \"{\\\"location\\\":\\\"Paris, France\\\"}\",\n      \"status\": "
    "\"completed\"\n    }\n"
    "  ],\n  \"usage\": {\n    \"input_tokens\": 36,\n    \"input_tokens_details\": "
    "{\"cached_tokens\": 0},\n"
    "    \"output_tokens\": 87,\n    \"output_tokens_details\": {\"reasoning_tokens\": 0},\n"
    "    \"total_tokens\": 123\n  }\n}\n";

/* ---- entry encoding ------------------------------------------------------ */

static void assert_entries_eq(const sc_proxy_entry_t *a, const sc_proxy_entry_t *b)
{
    ck_assert_int_eq(a->api, b->api);
    ck_assert_int_eq(a->form, b->form);
    ck_assert_int_eq(a->status, b->status);
    ck_assert_int_eq(a->usage.input, b->usage.input);
    ck_assert_int_eq(a->usage.output, b->usage.output);
    ck_assert_int_eq(a->usage.cached_input, b->usage.cached_input);
    ck_assert_uint_eq(a->content_type.len, b->content_type.len);
    ck_assert_int_eq(memcmp(a->content_type.ptr, b->content_type.ptr, a->content_type.len), 0);
    ck_assert_uint_eq(a->model.len, b->model.len);
    ck_assert_int_eq(memcmp(a->model.ptr, b->model.ptr, a->model.len), 0);
    ck_assert_uint_eq(a->body.len, b->body.len);
    if (a->body.len)
        ck_assert_int_eq(memcmp(a->body.ptr, b->body.ptr, a->body.len), 0);
    ck_assert_uint_eq(a->n_events, b->n_events);
    for (size_t i = 0; i < a->n_events; i++) {
        ck_assert_uint_eq(a->events[i].offset_ms, b->events[i].offset_ms);
        ck_assert_uint_eq(a->events[i].event.len, b->events[i].event.len);
        ck_assert_int_eq(
            memcmp(a->events[i].event.ptr, b->events[i].event.ptr, a->events[i].event.len), 0);
        ck_assert_uint_eq(a->events[i].data.len, b->events[i].data.len);
        ck_assert_int_eq(
            memcmp(a->events[i].data.ptr, b->events[i].data.ptr, a->events[i].data.len), 0);
    }
}

START_TEST(entry_round_trip)
{
    /* A stream entry straight from a recorder. */
    sc_proxy_entry_t e, d;
    sc_sse_rec_t *r = recorded(SC_API_ANTHROPIC_MESSAGES, MSG_TOOL, strlen(MSG_TOOL), &e);
    ck_assert_uint_eq(e.n_events, 13);
    ck_assert_int_eq(e.usage.input, 472);
    ck_assert_int_eq(e.usage.output, 89);
    sc_buf_t enc = {0};
    ck_assert_int_eq(sc_proxy_entry_encode(&e, &enc), 0);
    ck_assert_int_eq(sc_proxy_entry_decode(&d, enc.data, enc.len), 0);
    assert_entries_eq(&e, &d);
    ck_assert_uint_gt(d.events[12].offset_ms, 0);
    sc_proxy_entry_free(&d);
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
    /* A body entry keeps the body byte for byte, NUL and all. */
    char body[sizeof(RESP_BODY) + 8];
    memcpy(body, RESP_BODY, sizeof(RESP_BODY));
    ck_assert_int_eq(sc_proxy_entry_from_body(&e, SC_API_OPENAI_RESPONSES, 200, "application/json",
                                              body, strlen(body)),
                     0);
    ck_assert_int_eq(e.usage.input, 36);
    ck_assert_int_eq(e.usage.output, 87);
    ck_assert_int_eq(e.usage.cached_input, 0);
    ck_assert_int_eq(e.model.len == 18 && memcmp(e.model.ptr, "gpt-4.1-2025-04-14", 18) == 0, 1);
    enc.len = 0;
    ck_assert_int_eq(sc_proxy_entry_encode(&e, &enc), 0);
    ck_assert_int_eq(sc_proxy_entry_decode(&d, enc.data, enc.len), 0);
    assert_entries_eq(&e, &d);
    sc_proxy_entry_free(&d);
    /* Text that is not UTF-8 is refused at encode time, leaving 'out' as it was. */
    e.body = (sc_slice_t){"{\"a\":\"\xff\"}", 9};
    size_t before = enc.len;
    ck_assert_int_eq(sc_proxy_entry_encode(&e, &enc), SC_EINVAL);
    ck_assert_uint_eq(enc.len, before);
    sc_buf_free(&enc);
}
END_TEST

START_TEST(entry_rejects_corrupt_and_foreign)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}", /* a /store entry's own response */
        "{\"sc_proxy\":2,\"api\":\"chat\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"gemini\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"xml\",\"status\":200,\"ctype\":\"\",\"model\":"
        "\"\","
        "\"usage\":[1,2,3],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,-5],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"json\",\"status\":99,\"ctype\":\"\",\"model\":"
        "\"\","
        "\"usage\":[1,2,3],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"json\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"body\":{}}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[-1,\"x\"]]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[0,\"x\",\"e\",4]]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[0,5]]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[0,\"x\",\"a\\nb\"]]}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[0,\"x\"]],\"body\":\"{}\"}",
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\","
        "\"usage\":[1,2,3],\"events\":[[0,\"x\"]", /* truncated */
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        sc_proxy_entry_t e;
        ck_assert_msg(sc_proxy_entry_decode(&e, bad[i], strlen(bad[i])) == SC_ECORRUPT,
                      "accepted #%d", i);
    }
    /* The well-formed neighbour of the rejected ones is accepted. */
    static const char ok[] =
        "{\"sc_proxy\":1,\"api\":\"chat\",\"form\":\"stream\",\"status\":200,\"ctype\":\"\","
        "\"model\":\"\",\"usage\":[1,2,-1],\"events\":[[0,\"x\"],[3,\"y\",\"e\"]]}";
    sc_proxy_entry_t e;
    ck_assert_int_eq(sc_proxy_entry_decode(&e, ok, strlen(ok)), 0);
    ck_assert_uint_eq(e.n_events, 2);
    ck_assert_int_eq(e.usage.cached_input, -1);
    ck_assert_uint_eq(e.events[1].offset_ms, 3);
    ck_assert_int_eq(e.events[1].event.len == 1 && e.events[1].event.ptr[0] == 'e', 1);
    sc_proxy_entry_free(&e);
}
END_TEST

START_TEST(entry_of_a_10kb_stream_is_compact)
{
    /* A chat stream of realistic chunks (one short delta each), over 10 KB. */
    sc_buf_t raw = {0};
    sc_buf_puts(&raw, CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null"));
    for (int i = 0; raw.len < 10 * 1024; i++)
        sc_buf_printf(
            &raw,
            "data: "
            "{\"id\":\"chatcmpl-T1\",\"object\":\"chat.completion.chunk\",\"created\":1718000001,"
            "\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":"
            "\"fp_x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" "
            "word%d\"},\"logprobs\":null,"
            "\"finish_reason\":null}]}\n\n",
            i);
    sc_buf_puts(&raw, CHUNK("{}", "\"stop\"") "data: [DONE]\n\n");
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(SC_API_OPENAI_CHAT, raw.data, raw.len, &e);
    sc_buf_t enc = {0};
    ck_assert_int_eq(sc_proxy_entry_encode(&e, &enc), 0);
    double ratio = (double)enc.len / (double)raw.len;
    printf("proxy entry: %zu-byte stream (%zu events) -> %zu-byte entry (%.2fx)\n", raw.len,
           e.n_events, enc.len, ratio);
    ck_assert_msg(ratio < 2.0, "a %zu-byte stream became a %zu-byte entry (%.2fx)", raw.len,
                  enc.len, ratio);
    ck_assert_msg(ratio < 1.25, "entry overhead grew: %.2fx", ratio); /* measured 1.15x */
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
    sc_buf_free(&enc);
    sc_buf_free(&raw);
}
END_TEST

/* ---- assemble ------------------------------------------------------------ */

static void assemble_recorded(sc_api_t api, const char *stream, const char *want)
{
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(api, stream, strlen(stream), &e);
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_assemble(&e, &out), 0);
    assert_json_eq(out.data, want);
    sc_buf_free(&out);
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
}

START_TEST(assemble_chat_tool_calls_and_text)
{
    assemble_recorded(SC_API_OPENAI_CHAT, CHAT_TOOLS, CHAT_TOOLS_BODY);
    assemble_recorded(
        SC_API_OPENAI_CHAT, CHAT_TEXT,
        "{\"id\":\"chatcmpl-T1\",\"object\":\"chat.completion\",\"created\":1718000001,"
        "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Hello there, world\",\"refusal\":null},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"service_tier\":\"default\",\"system_fingerprint\":\"fp_"
        "x\"}");
    /* A JSON entry is not assembled. */
    sc_proxy_entry_t e = {.api = SC_API_OPENAI_CHAT, .form = SC_PROXY_FORM_JSON};
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_assemble(&e, &out), SC_EINVAL);
}
END_TEST

START_TEST(assemble_messages_tool_use)
{
    assemble_recorded(SC_API_ANTHROPIC_MESSAGES, MSG_TOOL, MSG_TOOL_BODY);
}
END_TEST

START_TEST(assemble_responses_is_the_completed_payload)
{
    static const char stream[] =
        "event: response.created\ndata: "
        "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":"
        "{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,"
        "\"response\":{\"id\":\"resp_1\", \"status\":\"completed\",\"output\":[],\"x\":1.50}}\n\n";
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(SC_API_OPENAI_RESPONSES, stream, strlen(stream), &e);
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_assemble(&e, &out), 0);
    /* Byte for byte, spacing and number formatting included. */
    ck_assert_str_eq(out.data,
                     "{\"id\":\"resp_1\", \"status\":\"completed\",\"output\":[],\"x\":1.50}");
    sc_buf_free(&out);
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
}
END_TEST

/* ---- synthesize ---------------------------------------------------------- */

/* Synthesizes from 'body', replays (include_usage) through the recorder --
 * the stream must end properly with the body's usage -- and assembles. */
static void round_trip(sc_api_t api, const char *body, sc_buf_t *assembled, sc_proxy_entry_t *syn)
{
    sc_proxy_entry_t e;
    ck_assert_int_eq(sc_proxy_entry_from_body(&e, api, 200, "application/json", body, strlen(body)),
                     0);
    ck_assert_int_eq(sc_proxy_synthesize(&e, syn), 0);
    ck_assert_int_eq(syn->form, SC_PROXY_FORM_STREAM);
    sc_proxy_replay_t rp;
    uint64_t rng = 1;
    ck_assert_int_eq(sc_proxy_replay_init(&rp, api, &rng, 1800000000, NULL, 0, 1), 0);
    sc_buf_t wire = {0};
    replay_all(&rp, syn, &syn->usage, &wire);
    sc_sse_rec_t *r = record(api, wire.data, wire.len);
    sc_sse_rec_state_t st;
    sc_sse_rec_state(r, &st);
    ck_assert_int_eq(st.storable, 1);
    ck_assert_int_eq(sc_sse_rec_usage(r).input, e.usage.input);
    ck_assert_int_eq(sc_sse_rec_usage(r).output, e.usage.output);
    ck_assert_int_eq(sc_sse_rec_usage(r).cached_input, e.usage.cached_input);
    sc_proxy_replay_free(&rp);
    sc_sse_rec_destroy(r);
    sc_buf_free(&wire);
    ck_assert_int_eq(sc_proxy_assemble(syn, assembled), 0);
}

START_TEST(synthesize_chat_round_trips)
{
    /* Text over several pieces with multi-byte characters, and tool calls. */
    static const char body[] =
        "{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion\","
        "\"created\":1741569952,"
        "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\","
        "\"content\":\"Caf\xc3\xa9 au lait: the capital of France is Paris, "
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
        "text follows here to make this longer than a single piece of sixty-four "
        "bytes.\",\"refusal\":null,"
        "\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":"
        "\"{\\\"q\\\":\\\"a fairly long argument string that needs more than one delta to "
        "send\\\"}\"}}]},"
        "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":19,"
        "\"completion_tokens\":10,\"total_tokens\":29,\"prompt_tokens_details\":{\"cached_tokens\":"
        "0}},"
        "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_abc\"}";
    sc_buf_t out = {0};
    sc_proxy_entry_t syn;
    round_trip(SC_API_OPENAI_CHAT, body, &out, &syn);
    assert_json_eq(out.data, body);
    /* The shape: role chunk first, pieces of at most 64 bytes, a usage chunk
     * with empty choices, [DONE] last. */
    ck_assert_uint_gt(syn.n_events, 6);
    char *first = dup_slice(syn.events[0].data),
         *usage = dup_slice(syn.events[syn.n_events - 2].data);
    ck_assert_ptr_nonnull(strstr(first, "\"role\":\"assistant\""));
    ck_assert_int_eq(memcmp(syn.events[syn.n_events - 1].data.ptr, "[DONE]", 6), 0);
    ck_assert_ptr_nonnull(strstr(usage, "\"choices\":[]"));
    free(first);
    free(usage);
    for (size_t i = 0; i < syn.n_events - 1; i++) {
        json_t *j = json_loadb(syn.events[i].data.ptr, syn.events[i].data.len, 0, NULL);
        ck_assert_ptr_nonnull(j); /* every piece is valid UTF-8 JSON */
        const char *c = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"), "content"));
        if (c)
            ck_assert_uint_le(strlen(c), 64);
        json_decref(j);
    }
    sc_proxy_entry_free(&syn);
    sc_buf_free(&out);
}
END_TEST

START_TEST(synthesize_messages_round_trips)
{
    sc_buf_t out = {0};
    sc_proxy_entry_t syn;
    round_trip(SC_API_ANTHROPIC_MESSAGES, MSG_TOOL_BODY, &out, &syn);
    assert_json_eq(out.data, MSG_TOOL_BODY);
    static const char *const names[] = {"message_start", "content_block_start",
                                        "content_block_delta"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(memcmp(syn.events[i].event.ptr, names[i], strlen(names[i])), 0);
    ck_assert_int_eq(memcmp(syn.events[syn.n_events - 1].event.ptr, "message_stop", 12), 0);
    sc_proxy_entry_free(&syn);
    sc_buf_free(&out);
}
END_TEST

START_TEST(synthesize_responses_round_trips)
{
    sc_buf_t out = {0};
    sc_proxy_entry_t syn;
    round_trip(SC_API_OPENAI_RESPONSES, RESP_BODY, &out, &syn);
    /* The body comes back byte for byte (its trailing newline aside). */
    ck_assert_uint_eq(out.len, strlen(RESP_BODY) - 1);
    ck_assert_int_eq(memcmp(out.data, RESP_BODY, out.len), 0);
    ck_assert_int_eq(memcmp(syn.events[0].event.ptr, "response.created", 16), 0);
    ck_assert_int_eq(memcmp(syn.events[syn.n_events - 1].event.ptr, "response.completed", 18), 0);
    /* sequence_number counts 0, 1, 2, ... */
    for (size_t i = 0; i < syn.n_events; i++) {
        json_t *j = json_loadb(syn.events[i].data.ptr, syn.events[i].data.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "sequence_number")), (json_int_t)i);
        json_decref(j);
    }
    sc_proxy_entry_free(&syn);
    sc_buf_free(&out);
}
END_TEST

/* ---- replay -------------------------------------------------------------- */

typedef struct {
    json_t *events; /* [[name, data], ...] as the SDK would see them */
} wire_t;

static int on_wire(void *ud, const sc_sse_event_t *ev)
{
    wire_t *w = ud;
    if (ev->dispatch)
        json_array_append_new(w->events, json_pack("[s#,s#]", ev->event.ptr, (int)ev->event.len,
                                                   ev->data.ptr, (int)ev->data.len));
    return 0;
}

static json_t *parse_wire(const sc_buf_t *b)
{
    wire_t w = {json_array()};
    sc_sse_parser_t *p;
    ck_assert_int_eq(sc_sse_parser_create(&p, 1 << 16), 0);
    ck_assert_int_eq(sc_sse_parser_feed(p, b->data, b->len, on_wire, &w), 0);
    ck_assert_uint_eq(sc_sse_parser_pending(p), 0);
    sc_sse_parser_destroy(p);
    return w.events;
}

/* Replaces every occurrence of 'from' in 's' by 'to' (the test's own model
 * of the rewrite). Returns an owned string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    sc_buf_t b = {0};
    size_t n = strlen(from);
    for (const char *p; (p = strstr(s, from)); s = p + n) {
        sc_buf_append(&b, s, (size_t)(p - s));
        sc_buf_puts(&b, to);
    }
    sc_buf_puts(&b, s);
    return b.data;
}

START_TEST(replay_chat_rewrites_ids_keeps_boundaries)
{
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(SC_API_OPENAI_CHAT, CHAT_TOOLS, strlen(CHAT_TOOLS), &e);
    uint64_t rng = 42;
    for (int include_usage = 0; include_usage <= 1; include_usage++) {
        sc_proxy_replay_t rp;
        ck_assert_int_eq(sc_proxy_replay_init(&rp, SC_API_OPENAI_CHAT, &rng, 1800000000, "gpt-4o",
                                              6, include_usage),
                         0);
        ck_assert_int_eq(strncmp(rp.id, "chatcmpl-", 9), 0);
        ck_assert_uint_eq(strlen(rp.id), 38);
        sc_buf_t wire = {0};
        replay_all(&rp, &e, &e.usage, &wire);
        json_t *got = parse_wire(&wire);
        /* One event per recorded event (the usage chunk only when asked),
         * each the recorded data with id, created and model replaced. */
        ck_assert_uint_eq(json_array_size(got), e.n_events - (include_usage ? 0 : 1));
        char id[sizeof(rp.id) + 16];
        snprintf(id, sizeof(id), "\"id\":\"%s\"", rp.id);
        for (size_t i = 0, j = 0; i < e.n_events; i++) {
            if (!include_usage && i == e.n_events - 2)
                continue; /* the usage chunk */
            char *d = dup_slice(e.events[i].data);
            char *a = replace_all(d, "\"id\":\"chatcmpl-T1\"", id);
            char *b = replace_all(a, "\"created\":1718000001", "\"created\":1800000000");
            char *want = replace_all(b, "\"model\":\"gpt-4o-2024-08-06\"", "\"model\":\"gpt-4o\"");
            ck_assert_str_eq(json_string_value(json_array_get(json_array_get(got, j++), 1)), want);
            free(d);
            free(a);
            free(b);
            free(want);
        }
        json_decref(got);
        sc_buf_free(&wire);
        sc_proxy_replay_free(&rp);
    }
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(replay_chat_adds_usage_only_when_known)
{
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(SC_API_OPENAI_CHAT, CHAT_TEXT, strlen(CHAT_TEXT), &e);
    ck_assert_int_eq(e.usage.input, -1); /* recorded without include_usage */
    sc_sse_usage_t known = {30, 4, 0};
    for (int k = 0; k < 2; k++) {
        sc_proxy_replay_t rp;
        uint64_t rng = 7;
        ck_assert_int_eq(sc_proxy_replay_init(&rp, SC_API_OPENAI_CHAT, &rng, 5, NULL, 0, 1), 0);
        sc_buf_t wire = {0};
        replay_all(&rp, &e, k ? &known : &e.usage, &wire);
        json_t *got = parse_wire(&wire);
        ck_assert_uint_eq(json_array_size(got), e.n_events + (size_t)k);
        if (k) {
            json_t *u = json_loads(
                json_string_value(json_array_get(json_array_get(got, e.n_events - 1), 1)), 0, NULL);
            ck_assert_int_eq(json_array_size(json_object_get(u, "choices")), 0);
            ck_assert_int_eq(
                json_integer_value(json_object_get(json_object_get(u, "usage"), "total_tokens")),
                34);
            ck_assert_str_eq(json_string_value(json_object_get(u, "model")), "gpt-4o-2024-08-06");
            ck_assert_str_eq(json_string_value(json_object_get(u, "id")), rp.id);
            json_decref(u);
        }
        json_decref(got);
        sc_buf_free(&wire);
        sc_proxy_replay_free(&rp);
    }
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
}
END_TEST

START_TEST(replay_messages_and_responses)
{
    /* Anthropic: message_start's id and model change, the tool_use id stays. */
    sc_proxy_entry_t e;
    sc_sse_rec_t *r = recorded(SC_API_ANTHROPIC_MESSAGES, MSG_TOOL, strlen(MSG_TOOL), &e);
    sc_proxy_replay_t rp;
    uint64_t rng = 3;
    ck_assert_int_eq(
        sc_proxy_replay_init(&rp, SC_API_ANTHROPIC_MESSAGES, &rng, 9, "claude-x", 8, 0), 0);
    ck_assert_int_eq(strncmp(rp.id, "msg_01", 6), 0);
    ck_assert_uint_eq(strlen(rp.id), 28);
    sc_buf_t wire = {0};
    replay_all(&rp, &e, &e.usage, &wire);
    json_t *got = parse_wire(&wire);
    ck_assert_uint_eq(json_array_size(got), e.n_events);
    json_t *start =
        json_loads(json_string_value(json_array_get(json_array_get(got, 0), 1)), 0, NULL);
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(got, 0), 0)), "message_start");
    json_t *m = json_object_get(start, "message");
    ck_assert_str_eq(json_string_value(json_object_get(m, "id")), rp.id);
    ck_assert_str_eq(json_string_value(json_object_get(m, "model")), "claude-x");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(m, "usage"), "input_tokens")), 472);
    ck_assert_ptr_nonnull(strstr(wire.data, "\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\""));
    ck_assert_ptr_null(strstr(wire.data, "msg_014p7gG3wDgGV9EUtLvnow3U"));
    json_decref(start);
    json_decref(got);
    sc_proxy_replay_free(&rp);
    sc_proxy_entry_free(&e);
    sc_sse_rec_destroy(r);
    /* Responses: the response's id, created_at and model in every lifecycle
     * event; item ids stay; the pretty-printed body's lines become several
     * data: lines that join back to it. */
    sc_proxy_entry_t body, syn;
    ck_assert_int_eq(sc_proxy_entry_from_body(&body, SC_API_OPENAI_RESPONSES, 200,
                                              "application/json", RESP_BODY, strlen(RESP_BODY)),
                     0);
    ck_assert_int_eq(sc_proxy_synthesize(&body, &syn), 0);
    ck_assert_int_eq(
        sc_proxy_replay_init(&rp, SC_API_OPENAI_RESPONSES, &rng, 1800000000, "gpt-4.1", 7, 0), 0);
    ck_assert_int_eq(strncmp(rp.id, "resp_", 5), 0);
    ck_assert_uint_eq(strlen(rp.id), 53);
    wire.len = 0;
    replay_all(&rp, &syn, &syn.usage, &wire);
    got = parse_wire(&wire);
    ck_assert_uint_eq(json_array_size(got), syn.n_events);
    int lifecycle = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        json_t *j =
            json_loads(json_string_value(json_array_get(json_array_get(got, i), 1)), 0, NULL);
        ck_assert_ptr_nonnull(j);
        json_t *resp = json_object_get(j, "response");
        if (resp) {
            lifecycle++;
            ck_assert_str_eq(json_string_value(json_object_get(resp, "id")), rp.id);
            ck_assert_int_eq(json_integer_value(json_object_get(resp, "created_at")), 1800000000);
            ck_assert_str_eq(json_string_value(json_object_get(resp, "model")), "gpt-4.1");
        }
        json_decref(j);
    }
    ck_assert_int_eq(lifecycle, 3);
    ck_assert_ptr_nonnull(strstr(wire.data, "msg_67ccd2bf17f0819081ff3bb2cf6508e6"));
    ck_assert_ptr_nonnull(strstr(wire.data, "\ndata:   \"object\": \"response\",\n"));
    /* The same RNG never hands out the same id twice in a row. */
    sc_proxy_replay_t rp2;
    ck_assert_int_eq(sc_proxy_replay_init(&rp2, SC_API_OPENAI_RESPONSES, &rng, 1, NULL, 0, 0), 0);
    ck_assert_str_ne(rp.id, rp2.id);
    json_decref(got);
    sc_buf_free(&wire);
    sc_proxy_replay_free(&rp);
    sc_proxy_replay_free(&rp2);
    sc_proxy_entry_free(&syn);
}
END_TEST

START_TEST(rewrite_body_keeps_other_bytes)
{
    sc_proxy_replay_t rp;
    uint64_t rng = 5;
    ck_assert_int_eq(sc_proxy_replay_init(&rp, SC_API_OPENAI_CHAT, &rng, 77, "m\"x", 3, 0), 0);
    static const char body[] =
        "{ \"id\" : \"old\", \"n\": 1.50e3, \"model\":\"gpt\",\"nested\":{\"id\":\"keep\"},"
        "\"created\":5 }";
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_rewrite_body(&rp, body, strlen(body), &out), 0);
    char want[256];
    snprintf(want, sizeof(want),
             "{ \"id\" : \"%s\", \"n\": 1.50e3, "
             "\"model\":\"m\\\"x\",\"nested\":{\"id\":\"keep\"},\"created\":77 }",
             rp.id);
    ck_assert_str_eq(out.data, want);
    ck_assert_int_eq(sc_proxy_rewrite_body(&rp, "[1]", 3, &out), SC_EINVAL);
    ck_assert_int_eq(sc_proxy_rewrite_body(&rp, "{\"id\":", 6, &out), SC_EINVAL);
    ck_assert_str_eq(out.data, want);
    sc_buf_free(&out);
    sc_proxy_replay_free(&rp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_entry");
    TCase *te = tcase_create("entry");
    tcase_add_test(te, entry_round_trip);
    tcase_add_test(te, entry_rejects_corrupt_and_foreign);
    tcase_add_test(te, entry_of_a_10kb_stream_is_compact);
    suite_add_tcase(s, te);
    TCase *ta = tcase_create("assemble");
    tcase_add_test(ta, assemble_chat_tool_calls_and_text);
    tcase_add_test(ta, assemble_messages_tool_use);
    tcase_add_test(ta, assemble_responses_is_the_completed_payload);
    suite_add_tcase(s, ta);
    TCase *ts = tcase_create("synthesize");
    tcase_add_test(ts, synthesize_chat_round_trips);
    tcase_add_test(ts, synthesize_messages_round_trips);
    tcase_add_test(ts, synthesize_responses_round_trips);
    suite_add_tcase(s, ts);
    TCase *tr = tcase_create("replay");
    tcase_add_test(tr, replay_chat_rewrites_ids_keeps_boundaries);
    tcase_add_test(tr, replay_chat_adds_usage_only_when_known);
    tcase_add_test(tr, replay_messages_and_responses);
    tcase_add_test(tr, rewrite_body_keeps_other_bytes);
    suite_add_tcase(s, tr);
    return tu_run(s);
}
