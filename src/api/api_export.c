/*
 * api_export.c - the Data Access API (/data/foundation/export): reading the lake back.
 *
 *   GET  /batches/{batchId}/files        the dataset files of a successful batch
 *   GET  /files/{dataSetFileId}          the listing of one dataset file (its Parquet part)
 *   GET  /files/{dataSetFileId}?path=N   the bytes of part N, with single Range support
 *   HEAD /files/{dataSetFileId}?path=N   the same headers without the body
 *   GET  /datasets/{datasetId}/preview   up to 100 converted rows of the latest successful batches
 *   GET  /batches/{batchId}/meta?path=P  a batch's diagnostics (diag.h): listings of row_errors and
 *                                        input_files, or one row_errors file
 *   GET  /batches/{batchId}/failed       the failed rows of a batch as JSON records (with _errors)
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

#include "ingest/diag.h"
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

typedef int export_get_fn(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                          struct ing_err *err);

/* Loads catalog object `id` into *doc with `get`; otherwise answers 404 (`no_such` for an id that
 * cannot be one, "<what> <id> was not found." for a missing one) or 500, and says false. */
static bool load_object(struct app *app, const struct http_req *req, struct http_resp *resp,
                        export_get_fn *get, const char *id, const char *what, const char *no_such,
                        json_t **doc, struct ing_err *err)
{
    if (!id_is_safe(id)) {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", no_such);
        return false;
    }
    if (get(app->catalog, req->sandbox, id, doc, err) != 0) {
        answer_catalog_error(resp, err, what, id);
        return false;
    }
    return true;
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
    if (!load_object(app, req, resp, catalog_batch_get, batch_id, "Batch", "No such batch.",
                     &batch, &err))
        goto out;
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
    if (!load_object(app, req, resp, catalog_file_get, file_id, "Dataset file",
                     "No such dataset file.", &doc, &err))
        goto out;
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
    if (!load_object(app, req, resp, catalog_dataset_get, dataset_id, "Dataset",
                     "No such dataset.", &dataset, &err))
        goto out;
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

/* ------------------------------------------------------------------------------------------ */
/* Diagnostics: /batches/{id}/meta and /batches/{id}/failed                                     */

/* The batch must exist (404 otherwise); returns its diagnostics folder, or NULL after answering. */
static char *diag_dir_for(struct app *app, struct http_req *req, struct http_resp *resp)
{
    const char *batch_id = req->params[0];
    json_t *batch = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    if (!load_object(app, req, resp, catalog_batch_get, batch_id, "Batch", "No such batch.",
                     &batch, &err))
        return NULL;
    json_decref(batch);
    return diag_batch_dir(lake_data_dir(app->lake), req->sandbox, batch_id);
}

/* One listing entry: {"name","length","_links":{"self":{"href":".../meta?path=<dir>%2F<name>"}}}. */
static json_t *meta_entry(const char *base, const char *batch_id, const char *dir,
                          const char *name, int64_t length)
{
    char *rel = dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
    char *q = query_encode(rel);
    char *href = xasprintf("%s/batches/%s/meta?path=%s", base, batch_id, q);
    char len[32];
    snprintf(len, sizeof(len), "%" PRId64, length);
    json_t *e = json_pack("{s:s, s:s, s:{s:{s:s}}}", "name", name, "length", len, "_links",
                          "self", "href", href);
    free(href);
    free(q);
    free(rel);
    return e;
}

struct listing {
    json_t *names;     /* [[name, size], ...] */
};

static int collect_listing(void *ctx, const char *relpath, int64_t size)
{
    struct listing *l = ctx;
    if (relpath[0] != '_' && relpath[0] != '.' && !strchr(relpath, '/'))
        json_array_append_new(l->names, json_pack("[s, I]", relpath, (json_int_t)size));
    return 0;
}

/* The input_files.json lines of a diagnostics folder, as an array of {"path","size"}. */
static json_t *read_input_files(const char *dir)
{
    json_t *out = json_array();
    char *path = xasprintf("%s/input_files.json", dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return out;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *doc = json_loads(line, 0, NULL);
        if (json_is_object(doc))
            json_array_append(out, doc);
        json_decref(doc);
    }
    free(line);
    fclose(f);
    return out;
}

/* Page `all` (array) by start/limit into a listing answer. */
static void answer_listing(struct http_resp *resp, json_t *all, int64_t start, int64_t limit)
{
    json_t *data = json_array();
    for (size_t i = (size_t)start; i < json_array_size(all) && (int64_t)json_array_size(data) < limit;
         i++)
        json_array_append(data, json_array_get(all, i));
    size_t count = json_array_size(data);
    http_resp_json_new(resp, 200, json_pack("{s:o, s:{s:I, s:I}}", "data", data, "_page", "limit",
                                            (json_int_t)limit, "count", (json_int_t)count));
}

static void h_batch_meta(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *batch_id = req->params[0];
    json_t *all = json_array(), *inputs = NULL;
    char *dir = NULL, *base = NULL, *sub = NULL;
    int64_t start, limit;
    if (!page_params(req, resp, &start, &limit) || !(dir = diag_dir_for(app, req, resp)))
        goto out;
    base = base_href(req);
    const char *want = http_req_query(req, "path");
    if (!want)
        want = "";
    size_t wlen = strlen(want);
    while (wlen > 0 && want[wlen - 1] == '/')
        wlen--; /* "row_errors/" lists like "row_errors" */
    if (wlen == 0) {
        /* The meta folder itself: its two entries, when the batch has them. */
        sub = xasprintf("%s/row_errors", dir);
        if (fs_exists(sub))
            json_array_append_new(all, meta_entry(base, batch_id, NULL, "row_errors", 0));
        free(sub);
        sub = xasprintf("%s/input_files.json", dir);
        if (fs_exists(sub))
            json_array_append_new(all, meta_entry(base, batch_id, NULL, "input_files",
                                                  fs_file_size(sub)));
        answer_listing(resp, all, start, limit);
        goto out;
    }
    if (wlen == strlen("row_errors") && !strncmp(want, "row_errors", wlen)) {
        sub = xasprintf("%s/row_errors", dir);
        struct listing l = {.names = json_array()};
        if (fs_exists(sub))
            fs_walk_files(sub, collect_listing, &l, NULL);
        size_t i;
        json_t *it;
        json_array_foreach(l.names, i, it) {
            json_array_append_new(all, meta_entry(base, batch_id, "row_errors",
                                                  json_string_value(json_array_get(it, 0)),
                                                  json_integer_value(json_array_get(it, 1))));
        }
        json_decref(l.names);
        answer_listing(resp, all, start, limit);
        goto out;
    }
    if (!strncmp(want, "row_errors/", 11)) {
        const char *name = want + 11;
        if (!fs_rel_path_ok(name) || strchr(name, '/') || name[0] == '_') {
            http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such meta file.");
            goto out;
        }
        sub = xasprintf("%s/row_errors/%s", dir, name);
        int64_t size = fs_file_size(sub);
        if (size < 0) {
            http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such meta file.");
            goto out;
        }
        resp->status = 200;
        resp->content_type = "application/json";
        resp->file_path = sub;
        resp->file_offset = 0;
        resp->file_length = size;
        sub = NULL;
        goto out;
    }
    inputs = read_input_files(dir);
    bool listing = wlen == strlen("input_files") && !strncmp(want, "input_files", wlen);
    const char *name = !strncmp(want, "input_files/", 12) ? want + 12 : NULL;
    if (!listing && !name) {
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found",
                        "No such meta path; the meta folder holds row_errors and input_files.");
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(inputs, i, it) {
        const char *path = json_string_value(json_object_get(it, "path"));
        if (!path)
            continue;
        if (listing) {
            json_array_append_new(all, meta_entry(base, batch_id, "input_files", path,
                                                  json_integer_value(json_object_get(it, "size"))));
        } else if (!strcmp(path, name)) {
            http_resp_json(resp, 200, it);
            goto out;
        }
    }
    if (listing)
        answer_listing(resp, all, start, limit);
    else
        http_resp_error(resp, 404, EXPORT_E_NOTFOUND, "Not Found", "No such input file.");
out:
    json_decref(all);
    json_decref(inputs);
    free(sub);
    free(base);
    free(dir);
}

/* Every failed row of the batch, from its row_errors files, in file order. */
static void h_batch_failed(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    json_t *data = json_array();
    char *dir = NULL, *line = NULL;
    struct listing l = {.names = json_array()};
    int64_t start, limit;
    if (!page_params(req, resp, &start, &limit) || !(dir = diag_dir_for(app, req, resp)))
        goto out;
    char *sub = xasprintf("%s/row_errors", dir);
    if (fs_exists(sub))
        fs_walk_files(sub, collect_listing, &l, NULL);
    int64_t seen = 0;
    size_t cap = 0;
    size_t i;
    json_t *it;
    json_array_foreach(l.names, i, it) {
        if ((int64_t)json_array_size(data) >= limit)
            break;
        char *path = xasprintf("%s/%s", sub, json_string_value(json_array_get(it, 0)));
        FILE *f = fopen(path, "r");
        free(path);
        if (!f)
            continue;
        while ((int64_t)json_array_size(data) < limit && getline(&line, &cap, f) > 0) {
            if (seen++ < start)
                continue;
            json_t *rec = json_loads(line, 0, NULL);
            if (rec)
                json_array_append_new(data, rec);
        }
        fclose(f);
    }
    free(sub);
    size_t count = json_array_size(data);
    http_resp_json_new(resp, 200, json_pack("{s:O, s:{s:I, s:I}}", "data", data, "_page", "limit",
                                            (json_int_t)limit, "count", (json_int_t)count));
out:
    free(line);
    json_decref(l.names);
    json_decref(data);
    free(dir);
}

static const struct http_route routes[] = {
    {HTTP_GET, EXPORT_BASE "/batches/{batchId}/files", h_batch_files, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/files/{dataSetFileId}", h_file, HTTP_BODY_NONE},
    {HTTP_HEAD, EXPORT_BASE "/files/{dataSetFileId}", h_file, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/datasets/{datasetId}/preview", h_preview, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/batches/{batchId}/meta", h_batch_meta, HTTP_BODY_NONE},
    {HTTP_GET, EXPORT_BASE "/batches/{batchId}/failed", h_batch_failed, HTTP_BODY_NONE},
};

const struct api_routes api_export_routes = {routes, ING_ARRAY_LEN(routes)};
