/* bench_series.c -- semcached-bench's --series: the measured window cut into
 * 1-second windows by each request's intended start (its send time in closed
 * loop), each with a histogram of its own, so a tail that comes and goes (the
 * seconds after a write burst) shows when it ends instead of vanishing into
 * the run's single p99. Per thread, merged at the report like the totals. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_internal.h"

void bench_series_init(stats_t *st, const cfg_t *c)
{
    st->sec = NULL;
    st->n_sec = 0;
    if (!c->series || c->requests) /* a request count has no fixed window */
        return;
    size_t n = (size_t)ceil(c->duration_s);
    st->sec = malloc((n ? n : 1) * sizeof(histogram_t));
    if (!st->sec) {
        fprintf(stderr, "semcached-bench: no memory for --series\n");
        return;
    }
    st->n_sec = n;
    for (size_t i = 0; i < n; i++)
        hist_init(&st->sec[i]);
}

void bench_series_record(stats_t *st, uint64_t since_measure_ns, uint64_t latency_ns)
{
    size_t i = (size_t)(since_measure_ns / 1000000000ull);
    if (i < st->n_sec)
        hist_record(&st->sec[i], latency_ns);
}

void bench_series_merge(stats_t *into, const stats_t *from)
{
    for (size_t i = 0; i < into->n_sec && i < from->n_sec; i++)
        hist_merge(&into->sec[i], &from->sec[i]);
}

void bench_series_free(stats_t *st)
{
    free(st->sec);
    st->sec = NULL;
    st->n_sec = 0;
}

/* ,"series":[{"s":0,"requests":N,"p50_us":..,"p99_us":..,"max_us":..},...]
 * in JSON (call inside the top object), else one line per second. */
void bench_series_print(const stats_t *tot, int json)
{
    if (!tot->n_sec)
        return;
    printf(json ? ",\"series\":[" : "  per second (by intended start):\n");
    for (size_t i = 0; i < tot->n_sec; i++) {
        const histogram_t *h = &tot->sec[i];
        double p50 = (double)hist_quantile(h, 0.5) / 1e3, p99 = (double)hist_quantile(h, 0.99) / 1e3;
        double mx = (double)h->max / 1e3;
        if (json)
            printf("%s{\"s\":%zu,\"requests\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}",
                   i ? "," : "", i, (unsigned long long)h->total, p50, p99, mx);
        else
            printf("  [%3zus] %8llu  p50 %8.1f us  p99 %8.1f us  max %8.1f us\n", i,
                   (unsigned long long)h->total, p50, p99, mx);
    }
    if (json)
        printf("]");
}
