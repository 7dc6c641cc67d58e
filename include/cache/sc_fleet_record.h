/* sc_fleet_record.h -- one replication record: what a fleet node writes to
 * its outbox and, from there, to the fleet's Redis stream (field "r"). A
 * fixed little-endian header (origin node, hybrid logical timestamp, keys,
 * two numbers, five lengths) and then the variable parts. Decoding is strict:
 * the stream is shared, so a record from another program, another version or
 * a broken writer is refused whole, never half-applied (cache/fleet_record.c). */
#ifndef SC_FLEET_RECORD_H
#define SC_FLEET_RECORD_H

#include <stdint.h>

#include "sc_common.h"
#include "sc_key.h"

/* What a record does; each mirrors the local write op it was made from
 * (sc_op_type_t in sc_store.h). */
typedef enum {
    SC_FREC_PUT = 1,        /* 'key' <- 'payload' (an entry record, vector included) */
    SC_FREC_DELETE = 2,     /* remove 'key', leave a tombstone */
    SC_FREC_INVALIDATE = 3, /* remove entries matching the filters (or 'all') older than 'hlc' */
    SC_FREC_NS_PUT = 4,     /* namespace 'ns''s settings <- 'payload' (a JSON object) */
    SC_FREC_NS_DELETE = 5,  /* remove namespace 'ns''s settings and its entries older than 'hlc' */
    SC_FREC_VALIDATION = 6, /* validations: 'key' <- 'payload'; keeps the 'a' highest */
    SC_FREC_NEGATIVE = 7,   /* negatives: adds 'key' | 'key2' (a wrong pairing) */
} sc_frec_type_t;
#define SC_FREC_TYPE_MAX 7

/* Flags: which invalidation filters are present (absent = any). */
#define SC_FREC_ALL 0x01u
#define SC_FREC_HAS_NS 0x02u
#define SC_FREC_HAS_TENANT 0x04u
#define SC_FREC_HAS_MODEL 0x08u
#define SC_FREC_FLAGS_KNOWN 0x0fu

/* Bytes of the fixed header, and the limits decoding enforces. */
#define SC_FREC_HEADER 92
#define SC_FREC_MAX_NAME 4096           /* ns, tenant, model */
#define SC_FREC_MAX_EMBEDDER 128        /* as SC_MAX_EMBEDDER (sc_namespaces.h) */
#define SC_FREC_MAX_PAYLOAD (64u << 20) /* an entry record is at most this */
#define SC_FREC_MAX_DIM 65536

/* A hybrid logical timestamp: wall-clock ms in the high 48 bits, a counter
 * in the low 16 (several changes in one ms stay ordered). */
#define SC_HLC_MS(h) ((h) >> 16)

/* A decoded (or to-be-encoded) record. From sc_frec_decode the slices point
 * into the bytes decoded and live as long as they do. */
typedef struct {
    sc_frec_type_t type;
    uint32_t flags;  /* SC_FREC_* */
    uint64_t origin; /* node that made the change; never 0 */
    uint64_t hlc;    /* when (hybrid logical clock); never 0 */
    uint8_t key[SC_KEY_BYTES];
    uint8_t key2[SC_KEY_BYTES];   /* NEGATIVE: second half */
    uint64_t a;                   /* PUT: namespace entry cap; VALIDATION: rows kept */
    uint64_t b;                   /* PUT: namespace byte cap */
    sc_slice_t ns, tenant, model; /* INVALIDATE filters; NS_*: the namespace in 'ns' */
    sc_slice_t embedder;          /* PUT: identity of the embedder of the vector ("" = unnamed) */
    sc_slice_t payload;           /* PUT / NS_PUT / VALIDATION */
} sc_frec_t;

/* Appends record 'r' to 'out'. SC_EINVAL if it breaks a rule decode checks
 * (so a node never publishes what its peers would refuse). */
int sc_frec_encode(const sc_frec_t *r, sc_buf_t *out);
/* Decodes and validates 'len' bytes at 'p'. SC_ECORRUPT for anything but a
 * well-formed record of a known type whose parts fit its type (an NS_PUT's
 * payload must be a JSON object; a PUT's must be non-empty, and is checked
 * as an entry record by sc_store_decode, which the fleet's reader does). */
int sc_frec_decode(const void *p, size_t len, sc_frec_t *r);
/* The type's name ("put", "delete", ...) or "unknown". Static. */
const char *sc_frec_type_name(int type);

#endif
