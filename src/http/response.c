/*
 * response.c - filling struct http_resp: JSON bodies, extra headers and the AEP error shape.
 */
#include "http/http.h"
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* Set by the server around each handler call; the pool thread handles one request at a time. */
static _Thread_local const char *tl_sandbox;

void http__set_current_sandbox(const char *sandbox)
{
    tl_sandbox = sandbox;
}

const char *http__current_sandbox(void)
{
    return tl_sandbox;
}

void http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders == ING_ARRAY_LEN(resp->headers)) {
        log_warn("http: too many response headers; dropping %s", name);
        return;
    }
    resp->headers[resp->nheaders++] = xasprintf("%s: %s", name, value ? value : "");
}

void http_resp_json(struct http_resp *resp, int status, const json_t *doc)
{
    resp->status = status;
    buf_reset(&resp->body);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!text) {
        /* Only an invalid json_t (e.g. NaN real) gets here: say so rather than send nothing. */
        resp->status = 500;
        text = xstrdup("{\"title\":\"Internal Server Error\",\"status\":500}");
    }
    if (buf_append_str(&resp->body, text) != 0)
        abort(); /* a response larger than memory */
    free(text);
    if (!resp->content_type)
        resp->content_type = "application/json";
}

void http_resp_json_new(struct http_resp *resp, int status, json_t *doc)
{
    http_resp_json(resp, status, doc);
    json_decref(doc);
}

/* A JSON string of s; bytes that are not valid UTF-8 (input echoed in a message) become '?'. */
static json_t *json_string_lossy(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    }
    v = json_string(copy);
    free(copy);
    return v;
}

void http_resp_error(struct http_resp *resp, int status, const char *code, const char *title,
                     const char *detail)
{
    const char *sandbox = tl_sandbox ? tl_sandbox : "prod";
    if (!title)
        title = "Error";
    char *type = xasprintf("http://ns.adobe.com/aep/errors/%s", code ? code : "INGOT-0500-500");
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_string_lossy(type));
    json_object_set_new(doc, "title", json_string_lossy(title));
    json_object_set_new(doc, "status", json_integer(status));
    json_object_set_new(doc, "detail", json_string_lossy(detail ? detail : title));
    json_object_set_new(doc, "report",
                        json_pack("{s:{s:s}}", "tenantInfo", "sandboxName", sandbox));
    free(type);
    /* An error replaces whatever the handler had prepared, file included. */
    free(resp->file_path);
    resp->file_path = NULL;
    resp->content_type = "application/json";
    http_resp_json_new(resp, status, doc);
}
