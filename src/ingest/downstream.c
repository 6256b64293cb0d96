/*
 * downstream.c - the identity and profile stages of successful batches, and their removal when
 * a batch goes inactive (downstream.h).
 */
#include "ingest/downstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "ingest/inread.h"
#include "ingest/shred.h"
#include "json/jsplit.h"
#include "notify/notify.h"
#include "profile/profile.h"
#include "schema/xdm_convert.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define EVENT_CLASS "https://ns.adobe.com/xdm/context/experienceevent"
#define STAGE_IDENTITY "identity"
#define STAGE_PROFILE "profile"
#define STAGE_REMOVED "removed"
/* Updates seen by one poll reach back this far before the previous poll's start, so a batch
 * committed while a poll ran (its `updated` a little older than the commit) is not missed. */
#define POLL_OVERLAP_MS 5000

struct downstream {
    struct store *st;
    struct registry *reg;
    struct lake *lake;
    struct idgraph *g;
    unsigned poll_ms;
    int64_t last_poll_start;  /* ms; 0 before the first pass */
    bool rescan;              /* a transient failure asks for a full pass */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

bool downstream_tag_enabled(const json_t *tag_values, const char *flag)
{
    size_t i;
    const json_t *v;
    json_array_foreach(tag_values, i, v) {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        /* "enabled:true" and "enabled: true" are both seen in AEP's docs. */
        char norm[64];
        size_t k = 0;
        for (; *s && k + 1 < sizeof(norm); s++)
            if (*s != ' ')
                norm[k++] = *s;
        norm[k] = '\0';
        size_t fl = strlen(flag);
        if (!strncasecmp(norm, flag, fl) && norm[fl] == ':' && !strcasecmp(norm + fl + 1, "true"))
            return true;
    }
    return false;
}

int downstream_new(struct downstream **out, struct store *st, struct registry *reg,
                   struct lake *lake, struct idgraph *g, const struct downstream_opts *opts,
                   struct ing_err *err)
{
    *out = NULL;
    if (!st || !reg || !lake || !g)
        return ing_err_set(err, ING_EINVAL, "downstream: store, registry, lake and graph needed");
    struct downstream *d = xcalloc(1, sizeof(*d));
    d->st = st;
    d->reg = reg;
    d->lake = lake;
    d->g = g;
    d->poll_ms = opts && opts->poll_ms ? opts->poll_ms : DOWNSTREAM_POLL_MS;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = d;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading a batch's rows again */

typedef int row_fn(void *ctx, const json_t *rec);

struct rows {
    const char *root;
    char **paths;
    size_t n, cap;
};

static int collect_path(void *ctx, const char *relpath, int64_t size)
{
    (void)size;
    struct rows *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->paths = xrealloc(r->paths, r->cap * sizeof(*r->paths));
    }
    r->paths[r->n++] = xasprintf("%s/%s", r->root, relpath);
    return 0;
}

static bool is_multiline(const json_t *batch)
{
    const json_t *v = json_object_get(json_object_get(batch, "inputFormat"), "isMultiLineJson");
    const char *s = json_string_value(v);
    return json_is_true(v) || (s && !strcasecmp(s, "true"));
}

/* Every row of the batch that passes validation, converted, in file order; *valid counts them. */
static int for_each_row(struct downstream *d, const char *sandbox, const char *batch_id,
                        const char *dataset_id, const json_t *batch, const struct xdm_plan *plan,
                        row_fn *fn, void *ctx, int64_t *valid, struct ing_err *err)
{
    *valid = 0;
    const char *format = json_string_value(json_object_get(json_object_get(batch, "inputFormat"),
                                                          "format"));
    if (format && strcasecmp(format, "json") != 0)
        return ing_err_set(err, ING_EINVAL, "The downstream stages read JSON batches; this "
                                            "batch's format is %s.", format);
    struct rows r = {0};
    char *root = lake_staging_dir(d->lake, sandbox, batch_id, dataset_id);
    r.root = root;
    struct shred *sh = shred_new(plan);
    int ret = fs_walk_files(root, collect_path, &r, err);
    if (ret == 0 && r.n == 0)
        ret = ing_err_set(err, ING_ENOTFOUND, "The batch's staged input files are gone.");
    for (size_t i = 0; i < r.n && ret == 0; i++) {
        int fd = open(r.paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ret = ing_err_errno(err, errno, "cannot open %s", r.paths[i]);
            break;
        }
        /* Through the same decompressing reader as the pipeline: gzip and zstd inputs too. */
        struct inread *in = NULL;
        if ((ret = inread_open(&in, fd, err)) != 0) {
            close(fd);
            break;
        }
        struct jsplit_opts jo = {.mode = JSPLIT_AUTO, .multiline = is_multiline(batch)};
        struct jsplit *split = jsplit_new_reader(inread_read, in, &jo);
        for (;;) {
            struct jsplit_record rec;
            int got = jsplit_next(split, &rec, NULL);
            if (got <= 0)
                break; /* the end, or a broken tail the pipeline already refused */
            if (rec.corrupt)
                continue;
            json_t *converted = NULL;
            if (shred_record(sh, rec.data, rec.len, NULL, &converted, NULL) != 0) {
                json_decref(converted);
                continue; /* the row did not land in the lake, so it does not go downstream */
            }
            (*valid)++;
            ret = fn(ctx, converted);
            json_decref(converted);
            if (ret)
                break;
        }
        jsplit_free(split);
        inread_free(in);
        close(fd);
    }
    shred_free(sh);
    for (size_t i = 0; i < r.n; i++)
        free(r.paths[i]);
    free(r.paths);
    free(root);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Namespaces met by a stage: resolved once each */

struct ns_memo {
    char **codes;
    struct idg_ns *ns;
    bool *known;
    size_t n, cap;
};

static const struct idg_ns *ns_memo_get(struct ns_memo *m, struct idgraph *g,
                                        struct pstore_tx *tx, const char *sandbox,
                                        const char *code, int *hard, struct ing_err *err)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcasecmp(m->codes[i], code))
            return m->known[i] ? &m->ns[i] : NULL;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->codes = xrealloc(m->codes, m->cap * sizeof(*m->codes));
        m->ns = xrealloc(m->ns, m->cap * sizeof(*m->ns));
        m->known = xrealloc(m->known, m->cap * sizeof(*m->known));
    }
    size_t i = m->n++;
    m->codes[i] = xstrdup(code);
    struct ing_err e;
    ing_err_clear(&e);
    int rc = idg_ns_resolve(g, tx, sandbox, code, &m->ns[i], &e);
    m->known[i] = rc == 0;
    if (rc && rc != ING_ENOTFOUND) {
        *hard = rc;
        if (err)
            *err = e;
    }
    return m->known[i] ? &m->ns[i] : NULL;
}

static void ns_memo_free(struct ns_memo *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->codes[i]);
    free(m->codes);
    free(m->ns);
    free(m->known);
}

/* ---------------------------------------------------------------------------------------------- */
/* The identity stage */

struct id_stage {
    struct downstream *d;
    struct pstore_tx *tx;
    const char *sandbox;
    const struct xdm_plan *plan;
    struct ns_memo memo;
    struct idg_batch *b;
    int hard;
    struct ing_err *err;
    int64_t empty, too_long, unknown_ns, non_people, no_identity;
};

static int id_row(void *ctx, const json_t *rec)
{
    struct id_stage *s = ctx;
    struct idg_found *f = NULL;
    size_t n = 0;
    idg_extract(s->plan, rec, &f, &n);
    int64_t *gids = xcalloc(n ? n : 1, sizeof(*gids));
    char **values = xcalloc(n ? n : 1, sizeof(*values));
    size_t k = 0;
    for (size_t i = 0; i < n && !s->hard; i++) {
        const struct idg_ns *ns = ns_memo_get(&s->memo, s->d->g, s->tx, s->sandbox, f[i].code,
                                              &s->hard, s->err);
        if (!ns) {
            s->unknown_ns++;
            continue;
        }
        if (!ns->people) {
            s->non_people++;
            continue;
        }
        idg_batch_note_ns(s->b, ns);
        char *v = NULL;
        enum idg_norm r = idg_normalise(ns->code, ns->id_type, f[i].raw, &v);
        if (r == IDG_NORM_EMPTY)
            s->empty++;
        else if (r == IDG_NORM_TOO_LONG)
            s->too_long++;
        else {
            gids[k] = ns->gid;
            values[k++] = v;
        }
    }
    if (k == 0)
        s->no_identity++;
    else
        idg_batch_add_row(s->b, gids, (const char *const *)values, k);
    for (size_t i = 0; i < k; i++)
        free(values[i]);
    free(values);
    free(gids);
    idg_found_free(f, n);
    return s->hard;
}

static json_t *failure_record(const char *code, const struct ing_err *e)
{
    return json_pack("{s:s, s:s, s:I, s:[{s:s, s:s}]}", "status", "failure", "eventCode", code,
                     "completed", (json_int_t)clock_now_ms(), "errors", "code", "500",
                     "description", e && e->msg[0] ? e->msg : "The stage failed.");
}

static int identity_stage(struct downstream *d, const char *sandbox, const char *batch_id,
                          const char *dataset_id, const json_t *batch,
                          const struct xdm_plan *plan, json_t **rec, struct ing_err *err)
{
    struct pstore_tx *tx = NULL;
    struct id_stage s = {.d = d, .sandbox = sandbox, .plan = plan, .err = err};
    s.b = idg_batch_new();
    int64_t t0 = clock_mono_ns();
    int64_t seq = 0, valid = 0;
    int ret = pstore_begin(idgraph_pstore(d->g), &tx, err);
    if (ret)
        goto out;
    s.tx = tx;
    if ((ret = pstore_tx_batch_seq(tx, batch_id, dataset_id, &seq, err)) != 0)
        goto out;
    ret = for_each_row(d, sandbox, batch_id, dataset_id, batch, plan, id_row, &s, &valid, err);
    if (ret == 0 && s.hard)
        ret = s.hard;
    if (ret)
        goto out;
    struct idg_apply_result res;
    int64_t now = clock_now_ms();
    if ((ret = idg_apply_batch(d->g, tx, s.b, seq, now, &res, err)) != 0)
        goto out;
    *rec = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                     " s:{s:I, s:I, s:I, s:I, s:I}}",
                     "status", "success", "eventCode", "ig_load_success", "completed",
                     (json_int_t)now, "recordCount", (json_int_t)valid, "identityCount",
                     (json_int_t)res.identities_seen, "newIdentityCount",
                     (json_int_t)res.identities_new, "linkCount", (json_int_t)res.links,
                     "clustersMerged", (json_int_t)res.clusters_merged, "guardrailRemoved",
                     (json_int_t)res.guardrail_removed, "durationMs",
                     (json_int_t)((clock_mono_ns() - t0) / 1000000), "skipped", "emptyValue",
                     (json_int_t)s.empty, "tooLongValue", (json_int_t)s.too_long,
                     "unknownNamespace", (json_int_t)s.unknown_ns, "nonPeopleNamespace",
                     (json_int_t)s.non_people, "recordsWithoutIdentity",
                     (json_int_t)s.no_identity);
    if ((ret = pstore_tx_stage_put(tx, sandbox, batch_id, STAGE_IDENTITY, *rec, err)) != 0)
        goto out;
    ret = pstore_commit(tx, err);
    tx = NULL;
out:
    pstore_rollback(tx);
    if (ret) {
        json_decref(*rec);
        *rec = NULL;
    }
    ns_memo_free(&s.memo);
    idg_batch_free(s.b);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* The profile stage */

struct ps_stage {
    struct downstream *d;
    struct pstore_tx *tx;
    const char *sandbox;
    const char *dataset_id;
    const struct xdm_plan *plan;
    bool events;         /* ExperienceEvent class */
    bool upsert;
    int64_t seq, now;
    struct ns_memo memo;
    int hard;
    struct ing_err *err;
    int64_t fragments, nevents, no_primary, non_people, bad_event;
};

/* The row's primary identity: the descriptor marked primary, else an identityMap item marked
 * primary. */
static const struct idg_found *primary_of(const struct idg_found *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].primary)
            return &f[i];
    return NULL;
}

static int ps_row(void *ctx, const json_t *rec)
{
    struct ps_stage *s = ctx;
    struct idg_found *f = NULL;
    size_t n = 0;
    char *value = NULL, *doc = NULL, *old = NULL;
    int ret = 0;
    idg_extract(s->plan, rec, &f, &n);
    const struct idg_found *p = primary_of(f, n);
    const struct idg_ns *ns =
        p ? ns_memo_get(&s->memo, s->d->g, s->tx, s->sandbox, p->code, &s->hard, s->err) : NULL;
    if (s->hard) {
        ret = s->hard;
        goto out;
    }
    if (!ns || idg_normalise(ns->code, ns->id_type, p->raw, &value) != IDG_NORM_OK) {
        s->no_primary++;
        goto out;
    }
    if (!ns->people) {
        s->non_people++; /* non-people identifiers make no profiles */
        goto out;
    }
    if (s->events) {
        const char *eid = json_string_value(json_object_get(rec, "_id"));
        const char *ts = json_string_value(json_object_get(rec, "timestamp"));
        int64_t ms = 0;
        if (!eid || !ts || xdm_parse_datetime(ts, strlen(ts), &ms, NULL) != 0) {
            s->bad_event++;
            goto out;
        }
        doc = json_dumps(rec, JSON_COMPACT);
        ret = pstore_tx_event_put(s->tx, ns->gid, value, ms, eid, s->seq, s->now, doc, s->err);
        s->nevents++;
        goto out;
    }
    /* Within a batch a later row of the same identity replaces the earlier one, or patches it
     * when the dataset is an upsert dataset. */
    if (s->upsert) {
        ret = pstore_tx_frag_get(s->tx, ns->gid, value, s->dataset_id, s->seq, &old, s->err);
        if (ret == 0) {
            json_t *merged = json_loads(old, 0, NULL);
            if (!merged)
                merged = json_object();
            profile_deep_merge(merged, rec);
            doc = json_dumps(merged, JSON_COMPACT);
            json_decref(merged);
        } else if (ret != ING_ENOTFOUND) {
            goto out;
        }
        ret = 0;
    }
    if (!doc)
        doc = json_dumps(rec, JSON_COMPACT);
    ret = pstore_tx_frag_put(s->tx, ns->gid, value, s->dataset_id, s->seq, s->now, s->upsert, doc,
                             s->err);
    s->fragments++;
out:
    free(old);
    free(doc);
    free(value);
    idg_found_free(f, n);
    return ret;
}

static int profile_stage(struct downstream *d, const char *sandbox, const char *batch_id,
                         const char *dataset_id, const json_t *batch, const json_t *dataset,
                         const struct xdm_plan *plan, json_t **rec, struct ing_err *err)
{
    struct pstore_tx *tx = NULL;
    int64_t t0 = clock_mono_ns();
    struct ps_stage s = {
        .d = d, .sandbox = sandbox, .dataset_id = dataset_id, .plan = plan, .err = err,
        .events = plan->class_id && !strcmp(plan->class_id, EVENT_CLASS),
        .upsert = downstream_tag_enabled(
            json_object_get(json_object_get(dataset, "tags"), "unifiedProfile"), "isUpsert"),
        .now = clock_now_ms(),
    };
    int64_t valid = 0;
    int ret = pstore_begin(idgraph_pstore(d->g), &tx, err);
    if (ret)
        goto out;
    s.tx = tx;
    if ((ret = pstore_tx_batch_seq(tx, batch_id, dataset_id, &s.seq, err)) != 0)
        goto out;
    ret = for_each_row(d, sandbox, batch_id, dataset_id, batch, plan, ps_row, &s, &valid, err);
    if (ret)
        goto out;
    *rec = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}}", "status",
                     "success", "eventCode", "ps_load_success", "completed",
                     (json_int_t)clock_now_ms(), "recordCount", (json_int_t)valid,
                     "fragmentCount", (json_int_t)s.fragments, "eventCount",
                     (json_int_t)s.nevents, "durationMs",
                     (json_int_t)((clock_mono_ns() - t0) / 1000000), "skipped",
                     "noPrimaryIdentity", (json_int_t)s.no_primary, "nonPeoplePrimaryIdentity",
                     (json_int_t)s.non_people, "eventWithoutIdOrTimestamp",
                     (json_int_t)s.bad_event);
    if ((ret = pstore_tx_stage_put(tx, sandbox, batch_id, STAGE_PROFILE, *rec, err)) != 0)
        goto out;
    ret = pstore_commit(tx, err);
    tx = NULL;
out:
    pstore_rollback(tx);
    if (ret) {
        json_decref(*rec);
        *rec = NULL;
    }
    ns_memo_free(&s.memo);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Removal of an inactive batch */

static int remove_stage(struct downstream *d, const char *sandbox, const char *batch_id,
                        json_t **rec, struct ing_err *err)
{
    struct pstore_tx *tx = NULL;
    int64_t seq = 0, frags = 0, events = 0;
    struct idg_remove_result res = {0};
    int ret = pstore_begin(idgraph_pstore(d->g), &tx, err);
    if (ret)
        return ret;
    ret = pstore_tx_batch_find(tx, batch_id, &seq, err);
    if (ret == 0)
        ret = idg_remove_batch(d->g, tx, seq, &res, err);
    if (ret == 0)
        ret = pstore_tx_profile_delete_batch(tx, seq, &frags, &events, err);
    if (ret == ING_ENOTFOUND)
        ret = 0; /* never reached the graph or the store: nothing to take out */
    if (ret)
        goto out;
    *rec = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "status", "success", "completed",
                     (json_int_t)clock_now_ms(), "linksRemoved", (json_int_t)res.links_removed,
                     "identitiesRemoved", (json_int_t)res.identities_removed, "clustersAfter",
                     (json_int_t)res.clusters_after, "fragmentsRemoved", (json_int_t)frags,
                     "eventsRemoved", (json_int_t)events);
    if ((ret = pstore_tx_stage_put(tx, sandbox, batch_id, STAGE_REMOVED, *rec, err)) != 0)
        goto out;
    ret = pstore_commit(tx, err);
    tx = NULL;
out:
    pstore_rollback(tx);
    if (ret) {
        json_decref(*rec);
        *rec = NULL;
    }
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Recording in the batch document */

static int record(struct downstream *d, const char *sandbox, const char *batch_id,
                  const char *key, const json_t *rec, struct ing_err *err)
{
    json_t *doc = NULL;
    int ret = store_tx_begin(d->st, err);
    if (ret)
        return ret;
    ret = store_get(d->st, sandbox, CAT_KIND_BATCH, batch_id, &doc, err);
    if (ret == 0) {
        json_t *ds = json_object_get(doc, "downstream");
        if (!json_is_object(ds)) {
            ds = json_object();
            json_object_set_new(doc, "downstream", ds);
        }
        json_object_set(ds, key, (json_t *)rec);
        json_object_set_new(doc, "updated", json_integer(clock_now_ms()));
        ret = store_update(d->st, sandbox, CAT_KIND_BATCH, batch_id, doc, err);
        /* ig_load_* / ps_load_* join the outbox in this same transaction (notify.h). */
        if (ret == 0)
            ret = notify_emit(d->st, sandbox, batch_id, doc, NULL, rec, err);
    }
    json_decref(doc);
    if (ret == 0)
        return store_tx_commit(d->st, err);
    store_tx_rollback(d->st);
    return ret;
}

static void log_stage(const char *sandbox, const char *batch_id, const char *key,
                      const json_t *rec)
{
    log_info("downstream sandbox=%s batch=%s stage=%s event=%s records=%lld", sandbox, batch_id,
             key, json_string_value(json_object_get(rec, "eventCode")),
             (long long)json_integer_value(json_object_get(rec, "recordCount")));
}

/* ---------------------------------------------------------------------------------------------- */
/* One batch */


static int compile_plan(struct downstream *d, const char *sandbox, const json_t *dataset,
                        struct xdm_plan **plan, struct ing_err *err)
{
    const char *schema_id =
        json_string_value(json_object_get(json_object_get(dataset, "schemaRef"), "id"));
    if (!schema_id)
        return ing_err_set(err, ING_EINVAL, "The dataset has no schemaRef.id.");
    json_t *full = NULL, *idds = NULL;
    int rc = registry_resolve(d->reg, sandbox, schema_id, &full, err);
    if (rc == 0)
        rc = registry_identity_descriptors(d->reg, sandbox, schema_id, &idds, err);
    if (rc == 0)
        rc = xdm_plan_compile(full, idds, plan, err);
    json_decref(full);
    json_decref(idds);
    return rc;
}

/* Run (or recover the record of) one stage; transient errors are returned, other failures are
 * recorded as the stage's failure event. */
static int run_stage(struct downstream *d, const char *sandbox, const char *batch_id,
                     const char *dataset_id, const json_t *batch, const json_t *dataset,
                     struct xdm_plan **plan, const char *stage, struct ing_err *err)
{
    const char *key = !strcmp(stage, STAGE_IDENTITY) ? "identityGraph" : "profile";
    const char *fail_code = !strcmp(stage, STAGE_IDENTITY) ? "ig_load_failure" : "ps_load_failure";
    json_t *rec = NULL;
    struct ing_err e;
    ing_err_clear(&e);
    int rc = pstore_stage_get(idgraph_pstore(d->g), batch_id, stage, &rec, &e);
    if (rc == ING_ENOTFOUND) {
        rc = *plan ? 0 : compile_plan(d, sandbox, dataset, plan, &e);
        if (rc == 0 && !strcmp(stage, STAGE_IDENTITY))
            rc = identity_stage(d, sandbox, batch_id, dataset_id, batch, *plan, &rec, &e);
        else if (rc == 0)
            rc = profile_stage(d, sandbox, batch_id, dataset_id, batch, dataset, *plan, &rec, &e);
        if (rc == ING_EAGAIN) {
            if (err)
                *err = e;
            return rc;
        }
        if (rc) {
            log_warn("downstream stage failed sandbox=%s batch=%s stage=%s: %s", sandbox,
                     batch_id, stage, e.msg);
            rec = failure_record(fail_code, &e);
        }
    } else if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    rc = record(d, sandbox, batch_id, key, rec, err);
    if (rc == 0)
        log_stage(sandbox, batch_id, key, rec);
    json_decref(rec);
    return rc;
}

static bool has_key(const json_t *downstream, const char *key)
{
    return json_is_object(json_object_get(downstream, key));
}

static int process_batch(struct downstream *d, const char *sandbox, const char *batch_id,
                         const json_t *batch, struct ing_err *err)
{
    const char *status = json_string_value(json_object_get(batch, "status"));
    const json_t *ds = json_object_get(batch, "downstream");
    const char *dataset_id = catalog_batch_dataset_id(batch);
    if (!status || !dataset_id || !id_is_safe(dataset_id) || !id_is_safe(batch_id))
        return 0;
    if (!strcmp(status, "inactive") || !strcmp(status, "deleted")) {
        if (has_key(ds, "removed"))
            return 0;
        /* The stage records in pstore are the truth (the batch document may have missed the
         * copy if the process died in between). */
        struct pstore *ps = idgraph_pstore(d->g);
        json_t *rec = NULL;
        bool reached = has_key(ds, "identityGraph") || has_key(ds, "profile");
        for (size_t k = 0; k < 2 && !reached; k++) {
            int got = pstore_stage_get(ps, batch_id, k ? STAGE_PROFILE : STAGE_IDENTITY, &rec, err);
            json_decref(rec);
            rec = NULL;
            if (got && got != ING_ENOTFOUND)
                return got;
            reached = got == 0;
        }
        if (!reached)
            return 0;
        int rc = pstore_stage_get(ps, batch_id, STAGE_REMOVED, &rec, err);
        if (rc == ING_ENOTFOUND)
            rc = remove_stage(d, sandbox, batch_id, &rec, err);
        if (rc == 0)
            rc = record(d, sandbox, batch_id, "removed", rec, err);
        if (rc == 0)
            log_info("downstream sandbox=%s batch=%s stage=removed links=%lld fragments=%lld",
                     sandbox, batch_id,
                     (long long)json_integer_value(json_object_get(rec, "linksRemoved")),
                     (long long)json_integer_value(json_object_get(rec, "fragmentsRemoved")));
        json_decref(rec);
        return rc;
    }
    if (strcmp(status, "success") != 0)
        return 0;
    bool want_ig = !has_key(ds, "identityGraph"), want_ps = !has_key(ds, "profile");
    if (!want_ig && !want_ps)
        return 0;
    json_t *dataset = NULL;
    int rc = store_get(d->st, sandbox, CAT_KIND_DATASET, dataset_id, &dataset, NULL);
    if (rc)
        return 0; /* the dataset is gone: nothing downstream */
    const json_t *tags = json_object_get(dataset, "tags");
    bool ig_on = downstream_tag_enabled(json_object_get(tags, "unifiedIdentity"), "enabled");
    bool ps_on = downstream_tag_enabled(json_object_get(tags, "unifiedProfile"), "enabled");
    struct xdm_plan *plan = NULL;
    if (ig_on && want_ig)
        rc = run_stage(d, sandbox, batch_id, dataset_id, batch, dataset, &plan, STAGE_IDENTITY,
                       err);
    if (rc == 0 && ps_on && want_ps)
        rc = run_stage(d, sandbox, batch_id, dataset_id, batch, dataset, &plan, STAGE_PROFILE,
                       err);
    xdm_plan_free(plan);
    json_decref(dataset);
    return rc;
}

int downstream_poll(struct downstream *d, bool full, struct ing_err *err)
{
    int64_t start = clock_now_ms();
    char since[32];
    struct store_filter filters[2];
    size_t nf = 0;
    filters[nf++] = (struct store_filter){.property = "status", .op = STORE_IN,
                                          .value = "success,inactive,deleted"};
    if (!full && d->last_poll_start > 0) {
        snprintf(since, sizeof(since), "%lld", (long long)(d->last_poll_start - POLL_OVERLAP_MS));
        filters[nf++] = (struct store_filter){.property = "updated", .op = STORE_GE,
                                              .value = since};
    }
    struct store_query q = {.filters = filters, .nfilters = nf};
    json_t *list = NULL;
    int rc = store_scan_all(d->st, CAT_KIND_BATCH, &q, &list, err);
    if (rc)
        return rc;
    d->last_poll_start = start;
    size_t i;
    json_t *item;
    int first = 0;
    json_array_foreach(list, i, item) {
        const char *sandbox = json_string_value(json_object_get(item, "sandbox"));
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!sandbox || !id)
            continue;
        struct ing_err e;
        ing_err_clear(&e);
        rc = process_batch(d, sandbox, id, json_object_get(item, "doc"), &e);
        if (rc) {
            /* Transient (a busy store): the next pass is a full one and tries again. */
            d->rescan = true;
            log_warn("downstream: batch %s will be retried: %s", id, e.msg);
            if (!first) {
                first = rc;
                if (err)
                    *err = e;
            }
        }
        pthread_mutex_lock(&d->mu);
        bool stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;
    }
    json_decref(list);
    return first;
}

static void *runner(void *arg)
{
    struct downstream *d = arg;
    bool full = true;
    for (;;) {
        struct ing_err err;
        ing_err_clear(&err);
        d->rescan = false;
        downstream_poll(d, full, &err);
        full = d->rescan;
        pthread_mutex_lock(&d->mu);
        if (!d->stop) {
            struct timespec until;
            clock_deadline_mono_ts(&until, d->poll_ms);
            pthread_cond_timedwait(&d->cv, &d->mu, &until);
        }
        bool stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;
    }
    return NULL;
}

int downstream_start(struct downstream *d, struct ing_err *err)
{
    if (d->started)
        return 0;
    int rc = pthread_create(&d->thread, NULL, runner, d);
    if (rc)
        return ing_err_errno(err, rc, "downstream: cannot start the runner thread");
    d->started = true;
    return 0;
}

void downstream_free(struct downstream *d)
{
    if (!d)
        return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
