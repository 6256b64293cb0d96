/*
 * idgraph.h - the identity graph: identities out of records, stitching, the guardrail, revert,
 * and the lookups of the Identity Service.
 *
 * Extraction: a record's identities are the values at the schema's identity descriptors
 * (struct xdm_plan.identities) and the items of its `identityMap`. Values are normalised as
 * AEP does (surrounding whitespace trimmed; Email namespaces lower-cased); empty values and
 * values over IDG_VALUE_MAX bytes are skipped and counted. Identities of one record are linked.
 * Non-people namespaces (idType NON_PEOPLE) never enter the graph.
 *
 * Stitching a batch (idg_apply_batch) is incremental: the batch's identities are gathered in
 * memory, united by rows with a union-find, joined to the clusters they already belong to, and
 * only then written: new identities straight under their final cluster label, merged clusters
 * relabelled smaller-into-larger, and one edge row per link and batch (its provenance). The
 * guardrail (struct idg_settings) then trims any cluster over the limit in AEP's removal order:
 * cookie ids first, then device ids, then cross-device / email / phone, the least recently seen
 * first within a kind; removing an identity can split its cluster, which is recomputed.
 * Taking a batch back out (idg_remove_batch, for REVERT and replay) deletes its edges, drops
 * identities no other batch saw, and recomputes the clusters those edges touched, so a link
 * that was the only bridge leaves two clusters again.
 *
 * Threads: idg_apply_batch / idg_remove_batch run inside the caller's pstore transaction on its
 * thread; the lookups are thread-safe. A struct idg_batch belongs to one thread.
 */
#ifndef ING_IDENTITY_IDGRAPH_H
#define ING_IDENTITY_IDGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/registry.h"
#include "schema/xdm_plan.h"
#include "store/pstore.h"
#include "util/err.h"

#define IDG_VALUE_MAX 1024      /* AEP: identity values longer than this are skipped */
#define IDG_DEFAULT_LIMIT 50    /* AEP's identities-per-graph guardrail */

enum idg_removal {
    IDG_REMOVE_AEP = 0, /* over the limit: remove by kind (cookie, device, people) then oldest */
    IDG_REMOVE_OLDEST,  /* over the limit: remove the least recently seen, whatever the kind */
    IDG_KEEP,           /* keep every identity; lookups of a cluster over the limit fail (422) */
};

struct idg_settings {
    int max_identities;         /* 0 = no limit */
    enum idg_removal removal;
};

/* "aep", "oldest" or "keep" -> removal; ING_EINVAL otherwise. */
int idg_removal_parse(const char *s, enum idg_removal *out);

struct idgraph;

/* `ps` and `reg` are borrowed; `settings` is copied (NULL: limit 50, AEP order). */
int idgraph_new(struct idgraph **out, struct pstore *ps, struct registry *reg,
                const struct idg_settings *settings, struct ing_err *err);
void idgraph_free(struct idgraph *g); /* NULL is a no-op */
struct pstore *idgraph_pstore(const struct idgraph *g);
struct registry *idgraph_registry(const struct idgraph *g);
const struct idg_settings *idgraph_settings(const struct idgraph *g);

/* ---- Extraction (pure) ---- */

struct idg_found {
    char *code;   /* namespace code as written in the schema or the identityMap key */
    char *raw;    /* the value as found (numbers formatted as JSON writes them) */
    bool primary;
};
/* Identities of one converted record: descriptors first (in plan order), then identityMap
 * items. *out is new (idg_found_free). A value that is not a string or a number is ignored. */
void idg_extract(const struct xdm_plan *plan, const json_t *rec, struct idg_found **out,
                 size_t *n);
void idg_found_free(struct idg_found *f, size_t n);

enum idg_norm { IDG_NORM_OK = 0, IDG_NORM_EMPTY, IDG_NORM_TOO_LONG };
/* Normalise a value for its namespace: trim, lower-case for Email (code "Email" or idType
 * EMAIL). *out is new when IDG_NORM_OK, else NULL. */
enum idg_norm idg_normalise(const char *code, const char *id_type, const char *raw, char **out);

/* A namespace as the graph needs it. */
struct idg_ns {
    int64_t gid;
    int64_t nsid;
    char code[PSTORE_CODE_MAX];
    char id_type[PSTORE_TYPE_MAX];
    bool people;     /* false for NON_PEOPLE */
};
/* Resolve a namespace code of a sandbox through the registry and give it a gid in the graph
 * (inside `tx`). ING_ENOTFOUND when the sandbox has no such namespace. */
int idg_ns_resolve(struct idgraph *g, struct pstore_tx *tx, const char *sandbox, const char *code,
                   struct idg_ns *out, struct ing_err *err);

/* ---- A batch's identities, gathered in memory ---- */

struct idg_batch;
struct idg_batch *idg_batch_new(void);
void idg_batch_free(struct idg_batch *b); /* NULL is a no-op */
/* Remember namespace `ns` (so the guardrail knows its kind without a read). */
void idg_batch_note_ns(struct idg_batch *b, const struct idg_ns *ns);
/* One row's identities (gids and normalised values, borrowed); duplicates inside the row are
 * dropped. A row with no identity is ignored. */
void idg_batch_add_row(struct idg_batch *b, const int64_t *gids, const char *const *values,
                       size_t n);
size_t idg_batch_rows(const struct idg_batch *b);
size_t idg_batch_identities(const struct idg_batch *b);

struct idg_apply_result {
    int64_t identities_new;     /* identities the graph had not seen */
    int64_t identities_seen;    /* distinct identities of the batch */
    int64_t links;              /* edge rows written (self edges of lone identities included) */
    int64_t clusters_merged;    /* existing clusters folded into another */
    int64_t guardrail_removed;  /* identities removed by the guardrail */
};
/* Stitch the batch (order number `seq`, time `ts` ms) into the graph inside `tx`. */
int idg_apply_batch(struct idgraph *g, struct pstore_tx *tx, const struct idg_batch *b,
                    int64_t seq, int64_t ts, struct idg_apply_result *res, struct ing_err *err);

struct idg_remove_result {
    int64_t links_removed;
    int64_t identities_removed;
    int64_t clusters_after;     /* clusters the touched identities are in afterwards */
};
int idg_remove_batch(struct idgraph *g, struct pstore_tx *tx, int64_t seq,
                     struct idg_remove_result *res, struct ing_err *err);

/* ---- Lookups (thread-safe) ---- */

struct idg_member {
    int64_t id;
    struct idg_ns ns;
    char *value;
    int64_t first_ts, last_ts;
};
struct idg_cluster {
    int64_t label;             /* 0 when the identity is not in the graph */
    struct idg_member *members; /* the cluster, by id; just the identity itself when unknown */
    size_t n;
};
void idg_cluster_free(struct idg_cluster *c);

/* The cluster of (namespace code, value) in a sandbox; the value is normalised first. With
 * `stitch` false, only the identity itself. ING_ENOTFOUND when the namespace does not exist;
 * ING_EINVAL for a non-people namespace or an empty / over-long value; ING_ETOOBIG when the
 * cluster is over the limit (then only label is set). Unknown identity: label 0, n 1. */
int idg_lookup(struct idgraph *g, const char *sandbox, const char *code, const char *value,
               bool stitch, struct idg_cluster *out, struct ing_err *err);
/* The same by the namespace's numeric id. */
int idg_lookup_nsid(struct idgraph *g, const char *sandbox, int64_t nsid, const char *value,
                    bool stitch, struct idg_cluster *out, struct ing_err *err);

/* XIDs: an opaque, URL-safe id of one identity in a sandbox (base64url of "<nsid>|<value>").
 * decode: ING_EINVAL when `xid` is not one. */
char *idg_xid(int64_t nsid, const char *value);
int idg_xid_decode(const char *xid, int64_t *nsid, char **value);

#endif
