/*
 * shred.c - one JSON record in, validated and converted column values with Dremel levels out.
 *
 * The walk follows the record's tokens (jtok) and the plan side by side; no JSON tree is built on
 * the fast path. A good record is walked faster still by parsing its bytes as it goes (the fast
 * walk below), and a record that repeats the last good one's bytes around different scalars
 * faster again (the template walk); any record they give up on takes the token walk, which
 * reports the error. Values are staged in one log, in walk order, that keeps its capacity from
 * record to record: a string without escapes is staged as a pointer into the record itself (no
 * copy), decoded strings go into one scratch buffer, and a subtree that is absent or null is one
 * entry for its whole column range, however many columns it has. After the first records the
 * shredder allocates nothing. Only when the whole record is valid is the log replayed into the
 * pq_writer, which keeps the lake free of half rows; the replay preserves each column's order
 * because the walk visits a column's values in record order.
 *
 * Key lookup: records of one file nearly always list an object's properties in the same order, so
 * each property remembers which one followed it last time and the walk tries that one first (one
 * length check and one memcmp); only a miss pays for the binary search.
 *
 * Levels: every Parquet node of the plan is OPTIONAL, so a field's null is written with its own
 * def_level - 1 (the level of the container that is present). Each object instance remembers
 * which of its properties it saw (a per-field stamp against duplicates, and a list of them); at
 * the closing brace, the gaps between the column ranges of the properties seen get nulls (column
 * ranges are contiguous because the plan lays columns out depth first), so the cost follows the
 * properties present, not the width of the object. The fast walks hand the gaps of objects outside
 * lists to the writer as one null set per record (pq_write_null_set), which records of the same
 * shape share. The repetition level handed down is used for the first value of each column in
 * that subtree; later elements of an array or map use the level of that container.
 */
#include "ingest/shred.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "json/jtok.h"
#include "schema/xdm_convert.h"
#include "util/buf.h"
#include "util/mem.h"

enum stage_kind { SK_NULLS, SK_BOOL, SK_I32, SK_I64, SK_DOUBLE, SK_BYTES, SK_RAW };

struct staged {
    int32_t col;               /* the column; SK_NULLS: the first column of the range */
    int32_t last;              /* SK_NULLS: the last column of the range */
    int32_t def, rep;
    enum stage_kind kind;
    union {
        bool b;
        int64_t i;
        double d;
        struct { size_t off, len; } s;     /* SK_BYTES: in sh->strs, whose data may move */
        struct { const char *p; size_t len; } raw; /* SK_RAW: inside the record */
    } v;
};

/* The plan as the walk needs it: field plus column range and indexes, mutable per shredder. */
struct snode {
    const struct xdm_field *f;
    int first_col, last_col;   /* columns of the subtree; first_col < 0 when it has none */
    int key_col;               /* maps: the key column */
    size_t child_base;         /* objects: node index of children[0]; children follow in order */
    size_t item;               /* arrays and maps: node index of the item / value */
    uint64_t seen;             /* stamp of the object instance that last saw this property */
    size_t name_len;           /* strlen(f->name) */
    size_t first_hint;         /* objects: child index that came first last time */
    size_t next_hint;          /* properties: sibling index that followed this one last time */
    bool name_plain;           /* the name is printable ASCII without '"' or '\\': its JSON
                                  text is the name itself */
    bool str_checks;           /* strings: has length, enum, pattern or format constraints */
    bool required;             /* f->required, here so the absent-property loop stays in nodes */
    bool in_list;              /* under an array or a map: an instance may come more than once */
    bool any_required;         /* objects: some child is required */
    /* Objects: the properties (node indexes, in the order they came) of the last instance that
     * staged its absent ones, and the column ranges (first, last pairs) that made. Records of
     * one file mostly share a shape, so the next instance with the same properties stages the
     * same ranges without working them out again. */
    bool shape_valid;
    size_t *shape;
    int32_t *gaps;
    size_t shape_n, shape_cap, gaps_n, gaps_cap;
};

/* A scalar of a record: its node and where its text lies (offsets in the record). */
struct tpl_slot {
    size_t node;
    size_t start, end;
};

/* Misses in a row after which the template gives way (see tpl_take). */
#define TPL_MISSES 4u

/* A good record made of objects and scalars only: its bytes, its scalars, its null set. */
struct tpl {
    bool valid;
    unsigned misses;           /* records in a row the template did not match (see tpl_take) */
    char *bytes;
    size_t len, bytes_cap;
    struct tpl_slot *slots;
    size_t n_slots, slots_cap;
    int32_t *nulls;
    size_t n_nulls, nulls_cap;
};

struct shred {
    const struct xdm_plan *plan;
    const char *rec;
    struct jlex lx;
    struct snode *nodes;
    size_t n_nodes;
    struct staged *log;        /* the current record's values, in walk order */
    size_t n_log, log_cap;
    size_t n_cols;
    struct buf strs;           /* string bytes of the staged values of the current record */
    struct buf tmp;            /* unescaped text that is converted, not stored */
    struct buf pattern_text;   /* NUL-terminated copy of a string checked against a pattern */
    size_t *seen;              /* node indexes of the properties seen, a frame per open object */
    size_t n_seen, seen_cap;
    /* The fast walk's null ranges of objects outside lists: (first, last, def) triples, all at
     * rep 0 and on columns nothing else of the record touches, so they reach the writer as one
     * null set after the values. rset is the current record's; pset the list last written and
     * pset_key its name for pq_write_null_set (a record of the same shape reuses it). */
    int32_t *rset, *pset;
    size_t rset_n, rset_cap, pset_n, pset_cap;
    uint64_t pset_key;
    /* The record template (see "the template walk"): the fast walk notes each scalar it staged
     * (slots) while the record is of the kind a template can stand for (tpl_ok); tpl is such a
     * record, the one after the last few misses in a row (tpl_take). */
    struct tpl_slot *slots;
    size_t n_slots, slots_cap;
    bool tpl_ok;
    struct tpl tpl;
    uint64_t stamp;            /* 64 bits: never wraps, so stale marks never alias */
    int64_t unknown;           /* dropped properties in the current record */
    struct shred_stats stats;
};

/* ---- building the node table ---- */

static size_t count_nodes(const struct xdm_field *f)
{
    size_t n = 1;
    for (size_t i = 0; i < f->n_children; i++)
        n += count_nodes(&f->children[i]);
    if (f->item)
        n += count_nodes(f->item);
    return n;
}

static void build_nodes(struct shred *sh, size_t ni, const struct xdm_field *f, size_t *next,
                        bool in_list)
{
    struct snode *nd = &sh->nodes[ni];
    nd->f = f;
    nd->in_list = in_list;
    nd->first_col = nd->last_col = nd->key_col = -1;
    nd->name_len = f->name ? strlen(f->name) : 0;
    nd->required = f->required;
    nd->name_plain = f->name != NULL;
    for (size_t i = 0; i < nd->name_len; i++) {
        unsigned char c = (unsigned char)f->name[i];
        nd->name_plain &= c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    }
    nd->str_checks = f->min_length >= 0 || f->max_length >= 0 || f->n_enum || f->pattern ||
                     f->format != XDM_FMT_NONE;
    if (f->type == XDM_OBJECT) {
        nd->child_base = *next;
        *next += f->n_children;
        for (size_t i = 0; i < f->n_children; i++) {
            build_nodes(sh, nd->child_base + i, &f->children[i], next, in_list);
            const struct snode *c = &sh->nodes[nd->child_base + i];
            nd->any_required |= c->required;
            if (c->first_col < 0)
                continue;
            if (nd->first_col < 0)
                nd->first_col = c->first_col;
            nd->last_col = c->last_col;
        }
    } else if (f->type == XDM_ARRAY || f->type == XDM_MAP) {
        nd->item = (*next)++;
        build_nodes(sh, nd->item, f->item, next, true);
        const struct snode *it = &sh->nodes[nd->item];
        if (it->first_col >= 0) {
            /* A map's key column is laid out right before the columns of its value. */
            nd->key_col = f->type == XDM_MAP ? it->first_col - 1 : -1;
            nd->first_col = f->type == XDM_MAP ? nd->key_col : it->first_col;
            nd->last_col = it->last_col;
        }
    } else {
        nd->first_col = nd->last_col = f->column;
    }
}

struct shred *shred_new(const struct xdm_plan *plan)
{
    struct shred *sh = xcalloc(1, sizeof(*sh));
    sh->plan = plan;
    sh->n_nodes = count_nodes(&plan->root);
    sh->nodes = xcalloc(sh->n_nodes, sizeof(struct snode));
    size_t next = 1;
    build_nodes(sh, 0, &plan->root, &next, false);
    sh->n_cols = pq_schema_ncolumns(plan->pq);
    return sh;
}

void shred_free(struct shred *sh)
{
    if (!sh)
        return;
    free(sh->log);
    free(sh->seen);
    free(sh->rset);
    free(sh->pset);
    free(sh->slots);
    free(sh->tpl.bytes);
    free(sh->tpl.slots);
    free(sh->tpl.nulls);
    for (size_t i = 0; i < sh->n_nodes; i++) {
        free(sh->nodes[i].shape);
        free(sh->nodes[i].gaps);
    }
    free(sh->nodes);
    buf_free(&sh->strs);
    buf_free(&sh->tmp);
    buf_free(&sh->pattern_text);
    free(sh);
}

const struct shred_stats *shred_get_stats(const struct shred *sh)
{
    return &sh->stats;
}

int shred_debug_levels(struct shred *sh, int column, int *defs, int *reps, size_t max)
{
    if (!sh || column < 0 || (size_t)column >= sh->n_cols)
        return ING_EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < sh->n_log; i++) {
        const struct staged *e = &sh->log[i];
        bool hit = e->kind == SK_NULLS ? e->col <= column && column <= e->last : e->col == column;
        if (!hit)
            continue;
        if (n < max) {
            defs[n] = e->def;
            reps[n] = e->rep;
        }
        n++;
    }
    /* The null set's columns have no other entry in the record, so its place is immaterial. */
    for (size_t i = 0; i < sh->rset_n; i++) {
        if (sh->rset[3 * i] <= column && column <= sh->rset[3 * i + 1]) {
            if (n < max) {
                defs[n] = sh->rset[3 * i + 2];
                reps[n] = 0;
            }
            n++;
        }
    }
    return (int)n;
}

/* The first capacity of the shredder's arrays (buf_grow_array): they keep it from record to
 * record, so a few doublings early on are all the growing they do. */
#define ARRAY_FIRST_CAP 32

/* ---- staging ---- */

static struct staged *stage(struct shred *sh, int col, int def, int rep, enum stage_kind kind)
{
    BUF_ARRAY_RESERVE(sh->log, sh->log_cap, sh->n_log + 1, ARRAY_FIRST_CAP);
    struct staged *e = &sh->log[sh->n_log++];
    e->col = col;
    e->def = def;
    e->rep = rep;
    e->kind = kind;
    return e;
}

/* Nulls for columns first..last (first >= 0): one entry for the whole range. Absent siblings are
 * neighbours in the column order: the previous range grows when this one continues it, so a
 * record missing most of a wide schema stages a handful of entries. */
static inline void stage_null_range(struct shred *sh, int first, int last, int def, int rep)
{
    if (sh->n_log) {
        struct staged *e = &sh->log[sh->n_log - 1];
        if (e->kind == SK_NULLS && e->def == def && e->rep == rep && e->last + 1 == first) {
            e->last = last;
            return;
        }
    }
    stage(sh, first, def, rep, SK_NULLS)->last = last;
}

/* Nulls for every column of a subtree that is absent or null below a present container. */
static void stage_nulls(struct shred *sh, const struct snode *nd, int def, int rep)
{
    if (nd->first_col >= 0)
        stage_null_range(sh, nd->first_col, nd->last_col, def, rep);
}

static void emit(struct shred *sh, struct pq_writer *w)
{
    for (size_t i = 0; i < sh->n_log; i++) {
        const struct staged *e = &sh->log[i];
        switch (e->kind) {
        case SK_NULLS: pq_write_nulls(w, e->col, e->last, e->def, e->rep); break;
        case SK_BOOL: pq_write_bool(w, e->col, e->v.b, e->rep); break;
        case SK_I32: pq_write_i32(w, e->col, (int32_t)e->v.i, e->rep); break;
        case SK_I64: pq_write_i64(w, e->col, e->v.i, e->rep); break;
        case SK_DOUBLE: pq_write_double(w, e->col, e->v.d, e->rep); break;
        case SK_BYTES:
            pq_write_bytes(w, e->col, sh->strs.data + e->v.s.off, e->v.s.len, e->rep);
            break;
        case SK_RAW: pq_write_bytes(w, e->col, e->v.raw.p, e->v.raw.len, e->rep); break;
        }
    }
}

/* ---- errors ---- */

static int64_t offset_of(const struct shred *sh, const struct jtok *t)
{
    return (int64_t)(t->p - sh->rec);
}

static int field_error(struct shred *sh, struct ing_err *err, int code, const struct xdm_field *f,
                       const struct jtok *t)
{
    if (err) {
        err->code = code;
        ing_err_field(err, f->path);
        if (t)
            err->offset = offset_of(sh, t);
    }
    return code;
}

static const char *token_kind(enum jtok_type t)
{
    switch (t) {
    case JT_OBJ_BEGIN: return "an object";
    case JT_ARR_BEGIN: return "an array";
    case JT_STRING: return "a string";
    case JT_NUMBER: return "a number";
    case JT_TRUE:
    case JT_FALSE: return "a boolean";
    case JT_NULL: return "null";
    default: return "a token";
    }
}

static int type_error(struct shred *sh, struct ing_err *err, const struct xdm_field *f,
                      const struct jtok *t)
{
    if (t->type == JT_STRING || t->type == JT_NUMBER) {
        int shown = t->n > 40 ? 40 : (int)t->n;
        ing_err_set(err, ING_ETYPE, "cannot convert %s '%.*s%s' to %s", token_kind(t->type),
                    shown, t->p, t->n > 40 ? "..." : "", xdm_type_name(f->type));
    } else {
        ing_err_set(err, ING_ETYPE, "cannot convert %s to %s", token_kind(t->type),
                    xdm_type_name(f->type));
    }
    return field_error(sh, err, ING_ETYPE, f, t);
}

/* ---- scalar checks ---- */

static size_t utf8_chars(const uint8_t *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += (s[i] & 0xC0) != 0x80;
    return chars;
}

static const char *format_name(enum xdm_format f)
{
    switch (f) {
    case XDM_FMT_EMAIL: return "email address";
    case XDM_FMT_URI: return "URI";
    case XDM_FMT_UUID: return "UUID";
    case XDM_FMT_IPV4: return "IPv4 address";
    case XDM_FMT_IPV6: return "IPv6 address";
    case XDM_FMT_HOSTNAME: return "host name";
    default: return "value";
    }
}

/* Constraints of a string field over its bytes s[0, n) (not NUL-terminated). */
static int check_string(struct shred *sh, const struct xdm_field *f, const uint8_t *s, size_t n,
                        const struct jtok *t, struct ing_err *err)
{
    int shown = n > 40 ? 40 : (int)n;
    const char *more = n > 40 ? "..." : "";
    if (f->min_length >= 0 || f->max_length >= 0) {
        size_t chars = utf8_chars(s, n);
        if (f->min_length >= 0 && chars < (uint64_t)f->min_length) {
            ing_err_set(err, ING_ECONSTRAINT, "'%.*s%s' is shorter than minLength %lld", shown,
                        (const char *)s, more, (long long)f->min_length);
            return field_error(sh, err, ING_ECONSTRAINT, f, t);
        }
        if (f->max_length >= 0 && chars > (uint64_t)f->max_length) {
            ing_err_set(err, ING_ECONSTRAINT, "'%.*s%s' is longer than maxLength %lld", shown,
                        (const char *)s, more, (long long)f->max_length);
            return field_error(sh, err, ING_ECONSTRAINT, f, t);
        }
    }
    if (f->n_enum) {
        bool found = false;
        for (size_t i = 0; i < f->n_enum && !found; i++)
            found = strlen(f->enum_values[i]) == n && memcmp(f->enum_values[i], s, n) == 0;
        if (!found) {
            ing_err_set(err, ING_ECONSTRAINT, "'%.*s%s' is not one of the allowed values", shown,
                        (const char *)s, more);
            return field_error(sh, err, ING_ECONSTRAINT, f, t);
        }
    }
    if (f->pattern) {
        /* regexec wants a C string (sanitizers read it up to its NUL), and `s` points into the
         * record: match a NUL-terminated copy. REG_STARTEND bounds the match by length, so an
         * embedded NUL (\u0000) cannot cut it short. */
        buf_reset(&sh->pattern_text);
        if (buf_append(&sh->pattern_text, s, n) != 0) {
            ing_err_set(err, ING_ENOMEM, "no memory to check the field's pattern");
            return field_error(sh, err, ING_ENOMEM, f, t);
        }
        const char *text = buf_cstr(&sh->pattern_text);
        regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)n}};
        if (regexec(f->pattern, text, 1, m, REG_STARTEND) != 0) {
            ing_err_set(err, ING_ECONSTRAINT, "'%.*s%s' does not match the field's pattern",
                        shown, (const char *)s, more);
            return field_error(sh, err, ING_ECONSTRAINT, f, t);
        }
    }
    if (f->format != XDM_FMT_NONE && !xdm_format_ok(f->format, (const char *)s, n)) {
        ing_err_set(err, ING_ECONSTRAINT, "'%.*s%s' is not a valid %s", shown, (const char *)s,
                    more, format_name(f->format));
        return field_error(sh, err, ING_ECONSTRAINT, f, t);
    }
    return 0;
}

static int check_range(struct shred *sh, const struct xdm_field *f, double v,
                       const struct jtok *t, struct ing_err *err)
{
    if (f->has_minimum && v < f->minimum) {
        ing_err_set(err, ING_ECONSTRAINT, "%.17g is below the minimum %.17g", v, f->minimum);
        return field_error(sh, err, ING_ECONSTRAINT, f, t);
    }
    if (f->has_maximum && v > f->maximum) {
        ing_err_set(err, ING_ECONSTRAINT, "%.17g is above the maximum %.17g", v, f->maximum);
        return field_error(sh, err, ING_ECONSTRAINT, f, t);
    }
    return 0;
}

static bool is_int_type(enum xdm_type t)
{
    return t == XDM_BYTE || t == XDM_SHORT || t == XDM_INT || t == XDM_LONG;
}

/* Number token -> integer of the field's type: exact integers directly, fractions only when
 * they are whole ("42.0"). */
static int number_to_int(const struct xdm_field *f, const struct jtok *t, int64_t *out,
                         struct ing_err *err)
{
    int64_t v;
    if (t->integer && jtok_i64(t->p, t->n, &v) == 0) {
        int64_t lo, hi;
        xdm_int_range(f->type, &lo, &hi);
        if (v < lo || v > hi)
            return ing_err_set(err, ING_ETYPE, "%lld is out of range for %s (%lld..%lld)",
                               (long long)v, xdm_type_name(f->type), (long long)lo,
                               (long long)hi);
        *out = v;
        return 0;
    }
    double d;
    if (jtok_f64(t->p, t->n, &d) != 0)
        return ing_err_set(err, ING_ETYPE, "'%.*s' is not a number", t->n > 40 ? 40 : (int)t->n,
                           t->p);
    return xdm_double_to_int(f->type, d, out, err);
}

/* One scalar value into a leaf column (f->column >= 0). */
static int walk_scalar(struct shred *sh, const struct snode *nd, const struct jtok *t, int rep,
                       json_t **jout, struct ing_err *err)
{
    const struct xdm_field *f = nd->f;
    int col = f->column, def = f->def_level, rc = 0;
    const char *text = NULL;
    size_t n = 0;
    bool bv = false;
    int64_t iv = 0;
    double dv = 0;

    if (t->type == JT_OBJ_BEGIN || t->type == JT_ARR_BEGIN)
        return type_error(sh, err, f, t);
    if (t->type == JT_TRUE || t->type == JT_FALSE) {
        if (f->type != XDM_BOOLEAN) /* booleans convert to nothing else */
            return type_error(sh, err, f, t);
        bv = t->type == JT_TRUE;
        goto store;
    }
    if (f->type == XDM_STRING) {
        /* string -> string, or number -> its JSON text ("5625458") */
        if (!(t->type == JT_STRING && t->escaped)) {
            /* The fast path: the value is the span itself, staged without a copy. */
            if (nd->str_checks &&
                (rc = check_string(sh, f, (const uint8_t *)t->p, t->n, t, err)) < 0)
                return rc;
            struct staged *e = stage(sh, col, def, rep, SK_RAW);
            e->v.raw.p = t->p;
            e->v.raw.len = t->n;
            if (jout)
                *jout = json_stringn(t->p, t->n);
            return 0;
        }
        size_t off = sh->strs.len;
        rc = jtok_unescape(t->p, t->n, &sh->strs, err);
        if (rc < 0) {
            if (err && !err->msg[0])
                ing_err_set(err, rc, "string value too large");
            return field_error(sh, err, rc, f, t);
        }
        size_t len = sh->strs.len - off;
        if (nd->str_checks && (rc = check_string(sh, f, sh->strs.data + off, len, t, err)) < 0)
            return rc;
        struct staged *e = stage(sh, col, def, rep, SK_BYTES);
        e->v.s.off = off;
        e->v.s.len = len;
        if (jout)
            *jout = json_stringn((const char *)sh->strs.data + off, len);
        return 0;
    }
    if (t->type == JT_STRING) {
        text = t->p;
        n = t->n;
        if (t->escaped) {
            buf_reset(&sh->tmp);
            if ((rc = jtok_unescape(t->p, t->n, &sh->tmp, err)) < 0)
                return field_error(sh, err, rc, f, t);
            text = (const char *)sh->tmp.data;
            n = sh->tmp.len;
        }
        switch (f->type) {
        case XDM_BOOLEAN: rc = xdm_text_to_bool(text, n, &bv, err); break;
        case XDM_BYTE:
        case XDM_SHORT:
        case XDM_INT:
        case XDM_LONG: rc = xdm_text_to_int(f->type, text, n, &iv, err); break;
        case XDM_DOUBLE: rc = xdm_text_to_double(text, n, &dv, err); break;
        case XDM_DATE: {
            int32_t days = 0;
            rc = xdm_parse_date(text, n, &days, err);
            iv = days;
            break;
        }
        case XDM_DATETIME: rc = xdm_parse_datetime(text, n, &iv, err); break;
        default: return type_error(sh, err, f, t);
        }
    } else if (t->type == JT_NUMBER) {
        if (is_int_type(f->type)) {
            rc = number_to_int(f, t, &iv, err);
        } else if (f->type == XDM_DOUBLE) {
            if (jtok_f64(t->p, t->n, &dv) != 0 || !isfinite(dv))
                rc = ing_err_set(err, ING_ETYPE, "'%.*s' is not a finite double",
                                 t->n > 40 ? 40 : (int)t->n, t->p);
        } else if ((f->type == XDM_DATE || f->type == XDM_DATETIME) && t->integer) {
            /* a long is epoch milliseconds; the text parsers take that form */
            if (f->type == XDM_DATE) {
                int32_t days = 0;
                rc = xdm_parse_date(t->p, t->n, &days, err);
                iv = days;
            } else {
                rc = xdm_parse_datetime(t->p, t->n, &iv, err);
            }
        } else {
            return type_error(sh, err, f, t); /* booleans, doubles into dates */
        }
    } else {
        return type_error(sh, err, f, t);
    }
    if (rc < 0)
        return field_error(sh, err, rc, f, t);
    if (is_int_type(f->type) && (rc = check_range(sh, f, (double)iv, t, err)) < 0)
        return rc;
    if (f->type == XDM_DOUBLE && (rc = check_range(sh, f, dv, t, err)) < 0)
        return rc;

store:
    switch (f->type) {
    case XDM_BOOLEAN:
        stage(sh, col, def, rep, SK_BOOL)->v.b = bv;
        if (jout)
            *jout = json_boolean(bv);
        break;
    case XDM_BYTE:
    case XDM_SHORT:
    case XDM_INT:
    case XDM_DATE:
        stage(sh, col, def, rep, SK_I32)->v.i = iv;
        if (jout && f->type == XDM_DATE) {
            char day[16];
            xdm_format_date((int32_t)iv, day);
            *jout = json_string(day);
        } else if (jout) {
            *jout = json_integer(iv);
        }
        break;
    case XDM_LONG:
    case XDM_DATETIME:
        stage(sh, col, def, rep, SK_I64)->v.i = iv;
        if (jout && f->type == XDM_DATETIME) {
            char ts[32];
            xdm_format_datetime(iv, ts);
            *jout = json_string(ts);
        } else if (jout) {
            *jout = json_integer(iv);
        }
        break;
    case XDM_DOUBLE:
        stage(sh, col, def, rep, SK_DOUBLE)->v.d = dv;
        if (jout)
            *jout = json_real(dv);
        break;
    default:
        return ing_err_set(err, ING_EINTERNAL, "unexpected scalar type");
    }
    return 0;
}

/* ---- containers ---- */

static int walk_value(struct shred *sh, size_t ni, const struct jtok *t, int rep, json_t **jout,
                      struct ing_err *err);

static int next_token(struct shred *sh, struct jtok *t, struct ing_err *err)
{
    return jlex_next(&sh->lx, t, err);
}

/* A key span as bytes: raw when unescaped, else decoded into sh->tmp. */
static int key_bytes(struct shred *sh, const struct jtok *k, const char **p, size_t *n,
                     struct ing_err *err)
{
    if (!k->escaped) {
        *p = k->p;
        *n = k->n;
        return 0;
    }
    buf_reset(&sh->tmp);
    int rc = jtok_unescape(k->p, k->n, &sh->tmp, err);
    if (rc < 0) {
        if (err)
            err->offset = offset_of(sh, k);
        return rc;
    }
    *p = (const char *)sh->tmp.data;
    *n = sh->tmp.len;
    return 0;
}

/* The child of object node `nd` named name[0, n): the predicted one when it matches, else a
 * binary search. Returns its index among the children, or SIZE_MAX when there is none. */
static size_t find_child(struct shred *sh, struct snode *nd, size_t guess, const char *name,
                         size_t n)
{
    if (guess < nd->f->n_children) {
        const struct snode *c = &sh->nodes[nd->child_base + guess];
        if (c->name_len == n && buf_same_short(c->f->name, name, n))
            return guess;
    }
    const struct xdm_field *cf = xdm_field_child(nd->f, name, n);
    return cf ? (size_t)(cf - nd->f->children) : SIZE_MAX;
}

/* The end of a walk: on success the value built (NULL when none was asked for) goes to *jout;
 * on failure it is dropped and *jout is NULL. */
static int walk_done(int rc, json_t *value, json_t **jout)
{
    if (rc < 0) {
        json_decref(value);
        value = NULL;
    }
    if (jout)
        *jout = value;
    return rc;
}

/* Remember that property node `ci` appeared in the object being walked. */
static inline void push_seen(struct shred *sh, size_t ci)
{
    BUF_ARRAY_RESERVE(sh->seen, sh->seen_cap, sh->n_seen + 1, ARRAY_FIRST_CAP);
    sh->seen[sh->n_seen++] = ci;
}

/*
 * The column ranges left without values by the properties of object node `nd` that did not
 * appear: the gaps between the column ranges of the properties that did (seen[0, n), node
 * indexes), as nd->gaps[0, 2 * nd->gaps_n). A record fills a few properties of a wide object,
 * so this visits the seen ones, not every property; sibling column ranges are contiguous and in
 * property order. The gaps depend only on which properties came, so they are kept per object
 * node with the list that made them, and an instance with the same list (the same properties in
 * the same order) reuses them.
 */
static void absent_gaps(struct shred *sh, struct snode *nd, size_t *seen, size_t n)
{
    bool same = nd->shape_valid && nd->shape_n == n;
    for (size_t i = 0; same && i < n; i++)
        same = nd->shape[i] == seen[i];
    if (same)
        return;
    /* Kept per object node, so sized by its properties rather than from ARRAY_FIRST_CAP; n
     * properties leave at most n + 1 gaps, each a (first, last) pair. */
    nd->shape = buf_copy_array(nd->shape, &nd->shape_cap, seen, n, sizeof(*seen), 1);
    nd->gaps = buf_grow_array(nd->gaps, &nd->gaps_cap, n + 1, 2 * sizeof(int32_t), 1);
    nd->shape_n = n;
    nd->gaps_n = 0;
    nd->shape_valid = true;
    for (size_t i = 1; i < n; i++) { /* insertion sort: a handful, usually in order already */
        size_t x = seen[i];
        int key = sh->nodes[x].first_col;
        size_t j = i;
        while (j > 0 && sh->nodes[seen[j - 1]].first_col > key) {
            seen[j] = seen[j - 1];
            j--;
        }
        seen[j] = x;
    }
    int from = nd->first_col; /* first column of the current gap */
    for (size_t i = 0; i <= n; i++) {
        int end = i < n ? sh->nodes[seen[i]].first_col - 1 : nd->last_col;
        if (end >= from) {
            nd->gaps[2 * nd->gaps_n] = from;
            nd->gaps[2 * nd->gaps_n + 1] = end;
            nd->gaps_n++;
        }
        if (i < n)
            from = sh->nodes[seen[i]].last_col + 1;
    }
}

/* Nulls for the properties of object node `nd` that did not appear, staged in the log (the
 * ranges a walk over the absent properties would stage: stage_nulls merges neighbours). */
static void stage_absent(struct shred *sh, struct snode *nd, size_t *seen, size_t n, int def,
                         int rep)
{
    absent_gaps(sh, nd, seen, n);
    for (size_t i = 0; i < nd->gaps_n; i++)
        stage_null_range(sh, nd->gaps[2 * i], nd->gaps[2 * i + 1], def, rep);
}

/* The same nulls for an object outside lists, into the record's null set (rep 0): neighbours
 * with the same level merge, as in the log. */
static void set_absent(struct shred *sh, struct snode *nd, size_t *seen, size_t n, int def)
{
    absent_gaps(sh, nd, seen, n);
    /* elements are (first, last, def) triples */
    sh->rset = buf_grow_array(sh->rset, &sh->rset_cap, sh->rset_n + nd->gaps_n,
                              3 * sizeof(int32_t), ARRAY_FIRST_CAP);
    for (size_t i = 0; i < nd->gaps_n; i++) {
        int32_t first = nd->gaps[2 * i], last = nd->gaps[2 * i + 1];
        int32_t *prev = sh->rset_n ? &sh->rset[3 * (sh->rset_n - 1)] : NULL;
        if (prev && prev[2] == def && prev[1] + 1 == first) {
            prev[1] = last;
            continue;
        }
        int32_t *e = &sh->rset[3 * sh->rset_n++];
        e[0] = first;
        e[1] = last;
        e[2] = def;
    }
}

/* Names of null sets for pq_write_null_set: process-wide, so no two shredders feeding one
 * writer can give one name to different lists. */
static _Atomic uint64_t null_set_keys;

/* The record's null set to the writer: the list written last when it is the same (records of a
 * file mostly share a shape), else a new one under a new name. */
static void write_null_set(struct shred *sh, struct pq_writer *w)
{
    if (!sh->rset_n)
        return;
    if (sh->rset_n != sh->pset_n || !sh->pset_key ||
        memcmp(sh->rset, sh->pset, sh->rset_n * 3 * sizeof(int32_t)) != 0) {
        sh->pset = buf_copy_array(sh->pset, &sh->pset_cap, sh->rset, sh->rset_n,
                                  3 * sizeof(int32_t), ARRAY_FIRST_CAP);
        sh->pset_n = sh->rset_n;
        sh->pset_key = atomic_fetch_add(&null_set_keys, 1) + 1;
    }
    pq_write_null_set(w, sh->pset, sh->pset_n, sh->pset_key);
}

/* Every required property of object node `nd` came in the instance stamped `stamp`: 0, else
 * ING_EREQUIRED naming the first one missing (at the offset of token t, the closing brace; NULL
 * when there is none, as in the fast walk, which reports nothing). */
static inline int check_required(struct shred *sh, const struct snode *nd, uint64_t stamp,
                                 const struct jtok *t, struct ing_err *err)
{
    for (size_t i = 0; nd->any_required && i < nd->f->n_children; i++) {
        const struct snode *c = &sh->nodes[nd->child_base + i];
        if (c->required && c->seen != stamp) {
            ing_err_set(err, ING_EREQUIRED, "required field %s is missing", c->f->path);
            return field_error(sh, err, ING_EREQUIRED, c->f, t);
        }
    }
    return 0;
}

/* A new record: nothing staged, nothing seen. */
static void record_reset(struct shred *sh)
{
    sh->n_log = 0;
    sh->n_seen = 0;
    buf_reset(&sh->strs);
    sh->unknown = 0;
    sh->rset_n = 0;
    sh->n_slots = 0;
    sh->tpl_ok = true;
}

static int walk_object(struct shred *sh, size_t ni, int rep, json_t **jout, struct ing_err *err)
{
    struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    uint64_t stamp = ++sh->stamp;
    json_t *obj = jout ? json_object() : NULL;
    struct jtok t, v;
    int rc;
    size_t guess = nd->first_hint;
    struct snode *prev = NULL; /* the property matched before this one */
    size_t seen_base = sh->n_seen; /* this object's frame of sh->seen */

    for (;;) {
        if ((rc = next_token(sh, &t, err)) < 0)
            goto out;
        if (t.type == JT_OBJ_END)
            break;
        const char *name;
        size_t n;
        if ((rc = key_bytes(sh, &t, &name, &n, err)) < 0)
            goto out;
        size_t idx = find_child(sh, nd, guess, name, n);
        if ((rc = next_token(sh, &v, err)) < 0)
            goto out;
        if (idx == SIZE_MAX) {
            sh->unknown++;
            if ((rc = jlex_skip(&sh->lx, &v, err)) < 0)
                goto out;
            continue;
        }
        const struct xdm_field *cf = &f->children[idx];
        size_t ci = nd->child_base + idx;
        /* Learn the order: next time, try after `prev` what came after it now. */
        if (prev)
            prev->next_hint = idx;
        else
            nd->first_hint = idx;
        prev = &sh->nodes[ci];
        guess = prev->next_hint;
        if (sh->nodes[ci].seen == stamp) {
            ing_err_set(err, ING_ESYNTAX, "duplicate key \"%s\"", cf->name);
            rc = field_error(sh, err, ING_ESYNTAX, cf, &t);
            goto out;
        }
        sh->nodes[ci].seen = stamp;
        if (prev->first_col >= 0)
            push_seen(sh, ci);
        json_t *child = NULL;
        if ((rc = walk_value(sh, ci, &v, rep, obj ? &child : NULL, err)) < 0)
            goto out;
        if (child)
            json_object_set_new(obj, cf->name, child);
    }
    /* Properties that did not appear: required ones fail, the others become nulls (none for
     * properties without columns: objects without properties). */
    if ((rc = check_required(sh, nd, stamp, &t, err)) < 0)
        goto out;
    if (nd->first_col >= 0)
        stage_absent(sh, nd, sh->seen + seen_base, sh->n_seen - seen_base, f->def_level, rep);
    rc = 0;
out:
    sh->n_seen = seen_base;
    return walk_done(rc, obj, jout);
}

static int walk_array(struct shred *sh, size_t ni, int rep, json_t **jout, struct ing_err *err)
{
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    json_t *arr = jout ? json_array() : NULL;
    size_t count = 0;
    struct jtok t;
    int rc;

    for (;; count++) {
        if ((rc = next_token(sh, &t, err)) < 0)
            goto out;
        if (t.type == JT_ARR_END)
            break;
        /* The first element continues the enclosing repetition; the others repeat this list. */
        int r = count == 0 ? rep : f->item->rep_level;
        json_t *el = NULL;
        if ((rc = walk_value(sh, nd->item, &t, r, arr ? &el : NULL, err)) < 0)
            goto out;
        if (arr)
            json_array_append_new(arr, el ? el : json_null());
    }
    if (count == 0)
        stage_nulls(sh, nd, f->def_level, rep); /* empty list: defined up to the list itself */
    rc = 0;
out:
    return walk_done(rc, arr, jout);
}

static int walk_map(struct shred *sh, size_t ni, int rep, json_t **jout, struct ing_err *err)
{
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    json_t *obj = jout ? json_object() : NULL;
    size_t count = 0;
    struct jtok t, v;
    int rc;

    for (;; count++) {
        if ((rc = next_token(sh, &t, err)) < 0)
            goto out;
        if (t.type == JT_OBJ_END)
            break;
        int r = count == 0 ? rep : f->item->rep_level;
        size_t off = sh->strs.len;
        rc = t.escaped ? jtok_unescape(t.p, t.n, &sh->strs, err)
                       : buf_append(&sh->strs, t.p, t.n);
        if (rc < 0) {
            rc = field_error(sh, err, rc, f, &t);
            goto out;
        }
        size_t key_len = sh->strs.len - off;
        struct staged *e = stage(sh, nd->key_col, f->item->def_level - 1, r, SK_BYTES);
        e->v.s.off = off;
        e->v.s.len = key_len;
        if ((rc = next_token(sh, &v, err)) < 0)
            goto out;
        json_t *val = NULL;
        if ((rc = walk_value(sh, nd->item, &v, r, obj ? &val : NULL, err)) < 0)
            goto out;
        if (obj)
            json_object_setn_new(obj, (const char *)sh->strs.data + off, key_len,
                                 val ? val : json_null());
    }
    if (count == 0)
        stage_nulls(sh, nd, f->def_level, rep);
    rc = 0;
out:
    return walk_done(rc, obj, jout);
}

static int walk_value(struct shred *sh, size_t ni, const struct jtok *t, int rep, json_t **jout,
                      struct ing_err *err)
{
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    if (t->type == JT_NULL) {
        if (f->required) {
            ing_err_set(err, ING_EREQUIRED, "required field %s is null", f->path);
            return field_error(sh, err, ING_EREQUIRED, f, t);
        }
        stage_nulls(sh, nd, f->def_level - 1, rep);
        return 0;
    }
    if (nd->first_col < 0) {
        /* no columns (an object without properties): dropped like an unknown field */
        sh->unknown++;
        return jlex_skip(&sh->lx, t, err);
    }
    switch (f->type) {
    case XDM_OBJECT:
        if (t->type != JT_OBJ_BEGIN)
            return type_error(sh, err, f, t);
        return walk_object(sh, ni, rep, jout, err);
    case XDM_MAP:
        if (t->type != JT_OBJ_BEGIN)
            return type_error(sh, err, f, t);
        return walk_map(sh, ni, rep, jout, err);
    case XDM_ARRAY:
        if (t->type != JT_ARR_BEGIN)
            return type_error(sh, err, f, t);
        return walk_array(sh, ni, rep, jout, err);
    default:
        return walk_scalar(sh, nd, t, rep, jout, err);
    }
}

/* ---- the fast walk: parsing as it goes ---- */

/*
 * The walk above pulls tokens from jlex, which pays per token for a call, a grammar-state
 * dispatch and a token struct. The fast walk reads the bytes itself: the grammar state is where
 * it is in the code (a key, ':', a value, then ',' or the closer), and scalars become the same
 * tokens walk_scalar takes, so conversions, checks and staging are the token walk's own. It
 * only ever says "this record is good" (the same staging the token walk would make) or gives up
 * (FAST_GIVE_UP) on anything else: bad grammar, a conversion or constraint failure, a missing
 * required field, a duplicate key, nesting near the limit. The caller then clears what it staged
 * and runs the token walk, which finds the same problem and reports it in its words and offsets.
 */
#define FAST_GIVE_UP 1

struct fast {
    struct shred *sh;
    const char *end;
};

static int fast_value(struct fast *fw, size_t ni, const char **pp, int rep, int depth);

/* A value the plan has no columns for (an unknown property, an object without properties):
 * checked and skipped by a lexer that knows how deep it starts, as the token walk skips it. */
static int fast_skip(struct fast *fw, const char **pp, int depth)
{
    fw->sh->tpl_ok = false;
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, *pp, (size_t)(fw->end - *pp));
    lx.depth = depth; /* the limit counts the containers already open */
    if (jlex_next(&lx, &t, NULL) < 0 || jlex_skip(&lx, &t, NULL) < 0)
        return FAST_GIVE_UP;
    *pp = lx.p;
    return 0;
}

/* A scalar token at p (a string, number, true or false); 0 with *t filled and *pp past it. */
static int fast_scalar_token(struct fast *fw, const char **pp, struct jtok *t)
{
    const char *p = *pp, *end = fw->end, *q;
    t->escaped = t->integer = false;
    switch (*p) {
    case '"':
        if (!(q = jtok_scan_string(p, end, &t->escaped)))
            return FAST_GIVE_UP;
        t->type = JT_STRING;
        t->p = p + 1;
        t->n = (size_t)(q - p - 2);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (!(q = jtok_scan_number(p, end, &t->integer)))
            return FAST_GIVE_UP;
        t->type = JT_NUMBER;
        t->p = p;
        t->n = (size_t)(q - p);
        break;
    case 't':
        if (!jtok_scan_literal(p, end, "true", 4))
            return FAST_GIVE_UP;
        t->type = JT_TRUE;
        t->p = p;
        t->n = 4;
        q = p + 4;
        break;
    case 'f':
        if (!jtok_scan_literal(p, end, "false", 5))
            return FAST_GIVE_UP;
        t->type = JT_FALSE;
        t->p = p;
        t->n = 5;
        q = p + 5;
        break;
    default:
        return FAST_GIVE_UP; /* a container where a scalar belongs, or not a value at all */
    }
    *pp = q;
    return 0;
}

/* After a member or element: ',' (then more must follow) or the closer. 1 = more, 0 = closed. */
static inline int fast_next(const char **pp, const char *end, char closer)
{
    const char *p = jtok_skip_ws(*pp, end);
    if (p < end && *p == ',') {
        *pp = jtok_skip_ws(p + 1, end);
        return 1;
    }
    if (p < end && *p == closer) {
        *pp = p + 1;
        return 0;
    }
    return -FAST_GIVE_UP;
}

/* The object node ni whose '{' was just read (*pp after it), as walk_object walks it. */
static int fast_object(struct fast *fw, size_t ni, const char **pp, int rep, int depth)
{
    struct shred *sh = fw->sh;
    struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    const char *p = jtok_skip_ws(*pp, fw->end), *end = fw->end;
    uint64_t stamp = ++sh->stamp;
    size_t guess = nd->first_hint;
    struct snode *prev = NULL;
    size_t seen_base = sh->n_seen;
    int rc = FAST_GIVE_UP, more = 1;

    if (p < end && *p == '}') {
        p++;
        more = 0;
    }
    while (more) {
        if (p >= end || *p != '"')
            goto out;
        /* The predicted property, when its name is plain text, is matched on the bytes of the
         * key: they and the closing quote are the whole string, escapes and UTF-8 included. */
        size_t idx = SIZE_MAX;
        const char *q = NULL;
        if (guess < f->n_children) {
            const struct snode *c = &sh->nodes[nd->child_base + guess];
            size_t n = c->name_len;
            if (c->name_plain && (size_t)(end - p) > n + 1 && p[n + 1] == '"' &&
                buf_same_short(p + 1, c->f->name, n)) {
                idx = guess;
                q = p + n + 2;
            }
        }
        if (!q) {
            bool escaped;
            if (!(q = jtok_scan_string(p, end, &escaped)))
                goto out;
            const char *name = p + 1;
            size_t n = (size_t)(q - p - 2);
            if (escaped) {
                buf_reset(&sh->tmp);
                if (jtok_unescape(name, n, &sh->tmp, NULL) < 0)
                    goto out;
                name = (const char *)sh->tmp.data;
                n = sh->tmp.len;
            }
            idx = find_child(sh, nd, SIZE_MAX, name, n);
        }
        p = jtok_skip_ws(q, end);
        if (p >= end || *p != ':')
            goto out;
        p = jtok_skip_ws(p + 1, end);
        if (p >= end)
            goto out;
        if (idx == SIZE_MAX) {
            sh->unknown++;
            if (fast_skip(fw, &p, depth) != 0)
                goto out;
        } else {
            size_t ci = nd->child_base + idx;
            if (prev)
                prev->next_hint = idx;
            else
                nd->first_hint = idx;
            prev = &sh->nodes[ci];
            guess = prev->next_hint;
            if (prev->seen == stamp)
                goto out; /* a duplicate key */
            prev->seen = stamp;
            if (prev->first_col >= 0)
                push_seen(sh, ci);
            if (fast_value(fw, ci, &p, rep, depth) != 0)
                goto out;
        }
        if ((more = fast_next(&p, end, '}')) < 0)
            goto out;
    }
    if (check_required(sh, nd, stamp, NULL, NULL) < 0)
        goto out;
    if (nd->first_col >= 0 && nd->in_list)
        stage_absent(sh, nd, sh->seen + seen_base, sh->n_seen - seen_base, f->def_level, rep);
    else if (nd->first_col >= 0)
        set_absent(sh, nd, sh->seen + seen_base, sh->n_seen - seen_base, f->def_level);
    *pp = p;
    rc = 0;
out:
    sh->n_seen = seen_base;
    return rc;
}

static int fast_array(struct fast *fw, size_t ni, const char **pp, int rep, int depth)
{
    struct shred *sh = fw->sh;
    sh->tpl_ok = false;
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    const char *p = jtok_skip_ws(*pp, fw->end);
    if (p < fw->end && *p == ']') {
        stage_nulls(sh, nd, f->def_level, rep);
        *pp = p + 1;
        return 0;
    }
    for (size_t count = 0;; count++) {
        if (p >= fw->end)
            return FAST_GIVE_UP;
        int r = count == 0 ? rep : f->item->rep_level;
        if (fast_value(fw, nd->item, &p, r, depth) != 0)
            return FAST_GIVE_UP;
        int more = fast_next(&p, fw->end, ']');
        if (more < 0)
            return FAST_GIVE_UP;
        if (!more)
            break;
    }
    *pp = p;
    return 0;
}

static int fast_map(struct fast *fw, size_t ni, const char **pp, int rep, int depth)
{
    struct shred *sh = fw->sh;
    sh->tpl_ok = false;
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    const char *p = jtok_skip_ws(*pp, fw->end), *end = fw->end;
    if (p < end && *p == '}') {
        stage_nulls(sh, nd, f->def_level, rep);
        *pp = p + 1;
        return 0;
    }
    for (size_t count = 0;; count++) {
        if (p >= end || *p != '"')
            return FAST_GIVE_UP;
        bool escaped;
        const char *q = jtok_scan_string(p, end, &escaped);
        if (!q)
            return FAST_GIVE_UP;
        int r = count == 0 ? rep : f->item->rep_level;
        size_t off = sh->strs.len, n = (size_t)(q - p - 2);
        if ((escaped ? jtok_unescape(p + 1, n, &sh->strs, NULL)
                     : buf_append(&sh->strs, p + 1, n)) < 0)
            return FAST_GIVE_UP;
        struct staged *e = stage(sh, nd->key_col, f->item->def_level - 1, r, SK_BYTES);
        e->v.s.off = off;
        e->v.s.len = sh->strs.len - off;
        p = jtok_skip_ws(q, end);
        if (p >= end || *p != ':')
            return FAST_GIVE_UP;
        p = jtok_skip_ws(p + 1, end);
        if (p >= end || fast_value(fw, nd->item, &p, r, depth) != 0)
            return FAST_GIVE_UP;
        int more = fast_next(&p, end, '}');
        if (more < 0)
            return FAST_GIVE_UP;
        if (!more)
            break;
    }
    *pp = p;
    return 0;
}

/* The value of node ni at *pp (white space skipped, p < end), as walk_value walks it; depth is
 * the number of containers open around it. */
static int fast_value(struct fast *fw, size_t ni, const char **pp, int rep, int depth)
{
    struct shred *sh = fw->sh;
    const struct snode *nd = &sh->nodes[ni];
    const struct xdm_field *f = nd->f;
    const char *p = *pp;
    if (*p == 'n') {
        if (f->required || !jtok_scan_literal(p, fw->end, "null", 4))
            return FAST_GIVE_UP;
        /* A null of a node with columns stages a null range, which alone keeps the record from
         * being a template (n_log != n_slots); a node without columns stages nothing, and its
         * record is kept out here so that a template holds only objects and scalars, as its
         * contract says (its value, too, would take fast_skip, which rules the record out). */
        sh->tpl_ok = false;
        stage_nulls(sh, nd, f->def_level - 1, rep);
        *pp = p + 4;
        return 0;
    }
    if (nd->first_col < 0) {
        sh->unknown++;
        return fast_skip(fw, pp, depth);
    }
    switch (f->type) {
    case XDM_OBJECT:
    case XDM_MAP:
    case XDM_ARRAY: {
        char open = f->type == XDM_ARRAY ? '[' : '{';
        if (*p != open || depth >= JLEX_MAX_DEPTH)
            return FAST_GIVE_UP;
        *pp = p + 1;
        if (f->type == XDM_OBJECT)
            return fast_object(fw, ni, pp, rep, depth + 1);
        if (f->type == XDM_MAP)
            return fast_map(fw, ni, pp, rep, depth + 1);
        return fast_array(fw, ni, pp, rep, depth + 1);
    }
    default: {
        struct jtok t;
        if (fast_scalar_token(fw, pp, &t) != 0 || walk_scalar(sh, nd, &t, rep, NULL, NULL) < 0)
            return FAST_GIVE_UP;
        /* Slots are of use only to a record that may become the template: one that has ruled
         * itself out (an array's elements, say) no longer notes them. */
        if (sh->tpl_ok) {
            BUF_ARRAY_RESERVE(sh->slots, sh->slots_cap, sh->n_slots + 1, ARRAY_FIRST_CAP);
            sh->slots[sh->n_slots++] = (struct tpl_slot){
                .node = ni, .start = (size_t)(p - sh->rec), .end = (size_t)(*pp - sh->rec)};
        }
        return 0;
    }
    }
}

/* The whole record the fast way: 0 when it is good (staged as the token walk would have), or
 * FAST_GIVE_UP. */
static int fast_record(struct shred *sh, const char *rec, size_t len)
{
    struct fast fw = {.sh = sh, .end = rec + len};
    const char *p = jtok_skip_ws(rec, fw.end);
    if (p >= fw.end || *p != '{')
        return FAST_GIVE_UP;
    p++;
    if (fast_object(&fw, 0, &p, 0, 1) != 0)
        return FAST_GIVE_UP;
    return jtok_skip_ws(p, fw.end) == fw.end ? 0 : FAST_GIVE_UP;
}

/* ---- the template walk ---- */

/*
 * Records of one file mostly have the same keys in the same order with the same white space:
 * they differ only in their scalars. A good record of objects and scalars only (no arrays, maps,
 * nulls or dropped properties) becomes the template: its bytes, where its scalars lie and their
 * nodes, and its null set. The next record is matched against it: the bytes between two scalars
 * must be the template's exactly, and each scalar is scanned and converted where the template
 * had one, by the fast walk's own steps (fast_scalar_token, walk_scalar). The bytes around the
 * scalars carry all the structure the fast walk reads (keys, braces, commas, blanks), so a match
 * stages what the fast walk would stage, in the same order, with the same null set; anything
 * else (another shape, a null or a container where a scalar was, a bad value) gives up and the
 * record takes the fast walk, which makes it the template when it can be one and the old one
 * has missed several records in a row (tpl_take).
 */
static int tpl_record(struct shred *sh, const char *rec, size_t len)
{
    const struct tpl *t = &sh->tpl;
    struct fast fw = {.sh = sh, .end = rec + len};
    const char *p = rec;
    size_t prev = 0; /* end of the template's previous scalar */
    for (size_t i = 0; i < t->n_slots; i++) {
        const struct tpl_slot *sl = &t->slots[i];
        size_t seg = sl->start - prev;
        if ((size_t)(fw.end - p) <= seg || !buf_same_short(p, t->bytes + prev, seg))
            return FAST_GIVE_UP;
        p += seg;
        struct jtok tok;
        if (fast_scalar_token(&fw, &p, &tok) != 0 ||
            walk_scalar(sh, &sh->nodes[sl->node], &tok, 0, NULL, NULL) < 0)
            return FAST_GIVE_UP;
        prev = sl->end;
    }
    size_t seg = t->len - prev;
    if ((size_t)(fw.end - p) != seg || !buf_same_short(p, t->bytes + prev, seg))
        return FAST_GIVE_UP;
    sh->rset = buf_copy_array(sh->rset, &sh->rset_cap, t->nulls, t->n_nulls,
                              3 * sizeof(int32_t), ARRAY_FIRST_CAP);
    sh->rset_n = t->n_nulls;
    return 0;
}

/*
 * A record the fast walk just took, after the template missed it or with no template: it
 * becomes the template when it can be one. A template that misses only now and then (a file
 * mixing two shapes, a null here and there) still matches the records in between, so it is
 * kept through TPL_MISSES - 1 misses in a row; the next one replaces it with this record, or,
 * when this record cannot be a template, drops it, so that records of a shape that never can
 * be one stop paying for a compare that fails.
 */
static void tpl_take(struct shred *sh, const char *rec, size_t len)
{
    struct tpl *t = &sh->tpl;
    if (t->valid && ++t->misses < TPL_MISSES)
        return;
    t->valid = false;
    t->misses = 0;
    /* Every staged value is one of the slots: nothing else (nulls, lists) was staged. */
    if (!sh->tpl_ok || sh->unknown || sh->n_log != sh->n_slots)
        return;
    t->bytes = buf_copy_array(t->bytes, &t->bytes_cap, rec, len, 1, ARRAY_FIRST_CAP);
    t->len = len;
    t->slots = buf_copy_array(t->slots, &t->slots_cap, sh->slots, sh->n_slots,
                              sizeof(*t->slots), ARRAY_FIRST_CAP);
    t->n_slots = sh->n_slots;
    t->nulls = buf_copy_array(t->nulls, &t->nulls_cap, sh->rset, sh->rset_n,
                              3 * sizeof(int32_t), ARRAY_FIRST_CAP);
    t->n_nulls = sh->rset_n;
    t->valid = true;
}

/* ---- one record ---- */

int shred_record(struct shred *sh, const char *rec, size_t len, struct pq_writer *w,
                 json_t **converted, struct ing_err *err)
{
    json_t *root = NULL;
    struct jtok t;
    int rc;

    /* A full clear writes a kilobyte; callers pass a clean record nearly always. */
    if (err && (err->code || err->sys_errno || err->row || err->file[0] || err->field[0] ||
                err->msg[0]))
        ing_err_clear(err);
    else if (err)
        err->offset = -1;
    if (converted)
        *converted = NULL;
    record_reset(sh);
    jlex_init(&sh->lx, rec, len);
    sh->rec = sh->lx.start; /* jlex substitutes "" for a NULL record; offsets are from its start */

    /* The template walk, then the fast walk take good records; previews (which build a JSON
     * copy) and every record they give up on take the token walk from the start, which reports
     * the errors. */
    if (!converted && rec) {
        if (sh->tpl.valid && tpl_record(sh, rec, len) == 0) {
            sh->tpl.misses = 0;
            goto good;
        }
        record_reset(sh);
        if (fast_record(sh, rec, len) == 0) {
            tpl_take(sh, rec, len);
            goto good;
        }
        record_reset(sh);
    }

    if ((rc = next_token(sh, &t, err)) < 0)
        goto out;
    if (t.type != JT_OBJ_BEGIN) {
        rc = ing_err_set(err, ING_ESYNTAX, "a record must be a JSON object");
        if (err)
            err->offset = t.type == JT_END ? (int64_t)len : offset_of(sh, &t);
        goto out;
    }
    if ((rc = walk_object(sh, 0, 0, converted ? &root : NULL, err)) < 0)
        goto out;
    if ((rc = next_token(sh, &t, err)) < 0)
        goto out;
    if (t.type != JT_END) {
        rc = ing_err_set(err, ING_ESYNTAX, "unexpected data after the record");
        if (err)
            err->offset = offset_of(sh, &t);
        goto out;
    }
good:
    if (w) {
        emit(sh, w);
        write_null_set(sh, w);
        if ((rc = pq_writer_end_row(w, err)) < 0)
            goto out;
    }
    rc = 0;
out:
    if (rc < 0) {
        if (err && err->code == 0)
            err->code = rc;
        sh->stats.records_failed++;
        json_decref(root);
    } else {
        sh->stats.records_ok++;
        sh->stats.unknown_fields += sh->unknown;
        if (converted)
            *converted = root;
    }
    return rc;
}

/* ---- a record fed value by value (the Parquet path) ---- */

/* A scan: the Parquet path looks its fields up once, when it binds a file's columns to the plan,
 * and the walk of its rows then uses the node indexes it keeps. */
int shred_node_of(const struct shred *sh, const struct xdm_field *f)
{
    for (size_t i = 0; f && i < sh->n_nodes; i++)
        if (sh->nodes[i].f == f)
            return (int)i;
    return -1;
}

void shred_begin(struct shred *sh)
{
    record_reset(sh);
    jlex_init(&sh->lx, "", 0); /* scalar tokens never read it: jlex_skip of a scalar is a no-op */
    sh->rec = sh->lx.start;
}

int shred_put(struct shred *sh, int node, const struct jtok *t, int rep, struct ing_err *err)
{
    if (t->type == JT_OBJ_BEGIN || t->type == JT_ARR_BEGIN || node < 0 ||
        (size_t)node >= sh->n_nodes)
        return ing_err_set(err, ING_EINVAL, "shred_put takes scalar tokens of plan fields");
    /* Error offsets are taken from sh->rec: make them point at this value, not elsewhere. */
    sh->rec = t->p ? t->p : sh->lx.start;
    return walk_value(sh, (size_t)node, t, rep, NULL, err);
}

void shred_put_nulls(struct shred *sh, int node, int def, int rep)
{
    stage_nulls(sh, &sh->nodes[node], def, rep);
}

void shred_put_key(struct shred *sh, int map, const char *p, size_t n, int rep)
{
    const struct snode *nd = &sh->nodes[map];
    struct staged *e = stage(sh, nd->key_col, nd->f->item->def_level - 1, rep, SK_RAW);
    e->v.raw.p = p;
    e->v.raw.len = n;
}

void shred_put_unknown(struct shred *sh)
{
    sh->unknown++;
}

int shred_end(struct shred *sh, struct pq_writer *w, struct ing_err *err)
{
    if (w) {
        emit(sh, w);
        int rc = pq_writer_end_row(w, err);
        if (rc < 0)
            return rc;
    }
    sh->stats.records_ok++;
    sh->stats.unknown_fields += sh->unknown;
    return 0;
}
