/*
 * jtok.h - a pull tokenizer for one JSON record held in memory.
 *
 * The hot path of ingestion walks each record against the compiled schema token by token, so no
 * tree is built per record. The tokenizer checks the full JSON grammar (RFC 8259): structure,
 * string escapes, UTF-8 validity of strings, number syntax, and a nesting limit. Strings are
 * returned as raw spans between the quotes plus a flag telling whether they contain escapes;
 * jtok_unescape decodes them when needed.
 *
 * Threads: a struct jlex is plain state owned by one thread.
 */
#ifndef ING_JSON_JTOK_H
#define ING_JSON_JTOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define JLEX_MAX_DEPTH 128

enum jtok_type {
    JT_END = 0,     /* the record is finished (only whitespace followed) */
    JT_OBJ_BEGIN, JT_OBJ_END, JT_ARR_BEGIN, JT_ARR_END,
    JT_KEY,         /* object member name (span = raw chars between quotes) */
    JT_STRING,      /* string value (span as for JT_KEY) */
    JT_NUMBER,      /* span = the number's text */
    JT_TRUE, JT_FALSE, JT_NULL,
};

struct jtok {
    enum jtok_type type;
    const char *p;   /* span start (inside the record buffer) */
    size_t n;        /* span length */
    bool escaped;    /* JT_KEY/JT_STRING: span contains backslash escapes */
    bool integer;    /* JT_NUMBER: no fraction or exponent */
};

struct jlex {
    const char *p, *end, *start;
    int depth;
    uint8_t stack[JLEX_MAX_DEPTH]; /* container kinds */
    int state;                     /* grammar state, internal */
};

void jlex_init(struct jlex *lx, const char *data, size_t len);
/* Next token: 0 with *t filled, or ING_ESYNTAX / ING_ETOOBIG (depth) with err->offset set to the
 * offset in the record and a message saying what was expected. After JT_END, keeps returning
 * JT_END. Trailing non-whitespace after the top-level value is ING_ESYNTAX. */
int jlex_next(struct jlex *lx, struct jtok *t, struct ing_err *err);
/* Skip the rest of the value that `first` (just returned) begins; for scalars this is a no-op. */
int jlex_skip(struct jlex *lx, const struct jtok *first, struct ing_err *err);

/*
 * Pieces for a walk that parses as it goes (the shredder's fast path) instead of pulling tokens:
 * the same checks as jlex_next, without the grammar state. Both return one past the scanned
 * text, or NULL when it is not valid (the caller then runs jlex over the record, which says why).
 * jtok_scan_string: the string whose opening quote is at p (the span is between p + 1 and the
 * return value - 1). jtok_scan_number: the number starting at p, which must be followed by a
 * delimiter as jlex wants.
 */
const char *jtok_scan_string(const char *p, const char *end, bool *escaped);
const char *jtok_scan_number(const char *p, const char *end, bool *integer);
/* The literal `word` (true, false, null) at p, not followed by what would make it a longer
 * (invalid) word: one past it, or NULL. */
const char *jtok_scan_literal(const char *p, const char *end, const char *word, size_t len);

/* p moved past any JSON white space, never beyond end (inline: it runs between every two
 * tokens of both walks). */
static inline const char *jtok_skip_ws(const char *p, const char *end)
{
    if (p < end && (unsigned char)*p > ' ') /* the common case: records without blanks */
        return p;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Decode a JT_STRING/JT_KEY span into UTF-8 bytes appended to out (no NUL). ING_ESYNTAX for
 * a bad escape or a lone surrogate. */
int jtok_unescape(const char *p, size_t n, struct buf *out, struct ing_err *err);
/* Number text -> value. jtok_i64 fails (ING_ETYPE) on fractions, exponents that leave a fraction,
 * or overflow; jtok_f64 accepts any JSON number. */
int jtok_i64(const char *p, size_t n, int64_t *out);
int jtok_f64(const char *p, size_t n, double *out);

#endif
