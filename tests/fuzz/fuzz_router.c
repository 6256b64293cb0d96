/*
 * fuzz_router.c - libFuzzer target for the HTTP router and the percent-decoder (src/http/router.c).
 *
 * Input: one byte choosing a method (only to vary the input shape, as the router does not look at
 * it), then "path?query" bytes. The path goes through http_route_match over a fixed pattern table;
 * the query through the decoder the server uses for arguments. Checks:
 *  - a decoded value never contains a NUL byte (its C length equals the decoded length);
 *  - every captured parameter is the decoding of the path segment(s) at the pattern's position,
 *    computed here independently of the router's walk, so captures come from the path;
 *  - the number of captures equals the number of placeholders in the pattern.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char *const k_patterns[] = {
    "/",
    "/{a}",
    "/{*rest}",
    "/a/{b}/c/{*d}",
    "/data/foundation/catalog/dataSets/{id}",
    "/data/foundation/catalog/dataSets/{id}/views",
    "/data/foundation/import/batches/{id}/datasets/{ds}/files/{*path}",
    "/data/foundation/schemaregistry/tenant/schemas/{id}",
    "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}",
    "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
};

/* The n-th '/'-separated segment of path (after the leading '/'); the rest when rest is set. */
static bool segment_at(const char *path, size_t plen, size_t index, bool rest, const char **seg,
                       size_t *seglen)
{
    const char *s = path + 1;
    const char *end = path + plen;
    for (size_t i = 0; i < index; i++) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        if (!slash)
            return false;
        s = slash + 1;
    }
    const char *slash = rest ? NULL : memchr(s, '/', (size_t)(end - s));
    *seg = s;
    *seglen = (size_t)((slash ? slash : end) - s);
    return true;
}

static void check_match(const char *pattern, const char *path)
{
    size_t plen = strlen(path);
    char *scratch = malloc(plen + 1);
    const char *params[HTTP_MAX_PARAMS];
    size_t n = 99;
    bool ok = http_route_match(pattern, path, scratch, params, &n);
    if (!ok) {
        free(scratch);
        return;
    }
    CHECK(n <= HTTP_MAX_PARAMS);
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    char *expect = malloc(plen + 1);
    size_t seg_index = 0, k = 0;
    const char *p = pattern + 1;
    while (1) {
        const char *pend = strchr(p, '/');
        size_t len = pend ? (size_t)(pend - p) : strlen(p);
        if (len >= 3 && p[0] == '{' && p[len - 1] == '}') {
            bool rest = p[1] == '*';
            const char *seg;
            size_t seglen;
            CHECK(k < n);
            CHECK(segment_at(path, plen, seg_index, rest, &seg, &seglen));
            size_t dlen = http__pct_decode(expect, seg, seglen, false);
            CHECK(memchr(expect, '\0', dlen) == NULL);
            CHECK(strlen(params[k]) == dlen);
            CHECK(memcmp(params[k], expect, dlen) == 0);
            CHECK(params[k] >= scratch && params[k] + dlen <= scratch + strlen(path));
            k++;
        }
        if (!pend)
            break;
        p = pend + 1;
        seg_index++;
    }
    CHECK(k == n);
    free(expect);
    free(scratch);
}

static void check_query(const char *q, size_t n)
{
    char *out = malloc(n + 1);
    const char *s = q;
    const char *end = q + n;
    while (s <= end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        const char *parts[2][2] = {{s, eq ? eq : stop}, {eq ? eq + 1 : stop, stop}};
        for (int i = 0; i < 2; i++) {
            size_t in_len = (size_t)(parts[i][1] - parts[i][0]);
            size_t dlen = http__pct_decode(out, parts[i][0], in_len, true);
            CHECK(dlen <= in_len);
            CHECK(memchr(out, '\0', dlen) == NULL);
            CHECK(strlen(out) == dlen);
        }
        if (!amp)
            break;
        s = amp + 1;
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The server never sees NUL in a URL (MHD stops at it), so cut there. */
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(text, '\0', len);
    if (nul)
        len = (size_t)(nul - text);
    const char *qmark = memchr(text, '?', len);
    size_t path_len = qmark ? (size_t)(qmark - text) : len;
    char *path = malloc(path_len + 1);
    memcpy(path, text, path_len);
    path[path_len] = '\0';
    for (size_t i = 0; i < sizeof(k_patterns) / sizeof(k_patterns[0]); i++)
        check_match(k_patterns[i], path);
    if (qmark)
        check_query(qmark + 1, len - path_len - 1);
    free(path);
    return 0;
}
