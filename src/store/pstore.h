/*
 * pstore.h - storage of the identity graph and the profile store (tables, not documents).
 *
 * The control plane lives in store.h as JSON documents; the identity graph and the profile store
 * are data-plane tables that need integer keys, joins by identity and bulk writes, so they have
 * their own narrow interface here (a PostgreSQL back end implements the same calls later). The
 * SQLite back end (pstore_sqlite.c) keeps them in `<dir>/profile.db`, WAL mode, with its own
 * schema version table and migrations.
 *
 * Model:
 *   namespace  (gid) one identity namespace of one sandbox: code, AEP numeric id (nsid), idType.
 *              Every identity key carries a gid, so sandboxes never share identities.
 *   identity   (id) a (gid, value) pair with the label of the cluster it belongs to, and the
 *              first and last time a batch carried it.
 *   batch      (seq) a batch that reached the graph or the profile store, with its dataset; seq
 *              orders batches (larger is newer) and keys the rows each batch wrote.
 *   edge       (a, b, seq) "a and b appeared in one row of this batch" (a <= b; a == b when the
 *              identity was alone in its row), with first and last time: the provenance of a
 *              link is the set of its edge rows, so taking a batch back out is a delete.
 *   fragment   (gid, value, dataset, seq) one profile record of a dataset keyed by its primary
 *              identity; seq orders batches (a newer batch's fragment wins, or patches with upsert).
 *   event      (gid, value, ts, _id, seq) one experience event under its primary identity.
 *   stage      (batch, stage) the durable record that a downstream stage ran for a batch, written
 *              in the same transaction as the stage's data: running a stage twice is impossible.
 * Cluster labels and identity ids come from one counter that never goes back, so a label is
 * never reused.
 *
 * Threads: read functions (pstore_* on struct pstore) are thread-safe and use pooled
 * connections. Writes go through a transaction (struct pstore_tx): one writer at a time
 * (pstore_begin waits for the previous writer), and every pstore_tx_* call of that transaction
 * must come from the thread that began it. Strings returned are new (free()); documents are
 * JSON text.
 */
#ifndef ING_STORE_PSTORE_H
#define ING_STORE_PSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "util/err.h"

#define PSTORE_CODE_MAX 128
#define PSTORE_TYPE_MAX 24

struct pstore;
struct pstore_tx;

struct pstore_opts {
    bool fast; /* synchronous=OFF: for tests and benchmarks only (a power cut may lose data) */
};

int pstore_open(struct pstore **out, const char *dir, const struct pstore_opts *opts,
                struct ing_err *err);
void pstore_close(struct pstore *ps); /* NULL is a no-op */

/* ---- Namespaces ---- */

struct pstore_ns {
    int64_t gid;
    int64_t nsid;                  /* the namespace's AEP id in its sandbox */
    char code[PSTORE_CODE_MAX];    /* as registered ("lumaCrmId") */
    char id_type[PSTORE_TYPE_MAX]; /* "CROSS_DEVICE", "NON_PEOPLE", ... */
};

/* By code (case-insensitive) in a sandbox, or by gid. ING_ENOTFOUND when the graph has never
 * seen the namespace. Cached after the first read. */
int pstore_ns_by_code(struct pstore *ps, const char *sandbox, const char *code,
                      struct pstore_ns *out, struct ing_err *err);
int pstore_ns_by_gid(struct pstore *ps, int64_t gid, struct pstore_ns *out, struct ing_err *err);
int pstore_ns_by_nsid(struct pstore *ps, const char *sandbox, int64_t nsid, struct pstore_ns *out,
                      struct ing_err *err);

/* ---- Identity graph: reads ---- */

struct pstore_member {
    int64_t id;
    int64_t gid;
    char *value;      /* owned */
    int64_t first_ts; /* ms */
    int64_t last_ts;
};
void pstore_members_free(struct pstore_member *m, size_t n);

/* The identity (gid, value): its id and cluster label. ING_ENOTFOUND when unknown. */
int pstore_ident_lookup(struct pstore *ps, int64_t gid, const char *value, int64_t *id,
                        int64_t *cluster, struct ing_err *err);
/* Every identity (gid, value), in no particular order; fn returning non-zero stops the scan. */
typedef int pstore_ident_fn(void *ctx, int64_t gid, const char *value);
int pstore_ident_scan(struct pstore *ps, pstore_ident_fn *fn, void *ctx, struct ing_err *err);
/* Members of a cluster, by id. When the cluster has more than `max` members (max > 0), returns
 * ING_ETOOBIG with *total set and nothing in *out. */
int pstore_cluster_members(struct pstore *ps, int64_t cluster, size_t max,
                           struct pstore_member **out, size_t *n, size_t *total,
                           struct ing_err *err);

/* One edge row: the link a-b as one batch of one dataset made it. */
struct pstore_edge {
    int64_t a, b;
    int64_t seq;
    const char *batch;
    const char *dataset;
    int64_t first_ts, last_ts;
};
typedef int pstore_edge_fn(void *ctx, const struct pstore_edge *e);
/* Every edge row touching identity `id` (as a or b), self edges included. */
int pstore_edges_of(struct pstore *ps, int64_t id, pstore_edge_fn *fn, void *ctx,
                    struct ing_err *err);

/* ---- Profile store: reads ---- */

struct pstore_frag {
    const char *dataset;
    const char *batch;
    int64_t seq;   /* batch order: larger is newer */
    int64_t ts;    /* ms, when the batch reached the profile store */
    bool upsert;   /* patches the older fragment of its dataset instead of replacing it */
    const char *doc;
};
typedef int pstore_frag_fn(void *ctx, const struct pstore_frag *f);
/* Fragments of primary identity (gid, value), ordered by seq. */
int pstore_frags(struct pstore *ps, int64_t gid, const char *value, pstore_frag_fn *fn, void *ctx,
                 struct ing_err *err);

struct pstore_event {
    int64_t ts;       /* the event's timestamp, ms */
    const char *eid;  /* _id */
    const char *dataset;
    const char *batch;
    int64_t seq;
    int64_t stored_ts;
    const char *doc;
};
typedef int pstore_event_fn(void *ctx, const struct pstore_event *e);
/* Events of primary identity (gid, value) with start <= ts < end, by ts then _id then seq. */
int pstore_events(struct pstore *ps, int64_t gid, const char *value, int64_t start, int64_t end,
                  pstore_event_fn *fn, void *ctx, struct ing_err *err);
/* True when the identity has at least one event, or (events_only false) fragment or event. */
int pstore_has_profile_data(struct pstore *ps, int64_t gid, const char *value, bool events_only,
                            bool *out, struct ing_err *err);

/* ---- Stage records ---- */

/* The record of stage `stage` ("identity", "profile", "removed") of a batch; ING_ENOTFOUND when
 * the stage has not run. *out is new. */
int pstore_stage_get(struct pstore *ps, const char *batch, const char *stage, json_t **out,
                     struct ing_err *err);

/* ---- Writes (one transaction) ---- */

int pstore_begin(struct pstore *ps, struct pstore_tx **out, struct ing_err *err);
/* Commit and free the transaction (also on failure, after rolling back). */
int pstore_commit(struct pstore_tx *tx, struct ing_err *err);
void pstore_rollback(struct pstore_tx *tx); /* NULL is a no-op */

/* A fresh id for an identity or a cluster label; persisted when the transaction commits. */
int64_t pstore_tx_next_id(struct pstore_tx *tx);
/* The namespace's gid, created when new. */
int pstore_tx_ns_ensure(struct pstore_tx *tx, const char *sandbox, const char *code, int64_t nsid,
                        const char *id_type, int64_t *gid, struct ing_err *err);
int pstore_tx_stage_get(struct pstore_tx *tx, const char *batch, const char *stage, json_t **out,
                        struct ing_err *err);
int pstore_tx_stage_put(struct pstore_tx *tx, const char *sandbox, const char *batch,
                        const char *stage, const json_t *rec, struct ing_err *err);
/* The batch's order number: assigned on first call (recording its dataset), stable afterwards.
 * find: ING_ENOTFOUND when the batch never reached the graph or the profile store. */
int pstore_tx_batch_seq(struct pstore_tx *tx, const char *batch, const char *dataset,
                        int64_t *seq, struct ing_err *err);
int pstore_tx_batch_find(struct pstore_tx *tx, const char *batch, int64_t *seq,
                         struct ing_err *err);

/* Identities. find: ING_ENOTFOUND when unknown. touch: last_ts = max(last_ts, ts). */
int pstore_tx_ident_find(struct pstore_tx *tx, int64_t gid, const char *value, int64_t *id,
                         int64_t *cluster, struct ing_err *err);
int pstore_tx_ident_insert(struct pstore_tx *tx, int64_t id, int64_t gid, const char *value,
                           int64_t cluster, int64_t ts, struct ing_err *err);
int pstore_tx_ident_touch(struct pstore_tx *tx, int64_t id, int64_t ts, struct ing_err *err);
int pstore_tx_ident_cluster(struct pstore_tx *tx, int64_t id, int64_t *cluster,
                            struct ing_err *err);
int pstore_tx_ident_set_cluster(struct pstore_tx *tx, int64_t id, int64_t cluster,
                                struct ing_err *err);
/* Delete an identity and every edge touching it. */
int pstore_tx_ident_delete(struct pstore_tx *tx, int64_t id, struct ing_err *err);
int pstore_tx_ident_edge_count(struct pstore_tx *tx, int64_t id, int64_t *n, struct ing_err *err);

/* Clusters. */
int pstore_tx_cluster_size(struct pstore_tx *tx, int64_t cluster, int64_t *n, struct ing_err *err);
int pstore_tx_cluster_relabel(struct pstore_tx *tx, int64_t from, int64_t to, struct ing_err *err);
int pstore_tx_cluster_members(struct pstore_tx *tx, int64_t cluster, struct pstore_member **out,
                              size_t *n, struct ing_err *err);

/* Edges: add (a <= b is enforced here; a repeated add of the same batch keeps the earliest
 * first_ts and the latest last_ts); the neighbours of an identity (self edges left out,
 * duplicates possible); delete a batch's edges, returning the distinct identities they touched. */
int pstore_tx_edge_add(struct pstore_tx *tx, int64_t a, int64_t b, int64_t seq, int64_t ts,
                       struct ing_err *err);
int pstore_tx_neighbours(struct pstore_tx *tx, int64_t id, int64_t **out, size_t *n,
                         struct ing_err *err);
int pstore_tx_edges_delete_batch(struct pstore_tx *tx, int64_t seq, int64_t **idents,
                                 size_t *n, int64_t *deleted, struct ing_err *err);

/* Profile fragments and events. frag_put replaces the fragment of (gid, value, dataset, seq).
 * frag_get: ING_ENOTFOUND when absent; *doc new. */
int pstore_tx_frag_put(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, int64_t ts, bool upsert, const char *doc, struct ing_err *err);
int pstore_tx_frag_get(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, char **doc, struct ing_err *err);
int pstore_tx_event_put(struct pstore_tx *tx, int64_t gid, const char *value, int64_t ts,
                        const char *eid, int64_t seq, int64_t stored_ts, const char *doc,
                        struct ing_err *err);
int pstore_tx_profile_delete_batch(struct pstore_tx *tx, int64_t seq, int64_t *frags,
                                   int64_t *events, struct ing_err *err);

#endif
