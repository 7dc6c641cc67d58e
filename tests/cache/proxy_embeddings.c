/* tests/cache/proxy_embeddings.c -- the proxy's embeddings batches
 * (cache/proxy_embeddings.c): per-input keys, the upstream body for the
 * missing inputs, decoding upstream's answer, and the client's answer in both
 * encoding formats. Bodies use single quotes, turned into double quotes. */
#define _GNU_SOURCE /* strdup */
#include "../../cache/proxy_embeddings.c"

#include "proxy_bodies.h"
#include "testutil.h"

static int parse(sc_proxy_embeddings_t *e, const char *body, char *err, size_t cap)
{
    char *b = dq(body);
    err[0] = '\0';
    int rc = sc_proxy_embeddings_parse(e, b, strlen(b), &ctx_t1, err, cap);
    free(b);
    return rc;
}

static sc_proxy_embeddings_t parse_ok(const char *body)
{
    sc_proxy_embeddings_t e;
    char err[256];
    int rc = parse(&e, body, err, sizeof(err));
    ck_assert_msg(rc == 0, "parse failed (%d) for %s: %s", rc, body, err);
    return e;
}

/* The key of input 'i' of 'body'. */
static void key_of(const char *body, size_t i, uint8_t out[16])
{
    sc_proxy_embeddings_t e = parse_ok(body);
    ck_assert_uint_gt(e.n, i);
    memcpy(out, e.keys[i], 16);
    sc_proxy_embeddings_free(&e);
}

static int same(const char *a, size_t ia, const char *b, size_t ib)
{
    uint8_t x[16], y[16];
    key_of(a, ia, x);
    key_of(b, ib, y);
    return memcmp(x, y, 16) == 0;
}

START_TEST(input_forms_and_counts)
{
    static const struct {
        const char *body;
        size_t n;
    } cases[] = {
        {"{'model':'e','input':'one'}", 1},   {"{'model':'e','input':['a','b','c']}", 3},
        {"{'model':'e','input':[1,2,3]}", 1}, {"{'model':'e','input':[[1,2],[3],[4,5,6]]}", 3},
        {"{'model':'e','input':['']}", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sc_proxy_embeddings_t e = parse_ok(cases[i].body);
        ck_assert_uint_eq(e.n, cases[i].n);
        ck_assert_uint_eq(json_array_size(e.items), cases[i].n);
        ck_assert(e.model.len == 1 && memcmp(e.model.ptr, "e", 1) == 0);
        ck_assert(e.ns.len == 7 && memcmp(e.ns.ptr, "default", 7) == 0);
        ck_assert(e.tenant.len == 2 && memcmp(e.tenant.ptr, "t1", 2) == 0);
        ck_assert_int_eq(e.base64, 0);
        sc_proxy_embeddings_free(&e);
    }
}
END_TEST

START_TEST(keys_are_per_input)
{
    /* Independent of the position in the batch and of the batch itself. */
    ck_assert(same("{'model':'e','input':['a','b']}", 0, "{'model':'e','input':['b','a']}", 1));
    ck_assert(same("{'model':'e','input':['a','b']}", 1, "{'model':'e','input':'b'}", 0));
    ck_assert(same("{'model':'e','input':['x','a','y']}", 1, "{'model':'e','input':['a']}", 0));
    ck_assert(!same("{'model':'e','input':['a','b']}", 0, "{'model':'e','input':['a','b']}", 1));
    /* A token array is the same input alone or in a batch. */
    ck_assert(same("{'model':'e','input':[1,2,3]}", 0, "{'model':'e','input':[[9],[1,2,3]]}", 1));
    ck_assert(!same("{'model':'e','input':'1'}", 0, "{'model':'e','input':[1]}", 0));
    /* The format is rendering; user is not content. */
    ck_assert(same("{'model':'e','input':'a'}", 0,
                   "{'model':'e','input':'a','encoding_format':'base64'}", 0));
    ck_assert(same("{'model':'e','input':'a'}", 0,
                   "{'model':'e','input':'a','encoding_format':'float'}", 0));
    ck_assert(same("{'model':'e','input':'a'}", 0, "{'model':'e','input':'a','user':'u7'}", 0));
    /* Model and dimensions are. */
    ck_assert(!same("{'model':'e','input':'a'}", 0, "{'model':'f','input':'a'}", 0));
    ck_assert(
        !same("{'model':'e','input':'a'}", 0, "{'model':'e','input':'a','dimensions':256}", 0));
    ck_assert(!same("{'model':'e','input':'a','dimensions':512}", 0,
                    "{'model':'e','input':'a','dimensions':256}", 0));
}
END_TEST

START_TEST(keys_depend_on_namespace_and_tenant)
{
    uint8_t k[16];
    key_of("{'model':'e','input':'hi'}", 0, k);
    sc_proxy_embeddings_t e;
    char err[256];
    const char *body = "{\"model\":\"e\",\"input\":\"hi\"}";
    sc_proxy_ctx_t other = ctx_t1;
    other.tenant = "t2";
    ck_assert_int_eq(sc_proxy_embeddings_parse(&e, body, strlen(body), &other, err, sizeof(err)),
                     0);
    ck_assert(memcmp(e.keys[0], k, 16) != 0);
    sc_proxy_embeddings_free(&e);
    other = ctx_t1;
    other.ns = "ns2";
    other.ns_len = 3;
    ck_assert_int_eq(sc_proxy_embeddings_parse(&e, body, strlen(body), &other, err, sizeof(err)),
                     0);
    ck_assert(memcmp(e.keys[0], k, 16) != 0);
    sc_proxy_embeddings_free(&e);
    /* Header controls are the server's business: they change no key. */
    sc_proxy_controls_t ctl = {.has_max_age = 1, .max_age_s = 9, .has_ttl = 1, .ttl_s = 60};
    other = ctx_t1;
    other.controls = &ctl;
    ck_assert_int_eq(sc_proxy_embeddings_parse(&e, body, strlen(body), &other, err, sizeof(err)),
                     0);
    ck_assert(memcmp(e.keys[0], k, 16) == 0);
    sc_proxy_embeddings_free(&e);
}
END_TEST

static void refused(const char *body, int want, const char *needle)
{
    sc_proxy_embeddings_t e;
    char err[256];
    int rc = parse(&e, body, err, sizeof(err));
    ck_assert_msg(rc == want, "%s: rc %d, want %d (%s)", body, rc, want, err);
    ck_assert_msg(strstr(err, needle), "error for %s is '%s', expected '%s'", body, err, needle);
    ck_assert_ptr_null(e.root);
    ck_assert_ptr_null(e.keys);
    sc_proxy_embeddings_free(&e);
}

START_TEST(bad_bodies)
{
    refused("input=hello", SC_ENOTCACHEABLE, "not JSON");
    refused("{'model':'e','input':'a','input':'b'}", SC_ENOTCACHEABLE, "duplicate");
    refused("'text'", SC_EINVAL, "JSON object");
    refused("{'input':'a'}", SC_EINVAL, "\"model\" is required");
    refused("{'model':'e'}", SC_EINVAL, "\"input\" is required");
    const char *bad_inputs[] = {"[]",        "5",    "null",    "{'a':1}", "[1,'a']",
                                "[[1],'a']", "[[]]", "[[1.5]]", "[1.5]",   "[['a']]"};
    for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{'model':'e','input':%s}", bad_inputs[i]);
        refused(body, SC_EINVAL, "\"input\" must be");
    }
    refused("{'model':'e','input':'a','encoding_format':'hex'}", SC_EINVAL, "encoding_format");
}
END_TEST

START_TEST(upstream_body_has_only_the_missing_inputs)
{
    sc_proxy_embeddings_t e = parse_ok("{'model':'e','input':['a','b','c','d'],'dimensions':8,"
                                       "'user':'u1','encoding_format':'base64'}");
    ck_assert_int_eq(e.base64, 1);
    size_t missing[] = {3, 1};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_proxy_embeddings_upstream_body(&e, missing, 2, &b), 0);
    json_t *up = json_loads(b.data, 0, NULL);
    ck_assert_ptr_nonnull(up);
    ck_assert_str_eq(json_string_value(json_object_get(up, "encoding_format")), "float");
    ck_assert_str_eq(json_string_value(json_object_get(up, "model")), "e");
    ck_assert_str_eq(json_string_value(json_object_get(up, "user")), "u1"); /* still forwarded */
    ck_assert_int_eq(json_integer_value(json_object_get(up, "dimensions")), 8);
    json_t *in = json_object_get(up, "input");
    ck_assert_uint_eq(json_array_size(in), 2);
    ck_assert_str_eq(json_string_value(json_array_get(in, 0)), "d");
    ck_assert_str_eq(json_string_value(json_array_get(in, 1)), "b");
    /* Those inputs keep their keys when upstream's body is keyed again. */
    sc_proxy_embeddings_t again;
    char err[256];
    ck_assert_int_eq(sc_proxy_embeddings_parse(&again, b.data, b.len, &ctx_t1, err, sizeof(err)),
                     0);
    ck_assert(memcmp(again.keys[0], e.keys[3], 16) == 0);
    ck_assert(memcmp(again.keys[1], e.keys[1], 16) == 0);
    sc_proxy_embeddings_free(&again);
    json_decref(up);
    /* The client's body is untouched. */
    ck_assert_uint_eq(json_array_size(json_object_get(e.body, "input")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(e.body, "encoding_format")), "base64");
    size_t dup[] = {1, 1}, out_of_range[] = {4};
    sc_buf_reset(&b);
    ck_assert_int_eq(sc_proxy_embeddings_upstream_body(&e, dup, 2, &b), SC_EINVAL);
    ck_assert_int_eq(sc_proxy_embeddings_upstream_body(&e, out_of_range, 1, &b), SC_EINVAL);
    sc_buf_free(&b);
    sc_proxy_embeddings_free(&e);
    /* A single token array goes up as an array of token arrays. */
    e = parse_ok("{'model':'e','input':[5,6]}");
    size_t only[] = {0};
    ck_assert_int_eq(sc_proxy_embeddings_upstream_body(&e, only, 1, &b), 0);
    ck_assert_str_eq(b.data, "{\"model\":\"e\",\"input\":[[5,6]],\"encoding_format\":\"float\"}");
    sc_buf_free(&b);
    sc_proxy_embeddings_free(&e);
}
END_TEST

START_TEST(upstream_answer_lands_at_the_missing_positions)
{
    sc_proxy_embeddings_t e = parse_ok("{'model':'e','input':['a','b','c']}");
    float *vecs[3] = {0};
    uint32_t dims[3] = {0};
    sc_proxy_usage_t usage = {0};
    char err[256];
    size_t missing[] = {2, 0};
    /* Upstream may list the vectors in any order; "index" says which. */
    const char *ans =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.5,-"
        "0.25]},"
        "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.1,0.2]}],\"model\":\"e\","
        "\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}";
    ck_assert_int_eq(sc_proxy_embeddings_upstream_answer(&e, ans, strlen(ans), missing, 2, vecs,
                                                         dims, &usage, err, sizeof(err)),
                     0);
    ck_assert_ptr_null(vecs[1]);
    ck_assert_uint_eq(dims[2], 2);
    ck_assert(vecs[2][0] == 0.1f && vecs[2][1] == 0.2f);
    ck_assert(vecs[0][0] == 0.5f && vecs[0][1] == -0.25f); /* as given: not normalized */
    ck_assert_uint_eq(usage.prompt_tokens, 4);
    /* A second fetch adds up. */
    size_t rest[] = {1};
    const char *ans2 = "{\"data\":[{\"index\":0,\"embedding\":[1,0]}],\"usage\":{\"prompt_tokens\":"
                       "3,\"total_tokens\":3}}";
    ck_assert_int_eq(sc_proxy_embeddings_upstream_answer(&e, ans2, strlen(ans2), rest, 1, vecs,
                                                         dims, &usage, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(usage.prompt_tokens, 7);
    ck_assert_uint_eq(usage.total_tokens, 7);
    for (int i = 0; i < 3; i++)
        free(vecs[i]);

    const char *bad[] = {
        "not json",
        "{\"data\":[]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]}]}", /* one vector for two inputs */
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":2,\"embedding\":[2]}]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":\"AACAPw==\"}]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":[1e300]}]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":[]}]}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":[1]}],\"usage\":{"
        "\"prompt_tokens\":-1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        float *v[3] = {0};
        uint32_t d[3] = {0};
        sc_proxy_usage_t u = {0};
        ck_assert_msg(sc_proxy_embeddings_upstream_answer(&e, bad[i], strlen(bad[i]), missing, 2, v,
                                                          d, &u, err, sizeof(err)) == SC_EREMOTE,
                      "accepted %s", bad[i]);
        ck_assert(!v[0] && !v[1] && !v[2] && u.prompt_tokens == 0);
        ck_assert(strstr(err, "upstream"));
    }
    size_t dup[] = {1, 1};
    ck_assert_int_eq(sc_proxy_embeddings_upstream_answer(&e, ans, strlen(ans), dup, 2, vecs, dims,
                                                         NULL, err, sizeof(err)),
                     SC_EINVAL);
    sc_proxy_embeddings_free(&e);
}
END_TEST

START_TEST(answer_in_order_as_floats)
{
    sc_proxy_embeddings_t e = parse_ok("{'model':'e','input':['a','b','c']}");
    float a[] = {0.1f, -0.2f, 3.4028235e38f}, b[] = {1.0f}, c[] = {1.17549435e-38f, -0.0f};
    const float *vecs[] = {a, b, c};
    uint32_t dims[] = {3, 1, 2};
    sc_proxy_usage_t usage = {.prompt_tokens = 5, .total_tokens = 5};
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_embeddings_answer(&e, vecs, dims, NULL, &usage, &out), 0);
    json_t *r = json_loads(out.data, 0, NULL);
    ck_assert_msg(r != NULL, "not JSON: %s", out.data);
    ck_assert_str_eq(json_string_value(json_object_get(r, "object")), "list");
    ck_assert_str_eq(json_string_value(json_object_get(r, "model")), "e");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r, "usage"), "prompt_tokens")), 5);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r, "usage"), "total_tokens")), 5);
    json_t *data = json_object_get(r, "data");
    ck_assert_uint_eq(json_array_size(data), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *d = json_array_get(data, i);
        ck_assert_str_eq(json_string_value(json_object_get(d, "object")), "embedding");
        ck_assert_int_eq(json_integer_value(json_object_get(d, "index")), (json_int_t)i);
        json_t *emb = json_object_get(d, "embedding");
        ck_assert_uint_eq(json_array_size(emb), dims[i]);
        for (uint32_t k = 0; k < dims[i]; k++) /* every float32 round-trips exactly */
            ck_assert((float)json_number_value(json_array_get(emb, k)) == vecs[i][k]);
    }
    json_decref(r);
    /* Another model name for the answer (upstream's), and no usage. */
    sc_buf_reset(&out);
    ck_assert_int_eq(sc_proxy_embeddings_answer(&e, vecs, dims, "e-v2", NULL, &out), 0);
    ck_assert(
        strstr(out.data, "\"model\":\"e-v2\",\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}"));
    /* A missing or non-finite vector is the caller's bug. */
    const float *holes[] = {a, NULL, c};
    ck_assert_int_eq(sc_proxy_embeddings_answer(&e, holes, dims, NULL, NULL, &out), SC_EINVAL);
    float nan_v[] = {NAN};
    const float *nans[] = {a, nan_v, c};
    ck_assert_int_eq(sc_proxy_embeddings_answer(&e, nans, dims, NULL, NULL, &out), SC_EINVAL);
    sc_buf_free(&out);
    sc_proxy_embeddings_free(&e);
}
END_TEST

START_TEST(answer_as_base64_round_trips)
{
    sc_proxy_embeddings_t e =
        parse_ok("{'model':'e','input':['a','b','c','d'],'encoding_format':'base64'}");
    float a[] = {1.0f, -2.0f, 0.5f}, b[] = {0.1f}, c[] = {0.1f, -0.25f},
          d[] = {0.3f, 0.4f, -0.5f, 0.6f};
    const float *vecs[] = {a, b, c, d};
    uint32_t dims[] = {3, 1, 2, 4}; /* 12, 4 and 8 bytes: no, two and one padding characters */
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_proxy_embeddings_answer(&e, vecs, dims, NULL, NULL, &out), 0);
    json_t *r = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(r);
    json_t *data = json_object_get(r, "data");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 0), "embedding")),
                     "AACAPwAAAMAAAAA/");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 1), "embedding")),
                     "zczMPQ==");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 2), "embedding")),
                     "zczMPQAAgL4=");
    /* core's decoder reads them back (it L2-normalizes, so compare directions). */
    for (size_t i = 0; i < 4; i++) {
        float *back;
        uint32_t dim;
        char err[128];
        json_t *s = json_object_get(json_array_get(data, i), "embedding");
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(data, i), "index")),
                         (json_int_t)i);
        ck_assert_int_eq(sc_embedding_decode(s, &back, &dim, err, sizeof(err)), 0);
        ck_assert_uint_eq(dim, dims[i]);
        double norm = 0;
        for (uint32_t k = 0; k < dim; k++)
            norm += (double)vecs[i][k] * vecs[i][k];
        for (uint32_t k = 0; k < dim; k++)
            ck_assert_double_eq_tol(back[k], vecs[i][k] / sqrt(norm), 1e-6);
        free(back);
    }
    json_decref(r);
    sc_buf_free(&out);
    sc_proxy_embeddings_free(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_embeddings");
    TCase *tc = tcase_create("embeddings");
    tcase_add_test(tc, input_forms_and_counts);
    tcase_add_test(tc, keys_are_per_input);
    tcase_add_test(tc, keys_depend_on_namespace_and_tenant);
    tcase_add_test(tc, bad_bodies);
    tcase_add_test(tc, upstream_body_has_only_the_missing_inputs);
    tcase_add_test(tc, upstream_answer_lands_at_the_missing_positions);
    tcase_add_test(tc, answer_in_order_as_floats);
    tcase_add_test(tc, answer_as_base64_round_trips);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
