/*
 * pq_bind.c - binding Parquet columns to XDM fields by path; see pq_bind.h.
 */
#include "ingest/pq_bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

struct bctx {
    const struct pq_reader *r;
    struct pq_bind_report *rep;
    size_t cap;
};

static void add_issues(struct bctx *b, const struct pq_rnode *n, enum pq_bind_kind kind,
                       const char *field, const char *why)
{
    for (int c = n->col_lo; c < n->col_hi; c++) {
        struct pq_bind_report *rep = b->rep;
        if (rep->n_issues == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 16;
            rep->issues = xrealloc(rep->issues, b->cap * sizeof(*rep->issues));
        }
        struct pq_bind_issue *is = &rep->issues[rep->n_issues++];
        memset(is, 0, sizeof(*is));
        is->kind = kind;
        is->column = c;
        is->column_path = pq_reader_column_path(b->r, c);
        snprintf(is->field, sizeof(is->field), "%s", field);
        is->why = why;
        if (kind == PQ_BIND_UNKNOWN)
            rep->n_unknown++;
        else
            rep->n_shape++;
    }
}

static bool is_scalar(enum xdm_type t)
{
    return t != XDM_OBJECT && t != XDM_ARRAY && t != XDM_MAP;
}

static void bind_field(struct bctx *b, int nid, const struct xdm_field *f, const char *path);

/* Parquet node nid, known to be present, renders a value that goes to XDM field f at `path`. */
static void bind_present(struct bctx *b, int nid, const struct xdm_field *f, const char *path)
{
    const struct pq_rnode *n = pq_reader_node(b->r, nid);
    char sub[ING_ERR_PATH];
    switch (n->kind) {
    case PQ_RK_VALUE:
        if (!is_scalar(f->type)) {
            add_issues(b, n, PQ_BIND_SHAPE, path, "a single value where XDM has a structure");
            return;
        }
        b->rep->n_bound++;
        return;
    case PQ_RK_STRUCT:
        if (f->type == XDM_OBJECT) {
            for (int i = 0; i < n->nchildren; i++) {
                const struct pq_rnode *c = pq_reader_node(b->r, n->children[i]);
                snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", c->name);
                bind_field(b, n->children[i], xdm_field_child(f, c->name, strlen(c->name)), sub);
            }
        } else if (f->type == XDM_MAP && f->item) {
            /* a group's fields become the map's keys */
            for (int i = 0; i < n->nchildren; i++) {
                const struct pq_rnode *c = pq_reader_node(b->r, n->children[i]);
                snprintf(sub, sizeof(sub), "%s.%s", path, c->name);
                bind_field(b, n->children[i], f->item, sub);
            }
        } else {
            add_issues(b, n, PQ_BIND_SHAPE, path, "a group where XDM has no object or map");
        }
        return;
    case PQ_RK_LIST:
        if (f->type != XDM_ARRAY || !f->item) {
            add_issues(b, n, PQ_BIND_SHAPE, path, "a list where XDM has no array");
            return;
        }
        snprintf(sub, sizeof(sub), "%s[]", path);
        if (n->list_elem == n->children[0])
            bind_present(b, n->list_elem, f->item, sub);
        else
            bind_field(b, n->list_elem, f->item, sub);
        return;
    case PQ_RK_MAP: {
        const struct pq_rnode *kv = pq_reader_node(b->r, n->children[0]);
        if (f->type == XDM_OBJECT) {
            /* keys become property names only at row time: bound as far as we can tell */
            b->rep->n_bound += (size_t)(kv->col_hi - kv->col_lo);
            return;
        }
        if (f->type != XDM_MAP || !f->item) {
            add_issues(b, n, PQ_BIND_SHAPE, path, "a map where XDM has no map or object");
            return;
        }
        b->rep->n_bound++; /* the key column */
        if (n->map_value >= 0) {
            snprintf(sub, sizeof(sub), "%s.*", path);
            bind_field(b, n->map_value, f->item, sub);
        }
        return;
    }
    }
}

/* A field slot: repeated nodes render as arrays of their values. */
static void bind_field(struct bctx *b, int nid, const struct xdm_field *f, const char *path)
{
    const struct pq_rnode *n = pq_reader_node(b->r, nid);
    if (!f) {
        add_issues(b, n, PQ_BIND_UNKNOWN, path, "");
        return;
    }
    if (n->rep == PQ_REPEATED) {
        if (f->type != XDM_ARRAY || !f->item) {
            add_issues(b, n, PQ_BIND_SHAPE, path, "a repeated field where XDM has no array");
            return;
        }
        char sub[ING_ERR_PATH];
        snprintf(sub, sizeof(sub), "%s[]", path);
        bind_present(b, nid, f->item, sub);
        return;
    }
    bind_present(b, nid, f, path);
}

int pq_bind_check(const struct pq_reader *r, const struct xdm_plan *plan,
                  struct pq_bind_report *out, struct ing_err *err)
{
    if (!out)
        return ing_err_set(err, ING_EINVAL, "no report to fill");
    memset(out, 0, sizeof(*out));
    if (!r || !plan)
        return ing_err_set(err, ING_EINVAL, "no Parquet reader or no plan");
    struct bctx b = {.r = r, .rep = out};
    bind_present(&b, 0, &plan->root, "");
    return 0;
}

void pq_bind_report_free(struct pq_bind_report *rep)
{
    if (!rep)
        return;
    free(rep->issues);
    memset(rep, 0, sizeof(*rep));
}
