/*
 * pq_writer.h - a streaming Apache Parquet writer (our own; no third-party Parquet code).
 *
 * Usage: build a schema tree with pq_schema_*, open a writer on a file, append values column by
 * column with their definition and repetition levels (Dremel shredding is the caller's job; the
 * caller knows the record structure), call pq_writer_end_row() after each record, and close.
 * Row groups are cut when the buffered column data passes opts.row_group_bytes, so memory is
 * bounded by the row group, never the file. Strings are dictionary-encoded per column chunk
 * (falling back to PLAIN when the dictionary grows past opts.dict_max_bytes); levels use the
 * RLE/bit-packed hybrid; pages are compressed with zstd (default), snappy or none; each column
 * chunk carries statistics (null count, min, max). Data pages v1, format version 2 metadata
 * (LogicalType and ConvertedType both written so that old and new readers agree).
 *
 * Ownership: a schema is built once, then borrowed by any number of writers (read-only after
 * pq_schema_finish). Strings passed in are copied.
 * Threads: a writer belongs to one thread; different writers may run on different threads.
 */
#ifndef ING_PARQUET_PQ_WRITER_H
#define ING_PARQUET_PQ_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum pq_phys { PQ_BOOLEAN = 0, PQ_INT32 = 1, PQ_INT64 = 2, PQ_INT96 = 3, PQ_FLOAT = 4,
               PQ_DOUBLE = 5, PQ_BYTE_ARRAY = 6, PQ_FIXED_LEN_BYTE_ARRAY = 7 };

enum pq_repetition { PQ_REQUIRED = 0, PQ_OPTIONAL = 1, PQ_REPEATED = 2 };

/* Logical annotations ingot writes. */
enum pq_logical {
    PQ_LOG_NONE = 0,
    PQ_LOG_STRING,           /* BYTE_ARRAY, UTF8 */
    PQ_LOG_DATE,             /* INT32, days since epoch */
    PQ_LOG_TIMESTAMP_MILLIS, /* INT64, UTC-adjusted ms */
    PQ_LOG_TIMESTAMP_MICROS, /* INT64, UTC-adjusted us */
    PQ_LOG_INT8,             /* INT32, signed 8 */
    PQ_LOG_INT16,            /* INT32, signed 16 */
    PQ_LOG_INT32,            /* INT32, signed 32 */
    PQ_LOG_INT64,            /* INT64, signed 64 */
    PQ_LOG_JSON,             /* BYTE_ARRAY holding JSON text */
    PQ_LOG_LIST,             /* group: 3-level list */
    PQ_LOG_MAP,              /* group: map (repeated key_value child) */
};

enum pq_codec { PQ_CODEC_UNCOMPRESSED = 0, PQ_CODEC_SNAPPY = 1, PQ_CODEC_GZIP = 2,
                PQ_CODEC_ZSTD = 6 };

struct pq_schema;

/* New empty schema whose root is node 0 (the message). */
struct pq_schema *pq_schema_new(void);
/* Add a group under `parent` (a group node id); returns the new node id (>= 1). */
int pq_schema_add_group(struct pq_schema *s, int parent, const char *name,
                        enum pq_repetition rep, enum pq_logical logical);
/* Add a primitive leaf under `parent`; returns its leaf COLUMN index (0, 1, 2, ... in the order
 * leaves are added, which must be depth-first schema order). */
int pq_schema_add_leaf(struct pq_schema *s, int parent, const char *name, enum pq_repetition rep,
                       enum pq_phys phys, enum pq_logical logical);
/* Freeze: computes max definition/repetition levels. Call once before opening writers. */
void pq_schema_finish(struct pq_schema *s);
size_t pq_schema_ncolumns(const struct pq_schema *s);
int pq_schema_max_def(const struct pq_schema *s, int column);
int pq_schema_max_rep(const struct pq_schema *s, int column);
/* Dotted path of a column, e.g. "person.name.firstName" or "items.list.element.SKU". */
const char *pq_schema_column_path(const struct pq_schema *s, int column);
void pq_schema_free(struct pq_schema *s); /* NULL is a no-op */

struct pq_writer_opts {
    enum pq_codec codec;         /* default PQ_CODEC_ZSTD */
    int zstd_level;              /* default 1 */
    size_t row_group_bytes;      /* default 64 MiB of buffered (uncompressed) column data */
    size_t page_bytes;           /* default 1 MiB per data page */
    size_t dict_max_bytes;       /* default 1 MiB per column chunk dictionary */
    const char *created_by;      /* default "ingot version 0.1" */
};
/* With opts given, `codec` is taken as is (0 is PQ_CODEC_UNCOMPRESSED); zero sizes, a zero
 * level and a NULL created_by mean the defaults. */

struct pq_writer;

/* Create `path` (truncating) and queue the magic (written with the first row group or the
 * footer). `opts` may be NULL for defaults. */
int pq_writer_open(struct pq_writer **out, const struct pq_schema *s, const char *path,
                   const struct pq_writer_opts *opts, struct ing_err *err);

/* Append one value (or a null) to a column. `rep` is the repetition level; for a value the
 * definition level is the column's max; for a null, `def` says how deep the path is defined
 * (0..max_def-1). Cannot fail: buffers grow (allocation failure aborts). */
void pq_write_null(struct pq_writer *w, int column, int def, int rep);
void pq_write_bool(struct pq_writer *w, int column, bool v, int rep);
void pq_write_i32(struct pq_writer *w, int column, int32_t v, int rep);
void pq_write_i64(struct pq_writer *w, int column, int64_t v, int rep);
void pq_write_double(struct pq_writer *w, int column, double v, int rep);
void pq_write_bytes(struct pq_writer *w, int column, const void *p, size_t n, int rep);
/* pq_write_null on every column of first_column..last_column (a subtree absent or null: its
 * columns are contiguous in depth-first order). */
void pq_write_nulls(struct pq_writer *w, int first_column, int last_column, int def, int rep);
/* Rep-0 nulls for several column ranges of one row: ranges holds n (first, last, def) triples,
 * each as for pq_write_nulls, none overlapping another. `key` (non-zero) names this exact list:
 * the caller promises that equal keys mean equal lists (e.g. a process-wide counter), so a row
 * with the same list as earlier rows costs one step whatever the number of ranges and columns. */
void pq_write_null_set(struct pq_writer *w, const int32_t *ranges, size_t n, uint64_t key);

/* One record is complete (every column got its levels for it). May flush a row group. */
int pq_writer_end_row(struct pq_writer *w, struct ing_err *err);

struct pq_file_info {
    int64_t rows;
    int64_t bytes;           /* file size */
    int row_groups;
};

/* Flush the last row group, write the footer, fsync and close. The writer is freed either way. */
int pq_writer_close(struct pq_writer *w, struct pq_file_info *info, struct ing_err *err);
/* Abandon: close and free without a footer (the caller deletes the file). NULL is a no-op. */
void pq_writer_abort(struct pq_writer *w);

#endif
