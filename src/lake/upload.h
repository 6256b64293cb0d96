/*
 * upload.h - the byte-range bookkeeping of large-file uploads (Batch Ingestion API, AEP section
 * 1.4): parsing Content-Range, merging the ranges received, checking a finished upload for gaps
 * and overlaps, and placing one chunk into the sparse part file at its offset (by rename when it
 * can become the part file, else by copy).
 *
 * A large file arrives as chunks in any order. Every acknowledged chunk is one inclusive range
 * [first, last] recorded durably by the caller (the catalog keeps the list in the file's upload
 * document); the range list is kept as received, unmerged, because AEP detects overlapping chunks
 * only when the file is completed. Ranges are JSON arrays [[first, last], ...] in the store.
 *
 * Threads: every function is reentrant; the caller serialises writers of one part file, except
 * the chunk sinks below, which keep their own registry of chunks in flight.
 */
#ifndef ING_LAKE_UPLOAD_H
#define ING_LAKE_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

/* One chunk: bytes first..last of the file, both included. */
struct upl_range {
    int64_t first;
    int64_t last;
};

/* Whether two inclusive byte ranges share a byte. */
bool upl_ranges_overlap(const struct upl_range *a, const struct upl_range *b);

/*
 * Parse a Content-Range header: "bytes a-b/total", "bytes a-b/" followed by a star (size not
 * known) or "bytes a-b" (also with '=' after "bytes"). *total is -1 when not given. ING_EINVAL (err says why) for anything else, for
 * b < a, or for b >= total.
 */
int upl_parse_content_range(const char *header, struct upl_range *out, int64_t *total,
                            struct ing_err *err);

/* Sort `ranges` in place by first, then last. */
void upl_sort(struct upl_range *ranges, size_t n);

/* Merge: write to out (room for n) the sorted union of the ranges, touching or overlapping ones
 * joined; returns how many. `in` and `out` may be the same array. */
size_t upl_merge(const struct upl_range *in, size_t n, struct upl_range *out);

/* Bytes covered by the union of the ranges. */
int64_t upl_covered_bytes(const struct upl_range *ranges, size_t n);

/*
 * Whether the chunks make one whole file: no two chunks overlap (a chunk sent twice with the same
 * bounds counts once: the caller keeps one copy), no byte is missing from 0 to the end, and when
 * `total` >= 0 the end is total - 1. On success *size is the file size. ING_EINVAL with a message
 * naming the first gap or overlap otherwise.
 */
int upl_check_complete(const struct upl_range *ranges, size_t n, int64_t total, int64_t *size,
                       struct ing_err *err);

/* Append "bytes=0-1023,2048-4095" (the merged ranges; "bytes=" alone when none) to out. */
int upl_format(const struct upl_range *ranges, size_t n, struct buf *out);

/* Ranges out of their JSON form. *out is a new array (free()), NULL when n is 0. ING_EINVAL when
 * the JSON is not an array of [first, last] pairs of non-negative integers with first <= last. */
int upl_from_json(const json_t *arr, struct upl_range **out, size_t *n, struct ing_err *err);
json_t *upl_to_json(const struct upl_range *ranges, size_t n);

/*
 * Copy `length` bytes from the start of file `src_path` into `part_path` (which must exist) at
 * `offset`, then fsync the part file, so the chunk is on disk before it is acknowledged. Uses
 * copy_file_range(2) (no bytes pass through user space) with a read/pwrite fallback.
 * ING_EINVAL when src is shorter than length; ING_EIO (errno kept) on I/O errors.
 */
int upl_copy_chunk(const char *src_path, const char *part_path, int64_t offset, int64_t length,
                   struct ing_err *err);

/*
 * Make the spooled chunk `src_path` the part file by rename (no copy), for a chunk at offset 0
 * of an upload that has no chunk recorded yet. The caller has fsynced src_path and keeps every
 * other writer of the part file out; the rename is made durable (fsync of both folders) here, so
 * on return the chunk is on disk under the part file's name. *placed is false (and nothing
 * changed) when the two are on different file systems: the caller copies instead.
 */
int upl_place_chunk(const char *src_path, const char *part_path, bool *placed,
                    struct ing_err *err);

/*
 * Chunk sinks: a chunk's body written straight into the part file at its offset while it
 * arrives (no spool file, no copy). A sink is registered, per part file, with its range until
 * upl_sink_free; two sinks of one part file never overlap, so bytes in flight never mix. The
 * caller acknowledges the chunk only after upl_sink_sync (the bytes are on disk) and after
 * checking, under the lock that orders it with INITIALIZE and COMPLETE, that the sink was not
 * fenced. Bytes of a chunk that is never acknowledged (cut short, refused, crashed) lie in a
 * part of the file that no record covers: COMPLETE refuses the gap or cuts them off.
 */
struct upl_sink;

/* Open `part_path` (which must exist) for the bytes of `range` and register the sink.
 * ING_EEXIST when the range overlaps a sink in flight for that part file; ING_EIO (errno kept)
 * when the part file cannot be opened. */
int upl_sink_open(struct upl_sink **out, const char *part_path, struct upl_range range,
                  struct ing_err *err);

/* The next n bytes of the body, written at the range's next offset. Bytes past the end of the
 * range are counted but never written; after a write error or a fence nothing more is written
 * (upl_sink_sync reports it). The write-back to disk is started every few MiB. */
void upl_sink_write(struct upl_sink *s, const void *data, size_t n);

/* The body is complete: ING_EINVAL when it did not hold exactly the range's bytes, ING_ESTATE
 * when the sink was fenced, ING_EIO for a write error; else the part file is fsynced (the
 * chunk's bytes are on disk) and 0. */
int upl_sink_sync(struct upl_sink *s, struct ing_err *err);

/* Whether upl_fence hit this sink. */
bool upl_sink_fenced(struct upl_sink *s);

/* Unregister and close. NULL is a no-op. */
void upl_sink_free(struct upl_sink *s);

/* Stop every sink of `part_path` in flight: their later bytes are dropped and they report
 * fenced. Called before the part file is moved, replaced or started again (COMPLETE,
 * INITIALIZE, the rename of a first chunk), with every acknowledging writer kept out. */
void upl_fence(const char *part_path);

/* Whether a sink of `part_path` is in flight whose range overlaps `range` (any sink of it when
 * range is NULL). */
bool upl_inflight(const char *part_path, const struct upl_range *range);

/* The chunk was recorded (acknowledged): its bytes are part of the upload for good. A sink freed
 * without this after writing bytes cancels the watch its bytes were reported to (below; not a
 * newer watch of the same path): those bytes may be sent again differently. */
void upl_sink_ack(struct upl_sink *s);

/*
 * Watches of the received prefix, for processing a file while it arrives (the pipeline's
 * speculative runs). A watch follows one part file from a fresh start (nothing written yet):
 * the chunk sinks report the bytes they write, and the watch keeps the prefix mark, the length
 * of the prefix from byte 0 that has been written (the union of the sinks' written bytes).
 * Readers wait on it for more. The file's COMPLETE seals it with the final size; anything that
 * may change bytes already written (INITIALIZE again, a spooled chunk placed by rename or copy,
 * a chunk written but not acknowledged, ABORT, a new file over the same path) cancels it, for
 * good. Watches live in memory only: after a restart there are none.
 */
struct upl_watch;

/* Start watching `part_path` from nothing written, replacing (and cancelling) an earlier watch
 * of it. Sinks of the path in flight and not fenced report to it from now on, with the bytes
 * they really wrote so far; fenced ones count for nothing. `expected_size` is the size the upload announces (Content-Range's total; -1 when not
 * given): once the prefix reaches it, waits report it as the final size before the seal, so a
 * reader can plan its end early (whoever uses what it read checks that the seal agrees). The
 * caller holds one reference (upl_watch_release). */
struct upl_watch *upl_watch_start(const char *part_path, int64_t expected_size);
/* Wait until the prefix is longer than `have` bytes (have < 0: no wait), the final size is known
 * (sealed, or the prefix reached the expected size) or the watch is cancelled. 0 with *avail
 * (the prefix mark; the final size once known) and *final_size (-1 while not known), or
 * ING_ESTATE (err filled) once cancelled. */
int upl_watch_wait(struct upl_watch *w, int64_t have, int64_t *avail, int64_t *final_size,
                   struct ing_err *err);
/* As upl_watch_wait, but back after at most `timeout_ms` without news (then *avail may be
 * <= have), so a reader can look around (is the upload still wanted?) while it waits. */
int upl_watch_wait_ms(struct upl_watch *w, int64_t have, int64_t timeout_ms, int64_t *avail,
                      int64_t *final_size, struct ing_err *err);
/* Whether the watch was cancelled; *final_size is its sealed size (-1 when not sealed: an
 * expected size the prefix reached does not count here). */
bool upl_watch_state(struct upl_watch *w, int64_t *final_size);
/* One more reference (for another holder). */
void upl_watch_ref(struct upl_watch *w);
/* Give the caller's reference back. NULL is a no-op. */
void upl_watch_release(struct upl_watch *w);
/* The bytes [first, end) of `part_path` were written (the sinks report to their own watch;
 * exported for tests). Each byte is reported once, so bytes written again (below the mark, or
 * over a piece past it) cancel the watch: a reader may have read the old ones. */
void upl_watch_wrote(const char *part_path, int64_t first, int64_t end);
/* The file is complete with `size` bytes: readers may read to the end. A watch whose written
 * bytes ran past `size` is cancelled instead (a reader may have read them). */
void upl_watch_seal(const char *part_path, int64_t size);
/* Cancel this watch (if still listed, it is forgotten). */
void upl_watch_abandon(struct upl_watch *w);
/* Cancel the watch of `part_path` (if any) and forget it. */
void upl_watch_cancel(const char *part_path);

#endif
