/*
 * xdm_convert.c - the XDM conversion rules of AEP batch ingestion: dates and date-times (ISO 8601
 * / RFC 3339 text or epoch milliseconds), integer ranges, numeric and boolean text, string formats.
 *
 * Everything here is a pure function over (pointer, length) spans: the shredder hands us raw
 * slices of the record buffer, which are not NUL-terminated. Calendar arithmetic uses the
 * proleptic Gregorian "days from civil" formulas on int64, so no libc time zone state (timegm,
 * TZ) is involved and the functions stay thread-safe.
 */
#include "schema/xdm_convert.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/date.h"

#define MS_PER_DAY INT64_C(86400000)
/* Years 0000..9999: what four-digit ISO text can express, so every value we accept can be
 * printed back in the same shape. */
#define MIN_DAYS INT64_C(-719528)          /* 0000-01-01 */
#define MAX_DAYS INT64_C(2932896)          /* 9999-12-31 */
#define MIN_MS (MIN_DAYS * MS_PER_DAY)
#define MAX_MS ((MAX_DAYS + 1) * MS_PER_DAY - 1)
#define XDM_LONG_MAX INT64_C(9007199254740991) /* 2^53 - 1 */

/* The value as it goes into an error message: at most 40 bytes, control bytes shown as '?'. */
static void quote_value(char out[64], const char *s, size_t n)
{
    size_t shown = n > 40 ? 40 : n;
    size_t i;
    for (i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n > shown) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Exactly `count` ASCII digits at s[0..count) as a number; -1 when any is not a digit. */
static int digits(const char *s, int count)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DD" at s (at least 10 bytes available) -> days; NULL reason on success. */
static const char *parse_ymd(const char *s, int64_t *days)
{
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || s[4] != '-' || m < 0 || s[7] != '-' || d < 0)
        return "the date must be YYYY-MM-DD";
    if (m < 1 || m > 12)
        return "month out of range 01-12";
    if (d < 1 || d > days_in_month(y, m))
        return "day out of range for the month";
    *days = date_days_from_civil(y, m, d);
    return NULL;
}

/* "-?[0-9]+" -> epoch ms within the year 0000..9999 range; reason or NULL. Sets *is_epoch when
 * the text has the shape of epoch milliseconds at all. */
static const char *parse_epoch_ms(const char *s, size_t n, bool *is_epoch, int64_t *ms)
{
    size_t i = 0;
    bool neg = false;
    *is_epoch = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n)
        return NULL;
    for (size_t j = i; j < n; j++)
        if (s[j] < '0' || s[j] > '9')
            return NULL;
    *is_epoch = true;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return "epoch milliseconds out of range";
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return "epoch milliseconds out of range";
    int64_t sv = neg ? -(int64_t)v : (int64_t)v;
    if (sv < MIN_MS || sv > MAX_MS)
        return "epoch milliseconds out of range (years 0000-9999)";
    *ms = sv;
    return NULL;
}

/* The date-time grammar proper; reason or NULL. */
static const char *parse_datetime_text(const char *s, size_t n, int64_t *out_ms)
{
    int64_t days;
    const char *why;
    if (n < 10)
        return "too short";
    if ((why = parse_ymd(s, &days)) != NULL)
        return why;
    if (n == 10) {
        *out_ms = days * MS_PER_DAY; /* date only: midnight UTC */
        return NULL;
    }
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return "expected 'T' between date and time";
    if (n < 19)
        return "the time must be HH:MM:SS";
    int hh = digits(s + 11, 2), mi = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (hh < 0 || s[13] != ':' || mi < 0 || s[16] != ':' || ss < 0)
        return "the time must be HH:MM:SS";
    if (hh > 23)
        return "hour out of range 00-23";
    if (mi > 59)
        return "minute out of range 00-59";
    if (ss > 59)
        return "second out of range 00-59";
    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac_ms += scale * (s[i] - '0'); /* digits past milliseconds are truncated */
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9)
            return "the fraction of a second must have 1 to 9 digits";
    }
    if (i >= n)
        return "missing time zone (Z or +HH:MM)";
    int64_t offset_min = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh, om;
        if (n - i == 5 && s[i + 2] == ':') {
            oh = digits(s + i, 2);
            om = digits(s + i + 3, 2);
        } else if (n - i == 4) {
            oh = digits(s + i, 2);
            om = digits(s + i + 2, 2);
        } else {
            return "the time zone offset must be +HH:MM";
        }
        if (oh < 0 || om < 0)
            return "the time zone offset must be +HH:MM";
        if (oh > 23 || om > 59)
            return "time zone offset out of range";
        offset_min = sign * (oh * 60 + om);
        i = n;
    } else {
        return "missing time zone (Z or +HH:MM)";
    }
    if (i != n)
        return "unexpected characters after the time zone";
    int64_t ms = days * MS_PER_DAY + ((int64_t)hh * 3600 + mi * 60 + ss) * 1000 + frac_ms -
                 offset_min * 60000;
    if (ms < MIN_MS || ms > MAX_MS)
        return "out of range (years 0000-9999 in UTC)";
    *out_ms = ms;
    return NULL;
}

int xdm_parse_datetime(const char *s, size_t n, int64_t *out_ms, struct ing_err *err)
{
    bool is_epoch;
    int64_t ms = 0;
    const char *why = parse_epoch_ms(s, n, &is_epoch, &ms);
    if (!is_epoch)
        why = parse_datetime_text(s, n, &ms);
    if (why) {
        char q[64];
        quote_value(q, s, n);
        return ing_err_set(err, ING_ETYPE,
                           "'%s' is not a valid date-time (%s); expected ISO 8601 such as "
                           "2020-08-11T15:05:59.000-08:00, 2020-08-11 or epoch milliseconds",
                           q, why);
    }
    *out_ms = ms;
    return 0;
}

int xdm_parse_date(const char *s, size_t n, int32_t *out_days, struct ing_err *err)
{
    int64_t days = 0;
    const char *why;
    if (n == 10) {
        why = parse_ymd(s, &days);
    } else {
        bool is_epoch;
        int64_t ms = 0;
        why = parse_epoch_ms(s, n, &is_epoch, &ms);
        if (!is_epoch)
            why = parse_datetime_text(s, n, &ms);
        days = date_days_of_ms(ms);
    }
    if (why) {
        char q[64];
        quote_value(q, s, n);
        return ing_err_set(err, ING_ETYPE,
                           "'%s' is not a valid date (%s); expected YYYY-MM-DD, an ISO 8601 "
                           "date-time or epoch milliseconds",
                           q, why);
    }
    *out_days = (int32_t)days;
    return 0;
}

void xdm_format_datetime(int64_t ms, char out[32])
{
    int64_t days = date_days_of_ms(ms);
    int64_t rest = ms - days * MS_PER_DAY;
    int64_t y;
    int m, d;
    date_civil_from_days(days, &y, &m, &d);
    int h = (int)(rest / 3600000), mi = (int)(rest / 60000 % 60), s = (int)(rest / 1000 % 60);
    int frac = (int)(rest % 1000);
    snprintf(out, 32, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, s, frac);
}

void xdm_format_date(int32_t days, char out[16])
{
    int64_t y;
    int m, d;
    date_civil_from_days(days, &y, &m, &d);
    /* Years outside 0..9999 cannot come from our parsers; clamp the width for safety. */
    if (y < -999 || y > 9999)
        snprintf(out, 16, "%s", "invalid-date");
    else
        snprintf(out, 16, "%04d-%02d-%02d", (int)y, m, d);
}

void xdm_int_range(enum xdm_type t, int64_t *min, int64_t *max)
{
    switch (t) {
    case XDM_BYTE: *min = INT8_MIN; *max = INT8_MAX; break;
    case XDM_SHORT: *min = INT16_MIN; *max = INT16_MAX; break;
    case XDM_INT: *min = INT32_MIN; *max = INT32_MAX; break;
    case XDM_LONG: *min = -XDM_LONG_MAX; *max = XDM_LONG_MAX; break;
    default: *min = INT64_MIN; *max = INT64_MAX; break;
    }
}

static bool is_int_type(enum xdm_type t)
{
    return t == XDM_BYTE || t == XDM_SHORT || t == XDM_INT || t == XDM_LONG;
}

/* Decimal number syntax: -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)? ; leading zeros allowed because
 * CSV text often carries them. Sets *integral when there is neither fraction nor exponent. */
static bool number_syntax(const char *s, size_t n, bool *integral)
{
    size_t i = 0, start;
    *integral = true;
    if (i < n && s[i] == '-')
        i++;
    start = i;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == start)
        return false;
    if (i < n && s[i] == '.') {
        *integral = false;
        start = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == start)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integral = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        start = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == start)
            return false;
    }
    return i == n;
}

/* strtod over a span that has passed number_syntax. */
static bool span_to_double(const char *s, size_t n, double *out)
{
    char stack[128];
    char *tmp = n < sizeof(stack) ? stack : malloc(n + 1);
    if (!tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    double v = strtod(tmp, &end);
    bool ok = end == tmp + n && isfinite(v);
    if (tmp != stack)
        free(tmp);
    if (ok)
        *out = v;
    return ok;
}

static int range_error(struct ing_err *err, enum xdm_type t, const char *q)
{
    int64_t min, max;
    xdm_int_range(t, &min, &max);
    return ing_err_set(err, ING_ETYPE, "'%s' is out of range for %s (%" PRId64 "..%" PRId64 ")", q,
                       xdm_type_name(t), min, max);
}

int xdm_text_to_int(enum xdm_type t, const char *s, size_t n, int64_t *out, struct ing_err *err)
{
    char q[64];
    bool integral;
    if (!is_int_type(t))
        return ing_err_set(err, ING_EINVAL, "%s is not an integer type", xdm_type_name(t));
    if (!number_syntax(s, n, &integral)) {
        quote_value(q, s, n);
        return ing_err_set(err, ING_ETYPE, "'%s' is not a valid %s", q, xdm_type_name(t));
    }
    if (!integral) {
        double d;
        if (!span_to_double(s, n, &d)) {
            quote_value(q, s, n);
            return ing_err_set(err, ING_ETYPE, "'%s' is not a valid %s", q, xdm_type_name(t));
        }
        int rc = xdm_double_to_int(t, d, out, NULL);
        if (rc < 0) {
            quote_value(q, s, n);
            if (d != trunc(d))
                return ing_err_set(err, ING_ETYPE, "'%s' is not a whole number, expected %s", q,
                                   xdm_type_name(t));
            return range_error(err, t, q);
        }
        return 0;
    }
    int64_t min, max;
    xdm_int_range(t, &min, &max);
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg)
        i = 1;
    uint64_t v = 0, limit = neg ? (uint64_t)(-(min + 1)) + 1 : (uint64_t)max;
    for (; i < n; i++) {
        uint64_t dgt = (uint64_t)(s[i] - '0');
        if (v > (limit - dgt) / 10) {
            quote_value(q, s, n);
            return range_error(err, t, q);
        }
        v = v * 10 + dgt;
    }
    /* v <= limit, so the negation below cannot overflow. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int xdm_text_to_double(const char *s, size_t n, double *out, struct ing_err *err)
{
    bool integral;
    if (!number_syntax(s, n, &integral) || !span_to_double(s, n, out)) {
        char q[64];
        quote_value(q, s, n);
        return ing_err_set(err, ING_ETYPE, "'%s' is not a valid double (finite number expected)",
                           q);
    }
    return 0;
}

int xdm_text_to_bool(const char *s, size_t n, bool *out, struct ing_err *err)
{
    if (n == 4 && strncasecmp(s, "true", 4) == 0) {
        *out = true;
        return 0;
    }
    if (n == 5 && strncasecmp(s, "false", 5) == 0) {
        *out = false;
        return 0;
    }
    char q[64];
    quote_value(q, s, n);
    return ing_err_set(err, ING_ETYPE, "'%s' is not a valid boolean (expected true or false)", q);
}

int xdm_double_to_int(enum xdm_type t, double v, int64_t *out, struct ing_err *err)
{
    if (!is_int_type(t))
        return ing_err_set(err, ING_EINVAL, "%s is not an integer type", xdm_type_name(t));
    if (!isfinite(v) || v != trunc(v))
        return ing_err_set(err, ING_ETYPE, "%.17g is not a whole number, expected %s", v,
                           xdm_type_name(t));
    int64_t min, max;
    xdm_int_range(t, &min, &max);
    /* Every bound is exactly representable as a double (|bound| <= 2^53), so comparing in the
     * double domain is exact and the cast below is defined. */
    if (v < (double)min || v > (double)max)
        return ing_err_set(err, ING_ETYPE, "%.17g is out of range for %s (%" PRId64 "..%" PRId64
                           ")", v, xdm_type_name(t), min, max);
    *out = (int64_t)v;
    return 0;
}

static bool has_space_or_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* Labels of [A-Za-z0-9-] (and '_' when lenient), 1..63 bytes, no hyphen at either end,
 * separated by single dots; 1..253 bytes in all. */
static bool hostname_ok(const char *s, size_t n, bool allow_underscore)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (label == 0 && c == '-')
            return false;
        if (!isalnum(c) && c != '-' && !(allow_underscore && c == '_'))
            return false;
        label++;
    }
    return true;
}

static bool email_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || has_space_or_ctl(s, n))
        return false;
    size_t local = (size_t)(at - s);
    const char *domain = at + 1;
    size_t dn = n - local - 1;
    if (local == 0 || local > 64 || memchr(domain, '@', dn))
        return false;
    return hostname_ok(domain, dn, false);
}

static bool uri_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return false;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == n || s[i] != ':')
        return false;
    return i + 1 < n && !has_space_or_ctl(s, n);
}

static bool uuid_ok(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool inet_ok(int family, const char *s, size_t n)
{
    char tmp[64];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof(tmp) || memchr(s, '\0', n))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(family, tmp, addr) == 1;
}

bool xdm_format_ok(enum xdm_format f, const char *s, size_t n)
{
    switch (f) {
    case XDM_FMT_NONE: return true;
    case XDM_FMT_EMAIL: return email_ok(s, n);
    case XDM_FMT_URI: return uri_ok(s, n);
    case XDM_FMT_UUID: return uuid_ok(s, n);
    case XDM_FMT_IPV4: return inet_ok(AF_INET, s, n);
    case XDM_FMT_IPV6: return inet_ok(AF_INET6, s, n);
    case XDM_FMT_HOSTNAME: return hostname_ok(s, n, false);
    }
    return false;
}

const char *xdm_type_name(enum xdm_type t)
{
    switch (t) {
    case XDM_STRING: return "string";
    case XDM_BOOLEAN: return "boolean";
    case XDM_BYTE: return "byte";
    case XDM_SHORT: return "short";
    case XDM_INT: return "integer";
    case XDM_LONG: return "long";
    case XDM_DOUBLE: return "double";
    case XDM_DATE: return "date";
    case XDM_DATETIME: return "date-time";
    case XDM_OBJECT: return "object";
    case XDM_ARRAY: return "array";
    case XDM_MAP: return "map";
    }
    return "unknown";
}
