/*
 * test_jtok.c - unit tests for the JSON pull tokenizer (src/json/jtok.c): grammar tables, token
 * sequences, strings and escapes, UTF-8 edge cases, numbers, depth limit, skip, decoding.
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

#include "json/jtok.h"
#include "util/buf.h"

/* Tokenize the whole record; returns 0 after JT_END or the error code. Counts tokens. */
static int lex_all(const char *s, size_t n, struct ing_err *err, int *ntok)
{
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, s, n);
    int count = 0;
    for (;;) {
        int rc = jlex_next(&lx, &t, err);
        if (rc)
            return rc;
        count++;
        if (t.type == JT_END)
            break;
        assert_true(count < 100000);
    }
    if (ntok)
        *ntok = count;
    return 0;
}

static int lex_str(const char *s, struct ing_err *err)
{
    return lex_all(s, strlen(s), err, NULL);
}

static void test_valid_grammar(void **state)
{
    (void)state;
    static const char *valid[] = {
        "{}", "[]", " {} ", "\t\r\n[\n]\n", "0", "-0", "1", "-1", "123", "1.5", "-0.0e+0",
        "1E10", "1e-7", "0.000001", "12345678901234567890123", "true", "false", "null",
        "\"\"", "\"abc\"", "{\"a\":1}", "{\"a\" : 1 , \"b\" : [ true , false , null ] }",
        "[1,[2,[3,[4]]],{\"x\":{\"y\":{}}}]", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
        "\"\\u0000\"", "\"\\u00e9\\u20AC\\ud83d\\ude00\"", "{\"\":\"\"}", "[[],[[]],{}]",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "\"\x7f\"", "{\"k\":\"v\",\"k\":\"w\"}",
        "[1.0,2e5,-3.25E-2]",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        struct ing_err err;
        ing_err_clear(&err);
        int rc = lex_str(valid[i], &err);
        if (rc)
            fail_msg("valid input %zu <%s> rejected: %s", i, valid[i], err.msg);
    }
}

struct bad_case {
    const char *in;
    int code;
    int64_t offset;
};

static void test_invalid_grammar(void **state)
{
    (void)state;
    static const struct bad_case bad[] = {
        {"", ING_ESYNTAX, 0},
        {"   ", ING_ESYNTAX, 3},
        {"{", ING_ESYNTAX, 1},
        {"[", ING_ESYNTAX, 1},
        {"}", ING_ESYNTAX, 0},
        {"]", ING_ESYNTAX, 0},
        {"[1,]", ING_ESYNTAX, 3},           /* trailing comma */
        {"{\"a\":1,}", ING_ESYNTAX, 7},
        {"[,1]", ING_ESYNTAX, 1},
        {"[1 2]", ING_ESYNTAX, 3},          /* missing comma */
        {"{\"a\" 1}", ING_ESYNTAX, 5},      /* missing colon */
        {"{\"a\":}", ING_ESYNTAX, 5},
        {"{a:1}", ING_ESYNTAX, 1},          /* unquoted key */
        {"{1:1}", ING_ESYNTAX, 1},
        {"{\"a\":1]", ING_ESYNTAX, 6},      /* mismatched closer */
        {"[1}", ING_ESYNTAX, 2},
        {"{} {}", ING_ESYNTAX, 3},          /* data after the top-level value */
        {"1 2", ING_ESYNTAX, 2},
        {"{}x", ING_ESYNTAX, 2},
        {"'a'", ING_ESYNTAX, 0},
        {"\"abc", ING_ESYNTAX, 0},          /* unterminated string */
        {"\"a\nb\"", ING_ESYNTAX, 2},       /* raw control character */
        {"\"a\tb\"", ING_ESYNTAX, 2},
        {"\"\\x\"", ING_ESYNTAX, 1},        /* bad escape */
        {"\"\\u12\"", ING_ESYNTAX, 1},
        {"\"\\u12G4\"", ING_ESYNTAX, 1},
        {"\"\\ud800\"", ING_ESYNTAX, 1},    /* lone high surrogate */
        {"\"\\ud800\\u0041\"", ING_ESYNTAX, 1},
        {"\"\\udc00\"", ING_ESYNTAX, 1},    /* lone low surrogate */
        {"\"\\", ING_ESYNTAX, 1},
        {"01", ING_ESYNTAX, 1},             /* leading zero */
        {"-01", ING_ESYNTAX, 2},
        {"+1", ING_ESYNTAX, 0},
        {"-", ING_ESYNTAX, 1},
        {"1.", ING_ESYNTAX, 2},
        {".5", ING_ESYNTAX, 0},
        {"1.e5", ING_ESYNTAX, 2},
        {"1e", ING_ESYNTAX, 2},
        {"1e+", ING_ESYNTAX, 3},
        {"1x", ING_ESYNTAX, 1},
        {"0x10", ING_ESYNTAX, 1},
        {"NaN", ING_ESYNTAX, 0},
        {"Infinity", ING_ESYNTAX, 0},
        {"-Infinity", ING_ESYNTAX, 1},
        {"tru", ING_ESYNTAX, 0},
        {"truee", ING_ESYNTAX, 0},
        {"nul", ING_ESYNTAX, 0},
        {"True", ING_ESYNTAX, 0},
        {"[1,2", ING_ESYNTAX, 4},
        {"{\"a\":1", ING_ESYNTAX, 6},
        {"/* c */ 1", ING_ESYNTAX, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ing_err err;
        ing_err_clear(&err);
        int rc = lex_str(bad[i].in, &err);
        if (rc != bad[i].code || err.offset != bad[i].offset)
            fail_msg("case %zu <%s>: rc %d offset %lld (want %d at %lld): %s", i, bad[i].in, rc,
                     (long long)err.offset, bad[i].code, (long long)bad[i].offset, err.msg);
        assert_int_equal(err.code, bad[i].code);
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_error_messages(void **state)
{
    (void)state;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(lex_str("[1 2]", &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "expected ',' or ']'"));
    assert_non_null(strstr(err.msg, "found '2'"));
    assert_non_null(strstr(err.msg, "offset 3"));
    ing_err_clear(&err);
    assert_int_equal(lex_str("{\"a\" 1}", &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "expected ':'"));
    ing_err_clear(&err);
    assert_int_equal(lex_str("{", &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "end of input"));
    ing_err_clear(&err);
    assert_int_equal(lex_str("\"a\x01\"", &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "control character"));
    /* err may be NULL */
    assert_int_equal(lex_str("[1,]", NULL), ING_ESYNTAX);
}

static void test_token_sequence(void **state)
{
    (void)state;
    const char *s = " {\"name\":\"Ann\",\"n\":-12,\"x\":1.5e3,\"tags\":[\"a\\\"b\",true,null,false],"
                    "\"o\":{}} ";
    static const enum jtok_type want[] = {
        JT_OBJ_BEGIN, JT_KEY, JT_STRING, JT_KEY, JT_NUMBER, JT_KEY, JT_NUMBER, JT_KEY,
        JT_ARR_BEGIN, JT_STRING, JT_TRUE, JT_NULL, JT_FALSE, JT_ARR_END, JT_KEY, JT_OBJ_BEGIN,
        JT_OBJ_END, JT_OBJ_END, JT_END, JT_END,
    };
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, s, strlen(s));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(jlex_next(&lx, &t, NULL), 0);
        assert_int_equal(t.type, want[i]);
        switch (i) {
        case 1:
            assert_int_equal(t.n, 4);
            assert_memory_equal(t.p, "name", 4);
            assert_false(t.escaped);
            break;
        case 2:
            assert_int_equal(t.n, 3);
            assert_memory_equal(t.p, "Ann", 3);
            break;
        case 4:
            assert_int_equal(t.n, 3);
            assert_memory_equal(t.p, "-12", 3);
            assert_true(t.integer);
            break;
        case 6:
            assert_int_equal(t.n, 5);
            assert_memory_equal(t.p, "1.5e3", 5);
            assert_false(t.integer);
            break;
        case 9:
            assert_int_equal(t.n, 4);
            assert_memory_equal(t.p, "a\\\"b", 4);
            assert_true(t.escaped);
            break;
        default:
            break;
        }
    }
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    struct jlex lx;
    struct jtok t;
    struct ing_err err;
    ing_err_clear(&err);
    jlex_init(&lx, "[1,,2]", 6);
    assert_int_equal(jlex_next(&lx, &t, &err), 0);
    assert_int_equal(jlex_next(&lx, &t, &err), 0);
    assert_int_equal(jlex_next(&lx, &t, &err), ING_ESYNTAX);
    assert_int_equal(jlex_next(&lx, &t, &err), ING_ESYNTAX);
    jlex_init(&lx, "[[[", 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), ING_ESYNTAX);
    /* an empty buffer given as NULL */
    jlex_init(&lx, NULL, 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), ING_ESYNTAX);
}

/* n nested arrays with a 1 inside */
static char *nested(int n)
{
    char *s = malloc((size_t)n * 2 + 2);
    assert_non_null(s);
    memset(s, '[', (size_t)n);
    s[n] = '1';
    memset(s + n + 1, ']', (size_t)n);
    s[2 * n + 1] = 0;
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *ok = nested(JLEX_MAX_DEPTH);
    char *deep = nested(JLEX_MAX_DEPTH + 1);
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(lex_str(ok, &err), 0);
    assert_int_equal(lex_str(deep, &err), ING_ETOOBIG);
    assert_int_equal(err.offset, JLEX_MAX_DEPTH);
    /* objects count too */
    char obj[2000];
    size_t n = 0;
    for (int i = 0; i < JLEX_MAX_DEPTH + 1; i++)
        n += (size_t)snprintf(obj + n, sizeof(obj) - n, "{\"a\":");
    assert_int_equal(lex_all(obj, n, &err, NULL), ING_ETOOBIG);
    free(ok);
    free(deep);
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *good[] = {
        "\"\xc2\x80\"",             /* U+0080, smallest 2-byte */
        "\"\xdf\xbf\"",             /* U+07FF */
        "\"\xe0\xa0\x80\"",         /* U+0800, smallest 3-byte */
        "\"\xed\x9f\xbf\"",         /* U+D7FF, just below the surrogates */
        "\"\xee\x80\x80\"",         /* U+E000, just above */
        "\"\xef\xbf\xbf\"",         /* U+FFFF */
        "\"\xf0\x90\x80\x80\"",     /* U+10000 */
        "\"\xf4\x8f\xbf\xbf\"",     /* U+10FFFF, the last code point */
        "\"abcdefgh\xc3\xa9ijklmnopqrstuvwxyz0123456789\xe2\x82\xac\"",
    };
    static const char *bad[] = {
        "\"\xc0\x80\"",             /* overlong NUL */
        "\"\xc1\xbf\"",             /* overlong */
        "\"\xe0\x80\x80\"",         /* overlong 3-byte */
        "\"\xe0\x9f\xbf\"",
        "\"\xed\xa0\x80\"",         /* encoded surrogate U+D800 */
        "\"\xed\xbf\xbf\"",
        "\"\xf0\x80\x80\x80\"",     /* overlong 4-byte */
        "\"\xf0\x8f\xbf\xbf\"",
        "\"\xf4\x90\x80\x80\"",     /* U+110000 */
        "\"\xf5\x80\x80\x80\"",
        "\"\xff\"",
        "\"\x80\"",                 /* stray continuation byte */
        "\"\xc3\"",                 /* truncated */
        "\"\xe2\x82\"",
        "\"\xf0\x9f\x98\"",
        "\"\xc3\x28\"",             /* bad continuation */
        "\"abcdefghijklmnop\xe2\x28\xa1\"",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct ing_err err;
        ing_err_clear(&err);
        if (lex_str(good[i], &err))
            fail_msg("valid UTF-8 case %zu rejected: %s", i, err.msg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ing_err err;
        ing_err_clear(&err);
        if (lex_str(bad[i], &err) != ING_ESYNTAX)
            fail_msg("invalid UTF-8 case %zu accepted", i);
    }
    /* a truncated sequence at the very end of the buffer (no closing quote after it) */
    assert_int_equal(lex_all("\"\xe2\x82", 3, NULL, NULL), ING_ESYNTAX);
    /* the offset points at the bad byte, also after a fast-path run of ASCII */
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(lex_str("[\"0123456789abcdef\xff\"]", &err), ING_ESYNTAX);
    assert_int_equal(err.offset, 18);
    assert_non_null(strstr(err.msg, "UTF-8"));
}

static void test_strings_long_and_embedded(void **state)
{
    (void)state;
    /* strings of every length up to 40 around the 16- and 8-byte fast paths, with a special
     * byte at every position */
    char s[64];
    for (size_t len = 0; len <= 40; len++) {
        s[0] = '"';
        memset(s + 1, 'a', len);
        s[len + 1] = '"';
        assert_int_equal(lex_all(s, len + 2, NULL, NULL), 0);
        for (size_t at = 0; at < len; at++) {
            s[1 + at] = '\x1f';
            struct ing_err err;
            ing_err_clear(&err);
            assert_int_equal(lex_all(s, len + 2, &err, NULL), ING_ESYNTAX);
            assert_int_equal(err.offset, (int64_t)(1 + at));
            s[1 + at] = '"'; /* the string ends early: what follows is trailing data */
            ing_err_clear(&err);
            assert_int_equal(lex_all(s, len + 2, &err, NULL), ING_ESYNTAX);
            assert_int_equal(err.offset, (int64_t)(2 + at));
            s[1 + at] = '\xff'; /* never valid UTF-8: found wherever it sits in a block */
            ing_err_clear(&err);
            assert_int_equal(lex_all(s, len + 2, &err, NULL), ING_ESYNTAX);
            assert_int_equal(err.offset, (int64_t)(1 + at));
            s[1 + at] = 'a';
            if (at + 1 < len) { /* a two-byte character and an escape at every position */
                struct jlex lx;
                struct jtok t;
                memcpy(s + 1 + at, "\xc3\xa9", 2);
                jlex_init(&lx, s, len + 2);
                assert_int_equal(jlex_next(&lx, &t, NULL), 0);
                assert_int_equal(t.n, len);
                assert_false(t.escaped);
                memcpy(s + 1 + at, "\\n", 2);
                jlex_init(&lx, s, len + 2);
                assert_int_equal(jlex_next(&lx, &t, NULL), 0);
                assert_int_equal(t.n, len);
                assert_true(t.escaped);
                memcpy(s + 1 + at, "aa", 2);
            }
        }
    }
    /* a string containing brackets, quotes and backslashes */
    struct jlex lx;
    struct jtok t;
    const char *r = "[\"{[\\\"]}\\\\\"]";
    jlex_init(&lx, r, strlen(r));
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_STRING);
    assert_int_equal(t.n, 8);
    assert_memory_equal(t.p, "{[\\\"]}\\\\", 8);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_ARR_END);
}

struct unesc_case {
    const char *in;
    const char *out;
    size_t out_len;
};

static void test_unescape(void **state)
{
    (void)state;
    static const struct unesc_case cases[] = {
        {"", "", 0},
        {"plain", "plain", 5},
        {"a\\\"b", "a\"b", 3},
        {"\\\\\\/\\b\\f\\n\\r\\t", "\\/\b\f\n\r\t", 7},
        {"\\u0041\\u00e9", "A\xc3\xa9", 3},
        {"\\u0000x", "\0x", 2},
        {"\\u20ac", "\xe2\x82\xac", 3},
        {"\\uFFFF", "\xef\xbf\xbf", 3},
        {"\\ud83d\\ude00!", "\xf0\x9f\x98\x80!", 5},
        {"\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf", 4},
        {"caf\xc3\xa9\\n", "caf\xc3\xa9\n", 6},
    };
    struct buf b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        assert_int_equal(buf_append(&b, "pre", 3), 0); /* appends, keeps what is there */
        assert_int_equal(jtok_unescape(cases[i].in, strlen(cases[i].in), &b, NULL), 0);
        assert_int_equal(b.len, 3 + cases[i].out_len);
        assert_memory_equal(b.data, "pre", 3);
        if (cases[i].out_len)
            assert_memory_equal(b.data + 3, cases[i].out, cases[i].out_len);
    }
    static const char *bad[] = {"\\", "a\\x", "\\u12", "\\u12zz", "\\ud800", "\\ud800x",
                                "\\ud800\\u0041", "\\udc00", "\\ud800\\ud800"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ing_err err;
        ing_err_clear(&err);
        buf_reset(&b);
        assert_int_equal(jtok_unescape(bad[i], strlen(bad[i]), &b, &err), ING_ESYNTAX);
        assert_int_equal(b.len, 0); /* nothing appended on failure */
        assert_true(err.offset >= 0);
    }
    /* the buffer's cap is honoured */
    struct buf capped = {.limit = 4};
    assert_int_equal(jtok_unescape("abcdef", 6, &capped, NULL), ING_ETOOBIG);
    buf_free(&capped);
    buf_free(&b);
}

static void test_unescape_roundtrip_tokens(void **state)
{
    (void)state;
    /* every string token the lexer accepts decodes */
    const char *s = "{\"k\\u00e9y\":[\"\\ud834\\udd1e\",\"\\/\\\"\",\"\xe2\x82\xac\"]}";
    struct jlex lx;
    struct jtok t;
    struct buf b = {0};
    jlex_init(&lx, s, strlen(s));
    int strings = 0;
    for (;;) {
        assert_int_equal(jlex_next(&lx, &t, NULL), 0);
        if (t.type == JT_END)
            break;
        if (t.type == JT_KEY || t.type == JT_STRING) {
            buf_reset(&b);
            assert_int_equal(jtok_unescape(t.p, t.n, &b, NULL), 0);
            strings++;
            if (strings == 1) {
                assert_int_equal(b.len, 4);
                assert_memory_equal(b.data, "k\xc3\xa9y", 4);
            } else if (strings == 2) {
                assert_int_equal(b.len, 4);
                assert_memory_equal(b.data, "\xf0\x9d\x84\x9e", 4);
            }
        }
    }
    assert_int_equal(strings, 4);
    buf_free(&b);
}

struct i64_case {
    const char *in;
    int rc;
    int64_t v;
};

static void test_i64(void **state)
{
    (void)state;
    static const struct i64_case cases[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"7", 0, 7},
        {"-42", 0, -42},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", ING_ETYPE, 0},
        {"-9223372036854775809", ING_ETYPE, 0},
        {"99999999999999999999", ING_ETYPE, 0},
        /* around the plain-integer shortcut (up to 18 digits) and its refusals */
        {"999999999999999999", 0, 999999999999999999},
        {"-999999999999999999", 0, -999999999999999999},
        {"1000000000000000000", 0, 1000000000000000000},
        {"00", ING_ETYPE, 0},
        {"-01", ING_ETYPE, 0},
        {"--1", ING_ETYPE, 0},
        {"1-", ING_ETYPE, 0},
        {"1e3", 0, 1000},
        {"1E+3", 0, 1000},
        {"1.5e1", 0, 15},
        {"1.50e1", 0, 15},
        {"100e-2", 0, 1},
        {"2.000", 0, 2},
        {"0.0", 0, 0},
        {"0e999999999999", 0, 0},
        {"1.5", ING_ETYPE, 0},
        {"0.1", ING_ETYPE, 0},
        {"1e-1", ING_ETYPE, 0},
        {"15e-1", ING_ETYPE, 0},
        {"1e19", ING_ETYPE, 0},
        {"9.223372036854775807e18", 0, INT64_MAX},
        {"1e999999999999", ING_ETYPE, 0},
        {"0000001", ING_ETYPE, 0},
        {"", ING_ETYPE, 0},
        {"-", ING_ETYPE, 0},
        {"+1", ING_ETYPE, 0},
        {"1 ", ING_ETYPE, 0},
        {" 1", ING_ETYPE, 0},
        {"abc", ING_ETYPE, 0},
        {"1.", ING_ETYPE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 12345;
        int rc = jtok_i64(cases[i].in, strlen(cases[i].in), &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
            fail_msg("jtok_i64(%s): rc %d v %lld", cases[i].in, rc, (long long)v);
    }
    /* only n bytes are read: "12" out of "123" */
    int64_t v = 0;
    assert_int_equal(jtok_i64("123", 2, &v), 0);
    assert_int_equal(v, 12);
}

static void test_f64(void **state)
{
    (void)state;
    static const char *nums[] = {
        "0", "-0", "1", "-1", "1.5", "252.19", "0.1", "0.3", "3.14159265358979",
        "123456789012345", "1234567890123456789", "1e22", "1e23", "1.7976931348623157e308",
        "2.2250738585072014e-308", "4.9e-324", "1e-400", "0.000001", "-12.5e-3",
        "9007199254740993", "123.456789012345678901234567890",
        /* around the plain-integer shortcut (up to 15 digits) */
        "999999999999999", "-999999999999999", "1000000000000000", "-1234567890123456",
        "581247", "-7",
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        double v = -99;
        assert_int_equal(jtok_f64(nums[i], strlen(nums[i]), &v), 0);
        double want = strtod(nums[i], NULL);
        if (memcmp(&v, &want, sizeof(v)) != 0) /* bit-exact, also the sign of zero */
            fail_msg("jtok_f64(%s) = %.17g, strtod says %.17g", nums[i], v, want);
    }
    double v;
    assert_int_equal(jtok_f64("1e999", 5, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("-1e999", 6, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("NaN", 3, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("1.", 2, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("", 0, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("0x1p3", 5, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("01", 2, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("-", 1, &v), ING_ETYPE);
    assert_int_equal(jtok_f64("1a", 2, &v), ING_ETYPE);
    /* bounded: the digits after n are not read ("1.25" of "1.2599") */
    assert_int_equal(jtok_f64("1.2599", 4, &v), 0);
    assert_true(v == 1.25);
    /* a long number (slow path with a heap copy) not terminated by NUL */
    char big[400];
    memset(big, '1', sizeof(big));
    big[1] = '.';
    assert_int_equal(jtok_f64(big, sizeof(big), &v), 0);
    assert_true(fabs(v - 1.1111111111111111) < 1e-15);
}

static void test_skip(void **state)
{
    (void)state;
    const char *s = "{\"skip\":{\"a\":[1,{\"b\":[]}],\"c\":\"]}\"},\"keep\":[true],\"s\":5}";
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, s, strlen(s));
    assert_int_equal(jlex_next(&lx, &t, NULL), 0); /* { */
    assert_int_equal(jlex_next(&lx, &t, NULL), 0); /* "skip" */
    assert_int_equal(jlex_next(&lx, &t, NULL), 0); /* { */
    assert_int_equal(t.type, JT_OBJ_BEGIN);
    assert_int_equal(jlex_skip(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_KEY);
    assert_memory_equal(t.p, "keep", 4);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_ARR_BEGIN);
    assert_int_equal(jlex_skip(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_KEY);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_NUMBER);
    assert_int_equal(jlex_skip(&lx, &t, NULL), 0); /* scalar: no-op */
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_OBJ_END);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.type, JT_END);

    /* skipping validates: an error inside the skipped value is reported */
    const char *b = "{\"x\":[1,2,}";
    struct ing_err err;
    ing_err_clear(&err);
    jlex_init(&lx, b, strlen(b));
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(jlex_skip(&lx, &t, &err), ING_ESYNTAX);
    assert_int_equal(err.offset, 10);
}

static void test_only_len_bytes_read(void **state)
{
    (void)state;
    /* the record is the first 7 bytes; what follows in memory must not matter */
    const char *s = "{\"a\":1}garbage";
    assert_int_equal(lex_all(s, 7, NULL, NULL), 0);
    /* a string cut by the length is unterminated even though memory continues */
    assert_int_equal(lex_all("\"abcdefghijklmnop\"", 10, NULL, NULL), ING_ESYNTAX);
    assert_int_equal(lex_all("true", 3, NULL, NULL), ING_ESYNTAX);
    /* the span of a number stops at the length */
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, "12345", 3);
    assert_int_equal(jlex_next(&lx, &t, NULL), 0);
    assert_int_equal(t.n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_grammar),
        cmocka_unit_test(test_invalid_grammar),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_token_sequence),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_strings_long_and_embedded),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_unescape_roundtrip_tokens),
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_f64),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_only_len_bytes_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
