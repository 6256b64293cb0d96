/*
 * xdm_plan.c - compiling a resolved XDM schema (xed-full) into the ingestion plan: a tree of
 * typed fields with their constraints, plus the Parquet layout of the lake with the definition
 * and repetition level of every field.
 *
 * Compilation runs in two passes. The first builds the field tree from JSON Schema (types,
 * constraints, children sorted by name). The second lays out Parquet depth-first in that sorted
 * order, so that column indexes, the plan's children order and the shredder's walk all agree.
 * Every Parquet node is OPTIONAL (required-ness is a validation rule, not a storage rule), so
 * each level of nesting adds exactly one definition level: a field's null is always written with
 * def_level - 1, the level of its parent container.
 */
#include "schema/xdm_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/xdm_convert.h"
#include "util/buf.h"
#include "util/mem.h"

/* Resolved schemas are a few levels deep; this only stops pathological input. */
#define PLAN_MAX_DEPTH 64

static void field_free(struct xdm_field *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->path);
    for (size_t i = 0; i < f->n_enum; i++)
        free(f->enum_values[i]);
    free(f->enum_values);
    if (f->pattern) {
        regfree(f->pattern);
        free(f->pattern);
    }
    for (size_t i = 0; i < f->n_children; i++)
        field_free(&f->children[i]);
    free(f->children);
    if (f->item) {
        field_free(f->item);
        free(f->item);
    }
}

void xdm_plan_free(struct xdm_plan *plan)
{
    if (!plan)
        return;
    free(plan->schema_id);
    free(plan->class_id);
    field_free(&plan->root);
    pq_schema_free(plan->pq);
    for (size_t i = 0; i < plan->n_identities; i++) {
        free(plan->identities[i].path);
        free(plan->identities[i].namespace_code);
    }
    free(plan->identities);
    free(plan);
}

static int fail(struct ing_err *err, int code, const char *path, const char *msg)
{
    ing_err_set(err, code, "%s%s%s", path[0] ? path : "", path[0] ? ": " : "", msg);
    ing_err_field(err, path);
    return code;
}

/* The JSON Schema "type": a string, or an array like ["string","null"] whose first non-null
 * entry counts. NULL when absent. */
static const char *schema_type(const json_t *schema)
{
    const json_t *t = json_object_get(schema, "type");
    if (json_is_string(t))
        return json_string_value(t);
    if (json_is_array(t)) {
        size_t i;
        const json_t *v;
        json_array_foreach(t, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), "null") != 0)
                return json_string_value(v);
        }
    }
    return NULL;
}

static bool number_member(const json_t *schema, const char *key, double *out)
{
    const json_t *v = json_object_get(schema, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* Integer without meta:xdmType: the canonical XDM ranges (whose documented maxima are one above
 * the two's complement maxima) name byte/short/int; anything else is a long. */
static enum xdm_type infer_integer(const json_t *schema)
{
    double mn, mx;
    if (!number_member(schema, "minimum", &mn) || !number_member(schema, "maximum", &mx))
        return XDM_LONG;
    if (mn == -128.0 && (mx == 127.0 || mx == 128.0))
        return XDM_BYTE;
    if (mn == -32768.0 && (mx == 32767.0 || mx == 32768.0))
        return XDM_SHORT;
    if (mn == -2147483648.0 && (mx == 2147483647.0 || mx == 2147483648.0))
        return XDM_INT;
    return XDM_LONG;
}

static int field_type(const json_t *schema, const char *path, enum xdm_type *out,
                      struct ing_err *err)
{
    static const struct { const char *name; enum xdm_type type; } xdm_types[] = {
        {"string", XDM_STRING}, {"number", XDM_DOUBLE}, {"double", XDM_DOUBLE},
        {"long", XDM_LONG}, {"int", XDM_INT}, {"integer", XDM_INT}, {"short", XDM_SHORT},
        {"byte", XDM_BYTE}, {"date", XDM_DATE}, {"date-time", XDM_DATETIME},
        {"boolean", XDM_BOOLEAN}, {"object", XDM_OBJECT}, {"map", XDM_MAP},
        {"array", XDM_ARRAY},
    };
    const json_t *xt = json_object_get(schema, "meta:xdmType");
    const char *type = schema_type(schema);
    if (json_is_string(xt)) {
        const char *name = json_string_value(xt);
        for (size_t i = 0; i < ING_ARRAY_LEN(xdm_types); i++) {
            if (strcmp(name, xdm_types[i].name) == 0) {
                *out = xdm_types[i].type;
                /* An xdmType "object" that is really a map in JSON Schema terms. */
                if (*out == XDM_OBJECT && !json_object_get(schema, "properties") &&
                    json_is_object(json_object_get(schema, "additionalProperties")))
                    *out = XDM_MAP;
                return 0;
            }
        }
        return fail(err, ING_EINVAL, path, "unknown meta:xdmType");
    }
    if (!type) {
        if (json_is_object(json_object_get(schema, "properties"))) {
            *out = XDM_OBJECT;
            return 0;
        }
        return fail(err, ING_EINVAL, path, "field has no type");
    }
    if (strcmp(type, "string") == 0) {
        const char *format = json_string_value(json_object_get(schema, "format"));
        if (format && strcmp(format, "date") == 0)
            *out = XDM_DATE;
        else if (format && strcmp(format, "date-time") == 0)
            *out = XDM_DATETIME;
        else
            *out = XDM_STRING;
    } else if (strcmp(type, "number") == 0) {
        *out = XDM_DOUBLE;
    } else if (strcmp(type, "integer") == 0) {
        *out = infer_integer(schema);
    } else if (strcmp(type, "boolean") == 0) {
        *out = XDM_BOOLEAN;
    } else if (strcmp(type, "array") == 0) {
        *out = XDM_ARRAY;
    } else if (strcmp(type, "object") == 0) {
        bool has_props = json_object_get(schema, "properties") != NULL;
        bool has_values = json_is_object(json_object_get(schema, "additionalProperties"));
        *out = (!has_props && has_values) ? XDM_MAP : XDM_OBJECT;
    } else {
        return fail(err, ING_EINVAL, path, "unsupported JSON Schema type");
    }
    return 0;
}

static enum xdm_format field_format(const json_t *schema)
{
    static const struct { const char *name; enum xdm_format fmt; } formats[] = {
        {"email", XDM_FMT_EMAIL}, {"uri", XDM_FMT_URI}, {"uuid", XDM_FMT_UUID},
        {"ipv4", XDM_FMT_IPV4}, {"ipv6", XDM_FMT_IPV6}, {"hostname", XDM_FMT_HOSTNAME},
    };
    const char *format = json_string_value(json_object_get(schema, "format"));
    if (format)
        for (size_t i = 0; i < ING_ARRAY_LEN(formats); i++)
            if (strcmp(format, formats[i].name) == 0)
                return formats[i].fmt;
    return XDM_FMT_NONE; /* date/date-time are types; unknown formats are not enforced */
}

/* JSON Schema patterns are ECMAScript; POSIX ERE lacks the \d \w \s classes, which XDM patterns
 * use, so those are rewritten. Other escapes of punctuation mean the same in glibc's ERE. */
static char *pattern_to_ere(const char *p)
{
    struct buf out = {0};
    bool in_bracket = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\' && p[i + 1]) {
            char e = p[++i];
            const char *cls = NULL;
            switch (e) {
            case 'd': cls = in_bracket ? "0-9" : "[0-9]"; break;
            case 'w': cls = in_bracket ? "A-Za-z0-9_" : "[A-Za-z0-9_]"; break;
            case 's': cls = in_bracket ? "[:space:]" : "[[:space:]]"; break;
            case 'D': cls = in_bracket ? NULL : "[^0-9]"; break;
            case 'W': cls = in_bracket ? NULL : "[^A-Za-z0-9_]"; break;
            case 'S': cls = in_bracket ? NULL : "[^[:space:]]"; break;
            default: break;
            }
            if (cls) {
                buf_append_str(&out, cls);
            } else if (in_bracket) {
                buf_append_byte(&out, (uint8_t)e); /* "[\-.]": inside brackets, literal */
            } else {
                buf_append_byte(&out, '\\');
                buf_append_byte(&out, (uint8_t)e);
            }
            continue;
        }
        if (!in_bracket && c == '[') {
            in_bracket = true;
            buf_append_byte(&out, (uint8_t)c);
            if (p[i + 1] == '^')
                buf_append_byte(&out, (uint8_t)p[++i]);
            if (p[i + 1] == ']')
                buf_append_byte(&out, (uint8_t)p[++i]);
            continue;
        }
        if (in_bracket && c == ']')
            in_bracket = false;
        buf_append_byte(&out, (uint8_t)c);
    }
    char *s = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return s;
}

static int compile_constraints(const json_t *schema, struct xdm_field *f, struct ing_err *err)
{
    double v;
    f->min_length = f->max_length = -1;
    if (number_member(schema, "minimum", &v)) {
        f->has_minimum = true;
        f->minimum = v;
    }
    if (number_member(schema, "maximum", &v)) {
        f->has_maximum = true;
        f->maximum = v;
    }
    if (f->type == XDM_BYTE || f->type == XDM_SHORT || f->type == XDM_INT ||
        f->type == XDM_LONG) {
        int64_t lo, hi;
        xdm_int_range(f->type, &lo, &hi);
        if (!f->has_minimum || f->minimum < (double)lo)
            f->minimum = (double)lo;
        if (!f->has_maximum || f->maximum > (double)hi)
            f->maximum = (double)hi;
        f->has_minimum = f->has_maximum = true;
    }
    const json_t *len = json_object_get(schema, "minLength");
    if (json_is_integer(len) && json_integer_value(len) >= 0)
        f->min_length = json_integer_value(len);
    len = json_object_get(schema, "maxLength");
    if (json_is_integer(len) && json_integer_value(len) >= 0)
        f->max_length = json_integer_value(len);

    const json_t *en = json_object_get(schema, "enum");
    if (f->type == XDM_STRING && json_is_array(en) && json_array_size(en) > 0) {
        f->enum_values = xcalloc(json_array_size(en), sizeof(char *));
        size_t i;
        const json_t *ev;
        json_array_foreach(en, i, ev) {
            if (json_is_string(ev))
                f->enum_values[f->n_enum++] = xstrdup(json_string_value(ev));
        }
    }
    const char *pattern = json_string_value(json_object_get(schema, "pattern"));
    if (pattern && f->type == XDM_STRING) {
        char *ere = pattern_to_ere(pattern);
        f->pattern = xmalloc(sizeof(*f->pattern));
        int rc = regcomp(f->pattern, ere, REG_EXTENDED | REG_NOSUB);
        free(ere);
        if (rc != 0) {
            free(f->pattern);
            f->pattern = NULL;
            return fail(err, ING_EINVAL, f->path, "pattern is not a supported regular expression");
        }
    }
    f->format = f->type == XDM_STRING ? field_format(schema) : XDM_FMT_NONE;
    return 0;
}

static int cmp_field_name(const void *a, const void *b)
{
    return strcmp(((const struct xdm_field *)a)->name, ((const struct xdm_field *)b)->name);
}

static int compile_field(const json_t *schema, struct xdm_field *f, int depth,
                         struct ing_err *err);

static int compile_object(const json_t *schema, struct xdm_field *f, int depth,
                          struct ing_err *err)
{
    const json_t *props = json_object_get(schema, "properties");
    if (props && !json_is_object(props))
        return fail(err, ING_EINVAL, f->path, "\"properties\" must be an object");
    size_t n = props ? json_object_size(props) : 0;
    if (n == 0)
        return 0;
    f->children = xcalloc(n, sizeof(struct xdm_field));
    const char *key;
    const json_t *sub;
    json_object_foreach((json_t *)props, key, sub) {
        struct xdm_field *c = &f->children[f->n_children++];
        c->column = -1;
        c->min_length = c->max_length = -1;
        c->name = xstrdup(key);
        c->path = f->path[0] ? xasprintf("%s.%s", f->path, key) : xstrdup(key);
        if (!json_is_object(sub))
            return fail(err, ING_EINVAL, c->path, "field schema must be an object");
        int rc = compile_field(sub, c, depth + 1, err);
        if (rc < 0)
            return rc;
    }
    qsort(f->children, f->n_children, sizeof(struct xdm_field), cmp_field_name);
    for (size_t i = 1; i < f->n_children; i++)
        if (strcmp(f->children[i - 1].name, f->children[i].name) == 0)
            return fail(err, ING_EINVAL, f->children[i].path, "duplicate property");

    const json_t *req = json_object_get(schema, "required");
    size_t i;
    const json_t *r;
    json_array_foreach(req, i, r) {
        const char *name = json_string_value(r);
        if (!name)
            continue;
        struct xdm_field *c = (struct xdm_field *)xdm_field_child(f, name, strlen(name));
        if (c)
            c->required = true; /* a required name without a property cannot be checked */
    }
    return 0;
}

static int compile_field(const json_t *schema, struct xdm_field *f, int depth,
                         struct ing_err *err)
{
    int rc;
    if (depth > PLAN_MAX_DEPTH)
        return fail(err, ING_ETOOBIG, f->path, "schema nested too deeply");
    if ((rc = field_type(schema, f->path, &f->type, err)) < 0)
        return rc;
    if ((rc = compile_constraints(schema, f, err)) < 0)
        return rc;
    switch (f->type) {
    case XDM_OBJECT:
        return compile_object(schema, f, depth, err);
    case XDM_ARRAY:
    case XDM_MAP: {
        bool is_array = f->type == XDM_ARRAY;
        const json_t *sub = json_object_get(schema, is_array ? "items" : "additionalProperties");
        if (!json_is_object(sub))
            return fail(err, ING_EINVAL, f->path,
                        is_array ? "array without an \"items\" schema"
                                 : "map without an \"additionalProperties\" value schema");
        f->item = xcalloc(1, sizeof(struct xdm_field));
        f->item->column = -1;
        f->item->min_length = f->item->max_length = -1;
        f->item->name = xstrdup(is_array ? "element" : "value");
        f->item->path = xasprintf("%s%s", f->path, is_array ? "[]" : "{}");
        return compile_field(sub, f->item, depth + 1, err);
    }
    default:
        return 0;
    }
}

/* Whether a subtree produces any Parquet column; objects without properties do not. */
static bool has_leaves(const struct xdm_field *f)
{
    switch (f->type) {
    case XDM_OBJECT:
        for (size_t i = 0; i < f->n_children; i++)
            if (has_leaves(&f->children[i]))
                return true;
        return false;
    case XDM_ARRAY:
    case XDM_MAP:
        return has_leaves(f->item);
    default:
        return true;
    }
}

static void leaf_physical(enum xdm_type t, enum pq_phys *phys, enum pq_logical *logical)
{
    switch (t) {
    case XDM_BOOLEAN: *phys = PQ_BOOLEAN; *logical = PQ_LOG_NONE; break;
    case XDM_BYTE: *phys = PQ_INT32; *logical = PQ_LOG_INT8; break;
    case XDM_SHORT: *phys = PQ_INT32; *logical = PQ_LOG_INT16; break;
    case XDM_INT: *phys = PQ_INT32; *logical = PQ_LOG_INT32; break;
    case XDM_LONG: *phys = PQ_INT64; *logical = PQ_LOG_NONE; break;
    case XDM_DOUBLE: *phys = PQ_DOUBLE; *logical = PQ_LOG_NONE; break;
    case XDM_DATE: *phys = PQ_INT32; *logical = PQ_LOG_DATE; break;
    case XDM_DATETIME: *phys = PQ_INT64; *logical = PQ_LOG_TIMESTAMP_MILLIS; break;
    default: *phys = PQ_BYTE_ARRAY; *logical = PQ_LOG_STRING; break;
    }
}

/* Second pass: levels for every field, Parquet nodes for the ones with leaves. */
static int layout(struct pq_schema *s, int pq_parent, struct xdm_field *f, int parent_def,
                  int parent_rep, struct ing_err *err)
{
    f->def_level = parent_def + 1;
    f->rep_level = parent_rep;
    f->column = -1;
    bool leaves = has_leaves(f);
    int node = 0, rc;
    switch (f->type) {
    case XDM_OBJECT:
        if (leaves && (node = pq_schema_add_group(s, pq_parent, f->name, PQ_OPTIONAL,
                                                  PQ_LOG_NONE)) < 0)
            break;
        for (size_t i = 0; i < f->n_children; i++)
            if ((rc = layout(s, node, &f->children[i], f->def_level, f->rep_level, err)) < 0)
                return rc;
        return 0;
    case XDM_ARRAY:
    case XDM_MAP: {
        bool is_array = f->type == XDM_ARRAY;
        int repeated = 0;
        if (leaves) {
            node = pq_schema_add_group(s, pq_parent, f->name, PQ_OPTIONAL,
                                       is_array ? PQ_LOG_LIST : PQ_LOG_MAP);
            if (node < 0)
                break;
            repeated = pq_schema_add_group(s, node, is_array ? "list" : "key_value", PQ_REPEATED,
                                           PQ_LOG_NONE);
            if (repeated < 0) {
                node = repeated;
                break;
            }
            if (!is_array && (node = pq_schema_add_leaf(s, repeated, "key", PQ_REQUIRED,
                                                        PQ_BYTE_ARRAY, PQ_LOG_STRING)) < 0)
                break;
        }
        return layout(s, repeated, f->item, f->def_level + 1, f->rep_level + 1, err);
    }
    default: {
        enum pq_phys phys;
        enum pq_logical logical;
        leaf_physical(f->type, &phys, &logical);
        node = f->column = pq_schema_add_leaf(s, pq_parent, f->name, PQ_OPTIONAL, phys, logical);
        break;
    }
    }
    if (node < 0)
        return fail(err, ING_EINTERNAL, f->path, "the Parquet schema rejected the field");
    return 0;
}

/* "/_tenant/systemIdentifier/loyaltyId" (JSON pointer) or dotted -> dotted, with any "xdm:"
 * prefixes dropped as the resolved schema drops them. */
static char *identity_path(const char *src)
{
    struct buf out = {0};
    const char *p = src;
    bool pointer = *p == '/';
    if (pointer)
        p++;
    while (*p) {
        const char *end = p + strcspn(p, pointer ? "/" : ".");
        if (end - p > 4 && strncmp(p, "xdm:", 4) == 0)
            p += 4;
        if (out.len)
            buf_append_byte(&out, '.');
        for (; p < end; p++) {
            if (pointer && p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                buf_append_byte(&out, p[1] == '0' ? '~' : '/');
                p++;
            } else {
                buf_append_byte(&out, (uint8_t)*p);
            }
        }
        if (*p)
            p++;
    }
    char *s = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return s;
}

static int compile_identities(struct xdm_plan *plan, const json_t *descs, struct ing_err *err)
{
    if (!descs)
        return 0;
    if (!json_is_array(descs))
        return fail(err, ING_EINVAL, "", "identity descriptors must be a JSON array");
    plan->identities = xcalloc(json_array_size(descs) + 1, sizeof(struct xdm_identity));
    size_t i;
    const json_t *d;
    json_array_foreach(descs, i, d) {
        const char *type = json_string_value(json_object_get(d, "@type"));
        if (!type || strcmp(type, "xdm:descriptorIdentity") != 0)
            continue;
        const char *prop = json_string_value(json_object_get(d, "xdm:sourceProperty"));
        const char *ns = json_string_value(json_object_get(d, "xdm:namespace"));
        if (!prop || !ns)
            return fail(err, ING_EINVAL, "",
                        "identity descriptor needs xdm:sourceProperty and xdm:namespace");
        char *path = identity_path(prop);
        const struct xdm_field *f = xdm_plan_find(plan, path);
        if (!f || f->type == XDM_OBJECT || f->type == XDM_ARRAY || f->type == XDM_MAP) {
            int rc = fail(err, ING_EINVAL, path,
                          f ? "identity field must be a scalar field"
                            : "identity descriptor names a field the schema does not have");
            free(path);
            return rc;
        }
        struct xdm_identity *id = &plan->identities[plan->n_identities++];
        id->path = path;
        id->namespace_code = xstrdup(ns);
        id->primary = json_is_true(json_object_get(d, "xdm:isPrimary"));
    }
    return 0;
}

int xdm_plan_compile(const json_t *full_schema, const json_t *identity_descriptors,
                     struct xdm_plan **out, struct ing_err *err)
{
    struct xdm_plan *plan = NULL;
    int rc;
    *out = NULL;
    if (!json_is_object(full_schema)) {
        rc = fail(err, ING_EINVAL, "", "the schema must be a JSON object");
        goto out;
    }
    const char *type = schema_type(full_schema);
    if (type && strcmp(type, "object") != 0) {
        rc = fail(err, ING_EINVAL, "", "the schema must be of type object");
        goto out;
    }
    plan = xcalloc(1, sizeof(*plan));
    const char *id = json_string_value(json_object_get(full_schema, "$id"));
    const char *cls = json_string_value(json_object_get(full_schema, "meta:class"));
    plan->schema_id = xstrdup(id ? id : "");
    plan->class_id = xstrdup(cls ? cls : "");
    plan->root.name = xstrdup("");
    plan->root.path = xstrdup("");
    plan->root.type = XDM_OBJECT;
    plan->root.column = -1;
    plan->root.min_length = plan->root.max_length = -1;
    if ((rc = compile_object(full_schema, &plan->root, 0, err)) < 0)
        goto out;

    plan->pq = pq_schema_new();
    plan->root.def_level = 0;
    plan->root.rep_level = 0;
    for (size_t i = 0; i < plan->root.n_children; i++)
        if ((rc = layout(plan->pq, 0, &plan->root.children[i], 0, 0, err)) < 0)
            goto out;
    pq_schema_finish(plan->pq);
    if ((rc = compile_identities(plan, identity_descriptors, err)) < 0)
        goto out;
    *out = plan;
    plan = NULL;
    rc = 0;
out:
    xdm_plan_free(plan);
    return rc;
}

const struct xdm_field *xdm_field_child(const struct xdm_field *obj, const char *name, size_t n)
{
    if (!obj || obj->type != XDM_OBJECT)
        return NULL;
    size_t lo = 0, hi = obj->n_children;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *cn = obj->children[mid].name;
        /* strcmp order over (name, n): compare the common prefix, then the shorter sorts first */
        size_t cl = strlen(cn);
        int c = memcmp(cn, name, cl < n ? cl : n);
        if (c == 0)
            c = cl < n ? -1 : (cl > n ? 1 : 0);
        if (c == 0)
            return &obj->children[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct xdm_field *xdm_plan_find(const struct xdm_plan *plan, const char *dotted_path)
{
    if (!plan || !dotted_path || !*dotted_path)
        return NULL;
    const struct xdm_field *f = &plan->root;
    const char *p = dotted_path;
    for (;;) {
        size_t n = strcspn(p, ".");
        /* Arrays are transparent: "productListItems.SKU" names the SKU of every item. */
        while (f->type == XDM_ARRAY)
            f = f->item;
        f = xdm_field_child(f, p, n);
        if (!f || p[n] == '\0')
            return f;
        p += n + 1;
    }
}
