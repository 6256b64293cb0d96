/*
 * notify.h - ingestion notifications: subscriptions, a transactional outbox, signed webhook
 * delivery with retries, and the event journal.
 *
 * Events (AEP's data ingestion notifications, notes/aep-api.md section 5): ing_load_success /
 * ing_load_failure when a batch reaches success / failed, ig_load_* and ps_load_* when the
 * identity and profile stages record their result. The code that changes the batch calls
 * notify_emit inside its own store transaction, so the event commits or rolls back with the
 * state change: a crash can delay an event, never lose it.
 *
 * Store kinds (per sandbox):
 *   "eventRegistration"  one subscription: webhook URL, event codes, secret, status
 *   "event"              the journal: one document per event, id = event_id (a UUID derived
 *                        from sandbox, batch and code, so emitting twice is a no-op), with the
 *                        payload exactly as delivered and "deliveries": {registrationId: state}
 *   "eventOutbox"        one document per (event, active subscription) still to deliver;
 *                        deleted, in the same transaction that records the final state in the
 *                        event's "deliveries", once delivered, refused (400/505), given up
 *                        (retries exhausted) or cancelled (subscription gone or inactive)
 * The outbox stays small (only work not done), so the delivery threads scan it cheaply; the
 * journal keeps the history. Outbox items are delivered in insertion order per subscription and
 * batch, so one batch's events go out in pipeline order (ing before ig before ps).
 *
 * Delivery: POST of the payload with Content-Type application/json, x-adobe-event-id,
 * x-adobe-event-code, x-adobe-signature = Base64(HMAC-SHA256(secret, raw body)) and, on retries,
 * x-adobe-retry-count. A 2xx within the timeout is delivered; 400 and 505 are final failures;
 * anything else is retried after retry_first_ms, doubling up to retry_cap_ms, until
 * retry_window_ms after the first attempt, when the subscription becomes "unstable" and disabled.
 * Only http and https, no redirects, a per-request timeout, response bodies read up to 64 KiB.
 *
 * Threads: notify_emit and the notify_sub_* / notify_journal calls are thread-safe; the
 * delivery threads run from notify_start until notify_free. Documents returned are new
 * references.
 */
#ifndef ING_NOTIFY_NOTIFY_H
#define ING_NOTIFY_NOTIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "store/store.h"
#include "util/err.h"

#define NOTIFY_KIND_REG "eventRegistration"
#define NOTIFY_KIND_EVENT "event"
#define NOTIFY_KIND_OUTBOX "eventOutbox"

/* header._adobeio.providerMetadata of every payload (the value of the notes' example). */
#define NOTIFY_PROVIDER "aep_observability_catalog_events"

/* Base64 of a 32-byte HMAC: 44 characters and a NUL. */
#define NOTIFY_SIG_LEN 45
/* Response bytes kept from a webhook (challenge answers); the rest is read and dropped. */
#define NOTIFY_MAX_RESPONSE (64 * 1024)

/* The six data ingestion codes, NULL-terminated (the default of a subscription). */
extern const char *const notify_ingestion_codes[];
bool notify_code_known(const char *code);

struct notify_opts {
    int64_t timeout_ms;           /* per request, challenge included; default 10000 */
    int64_t retry_first_ms;       /* first retry after; default 60000 */
    int64_t retry_cap_ms;         /* longest wait between retries; default 900000 */
    int64_t retry_window_ms;      /* give up this long after the first attempt; default 24 h */
    int64_t journal_retention_ms; /* events kept; default 7 days */
    int64_t sweep_ms;             /* journal sweep period; default 1 h */
    int64_t poll_ms;              /* outbox scan period when idle; default 200 */
    unsigned threads;             /* delivery threads; default 2 */
};

struct notify;

/* `st` is borrowed and must outlive the notifier. Zero fields of `opts` (may be NULL) take the
 * defaults. Initialises libcurl and libsodium (call from the main thread before any other). */
int notify_new(struct notify **out, struct store *st, const struct notify_opts *opts,
               struct ing_err *err);
/* Start the delivery threads (they first pick up whatever the outbox holds from before a crash)
 * and the journal sweep. */
int notify_start(struct notify *n, struct ing_err *err);
/* Stop the threads (a delivery in flight is abandoned, not counted, and sent again at the next
 * start) and free. NULL is a no-op. */
void notify_free(struct notify *n);
const struct notify_opts *notify_options(const struct notify *n);

/* ---- the outbox ------------------------------------------------------------------------------ */

/*
 * Record the event of batch `batch_id` (its document `batch`, in its new state) reaching `code`.
 * Must be called inside an open store transaction of this thread (store_tx_begin): it inserts
 * the journal event and one outbox item per active subscription of the sandbox that wants the
 * code, and those commit or roll back with the caller's change. `stage` is the stage record of
 * ig/ps events ({"status","eventCode","completed","recordCount","durationMs","errors"?}), NULL
 * for ing events; when `code` is NULL it is taken from stage.eventCode. Codes that are not
 * ingestion codes are ignored (0). An event already recorded for this batch and code is not
 * recorded again (0).
 */
int notify_emit(struct store *st, const char *sandbox, const char *batch_id, const json_t *batch,
                const char *code, const json_t *stage, struct ing_err *err);

/* The payload ({"event_id","event":{...}}), new reference. `now_ms` is sentTime. Exposed for
 * the unit tests. */
json_t *notify_payload(const char *sandbox, const char *batch_id, const json_t *batch,
                       const char *code, const json_t *stage, const char *event_id,
                       int64_t now_ms);
/* The event id of (sandbox, batch, code): a version-8 UUID from a BLAKE2b hash. */
void notify_event_id(const char *sandbox, const char *batch_id, const char *code, char out[37]);

/* ---- signatures, backoff, targets ------------------------------------------------------------- */

/* Base64(HMAC-SHA256(key = secret bytes, body)) into out. */
void notify_sign(const char *secret, const void *body, size_t len, char out[NOTIFY_SIG_LEN]);
/* Wait before retry number `retry` (1 = first retry): first * 2^(retry-1), at most cap. */
int64_t notify_backoff_ms(const struct notify_opts *o, int retry);
/* A webhook target must be an absolute http(s) URL with a host, at most 2048 bytes, without
 * spaces or control characters. 0 or ING_EINVAL with the reason. */
int notify_url_check(const char *url, struct ing_err *err);

/* ---- subscriptions ------------------------------------------------------------------------------ */

/*
 * A subscription document (what the API returns; the secret only from create):
 *   {"id","registration_id","name","description","webhook_url","delivery_type":"webhook",
 *    "eventCodes":[...],"events_of_interest":[{"provider_id","event_code"}],"enabled":bool,
 *    "status":"active"|"verification_failed"|"disabled"|"unstable",
 *    "verification":{"status":"verified"|"failed","detail","at"},"sandboxName","imsOrg",
 *    "created","updated"}
 * Only "active" subscriptions get events. Create and any change of webhook_url, or enabling,
 * verify the endpoint first: GET <url>?challenge=<random> must answer 200 with the value, raw or
 * as {"challenge": value}, within timeout_ms; otherwise the status is "verification_failed".
 */
/* body: {"name","description"?,"webhook_url","eventCodes"? (or "events_of_interest"),
 * "secret"?, "enabled"?}. *out: the new subscription, with "secret". */
int notify_sub_create(struct notify *n, const char *sandbox, const char *ims_org,
                      const json_t *body, json_t **out, struct ing_err *err);
int notify_sub_get(struct notify *n, const char *sandbox, const char *id, json_t **out,
                   struct ing_err *err);
/* *out: an array of subscriptions in creation order. */
int notify_sub_list(struct notify *n, const char *sandbox, json_t **out, struct ing_err *err);
/* Change name, description, webhook_url, eventCodes, secret, enabled (fields absent are kept). */
int notify_sub_update(struct notify *n, const char *sandbox, const char *id, const json_t *body,
                      json_t **out, struct ing_err *err);
int notify_sub_delete(struct notify *n, const char *sandbox, const char *id, struct ing_err *err);

/* ---- journal ------------------------------------------------------------------------------------ */

struct notify_journal_query {
    const char *since;      /* NULL, an event id (events after it) or Unix ms (created >= it) */
    const char *event_code; /* NULL or one code */
    const char *batch_id;   /* NULL or one batch */
    int64_t limit;          /* 1..1000; <= 0 takes 100 */
};

/* *out: {"events":[{"position","event_id","eventCode","batchId","created","event":payload,
 * "deliveries":{...}}], "count", "next" (the last position when more may follow, else null)}. */
int notify_journal(struct notify *n, const char *sandbox, const struct notify_journal_query *q,
                   json_t **out, struct ing_err *err);
/* Delete journal events older than the retention; returns how many (>= 0) or an error. */
int64_t notify_sweep(struct notify *n, int64_t now_ms, struct ing_err *err);

/* ---- webhook transport (webhook.c; the only user of libcurl) -------------------------------- */

struct notify_http_result {
    long status;          /* HTTP status, 0 when no answer */
    char error[256];      /* transport error, "" when an answer came */
    char *body;           /* first NOTIFY_MAX_RESPONSE bytes, NUL-terminated (free()) */
    size_t body_len;
};

/* POST `body` with the given extra header lines ("Name: value"). `stop` (may be NULL) aborts
 * the transfer when it becomes true. Returns 0 when the exchange happened (any status) or
 * ING_EAGAIN (transport failure, res->error says why) or ING_EINTERNAL (aborted by `stop`). */
int notify_http_post(const char *url, const char *body, size_t len, const char *const *headers,
                     size_t nheaders, int64_t timeout_ms, const atomic_bool *stop,
                     struct notify_http_result *res);
/* GET <url>?challenge=<challenge> (or &challenge=); same return values. */
int notify_http_challenge(const char *url, const char *challenge, int64_t timeout_ms,
                          struct notify_http_result *res);
void notify_http_result_free(struct notify_http_result *res);
/* Whether an answer proves the endpoint: 200 and the body is the challenge (surrounding
 * whitespace ignored) or a JSON object whose "challenge" is it. */
bool notify_challenge_ok(const struct notify_http_result *res, const char *challenge);
/* One-time process set-up of libcurl (idempotent, thread-safe). */
void notify_http_global_init(void);

#endif
