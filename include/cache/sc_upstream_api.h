/* sc_upstream_api.h -- the provider APIs the proxy speaks, one enum for the
 * whole engine (request mapping, SSE recording, stored entries). Each kind has
 * two stable names: the one hashed into keys and scopes ("openai.chat"), so
 * an answer stored for one API is never served to another, and the short one
 * written in stored entries ("chat"). Changing either breaks stored data. */
#ifndef SC_UPSTREAM_API_H
#define SC_UPSTREAM_API_H

#include <stddef.h>

/* Values start at 1 so a zeroed struct is recognisably unset. */
typedef enum {
    SC_API_OPENAI_CHAT = 1,        /* POST /v1/chat/completions */
    SC_API_OPENAI_RESPONSES = 2,   /* POST /v1/responses */
    SC_API_ANTHROPIC_MESSAGES = 3, /* POST /v1/messages */
    SC_API_OPENAI_EMBEDDINGS = 4,  /* POST /v1/embeddings (no streams, no entries) */
} sc_api_t;

/* The name hashed into keys ("openai.chat", ...; static), or NULL for an
 * unknown value. */
const char *sc_api_key_name(sc_api_t api);
/* The short name stored in entries ("chat", "responses", "messages"; static),
 * or NULL for a kind that has no stored answers (embeddings) or is unknown. */
const char *sc_api_entry_name(sc_api_t api);
/* The inverse of sc_api_entry_name; 0 for an unknown name. */
sc_api_t sc_api_from_entry_name(const char *name, size_t len);

#endif
