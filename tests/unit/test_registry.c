/* test_registry.c - unit tests of the Schema Registry (src/schema/registry.c, xdm_std.c):
 * resolution of the Luma schemas to xed-full, JSON Patch, and the store-backed resources,
 * descriptors and identity namespaces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/registry.h"
#include "schema/xdm_std.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

#define TENANT "techmarketingdemos"
#define PROFILE "https://ns.adobe.com/xdm/context/profile"
#define EVENT "https://ns.adobe.com/xdm/context/experienceevent"
#define PERSON_DETAILS "https://ns.adobe.com/xdm/context/profile-person-details"
#define PERSONAL_DETAILS "https://ns.adobe.com/xdm/context/profile-personal-details"
#define LOYALTY_DETAILS "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details"
#define COMMERCE "https://ns.adobe.com/xdm/context/experienceevent-commerce"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *d = json_loads(text, 0, &je);
    if (!d)
        fail_msg("bad test JSON: %s (%s)", je.text, text);
    return d;
}

/* Walk dotted names through "properties" (no arrays). */
static json_t *field(json_t *full, const char *dotted)
{
    char *copy = xstrdup(dotted);
    json_t *node = full;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ".", &save); tok && node; tok = strtok_r(NULL, ".", &save))
        node = json_object_get(json_object_get(node, "properties"), tok);
    free(copy);
    return node;
}

static const char *xdm_type(json_t *full, const char *dotted)
{
    json_t *f = field(full, dotted);
    if (!f)
        fail_msg("field %s missing", dotted);
    return json_string_value(json_object_get(f, "meta:xdmType"));
}

static bool required_has(json_t *obj, const char *name)
{
    json_t *req = json_object_get(obj, "required");
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return true;
    return false;
}

static bool array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

/* Property names containing ':' or '@' anywhere in a resolved tree (should be none). */
static int count_prefixed_names(const json_t *node)
{
    int n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(node, "properties"), k, v) {
        n += strchr(k, ':') != NULL || k[0] == '@';
        n += count_prefixed_names(v);
    }
    json_t *items = json_object_get(node, "items");
    if (json_is_object(items))
        n += count_prefixed_names(items);
    json_t *ap = json_object_get(node, "additionalProperties");
    if (json_is_object(ap))
        n += count_prefixed_names(ap);
    return n;
}

/* A lookup over the built-in resources plus test documents (both keyed by $id). */
struct test_lookup {
    json_t *std;
    json_t *extra;
    int calls;
};

static int test_lookup_fn(void *ctx, const char *id, json_t **out, struct ing_err *err)
{
    struct test_lookup *tl = ctx;
    tl->calls++;
    json_t *d = json_object_get(tl->extra, id);
    if (!d)
        d = json_object_get(tl->std, id);
    if (!d)
        return ing_err_set(err, ING_ENOTFOUND, "no %s", id);
    *out = json_incref(d);
    return 0;
}

/* The Luma custom field group of the 2021 requests: fields under _techmarketingdemos. */
static const char *IDENTITY_FG =
    "{\"$id\":\"https://ns.adobe.com/" TENANT "/mixins/idfg\",\"meta:resourceType\":\"mixins\","
    "\"title\":\"Luma Identity Profile Field Group\",\"type\":\"object\","
    "\"properties\":{\"_" TENANT "\":{\"type\":\"object\",\"properties\":{"
    "\"systemIdentifier\":{\"title\":\"System Identifier\",\"type\":\"object\",\"properties\":{"
    "\"loyaltyId\":{\"title\":\"Loyalty Id\",\"type\":\"string\"},"
    "\"crmId\":{\"title\":\"CRM Id\",\"type\":\"string\"}}}}}},"
    "\"meta:intendedToExtend\":[\"" PROFILE "\"]}";

/* The same tenant object from a second field group, in "definitions" form: must merge. */
static const char *LOYALTY_FG =
    "{\"$id\":\"https://ns.adobe.com/" TENANT "/mixins/loyfg\",\"meta:resourceType\":\"mixins\","
    "\"title\":\"Luma Loyalty Field Group\",\"type\":\"object\","
    "\"definitions\":{\"customFields\":{\"properties\":{\"_" TENANT "\":{\"type\":\"object\","
    "\"properties\":{\"loyalty\":{\"type\":\"object\",\"properties\":{"
    "\"memberSince\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"points\":{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483648},"
    "\"level\":{\"type\":\"string\",\"enum\":[\"bronze\",\"silver\",\"gold\",\"platinum\"]}}}}}}}},"
    "\"allOf\":[{\"$ref\":\"#/definitions/customFields\"}]}";

struct std_fixture {
    struct test_lookup tl;
};

static int std_setup(void **state)
{
    struct std_fixture *fx = xcalloc(1, sizeof(*fx));
    struct ing_err err;
    if (xdm_std_load(&fx->tl.std, &err) != 0)
        return -1;
    fx->tl.extra = json_object();
    json_object_set_new(fx->tl.extra, "https://ns.adobe.com/" TENANT "/mixins/idfg",
                        parse(IDENTITY_FG));
    json_object_set_new(fx->tl.extra, "https://ns.adobe.com/" TENANT "/mixins/loyfg",
                        parse(LOYALTY_FG));
    *state = fx;
    return 0;
}

static int std_teardown(void **state)
{
    struct std_fixture *fx = *state;
    json_decref(fx->tl.std);
    json_decref(fx->tl.extra);
    free(fx);
    return 0;
}

static json_t *resolve_text(struct std_fixture *fx, const char *schema_text)
{
    json_t *schema = parse(schema_text);
    json_t *full = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = registry_resolve_doc(schema, test_lookup_fn, &fx->tl, &full, &err);
    json_decref(schema);
    if (rc)
        fail_msg("resolve failed: %s (field %s)", err.msg, err.field);
    return full;
}

/* ---- built-in resources ---- */

static void test_std_resources_parse(void **state)
{
    struct std_fixture *fx = *state;
    assert_true(json_object_size(fx->tl.std) >= 30);
    json_t *p = json_object_get(fx->tl.std, PROFILE);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "meta:altId")), "_xdm.context.profile");
    assert_string_equal(json_string_value(json_object_get(p, "meta:resourceType")), "classes");
    /* AEP's Profile class carries IdentityMap; adobe/xdm's does not; the generator adds it */
    assert_true(array_has(json_object_get(p, "meta:extends"),
                          "https://ns.adobe.com/xdm/context/identitymap"));
    json_t *fg = json_object_get(fx->tl.std, LOYALTY_DETAILS);
    assert_string_equal(json_string_value(json_object_get(fg, "meta:resourceType")), "mixins");
    /* descriptions are dropped as keywords, but a definition named "description" is kept */
    json_t *geo = json_object_get(fx->tl.std, "http://schema.org/GeoCoordinates");
    assert_null(json_object_get(geo, "description"));
    assert_non_null(json_object_get(json_object_get(geo, "definitions"), "description"));
}

/* ---- resolution ---- */

static void test_resolve_luma_loyalty(void **state)
{
    struct std_fixture *fx = *state;
    json_t *full = resolve_text(
        fx, "{\"$id\":\"https://ns.adobe.com/" TENANT "/schemas/s1\",\"meta:altId\":\"_" TENANT
            ".schemas.s1\",\"title\":\"Luma Loyalty Schema\",\"type\":\"object\",\"version\":\"1.0\","
            "\"allOf\":[{\"$ref\":\"" PROFILE "\"},{\"$ref\":\"" PERSONAL_DETAILS "\"},"
            "{\"$ref\":\"" PERSON_DETAILS "\"},{\"$ref\":\"" LOYALTY_DETAILS "\"},"
            "{\"$ref\":\"https://ns.adobe.com/" TENANT "/mixins/idfg\"},"
            "{\"$ref\":\"https://ns.adobe.com/" TENANT "/mixins/loyfg\"}]}");
    assert_string_equal(json_string_value(json_object_get(full, "meta:class")), PROFILE);
    assert_string_equal(json_string_value(json_object_get(full, "$id")),
                        "https://ns.adobe.com/" TENANT "/schemas/s1");
    assert_string_equal(json_string_value(json_object_get(full, "meta:altId")), "_" TENANT ".schemas.s1");
    assert_string_equal(json_string_value(json_object_get(full, "title")), "Luma Loyalty Schema");
    assert_null(json_object_get(full, "allOf"));
    json_t *ext = json_object_get(full, "meta:extends");
    assert_true(array_has(ext, PROFILE));
    assert_true(array_has(ext, "https://ns.adobe.com/xdm/data/record"));
    assert_true(array_has(ext, LOYALTY_DETAILS));

    /* Demographic Details: person (data type) -> name (data type) */
    assert_string_equal(xdm_type(full, "person"), "object");
    assert_string_equal(xdm_type(full, "person.name.firstName"), "string");
    assert_string_equal(xdm_type(full, "person.name.lastName"), "string");
    assert_string_equal(json_string_value(json_object_get(field(full, "person.name.firstName"),
                                                          "meta:xdmField")),
                        "xdm:firstName");
    assert_string_equal(json_string_value(json_object_get(field(full, "person"), "meta:referencedFrom")),
                        "https://ns.adobe.com/xdm/context/person");
    assert_string_equal(xdm_type(full, "person.birthDate"), "date");
    /* Personal Contact Details */
    assert_string_equal(xdm_type(full, "homeAddress.city"), "string");
    assert_string_equal(xdm_type(full, "personalEmail.address"), "string");
    assert_string_equal(xdm_type(full, "mobilePhone.number"), "string");
    /* Loyalty Details */
    assert_string_equal(xdm_type(full, "loyalty.joinDate"), "date-time");
    assert_string_equal(xdm_type(full, "loyalty.points"), "number");
    assert_string_equal(xdm_type(full, "loyalty.tier"), "string");
    json_t *cards = field(full, "loyalty.cardsDetails");
    assert_string_equal(json_string_value(json_object_get(cards, "meta:xdmType")), "array");
    assert_string_equal(xdm_type(json_object_get(cards, "items"), "number"), "string");
    /* record behaviour: @id -> _id; auditable: repo:createDate -> _repo.createDate */
    assert_string_equal(xdm_type(full, "_id"), "string");
    assert_string_equal(json_string_value(json_object_get(field(full, "_id"), "meta:xdmField")), "@id");
    assert_string_equal(xdm_type(full, "_repo.createDate"), "date-time");
    assert_string_equal(xdm_type(full, "personID"), "string");
    /* IdentityMap: map of arrays of identity items */
    json_t *im = field(full, "identityMap");
    assert_non_null(im);
    assert_string_equal(json_string_value(json_object_get(im, "meta:xdmType")), "map");
    json_t *val = json_object_get(im, "additionalProperties");
    assert_string_equal(json_string_value(json_object_get(val, "meta:xdmType")), "array");
    json_t *item = json_object_get(val, "items");
    assert_string_equal(json_string_value(json_object_get(item, "meta:xdmType")), "object");
    assert_string_equal(xdm_type(item, "id"), "string");
    assert_string_equal(xdm_type(item, "primary"), "boolean");
    /* tenant field groups merge under _techmarketingdemos */
    assert_string_equal(xdm_type(full, "_" TENANT), "object");
    assert_string_equal(xdm_type(full, "_" TENANT ".systemIdentifier.loyaltyId"), "string");
    assert_string_equal(xdm_type(full, "_" TENANT ".systemIdentifier.crmId"), "string");
    assert_string_equal(xdm_type(full, "_" TENANT ".loyalty.memberSince"), "date");
    assert_string_equal(xdm_type(full, "_" TENANT ".loyalty.points"), "int");
    json_t *level = field(full, "_" TENANT ".loyalty.level");
    assert_int_equal(json_array_size(json_object_get(level, "enum")), 4);
    /* nothing left unresolved: no $ref anywhere, no prefixed property name */
    char *text = json_dumps(full, JSON_COMPACT);
    assert_null(strstr(text, "\"$ref\""));
    free(text);
    assert_int_equal(count_prefixed_names(full), 0);
    json_decref(full);
}

static void test_resolve_experience_event_commerce(void **state)
{
    struct std_fixture *fx = *state;
    json_t *full = resolve_text(
        fx, "{\"title\":\"Luma Offline Purchase Events Schema\",\"type\":\"object\","
            "\"allOf\":[{\"$ref\":\"" COMMERCE "\"},{\"$ref\":\"" EVENT "\"}]}");
    assert_string_equal(json_string_value(json_object_get(full, "meta:class")), EVENT);
    assert_true(required_has(full, "_id"));
    assert_true(required_has(full, "timestamp"));
    assert_string_equal(xdm_type(full, "timestamp"), "date-time");
    assert_string_equal(xdm_type(full, "_id"), "string");
    assert_string_equal(xdm_type(full, "eventType"), "string");
    json_t *pli = field(full, "productListItems");
    assert_non_null(pli);
    assert_string_equal(json_string_value(json_object_get(pli, "type")), "array");
    assert_string_equal(json_string_value(json_object_get(pli, "meta:xdmType")), "array");
    json_t *item = json_object_get(pli, "items");
    assert_string_equal(json_string_value(json_object_get(item, "meta:xdmType")), "object");
    assert_string_equal(xdm_type(item, "SKU"), "string");
    assert_string_equal(json_string_value(json_object_get(field(item, "quantity"), "type")), "integer");
    assert_string_equal(xdm_type(item, "quantity"), "int");
    assert_string_equal(xdm_type(item, "priceTotal"), "number");
    assert_true(required_has(item, "SKU"));
    /* a local ref inside a data type (items of selectedOptions -> #/definitions/selectedOption) */
    json_t *opts = field(item, "selectedOptions");
    assert_string_equal(xdm_type(json_object_get(opts, "items"), "attribute"), "string");
    /* Commerce data types */
    assert_string_equal(xdm_type(full, "commerce.order.purchaseID"), "string");
    assert_string_equal(xdm_type(full, "commerce.order.priceTotal"), "number");
    assert_string_equal(xdm_type(full, "commerce.purchases.value"), "number");
    /* identityMap comes with the ExperienceEvent class */
    assert_string_equal(xdm_type(full, "identityMap"), "map");
    json_decref(full);
}

static void test_resolve_custom_record_class(void **state)
{
    struct std_fixture *fx = *state;
    json_object_set_new(fx->tl.extra, "https://ns.adobe.com/" TENANT "/classes/prod",
                        parse("{\"$id\":\"https://ns.adobe.com/" TENANT "/classes/prod\","
                              "\"meta:resourceType\":\"classes\",\"title\":\"Luma Product Catalog Class\","
                              "\"type\":\"object\",\"allOf\":[{\"$ref\":\"https://ns.adobe.com/xdm/data/record\"}]}"));
    json_object_set_new(
        fx->tl.extra, "https://ns.adobe.com/" TENANT "/mixins/prodfg",
        parse("{\"$id\":\"https://ns.adobe.com/" TENANT "/mixins/prodfg\",\"meta:resourceType\":\"mixins\","
              "\"title\":\"Luma Product Catalog Field Group\",\"properties\":{\"_" TENANT "\":{"
              "\"type\":\"object\",\"required\":[\"productSku\"],\"properties\":{"
              "\"productSku\":{\"type\":\"string\"},\"productPrice\":{\"type\":\"number\"}}}}}"));
    json_t *full = resolve_text(fx, "{\"title\":\"Luma Product Catalog Schema\",\"allOf\":["
                                    "{\"$ref\":\"https://ns.adobe.com/" TENANT "/classes/prod\"},"
                                    "{\"$ref\":\"https://ns.adobe.com/" TENANT "/mixins/prodfg\"}]}");
    assert_string_equal(json_string_value(json_object_get(full, "meta:class")),
                        "https://ns.adobe.com/" TENANT "/classes/prod");
    assert_string_equal(xdm_type(full, "_id"), "string");
    assert_string_equal(xdm_type(full, "_" TENANT ".productSku"), "string");
    assert_string_equal(xdm_type(full, "_" TENANT ".productPrice"), "number");
    assert_true(required_has(field(full, "_" TENANT), "productSku"));
    json_decref(full);
}

static void test_resolve_missing_ref_and_cycle(void **state)
{
    struct std_fixture *fx = *state;
    json_t *bad = parse("{\"title\":\"x\",\"allOf\":[{\"$ref\":\"" PROFILE "\"},"
                        "{\"$ref\":\"https://ns.adobe.com/" TENANT "/mixins/nope\"}]}");
    json_t *full = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(registry_resolve_doc(bad, test_lookup_fn, &fx->tl, &full, &err), ING_ENOTFOUND);
    assert_null(full);
    assert_non_null(strstr(err.msg, "mixins/nope"));
    json_decref(bad);

    /* a data type that contains itself is an error, not an endless loop */
    json_object_set_new(fx->tl.extra, "https://ns.adobe.com/" TENANT "/datatypes/loop",
                        parse("{\"$id\":\"https://ns.adobe.com/" TENANT "/datatypes/loop\","
                              "\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":"
                              "\"https://ns.adobe.com/" TENANT "/datatypes/loop\"}}}"));
    json_t *cyc = parse("{\"title\":\"c\",\"properties\":{\"_" TENANT "\":{\"type\":\"object\","
                        "\"properties\":{\"head\":{\"$ref\":\"https://ns.adobe.com/" TENANT
                        "/datatypes/loop\"}}}}}");
    ing_err_clear(&err);
    assert_int_equal(registry_resolve_doc(cyc, test_lookup_fn, &fx->tl, &full, &err), ING_EINVAL);
    assert_null(full);
    json_decref(cyc);

    /* a component including itself (allOf cycle) adds nothing and terminates */
    json_t *self = parse("{\"$id\":\"https://ns.adobe.com/" TENANT "/mixins/self\",\"title\":\"s\","
                         "\"definitions\":{\"d\":{\"properties\":{\"a\":{\"type\":\"string\"}},"
                         "\"allOf\":[{\"$ref\":\"#/definitions/d\"}]}},"
                         "\"allOf\":[{\"$ref\":\"#/definitions/d\"}]}");
    ing_err_clear(&err);
    assert_int_equal(registry_resolve_doc(self, test_lookup_fn, &fx->tl, &full, &err), 0);
    assert_string_equal(xdm_type(full, "a"), "string");
    json_decref(full);
    json_decref(self);
}

static void test_xdm_types_from_ranges(void **state)
{
    struct std_fixture *fx = *state;
    json_t *full = resolve_text(
        fx, "{\"title\":\"t\",\"properties\":{"
            "\"b\":{\"type\":\"integer\",\"minimum\":-128,\"maximum\":128},"
            "\"s\":{\"type\":\"integer\",\"minimum\":-32768,\"maximum\":32768},"
            "\"i\":{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483648},"
            "\"l\":{\"type\":\"integer\",\"minimum\":-9007199254740991,\"maximum\":9007199254740991},"
            "\"kept\":{\"type\":\"integer\",\"meta:xdmType\":\"long\"},"
            "\"flag\":{\"type\":\"boolean\"},\"m\":{\"type\":\"object\",\"additionalProperties\":"
            "{\"type\":\"string\"}}}}");
    assert_string_equal(xdm_type(full, "b"), "byte");
    assert_string_equal(xdm_type(full, "s"), "short");
    assert_string_equal(xdm_type(full, "i"), "int");
    assert_string_equal(xdm_type(full, "l"), "long");
    assert_string_equal(xdm_type(full, "kept"), "long");
    assert_string_equal(xdm_type(full, "flag"), "boolean");
    assert_string_equal(xdm_type(full, "m"), "map");
    json_decref(full);
}

/* ---- JSON Patch ---- */

static void test_json_patch(void **state)
{
    (void)state;
    json_t *doc = parse("{\"title\":\"S\",\"allOf\":[{\"$ref\":\"a\"}],\"n\":{\"x\":1}}");
    json_t *ops = parse(
        "[{\"op\":\"add\",\"path\":\"/allOf/-\",\"value\":{\"$ref\":\"b\"}},"
        "{\"op\":\"add\",\"path\":\"/allOf/0\",\"value\":{\"$ref\":\"z\"}},"
        "{\"op\":\"add\",\"path\":\"/meta:immutableTags\",\"value\":[\"union\"]},"
        "{\"op\":\"replace\",\"path\":\"/title\",\"value\":\"T\"},"
        "{\"op\":\"remove\",\"path\":\"/n/x\"},"
        "{\"op\":\"copy\",\"from\":\"/title\",\"path\":\"/n/t\"},"
        "{\"op\":\"move\",\"from\":\"/n/t\",\"path\":\"/a~1b\"},"
        "{\"op\":\"test\",\"path\":\"/a~1b\",\"value\":\"T\"}]");
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(registry_json_patch(doc, ops, &err), 0);
    json_t *want = parse("{\"title\":\"T\",\"allOf\":[{\"$ref\":\"z\"},{\"$ref\":\"a\"},{\"$ref\":\"b\"}],"
                         "\"n\":{},\"meta:immutableTags\":[\"union\"],\"a/b\":\"T\"}");
    assert_true(json_equal(doc, want));
    json_decref(want);
    json_decref(ops);

    static const char *const bad[] = {
        "[{\"op\":\"replace\",\"path\":\"/missing\",\"value\":1}]",
        "[{\"op\":\"remove\",\"path\":\"/allOf/9\"}]",
        "[{\"op\":\"add\",\"path\":\"/nope/x\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"title\",\"value\":1}]",
        "[{\"op\":\"test\",\"path\":\"/title\",\"value\":\"other\"}]",
        "[{\"op\":\"frobnicate\",\"path\":\"/title\"}]",
        "[{\"op\":\"add\",\"path\":\"/allOf/01\",\"value\":1}]",
        "{\"op\":\"add\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = parse(bad[i]);
        ing_err_clear(&err);
        assert_int_equal(registry_json_patch(doc, b, &err), ING_EINVAL);
        assert_true(err.msg[0] != '\0');
        json_decref(b);
    }
    json_decref(doc);
}

/* ---- store-backed registry ---- */

struct reg_fixture {
    char dir[64];
    struct store *st;
    struct registry *reg;
};

static int reg_setup(void **state)
{
    struct reg_fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-registry-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    struct ing_err err;
    ing_err_clear(&err);
    if (store_open(&fx->st, fx->dir, &err) || registry_new(&fx->reg, fx->st, TENANT, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int reg_teardown(void **state)
{
    struct reg_fixture *fx = *state;
    registry_free(fx->reg);
    store_close(fx->st);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

static json_t *create(struct reg_fixture *fx, const char *sb, enum registry_kind kind,
                      const char *text)
{
    json_t *body = parse(text), *out = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = registry_create(fx->reg, sb, kind, body, &out, &err);
    json_decref(body);
    if (rc)
        fail_msg("create failed (%d): %s", rc, err.msg);
    return out;
}

static int create_rc(struct reg_fixture *fx, enum registry_kind kind, const char *text,
                     struct ing_err *err)
{
    json_t *body = parse(text), *out = NULL;
    ing_err_clear(err);
    int rc = registry_create(fx->reg, "prod", kind, body, &out, err);
    json_decref(body);
    json_decref(out);
    return rc;
}

static const char *s(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_global_get_by_id_and_altid(void **state)
{
    struct reg_fixture *fx = *state;
    json_t *a = NULL, *b = NULL;
    struct ing_err err;
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_CLASS, PROFILE, &a, &err), 0);
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_CLASS,
                                  "_xdm.context.profile", &b, &err), 0);
    assert_true(json_equal(a, b));
    json_decref(b);
    /* URL-encoded $id */
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_CLASS,
                                  "https%3A%2F%2Fns.adobe.com%2Fxdm%2Fcontext%2Fprofile", &b, &err), 0);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    /* wrong kind, wrong container, unknown id */
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_FIELDGROUP, PROFILE, &a, &err),
                     ING_ENOTFOUND);
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_TENANT, REGISTRY_CLASS, PROFILE, &a, &err),
                     ING_ENOTFOUND);
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_CLASS,
                                  "https://ns.adobe.com/xdm/context/nothing", &a, &err), ING_ENOTFOUND);
    json_t *list = NULL;
    assert_int_equal(registry_list(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_FIELDGROUP, &list, &err), 0);
    size_t i;
    json_t *v;
    bool saw_loyalty = false;
    json_array_foreach(list, i, v) {
        assert_string_equal(s(v, "meta:resourceType"), "mixins");
        saw_loyalty |= strcmp(s(v, "$id"), LOYALTY_DETAILS) == 0;
    }
    assert_true(saw_loyalty);
    json_decref(list);
    assert_int_equal(registry_list(fx->reg, "prod", REGISTRY_GLOBAL, REGISTRY_BEHAVIOR, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
}

static void test_tenant_resources_and_patch(void **state)
{
    struct reg_fixture *fx = *state;
    struct ing_err err;
    json_t *fg = create(fx, "prod", REGISTRY_FIELDGROUP, IDENTITY_FG);
    const char *fg_id = s(fg, "$id");
    assert_true(strncmp(fg_id, "https://ns.adobe.com/" TENANT "/mixins/", 21 + strlen(TENANT) + 8) == 0);
    assert_int_equal(strlen(strrchr(fg_id, '/') + 1), 32);
    assert_string_equal(s(fg, "meta:containerId"), "tenant");
    assert_string_equal(s(fg, "version"), "1.0");
    assert_string_equal(s(fg, "meta:tenantNamespace"), "_" TENANT);
    assert_true(strncmp(s(fg, "meta:altId"), "_" TENANT ".mixins.", 1 + strlen(TENANT) + 8) == 0);

    /* schema: POST with the class only, then PATCH the field groups in, as the tutorial does */
    json_t *schema = create(fx, "prod", REGISTRY_SCHEMA,
                            "{\"title\":\"Luma CRM Schema\",\"type\":\"object\",\"description\":\"CRM\","
                            "\"allOf\":[{\"$ref\":\"" PROFILE "\"}]}");
    assert_string_equal(s(schema, "meta:class"), PROFILE);
    assert_true(array_has(json_object_get(schema, "meta:extends"), PROFILE));
    char *ops_text = xasprintf(
        "[{\"op\":\"add\",\"path\":\"/allOf/-\",\"value\":{\"$ref\":\"" PERSONAL_DETAILS "\"}},"
        "{\"op\":\"add\",\"path\":\"/allOf/-\",\"value\":{\"$ref\":\"" PERSON_DETAILS "\"}},"
        "{\"op\":\"add\",\"path\":\"/allOf/-\",\"value\":{\"$ref\":\"%s\"}},"
        "{\"op\":\"add\",\"path\":\"/meta:immutableTags\",\"value\":[\"union\"]},"
        "{\"op\":\"replace\",\"path\":\"/$id\",\"value\":\"https://evil\"}]",
        fg_id);
    json_t *ops = parse(ops_text);
    free(ops_text);
    json_t *patched = NULL;
    ing_err_clear(&err);
    assert_int_equal(registry_patch(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "meta:altId"), ops,
                                    &patched, &err), 0);
    json_decref(ops);
    assert_string_equal(s(patched, "$id"), s(schema, "$id")); /* owned fields survive a patch */
    assert_string_equal(s(patched, "version"), "1.1");
    assert_int_equal(json_array_size(json_object_get(patched, "allOf")), 4);
    assert_true(array_has(json_object_get(patched, "meta:extends"), fg_id));
    assert_true(array_has(json_object_get(patched, "meta:immutableTags"), "union"));
    json_decref(patched);

    /* resolve by $id and by altId, through the store */
    json_t *full = NULL, *full2 = NULL;
    assert_int_equal(registry_resolve(fx->reg, "prod", s(schema, "$id"), &full, &err), 0);
    assert_int_equal(registry_resolve(fx->reg, "prod", s(schema, "meta:altId"), &full2, &err), 0);
    assert_true(json_equal(full, full2));
    assert_string_equal(xdm_type(full, "_" TENANT ".systemIdentifier.crmId"), "string");
    assert_string_equal(xdm_type(full, "personalEmail.address"), "string");
    assert_string_equal(xdm_type(full, "person.name.firstName"), "string");
    json_decref(full);
    json_decref(full2);

    /* sandboxes do not see each other's resources */
    assert_int_equal(registry_resolve(fx->reg, "dev", s(schema, "$id"), &full, &err), ING_ENOTFOUND);

    /* a patch that drops the class or references a missing resource is refused, nothing stored */
    ops = parse("[{\"op\":\"remove\",\"path\":\"/allOf/0\"},{\"op\":\"remove\",\"path\":\"/allOf/0\"},"
                "{\"op\":\"remove\",\"path\":\"/allOf/0\"}]");
    assert_int_equal(registry_patch(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "$id"), ops, NULL, &err),
                     ING_EINVAL);
    json_decref(ops);
    ops = parse("[{\"op\":\"add\",\"path\":\"/allOf/-\",\"value\":{\"$ref\":\"https://ns.adobe.com/"
                TENANT "/mixins/00000000000000000000000000000000\"}}]");
    assert_int_equal(registry_patch(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "$id"), ops, NULL, &err),
                     ING_EINVAL);
    json_decref(ops);
    json_t *again = NULL;
    assert_int_equal(registry_get(fx->reg, "prod", REGISTRY_TENANT, REGISTRY_SCHEMA, s(schema, "$id"),
                                  &again, &err), 0);
    assert_string_equal(s(again, "version"), "1.1");
    json_decref(again);

    int64_t n = 0;
    assert_int_equal(registry_count(fx->reg, "prod", REGISTRY_SCHEMA, &n, &err), 0);
    assert_int_equal(n, 1);
    json_t *list = NULL;
    assert_int_equal(registry_list(fx->reg, "prod", REGISTRY_TENANT, REGISTRY_FIELDGROUP, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    /* PUT replaces the body but keeps the identity */
    json_t *body = parse("{\"title\":\"Renamed\",\"allOf\":[{\"$ref\":\"" PROFILE "\"}]}");
    json_t *put = NULL;
    assert_int_equal(registry_replace(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "$id"), body, &put, &err), 0);
    assert_string_equal(s(put, "title"), "Renamed");
    assert_string_equal(s(put, "$id"), s(schema, "$id"));
    assert_string_equal(s(put, "version"), "1.2");
    json_decref(put);
    json_decref(body);

    /* delete */
    assert_int_equal(registry_delete(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "$id"), &err), 0);
    assert_int_equal(registry_delete(fx->reg, "prod", REGISTRY_SCHEMA, s(schema, "$id"), &err), ING_ENOTFOUND);
    json_decref(schema);
    json_decref(fg);
}

static void test_create_validation(void **state)
{
    struct reg_fixture *fx = *state;
    struct ing_err err;
    /* missing $ref target */
    assert_int_equal(create_rc(fx, REGISTRY_SCHEMA,
                               "{\"title\":\"x\",\"allOf\":[{\"$ref\":\"" PROFILE "\"},"
                               "{\"$ref\":\"https://ns.adobe.com/xdm/context/nope\"}]}", &err),
                     ING_EINVAL);
    assert_non_null(strstr(err.msg, "context/nope"));
    /* no class */
    assert_int_equal(create_rc(fx, REGISTRY_SCHEMA,
                               "{\"title\":\"x\",\"allOf\":[{\"$ref\":\"" PERSON_DETAILS "\"}]}", &err),
                     ING_EINVAL);
    /* no title */
    assert_int_equal(create_rc(fx, REGISTRY_SCHEMA, "{\"allOf\":[{\"$ref\":\"" PROFILE "\"}]}", &err),
                     ING_EINVAL);
    /* custom field outside the tenant object */
    assert_int_equal(create_rc(fx, REGISTRY_FIELDGROUP,
                               "{\"title\":\"x\",\"properties\":{\"loyaltyId\":{\"type\":\"string\"}}}", &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "loyaltyId");
    /* behaviours cannot be created */
    assert_int_equal(create_rc(fx, REGISTRY_BEHAVIOR, "{\"title\":\"x\"}", &err), ING_EINVAL);
    /* a custom record class, its field group and a schema */
    json_t *cls = create(fx, "prod", REGISTRY_CLASS,
                         "{\"title\":\"Luma Product Catalog Class\",\"type\":\"object\","
                         "\"allOf\":[{\"$ref\":\"https://ns.adobe.com/xdm/data/record\"}]}");
    char *fg_text = xasprintf(
        "{\"title\":\"Product FG\",\"properties\":{\"_" TENANT "\":{\"type\":\"object\","
        "\"properties\":{\"productSku\":{\"type\":\"string\"}},\"required\":[\"productSku\"]}},"
        "\"meta:intendedToExtend\":[\"%s\"]}", s(cls, "$id"));
    json_t *fg = create(fx, "prod", REGISTRY_FIELDGROUP, fg_text);
    free(fg_text);
    char *sc_text = xasprintf("{\"title\":\"Product Schema\",\"allOf\":[{\"$ref\":\"%s\"},{\"$ref\":\"%s\"}]}",
                              s(cls, "$id"), s(fg, "$id"));
    json_t *sc = create(fx, "prod", REGISTRY_SCHEMA, sc_text);
    free(sc_text);
    assert_string_equal(s(sc, "meta:class"), s(cls, "$id"));
    json_t *full = NULL;
    assert_int_equal(registry_get_full(fx->reg, "prod", REGISTRY_TENANT, REGISTRY_CLASS, s(cls, "meta:altId"),
                                       &full, &err), 0);
    assert_string_equal(s(full, "meta:class"), s(cls, "$id"));
    assert_string_equal(xdm_type(full, "_id"), "string");
    json_decref(full);
    json_decref(cls);
    json_decref(fg);
    json_decref(sc);
}

static void test_namespaces(void **state)
{
    struct reg_fixture *fx = *state;
    struct ing_err err;
    json_t *ns = NULL;
    assert_int_equal(registry_namespace_get(fx->reg, "prod", "email", &ns, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(ns, "id")), 6);
    assert_string_equal(s(ns, "namespaceType"), "Standard");
    json_decref(ns);
    assert_int_equal(registry_namespace_get(fx->reg, "prod", "4", &ns, &err), 0);
    assert_string_equal(s(ns, "code"), "ECID");
    json_decref(ns);
    assert_int_equal(registry_namespace_get(fx->reg, "prod", "lumaCrmId", &ns, &err), ING_ENOTFOUND);

    json_t *body = parse("{\"name\":\"Luma CRM Id\",\"code\":\"lumaCrmId\",\"idType\":\"Cross_device\"}");
    json_t *created = NULL;
    assert_int_equal(registry_namespace_create(fx->reg, "prod", body, &created, &err), 0);
    json_decref(body);
    assert_string_equal(s(created, "idType"), "CROSS_DEVICE");
    assert_string_equal(s(created, "namespaceType"), "Custom");
    assert_true(json_is_true(json_object_get(created, "custom")));
    json_int_t id1 = json_integer_value(json_object_get(created, "id"));
    assert_true(id1 >= 10000000);
    json_decref(created);
    body = parse("{\"name\":\"Luma Loyalty Id\",\"code\":\"lumaLoyaltyId\",\"idType\":\"cross_device\"}");
    assert_int_equal(registry_namespace_create(fx->reg, "prod", body, &created, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(created, "id")), id1 + 1);
    json_decref(created);
    json_decref(body);

    /* lookups: case-insensitive code, numeric id; other sandboxes do not see it */
    assert_int_equal(registry_namespace_get(fx->reg, "prod", "LUMACRMID", &ns, &err), 0);
    json_decref(ns);
    char idtext[32];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id1);
    assert_int_equal(registry_namespace_get(fx->reg, "prod", idtext, &ns, &err), 0);
    assert_string_equal(s(ns, "code"), "lumaCrmId");
    json_decref(ns);
    assert_int_equal(registry_namespace_get(fx->reg, "dev", "lumaCrmId", &ns, &err), ING_ENOTFOUND);

    static const struct { const char *body; int rc; } bad[] = {
        {"{\"name\":\"dup\",\"code\":\"LUMACRMID\",\"idType\":\"EMAIL\"}", ING_EEXIST},
        {"{\"name\":\"dup\",\"code\":\"email\",\"idType\":\"EMAIL\"}", ING_EEXIST},
        {"{\"name\":\"x\",\"code\":\"bad-code\",\"idType\":\"EMAIL\"}", ING_EINVAL},
        {"{\"name\":\"x\",\"code\":\"ok1\",\"idType\":\"SATELLITE\"}", ING_EINVAL},
        {"{\"code\":\"ok2\",\"idType\":\"EMAIL\"}", ING_EINVAL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = parse(bad[i].body);
        assert_int_equal(registry_namespace_create(fx->reg, "prod", body, NULL, &err), bad[i].rc);
        json_decref(body);
    }
    json_t *list = NULL;
    assert_int_equal(registry_namespace_list(fx->reg, "prod", &list, &err), 0);
    size_t customs = 0, i;
    json_t *v;
    json_array_foreach(list, i, v)
        customs += json_is_true(json_object_get(v, "custom"));
    assert_int_equal(customs, 2);
    assert_true(json_array_size(list) >= 12);
    json_decref(list);

    /* update: name and description only */
    body = parse("{\"name\":\"CRM\",\"description\":\"crm ids\"}");
    json_t *upd = NULL;
    assert_int_equal(registry_namespace_update(fx->reg, "prod", "lumacrmid", body, &upd, &err), 0);
    assert_string_equal(s(upd, "name"), "CRM");
    assert_string_equal(s(upd, "description"), "crm ids");
    json_decref(upd);
    json_decref(body);
    body = parse("{\"name\":\"CRM\",\"idType\":\"EMAIL\"}");
    assert_int_equal(registry_namespace_update(fx->reg, "prod", "lumaCrmId", body, NULL, &err), ING_EINVAL);
    json_decref(body);
    body = parse("{\"name\":\"My ECID\"}");
    assert_int_equal(registry_namespace_update(fx->reg, "prod", "ECID", body, NULL, &err), ING_EINVAL);
    json_decref(body);
}

static void test_descriptors(void **state)
{
    struct reg_fixture *fx = *state;
    struct ing_err err;
    json_t *nsb = parse("{\"name\":\"Luma Loyalty Id\",\"code\":\"lumaLoyaltyId\",\"idType\":\"CROSS_DEVICE\"}");
    assert_int_equal(registry_namespace_create(fx->reg, "prod", nsb, NULL, &err), 0);
    json_decref(nsb);
    json_t *fg = create(fx, "prod", REGISTRY_FIELDGROUP, IDENTITY_FG);
    char *text = xasprintf("{\"title\":\"Luma Loyalty Schema\",\"allOf\":[{\"$ref\":\"" PROFILE "\"},"
                           "{\"$ref\":\"%s\"}]}", s(fg, "$id"));
    json_t *schema = create(fx, "prod", REGISTRY_SCHEMA, text);
    free(text);

    struct { const char *prop, *ns; bool primary; int rc; const char *field; } cases[] = {
        {"/_" TENANT "/systemIdentifier/loyaltyId", "lumaLoyaltyId", true, 0, NULL},
        {"/_" TENANT "/systemIdentifier/crmId", "Email", false, 0, NULL},
        /* a second primary identity */
        {"/_" TENANT "/systemIdentifier/crmId", "lumaLoyaltyId", true, ING_EINVAL, NULL},
        {"/_" TENANT "/systemIdentifier/nope", "lumaLoyaltyId", false, ING_EINVAL, "xdm:sourceProperty"},
        {"/_" TENANT "/systemIdentifier", "lumaLoyaltyId", false, ING_EINVAL, "xdm:sourceProperty"},
        {"/_" TENANT "/systemIdentifier/crmId", "noSuchNamespace", false, ING_EINVAL, "xdm:namespace"},
    };
    char first_id[64] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *b = xasprintf("{\"@type\":\"xdm:descriptorIdentity\",\"xdm:sourceSchema\":\"%s\","
                            "\"xdm:sourceVersion\":1,\"xdm:sourceProperty\":\"%s\","
                            "\"xdm:namespace\":\"%s\",\"xdm:property\":\"xdm:code\",\"xdm:isPrimary\":%s}",
                            s(schema, "meta:altId"), cases[i].prop, cases[i].ns,
                            cases[i].primary ? "true" : "false");
        json_t *body = parse(b), *out = NULL;
        free(b);
        ing_err_clear(&err);
        int rc = registry_descriptor_create(fx->reg, "prod", body, &out, &err);
        json_decref(body);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].field)
            assert_string_equal(err.field, cases[i].field);
        if (rc == 0) {
            assert_int_equal(strlen(s(out, "@id")), 40);
            assert_string_equal(s(out, "xdm:sourceSchema"), s(schema, "$id")); /* canonical */
            if (!first_id[0])
                snprintf(first_id, sizeof(first_id), "%s", s(out, "@id"));
        }
        json_decref(out);
    }
    /* unknown schema */
    json_t *body = parse("{\"@type\":\"xdm:descriptorIdentity\",\"xdm:sourceSchema\":"
                         "\"https://ns.adobe.com/" TENANT "/schemas/0123\",\"xdm:sourceProperty\":\"/a\","
                         "\"xdm:namespace\":\"Email\"}");
    assert_int_equal(registry_descriptor_create(fx->reg, "prod", body, NULL, &err), ING_EINVAL);
    json_decref(body);

    json_t *ids = NULL;
    assert_int_equal(registry_identity_descriptors(fx->reg, "prod", s(schema, "$id"), &ids, &err), 0);
    assert_int_equal(json_array_size(ids), 2);
    json_decref(ids);
    json_t *d = NULL;
    assert_int_equal(registry_descriptor_get(fx->reg, "prod", first_id, &d, &err), 0);
    assert_true(json_is_true(json_object_get(d, "xdm:isPrimary")));
    json_decref(d);
    assert_int_equal(registry_descriptor_delete(fx->reg, "prod", first_id, &err), 0);
    assert_int_equal(registry_descriptor_get(fx->reg, "prod", first_id, &d, &err), ING_ENOTFOUND);
    assert_int_equal(registry_identity_descriptors(fx->reg, "prod", s(schema, "meta:altId"), &ids, &err), 0);
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    json_decref(schema);
    json_decref(fg);
}

int main(void)
{
    /* one group, so that the runner's "[  PASSED  ] N tests" line counts every test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_std_resources_parse, std_setup, std_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_luma_loyalty, std_setup, std_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_experience_event_commerce, std_setup, std_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_custom_record_class, std_setup, std_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_missing_ref_and_cycle, std_setup, std_teardown),
        cmocka_unit_test_setup_teardown(test_xdm_types_from_ranges, std_setup, std_teardown),
        cmocka_unit_test(test_json_patch),
        cmocka_unit_test_setup_teardown(test_global_get_by_id_and_altid, reg_setup, reg_teardown),
        cmocka_unit_test_setup_teardown(test_tenant_resources_and_patch, reg_setup, reg_teardown),
        cmocka_unit_test_setup_teardown(test_create_validation, reg_setup, reg_teardown),
        cmocka_unit_test_setup_teardown(test_namespaces, reg_setup, reg_teardown),
        cmocka_unit_test_setup_teardown(test_descriptors, reg_setup, reg_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
