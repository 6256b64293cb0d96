/*
 * http_int.h - declarations shared by the files of the http module only (router, response,
 * server). Not part of the module's interface; nothing outside src/http includes it.
 */
#ifndef ING_HTTP_HTTP_INT_H
#define ING_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Percent-decode n bytes of src into dst (dst may equal src; it needs n+1 bytes) and
 * NUL-terminate; returns the decoded length. With plus_space, '+' becomes ' ' (query strings).
 * Malformed escapes and "%00" are kept literally, so the result never contains a NUL byte.
 */
size_t http__pct_decode(char *dst, const char *src, size_t n, bool plus_space);

/* The sandbox of the request the calling thread is handling (set by the server around handler
 * calls, so http_resp_error can name it); NULL outside a request, which reads as "prod". */
void http__set_current_sandbox(const char *sandbox);
const char *http__current_sandbox(void);

#endif
