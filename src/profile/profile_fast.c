/*
 * profile_fast.c - stored answers written directly, without jansson (profile_fast.h).
 *
 * The recoder reads a fragment's JSON text once and writes what jansson's parse-then-dump
 * would: compact separators, strings re-escaped jansson's way (only '"', '\\' and control
 * characters, \u00XX in upper case; everything else as UTF-8), integers through long long,
 * reals through %.17g with jansson's ".0" and exponent clean-up, keys in their order. It
 * declines (ING_ESYNTAX) whatever jansson would reject or reshape: duplicate keys (jansson keeps
 * the first position with the last value), \u0000, unpaired surrogates, bytes that are not
 * UTF-8, raw control characters, numbers out of range, more than MAX_DEPTH levels or
 * MAX_KEYS keys in one object.
 */
#include "profile/profile_fast.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jtok.h"
#include "profile/profile.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/utf8.h"

#define MAX_DEPTH 64
#define MAX_KEYS 256

struct keyspan {
    size_t off, len; /* an emitted key, quotes included, in the output */
};

struct rd {
    const char *p;
    const char *end;       /* the text's NUL: the scanners of json/jtok take an end */
    struct buf *out;
    int rc;                /* first failure: ING_ESYNTAX (declined) or the buffer's code */
    struct keyspan *keys;  /* the keys of the objects being read, innermost last */
    size_t nkeys, capkeys;
    bool has_map;          /* the top-level object has the key "identityMap" */
};

static void put(struct rd *r, const void *p, size_t n)
{
    if (r->rc == 0 && buf_append(r->out, p, n) != 0)
        r->rc = ING_ENOMEM;
}

static void put_c(struct rd *r, char c)
{
    put(r, &c, 1);
}

static void decline(struct rd *r)
{
    if (r->rc == 0)
        r->rc = ING_ESYNTAX;
}

static void skip_ws(struct rd *r)
{
    r->p = jtok_skip_ws(r->p, r->end);
}

/* One code point as jansson writes it inside a string. */
static void put_cp(struct rd *r, uint32_t cp)
{
    char tmp[8];
    size_t n = 0;
    if (cp == '"' || cp == '\\') {
        tmp[n++] = '\\';
        tmp[n++] = (char)cp;
    } else if (cp < 0x20) {
        static const char hex[] = "0123456789ABCDEF";
        tmp[n++] = '\\';
        switch (cp) {
        case '\b': tmp[n++] = 'b'; break;
        case '\f': tmp[n++] = 'f'; break;
        case '\n': tmp[n++] = 'n'; break;
        case '\r': tmp[n++] = 'r'; break;
        case '\t': tmp[n++] = 't'; break;
        default:
            tmp[n++] = 'u';
            tmp[n++] = '0';
            tmp[n++] = '0';
            tmp[n++] = hex[cp >> 4];
            tmp[n++] = hex[cp & 15];
            break;
        }
    } else if (cp < 0x80) {
        tmp[n++] = (char)cp;
    } else if (cp < 0x800) {
        tmp[n++] = (char)(0xC0 | (cp >> 6));
        tmp[n++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        tmp[n++] = (char)(0xE0 | (cp >> 12));
        tmp[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[n++] = (char)(0x80 | (cp & 0x3F));
    } else {
        tmp[n++] = (char)(0xF0 | (cp >> 18));
        tmp[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[n++] = (char)(0x80 | (cp & 0x3F));
    }
    put(r, tmp, n);
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* A string token at r->p ('"'), written re-escaped. */
static void rd_string(struct rd *r)
{
    const char *p = r->p + 1;
    put_c(r, '"');
    while (r->rc == 0) {
        /* runs of plain bytes go out in one append */
        const char *run = p;
        while ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            put(r, run, (size_t)(p - run));
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            p++;
            put_c(r, '"');
            break;
        }
        uint32_t cp = 0;
        if (c == '\\') {
            char e = p[1];
            p += 2;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(p, &cp) != 0) {
                    decline(r);
                    return;
                }
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo = 0;
                    if (p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 || lo < 0xDC00 ||
                        lo > 0xDFFF) {
                        decline(r);
                        return;
                    }
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                    decline(r);
                    return;
                }
                break;
            default:
                decline(r);
                return;
            }
            put_cp(r, cp);
            continue;
        }
        if (c < 0x20) { /* a raw control character, or the end of the text */
            decline(r);
            return;
        }
        size_t n = utf8_seq((const uint8_t *)p, 4, &cp) /* NUL-terminated */;
        if (n == 0) {
            decline(r);
            return;
        }
        put(r, p, n);
        p += n;
    }
    r->p = p;
}

/* A number token (JSON's grammar, checked by json/jtok), written as jansson's integer or real. */
static void rd_number(struct rd *r)
{
    const char *start = r->p;
    bool integer = false;
    const char *p = r->p < r->end ? jtok_scan_number(r->p, r->end, &integer) : NULL;
    if (!p) {
        decline(r);
        return;
    }
    bool real = !integer;
    char tok[64], text[40];
    size_t len = (size_t)(p - start);
    if (len >= sizeof(tok)) {
        decline(r);
        return;
    }
    memcpy(tok, start, len);
    tok[len] = '\0';
    errno = 0;
    int n;
    if (!real) {
        long long v = strtoll(tok, NULL, 10);
        if (errno == ERANGE) {
            decline(r);
            return;
        }
        n = snprintf(text, sizeof(text), "%lld", v);
    } else {
        double v = strtod(tok, NULL);
        if (errno == ERANGE || !isfinite(v)) {
            decline(r);
            return;
        }
        n = snprintf(text, sizeof(text), "%.17g", v);
        if (n <= 0 || (size_t)n + 3 > sizeof(text)) {
            decline(r);
            return;
        }
        /* jansson keeps a real a real ("100.0") and writes exponents without '+' or leading
         * zeros ("1e22", "9.9999999999999995e-8") */
        char *e = strchr(text, 'e');
        if (!e && !strchr(text, '.')) {
            memcpy(text + n, ".0", 3);
            n += 2;
        } else if (e) {
            char *d = e + 1;
            if (*d == '-')
                d++;
            char *s = d;
            while (*s == '+' || (*s == '0' && s[1] != '\0'))
                s++;
            memmove(d, s, strlen(s) + 1);
            n = (int)strlen(text);
        }
    }
    put(r, text, (size_t)n);
    r->p = p;
}

static void rd_value(struct rd *r, int depth);

static void rd_object(struct rd *r, int depth)
{
    size_t first_key = r->nkeys;
    r->p++; /* '{' */
    put_c(r, '{');
    skip_ws(r);
    if (*r->p == '}') {
        r->p++;
        put_c(r, '}');
        return;
    }
    for (;;) {
        skip_ws(r);
        if (*r->p != '"') {
            decline(r);
            break;
        }
        size_t off = r->out->len;
        rd_string(r);
        if (r->rc)
            break;
        struct keyspan k = {off, r->out->len - off};
        /* Keys compare as written back: the escaping is one-to-one, so equal text is an equal
         * key. jansson would keep the first one's place with the last one's value: decline. */
        for (size_t i = first_key; i < r->nkeys; i++) {
            if (r->keys[i].len == k.len &&
                memcmp(r->out->data + r->keys[i].off, r->out->data + k.off, k.len) == 0) {
                decline(r);
                break;
            }
        }
        if (r->rc || r->nkeys - first_key >= MAX_KEYS) {
            decline(r);
            break;
        }
        if (r->nkeys == r->capkeys) {
            r->capkeys = r->capkeys ? r->capkeys * 2 : 64;
            r->keys = xrealloc(r->keys, r->capkeys * sizeof(*r->keys));
        }
        r->keys[r->nkeys++] = k;
        static const char map_key[] = "\"identityMap\"";
        if (depth == 1 && k.len == sizeof(map_key) - 1 &&
            memcmp(r->out->data + k.off, map_key, k.len) == 0)
            r->has_map = true;
        skip_ws(r);
        if (*r->p != ':') {
            decline(r);
            break;
        }
        r->p++;
        put_c(r, ':');
        rd_value(r, depth + 1);
        if (r->rc)
            break;
        skip_ws(r);
        if (*r->p == ',') {
            r->p++;
            put_c(r, ',');
            continue;
        }
        if (*r->p == '}') {
            r->p++;
            put_c(r, '}');
            break;
        }
        decline(r);
        break;
    }
    r->nkeys = first_key;
}

static void rd_array(struct rd *r, int depth)
{
    r->p++; /* '[' */
    put_c(r, '[');
    skip_ws(r);
    if (*r->p == ']') {
        r->p++;
        put_c(r, ']');
        return;
    }
    for (;;) {
        rd_value(r, depth + 1);
        if (r->rc)
            return;
        skip_ws(r);
        if (*r->p == ',') {
            r->p++;
            put_c(r, ',');
            continue;
        }
        if (*r->p == ']') {
            r->p++;
            put_c(r, ']');
            return;
        }
        decline(r);
        return;
    }
}

static void rd_literal(struct rd *r, const char *word)
{
    size_t n = strlen(word);
    const char *next = jtok_scan_literal(r->p, r->end, word, n);
    if (!next) {
        decline(r);
        return;
    }
    r->p = next;
    put(r, word, n);
}

static void rd_value(struct rd *r, int depth)
{
    if (depth > MAX_DEPTH) {
        decline(r);
        return;
    }
    skip_ws(r);
    switch (*r->p) {
    case '{': rd_object(r, depth); break;
    case '[': rd_array(r, depth); break;
    case '"': rd_string(r); break;
    case 't': rd_literal(r, "true"); break;
    case 'f': rd_literal(r, "false"); break;
    case 'n': rd_literal(r, "null"); break;
    default: rd_number(r); break;
    }
}

static int recode(const char *text, struct buf *out, bool *has_identity_map)
{
    size_t mark = out->len;
    struct rd r = {.p = text, .end = text + strlen(text), .out = out};
    skip_ws(&r);
    bool object = *r.p == '{';
    if (*r.p != '{' && *r.p != '[')
        decline(&r);
    else
        rd_value(&r, 1);
    skip_ws(&r);
    if (r.rc == 0 && *r.p != '\0')
        decline(&r); /* jansson wants nothing but white space after the value */
    if (has_identity_map)
        *has_identity_map = object && r.has_map;
    free(r.keys);
    if (r.rc)
        out->len = mark;
    return r.rc;
}

int profile_fast_recode(const char *text, struct buf *out, bool *has_identity_map)
{
    return recode(text ? text : "", out, has_identity_map);
}

int profile_fast_string(struct buf *out, const char *s)
{
    size_t mark = out->len;
    struct rd r = {.out = out};
    const unsigned char *p = (const unsigned char *)s;
    put_c(&r, '"');
    while (*p && r.rc == 0) {
        /* runs of plain ASCII go out in one append */
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            put(&r, run, (size_t)(p - run));
        if (!*p)
            break;
        uint32_t cp = 0;
        size_t n = utf8_seq(p, 4, &cp) /* NUL-terminated */;
        if (n == 0) {
            decline(&r);
            break;
        }
        if (n > 1)
            put(&r, p, n);
        else
            put_cp(&r, cp);
        p += n;
    }
    put_c(&r, '"');
    if (r.rc)
        out->len = mark;
    return r.rc;
}

int profile_fast_answer(const char *policy_id, const struct idg_member *members, size_t n,
                        const char *dataset, const char *batch, int64_t ts, const char *doc,
                        struct buf *out)
{
    size_t mark = out->len;
    int rc = 0;
    char *entity_id = NULL, *xid = NULL;
    if (n == 0 || !doc)
        return ING_ESYNTAX;
    entity_id = idg_xid(members[0].ns.nsid, members[0].value);
    /* {"<entityId>":{"entityId":..,"sources":[..],"tags":[..],"identityGraph":[..],
     *  "mergePolicy":{"id":..},"entity":{..},"lastModifiedAt":".."}} as json_pack orders it */
    rc = buf_append_byte(out, '{');
    if (!rc)
        rc = profile_fast_string(out, entity_id);
    if (!rc)
        rc = buf_append_str(out, ":{\"entityId\":");
    if (!rc)
        rc = profile_fast_string(out, entity_id);
    if (!rc)
        rc = buf_append_str(out, ",\"sources\":[");
    if (!rc)
        rc = profile_fast_string(out, dataset);
    if (!rc)
        rc = buf_append_str(out, "],\"tags\":[");
    if (!rc)
        rc = profile_fast_string(out, batch);
    if (!rc)
        rc = buf_append_str(out, "],\"identityGraph\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        xid = idg_xid(members[i].ns.nsid, members[i].value);
        if (i > 0)
            rc = buf_append_byte(out, ',');
        if (!rc)
            rc = profile_fast_string(out, xid);
        free(xid);
        xid = NULL;
    }
    if (!rc)
        rc = buf_append_str(out, "],\"mergePolicy\":{\"id\":");
    if (!rc)
        rc = profile_fast_string(out, policy_id);
    if (!rc)
        rc = buf_append_str(out, "},\"entity\":");
    bool has_map = false;
    if (!rc)
        rc = recode(doc, out, &has_map);
    if (!rc && out->data[out->len - 1] != '}')
        rc = ING_ESYNTAX; /* an array: not a profile fragment (the general path skips it) */
    if (!rc && !has_map) {
        /* the general path appends "identityMap" (per namespace code in order of first
         * appearance, each member's {"id"}) after the fragment's own keys */
        out->len--; /* the closing '}' */
        if (out->data[out->len - 1] != '{')
            rc = buf_append_byte(out, ',');
        if (!rc)
            rc = buf_append_str(out, "\"identityMap\":{");
        bool first_code = true;
        for (size_t i = 0; i < n && !rc; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = strcmp(members[j].ns.code, members[i].ns.code) == 0;
            if (seen)
                continue;
            if (!first_code)
                rc = buf_append_byte(out, ',');
            first_code = false;
            if (!rc)
                rc = profile_fast_string(out, members[i].ns.code);
            if (!rc)
                rc = buf_append_str(out, ":[");
            bool first_item = true;
            for (size_t k = i; k < n && !rc; k++) {
                if (strcmp(members[k].ns.code, members[i].ns.code) != 0)
                    continue;
                rc = buf_append_str(out, first_item ? "{\"id\":" : ",{\"id\":");
                first_item = false;
                if (!rc)
                    rc = profile_fast_string(out, members[k].value);
                if (!rc)
                    rc = buf_append_byte(out, '}');
            }
            if (!rc)
                rc = buf_append_byte(out, ']');
        }
        if (!rc)
            rc = buf_append_str(out, "}}");
    }
    char when[32];
    profile_time_text(ts > 0 ? ts : 0, when); /* the general path's newest time starts at 0 */
    if (!rc)
        rc = buf_printf(out, ",\"lastModifiedAt\":\"%s\"}}", when);
    free(entity_id);
    if (rc) {
        out->len = mark;
        return ING_ESYNTAX;
    }
    return 0;
}
