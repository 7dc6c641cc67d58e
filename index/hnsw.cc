// hnsw.cc -- the C API over Debian's hnswlib 0.6.2 (header-only C++). This is
// the only C++ in semcached: every entry point catches every exception and
// returns an SC_E* code, so nothing C++ crosses into C. Capacity grows by
// doubling inside sc_hnsw_add, which is why callers must hold the index
// exclusively while adding (resizeIndex reallocates the graph). hnswlib
// cannot search while it inserts, so index/scopes.c never changes a graph
// that searches can see: it clones one (sc_hnsw_clone, a memory copy),
// changes the clone and swaps it in. With sc_hnsw_quantize on, searches walk
// the graph on an int8 copy of the vectors (a quarter of the bytes per
// distance, which is what a beam search at 384-d waits for) and score the
// beam's candidates in float32 at the end (see search_q8).
#include <hnswlib/hnswlib.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <queue>
#include <stdexcept>
#include <vector>

extern "C" {
#include "sc_index.h"
#include "scan8.h"
}

// The int8 copy: row i (the graph's internal id i) is 'stride' bytes,
// v * scale[i] approximates the vector, and err[i] bounds the L2 norm of
// the difference, so |q . x - scale * (q . v)| <= |q| err[i].
struct q8_copy {
    int8_t *rows = nullptr;
    float *scale = nullptr, *err = nullptr;
    size_t cap = 0, stride = 0;
};

struct sc_hnsw_s {
    hnswlib::InnerProductSpace *space;
    hnswlib::HierarchicalNSW<float> *graph;
    uint32_t dim;
    q8_copy *q8; // null: searches walk the float vectors
};

// ---- the int8 copy ------------------------------------------------------------

static size_t q8_stride(uint32_t dim)
{
    return ((size_t)dim + 63) & ~(size_t)63; // whole cache lines, zero-padded
}

static void q8_free(q8_copy *q)
{
    if (!q)
        return;
    free(q->rows);
    free(q->scale);
    free(q->err);
    delete q;
}

// Room for 'cap' rows (new rows zero); false on allocation failure, with 'q'
// unchanged.
static bool q8_reserve(q8_copy *q, size_t cap)
{
    if (cap <= q->cap)
        return true;
    int8_t *r = (int8_t *)aligned_alloc(64, cap * q->stride);
    float *s = (float *)malloc(cap * sizeof(float)), *e = (float *)malloc(cap * sizeof(float));
    if (!r || !s || !e) {
        free(r);
        free(s);
        free(e);
        return false;
    }
    if (q->cap) {
        memcpy(r, q->rows, q->cap * q->stride);
        memcpy(s, q->scale, q->cap * sizeof(float));
        memcpy(e, q->err, q->cap * sizeof(float));
    }
    memset(r + q->cap * q->stride, 0, (cap - q->cap) * q->stride);
    free(q->rows);
    free(q->scale);
    free(q->err);
    q->rows = r;
    q->scale = s;
    q->err = e;
    q->cap = cap;
    return true;
}

// Row 'i' from vector 'x', quantized as the flat index's int8 copy is
// (scan8.h), without centring.
static void q8_set(q8_copy *q, uint32_t dim, size_t i, const float *x)
{
    float norm;
    sc8_quantize(x, nullptr, dim, q->rows + i * q->stride, &q->scale[i], &q->err[i], &norm);
}

#if defined(__AVX2__)
static inline float hsum8(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#endif

// q . v for a float query and an int8 row, both 'stride' long (zero-padded).
static inline float q8_dot(const float *q, const int8_t *r, size_t stride)
{
#if defined(__AVX512F__)
    const __mmask16 all = 0xffff;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (size_t j = 0; j < stride; j += 32) {
        // (the maskz forms: gcc 12 warns about the plain ones' undefined
        // pass-through in C++)
        __m512 x0 = _mm512_maskz_cvtepi32_ps(
            all, _mm512_maskz_cvtepi8_epi32(all, _mm_load_si128((const __m128i *)(r + j))));
        __m512 x1 = _mm512_maskz_cvtepi32_ps(
            all, _mm512_maskz_cvtepi8_epi32(all, _mm_load_si128((const __m128i *)(r + j + 16))));
        a0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(q + j), a0);
        a1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(q + j + 16), a1);
    }
    alignas(64) float t[16]; // (not _mm512_reduce_add_ps: the same gcc warning)
    _mm512_store_ps(t, _mm512_add_ps(a0, a1));
    return hsum8(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (size_t j = 0; j < stride; j += 16) {
        __m256 x0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(r + j))));
        __m256 x1 =
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(r + j + 8))));
        a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(q + j), a0);
        a1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(q + j + 8), a1);
    }
    return hsum8(_mm256_add_ps(a0, a1));
#else
    float a = 0;
    for (size_t j = 0; j < stride; j++)
        a += q[j] * (float)r[j];
    return a;
#endif
}

static inline void q8_prefetch(const q8_copy *q, hnswlib::tableint id)
{
    const char *p = (const char *)(q->rows + (size_t)id * q->stride);
    for (size_t o = 0; o < q->stride; o += 64)
        __builtin_prefetch(p + o, 0, 3);
}

// A visited list of hnswlib's pool, handed back however the search ends.
struct visited_lease {
    hnswlib::VisitedListPool *pool;
    hnswlib::VisitedList *vl;
    explicit visited_lease(hnswlib::VisitedListPool *p) : pool(p), vl(p->getFreeVisitedList()) {}
    ~visited_lease() { pool->releaseVisitedList(vl); }
    visited_lease(const visited_lease &) = delete;
    visited_lease &operator=(const visited_lease &) = delete;
};

// The greedy descent of a search through the upper levels from the entry
// point '*cur' by distance 'dist' (an id's distance to the query): leaves
// the level-0 entry in '*cur' and returns its distance.
template <class Dist>
static float descend(const hnswlib::HierarchicalNSW<float> *g, Dist dist, hnswlib::tableint *cur)
{
    float curdist = dist(*cur);
    for (int level = g->maxlevel_; level > 0; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            unsigned int *data = (unsigned int *)g->get_linklist(*cur, level);
            int size = g->getListCount(data);
            hnswlib::tableint *links = (hnswlib::tableint *)(data + 1);
            for (int i = 0; i < size; i++) {
                float d = dist(links[i]);
                if (d < curdist) {
                    curdist = d;
                    *cur = links[i];
                    changed = true;
                }
            }
        }
    }
    return curdist;
}

// The search of search_beam on the int8 copy: the same greedy descent and
// level-0 beam (deleted elements are walked through but never returned),
// with approximate similarities; each element's neighbours not yet seen are
// collected and prefetched before any is scored, so their rows load in
// parallel. The beam's candidates are then scored in float32, best
// approximate first, skipping those whose error bound cannot reach the k-th
// best: the answer is the float top-k of the candidates the beam found.
static void search_q8(const sc_hnsw_t *h, const float *query, size_t k, size_t ef,
                      uint64_t *labels, float *sims, size_t *n)
{
    typedef hnswlib::tableint node_id;
    typedef std::pair<float, node_id> dist_id; // distance: minus the approximate similarity
    auto *g = h->graph;
    const q8_copy *q = h->q8;
    *n = 0;
    if (g->cur_element_count == 0)
        return;
    std::vector<float> qp(q->stride, 0.0f);
    memcpy(qp.data(), query, h->dim * sizeof(float));
    double qn2 = 0;
    for (uint32_t j = 0; j < h->dim; j++)
        qn2 += (double)query[j] * query[j];
    float qn = (float)std::sqrt(qn2);
    auto dist = [&](node_id id) {
        return -q->scale[id] * q8_dot(qp.data(), q->rows + (size_t)id * q->stride, q->stride);
    };
    node_id cur = g->enterpoint_node_;
    float curdist = descend(g, dist, &cur);
    if (ef < k)
        ef = k;
    bool del = g->num_deleted_ != 0;
    visited_lease lease(g->visited_list_pool_);
    hnswlib::vl_type *visited = lease.vl->mass, tag = lease.vl->curV;
    std::priority_queue<dist_id> top;  // worst on top
    std::priority_queue<dist_id> cand; // (-distance): nearest on top
    float bound = std::numeric_limits<float>::max();
    if (!del || !g->isMarkedDeleted(cur)) {
        top.emplace(curdist, cur);
        bound = curdist;
    }
    cand.emplace(-curdist, cur);
    visited[cur] = tag;
    node_id batch[256]; // hnsw-m is at most 128: level-0 lists hold at most 256
    while (!cand.empty()) {
        dist_id c = cand.top();
        if (-c.first > bound && (top.size() == ef || !del))
            break;
        cand.pop();
        unsigned int *data = (unsigned int *)g->get_linklist0(c.second);
        size_t size = std::min<size_t>(g->getListCount(data), 256);
        node_id *links = (node_id *)(data + 1);
        size_t nb = 0;
        for (size_t j = 0; j < size; j++) {
            node_id id = links[j];
            if (visited[id] == tag)
                continue;
            visited[id] = tag;
            batch[nb++] = id;
            q8_prefetch(q, id);
        }
        for (size_t j = 0; j < nb; j++) {
            node_id id = batch[j];
            float d = dist(id);
            if (top.size() < ef || d < bound) {
                cand.emplace(-d, id);
                if (!del || !g->isMarkedDeleted(id))
                    top.emplace(d, id);
                if (top.size() > ef)
                    top.pop();
                if (!top.empty())
                    bound = top.top().first;
            }
        }
    }
    std::vector<dist_id> found; // best approximate first
    found.reserve(top.size());
    for (; !top.empty(); top.pop())
        found.push_back(top.top());
    std::reverse(found.begin(), found.end());
    std::vector<std::pair<float, node_id>> best; // float similarity, best first, at most k
    for (const dist_id &f : found) {
        float reach = -f.first + qn * q->err[f.second] + 1e-4f; // + float rounding
        if (best.size() == k && reach < best.back().first)
            continue;
        float sim = 1.0f - g->fstdistfunc_(query, g->getDataByInternalId(f.second),
                                           g->dist_func_param_);
        auto at = std::upper_bound(
            best.begin(), best.end(), sim,
            [](float s, const std::pair<float, node_id> &b) { return s > b.first; });
        best.insert(at, std::make_pair(sim, f.second));
        if (best.size() > k)
            best.pop_back();
    }
    for (size_t i = 0; i < best.size(); i++) {
        labels[i] = (uint64_t)g->getExternalLabel(best[i].second);
        sims[i] = best[i].first;
    }
    *n = best.size();
}

// Maps an exception to our error codes; bad_alloc is the one we can name.
#define GUARD(expr)                                                                                \
    try {                                                                                          \
        expr;                                                                                      \
    } catch (const std::bad_alloc &) {                                                             \
        return SC_ENOMEM;                                                                          \
    } catch (...) {                                                                                \
        return SC_EINDEX;                                                                          \
    }

static int make(sc_hnsw_t **out, uint32_t dim)
{
    sc_hnsw_t *h = new (std::nothrow) sc_hnsw_t();
    if (!h)
        return SC_ENOMEM;
    h->dim = dim;
    h->graph = nullptr;
    h->q8 = nullptr;
    h->space = new (std::nothrow) hnswlib::InnerProductSpace(dim);
    if (!h->space) {
        delete h;
        return SC_ENOMEM;
    }
    *out = h;
    return 0;
}

extern "C" int sc_hnsw_create(sc_hnsw_t **out, uint32_t dim, size_t capacity, size_t m,
                              size_t ef_construction, uint64_t seed)
{
    if (dim == 0 || m < 2 || capacity == 0)
        return SC_EINVAL;
    sc_hnsw_t *h;
    int rc = make(&h, dim);
    if (rc)
        return rc;
    try {
        h->graph = new hnswlib::HierarchicalNSW<float>(h->space, capacity, m, ef_construction,
                                                       (size_t)seed);
        h->graph->setEf(64);
    } catch (const std::bad_alloc &) {
        rc = SC_ENOMEM;
    } catch (...) {
        rc = SC_EINDEX;
    }
    if (rc) {
        delete h->space;
        delete h;
        return rc;
    }
    *out = h;
    return 0;
}

extern "C" void sc_hnsw_set_ef(sc_hnsw_t *h, size_t ef)
{
    h->graph->setEf(ef < 1 ? 1 : ef);
}

extern "C" int sc_hnsw_add(sc_hnsw_t *h, const float *vec, uint64_t label)
{
    GUARD({
        auto *g = h->graph;
        bool exists = g->label_lookup_.find((hnswlib::labeltype)label) != g->label_lookup_.end();
        if (!exists && g->cur_element_count >= g->max_elements_) {
            if (h->q8 && !q8_reserve(h->q8, g->max_elements_ * 2))
                return SC_ENOMEM;
            g->resizeIndex(g->max_elements_ * 2);
        }
        g->addPoint(vec, (hnswlib::labeltype)label);
        if (h->q8) { // a new element, or the same one with a new vector
            hnswlib::tableint id = g->label_lookup_.at((hnswlib::labeltype)label);
            q8_set(h->q8, h->dim, id, (const float *)g->getDataByInternalId(id));
        }
    });
    return 0;
}

extern "C" int sc_hnsw_contains(const sc_hnsw_t *h, uint64_t label)
{
    auto *g = h->graph;
    auto it = g->label_lookup_.find((hnswlib::labeltype)label);
    return it != g->label_lookup_.end() && !g->isMarkedDeleted(it->second);
}

// A copy of the graph with room for 'extra' more elements. hnswlib 0.6.2 has
// no copy constructor, so the clone is built from the same parameters and
// every piece of state is copied: the level-0 block (links, vector, label per
// element), the upper-level link lists, levels, the label map, the entry
// point and the random generators (so the clone grows as the original would).
extern "C" int sc_hnsw_clone(const sc_hnsw_t *h, size_t extra, sc_hnsw_t **out)
{
    sc_hnsw_t *c;
    int rc = make(&c, h->dim);
    if (rc)
        return rc;
    auto *g = h->graph;
    try {
        size_t cap = g->cur_element_count + extra;
        if (cap < g->max_elements_)
            cap = g->max_elements_;
        auto *n = new hnswlib::HierarchicalNSW<float>(c->space, cap, g->M_, g->ef_construction_);
        c->graph = n;
        // The destructor frees the link list of every element below
        // cur_element_count whose level is above 0: levels are set only once
        // their list is allocated, so a failure halfway frees what exists.
        n->cur_element_count = g->cur_element_count;
        memcpy(n->data_level0_memory_, g->data_level0_memory_,
               g->cur_element_count * g->size_data_per_element_);
        for (size_t i = 0; i < g->cur_element_count; i++) {
            int level = g->element_levels_[i];
            if (level <= 0)
                continue;
            size_t bytes = g->size_links_per_element_ * (size_t)level;
            n->linkLists_[i] = (char *)malloc(bytes);
            if (!n->linkLists_[i])
                throw std::bad_alloc();
            memcpy(n->linkLists_[i], g->linkLists_[i], bytes);
            n->element_levels_[i] = level;
        }
        n->num_deleted_ = g->num_deleted_;
        n->maxlevel_ = g->maxlevel_;
        n->enterpoint_node_ = g->enterpoint_node_;
        n->label_lookup_ = g->label_lookup_;
        n->ef_ = g->ef_;
        n->level_generator_ = g->level_generator_;
        n->update_probability_generator_ = g->update_probability_generator_;
        if (h->q8) {
            c->q8 = new q8_copy();
            c->q8->stride = h->q8->stride;
            if (!q8_reserve(c->q8, n->max_elements_))
                throw std::bad_alloc();
            memcpy(c->q8->rows, h->q8->rows, g->cur_element_count * h->q8->stride);
            memcpy(c->q8->scale, h->q8->scale, g->cur_element_count * sizeof(float));
            memcpy(c->q8->err, h->q8->err, g->cur_element_count * sizeof(float));
        }
    } catch (const std::bad_alloc &) {
        rc = SC_ENOMEM;
    } catch (...) {
        rc = SC_EINDEX;
    }
    if (rc) {
        sc_hnsw_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

extern "C" int sc_hnsw_mark_deleted(sc_hnsw_t *h, uint64_t label)
{
    auto *g = h->graph;
    auto it = g->label_lookup_.find((hnswlib::labeltype)label);
    if (it == g->label_lookup_.end() || g->isMarkedDeleted(it->second))
        return SC_ENOTFOUND;
    GUARD(g->markDelete((hnswlib::labeltype)label));
    return 0;
}

// searchKnn of hnswlib 0.6.2 with the beam as an argument instead of the
// graph's ef_ member, so searches with different beams can share one graph
// from several threads: greedy descent through the upper levels, then the
// level-0 beam search. The queue pops worst first; the result is filled from
// the back so index 0 is the best.
static void search_beam(const sc_hnsw_t *h, const float *query, size_t k, size_t ef,
                        uint64_t *labels, float *sims, size_t *n)
{
    auto *g = h->graph;
    *n = 0;
    if (g->cur_element_count == 0)
        return;
    hnswlib::tableint cur = g->enterpoint_node_;
    descend(g,
            [&](hnswlib::tableint id) {
                return g->fstdistfunc_(query, g->getDataByInternalId(id), g->dist_func_param_);
            },
            &cur);
    if (ef < k)
        ef = k;
    auto top = g->num_deleted_ ? g->searchBaseLayerST<true>(cur, query, ef)
                               : g->searchBaseLayerST<false>(cur, query, ef);
    while (top.size() > k)
        top.pop();
    size_t m = top.size();
    for (size_t i = m; i-- > 0;) {
        labels[i] = (uint64_t)g->getExternalLabel(top.top().second);
        sims[i] = 1.0f - top.top().first; // distance = 1 - inner product
        top.pop();
    }
    *n = m;
}

extern "C" int sc_hnsw_search(const sc_hnsw_t *h, const float *query, size_t k, uint64_t *labels,
                              float *sims, size_t *n)
{
    *n = 0;
    if (k == 0)
        return 0;
    GUARD(h->q8 ? search_q8(h, query, k, h->graph->ef_, labels, sims, n)
                : search_beam(h, query, k, h->graph->ef_, labels, sims, n));
    return 0;
}

extern "C" int sc_hnsw_search_ef(const sc_hnsw_t *h, const float *query, size_t k, size_t ef,
                                 uint64_t *labels, float *sims, size_t *n)
{
    *n = 0;
    if (k == 0)
        return 0;
    ef = ef < 1 ? 1 : ef;
    GUARD(h->q8 ? search_q8(h, query, k, ef, labels, sims, n)
                : search_beam(h, query, k, ef, labels, sims, n));
    return 0;
}

extern "C" size_t sc_hnsw_live(const sc_hnsw_t *h)
{
    return h->graph->cur_element_count - h->graph->num_deleted_;
}

extern "C" size_t sc_hnsw_deleted(const sc_hnsw_t *h)
{
    return h->graph->num_deleted_;
}

extern "C" uint32_t sc_hnsw_dim(const sc_hnsw_t *h)
{
    return h->dim;
}

extern "C" int sc_hnsw_foreach(const sc_hnsw_t *h,
                               void (*fn)(void *ctx, uint64_t label, const float *vec), void *ctx)
{
    auto *g = h->graph;
    for (size_t i = 0; i < g->cur_element_count; i++) {
        if (g->isMarkedDeleted((hnswlib::tableint)i))
            continue;
        fn(ctx, (uint64_t)g->getExternalLabel((hnswlib::tableint)i),
           (const float *)g->getDataByInternalId((hnswlib::tableint)i));
    }
    return 0;
}

extern "C" int sc_hnsw_save(const sc_hnsw_t *h, const char *path)
{
    GUARD(h->graph->saveIndex(path));
    return 0;
}

extern "C" int sc_hnsw_load(sc_hnsw_t **out, const char *path, uint32_t dim)
{
    sc_hnsw_t *h;
    int rc = make(&h, dim);
    if (rc)
        return rc;
    try {
        h->graph = new hnswlib::HierarchicalNSW<float>(h->space, path);
        h->graph->setEf(64);
        // The file does not record the space, but its element layout puts
        // the vector between offsetData_ and label_offset_.
        if (h->graph->label_offset_ - h->graph->offsetData_ != dim * sizeof(float))
            throw std::runtime_error("dimension mismatch");
        // hnswlib 0.6.2 counts deletions on load without zeroing the counter
        // first (the loading constructor leaves it uninitialized): recount.
        size_t deleted = 0;
        for (size_t i = 0; i < h->graph->cur_element_count; i++)
            deleted += h->graph->isMarkedDeleted((hnswlib::tableint)i);
        h->graph->num_deleted_ = deleted;
    } catch (const std::bad_alloc &) {
        rc = SC_ENOMEM;
    } catch (...) {
        rc = SC_ECORRUPT;
    }
    if (rc) {
        delete h->graph;
        delete h->space;
        delete h;
        return rc;
    }
    *out = h;
    return 0;
}

extern "C" void sc_hnsw_destroy(sc_hnsw_t *h)
{
    if (!h)
        return;
    q8_free(h->q8);
    delete h->graph;
    delete h->space;
    delete h;
}

extern "C" int sc_hnsw_quantize(sc_hnsw_t *h, int on)
{
    if (!on) {
        q8_free(h->q8);
        h->q8 = nullptr;
    }
    if (!on || h->q8)
        return 0;
    auto *g = h->graph;
    q8_copy *q = new (std::nothrow) q8_copy();
    if (!q)
        return SC_ENOMEM;
    q->stride = q8_stride(h->dim);
    if (!q8_reserve(q, std::max<size_t>(g->max_elements_, 1))) {
        q8_free(q);
        return SC_ENOMEM;
    }
    for (size_t i = 0; i < g->cur_element_count; i++)
        q8_set(q, h->dim, i, (const float *)g->getDataByInternalId((hnswlib::tableint)i));
    h->q8 = q;
    return 0;
}

extern "C" size_t sc_hnsw_quantized_bytes(const sc_hnsw_t *h)
{
    return h->q8 ? h->q8->cap * (h->q8->stride + 2 * sizeof(float)) : 0;
}

// The distance kernels hnswlib was compiled with, for --version: its USE_*
// macros follow the compiler's target flags (HNSW_ARCH in the Makefile).
extern "C" const char *sc_hnsw_simd(void)
{
#if defined(USE_AVX512)
    return "AVX-512";
#elif defined(USE_AVX)
    return "AVX";
#elif defined(USE_SSE)
    return "SSE";
#else
    return "none";
#endif
}
