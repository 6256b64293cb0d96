/*
 * pq_thrift.h - Thrift compact protocol encoder and decoder for the Parquet footer and page
 * headers. Module-private to src/parquet.
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

/* ---------------------------------------------------------------- decoder (read side)
 *
 * A cursor over borrowed bytes. Every read is bounds-checked; the first problem (truncation, a
 * bad varint, a value out of range for its type, nesting deeper than PQ_TR_MAX_DEPTH, a
 * collection count larger than the bytes left) sets a sticky error (ING_ESYNTAX or ING_ETOOBIG)
 * and a message; later reads return zeros, so callers check pq_tr_error() once at the end of a
 * struct. Reading a struct:
 *
 *     int16_t id; enum pq_ttype ty;
 *     while (pq_tr_field(&t, &id, &ty)) {        // false at the STOP byte or on error
 *         switch (id) {
 *         case 1: x = pq_tr_i32(&t, ty); break;
 *         case 2: pq_tr_struct_begin(&t); ...read fields...; break;
 *         default: pq_tr_skip(&t, ty);
 *         }
 *     }
 * Not thread-safe; one decoder per buffer.
 */

#define PQ_TR_MAX_DEPTH 32

struct pq_tr {
    const uint8_t *start, *p, *end;
    int16_t last[PQ_TR_MAX_DEPTH]; /* last field id read at each struct depth */
    int depth;
    int error;                     /* sticky: 0, ING_ESYNTAX or ING_ETOOBIG */
    char why[96];                  /* what failed, for error messages */
};

void pq_tr_init(struct pq_tr *t, const void *p, size_t n);
int pq_tr_error(const struct pq_tr *t);
/* Bytes consumed so far. */
size_t pq_tr_offset(const struct pq_tr *t);

/* Next field of the current struct: true with its id and type, false at the STOP byte (which
 * leaves the struct) or once an error is set. */
bool pq_tr_field(struct pq_tr *t, int16_t *id, enum pq_ttype *type);
/* Enter a struct whose field header (or list element position) was just read. */
void pq_tr_struct_begin(struct pq_tr *t);

/* Values of a field of type `type` (as pq_tr_field returned it). Integers accept any integer
 * type whose value fits; anything else is an error. */
int32_t pq_tr_i32(struct pq_tr *t, enum pq_ttype type);
int64_t pq_tr_i64(struct pq_tr *t, enum pq_ttype type);
/* A boolean field carries its value in the type nibble. */
bool pq_tr_bool(struct pq_tr *t, enum pq_ttype type);
/* Binary/string: borrowed pointer into the buffer. */
void pq_tr_binary(struct pq_tr *t, enum pq_ttype type, const uint8_t **p, size_t *n);
/* List or set header: element type and count (count <= bytes left, so it is safe to size an
 * allocation by it). Elements follow: read i32 elements with pq_tr_i32(t, elem), binaries with
 * pq_tr_binary, structs with pq_tr_struct_begin + pq_tr_field loop. */
size_t pq_tr_list(struct pq_tr *t, enum pq_ttype type, enum pq_ttype *elem);
/* Skip a field value of `type` (recursively, with the depth limit). */
void pq_tr_skip(struct pq_tr *t, enum pq_ttype type);
/* Skip one collection element of `type` (booleans take one byte there). */
void pq_tr_skip_elem(struct pq_tr *t, enum pq_ttype type);

/* Raw primitives, also used by the page decoders: unsigned LEB128 varint (at most 10 bytes) and
 * its zigzag form. */
uint64_t pq_tr_varint(struct pq_tr *t);
int64_t pq_tr_zigzag(struct pq_tr *t);

#endif
