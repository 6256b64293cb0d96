/*
 * upload.c - byte ranges of large-file uploads and placing chunks in the part file; see upload.h.
 *
 * Chunks land in a sparse part file at their offset, so their order does not matter; whether the
 * file is whole is decided from the recorded ranges alone, once, at completion. The first chunk
 * of an upload (offset 0, nothing recorded yet) becomes the part file by rename, so a file sent
 * in one chunk, or the first chunk of one sent in order, is never copied. Chunks that arrive
 * through a sink are written straight into the part file at their offset while they arrive; a
 * registry of the sinks in flight (one process-wide list) keeps their ranges apart and lets
 * COMPLETE and INITIALIZE fence them off before the part file moves.
 */
#include "lake/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/mem.h"

/* Unsigned decimal without sign or overflow; advances *p. */
static bool parse_u63(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

int upl_parse_content_range(const char *header, struct upl_range *out, int64_t *total,
                            struct ing_err *err)
{
    *total = -1;
    if (!header)
        return ing_err_set(err, ING_EINVAL, "the Content-Range header is required, e.g. "
                                            "\"bytes 0-1048575/4194304\"");
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bytes", 5) != 0)
        goto bad;
    p += 5;
    if (*p != ' ' && *p != '=')
        goto bad;
    while (*p == ' ' || *p == '=')
        p++;
    struct upl_range r;
    if (!parse_u63(&p, &r.first) || *p++ != '-' || !parse_u63(&p, &r.last))
        goto bad;
    if (*p == '/') {
        p++;
        if (*p == '*')
            p++;
        else if (!parse_u63(&p, total))
            goto bad;
    }
    while (*p == ' ')
        p++;
    if (*p)
        goto bad;
    if (r.last < r.first)
        return ing_err_set(err, ING_EINVAL,
                           "Content-Range '%s': the last byte comes before the first", header);
    if (*total >= 0 && r.last >= *total)
        return ing_err_set(err, ING_EINVAL,
                           "Content-Range '%s': the range ends past the file size", header);
    *out = r;
    return 0;
bad:
    *total = -1;
    return ing_err_set(err, ING_EINVAL,
                       "Content-Range must be \"bytes <first>-<last>[/<size>]\" with inclusive "
                       "byte positions, not '%.80s'", header);
}

static int cmp_range(const void *a, const void *b)
{
    const struct upl_range *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    if (x->last != y->last)
        return x->last < y->last ? -1 : 1;
    return 0;
}

void upl_sort(struct upl_range *ranges, size_t n)
{
    if (n > 1)
        qsort(ranges, n, sizeof(*ranges), cmp_range);
}

size_t upl_merge(const struct upl_range *in, size_t n, struct upl_range *out)
{
    if (n == 0)
        return 0;
    if (out != in)
        memmove(out, in, n * sizeof(*out));
    upl_sort(out, n);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        /* Touching ranges (last + 1 == first) make one; last < INT64_MAX always (parse bound). */
        if (out[i].first <= out[k].last || out[i].first - 1 == out[k].last) {
            if (out[i].last > out[k].last)
                out[k].last = out[i].last;
        } else {
            out[++k] = out[i];
        }
    }
    return k + 1;
}

int64_t upl_covered_bytes(const struct upl_range *ranges, size_t n)
{
    if (n == 0)
        return 0;
    struct upl_range *m = xmalloc(n * sizeof(*m));
    size_t k = upl_merge(ranges, n, m);
    int64_t sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += m[i].last - m[i].first + 1;
    free(m);
    return sum;
}

int upl_check_complete(const struct upl_range *ranges, size_t n, int64_t total, int64_t *size,
                       struct ing_err *err)
{
    *size = 0;
    if (n == 0)
        return ing_err_set(err, ING_EINVAL, "no bytes of the file were received");
    struct upl_range *s = xmalloc(n * sizeof(*s));
    memcpy(s, ranges, n * sizeof(*s));
    upl_sort(s, n);
    int rc = 0;
    int64_t next = 0; /* the first byte not yet covered */
    for (size_t i = 0; i < n; i++) {
        if (s[i].first > next) {
            rc = ing_err_set(err, ING_EINVAL, "bytes %" PRId64 "-%" PRId64 " of the file are missing",
                             next, s[i].first - 1);
            goto out;
        }
        if (s[i].first < next) {
            rc = ing_err_set(err, ING_EINVAL,
                             "chunks overlap: bytes %" PRId64 "-%" PRId64 " and %" PRId64
                             "-%" PRId64 " were both sent",
                             s[i - 1].first, s[i - 1].last, s[i].first, s[i].last);
            goto out;
        }
        next = s[i].last + 1;
    }
    if (total >= 0 && next != total) {
        rc = total > next ? ing_err_set(err, ING_EINVAL,
                                        "bytes %" PRId64 "-%" PRId64 " of the file are missing",
                                        next, total - 1)
                          : ing_err_set(err, ING_EINVAL,
                                        "the chunks end at byte %" PRId64
                                        " but the file size is %" PRId64, next - 1, total);
        goto out;
    }
    *size = next;
out:
    free(s);
    return rc;
}

int upl_format(const struct upl_range *ranges, size_t n, struct buf *out)
{
    int rc = buf_append_str(out, "bytes=");
    if (rc != 0 || n == 0)
        return rc;
    struct upl_range *m = xmalloc(n * sizeof(*m));
    size_t k = upl_merge(ranges, n, m);
    for (size_t i = 0; rc == 0 && i < k; i++)
        rc = buf_printf(out, "%s%" PRId64 "-%" PRId64, i ? "," : "", m[i].first, m[i].last);
    free(m);
    return rc;
}

int upl_from_json(const json_t *arr, struct upl_range **out, size_t *n, struct ing_err *err)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return ing_err_set(err, ING_EINVAL, "upload ranges must be an array");
    size_t len = json_array_size(arr);
    if (len == 0)
        return 0;
    struct upl_range *r = xmalloc(len * sizeof(*r));
    for (size_t i = 0; i < len; i++) {
        const json_t *pair = json_array_get(arr, i);
        const json_t *a = json_array_get(pair, 0), *b = json_array_get(pair, 1);
        if (json_array_size(pair) != 2 || !json_is_integer(a) || !json_is_integer(b) ||
            json_integer_value(a) < 0 || json_integer_value(b) < json_integer_value(a)) {
            free(r);
            return ing_err_set(err, ING_EINVAL, "upload range %zu is not a [first, last] pair", i);
        }
        r[i] = (struct upl_range){json_integer_value(a), json_integer_value(b)};
    }
    *out = r;
    *n = len;
    return 0;
}

json_t *upl_to_json(const struct upl_range *ranges, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[I, I]", (json_int_t)ranges[i].first,
                                             (json_int_t)ranges[i].last));
    return arr;
}

/* The portable path: through a bounded buffer, never the whole chunk. */
static int copy_by_pwrite(int in, int outfd, int64_t src_off, int64_t dst_off, int64_t left,
                          struct ing_err *err)
{
    enum { COPY_BUF = 1 << 20 };
    char *b = xmalloc(COPY_BUF);
    int rc = 0;
    while (left > 0) {
        size_t want = left < COPY_BUF ? (size_t)left : COPY_BUF;
        ssize_t r = pread(in, b, want, src_off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ing_err_errno(err, errno, "reading the uploaded chunk");
            goto out;
        }
        if (r == 0) {
            rc = ing_err_set(err, ING_EINVAL, "the uploaded chunk is shorter than its range");
            goto out;
        }
        int werr = fs_pwrite_all(outfd, b, (size_t)r, dst_off);
        if (werr) {
            rc = ing_err_errno(err, werr, "writing the part file");
            goto out;
        }
        src_off += r;
        dst_off += r;
        left -= r;
    }
out:
    free(b);
    return rc;
}

int upl_copy_chunk(const char *src_path, const char *part_path, int64_t offset, int64_t length,
                   struct ing_err *err)
{
    int in = -1, outfd = -1, rc = 0;
    if (offset < 0 || length < 0)
        return ing_err_set(err, ING_EINVAL, "negative chunk offset or length");
    in = open(src_path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = ing_err_errno(err, errno, "opening the uploaded chunk");
        goto out;
    }
    outfd = open(part_path, O_WRONLY | O_CLOEXEC);
    if (outfd < 0) {
        rc = ing_err_errno(err, errno, "opening the part file");
        goto out;
    }
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        rc = ing_err_errno(err, errno, "reading the uploaded chunk");
        goto out;
    }
    if (sb.st_size < length) {
        rc = ing_err_set(err, ING_EINVAL, "the uploaded chunk is shorter than its range");
        goto out;
    }
    loff_t src_off = 0, dst_off = offset;
    int64_t left = length;
    while (left > 0) {
        size_t want = left > (int64_t)(1 << 30) ? (size_t)1 << 30 : (size_t)left;
        ssize_t n = copy_file_range(in, &src_off, outfd, &dst_off, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                      errno == EOPNOTSUPP)) {
            rc = copy_by_pwrite(in, outfd, src_off, dst_off, left, err);
            if (rc != 0)
                goto out;
            break;
        }
        if (n < 0) {
            rc = ing_err_errno(err, errno, "copying the chunk into the part file");
            goto out;
        }
        if (n == 0) {
            rc = ing_err_set(err, ING_EINVAL, "the uploaded chunk is shorter than its range");
            goto out;
        }
        left -= n;
    }
    if (fsync(outfd) != 0)
        rc = ing_err_errno(err, errno, "fsync of the part file");
out:
    if (in >= 0)
        close(in);
    if (outfd >= 0 && close(outfd) != 0 && rc == 0)
        rc = ing_err_errno(err, errno, "closing the part file");
    return rc;
}

int upl_place_chunk(const char *src_path, const char *part_path, bool *placed,
                    struct ing_err *err)
{
    *placed = false;
    /* rename(2) first, so that EXDEV leaves both files as they were for the copy fallback. */
    if (rename(src_path, part_path) != 0) {
        if (errno == EXDEV)
            return 0;
        return ing_err_errno(err, errno, "moving the chunk into the part file");
    }
    *placed = true;
    int rc = fs_fsync_parent(part_path, err);
    if (rc == 0)
        rc = fs_fsync_parent(src_path, err);
    return rc;
}

/* ---- chunk sinks ------------------------------------------------------------------------- */

struct upl_sink {
    struct upl_sink *next;     /* registry list, under registry_mu */
    char *part_path;
    struct upl_range range;
    int fd;
    pthread_mutex_t mu;        /* one write at a time; fence waits for the current write */
    bool fenced;
    int write_errno;
    int64_t received;          /* body bytes seen, also past the range */
    int64_t written;           /* bytes of the range written into the part file, from its first
                                  (after a fence or an error nothing more is, whatever arrives) */
    int64_t kicked;            /* bytes whose write-back has been started */
    bool acked;                /* upl_sink_ack: the chunk was recorded */
    struct upl_watch *watch;   /* the watch its bytes are reported to (a reference), or NULL;
                                  under mu. Only that watch counts them, so only that one is
                                  cancelled when they turn out not to be the upload's. */
};

/*
 * Lock order: registry_mu, then a sink's mu, then watch_mu (a sink reports its bytes to its
 * watch under its own lock, so a watch sees each byte once, in the order written).
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct upl_sink *registry;

/* The watches (below) the sinks report to. */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct upl_watch *watch_find_locked(const char *part_path);
static void watch_ref_locked(struct upl_watch *w);
static void watch_unref_locked(struct upl_watch *w);
static void watch_cancel_locked(struct upl_watch *w);
static void watch_wrote_locked(struct upl_watch *w, int64_t first, int64_t end);

bool upl_ranges_overlap(const struct upl_range *a, const struct upl_range *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/* Under registry_mu. */
static bool inflight_locked(const char *part_path, const struct upl_range *range)
{
    for (const struct upl_sink *s = registry; s; s = s->next)
        if (strcmp(s->part_path, part_path) == 0 && (!range || upl_ranges_overlap(&s->range, range)))
            return true;
    return false;
}

int upl_sink_open(struct upl_sink **out, const char *part_path, struct upl_range range,
                  struct ing_err *err)
{
    *out = NULL;
    if (range.first < 0 || range.last < range.first)
        return ing_err_set(err, ING_EINVAL, "bad chunk range %" PRId64 "-%" PRId64, range.first,
                           range.last);
    int fd = open(part_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return ing_err_errno(err, errno, "opening the part file");
    pthread_mutex_lock(&registry_mu);
    if (inflight_locked(part_path, &range)) {
        pthread_mutex_unlock(&registry_mu);
        close(fd);
        return ing_err_set(err, ING_EEXIST,
                           "a chunk overlapping bytes %" PRId64 "-%" PRId64 " is being received",
                           range.first, range.last);
    }
    struct upl_sink *s = xcalloc(1, sizeof(*s));
    s->part_path = xstrdup(part_path);
    s->range = range;
    s->fd = fd;
    pthread_mutex_init(&s->mu, NULL);
    /* A watch started before this sink: the sink reports to it. One started later finds the
     * sink in the registry (upl_watch_start), so no sink is missed either way. */
    pthread_mutex_lock(&watch_mu);
    struct upl_watch *w = watch_find_locked(part_path);
    if (w) {
        watch_ref_locked(w);
        s->watch = w;
    }
    pthread_mutex_unlock(&watch_mu);
    s->next = registry;
    registry = s;
    pthread_mutex_unlock(&registry_mu);
    *out = s;
    return 0;
}

void upl_sink_write(struct upl_sink *s, const void *data, size_t n)
{
    if (!s || n == 0)
        return;
    pthread_mutex_lock(&s->mu);
    int64_t length = s->range.last - s->range.first + 1;
    int64_t at = s->received;
    s->received += (int64_t)n;
    if (s->fenced || s->write_errno || at >= length)
        goto out;
    /* Never past the range: those bytes belong to other chunks. */
    size_t want = (int64_t)n > length - at ? (size_t)(length - at) : n;
    if ((s->write_errno = fs_pwrite_all(s->fd, data, want, s->range.first + at)) != 0)
        goto out;
    int64_t from = s->range.first + at;
    at += (int64_t)want;
    s->written = at;
    fs_kick_writeback(s->fd, s->range.first, &s->kicked, s->written);
    /* Under the sink's lock, so a watch starting now (which takes this lock to read `written`)
     * counts these bytes exactly once. */
    if (s->watch) {
        pthread_mutex_lock(&watch_mu);
        watch_wrote_locked(s->watch, from, s->range.first + s->written);
        pthread_mutex_unlock(&watch_mu);
    }
out:
    pthread_mutex_unlock(&s->mu);
}

int upl_sink_sync(struct upl_sink *s, struct ing_err *err)
{
    if (!s)
        return ing_err_set(err, ING_EINVAL, "no chunk sink");
    pthread_mutex_lock(&s->mu);
    int64_t length = s->range.last - s->range.first + 1;
    int rc = 0;
    if (s->fenced)
        rc = ing_err_set(err, ING_ESTATE,
                         "the upload was initialized or completed again while the chunk arrived");
    else if (s->write_errno)
        rc = ing_err_errno(err, s->write_errno, "writing the chunk into the part file");
    else if (s->received != length)
        rc = ing_err_set(err, ING_EINVAL,
                         "the body has %" PRId64 " bytes; the range names %" PRId64, s->received,
                         length);
    pthread_mutex_unlock(&s->mu);
    /* fdatasync outside the lock: a fence must not wait for the disk. The size of a sparse file
     * grown by the write is metadata fdatasync keeps. */
    if (rc == 0 && fdatasync(s->fd) != 0)
        rc = ing_err_errno(err, errno, "fsync of the part file");
    return rc;
}

bool upl_sink_fenced(struct upl_sink *s)
{
    if (!s)
        return true;
    pthread_mutex_lock(&s->mu);
    bool f = s->fenced;
    pthread_mutex_unlock(&s->mu);
    return f;
}

void upl_sink_ack(struct upl_sink *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->acked = true;
    pthread_mutex_unlock(&s->mu);
}

void upl_sink_free(struct upl_sink *s)
{
    if (!s)
        return;
    /* Off the registry first: a watch starting from now on cannot attach to this sink. */
    pthread_mutex_lock(&registry_mu);
    for (struct upl_sink **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    /* Bytes written and never acknowledged may come again, different: a reader of the prefix
     * may have read them. Only the watch they were reported to counted them; a newer watch of
     * the path (a new upload) did not, and is left alone. Under the sink's lock, as a watch
     * attaching before the removal above set `watch` under it. */
    pthread_mutex_lock(&s->mu);
    if (s->watch) {
        pthread_mutex_lock(&watch_mu);
        if (s->written > 0 && !s->acked)
            watch_cancel_locked(s->watch);
        watch_unref_locked(s->watch);
        pthread_mutex_unlock(&watch_mu);
        s->watch = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s->part_path);
    free(s);
}

void upl_fence(const char *part_path)
{
    if (!part_path)
        return;
    pthread_mutex_lock(&registry_mu);
    for (struct upl_sink *s = registry; s; s = s->next) {
        if (strcmp(s->part_path, part_path) != 0)
            continue;
        pthread_mutex_lock(&s->mu); /* waits for a write under way */
        s->fenced = true;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&registry_mu);
}

bool upl_inflight(const char *part_path, const struct upl_range *range)
{
    if (!part_path)
        return false;
    pthread_mutex_lock(&registry_mu);
    bool busy = inflight_locked(part_path, range);
    pthread_mutex_unlock(&registry_mu);
    return busy;
}

/* ---- watches of the received prefix -------------------------------------------------------- */

struct upl_watch {
    struct upl_watch *next;    /* registry list, under watch_mu */
    char *part_path;
    int refs;                  /* the registry's (while listed) and the callers' */
    bool listed;
    bool cancelled;
    bool sealed;
    int64_t mark;              /* bytes [0, mark) are written */
    int64_t high;              /* end of the highest byte written */
    int64_t final_size;        /* once sealed */
    int64_t expected;          /* the announced size, or -1 */
    struct upl_range *pieces;  /* written pieces past the mark, [first, last + 1) as first/last */
    size_t npieces, cap;
    pthread_cond_t cv;         /* the mark moved, or sealed, or cancelled */
};

/* watch_mu (above) is one lock for every watch: few exist at a time and each call holds it
 * briefly. */
static struct upl_watch *watches;

/* Under watch_mu. */
static struct upl_watch *watch_find_locked(const char *part_path)
{
    for (struct upl_watch *w = watches; w; w = w->next)
        if (strcmp(w->part_path, part_path) == 0)
            return w;
    return NULL;
}

/* Under watch_mu. */
static void watch_ref_locked(struct upl_watch *w)
{
    w->refs++;
}

/* Under watch_mu: drop a reference, freeing the watch with the last one. */
static void watch_unref_locked(struct upl_watch *w)
{
    if (--w->refs > 0)
        return;
    pthread_cond_destroy(&w->cv);
    free(w->pieces);
    free(w->part_path);
    free(w);
}

/* Under watch_mu: cancel, wake the readers and take the watch off the registry. */
static void watch_cancel_locked(struct upl_watch *w)
{
    w->cancelled = true;
    pthread_cond_broadcast(&w->cv);
    if (!w->listed)
        return;
    for (struct upl_watch **pp = &watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    w->listed = false;
    watch_unref_locked(w);
}

struct upl_watch *upl_watch_start(const char *part_path, int64_t expected_size)
{
    pthread_mutex_lock(&watch_mu);
    struct upl_watch *old = watch_find_locked(part_path);
    if (old)
        watch_cancel_locked(old);
    struct upl_watch *w = xcalloc(1, sizeof(*w));
    w->part_path = xstrdup(part_path);
    w->refs = 2; /* the registry's and the caller's */
    w->listed = true;
    w->final_size = -1;
    w->expected = expected_size > 0 ? expected_size : -1;
    /* Timed waits count on the monotonic clock: a clock change must not stop a reader early. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    w->next = watches;
    watches = w;
    pthread_mutex_unlock(&watch_mu);
    /* Chunks already arriving at other offsets wrote bytes before the watch existed: each sink
     * knows how many it really wrote, and from now on reports to this watch (under its own
     * lock, so no byte is counted twice or missed). A fenced sink writes nothing more and what
     * it wrote belongs to the upload before the fence: it is not this upload's. */
    pthread_mutex_lock(&registry_mu);
    for (struct upl_sink *s = registry; s; s = s->next) {
        if (strcmp(s->part_path, part_path) != 0)
            continue;
        pthread_mutex_lock(&s->mu);
        if (!s->fenced && !s->write_errno && s->watch != w) {
            pthread_mutex_lock(&watch_mu);
            if (s->watch)
                watch_unref_locked(s->watch);
            watch_ref_locked(w);
            s->watch = w;
            watch_wrote_locked(w, s->range.first, s->range.first + s->written);
            pthread_mutex_unlock(&watch_mu);
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&registry_mu);
    return w;
}

/* Whether a reader waiting for more than `have` bytes has news. Under watch_mu. */
static bool watch_news_locked(const struct upl_watch *w, int64_t have)
{
    return w->cancelled || w->sealed || w->mark > have ||
           (w->expected >= 0 && w->mark >= w->expected);
}

/* timeout_ms < 0: no time limit. */
static int watch_wait(struct upl_watch *w, int64_t have, int64_t timeout_ms, int64_t *avail,
                      int64_t *final_size, struct ing_err *err)
{
    struct timespec deadline = {0};
    if (timeout_ms >= 0)
        clock_deadline_mono_ts(&deadline, timeout_ms);
    pthread_mutex_lock(&watch_mu);
    while (!watch_news_locked(w, have)) {
        if (timeout_ms < 0)
            pthread_cond_wait(&w->cv, &watch_mu);
        else if (pthread_cond_timedwait(&w->cv, &watch_mu, &deadline) == ETIMEDOUT)
            break;
    }
    int rc = 0;
    if (w->cancelled) {
        rc = ing_err_set(err, ING_ESTATE, "the upload of the file changed while it was read");
    } else if (w->sealed) {
        *final_size = *avail = w->final_size;
    } else if (w->expected >= 0 && w->mark >= w->expected) {
        /* Every byte of the announced file is there: the end is known before the seal. */
        *final_size = *avail = w->expected;
    } else {
        *final_size = -1;
        *avail = w->mark;
    }
    pthread_mutex_unlock(&watch_mu);
    return rc;
}

int upl_watch_wait(struct upl_watch *w, int64_t have, int64_t *avail, int64_t *final_size,
                   struct ing_err *err)
{
    return watch_wait(w, have, -1, avail, final_size, err);
}

int upl_watch_wait_ms(struct upl_watch *w, int64_t have, int64_t timeout_ms, int64_t *avail,
                      int64_t *final_size, struct ing_err *err)
{
    return watch_wait(w, have, timeout_ms < 0 ? 0 : timeout_ms, avail, final_size, err);
}

bool upl_watch_state(struct upl_watch *w, int64_t *final_size)
{
    pthread_mutex_lock(&watch_mu);
    bool cancelled = w->cancelled;
    *final_size = w->sealed ? w->final_size : -1;
    pthread_mutex_unlock(&watch_mu);
    return cancelled;
}

void upl_watch_ref(struct upl_watch *w)
{
    pthread_mutex_lock(&watch_mu);
    watch_ref_locked(w);
    pthread_mutex_unlock(&watch_mu);
}

void upl_watch_release(struct upl_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&watch_mu);
    watch_unref_locked(w);
    pthread_mutex_unlock(&watch_mu);
}

/*
 * Under watch_mu. Every byte is reported once (see upl_sink_write), so bytes reported again
 * are bytes written again: below the mark a reader may have read the old ones, and a piece past
 * the mark written over may not be what joins the prefix later. Either cancels.
 */
static void watch_wrote_locked(struct upl_watch *w, int64_t first, int64_t end)
{
    if (end <= first || w->cancelled || w->sealed)
        return;
    if (first < w->mark) {
        watch_cancel_locked(w);
        return;
    }
    for (size_t i = 0; i < w->npieces; i++) {
        if (first < w->pieces[i].last && w->pieces[i].first < end) {
            watch_cancel_locked(w);
            return;
        }
    }
    if (end > w->high)
        w->high = end;
    if (first > w->mark) {
        /* Past a hole: kept until the hole fills. A sink's next piece extends its last one. */
        for (size_t i = 0; i < w->npieces; i++) {
            if (w->pieces[i].last == first) {
                w->pieces[i].last = end;
                return;
            }
        }
        BUF_ARRAY_RESERVE(w->pieces, w->cap, w->npieces + 1, 8);
        w->pieces[w->npieces++] = (struct upl_range){first, end};
        return;
    }
    w->mark = end;
    /* Pieces the mark reaches now join the prefix. */
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < w->npieces; i++) {
            if (w->pieces[i].first > w->mark)
                continue;
            if (w->pieces[i].last > w->mark)
                w->mark = w->pieces[i].last;
            w->pieces[i] = w->pieces[--w->npieces];
            moved = true;
            break;
        }
    }
    pthread_cond_broadcast(&w->cv);
}

void upl_watch_wrote(const char *part_path, int64_t first, int64_t end)
{
    if (!part_path)
        return;
    pthread_mutex_lock(&watch_mu);
    struct upl_watch *w = watch_find_locked(part_path);
    if (w)
        watch_wrote_locked(w, first, end);
    pthread_mutex_unlock(&watch_mu);
}

void upl_watch_seal(const char *part_path, int64_t size)
{
    if (!part_path)
        return;
    pthread_mutex_lock(&watch_mu);
    struct upl_watch *w = watch_find_locked(part_path);
    if (w && !w->cancelled) {
        if (w->high > size || size < 0) {
            watch_cancel_locked(w);
        } else {
            w->sealed = true;
            w->final_size = size;
            pthread_cond_broadcast(&w->cv);
        }
    }
    pthread_mutex_unlock(&watch_mu);
}

void upl_watch_abandon(struct upl_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&watch_mu);
    watch_cancel_locked(w);
    pthread_mutex_unlock(&watch_mu);
}

void upl_watch_cancel(const char *part_path)
{
    if (!part_path)
        return;
    pthread_mutex_lock(&watch_mu);
    struct upl_watch *w = watch_find_locked(part_path);
    if (w)
        watch_cancel_locked(w);
    pthread_mutex_unlock(&watch_mu);
}
