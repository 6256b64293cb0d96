/*
 * pq_thrift.c - Thrift compact protocol encoder used for Parquet metadata; see pq_thrift.h.
 * Written from the Thrift compact protocol specification (varints, zigzag, delta field ids).
 */
#include "parquet/pq_thrift.h"

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
