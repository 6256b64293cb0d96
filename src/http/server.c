/*
 * server.c - the libmicrohttpd daemon behind http.h: request state, body spooling, dispatch to the
 * route table, response building, graceful stop.
 *
 * Per request, libmicrohttpd calls the access handler several times: once with the headers (we
 * route, validate the sandbox and open the body sink), once per body chunk (appended to memory or
 * written to the spool file), and once more with no data (we run the handler and queue the
 * response). The request state lives in *con_cls until the completion callback frees it.
 *
 * The unescape callback is a no-op so that the router sees the raw path; query arguments are
 * decoded here on lookup.
 *
 * The only file that includes <microhttpd.h>.
 */
#include "http/http.h"
#include "http/http_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

#define DEFAULT_MAX_JSON_BODY (16u * 1024 * 1024)
#define DEFAULT_THREADS 4u
#define CONNECTION_TIMEOUT_S 300u
/* Per-connection memory (headers and the upload read buffer). libmicrohttpd clears the whole
 * pool between two requests of a keep-alive connection, so its size is paid on every request:
 * 256 KiB cost ~30% of the CPU of a small lookup (memset plus page faults); with lookups served
 * from stored answers, 64 KiB was still ~9% of the server's CPU. 32 KiB keeps upload chunks of
 * tens of KiB for streaming to disk. */
#define CONNECTION_MEMORY 32768u
#define STOP_WAIT_MS 30000
/* Upload bodies go to the disk (spool file or sink) in pieces of this size. libmicrohttpd hands
 * a body over in pieces of about half its connection memory (16 KiB), and a write(2) into the
 * page cache has a fixed cost per call well above the copy of 16 KiB (entry on this VM, the
 * file's lock and times, the file system's per-call work): 245 MB written 16 KiB at a time took
 * 0.25-0.32 CPU s, 1 MiB at a time 0.11-0.12. */
#define BODY_STAGE_BYTES ((size_t)1 << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_route *routes;
    size_t nroutes;
    size_t *route_lead;   /* per route: bytes of its pattern every matching path starts with */
    void *app;
    char *spool_dir;
    size_t max_json_body;
    int port;
    atomic_int in_flight; /* requests between their first call and their completion */
};

/* One request; req.conn points back here for http_req_header/http_req_query. */
struct req_state {
    struct http_server *srv;
    struct MHD_Connection *mc;
    struct http_req req;
    const struct http_route *route;
    const char *method_name;
    size_t raw_len;      /* strlen(raw_path) */
    char *raw_path;      /* as received, percent-encoded (in paths[]) */
    char *path;          /* decoded (in paths[]) */
    char *scratch;       /* route parameters (in paths[]) */
    char sandbox[65];
    struct buf body;     /* HTTP_BODY_JSON */
    int fd;              /* HTTP_BODY_FILE(_RANGE): spool file, -1 when closed */
    char *spool_path;
    int write_errno;     /* first write error of the spool file */
    int64_t spooled;     /* bytes written to the spool file */
    int64_t kicked;      /* bytes of it whose write-back has been started */
    bool kick_writeback; /* the handler will keep the spool file (see http_body_mode) */
    struct http_body_sink sink; /* HTTP_BODY_SINK: set when the handler took the body */
    char *stage;         /* body bytes not yet passed to the spool file or sink */
    size_t staged;       /* bytes in stage (capacity BODY_STAGE_BYTES) */
    bool too_big;
    int64_t received;
    int64_t t0_ns;
    int status;          /* for the log line */
    char **strings;      /* decoded query arguments: name, value (NULL: none) pairs, the
                            texts in the same allocation */
    size_t nstrings;
    bool args_done;      /* strings holds the query arguments */
    char paths[];        /* raw_path, path and scratch: 3 x (raw_len + 1) bytes */
};

/* ---------------------------------------------------------------------------------------------- */
/* Request accessors */

const char *http_req_header(const struct http_req *req, const char *name)
{
    if (!req || !req->conn || !name)
        return NULL;
    const struct req_state *rs = req->conn;
    return MHD_lookup_connection_value(rs->mc, MHD_HEADER_KIND, name);
}

/* Query arguments are gathered in two passes over libmicrohttpd's list: the first sizes one
 * allocation for the pointers and the decoded texts, the second fills it (one malloc a request
 * instead of three per argument). */
struct args_fill {
    size_t npairs, bytes; /* first pass: what the arguments need */
    char **strings;       /* second pass: where the pointers go, texts after them */
    char *text;
    size_t n;
};

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key;
    struct args_fill *f = cls;
    f->npairs++;
    f->bytes += key_size + 1 + (value ? value_size + 1 : 0);
    return MHD_YES;
}

static enum MHD_Result fill_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct args_fill *f = cls;
    f->strings[f->n++] = f->text;
    f->text += http__pct_decode(f->text, key ? key : "", key ? key_size : 0, true) + 1;
    if (value) {
        f->strings[f->n++] = f->text;
        f->text += http__pct_decode(f->text, value, value_size, true) + 1;
    } else {
        f->strings[f->n++] = NULL;
    }
    return MHD_YES;
}

/* Decode the query arguments once per request: a handler looks up a dozen of them (a lookup
 * decoded every argument for each name asked, ~30 allocations a request). */
static void args_ready(struct req_state *rs)
{
    if (rs->args_done)
        return;
    rs->args_done = true;
    struct args_fill f = {0};
    MHD_get_connection_values_n(rs->mc, MHD_GET_ARGUMENT_KIND, count_arg, &f);
    if (f.npairs == 0)
        return;
    size_t nptr = 2 * f.npairs;
    rs->strings = xmalloc(nptr * sizeof(*rs->strings) + f.bytes);
    f.strings = rs->strings;
    f.text = (char *)(rs->strings + nptr);
    MHD_get_connection_values_n(rs->mc, MHD_GET_ARGUMENT_KIND, fill_arg, &f);
    rs->nstrings = f.n; /* the list cannot change in between: this thread owns the request */
}

const char *http_req_query(const struct http_req *req, const char *name)
{
    if (!req || !req->conn || !name)
        return NULL;
    struct req_state *rs = req->conn;
    args_ready(rs);
    for (size_t i = 0; i + 1 < rs->nstrings; i += 2) {
        const char *key = rs->strings[i];
        /* a valueless argument ("?flag") reads as "" */
        if (key[0] == name[0] && !strcmp(key, name))
            return rs->strings[i + 1] ? rs->strings[i + 1] : "";
    }
    return NULL;
}

int http_req_query_each(const struct http_req *req, http_query_fn *fn, void *ctx)
{
    if (!req || !req->conn || !fn)
        return 0;
    struct req_state *rs = req->conn;
    args_ready(rs);
    for (size_t i = 0; i + 1 < rs->nstrings; i += 2) {
        int stop = fn(ctx, rs->strings[i], rs->strings[i + 1]);
        if (stop)
            return stop;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Responses */

static void resp_clear(struct http_resp *resp)
{
    buf_free(&resp->body);
    free(resp->file_path);
    for (size_t i = 0; i < resp->nheaders; i++)
        free(resp->headers[i]);
    memset(resp, 0, sizeof(*resp));
}

/* Open the file a handler asked to send and make a response of [offset, offset+length). */
static struct MHD_Response *file_response(struct http_resp *resp)
{
    int fd = open(resp->file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        log_warn("http: cannot open response file %s: %s", resp->file_path, strerror(e));
        if (e == ENOENT)
            http_resp_error(resp, 404, "INGOT-0404-404", "Not Found", "The file does not exist.");
        else
            http_resp_error(resp, 500, "INGOT-0500-500", "Internal Server Error",
                            "The file cannot be read.");
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        http_resp_error(resp, 500, "INGOT-0500-500", "Internal Server Error",
                        "The file cannot be read.");
        return NULL;
    }
    int64_t size = (int64_t)sb.st_size;
    int64_t off = resp->file_offset < 0 ? 0 : resp->file_offset;
    if (off > size)
        off = size;
    int64_t len = size - off;
    if (resp->file_length >= 0 && resp->file_length < len)
        len = resp->file_length;
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64((uint64_t)len, fd,
                                                                     (uint64_t)off);
    if (!r)
        close(fd);
    return r;
}

static struct MHD_Response *build_response(struct http_resp *resp)
{
    struct MHD_Response *r = NULL;
    const char *type = NULL;
    if (resp->file_path) {
        /* On failure resp now holds an error body instead, sent below. */
        r = file_response(resp);
        if (r)
            type = resp->content_type ? resp->content_type : "application/octet-stream";
    }
    if (!r) {
        if (resp->body.len > 0) {
            type = resp->content_type ? resp->content_type : "application/json";
            /* MHD frees the buffer with free() when the response is destroyed. */
            r = MHD_create_response_from_buffer(resp->body.len, resp->body.data,
                                                MHD_RESPMEM_MUST_FREE);
            if (r)
                resp->body = (struct buf){0};
        } else {
            type = resp->content_type;
            r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
    }
    if (!r)
        return NULL;
    if (type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    for (size_t i = 0; i < resp->nheaders; i++) {
        char *line = resp->headers[i];
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        if (MHD_add_response_header(r, line, value) != MHD_YES)
            log_warn("http: response header %s refused", line);
        *colon = ':';
    }
    return r;
}

/* Queue resp (freed here) and remember the status for the log line. */
static enum MHD_Result send_resp(struct req_state *rs, struct http_resp *resp)
{
    if (resp->status == 0)
        resp->status = 200;
    struct MHD_Response *r = build_response(resp);
    if (!r) {
        resp_clear(resp);
        return MHD_NO;
    }
    rs->status = resp->status;
    enum MHD_Result ret = MHD_queue_response(rs->mc, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    resp_clear(resp);
    return ret;
}

static enum MHD_Result send_error(struct req_state *rs, int status, const char *code,
                                  const char *title, const char *detail)
{
    struct http_resp resp = {0};
    http__set_current_sandbox(rs->sandbox[0] ? rs->sandbox : NULL);
    http_resp_error(&resp, status, code, title, detail);
    http__set_current_sandbox(NULL);
    return send_resp(rs, &resp);
}

/* ---------------------------------------------------------------------------------------------- */
/* Routing and validation on the first call */

static bool parse_method(const char *m, enum http_method *out)
{
    static const struct {
        const char *name;
        enum http_method method;
    } k_methods[] = {
        {"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
        {"PUT", HTTP_PUT},     {"PATCH", HTTP_PATCH},   {"DELETE", HTTP_DELETE},
        {"OPTIONS", HTTP_OPTIONS},
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(k_methods); i++) {
        if (!strcmp(m, k_methods[i].name)) {
            *out = k_methods[i].method;
            return true;
        }
    }
    return false;
}

static const char *method_name(enum http_method m)
{
    switch (m) {
    case HTTP_GET: return "GET";
    case HTTP_HEAD: return "HEAD";
    case HTTP_POST: return "POST";
    case HTTP_PUT: return "PUT";
    case HTTP_PATCH: return "PATCH";
    case HTTP_DELETE: return "DELETE";
    case HTTP_OPTIONS: return "OPTIONS";
    }
    return "?";
}

/* x-sandbox-name, lower-cased; default "prod"; [a-z0-9-]{1,64}. */
static bool read_sandbox(struct req_state *rs)
{
    const char *h = MHD_lookup_connection_value(rs->mc, MHD_HEADER_KIND, "x-sandbox-name");
    if (!h) {
        snprintf(rs->sandbox, sizeof(rs->sandbox), "prod");
        return true;
    }
    size_t n = strlen(h);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
        rs->sandbox[i] = c;
    }
    rs->sandbox[n] = '\0';
    return true;
}

/* Bytes of `pattern` that every path it matches starts with: its literal segments up to the
 * first capture, with their slashes (the whole pattern when it has no capture). Literal segments
 * compare raw in http_route_match, so a path without this lead cannot match and find_route skips
 * the pattern with one memcmp. */
static size_t pattern_lead(const char *pattern)
{
    const char *p = pattern + (pattern[0] == '/');
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= 3 && p[0] == '{' && p[len - 1] == '}') /* {name} or {*rest} */
            return (size_t)(p - pattern);
        if (!end)
            return strlen(pattern);
        p = end + 1;
    }
}

/* Find the route: the first pattern match with this method wins (HEAD also takes a GET route).
 * When none, *path_known says whether some route has the path with other methods (listed in
 * allow). On success rs->req.params hold the route's decoded captures. */
static const struct http_route *find_route(struct req_state *rs, bool known_method,
                                           enum http_method m, bool *path_known,
                                           struct buf *allow)
{
    const struct http_server *srv = rs->srv;
    const struct http_route *head_get = NULL;
    *path_known = false;
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct http_route *rt = &srv->routes[i];
        size_t lead = srv->route_lead[i];
        if (lead > rs->raw_len || memcmp(rt->pattern, rs->raw_path, lead) != 0)
            continue;
        const char *params[HTTP_MAX_PARAMS];
        size_t np = 0;
        if (!http_route_match(rt->pattern, rs->raw_path, rs->scratch, params, &np))
            continue;
        if (known_method && rt->method == m) {
            /* scratch holds this pattern's captures */
            memcpy(rs->req.params, params, np * sizeof(*params));
            rs->req.nparams = np;
            return rt;
        }
        if (known_method && m == HTTP_HEAD && rt->method == HTTP_GET && !head_get)
            head_get = rt;
        *path_known = true;
        const char *name = method_name(rt->method);
        if (!strstr(buf_cstr(allow), name)) {
            if (allow->len)
                buf_append_str(allow, ", ");
            buf_append_str(allow, name);
        }
    }
    if (head_get) /* match again: scratch holds the captures of the last pattern tried */
        http_route_match(head_get->pattern, rs->raw_path, rs->scratch, rs->req.params,
                         &rs->req.nparams);
    return head_get;
}

static bool body_to_file(enum http_body_mode mode)
{
    return mode == HTTP_BODY_FILE || mode == HTTP_BODY_FILE_RANGE || mode == HTTP_BODY_SINK;
}

/* HTTP_BODY_SINK: the handler's first call, with the headers only; it may take the body. */
static void offer_sink(struct req_state *rs)
{
    struct http_resp scratch = {0};
    rs->req.sink = &rs->sink;
    http__set_current_sandbox(rs->sandbox);
    rs->route->handler(rs->srv->app, &rs->req, &scratch);
    http__set_current_sandbox(NULL);
    rs->req.sink = NULL;
    resp_clear(&scratch); /* the first call does not answer */
    if (!rs->sink.write && rs->sink.release) {
        rs->sink.release(rs->sink.ctx);
        memset(&rs->sink, 0, sizeof(rs->sink));
    }
}

/* Whether the request's Content-Range is "bytes 0-..." (also "bytes=0-"): the first range. */
static bool range_starts_at_zero(const struct req_state *rs)
{
    const char *v = MHD_lookup_connection_value(rs->mc, MHD_HEADER_KIND, "Content-Range");
    if (!v)
        return false;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "bytes", 5) != 0)
        return false;
    v += 5;
    while (*v == ' ' || *v == '=')
        v++;
    return v[0] == '0' && v[1] == '-';
}

static int open_spool(struct req_state *rs)
{
    rs->spool_path = xasprintf("%s/upload-XXXXXX", rs->srv->spool_dir);
    rs->fd = mkostemp(rs->spool_path, O_CLOEXEC);
    if (rs->fd < 0) {
        int e = errno;
        log_error("http: cannot create spool file in %s: %s", rs->srv->spool_dir, strerror(e));
        free(rs->spool_path);
        rs->spool_path = NULL;
        return e;
    }
    return 0;
}

/* Returns MHD_YES to continue reading the body, or the result of an early error response. */
static enum MHD_Result first_call(struct req_state *rs, const char *method, bool *responded)
{
    *responded = false;
    http__pct_decode(rs->path, rs->raw_path, rs->raw_len, false);
    rs->req.path = rs->path;
    rs->req.conn = rs;
    rs->req.sandbox = rs->sandbox;

    if (!read_sandbox(rs)) {
        rs->sandbox[0] = '\0';
        *responded = true;
        return send_error(rs, 400, "INGOT-0400-400", "Bad Request",
                          "The x-sandbox-name header must be 1 to 64 characters of a-z, 0-9 "
                          "and '-'.");
    }
    enum http_method m = HTTP_GET;
    bool known_method = parse_method(method, &m);
    bool path_known = false;
    struct buf allow = {0};
    const struct http_route *rt = find_route(rs, known_method, m, &path_known, &allow);
    if (!rt) {
        *responded = true;
        enum MHD_Result r;
        if (path_known) {
            struct http_resp resp = {0};
            http__set_current_sandbox(rs->sandbox);
            char *detail = xasprintf("The method %s is not allowed for %s.", method, rs->path);
            http_resp_error(&resp, 405, "INGOT-0405-405", "Method Not Allowed", detail);
            free(detail);
            http__set_current_sandbox(NULL);
            http_resp_header(&resp, "Allow", buf_cstr(&allow));
            r = send_resp(rs, &resp);
        } else {
            char *detail = xasprintf("No resource at %s.", rs->path);
            r = send_error(rs, 404, "INGOT-0404-404", "Not Found", detail);
            free(detail);
        }
        buf_free(&allow);
        return r;
    }
    buf_free(&allow);
    rs->route = rt;
    rs->req.method = m;

    if (rt->body == HTTP_BODY_JSON) {
        const char *cl = MHD_lookup_connection_value(rs->mc, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno == 0 && end != cl && v > rs->srv->max_json_body) {
                *responded = true;
                return send_error(rs, 413, "INGOT-0413-413", "Payload Too Large",
                                  "The request body is larger than the JSON body limit.");
            }
        }
        rs->body.limit = rs->srv->max_json_body + 1; /* + the NUL buf_cstr adds */
    } else if (body_to_file(rt->body)) {
        if (rt->body == HTTP_BODY_SINK) {
            offer_sink(rs);
            if (rs->sink.write)
                return MHD_YES;
        }
        rs->kick_writeback = rt->body == HTTP_BODY_FILE || range_starts_at_zero(rs);
        int e = open_spool(rs);
        if (e) {
            *responded = true;
            bool full = e == ENOSPC || e == EDQUOT;
            return send_error(rs, full ? 507 : 500, full ? "INGOT-0507-507" : "INGOT-0500-500",
                              full ? "Insufficient Storage" : "Internal Server Error",
                              "The upload cannot be stored.");
        }
    }
    return MHD_YES;
}

/* ---------------------------------------------------------------------------------------------- */
/* Body chunks */

/* Bytes of a body to the handler's sink or to the spool file. */
static void body_out(struct req_state *rs, const char *data, size_t n)
{
    if (rs->sink.write) {
        rs->sink.write(rs->sink.ctx, data, n);
    } else {
        if (rs->write_errno || rs->fd < 0)
            return; /* keep draining; the error answer goes out at the end */
        while (n > 0) {
            ssize_t w = write(rs->fd, data, n);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rs->write_errno = errno;
                log_error("http: writing spool file %s: %s", rs->spool_path, strerror(errno));
                return;
            }
            data += w;
            n -= (size_t)w;
            rs->spooled += w;
        }
        /* A body the handler keeps (and fsyncs) has its write-back started while the rest is
         * still arriving. */
        if (rs->kick_writeback)
            fs_kick_writeback(rs->fd, 0, &rs->kicked, rs->spooled);
    }
}

/* Pass the staged bytes on (before the handler's last call). */
static void body_flush(struct req_state *rs)
{
    if (rs->staged > 0) {
        body_out(rs, rs->stage, rs->staged);
        rs->staged = 0;
    }
}

static void take_chunk(struct req_state *rs, const char *data, size_t n)
{
    rs->received += (int64_t)n;
    if (rs->route->body == HTTP_BODY_JSON) {
        if (rs->too_big)
            return;
        /* Keep one byte of room for the terminating NUL. */
        if (rs->body.len + n > rs->srv->max_json_body || buf_append(&rs->body, data, n) != 0) {
            rs->too_big = true;
            buf_free(&rs->body);
        }
    } else if (rs->sink.write || body_to_file(rs->route->body)) {
        /* Gather the small pieces into BODY_STAGE_BYTES writes. */
        while (n > 0) {
            if (rs->staged == 0 && n >= BODY_STAGE_BYTES) {
                body_out(rs, data, n);
                return;
            }
            if (!rs->stage)
                rs->stage = xmalloc(BODY_STAGE_BYTES);
            size_t take = BODY_STAGE_BYTES - rs->staged;
            if (take > n)
                take = n;
            memcpy(rs->stage + rs->staged, data, take);
            rs->staged += take;
            data += take;
            n -= take;
            if (rs->staged == BODY_STAGE_BYTES)
                body_flush(rs);
        }
    }
}

static void close_spool(struct req_state *rs)
{
    if (rs->fd >= 0) {
        if (close(rs->fd) != 0 && !rs->write_errno)
            rs->write_errno = errno;
        rs->fd = -1;
    }
}

static void unlink_spool(struct req_state *rs)
{
    if (rs->spool_path) {
        /* The handler may have renamed it away: ENOENT is the normal case then. */
        if (unlink(rs->spool_path) != 0 && errno != ENOENT)
            log_warn("http: cannot remove spool file %s: %s", rs->spool_path, strerror(errno));
        free(rs->spool_path);
        rs->spool_path = NULL;
    }
}

/* The last call: the body is complete. */
static enum MHD_Result finish(struct req_state *rs)
{
    struct http_server *srv = rs->srv;
    if (rs->route->body == HTTP_BODY_JSON) {
        if (rs->too_big)
            return send_error(rs, 413, "INGOT-0413-413", "Payload Too Large",
                              "The request body is larger than the JSON body limit.");
        rs->req.body = buf_cstr(&rs->body);
        rs->req.body_len = rs->body.len;
    } else if (rs->sink.write) {
        body_flush(rs);
        rs->req.body_sink = rs->sink.ctx;
    } else if (body_to_file(rs->route->body)) {
        body_flush(rs);
        close_spool(rs);
        if (rs->write_errno) {
            bool full = rs->write_errno == ENOSPC || rs->write_errno == EDQUOT;
            unlink_spool(rs);
            return send_error(rs, full ? 507 : 500, full ? "INGOT-0507-507" : "INGOT-0500-500",
                              full ? "Insufficient Storage" : "Internal Server Error",
                              "The upload cannot be stored.");
        }
        rs->req.body_path = rs->spool_path;
    }
    rs->req.body_size = rs->received;

    struct http_resp resp = {0};
    http__set_current_sandbox(rs->sandbox);
    rs->route->handler(srv->app, &rs->req, &resp);
    http__set_current_sandbox(NULL);
    unlink_spool(rs);
    rs->req.body_path = NULL;
    return send_resp(rs, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct req_state *rs = *con_cls;
    if (!rs) {
        /* the state and its three path buffers in one allocation */
        size_t n = strlen(url);
        rs = xcalloc(1, sizeof(*rs) + 3 * (n + 1));
        rs->raw_len = n;
        rs->raw_path = rs->paths;
        rs->path = rs->paths + (n + 1);
        rs->scratch = rs->paths + 2 * (n + 1);
        memcpy(rs->raw_path, url, n + 1);
        rs->srv = srv;
        rs->mc = mc;
        rs->fd = -1;
        /* only the debug log line reads the duration: no clock read per request without it */
        rs->t0_ns = log_enabled(LOG_DEBUG) ? clock_mono_ns() : 0;
        rs->method_name = method;
        *con_cls = rs;
        atomic_fetch_add(&srv->in_flight, 1);
        bool responded = false;
        enum MHD_Result r = first_call(rs, method, &responded);
        if (responded || r != MHD_YES)
            rs->route = NULL; /* answered already: later calls only drain */
        return r;
    }
    if (!rs->route) {
        /* An early answer was queued; whatever body still arrives is discarded. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        take_chunk(rs, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    enum MHD_Result r = finish(rs);
    rs->route = NULL;
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)mc;
    struct http_server *srv = cls;
    struct req_state *rs = *con_cls;
    if (!rs)
        return;
    *con_cls = NULL;
    if (rs->t0_ns) {
        double ms = (double)(clock_mono_ns() - rs->t0_ns) / 1e6;
        log_debug("http method=%s path=%s status=%d duration_ms=%.3f%s", rs->method_name,
                  rs->raw_path, rs->status, ms,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
    }
    close_spool(rs);
    unlink_spool(rs);
    if (rs->sink.release)
        rs->sink.release(rs->sink.ctx);
    buf_free(&rs->body);
    free(rs->stage);
    free(rs->strings);
    free(rs);
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* Leave the string as received: the router decodes per segment, http_req_query per argument. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("microhttpd: %s", line);
}

/* ---------------------------------------------------------------------------------------------- */
/* Start / stop */

/* "host:port" (host may be "[v6]") -> a socket address. */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                          struct ing_err *err)
{
    if (!listen)
        return ing_err_set(err, ING_EINVAL, "http: no listen address");
    const char *colon = strrchr(listen, ':');
    if (!colon || colon[1] == '\0')
        return ing_err_set(err, ING_EINVAL, "http: listen address '%s' is not host:port", listen);
    char host[256];
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return ing_err_set(err, ING_EINVAL, "http: listen host too long");
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return ing_err_set(err, ING_EINVAL, "http: bad port in '%s'", listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        return ing_err_set(err, ING_EINVAL, "http: cannot resolve '%s': %s", host,
                           gai_strerror(rc));
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int http_server_start(struct http_server **out, const struct http_server_opts *opts,
                      const struct http_route *routes, size_t nroutes, void *app,
                      struct ing_err *err)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int ret = resolve_listen(opts->listen, &ss, &sslen, err);
    if (ret)
        return ret;
    (void)sslen;
    struct http_server *srv = xcalloc(1, sizeof(*srv));
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->route_lead = xcalloc(nroutes ? nroutes : 1, sizeof(*srv->route_lead));
    for (size_t i = 0; i < nroutes; i++)
        srv->route_lead[i] = routes[i].pattern ? pattern_lead(routes[i].pattern) : 0;
    srv->app = app;
    srv->spool_dir = xstrdup(opts->spool_dir ? opts->spool_dir : "/tmp");
    srv->max_json_body = opts->max_json_body ? opts->max_json_body : DEFAULT_MAX_JSON_BODY;
    atomic_init(&srv->in_flight, 0);
    unsigned threads = opts->threads ? opts->threads : DEFAULT_THREADS;

    /* TURBO: read, write and accept before asking epoll (the sockets are non-blocking, so a
     * miss is an EAGAIN): a keep-alive request costs fewer system calls. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    for (int attempt = 0; attempt < 2 && !srv->daemon; attempt++) {
        if (attempt == 1) /* no epoll in this build: let MHD choose */
            flags = (flags & ~(unsigned)MHD_USE_EPOLL) | MHD_USE_AUTO;
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, threads,
            MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
            MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
            MHD_OPTION_END);
    }
    if (!srv->daemon) {
        ret = ing_err_set(err, ING_EIO, "http: cannot listen on %s", opts->listen);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? (int)info->port : -1;
out:
    if (ret) {
        free(srv->route_lead);
        free(srv->spool_dir);
        free(srv);
        srv = NULL;
    }
    *out = srv;
    return ret;
}

int http_server_port(const struct http_server *srv)
{
    return srv ? srv->port : -1;
}

void http_server_stop(struct http_server *srv)
{
    if (!srv)
        return;
    /* Stop accepting, then let requests already being served finish (bounded), then stop. */
    MHD_socket lsock = MHD_quiesce_daemon(srv->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < STOP_WAIT_MS; waited += 10) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(srv->daemon);
    free(srv->route_lead);
    free(srv->spool_dir);
    free(srv);
}
