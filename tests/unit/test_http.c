/*
 * test_http.c - end-to-end tests of the HTTP layer (src/http): a real server on 127.0.0.1:0 with a
 * small route table of test handlers, driven over the socket with libcurl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/http.h"
#include "util/fs.h"
#include "util/mem.h"

#define UPLOAD_SIZE (50ll * 1024 * 1024)
#define JSON_LIMIT 1024

/* What the upload handler saw, for the test thread to check. */
struct app {
    pthread_mutex_t mu;
    char body_path[512];
    int64_t body_size;
    int64_t file_size;
    uint32_t checksum;
    bool renamed;
    char keep_dir[256];
    char data_file[256];
    struct sink_rec *sink; /* the HTTP_BODY_SINK route's record */
};

/* What a body sink was given: the bytes' checksum and the sizes of the pieces. */
struct sink_rec {
    pthread_mutex_t mu;
    int64_t bytes;
    uint32_t checksum;
    int64_t writes;
    size_t smallest_but_last; /* smallest piece before the last one seen so far */
    size_t last;
    int releases;
    bool took_body;           /* the second call had req->body_sink */
};

struct fixture {
    char dir[64];
    char spool[128];
    struct app app;
    struct http_server *srv;
    int port;
};

static struct fixture *g_fx;

/* ---------------------------------------------------------------------------------------------- */
/* Test handlers */

static void h_echo(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    json_error_t je;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &je);
    if (!doc) {
        http_resp_error(resp, 400, "TEST-0001-400", "Bad Request", je.text);
        return;
    }
    http_resp_json_new(resp, 201, json_pack("{s:o, s:I, s:s}", "echo", doc, "len",
                                            (json_int_t)req->body_len, "sandbox", req->sandbox));
}

static void h_thing(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    json_t *params = json_array();
    for (size_t i = 0; i < req->nparams; i++)
        json_array_append_new(params, json_string(req->params[i]));
    const char *ua = http_req_header(req, "X-Test-Header");
    http_resp_header(resp, "X-Request-Id", "abc123");
    http_resp_json_new(resp, 200, json_pack("{s:o, s:s, s:s, s:s?}", "params", params, "path",
                                            req->path, "sandbox", req->sandbox, "header", ua));
}

static int collect_query(void *ctx, const char *name, const char *value)
{
    json_array_append_new(ctx, json_pack("[s, s?]", name, value));
    return 0;
}

static void h_query(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    json_t *all = json_array();
    http_req_query_each(req, collect_query, all);
    http_resp_json_new(resp, 200, json_pack("{s:o, s:s?, s:s?}", "all", all, "a",
                                            http_req_query(req, "a"), "missing",
                                            http_req_query(req, "zzz")));
}

static void h_upload(void *app_ptr, struct http_req *req, struct http_resp *resp)
{
    struct app *app = app_ptr;
    uint32_t sum = 0;
    FILE *f = req->body_path ? fopen(req->body_path, "rb") : NULL;
    if (f) {
        unsigned char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            for (size_t i = 0; i < n; i++)
                sum = sum * 31u + chunk[i];
        fclose(f);
    }
    pthread_mutex_lock(&app->mu);
    snprintf(app->body_path, sizeof(app->body_path), "%s", req->body_path ? req->body_path : "");
    app->body_size = req->body_size;
    app->file_size = req->body_path ? fs_file_size(req->body_path) : -1;
    app->checksum = sum;
    app->renamed = false;
    const char *keep = http_req_query(req, "keep");
    if (keep && req->body_path) {
        char *to = xasprintf("%s/%s", app->keep_dir, keep);
        app->renamed = rename(req->body_path, to) == 0;
        free(to);
    }
    pthread_mutex_unlock(&app->mu);
    http_resp_json_new(resp, 200, json_pack("{s:s}", "path", req->params[0]));
}

static void rec_write(void *ctx, const char *data, size_t n)
{
    struct sink_rec *rec = ctx;
    pthread_mutex_lock(&rec->mu);
    if (rec->writes > 0 && (rec->smallest_but_last == 0 || rec->last < rec->smallest_but_last))
        rec->smallest_but_last = rec->last;
    rec->writes++;
    rec->last = n;
    rec->bytes += (int64_t)n;
    for (size_t i = 0; i < n; i++)
        rec->checksum = rec->checksum * 31u + (unsigned char)data[i];
    pthread_mutex_unlock(&rec->mu);
}

static void rec_release(void *ctx)
{
    struct sink_rec *rec = ctx;
    pthread_mutex_lock(&rec->mu);
    rec->releases++;
    pthread_mutex_unlock(&rec->mu);
}

/* HTTP_BODY_SINK: takes the body into app->sink (the first call), answers on the second. */
static void h_sink(void *app_ptr, struct http_req *req, struct http_resp *resp)
{
    struct app *app = app_ptr;
    if (req->sink) {
        *req->sink = (struct http_body_sink){.ctx = app->sink, .write = rec_write,
                                             .release = rec_release};
        return;
    }
    pthread_mutex_lock(&app->sink->mu);
    app->sink->took_body = req->body_sink == app->sink && !req->body_path;
    pthread_mutex_unlock(&app->sink->mu);
    http_resp_json_new(resp, 200, json_pack("{s:I}", "size", (json_int_t)req->body_size));
}

static void h_file(void *app_ptr, struct http_req *req, struct http_resp *resp)
{
    struct app *app = app_ptr;
    const char *off = http_req_query(req, "off");
    const char *len = http_req_query(req, "len");
    resp->file_path = xstrdup(app->data_file);
    resp->file_offset = off ? strtoll(off, NULL, 10) : 0;
    resp->file_length = len ? strtoll(len, NULL, 10) : -1;
    resp->content_type = "application/octet-stream";
}

static void h_missing_file(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    (void)req;
    resp->file_path = xstrdup("/nonexistent/ingot/file");
    resp->file_length = -1;
}

static const struct http_route k_routes[] = {
    {HTTP_POST, "/echo", h_echo, HTTP_BODY_JSON},
    {HTTP_GET, "/things/{id}", h_thing, HTTP_BODY_NONE},
    {HTTP_DELETE, "/things/{id}", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/schemas/{id}/sub/{*rest}", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/schemas/{id}", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/query", h_query, HTTP_BODY_NONE},
    {HTTP_PUT, "/upload/{*path}", h_upload, HTTP_BODY_FILE},
    {HTTP_PATCH, "/sink", h_sink, HTTP_BODY_SINK},
    {HTTP_GET, "/file", h_file, HTTP_BODY_NONE},
    {HTTP_GET, "/missing-file", h_missing_file, HTTP_BODY_NONE},
    {HTTP_GET, "/order/{a}", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/order/fixed", h_query, HTTP_BODY_NONE},
    /* patterns sharing leads and literal tails, for the router's lead filter */
    {HTTP_GET, "/deep/one/two/{id}", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/deep/{id}/two/x", h_thing, HTTP_BODY_NONE},
    {HTTP_PUT, "/deep/{id}/two/y", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/deep", h_thing, HTTP_BODY_NONE},
    {HTTP_GET, "/", h_thing, HTTP_BODY_NONE},
};

/* ---------------------------------------------------------------------------------------------- */
/* Client side */

struct result {
    long status;
    struct buf body;
    struct buf headers;
    curl_off_t content_length;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct buf *b = ctx;
    if (buf_append(b, p, size * n) != 0)
        return 0;
    return size * n;
}

/* The value of a response header (case-insensitive), copied into out; false when absent. */
static bool header_value(struct result *r, const char *name, char *out, size_t cap)
{
    const char *h = buf_cstr(&r->headers);
    size_t nlen = strlen(name);
    for (const char *line = h; *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && !strncasecmp(line, name, nlen) && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(llen - (size_t)(v - line)), v);
            return true;
        }
        line += llen + (eol ? 2 : 0);
    }
    return false;
}

static void result_free(struct result *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
}

struct upload_src {
    int64_t left;
    int64_t pos;
    uint32_t sum;
};

static size_t on_read(char *p, size_t size, size_t n, void *ctx)
{
    struct upload_src *src = ctx;
    size_t want = size * n;
    if ((int64_t)want > src->left)
        want = (size_t)src->left;
    for (size_t i = 0; i < want; i++) {
        unsigned char c = (unsigned char)((src->pos * 7 + (src->pos >> 12)) & 0xff);
        p[i] = (char)c;
        src->sum = src->sum * 31u + c;
        src->pos++;
    }
    src->left -= (int64_t)want;
    return want;
}

/* One request. body NULL = none; hdr may be NULL. With upload, the body is streamed from it. */
static void request(struct result *r, const char *method, const char *path, const char *body,
                    const char *hdr, struct upload_src *upload)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char *url = xasprintf("http://127.0.0.1:%d%s", g_fx->port, path);
    struct curl_slist *hl = NULL;
    if (hdr)
        hl = curl_slist_append(hl, hdr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload->left);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
            hl = curl_slist_append(hl, "Content-Type: application/json");
        }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
}

static json_t *body_json(struct result *r)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)r->body.data, r->body.len, 0, &je);
    if (!doc)
        fail_msg("response is not JSON (%s): %.*s", je.text, (int)r->body.len,
                 (const char *)r->body.data);
    return doc;
}

static void assert_aep_error(struct result *r, int status, const char *code, const char *sandbox)
{
    assert_int_equal(r->status, status);
    char ct[128];
    assert_true(header_value(r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    json_t *doc = body_json(r);
    char *type = xasprintf("http://ns.adobe.com/aep/errors/%s", code);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), type);
    free(type);
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), status);
    assert_true(json_is_string(json_object_get(doc, "title")));
    assert_true(json_is_string(json_object_get(doc, "detail")));
    json_t *sb = json_object_get(json_object_get(json_object_get(doc, "report"), "tenantInfo"),
                                 "sandboxName");
    assert_string_equal(json_string_value(sb), sandbox);
    json_decref(doc);
}

static int64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int64_t kb = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtoll(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kb;
}

static int count_files(const char *dir)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    free(cmd);
    return n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests */

static void test_json_echo(void **state)
{
    (void)state;
    struct result r;
    request(&r, "POST", "/echo", "{\"a\":[1,2,{\"b\":\"\\u00e9\"}]}", NULL, NULL);
    assert_int_equal(r.status, 201);
    char ct[128];
    assert_true(header_value(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    json_t *doc = body_json(&r);
    json_t *want = json_loads("{\"a\":[1,2,{\"b\":\"\\u00e9\"}]}", 0, NULL);
    assert_true(json_equal(json_object_get(doc, "echo"), want));
    assert_int_equal(json_integer_value(json_object_get(doc, "len")), 26);
    assert_string_equal(json_string_value(json_object_get(doc, "sandbox")), "prod");
    json_decref(want);
    json_decref(doc);
    result_free(&r);

    /* the handler's own error goes out in the AEP shape */
    request(&r, "POST", "/echo", "{not json", NULL, NULL);
    assert_aep_error(&r, 400, "TEST-0001-400", "prod");
    result_free(&r);
}

static void test_not_found_and_method(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/nope", NULL, NULL, NULL);
    assert_aep_error(&r, 404, "INGOT-0404-404", "prod");
    result_free(&r);
    request(&r, "GET", "/things", NULL, "x-sandbox-name: Dev-1", NULL);
    assert_aep_error(&r, 404, "INGOT-0404-404", "dev-1");
    result_free(&r);

    request(&r, "GET", "/echo", NULL, NULL, NULL);
    assert_aep_error(&r, 405, "INGOT-0405-405", "prod");
    char allow[64];
    assert_true(header_value(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST");
    result_free(&r);
    request(&r, "PUT", "/things/x", NULL, NULL, NULL);
    assert_aep_error(&r, 405, "INGOT-0405-405", "prod");
    assert_true(header_value(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, DELETE");
    result_free(&r);
    /* the other method of a known path still works */
    request(&r, "DELETE", "/things/x", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_params_and_headers(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/things/abc/", NULL, "X-Test-Header: hello", NULL);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_true(header_value(&r, "X-Request-Id", v, sizeof(v)));
    assert_string_equal(v, "abc123");
    json_t *doc = body_json(&r);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "params"), 0)), "abc");
    assert_string_equal(json_string_value(json_object_get(doc, "header")), "hello");
    json_decref(doc);
    result_free(&r);

    request(&r, "GET", "/schemas/https%3A%2F%2Fns.adobe.com%2Ftenant%2Fschemas%2Fabc", NULL, NULL,
            NULL);
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "params"), 0)),
                        "https://ns.adobe.com/tenant/schemas/abc");
    assert_string_equal(json_string_value(json_object_get(doc, "path")),
                        "/schemas/https://ns.adobe.com/tenant/schemas/abc");
    json_decref(doc);
    result_free(&r);

    request(&r, "GET", "/schemas/s1/sub/a/b%20c/d", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    json_t *params = json_object_get(doc, "params");
    assert_int_equal(json_array_size(params), 2);
    assert_string_equal(json_string_value(json_array_get(params, 1)), "a/b c/d");
    json_decref(doc);
    result_free(&r);
}

static void test_first_route_wins(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/order/fixed", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    /* h_thing (first in the table) answered, not h_query */
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "params"), 0)),
                        "fixed");
    assert_null(json_object_get(doc, "all"));
    json_decref(doc);
    result_free(&r);
}

static void test_sandbox_header(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/things/x", NULL, NULL, NULL);
    json_t *doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "sandbox")), "prod");
    json_decref(doc);
    result_free(&r);

    request(&r, "GET", "/things/x", NULL, "x-sandbox-name: My-Sandbox-2", NULL);
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "sandbox")), "my-sandbox-2");
    json_decref(doc);
    result_free(&r);

    request(&r, "GET", "/things/x", NULL, "x-sandbox-name: bad_name", NULL);
    assert_aep_error(&r, 400, "INGOT-0400-400", "prod");
    result_free(&r);
    request(&r, "GET", "/things/x", NULL, "x-sandbox-name: ../etc", NULL);
    assert_int_equal(r.status, 400);
    result_free(&r);
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "x-sandbox-name: %065d", 0);
    request(&r, "GET", "/things/x", NULL, hdr, NULL);
    assert_int_equal(r.status, 400);
    result_free(&r);
    snprintf(hdr, sizeof(hdr), "x-sandbox-name: %064d", 0);
    request(&r, "GET", "/things/x", NULL, hdr, NULL);
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_query_decoding(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/query?a=x%20y%2Fz&b=1+2&flag&d=%2B&e%3D=%3D&a=second", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    json_t *want = json_loads("[[\"a\",\"x y/z\"],[\"b\",\"1 2\"],[\"flag\",null],[\"d\",\"+\"],"
                              "[\"e=\",\"=\"],[\"a\",\"second\"]]",
                              0, NULL);
    assert_true(json_equal(json_object_get(doc, "all"), want));
    assert_string_equal(json_string_value(json_object_get(doc, "a")), "x y/z");
    assert_true(json_is_null(json_object_get(doc, "missing")));
    json_decref(want);
    json_decref(doc);
    result_free(&r);
}

static void test_json_limit(void **state)
{
    (void)state;
    char *big = xmalloc(JSON_LIMIT + 200);
    memset(big, ' ', JSON_LIMIT + 199);
    big[0] = '[';
    big[JSON_LIMIT + 197] = ']';
    big[JSON_LIMIT + 199] = '\0';
    struct result r;
    request(&r, "POST", "/echo", big, NULL, NULL);
    assert_aep_error(&r, 413, "INGOT-0413-413", "prod");
    result_free(&r);
    /* without Content-Length (chunked) the cap applies while reading */
    request(&r, "POST", "/echo", big, "Transfer-Encoding: chunked", NULL);
    assert_aep_error(&r, 413, "INGOT-0413-413", "prod");
    result_free(&r);
    /* exactly at the limit is fine */
    big[JSON_LIMIT - 1] = ']';
    big[JSON_LIMIT] = '\0';
    request(&r, "POST", "/echo", big, NULL, NULL);
    assert_int_equal(r.status, 201);
    result_free(&r);
    free(big);
}

static void test_upload_streamed(void **state)
{
    (void)state;
    struct app *app = &g_fx->app;
    struct result r;
    /* warm-up so that one-off allocations (connection pools, TLS of threads) are not counted */
    struct upload_src warm = {.left = 1 << 20};
    request(&r, "PUT", "/upload/warm.json", NULL, NULL, &warm);
    assert_int_equal(r.status, 200);
    result_free(&r);

    int64_t before = rss_kb();
    struct upload_src src = {.left = UPLOAD_SIZE};
    request(&r, "PUT", "/upload/dir/big%20file.json", NULL, NULL, &src);
    int64_t after = rss_kb();
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "path")), "dir/big file.json");
    json_decref(doc);
    result_free(&r);

    pthread_mutex_lock(&app->mu);
    assert_int_equal(app->body_size, UPLOAD_SIZE);
    assert_int_equal(app->file_size, UPLOAD_SIZE);
    assert_int_equal(app->checksum, src.sum);
    assert_true(!strncmp(app->body_path, g_fx->spool, strlen(g_fx->spool)));
    assert_false(fs_exists(app->body_path)); /* unlinked after the handler */
    pthread_mutex_unlock(&app->mu);
    assert_int_equal(count_files(g_fx->spool), 0);
    /* the body went to disk, not to memory */
    fprintf(stderr, "rss before %lld kB, after %lld kB\n", (long long)before, (long long)after);
    assert_true(after - before < (UPLOAD_SIZE / 1024) / 2);

    /* a handler that renames the spool file keeps it */
    struct upload_src small = {.left = 12345};
    request(&r, "PUT", "/upload/kept?keep=kept.bin", NULL, NULL, &small);
    assert_int_equal(r.status, 200);
    result_free(&r);
    char *kept = xasprintf("%s/kept.bin", app->keep_dir);
    assert_true(app->renamed);
    assert_int_equal(fs_file_size(kept), 12345);
    free(kept);
    assert_int_equal(count_files(g_fx->spool), 0);
}

static void test_file_response_and_head(void **state)
{
    (void)state;
    struct result r;
    request(&r, "GET", "/file?off=100&len=50", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 50);
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(r.body.data[i], (uint8_t)((100 + i) % 251));
    char v[64];
    assert_true(header_value(&r, "Content-Length", v, sizeof(v)));
    assert_string_equal(v, "50");
    assert_true(header_value(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/octet-stream");
    result_free(&r);

    request(&r, "GET", "/file?off=990", NULL, NULL, NULL);
    assert_int_equal(r.body.len, 10);
    assert_int_equal(r.body.data[0], (uint8_t)(990 % 251));
    result_free(&r);

    /* HEAD: the headers of the GET, no body */
    request(&r, "HEAD", "/file?off=100&len=50", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_true(header_value(&r, "Content-Length", v, sizeof(v)));
    assert_string_equal(v, "50");
    result_free(&r);
    request(&r, "HEAD", "/things/abc", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_true(header_value(&r, "Content-Length", v, sizeof(v)));
    assert_true(atoi(v) > 10);
    result_free(&r);

    request(&r, "GET", "/missing-file", NULL, NULL, NULL);
    assert_aep_error(&r, 404, "INGOT-0404-404", "prod");
    result_free(&r);
}

/* Several clients at once: handlers run on the pool threads. */
static void *client_main(void *arg)
{
    int *ok = arg;
    for (int i = 0; i < 20; i++) {
        struct result r;
        char path[64];
        snprintf(path, sizeof(path), "/things/t%d", i);
        request(&r, "GET", path, NULL, NULL, NULL);
        if (r.status == 200)
            (*ok)++;
        result_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    pthread_t th[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ok[i], 20);
    }
}

/* ---------------------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-http-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->spool, sizeof(fx->spool), "%s/spool", fx->dir);
    snprintf(fx->app.keep_dir, sizeof(fx->app.keep_dir), "%s/keep", fx->dir);
    snprintf(fx->app.data_file, sizeof(fx->app.data_file), "%s/data.bin", fx->dir);
    if (fs_mkdirs(fx->spool, NULL) || fs_mkdirs(fx->app.keep_dir, NULL))
        return -1;
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i % 251);
    if (fs_write_atomic(fx->app.data_file, data, sizeof(data), NULL))
        return -1;
    pthread_mutex_init(&fx->app.mu, NULL);
    struct http_server_opts opts = {.listen = "127.0.0.1:0", .spool_dir = fx->spool,
                                    .max_json_body = JSON_LIMIT, .threads = 4};
    struct ing_err err;
    ing_err_clear(&err);
    if (http_server_start(&fx->srv, &opts, k_routes, ING_ARRAY_LEN(k_routes), &fx->app, &err)) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    fx->port = http_server_port(fx->srv);
    if (fx->port <= 0)
        return -1;
    g_fx = fx;
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *fx = *state;
    http_server_stop(fx->srv);
    pthread_mutex_destroy(&fx->app.mu);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    curl_global_cleanup();
    return 0;
}

static void test_bad_listen(void **state)
{
    (void)state;
    struct http_server *srv = NULL;
    struct http_server_opts opts = {.listen = "127.0.0.1", .spool_dir = "/tmp"};
    assert_int_equal(http_server_start(&srv, &opts, k_routes, 1, NULL, NULL), ING_EINVAL);
    assert_null(srv);
    opts.listen = "127.0.0.1:99999";
    assert_int_equal(http_server_start(&srv, &opts, k_routes, 1, NULL, NULL), ING_EINVAL);
    /* the port is taken by the test server */
    char *taken = xasprintf("127.0.0.1:%d", g_fx->port);
    opts.listen = taken;
    assert_int_equal(http_server_start(&srv, &opts, k_routes, 1, NULL, NULL), ING_EIO);
    free(taken);
    http_server_stop(NULL);
}

/* A spool directory that cannot take the upload: an AEP error, and the handler is not called. */
static void test_spool_failure(void **state)
{
    (void)state;
    struct http_server *srv = NULL;
    struct http_server_opts opts = {.listen = "127.0.0.1:0", .spool_dir = "/nonexistent/spool",
                                    .threads = 1};
    assert_int_equal(http_server_start(&srv, &opts, k_routes, ING_ARRAY_LEN(k_routes),
                                       &g_fx->app, NULL), 0);
    int saved = g_fx->port;
    g_fx->port = http_server_port(srv);
    pthread_mutex_lock(&g_fx->app.mu);
    g_fx->app.body_size = -7;
    pthread_mutex_unlock(&g_fx->app.mu);
    struct result r;
    struct upload_src src = {.left = 1000};
    request(&r, "PUT", "/upload/x.json", NULL, NULL, &src);
    assert_aep_error(&r, 500, "INGOT-0500-500", "prod");
    result_free(&r);
    pthread_mutex_lock(&g_fx->app.mu);
    assert_int_equal(g_fx->app.body_size, -7);
    pthread_mutex_unlock(&g_fx->app.mu);
    g_fx->port = saved;
    http_server_stop(srv);
}

/* A body taken by a sink arrives whole and in order, gathered into large pieces (the server
 * receives it in pieces of tens of KiB; each write(2) of those would cost a system call), and
 * the sink is released once. */
static void test_sink_pieces(void **state)
{
    (void)state;
    /* Static: the release comes after the answer (when libmicrohttpd ends the request). */
    static struct sink_rec rec;
    pthread_mutex_init(&rec.mu, NULL);
    pthread_mutex_lock(&g_fx->app.mu);
    g_fx->app.sink = &rec;
    pthread_mutex_unlock(&g_fx->app.mu);
    const int64_t sizes[] = {(3 << 20) + 12345, 100};
    for (size_t i = 0; i < ING_ARRAY_LEN(sizes); i++) {
        pthread_mutex_lock(&rec.mu);
        rec.bytes = rec.writes = 0;
        rec.checksum = 0;
        rec.smallest_but_last = rec.last = 0;
        rec.releases = 0;
        rec.took_body = false;
        pthread_mutex_unlock(&rec.mu);
        struct result r;
        struct upload_src src = {.left = sizes[i]};
        request(&r, "PATCH", "/sink", NULL, NULL, &src);
        assert_int_equal(r.status, 200);
        json_t *doc = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(doc, "size")), sizes[i]);
        json_decref(doc);
        result_free(&r);
        /* The release follows the answer: wait for it (at most 10 s). */
        int releases = 0;
        for (int waited = 0; waited < 10000; waited++) {
            pthread_mutex_lock(&rec.mu);
            releases = rec.releases;
            pthread_mutex_unlock(&rec.mu);
            if (releases > 0)
                break;
            usleep(1000);
        }
        pthread_mutex_lock(&rec.mu);
        assert_true(rec.took_body);
        assert_int_equal(rec.bytes, sizes[i]);
        assert_int_equal(rec.checksum, src.sum);
        assert_int_equal(rec.releases, 1);
        /* 1 MiB pieces: 3 MiB + 12345 bytes come as four writes, the last one short. */
        assert_int_equal(rec.writes, (sizes[i] + (1 << 20) - 1) >> 20);
        if (rec.writes > 1)
            assert_int_equal(rec.smallest_but_last, 1 << 20);
        assert_int_equal(rec.last, sizes[i] - ((rec.writes - 1) << 20));
        pthread_mutex_unlock(&rec.mu);
    }
    pthread_mutex_lock(&g_fx->app.mu);
    g_fx->app.sink = NULL;
    pthread_mutex_unlock(&g_fx->app.mu);
}

/* The router skips patterns whose literal lead the path lacks: what it answers must be what a
 * full scan of the table answers (first match wins, 405 with every method of the path). */
static void test_route_leads(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        long status;
        const char *param; /* first capture, or NULL: none */
        const char *allow; /* 405: the Allow header */
    } k_cases[] = {
        {"GET", "/deep/one/two/7", 200, "7", NULL},
        {"GET", "/deep/zz/two/x", 200, "zz", NULL},
        {"GET", "/deep/one/two/x", 200, "x", NULL}, /* both match: the first pattern wins */
        {"GET", "/deep/one/two/x/", 200, "x", NULL},
        {"GET", "/deep", 200, NULL, NULL},
        {"GET", "/deep/", 200, NULL, NULL},
        {"GET", "/", 200, NULL, NULL},
        {"PUT", "/deep/one/two/y", 200, "one", NULL},
        {"DELETE", "/deep/one/two/y", 405, NULL, "GET, PUT"},
        {"PUT", "/deep/a/two/x", 405, NULL, "GET"},
        {"GET", "/deep/one", 404, NULL, NULL},
        {"GET", "/dee", 404, NULL, NULL},
        {"GET", "/deeper", 404, NULL, NULL},
        {"GET", "/deep/one/two", 404, NULL, NULL},
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(k_cases); i++) {
        struct result r;
        request(&r, k_cases[i].method, k_cases[i].path, NULL, NULL, NULL);
        if (r.status != k_cases[i].status)
            fail_msg("%s %s: %ld", k_cases[i].method, k_cases[i].path, r.status);
        if (r.status == 200) {
            json_t *doc = body_json(&r);
            json_t *params = json_object_get(doc, "params");
            if (k_cases[i].param)
                assert_string_equal(json_string_value(json_array_get(params, 0)),
                                    k_cases[i].param);
            else
                assert_int_equal(json_array_size(params), 0);
            json_decref(doc);
        } else if (r.status == 405) {
            char allow[64];
            assert_true(header_value(&r, "Allow", allow, sizeof(allow)));
            assert_string_equal(allow, k_cases[i].allow);
        }
        result_free(&r);
    }
}

/* Many arguments, long ones and repeated names: all kept in order, the first of a name wins. */
static void test_many_query_args(void **state)
{
    (void)state;
    struct buf url = {0};
    buf_append_str(&url, "/query?");
    for (int i = 0; i < 40; i++)
        buf_printf(&url, "%sk%d=v%d", i ? "&" : "", i, i);
    buf_append_str(&url, "&a=");
    for (int i = 0; i < 1000; i++)
        buf_append_str(&url, "%41");
    buf_append_str(&url, "&a=second&empty=&bare");
    struct result r;
    request(&r, "GET", buf_cstr(&url), NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    json_t *all = json_object_get(doc, "all");
    assert_int_equal(json_array_size(all), 44);
    for (int i = 0; i < 40; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        assert_string_equal(json_string_value(json_array_get(json_array_get(all, (size_t)i), 0)), k);
        assert_string_equal(json_string_value(json_array_get(json_array_get(all, (size_t)i), 1)), v);
    }
    const char *a = json_string_value(json_object_get(doc, "a"));
    assert_non_null(a);
    assert_int_equal(strlen(a), 1000);
    assert_int_equal(strspn(a, "A"), 1000);
    assert_string_equal(json_string_value(json_array_get(json_array_get(all, 41), 1)), "second");
    assert_string_equal(json_string_value(json_array_get(json_array_get(all, 42), 1)), "");
    assert_true(json_is_null(json_array_get(json_array_get(all, 43), 1)));
    json_decref(doc);
    result_free(&r);
    buf_free(&url);
}

/* Requests on one keep-alive connection each get their own state: arguments, captures and
 * sandbox of one request do not leak into the next. */
static void test_keep_alive_requests(void **state)
{
    (void)state;
    static const struct {
        const char *path, *hdr, *a, *param, *sandbox;
    } k_steps[] = {
        {"/query?a=first", NULL, "first", NULL, NULL},
        {"/query", NULL, NULL, NULL, NULL},
        {"/things/one", "x-sandbox-name: Dev", NULL, "one", "dev"},
        {"/things/two", NULL, NULL, "two", "prod"},
        {"/query?b=1&a=again", NULL, "again", NULL, NULL},
    };
    CURL *c = curl_easy_init();
    assert_non_null(c);
    for (size_t i = 0; i < ING_ARRAY_LEN(k_steps); i++) {
        struct buf body = {0};
        char *url = xasprintf("http://127.0.0.1:%d%s", g_fx->port, k_steps[i].path);
        struct curl_slist *hl = k_steps[i].hdr ? curl_slist_append(NULL, k_steps[i].hdr) : NULL;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long status = 0, connects = -1;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        assert_int_equal(status, 200);
        assert_int_equal(connects, i == 0 ? 1 : 0); /* the connection was reused */
        json_t *doc = json_loadb((const char *)body.data, body.len, 0, NULL);
        assert_non_null(doc);
        if (!strncmp(k_steps[i].path, "/query", 6)) {
            const char *a = json_string_value(json_object_get(doc, "a"));
            if (k_steps[i].a)
                assert_string_equal(a, k_steps[i].a);
            else
                assert_null(a);
        } else {
            assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "params"),
                                                                 0)), k_steps[i].param);
            assert_int_equal(json_array_size(json_object_get(doc, "params")), 1);
            assert_string_equal(json_string_value(json_object_get(doc, "sandbox")),
                                k_steps[i].sandbox);
        }
        json_decref(doc);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hl);
        buf_free(&body);
        free(url);
    }
    curl_easy_cleanup(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_echo),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_params_and_headers),
        cmocka_unit_test(test_sandbox_header),
        cmocka_unit_test(test_query_decoding),
        cmocka_unit_test(test_json_limit),
        cmocka_unit_test(test_upload_streamed),
        cmocka_unit_test(test_file_response_and_head),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_first_route_wins),
        cmocka_unit_test(test_spool_failure),
        cmocka_unit_test(test_sink_pieces),
        cmocka_unit_test(test_route_leads),
        cmocka_unit_test(test_many_query_args),
        cmocka_unit_test(test_keep_alive_requests),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
