/*
 * xdm_convert.h - the XDM conversion rules of AEP batch ingestion, as pure functions.
 *
 * The matrix of the "Types" section of the ingestion docs: strings convert to every scalar type,
 * integers to every numeric type and to string, longs (epoch milliseconds) to date and date-time,
 * doubles to numbers and strings; booleans and arrays do not convert. Dates and date-times accept
 * ISO 8601 / RFC 3339 text (a date-only string becomes midnight UTC for a date-time) or epoch ms.
 * Integer targets check their range (byte, short, int, long = +/-(2^53-1) as XDM bounds longs).
 * All functions are pure and thread-safe; they return 0 or ING_ETYPE with a message in err.
 */
#ifndef ING_SCHEMA_XDM_CONVERT_H
#define ING_SCHEMA_XDM_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/xdm_plan.h"
#include "util/err.h"

/* Parse RFC 3339 / ISO 8601 date-time ("2020-08-11T00:00:00Z", "...T15:05:59.000-08:00",
 * "2000-05-15" as midnight UTC) into epoch milliseconds. */
int xdm_parse_datetime(const char *s, size_t n, int64_t *out_ms, struct ing_err *err);
/* Parse "YYYY-MM-DD" (or a date-time, truncated to its UTC day) into days since 1970-01-01. */
int xdm_parse_date(const char *s, size_t n, int32_t *out_days, struct ing_err *err);
/* Format for previews and diagnostics: "2020-08-11T00:00:00.000Z" / "2020-08-11". */
void xdm_format_datetime(int64_t ms, char out[32]);
void xdm_format_date(int32_t days, char out[16]);

/* Range of an integer XDM type (byte, short, int, long). */
void xdm_int_range(enum xdm_type t, int64_t *min, int64_t *max);
/* Text -> integer of type t (accepts "42", "-7", "42.0"; rejects "4.2", "abc", out of range). */
int xdm_text_to_int(enum xdm_type t, const char *s, size_t n, int64_t *out, struct ing_err *err);
/* Text -> double (finite only). */
int xdm_text_to_double(const char *s, size_t n, double *out, struct ing_err *err);
/* Text -> boolean ("true"/"false", case-insensitive). */
int xdm_text_to_bool(const char *s, size_t n, bool *out, struct ing_err *err);
/* Double -> integer of type t: only when integral and in range. */
int xdm_double_to_int(enum xdm_type t, double v, int64_t *out, struct ing_err *err);

/* Format checks for strings. */
bool xdm_format_ok(enum xdm_format f, const char *s, size_t n);

const char *xdm_type_name(enum xdm_type t); /* "string", "integer", "date-time", ... */

#endif
