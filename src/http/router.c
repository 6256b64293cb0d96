/*
 * router.c - matching raw request paths against route patterns, and percent-decoding.
 *
 * The server hands the router the path exactly as the client sent it (still percent-encoded), so
 * that an encoded slash inside a parameter (a schema id such as
 * "https%3A%2F%2Fns.adobe.com%2Ftenant%2Fschemas%2Fabc") does not split the path. Literal segments
 * compare raw; each captured parameter is decoded on its own after the match.
 */
#include "http/http.h"
#include "http/http_int.h"

#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t http__pct_decode(char *dst, const char *src, size_t n, bool plus_space)
{
    /* Most paths and arguments have nothing to decode: find the first byte that may need it
     * and copy what comes before in one go. */
    size_t i = 0;
    while (i < n && src[i] != '%' && !(plus_space && src[i] == '+'))
        i++;
    if (dst != src)
        memmove(dst, src, i);
    size_t o = i;
    for (; i < n; i++) {
        char c = src[i];
        if (c == '%' && i + 2 < n) {
            int hi = hex_value(src[i + 1]);
            int lo = hex_value(src[i + 2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                dst[o++] = (char)(hi * 16 + lo);
                i += 2;
                continue;
            }
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        dst[o++] = c;
    }
    dst[o] = '\0';
    return o;
}

/* "{name}" -> 1, "{*name}" -> 2, anything else (a literal) -> 0. */
static int segment_kind(const char *seg, size_t n)
{
    if (n < 3 || seg[0] != '{' || seg[n - 1] != '}')
        return 0;
    return seg[1] == '*' ? 2 : 1;
}

bool http_route_match(const char *pattern, const char *path, char *scratch, const char **params,
                      size_t *nparams)
{
    *nparams = 0;
    if (!pattern || !path || pattern[0] != '/' || path[0] != '/')
        return false;
    size_t plen = strlen(path);
    /* A trailing slash is tolerated: "/a/b/" matches "/a/b". */
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    const char *path_end = path + plen;
    const char *p = pattern + 1;
    const char *s = path + 1;
    char *out = scratch;
    size_t n = 0;

    while (1) {
        const char *pend = strchr(p, '/');
        if (!pend)
            pend = p + strlen(p);
        size_t pseg_len = (size_t)(pend - p);
        int kind = segment_kind(p, pseg_len);

        if (kind == 2) {
            /* {*rest}: the rest of the path, slashes included; only as the last segment. */
            if (*pend != '\0' || s == path_end || n == HTTP_MAX_PARAMS)
                return false;
            size_t len = http__pct_decode(out, s, (size_t)(path_end - s), false);
            params[n++] = out;
            out += len + 1;
            *nparams = n;
            return true;
        }

        const char *send = memchr(s, '/', (size_t)(path_end - s));
        if (!send)
            send = path_end;
        size_t sseg_len = (size_t)(send - s);
        if (kind == 1) {
            if (sseg_len == 0 || n == HTTP_MAX_PARAMS)
                return false;
            size_t len = http__pct_decode(out, s, sseg_len, false);
            params[n++] = out;
            out += len + 1;
        } else if (sseg_len != pseg_len || memcmp(p, s, sseg_len) != 0) {
            return false;
        }

        if (*pend == '\0') {
            if (send != path_end)
                return false; /* the path has more segments than the pattern */
            *nparams = n;
            return true;
        }
        if (send == path_end)
            return false; /* the pattern has more segments than the path */
        p = pend + 1;
        s = send + 1;
    }
}
