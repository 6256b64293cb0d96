/*
 * jsplit.h - streaming record splitter for JSON input files.
 *
 * Cuts a file into records without parsing them: JSON Lines (one value per line, blank lines
 * skipped), one top-level JSON array of records, or concatenated multi-line values. It reads the
 * file in fixed chunks, so memory is bounded by two chunks plus the largest record (capped by
 * opts.max_record; a longer record is ING_ETOOBIG). Each record comes with its 1-based row number
 * and byte offset, for diagnostics.
 *
 * Mode selection: JSPLIT_AUTO looks at the first non-blank byte: '[' means an array of records,
 * anything else means JSON Lines, or concatenated values when `multiline` is set. (AEP users PUT
 * array files without isMultiLineJson in Adobe's own tutorial; reading them as arrays is what they
 * expect.) A UTF-8 byte-order mark at the start is skipped.
 *
 * Errors: in JSON Lines a broken line is one corrupt record: jsplit_next returns it with
 * JSPLIT_CORRUPT and carries on at the next line. In array/multi-line mode the splitter can only
 * resynchronise where the structure allows it; when it cannot, it returns ING_ESYNTAX for the rest
 * of the file.
 *
 * Threads: one splitter per thread. The record bytes returned are borrowed until the next call.
 */
#ifndef ING_JSON_JSPLIT_H
#define ING_JSON_JSPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum jsplit_mode { JSPLIT_AUTO = 0, JSPLIT_LINES, JSPLIT_ARRAY, JSPLIT_CONCAT };

struct jsplit_opts {
    enum jsplit_mode mode;
    bool multiline;          /* isMultiLineJson: with AUTO, non-array files are JSPLIT_CONCAT */
    size_t chunk_bytes;      /* read size, default 4 MiB */
    size_t max_record;       /* default 64 MiB */
    /* JSON Lines: find where lines end and nothing more (one memchr per line); records come
     * with `unchecked` set and `corrupt` false. A caller that parses each record anyway asks
     * jsplit_line_corrupt only for the records that fail, and so reads each byte once. */
    bool lazy_corrupt;
};

struct jsplit_record {
    const char *data;        /* record bytes (not NUL-terminated), borrowed */
    size_t len;
    int64_t row;             /* 1-based record number in the file */
    int64_t offset;          /* byte offset of the record's first byte */
    bool corrupt;            /* the splitter already knows this record is not valid JSON */
    bool unchecked;          /* lazy_corrupt: `corrupt` was not computed for this line */
};

struct jsplit;

/* Split the file open on `fd` (borrowed; read from its current position). */
struct jsplit *jsplit_new(int fd, const struct jsplit_opts *opts);
/* A pull source of input bytes (e.g. a decompressor): fill up to n bytes of buf and return how
 * many (> 0), 0 at the end of input, or a negative ING_E* code with err filled. */
typedef int64_t jsplit_read_fn(void *ctx, void *buf, size_t n, struct ing_err *err);
/* Split what `fn` reads (ctx borrowed until jsplit_free). Offsets count the bytes fn returned. */
struct jsplit *jsplit_new_reader(jsplit_read_fn *fn, void *ctx, const struct jsplit_opts *opts);
/* Split an in-memory buffer (borrowed until jsplit_free). */
struct jsplit *jsplit_new_mem(const void *data, size_t len, const struct jsplit_opts *opts);
/* Next record: returns 1 and fills *rec, 0 at the end of input, or a negative ING_E* code with err
 * filled (row/offset set) when the file cannot be read on. */
int jsplit_next(struct jsplit *s, struct jsplit_record *rec, struct ing_err *err);
/* What `corrupt` would have been for a JSON Lines record returned `unchecked` (its data and
 * len): brackets that do not match, or a string or container left open at the line's end. */
bool jsplit_line_corrupt(const char *data, size_t len);
/* Mode actually in use (after AUTO detection; JSPLIT_AUTO before the first record). */
enum jsplit_mode jsplit_mode(const struct jsplit *s);
/* Bytes consumed so far. */
int64_t jsplit_bytes_read(const struct jsplit *s);
void jsplit_free(struct jsplit *s); /* NULL is a no-op */

#endif
