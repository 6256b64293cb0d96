/*
 * pq_schema.c - the Parquet schema tree: groups and leaves, max definition/repetition levels
 * and column paths; see pq_writer.h.
 */
#include "parquet/pq_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/mem.h"

/* Deeper schemas than this are refused: levels are small and the footer encoder nests. */
#define PQ_MAX_SCHEMA_DEPTH 64

static void mark_invalid(struct pq_schema *s, const char *why)
{
    if (!s->invalid)
        snprintf(s->why, sizeof(s->why), "%s", why);
    s->invalid = true;
}

static int add_node(struct pq_schema *s, int parent, const char *name, enum pq_repetition rep,
                    enum pq_logical logical)
{
    if (s->nnodes == s->nodes_cap) {
        s->nodes_cap = s->nodes_cap ? s->nodes_cap * 2 : 16;
        s->nodes = xrealloc(s->nodes, (size_t)s->nodes_cap * sizeof(*s->nodes));
    }
    int id = s->nnodes++;
    struct pq_node *n = &s->nodes[id];
    memset(n, 0, sizeof(*n));
    n->name = xstrdup(name);
    n->parent = parent;
    n->rep = rep;
    n->logical = logical;
    n->column = -1;
    if (parent >= 0) {
        struct pq_node *p = &s->nodes[parent];
        if (p->nchildren == p->children_cap) {
            p->children_cap = p->children_cap ? p->children_cap * 2 : 4;
            p->children = xrealloc(p->children, (size_t)p->children_cap * sizeof(int));
        }
        p->children[p->nchildren++] = id;
    }
    return id;
}

struct pq_schema *pq_schema_new(void)
{
    struct pq_schema *s = xcalloc(1, sizeof(*s));
    add_node(s, -1, "schema", PQ_REQUIRED, PQ_LOG_NONE);
    return s;
}

static bool parent_ok(struct pq_schema *s, int parent, const char *name, enum pq_repetition rep)
{
    if (s->finished) {
        mark_invalid(s, "schema changed after pq_schema_finish");
        return false;
    }
    if (parent < 0 || parent >= s->nnodes || s->nodes[parent].is_leaf) {
        mark_invalid(s, "parent is not a group node");
        return false;
    }
    if (!name || !*name) {
        mark_invalid(s, "empty field name");
        return false;
    }
    if (rep != PQ_REQUIRED && rep != PQ_OPTIONAL && rep != PQ_REPEATED) {
        mark_invalid(s, "bad repetition");
        return false;
    }
    return true;
}

int pq_schema_add_group(struct pq_schema *s, int parent, const char *name,
                        enum pq_repetition rep, enum pq_logical logical)
{
    if (!parent_ok(s, parent, name, rep))
        return ING_EINVAL;
    if (logical != PQ_LOG_NONE && logical != PQ_LOG_LIST && logical != PQ_LOG_MAP) {
        mark_invalid(s, "a group can only be annotated LIST or MAP");
        return ING_EINVAL;
    }
    return add_node(s, parent, name, rep, logical);
}

static bool logical_fits(enum pq_phys phys, enum pq_logical logical)
{
    switch (logical) {
    case PQ_LOG_NONE:
        return true;
    case PQ_LOG_STRING:
    case PQ_LOG_JSON:
        return phys == PQ_BYTE_ARRAY;
    case PQ_LOG_DATE:
    case PQ_LOG_INT8:
    case PQ_LOG_INT16:
    case PQ_LOG_INT32:
        return phys == PQ_INT32;
    case PQ_LOG_TIMESTAMP_MILLIS:
    case PQ_LOG_TIMESTAMP_MICROS:
    case PQ_LOG_INT64:
        return phys == PQ_INT64;
    case PQ_LOG_LIST:
    case PQ_LOG_MAP:
        return false;
    }
    return false;
}

int pq_schema_add_leaf(struct pq_schema *s, int parent, const char *name, enum pq_repetition rep,
                       enum pq_phys phys, enum pq_logical logical)
{
    if (!parent_ok(s, parent, name, rep))
        return ING_EINVAL;
    /* INT96 is deprecated and FIXED_LEN_BYTE_ARRAY needs a length the API does not carry. */
    if (phys != PQ_BOOLEAN && phys != PQ_INT32 && phys != PQ_INT64 && phys != PQ_FLOAT &&
        phys != PQ_DOUBLE && phys != PQ_BYTE_ARRAY) {
        mark_invalid(s, "unsupported physical type");
        return ING_EINVAL;
    }
    if (!logical_fits(phys, logical)) {
        mark_invalid(s, "logical type does not fit the physical type");
        return ING_EINVAL;
    }
    int id = add_node(s, parent, name, rep, logical);
    struct pq_node *n = &s->nodes[id];
    n->is_leaf = true;
    n->phys = phys;
    n->column = s->ncols;
    if (s->ncols == s->cols_cap) {
        s->cols_cap = s->cols_cap ? s->cols_cap * 2 : 16;
        s->cols = xrealloc(s->cols, (size_t)s->cols_cap * sizeof(*s->cols));
    }
    memset(&s->cols[s->ncols], 0, sizeof(s->cols[0]));
    s->cols[s->ncols].node = id;
    return s->ncols++;
}

static void walk_dfs(struct pq_schema *s, int node, int *at, int *next_col)
{
    s->dfs[(*at)++] = node;
    struct pq_node *n = &s->nodes[node];
    if (n->is_leaf) {
        if (n->column != (*next_col)++)
            mark_invalid(s, "leaves were not added in depth-first order");
        return;
    }
    if (n->nchildren == 0)
        mark_invalid(s, "a group has no fields (Parquet forbids empty groups)");
    for (int i = 0; i < n->nchildren; i++)
        walk_dfs(s, n->children[i], at, next_col);
}

/* LIST: one repeated child; MAP: one repeated group child whose first field is a required key. */
static void check_annotation(struct pq_schema *s, const struct pq_node *g)
{
    if (g->logical != PQ_LOG_LIST && g->logical != PQ_LOG_MAP)
        return;
    if (g->nchildren != 1 || s->nodes[g->children[0]].rep != PQ_REPEATED) {
        mark_invalid(s, "a LIST or MAP group must have exactly one repeated child");
        return;
    }
    const struct pq_node *kv = &s->nodes[g->children[0]];
    if (g->logical == PQ_LOG_MAP &&
        (kv->is_leaf || kv->nchildren < 1 || kv->nchildren > 2 ||
         s->nodes[kv->children[0]].rep != PQ_REQUIRED))
        mark_invalid(s, "a MAP's key_value group needs a required key and at most a value");
}

void pq_schema_finish(struct pq_schema *s)
{
    if (!s || s->finished)
        return;
    s->finished = true;
    s->dfs = xmalloc((size_t)s->nnodes * sizeof(int));
    int at = 0, next_col = 0;
    walk_dfs(s, 0, &at, &next_col);
    if (s->ncols == 0)
        mark_invalid(s, "the schema has no columns");
    for (int i = 0; i < s->nnodes; i++)
        if (!s->nodes[i].is_leaf)
            check_annotation(s, &s->nodes[i]);
    for (int c = 0; c < s->ncols; c++) {
        struct pq_column_desc *d = &s->cols[c];
        int depth = 0;
        for (int n = d->node; n > 0; n = s->nodes[n].parent) {
            depth++;
            if (s->nodes[n].rep != PQ_REQUIRED)
                d->max_def++;
            if (s->nodes[n].rep == PQ_REPEATED)
                d->max_rep++;
        }
        if (depth > PQ_MAX_SCHEMA_DEPTH)
            mark_invalid(s, "the schema is nested too deeply");
        d->nparts = depth;
        d->parts = xcalloc((size_t)depth, sizeof(char *));
        struct buf path = {0};
        int i = depth;
        for (int n = d->node; n > 0; n = s->nodes[n].parent)
            d->parts[--i] = s->nodes[n].name;
        for (i = 0; i < depth; i++) {
            if ((i && buf_append_byte(&path, '.')) || buf_append_str(&path, d->parts[i]))
                abort(); /* names are small: out of memory here is fatal, as with xmalloc */
        }
        d->path = xstrdup(buf_cstr(&path));
        buf_free(&path);
    }
}

size_t pq_schema_ncolumns(const struct pq_schema *s)
{
    return s ? (size_t)s->ncols : 0;
}

int pq_schema_max_def(const struct pq_schema *s, int column)
{
    if (!s || column < 0 || column >= s->ncols)
        return ING_EINVAL;
    return s->cols[column].max_def;
}

int pq_schema_max_rep(const struct pq_schema *s, int column)
{
    if (!s || column < 0 || column >= s->ncols)
        return ING_EINVAL;
    return s->cols[column].max_rep;
}

const char *pq_schema_column_path(const struct pq_schema *s, int column)
{
    if (!s || column < 0 || column >= s->ncols || !s->cols[column].path)
        return "";
    return s->cols[column].path;
}

void pq_schema_free(struct pq_schema *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nnodes; i++) {
        free(s->nodes[i].name);
        free(s->nodes[i].children);
    }
    for (int c = 0; c < s->ncols; c++) {
        free(s->cols[c].path);
        free(s->cols[c].parts);
    }
    free(s->nodes);
    free(s->cols);
    free(s->dfs);
    free(s);
}
