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
 *   identity   (id) a (gid, value) pair, member of exactly one cluster, with the first and last
 *              time a batch carried it. Ids and cluster labels come from one counter that never
 *              goes back, so a label is never reused.
 *   cluster    (label) one connected component of the graph, stored as one compact document:
 *              its members (by id) and its edges. An edge (a, b, seq) says "a and b appeared in
 *              one row of batch seq" (a == b when the identity was alone in its row), with first
 *              and last time: the provenance of a link is the set of its edges.
 *   dictionary (gid, value) -> cluster label, through a 64-bit hash of the key
 *              (pstore_ident_hash) in a linear-hashing table of small buckets; a hit is
 *              confirmed against the cluster's members, so hash collisions cost a read, not a
 *              wrong answer.
 *   batch      (seq) a batch that reached the graph or the profile store, with its dataset; seq
 *              orders batches (larger is newer) and keys the rows each batch wrote. The graph
 *              remembers the labels each batch's edges went to (followed through later merges
 *              and splits), so that taking a batch out reads only the clusters it touched.
 *   fragment   (gid, value, dataset, seq) one profile record of a dataset keyed by its primary
 *              identity; seq orders batches (a newer batch's fragment wins, or patches with upsert).
 *   event      (gid, value, ts, _id, seq) one experience event under its primary identity.
 *   stage      (batch, stage) the durable record that a downstream stage ran for a batch, written
 *              in the same transaction as the stage's data: running a stage twice is impossible.
 *
 * Bulk writes: graph writes in a transaction (cluster puts and deletes, dictionary changes) are
 * buffered in memory and written grouped (many clusters per row, one dictionary bucket per row)
 * when the transaction commits or before its next graph read, so a million-record batch is tens
 * of thousands of row writes, not millions.
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

#include "util/buf.h"
#include "util/err.h"

#define PSTORE_CODE_MAX 128
#define PSTORE_TYPE_MAX 24

struct pstore;
struct pstore_tx;

struct pstore_opts {
    bool fast; /* synchronous=OFF: for tests and benchmarks only (a power cut may lose data) */
    int checkpoint_frames; /* WAL pages that wake the background checkpoint; 0: 1000 */
    bool no_lookup_hint; /* no in-memory dictionary for stored answers (pstore_view_hint) */
    int lookup_hint_retry_ms; /* a failed build of that hint is tried again by a lookup this
                               * long after; 0: 30 s */
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

/* ---- Identity graph: documents ---- */

struct pstore_member {
    int64_t id;
    int64_t gid;
    char *value;      /* owned by the struct that holds the member */
    int64_t first_ts; /* ms */
    int64_t last_ts;
};
void pstore_members_free(struct pstore_member *m, size_t n);

/* One edge of a cluster: members a <= b (indexes into the cluster's members; a == b for a self
 * edge), the batch that made it and when. */
struct pstore_cedge {
    uint32_t a, b;
    int64_t seq;
    int64_t first_ts, last_ts;
};

/* A cluster document. Decoded ones (pstore_*cluster* reads) own their arrays and values
 * (pstore_cluster_clear); for pstore_tx_cluster_put the caller's arrays are borrowed. Members
 * are in ascending id order. */
struct pstore_cluster {
    int64_t label;
    struct pstore_member *members;
    size_t n;
    struct pstore_cedge *edges;
    size_t ne;
    char *strings;    /* decoded: the values' storage */
};
void pstore_cluster_clear(struct pstore_cluster *c); /* keeps nothing; NULL is a no-op */

/* The stable 64-bit hash of an identity key, persisted in the dictionary: it must never change. */
uint64_t pstore_ident_hash(int64_t gid, const char *value, size_t len);

/* ---- Identity graph: reads ---- */

/* The identity (gid, value): its id and cluster label. ING_ENOTFOUND when unknown. */
int pstore_ident_lookup(struct pstore *ps, int64_t gid, const char *value, int64_t *id,
                        int64_t *cluster, struct ing_err *err);
/* The identity (gid, value) and its whole cluster (members and edges), read in one snapshot.
 * ING_ENOTFOUND when unknown. With max > 0 and a cluster of more than max members: ING_ETOOBIG
 * with *total set and c->label filled, nothing else. */
int pstore_ident_cluster(struct pstore *ps, int64_t gid, const char *value, size_t max,
                         int64_t *id, struct pstore_cluster *c, size_t *total,
                         struct ing_err *err);
/* Members of a cluster, by id. When the cluster has more than `max` members (max > 0), returns
 * ING_ETOOBIG with *total set and nothing in *out. An unknown label has no member. */
int pstore_cluster_members(struct pstore *ps, int64_t cluster, size_t max,
                           struct pstore_member **out, size_t *n, size_t *total,
                           struct ing_err *err);

/* One edge of a cluster with its provenance, by identity ids (a <= b). */
struct pstore_edge {
    int64_t a, b;
    int64_t seq;
    const char *batch;
    const char *dataset;
    int64_t first_ts, last_ts;
};
typedef int pstore_edge_fn(void *ctx, const struct pstore_edge *e);
/* Every edge of cluster `label` (self edges included), by (a, b, seq). */
int pstore_cluster_edges(struct pstore *ps, int64_t label, pstore_edge_fn *fn, void *ctx,
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
/* The fragments of n identities (gids[i] 0: skipped) in one read snapshot: fn gets the index of
 * the identity each fragment belongs to. */
typedef int pstore_frags_many_fn(void *ctx, size_t index, const struct pstore_frag *f);
int pstore_frags_many(struct pstore *ps, size_t n, const int64_t *gids,
                      const char *const *values, pstore_frags_many_fn *fn, void *ctx,
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

/* ---- Graph writes (buffered; see "Bulk writes" above) ---- */

/* Candidate clusters of n identity hashes: labels[off[i] .. off[i + 1]) may hold identity i
 * (usually one label or none; confirm membership in the cluster). *labels and *off are new
 * (util/bigmem.h: release with bigmem_free). */
int pstore_tx_dict_candidates(struct pstore_tx *tx, size_t n, const uint64_t *hashes,
                              int64_t **labels, size_t **off, struct ing_err *err);
/* Record a dictionary change of identity hash h: old_label 0 inserts, new_label 0 deletes,
 * both set moves it to another cluster. */
void pstore_tx_dict_change(struct pstore_tx *tx, uint64_t h, int64_t old_label,
                           int64_t new_label);
/* The cluster `label` (decoded, new). ING_ENOTFOUND when absent. */
int pstore_tx_cluster_get(struct pstore_tx *tx, int64_t label, struct pstore_cluster *out,
                          struct ing_err *err);
/* The clusters of n ascending labels, each group row read once: out[i] decoded, or all zero
 * (label 0) when absent. Their arrays live in *arena (new; pstore_arena_free, never
 * pstore_cluster_clear). ING_EINVAL when labels do not ascend. */
struct pstore_arena;
int pstore_tx_clusters_get(struct pstore_tx *tx, const int64_t *labels, size_t n,
                           struct pstore_cluster *out, struct pstore_arena **arena,
                           struct ing_err *err);
void pstore_arena_free(struct pstore_arena *a); /* NULL is a no-op */
/* Store (replace) or delete a cluster document. put copies what it needs. ING_EINVAL for a
 * document that breaks the rules (members not ascending, an edge out of range). */
int pstore_tx_cluster_put(struct pstore_tx *tx, const struct pstore_cluster *c,
                          struct ing_err *err);
void pstore_tx_cluster_delete(struct pstore_tx *tx, int64_t label);
/* Label `from` no longer exists: its identities went to `to` (a merge, or one part of a split). */
int pstore_tx_label_forward(struct pstore_tx *tx, int64_t from, int64_t to, struct ing_err *err);
/* Remember that batch seq's edges went to these clusters. */
int pstore_tx_batch_labels_add(struct pstore_tx *tx, int64_t seq, const int64_t *labels,
                               size_t n, struct ing_err *err);
/* The clusters that now hold batch seq's edges (its remembered labels followed through
 * forwards; only existing clusters), ascending, new; and forget them. */
int pstore_tx_batch_labels_take(struct pstore_tx *tx, int64_t seq, int64_t **labels, size_t *n,
                                struct ing_err *err);

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

/* ---- Stored answers ---- */
/*
 * A profile lookup's common case is answered from a stored, ready-to-send body per cluster
 * (table pbody: label -> stamp, the members' keys, body), found through the graph's dictionary
 * and confirmed against the members' keys, so a body is only ever served for its own members.
 * The bodies are made by a builder that the profile module registers; pstore keeps them exact:
 * every transaction notes what its graph and profile writes change (cluster documents rewritten
 * or deleted, identities that moved, identities whose fragments or events changed) and, at
 * commit, inside the same transaction, drops the stale bodies and rebuilds the clusters
 * concerned (those that had a body, those their identities moved to, and those of identities
 * whose profile data changed). The stamp says what a body was built under (merge policy,
 * settings): a reader compares it with its own and falls back to the general path on a
 * mismatch. An empty body is a placeholder (no stored answer, but revisited by a rebuild).
 */
struct pstore_view_src {
    const char *sandbox;
    const struct pstore_cluster *cluster; /* members by id (no edges) */
    const struct pstore_ns *ns;           /* ns[i]: the namespace of members[i] */
    const struct pstore_frag *frags;      /* the members' fragments, by member then seq */
    const size_t *frag_member;            /* frags[k] is keyed by members[frag_member[k]] */
    size_t nfrags;
    bool has_events;                      /* nfrags 0: some member has an experience event */
};
/* Build the stored answer of a cluster: *body new (malloc) with *len bytes and *stamp, or
 * *body NULL to store none (lookups of the cluster then take the general path). */
typedef int pstore_view_fn(void *ctx, const struct pstore_view_src *src, int64_t *stamp,
                           char **body, size_t *len, struct ing_err *err);
/* Register the builder (NULL: none; stale answers are still dropped). */
void pstore_set_view_builder(struct pstore *ps, pstore_view_fn *fn, void *ctx);
/* The stored answer for identity (gid, value): *stamp, and the body appended to *out.
 * ING_ENOTFOUND when there is none. */
int pstore_view_get(struct pstore *ps, int64_t gid, const char *value, int64_t *stamp,
                    struct buf *out, struct ing_err *err);
/* Rebuild up to max stored answers (after a merge policy change): those of labels > *after,
 * in label order, in one transaction; *after advances, *done counts them (0: finished). */
int pstore_view_rebuild(struct pstore *ps, size_t max, int64_t *after, size_t *done,
                        struct ing_err *err);
/* Stored answers for clusters that never had one: a database from before stored answers
 * (schema version 3) is marked when migrated, and each call builds the answers of up to max
 * more clusters in label order, in one transaction that also records how far it got (a restart
 * resumes). *done counts them; 0 when nothing is (left) to do. ING_ESTATE without a builder. */
int pstore_view_backfill(struct pstore *ps, size_t max, size_t *done, struct ing_err *err);
/* The lookup hint: the identity dictionary kept in memory (12 bytes an identity) so that a
 * stored answer's lookup reads one B-tree (the answer) instead of two. Built in the background
 * at the first lookup (or this call), then updated after every commit; a stale or wrong hint
 * only sends a lookup to the general path, since a body is served only to its own members.
 * This call starts the build if needed, waits up to wait_ms for it, and says where it is. */
struct pstore_hint_stats {
    bool ready;     /* lookups use it */
    bool failed;    /* the build failed (logged): lookups read the dictionary, and one after
                     * lookup_hint_retry_ms starts the build again */
    size_t buckets; /* the dictionary's buckets */
    size_t entries; /* identities */
    size_t bytes;   /* memory held (entries and bucket directory) */
};
void pstore_view_hint(struct pstore *ps, int wait_ms, struct pstore_hint_stats *out);

#endif
