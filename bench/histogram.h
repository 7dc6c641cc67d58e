/* histogram.h -- a log-linear latency histogram (HdrHistogram's layout): each
 * power of two is split into 128 linear sub-buckets, each narrower than 1/128
 * of the values in it, and a quantile is reported as its bucket's midpoint, so
 * within 1/256 (< 0.4 %) of the exact value and without a bias to either side,
 * from 1 ns to about 9 hours, in a fixed 64 KiB array. Recording is one
 * branch, a clz and an increment. */
#ifndef SC_BENCH_HISTOGRAM_H
#define SC_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 - HIST_SUB_BITS)

typedef struct {
    uint64_t counts[HIST_BUCKETS * HIST_SUB];
    uint64_t total;
    uint64_t max;
    uint64_t min;
    double sum;
} histogram_t;

void hist_init(histogram_t *h);
void hist_record(histogram_t *h, uint64_t value);
void hist_merge(histogram_t *into, const histogram_t *from);
/* The value at quantile 'q' in [0, 1]: the midpoint of the bucket holding the
 * value of rank round(q * count), kept within the smallest and largest value
 * recorded (which ranks 1 and count return exactly). 0 if empty. */
uint64_t hist_quantile(const histogram_t *h, double q);
double hist_mean(const histogram_t *h);

#endif
