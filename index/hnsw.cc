// hnsw.cc -- the C API over Debian's hnswlib 0.6.2 (header-only C++). This is
// the only C++ in semcached: every entry point catches every exception and
// returns an SC_E* code, so nothing C++ crosses into C. Capacity grows by
// doubling inside sc_hnsw_add, which is why callers must hold the index
// exclusively while adding (resizeIndex reallocates the graph).
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
#define GUARD(expr)                                \
    try {                                          \
        expr;                                      \
    } catch (const std::bad_alloc &) {             \
        return SC_ENOMEM;                          \
    } catch (...) {                                \
        return SC_EINDEX;                          \
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

extern "C" int sc_hnsw_mark_deleted(sc_hnsw_t *h, uint64_t label)
{
    auto *g = h->graph;
    auto it = g->label_lookup_.find((hnswlib::labeltype)label);
    if (it == g->label_lookup_.end() || g->isMarkedDeleted(it->second))
        return SC_ENOTFOUND;
    GUARD(g->markDelete((hnswlib::labeltype)label));
    return 0;
}

extern "C" int sc_hnsw_search(const sc_hnsw_t *h, const float *query, size_t k, uint64_t *labels,
                              float *sims, size_t *n)
{
    *n = 0;
    if (k == 0)
        return 0;
    GUARD({
        auto res = h->graph->searchKnn(query, k);
        // The queue pops worst first; fill from the back so index 0 is best.
        size_t m = res.size();
        for (size_t i = m; i-- > 0;) {
            labels[i] = (uint64_t)res.top().second;
            sims[i] = 1.0f - res.top().first; // distance = 1 - inner product
            res.pop();
        }
        *n = m;
    });
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
