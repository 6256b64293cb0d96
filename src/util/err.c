/* err.c - filling struct ing_err; see err.h. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ing_err_clear(struct ing_err *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
    err->offset = -1;
}

static void vset(struct ing_err *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int ing_err_set(struct ing_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int ing_err_errno(struct ing_err *err, int errnum, const char *fmt, ...)
{
    if (!err)
        return ING_EIO;
    va_list ap;
    va_start(ap, fmt);
    vset(err, ING_EIO, fmt, ap);
    va_end(ap);
    err->sys_errno = errnum;
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
    return ING_EIO;
}

void ing_err_field(struct ing_err *err, const char *field)
{
    if (err)
        snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
}

void ing_err_file(struct ing_err *err, const char *file)
{
    if (err)
        snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
}

const char *ing_strerror(int code)
{
    switch (code) {
    case ING_OK: return "OK";
    case ING_EINVAL: return "EINVAL";
    case ING_ENOMEM: return "ENOMEM";
    case ING_EIO: return "EIO";
    case ING_ENOTFOUND: return "ENOTFOUND";
    case ING_EEXIST: return "EEXIST";
    case ING_ETOOBIG: return "ETOOBIG";
    case ING_ESYNTAX: return "ESYNTAX";
    case ING_ETYPE: return "ETYPE";
    case ING_ECONSTRAINT: return "ECONSTRAINT";
    case ING_ESTATE: return "ESTATE";
    case ING_EINTERNAL: return "EINTERNAL";
    case ING_EAGAIN: return "EAGAIN";
    case ING_EREQUIRED: return "EREQUIRED";
    default: return "EUNKNOWN";
    }
}
