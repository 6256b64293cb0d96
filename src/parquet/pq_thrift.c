/*
 * pq_thrift.c - Thrift compact protocol encoder and decoder used for Parquet metadata; see
 * pq_thrift.h.
 * Written from the Thrift compact protocol specification (varints, zigzag, delta field ids).
 */
#include "parquet/pq_thrift.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

void pq_tw_init(struct pq_tw *t, struct buf *out)
{
    memset(t, 0, sizeof(*t));
    t->out = out;
}

int pq_tw_error(const struct pq_tw *t)
{
    return t->error;
}

void pq_tw_raw(struct pq_tw *t, const void *p, size_t n)
{
    if (t->error)
        return;
    int rc = buf_append(t->out, p, n);
    if (rc)
        t->error = rc;
}

void pq_tw_varint(struct pq_tw *t, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    pq_tw_raw(t, tmp, n);
}

void pq_tw_zigzag(struct pq_tw *t, int64_t v)
{
    /* Done on unsigned values: left-shifting a negative number is undefined. */
    uint64_t u = (uint64_t)v;
    pq_tw_varint(t, (u << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

void pq_tw_field(struct pq_tw *t, int16_t id, enum pq_ttype type)
{
    int16_t last = t->last[t->depth];
    int delta = (int)id - (int)last;
    if (delta > 0 && delta <= 15) {
        uint8_t b = (uint8_t)((delta << 4) | (int)type);
        pq_tw_raw(t, &b, 1);
    } else {
        uint8_t b = (uint8_t)type;
        pq_tw_raw(t, &b, 1);
        pq_tw_zigzag(t, id);
    }
    t->last[t->depth] = id;
}

void pq_tw_field_i32(struct pq_tw *t, int16_t id, int32_t v)
{
    pq_tw_field(t, id, PQ_T_I32);
    pq_tw_zigzag(t, v);
}

void pq_tw_field_i64(struct pq_tw *t, int16_t id, int64_t v)
{
    pq_tw_field(t, id, PQ_T_I64);
    pq_tw_zigzag(t, v);
}

void pq_tw_field_i16(struct pq_tw *t, int16_t id, int16_t v)
{
    pq_tw_field(t, id, PQ_T_I16);
    pq_tw_zigzag(t, v);
}

void pq_tw_field_byte(struct pq_tw *t, int16_t id, int8_t v)
{
    pq_tw_field(t, id, PQ_T_BYTE);
    uint8_t b = (uint8_t)v;
    pq_tw_raw(t, &b, 1);
}

void pq_tw_field_bool(struct pq_tw *t, int16_t id, bool v)
{
    /* The compact protocol folds a boolean field's value into the type nibble. */
    pq_tw_field(t, id, v ? PQ_T_TRUE : PQ_T_FALSE);
}

void pq_tw_binary(struct pq_tw *t, const void *p, size_t n)
{
    pq_tw_varint(t, n);
    pq_tw_raw(t, p, n);
}

void pq_tw_field_binary(struct pq_tw *t, int16_t id, const void *p, size_t n)
{
    pq_tw_field(t, id, PQ_T_BINARY);
    pq_tw_binary(t, p, n);
}

void pq_tw_field_string(struct pq_tw *t, int16_t id, const char *s)
{
    pq_tw_field_binary(t, id, s, strlen(s));
}

void pq_tw_struct_begin(struct pq_tw *t)
{
    if (t->depth + 1 >= PQ_TW_MAX_DEPTH) {
        t->error = ING_ETOOBIG;
        return;
    }
    t->depth++;
    t->last[t->depth] = 0;
}

void pq_tw_field_struct_begin(struct pq_tw *t, int16_t id)
{
    pq_tw_field(t, id, PQ_T_STRUCT);
    pq_tw_struct_begin(t);
}

void pq_tw_struct_end(struct pq_tw *t)
{
    uint8_t stop = PQ_T_STOP;
    pq_tw_raw(t, &stop, 1);
    if (t->depth > 0)
        t->depth--;
}

void pq_tw_field_empty_struct(struct pq_tw *t, int16_t id)
{
    pq_tw_field_struct_begin(t, id);
    pq_tw_struct_end(t);
}

void pq_tw_list_header(struct pq_tw *t, enum pq_ttype elem, size_t n)
{
    if (n < 15) {
        uint8_t b = (uint8_t)((n << 4) | (size_t)elem);
        pq_tw_raw(t, &b, 1);
    } else {
        uint8_t b = (uint8_t)(0xF0 | (unsigned)elem);
        pq_tw_raw(t, &b, 1);
        pq_tw_varint(t, n);
    }
}

void pq_tw_field_list(struct pq_tw *t, int16_t id, enum pq_ttype elem, size_t n)
{
    pq_tw_field(t, id, PQ_T_LIST);
    pq_tw_list_header(t, elem, n);
}

/* ---------------------------------------------------------------- decoder */

static void tr_fail(struct pq_tr *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tr_fail(struct pq_tr *t, int code, const char *fmt, ...)
{
    if (t->error)
        return;
    t->error = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
    t->p = t->end; /* nothing more is read after an error */
}

void pq_tr_init(struct pq_tr *t, const void *p, size_t n)
{
    memset(t, 0, sizeof(*t));
    t->start = p;
    t->p = p;
    t->end = t->start + n;
}

int pq_tr_error(const struct pq_tr *t)
{
    return t->error;
}

size_t pq_tr_offset(const struct pq_tr *t)
{
    return (size_t)(t->p - t->start);
}

static size_t tr_left(const struct pq_tr *t)
{
    return (size_t)(t->end - t->p);
}

uint64_t pq_tr_varint(struct pq_tr *t)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (t->p >= t->end) {
            tr_fail(t, ING_ESYNTAX, "truncated varint");
            return 0;
        }
        uint8_t b = *t->p++;
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && b > 1) {
            tr_fail(t, ING_ESYNTAX, "varint longer than 64 bits");
            return 0;
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
    }
    tr_fail(t, ING_ESYNTAX, "varint longer than 10 bytes");
    return 0;
}

int64_t pq_tr_zigzag(struct pq_tr *t)
{
    uint64_t u = pq_tr_varint(t);
    /* (u >> 1) ^ -(u & 1), computed unsigned so that nothing overflows. */
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

static uint8_t tr_byte(struct pq_tr *t)
{
    if (t->p >= t->end) {
        tr_fail(t, ING_ESYNTAX, "truncated Thrift data");
        return 0;
    }
    return *t->p++;
}

bool pq_tr_field(struct pq_tr *t, int16_t *id, enum pq_ttype *type)
{
    *id = 0;
    *type = PQ_T_STOP;
    if (t->error)
        return false;
    uint8_t b = tr_byte(t);
    if (t->error)
        return false;
    if (b == PQ_T_STOP) {
        if (t->depth > 0)
            t->depth--;
        return false;
    }
    unsigned ty = b & 0x0F, delta = b >> 4;
    if (ty > PQ_T_STRUCT) {
        tr_fail(t, ING_ESYNTAX, "unknown Thrift type %u", ty);
        return false;
    }
    int64_t fid;
    if (delta)
        fid = (int64_t)t->last[t->depth] + delta;
    else
        fid = pq_tr_zigzag(t);
    if (t->error)
        return false;
    if (fid < INT16_MIN || fid > INT16_MAX) {
        tr_fail(t, ING_ESYNTAX, "Thrift field id %lld out of range", (long long)fid);
        return false;
    }
    t->last[t->depth] = (int16_t)fid;
    *id = (int16_t)fid;
    *type = (enum pq_ttype)ty;
    return true;
}

void pq_tr_struct_begin(struct pq_tr *t)
{
    if (t->error)
        return;
    if (t->depth + 1 >= PQ_TR_MAX_DEPTH) {
        tr_fail(t, ING_ETOOBIG, "Thrift structs nested deeper than %d", PQ_TR_MAX_DEPTH);
        return;
    }
    t->depth++;
    t->last[t->depth] = 0;
}

static int64_t tr_int(struct pq_tr *t, enum pq_ttype type, int64_t lo, int64_t hi)
{
    int64_t v;
    switch (type) {
    case PQ_T_BYTE:
        v = (int8_t)tr_byte(t);
        break;
    case PQ_T_I16:
    case PQ_T_I32:
    case PQ_T_I64:
        v = pq_tr_zigzag(t);
        break;
    default:
        tr_fail(t, ING_ESYNTAX, "expected an integer, found Thrift type %d", (int)type);
        return 0;
    }
    if (t->error)
        return 0;
    if (v < lo || v > hi) {
        tr_fail(t, ING_ESYNTAX, "integer %lld out of range", (long long)v);
        return 0;
    }
    return v;
}

int32_t pq_tr_i32(struct pq_tr *t, enum pq_ttype type)
{
    return (int32_t)tr_int(t, type, INT32_MIN, INT32_MAX);
}

int64_t pq_tr_i64(struct pq_tr *t, enum pq_ttype type)
{
    return tr_int(t, type, INT64_MIN, INT64_MAX);
}

bool pq_tr_bool(struct pq_tr *t, enum pq_ttype type)
{
    if (type == PQ_T_TRUE)
        return true;
    if (type != PQ_T_FALSE)
        tr_fail(t, ING_ESYNTAX, "expected a boolean, found Thrift type %d", (int)type);
    return false;
}

void pq_tr_binary(struct pq_tr *t, enum pq_ttype type, const uint8_t **p, size_t *n)
{
    *p = NULL;
    *n = 0;
    if (type != PQ_T_BINARY) {
        tr_fail(t, ING_ESYNTAX, "expected a binary, found Thrift type %d", (int)type);
        return;
    }
    uint64_t len = pq_tr_varint(t);
    if (t->error)
        return;
    if (len > tr_left(t)) {
        tr_fail(t, ING_ESYNTAX, "binary of %llu bytes passes the end of the data",
                (unsigned long long)len);
        return;
    }
    *p = t->p;
    *n = (size_t)len;
    t->p += len;
}

size_t pq_tr_list(struct pq_tr *t, enum pq_ttype type, enum pq_ttype *elem)
{
    *elem = PQ_T_STOP;
    if (type != PQ_T_LIST && type != PQ_T_SET) {
        tr_fail(t, ING_ESYNTAX, "expected a list, found Thrift type %d", (int)type);
        return 0;
    }
    uint8_t b = tr_byte(t);
    if (t->error)
        return 0;
    uint64_t n = b >> 4;
    if (n == 15)
        n = pq_tr_varint(t);
    unsigned et = b & 0x0F;
    if (t->error)
        return 0;
    if (et > PQ_T_STRUCT || (et == PQ_T_STOP && n)) {
        tr_fail(t, ING_ESYNTAX, "unknown Thrift list element type %u", et);
        return 0;
    }
    /* Every element takes at least one byte, so a larger count cannot be honest. */
    if (n > tr_left(t)) {
        tr_fail(t, ING_ESYNTAX, "list of %llu elements in %zu bytes", (unsigned long long)n,
                tr_left(t));
        return 0;
    }
    *elem = (enum pq_ttype)et;
    return (size_t)n;
}

static void tr_skip_bytes(struct pq_tr *t, size_t n)
{
    if (t->error)
        return;
    if (n > tr_left(t)) {
        tr_fail(t, ING_ESYNTAX, "truncated Thrift data");
        return;
    }
    t->p += n;
}

static void tr_skip(struct pq_tr *t, enum pq_ttype type, bool in_collection)
{
    if (t->error)
        return;
    switch (type) {
    case PQ_T_TRUE:
    case PQ_T_FALSE:
        if (in_collection)
            tr_skip_bytes(t, 1);
        return;
    case PQ_T_BYTE:
        tr_skip_bytes(t, 1);
        return;
    case PQ_T_I16:
    case PQ_T_I32:
    case PQ_T_I64:
        (void)pq_tr_varint(t);
        return;
    case PQ_T_DOUBLE:
        tr_skip_bytes(t, 8);
        return;
    case PQ_T_BINARY: {
        const uint8_t *p;
        size_t n;
        pq_tr_binary(t, type, &p, &n);
        return;
    }
    case PQ_T_LIST:
    case PQ_T_SET: {
        enum pq_ttype et;
        size_t n = pq_tr_list(t, type, &et);
        if (t->depth + 1 >= PQ_TR_MAX_DEPTH) {
            tr_fail(t, ING_ETOOBIG, "Thrift values nested deeper than %d", PQ_TR_MAX_DEPTH);
            return;
        }
        t->depth++; /* counts collection nesting too, so skipping cannot recurse unbounded */
        t->last[t->depth] = 0;
        for (size_t i = 0; i < n && !t->error; i++)
            tr_skip(t, et, true);
        if (!t->error)
            t->depth--;
        return;
    }
    case PQ_T_MAP: {
        uint64_t n = pq_tr_varint(t);
        if (t->error || n == 0)
            return;
        uint8_t kv = tr_byte(t);
        unsigned kt = kv >> 4, vt = kv & 0x0F;
        if (t->error)
            return;
        if (kt == PQ_T_STOP || kt > PQ_T_STRUCT || vt == PQ_T_STOP || vt > PQ_T_STRUCT ||
            n > tr_left(t) / 2) {
            tr_fail(t, ING_ESYNTAX, "bad Thrift map header");
            return;
        }
        if (t->depth + 1 >= PQ_TR_MAX_DEPTH) {
            tr_fail(t, ING_ETOOBIG, "Thrift values nested deeper than %d", PQ_TR_MAX_DEPTH);
            return;
        }
        t->depth++;
        t->last[t->depth] = 0;
        for (uint64_t i = 0; i < n && !t->error; i++) {
            tr_skip(t, (enum pq_ttype)kt, true);
            tr_skip(t, (enum pq_ttype)vt, true);
        }
        if (!t->error)
            t->depth--;
        return;
    }
    case PQ_T_STRUCT: {
        pq_tr_struct_begin(t);
        int16_t id;
        enum pq_ttype ft;
        while (pq_tr_field(t, &id, &ft))
            tr_skip(t, ft, false);
        return;
    }
    case PQ_T_STOP:
        break;
    }
    tr_fail(t, ING_ESYNTAX, "cannot skip Thrift type %d", (int)type);
}

void pq_tr_skip(struct pq_tr *t, enum pq_ttype type)
{
    tr_skip(t, type, false);
}

void pq_tr_skip_elem(struct pq_tr *t, enum pq_ttype type)
{
    tr_skip(t, type, true);
}
