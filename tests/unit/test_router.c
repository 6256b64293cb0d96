/* test_router.c - unit tests of route matching and percent-decoding (src/http/router.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/http.h"
#include "http/http_int.h"

struct match {
    bool ok;
    size_t n;
    const char *params[HTTP_MAX_PARAMS];
    char scratch[1024];
};

static void run(struct match *m, const char *pattern, const char *path)
{
    assert_true(strlen(path) < sizeof(m->scratch));
    memset(m, 0, sizeof(*m));
    m->ok = http_route_match(pattern, path, m->scratch, m->params, &m->n);
}

static void test_literal(void **state)
{
    (void)state;
    struct match m;
    run(&m, "/data/foundation/catalog/dataSets", "/data/foundation/catalog/dataSets");
    assert_true(m.ok);
    assert_int_equal(m.n, 0);
    run(&m, "/data/foundation/catalog/dataSets", "/data/foundation/catalog/dataSet");
    assert_false(m.ok);
    run(&m, "/data/foundation/catalog/dataSets", "/data/foundation/catalog");
    assert_false(m.ok);
    run(&m, "/data/foundation/catalog/dataSets", "/data/foundation/catalog/dataSets/x");
    assert_false(m.ok);
    /* case-sensitive */
    run(&m, "/a/b", "/a/B");
    assert_false(m.ok);
    run(&m, "/", "/");
    assert_true(m.ok);
    run(&m, "/a", "a");
    assert_false(m.ok);
}

static void test_params(void **state)
{
    (void)state;
    struct match m;
    run(&m, "/data/foundation/catalog/dataSets/{id}", "/data/foundation/catalog/dataSets/5c8c3c");
    assert_true(m.ok);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.params[0], "5c8c3c");

    run(&m, "/batches/{id}/datasets/{ds}/files", "/batches/B1/datasets/D2/files");
    assert_true(m.ok);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.params[0], "B1");
    assert_string_equal(m.params[1], "D2");

    /* an empty segment does not fill a parameter */
    run(&m, "/batches/{id}/files", "/batches//files");
    assert_false(m.ok);
    run(&m, "/batches/{id}", "/batches/");
    assert_false(m.ok);
}

static void test_rest_capture(void **state)
{
    (void)state;
    struct match m;
    const char *pat = "/batches/{id}/datasets/{ds}/files/{*path}";
    run(&m, pat, "/batches/B/datasets/D/files/dir/sub/file.json");
    assert_true(m.ok);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.params[2], "dir/sub/file.json");
    run(&m, pat, "/batches/B/datasets/D/files/a%20b%2Fc.json");
    assert_true(m.ok);
    assert_string_equal(m.params[2], "a b/c.json");
    /* the rest must not be empty */
    run(&m, pat, "/batches/B/datasets/D/files/");
    assert_false(m.ok);
    run(&m, pat, "/batches/B/datasets/D/files");
    assert_false(m.ok);
}

static void test_percent_decoding(void **state)
{
    (void)state;
    struct match m;
    run(&m, "/schemaregistry/tenant/schemas/{id}",
        "/schemaregistry/tenant/schemas/https%3A%2F%2Fns.adobe.com%2Ftenant%2Fschemas%2Fabc");
    assert_true(m.ok);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.params[0], "https://ns.adobe.com/tenant/schemas/abc");
    /* lower-case hex too; malformed escapes and %00 stay literal */
    run(&m, "/x/{a}", "/x/%e2%82%ac%zz%4");
    assert_true(m.ok);
    assert_string_equal(m.params[0], "\xe2\x82\xac%zz%4");
    run(&m, "/x/{a}", "/x/a%00b");
    assert_true(m.ok);
    assert_string_equal(m.params[0], "a%00b");
    /* '+' is not a space in a path */
    run(&m, "/x/{a}", "/x/a+b");
    assert_string_equal(m.params[0], "a+b");
    /* literal segments compare raw: an encoded literal does not match */
    run(&m, "/x/dataSets", "/x/data%53ets");
    assert_false(m.ok);

    char buf[32];
    assert_int_equal(http__pct_decode(buf, "a+b%2Bc%20", 10, true), 6);
    assert_string_equal(buf, "a b+c ");
    /* in place */
    char inplace[] = "%41%42c";
    assert_int_equal(http__pct_decode(inplace, inplace, strlen(inplace), false), 3);
    assert_string_equal(inplace, "ABc");
}

/* The byte-at-a-time rule, written plainly: the reference for the decoder's fast path. */
static size_t reference_decode(char *dst, const char *src, size_t n, bool plus_space)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *hi = i + 2 < n && src[i] == '%' ? strchr(hex, src[i + 1] | 0x20) : NULL;
        const char *lo = hi ? strchr(hex, src[i + 2] | 0x20) : NULL;
        if (hi && lo && src[i + 1] && src[i + 2] && (hi != hex || lo != hex)) {
            dst[o++] = (char)((hi - hex) * 16 + (lo - hex));
            i += 2;
        } else {
            dst[o++] = src[i] == '+' && plus_space ? ' ' : src[i];
        }
    }
    dst[o] = '\0';
    return o;
}

/* Plain prefixes (copied in one go) then escapes; random texts over the bytes that matter,
 * decoded into another buffer and in place, against the plain rule. */
static void test_decode_fast_path(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(http__pct_decode(out, "plain/text", 10, true), 10);
    assert_string_equal(out, "plain/text");
    assert_int_equal(http__pct_decode(out, "lumaLoyaltyId%20x+y", 19, true), 17);
    assert_string_equal(out, "lumaLoyaltyId x y");
    assert_int_equal(http__pct_decode(out, "abc+d", 5, false), 5);
    assert_string_equal(out, "abc+d");
    assert_int_equal(http__pct_decode(out, "", 0, true), 0);
    assert_string_equal(out, "");
    char inplace[] = "abcdef%41";
    assert_int_equal(http__pct_decode(inplace, inplace, strlen(inplace), false), 7);
    assert_string_equal(inplace, "abcdefA");

    static const char alphabet[] = "ab%+04fFgG";
    unsigned seed = 7;
    for (int round = 0; round < 5000; round++) {
        char src[40], want[41], got[41], same[41];
        size_t n = (size_t)(rand_r(&seed) % 32);
        for (size_t i = 0; i < n; i++)
            src[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        src[n] = '\0';
        bool plus = round & 1;
        size_t wn = reference_decode(want, src, n, plus);
        assert_int_equal(http__pct_decode(got, src, n, plus), wn);
        assert_string_equal(got, want);
        memcpy(same, src, n + 1);
        assert_int_equal(http__pct_decode(same, same, n, plus), wn);
        assert_string_equal(same, want);
    }
}

static void test_trailing_slash(void **state)
{
    (void)state;
    struct match m;
    run(&m, "/data/foundation/import/batches", "/data/foundation/import/batches/");
    assert_true(m.ok);
    run(&m, "/a/{id}", "/a/x/");
    assert_true(m.ok);
    assert_string_equal(m.params[0], "x");
    /* only one trailing slash */
    run(&m, "/a/{id}", "/a/x//");
    assert_false(m.ok);
}

static void test_too_many_params(void **state)
{
    (void)state;
    struct match m;
    run(&m, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", "/1/2/3/4/5/6/7/8");
    assert_true(m.ok);
    assert_int_equal(m.n, HTTP_MAX_PARAMS);
    assert_string_equal(m.params[7], "8");
    run(&m, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "/1/2/3/4/5/6/7/8/9");
    assert_false(m.ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_rest_capture),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_decode_fast_path),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_too_many_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
