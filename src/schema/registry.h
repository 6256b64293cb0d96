/*
 * registry.h - the Schema Registry: XDM classes, field groups, data types, schemas, descriptors.
 *
 * Standard resources (XDM Individual Profile, XDM ExperienceEvent, the record and time-series
 * behaviours, Demographic Details, Personal Contact Details, Loyalty Details, Commerce Details,
 * IdentityMap, ... following adobe/xdm) ship inside the binary and live in the "global"
 * container of every sandbox. Tenant resources (custom classes, field groups, data types,
 * schemas, descriptors) are documents in the store, per sandbox, in the "tenant" container, with
 * custom fields under "_<tenant>".
 *
 * Resolution turns a schema (class + field groups via allOf/$ref) into the fully resolved form
 * of `application/vnd.adobe.xed-full+json`: one object with merged "properties", "required",
 * "meta:class", "meta:xdmType" on fields, "xdm:" prefixes removed from property names (the
 * original kept in "meta:xdmField").
 *
 * Ids: every resource has "$id" (e.g. https://ns.adobe.com/<tenant>/schemas/<hex>) and
 * "meta:altId" (e.g. _<tenant>.schemas.<hex>); lookups accept either, URL-encoded or not.
 *
 * Threads: all functions are thread-safe (the store is; the built-in set is immutable).
 */
#ifndef ING_SCHEMA_REGISTRY_H
#define ING_SCHEMA_REGISTRY_H

#include <jansson.h>

#include "store/store.h"
#include "util/err.h"

struct registry;

/* `tenant` is the tenant id without underscore ("techmarketingdemos"); borrowed store. */
int registry_new(struct registry **out, struct store *st, const char *tenant, struct ing_err *err);
void registry_free(struct registry *reg); /* NULL is a no-op */
const char *registry_tenant(const struct registry *reg);

/* Resolve a schema by $id or meta:altId into its full form. *full is new. ING_ENOTFOUND when the
 * sandbox has no such schema. */
int registry_resolve(struct registry *reg, const char *sandbox, const char *schema_id,
                     json_t **full, struct ing_err *err);
/* The xdm:descriptorIdentity descriptors whose xdm:sourceSchema is this schema, as a new JSON
 * array (possibly empty). */
int registry_identity_descriptors(struct registry *reg, const char *sandbox, const char *schema_id,
                                  json_t **out, struct ing_err *err);

/* Identity namespaces (Identity Service /data/core/idnamespace/identities): standard ones built in,
 * custom ones per sandbox. *out is new; ING_ENOTFOUND when unknown. Code match is
 * case-insensitive, as AEP's. */
int registry_namespace_get(struct registry *reg, const char *sandbox, const char *code,
                           json_t **out, struct ing_err *err);

/* ---- Additions for the Schema Registry and Identity Service APIs (api_schema.c,
 * api_namespace.c). Ids accept $id or meta:altId, URL-encoded or not. Documents returned are new
 * (deep copies); bodies passed in are borrowed. Errors: ING_ENOTFOUND (no such resource),
 * ING_EINVAL (bad body: err->msg says why, err->field where), ING_EEXIST (conflict). ---- */

enum registry_kind {
    REGISTRY_CLASS,
    REGISTRY_BEHAVIOR,   /* global only: record, time-series */
    REGISTRY_FIELDGROUP, /* "fieldgroups", legacy "mixins" */
    REGISTRY_DATATYPE,
    REGISTRY_SCHEMA,
};
enum registry_container { REGISTRY_GLOBAL, REGISTRY_TENANT };

/* URL segment ("classes", "behaviors", "fieldgroups", "mixins", "datatypes", "schemas") ->
 * kind; ING_EINVAL when unknown. */
int registry_kind_parse(const char *segment, enum registry_kind *out);
/* AEP's meta:resourceType of a kind ("classes", "behaviors", "mixins", "datatypes", "schemas"). */
const char *registry_kind_name(enum registry_kind kind);
/* "global" / "tenant" -> container; ING_EINVAL when unknown. */
int registry_container_parse(const char *segment, enum registry_container *out);

/* One resource as stored (xed) or resolved (xed-full). */
int registry_get(struct registry *reg, const char *sandbox, enum registry_container c,
                 enum registry_kind kind, const char *id, json_t **out, struct ing_err *err);
int registry_get_full(struct registry *reg, const char *sandbox, enum registry_container c,
                      enum registry_kind kind, const char *id, json_t **out, struct ing_err *err);
/* Every resource of a kind in a container, as a new JSON array of stored documents. */
int registry_list(struct registry *reg, const char *sandbox, enum registry_container c,
                  enum registry_kind kind, json_t **out, struct ing_err *err);
/* Tenant resources: create (assigns $id, meta:altId, version "1.0", ...; validates every $ref),
 * replace (PUT), patch (JSON Patch, RFC 6902), delete. *out (may be NULL) is the stored result. */
int registry_create(struct registry *reg, const char *sandbox, enum registry_kind kind,
                    const json_t *body, json_t **out, struct ing_err *err);
int registry_replace(struct registry *reg, const char *sandbox, enum registry_kind kind,
                     const char *id, const json_t *body, json_t **out, struct ing_err *err);
int registry_patch(struct registry *reg, const char *sandbox, enum registry_kind kind,
                   const char *id, const json_t *ops, json_t **out, struct ing_err *err);
int registry_delete(struct registry *reg, const char *sandbox, enum registry_kind kind,
                    const char *id, struct ing_err *err);
/* Number of tenant resources of a kind in a sandbox. */
int registry_count(struct registry *reg, const char *sandbox, enum registry_kind kind,
                   int64_t *out, struct ing_err *err);

/* Descriptors (tenant container). Create validates xdm:sourceSchema (a schema of the sandbox),
 * xdm:sourceProperty (a JSON pointer to a field of the resolved schema) and, for
 * xdm:descriptorIdentity, xdm:namespace (an existing namespace) and one primary per schema. */
int registry_descriptor_create(struct registry *reg, const char *sandbox, const json_t *body,
                               json_t **out, struct ing_err *err);
int registry_descriptor_replace(struct registry *reg, const char *sandbox, const char *id,
                                const json_t *body, json_t **out, struct ing_err *err);
int registry_descriptor_get(struct registry *reg, const char *sandbox, const char *id,
                            json_t **out, struct ing_err *err);
/* All descriptors of the sandbox as a new JSON array. */
int registry_descriptor_list(struct registry *reg, const char *sandbox, json_t **out,
                             struct ing_err *err);
int registry_descriptor_delete(struct registry *reg, const char *sandbox, const char *id,
                               struct ing_err *err);

/* Identity namespaces: list (standard then custom), create ({"name","code","idType",
 * "description"}; ING_EEXIST when the code is taken, case-insensitively), update (name and
 * description only). registry_namespace_get also accepts the numeric id as a string. */
int registry_namespace_list(struct registry *reg, const char *sandbox, json_t **out,
                            struct ing_err *err);
int registry_namespace_create(struct registry *reg, const char *sandbox, const json_t *body,
                              json_t **out, struct ing_err *err);
int registry_namespace_update(struct registry *reg, const char *sandbox, const char *id_or_code,
                              const json_t *body, json_t **out, struct ing_err *err);

/* Pure building blocks, without the store (unit tests, tools). */

/* Fetch the resource whose $id (no fragment) or meta:altId is `id`: *out is a new reference;
 * ING_ENOTFOUND when unknown. */
typedef int registry_lookup_fn(void *ctx, const char *id, json_t **out, struct ing_err *err);
/* Resolve a resource document (schema, class, field group, data type) into the xed-full form,
 * fetching every referenced resource through `lookup`. Cycle-safe and depth-limited. */
int registry_resolve_doc(const json_t *doc, registry_lookup_fn *lookup, void *ctx, json_t **full,
                         struct ing_err *err);
/* Apply a JSON Patch (RFC 6902: add, remove, replace, move, copy, test) to `doc` in place. On
 * failure `doc` may be half patched: patch a copy. */
int registry_json_patch(json_t *doc, const json_t *ops, struct ing_err *err);

#endif
