/* api.c - the route table of the whole API and the request helpers shared by the handlers. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

struct http_route *api_all_routes(size_t *n)
{
    const struct api_routes *tables[] = {
        &api_namespace_routes, &api_schema_routes, &api_catalog_routes,
        &api_import_routes,    &api_export_routes,  &api_profile_routes,
        &api_identity_routes,  &api_events_routes,
    };
    size_t total = 0;
    for (size_t i = 0; i < ING_ARRAY_LEN(tables); i++)
        total += tables[i]->n;
    struct http_route *all = xcalloc(total, sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < ING_ARRAY_LEN(tables); i++) {
        memcpy(all + k, tables[i]->routes, tables[i]->n * sizeof(*all));
        k += tables[i]->n;
    }
    *n = total;
    return all;
}

json_t *api_parse_body(const struct http_req *req, struct http_resp *resp, const char *code)
{
    if (!req->body || req->body_len == 0) {
        http_resp_error(resp, 400, code, "Bad Request", "A JSON request body is required.");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        char detail[300];
        snprintf(detail, sizeof(detail), "The request body is not valid JSON: %s (line %d, column %d).",
                 jerr.text, jerr.line, jerr.column);
        http_resp_error(resp, 400, code, "Bad Request", detail);
        return NULL;
    }
    if (!json_is_object(doc) && !json_is_array(doc)) {
        json_decref(doc);
        http_resp_error(resp, 400, code, "Bad Request", "The request body must be a JSON object or array.");
        return NULL;
    }
    return doc;
}

void api_actor(const struct app *app, const struct http_req *req, struct cat_actor *who)
{
    const char *org = http_req_header(req, "x-gw-ims-org-id");
    const char *key = http_req_header(req, "x-api-key");
    who->ims_org = org && org[0] ? org : app->ims_org;
    who->client = key && key[0] ? key : "ingot";
    who->user = who->client;
}

int api_status_for(int code)
{
    switch (code) {
    case ING_ENOTFOUND: return 404;
    case ING_EEXIST: return 409;
    case ING_ESTATE: return 400;
    case ING_EINVAL:
    case ING_ESYNTAX:
    case ING_ETYPE:
    case ING_ECONSTRAINT:
    case ING_EREQUIRED: return 400;
    case ING_ETOOBIG: return 413;
    case ING_EAGAIN: return 503;
    default: return 500;
    }
}
