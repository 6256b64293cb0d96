/*
 * deliver.c - the notifier: delivery threads over the outbox, retries and giving up, the journal
 * and its retention sweep.
 *
 * Each delivery thread takes the next due outbox item under the notifier's mutex (the scan runs
 * there, so two threads never pick the same item) and delivers it without the lock. An item is
 * due when its nextAttempt has come and no earlier item of the same subscription and batch is
 * still in the outbox: that keeps one batch's events in pipeline order while other batches and
 * subscriptions proceed. The outcome is recorded in one store transaction (outbox item updated
 * or deleted, the journal event's delivery state set). A crash between the POST and that record
 * sends the event again after the restart, with the same event_id: delivery is at least once.
 */
#include "notify/notify_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define SCAN_LIMIT 5000
#define SWEEP_BATCH 500
#define JOURNAL_MAX 1000
#define JOURNAL_DEFAULT 100
#define ERROR_TEXT_MAX 200

static const struct notify_opts defaults = {
    .timeout_ms = 10000,
    .retry_first_ms = 60000,
    .retry_cap_ms = 900000,
    .retry_window_ms = 86400000,
    .journal_retention_ms = 7LL * 86400000,
    .sweep_ms = 3600000,
    .poll_ms = 200,
    .threads = 2,
};

int64_t notify_backoff_ms(const struct notify_opts *o, int retry)
{
    int64_t first = o && o->retry_first_ms > 0 ? o->retry_first_ms : defaults.retry_first_ms;
    int64_t cap = o && o->retry_cap_ms > 0 ? o->retry_cap_ms : defaults.retry_cap_ms;
    int64_t wait = first;
    /* Doubling stops at the cap, so the product never overflows. */
    for (int i = 1; i < retry && wait < cap; i++)
        wait = wait > cap / 2 ? cap : wait * 2;
    return wait < cap ? wait : cap;
}

int notify_new(struct notify **out, struct store *st, const struct notify_opts *opts,
               struct ing_err *err)
{
    *out = NULL;
    if (!st)
        return ing_err_set(err, ING_EINVAL, "notify: a store is required");
    struct notify *n = xcalloc(1, sizeof(*n));
    n->st = st;
    n->o = defaults;
    if (opts) {
#define TAKE(f) if (opts->f > 0) n->o.f = opts->f
        TAKE(timeout_ms);
        TAKE(retry_first_ms);
        TAKE(retry_cap_ms);
        TAKE(retry_window_ms);
        TAKE(journal_retention_ms);
        TAKE(sweep_ms);
        TAKE(poll_ms);
        TAKE(threads);
#undef TAKE
    }
    if (n->o.retry_cap_ms < n->o.retry_first_ms)
        n->o.retry_cap_ms = n->o.retry_first_ms;
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&n->stop, false);
    n->inflight = json_object();
    notify_http_global_init();
    *out = n;
    return 0;
}

const struct notify_opts *notify_options(const struct notify *n)
{
    return &n->o;
}

/* ---- recording outcomes ------------------------------------------------------------------------ */

/* In one transaction: set the journal event's delivery state for `reg_id` and either delete the
 * outbox item (final) or replace it with `item` (a retry is scheduled). */
static int record_outcome(struct notify *n, const char *sandbox, const char *item_id,
                          const char *event_id, const char *reg_id, json_t *state,
                          const json_t *item, struct ing_err *err)
{
    json_t *ev = NULL;
    int rc = store_tx_begin(n->st, err);
    if (rc)
        return rc;
    if (item)
        rc = store_update(n->st, sandbox, NOTIFY_KIND_OUTBOX, item_id, item, err);
    else
        rc = store_delete(n->st, sandbox, NOTIFY_KIND_OUTBOX, item_id, err);
    if (rc == ING_ENOTFOUND)
        rc = 0; /* swept or cancelled meanwhile */
    if (rc == 0) {
        int got = store_get(n->st, sandbox, NOTIFY_KIND_EVENT, event_id, &ev, err);
        if (got == 0) {
            json_t *d = json_object_get(ev, "deliveries");
            if (!json_is_object(d)) {
                d = json_object();
                json_object_set_new(ev, "deliveries", d);
            }
            json_object_set(d, reg_id, state);
            json_object_set_new(ev, "updated", json_integer(clock_now_ms()));
            rc = store_update(n->st, sandbox, NOTIFY_KIND_EVENT, event_id, ev, err);
        } else if (got != ING_ENOTFOUND) {
            rc = got;
        }
    }
    json_decref(ev);
    if (rc == 0)
        return store_tx_commit(n->st, err);
    store_tx_rollback(n->st);
    return rc;
}

/* Retries ran out: the subscription becomes "unstable" and disabled, as Adobe I/O does. */
static void mark_unstable(struct notify *n, const char *sandbox, const char *reg_id,
                          const char *why)
{
    json_t *sub = NULL;
    struct ing_err e;
    ing_err_clear(&e);
    if (store_tx_begin(n->st, &e) != 0)
        goto out;
    int rc = store_get(n->st, sandbox, NOTIFY_KIND_REG, reg_id, &sub, &e);
    if (rc == 0) {
        int64_t now = clock_now_ms();
        json_object_set_new(sub, "status", json_string("unstable"));
        json_object_set_new(sub, "enabled", json_false());
        json_object_set_new(sub, "unstable", json_pack("{s:I, s:s}", "since", (json_int_t)now,
                                                       "detail", why));
        json_object_set_new(sub, "updated", json_integer(now));
        rc = store_update(n->st, sandbox, NOTIFY_KIND_REG, reg_id, sub, &e);
    }
    if (rc == 0)
        rc = store_tx_commit(n->st, &e);
    else
        store_tx_rollback(n->st);
    if (rc == 0)
        log_warn("notify: registration disabled as unstable sandbox=%s id=%s: %s", sandbox,
                 reg_id, why);
out:
    if (e.code)
        log_warn("notify: cannot mark registration unstable sandbox=%s id=%s: %s", sandbox,
                 reg_id, e.msg);
    json_decref(sub);
}

/* ---- one delivery ------------------------------------------------------------------------------ */

static void deliver(struct notify *n, const char *sandbox, const char *item_id, const json_t *item)
{
    const char *event_id = json_string_value(json_object_get(item, "eventId"));
    const char *reg_id = json_string_value(json_object_get(item, "registrationId"));
    int attempts = (int)json_integer_value(json_object_get(item, "attempts"));
    json_t *sub = NULL, *ev = NULL, *state = NULL, *next = NULL;
    char *body = NULL;
    struct notify_http_result res = {0};
    struct ing_err e;
    ing_err_clear(&e);
    if (!event_id || !reg_id)
        goto drop;

    int rc = store_get(n->st, sandbox, NOTIFY_KIND_REG, reg_id, &sub, &e);
    const char *status = json_string_value(json_object_get(sub, "status"));
    if (rc == ING_ENOTFOUND || (rc == 0 && (!status || strcmp(status, "active") != 0))) {
        state = json_pack("{s:s, s:i, s:s, s:I}", "status", "cancelled", "attempts", attempts,
                          "detail", rc ? "the registration was deleted"
                                       : "the registration is not active",
                          "at", (json_int_t)clock_now_ms());
        goto final;
    }
    if (rc)
        goto store_failed;
    rc = store_get(n->st, sandbox, NOTIFY_KIND_EVENT, event_id, &ev, &e);
    if (rc == ING_ENOTFOUND)
        goto drop; /* swept from the journal: too old to matter */
    if (rc)
        goto store_failed;

    const json_t *payload = json_object_get(ev, "payload");
    body = json_dumps(payload, JSON_COMPACT);
    if (!body)
        goto drop;
    size_t len = strlen(body);
    const char *code = json_string_value(json_object_get(ev, "eventCode"));
    char sig[NOTIFY_SIG_LEN];
    notify_sign(json_string_value(json_object_get(sub, "secret")), body, len, sig);
    char h_id[96], h_code[96], h_sig[128], h_retry[48];
    snprintf(h_id, sizeof(h_id), "x-adobe-event-id: %s", event_id);
    snprintf(h_code, sizeof(h_code), "x-adobe-event-code: %s", code ? code : "");
    snprintf(h_sig, sizeof(h_sig), "x-adobe-signature: %s", sig);
    snprintf(h_retry, sizeof(h_retry), "x-adobe-retry-count: %d", attempts);
    const char *headers[] = {h_id, h_code, h_sig, h_retry};
    const char *url = json_string_value(json_object_get(sub, "webhook_url"));
    int64_t first = json_is_integer(json_object_get(item, "firstAttempt"))
                        ? (int64_t)json_integer_value(json_object_get(item, "firstAttempt"))
                        : clock_now_ms();
    rc = notify_http_post(url, body, len, headers, attempts > 0 ? 4 : 3, n->o.timeout_ms,
                          &n->stop, &res);
    if (rc == ING_EINTERNAL && atomic_load(&n->stop))
        goto out; /* cut short by shutdown: not an attempt; sent again at the next start */
    int64_t now = clock_now_ms();
    attempts++;
    if (rc == 0 && res.status >= 200 && res.status < 300) {
        state = json_pack("{s:s, s:i, s:i, s:I}", "status", "delivered", "attempts", attempts,
                          "lastStatus", (int)res.status, "deliveredAt", (json_int_t)now);
        log_info("notify: delivered sandbox=%s event=%s code=%s registration=%s attempts=%d",
                 sandbox, event_id, code ? code : "", reg_id, attempts);
        goto final;
    }
    char why[ERROR_TEXT_MAX + 64];
    if (rc == 0)
        snprintf(why, sizeof(why), "the receiver answered HTTP %ld", res.status);
    else
        snprintf(why, sizeof(why), "%.*s", ERROR_TEXT_MAX, res.error);
    if (rc == 0 && (res.status == 400 || res.status == 505)) {
        state = json_pack("{s:s, s:i, s:i, s:s, s:I}", "status", "failed", "attempts", attempts,
                          "lastStatus", (int)res.status, "detail", "not retried: 400 and 505 are final",
                          "at", (json_int_t)now);
        log_warn("notify: not delivered sandbox=%s event=%s registration=%s: %s (final)",
                 sandbox, event_id, reg_id, why);
        goto final;
    }
    if (now - first >= n->o.retry_window_ms) {
        state = json_pack("{s:s, s:i, s:i, s:s, s:I}", "status", "failed", "attempts", attempts,
                          "lastStatus", (int)res.status, "detail", why, "at", (json_int_t)now);
        char *msg = xasprintf("no delivery for %lld ms (%d attempts; last: %s)",
                              (long long)(now - first), attempts, why);
        mark_unstable(n, sandbox, reg_id, msg);
        free(msg);
        goto final;
    }
    int64_t at = now + notify_backoff_ms(&n->o, attempts);
    next = json_deep_copy(item);
    json_object_set_new(next, "attempts", json_integer(attempts));
    json_object_set_new(next, "firstAttempt", json_integer(first));
    json_object_set_new(next, "nextAttempt", json_integer(at));
    json_object_set_new(next, "lastError", json_string(why));
    json_object_set_new(next, "updated", json_integer(now));
    state = json_pack("{s:s, s:i, s:i, s:s, s:I}", "status", "retrying", "attempts", attempts,
                      "lastStatus", (int)res.status, "detail", why, "nextAttempt", (json_int_t)at);
    log_info("notify: retry sandbox=%s event=%s registration=%s attempt=%d in_ms=%lld: %s",
             sandbox, event_id, reg_id, attempts, (long long)(at - now), why);
    if (record_outcome(n, sandbox, item_id, event_id, reg_id, state, next, &e) != 0)
        goto store_failed;
    goto out;

final:
    if (record_outcome(n, sandbox, item_id, event_id, reg_id, state, NULL, &e) != 0)
        goto store_failed;
    goto out;
drop:
    if (store_delete(n->st, sandbox, NOTIFY_KIND_OUTBOX, item_id, &e) != 0 &&
        e.code != ING_ENOTFOUND)
        goto store_failed;
    goto out;
store_failed:
    log_warn("notify: store error on outbox item sandbox=%s id=%s: %s", sandbox, item_id, e.msg);
out:
    notify_http_result_free(&res);
    free(body);
    json_decref(sub);
    json_decref(ev);
    json_decref(state);
    json_decref(next);
}

/* ---- the threads ------------------------------------------------------------------------------- */

/* Under n->mu: claim the first due item (see the file comment). *next_due gets the earliest
 * future nextAttempt seen. Returns a new {"sandbox","id","doc"} or NULL. */
static json_t *pick_due(struct notify *n, int64_t now, int64_t *next_due)
{
    struct store_query q = {.limit = SCAN_LIMIT};
    json_t *items = NULL, *blocked = json_object(), *picked = NULL;
    struct ing_err e;
    ing_err_clear(&e);
    if (store_scan_all(n->st, NOTIFY_KIND_OUTBOX, &q, &items, &e) != 0) {
        log_warn("notify: cannot scan the outbox: %s", e.msg);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *sb = json_string_value(json_object_get(it, "sandbox"));
        const char *id = json_string_value(json_object_get(it, "id"));
        const json_t *doc = json_object_get(it, "doc");
        const char *reg = json_string_value(json_object_get(doc, "registrationId"));
        const char *batch = json_string_value(json_object_get(doc, "batchId"));
        if (!sb || !id)
            continue;
        char *order_key = xasprintf("%s/%s/%s", sb, reg ? reg : "", batch ? batch : "");
        bool later = json_object_get(blocked, order_key) != NULL;
        json_object_set_new(blocked, order_key, json_true());
        free(order_key);
        if (later)
            continue; /* an earlier event of this batch goes first */
        char *claim = xasprintf("%s/%s", sb, id);
        bool busy = json_object_get(n->inflight, claim) != NULL;
        int64_t due = (int64_t)json_integer_value(json_object_get(doc, "nextAttempt"));
        if (!busy && due <= now) {
            json_object_set_new(n->inflight, claim, json_true());
            picked = json_incref(it);
        } else if (!busy && due < *next_due) {
            *next_due = due;
        }
        free(claim);
        if (picked)
            break;
    }
out:
    json_decref(items);
    json_decref(blocked);
    return picked;
}

static void wait_ms(struct notify *n, int64_t ms)
{
    struct timespec ts;
    clock_deadline_mono_ts(&ts, ms < 1 ? 1 : ms);
    pthread_cond_timedwait(&n->cv, &n->mu, &ts);
}

static void *worker(void *arg)
{
    struct notify *n = arg;
    for (;;) {
        json_t *item = NULL;
        bool sweep = false;
        pthread_mutex_lock(&n->mu);
        while (!atomic_load(&n->stop)) {
            int64_t now = clock_now_ms();
            if (now >= n->next_sweep) {
                n->next_sweep = now + n->o.sweep_ms;
                sweep = true;
                break;
            }
            int64_t next_due = now + n->o.poll_ms;
            item = pick_due(n, now, &next_due);
            if (item)
                break;
            wait_ms(n, next_due - now);
        }
        pthread_mutex_unlock(&n->mu);
        if (atomic_load(&n->stop)) {
            json_decref(item);
            if (item) {
                /* Release the claim so the bookkeeping stays exact. */
                pthread_mutex_lock(&n->mu);
                char *claim = xasprintf("%s/%s",
                                        json_string_value(json_object_get(item, "sandbox")),
                                        json_string_value(json_object_get(item, "id")));
                json_object_del(n->inflight, claim);
                free(claim);
                pthread_mutex_unlock(&n->mu);
            }
            break;
        }
        if (sweep) {
            struct ing_err e;
            ing_err_clear(&e);
            int64_t gone = notify_sweep(n, clock_now_ms(), &e);
            if (gone < 0)
                log_warn("notify: journal sweep failed: %s", e.msg);
            else if (gone > 0)
                log_info("notify: journal sweep removed=%lld", (long long)gone);
            continue;
        }
        const char *sandbox = json_string_value(json_object_get(item, "sandbox"));
        const char *id = json_string_value(json_object_get(item, "id"));
        deliver(n, sandbox, id, json_object_get(item, "doc"));
        char *claim = xasprintf("%s/%s", sandbox, id);
        pthread_mutex_lock(&n->mu);
        json_object_del(n->inflight, claim);
        pthread_cond_broadcast(&n->cv); /* the next event of this batch may be due now */
        pthread_mutex_unlock(&n->mu);
        free(claim);
        json_decref(item);
    }
    return NULL;
}

int notify_start(struct notify *n, struct ing_err *err)
{
    if (n->threads)
        return ing_err_set(err, ING_ESTATE, "notify: already started");
    n->threads = xcalloc(n->o.threads, sizeof(*n->threads));
    for (unsigned i = 0; i < n->o.threads; i++) {
        int e = pthread_create(&n->threads[i], NULL, worker, n);
        if (e != 0) {
            atomic_store(&n->stop, true);
            return ing_err_errno(err, e, "notify: cannot start a delivery thread");
        }
        n->nthreads++;
    }
    log_info("notify: started threads=%u timeout_ms=%lld retry_first_ms=%lld retry_cap_ms=%lld "
             "retry_window_ms=%lld",
             n->nthreads, (long long)n->o.timeout_ms, (long long)n->o.retry_first_ms,
             (long long)n->o.retry_cap_ms, (long long)n->o.retry_window_ms);
    return 0;
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    atomic_store(&n->stop, true);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    for (unsigned i = 0; i < n->nthreads; i++)
        pthread_join(n->threads[i], NULL);
    free(n->threads);
    json_decref(n->inflight);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

/* ---- journal ----------------------------------------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static json_t *journal_entry(const char *id, const json_t *doc)
{
    return json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "position", id, "event_id",
                     id, "eventCode", json_object_get(doc, "eventCode"), "batchId",
                     json_object_get(doc, "batchId"), "datasetId",
                     json_object_get(doc, "datasetId"), "created",
                     json_object_get(doc, "created"), "event", json_object_get(doc, "payload"),
                     "deliveries", json_object_get(doc, "deliveries"));
}

int notify_journal(struct notify *n, const char *sandbox, const struct notify_journal_query *q,
                   json_t **out, struct ing_err *err)
{
    *out = NULL;
    int64_t limit = q && q->limit > 0 ? q->limit : JOURNAL_DEFAULT;
    if (limit > JOURNAL_MAX)
        limit = JOURNAL_MAX;
    struct store_filter f[3];
    size_t nf = 0;
    char since_ms[24];
    const char *since_id = NULL;
    json_t *anchor = NULL, *events = json_array();
    int rc = 0;
    if (q && q->since && *q->since) {
        if (all_digits(q->since)) {
            snprintf(since_ms, sizeof(since_ms), "%s", q->since);
        } else {
            rc = store_get(n->st, sandbox, NOTIFY_KIND_EVENT, q->since, &anchor, err);
            if (rc == ING_ENOTFOUND) {
                ing_err_field(err, "since");
                rc = ing_err_set(err, ING_EINVAL,
                                 "since: no event '%s' in the journal (it may be older than the "
                                 "retention)", q->since);
            }
            if (rc)
                goto out;
            since_id = q->since;
            snprintf(since_ms, sizeof(since_ms), "%lld",
                     (long long)json_integer_value(json_object_get(anchor, "created")));
        }
        f[nf++] = (struct store_filter){.property = "created", .op = STORE_GE, .value = since_ms};
    }
    if (q && q->event_code)
        f[nf++] = (struct store_filter){.property = "eventCode", .op = STORE_EQ,
                                        .value = q->event_code};
    if (q && q->batch_id)
        f[nf++] = (struct store_filter){.property = "batchId", .op = STORE_EQ,
                                        .value = q->batch_id};
    /* Oldest first; events created in the same millisecond keep their insertion order. */
    struct store_order order = {.property = "created"};
    struct store_query sq = {.filters = f, .nfilters = nf, .order = &order, .norder = 1,
                             .limit = limit + 1};
    bool passed = since_id == NULL;
    for (;;) {
        json_t *page = NULL;
        rc = store_list(n->st, sandbox, NOTIFY_KIND_EVENT, &sq, &page, err);
        if (rc)
            goto out;
        size_t got = json_object_size(page);
        const char *id;
        json_t *doc;
        json_object_foreach(page, id, doc) {
            if (!passed) {
                passed = strcmp(id, since_id) == 0;
                continue;
            }
            if ((int64_t)json_array_size(events) <= limit)
                json_array_append_new(events, journal_entry(id, doc));
        }
        json_decref(page);
        if ((int64_t)got < sq.limit || (int64_t)json_array_size(events) > limit)
            break;
        sq.start += (int64_t)got;
    }
    bool more = (int64_t)json_array_size(events) > limit;
    if (more)
        json_array_remove(events, json_array_size(events) - 1);
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    *out = json_pack("{s:o, s:I, s:O}", "events", events, "count",
                     (json_int_t)json_array_size(events), "next",
                     more && last ? json_object_get(last, "position") : json_null());
    events = NULL;
out:
    json_decref(anchor);
    json_decref(events);
    return rc;
}

int64_t notify_sweep(struct notify *n, int64_t now_ms, struct ing_err *err)
{
    char cutoff[24];
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)(now_ms - n->o.journal_retention_ms));
    struct store_filter f = {.property = "created", .op = STORE_LT, .value = cutoff};
    struct store_query q = {.filters = &f, .nfilters = 1, .limit = SWEEP_BATCH};
    int64_t removed = 0;
    for (;;) {
        json_t *old = NULL;
        int rc = store_scan_all(n->st, NOTIFY_KIND_EVENT, &q, &old, err);
        if (rc)
            return rc;
        size_t i;
        json_t *it;
        json_array_foreach(old, i, it) {
            rc = store_delete(n->st, json_string_value(json_object_get(it, "sandbox")),
                              NOTIFY_KIND_EVENT, json_string_value(json_object_get(it, "id")),
                              err);
            if (rc && rc != ING_ENOTFOUND) {
                json_decref(old);
                return rc;
            }
            removed++;
        }
        size_t got = json_array_size(old);
        json_decref(old);
        if (got < SWEEP_BATCH)
            break;
    }
    return removed;
}
