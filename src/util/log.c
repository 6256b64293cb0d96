/* log.c - logfmt records on stderr; see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Atomic: read by every thread; set lazily from INGOT_LOG by whichever thread logs first. */
static _Atomic int g_level = -1;

void log_set_level(enum log_level level)
{
    g_level = (int)level;
}

static int current_level(void)
{
    int level = g_level;
    if (level < 0) {
        const char *e = getenv("INGOT_LOG");
        level = LOG_INFO;
        if (e && !strcmp(e, "debug"))
            level = LOG_DEBUG;
        else if (e && !strcmp(e, "warn"))
            level = LOG_WARN;
        else if (e && !strcmp(e, "error"))
            level = LOG_ERROR;
        g_level = level;
    }
    return level;
}

int log_enabled(enum log_level level)
{
    return (int)level >= current_level();
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < current_level())
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 3)
        len = sizeof(line) - 3;
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
