/*
 * pq_shred.c - Parquet rows straight into the shredder; see pq_shred.h.
 *
 * The walk mirrors pq_reader_row_json's rendering step by step (emit_field / emit_present /
 * emit_repeated / emit_map there) and, at each step, does what shred.c's JSON walk does with the
 * text that step would have written:
 *   a null field          -> shred_put(JT_NULL): required check, nulls below the field
 *   a group (object)      -> its children in schema order; children the plan lacks are counted
 *                            as unknown; plan properties the group lacks get nulls (or fail
 *                            when required)
 *   a list / repeated     -> the elements, the first at the enclosing repetition level, the
 *                            others at the array item's; an empty list gets nulls
 *   a map                 -> key then value per entry (null keys are left out by the rendering)
 *   a value               -> the token of its JSON text
 * Every decision the JSON walk makes is made by the shredder itself (shred_put); this file only
 * decides where the walk goes, which the binding fixes per file. What the binding cannot follow
 * with certainty is marked PB_FAIL and sends a row that reaches it to the JSON path.
 *
 * Token spans must live until the row is committed (strings may be staged by pointer): Parquet
 * strings point into the reader's pages, and text made here (integers, rendered values) goes
 * into an arena of blocks that never move during a row.
 */
#include "ingest/pq_shred.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/date.h"
#include "util/mem.h"
#include "util/utf8.h"

enum pb_mode {
    PB_UNKNOWN = 0, /* no plan field: dropped and counted */
    PB_SCALAR,      /* a leaf into a scalar field */
    PB_STRUCT,      /* a group into an object */
    PB_LIST,        /* a LIST group, or (field context) a bare repeated node, into an array */
    PB_MAP,         /* a MAP with text keys into a map */
    PB_NOCOLS,      /* a value into a field without columns: dropped and counted */
    PB_FAIL,        /* anything else: the row goes the JSON way */
};

struct pb_absent {
    int node;       /* shredder node of a plan property the group does not have */
    bool required;
};

/* The binding of one Parquet node. "Field context" is the node as a member of its parent (it may
 * be null, or repeated: an array of itself); "present context" is the node's own value. */
struct pbind {
    int fn;                    /* field context: shredder node of the field, -1 unknown */
    const struct xdm_field *f;
    uint8_t fmode;             /* repeated nodes in field context: PB_LIST, PB_NOCOLS or PB_FAIL */
    uint8_t mode;              /* present context */
    int pfn;                   /* present context: shredder node */
    int item_fn;               /* PB_MAP without a value column: shredder node of the item */
    const struct xdm_field *pf;
    struct pb_absent *absent;  /* PB_STRUCT */
    int n_absent;
    int n_unknown;             /* PB_STRUCT: children with no plan field */
};

/* Text blocks that do not move while a row is walked. */
struct ablock {
    char *p;
    size_t cap, used;
};

struct pq_shred {
    struct pq_reader *r;
    struct shred *sh;
    struct pbind *b;           /* per reader node */
    const struct pq_rnode **node; /* per reader node, looked up once */
    int nnodes;
    struct ablock *blocks;
    size_t nblocks, cur;
    struct buf render;         /* one value's JSON text, or a part of the row not walked */
    size_t max_text;           /* the JSON path's cap on a row's text (0: none) */
    size_t text;               /* this row: a bound on the length of its JSON text */
    size_t *key_len;           /* per node: bound on the text of its key and punctuation */
    struct ing_err scratch;    /* errors of a row given back: the JSON path reports them */
    int64_t taken, handed_back;
};

#define ARENA_BLOCK 16384

static char *arena_alloc(struct pq_shred *ps, size_t n)
{
    while (ps->cur < ps->nblocks) {
        struct ablock *a = &ps->blocks[ps->cur];
        if (a->cap - a->used >= n) {
            char *p = a->p + a->used;
            a->used += n;
            return p;
        }
        ps->cur++;
    }
    ps->blocks = xrealloc(ps->blocks, (ps->nblocks + 1) * sizeof(*ps->blocks));
    struct ablock *a = &ps->blocks[ps->nblocks++];
    a->cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    a->p = xmalloc(a->cap);
    a->used = n;
    ps->cur = ps->nblocks - 1;
    return a->p;
}

static void arena_reset(struct pq_shred *ps)
{
    for (size_t i = 0; i < ps->nblocks; i++)
        ps->blocks[i].used = 0;
    ps->cur = 0;
}

/* ---- binding ---- */

static bool has_columns(const struct xdm_field *f)
{
    switch (f->type) {
    case XDM_OBJECT:
        for (size_t i = 0; i < f->n_children; i++)
            if (has_columns(&f->children[i]))
                return true;
        return false;
    case XDM_ARRAY:
    case XDM_MAP: return f->item && has_columns(f->item);
    default: return f->column >= 0;
    }
}

static bool is_scalar(enum xdm_type t)
{
    return t != XDM_OBJECT && t != XDM_ARRAY && t != XDM_MAP;
}

static bool is_text(enum pq_rtype t)
{
    return t == PQ_RT_STRING || t == PQ_RT_ENUM || t == PQ_RT_JSON;
}

static void bind_field(struct pq_shred *ps, int nid, const struct xdm_field *f);

/* Node nid's own value goes to field f. */
static void bind_present(struct pq_shred *ps, int nid, const struct xdm_field *f)
{
    const struct pq_rnode *n = pq_reader_node(ps->r, nid);
    struct pbind *b = &ps->b[nid];
    b->pf = f;
    b->pfn = shred_node_of(ps->sh, f);
    b->mode = PB_FAIL;
    if (b->pfn < 0)
        return;
    if (!has_columns(f)) {
        /* The JSON walk drops any non-null value of a field without columns, whatever it is. */
        b->mode = PB_NOCOLS;
        return;
    }
    switch (n->kind) {
    case PQ_RK_VALUE:
        /* INTERVAL renders as an object: the JSON rules decide what that means. */
        if (is_scalar(f->type) && n->rtype != PQ_RT_INTERVAL)
            b->mode = PB_SCALAR;
        return;
    case PQ_RK_STRUCT: {
        if (f->type != XDM_OBJECT)
            return; /* a group into a map (its fields as keys) or a scalar: the JSON rules */
        /* Property names must render as JSON keys, once each. */
        for (int i = 0; i < n->nchildren; i++) {
            const char *name = pq_reader_node(ps->r, n->children[i])->name;
            if (!utf8_valid((const uint8_t *)name, strlen(name)))
                return;
            for (int k = 0; k < i; k++)
                if (strcmp(name, pq_reader_node(ps->r, n->children[k])->name) == 0)
                    return;
        }
        bool *bound = xcalloc(f->n_children + 1, sizeof(bool));
        for (int i = 0; i < n->nchildren; i++) {
            int cid = n->children[i];
            const char *name = pq_reader_node(ps->r, cid)->name;
            const struct xdm_field *cf = xdm_field_child(f, name, strlen(name));
            if (!cf) {
                b->n_unknown++;
                ps->b[cid].fn = -1;
                continue;
            }
            bound[cf - f->children] = true;
            bind_field(ps, cid, cf);
        }
        b->absent = xcalloc(f->n_children + 1, sizeof(*b->absent));
        for (size_t i = 0; i < f->n_children; i++) {
            const struct xdm_field *cf = &f->children[i];
            if (bound[i] || (!has_columns(cf) && !cf->required))
                continue;
            b->absent[b->n_absent].node = shred_node_of(ps->sh, cf);
            b->absent[b->n_absent].required = cf->required;
            b->n_absent++;
        }
        free(bound);
        b->mode = PB_STRUCT;
        return;
    }
    case PQ_RK_LIST: {
        if (f->type != XDM_ARRAY || !f->item)
            return;
        int rn = n->children[0];
        if (n->list_elem == rn)
            bind_present(ps, rn, f->item);
        else
            bind_field(ps, n->list_elem, f->item);
        b->mode = PB_LIST;
        return;
    }
    case PQ_RK_MAP: {
        const struct pq_rnode *key = pq_reader_node(ps->r, n->map_key);
        if (f->type != XDM_MAP || !f->item || !key || !is_text(key->rtype))
            return; /* a map into an object, or keys that render as numbers: the JSON rules */
        if (n->map_value >= 0)
            bind_field(ps, n->map_value, f->item);
        else
            b->item_fn = shred_node_of(ps->sh, f->item); /* each key's value is a null */
        b->mode = PB_MAP;
        return;
    }
    }
}

/* Node nid as a member of its parent goes to field f. */
static void bind_field(struct pq_shred *ps, int nid, const struct xdm_field *f)
{
    const struct pq_rnode *n = pq_reader_node(ps->r, nid);
    struct pbind *b = &ps->b[nid];
    b->fn = shred_node_of(ps->sh, f);
    b->f = f;
    if (n->rep != PQ_REPEATED) {
        bind_present(ps, nid, f);
        return;
    }
    /* A bare repeated node renders as an array of its instances (never null). */
    b->fmode = PB_FAIL;
    if (b->fn < 0)
        return;
    if (!has_columns(f)) {
        b->fmode = PB_NOCOLS;
        return;
    }
    if (f->type != XDM_ARRAY || !f->item)
        return;
    bind_present(ps, nid, f->item);
    b->fmode = PB_LIST;
}

struct pq_shred *pq_shred_new(struct pq_reader *r, struct shred *sh, const struct xdm_plan *plan,
                              size_t max_row_text)
{
    struct pq_shred *ps = xcalloc(1, sizeof(*ps));
    ps->r = r;
    ps->sh = sh;
    ps->max_text = max_row_text;
    ps->nnodes = pq_reader_nnodes(r);
    ps->b = xcalloc((size_t)ps->nnodes, sizeof(*ps->b));
    ps->key_len = xcalloc((size_t)ps->nnodes, sizeof(size_t));
    ps->node = xcalloc((size_t)ps->nnodes, sizeof(*ps->node));
    for (int i = 0; i < ps->nnodes; i++) {
        ps->node[i] = pq_reader_node(r, i);
        ps->b[i].fn = ps->b[i].pfn = -1;
        /* "name": escaped at worst 6 bytes a byte, plus quotes, colon, comma, brackets */
        ps->key_len[i] = 6 * strlen(pq_reader_node(r, i)->name) + 8;
    }
    ing_err_clear(&ps->scratch);
    bind_present(ps, 0, &plan->root);
    if (ps->b[0].mode == PB_NOCOLS)
        ps->b[0].mode = PB_FAIL; /* the root object is walked whatever it holds */
    return ps;
}

void pq_shred_free(struct pq_shred *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->nnodes; i++)
        free(ps->b[i].absent);
    free(ps->b);
    free(ps->key_len);
    free(ps->node);
    for (size_t i = 0; i < ps->nblocks; i++)
        free(ps->blocks[i].p);
    free(ps->blocks);
    buf_free(&ps->render);
    free(ps);
}

void pq_shred_counts(const struct pq_shred *ps, int64_t *taken, int64_t *handed_back)
{
    *taken = ps->taken;
    *handed_back = ps->handed_back;
}

/* ---- the walk ---- */

/* A walk step that cannot go on: the row goes the JSON way. */
#define GIVE_BACK PQ_SHRED_JSON

static const struct jtok null_tok = {.type = JT_NULL, .p = "null", .n = 4};

/* Decimal text of an integer (the rendering's form) as a number token. */
static void int_token(struct pq_shred *ps, uint64_t mag, bool neg, struct jtok *t)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp), *p = end;
    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (neg)
        *--p = '-';
    size_t n = (size_t)(end - p);
    char *dst = arena_alloc(ps, n);
    memcpy(dst, p, n);
    ps->text += n;
    *t = (struct jtok){.type = JT_NUMBER, .p = dst, .n = n, .integer = true};
}

/* Days since 1970-01-01 of 0000-01-01 and 9999-12-31: the dates the rendering writes as
 * "YYYY-MM-DD" (others get a sign and more digits, which the slow path renders). */
#define DAYS_MIN INT64_C(-719528)
#define DAYS_MAX INT64_C(2932896)

static void put_digits(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The rendering's text of a DATE ("YYYY-MM-DD") or TIMESTAMP ("YYYY-MM-DDTHH:MM:SS.fffZ" with
 * 3, 6 or 9 decimals) as a string token, without the renderer; 1 when the date is outside years
 * 0000-9999 (the renderer's other form). */
static int date_token(struct pq_shred *ps, const struct pq_value *v, struct jtok *t)
{
    static const int64_t per_sec[] = {1000, 1000000, 1000000000};
    static const int digits[] = {3, 6, 9};
    const struct pq_rnode *leaf = v->leaf;
    int64_t days, in_day = 0;
    if (leaf->rtype == PQ_RT_DATE) {
        int32_t d32;
        memcpy(&d32, v->fixed, 4);
        days = d32;
    } else {
        int64_t x;
        memcpy(&x, v->fixed, 8);
        int64_t day_units = 86400 * per_sec[leaf->unit];
        days = x / day_units; /* floored, with a non-negative remainder, without overflow */
        in_day = x % day_units;
        if (in_day < 0) {
            in_day += day_units;
            days--;
        }
    }
    if (days < DAYS_MIN || days > DAYS_MAX)
        return 1;
    ps->text += 34;
    if (leaf->rtype == PQ_RT_DATE) {
        char *p = arena_alloc(ps, 10);
        (void)date_put_ymd(p, days); /* in [DAYS_MIN, DAYS_MAX]: years 0..9999 */
        *t = (struct jtok){.type = JT_STRING, .p = p, .n = 10};
        return 0;
    }
    int dig = digits[leaf->unit];
    int64_t secs = in_day / per_sec[leaf->unit], frac = in_day % per_sec[leaf->unit];
    size_t n = (size_t)(21 + dig);
    char *p = arena_alloc(ps, n);
    (void)date_put_ymd(p, days); /* in [DAYS_MIN, DAYS_MAX]: years 0..9999 */
    p[10] = 'T';
    put_digits(p + 11, (uint64_t)(secs / 3600), 2);
    p[13] = ':';
    put_digits(p + 14, (uint64_t)(secs / 60 % 60), 2);
    p[16] = ':';
    put_digits(p + 17, (uint64_t)(secs % 60), 2);
    p[19] = '.';
    put_digits(p + 20, (uint64_t)frac, dig);
    p[20 + dig] = 'Z';
    *t = (struct jtok){.type = JT_STRING, .p = p, .n = n};
    return 0;
}

/* Any value: its JSON text rendered by the reader, then tokenised as the JSON path would. */
static int rendered_token(struct pq_shred *ps, const struct pq_value *v, struct jtok *t)
{
    buf_reset(&ps->render);
    if (pq_reader_value_json(ps->r, v, &ps->render) != 0)
        return GIVE_BACK;
    char *dst = arena_alloc(ps, ps->render.len ? ps->render.len : 1);
    memcpy(dst, ps->render.data, ps->render.len);
    ps->text += ps->render.len;
    struct jlex lx;
    jlex_init(&lx, dst, ps->render.len);
    if (jlex_next(&lx, t, NULL) != 0)
        return GIVE_BACK;
    if (t->type == JT_OBJ_BEGIN || t->type == JT_ARR_BEGIN)
        return GIVE_BACK;
    return 0;
}

/* The token of one value: built directly for the common types, rendered for the rest. */
static int value_token(struct pq_shred *ps, const struct pq_value *v, struct jtok *t)
{
    const struct pq_rnode *leaf = v->leaf;
    switch (leaf->rtype) {
    case PQ_RT_STRING:
    case PQ_RT_ENUM:
    case PQ_RT_JSON:
        /* The text itself: the JSON string's content once unescaped. Not UTF-8: a corrupt row,
         * which the JSON path reports. */
        if (!utf8_valid(v->p, v->n))
            return GIVE_BACK;
        *t = (struct jtok){.type = JT_STRING, .p = v->n ? (const char *)v->p : "", .n = v->n};
        ps->text += 6 * v->n; /* escapes at worst; the rest is counted per node */
        return 0;
    case PQ_RT_BOOL:
        *t = v->fixed[0] ? (struct jtok){.type = JT_TRUE, .p = "true", .n = 4}
                         : (struct jtok){.type = JT_FALSE, .p = "false", .n = 5};
        return 0;
    case PQ_RT_INT:
    case PQ_RT_UINT: {
        uint64_t u;
        if (leaf->phys == PQ_INT32) {
            uint32_t w;
            memcpy(&w, v->fixed, 4); /* little-endian hosts only, like the reader */
            u = leaf->rtype == PQ_RT_UINT ? (uint64_t)w : (uint64_t)(int64_t)(int32_t)w;
        } else {
            memcpy(&u, v->fixed, 8);
        }
        bool neg = leaf->rtype == PQ_RT_INT && (int64_t)u < 0;
        int_token(ps, neg ? 0 - u : u, neg, t);
        return 0;
    }
    case PQ_RT_DOUBLE: {
        double d;
        memcpy(&d, v->fixed, 8);
        if (!isfinite(d)) {
            *t = null_tok; /* JSON has no NaN or infinities: the rendering writes null */
            return 0;
        }
        /* whole numbers print as plain integers (the rendering's shortcut, -0 excepted) */
        if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d && (d != 0 || !signbit(d))) {
            int64_t i = (int64_t)d;
            int_token(ps, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, i < 0, t);
            return 0;
        }
        return rendered_token(ps, v, t);
    }
    case PQ_RT_NULL:
        *t = null_tok;
        return 0;
    case PQ_RT_DATE:
    case PQ_RT_TIMESTAMP:
        if (date_token(ps, v, t) == 0)
            return 0;
        return rendered_token(ps, v, t);
    default:
        return rendered_token(ps, v, t);
    }
}

static int walk_field(struct pq_shred *ps, int nid, int lvl, int rep);
static int walk_present(struct pq_shred *ps, int nid, int lvl, int rep);

/* A part of the row this walk drops (a field the plan lacks, a value of a field without
 * columns) is still rendered by the JSON path, and a row whose rendering fails there (levels
 * that contradict each other, text that is not UTF-8) is corrupt: render it to find out, and
 * count its length. */
static int check_dropped(struct pq_shred *ps, int nid, int lvl, bool as_field)
{
    buf_reset(&ps->render);
    if (pq_reader_row_node_json(ps->r, nid, lvl, as_field, &ps->render) != 0)
        return GIVE_BACK;
    ps->text += ps->render.len + ps->key_len[nid];
    return 0;
}

static int put(struct pq_shred *ps, int node, const struct jtok *t, int rep)
{
    return shred_put(ps->sh, node, t, rep, &ps->scratch) < 0 ? GIVE_BACK : 0;
}

/* The instances of repeated node rn as the elements of array field `arr` (shredder node an):
 * each renders as `elem` (rn itself, present, or a field of it). */
static int walk_items(struct pq_shred *ps, int rn, int elem, int an, const struct xdm_field *arr,
                      int lvl, int rep)
{
    const struct pq_rnode *n = ps->node[rn];
    int d = pq_reader_row_defined(ps->r, rn, lvl);
    if (d < 0)
        return GIVE_BACK;
    int count = 0;
    for (bool first = d > 0; d > 0; first = false) {
        int got = pq_reader_row_instance(ps->r, rn, lvl, first);
        if (got < 0)
            return GIVE_BACK;
        if (got == 0)
            break;
        int r = count++ == 0 ? rep : arr->item->rep_level;
        ps->text += 8; /* comma, null */
        int rc = elem == rn ? walk_present(ps, rn, n->rep_level, r)
                            : walk_field(ps, elem, n->rep_level, r);
        if (rc)
            return rc;
    }
    if (count == 0)
        shred_put_nulls(ps->sh, an, arr->def_level, rep); /* an empty array */
    return 0;
}

static int walk_map(struct pq_shred *ps, int nid, int lvl, int rep)
{
    const struct pq_rnode *n = ps->node[nid];
    const struct pbind *b = &ps->b[nid];
    const struct xdm_field *f = b->pf;
    int kv = n->children[0];
    const struct pq_rnode *kvn = ps->node[kv];
    const struct pq_rnode *key = ps->node[n->map_key];
    int d = pq_reader_row_defined(ps->r, kv, lvl);
    if (d < 0)
        return GIVE_BACK;
    int count = 0;
    for (bool first = true; d > 0; first = false) {
        int got = pq_reader_row_instance(ps->r, kv, lvl, first);
        if (got < 0)
            return GIVE_BACK;
        if (got == 0)
            break;
        /* A null key (the format forbids them) is left out by the rendering, after checks this
         * walk does not repeat: let the JSON path have such a row. */
        if (pq_reader_row_defined(ps->r, n->map_key, kvn->rep_level) != 1)
            return GIVE_BACK;
        struct pq_value kvv;
        if (pq_reader_row_value(ps->r, key->column, kvn->rep_level, &kvv) != 0 ||
            !utf8_valid(kvv.p, kvv.n))
            return GIVE_BACK;
        int r = count++ == 0 ? rep : f->item->rep_level;
        ps->text += 6 * kvv.n + 8;
        shred_put_key(ps->sh, b->pfn, kvv.n ? (const char *)kvv.p : "", kvv.n, r);
        int rc;
        if (n->map_value < 0)
            rc = put(ps, b->item_fn, &null_tok, r);
        else
            rc = walk_field(ps, n->map_value, kvn->rep_level, r);
        if (rc)
            return rc;
    }
    if (count == 0)
        shred_put_nulls(ps->sh, b->pfn, f->def_level, rep); /* an empty map */
    return 0;
}

/* Node nid, defined at level lvl, as its own value. */
static int walk_present(struct pq_shred *ps, int nid, int lvl, int rep)
{
    const struct pbind *b = &ps->b[nid];
    const struct pq_rnode *n = ps->node[nid];
    switch (b->mode) {
    case PB_SCALAR: {
        struct pq_value v;
        struct jtok t;
        if (pq_reader_row_value(ps->r, n->column, lvl, &v) != 0 || value_token(ps, &v, &t) != 0)
            return GIVE_BACK;
        return put(ps, b->pfn, &t, rep);
    }
    case PB_STRUCT: {
        for (int i = 0; i < n->nchildren; i++) {
            int cid = n->children[i];
            /* not in the plan: dropped (counted below), yet rendered by the JSON path */
            int rc = ps->b[cid].fn < 0 ? check_dropped(ps, cid, lvl, true)
                                       : walk_field(ps, cid, lvl, rep);
            if (rc)
                return rc;
        }
        for (int i = 0; i < b->n_unknown; i++)
            shred_put_unknown(ps->sh);
        for (int i = 0; i < b->n_absent; i++) {
            if (b->absent[i].required)
                return GIVE_BACK;
            shred_put_nulls(ps->sh, b->absent[i].node, b->pf->def_level, rep);
        }
        return 0;
    }
    case PB_LIST:
        if (n->kind == PQ_RK_LIST)
            return walk_items(ps, n->children[0], n->list_elem, b->pfn, b->pf, lvl, rep);
        return GIVE_BACK;
    case PB_MAP:
        return walk_map(ps, nid, lvl, rep);
    case PB_NOCOLS:
        shred_put_unknown(ps->sh);
        return check_dropped(ps, nid, lvl, false);
    default:
        return GIVE_BACK;
    }
}

/* Node nid as a member of a defined parent: null, its value, or (repeated) an array. */
static int walk_field(struct pq_shred *ps, int nid, int lvl, int rep)
{
    const struct pbind *b = &ps->b[nid];
    const struct pq_rnode *n = ps->node[nid];
    ps->text += ps->key_len[nid];
    if (n->rep == PQ_REPEATED) {
        if (b->fmode == PB_NOCOLS) {
            shred_put_unknown(ps->sh);
            return check_dropped(ps, nid, lvl, true);
        }
        if (b->fmode != PB_LIST)
            return GIVE_BACK;
        return walk_items(ps, nid, nid, b->fn, b->f, lvl, rep);
    }
    int d = pq_reader_row_defined(ps->r, nid, lvl);
    if (d < 0)
        return GIVE_BACK;
    if (d == 0)
        return put(ps, b->fn, &null_tok, rep);
    return walk_present(ps, nid, lvl, rep);
}

int pq_shred_row(struct pq_shred *ps)
{
    shred_begin(ps->sh);
    arena_reset(ps);
    ps->text = 2;
    int rc = pq_reader_row_begin(ps->r) != 0 ? GIVE_BACK : walk_present(ps, 0, 0, 0);
    /* A row whose JSON text might pass the JSON path's cap: that path decides. */
    if (rc == 0 && ps->max_text && ps->text > ps->max_text)
        rc = GIVE_BACK;
    if (rc == 0)
        ps->taken++;
    else
        ps->handed_back++;
    return rc == 0 ? 0 : PQ_SHRED_JSON;
}
