/*
 * profile.c - merge policies and profile assembly at lookup time (profile.h).
 */
#include "profile/profile.h"
#include "profile/profile_fast.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

/* The default policy of a sandbox is read on every lookup without mergePolicyId: it is cached
 * here and the cache is dropped whenever this process writes a policy (the only writer). */
#define DEFAULT_CACHE 16
/* Stored answers rebuilt per transaction after a policy change: short writer holds, so that
 * batches keep flowing while a million answers are rebuilt. */
#define REBUILD_SLICE 2000
/* Bump when the stored answer's shape changes: older stored answers then stop matching. */
#define VIEW_FORMAT 1

struct default_entry {
    char sandbox[65];
    struct mp_policy policy; /* parsed */
    int64_t stamp;        /* what stored answers built under this policy carry */
};

struct profiles {
    struct store *st;
    struct idgraph *g;
    pthread_mutex_t mu;
    struct default_entry cache[DEFAULT_CACHE];
    size_t ncache;
    /* The rebuilder of stored answers after a policy change (a thread, started on demand). */
    pthread_mutex_t rmu;
    pthread_cond_t rcond;
    pthread_t rthread;
    bool rstarted, rwanted, rstop;
    bool rfull;           /* the pass rebuilds every answer (a policy changed), not only the
                           * backfill of clusters without one */
    unsigned rreq, rdone; /* rebuilds requested; the request the last whole pass served */
};

static void cache_drop(struct profiles *pf)
{
    pthread_mutex_lock(&pf->mu);
    for (size_t i = 0; i < pf->ncache; i++) {
        mp_policy_clear(&pf->cache[i].policy);
    }
    pf->ncache = 0;
    pthread_mutex_unlock(&pf->mu);
}

/* The cached default of sandbox, or NULL; the caller holds pf->mu. */
static const struct default_entry *cache_find(const struct profiles *pf, const char *sandbox)
{
    for (size_t i = 0; i < pf->ncache; i++)
        if (!strcmp(pf->cache[i].sandbox, sandbox))
            return &pf->cache[i];
    return NULL;
}

static pstore_view_fn view_build;

/* Whenever asked: first the backfill of clusters that never had a stored answer (a database
 * from before stored answers), then, after a policy change, every stored answer, in slices; a
 * request during a pass restarts it from the first label (the pass in progress may have used
 * the older policy). */
static void *rebuilder(void *arg)
{
    struct profiles *pf = arg;
    struct pstore *ps = idgraph_pstore(pf->g);
    pthread_mutex_lock(&pf->rmu);
    for (;;) {
        while (!pf->rwanted && !pf->rstop)
            pthread_cond_wait(&pf->rcond, &pf->rmu);
        if (pf->rstop)
            break;
        pf->rwanted = false;
        bool full = pf->rfull;
        pf->rfull = false;
        unsigned target = pf->rreq;
        pthread_mutex_unlock(&pf->rmu);
        int64_t after = 0;
        size_t done = 0;
        struct ing_err err;
        ing_err_clear(&err);
        int rc = 0;
        bool restart = false;
        do {
            rc = pstore_view_backfill(ps, REBUILD_SLICE, &done, &err);
            pthread_mutex_lock(&pf->rmu);
            restart = pf->rwanted || pf->rstop;
            pthread_mutex_unlock(&pf->rmu);
        } while (rc == 0 && done > 0 && !restart);
        while (rc == 0 && full && !restart) {
            rc = pstore_view_rebuild(ps, REBUILD_SLICE, &after, &done, &err);
            pthread_mutex_lock(&pf->rmu);
            restart = pf->rwanted || pf->rstop;
            pthread_mutex_unlock(&pf->rmu);
            if (done == 0)
                break;
        }
        if (rc)
            log_error("profile: rebuilding stored answers failed: %s", err.msg);
        pthread_mutex_lock(&pf->rmu);
        if (restart && full)
            pf->rfull = true; /* the next pass rebuilds all again */
        if (!pf->rwanted)
            pf->rdone = target; /* a failed pass counts as served: the fast path stays off */
        pthread_cond_broadcast(&pf->rcond);
    }
    pthread_mutex_unlock(&pf->rmu);
    return NULL;
}

/* Ask the rebuilder for a pass (full: every answer), starting it on first use. */
static void rebuild_request(struct profiles *pf, bool full)
{
    pthread_mutex_lock(&pf->rmu);
    if (!pf->rstarted)
        pf->rstarted = pthread_create(&pf->rthread, NULL, rebuilder, pf) == 0;
    pf->rwanted = true;
    pf->rfull = pf->rfull || full;
    pf->rreq++;
    pthread_cond_broadcast(&pf->rcond);
    pthread_mutex_unlock(&pf->rmu);
}

/* A policy changed: forget the cached defaults and rebuild the stored answers. */
static void policy_changed(struct profiles *pf)
{
    cache_drop(pf);
    rebuild_request(pf, true);
}

void profiles_wait_rebuilt(struct profiles *pf)
{
    pthread_mutex_lock(&pf->rmu);
    while (pf->rstarted && pf->rdone != pf->rreq && !pf->rstop)
        pthread_cond_wait(&pf->rcond, &pf->rmu);
    pthread_mutex_unlock(&pf->rmu);
}

int profiles_new(struct profiles **out, struct store *st, struct idgraph *g, struct ing_err *err)
{
    *out = NULL;
    if (!st || !g)
        return ing_err_set(err, ING_EINVAL, "profiles: a store and an identity graph are needed");
    struct profiles *pf = xcalloc(1, sizeof(*pf));
    pf->st = st;
    pf->g = g;
    pthread_mutex_init(&pf->mu, NULL);
    pthread_mutex_init(&pf->rmu, NULL);
    pthread_cond_init(&pf->rcond, NULL);
    pstore_set_view_builder(idgraph_pstore(g), view_build, pf);
    /* clusters of a database from before stored answers get theirs in the background (a pass
     * with nothing pending is one empty transaction) */
    rebuild_request(pf, false);
    *out = pf;
    return 0;
}

void profiles_free(struct profiles *pf)
{
    if (!pf)
        return;
    pthread_mutex_lock(&pf->rmu);
    pf->rstop = true;
    pthread_cond_broadcast(&pf->rcond);
    pthread_mutex_unlock(&pf->rmu);
    if (pf->rstarted)
        pthread_join(pf->rthread, NULL);
    pstore_set_view_builder(idgraph_pstore(pf->g), NULL, NULL);
    cache_drop(pf);
    pthread_mutex_destroy(&pf->mu);
    pthread_mutex_destroy(&pf->rmu);
    pthread_cond_destroy(&pf->rcond);
    free(pf);
}

void profile_time_text(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------------------------------------------- */
/* Policies: parsing */

void mp_policy_clear(struct mp_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->norder; i++)
        free(p->order[i]);
    free(p->order);
    memset(p, 0, sizeof(*p));
}

static int field_error(struct ing_err *err, const char *field, const char *msg)
{
    ing_err_set(err, ING_EINVAL, "%s", msg);
    ing_err_field(err, field);
    return ING_EINVAL;
}

int mp_policy_parse(const json_t *doc, struct mp_policy *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc))
        return field_error(err, "", "A merge policy is a JSON object.");
    const char *ig = json_string_value(json_object_get(json_object_get(doc, "identityGraph"),
                                                      "type"));
    if (!ig || (strcmp(ig, "none") != 0 && strcmp(ig, "pdg") != 0))
        return field_error(err, "identityGraph.type",
                           "identityGraph.type must be \"none\" or \"pdg\".");
    const json_t *am = json_object_get(doc, "attributeMerge");
    const char *type = json_string_value(json_object_get(am, "type"));
    if (!type || (strcmp(type, "timestampOrdered") != 0 && strcmp(type, "dataSetPrecedence") != 0))
        return field_error(err, "attributeMerge.type",
                           "attributeMerge.type must be \"timestampOrdered\" or "
                           "\"dataSetPrecedence\".");
    out->stitch = !strcmp(ig, "pdg");
    out->precedence = !strcmp(type, "dataSetPrecedence");
    const char *id = json_string_value(json_object_get(doc, "id"));
    snprintf(out->id, sizeof(out->id), "%s", id ? id : "");
    if (!out->precedence)
        return 0;
    const json_t *order = json_object_get(am, "order");
    if (!json_is_array(order) || json_array_size(order) == 0)
        return field_error(err, "attributeMerge.order",
                           "dataSetPrecedence needs attributeMerge.order: the dataset ids in "
                           "priority order.");
    out->order = xcalloc(json_array_size(order), sizeof(*out->order));
    size_t i;
    const json_t *v;
    json_array_foreach(order, i, v) {
        const char *ds = json_string_value(v);
        if (!ds || !*ds) {
            mp_policy_clear(out);
            return field_error(err, "attributeMerge.order",
                               "attributeMerge.order must hold dataset id strings.");
        }
        out->order[out->norder++] = xstrdup(ds);
    }
    return 0;
}

/* Priority of a dataset under a precedence policy: 0 is highest; -1 when not listed. */
static long precedence_rank(const struct mp_policy *p, const char *dataset)
{
    for (size_t i = 0; i < p->norder; i++)
        if (!strcmp(p->order[i], dataset))
            return (long)i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Merging */

void profile_deep_merge(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v) {
        json_t *cur = json_object_get(dst, key);
        if (json_is_object(v) && json_is_object(cur))
            profile_deep_merge(cur, v);
        else
            json_object_set_new(dst, key, json_deep_copy(v));
    }
}

struct group {
    json_t *doc;      /* composed fragment of one (identity, dataset) */
    bool owned;       /* doc is a copy (patched by upserts); else the fragment's own, borrowed */
    const char *dataset;
    long rank;
    int64_t ts, seq;
};

static int cmp_frag_index(const void *pa, const void *pb, void *ctx)
{
    const struct profile_frag *frags = ctx;
    const struct profile_frag *a = &frags[*(const size_t *)pa];
    const struct profile_frag *b = &frags[*(const size_t *)pb];
    if (a->member != b->member)
        return a->member < b->member ? -1 : 1;
    int c = strcmp(a->dataset, b->dataset);
    if (c)
        return c;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int cmp_group(const void *pa, const void *pb, void *ctx)
{
    const struct group *a = pa, *b = pb;
    bool precedence = *(const bool *)ctx;
    /* Lowest priority first, so that higher priorities are merged over it. */
    if (precedence && a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

json_t *profile_merge(const struct mp_policy *p, const struct profile_frag *frags, size_t n,
                      json_t **sources, int64_t *last_ts, size_t *used)
{
    size_t *idx = xcalloc(n ? n : 1, sizeof(*idx));
    struct group *groups = xcalloc(n ? n : 1, sizeof(*groups));
    size_t ngroups = 0, nused = 0;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof(*idx), cmp_frag_index, (void *)frags);

    /* Per (identity, dataset): the newest full fragment with the later upserts patched in. */
    for (size_t k = 0; k < n; k++) {
        const struct profile_frag *f = &frags[idx[k]];
        long rank = p->precedence ? precedence_rank(p, f->dataset) : 0;
        if (rank < 0 || !json_is_object(f->doc))
            continue;
        nused++;
        struct group *g = ngroups ? &groups[ngroups - 1] : NULL;
        bool same = g && k > 0 && frags[idx[k - 1]].member == f->member &&
                    !strcmp(g->dataset, f->dataset);
        if (!same) {
            g = &groups[ngroups++];
            *g = (struct group){.dataset = f->dataset, .rank = rank};
        }
        if (!f->upsert || !g->doc) {
            /* borrowed: the merge below copies what it keeps, so a lone fragment (the common
             * case) is copied once, not twice */
            json_decref(g->doc);
            g->doc = json_incref((json_t *)f->doc);
            g->owned = false;
        } else {
            if (!g->owned) {
                json_t *copy = json_deep_copy(g->doc);
                json_decref(g->doc);
                g->doc = copy;
                g->owned = true;
            }
            profile_deep_merge(g->doc, f->doc);
        }
        if (f->ts > g->ts)
            g->ts = f->ts;
        if (f->seq > g->seq)
            g->seq = f->seq;
    }
    bool precedence = p->precedence;
    qsort_r(groups, ngroups, sizeof(*groups), cmp_group, &precedence);

    json_t *merged = json_object();
    json_t *src = json_array();
    int64_t newest = 0;
    for (size_t i = 0; i < ngroups; i++) {
        profile_deep_merge(merged, groups[i].doc);
        if (groups[i].ts > newest)
            newest = groups[i].ts;
        bool listed = false;
        size_t k;
        json_t *v;
        json_array_foreach(src, k, v) listed = listed || !strcmp(json_string_value(v),
                                                                 groups[i].dataset);
        if (!listed)
            json_array_append_new(src, json_string(groups[i].dataset));
        json_decref(groups[i].doc);
    }
    if (sources)
        *sources = src;
    else
        json_decref(src);
    if (last_ts)
        *last_ts = newest;
    if (used)
        *used = nused;
    free(groups);
    free(idx);
    return merged;
}

json_t *profile_project(const json_t *entity, const char *const *fields, size_t nfields)
{
    json_t *out = json_object();
    for (size_t i = 0; i < nfields; i++) {
        const json_t *cur = entity;
        const char *p = fields[i];
        json_t *dst = out;
        while (cur && *p) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            char *key = xstrndup(p, len);
            cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
            if (cur && dot) {
                json_t *next = json_object_get(dst, key);
                if (!json_is_object(next)) {
                    next = json_object();
                    json_object_set_new(dst, key, next);
                }
                dst = next;
            } else if (cur) {
                json_object_set_new(dst, key, json_deep_copy(cur));
            }
            free(key);
            p = dot ? dot + 1 : p + len;
        }
    }
    /* Parents made for a path that turned out absent stay as empty objects: drop them. */
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(out, tmp, key, v) {
        if (json_is_object(v) && json_object_size(v) == 0)
            json_object_del(out, key);
    }
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* Policies: documents */

static json_t *builtin_policy(const char *ims_org, bool is_default)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s}, s:i, s:{s:s}, s:{s:s}, s:b, s:b, s:I}", "id",
                     PROFILE_BUILTIN_POLICY_ID, "name", "Default Timebased", "imsOrgId",
                     ims_org ? ims_org : "", "schema", "name", PROFILE_SCHEMA, "version", 1,
                     "identityGraph", "type", "pdg", "attributeMerge", "type",
                     "timestampOrdered", "isActiveOnEdge", 0, "default", is_default,
                     "updateEpoch", (json_int_t)1546300800);
}

static int list_stored(struct profiles *pf, const char *sandbox, json_t **out,
                       struct ing_err *err)
{
    json_t *obj = NULL;
    int rc = store_list(pf->st, sandbox, PROFILE_KIND_POLICY, NULL, &obj, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) json_array_append(arr, v);
    json_decref(obj);
    *out = arr;
    return 0;
}

/* Is there a stored default for this schema? */
static int stored_default(struct profiles *pf, const char *sandbox, const char *schema,
                          json_t **found, struct ing_err *err)
{
    *found = NULL;
    json_t *all = NULL;
    int rc = list_stored(pf, sandbox, &all, err);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) {
        const char *s = json_string_value(json_object_get(json_object_get(v, "schema"), "name"));
        if (s && !strcmp(s, schema) && json_is_true(json_object_get(v, "default"))) {
            *found = json_incref(v);
            break;
        }
    }
    json_decref(all);
    return 0;
}

static int validate_body(const json_t *body, struct ing_err *err)
{
    struct mp_policy p;
    int rc = mp_policy_parse(body, &p, err);
    mp_policy_clear(&p);
    if (rc)
        return rc;
    const char *schema = json_string_value(json_object_get(json_object_get(body, "schema"),
                                                          "name"));
    if (!schema || strncmp(schema, "_xdm.context.", 13) != 0)
        return field_error(err, "schema.name",
                           "schema.name must name a schema class, e.g. \"_xdm.context.profile\".");
    const json_t *name = json_object_get(body, "name");
    if (name && !json_is_string(name))
        return field_error(err, "name", "name must be a string.");
    const json_t *def = json_object_get(body, "default");
    if (def && !json_is_boolean(def))
        return field_error(err, "default", "default must be a boolean.");
    const json_t *edge = json_object_get(body, "isActiveOnEdge");
    if (edge && !json_is_boolean(edge))
        return field_error(err, "isActiveOnEdge", "isActiveOnEdge must be a boolean.");
    return 0;
}

/* The stored shape of a policy built from a (validated) body. */
static json_t *policy_doc(const json_t *body, const char *id, const char *sandbox,
                          const char *ims_org, int64_t version, int64_t created)
{
    const json_t *name = json_object_get(body, "name");
    const json_t *am = json_object_get(body, "attributeMerge");
    json_t *merge = json_pack("{s:O}", "type", json_object_get(am, "type"));
    if (json_object_get(am, "order"))
        json_object_set(merge, "order", json_object_get(am, "order"));
    int64_t now = clock_now_ms();
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:b}, s:O, s:I, s:{s:O}, s:o, s:b, s:b,"
                     " s:I, s:I, s:I}",
                     "id", id, "name", json_is_string(name) ? json_string_value(name) : "",
                     "imsOrgId", ims_org ? ims_org : "", "sandbox", "sandboxId", sandbox,
                     "sandboxName", sandbox, "type", !strcmp(sandbox, "prod") ? "production"
                                                                            : "development",
                     "default", !strcmp(sandbox, "prod"),
                     "schema", json_object_get(body, "schema"), "version", (json_int_t)version,
                     "identityGraph", "type",
                     json_object_get(json_object_get(body, "identityGraph"), "type"),
                     "attributeMerge", merge, "isActiveOnEdge",
                     json_is_true(json_object_get(body, "isActiveOnEdge")), "default",
                     json_is_true(json_object_get(body, "default")), "updateEpoch",
                     (json_int_t)(now / 1000), "created", (json_int_t)created, "updated",
                     (json_int_t)now);
}

/* Inside a transaction: make `keep_id` the only default (or the only edge-active policy) of its
 * schema class. */
static int clear_flag(struct profiles *pf, const char *sandbox, const char *schema,
                      const char *flag, const char *keep_id, struct ing_err *err)
{
    json_t *all = NULL;
    int rc = list_stored(pf, sandbox, &all, err);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *s = json_string_value(json_object_get(json_object_get(v, "schema"), "name"));
        if (!id || !strcmp(id, keep_id) || !json_is_true(json_object_get(v, flag)))
            continue;
        if (schema && (!s || strcmp(s, schema) != 0))
            continue;
        json_t *copy = json_deep_copy(v);
        json_object_set_new(copy, flag, json_false());
        rc = store_update(pf->st, sandbox, PROFILE_KIND_POLICY, id, copy, err);
        json_decref(copy);
        if (rc)
            break;
    }
    json_decref(all);
    return rc;
}

/* Write a policy document and keep the one-default rules, in one transaction. */
static int save_policy(struct profiles *pf, const char *sandbox, json_t *doc, bool insert,
                       struct ing_err *err)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *schema = json_string_value(json_object_get(json_object_get(doc, "schema"),
                                                          "name"));
    int rc = store_tx_begin(pf->st, err);
    if (rc)
        return rc;
    if (json_is_true(json_object_get(doc, "default")))
        rc = clear_flag(pf, sandbox, schema, "default", id, err);
    if (rc == 0 && json_is_true(json_object_get(doc, "isActiveOnEdge")))
        rc = clear_flag(pf, sandbox, NULL, "isActiveOnEdge", id, err);
    if (rc == 0)
        rc = insert ? store_insert(pf->st, sandbox, PROFILE_KIND_POLICY, id, doc, err)
                    : store_update(pf->st, sandbox, PROFILE_KIND_POLICY, id, doc, err);
    if (rc == 0)
        rc = store_tx_commit(pf->st, err);
    else
        store_tx_rollback(pf->st);
    policy_changed(pf);
    return rc;
}

/* The API shape: the stored document without the store's bookkeeping. */
static json_t *public_doc(const json_t *doc)
{
    json_t *copy = json_deep_copy(doc);
    json_object_del(copy, "created");
    json_object_del(copy, "updated");
    return copy;
}

int profiles_policy_create(struct profiles *pf, const char *sandbox, const char *ims_org,
                           const json_t *body, json_t **out, struct ing_err *err)
{
    *out = NULL;
    int rc = validate_body(body, err);
    if (rc)
        return rc;
    unsigned char r[16];
    id_random(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* UUID version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    char id[37];
    snprintf(id, sizeof(id),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    json_t *doc = policy_doc(body, id, sandbox, ims_org, 1, clock_now_ms());
    rc = save_policy(pf, sandbox, doc, true, err);
    if (rc == 0)
        *out = public_doc(doc);
    json_decref(doc);
    return rc;
}

int profiles_policy_get(struct profiles *pf, const char *sandbox, const char *id, json_t **out,
                        struct ing_err *err)
{
    *out = NULL;
    if (!id || !id_is_safe(id))
        return ing_err_set(err, ING_ENOTFOUND, "Merge policy %s not found.", id ? id : "");
    if (!strcmp(id, PROFILE_BUILTIN_POLICY_ID)) {
        json_t *def = NULL;
        int rc = stored_default(pf, sandbox, PROFILE_SCHEMA, &def, err);
        if (rc)
            return rc;
        *out = builtin_policy(NULL, def == NULL);
        json_decref(def);
        return 0;
    }
    json_t *doc = NULL;
    int rc = store_get(pf->st, sandbox, PROFILE_KIND_POLICY, id, &doc, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "Merge policy %s not found.", id);
    if (rc)
        return rc;
    *out = public_doc(doc);
    json_decref(doc);
    return 0;
}

int profiles_policy_update(struct profiles *pf, const char *sandbox, const char *id, bool patch,
                           const json_t *body, json_t **out, struct ing_err *err)
{
    *out = NULL;
    if (id && !strcmp(id, PROFILE_BUILTIN_POLICY_ID))
        return ing_err_set(err, ING_ESTATE, "The built-in merge policy cannot be changed; create "
                                            "a policy and make it the default instead.");
    json_t *old = NULL, *next = NULL, *doc = NULL;
    int rc = id && id_is_safe(id) ? store_get(pf->st, sandbox, PROFILE_KIND_POLICY, id, &old, err)
                                  : ING_ENOTFOUND;
    if (rc == ING_ENOTFOUND)
        rc = ing_err_set(err, ING_ENOTFOUND, "Merge policy %s not found.", id ? id : "");
    if (rc)
        goto out;
    if (!patch) {
        next = json_deep_copy(body);
    } else if (json_is_array(body)) {
        next = public_doc(old);
        rc = registry_json_patch(next, body, err);
        if (rc)
            goto out;
    } else if (json_is_object(body)) {
        next = public_doc(old);
        json_object_update(next, (json_t *)body);
    } else {
        rc = field_error(err, "", "PATCH takes a JSON Patch array or an object of fields.");
        goto out;
    }
    if ((rc = validate_body(next, err)) != 0)
        goto out;
    int64_t version = json_integer_value(json_object_get(old, "version")) + 1;
    const char *org = json_string_value(json_object_get(old, "imsOrgId"));
    doc = policy_doc(next, id, sandbox, org, version,
                     json_integer_value(json_object_get(old, "created")));
    rc = save_policy(pf, sandbox, doc, false, err);
    if (rc == 0)
        *out = public_doc(doc);
out:
    json_decref(old);
    json_decref(next);
    json_decref(doc);
    return rc;
}

int profiles_policy_delete(struct profiles *pf, const char *sandbox, const char *id,
                           struct ing_err *err)
{
    if (id && !strcmp(id, PROFILE_BUILTIN_POLICY_ID))
        return ing_err_set(err, ING_ESTATE, "The built-in merge policy cannot be deleted.");
    int rc = id && id_is_safe(id) ? store_delete(pf->st, sandbox, PROFILE_KIND_POLICY, id, err)
                                  : ING_ENOTFOUND;
    policy_changed(pf);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "Merge policy %s not found.", id ? id : "");
    return rc;
}

static const char *policy_name(const json_t *v)
{
    const char *n = json_string_value(json_object_get(v, "name"));
    return n ? n : "";
}

static int cmp_name_asc(const void *a, const void *b)
{
    return strcmp(policy_name(*(json_t *const *)a), policy_name(*(json_t *const *)b));
}

static int cmp_name_desc(const void *a, const void *b)
{
    return -cmp_name_asc(a, b);
}

int profiles_policy_list(struct profiles *pf, const char *sandbox, const struct mp_list *q,
                         json_t **out, int64_t *total, struct ing_err *err)
{
    *out = NULL;
    *total = 0;
    json_t *stored = NULL;
    int rc = list_stored(pf, sandbox, &stored, err);
    if (rc)
        return rc;
    bool have_default = false;
    size_t i;
    json_t *v;
    json_array_foreach(stored, i, v) {
        const char *s = json_string_value(json_object_get(json_object_get(v, "schema"), "name"));
        have_default = have_default || (s && !strcmp(s, PROFILE_SCHEMA) &&
                                        json_is_true(json_object_get(v, "default")));
    }
    size_t cap = json_array_size(stored) + 1, n = 0;
    json_t **all = xcalloc(cap, sizeof(*all));
    all[n++] = builtin_policy(NULL, !have_default);
    json_array_foreach(stored, i, v) all[n++] = public_doc(v);
    json_decref(stored);

    size_t kept = 0;
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_object_get(json_object_get(all[i], "schema"),
                                                         "name"));
        bool ok = !q || !q->schema_name || (s && !strcmp(s, q->schema_name));
        if (ok && q && q->is_default >= 0)
            ok = json_is_true(json_object_get(all[i], "default")) == (q->is_default == 1);
        if (ok)
            all[kept++] = all[i];
        else
            json_decref(all[i]);
    }
    if (q && q->order_by && !strcmp(q->order_by, "-name"))
        qsort(all, kept, sizeof(*all), cmp_name_desc);
    else if (q && q->order_by && (!strcmp(q->order_by, "name") || !strcmp(q->order_by, "+name")))
        qsort(all, kept, sizeof(*all), cmp_name_asc);
    int64_t start = q && q->start > 0 ? q->start : 0;
    int64_t limit = q && q->limit > 0 ? q->limit : 20;
    json_t *page = json_array();
    for (i = 0; i < kept; i++) {
        if ((int64_t)i >= start && (int64_t)i < start + limit)
            json_array_append(page, all[i]);
        json_decref(all[i]);
    }
    free(all);
    *total = (int64_t)kept;
    *out = page;
    return 0;
}

/* What a stored answer built under policy p carries: a hash of everything besides the data
 * that shapes the answer (the policy, the identity limit, the answer's format). */
static int64_t policy_stamp(const struct profiles *pf, const struct mp_policy *p)
{
    const struct idg_settings *set = idgraph_settings(pf->g);
    char head[160];
    snprintf(head, sizeof(head), "%d|%s|%d|%d|%d|%d", VIEW_FORMAT, p->id, p->stitch,
             p->precedence, set ? set->max_identities : 0, set ? (int)set->removal : 0);
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k <= p->norder; k++) {
        const char *t = k == 0 ? head : p->order[k - 1];
        for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
            h ^= *c;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* separator: ("ab","c") and ("a","bc") differ */
        h *= 1099511628211ULL;
    }
    return (int64_t)(h >> 1);
}

static void policy_copy(struct mp_policy *dst, const struct mp_policy *src)
{
    *dst = *src;
    dst->order = src->norder ? xcalloc(src->norder, sizeof(*dst->order)) : NULL;
    for (size_t i = 0; i < src->norder; i++)
        dst->order[i] = xstrdup(src->order[i]);
}

/* The default policy of a sandbox, parsed, and its stamp; cached until a policy changes. */
static int default_policy(struct profiles *pf, const char *sandbox, struct mp_policy *out,
                          int64_t *stamp, struct ing_err *err)
{
    pthread_mutex_lock(&pf->mu);
    const struct default_entry *hit = cache_find(pf, sandbox);
    bool cached = hit != NULL;
    if (hit) {
        policy_copy(out, &hit->policy);
        *stamp = hit->stamp;
    }
    pthread_mutex_unlock(&pf->mu);
    if (cached)
        return 0;
    json_t *doc = NULL;
    int rc = stored_default(pf, sandbox, PROFILE_SCHEMA, &doc, err);
    if (rc)
        return rc;
    json_t *parse = doc ? json_incref(doc) : builtin_policy(NULL, true);
    rc = mp_policy_parse(parse, out, err);
    json_decref(parse);
    if (rc == 0) {
        *stamp = policy_stamp(pf, out);
        pthread_mutex_lock(&pf->mu);
        if (pf->ncache < DEFAULT_CACHE && strlen(sandbox) < sizeof(pf->cache[0].sandbox)) {
            struct default_entry *e = &pf->cache[pf->ncache++];
            snprintf(e->sandbox, sizeof(e->sandbox), "%s", sandbox);
            policy_copy(&e->policy, out);
            e->stamp = *stamp;
        }
        pthread_mutex_unlock(&pf->mu);
    }
    json_decref(doc);
    return rc;
}

int profiles_policy_resolve(struct profiles *pf, const char *sandbox, const char *id,
                            struct mp_policy *out, struct ing_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!id || !*id) {
        int64_t stamp = 0;
        return default_policy(pf, sandbox, out, &stamp, err);
    }
    json_t *doc = NULL;
    int rc = profiles_policy_get(pf, sandbox, id, &doc, err);
    if (rc == 0)
        rc = mp_policy_parse(doc, out, err);
    json_decref(doc);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Lookups */

/* The cluster of an identity, or of an XID (code NULL, value = XID), as the policy sees it. */
static int find_cluster(struct profiles *pf, const char *sandbox, const char *code,
                        const char *value, const struct mp_policy *p, struct idg_cluster *cl,
                        struct ing_err *err)
{
    if (code)
        return idg_lookup(pf->g, sandbox, code, value, p->stitch, cl, err);
    int64_t nsid = 0;
    char *v = NULL;
    if (idg_xid_decode(value, &nsid, &v) != 0)
        return ing_err_set(err, ING_EINVAL,
                           "entityId %s is not an XID; give its namespace in entityIdNS.",
                           value ? value : "");
    int rc = idg_lookup_nsid(pf->g, sandbox, nsid, v, p->stitch, cl, err);
    free(v);
    return rc;
}

struct frag_acc {
    struct profile_frag *frags;
    json_t **docs;
    char **strs;          /* datasets and batches, owned */
    size_t n, cap, nstrs, capstrs;
    int member;
};

static const char *acc_str(struct frag_acc *a, const char *s)
{
    if (a->nstrs == a->capstrs) {
        a->capstrs = a->capstrs ? a->capstrs * 2 : 16;
        a->strs = xrealloc(a->strs, a->capstrs * sizeof(*a->strs));
    }
    return a->strs[a->nstrs++] = xstrdup(s);
}

static int frag_cb(void *ctx, size_t member, const struct pstore_frag *f)
{
    struct frag_acc *a = ctx;
    a->member = (int)member;
    json_t *doc = json_loads(f->doc, 0, NULL);
    if (!doc)
        return 0; /* cannot happen for rows this module wrote; skip rather than fail the lookup */
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->frags = xrealloc(a->frags, a->cap * sizeof(*a->frags));
        a->docs = xrealloc(a->docs, a->cap * sizeof(*a->docs));
    }
    a->docs[a->n] = doc;
    /* The batch id rides in the tags list; keep it beside the dataset. */
    const char *ds = acc_str(a, f->dataset);
    acc_str(a, f->batch);
    a->frags[a->n] = (struct profile_frag){.member = a->member, .dataset = ds, .seq = f->seq,
                                           .ts = f->ts, .upsert = f->upsert, .doc = doc};
    a->n++;
    return 0;
}

static void acc_free(struct frag_acc *a)
{
    for (size_t i = 0; i < a->n; i++)
        json_decref(a->docs[i]);
    for (size_t i = 0; i < a->nstrs; i++)
        free(a->strs[i]);
    free(a->frags);
    free(a->docs);
    free(a->strs);
}

/* Whether any identity of the cluster has events (or, events_only false, any data). */
static bool any_data(struct profiles *pf, const struct idg_cluster *cl, bool events_only)
{
    for (size_t i = 0; i < cl->n; i++) {
        bool has = false;
        if (cl->members[i].ns.gid &&
            pstore_has_profile_data(idgraph_pstore(pf->g), cl->members[i].ns.gid,
                                    cl->members[i].value, events_only, &has, NULL) == 0 &&
            has)
            return true;
    }
    return false;
}

/* The AEP answer {"<entityId>": {...}} of a cluster (members by id) from its merged fragments.
 * Takes `merged` and `sources`. Shared by lookups and the stored answers, so that both give the
 * same bytes. */
static json_t *compose(const struct mp_policy *p, const struct idg_member *members, size_t n,
                       const struct frag_acc *acc, json_t *merged, json_t *sources, int64_t last,
                       const char *const *fields, size_t nfields)
{
    const struct idg_member *anchor = &members[0];
    char *entity_id = idg_xid(anchor->ns.nsid, anchor->value);
    json_t *graph = json_array();
    json_t *idmap = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct idg_member *m = &members[i];
        char *xid = idg_xid(m->ns.nsid, m->value);
        json_array_append_new(graph, json_string(xid));
        free(xid);
        json_t *items = json_object_get(idmap, m->ns.code);
        if (!items) {
            items = json_array();
            json_object_set_new(idmap, m->ns.code, items);
        }
        json_array_append_new(items, json_pack("{s:s}", "id", m->value));
    }
    size_t k;
    json_t *x;
    if (!json_object_get(merged, "identityMap"))
        json_object_set_new(merged, "identityMap", idmap);
    else
        json_decref(idmap);
    json_t *tags = json_array();
    for (size_t i = 0; i < acc->n; i++) {
        if (p->precedence && precedence_rank(p, acc->frags[i].dataset) < 0)
            continue;
        const char *batch = acc->strs[2 * i + 1];
        bool listed = false;
        json_array_foreach(tags, k, x) listed = listed || !strcmp(json_string_value(x), batch);
        if (!listed)
            json_array_append_new(tags, json_string(batch));
    }
    json_t *entity = nfields ? profile_project(merged, fields, nfields) : json_incref(merged);
    json_decref(merged);
    char when[32];
    profile_time_text(last, when);
    json_t *body = json_pack("{s:s, s:o, s:o, s:o, s:{s:s}, s:o, s:s}", "entityId", entity_id,
                             "sources", sources, "tags", tags, "identityGraph", graph,
                             "mergePolicy", "id", p->id, "entity", entity, "lastModifiedAt",
                             when);
    json_t *out = json_object();
    json_object_set_new(out, entity_id, body);
    free(entity_id);
    return out;
}

int profiles_entity(struct profiles *pf, const char *sandbox, const char *code, const char *value,
                    const struct mp_policy *p, const char *const *fields, size_t nfields,
                    json_t **out, struct ing_err *err)
{
    *out = NULL;
    struct idg_cluster cl = {0};
    struct frag_acc acc = {0};
    json_t *merged = NULL, *sources = NULL;
    int rc = find_cluster(pf, sandbox, code, value, p, &cl, err);
    if (rc)
        goto out;
    {
        int64_t *gids = xcalloc(cl.n ? cl.n : 1, sizeof(*gids));
        const char **values = xcalloc(cl.n ? cl.n : 1, sizeof(*values));
        for (size_t i = 0; i < cl.n; i++) {
            gids[i] = cl.members[i].ns.gid;
            values[i] = cl.members[i].value;
        }
        rc = pstore_frags_many(idgraph_pstore(pf->g), cl.n, gids, values, frag_cb, &acc, err);
        free(gids);
        free(values);
    }
    if (rc)
        goto out;
    int64_t last = 0;
    size_t used = 0;
    merged = profile_merge(p, acc.frags, acc.n, &sources, &last, &used);
    /* Events alone make a profile too, but only through the identities the policy allows. */
    if (used == 0 && !any_data(pf, &cl, true)) {
        rc = ing_err_set(err, ING_ENOTFOUND, "No profile was found for this identity.");
        goto out;
    }
    *out = compose(p, cl.members, cl.n, &acc, merged, sources, last, fields, nfields);
    merged = sources = NULL;
out:
    json_decref(merged);
    json_decref(sources);
    acc_free(&acc);
    idg_cluster_free(&cl);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Stored answers (pstore.h): built at the commit of every transaction that changes them */

static int view_build(void *ctx, const struct pstore_view_src *src, int64_t *stamp, char **body,
                      size_t *len, struct ing_err *err)
{
    struct profiles *pf = ctx;
    *body = NULL;
    *len = 0;
    struct mp_policy p;
    int rc = default_policy(pf, src->sandbox, &p, stamp, err);
    if (rc)
        return rc;
    const struct pstore_cluster *c = src->cluster;
    const struct idg_settings *set = idgraph_settings(pf->g);
    struct frag_acc acc = {0};
    struct idg_member *members = NULL;
    /* Without stitching, each identity has its own answer; over the identity limit the answer
     * is a 422: both stay with the general path, with an empty placeholder that a rebuild
     * after a policy change revisits. */
    if (!p.stitch || (set && set->max_identities > 0 && c->n > (size_t)set->max_identities)) {
        *body = xstrdup("");
        goto out;
    }
    members = xcalloc(c->n, sizeof(*members));
    for (size_t i = 0; i < c->n; i++) {
        const struct pstore_ns *ns = &src->ns[i];
        struct idg_member *m = &members[i];
        m->id = c->members[i].id;
        m->ns.gid = ns->gid;
        m->ns.nsid = ns->nsid;
        snprintf(m->ns.code, sizeof(m->ns.code), "%s", ns->code);
        snprintf(m->ns.id_type, sizeof(m->ns.id_type), "%s", ns->id_type);
        m->ns.people = strcmp(ns->id_type, "NON_PEOPLE") != 0;
        m->value = c->members[i].value; /* borrowed: not freed below */
    }
    if (src->nfrags == 1 &&
        (!p.precedence || precedence_rank(&p, src->frags[0].dataset) >= 0)) {
        /* The common case, one fragment: written directly, the same bytes (profile_fast.h). */
        struct buf b = {0};
        const struct pstore_frag *f = &src->frags[0];
        if (profile_fast_answer(p.id, members, c->n, f->dataset, f->batch, f->ts, f->doc,
                                &b) == 0) {
            *body = (char *)b.data;
            *len = b.len;
            goto out;
        }
        buf_free(&b);
    }
    for (size_t k = 0; k < src->nfrags; k++)
        frag_cb(&acc, src->frag_member[k], &src->frags[k]);
    json_t *sources = NULL;
    int64_t last = 0;
    size_t used = 0;
    json_t *merged = profile_merge(&p, acc.frags, acc.n, &sources, &last, &used);
    if (used == 0 && (src->nfrags > 0 || !src->has_events)) {
        json_decref(merged);
        json_decref(sources);
        /* Fragments the policy leaves out (events not looked at): the general path decides,
         * from a placeholder. No fragment and no event: no profile, nothing stored. */
        if (src->nfrags > 0)
            *body = xstrdup("");
        goto out;
    }
    json_t *doc = compose(&p, members, c->n, &acc, merged, sources, last, NULL, 0);
    *body = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    if (!*body)
        rc = ing_err_set(err, ING_EINTERNAL, "profile: stored answer cannot be serialised");
out:
    if (*body && !*len)
        *len = strlen(*body);
    free(members);
    acc_free(&acc);
    mp_policy_clear(&p);
    return rc;
}

int profiles_entity_stored(struct profiles *pf, const char *sandbox, const char *code,
                           const char *value, struct buf *out, struct ing_err *err)
{
    int64_t want = 0;
    bool stitch = false;
    pthread_mutex_lock(&pf->mu);
    const struct default_entry *hit = cache_find(pf, sandbox);
    bool cached = hit != NULL;
    if (hit) {
        want = hit->stamp;
        stitch = hit->policy.stitch;
    }
    pthread_mutex_unlock(&pf->mu);
    if (!cached) {
        struct mp_policy p;
        int rc = default_policy(pf, sandbox, &p, &want, err);
        if (rc)
            return rc;
        stitch = p.stitch;
        mp_policy_clear(&p);
    }
    if (!stitch || !code || !value)
        return ING_ENOTFOUND;
    struct pstore *ps = idgraph_pstore(pf->g);
    struct pstore_ns ns;
    if (pstore_ns_by_code(ps, sandbox, code, &ns, NULL) != 0 || !strcmp(ns.id_type, "NON_PEOPLE"))
        return ING_ENOTFOUND;
    char *norm = NULL;
    if (idg_normalise(ns.code, ns.id_type, value, &norm) != IDG_NORM_OK)
        return ING_ENOTFOUND;
    size_t mark = out->len;
    int64_t stamp = 0;
    int rc = pstore_view_get(ps, ns.gid, norm, &stamp, out, err);
    free(norm);
    if (rc == 0 && (stamp != want || out->len == mark))
        rc = ING_ENOTFOUND; /* built under another policy, or a placeholder */
    if (rc)
        out->len = mark;
    return rc;
}

struct ev_item {
    int64_t ts, seq, stored_ts;
    char *eid;
    json_t *doc;
};

struct ev_acc {
    struct ev_item *items;
    size_t n, cap;
};

static int event_cb(void *ctx, const struct pstore_event *e)
{
    struct ev_acc *a = ctx;
    json_t *doc = json_loads(e->doc, 0, NULL);
    if (!doc)
        return 0;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->items = xrealloc(a->items, a->cap * sizeof(*a->items));
    }
    a->items[a->n++] = (struct ev_item){.ts = e->ts, .seq = e->seq, .stored_ts = e->stored_ts,
                                        .eid = xstrdup(e->eid), .doc = doc};
    return 0;
}

static int cmp_event(const void *pa, const void *pb)
{
    const struct ev_item *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    int c = strcmp(a->eid, b->eid);
    if (c)
        return c;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

int profiles_events(struct profiles *pf, const char *sandbox, const char *code, const char *value,
                    const struct mp_policy *p, const struct profile_events_query *q,
                    const char *const *fields, size_t nfields, json_t **children,
                    int64_t *total, char **related, struct ing_err *err)
{
    *children = NULL;
    *total = 0;
    *related = NULL;
    struct idg_cluster cl = {0};
    struct ev_acc acc = {0};
    int rc = find_cluster(pf, sandbox, code, value, p, &cl, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < cl.n && rc == 0; i++) {
        if (cl.members[i].ns.gid)
            rc = pstore_events(idgraph_pstore(pf->g), cl.members[i].ns.gid, cl.members[i].value,
                               q->start_time, q->end_time, event_cb, &acc, err);
    }
    if (rc)
        goto out;
    if (acc.n == 0 && !any_data(pf, &cl, false)) {
        rc = ing_err_set(err, ING_ENOTFOUND, "No profile was found for this identity.");
        goto out;
    }
    /* One event per (_id, timestamp): the newest batch's copy. */
    if (acc.n > 1)
        qsort(acc.items, acc.n, sizeof(*acc.items), cmp_event);
    size_t kept = 0;
    for (size_t i = 0; i < acc.n; i++) {
        if (kept > 0 && acc.items[kept - 1].ts == acc.items[i].ts &&
            !strcmp(acc.items[kept - 1].eid, acc.items[i].eid)) {
            free(acc.items[kept - 1].eid);
            json_decref(acc.items[kept - 1].doc);
            acc.items[kept - 1] = acc.items[i];
            continue;
        }
        acc.items[kept++] = acc.items[i];
    }
    acc.n = kept;
    *related = idg_xid(cl.members[0].ns.nsid, cl.members[0].value);
    json_t *arr = json_array();
    int64_t limit = q->limit > 0 ? q->limit : PROFILE_EVENTS_LIMIT;
    int64_t first = q->offset > 0 ? q->offset : 0;
    for (int64_t k = first; k < (int64_t)kept && k - first < limit; k++) {
        const struct ev_item *e = &acc.items[q->desc ? kept - 1 - (size_t)k : (size_t)k];
        char when[32];
        profile_time_text(e->stored_ts, when);
        json_t *entity = nfields ? profile_project(e->doc, fields, nfields) : json_incref(e->doc);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:o, s:s}", "relatedEntityId",
                                             *related, "entityId", e->eid, "timestamp",
                                             (json_int_t)e->ts, "entity", entity,
                                             "lastModifiedAt", when));
    }
    *children = arr;
    *total = (int64_t)kept;
out:
    for (size_t i = 0; i < acc.n; i++) {
        free(acc.items[i].eid);
        json_decref(acc.items[i].doc);
    }
    free(acc.items);
    idg_cluster_free(&cl);
    return rc;
}
