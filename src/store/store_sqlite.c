/*
 * store_sqlite.c - the metadata store (store.h) on SQLite in WAL mode.
 *
 * One table holds every document: docs(seq, sandbox, kind, id, created, updated, doc). `seq` is the
 * rowid (AUTOINCREMENT), so it records insertion order and survives updates. Connections come from a
 * small pool guarded by a mutex: a call takes a free connection, uses it, and gives it back. A
 * transaction pins its connection to the thread that began it until commit/rollback; every store_*
 * call from that thread finds the pinned connection first, so its reads and writes run inside the
 * transaction. All SQL uses bound parameters only, property names included (as JSON paths).
 *
 * The only file that includes <sqlite3.h>.
 */
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regex.h>
#include <sqlite3.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

/* Fixed statements, prepared once per connection. */
enum stmt_id {
    ST_INSERT,
    ST_UPDATE,
    ST_PUT,
    ST_GET,
    ST_DELETE,
    ST_COUNT_FIXED
};

static const char *const k_fixed_sql[ST_COUNT_FIXED] = {
    [ST_INSERT] = "INSERT INTO docs(sandbox, kind, id, created, updated, doc) VALUES(?1,?2,?3,?4,?5,?6)",
    [ST_UPDATE] = "UPDATE docs SET doc=?6, created=COALESCE(?4, created), updated=?5 "
                  "WHERE sandbox=?1 AND kind=?2 AND id=?3",
    [ST_PUT] = "INSERT INTO docs(sandbox, kind, id, created, updated, doc) "
               "VALUES(?1,?2,?3,COALESCE(?4,?5),?5,?6) "
               "ON CONFLICT(sandbox, kind, id) DO UPDATE SET doc=excluded.doc, "
               "created=COALESCE(?4, docs.created), updated=excluded.updated",
    [ST_GET] = "SELECT doc FROM docs WHERE sandbox=?1 AND kind=?2 AND id=?3",
    [ST_DELETE] = "DELETE FROM docs WHERE sandbox=?1 AND kind=?2 AND id=?3",
};

/* Schema migrations, applied in order; meta.version counts how many ran. Later issues append. */
static const char *const k_migrations[] = {
    "CREATE TABLE docs ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " sandbox TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL, doc TEXT NOT NULL,"
    " UNIQUE(sandbox, kind, id));"
    "CREATE INDEX docs_by_created ON docs(sandbox, kind, created);"
    "CREATE INDEX docs_kind_seq ON docs(kind, seq);",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *fixed[ST_COUNT_FIXED];
    pthread_t owner;        /* valid while in_tx */
    bool in_tx;
    struct conn *next_tx;   /* list of pinned connections */
    struct conn *next_free; /* free list link */
    struct conn *next_all;  /* list of every connection, for close */
};

struct store {
    char *path;
    pthread_mutex_t mu;
    struct conn *free_list;
    struct conn *all;
    struct conn *tx_head; /* connections pinned by open transactions */
};

static struct conn *pinned_locked(struct store *st);

/* ---------------------------------------------------------------------------------------------- */
/* Errors */

static int map_sqlite(struct ing_err *err, sqlite3 *db, int rc, const char *what)
{
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int code;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = ING_EAGAIN;
        break;
    case SQLITE_CONSTRAINT:
        code = (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? ING_EEXIST : ING_EINVAL;
        break;
    case SQLITE_NOMEM:
        code = ING_ENOMEM;
        break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        code = ING_EIO;
        break;
    default:
        code = ING_EINTERNAL;
        break;
    }
    return ing_err_set(err, code, "store: %s: %s", what, msg);
}

/* ---------------------------------------------------------------------------------------------- */
/* Connections */

static int exec_sql(sqlite3 *db, const char *sql, struct ing_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = map_sqlite(err, db, rc, sql);
        sqlite3_free(msg);
        return code;
    }
    return 0;
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < ST_COUNT_FIXED; i++)
        sqlite3_finalize(c->fixed[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static void regexp_free(void *p)
{
    if (p) {
        regfree(p);
        free(p);
    }
}

/* SQL `X REGEXP Y` calls regexp(Y, X): POSIX extended syntax, as the Catalog's `property=name~re`
 * needs. The compiled pattern is cached on the statement for the rows that follow. A pattern
 * that does not compile is an SQL error, which the caller reports as a bad request. */
static void regexp_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[1]);
    if (!text)
        return; /* NULL: no match */
    regex_t *re = sqlite3_get_auxdata(ctx, 0);
    if (!re) {
        const char *pattern = (const char *)sqlite3_value_text(argv[0]);
        re = xmalloc(sizeof(*re));
        if (!pattern || regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
            free(re);
            sqlite3_result_error(ctx, "invalid regular expression", -1);
            return;
        }
        sqlite3_set_auxdata(ctx, 0, re, regexp_free);
        re = sqlite3_get_auxdata(ctx, 0);
        if (!re) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    sqlite3_result_int(ctx, regexec(re, text, 0, NULL, 0) == 0);
}

static int conn_open(const char *path, bool first, struct conn **out, struct ing_err *err)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int ret = 0;
    int rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = map_sqlite(err, c->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_create_function(c->db, "regexp", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            regexp_fn, NULL, NULL);
    /* The busy timeout first, so the pragmas below wait for other connections' locks. */
    sqlite3_busy_timeout(c->db, 10000);
    /* journal_mode=WAL is persistent in the file: set it once, from the first connection. */
    if (first && (ret = exec_sql(c->db, "PRAGMA journal_mode=WAL", err)) != 0)
        goto out;
    if ((ret = exec_sql(c->db, "PRAGMA synchronous=FULL", err)) != 0)
        goto out;
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
    ret = exec_sql(db, "CREATE TABLE IF NOT EXISTS meta(version INTEGER NOT NULL)", err);
    if (ret)
        goto out;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM meta", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        ret = map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    bool have_row = false;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 0);
        have_row = true;
    } else if (rc != SQLITE_DONE) {
        ret = map_sqlite(err, db, rc, "read schema version");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!have_row && (ret = exec_sql(db, "INSERT INTO meta(version) VALUES(0)", err)) != 0)
        goto out;
    int64_t known = (int64_t)ING_ARRAY_LEN(k_migrations);
    if (version > known) {
        ret = ing_err_set(err, ING_ESTATE, "store: database schema version %lld is newer than %lld",
                          (long long)version, (long long)known);
        goto out;
    }
    for (int64_t v = version; v < known; v++) {
        if ((ret = exec_sql(db, k_migrations[v], err)) != 0)
            goto out;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "UPDATE meta SET version=%lld", (long long)known);
    if ((ret = exec_sql(db, sql, err)) != 0)
        goto out;
    ret = exec_sql(db, "COMMIT", err);
out:
    sqlite3_finalize(st);
    if (ret)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* Take the calling thread's pinned transaction connection, or a free one, or a new one. */
static int conn_acquire(struct store *st, struct conn **out, struct ing_err *err)
{
    pthread_mutex_lock(&st->mu);
    struct conn *c = pinned_locked(st);
    if (!c && st->free_list) {
        c = st->free_list;
        st->free_list = c->next_free;
        c->next_free = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    if (c) {
        *out = c;
        return 0;
    }
    int ret = conn_open(st->path, false, &c, err);
    if (ret)
        return ret;
    pthread_mutex_lock(&st->mu);
    c->next_all = st->all;
    st->all = c;
    pthread_mutex_unlock(&st->mu);
    *out = c;
    return 0;
}

/* Give a connection back, unless a transaction pins it to this thread. */
static void conn_release(struct store *st, struct conn *c)
{
    if (!c || c->in_tx)
        return;
    pthread_mutex_lock(&st->mu);
    c->next_free = st->free_list;
    st->free_list = c;
    pthread_mutex_unlock(&st->mu);
}

static int fixed_stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out, struct ing_err *err)
{
    if (!c->fixed[id]) {
        int rc = sqlite3_prepare_v3(c->db, k_fixed_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->fixed[id], NULL);
        if (rc != SQLITE_OK)
            return map_sqlite(err, c->db, rc, "prepare");
    }
    *out = c->fixed[id];
    return 0;
}

static void stmt_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Open / close */

int store_open(struct store **out, const char *dir, struct ing_err *err)
{
    struct store *st = NULL;
    struct conn *c = NULL;
    int ret = fs_mkdirs(dir, err);
    if (ret)
        goto out;
    st = xcalloc(1, sizeof(*st));
    st->path = xasprintf("%s/ingot.db", dir);
    pthread_mutex_init(&st->mu, NULL);
    if ((ret = conn_open(st->path, true, &c, err)) != 0)
        goto out;
    if ((ret = migrate(c->db, err)) != 0)
        goto out;
    c->next_all = NULL;
    st->all = c;
    st->free_list = c;
    c = NULL;
out:
    conn_free(c);
    if (ret) {
        store_close(st);
        st = NULL;
    }
    *out = st;
    return ret;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    struct conn *c = st->all;
    while (c) {
        struct conn *next = c->next_all;
        if (c->in_tx) {
            log_warn("store: closing with an open transaction; rolling it back");
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        }
        conn_free(c);
        c = next;
    }
    pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

/* ---------------------------------------------------------------------------------------------- */
/* Single documents */

static int check_key(const char *sandbox, const char *kind, const char *id, struct ing_err *err)
{
    if (!sandbox || !*sandbox || !kind || !*kind || !id || !*id)
        return ing_err_set(err, ING_EINVAL, "store: sandbox, kind and id must be non-empty");
    return 0;
}

/* Serialise a document; reads its "created"/"updated" millisecond numbers when present. */
static char *serialise(const json_t *doc, bool *has_created, int64_t *created, int64_t *updated)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return NULL;
    int64_t now = clock_now_ms();
    *has_created = false;
    *created = now;
    *updated = now;
    json_t *c = json_is_object(doc) ? json_object_get(doc, "created") : NULL;
    json_t *u = json_is_object(doc) ? json_object_get(doc, "updated") : NULL;
    if (json_is_integer(c)) {
        *created = (int64_t)json_integer_value(c);
        *has_created = true;
    } else if (json_is_real(c) && isfinite(json_real_value(c)) && fabs(json_real_value(c)) < 9e18) {
        *created = (int64_t)json_real_value(c);
        *has_created = true;
    }
    if (json_is_integer(u))
        *updated = (int64_t)json_integer_value(u);
    else if (json_is_real(u) && isfinite(json_real_value(u)) && fabs(json_real_value(u)) < 9e18)
        *updated = (int64_t)json_real_value(u);
    return text;
}

static void bind_key(sqlite3_stmt *s, const char *sandbox, const char *kind, const char *id)
{
    sqlite3_bind_text(s, 1, sandbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
}

/* The three writers share one shape: bind key, times and text, step once. */
static int write_doc(struct store *st, enum stmt_id which, const char *sandbox, const char *kind,
                     const char *id, const json_t *doc, struct ing_err *err)
{
    int ret = check_key(sandbox, kind, id, err);
    if (ret)
        return ret;
    if (!doc)
        return ing_err_set(err, ING_EINVAL, "store: document is NULL");
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    bool has_created;
    int64_t created, updated;
    char *text = serialise(doc, &has_created, &created, &updated);
    if (!text) {
        ret = ing_err_set(err, ING_EINVAL, "store: document cannot be serialised");
        goto out;
    }
    if ((ret = conn_acquire(st, &c, err)) != 0)
        goto out;
    if ((ret = fixed_stmt(c, which, &s, err)) != 0)
        goto out;
    bind_key(s, sandbox, kind, id);
    if (which == ST_INSERT || has_created)
        sqlite3_bind_int64(s, 4, created);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, updated);
    sqlite3_bind_text(s, 6, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        ret = map_sqlite(err, c->db, rc, "write");
        if (ret == ING_EEXIST)
            ing_err_set(err, ING_EEXIST, "%s %s exists already", kind, id);
        goto out;
    }
    if (which == ST_UPDATE && sqlite3_changes(c->db) == 0)
        ret = ing_err_set(err, ING_ENOTFOUND, "%s %s not found", kind, id);
out:
    stmt_done(s);
    if (c)
        conn_release(st, c);
    free(text);
    return ret;
}

int store_insert(struct store *st, const char *sandbox, const char *kind, const char *id,
                 const json_t *doc, struct ing_err *err)
{
    return write_doc(st, ST_INSERT, sandbox, kind, id, doc, err);
}

int store_update(struct store *st, const char *sandbox, const char *kind, const char *id,
                 const json_t *doc, struct ing_err *err)
{
    return write_doc(st, ST_UPDATE, sandbox, kind, id, doc, err);
}

int store_put(struct store *st, const char *sandbox, const char *kind, const char *id,
              const json_t *doc, struct ing_err *err)
{
    return write_doc(st, ST_PUT, sandbox, kind, id, doc, err);
}

static json_t *parse_doc(sqlite3_stmt *s, int col)
{
    const void *text = sqlite3_column_blob(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!text)
        return json_object();
    return json_loadb(text, (size_t)n, JSON_DECODE_ANY, NULL);
}

int store_get(struct store *st, const char *sandbox, const char *kind, const char *id, json_t **out,
              struct ing_err *err)
{
    *out = NULL;
    int ret = check_key(sandbox, kind, id, err);
    if (ret)
        return ret;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    if ((ret = conn_acquire(st, &c, err)) != 0)
        goto out;
    if ((ret = fixed_stmt(c, ST_GET, &s, err)) != 0)
        goto out;
    bind_key(s, sandbox, kind, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = ing_err_set(err, ING_ENOTFOUND, "%s %s not found", kind, id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = map_sqlite(err, c->db, rc, "get");
        goto out;
    }
    *out = parse_doc(s, 0);
    if (!*out)
        ret = ing_err_set(err, ING_EINTERNAL, "store: stored %s %s is not valid JSON", kind, id);
out:
    stmt_done(s);
    if (c)
        conn_release(st, c);
    return ret;
}

int store_delete(struct store *st, const char *sandbox, const char *kind, const char *id,
                 struct ing_err *err)
{
    int ret = check_key(sandbox, kind, id, err);
    if (ret)
        return ret;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    if ((ret = conn_acquire(st, &c, err)) != 0)
        goto out;
    if ((ret = fixed_stmt(c, ST_DELETE, &s, err)) != 0)
        goto out;
    bind_key(s, sandbox, kind, id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        ret = map_sqlite(err, c->db, rc, "delete");
        goto out;
    }
    if (sqlite3_changes(c->db) == 0)
        ret = ing_err_set(err, ING_ENOTFOUND, "%s %s not found", kind, id);
out:
    stmt_done(s);
    if (c)
        conn_release(st, c);
    return ret;
}

/* ---------------------------------------------------------------------------------------------- */
/* Queries: SQL text with '?' placeholders plus the values to bind, in order */

enum bind_kind { BIND_TEXT, BIND_REAL, BIND_INT, BIND_NULL };

struct bind {
    enum bind_kind kind;
    char *text; /* owned */
    double real;
    int64_t i;
};

struct query_sql {
    struct buf sql;
    struct bind *binds;
    size_t nbinds, cap;
};

static void qs_bind(struct query_sql *qs, struct bind b)
{
    if (qs->nbinds == qs->cap) {
        qs->cap = qs->cap ? qs->cap * 2 : 16;
        qs->binds = xrealloc(qs->binds, qs->cap * sizeof(*qs->binds));
    }
    qs->binds[qs->nbinds++] = b;
}

/* Append SQL text; '?' in it must be matched by qs_text/qs_real calls in the same order. */
static void qs_sql(struct query_sql *qs, const char *s)
{
    if (buf_append_str(&qs->sql, s) != 0)
        abort(); /* query text is small and built from bounded parts */
}

static void qs_text(struct query_sql *qs, const char *text)
{
    qs_sql(qs, "?");
    qs_bind(qs, (struct bind){.kind = BIND_TEXT, .text = xstrdup(text)});
}

static void qs_textn(struct query_sql *qs, const char *text, size_t n)
{
    qs_sql(qs, "?");
    qs_bind(qs, (struct bind){.kind = BIND_TEXT, .text = xstrndup(text, n)});
}

static void qs_real_or_null(struct query_sql *qs, bool is_num, double v)
{
    qs_sql(qs, "?");
    qs_bind(qs, (struct bind){.kind = is_num ? BIND_REAL : BIND_NULL, .real = v});
}

static void qs_int(struct query_sql *qs, int64_t v)
{
    qs_sql(qs, "?");
    qs_bind(qs, (struct bind){.kind = BIND_INT, .i = v});
}

static void qs_free(struct query_sql *qs)
{
    for (size_t i = 0; i < qs->nbinds; i++)
        free(qs->binds[i].text);
    free(qs->binds);
    buf_free(&qs->sql);
}

/* A property split into JSON paths: full = $."a"."b"."c", head = $."a", rest = $."b"."c". */
struct prop_path {
    char full[600];
    char head[300];
    char rest[600];
    bool dotted;
    const char *column; /* "created"/"updated": use the indexed column instead of the JSON */
};

static int prop_parse(const char *property, struct prop_path *pp, struct ing_err *err)
{
    memset(pp, 0, sizeof(*pp));
    if (!property || !*property || strlen(property) > 256)
        return ing_err_set(err, ING_EINVAL, "store: bad property name");
    if (!strcmp(property, "created") || !strcmp(property, "updated")) {
        pp->column = property[0] == 'c' ? "d.created" : "d.updated";
        return 0;
    }
    struct buf full = {0}, rest = {0};
    int ret = 0;
    const char *p = property;
    bool first = true;
    if (buf_append_str(&full, "$") || buf_append_str(&rest, "$"))
        abort();
    while (1) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        /* A quoted JSON path label cannot contain '"' (SQLite has no escape for it). */
        if (n == 0 || memchr(p, '"', n)) {
            ret = ing_err_set(err, ING_EINVAL, "store: bad property name '%s'", property);
            ing_err_field(err, property);
            goto out;
        }
        if (buf_printf(&full, ".\"%.*s\"", (int)n, p) ||
            (!first && buf_printf(&rest, ".\"%.*s\"", (int)n, p)))
            abort();
        if (first)
            snprintf(pp->head, sizeof(pp->head), "%s", buf_cstr(&full));
        first = false;
        if (!dot)
            break;
        pp->dotted = true;
        p = dot + 1;
    }
    snprintf(pp->full, sizeof(pp->full), "%s", buf_cstr(&full));
    snprintf(pp->rest, sizeof(pp->rest), "%s", buf_cstr(&rest));
out:
    buf_free(&full);
    buf_free(&rest);
    return ret;
}

static bool parse_number(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* Only plain decimal numbers; strtod would also take "inf", "nan" and hex. */
    for (size_t i = 0; i < n; i++) {
        char ch = tmp[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e' ||
              ch == 'E'))
            return false;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}


/* Where a compared value comes from: an integer column, or a JSON path inside a JSON text. */
struct val_src {
    const char *column; /* "d.created" / "d.updated", or NULL */
    const char *json;   /* "d.doc" or "e.value" (an array element) */
    const char *path;   /* bound as a parameter */
};

static void emit_value(struct query_sql *qs, const struct val_src *src)
{
    if (src->column) {
        qs_sql(qs, src->column);
        return;
    }
    qs_sql(qs, "json_extract(");
    qs_sql(qs, src->json);
    qs_sql(qs, ", ");
    qs_text(qs, src->path);
    qs_sql(qs, ")");
}

static void emit_type(struct query_sql *qs, const struct val_src *src)
{
    if (src->column) {
        qs_sql(qs, "'integer'"); /* the timestamp columns are NOT NULL integers */
        return;
    }
    qs_sql(qs, "json_type(");
    qs_sql(qs, src->json);
    qs_sql(qs, ", ");
    qs_text(qs, src->path);
    qs_sql(qs, ")");
}

/*
 * One comparison of a value against `value`: numbers compare numerically (when `value` parses as
 * a number), strings as text, true/false by JSON type. Always 0 or 1, never NULL, so that NOT() of
 * it is well defined for missing properties.
 */
static void cmp_expr(struct query_sql *qs, const struct val_src *src, const char *sqlop,
                     const char *value, size_t n)
{
    double num = 0;
    bool is_num = parse_number(value, n, &num);
    qs_sql(qs, "COALESCE(((");
    emit_type(qs, src);
    qs_sql(qs, " IN ('integer','real') AND ");
    emit_value(qs, src);
    qs_sql(qs, sqlop);
    qs_real_or_null(qs, is_num, num);
    qs_sql(qs, ") OR (");
    emit_type(qs, src);
    qs_sql(qs, " = 'text' AND ");
    emit_value(qs, src);
    qs_sql(qs, sqlop);
    qs_textn(qs, value, n);
    qs_sql(qs, ")");
    if (!strcmp(sqlop, " = ")) {
        qs_sql(qs, " OR (");
        emit_type(qs, src);
        qs_sql(qs, " IN ('true','false') AND ");
        emit_type(qs, src);
        qs_sql(qs, " = ");
        qs_textn(qs, value, n);
        qs_sql(qs, ")");
    }
    qs_sql(qs, "), 0)");
}

/* The positive form of a filter: op is one of EQ, LT, LE, GT, GE, IN, EXISTS. */
static void positive_cond(struct query_sql *qs, const struct val_src *src, enum store_op op,
                          const char *value)
{
    switch (op) {
    case STORE_EXISTS:
        /* null equals absent */
        qs_sql(qs, "COALESCE(");
        emit_type(qs, src);
        qs_sql(qs, " <> 'null', 0)");
        return;
    case STORE_IN: {
        qs_sql(qs, "(0");
        const char *p = value;
        while (1) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            qs_sql(qs, " OR ");
            cmp_expr(qs, src, " = ", p, n);
            if (!comma)
                break;
            p = comma + 1;
        }
        qs_sql(qs, ")");
        return;
    }
    case STORE_MATCH:
        qs_sql(qs, "COALESCE(CAST(");
        emit_value(qs, src);
        qs_sql(qs, " AS TEXT) REGEXP ");
        qs_text(qs, value);
        qs_sql(qs, ", 0)");
        return;
    case STORE_LT: cmp_expr(qs, src, " < ", value, strlen(value)); return;
    case STORE_LE: cmp_expr(qs, src, " <= ", value, strlen(value)); return;
    case STORE_GT: cmp_expr(qs, src, " > ", value, strlen(value)); return;
    case STORE_GE: cmp_expr(qs, src, " >= ", value, strlen(value)); return;
    default: cmp_expr(qs, src, " = ", value, strlen(value)); return;
    }
}

/* A SQL GLOB pattern matching `value` literally except for '*'. Caller frees. */
static char *glob_of(const char *value)
{
    struct buf b = {0};
    for (const char *p = value; *p; p++) {
        int rc;
        if (*p == '?')
            rc = buf_append_str(&b, "[?]");
        else if (*p == '[')
            rc = buf_append_str(&b, "[[]");
        else
            rc = buf_append_byte(&b, (uint8_t)*p);
        if (rc)
            abort();
    }
    char *out = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return out;
}

/* tags.<name> contains value ('*' wildcard; "" or "*" alone: the tag is present). */
static int tag_cond(struct query_sql *qs, const char *name, const char *value, struct ing_err *err)
{
    if (!name || !*name || strchr(name, '"') || strlen(name) > 256) {
        ing_err_field(err, name);
        return ing_err_set(err, ING_EINVAL, "store: bad tag name");
    }
    char path[300];
    snprintf(path, sizeof(path), "$.\"tags\".\"%s\"", name);
    if (!*value || !strcmp(value, "*")) {
        qs_sql(qs, "COALESCE(json_type(d.doc, ");
        qs_text(qs, path);
        qs_sql(qs, ") <> 'null', 0)");
        return 0;
    }
    /* json_each over a scalar yields the scalar itself, so a tag given as one value also works. */
    qs_sql(qs, "EXISTS (SELECT 1 FROM json_each(d.doc, ");
    qs_text(qs, path);
    qs_sql(qs, ") t WHERE (CASE t.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
               "ELSE CAST(t.atom AS TEXT) END) GLOB ");
    char *g = glob_of(value);
    qs_text(qs, g);
    free(g);
    qs_sql(qs, ")");
    return 0;
}

static int filter_cond(struct query_sql *qs, const struct store_filter *f, struct ing_err *err)
{
    const char *value = f->value ? f->value : "";
    if (f->op == STORE_TAG) {
        /* The property is the tag's name; a "tags." prefix is accepted too. */
        const char *name = f->property;
        if (name && !strncmp(name, "tags.", 5))
            name += 5;
        return tag_cond(qs, name, value, err);
    }
    if ((unsigned)f->op > (unsigned)STORE_TAG)
        return ing_err_set(err, ING_EINVAL, "store: unknown filter operator %d", (int)f->op);
    struct prop_path pp;
    int ret = prop_parse(f->property, &pp, err);
    if (ret)
        return ret;
    /* Negative operators are NOT of the positive ones, so that on array properties they mean
     * "no element matches" and a missing property matches them. */
    enum store_op pos = f->op;
    bool negate = true;
    if (f->op == STORE_NE)
        pos = STORE_EQ;
    else if (f->op == STORE_NOT_EXISTS)
        pos = STORE_EXISTS;
    else if (f->op == STORE_NOT_IN)
        pos = STORE_IN;
    else
        negate = false;

    qs_sql(qs, negate ? "NOT (" : "(");
    if (pp.column) {
        struct val_src src = {.column = pp.column};
        positive_cond(qs, &src, pos, value);
    } else if (!pp.dotted) {
        struct val_src src = {.json = "d.doc", .path = pp.full};
        positive_cond(qs, &src, pos, value);
    } else {
        /* When the first part is an array: any element (an object) matching the rest. */
        struct val_src elem = {.json = "e.value", .path = pp.rest};
        struct val_src whole = {.json = "d.doc", .path = pp.full};
        qs_sql(qs, "CASE WHEN json_type(d.doc, ");
        qs_text(qs, pp.head);
        qs_sql(qs, ") = 'array' THEN EXISTS (SELECT 1 FROM json_each(d.doc, ");
        qs_text(qs, pp.head);
        qs_sql(qs, ") e WHERE e.type = 'object' AND ");
        positive_cond(qs, &elem, pos, value);
        qs_sql(qs, ") ELSE ");
        positive_cond(qs, &whole, pos, value);
        qs_sql(qs, " END");
    }
    qs_sql(qs, ")");
    return 0;
}

/* FROM + WHERE for one kind (and one sandbox unless NULL) and the query's filters. */
static int build_where(struct query_sql *qs, const char *sandbox, const char *kind,
                       const struct store_query *q, struct ing_err *err)
{
    qs_sql(qs, " FROM docs d WHERE d.kind = ");
    qs_text(qs, kind);
    if (sandbox) {
        qs_sql(qs, " AND d.sandbox = ");
        qs_text(qs, sandbox);
    }
    for (size_t i = 0; q && i < q->nfilters; i++) {
        qs_sql(qs, " AND ");
        int ret = filter_cond(qs, &q->filters[i], err);
        if (ret)
            return ret;
    }
    return 0;
}

static int build_order(struct query_sql *qs, const struct store_query *q, const char *dflt,
                       struct ing_err *err)
{
    if (!q || !q->order || q->norder == 0) {
        qs_sql(qs, dflt);
        return 0;
    }
    qs_sql(qs, " ORDER BY ");
    for (size_t i = 0; i < q->norder; i++) {
        struct prop_path pp;
        int ret = prop_parse(q->order[i].property, &pp, err);
        if (ret)
            return ret;
        if (pp.column) {
            qs_sql(qs, pp.column);
        } else {
            qs_sql(qs, "json_extract(d.doc, ");
            qs_text(qs, pp.full);
            qs_sql(qs, ")");
        }
        qs_sql(qs, q->order[i].desc ? " DESC, " : " ASC, ");
    }
    qs_sql(qs, "d.seq ASC");
    return 0;
}

static void build_paging(struct query_sql *qs, const struct store_query *q)
{
    int64_t limit = q && q->limit > 0 ? q->limit : -1;
    int64_t start = q && q->start > 0 ? q->start : 0;
    qs_sql(qs, " LIMIT ");
    qs_int(qs, limit);
    qs_sql(qs, " OFFSET ");
    qs_int(qs, start);
}

static int prepare_query(struct conn *c, struct query_sql *qs, sqlite3_stmt **out,
                         struct ing_err *err)
{
    *out = NULL;
    int rc = sqlite3_prepare_v2(c->db, buf_cstr(&qs->sql), -1, out, NULL);
    if (rc != SQLITE_OK)
        return map_sqlite(err, c->db, rc, "prepare query");
    for (size_t i = 0; i < qs->nbinds; i++) {
        const struct bind *b = &qs->binds[i];
        int idx = (int)i + 1;
        switch (b->kind) {
        case BIND_TEXT: rc = sqlite3_bind_text(*out, idx, b->text, -1, SQLITE_STATIC); break;
        case BIND_REAL: rc = sqlite3_bind_double(*out, idx, b->real); break;
        case BIND_INT: rc = sqlite3_bind_int64(*out, idx, b->i); break;
        case BIND_NULL: rc = sqlite3_bind_null(*out, idx); break;
        }
        if (rc != SQLITE_OK)
            return map_sqlite(err, c->db, rc, "bind query");
    }
    return 0;
}

/* Row callbacks for run_query: columns as selected by the caller. */
typedef int row_fn(void *ctx, sqlite3_stmt *s);

static int run_query(struct store *st, struct query_sql *qs, row_fn *fn, void *ctx,
                     struct ing_err *err)
{
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int ret = conn_acquire(st, &c, err);
    if (ret)
        goto out;
    if ((ret = prepare_query(c, qs, &s, err)) != 0)
        goto out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((ret = fn(ctx, s)) != 0)
            goto out;
    }
    if (rc != SQLITE_DONE)
        ret = map_sqlite(err, c->db, rc, "query");
out:
    sqlite3_finalize(s);
    if (c)
        conn_release(st, c);
    return ret;
}

/* Runs `select` with the filters, order (`default_order` unless q names one) and paging of q,
 * giving each row to `fn` with `acc`. On success *out takes acc; otherwise acc is freed. */
static int query_docs(struct store *st, const char *select, const char *sandbox, const char *kind,
                      const struct store_query *q, const char *default_order, row_fn *fn,
                      json_t *acc, json_t **out, struct ing_err *err)
{
    struct query_sql qs = {0};
    qs_sql(&qs, select);
    int ret = build_where(&qs, sandbox, kind, q, err);
    if (!ret)
        ret = build_order(&qs, q, default_order, err);
    if (ret)
        goto out;
    build_paging(&qs, q);
    ret = run_query(st, &qs, fn, acc, err);
    if (ret == ING_EINTERNAL && (!err || !err->code))
        ing_err_set(err, ret, "store: a stored %s document is not valid JSON", kind);
out:
    qs_free(&qs);
    if (ret)
        json_decref(acc);
    else
        *out = acc;
    return ret;
}

static int list_row(void *ctx, sqlite3_stmt *s)
{
    json_t *obj = ctx;
    const char *id = (const char *)sqlite3_column_text(s, 0);
    json_t *doc = parse_doc(s, 1);
    if (!id || !doc) {
        json_decref(doc);
        return ING_EINTERNAL;
    }
    json_object_set_new(obj, id, doc);
    return 0;
}

int store_list(struct store *st, const char *sandbox, const char *kind,
               const struct store_query *q, json_t **out, struct ing_err *err)
{
    *out = NULL;
    if (!sandbox || !*sandbox || !kind || !*kind)
        return ing_err_set(err, ING_EINVAL, "store: sandbox and kind must be non-empty");
    return query_docs(st, "SELECT d.id, d.doc", sandbox, kind, q,
                      " ORDER BY d.created ASC, d.id ASC", list_row, json_object(), out, err);
}

static int count_row(void *ctx, sqlite3_stmt *s)
{
    *(int64_t *)ctx = sqlite3_column_int64(s, 0);
    return 0;
}

int store_count(struct store *st, const char *sandbox, const char *kind,
                const struct store_query *q, int64_t *out, struct ing_err *err)
{
    *out = 0;
    if (!sandbox || !*sandbox || !kind || !*kind)
        return ing_err_set(err, ING_EINVAL, "store: sandbox and kind must be non-empty");
    struct query_sql qs = {0};
    qs_sql(&qs, "SELECT COUNT(*)");
    int ret = build_where(&qs, sandbox, kind, q, err);
    if (!ret)
        ret = run_query(st, &qs, count_row, out, err);
    qs_free(&qs);
    return ret;
}

static int scan_row(void *ctx, sqlite3_stmt *s)
{
    json_t *arr = ctx;
    const char *sandbox = (const char *)sqlite3_column_text(s, 0);
    const char *id = (const char *)sqlite3_column_text(s, 1);
    json_t *doc = parse_doc(s, 2);
    if (!sandbox || !id || !doc) {
        json_decref(doc);
        return ING_EINTERNAL;
    }
    json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "sandbox", sandbox, "id", id,
                                         "doc", doc));
    return 0;
}

int store_scan_all(struct store *st, const char *kind, const struct store_query *q, json_t **out,
                   struct ing_err *err)
{
    *out = NULL;
    if (!kind || !*kind)
        return ing_err_set(err, ING_EINVAL, "store: kind must be non-empty");
    return query_docs(st, "SELECT d.sandbox, d.id, d.doc", NULL, kind, q, " ORDER BY d.seq ASC",
                      scan_row, json_array(), out, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

/* The connection an open transaction pins to the calling thread, or NULL. Caller holds st->mu. */
static struct conn *pinned_locked(struct store *st)
{
    pthread_t self = pthread_self();
    for (struct conn *c = st->tx_head; c; c = c->next_tx) {
        if (pthread_equal(c->owner, self))
            return c;
    }
    return NULL;
}

static struct conn *unpin(struct store *st)
{
    pthread_mutex_lock(&st->mu);
    struct conn *c = pinned_locked(st);
    if (c) {
        struct conn **pp = &st->tx_head;
        while (*pp != c)
            pp = &(*pp)->next_tx;
        *pp = c->next_tx;
        c->next_tx = NULL;
        c->in_tx = false;
    }
    pthread_mutex_unlock(&st->mu);
    return c;
}

int store_tx_begin(struct store *st, struct ing_err *err)
{
    struct conn *c = NULL;
    int ret = conn_acquire(st, &c, err);
    if (ret)
        return ret;
    if (c->in_tx)
        return ing_err_set(err, ING_ESTATE, "store: a transaction is already open on this thread");
    if ((ret = exec_sql(c->db, "BEGIN IMMEDIATE", err)) != 0) {
        conn_release(st, c);
        return ret;
    }
    pthread_mutex_lock(&st->mu);
    c->owner = pthread_self();
    c->in_tx = true;
    c->next_tx = st->tx_head;
    st->tx_head = c;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int store_tx_commit(struct store *st, struct ing_err *err)
{
    struct conn *c = unpin(st);
    if (!c)
        return ing_err_set(err, ING_ESTATE, "store: no transaction is open on this thread");
    int ret = exec_sql(c->db, "COMMIT", err);
    if (ret && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    conn_release(st, c);
    return ret;
}

void store_tx_rollback(struct store *st)
{
    if (!st)
        return;
    struct conn *c = unpin(st);
    if (!c)
        return;
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    conn_release(st, c);
}
