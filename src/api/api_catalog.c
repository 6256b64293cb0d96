/*
 * api_catalog.c - the Catalog Service API (/data/foundation/catalog): datasets, batches and
 * dataset files.
 *
 * Thin handlers over catalog.h. Lists accept the Catalog query language of AEP (notes/aep-api.md
 * 2.5): limit/start paging, orderBy (or the old name sort), properties projection, simple filters
 * on any property, property=<condition>, tags=name:value, createdAfter/createdBefore, and for
 * batches dataSet=<id>. Answers are keyed by id, as AEP's are; errors use AEP's problem shape
 * with CAT-* codes.
 */
#include "api/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <regex.h>
#include <string.h>
#include <strings.h>

#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define CAT_BASE "/data/foundation/catalog"
#define CAT_LIMIT_DEFAULT 20
#define CAT_LIMIT_MAX 100
#define CAT_MAX_FILTERS 32
#define CAT_MAX_ORDER 8
#define CAT_MAX_OWNED 64

/* ---- errors -------------------------------------------------------------------------------- */

static void cat_bad_request(struct http_resp *resp, const char *detail)
{
    http_resp_error(resp, 400, "CAT-1000-400", "Bad Request", detail);
}

/* Answer a failed catalog call with the AEP error that fits its code. */
static void cat_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    int status = api_status_for(rc);
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    switch (status) {
    case 400: http_resp_error(resp, 400, "CAT-1000-400", "Bad Request", detail); break;
    case 404: http_resp_error(resp, 404, "CAT-1001-404", "Not Found", detail); break;
    case 409: http_resp_error(resp, 409, "CAT-1002-409", "Conflict", detail); break;
    case 413: http_resp_error(resp, 413, "CAT-1004-413", "Payload Too Large", detail); break;
    case 503: http_resp_error(resp, 503, "CAT-1005-503", "Service Unavailable", detail); break;
    default:
        log_error("catalog request failed: %s (%s)", detail, ing_strerror(rc));
        http_resp_error(resp, 500, "CAT-1003-500", "Internal Server Error", detail);
        break;
    }
}

/* Path ids reach the store and the lake only when they are safe; anything else cannot exist. */
static bool path_id_ok(struct http_req *req, struct http_resp *resp, const char *what)
{
    if (req->nparams >= 1 && id_is_safe(req->params[0]))
        return true;
    char detail[160];
    snprintf(detail, sizeof(detail), "No %s with this id exists.", what);
    http_resp_error(resp, 404, "CAT-1001-404", "Not Found", detail);
    return false;
}

/* ---- list queries -------------------------------------------------------------------------- */

enum list_kind { LIST_DATASETS, LIST_BATCHES, LIST_FILES };

struct list_query {
    enum list_kind kind;
    struct store_filter filters[CAT_MAX_FILTERS];
    size_t nfilters;
    struct store_order order[CAT_MAX_ORDER];
    size_t norder;
    int64_t start;
    int64_t limit;
    const char *properties;   /* comma list or NULL */
    const char *batch_id;     /* LIST_FILES */
    const char *dataset_id;   /* LIST_FILES */
    char *owned[CAT_MAX_OWNED]; /* strings the filters point into */
    size_t nowned;
    char error[256];          /* set when the query is refused */
};

static void lq_free(struct list_query *lq)
{
    for (size_t i = 0; i < lq->nowned; i++)
        free(lq->owned[i]);
    lq->nowned = 0;
}

__attribute__((format(printf, 2, 3))) static int lq_fail(struct list_query *lq,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lq->error, sizeof(lq->error), fmt, ap);
    va_end(ap);
    return 1;
}

static char *lq_own(struct list_query *lq, char *s)
{
    if (lq->nowned == CAT_MAX_OWNED) {
        free(s);
        return NULL;
    }
    lq->owned[lq->nowned++] = s;
    return s;
}

/* A property name a client may filter or order on: letters, digits, '_', '-', '@', '/', ':' and
 * dots between non-empty parts. */
static bool prop_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '@' || c == '/' || c == ':' ||
                  (c == '.' && s[i + 1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

/* Strict integer parse: the whole string, no sign games, no overflow. */
static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static int lq_add(struct list_query *lq, const char *property, enum store_op op, const char *value)
{
    if (lq->nfilters == CAT_MAX_FILTERS)
        return lq_fail(lq, "Too many filters (at most 32).");
    lq->filters[lq->nfilters++] = (struct store_filter){.property = property, .op = op,
                                                        .value = value};
    return 0;
}

/* `name=v`, `name=!v`, `name=a,b`, `name=!a,b`. */
static int lq_simple(struct list_query *lq, const char *property, const char *value)
{
    if (!value || !*value)
        return lq_fail(lq, "The filter '%s' needs a value.", property);
    bool negate = value[0] == '!';
    const char *v = negate ? value + 1 : value;
    if (!*v)
        return lq_fail(lq, "The filter '%s' needs a value after '!'.", property);
    bool list = strchr(v, ',') != NULL;
    enum store_op op = negate ? (list ? STORE_NOT_IN : STORE_NE) : (list ? STORE_IN : STORE_EQ);
    return lq_add(lq, property, op, v);
}

/* property=<condition>: name, !name, name==v, name!=v, name<v, name<=v, name>v, name>=v. */
static int lq_property(struct list_query *lq, const char *cond)
{
    static const struct {
        const char *text;
        enum store_op op;
    } ops[] = {{"==", STORE_EQ}, {"!=", STORE_NE}, {"<=", STORE_LE}, {">=", STORE_GE},
               {"<", STORE_LT},  {">", STORE_GT}};
    if (!cond || !*cond)
        return lq_fail(lq, "The 'property' filter needs a condition such as name==value.");
    const char *tilde = strchr(cond, '~');
    if (tilde && !memchr(cond, '=', (size_t)(tilde - cond)) &&
        !memchr(cond, '<', (size_t)(tilde - cond)) && !memchr(cond, '>', (size_t)(tilde - cond))) {
        size_t plen = (size_t)(tilde - cond);
        if (!prop_name_ok(cond, plen))
            return lq_fail(lq, "The condition '%s' does not start with a valid property name.", cond);
        regex_t re;
        if (regcomp(&re, tilde + 1, REG_EXTENDED | REG_NOSUB) != 0)
            return lq_fail(lq, "'%s' is not a valid regular expression.", tilde + 1);
        regfree(&re);
        char *name = lq_own(lq, xstrndup(cond, plen));
        if (!name)
            return -1;
        return lq_add(lq, name, STORE_MATCH, tilde + 1);
    }
    if (cond[0] == '!' && !strpbrk(cond + 1, "=<>!")) {
        if (!prop_name_ok(cond + 1, strlen(cond + 1)))
            return lq_fail(lq, "'%s' is not a valid property name.", cond + 1);
        return lq_add(lq, cond + 1, STORE_NOT_EXISTS, NULL);
    }
    const char *at = strpbrk(cond, "=<>!");
    if (!at) {
        if (!prop_name_ok(cond, strlen(cond)))
            return lq_fail(lq, "'%s' is not a valid property name.", cond);
        return lq_add(lq, cond, STORE_EXISTS, NULL);
    }
    for (size_t i = 0; i < ING_ARRAY_LEN(ops); i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(at, ops[i].text, n) != 0)
            continue;
        size_t plen = (size_t)(at - cond);
        if (!prop_name_ok(cond, plen))
            return lq_fail(lq, "The condition '%s' does not start with a valid property name.",
                           cond);
        char *name = lq_own(lq, xstrndup(cond, plen));
        if (!name)
            return lq_fail(lq, "Too many filters.");
        return lq_add(lq, name, ops[i].op, at + n);
    }
    return lq_fail(lq, "The condition '%s' is not understood (use ==, !=, <, <=, >, >=).", cond);
}

/* tags=name:value[,name:value...] (all must hold); value "*" means the tag is present. */
static int lq_tags(struct list_query *lq, const char *value)
{
    if (!value || !*value)
        return lq_fail(lq, "The 'tags' filter needs name:value.");
    char *copy = lq_own(lq, xstrdup(value));
    if (!copy)
        return lq_fail(lq, "Too many filters.");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        const char *tag_value = "*";
        if (colon) {
            *colon = '\0';
            tag_value = colon + 1;
        }
        if (!prop_name_ok(tok, strlen(tok)) || strchr(tok, '.'))
            return lq_fail(lq, "'%s' is not a valid tag name.", tok);
        int rc = lq_add(lq, tok, STORE_TAG, tag_value);
        if (rc)
            return rc;
    }
    return 0;
}

static int lq_order(struct list_query *lq, const char *value)
{
    if (!value || !*value)
        return lq_fail(lq, "orderBy needs a property, e.g. desc:created.");
    char *copy = lq_own(lq, xstrdup(value));
    if (!copy)
        return lq_fail(lq, "Too many filters.");
    lq->norder = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool desc = false;
        if (!strncmp(tok, "desc:", 5)) {
            desc = true;
            tok += 5;
        } else if (!strncmp(tok, "asc:", 4)) {
            tok += 4;
        }
        if (!prop_name_ok(tok, strlen(tok)))
            return lq_fail(lq, "orderBy: '%s' is not a valid property name.", tok);
        if (lq->norder == CAT_MAX_ORDER)
            return lq_fail(lq, "orderBy takes at most 8 properties.");
        lq->order[lq->norder++] = (struct store_order){.property = tok, .desc = desc};
    }
    return 0;
}

/* status=v, status=!v, status=a,b: every value must be a status of AEP's Catalog enum. */
static int lq_check_statuses(struct list_query *lq, const char *value)
{
    const char *v = value && value[0] == '!' ? value + 1 : value;
    if (!v || !*v)
        return 0; /* lq_simple says what is missing */
    char *copy = xstrdup(v);
    char *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save))
        if (!catalog_batch_status_ok(tok))
            rc = lq_fail(lq, "'%.60s' is not a batch status (loading, queued, processing, "
                             "success, failed, aborted, inactive, retrying, staging, ...).", tok);
    free(copy);
    return rc;
}

static int lq_param(void *ctx, const char *name, const char *value)
{
    struct list_query *lq = ctx;
    if (!strcmp(name, "limit")) {
        if (!parse_i64(value, &lq->limit) || lq->limit < 1 || lq->limit > CAT_LIMIT_MAX)
            return lq_fail(lq, "limit must be an integer from 1 to 100, not '%s'.",
                           value ? value : "");
        return 0;
    }
    if (!strcmp(name, "start")) {
        if (!parse_i64(value, &lq->start) || lq->start < 0)
            return lq_fail(lq, "start must be a non-negative integer, not '%s'.",
                           value ? value : "");
        return 0;
    }
    if (!strcmp(name, "orderBy") || !strcmp(name, "sort"))
        return lq_order(lq, value);
    if (!strcmp(name, "properties")) {
        lq->properties = value && *value ? value : NULL;
        return 0;
    }
    if (!strcmp(name, "createdAfter") || !strcmp(name, "createdBefore")) {
        int64_t ms;
        if (!parse_i64(value, &ms) || ms < 0)
            return lq_fail(lq, "createdAfter/createdBefore take Unix milliseconds, not '%s'.",
                           value ? value : "");
        return lq_add(lq, "created", name[7] == 'A' ? STORE_GT : STORE_LT, value);
    }
    if (lq->kind == LIST_FILES) {
        /* Dataset files are listed through catalog_file_list, which knows these two. */
        if (!strcmp(name, "batchId"))
            lq->batch_id = value;
        else if (!strcmp(name, "dataSetId"))
            lq->dataset_id = value;
        else
            return lq_fail(lq, "Dataset files can be filtered by batchId and dataSetId only, "
                               "not '%s'.", name);
        if (!value || !id_is_safe(value))
            return lq_fail(lq, "'%s' needs a valid id.", name);
        return 0;
    }
    if (!strcmp(name, "property"))
        return lq_property(lq, value);
    if (!strcmp(name, "tags"))
        return lq_tags(lq, value);
    /* Parameters of AEP's API that do not filter. */
    if (!strcmp(name, "requestDataSource"))
        return 0;
    if (lq->kind == LIST_BATCHES && !strcmp(name, "status")) {
        int rc = lq_check_statuses(lq, value);
        if (rc)
            return rc;
    }
    const char *prop = name;
    if (lq->kind == LIST_BATCHES && !strcmp(name, "dataSet"))
        prop = "relatedObjects.id";
    else if (lq->kind == LIST_BATCHES && !strcmp(name, "batch"))
        prop = "id";
    if (!prop_name_ok(prop, strlen(prop)))
        return lq_fail(lq, "'%s' is not a valid filter name.", name);
    return lq_simple(lq, prop, value);
}

/* Keep only the listed top-level properties of each object of a keyed answer (in place). */
static void project_properties(json_t *keyed, const char *properties)
{
    if (!properties)
        return;
    const char *id;
    json_t *obj;
    json_object_foreach(keyed, id, obj) {
        json_t *slim = json_object();
        const char *p = properties;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char *name = xstrndup(p, n);
            json_t *v = json_object_get(obj, name);
            if (v)
                json_object_set(slim, name, v);
            free(name);
            if (!comma)
                break;
            p = comma + 1;
        }
        json_object_set_new(keyed, id, slim);
    }
}

static void list_handler(struct app *app, struct http_req *req, struct http_resp *resp,
                         enum list_kind kind)
{
    static const char *const kinds[] = {CAT_KIND_DATASET, CAT_KIND_BATCH, CAT_KIND_FILE};
    struct list_query lq = {.kind = kind, .limit = CAT_LIMIT_DEFAULT};
    struct ing_err err;
    json_t *out = NULL;
    ing_err_clear(&err);
    if (http_req_query_each(req, lq_param, &lq) != 0 || lq.error[0]) {
        cat_bad_request(resp, lq.error[0] ? lq.error : "The query is not valid.");
        goto out;
    }
    int rc;
    if (kind == LIST_FILES) {
        rc = catalog_file_list(app->catalog, req->sandbox, lq.batch_id, lq.dataset_id, lq.start,
                               lq.limit, &out, &err);
    } else {
        struct store_query q = {.filters = lq.filters, .nfilters = lq.nfilters,
                                .order = lq.norder ? lq.order : NULL, .norder = lq.norder,
                                .start = lq.start, .limit = lq.limit};
        rc = store_list(catalog_store(app->catalog), req->sandbox, kinds[kind], &q, &out, &err);
    }
    if (rc < 0) {
        cat_fail(resp, rc, &err);
        goto out;
    }
    project_properties(out, lq.properties);
    http_resp_json(resp, 200, out);
out:
    json_decref(out);
    lq_free(&lq);
}

/* One object answered as {"<id>": {...}}, with the optional properties projection. */
static void answer_keyed(struct http_req *req, struct http_resp *resp, const char *id, json_t *doc)
{
    json_t *keyed = json_object();
    json_object_set(keyed, id, doc);
    const char *props = http_req_query(req, "properties");
    project_properties(keyed, props && *props ? props : NULL);
    http_resp_json_new(resp, 200, keyed);
}

static void answer_ref(struct http_resp *resp, int status, const char *collection, const char *id)
{
    char ref[160];
    snprintf(ref, sizeof(ref), "@/%s/%s", collection, id);
    http_resp_json_new(resp, status, json_pack("[s]", ref));
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void h_datasets_list(void *app, struct http_req *req, struct http_resp *resp)
{
    list_handler(app, req, resp, LIST_DATASETS);
}

static void h_batches_list(void *app, struct http_req *req, struct http_resp *resp)
{
    list_handler(app, req, resp, LIST_BATCHES);
}

static void h_files_list(void *app, struct http_req *req, struct http_resp *resp)
{
    list_handler(app, req, resp, LIST_FILES);
}

static void h_dataset_create(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    struct cat_actor who;
    char *id = NULL;
    ing_err_clear(&err);
    json_t *body = api_parse_body(req, resp, "CAT-1000-400");
    if (!body)
        return;
    if (!json_is_object(body)) {
        cat_bad_request(resp, "The dataset request must be a JSON object.");
        goto out;
    }
    api_actor(app, req, &who);
    int rc = catalog_dataset_create(app->catalog, req->sandbox, &who, body, &id, &err);
    if (rc < 0) {
        cat_fail(resp, rc, &err);
        goto out;
    }
    char *loc = xasprintf(CAT_BASE "/dataSets/%s", id);
    http_resp_header(resp, "Location", loc);
    free(loc);
    answer_ref(resp, 201, "dataSets", id);
out:
    free(id);
    json_decref(body);
}

/* GET of one catalog object by the id in the path; `what` names it in a 404. */
typedef int cat_get_fn(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                       struct ing_err *err);

static void get_one(void *ctx, struct http_req *req, struct http_resp *resp, const char *what,
                    cat_get_fn *get)
{
    struct app *app = ctx;
    struct ing_err err;
    json_t *doc = NULL;
    ing_err_clear(&err);
    if (!path_id_ok(req, resp, what))
        return;
    int rc = get(app->catalog, req->sandbox, req->params[0], &doc, &err);
    if (rc < 0)
        cat_fail(resp, rc, &err);
    else
        answer_keyed(req, resp, req->params[0], doc);
    json_decref(doc);
}

static void h_dataset_get(void *ctx, struct http_req *req, struct http_resp *resp)
{
    get_one(ctx, req, resp, "dataset", catalog_dataset_get);
}

static void dataset_update(struct app *app, struct http_req *req, struct http_resp *resp,
                           enum cat_update how)
{
    struct ing_err err;
    struct cat_actor who;
    ing_err_clear(&err);
    if (!path_id_ok(req, resp, "dataset"))
        return;
    json_t *body = api_parse_body(req, resp, "CAT-1000-400");
    if (!body)
        return;
    api_actor(app, req, &who);
    int rc = catalog_dataset_update(app->catalog, req->sandbox, &who, req->params[0], how, body,
                                    &err);
    if (rc < 0)
        cat_fail(resp, rc, &err);
    else
        answer_ref(resp, 200, "dataSets", req->params[0]);
    json_decref(body);
}

static void h_dataset_patch(void *app, struct http_req *req, struct http_resp *resp)
{
    const char *ct = http_req_header(req, "content-type");
    bool json_patch = ct && !strncasecmp(ct, "application/json-patch+json", 27);
    dataset_update(app, req, resp, json_patch ? CAT_UPDATE_JSON_PATCH : CAT_UPDATE_MERGE);
}

static void h_dataset_put(void *app, struct http_req *req, struct http_resp *resp)
{
    dataset_update(app, req, resp, CAT_UPDATE_REPLACE);
}

static void h_dataset_delete(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    ing_err_clear(&err);
    if (!path_id_ok(req, resp, "dataset"))
        return;
    int rc = catalog_dataset_delete(app->catalog, req->sandbox, req->params[0], &err);
    if (rc < 0)
        cat_fail(resp, rc, &err);
    else
        answer_ref(resp, 200, "dataSets", req->params[0]);
}

static void h_batch_get(void *ctx, struct http_req *req, struct http_resp *resp)
{
    get_one(ctx, req, resp, "batch", catalog_batch_get);
}

static void h_file_get(void *ctx, struct http_req *req, struct http_resp *resp)
{
    get_one(ctx, req, resp, "dataset file", catalog_file_get);
}

/* GET /lastBatches?dataSetId=a,b: per dataset, its last, last successful and last failed batch. */
static void h_last_batches(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    json_t *out = NULL;
    ing_err_clear(&err);
    const char *ids = http_req_query(req, "dataSetId");
    if (ids && !*ids) {
        cat_bad_request(resp, "dataSetId needs one or more dataset ids, separated by commas.");
        return;
    }
    int rc = catalog_last_batches(app->catalog, req->sandbox, ids, &out, &err);
    if (rc < 0) {
        cat_fail(resp, rc, &err);
        return;
    }
    /* The other documented filters match the answer's own fields. */
    static const char *const filters[] = {"lastBatchId", "lastBatchStatus",
                                          "lastSuccessfulBatchId", "lastFailedBatchId"};
    for (size_t i = 0; i < ING_ARRAY_LEN(filters); i++) {
        const char *want = http_req_query(req, filters[i]);
        if (!want)
            continue;
        const char *ds;
        json_t *e, *tmp;
        json_object_foreach_safe(out, tmp, ds, e) {
            const char *have = json_string_value(json_object_get(e, filters[i]));
            if (!have || strcmp(have, want) != 0)
                json_object_del(out, ds);
        }
    }
    http_resp_json(resp, 200, out);
    json_decref(out);
}

static const struct http_route routes[] = {
    {HTTP_GET, CAT_BASE "/lastBatches", h_last_batches, HTTP_BODY_NONE},
    {HTTP_GET, CAT_BASE "/dataSets", h_datasets_list, HTTP_BODY_NONE},
    {HTTP_POST, CAT_BASE "/dataSets", h_dataset_create, HTTP_BODY_JSON},
    {HTTP_GET, CAT_BASE "/dataSets/{id}", h_dataset_get, HTTP_BODY_NONE},
    {HTTP_PATCH, CAT_BASE "/dataSets/{id}", h_dataset_patch, HTTP_BODY_JSON},
    {HTTP_PUT, CAT_BASE "/dataSets/{id}", h_dataset_put, HTTP_BODY_JSON},
    {HTTP_DELETE, CAT_BASE "/dataSets/{id}", h_dataset_delete, HTTP_BODY_NONE},
    {HTTP_GET, CAT_BASE "/batches", h_batches_list, HTTP_BODY_NONE},
    {HTTP_GET, CAT_BASE "/batches/{id}", h_batch_get, HTTP_BODY_NONE},
    {HTTP_GET, CAT_BASE "/dataSetFiles", h_files_list, HTTP_BODY_NONE},
    {HTTP_GET, CAT_BASE "/dataSetFiles/{id}", h_file_get, HTTP_BODY_NONE},
};

const struct api_routes api_catalog_routes = {routes, ING_ARRAY_LEN(routes)};
