/* fifo.h -- the bounded FIFO behind the embedding and search worker pools
 * and the HTTP client's submission queue. Intrusive: each node carries its
 * own 'next' pointer at a fixed offset, so queueing never allocates. It has
 * no lock of its own: every user already holds a mutex for its condition
 * variable or wake-up, and guards the FIFO with it. */
#ifndef SC_FIFO_H
#define SC_FIFO_H

#include <stddef.h>

#include "sc_common.h"

typedef struct {
    void *head, *tail;
    size_t len, max;
    size_t link; /* offset of the 'next' pointer inside a node */
} sc_fifo_t;

/* An empty FIFO of nodes of 'type' linked through 'member', holding at most
 * 'max' (at least 1). */
#define SC_FIFO_INIT(type, member, max)                                                            \
    ((sc_fifo_t){NULL, NULL, 0, (max) ? (max) : 1, offsetof(type, member)})

static inline void **sc_fifo_link(const sc_fifo_t *q, void *node)
{
    return (void **)((char *)node + q->link);
}

/* Appends 'node'; SC_EBUSY when the FIFO is full. */
static inline int sc_fifo_push(sc_fifo_t *q, void *node)
{
    if (q->len >= q->max)
        return SC_EBUSY;
    *sc_fifo_link(q, node) = NULL;
    if (q->tail)
        *sc_fifo_link(q, q->tail) = node;
    else
        q->head = node;
    q->tail = node;
    q->len++;
    return 0;
}

/* The oldest node, removed; NULL when empty. */
static inline void *sc_fifo_pop(sc_fifo_t *q)
{
    void *node = q->head;
    if (!node)
        return NULL;
    q->head = *sc_fifo_link(q, node);
    if (!q->head)
        q->tail = NULL;
    q->len--;
    return node;
}

/* Empties the FIFO and returns its nodes as a chain: walk it with
 * sc_fifo_next (read a node's successor before handing the node on). */
static inline void *sc_fifo_take_all(sc_fifo_t *q)
{
    void *head = q->head;
    q->head = q->tail = NULL;
    q->len = 0;
    return head;
}

static inline void *sc_fifo_next(const sc_fifo_t *q, void *node)
{
    return *sc_fifo_link(q, node);
}

#endif
