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

#endif
