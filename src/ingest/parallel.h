/*
 * parallel.h - the pieces for ingesting one JSON Lines file on several cores.
 *
 * A JSON Lines file can be cut at any line break: JSON strings cannot hold a raw newline, so every
 * '\n' ends a record (or a corrupt line, which is a record of its own anyway). par_split_lines
 * cuts a file into byte ranges that begin at line starts; each range then goes through its own
 * splitter, shredder and pq_writer on its own thread (par_run), writing its own part file, and the
 * only thing the ranges share is the read-only plan. Row numbers in a range count from 1; the
 * caller adds the records of the earlier ranges once they are known (after the join), so no range
 * waits for another. Memory stays bounded: one row group per thread.
 *
 * How engine_run uses it (see the report of issue 4; engine.c is not changed here):
 *   for a JSON Lines input (jsplit mode LINES, i.e. first byte not '[' and not multiline) larger
 *   than PAR_MIN_SPLIT_BYTES, par_split_lines(fd, size, nthreads) gives the ranges; par_run calls
 *   one worker per range that opens jsplit_new_reader(par_read, &reader) over
 *   par_reader_init(fd, range), a shred_new(plan) and its own part file (part numbers assigned in
 *   range order, so output names stay deterministic), and runs the same per-record loop as today
 *   into a per-range engine_result; after the join the results are merged in range order: counts
 *   summed, row errors renumbered by the records of the earlier ranges and truncated to the cap,
 *   part files listed in order. A batch-level error in any range fails the run as today.
 *
 * Threads: par_split_lines and the reader use pread only, so all ranges share one fd.
 */
#ifndef ING_INGEST_PARALLEL_H
#define ING_INGEST_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Below this a file is not worth a second thread. */
#define PAR_MIN_SPLIT_BYTES ((int64_t)8 << 20)
#define PAR_MAX_RANGES 64

struct par_range {
    int64_t start;   /* first byte (a line start) */
    int64_t end;     /* one past the last byte (after a '\n', or the file size) */
};

/*
 * Cut bytes [0, size) of the file open on fd into at most `want` ranges of about equal size that
 * begin at line starts, in order, covering the file without overlap; a range is never empty, so a
 * file with few or very long lines may yield fewer. Returns the number of ranges (>= 1 when size
 * > 0, 0 for an empty file) or a negative ING_E* (a read failure).
 */
int par_split_lines(int fd, int64_t size, int want, struct par_range *out, struct ing_err *err);

/*
 * The first line start at or after `from` in bytes [0, size) of the file: 0 for from <= 0, else
 * one past the first '\n' at or after from - 1 (so `from` itself when a line starts there), or
 * size when no line starts there; a negative ING_E* when a read fails.
 */
int64_t par_next_line_start(int fd, int64_t from, int64_t size, struct ing_err *err);

/* A pull reader over one range, in the shape of jsplit_read_fn. */
struct par_reader {
    int fd;
    int64_t pos, end;
};
void par_reader_init(struct par_reader *r, int fd, const struct par_range *range);
/* Fill up to n bytes: returns the count (> 0), 0 at the end of the range, or ING_EIO. */
int64_t par_read(void *ctx, void *buf, size_t n, struct ing_err *err);

/* Work on item `index`; 0 or a negative ING_E* with err filled. */
typedef int par_work_fn(void *ctx, int index, struct ing_err *err);

/*
 * Run work(ctx, i) for every i in [0, n) on up to `threads` threads (the calling thread is one of
 * them) and wait for all. Items are taken in order by whichever thread is free. Returns 0 when
 * every item returned 0; otherwise the code of the lowest-numbered failed item, with its error in
 * err (every item still runs: each owns resources the caller must see finished).
 */
int par_run(int threads, int n, par_work_fn *work, void *ctx, struct ing_err *err);

#endif
