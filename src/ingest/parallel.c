/*
 * parallel.c - cutting JSON Lines files at line starts and running work on several threads;
 * see parallel.h.
 */
#include "ingest/parallel.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/mem.h"

#define PAR_SCAN_BYTES 65536

/* par_next_line_start with the caller's PAR_SCAN_BYTES of scratch. */
static int64_t next_line_start(int fd, int64_t from, int64_t size, char *scratch,
                               struct ing_err *err)
{
    int64_t pos = from - 1;
    while (pos < size) {
        size_t want = (size_t)(size - pos < PAR_SCAN_BYTES ? size - pos : PAR_SCAN_BYTES);
        ssize_t got = fs_pread_all(fd, scratch, want, pos);
        if (got < 0)
            return ing_err_errno(err, errno, "cannot read the input file");
        if (got == 0)
            break; /* the file shrank: treat the rest as one line */
        const char *nl = memchr(scratch, '\n', (size_t)got);
        if (nl)
            return pos + (nl - scratch) + 1;
        pos += got;
    }
    return size;
}

int64_t par_next_line_start(int fd, int64_t from, int64_t size, struct ing_err *err)
{
    if (from <= 0)
        return 0;
    char *scratch = xmalloc(PAR_SCAN_BYTES);
    int64_t at = next_line_start(fd, from, size, scratch, err);
    free(scratch);
    return at;
}

int par_split_lines(int fd, int64_t size, int want, struct par_range *out, struct ing_err *err)
{
    if (size <= 0)
        return 0;
    if (want < 1)
        want = 1;
    if (want > PAR_MAX_RANGES)
        want = PAR_MAX_RANGES;
    char *scratch = xmalloc(PAR_SCAN_BYTES);
    int n = 0;
    int64_t start = 0;
    int rc = 0;
    for (int k = 1; k < want; k++) {
        /* k * size cannot overflow: size < 2^63 / PAR_MAX_RANGES for any real file. */
        int64_t target = size / want * k + size % want * k / want;
        if (target <= start)
            continue;
        int64_t cut = next_line_start(fd, target, size, scratch, err);
        if (cut < 0) {
            rc = (int)cut;
            goto out;
        }
        if (cut >= size)
            break;
        if (cut <= start)
            continue;
        out[n].start = start;
        out[n].end = cut;
        n++;
        start = cut;
    }
    out[n].start = start;
    out[n].end = size;
    n++;
    rc = n;
out:
    free(scratch);
    return rc;
}

void par_reader_init(struct par_reader *r, int fd, const struct par_range *range)
{
    r->fd = fd;
    r->pos = range->start;
    r->end = range->end;
}

int64_t par_read(void *ctx, void *buf, size_t n, struct ing_err *err)
{
    struct par_reader *r = ctx;
    if (r->pos >= r->end)
        return 0;
    int64_t left = r->end - r->pos;
    if ((uint64_t)left < n)
        n = (size_t)left;
    ssize_t got = fs_pread_all(r->fd, buf, n, r->pos);
    if (got < 0)
        return ing_err_errno(err, errno, "cannot read the input file");
    if (got == 0)
        return ing_err_set(err, ING_EIO, "the input file ended early (it shrank while read)");
    r->pos += got;
    return got;
}

/* ---- the thread pool of one par_run */

struct pool {
    pthread_mutex_t mu;
    int next, n;
    par_work_fn *work;
    void *ctx;
    int *codes;
    struct ing_err *errs;
};

static void *pool_main(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->next < p->n ? p->next++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (i < 0)
            return NULL;
        ing_err_clear(&p->errs[i]);
        p->codes[i] = p->work(p->ctx, i, &p->errs[i]);
    }
}

int par_run(int threads, int n, par_work_fn *work, void *ctx, struct ing_err *err)
{
    if (n <= 0)
        return 0;
    if (threads < 1)
        threads = 1;
    if (threads > n)
        threads = n;
    struct pool p = {.n = n, .work = work, .ctx = ctx};
    pthread_mutex_init(&p.mu, NULL);
    p.codes = xcalloc((size_t)n, sizeof(int));
    p.errs = xcalloc((size_t)n, sizeof(struct ing_err));
    pthread_t *tids = xcalloc((size_t)threads, sizeof(pthread_t));
    bool *started = xcalloc((size_t)threads, sizeof(bool));
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, pool_main, &p) == 0;
    pool_main(&p); /* the calling thread works too; if a thread did not start, it does more */
    for (int t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tids[t], NULL);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (p.codes[i] != 0) {
            rc = p.codes[i];
            if (err)
                *err = p.errs[i];
        }
    }
    free(started);
    free(tids);
    free(p.errs);
    free(p.codes);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
