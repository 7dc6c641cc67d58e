/* bench_main.c -- semcached-bench's front: options, the labelled pairs
 * file, the workload mix, and the report (a table, or one JSON object) of
 * what the engine (bench.c) measured. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include "histogram.h"
#include "sc_common.h"

#include "bench_internal.h"

/* ---- setup and report ---------------------------------------------------- */

static int load_pairs(bench_t *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0, n = 0, alloc = 0;
    while (getline(&line, &cap, f) > 0) {
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = *t2 = '\0';
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            b->pairs = realloc(b->pairs, alloc * sizeof(pair_t));
        }
        b->pairs[n].q1 = strdup(line);
        b->pairs[n].q2 = strdup(t1 + 1);
        b->pairs[n].duplicate = atoi(t2 + 1) == 1;
        n++;
    }
    free(line);
    fclose(f);
    b->n_pairs = n;
    return n ? 0 : -1;
}

static int parse_mix(cfg_t *c, const char *s)
{
    memset(c->mix, 0, sizeof(c->mix));
    c->mix_total = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int w = eq ? atoi(eq + 1) : 1;
        if (eq)
            *eq = '\0';
        int found = 0;
        for (int i = 0; i < W_COUNT; i++)
            if (strcmp(tok, workload_names[i]) == 0) {
                c->mix[i] += w;
                c->mix_total += w;
                found = 1;
            }
        if (!found || w < 0) {
            free(copy);
            return -1;
        }
    }
    free(copy);
    return c->mix_total > 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: semcached-bench [options]\n"
            "  --host H --port P        server (127.0.0.1:8080)\n"
            "  -c, --connections N      connections (32)\n"
            "  --pipeline D             requests outstanding per connection (1)\n"
            "  -t, --threads N          client event loops (1)\n"
            "  -d, --duration S         measured seconds (10)      --warmup S (2); both start\n"
            "                           once every connection is up (JSON: connect_ms)\n"
            "  -n, --requests N         stop after N requests instead of a duration\n"
            "  --rate R                 open loop at R request starts/s (a miss-store start\n"
            "                           is followed by its store; default: closed loop)\n"
            "  -w, --workload W         exact | miss-store | vectors | vector-store | text |\n"
            "                           raw, or a mix such as exact=80,miss-store=20 (exact);\n"
            "                           vector-store stores new entries with vectors in the\n"
            "                           vectors scope (with --ttl they expire)\n"
            "  --keys N                 key space of exact and vectors (10000)\n"
            "  --zipf S                 Zipf exponent of key popularity; 0 = uniform (0.99)\n"
            "  --value-size B           bytes of each stored response (512)\n"
            "  --ttl S                  ttl_s of miss-store's and vector-store's stores (0: the\n"
            "                           server's default)\n"
            "  --dim D                  vector dimensions for vectors (384)\n"
            "  --dataset FILE           question1<TAB>question2<TAB>label pairs for text\n"
            "  --path P                 request path for raw (/)\n"
            "  --namespace NS           namespace to use (bench)\n"
            "  --no-populate            do not store the key space first\n"
            "  --json                   print the result as JSON on stdout\n"
            "  --series                 also p50/p99/max of each measured second (by intended\n"
            "                           start; JSON: \"series\"), e.g. to see a tail end\n"
            "  --dump-vectors PREFIX    write the vectors workload's data as PREFIX_base.fvecs,\n"
            "                           its query pool as PREFIX_query.fvecs and the key each\n"
            "                           query rewords as PREFIX_source.ivecs, then exit\n");
}

static void report(bench_t *b, thread_t *threads)
{
    stats_t tot;
    memset(&tot, 0, sizeof(tot));
    for (int k = 0; k < K_COUNT; k++)
        hist_init(&tot.lat[k]);
    hist_init(&tot.all);
    bench_series_init(&tot, &b->cfg);
    for (int i = 0; i < b->cfg.threads; i++) {
        stats_t *s = &threads[i].st;
        bench_series_merge(&tot, s);
        bench_series_free(s);
        for (int k = 0; k < K_COUNT; k++) {
            tot.done[k] += s->done[k];
            hist_merge(&tot.lat[k], &s->lat[k]);
        }
        hist_merge(&tot.all, &s->all);
        tot.non2xx += s->non2xx;
        tot.transport += s->transport;
        tot.exact_hits += s->exact_hits;
        tot.semantic_hits += s->semantic_hits;
        tot.misses += s->misses;
        tot.tp += s->tp;
        tot.fp += s->fp;
        tot.sem_on_source += s->sem_on_source;
    }
    double secs = (double)(b->end_ns - b->measure_ns) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    uint64_t ok = tot.all.total;
    double rps = (double)ok / secs;
    uint64_t lookups = tot.exact_hits + tot.semantic_hits + tot.misses;
    double us = 1e3;
    const histogram_t *h = &tot.all;
    char wl[128] = "";
    for (int i = 0, n = 0; i < W_COUNT; i++)
        if (b->cfg.mix[i])
            n += snprintf(wl + n, sizeof(wl) - (size_t)n, "%s%s=%d", n ? "," : "",
                          workload_names[i], b->cfg.mix[i]);
    if (b->cfg.json) {
        printf("{\"workload\":\"%s\",\"connections\":%d,\"pipeline\":%d,\"threads\":%d,"
               "\"mode\":\"%s\",\"target_rate\":%.1f,\"connect_ms\":%.1f,\"seconds\":%.3f,"
               "\"requests\":%llu,\"rate\":%.1f,"
               "\"errors\":{\"non2xx\":%llu,\"transport\":%llu},"
               "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
               "\"mean\":%.1f},"
               "\"lookups\":{\"exact_hit\":%llu,\"semantic_hit\":%llu,\"miss\":%llu},"
               "\"semantic_precision\":",
               wl, b->cfg.connections, b->cfg.pipeline, b->cfg.threads,
               b->cfg.rate > 0 ? "open" : "closed", b->cfg.rate, (double)b->connect_ns / 1e6, secs,
               (unsigned long long)ok, rps, (unsigned long long)tot.non2xx,
               (unsigned long long)tot.transport, (double)hist_quantile(h, 0.5) / us,
               (double)hist_quantile(h, 0.9) / us, (double)hist_quantile(h, 0.99) / us,
               (double)hist_quantile(h, 0.999) / us, (double)h->max / us, hist_mean(h) / us,
               (unsigned long long)tot.exact_hits, (unsigned long long)tot.semantic_hits,
               (unsigned long long)tot.misses);
        if (tot.tp + tot.fp)
            printf("%.4f", (double)tot.tp / (double)(tot.tp + tot.fp));
        else
            printf("null");
        if (b->cfg.mix[W_VECTORS])
            printf(",\"semantic_on_source\":%llu", (unsigned long long)tot.sem_on_source);
        static const char *const names[K_COUNT] = {"lookup", "store", "raw"};
        printf(",\"by_kind\":{");
        for (int k = 0, first = 1; k < K_COUNT; k++) {
            if (!tot.done[k])
                continue;
            printf("%s\"%s\":{\"requests\":%llu,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}",
                   first ? "" : ",", names[k], (unsigned long long)tot.done[k],
                   (double)tot.done[k] / secs, (double)hist_quantile(&tot.lat[k], 0.5) / us,
                   (double)hist_quantile(&tot.lat[k], 0.99) / us);
            first = 0;
        }
        printf("}");
        bench_series_print(&tot, 1);
        printf("}\n");
        bench_series_free(&tot);
        return;
    }
    printf("\nsemcached-bench: %s, %s loop%s, %d connections, pipeline %d, %d threads\n", wl,
           b->cfg.rate > 0 ? "open" : "closed", "", b->cfg.connections, b->cfg.pipeline,
           b->cfg.threads);
    if (b->cfg.rate > 0)
        printf("  target rate     %.0f req/s\n", b->cfg.rate);
    printf("  connected in    %.1f ms (before the clock starts)\n", (double)b->connect_ns / 1e6);
    printf("  measured        %.2f s, %llu requests, %.0f req/s\n", secs, (unsigned long long)ok,
           rps);
    printf("  errors          %llu non-2xx, %llu transport\n", (unsigned long long)tot.non2xx,
           (unsigned long long)tot.transport);
    printf("  latency (us)    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
           (double)hist_quantile(h, 0.5) / us, (double)hist_quantile(h, 0.9) / us,
           (double)hist_quantile(h, 0.99) / us, (double)hist_quantile(h, 0.999) / us,
           (double)h->max / us, hist_mean(h) / us);
    static const char *const kn[K_COUNT] = {"lookup", "store", "raw"};
    for (int k = 0; k < K_COUNT; k++)
        if (tot.done[k] && tot.done[k] != ok)
            printf("  %-15s %llu, p50 %.1f us, p99 %.1f us\n", kn[k],
                   (unsigned long long)tot.done[k], (double)hist_quantile(&tot.lat[k], 0.5) / us,
                   (double)hist_quantile(&tot.lat[k], 0.99) / us);
    if (lookups)
        printf("  lookups         %llu exact hits, %llu semantic hits, %llu misses (hit rate "
               "%.1f%%)\n",
               (unsigned long long)tot.exact_hits, (unsigned long long)tot.semantic_hits,
               (unsigned long long)tot.misses,
               100.0 * (double)(tot.exact_hits + tot.semantic_hits) / (double)lookups);
    if (b->cfg.mix[W_VECTORS] && tot.semantic_hits)
        printf("  semantic hits   %llu on the entry the query rewords\n",
               (unsigned long long)tot.sem_on_source);
    if (tot.tp + tot.fp)
        printf(
            "  semantic hits   precision %.3f (%llu on duplicate pairs, %llu on non-duplicates)\n",
            (double)tot.tp / (double)(tot.tp + tot.fp), (unsigned long long)tot.tp,
            (unsigned long long)tot.fp);
    bench_series_print(&tot, 0);
    bench_series_free(&tot);
}

/* Long for a function (about 160 lines): it is the tool's run in order
 * (options, data files, populate, measure, report), each step short and
 * each depending on the ones before; the steps with logic of their own
 * (parse_mix, load_pairs, report) are functions already. */
int main(int argc, char **argv)
{
    static bench_t b;
    cfg_t *c = &b.cfg;
    snprintf(c->host, sizeof(c->host), "127.0.0.1");
    c->port = 8080;
    c->connections = 32;
    c->pipeline = 1;
    c->threads = 1;
    c->duration_s = 10;
    c->warmup_s = 2;
    c->keys = 10000;
    c->zipf = 0.99;
    c->value_size = 512;
    c->dim = 384;
    c->populate = 1;
    snprintf(c->raw_path, sizeof(c->raw_path), "/");
    snprintf(c->ns, sizeof(c->ns), "bench");
    parse_mix(c, "exact");
    static const struct option opts[] = {
        {"host", 1, 0, 'H'},         {"port", 1, 0, 'p'},      {"connections", 1, 0, 'c'},
        {"pipeline", 1, 0, 'P'},     {"threads", 1, 0, 't'},   {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'W'},       {"requests", 1, 0, 'n'},  {"rate", 1, 0, 'r'},
        {"workload", 1, 0, 'w'},     {"keys", 1, 0, 'k'},      {"zipf", 1, 0, 'z'},
        {"value-size", 1, 0, 'v'},   {"dim", 1, 0, 'D'},       {"dataset", 1, 0, 'S'},
        {"path", 1, 0, 'u'},         {"namespace", 1, 0, 'N'}, {"no-populate", 0, 0, 'x'},
        {"json", 0, 0, 'j'},         {"series", 0, 0, 's'},    {"ttl", 1, 0, 'T'},
        {"dump-vectors", 1, 0, 'V'}, {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:t:d:n:w:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H':
            snprintf(c->host, sizeof(c->host), "%s", optarg);
            break;
        case 'p':
            c->port = atoi(optarg);
            break;
        case 'c':
            c->connections = atoi(optarg);
            break;
        case 'P':
            c->pipeline = atoi(optarg);
            break;
        case 't':
            c->threads = atoi(optarg);
            break;
        case 'd':
            c->duration_s = atof(optarg);
            break;
        case 'W':
            c->warmup_s = atof(optarg);
            break;
        case 'n':
            c->requests = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            c->rate = atof(optarg);
            break;
        case 'w':
            if (parse_mix(c, optarg)) {
                fprintf(stderr, "semcached-bench: bad --workload '%s'\n", optarg);
                return 2;
            }
            break;
        case 'k':
            c->keys = strtoull(optarg, NULL, 10);
            break;
        case 'z':
            c->zipf = atof(optarg);
            break;
        case 'v':
            c->value_size = strtoull(optarg, NULL, 10);
            break;
        case 'T':
            c->ttl_s = atol(optarg);
            break;
        case 'D':
            c->dim = atoi(optarg);
            break;
        case 'S':
            snprintf(c->dataset, sizeof(c->dataset), "%s", optarg);
            break;
        case 'u':
            snprintf(c->raw_path, sizeof(c->raw_path), "%s", optarg);
            break;
        case 'N':
            snprintf(c->ns, sizeof(c->ns), "%s", optarg);
            break;
        case 'x':
            c->populate = 0;
            break;
        case 'j':
            c->json = 1;
            break;
        case 's':
            c->series = 1;
            break;
        case 'V':
            snprintf(c->dump_prefix, sizeof(c->dump_prefix), "%s", optarg);
            break;
        default:
            usage();
            return o == 'h' ? 0 : 2;
        }
    }
    if (c->connections < 1 || c->threads < 1 || c->pipeline < 1 || c->pipeline > MAX_PIPELINE ||
        c->keys < 1 || c->dim < 1 || c->dim > 4096 || c->threads > c->connections) {
        fprintf(stderr, "semcached-bench: bad arguments (see --help)\n");
        return 2;
    }
    if (c->mix[W_TEXT] && (!c->dataset[0] || load_pairs(&b, c->dataset))) {
        fprintf(stderr, "semcached-bench: the text workload needs --dataset with pairs\n");
        return 2;
    }
    if (c->zipf > 0) {
        b.zipf_cdf = malloc(c->keys * sizeof(double));
        double sum = 0;
        for (size_t i = 0; i < c->keys; i++)
            sum += 1.0 / pow((double)(i + 1), c->zipf);
        double acc = 0;
        for (size_t i = 0; i < c->keys; i++) {
            acc += 1.0 / pow((double)(i + 1), c->zipf) / sum;
            b.zipf_cdf[i] = acc;
        }
    }
    if (c->dump_prefix[0])
        return bench_dump_vectors(&b, c->dump_prefix) ? 1 : 0;
    b.value = malloc(c->value_size + 1);
    for (size_t i = 0; i < c->value_size; i++)
        b.value[i] = (char)('a' + i % 26);
    b.value[c->value_size] = '\0';
    if (c->mix[W_VECTORS]) {
        uint64_t rng = QUERY_SEED;
        b.queries = calloc(QUERY_POOL, sizeof(query_t));
        for (size_t i = 0; i < QUERY_POOL; i++) {
            sc_buf_t enc = {0};
            b.queries[i].key = bench_zipf_pick(&b, &rng);
            bench_vector_b64(&enc, b.queries[i].key, c->dim, QUERY_NOISE, &rng);
            b.queries[i].b64 = enc.data;
        }
    }
    if (c->populate) {
        if (c->mix[W_EXACT])
            bench_populate(&b, W_EXACT);
        if (c->mix[W_VECTORS])
            bench_populate(&b, W_VECTORS);
        if (c->mix[W_TEXT])
            bench_populate(&b, W_TEXT);
    }
    thread_t *threads = calloc((size_t)c->threads, sizeof(thread_t));
    bench_run_phase(&b, threads, !c->json);
    report(&b, threads);
    free(threads);
    return 0;
}
