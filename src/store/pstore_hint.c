/*
 * pstore_hint.c - the identity dictionary (gdict, pstore_graph.c) kept in memory as a hint for
 * lookups of stored answers (pstore_view.c).
 *
 * Why: at a million profiles a stored answer's lookup read two B-trees of a 1 GB file (the
 * dictionary bucket: root and leaf; the stored answer: root, interior, leaf), and most of its
 * SQLite time was the memory stalls of those five page touches. The dictionary itself is small
 * (12 bytes an identity: ~24 MB for two million identities), so its buckets are copied into
 * memory once and kept current from the writer's own bucket writes; a lookup then reads one
 * B-tree (the stored answer).
 *
 * Why a hint may be stale or wrong and stay safe: a stored answer is served only when the
 * identity is among the members it was built for, checked in the reader's snapshot
 * (pstore_view.c, keys_have), and a stored answer present in a snapshot is exactly its cluster's
 * answer in that snapshot. So a label from the hint is only a place to look: a label whose
 * cluster no longer holds the identity (a merge, a split, a removal since) finds a body without
 * it (or none), and the lookup goes to the general path, which reads the dictionary itself. A
 * missing entry (an identity committed a moment ago) also goes to the general path. What the
 * hint must never do is crash or read torn memory: readers hold a read lock while they search,
 * and the writer swaps whole buckets under the write lock.
 *
 * Keeping it current: every dictionary bucket a transaction writes is noted with its new bytes
 * (pstore_graph.c, bucket_store), and the shape with it; after COMMIT the notes replace the
 * buckets (under the write lock, pointer swaps only: the copies were made before). Nothing is
 * noted while the hint is off, so a process that never looks a profile up (`ingot ingest`, the
 * identity benchmark) pays nothing.
 *
 * Building: lazily, at the first lookup, in a thread of its own (lookups read the dictionary
 * until it is ready). It takes the writer's lock just long enough to start a read snapshot and
 * mark the hint "building" (from then on every commit's notes are queued), reads every bucket
 * in that snapshot without any lock, installs them and applies the queued commits in order. A
 * build that failed (a passing open or I/O error) is tried again by a lookup some time later
 * (retry_ms, 30 s): until then lookups read the dictionary.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/pstore.h"
#include "store/pstore_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

enum hint_state {
    HINT_OFF,      /* not asked for yet */
    HINT_STARTING, /* the build thread is starting, waiting for the writer's lock */
    HINT_BUILDING, /* snapshot taken: commits queue their notes */
    HINT_READY,
    HINT_FAILED    /* the build failed: lookups read the dictionary (and retry later) */
};

#define HINT_RETRY_MS_DEFAULT 30000

void (*pstore__hint_built_hook)(struct pstore *ps);

/* One bucket's entries (PSTORE_DICT_ENTRY bytes each), a malloc'd copy; NULL when empty. */
struct hbucket {
    uint8_t *p;
    uint32_t n;
};

struct hnote {
    uint64_t bucket;
    uint8_t *p; /* owned; NULL: empty */
    uint32_t n;
};

struct pstore_hint_log {
    struct hnote *v;
    size_t n, cap;
    bool have_shape;
    int level;
    uint64_t split;
    struct pstore_hint_log *next; /* queued while building */
};

struct pstore_hint {
    pthread_rwlock_t lock;   /* readers search under it; the writer swaps buckets under it */
    _Atomic int state;       /* enum hint_state; changes under lock */
    int level;               /* the shape the buckets are addressed with */
    uint64_t split;
    struct hbucket *dir;     /* ndir >= 2^level + split slots */
    size_t ndir;
    size_t entries, bytes;   /* what the buckets hold */
    struct pstore_hint_log *queued, **queued_tail;
    pthread_mutex_t mu;      /* with cv: waiting for the build (pstore_view_hint) */
    pthread_cond_t cv;
    pthread_t thread;        /* the last build's; started: not joined yet (both under mu) */
    bool started;
    _Atomic bool stop;
    int64_t retry_ns;        /* a failed build may be tried again this long after */
    _Atomic int64_t failed_ns; /* clock_mono_ns when it failed (set with HINT_FAILED) */
};

void pstore__hint_new(struct pstore *ps, int retry_ms)
{
    struct pstore_hint *h = xcalloc(1, sizeof(*h));
    h->retry_ns = (int64_t)(retry_ms > 0 ? retry_ms : HINT_RETRY_MS_DEFAULT) * 1000000;
    atomic_init(&h->failed_ns, 0);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* a steady stream of lookups must not keep a commit's update waiting */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_init(&h->state, HINT_OFF);
    atomic_init(&h->stop, false);
    h->queued_tail = &h->queued;
    ps->hint = h;
}

static void log_free(struct pstore_hint_log *l)
{
    while (l) {
        struct pstore_hint_log *next = l->next;
        for (size_t i = 0; i < l->n; i++)
            free(l->v[i].p);
        free(l->v);
        free(l);
        l = next;
    }
}

static void dir_free(struct hbucket *dir, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(dir[i].p);
    free(dir);
}

void pstore__hint_free(struct pstore *ps)
{
    struct pstore_hint *h = ps ? ps->hint : NULL;
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_mutex_lock(&h->mu);
    bool started = h->started;
    h->started = false;
    pthread_mutex_unlock(&h->mu);
    if (started) /* the build thread takes mu to wake waiters: joined without it */
        pthread_join(h->thread, NULL);
    dir_free(h->dir, h->ndir);
    log_free(h->queued);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
    ps->hint = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Applying notes (under the write lock) */

static void dir_grow(struct pstore_hint *h, size_t want)
{
    if (want <= h->ndir)
        return;
    size_t n = h->ndir ? h->ndir : 64;
    while (n < want)
        n *= 2;
    h->dir = xrealloc(h->dir, n * sizeof(*h->dir));
    memset(h->dir + h->ndir, 0, (n - h->ndir) * sizeof(*h->dir));
    h->ndir = n;
}

/* Moves the log's copies into the buckets; the replaced ones go to *old (freed by the caller
 * after the lock is dropped). */
static void apply_log(struct pstore_hint *h, struct pstore_hint_log *l, struct hnote **old,
                      size_t *nold, size_t *capold)
{
    for (size_t i = 0; i < l->n; i++) {
        struct hnote *x = &l->v[i];
        dir_grow(h, (size_t)x->bucket + 1);
        struct hbucket *b = &h->dir[x->bucket];
        if (b->p) {
            if (*nold == *capold) {
                *capold = *capold ? *capold * 2 : 64;
                *old = xrealloc(*old, *capold * sizeof(**old));
            }
            (*old)[(*nold)++] = (struct hnote){x->bucket, b->p, b->n};
        }
        h->entries = h->entries - b->n + x->n;
        h->bytes = h->bytes - (size_t)b->n * PSTORE_DICT_ENTRY + (size_t)x->n * PSTORE_DICT_ENTRY;
        b->p = x->p;
        b->n = x->n;
        x->p = NULL;
    }
    l->n = 0;
    if (l->have_shape) {
        h->level = l->level;
        h->split = l->split;
        dir_grow(h, (size_t)((1ULL << h->level) + h->split));
    }
}

static void old_free(struct hnote *old, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(old[i].p);
    free(old);
}

/* ---------------------------------------------------------------------------------------------- */
/* Writer side */

static bool capturing(const struct pstore *ps)
{
    /* OFF -> BUILDING happens only under the writer's lock, which the transaction holds: a
     * transaction either notes everything or nothing its hint needs */
    int st = ps->hint ? atomic_load(&ps->hint->state) : HINT_OFF;
    return st == HINT_BUILDING || st == HINT_READY;
}

static struct pstore_hint_log *hlog(struct pstore_tx *tx)
{
    if (!tx->hlog)
        tx->hlog = xcalloc(1, sizeof(*tx->hlog));
    return tx->hlog;
}

void pstore__hint_note_bucket(struct pstore_tx *tx, uint64_t bucket, const uint8_t *body,
                              size_t len)
{
    if (!capturing(tx->ps))
        return;
    struct pstore_hint_log *l = hlog(tx);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = xmalloc(len);
        memcpy(copy, body, len);
    }
    l->v[l->n++] = (struct hnote){bucket, copy, (uint32_t)(len / PSTORE_DICT_ENTRY)};
}

void pstore__hint_note_shape(struct pstore_tx *tx, int level, uint64_t split)
{
    if (!capturing(tx->ps))
        return;
    struct pstore_hint_log *l = hlog(tx);
    l->have_shape = true;
    l->level = level;
    l->split = split;
}

void pstore__hint_tx_free(struct pstore_tx *tx)
{
    if (tx) {
        log_free(tx->hlog);
        tx->hlog = NULL;
    }
}

void pstore__hint_committed(struct pstore_tx *tx)
{
    struct pstore_hint *h = tx->ps->hint;
    struct pstore_hint_log *l = tx->hlog;
    if (!h || !l)
        return;
    struct hnote *old = NULL;
    size_t nold = 0, capold = 0;
    pthread_rwlock_wrlock(&h->lock);
    int st = atomic_load(&h->state);
    if (st == HINT_READY) {
        apply_log(h, l, &old, &nold, &capold);
    } else if (st == HINT_BUILDING) { /* after the build's snapshot: applied when it ends */
        *h->queued_tail = l;
        h->queued_tail = &l->next;
        tx->hlog = NULL;
    }
    pthread_rwlock_unlock(&h->lock);
    old_free(old, nold);
    pstore__hint_tx_free(tx);
}

/* ---------------------------------------------------------------------------------------------- */
/* Building */

/* Under the write lock: the build's end. FAILED drops what was queued, and the commits after it
 * (which see FAILED) note nothing. */
static void set_failed(struct pstore_hint *h)
{
    atomic_store(&h->failed_ns, clock_mono_ns());
    atomic_store(&h->state, HINT_FAILED);
}

/* After a change of state: pstore_view_hint's waiters check it under mu. */
static void wake_waiters(struct pstore_hint *h)
{
    pthread_mutex_lock(&h->mu);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Build the hint; *entries and *nbuckets say what it held when it became ready. */
static int build(struct pstore *ps, size_t *entries_out, size_t *nbuckets_out,
                 struct ing_err *err)
{
    struct pstore_hint *h = ps->hint;
    struct pstore_conn *c = NULL;
    sqlite3_stmt *scan = NULL;
    struct hbucket *dir = NULL;
    size_t ndir = 0, entries = 0, bytes = 0;
    int level = 0;
    uint64_t split = 0;
    bool in_snapshot = false;

    /* The snapshot starts under the writer's lock, and the hint is "building" before the lock
     * is dropped: every commit after the snapshot is queued, none is missed or applied twice. */
    pthread_mutex_lock(&ps->wmu);
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret == 0)
        ret = pstore__exec(c->db, "BEGIN", err);
    in_snapshot = ret == 0;
    int64_t state = 0;
    if (ret == 0) { /* the first read fixes the snapshot */
        ret = pstore__kv_get(c, PSTORE_KV_DICT_STATE, &state, err);
        if (ret == ING_ENOTFOUND)
            ret = 0;
    }
    if (ret == 0) {
        pthread_rwlock_wrlock(&h->lock);
        atomic_store(&h->state, HINT_BUILDING);
        pthread_rwlock_unlock(&h->lock);
    }
    pthread_mutex_unlock(&ps->wmu);
    if (ret)
        goto out;
    if ((ret = pstore__dstate_decode(state, &level, &split, err)) != 0)
        goto out;
    ndir = (size_t)((1ULL << level) + split);
    /* not xcalloc: a corrupt but plausible shape must fail the build, not the process */
    dir = ndir <= SIZE_MAX / sizeof(*dir) ? calloc(ndir, sizeof(*dir)) : NULL;
    if (!dir) {
        ret = ing_err_set(err, ING_ENOMEM, "pstore: no memory for %zu dictionary buckets", ndir);
        goto out;
    }
    int rc = sqlite3_prepare_v2(c->db, "SELECT bucket, body FROM gdict", -1, &scan, NULL);
    if (rc != SQLITE_OK) {
        ret = pstore__map_sqlite(err, c->db, rc, "dictionary scan");
        goto out;
    }
    while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
        if (atomic_load(&h->stop)) {
            ret = ing_err_set(err, ING_ESTATE, "pstore: closing");
            goto out;
        }
        int64_t b = sqlite3_column_int64(scan, 0);
        size_t len = (size_t)sqlite3_column_bytes(scan, 1);
        const void *body = sqlite3_column_blob(scan, 1);
        if (b < 0 || (uint64_t)b >= ndir || len % PSTORE_DICT_ENTRY != 0 ||
            len / PSTORE_DICT_ENTRY > UINT32_MAX) {
            ret = ing_err_set(err, ING_EINTERNAL, "pstore: dictionary bucket %lld is corrupt",
                              (long long)b);
            goto out;
        }
        if (len == 0 || dir[b].p)
            continue;
        dir[b].p = xmalloc(len);
        memcpy(dir[b].p, body, len);
        dir[b].n = (uint32_t)(len / PSTORE_DICT_ENTRY);
        entries += dir[b].n;
        bytes += len;
    }
    if (rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, c->db, rc, "dictionary scan");
out:
    sqlite3_finalize(scan);
    if (in_snapshot)
        pstore__exec(c->db, "COMMIT", NULL);
    pstore__conn_release(ps, c);
    struct hnote *old = NULL;
    size_t nold = 0, capold = 0;
    pthread_rwlock_wrlock(&h->lock);
    if (ret == 0) {
        h->dir = dir;
        h->ndir = ndir;
        h->level = level;
        h->split = split;
        h->entries = entries;
        h->bytes = bytes;
        dir = NULL;
        for (struct pstore_hint_log *l = h->queued; l; l = l->next)
            apply_log(h, l, &old, &nold, &capold);
        *entries_out = h->entries;
        *nbuckets_out = (size_t)((1ULL << h->level) + h->split);
    }
    struct pstore_hint_log *queued = h->queued;
    h->queued = NULL;
    h->queued_tail = &h->queued;
    /* inside the write lock: a commit after the queue was taken must see the new state, or its
     * notes would go to a queue nothing reads again */
    if (ret == 0)
        atomic_store(&h->state, HINT_READY);
    else
        set_failed(h);
    pthread_rwlock_unlock(&h->lock);
    if (pstore__hint_built_hook)
        pstore__hint_built_hook(ps);
    wake_waiters(h);
    log_free(queued);
    old_free(old, nold);
    dir_free(dir, dir ? ndir : 0);
    return ret;
}

static void *build_main(void *arg)
{
    struct pstore *ps = arg;
    struct ing_err err;
    ing_err_clear(&err);
    int64_t t0 = clock_mono_ns();
    size_t entries = 0, nbuckets = 0;
    if (build(ps, &entries, &nbuckets, &err) == 0)
        log_info("pstore: lookup hint ready: %zu identities, %zu buckets, %lld ms", entries,
                 nbuckets, (long long)((clock_mono_ns() - t0) / 1000000));
    else if (!atomic_load(&ps->hint->stop))
        log_warn("pstore: no lookup hint, lookups read the dictionary: %s", err.msg);
    return NULL;
}

/* Whether a lookup should start a build: never asked yet, or failed long enough ago. */
static bool start_due(const struct pstore_hint *h, int st)
{
    return st == HINT_OFF ||
           (st == HINT_FAILED && clock_mono_ns() - atomic_load(&h->failed_ns) >= h->retry_ns);
}

/* Start the build (the first lookup asks), or again after a failure (a later lookup). */
static void hint_start(struct pstore *ps)
{
    struct pstore_hint *h = ps->hint;
    pthread_mutex_lock(&h->mu);
    if (!start_due(h, atomic_load(&h->state)) || atomic_load(&h->stop)) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    /* from here no other lookup starts one; and the writer's lock, not mu, orders this against
     * commits: they note nothing until the build marks the hint BUILDING under it */
    atomic_store(&h->state, HINT_STARTING);
    bool join_old = h->started;
    pthread_t old = h->thread;
    h->started = false;
    pthread_mutex_unlock(&h->mu);
    /* the failed build has set FAILED: it is at most waking waiters (mu) and logging */
    if (join_old)
        pthread_join(old, NULL);
    pthread_mutex_lock(&h->mu);
    h->started = pthread_create(&h->thread, NULL, build_main, ps) == 0;
    if (!h->started)
        set_failed(h);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------------------------------------- */
/* Reader side */

bool pstore__hint_lookup(struct pstore *ps, uint64_t hash, int64_t *labels, size_t cap,
                         size_t *n)
{
    struct pstore_hint *h = ps->hint;
    *n = 0;
    if (!h)
        return false;
    int st = atomic_load_explicit(&h->state, memory_order_acquire);
    if (st != HINT_READY) {
        if (start_due(h, st))
            hint_start(ps);
        return false;
    }
    uint64_t fp = pstore__dict_fp(hash);
    pthread_rwlock_rdlock(&h->lock);
    uint64_t b = pstore__dict_addr(h->level, h->split, fp);
    if (b < h->ndir && h->dir[b].p)
        *n = pstore__dict_scan(h->dir[b].p, h->dir[b].n, fp, labels, cap);
    pthread_rwlock_unlock(&h->lock);
    return true;
}

void pstore_view_hint(struct pstore *ps, int wait_ms, struct pstore_hint_stats *out)
{
    struct pstore_hint *h = ps->hint;
    memset(out, 0, sizeof(*out));
    if (!h)
        return;
    if (start_due(h, atomic_load(&h->state)))
        hint_start(ps);
    if (wait_ms > 0) {
        struct timespec until;
        clock_deadline_ts(&until, wait_ms);
        pthread_mutex_lock(&h->mu);
        while (atomic_load(&h->state) < HINT_READY)
            if (pthread_cond_timedwait(&h->cv, &h->mu, &until) != 0)
                break;
        pthread_mutex_unlock(&h->mu);
    }
    pthread_rwlock_rdlock(&h->lock);
    out->ready = atomic_load(&h->state) == HINT_READY;
    out->failed = atomic_load(&h->state) == HINT_FAILED;
    out->buckets = (size_t)((1ULL << h->level) + h->split);
    out->entries = h->entries;
    out->bytes = h->bytes + h->ndir * sizeof(*h->dir);
    pthread_rwlock_unlock(&h->lock);
}
