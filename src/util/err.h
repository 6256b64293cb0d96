/*
 * err.h - error codes and the error record every fallible call fills.
 *
 * Convention: functions return 0 on success or a negative ING_E* code, and take an optional
 * `struct ing_err *err` (may be NULL) that says what went wrong and where: the file, the row,
 * the byte offset and the field path. There is no global error state.
 * Thread-safety: struct ing_err is plain data owned by the caller; the functions here are
 * reentrant.
 */
#ifndef ING_UTIL_ERR_H
#define ING_UTIL_ERR_H

#include <stdint.h>
#include <stddef.h>

enum {
    ING_OK = 0,
    ING_EINVAL = -1,     /* bad argument or bad input */
    ING_ENOMEM = -2,     /* allocation of an input-sized buffer failed */
    ING_EIO = -3,        /* read/write/fsync failed; errno kept in err->sys_errno */
    ING_ENOTFOUND = -4,  /* the object does not exist */
    ING_EEXIST = -5,     /* the object exists already */
    ING_ETOOBIG = -6,    /* a size or depth limit was passed */
    ING_ESYNTAX = -7,    /* malformed input (JSON, Parquet, ...) */
    ING_ETYPE = -8,      /* a value cannot be converted to the target type */
    ING_ECONSTRAINT = -9,/* required, enum, pattern, range, length, format */
    ING_ESTATE = -10,    /* the operation is not allowed in the object's current state */
    ING_EINTERNAL = -11, /* a bug or an unexpected library failure */
    ING_EAGAIN = -12,    /* transient; try again later */
    ING_EREQUIRED = -13, /* a required field is missing or null */
};

#define ING_ERR_MSG 512
#define ING_ERR_PATH 256

/* Where and why. All strings are NUL-terminated and truncated to fit. */
struct ing_err {
    int code;                  /* ING_E* (0 when no error recorded) */
    int sys_errno;             /* errno for ING_EIO, else 0 */
    int64_t row;               /* 1-based record number in the file, 0 when not about a row */
    int64_t offset;            /* byte offset in the file, -1 when unknown */
    char file[ING_ERR_PATH];   /* input file (batch-relative path), "" when not about a file */
    char field[ING_ERR_PATH];  /* dotted field path, e.g. "person.name.firstName", or "" */
    char msg[ING_ERR_MSG];     /* human readable, one sentence, no trailing newline */
};

/* Reset to "no error" (offset -1, strings empty). NULL is a no-op. */
void ing_err_clear(struct ing_err *err);

/* Record code and a printf-style message; returns `code` so callers can `return ing_err_set(...)`.
 * Keeps row/offset/file/field untouched. err may be NULL. */
int ing_err_set(struct ing_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ing_err_set with code ING_EIO and sys_errno = errnum; the message gets ": strerror". */
int ing_err_errno(struct ing_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set the field path / file name (truncated). NULL err is a no-op. */
void ing_err_field(struct ing_err *err, const char *field);
void ing_err_file(struct ing_err *err, const char *file);

/* Static name of a code, e.g. "EINVAL". */
const char *ing_strerror(int code);

#endif
