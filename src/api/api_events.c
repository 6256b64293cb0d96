/*
 * api_events.c - the notifications API, in the spirit of Adobe I/O Events: webhook registrations
 * for the data ingestion events and the journal of past events (per sandbox).
 *
 *   POST   /events/registrations          create ({"name","description","webhook_url",
 *                                         "eventCodes"|"events_of_interest","secret","enabled"});
 *                                         201 with the secret (shown this once) and "status":
 *                                         "active", or "verification_failed" when the endpoint did
 *                                         not answer the challenge (then "verification.detail")
 *   GET    /events/registrations          {"_embedded":{"registrations":[...]},"count"}
 *   GET    /events/registrations/{id}
 *   PUT|PATCH /events/registrations/{id}  change fields; {"enabled":false|true} disables/enables
 *   DELETE /events/registrations/{id}     204
 *   GET    /events/journal?limit=&since=&eventCode=&batchId=
 *                                         {"events":[...],"_page":{"count","limit","next"},
 *                                          "_links":{"next":{"href"}}}
 * Thin handlers over notify.h; errors use AEP's problem shape with EVENTS-* codes.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "util/buf.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define EV_BASE "/events"
#define JOURNAL_LIMIT_MAX 1000

static void ev_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    char with_field[ING_ERR_MSG + ING_ERR_PATH + 8];
    if (err && err->field[0]) {
        snprintf(with_field, sizeof(with_field), "%s: %s", err->field, detail);
        detail = with_field;
    }
    switch (api_status_for(rc)) {
    case 400: http_resp_error(resp, 400, "EVENTS-1400-400", "Bad Request", detail); break;
    case 404: http_resp_error(resp, 404, "EVENTS-1404-404", "Not Found", detail); break;
    case 409: http_resp_error(resp, 409, "EVENTS-1409-409", "Conflict", detail); break;
    default:
        log_error("events request failed: %s (%s)", detail, ing_strerror(rc));
        http_resp_error(resp, 500, "EVENTS-1500-500", "Internal Server Error", detail);
        break;
    }
}

/* The answer to one notifier call: the mapped error when rc failed, otherwise `status` with
 * `doc` as the body (204 carries no body). */
static void ev_reply(struct http_resp *resp, int rc, const struct ing_err *err, int status,
                     json_t *doc)
{
    if (rc)
        ev_fail(resp, rc, err);
    else if (status == 204)
        resp->status = 204;
    else
        http_resp_json_new(resp, status, doc);
}

/* The notifier, or NULL after answering 503 (a server built without one). */
static struct notify *notifier(void *vapp, struct http_resp *resp)
{
    struct app *app = vapp;
    if (!app->notify)
        http_resp_error(resp, 503, "EVENTS-1503-503", "Service Unavailable",
                        "Notifications are not running on this server.");
    return app->notify;
}

static void h_reg_create(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    json_t *body = api_parse_body(req, resp, "EVENTS-1400-400");
    if (!body)
        return;
    struct cat_actor who;
    api_actor(vapp, req, &who);
    struct ing_err err;
    ing_err_clear(&err);
    json_t *doc = NULL;
    int rc = notify_sub_create(n, req->sandbox, who.ims_org, body, &doc, &err);
    json_decref(body);
    if (rc) {
        ev_fail(resp, rc, &err);
        return;
    }
    char loc[128];
    snprintf(loc, sizeof(loc), EV_BASE "/registrations/%s",
             json_string_value(json_object_get(doc, "id")));
    http_resp_header(resp, "Location", loc);
    http_resp_json_new(resp, 201, doc);
}

static void h_reg_list(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *list = NULL;
    int rc = notify_sub_list(n, req->sandbox, &list, &err);
    if (rc) {
        ev_fail(resp, rc, &err);
        return;
    }
    size_t count = json_array_size(list);
    http_resp_json_new(resp, 200, json_pack("{s:{s:o}, s:I}", "_embedded", "registrations", list,
                                            "count", (json_int_t)count));
}

static void h_reg_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *doc = NULL;
    int rc = notify_sub_get(n, req->sandbox, req->params[0], &doc, &err);
    ev_reply(resp, rc, &err, 200, doc);
}

static void h_reg_update(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    json_t *body = api_parse_body(req, resp, "EVENTS-1400-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *doc = NULL;
    int rc = notify_sub_update(n, req->sandbox, req->params[0], body, &doc, &err);
    json_decref(body);
    ev_reply(resp, rc, &err, 200, doc);
}

static void h_reg_delete(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = notify_sub_delete(n, req->sandbox, req->params[0], &err);
    ev_reply(resp, rc, &err, 204, NULL);
}

static void h_journal(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct notify *n = notifier(vapp, resp);
    if (!n)
        return;
    struct notify_journal_query q = {
        .since = http_req_query(req, "since"),
        .event_code = http_req_query(req, "eventCode"),
        .batch_id = http_req_query(req, "batchId"),
    };
    const char *l = http_req_query(req, "limit");
    if (l) {
        char *end = NULL;
        long long v = strtoll(l, &end, 10);
        if (!*l || *end || v < 1 || v > JOURNAL_LIMIT_MAX) {
            http_resp_error(resp, 400, "EVENTS-1400-400", "Bad Request",
                            "limit must be an integer from 1 to 1000.");
            return;
        }
        q.limit = v;
    }
    if ((q.event_code && !notify_code_known(q.event_code)) ||
        (q.batch_id && !id_is_safe(q.batch_id)) || (q.since && !id_is_safe(q.since))) {
        http_resp_error(resp, 400, "EVENTS-1400-400", "Bad Request",
                        "eventCode must be an ingestion event code; batchId and since must be "
                        "ids (since may also be Unix milliseconds).");
        return;
    }
    struct ing_err err;
    ing_err_clear(&err);
    json_t *page = NULL;
    int rc = notify_journal(n, req->sandbox, &q, &page, &err);
    if (rc) {
        ev_fail(resp, rc, &err);
        return;
    }
    int64_t limit = q.limit > 0 ? q.limit : 100;
    const char *next = json_string_value(json_object_get(page, "next"));
    json_t *out = json_pack("{s:O, s:{s:O, s:I, s:O}}", "events", json_object_get(page, "events"),
                            "_page", "count", json_object_get(page, "count"), "limit",
                            (json_int_t)limit, "next", json_object_get(page, "next"));
    json_t *links = json_object();
    if (next) {
        struct buf href = {0};
        buf_printf(&href, EV_BASE "/journal?since=%s&limit=%lld", next, (long long)limit);
        if (q.event_code)
            buf_printf(&href, "&eventCode=%s", q.event_code);
        if (q.batch_id)
            buf_printf(&href, "&batchId=%s", q.batch_id);
        json_object_set_new(links, "next", json_pack("{s:s}", "href", buf_cstr(&href)));
        buf_free(&href);
    }
    json_object_set_new(out, "_links", links);
    json_decref(page);
    http_resp_json_new(resp, 200, out);
}

static const struct http_route routes[] = {
    {HTTP_POST, EV_BASE "/registrations", h_reg_create, HTTP_BODY_JSON},
    {HTTP_GET, EV_BASE "/registrations", h_reg_list, HTTP_BODY_NONE},
    {HTTP_GET, EV_BASE "/registrations/{id}", h_reg_get, HTTP_BODY_NONE},
    {HTTP_PUT, EV_BASE "/registrations/{id}", h_reg_update, HTTP_BODY_JSON},
    {HTTP_PATCH, EV_BASE "/registrations/{id}", h_reg_update, HTTP_BODY_JSON},
    {HTTP_DELETE, EV_BASE "/registrations/{id}", h_reg_delete, HTTP_BODY_NONE},
    {HTTP_GET, EV_BASE "/journal", h_journal, HTTP_BODY_NONE},
};

const struct api_routes api_events_routes = {routes, ING_ARRAY_LEN(routes)};
