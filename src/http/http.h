/*
 * http.h - the HTTP layer: a libmicrohttpd server with a route table.
 *
 * The only module that includes <microhttpd.h>. It parses requests, spools bodies and hands each
 * request to a handler as a struct http_req; the handler fills a struct http_resp. Handlers never
 * see libmicrohttpd.
 *
 * Bodies: routes declared with HTTP_BODY_JSON get the body in memory (capped by
 * http_server_opts.max_json_body; larger bodies get 413 before the handler runs). Routes declared
 * with HTTP_BODY_FILE get the body streamed to a temporary file under opts.spool_dir: req->body_path
 * names it, and the handler may rename(2) it away (it is unlinked after the handler returns if it is
 * still there). No upload is ever held whole in memory.
 *
 * Threads: handlers run on the server's thread pool, several at once; a handler must only touch
 * shared state through thread-safe modules. A request and its response belong to one thread.
 */
#ifndef ING_HTTP_HTTP_H
#define ING_HTTP_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS };

enum http_body_mode {
    HTTP_BODY_NONE = 0, /* body ignored (still drained) */
    HTTP_BODY_JSON,     /* body kept in memory: req->body / req->body_len */
    HTTP_BODY_FILE,     /* body streamed to req->body_path; the handler keeps the file (rename
                           after fsync), so its write-back to disk starts while it arrives */
    HTTP_BODY_FILE_RANGE, /* the same for a byte range of a larger file (Content-Range): kept
                           only when it starts at byte 0; other ranges are copied by the handler,
                           so their spool files need not reach the disk */
    HTTP_BODY_SINK,     /* the handler may take the body itself: it is called first when the
                           headers are in, with req->sink set, and may fill *req->sink (without
                           answering); the body's bytes then go to sink->write and the second
                           call (req->sink NULL) has req->body_sink. When it leaves *req->sink
                           empty, the body is spooled as with HTTP_BODY_FILE_RANGE */
};

/* Where an HTTP_BODY_SINK body goes. write takes the bytes in order (n > 0; errors are the
 * sink's to keep and report); release is called once when the request ends, answered or not
 * (after the handler's second call, or when the client went away). */
struct http_body_sink {
    void *ctx;
    void (*write)(void *ctx, const char *data, size_t n);
    void (*release)(void *ctx);
};

#define HTTP_MAX_PARAMS 8

struct http_req {
    enum http_method method;
    const char *path;            /* decoded path, without the query string */
    const char *params[HTTP_MAX_PARAMS]; /* path captures, in pattern order ({name} and {*rest}) */
    size_t nparams;
    const char *body;            /* HTTP_BODY_JSON: NUL-terminated body (may be ""); else NULL */
    size_t body_len;
    const char *body_path;       /* HTTP_BODY_FILE: spooled body file; else NULL */
    int64_t body_size;           /* bytes received */
    struct http_body_sink *sink; /* HTTP_BODY_SINK, first call only: fill it to take the body */
    void *body_sink;             /* HTTP_BODY_SINK, second call: the ctx of the sink that took
                                    the body (body_path is NULL then); else NULL */
    const char *sandbox;         /* x-sandbox-name, lower-case, default "prod"; validated safe id */
    void *conn;                  /* opaque, for http_req_header/http_req_query */
};

/* Header and query lookups; the returned strings are borrowed for the request's lifetime.
 * NULL when absent. Header names are case-insensitive. */
const char *http_req_header(const struct http_req *req, const char *name);
const char *http_req_query(const struct http_req *req, const char *name);
/* Call fn for every query argument (name, value may be NULL); stops when fn returns non-zero. */
typedef int http_query_fn(void *ctx, const char *name, const char *value);
int http_req_query_each(const struct http_req *req, http_query_fn *fn, void *ctx);

struct http_resp {
    int status;                  /* default 200 */
    struct buf body;             /* response body (owned by the server; freed after sending) */
    const char *content_type;    /* static string; default "application/json" when body is set */
    char *file_path;             /* when set: send this file instead of body (owned: freed by server) */
    int64_t file_offset;         /* with file_path: first byte to send */
    int64_t file_length;         /* with file_path: bytes to send (-1 = to the end) */
    char *headers[16];           /* extra "Name: value" lines (owned; use http_resp_header) */
    size_t nheaders;
};

/* Add a response header (copied). */
void http_resp_header(struct http_resp *resp, const char *name, const char *value);
/* Set status and a JSON body (serialised compactly; `doc` is borrowed). */
void http_resp_json(struct http_resp *resp, int status, const json_t *doc);
/* Set status and take ownership of `doc` (decref'd). Convenience for literal builders. */
void http_resp_json_new(struct http_resp *resp, int status, json_t *doc);
/*
 * AEP problem-details error body:
 *   {"type":"http://ns.adobe.com/aep/errors/<code>","title":<title>,"status":<status>,
 *    "detail":<detail>,"report":{...}}
 * `code` is an AEP error code such as "INGEST-1212-400" or "CAT-1001-404"; detail may be NULL.
 */
void http_resp_error(struct http_resp *resp, int status, const char *code, const char *title,
                     const char *detail);

typedef void http_handler_fn(void *app, struct http_req *req, struct http_resp *resp);

struct http_route {
    enum http_method method;
    const char *pattern;         /* "/data/foundation/catalog/dataSets/{id}"; a final "{*path}"
                                    captures the rest of the path, slashes included */
    http_handler_fn *handler;
    enum http_body_mode body;
};

struct http_server_opts {
    const char *listen;          /* "127.0.0.1:8080" */
    const char *spool_dir;       /* where HTTP_BODY_FILE bodies land (same file system as staging) */
    size_t max_json_body;        /* default 16 MiB */
    unsigned threads;            /* worker threads for requests; default 4 */
};

struct http_server;

/* Start listening. Routes and app are borrowed and must outlive the server. */
int http_server_start(struct http_server **out, const struct http_server_opts *opts,
                      const struct http_route *routes, size_t nroutes, void *app,
                      struct ing_err *err);
/* Actual bound port (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* Stop accepting, finish in-flight requests, free. NULL is a no-op. */
void http_server_stop(struct http_server *srv);

/* Match `path` against a route pattern; fills params (pointers into `scratch`, which must hold
 * strlen(path)+1 bytes). Exposed for the unit tests and the fuzz target. */
bool http_route_match(const char *pattern, const char *path, char *scratch, const char **params,
                      size_t *nparams);

#endif
