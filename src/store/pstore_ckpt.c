/*
 * pstore_ckpt.c - checkpoints of profile.db's write-ahead log, in a background thread.
 *
 * Why: SQLite checkpoints from inside the COMMIT that takes the WAL past wal_autocheckpoint
 * pages, so the commit of a million-record identity batch also copied its 85 MB into the
 * database file and fsynced it before returning (~40% of that commit). Durability does not need
 * it: with synchronous=FULL a commit is durable once the WAL is fsynced; the checkpoint only
 * moves pages into the main file and lets the WAL start over. So the writer connection's WAL
 * hook (which replaces SQLite's automatic checkpoints) just wakes this thread once the WAL holds
 * `frames` pages, and the thread runs a PASSIVE checkpoint on its own connection: it copies what
 * no reader still needs, never blocks readers or the writer, and is retried shortly (or at the
 * next wake-up) for what it could not copy. After a checkpoint that copied pages the readers of
 * stored answers map the grown file again (pstore_view.c). SQLite still checkpoints when the
 * last connection closes.
 * Without the thread (it could not start) the writer keeps SQLite's automatic checkpoints.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

#include "store/pstore_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define CKPT_DEFAULT_FRAMES 1000 /* SQLite's own wal_autocheckpoint default */

struct pstore_ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked, stop;
    sqlite3 *db;
    struct pstore *ps;
    int frames;       /* wake up once the WAL holds this many pages */
    uint64_t runs;    /* checkpoints completed (tests) */
};

/* The writer's WAL hook: runs inside its COMMIT, after the WAL was written and synced. */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int nframes)
{
    (void)db;
    (void)name;
    struct pstore_ckpt *k = ctx;
    if (nframes >= k->frames) {
        pthread_mutex_lock(&k->mu);
        k->kicked = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
    return SQLITE_OK;
}

/* A checkpoint that could not copy everything (a reader still used older pages) is tried again
 * after this long even without a commit: until the WAL is copied whole, readers look pages up
 * in it and read them from it with pread instead of the mapped file. */
#define CKPT_RETRY_MS 50

static void *ckpt_main(void *arg)
{
    struct pstore_ckpt *k = arg;
    bool retry = false;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        if (retry && !k->kicked && !k->stop) {
            struct timespec until;
            clock_deadline_ts(&until, CKPT_RETRY_MS);
            while (!k->kicked && !k->stop &&
                   pthread_cond_timedwait(&k->cv, &k->mu, &until) != ETIMEDOUT) {
            }
        } else {
            while (!k->kicked && !k->stop)
                pthread_cond_wait(&k->cv, &k->mu);
        }
        if (k->stop)
            break;
        k->kicked = false;
        pthread_mutex_unlock(&k->mu);
        int nlog = 0, ncopied = 0;
        int rc = sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog,
                                           &ncopied);
        /* BUSY: another checkpoint is running (one at close); tried again shortly */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("pstore: checkpoint failed: %s", sqlite3_errmsg(k->db));
        retry = rc == SQLITE_BUSY || (rc == SQLITE_OK && ncopied < nlog);
        /* the file may have grown: readers map it again (pstore_view.c) */
        if (rc == SQLITE_OK && ncopied > 0)
            atomic_fetch_add(&k->ps->ckpt_copied, 1);
        pthread_mutex_lock(&k->mu);
        k->runs++;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int pstore__ckpt_start(struct pstore *ps, int frames, struct ing_err *err)
{
    struct pstore_ckpt *k = xcalloc(1, sizeof(*k));
    k->frames = frames > 0 ? frames : CKPT_DEFAULT_FRAMES;
    k->ps = ps;
    int rc = sqlite3_open_v2(ps->path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    int ret = 0;
    if (rc != SQLITE_OK) {
        ret = pstore__map_sqlite(err, k->db, rc, "open (checkpointer)");
        goto out;
    }
    sqlite3_busy_timeout(k->db, 10000);
    /* the checkpoint fsyncs the database file unless synchronous is OFF */
    ret = pstore__exec(k->db, ps->fast ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL",
                       err);
    /* A connection that has read nothing does not know the file is in WAL mode yet, and its
     * checkpoints would do nothing: read the schema once. */
    if (ret == 0)
        ret = pstore__exec(k->db, "SELECT count(*) FROM sqlite_master", err);
    if (ret)
        goto out;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->thread, NULL, ckpt_main, k) != 0) {
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        ret = ing_err_set(err, ING_EINTERNAL, "pstore: cannot start the checkpoint thread");
        goto out;
    }
    /* from here the writer no longer checkpoints inside its commits */
    sqlite3_wal_hook(ps->writer->db, wal_hook, k);
    ps->ckpt = k;
    k = NULL;
out:
    if (k) {
        sqlite3_close_v2(k->db);
        free(k);
    }
    return ret;
}

void pstore__ckpt_stop(struct pstore *ps)
{
    struct pstore_ckpt *k = ps ? ps->ckpt : NULL;
    if (!k)
        return;
    if (ps->writer)
        sqlite3_wal_autocheckpoint(ps->writer->db, CKPT_DEFAULT_FRAMES); /* the hook goes */
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    sqlite3_close_v2(k->db);
    free(k);
    ps->ckpt = NULL;
}

uint64_t pstore__ckpt_runs(struct pstore *ps)
{
    struct pstore_ckpt *k = ps->ckpt;
    if (!k)
        return 0;
    pthread_mutex_lock(&k->mu);
    uint64_t n = k->runs;
    pthread_mutex_unlock(&k->mu);
    return n;
}
