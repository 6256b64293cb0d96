/*
 * id.h - identifiers for catalog objects.
 *
 * Batch ids are 26-character ULID-like strings (time-ordered, Crockford base32), as AEP's batch
 * ids are; dataset and other object ids are 24 lower-case hex characters, as AEP's are.
 * Thread-safe (randomness from getrandom(2)).
 */
#ifndef ING_UTIL_ID_H
#define ING_UTIL_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_ULID_LEN 26
#define ID_HEX_LEN 24

/* Writes ID_ULID_LEN chars plus NUL into out (size >= 27). */
void id_ulid(char out[ID_ULID_LEN + 1]);
/* Writes ID_HEX_LEN hex chars plus NUL into out (size >= 25). */
void id_hex(char out[ID_HEX_LEN + 1]);
/* Fill buf with n random bytes. */
void id_random(void *buf, size_t n);
/* True when s is a safe id: 1..64 chars of [A-Za-z0-9_-]. Ids from URLs are checked with this
 * before they reach paths or SQL. */
bool id_is_safe(const char *s);

#endif
