/*
 * api_namespace.c - the Identity Service namespace API (/data/core/idnamespace/identities).
 *
 * Thin handlers over registry.h: list (a JSON array of namespace objects, standard then custom),
 * get by numeric id or code, create ({"name","code","idType","description"}; AEP answers 200),
 * update (name and description; code and idType cannot change). Namespace objects are
 * {"id","code","name","description","idType","namespaceType","status","custom","updateTime",
 * "createTime"}. Custom namespaces are per sandbox.
 */
#include "api/api.h"

#include <stdio.h>

#include "util/log.h"
#include "util/mem.h"

#define NS_BASE "/data/core/idnamespace/identities"

static void ns_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    switch (api_status_for(rc)) {
    case 400: http_resp_error(resp, 400, "IDENTITY-1400-400", "Namespace validation", detail); break;
    case 404: http_resp_error(resp, 404, "IDENTITY-1404-404", "Namespace not found", detail); break;
    case 409:
        http_resp_error(resp, 409, "IDENTITY-1409-409", "NAMESPACE_CODE_CONFLICT", detail);
        break;
    default:
        log_error("namespace request failed: %s (%s)", detail, ing_strerror(rc));
        http_resp_error(resp, 500, "IDENTITY-1500-500", "Internal Server Failure.", detail);
        break;
    }
}

static void h_ns_list(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *list = NULL;
    int rc = registry_namespace_list(app->registry, req->sandbox, &list, &err);
    if (rc)
        ns_fail(resp, rc, &err);
    else
        http_resp_json_new(resp, 200, list);
}

static void h_ns_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *ns = NULL;
    int rc = registry_namespace_get(app->registry, req->sandbox, req->params[0], &ns, &err);
    if (rc)
        ns_fail(resp, rc, &err);
    else
        http_resp_json_new(resp, 200, ns);
}

static void h_ns_create(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "IDENTITY-1400-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *ns = NULL;
    int rc = registry_namespace_create(app->registry, req->sandbox, body, &ns, &err);
    json_decref(body);
    if (rc)
        ns_fail(resp, rc, &err);
    else
        http_resp_json_new(resp, 200, ns); /* AEP answers a created namespace with 200 */
}

static void h_ns_update(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "IDENTITY-1400-400");
    if (!body)
        return;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *ns = NULL;
    int rc = registry_namespace_update(app->registry, req->sandbox, req->params[0], body, &ns,
                                       &err);
    json_decref(body);
    if (rc)
        ns_fail(resp, rc, &err);
    else
        http_resp_json_new(resp, 200, ns);
}

static const struct http_route routes[] = {
    {HTTP_GET, NS_BASE, h_ns_list, HTTP_BODY_NONE},
    {HTTP_POST, NS_BASE, h_ns_create, HTTP_BODY_JSON},
    {HTTP_GET, NS_BASE "/{id}", h_ns_get, HTTP_BODY_NONE},
    {HTTP_PUT, NS_BASE "/{id}", h_ns_update, HTTP_BODY_JSON},
};

const struct api_routes api_namespace_routes = {routes, ING_ARRAY_LEN(routes)};
