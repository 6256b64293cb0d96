/*
 * pstore_int.h - what the files of the SQLite pstore back end share: connections, prepared
 * statements, the transaction, and the graph's buffered writes (pstore_graph.c). Not an
 * interface: only src/store/pstore_*.c include it.
 */
#ifndef ING_STORE_PSTORE_INT_H
#define ING_STORE_PSTORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/pstore.h"

enum pstore_stmt {
    S_NS_BY_CODE,
    S_NS_BY_GID,
    S_NS_BY_NSID,
    S_NS_INSERT,
    S_BEGIN,
    S_END,
    S_KV_GET,
    S_KV_PUT,
    S_DICT_GET,
    S_DICT_PUT,
    S_DICT_DEL,
    S_CLU_GET,
    S_CLU_PUT,
    S_CLU_DEL,
    S_CLU_SCAN,
    S_FWD_ADD,
    S_FWD_GET,
    S_GB_GET,
    S_GB_PUT,
    S_GB_DEL,
    S_BSEQ_GET,
    S_BSEQ_INSERT,
    S_BSEQ_NAMES,
    S_STAGE_GET,
    S_STAGE_PUT,
    S_FRAGS,
    S_FRAG_PUT,
    S_FRAG_GET,
    S_FRAG_DELETE_SEQ,
    S_EVENTS,
    S_EVENT_PUT,
    S_EVENT_DELETE_SEQ,
    S_HAS_FRAG,
    S_HAS_EVENT,
    S_BODY_GET,        /* stored answers (pstore_view.c) */
    S_BODY_PUT,
    S_BODY_DEL,
    S_BODY_LABELS,
    S_FRAG_KEYS_SEQ,
    S_EVENT_KEYS_SEQ,
    S_COUNT
};

struct pstore_conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct pstore_conn *next_free;
    struct pstore_conn *next_all;
    /* readers of stored answers (pstore_view.c) keep a read transaction open between lookups */
    bool snapshot;
    uint64_t snapshot_gen;  /* the commit generation it was taken at */
    int64_t snapshot_ns;    /* and when */
    /* the dictionary's shape (pstore_graph.c) read and decoded in this snapshot: it changes
     * only with a commit, so one read serves every lookup of the snapshot */
    bool dict_cached;
    int dict_level;
    uint64_t dict_split;
    uint64_t map_gen;       /* ps->ckpt_copied when the file was last mapped (pstore_view.c) */
    bool map_lowered;       /* its mapping limit is one step below the usual (pstore_view.c) */
};

/* How much of profile.db readers map: SQLite's compile-time ceiling in Debian (larger asks are
 * cut to it). A page beyond the mapping is read with pread into the reader's page cache. */
#define PSTORE_MMAP_BYTES ((int64_t)0x7fff0000)

/* Namespaces never change once created: a small cache spares the lookup path a query. */
struct pstore_ns_cache_entry {
    char sandbox[65];
    struct pstore_ns ns;
};

struct pstore {
    char *path;
    bool fast;
    pthread_mutex_t mu;    /* pool and cache */
    struct pstore_conn *free_list;
    struct pstore_conn *all;
    pthread_mutex_t wmu;   /* the writer */
    struct pstore_conn *writer;
    struct pstore_ns_cache_entry *cache;
    size_t ncache, capcache;
    pstore_view_fn *view_fn;   /* builder of stored answers (pstore_view.c); NULL: none */
    void *view_ctx;
    struct pstore_conn *view_free; /* idle readers of stored answers (under mu) */
    _Atomic uint64_t commits;      /* commit generation, bumped after every commit */
    _Atomic uint64_t ckpt_copied;  /* bumped after every checkpoint that copied pages */
    struct pstore_ckpt *ckpt;  /* pstore_ckpt.c: background WAL checkpoints; NULL: SQLite's */
    struct pstore_hint *hint;  /* pstore_hint.c: the dictionary in memory for lookups; NULL: off */
};

struct pstore_graph_tx; /* pstore_graph.c: buffered graph writes of one transaction */
struct pstore_view_tx;  /* pstore_view.c: stale stored answers of one transaction */

struct pstore_tx {
    struct pstore *ps;
    struct pstore_conn *c;
    int64_t next_id;       /* the id counter, written back at commit */
    bool id_dirty;
    struct pstore_graph_tx *g; /* NULL until the first graph call */
    int64_t first_id;      /* next_id when the transaction began: labels from here are new */
    struct pstore_view_tx *v;  /* pstore_view.c: what the transaction's writes made stale */
    struct pstore_hint_log *hlog; /* pstore_hint.c: dictionary buckets written, for the hint */
};

#define PSTORE_KV_NEXT_ID "next_id"

/* LEB128 varints, the integers of the graph's documents (pstore_graph.c) and of the stored
 * answers' member keys (pstore_view.c). put writes at most 10 bytes at p and returns how many;
 * get reads one at *p (advanced), false when it runs past end or over 64 bits. */
static inline size_t pstore__uv_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline bool pstore__uv_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The dictionary's format (pstore_graph.c), shared with its in-memory copy (pstore_hint.c): a
 * bucket is a run of entries of 12 bytes, 48 bits of the key hash's top (the fingerprint) then
 * a 48-bit label, little-endian, sorted by fingerprint; the table's shape is linear hashing's
 * (level, split): buckets 0 .. 2^level + split - 1. */
#define PSTORE_DICT_ENTRY 12
#define PSTORE_KV_DICT_STATE "dict_state" /* kv: level << 48 | split */

static inline uint64_t pstore__le48(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The shape (level, split) from its kv value (level << 48 | split; 0 when never written);
 * ING_EINTERNAL when it cannot be one (a split beyond the level, or more levels than the 48-bit
 * fingerprint can address). */
int pstore__dstate_decode(int64_t v, int *level, uint64_t *split, struct ing_err *err);

/* The first of a bucket's n entries (sorted by fingerprint) whose fingerprint is not below fp.
 * Fingerprints are uniform, so an entry's place is close to n * fp / 2^48: the search starts
 * there and gallops outward (a cache line or two) instead of bisecting the whole bucket (~8
 * lines of a 2.4 KB bucket). Exact whatever the distribution. Inline: the lookup's hot path. */
static inline size_t pstore__dict_lower(const uint8_t *p, size_t n, uint64_t fp)
{
    if (n == 0)
        return 0;
    size_t lo = 0, hi = n;
    size_t guess = (size_t)(((uint64_t)n * (fp >> 16)) >> 32); /* fp < 2^48, n < 2^32 */
    size_t step = 4;
    if (pstore__le48(p + guess * PSTORE_DICT_ENTRY) < fp) {
        lo = guess + 1; /* everything below lo is < fp */
        while (lo + step < n && pstore__le48(p + (lo + step) * PSTORE_DICT_ENTRY) < fp) {
            lo += step + 1;
            step *= 2;
        }
        if (lo + step < n)
            hi = lo + step; /* entry hi >= fp */
    } else {
        hi = guess; /* entry hi >= fp */
        while (hi > step && pstore__le48(p + (hi - step - 1) * PSTORE_DICT_ENTRY) >= fp) {
            hi -= step + 1;
            step *= 2;
        }
        lo = hi > step ? hi - step : 0; /* entry lo - 1 < fp */
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pstore__le48(p + mid * PSTORE_DICT_ENTRY) < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The labels of a bucket's entries (n of them, at p) whose fingerprint is fp: the first cap go to
 * labels[] (may be NULL when cap is 0), the return value counts them all (usually 0 or 1). The
 * one scan of a bucket, for the lookup (pstore_graph.c), the hint (pstore_hint.c) and the
 * batch reads. Inline: the lookup's hot path. */
static inline size_t pstore__dict_scan(const uint8_t *p, size_t n, uint64_t fp, int64_t *labels,
                                       size_t cap)
{
    size_t found = 0;
    for (size_t i = pstore__dict_lower(p, n, fp);
         i < n && pstore__le48(p + i * PSTORE_DICT_ENTRY) == fp; i++, found++)
        if (found < cap)
            labels[found] = (int64_t)pstore__le48(p + i * PSTORE_DICT_ENTRY + 6);
    return found;
}

static inline uint64_t pstore__dict_fp(uint64_t h)
{
    return h >> 16;
}

static inline uint64_t pstore__dict_addr(int level, uint64_t split, uint64_t fp)
{
    uint64_t a = fp & ((1ULL << level) - 1);
    if (a < split)
        a = fp & ((1ULL << (level + 1)) - 1);
    return a;
}

int pstore__map_sqlite(struct ing_err *err, sqlite3 *db, int rc, const char *what);
int pstore__exec(sqlite3 *db, const char *sql, struct ing_err *err);
/* A prepared statement of this connection, ready for binding (reset after use: pstore__done). */
int pstore__stmt(struct pstore_conn *c, enum pstore_stmt id, sqlite3_stmt **out,
                 struct ing_err *err);
void pstore__done(sqlite3_stmt *s);
int pstore__step_done(struct pstore_conn *c, sqlite3_stmt *s, const char *what,
                      struct ing_err *err);
int pstore__step_int(struct pstore_conn *c, sqlite3_stmt *s, int64_t *out, const char *what,
                     struct ing_err *err);
int pstore__conn_acquire(struct pstore *ps, struct pstore_conn **out, struct ing_err *err);
void pstore__conn_release(struct pstore *ps, struct pstore_conn *c);
int pstore__kv_get(struct pstore_conn *c, const char *key, int64_t *v, struct ing_err *err);
int pstore__kv_put(struct pstore_conn *c, const char *key, int64_t v, struct ing_err *err);

/* pstore_graph.c: write the buffered graph changes (before commit, or before a graph read). */
int pstore__graph_flush(struct pstore_tx *tx, struct ing_err *err);
void pstore__graph_tx_free(struct pstore_tx *tx);
/* Convert a version-1 graph (tables ident and edge) into documents, inside tx; drops them. */
int pstore__graph_convert_v1(struct pstore_tx *tx, struct ing_err *err);

/* pstore_ckpt.c: WAL checkpoints off the writer's commits, in a thread of their own (started
 * once ps->writer exists; `frames` 0: 1000); stop joins it; runs counts completed ones. */
int pstore__ckpt_start(struct pstore *ps, int frames, struct ing_err *err);
void pstore__ckpt_stop(struct pstore *ps);
uint64_t pstore__ckpt_runs(struct pstore *ps);

/* pstore_view.c: the stored answers (pstore.h, "Stored answers"). The graph and profile writes
 * note what they change; at commit pstore__view_refresh drops what became stale and rebuilds
 * the clusters concerned, inside the transaction. */
void pstore__view_note_ident(struct pstore_tx *tx, int64_t old_label, int64_t new_label);
void pstore__view_note_label(struct pstore_tx *tx, int64_t label);
void pstore__view_note_key(struct pstore_tx *tx, int64_t gid, const char *value);
int pstore__view_note_seq(struct pstore_tx *tx, int64_t seq, struct ing_err *err);
int pstore__view_refresh(struct pstore_tx *tx, struct ing_err *err);
/* After a commit: bump the generation and end the idle readers' snapshots. */
void pstore__view_committed(struct pstore *ps);
void pstore__view_tx_free(struct pstore_tx *tx);
/* pstore_graph.c: candidate labels of identity hash h on a reader inside its snapshot (a hit
 * is to be confirmed): the first `cap` go to labels[], *n counts them all (usually 0 or 1).
 * The dictionary's shape is read once per snapshot (c->dict_cached, reset when one begins). */
int pstore__dict_lookup(struct pstore_conn *c, uint64_t h, int64_t *labels, size_t cap,
                        size_t *n, struct ing_err *err);
/* pstore_graph.c: up to max labels of existing clusters above `after`, ascending, into *labels
 * (new; *n of them). Flushes the transaction's graph writes first. */
int pstore__cluster_labels_after(struct pstore_tx *tx, int64_t after, size_t max,
                                 int64_t **labels, size_t *n, struct ing_err *err);
/* pstore_hint.c: the dictionary kept in memory as a hint for lookups of stored answers (see the
 * file's comment for why a stale or wrong hint is safe). new at open (off: ps->hint stays NULL;
 * retry_ms: how long after a failed build a lookup may start another, 0: 30 s), free at close
 * (stops and joins the build). */
void pstore__hint_new(struct pstore *ps, int retry_ms);
/* Tests only: called by the build thread right after the hint became ready or failed, before
 * waiters are woken (a commit made here must reach the hint). NULL: nothing. */
extern void (*pstore__hint_built_hook)(struct pstore *ps);
void pstore__hint_free(struct pstore *ps);
/* Candidate labels of identity hash h, as pstore__dict_lookup, from memory: true when the hint
 * answered (ready), false when the caller must read the dictionary (not built yet: this call
 * starts the build in the background). */
bool pstore__hint_lookup(struct pstore *ps, uint64_t h, int64_t *labels, size_t cap, size_t *n);
/* Writer side, inside a transaction: a dictionary bucket written (len 0: now empty) and the
 * shape written; kept only while the hint is built or being built. */
void pstore__hint_note_bucket(struct pstore_tx *tx, uint64_t bucket, const uint8_t *body,
                              size_t len);
void pstore__hint_note_shape(struct pstore_tx *tx, int level, uint64_t split);
/* After COMMIT: the noted changes go into the hint (or wait for its build); tx_free drops them
 * (a rollback, or after committed). */
void pstore__hint_committed(struct pstore_tx *tx);
void pstore__hint_tx_free(struct pstore_tx *tx);

/* pstore_view.c: the kv key of a pending backfill of stored answers (the last label done);
 * migrate() sets it when a database from before stored answers gets the table. */
#define PSTORE_KV_VIEW_BACKFILL "view_backfill"
/* pstore_sqlite.c: namespace by gid on this connection (the writer sees its own inserts),
 * with its sandbox (out >= 65 bytes). */
int pstore__ns_by_gid_conn(struct pstore *ps, struct pstore_conn *c, int64_t gid,
                           struct pstore_ns *out, char *sandbox, struct ing_err *err);

#endif
