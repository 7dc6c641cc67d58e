/* tests/bench/histogram.c -- the load tool's latency histogram
 * (bench/histogram.c): every quantile it reports is within 1/256 of the exact
 * order statistic, over values from nanoseconds to hours, and merging
 * per-thread histograms equals recording into one. */
#include "../../bench/histogram.c"

#include <math.h>
#include <stdlib.h>

#include "testutil.h"

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void assert_close(uint64_t got, uint64_t exact)
{
    double err = exact ? fabs((double)got - (double)exact) / (double)exact : (double)got;
    ck_assert_msg(err <= 1.0 / 256 + 1e-12, "reported %llu for %llu (error %.4f %%)",
                  (unsigned long long)got, (unsigned long long)exact, 100 * err);
}

START_TEST(a_single_value_reads_back_within_the_bound)
{
    uint64_t s = 42;
    for (int i = 0; i < 20000; i++) {
        /* Log-uniform over 1 ns .. ~10^13 ns. */
        uint64_t v = (uint64_t)exp((double)(rng_next(&s) % 30000) / 1000.0) + (rng_next(&s) & 7);
        histogram_t h;
        hist_init(&h);
        /* Far neighbours on both sides, so neither the smallest nor the
         * largest value recorded decides what the median reads. */
        hist_record(&h, 0);
        hist_record(&h, v);
        hist_record(&h, v * 10 + 1000);
        assert_close(hist_quantile(&h, 0.5), v);
    }
}
END_TEST

START_TEST(quantiles_match_the_exact_order_statistics)
{
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof(uint64_t));
    histogram_t *h = malloc(sizeof(histogram_t));
    hist_init(h);
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        /* Latency-like: a body around 100-500 us and a tail to 50 ms. */
        double base = 100000.0 + (double)(rng_next(&s) % 400000);
        if (rng_next(&s) % 100 == 0)
            base *= 1.0 + (double)(rng_next(&s) % 100);
        v[i] = (uint64_t)base;
        hist_record(h, v[i]);
    }
    qsort(v, N, sizeof(uint64_t), cmp_u64);
    const double qs[] = {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0};
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        uint64_t rank = (uint64_t)(qs[k] * N + 0.5);
        rank = rank < 1 ? 1 : rank > N ? N : rank;
        assert_close(hist_quantile(h, qs[k]), v[rank - 1]);
    }
    ck_assert_uint_eq(hist_quantile(h, 1.0), v[N - 1]); /* the maximum is exact */
    free(v);
    free(h);
}
END_TEST

START_TEST(merging_equals_recording_into_one)
{
    histogram_t *a = malloc(sizeof(histogram_t)), *b = malloc(sizeof(histogram_t)),
                *all = malloc(sizeof(histogram_t));
    hist_init(a);
    hist_init(b);
    hist_init(all);
    uint64_t s = 99;
    for (int i = 0; i < 50000; i++) {
        uint64_t x = rng_next(&s) % 10000000;
        hist_record(i % 2 ? a : b, x);
        hist_record(all, x);
    }
    hist_merge(a, b);
    ck_assert_uint_eq(a->total, all->total);
    ck_assert_uint_eq(a->max, all->max);
    ck_assert_uint_eq(a->min, all->min);
    for (double q = 0; q <= 1.0; q += 0.05)
        ck_assert_uint_eq(hist_quantile(a, q), hist_quantile(all, q));
    ck_assert(fabs(hist_mean(a) - hist_mean(all)) < 1e-6 * hist_mean(all));
    free(a);
    free(b);
    free(all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("histogram");
    TCase *tc = tcase_create("histogram");
    tcase_add_test(tc, a_single_value_reads_back_within_the_bound);
    tcase_add_test(tc, quantiles_match_the_exact_order_statistics);
    tcase_add_test(tc, merging_equals_recording_into_one);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
