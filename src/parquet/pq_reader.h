/*
 * pq_reader.h - a streaming Apache Parquet reader (our own; no third-party Parquet code).
 *
 * Opens a file (or a byte range in memory), parses and checks the footer and the schema, then
 * hands out rows one at a time. Row groups are read one after the other, and each column chunk
 * page by page: a column's next page is read with pread (never the whole file, never mmap),
 * decompressed and decoded into levels and values when the row cursor passes the end of its
 * current page; the rows are assembled from the columns (Dremel record assembly). Memory is
 * therefore bounded by about one page per column plus the dictionaries, capped by
 * opts.max_row_group_bytes.
 *
 * Supported: all physical types (INT96 too); logical and converted types (STRING, ENUM, JSON,
 * BSON, UUID, DATE, TIME, TIMESTAMP millis/micros/nanos, DECIMAL on INT32/INT64/FIXED/BYTE_ARRAY,
 * INT(8/16/32/64, signed and unsigned), FLOAT16, INTERVAL); nested groups with definition and
 * repetition levels; LIST in the standard 3-level and the legacy 2- and 1-level layouts; MAP
 * (and MAP_KEY_VALUE); encodings PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, RLE and BIT_PACKED
 * levels, RLE booleans, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY,
 * BYTE_STREAM_SPLIT; data pages v1 and v2; codecs none, snappy, gzip, zstd, lz4_raw, lz4
 * (Hadoop framing) and brotli when built with ING_WITH_BROTLI. Not supported (clear error):
 * encrypted files, column chunks in other files, LZO.
 *
 * Hostile input: every offset, size and count is checked against the file size and the caps in
 * pq_reader_opts before anything is allocated; a corrupt file gives ING_ESYNTAX (malformed) or
 * ING_ETOOBIG (a cap), with the row group, the column path (err->field) and, for pages, the
 * file offset (err->offset) - never a crash, a hang or a huge allocation.
 *
 * Rows are handed out as JSON text (pq_reader_row_json, what the shredder's JSON path reads) or
 * step by step (pq_reader_row_begin and the calls after it, what ingest/pq_shred walks to give
 * the shredder typed values); both follow the same rendering rules:
 *   groups -> objects (fields in schema order, null fields written as null); LIST and bare
 *   repeated fields -> arrays; MAP -> objects (non-string keys as their JSON text, e.g. "1");
 *   BOOLEAN -> true/false; integers -> numbers (UINT types unsigned); FLOAT/DOUBLE -> numbers
 *   (shortest text that reads back to the same value; NaN and infinities -> null, JSON has no
 *   such numbers); DECIMAL -> a number with `scale` decimals (e.g. 12.30); DATE -> "YYYY-MM-DD";
 *   TIMESTAMP and INT96 -> "YYYY-MM-DDTHH:MM:SS.fffZ" with 3, 6 or 9 decimals (millis, micros,
 *   nanos; INT96 is nanos), local (not UTC-adjusted) timestamps are written as if UTC;
 *   TIME -> "HH:MM:SS.fff..."; STRING, ENUM, JSON -> strings (JSON text is not spliced in: it
 *   stays a string); UUID -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"; FLOAT16 -> number;
 *   INTERVAL -> {"months":m,"days":d,"millis":ms}; BYTE_ARRAY/FIXED without annotation, and
 *   BSON -> base64 (RFC 4648, padded) unless opts.binary_as_string (legacy writers that left
 *   strings unannotated), then UTF-8 text. Text that is not valid UTF-8 fails that row
 *   (ING_ESYNTAX), as corrupt JSON would.
 *
 * Ownership: the reader owns its file descriptor and buffers; strings it returns (paths, node
 * names) live as long as the reader. Threads: one reader belongs to one thread; different
 * readers are independent.
 */
#ifndef ING_PARQUET_PQ_READER_H
#define ING_PARQUET_PQ_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parquet/pq_writer.h"
#include "util/buf.h"
#include "util/err.h"

struct pq_reader_opts {
    size_t max_footer_bytes;    /* default 64 MiB */
    size_t max_page_bytes;      /* default 256 MiB (uncompressed size of one page) */
    size_t max_row_group_bytes; /* default 2 GiB: pages read and decompressed + decoded levels
                                   and values held at once (about one page per column) */
    int max_depth;              /* default 64 levels of schema nesting */
    bool binary_as_string;      /* unannotated BYTE_ARRAY as UTF-8 text instead of base64 */
    /* Read only row groups [first_row_group, first_row_group + num_row_groups) (num 0 = to the
     * last), so several readers of one file can share its row groups between threads. Row
     * numbers stay file-absolute: the first row handed out is 1 + the rows of the row groups
     * before the range. A range outside the file fails the open with ING_EINVAL. */
    int first_row_group;
    int num_row_groups;
};

/* How a schema node renders in JSON. */
enum pq_rkind {
    PQ_RK_VALUE = 0, /* a leaf */
    PQ_RK_STRUCT,    /* a group without (usable) annotation: an object */
    PQ_RK_LIST,      /* a LIST group: an array of list_elem */
    PQ_RK_MAP,       /* a MAP group: an object keyed by map_key */
};

/* What a leaf's values mean (physical type + logical/converted annotation). */
enum pq_rtype {
    PQ_RT_BOOL = 0, PQ_RT_INT, PQ_RT_UINT, PQ_RT_FLOAT, PQ_RT_DOUBLE, PQ_RT_STRING, PQ_RT_ENUM,
    PQ_RT_JSON, PQ_RT_BINARY, PQ_RT_DATE, PQ_RT_TIME, PQ_RT_TIMESTAMP, PQ_RT_INT96,
    PQ_RT_DECIMAL, PQ_RT_UUID, PQ_RT_FLOAT16, PQ_RT_INTERVAL, PQ_RT_NULL, /* UNKNOWN type */
};

enum pq_unit { PQ_UNIT_MILLIS = 0, PQ_UNIT_MICROS = 1, PQ_UNIT_NANOS = 2 };

/* One node of the file's schema (node 0 is the root message). Read-only. */
struct pq_rnode {
    const char *name;
    const char *path;          /* dotted path from the root's child, "" for the root */
    int parent;                /* -1 for the root */
    const int *children;       /* node ids, in schema order */
    int nchildren;
    enum pq_repetition rep;
    bool is_leaf;
    enum pq_phys phys;         /* leaves */
    int type_length;           /* FIXED_LEN_BYTE_ARRAY */
    enum pq_rtype rtype;       /* leaves */
    enum pq_unit unit;         /* TIME / TIMESTAMP */
    bool utc;                  /* TIME / TIMESTAMP isAdjustedToUTC */
    int scale, precision;      /* DECIMAL */
    int column;                /* leaves: column index; groups: -1 */
    int col_lo, col_hi;        /* the leaf columns under this node: [col_lo, col_hi) */
    int def_level, rep_level;  /* max definition / repetition level at this node */
    enum pq_rkind kind;
    int list_elem;             /* PQ_RK_LIST: the element node (the repeated child itself in
                                  legacy 2-level lists) */
    int map_key, map_value;    /* PQ_RK_MAP: key leaf and value node (-1: no value field) */
};

struct pq_reader;

/* Open a file. `opts` may be NULL for the defaults. Checks the footer and schema. */
int pq_reader_open(struct pq_reader **out, const char *path, const struct pq_reader_opts *opts,
                   struct ing_err *err);
/* Open a file already in memory (borrowed: must outlive the reader). */
int pq_reader_open_mem(struct pq_reader **out, const void *data, size_t len,
                       const struct pq_reader_opts *opts, struct ing_err *err);
void pq_reader_free(struct pq_reader *r); /* NULL is a no-op */

int64_t pq_reader_num_rows(const struct pq_reader *r);  /* sum over the row groups */
int pq_reader_num_row_groups(const struct pq_reader *r); /* of the file, whatever the range */
/* Rows of row group rg of the file (from the footer), or -1 when there is no such group. */
int64_t pq_reader_row_group_rows(const struct pq_reader *r, int rg);
size_t pq_reader_ncolumns(const struct pq_reader *r);
const char *pq_reader_column_path(const struct pq_reader *r, int column); /* "" if out of range */
const char *pq_reader_created_by(const struct pq_reader *r);             /* "" when absent */
int pq_reader_nnodes(const struct pq_reader *r);
const struct pq_rnode *pq_reader_node(const struct pq_reader *r, int id); /* NULL if out of range */
/* The leaf node of a column. */
const struct pq_rnode *pq_reader_column_node(const struct pq_reader *r, int column);

/* Move to the next row: 1 when there is one, 0 after the last, or a negative ING_E* code. A
 * corrupt row group is fatal: the same error is returned by every later call. */
int pq_reader_next(struct pq_reader *r, struct ing_err *err);
/* 1-based number of the current row in the file (0 before the first pq_reader_next), counting
 * the rows of any row groups before the reader's range. */
int64_t pq_reader_row(const struct pq_reader *r);
/* Append the current row as one JSON object (no newline) to `out`. On error (a row whose
 * levels contradict each other, text that is not UTF-8, a cap of `out`) the row is skipped by
 * the caller; the reader stays usable and `out` may hold a partial object past its old len. */
int pq_reader_row_json(struct pq_reader *r, struct buf *out, struct ing_err *err);

/*
 * The current row without JSON text (ingest/pq_shred walks it against a plan): the same record
 * assembly as pq_reader_row_json, one step at a time, driven by the caller over the node tree.
 * A "level" is a repetition depth: the row as a whole is level 0, and the instances of a
 * repeated node rn are cut into rn->rep_level. These calls do not fill an error: a negative
 * result means the row's levels contradict each other (pq_reader_row_json says so in words).
 */
struct pq_value {
    const struct pq_rnode *leaf;
    const uint8_t *fixed;      /* fixed-width types: the value's little-endian bytes */
    const uint8_t *p;          /* BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY: the bytes, valid until */
    size_t n;                  /* the next pq_reader_next */
    size_t index;              /* for pq_reader_value_json */
};
/* Start walking the current row: 0, or ING_ESTATE when there is none. */
int pq_reader_row_begin(struct pq_reader *r);
/* Is node nid defined at level lvl (its first entry there reaches nid->def_level)? 1, 0, or
 * ING_ESYNTAX. */
int pq_reader_row_defined(struct pq_reader *r, int nid, int lvl);
/* The next instance of the repeated node rn inside level lvl (the first when `first`), cut into
 * level rn->rep_level: 1, 0 after the last, or ING_ESYNTAX. */
int pq_reader_row_instance(struct pq_reader *r, int rn, int lvl, bool first);
/* The value of leaf `column` at level lvl (known to be defined). 0 or ING_ESYNTAX. Values of
 * one column must be taken in row order, as the JSON rendering takes them. */
int pq_reader_row_value(struct pq_reader *r, int column, int lvl, struct pq_value *out);
/* Append the JSON text pq_reader_row_json writes for node nid at level lvl: as a member of a
 * defined parent (null, a value, or an array when repeated) when `as_field`, else as its own
 * (defined) value. The typed path renders the parts it does not walk (fields the plan lacks),
 * since a row whose text cannot be rendered is a corrupt row wherever the cause is. 0 or a
 * negative code (ING_ESYNTAX, ING_ETOOBIG, or a cap of `out`). */
int pq_reader_row_node_json(struct pq_reader *r, int nid, int lvl, bool as_field,
                            struct buf *out);
/* Append the JSON text pq_reader_row_json writes for one value (a number, a string with its
 * quotes, true/false/null, an object for INTERVAL). ING_ESYNTAX for text that is not UTF-8. */
int pq_reader_value_json(struct pq_reader *r, const struct pq_value *v, struct buf *out);

#endif
