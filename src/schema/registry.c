/*
 * registry.c - the Schema Registry: standard and tenant XDM resources, resolution to xed-full,
 * JSON Patch, descriptors and identity namespaces.
 *
 * Layout: the built-in resources (xdm_std) are parsed once in registry_new and never change, so
 * any thread may read them. Tenant resources are store documents per sandbox, keyed by the hex
 * part of their $id, in kinds "xdm.class", "xdm.fieldgroup", "xdm.datatype", "xdm.schema",
 * "xdm.descriptor"; custom identity namespaces are "identity.namespace" documents keyed by their
 * lower-cased code, with a per-sandbox id counter in "identity.seq".
 *
 * Resolution (registry_resolve_doc) is a pure function over a "fetch resource by $id" callback:
 * it starts at the document, follows allOf/$ref to classes, behaviours and field groups (whose
 * "properties", directly or in "definitions", merge into the root), expands property-level $refs
 * to data types recursively, merges objects defined by several field groups, renames "xdm:x" to
 * "x" and "@id" to "_id" (the original kept in "meta:xdmField"), nests other prefixes the way
 * AEP does ("repo:createDate" -> "_repo"."createDate") and sets "meta:xdmType" on every field.
 *
 * "meta:class" and "meta:extends" are derived, never trusted from a body: a schema's class is the
 * first resource with meta:resourceType "classes" reached through its allOf (a class is its own
 * class); meta:extends lists every class, behaviour, field group and base resource reached through
 * allOf/$ref (not the data types of fields), as AEP's registry reports them. Both are stored on
 * tenant schemas at create/replace/patch time and recomputed in every xed-full answer.
 */
#include "schema/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema/xdm_std.h"
#include "util/clock.h"
#include "util/id.h"
#include "util/mem.h"

#define RES_MAX_DEPTH 48   /* nesting of refs and fields; XDM's deepest standard path is ~10 */
#define NS_FIRST_CUSTOM_ID 10000000 /* custom namespace ids start here, clear of standard ones */

struct registry {
    struct store *st;
    char *tenant;
    json_t *globals;    /* $id -> document (immutable) */
    json_t *global_alt; /* meta:altId -> $id */
    json_t *std_ns;     /* array of standard namespaces (immutable) */
};

static const char *const KIND_STORE[] = {
    [REGISTRY_CLASS] = "xdm.class",         [REGISTRY_BEHAVIOR] = NULL,
    [REGISTRY_FIELDGROUP] = "xdm.fieldgroup", [REGISTRY_DATATYPE] = "xdm.datatype",
    [REGISTRY_SCHEMA] = "xdm.schema",
};
static const char *const KIND_NAME[] = {
    [REGISTRY_CLASS] = "classes",   [REGISTRY_BEHAVIOR] = "behaviors",
    [REGISTRY_FIELDGROUP] = "mixins", [REGISTRY_DATATYPE] = "datatypes",
    [REGISTRY_SCHEMA] = "schemas",
};
#define DESCRIPTOR_KIND "xdm.descriptor"
#define NAMESPACE_KIND "identity.namespace"
#define NSSEQ_KIND "identity.seq"

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

int registry_kind_parse(const char *segment, enum registry_kind *out)
{
    static const struct { const char *name; enum registry_kind kind; } map[] = {
        {"classes", REGISTRY_CLASS},       {"behaviors", REGISTRY_BEHAVIOR},
        {"fieldgroups", REGISTRY_FIELDGROUP}, {"mixins", REGISTRY_FIELDGROUP},
        {"datatypes", REGISTRY_DATATYPE},  {"schemas", REGISTRY_SCHEMA},
    };
    for (size_t i = 0; segment && i < ING_ARRAY_LEN(map); i++) {
        if (strcmp(segment, map[i].name) == 0) {
            *out = map[i].kind;
            return 0;
        }
    }
    return ING_EINVAL;
}

const char *registry_kind_name(enum registry_kind kind)
{
    return (unsigned)kind < ING_ARRAY_LEN(KIND_NAME) ? KIND_NAME[kind] : "unknown";
}

int registry_container_parse(const char *segment, enum registry_container *out)
{
    if (segment && strcmp(segment, "global") == 0)
        *out = REGISTRY_GLOBAL;
    else if (segment && strcmp(segment, "tenant") == 0)
        *out = REGISTRY_TENANT;
    else
        return ING_EINVAL;
    return 0;
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A resource id from a URL: percent-decoded (once more, harmless when the HTTP layer already
 * decoded it) and with "https:/x" mended, since some path normalisers collapse "//". New string. */
static char *normalize_id(const char *id)
{
    size_t n = strlen(id);
    char *out = xmalloc(n + 2);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (id[i] == '%' && i + 2 < n && hexval(id[i + 1]) >= 0 && hexval(id[i + 2]) >= 0) {
            out[k++] = (char)(hexval(id[i + 1]) * 16 + hexval(id[i + 2]));
            i += 2;
        } else {
            out[k++] = id[i];
        }
    }
    out[k] = '\0';
    static const char *const schemes[] = {"https:/", "http:/"};
    for (size_t s = 0; s < ING_ARRAY_LEN(schemes); s++) {
        size_t pl = strlen(schemes[s]);
        if (strncmp(out, schemes[s], pl) == 0 && out[pl] != '/') {
            memmove(out + pl + 1, out + pl, k - pl + 1);
            out[pl] = '/';
            break;
        }
    }
    return out;
}

static void random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t rnd[32];
    if (nbytes > sizeof(rnd))
        nbytes = sizeof(rnd);
    id_random(rnd, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

static bool str_in_array(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void append_unique(json_t *arr, const char *s)
{
    if (!str_in_array(arr, s))
        json_array_append_new(arr, json_string(s));
}

/* ------------------------------------------------------------------------------------------ */
/* JSON pointer and JSON Patch (RFC 6901, RFC 6902)                                           */

/* Unescape one pointer token (~1 -> '/', ~0 -> '~') into a new string; NULL if malformed. */
static char *ptr_token(const char *start, size_t len)
{
    char *tok = xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (start[i] == '~') {
            if (i + 1 >= len || (start[i + 1] != '0' && start[i + 1] != '1')) {
                free(tok);
                return NULL;
            }
            tok[k++] = start[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            tok[k++] = start[i];
        }
    }
    tok[k] = '\0';
    return tok;
}

/* Array index token: "0" or digits without a leading zero; -1 when not an index. */
static long array_index(const char *tok)
{
    if (!tok[0] || (tok[0] == '0' && tok[1]) || strlen(tok) > 9)
        return -1;
    for (const char *p = tok; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return strtol(tok, NULL, 10);
}

/* Split a pointer into its parent pointer's target and its last token. The parent must exist.
 * *last is new; NULL *parent for the root pointer "". */
static int ptr_parent(json_t *doc, const char *ptr, json_t **parent, char **last,
                      struct ing_err *err)
{
    *parent = NULL;
    *last = NULL;
    if (ptr[0] == '\0')
        return 0;
    if (ptr[0] != '/')
        return ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\" must start with '/'", ptr);
    json_t *node = doc;
    const char *p = ptr + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char *tok = ptr_token(p, len);
        if (!tok)
            return ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\" has a bad ~ escape", ptr);
        if (!slash) {
            *parent = node;
            *last = tok;
            return 0;
        }
        json_t *next = NULL;
        if (json_is_object(node)) {
            next = json_object_get(node, tok);
        } else if (json_is_array(node)) {
            long i = array_index(tok);
            next = i >= 0 ? json_array_get(node, (size_t)i) : NULL;
        }
        free(tok);
        if (!next)
            return ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": path does not exist", ptr);
        node = next;
        p = slash + 1;
    }
}

static json_t *ptr_get(json_t *doc, const char *ptr, struct ing_err *err)
{
    json_t *parent;
    char *last;
    if (ptr_parent(doc, ptr, &parent, &last, err))
        return NULL;
    if (!parent)
        return doc;
    json_t *v = NULL;
    if (json_is_object(parent)) {
        v = json_object_get(parent, last);
    } else if (json_is_array(parent)) {
        long i = array_index(last);
        v = i >= 0 ? json_array_get(parent, (size_t)i) : NULL;
    }
    free(last);
    if (!v)
        ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": path does not exist", ptr);
    return v;
}

/* Remove the value at ptr; *removed (may be NULL) gets a new reference to it. */
static int ptr_remove(json_t *doc, const char *ptr, json_t **removed, struct ing_err *err)
{
    json_t *parent;
    char *last;
    int rc = ptr_parent(doc, ptr, &parent, &last, err);
    if (rc)
        return rc;
    if (!parent)
        return ing_err_set(err, ING_EINVAL, "the whole document cannot be removed");
    json_t *v = NULL;
    if (json_is_object(parent)) {
        v = json_object_get(parent, last);
        if (v) {
            if (removed)
                *removed = json_incref(v);
            json_object_del(parent, last);
        }
    } else if (json_is_array(parent)) {
        long i = array_index(last);
        v = i >= 0 ? json_array_get(parent, (size_t)i) : NULL;
        if (v) {
            if (removed)
                *removed = json_incref(v);
            json_array_remove(parent, (size_t)i);
        }
    }
    free(last);
    if (!v)
        return ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": path does not exist", ptr);
    return 0;
}

/* Add (or, with must_exist, replace) `value` (new reference, always consumed) at ptr. */
static int ptr_add(json_t *doc, const char *ptr, json_t *value, bool must_exist,
                   struct ing_err *err)
{
    json_t *parent;
    char *last;
    int rc = ptr_parent(doc, ptr, &parent, &last, err);
    if (rc)
        goto out;
    if (!parent) { /* the root: replace the document's contents */
        if (!json_is_object(doc) || !json_is_object(value)) {
            rc = ing_err_set(err, ING_EINVAL, "the document root can only be replaced by an object");
            goto out;
        }
        json_object_clear(doc);
        json_object_update(doc, value);
        goto out;
    }
    if (json_is_object(parent)) {
        if (must_exist && !json_object_get(parent, last)) {
            rc = ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": path does not exist", ptr);
            goto out;
        }
        json_object_set(parent, last, value);
    } else if (json_is_array(parent)) {
        size_t size = json_array_size(parent);
        long i = strcmp(last, "-") == 0 && !must_exist ? (long)size : array_index(last);
        if (i < 0 || (size_t)i > size || (must_exist && (size_t)i >= size)) {
            rc = ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": bad array index", ptr);
            goto out;
        }
        if (must_exist)
            json_array_set(parent, (size_t)i, value);
        else
            json_array_insert(parent, (size_t)i, value);
    } else {
        rc = ing_err_set(err, ING_EINVAL, "JSON pointer \"%s\": parent is not a container", ptr);
    }
out:
    free(last);
    json_decref(value);
    return rc;
}

int registry_json_patch(json_t *doc, const json_t *ops, struct ing_err *err)
{
    if (!json_is_array(ops))
        return ing_err_set(err, ING_EINVAL, "a JSON Patch body must be an array of operations");
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        const char *name = jstr(op, "op");
        const char *path = jstr(op, "path");
        json_t *value = json_object_get(op, "value");
        const char *from = jstr(op, "from");
        int rc;
        if (!name || !path)
            return ing_err_set(err, ING_EINVAL, "patch operation %zu needs \"op\" and \"path\"", i);
        if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) {
            if (!value)
                return ing_err_set(err, ING_EINVAL, "patch operation %zu (%s) needs \"value\"", i,
                                   name);
            rc = ptr_add(doc, path, json_deep_copy(value), name[0] == 'r', err);
        } else if (strcmp(name, "remove") == 0) {
            rc = ptr_remove(doc, path, NULL, err);
        } else if (strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) {
            if (!from)
                return ing_err_set(err, ING_EINVAL, "patch operation %zu (%s) needs \"from\"", i,
                                   name);
            json_t *v = NULL;
            if (name[0] == 'm') {
                size_t fl = strlen(from);
                if (strncmp(path, from, fl) == 0 && path[fl] == '/')
                    return ing_err_set(err, ING_EINVAL, "cannot move \"%s\" into itself", from);
                rc = ptr_remove(doc, from, &v, err);
            } else {
                json_t *src = ptr_get(doc, from, err);
                rc = src ? 0 : ING_EINVAL;
                v = src ? json_deep_copy(src) : NULL;
            }
            if (!rc)
                rc = ptr_add(doc, path, v, false, err);
        } else if (strcmp(name, "test") == 0) {
            json_t *cur = ptr_get(doc, path, err);
            rc = cur && value && json_equal(cur, value) ? 0 : ING_EINVAL;
            if (rc && cur)
                ing_err_set(err, ING_EINVAL, "patch test failed at \"%s\"", path);
        } else {
            return ing_err_set(err, ING_EINVAL, "unknown patch operation \"%s\"", name);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Resolution                                                                                 */

struct resolver {
    registry_lookup_fn *lookup;
    void *ctx;
    struct ing_err *err;
    json_t *cache;   /* id -> fetched document, kept alive until the end */
    json_t *extends; /* ids of every component reached through allOf/$ref */
    char *class_id;  /* first class met */
    const json_t *comp_stack[RES_MAX_DEPTH]; /* components being merged (diamonds are fine) */
    int ncomp;
    const json_t *type_stack[RES_MAX_DEPTH]; /* data types being expanded (cycles are errors) */
    int ntype;
};

static int resolve_field(struct resolver *r, const json_t *base, const json_t *prop, int depth,
                         json_t **out);

/* Keywords that describe structure, handled separately, or that only make sense on a resource. */
static bool structural_key(const char *k)
{
    static const char *const keys[] = {"$ref", "properties", "required", "items",
                                       "additionalProperties", "allOf", "anyOf", "oneOf",
                                       "definitions", "patternProperties", "$schema"};
    for (size_t i = 0; i < ING_ARRAY_LEN(keys); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static bool resource_key(const char *k)
{
    static const char *const keys[] = {
        "$id", "meta:altId", "meta:resourceType", "version", "meta:containerId",
        "meta:extends", "meta:abstract", "meta:extensible", "meta:tags", "meta:status",
        "meta:createdDate", "meta:intendedToExtend", "meta:registryMetadata",
        "meta:tenantNamespace", "meta:sandboxId", "meta:sandboxType", "imsOrg", "auditable",
        "meta:class", "meta:immutableTags", "meta:usageCount", "refs", "description"};
    for (size_t i = 0; i < ING_ARRAY_LEN(keys); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* Copy the non-structural keywords of src into dst (deep); existing keys in dst are replaced only
 * when `override`. */
static void copy_keywords(json_t *dst, const json_t *src, bool override, bool skip_resource_keys)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) {
        if (structural_key(k) || (skip_resource_keys && resource_key(k)))
            continue;
        if (!override && json_object_get(dst, k))
            continue;
        json_object_set_new(dst, k, json_deep_copy(v));
    }
}

static int cached_lookup(struct resolver *r, const char *id, const json_t **out)
{
    json_t *doc = json_object_get(r->cache, id);
    if (!doc) {
        struct ing_err sub;
        ing_err_clear(&sub);
        int rc = r->lookup(r->ctx, id, &doc, &sub);
        if (rc == ING_ENOTFOUND || (!rc && !json_is_object(doc))) {
            json_decref(doc);
            return ing_err_set(r->err, ING_ENOTFOUND, "referenced resource %s does not exist", id);
        }
        if (rc)
            return ing_err_set(r->err, rc, "%s", sub.msg);
        json_object_set_new(r->cache, id, doc);
        /* the document may be known under its altId too */
        const char *real = jstr(doc, "$id");
        if (real && strcmp(real, id) != 0 && !json_object_get(r->cache, real))
            json_object_set(r->cache, real, doc);
    }
    *out = doc;
    return 0;
}

/* Follow a "$ref" ("<id>", "<id>#/pointer", "#/pointer"; "%23" accepted for '#'). *doc_out is the
 * document the target lives in (the base for its own local refs), *node_out the target. */
static int follow_ref(struct resolver *r, const json_t *base, const char *ref,
                      const json_t **doc_out, const json_t **node_out, bool *external)
{
    char *id = xstrdup(ref);
    const char *ptr = "";
    char *hash = strchr(id, '#');
    char *enc = strstr(id, "%23");
    if (enc && (!hash || enc < hash)) {
        *enc = '\0';
        ptr = enc + 3;
    } else if (hash) {
        *hash = '\0';
        ptr = hash + 1;
    }
    int rc = 0;
    const json_t *doc = base;
    *external = id[0] != '\0';
    if (*external) {
        rc = cached_lookup(r, id, &doc);
        if (rc)
            goto out;
    }
    const json_t *node = doc;
    if (ptr[0]) {
        struct ing_err sub;
        node = ptr_get((json_t *)doc, ptr, &sub);
        if (!node) {
            rc = ing_err_set(r->err, ING_ENOTFOUND, "reference %s: no %s in %s", ref, ptr,
                             id[0] ? id : "this resource");
            goto out;
        }
    }
    *doc_out = doc;
    *node_out = node;
out:
    free(id);
    return rc;
}

/* Normalise one required name; NULL when it has no place in the resolved form. New string. */
static char *norm_required(const char *name)
{
    if (strncmp(name, "xdm:", 4) == 0)
        return xstrdup(name + 4);
    if (name[0] == '@')
        return xasprintf("_%s", name + 1);
    if (strchr(name, ':'))
        return NULL;
    return xstrdup(name);
}

static void merge_required(json_t *dst_req, const json_t *src_req)
{
    size_t i;
    json_t *v;
    json_array_foreach(src_req, i, v) {
        if (!json_is_string(v))
            continue;
        char *n = norm_required(json_string_value(v));
        if (n)
            append_unique(dst_req, n);
        free(n);
    }
}

/* Put a resolved field into props under `name` (already normalised), merging objects that
 * several components define. Takes ownership of field. */
static void merge_field(json_t *props, const char *name, json_t *field)
{
    json_t *cur = json_object_get(props, name);
    if (!cur) {
        json_object_set_new(props, name, field);
        return;
    }
    json_t *cp = json_object_get(cur, "properties");
    json_t *fp = json_object_get(field, "properties");
    if (json_is_object(cp) && json_is_object(fp)) {
        const char *k;
        json_t *v;
        json_object_foreach(fp, k, v)
            merge_field(cp, k, json_incref(v));
        json_t *freq = json_object_get(field, "required");
        if (json_is_array(freq)) {
            json_t *creq = json_object_get(cur, "required");
            if (!json_is_array(creq)) {
                creq = json_array();
                json_object_set_new(cur, "required", creq);
            }
            size_t i;
            json_array_foreach(freq, i, v)
                if (json_is_string(v))
                    append_unique(creq, json_string_value(v));
        }
    }
    /* Conflicting scalar definitions: the first component wins, as the first class/field group
     * listed in the schema defines the field. */
    json_decref(field);
}

/* Add a field named as in the source document: "xdm:x" -> "x", "@id" -> "_id", "ns:x" -> "_ns"."x",
 * recording the source name in meta:xdmField. Takes ownership of field. */
static void add_named_field(json_t *props, const char *src_name, json_t *field)
{
    const char *colon = strchr(src_name, ':');
    if (src_name[0] == '@' || (colon && strncmp(src_name, "xdm:", 4) == 0)) {
        if (!json_object_get(field, "meta:xdmField"))
            json_object_set_new(field, "meta:xdmField", json_string(src_name));
        char *name = src_name[0] == '@' ? xasprintf("_%s", src_name + 1) : xstrdup(src_name + 4);
        merge_field(props, name, field);
        free(name);
        return;
    }
    if (colon && colon != src_name && !strstr(src_name, "//") && colon[1]) {
        if (!json_object_get(field, "meta:xdmField"))
            json_object_set_new(field, "meta:xdmField", json_string(src_name));
        char *group = xasprintf("_%.*s", (int)(colon - src_name), src_name);
        json_t *inner = json_object();
        json_object_set_new(inner, colon + 1, field);
        json_t *wrap = json_pack("{ss ss so}", "type", "object", "meta:xdmType", "object",
                                 "properties", inner);
        merge_field(props, group, wrap);
        free(group);
        return;
    }
    merge_field(props, src_name, field);
}

static bool on_stack(const json_t *const *stack, int n, const json_t *node)
{
    for (int i = 0; i < n; i++)
        if (stack[i] == node)
            return true;
    return false;
}

/* Merge a component (resource, definition or allOf item) into props/required. */
static int merge_component(struct resolver *r, const json_t *base, const json_t *node,
                           json_t *props, json_t *required, int depth)
{
    if (depth > RES_MAX_DEPTH || r->ncomp >= RES_MAX_DEPTH)
        return ing_err_set(r->err, ING_ETOOBIG, "schema nesting deeper than %d", RES_MAX_DEPTH);
    if (!json_is_object(node))
        return 0;
    if (on_stack(r->comp_stack, r->ncomp, node))
        return 0; /* a component including itself adds nothing new */
    r->comp_stack[r->ncomp++] = node;
    int rc = 0;

    const char *ref = jstr(node, "$ref");
    if (ref) {
        const json_t *tdoc, *tnode;
        bool external;
        rc = follow_ref(r, base, ref, &tdoc, &tnode, &external);
        if (rc)
            goto out;
        const char *tid = jstr(tdoc, "$id");
        if (external && tid && tdoc != base) {
            append_unique(r->extends, tid);
            const char *rt = jstr(tdoc, "meta:resourceType");
            if (!r->class_id && rt && strcmp(rt, "classes") == 0)
                r->class_id = xstrdup(tid);
        }
        rc = merge_component(r, tdoc, tnode, props, required, depth + 1);
        if (rc)
            goto out;
    }

    json_t *nprops = json_object_get(node, "properties");
    if (json_is_object(nprops)) {
        const char *k;
        json_t *v;
        json_object_foreach(nprops, k, v) {
            json_t *field = NULL;
            rc = resolve_field(r, base, v, depth + 1, &field);
            if (rc) {
                if (r->err && !r->err->field[0])
                    ing_err_field(r->err, k);
                goto out;
            }
            add_named_field(props, k, field);
        }
    }
    json_t *req = json_object_get(node, "required");
    if (json_is_array(req))
        merge_required(required, req);

    json_t *all = json_object_get(node, "allOf");
    if (json_is_array(all)) {
        size_t i;
        json_t *item;
        json_array_foreach(all, i, item) {
            rc = merge_component(r, base, item, props, required, depth + 1);
            if (rc)
                goto out;
        }
    } else if (node == base && !ref) {
        /* A resource whose definitions no allOf lists (some hand-written field groups): its
         * definitions are its fields. */
        json_t *defs = json_object_get(node, "definitions");
        const char *k;
        json_t *v;
        json_object_foreach(defs, k, v) {
            rc = merge_component(r, base, v, props, required, depth + 1);
            if (rc)
                goto out;
        }
    }
out:
    r->ncomp--;
    return rc;
}

static const char *first_type(const json_t *field)
{
    json_t *t = json_object_get(field, "type");
    if (json_is_string(t))
        return json_string_value(t);
    if (json_is_array(t)) { /* ["string","null"] */
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v)
            if (json_is_string(v) && strcmp(json_string_value(v), "null") != 0)
                return json_string_value(v);
    }
    return NULL;
}

/* The XDM type of an integer field from its range, as AEP's field editor writes them. */
static const char *integer_xdm_type(const json_t *field)
{
    json_t *mn = json_object_get(field, "minimum");
    json_t *mx = json_object_get(field, "maximum");
    if (!json_is_number(mn) || !json_is_number(mx))
        return "int";
    double lo = json_number_value(mn), hi = json_number_value(mx);
    if (lo >= -128 && hi <= 128)
        return "byte";
    if (lo >= -32768 && hi <= 32768)
        return "short";
    if (lo >= -2147483648.0 && hi <= 2147483648.0)
        return "int";
    return "long";
}

static void set_xdm_type(json_t *field)
{
    const char *t = first_type(field);
    json_t *props = json_object_get(field, "properties");
    json_t *ap = json_object_get(field, "additionalProperties");
    if (!t) {
        t = json_object_get(field, "items") ? "array" : "object";
        json_object_set_new(field, "type", json_string(t));
    }
    if (json_is_string(json_object_get(field, "meta:xdmType")))
        return;
    const char *x = t;
    if (strcmp(t, "string") == 0) {
        const char *fmt = jstr(field, "format");
        if (fmt && strcmp(fmt, "date") == 0)
            x = "date";
        else if (fmt && strcmp(fmt, "date-time") == 0)
            x = "date-time";
    } else if (strcmp(t, "integer") == 0) {
        x = integer_xdm_type(field);
    } else if (strcmp(t, "object") == 0) {
        x = json_is_object(ap) && !json_is_object(props) ? "map" : "object";
    }
    json_object_set_new(field, "meta:xdmType", json_string(x));
}

static int resolve_field(struct resolver *r, const json_t *base, const json_t *prop, int depth,
                         json_t **out)
{
    *out = NULL;
    if (!json_is_object(prop))
        return ing_err_set(r->err, ING_EINVAL, "a property definition must be a JSON object");
    if (depth > RES_MAX_DEPTH)
        return ing_err_set(r->err, ING_ETOOBIG, "schema nesting deeper than %d", RES_MAX_DEPTH);
    json_t *field = json_object();
    json_t *props = json_object();
    json_t *req = json_array();
    int rc = 0;

    const char *ref = jstr(prop, "$ref");
    if (ref) {
        const json_t *tdoc, *tnode;
        bool external;
        rc = follow_ref(r, base, ref, &tdoc, &tnode, &external);
        if (rc)
            goto out;
        if (on_stack(r->type_stack, r->ntype, tnode) || r->ntype >= RES_MAX_DEPTH) {
            rc = ing_err_set(r->err, ING_EINVAL, "data type %s contains itself", ref);
            goto out;
        }
        r->type_stack[r->ntype++] = tnode;
        /* the data type's own components must not count as the schema's */
        json_t *saved_ext = r->extends;
        r->extends = json_array();
        int saved_ncomp = r->ncomp;
        r->ncomp = 0; /* a data type used twice in one path is a cycle, caught by type_stack */
        const json_t *saved_stack[RES_MAX_DEPTH];
        memcpy(saved_stack, r->comp_stack, sizeof(saved_stack));
        rc = merge_component(r, tdoc, tnode, props, req, depth + 1);
        memcpy(r->comp_stack, saved_stack, sizeof(saved_stack));
        r->ncomp = saved_ncomp;
        json_decref(r->extends);
        r->extends = saved_ext;
        r->ntype--;
        if (rc)
            goto out;
        if (tnode == tdoc) { /* a whole data type: only its title and type describe the field */
            if (json_object_get(tdoc, "title"))
                json_object_set_new(field, "title", json_deep_copy(json_object_get(tdoc, "title")));
            if (json_object_get(tdoc, "type"))
                json_object_set_new(field, "type", json_deep_copy(json_object_get(tdoc, "type")));
        } else {
            copy_keywords(field, tnode, true, true);
        }
        if (external && jstr(tdoc, "$id"))
            json_object_set_new(field, "meta:referencedFrom", json_string(jstr(tdoc, "$id")));
        copy_keywords(field, prop, true, false);
    } else {
        copy_keywords(field, prop, true, false);
        if (json_object_get(prop, "properties") || json_object_get(prop, "allOf")) {
            rc = merge_component(r, base, prop, props, req, depth + 1);
            if (rc)
                goto out;
        }
        json_t *items = json_object_get(prop, "items");
        if (json_is_object(items)) {
            json_t *it = NULL;
            rc = resolve_field(r, base, items, depth + 1, &it);
            if (rc) {
                json_decref(it);
                goto out;
            }
            json_object_set_new(field, "items", it);
        }
        json_t *ap = json_object_get(prop, "additionalProperties");
        if (json_is_object(ap) && json_object_size(ap) > 0) {
            json_t *val = NULL;
            rc = resolve_field(r, base, ap, depth + 1, &val);
            if (rc) {
                json_decref(val);
                goto out;
            }
            json_object_set_new(field, "additionalProperties", val);
        } else if (ap) {
            json_object_set_new(field, "additionalProperties", json_deep_copy(ap));
        }
    }
    if (json_object_size(props) > 0 || (ref && first_type(field) &&
                                         strcmp(first_type(field), "object") == 0)) {
        json_object_set(field, "properties", props);
        if (!first_type(field))
            json_object_set_new(field, "type", json_string("object"));
    }
    if (json_array_size(req) > 0)
        json_object_set(field, "required", req);
    set_xdm_type(field);
out:
    json_decref(props);
    json_decref(req);
    if (rc) {
        json_decref(field);
        return rc;
    }
    *out = field;
    return 0;
}

int registry_resolve_doc(const json_t *doc, registry_lookup_fn *lookup, void *ctx, json_t **full,
                         struct ing_err *err)
{
    *full = NULL;
    if (!json_is_object(doc))
        return ing_err_set(err, ING_EINVAL, "a resource must be a JSON object");
    struct resolver r = {.lookup = lookup, .ctx = ctx, .err = err};
    r.cache = json_object();
    r.extends = json_array();
    json_t *props = json_object();
    json_t *req = json_array();
    json_t *out = NULL;
    int rc = merge_component(&r, doc, doc, props, req, 0);
    if (rc)
        goto done;

    out = json_object();
    copy_keywords(out, doc, true, false);
    const char *rt = jstr(doc, "meta:resourceType");
    const char *self = jstr(doc, "$id");
    const char *cls = rt && strcmp(rt, "classes") == 0 && self ? self : r.class_id;
    /* derived, never trusted from the document: a patch may have removed the class */
    if (cls)
        json_object_set_new(out, "meta:class", json_string(cls));
    else
        json_object_del(out, "meta:class");
    json_object_set(out, "meta:extends", r.extends);
    json_object_set_new(out, "type", json_string("object"));
    json_object_set_new(out, "meta:xdmType", json_string("object"));
    json_object_set(out, "properties", props);
    if (json_array_size(req) > 0)
        json_object_set(out, "required", req);
done:
    free(r.class_id);
    json_decref(r.cache);
    json_decref(r.extends);
    json_decref(props);
    json_decref(req);
    *full = out;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Registry object and lookups                                                                */

int registry_new(struct registry **out, struct store *st, const char *tenant, struct ing_err *err)
{
    *out = NULL;
    if (!tenant || !tenant[0] || !id_is_safe(tenant))
        return ing_err_set(err, ING_EINVAL, "tenant id \"%s\" is not a safe id",
                           tenant ? tenant : "");
    struct registry *reg = xcalloc(1, sizeof(*reg));
    reg->st = st;
    reg->tenant = xstrdup(tenant);
    int rc = xdm_std_load(&reg->globals, err);
    if (rc) {
        registry_free(reg);
        return rc;
    }
    reg->global_alt = json_object();
    const char *id;
    json_t *doc;
    json_object_foreach(reg->globals, id, doc) {
        const char *alt = jstr(doc, "meta:altId");
        if (alt)
            json_object_set_new(reg->global_alt, alt, json_string(id));
    }
    reg->std_ns = xdm_std_namespaces();
    *out = reg;
    return 0;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    json_decref(reg->globals);
    json_decref(reg->global_alt);
    json_decref(reg->std_ns);
    free(reg->tenant);
    free(reg);
}

const char *registry_tenant(const struct registry *reg)
{
    return reg->tenant;
}

static json_t *global_get(const struct registry *reg, const char *id)
{
    json_t *doc = json_object_get(reg->globals, id);
    if (!doc) {
        const char *real = jstr(reg->global_alt, id);
        if (real)
            doc = json_object_get(reg->globals, real);
    }
    return doc;
}

/* Tenant ids: https://ns.adobe.com/<tenant>/<segment>/<hex> or _<tenant>.<segment>.<hex>.
 * Fills the kind and the store key (hex, a safe id). */
static bool parse_tenant_id(const struct registry *reg, const char *id, enum registry_kind *kind,
                            char *key, size_t keysz)
{
    size_t tl = strlen(reg->tenant);
    const char *rest;
    char sep;
    if (strncmp(id, "https://ns.adobe.com/", 21) == 0 && strncmp(id + 21, reg->tenant, tl) == 0 &&
        id[21 + tl] == '/') {
        rest = id + 22 + tl;
        sep = '/';
    } else if (id[0] == '_' && strncmp(id + 1, reg->tenant, tl) == 0 && id[1 + tl] == '.') {
        rest = id + 2 + tl;
        sep = '.';
    } else {
        return false;
    }
    const char *cut = strchr(rest, sep);
    if (!cut || (size_t)(cut - rest) >= 32)
        return false;
    char seg[32];
    memcpy(seg, rest, (size_t)(cut - rest));
    seg[cut - rest] = '\0';
    if (registry_kind_parse(seg, kind) || *kind == REGISTRY_BEHAVIOR)
        return false;
    const char *hex = cut + 1;
    if (!id_is_safe(hex) || strlen(hex) >= keysz)
        return false;
    snprintf(key, keysz, "%s", hex);
    return true;
}

struct lookup_ctx {
    struct registry *reg;
    const char *sandbox;
};

static int tenant_fetch(struct registry *reg, const char *sandbox, const char *id,
                        enum registry_kind *kind_out, json_t **out, struct ing_err *err)
{
    enum registry_kind kind;
    char key[80];
    *out = NULL;
    if (!parse_tenant_id(reg, id, &kind, key, sizeof(key)))
        return ing_err_set(err, ING_ENOTFOUND, "resource %s not found", id);
    int rc = store_get(reg->st, sandbox, KIND_STORE[kind], key, out, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "resource %s not found", id);
    if (kind_out)
        *kind_out = kind;
    return rc;
}

static int registry_lookup(void *vctx, const char *id, json_t **out, struct ing_err *err)
{
    struct lookup_ctx *c = vctx;
    json_t *g = global_get(c->reg, id);
    if (g) {
        *out = json_incref(g);
        return 0;
    }
    return tenant_fetch(c->reg, c->sandbox, id, NULL, out, err);
}

static int resolve_in_sandbox(struct registry *reg, const char *sandbox, const json_t *doc,
                              json_t **full, struct ing_err *err)
{
    struct lookup_ctx c = {reg, sandbox};
    return registry_resolve_doc(doc, registry_lookup, &c, full, err);
}

static bool kind_matches(const json_t *doc, enum registry_kind kind)
{
    const char *rt = jstr(doc, "meta:resourceType");
    return rt && strcmp(rt, registry_kind_name(kind)) == 0;
}

int registry_get(struct registry *reg, const char *sandbox, enum registry_container c,
                 enum registry_kind kind, const char *id, json_t **out, struct ing_err *err)
{
    *out = NULL;
    char *nid = normalize_id(id);
    int rc = 0;
    if (c == REGISTRY_GLOBAL) {
        json_t *g = global_get(reg, nid);
        if (!g || !kind_matches(g, kind))
            rc = ing_err_set(err, ING_ENOTFOUND, "resource %s not found in the global container",
                             nid);
        else
            *out = json_deep_copy(g);
    } else {
        enum registry_kind k;
        json_t *doc = NULL;
        rc = tenant_fetch(reg, sandbox, nid, &k, &doc, err);
        if (!rc && k != kind) {
            json_decref(doc);
            doc = NULL;
            rc = ing_err_set(err, ING_ENOTFOUND, "resource %s not found", nid);
        }
        *out = doc;
    }
    free(nid);
    return rc;
}

int registry_get_full(struct registry *reg, const char *sandbox, enum registry_container c,
                      enum registry_kind kind, const char *id, json_t **out, struct ing_err *err)
{
    json_t *doc = NULL;
    *out = NULL;
    int rc = registry_get(reg, sandbox, c, kind, id, &doc, err);
    if (!rc)
        rc = resolve_in_sandbox(reg, sandbox, doc, out, err);
    json_decref(doc);
    return rc;
}

int registry_resolve(struct registry *reg, const char *sandbox, const char *schema_id,
                     json_t **full, struct ing_err *err)
{
    return registry_get_full(reg, sandbox, REGISTRY_TENANT, REGISTRY_SCHEMA, schema_id, full, err);
}

int registry_list(struct registry *reg, const char *sandbox, enum registry_container c,
                  enum registry_kind kind, json_t **out, struct ing_err *err)
{
    json_t *arr = json_array();
    int rc = 0;
    *out = NULL;
    if (c == REGISTRY_GLOBAL) {
        for (size_t i = 0; i < xdm_std_data_len; i++) { /* generated sorted by $id */
            json_t *g = json_object_get(reg->globals, xdm_std_data[i].id);
            if (g && kind_matches(g, kind))
                json_array_append_new(arr, json_deep_copy(g));
        }
    } else if (KIND_STORE[kind]) {
        json_t *docs = NULL;
        struct store_query q = {0};
        rc = store_list(reg->st, sandbox, KIND_STORE[kind], &q, &docs, err);
        if (!rc) {
            const char *k;
            json_t *v;
            json_object_foreach(docs, k, v)
                json_array_append(arr, v);
        }
        json_decref(docs);
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int registry_count(struct registry *reg, const char *sandbox, enum registry_kind kind,
                   int64_t *out, struct ing_err *err)
{
    *out = 0;
    if (!KIND_STORE[kind])
        return 0;
    struct store_query q = {0};
    return store_count(reg->st, sandbox, KIND_STORE[kind], &q, out, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Tenant resources: create, replace, patch, delete                                           */

/* Custom fields of tenant classes and field groups live under "_<tenant>", as in AEP; a root
 * property with another name would collide with present or future standard fields. */
static int check_tenant_fields(const struct registry *reg, const json_t *doc, struct ing_err *err)
{
    char *ns = xasprintf("_%s", reg->tenant);
    int rc = 0;
    const json_t *holders[64];
    size_t n = 0;
    holders[n++] = doc;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "definitions"), k, v) {
        if (n < ING_ARRAY_LEN(holders))
            holders[n++] = v;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        json_object_foreach(json_object_get(holders[i], "properties"), k, v) {
            if (strcmp(k, ns) != 0) {
                ing_err_field(err, k);
                rc = ing_err_set(err, ING_EINVAL,
                                 "custom field \"%s\" must be defined under the tenant namespace "
                                 "object \"%s\"",
                                 k, ns);
                break;
            }
        }
    }
    free(ns);
    return rc;
}

/* Resolve a would-be document to check that every reference exists and to derive meta:class and
 * meta:extends (stored on schemas, as AEP returns them). */
static int validate_doc(struct registry *reg, const char *sandbox, enum registry_kind kind,
                        json_t *doc, struct ing_err *err)
{
    if (!jstr(doc, "title") || !jstr(doc, "title")[0])
        return ing_err_set(err, ING_EINVAL, "\"title\" is required");
    json_t *type = json_object_get(doc, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "object") != 0))
        return ing_err_set(err, ING_EINVAL, "\"type\" must be \"object\"");
    json_t *all = json_object_get(doc, "allOf");
    if (all && !json_is_array(all))
        return ing_err_set(err, ING_EINVAL, "\"allOf\" must be an array");
    if (kind == REGISTRY_CLASS || kind == REGISTRY_FIELDGROUP) {
        int rc = check_tenant_fields(reg, doc, err);
        if (rc)
            return rc;
    }
    json_t *full = NULL;
    int rc = resolve_in_sandbox(reg, sandbox, doc, &full, err);
    if (rc) {
        json_decref(full);
        if (rc != ING_ENOTFOUND && rc != ING_ETOOBIG)
            return rc;
        /* a missing or runaway reference is a bad request body, the message says which */
        if (err)
            err->code = ING_EINVAL;
        return ING_EINVAL;
    }
    if (kind == REGISTRY_SCHEMA) {
        const char *cls = jstr(full, "meta:class");
        if (!json_is_array(all) || json_array_size(all) == 0 || !cls) {
            json_decref(full);
            return ing_err_set(err, ING_EINVAL,
                               "a schema must reference a class in \"allOf\" ({\"$ref\": <class $id>})");
        }
        json_object_set_new(doc, "meta:class", json_string(cls));
        json_object_set(doc, "meta:extends", json_object_get(full, "meta:extends"));
    }
    json_decref(full);
    return 0;
}

static void bump_version(json_t *doc)
{
    const char *v = jstr(doc, "version");
    long major = 1, minor = 0;
    if (v) {
        char *end;
        major = strtol(v, &end, 10);
        minor = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
        if (major < 0 || major > 1000000 || minor < 0 || minor > 100000000)
            major = 1, minor = 0;
    }
    char buf[48];
    snprintf(buf, sizeof(buf), "%ld.%ld", major, minor + 1);
    json_object_set_new(doc, "version", json_string(buf));
}

static void set_registry_meta(json_t *doc, int64_t created, int64_t now)
{
    json_t *m = json_object_get(doc, "meta:registryMetadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(doc, "meta:registryMetadata", m);
    }
    json_object_set_new(m, "repo:createdDate", json_integer(created));
    json_object_set_new(m, "repo:lastModifiedDate", json_integer(now));
}

/* The dates of `doc`, a new version of `old`: created as `old` says (now when it says nothing),
 * modified now. */
static void renew_registry_meta(json_t *doc, const json_t *old)
{
    json_t *created = json_object_get(json_object_get(old, "meta:registryMetadata"),
                                      "repo:createdDate");
    int64_t now = clock_now_ms();
    set_registry_meta(doc, json_is_integer(created) ? json_integer_value(created) : now, now);
}

/* Fields the registry owns: a client cannot set or change them. */
static const char *const OWNED_FIELDS[] = {"$id", "meta:altId", "meta:resourceType",
                                           "meta:containerId", "meta:tenantNamespace", "version",
                                           "meta:registryMetadata"};

static void restore_owned(json_t *doc, const json_t *from)
{
    for (size_t i = 0; i < ING_ARRAY_LEN(OWNED_FIELDS); i++) {
        json_t *v = json_object_get(from, OWNED_FIELDS[i]);
        if (v)
            json_object_set_new(doc, OWNED_FIELDS[i], json_deep_copy(v));
        else
            json_object_del(doc, OWNED_FIELDS[i]);
    }
}

int registry_create(struct registry *reg, const char *sandbox, enum registry_kind kind,
                    const json_t *body, json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!KIND_STORE[kind])
        return ing_err_set(err, ING_EINVAL, "%s cannot be created", registry_kind_name(kind));
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    json_t *doc = json_deep_copy(body);
    char hex[65];
    random_hex(hex, 16);
    const char *seg = registry_kind_name(kind);
    json_t *ids = json_object();
    json_object_set_new(ids, "$id", json_sprintf("https://ns.adobe.com/%s/%s/%s", reg->tenant, seg,
                                                 hex));
    json_object_set_new(ids, "meta:altId", json_sprintf("_%s.%s.%s", reg->tenant, seg, hex));
    json_object_set_new(ids, "meta:resourceType", json_string(seg));
    json_object_set_new(ids, "meta:containerId", json_string("tenant"));
    json_object_set_new(ids, "meta:tenantNamespace", json_sprintf("_%s", reg->tenant));
    json_object_set_new(ids, "version", json_string("1.0"));
    restore_owned(doc, ids);
    json_decref(ids);
    if (!json_object_get(doc, "type"))
        json_object_set_new(doc, "type", json_string("object"));
    json_object_set_new(doc, "meta:xdmType", json_string("object"));
    bool is_schema = kind == REGISTRY_SCHEMA;
    if (!json_object_get(doc, "meta:extensible"))
        json_object_set_new(doc, "meta:extensible", json_boolean(!is_schema));
    if (!json_object_get(doc, "meta:abstract"))
        json_object_set_new(doc, "meta:abstract", json_boolean(!is_schema));
    int64_t now = clock_now_ms();
    set_registry_meta(doc, now, now);

    int rc = validate_doc(reg, sandbox, kind, doc, err);
    if (!rc)
        rc = store_insert(reg->st, sandbox, KIND_STORE[kind], hex, doc, err);
    if (!rc && out)
        *out = json_incref(doc);
    json_decref(doc);
    return rc;
}

/* Write `doc` (a changed copy of `old`) back: owned fields restored, validated, version bumped. */
static int store_changed(struct registry *reg, const char *sandbox, enum registry_kind kind,
                         const json_t *old, json_t *doc, json_t **out, struct ing_err *err)
{
    if (!json_is_object(doc))
        return ing_err_set(err, ING_EINVAL, "the resource must stay a JSON object");
    restore_owned(doc, old);
    json_object_set_new(doc, "meta:xdmType", json_string("object"));
    bump_version(doc);
    renew_registry_meta(doc, old);
    int rc = validate_doc(reg, sandbox, kind, doc, err);
    if (rc)
        return rc;
    enum registry_kind k;
    char key[80];
    if (!parse_tenant_id(reg, jstr(old, "$id"), &k, key, sizeof(key)))
        return ing_err_set(err, ING_EINTERNAL, "stored resource has a foreign $id");
    rc = store_update(reg->st, sandbox, KIND_STORE[kind], key, doc, err);
    if (!rc && out)
        *out = json_incref(doc);
    return rc;
}

int registry_replace(struct registry *reg, const char *sandbox, enum registry_kind kind,
                     const char *id, const json_t *body, json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    json_t *old = NULL;
    int rc = registry_get(reg, sandbox, REGISTRY_TENANT, kind, id, &old, err);
    if (rc)
        return rc;
    json_t *doc = json_deep_copy(body);
    rc = store_changed(reg, sandbox, kind, old, doc, out, err);
    json_decref(doc);
    json_decref(old);
    return rc;
}

int registry_patch(struct registry *reg, const char *sandbox, enum registry_kind kind,
                   const char *id, const json_t *ops, json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    json_t *old = NULL;
    int rc = registry_get(reg, sandbox, REGISTRY_TENANT, kind, id, &old, err);
    if (rc)
        return rc;
    json_t *doc = json_deep_copy(old);
    rc = registry_json_patch(doc, ops, err);
    if (!rc)
        rc = store_changed(reg, sandbox, kind, old, doc, out, err);
    json_decref(doc);
    json_decref(old);
    return rc;
}

int registry_delete(struct registry *reg, const char *sandbox, enum registry_kind kind,
                    const char *id, struct ing_err *err)
{
    char *nid = normalize_id(id);
    enum registry_kind k;
    char key[80];
    int rc;
    if (!KIND_STORE[kind] || !parse_tenant_id(reg, nid, &k, key, sizeof(key)) || k != kind)
        rc = ing_err_set(err, ING_ENOTFOUND, "resource %s not found", nid);
    else
        rc = store_delete(reg->st, sandbox, KIND_STORE[kind], key, err);
    free(nid);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Identity namespaces                                                                        */

static const char *const ID_TYPES[] = {"COOKIE", "CROSS_DEVICE", "DEVICE", "EMAIL",
                                       "MOBILE", "PHONE",        "NON_PEOPLE"};

static const char *canonical_id_type(const char *s)
{
    for (size_t i = 0; s && i < ING_ARRAY_LEN(ID_TYPES); i++)
        if (strcasecmp(s, ID_TYPES[i]) == 0)
            return ID_TYPES[i];
    return NULL;
}

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static bool alnum_only(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s))
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static int custom_namespaces(struct registry *reg, const char *sandbox, json_t **out,
                             struct ing_err *err)
{
    struct store_query q = {0};
    return store_list(reg->st, sandbox, NAMESPACE_KIND, &q, out, err);
}

int registry_namespace_list(struct registry *reg, const char *sandbox, json_t **out,
                            struct ing_err *err)
{
    json_t *custom = NULL;
    *out = NULL;
    int rc = custom_namespaces(reg, sandbox, &custom, err);
    if (rc)
        return rc;
    json_t *arr = json_deep_copy(reg->std_ns);
    const char *k;
    json_t *v;
    json_object_foreach(custom, k, v)
        json_array_append(arr, v);
    json_decref(custom);
    *out = arr;
    return 0;
}

int registry_namespace_get(struct registry *reg, const char *sandbox, const char *code,
                           json_t **out, struct ing_err *err)
{
    *out = NULL;
    if (!code || !code[0])
        return ing_err_set(err, ING_ENOTFOUND, "namespace \"\" not found");
    bool numeric = all_digits(code);
    long long num = numeric && strlen(code) < 18 ? strtoll(code, NULL, 10) : -1;
    size_t i;
    json_t *v;
    json_array_foreach(reg->std_ns, i, v) {
        if (strcasecmp(jstr(v, "code"), code) == 0) {
            *out = json_deep_copy(v);
            return 0;
        }
    }
    int rc = 0;
    if (alnum_only(code)) {
        char *key = lower_dup(code);
        json_t *doc = NULL;
        rc = store_get(reg->st, sandbox, NAMESPACE_KIND, key, &doc, err);
        free(key);
        if (!rc) {
            *out = doc;
            return 0;
        }
        if (rc != ING_ENOTFOUND)
            return rc;
    }
    if (numeric) {
        json_array_foreach(reg->std_ns, i, v) {
            if (json_integer_value(json_object_get(v, "id")) == num) {
                *out = json_deep_copy(v);
                return 0;
            }
        }
        json_t *custom = NULL;
        rc = custom_namespaces(reg, sandbox, &custom, err);
        if (rc)
            return rc;
        const char *k;
        json_object_foreach(custom, k, v) {
            if (json_integer_value(json_object_get(v, "id")) == num) {
                *out = json_incref(v);
                break;
            }
        }
        json_decref(custom);
        if (*out)
            return 0;
    }
    return ing_err_set(err, ING_ENOTFOUND, "namespace \"%s\" not found", code);
}

static int check_text(const json_t *body, const char *key, bool required, struct ing_err *err)
{
    json_t *v = json_object_get(body, key);
    if (!v && !required)
        return 0;
    if (!json_is_string(v) || (required && !json_string_value(v)[0]) ||
        json_string_length(v) > 1024) {
        ing_err_field(err, key);
        return ing_err_set(err, ING_EINVAL, "\"%s\" must be a non-empty string", key);
    }
    return 0;
}

int registry_namespace_create(struct registry *reg, const char *sandbox, const json_t *body,
                              json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    int rc = check_text(body, "name", true, err);
    if (!rc)
        rc = check_text(body, "code", true, err);
    if (!rc)
        rc = check_text(body, "description", false, err);
    if (rc)
        return rc;
    const char *code = jstr(body, "code");
    if (!alnum_only(code) || strlen(code) > 64) {
        ing_err_field(err, "code");
        return ing_err_set(err, ING_EINVAL,
                           "\"code\" may contain only letters and digits (at most 64)");
    }
    const char *type = canonical_id_type(jstr(body, "idType"));
    if (!type) {
        ing_err_field(err, "idType");
        return ing_err_set(err, ING_EINVAL,
                           "Please provide a valid value of idType. Valid values are: [COOKIE, "
                           "CROSS_DEVICE, DEVICE, EMAIL, MOBILE, PHONE, NON_PEOPLE]");
    }
    size_t i;
    json_t *v;
    json_array_foreach(reg->std_ns, i, v) {
        if (strcasecmp(jstr(v, "code"), code) == 0)
            return ing_err_set(err, ING_EEXIST,
                               "Namespace code already exists. Please use a different code");
    }
    char *key = lower_dup(code);
    json_t *seq = NULL, *doc = NULL;
    rc = store_tx_begin(reg->st, err);
    if (rc)
        goto out;
    int64_t next = NS_FIRST_CUSTOM_ID;
    rc = store_get(reg->st, sandbox, NSSEQ_KIND, "namespace", &seq, err);
    if (rc == 0 && json_is_integer(json_object_get(seq, "next")))
        next = json_integer_value(json_object_get(seq, "next"));
    else if (rc != 0 && rc != ING_ENOTFOUND)
        goto rollback;
    int64_t now = clock_now_ms();
    doc = json_pack("{sI ss ss ss ss ss ss sb sI sI}", "id", (json_int_t)next, "code", code,
                    "name", jstr(body, "name"), "description",
                    jstr(body, "description") ? jstr(body, "description") : "", "idType", type,
                    "namespaceType", "Custom", "status", "ACTIVE", "custom", 1, "updateTime",
                    (json_int_t)now, "createTime", (json_int_t)now);
    rc = store_insert(reg->st, sandbox, NAMESPACE_KIND, key, doc, err);
    if (rc == ING_EEXIST)
        ing_err_set(err, ING_EEXIST, "Namespace code already exists. Please use a different code");
    if (rc)
        goto rollback;
    json_decref(seq);
    seq = json_pack("{sI}", "next", (json_int_t)(next + 1));
    rc = store_put(reg->st, sandbox, NSSEQ_KIND, "namespace", seq, err);
    if (rc)
        goto rollback;
    rc = store_tx_commit(reg->st, err);
    if (rc)
        goto out;
    if (out)
        *out = json_incref(doc);
    goto out;
rollback:
    store_tx_rollback(reg->st);
out:
    free(key);
    json_decref(seq);
    json_decref(doc);
    return rc;
}

int registry_namespace_update(struct registry *reg, const char *sandbox, const char *id_or_code,
                              const json_t *body, json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    json_t *doc = NULL;
    int rc = registry_namespace_get(reg, sandbox, id_or_code, &doc, err);
    if (rc)
        return rc;
    if (!json_is_true(json_object_get(doc, "custom"))) {
        rc = ing_err_set(err, ING_EINVAL, "standard namespaces cannot be changed");
        goto out;
    }
    const char *code = jstr(body, "code");
    const char *type = jstr(body, "idType");
    if ((code && strcmp(code, jstr(doc, "code")) != 0) ||
        (type && canonical_id_type(type) != canonical_id_type(jstr(doc, "idType")))) {
        rc = ing_err_set(err, ING_EINVAL, "code and idType are non editable fields");
        goto out;
    }
    rc = check_text(body, "name", false, err);
    if (!rc)
        rc = check_text(body, "description", false, err);
    if (rc)
        goto out;
    if (jstr(body, "name"))
        json_object_set_new(doc, "name", json_string(jstr(body, "name")));
    if (jstr(body, "description"))
        json_object_set_new(doc, "description", json_string(jstr(body, "description")));
    json_object_set_new(doc, "updateTime", json_integer(clock_now_ms()));
    char *key = lower_dup(jstr(doc, "code"));
    rc = store_update(reg->st, sandbox, NAMESPACE_KIND, key, doc, err);
    free(key);
    if (!rc && out)
        *out = json_incref(doc);
out:
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Descriptors                                                                                */

/* Walk a JSON pointer ("/a/b/c") through the "properties" of a resolved schema (through array
 * items too); NULL when a step is missing. */
static const json_t *field_at(const json_t *full, const char *ptr)
{
    if (!ptr || ptr[0] != '/')
        return NULL;
    const json_t *node = full;
    const char *p = ptr + 1;
    while (node) {
        while (json_is_string(json_object_get(node, "type")) &&
               strcmp(jstr(node, "type"), "array") == 0)
            node = json_object_get(node, "items");
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char *tok = ptr_token(p, len);
        if (!tok)
            return NULL;
        node = json_object_get(json_object_get(node, "properties"), tok);
        free(tok);
        if (!slash)
            return node;
        p = slash + 1;
    }
    return NULL;
}

static int validate_descriptor(struct registry *reg, const char *sandbox, json_t *doc,
                               const char *self_id, struct ing_err *err)
{
    const char *type = jstr(doc, "@type");
    if (!type) {
        ing_err_field(err, "@type");
        return ing_err_set(err, ING_EINVAL, "\"@type\" is required");
    }
    const char *schema_id = jstr(doc, "xdm:sourceSchema");
    if (!schema_id) {
        ing_err_field(err, "xdm:sourceSchema");
        return ing_err_set(err, ING_EINVAL, "\"xdm:sourceSchema\" is required");
    }
    json_t *full = NULL;
    int rc = registry_resolve(reg, sandbox, schema_id, &full, err);
    if (rc) {
        ing_err_field(err, "xdm:sourceSchema");
        if (rc == ING_ENOTFOUND)
            rc = ing_err_set(err, ING_EINVAL, "xdm:sourceSchema %s is not a schema of this sandbox",
                             schema_id);
        goto out;
    }
    /* stored with the canonical $id so that lookups by schema find it */
    json_object_set_new(doc, "xdm:sourceSchema", json_string(jstr(full, "$id")));
    if (!json_object_get(doc, "xdm:sourceVersion"))
        json_object_set_new(doc, "xdm:sourceVersion", json_integer(1));
    const char *prop = jstr(doc, "xdm:sourceProperty");
    const json_t *field = prop ? field_at(full, prop) : NULL;
    if (prop || strcmp(type, "xdm:descriptorIdentity") == 0) {
        if (!field) {
            ing_err_field(err, "xdm:sourceProperty");
            rc = ing_err_set(err, ING_EINVAL, "xdm:sourceProperty %s is not a field of the schema",
                             prop ? prop : "(missing)");
            goto out;
        }
    }
    if (strcmp(type, "xdm:descriptorIdentity") != 0)
        goto out;

    if (strcmp(jstr(field, "meta:xdmType") ? jstr(field, "meta:xdmType") : "", "string") != 0) {
        ing_err_field(err, "xdm:sourceProperty");
        rc = ing_err_set(err, ING_EINVAL, "an identity field must be a string, %s is not", prop);
        goto out;
    }
    json_t *nsv = json_object_get(doc, "xdm:namespace");
    char nsbuf[32];
    const char *ns = json_string_value(nsv);
    if (json_is_integer(nsv)) {
        snprintf(nsbuf, sizeof(nsbuf), "%lld", (long long)json_integer_value(nsv));
        ns = nsbuf;
    }
    json_t *nsdoc = NULL;
    rc = ns ? registry_namespace_get(reg, sandbox, ns, &nsdoc, err) : ING_ENOTFOUND;
    json_decref(nsdoc);
    if (rc) {
        ing_err_field(err, "xdm:namespace");
        if (rc == ING_ENOTFOUND)
            rc = ing_err_set(err, ING_EINVAL, "xdm:namespace %s is not a known identity namespace",
                             ns ? ns : "(missing)");
        goto out;
    }
    if (!json_object_get(doc, "xdm:property"))
        json_object_set_new(doc, "xdm:property",
                            json_string(json_is_integer(nsv) ? "xdm:id" : "xdm:code"));
    json_t *primary = json_object_get(doc, "xdm:isPrimary");
    if (primary && !json_is_boolean(primary)) {
        ing_err_field(err, "xdm:isPrimary");
        rc = ing_err_set(err, ING_EINVAL, "\"xdm:isPrimary\" must be a boolean");
        goto out;
    }
    if (!primary)
        json_object_set_new(doc, "xdm:isPrimary", json_false());
    if (json_is_true(primary)) {
        json_t *existing = NULL;
        rc = registry_identity_descriptors(reg, sandbox, jstr(full, "$id"), &existing, err);
        if (rc)
            goto out;
        size_t i;
        json_t *d;
        json_array_foreach(existing, i, d) {
            const char *did = jstr(d, "@id");
            if (json_is_true(json_object_get(d, "xdm:isPrimary")) &&
                !(self_id && did && strcmp(did, self_id) == 0)) {
                rc = ing_err_set(err, ING_EINVAL,
                                 "schema %s already has a primary identity (descriptor %s)",
                                 jstr(full, "$id"), did ? did : "");
                break;
            }
        }
        json_decref(existing);
    }
out:
    json_decref(full);
    return rc;
}

int registry_descriptor_create(struct registry *reg, const char *sandbox, const json_t *body,
                               json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    json_t *doc = json_deep_copy(body);
    char hex[65];
    random_hex(hex, 20);
    json_object_set_new(doc, "@id", json_string(hex));
    json_object_set_new(doc, "meta:containerId", json_string("tenant"));
    json_object_set_new(doc, "version", json_string("1"));
    int rc = validate_descriptor(reg, sandbox, doc, NULL, err);
    if (!rc) {
        int64_t now = clock_now_ms();
        set_registry_meta(doc, now, now);
        rc = store_insert(reg->st, sandbox, DESCRIPTOR_KIND, hex, doc, err);
    }
    if (!rc && out)
        *out = json_incref(doc);
    json_decref(doc);
    return rc;
}

int registry_descriptor_get(struct registry *reg, const char *sandbox, const char *id,
                            json_t **out, struct ing_err *err)
{
    *out = NULL;
    if (!id_is_safe(id))
        return ing_err_set(err, ING_ENOTFOUND, "descriptor %s not found", id);
    int rc = store_get(reg->st, sandbox, DESCRIPTOR_KIND, id, out, err);
    if (rc == ING_ENOTFOUND)
        ing_err_set(err, rc, "descriptor %s not found", id);
    return rc;
}

int registry_descriptor_replace(struct registry *reg, const char *sandbox, const char *id,
                                const json_t *body, json_t **out, struct ing_err *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    json_t *old = NULL;
    int rc = registry_descriptor_get(reg, sandbox, id, &old, err);
    if (rc)
        return rc;
    json_t *doc = json_deep_copy(body);
    json_object_set_new(doc, "@id", json_string(id));
    json_object_set_new(doc, "meta:containerId", json_string("tenant"));
    json_object_set_new(doc, "version", json_string("1"));
    rc = validate_descriptor(reg, sandbox, doc, id, err);
    if (!rc) {
        renew_registry_meta(doc, old);
        rc = store_update(reg->st, sandbox, DESCRIPTOR_KIND, id, doc, err);
    }
    if (!rc && out)
        *out = json_incref(doc);
    json_decref(doc);
    json_decref(old);
    return rc;
}

int registry_descriptor_list(struct registry *reg, const char *sandbox, json_t **out,
                             struct ing_err *err)
{
    json_t *docs = NULL;
    struct store_query q = {0};
    *out = NULL;
    int rc = store_list(reg->st, sandbox, DESCRIPTOR_KIND, &q, &docs, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(docs, k, v)
        json_array_append(arr, v);
    json_decref(docs);
    *out = arr;
    return 0;
}

int registry_descriptor_delete(struct registry *reg, const char *sandbox, const char *id,
                               struct ing_err *err)
{
    if (!id_is_safe(id))
        return ing_err_set(err, ING_ENOTFOUND, "descriptor %s not found", id);
    int rc = store_delete(reg->st, sandbox, DESCRIPTOR_KIND, id, err);
    if (rc == ING_ENOTFOUND)
        ing_err_set(err, rc, "descriptor %s not found", id);
    return rc;
}

int registry_identity_descriptors(struct registry *reg, const char *sandbox, const char *schema_id,
                                  json_t **out, struct ing_err *err)
{
    *out = NULL;
    char *nid = normalize_id(schema_id);
    json_t *schema = NULL, *all = NULL;
    int rc = registry_get(reg, sandbox, REGISTRY_TENANT, REGISTRY_SCHEMA, nid, &schema, err);
    if (rc)
        goto out;
    rc = registry_descriptor_list(reg, sandbox, &all, err);
    if (rc)
        goto out;
    json_t *arr = json_array();
    size_t i;
    json_t *d;
    const char *sid = jstr(schema, "$id"), *alt = jstr(schema, "meta:altId");
    json_array_foreach(all, i, d) {
        const char *type = jstr(d, "@type"), *src = jstr(d, "xdm:sourceSchema");
        if (!type || strcmp(type, "xdm:descriptorIdentity") != 0 || !src)
            continue;
        if ((sid && strcmp(src, sid) == 0) || (alt && strcmp(src, alt) == 0))
            json_array_append(arr, d);
    }
    *out = arr;
out:
    free(nid);
    json_decref(schema);
    json_decref(all);
    return rc;
}
