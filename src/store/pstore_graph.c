/*
 * pstore_graph.c - the identity graph's storage in the SQLite pstore: cluster documents, the
 * identity dictionary, label forwards and the labels each batch touched (pstore.h, "Model").
 *
 * Why documents: a row per identity and per edge (the first design) made a million-record batch
 * 3 million B-tree inserts into six indexes, ~8 s. Here a cluster is one compact document
 * (varints, values stored once, times as deltas) and documents are grouped 128 labels to a row
 * (`gclu`, keyed by label >> 7), so a fresh batch writes clusters as a sequential append of a few
 * tens of thousands of rows. The dictionary (gid, value) -> label is a linear-hashing table
 * (Litwin 1980) of buckets of ~200 fixed-width entries (`gdict`): 48 bits of the key's hash and
 * a 48-bit label, sorted by hash; it grows one bucket split at a time, so a batch rewrites only
 * the buckets its identities fall in. Hash hits are confirmed against the cluster's members.
 *
 * Writes of a transaction are buffered (struct pstore_graph_tx) and written sorted and grouped
 * by pstore__graph_flush, at commit or before the transaction's next graph read. A batch's
 * reads are grouped too: pstore_tx_clusters_get reads each group row once and decodes into an
 * arena. Arrays sized by the batch live on huge pages (util/bigmem): on a paravirtualised VM
 * first-touch page faults of 4 KiB pages cost more than the work done on them.
 *
 * Encodings (all integers LEB128 varints; "zz" marks zigzag-signed ones):
 *   group row body: count, then count x (label - previous label (the first: from the group's
 *                   first label), payload length), then the payloads in that order.
 *   cluster payload: n members, n edges, zz base time,
 *                   members: id - previous id, gid, value length, value bytes, zz first - base,
 *                            zz last - first
 *                   edges:   a, b - a, seq, zz first - base, zz last - first
 *   bucket body:    entries of 12 bytes: hash >> 16 (6 bytes LE), label (6 bytes LE).
 *   batch labels:   count, then ascending labels as deltas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pstore.h"
#include "store/pstore_int.h"
#include "util/bigmem.h"
#include "util/mem.h"
#include "util/sort.h"

#define GROUP_SHIFT 7
#define DICT_FILL 200                 /* average entries per bucket before a split */
#define ENTRY_SIZE PSTORE_DICT_ENTRY
#define LABEL_LIMIT (1LL << 48)       /* labels live in 6 bytes of a dictionary entry */
#define KV_DICT_STATE PSTORE_KV_DICT_STATE
#define KV_DICT_COUNT "dict_count"
#define CLUSTER_FLUSH_BYTES (8u << 20)

/* ---------------------------------------------------------------------------------------------- */
/* Byte vectors and varints */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void bytes_reserve(struct bytes *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = bigmem_realloc(b->p, cap);
    b->cap = cap;
}

/* Callers reserve first: at most 10 bytes per varint. */
static void put_uv(struct bytes *b, uint64_t v)
{
    b->len += pstore__uv_put(b->p + b->len, v);
}

static uint64_t zz_enc(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? ~(uint64_t)0 : 0);
}

static int64_t zz_dec(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t get_uv(struct rd *r)
{
    uint64_t v = 0;
    if (!pstore__uv_get(&r->p, r->end, &v))
        r->bad = true;
    return r->bad ? 0 : v;
}

static void put_le48(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 6; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le48(const uint8_t *p)
{
    return pstore__le48(p);
}

/* ---------------------------------------------------------------------------------------------- */
/* The key hash: FNV-1a over the gid's 8 bytes and the value, then a 64-bit finaliser (the
 * FNV state alone mixes its last bytes poorly). Persisted: never change it. */

uint64_t pstore_ident_hash(int64_t gid, const char *value, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    uint64_t g = (uint64_t)gid;
    for (int i = 0; i < 8; i++) {
        h ^= (g >> (8 * i)) & 0xff;
        h *= 1099511628211ULL;
    }
    const unsigned char *p = (const unsigned char *)value;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t fp_of(uint64_t h)
{
    return pstore__dict_fp(h);
}

/* ---------------------------------------------------------------------------------------------- */
/* Cluster documents */

void pstore_members_free(struct pstore_member *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].value);
    free(m);
}

void pstore_cluster_clear(struct pstore_cluster *c)
{
    if (!c)
        return;
    free(c->members);
    free(c->edges);
    free(c->strings);
    memset(c, 0, sizeof(*c));
}

static int bad_doc(struct ing_err *err, const char *why)
{
    return ing_err_set(err, ING_EINVAL, "pstore: cluster document: %s", why);
}

/* Append the payload of c to b. */
static int cluster_encode(struct bytes *b, const struct pstore_cluster *c, struct ing_err *err)
{
    if (c->label <= 0 || c->label >= LABEL_LIMIT)
        return bad_doc(err, "label out of range");
    size_t need = 30;
    for (size_t i = 0; i < c->n; i++)
        need += 50 + strlen(c->members[i].value);
    need += c->ne * 50;
    bytes_reserve(b, need);
    int64_t base = c->n ? c->members[0].first_ts : 0;
    put_uv(b, c->n);
    put_uv(b, c->ne);
    put_uv(b, zz_enc(base));
    int64_t prev = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct pstore_member *m = &c->members[i];
        if (m->id <= prev)
            return bad_doc(err, "member ids not ascending");
        size_t len = strlen(m->value);
        put_uv(b, (uint64_t)(m->id - prev));
        put_uv(b, (uint64_t)m->gid);
        put_uv(b, len);
        memcpy(b->p + b->len, m->value, len);
        b->len += len;
        put_uv(b, zz_enc(m->first_ts - base));
        put_uv(b, zz_enc(m->last_ts - m->first_ts));
        prev = m->id;
    }
    for (size_t i = 0; i < c->ne; i++) {
        const struct pstore_cedge *e = &c->edges[i];
        if (e->a > e->b || e->b >= c->n)
            return bad_doc(err, "edge out of range");
        put_uv(b, e->a);
        put_uv(b, e->b - e->a);
        put_uv(b, (uint64_t)e->seq);
        put_uv(b, zz_enc(e->first_ts - base));
        put_uv(b, zz_enc(e->last_ts - e->first_ts));
    }
    return 0;
}

/* Clusters decoded in bulk (pstore_tx_clusters_get) live in a chunk arena (util/bigmem): loading
 * 100,000 clusters is then not 300,000 mallocs on a heap that has to fault its pages in. */
struct pstore_arena {
    struct bigmem_arena a;
};

void pstore_arena_free(struct pstore_arena *a)
{
    if (!a)
        return;
    bigmem_arena_clear(&a->a);
    free(a);
}

/* Decode a cluster payload; its arrays come from arena `ar`, or from malloc when ar is NULL. */
static int cluster_decode(const uint8_t *p, size_t len, int64_t label, bool with_edges,
                          struct pstore_arena *ar, struct pstore_cluster *out,
                          struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    struct rd r = {p, p + len, false};
    uint64_t n = get_uv(&r), ne = get_uv(&r);
    int64_t base = zz_dec(get_uv(&r));
    /* every member and every edge takes at least 5 bytes: bounds the allocations */
    if (r.bad || n > len / 5 + 1 || ne > len / 5 + 1)
        return ing_err_set(err, ING_EINTERNAL, "pstore: cluster %lld is corrupt",
                           (long long)label);
    out->label = label;
    out->members = ar ? bigmem_arena_take(&ar->a, (n ? n : 1) * sizeof(*out->members), 16)
                     : xcalloc(n ? n : 1, sizeof(*out->members));
    out->strings = ar ? bigmem_arena_take(&ar->a, len + n + 1, 1) : xmalloc(len + n + 1);
    size_t so = 0;
    int64_t prev = 0;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        struct pstore_member *m = &out->members[i];
        m->id = prev + (int64_t)get_uv(&r);
        m->gid = (int64_t)get_uv(&r);
        uint64_t vlen = get_uv(&r);
        if (r.bad || vlen > (uint64_t)(r.end - r.p)) {
            r.bad = true;
            break;
        }
        memcpy(out->strings + so, r.p, vlen);
        m->value = out->strings + so;
        so += vlen;
        out->strings[so++] = '\0';
        r.p += vlen;
        m->first_ts = base + zz_dec(get_uv(&r));
        m->last_ts = m->first_ts + zz_dec(get_uv(&r));
        prev = m->id;
    }
    out->n = n;
    if (with_edges && !r.bad) {
        out->edges = ar ? bigmem_arena_take(&ar->a, (ne ? ne : 1) * sizeof(*out->edges), 16)
                       : xcalloc(ne ? ne : 1, sizeof(*out->edges));
        for (uint64_t i = 0; i < ne && !r.bad; i++) {
            struct pstore_cedge *e = &out->edges[i];
            uint64_t a = get_uv(&r), d = get_uv(&r);
            if (a >= n || d >= n - a) {
                r.bad = true;
                break;
            }
            e->a = (uint32_t)a;
            e->b = (uint32_t)(a + d);
            e->seq = (int64_t)get_uv(&r);
            e->first_ts = base + zz_dec(get_uv(&r));
            e->last_ts = e->first_ts + zz_dec(get_uv(&r));
        }
        out->ne = ne;
    }
    if (r.bad) {
        if (ar)
            memset(out, 0, sizeof(*out)); /* the arena keeps the memory */
        else
            pstore_cluster_clear(out);
        return ing_err_set(err, ING_EINTERNAL, "pstore: cluster %lld is corrupt",
                           (long long)label);
    }
    return 0;
}

/* One cluster of a group row body: where its payload is. */
struct gent {
    int64_t label;
    const uint8_t *p;
    size_t len;
};

/* Parse a group body's directory into *ents (grown as needed). */
static int group_parse(const uint8_t *body, size_t len, int64_t grp, struct gent **ents,
                       size_t *n, size_t *cap, struct ing_err *err)
{
    struct rd r = {body, body + len, false};
    uint64_t count = get_uv(&r);
    if (r.bad || count > len) {
        *n = 0;
        return ing_err_set(err, ING_EINTERNAL, "pstore: cluster group %lld is corrupt",
                           (long long)grp);
    }
    if (count > *cap) {
        *cap = count;
        *ents = xrealloc(*ents, *cap * sizeof(**ents));
    }
    int64_t label = grp << GROUP_SHIFT;
    for (uint64_t i = 0; i < count; i++) {
        label += (int64_t)get_uv(&r);
        (*ents)[i].label = label;
        (*ents)[i].len = get_uv(&r);
    }
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        if ((*ents)[i].len > (size_t)(r.end - r.p)) {
            r.bad = true;
            break;
        }
        (*ents)[i].p = r.p;
        r.p += (*ents)[i].len;
    }
    *n = r.bad ? 0 : count;
    if (r.bad)
        return ing_err_set(err, ING_EINTERNAL, "pstore: cluster group %lld is corrupt",
                           (long long)grp);
    return 0;
}

/* Read cluster `label` on connection c. ING_ENOTFOUND when absent. */
static int cluster_read(struct pstore_conn *c, int64_t label, bool with_edges,
                        struct pstore_cluster *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    if (label <= 0)
        return ING_ENOTFOUND;
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_CLU_GET, &s, err);
    if (ret)
        return ret;
    int64_t grp = label >> GROUP_SHIFT;
    sqlite3_bind_int64(s, 1, grp);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = ING_ENOTFOUND;
    } else if (rc != SQLITE_ROW) {
        ret = pstore__map_sqlite(err, c->db, rc, "cluster");
    } else {
        const uint8_t *body = sqlite3_column_blob(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        struct gent *ents = NULL;
        size_t n = 0, cap = 0;
        ret = group_parse(body, len, grp, &ents, &n, &cap, err);
        size_t i = 0;
        while (ret == 0 && i < n && ents[i].label != label)
            i++;
        if (ret == 0)
            ret = i < n ? cluster_decode(ents[i].p, ents[i].len, label, with_edges, NULL, out, err)
                        : ING_ENOTFOUND;
        free(ents);
    }
    pstore__done(s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* The dictionary: linear hashing over buckets */

struct dstate {
    int level;       /* buckets 0 .. 2^level + split - 1 */
    uint64_t split;
    int64_t count;
};

static uint64_t dict_nbuckets(const struct dstate *d)
{
    return (1ULL << d->level) + d->split;
}

static uint64_t dict_addr(const struct dstate *d, uint64_t fp)
{
    return pstore__dict_addr(d->level, d->split, fp);
}

/* For pstore_hint.c too (pstore_int.h). */
int pstore__dstate_decode(int64_t v, int *level, uint64_t *split, struct ing_err *err)
{
    int lv = (int)((uint64_t)v >> 48);
    uint64_t sp = (uint64_t)v & ((1ULL << 48) - 1);
    /* an address takes level + 1 bits of the 48-bit fingerprint */
    if (lv > 47 || sp >= (1ULL << lv))
        return ing_err_set(err, ING_EINTERNAL, "pstore: dictionary state is corrupt");
    *level = lv;
    *split = sp;
    return 0;
}

static int dstate_decode(int64_t v, struct dstate *d, struct ing_err *err)
{
    return pstore__dstate_decode(v, &d->level, &d->split, err);
}

/* The dictionary's shape; the count only when the caller is the writer. */
static int dstate_read(struct pstore_conn *c, bool with_count, struct dstate *d,
                       struct ing_err *err)
{
    memset(d, 0, sizeof(*d));
    int64_t v = 0;
    int ret = pstore__kv_get(c, KV_DICT_STATE, &v, err);
    if (ret == 0 && with_count)
        ret = pstore__kv_get(c, KV_DICT_COUNT, &d->count, err);
    if (ret == ING_ENOTFOUND)
        ret = 0;
    return ret ? ret : dstate_decode(v, d, err);
}

/* The labels of bucket entries with fingerprint fp, appended to *labels (grown as needed). */
static void bucket_match(const uint8_t *body, size_t len, uint64_t fp, int64_t **labels,
                         size_t *n, size_t *cap)
{
    size_t count = len / ENTRY_SIZE;
    size_t room = *cap - *n;
    size_t found = pstore__dict_scan(body, count, fp, *labels ? *labels + *n : NULL, room);
    if (found > room) { /* the array is full (or not there yet): grow it and scan again */
        *cap = *n + found > 4 ? (*n + found) * 2 : 4;
        *labels = xrealloc(*labels, *cap * sizeof(**labels));
        pstore__dict_scan(body, count, fp, *labels + *n, found);
    }
    *n += found;
}

/* Candidate labels of one hash, on connection c (inside the caller's read snapshot). */
static int dict_find(struct pstore_conn *c, const struct dstate *d, uint64_t h, int64_t **labels,
                     size_t *n, size_t *cap, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_DICT_GET, &s, err);
    if (ret)
        return ret;
    uint64_t fp = fp_of(h);
    sqlite3_bind_int64(s, 1, (int64_t)dict_addr(d, fp));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        bucket_match(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), fp, labels, n,
                     cap);
    else if (rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, c->db, rc, "dictionary");
    pstore__done(s);
    return ret;
}

/* For pstore_view.c (pstore_int.h): the hot path of a stored answer's lookup, so no
 * allocation, and the dictionary's shape read once per snapshot instead of once per lookup
 * (it was one of the three B-tree reads of a lookup). */
int pstore__dict_lookup(struct pstore_conn *c, uint64_t h, int64_t *labels, size_t cap,
                        size_t *n, struct ing_err *err)
{
    *n = 0;
    int ret = 0;
    if (!c->dict_cached) {
        struct dstate d;
        if ((ret = dstate_read(c, false, &d, err)) != 0)
            return ret;
        c->dict_level = d.level;
        c->dict_split = d.split;
        c->dict_cached = true;
    }
    sqlite3_stmt *s = NULL;
    if ((ret = pstore__stmt(c, S_DICT_GET, &s, err)) != 0)
        return ret;
    uint64_t fp = fp_of(h);
    sqlite3_bind_int64(s, 1, (int64_t)pstore__dict_addr(c->dict_level, c->dict_split, fp));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = pstore__dict_scan(sqlite3_column_blob(s, 0),
                               (size_t)sqlite3_column_bytes(s, 0) / ENTRY_SIZE, fp, labels, cap);
    else if (rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, c->db, rc, "dictionary");
    sqlite3_reset(s); /* the one binding is an integer: nothing to clear */
    return ret;
}

struct dentry {
    uint64_t fp;
    int64_t label; /* -1: deleted */
};

/* Read bucket b into *e (grown as needed). */
static int bucket_load(struct pstore_conn *c, uint64_t b, struct dentry **e, size_t *n,
                       size_t *cap, struct ing_err *err)
{
    *n = 0;
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_DICT_GET, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, (int64_t)b);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const uint8_t *body = sqlite3_column_blob(s, 0);
        size_t count = (size_t)sqlite3_column_bytes(s, 0) / ENTRY_SIZE;
        if (count > *cap) {
            *cap = count;
            *e = xrealloc(*e, *cap * sizeof(**e));
        }
        for (size_t i = 0; i < count; i++) {
            (*e)[i].fp = get_le48(body + i * ENTRY_SIZE);
            (*e)[i].label = (int64_t)get_le48(body + i * ENTRY_SIZE + 6);
        }
        *n = count;
    } else if (rc != SQLITE_DONE) {
        ret = pstore__map_sqlite(err, c->db, rc, "dictionary bucket");
    }
    pstore__done(s);
    return ret;
}

/* Write bucket b from entries (sorted by fp; deleted ones skipped); an empty bucket has no row.
 * The hint (pstore_hint.c) is told what the bucket now holds. */
static int bucket_store(struct pstore_tx *tx, uint64_t b, const struct dentry *e, size_t n,
                        struct bytes *scratch, struct ing_err *err)
{
    struct pstore_conn *c = tx->c;
    scratch->len = 0;
    bytes_reserve(scratch, n * ENTRY_SIZE);
    for (size_t i = 0; i < n; i++) {
        if (e[i].label < 0)
            continue;
        put_le48(scratch->p + scratch->len, e[i].fp);
        put_le48(scratch->p + scratch->len + 6, (uint64_t)e[i].label);
        scratch->len += ENTRY_SIZE;
    }
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, scratch->len ? S_DICT_PUT : S_DICT_DEL, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, (int64_t)b);
    if (scratch->len)
        sqlite3_bind_blob(s, 2, scratch->p, (int)scratch->len, SQLITE_STATIC);
    ret = pstore__step_done(c, s, "dictionary bucket write", err);
    if (ret == 0)
        pstore__hint_note_bucket(tx, b, scratch->p, scratch->len);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Buffered writes of a transaction */

struct pair {
    int64_t seq, label;
};

static int cmp_pair(const void *pa, const void *pb)
{
    const struct pair *a = pa, *b = pb;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return (a->label > b->label) - (a->label < b->label);
}

/* One identity changes at most once between two flushes (every graph read flushes first, and
 * an operation touches each identity once), so changes need no order among themselves. */
struct dchange {
    uint64_t fp;
    int64_t old_label, new_label;
};

static int cmp_dchange(const void *pa, const void *pb)
{
    const struct dchange *a = pa, *b = pb;
    return (a->fp > b->fp) - (a->fp < b->fp);
}

struct crec {
    int64_t label;
    size_t off, len;
    bool del;
};

struct pstore_graph_tx {
    struct dchange *dc;
    size_t ndc, capdc;
    int64_t count_delta;     /* inserts minus deletes in dc */
    struct crec *cr;
    size_t ncr, capcr;
    struct bytes payloads;   /* encoded cluster payloads of cr */
    struct pair *bl;         /* (seq, label): clusters holding a batch's edges */
    size_t nbl, capbl;
    int64_t fresh_floor;     /* groups whose first label is >= this have no row yet */
    bool have_state;
    struct dstate d;
    bool state_dirty;
    struct bytes scratch;
};

static struct pstore_graph_tx *gtx(struct pstore_tx *tx)
{
    if (!tx->g) {
        tx->g = xcalloc(1, sizeof(*tx->g));
        tx->g->fresh_floor = tx->next_id;
    }
    return tx->g;
}

void pstore__graph_tx_free(struct pstore_tx *tx)
{
    struct pstore_graph_tx *g = tx ? tx->g : NULL;
    if (!g)
        return;
    bigmem_free(g->dc);
    bigmem_free(g->cr);
    bigmem_free(g->payloads.p);
    bigmem_free(g->bl);
    bigmem_free(g->scratch.p);
    free(g);
    tx->g = NULL;
}

static int state_ready(struct pstore_tx *tx, struct pstore_graph_tx *g, struct ing_err *err)
{
    if (g->have_state)
        return 0;
    int ret = dstate_read(tx->c, true, &g->d, err);
    g->have_state = ret == 0;
    return ret;
}

void pstore_tx_dict_change(struct pstore_tx *tx, uint64_t h, int64_t old_label,
                           int64_t new_label)
{
    struct pstore_graph_tx *g = gtx(tx);
    if (old_label == new_label)
        return;
    pstore__view_note_ident(tx, old_label, new_label);
    if (g->ndc == g->capdc) {
        g->capdc = g->capdc ? g->capdc * 2 : 1024;
        g->dc = bigmem_realloc(g->dc, g->capdc * sizeof(*g->dc));
    }
    g->dc[g->ndc++] = (struct dchange){fp_of(h), old_label, new_label};
    g->count_delta += (old_label == 0) - (new_label == 0);
}

static struct crec *crec_push(struct pstore_graph_tx *g)
{
    if (g->ncr == g->capcr) {
        g->capcr = g->capcr ? g->capcr * 2 : 1024;
        g->cr = bigmem_realloc(g->cr, g->capcr * sizeof(*g->cr));
    }
    return &g->cr[g->ncr++];
}

static int flush_clusters(struct pstore_tx *tx, struct pstore_graph_tx *g, struct ing_err *err);

int pstore_tx_cluster_put(struct pstore_tx *tx, const struct pstore_cluster *c,
                          struct ing_err *err)
{
    struct pstore_graph_tx *g = gtx(tx);
    size_t off = g->payloads.len;
    int ret = cluster_encode(&g->payloads, c, err);
    if (ret) {
        g->payloads.len = off;
        return ret;
    }
    *crec_push(g) = (struct crec){c->label, off, g->payloads.len - off, false};
    pstore__view_note_label(tx, c->label);
    /* Write out in slices: memory stays bounded and the buffer is reused instead of grown. */
    if (g->payloads.len >= CLUSTER_FLUSH_BYTES) {
        ret = flush_clusters(tx, g, err);
        if (ret == 0)
            g->fresh_floor = tx->next_id;
    }
    return ret;
}

void pstore_tx_cluster_delete(struct pstore_tx *tx, int64_t label)
{
    struct pstore_graph_tx *g = gtx(tx);
    *crec_push(g) = (struct crec){label, 0, 0, true};
    pstore__view_note_label(tx, label);
}

/* Split bucket `split`: entries whose bit `level` is set move to split + 2^level. */
static int dict_split_one(struct pstore_tx *tx, struct pstore_graph_tx *g, struct dentry **e,
                          size_t *cap, struct ing_err *err)
{
    struct dstate *d = &g->d;
    uint64_t from = d->split, to = d->split + (1ULL << d->level);
    size_t n = 0;
    int ret = bucket_load(tx->c, from, e, &n, cap, err);
    if (ret)
        return ret;
    if (n > 0) {
        /* stable partition into two runs, both still sorted by fp */
        struct dentry *hi = xmalloc(n * sizeof(*hi));
        size_t nlo = 0, nhi = 0;
        for (size_t i = 0; i < n; i++) {
            if (((*e)[i].fp >> d->level) & 1)
                hi[nhi++] = (*e)[i];
            else
                (*e)[nlo++] = (*e)[i];
        }
        ret = bucket_store(tx, from, *e, nlo, &g->scratch, err);
        if (ret == 0)
            ret = bucket_store(tx, to, hi, nhi, &g->scratch, err);
        free(hi);
        if (ret)
            return ret;
    }
    if (++d->split == (1ULL << d->level)) {
        d->level++;
        d->split = 0;
    }
    g->state_dirty = true;
    return 0;
}

/* Find the entry (fp, label) in e[lo..n) sorted by fp. */
static struct dentry *entry_find(struct dentry *e, size_t n, uint64_t fp, int64_t label)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].fp < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n && e[i].fp == fp; i++)
        if (e[i].label == label)
            return &e[i];
    return NULL;
}

static int flush_dict(struct pstore_tx *tx, struct pstore_graph_tx *g, struct ing_err *err)
{
    if (g->ndc == 0)
        return 0;
    int ret = state_ready(tx, g, err);
    if (ret)
        return ret;
    size_t n = g->ndc;
    struct dchange *dc = g->dc, *tmp = bigmem_alloc(g->capdc * sizeof(*tmp)); /* same size: they swap */
    uint64_t *starts = NULL;
    struct dentry *e = NULL, *ins = NULL;
    size_t cape = 0;
    int64_t after = g->d.count + g->count_delta;
    uint64_t target = after > 0 ? ((uint64_t)after + DICT_FILL - 1) / DICT_FILL : 1;
    while (ret == 0 && dict_nbuckets(&g->d) < target)
        ret = dict_split_one(tx, g, &e, &cape, err);
    if (ret)
        goto out;

    /* Group the changes by bucket (a counting sort), then order each bucket's by fingerprint. */
    uint64_t nb = dict_nbuckets(&g->d);
    starts = xcalloc(nb + 1, sizeof(*starts));
    for (size_t i = 0; i < n; i++)
        starts[dict_addr(&g->d, dc[i].fp) + 1]++;
    for (uint64_t b = 0; b < nb; b++)
        starts[b + 1] += starts[b];
    {
        uint64_t *fill = xmalloc((nb + 1) * sizeof(*fill));
        memcpy(fill, starts, (nb + 1) * sizeof(*fill));
        for (size_t i = 0; i < n; i++) {
            uint64_t b = dict_addr(&g->d, dc[i].fp);
            tmp[fill[b]++] = dc[i];
        }
        free(fill);
        struct dchange *t = dc;
        dc = tmp;
        tmp = t;
    }
    for (uint64_t b = 0; b < nb; b++)
        if (starts[b + 1] - starts[b] > 1)
            qsort(dc + starts[b], (size_t)(starts[b + 1] - starts[b]), sizeof(*dc),
                  cmp_dchange);

    /* Apply bucket by bucket: deletes and moves find their entry (inserted earlier in this
     * flush, or stored), inserts merge in by fingerprint. */
    size_t capins = 0;
    for (uint64_t b = 0; b < nb && ret == 0; b++) {
        size_t lo = (size_t)starts[b], hi = (size_t)starts[b + 1];
        if (lo == hi)
            continue;
        size_t ne = 0, nins = 0;
        if ((ret = bucket_load(tx->c, b, &e, &ne, &cape, err)) != 0)
            break;
        if (hi - lo > capins) {
            capins = hi - lo;
            ins = xrealloc(ins, capins * sizeof(*ins));
        }
        for (size_t i = lo; i < hi && ret == 0; i++) {
            const struct dchange *c = &dc[i];
            if (c->old_label == 0) {
                ins[nins++] = (struct dentry){c->fp, c->new_label};
                continue;
            }
            struct dentry *x = entry_find(e, ne, c->fp, c->old_label);
            if (!x)
                x = entry_find(ins, nins, c->fp, c->old_label);
            if (!x)
                ret = ing_err_set(err, ING_EINTERNAL,
                                  "pstore: the dictionary has no entry of cluster %lld",
                                  (long long)c->old_label);
            else
                x->label = c->new_label ? c->new_label : -1;
        }
        if (ret)
            break;
        if (nins) {
            /* merge e and ins (both sorted by fp) into e */
            if (ne + nins > cape) {
                cape = ne + nins;
                e = xrealloc(e, cape * sizeof(*e));
            }
            size_t i = ne, j = nins, k = ne + nins;
            while (j > 0) {
                if (i > 0 && e[i - 1].fp > ins[j - 1].fp)
                    e[--k] = e[--i];
                else
                    e[--k] = ins[--j];
            }
            ne += nins;
        }
        ret = bucket_store(tx, b, e, ne, &g->scratch, err);
    }
    if (ret)
        goto out;
    g->d.count = after;
    g->count_delta = 0;
    g->state_dirty = true;
    g->ndc = 0;
out:
    /* dc and tmp are the two buffers, whichever way round the passes left them */
    if (dc == g->dc) {
        bigmem_free(tmp);
    } else {
        bigmem_free(g->dc);
        g->dc = dc;
    }
    free(starts);
    free(e);
    free(ins);
    return ret;
}

static int cmp_crec_label(const void *pa, const void *pb)
{
    const struct crec *a = pa, *b = pb;
    if (a->label != b->label)
        return a->label < b->label ? -1 : 1;
    return (a->off > b->off) - (a->off < b->off);
}

static int flush_clusters(struct pstore_tx *tx, struct pstore_graph_tx *g, struct ing_err *err)
{
    if (g->ncr == 0)
        return 0;
    /* Order by label, keeping the order of repeated writes of one label (deletes have off 0:
     * give them their position instead). Batches write fresh labels in ascending order, so
     * usually there is nothing to sort. */
    bool sorted = true;
    for (size_t i = 1; i < g->ncr && sorted; i++)
        sorted = g->cr[i - 1].label < g->cr[i].label;
    if (!sorted) {
        struct crec *order = bigmem_alloc(g->ncr * sizeof(*order));
        for (size_t i = 0; i < g->ncr; i++) {
            order[i] = g->cr[i];
            order[i].off = i; /* sort key: position */
        }
        qsort(order, g->ncr, sizeof(*order), cmp_crec_label);
        for (size_t i = 0; i < g->ncr; i++) {
            size_t pos = order[i].off;
            order[i].off = g->cr[pos].off;
        }
        bigmem_free(g->cr);
        g->cr = order;
        g->capcr = g->ncr;
    }
    struct gent *old = NULL, *merged = NULL;
    size_t capold = 0, capm = 0;
    int ret = 0;
    size_t i = 0;
    while (i < g->ncr && ret == 0) {
        int64_t grp = g->cr[i].label >> GROUP_SHIFT;
        size_t j = i;
        while (j < g->ncr && (g->cr[j].label >> GROUP_SHIFT) == grp)
            j++;
        size_t nold = 0;
        bool existed = false;
        sqlite3_stmt *get = NULL;
        if ((grp << GROUP_SHIFT) < g->fresh_floor) {
            if ((ret = pstore__stmt(tx->c, S_CLU_GET, &get, err)) != 0)
                break;
            sqlite3_bind_int64(get, 1, grp);
            int rc = sqlite3_step(get);
            if (rc == SQLITE_ROW) {
                existed = true;
                ret = group_parse(sqlite3_column_blob(get, 0),
                                  (size_t)sqlite3_column_bytes(get, 0), grp, &old, &nold,
                                  &capold, err);
            } else if (rc != SQLITE_DONE) {
                ret = pstore__map_sqlite(err, tx->c->db, rc, "cluster group");
            }
        }
        /* merge the stored directory with this group's writes (the last write of a label
         * wins); the old payloads stay valid until `get` is reset below */
        size_t nm = 0;
        if (nold + (j - i) > capm) {
            capm = nold + (j - i);
            merged = xrealloc(merged, capm * sizeof(*merged));
        }
        size_t a = 0, k = i;
        while (ret == 0 && (a < nold || k < j)) {
            if (k < j && (a >= nold || g->cr[k].label <= old[a].label)) {
                int64_t label = g->cr[k].label;
                while (k + 1 < j && g->cr[k + 1].label == label)
                    k++;
                if (a < nold && old[a].label == label)
                    a++;
                if (!g->cr[k].del)
                    merged[nm++] = (struct gent){label, g->payloads.p + g->cr[k].off,
                                                 g->cr[k].len};
                k++;
            } else {
                merged[nm++] = old[a++];
            }
        }
        if (ret == 0) {
            struct bytes *out = &g->scratch;
            out->len = 0;
            size_t total = 10;
            for (size_t m = 0; m < nm; m++)
                total += 20 + merged[m].len;
            bytes_reserve(out, total);
            put_uv(out, nm);
            int64_t prev = grp << GROUP_SHIFT;
            for (size_t m = 0; m < nm; m++) {
                put_uv(out, (uint64_t)(merged[m].label - prev));
                put_uv(out, merged[m].len);
                prev = merged[m].label;
            }
            for (size_t m = 0; m < nm; m++) {
                memcpy(out->p + out->len, merged[m].p, merged[m].len);
                out->len += merged[m].len;
            }
        }
        pstore__done(get);
        if (ret == 0 && (nm > 0 || existed)) {
            sqlite3_stmt *s = NULL;
            if ((ret = pstore__stmt(tx->c, nm ? S_CLU_PUT : S_CLU_DEL, &s, err)) == 0) {
                sqlite3_bind_int64(s, 1, grp);
                if (nm)
                    sqlite3_bind_blob(s, 2, g->scratch.p, (int)g->scratch.len, SQLITE_STATIC);
                ret = pstore__step_done(tx->c, s, "cluster group write", err);
            }
        }
        i = j;
    }
    free(old);
    free(merged);
    if (ret == 0) {
        g->ncr = 0;
        g->payloads.len = 0;
    }
    return ret;
}

static int flush_batch_labels(struct pstore_tx *tx, struct pstore_graph_tx *g,
                              struct ing_err *err);

int pstore__graph_flush(struct pstore_tx *tx, struct ing_err *err)
{
    struct pstore_graph_tx *g = tx->g;
    if (!g)
        return 0;
    int ret = flush_clusters(tx, g, err);
    if (ret == 0)
        ret = flush_batch_labels(tx, g, err);
    if (ret == 0)
        ret = flush_dict(tx, g, err);
    if (ret == 0 && g->state_dirty) {
        ret = pstore__kv_put(tx->c, KV_DICT_STATE,
                             (int64_t)(((uint64_t)g->d.level << 48) | g->d.split), err);
        if (ret == 0)
            ret = pstore__kv_put(tx->c, KV_DICT_COUNT, g->d.count, err);
        if (ret == 0)
            pstore__hint_note_shape(tx, g->d.level, g->d.split);
        g->state_dirty = ret != 0;
    }
    if (ret == 0)
        g->fresh_floor = tx->next_id;
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Transaction reads */

int pstore_tx_dict_candidates(struct pstore_tx *tx, size_t n, const uint64_t *hashes,
                              int64_t **labels, size_t **off, struct ing_err *err)
{
    *labels = NULL;
    *off = bigmem_alloc((n + 1) * sizeof(**off));
    struct pstore_graph_tx *g = gtx(tx);
    int ret = pstore__graph_flush(tx, err);
    if (ret == 0)
        ret = state_ready(tx, g, err);
    if (ret)
        return ret;
    if (g->d.count == 0) {
        /* an empty graph (the first batch): no candidates, and no scratch to touch */
        *labels = bigmem_alloc(sizeof(**labels));
        return 0;
    }
    /* Visit the queries bucket by bucket, so that each bucket is read once. */
    uint64_t nb = dict_nbuckets(&g->d);
    size_t *starts = bigmem_alloc((nb + 1) * sizeof(*starts));
    size_t *order = bigmem_alloc((n ? n : 1) * sizeof(*order));
    for (size_t i = 0; i < n; i++)
        starts[dict_addr(&g->d, fp_of(hashes[i])) + 1]++;
    for (uint64_t b = 0; b < nb; b++)
        starts[b + 1] += starts[b];
    size_t *fill = bigmem_alloc((nb + 1) * sizeof(*fill));
    memcpy(fill, starts, (nb + 1) * sizeof(*fill));
    for (size_t i = 0; i < n; i++)
        order[fill[dict_addr(&g->d, fp_of(hashes[i]))]++] = i;
    bigmem_free(fill);
    /* hits as (query, label) pairs, then gathered per query */
    struct hit {
        size_t q;
        int64_t label;
    } *hits = NULL;
    size_t nhits = 0, caphits = 0;
    int64_t *one = NULL;
    size_t none = 0, capone = 0;
    sqlite3_stmt *s = NULL;
    for (uint64_t b = 0; b < nb && ret == 0; b++) {
        if (starts[b] == starts[b + 1])
            continue;
        if ((ret = pstore__stmt(tx->c, S_DICT_GET, &s, err)) != 0)
            break;
        sqlite3_bind_int64(s, 1, (int64_t)b);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const uint8_t *body = sqlite3_column_blob(s, 0);
            size_t len = (size_t)sqlite3_column_bytes(s, 0);
            for (size_t k = starts[b]; k < starts[b + 1]; k++) {
                size_t q = order[k];
                none = 0;
                bucket_match(body, len, fp_of(hashes[q]), &one, &none, &capone);
                for (size_t m = 0; m < none; m++) {
                    if (nhits == caphits) {
                        caphits = caphits ? caphits * 2 : 64;
                        hits = bigmem_realloc(hits, caphits * sizeof(*hits));
                    }
                    hits[nhits++] = (struct hit){q, one[m]};
                    (*off)[q + 1]++;
                }
            }
        } else if (rc != SQLITE_DONE) {
            ret = pstore__map_sqlite(err, tx->c->db, rc, "dictionary");
        }
        pstore__done(s);
    }
    if (ret == 0) {
        for (size_t i = 0; i < n; i++)
            (*off)[i + 1] += (*off)[i];
        *labels = bigmem_alloc((nhits ? nhits : 1) * sizeof(**labels));
        size_t *pos = bigmem_alloc((n ? n : 1) * sizeof(*pos));
        memcpy(pos, *off, n * sizeof(*pos));
        for (size_t k = 0; k < nhits; k++)
            (*labels)[pos[hits[k].q]++] = hits[k].label;
        bigmem_free(pos);
    }
    bigmem_free(hits);
    free(one);
    bigmem_free(starts);
    bigmem_free(order);
    return ret;
}

int pstore_tx_cluster_get(struct pstore_tx *tx, int64_t label, struct pstore_cluster *out,
                          struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    int ret = pstore__graph_flush(tx, err);
    return ret ? ret : cluster_read(tx->c, label, true, out, err);
}

int pstore_tx_clusters_get(struct pstore_tx *tx, const int64_t *labels, size_t n,
                           struct pstore_cluster *out, struct pstore_arena **arena,
                           struct ing_err *err)
{
    memset(out, 0, n * sizeof(*out));
    struct pstore_arena *a = xcalloc(1, sizeof(*a));
    *arena = a;
    int ret = pstore__graph_flush(tx, err);
    struct gent *ents = NULL;
    size_t nents = 0, capents = 0;
    /* one read per group row: an incremental batch touches many clusters of each group */
    for (size_t i = 0; i < n && ret == 0;) {
        if (labels[i] <= 0 || (i > 0 && labels[i] <= labels[i - 1])) {
            ret = ing_err_set(err, ING_EINVAL, "pstore: cluster labels not ascending");
            break;
        }
        int64_t grp = labels[i] >> GROUP_SHIFT;
        size_t j = i;
        while (j < n && (labels[j] >> GROUP_SHIFT) == grp)
            j++;
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(tx->c, S_CLU_GET, &s, err)) != 0)
            break;
        sqlite3_bind_int64(s, 1, grp);
        int rc = sqlite3_step(s);
        nents = 0;
        if (rc == SQLITE_ROW)
            ret = group_parse(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), grp,
                              &ents, &nents, &capents, err);
        else if (rc != SQLITE_DONE)
            ret = pstore__map_sqlite(err, tx->c->db, rc, "cluster group");
        /* both lists ascend: walk them together (the payloads live until the reset) */
        size_t e = 0;
        for (size_t k = i; k < j && ret == 0; k++) {
            while (e < nents && ents[e].label < labels[k])
                e++;
            if (e < nents && ents[e].label == labels[k])
                ret = cluster_decode(ents[e].p, ents[e].len, labels[k], true, a, &out[k], err);
        }
        pstore__done(s);
        i = j;
    }
    free(ents);
    if (ret) {
        memset(out, 0, n * sizeof(*out));
        pstore_arena_free(a);
        *arena = NULL;
    }
    return ret;
}

int pstore__cluster_labels_after(struct pstore_tx *tx, int64_t after, size_t max,
                                 int64_t **labels, size_t *n, struct ing_err *err)
{
    *labels = NULL;
    *n = 0;
    int ret = pstore__graph_flush(tx, err);
    sqlite3_stmt *s = NULL;
    if (ret || max == 0 || (ret = pstore__stmt(tx->c, S_CLU_SCAN, &s, err)) != 0)
        return ret;
    *labels = xmalloc(max * sizeof(**labels));
    struct gent *ents = NULL;
    size_t nents = 0, capents = 0;
    sqlite3_bind_int64(s, 1, after < 0 ? 0 : after >> GROUP_SHIFT);
    int rc = SQLITE_ROW;
    while (ret == 0 && *n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t grp = sqlite3_column_int64(s, 0);
        ret = group_parse(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), grp,
                          &ents, &nents, &capents, err);
        for (size_t i = 0; ret == 0 && i < nents && *n < max; i++)
            if (ents[i].label > after)
                (*labels)[(*n)++] = ents[i].label;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = pstore__map_sqlite(err, tx->c->db, rc, "cluster scan");
    pstore__done(s);
    free(ents);
    if (ret) {
        free(*labels);
        *labels = NULL;
        *n = 0;
    }
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Label forwards and batch labels */

int pstore_tx_label_forward(struct pstore_tx *tx, int64_t from, int64_t to, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_FWD_ADD, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, to);
    return pstore__step_done(tx->c, s, "label forward", err);
}

/* The stored label list of batch seq, appended to *v. */
static int batch_labels_read(struct pstore_tx *tx, int64_t seq, int64_t **v, size_t *n,
                             size_t *cap, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_GB_GET, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(s, 0);
        struct rd r = {p, p + sqlite3_column_bytes(s, 0), false};
        uint64_t count = get_uv(&r);
        if (r.bad || count > (uint64_t)(r.end - r.p)) {
            ret = ing_err_set(err, ING_EINTERNAL, "pstore: labels of batch %lld are corrupt",
                              (long long)seq);
        } else {
            if (*n + count > *cap) {
                *cap = *n + count;
                *v = xrealloc(*v, *cap * sizeof(**v));
            }
            int64_t label = 0;
            for (uint64_t i = 0; i < count && !r.bad; i++) {
                label += (int64_t)get_uv(&r);
                (*v)[(*n)++] = label;
            }
        }
    } else if (rc != SQLITE_DONE) {
        ret = pstore__map_sqlite(err, tx->c->db, rc, "batch labels");
    }
    pstore__done(s);
    return ret;
}

static int batch_labels_write(struct pstore_tx *tx, int64_t seq, const int64_t *v, size_t n,
                              struct ing_err *err)
{
    struct bytes b = {0};
    bytes_reserve(&b, 10 * (n + 1));
    put_uv(&b, n);
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        put_uv(&b, (uint64_t)(v[i] - prev));
        prev = v[i];
    }
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_GB_PUT, &s, err);
    if (ret == 0) {
        sqlite3_bind_int64(s, 1, seq);
        sqlite3_bind_blob(s, 2, b.p, (int)b.len, SQLITE_STATIC);
        ret = pstore__step_done(tx->c, s, "batch labels", err);
    }
    bigmem_free(b.p);
    return ret;
}

int pstore_tx_batch_labels_add(struct pstore_tx *tx, int64_t seq, const int64_t *labels,
                               size_t n, struct ing_err *err)
{
    (void)err;
    struct pstore_graph_tx *g = gtx(tx);
    if (g->nbl + n > g->capbl) {
        g->capbl = (g->nbl + n) * 2;
        g->bl = bigmem_realloc(g->bl, g->capbl * sizeof(*g->bl));
    }
    for (size_t i = 0; i < n; i++)
        g->bl[g->nbl++] = (struct pair){seq, labels[i]};
    return 0;
}

/* Merge the buffered (seq, label) pairs into each batch's stored list. */
static int flush_batch_labels(struct pstore_tx *tx, struct pstore_graph_tx *g,
                              struct ing_err *err)
{
    if (g->nbl == 0)
        return 0;
    bool sorted = true; /* a batch adds its clusters in ascending label order */
    for (size_t i = 1; i < g->nbl && sorted; i++)
        sorted = cmp_pair(&g->bl[i - 1], &g->bl[i]) <= 0;
    if (!sorted)
        qsort(g->bl, g->nbl, sizeof(*g->bl), cmp_pair);
    int64_t *v = NULL;
    size_t cap = 0;
    int ret = 0;
    for (size_t i = 0; i < g->nbl && ret == 0;) {
        size_t j = i, nv = 0;
        while (j < g->nbl && g->bl[j].seq == g->bl[i].seq)
            j++;
        if ((ret = batch_labels_read(tx, g->bl[i].seq, &v, &nv, &cap, err)) != 0)
            break;
        if (nv + (j - i) > cap) {
            cap = nv + (j - i);
            v = xrealloc(v, cap * sizeof(*v));
        }
        for (size_t k = i; k < j; k++)
            v[nv++] = g->bl[k].label;
        nv = sort_unique_i64(v, nv);
        ret = batch_labels_write(tx, g->bl[i].seq, v, nv, err);
        i = j;
    }
    free(v);
    if (ret == 0)
        g->nbl = 0;
    return ret;
}

int pstore_tx_batch_labels_take(struct pstore_tx *tx, int64_t seq, int64_t **labels, size_t *n,
                                struct ing_err *err)
{
    *labels = NULL;
    *n = 0;
    int64_t *todo = NULL, *seen = NULL;
    size_t ntodo = 0, captodo = 0, nseen = 0, capseen = 0;
    int ret = pstore__graph_flush(tx, err);
    if (ret == 0)
        ret = batch_labels_read(tx, seq, &todo, &ntodo, &captodo, err);
    /* Follow forwards (depth first); a label that still has a document is a result, and may
     * also have forwards (the parts split off it). */
    while (ret == 0 && ntodo > 0) {
        int64_t label = todo[--ntodo];
        bool dup = false;
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = seen[i] == label;
        if (dup)
            continue;
        if (nseen == capseen) {
            capseen = capseen ? capseen * 2 : 16;
            seen = xrealloc(seen, capseen * sizeof(*seen));
        }
        seen[nseen++] = label;
        struct pstore_cluster c;
        ret = cluster_read(tx->c, label, false, &c, err);
        if (ret == 0) {
            pstore_cluster_clear(&c);
            (*labels) = xrealloc(*labels, (*n + 1) * sizeof(**labels));
            (*labels)[(*n)++] = label;
        } else if (ret == ING_ENOTFOUND) {
            ret = 0;
        }
        sqlite3_stmt *s = NULL;
        if (ret == 0 && (ret = pstore__stmt(tx->c, S_FWD_GET, &s, err)) == 0) {
            sqlite3_bind_int64(s, 1, label);
            int rc;
            while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (ntodo == captodo) {
                    captodo = captodo ? captodo * 2 : 16;
                    todo = xrealloc(todo, captodo * sizeof(*todo));
                }
                todo[ntodo++] = sqlite3_column_int64(s, 0);
            }
            if (rc != SQLITE_DONE)
                ret = pstore__map_sqlite(err, tx->c->db, rc, "label forwards");
            pstore__done(s);
        }
    }
    if (ret == 0) {
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(tx->c, S_GB_DEL, &s, err)) == 0) {
            sqlite3_bind_int64(s, 1, seq);
            ret = pstore__step_done(tx->c, s, "batch labels delete", err);
        }
    }
    free(todo);
    free(seen);
    if (ret) {
        free(*labels);
        *labels = NULL;
        *n = 0;
    } else {
        *n = sort_unique_i64(*labels, *n);
    }
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reads (pooled connections, one snapshot per call) */

static int snap_begin(struct pstore_conn *c, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_BEGIN, &s, err);
    return ret ? ret : pstore__step_done(c, s, "begin", err);
}

static void snap_end(struct pstore_conn *c)
{
    sqlite3_stmt *s = NULL;
    if (pstore__stmt(c, S_END, &s, NULL) == 0)
        pstore__step_done(c, s, "commit", NULL);
}

/* The identity (gid, value) in this snapshot: id and (when c is not NULL) its cluster. */
static int ident_find(struct pstore_conn *conn, int64_t gid, const char *value, int64_t *id,
                      int64_t *label, bool with_edges, struct pstore_cluster *c,
                      struct ing_err *err)
{
    struct dstate d;
    int64_t *cand = NULL;
    size_t ncand = 0, capcand = 0;
    int ret = dstate_read(conn, false, &d, err);
    if (ret == 0)
        ret = dict_find(conn, &d, pstore_ident_hash(gid, value, strlen(value)), &cand, &ncand,
                        &capcand, err);
    bool found = false;
    for (size_t i = 0; ret == 0 && i < ncand && !found; i++) {
        struct pstore_cluster cl;
        ret = cluster_read(conn, cand[i], with_edges, &cl, err);
        if (ret == ING_ENOTFOUND) {
            ret = 0;
            continue;
        }
        for (size_t k = 0; ret == 0 && k < cl.n && !found; k++) {
            if (cl.members[k].gid == gid && !strcmp(cl.members[k].value, value)) {
                found = true;
                if (id)
                    *id = cl.members[k].id;
                if (label)
                    *label = cand[i];
            }
        }
        if (found && c)
            *c = cl;
        else
            pstore_cluster_clear(&cl);
    }
    free(cand);
    return ret ? ret : found ? 0 : ING_ENOTFOUND;
}

int pstore_ident_lookup(struct pstore *ps, int64_t gid, const char *value, int64_t *id,
                        int64_t *cluster, struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = snap_begin(c, err)) == 0) {
        ret = ident_find(c, gid, value, id, cluster, false, NULL, err);
        snap_end(c);
    }
    pstore__conn_release(ps, c);
    return ret;
}

int pstore_ident_cluster(struct pstore *ps, int64_t gid, const char *value, size_t max,
                         int64_t *id, struct pstore_cluster *out, size_t *total,
                         struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    struct pstore_conn *c = NULL;
    int64_t label = 0;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = snap_begin(c, err)) == 0) {
        ret = ident_find(c, gid, value, id, &label, true, out, err);
        snap_end(c);
    }
    pstore__conn_release(ps, c);
    if (ret == 0 && total)
        *total = out->n;
    if (ret == 0 && max > 0 && out->n > max) {
        size_t n = out->n;
        pstore_cluster_clear(out);
        out->label = label;
        ret = ing_err_set(err, ING_ETOOBIG, "the cluster has %zu identities, more than %zu", n,
                          max);
    }
    return ret;
}

int pstore_cluster_members(struct pstore *ps, int64_t cluster, size_t max,
                           struct pstore_member **out, size_t *n, size_t *total,
                           struct ing_err *err)
{
    *out = NULL;
    *n = 0;
    struct pstore_conn *c = NULL;
    struct pstore_cluster cl;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    ret = cluster_read(c, cluster, false, &cl, err);
    pstore__conn_release(ps, c);
    if (ret == ING_ENOTFOUND) {
        if (total)
            *total = 0;
        return 0;
    }
    if (ret)
        return ret;
    if (total)
        *total = cl.n;
    if (max > 0 && cl.n > max) {
        ret = ing_err_set(err, ING_ETOOBIG, "the cluster has %zu identities, more than %zu",
                          cl.n, max);
    } else {
        *out = xcalloc(cl.n ? cl.n : 1, sizeof(**out));
        for (size_t i = 0; i < cl.n; i++) {
            (*out)[i] = cl.members[i];
            (*out)[i].value = xstrdup(cl.members[i].value);
        }
        *n = cl.n;
    }
    pstore_cluster_clear(&cl);
    return ret;
}

static int cmp_cedge(const void *pa, const void *pb)
{
    const struct pstore_cedge *a = pa, *b = pb;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

int pstore_cluster_edges(struct pstore *ps, int64_t label, pstore_edge_fn *fn, void *ctx,
                         struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    struct pstore_cluster cl = {0};
    struct names {
        int64_t seq;
        char *batch, *dataset;
    } *names = NULL;
    size_t nnames = 0;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    ret = cluster_read(c, label, true, &cl, err);
    if (ret == ING_ENOTFOUND)
        ret = 0;
    if (cl.ne > 1)
        qsort(cl.edges, cl.ne, sizeof(*cl.edges), cmp_cedge);
    for (size_t i = 0; i < cl.ne && ret == 0; i++) {
        const struct pstore_cedge *e = &cl.edges[i];
        size_t k = 0;
        while (k < nnames && names[k].seq != e->seq)
            k++;
        if (k == nnames) {
            names = xrealloc(names, (nnames + 1) * sizeof(*names));
            names[k] = (struct names){e->seq, xstrdup(""), xstrdup("")};
            nnames++;
            sqlite3_stmt *s = NULL;
            if ((ret = pstore__stmt(c, S_BSEQ_NAMES, &s, err)) != 0)
                break;
            sqlite3_bind_int64(s, 1, e->seq);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                free(names[k].batch);
                free(names[k].dataset);
                names[k].batch = xstrdup((const char *)sqlite3_column_text(s, 0));
                names[k].dataset = xstrdup((const char *)sqlite3_column_text(s, 1));
            } else if (rc != SQLITE_DONE) {
                ret = pstore__map_sqlite(err, c->db, rc, "batch names");
            }
            pstore__done(s);
            if (ret)
                break;
        }
        struct pstore_edge pe = {.a = cl.members[e->a].id, .b = cl.members[e->b].id,
                                 .seq = e->seq, .batch = names[k].batch,
                                 .dataset = names[k].dataset, .first_ts = e->first_ts,
                                 .last_ts = e->last_ts};
        ret = fn(ctx, &pe);
    }
    pstore__conn_release(ps, c);
    for (size_t k = 0; k < nnames; k++) {
        free(names[k].batch);
        free(names[k].dataset);
    }
    free(names);
    pstore_cluster_clear(&cl);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Version 1 graphs (a row per identity and per edge) into documents */

static int table_exists(struct pstore_conn *c, const char *name, bool *out, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return pstore__map_sqlite(err, c->db, rc, "schema");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW;
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pstore__map_sqlite(err, c->db, rc, "schema");
    sqlite3_finalize(s);
    return ret;
}

static void sort_pairs(int64_t *seq, int64_t *label, size_t n)
{
    struct pair *p = xmalloc((n ? n : 1) * sizeof(*p));
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pair){seq[i], label[i]};
    qsort(p, n, sizeof(*p), cmp_pair);
    for (size_t i = 0; i < n; i++) {
        seq[i] = p[i].seq;
        label[i] = p[i].label;
    }
    free(p);
}

int pstore__graph_convert_v1(struct pstore_tx *tx, struct ing_err *err)
{
    bool have = false;
    int ret = table_exists(tx->c, "ident", &have, err);
    if (ret || !have)
        return ret;
    sqlite3_stmt *mem = NULL, *edg = NULL;
    struct pstore_cluster cl = {0};
    size_t capm = 0, cape = 0;
    int64_t *batch_seq = NULL, *batch_label = NULL;
    size_t nb = 0, capb = 0;
    int rc = sqlite3_prepare_v2(tx->c->db,
                                "SELECT id, ns, value, first_ts, last_ts, cluster FROM ident "
                                "ORDER BY cluster, id",
                                -1, &mem, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(tx->c->db,
                                "SELECT e.a, e.b, e.seq, e.first_ts, e.last_ts FROM edge e "
                                "JOIN ident i ON i.id=e.a WHERE i.cluster=?1",
                                -1, &edg, NULL);
    if (rc != SQLITE_OK) {
        ret = pstore__map_sqlite(err, tx->c->db, rc, "convert");
        goto out;
    }
    bool more = (rc = sqlite3_step(mem)) == SQLITE_ROW;
    while (more && ret == 0) {
        int64_t label = sqlite3_column_int64(mem, 5);
        /* gather the members of this cluster (values copied: the row goes away) */
        for (size_t i = 0; i < cl.n; i++)
            free(cl.members[i].value);
        cl.n = cl.ne = 0;
        cl.label = label;
        while (more && sqlite3_column_int64(mem, 5) == label) {
            if (cl.n == capm) {
                capm = capm ? capm * 2 : 8;
                cl.members = xrealloc(cl.members, capm * sizeof(*cl.members));
            }
            const unsigned char *v = sqlite3_column_text(mem, 2);
            cl.members[cl.n++] = (struct pstore_member){
                .id = sqlite3_column_int64(mem, 0), .gid = sqlite3_column_int64(mem, 1),
                .value = xstrdup(v ? (const char *)v : ""),
                .first_ts = sqlite3_column_int64(mem, 3), .last_ts = sqlite3_column_int64(mem, 4)};
            more = (rc = sqlite3_step(mem)) == SQLITE_ROW;
        }
        if (!more && rc != SQLITE_DONE) {
            ret = pstore__map_sqlite(err, tx->c->db, rc, "convert identities");
            break;
        }
        sqlite3_bind_int64(edg, 1, label);
        while ((rc = sqlite3_step(edg)) == SQLITE_ROW) {
            int64_t a = sqlite3_column_int64(edg, 0), b = sqlite3_column_int64(edg, 1);
            size_t ia = cl.n, ib = cl.n;
            for (size_t i = 0; i < cl.n; i++) {
                if (cl.members[i].id == a)
                    ia = i;
                if (cl.members[i].id == b)
                    ib = i;
            }
            if (ia == cl.n || ib == cl.n)
                continue; /* an edge to another cluster cannot exist; skip rather than fail */
            if (cl.ne == cape) {
                cape = cape ? cape * 2 : 8;
                cl.edges = xrealloc(cl.edges, cape * sizeof(*cl.edges));
            }
            int64_t seq = sqlite3_column_int64(edg, 2);
            cl.edges[cl.ne++] = (struct pstore_cedge){
                .a = (uint32_t)(ia < ib ? ia : ib), .b = (uint32_t)(ia < ib ? ib : ia),
                .seq = seq, .first_ts = sqlite3_column_int64(edg, 3),
                .last_ts = sqlite3_column_int64(edg, 4)};
            if (nb == capb) {
                capb = capb ? capb * 2 : 64;
                batch_seq = xrealloc(batch_seq, capb * sizeof(*batch_seq));
                batch_label = xrealloc(batch_label, capb * sizeof(*batch_label));
            }
            batch_seq[nb] = seq;
            batch_label[nb++] = label;
        }
        sqlite3_reset(edg);
        if (rc != SQLITE_DONE) {
            ret = pstore__map_sqlite(err, tx->c->db, rc, "convert edges");
            break;
        }
        if (ret == 0)
            ret = pstore_tx_cluster_put(tx, &cl, err);
        for (size_t i = 0; i < cl.n && ret == 0; i++)
            pstore_tx_dict_change(tx, pstore_ident_hash(cl.members[i].gid, cl.members[i].value,
                                                        strlen(cl.members[i].value)),
                                  0, label);
    }
    sqlite3_finalize(mem);
    sqlite3_finalize(edg);
    mem = edg = NULL;
    if (ret == 0)
        sort_pairs(batch_seq, batch_label, nb);
    /* one label list per batch: sort the (seq, label) pairs by seq */
    for (size_t i = 0; i < nb && ret == 0;) {
        size_t j = i;
        while (j < nb && batch_seq[j] == batch_seq[i])
            j++;
        ret = pstore_tx_batch_labels_add(tx, batch_seq[i], &batch_label[i], j - i, err);
        i = j;
    }
    if (ret == 0)
        ret = pstore__exec(tx->c->db, "DROP TABLE edge; DROP TABLE ident;", err);
out:
    sqlite3_finalize(mem);
    sqlite3_finalize(edg);
    for (size_t i = 0; i < cl.n; i++)
        free(cl.members[i].value);
    free(cl.members);
    free(cl.edges);
    free(batch_seq);
    free(batch_label);
    return ret;
}
