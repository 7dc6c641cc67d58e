// hnsw.cc -- the C API over Debian's hnswlib 0.6.2 (header-only C++). This is
// the only C++ in semcached: every entry point catches every exception and
// returns an SC_E* code, so nothing C++ crosses into C. Capacity grows by
// doubling inside sc_hnsw_add, which is why callers must hold the index
// exclusively while adding (resizeIndex reallocates the graph). hnswlib
// cannot search while it inserts, so index/scopes.c never changes a graph
// that searches can see: it clones one (sc_hnsw_clone, a memory copy),
// changes the clone and swaps it in.
#include <hnswlib/hnswlib.h>

#include <cstring>
#include <new>
#include <stdexcept>

extern "C" {
#include "sc_index.h"
}

struct sc_hnsw_s {
    hnswlib::InnerProductSpace *space;
    hnswlib::HierarchicalNSW<float> *graph;
    uint32_t dim;
};

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
        if (!exists && g->cur_element_count >= g->max_elements_)
            g->resizeIndex(g->max_elements_ * 2);
        g->addPoint(vec, (hnswlib::labeltype)label);
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
    float curdist = g->fstdistfunc_(query, g->getDataByInternalId(cur), g->dist_func_param_);
    for (int level = g->maxlevel_; level > 0; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            unsigned int *data = (unsigned int *)g->get_linklist(cur, level);
            int size = g->getListCount(data);
            hnswlib::tableint *links = (hnswlib::tableint *)(data + 1);
            for (int i = 0; i < size; i++) {
                float d =
                    g->fstdistfunc_(query, g->getDataByInternalId(links[i]), g->dist_func_param_);
                if (d < curdist) {
                    curdist = d;
                    cur = links[i];
                    changed = true;
                }
            }
        }
    }
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
    GUARD(search_beam(h, query, k, h->graph->ef_, labels, sims, n));
    return 0;
}

extern "C" int sc_hnsw_search_ef(const sc_hnsw_t *h, const float *query, size_t k, size_t ef,
                                 uint64_t *labels, float *sims, size_t *n)
{
    *n = 0;
    if (k == 0)
        return 0;
    GUARD(search_beam(h, query, k, ef < 1 ? 1 : ef, labels, sims, n));
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
    delete h->graph;
    delete h->space;
    delete h;
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
