/*
 * pq_int.h - declarations shared between the files of src/parquet (schema internals the writer
 * reads when it serialises the footer). Not for use outside the module.
 */
#ifndef ING_PARQUET_PQ_INT_H
#define ING_PARQUET_PQ_INT_H

#include <stdbool.h>

#include "parquet/pq_writer.h"

struct pq_node {
    char *name;
    int parent;               /* -1 for the root */
    enum pq_repetition rep;
    enum pq_logical logical;
    bool is_leaf;
    enum pq_phys phys;        /* leaves only */
    int column;               /* leaf column index, -1 for groups */
    int *children;
    int nchildren, children_cap;
};

struct pq_column_desc {
    int node;
    int max_def, max_rep;
    char *path;               /* dotted */
    const char **parts;       /* names from the root's child down to the leaf (borrowed) */
    int nparts;
};

struct pq_schema {
    struct pq_node *nodes;
    int nnodes, nodes_cap;
    struct pq_column_desc *cols;
    int ncols, cols_cap;
    int *dfs;                 /* node ids in depth-first order (after finish) */
    bool finished;
    bool invalid;             /* set by add_* or finish; pq_writer_open refuses the schema */
    char why[160];
};

#endif
