/* histogram.c -- log-linear histogram; see histogram.h for the layout. Values
 * below 128 get exact buckets; above, bucket = (msb - 6) * 128 + (v >> (msb - 7)) - 128
 * keeps 7 significant bits. */
#include "histogram.h"

#include <string.h>

void hist_init(histogram_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static unsigned index_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

/* The smallest and the largest value that land in bucket 'i'. */
static uint64_t lower_of(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    return ((uint64_t)(i % HIST_SUB) + HIST_SUB) << shift;
}

static uint64_t upper_of(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    return lower_of(i) + (1ull << shift) - 1;
}

void hist_record(histogram_t *h, uint64_t v)
{
    unsigned i = index_of(v);
    if (i >= HIST_BUCKETS * HIST_SUB)
        i = HIST_BUCKETS * HIST_SUB - 1;
    h->counts[i]++;
    h->total++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

void hist_merge(histogram_t *into, const histogram_t *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS * HIST_SUB; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    if (from->min < into->min)
        into->min = from->min;
}

uint64_t hist_quantile(const histogram_t *h, double q)
{
    if (!h->total)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    if (rank == h->total) /* the extremes are known exactly */
        return h->max;
    if (rank == 1)
        return h->min;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS * HIST_SUB; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            /* The midpoint: an upper edge would read every value up to a
             * bucket's width (0.8 %) high. */
            uint64_t lo = lower_of(i), mid = lo + (upper_of(i) - lo) / 2;
            return mid > h->max ? h->max : mid < h->min ? h->min : mid;
        }
    }
    return h->max;
}

double hist_mean(const histogram_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
