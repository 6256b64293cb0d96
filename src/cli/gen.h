/*
 * gen.h - a deterministic generator of Luma-shaped test data at any scale (`ingot gen`).
 *
 * It writes the four files of Adobe's "Ingest batch data" tutorial in their shapes: loyalty
 * members, CRM contacts and offline purchases as JSON (JSON Lines or one JSON array), products as
 * CSV. Every record belongs to a person of one shared universe, so identities overlap across files
 * the way they do in the tutorial: a loyalty record carries its person's loyaltyId and crmId, CRM
 * covers a shifted slice of the same people (by default 80% of them are loyalty members too), and
 * purchases point at loyalty members' loyaltyIds and at SKUs of the products file.
 *
 * A chosen share of records is bad (corrupt JSON, values that cannot be converted, impossible
 * dates, objects where strings belong), each bad in a way the compact schema of gen_schema
 * rejects, so an ingestion of the file must fail exactly gen_stats.bad_records rows.
 *
 * Determinism: the bytes depend only on (kind, layout, records, seed, bad_share, people,
 * overlap, products, tenant); each record is drawn from its own hash of (seed, kind, index).
 * Threads: the functions are reentrant; a generator run uses the calling thread.
 */
#ifndef ING_CLI_GEN_H
#define ING_CLI_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "util/err.h"

enum gen_kind { GEN_LOYALTY = 0, GEN_CRM, GEN_PURCHASES, GEN_PRODUCTS };
enum gen_layout { GEN_LINES = 0, GEN_ARRAY };

struct gen_opts {
    enum gen_kind kind;
    enum gen_layout layout;     /* JSON kinds; products are always CSV */
    int64_t records;
    uint64_t seed;
    double bad_share;           /* 0..1: probability that a record is bad */
    int64_t people;             /* size of the shared person universe; 0 = records */
    double overlap;             /* share of CRM people who are loyalty members too; <0 = 0.8 */
    int64_t products;           /* size of the product catalogue; 0 = 92 (the tutorial's) */
    const char *tenant;         /* tenant id without underscore; NULL = "techmarketingdemos" */
};

struct gen_stats {
    int64_t records;            /* records written (good + bad; CSV: rows without the header) */
    int64_t bad_records;
    int64_t bytes;
};

/* Where the bytes go: return 0, or a negative ING_E* to stop the run. */
typedef int gen_sink_fn(void *ctx, const void *p, size_t n);

/* Generate into `sink`. st (may be NULL) receives the counts. */
int gen_run(const struct gen_opts *o, gen_sink_fn *sink, void *ctx, struct gen_stats *st,
            struct ing_err *err);
/* Generate into a new file at `path` ("-" = stdout). */
int gen_write_file(const struct gen_opts *o, const char *path, struct gen_stats *st,
                   struct ing_err *err);

/* The compact resolved (xed-full) schema of a JSON kind: exactly the fields the generator writes,
 * typed as the tutorial's field groups type them. New reference; NULL for GEN_PRODUCTS. */
json_t *gen_schema(enum gen_kind kind, const char *tenant);

/* "loyalty", "crm", "purchases", "products" -> kind; ING_EINVAL when unknown. */
int gen_kind_parse(const char *name, enum gen_kind *out);

/* The identities of person `p` (0-based) under `seed`: loyaltyId and 32 hex digit crmId. */
int64_t gen_loyalty_id(int64_t p);
void gen_crm_id(uint64_t seed, int64_t p, char out[33]);

/* `ingot gen ...`: the command line front end; returns the process exit code. */
int gen_main(int argc, char **argv);

#endif
