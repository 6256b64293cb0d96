/*
 * test_convert.c - unit tests for schema/xdm_convert: dates and date-times, epoch milliseconds,
 * integer ranges at their boundaries, numeric and boolean text, string formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schema/xdm_convert.h"

#define S(lit) lit, (sizeof(lit) - 1)

static int64_t dt_ok(const char *s)
{
    int64_t ms = 0;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_parse_datetime(s, strlen(s), &ms, &err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", s, err.msg);
    return ms;
}

static void dt_bad(const char *s)
{
    int64_t ms = 12345;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_parse_datetime(s, strlen(s), &ms, &err);
    if (rc != ING_ETYPE)
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    assert_int_equal(err.code, ING_ETYPE);
    assert_non_null(strstr(err.msg, "date-time"));
    assert_int_equal(ms, 12345); /* untouched on failure */
}

static void test_datetime_valid(void **state)
{
    (void)state;
    assert_int_equal(dt_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(dt_ok("2020-08-11T00:00:00Z"), INT64_C(1597104000000));
    /* AEP's documented example: 2018-07-10T15:05:59.000-08:00 == 1531263959000 */
    assert_int_equal(dt_ok("2018-07-10T15:05:59.000-08:00"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("2018-07-10T23:05:59Z"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("2018-07-11T01:05:59+02:00"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("2018-07-11T01:05:59+0200"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("2018-07-10t23:05:59z"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("2018-07-10 23:05:59Z"), INT64_C(1531263959000));
    /* fractions: 1 to 9 digits, truncated to milliseconds */
    assert_int_equal(dt_ok("1970-01-01T00:00:00.5Z"), 500);
    assert_int_equal(dt_ok("1970-01-01T00:00:00.123Z"), 123);
    assert_int_equal(dt_ok("1970-01-01T00:00:00.123999999Z"), 123);
    assert_int_equal(dt_ok("1970-01-01T00:00:01.001+00:00"), 1001);
    /* before the epoch */
    assert_int_equal(dt_ok("1969-12-31T23:59:59.999Z"), -1);
    /* date only: midnight UTC (Luma joinDate) */
    assert_int_equal(dt_ok("2000-05-15"), INT64_C(958348800000));
    /* leap day and extreme years */
    assert_int_equal(dt_ok("2000-02-29T00:00:00Z"), INT64_C(951782400000));
    assert_int_equal(dt_ok("0000-01-01T00:00:00Z"), INT64_C(-62167219200000));
    assert_int_equal(dt_ok("9999-12-31T23:59:59.999Z"), INT64_C(253402300799999));
    /* epoch milliseconds as text */
    assert_int_equal(dt_ok("1531263959000"), INT64_C(1531263959000));
    assert_int_equal(dt_ok("-1000"), -1000);
    assert_int_equal(dt_ok("0"), 0);
}

static void test_datetime_invalid(void **state)
{
    (void)state;
    dt_bad("");
    dt_bad("2018-00-23T22:07:01Z");   /* AEP's own failing example: month 00 */
    dt_bad("2018-13-01T00:00:00Z");
    dt_bad("2018-01-00T00:00:00Z");
    dt_bad("2018-01-32T00:00:00Z");
    dt_bad("2018-04-31T00:00:00Z");   /* April has 30 days */
    dt_bad("2019-02-29T00:00:00Z");   /* not a leap year */
    dt_bad("1900-02-29T00:00:00Z");   /* century, not a leap year */
    dt_bad("2018-01-01T24:00:00Z");
    dt_bad("2018-01-01T23:60:00Z");
    dt_bad("2018-01-01T23:59:60Z");   /* no leap seconds */
    dt_bad("2018-01-01T23:59:59");    /* no zone */
    dt_bad("2018-01-01T23:59Z");      /* no seconds */
    dt_bad("2018-01-01T23:59:59.Z");  /* empty fraction */
    dt_bad("2018-01-01T23:59:59.1234567890Z"); /* ten digits */
    dt_bad("2018-01-01T23:59:59+24:00");
    dt_bad("2018-01-01T23:59:59+01:60");
    dt_bad("2018-01-01T23:59:59+1:00");
    dt_bad("2018-01-01T23:59:59Zjunk");
    dt_bad("2018-1-01T00:00:00Z");
    dt_bad("18-01-01");
    dt_bad("2018/01/01");
    dt_bad("2018-01-01X00:00:00Z");
    dt_bad("not a date");
    dt_bad("0000-01-01T00:00:00+01:00"); /* before year 0 in UTC */
    dt_bad("99999999999999999999");      /* epoch ms overflow */
    dt_bad("253402300800000");            /* year 10000 */
    dt_bad("-");
}

static void test_datetime_error_message_quotes_value(void **state)
{
    (void)state;
    struct ing_err err;
    int64_t ms;
    ing_err_clear(&err);
    assert_int_equal(xdm_parse_datetime(S("2018-00-23T22:07:01Z"), &ms, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "'2018-00-23T22:07:01Z'"));
    assert_non_null(strstr(err.msg, "month"));
    /* long values are truncated */
    char longv[200];
    memset(longv, 'x', sizeof(longv));
    ing_err_clear(&err);
    assert_int_equal(xdm_parse_datetime(longv, sizeof(longv), &ms, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "..."));
    assert_true(strlen(err.msg) < 300);
    /* NULL err is allowed */
    assert_int_equal(xdm_parse_datetime(S("nope"), &ms, NULL), ING_ETYPE);
}

static void test_date(void **state)
{
    (void)state;
    int32_t d = -1;
    assert_int_equal(xdm_parse_date(S("1970-01-01"), &d, NULL), 0);
    assert_int_equal(d, 0);
    assert_int_equal(xdm_parse_date(S("2000-05-15"), &d, NULL), 0);
    assert_int_equal(d, 11092);
    assert_int_equal(xdm_parse_date(S("1969-12-31"), &d, NULL), 0);
    assert_int_equal(d, -1);
    assert_int_equal(xdm_parse_date(S("2024-02-29"), &d, NULL), 0);
    assert_int_equal(d, 19782);
    /* a date-time is truncated to its UTC day */
    assert_int_equal(xdm_parse_date(S("2020-08-11T23:30:00-02:00"), &d, NULL), 0);
    assert_int_equal(d, 18486); /* 2020-08-12 UTC */
    /* epoch ms, floor toward the earlier day for negatives */
    assert_int_equal(xdm_parse_date(S("86400000"), &d, NULL), 0);
    assert_int_equal(d, 1);
    assert_int_equal(xdm_parse_date(S("-1"), &d, NULL), 0);
    assert_int_equal(d, -1);

    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(xdm_parse_date(S("2023-02-29"), &d, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "'2023-02-29' is not a valid date"));
    assert_int_equal(xdm_parse_date(S("2023-02-3"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_parse_date(S("abcd-ef-gh"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_parse_date(S("2023-02-03T"), &d, NULL), ING_ETYPE);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    char out[32];
    char dout[16];
    xdm_format_datetime(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    xdm_format_datetime(INT64_C(958348800000), out);
    assert_string_equal(out, "2000-05-15T00:00:00.000Z");
    xdm_format_datetime(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    xdm_format_datetime(INT64_C(1531263959123), out);
    assert_string_equal(out, "2018-07-10T23:05:59.123Z");
    xdm_format_datetime(INT64_C(253402300799999), out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    xdm_format_date(0, dout);
    assert_string_equal(dout, "1970-01-01");
    xdm_format_date(11092, dout);
    assert_string_equal(dout, "2000-05-15");
    xdm_format_date(-719528, dout);
    assert_string_equal(dout, "0000-01-01");

    /* every day across several leap cycles parses back to itself */
    for (int32_t day = -800; day < 20000; day += 7) {
        int32_t back = 0;
        xdm_format_date(day, dout);
        assert_int_equal(xdm_parse_date(dout, strlen(dout), &back, NULL), 0);
        assert_int_equal(back, day);
        int64_t ms = (int64_t)day * 86400000 + 3723004;
        int64_t msback = 0;
        xdm_format_datetime(ms, out);
        assert_int_equal(xdm_parse_datetime(out, strlen(out), &msback, NULL), 0);
        assert_int_equal(msback, ms);
    }
}

static void test_int_ranges(void **state)
{
    (void)state;
    int64_t lo, hi;
    xdm_int_range(XDM_BYTE, &lo, &hi);
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
    xdm_int_range(XDM_SHORT, &lo, &hi);
    assert_int_equal(lo, -32768);
    assert_int_equal(hi, 32767);
    xdm_int_range(XDM_INT, &lo, &hi);
    assert_int_equal(lo, INT32_MIN);
    assert_int_equal(hi, INT32_MAX);
    xdm_int_range(XDM_LONG, &lo, &hi);
    assert_int_equal(lo, -INT64_C(9007199254740991));
    assert_int_equal(hi, INT64_C(9007199254740991));
}

static void test_text_to_int(void **state)
{
    (void)state;
    int64_t v = 0;
    struct ing_err err;
    assert_int_equal(xdm_text_to_int(XDM_INT, S("42"), &v, NULL), 0);
    assert_int_equal(v, 42);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("-7"), &v, NULL), 0);
    assert_int_equal(v, -7);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("42.0"), &v, NULL), 0);
    assert_int_equal(v, 42);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("1e3"), &v, NULL), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(xdm_text_to_int(XDM_SHORT, S("007"), &v, NULL), 0);
    assert_int_equal(v, 7);

    /* boundaries */
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("127"), &v, NULL), 0);
    assert_int_equal(v, 127);
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("-128"), &v, NULL), 0);
    assert_int_equal(v, -128);
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("128"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("-129"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_SHORT, S("32767"), &v, NULL), 0);
    assert_int_equal(xdm_text_to_int(XDM_SHORT, S("32768"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_SHORT, S("-32768"), &v, NULL), 0);
    assert_int_equal(xdm_text_to_int(XDM_SHORT, S("-32769"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("2147483647"), &v, NULL), 0);
    assert_int_equal(v, INT32_MAX);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("2147483648"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("-2147483648"), &v, NULL), 0);
    assert_int_equal(v, INT32_MIN);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("-2147483649"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("9007199254740991"), &v, NULL), 0);
    assert_int_equal(v, INT64_C(9007199254740991));
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("-9007199254740991"), &v, NULL), 0);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("9007199254740992"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("-9007199254740992"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("99999999999999999999999"), &v, NULL),
                     ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("1.28e2"), &v, NULL), ING_ETYPE);

    /* not integers */
    ing_err_clear(&err);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("4.2"), &v, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "'4.2'"));
    assert_non_null(strstr(err.msg, "integer"));
    ing_err_clear(&err);
    assert_int_equal(xdm_text_to_int(XDM_BYTE, S("300"), &v, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "out of range for byte"));
    assert_int_equal(xdm_text_to_int(XDM_INT, S("abc"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S(""), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S(" 1"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("1 "), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("0x10"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("-"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("1."), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_INT, S("1e"), &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_int(XDM_LONG, S("1e400"), &v, NULL), ING_ETYPE);
    /* a non-integer target type is a caller bug */
    assert_int_equal(xdm_text_to_int(XDM_STRING, S("1"), &v, NULL), ING_EINVAL);
}

static void test_text_to_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(xdm_text_to_double(S("12925.49"), &d, NULL), 0);
    assert_true(d == 12925.49);
    assert_int_equal(xdm_text_to_double(S("-1.5e3"), &d, NULL), 0);
    assert_true(d == -1500.0);
    assert_int_equal(xdm_text_to_double(S("596518"), &d, NULL), 0);
    assert_true(d == 596518.0);
    assert_int_equal(xdm_text_to_double(S("1e999"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_double(S("nan"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_double(S("inf"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_double(S("1,5"), &d, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_double(S(""), &d, NULL), ING_ETYPE);
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(xdm_text_to_double(S("twelve"), &d, &err), ING_ETYPE);
    assert_non_null(strstr(err.msg, "'twelve'"));
    assert_non_null(strstr(err.msg, "double"));
}

static void test_text_to_bool(void **state)
{
    (void)state;
    bool b = false;
    assert_int_equal(xdm_text_to_bool(S("true"), &b, NULL), 0);
    assert_true(b);
    assert_int_equal(xdm_text_to_bool(S("FALSE"), &b, NULL), 0);
    assert_false(b);
    assert_int_equal(xdm_text_to_bool(S("True"), &b, NULL), 0);
    assert_true(b);
    assert_int_equal(xdm_text_to_bool(S("yes"), &b, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_bool(S("1"), &b, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_bool(S("truex"), &b, NULL), ING_ETYPE);
    assert_int_equal(xdm_text_to_bool(S(""), &b, NULL), ING_ETYPE);
}

static void test_double_to_int(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(xdm_double_to_int(XDM_INT, 42.0, &v, NULL), 0);
    assert_int_equal(v, 42);
    assert_int_equal(xdm_double_to_int(XDM_BYTE, -128.0, &v, NULL), 0);
    assert_int_equal(v, -128);
    assert_int_equal(xdm_double_to_int(XDM_BYTE, 127.5, &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_double_to_int(XDM_BYTE, 128.0, &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_double_to_int(XDM_LONG, 9007199254740991.0, &v, NULL), 0);
    assert_int_equal(v, INT64_C(9007199254740991));
    assert_int_equal(xdm_double_to_int(XDM_LONG, 9007199254740992.0, &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_double_to_int(XDM_LONG, 1e300, &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_double_to_int(XDM_INT, 0.5, &v, NULL), ING_ETYPE);
    assert_int_equal(xdm_double_to_int(XDM_INT, -0.0, &v, NULL), 0);
    assert_int_equal(v, 0);
}

static void test_formats(void **state)
{
    (void)state;
    assert_true(xdm_format_ok(XDM_FMT_NONE, S("anything at all")));
    /* email */
    assert_true(xdm_format_ok(XDM_FMT_EMAIL, S("dwright@enablementadobe.com")));
    assert_true(xdm_format_ok(XDM_FMT_EMAIL, S("a.b+c@example.co.uk")));
    assert_true(xdm_format_ok(XDM_FMT_EMAIL, S("root@localhost")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("no-at-sign")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("@example.com")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a@")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a b@example.com")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a@b@example.com")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a@example..com")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a@.example.com")));
    assert_false(xdm_format_ok(XDM_FMT_EMAIL, S("a@example.com.")));
    /* uri */
    assert_true(xdm_format_ok(XDM_FMT_URI, S("https://ns.adobe.com/xdm/context/profile")));
    assert_true(xdm_format_ok(XDM_FMT_URI, S("urn:isbn:0451450523")));
    assert_true(xdm_format_ok(XDM_FMT_URI, S("mailto:a@b.c")));
    assert_false(xdm_format_ok(XDM_FMT_URI, S("no scheme")));
    assert_false(xdm_format_ok(XDM_FMT_URI, S("/relative/path")));
    assert_false(xdm_format_ok(XDM_FMT_URI, S("1http://x")));
    assert_false(xdm_format_ok(XDM_FMT_URI, S("http://a b")));
    assert_false(xdm_format_ok(XDM_FMT_URI, S("http:")));
    /* uuid */
    assert_true(xdm_format_ok(XDM_FMT_UUID, S("e722bbcc-9653-4715-8ff6-545b314061f2")));
    assert_true(xdm_format_ok(XDM_FMT_UUID, S("E722BBCC-9653-4715-8FF6-545B314061F2")));
    assert_false(xdm_format_ok(XDM_FMT_UUID, S("e722bbcc96534715-8ff6-545b314061f2")));
    assert_false(xdm_format_ok(XDM_FMT_UUID, S("e722bbcc-9653-4715-8ff6-545b314061fg")));
    assert_false(xdm_format_ok(XDM_FMT_UUID, S("e722bbcc-9653-4715-8ff6-545b314061f")));
    /* ip and hostname */
    assert_true(xdm_format_ok(XDM_FMT_IPV4, S("192.168.0.1")));
    assert_false(xdm_format_ok(XDM_FMT_IPV4, S("256.1.1.1")));
    assert_false(xdm_format_ok(XDM_FMT_IPV4, S("::1")));
    assert_true(xdm_format_ok(XDM_FMT_IPV6, S("::1")));
    assert_true(xdm_format_ok(XDM_FMT_IPV6, S("2001:db8::ff00:42:8329")));
    assert_false(xdm_format_ok(XDM_FMT_IPV6, S("2001:db8:::1")));
    assert_true(xdm_format_ok(XDM_FMT_HOSTNAME, S("platform.adobe.io")));
    assert_false(xdm_format_ok(XDM_FMT_HOSTNAME, S("-bad.example")));
    assert_false(xdm_format_ok(XDM_FMT_HOSTNAME, S("bad_host")));
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(xdm_type_name(XDM_STRING), "string");
    assert_string_equal(xdm_type_name(XDM_INT), "integer");
    assert_string_equal(xdm_type_name(XDM_DATETIME), "date-time");
    assert_string_equal(xdm_type_name(XDM_MAP), "map");
    assert_string_equal(xdm_type_name(XDM_BYTE), "byte");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datetime_valid),
        cmocka_unit_test(test_datetime_invalid),
        cmocka_unit_test(test_datetime_error_message_quotes_value),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_int_ranges),
        cmocka_unit_test(test_text_to_int),
        cmocka_unit_test(test_text_to_double),
        cmocka_unit_test(test_text_to_bool),
        cmocka_unit_test(test_double_to_int),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
