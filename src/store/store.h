/*
 * store.h - the metadata store: JSON documents by (sandbox, kind, id), with transactions.
 *
 * Every control-plane object of ingot (datasets, batches, dataset files, schemas, field groups,
 * descriptors, identity namespaces, ...) is one JSON document in the store, keyed by sandbox,
 * kind and id. Sandboxes never see each other's documents. This narrow interface is what a
 * PostgreSQL back end implements later; nothing above it knows SQL. The SQLite back end runs in
 * WAL mode with synchronous=FULL so that a committed transaction survives kill -9 and power loss.
 *
 * Ownership: documents passed in are borrowed (serialised at once); documents returned are new
 * references the caller json_decref()s.
 * Threads: a struct store may be used from any number of threads at once (each thread gets its own
 * connection). A transaction (store_tx_*) belongs to the thread that began it; while it is open,
 * that thread's calls run inside it.
 */
#ifndef ING_STORE_STORE_H
#define ING_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "util/err.h"

struct store;

/* Open (creating if needed) the store under directory `dir` (file dir/ingot.db). */
int store_open(struct store **out, const char *dir, struct ing_err *err);
void store_close(struct store *st); /* NULL is a no-op */

/* Insert a document; ING_EEXIST if (sandbox, kind, id) exists. `created`/`updated` columns are
 * taken from the document's "created"/"updated" numbers when present (ms), else now. */
int store_insert(struct store *st, const char *sandbox, const char *kind, const char *id,
                 const json_t *doc, struct ing_err *err);
/* Replace an existing document; ING_ENOTFOUND if missing. */
int store_update(struct store *st, const char *sandbox, const char *kind, const char *id,
                 const json_t *doc, struct ing_err *err);
/* Insert or replace. */
int store_put(struct store *st, const char *sandbox, const char *kind, const char *id,
              const json_t *doc, struct ing_err *err);
/* Fetch; ING_ENOTFOUND if missing. *out is a new reference. */
int store_get(struct store *st, const char *sandbox, const char *kind, const char *id, json_t **out,
              struct ing_err *err);
int store_delete(struct store *st, const char *sandbox, const char *kind, const char *id,
                 struct ing_err *err);

/* A list query: filters are ANDed. Each filter compares a top-level (or dotted-path) property of
 * the document with one or more values ("a,b" = any of, a leading "!" = none of). */
enum store_op { STORE_EQ, STORE_NE, STORE_LT, STORE_LE, STORE_GT, STORE_GE, STORE_EXISTS,
                STORE_NOT_EXISTS, STORE_IN, STORE_NOT_IN,
                STORE_MATCH, /* the property's text matches a POSIX extended regular expression */
                STORE_TAG /* tags.<name> contains value */ };

struct store_filter {
    const char *property;   /* "status", "name", "relatedObjects.id", "created", ... */
    enum store_op op;
    const char *value;      /* text; compared as a number when both sides are numeric.
                               STORE_IN / STORE_NOT_IN: comma-separated list */
};

struct store_order {
    const char *property;
    bool desc;
};

struct store_query {
    const struct store_filter *filters;
    size_t nfilters;
    const struct store_order *order;  /* NULL = by created ascending, then id */
    size_t norder;
    int64_t start;                    /* offset */
    int64_t limit;                    /* <= 0: no limit */
};

/* Run a query over one kind in one sandbox. *out is a new JSON object keyed by id, in query
 * order (jansson keeps insertion order), which is the shape the Catalog API returns. */
int store_list(struct store *st, const char *sandbox, const char *kind,
               const struct store_query *q, json_t **out, struct ing_err *err);
/* Count the documents a query's filters match (start/limit ignored). */
int store_count(struct store *st, const char *sandbox, const char *kind,
                const struct store_query *q, int64_t *out, struct ing_err *err);
/* Every (sandbox, id) of one kind across all sandboxes whose document matches the filters, for
 * start-up recovery. *out is a new JSON array of {"sandbox":..,"id":..,"doc":..}. */
int store_scan_all(struct store *st, const char *kind, const struct store_query *q, json_t **out,
                   struct ing_err *err);

/* Transactions (IMMEDIATE): the calls between begin and commit on this thread are atomic. */
int store_tx_begin(struct store *st, struct ing_err *err);
int store_tx_commit(struct store *st, struct ing_err *err);
void store_tx_rollback(struct store *st);

#endif
