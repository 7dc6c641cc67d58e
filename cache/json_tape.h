/* json_tape.h -- a JSON text as a flat tape of nodes (yyjson's layout, written
 * for request_fast.c's hot path): one pass, no allocation for small bodies,
 * strings left in place and decoded on demand. It is strict in jansson's way
 * (the same grammar, UTF-8 and escape rules, duplicate keys refused) and
 * declines (SC_EINVAL) whatever it does not handle: escaped object keys,
 * integers past 18 digits, nesting past 32, objects past 64 members. */
#ifndef SC_JSON_TAPE_H
#define SC_JSON_TAPE_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

#define SC_TAPE_SMALL 128 /* nodes on the stack: a chat lookup has 10 to 100 */

enum {
    SC_TAPE_OBJ,
    SC_TAPE_ARR,
    SC_TAPE_STR,
    SC_TAPE_INT,
    SC_TAPE_REAL,
    SC_TAPE_TRUE,
    SC_TAPE_FALSE,
    SC_TAPE_NULL
};

typedef struct {
    uint8_t type;
    uint8_t esc;   /* SC_TAPE_STR: holds a backslash escape */
    uint32_t off;  /* SC_TAPE_STR: the byte after the opening quote; numbers: the first byte */
    uint32_t len;  /* raw bytes (SC_TAPE_STR: without the quotes) */
    uint32_t next; /* the node after this value and everything inside it */
    union {
        struct {
            uint32_t n;    /* SC_TAPE_OBJ: members; SC_TAPE_ARR: elements */
            uint32_t keys; /* SC_TAPE_OBJ: where its key nodes start in 'order' */
        } c;
        double d; /* SC_TAPE_REAL: the value (strtod's, as jansson reads it) */
    } u;
} sc_tape_node_t;

/* Node 0 is the body. An object's members are its key nodes (never
 * escaped), each followed by its value's nodes; 'order' lists every
 * object's key nodes sorted by key (strcmp's order). The tape borrows the
 * text it was parsed from. */
typedef struct {
    const char *s;
    uint32_t len, pos;
    sc_tape_node_t *nodes;
    uint32_t n, cap;
    uint32_t *order;
    uint32_t n_order, cap_order;
    sc_tape_node_t small[SC_TAPE_SMALL];
    uint32_t small_order[SC_TAPE_SMALL];
} sc_tape_t;

/* Parses 's' (one object and nothing after it but whitespace) into 't'.
 * 0; SC_EINVAL to decline; SC_ENOMEM. Release with sc__tape_free whatever
 * the outcome. */
int sc__tape_parse(sc_tape_t *t, const char *s, size_t len);
void sc__tape_free(sc_tape_t *t);

/* Decodes string node 'i' into 'o', which has room for its raw length (a
 * decoded string is never longer); returns the decoded length. */
size_t sc__tape_decode(const sc_tape_t *t, uint32_t i, char *o);
/* Appends string node 'i', decoded, to 'out'. 0 or SC_ENOMEM. */
int sc__tape_append_str(const sc_tape_t *t, uint32_t i, sc_buf_t *out);
/* 1 when node 'i' is a string that decodes to the short word 'w'. */
int sc__tape_str_is(const sc_tape_t *t, uint32_t i, const char *w);
/* The decoded length of string node 'i' (SIZE_MAX when out of memory). */
size_t sc__tape_str_len(const sc_tape_t *t, uint32_t i);
/* The value of member 'name' of node 'obj', or 0 when 'obj' is not an
 * object or has no such member (node 0 is never a member's value). */
uint32_t sc__tape_member(const sc_tape_t *t, uint32_t obj, const char *name);
/* Element 'k' of array node 'arr' (k in range). */
uint32_t sc__tape_element(const sc_tape_t *t, uint32_t arr, uint32_t k);
/* json_number_value's answer for a number node. */
double sc__tape_number(const sc_tape_t *t, uint32_t i);

#endif
