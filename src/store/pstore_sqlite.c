/*
 * pstore_sqlite.c - the identity graph and profile store tables (pstore.h) on SQLite.
 *
 * One database file, `<dir>/profile.db`, separate from the document store so that the bulk
 * writes of a downstream stage never hold the catalog's write lock. WAL mode; synchronous=FULL
 * unless opts.fast. Readers take a connection from a small pool; the one writer connection is
 * guarded by a mutex held from pstore_begin to commit/rollback. Every statement is prepared
 * once per connection and kept (SQLITE_PREPARE_PERSISTENT): lookups are a handful of indexed
 * point queries. All SQL uses bound parameters.
 */
#include "store/pstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

/* Schema migrations, applied in order; pmeta.version counts how many ran. */
static const char *const k_migrations[] = {
    "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE gns(gid INTEGER PRIMARY KEY AUTOINCREMENT, sandbox TEXT NOT NULL,"
    " lcode TEXT NOT NULL, code TEXT NOT NULL, nsid INTEGER NOT NULL, id_type TEXT NOT NULL,"
    " UNIQUE(sandbox, lcode));"
    "CREATE TABLE ident(id INTEGER PRIMARY KEY, ns INTEGER NOT NULL, value TEXT NOT NULL,"
    " cluster INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
    " UNIQUE(ns, value));"
    "CREATE INDEX ident_cluster ON ident(cluster);"
    "CREATE TABLE bseq(seq INTEGER PRIMARY KEY AUTOINCREMENT, batch TEXT NOT NULL UNIQUE,"
    " dataset TEXT NOT NULL);"
    "CREATE TABLE edge(a INTEGER NOT NULL, b INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, PRIMARY KEY(a, b, seq)) WITHOUT ROWID;"
    "CREATE INDEX edge_b ON edge(b);"
    "CREATE INDEX edge_seq ON edge(seq);"
    "CREATE TABLE frag(ns INTEGER NOT NULL, value TEXT NOT NULL, dataset TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts INTEGER NOT NULL, upsert INTEGER NOT NULL, doc TEXT NOT NULL,"
    " PRIMARY KEY(ns, value, dataset, seq)) WITHOUT ROWID;"
    "CREATE INDEX frag_seq ON frag(seq);"
    "CREATE TABLE event(ns INTEGER NOT NULL, value TEXT NOT NULL, ts INTEGER NOT NULL,"
    " eid TEXT NOT NULL, seq INTEGER NOT NULL, stored_ts INTEGER NOT NULL, doc TEXT NOT NULL,"
    " PRIMARY KEY(ns, value, ts, eid, seq)) WITHOUT ROWID;"
    "CREATE INDEX event_seq ON event(seq);"
    "CREATE TABLE stage(batch TEXT NOT NULL, stage TEXT NOT NULL, sandbox TEXT NOT NULL,"
    " rec TEXT NOT NULL, PRIMARY KEY(batch, stage)) WITHOUT ROWID;",
};

enum stmt_id {
    S_NS_BY_CODE,
    S_NS_BY_GID,
    S_NS_BY_NSID,
    S_NS_INSERT,
    S_KV_GET,
    S_KV_PUT,
    S_IDENT_FIND,
    S_IDENT_SCAN,
    S_IDENT_INSERT,
    S_IDENT_TOUCH,
    S_IDENT_CLUSTER,
    S_IDENT_SET_CLUSTER,
    S_IDENT_DELETE,
    S_EDGES_DELETE_OF,
    S_EDGE_COUNT_OF,
    S_CLUSTER_COUNT,
    S_CLUSTER_MEMBERS,
    S_CLUSTER_RELABEL,
    S_EDGES_OF,
    S_EDGE_ADD,
    S_NEIGHBOURS,
    S_EDGES_OF_SEQ,
    S_EDGES_DELETE_SEQ,
    S_BSEQ_GET,
    S_BSEQ_INSERT,
    S_STAGE_GET,
    S_STAGE_PUT,
    S_FRAGS,
    S_FRAG_PUT,
    S_FRAG_GET,
    S_FRAG_DELETE_SEQ,
    S_EVENTS,
    S_EVENT_PUT,
    S_EVENT_DELETE_SEQ,
    S_HAS_FRAG,
    S_HAS_EVENT,
    S_COUNT
};

static const char *const k_sql[S_COUNT] = {
    [S_NS_BY_CODE] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE sandbox=?1 AND lcode=?2",
    [S_NS_BY_GID] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE gid=?1",
    [S_NS_BY_NSID] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE sandbox=?1 AND nsid=?2",
    [S_NS_INSERT] = "INSERT INTO gns(sandbox, lcode, code, nsid, id_type) VALUES(?1,?2,?3,?4,?5)",
    [S_KV_GET] = "SELECT v FROM kv WHERE k=?1",
    [S_KV_PUT] = "INSERT INTO kv(k, v) VALUES(?1,?2) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
    [S_IDENT_FIND] = "SELECT id, cluster FROM ident WHERE ns=?1 AND value=?2",
    [S_IDENT_SCAN] = "SELECT ns, value FROM ident",
    [S_IDENT_INSERT] = "INSERT INTO ident(id, ns, value, cluster, first_ts, last_ts) "
                       "VALUES(?1,?2,?3,?4,?5,?5)",
    [S_IDENT_TOUCH] = "UPDATE ident SET last_ts=max(last_ts, ?2) WHERE id=?1",
    [S_IDENT_CLUSTER] = "SELECT cluster FROM ident WHERE id=?1",
    [S_IDENT_SET_CLUSTER] = "UPDATE ident SET cluster=?2 WHERE id=?1",
    [S_IDENT_DELETE] = "DELETE FROM ident WHERE id=?1",
    [S_EDGES_DELETE_OF] = "DELETE FROM edge WHERE a=?1 OR b=?1",
    [S_EDGE_COUNT_OF] = "SELECT (SELECT count(*) FROM edge WHERE a=?1) + "
                        "(SELECT count(*) FROM edge WHERE b=?1 AND a<>?1)",
    [S_CLUSTER_COUNT] = "SELECT count(*) FROM ident WHERE cluster=?1",
    [S_CLUSTER_MEMBERS] = "SELECT id, ns, value, first_ts, last_ts FROM ident WHERE cluster=?1 "
                          "ORDER BY id",
    [S_CLUSTER_RELABEL] = "UPDATE ident SET cluster=?2 WHERE cluster=?1",
    [S_EDGES_OF] = "SELECT e.a, e.b, e.seq, s.batch, s.dataset, e.first_ts, e.last_ts "
                   "FROM edge e JOIN bseq s ON s.seq=e.seq WHERE e.a=?1 "
                   "UNION ALL "
                   "SELECT e.a, e.b, e.seq, s.batch, s.dataset, e.first_ts, e.last_ts "
                   "FROM edge e JOIN bseq s ON s.seq=e.seq WHERE e.b=?1 AND e.a<>?1",
    [S_EDGE_ADD] = "INSERT INTO edge(a, b, seq, first_ts, last_ts) VALUES(?1,?2,?3,?4,?4) "
                   "ON CONFLICT(a, b, seq) DO UPDATE SET first_ts=min(first_ts, excluded.first_ts),"
                   " last_ts=max(last_ts, excluded.last_ts)",
    [S_NEIGHBOURS] = "SELECT b FROM edge WHERE a=?1 AND b<>?1 "
                     "UNION ALL SELECT a FROM edge WHERE b=?1 AND a<>?1",
    [S_EDGES_OF_SEQ] = "SELECT a, b FROM edge WHERE seq=?1",
    [S_EDGES_DELETE_SEQ] = "DELETE FROM edge WHERE seq=?1",
    [S_BSEQ_GET] = "SELECT seq FROM bseq WHERE batch=?1",
    [S_BSEQ_INSERT] = "INSERT INTO bseq(batch, dataset) VALUES(?1,?2)",
    [S_STAGE_GET] = "SELECT rec FROM stage WHERE batch=?1 AND stage=?2",
    [S_STAGE_PUT] = "INSERT INTO stage(batch, stage, sandbox, rec) VALUES(?1,?2,?3,?4) "
                    "ON CONFLICT(batch, stage) DO UPDATE SET rec=excluded.rec",
    [S_FRAGS] = "SELECT f.dataset, s.batch, f.seq, f.ts, f.upsert, f.doc FROM frag f "
                "JOIN bseq s ON s.seq=f.seq WHERE f.ns=?1 AND f.value=?2 ORDER BY f.seq",
    [S_FRAG_PUT] = "INSERT INTO frag(ns, value, dataset, seq, ts, upsert, doc) "
                   "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(ns, value, dataset, seq) DO UPDATE "
                   "SET ts=excluded.ts, upsert=excluded.upsert, doc=excluded.doc",
    [S_FRAG_GET] = "SELECT doc FROM frag WHERE ns=?1 AND value=?2 AND dataset=?3 AND seq=?4",
    [S_FRAG_DELETE_SEQ] = "DELETE FROM frag WHERE seq=?1",
    [S_EVENTS] = "SELECT e.ts, e.eid, s.dataset, s.batch, e.seq, e.stored_ts, e.doc FROM event e "
                 "JOIN bseq s ON s.seq=e.seq WHERE e.ns=?1 AND e.value=?2 AND e.ts>=?3 "
                 "AND e.ts<?4 ORDER BY e.ts, e.eid, e.seq",
    [S_EVENT_PUT] = "INSERT INTO event(ns, value, ts, eid, seq, stored_ts, doc) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(ns, value, ts, eid, seq) DO UPDATE "
                    "SET stored_ts=excluded.stored_ts, doc=excluded.doc",
    [S_EVENT_DELETE_SEQ] = "DELETE FROM event WHERE seq=?1",
    [S_HAS_FRAG] = "SELECT 1 FROM frag WHERE ns=?1 AND value=?2 LIMIT 1",
    [S_HAS_EVENT] = "SELECT 1 FROM event WHERE ns=?1 AND value=?2 LIMIT 1",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct conn *next_free;
    struct conn *next_all;
};

/* Namespaces never change once created: a small cache spares the lookup path a query. */
struct ns_cache_entry {
    char sandbox[65];
    struct pstore_ns ns;
};

struct pstore {
    char *path;
    bool fast;
    pthread_mutex_t mu;    /* pool and cache */
    struct conn *free_list;
    struct conn *all;
    pthread_mutex_t wmu;   /* the writer */
    struct conn *writer;
    struct ns_cache_entry *cache;
    size_t ncache, capcache;
};

struct pstore_tx {
    struct pstore *ps;
    struct conn *c;
    int64_t next_id;       /* the id counter, written back at commit */
    bool id_dirty;
};

#define KV_NEXT_ID "next_id"

/* ---------------------------------------------------------------------------------------------- */
/* Errors and connections */

static int map_sqlite(struct ing_err *err, sqlite3 *db, int rc, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int code;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = ING_EAGAIN; break;
    case SQLITE_CONSTRAINT: code = ING_EEXIST; break;
    case SQLITE_NOMEM: code = ING_ENOMEM; break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = ING_EIO; break;
    default: code = ING_EINTERNAL; break;
    }
    return ing_err_set(err, code, "pstore: %s: %s", what, msg);
}

static int exec_sql(sqlite3 *db, const char *sql, struct ing_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : map_sqlite(err, db, rc, "exec");
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < S_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static int conn_open(struct pstore *ps, bool first, struct conn **out, struct ing_err *err)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int ret = 0;
    int rc = sqlite3_open_v2(ps->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = map_sqlite(err, c->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    if (first && (ret = exec_sql(c->db, "PRAGMA journal_mode=WAL", err)) != 0)
        goto out;
    if ((ret = exec_sql(c->db, ps->fast ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL",
                        err)) != 0)
        goto out;
    /* Lookups read a few pages each; 16 MiB per reader keeps the hot part of the indexes. */
    if ((ret = exec_sql(c->db, "PRAGMA cache_size=-16384", err)) != 0)
        goto out;
    ret = exec_sql(c->db, "PRAGMA temp_store=MEMORY", err);
out:
    if (ret) {
        conn_free(c);
        c = NULL;
    }
    *out = c;
    return ret;
}

static int migrate(sqlite3 *db, struct ing_err *err)
{
    int ret = exec_sql(db, "BEGIN IMMEDIATE", err);
    if (ret)
        return ret;
    sqlite3_stmt *st = NULL;
    int64_t version = 0;
    bool have_row = false;
    if ((ret = exec_sql(db, "CREATE TABLE IF NOT EXISTS pmeta(version INTEGER NOT NULL)", err)))
        goto out;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM pmeta", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        ret = map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 0);
        have_row = true;
    } else if (rc != SQLITE_DONE) {
        ret = map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    if (!have_row && (ret = exec_sql(db, "INSERT INTO pmeta(version) VALUES(0)", err)) != 0)
        goto out;
    int64_t known = (int64_t)ING_ARRAY_LEN(k_migrations);
    if (version > known) {
        ret = ing_err_set(err, ING_ESTATE, "pstore: schema version %lld is newer than %lld",
                          (long long)version, (long long)known);
        goto out;
    }
    for (int64_t v = version; v < known; v++)
        if ((ret = exec_sql(db, k_migrations[v], err)) != 0)
            goto out;
    char sql[64];
    snprintf(sql, sizeof(sql), "UPDATE pmeta SET version=%lld", (long long)known);
    if ((ret = exec_sql(db, sql, err)) != 0)
        goto out;
    ret = exec_sql(db, "COMMIT", err);
out:
    sqlite3_finalize(st);
    if (ret)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

static int conn_acquire(struct pstore *ps, struct conn **out, struct ing_err *err)
{
    pthread_mutex_lock(&ps->mu);
    struct conn *c = ps->free_list;
    if (c)
        ps->free_list = c->next_free;
    pthread_mutex_unlock(&ps->mu);
    if (!c) {
        int ret = conn_open(ps, false, &c, err);
        if (ret)
            return ret;
        pthread_mutex_lock(&ps->mu);
        c->next_all = ps->all;
        ps->all = c;
        pthread_mutex_unlock(&ps->mu);
    }
    c->next_free = NULL;
    *out = c;
    return 0;
}

static void conn_release(struct pstore *ps, struct conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&ps->mu);
    c->next_free = ps->free_list;
    ps->free_list = c;
    pthread_mutex_unlock(&ps->mu);
}

/* A prepared statement of this connection, reset and unbound, ready for binding. */
static int stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out, struct ing_err *err)
{
    if (!c->st[id]) {
        int rc = sqlite3_prepare_v3(c->db, k_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                                    NULL);
        if (rc != SQLITE_OK)
            return map_sqlite(err, c->db, rc, "prepare");
    }
    *out = c->st[id];
    return 0;
}

static void done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return xstrdup(t ? (const char *)t : "");
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

/* Step a statement that returns no row. */
static int step_done(struct conn *c, sqlite3_stmt *s, const char *what, struct ing_err *err)
{
    int rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? 0 : map_sqlite(err, c->db, rc, what);
    done(s);
    return ret;
}

/* Step a statement expected to return one integer (or no row: ING_ENOTFOUND). */
static int step_int(struct conn *c, sqlite3_stmt *s, int64_t *out, const char *what,
                    struct ing_err *err)
{
    int rc = sqlite3_step(s);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        ret = ING_ENOTFOUND;
    else
        ret = map_sqlite(err, c->db, rc, what);
    done(s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Open / close */

int pstore_open(struct pstore **out, const char *dir, const struct pstore_opts *opts,
                struct ing_err *err)
{
    struct pstore *ps = NULL;
    struct conn *c = NULL;
    int ret = fs_mkdirs(dir, err);
    if (ret)
        goto out;
    ps = xcalloc(1, sizeof(*ps));
    ps->path = xasprintf("%s/profile.db", dir);
    ps->fast = opts && opts->fast;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_mutex_init(&ps->wmu, NULL);
    if ((ret = conn_open(ps, true, &c, err)) != 0)
        goto out;
    if ((ret = migrate(c->db, err)) != 0)
        goto out;
    /* The writer's stage touches pages all over the identity index: 64 MiB of cache for it (a
     * larger cache measured no faster on the million-record benchmark). */
    if ((ret = exec_sql(c->db, "PRAGMA cache_size=-65536", err)) != 0)
        goto out;
    ps->writer = c;
    c = NULL;
out:
    conn_free(c);
    if (ret) {
        pstore_close(ps);
        ps = NULL;
    }
    *out = ps;
    return ret;
}

void pstore_close(struct pstore *ps)
{
    if (!ps)
        return;
    struct conn *c = ps->all;
    while (c) {
        struct conn *next = c->next_all;
        conn_free(c);
        c = next;
    }
    conn_free(ps->writer);
    pthread_mutex_destroy(&ps->mu);
    pthread_mutex_destroy(&ps->wmu);
    free(ps->cache);
    free(ps->path);
    free(ps);
}

/* ---------------------------------------------------------------------------------------------- */
/* Namespaces */

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

static void ns_from_row(sqlite3_stmt *s, struct pstore_ns *ns)
{
    ns->gid = sqlite3_column_int64(s, 0);
    ns->nsid = sqlite3_column_int64(s, 1);
    snprintf(ns->code, sizeof(ns->code), "%s", col_text(s, 2));
    snprintf(ns->id_type, sizeof(ns->id_type), "%s", col_text(s, 3));
}

static void cache_add(struct pstore *ps, const char *sandbox, const struct pstore_ns *ns)
{
    pthread_mutex_lock(&ps->mu);
    bool have = false;
    for (size_t i = 0; i < ps->ncache && !have; i++)
        have = ps->cache[i].ns.gid == ns->gid;
    if (!have) {
        if (ps->ncache == ps->capcache) {
            ps->capcache = ps->capcache ? ps->capcache * 2 : 16;
            ps->cache = xrealloc(ps->cache, ps->capcache * sizeof(*ps->cache));
        }
        struct ns_cache_entry *e = &ps->cache[ps->ncache++];
        snprintf(e->sandbox, sizeof(e->sandbox), "%s", sandbox ? sandbox : "");
        e->ns = *ns;
    }
    pthread_mutex_unlock(&ps->mu);
}

enum ns_key { NSK_CODE, NSK_GID, NSK_NSID };

static bool cache_find(struct pstore *ps, enum ns_key key, const char *sandbox, const char *code,
                       int64_t num, struct pstore_ns *out)
{
    bool found = false;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < ps->ncache && !found; i++) {
        const struct ns_cache_entry *e = &ps->cache[i];
        switch (key) {
        case NSK_CODE:
            found = !strcmp(e->sandbox, sandbox) && !strcasecmp(e->ns.code, code);
            break;
        case NSK_GID: found = e->ns.gid == num; break;
        case NSK_NSID: found = !strcmp(e->sandbox, sandbox) && e->ns.nsid == num; break;
        }
        if (found)
            *out = e->ns;
    }
    pthread_mutex_unlock(&ps->mu);
    return found;
}

static int ns_lookup(struct pstore *ps, enum ns_key key, const char *sandbox, const char *code,
                     int64_t num, struct pstore_ns *out, struct ing_err *err)
{
    if ((key != NSK_GID && !sandbox) || (key == NSK_CODE && !code))
        return ing_err_set(err, ING_EINVAL, "pstore: namespace key missing");
    if (cache_find(ps, key, sandbox, code, num, out))
        return 0;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    char *lcode = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    enum stmt_id id = key == NSK_CODE ? S_NS_BY_CODE : key == NSK_GID ? S_NS_BY_GID : S_NS_BY_NSID;
    if ((ret = stmt(c, id, &s, err)) != 0)
        goto out;
    if (key == NSK_CODE) {
        lcode = lower_dup(code);
        bind_text(s, 1, sandbox);
        bind_text(s, 2, lcode);
    } else if (key == NSK_GID) {
        sqlite3_bind_int64(s, 1, num);
    } else {
        bind_text(s, 1, sandbox);
        sqlite3_bind_int64(s, 2, num);
    }
    int rc = sqlite3_step(s);
    char row_sandbox[65] = "";
    if (rc == SQLITE_ROW) {
        ns_from_row(s, out);
        snprintf(row_sandbox, sizeof(row_sandbox), "%s", col_text(s, 4));
    } else if (rc == SQLITE_DONE) {
        ret = ing_err_set(err, ING_ENOTFOUND, "the identity graph has no such namespace");
    } else {
        ret = map_sqlite(err, c->db, rc, "namespace");
    }
    done(s);
    if (ret == 0)
        cache_add(ps, row_sandbox, out);
out:
    free(lcode);
    conn_release(ps, c);
    return ret;
}

int pstore_ns_by_code(struct pstore *ps, const char *sandbox, const char *code,
                      struct pstore_ns *out, struct ing_err *err)
{
    return ns_lookup(ps, NSK_CODE, sandbox, code, 0, out, err);
}

int pstore_ns_by_gid(struct pstore *ps, int64_t gid, struct pstore_ns *out, struct ing_err *err)
{
    return ns_lookup(ps, NSK_GID, NULL, NULL, gid, out, err);
}

int pstore_ns_by_nsid(struct pstore *ps, const char *sandbox, int64_t nsid, struct pstore_ns *out,
                      struct ing_err *err)
{
    return ns_lookup(ps, NSK_NSID, sandbox, NULL, nsid, out, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Shared query bodies (reader connection or the writer's) */

void pstore_members_free(struct pstore_member *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].value);
    free(m);
}

static int q_ident_find(struct conn *c, int64_t gid, const char *value, int64_t *id,
                        int64_t *cluster, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(c, S_IDENT_FIND, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (id)
            *id = sqlite3_column_int64(s, 0);
        if (cluster)
            *cluster = sqlite3_column_int64(s, 1);
    } else if (rc == SQLITE_DONE) {
        ret = ING_ENOTFOUND;
    } else {
        ret = map_sqlite(err, c->db, rc, "identity");
    }
    done(s);
    return ret;
}

static int q_cluster_count(struct conn *c, int64_t cluster, int64_t *n, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(c, S_CLUSTER_COUNT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, cluster);
    return step_int(c, s, n, "cluster size", err);
}

static int q_cluster_members(struct conn *c, int64_t cluster, struct pstore_member **out,
                             size_t *n, struct ing_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    int ret = stmt(c, S_CLUSTER_MEMBERS, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, cluster);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        struct pstore_member *m = &(*out)[(*n)++];
        m->id = sqlite3_column_int64(s, 0);
        m->gid = sqlite3_column_int64(s, 1);
        m->value = col_dup(s, 2);
        m->first_ts = sqlite3_column_int64(s, 3);
        m->last_ts = sqlite3_column_int64(s, 4);
    }
    if (rc != SQLITE_DONE) {
        ret = map_sqlite(err, c->db, rc, "cluster members");
        pstore_members_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    done(s);
    return ret;
}

static int q_stage_get(struct conn *c, const char *batch, const char *stage_name, json_t **out,
                       struct ing_err *err)
{
    *out = NULL;
    sqlite3_stmt *s = NULL;
    int ret = stmt(c, S_STAGE_GET, &s, err);
    if (ret)
        return ret;
    bind_text(s, 1, batch);
    bind_text(s, 2, stage_name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = json_loads(col_text(s, 0), 0, NULL);
        if (!*out)
            ret = ing_err_set(err, ING_EINTERNAL, "pstore: stage record is not JSON");
    } else if (rc == SQLITE_DONE) {
        ret = ING_ENOTFOUND;
    } else {
        ret = map_sqlite(err, c->db, rc, "stage");
    }
    done(s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reads */

int pstore_ident_lookup(struct pstore *ps, int64_t gid, const char *value, int64_t *id,
                        int64_t *cluster, struct ing_err *err)
{
    struct conn *c = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret == 0)
        ret = q_ident_find(c, gid, value, id, cluster, err);
    conn_release(ps, c);
    return ret;
}

int pstore_ident_scan(struct pstore *ps, pstore_ident_fn *fn, void *ctx, struct ing_err *err)
{
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = stmt(c, S_IDENT_SCAN, &s, err)) != 0)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((ret = fn(ctx, sqlite3_column_int64(s, 0), col_text(s, 1))) != 0)
            break;
    if (ret == 0 && rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, "identity scan");
    done(s);
out:
    conn_release(ps, c);
    return ret;
}

int pstore_cluster_members(struct pstore *ps, int64_t cluster, size_t max,
                           struct pstore_member **out, size_t *n, size_t *total,
                           struct ing_err *err)
{
    *out = NULL;
    *n = 0;
    struct conn *c = NULL;
    int64_t count = 0;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    /* Read the size and the members in one read transaction, so that they agree. */
    if ((ret = exec_sql(c->db, "BEGIN", err)) != 0)
        goto out;
    ret = q_cluster_count(c, cluster, &count, err);
    if (ret == 0) {
        if (total)
            *total = (size_t)count;
        if (max > 0 && (size_t)count > max)
            ret = ing_err_set(err, ING_ETOOBIG, "the cluster has %lld identities, more than %zu",
                              (long long)count, max);
        else
            ret = q_cluster_members(c, cluster, out, n, err);
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
out:
    conn_release(ps, c);
    return ret;
}

int pstore_edges_of(struct pstore *ps, int64_t id, pstore_edge_fn *fn, void *ctx,
                    struct ing_err *err)
{
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = stmt(c, S_EDGES_OF, &s, err)) != 0)
        goto out;
    sqlite3_bind_int64(s, 1, id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct pstore_edge e = {
            .a = sqlite3_column_int64(s, 0),
            .b = sqlite3_column_int64(s, 1),
            .seq = sqlite3_column_int64(s, 2),
            .batch = col_text(s, 3),
            .dataset = col_text(s, 4),
            .first_ts = sqlite3_column_int64(s, 5),
            .last_ts = sqlite3_column_int64(s, 6),
        };
        if ((ret = fn(ctx, &e)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, "edges");
    done(s);
out:
    conn_release(ps, c);
    return ret;
}

int pstore_frags(struct pstore *ps, int64_t gid, const char *value, pstore_frag_fn *fn, void *ctx,
                 struct ing_err *err)
{
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = stmt(c, S_FRAGS, &s, err)) != 0)
        goto out;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct pstore_frag f = {
            .dataset = col_text(s, 0),
            .batch = col_text(s, 1),
            .seq = sqlite3_column_int64(s, 2),
            .ts = sqlite3_column_int64(s, 3),
            .upsert = sqlite3_column_int(s, 4) != 0,
            .doc = col_text(s, 5),
        };
        if ((ret = fn(ctx, &f)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, "fragments");
    done(s);
out:
    conn_release(ps, c);
    return ret;
}

int pstore_events(struct pstore *ps, int64_t gid, const char *value, int64_t start, int64_t end,
                  pstore_event_fn *fn, void *ctx, struct ing_err *err)
{
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = stmt(c, S_EVENTS, &s, err)) != 0)
        goto out;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    sqlite3_bind_int64(s, 3, start);
    sqlite3_bind_int64(s, 4, end);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct pstore_event e = {
            .ts = sqlite3_column_int64(s, 0),
            .eid = col_text(s, 1),
            .dataset = col_text(s, 2),
            .batch = col_text(s, 3),
            .seq = sqlite3_column_int64(s, 4),
            .stored_ts = sqlite3_column_int64(s, 5),
            .doc = col_text(s, 6),
        };
        if ((ret = fn(ctx, &e)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, "events");
    done(s);
out:
    conn_release(ps, c);
    return ret;
}

int pstore_has_profile_data(struct pstore *ps, int64_t gid, const char *value, bool events_only,
                            bool *out, struct ing_err *err)
{
    *out = false;
    struct conn *c = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    const enum stmt_id which[] = {S_HAS_FRAG, S_HAS_EVENT};
    for (size_t i = events_only ? 1 : 0; i < ING_ARRAY_LEN(which) && !*out && ret == 0; i++) {
        sqlite3_stmt *s = NULL;
        if ((ret = stmt(c, which[i], &s, err)) != 0)
            break;
        sqlite3_bind_int64(s, 1, gid);
        bind_text(s, 2, value);
        int64_t one = 0;
        ret = step_int(c, s, &one, "profile data", err);
        if (ret == 0)
            *out = true;
        else if (ret == ING_ENOTFOUND)
            ret = 0;
    }
    conn_release(ps, c);
    return ret;
}

int pstore_stage_get(struct pstore *ps, const char *batch, const char *stage_name, json_t **out,
                     struct ing_err *err)
{
    struct conn *c = NULL;
    int ret = conn_acquire(ps, &c, err);
    if (ret == 0)
        ret = q_stage_get(c, batch, stage_name, out, err);
    conn_release(ps, c);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

int pstore_begin(struct pstore *ps, struct pstore_tx **out, struct ing_err *err)
{
    *out = NULL;
    pthread_mutex_lock(&ps->wmu);
    struct conn *c = ps->writer;
    int ret = exec_sql(c->db, "BEGIN IMMEDIATE", err);
    if (ret) {
        pthread_mutex_unlock(&ps->wmu);
        return ret;
    }
    struct pstore_tx *tx = xcalloc(1, sizeof(*tx));
    tx->ps = ps;
    tx->c = c;
    sqlite3_stmt *s = NULL;
    if ((ret = stmt(c, S_KV_GET, &s, err)) == 0) {
        bind_text(s, 1, KV_NEXT_ID);
        ret = step_int(c, s, &tx->next_id, "id counter", err);
        if (ret == ING_ENOTFOUND) {
            tx->next_id = 1;
            ret = 0;
        }
    }
    if (ret) {
        pstore_rollback(tx);
        return ret;
    }
    *out = tx;
    return 0;
}

int pstore_commit(struct pstore_tx *tx, struct ing_err *err)
{
    if (!tx)
        return ing_err_set(err, ING_EINVAL, "pstore: no transaction");
    struct conn *c = tx->c;
    int ret = 0;
    if (tx->id_dirty) {
        sqlite3_stmt *s = NULL;
        if ((ret = stmt(c, S_KV_PUT, &s, err)) == 0) {
            bind_text(s, 1, KV_NEXT_ID);
            sqlite3_bind_int64(s, 2, tx->next_id);
            ret = step_done(c, s, "id counter", err);
        }
    }
    if (ret == 0)
        ret = exec_sql(c->db, "COMMIT", err);
    if (ret) {
        pstore_rollback(tx);
        return ret;
    }
    pthread_mutex_unlock(&tx->ps->wmu);
    free(tx);
    return 0;
}

void pstore_rollback(struct pstore_tx *tx)
{
    if (!tx)
        return;
    sqlite3_exec(tx->c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&tx->ps->wmu);
    free(tx);
}

int64_t pstore_tx_next_id(struct pstore_tx *tx)
{
    tx->id_dirty = true;
    return tx->next_id++;
}

int pstore_tx_ns_ensure(struct pstore_tx *tx, const char *sandbox, const char *code, int64_t nsid,
                        const char *id_type, int64_t *gid, struct ing_err *err)
{
    struct conn *c = tx->c;
    sqlite3_stmt *s = NULL;
    char *lcode = lower_dup(code);
    int ret = stmt(c, S_NS_BY_CODE, &s, err);
    if (ret)
        goto out;
    bind_text(s, 1, sandbox);
    bind_text(s, 2, lcode);
    ret = step_int(c, s, gid, "namespace", err);
    if (ret != ING_ENOTFOUND)
        goto out;
    if ((ret = stmt(c, S_NS_INSERT, &s, err)) != 0)
        goto out;
    bind_text(s, 1, sandbox);
    bind_text(s, 2, lcode);
    bind_text(s, 3, code);
    sqlite3_bind_int64(s, 4, nsid);
    bind_text(s, 5, id_type ? id_type : "");
    if ((ret = step_done(c, s, "namespace insert", err)) == 0)
        *gid = sqlite3_last_insert_rowid(c->db);
out:
    free(lcode);
    return ret;
}

int pstore_tx_stage_get(struct pstore_tx *tx, const char *batch, const char *stage_name,
                        json_t **out, struct ing_err *err)
{
    return q_stage_get(tx->c, batch, stage_name, out, err);
}

int pstore_tx_stage_put(struct pstore_tx *tx, const char *sandbox, const char *batch,
                        const char *stage_name, const json_t *rec, struct ing_err *err)
{
    struct conn *c = tx->c;
    sqlite3_stmt *s = NULL;
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text)
        return ing_err_set(err, ING_EINVAL, "pstore: stage record cannot be serialised");
    int ret = stmt(c, S_STAGE_PUT, &s, err);
    if (ret == 0) {
        bind_text(s, 1, batch);
        bind_text(s, 2, stage_name);
        bind_text(s, 3, sandbox);
        bind_text(s, 4, text);
        ret = step_done(c, s, "stage record", err);
    }
    free(text);
    return ret;
}

int pstore_tx_batch_find(struct pstore_tx *tx, const char *batch, int64_t *seq,
                         struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_BSEQ_GET, &s, err);
    if (ret)
        return ret;
    bind_text(s, 1, batch);
    return step_int(tx->c, s, seq, "batch", err);
}

int pstore_tx_batch_seq(struct pstore_tx *tx, const char *batch, const char *dataset,
                        int64_t *seq, struct ing_err *err)
{
    int ret = pstore_tx_batch_find(tx, batch, seq, err);
    if (ret != ING_ENOTFOUND)
        return ret;
    sqlite3_stmt *s = NULL;
    if ((ret = stmt(tx->c, S_BSEQ_INSERT, &s, err)) != 0)
        return ret;
    bind_text(s, 1, batch);
    bind_text(s, 2, dataset ? dataset : "");
    if ((ret = step_done(tx->c, s, "batch insert", err)) == 0)
        *seq = sqlite3_last_insert_rowid(tx->c->db);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Identities and clusters */

int pstore_tx_ident_find(struct pstore_tx *tx, int64_t gid, const char *value, int64_t *id,
                         int64_t *cluster, struct ing_err *err)
{
    return q_ident_find(tx->c, gid, value, id, cluster, err);
}

int pstore_tx_ident_insert(struct pstore_tx *tx, int64_t id, int64_t gid, const char *value,
                           int64_t cluster, int64_t ts, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_IDENT_INSERT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, gid);
    bind_text(s, 3, value);
    sqlite3_bind_int64(s, 4, cluster);
    sqlite3_bind_int64(s, 5, ts);
    return step_done(tx->c, s, "identity insert", err);
}

/* The statements below take one integer key (and maybe a second integer) and return no row. */
static int exec_ints(struct pstore_tx *tx, enum stmt_id id, int64_t a, int64_t b, int nargs,
                     const char *what, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, id, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, a);
    if (nargs > 1)
        sqlite3_bind_int64(s, 2, b);
    return step_done(tx->c, s, what, err);
}

static int query_int(struct pstore_tx *tx, enum stmt_id id, int64_t a, int64_t *out,
                     const char *what, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, id, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, a);
    return step_int(tx->c, s, out, what, err);
}

int pstore_tx_ident_touch(struct pstore_tx *tx, int64_t id, int64_t ts, struct ing_err *err)
{
    return exec_ints(tx, S_IDENT_TOUCH, id, ts, 2, "identity touch", err);
}

int pstore_tx_ident_cluster(struct pstore_tx *tx, int64_t id, int64_t *cluster,
                            struct ing_err *err)
{
    return query_int(tx, S_IDENT_CLUSTER, id, cluster, "identity cluster", err);
}

int pstore_tx_ident_set_cluster(struct pstore_tx *tx, int64_t id, int64_t cluster,
                                struct ing_err *err)
{
    return exec_ints(tx, S_IDENT_SET_CLUSTER, id, cluster, 2, "identity relabel", err);
}

int pstore_tx_ident_delete(struct pstore_tx *tx, int64_t id, struct ing_err *err)
{
    int ret = exec_ints(tx, S_EDGES_DELETE_OF, id, 0, 1, "identity edges delete", err);
    if (ret == 0)
        ret = exec_ints(tx, S_IDENT_DELETE, id, 0, 1, "identity delete", err);
    return ret;
}

int pstore_tx_ident_edge_count(struct pstore_tx *tx, int64_t id, int64_t *n, struct ing_err *err)
{
    return query_int(tx, S_EDGE_COUNT_OF, id, n, "edge count", err);
}

int pstore_tx_cluster_size(struct pstore_tx *tx, int64_t cluster, int64_t *n, struct ing_err *err)
{
    return q_cluster_count(tx->c, cluster, n, err);
}

int pstore_tx_cluster_relabel(struct pstore_tx *tx, int64_t from, int64_t to, struct ing_err *err)
{
    return exec_ints(tx, S_CLUSTER_RELABEL, from, to, 2, "cluster relabel", err);
}

int pstore_tx_cluster_members(struct pstore_tx *tx, int64_t cluster, struct pstore_member **out,
                              size_t *n, struct ing_err *err)
{
    return q_cluster_members(tx->c, cluster, out, n, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Edges */

int pstore_tx_edge_add(struct pstore_tx *tx, int64_t a, int64_t b, int64_t seq, int64_t ts,
                       struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_EDGE_ADD, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, a <= b ? a : b);
    sqlite3_bind_int64(s, 2, a <= b ? b : a);
    sqlite3_bind_int64(s, 3, seq);
    sqlite3_bind_int64(s, 4, ts);
    return step_done(tx->c, s, "edge insert", err);
}

static int collect_ints(struct conn *c, sqlite3_stmt *s, int ncols, int64_t **out, size_t *n,
                        const char *what, struct ing_err *err)
{
    size_t cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof(**out));
            }
            (*out)[(*n)++] = sqlite3_column_int64(s, i);
        }
    }
    if (rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, what);
    done(s);
    return ret;
}

int pstore_tx_neighbours(struct pstore_tx *tx, int64_t id, int64_t **out, size_t *n,
                         struct ing_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_NEIGHBOURS, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    ret = collect_ints(tx->c, s, 1, out, n, "neighbours", err);
    if (ret) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int pstore_tx_edges_delete_batch(struct pstore_tx *tx, int64_t seq, int64_t **idents, size_t *n,
                                 int64_t *deleted, struct ing_err *err)
{
    *idents = NULL;
    *n = 0;
    *deleted = 0;
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_EDGES_OF_SEQ, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, seq);
    if ((ret = collect_ints(tx->c, s, 2, idents, n, "batch edges", err)) != 0)
        goto out;
    *deleted = (int64_t)(*n / 2);
    if (*n > 1) {
        qsort(*idents, *n, sizeof(**idents), cmp_i64);
        size_t k = 1;
        for (size_t i = 1; i < *n; i++)
            if ((*idents)[i] != (*idents)[k - 1])
                (*idents)[k++] = (*idents)[i];
        *n = k;
    }
    ret = exec_ints(tx, S_EDGES_DELETE_SEQ, seq, 0, 1, "batch edges delete", err);
out:
    if (ret) {
        free(*idents);
        *idents = NULL;
        *n = 0;
    }
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Fragments and events */

int pstore_tx_frag_put(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, int64_t ts, bool upsert, const char *doc, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_FRAG_PUT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    bind_text(s, 3, dataset);
    sqlite3_bind_int64(s, 4, seq);
    sqlite3_bind_int64(s, 5, ts);
    sqlite3_bind_int(s, 6, upsert ? 1 : 0);
    bind_text(s, 7, doc);
    return step_done(tx->c, s, "fragment insert", err);
}

int pstore_tx_frag_get(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, char **doc, struct ing_err *err)
{
    *doc = NULL;
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_FRAG_GET, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    bind_text(s, 3, dataset);
    sqlite3_bind_int64(s, 4, seq);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *doc = col_dup(s, 0);
    else if (rc == SQLITE_DONE)
        ret = ING_ENOTFOUND;
    else
        ret = map_sqlite(err, tx->c->db, rc, "fragment");
    done(s);
    return ret;
}

int pstore_tx_event_put(struct pstore_tx *tx, int64_t gid, const char *value, int64_t ts,
                        const char *eid, int64_t seq, int64_t stored_ts, const char *doc,
                        struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt(tx->c, S_EVENT_PUT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    sqlite3_bind_int64(s, 3, ts);
    bind_text(s, 4, eid);
    sqlite3_bind_int64(s, 5, seq);
    sqlite3_bind_int64(s, 6, stored_ts);
    bind_text(s, 7, doc);
    return step_done(tx->c, s, "event insert", err);
}

int pstore_tx_profile_delete_batch(struct pstore_tx *tx, int64_t seq, int64_t *frags,
                                   int64_t *events, struct ing_err *err)
{
    int ret = exec_ints(tx, S_FRAG_DELETE_SEQ, seq, 0, 1, "fragments delete", err);
    if (ret)
        return ret;
    *frags = sqlite3_changes64(tx->c->db);
    if ((ret = exec_ints(tx, S_EVENT_DELETE_SEQ, seq, 0, 1, "events delete", err)) != 0)
        return ret;
    *events = sqlite3_changes64(tx->c->db);
    return 0;
}
