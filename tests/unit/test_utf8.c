/* test_utf8.c - the project's one UTF-8 rule: shortest form, no surrogates, at most U+10FFFF. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

static size_t seq(const char *s, uint32_t *cp)
{
    return utf8_seq((const uint8_t *)s, strlen(s), cp);
}

static void test_sequences(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(seq("A", &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(seq("\xC3\xA9", &cp), 2); /* é */
    assert_int_equal(cp, 0xE9);
    assert_int_equal(seq("\xE2\x82\xAC", &cp), 3); /* € */
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(seq("\xF0\x9F\x98\x80", &cp), 4); /* U+1F600 */
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(seq("\xF4\x8F\xBF\xBF", &cp), 4); /* U+10FFFF, the last one */
    assert_int_equal(seq("\xC0\xAF", NULL), 0);         /* overlong '/' */
    assert_int_equal(seq("\xE0\x80\xAF", NULL), 0);     /* overlong, 3 bytes */
    assert_int_equal(seq("\xED\xA0\x80", NULL), 0);     /* surrogate U+D800 */
    assert_int_equal(seq("\xF4\x90\x80\x80", NULL), 0); /* past U+10FFFF */
    assert_int_equal(seq("\x80", NULL), 0);             /* lone continuation */
    assert_int_equal(seq("\xE2\x82", NULL), 0);         /* truncated */
    /* a NUL ends a sequence even when more bytes may be read */
    assert_int_equal(utf8_seq((const uint8_t *)"\xE2\x00\xAC", 4, NULL), 0);
}

static void test_valid(void **state)
{
    (void)state;
    const char *ok = "plain ASCII run longer than eight bytes, then caf\xC3\xA9 and \xE2\x82\xAC";
    assert_true(utf8_valid((const uint8_t *)ok, strlen(ok)));
    assert_true(utf8_valid((const uint8_t *)"", 0));
    const char *bad = "0123456789abcdef\xED\xA0\x80 tail";
    assert_false(utf8_valid((const uint8_t *)bad, strlen(bad)));
    /* the last byte cut off: invalid, and nothing read past n */
    const char *cut = "abcdefgh\xE2\x82\xAC";
    assert_false(utf8_valid((const uint8_t *)cut, strlen(cut) - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
