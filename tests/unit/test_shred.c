/*
 * test_shred.c - unit tests for ingest/shred: the Luma records (loyalty, CRM, offline purchases),
 * the conversion matrix, required/constraint/type/syntax errors with their field paths, unknown
 * fields, Dremel definition and repetition levels (through shred_debug_levels), the promise
 * that a bad record leaves nothing in the Parquet writer, and that records of changing shapes
 * (whose absent properties the fast walk hands over as one null set) give the rows the token
 * walk gives, also when the record template is kept through misses or replaced; that the three
 * walks (template, fast, token) reject a missing required property alike, a wide object and
 * long lists (which grow the shredder's arrays), and shred_node_of over the whole plan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest/shred.h"
#include "parquet/pq_reader.h"
#include "util/buf.h"
#include "util/mem.h"

/* Luma Loyalty / CRM schema, resolved (xed-full) with the fields the tutorial data uses. */
static const char *PROFILE_SCHEMA =
    "{\"$id\":\"https://ns.adobe.com/techmarketingdemos/schemas/loyalty\","
    "\"meta:class\":\"https://ns.adobe.com/xdm/context/profile\",\"type\":\"object\","
    "\"properties\":{"
    "\"_techmarketingdemos\":{\"type\":\"object\",\"meta:xdmType\":\"object\",\"properties\":{"
    "  \"systemIdentifier\":{\"type\":\"object\",\"properties\":{"
    "    \"loyaltyId\":{\"type\":\"string\",\"meta:xdmType\":\"string\"},"
    "    \"crmId\":{\"type\":\"string\",\"meta:xdmType\":\"string\"}}}}},"
    "\"loyalty\":{\"type\":\"object\",\"properties\":{"
    "  \"points\":{\"type\":\"number\",\"meta:xdmType\":\"number\"},"
    "  \"tier\":{\"type\":\"string\"},"
    "  \"joinDate\":{\"type\":\"string\",\"format\":\"date-time\",\"meta:xdmType\":\"date-time\"}}},"
    "\"person\":{\"type\":\"object\",\"properties\":{"
    "  \"name\":{\"type\":\"object\",\"properties\":{"
    "    \"firstName\":{\"type\":\"string\"},\"lastName\":{\"type\":\"string\"}}},"
    "  \"gender\":{\"type\":\"string\",\"enum\":[\"male\",\"female\",\"not_specified\","
    "              \"non_specific\"]},"
    "  \"birthDate\":{\"type\":\"string\",\"format\":\"date\",\"meta:xdmType\":\"date\"}}},"
    "\"homeAddress\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}},"
    "\"personalEmail\":{\"type\":\"object\",\"properties\":{"
    "  \"address\":{\"type\":\"string\",\"format\":\"email\"}}},"
    "\"mobilePhone\":{\"type\":\"object\",\"properties\":{\"number\":{\"type\":\"string\"}}},"
    "\"extra\":{\"type\":\"object\",\"meta:xdmType\":\"object\"}"
    "}}";

/* Luma Offline Purchase Events: ExperienceEvent (_id, timestamp required) + commerce. */
static const char *EVENT_SCHEMA =
    "{\"$id\":\"https://ns.adobe.com/techmarketingdemos/schemas/offline\","
    "\"meta:class\":\"https://ns.adobe.com/xdm/context/experienceevent\",\"type\":\"object\","
    "\"required\":[\"_id\",\"timestamp\"],"
    "\"properties\":{"
    "\"_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"_techmarketingdemos\":{\"type\":\"object\",\"properties\":{"
    "  \"systemIdentifier\":{\"type\":\"object\",\"properties\":{"
    "    \"loyaltyId\":{\"type\":\"string\"},\"crmId\":{\"type\":\"string\"}}}}},"
    "\"commerce\":{\"type\":\"object\",\"properties\":{\"order\":{\"type\":\"object\","
    "  \"required\":[\"purchaseID\"],\"properties\":{"
    "    \"purchaseID\":{\"type\":\"string\"},\"priceTotal\":{\"type\":\"number\"}}}}},"
    "\"productListItems\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "  \"SKU\":{\"type\":\"string\"},"
    "  \"quantity\":{\"type\":\"integer\",\"meta:xdmType\":\"int\",\"minimum\":0}}}},"
    "\"matrix\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},"
    "\"identityMap\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":{"
    "  \"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "    \"id\":{\"type\":\"string\"},\"primary\":{\"type\":\"boolean\"}}}}},"
    "\"scalars\":{\"type\":\"object\",\"properties\":{"
    "  \"b\":{\"type\":\"boolean\"},"
    "  \"i8\":{\"type\":\"integer\",\"meta:xdmType\":\"byte\"},"
    "  \"i16\":{\"type\":\"integer\",\"meta:xdmType\":\"short\"},"
    "  \"i32\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"},"
    "  \"i64\":{\"type\":\"integer\",\"meta:xdmType\":\"long\"},"
    "  \"d\":{\"type\":\"number\",\"maximum\":100},"
    "  \"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "  \"ts\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "  \"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"
    "  \"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d+$\"},"
    "  \"site\":{\"type\":\"string\",\"format\":\"uri\"},"
    "  \"uid\":{\"type\":\"string\",\"format\":\"uuid\"}}}"
    "}}";

struct fixture {
    struct xdm_plan *plan;
    struct shred *sh;
};

static int setup_schema(void **state, const char *schema)
{
    json_error_t je;
    json_t *s = json_loads(schema, 0, &je);
    if (!s) {
        fprintf(stderr, "fixture: %s\n", je.text);
        return -1;
    }
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    struct ing_err err;
    int rc = xdm_plan_compile(s, NULL, &fx->plan, &err);
    json_decref(s);
    if (rc != 0) {
        fprintf(stderr, "compile: %s\n", err.msg);
        free(fx);
        return -1;
    }
    fx->sh = shred_new(fx->plan);
    *state = fx;
    return 0;
}

static int setup_profile(void **state) { return setup_schema(state, PROFILE_SCHEMA); }
static int setup_event(void **state) { return setup_schema(state, EVENT_SCHEMA); }

static int teardown(void **state)
{
    struct fixture *fx = *state;
    shred_free(fx->sh);
    xdm_plan_free(fx->plan);
    free(fx);
    return 0;
}

/* Shred a valid record, returning its converted form (caller decrefs). */
static json_t *ok(struct fixture *fx, const char *rec)
{
    json_t *conv = NULL;
    struct ing_err err;
    int rc = shred_record(fx->sh, rec, strlen(rec), NULL, &conv, &err);
    if (rc != 0)
        fail_msg("rejected (%s): %s [field %s, offset %lld]\n  %s", ing_strerror(rc), err.msg,
                 err.field, (long long)err.offset, rec);
    assert_non_null(conv);
    return conv;
}

/* Shred an invalid record and check the code and field path. */
static void bad(struct fixture *fx, const char *rec, int code, const char *field,
                struct ing_err *out)
{
    json_t *conv = (json_t *)1;
    struct ing_err err;
    int rc = shred_record(fx->sh, rec, strlen(rec), NULL, &conv, &err);
    if (rc != code)
        fail_msg("expected %s, got %s (%s) for %s", ing_strerror(code), ing_strerror(rc),
                 err.msg, rec);
    assert_int_equal(err.code, code);
    assert_null(conv);
    if (field)
        assert_string_equal(err.field, field);
    assert_true(err.msg[0] != '\0');
    if (out)
        *out = err;
}

static const json_t *at(const json_t *j, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    char *save = NULL;
    for (char *p = strtok_r(buf, ".", &save); p && j; p = strtok_r(NULL, ".", &save))
        j = json_object_get(j, p);
    return j;
}

static int column_of(struct fixture *fx, const char *path)
{
    const struct xdm_field *f = xdm_plan_find(fx->plan, path);
    if (!f || f->column < 0)
        fail_msg("no leaf %s", path);
    return f->column;
}

/* Check the staged levels of one column of the last record. */
static void levels(struct fixture *fx, int column, size_t n, const int *want_def,
                   const int *want_rep)
{
    int defs[64], reps[64];
    int got = shred_debug_levels(fx->sh, column, defs, reps, 64);
    if (got != (int)n)
        fail_msg("column %s: %d entries, expected %zu",
                 pq_schema_column_path(fx->plan->pq, column), got, n);
    for (size_t i = 0; i < n; i++) {
        if (defs[i] != want_def[i] || reps[i] != want_rep[i])
            fail_msg("column %s entry %zu: def %d rep %d, expected def %d rep %d",
                     pq_schema_column_path(fx->plan->pq, column), i, defs[i], reps[i],
                     want_def[i], want_rep[i]);
    }
}
#define LEVELS(fx, col, defs, reps) \
    levels(fx, col, sizeof((int[])defs) / sizeof(int), (int[])defs, (int[])reps)
#define L(...) {__VA_ARGS__}

/* ---- Luma ---- */

static void test_luma_loyalty_record(void **state)
{
    struct fixture *fx = *state;
    json_t *c = ok(fx, "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":5625458,"
                       "\"crmId\":\"112ca06ed53d3db37e4cea49cc45b71e\"}},\"loyalty\":{\"points\":"
                       "596518,\"tier\":\"gold\",\"joinDate\":\"2000-05-15\"},\"person\":{\"name\":"
                       "{\"firstName\":\"Daniel\",\"lastName\":\"Wright\"}},\"homeAddress\":"
                       "{\"city\":\"New York City\"}}");
    const json_t *id = at(c, "_techmarketingdemos.systemIdentifier.loyaltyId");
    assert_true(json_is_string(id));
    assert_string_equal(json_string_value(id), "5625458");
    const json_t *jd = at(c, "loyalty.joinDate");
    assert_string_equal(json_string_value(jd), "2000-05-15T00:00:00.000Z");
    const json_t *pts = at(c, "loyalty.points");
    assert_true(json_is_real(pts));
    assert_true(json_real_value(pts) == 596518.0);
    assert_string_equal(json_string_value(at(c, "loyalty.tier")), "gold");
    assert_string_equal(json_string_value(at(c, "person.name.firstName")), "Daniel");
    assert_string_equal(json_string_value(at(c, "homeAddress.city")), "New York City");
    assert_null(at(c, "person.gender"));
    assert_null(at(c, "personalEmail"));
    json_decref(c);

    /* levels: present leaf at max def, absent sibling under a present parent, absent object */
    LEVELS(fx, column_of(fx, "loyalty.points"), L(2), L(0));
    LEVELS(fx, column_of(fx, "person.gender"), L(1), L(0));
    LEVELS(fx, column_of(fx, "personalEmail.address"), L(0), L(0));
    LEVELS(fx, column_of(fx, "_techmarketingdemos.systemIdentifier.loyaltyId"), L(3), L(0));
    const struct shred_stats *st = shred_get_stats(fx->sh);
    assert_int_equal(st->records_ok, 1);
    assert_int_equal(st->records_failed, 0);
    assert_int_equal(st->unknown_fields, 0);
}

static void test_luma_crm_record_with_null_gender(void **state)
{
    struct fixture *fx = *state;
    json_t *c = ok(fx, "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"crmId\":"
                       "\"112ca06ed53d3db37e4cea49cc45b71e\"}},\"person\":{\"name\":{\"firstName\":"
                       "\"Danny\",\"lastName\":\"Wright\"},\"gender\":null},\"personalEmail\":"
                       "{\"address\":\"dwright@enablementadobe.com\"},\"mobilePhone\":{\"number\":"
                       "\"212-555-5555\"},\"homeAddress\":{\"city\":\"Portland\"}}");
    assert_null(at(c, "person.gender"));
    assert_non_null(at(c, "person.name"));
    assert_string_equal(json_string_value(at(c, "personalEmail.address")),
                        "dwright@enablementadobe.com");
    assert_string_equal(json_string_value(at(c, "mobilePhone.number")), "212-555-5555");
    json_decref(c);
    LEVELS(fx, column_of(fx, "person.gender"), L(1), L(0));
    LEVELS(fx, column_of(fx, "_techmarketingdemos.systemIdentifier.loyaltyId"), L(2), L(0));

    c = ok(fx, "{\"person\":{\"gender\":\"male\",\"birthDate\":\"1980-02-29\"}}");
    assert_string_equal(json_string_value(at(c, "person.gender")), "male");
    assert_string_equal(json_string_value(at(c, "person.birthDate")), "1980-02-29");
    json_decref(c);
    LEVELS(fx, column_of(fx, "person.name.firstName"), L(1), L(0));
}

static void test_luma_offline_purchase(void **state)
{
    struct fixture *fx = *state;
    json_t *c = ok(fx, "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":5625458}},"
                       "\"commerce\":{\"order\":{\"purchaseID\":\"805-472-642-1090\",\"priceTotal\":"
                       "252.19}},\"productListItems\":[{\"SKU\":\"24-UG03\",\"quantity\":1},"
                       "{\"SKU\":\"LLMJ03\",\"quantity\":3},{\"SKU\":\"LLWP11\",\"quantity\":2},"
                       "{\"SKU\":\"LLMH09\",\"quantity\":3}],\"timestamp\":\"2020-08-11T00:00:00Z\","
                       "\"_id\":\"e722bbcc-9653-4715-8ff6-545b314061f2\"}");
    const json_t *items = at(c, "productListItems");
    assert_true(json_is_array(items));
    assert_int_equal(json_array_size(items), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "SKU")),
                        "LLMJ03");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 3), "quantity")), 3);
    assert_true(json_is_integer(json_object_get(json_array_get(items, 0), "quantity")));
    assert_string_equal(json_string_value(at(c, "timestamp")), "2020-08-11T00:00:00.000Z");
    assert_true(json_real_value(at(c, "commerce.order.priceTotal")) == 252.19);
    assert_string_equal(json_string_value(at(c, "_techmarketingdemos.systemIdentifier.loyaltyId")),
                        "5625458");
    json_decref(c);

    LEVELS(fx, column_of(fx, "productListItems.SKU"), L(4, 4, 4, 4), L(0, 1, 1, 1));
    LEVELS(fx, column_of(fx, "productListItems.quantity"), L(4, 4, 4, 4), L(0, 1, 1, 1));
    /* absent array of arrays */
    LEVELS(fx, xdm_plan_find(fx->plan, "matrix")->item->item->column, L(0), L(0));
}

/* ---- levels ---- */

static void test_list_levels(void **state)
{
    struct fixture *fx = *state;
    const char *head = "{\"_id\":\"x\",\"timestamp\":0";
    char rec[512];
    json_t *c;
    int sku = column_of(fx, "productListItems.SKU");

    snprintf(rec, sizeof(rec), "%s,\"productListItems\":[]}", head);
    json_decref(ok(fx, rec));
    LEVELS(fx, sku, L(1), L(0)); /* empty list: only the list is defined */

    snprintf(rec, sizeof(rec), "%s,\"productListItems\":null}", head);
    json_decref(ok(fx, rec));
    LEVELS(fx, sku, L(0), L(0));

    snprintf(rec, sizeof(rec), "%s,\"productListItems\":[null]}", head);
    c = ok(fx, rec);
    assert_true(json_is_null(json_array_get(at(c, "productListItems"), 0)));
    json_decref(c);
    LEVELS(fx, sku, L(2), L(0)); /* null element: defined up to the repeated group */

    snprintf(rec, sizeof(rec), "%s,\"productListItems\":[{}]}", head);
    json_decref(ok(fx, rec));
    LEVELS(fx, sku, L(3), L(0)); /* element present, SKU absent */

    snprintf(rec, sizeof(rec), "%s,\"productListItems\":[{\"SKU\":\"a\"},{\"quantity\":1},"
                               "null,{\"SKU\":null}]}", head);
    json_decref(ok(fx, rec));
    LEVELS(fx, sku, L(4, 3, 2, 3), L(0, 1, 1, 1));
    LEVELS(fx, column_of(fx, "productListItems.quantity"), L(3, 4, 2, 3), L(0, 1, 1, 1));

    int cell = xdm_plan_find(fx->plan, "matrix")->item->item->column;
    snprintf(rec, sizeof(rec), "%s,\"matrix\":[[1,2],[],[3],null,[null]]}", head);
    c = ok(fx, rec);
    assert_int_equal(json_array_size(json_array_get(at(c, "matrix"), 0)), 2);
    json_decref(c);
    LEVELS(fx, cell, L(5, 5, 3, 5, 2, 4), L(0, 2, 1, 1, 1, 1));

    snprintf(rec, sizeof(rec), "%s,\"matrix\":[]}", head);
    json_decref(ok(fx, rec));
    LEVELS(fx, cell, L(1), L(0));
}

static void test_map_levels(void **state)
{
    struct fixture *fx = *state;
    const struct xdm_field *idm = xdm_plan_find(fx->plan, "identityMap");
    const struct xdm_field *id = xdm_field_child(idm->item->item, "id", 2);
    int key = id->column - 1;
    assert_string_equal(pq_schema_column_path(fx->plan->pq, key), "identityMap.key_value.key");

    json_t *c = ok(fx, "{\"_id\":\"x\",\"timestamp\":0,\"identityMap\":{"
                       "\"ECID\":[{\"id\":\"e1\",\"primary\":true},{\"id\":\"e2\"}],"
                       "\"Email\":[{\"id\":\"a@b.c\"}]}}");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(at(c, "identityMap.ECID"), 1), "id")),
                        "e2");
    assert_true(json_is_true(json_object_get(json_array_get(at(c, "identityMap.ECID"), 0),
                                             "primary")));
    json_decref(c);
    LEVELS(fx, key, L(2, 2), L(0, 1));
    LEVELS(fx, id->column, L(6, 6, 6), L(0, 2, 1));
    /* primary: present, absent, absent */
    LEVELS(fx, id->column + 1, L(6, 5, 5), L(0, 2, 1));

    json_decref(ok(fx, "{\"_id\":\"x\",\"timestamp\":0,\"identityMap\":{}}"));
    LEVELS(fx, key, L(1), L(0));
    LEVELS(fx, id->column, L(1), L(0));

    json_decref(ok(fx, "{\"_id\":\"x\",\"timestamp\":0,\"identityMap\":{\"a\":null,\"b\":[]}}"));
    LEVELS(fx, key, L(2, 2), L(0, 1));
    LEVELS(fx, id->column, L(2, 3), L(0, 1));

    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"identityMap\":{\"a\":\"not a list\"}}", ING_ETYPE,
        "identityMap{}", NULL);
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"identityMap\":[]}", ING_ETYPE, "identityMap", NULL);
}

/* ---- conversions ---- */

static void test_conversion_matrix(void **state)
{
    struct fixture *fx = *state;
    json_t *c = ok(fx, "{\"_id\":1.50,\"timestamp\":1531263959000,\"scalars\":{"
                       "\"b\":true,\"i8\":\"-128\",\"i16\":32767.0,\"i32\":\"42\",\"i64\":"
                       "9007199254740991,\"d\":\"12.5\",\"day\":18486,\"ts\":"
                       "\"2018-07-10T15:05:59.000-08:00\",\"s\":1234}}");
    assert_string_equal(json_string_value(at(c, "_id")), "1.50"); /* number keeps its JSON text */
    assert_string_equal(json_string_value(at(c, "timestamp")), "2018-07-10T23:05:59.000Z");
    assert_true(json_is_true(at(c, "scalars.b")));
    assert_int_equal(json_integer_value(at(c, "scalars.i8")), -128);
    assert_int_equal(json_integer_value(at(c, "scalars.i16")), 32767);
    assert_int_equal(json_integer_value(at(c, "scalars.i32")), 42);
    assert_int_equal(json_integer_value(at(c, "scalars.i64")), INT64_C(9007199254740991));
    assert_true(json_real_value(at(c, "scalars.d")) == 12.5);
    assert_string_equal(json_string_value(at(c, "scalars.day")), "1970-01-01"); /* 18486 ms */
    assert_string_equal(json_string_value(at(c, "scalars.ts")), "2018-07-10T23:05:59.000Z");
    assert_string_equal(json_string_value(at(c, "scalars.s")), "1234");
    json_decref(c);

    c = ok(fx, "{\"_id\":\"a\\\"b\\u00e9\",\"timestamp\":\"2020-08-11\",\"scalars\":{"
               "\"b\":\"FALSE\",\"d\":7,\"day\":\"2020-08-11T23:30:00-02:00\",\"i64\":\"1e3\","
               "\"\\u0069\\u0033\\u0032\":\"\\u0037\"}}");
    assert_string_equal(json_string_value(at(c, "_id")), "a\"b\xc3\xa9");
    assert_true(json_is_false(at(c, "scalars.b")));
    assert_true(json_is_real(at(c, "scalars.d")));
    assert_string_equal(json_string_value(at(c, "scalars.day")), "2020-08-12");
    assert_int_equal(json_integer_value(at(c, "scalars.i64")), 1000);
    assert_int_equal(json_integer_value(at(c, "scalars.i32")), 7); /* escaped key and value */
    json_decref(c);
}

static void test_type_errors(void **state)
{
    struct fixture *fx = *state;
    struct ing_err e;
#define REC(body) "{\"_id\":\"x\",\"timestamp\":0,\"scalars\":{" body "}}"
    bad(fx, REC("\"s\":true"), ING_ETYPE, "scalars.s", &e); /* booleans never convert */
    assert_non_null(strstr(e.msg, "boolean"));
    assert_non_null(strstr(e.msg, "string"));
    bad(fx, REC("\"s\":[\"ab\"]"), ING_ETYPE, "scalars.s", NULL);
    bad(fx, REC("\"s\":{}"), ING_ETYPE, "scalars.s", NULL);
    bad(fx, REC("\"d\":false"), ING_ETYPE, "scalars.d", NULL);
    bad(fx, REC("\"b\":1"), ING_ETYPE, "scalars.b", NULL);
    bad(fx, REC("\"b\":\"yes\""), ING_ETYPE, "scalars.b", NULL);
    bad(fx, REC("\"i32\":\"abc\""), ING_ETYPE, "scalars.i32", &e);
    assert_non_null(strstr(e.msg, "'abc'"));
    bad(fx, REC("\"i32\":1.5"), ING_ETYPE, "scalars.i32", NULL);
    bad(fx, REC("\"i8\":128"), ING_ETYPE, "scalars.i8", &e);
    assert_non_null(strstr(e.msg, "out of range for byte"));
    bad(fx, REC("\"i16\":-32769"), ING_ETYPE, "scalars.i16", NULL);
    bad(fx, REC("\"i32\":2147483648"), ING_ETYPE, "scalars.i32", NULL);
    bad(fx, REC("\"i64\":9007199254740992"), ING_ETYPE, "scalars.i64", NULL);
    bad(fx, REC("\"i64\":123456789012345678901234567890"), ING_ETYPE, "scalars.i64", NULL);
    bad(fx, REC("\"d\":1e999"), ING_ETYPE, "scalars.d", NULL);
    bad(fx, REC("\"ts\":1.5"), ING_ETYPE, "scalars.ts", NULL); /* doubles are not epoch ms */
    bad(fx, REC("\"ts\":\"2018-00-23T22:07:01Z\""), ING_ETYPE, "scalars.ts", &e);
    assert_non_null(strstr(e.msg, "2018-00-23T22:07:01Z"));
    bad(fx, REC("\"day\":\"2019-02-29\""), ING_ETYPE, "scalars.day", NULL);
    bad(fx, REC("\"day\":true"), ING_ETYPE, "scalars.day", NULL);
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"scalars\":5}", ING_ETYPE, "scalars", NULL);
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"productListItems\":{}}", ING_ETYPE,
        "productListItems", NULL);
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"productListItems\":[{\"quantity\":\"two\"}]}",
        ING_ETYPE, "productListItems[].quantity", &e);
    /* the offset points at the offending value inside the record */
    const char *rec = "{\"_id\":\"x\",\"timestamp\":0,\"productListItems\":[{\"quantity\":true}]}";
    bad(fx, rec, ING_ETYPE, "productListItems[].quantity", &e);
    assert_int_equal(e.offset, strstr(rec, "true") - rec);
}

static void test_constraint_errors(void **state)
{
    struct fixture *fx = *state;
    struct ing_err e;
    bad(fx, REC("\"s\":\"a\""), ING_ECONSTRAINT, "scalars.s", &e);
    assert_non_null(strstr(e.msg, "minLength"));
    bad(fx, REC("\"s\":\"abcde\""), ING_ECONSTRAINT, "scalars.s", &e);
    assert_non_null(strstr(e.msg, "maxLength"));
    json_decref(ok(fx, REC("\"s\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\""))); /* 4 characters */
    bad(fx, REC("\"s\":12345"), ING_ECONSTRAINT, "scalars.s", NULL);
    bad(fx, REC("\"d\":100.5"), ING_ECONSTRAINT, "scalars.d", &e);
    assert_non_null(strstr(e.msg, "maximum"));
    json_decref(ok(fx, REC("\"d\":100")));
    json_decref(ok(fx, REC("\"code\":\"AB-123\"")));
    bad(fx, REC("\"code\":\"ab-123\""), ING_ECONSTRAINT, "scalars.code", &e);
    assert_non_null(strstr(e.msg, "pattern"));
    bad(fx, REC("\"site\":\"not a uri\""), ING_ECONSTRAINT, "scalars.site", NULL);
    bad(fx, REC("\"uid\":\"e722bbcc\""), ING_ECONSTRAINT, "scalars.uid", &e);
    assert_non_null(strstr(e.msg, "UUID"));
    json_decref(ok(fx, REC("\"uid\":\"e722bbcc-9653-4715-8ff6-545b314061f2\"")));
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"productListItems\":[{\"quantity\":-1}]}",
        ING_ECONSTRAINT, "productListItems[].quantity", NULL);
#undef REC
}

static void test_profile_constraints(void **state)
{
    struct fixture *fx = *state;
    struct ing_err e;
    bad(fx, "{\"person\":{\"gender\":\"robot\"}}", ING_ECONSTRAINT, "person.gender", &e);
    assert_non_null(strstr(e.msg, "'robot'"));
    bad(fx, "{\"personalEmail\":{\"address\":\"not-an-email\"}}", ING_ECONSTRAINT,
        "personalEmail.address", NULL);
    bad(fx, "{\"person\":{\"birthDate\":\"1981-02-29\"}}", ING_ETYPE, "person.birthDate", NULL);
}

/* ---- required, unknown, syntax ---- */

static void test_required(void **state)
{
    struct fixture *fx = *state;
    struct ing_err e;
    bad(fx, "{\"_id\":\"x\"}", ING_EREQUIRED, "timestamp", &e);
    assert_non_null(strstr(e.msg, "timestamp"));
    bad(fx, "{\"_id\":\"x\",\"timestamp\":null}", ING_EREQUIRED, "timestamp", NULL);
    bad(fx, "{\"timestamp\":0}", ING_EREQUIRED, "_id", NULL);
    /* required inside an optional object: only when the object is present */
    json_decref(ok(fx, "{\"_id\":\"x\",\"timestamp\":0}"));
    json_decref(ok(fx, "{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{}}"));
    json_decref(ok(fx, "{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{\"order\":null}}"));
    bad(fx, "{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{\"order\":{\"priceTotal\":1}}}",
        ING_EREQUIRED, "commerce.order.purchaseID", NULL);
}

static void test_unknown_fields(void **state)
{
    struct fixture *fx = *state;
    const struct shred_stats *st = shred_get_stats(fx->sh);
    int64_t before = st->unknown_fields;
    json_t *c = ok(fx, "{\"foo\":1,\"bar\":{\"x\":[1,{\"y\":2}]},\"person\":{\"age\":3,"
                       "\"name\":{\"firstName\":\"A\",\"nick\":[]}},\"extra\":{\"anything\":[1]}}");
    assert_null(at(c, "foo"));
    assert_null(at(c, "extra"));
    assert_null(at(c, "person.age"));
    assert_string_equal(json_string_value(at(c, "person.name.firstName")), "A");
    json_decref(c);
    assert_int_equal(st->unknown_fields - before, 5);
    LEVELS(fx, column_of(fx, "person.name.firstName"), L(3), L(0));
    /* unknown fields of a failed record are not counted */
    before = st->unknown_fields;
    bad(fx, "{\"foo\":1,\"person\":{\"gender\":\"robot\"}}", ING_ECONSTRAINT, NULL, NULL);
    assert_int_equal(st->unknown_fields, before);
}

static void test_syntax(void **state)
{
    struct fixture *fx = *state;
    struct ing_err e;
    bad(fx, "[1,2]", ING_ESYNTAX, "", &e);
    assert_string_equal(e.msg, "a record must be a JSON object");
    bad(fx, "\"str\"", ING_ESYNTAX, "", NULL);
    bad(fx, "", ING_ESYNTAX, NULL, NULL);
    bad(fx, "   ", ING_ESYNTAX, NULL, NULL);
    bad(fx, "{\"person\":{\"gender\":", ING_ESYNTAX, NULL, &e);
    assert_true(e.offset >= 0);
    bad(fx, "{\"person\":{}} x", ING_ESYNTAX, NULL, NULL);
    bad(fx, "{\"foo\":[1,}", ING_ESYNTAX, NULL, NULL);
    bad(fx, "{\"person\":{\"gender\":\"male\",\"gender\":\"female\"}}", ING_ESYNTAX,
        "person.gender", &e);
    assert_non_null(strstr(e.msg, "duplicate"));
    /* a duplicate in another object instance is not a duplicate */
    json_decref(ok(fx, "{\"person\":{\"name\":{\"firstName\":\"a\"}},\"homeAddress\":"
                       "{\"city\":\"b\"}}"));
    assert_int_equal(shred_record(fx->sh, NULL, 0, NULL, NULL, &e), ING_ESYNTAX);
    /* errors without err and without converted */
    assert_int_equal(shred_record(fx->sh, "[]", 2, NULL, NULL, NULL), ING_ESYNTAX);
    assert_int_equal(shred_record(fx->sh, "{}", 2, NULL, NULL, NULL), 0);
}

/* ---- with a real writer ---- */

static void test_writer_gets_only_valid_rows(void **state)
{
    struct fixture *fx = *state;
    char path[] = "/tmp/test_shred_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pq_writer *w = NULL;
    struct ing_err err;
    assert_int_equal(pq_writer_open(&w, fx->plan->pq, path, NULL, &err), 0);

    const char *recs[] = {
        "{\"_id\":\"1\",\"timestamp\":\"2020-08-11T00:00:00Z\",\"productListItems\":"
        "[{\"SKU\":\"a\",\"quantity\":1},{\"SKU\":\"b\"}],\"identityMap\":{\"ECID\":[{\"id\":\"e\"}]}}",
        "{\"_id\":\"2\",\"timestamp\":\"2020-08-11T00:00:00Z\",\"productListItems\":"
        "[{\"SKU\":\"c\",\"quantity\":\"bad\"}]}", /* fails after staging some values */
        "{\"_id\":\"3\",\"timestamp\":0,\"matrix\":[[1],[]],\"scalars\":{\"b\":true,\"i8\":1,"
        "\"i16\":2,\"i32\":3,\"i64\":4,\"d\":5,\"day\":\"2020-01-01\",\"ts\":0,\"s\":\"xy\"}}",
        "{\"_id\":\"4\"}",
    };
    int expect[] = {0, ING_ETYPE, 0, ING_EREQUIRED};
    for (size_t i = 0; i < ING_ARRAY_LEN(recs); i++)
        assert_int_equal(shred_record(fx->sh, recs[i], strlen(recs[i]), w, NULL, &err),
                         expect[i]);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(shred_record(fx->sh, recs[0], strlen(recs[0]), w, NULL, &err), 0);
    struct pq_file_info info;
    assert_int_equal(pq_writer_close(w, &info, &err), 0);
    assert_int_equal(info.rows, 1002);
    assert_true(info.bytes > 0);
    unlink(path);
    const struct shred_stats *st = shred_get_stats(fx->sh);
    assert_int_equal(st->records_ok, 1002);
    assert_int_equal(st->records_failed, 2);
}

/* Every row of a Parquet file as JSON lines. */
static void file_rows(const char *path, struct buf *out)
{
    struct pq_reader *rd = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_reader_open(&rd, path, NULL, &err), 0);
    struct buf line = {0};
    int more;
    while ((more = pq_reader_next(rd, &err)) > 0) {
        buf_reset(&line);
        assert_int_equal(pq_reader_row_json(rd, &line, &err), 0);
        buf_append(out, line.data, line.len);
        buf_append_byte(out, '\n');
    }
    assert_int_equal(more, 0);
    pq_reader_free(rd);
    buf_free(&line);
}

/* Shapes that come and go (objects absent, null, present with other properties, keys in
 * another order) over more rows than the writer keeps a null set pending: the fast walk's
 * file and the token walk's (previews take it) hold the same rows. */
static void test_shapes_fast_and_token_walk_same_rows(void **state)
{
    struct fixture *fx = *state;
    const char *shapes[] = {
        "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":5000000,"
        "\"crmId\":\"f804\"}},\"loyalty\":{\"points\":581247,\"tier\":\"gold\","
        "\"joinDate\":\"1988-02-01T00:00:00Z\"},\"person\":{\"name\":{\"firstName\":\"Zo\","
        "\"lastName\":\"Tanaka\"}},\"homeAddress\":{\"city\":\"M\\u00fcnchen\"}}",
        "{\"person\":{\"name\":{\"lastName\":\"X\"}},\"loyalty\":null}",
        "{\"homeAddress\":{\"city\":\"Y\"},\"_techmarketingdemos\":{\"systemIdentifier\":"
        "{\"crmId\":\"c\"}},\"person\":{\"gender\":\"male\"}}",
        "{}",
        "{\"loyalty\":{\"tier\":\"silver\",\"points\":1},\"homeAddress\":{},"
        "\"_techmarketingdemos\":{\"systemIdentifier\":{\"crmId\":\"d\",\"loyaltyId\":\"7\"}}}",
    };
    const int order[] = {0, 0, 0, 0, 0, 1, 0, 2, 3, 4, 1, 1, 4, 0};
    char paths[2][32];
    struct ing_err err;
    for (int walk = 0; walk < 2; walk++) {
        snprintf(paths[walk], sizeof(paths[walk]), "/tmp/test_shred_XXXXXX");
        int fd = mkstemp(paths[walk]);
        assert_true(fd >= 0);
        close(fd);
        struct pq_writer *w = NULL;
        assert_int_equal(pq_writer_open(&w, fx->plan->pq, paths[walk], NULL, &err), 0);
        for (int r = 0; r < 3000; r++) {
            /* long runs of shape 0 first, then the mixed order */
            const char *rec = shapes[r < 1500 ? 0 : order[r % ING_ARRAY_LEN(order)]];
            json_t *converted = NULL;
            assert_int_equal(shred_record(fx->sh, rec, strlen(rec), w,
                                          walk ? &converted : NULL, &err), 0);
            json_decref(converted);
        }
        struct pq_file_info info;
        assert_int_equal(pq_writer_close(w, &info, &err), 0);
        assert_int_equal(info.rows, 3000);
    }
    struct buf fast = {0}, token = {0};
    file_rows(paths[0], &fast);
    file_rows(paths[1], &token);
    assert_int_equal(fast.len, token.len);
    assert_memory_equal(fast.data, token.data, fast.len);
    buf_append_byte(&fast, 0);
    /* shape 1: loyalty null, person.name with lastName only */
    assert_non_null(strstr((const char *)fast.data, "\"firstName\":null,\"lastName\":\"X\""));
    assert_non_null(strstr((const char *)fast.data, "\"city\":\"M\u00fcnchen\""));
    buf_free(&fast);
    buf_free(&token);
    unlink(paths[0]);
    unlink(paths[1]);
}

/* The template walk: records that match the last good one except in their scalars are taken
 * with the same levels as the other walks; one that differs anywhere else, or has a bad value
 * where the template had a good one, gets the error the token walk reports. */
static void test_template_walk(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    const char *good = "{\"loyalty\":{\"points\":12,\"tier\":\"gold\"},\"person\":{\"name\":"
                       "{\"firstName\":\"Ann\"}}}";
    /* twice: the first makes the template, the second is taken by it */
    for (int i = 0; i < 2; i++)
        assert_int_equal(shred_record(fx->sh, good, strlen(good), NULL, NULL, &err), 0);
    const char *same_shape = "{\"loyalty\":{\"points\":-3.5,\"tier\":\"s\\u00e9\"},\"person\":"
                             "{\"name\":{\"firstName\":\"Bo\"}}}";
    assert_int_equal(shred_record(fx->sh, same_shape, strlen(same_shape), NULL, NULL, &err), 0);
    LEVELS(fx, column_of(fx, "loyalty.points"), L(2), L(0));
    LEVELS(fx, column_of(fx, "loyalty.joinDate"), L(1), L(0));
    LEVELS(fx, column_of(fx, "person.name.lastName"), L(2), L(0));
    LEVELS(fx, column_of(fx, "person.gender"), L(1), L(0));
    LEVELS(fx, column_of(fx, "homeAddress.city"), L(0), L(0));
    /* a null where the template had a value: the fast walk takes it */
    const char *with_null = "{\"loyalty\":{\"points\":null,\"tier\":\"g\"},\"person\":{\"name\":"
                            "{\"firstName\":\"Ann\"}}}";
    assert_int_equal(shred_record(fx->sh, with_null, strlen(with_null), NULL, NULL, &err), 0);
    LEVELS(fx, column_of(fx, "loyalty.points"), L(1), L(0));
    assert_int_equal(shred_record(fx->sh, good, strlen(good), NULL, NULL, &err), 0);

    struct {
        const char *rec;
        int code;
        const char *field;
        int64_t offset;
    } bad[] = {
        /* a value of the wrong type where the template had a number */
        {"{\"loyalty\":{\"points\":\"x\",\"tier\":\"gold\"},\"person\":{\"name\":"
         "{\"firstName\":\"Ann\"}}}", ING_ETYPE, "loyalty.points", 22},
        /* an object where a scalar was */
        {"{\"loyalty\":{\"points\":{},\"tier\":\"gold\"},\"person\":{\"name\":"
         "{\"firstName\":\"Ann\"}}}", ING_ETYPE, "loyalty.points", -2},
        /* cut short, and trailing bytes */
        {"{\"loyalty\":{\"points\":12,\"tier\":\"gold\"},\"person\":{\"name\":"
         "{\"firstName\":\"Ann\"}}", ING_ESYNTAX, "", -2},
        {"{\"loyalty\":{\"points\":12,\"tier\":\"gold\"},\"person\":{\"name\":"
         "{\"firstName\":\"Ann\"}}}x", ING_ESYNTAX, "", -2},
        /* a number the template's number scan must not run past */
        {"{\"loyalty\":{\"points\":12x,\"tier\":\"gold\"},\"person\":{\"name\":"
         "{\"firstName\":\"Ann\"}}}", ING_ESYNTAX, "", -2},
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(bad); i++) {
        /* what the token walk says (previews take it) */
        json_t *converted = NULL;
        struct ing_err want;
        ing_err_clear(&want);
        assert_int_equal(shred_record(fx->sh, bad[i].rec, strlen(bad[i].rec), NULL, &converted,
                                      &want), bad[i].code);
        assert_string_equal(want.field, bad[i].field);
        if (bad[i].offset >= 0)
            assert_int_equal(want.offset, bad[i].offset);
        /* the template is still there: a good record first, then the bad one the fast way */
        assert_int_equal(shred_record(fx->sh, good, strlen(good), NULL, NULL, &err), 0);
        ing_err_clear(&err);
        assert_int_equal(shred_record(fx->sh, bad[i].rec, strlen(bad[i].rec), NULL, NULL, &err),
                         bad[i].code);
        assert_int_equal(err.offset, want.offset);
        assert_string_equal(err.msg, want.msg);
        assert_string_equal(err.field, want.field);
    }
}

/* shape with each '#' replaced by the row number, into out (reset first). */
static void fill_shape(const char *shape, int row, struct buf *out)
{
    char num[16];
    int n = snprintf(num, sizeof(num), "%d", row);
    buf_reset(out);
    for (const char *p = shape; *p; p++) {
        if (*p == '#')
            buf_append(out, num, (size_t)n);
        else
            buf_append_byte(out, (uint8_t)*p);
    }
}

/* Rows 0..rows-1, row r of shape shapes[order[r % strlen(order)] - 'A'], written once by the
 * fast walks (template and fast) and once by the token walk (previews take it): both files
 * must hold the same rows. The fast walks' rows are left in `out`. */
static void same_rows_both_walks(struct fixture *fx, const char *const *shapes,
                                 const char *order, int rows, struct buf *out)
{
    size_t period = strlen(order);
    char paths[2][32];
    struct ing_err err;
    struct buf rec = {0};
    for (int walk = 0; walk < 2; walk++) {
        snprintf(paths[walk], sizeof(paths[walk]), "/tmp/test_shred_XXXXXX");
        int fd = mkstemp(paths[walk]);
        assert_true(fd >= 0);
        close(fd);
        struct pq_writer *w = NULL;
        assert_int_equal(pq_writer_open(&w, fx->plan->pq, paths[walk], NULL, &err), 0);
        for (int r = 0; r < rows; r++) {
            fill_shape(shapes[order[(size_t)r % period] - 'A'], r, &rec);
            json_t *converted = NULL;
            int rc = shred_record(fx->sh, (const char *)rec.data, rec.len, w,
                                  walk ? &converted : NULL, &err);
            if (rc != 0)
                fail_msg("row %d rejected (%s): %s", r, ing_strerror(rc), err.msg);
            json_decref(converted);
        }
        struct pq_file_info info;
        assert_int_equal(pq_writer_close(w, &info, &err), 0);
        assert_int_equal(info.rows, rows);
    }
    struct buf token = {0};
    buf_reset(out);
    file_rows(paths[0], out);
    file_rows(paths[1], &token);
    assert_int_equal(out->len, token.len);
    assert_memory_equal(out->data, token.data, out->len);
    buf_append_byte(out, 0);
    buf_free(&token);
    buf_free(&rec);
    unlink(paths[0]);
    unlink(paths[1]);
}

/* Shapes that alternate, or come in runs shorter and longer than the template keeps through
 * its misses: a template kept while records of other shapes take the fast walk (two shapes
 * that can each be one; nulls; an object without columns, present or null; a dropped
 * property) still stages exactly what the other walks stage, as does the one that replaces it,
 * with each row's own scalars. */
static void test_template_kept_through_misses(void **state)
{
    struct fixture *fx = *state;
    const char *shapes[] = {
        /* A: a template */
        "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":#,\"crmId\":\"c#\"}},"
        "\"loyalty\":{\"points\":#.5,\"tier\":\"gold\"},\"person\":{\"name\":"
        "{\"firstName\":\"F#\",\"lastName\":\"L\"}},\"homeAddress\":{\"city\":\"C#\"}}",
        /* B: another template (another null set) */
        "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":#,\"crmId\":\"c#\"}},"
        "\"loyalty\":{\"points\":#,\"tier\":\"silver\"},\"person\":{\"name\":"
        "{\"firstName\":\"G#\"}}}",
        /* C: A's shape with a null: no template */
        "{\"_techmarketingdemos\":{\"systemIdentifier\":{\"loyaltyId\":#,\"crmId\":\"c#\"}},"
        "\"loyalty\":{\"points\":#.5,\"tier\":null},\"person\":{\"name\":"
        "{\"firstName\":\"F#\",\"lastName\":\"L\"}},\"homeAddress\":{\"city\":\"C#\"}}",
        /* D: an object without columns, present; E: null; F: a dropped property */
        "{\"loyalty\":{\"points\":#},\"extra\":{\"k\":[#]},\"homeAddress\":{\"city\":\"D#\"}}",
        "{\"loyalty\":{\"points\":#},\"extra\":null,\"homeAddress\":{\"city\":\"E#\"}}",
        "{\"loyalty\":{\"points\":#},\"zzz\":\"#\",\"homeAddress\":{\"city\":\"F#\"}}",
    };
    struct buf rows = {0};
    same_rows_both_walks(fx, shapes, "AAABABABACACAABBBABBBBABBBBBAACCCCCCADDDDDAEEEEEEAFFFFFB"
                                     "EEEEBEBDDDDDDB", 2000, &rows);
    const char *text = (const char *)rows.data;
    /* each row its own scalars (keys come sorted): row 1007 is a B after four Bs, 1008 the A
     * after them, 1010 a C, 1030 an F */
    assert_non_null(strstr(text, "\"homeAddress\":null,\"loyalty\":{\"joinDate\":null,"
                                 "\"points\":1007,\"tier\":\"silver\"}"));
    assert_non_null(strstr(text, "\"homeAddress\":{\"city\":\"C1008\"},\"loyalty\":"
                                 "{\"joinDate\":null,\"points\":1008.5,\"tier\":\"gold\"}"));
    assert_non_null(strstr(text, "\"points\":1010.5,\"tier\":null"));
    assert_non_null(strstr(text, "\"homeAddress\":{\"city\":\"F1030\"}"));
    buf_free(&rows);
}

/* Records with lists (no template: their elements note no template slots) between records
 * that are templates, on the events schema: the same rows from every walk. */
static void test_template_around_lists(void **state)
{
    struct fixture *fx = *state;
    const char *shapes[] = {
        "{\"_id\":\"#\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"commerce\":{\"order\":"
        "{\"purchaseID\":\"p#\",\"priceTotal\":#.25}},\"scalars\":{\"i32\":#,\"s\":\"ab\"}}",
        "{\"_id\":\"#\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"productListItems\":"
        "[{\"SKU\":\"s#\",\"quantity\":#},{\"SKU\":\"t\"}],\"commerce\":{\"order\":"
        "{\"purchaseID\":\"p#\"}},\"matrix\":[[#,1],[]]}",
        "{\"_id\":\"#\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"identityMap\":{\"ECID\":"
        "[{\"id\":\"e#\",\"primary\":true}]},\"scalars\":{\"i32\":#,\"s\":\"ab\"}}",
    };
    struct buf rows = {0};
    same_rows_both_walks(fx, shapes, "AABABBBBBACACCCCCAAB", 600, &rows);
    assert_non_null(strstr((const char *)rows.data, "\"productListItems\":[{\"SKU\":\"s502\","
                                                    "\"quantity\":502},{\"SKU\":\"t\""));
    assert_non_null(strstr((const char *)rows.data, "\"priceTotal\":500.25,\"purchaseID\":"
                                                    "\"p500\""));
    buf_free(&rows);
}

/* ---- required properties in every walk ---- */

/* Without previews the template and fast walks see the record first: a required property
 * missing must still fail (they give up) with the token walk's error, code, field, message and
 * offset (the closing brace of the object that lacks it), also right after good records of the
 * same shape made a template. */
static void test_required_in_every_walk(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *rec, *field, *msg;
    } cases[] = {
        {"{\"_id\":\"x\"}", "timestamp", "required field timestamp is missing"},
        {"{\"timestamp\":\"2024-01-01T00:00:00Z\",\"commerce\":{}}", "_id",
         "required field _id is missing"},
        {"{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{\"order\":{\"priceTotal\":1}}}",
         "commerce.order.purchaseID", "required field commerce.order.purchaseID is missing"},
    };
    const char *good = "{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{\"order\":"
                       "{\"purchaseID\":\"p\",\"priceTotal\":1}}}";
    for (size_t i = 0; i < ING_ARRAY_LEN(cases); i++) {
        const char *rec = cases[i].rec;
        struct ing_err token, fast;
        bad(fx, rec, ING_EREQUIRED, cases[i].field, &token); /* a preview: the token walk */
        assert_string_equal(token.msg, cases[i].msg);
        assert_int_equal(token.offset, (int64_t)(strrchr(rec, '}') - rec) -
                                           (i == 2 ? 2 : 0)); /* the innermost '}' */
        for (int round = 0; round < 3; round++) {
            /* round 0 after a failure, then after good records (the template's) */
            if (round > 0)
                for (int k = 0; k < 2; k++)
                    assert_int_equal(shred_record(fx->sh, good, strlen(good), NULL, NULL, NULL),
                                     0);
            assert_int_equal(shred_record(fx->sh, rec, strlen(rec), NULL, NULL, &fast),
                             ING_EREQUIRED);
            assert_string_equal(fast.field, token.field);
            assert_string_equal(fast.msg, token.msg);
            assert_int_equal(fast.offset, token.offset);
        }
    }
    /* an optional object that is absent or null asks nothing of its required properties, in
     * the fast walks too */
    const char *fine[] = {"{\"_id\":\"x\",\"timestamp\":0}",
                          "{\"_id\":\"x\",\"timestamp\":0,\"commerce\":{\"order\":null}}"};
    for (size_t i = 0; i < ING_ARRAY_LEN(fine); i++)
        assert_int_equal(shred_record(fx->sh, fine[i], strlen(fine[i]), NULL, NULL, NULL), 0);
}

/* The template compares every byte around the scalars: a record that differs from it in one
 * byte of a key, at any place in the key, is not taken as the template's shape. */
static void test_template_compares_every_byte(void **state)
{
    struct fixture *fx = *state;
    const struct shred_stats *st = shred_get_stats(fx->sh);
    const char *good = "{\"person\":{\"name\":{\"firstName\":\"Ann\",\"lastName\":\"B\"}},"
                       "\"homeAddress\":{\"city\":\"C\"}}";
    int last = column_of(fx, "person.name.lastName");
    size_t key = (size_t)(strstr(good, "lastName") - good);
    for (size_t k = key; k < key + strlen("lastName"); k++) {
        for (int i = 0; i < 2; i++) /* the template */
            assert_int_equal(shred_record(fx->sh, good, strlen(good), NULL, NULL, NULL), 0);
        LEVELS(fx, last, L(3), L(0));
        char rec[256];
        snprintf(rec, sizeof(rec), "%s", good);
        rec[k] = 'X'; /* lastName -> an unknown property */
        int64_t unknown = st->unknown_fields;
        assert_int_equal(shred_record(fx->sh, rec, strlen(rec), NULL, NULL, NULL), 0);
        assert_int_equal(st->unknown_fields, unknown + 1);
        LEVELS(fx, last, L(2), L(0)); /* lastName absent */
    }
}

/* ---- a wide object and long lists ---- */

/* An object of 200 properties, filled in reverse order, or every third one, or all but one:
 * more properties seen at once than the shredder's arrays start with, and gaps worked out
 * from long lists; each walk stages the same rows. */
static void test_wide_object(void **state)
{
    (void)state;
    struct buf schema = {0};
    buf_append_str(&schema, "{\"$id\":\"https://ns.adobe.com/t/wide\",\"type\":\"object\","
                            "\"properties\":{\"w\":{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 200; i++)
        buf_printf(&schema, "%s\"p%03d\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"}",
                   i ? "," : "", i);
    buf_append_str(&schema, "}}}}");
    void *st = NULL;
    assert_int_equal(setup_schema(&st, buf_cstr(&schema)), 0);
    struct fixture *fx = st;
    struct buf shapes[3] = {{0}};
    for (int s = 0; s < 3; s++) {
        buf_append_str(&shapes[s], "{\"w\":{");
        bool first = true;
        for (int k = 0; k < 200; k++) {
            int i = s == 0 ? 199 - k : k;
            if ((s == 1 && i % 3 != 0) || (s == 2 && i == 57))
                continue;
            /* the value is i + 1 followed by the row number */
            buf_printf(&shapes[s], "%s\"p%03d\":%d#", first ? "" : ",", i, i + 1);
            first = false;
        }
        buf_append_str(&shapes[s], "}}");
    }
    const char *shape_text[3] = {buf_cstr(&shapes[0]), buf_cstr(&shapes[1]),
                                 buf_cstr(&shapes[2])};
    struct buf rows = {0};
    same_rows_both_walks(fx, shape_text, "AAABBCABCCCA", 60, &rows);
    /* row 4 has shape B: p000 = 1 then row 4, p001 null, p003 = 4 then 4 */
    assert_non_null(strstr((const char *)rows.data, "\"p000\":14,\"p001\":null,\"p002\":null,"
                                                    "\"p003\":44,"));
    /* row 9 has shape C: all but p057 */
    assert_non_null(strstr((const char *)rows.data, "\"p056\":579,\"p057\":null,"
                                                    "\"p058\":599,"));
    /* levels of one more record of shape C: p057 null (w defined), p058 present */
    struct buf rec = {0};
    fill_shape(shape_text[2], 60, &rec);
    assert_int_equal(shred_record(fx->sh, (const char *)rec.data, rec.len, NULL, NULL, NULL), 0);
    LEVELS(fx, column_of(fx, "w.p057"), L(1), L(0));
    LEVELS(fx, column_of(fx, "w.p058"), L(2), L(0));
    buf_free(&rec);
    buf_free(&rows);
    for (int s = 0; s < 3; s++)
        buf_free(&shapes[s]);
    buf_free(&schema);
    teardown(&st);
}

/* A list of 3000 objects and a map of 500 keys: thousands of staged values in one record, in
 * order, with their levels. */
static void test_long_lists(void **state)
{
    struct fixture *fx = *state;
    struct buf rec = {0};
    buf_append_str(&rec, "{\"_id\":\"x\",\"timestamp\":0,\"productListItems\":[");
    for (int i = 0; i < 3000; i++)
        buf_printf(&rec, "%s{\"SKU\":\"s%d\",\"quantity\":%d}", i ? "," : "", i, i);
    buf_append_str(&rec, "],\"identityMap\":{");
    for (int i = 0; i < 500; i++)
        buf_printf(&rec, "%s\"ns%d\":[{\"id\":\"v%d\"}]", i ? "," : "", i, i);
    buf_append_str(&rec, "}}");
    for (int walk = 0; walk < 2; walk++) {
        json_t *conv = NULL;
        struct ing_err err;
        assert_int_equal(shred_record(fx->sh, (const char *)rec.data, rec.len, NULL,
                                      walk ? &conv : NULL, &err),
                         0);
        int defs[3001], reps[3001];
        int col = column_of(fx, "productListItems.SKU");
        assert_int_equal(shred_debug_levels(fx->sh, col, defs, reps, 3001), 3000);
        for (int i = 0; i < 3000; i++) {
            assert_int_equal(defs[i], 4);
            assert_int_equal(reps[i], i == 0 ? 0 : 1);
        }
        const struct xdm_field *idm = xdm_plan_find(fx->plan, "identityMap");
        int key = xdm_field_child(idm->item->item, "id", 2)->column - 1; /* as test_map_levels */
        assert_int_equal(shred_debug_levels(fx->sh, key, defs, reps, 3001), 500);
        assert_int_equal(reps[499], 1);
        if (walk) {
            const json_t *items = json_object_get(conv, "productListItems");
            assert_int_equal(json_array_size(items), 3000);
            assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 2999),
                                                                "quantity")),
                             2999);
            assert_int_equal(json_object_size(json_object_get(conv, "identityMap")), 500);
        }
        json_decref(conv);
    }
    buf_free(&rec);
}

/* ---- shred_node_of ---- */

/* Every field of the plan has its own node, and a node stands for its field: a value put
 * through it takes that field's checks. */
static void collect_nodes(struct fixture *fx, const struct xdm_field *f, int *seen, size_t max,
                          size_t *count)
{
    int node = shred_node_of(fx->sh, f);
    if (node < 0 || (size_t)node >= max)
        fail_msg("field %s: node %d", f->path ? f->path : "(root)", node);
    if (seen[node])
        fail_msg("field %s: node %d given twice", f->path ? f->path : "(root)", node);
    seen[node] = 1;
    (*count)++;
    for (size_t i = 0; i < f->n_children; i++)
        collect_nodes(fx, &f->children[i], seen, max, count);
    if (f->item)
        collect_nodes(fx, f->item, seen, max, count);
}

static void test_node_of(void **state)
{
    struct fixture *fx = *state;
    int seen[512] = {0};
    size_t count = 0;
    collect_nodes(fx, &fx->plan->root, seen, ING_ARRAY_LEN(seen), &count);
    assert_true(count > 30);
    assert_int_equal(shred_node_of(fx->sh, &fx->plan->root), 0);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(seen[i], 1); /* the nodes are 0..count-1 */
    /* not fields of this plan */
    struct xdm_field copy = *xdm_plan_find(fx->plan, "_id");
    assert_int_equal(shred_node_of(fx->sh, &copy), -1);
    assert_int_equal(shred_node_of(fx->sh, NULL), -1);

    /* a record fed value by value through the nodes found */
    int id = shred_node_of(fx->sh, xdm_plan_find(fx->plan, "_id"));
    int ts = shred_node_of(fx->sh, xdm_plan_find(fx->plan, "timestamp"));
    int qty = shred_node_of(fx->sh, xdm_plan_find(fx->plan, "scalars.i8"));
    struct jtok sval = {.type = JT_STRING, .p = "abc", .n = 3};
    struct jtok tval = {.type = JT_STRING, .p = "2024-01-02T03:04:05Z", .n = 20};
    struct jtok big = {.type = JT_NUMBER, .p = "300", .n = 3, .integer = true};
    struct ing_err err;
    shred_begin(fx->sh);
    assert_int_equal(shred_put(fx->sh, id, &sval, 0, &err), 0);
    assert_int_equal(shred_put(fx->sh, ts, &tval, 0, &err), 0);
    /* 300 is no byte: the node is scalars.i8's */
    assert_int_equal(shred_put(fx->sh, qty, &big, 0, &err), ING_ETYPE);
    assert_string_equal(err.field, "scalars.i8");
    /* and a string is no timestamp */
    assert_int_equal(shred_put(fx->sh, ts, &sval, 0, &err), ING_ETYPE);
    assert_string_equal(err.field, "timestamp");
    shred_begin(fx->sh);
    assert_int_equal(shred_put(fx->sh, id, &sval, 0, &err), 0);
    assert_int_equal(shred_end(fx->sh, NULL, &err), 0);
    LEVELS(fx, column_of(fx, "_id"), L(1), L(0));
}

static void test_debug_levels_bad_column(void **state)
{
    struct fixture *fx = *state;
    int d[1], r[1];
    assert_int_equal(shred_debug_levels(fx->sh, -1, d, r, 1), ING_EINVAL);
    assert_int_equal(shred_debug_levels(fx->sh, 100000, d, r, 1), ING_EINVAL);
    shred_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_luma_loyalty_record, setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_luma_crm_record_with_null_gender, setup_profile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_luma_offline_purchase, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_list_levels, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_map_levels, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_conversion_matrix, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_type_errors, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_constraint_errors, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_profile_constraints, setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_required, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_fields, setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_syntax, setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_writer_gets_only_valid_rows, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_debug_levels_bad_column, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_shapes_fast_and_token_walk_same_rows,
                                        setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_template_walk, setup_profile, teardown),
        cmocka_unit_test_setup_teardown(test_template_kept_through_misses, setup_profile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_template_around_lists, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_required_in_every_walk, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_template_compares_every_byte, setup_profile,
                                        teardown),
        cmocka_unit_test(test_wide_object),
        cmocka_unit_test_setup_teardown(test_long_lists, setup_event, teardown),
        cmocka_unit_test_setup_teardown(test_node_of, setup_event, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
