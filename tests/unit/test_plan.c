/*
 * test_plan.c - unit tests for schema/xdm_plan: type inference, constraints, the Parquet layout
 * (column order, LIST and MAP shapes, definition and repetition levels), identity descriptors and
 * the rejection of bad schemas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schema/xdm_plan.h"
#include "util/mem.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("fixture does not parse: %s (line %d)", je.text, je.line);
    return j;
}

static struct xdm_plan *compile_ok(const char *schema, const char *idents)
{
    json_t *s = parse(schema);
    json_t *d = idents ? parse(idents) : NULL;
    struct xdm_plan *plan = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_plan_compile(s, d, &plan, &err);
    json_decref(s);
    json_decref(d);
    if (rc != 0)
        fail_msg("compile failed (%d): %s [field %s]", rc, err.msg, err.field);
    assert_non_null(plan);
    return plan;
}

static int compile_err(const char *schema, const char *idents, struct ing_err *err)
{
    json_t *s = parse(schema);
    json_t *d = idents ? parse(idents) : NULL;
    struct xdm_plan *plan = (struct xdm_plan *)1;
    ing_err_clear(err);
    int rc = xdm_plan_compile(s, d, &plan, err);
    json_decref(s);
    json_decref(d);
    assert_true(rc < 0);
    assert_null(plan);
    return rc;
}

static const struct xdm_field *find(const struct xdm_plan *plan, const char *path)
{
    const struct xdm_field *f = xdm_plan_find(plan, path);
    if (!f)
        fail_msg("no field %s", path);
    return f;
}

/* The leaf's levels agree with the Parquet schema's own computation. */
static void assert_leaf(const struct xdm_plan *plan, const char *path, const char *column_path,
                        int def, int rep)
{
    const struct xdm_field *f = find(plan, path);
    assert_true(f->column >= 0);
    assert_string_equal(pq_schema_column_path(plan->pq, f->column), column_path);
    assert_int_equal(f->def_level, def);
    assert_int_equal(f->rep_level, rep);
    assert_int_equal(pq_schema_max_def(plan->pq, f->column), def);
    assert_int_equal(pq_schema_max_rep(plan->pq, f->column), rep);
}

static const char *TYPES_SCHEMA =
    "{\"$id\":\"https://ns.adobe.com/t/schemas/types\",\"meta:class\":\"https://ns.adobe.com/"
    "xdm/context/profile\",\"type\":\"object\",\"properties\":{"
    "\"s\":{\"type\":\"string\"},"
    "\"b\":{\"type\":\"boolean\"},"
    "\"i8\":{\"type\":\"integer\",\"minimum\":-128,\"maximum\":128},"
    "\"i16\":{\"type\":\"integer\",\"minimum\":-32768,\"maximum\":32768},"
    "\"i32\":{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483648},"
    "\"i64\":{\"type\":\"integer\"},"
    "\"ranged\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},"
    "\"xint\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"},"
    "\"xshort\":{\"type\":\"integer\",\"meta:xdmType\":\"short\"},"
    "\"dbl\":{\"type\":\"number\"},"
    "\"d\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"dt\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"xdt\":{\"type\":\"string\",\"meta:xdmType\":\"date-time\"},"
    "\"nullable\":{\"type\":[\"null\",\"string\"]}"
    "}}";

static void test_types(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(TYPES_SCHEMA, NULL);
    assert_string_equal(plan->schema_id, "https://ns.adobe.com/t/schemas/types");
    assert_string_equal(plan->class_id, "https://ns.adobe.com/xdm/context/profile");
    assert_int_equal(plan->root.type, XDM_OBJECT);
    assert_int_equal(find(plan, "s")->type, XDM_STRING);
    assert_int_equal(find(plan, "b")->type, XDM_BOOLEAN);
    assert_int_equal(find(plan, "i8")->type, XDM_BYTE);
    assert_int_equal(find(plan, "i16")->type, XDM_SHORT);
    assert_int_equal(find(plan, "i32")->type, XDM_INT);
    assert_int_equal(find(plan, "i64")->type, XDM_LONG);
    assert_int_equal(find(plan, "ranged")->type, XDM_LONG);
    assert_int_equal(find(plan, "xint")->type, XDM_INT);
    assert_int_equal(find(plan, "xshort")->type, XDM_SHORT);
    assert_int_equal(find(plan, "dbl")->type, XDM_DOUBLE);
    assert_int_equal(find(plan, "d")->type, XDM_DATE);
    assert_int_equal(find(plan, "dt")->type, XDM_DATETIME);
    assert_int_equal(find(plan, "xdt")->type, XDM_DATETIME);
    assert_int_equal(find(plan, "nullable")->type, XDM_STRING);
    /* 14 leaves, all at the top: def 1, rep 0 */
    assert_int_equal(pq_schema_ncolumns(plan->pq), 14);
    assert_leaf(plan, "s", "s", 1, 0);
    assert_leaf(plan, "dt", "dt", 1, 0);
    xdm_plan_free(plan);
}

static void test_column_order_sorted_depth_first(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(
        "{\"type\":\"object\",\"properties\":{"
        "\"zeta\":{\"type\":\"string\"},"
        "\"person\":{\"type\":\"object\",\"properties\":{"
        "  \"name\":{\"type\":\"object\",\"properties\":{\"lastName\":{\"type\":\"string\"},"
        "                                              \"firstName\":{\"type\":\"string\"}}},"
        "  \"gender\":{\"type\":\"string\"}}},"
        "\"_id\":{\"type\":\"string\"},"
        "\"alpha\":{\"type\":\"number\"}}}",
        NULL);
    static const char *expect[] = {"_id", "alpha", "person.gender", "person.name.firstName",
                                   "person.name.lastName", "zeta"};
    assert_int_equal(pq_schema_ncolumns(plan->pq), ING_ARRAY_LEN(expect));
    for (size_t i = 0; i < ING_ARRAY_LEN(expect); i++)
        assert_string_equal(pq_schema_column_path(plan->pq, (int)i), expect[i]);
    /* children sorted by name */
    assert_string_equal(plan->root.children[0].name, "_id");
    assert_string_equal(plan->root.children[3].name, "zeta");
    const struct xdm_field *person = find(plan, "person");
    assert_int_equal(person->column, -1);
    assert_int_equal(person->def_level, 1);
    assert_leaf(plan, "person.name.firstName", "person.name.firstName", 3, 0);
    assert_string_equal(find(plan, "person.name.firstName")->path, "person.name.firstName");
    xdm_plan_free(plan);
}

static const char *COMMERCE_SCHEMA =
    "{\"type\":\"object\",\"required\":[\"_id\",\"timestamp\"],\"properties\":{"
    "\"_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"productListItems\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "  \"SKU\":{\"type\":\"string\"},\"quantity\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"}"
    "}}},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"matrix\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},"
    "\"identityMap\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":{"
    "  \"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "    \"id\":{\"type\":\"string\"},\"primary\":{\"type\":\"boolean\"}}}}},"
    "\"attrs\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}"
    "}}";

static void test_arrays_and_maps(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(COMMERCE_SCHEMA, NULL);
    const struct xdm_field *pli = find(plan, "productListItems");
    assert_int_equal(pli->type, XDM_ARRAY);
    assert_int_equal(pli->column, -1);
    assert_int_equal(pli->def_level, 1);
    assert_int_equal(pli->rep_level, 0);
    assert_non_null(pli->item);
    assert_int_equal(pli->item->type, XDM_OBJECT);
    assert_int_equal(pli->item->def_level, 3);
    assert_int_equal(pli->item->rep_level, 1);
    assert_string_equal(pli->item->path, "productListItems[]");
    /* arrays are transparent to xdm_plan_find */
    assert_leaf(plan, "productListItems.SKU", "productListItems.list.element.SKU", 4, 1);
    assert_leaf(plan, "productListItems.quantity", "productListItems.list.element.quantity", 4,
                1);
    assert_string_equal(find(plan, "productListItems.SKU")->path, "productListItems[].SKU");
    assert_int_equal(find(plan, "productListItems.quantity")->type, XDM_INT);

    const struct xdm_field *tags = find(plan, "tags");
    assert_int_equal(tags->item->column >= 0, 1);
    assert_string_equal(pq_schema_column_path(plan->pq, tags->item->column), "tags.list.element");
    assert_int_equal(tags->item->def_level, 3);
    assert_int_equal(tags->item->rep_level, 1);
    assert_int_equal(pq_schema_max_def(plan->pq, tags->item->column), 3);

    const struct xdm_field *matrix = find(plan, "matrix");
    const struct xdm_field *cell = matrix->item->item;
    assert_string_equal(pq_schema_column_path(plan->pq, cell->column),
                        "matrix.list.element.list.element");
    assert_int_equal(cell->def_level, 5);
    assert_int_equal(cell->rep_level, 2);
    assert_int_equal(pq_schema_max_def(plan->pq, cell->column), 5);
    assert_int_equal(pq_schema_max_rep(plan->pq, cell->column), 2);

    const struct xdm_field *idm = find(plan, "identityMap");
    assert_int_equal(idm->type, XDM_MAP);
    assert_int_equal(idm->item->type, XDM_ARRAY);
    assert_int_equal(idm->item->def_level, 3);
    assert_int_equal(idm->item->rep_level, 1);
    const struct xdm_field *id = xdm_field_child(idm->item->item, "id", 2);
    assert_non_null(id);
    assert_string_equal(id->path, "identityMap{}[].id");
    assert_string_equal(pq_schema_column_path(plan->pq, id->column),
                        "identityMap.key_value.value.list.element.id");
    assert_int_equal(id->def_level, 6);
    assert_int_equal(id->rep_level, 2);
    assert_int_equal(pq_schema_max_def(plan->pq, id->column), 6);
    assert_int_equal(pq_schema_max_rep(plan->pq, id->column), 2);

    /* a map without meta:xdmType: object + additionalProperties; key column right before value */
    const struct xdm_field *attrs = find(plan, "attrs");
    assert_int_equal(attrs->type, XDM_MAP);
    int vcol = attrs->item->column;
    assert_string_equal(pq_schema_column_path(plan->pq, vcol), "attrs.key_value.value");
    assert_string_equal(pq_schema_column_path(plan->pq, vcol - 1), "attrs.key_value.key");
    assert_int_equal(pq_schema_max_def(plan->pq, vcol - 1), 2); /* key is required */
    assert_int_equal(pq_schema_max_def(plan->pq, vcol), 3);
    assert_int_equal(pq_schema_max_rep(plan->pq, vcol), 1);

    /* required */
    assert_true(find(plan, "_id")->required);
    assert_true(find(plan, "timestamp")->required);
    assert_false(find(plan, "tags")->required);
    xdm_plan_free(plan);
}

static void test_empty_objects_have_no_columns(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(
        "{\"type\":\"object\",\"properties\":{"
        "\"a\":{\"type\":\"string\"},"
        "\"empty\":{\"type\":\"object\"},"
        "\"nested\":{\"type\":\"object\",\"properties\":{\"inner\":{\"type\":\"object\","
        "\"properties\":{}}}},"
        "\"list\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
        "\"z\":{\"type\":\"boolean\"}}}",
        NULL);
    assert_int_equal(pq_schema_ncolumns(plan->pq), 2);
    assert_string_equal(pq_schema_column_path(plan->pq, 0), "a");
    assert_string_equal(pq_schema_column_path(plan->pq, 1), "z");
    assert_int_equal(find(plan, "empty")->type, XDM_OBJECT);
    assert_int_equal(find(plan, "empty")->n_children, 0);
    assert_int_equal(find(plan, "nested.inner")->column, -1);
    xdm_plan_free(plan);
}

static void test_constraints(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(
        "{\"type\":\"object\",\"properties\":{"
        "\"gender\":{\"type\":\"string\",\"enum\":[\"male\",\"female\",\"not_specified\"]},"
        "\"code\":{\"type\":\"string\",\"pattern\":\"^\\\\d{3}-[\\\\w]+$\",\"minLength\":2,"
        "          \"maxLength\":10},"
        "\"mail\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"site\":{\"type\":\"string\",\"format\":\"uri\"},"
        "\"uid\":{\"type\":\"string\",\"format\":\"uuid\"},"
        "\"other\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
        "\"pct\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
        "\"small\":{\"type\":\"integer\",\"meta:xdmType\":\"byte\",\"minimum\":-1000},"
        "\"qty\":{\"type\":\"integer\",\"meta:xdmType\":\"int\",\"minimum\":1}}}",
        NULL);
    const struct xdm_field *g = find(plan, "gender");
    assert_int_equal(g->n_enum, 3);
    assert_string_equal(g->enum_values[1], "female");
    const struct xdm_field *code = find(plan, "code");
    assert_non_null(code->pattern);
    assert_int_equal(regexec(code->pattern, "123-ab_9", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(code->pattern, "12-ab", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(code->pattern, "abc-ab", 0, NULL, 0), 0);
    assert_int_equal(code->min_length, 2);
    assert_int_equal(code->max_length, 10);
    assert_int_equal(find(plan, "mail")->format, XDM_FMT_EMAIL);
    assert_int_equal(find(plan, "site")->format, XDM_FMT_URI);
    assert_int_equal(find(plan, "uid")->format, XDM_FMT_UUID);
    assert_int_equal(find(plan, "other")->format, XDM_FMT_NONE);
    assert_int_equal(find(plan, "gender")->min_length, -1);
    const struct xdm_field *pct = find(plan, "pct");
    assert_true(pct->has_minimum && pct->has_maximum);
    assert_true(pct->minimum == 0.0 && pct->maximum == 100.0);
    /* integer types carry their type range, narrowed by the schema but never widened */
    const struct xdm_field *small = find(plan, "small");
    assert_true(small->has_minimum && small->has_maximum);
    assert_true(small->minimum == -128.0 && small->maximum == 127.0);
    const struct xdm_field *qty = find(plan, "qty");
    assert_true(qty->minimum == 1.0 && qty->maximum == 2147483647.0);
    assert_false(find(plan, "mail")->has_minimum);
    xdm_plan_free(plan);
}

static const char *LOYALTY_SCHEMA =
    "{\"$id\":\"https://ns.adobe.com/techmarketingdemos/schemas/abc\",\"type\":\"object\","
    "\"properties\":{"
    "\"_techmarketingdemos\":{\"type\":\"object\",\"properties\":{\"systemIdentifier\":{"
    "  \"type\":\"object\",\"properties\":{\"loyaltyId\":{\"type\":\"string\"},"
    "  \"crmId\":{\"type\":\"string\"}}}}},"
    "\"personalEmail\":{\"type\":\"object\",\"properties\":{\"address\":{\"type\":\"string\"}}},"
    "\"loyalty\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"number\"}}}}}";

static void test_identities(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(
        LOYALTY_SCHEMA,
        "[{\"@type\":\"xdm:descriptorIdentity\",\"xdm:sourceSchema\":\"x\","
        "  \"xdm:sourceProperty\":\"/_techmarketingdemos/systemIdentifier/loyaltyId\","
        "  \"xdm:namespace\":\"lumaLoyaltyId\",\"xdm:isPrimary\":true},"
        " {\"@type\":\"xdm:descriptorIdentity\","
        "  \"xdm:sourceProperty\":\"_techmarketingdemos.systemIdentifier.crmId\","
        "  \"xdm:namespace\":\"lumaCrmId\",\"xdm:isPrimary\":false},"
        " {\"@type\":\"xdm:descriptorOneToOne\",\"xdm:sourceProperty\":\"/nope\"},"
        " {\"@type\":\"xdm:descriptorIdentity\","
        "  \"xdm:sourceProperty\":\"/xdm:personalEmail/xdm:address\","
        "  \"xdm:namespace\":\"Email\"}]");
    assert_int_equal(plan->n_identities, 3);
    assert_string_equal(plan->identities[0].path, "_techmarketingdemos.systemIdentifier.loyaltyId");
    assert_string_equal(plan->identities[0].namespace_code, "lumaLoyaltyId");
    assert_true(plan->identities[0].primary);
    assert_string_equal(plan->identities[1].path, "_techmarketingdemos.systemIdentifier.crmId");
    assert_false(plan->identities[1].primary);
    assert_string_equal(plan->identities[2].path, "personalEmail.address");
    assert_false(plan->identities[2].primary);
    xdm_plan_free(plan);

    struct ing_err err;
    assert_int_equal(compile_err(LOYALTY_SCHEMA,
                                 "[{\"@type\":\"xdm:descriptorIdentity\","
                                 "\"xdm:sourceProperty\":\"/_techmarketingdemos/nope\","
                                 "\"xdm:namespace\":\"lumaLoyaltyId\"}]",
                                 &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "_techmarketingdemos.nope");
    assert_non_null(strstr(err.msg, "does not have"));
    /* an object is not an identity */
    assert_int_equal(compile_err(LOYALTY_SCHEMA,
                                 "[{\"@type\":\"xdm:descriptorIdentity\","
                                 "\"xdm:sourceProperty\":\"/loyalty\","
                                 "\"xdm:namespace\":\"x\"}]",
                                 &err),
                     ING_EINVAL);
    assert_int_equal(compile_err(LOYALTY_SCHEMA, "{}", &err), ING_EINVAL);
}

static void test_bad_schemas(void **state)
{
    (void)state;
    struct ing_err err;
    assert_int_equal(compile_err("[]", NULL, &err), ING_EINVAL);
    assert_int_equal(compile_err("{\"type\":\"string\"}", NULL, &err), ING_EINVAL);
    assert_int_equal(compile_err("{\"properties\":{\"a\":{\"type\":\"array\"}}}", NULL, &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "a");
    assert_non_null(strstr(err.msg, "items"));
    assert_int_equal(
        compile_err("{\"properties\":{\"o\":{\"type\":\"object\",\"properties\":{"
                    "\"x\":{\"meta:xdmType\":\"quaternion\"}}}}}",
                    NULL, &err),
        ING_EINVAL);
    assert_string_equal(err.field, "o.x");
    assert_int_equal(compile_err("{\"properties\":{\"a\":{\"description\":\"no type\"}}}", NULL,
                                 &err),
                     ING_EINVAL);
    assert_int_equal(compile_err("{\"properties\":{\"a\":{\"type\":\"null\"}}}", NULL, &err),
                     ING_EINVAL);
    assert_int_equal(compile_err("{\"properties\":{\"a\":\"string\"}}", NULL, &err), ING_EINVAL);
    assert_int_equal(compile_err("{\"properties\":{\"m\":{\"meta:xdmType\":\"map\","
                                 "\"type\":\"object\"}}}",
                                 NULL, &err),
                     ING_EINVAL);
    assert_int_equal(compile_err("{\"properties\":{\"p\":{\"type\":\"string\","
                                 "\"pattern\":\"([a-z\"}}}",
                                 NULL, &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "p");

    /* nesting deeper than the limit */
    char deep[8192];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"properties\":");
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":{\"properties\":");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{}");
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}}");
    snprintf(deep + n, sizeof(deep) - n, "}");
    assert_int_equal(compile_err(deep, NULL, &err), ING_ETOOBIG);
}

static void test_child_lookup(void **state)
{
    (void)state;
    struct xdm_plan *plan = compile_ok(
        "{\"properties\":{\"ab\":{\"type\":\"string\"},\"a\":{\"type\":\"string\"},"
        "\"abc\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"},\"_x\":{\"type\":\"string\"}}}",
        NULL);
    const char *names[] = {"_x", "a", "ab", "abc", "b"};
    for (size_t i = 0; i < ING_ARRAY_LEN(names); i++) {
        const struct xdm_field *f = xdm_field_child(&plan->root, names[i], strlen(names[i]));
        assert_non_null(f);
        assert_string_equal(f->name, names[i]);
    }
    /* lookup by span: "abcd" cut to 2 bytes is "ab" */
    assert_string_equal(xdm_field_child(&plan->root, "abcd", 2)->name, "ab");
    assert_null(xdm_field_child(&plan->root, "abcd", 4));
    assert_null(xdm_field_child(&plan->root, "", 0));
    assert_null(xdm_field_child(&plan->root, "c", 1));
    assert_null(xdm_field_child(xdm_field_child(&plan->root, "a", 1), "x", 1));
    assert_null(xdm_plan_find(plan, "a.b"));
    assert_null(xdm_plan_find(plan, ""));
    xdm_plan_free(plan);
    xdm_plan_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_column_order_sorted_depth_first),
        cmocka_unit_test(test_arrays_and_maps),
        cmocka_unit_test(test_empty_objects_have_no_columns),
        cmocka_unit_test(test_constraints),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_child_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
