/* sc_key.h -- the size of the cache's keys, in one place. An exact key is
 * 16 bytes (XXH3-128 of the canonical request, see sc_request.h); the store,
 * the vector indexes' labels and the quality loop all use this width, so it
 * is defined here once, in a header with no dependencies. */
#ifndef SC_KEY_H
#define SC_KEY_H

#define SC_KEY_BYTES 16
#define SC_KEY_HEX (2 * SC_KEY_BYTES) /* lowercase hex, without the NUL */

#endif
