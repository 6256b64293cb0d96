/*
 * webhook.c - the webhook transport of notifications: libcurl, and nothing else in ingot uses it.
 *
 * Every request is locked down the same way: only http and https (CURLOPT_PROTOCOLS_STR, and
 * REDIR_PROTOCOLS_STR in case a redirect were ever followed), no redirects, no signals (the
 * requests run on several threads), one timeout for connect plus transfer, and the response body
 * kept up to NOTIFY_MAX_RESPONSE bytes: a receiver that sends more is cut off there (the status
 * line has arrived by then, which is all a delivery needs).
 */
#include "notify/notify.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "util/buf.h"
#include "util/mem.h"

#define URL_MAX 2048

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void notify_http_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

int notify_url_check(const char *url, struct ing_err *err)
{
    if (!url || !*url)
        return ing_err_set(err, ING_EINVAL, "webhook_url is required");
    size_t n = strlen(url);
    if (n > URL_MAX)
        return ing_err_set(err, ING_EINVAL, "webhook_url is longer than %d bytes", URL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= 0x20 || ch == 0x7f)
            return ing_err_set(err, ING_EINVAL,
                               "webhook_url must not contain spaces or control characters");
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return ing_err_set(err, ING_EINVAL, "webhook_url must be an http:// or https:// URL");
    /* libcurl reads "http:///x" as host "x"; a target is written with its host. */
    const char *authority = strstr(url, "://") + 3;
    if (*authority == '/' || *authority == '\0')
        return ing_err_set(err, ING_EINVAL, "webhook_url has no host");
    notify_http_global_init();
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = 0;
    if (!u) {
        rc = ing_err_set(err, ING_EINTERNAL, "out of memory parsing webhook_url");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        rc = ing_err_set(err, ING_EINVAL, "webhook_url is not a valid absolute URL with a host");
        goto out;
    }
out:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

struct sink {
    struct buf body;
    bool capped;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct sink *s = ctx;
    size_t n = size * nmemb;
    size_t room = NOTIFY_MAX_RESPONSE - s->body.len;
    if (n > room) {
        buf_append(&s->body, data, room);
        s->capped = true;
        return 0; /* stop reading: the rest of an oversized answer is not wanted */
    }
    buf_append(&s->body, data, n);
    return n;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const atomic_bool *stop = ctx;
    return stop && atomic_load(stop) ? 1 : 0;
}

/* Run one request on a prepared handle; fills res. */
static int perform(CURL *h, const char *url, int64_t timeout_ms, const atomic_bool *stop,
                   struct notify_http_result *res)
{
    struct sink s = {.body = {.limit = NOTIFY_MAX_RESPONSE + 1}};
    char errbuf[CURL_ERROR_SIZE] = "";
    memset(res, 0, sizeof(*res));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ingot-notifications/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)stop);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(res->error, sizeof(res->error), "aborted: the notifier is stopping");
        rc = ING_EINTERNAL;
    } else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && s.capped && status > 0)) {
        snprintf(res->error, sizeof(res->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = ING_EAGAIN;
    } else {
        res->status = status;
    }
    res->body_len = s.body.len;
    res->body = xstrndup((const char *)(s.body.data ? s.body.data : (const uint8_t *)""),
                         s.body.len);
    buf_free(&s.body);
    return rc;
}

int notify_http_post(const char *url, const char *body, size_t len, const char *const *headers,
                     size_t nheaders, int64_t timeout_ms, const atomic_bool *stop,
                     struct notify_http_result *res)
{
    notify_http_global_init();
    struct curl_slist *hl = NULL;
    CURL *h = curl_easy_init();
    int rc;
    if (!h) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "curl_easy_init failed");
        return ING_EINTERNAL;
    }
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < nheaders; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    rc = perform(h, url, timeout_ms, stop, res);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    return rc;
}

int notify_http_challenge(const char *url, const char *challenge, int64_t timeout_ms,
                          struct notify_http_result *res)
{
    notify_http_global_init();
    memset(res, 0, sizeof(*res));
    CURLU *u = curl_url();
    CURL *h = NULL;
    char *full = NULL, *query = xasprintf("challenge=%s", challenge);
    int rc = ING_EINVAL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_QUERY, query, CURLU_APPENDQUERY | CURLU_URLENCODE) !=
            CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        snprintf(res->error, sizeof(res->error), "the webhook URL cannot be parsed");
        goto out;
    }
    h = curl_easy_init();
    if (!h) {
        snprintf(res->error, sizeof(res->error), "curl_easy_init failed");
        rc = ING_EINTERNAL;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    rc = perform(h, full, timeout_ms, NULL, res);
out:
    curl_easy_cleanup(h);
    curl_free(full);
    curl_url_cleanup(u);
    free(query);
    return rc;
}

void notify_http_result_free(struct notify_http_result *res)
{
    if (!res)
        return;
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

bool notify_challenge_ok(const struct notify_http_result *res, const char *challenge)
{
    if (!res || res->status != 200 || !res->body || !challenge)
        return false;
    const char *b = res->body;
    size_t n = res->body_len;
    while (n > 0 && isspace((unsigned char)*b)) {
        b++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)b[n - 1]))
        n--;
    size_t cn = strlen(challenge);
    if (n == cn && memcmp(b, challenge, n) == 0)
        return true;
    json_t *doc = json_loadb(b, n, 0, NULL);
    const char *v = json_string_value(json_object_get(doc, "challenge"));
    bool ok = v && strcmp(v, challenge) == 0;
    json_decref(doc);
    return ok;
}
