/*
 * xdm_plan.h - a schema compiled for ingestion: the validation plan and the Parquet layout.
 *
 * Input is a fully resolved XDM schema as the Schema Registry returns it for
 * `application/vnd.adobe.xed-full+json` ($ref and allOf resolved; property names without the
 * "xdm:" prefix; "meta:xdmType" on fields). The plan is a tree of fields, each with its XDM type,
 * its constraints and, for leaves, the Parquet column it lands in. Objects become Parquet groups,
 * arrays 3-level LISTs, maps MAPs with string keys (see docs/architecture.md, "XDM to Parquet").
 *
 * Ownership: xdm_plan_compile returns a new plan; it is immutable afterwards, so one plan may be
 * shared by any number of threads ingesting into the same dataset.
 */
#ifndef ING_SCHEMA_XDM_PLAN_H
#define ING_SCHEMA_XDM_PLAN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "parquet/pq_writer.h"
#include "util/err.h"

enum xdm_type {
    XDM_STRING, XDM_BOOLEAN, XDM_BYTE, XDM_SHORT, XDM_INT, XDM_LONG, XDM_DOUBLE,
    XDM_DATE, XDM_DATETIME, XDM_OBJECT, XDM_ARRAY, XDM_MAP,
};

enum xdm_format { XDM_FMT_NONE, XDM_FMT_EMAIL, XDM_FMT_URI, XDM_FMT_UUID, XDM_FMT_IPV4,
                  XDM_FMT_IPV6, XDM_FMT_HOSTNAME };

struct xdm_field {
    char *name;                 /* property name as it appears in records ("person", "_id") */
    char *path;                 /* dotted path from the root, for errors ("person.name.firstName") */
    enum xdm_type type;
    bool required;              /* listed in the parent's "required" */
    /* constraints (each only when present in the schema) */
    bool has_minimum, has_maximum;
    double minimum, maximum;    /* numbers; integer types also get their type's range */
    int64_t min_length, max_length; /* -1 when absent */
    char **enum_values;         /* string enum (or NULL) */
    size_t n_enum;
    regex_t *pattern;           /* POSIX ERE compiled from "pattern", or NULL */
    enum xdm_format format;
    /* structure */
    struct xdm_field *children; /* XDM_OBJECT: properties, sorted by name for binary search */
    size_t n_children;
    struct xdm_field *item;     /* XDM_ARRAY: the item; XDM_MAP: the value */
    /* Parquet */
    int column;                 /* leaf column index, -1 for objects/arrays/maps */
    int def_level;              /* definition level when this field is present (non-null) */
    int rep_level;              /* repetition level of this field's own values */
};

struct xdm_identity {
    char *path;                 /* dotted source property, e.g. "_techmarketingdemos.systemIdentifier.loyaltyId" */
    char *namespace_code;       /* "lumaLoyaltyId" */
    bool primary;
};

struct xdm_plan {
    char *schema_id;            /* $id */
    char *class_id;             /* meta:class */
    struct xdm_field root;      /* XDM_OBJECT */
    struct pq_schema *pq;       /* the lake layout; finished */
    struct xdm_identity *identities;
    size_t n_identities;
};

/* Compile a resolved schema plus its identity descriptors (a JSON array of
 * xdm:descriptorIdentity documents, may be NULL). Both borrowed. Errors name the offending
 * field (err->field). */
int xdm_plan_compile(const json_t *full_schema, const json_t *identity_descriptors,
                     struct xdm_plan **out, struct ing_err *err);
void xdm_plan_free(struct xdm_plan *plan); /* NULL is a no-op */

/* Look up a child by name (binary search); NULL when the object has no such property. */
const struct xdm_field *xdm_field_child(const struct xdm_field *obj, const char *name, size_t n);
/* Follow a dotted path from the root; NULL when absent. */
const struct xdm_field *xdm_plan_find(const struct xdm_plan *plan, const char *dotted_path);

#endif
