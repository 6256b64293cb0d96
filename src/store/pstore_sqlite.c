/*
 * pstore_sqlite.c - the identity graph and profile store tables (pstore.h) on SQLite.
 *
 * One database file, `<dir>/profile.db`, separate from the document store so that the bulk
 * writes of a downstream stage never hold the catalog's write lock. WAL mode; synchronous=FULL
 * unless opts.fast. Readers take a connection from a small pool; the one writer connection is
 * guarded by a mutex held from pstore_begin to commit/rollback. Every statement is prepared
 * once per connection and kept (SQLITE_PREPARE_PERSISTENT): lookups are a handful of indexed
 * point queries. All SQL uses bound parameters. The identity graph's documents, dictionary and
 * buffered writes are in pstore_graph.c.
 */
#include "store/pstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "store/pstore_int.h"

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
    /* 2: the graph as cluster documents (pstore_graph.c); the version-1 tables ident and edge
     * are converted and dropped right after, in the same transaction. */
    "CREATE TABLE gdict(bucket INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE TABLE gclu(grp INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE TABLE gfwd(label INTEGER NOT NULL, dest INTEGER NOT NULL,"
    " PRIMARY KEY(label, dest)) WITHOUT ROWID;"
    "CREATE TABLE gbatch(seq INTEGER PRIMARY KEY, labels BLOB NOT NULL);",
    /* 3: stored answers of profile lookups (pstore_view.c) */
    "CREATE TABLE pbody(label INTEGER PRIMARY KEY, stamp INTEGER NOT NULL, members BLOB NOT NULL,"
    " body BLOB NOT NULL);",
};

static const char *const k_sql[S_COUNT] = {
    [S_NS_BY_CODE] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE sandbox=?1 AND lcode=?2",
    [S_NS_BY_GID] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE gid=?1",
    [S_NS_BY_NSID] = "SELECT gid, nsid, code, id_type, sandbox FROM gns WHERE sandbox=?1 AND nsid=?2",
    [S_NS_INSERT] = "INSERT INTO gns(sandbox, lcode, code, nsid, id_type) VALUES(?1,?2,?3,?4,?5)",
    [S_BEGIN] = "BEGIN",
    [S_END] = "COMMIT",
    [S_KV_GET] = "SELECT v FROM kv WHERE k=?1",
    [S_KV_PUT] = "INSERT INTO kv(k, v) VALUES(?1,?2) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
    [S_DICT_GET] = "SELECT body FROM gdict WHERE bucket=?1",
    [S_DICT_PUT] = "INSERT OR REPLACE INTO gdict(bucket, body) VALUES(?1,?2)",
    [S_DICT_DEL] = "DELETE FROM gdict WHERE bucket=?1",
    [S_CLU_GET] = "SELECT body FROM gclu WHERE grp=?1",
    [S_CLU_PUT] = "INSERT OR REPLACE INTO gclu(grp, body) VALUES(?1,?2)",
    [S_CLU_DEL] = "DELETE FROM gclu WHERE grp=?1",
    [S_CLU_SCAN] = "SELECT grp, body FROM gclu WHERE grp>=?1 ORDER BY grp",
    [S_FWD_ADD] = "INSERT OR IGNORE INTO gfwd(label, dest) VALUES(?1,?2)",
    [S_FWD_GET] = "SELECT dest FROM gfwd WHERE label=?1",
    [S_GB_GET] = "SELECT labels FROM gbatch WHERE seq=?1",
    [S_GB_PUT] = "INSERT OR REPLACE INTO gbatch(seq, labels) VALUES(?1,?2)",
    [S_GB_DEL] = "DELETE FROM gbatch WHERE seq=?1",
    [S_BSEQ_NAMES] = "SELECT batch, dataset FROM bseq WHERE seq=?1",
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
    [S_BODY_GET] = "SELECT stamp, members, body FROM pbody WHERE label=?1",
    [S_BODY_PUT] = "INSERT OR REPLACE INTO pbody(label, stamp, members, body) VALUES(?1,?2,?3,?4)",
    [S_BODY_DEL] = "DELETE FROM pbody WHERE label=?1",
    [S_BODY_LABELS] = "SELECT label FROM pbody WHERE label>?1 ORDER BY label LIMIT ?2",
    [S_FRAG_KEYS_SEQ] = "SELECT DISTINCT ns, value FROM frag WHERE seq=?1",
    [S_EVENT_KEYS_SEQ] = "SELECT DISTINCT ns, value FROM event WHERE seq=?1",
};


/* ---------------------------------------------------------------------------------------------- */
/* Errors and connections */

int pstore__map_sqlite(struct ing_err *err, sqlite3 *db, int rc, const char *what)
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

int pstore__exec(sqlite3 *db, const char *sql, struct ing_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : pstore__map_sqlite(err, db, rc, "exec");
}

static void conn_free(struct pstore_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < S_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static int conn_open(struct pstore *ps, bool first, struct pstore_conn **out, struct ing_err *err)
{
    struct pstore_conn *c = xcalloc(1, sizeof(*c));
    int ret = 0;
    int rc = sqlite3_open_v2(ps->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = pstore__map_sqlite(err, c->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    /* 16 KiB pages for a new file: the graph's rows are a few KiB each (grouped clusters,
     * dictionary buckets), and with 4 KiB pages every such row took a page of its own. */
    if (first && (ret = pstore__exec(c->db, "PRAGMA page_size=16384", err)) != 0)
        goto out;
    if (first && (ret = pstore__exec(c->db, "PRAGMA journal_mode=WAL", err)) != 0)
        goto out;
    if ((ret = pstore__exec(c->db, ps->fast ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL",
                        err)) != 0)
        goto out;
    /* Lookups read a few pages each; 16 MiB per reader keeps the hot part of the indexes, and
     * the file mapped into memory spares copying pages out of the OS cache on a miss. */
    if ((ret = pstore__exec(c->db, "PRAGMA cache_size=-16384", err)) != 0)
        goto out;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA mmap_size=%lld", (long long)PSTORE_MMAP_BYTES);
    if ((ret = pstore__exec(c->db, sql, err)) != 0)
        goto out;
    ret = pstore__exec(c->db, "PRAGMA temp_store=MEMORY", err);
out:
    if (ret) {
        conn_free(c);
        c = NULL;
    }
    *out = c;
    return ret;
}

/* Version 1 kept the graph as rows (tables ident and edge); version 2 as documents. */
static int convert_graph_v1(struct pstore *ps, struct pstore_conn *c, struct ing_err *err)
{
    struct pstore_tx tx = {.ps = ps, .c = c};
    int ret = pstore__kv_get(c, PSTORE_KV_NEXT_ID, &tx.next_id, err);
    if (ret == ING_ENOTFOUND) {
        tx.next_id = 1;
        ret = 0;
    }
    if (ret == 0)
        ret = pstore__graph_convert_v1(&tx, err);
    if (ret == 0)
        ret = pstore__graph_flush(&tx, err);
    if (ret == 0 && tx.id_dirty)
        ret = pstore__kv_put(c, PSTORE_KV_NEXT_ID, tx.next_id, err);
    pstore__graph_tx_free(&tx);
    pstore__view_tx_free(&tx);
    pstore__hint_tx_free(&tx);
    return ret;
}

static int migrate(struct pstore *ps, struct pstore_conn *c, struct ing_err *err)
{
    sqlite3 *db = c->db;
    int ret = pstore__exec(db, "BEGIN IMMEDIATE", err);
    if (ret)
        return ret;
    sqlite3_stmt *st = NULL;
    int64_t version = 0;
    bool have_row = false;
    if ((ret = pstore__exec(db, "CREATE TABLE IF NOT EXISTS pmeta(version INTEGER NOT NULL)", err)))
        goto out;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM pmeta", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        ret = pstore__map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 0);
        have_row = true;
    } else if (rc != SQLITE_DONE) {
        ret = pstore__map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    sqlite3_reset(st); /* an active statement would lock the tables a migration drops */
    if (!have_row && (ret = pstore__exec(db, "INSERT INTO pmeta(version) VALUES(0)", err)) != 0)
        goto out;
    int64_t known = (int64_t)ING_ARRAY_LEN(k_migrations);
    if (version > known) {
        ret = ing_err_set(err, ING_ESTATE, "pstore: schema version %lld is newer than %lld",
                          (long long)version, (long long)known);
        goto out;
    }
    for (int64_t v = version; v < known; v++)
        if ((ret = pstore__exec(db, k_migrations[v], err)) != 0)
            goto out;
    if (version < 2 && (ret = convert_graph_v1(ps, c, err)) != 0)
        goto out;
    /* A database from before stored answers (version 3) has clusters without one: mark them
     * all for the backfill (pstore_view_backfill), which runs once a builder is registered. */
    if (version > 0 && version < 3 &&
        (ret = pstore__kv_put(c, PSTORE_KV_VIEW_BACKFILL, 0, err)) != 0)
        goto out;
    char sql[64];
    snprintf(sql, sizeof(sql), "UPDATE pmeta SET version=%lld", (long long)known);
    if ((ret = pstore__exec(db, sql, err)) != 0)
        goto out;
    ret = pstore__exec(db, "COMMIT", err);
out:
    sqlite3_finalize(st);
    if (ret)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

int pstore__conn_acquire(struct pstore *ps, struct pstore_conn **out, struct ing_err *err)
{
    pthread_mutex_lock(&ps->mu);
    struct pstore_conn *c = ps->free_list;
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

void pstore__conn_release(struct pstore *ps, struct pstore_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&ps->mu);
    c->next_free = ps->free_list;
    ps->free_list = c;
    pthread_mutex_unlock(&ps->mu);
}

/* A prepared statement of this connection, reset and unbound, ready for binding. */
int pstore__stmt(struct pstore_conn *c, enum pstore_stmt id, sqlite3_stmt **out, struct ing_err *err)
{
    if (!c->st[id]) {
        int rc = sqlite3_prepare_v3(c->db, k_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                                    NULL);
        if (rc != SQLITE_OK)
            return pstore__map_sqlite(err, c->db, rc, "prepare");
    }
    *out = c->st[id];
    return 0;
}

void pstore__done(sqlite3_stmt *s)
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
int pstore__step_done(struct pstore_conn *c, sqlite3_stmt *s, const char *what, struct ing_err *err)
{
    int rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? 0 : pstore__map_sqlite(err, c->db, rc, what);
    pstore__done(s);
    return ret;
}

/* Step a statement expected to return one integer (or no row: ING_ENOTFOUND). */
int pstore__step_int(struct pstore_conn *c, sqlite3_stmt *s, int64_t *out, const char *what,
                    struct ing_err *err)
{
    int rc = sqlite3_step(s);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        ret = ING_ENOTFOUND;
    else
        ret = pstore__map_sqlite(err, c->db, rc, what);
    pstore__done(s);
    return ret;
}

int pstore__kv_get(struct pstore_conn *c, const char *key, int64_t *v, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_KV_GET, &s, err);
    if (ret)
        return ret;
    bind_text(s, 1, key);
    return pstore__step_int(c, s, v, "kv", err);
}

int pstore__kv_put(struct pstore_conn *c, const char *key, int64_t v, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_KV_PUT, &s, err);
    if (ret)
        return ret;
    bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, v);
    return pstore__step_done(c, s, "kv", err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Open / close */

int pstore_open(struct pstore **out, const char *dir, const struct pstore_opts *opts,
                struct ing_err *err)
{
    struct pstore *ps = NULL;
    struct pstore_conn *c = NULL;
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
    if ((ret = migrate(ps, c, err)) != 0)
        goto out;
    /* The writer's stage touches pages all over the identity index: 64 MiB of cache for it (a
     * larger cache measured no faster on the million-record benchmark). */
    if ((ret = pstore__exec(c->db, "PRAGMA cache_size=-65536", err)) != 0)
        goto out;
    ps->writer = c;
    c = NULL;
    if (!(opts && opts->no_lookup_hint))
        pstore__hint_new(ps, opts ? opts->lookup_hint_retry_ms : 0);
    /* Checkpoints off the commit path (pstore_ckpt.c); without the thread, SQLite's own. */
    if (pstore__ckpt_start(ps, opts ? opts->checkpoint_frames : 0, NULL) != 0)
        log_warn("pstore: no checkpoint thread; checkpoints run inside commits");
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
    pstore__hint_free(ps); /* first: its build may hold a pooled connection */
    pstore__ckpt_stop(ps);
    struct pstore_conn *c = ps->all;
    while (c) {
        struct pstore_conn *next = c->next_all;
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
        struct pstore_ns_cache_entry *e = &ps->cache[ps->ncache++];
        snprintf(e->sandbox, sizeof(e->sandbox), "%s", sandbox ? sandbox : "");
        e->ns = *ns;
    }
    pthread_mutex_unlock(&ps->mu);
}

enum ns_key { NSK_CODE, NSK_GID, NSK_NSID };

/* sandbox_out (may be NULL, else 65 bytes) gets the namespace's sandbox. */
static bool cache_find(struct pstore *ps, enum ns_key key, const char *sandbox, const char *code,
                       int64_t num, struct pstore_ns *out, char *sandbox_out)
{
    bool found = false;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < ps->ncache && !found; i++) {
        const struct pstore_ns_cache_entry *e = &ps->cache[i];
        switch (key) {
        case NSK_CODE:
            found = !strcmp(e->sandbox, sandbox) && !strcasecmp(e->ns.code, code);
            break;
        case NSK_GID: found = e->ns.gid == num; break;
        case NSK_NSID: found = !strcmp(e->sandbox, sandbox) && e->ns.nsid == num; break;
        }
        if (found) {
            *out = e->ns;
            if (sandbox_out)
                snprintf(sandbox_out, 65, "%s", e->sandbox);
        }
    }
    pthread_mutex_unlock(&ps->mu);
    return found;
}

/* The namespace by key on connection c; row_sandbox (65 bytes) gets its sandbox. */
static int ns_query(struct pstore_conn *c, enum ns_key key, const char *sandbox,
                    const char *code, int64_t num, struct pstore_ns *out, char *row_sandbox,
                    struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    char *lcode = NULL;
    enum pstore_stmt id = key == NSK_CODE  ? S_NS_BY_CODE
                          : key == NSK_GID ? S_NS_BY_GID
                                           : S_NS_BY_NSID;
    int ret = pstore__stmt(c, id, &s, err);
    if (ret)
        return ret;
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
    if (rc == SQLITE_ROW) {
        ns_from_row(s, out);
        snprintf(row_sandbox, 65, "%s", col_text(s, 4));
    } else if (rc == SQLITE_DONE) {
        ret = ing_err_set(err, ING_ENOTFOUND, "the identity graph has no such namespace");
    } else {
        ret = pstore__map_sqlite(err, c->db, rc, "namespace");
    }
    pstore__done(s);
    free(lcode);
    return ret;
}

static int ns_lookup(struct pstore *ps, enum ns_key key, const char *sandbox, const char *code,
                     int64_t num, struct pstore_ns *out, struct ing_err *err)
{
    if ((key != NSK_GID && !sandbox) || (key == NSK_CODE && !code))
        return ing_err_set(err, ING_EINVAL, "pstore: namespace key missing");
    if (cache_find(ps, key, sandbox, code, num, out, NULL))
        return 0;
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    char row_sandbox[65] = "";
    ret = ns_query(c, key, sandbox, code, num, out, row_sandbox, err);
    if (ret == 0)
        cache_add(ps, row_sandbox, out);
    pstore__conn_release(ps, c);
    return ret;
}

int pstore__ns_by_gid_conn(struct pstore *ps, struct pstore_conn *c, int64_t gid,
                           struct pstore_ns *out, char *sandbox, struct ing_err *err)
{
    if (cache_find(ps, NSK_GID, NULL, NULL, gid, out, sandbox))
        return 0;
    /* Not cached: the writer may see a namespace of a transaction that then rolls back. */
    return ns_query(c, NSK_GID, NULL, NULL, gid, out, sandbox, err);
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

static int q_stage_get(struct pstore_conn *c, const char *batch, const char *stage_name, json_t **out,
                       struct ing_err *err)
{
    *out = NULL;
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_STAGE_GET, &s, err);
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
        ret = pstore__map_sqlite(err, c->db, rc, "stage");
    }
    pstore__done(s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reads */

/* The fragments of one identity on connection c. */
static int q_frags(struct pstore_conn *c, int64_t gid, const char *value, pstore_frag_fn *fn,
                   void *ctx, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(c, S_FRAGS, &s, err);
    if (ret)
        return ret;
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
        ret = pstore__map_sqlite(err, c->db, rc, "fragments");
    pstore__done(s);
    return ret;
}

int pstore_frags(struct pstore *ps, int64_t gid, const char *value, pstore_frag_fn *fn, void *ctx,
                 struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret == 0)
        ret = q_frags(c, gid, value, fn, ctx, err);
    pstore__conn_release(ps, c);
    return ret;
}

struct many_ctx {
    pstore_frags_many_fn *fn;
    void *ctx;
    size_t index;
};

static int many_adapter(void *vctx, const struct pstore_frag *f)
{
    struct many_ctx *m = vctx;
    return m->fn(m->ctx, m->index, f);
}

int pstore_frags_many(struct pstore *ps, size_t n, const int64_t *gids,
                      const char *const *values, pstore_frags_many_fn *fn, void *ctx,
                      struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = NULL;
    /* one read transaction: one snapshot, and the file locks taken once instead of n times */
    bool tx = n > 1;
    if (tx && (ret = pstore__stmt(c, S_BEGIN, &s, err)) == 0)
        ret = pstore__step_done(c, s, "begin", err);
    tx = tx && ret == 0;
    struct many_ctx m = {fn, ctx, 0};
    for (size_t i = 0; i < n && ret == 0; i++) {
        if (gids[i] == 0)
            continue;
        m.index = i;
        ret = q_frags(c, gids[i], values[i], many_adapter, &m, err);
    }
    if (tx && pstore__stmt(c, S_END, &s, NULL) == 0)
        pstore__step_done(c, s, "commit", NULL);
    pstore__conn_release(ps, c);
    return ret;
}

int pstore_events(struct pstore *ps, int64_t gid, const char *value, int64_t start, int64_t end,
                  pstore_event_fn *fn, void *ctx, struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    if ((ret = pstore__stmt(c, S_EVENTS, &s, err)) != 0)
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
        ret = pstore__map_sqlite(err, c->db, rc, "events");
    pstore__done(s);
out:
    pstore__conn_release(ps, c);
    return ret;
}

int pstore_has_profile_data(struct pstore *ps, int64_t gid, const char *value, bool events_only,
                            bool *out, struct ing_err *err)
{
    *out = false;
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret)
        return ret;
    const enum pstore_stmt which[] = {S_HAS_FRAG, S_HAS_EVENT};
    for (size_t i = events_only ? 1 : 0; i < ING_ARRAY_LEN(which) && !*out && ret == 0; i++) {
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(c, which[i], &s, err)) != 0)
            break;
        sqlite3_bind_int64(s, 1, gid);
        bind_text(s, 2, value);
        int64_t one = 0;
        ret = pstore__step_int(c, s, &one, "profile data", err);
        if (ret == 0)
            *out = true;
        else if (ret == ING_ENOTFOUND)
            ret = 0;
    }
    pstore__conn_release(ps, c);
    return ret;
}

int pstore_stage_get(struct pstore *ps, const char *batch, const char *stage_name, json_t **out,
                     struct ing_err *err)
{
    struct pstore_conn *c = NULL;
    int ret = pstore__conn_acquire(ps, &c, err);
    if (ret == 0)
        ret = q_stage_get(c, batch, stage_name, out, err);
    pstore__conn_release(ps, c);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

int pstore_begin(struct pstore *ps, struct pstore_tx **out, struct ing_err *err)
{
    *out = NULL;
    pthread_mutex_lock(&ps->wmu);
    struct pstore_conn *c = ps->writer;
    int ret = pstore__exec(c->db, "BEGIN IMMEDIATE", err);
    if (ret) {
        pthread_mutex_unlock(&ps->wmu);
        return ret;
    }
    struct pstore_tx *tx = xcalloc(1, sizeof(*tx));
    tx->ps = ps;
    tx->c = c;
    sqlite3_stmt *s = NULL;
    if ((ret = pstore__stmt(c, S_KV_GET, &s, err)) == 0) {
        bind_text(s, 1, PSTORE_KV_NEXT_ID);
        ret = pstore__step_int(c, s, &tx->next_id, "id counter", err);
        if (ret == ING_ENOTFOUND) {
            tx->next_id = 1;
            ret = 0;
        }
    }
    if (ret) {
        pstore_rollback(tx);
        return ret;
    }
    tx->first_id = tx->next_id;
    *out = tx;
    return 0;
}

int pstore_commit(struct pstore_tx *tx, struct ing_err *err)
{
    if (!tx)
        return ing_err_set(err, ING_EINVAL, "pstore: no transaction");
    struct pstore_conn *c = tx->c;
    int ret = pstore__graph_flush(tx, err);
    if (ret == 0)
        ret = pstore__view_refresh(tx, err);
    if (ret == 0 && tx->id_dirty) {
        sqlite3_stmt *s = NULL;
        if ((ret = pstore__stmt(c, S_KV_PUT, &s, err)) == 0) {
            bind_text(s, 1, PSTORE_KV_NEXT_ID);
            sqlite3_bind_int64(s, 2, tx->next_id);
            ret = pstore__step_done(c, s, "id counter", err);
        }
    }
    if (ret == 0)
        ret = pstore__exec(c->db, "COMMIT", err);
    if (ret) {
        pstore_rollback(tx);
        return ret;
    }
    pstore__graph_tx_free(tx);
    pstore__view_tx_free(tx);
    /* the hint first, so that snapshots begun after the generation moves mostly find it new */
    pstore__hint_committed(tx);
    pstore__view_committed(tx->ps);
    pthread_mutex_unlock(&tx->ps->wmu);
    free(tx);
    return 0;
}

void pstore_rollback(struct pstore_tx *tx)
{
    if (!tx)
        return;
    sqlite3_exec(tx->c->db, "ROLLBACK", NULL, NULL, NULL);
    pstore__graph_tx_free(tx);
    pstore__view_tx_free(tx);
    pstore__hint_tx_free(tx);
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
    struct pstore_conn *c = tx->c;
    sqlite3_stmt *s = NULL;
    char *lcode = lower_dup(code);
    int ret = pstore__stmt(c, S_NS_BY_CODE, &s, err);
    if (ret)
        goto out;
    bind_text(s, 1, sandbox);
    bind_text(s, 2, lcode);
    ret = pstore__step_int(c, s, gid, "namespace", err);
    if (ret != ING_ENOTFOUND)
        goto out;
    if ((ret = pstore__stmt(c, S_NS_INSERT, &s, err)) != 0)
        goto out;
    bind_text(s, 1, sandbox);
    bind_text(s, 2, lcode);
    bind_text(s, 3, code);
    sqlite3_bind_int64(s, 4, nsid);
    bind_text(s, 5, id_type ? id_type : "");
    if ((ret = pstore__step_done(c, s, "namespace insert", err)) == 0)
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
    struct pstore_conn *c = tx->c;
    sqlite3_stmt *s = NULL;
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text)
        return ing_err_set(err, ING_EINVAL, "pstore: stage record cannot be serialised");
    int ret = pstore__stmt(c, S_STAGE_PUT, &s, err);
    if (ret == 0) {
        bind_text(s, 1, batch);
        bind_text(s, 2, stage_name);
        bind_text(s, 3, sandbox);
        bind_text(s, 4, text);
        ret = pstore__step_done(c, s, "stage record", err);
    }
    free(text);
    return ret;
}

int pstore_tx_batch_find(struct pstore_tx *tx, const char *batch, int64_t *seq,
                         struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_BSEQ_GET, &s, err);
    if (ret)
        return ret;
    bind_text(s, 1, batch);
    return pstore__step_int(tx->c, s, seq, "batch", err);
}

int pstore_tx_batch_seq(struct pstore_tx *tx, const char *batch, const char *dataset,
                        int64_t *seq, struct ing_err *err)
{
    int ret = pstore_tx_batch_find(tx, batch, seq, err);
    if (ret != ING_ENOTFOUND)
        return ret;
    sqlite3_stmt *s = NULL;
    if ((ret = pstore__stmt(tx->c, S_BSEQ_INSERT, &s, err)) != 0)
        return ret;
    bind_text(s, 1, batch);
    bind_text(s, 2, dataset ? dataset : "");
    if ((ret = pstore__step_done(tx->c, s, "batch insert", err)) == 0)
        *seq = sqlite3_last_insert_rowid(tx->c->db);
    return ret;
}

/* A statement that takes one integer key and returns no row. */
static int exec_int(struct pstore_tx *tx, enum pstore_stmt id, int64_t a, const char *what,
                    struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, id, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, a);
    return pstore__step_done(tx->c, s, what, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Fragments and events */

int pstore_tx_frag_put(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, int64_t ts, bool upsert, const char *doc, struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_FRAG_PUT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    bind_text(s, 3, dataset);
    sqlite3_bind_int64(s, 4, seq);
    sqlite3_bind_int64(s, 5, ts);
    sqlite3_bind_int(s, 6, upsert ? 1 : 0);
    bind_text(s, 7, doc);
    ret = pstore__step_done(tx->c, s, "fragment insert", err);
    if (ret == 0)
        pstore__view_note_key(tx, gid, value);
    return ret;
}

int pstore_tx_frag_get(struct pstore_tx *tx, int64_t gid, const char *value, const char *dataset,
                       int64_t seq, char **doc, struct ing_err *err)
{
    *doc = NULL;
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_FRAG_GET, &s, err);
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
        ret = pstore__map_sqlite(err, tx->c->db, rc, "fragment");
    pstore__done(s);
    return ret;
}

int pstore_tx_event_put(struct pstore_tx *tx, int64_t gid, const char *value, int64_t ts,
                        const char *eid, int64_t seq, int64_t stored_ts, const char *doc,
                        struct ing_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = pstore__stmt(tx->c, S_EVENT_PUT, &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, gid);
    bind_text(s, 2, value);
    sqlite3_bind_int64(s, 3, ts);
    bind_text(s, 4, eid);
    sqlite3_bind_int64(s, 5, seq);
    sqlite3_bind_int64(s, 6, stored_ts);
    bind_text(s, 7, doc);
    ret = pstore__step_done(tx->c, s, "event insert", err);
    if (ret == 0)
        pstore__view_note_key(tx, gid, value);
    return ret;
}

int pstore_tx_profile_delete_batch(struct pstore_tx *tx, int64_t seq, int64_t *frags,
                                   int64_t *events, struct ing_err *err)
{
    /* the identities whose answers change: read before the rows go */
    int ret = pstore__view_note_seq(tx, seq, err);
    if (ret == 0)
        ret = exec_int(tx, S_FRAG_DELETE_SEQ, seq, "fragments delete", err);
    if (ret)
        return ret;
    *frags = sqlite3_changes64(tx->c->db);
    if ((ret = exec_int(tx, S_EVENT_DELETE_SEQ, seq, "events delete", err)) != 0)
        return ret;
    *events = sqlite3_changes64(tx->c->db);
    return 0;
}
