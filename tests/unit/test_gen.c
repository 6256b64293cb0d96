/*
 * test_gen.c - unit tests of the Luma-shaped data generator (src/cli/gen.c): same seed, same
 * bytes; the share of bad rows; every bad row rejected and every good row accepted by the real
 * engine against the generator's own schema; identity overlap between the files; the CSV shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen.h"
#include "ingest/engine.h"
#include "schema/xdm_plan.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

static int mem_sink(void *ctx, const void *p, size_t n)
{
    return buf_append(ctx, p, n);
}

/* Generate into memory; the caller frees the buffer. */
static struct buf gen_mem(const struct gen_opts *o, struct gen_stats *st)
{
    struct buf b = {0};
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(gen_run(o, mem_sink, &b, st, &err), 0);
    return b;
}

static void test_same_seed_same_bytes(void **state)
{
    (void)state;
    for (int kind = GEN_LOYALTY; kind <= GEN_PRODUCTS; kind++) {
        struct gen_opts o = {.kind = (enum gen_kind)kind, .records = 3000, .seed = 42,
                             .bad_share = 0.05, .overlap = -1};
        struct gen_stats s1, s2, s3;
        struct buf a = gen_mem(&o, &s1), b = gen_mem(&o, &s2);
        assert_true(a.len > 3000 * 40);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        assert_int_equal(s1.bytes, (int64_t)a.len);
        assert_int_equal(s1.bad_records, s2.bad_records);
        o.seed = 43;
        struct buf c = gen_mem(&o, &s3);
        assert_true(c.len != a.len || memcmp(a.data, c.data, a.len) != 0);
        buf_free(&a);
        buf_free(&b);
        buf_free(&c);
    }
}

/* Record i does not depend on how many records follow: a short file is a prefix of a long one. */
static void test_records_independent_of_count(void **state)
{
    (void)state;
    struct gen_opts o = {.kind = GEN_PURCHASES, .records = 500, .seed = 9, .bad_share = 0.1,
                         .people = 10000, .overlap = -1};
    struct buf shorter = gen_mem(&o, NULL);
    o.records = 1000;
    struct buf longer = gen_mem(&o, NULL);
    assert_true(longer.len > shorter.len);
    assert_memory_equal(shorter.data, longer.data, shorter.len);
    buf_free(&shorter);
    buf_free(&longer);
}

static int64_t count_lines(const struct buf *b)
{
    int64_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

static void test_bad_share(void **state)
{
    (void)state;
    const int64_t n = 20000;
    const double shares[] = {0.0, 0.01, 0.1, 0.5, 1.0};
    for (size_t i = 0; i < ING_ARRAY_LEN(shares); i++) {
        struct gen_opts o = {.kind = GEN_LOYALTY, .records = n, .seed = 5,
                             .bad_share = shares[i], .overlap = -1};
        struct gen_stats st;
        struct buf b = gen_mem(&o, &st);
        assert_int_equal(st.records, n);
        assert_int_equal(count_lines(&b), n);
        /* Binomial: within 5 standard deviations (exact at 0 and 1). */
        double p = shares[i], sd = sqrt((double)n * p * (1 - p));
        double want = (double)n * p;
        assert_true(fabs((double)st.bad_records - want) <= 5 * sd + 0.5);
        buf_free(&b);
    }
    struct gen_opts bad = {.kind = GEN_LOYALTY, .records = 1, .bad_share = 1.5};
    struct buf b = {0};
    assert_int_equal(gen_run(&bad, mem_sink, &b, NULL, NULL), ING_EINVAL);
    buf_free(&b);
}

/* The engine, with the generator's schema, must fail exactly the rows the generator spoiled. */
static void check_engine(enum gen_kind kind, enum gen_layout layout)
{
    char dir[] = "/tmp/test_gen.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/in.json", dir);
    char *out = xasprintf("%s/out", dir);
    struct gen_opts o = {.kind = kind, .layout = layout, .records = 2000, .seed = 77,
                         .bad_share = 0.05, .overlap = -1};
    struct gen_stats st;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(gen_write_file(&o, path, &st, &err), 0);
    assert_true(st.bad_records > 40 && st.bad_records < 180);

    json_t *schema = gen_schema(kind, NULL);
    assert_non_null(schema);
    struct xdm_plan *plan = NULL;
    assert_int_equal(xdm_plan_compile(schema, NULL, &plan, &err), 0);
    struct engine_file f = {.path = path, .name = "in.json"};
    struct engine_opts eo = {.format = ENGINE_JSON, .max_failed_rows = -1,
                             .parquet = {.codec = PQ_CODEC_ZSTD}};
    struct engine_result res;
    int rc = engine_run(plan, &f, 1, &eo, out, &res, &err);
    if (rc != 0)
        fprintf(stderr, "engine: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(res.input_records, st.records);
    assert_int_equal(res.failed_records, st.bad_records);
    assert_int_equal(res.output_records, st.records - st.bad_records);
    assert_int_equal(res.unknown_fields, 0); /* the schema has every field the file has */
    /* All four kinds of damage show up among the errors. */
    bool syntax = false, type = false;
    for (size_t i = 0; i < json_array_size(res.errors); i++) {
        const char *code = json_string_value(json_object_get(json_array_get(res.errors, i), "code"));
        syntax |= code && !strcmp(code, "INGEST-1401-400");
        type |= code && !strcmp(code, "INGEST-1560-400");
    }
    assert_true(syntax);
    assert_true(type);
    engine_result_free(&res);
    xdm_plan_free(plan);
    json_decref(schema);
    fs_rm_rf(dir, NULL);
    free(path);
    free(out);
}

static void test_engine_rejects_exactly_the_bad_rows(void **state)
{
    (void)state;
    for (int kind = GEN_LOYALTY; kind <= GEN_PURCHASES; kind++) {
        check_engine((enum gen_kind)kind, GEN_LINES);
        check_engine((enum gen_kind)kind, GEN_ARRAY);
    }
    assert_null(gen_schema(GEN_PRODUCTS, NULL));
}

/* Collect the string value after `key":"` (or the number after `key":`) of every line. */
static size_t collect(const struct buf *b, const char *key, char (*vals)[40], size_t max)
{
    size_t n = 0;
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = (const char *)b->data, *end = p + b->len;
    while (p < end && n < max) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        const char *k = memmem(p, (size_t)(nl - p), pat, strlen(pat));
        if (k) {
            k += strlen(pat);
            if (*k == '"')
                k++;
            size_t len = strcspn(k, "\",}");
            assert_true(len < 40);
            memcpy(vals[n], k, len);
            vals[n][len] = '\0';
            n++;
        }
        p = nl + 1;
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_identity_overlap(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char loyalty_crm[N][40], crm_crm[N][40], purchase_ids[N][40];
    struct gen_opts o = {.kind = GEN_LOYALTY, .records = N, .seed = 3, .overlap = -1};
    struct buf lb = gen_mem(&o, NULL);
    o.kind = GEN_CRM;
    struct buf cb = gen_mem(&o, NULL);
    o.kind = GEN_PURCHASES;
    struct buf pb = gen_mem(&o, NULL);
    assert_int_equal(collect(&lb, "crmId", loyalty_crm, N), N);
    assert_int_equal(collect(&cb, "crmId", crm_crm, N), N);
    assert_int_equal(collect(&pb, "loyaltyId", purchase_ids, N), N);

    /* Default overlap 0.8: 800 of the CRM people are loyalty members. */
    qsort(loyalty_crm, N, sizeof(loyalty_crm[0]), cmp_str);
    size_t shared = 0;
    for (size_t i = 0; i < N; i++)
        shared += bsearch(crm_crm[i], loyalty_crm, N, sizeof(loyalty_crm[0]), cmp_str) != NULL;
    assert_int_equal(shared, 800);

    /* Every purchase belongs to a loyalty member, and the ids are the person's. */
    for (size_t i = 0; i < N; i++) {
        long long id = atoll(purchase_ids[i]);
        assert_true(id >= gen_loyalty_id(0) && id < gen_loyalty_id(N));
    }
    char crm[33];
    gen_crm_id(3, 0, crm);
    assert_non_null(memmem(lb.data, lb.len, crm, 32)); /* person 0 is the first loyalty record */
    buf_free(&lb);
    buf_free(&cb);
    buf_free(&pb);
}

static void test_products_csv(void **state)
{
    (void)state;
    struct gen_opts o = {.kind = GEN_PRODUCTS, .records = 200, .seed = 1, .overlap = -1};
    struct gen_stats st;
    struct buf b = gen_mem(&o, &st);
    const char *text = (const char *)b.data;
    const char *hdr = "SKU,Name,Category,Color,Size,Price\r\n";
    assert_memory_equal(text, hdr, strlen(hdr));
    int64_t crlf = 0;
    for (size_t i = 0; i + 1 < b.len; i++)
        crlf += text[i] == '\r' && text[i + 1] == '\n';
    assert_int_equal(crlf, 200); /* header + 200 rows, no line break after the last */
    assert_true(text[b.len - 1] != '\n');
    /* SKUs are distinct. */
    static char skus[200][40];
    const char *p = text + strlen(hdr);
    for (int i = 0; i < 200; i++) {
        size_t len = strcspn(p, ",");
        assert_true(len > 0 && len < 40);
        memcpy(skus[i], p, len);
        skus[i][len] = '\0';
        const char *next = strstr(p, "\r\n");
        p = next ? next + 2 : p + strlen(p);
    }
    qsort(skus, 200, sizeof(skus[0]), cmp_str);
    for (int i = 1; i < 200; i++)
        assert_true(strcmp(skus[i - 1], skus[i]) != 0);
    buf_free(&b);
}

static void test_kind_names(void **state)
{
    (void)state;
    enum gen_kind k;
    assert_int_equal(gen_kind_parse("crm", &k), 0);
    assert_int_equal(k, GEN_CRM);
    assert_int_equal(gen_kind_parse("products", &k), 0);
    assert_int_equal(k, GEN_PRODUCTS);
    assert_int_equal(gen_kind_parse("nope", &k), ING_EINVAL);
    assert_int_equal(gen_kind_parse(NULL, &k), ING_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_records_independent_of_count),
        cmocka_unit_test(test_bad_share),
        cmocka_unit_test(test_engine_rejects_exactly_the_bad_rows),
        cmocka_unit_test(test_identity_overlap),
        cmocka_unit_test(test_products_csv),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
