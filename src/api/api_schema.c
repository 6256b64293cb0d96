/*
 * api_schema.c - the Schema Registry API (/data/foundation/schemaregistry).
 *
 * Thin handlers over registry.h. Containers: "global" (the built-in XDM resources, read-only) and
 * "tenant" (per sandbox). Kinds: classes, behaviors (global), fieldgroups and its legacy alias
 * mixins, datatypes, schemas, descriptors. The Accept header picks the form as AEP's does:
 * lists give the short {$id, meta:altId, version, title} items for application/vnd.adobe.xed-id+json
 * (and by default) and whole documents for application/vnd.adobe.xed+json; lookups give the
 * stored document for xed(+notext) and the resolved one for xed-full(+notext, +desc). Lists
 * accept orderby, start, limit and property=<name>==<value> filters. Errors use AEP's XDM-* codes.
 */
#include "api/api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

#define SR_BASE "/data/foundation/schemaregistry"
#define SR_LIMIT_MAX 500
#define SR_MAX_FILTERS 16

/* ---- errors ---------------------------------------------------------------------------------- */

static void sr_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    switch (api_status_for(rc)) {
    case 400: http_resp_error(resp, 400, "XDM-1000-400", "Bad Request", detail); break;
    case 404: http_resp_error(resp, 404, "XDM-1010-404", "Resource not found", detail); break;
    case 409: http_resp_error(resp, 409, "XDM-1011-409", "Conflict", detail); break;
    case 413: http_resp_error(resp, 413, "XDM-1013-413", "Payload Too Large", detail); break;
    case 503: http_resp_error(resp, 503, "XDM-1503-503", "Service Unavailable", detail); break;
    default:
        log_error("schema registry request failed: %s (%s)", detail, ing_strerror(rc));
        http_resp_error(resp, 500, "XDM-1500-500", "Internal Server Error", detail);
        break;
    }
}

static void sr_not_found(struct http_resp *resp, const char *what)
{
    char detail[300];
    snprintf(detail, sizeof(detail), "The requested resource %s was not found.", what);
    http_resp_error(resp, 404, "XDM-1010-404", "Resource not found", detail);
}

/* The answer to one registry call: a 404 naming `missing` for ING_ENOTFOUND (when missing is not
 * NULL; otherwise it is mapped like any other error), the mapped error for any other failure, and
 * on success `status` with `out` as the body (204 carries no body). */
static void sr_reply(struct http_resp *resp, int rc, const struct ing_err *err, const char *missing,
                     int status, json_t *out)
{
    if (rc == ING_ENOTFOUND && missing)
        sr_not_found(resp, missing);
    else if (rc)
        sr_fail(resp, rc, err);
    else if (status == 204)
        resp->status = 204;
    else
        http_resp_json_new(resp, status, out);
}

/* Container and kind from the path; answers 404 itself when they make no sense. */
static bool sr_target(struct http_req *req, struct http_resp *resp, size_t ci, size_t ki,
                      enum registry_container *c, enum registry_kind *k)
{
    if (ci < req->nparams && registry_container_parse(req->params[ci], c) != 0) {
        sr_not_found(resp, req->params[ci]);
        return false;
    }
    if (ki < req->nparams && registry_kind_parse(req->params[ki], k) != 0) {
        sr_not_found(resp, req->params[ki]);
        return false;
    }
    return true;
}

/* ---- Accept ---------------------------------------------------------------------------------- */

enum sr_form { FORM_ID, FORM_XED, FORM_FULL };

static enum sr_form sr_accept(const struct http_req *req, bool listing)
{
    const char *a = http_req_header(req, "accept");
    if (!a)
        return listing ? FORM_ID : FORM_XED;
    if (strstr(a, "xed-full"))
        return FORM_FULL;
    if (strstr(a, "xed-id"))
        return FORM_ID;
    if (strstr(a, "xed"))
        return FORM_XED;
    return listing ? FORM_ID : FORM_XED;
}

/* ---- list queries: property filters, orderby, start, limit ------------------------------------ */

struct sr_filter {
    char *name;
    char *value; /* NULL: the property must exist */
    bool negate;
};

struct sr_query {
    struct sr_filter filters[SR_MAX_FILTERS];
    size_t nfilters;
    char *orderby;  /* without the leading '-' */
    bool desc;
    const char *start;
    long limit;     /* <= 0: all */
};

static void sr_query_free(struct sr_query *q)
{
    for (size_t i = 0; i < q->nfilters; i++) {
        free(q->filters[i].name);
        free(q->filters[i].value);
    }
    free(q->orderby);
}

/* "a==x,b!=y,c" -> filters. */
static void parse_property(struct sr_query *q, const char *spec)
{
    char *copy = xstrdup(spec);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && q->nfilters < SR_MAX_FILTERS;
         tok = strtok_r(NULL, ",", &save)) {
        struct sr_filter *f = &q->filters[q->nfilters];
        char *eq = strstr(tok, "==");
        char *ne = strstr(tok, "!=");
        char *op = eq && (!ne || eq < ne) ? eq : ne;
        if (op) {
            f->name = xstrndup(tok, (size_t)(op - tok));
            f->value = xstrdup(op + 2);
            f->negate = op == ne;
        } else {
            f->name = xstrdup(tok);
            f->value = NULL;
            f->negate = false;
        }
        q->nfilters++;
    }
    free(copy);
}

static void sr_query_parse(const struct http_req *req, struct sr_query *q)
{
    memset(q, 0, sizeof(*q));
    const char *prop = http_req_query(req, "property");
    if (prop && prop[0])
        parse_property(q, prop);
    const char *ob = http_req_query(req, "orderby");
    if (!ob)
        ob = http_req_query(req, "orderBy");
    if (ob && ob[0]) {
        q->desc = ob[0] == '-';
        const char *name = ob + (ob[0] == '-' || ob[0] == '+');
        const char *comma = strchr(name, ',');
        q->orderby = comma ? xstrndup(name, (size_t)(comma - name)) : xstrdup(name);
    }
    q->start = http_req_query(req, "start");
    const char *lim = http_req_query(req, "limit");
    if (lim && lim[0]) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end == '\0' && v > 0)
            q->limit = v > SR_LIMIT_MAX ? SR_LIMIT_MAX : v;
    }
}

/* A property value as text for comparison; numbers and booleans printed. */
static bool value_matches(const json_t *v, const char *want)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), want) == 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            if (value_matches(e, want))
                return true;
        return false;
    }
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return strcmp(buf, want) == 0;
    }
    if (json_is_boolean(v))
        return strcmp(json_is_true(v) ? "true" : "false", want) == 0;
    return false;
}

static bool passes(const struct sr_query *q, const json_t *doc)
{
    for (size_t i = 0; i < q->nfilters; i++) {
        const struct sr_filter *f = &q->filters[i];
        json_t *v = json_object_get(doc, f->name);
        bool ok = f->value ? v && value_matches(v, f->value) : v != NULL;
        if (ok == f->negate)
            return false;
    }
    return true;
}

static const char *sort_key(const json_t *doc, const char *name)
{
    const char *s = json_string_value(json_object_get(doc, name));
    return s ? s : "";
}

static int cmp_docs(const void *a, const void *b, void *ctx)
{
    const struct sr_query *q = ctx;
    const json_t *da = *(json_t *const *)a, *db = *(json_t *const *)b;
    int c = strcmp(sort_key(da, q->orderby), sort_key(db, q->orderby));
    return q->desc ? -c : c;
}

/* Filter, order, page: a new array (borrowed items incref'd). *more says whether the limit cut. */
static json_t *apply_query(const struct sr_query *q, const json_t *docs, bool *more)
{
    size_t n = json_array_size(docs), k = 0;
    json_t **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        if (passes(q, d))
            v[k++] = d;
    }
    if (q->orderby && k > 1)
        qsort_r(v, k, sizeof(*v), cmp_docs, (void *)q);
    json_t *out = json_array();
    *more = false;
    for (size_t i = 0; i < k; i++) {
        if (q->orderby && q->start) {
            int c = strcmp(sort_key(v[i], q->orderby), q->start);
            if (q->desc ? c >= 0 : c <= 0)
                continue; /* AEP: strictly after the start value of the primary sort field */
        }
        if (q->limit > 0 && json_array_size(out) >= (size_t)q->limit) {
            *more = true;
            break;
        }
        json_array_append(out, v[i]);
    }
    free(v);
    return out;
}

static json_t *short_item(const json_t *doc)
{
    json_t *o = json_object();
    static const char *const keys[] = {"$id", "meta:altId", "version", "title"};
    for (size_t i = 0; i < ING_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (v)
            json_object_set(o, keys[i], v);
    }
    return o;
}

/* {"results":[...],"_page":{"orderby","next","count"},"_links":{"next"}} */
static json_t *list_body(const struct sr_query *q, json_t *page, bool more, bool short_form,
                         const char *container, const char *kind)
{
    json_t *results = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(page, i, d)
        json_array_append_new(results, short_form ? short_item(d) : json_incref(d));
    json_t *next = json_null(), *next_link = json_null();
    if (more && json_array_size(page) > 0) {
        const json_t *last = json_array_get(page, json_array_size(page) - 1);
        const char *ob = q->orderby ? q->orderby : "$id";
        next = json_string(sort_key(last, ob));
        char *href = xasprintf(SR_BASE "/%s/%s?orderby=%s%s&start=%s&limit=%ld", container, kind,
                               q->desc ? "-" : "", ob, sort_key(last, ob), q->limit);
        next_link = json_pack("{s:s}", "href", href);
        free(href);
    }
    return json_pack("{s:o s:{s:s? s:o s:I} s:{s:o}}", "results", results, "_page", "orderby",
                     q->orderby, "next", next, "count", (json_int_t)json_array_size(results),
                     "_links", "next", next_link);
}

/* ---- handlers: resources --------------------------------------------------------------------- */

/* GET /{container}/{kind} */
static void h_list(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind k;
    if (!sr_target(req, resp, 0, 1, &c, &k))
        return;
    if (k == REGISTRY_BEHAVIOR && c == REGISTRY_TENANT) {
        sr_not_found(resp, "tenant behaviors");
        return;
    }
    struct ing_err err;
    ing_err_clear(&err);
    json_t *docs = NULL;
    int rc = registry_list(app->registry, req->sandbox, c, k, &docs, &err);
    if (rc) {
        sr_fail(resp, rc, &err);
        return;
    }
    struct sr_query q;
    sr_query_parse(req, &q);
    bool more;
    json_t *page = apply_query(&q, docs, &more);
    json_t *body = list_body(&q, page, more, sr_accept(req, true) == FORM_ID, req->params[0],
                             req->params[1]);
    http_resp_json_new(resp, 200, body);
    json_decref(page);
    json_decref(docs);
    sr_query_free(&q);
}

/* GET /{container}/{kind}/{id} */
static void h_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind k;
    if (!sr_target(req, resp, 0, 1, &c, &k))
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *doc = NULL;
    int rc = sr_accept(req, false) == FORM_FULL
                 ? registry_get_full(app->registry, req->sandbox, c, k, req->params[2], &doc, &err)
                 : registry_get(app->registry, req->sandbox, c, k, req->params[2], &doc, &err);
    sr_reply(resp, rc, &err, req->params[2], 200, doc);
}

/* POST /tenant/{kind} */
static void h_create(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind k;
    if (!sr_target(req, resp, SIZE_MAX, 0, &c, &k))
        return;
    json_t *body = api_parse_body(req, resp, "XDM-1000-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = registry_create(app->registry, req->sandbox, k, body, &out, &err);
    json_decref(body);
    sr_reply(resp, rc, &err, NULL, 201, out);
}

/* PUT and PATCH /tenant/{kind}/{id} */
static void h_update(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind k;
    if (!sr_target(req, resp, SIZE_MAX, 0, &c, &k))
        return;
    json_t *body = api_parse_body(req, resp, "XDM-1000-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = req->method == HTTP_PATCH
                 ? registry_patch(app->registry, req->sandbox, k, req->params[1], body, &out, &err)
                 : registry_replace(app->registry, req->sandbox, k, req->params[1], body, &out,
                                    &err);
    json_decref(body);
    sr_reply(resp, rc, &err, req->params[1], 200, out);
}

/* DELETE /tenant/{kind}/{id} */
static void h_delete(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind k;
    if (!sr_target(req, resp, SIZE_MAX, 0, &c, &k))
        return;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = registry_delete(app->registry, req->sandbox, k, req->params[1], &err);
    sr_reply(resp, rc, &err, req->params[1], 204, NULL);
}

/* GET /stats */
static void h_stats(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    static const struct { const char *name; enum registry_kind kind; } counted[] = {
        {"schemas", REGISTRY_SCHEMA}, {"mixins", REGISTRY_FIELDGROUP},
        {"datatypes", REGISTRY_DATATYPE}, {"classes", REGISTRY_CLASS},
    };
    json_t *counts = json_object();
    for (size_t i = 0; i < ING_ARRAY_LEN(counted); i++) {
        struct ing_err err;
        int64_t n = 0;
        int rc = registry_count(app->registry, req->sandbox, counted[i].kind, &n, &err);
        if (rc) {
            json_decref(counts);
            sr_fail(resp, rc, &err);
            return;
        }
        json_object_set_new(counts, counted[i].name, json_integer(n));
    }
    json_object_set_new(counts, "unions", json_integer(0));
    const char *org = http_req_header(req, "x-gw-ims-org-id");
    json_t *body = json_pack("{s:s s:s s:o s:[] s:[] s:[]}", "imsOrg",
                             org && org[0] ? org : (app->ims_org ? app->ims_org : ""), "tenantId",
                             registry_tenant(app->registry), "counts", counts,
                             "recentlyCreatedResources", "recentlyUpdatedResources", "classUsage");
    http_resp_json_new(resp, 200, body);
}

/* ---- handlers: descriptors ------------------------------------------------------------------- */

/* GET /{container}/descriptors: grouped by @type (xdm-id: ids, xdm-link: paths, else objects), or
 * a paged "results" array for the xdm-v2 forms. */
static void h_desc_list(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind unused;
    if (!sr_target(req, resp, 0, SIZE_MAX, &c, &unused))
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *docs = NULL;
    int rc = c == REGISTRY_TENANT ? registry_descriptor_list(app->registry, req->sandbox, &docs, &err)
                                  : (docs = json_array(), 0);
    if (rc) {
        sr_fail(resp, rc, &err);
        return;
    }
    const char *accept = http_req_header(req, "accept");
    bool ids = accept && strstr(accept, "-id+");
    bool links = accept && strstr(accept, "-link+");
    bool v2 = accept && strstr(accept, "xdm-v2");
    struct sr_query q;
    sr_query_parse(req, &q);
    bool more;
    json_t *page = apply_query(&q, docs, &more);
    json_t *body;
    size_t i;
    json_t *d;
    if (v2) {
        json_t *results = json_array();
        json_array_foreach(page, i, d)
            json_array_append_new(results, ids ? json_incref(json_object_get(d, "@id"))
                                               : json_incref(d));
        body = json_pack("{s:o s:{s:I s:n}}", "results", results, "_page", "count",
                         (json_int_t)json_array_size(results), "next");
    } else {
        body = json_object();
        json_array_foreach(page, i, d) {
            const char *type = json_string_value(json_object_get(d, "@type"));
            if (!type)
                continue;
            json_t *group = json_object_get(body, type);
            if (!group) {
                group = json_array();
                json_object_set_new(body, type, group);
            }
            const char *id = json_string_value(json_object_get(d, "@id"));
            if (ids)
                json_array_append_new(group, json_string(id ? id : ""));
            else if (links)
                json_array_append_new(group, json_sprintf("/descriptors/%s", id ? id : ""));
            else
                json_array_append(group, d);
        }
    }
    http_resp_json_new(resp, 200, body);
    json_decref(page);
    json_decref(docs);
    sr_query_free(&q);
}

static void h_desc_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    enum registry_container c;
    enum registry_kind unused;
    if (!sr_target(req, resp, 0, SIZE_MAX, &c, &unused))
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *doc = NULL;
    int rc = c == REGISTRY_TENANT
                 ? registry_descriptor_get(app->registry, req->sandbox, req->params[1], &doc, &err)
                 : ING_ENOTFOUND;
    sr_reply(resp, rc, &err, req->params[1], 200, doc);
}

static void h_desc_create(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "XDM-1000-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = registry_descriptor_create(app->registry, req->sandbox, body, &out, &err);
    json_decref(body);
    sr_reply(resp, rc, &err, NULL, 201, out);
}

static void h_desc_put(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "XDM-1000-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = registry_descriptor_replace(app->registry, req->sandbox, req->params[0], body, &out,
                                         &err);
    json_decref(body);
    /* A missing thing the body names (err.field set) is an error, not a 404 of this id. */
    sr_reply(resp, rc, &err, err.field[0] ? NULL : req->params[0], 200, out);
}

static void h_desc_delete(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = registry_descriptor_delete(app->registry, req->sandbox, req->params[0], &err);
    sr_reply(resp, rc, &err, req->params[0], 204, NULL);
}

/* First match wins: the literal paths come before the {container}/{kind} patterns. */
static const struct http_route routes[] = {
    {HTTP_GET, SR_BASE "/stats", h_stats, HTTP_BODY_NONE},
    {HTTP_GET, SR_BASE "/{container}/descriptors", h_desc_list, HTTP_BODY_NONE},
    {HTTP_GET, SR_BASE "/{container}/descriptors/{id}", h_desc_get, HTTP_BODY_NONE},
    {HTTP_POST, SR_BASE "/tenant/descriptors", h_desc_create, HTTP_BODY_JSON},
    {HTTP_PUT, SR_BASE "/tenant/descriptors/{id}", h_desc_put, HTTP_BODY_JSON},
    {HTTP_DELETE, SR_BASE "/tenant/descriptors/{id}", h_desc_delete, HTTP_BODY_NONE},
    {HTTP_GET, SR_BASE "/{container}/{kind}", h_list, HTTP_BODY_NONE},
    {HTTP_GET, SR_BASE "/{container}/{kind}/{*id}", h_get, HTTP_BODY_NONE},
    {HTTP_POST, SR_BASE "/tenant/{kind}", h_create, HTTP_BODY_JSON},
    {HTTP_PUT, SR_BASE "/tenant/{kind}/{*id}", h_update, HTTP_BODY_JSON},
    {HTTP_PATCH, SR_BASE "/tenant/{kind}/{*id}", h_update, HTTP_BODY_JSON},
    {HTTP_DELETE, SR_BASE "/tenant/{kind}/{*id}", h_delete, HTTP_BODY_NONE},
};

const struct api_routes api_schema_routes = {routes, ING_ARRAY_LEN(routes)};
