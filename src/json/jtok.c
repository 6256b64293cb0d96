/*
 * jtok.c - pull tokenizer for one JSON record (RFC 8259), plus string and number decoding.
 *
 * The grammar is an explicit state machine over `struct jlex`: `state` says what may come next
 * and `stack` holds the kind of every open container. Nothing is allocated per token. String
 * bodies are skipped sixteen bytes at a time with SSE2 (x86-64), eight elsewhere, while they hold
 * only printable ASCII (the common case for ingestion data); escapes, control characters and
 * multi-byte UTF-8 take the slow path, where UTF-8 is checked against RFC 3629 (no overlongs, no
 * surrogates, nothing above U+10FFFF).
 *
 * Lone surrogate escapes (\uD800 without its low half, or a low half alone) are rejected here as
 * well, so every string the tokenizer accepts decodes with jtok_unescape into valid UTF-8.
 */
#include "json/jtok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Grammar states. ST_FAILED is sticky and keeps the error code in the upper bits. */
enum {
    ST_VALUE = 0,   /* a value must follow (start of record, after ':' handled in ST_COLON) */
    ST_OBJ_FIRST,   /* just after '{': a key or '}' */
    ST_COLON,       /* just after a key: ':' then a value */
    ST_ARR_FIRST,   /* just after '[': a value or ']' */
    ST_AFTER,       /* a value is complete: ',' or a closer, or the end of the record */
    ST_DONE,        /* JT_END was returned */
    ST_FAILED,      /* an error was returned; code kept as state >> 8 */
};

enum { KIND_OBJ = 0, KIND_ARR = 1 };

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when some byte of v is zero (exact as a yes/no answer). */
static inline uint64_t has_zero(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w)); /* memcpy: no alignment assumptions */
    return w;
}

/* Class of a byte inside a string: 0 plain ASCII, 1 '"', 2 '\\', 3 control character,
 * 4/5/6 lead byte of a 2/3/4-byte UTF-8 sequence, 7 never valid here (stray continuation byte,
 * C0/C1 overlong leads, F5..FF). */
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const uint8_t str_cls[256] = {
    R16(3), R16(3),                                  /* 00-1F */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 20-2F: '"' at 0x22 */
    R16(0), R16(0),                                  /* 30-4F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,  /* 50-5F: '\\' at 0x5C */
    R16(0), R16(0),                                  /* 60-7F */
    R16(7), R16(7), R16(7), R16(7),                  /* 80-BF */
    7, 7, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* C0-CF */
    R16(4),                                          /* D0-DF */
    R16(5),                                          /* E0-EF */
    6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* F0-FF */
};
#undef R16

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (caller checked they are in bounds) -> code unit, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Describe the byte at p for error messages. */
static const char *found(const struct jlex *lx, const char *p, char tmp[16])
{
    if (p >= lx->end)
        return "end of input";
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7f) {
        tmp[0] = '\'';
        tmp[1] = (char)c;
        tmp[2] = '\'';
        tmp[3] = 0;
    } else {
        static const char hex[] = "0123456789abcdef";
        memcpy(tmp, "byte 0x", 7);
        tmp[7] = hex[c >> 4];
        tmp[8] = hex[c & 15];
        tmp[9] = 0;
    }
    return tmp;
}

/* Record an error at p and make the lexer fail from now on. */
static int fail(struct jlex *lx, const char *p, int code, struct ing_err *err, const char *what)
{
    char tmp[16];
    lx->state = ST_FAILED | ((-code) << 8);
    lx->p = p;
    if (err)
        err->offset = (int64_t)(p - lx->start);
    if (strncmp(what, "expected", 8) == 0) /* say what was there instead */
        return ing_err_set(err, code, "%s, found %s at offset %td", what, found(lx, p, tmp),
                           p - lx->start);
    return ing_err_set(err, code, "%s at offset %td", what, p - lx->start);
}

/* Validate one UTF-8 sequence whose lead byte (class cls) is at p; returns its length or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end, int cls)
{
    size_t need = (size_t)(cls - 2); /* class 4 -> 2 bytes, 5 -> 3, 6 -> 4 */
    if ((size_t)(end - p) < need)
        return 0;
    unsigned char c0 = p[0], c1 = p[1];
    /* The second byte's range depends on the lead: this is where overlongs, surrogates and
     * code points above U+10FFFF are excluded (RFC 3629 section 4). */
    unsigned char lo = 0x80, hi = 0xBF;
    if (c0 == 0xE0)
        lo = 0xA0;
    else if (c0 == 0xED)
        hi = 0x9F;
    else if (c0 == 0xF0)
        lo = 0x90;
    else if (c0 == 0xF4)
        hi = 0x8F;
    if (c1 < lo || c1 > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

/* Scan a string whose opening quote is at lx->p; fills the span. */
static int lex_string(struct jlex *lx, struct jtok *t, struct ing_err *err)
{
    const char *q = lx->p + 1;
    const char *end = lx->end;
    bool escaped = false;
    for (;;) {
#if defined(__SSE2__)
        /* Fast path: sixteen bytes at a time; a signed compare below 0x20 flags control bytes
         * and every non-ASCII byte (negative as signed) at once. Stops on the first special
         * byte, which the byte loop below then classifies. */
        while (end - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
            __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
            __m128i bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
            __m128i hit = _mm_or_si128(_mm_or_si128(quote, bslash),
                                       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
            unsigned m = (unsigned)_mm_movemask_epi8(hit);
            if (m) {
                unsigned k = (unsigned)__builtin_ctz(m);
                if ((unsigned)_mm_movemask_epi8(quote) >> k & 1) {
                    /* the closing quote, told by the masks: no reload of the byte */
                    t->p = lx->p + 1;
                    t->n = (size_t)(q + k - t->p);
                    t->escaped = escaped;
                    lx->p = q + k + 1;
                    return 0;
                }
                q += k;
                goto special;
            }
            q += 16;
        }
#endif
        /* Portable path, and the last bytes of the record: eight bytes with no quote,
         * backslash, control or non-ASCII byte. */
        while (end - q >= 8) {
            uint64_t w = load8(q);
            uint64_t special = has_zero(w ^ (ONES * '"')) | has_zero(w ^ (ONES * '\\')) |
                               ((w - ONES * 0x20) & ~w) | w;
            if (special & HIGHS)
                break;
            q += 8;
        }
        while (q < end && str_cls[(unsigned char)*q] == 0)
            q++;
        if (q >= end)
            return fail(lx, lx->p, ING_ESYNTAX, err, "unterminated string (expected '\"')");
#if defined(__SSE2__)
    special:;
#endif
        int cls = str_cls[(unsigned char)*q];
        switch (cls) {
        case 1:
            t->p = lx->p + 1;
            t->n = (size_t)(q - t->p);
            t->escaped = escaped;
            lx->p = q + 1;
            return 0;
        case 2: {
            escaped = true;
            if (end - q < 2)
                return fail(lx, q, ING_ESYNTAX, err, "unterminated escape sequence in string");
            switch (q[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                q += 2;
                break;
            case 'u': {
                if (end - q < 6)
                    return fail(lx, q, ING_ESYNTAX, err, "expected four hex digits after \\u");
                long cu = hex4(q + 2);
                if (cu < 0)
                    return fail(lx, q, ING_ESYNTAX, err, "expected four hex digits after \\u");
                if (cu >= 0xDC00 && cu <= 0xDFFF)
                    return fail(lx, q, ING_ESYNTAX, err,
                                "lone low surrogate escape (expected a high surrogate first)");
                if (cu >= 0xD800 && cu <= 0xDBFF) {
                    long lo = -1;
                    if (end - q >= 12 && q[6] == '\\' && q[7] == 'u')
                        lo = hex4(q + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(lx, q, ING_ESYNTAX, err,
                                    "high surrogate escape not followed by a \\u low surrogate");
                    q += 12;
                } else {
                    q += 6;
                }
                break;
            }
            default:
                return fail(lx, q, ING_ESYNTAX, err,
                            "invalid escape in string (expected one of \\\" \\\\ \\/ \\b \\f "
                            "\\n \\r \\t \\uXXXX)");
            }
            break;
        }
        case 3:
            return fail(lx, q, ING_ESYNTAX, err,
                        "control character in string (it must be escaped)");
        case 7:
            return fail(lx, q, ING_ESYNTAX, err, "invalid UTF-8 in string");
        default: {
            size_t n = utf8_seq((const unsigned char *)q, (const unsigned char *)end, cls);
            if (n == 0)
                return fail(lx, q, ING_ESYNTAX, err, "invalid UTF-8 in string");
            q += n;
            break;
        }
        }
    }
}

/* Scan a number starting at lx->p (a '-' or a digit). */
static int lex_number(struct jlex *lx, struct jtok *t, struct ing_err *err)
{
    const char *q = lx->p, *end = lx->end;
    bool integer = true;
    if (*q == '-')
        q++;
    if (q >= end || !is_digit((unsigned char)*q))
        return fail(lx, q, ING_ESYNTAX, err, "expected a digit in number");
    if (*q == '0') {
        q++;
        if (q < end && is_digit((unsigned char)*q))
            return fail(lx, q, ING_ESYNTAX, err, "leading zero in number");
    } else {
        while (q < end && is_digit((unsigned char)*q))
            q++;
    }
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !is_digit((unsigned char)*q))
            return fail(lx, q, ING_ESYNTAX, err, "expected a digit after the decimal point");
        while (q < end && is_digit((unsigned char)*q))
            q++;
        integer = false;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || !is_digit((unsigned char)*q))
            return fail(lx, q, ING_ESYNTAX, err, "expected a digit in the exponent");
        while (q < end && is_digit((unsigned char)*q))
            q++;
        integer = false;
    }
    if (q < end) {
        unsigned char c = (unsigned char)*q;
        if (c == '.' || c == '+' || c == '-' || c == '_' || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z'))
            return fail(lx, q, ING_ESYNTAX, err, "invalid character in number");
    }
    t->type = JT_NUMBER;
    t->p = lx->p;
    t->n = (size_t)(q - lx->p);
    t->integer = integer;
    lx->p = q;
    return 0;
}

const char *jtok_scan_string(const char *p, const char *end, bool *escaped)
{
    struct jlex lx; /* only p, end and start are read: no need to clear the stack */
    lx.p = lx.start = p;
    lx.end = end;
    struct jtok t;
    if (lex_string(&lx, &t, NULL) < 0)
        return NULL;
    *escaped = t.escaped;
    return lx.p;
}

const char *jtok_scan_number(const char *p, const char *end, bool *integer)
{
    struct jlex lx; /* only p, end and start are read: no need to clear the stack */
    lx.p = lx.start = p;
    lx.end = end;
    struct jtok t;
    if (lex_number(&lx, &t, NULL) < 0)
        return NULL;
    *integer = t.integer;
    return lx.p;
}

const char *jtok_scan_literal(const char *p, const char *end, const char *word, size_t len)
{
    if ((size_t)(end - p) < len || memcmp(p, word, len) != 0)
        return NULL;
    if ((size_t)(end - p) > len) {
        unsigned char c = (unsigned char)p[len];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_')
            return NULL;
    }
    return p + len;
}

static int lex_literal(struct jlex *lx, struct jtok *t, struct ing_err *err, const char *word,
                       size_t len, enum jtok_type type)
{
    const char *q = lx->p;
    if (!jtok_scan_literal(q, lx->end, word, len))
        return fail(lx, q, ING_ESYNTAX, err, "invalid literal (expected true, false or null)");
    t->type = type;
    t->p = q;
    t->n = len;
    lx->p = q + len;
    return 0;
}

static void tok_clear(struct jtok *t)
{
    t->p = NULL;
    t->n = 0;
    t->escaped = false;
    t->integer = false;
}

/* A value begins at lx->p (whitespace already skipped). `what` names the expectation for the
 * error message. */
static int lex_value(struct jlex *lx, struct jtok *t, struct ing_err *err, const char *what)
{
    if (lx->p >= lx->end)
        return fail(lx, lx->p, ING_ESYNTAX, err, what);
    int rc;
    switch (*lx->p) {
    case '{':
    case '[':
        if (lx->depth >= JLEX_MAX_DEPTH)
            return fail(lx, lx->p, ING_ETOOBIG, err,
                        "nesting deeper than 128 objects/arrays");
        t->p = lx->p;
        t->n = 1;
        if (*lx->p == '{') {
            lx->stack[lx->depth++] = KIND_OBJ;
            t->type = JT_OBJ_BEGIN;
            lx->state = ST_OBJ_FIRST;
        } else {
            lx->stack[lx->depth++] = KIND_ARR;
            t->type = JT_ARR_BEGIN;
            lx->state = ST_ARR_FIRST;
        }
        lx->p++;
        return 0;
    case '"':
        t->type = JT_STRING;
        rc = lex_string(lx, t, err);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        rc = lex_number(lx, t, err);
        break;
    case 't':
        rc = lex_literal(lx, t, err, "true", 4, JT_TRUE);
        break;
    case 'f':
        rc = lex_literal(lx, t, err, "false", 5, JT_FALSE);
        break;
    case 'n':
        rc = lex_literal(lx, t, err, "null", 4, JT_NULL);
        break;
    default:
        return fail(lx, lx->p, ING_ESYNTAX, err, what);
    }
    if (rc == 0)
        lx->state = ST_AFTER;
    return rc;
}

static int lex_key(struct jlex *lx, struct jtok *t, struct ing_err *err)
{
    t->type = JT_KEY;
    int rc = lex_string(lx, t, err);
    if (rc == 0)
        lx->state = ST_COLON;
    return rc;
}

static void lex_close(struct jlex *lx, struct jtok *t, enum jtok_type type)
{
    t->type = type;
    t->p = lx->p;
    t->n = 1;
    lx->p++;
    lx->depth--;
    lx->state = ST_AFTER;
}

void jlex_init(struct jlex *lx, const char *data, size_t len)
{
    if (!data) {
        data = ""; /* NULL + 0 is not valid pointer arithmetic */
        len = 0;
    }
    lx->p = lx->start = data;
    lx->end = data + len;
    lx->depth = 0;
    lx->state = ST_VALUE;
}

int jlex_next(struct jlex *lx, struct jtok *t, struct ing_err *err)
{
    tok_clear(t);
    const char *p = lx->p, *end = lx->end;
    p = jtok_skip_ws(p, end);
    lx->p = p;
    switch (lx->state) {
    case ST_VALUE:
        return lex_value(lx, t, err, "expected a value (object, array, string, number, true, "
                                     "false or null)");
    case ST_OBJ_FIRST:
        if (p < end && *p == '}') {
            lex_close(lx, t, JT_OBJ_END);
            return 0;
        }
        if (p < end && *p == '"')
            return lex_key(lx, t, err);
        return fail(lx, p, ING_ESYNTAX, err, "expected a string key or '}'");
    case ST_COLON:
        if (p >= end || *p != ':')
            return fail(lx, p, ING_ESYNTAX, err, "expected ':' after the object key");
        p = jtok_skip_ws(p + 1, end);
        lx->p = p;
        return lex_value(lx, t, err, "expected a value after ':'");
    case ST_ARR_FIRST:
        if (p < end && *p == ']') {
            lex_close(lx, t, JT_ARR_END);
            return 0;
        }
        return lex_value(lx, t, err, "expected a value or ']'");
    case ST_AFTER:
        if (lx->depth == 0) {
            if (p < end)
                return fail(lx, p, ING_ESYNTAX, err,
                            "expected the end of the record after the top-level value");
            lx->state = ST_DONE;
            t->type = JT_END;
            t->p = p;
            return 0;
        }
        if (lx->stack[lx->depth - 1] == KIND_OBJ) {
            if (p < end && *p == '}') {
                lex_close(lx, t, JT_OBJ_END);
                return 0;
            }
            if (p >= end || *p != ',')
                return fail(lx, p, ING_ESYNTAX, err, "expected ',' or '}' in object");
            p = jtok_skip_ws(p + 1, end);
            lx->p = p;
            if (p < end && *p == '"')
                return lex_key(lx, t, err);
            return fail(lx, p, ING_ESYNTAX, err, "expected a string key after ','");
        }
        if (p < end && *p == ']') {
            lex_close(lx, t, JT_ARR_END);
            return 0;
        }
        if (p >= end || *p != ',')
            return fail(lx, p, ING_ESYNTAX, err, "expected ',' or ']' in array");
        p = jtok_skip_ws(p + 1, end);
        lx->p = p;
        return lex_value(lx, t, err, "expected a value after ','");
    case ST_DONE:
        t->type = JT_END;
        t->p = p;
        return 0;
    default: {
        int code = -(lx->state >> 8);
        if (err)
            err->offset = (int64_t)(lx->p - lx->start);
        return ing_err_set(err, code ? code : ING_ESYNTAX,
                           "the record failed to tokenize earlier, at offset %td",
                           lx->p - lx->start);
    }
    }
}

int jlex_skip(struct jlex *lx, const struct jtok *first, struct ing_err *err)
{
    if (first->type != JT_OBJ_BEGIN && first->type != JT_ARR_BEGIN)
        return 0;
    int depth = lx->depth; /* depth inside the container `first` opened */
    struct jtok t;
    while (lx->depth >= depth) {
        int rc = jlex_next(lx, &t, err);
        if (rc < 0)
            return rc;
        if (t.type == JT_END) /* cannot happen with a consistent lexer; be safe */
            return fail(lx, lx->p, ING_ESYNTAX, err, "unexpected end of record");
    }
    return 0;
}

/* Append code point cp as UTF-8 at o; returns the new end. */
static uint8_t *put_utf8(uint8_t *o, unsigned long cp)
{
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | (cp >> 6));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18));
        *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

int jtok_unescape(const char *p, size_t n, struct buf *out, struct ing_err *err)
{
    /* Every escape is at least as long as what it decodes to, so n bytes always suffice and
     * the loop below writes without further checks. */
    int rc = buf_reserve(out, n);
    if (rc)
        return ing_err_set(err, rc, "no room for a %zu-byte string", n);
    if (n == 0)
        return 0;
    const char *s = p, *end = p + n;
    uint8_t *o = out->data + out->len;
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t run = (size_t)((bs ? bs : end) - s);
        memcpy(o, s, run);
        o += run;
        s += run;
        if (!bs)
            break;
        if (end - s < 2)
            goto bad_escape;
        char c = s[1];
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            long cu = end - s >= 6 ? hex4(s + 2) : -1;
            if (cu < 0)
                goto bad_escape;
            unsigned long cp = (unsigned long)cu;
            if (cu >= 0xDC00 && cu <= 0xDFFF)
                goto bad_surrogate;
            if (cu >= 0xD800 && cu <= 0xDBFF) {
                long lo = -1;
                if (end - s >= 12 && s[6] == '\\' && s[7] == 'u')
                    lo = hex4(s + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    goto bad_surrogate;
                cp = 0x10000 + (((unsigned long)cu - 0xD800) << 10) +
                     ((unsigned long)lo - 0xDC00);
                s += 6;
            }
            o = put_utf8(o, cp);
            s += 4;
            break;
        }
        default:
            goto bad_escape;
        }
        s += 2;
    }
    out->len = (size_t)(o - out->data);
    return 0;

bad_escape:
    if (err)
        err->offset = (int64_t)(s - p);
    return ing_err_set(err, ING_ESYNTAX, "invalid escape sequence in string at offset %td", s - p);
bad_surrogate:
    if (err)
        err->offset = (int64_t)(s - p);
    return ing_err_set(err, ING_ESYNTAX, "lone surrogate escape in string at offset %td", s - p);
}

/* A JSON number split into parts: digits of the integer part [ip, ip+ilen), of the fraction
 * [fp, fp+flen), decimal exponent (clamped far beyond any double or int64 range). */
struct numparts {
    const char *ip, *fp;
    size_t ilen, flen;
    long exp;
    bool neg;
};

/* Exact RFC 8259 number syntax over exactly n bytes; 0 or -1. */
static int num_split(const char *p, size_t n, struct numparts *np)
{
    const char *q = p, *end = p + n;
    memset(np, 0, sizeof(*np));
    if (n == 0)
        return -1;
    if (*q == '-') {
        np->neg = true;
        q++;
    }
    np->ip = q;
    if (q >= end || !is_digit((unsigned char)*q))
        return -1;
    if (*q == '0') {
        q++;
    } else {
        while (q < end && is_digit((unsigned char)*q))
            q++;
    }
    np->ilen = (size_t)(q - np->ip);
    np->fp = q;
    if (q < end && *q == '.') {
        q++;
        np->fp = q;
        while (q < end && is_digit((unsigned char)*q))
            q++;
        np->flen = (size_t)(q - np->fp);
        if (np->flen == 0)
            return -1;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        bool eneg = false;
        if (q < end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= end || !is_digit((unsigned char)*q))
            return -1;
        long e = 0;
        while (q < end && is_digit((unsigned char)*q)) {
            if (e < 100000000L) /* clamp: far outside every representable range already */
                e = e * 10 + (*q - '0');
            q++;
        }
        np->exp = eneg ? -e : e;
    }
    return q == end ? 0 : -1;
}

/* Significant digits of a number: the concatenation of integer and fraction digits with leading
 * and trailing zeros removed; value = digits * 10^scale. */
struct sigdigits {
    const struct numparts *np;
    size_t first, last; /* index range [first, last) in the concatenation */
    long scale;
};

static char digit_at(const struct numparts *np, size_t i)
{
    return i < np->ilen ? np->ip[i] : np->fp[i - np->ilen];
}

static void sig_digits(const struct numparts *np, struct sigdigits *sd)
{
    size_t total = np->ilen + np->flen;
    size_t first = 0, last = total;
    while (first < total && digit_at(np, first) == '0')
        first++;
    while (last > first && digit_at(np, last - 1) == '0')
        last--;
    sd->np = np;
    sd->first = first;
    sd->last = last;
    /* trailing zeros dropped move the decimal point; total - last of them */
    sd->scale = np->exp - (long)np->flen + (long)(total - last);
}

/* The common number, a plain integer of 1 to max_digits digits ("0", "-12"; no leading zero,
 * fraction or exponent): 0 with its sign and magnitude, or -1 for anything else (which the
 * general path then reads). */
static inline int plain_int(const char *p, size_t n, size_t max_digits, bool *neg, uint64_t *mag)
{
    if (!p || n == 0)
        return -1;
    size_t i = p[0] == '-';
    size_t digits = n - i;
    if (digits == 0 || digits > max_digits || (p[i] == '0' && digits > 1))
        return -1;
    uint64_t m = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)p[i] - '0');
        if (d > 9)
            return -1;
        m = m * 10 + d;
    }
    *neg = p[0] == '-';
    *mag = m;
    return 0;
}

int jtok_i64(const char *p, size_t n, int64_t *out)
{
    struct numparts np;
    struct sigdigits sd;
    bool neg;
    uint64_t mag;
    if (plain_int(p, n, 18, &neg, &mag) == 0) { /* < 10^18: fits either sign */
        *out = neg ? -(int64_t)mag : (int64_t)mag;
        return 0;
    }
    if (!p || num_split(p, n, &np) < 0)
        return ING_ETYPE;
    sig_digits(&np, &sd);
    size_t ndig = sd.last - sd.first;
    if (ndig == 0) {
        *out = 0;
        return 0;
    }
    if (sd.scale < 0)
        return ING_ETYPE; /* a non-zero fraction remains */
    if ((long)ndig + sd.scale > 19)
        return ING_ETYPE; /* at least 10^19 > INT64_MAX */
    uint64_t v = 0;
    for (size_t i = sd.first; i < sd.last; i++)
        v = v * 10 + (uint64_t)(digit_at(&np, i) - '0'); /* <= 19 digits: fits in uint64 */
    for (long i = 0; i < sd.scale; i++) {
        if (v > UINT64_MAX / 10)
            return ING_ETYPE;
        v *= 10;
    }
    uint64_t limit = np.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (v > limit)
        return ING_ETYPE;
    if (np.neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

int jtok_f64(const char *p, size_t n, double *out)
{
    static const double pow10[] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    };
    struct numparts np;
    struct sigdigits sd;
    bool neg;
    uint64_t mag;
    if (plain_int(p, n, 15, &neg, &mag) == 0) { /* < 10^15 < 2^53: exact; "-0" is -0.0 */
        double v = (double)mag;
        *out = neg ? -v : v;
        return 0;
    }
    if (!p || num_split(p, n, &np) < 0)
        return ING_ETYPE;
    sig_digits(&np, &sd);
    size_t ndig = sd.last - sd.first;
    if (ndig == 0) {
        *out = np.neg ? -0.0 : 0.0;
        return 0;
    }
    /* Clinger's fast path: at most 15 digits are exact in a double, and so is 10^k for
     * k <= 22, so one multiplication or division is correctly rounded. */
    if (ndig <= 15 && sd.scale >= -22 && sd.scale <= 22) {
        uint64_t m = 0;
        for (size_t i = sd.first; i < sd.last; i++)
            m = m * 10 + (uint64_t)(digit_at(&np, i) - '0');
        double v = (double)m;
        v = sd.scale < 0 ? v / pow10[-sd.scale] : v * pow10[sd.scale];
        *out = np.neg ? -v : v;
        return 0;
    }
    /* Slow path: strtod on a NUL-terminated copy (the span is not terminated). The process
     * stays in the "C" locale, so '.' is the decimal point strtod expects. */
    char small[64];
    char *copy = n < sizeof(small) ? small : malloc(n + 1);
    if (!copy)
        return ING_ENOMEM;
    memcpy(copy, p, n);
    copy[n] = 0;
    errno = 0;
    char *endp = NULL;
    double v = strtod(copy, &endp);
    int rc = 0;
    if (endp != copy + n)
        rc = ING_ETYPE;
    else if (errno == ERANGE && (v > 1.0 || v < -1.0))
        rc = ING_ETYPE; /* overflow to infinity; underflow towards zero is accepted */
    else
        *out = v;
    if (copy != small)
        free(copy);
    return rc;
}
