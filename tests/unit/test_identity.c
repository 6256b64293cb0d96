/* test_identity.c - unit tests of the identity graph (src/identity/idgraph.c) over the real
 * pstore (src/store/pstore_sqlite.c): extraction and normalisation, incremental merges, the
 * guardrail and its removal order, removal of a batch with cluster split, lookups, XIDs, and a
 * property test against a from-scratch connected-components computation; the storage itself:
 * dictionary growth over many bucket splits, edge provenance, the conversion of a version-1
 * (row per identity) database, and WAL checkpoints in the background instead of in commits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "identity/idgraph.h"
#include "store/pstore.h"
#include "store/pstore_int.h" /* pstore__ckpt_runs */
#include "util/fs.h"
#include "util/mem.h"

struct fixture {
    char dir[64];
    struct pstore *ps;
    struct idgraph *g;
    int64_t people, email, cookie, device; /* gids */
};

static struct fixture *open_fixture(int limit, enum idg_removal removal)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-identity-XXXXXX");
    if (!mkdtemp(fx->dir))
        return NULL;
    struct pstore_opts o = {.fast = true};
    struct ing_err err;
    ing_err_clear(&err);
    if (pstore_open(&fx->ps, fx->dir, &o, &err) != 0) {
        fprintf(stderr, "pstore_open: %s\n", err.msg);
        return NULL;
    }
    struct idg_settings s = {.max_identities = limit, .removal = removal};
    if (idgraph_new(&fx->g, fx->ps, NULL, &s, &err) != 0)
        return NULL;
    struct pstore_tx *tx = NULL;
    if (pstore_begin(fx->ps, &tx, &err) != 0 ||
        pstore_tx_ns_ensure(tx, "prod", "crm", 1001, "CROSS_DEVICE", &fx->people, &err) != 0 ||
        pstore_tx_ns_ensure(tx, "prod", "Email", 6, "EMAIL", &fx->email, &err) != 0 ||
        pstore_tx_ns_ensure(tx, "prod", "ECID", 4, "COOKIE", &fx->cookie, &err) != 0 ||
        pstore_tx_ns_ensure(tx, "prod", "IDFA", 20915, "DEVICE", &fx->device, &err) != 0 ||
        pstore_commit(tx, &err) != 0)
        return NULL;
    return fx;
}

static void close_fixture(struct fixture *fx)
{
    idgraph_free(fx->g);
    pstore_close(fx->ps);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
}

static int setup(void **state)
{
    *state = open_fixture(0, IDG_REMOVE_AEP);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    close_fixture(*state);
    return 0;
}

/* A row of identities in one namespace written "a,b,c". */
static void add_row(struct idg_batch *b, int64_t gid, const char *csv)
{
    char *copy = xstrdup(csv);
    const char *vals[32];
    int64_t gids[32];
    size_t n = 0;
    for (char *t = strtok(copy, ","); t && n < 32; t = strtok(NULL, ","), n++) {
        vals[n] = t;
        gids[n] = gid;
    }
    idg_batch_add_row(b, gids, vals, n);
    free(copy);
}

/* Apply a batch (order `seq`, time ts) in its own transaction. */
static void apply(struct fixture *fx, struct idg_batch *b, const char *batch, int64_t ts,
                  struct idg_apply_result *res)
{
    struct pstore_tx *tx = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int64_t seq = 0;
    assert_int_equal(pstore_begin(fx->ps, &tx, &err), 0);
    assert_int_equal(pstore_tx_batch_seq(tx, batch, "ds1", &seq, &err), 0);
    struct idg_apply_result local;
    assert_int_equal(idg_apply_batch(fx->g, tx, b, seq, ts, res ? res : &local, &err), 0);
    assert_int_equal(pstore_commit(tx, &err), 0);
}

static void revert(struct fixture *fx, const char *batch, struct idg_remove_result *res)
{
    struct pstore_tx *tx = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int64_t seq = 0;
    assert_int_equal(pstore_begin(fx->ps, &tx, &err), 0);
    assert_int_equal(pstore_tx_batch_find(tx, batch, &seq, &err), 0);
    struct idg_remove_result local;
    assert_int_equal(idg_remove_batch(fx->g, tx, seq, res ? res : &local, &err), 0);
    assert_int_equal(pstore_commit(tx, &err), 0);
}

/* Cluster label of (gid, value), 0 when unknown. */
static int64_t label_of(struct fixture *fx, int64_t gid, const char *value)
{
    int64_t id = 0, label = 0;
    int rc = pstore_ident_lookup(fx->ps, gid, value, &id, &label, NULL);
    return rc == 0 ? label : 0;
}

static size_t cluster_size(struct fixture *fx, int64_t gid, const char *value)
{
    struct idg_cluster cl = {0};
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(idg_lookup(fx->g, "prod", gid == fx->email ? "Email" : "crm", value, true,
                                &cl, &err),
                     0);
    size_t n = cl.label ? cl.n : 0;
    idg_cluster_free(&cl);
    return n;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_normalise(void **state)
{
    (void)state;
    char *v = NULL;
    assert_int_equal(idg_normalise("Email", "EMAIL", "  Danny@Example.COM \t", &v), IDG_NORM_OK);
    assert_string_equal(v, "danny@example.com");
    free(v);
    /* lower-casing is for email namespaces only */
    assert_int_equal(idg_normalise("lumaCrmId", "CROSS_DEVICE", " AbC ", &v), IDG_NORM_OK);
    assert_string_equal(v, "AbC");
    free(v);
    assert_int_equal(idg_normalise("lumaCrmId", "CROSS_DEVICE", "   ", &v), IDG_NORM_EMPTY);
    assert_null(v);
    char *long_value = xmalloc(IDG_VALUE_MAX + 2);
    memset(long_value, 'x', IDG_VALUE_MAX + 1);
    long_value[IDG_VALUE_MAX + 1] = '\0';
    assert_int_equal(idg_normalise("c", "COOKIE", long_value, &v), IDG_NORM_TOO_LONG);
    long_value[IDG_VALUE_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(idg_normalise("c", "COOKIE", long_value, &v), IDG_NORM_OK);
    assert_int_equal(strlen(v), IDG_VALUE_MAX);
    free(v);
    free(long_value);
}

static void test_extract(void **state)
{
    (void)state;
    struct xdm_identity ids[2] = {
        {.path = "_t.systemIdentifier.loyaltyId", .namespace_code = "lumaLoyaltyId", .primary = true},
        {.path = "_t.systemIdentifier.crmId", .namespace_code = "lumaCrmId", .primary = false},
    };
    struct xdm_plan plan = {.identities = ids, .n_identities = 2};
    json_t *rec = json_loads("{\"_t\":{\"systemIdentifier\":{\"loyaltyId\":5625458}},"
                             "\"identityMap\":{\"Email\":[{\"id\":\"a@b.c\",\"primary\":false},"
                             "{\"id\":\"x@y.z\"}],\"ECID\":[{\"id\":\"123\",\"primary\":true}]}}",
                             0, NULL);
    assert_non_null(rec);
    struct idg_found *f = NULL;
    size_t n = 0;
    idg_extract(&plan, rec, &f, &n);
    assert_int_equal(n, 4); /* crmId is absent; identityMap gives three */
    assert_string_equal(f[0].code, "lumaLoyaltyId");
    assert_string_equal(f[0].raw, "5625458"); /* a JSON integer id becomes its text */
    assert_true(f[0].primary);
    assert_string_equal(f[1].code, "Email");
    assert_string_equal(f[1].raw, "a@b.c");
    assert_false(f[1].primary);
    assert_string_equal(f[3].code, "ECID");
    assert_true(f[3].primary);
    idg_found_free(f, n);
    json_decref(rec);
}

static void test_merge_incremental(void **state)
{
    struct fixture *fx = *state;
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new(), *b3 = idg_batch_new();
    add_row(b1, fx->people, "a,b");
    add_row(b1, fx->people, "a,b"); /* the same link twice in one batch: one edge */
    add_row(b1, fx->people, "lone");
    struct idg_apply_result r1;
    apply(fx, b1, "B1", 1000, &r1);
    assert_int_equal(r1.identities_new, 3);
    assert_int_equal(r1.links, 2); /* a-b and the self edge of "lone" */
    assert_int_equal(r1.clusters_merged, 0);
    assert_int_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "b"));
    assert_int_not_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "lone"));

    add_row(b2, fx->people, "c,d");
    add_row(b2, fx->people, "e");
    apply(fx, b2, "B2", 2000, NULL);
    assert_int_not_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "c"));

    /* b-c bridges the two clusters, and "e" joins "lone" through a row with a new identity */
    add_row(b3, fx->people, "b,c");
    add_row(b3, fx->people, "lone,f,e");
    struct idg_apply_result r3;
    apply(fx, b3, "B3", 3000, &r3);
    assert_int_equal(r3.identities_new, 1);
    assert_int_equal(r3.clusters_merged, 2);
    int64_t l = label_of(fx, fx->people, "a");
    assert_int_equal(label_of(fx, fx->people, "d"), l);
    assert_int_equal(cluster_size(fx, fx->people, "c"), 4);
    assert_int_equal(cluster_size(fx, fx->people, "f"), 3);
    assert_int_not_equal(label_of(fx, fx->people, "e"), l);
    idg_batch_free(b1);
    idg_batch_free(b2);
    idg_batch_free(b3);
}

static void test_revert_splits(void **state)
{
    struct fixture *fx = *state;
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new(), *b3 = idg_batch_new();
    add_row(b1, fx->people, "a,b");
    apply(fx, b1, "B1", 1000, NULL);
    add_row(b2, fx->people, "c,d");
    add_row(b2, fx->people, "a,b"); /* a second batch also saw a-b */
    apply(fx, b2, "B2", 2000, NULL);
    add_row(b3, fx->people, "b,c"); /* the only bridge */
    add_row(b3, fx->people, "x,y"); /* identities only this batch saw */
    apply(fx, b3, "B3", 3000, NULL);
    assert_int_equal(cluster_size(fx, fx->people, "a"), 4);

    struct idg_remove_result r;
    revert(fx, "B3", &r);
    assert_int_equal(r.links_removed, 2);
    assert_int_equal(r.identities_removed, 2); /* x and y */
    assert_int_equal(label_of(fx, fx->people, "x"), 0);
    assert_int_equal(cluster_size(fx, fx->people, "a"), 2);
    assert_int_equal(cluster_size(fx, fx->people, "d"), 2);
    assert_int_not_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "c"));

    /* a-b survives the revert of B1: B2 saw it too */
    revert(fx, "B1", &r);
    assert_int_equal(r.identities_removed, 0);
    assert_int_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "b"));
    revert(fx, "B2", &r);
    assert_int_equal(label_of(fx, fx->people, "a"), 0);
    assert_int_equal(label_of(fx, fx->people, "c"), 0);
    idg_batch_free(b1);
    idg_batch_free(b2);
    idg_batch_free(b3);
}

/* Over the limit, AEP removes cookies first, then device ids, the least recently seen first. */
static void test_guardrail_aep_order(void **state)
{
    (void)state;
    struct fixture *fx = open_fixture(4, IDG_REMOVE_AEP);
    assert_non_null(fx);
    struct idg_ns cookie = {.gid = fx->cookie, .id_type = "COOKIE"};
    struct idg_ns device = {.gid = fx->device, .id_type = "DEVICE"};
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new();
    idg_batch_note_ns(b1, &cookie);
    idg_batch_note_ns(b1, &device);
    /* old: person p1 with cookie c-old and device d-old */
    int64_t g1[] = {fx->people, fx->cookie, fx->device};
    const char *v1[] = {"p1", "c-old", "d-old"};
    idg_batch_add_row(b1, g1, v1, 3);
    apply(fx, b1, "B1", 1000, NULL);
    /* new: p1 seen with another cookie and person p2: 5 identities, one too many */
    int64_t g2[] = {fx->people, fx->cookie, fx->people};
    const char *v2[] = {"p1", "c-new", "p2"};
    idg_batch_add_row(b2, g2, v2, 3);
    struct idg_apply_result r;
    apply(fx, b2, "B2", 2000, &r);
    assert_int_equal(r.guardrail_removed, 1);
    assert_int_equal(label_of(fx, fx->cookie, "c-old"), 0); /* the oldest cookie went first */
    assert_int_not_equal(label_of(fx, fx->cookie, "c-new"), 0);
    assert_int_not_equal(label_of(fx, fx->device, "d-old"), 0);
    assert_int_equal(cluster_size(fx, fx->people, "p1"), 4);
    idg_batch_free(b1);
    idg_batch_free(b2);
    close_fixture(fx);
}

/* Removing an identity by the guardrail can split its cluster: the rest is recomputed. */
static void test_guardrail_split_and_oldest(void **state)
{
    (void)state;
    struct fixture *fx = open_fixture(3, IDG_REMOVE_OLDEST);
    assert_non_null(fx);
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new();
    add_row(b1, fx->people, "hub,a"); /* "hub" is oldest and the only bridge */
    apply(fx, b1, "B1", 1000, NULL);
    add_row(b2, fx->people, "a,b");
    add_row(b2, fx->people, "hub,c");
    struct idg_apply_result r;
    apply(fx, b2, "B2", 2000, &r);
    /* 4 identities, limit 3: hub (touched at 2000 too) ties with a; the lower id, hub, goes */
    assert_int_equal(r.guardrail_removed, 1);
    assert_int_equal(label_of(fx, fx->people, "hub"), 0);
    assert_int_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "b"));
    assert_int_not_equal(label_of(fx, fx->people, "a"), label_of(fx, fx->people, "c"));
    assert_int_not_equal(label_of(fx, fx->people, "c"), 0);
    idg_batch_free(b1);
    idg_batch_free(b2);
    close_fixture(fx);
}

/* With "keep", nothing is removed and lookups of an oversized cluster fail. */
static void test_guardrail_keep(void **state)
{
    (void)state;
    struct fixture *fx = open_fixture(2, IDG_KEEP);
    assert_non_null(fx);
    struct idg_batch *b = idg_batch_new();
    add_row(b, fx->people, "a,b,c");
    struct idg_apply_result r;
    apply(fx, b, "B1", 1000, &r);
    assert_int_equal(r.guardrail_removed, 0);
    struct idg_cluster cl = {0};
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(idg_lookup(fx->g, "prod", "crm", "a", true, &cl, &err), ING_ETOOBIG);
    /* without stitching the identity alone is fine */
    assert_int_equal(idg_lookup(fx->g, "prod", "crm", "a", false, &cl, &err), 0);
    assert_int_equal(cl.n, 1);
    idg_cluster_free(&cl);
    idg_batch_free(b);
    close_fixture(fx);
}

static void test_lookup_and_xid(void **state)
{
    struct fixture *fx = *state;
    struct idg_batch *b = idg_batch_new();
    int64_t g[] = {fx->people, fx->email};
    const char *v[] = {"crm1", "danny@example.com"};
    idg_batch_add_row(b, g, v, 2);
    apply(fx, b, "B1", 1000, NULL);
    struct idg_cluster cl = {0};
    struct ing_err err;
    ing_err_clear(&err);
    /* the value is normalised before the lookup: trimmed and lower-cased for Email */
    assert_int_equal(idg_lookup(fx->g, "prod", "email", " Danny@Example.com", true, &cl, &err), 0);
    assert_int_equal(cl.n, 2);
    assert_string_equal(cl.members[0].value, "crm1");
    assert_string_equal(cl.members[0].ns.code, "crm");
    assert_int_equal(cl.members[1].ns.nsid, 6);
    idg_cluster_free(&cl);
    /* other sandboxes do not see it */
    assert_int_not_equal(idg_lookup(fx->g, "dev", "crm", "crm1", true, &cl, &err), 0);
    /* an unknown identity has no cluster */
    assert_int_equal(idg_lookup(fx->g, "prod", "crm", "nobody", true, &cl, &err), 0);
    assert_int_equal(cl.label, 0);
    idg_cluster_free(&cl);

    char *x = idg_xid(1001, "crm|1");
    int64_t nsid = 0;
    char *value = NULL;
    assert_int_equal(idg_xid_decode(x, &nsid, &value), 0);
    assert_int_equal(nsid, 1001);
    assert_string_equal(value, "crm|1");
    free(value);
    free(x);
    assert_int_equal(idg_xid_decode("not an xid!", &nsid, &value), ING_EINVAL);
    assert_int_equal(idg_xid_decode("MTIz", &nsid, &value), ING_EINVAL); /* "123": no '|' */
    idg_batch_free(b);
}

/* ---------------------------------------------------------------------------------------------- */
/* Property: after any sequence of batches and reverts, the stored clusters are exactly the
 * connected components of the rows of the batches still applied. */

#define P_IDS 24
#define P_BATCHES 12
#define P_ROWS 4

struct pbatch {
    int rows[P_ROWS][3];
    int nrow[P_ROWS];
    bool applied, reverted;
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng_state >> 33) % n);
}

static int find_root(int *parent, int x)
{
    while (parent[x] != x)
        x = parent[x] = parent[parent[x]];
    return x;
}

static void check_against_scratch(struct fixture *fx, const struct pbatch *bs, int nb)
{
    int parent[P_IDS];
    bool present[P_IDS] = {false};
    for (int i = 0; i < P_IDS; i++)
        parent[i] = i;
    for (int k = 0; k < nb; k++) {
        if (!bs[k].applied || bs[k].reverted)
            continue;
        for (int r = 0; r < P_ROWS; r++) {
            for (int j = 0; j < bs[k].nrow[r]; j++) {
                present[bs[k].rows[r][j]] = true;
                int a = find_root(parent, bs[k].rows[r][0]), c = find_root(parent, bs[k].rows[r][j]);
                parent[a] = c;
            }
        }
    }
    int64_t label[P_IDS];
    for (int i = 0; i < P_IDS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "id%d", i);
        label[i] = label_of(fx, fx->people, v);
        assert_int_equal(label[i] != 0, present[i]);
    }
    for (int i = 0; i < P_IDS; i++)
        for (int j = i + 1; j < P_IDS; j++)
            if (present[i] && present[j])
                assert_int_equal(label[i] == label[j],
                                 find_root(parent, i) == find_root(parent, j));
}

static void test_property_incremental_equals_scratch(void **state)
{
    (void)state;
    rng_state = 0x1d2e3f4a5b6c7d8eULL; /* seeded: failures reproduce */
    int checks = 0;
    for (int scenario = 0; scenario < 100; scenario++) {
        struct fixture *fx = open_fixture(0, IDG_REMOVE_AEP);
        assert_non_null(fx);
        struct pbatch bs[P_BATCHES];
        memset(bs, 0, sizeof(bs));
        for (int step = 0; step < P_BATCHES * 2; step++) {
            int k = (int)rnd(P_BATCHES);
            char name[16];
            snprintf(name, sizeof(name), "B%d", k);
            if (!bs[k].applied) {
                struct idg_batch *b = idg_batch_new();
                for (int r = 0; r < P_ROWS; r++) {
                    bs[k].nrow[r] = 1 + (int)rnd(3);
                    char vals[3][16];
                    const char *vp[3];
                    int64_t gids[3];
                    for (int j = 0; j < bs[k].nrow[r]; j++) {
                        bs[k].rows[r][j] = (int)rnd(P_IDS);
                        snprintf(vals[j], sizeof(vals[j]), "id%d", bs[k].rows[r][j]);
                        vp[j] = vals[j];
                        gids[j] = fx->people;
                    }
                    idg_batch_add_row(b, gids, vp, (size_t)bs[k].nrow[r]);
                }
                apply(fx, b, name, 1000 + step, NULL);
                idg_batch_free(b);
                bs[k].applied = true;
            } else if (!bs[k].reverted) {
                revert(fx, name, NULL);
                bs[k].reverted = true;
            } else {
                continue;
            }
            check_against_scratch(fx, bs, P_BATCHES);
            checks++;
        }
        close_fixture(fx);
    }
    assert_true(checks > 1500); /* a few thousand operations checked */
}

/* ---------------------------------------------------------------------------------------------- */
/* Storage: many identities (the dictionary splits its buckets many times), merges across
 * batches, and a revert that moves identities back to other clusters. */

static void test_dictionary_growth(void **state)
{
    struct fixture *fx = *state;
    enum { ROWS = 3000 };
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new();
    char v[2][32];
    for (int i = 0; i < ROWS; i++) {
        snprintf(v[0], sizeof(v[0]), "L%d", i);
        snprintf(v[1], sizeof(v[1]), "c%d@x.org", i);
        int64_t g[] = {fx->people, fx->email};
        const char *vals[] = {v[0], v[1]};
        idg_batch_add_row(b1, g, vals, 2);
    }
    struct idg_apply_result r;
    apply(fx, b1, "B1", 1000, &r);
    assert_int_equal(r.identities_new, 2 * ROWS);
    assert_int_equal(r.links, ROWS);
    /* every identity is found, in a cluster of two */
    for (int i = 0; i < ROWS; i += 7) {
        snprintf(v[0], sizeof(v[0]), "L%d", i);
        snprintf(v[1], sizeof(v[1]), "c%d@x.org", i);
        assert_int_not_equal(label_of(fx, fx->people, v[0]), 0);
        assert_int_equal(label_of(fx, fx->people, v[0]), label_of(fx, fx->email, v[1]));
        assert_int_equal(cluster_size(fx, fx->people, v[0]), 2);
    }
    assert_int_equal(label_of(fx, fx->people, "L-unknown"), 0);
    /* batch 2 joins pairs of clusters: L(2k) with L(2k+1) */
    for (int i = 0; i + 1 < ROWS; i += 2) {
        snprintf(v[0], sizeof(v[0]), "L%d", i);
        snprintf(v[1], sizeof(v[1]), "L%d", i + 1);
        int64_t g[] = {fx->people, fx->people};
        const char *vals[] = {v[0], v[1]};
        idg_batch_add_row(b2, g, vals, 2);
    }
    apply(fx, b2, "B2", 2000, &r);
    assert_int_equal(r.identities_new, 0);
    assert_int_equal(r.clusters_merged, ROWS / 2);
    for (int i = 0; i + 1 < ROWS; i += 34) {
        snprintf(v[0], sizeof(v[0]), "c%d@x.org", i);
        snprintf(v[1], sizeof(v[1]), "c%d@x.org", i + 1);
        assert_int_equal(label_of(fx, fx->email, v[0]), label_of(fx, fx->email, v[1]));
        assert_int_equal(cluster_size(fx, fx->email, v[0]), 4);
    }
    /* taking batch 2 out splits every pair again; nothing is lost */
    struct idg_remove_result rr;
    revert(fx, "B2", &rr);
    assert_int_equal(rr.links_removed, ROWS / 2);
    assert_int_equal(rr.identities_removed, 0);
    assert_int_equal(rr.clusters_after, ROWS);
    for (int i = 0; i + 1 < ROWS; i += 34) {
        snprintf(v[0], sizeof(v[0]), "c%d@x.org", i);
        snprintf(v[1], sizeof(v[1]), "c%d@x.org", i + 1);
        assert_int_not_equal(label_of(fx, fx->email, v[0]), label_of(fx, fx->email, v[1]));
        assert_int_equal(cluster_size(fx, fx->email, v[1]), 2);
    }
    /* and batch 1 out leaves an empty graph */
    revert(fx, "B1", &rr);
    assert_int_equal(rr.identities_removed, 2 * ROWS);
    assert_int_equal(label_of(fx, fx->people, "L0"), 0);
    idg_batch_free(b1);
    idg_batch_free(b2);
}

struct edge_list {
    char text[512];
};

static int collect_edge(void *ctx, const struct pstore_edge *e)
{
    struct edge_list *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s%lld-%lld %s/%s %lld..%lld", len ? "; " : "",
             (long long)e->a, (long long)e->b, e->dataset, e->batch, (long long)e->first_ts,
             (long long)e->last_ts);
    return 0;
}

/* A link's provenance is one edge per batch, with the batch's dataset and times. */
static void test_edge_provenance(void **state)
{
    struct fixture *fx = *state;
    struct idg_batch *b1 = idg_batch_new(), *b2 = idg_batch_new();
    add_row(b1, fx->people, "x,y");
    add_row(b1, fx->people, "y,x"); /* the same link twice in a batch: one edge */
    add_row(b2, fx->people, "x,y");
    struct idg_apply_result r;
    apply(fx, b1, "B1", 100, &r);
    assert_int_equal(r.links, 1);
    apply(fx, b2, "B2", 300, &r);
    int64_t id = 0, label = 0;
    assert_int_equal(pstore_ident_lookup(fx->ps, fx->people, "x", &id, &label, NULL), 0);
    struct edge_list l = {""};
    assert_int_equal(pstore_cluster_edges(fx->ps, label, collect_edge, &l, NULL), 0);
    char want[256];
    snprintf(want, sizeof(want), "%lld-%lld ds1/B1 100..100; %lld-%lld ds1/B2 300..300",
             (long long)id, (long long)id + 1, (long long)id, (long long)id + 1);
    assert_string_equal(l.text, want);
    idg_batch_free(b1);
    idg_batch_free(b2);
}

static long long file_size(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static struct pstore *open_ckpt_store(char *dir, size_t dirlen, int frames)
{
    snprintf(dir, dirlen, "/tmp/ingot-test-ckpt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct pstore_opts o = {.fast = true, .checkpoint_frames = frames};
    struct pstore *ps = NULL;
    assert_int_equal(pstore_open(&ps, dir, &o, NULL), 0);
    return ps;
}

/* 1 when every pair (a<i>, b<i>) of stitch_rows is one cluster of two (every 97th checked). */
static int cluster_pairs_ok(struct pstore *ps, int n)
{
    struct pstore_ns ns;
    if (pstore_ns_by_code(ps, "prod", "crm", &ns, NULL) != 0)
        return 0;
    char v[2][32];
    for (int i = 0; i < n; i += 97) {
        snprintf(v[0], sizeof(v[0]), "a%d", i);
        snprintf(v[1], sizeof(v[1]), "b%d", i);
        int64_t id = 0, la = 0, lb = 0;
        if (pstore_ident_lookup(ps, ns.gid, v[0], &id, &la, NULL) != 0 ||
            pstore_ident_lookup(ps, ns.gid, v[1], &id, &lb, NULL) != 0 || la != lb)
            return 0;
        struct pstore_member *m = NULL;
        size_t nm = 0, total = 0;
        if (pstore_cluster_members(ps, la, 0, &m, &nm, &total, NULL) != 0)
            return 0;
        pstore_members_free(m, nm);
        if (nm != 2)
            return 0;
    }
    return 1;
}

/* Stitch n two-identity rows in one transaction. */
static void stitch_rows(struct pstore *ps, int n)
{
    struct idgraph *g = NULL;
    assert_int_equal(idgraph_new(&g, ps, NULL, NULL, NULL), 0);
    struct pstore_tx *tx = NULL;
    int64_t gid = 0, seq = 0;
    assert_int_equal(pstore_begin(ps, &tx, NULL), 0);
    assert_int_equal(pstore_tx_ns_ensure(tx, "prod", "crm", 1001, "CROSS_DEVICE", &gid, NULL), 0);
    assert_int_equal(pstore_tx_batch_seq(tx, "B1", "ds1", &seq, NULL), 0);
    struct idg_batch *b = idg_batch_new();
    char v[2][32];
    for (int i = 0; i < n; i++) {
        snprintf(v[0], sizeof(v[0]), "a%d", i);
        snprintf(v[1], sizeof(v[1]), "b%d", i);
        int64_t gids[] = {gid, gid};
        const char *vals[] = {v[0], v[1]};
        idg_batch_add_row(b, gids, vals, 2);
    }
    struct idg_apply_result r;
    assert_int_equal(idg_apply_batch(g, tx, b, seq, 1000, &r, NULL), 0);
    assert_int_equal(pstore_commit(tx, NULL), 0);
    idg_batch_free(b);
    idgraph_free(g);
}

/* Clusters read in bulk (one read per group row, arrays in an arena) are the clusters read one
 * by one; absent labels come back empty; labels must ascend. */
static void test_clusters_in_bulk(void **state)
{
    (void)state;
    char dir[64];
    struct pstore *ps = open_ckpt_store(dir, sizeof(dir), 0);
    stitch_rows(ps, 600); /* 600 clusters of two: labels across several group rows */
    struct pstore_ns ns;
    assert_int_equal(pstore_ns_by_code(ps, "prod", "crm", &ns, NULL), 0);
    int64_t labels[8];
    size_t n = 0;
    char v[32];
    for (int i = 0; i < 600; i += 90) {
        int64_t id = 0;
        snprintf(v, sizeof(v), "a%d", i);
        assert_int_equal(pstore_ident_lookup(ps, ns.gid, v, &id, &labels[n], NULL), 0);
        n++;
    }
    labels[n] = labels[n - 1] + 100000; /* no such cluster */
    n++;
    struct pstore_tx *tx = NULL;
    assert_int_equal(pstore_begin(ps, &tx, NULL), 0);
    struct pstore_cluster bulk[8];
    struct pstore_arena *arena = NULL;
    assert_int_equal(pstore_tx_clusters_get(tx, labels, n, bulk, &arena, NULL), 0);
    for (size_t k = 0; k + 1 < n; k++) {
        struct pstore_cluster one;
        assert_int_equal(pstore_tx_cluster_get(tx, labels[k], &one, NULL), 0);
        assert_int_equal(bulk[k].label, labels[k]);
        assert_int_equal(bulk[k].n, 2);
        assert_int_equal(bulk[k].n, one.n);
        assert_int_equal(bulk[k].ne, one.ne);
        for (size_t m = 0; m < one.n; m++) {
            assert_int_equal(bulk[k].members[m].id, one.members[m].id);
            assert_string_equal(bulk[k].members[m].value, one.members[m].value);
        }
        assert_int_equal(bulk[k].edges[0].seq, one.edges[0].seq);
        pstore_cluster_clear(&one);
    }
    assert_int_equal(bulk[n - 1].label, 0);
    assert_int_equal(bulk[n - 1].n, 0);
    pstore_arena_free(arena);
    int64_t bad[2] = {labels[1], labels[0]};
    arena = NULL;
    assert_int_equal(pstore_tx_clusters_get(tx, bad, 2, bulk, &arena, NULL), ING_EINVAL);
    assert_null(arena);
    pstore_rollback(tx);
    pstore_close(ps);
    fs_rm_rf(dir, NULL);
}

/* A commit that takes the WAL past the threshold wakes the checkpoint thread, which copies the
 * pages into the database file while the store stays open (the commit itself does not wait for
 * it); under the threshold nothing is checkpointed before close. */
static void test_checkpoint_in_background(void **state)
{
    (void)state;
    char dir[64];
    struct pstore *ps = open_ckpt_store(dir, sizeof(dir), 4);
    long long before = file_size(dir, "profile.db");
    stitch_rows(ps, 3000);
    /* wait (at most 10 s) for the thread to finish its checkpoint */
    for (int i = 0; i < 1000 && pstore__ckpt_runs(ps) == 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    assert_true(pstore__ckpt_runs(ps) >= 1);
    assert_true(file_size(dir, "profile.db") > before + 16384);
    assert_int_equal(cluster_pairs_ok(ps, 3000), 1);
    pstore_close(ps);
    fs_rm_rf(dir, NULL);

    ps = open_ckpt_store(dir, sizeof(dir), 1000000);
    before = file_size(dir, "profile.db");
    stitch_rows(ps, 3000);
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    assert_int_equal(pstore__ckpt_runs(ps), 0);
    assert_int_equal(file_size(dir, "profile.db"), before);
    assert_int_equal(cluster_pairs_ok(ps, 3000), 1);
    pstore_close(ps);
    /* the last close checkpoints: everything is in the database file and still found */
    assert_true(file_size(dir, "profile.db") > before + 16384);
    struct pstore_opts o = {.fast = true};
    assert_int_equal(pstore_open(&ps, dir, &o, NULL), 0);
    assert_int_equal(cluster_pairs_ok(ps, 3000), 1);
    pstore_close(ps);
    fs_rm_rf(dir, NULL);
}

/* A version-1 database (a row per identity and per edge) is converted when opened. */
static void test_convert_v1(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/ingot-test-identity-v1-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/profile.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE pmeta(version INTEGER NOT NULL); INSERT INTO pmeta VALUES(1);"
        "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE gns(gid INTEGER PRIMARY KEY AUTOINCREMENT, sandbox TEXT NOT NULL,"
        " lcode TEXT NOT NULL, code TEXT NOT NULL, nsid INTEGER NOT NULL, id_type TEXT NOT NULL,"
        " UNIQUE(sandbox, lcode));"
        "CREATE TABLE ident(id INTEGER PRIMARY KEY, ns INTEGER NOT NULL, value TEXT NOT NULL,"
        " cluster INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
        " UNIQUE(ns, value));"
        "CREATE TABLE bseq(seq INTEGER PRIMARY KEY AUTOINCREMENT, batch TEXT NOT NULL UNIQUE,"
        " dataset TEXT NOT NULL);"
        "CREATE TABLE edge(a INTEGER NOT NULL, b INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, PRIMARY KEY(a, b, seq)) WITHOUT ROWID;"
        "CREATE TABLE frag(ns INTEGER NOT NULL, value TEXT NOT NULL, dataset TEXT NOT NULL,"
        " seq INTEGER NOT NULL, ts INTEGER NOT NULL, upsert INTEGER NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY(ns, value, dataset, seq)) WITHOUT ROWID;"
        "CREATE TABLE event(ns INTEGER NOT NULL, value TEXT NOT NULL, ts INTEGER NOT NULL,"
        " eid TEXT NOT NULL, seq INTEGER NOT NULL, stored_ts INTEGER NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY(ns, value, ts, eid, seq)) WITHOUT ROWID;"
        "CREATE TABLE stage(batch TEXT NOT NULL, stage TEXT NOT NULL, sandbox TEXT NOT NULL,"
        " rec TEXT NOT NULL, PRIMARY KEY(batch, stage)) WITHOUT ROWID;"
        "INSERT INTO kv VALUES('next_id', 20);"
        "INSERT INTO gns VALUES(1, 'prod', 'crm', 'crm', 1001, 'CROSS_DEVICE');"
        "INSERT INTO bseq VALUES(1, 'B1', 'ds1'), (2, 'B2', 'ds2');"
        "INSERT INTO ident VALUES(3, 1, 'a', 10, 100, 150), (4, 1, 'b', 10, 100, 100),"
        " (5, 1, 'c', 11, 120, 120);"
        "INSERT INTO edge VALUES(3, 4, 1, 100, 100), (3, 4, 2, 150, 150), (5, 5, 2, 120, 120);";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct pstore *ps = NULL;
    struct idgraph *g = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = pstore_open(&ps, dir, NULL, &err);
    if (rc)
        fprintf(stderr, "pstore_open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(idgraph_new(&g, ps, NULL, NULL, &err), 0);
    int64_t id = 0, label = 0;
    assert_int_equal(pstore_ident_lookup(ps, 1, "b", &id, &label, NULL), 0);
    assert_int_equal(id, 4);
    assert_int_equal(label, 10);
    assert_int_equal(pstore_ident_lookup(ps, 1, "c", &id, &label, NULL), 0);
    assert_int_equal(label, 11);
    struct edge_list l = {""};
    assert_int_equal(pstore_cluster_edges(ps, 10, collect_edge, &l, NULL), 0);
    assert_string_equal(l.text, "3-4 ds1/B1 100..100; 3-4 ds2/B2 150..150");
    struct pstore_member *m = NULL;
    size_t n = 0, total = 0;
    assert_int_equal(pstore_cluster_members(ps, 10, 0, &m, &n, &total, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].value, "a");
    assert_int_equal(m[0].last_ts, 150);
    pstore_members_free(m, n);
    /* the converted graph takes batches out as before: B2 alone leaves a-b (B1 saw it) and
     * drops c */
    struct pstore_tx *tx = NULL;
    int64_t seq = 0;
    struct idg_remove_result rr;
    assert_int_equal(pstore_begin(ps, &tx, &err), 0);
    assert_int_equal(pstore_tx_batch_find(tx, "B2", &seq, &err), 0);
    assert_int_equal(idg_remove_batch(g, tx, seq, &rr, &err), 0);
    assert_int_equal(pstore_commit(tx, &err), 0);
    assert_int_equal(rr.links_removed, 2);
    assert_int_equal(rr.identities_removed, 1);
    assert_int_equal(pstore_ident_lookup(ps, 1, "c", &id, &label, NULL), ING_ENOTFOUND);
    assert_int_equal(pstore_ident_lookup(ps, 1, "a", &id, &label, NULL), 0);
    /* new identities continue the old counter */
    struct idg_batch *b = idg_batch_new();
    int64_t gids[] = {1};
    const char *vals[] = {"d"};
    idg_batch_add_row(b, gids, vals, 1);
    struct idg_apply_result r;
    assert_int_equal(pstore_begin(ps, &tx, &err), 0);
    assert_int_equal(pstore_tx_batch_seq(tx, "B3", "ds1", &seq, &err), 0);
    assert_int_equal(idg_apply_batch(g, tx, b, seq, 500, &r, &err), 0);
    assert_int_equal(pstore_commit(tx, &err), 0);
    assert_int_equal(pstore_ident_lookup(ps, 1, "d", &id, &label, NULL), 0);
    assert_true(label >= 20 && id > label);
    idg_batch_free(b);
    idgraph_free(g);
    pstore_close(ps);
    /* the old tables are gone */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                            "('ident', 'edge')", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    fs_rm_rf(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_extract),
        cmocka_unit_test_setup_teardown(test_merge_incremental, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_splits, setup, teardown),
        cmocka_unit_test(test_guardrail_aep_order),
        cmocka_unit_test(test_guardrail_split_and_oldest),
        cmocka_unit_test(test_guardrail_keep),
        cmocka_unit_test_setup_teardown(test_lookup_and_xid, setup, teardown),
        cmocka_unit_test(test_property_incremental_equals_scratch),
        cmocka_unit_test_setup_teardown(test_dictionary_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_provenance, setup, teardown),
        cmocka_unit_test(test_convert_v1),
        cmocka_unit_test(test_checkpoint_in_background),
        cmocka_unit_test(test_clusters_in_bulk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
