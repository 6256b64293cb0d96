/*
 * engine.h - the ingestion engine: input files in, validated Parquet files out.
 *
 * This is the pipeline without the server: read (jsplit) -> validate and convert (shred, with the
 * compiled plan) -> write (pq_writer). The batch worker runs it for a batch; `ingot ingest` runs it
 * on files from the command line. Output goes to `out_dir`, which the caller promotes.
 *
 * Parallel runs: a plain (not compressed) JSON Lines file of at least opts.split_min_bytes is cut
 * at line starts into opts.threads byte ranges; each range gets its own splitter, shredder,
 * pq_writer and part file on its own thread, and the results are merged in range order. The
 * result is the sequential one: row numbers, errors[], first_error, previews and the diagnostics
 * files are those of a one-thread run (bad rows are kept per range and renumbered at the merge);
 * only the part files differ (one per range instead of one per input file). Arrays, multi-line
 * and compressed files are read sequentially. A Parquet file of several row groups (and at least
 * an eighth of opts.split_min_bytes) is cut the same way into up to opts.threads contiguous
 * row-group ranges, each read by its own pq_reader; a file of one row group is sequential.
 *
 * Threads: an engine run uses the calling thread and, for large files, opts.threads - 1 helper
 * threads it starts and joins; the plan is borrowed read-only, the diagnostics writer is used
 * from the calling thread only.
 */
#ifndef ING_INGEST_ENGINE_H
#define ING_INGEST_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "ingest/diag.h"
#include "parquet/pq_writer.h"
#include "schema/xdm_plan.h"
#include "util/err.h"

/* Input formats: JSON (JSON Lines, arrays, concatenated; plain, gzip or zstd) and Parquet files
 * (read by parquet/pq_reader, each row rendered as JSON for the same shredder, so conversions,
 * validation, errors and diagnostics are the JSON ones). */
enum engine_format { ENGINE_JSON = 0, ENGINE_PARQUET = 1 };

struct engine_opts {
    enum engine_format format;
    bool multiline;                    /* isMultiLineJson */
    struct pq_writer_opts parquet;     /* codec etc. */
    int preview_rows;                  /* keep this many converted rows (0 = none) */
    int64_t max_failed_rows;           /* stop after more failures than this (-1 = never stop);
                                          0 = fail on the first bad row (no partial ingestion) */
    struct diag_writer *diag;          /* borrowed; every bad row is written to it (NULL = none) */
    int fault_write_errno;             /* test hook: closing the first part file fails as if the
                                          write had failed with this errno (0 = off) */
    int threads;                       /* threads for one large plain JSON Lines file, cut into
                                          that many byte ranges (parallel.h), or for a Parquet
                                          file's row groups: 0 = online CPUs,
                                          1 = always sequential */
    int64_t split_min_bytes;           /* smallest file cut into ranges (0 = PAR_MIN_SPLIT_BYTES;
                                          tests use small values) */
};

struct engine_spec;

struct engine_file {
    const char *path;                  /* where to read */
    const char *name;                  /* batch-relative name, for errors and diagnostics */
    struct engine_spec *spec;          /* borrowed: a speculative run over this file, finished
                                          (engine_spec_run returned), or NULL; taken when it is
                                          usable (see below), else the file runs as usual */
};

struct engine_result {
    int64_t input_bytes;
    int64_t input_records;             /* records read (good + bad) */
    int64_t output_records;
    int64_t failed_records;
    int64_t output_bytes;              /* Parquet bytes written */
    int64_t output_files;
    int64_t unknown_fields;
    int64_t failed_by_kind[DIAG_NKINDS]; /* failed_records split by enum diag_kind */
    bool batch_error;                  /* the run stopped on something that is not a bad row
                                          (unreadable, empty or undecodable file, write failure) */
    bool transient;                    /* ... and it was a write failing with ENOSPC, EIO or
                                          EDQUOT: running the batch again may succeed */
    struct ing_err first_error;        /* the first row error (file/row/field filled) */
    json_t *errors;                    /* new array of row errors (capped at 1000): {file,row,
                                          offset,field,code,message}; caller decrefs */
    json_t *preview;                   /* new array of converted rows, or NULL */
    json_t *files;                     /* new array of the part files written, one
                                          {"name":"part-00000.parquet","size":bytes,"records":n}
                                          each (the shape catalog_batch_finish takes) */
};

/* Run the engine. Returns 0 when every record was valid (or failures stayed within
 * max_failed_rows), ING_E* otherwise; batch-level failures (unreadable file, empty file, a
 * compressed file that does not decompress, a failed write) come back as the return code with err
 * filled and res->batch_error set (and an item in res->errors), row failures in res. Input files
 * compressed with gzip or zstd are recognised by their magic bytes and decompressed on the fly
 * (inread.h); input_bytes counts the bytes as stored. res must be freed with engine_result_free
 * either way. */
int engine_run(const struct xdm_plan *plan, const struct engine_file *files, size_t nfiles,
               const struct engine_opts *opts, const char *out_dir, struct engine_result *res,
               struct ing_err *err);
void engine_result_free(struct engine_result *res);

/*
 * Speculative runs: one plain JSON Lines file read while it is still being uploaded, so that the
 * processing overlaps the upload. The run reads only bytes the source says are there (blocking
 * for more), cuts lines only below that mark, and writes its part files into a private folder.
 * When the source gives the file's final size, what is left is cut at a line start into two
 * ranges (opts.threads >= 2): where a two-thread run of the whole file cuts it when the reader
 * has not passed that line yet (the part files are then that run's), else in the middle of what
 * is left when that is at least opts.split_min_bytes; the second range runs on a thread of its
 * own. Bad rows are kept as the parallel path keeps them (spilled,
 * numbered per range); nothing is reported until the run is adopted.
 *
 * engine_run adopts a finished run given in engine_file.spec when it is usable: the file at
 * engine_file.path is the very file it read (same device and inode, and the final size it was
 * given, if it got one), the opts match (format JSON, not multi-line, the same row limit,
 * previews and Parquet options, diagnostics on or off alike), no write fault is pending, and it
 * met no batch-level failure (a read error, the source giving up, a compressed or array file).
 * Its ranges are then merged exactly as the parallel path merges its own (row numbers, errors[],
 * first_error, previews and diagnostics as a one-thread run has them; the part files are moved
 * into out_dir). Otherwise the file is read as usual.
 */
struct engine_source {
    /* Block until more than `have` bytes from the file's start are there, or the final size is
     * known (have < 0: never block, say how things stand): 0 with *avail (bytes there; the
     * final size once known) and *final_size (-1 while unknown), or a negative ING_E* when the
     * run must give up (err filled). */
    int (*wait)(void *ctx, int64_t have, int64_t *avail, int64_t *final_size,
                struct ing_err *err);
    void *ctx;
};

/* Set up a run over the file open on `fd` (taken: closed by engine_spec_free) writing into
 * `out_dir` (created). opts is copied (its diag and fault hook are ignored); `diagnostics` says
 * whether the raw text of bad rows must be kept for a diagnostics writer at adoption. */
int engine_spec_new(struct engine_spec **out, const struct xdm_plan *plan,
                    const struct engine_opts *opts, bool diagnostics, int fd,
                    const struct engine_source *src, const char *out_dir, struct ing_err *err);
/* Read the file to its end (or to the row limit, or until the source gives up or
 * engine_spec_stop). Blocks; call it on a thread of its own, once. */
void engine_spec_run(struct engine_spec *s);
/* Ask a run to stop at its next record (it is then unusable). Any thread. */
void engine_spec_stop(struct engine_spec *s);
/* After engine_spec_run returned (or without it ever running): close the file, remove part files
 * not adopted and the folder. NULL is a no-op. */
void engine_spec_free(struct engine_spec *s);

#endif
