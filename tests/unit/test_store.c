/* test_store.c - unit tests of the SQLite metadata store (src/store/store_sqlite.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

struct fixture {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-store-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    struct ing_err err;
    ing_err_clear(&err);
    if (store_open(&fx->st, fx->dir, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(fx->st);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

static json_t *doc_of(const char *text)
{
    json_error_t je;
    json_t *d = json_loads(text, 0, &je);
    if (!d)
        fail_msg("bad test JSON: %s: %s", text, je.text);
    return d;
}

static void put_text(struct store *st, const char *sb, const char *kind, const char *id,
                     const char *text)
{
    json_t *d = doc_of(text);
    struct ing_err err;
    ing_err_clear(&err);
    int rc = store_insert(st, sb, kind, id, d, &err);
    if (rc != 0)
        fail_msg("insert %s: %s", id, err.msg);
    json_decref(d);
}

/* The ids of a list result, comma-joined in result order. */
static char *ids_of(struct store *st, const char *sb, const char *kind, const struct store_query *q)
{
    json_t *out = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = store_list(st, sb, kind, q, &out, &err);
    if (rc != 0)
        fail_msg("store_list: %s", err.msg);
    char line[1024] = "";
    const char *key;
    json_t *v;
    json_object_foreach(out, key, v) {
        if (line[0])
            strcat(line, ",");
        strcat(line, key);
    }
    json_decref(out);
    return xstrdup(line);
}

static void assert_ids(struct store *st, const char *kind, const struct store_filter *f, size_t nf,
                       const char *want)
{
    struct store_query q = {.filters = f, .nfilters = nf};
    char *got = ids_of(st, "prod", kind, &q);
    assert_string_equal(got, want);
    free(got);
}

static void test_crud(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *d = doc_of("{\"name\":\"a\",\"n\":1}");
    assert_int_equal(store_insert(fx->st, "prod", "dataSet", "x1", d, &err), 0);
    assert_int_equal(store_insert(fx->st, "prod", "dataSet", "x1", d, &err), ING_EEXIST);
    assert_int_equal(err.code, ING_EEXIST);
    json_decref(d);

    json_t *got = NULL;
    assert_int_equal(store_get(fx->st, "prod", "dataSet", "x1", &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "a");
    json_decref(got);

    d = doc_of("{\"name\":\"b\"}");
    assert_int_equal(store_update(fx->st, "prod", "dataSet", "x1", d, NULL), 0);
    assert_int_equal(store_update(fx->st, "prod", "dataSet", "nope", d, &err), ING_ENOTFOUND);
    json_decref(d);
    assert_int_equal(store_get(fx->st, "prod", "dataSet", "x1", &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "b");
    assert_null(json_object_get(got, "n"));
    json_decref(got);

    /* put: insert then replace */
    d = doc_of("{\"v\":1}");
    assert_int_equal(store_put(fx->st, "prod", "batch", "b1", d, NULL), 0);
    json_decref(d);
    d = doc_of("{\"v\":2}");
    assert_int_equal(store_put(fx->st, "prod", "batch", "b1", d, NULL), 0);
    json_decref(d);
    assert_int_equal(store_get(fx->st, "prod", "batch", "b1", &got, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "v")), 2);
    json_decref(got);

    /* the same id under another kind is another document */
    assert_int_equal(store_get(fx->st, "prod", "batch", "x1", &got, &err), ING_ENOTFOUND);
    assert_null(got);

    assert_int_equal(store_delete(fx->st, "prod", "dataSet", "x1", NULL), 0);
    assert_int_equal(store_delete(fx->st, "prod", "dataSet", "x1", &err), ING_ENOTFOUND);
    assert_int_equal(store_get(fx->st, "prod", "dataSet", "x1", &got, &err), ING_ENOTFOUND);
    d = json_object();
    assert_int_equal(store_insert(fx->st, "", "k", "i", d, NULL), ING_EINVAL);
    json_decref(d);
}

static void test_sandbox_isolation(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->st, "prod", "dataSet", "same", "{\"who\":\"prod\"}");
    put_text(fx->st, "dev", "dataSet", "same", "{\"who\":\"dev\"}");
    put_text(fx->st, "dev", "dataSet", "only-dev", "{\"who\":\"dev\"}");
    json_t *got = NULL;
    assert_int_equal(store_get(fx->st, "dev", "dataSet", "same", &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "who")), "dev");
    json_decref(got);
    assert_int_equal(store_get(fx->st, "prod", "dataSet", "only-dev", &got, NULL), ING_ENOTFOUND);
    char *ids = ids_of(fx->st, "prod", "dataSet", NULL);
    assert_string_equal(ids, "same");
    free(ids);
    int64_t n = 0;
    assert_int_equal(store_count(fx->st, "dev", "dataSet", NULL, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_delete(fx->st, "prod", "dataSet", "only-dev", NULL), ING_ENOTFOUND);

    json_t *all = NULL;
    assert_int_equal(store_scan_all(fx->st, "dataSet", NULL, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 3);
    json_t *first = json_array_get(all, 0);
    assert_string_equal(json_string_value(json_object_get(first, "sandbox")), "prod");
    assert_string_equal(json_string_value(json_object_get(first, "id")), "same");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first, "doc"), "who")), "prod");
    json_decref(all);
    struct store_filter f = {"who", STORE_EQ, "dev"};
    struct store_query q = {.filters = &f, .nfilters = 1};
    assert_int_equal(store_scan_all(fx->st, "dataSet", &q, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
}

static void load_filter_docs(struct store *st)
{
    put_text(st, "prod", "batch", "a", "{\"created\":1000,\"status\":\"success\",\"size\":9,"
                                      "\"version\":\"1.0.2\",\"ok\":true,\"nested\":{\"k\":\"x\"}}");
    put_text(st, "prod", "batch", "b", "{\"created\":2000,\"status\":\"failed\",\"size\":10,"
                                      "\"version\":\"1.0.10\",\"ok\":false,\"nested\":{\"k\":\"y\"}}");
    put_text(st, "prod", "batch", "c", "{\"created\":3000,\"status\":\"loading\",\"size\":100,"
                                      "\"extra\":null}");
    put_text(st, "prod", "batch", "d", "{\"created\":4000,\"status\":\"10\",\"size\":\"big\"}");
}

static void test_filters(void **state)
{
    struct fixture *fx = *state;
    load_filter_docs(fx->st);
    struct store_filter f[2];

    f[0] = (struct store_filter){"status", STORE_EQ, "failed"};
    assert_ids(fx->st, "batch", f, 1, "b");
    f[0] = (struct store_filter){"status", STORE_NE, "failed"};
    assert_ids(fx->st, "batch", f, 1, "a,c,d");
    /* numbers compare numerically: 9 < 10 (as text "9" > "10") */
    f[0] = (struct store_filter){"size", STORE_LT, "10"};
    assert_ids(fx->st, "batch", f, 1, "a");
    f[0] = (struct store_filter){"size", STORE_LE, "10"};
    assert_ids(fx->st, "batch", f, 1, "a,b");
    /* d's size is the text "big": compared as text, "big" > "9" */
    f[0] = (struct store_filter){"size", STORE_GT, "9"};
    assert_ids(fx->st, "batch", f, 1, "b,c,d");
    f[0] = (struct store_filter){"size", STORE_GE, "100"};
    assert_ids(fx->st, "batch", f, 1, "c,d");
    /* numeric filter value still matches a string property with the same text */
    f[0] = (struct store_filter){"status", STORE_EQ, "10"};
    assert_ids(fx->st, "batch", f, 1, "d");
    /* text comparison for non-numbers */
    f[0] = (struct store_filter){"version", STORE_GT, "1.0.10"};
    assert_ids(fx->st, "batch", f, 1, "a");
    f[0] = (struct store_filter){"ok", STORE_EQ, "true"};
    assert_ids(fx->st, "batch", f, 1, "a");
    f[0] = (struct store_filter){"ok", STORE_EQ, "false"};
    assert_ids(fx->st, "batch", f, 1, "b");
    f[0] = (struct store_filter){"version", STORE_EXISTS, NULL};
    assert_ids(fx->st, "batch", f, 1, "a,b");
    /* null equals absent */
    f[0] = (struct store_filter){"extra", STORE_EXISTS, NULL};
    assert_ids(fx->st, "batch", f, 1, "");
    f[0] = (struct store_filter){"version", STORE_NOT_EXISTS, NULL};
    assert_ids(fx->st, "batch", f, 1, "c,d");
    f[0] = (struct store_filter){"status", STORE_IN, "success,loading,nope"};
    assert_ids(fx->st, "batch", f, 1, "a,c");
    f[0] = (struct store_filter){"status", STORE_NOT_IN, "success,loading"};
    assert_ids(fx->st, "batch", f, 1, "b,d");
    f[0] = (struct store_filter){"nested.k", STORE_EQ, "y"};
    assert_ids(fx->st, "batch", f, 1, "b");
    /* created is the column (from the document's number) */
    f[0] = (struct store_filter){"created", STORE_GE, "2000"};
    f[1] = (struct store_filter){"created", STORE_LT, "4000"};
    assert_ids(fx->st, "batch", f, 2, "b,c");
    /* AND of two filters */
    f[0] = (struct store_filter){"size", STORE_LE, "100"};
    f[1] = (struct store_filter){"status", STORE_NE, "loading"};
    assert_ids(fx->st, "batch", f, 2, "a,b");

    /* property names that cannot be a JSON path label are refused */
    struct ing_err err;
    ing_err_clear(&err);
    f[0] = (struct store_filter){"bad\"name", STORE_EQ, "x"};
    struct store_query q = {.filters = f, .nfilters = 1};
    json_t *out = NULL;
    assert_int_equal(store_list(fx->st, "prod", "batch", &q, &out, &err), ING_EINVAL);
    assert_null(out);
    f[0] = (struct store_filter){"a..b", STORE_EQ, "x"};
    assert_int_equal(store_list(fx->st, "prod", "batch", &q, &out, &err), ING_EINVAL);
    /* a value with SQL in it is only a value */
    f[0] = (struct store_filter){"status", STORE_EQ, "x' OR '1'='1"};
    assert_ids(fx->st, "batch", f, 1, "");
}

static void test_array_properties(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->st, "prod", "dataSetFile", "f1",
             "{\"relatedObjects\":[{\"type\":\"batch\",\"id\":\"B1\"},{\"type\":\"dataSet\",\"id\":\"D1\"}]}");
    put_text(fx->st, "prod", "dataSetFile", "f2",
             "{\"relatedObjects\":[{\"type\":\"batch\",\"id\":\"B2\"},{\"type\":\"dataSet\",\"id\":\"D1\"}]}");
    put_text(fx->st, "prod", "dataSetFile", "f3", "{\"relatedObjects\":{\"id\":\"B1\"}}");
    put_text(fx->st, "prod", "dataSetFile", "f4", "{\"relatedObjects\":[\"B1\"]}");
    struct store_filter f = {"relatedObjects.id", STORE_EQ, "B1"};
    assert_ids(fx->st, "dataSetFile", &f, 1, "f1,f3");
    f = (struct store_filter){"relatedObjects.id", STORE_EQ, "D1"};
    assert_ids(fx->st, "dataSetFile", &f, 1, "f1,f2");
    f = (struct store_filter){"relatedObjects.id", STORE_NE, "B1"};
    assert_ids(fx->st, "dataSetFile", &f, 1, "f2,f4");
    f = (struct store_filter){"relatedObjects.id", STORE_IN, "B2,B9"};
    assert_ids(fx->st, "dataSetFile", &f, 1, "f2");
    f = (struct store_filter){"relatedObjects.type", STORE_EXISTS, NULL};
    assert_ids(fx->st, "dataSetFile", &f, 1, "f1,f2");
}

static void test_tags(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->st, "prod", "dataSet", "t1",
             "{\"tags\":{\"adobe/pqs/table\":[\"luma_web\"],\"team\":[\"red\",\"blue\"]}}");
    put_text(fx->st, "prod", "dataSet", "t2", "{\"tags\":{\"team\":[\"green\"],"
                                             "\"acp_enableErrorDiagnostics\":true}}");
    put_text(fx->st, "prod", "dataSet", "t3", "{\"name\":\"untagged\"}");
    struct store_filter f = {"team", STORE_TAG, "blue"};
    assert_ids(fx->st, "dataSet", &f, 1, "t1");
    f = (struct store_filter){"team", STORE_TAG, "gr*"};
    assert_ids(fx->st, "dataSet", &f, 1, "t2");
    f = (struct store_filter){"team", STORE_TAG, "*"};
    assert_ids(fx->st, "dataSet", &f, 1, "t1,t2");
    f = (struct store_filter){"tags.adobe/pqs/table", STORE_TAG, "luma*"};
    assert_ids(fx->st, "dataSet", &f, 1, "t1");
    f = (struct store_filter){"acp_enableErrorDiagnostics", STORE_TAG, "true"};
    assert_ids(fx->st, "dataSet", &f, 1, "t2");
    /* '?' is literal, not a wildcard */
    f = (struct store_filter){"team", STORE_TAG, "re?"};
    assert_ids(fx->st, "dataSet", &f, 1, "");
}

static void test_order_and_paging(void **state)
{
    struct fixture *fx = *state;
    /* inserted out of created order; c and b share created */
    put_text(fx->st, "prod", "k", "c", "{\"created\":2,\"name\":\"zeta\",\"m\":{\"r\":1}}");
    put_text(fx->st, "prod", "k", "a", "{\"created\":3,\"name\":\"alpha\",\"m\":{\"r\":3}}");
    put_text(fx->st, "prod", "k", "b", "{\"created\":2,\"name\":\"beta\",\"m\":{\"r\":2}}");
    put_text(fx->st, "prod", "k", "d", "{\"created\":1,\"name\":\"alpha\",\"m\":{\"r\":10}}");

    /* default: created ascending, then id */
    char *ids = ids_of(fx->st, "prod", "k", NULL);
    assert_string_equal(ids, "d,b,c,a");
    free(ids);

    struct store_order o[2] = {{"name", false}, {"created", true}};
    struct store_query q = {.order = o, .norder = 1};
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "a,d,b,c"); /* ties by insertion order: a before d */
    free(ids);
    q.norder = 2;
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "a,d,b,c");
    free(ids);
    o[0] = (struct store_order){"name", true};
    q.norder = 1;
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "c,b,a,d");
    free(ids);
    /* dotted, numeric */
    o[0] = (struct store_order){"m.r", true};
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "d,a,b,c");
    free(ids);

    q.start = 1;
    q.limit = 2;
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "a,b");
    free(ids);
    q.start = 3;
    q.limit = 0;
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "c");
    free(ids);
    q.start = 10;
    ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "");
    free(ids);

    /* count ignores paging but applies filters */
    struct store_filter f = {"name", STORE_EQ, "alpha"};
    q.filters = &f;
    q.nfilters = 1;
    int64_t n = -1;
    assert_int_equal(store_count(fx->st, "prod", "k", &q, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_count(fx->st, "prod", "k", NULL, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_int_equal(store_count(fx->st, "prod", "nokind", NULL, &n, NULL), 0);
    assert_int_equal(n, 0);
}

static void test_created_kept_on_update(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->st, "prod", "k", "x", "{\"created\":5}");
    put_text(fx->st, "prod", "k", "y", "{\"created\":7}");
    json_t *d = doc_of("{\"name\":\"no created\"}");
    assert_int_equal(store_update(fx->st, "prod", "k", "x", d, NULL), 0);
    assert_int_equal(store_put(fx->st, "prod", "k", "y", d, NULL), 0);
    json_decref(d);
    struct store_filter f = {"created", STORE_LE, "7"};
    assert_ids(fx->st, "k", &f, 1, "x,y");
}

static void test_transactions(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(store_tx_begin(fx->st, &err), 0);
    assert_int_equal(store_tx_begin(fx->st, &err), ING_ESTATE);
    put_text(fx->st, "prod", "k", "t1", "{}");
    put_text(fx->st, "prod", "k", "t2", "{}");
    /* reads on this thread see the transaction's writes */
    int64_t n = 0;
    assert_int_equal(store_count(fx->st, "prod", "k", NULL, &n, NULL), 0);
    assert_int_equal(n, 2);
    store_tx_rollback(fx->st);
    assert_int_equal(store_count(fx->st, "prod", "k", NULL, &n, NULL), 0);
    assert_int_equal(n, 0);

    assert_int_equal(store_tx_begin(fx->st, NULL), 0);
    put_text(fx->st, "prod", "k", "t1", "{}");
    assert_int_equal(store_delete(fx->st, "prod", "k", "t1", NULL), 0);
    put_text(fx->st, "prod", "k", "t3", "{}");
    assert_int_equal(store_tx_commit(fx->st, NULL), 0);
    char *ids = ids_of(fx->st, "prod", "k", NULL);
    assert_string_equal(ids, "t3");
    free(ids);

    assert_int_equal(store_tx_commit(fx->st, &err), ING_ESTATE);
    store_tx_rollback(fx->st); /* no transaction: a no-op */
}

struct writer {
    struct store *st;
    int index;
    int failures;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof(id), "w%d-%d", w->index, i);
        json_t *d = json_pack("{s:i, s:i}", "writer", w->index, "i", i);
        struct ing_err err;
        ing_err_clear(&err);
        int rc;
        if (i % 4 == 0) {
            /* every fourth write inside a transaction with a read and an update */
            rc = store_tx_begin(w->st, &err);
            if (rc == 0)
                rc = store_insert(w->st, "prod", "conc", id, d, &err);
            json_t *got = NULL;
            if (rc == 0)
                rc = store_get(w->st, "prod", "conc", id, &got, &err);
            json_decref(got);
            if (rc == 0)
                rc = store_update(w->st, "prod", "conc", id, d, &err);
            if (rc == 0)
                rc = store_tx_commit(w->st, &err);
            else
                store_tx_rollback(w->st);
        } else {
            rc = store_insert(w->st, "prod", "conc", id, d, &err);
        }
        json_decref(d);
        if (rc != 0) {
            fprintf(stderr, "writer %d: %s\n", w->index, err.msg);
            w->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fixture *fx = *state;
    pthread_t th[4];
    struct writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){.st = fx->st, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    int64_t n = 0;
    assert_int_equal(store_count(fx->st, "prod", "conc", NULL, &n, NULL), 0);
    assert_int_equal(n, 400);
    struct store_filter f = {"writer", STORE_EQ, "3"};
    struct store_query q = {.filters = &f, .nfilters = 1};
    assert_int_equal(store_count(fx->st, "prod", "conc", &q, &n, NULL), 0);
    assert_int_equal(n, 100);
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->st, "prod", "k", "durable", "{\"v\":42}");
    store_close(fx->st);
    fx->st = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(store_open(&fx->st, fx->dir, &err), 0);
    json_t *got = NULL;
    assert_int_equal(store_get(fx->st, "prod", "k", "durable", &got, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "v")), 42);
    json_decref(got);
    /* insertion order continues after the old rows */
    put_text(fx->st, "prod", "k", "later", "{\"created\":0}");
    put_text(fx->st, "prod", "k", "latest", "{\"created\":0}");
    struct store_order o = {"created", false};
    struct store_query q = {.order = &o, .norder = 1};
    char *ids = ids_of(fx->st, "prod", "k", &q);
    assert_string_equal(ids, "later,latest,durable");
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_kept_on_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
