/*
 * inread.c - plain, gzip and zstd input files as one stream of bytes; see inread.h.
 *
 * The reader keeps one input buffer of compressed bytes. At open it reads the first bytes into
 * that buffer to recognise the format; a plain file's first bytes are then handed out from the
 * buffer before reading on from the descriptor, so nothing is read twice and no seek is needed.
 */
#include "ingest/inread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "util/mem.h"

#define INREAD_CHUNK ((size_t)256 << 10)

struct inread {
    int fd;
    enum inread_kind kind;
    unsigned char *in;          /* compressed (or, for plain files, the first) bytes */
    size_t in_pos, in_len;
    bool in_eof;                /* the descriptor has no more bytes */
    bool corrupt;
    bool pending;               /* the last decode call filled the output: more may wait */
    bool unit_done;             /* the last gzip member / zstd frame ended cleanly */
    z_stream z;
    bool z_live;
    ZSTD_DStream *zs;
};

const char *inread_kind_name(enum inread_kind kind)
{
    switch (kind) {
    case INREAD_GZIP: return "gzip";
    case INREAD_ZSTD: return "zstd";
    default: return "plain";
    }
}

/* Read more compressed bytes after the unread ones. 0 or ING_EIO. */
static int fill(struct inread *r, struct ing_err *err)
{
    if (r->in_pos > 0) {
        memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
        r->in_len -= r->in_pos;
        r->in_pos = 0;
    }
    while (r->in_len < INREAD_CHUNK) {
        ssize_t n = read(r->fd, r->in + r->in_len, INREAD_CHUNK - r->in_len);
        if (n > 0) {
            r->in_len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            r->in_eof = true;
            return 0;
        }
        if (errno != EINTR)
            return ing_err_errno(err, errno, "cannot read the input file");
    }
    return 0;
}

static int64_t corrupt(struct inread *r, struct ing_err *err, const char *why)
{
    r->corrupt = true;
    return ing_err_set(err, ING_EINVAL, "The %s-compressed file cannot be decompressed: %s.",
                       inread_kind_name(r->kind), why);
}

enum inread_kind inread_kind_of(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return INREAD_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return INREAD_ZSTD;
    return INREAD_PLAIN;
}

int inread_open(struct inread **out, int fd, struct ing_err *err)
{
    struct inread *r = xcalloc(1, sizeof(*r));
    r->fd = fd;
    r->in = xmalloc(INREAD_CHUNK);
    int rc = 0;
    /* At least 4 bytes (the longest magic) unless the file is shorter. */
    while (r->in_len < 4 && !r->in_eof && rc == 0)
        rc = fill(r, err);
    if (rc != 0)
        goto out;
    r->kind = inread_kind_of(r->in, r->in_len);
    if (r->kind == INREAD_GZIP) {
        /* 15 window bits + 16: a gzip wrapper, not zlib's. */
        if (inflateInit2(&r->z, 15 + 16) != Z_OK) {
            rc = ing_err_set(err, ING_EINTERNAL, "zlib cannot start a decoder");
            goto out;
        }
        r->z_live = true;
    } else if (r->kind == INREAD_ZSTD) {
        r->zs = ZSTD_createDStream();
        if (!r->zs || ZSTD_isError(ZSTD_initDStream(r->zs))) {
            rc = ing_err_set(err, ING_EINTERNAL, "zstd cannot start a decoder");
            goto out;
        }
    }
out:
    if (rc != 0) {
        inread_free(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

enum inread_kind inread_kind(const struct inread *r)
{
    return r->kind;
}

bool inread_corrupt(const struct inread *r)
{
    return r->corrupt;
}

static int64_t read_plain(struct inread *r, unsigned char *buf, size_t n, struct ing_err *err)
{
    if (r->in_pos < r->in_len) {
        size_t k = r->in_len - r->in_pos < n ? r->in_len - r->in_pos : n;
        memcpy(buf, r->in + r->in_pos, k);
        r->in_pos += k;
        return (int64_t)k;
    }
    if (r->in_eof)
        return 0;
    for (;;) {
        ssize_t got = read(r->fd, buf, n);
        if (got >= 0)
            return got;
        if (errno != EINTR)
            return ing_err_errno(err, errno, "cannot read the input file");
    }
}

static int64_t read_gzip(struct inread *r, unsigned char *buf, size_t n, struct ing_err *err)
{
    for (;;) {
        if (r->in_pos == r->in_len && !r->in_eof) {
            int rc = fill(r, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (r->in_pos == r->in_len && r->in_eof && !r->pending)
            return r->unit_done ? 0 : corrupt(r, err, "the data ends in the middle of the stream");
        if (r->unit_done) {
            /* Bytes after a finished member: the next member of a concatenated file. */
            inflateReset(&r->z);
            r->unit_done = false;
        }
        /* zlib counts in uInt; our buffers are far smaller than 4 GiB. */
        r->z.next_in = r->in + r->in_pos;
        r->z.avail_in = (uInt)(r->in_len - r->in_pos);
        r->z.next_out = buf;
        r->z.avail_out = (uInt)n;
        int zrc = inflate(&r->z, Z_NO_FLUSH);
        r->in_pos = r->in_len - r->z.avail_in;
        size_t produced = n - r->z.avail_out;
        r->pending = r->z.avail_out == 0;
        if (zrc == Z_STREAM_END) {
            r->unit_done = true;
            r->pending = false;
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return corrupt(r, err, r->z.msg ? r->z.msg : "invalid data");
        }
        if (produced > 0)
            return (int64_t)produced;
    }
}

static int64_t read_zstd(struct inread *r, unsigned char *buf, size_t n, struct ing_err *err)
{
    for (;;) {
        if (r->in_pos == r->in_len && !r->in_eof) {
            int rc = fill(r, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (r->in_pos == r->in_len && r->in_eof && !r->pending)
            return r->unit_done ? 0 : corrupt(r, err, "the data ends in the middle of a frame");
        ZSTD_inBuffer ib = {r->in, r->in_len, r->in_pos};
        ZSTD_outBuffer ob = {buf, n, 0};
        size_t zrc = ZSTD_decompressStream(r->zs, &ob, &ib);
        if (ZSTD_isError(zrc))
            return corrupt(r, err, ZSTD_getErrorName(zrc));
        r->in_pos = ib.pos;
        /* 0 means a frame was decoded and flushed whole. */
        r->unit_done = zrc == 0;
        r->pending = ob.pos == n;
        if (ob.pos > 0)
            return (int64_t)ob.pos;
    }
}

int64_t inread_read(void *rv, void *buf, size_t n, struct ing_err *err)
{
    struct inread *r = rv;
    if (n == 0)
        return 0;
    if (r->corrupt)
        return corrupt(r, err, "the data was found corrupt earlier");
    /* zlib's counters are 32-bit. */
    if (n > ((size_t)1 << 30))
        n = (size_t)1 << 30;
    switch (r->kind) {
    case INREAD_GZIP: return read_gzip(r, buf, n, err);
    case INREAD_ZSTD: return read_zstd(r, buf, n, err);
    default: return read_plain(r, buf, n, err);
    }
}

void inread_free(struct inread *r)
{
    if (!r)
        return;
    if (r->z_live)
        inflateEnd(&r->z);
    ZSTD_freeDStream(r->zs);
    free(r->in);
    free(r);
}
