/*
 * profile.h - the profile store's read side: merge policies and profiles assembled at lookup.
 *
 * Fragments and events are written by the downstream profile stage (ingest/downstream.c) into
 * pstore. The general lookup merges at lookup time: it gathers the fragments of the identities the
 * policy allows (the whole cluster with identityGraph "pdg", the identity alone with "none"),
 * keeps per (identity, dataset) the newest fragment with the upserts after it patched in, and
 * merges them in the policy's order: "timestampOrdered" (newer wins) or "dataSetPrecedence"
 * (only the listed datasets; a dataset earlier in `order` wins). Switching policy therefore
 * changes the answer at once, as in AEP.
 *
 * Merge policies are documents (kind "mergePolicy") in the store, per sandbox, in AEP's shape
 * (notes/aep-api.md 7.3). One default per schema class: making a policy default un-defaults the
 * previous one in the same transaction. When no stored policy is the default, the built-in
 * PROFILE_BUILTIN_POLICY_ID ("Default Timebased": timestampOrdered with the private graph) is.
 *
 * Threads: all functions are thread-safe; documents returned are new.
 */
#ifndef ING_PROFILE_PROFILE_H
#define ING_PROFILE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "identity/idgraph.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define PROFILE_KIND_POLICY "mergePolicy"
#define PROFILE_BUILTIN_POLICY_ID "ingot-default-timebased"
#define PROFILE_SCHEMA "_xdm.context.profile"
#define PROFILE_EVENT_SCHEMA "_xdm.context.experienceevent"
#define PROFILE_EVENTS_LIMIT 1000   /* AEP's default page of experience events */

/* A merge policy, parsed. */
struct mp_policy {
    char id[80];
    bool stitch;        /* identityGraph "pdg" (else "none") */
    bool precedence;    /* attributeMerge "dataSetPrecedence" (else "timestampOrdered") */
    char **order;       /* dataSetPrecedence: dataset ids, highest priority first */
    size_t norder;
};
void mp_policy_clear(struct mp_policy *p);
/* Validate a policy document (or request body) and parse it. ING_EINVAL with err->field. */
int mp_policy_parse(const json_t *doc, struct mp_policy *out, struct ing_err *err);

/* ---- Merging (pure) ---- */

struct profile_frag {
    int member;          /* which identity of the cluster it is keyed by */
    const char *dataset;
    int64_t seq;         /* batch order */
    int64_t ts;
    bool upsert;
    const json_t *doc;   /* borrowed */
};
/* Merge fragments under a policy into a new object. Fragments of datasets the policy excludes
 * are ignored; *used (may be NULL) counts the others. *sources (may be NULL) receives a new
 * array of the datasets that took part, *last_ts (may be NULL) the newest time used (0: none). */
json_t *profile_merge(const struct mp_policy *p, const struct profile_frag *frags, size_t n,
                      json_t **sources, int64_t *last_ts, size_t *used);
/* Deep merge of src into dst: objects recurse, anything else replaces. */
void profile_deep_merge(json_t *dst, const json_t *src);
/* Keep only the listed dotted paths of an object (a new object). */
json_t *profile_project(const json_t *entity, const char *const *fields, size_t nfields);

/* ---- The service ---- */

struct profiles;

/* `st` and `g` borrowed. */
int profiles_new(struct profiles **out, struct store *st, struct idgraph *g, struct ing_err *err);
void profiles_free(struct profiles *pf); /* NULL is a no-op */

/* Merge policy API (mergePolicies). Errors: ING_EINVAL (bad body, err->field), ING_ENOTFOUND,
 * ING_ESTATE (the built-in policy cannot change). */
int profiles_policy_create(struct profiles *pf, const char *sandbox, const char *ims_org,
                           const json_t *body, json_t **out, struct ing_err *err);
int profiles_policy_get(struct profiles *pf, const char *sandbox, const char *id, json_t **out,
                        struct ing_err *err);
/* PUT (replace: `body` is a whole policy) or PATCH (`body` a JSON Patch array, or an object
 * whose top-level fields replace the policy's). */
int profiles_policy_update(struct profiles *pf, const char *sandbox, const char *id, bool patch,
                           const json_t *body, json_t **out, struct ing_err *err);
int profiles_policy_delete(struct profiles *pf, const char *sandbox, const char *id,
                           struct ing_err *err);
struct mp_list {
    const char *schema_name;   /* NULL = any */
    int is_default;            /* -1 any, 0 false, 1 true */
    int64_t start, limit;      /* limit <= 0: 20 */
    const char *order_by;      /* "name", "+name", "-name" or NULL (creation) */
};
/* *out: new array of policies (built-in first), filtered and paged; *total before paging. */
int profiles_policy_list(struct profiles *pf, const char *sandbox, const struct mp_list *q,
                         json_t **out, int64_t *total, struct ing_err *err);
/* The policy to use: `id` when given (ING_ENOTFOUND when unknown), else the default. */
int profiles_policy_resolve(struct profiles *pf, const char *sandbox, const char *id,
                            struct mp_policy *out, struct ing_err *err);

/* Profile of identity (code, value), or of an XID when code is NULL. *out is the AEP answer
 * {"<entityId>": {"entityId","sources","tags","identityGraph","mergePolicy","entity",
 * "lastModifiedAt"}}. ING_ENOTFOUND when no profile; ING_ETOOBIG when the graph is over the
 * limit; ING_EINVAL for a non-people namespace or a bad value. */
int profiles_entity(struct profiles *pf, const char *sandbox, const char *code, const char *value,
                    const struct mp_policy *p, const char *const *fields, size_t nfields,
                    json_t **out, struct ing_err *err);

/* The common case of a lookup (identity by namespace code, the sandbox's default policy, the
 * whole profile) from the stored answer of the identity's cluster: the exact bytes
 * profiles_entity would answer (serialised compactly), appended to *out. The stored answers are
 * rebuilt inside every pstore transaction that changes a cluster's graph or profile data, and
 * in the background after a merge policy changes (until then they carry the older policy's
 * stamp and are not used). ING_ENOTFOUND when there is no usable stored answer (unknown
 * identity, no profile, a policy without stitching, an answer not rebuilt yet): then ask
 * profiles_entity, which also gives the errors. *out is unchanged on failure. */
int profiles_entity_stored(struct profiles *pf, const char *sandbox, const char *code,
                           const char *value, struct buf *out, struct ing_err *err);
/* Wait until the stored answers rebuilt after policy changes are done (tests, benchmarks). */
void profiles_wait_rebuilt(struct profiles *pf);

struct profile_events_query {
    int64_t start_time, end_time;  /* ms; [start, end) */
    bool desc;                     /* orderby -timestamp */
    int64_t offset, limit;         /* paging */
};
/* Experience events of the profile of (code, value) / an XID. *children: new array of
 * {"relatedEntityId","entityId","timestamp","entity","lastModifiedAt"}; *total before paging;
 * *related the profile's entityId (new string). ING_ENOTFOUND when the identity has no
 * profile data at all. */
int profiles_events(struct profiles *pf, const char *sandbox, const char *code, const char *value,
                    const struct mp_policy *p, const struct profile_events_query *q,
                    const char *const *fields, size_t nfields, json_t **children,
                    int64_t *total, char **related, struct ing_err *err);

/* RFC 3339 text of epoch ms ("2020-08-11T00:00:00Z"). out >= 32 bytes. */
void profile_time_text(int64_t ms, char out[32]);

#endif
