/* id.c - ULID-like and hex ids; see id.h. */
#include "util/id.h"
#include "util/clock.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void id_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r <= 0)
            abort(); /* the kernel's CSPRNG does not fail once booted */
        p += r;
        n -= (size_t)r;
    }
}

void id_ulid(char out[ID_ULID_LEN + 1])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t ms = (uint64_t)clock_now_ms();
    uint8_t rnd[10];
    id_random(rnd, sizeof(rnd));
    /* 48-bit time in 10 chars, then 80 random bits in 16 chars. */
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[ms & 31];
        ms >>= 5;
    }
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = (hi << 8) | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = (lo << 8) | rnd[i];
    for (int i = 17; i >= 10; i--) {
        out[i] = b32[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        out[i] = b32[lo & 31];
        lo >>= 5;
    }
    out[ID_ULID_LEN] = '\0';
}

void id_hex(char out[ID_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t rnd[ID_HEX_LEN / 2];
    id_random(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[ID_HEX_LEN] = '\0';
}

bool id_is_safe(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}
