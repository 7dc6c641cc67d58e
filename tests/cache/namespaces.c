/* tests/cache/namespaces.c -- per-namespace settings (cache/namespaces.c):
 * defaults from the server's options, the settings JSON applied and rendered
 * back (a round trip changes nothing), bad values refused with a sentence
 * naming the setting, and the recorded embedder and dimensions: recorded by
 * the first vector, atomically, and conflicts afterwards, including the
 * server's rule for a PUT that switches models. */
#include "../../cache/namespaces.c"

#include "testutil.h"

static sc_config_t cfg;

static void setup(void)
{
    sc_config_defaults(&cfg);
}

/* Applies JSON text 'doc' onto 'c'; returns what sc_ns_config_apply_json
 * does, with the sentence in 'err'. */
static int apply(sc_ns_config_t *c, const char *doc, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loads(doc, JSON_DECODE_ANY, &jerr);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s", doc);
    err[0] = '\0';
    int rc = sc_ns_config_apply_json(c, j, err, cap);
    json_decref(j);
    return rc;
}

static void render(const sc_ns_config_t *c, sc_buf_t *out)
{
    sc_buf_reset(out);
    ck_assert_int_eq(sc_ns_config_to_json(c, out), 0);
}

/* Field by field (the struct has padding, so no memcmp). */
static void assert_same(const sc_ns_config_t *a, const sc_ns_config_t *b)
{
    ck_assert_int_eq(a->configured, b->configured);
    ck_assert_int_eq(a->semantic, b->semantic);
    ck_assert_double_eq(a->threshold, b->threshold);
    ck_assert_int_eq(a->allow_lower_threshold, b->allow_lower_threshold);
    ck_assert_uint_eq(a->dimensions, b->dimensions);
    ck_assert_str_eq(a->embedder, b->embedder);
    ck_assert_str_eq(a->model, b->model);
    ck_assert_int_eq(a->ttl_s, b->ttl_s);
    ck_assert_double_eq(a->sample_rate, b->sample_rate);
    ck_assert_str_eq(a->compare, b->compare);
    ck_assert_double_eq(a->answer_similarity, b->answer_similarity);
    ck_assert_int_eq(a->invalidate_on_wrong, b->invalidate_on_wrong);
    ck_assert_int_eq(a->delivery, b->delivery);
    ck_assert_double_eq(a->max_error_rate, b->max_error_rate);
    ck_assert_int_eq(a->threshold_explicit, b->threshold_explicit);
    ck_assert_double_eq(a->explore_rate, b->explore_rate);
    ck_assert_double_eq(a->explore_floor, b->explore_floor);
    ck_assert_uint_eq(a->max_entries, b->max_entries);
    ck_assert_uint_eq(a->max_bytes, b->max_bytes);
    ck_assert_int_eq(a->guards, b->guards);
}

START_TEST(defaults_come_from_the_server_options)
{
    cfg.threshold = 0.87;
    cfg.sample_rate = 0.25;
    sc_ns_config_t c;
    sc_ns_config_defaults(&cfg, &c);
    ck_assert_int_eq(c.configured, 0);
    ck_assert_double_eq(c.threshold, 0.87);
    ck_assert_double_eq(c.sample_rate, 0.25);
    ck_assert_int_eq(c.ttl_s, -1);
    ck_assert_str_eq(c.compare, "normalized");
    ck_assert_int_eq(c.invalidate_on_wrong, 1);
    ck_assert_int_eq(c.delivery, SC_DELIVERY_CALLER);
    /* A never-configured namespace reads as the defaults. */
    sc_namespaces_t *t;
    ck_assert_int_eq(sc_namespaces_create(&t, &cfg), 0);
    sc_ns_config_t got;
    sc_namespaces_get(t, "nobody", 6, &got);
    assert_same(&got, &c);
    sc_namespaces_destroy(t);
}
END_TEST

START_TEST(settings_json_round_trips)
{
    sc_ns_config_t c, back;
    char err[512];
    sc_ns_config_defaults(&cfg, &c);
    ck_assert_int_eq(apply(&c,
                           "{\"semantic\":false,\"threshold\":0.91,\"allow_lower_threshold\":true,"
                           "\"dimensions\":384,\"embedder\":\"minilm-l6\",\"model\":\"small\","
                           "\"ttl_s\":3600,\"sample_rate\":0.5,\"delivery\":\"webhook\","
                           "\"compare\":\"semantic\",\"answer_similarity\":0.8,"
                           "\"invalidate_on_wrong\":false,\"max_error_rate\":0.02,"
                           "\"explore_rate\":0.1,\"explore_floor\":0.6,\"max_entries\":1000,"
                           "\"max_bytes\":1048576,\"guards\":false}",
                           err, sizeof(err)),
                     0);
    ck_assert_int_eq(c.semantic, 0);
    ck_assert_double_eq(c.threshold, 0.91);
    ck_assert_int_eq(c.threshold_explicit, 1);
    ck_assert_uint_eq(c.dimensions, 384);
    ck_assert_str_eq(c.embedder, "minilm-l6");
    ck_assert_str_eq(c.model, "small");
    ck_assert_int_eq(c.ttl_s, 3600);
    ck_assert_int_eq(c.delivery, SC_DELIVERY_WEBHOOK);
    ck_assert_str_eq(c.compare, "semantic");
    ck_assert_uint_eq(c.max_entries, 1000);
    ck_assert_uint_eq(c.max_bytes, 1048576);
    ck_assert_int_eq(c.guards, 0);
    /* What is rendered applies back onto the defaults as the same settings
     * (this is how the server reloads them from the store at start-up). */
    sc_buf_t doc = {0}, again = {0};
    render(&c, &doc);
    sc_ns_config_defaults(&cfg, &back);
    ck_assert_int_eq(apply(&back, doc.data, err, sizeof(err)), 0);
    assert_same(&back, &c);
    render(&back, &again);
    ck_assert_str_eq(again.data, doc.data);
    /* The defaults round-trip too: nulls for what is not set. */
    sc_ns_config_defaults(&cfg, &c);
    render(&c, &doc);
    ck_assert_ptr_nonnull(strstr(doc.data, "\"dimensions\":null,\"embedder\":null,"
                                           "\"model\":\"default\",\"ttl_s\":null"));
    ck_assert_ptr_nonnull(strstr(doc.data, "\"max_entries\":null,\"max_bytes\":null,"
                                           "\"guards\":true}"));
    /* A threshold never set stays unset (the model's default then applies). */
    ck_assert_ptr_nonnull(strstr(doc.data, "\"threshold\":null,"));
    sc_ns_config_defaults(&cfg, &back);
    ck_assert_int_eq(apply(&back, doc.data, err, sizeof(err)), 0);
    ck_assert_int_eq(back.threshold_explicit, 0);
    assert_same(&back, &c);
    render(&back, &again);
    ck_assert_str_eq(again.data, doc.data);
    sc_buf_free(&doc);
    sc_buf_free(&again);
}
END_TEST

START_TEST(null_unsets_and_model_default_is_the_server_model)
{
    sc_ns_config_t c;
    char err[512];
    sc_ns_config_defaults(&cfg, &c);
    ck_assert_int_eq(apply(&c,
                           "{\"dimensions\":8,\"embedder\":\"e\",\"ttl_s\":5,\"model\":\"m\","
                           "\"max_error_rate\":0.01,\"threshold\":0.9,\"max_entries\":3}",
                           err, sizeof(err)),
                     0);
    ck_assert_int_eq(apply(&c,
                           "{\"dimensions\":null,\"embedder\":null,\"ttl_s\":null,"
                           "\"model\":null,\"max_error_rate\":null,\"threshold\":null,"
                           "\"max_entries\":null}",
                           err, sizeof(err)),
                     0);
    ck_assert_uint_eq(c.dimensions, 0);
    ck_assert_str_eq(c.embedder, "");
    ck_assert_int_eq(c.ttl_s, -1);
    ck_assert_str_eq(c.model, "");
    ck_assert_double_eq(c.max_error_rate, 0);
    ck_assert_int_eq(c.threshold_explicit, 0);
    ck_assert_uint_eq(c.max_entries, 0);
    /* "default" names --model: stored as "" and rendered as "default". */
    ck_assert_int_eq(apply(&c, "{\"model\":\"default\"}", err, sizeof(err)), 0);
    ck_assert_str_eq(c.model, "");
    /* With an error budget and no explicit threshold, the learned one
     * decides alone: rendered as null. */
    ck_assert_int_eq(apply(&c, "{\"max_error_rate\":0.05}", err, sizeof(err)), 0);
    sc_buf_t doc = {0};
    render(&c, &doc);
    ck_assert_ptr_nonnull(strstr(doc.data, "\"threshold\":null"));
    ck_assert_ptr_nonnull(strstr(doc.data, "\"model\":\"default\""));
    sc_buf_free(&doc);
}
END_TEST

START_TEST(bad_values_are_refused_with_a_sentence)
{
    static const struct {
        const char *doc, *mentions;
    } bad[] = {
        {"[]", "JSON object"},
        {"{\"semantic\":\"yes\"}", "\"semantic\" must be true or false"},
        {"{\"invalidate_on_wrong\":1}", "\"invalidate_on_wrong\" must be true or false"},
        {"{\"guards\":\"on\"}", "\"guards\" must be true or false"},
        {"{\"threshold\":1.5}", "\"threshold\" must be a cosine similarity in [-1, 1]"},
        {"{\"threshold\":\"0.9\"}", "\"threshold\""},
        {"{\"sample_rate\":-0.1}", "\"sample_rate\" must be a number in [0, 1]"},
        {"{\"model\":\"\"}", "\"model\" must be the name of a server model"},
        {"{\"model\":7}", "\"model\""},
        {"{\"compare\":\"fuzzy\"}", "\"compare\" must be"},
        {"{\"delivery\":\"mail\"}", "\"delivery\" must be"},
        {"{\"answer_similarity\":2}", "\"answer_similarity\" must be a number in [-1, 1]"},
        {"{\"max_error_rate\":0.9}", "\"max_error_rate\" must be a number in [0.0001, 0.5]"},
        {"{\"explore_rate\":1.5}", "\"explore_rate\" must be a number in [0, 1]"},
        {"{\"explore_floor\":-2}", "\"explore_floor\""},
        {"{\"max_entries\":0}", "\"max_entries\" must be a positive integer"},
        {"{\"max_bytes\":1.5}", "\"max_bytes\" must be a positive integer"},
        {"{\"dimensions\":0}", "\"dimensions\" must be an integer in [1, 65536]"},
        {"{\"dimensions\":70000}", "\"dimensions\""},
        {"{\"embedder\":\"\"}", "\"embedder\" must be a string of 1 to 127 bytes"},
        {"{\"ttl_s\":-1}", "\"ttl_s\" must be a non-negative integer"},
        {"{\"colour\":\"blue\"}", "unknown namespace setting 'colour'"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sc_ns_config_t c, before;
        sc_ns_config_defaults(&cfg, &c);
        before = c;
        ck_assert_int_eq(apply(&c, bad[i].doc, err, sizeof(err)), SC_EINVAL);
        ck_assert_msg(strstr(err, bad[i].mentions) != NULL, "%s: got \"%s\"", bad[i].doc, err);
        ck_assert_msg(memcmp(&c, &before, sizeof(c)) == 0, "%s changed the settings", bad[i].doc);
    }
    /* An embedder name one byte too long. */
    char doc[200];
    snprintf(doc, sizeof(doc), "{\"embedder\":\"%0*d\"}", SC_MAX_EMBEDDER, 0);
    sc_ns_config_t c;
    sc_ns_config_defaults(&cfg, &c);
    ck_assert_int_eq(apply(&c, doc, err, sizeof(err)), SC_EINVAL);
}
END_TEST

START_TEST(first_vector_records_embedder_and_later_ones_must_match)
{
    sc_namespaces_t *t;
    ck_assert_int_eq(sc_namespaces_create(&t, &cfg), 0);
    sc_ns_config_t out;
    int recorded;
    /* A read-only check of an unknown namespace records nothing. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 100, "glove", 0, &recorded, &out), 0);
    ck_assert_int_eq(recorded, 0);
    sc_namespaces_get(t, "a", 1, &out);
    ck_assert_int_eq(out.configured, 0);
    /* The first store records both. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 100, "glove", 1, &recorded, &out), 0);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(out.configured, 1);
    ck_assert_uint_eq(out.dimensions, 100);
    ck_assert_str_eq(out.embedder, "glove");
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 100, "glove", 1, &recorded, &out), 0);
    ck_assert_int_eq(recorded, 0);
    /* An unnamed embedder of the right size is accepted. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 100, NULL, 1, &recorded, &out), 0);
    /* Other dimensions, another embedder: refused, nothing changes. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 384, "glove", 1, &recorded, &out),
                     SC_EDIM);
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 100, "other", 1, &recorded, &out),
                     SC_ECONFLICT);
    sc_namespaces_get(t, "a", 1, &out);
    ck_assert_uint_eq(out.dimensions, 100);
    ck_assert_str_eq(out.embedder, "glove");
    /* Another namespace is free to choose; removal frees this one. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "b", 1, 384, "minilm", 1, &recorded, &out), 0);
    sc_namespaces_remove(t, "a", 1);
    ck_assert_int_eq(sc_namespaces_check_vector(t, "a", 1, 384, "minilm", 1, &recorded, &out), 0);
    ck_assert_int_eq(recorded, 1);
    sc_namespaces_destroy(t);
}
END_TEST

/* The server's PUT /v1/namespaces/NAME (server/api.c): the new settings
 * start from the defaults plus the recorded dimensions and embedder, the
 * body is applied, and a change of either is a conflict (409) while the
 * namespace holds vectors. Choosing another model changes neither, so the
 * PUT passes, and the vectors that model makes are refused when stored. */
static int put_conflicts(const sc_ns_config_t *cur, const char *body, sc_ns_config_t *next)
{
    char err[512];
    sc_ns_config_defaults(&cfg, next);
    next->dimensions = cur->dimensions;
    memcpy(next->embedder, cur->embedder, sizeof(next->embedder));
    ck_assert_int_eq(apply(next, body, err, sizeof(err)), 0);
    return (cur->dimensions && next->dimensions != cur->dimensions) ||
           (cur->embedder[0] && strcmp(cur->embedder, next->embedder) != 0);
}

START_TEST(model_switch_conflicts_as_the_server_enforces_them)
{
    sc_namespaces_t *t;
    ck_assert_int_eq(sc_namespaces_create(&t, &cfg), 0);
    sc_ns_config_t cur, next;
    int recorded;
    ck_assert_int_eq(sc_namespaces_check_vector(t, "n", 1, 100, "glove-100d", 1, &recorded, &cur),
                     0);
    /* Settings that leave the embedder alone pass and keep it. */
    ck_assert_int_eq(put_conflicts(&cur, "{\"threshold\":0.8}", &next), 0);
    ck_assert_str_eq(next.embedder, "glove-100d");
    ck_assert_uint_eq(next.dimensions, 100);
    /* Naming another embedder or size, or clearing them, conflicts. */
    ck_assert_int_eq(put_conflicts(&cur, "{\"embedder\":\"minilm\"}", &next), 1);
    ck_assert_int_eq(put_conflicts(&cur, "{\"dimensions\":384}", &next), 1);
    ck_assert_int_eq(put_conflicts(&cur, "{\"embedder\":null}", &next), 1);
    ck_assert_int_eq(put_conflicts(&cur, "{\"embedder\":\"glove-100d\",\"dimensions\":100}", &next),
                     0);
    /* Switching models passes this check with the embedder kept... */
    ck_assert_int_eq(put_conflicts(&cur, "{\"model\":\"minilm\"}", &next), 0);
    ck_assert_str_eq(next.model, "minilm");
    ck_assert_str_eq(next.embedder, "glove-100d");
    ck_assert_int_eq(sc_namespaces_set(t, "n", 1, &next), 0);
    /* ...and the new model's vectors are refused until the namespace is
     * deleted, by size or by name. */
    ck_assert_int_eq(sc_namespaces_check_vector(t, "n", 1, 384, "minilm-l6", 1, &recorded, &cur),
                     SC_EDIM);
    ck_assert_int_eq(sc_namespaces_check_vector(t, "n", 1, 100, "other-100d", 1, &recorded, &cur),
                     SC_ECONFLICT);
    sc_namespaces_remove(t, "n", 1);
    ck_assert_int_eq(sc_namespaces_check_vector(t, "n", 1, 384, "minilm-l6", 1, &recorded, &cur),
                     0);
    sc_namespaces_destroy(t);
}
END_TEST

/* Many first stores at once, each with its own embedder: exactly one wins. */
typedef struct {
    sc_namespaces_t *t;
    int i;
    int rc;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    char name[16];
    snprintf(name, sizeof(name), "e%d", r->i);
    sc_ns_config_t out;
    int recorded;
    r->rc = sc_namespaces_check_vector(r->t, "shared", 6, 64, name, 1, &recorded, &out);
    return NULL;
}

START_TEST(concurrent_first_stores_record_one_embedder)
{
    sc_namespaces_t *t;
    ck_assert_int_eq(sc_namespaces_create(&t, &cfg), 0);
    enum { N = 8 };
    pthread_t th[N];
    racer_t r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer_t){t, i, 1};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    int won = -1, lost = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (r[i].rc == 0)
            won = i;
        else if (r[i].rc == SC_ECONFLICT)
            lost++;
    }
    ck_assert_int_eq(lost, N - 1);
    ck_assert_int_ge(won, 0);
    sc_ns_config_t out;
    sc_namespaces_get(t, "shared", 6, &out);
    char want[16];
    snprintf(want, sizeof(want), "e%d", won);
    ck_assert_str_eq(out.embedder, want);
    sc_namespaces_destroy(t);
}
END_TEST

START_TEST(many_namespaces_set_get_remove)
{
    sc_namespaces_t *t;
    ck_assert_int_eq(sc_namespaces_create(&t, &cfg), 0);
    enum { N = 5000 }; /* several per bucket */
    char name[32];
    sc_ns_config_t c;
    sc_ns_config_defaults(&cfg, &c);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "ns-%d", i);
        c.max_entries = (uint64_t)i + 1;
        ck_assert_int_eq(sc_namespaces_set(t, name, strlen(name), &c), 0);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "ns-%d", i);
        sc_namespaces_remove(t, name, strlen(name));
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "ns-%d", i);
        sc_ns_config_t got;
        sc_namespaces_get(t, name, strlen(name), &got);
        ck_assert_uint_eq(got.max_entries, i % 2 ? (uint64_t)i + 1 : 0);
    }
    /* Names are compared whole: a prefix is another namespace. */
    sc_ns_config_t got;
    sc_namespaces_get(t, "ns-1", 3, &got);
    ck_assert_uint_eq(got.max_entries, 0);
    sc_namespaces_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("namespaces");
    TCase *tc = tcase_create("namespaces");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, defaults_come_from_the_server_options);
    tcase_add_test(tc, settings_json_round_trips);
    tcase_add_test(tc, null_unsets_and_model_default_is_the_server_model);
    tcase_add_test(tc, bad_values_are_refused_with_a_sentence);
    tcase_add_test(tc, first_vector_records_embedder_and_later_ones_must_match);
    tcase_add_test(tc, model_switch_conflicts_as_the_server_enforces_them);
    tcase_add_test(tc, concurrent_first_stores_record_one_embedder);
    tcase_add_test(tc, many_namespaces_set_get_remove);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
