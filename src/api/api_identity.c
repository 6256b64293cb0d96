/*
 * api_identity.c - Identity Service graph APIs (/data/core/identity): cluster members (GET by
 * xid, nsid+id or namespace+id; POST for up to 1000 identities) and the v2 graph (set or graph
 * projection, edges with their provenance: datasets, batches, first and last time).
 *
 * Thin handlers over identity/idgraph.h. An identity is named as the request named it: XIDs come
 * back as XIDs, {nsid,id} as {nsid,id}, {namespace,id} as {namespace,id} ({ns,id} in v2). An
 * identity the graph does not know has no cluster: its members list is empty. Identities that
 * cannot be looked up (unknown namespace, non-people namespace, bad XID) are listed as
 * unprocessed.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "identity/idgraph.h"
#include "util/log.h"
#include "util/mem.h"

#define IDS_BASE "/data/core/identity"
#define MAX_IDENTITIES 1000

enum ref_kind { REF_XID, REF_NSID, REF_NS };

struct ref {
    enum ref_kind kind;
    int64_t nsid;
    const char *ns;
    const char *id;
    const char *xid;
};

static bool graph_type_stitches(const char *t)
{
    return !(t && (!strcasecmp(t, "none")));
}

static int ref_lookup(struct app *app, const char *sandbox, const struct ref *r, bool stitch,
                      struct idg_cluster *cl, struct ing_err *err)
{
    if (r->kind == REF_NS)
        return idg_lookup(app->idgraph, sandbox, r->ns, r->id, stitch, cl, err);
    if (r->kind == REF_NSID)
        return idg_lookup_nsid(app->idgraph, sandbox, r->nsid, r->id, stitch, cl, err);
    int64_t nsid = 0;
    char *value = NULL;
    if (idg_xid_decode(r->xid, &nsid, &value) != 0)
        return ing_err_set(err, ING_EINVAL, "%s is not an XID.", r->xid);
    int rc = idg_lookup_nsid(app->idgraph, sandbox, nsid, value, stitch, cl, err);
    free(value);
    return rc;
}

/* One identity in the request's way of naming it; v2 says "ns" where v1 says "namespace". */
static json_t *name_identity(enum ref_kind kind, const struct idg_member *m, bool v2)
{
    if (kind == REF_XID) {
        char *x = idg_xid(m->ns.nsid, m->value);
        json_t *s = json_string(x);
        free(x);
        return s;
    }
    if (kind == REF_NSID)
        return json_pack("{s:I, s:s}", "nsid", (json_int_t)m->ns.nsid, "id", m->value);
    return json_pack("{s:s, s:s}", v2 ? "ns" : "namespace", m->ns.code, "id", m->value);
}

static json_t *name_ref(const struct ref *r, bool v2)
{
    if (r->kind == REF_XID)
        return json_string(r->xid);
    if (r->kind == REF_NSID)
        return json_pack("{s:I, s:s}", "nsid", (json_int_t)r->nsid, "id", r->id);
    return json_pack("{s:s, s:s}", v2 ? "ns" : "namespace", r->ns, "id", r->id);
}

static json_t *members_of(const struct ref *r, const struct idg_cluster *cl, bool v2)
{
    json_t *arr = json_array();
    if (cl->label == 0)
        return arr; /* not in the graph: no cluster */
    for (size_t i = 0; i < cl->n; i++)
        json_array_append_new(arr, name_identity(r->kind, &cl->members[i], v2));
    return arr;
}

/* The v1 cluster entry: {"xid"|"compositeXid", "members"}. */
static json_t *cluster_entry(const struct ref *r, const struct idg_cluster *cl)
{
    json_t *e = json_object();
    json_object_set_new(e, r->kind == REF_XID ? "xid" : "compositeXid", name_ref(r, false));
    json_object_set_new(e, "members", members_of(r, cl, false));
    return e;
}

static void id_error(struct http_resp *resp, int rc, const struct ing_err *err)
{
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    switch (rc) {
    case ING_EINVAL:
    case ING_ENOTFOUND:
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput", detail);
        break;
    case ING_ETOOBIG:
        http_resp_error(resp, 422, "IDENTITY-1422-422", "Too many related identities", detail);
        break;
    default:
        log_error("identity request failed: %s", detail);
        http_resp_error(resp, 500, "IDENTITY-1500-500", "InternalError", detail);
        break;
    }
}

static bool parse_nsid(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 0)
        return false;
    *out = v;
    return true;
}

/* GET /identity/cluster/members?xid= | nsid(nsId)=&id= | namespace(ns)=&id= [&graph-type=] */
static void h_members_get(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    struct ref r = {0};
    const char *nsid = http_req_query(req, "nsid");
    if (!nsid)
        nsid = http_req_query(req, "nsId");
    const char *ns = http_req_query(req, "namespace");
    if (!ns)
        ns = http_req_query(req, "ns");
    r.xid = http_req_query(req, "xid");
    r.id = http_req_query(req, "id");
    if (r.xid && *r.xid) {
        r.kind = REF_XID;
    } else if (r.id && *r.id && nsid) {
        r.kind = REF_NSID;
        if (!parse_nsid(nsid, &r.nsid)) {
            http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                            "nsid must be a namespace's numeric id.");
            return;
        }
    } else if (r.id && *r.id && ns && *ns) {
        r.kind = REF_NS;
        r.ns = ns;
    } else {
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                        "Give xid, or id with nsid or namespace.");
        return;
    }
    struct ing_err err;
    ing_err_clear(&err);
    struct idg_cluster cl = {0};
    int rc = ref_lookup(app, req->sandbox, &r, graph_type_stitches(http_req_query(req,
                                                                                 "graph-type")),
                        &cl, &err);
    if (rc) {
        id_error(resp, rc, &err);
        return;
    }
    json_t *doc = json_pack("{s:s, s:[o], s:[], s:s}", "version", "1.1.0", "clusters",
                            cluster_entry(&r, &cl), "unprocessedRecords", "algo_type",
                            "STITCH_ALL");
    idg_cluster_free(&cl);
    http_resp_json_new(resp, 200, doc);
}

/* The identities of a POST body: xids, compositeXids (nsid) or compositeXidsWithNamespace; v2
 * uses xids or composite_xids ({ns|nsid, id}). *n is the number found; ING_ETOOBIG over 1000. */
static int parse_refs(const json_t *body, bool v2, struct ref **out, size_t *n,
                      json_t *unprocessed)
{
    *out = NULL;
    *n = 0;
    const json_t *xids = json_object_get(body, "xids");
    const json_t *comp = json_object_get(body, v2 ? "composite_xids" : "compositeXids");
    const json_t *compns = v2 ? NULL : json_object_get(body, "compositeXidsWithNamespace");
    size_t total = json_array_size(xids) + json_array_size(comp) + json_array_size(compns);
    if (total > MAX_IDENTITIES)
        return ING_ETOOBIG;
    struct ref *refs = xcalloc(total ? total : 1, sizeof(*refs));
    size_t k = 0, i;
    const json_t *v;
    json_array_foreach(xids, i, v) {
        if (json_is_string(v))
            refs[k++] = (struct ref){.kind = REF_XID, .xid = json_string_value(v)};
        else
            json_array_append(unprocessed, (json_t *)v);
    }
    const json_t *lists[2] = {comp, compns};
    for (size_t l = 0; l < 2; l++) {
        json_array_foreach(lists[l], i, v) {
            const char *id = json_string_value(json_object_get(v, "id"));
            const json_t *nsid = json_object_get(v, "nsid");
            const char *ns = json_string_value(json_object_get(v, "ns"));
            if (!ns)
                ns = json_string_value(json_object_get(v, "namespace"));
            if (id && json_is_integer(nsid))
                refs[k++] = (struct ref){.kind = REF_NSID, .id = id,
                                         .nsid = json_integer_value(nsid)};
            else if (id && ns)
                refs[k++] = (struct ref){.kind = REF_NS, .id = id, .ns = ns};
            else
                json_array_append(unprocessed, (json_t *)v);
        }
    }
    *out = refs;
    *n = k;
    return 0;
}

static const char *body_graph_type(const json_t *body)
{
    const char *t = json_string_value(json_object_get(body, "graph-type"));
    return t ? t : json_string_value(json_object_get(body, "graph_type"));
}

/* POST /identity/clusters/members (and the singular spelling) */
static void h_members_post(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "IDENTITY-1400-400");
    if (!body)
        return;
    json_t *unprocessed = json_array(), *clusters = json_array();
    struct ref *refs = NULL;
    size_t n = 0;
    if (parse_refs(body, false, &refs, &n, unprocessed) != 0) {
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                        "At most 1000 identities per request.");
        goto out;
    }
    if (n == 0 && json_array_size(unprocessed) == 0) {
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                        "Give xids, compositeXids or compositeXidsWithNamespace.");
        goto out;
    }
    bool stitch = graph_type_stitches(body_graph_type(body));
    for (size_t i = 0; i < n; i++) {
        struct ing_err err;
        ing_err_clear(&err);
        struct idg_cluster cl = {0};
        int rc = ref_lookup(app, req->sandbox, &refs[i], stitch, &cl, &err);
        if (rc == 0) {
            json_array_append_new(clusters, cluster_entry(&refs[i], &cl));
        } else if (rc == ING_EINVAL || rc == ING_ENOTFOUND || rc == ING_ETOOBIG) {
            json_array_append_new(unprocessed, name_ref(&refs[i], false));
        } else {
            id_error(resp, rc, &err);
            idg_cluster_free(&cl);
            goto out;
        }
        idg_cluster_free(&cl);
    }
    http_resp_json_new(resp, 200,
                       json_pack("{s:s, s:O, s:O, s:s}", "version", "1.1.0", "clusters", clusters,
                                 "unprocessedRecords", unprocessed, "algo_type", "STITCH_ALL"));
out:
    free(refs);
    json_decref(unprocessed);
    json_decref(clusters);
    json_decref(body);
}

/* ---------------------------------------------------------------------------------------------- */
/* v2 graph */

struct edge_agg {
    int64_t a, b;
    int64_t first, last;
    json_t *datasets, *batches;
};

struct edge_ctx {
    struct edge_agg *edges;
    size_t n, cap;
};

static void add_unique(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return;
    json_array_append_new(arr, json_string(s));
}

/* The cluster's edges, one per link with the provenance of every batch that made it; self edges
 * left out: they only record that a batch saw a lone identity. */
static int edge_cb(void *ctx, const struct pstore_edge *e)
{
    struct edge_ctx *c = ctx;
    if (e->a == e->b)
        return 0;
    /* edges come ordered by (a, b, seq): the rows of one link are adjacent */
    struct edge_agg *g = NULL;
    if (c->n && c->edges[c->n - 1].a == e->a && c->edges[c->n - 1].b == e->b)
        g = &c->edges[c->n - 1];
    if (!g) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->edges = xrealloc(c->edges, c->cap * sizeof(*c->edges));
        }
        g = &c->edges[c->n++];
        *g = (struct edge_agg){.a = e->a, .b = e->b, .first = e->first_ts, .last = e->last_ts,
                               .datasets = json_array(), .batches = json_array()};
    }
    if (e->first_ts < g->first)
        g->first = e->first_ts;
    if (e->last_ts > g->last)
        g->last = e->last_ts;
    add_unique(g->datasets, e->dataset);
    add_unique(g->batches, e->batch);
    return 0;
}

static const struct idg_member *member_by_id(const struct idg_cluster *cl, int64_t id)
{
    for (size_t i = 0; i < cl->n; i++)
        if (cl->members[i].id == id)
            return &cl->members[i];
    return NULL;
}

static int graph_projection(struct app *app, const struct ref *r, const struct idg_cluster *cl,
                            bool meta, json_t *entry, struct ing_err *err)
{
    json_t *vertices = json_array(), *edges = json_array();
    struct edge_ctx ec = {0};
    int rc = 0;
    for (size_t i = 0; i < cl->n && cl->label && rc == 0; i++) {
        const struct idg_member *m = &cl->members[i];
        json_t *v = json_object();
        json_object_set_new(v, r->kind == REF_XID ? "xid" : "composite_xid",
                            name_identity(r->kind, m, true));
        json_object_set_new(v, "last_updated_ts", json_integer(m->last_ts));
        json_array_append_new(vertices, v);
    }
    if (cl->label && rc == 0)
        rc = pstore_cluster_edges(idgraph_pstore(app->idgraph), cl->label, edge_cb, &ec, err);
    for (size_t i = 0; i < ec.n; i++) {
        struct edge_agg *g = &ec.edges[i];
        const struct idg_member *a = member_by_id(cl, g->a), *b = member_by_id(cl, g->b);
        if (rc == 0 && a && b) {
            json_t *e = json_object();
            json_object_set_new(e, r->kind == REF_XID ? "xid_pair" : "composite_xid_pair",
                                json_pack("[o, o]", name_identity(r->kind, a, true),
                                          name_identity(r->kind, b, true)));
            if (meta) {
                json_object_set_new(e, "first_established_ts", json_integer(g->first));
                json_object_set_new(e, "last_established_ts", json_integer(g->last));
                json_object_set(e, "dataset_ids", g->datasets);
                json_object_set(e, "batch_ids", g->batches);
            }
            json_array_append_new(edges, e);
        }
        json_decref(g->datasets);
        json_decref(g->batches);
    }
    free(ec.edges);
    json_object_set_new(entry, "vertices", vertices);
    json_object_set_new(entry, "edges", edges);
    return rc;
}

/* POST /identity/v2/graph */
static void h_graph_v2(void *vapp, struct http_req *req, struct http_resp *resp)
{
    struct app *app = vapp;
    json_t *body = api_parse_body(req, resp, "IDENTITY-1400-400");
    if (!body)
        return;
    json_t *unprocessed = json_array(), *graphs = json_array();
    struct ref *refs = NULL;
    size_t n = 0;
    const char *proj = json_string_value(json_object_get(body, "projection_type"));
    bool graph = proj && !strcmp(proj, "graph");
    if (proj && !graph && strcmp(proj, "set") != 0) {
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                        "Graph Request Invalid - projection types available are [graph|set].");
        goto out;
    }
    if (parse_refs(body, true, &refs, &n, unprocessed) != 0) {
        http_resp_error(resp, 400, "IDENTITY-1400-400", "InvalidInput",
                        "At most 1000 identities per request.");
        goto out;
    }
    bool meta = json_is_true(json_object_get(body, "require_edge_meta_data"));
    for (size_t i = 0; i < n; i++) {
        struct ing_err err;
        ing_err_clear(&err);
        struct idg_cluster cl = {0};
        int rc = ref_lookup(app, req->sandbox, &refs[i], true, &cl, &err);
        if (rc == ING_EINVAL || rc == ING_ENOTFOUND || rc == ING_ETOOBIG) {
            json_array_append_new(unprocessed, name_ref(&refs[i], true));
            continue;
        }
        json_t *entry = json_object();
        if (rc == 0) {
            json_object_set_new(entry, refs[i].kind == REF_XID ? "xid" : "composite_xid",
                                name_ref(&refs[i], true));
            if (graph)
                rc = graph_projection(app, &refs[i], &cl, meta, entry, &err);
            else
                json_object_set_new(entry, "members", members_of(&refs[i], &cl, true));
        }
        idg_cluster_free(&cl);
        if (rc) {
            json_decref(entry);
            id_error(resp, rc, &err);
            goto out;
        }
        json_array_append_new(graphs, entry);
    }
    http_resp_json_new(resp, 200,
                       json_pack("{s:s, s:O, s:O, s:s}", "version", "2.0", "graphs", graphs,
                                 "unprocessed_composite_xids", unprocessed, "algo_type",
                                 "STITCH_ALL"));
out:
    free(refs);
    json_decref(unprocessed);
    json_decref(graphs);
    json_decref(body);
}

static const struct http_route routes[] = {
    {HTTP_GET, IDS_BASE "/cluster/members", h_members_get, HTTP_BODY_NONE},
    {HTTP_POST, IDS_BASE "/cluster/members", h_members_post, HTTP_BODY_JSON},
    {HTTP_POST, IDS_BASE "/clusters/members", h_members_post, HTTP_BODY_JSON},
    {HTTP_POST, IDS_BASE "/v2/graph", h_graph_v2, HTTP_BODY_JSON},
};

const struct api_routes api_identity_routes = {routes, ING_ARRAY_LEN(routes)};
