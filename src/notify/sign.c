/*
 * sign.c - the cryptography of notifications (libsodium): webhook signatures and event ids.
 *
 * x-adobe-signature is Base64(HMAC-SHA256(secret, raw body)), the way Adobe I/O Events signs
 * (a receiver checks it with crypto.createHmac('sha256', secret).update(body).digest('base64')).
 * Secrets have any length, so the streaming HMAC API is used (crypto_auth_hmacsha256 itself takes
 * only 32-byte keys). Event ids are UUIDs hashed from (sandbox, batch, code): the same event is
 * the same id, which makes emitting it a second time a no-op and lets receivers de-duplicate.
 */
#include "notify/notify.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

static void sodium_ready(void)
{
    /* Idempotent and thread-safe; fails only when the system has no randomness at all. */
    if (sodium_init() < 0)
        abort();
}

void notify_sign(const char *secret, const void *body, size_t len, char out[NOTIFY_SIG_LEN])
{
    sodium_ready();
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    const char *key = secret ? secret : "";
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, NOTIFY_SIG_LEN, mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(&st, sizeof(st));
}

void notify_event_id(const char *sandbox, const char *batch_id, const char *code, char out[37])
{
    sodium_ready();
    static const char hex[] = "0123456789abcdef";
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    const char *parts[] = {"ingot-event", sandbox ? sandbox : "", batch_id ? batch_id : "",
                           code ? code : ""};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        /* The NUL separates the parts, so ("ab","c") and ("a","bc") differ. */
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    }
    crypto_generichash_final(&st, h, sizeof(h));
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8: custom */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t k = 0;
    for (size_t i = 0; i < sizeof(h); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[h[i] >> 4];
        out[k++] = hex[h[i] & 15];
    }
    out[k] = '\0';
}
