/*
 * api_profile.c - Real-Time Customer Profile APIs: Profile Access (/data/core/ups/access/entities)
 * and merge policies (/data/core/ups/config/mergePolicies).
 *
 * Thin handlers over profile/profile.h. Profile lookups answer {"<entityId>": {...}} (GET and
 * POST); experience events answer {"_page", "children", "_links"} with paging by `start` (an
 * offset). Errors carry AEP's problem shape plus the Profile API's own fields
 * ({"message": "UPS-...: ...", "statusCode": "404"}), so both kinds of client find what they
 * read: 400 bad parameters, 404 no profile, 422 a graph over the identity limit.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

#define UPS_BASE "/data/core/ups"
#define MP_BASE UPS_BASE "/config/mergePolicies"
#define MAX_POST_IDENTITIES 1000
#define MAX_FIELDS 64

static void ups_error(struct http_resp *resp, int status, const char *code, const char *title,
                      const char *detail)
{
    char *type = xasprintf("http://ns.adobe.com/aep/errors/%s", code);
    char *message = xasprintf("%s: %s", code, detail ? detail : title);
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    json_t *doc = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title", title,
                            "status", status, "detail", detail ? detail : title, "message",
                            message, "statusCode", st);
    free(type);
    free(message);
    if (!doc) { /* text that is not UTF-8 (echoed input): fall back to the plain shape */
        http_resp_error(resp, status, code, title, NULL);
        return;
    }
    http_resp_json_new(resp, status, doc);
}

static void fail(struct http_resp *resp, int rc, const struct ing_err *err, const char *area)
{
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    char code[40];
    switch (rc) {
    case ING_ENOTFOUND:
        snprintf(code, sizeof(code), "UPS-%s-1000404", area);
        ups_error(resp, 404, code, "Not Found", detail);
        break;
    case ING_ETOOBIG:
        snprintf(code, sizeof(code), "UPS-%s-1000422", area);
        ups_error(resp, 422, code, "Too many related identities", detail);
        break;
    case ING_EINVAL:
    case ING_ESTATE:
        snprintf(code, sizeof(code), "UPS-%s-1000400", area);
        ups_error(resp, 400, code, "Bad Request", detail);
        break;
    default:
        log_error("profile request failed: %s (%s)", detail, ing_strerror(rc));
        snprintf(code, sizeof(code), "UPS-%s-1000500", area);
        ups_error(resp, 500, code, "Internal Server Error", detail);
        break;
    }
}

static void bad_request(struct http_resp *resp, const char *area, const char *detail)
{
    struct ing_err e;
    ing_err_clear(&e);
    ing_err_set(&e, ING_EINVAL, "%s", detail);
    fail(resp, ING_EINVAL, &e, area);
}

/* ---------------------------------------------------------------------------------------------- */
/* Parameters */

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    double v = strtod(s, &end); /* AEP examples send "1539838505" and 1.53983851E+9 alike */
    if (*end || v != v || v < -9e15 || v > 9e15)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Split "a,b,c" into at most MAX_FIELDS borrowed pieces of `copy` (which it edits). */
static size_t split_fields(char *copy, const char **fields)
{
    size_t n = 0;
    for (char *tok = strtok(copy, ","); tok && n < MAX_FIELDS; tok = strtok(NULL, ","))
        if (*tok)
            fields[n++] = tok;
    return n;
}

static void url_encode(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf_append_byte(b, *p);
        } else {
            buf_append_byte(b, '%');
            buf_append_byte(b, (uint8_t)hex[*p >> 4]);
            buf_append_byte(b, (uint8_t)hex[*p & 15]);
        }
    }
}

struct link_ctx {
    struct buf *b;
    bool first;
};

/* Copy a query argument into the next-page link (all but `start`, which the link sets). */
static int add_query_arg(void *ctx, const char *name, const char *value)
{
    struct link_ctx *l = ctx;
    if (!strcmp(name, "start"))
        return 0;
    if (!l->first)
        buf_append_byte(l->b, '&');
    l->first = false;
    url_encode(l->b, name);
    if (value) {
        buf_append_byte(l->b, '=');
        url_encode(l->b, value);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Entities */

struct entity_params {
    bool events;
    const char *id, *ns;            /* the profile identity (ns NULL: an XID) */
    const char *policy_id;
    const char *fields[MAX_FIELDS];
    size_t nfields;
    struct profile_events_query q;
};

static bool schema_ok(const char *schema, bool *events)
{
    if (!schema)
        return false;
    *events = !strcmp(schema, PROFILE_EVENT_SCHEMA);
    return *events || !strcmp(schema, PROFILE_SCHEMA);
}

static void events_answer(struct http_resp *resp, const struct http_req *req, json_t *children,
                          int64_t total, const struct profile_events_query *q, bool with_links)
{
    int64_t offset = q->offset > 0 ? q->offset : 0;
    int64_t count = (int64_t)json_array_size(children);
    bool more = offset + count < total;
    char next[32] = "";
    if (more)
        snprintf(next, sizeof(next), "%lld", (long long)(offset + count));
    char start[32];
    snprintf(start, sizeof(start), "%lld", (long long)offset);
    json_t *links = json_object();
    if (more && with_links) {
        struct buf href = {0};
        buf_append_str(&href, "/data/core/ups/access/entities?");
        struct link_ctx l = {&href, true};
        http_req_query_each(req, add_query_arg, &l);
        buf_printf(&href, "%sstart=%s", l.first ? "" : "&", next);
        json_object_set_new(links, "next", json_pack("{s:s}", "href", buf_cstr(&href)));
        buf_free(&href);
    }
    json_t *doc = json_pack("{s:{s:s, s:s, s:I, s:s}, s:o, s:o}", "_page", "orderby",
                            q->desc ? "-timestamp" : "+timestamp", "start", start, "count",
                            (json_int_t)count, "next", next, "children", children, "_links",
                            links);
    http_resp_json_new(resp, 200, doc);
}

static void entity_lookup(struct app *app, struct http_req *req, struct http_resp *resp,
                          const struct entity_params *p)
{
    struct ing_err err;
    ing_err_clear(&err);
    struct mp_policy policy;
    int rc = profiles_policy_resolve(app->profiles, req->sandbox, p->policy_id, &policy, &err);
    if (rc) {
        fail(resp, rc == ING_ENOTFOUND ? ING_EINVAL : rc, &err, "ACC");
        return;
    }
    if (!p->events) {
        json_t *out = NULL;
        rc = profiles_entity(app->profiles, req->sandbox, p->ns, p->id, &policy, p->fields,
                             p->nfields, &out, &err);
        if (rc == ING_EINVAL && p->ns)
            rc = ING_ENOTFOUND; /* a non-people or empty identity has no profile */
        if (rc)
            fail(resp, rc, &err, "ACC");
        else
            http_resp_json_new(resp, 200, out);
    } else {
        json_t *children = NULL;
        int64_t total = 0;
        char *related = NULL;
        rc = profiles_events(app->profiles, req->sandbox, p->ns, p->id, &policy, &p->q, p->fields,
                             p->nfields, &children, &total, &related, &err);
        if (rc == ING_EINVAL && p->ns)
            rc = ING_ENOTFOUND;
        if (rc)
            fail(resp, rc, &err, "ACC");
        else
            events_answer(resp, req, children, total, &p->q, true);
        free(related);
    }
    mp_policy_clear(&policy);
}

static void h_entities_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct entity_params p = {.q = {.start_time = INT64_MIN, .end_time = INT64_MAX}};
    if (!schema_ok(http_req_query(req, "schema.name"), &p.events)) {
        bad_request(resp, "ACC", "schema.name is required: _xdm.context.profile, or "
                                 "_xdm.context.experienceevent with relatedSchema.name.");
        return;
    }
    if (p.events) {
        const char *rel = http_req_query(req, "relatedSchema.name");
        if (!rel || strcmp(rel, PROFILE_SCHEMA) != 0) {
            bad_request(resp, "ACC", "Experience events need relatedSchema.name="
                                     "_xdm.context.profile.");
            return;
        }
        p.id = http_req_query(req, "relatedEntityId");
        p.ns = http_req_query(req, "relatedEntityIdNS");
    } else {
        p.id = http_req_query(req, "entityId");
        p.ns = http_req_query(req, "entityIdNS");
    }
    if (!p.id || !*p.id) {
        bad_request(resp, "ACC", p.events ? "relatedEntityId is required."
                                          : "entityId is required.");
        return;
    }
    if (p.ns && !*p.ns)
        p.ns = NULL;
    p.policy_id = http_req_query(req, "mergePolicyId");
    const char *s;
    if ((s = http_req_query(req, "startTime")) && !parse_i64(s, &p.q.start_time)) {
        bad_request(resp, "ACC", "startTime must be a time in milliseconds.");
        return;
    }
    if ((s = http_req_query(req, "endTime")) && !parse_i64(s, &p.q.end_time)) {
        bad_request(resp, "ACC", "endTime must be a time in milliseconds.");
        return;
    }
    if ((s = http_req_query(req, "limit")) && (!parse_i64(s, &p.q.limit) || p.q.limit < 1)) {
        bad_request(resp, "ACC", "limit must be a positive number.");
        return;
    }
    if ((s = http_req_query(req, "start")) && (!parse_i64(s, &p.q.offset) || p.q.offset < 0)) {
        bad_request(resp, "ACC", "start must be a page offset from _links.next.");
        return;
    }
    if ((s = http_req_query(req, "orderby")) || (s = http_req_query(req, "orderBy"))) {
        if (!strcmp(s, "-timestamp"))
            p.q.desc = true;
        else if (strcmp(s, "+timestamp") != 0 && strcmp(s, "timestamp") != 0 &&
                 strcmp(s, " timestamp") != 0) { /* a '+' in a query string decodes to ' ' */
            bad_request(resp, "ACC", "orderby must be +timestamp or -timestamp.");
            return;
        }
    }
    char *fields_copy = NULL;
    if ((s = http_req_query(req, "fields")) && *s) {
        fields_copy = xstrdup(s);
        p.nfields = split_fields(fields_copy, p.fields);
    }
    /* The common case (default policy, whole profile, by namespace code) is one read of the
     * stored answer; everything else, and every error, takes the general path. */
    if (!p.events && !p.policy_id && p.nfields == 0 && p.ns &&
        profiles_entity_stored(app->profiles, req->sandbox, p.ns, p.id, &resp->body, NULL) == 0) {
        resp->status = 200;
        resp->content_type = "application/json";
        free(fields_copy);
        return;
    }
    entity_lookup(app, req, resp, &p);
    free(fields_copy);
}

/* POST: several identities at once; each answers under its own key, an unknown one with
 * AEP's empty entity. */
static void h_entities_post(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "UPS-ACC-1000400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    struct mp_policy policy = {0};
    json_t *result = NULL;
    struct entity_params p = {.q = {.start_time = INT64_MIN, .end_time = INT64_MAX}};
    const json_t *ids = json_object_get(body, "identities");
    const char *schema = json_string_value(json_object_get(json_object_get(body, "schema"),
                                                          "name"));
    if (!schema_ok(schema, &p.events)) {
        bad_request(resp, "ACC", "schema.name is required.");
        goto out;
    }
    if (!json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > MAX_POST_IDENTITIES) {
        bad_request(resp, "ACC", "identities must be an array of 1 to 1000 identities.");
        goto out;
    }
    const json_t *fields = json_object_get(body, "fields");
    size_t i;
    const json_t *v;
    json_array_foreach(fields, i, v) {
        if (json_is_string(v) && p.nfields < MAX_FIELDS)
            p.fields[p.nfields++] = json_string_value(v);
    }
    const json_t *tf = json_object_get(body, "timeFilter");
    if (json_is_number(json_object_get(tf, "startTime")))
        p.q.start_time = (int64_t)json_number_value(json_object_get(tf, "startTime"));
    if (json_is_number(json_object_get(tf, "endTime")))
        p.q.end_time = (int64_t)json_number_value(json_object_get(tf, "endTime"));
    if (json_is_number(json_object_get(body, "limit")))
        p.q.limit = (int64_t)json_number_value(json_object_get(body, "limit"));
    const char *ob = json_string_value(json_object_get(body, "orderby"));
    if (!ob)
        ob = json_string_value(json_object_get(body, "orderBy"));
    p.q.desc = ob && !strcmp(ob, "-timestamp");
    int rc = profiles_policy_resolve(app->profiles, req->sandbox,
                                     json_string_value(json_object_get(body, "mergePolicyId")),
                                     &policy, &err);
    if (rc) {
        fail(resp, rc == ING_ENOTFOUND ? ING_EINVAL : rc, &err, "ACC");
        goto out;
    }
    result = json_object();
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(json_object_get(v, "entityId"));
        const json_t *nsv = json_object_get(v, "entityIdNS");
        const char *ns = json_is_object(nsv) ? json_string_value(json_object_get(nsv, "code"))
                                             : json_string_value(nsv);
        if (!id)
            continue;
        ing_err_clear(&err);
        json_t *one = NULL;
        if (!p.events) {
            rc = profiles_entity(app->profiles, req->sandbox, ns, id, &policy, p.fields,
                                 p.nfields, &one, &err);
            if (rc == 0) {
                json_object_update(result, one);
                json_decref(one);
                continue;
            }
        } else {
            json_t *children = NULL;
            int64_t total = 0;
            char *related = NULL;
            rc = profiles_events(app->profiles, req->sandbox, ns, id, &policy, &p.q, p.fields,
                                 p.nfields, &children, &total, &related, &err);
            if (rc == 0) {
                json_object_set_new(result, related,
                                    json_pack("{s:{s:I}, s:o}", "_page", "count",
                                              (json_int_t)json_array_size(children), "children",
                                              children));
                free(related);
                continue;
            }
        }
        if (rc == ING_ETOOBIG) {
            fail(resp, rc, &err, "ACC");
            goto out;
        }
        if (rc != ING_ENOTFOUND && rc != ING_EINVAL) {
            fail(resp, rc, &err, "ACC");
            goto out;
        }
        json_object_set_new(result, id,
                            json_pack("{s:s, s:[s], s:{}, s:s}", "entityId", id, "sources", "",
                                      "entity", "lastModifiedAt", "1970-01-01T00:00:00Z"));
    }
    http_resp_json(resp, 200, result);
out:
    json_decref(result);
    mp_policy_clear(&policy);
    json_decref(body);
}

/* ---------------------------------------------------------------------------------------------- */
/* Merge policies */

static void h_mp_list(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct mp_list q = {.is_default = -1};
    q.schema_name = http_req_query(req, "schema.name");
    const char *s;
    if ((s = http_req_query(req, "default"))) {
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0) {
            bad_request(resp, "MP", "default must be true or false.");
            return;
        }
        q.is_default = !strcmp(s, "true");
    }
    if ((s = http_req_query(req, "limit")) && (!parse_i64(s, &q.limit) || q.limit < 1)) {
        bad_request(resp, "MP", "limit must be a positive number.");
        return;
    }
    if ((s = http_req_query(req, "start")) && (!parse_i64(s, &q.start) || q.start < 0)) {
        bad_request(resp, "MP", "start must be a page offset.");
        return;
    }
    q.order_by = http_req_query(req, "orderBy");
    if (!q.order_by)
        q.order_by = http_req_query(req, "orderby");
    struct ing_err err;
    ing_err_clear(&err);
    json_t *list = NULL;
    int64_t total = 0;
    int rc = profiles_policy_list(app->profiles, req->sandbox, &q, &list, &total, &err);
    if (rc) {
        fail(resp, rc, &err, "MP");
        return;
    }
    int64_t start = q.start, count = (int64_t)json_array_size(list);
    json_t *page = json_pack("{s:I, s:I}", "totalCount", (json_int_t)total, "count",
                             (json_int_t)count);
    json_t *links = json_object();
    if (start + count < total) {
        char next[32];
        snprintf(next, sizeof(next), "%lld", (long long)(start + count));
        json_object_set_new(page, "next", json_string(next));
        char *href = xasprintf(MP_BASE "?start=%s&limit=%lld", next,
                               (long long)(q.limit > 0 ? q.limit : 20));
        json_object_set_new(links, "next", json_pack("{s:s}", "href", href));
        free(href);
    }
    http_resp_json_new(resp, 200, json_pack("{s:o, s:o, s:o}", "_page", page, "children", list,
                                            "_links", links));
}

static void h_mp_create(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "UPS-MP-1000400");
    if (!body)
        return;
    struct cat_actor who;
    api_actor(app, req, &who);
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = profiles_policy_create(app->profiles, req->sandbox, who.ims_org, body, &out, &err);
    json_decref(body);
    if (rc)
        fail(resp, rc, &err, "MP");
    else
        http_resp_json_new(resp, 200, out);
}

static void h_mp_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = profiles_policy_get(app->profiles, req->sandbox, req->params[0], &out, &err);
    if (rc)
        fail(resp, rc, &err, "MP");
    else
        http_resp_json_new(resp, 200, out);
}

static void update(struct app *app, struct http_req *req, struct http_resp *resp, bool patch)
{
    json_t *body = api_parse_body(req, resp, "UPS-MP-1000400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *out = NULL;
    int rc = profiles_policy_update(app->profiles, req->sandbox, req->params[0], patch, body, &out,
                                    &err);
    json_decref(body);
    if (rc)
        fail(resp, rc, &err, "MP");
    else
        http_resp_json_new(resp, 200, out);
}

static void h_mp_put(void *vapp, struct http_req *req, struct http_resp *resp)
{
    update(vapp, req, resp, false);
}

static void h_mp_patch(void *vapp, struct http_req *req, struct http_resp *resp)
{
    update(vapp, req, resp, true);
}

static void h_mp_delete(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = profiles_policy_delete(app->profiles, req->sandbox, req->params[0], &err);
    if (rc)
        fail(resp, rc, &err, "MP");
    else
        resp->status = 200; /* AEP: 200 with an empty body */
}

static void h_mp_bulk_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "UPS-MP-1000400");
    if (!body)
        return;
    const json_t *ids = json_object_get(body, "ids");
    if (!json_is_array(ids)) {
        json_decref(body);
        bad_request(resp, "MP", "The body must be {\"ids\": [{\"id\": \"...\"}]}.");
        return;
    }
    json_t *results = json_object();
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        if (!id)
            id = json_string_value(v);
        json_t *doc = NULL;
        if (id && profiles_policy_get(app->profiles, req->sandbox, id, &doc, NULL) == 0)
            json_object_set_new(results, id, doc);
    }
    json_decref(body);
    http_resp_json_new(resp, 207, json_pack("{s:o}", "results", results));
}

static const struct http_route routes[] = {
    {HTTP_GET, UPS_BASE "/access/entities", h_entities_get, HTTP_BODY_NONE},
    {HTTP_POST, UPS_BASE "/access/entities", h_entities_post, HTTP_BODY_JSON},
    {HTTP_GET, MP_BASE, h_mp_list, HTTP_BODY_NONE},
    {HTTP_POST, MP_BASE, h_mp_create, HTTP_BODY_JSON},
    {HTTP_POST, MP_BASE "/bulk-get", h_mp_bulk_get, HTTP_BODY_JSON},
    {HTTP_GET, MP_BASE "/{id}", h_mp_get, HTTP_BODY_NONE},
    {HTTP_PUT, MP_BASE "/{id}", h_mp_put, HTTP_BODY_JSON},
    {HTTP_PATCH, MP_BASE "/{id}", h_mp_patch, HTTP_BODY_JSON},
    {HTTP_DELETE, MP_BASE "/{id}", h_mp_delete, HTTP_BODY_NONE},
};

const struct api_routes api_profile_routes = {routes, ING_ARRAY_LEN(routes)};
