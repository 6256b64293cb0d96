/*
 * idgraph.c - the identity graph (idgraph.h): extraction and normalisation, in-memory stitching
 * of a batch with a union-find, persistence through pstore, the guardrail, revert with cluster
 * split, and the lookups.
 */
#include "identity/idgraph.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/mem.h"

/*
 * A Bloom filter of every identity the graph holds, so that a batch of new identities does not
 * ask the store about each one: "certainly absent" skips the query, "maybe present" asks. It is
 * filled from the store on the first stage and kept by the (single) writer; identities removed
 * later stay in it, which only costs a query. 2^27 bits (16 MiB), 4 probes: about 1% false
 * positives at 5 million identities (blocked, a little worse than the classic layout).
 */
#define BLOOM_BITS (1ULL << 27)
#define BLOOM_PROBES 4

struct idgraph {
    struct pstore *ps;
    struct registry *reg;
    struct idg_settings settings;
    uint64_t *bloom;   /* NULL until the first batch; used by the writer thread only */
};

int idg_removal_parse(const char *s, enum idg_removal *out)
{
    if (!s)
        return ING_EINVAL;
    if (!strcasecmp(s, "aep"))
        *out = IDG_REMOVE_AEP;
    else if (!strcasecmp(s, "oldest"))
        *out = IDG_REMOVE_OLDEST;
    else if (!strcasecmp(s, "keep"))
        *out = IDG_KEEP;
    else
        return ING_EINVAL;
    return 0;
}

int idgraph_new(struct idgraph **out, struct pstore *ps, struct registry *reg,
                const struct idg_settings *settings, struct ing_err *err)
{
    *out = NULL;
    if (!ps)
        return ing_err_set(err, ING_EINVAL, "idgraph: a pstore is required");
    struct idgraph *g = xcalloc(1, sizeof(*g));
    g->ps = ps;
    g->reg = reg;
    g->settings = settings ? *settings
                           : (struct idg_settings){.max_identities = IDG_DEFAULT_LIMIT,
                                                   .removal = IDG_REMOVE_AEP};
    if (g->settings.max_identities < 0)
        g->settings.max_identities = 0;
    *out = g;
    return 0;
}

void idgraph_free(struct idgraph *g)
{
    if (!g)
        return;
    free(g->bloom);
    free(g);
}

struct pstore *idgraph_pstore(const struct idgraph *g)
{
    return g->ps;
}

struct registry *idgraph_registry(const struct idgraph *g)
{
    return g->reg;
}

const struct idg_settings *idgraph_settings(const struct idgraph *g)
{
    return &g->settings;
}

/* ---------------------------------------------------------------------------------------------- */
/* Extraction and normalisation */

void idg_found_free(struct idg_found *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].code);
        free(f[i].raw);
    }
    free(f);
}

/* Text of an identity value: strings as they are, numbers as JSON writes them (a loyalty id
 * that arrives as a JSON integer is still an id). NULL for anything else. */
static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return json_dumps(v, JSON_ENCODE_ANY);
    return NULL;
}

static void found_push(struct idg_found **out, size_t *n, size_t *cap, const char *code,
                       char *raw, bool primary)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *out = xrealloc(*out, *cap * sizeof(**out));
    }
    (*out)[(*n)++] = (struct idg_found){.code = xstrdup(code), .raw = raw, .primary = primary};
}

static const json_t *follow_path(const json_t *rec, const char *dotted)
{
    const json_t *cur = rec;
    const char *p = dotted;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, len);
        p = dot ? dot + 1 : p + len;
    }
    return cur;
}

void idg_extract(const struct xdm_plan *plan, const json_t *rec, struct idg_found **out,
                 size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (size_t i = 0; plan && i < plan->n_identities; i++) {
        const struct xdm_identity *d = &plan->identities[i];
        if (!d->path || !d->namespace_code)
            continue;
        char *raw = value_text(follow_path(rec, d->path));
        if (raw)
            found_push(out, n, &cap, d->namespace_code, raw, d->primary);
    }
    const json_t *map = json_object_get(rec, "identityMap");
    const char *code;
    const json_t *items;
    json_object_foreach((json_t *)map, code, items) {
        size_t k;
        const json_t *item;
        json_array_foreach(items, k, item) {
            char *raw = value_text(json_object_get(item, "id"));
            if (raw)
                found_push(out, n, &cap, code, raw,
                           json_is_true(json_object_get(item, "primary")));
        }
    }
}

static bool is_email(const char *code, const char *id_type)
{
    return (code && !strcasecmp(code, "email")) || (id_type && !strcasecmp(id_type, "EMAIL"));
}

enum idg_norm idg_normalise(const char *code, const char *id_type, const char *raw, char **out)
{
    *out = NULL;
    const char *b = raw ? raw : "";
    while (*b && isspace((unsigned char)*b))
        b++;
    size_t len = strlen(b);
    while (len > 0 && isspace((unsigned char)b[len - 1]))
        len--;
    if (len == 0)
        return IDG_NORM_EMPTY;
    if (len > IDG_VALUE_MAX)
        return IDG_NORM_TOO_LONG;
    char *v = xstrndup(b, len);
    if (is_email(code, id_type))
        for (char *p = v; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    *out = v;
    return IDG_NORM_OK;
}

static void fill_ns(struct idg_ns *out, int64_t gid, int64_t nsid, const char *code,
                    const char *id_type)
{
    out->gid = gid;
    out->nsid = nsid;
    snprintf(out->code, sizeof(out->code), "%s", code ? code : "");
    snprintf(out->id_type, sizeof(out->id_type), "%s", id_type ? id_type : "");
    out->people = strcasecmp(out->id_type, "NON_PEOPLE") != 0;
}

int idg_ns_resolve(struct idgraph *g, struct pstore_tx *tx, const char *sandbox, const char *code,
                   struct idg_ns *out, struct ing_err *err)
{
    if (!g->reg)
        return ing_err_set(err, ING_EINVAL, "idgraph: no registry to resolve namespaces");
    json_t *doc = NULL;
    int rc = registry_namespace_get(g->reg, sandbox, code, &doc, err);
    if (rc)
        return rc;
    const char *canon = json_string_value(json_object_get(doc, "code"));
    const char *type = json_string_value(json_object_get(doc, "idType"));
    int64_t nsid = json_integer_value(json_object_get(doc, "id"));
    int64_t gid = 0;
    rc = pstore_tx_ns_ensure(tx, sandbox, canon ? canon : code, nsid, type, &gid, err);
    if (rc == 0)
        fill_ns(out, gid, nsid, canon ? canon : code, type);
    json_decref(doc);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Hash tables: identities of a batch, and int64 keys */

static uint64_t hash_bytes(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t ident_hash(int64_t gid, const char *value)
{
    return hash_bytes(value, hash_u64((uint64_t)gid));
}

struct ikey {
    int64_t gid;
    char *value;
    uint64_t hash;
};

/* (gid, value) -> dense index, in insertion order. A slot holds the upper 32 bits of the hash
 * and index + 1 (0 = empty), so that a probe rejects most keys without touching them. */
struct itable {
    uint64_t *slots;
    size_t cap; /* power of two */
    struct ikey *keys;
    size_t n, kcap;
};

static uint64_t slot_of(uint64_t hash, size_t index)
{
    return (hash & 0xffffffff00000000ULL) | (uint64_t)(index + 1);
}

static void itable_grow(struct itable *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *slots = xcalloc(cap, sizeof(*slots));
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->keys[i].hash & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = slot_of(t->keys[i].hash, i);
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
}

/* The index of (gid, value), added when new (value copied). */
static uint32_t itable_intern(struct itable *t, int64_t gid, const char *value)
{
    if ((t->n + 1) * 10 >= t->cap * 7)
        itable_grow(t);
    uint64_t h = ident_hash(gid, value);
    size_t j = h & (t->cap - 1);
    while (t->slots[j]) {
        uint64_t slot = t->slots[j];
        if ((slot >> 32) == (h >> 32)) {
            uint32_t idx = (uint32_t)(slot & 0xffffffffULL) - 1;
            const struct ikey *k = &t->keys[idx];
            if (k->hash == h && k->gid == gid && !strcmp(k->value, value))
                return idx;
        }
        j = (j + 1) & (t->cap - 1);
    }
    if (t->n == t->kcap) {
        t->kcap = t->kcap ? t->kcap * 2 : 64;
        t->keys = xrealloc(t->keys, t->kcap * sizeof(*t->keys));
    }
    t->keys[t->n] = (struct ikey){.gid = gid, .value = xstrdup(value), .hash = h};
    t->slots[j] = slot_of(h, t->n);
    return (uint32_t)t->n++;
}

static void itable_free(struct itable *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->keys[i].value);
    free(t->keys);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* int64 key -> uint32 value; key 0 is never stored (ids and labels start at 1). */
struct imap {
    int64_t *keys;
    uint32_t *vals;
    size_t cap, n;
};

static void imap_put(struct imap *m, int64_t key, uint32_t val);

static void imap_grow(struct imap *m)
{
    struct imap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = xcalloc(m->cap, sizeof(*m->keys));
    m->vals = xcalloc(m->cap, sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            imap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

static void imap_put(struct imap *m, int64_t key, uint32_t val)
{
    if ((m->n + 1) * 10 >= m->cap * 7)
        imap_grow(m);
    size_t j = hash_u64((uint64_t)key) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j])
        m->n++;
    m->keys[j] = key;
    m->vals[j] = val;
}

static bool imap_get(const struct imap *m, int64_t key, uint32_t *val)
{
    if (!m->cap)
        return false;
    size_t j = hash_u64((uint64_t)key) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == key) {
            *val = m->vals[j];
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

static void imap_free(struct imap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* Blocked: the probes of one key fall in one 512-bit block (one cache line), so a check or an
 * insert costs one cache miss instead of BLOOM_PROBES. */
static void bloom_add(uint64_t *bloom, uint64_t h)
{
    uint64_t *block = bloom + ((h & (BLOOM_BITS / 512 - 1)) * 8);
    uint64_t bits = h >> 20;
    for (int i = 0; i < BLOOM_PROBES; i++, bits >>= 9)
        block[(bits >> 6) & 7] |= 1ULL << (bits & 63);
}

static bool bloom_maybe(const uint64_t *bloom, uint64_t h)
{
    const uint64_t *block = bloom + ((h & (BLOOM_BITS / 512 - 1)) * 8);
    uint64_t bits = h >> 20;
    for (int i = 0; i < BLOOM_PROBES; i++, bits >>= 9)
        if (!(block[(bits >> 6) & 7] & (1ULL << (bits & 63))))
            return false;
    return true;
}

static int bloom_fill(void *ctx, int64_t gid, const char *value)
{
    bloom_add(ctx, ident_hash(gid, value));
    return 0;
}

/* The filter, built from the store the first time a batch needs it. */
static int bloom_ready(struct idgraph *g, struct ing_err *err)
{
    if (g->bloom)
        return 0;
    uint64_t *bloom = xcalloc(BLOOM_BITS / 64, sizeof(*bloom));
    int rc = pstore_ident_scan(g->ps, bloom_fill, bloom, err);
    if (rc) {
        free(bloom);
        return rc;
    }
    g->bloom = bloom;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Union-find with union by size and path halving */

struct uf {
    uint32_t *parent;
    uint32_t *size;
};

static void uf_init(struct uf *u, size_t n)
{
    u->parent = xmalloc((n ? n : 1) * sizeof(*u->parent));
    u->size = xmalloc((n ? n : 1) * sizeof(*u->size));
    for (size_t i = 0; i < n; i++) {
        u->parent[i] = (uint32_t)i;
        u->size[i] = 1;
    }
}

static uint32_t uf_find(struct uf *u, uint32_t x)
{
    while (u->parent[x] != x) {
        u->parent[x] = u->parent[u->parent[x]];
        x = u->parent[x];
    }
    return x;
}

static void uf_union(struct uf *u, uint32_t a, uint32_t b)
{
    a = uf_find(u, a);
    b = uf_find(u, b);
    if (a == b)
        return;
    if (u->size[a] < u->size[b]) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    u->parent[b] = a;
    u->size[a] += u->size[b];
}

static void uf_free(struct uf *u)
{
    free(u->parent);
    free(u->size);
}

/* ---------------------------------------------------------------------------------------------- */
/* Batches */

struct idg_batch {
    struct itable ids;
    uint32_t *row_ids; /* local identity indices of all rows, row after row */
    size_t nrow_ids, cap_row_ids;
    size_t *row_off;   /* row r is row_ids[row_off[r] .. row_off[r + 1]) */
    size_t nrows, cap_rows;
    struct idg_ns *ns;
    size_t nns, cap_ns;
};

struct idg_batch *idg_batch_new(void)
{
    struct idg_batch *b = xcalloc(1, sizeof(*b));
    b->cap_rows = 64;
    b->row_off = xcalloc(b->cap_rows + 1, sizeof(*b->row_off));
    return b;
}

void idg_batch_free(struct idg_batch *b)
{
    if (!b)
        return;
    itable_free(&b->ids);
    free(b->row_ids);
    free(b->row_off);
    free(b->ns);
    free(b);
}

void idg_batch_note_ns(struct idg_batch *b, const struct idg_ns *ns)
{
    for (size_t i = 0; i < b->nns; i++)
        if (b->ns[i].gid == ns->gid)
            return;
    if (b->nns == b->cap_ns) {
        b->cap_ns = b->cap_ns ? b->cap_ns * 2 : 8;
        b->ns = xrealloc(b->ns, b->cap_ns * sizeof(*b->ns));
    }
    b->ns[b->nns++] = *ns;
}

void idg_batch_add_row(struct idg_batch *b, const int64_t *gids, const char *const *values,
                       size_t n)
{
    size_t start = b->nrow_ids;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = itable_intern(&b->ids, gids[i], values[i]);
        bool dup = false;
        for (size_t k = start; k < b->nrow_ids && !dup; k++)
            dup = b->row_ids[k] == id;
        if (dup)
            continue;
        if (b->nrow_ids == b->cap_row_ids) {
            b->cap_row_ids = b->cap_row_ids ? b->cap_row_ids * 2 : 256;
            b->row_ids = xrealloc(b->row_ids, b->cap_row_ids * sizeof(*b->row_ids));
        }
        b->row_ids[b->nrow_ids++] = id;
    }
    if (b->nrow_ids == start)
        return;
    if (b->nrows + 1 >= b->cap_rows) {
        b->cap_rows *= 2;
        b->row_off = xrealloc(b->row_off, (b->cap_rows + 1) * sizeof(*b->row_off));
    }
    b->row_off[b->nrows] = start;
    b->nrows++;
    b->row_off[b->nrows] = b->nrow_ids;
}

size_t idg_batch_rows(const struct idg_batch *b)
{
    return b->nrows;
}

size_t idg_batch_identities(const struct idg_batch *b)
{
    return b->ids.n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Cluster recomputation and the guardrail */

/* Removal rank of a namespace kind: lower goes first. AEP removes partner ids, then cookie ids,
 * then device ids, then the people identifiers (cross-device, email, phone). */
static int kind_rank(const char *id_type)
{
    if (!strcasecmp(id_type, "PARTNER"))
        return 0;
    if (!strcasecmp(id_type, "COOKIE"))
        return 1;
    if (!strcasecmp(id_type, "DEVICE") || !strcasecmp(id_type, "MOBILE"))
        return 2;
    return 3;
}

/* Kind of a gid: the batch knows the namespaces it created; the others are committed. */
static int member_rank(struct idgraph *g, const struct idg_batch *b, int64_t gid)
{
    for (size_t i = 0; b && i < b->nns; i++)
        if (b->ns[i].gid == gid)
            return kind_rank(b->ns[i].id_type);
    struct pstore_ns ns;
    if (pstore_ns_by_gid(g->ps, gid, &ns, NULL) == 0)
        return kind_rank(ns.id_type);
    return 3;
}

/* Recompute the components of cluster `label` from its members' edges: the largest component
 * keeps the label (ties: the one with the smallest id), every other one gets a fresh label.
 * `ids` are the members, ascending. *components (may be NULL) receives their number. */
static int recluster(struct pstore_tx *tx, int64_t label, const int64_t *ids, size_t n,
                     int64_t *components, struct ing_err *err)
{
    struct imap index = {0};
    struct uf u;
    uf_init(&u, n);
    int64_t *label_of_root = NULL;
    int ret = 0;
    for (size_t i = 0; i < n; i++)
        imap_put(&index, ids[i], (uint32_t)i);
    for (size_t i = 0; i < n && ret == 0; i++) {
        int64_t *nb = NULL;
        size_t nnb = 0;
        ret = pstore_tx_neighbours(tx, ids[i], &nb, &nnb, err);
        for (size_t k = 0; k < nnb && ret == 0; k++) {
            uint32_t j;
            if (imap_get(&index, nb[k], &j))
                uf_union(&u, (uint32_t)i, j);
        }
        free(nb);
    }
    if (ret)
        goto out;
    uint32_t keep = UINT32_MAX;
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(&u, (uint32_t)i);
        if (r != i)
            continue;
        count++;
        if (keep == UINT32_MAX || u.size[r] > u.size[keep])
            keep = r;
    }
    label_of_root = xcalloc(n ? n : 1, sizeof(*label_of_root));
    for (size_t i = 0; i < n && ret == 0; i++) {
        uint32_t r = uf_find(&u, (uint32_t)i);
        if (r == keep)
            continue;
        if (!label_of_root[r])
            label_of_root[r] = pstore_tx_next_id(tx);
        ret = pstore_tx_ident_set_cluster(tx, ids[i], label_of_root[r], err);
    }
    (void)label;
    if (components)
        *components = count;
out:
    free(label_of_root);
    uf_free(&u);
    imap_free(&index);
    return ret;
}

struct ranked {
    int64_t id;
    int rank;
    int64_t last_ts;
};

static int cmp_ranked(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->last_ts != b->last_ts)
        return a->last_ts < b->last_ts ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

/* Trim cluster `label` down to the limit in the configured removal order. */
static int enforce_limit(struct idgraph *g, struct pstore_tx *tx, const struct idg_batch *b,
                         int64_t label, int64_t *removed, struct ing_err *err)
{
    struct pstore_member *m = NULL;
    size_t n = 0;
    struct ranked *order = NULL;
    int64_t *keep = NULL;
    size_t limit = (size_t)g->settings.max_identities;
    int ret = pstore_tx_cluster_members(tx, label, &m, &n, err);
    if (ret || n <= limit)
        goto out;
    order = xcalloc(n, sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        order[i].id = m[i].id;
        order[i].last_ts = m[i].last_ts;
        order[i].rank = g->settings.removal == IDG_REMOVE_AEP ? member_rank(g, b, m[i].gid) : 0;
    }
    qsort(order, n, sizeof(*order), cmp_ranked);
    size_t drop = n - limit;
    for (size_t i = 0; i < drop && ret == 0; i++)
        ret = pstore_tx_ident_delete(tx, order[i].id, err);
    if (ret)
        goto out;
    *removed += (int64_t)drop;
    keep = xcalloc(limit ? limit : 1, sizeof(*keep));
    for (size_t i = drop; i < n; i++)
        keep[i - drop] = order[i].id;
    qsort(keep, limit, sizeof(*keep), cmp_i64);
    ret = recluster(tx, label, keep, limit, NULL, err);
out:
    free(keep);
    free(order);
    pstore_members_free(m, n);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Stitching a batch */

int idg_apply_batch(struct idgraph *g, struct pstore_tx *tx, const struct idg_batch *b,
                    int64_t seq, int64_t ts, struct idg_apply_result *res, struct ing_err *err)
{
    memset(res, 0, sizeof(*res));
    size_t n = b->ids.n;
    res->identities_seen = (int64_t)n;
    int64_t *ident_id = xcalloc(n ? n : 1, sizeof(*ident_id));
    int64_t *old_cluster = xcalloc(n ? n : 1, sizeof(*old_cluster));
    struct imap vnode = {0}, pairs = {0};
    int64_t *vlabel = NULL;   /* existing cluster label of each virtual node */
    int64_t *vsize = NULL;
    size_t nv = 0, capv = 0;
    struct uf u = {0};
    int64_t *root_label = NULL, *root_size = NULL;
    uint32_t *root_vbest = NULL;
    int ret = 0;

    /* 1. Which identities exist already, and in which clusters. The filter answers "new" for
     * most identities of a fresh batch without a query. */
    if ((ret = bloom_ready(g, err)) != 0)
        goto out;
    for (size_t i = 0; i < n && ret == 0; i++) {
        if (!bloom_maybe(g->bloom, b->ids.keys[i].hash))
            continue;
        ret = pstore_tx_ident_find(tx, b->ids.keys[i].gid, b->ids.keys[i].value, &ident_id[i],
                                   &old_cluster[i], err);
        if (ret == ING_ENOTFOUND) {
            ident_id[i] = 0;
            old_cluster[i] = 0;
            ret = 0;
        }
        uint32_t v;
        if (ret == 0 && old_cluster[i] && !imap_get(&vnode, old_cluster[i], &v)) {
            if (nv == capv) {
                capv = capv ? capv * 2 : 16;
                vlabel = xrealloc(vlabel, capv * sizeof(*vlabel));
            }
            vlabel[nv] = old_cluster[i];
            imap_put(&vnode, old_cluster[i], (uint32_t)nv);
            nv++;
        }
    }
    if (ret)
        goto out;

    /* 2. Union rows, and every known identity with its cluster (a virtual node n + v). */
    uf_init(&u, n + nv);
    for (size_t r = 0; r < b->nrows; r++)
        for (size_t k = b->row_off[r] + 1; k < b->row_off[r + 1]; k++)
            uf_union(&u, b->row_ids[b->row_off[r]], b->row_ids[k]);
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        if (old_cluster[i] && imap_get(&vnode, old_cluster[i], &v))
            uf_union(&u, (uint32_t)i, (uint32_t)(n + v));
    }

    /* 3. Sizes of the clusters met: needed to merge smaller into larger and for the limit. */
    size_t total = n + nv;
    root_label = xcalloc(total ? total : 1, sizeof(*root_label));
    root_size = xcalloc(total ? total : 1, sizeof(*root_size));
    root_vbest = xmalloc((total ? total : 1) * sizeof(*root_vbest));
    for (size_t i = 0; i < total; i++)
        root_vbest[i] = UINT32_MAX;
    size_t *vcount = xcalloc(total ? total : 1, sizeof(*vcount));
    for (size_t v = 0; v < nv; v++)
        vcount[uf_find(&u, (uint32_t)(n + v))]++;
    bool need_sizes = g->settings.max_identities > 0;
    vsize = xcalloc(nv ? nv : 1, sizeof(*vsize));
    for (size_t v = 0; v < nv && ret == 0; v++) {
        uint32_t r = uf_find(&u, (uint32_t)(n + v));
        if (need_sizes || vcount[r] > 1)
            ret = pstore_tx_cluster_size(tx, vlabel[v], &vsize[v], err);
        if (ret)
            break;
        root_size[r] += vsize[v];
        uint32_t best = root_vbest[r];
        if (best == UINT32_MAX || vsize[v] > vsize[best] ||
            (vsize[v] == vsize[best] && vlabel[v] < vlabel[best]))
            root_vbest[r] = (uint32_t)v;
    }
    free(vcount);
    if (ret)
        goto out;

    /* 4. Merge existing clusters: every other cluster of a component joins its largest one. */
    for (size_t v = 0; v < nv && ret == 0; v++) {
        uint32_t r = uf_find(&u, (uint32_t)(n + v));
        root_label[r] = vlabel[root_vbest[r]];
        if (root_vbest[r] != v) {
            ret = pstore_tx_cluster_relabel(tx, vlabel[v], root_label[r], err);
            res->clusters_merged++;
        }
    }
    if (ret)
        goto out;

    /* 5. New identities go straight in under their final label; known ones are touched. */
    for (size_t i = 0; i < n && ret == 0; i++) {
        uint32_t r = uf_find(&u, (uint32_t)i);
        if (ident_id[i]) {
            ret = pstore_tx_ident_touch(tx, ident_id[i], ts, err);
            continue;
        }
        if (!root_label[r])
            root_label[r] = pstore_tx_next_id(tx);
        ident_id[i] = pstore_tx_next_id(tx);
        root_size[r]++;
        res->identities_new++;
        /* Added before the commit: if the transaction rolls back the filter only says "maybe". */
        bloom_add(g->bloom, b->ids.keys[i].hash);
        ret = pstore_tx_ident_insert(tx, ident_id[i], b->ids.keys[i].gid, b->ids.keys[i].value,
                                     root_label[r], ts, err);
    }
    if (ret)
        goto out;

    /* 6. Links: a star from each row's first identity; a lone identity gets a self edge, which
     * records that this batch saw it. Each link is written once per batch. */
    for (size_t r = 0; r < b->nrows && ret == 0; r++) {
        size_t first = b->row_off[r], end = b->row_off[r + 1];
        uint32_t a = b->row_ids[first];
        for (size_t k = end - first == 1 ? first : first + 1; k < end && ret == 0; k++) {
            uint32_t c = b->row_ids[k];
            uint64_t lo = a < c ? a : c, hi = a < c ? c : a;
            int64_t key = (int64_t)((lo << 32) | hi) + 1; /* never 0 */
            uint32_t seen;
            if (imap_get(&pairs, key, &seen))
                continue;
            imap_put(&pairs, key, 1);
            ret = pstore_tx_edge_add(tx, ident_id[a], ident_id[c], seq, ts, err);
            res->links++;
        }
    }
    if (ret)
        goto out;

    /* 7. The guardrail, for every component that passed the limit. */
    if (g->settings.max_identities > 0 && g->settings.removal != IDG_KEEP) {
        for (size_t i = 0; i < total && ret == 0; i++) {
            if (uf_find(&u, (uint32_t)i) != i || !root_label[i])
                continue;
            if (root_size[i] > g->settings.max_identities)
                ret = enforce_limit(g, tx, b, root_label[i], &res->guardrail_removed, err);
        }
    }
out:
    uf_free(&u);
    imap_free(&vnode);
    imap_free(&pairs);
    free(ident_id);
    free(old_cluster);
    free(vlabel);
    free(vsize);
    free(root_label);
    free(root_size);
    free(root_vbest);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Taking a batch back out */

int idg_remove_batch(struct idgraph *g, struct pstore_tx *tx, int64_t seq,
                     struct idg_remove_result *res, struct ing_err *err)
{
    (void)g;
    memset(res, 0, sizeof(*res));
    int64_t *idents = NULL, *labels = NULL;
    size_t n = 0, nl = 0;
    int ret = pstore_tx_edges_delete_batch(tx, seq, &idents, &n, &res->links_removed, err);
    if (ret)
        return ret;
    labels = xcalloc(n ? n : 1, sizeof(*labels));
    for (size_t i = 0; i < n && ret == 0; i++) {
        int64_t label = 0, edges = 0;
        ret = pstore_tx_ident_cluster(tx, idents[i], &label, err);
        if (ret == ING_ENOTFOUND) {
            ret = 0;
            continue;
        }
        if (ret == 0)
            ret = pstore_tx_ident_edge_count(tx, idents[i], &edges, err);
        if (ret)
            break;
        labels[nl++] = label;
        if (edges == 0) {
            ret = pstore_tx_ident_delete(tx, idents[i], err);
            res->identities_removed++;
        }
    }
    if (ret)
        goto out;
    qsort(labels, nl, sizeof(*labels), cmp_i64);
    for (size_t i = 0; i < nl && ret == 0; i++) {
        if (i > 0 && labels[i] == labels[i - 1])
            continue;
        struct pstore_member *m = NULL;
        size_t nm = 0;
        ret = pstore_tx_cluster_members(tx, labels[i], &m, &nm, err);
        if (ret == 0 && nm > 0) {
            int64_t *ids = xcalloc(nm, sizeof(*ids));
            for (size_t k = 0; k < nm; k++)
                ids[k] = m[k].id;
            int64_t parts = 0;
            ret = recluster(tx, labels[i], ids, nm, &parts, err);
            res->clusters_after += parts;
            free(ids);
        }
        pstore_members_free(m, nm);
    }
out:
    free(idents);
    free(labels);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Lookups */

void idg_cluster_free(struct idg_cluster *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->members[i].value);
    free(c->members);
    c->members = NULL;
    c->n = 0;
}

/* Look up a namespace by code (or nsid when code is NULL): in the graph first, else in the
 * registry (a namespace the graph has not met yet: gid 0). */
static int find_ns(struct idgraph *g, const char *sandbox, const char *code, int64_t nsid,
                   struct idg_ns *out, struct ing_err *err)
{
    struct pstore_ns pns;
    int rc = code ? pstore_ns_by_code(g->ps, sandbox, code, &pns, err)
                  : pstore_ns_by_nsid(g->ps, sandbox, nsid, &pns, err);
    if (rc == 0) {
        fill_ns(out, pns.gid, pns.nsid, pns.code, pns.id_type);
        return 0;
    }
    if (rc != ING_ENOTFOUND || !g->reg)
        return rc;
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)nsid);
    json_t *doc = NULL;
    rc = registry_namespace_get(g->reg, sandbox, code ? code : num, &doc, err);
    if (rc)
        return rc;
    fill_ns(out, 0, json_integer_value(json_object_get(doc, "id")),
            json_string_value(json_object_get(doc, "code")),
            json_string_value(json_object_get(doc, "idType")));
    json_decref(doc);
    return 0;
}

static int lookup(struct idgraph *g, const struct idg_ns *ns,
                  const char *value, bool stitch, struct idg_cluster *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!ns->people)
        return ing_err_set(err, ING_EINVAL,
                           "Namespace %s is a non-people namespace; it has no identity graph.",
                           ns->code);
    char *norm = NULL;
    if (idg_normalise(ns->code, ns->id_type, value, &norm) != IDG_NORM_OK)
        return ing_err_set(err, ING_EINVAL, "The identity value is empty or longer than %d.",
                           IDG_VALUE_MAX);
    int64_t id = 0, label = 0;
    int rc = ns->gid ? pstore_ident_lookup(g->ps, ns->gid, norm, &id, &label, err) : ING_ENOTFOUND;
    if (rc && rc != ING_ENOTFOUND) {
        free(norm);
        return rc;
    }
    if (rc == ING_ENOTFOUND || !stitch) {
        out->label = rc == 0 ? label : 0;
        out->members = xcalloc(1, sizeof(*out->members));
        out->members[0] = (struct idg_member){.id = id, .ns = *ns, .value = norm};
        out->n = 1;
        return 0;
    }
    free(norm);
    out->label = label;
    struct pstore_member *m = NULL;
    size_t n = 0, total = 0;
    rc = pstore_cluster_members(g->ps, label, (size_t)g->settings.max_identities, &m, &n, &total,
                                err);
    if (rc == ING_ETOOBIG)
        return ing_err_set(err, ING_ETOOBIG,
                           "Too many related identities: the graph has %zu identities, more "
                           "than the limit of %d.",
                           total, g->settings.max_identities);
    if (rc)
        return rc;
    out->members = xcalloc(n ? n : 1, sizeof(*out->members));
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct pstore_ns pns;
        rc = pstore_ns_by_gid(g->ps, m[i].gid, &pns, err);
        if (rc)
            break;
        struct idg_member *d = &out->members[out->n++];
        fill_ns(&d->ns, pns.gid, pns.nsid, pns.code, pns.id_type);
        d->id = m[i].id;
        d->value = m[i].value;
        m[i].value = NULL;
        d->first_ts = m[i].first_ts;
        d->last_ts = m[i].last_ts;
    }
    pstore_members_free(m, n);
    if (rc)
        idg_cluster_free(out);
    return rc;
}

int idg_lookup(struct idgraph *g, const char *sandbox, const char *code, const char *value,
               bool stitch, struct idg_cluster *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    struct idg_ns ns;
    int rc = find_ns(g, sandbox, code, 0, &ns, err);
    return rc ? rc : lookup(g, &ns, value, stitch, out, err);
}

int idg_lookup_nsid(struct idgraph *g, const char *sandbox, int64_t nsid, const char *value,
                    bool stitch, struct idg_cluster *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    struct idg_ns ns;
    int rc = find_ns(g, sandbox, NULL, nsid, &ns, err);
    return rc ? rc : lookup(g, &ns, value, stitch, out, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* XIDs */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *idg_xid(int64_t nsid, const char *value)
{
    char *plain = xasprintf("%lld|%s", (long long)nsid, value ? value : "");
    size_t n = strlen(plain);
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)plain;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = B64URL[(v >> 18) & 63];
        out[o++] = B64URL[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = B64URL[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = B64URL[v & 63];
    }
    out[o] = '\0';
    free(plain);
    return out;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64URL, c) : NULL;
    return p ? (int)(p - B64URL) : -1;
}

int idg_xid_decode(const char *xid, int64_t *nsid, char **value)
{
    *value = NULL;
    size_t n = xid ? strlen(xid) : 0;
    if (n < 2 || n % 4 == 1 || n > 4 * IDG_VALUE_MAX)
        return ING_EINVAL;
    char *plain = xmalloc(n / 4 * 3 + 3);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        size_t k = 0;
        for (; k < 4 && i + k < n; k++) {
            int d = b64_val(xid[i + k]);
            if (d < 0) {
                free(plain);
                return ING_EINVAL;
            }
            v |= (uint32_t)d << (18 - 6 * k);
        }
        plain[o++] = (char)(v >> 16);
        if (k > 2)
            plain[o++] = (char)((v >> 8) & 0xff);
        if (k > 3)
            plain[o++] = (char)(v & 0xff);
    }
    plain[o] = '\0';
    char *bar = memchr(plain, '|', o);
    char *end = NULL;
    long long id = bar ? strtoll(plain, &end, 10) : 0;
    if (!bar || end != bar || bar == plain || strlen(plain) != o || !bar[1]) {
        free(plain);
        return ING_EINVAL;
    }
    *nsid = id;
    *value = xstrdup(bar + 1);
    free(plain);
    return 0;
}
