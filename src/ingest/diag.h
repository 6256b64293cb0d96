/*
 * diag.h - error diagnostics of a batch: the row_errors files, the input file listing, and their
 * retention.
 *
 * Layout (one folder per batch, beside the lake; every path carries the sandbox):
 *   <data>/sandboxes/<sb>/diagnostics/<batchId>/_meta.json          {"batchId","completed"}
 *   <data>/sandboxes/<sb>/diagnostics/<batchId>/input_files.json    JSON Lines {"path","size"}
 *   <data>/sandboxes/<sb>/diagnostics/<batchId>/row_errors/<kind>_errors_<n>.json
 *   <data>/sandboxes/<sb>/diagnostics/.tmp-<batchId>/                being written
 * A run writes into the .tmp- folder and diag_publish renames it into place, so a reader sees the
 * diagnostics of one whole run or none (a retried run starts from an empty folder).
 *
 * row_errors files are JSON Lines, one bad row each, split every rows_per_file rows (AEP's shape,
 * notes/aep-api.md 4.3):
 *   parsing_errors_0.json     {"_corrupt_record":"<raw>","_errors":[{"code":"1401","message":...}],
 *                              "_filename":"<input file>","_row":n}
 *   required_errors_0.json, conversion_errors_0.json, validation_errors_0.json
 *                             {"_errors":[{"code","message","field"}],"_filename","_row","_record"}
 * Raw record text is kept up to DIAG_MAX_RAW bytes; bytes that are not UTF-8 become U+FFFD.
 *
 * Threads: a writer belongs to one thread; the path and sweep functions are thread-safe.
 */
#ifndef ING_INGEST_DIAG_H
#define ING_INGEST_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "util/err.h"

#define DIAG_ROWS_PER_FILE 10000
#define DIAG_MAX_RAW ((size_t)1 << 20)

/* The kinds of row error, each with its AEP code and file. */
enum diag_kind { DIAG_PARSING = 0, DIAG_REQUIRED, DIAG_CONVERSION, DIAG_VALIDATION, DIAG_NKINDS };

/* The kind of a row error code (ING_ESYNTAX, ING_ETOOBIG, ING_EREQUIRED, ING_ETYPE,
 * ING_ECONSTRAINT); -1 for codes that are not about a row. */
int diag_kind_of(int ing_code);
/* "parsing_errors", "required_errors", "conversion_errors", "validation_errors". */
const char *diag_kind_file_prefix(enum diag_kind kind);
/* The batch errors[] code: "INGEST-1401-400", "INGEST-1555-400", "INGEST-1560-400",
 * "INGEST-1570-400". */
const char *diag_kind_aep_code(enum diag_kind kind);
/* The short code in row_errors files: "1401", "1555", "1560", "1570". */
const char *diag_kind_code(enum diag_kind kind);
/* The errors[] description of a kind (AEP's wording where AEP has one). */
const char *diag_kind_description(enum diag_kind kind);

/* Paths (new strings). */
char *diag_root(const char *data_dir, const char *sandbox);
char *diag_batch_dir(const char *data_dir, const char *sandbox, const char *batch_id);
char *diag_batch_tmp_dir(const char *data_dir, const char *sandbox, const char *batch_id);

struct diag_row {
    enum diag_kind kind;
    const char *file;       /* batch-relative input file */
    int64_t row;            /* 1-based record number in the file */
    const char *field;      /* dotted field path, or NULL/"" */
    const char *message;    /* what is wrong (ignored for DIAG_PARSING, which has AEP's text) */
    const char *raw;        /* the record's bytes as read (may be NULL) */
    size_t raw_len;
};

struct diag_writer;

/* Start writing row_errors files under `dir` (created if missing). rows_per_file <= 0 means
 * DIAG_ROWS_PER_FILE. */
int diag_writer_open(struct diag_writer **out, const char *dir, int64_t rows_per_file,
                     struct ing_err *err);
/* Append one bad row. 0 or ING_EIO (err->sys_errno says why, e.g. ENOSPC). */
int diag_writer_add(struct diag_writer *w, const struct diag_row *row, struct ing_err *err);
/* Rows written so far of one kind. */
int64_t diag_writer_count(const struct diag_writer *w, enum diag_kind kind);
/* Flush, fsync and close every file; the writer is freed either way. NULL is a no-op. */
int diag_writer_close(struct diag_writer *w, struct ing_err *err);

/* Write `dir`/input_files.json from an array of {"name","size"}. */
int diag_write_input_files(const char *dir, const json_t *files, struct ing_err *err);
/* Make tmp_dir the batch's diagnostics: write _meta.json (batch id, `completed` ms), replace
 * final_dir with it by rename, fsync. */
int diag_publish(const char *tmp_dir, const char *final_dir, const char *batch_id,
                 int64_t completed_ms, struct ing_err *err);

/* Retention: remove the diagnostics of every batch (all sandboxes) completed more than
 * retention_ms before now_ms (the folder's modification time stands in when _meta.json is
 * missing). Folders being written (.tmp-) are left alone. *removed (may be NULL) counts the
 * folders removed. */
int diag_sweep(const char *data_dir, int64_t retention_ms, int64_t now_ms, int64_t *removed,
               struct ing_err *err);

#endif
