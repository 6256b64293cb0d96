/*
 * inread.h - the bytes of one input file, decompressed when it is compressed.
 *
 * AEP users upload gzip or zstd files under any name, so the compression is recognised by the
 * magic bytes at the start of the file (gzip 1f 8b, zstd 28 b5 2f fd), not by the extension.
 * Decompression streams through fixed buffers (zlib inflate, ZSTD_decompressStream): memory does
 * not depend on the file size. Concatenated gzip members and zstd frames are read one after the
 * other, as the command-line tools do.
 *
 * A compressed file that does not decompress (bad data, a truncated stream) is reported with
 * ING_EINVAL and inread_corrupt() turns true: it is a batch-level error, not a bad row.
 *
 * Threads: one reader per thread.
 */
#ifndef ING_INGEST_INREAD_H
#define ING_INGEST_INREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum inread_kind { INREAD_PLAIN = 0, INREAD_GZIP, INREAD_ZSTD };

struct inread;

/* Look at the first bytes of `fd` (borrowed, read from its current position) and set up the
 * matching decoder. 0 or ING_EIO (err filled). */
int inread_open(struct inread **out, int fd, struct ing_err *err);
enum inread_kind inread_kind(const struct inread *r);
/* "plain", "gzip" or "zstd". */
const char *inread_kind_name(enum inread_kind kind);
/* The compression the first n bytes of a file announce (INREAD_PLAIN when none, or when n is
 * too short for the magic). The one rule inread_open and the engine's range checks share. */
enum inread_kind inread_kind_of(const uint8_t *p, size_t n);
/* Up to n decoded bytes: > 0, 0 at the end, or a negative ING_E* code with err filled (ING_EIO
 * for a failed read, ING_EINVAL for compressed data that does not decode). The signature is
 * jsplit_read_fn's, so a reader feeds the splitter directly. */
int64_t inread_read(void *r, void *buf, size_t n, struct ing_err *err);
/* True once the compressed data was found to be corrupt or truncated. */
bool inread_corrupt(const struct inread *r);
void inread_free(struct inread *r); /* NULL is a no-op */

#endif
