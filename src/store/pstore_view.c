/*
 * pstore_view.c - stored answers of profile lookups (pstore.h, "Stored answers"): the table
 * pbody (cluster label -> stamp, members' keys, body), kept exact inside the transactions that
 * change the graph or the profile data.
 *
 * Why a body is exact when served: a body for label L is rebuilt or dropped by every
 * transaction that changes L (its document rewritten or deleted) or the profile data of one of
 * its identities, so a body present in a snapshot is L's answer in that snapshot. A reader finds
 * L through the dictionary and serves the body only if the identity is among the members the
 * body was built for: then the identity's cluster is L and the body is its answer, whatever the
 * dictionary read saw. Anything else (no body, not a member, another stamp) goes to the general
 * path.
 *
 * What a transaction notes, and what refresh does at commit (after the graph flush, so reads
 * see the final graph):
 *   - a cluster document rewritten or deleted (not one this transaction created: those have no
 *     body yet): its body goes, and the cluster is rebuilt when it had one;
 *   - an identity that moved from cluster A to B: B is rebuilt when A had a body;
 *   - an identity whose fragments or events changed (put, or deleted with a batch): the clusters
 *     the dictionary says may hold it are rebuilt.
 * A rebuild reads the clusters in bulk (each group row once), their members' namespaces and
 * fragments (and, with no fragment, whether they have events) and asks the builder (the profile
 * module) for each body. Bodies are keyed by label, so a fresh batch's bodies are appended in
 * label order; its identity stage costs nothing here, its profile stage one build per cluster
 * it wrote to. A database from before stored answers is marked at migration and backfilled in
 * label-ordered slices (pstore_view_backfill) once the builder is registered.
 *
 * The read side is a lookup's hot path: the candidate labels come from the dictionary kept in
 * memory (pstore_hint.c; until it is built, from the dictionary's B-tree, its shape read once
 * per snapshot), a reader keeps its snapshot between lookups (below) and copies the body once,
 * from the mapped page into the caller's buffer. Whatever the candidates' source, the body is
 * served only after keys_have finds the identity among its members in the same snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pstore.h"
#include "store/pstore_int.h"
#include "util/bigmem.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sort.h"

struct moved {
    int64_t old_label, new_label;
};

struct pstore_view_tx {
    struct moved *moved;
    size_t nmoved, capmoved;
    int64_t *labels;       /* cluster documents rewritten or deleted (older than the tx) */
    size_t nlabels, caplabels;
    uint64_t *keys;        /* identity hashes whose profile data changed */
    size_t nkeys, capkeys;
};

static struct pstore_view_tx *vtx(struct pstore_tx *tx)
{
    if (!tx->v)
        tx->v = xcalloc(1, sizeof(*tx->v));
    return tx->v;
}

void pstore__view_tx_free(struct pstore_tx *tx)
{
    struct pstore_view_tx *v = tx ? tx->v : NULL;
    if (!v)
        return;
    free(v->moved);
    free(v->labels);
    free(v->keys);
    free(v);
    tx->v = NULL;
}

static void push_i64(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = x;
}

void pstore__view_note_ident(struct pstore_tx *tx, int64_t old_label, int64_t new_label)
{
    /* From no cluster, or from one this transaction created: no body to follow. */
    if (old_label == 0 || new_label == 0 || (old_label >= tx->first_id && tx->first_id > 0))
        return;
    struct pstore_view_tx *v = vtx(tx);
    if (v->nmoved == v->capmoved) {
        v->capmoved = v->capmoved ? v->capmoved * 2 : 256;
        v->moved = xrealloc(v->moved, v->capmoved * sizeof(*v->moved));
    }
    v->moved[v->nmoved++] = (struct moved){old_label, new_label};
}

void pstore__view_note_label(struct pstore_tx *tx, int64_t label)
{
    /* Labels are never reused: one this transaction created has no body to drop. */
    if (label >= tx->first_id && tx->first_id > 0)
        return;
    struct pstore_view_tx *v = vtx(tx);
    push_i64(&v->labels, &v->nlabels, &v->caplabels, label);
}

void pstore__view_note_key(struct pstore_tx *tx, int64_t gid, const char *value)
{
    struct pstore_view_tx *v = vtx(tx);
    if (v->nkeys == v->capkeys) {
        v->capkeys = v->capkeys ? v->capkeys * 2 : 256;
        v->keys = xrealloc(v->keys, v->capkeys * sizeof(*v->keys));
    }
    v->keys[v->nkeys++] = pstore_ident_hash(gid, value, strlen(value));
}

int pstore__view_note_seq(struct pstore_tx *tx, int64_t seq, struct ing_err *err)
{
    const enum pstore_stmt which[] = {S_FRAG_KEYS_SEQ, S_EVENT_KEYS_SEQ};
    for (size_t i = 0; i < ING_ARRAY_LEN(which); i++) {
        sqlite3_stmt *s = NULL;
        int ret = pstore__stmt(tx->c, which[i], &s, err);
        if (ret)
            return ret;
        sqlite3_bind_int64(s, 1, seq);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(s, 1);
            pstore__view_note_key(tx, sqlite3_column_int64(s, 0), t ? (const char *)t : "");
        }
        if (rc != SQLITE_DONE)
            ret = pstore__map_sqlite(err, tx->c->db, rc, "batch identities");
        pstore__done(s);
        if (ret)
            return ret;
    }
    return 0;
}

static int cmp_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* ---------------------------------------------------------------------------------------------- */
/* Rows */

static int body_delete(struct pstore_tx *tx, int64_t label, bool *had, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_BODY_DEL, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, label);
    ret = pstore__step_done(tx->c, s, "stored answer delete", err);
    if (ret == 0 && had)
        *had = sqlite3_changes(tx->c->db) > 0;
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Building one cluster's answer */

struct gather {
    struct pstore_frag *frags;
    size_t *member;
    char **strs;
    size_t n, cap, nstrs;
};

static void gather_free(struct gather *g)
{
    for (size_t i = 0; i < g->nstrs; i++)
        free(g->strs[i]);
    free(g->strs);
    free(g->frags);
    free(g->member);
}

static const char *gather_str(struct gather *g, const unsigned char *t)
{
    return g->strs[g->nstrs++] = xstrdup(t ? (const char *)t : "");
}

static int gather_frags(struct pstore_tx *tx, size_t member, const struct pstore_member *m,
                        struct gather *g, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_FRAGS, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, m->gid);
    sqlite3_bind_text(s, 2, m->value, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 8;
            g->frags = xrealloc(g->frags, g->cap * sizeof(*g->frags));
            g->member = xrealloc(g->member, g->cap * sizeof(*g->member));
            g->strs = xrealloc(g->strs, 3 * g->cap * sizeof(*g->strs));
        }
        struct pstore_frag *f = &g->frags[g->n];
        f->dataset = gather_str(g, sqlite3_column_text(s, 0));
        f->batch = gather_str(g, sqlite3_column_text(s, 1));
        f->seq = sqlite3_column_int64(s, 2);
        f->ts = sqlite3_column_int64(s, 3);
        f->upsert = sqlite3_column_int(s, 4) != 0;
        f->doc = gather_str(g, sqlite3_column_text(s, 5));
        g->member[g->n++] = member;
    }
    if (rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, tx->c->db, rc, "fragments");
    pstore__done(s);
    return ret;
}

static int has_event(struct pstore_tx *tx, const struct pstore_member *m, bool *out,
                     struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_HAS_EVENT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, m->gid);
    sqlite3_bind_text(s, 2, m->value, -1, SQLITE_STATIC);
    int64_t one = 0;
    ret = pstore__step_int(tx->c, s, &one, "events", err);
    if (ret == 0)
        *out = true;
    return ret == ING_ENOTFOUND ? 0 : ret;
}

static void put_uv(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];
    buf_append(b, tmp, pstore__uv_put(tmp, v));
}

/* The members' keys of a body: per member, gid and value length (varints), value bytes. */
static bool keys_have(const uint8_t *p, size_t len, int64_t gid, const char *value, size_t vlen)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t g = 0, n = 0;
        if (!pstore__uv_get(&p, end, &g) || !pstore__uv_get(&p, end, &n) ||
            n > (uint64_t)(end - p))
            return false;
        if (g == (uint64_t)gid && n == vlen && memcmp(p, value, vlen) == 0)
            return true;
        p += n;
    }
    return false;
}

static int store_answer(struct pstore_tx *tx, const struct pstore_cluster *c, int64_t stamp,
                        const char *body, size_t len, struct ing_err *err)
{
    struct buf keys = {0};
    for (size_t i = 0; i < c->n; i++) {
        size_t n = strlen(c->members[i].value);
        put_uv(&keys, (uint64_t)c->members[i].gid);
        put_uv(&keys, n);
        buf_append(&keys, c->members[i].value, n);
    }
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_BODY_PUT, &s, err);
    if (ret == 0) {
        sqlite3_bind_int64(s, 1, c->label);
        sqlite3_bind_int64(s, 2, stamp);
        sqlite3_bind_blob(s, 3, keys.data ? (const void *)keys.data : "", (int)keys.len,
                          SQLITE_STATIC);
        sqlite3_bind_blob(s, 4, body, (int)len, SQLITE_STATIC);
        ret = pstore__step_done(tx->c, s, "stored answer", err);
    }
    buf_free(&keys);
    return ret;
}

/* Build and store (or drop) the answer of cluster `label`, whose document c was read in this
 * transaction (label 0: the cluster does not exist). */
static int build_one(struct pstore_tx *tx, int64_t label, const struct pstore_cluster *c,
                     struct ing_err *err)
{
    struct pstore *ps = tx->ps;
    struct pstore_ns *ns = NULL;
    struct gather g = {0};
    char *body = NULL;
    int ret = 0;
    if (c->label == 0 || c->n == 0 || !ps->view_fn) {
        ret = body_delete(tx, label, NULL, err);
        goto out;
    }
    ns = xcalloc(c->n, sizeof(*ns));
    char sandbox[65] = "";
    bool events = false;
    for (size_t i = 0; i < c->n && ret == 0; i++) {
        ret = pstore__ns_by_gid_conn(ps, tx->c, c->members[i].gid, &ns[i], sandbox, err);
        if (ret == 0)
            ret = gather_frags(tx, i, &c->members[i], &g, err);
    }
    /* Events matter only to a cluster without fragments (a profile of events alone). */
    for (size_t i = 0; i < c->n && ret == 0 && g.n == 0 && !events; i++)
        ret = has_event(tx, &c->members[i], &events, err);
    if (ret)
        goto out;
    struct pstore_view_src src = {.sandbox = sandbox, .cluster = c, .ns = ns, .frags = g.frags,
                                  .frag_member = g.member, .nfrags = g.n, .has_events = events};
    int64_t stamp = 0;
    size_t len = 0;
    struct ing_err berr;
    ing_err_clear(&berr);
    if (ps->view_fn(ps->view_ctx, &src, &stamp, &body, &len, &berr) != 0) {
        /* The builder failed (say, reading the merge policy): no stored answer for this
         * cluster, its lookups take the general path; the batch's own writes still commit. */
        log_warn("pstore: no stored answer for cluster %lld: %s", (long long)label, berr.msg);
        free(body);
        body = NULL;
    }
    ret = body ? store_answer(tx, c, stamp, body, len, err) : body_delete(tx, label, NULL, err);
out:
    free(body);
    free(ns);
    gather_free(&g);
    return ret;
}

/* Clusters read per bulk read: bounds the arena while keeping one read per group row. */
#define BUILD_SLICE 1024

/* Build the answers of n clusters (ascending, distinct labels), reading their documents in
 * bulk (each group row once). */
static int build_many(struct pstore_tx *tx, const int64_t *labels, size_t n, struct ing_err *err)
{
    while (n > 0 && labels[0] <= 0) { /* no cluster has such a label */
        labels++;
        n--;
    }
    struct pstore_cluster *cl = xcalloc(n < BUILD_SLICE ? (n ? n : 1) : BUILD_SLICE, sizeof(*cl));
    int ret = 0;
    for (size_t at = 0; at < n && ret == 0; at += BUILD_SLICE) {
        size_t k = n - at < BUILD_SLICE ? n - at : BUILD_SLICE;
        struct pstore_arena *arena = NULL;
        ret = pstore_tx_clusters_get(tx, labels + at, k, cl, &arena, err);
        for (size_t i = 0; i < k && ret == 0; i++)
            ret = build_one(tx, labels[at + i], &cl[i], err);
        pstore_arena_free(arena);
    }
    free(cl);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Commit */

static bool sorted_has(const int64_t *v, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

int pstore__view_refresh(struct pstore_tx *tx, struct ing_err *err)
{
    struct pstore_view_tx *v = tx->v;
    if (!v || (v->nmoved == 0 && v->nlabels == 0 && v->nkeys == 0))
        return 0;
    int64_t *rebuild = NULL;
    size_t nr = 0, capr = 0;
    int64_t *cand = NULL;
    size_t *off = NULL;
    int ret = 0;
    v->nlabels = sort_unique_i64(v->labels, v->nlabels);
    for (size_t i = 0; i < v->nlabels && ret == 0; i++) {
        bool existed = false;
        ret = body_delete(tx, v->labels[i], &existed, err);
        if (ret == 0 && existed)
            push_i64(&rebuild, &nr, &capr, v->labels[i]);
    }
    /* rebuild[0, nhad) are the labels that had an answer, ascending (labels are sorted). */
    size_t nhad = nr;
    for (size_t i = 0; i < v->nmoved && ret == 0; i++)
        if (sorted_has(rebuild, nhad, v->moved[i].old_label))
            push_i64(&rebuild, &nr, &capr, v->moved[i].new_label);
    if (ret == 0 && v->nkeys > 0) {
        qsort(v->keys, v->nkeys, sizeof(*v->keys), cmp_u64);
        size_t k = 1;
        for (size_t i = 1; i < v->nkeys; i++)
            if (v->keys[i] != v->keys[k - 1])
                v->keys[k++] = v->keys[i];
        v->nkeys = k;
        ret = pstore_tx_dict_candidates(tx, v->nkeys, v->keys, &cand, &off, err);
        for (size_t i = 0; ret == 0 && i < off[v->nkeys]; i++)
            push_i64(&rebuild, &nr, &capr, cand[i]);
    }
    nr = sort_unique_i64(rebuild, nr);
    if (ret == 0)
        ret = build_many(tx, rebuild, nr, err);
    v->nmoved = v->nlabels = v->nkeys = 0;
    bigmem_free(cand);
    bigmem_free(off);
    free(rebuild);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Public calls */

void pstore_set_view_builder(struct pstore *ps, pstore_view_fn *fn, void *ctx)
{
    /* Builds run under the writer's lock: taking it makes the change atomic for them. */
    pthread_mutex_lock(&ps->wmu);
    ps->view_fn = fn;
    ps->view_ctx = ctx;
    pthread_mutex_unlock(&ps->wmu);
}

/* A reader of stored answers keeps its read transaction between lookups: starting and ending
 * one takes and drops the file locks (two fcntl calls), which were the largest part of a
 * lookup's system calls. It stays exact: a snapshot is kept only while no commit happened since
 * it was taken (pstore is the only writer of profile.db, and pstore_commit bumps the
 * generation), and the generation is read before the snapshot starts. It is also kept short,
 * so that checkpoints can copy and restart the WAL: at most SNAPSHOT_MAX_NS old, and ended for
 * the idle readers at every commit. */
#define SNAPSHOT_MAX_NS 2000000

static void snapshot_end(struct pstore_conn *c)
{
    sqlite3_stmt *s = NULL;
    if (c->snapshot && pstore__stmt(c, S_END, &s, NULL) == 0)
        pstore__step_done(c, s, "commit", NULL);
    c->snapshot = false;
    c->dict_cached = false; /* read again in the next snapshot */
}

/* SQLite maps the file as long as it was when first read, and maps it again only after a commit
 * changed the WAL; but the checkpoint thread grows the file after the commit (it copies the
 * commit's new pages), so without this, every page a batch appended would be read with pread
 * (a system call and a 16 KiB copy per page-cache miss) until the next commit. A new mapping
 * limit makes the VFS map the file again (at most once per batch of checkpoints that copied
 * pages, between snapshots: no page of the old mapping is in use). SQLite does nothing when
 * asked for the limit it has, and cuts a larger one to its ceiling, so the new limit is
 * derived from the connection's current one: a step below it, then back up to it. */
#define REMAP_STEP ((sqlite3_int64)65536)

static void remap_if_grown(struct pstore *ps, struct pstore_conn *c)
{
    uint64_t copied = atomic_load(&ps->ckpt_copied);
    if (copied == c->map_gen)
        return;
    c->map_gen = copied;
    sqlite3_int64 limit = -1; /* a negative limit only reads the current one back */
    if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_MMAP_SIZE, &limit) != SQLITE_OK ||
        limit <= REMAP_STEP)
        return; /* not mapped at all: nothing to map again */
    limit += c->map_lowered ? REMAP_STEP : -REMAP_STEP;
    if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_MMAP_SIZE, &limit) == SQLITE_OK)
        c->map_lowered = !c->map_lowered;
}

static int view_conn_get(struct pstore *ps, struct pstore_conn **out, struct ing_err *err)
{
    pthread_mutex_lock(&ps->mu);
    struct pstore_conn *c = ps->view_free;
    if (c)
        ps->view_free = c->next_free;
    pthread_mutex_unlock(&ps->mu);
    int ret = 0;
    if (!c && (ret = pstore__conn_acquire(ps, &c, err)) == 0)
        c->snapshot = false;
    if (ret)
        return ret;
    uint64_t gen = atomic_load(&ps->commits);
    int64_t now = clock_mono_ns();
    if (c->snapshot && (c->snapshot_gen != gen || now - c->snapshot_ns > SNAPSHOT_MAX_NS))
        snapshot_end(c);
    if (!c->snapshot) {
        remap_if_grown(ps, c);
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(c, S_BEGIN, &s, err)) == 0)
            ret = pstore__step_done(c, s, "begin", err);
        c->snapshot = ret == 0;
        c->snapshot_gen = gen;
        c->snapshot_ns = now;
    }
    if (ret) { /* a connection that failed to begin goes back to the general pool */
        pstore__conn_release(ps, c);
        return ret;
    }
    *out = c;
    return 0;
}

static void view_conn_put(struct pstore *ps, struct pstore_conn *c, bool failed)
{
    if (failed)
        snapshot_end(c);
    pthread_mutex_lock(&ps->mu);
    c->next_free = ps->view_free;
    ps->view_free = c;
    pthread_mutex_unlock(&ps->mu);
}

void pstore__view_committed(struct pstore *ps)
{
    atomic_fetch_add(&ps->commits, 1);
    pthread_mutex_lock(&ps->mu);
    for (struct pstore_conn *c = ps->view_free; c; c = c->next_free)
        snapshot_end(c);
    pthread_mutex_unlock(&ps->mu);
}

/* More candidate clusters than this for one identity hash (48-bit fingerprints colliding in
 * one bucket) is left to the general path. */
#define VIEW_CANDIDATES 8

int pstore_view_get(struct pstore *ps, int64_t gid, const char *value, int64_t *stamp,
                    struct buf *out, struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    int64_t cand[VIEW_CANDIDATES];
    size_t ncand = 0;
    size_t vlen = strlen(value);
    uint64_t h = pstore_ident_hash(gid, value, vlen);
    /* The hint in memory, when built, spares the dictionary's B-tree; what it says is checked
     * below like what the dictionary says (keys_have), so a stale hint only costs a miss.
     * Nothing there: unknown, or new since; the general path reads the dictionary. */
    bool hinted = pstore__hint_lookup(ps, h, cand, VIEW_CANDIDATES, &ncand);
    if (hinted && (ncand == 0 || ncand > VIEW_CANDIDATES))
        return ING_ENOTFOUND;
    int ret = view_conn_get(ps, &c, err);
    if (ret)
        return ret;
    if (!hinted)
        ret = pstore__dict_lookup(c, h, cand, VIEW_CANDIDATES, &ncand, err);
    if (ncand > VIEW_CANDIDATES)
        ncand = 0; /* not found here: the general path confirms every candidate */
    bool found = false;
    for (size_t i = 0; i < ncand && ret == 0 && !found; i++) {
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(c, S_BODY_GET, &s, err)) != 0)
            break;
        sqlite3_bind_int64(s, 1, cand[i]);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const uint8_t *keys = sqlite3_column_blob(s, 1);
            size_t klen = (size_t)sqlite3_column_bytes(s, 1);
            if (keys && keys_have(keys, klen, gid, value, vlen)) {
                found = true;
                *stamp = sqlite3_column_int64(s, 0);
                /* straight from the mapped page into the caller's buffer: the one copy */
                const void *body = sqlite3_column_blob(s, 2);
                size_t len = (size_t)sqlite3_column_bytes(s, 2);
                if (buf_append(out, body, len) != 0)
                    ret = ing_err_set(err, ING_ETOOBIG,
                                      "pstore: stored answer over the buffer cap");
            }
        } else if (rc != SQLITE_DONE) {
            ret = pstore__map_sqlite(err, c->db, rc, "stored answer");
        }
        sqlite3_reset(s); /* the one binding is an integer: nothing to clear */
    }
    view_conn_put(ps, c, ret != 0);
    return ret ? ret : found ? 0 : ING_ENOTFOUND;
}

int pstore_view_rebuild(struct pstore *ps, size_t max, int64_t *after, size_t *done,
                        struct ing_err *err)
{
    *done = 0;
    struct pstore_tx *tx = NULL;
    int64_t *labels = NULL;
    size_t n = 0, cap = 0;
    int ret = pstore_begin(ps, &tx, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = NULL;
    if ((ret = pstore__stmt(tx->c, S_BODY_LABELS, &s, err)) != 0)
        goto out;
    sqlite3_bind_int64(s, 1, *after);
    sqlite3_bind_int64(s, 2, (int64_t)max);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        push_i64(&labels, &n, &cap, sqlite3_column_int64(s, 0));
    if (rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, tx->c->db, rc, "stored answers");
    pstore__done(s);
    if (ret == 0)
        ret = build_many(tx, labels, n, err);
out:
    if (ret) {
        pstore_rollback(tx);
    } else if ((ret = pstore_commit(tx, err)) == 0 && n > 0) {
        *after = labels[n - 1];
        *done = n;
    }
    free(labels);
    return ret;
}

int pstore_view_backfill(struct pstore *ps, size_t max, size_t *done, struct ing_err *err)
{
    *done = 0;
    struct pstore_tx *tx = NULL;
    int64_t *labels = NULL, after = 0;
    size_t n = 0;
    int ret = pstore_begin(ps, &tx, err);
    if (ret)
        return ret;
    ret = pstore__kv_get(tx->c, PSTORE_KV_VIEW_BACKFILL, &after, err);
    if (ret == ING_ENOTFOUND) { /* nothing pending */
        pstore_rollback(tx);
        return 0;
    }
    if (ret == 0 && !ps->view_fn)
        ret = ing_err_set(err, ING_ESTATE, "pstore: no builder of stored answers");
    if (ret == 0)
        ret = pstore__cluster_labels_after(tx, after, max ? max : 1, &labels, &n, err);
    if (ret == 0)
        ret = build_many(tx, labels, n, err);
    /* the cursor moves with the answers it built, in the same transaction: a crash resumes */
    if (ret == 0 && n == (max ? max : 1))
        ret = pstore__kv_put(tx->c, PSTORE_KV_VIEW_BACKFILL, labels[n - 1], err);
    else if (ret == 0)
        ret = pstore__exec(tx->c->db, "DELETE FROM kv WHERE k='" PSTORE_KV_VIEW_BACKFILL "'", err);
    if (ret)
        pstore_rollback(tx);
    else if ((ret = pstore_commit(tx, err)) == 0)
        *done = n;
    free(labels);
    return ret;
}
