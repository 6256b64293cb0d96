/*
 * outbox.c - notification events: the payload in AEP's documented shape and the transactional
 * outbox insert that batch state changes make (notify_emit).
 *
 * notify_emit runs inside the caller's store transaction, so the journal event and its outbox
 * items exist exactly when the batch change that caused them committed. The work it does there
 * is small and local (one list of the sandbox's active subscriptions, a few inserts): delivery
 * happens later, on the delivery threads, and never holds up ingestion.
 */
#include "notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

/* Errors copied into a failure payload; the batch keeps them all. */
#define PAYLOAD_MAX_ERRORS 100

const char *const notify_ingestion_codes[] = {
    "ing_load_success", "ing_load_failure", "ig_load_success",
    "ig_load_failure",  "ps_load_success",  "ps_load_failure", NULL,
};

bool notify_code_known(const char *code)
{
    for (size_t i = 0; code && notify_ingestion_codes[i]; i++)
        if (strcmp(code, notify_ingestion_codes[i]) == 0)
            return true;
    return false;
}

static bool code_is_failure(const char *code)
{
    size_t n = strlen(code);
    return n > 8 && strcmp(code + n - 8, "_failure") == 0;
}

static int64_t int_at(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return dflt;
}

static const char *batch_dataset(const json_t *batch)
{
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(batch, "relatedObjects"), i, o) {
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && strcmp(type, "dataSet") == 0)
            return json_string_value(json_object_get(o, "id"));
    }
    return NULL;
}

/* AEP's batch errors ({code, description, rows}) as the notification schema's xdm:errors. */
static json_t *xdm_errors(const json_t *errors)
{
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e) {
        if (i >= PAYLOAD_MAX_ERRORS)
            break;
        json_t *x = json_object();
        const json_t *code = json_object_get(e, "code");
        const json_t *desc = json_object_get(e, "description");
        if (!desc)
            desc = json_object_get(e, "message");
        if (json_is_string(code))
            json_object_set(x, "xdm:code", (json_t *)code);
        if (json_is_string(desc))
            json_object_set(x, "xdm:description", (json_t *)desc);
        const json_t *rows = json_object_get(e, "rows");
        json_object_set_new(x, "xdm:rows", json_is_array(rows) ? json_deep_copy(rows) : json_array());
        json_array_append_new(out, x);
    }
    return out;
}

json_t *notify_payload(const char *sandbox, const char *batch_id, const json_t *batch,
                       const char *code, const json_t *stage, const char *event_id,
                       int64_t now_ms)
{
    bool failure = code_is_failure(code);
    const json_t *metrics = json_object_get(batch, "metrics");
    const char *external = json_string_value(json_object_get(batch, "externalId"));
    const char *org = json_string_value(json_object_get(batch, "imsOrg"));
    const char *dataset = batch_dataset(batch);
    int64_t completed, started, ok_records, bad_records;
    const json_t *errors;
    if (stage) {
        completed = int_at(stage, "completed", now_ms);
        started = completed - int_at(stage, "durationMs", 0);
        ok_records = failure ? 0 : int_at(stage, "recordCount", 0);
        bad_records = failure ? int_at(metrics, "outputRecordCount", 0)
                              : int_at(stage, "failedRecordCount", 0);
        errors = json_object_get(stage, "errors");
    } else {
        completed = int_at(batch, "completed", now_ms);
        started = int_at(batch, "started", int_at(batch, "created", completed));
        ok_records = failure ? 0 : int_at(metrics, "outputRecordCount", 0);
        bad_records = int_at(metrics, "failedRecordCount", 0);
        errors = json_object_get(batch, "errors");
    }
    char sent[24];
    snprintf(sent, sizeof(sent), "%lld", (long long)now_ms);

    json_t *ev = json_object();
    json_object_set_new(ev, "xdm:ingestionId", json_string(batch_id));
    json_object_set_new(ev, "xdm:customerIngestionId", json_string(external ? external : batch_id));
    if (org)
        json_object_set_new(ev, "xdm:imsOrg", json_string(org));
    json_object_set_new(ev, "xdm:completed", json_integer(completed));
    if (dataset)
        json_object_set_new(ev, "xdm:datasetId", json_string(dataset));
    json_object_set_new(ev, "xdm:eventCode", json_string(code));
    json_object_set_new(ev, "xdm:sandboxName", json_string(sandbox));
    json_object_set_new(ev, "xdm:status", json_string(failure ? "failure" : "success"));
    json_object_set_new(ev, "xdm:inputFormat", json_string("json"));
    json_object_set_new(ev, "xdm:successfulRecords", json_integer(ok_records));
    json_object_set_new(ev, "xdm:failedRecords", json_integer(bad_records));
    if (failure || json_array_size(errors) > 0)
        json_object_set_new(ev, "xdm:errors", xdm_errors(errors));
    json_object_set_new(ev, "sentTime", json_string(sent));
    json_object_set_new(ev, "processStartTime", json_integer(started));
    json_object_set_new(ev, "transformedTime", json_integer(completed));
    json_t *adobeio = json_object();
    if (org)
        json_object_set_new(adobeio, "imsOrgId", json_string(org));
    json_object_set_new(adobeio, "providerMetadata", json_string(NOTIFY_PROVIDER));
    json_object_set_new(adobeio, "eventCode", json_string("platform_event"));
    json_object_set_new(ev, "header", json_pack("{s:o}", "_adobeio", adobeio));
    return json_pack("{s:s, s:o}", "event_id", event_id, "event", ev);
}

static bool sub_wants(const json_t *sub, const char *code)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(sub, "eventCodes"), i, c) {
        if (json_is_string(c) && strcmp(json_string_value(c), code) == 0)
            return true;
    }
    return false;
}

int notify_emit(struct store *st, const char *sandbox, const char *batch_id, const json_t *batch,
                const char *code, const json_t *stage, struct ing_err *err)
{
    if (!code)
        code = json_string_value(json_object_get(stage, "eventCode"));
    if (!notify_code_known(code))
        return 0;
    char event_id[37];
    notify_event_id(sandbox, batch_id, code, event_id);
    json_t *old = NULL, *subs = NULL, *doc = NULL, *wanted = json_array();
    int rc = store_get(st, sandbox, NOTIFY_KIND_EVENT, event_id, &old, NULL);
    if (rc == 0)
        goto out; /* recorded before: an event is emitted once */
    struct store_filter active = {.property = "status", .op = STORE_EQ, .value = "active"};
    struct store_query q = {.filters = &active, .nfilters = 1};
    rc = store_list(st, sandbox, NOTIFY_KIND_REG, &q, &subs, err);
    if (rc)
        goto out;
    int64_t now = clock_now_ms();
    json_t *deliveries = json_object();
    const char *sub_id;
    json_t *sub;
    json_object_foreach(subs, sub_id, sub) {
        if (!sub_wants(sub, code))
            continue;
        json_object_set_new(deliveries, sub_id,
                            json_pack("{s:s, s:i}", "status", "pending", "attempts", 0));
        json_array_append_new(wanted, json_string(sub_id));
    }
    const char *dataset = batch_dataset(batch);
    doc = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:I, s:I, s:o, s:o}", "event_id", event_id,
                    "eventCode", code, "batchId", batch_id, "datasetId", dataset, "sandboxName",
                    sandbox, "created", (json_int_t)now, "updated", (json_int_t)now, "payload",
                    notify_payload(sandbox, batch_id, batch, code, stage, event_id, now),
                    "deliveries", deliveries);
    rc = store_insert(st, sandbox, NOTIFY_KIND_EVENT, event_id, doc, err);
    size_t i;
    json_t *sid;
    json_array_foreach(wanted, i, sid) {
        if (rc)
            break;
        const char *s = json_string_value(sid);
        char *item_id = xasprintf("%s-%s", s, event_id);
        json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I}", "eventId",
                                 event_id, "registrationId", s, "batchId", batch_id, "eventCode",
                                 code, "sandboxName", sandbox, "attempts", 0, "nextAttempt",
                                 (json_int_t)now, "created", (json_int_t)now, "updated",
                                 (json_int_t)now);
        rc = store_insert(st, sandbox, NOTIFY_KIND_OUTBOX, item_id, item, err);
        json_decref(item);
        free(item_id);
    }
out:
    json_decref(old);
    json_decref(subs);
    json_decref(doc);
    json_decref(wanted);
    return rc;
}
