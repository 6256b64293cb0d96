/* test_notify.c - unit tests of notifications (src/notify/): signatures (RFC 4231 vectors),
 * the retry schedule, the payload builder, event ids, webhook URL checks, the transactional
 * outbox over the real SQLite store, the journal and its sweep, and delivery to a loopback
 * receiver run by the test (headers, signature, retries with x-adobe-retry-count, 400 final,
 * the response cap and no redirects). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "notify/notify.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/mem.h"

/* ---- pure functions ------------------------------------------------------------------------- */

static void test_sign_rfc4231(void **state)
{
    (void)state;
    char sig[NOTIFY_SIG_LEN];
    const char *msg = "what do ya want for nothing?";
    notify_sign("Jefe", msg, strlen(msg), sig);
    assert_string_equal(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    /* A key longer than the SHA-256 block (131 bytes of 0xaa) is hashed first. */
    char key[132];
    memset(key, 0xaa, 131);
    key[131] = '\0';
    const char *msg6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    notify_sign(key, msg6, strlen(msg6), sig);
    assert_string_equal(sig, "YOQxWR7gtn8Niiaqy/W3f44LxiE3KMUUBUYEDw7jf1Q=");
    notify_sign("", "", 0, sig);
    assert_string_equal(sig, "thNnmggU2ex3L5XXeMNfxf8Wl8STcVZTxscSFEKSxa0=");
}

static void test_backoff_schedule(void **state)
{
    (void)state;
    struct notify_opts o = {.retry_first_ms = 60000, .retry_cap_ms = 900000};
    const int64_t want[] = {60000, 120000, 240000, 480000, 900000, 900000, 900000};
    for (int i = 0; i < 7; i++)
        assert_int_equal(notify_backoff_ms(&o, i + 1), want[i]);
    /* Far out the wait stays at the cap (no overflow). */
    assert_int_equal(notify_backoff_ms(&o, 100000), 900000);
    /* Defaults are AEP's: 1 minute, 15-minute cap. */
    assert_int_equal(notify_backoff_ms(NULL, 1), 60000);
    assert_int_equal(notify_backoff_ms(NULL, 30), 900000);
    struct notify_opts fast = {.retry_first_ms = 50, .retry_cap_ms = 120};
    assert_int_equal(notify_backoff_ms(&fast, 1), 50);
    assert_int_equal(notify_backoff_ms(&fast, 2), 100);
    assert_int_equal(notify_backoff_ms(&fast, 3), 120);
}

static void test_url_check(void **state)
{
    (void)state;
    const char *good[] = {"http://127.0.0.1:8080/hook", "https://acme.example.com/webhook",
                          "HTTP://example.com", "http://[::1]:9/x?a=b"};
    for (size_t i = 0; i < ING_ARRAY_LEN(good); i++)
        assert_int_equal(notify_url_check(good[i], NULL), 0);
    const char *bad[] = {"",
                         "ftp://example.com/x",
                         "file:///etc/passwd",
                         "gopher://example.com",
                         "javascript:alert(1)",
                         "http://",
                         "http:///path",
                         "example.com/hook",
                         "http://exa mple.com/",
                         "http://example.com/\r\nX: y",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct ing_err err;
        ing_err_clear(&err);
        assert_int_equal(notify_url_check(bad[i], &err), ING_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(notify_url_check(NULL, NULL), ING_EINVAL);
    char *long_url = xmalloc(3000);
    memcpy(long_url, "http://a.example/", 17);
    memset(long_url + 17, 'x', 2982);
    long_url[2999] = '\0';
    assert_int_equal(notify_url_check(long_url, NULL), ING_EINVAL);
    free(long_url);
}

static void test_event_id(void **state)
{
    (void)state;
    char a[37], b[37], c[37], d[37];
    notify_event_id("prod", "01BATCH", "ing_load_success", a);
    notify_event_id("prod", "01BATCH", "ing_load_success", b);
    notify_event_id("prod", "01BATCH", "ig_load_success", c);
    notify_event_id("dev", "01BATCH", "ing_load_success", d);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(strlen(a), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '8');                 /* version */
    assert_non_null(strchr("89ab", a[19]));       /* variant */
}

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

static const char *BATCH_OK =
    "{\"id\":\"01BATCHAAAAAAAAAAAAAAAAAAA\",\"status\":\"success\",\"externalId\":\"ext-1\","
    "\"imsOrg\":\"ORG@AdobeOrg\",\"created\":1000,\"started\":1500,\"completed\":2500,"
    "\"relatedObjects\":[{\"type\":\"dataSet\",\"id\":\"5e55b556c2ae4418a8446037\"}],"
    "\"metrics\":{\"inputRecordCount\":1000,\"outputRecordCount\":998,\"failedRecordCount\":2},"
    "\"errors\":[{\"code\":\"INGEST-1212-400\",\"description\":\"Encountered 2 errors\","
    "\"rows\":[]}]}";

static void test_payload_success(void **state)
{
    (void)state;
    json_t *batch = js(BATCH_OK);
    json_t *p = notify_payload("prod", "01BATCHAAAAAAAAAAAAAAAAAAA", batch, "ing_load_success",
                               NULL, "93a5b11a-b0e6-4b29-ad82-81b1499cb4f2", 3000);
    assert_string_equal(json_string_value(json_object_get(p, "event_id")),
                        "93a5b11a-b0e6-4b29-ad82-81b1499cb4f2");
    json_t *ev = json_object_get(p, "event");
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:ingestionId")),
                        "01BATCHAAAAAAAAAAAAAAAAAAA");
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:customerIngestionId")), "ext-1");
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:imsOrg")), "ORG@AdobeOrg");
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:completed")), 2500);
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:datasetId")),
                        "5e55b556c2ae4418a8446037");
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:eventCode")), "ing_load_success");
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:sandboxName")), "prod");
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:successfulRecords")), 998);
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:failedRecords")), 2);
    /* The documented types: sentTime a string, the other times numbers. */
    assert_true(json_is_string(json_object_get(ev, "sentTime")));
    assert_string_equal(json_string_value(json_object_get(ev, "sentTime")), "3000");
    assert_int_equal(json_integer_value(json_object_get(ev, "processStartTime")), 1500);
    assert_int_equal(json_integer_value(json_object_get(ev, "transformedTime")), 2500);
    json_t *io = json_object_get(json_object_get(ev, "header"), "_adobeio");
    assert_string_equal(json_string_value(json_object_get(io, "imsOrgId")), "ORG@AdobeOrg");
    assert_string_equal(json_string_value(json_object_get(io, "providerMetadata")), NOTIFY_PROVIDER);
    assert_string_equal(json_string_value(json_object_get(io, "eventCode")), "platform_event");
    /* A landed batch with bad rows carries its errors too. */
    json_t *errs = json_object_get(ev, "xdm:errors");
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "xdm:code")),
                        "INGEST-1212-400");
    json_decref(p);
    json_decref(batch);
}

static void test_payload_failure_and_stage(void **state)
{
    (void)state;
    json_t *batch = js("{\"status\":\"failed\",\"created\":10,\"completed\":20,"
                       "\"relatedObjects\":[{\"type\":\"dataSet\",\"id\":\"ds1\"}],"
                       "\"metrics\":{\"inputRecordCount\":5,\"failedRecordCount\":1},"
                       "\"errors\":[{\"code\":\"INGEST-1555-400\",\"description\":\"required\","
                       "\"rows\":[\"3\"]}]}");
    json_t *p = notify_payload("dev", "B1", batch, "ing_load_failure", NULL, "e1", 30);
    json_t *ev = json_object_get(p, "event");
    /* No externalId: the batch id stands in; no org: the field is left out. */
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:customerIngestionId")), "B1");
    assert_null(json_object_get(ev, "xdm:imsOrg"));
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:successfulRecords")), 0);
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:failedRecords")), 1);
    assert_string_equal(json_string_value(json_object_get(ev, "xdm:status")), "failure");
    /* No "started": processing is dated from creation. */
    assert_int_equal(json_integer_value(json_object_get(ev, "processStartTime")), 10);
    json_t *e0 = json_array_get(json_object_get(ev, "xdm:errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e0, "xdm:code")), "INGEST-1555-400");
    assert_string_equal(json_string_value(json_object_get(e0, "xdm:description")), "required");
    assert_string_equal(json_string_value(json_array_get(json_object_get(e0, "xdm:rows"), 0)), "3");
    json_decref(p);

    /* A stage event takes its times and counts from the stage record. */
    json_t *ok = js(BATCH_OK);
    json_t *stage = js("{\"status\":\"success\",\"eventCode\":\"ig_load_success\","
                       "\"completed\":9000,\"durationMs\":400,\"recordCount\":998}");
    p = notify_payload("prod", "B2", ok, "ig_load_success", stage, "e2", 9100);
    ev = json_object_get(p, "event");
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:completed")), 9000);
    assert_int_equal(json_integer_value(json_object_get(ev, "processStartTime")), 8600);
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:successfulRecords")), 998);
    assert_int_equal(json_integer_value(json_object_get(ev, "xdm:failedRecords")), 0);
    assert_null(json_object_get(ev, "xdm:errors"));
    json_decref(p);
    json_decref(stage);
    json_decref(ok);
    json_decref(batch);
}

static void test_challenge_answer(void **state)
{
    (void)state;
    struct notify_http_result r = {.status = 200, .body = xstrdup(" abc123\n"), .body_len = 8};
    assert_true(notify_challenge_ok(&r, "abc123"));
    assert_false(notify_challenge_ok(&r, "abc12"));
    notify_http_result_free(&r);
    r = (struct notify_http_result){.status = 200, .body = xstrdup("{\"challenge\":\"abc123\"}")};
    r.body_len = strlen(r.body);
    assert_true(notify_challenge_ok(&r, "abc123"));
    r.status = 201;
    assert_false(notify_challenge_ok(&r, "abc123"));
    notify_http_result_free(&r);
    r = (struct notify_http_result){.status = 200, .body = xstrdup("{\"challenge\":\"other\"}")};
    r.body_len = strlen(r.body);
    assert_false(notify_challenge_ok(&r, "abc123"));
    notify_http_result_free(&r);
    r = (struct notify_http_result){.status = 200, .body = xstrdup("")};
    assert_false(notify_challenge_ok(&r, "abc123"));
    notify_http_result_free(&r);
}

/* ---- a loopback receiver ---------------------------------------------------------------------- */

#define RX_MAX 16

struct receiver {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    int statuses[RX_MAX]; /* answer of request i; 0 = close without answering */
    int nstatuses;
    int later;            /* answer after the scripted ones; 0 = 200 */
    size_t big_body;      /* bytes of body in each answer */
    const char *extra;    /* extra response header lines */
    char *requests[RX_MAX];
    int nrequests;
    volatile int stop;
};

static void *rx_main(void *arg)
{
    struct receiver *rx = arg;
    while (!rx->stop) {
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[65536];
        size_t have = 0;
        ssize_t r;
        size_t need = 0;
        while ((r = read(c, buf + have, sizeof(buf) - 1 - have)) > 0) {
            have += (size_t)r;
            buf[have] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            char *cl = strcasestr(buf, "content-length:");
            need = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
            if (have >= need)
                break;
        }
        buf[have] = '\0';
        pthread_mutex_lock(&rx->mu);
        int i = rx->nrequests;
        if (i < RX_MAX)
            rx->requests[rx->nrequests++] = xstrdup(buf);
        int status = i < rx->nstatuses ? rx->statuses[i] : rx->later ? rx->later : 200;
        pthread_mutex_unlock(&rx->mu);
        if (status > 0) {
            char head[512];
            int n = snprintf(head, sizeof(head),
                             "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                             status, rx->big_body, rx->extra ? rx->extra : "");
            ssize_t w = write(c, head, (size_t)n);
            char chunk[4096];
            memset(chunk, 'z', sizeof(chunk));
            for (size_t sent = 0; w >= 0 && sent < rx->big_body; sent += (size_t)w) {
                size_t k = rx->big_body - sent < sizeof(chunk) ? rx->big_body - sent : sizeof(chunk);
                w = write(c, chunk, k);
                if (w <= 0)
                    break;
            }
        }
        close(c);
    }
    return NULL;
}

static void rx_start(struct receiver *rx)
{
    pthread_mutex_init(&rx->mu, NULL);
    rx->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rx->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(rx->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(rx->fd, (struct sockaddr *)&a, &len);
    rx->port = ntohs(a.sin_port);
    assert_int_equal(listen(rx->fd, 16), 0);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    setsockopt(rx->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept wakes to see stop */
    pthread_create(&rx->thread, NULL, rx_main, rx);
}

static void rx_stop(struct receiver *rx)
{
    rx->stop = 1;
    pthread_join(rx->thread, NULL);
    close(rx->fd);
    for (int i = 0; i < rx->nrequests; i++)
        free(rx->requests[i]);
    pthread_mutex_destroy(&rx->mu);
}

static int rx_count(struct receiver *rx)
{
    pthread_mutex_lock(&rx->mu);
    int n = rx->nrequests;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

/* A header's value in a raw request (copied into out), or NULL. */
static const char *header_of(const char *req, const char *name, char *out, size_t size)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    const char *h = strcasestr(req, pat);
    if (!h)
        return NULL;
    h += strlen(pat);
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, "\r\n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), h);
    return out;
}

static void test_http_post_cap_and_no_redirect(void **state)
{
    (void)state;
    struct receiver rx = {.statuses = {200, 302}, .nstatuses = 2, .big_body = 200000};
    rx_start(&rx);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rx.port);
    const char *hdrs[] = {"x-adobe-event-id: abc"};
    struct notify_http_result res;
    int rc = notify_http_post(url, "{\"a\":1}", 7, hdrs, 1, 5000, NULL, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(res.status, 200);
    /* 200000 bytes were sent; the kept part stops at the cap. */
    assert_int_equal(res.body_len, NOTIFY_MAX_RESPONSE);
    notify_http_result_free(&res);
    char v[128];
    assert_non_null(header_of(rx.requests[0], "x-adobe-event-id", v, sizeof(v)));
    assert_string_equal(v, "abc");
    assert_non_null(header_of(rx.requests[0], "content-type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_non_null(strstr(rx.requests[0], "\r\n\r\n{\"a\":1}"));

    /* A redirect is an answer like any other: not followed. */
    rx.extra = "Location: http://127.0.0.1:1/elsewhere\r\n";
    rx.big_body = 0;
    rc = notify_http_post(url, "{}", 2, NULL, 0, 5000, NULL, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(res.status, 302);
    notify_http_result_free(&res);
    assert_int_equal(rx_count(&rx), 2);
    rx_stop(&rx);

    /* Nobody listening: a transport failure, retried later. */
    rc = notify_http_post(url, "{}", 2, NULL, 0, 2000, NULL, &res);
    assert_int_equal(rc, ING_EAGAIN);
    assert_true(res.error[0] != '\0');
    notify_http_result_free(&res);
}

/* ---- store-backed tests ------------------------------------------------------------------------ */

struct fixture {
    char dir[64];
    struct store *st;
    struct notify *n;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-notify-XXXXXX");
    if (!mkdtemp(fx->dir) || store_open(&fx->st, fx->dir, NULL) != 0)
        return -1;
    struct notify_opts o = {.timeout_ms = 3000, .retry_first_ms = 40, .retry_cap_ms = 100,
                            .retry_window_ms = 60000, .poll_ms = 20, .threads = 2};
    if (notify_new(&fx->n, fx->st, &o, NULL) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    notify_free(fx->n);
    store_close(fx->st);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

/* A subscription document put straight into the store (the API path verifies a real endpoint). */
static void put_sub(struct fixture *fx, const char *sandbox, const char *id, const char *status,
                    const char *url, const char *codes_json)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "id", id, "status", status,
                            "webhook_url", url ? url : "http://127.0.0.1:9/", "eventCodes",
                            js(codes_json), "secret", "s3cret-key", "enabled", 1);
    assert_int_equal(store_put(fx->st, sandbox, NOTIFY_KIND_REG, id, doc, NULL), 0);
    json_decref(doc);
}

static int emit_in_tx(struct fixture *fx, const char *sandbox, const char *batch_id,
                      const char *code, bool commit)
{
    json_t *batch = js(BATCH_OK);
    assert_int_equal(store_tx_begin(fx->st, NULL), 0);
    int rc = notify_emit(fx->st, sandbox, batch_id, batch, code, NULL, NULL);
    if (commit)
        assert_int_equal(store_tx_commit(fx->st, NULL), 0);
    else
        store_tx_rollback(fx->st);
    json_decref(batch);
    return rc;
}

static int64_t count_kind(struct fixture *fx, const char *sandbox, const char *kind)
{
    int64_t n = -1;
    struct store_query q = {0};
    assert_int_equal(store_count(fx->st, sandbox, kind, &q, &n, NULL), 0);
    return n;
}

static void test_emit_outbox(void **state)
{
    struct fixture *fx = *state;
    put_sub(fx, "prod", "sub1", "active", NULL, "[\"ing_load_success\",\"ing_load_failure\"]");
    put_sub(fx, "prod", "sub2", "active", NULL, "[\"ps_load_success\"]");
    put_sub(fx, "prod", "sub3", "verification_failed", NULL, "[\"ing_load_success\"]");
    put_sub(fx, "dev", "sub4", "active", NULL, "[\"ing_load_success\"]");

    /* Rolled back with the batch change: nothing at all. */
    assert_int_equal(emit_in_tx(fx, "prod", "B1", "ing_load_success", false), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_OUTBOX), 0);

    /* Committed: one journal event, one outbox item for the one active subscription that
     * wants the code in this sandbox. */
    assert_int_equal(emit_in_tx(fx, "prod", "B1", "ing_load_success", true), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 1);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_OUTBOX), 1);
    assert_int_equal(count_kind(fx, "dev", NOTIFY_KIND_OUTBOX), 0);
    char eid[37];
    notify_event_id("prod", "B1", "ing_load_success", eid);
    json_t *ev = NULL;
    assert_int_equal(store_get(fx->st, "prod", NOTIFY_KIND_EVENT, eid, &ev, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "payload"),
                                                          "event_id")), eid);
    json_t *d = json_object_get(ev, "deliveries");
    assert_int_equal(json_object_size(d), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "sub1"), "status")),
                        "pending");
    json_decref(ev);

    /* The same event again (a re-run of the stage, a replayed record): not duplicated. */
    assert_int_equal(emit_in_tx(fx, "prod", "B1", "ing_load_success", true), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 1);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_OUTBOX), 1);

    /* Unknown codes are not events; the code may come from the stage record. */
    assert_int_equal(emit_in_tx(fx, "prod", "B1", "flow_run_whatever", true), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 1);
    json_t *batch = js(BATCH_OK), *stage = js("{\"eventCode\":\"ps_load_success\","
                                              "\"completed\":5,\"recordCount\":3}");
    assert_int_equal(store_tx_begin(fx->st, NULL), 0);
    assert_int_equal(notify_emit(fx->st, "prod", "B1", batch, NULL, stage, NULL), 0);
    assert_int_equal(store_tx_commit(fx->st, NULL), 0);
    json_decref(batch);
    json_decref(stage);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 2);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_OUTBOX), 2); /* sub2 wants ps */
}

static void test_journal_paging_and_sweep(void **state)
{
    struct fixture *fx = *state;
    const char *batches[] = {"J1", "J2", "J3", "J4", "J5"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(emit_in_tx(fx, "prod", batches[i], "ing_load_success", true), 0);
    assert_int_equal(emit_in_tx(fx, "prod", "J3", "ing_load_failure", true), 0);

    struct notify_journal_query q = {.limit = 2};
    json_t *page = NULL;
    char *seen[6];
    int nseen = 0;
    const char *since = NULL;
    for (int pages = 0; pages < 10; pages++) {
        q.since = since;
        assert_int_equal(notify_journal(fx->n, "prod", &q, &page, NULL), 0);
        json_t *evs = json_object_get(page, "events");
        assert_true(json_array_size(evs) <= 2);
        size_t i;
        json_t *e;
        json_array_foreach(evs, i, e) {
            assert_true(nseen < 6);
            seen[nseen++] = xstrdup(json_string_value(json_object_get(e, "batchId")));
            assert_non_null(json_object_get(json_object_get(e, "event"), "event"));
        }
        const char *next = json_string_value(json_object_get(page, "next"));
        free((void *)since);
        since = next ? xstrdup(next) : NULL;
        json_decref(page);
        if (!since)
            break;
    }
    /* Every event once, in emission order. */
    assert_int_equal(nseen, 6);
    const char *want[] = {"J1", "J2", "J3", "J4", "J5", "J3"};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(seen[i], want[i]);
        free(seen[i]);
    }
    /* Filters. */
    q = (struct notify_journal_query){.event_code = "ing_load_failure"};
    assert_int_equal(notify_journal(fx->n, "prod", &q, &page, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(page, "count")), 1);
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    q = (struct notify_journal_query){.batch_id = "J3"};
    assert_int_equal(notify_journal(fx->n, "prod", &q, &page, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(page, "count")), 2);
    json_decref(page);
    q = (struct notify_journal_query){.since = "nope-not-an-event"};
    assert_int_equal(notify_journal(fx->n, "prod", &q, &page, NULL), ING_EINVAL);
    /* Other sandboxes see nothing. */
    q = (struct notify_journal_query){0};
    assert_int_equal(notify_journal(fx->n, "dev", &q, &page, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(page, "count")), 0);
    json_decref(page);

    /* The sweep keeps what is within the retention (7 days by default) and removes older. */
    assert_int_equal(notify_sweep(fx->n, clock_now_ms(), NULL), 0);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 6);
    assert_int_equal(notify_sweep(fx->n, clock_now_ms() + 8LL * 86400000, NULL), 6);
    assert_int_equal(count_kind(fx, "prod", NOTIFY_KIND_EVENT), 0);
}

/* Wait (up to 10 s) until the outbox of `sandbox` is empty. */
static bool outbox_drains(struct fixture *fx, const char *sandbox)
{
    for (int i = 0; i < 1000; i++) {
        if (count_kind(fx, sandbox, NOTIFY_KIND_OUTBOX) == 0)
            return true;
        usleep(10000);
    }
    return false;
}

static json_t *delivery_of(struct fixture *fx, const char *batch, const char *code,
                           const char *sub)
{
    char eid[37];
    notify_event_id("prod", batch, code, eid);
    json_t *ev = NULL;
    assert_int_equal(store_get(fx->st, "prod", NOTIFY_KIND_EVENT, eid, &ev, NULL), 0);
    json_t *d = json_incref(json_object_get(json_object_get(ev, "deliveries"), sub));
    json_decref(ev);
    return d;
}

static void test_delivery_retries_and_signature(void **state)
{
    struct fixture *fx = *state;
    /* 500 twice, then 200; then a 400 for the second event (final, not retried). */
    struct receiver rx = {.statuses = {500, 500, 200, 400}, .nstatuses = 4};
    rx_start(&rx);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rx.port);
    put_sub(fx, "prod", "subA", "active", url, "[\"ing_load_success\",\"ing_load_failure\"]");
    assert_int_equal(emit_in_tx(fx, "prod", "D1", "ing_load_success", true), 0);
    assert_int_equal(emit_in_tx(fx, "prod", "D1", "ing_load_failure", true), 0);
    assert_int_equal(notify_start(fx->n, NULL), 0);
    assert_true(outbox_drains(fx, "prod"));
    assert_int_equal(rx_count(&rx), 4);

    /* Requests 0..2 are the first event (one batch: in order, the second waits); 3 the second. */
    char eid[37], v[256];
    notify_event_id("prod", "D1", "ing_load_success", eid);
    for (int i = 0; i < 3; i++) {
        assert_non_null(header_of(rx.requests[i], "x-adobe-event-id", v, sizeof(v)));
        assert_string_equal(v, eid);
        assert_non_null(header_of(rx.requests[i], "x-adobe-event-code", v, sizeof(v)));
        assert_string_equal(v, "ing_load_success");
        const char *retry = header_of(rx.requests[i], "x-adobe-retry-count", v, sizeof(v));
        if (i == 0) {
            assert_null(retry); /* absent on the first attempt */
        } else {
            assert_non_null(retry);
            assert_int_equal(atoi(v), i);
        }
        /* The signature is the HMAC of exactly the body received. */
        const char *body = strstr(rx.requests[i], "\r\n\r\n") + 4;
        char sig[NOTIFY_SIG_LEN];
        notify_sign("s3cret-key", body, strlen(body), sig);
        assert_non_null(header_of(rx.requests[i], "x-adobe-signature", v, sizeof(v)));
        assert_string_equal(v, sig);
        json_t *payload = js(body);
        assert_string_equal(json_string_value(json_object_get(payload, "event_id")), eid);
        json_decref(payload);
    }
    notify_event_id("prod", "D1", "ing_load_failure", eid);
    assert_non_null(header_of(rx.requests[3], "x-adobe-event-id", v, sizeof(v)));
    assert_string_equal(v, eid);

    json_t *d = delivery_of(fx, "D1", "ing_load_success", "subA");
    assert_string_equal(json_string_value(json_object_get(d, "status")), "delivered");
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
    json_decref(d);
    d = delivery_of(fx, "D1", "ing_load_failure", "subA");
    assert_string_equal(json_string_value(json_object_get(d, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(d, "lastStatus")), 400);
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 1);
    json_decref(d);
    rx_stop(&rx);
}

static void test_delivery_gives_up_and_disables(void **state)
{
    struct fixture *fx = *state;
    notify_free(fx->n);
    /* A receiver that always fails, and a retry window of 300 ms. */
    struct notify_opts o = {.timeout_ms = 2000, .retry_first_ms = 30, .retry_cap_ms = 60,
                            .retry_window_ms = 300, .poll_ms = 10, .threads = 1};
    assert_int_equal(notify_new(&fx->n, fx->st, &o, NULL), 0);
    struct receiver rx = {.later = 503};
    rx_start(&rx);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rx.port);
    put_sub(fx, "prod", "subB", "active", url, "[\"ing_load_success\"]");
    assert_int_equal(emit_in_tx(fx, "prod", "G1", "ing_load_success", true), 0);
    assert_int_equal(emit_in_tx(fx, "prod", "G2", "ing_load_success", true), 0);
    assert_int_equal(notify_start(fx->n, NULL), 0);
    assert_true(outbox_drains(fx, "prod"));
    int tries = rx_count(&rx);
    assert_true(tries >= 3);
    /* Whichever event ran out of time first failed and disabled the subscription; the other
     * failed too or was cancelled with it. */
    int failed = 0;
    const char *gb[] = {"G1", "G2"};
    for (int i = 0; i < 2; i++) {
        json_t *d = delivery_of(fx, gb[i], "ing_load_success", "subB");
        const char *st = json_string_value(json_object_get(d, "status"));
        assert_non_null(st);
        assert_true(!strcmp(st, "failed") || !strcmp(st, "cancelled"));
        failed += !strcmp(st, "failed");
        json_decref(d);
    }
    assert_true(failed >= 1);
    json_t *sub = NULL;
    assert_int_equal(store_get(fx->st, "prod", NOTIFY_KIND_REG, "subB", &sub, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(sub, "status")), "unstable");
    assert_true(json_is_false(json_object_get(sub, "enabled")));
    json_decref(sub);
    /* Disabled: nothing more goes out to it. */
    int after = rx_count(&rx);
    usleep(200000);
    assert_int_equal(rx_count(&rx), after);
    rx_stop(&rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_rfc4231),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_event_id),
        cmocka_unit_test(test_payload_success),
        cmocka_unit_test(test_payload_failure_and_stage),
        cmocka_unit_test(test_challenge_answer),
        cmocka_unit_test(test_http_post_cap_and_no_redirect),
        cmocka_unit_test_setup_teardown(test_emit_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_paging_and_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_retries_and_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_gives_up_and_disables, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
