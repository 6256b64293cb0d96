/*
 * subs.c - notification subscriptions ("eventRegistration" documents): create, read, change,
 * delete, with the endpoint verified by Adobe I/O's challenge before a subscription gets events.
 *
 * The verification is a network call, so it runs before the store write and outside any
 * transaction. The secret is stored with the subscription and shown once, in the answer to the
 * create; every other view leaves it out.
 */
#include "notify/notify_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define NAME_MAX_LEN 255
#define DESC_MAX_LEN 4096
#define SECRET_MIN_LEN 8
#define SECRET_MAX_LEN 512

int notify__verify(const struct notify *n, const char *url, struct ing_err *err)
{
    char challenge[ID_HEX_LEN * 2 + 1];
    char a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1];
    id_hex(a);
    id_hex(b);
    snprintf(challenge, sizeof(challenge), "%s%s", a, b);
    struct notify_http_result res;
    int rc = notify_http_challenge(url, challenge, n->o.timeout_ms, &res);
    if (rc != 0)
        rc = ing_err_set(err, ING_EINVAL, "the challenge request failed: %s", res.error);
    else if (res.status != 200)
        rc = ing_err_set(err, ING_EINVAL, "the challenge request was answered with HTTP %ld",
                         res.status);
    else if (!notify_challenge_ok(&res, challenge))
        rc = ing_err_set(err, ING_EINVAL,
                         "the answer to the challenge did not return the challenge value");
    notify_http_result_free(&res);
    return rc;
}

/* The document as the API shows it: everything but the secret. New reference. */
static json_t *public_view(const json_t *doc)
{
    json_t *v = json_deep_copy(doc);
    json_object_del(v, "secret");
    return v;
}

static int bad(struct ing_err *err, const char *field, const char *msg)
{
    ing_err_field(err, field);
    return ing_err_set(err, ING_EINVAL, "%s", msg);
}

/* eventCodes (or Adobe I/O's events_of_interest [{event_code}]) from a request body into a new
 * array; absent in both: *out = NULL. */
static int parse_codes(const json_t *body, json_t **out, struct ing_err *err)
{
    *out = NULL;
    const json_t *codes = json_object_get(body, "eventCodes");
    const json_t *eoi = json_object_get(body, "events_of_interest");
    if (!codes && !eoi)
        return 0;
    const json_t *src = codes ? codes : eoi;
    const char *field = codes ? "eventCodes" : "events_of_interest";
    if (!json_is_array(src) || json_array_size(src) == 0)
        return bad(err, field, "the event codes must be a non-empty array");
    json_t *list = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(src, i, c) {
        const json_t *v = codes ? c : json_object_get(c, "event_code");
        const char *code = json_string_value(v);
        if (!notify_code_known(code)) {
            json_decref(list);
            return bad(err, field,
                       "unknown event code: use ing_load_success, ing_load_failure, "
                       "ig_load_success, ig_load_failure, ps_load_success or ps_load_failure");
        }
        bool dup = false;
        size_t k;
        const json_t *have;
        json_array_foreach(list, k, have) dup = dup || !strcmp(json_string_value(have), code);
        if (!dup)
            json_array_append_new(list, json_string(code));
    }
    *out = list;
    return 0;
}

static json_t *events_of_interest(const json_t *codes)
{
    json_t *eoi = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(codes, i, c) {
        json_array_append_new(eoi, json_pack("{s:s, s:O}", "provider_id", "platform_notifications",
                                             "event_code", c));
    }
    return eoi;
}

static int check_text(const json_t *body, const char *key, size_t max, bool required,
                      struct ing_err *err)
{
    const json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return required ? bad(err, key, "this field is required") : 0;
    if (!json_is_string(v) || json_string_length(v) > max)
        return bad(err, key, "must be a string of reasonable length");
    if (required && json_string_length(v) == 0)
        return bad(err, key, "must not be empty");
    return 0;
}

/* Fields every create/update checks the same way. */
static int check_body(const json_t *body, bool create, struct ing_err *err)
{
    if (!json_is_object(body))
        return ing_err_set(err, ING_EINVAL, "the request body must be a JSON object");
    int rc = check_text(body, "name", NAME_MAX_LEN, false, err);
    if (!rc)
        rc = check_text(body, "description", DESC_MAX_LEN, false, err);
    if (!rc)
        rc = check_text(body, "webhook_url", 4096, create, err);
    if (!rc && json_object_get(body, "webhook_url")) {
        rc = notify_url_check(json_string_value(json_object_get(body, "webhook_url")), err);
        if (rc)
            ing_err_field(err, "webhook_url");
    }
    const json_t *secret = json_object_get(body, "secret");
    if (!rc && secret && !json_is_null(secret) &&
        (!json_is_string(secret) || json_string_length(secret) < SECRET_MIN_LEN ||
         json_string_length(secret) > SECRET_MAX_LEN))
        rc = bad(err, "secret", "the secret must be a string of 8 to 512 characters");
    const json_t *enabled = json_object_get(body, "enabled");
    if (!rc && enabled && !json_is_boolean(enabled))
        rc = bad(err, "enabled", "enabled must be true or false");
    return rc;
}

/* Set status and verification from a verification run (or from being disabled). */
static void apply_state(struct notify *n, json_t *doc, bool verify, int64_t now)
{
    if (!json_is_true(json_object_get(doc, "enabled"))) {
        json_object_set_new(doc, "status", json_string("disabled"));
        return;
    }
    if (!verify)
        return;
    struct ing_err e;
    ing_err_clear(&e);
    const char *url = json_string_value(json_object_get(doc, "webhook_url"));
    int rc = notify__verify(n, url, &e);
    json_object_set_new(doc, "status", json_string(rc ? "verification_failed" : "active"));
    json_object_set_new(doc, "verification",
                        json_pack("{s:s, s:s, s:I}", "status", rc ? "failed" : "verified",
                                  "detail", rc ? e.msg : "the endpoint answered the challenge",
                                  "at", (json_int_t)now));
    if (rc)
        log_warn("notify: webhook verification failed url=%s: %s", url, e.msg);
}

int notify_sub_create(struct notify *n, const char *sandbox, const char *ims_org,
                      const json_t *body, json_t **out, struct ing_err *err)
{
    json_t *codes = NULL, *doc = NULL;
    *out = NULL;
    int rc = check_body(body, true, err);
    if (!rc)
        rc = parse_codes(body, &codes, err);
    if (rc)
        goto out;
    if (!codes) {
        codes = json_array();
        for (size_t i = 0; notify_ingestion_codes[i]; i++)
            json_array_append_new(codes, json_string(notify_ingestion_codes[i]));
    }
    char id[ID_HEX_LEN + 1];
    id_hex(id);
    const char *secret = json_string_value(json_object_get(body, "secret"));
    char made[ID_HEX_LEN * 2 + 1];
    if (!secret) {
        char a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1];
        id_hex(a);
        id_hex(b);
        snprintf(made, sizeof(made), "%s%s", a, b);
        secret = made;
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *desc = json_string_value(json_object_get(body, "description"));
    const json_t *enabled = json_object_get(body, "enabled");
    int64_t now = clock_now_ms();
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:o, s:b, s:s, s:s, s:s, s:s, s:I, s:I}",
                    "id", id, "registration_id", id, "name",
                    name ? name : "Data ingestion notification", "description", desc ? desc : "",
                    "webhook_url", json_string_value(json_object_get(body, "webhook_url")),
                    "delivery_type", "webhook", "eventCodes", codes, "events_of_interest",
                    events_of_interest(codes), "enabled", enabled ? json_is_true(enabled) : 1,
                    "status", "verification_failed", "sandboxName", sandbox, "imsOrg",
                    ims_org ? ims_org : "", "secret", secret, "created", (json_int_t)now,
                    "updated", (json_int_t)now);
    apply_state(n, doc, true, now);
    rc = store_insert(n->st, sandbox, NOTIFY_KIND_REG, id, doc, err);
    if (rc)
        goto out;
    log_info("notify: registration created sandbox=%s id=%s status=%s url=%s", sandbox, id,
             json_string_value(json_object_get(doc, "status")),
             json_string_value(json_object_get(doc, "webhook_url")));
    *out = json_incref(doc); /* the only answer that shows the secret */
out:
    json_decref(codes);
    json_decref(doc);
    return rc;
}

static int load(struct notify *n, const char *sandbox, const char *id, json_t **out,
                struct ing_err *err)
{
    if (!id || !id_is_safe(id)) {
        ing_err_field(err, "id");
        return ing_err_set(err, ING_ENOTFOUND, "no registration '%s'", id ? id : "");
    }
    int rc = store_get(n->st, sandbox, NOTIFY_KIND_REG, id, out, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "no registration '%s'", id);
    return rc;
}

int notify_sub_get(struct notify *n, const char *sandbox, const char *id, json_t **out,
                   struct ing_err *err)
{
    json_t *doc = NULL;
    *out = NULL;
    int rc = load(n, sandbox, id, &doc, err);
    if (rc == 0)
        *out = public_view(doc);
    json_decref(doc);
    return rc;
}

int notify_sub_list(struct notify *n, const char *sandbox, json_t **out, struct ing_err *err)
{
    json_t *all = NULL;
    *out = NULL;
    int rc = store_list(n->st, sandbox, NOTIFY_KIND_REG, NULL, &all, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    const char *key;
    json_t *doc;
    json_object_foreach(all, key, doc) json_array_append_new(arr, public_view(doc));
    json_decref(all);
    *out = arr;
    return 0;
}

int notify_sub_update(struct notify *n, const char *sandbox, const char *id, const json_t *body,
                      json_t **out, struct ing_err *err)
{
    json_t *doc = NULL, *codes = NULL;
    *out = NULL;
    int rc = check_body(body, false, err);
    if (!rc)
        rc = parse_codes(body, &codes, err);
    if (!rc)
        rc = load(n, sandbox, id, &doc, err);
    if (rc)
        goto out;
    const char *old_url = json_string_value(json_object_get(doc, "webhook_url"));
    const char *new_url = json_string_value(json_object_get(body, "webhook_url"));
    bool url_changed = new_url && (!old_url || strcmp(old_url, new_url) != 0);
    const char *old_status = json_string_value(json_object_get(doc, "status"));
    bool was_active = old_status && !strcmp(old_status, "active");
    static const char *const copied[] = {"name", "description", "webhook_url", "secret",
                                         "enabled"};
    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        json_t *v = json_object_get(body, copied[i]);
        if (v && !json_is_null(v))
            json_object_set(doc, copied[i], v);
    }
    if (codes) {
        json_object_set(doc, "eventCodes", codes);
        json_object_set_new(doc, "events_of_interest", events_of_interest(codes));
    }
    int64_t now = clock_now_ms();
    /* Enabling again (after a disable, a failed verification or the unstable state) and a new
     * URL both prove the endpoint first. */
    apply_state(n, doc, url_changed || !was_active, now);
    json_object_set_new(doc, "updated", json_integer(now));
    rc = store_update(n->st, sandbox, NOTIFY_KIND_REG, id, doc, err);
    if (rc == 0)
        *out = public_view(doc);
out:
    json_decref(doc);
    json_decref(codes);
    return rc;
}

int notify_sub_delete(struct notify *n, const char *sandbox, const char *id, struct ing_err *err)
{
    if (!id || !id_is_safe(id))
        return ing_err_set(err, ING_ENOTFOUND, "no registration '%s'", id ? id : "");
    int rc = store_delete(n->st, sandbox, NOTIFY_KIND_REG, id, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "no registration '%s'", id);
    /* Its outbox items are cancelled by the delivery threads when they come up. */
    return rc;
}
