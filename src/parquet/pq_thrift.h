/*
 * pq_thrift.h - Thrift compact protocol encoder (write side only) for the Parquet footer and
 * page headers. Module-private to src/parquet.
 *
 * The encoder appends to a struct buf it borrows. Field ids are delta-encoded against the
 * previous field of the same struct, so nested structs push their own "last id" on a small
 * stack. Allocation failures are sticky: every call after one is a no-op and pq_tw_error()
 * reports ING_ENOMEM, so callers check once at the end.
 * Not thread-safe; one encoder per buffer.
 */
#ifndef ING_PARQUET_PQ_THRIFT_H
#define ING_PARQUET_PQ_THRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Compact protocol type nibbles. */
enum pq_ttype {
    PQ_T_STOP = 0,
    PQ_T_TRUE = 1,
    PQ_T_FALSE = 2,
    PQ_T_BYTE = 3,
    PQ_T_I16 = 4,
    PQ_T_I32 = 5,
    PQ_T_I64 = 6,
    PQ_T_DOUBLE = 7,
    PQ_T_BINARY = 8,
    PQ_T_LIST = 9,
    PQ_T_SET = 10,
    PQ_T_MAP = 11,
    PQ_T_STRUCT = 12,
};

#define PQ_TW_MAX_DEPTH 16

struct pq_tw {
    struct buf *out;
    int16_t last[PQ_TW_MAX_DEPTH]; /* last field id written at each struct depth */
    int depth;
    int error;                     /* sticky: 0 or ING_ENOMEM / ING_ETOOBIG */
};

void pq_tw_init(struct pq_tw *t, struct buf *out);
int pq_tw_error(const struct pq_tw *t);

/* Raw primitives (no field header). */
void pq_tw_varint(struct pq_tw *t, uint64_t v);
void pq_tw_zigzag(struct pq_tw *t, int64_t v);
void pq_tw_raw(struct pq_tw *t, const void *p, size_t n);

/* Field header for field `id` of `type` in the current struct (short form when the delta is
 * 1..15, long form otherwise). */
void pq_tw_field(struct pq_tw *t, int16_t id, enum pq_ttype type);

/* Whole fields. */
void pq_tw_field_i32(struct pq_tw *t, int16_t id, int32_t v);
void pq_tw_field_i64(struct pq_tw *t, int16_t id, int64_t v);
void pq_tw_field_i16(struct pq_tw *t, int16_t id, int16_t v);
void pq_tw_field_byte(struct pq_tw *t, int16_t id, int8_t v);
void pq_tw_field_bool(struct pq_tw *t, int16_t id, bool v);
void pq_tw_field_binary(struct pq_tw *t, int16_t id, const void *p, size_t n);
void pq_tw_field_string(struct pq_tw *t, int16_t id, const char *s);

/* Struct field: writes the header and enters the struct; end with pq_tw_struct_end. */
void pq_tw_field_struct_begin(struct pq_tw *t, int16_t id);
/* Enter a struct that is a list element or the top-level message (no field header). */
void pq_tw_struct_begin(struct pq_tw *t);
/* Writes the stop byte and leaves the struct. */
void pq_tw_struct_end(struct pq_tw *t);
/* An empty struct as a field (used by union members such as StringType). */
void pq_tw_field_empty_struct(struct pq_tw *t, int16_t id);

/* List field header / list header: element type and count; elements follow raw (i32 as
 * zigzag varint, binary as length + bytes, structs with pq_tw_struct_begin/end). */
void pq_tw_field_list(struct pq_tw *t, int16_t id, enum pq_ttype elem, size_t n);
void pq_tw_list_header(struct pq_tw *t, enum pq_ttype elem, size_t n);
void pq_tw_binary(struct pq_tw *t, const void *p, size_t n);

#endif
