/*
 * api.h - the AEP-compatible HTTP API: one route table made of one table per API.
 *
 * Each api_*.c file serves one AEP API and exports its routes; api.c concatenates them. Handlers
 * are thin: they parse the request, call the module that owns the concept, and shape the answer
 * (and the error) the way AEP does. Common request helpers live here too.
 */
#ifndef ING_API_API_H
#define ING_API_API_H

#include <stddef.h>
#include <jansson.h>

#include "api/app.h"
#include "catalog/catalog.h"
#include "http/http.h"

struct api_routes {
    const struct http_route *routes;
    size_t n;
};

/* Per-API tables, defined in api_<name>.c. */
extern const struct api_routes api_namespace_routes; /* /data/core/idnamespace */
extern const struct api_routes api_schema_routes;    /* /data/foundation/schemaregistry */
extern const struct api_routes api_catalog_routes;   /* /data/foundation/catalog */
extern const struct api_routes api_import_routes;    /* /data/foundation/import */
extern const struct api_routes api_export_routes;    /* /data/foundation/export */
extern const struct api_routes api_profile_routes;   /* /data/core/ups */
extern const struct api_routes api_identity_routes;  /* /data/core/identity */
extern const struct api_routes api_events_routes;    /* /events (notifications) */

/* All routes (new array; free()), in match order. */
struct http_route *api_all_routes(size_t *n);

/* Parse req->body as a JSON object or array. On failure answers 400 in AEP's shape with `code`
 * (e.g. "CAT-1000-400") and returns NULL. */
json_t *api_parse_body(const struct http_req *req, struct http_resp *resp, const char *code);
/* The actor of a request (headers x-gw-ims-org-id, x-api-key; defaults from app). Strings are
 * borrowed from the request/app. */
void api_actor(const struct app *app, const struct http_req *req, struct cat_actor *who);
/* Map an ING_E* code to an HTTP status (ENOTFOUND 404, EEXIST 409, ESTATE 400/409, EINVAL 400,
 * ETOOBIG 413, others 500). */
int api_status_for(int code);

#endif
