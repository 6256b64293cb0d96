/*
 * jsplit.c - streaming record splitter for JSON input files; see jsplit.h.
 *
 * The splitter does not parse records; it follows just enough structure to find where each one
 * ends: string state (so brackets and quotes inside strings do not count), escapes, and the
 * nesting of brackets (a bit per level, so a ']' closing a '{' is noticed). The full grammar
 * check is jtok's job.
 *
 * Input is seen through a window [base, base+len). For memory input the window is the caller's
 * buffer, extended chunk_bytes at a time (no copy; chunking still drives the same resumable
 * code, which is what the tests with tiny chunks exercise). For fd input the window is our own
 * buffer: before each read the bytes already consumed are dropped by moving the unfinished
 * record to the front. All scanning is resumable: when the window runs out mid-record, the
 * scanner state is saved and the scan continues after the refill where it stopped, so a record
 * is never rescanned.
 *
 * Speed: on x86-64 (SSE2 is part of the base ISA) records are scanned 16 bytes at a time: masks
 * of quotes, brackets and newlines, and a prefix XOR of the quote mask for the string state, so
 * only brackets outside strings are visited one by one. A block holding a backslash goes through
 * the byte loop, which is also the whole scanner elsewhere.
 *
 * With lazy_corrupt, a JSON line is found with memchr alone (a raw newline always ends a line,
 * whatever the brackets and strings say, so the line is the same); jsplit_line_corrupt runs the
 * full scan over one line when the caller needs the flag.
 */
#include "json/jsplit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/bigmem.h"
#include "util/mem.h"

#define DEFAULT_CHUNK ((size_t)4 << 20)
#define DEFAULT_MAX_RECORD ((size_t)64 << 20)
#define KIND_BITS 4096 /* nesting levels whose bracket kind is checked; deeper ones just count */

enum phase {
    PH_START,   /* byte-order mark and mode detection */
    PH_BETWEEN, /* between records: whitespace, and in array mode ',' */
    PH_RECORD,  /* inside a record */
    PH_TAIL,    /* after the array's closing ']': only whitespace may follow */
    PH_DONE,
    PH_FAILED,
};

/* Array mode: what the text between records may hold. */
enum arr_sub { AR_FIRST, AR_NEED, AR_AFTER };

/* What kind of record is being scanned. */
enum rec_kind {
    K_LINE,  /* JSON Lines: the record is the line */
    K_VALUE, /* a container or a string: ends where nesting and string state return to zero */
    K_BARE,  /* a number, literal or junk: ends at the next delimiter */
};

enum step { STEP_MORE = 0, STEP_AGAIN = 1, STEP_RECORD = 2 };

struct jsplit {
    int fd;                   /* -1 for memory and reader input */
    jsplit_read_fn *read_fn;  /* reader input, else NULL */
    void *read_ctx;
    const char *mem;          /* memory input */
    size_t mem_len;
    char *buf;                /* fd and reader input: window storage */
    size_t buf_cap;
    bool buf_big;             /* buf is the first window, from bigmem (else from malloc) */
    const char *base;         /* window start */
    size_t len;               /* bytes valid in the window */
    size_t pos;               /* first byte still needed (bytes before it are consumed) */
    size_t scan;              /* scan cursor */
    size_t rec_start;
    int64_t base_off;         /* file offset of base[0] */
    bool eof;                 /* nothing beyond base+len */
    bool bom_done;
    enum jsplit_mode mode;    /* in use; JSPLIT_AUTO until detected */
    bool multiline;
    bool lazy;                /* opts.lazy_corrupt */
    size_t chunk;
    size_t max_record;
    enum phase phase;
    enum arr_sub sub;
    enum rec_kind kind;
    bool in_str, esc, bad;    /* record scan state */
    size_t depth;
    int64_t row;              /* records returned so far */
    struct ing_err fail_err;  /* sticky error (PH_FAILED) */
    uint64_t kinds[KIND_BITS / 64]; /* bit set: '[' at that depth, clear: '{' */
};

/* Bytes outside strings: 1 '"', 2 '{' or '[', 3 '}' or ']', 4 '\n' (JSON Lines only). */
enum { C_PLAIN = 0, C_QUOTE, C_OPEN, C_CLOSE, C_NL };
static const uint8_t cls_multi[256] = {
    ['"'] = C_QUOTE, ['{'] = C_OPEN, ['['] = C_OPEN, ['}'] = C_CLOSE, [']'] = C_CLOSE,
};
static const uint8_t cls_lines[256] = {
    ['"'] = C_QUOTE, ['{'] = C_OPEN, ['['] = C_OPEN, ['}'] = C_CLOSE, [']'] = C_CLOSE,
    ['\n'] = C_NL,
};
/* Bytes that end a bare scalar (number, literal or junk) in array and concatenated modes. */
static const uint8_t bare_end[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [','] = 1, [':'] = 1,
    ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1, ['"'] = 1,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t has_zero(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

static inline bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* First byte in [p, e) that is '"' or '\\' (or '\n' when `lines`), or e. */
static inline const uint8_t *skip_str(const uint8_t *p, const uint8_t *e, bool lines)
{
    while (e - p >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        uint64_t hit = has_zero(w ^ (ONES * '"')) | has_zero(w ^ (ONES * '\\'));
        if (lines)
            hit |= has_zero(w ^ (ONES * '\n'));
        if (hit)
            break;
        p += 8;
    }
    while (p < e && *p != '"' && *p != '\\' && !(lines && *p == '\n'))
        p++;
    return p;
}

static struct jsplit *split_alloc(const struct jsplit_opts *opts)
{
    struct jsplit *s = xcalloc(1, sizeof(*s));
    s->fd = -1;
    s->chunk = opts && opts->chunk_bytes ? opts->chunk_bytes : DEFAULT_CHUNK;
    s->max_record = opts && opts->max_record ? opts->max_record : DEFAULT_MAX_RECORD;
    s->multiline = opts && opts->multiline;
    s->lazy = opts && opts->lazy_corrupt;
    enum jsplit_mode m = opts ? opts->mode : JSPLIT_AUTO;
    s->mode = (m == JSPLIT_LINES || m == JSPLIT_ARRAY || m == JSPLIT_CONCAT) ? m : JSPLIT_AUTO;
    s->phase = PH_START;
    ing_err_clear(&s->fail_err);
    return s;
}

struct jsplit *jsplit_new(int fd, const struct jsplit_opts *opts)
{
    struct jsplit *s = split_alloc(opts);
    s->fd = fd;
    s->base = "";
    return s;
}

struct jsplit *jsplit_new_reader(jsplit_read_fn *fn, void *ctx, const struct jsplit_opts *opts)
{
    struct jsplit *s = split_alloc(opts);
    s->read_fn = fn;
    s->read_ctx = ctx;
    s->base = "";
    return s;
}

struct jsplit *jsplit_new_mem(const void *data, size_t len, const struct jsplit_opts *opts)
{
    struct jsplit *s = split_alloc(opts);
    s->mem = data ? data : "";
    s->mem_len = data ? len : 0;
    s->base = s->mem;
    s->len = s->mem_len < s->chunk ? s->mem_len : s->chunk;
    s->eof = s->len == s->mem_len;
    return s;
}

void jsplit_free(struct jsplit *s)
{
    if (!s)
        return;
    if (s->buf_big)
        bigmem_free(s->buf);
    else
        free(s->buf);
    free(s);
}

bool jsplit_line_corrupt(const char *data, size_t len)
{
    /* The same scan a splitter without lazy_corrupt runs, over this one line. */
    struct jsplit_opts o = {.mode = JSPLIT_LINES, .max_record = len ? len : 1};
    struct jsplit *s = jsplit_new_mem(data, len, &o);
    struct jsplit_record rec;
    bool corrupt = jsplit_next(s, &rec, NULL) == 1 && rec.corrupt;
    jsplit_free(s);
    return corrupt;
}

enum jsplit_mode jsplit_mode(const struct jsplit *s)
{
    return s->mode;
}

int64_t jsplit_bytes_read(const struct jsplit *s)
{
    return s->base_off + (int64_t)s->pos;
}

/* Record an error at window index `at` for the record being read; the splitter stops. */
static int split_fail(struct jsplit *s, struct ing_err *err, int code, size_t at, const char *msg)
{
    int64_t off = s->base_off + (int64_t)at;
    ing_err_clear(&s->fail_err);
    s->fail_err.row = s->row + 1;
    s->fail_err.offset = off;
    ing_err_set(&s->fail_err, code, "%s (record %lld, byte offset %lld)", msg,
                (long long)(s->row + 1), (long long)off);
    s->phase = PH_FAILED;
    if (err) {
        err->row = s->fail_err.row;
        err->offset = off;
        ing_err_set(err, code, "%s", s->fail_err.msg);
    }
    return code;
}

/* Make more input visible; called only when !eof. */
static int refill(struct jsplit *s, struct ing_err *err)
{
    if (s->phase == PH_RECORD && s->len - s->rec_start > s->max_record)
        return split_fail(s, err, ING_ETOOBIG, s->rec_start, "record larger than the limit");
    if (s->fd < 0 && !s->read_fn) {
        size_t room = s->mem_len - s->len;
        s->len += room < s->chunk ? room : s->chunk;
        s->eof = s->len == s->mem_len;
        return 0;
    }
    if (s->pos > 0) { /* drop consumed bytes; keep the unfinished record */
        size_t keep = s->len - s->pos;
        memmove(s->buf, s->buf + s->pos, keep);
        s->base_off += (int64_t)s->pos;
        s->len = keep;
        s->scan -= s->pos;
        if (s->phase == PH_RECORD)
            s->rec_start -= s->pos;
        s->pos = 0;
    }
    if (!s->buf) {
        /* The first window holds two chunks, so a record cut by the end of a chunk is moved to
         * the front and the next chunk read after it without growing. From bigmem (huge pages
         * past 256 KiB): a splitter on a helper thread otherwise faulted its window in 4 KiB at
         * a time from that thread's malloc arena. Its size is ours, not the input's; only the
         * growth for long records below depends on the input, and that reports ING_ENOMEM. */
        s->buf_cap = s->chunk <= SIZE_MAX / 2 ? 2 * s->chunk : s->chunk;
        s->buf = bigmem_alloc(s->buf_cap);
        s->buf_big = true;
        s->base = s->buf;
    }
    if (s->buf_cap - s->len < s->chunk) {
        size_t want = s->len + s->chunk;
        if (want < s->buf_cap * 2)
            want = s->buf_cap * 2;
        char *nb = s->buf_big ? malloc(want) : realloc(s->buf, want);
        if (!nb)
            return split_fail(s, err, ING_ENOMEM, s->len, "out of memory for the read buffer");
        if (s->buf_big) {
            memcpy(nb, s->buf, s->len);
            bigmem_free(s->buf);
            s->buf_big = false;
        }
        s->buf = nb;
        s->buf_cap = want;
        s->base = nb;
    }
    if (s->read_fn) {
        struct ing_err rerr;
        ing_err_clear(&rerr);
        int64_t n = s->read_fn(s->read_ctx, s->buf + s->len, s->chunk, &rerr);
        if (n > 0) {
            s->len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            s->eof = true;
            return 0;
        }
        int code = (int)n;
        split_fail(s, NULL, code, s->len, "read failed");
        s->fail_err.sys_errno = rerr.sys_errno;
        snprintf(s->fail_err.msg, sizeof(s->fail_err.msg), "%s", rerr.msg);
        if (err) {
            err->row = s->fail_err.row;
            err->offset = s->fail_err.offset;
            err->sys_errno = rerr.sys_errno;
            ing_err_set(err, code, "%s", rerr.msg);
        }
        return code;
    }
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, s->chunk);
        if (n > 0) {
            s->len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            s->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        int e = errno;
        split_fail(s, NULL, ING_EIO, s->len, "read failed");
        s->fail_err.sys_errno = e;
        if (err) {
            err->row = s->fail_err.row;
            err->offset = s->fail_err.offset;
            ing_err_errno(err, e, "read failed at byte offset %lld",
                          (long long)s->fail_err.offset);
        }
        return ING_EIO;
    }
}

static void start_record(struct jsplit *s, size_t at, enum rec_kind kind)
{
    s->rec_start = at;
    s->scan = at;
    s->kind = kind;
    s->in_str = false;
    s->esc = false;
    s->bad = false;
    s->depth = 0;
    s->phase = PH_RECORD;
    if (kind == K_VALUE && s->base[at] == '"') { /* a top-level string: start inside it */
        s->in_str = true;
        s->scan = at + 1;
    }
}

/* Byte-order mark, leading whitespace, and the choice of mode. */
static int step_start(struct jsplit *s, struct ing_err *err)
{
    const uint8_t *b = (const uint8_t *)s->base;
    if (!s->bom_done) {
        if (s->len < 3 && !s->eof)
            return STEP_MORE;
        if (s->len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
            s->scan = s->pos = 3;
        s->bom_done = true;
    }
    size_t i = s->scan;
    while (i < s->len && is_ws(b[i]))
        i++;
    s->scan = s->pos = i;
    if (i == s->len) {
        if (!s->eof)
            return STEP_MORE;
        if (s->mode == JSPLIT_ARRAY)
            return split_fail(s, err, ING_ESYNTAX, i, "expected '[' to open the JSON array, "
                                                      "found end of input");
        if (s->mode == JSPLIT_AUTO)
            s->mode = s->multiline ? JSPLIT_CONCAT : JSPLIT_LINES;
        s->phase = PH_DONE;
        return STEP_AGAIN;
    }
    if (s->mode == JSPLIT_AUTO)
        s->mode = b[i] == '[' ? JSPLIT_ARRAY : s->multiline ? JSPLIT_CONCAT : JSPLIT_LINES;
    if (s->mode == JSPLIT_ARRAY) {
        if (b[i] != '[')
            return split_fail(s, err, ING_ESYNTAX, i, "expected '[' to open the JSON array");
        s->scan = s->pos = i + 1;
        s->sub = AR_FIRST;
    }
    s->phase = PH_BETWEEN;
    return STEP_AGAIN;
}

static int step_between(struct jsplit *s, struct ing_err *err)
{
    const uint8_t *b = (const uint8_t *)s->base;
    size_t i = s->scan;
    for (;;) {
        while (i < s->len && is_ws(b[i]))
            i++;
        s->scan = s->pos = i;
        if (i == s->len) {
            if (!s->eof)
                return STEP_MORE;
            if (s->mode == JSPLIT_ARRAY)
                return split_fail(s, err, ING_ESYNTAX, i,
                                  s->sub == AR_AFTER
                                      ? "expected ',' or ']', found end of input"
                                      : "expected a record or ']', found end of input");
            s->phase = PH_DONE;
            return STEP_AGAIN;
        }
        uint8_t c = b[i];
        if (s->mode == JSPLIT_LINES) {
            start_record(s, i, K_LINE);
            return STEP_AGAIN;
        }
        if (s->mode == JSPLIT_ARRAY) {
            if (s->sub == AR_AFTER) {
                if (c == ',') {
                    s->sub = AR_NEED;
                    i++;
                    continue;
                }
                if (c == ']') {
                    s->scan = s->pos = i + 1;
                    s->phase = PH_TAIL;
                    return STEP_AGAIN;
                }
                return split_fail(s, err, ING_ESYNTAX, i,
                                  "expected ',' or ']' after an array element");
            }
            if (c == ']') {
                if (s->sub == AR_NEED)
                    return split_fail(s, err, ING_ESYNTAX, i,
                                      "expected a record after ',', found ']' (trailing comma)");
                s->scan = s->pos = i + 1;
                s->phase = PH_TAIL;
                return STEP_AGAIN;
            }
        }
        if (c == ',' || c == ':' || c == ']' || c == '}')
            return split_fail(s, err, ING_ESYNTAX, i, c == ','
                                                          ? "expected a record, found ','"
                                                          : "expected a record, found a "
                                                            "closing bracket or ':'");
        start_record(s, i, (c == '{' || c == '[' || c == '"') ? K_VALUE : K_BARE);
        return STEP_AGAIN;
    }
}

static int step_tail(struct jsplit *s, struct ing_err *err)
{
    const uint8_t *b = (const uint8_t *)s->base;
    size_t i = s->scan;
    while (i < s->len && is_ws(b[i]))
        i++;
    s->scan = s->pos = i;
    if (i < s->len)
        return split_fail(s, err, ING_ESYNTAX, i,
                          "unexpected data after the closing ']' of the JSON array");
    if (!s->eof)
        return STEP_MORE;
    s->phase = PH_DONE;
    return STEP_AGAIN;
}

/* The record [rec_start, end) is complete; `next` is where splitting resumes. */
static int emit(struct jsplit *s, struct jsplit_record *rec, struct ing_err *err, size_t end,
                size_t next, bool corrupt)
{
    if (end - s->rec_start > s->max_record)
        return split_fail(s, err, ING_ETOOBIG, s->rec_start, "record larger than the limit");
    rec->data = s->base + s->rec_start;
    rec->len = end - s->rec_start;
    rec->row = ++s->row;
    rec->offset = s->base_off + (int64_t)s->rec_start;
    rec->corrupt = corrupt;
    rec->unchecked = s->lazy && s->kind == K_LINE;
    s->scan = s->pos = next;
    s->phase = PH_BETWEEN;
    if (s->mode == JSPLIT_ARRAY)
        s->sub = AR_AFTER;
    return STEP_RECORD;
}

/* JSON Lines: the line ending at window index nl (the '\n' or the end of input) is complete. */
static int emit_line(struct jsplit *s, struct jsplit_record *rec, struct ing_err *err, size_t nl)
{
    if (nl - s->rec_start > s->max_record) /* the raw line, as the refill check measures it */
        return split_fail(s, err, ING_ETOOBIG, s->rec_start, "record larger than the limit");
    size_t end = nl;
    while (end > s->rec_start && is_ws((unsigned char)s->base[end - 1]))
        end--; /* '\r' of CRLF and trailing blanks */
    bool corrupt = s->bad || s->in_str || s->depth != 0;
    return emit(s, rec, err, end, nl < s->len ? nl + 1 : nl, corrupt);
}

/* Bracket kinds: remember what the opener at `depth` was. */
static inline void kind_push(struct jsplit *s, size_t depth, uint8_t opener)
{
    if (depth < KIND_BITS) {
        uint64_t bit = (uint64_t)1 << (depth % 64);
        if (opener == '[')
            s->kinds[depth / 64] |= bit;
        else
            s->kinds[depth / 64] &= ~bit;
    }
}

/* True when `closer` does not close what is open at `depth` (also when nothing is open). */
static inline bool kind_mismatch(const struct jsplit *s, size_t depth, uint8_t closer)
{
    if (depth == 0)
        return true;
    if (depth > KIND_BITS)
        return false; /* too deep to have been recorded; jtok rejects such records anyway */
    size_t d = depth - 1;
    bool was_arr = (s->kinds[d / 64] >> (d % 64)) & 1;
    return was_arr != (closer == ']');
}

/* A closer that does not match: JSON Lines flags the line and moves on; elsewhere the structure
 * is lost and the split stops. */
static int on_mismatch(struct jsplit *s, struct ing_err *err, bool lines, size_t at,
                       size_t depth)
{
    if (!lines)
        return split_fail(s, err, ING_ESYNTAX, at,
                          s->base[at] == ']' ? "unexpected ']' (brackets do not match)"
                                             : "unexpected '}' (brackets do not match)");
    s->bad = true;
    s->in_str = false;
    s->depth = depth;
    s->scan = at;
    return STEP_AGAIN; /* the corrupt-line path finds the line end */
}

#if defined(__SSE2__)
/* Bit i set when byte i is inside a string, given the quote bits (inclusive prefix XOR: an
 * opening quote counts as inside, a closing one as outside). */
static inline unsigned prefix_xor16(unsigned q)
{
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q ^= q << 8;
    return q & 0xFFFF;
}
#endif

static int step_record(struct jsplit *s, struct jsplit_record *rec, struct ing_err *err)
{
    const uint8_t *b = (const uint8_t *)s->base;
    const uint8_t *p = b + s->scan, *e = b + s->len;
    bool lines = s->kind == K_LINE;
    const uint8_t *cls = lines ? cls_lines : cls_multi;

    if (s->kind == K_BARE) {
        while (p < e && !bare_end[*p])
            p++;
        s->scan = (size_t)(p - b);
        if (p == e && !s->eof)
            return STEP_MORE;
        return emit(s, rec, err, s->scan, s->scan, false);
    }
    if (s->bad || (lines && s->lazy)) { /* only the line's end matters (now) */
        const uint8_t *nl = p < e ? memchr(p, '\n', (size_t)(e - p)) : NULL;
        if (nl)
            return emit_line(s, rec, err, (size_t)(nl - b));
        s->scan = s->len;
        if (!s->eof)
            return STEP_MORE;
        return emit_line(s, rec, err, s->len);
    }

    bool in_str = s->in_str;
    size_t depth = s->depth;
    if (s->esc) { /* a backslash ended the previous window */
        if (p == e)
            goto more;
        s->esc = false;
        if (!(lines && *p == '\n'))
            p++;
    }
    for (;;) {
        const uint8_t *lim = e;
#if defined(__SSE2__)
        /* 16 bytes at a time while a block holds no backslash. A top-level string record is
         * left to the byte loop: its end is a quote, not a bracket. */
        while (e - p >= 16 && (lines || depth > 0 || !in_str)) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            /* '[' | 0x20 == '{' and ']' | 0x20 == '}' */
            __m128i v20 = _mm_or_si128(v, _mm_set1_epi8(0x20));
            unsigned bs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
            if (bs)
                break;
            unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
            unsigned op = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, _mm_set1_epi8('{')));
            unsigned cl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, _mm_set1_epi8('}')));
            unsigned nl = lines ? (unsigned)_mm_movemask_epi8(
                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')))
                                : 0;
            unsigned inside = prefix_xor16(q) ^ (in_str ? 0xFFFFu : 0);
            unsigned upto = nl ? (nl & (0u - nl)) - 1 : 0xFFFFu; /* bytes before a newline */
            unsigned st = (op | cl) & ~inside & upto;
            while (st) {
                unsigned i = (unsigned)__builtin_ctz(st);
                st &= st - 1;
                if ((op >> i) & 1) {
                    kind_push(s, depth, p[i]);
                    depth++;
                    continue;
                }
                if (kind_mismatch(s, depth, p[i]))
                    return on_mismatch(s, err, lines, (size_t)(p + i - b), depth);
                depth--;
                if (depth == 0 && !lines) {
                    p += i + 1;
                    goto done;
                }
            }
            if (nl) {
                unsigned k = (unsigned)__builtin_ctz(nl);
                s->in_str = (inside >> k) & 1;
                s->depth = depth;
                return emit_line(s, rec, err, (size_t)(p + k - b));
            }
            in_str = (inside >> 15) & 1;
            p += 16;
        }
        /* The byte loop takes one block (the one with the backslash), then blocks resume. */
        if (e - p > 16)
            lim = p + 16;
#endif
        while (p < lim) {
            if (in_str) {
                p = skip_str(p, lim, lines);
                if (p == lim)
                    break;
                if (*p == '"') {
                    in_str = false;
                    p++;
                    if (depth == 0 && !lines)
                        goto done;
                    continue;
                }
                if (*p == '\\') {
                    if (e - p < 2) {
                        s->esc = true;
                        p = e;
                        goto more;
                    }
                    /* A raw newline ends a JSON line even after a backslash. */
                    p += (lines && p[1] == '\n') ? 1 : 2;
                    continue;
                }
                /* '\n' in JSON Lines inside a string: the line ends with the string open. */
                s->in_str = true;
                s->depth = depth;
                return emit_line(s, rec, err, (size_t)(p - b));
            }
            while (p < lim && !cls[*p])
                p++;
            if (p == lim)
                break;
            switch (cls[*p]) {
            case C_QUOTE:
                in_str = true;
                p++;
                break;
            case C_OPEN:
                kind_push(s, depth, *p);
                depth++;
                p++;
                break;
            case C_CLOSE:
                if (kind_mismatch(s, depth, *p))
                    return on_mismatch(s, err, lines, (size_t)(p - b), depth);
                depth--;
                p++;
                if (depth == 0 && !lines)
                    goto done;
                break;
            default: /* C_NL, JSON Lines only */
                s->in_str = false;
                s->depth = depth;
                return emit_line(s, rec, err, (size_t)(p - b));
            }
        }
        if (p >= e)
            goto more;
    }

done:
    s->in_str = false;
    s->depth = 0;
    return emit(s, rec, err, (size_t)(p - b), (size_t)(p - b), false);

more:
    s->in_str = in_str;
    s->depth = depth;
    s->scan = (size_t)(p - b);
    if (!s->eof)
        return STEP_MORE;
    if (lines)
        return emit_line(s, rec, err, s->len);
    return split_fail(s, err, ING_ESYNTAX, s->len,
                      in_str ? "unexpected end of input inside a string (expected '\"')"
                             : "unexpected end of input inside a record (brackets not closed)");
}

int jsplit_next(struct jsplit *s, struct jsplit_record *rec, struct ing_err *err)
{
    for (;;) {
        int rc;
        switch (s->phase) {
        case PH_START:
            rc = step_start(s, err);
            break;
        case PH_BETWEEN:
            rc = step_between(s, err);
            break;
        case PH_RECORD:
            rc = step_record(s, rec, err);
            break;
        case PH_TAIL:
            rc = step_tail(s, err);
            break;
        case PH_DONE:
            return 0;
        default:
            if (err) {
                err->row = s->fail_err.row;
                err->offset = s->fail_err.offset;
                err->sys_errno = s->fail_err.sys_errno;
                ing_err_set(err, s->fail_err.code, "%s", s->fail_err.msg);
            }
            return s->fail_err.code;
        }
        if (rc < 0)
            return rc;
        if (rc == STEP_RECORD)
            return 1;
        if (rc == STEP_MORE) {
            rc = refill(s, err);
            if (rc < 0)
                return rc;
        }
    }
}
