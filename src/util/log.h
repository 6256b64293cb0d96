/*
 * log.h - one-line logfmt log records on stderr.
 *
 * `ts=... level=info msg="..." key=value`. Thread-safe: each record is one write(2).
 */
#ifndef ING_UTIL_LOG_H
#define ING_UTIL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Records below `level` are dropped. Default LOG_INFO; INGOT_LOG=debug|info|warn|error overrides. */
void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether records of `level` are written: lets a caller skip work only a record would use. */
int log_enabled(enum log_level level);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
