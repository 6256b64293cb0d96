/*
 * idgraph.c - the identity graph (idgraph.h): extraction and normalisation, in-memory stitching
 * of a batch with a union-find, persistence through pstore, the guardrail, revert with cluster
 * split, and the lookups. The batch's arrays (occurrences, keys, union-find, groupings) are
 * util/bigmem arrays: huge pages, so a million-record batch does not pay ~100,000 page faults.
 */
#include "identity/idgraph.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/bigmem.h"
#include "util/mem.h"
#include "util/sort.h"

struct idgraph {
    struct pstore *ps;
    struct registry *reg;
    struct idg_settings settings;
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

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

struct ikey {
    int64_t gid;
    const char *value; /* in the table's arena */
    uint64_t hash;     /* pstore_ident_hash: the dictionary's key too */
};

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
    m->keys = bigmem_alloc(m->cap * sizeof(*m->keys));
    m->vals = bigmem_alloc(m->cap * sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            imap_put(m, old.keys[i], old.vals[i]);
    bigmem_free(old.keys);
    bigmem_free(old.vals);
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
    bigmem_free(m->keys);
    bigmem_free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------------------------------- */
/* Union-find with union by size and path halving */

struct uf {
    uint32_t *parent;
    uint32_t *size;
};

static void uf_init(struct uf *u, size_t n)
{
    u->parent = bigmem_alloc((n ? n : 1) * sizeof(*u->parent));
    u->size = bigmem_alloc((n ? n : 1) * sizeof(*u->size));
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
    bigmem_free(u->parent);
    bigmem_free(u->size);
}

/* ---------------------------------------------------------------------------------------------- */
/* Batches */

/*
 * A batch keeps every identity occurrence as it comes (hash, key, row), appending only; the
 * distinct identities are found once, when the batch is first used, by partitioning the
 * occurrences on their hash's top bits and deduplicating each small partition in cache. (A
 * hash table over the whole batch spent most of its time in cache and TLB misses.)
 */
#define PART_BITS 11

struct idg_batch {
    struct ikey *occ;      /* occurrences, row after row; within a row, distinct */
    size_t nocc, capocc;
    size_t *row_off;       /* row r is occ[row_off[r] .. row_off[r + 1]) */
    size_t nrows, cap_rows;
    struct bigmem_arena arena; /* the values (util/bigmem: large chunks, not one malloc each) */
    struct idg_ns *ns;
    size_t nns, cap_ns;
    /* filled by batch_ready: the distinct identities in order of first occurrence, and each
     * occurrence's index among them */
    bool ready;
    struct ikey *keys;
    size_t nkeys;
    uint32_t *row_ids;
};

struct idg_batch *idg_batch_new(void)
{
    struct idg_batch *b = xcalloc(1, sizeof(*b));
    b->cap_rows = 64;
    b->row_off = bigmem_alloc((b->cap_rows + 1) * sizeof(*b->row_off));
    return b;
}

void idg_batch_free(struct idg_batch *b)
{
    if (!b)
        return;
    bigmem_arena_clear(&b->arena);
    bigmem_free(b->occ);
    bigmem_free(b->row_off);
    free(b->ns);
    bigmem_free(b->keys);
    bigmem_free(b->row_ids);
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

static bool same_key(const struct ikey *a, const struct ikey *b)
{
    return a->hash == b->hash && a->gid == b->gid && !strcmp(a->value, b->value);
}

void idg_batch_add_row(struct idg_batch *b, const int64_t *gids, const char *const *values,
                       size_t n)
{
    size_t start = b->nocc;
    b->ready = false;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(values[i]);
        struct ikey k = {.gid = gids[i], .value = values[i],
                         .hash = pstore_ident_hash(gids[i], values[i], len)};
        bool dup = false;
        for (size_t j = start; j < b->nocc && !dup; j++)
            dup = same_key(&b->occ[j], &k);
        if (dup)
            continue;
        if (b->nocc == b->capocc) {
            b->capocc = b->capocc ? b->capocc * 2 : 1024;
            b->occ = bigmem_realloc(b->occ, b->capocc * sizeof(*b->occ));
        }
        k.value = bigmem_arena_strdup(&b->arena, values[i], len);
        b->occ[b->nocc++] = k;
    }
    if (b->nocc == start)
        return;
    if (b->nrows + 1 >= b->cap_rows) {
        b->cap_rows *= 2;
        b->row_off = bigmem_realloc(b->row_off, (b->cap_rows + 1) * sizeof(*b->row_off));
    }
    b->row_off[b->nrows] = start;
    b->nrows++;
    b->row_off[b->nrows] = b->nocc;
}

/* Find the distinct identities (see struct idg_batch). The batch is logically const: this only
 * fills a cache, once per change. */
static void batch_ready(const struct idg_batch *cb)
{
    struct idg_batch *b = (struct idg_batch *)cb;
    if (b->ready)
        return;
    size_t n = b->nocc, nparts = (size_t)1 << PART_BITS;
    uint32_t *rep = bigmem_alloc((n ? n : 1) * sizeof(*rep));
    uint32_t *order = bigmem_alloc((n ? n : 1) * sizeof(*order));
    size_t *start = xcalloc(nparts + 1, sizeof(*start));
    for (size_t i = 0; i < n; i++)
        start[(b->occ[i].hash >> (64 - PART_BITS)) + 1]++;
    size_t biggest = 0;
    for (size_t p = 0; p < nparts; p++) {
        if (start[p + 1] > biggest)
            biggest = start[p + 1];
        start[p + 1] += start[p];
    }
    size_t *fill = xmalloc((nparts + 1) * sizeof(*fill));
    memcpy(fill, start, (nparts + 1) * sizeof(*fill));
    for (size_t i = 0; i < n; i++)
        order[fill[b->occ[i].hash >> (64 - PART_BITS)]++] = (uint32_t)i;
    free(fill);
    /* per partition, a small open-addressing table of representatives (occurrence + 1) */
    size_t cap = 16;
    while (cap < biggest * 2)
        cap *= 2;
    uint32_t *slots = xmalloc(cap * sizeof(*slots));
    for (size_t p = 0; p < nparts; p++) {
        size_t lo = start[p], hi = start[p + 1];
        if (lo == hi)
            continue;
        size_t pcap = 16;
        while (pcap < (hi - lo) * 2)
            pcap *= 2;
        memset(slots, 0, pcap * sizeof(*slots));
        for (size_t k = lo; k < hi; k++) {
            uint32_t i = order[k];
            size_t j = b->occ[i].hash & (pcap - 1);
            rep[i] = i;
            while (slots[j]) {
                uint32_t r = slots[j] - 1;
                if (same_key(&b->occ[r], &b->occ[i])) {
                    rep[i] = r; /* occurrences come in order: r is the first */
                    break;
                }
                j = (j + 1) & (pcap - 1);
            }
            if (rep[i] == i)
                slots[j] = i + 1;
        }
    }
    free(slots);
    free(start);
    bigmem_free(order);
    bigmem_free(b->keys);
    bigmem_free(b->row_ids);
    b->keys = bigmem_alloc((n ? n : 1) * sizeof(*b->keys));
    b->row_ids = bigmem_alloc((n ? n : 1) * sizeof(*b->row_ids));
    b->nkeys = 0;
    for (size_t i = 0; i < n; i++) {
        if (rep[i] == i) {
            b->row_ids[i] = (uint32_t)b->nkeys;
            b->keys[b->nkeys++] = b->occ[i];
        } else {
            b->row_ids[i] = b->row_ids[rep[i]];
        }
    }
    bigmem_free(rep);
    b->ready = true;
}

size_t idg_batch_rows(const struct idg_batch *b)
{
    return b->nrows;
}

size_t idg_batch_identities(const struct idg_batch *b)
{
    batch_ready(b);
    return b->nkeys;
}

/* ---------------------------------------------------------------------------------------------- */
/* Cluster documents in memory: building, splitting, the guardrail */

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

/* A cluster being rebuilt: members (values borrowed), edges by member index, and per member
 * the label it is stored under now (0: new) and its hash. */
struct work {
    struct pstore_member *m;
    int64_t *old_label;
    uint64_t *hash;
    size_t n, capm;
    struct pstore_cedge *e;
    size_t ne, cape;
};

static void work_member(struct work *w, const struct pstore_member *m, int64_t old_label,
                        uint64_t hash)
{
    if (w->n == w->capm) {
        w->capm = w->capm ? w->capm * 2 : 16;
        w->m = xrealloc(w->m, w->capm * sizeof(*w->m));
        w->old_label = xrealloc(w->old_label, w->capm * sizeof(*w->old_label));
        w->hash = xrealloc(w->hash, w->capm * sizeof(*w->hash));
    }
    w->m[w->n] = *m;
    w->old_label[w->n] = old_label;
    w->hash[w->n] = hash;
    w->n++;
}

static void work_edge(struct work *w, uint32_t a, uint32_t b, int64_t seq, int64_t first,
                      int64_t last)
{
    if (w->ne == w->cape) {
        w->cape = w->cape ? w->cape * 2 : 16;
        w->e = xrealloc(w->e, w->cape * sizeof(*w->e));
    }
    w->e[w->ne++] = (struct pstore_cedge){.a = a < b ? a : b, .b = a < b ? b : a, .seq = seq,
                                          .first_ts = first, .last_ts = last};
}

static void work_free(struct work *w)
{
    free(w->m);
    free(w->old_label);
    free(w->hash);
    free(w->e);
    memset(w, 0, sizeof(*w));
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

/* One edge per (a, b, seq): the earliest first time and the latest last time. */
static void work_dedupe_edges(struct work *w)
{
    if (w->ne < 2)
        return;
    qsort(w->e, w->ne, sizeof(*w->e), cmp_cedge);
    size_t k = 1;
    for (size_t i = 1; i < w->ne; i++) {
        struct pstore_cedge *p = &w->e[k - 1], *c = &w->e[i];
        if (c->a == p->a && c->b == p->b && c->seq == p->seq) {
            if (c->first_ts < p->first_ts)
                p->first_ts = c->first_ts;
            if (c->last_ts > p->last_ts)
                p->last_ts = c->last_ts;
        } else {
            w->e[k++] = *c;
        }
    }
    w->ne = k;
}

/* What writing the parts of a rebuilt cluster did, for the callers' counters. */
struct emit_stats {
    int64_t parts;
    int64_t removed;
};

/* Scratch arrays of emit_parts, kept across calls (a batch emits a million small clusters). */
struct emit_scratch {
    struct uf u;
    uint32_t *part_of, *newidx, *mstart, *mitems, *estart, *eitems, *ekey;
    int64_t *part_label, *labels;
    struct pstore_member *pm;
    struct pstore_cedge *pe;
    size_t capn, cape;
};

static void scratch_reserve(struct emit_scratch *s, size_t n, size_t ne)
{
    if (n + 1 > s->capn) {
        s->capn = (n + 1) * 2;
        uf_free(&s->u);
        s->u.parent = bigmem_alloc(s->capn * sizeof(*s->u.parent));
        s->u.size = bigmem_alloc(s->capn * sizeof(*s->u.size));
        s->part_of = xrealloc(s->part_of, s->capn * sizeof(*s->part_of));
        s->newidx = xrealloc(s->newidx, s->capn * sizeof(*s->newidx));
        s->mstart = xrealloc(s->mstart, (s->capn + 1) * sizeof(*s->mstart));
        s->mitems = xrealloc(s->mitems, s->capn * sizeof(*s->mitems));
        s->estart = xrealloc(s->estart, (s->capn + 1) * sizeof(*s->estart));
        s->part_label = xrealloc(s->part_label, s->capn * sizeof(*s->part_label));
        s->labels = xrealloc(s->labels, s->capn * sizeof(*s->labels));
        s->pm = xrealloc(s->pm, s->capn * sizeof(*s->pm));
    }
    if (ne + 1 > s->cape) {
        s->cape = (ne + 1) * 2;
        s->eitems = xrealloc(s->eitems, s->cape * sizeof(*s->eitems));
        s->ekey = xrealloc(s->ekey, s->cape * sizeof(*s->ekey));
        s->pe = xrealloc(s->pe, s->cape * sizeof(*s->pe));
    }
}

static void scratch_free(struct emit_scratch *s)
{
    uf_free(&s->u);
    free(s->part_of);
    free(s->newidx);
    free(s->mstart);
    free(s->mitems);
    free(s->estart);
    free(s->eitems);
    free(s->ekey);
    free(s->part_label);
    free(s->labels);
    free(s->pm);
    free(s->pe);
    memset(s, 0, sizeof(*s));
}

/* Stable counting sort of n items by key (< nkeys) into start[nkeys + 1] and items[n]. */
static void bucket_items(const uint32_t *key, size_t n, size_t nkeys, uint32_t *start,
                         uint32_t *items)
{
    memset(start, 0, (nkeys + 1) * sizeof(*start));
    for (size_t i = 0; i < n; i++)
        start[key[i] + 1]++;
    for (size_t k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    for (size_t i = 0; i < n; i++)
        items[start[key[i]]++] = (uint32_t)i;
    /* start[k] now points past part k: shift back */
    for (size_t k = nkeys; k > 0; k--)
        start[k] = start[k - 1];
    start[0] = 0;
}

/*
 * Store the members of w that are not `gone`, split into connected components: the largest
 * component (ties: the one holding the smallest id) keeps `label`, every other gets a fresh
 * label. The dictionary follows every member whose label changed, a member that is gone leaves
 * it, and labels that disappear (`label` if no part keeps it, the `losers` merged into it)
 * forward to the parts. seq > 0 records the parts holding an edge of that batch.
 */
static int emit_parts(struct pstore_tx *tx, struct emit_scratch *s, struct work *w,
                      const bool *gone, int64_t label, const int64_t *losers, size_t nlosers,
                      int64_t seq, struct emit_stats *st, struct ing_err *err)
{
    size_t n = w->n;
    scratch_reserve(s, n, w->ne);
    struct uf *u = &s->u;
    for (size_t i = 0; i < n; i++) {
        u->parent[i] = (uint32_t)i;
        u->size[i] = 1;
    }
    for (size_t i = 0; i < w->ne; i++)
        if (!gone[w->e[i].a] && !gone[w->e[i].b])
            uf_union(u, w->e[i].a, w->e[i].b);
    /* the part that keeps the label: the largest, the first met on ties */
    uint32_t keep = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        if (gone[i])
            continue;
        uint32_t r = uf_find(u, (uint32_t)i);
        if (keep == UINT32_MAX || u->size[r] > u->size[keep])
            keep = r;
    }
    /* parts numbered in order of their first member; gone members go to part `nparts` */
    for (size_t i = 0; i < n; i++)
        s->newidx[i] = UINT32_MAX; /* root -> part number, for now */
    size_t nparts = 0;
    for (size_t i = 0; i < n; i++) {
        if (gone[i])
            continue;
        uint32_t r = uf_find(u, (uint32_t)i);
        if (s->newidx[r] == UINT32_MAX) {
            s->newidx[r] = (uint32_t)nparts;
            s->part_label[nparts] = r == keep ? label : pstore_tx_next_id(tx);
            nparts++;
        }
    }
    for (size_t i = 0; i < n; i++)
        s->part_of[i] = gone[i] ? (uint32_t)nparts : s->newidx[uf_find(u, (uint32_t)i)];
    bucket_items(s->part_of, n, nparts + 1, s->mstart, s->mitems);
    for (size_t i = 0; i < w->ne; i++)
        s->ekey[i] = gone[w->e[i].a] || gone[w->e[i].b] ? (uint32_t)nparts
                                                         : s->part_of[w->e[i].a];
    bucket_items(s->ekey, w->ne, nparts + 1, s->estart, s->eitems);
    /* a member's index inside its part */
    for (size_t p = 0; p < nparts; p++)
        for (uint32_t k = s->mstart[p]; k < s->mstart[p + 1]; k++)
            s->newidx[s->mitems[k]] = k - s->mstart[p];
    int ret = 0;
    size_t nlabels = 0;
    bool label_kept = false;
    for (size_t p = 0; p < nparts && ret == 0; p++) {
        struct pstore_cluster doc = {.label = s->part_label[p], .members = s->pm, .edges = s->pe};
        for (uint32_t k = s->mstart[p]; k < s->mstart[p + 1]; k++)
            s->pm[doc.n++] = w->m[s->mitems[k]];
        bool has_seq = false;
        for (uint32_t k = s->estart[p]; k < s->estart[p + 1]; k++) {
            struct pstore_cedge e = w->e[s->eitems[k]];
            has_seq = has_seq || e.seq == seq;
            e.a = s->newidx[e.a];
            e.b = s->newidx[e.b];
            s->pe[doc.ne++] = e;
        }
        ret = pstore_tx_cluster_put(tx, &doc, err);
        if (has_seq && seq > 0)
            s->labels[nlabels++] = doc.label;
        if (doc.label == label)
            label_kept = true;
        else if (ret == 0)
            ret = pstore_tx_label_forward(tx, label, doc.label, err);
        for (size_t k = 0; k < nlosers && ret == 0; k++)
            ret = pstore_tx_label_forward(tx, losers[k], doc.label, err);
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        if (gone[i]) {
            if (w->old_label[i]) {
                pstore_tx_dict_change(tx, w->hash[i], w->old_label[i], 0);
                st->removed++;
            }
            continue;
        }
        int64_t now = s->part_label[s->part_of[i]];
        if (w->old_label[i] != now)
            pstore_tx_dict_change(tx, w->hash[i], w->old_label[i], now);
    }
    if (ret == 0 && !label_kept)
        pstore_tx_cluster_delete(tx, label);
    for (size_t k = 0; k < nlosers && ret == 0; k++)
        pstore_tx_cluster_delete(tx, losers[k]);
    if (ret == 0 && nlabels)
        ret = pstore_tx_batch_labels_add(tx, seq, s->labels, nlabels, err);
    st->parts += (int64_t)nparts;
    return ret;
}

struct ranked {
    size_t idx;
    int rank;
    int64_t last_ts;
    int64_t id;
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

/* Mark the members the guardrail removes from w (over the limit) in gone[]; returns how many. */
static size_t guardrail(struct idgraph *g, const struct idg_batch *b, const struct work *w,
                        bool *gone)
{
    size_t limit = (size_t)g->settings.max_identities;
    if (limit == 0 || g->settings.removal == IDG_KEEP || w->n <= limit)
        return 0;
    struct ranked *order = xmalloc(w->n * sizeof(*order));
    for (size_t i = 0; i < w->n; i++)
        order[i] = (struct ranked){
            .idx = i, .last_ts = w->m[i].last_ts, .id = w->m[i].id,
            .rank = g->settings.removal == IDG_REMOVE_AEP ? member_rank(g, b, w->m[i].gid) : 0};
    qsort(order, w->n, sizeof(*order), cmp_ranked);
    size_t drop = w->n - limit;
    for (size_t i = 0; i < drop; i++)
        gone[order[i].idx] = true;
    free(order);
    return drop;
}

/* ---------------------------------------------------------------------------------------------- */
/* Stitching a batch */

/* An existing cluster the batch touches, with its members' hashes sorted for lookups. */
struct loaded {
    struct pstore_cluster c;
    uint64_t *mh;      /* (hash, member index) sorted by hash: hash in mh[2k], index in mh[2k+1] */
};

static int cmp_u64pair(const void *pa, const void *pb)
{
    const uint64_t *a = pa, *b = pb;
    return (a[0] > b[0]) - (a[0] < b[0]);
}

/* Index a loaded cluster's members by hash, into mh (2 * c.n entries, owned by the caller). */
static void loaded_index(struct loaded *l, uint64_t *mh)
{
    l->mh = mh;
    for (size_t i = 0; i < l->c.n; i++) {
        l->mh[2 * i] = pstore_ident_hash(l->c.members[i].gid, l->c.members[i].value,
                                         strlen(l->c.members[i].value));
        l->mh[2 * i + 1] = i;
    }
    qsort(l->mh, l->c.n, 2 * sizeof(*l->mh), cmp_u64pair);
}

/* The member (gid, value, hash) of a loaded cluster, or -1. */
static long loaded_find(const struct loaded *l, int64_t gid, const char *value, uint64_t h)
{
    size_t lo = 0, hi = l->c.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->mh[2 * mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < l->c.n && l->mh[2 * k] == h; k++) {
        const struct pstore_member *m = &l->c.members[l->mh[2 * k + 1]];
        if (m->gid == gid && !strcmp(m->value, value))
            return (long)l->mh[2 * k + 1];
    }
    return -1;
}

/* Counting sort of items 0..n-1 by key (< nkeys): *start (nkeys + 1) and *items, new. */
static void group_by(const uint32_t *key, size_t n, size_t nkeys, size_t **start,
                     uint32_t **items)
{
    *start = bigmem_alloc((nkeys + 1) * sizeof(**start));
    *items = bigmem_alloc((n ? n : 1) * sizeof(**items));
    for (size_t i = 0; i < n; i++)
        (*start)[key[i] + 1]++;
    for (size_t k = 0; k < nkeys; k++)
        (*start)[k + 1] += (*start)[k];
    size_t *fill = bigmem_alloc((nkeys + 1) * sizeof(*fill));
    memcpy(fill, *start, (nkeys + 1) * sizeof(*fill));
    for (size_t i = 0; i < n; i++)
        (*items)[fill[key[i]]++] = (uint32_t)i;
    bigmem_free(fill);
}

int idg_apply_batch(struct idgraph *g, struct pstore_tx *tx, const struct idg_batch *b,
                    int64_t seq, int64_t ts, struct idg_apply_result *res, struct ing_err *err)
{
    memset(res, 0, sizeof(*res));
    batch_ready(b);
    size_t n = b->nkeys;
    res->identities_seen = (int64_t)n;
    uint64_t *hashes = bigmem_alloc((n ? n : 1) * sizeof(*hashes));
    int64_t *cand = NULL;
    size_t *coff = NULL;
    struct loaded *ld = NULL;
    size_t nld = 0;
    struct pstore_arena *ld_arena = NULL;
    uint64_t *ld_mh = NULL;
    struct imap ld_of = {0};
    int32_t *ident_ld = bigmem_alloc((n ? n : 1) * sizeof(*ident_ld)); /* loaded cluster or -1 */
    int32_t *ident_mi = bigmem_alloc((n ? n : 1) * sizeof(*ident_mi)); /* its member index */
    struct uf u = {0};
    uint32_t *comp_of = NULL, *ident_comp = NULL, *ld_comp = NULL, *row_comp = NULL;
    size_t *ci_start = NULL, *cl_start = NULL, *cr_start = NULL;
    uint32_t *ci_items = NULL, *cl_items = NULL, *cr_items = NULL;
    uint32_t *local = NULL;
    struct emit_scratch scratch = {0};
    bool *gone = NULL;
    struct work w = {0};
    int ret = 0;

    /* 1. Which identities exist already, and in which clusters: the candidate clusters are
     * loaded all at once in label order (each group row read once), then searched. */
    for (size_t i = 0; i < n; i++)
        hashes[i] = b->keys[i].hash;
    if ((ret = pstore_tx_dict_candidates(tx, n, hashes, &cand, &coff, err)) != 0)
        goto out;
    {
        size_t nc = coff[n];
        int64_t *ul = bigmem_alloc((nc ? nc : 1) * sizeof(*ul));
        memcpy(ul, cand, nc * sizeof(*ul));
        nc = sort_unique_i64(ul, nc);
        struct pstore_cluster *cl = bigmem_alloc((nc ? nc : 1) * sizeof(*cl));
        ld = bigmem_alloc((nc ? nc : 1) * sizeof(*ld));
        ret = pstore_tx_clusters_get(tx, ul, nc, cl, &ld_arena, err);
        size_t nmembers = 0;
        for (size_t l = 0; l < nc && ret == 0; l++) {
            if (cl[l].label == 0)
                ret = ing_err_set(err, ING_EINTERNAL,
                                  "idgraph: the dictionary names cluster %lld, which is missing",
                                  (long long)ul[l]);
            nmembers += cl[l].n;
        }
        ld_mh = bigmem_alloc((nmembers ? nmembers : 1) * 2 * sizeof(*ld_mh));
        for (size_t l = 0, off = 0; l < nc; l++) {
            ld[l].c = cl[l];
            if (ret == 0) {
                loaded_index(&ld[l], ld_mh + off);
                off += 2 * cl[l].n;
                imap_put(&ld_of, ul[l], (uint32_t)l);
            }
        }
        nld = nc;
        bigmem_free(cl);
        bigmem_free(ul);
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        ident_ld[i] = -1;
        ident_mi[i] = -1;
        for (size_t k = coff[i]; k < coff[i + 1] && ident_ld[i] < 0 && ret == 0; k++) {
            uint32_t li = 0;
            if (!imap_get(&ld_of, cand[k], &li))
                continue; /* cannot happen: every candidate was loaded */
            long mi = loaded_find(&ld[li], b->keys[i].gid, b->keys[i].value, hashes[i]);
            if (mi >= 0) {
                ident_ld[i] = (int32_t)li;
                ident_mi[i] = (int32_t)mi;
            }
        }
    }
    if (ret)
        goto out;

    /* 2. Union rows, and every known identity with its cluster (node n + cluster index). */
    uf_init(&u, n + nld);
    for (size_t r = 0; r < b->nrows; r++)
        for (size_t k = b->row_off[r] + 1; k < b->row_off[r + 1]; k++)
            uf_union(&u, b->row_ids[b->row_off[r]], b->row_ids[k]);
    for (size_t i = 0; i < n; i++)
        if (ident_ld[i] >= 0)
            uf_union(&u, (uint32_t)i, (uint32_t)(n + (size_t)ident_ld[i]));

    /* 3. Components, numbered in order of their first identity; each with its identities,
     * existing clusters and rows. */
    comp_of = bigmem_alloc((n + nld ? n + nld : 1) * sizeof(*comp_of));
    for (size_t i = 0; i < n + nld; i++)
        comp_of[i] = UINT32_MAX;
    ident_comp = bigmem_alloc((n ? n : 1) * sizeof(*ident_comp));
    size_t ncomp = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = uf_find(&u, (uint32_t)i);
        if (comp_of[r] == UINT32_MAX)
            comp_of[r] = (uint32_t)ncomp++;
        ident_comp[i] = comp_of[r];
    }
    /* a cluster loaded for a hash that was not its member joins nothing: key ncomp, skipped */
    ld_comp = bigmem_alloc((nld ? nld : 1) * sizeof(*ld_comp));
    for (size_t l = 0; l < nld; l++) {
        uint32_t c = comp_of[uf_find(&u, (uint32_t)(n + l))];
        ld_comp[l] = c == UINT32_MAX ? (uint32_t)ncomp : c;
    }
    row_comp = bigmem_alloc((b->nrows ? b->nrows : 1) * sizeof(*row_comp));
    for (size_t r = 0; r < b->nrows; r++)
        row_comp[r] = ident_comp[b->row_ids[b->row_off[r]]];
    group_by(ident_comp, n, ncomp, &ci_start, &ci_items);
    group_by(ld_comp, nld, ncomp + 1, &cl_start, &cl_items);
    group_by(row_comp, b->nrows, ncomp, &cr_start, &cr_items);

    /* 4. Each component becomes one cluster (or more, when the guardrail splits it). */
    local = bigmem_alloc((n ? n : 1) * sizeof(*local));
    int64_t *losers = NULL;
    size_t caplosers = 0;
    for (size_t c = 0; c < ncomp && ret == 0; c++) {
        w.n = w.ne = 0;
        size_t l0 = cl_start[c], l1 = cl_start[c + 1];
        /* the largest existing cluster keeps its label (ties: the smaller label) */
        int64_t label = 0;
        size_t best = SIZE_MAX;
        for (size_t k = l0; k < l1; k++) {
            const struct pstore_cluster *x = &ld[cl_items[k]].c;
            if (best == SIZE_MAX || x->n > ld[best].c.n ||
                (x->n == ld[best].c.n && x->label < ld[best].c.label))
                best = cl_items[k];
        }
        if (l1 - l0 > caplosers) {
            caplosers = l1 - l0;
            losers = xrealloc(losers, caplosers * sizeof(*losers));
        }
        size_t nlosers = 0;
        if (best != SIZE_MAX)
            label = ld[best].c.label;
        /* existing members, merged in id order: a k-way merge of sorted lists */
        size_t *pos = l1 > l0 ? xcalloc(l1 - l0, sizeof(*pos)) : NULL;
        while (pos) {
            size_t pick = SIZE_MAX;
            for (size_t k = l0; k < l1; k++) {
                const struct pstore_cluster *x = &ld[cl_items[k]].c;
                if (pos[k - l0] < x->n &&
                    (pick == SIZE_MAX ||
                     x->members[pos[k - l0]].id < ld[cl_items[pick]].c.members[pos[pick - l0]].id))
                    pick = k;
            }
            if (pick == SIZE_MAX)
                break;
            const struct pstore_cluster *x = &ld[cl_items[pick]].c;
            const struct pstore_member *m = &x->members[pos[pick - l0]];
            work_member(&w, m, x->label, pstore_ident_hash(m->gid, m->value, strlen(m->value)));
            pos[pick - l0]++;
        }
        free(pos);
        for (size_t k = l0; k < l1; k++) {
            const struct pstore_cluster *x = &ld[cl_items[k]].c;
            if (x->label != label)
                losers[nlosers++] = x->label;
        }
        res->clusters_merged += (int64_t)nlosers;
        /* index of an existing member in w: binary search by id */
        for (size_t k = l0; k < l1; k++) {
            const struct pstore_cluster *x = &ld[cl_items[k]].c;
            for (size_t e = 0; e < x->ne; e++) {
                int64_t ida = x->members[x->edges[e].a].id, idb = x->members[x->edges[e].b].id;
                size_t ia = 0, ib = 0;
                for (int side = 0; side < 2; side++) {
                    int64_t id = side ? idb : ida;
                    size_t lo = 0, hi = w.n;
                    while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (w.m[mid].id < id)
                            lo = mid + 1;
                        else
                            hi = mid;
                    }
                    if (side)
                        ib = lo;
                    else
                        ia = lo;
                }
                work_edge(&w, (uint32_t)ia, (uint32_t)ib, x->edges[e].seq, x->edges[e].first_ts,
                          x->edges[e].last_ts);
            }
        }
        /* the batch's identities: known ones are touched, new ones get ids now */
        for (size_t k = ci_start[c]; k < ci_start[c + 1]; k++) {
            uint32_t i = ci_items[k];
            if (ident_ld[i] >= 0) {
                int64_t id = ld[ident_ld[i]].c.members[ident_mi[i]].id;
                size_t lo = 0, hi = w.n;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (w.m[mid].id < id)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                local[i] = (uint32_t)lo;
                if (w.m[lo].last_ts < ts)
                    w.m[lo].last_ts = ts;
                continue;
            }
            if (!label)
                label = pstore_tx_next_id(tx);
            struct pstore_member m = {.id = pstore_tx_next_id(tx), .gid = b->keys[i].gid,
                                      .value = (char *)b->keys[i].value,
                                      .first_ts = ts, .last_ts = ts};
            local[i] = (uint32_t)w.n;
            work_member(&w, &m, 0, hashes[i]);
            res->identities_new++;
        }
        /* 5. Links: a star from each row's first identity; a lone identity gets a self edge,
         * which records that this batch saw it. One edge per link and batch. */
        size_t before = w.ne;
        for (size_t k = cr_start[c]; k < cr_start[c + 1]; k++) {
            size_t r = cr_items[k];
            size_t first = b->row_off[r], end = b->row_off[r + 1];
            uint32_t a = local[b->row_ids[first]];
            for (size_t j = end - first == 1 ? first : first + 1; j < end; j++)
                work_edge(&w, a, local[b->row_ids[j]], seq, ts, ts);
        }
        size_t same_seq_before = 0;
        for (size_t e = 0; e < before; e++)
            same_seq_before += w.e[e].seq == seq;
        work_dedupe_edges(&w);
        size_t same_seq_after = 0;
        for (size_t e = 0; e < w.ne; e++)
            same_seq_after += w.e[e].seq == seq;
        res->links += (int64_t)(same_seq_after - same_seq_before);
        /* 6. The guardrail, then the parts are written. */
        gone = xrealloc(gone, (w.n ? w.n : 1) * sizeof(*gone));
        memset(gone, 0, (w.n ? w.n : 1) * sizeof(*gone));
        size_t dropped = guardrail(g, b, &w, gone);
        res->guardrail_removed += (int64_t)dropped;
        struct emit_stats st = {0};
        ret = emit_parts(tx, &scratch, &w, gone, label, losers, nlosers, seq, &st, err);
    }
    free(losers);
out:
    /* the loaded clusters' arrays live in the arena, their hash indexes in ld_mh */
    pstore_arena_free(ld_arena);
    bigmem_free(ld_mh);
    bigmem_free(ld);
    imap_free(&ld_of);
    uf_free(&u);
    bigmem_free(hashes);
    bigmem_free(cand);
    bigmem_free(coff);
    bigmem_free(ident_ld);
    bigmem_free(ident_mi);
    bigmem_free(comp_of);
    bigmem_free(ident_comp);
    bigmem_free(ld_comp);
    bigmem_free(row_comp);
    bigmem_free(ci_start);
    bigmem_free(ci_items);
    bigmem_free(cl_start);
    bigmem_free(cl_items);
    bigmem_free(cr_start);
    bigmem_free(cr_items);
    bigmem_free(local);
    scratch_free(&scratch);
    free(gone);
    work_free(&w);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Taking a batch back out */

int idg_remove_batch(struct idgraph *g, struct pstore_tx *tx, int64_t seq,
                     struct idg_remove_result *res, struct ing_err *err)
{
    (void)g;
    memset(res, 0, sizeof(*res));
    int64_t *labels = NULL;
    size_t nl = 0;
    struct work w = {0};
    bool *gone = NULL, *touched = NULL;
    uint32_t *degree = NULL;
    struct emit_scratch scratch = {0};
    int ret = pstore_tx_batch_labels_take(tx, seq, &labels, &nl, err);
    for (size_t li = 0; li < nl && ret == 0; li++) {
        struct pstore_cluster c;
        ret = pstore_tx_cluster_get(tx, labels[li], &c, err);
        if (ret == ING_ENOTFOUND) {
            ret = 0;
            continue;
        }
        if (ret)
            break;
        w.n = w.ne = 0;
        for (size_t i = 0; i < c.n; i++)
            work_member(&w, &c.members[i], c.label,
                        pstore_ident_hash(c.members[i].gid, c.members[i].value,
                                          strlen(c.members[i].value)));
        size_t sz = c.n ? c.n : 1;
        gone = xrealloc(gone, sz * sizeof(*gone));
        touched = xrealloc(touched, sz * sizeof(*touched));
        degree = xrealloc(degree, sz * sizeof(*degree));
        memset(gone, 0, sz * sizeof(*gone));
        memset(touched, 0, sz * sizeof(*touched));
        memset(degree, 0, sz * sizeof(*degree));
        for (size_t e = 0; e < c.ne; e++) {
            const struct pstore_cedge *x = &c.edges[e];
            if (x->seq == seq) {
                touched[x->a] = touched[x->b] = true;
                res->links_removed++;
                continue;
            }
            degree[x->a]++;
            degree[x->b]++;
            work_edge(&w, x->a, x->b, x->seq, x->first_ts, x->last_ts);
        }
        if (w.ne == c.ne) {
            pstore_cluster_clear(&c); /* none of its edges came from this batch */
            continue;
        }
        /* identities no other batch saw go */
        for (size_t i = 0; i < c.n; i++)
            gone[i] = touched[i] && degree[i] == 0;
        struct emit_stats st = {0};
        ret = emit_parts(tx, &scratch, &w, gone, c.label, NULL, 0, 0, &st, err);
        res->identities_removed += st.removed;
        res->clusters_after += st.parts;
        pstore_cluster_clear(&c);
    }
    free(labels);
    free(gone);
    free(touched);
    free(degree);
    scratch_free(&scratch);
    work_free(&w);
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
    struct pstore_cluster c = {0};
    size_t total = 0;
    int rc = ING_ENOTFOUND;
    /* One read for the identity and its cluster; without stitching the identity alone. */
    if (ns->gid && stitch)
        rc = pstore_ident_cluster(g->ps, ns->gid, norm, (size_t)g->settings.max_identities, &id,
                                  &c, &total, err);
    else if (ns->gid)
        rc = pstore_ident_lookup(g->ps, ns->gid, norm, &id, &label, err);
    if (rc == ING_ETOOBIG) {
        free(norm);
        out->label = c.label;
        return ing_err_set(err, ING_ETOOBIG,
                           "Too many related identities: the graph has %zu identities, more "
                           "than the limit of %d.",
                           total, g->settings.max_identities);
    }
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
    out->label = c.label;
    out->members = xcalloc(c.n ? c.n : 1, sizeof(*out->members));
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        struct pstore_ns pns;
        rc = pstore_ns_by_gid(g->ps, c.members[i].gid, &pns, err);
        if (rc)
            break;
        struct idg_member *d = &out->members[out->n++];
        fill_ns(&d->ns, pns.gid, pns.nsid, pns.code, pns.id_type);
        d->id = c.members[i].id;
        d->value = xstrdup(c.members[i].value);
        d->first_ts = c.members[i].first_ts;
        d->last_ts = c.members[i].last_ts;
    }
    pstore_cluster_clear(&c);
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
