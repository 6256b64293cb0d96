/*
 * api_export.c - the Data Access API (/data/foundation/export): reading the lake back.
 *
 *   GET  /batches/{batchId}/files        the dataset files of a successful batch
 *   GET  /files/{dataSetFileId}          the listing of one dataset file (its Parquet part)
 *   GET  /files/{dataSetFileId}?path=N   the bytes of part N, with single Range support
 *   HEAD /files/{dataSetFileId}?path=N   the same headers without the body
 *   GET  /datasets/{datasetId}/preview   up to 100 converted rows of the latest successful batches
 *
 * Shapes follow data-access.yaml and notes/aep-api.md 2.6. Visibility is the catalog's: only
 * files of batches in "success" are listed, so readers never see half a batch. Files whose name
 * starts with '_' (the preview) are bookkeeping, never data files.
 */
#include "api/api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lake/lake.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/mem.h"

#define EXPORT_BASE "/data/foundation/export"
#define EXPORT_PAGE_MAX 100
#define EXPORT_PREVIEW_ROWS 100

#define EXPORT_E_BAD "EXPORT-1001-400"
#define EXPORT_E_NOTFOUND "EXPORT-1004-404"
#define EXPORT_E_RANGE "EXPORT-1016-416"
#define EXPORT_E_INTERNAL "EXPORT-1500-500"

/* "http://<host>/data/foundation/export" when the request names its host, else the bare path. */
static char *base_href(const struct http_req *req)
{
    const char *host = http_req_header(req, "Host");
    if (host && host[0])
        return xasprintf("http://%s" EXPORT_BASE, host);
    return xstrdup(EXPORT_BASE);
}

/* Percent-encode a query value (RFC 3986 unreserved characters kept). */
static char *query_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Numbers and strings as the string the Data Access API uses for created/size/records. */
static json_t *as_text(const json_t *v)
{
    if (json_is_string(v))
        return json_string(json_string_value(v));
    if (json_is_integer(v)) {
        char t[32];
        snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_string(t);
    }
    if (json_is_real(v)) {
        char t[32];
        snprintf(t, sizeof(t), "%.0f", json_real_value(v));
        return json_string(t);
    }
    return json_string("");
}

/* Parse a non-negative decimal query value; false when it is not one. */
static bool parse_count(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* start/limit paging (limit 1..100, default 100). False after answering 400. */
static bool page_params(const struct http_req *req, struct http_resp *resp, int64_t *start,
                        int64_t *limit)
{
    const char *s = http_req_query(req, "start");
    const char *l = http_req_query(req, "limit");
    *start = 0;
    *limit = EXPORT_PAGE_MAX;
    if ((s && !parse_count(s, start)) || (l && !parse_count(l, limit)) || (l && *limit == 0)) {
        http_resp_error(resp, 400, EXPORT_E_BAD, "Bad Request",
                        "start and limit must be non-negative integers (limit at least 1).");
        return false;
    }
    if (*limit > EXPORT_PAGE_MAX)
        *limit = EXPORT_PAGE_MAX;
    return true;
}

static void answer_catalog_error(struct http_resp *resp, const struct ing_err *err,
                                 const char *what, const char *id)
{
    char detail[400];
    if (err->code == ING_ENOTFOUND) {
        snprintf(detail, sizeof(detail), "%s %s was not found.", what, id);
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", detail);
    } else {
        http_resp_error(resp, 500, EXPORT_E_INTERNAL, "Internal Server Error", err->msg);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void h_batch_files(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *batch_id = req->params[0];
    json_t *batch = NULL, *files = NULL;
    char *base = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int64_t start, limit;
    if (!page_params(req, resp, &start, &limit))
        goto out;
    if (!id_is_safe(batch_id)) {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such batch.");
        goto out;
    }
    if (catalog_batch_get(app->catalog, req->sandbox, batch_id, &batch, &err) != 0) {
        answer_catalog_error(resp, &err, "Batch", batch_id);
        goto out;
    }
    json_t *data = json_array();
    const char *status = json_string_value(json_object_get(batch, "status"));
    if (status && !strcmp(status, "success")) {
        if (catalog_file_list(app->catalog, req->sandbox, batch_id, NULL, start, limit, &files,
                              &err) != 0) {
            json_decref(data);
            http_resp_error(resp, 500, EXPORT_E_INTERNAL, "Internal Server Error", err.msg);
            goto out;
        }
        base = base_href(req);
        const char *fid;
        json_t *doc;
        json_object_foreach(files, fid, doc) {
            char *href = xasprintf("%s/files/%s", base, fid);
            json_t *item = json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:{s:{s:s}}}",
                                     "dataSetFileId", fid, "dataSetViewId", "", "version", "1.0.0",
                                     "created", as_text(json_object_get(doc, "created")),
                                     "updated", as_text(json_object_get(doc, "updated")),
                                     "isValid", 1, "records",
                                     as_text(json_object_get(doc, "records")), "size",
                                     as_text(json_object_get(doc, "size")), "_links", "self",
                                     "href", href);
            free(href);
            json_array_append_new(data, item);
        }
    }
    size_t count = json_array_size(data);
    http_resp_json_new(resp, 200, json_pack("{s:o, s:{s:I, s:I}}", "data", data, "_page", "limit",
                                            (json_int_t)limit, "count", (json_int_t)count));
out:
    free(base);
    json_decref(files);
    json_decref(batch);
}

/* ------------------------------------------------------------------------------------------ */
/* Ranges (RFC 9110 14.2): one range of bytes; anything we do not understand is ignored, which
 * means the whole file (the RFC allows that). */

enum range_kind { RANGE_NONE, RANGE_PART, RANGE_UNSATISFIABLE };

/* Parse digits at *p into *out; false when there are none or they overflow. */
static bool parse_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static enum range_kind parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
    if (!h || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return RANGE_NONE;
    const char *p = skip_ows(h + 6);
    int64_t first = -1, last = -1;
    if (*p == '-') {
        p++;
        int64_t suffix;
        if (!parse_digits(&p, &suffix) || *skip_ows(p))
            return RANGE_NONE;
        if (suffix == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        if (suffix > size)
            suffix = size;
        *off = size - suffix;
        *len = suffix;
        return RANGE_PART;
    }
    if (!parse_digits(&p, &first) || *p != '-')
        return RANGE_NONE;
    p++;
    if (*skip_ows(p)) {
        if (!parse_digits(&p, &last) || *skip_ows(p) || last < first)
            return RANGE_NONE;
    }
    if (first >= size)
        return RANGE_UNSATISFIABLE;
    if (last < 0 || last >= size)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return RANGE_PART;
}

/* The bytes (or headers, for HEAD) of one part file. */
static void send_part(struct app *app, struct http_req *req, struct http_resp *resp,
                      const json_t *doc, const char *name)
{
    const char *dataset_id = json_string_value(json_object_get(doc, "dataSetId"));
    const char *batch_id = json_string_value(json_object_get(doc, "batchId"));
    if (!dataset_id || !batch_id || !id_is_safe(dataset_id) || !id_is_safe(batch_id) ||
        !fs_rel_path_ok(name) || name[0] == '_') {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such file.");
        return;
    }
    char *dir = lake_batch_dir(app->lake, req->sandbox, dataset_id, batch_id);
    char *path = xasprintf("%s/%s", dir, name);
    free(dir);
    int64_t size = fs_file_size(path);
    if (size < 0) {
        free(path);
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "The file is not in the lake.");
        return;
    }
    int64_t off = 0, len = size;
    char value[96];
    switch (parse_range(http_req_header(req, "Range"), size, &off, &len)) {
    case RANGE_UNSATISFIABLE:
        free(path);
        snprintf(value, sizeof(value), "bytes */%" PRId64, size);
        http_resp_error(resp, 416, EXPORT_E_RANGE, "Range Not Satisfiable",
                        "The requested range is outside the file.");
        http_resp_header(resp, "Content-Range", value);
        return;
    case RANGE_PART:
        resp->status = 206;
        snprintf(value, sizeof(value), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, off,
                 off + len - 1, size);
        http_resp_header(resp, "Content-Range", value);
        break;
    case RANGE_NONE:
        resp->status = 200;
        break;
    }
    http_resp_header(resp, "Accept-Ranges", "bytes");
    resp->content_type = "application/octet-stream";
    resp->file_path = path;
    resp->file_offset = off;
    resp->file_length = len;
}

/* GET and HEAD /files/{id}: a listing without ?path, the file's bytes with it. */
static void h_file(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *file_id = req->params[0];
    json_t *doc = NULL;
    char *base = NULL, *qname = NULL, *href = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    if (!id_is_safe(file_id)) {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such dataset file.");
        goto out;
    }
    if (catalog_file_get(app->catalog, req->sandbox, file_id, &doc, &err) != 0) {
        answer_catalog_error(resp, &err, "Dataset file", file_id);
        goto out;
    }
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (!name) {
        http_resp_error(resp, 500, EXPORT_E_INTERNAL, "Internal Server Error",
                        "The dataset file has no name.");
        goto out;
    }
    const char *want = http_req_query(req, "path");
    if (want) {
        if (strcmp(want, name) != 0) {
            http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found",
                            "The dataset file has no file of that name.");
            goto out;
        }
        send_part(app, req, resp, doc, name);
        goto out;
    }
    base = base_href(req);
    qname = query_encode(name);
    href = xasprintf("%s/files/%s?path=%s", base, file_id, qname);
    json_t *length = as_text(json_object_get(doc, "size"));
    http_resp_json_new(resp, 200,
                       json_pack("{s:[{s:s, s:o, s:{s:{s:s}}}], s:{s:i, s:i}}", "data", "name",
                                 name, "length", length, "_links", "self", "href", href, "_page",
                                 "limit", EXPORT_PAGE_MAX, "count", 1));
out:
    free(base);
    free(qname);
    free(href);
    json_decref(doc);
}

/* ------------------------------------------------------------------------------------------ */

/* Append the rows of one batch's _preview.json to `rows` until it holds `max`. */
static void append_preview(struct app *app, const char *sandbox, const char *dataset_id,
                           const char *batch_id, json_t *rows, size_t max)
{
    if (!id_is_safe(batch_id))
        return;
    char *dir = lake_batch_dir(app->lake, sandbox, dataset_id, batch_id);
    char *path = xasprintf("%s/_preview.json", dir);
    json_t *doc = fs_exists(path) ? json_load_file(path, 0, NULL) : NULL;
    size_t i;
    json_t *row;
    json_array_foreach(doc, i, row) {
        if (json_array_size(rows) >= max)
            break;
        json_array_append(rows, row);
    }
    json_decref(doc);
    free(path);
    free(dir);
}

static void h_preview(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *dataset_id = req->params[0];
    json_t *dataset = NULL, *files = NULL, *batches = json_array();
    struct ing_err err;
    ing_err_clear(&err);
    if (!id_is_safe(dataset_id)) {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such dataset.");
        goto out;
    }
    if (catalog_dataset_get(app->catalog, req->sandbox, dataset_id, &dataset, &err) != 0) {
        answer_catalog_error(resp, &err, "Dataset", dataset_id);
        goto out;
    }
    if (catalog_file_list(app->catalog, req->sandbox, NULL, dataset_id, 0, 0, &files, &err) != 0) {
        http_resp_error(resp, 500, EXPORT_E_INTERNAL, "Internal Server Error", err.msg);
        goto out;
    }
    /* Files come in creation order: their batches, newest last, each once. */
    const char *fid;
    json_t *doc;
    json_object_foreach(files, fid, doc) {
        json_t *b = json_object_get(doc, "batchId");
        size_t n = json_array_size(batches);
        if (json_is_string(b) && (n == 0 || !json_equal(json_array_get(batches, n - 1), b)))
            json_array_append(batches, b);
    }
    json_t *rows = json_array();
    for (size_t i = json_array_size(batches); i-- > 0 && json_array_size(rows) < EXPORT_PREVIEW_ROWS;) {
        const char *b = json_string_value(json_array_get(batches, i));
        /* A batch seen earlier in the list (files of batches interleaved) is read once. */
        bool seen = false;
        for (size_t j = i + 1; j < json_array_size(batches) && !seen; j++)
            seen = !strcmp(b, json_string_value(json_array_get(batches, j)));
        if (!seen)
            append_preview(app, req->sandbox, dataset_id, b, rows, EXPORT_PREVIEW_ROWS);
    }
    http_resp_json_new(resp, 200, json_pack("{s:o}", "data", rows));
out:
    json_decref(batches);
    json_decref(files);
    json_decref(dataset);
}

static const struct http_route routes[] = {
    {HTTP_GET, EXPORT_BASE "/batches/{batchId}/files", h_batch_files, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/files/{dataSetFileId}", h_file, HTTP_BODY_NONE},
    {HTTP_HEAD, EXPORT_BASE "/files/{dataSetFileId}", h_file, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/datasets/{datasetId}/preview", h_preview, HTTP_BODY_NONE},
};

const struct api_routes api_export_routes = {routes, ING_ARRAY_LEN(routes)};
