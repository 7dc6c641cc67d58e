/* upstream_api.c -- names of the provider APIs the proxy speaks (see
 * sc_upstream_api.h): a switch each, so the compiler lists a missing kind. */
#include "sc_upstream_api.h"

#include <string.h>

const char *sc_api_key_name(sc_api_t api)
{
    switch (api) {
    case SC_API_OPENAI_CHAT:
        return "openai.chat";
    case SC_API_OPENAI_RESPONSES:
        return "openai.responses";
    case SC_API_ANTHROPIC_MESSAGES:
        return "anthropic.messages";
    case SC_API_OPENAI_EMBEDDINGS:
        return "openai.embeddings";
    }
    return NULL;
}

const char *sc_api_entry_name(sc_api_t api)
{
    switch (api) {
    case SC_API_OPENAI_CHAT:
        return "chat";
    case SC_API_OPENAI_RESPONSES:
        return "responses";
    case SC_API_ANTHROPIC_MESSAGES:
        return "messages";
    case SC_API_OPENAI_EMBEDDINGS:
        return NULL;
    }
    return NULL;
}

sc_api_t sc_api_from_entry_name(const char *name, size_t len)
{
    for (int a = SC_API_OPENAI_CHAT; a <= SC_API_ANTHROPIC_MESSAGES; a++) {
        const char *n = sc_api_entry_name((sc_api_t)a);
        if (n && strlen(n) == len && memcmp(n, name, len) == 0)
            return (sc_api_t)a;
    }
    return (sc_api_t)0;
}
