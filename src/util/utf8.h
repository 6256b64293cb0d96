/*
 * utf8.h - UTF-8 validation, one rule for the whole project: shortest form only, no surrogates,
 * nothing past U+10FFFF (what RFC 3629 allows and JSON text may hold).
 *
 * Used where text that did not come through the JSON tokenizer must be checked: Parquet strings
 * rendered or shredded, stored lookup answers written without jansson. Pure functions,
 * thread-safe.
 */
#ifndef ING_UTIL_UTF8_H
#define ING_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid sequence at p, of which n bytes may be read (n >= 1), or 0 when it
 * is not valid. *cp (may be NULL) receives the code point. A NUL is never a continuation byte,
 * so a NUL-terminated text may pass n = 4. */
size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp);

/* True when all n bytes at p are valid UTF-8 (ASCII runs checked eight bytes at a time). */
bool utf8_valid(const uint8_t *p, size_t n);

#endif
