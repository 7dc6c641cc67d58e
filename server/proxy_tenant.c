/* proxy_tenant.c -- whose entries a proxied request may see. By default the
 * tenant is HMAC-SHA256 of the client's API key under a secret kept in the
 * data directory (32 random bytes, 0600, created at first start), so two
 * customers' keys never share entries while neither key is ever stored, and
 * a stolen data directory without the secret cannot be matched against
 * known keys. --proxy-tenant header takes X-Semcached-Tenant instead (an
 * application sharing one key among its own users), none shares across keys. */
#define _GNU_SOURCE
#include "proxy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum { TENANT_KEY = 0, TENANT_HEADER = 1, TENANT_NONE = 2 }; /* --proxy-tenant */

/* Reads exactly 32 bytes from 'path'; SC_ENOTFOUND when it does not exist. */
static int read_secret(const char *path, uint8_t secret[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SC_ENOTFOUND : -errno;
    uint8_t extra;
    ssize_t n = read(fd, secret, 32);
    int more = n == 32 && read(fd, &extra, 1) == 1;
    close(fd);
    return n == 32 && !more ? 0 : SC_ECORRUPT;
}

int px_secret_load(const char *data_dir, uint8_t secret[32])
{
    char path[1100], tmp[1120];
    snprintf(path, sizeof(path), "%s/proxy.secret", data_dir);
    int rc = read_secret(path, secret);
    if (rc != SC_ENOTFOUND)
        return rc;
    if (RAND_bytes(secret, 32) != 1)
        return SC_EINVAL;
    /* Written aside and linked in place: a crash never leaves half a secret,
     * and two processes starting at once agree on the first one linked. */
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int ok = write(fd, secret, 32) == 32 && fsync(fd) == 0;
    close(fd);
    rc = ok ? (link(tmp, path) == 0 ? 0 : -errno) : SC_ESTORE;
    unlink(tmp);
    if (rc == -EEXIST)
        rc = read_secret(path, secret);
    return rc;
}

/* The key the upstream will see: the client's x-api-key, else its bearer
 * token, else the configured key the proxy adds. */
static sc_slice_t api_key(const sc_proxy_t *p, const sc_http_request_t *http,
                          px_provider_t provider)
{
    sc_slice_t k = sc_http_request_header(http, "x-api-key");
    if (k.ptr && k.len)
        return k;
    k = sc_http_request_header(http, "authorization");
    if (k.ptr && k.len > 7 && strncasecmp(k.ptr, "Bearer ", 7) == 0)
        return (sc_slice_t){k.ptr + 7, k.len - 7};
    if (k.ptr && k.len)
        return k; /* another scheme: the whole credential */
    const char *own = p->key[provider];
    return (sc_slice_t){own, strlen(own)};
}

int px_tenant(const sc_proxy_t *p, const sc_http_request_t *http, px_provider_t provider, char *out,
              size_t cap)
{
    out[0] = '\0';
    int mode = (int)p->ctx->cfg.proxy_tenant;
    if (mode == TENANT_NONE)
        return 0;
    if (mode == TENANT_HEADER) {
        sc_slice_t t = sc_http_request_header(http, "x-semcached-tenant");
        if (!t.ptr)
            return 0;
        if (t.len > SC_MAX_TENANT || t.len >= cap)
            return SC_EINVAL;
        memcpy(out, t.ptr, t.len);
        out[t.len] = '\0';
        return (int)t.len;
    }
    sc_slice_t key = api_key(p, http, provider);
    if (!key.len || cap < 65)
        return 0; /* no key: the anonymous tenant */
    uint8_t mac[32];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), p->secret, 32, (const unsigned char *)key.ptr, key.len, mac,
              &mac_len) ||
        mac_len != 32)
        return SC_EINVAL;
    sc_hex_encode(mac, 32, out);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 64;
}
