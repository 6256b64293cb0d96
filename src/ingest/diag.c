/*
 * diag.c - row_errors files, the input file listing and the retention sweep; see diag.h.
 *
 * Rows are formatted by hand into a buffer per kind rather than through jansson: the raw text of
 * a corrupt row is by definition not trusted to be valid UTF-8, which jansson refuses, and the
 * hot path of a very bad file should not build a tree per row.
 */
#include "ingest/diag.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

/* Buffered bytes of one file before they are written out. */
#define DIAG_FLUSH_BYTES ((size_t)64 << 10)

static const struct {
    const char *prefix;
    const char *aep_code;
    const char *code;
    const char *description;
} kinds[DIAG_NKINDS] = {
    [DIAG_PARSING] = {"parsing_errors", "INGEST-1401-400", "1401",
                      "The row has corrupted data and cannot be read or parsed. Fix the corrupted "
                      "data and try again."},
    [DIAG_REQUIRED] = {"required_errors", "INGEST-1555-400", "1555",
                       "A required field is either missing or has a value of null. Add the "
                       "required field to the input row and try again."},
    [DIAG_CONVERSION] = {"conversion_errors", "INGEST-1560-400", "1560",
                         "A value cannot be converted to the type of its field. Fix the value "
                         "and try again."},
    [DIAG_VALIDATION] = {"validation_errors", "INGEST-1570-400", "1570",
                         "A value breaks a constraint of its field (enum, pattern, length, range "
                         "or format). Fix the value and try again."},
};

/* AEP's fixed text for a corrupt row in parsing_errors files. */
#define DIAG_CORRUPT_MSG "Row is corrupted and cannot be read, please fix and resend."

int diag_kind_of(int ing_code)
{
    switch (ing_code) {
    case ING_ESYNTAX:
    case ING_ETOOBIG: return DIAG_PARSING;
    case ING_EREQUIRED: return DIAG_REQUIRED;
    case ING_ETYPE: return DIAG_CONVERSION;
    case ING_ECONSTRAINT: return DIAG_VALIDATION;
    default: return -1;
    }
}

static bool kind_ok(enum diag_kind kind)
{
    return (int)kind >= 0 && kind < DIAG_NKINDS;
}

const char *diag_kind_file_prefix(enum diag_kind kind)
{
    return kind_ok(kind) ? kinds[kind].prefix : "errors";
}

const char *diag_kind_aep_code(enum diag_kind kind)
{
    return kind_ok(kind) ? kinds[kind].aep_code : "400";
}

const char *diag_kind_code(enum diag_kind kind)
{
    return kind_ok(kind) ? kinds[kind].code : "400";
}

const char *diag_kind_description(enum diag_kind kind)
{
    return kind_ok(kind) ? kinds[kind].description : "";
}

char *diag_root(const char *data_dir, const char *sandbox)
{
    return xasprintf("%s/sandboxes/%s/diagnostics", data_dir, sandbox);
}

char *diag_batch_dir(const char *data_dir, const char *sandbox, const char *batch_id)
{
    return xasprintf("%s/sandboxes/%s/diagnostics/%s", data_dir, sandbox, batch_id);
}

char *diag_batch_tmp_dir(const char *data_dir, const char *sandbox, const char *batch_id)
{
    return xasprintf("%s/sandboxes/%s/diagnostics/.tmp-%s", data_dir, sandbox, batch_id);
}

/* ------------------------------------------------------------------------------------------ */
/* JSON text                                                                                   */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Append s as a JSON string (quotes included). Invalid UTF-8 becomes U+FFFD. */
static int json_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s)
        n = 0;
    int rc = buf_append_byte(b, '"');
    size_t i = 0;
    while (rc == 0 && i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *short_esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (short_esc) {
                rc = buf_append(b, short_esc, 2);
            } else {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = buf_append(b, esc, 6);
            }
            i++;
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                rc = buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                rc = buf_append(b, p + i, len);
                i += len;
            }
        }
    }
    if (rc == 0)
        rc = buf_append_byte(b, '"');
    return rc;
}

static int json_cstr(struct buf *b, const char *s)
{
    return json_str(b, s, s ? strlen(s) : 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                      */

struct kind_file {
    int fd;                 /* -1 until the first row of the kind */
    int index;              /* the _<n> of the open file */
    int64_t rows_in_file;
    int64_t rows;
    char *path;
    struct buf out;
};

struct diag_writer {
    char *dir;              /* <batch diag>/row_errors */
    int64_t rows_per_file;
    struct kind_file k[DIAG_NKINDS];
};

static int write_all(int fd, const uint8_t *p, size_t n, const char *path, struct ing_err *err)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ing_err_errno(err, errno, "cannot write diagnostics file %s", path);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int kind_flush(struct kind_file *kf, struct ing_err *err)
{
    if (kf->fd < 0 || kf->out.len == 0)
        return 0;
    int rc = write_all(kf->fd, kf->out.data, kf->out.len, kf->path, err);
    buf_reset(&kf->out);
    return rc;
}

/* Flush, fsync and close the open file of a kind. */
static int kind_close(struct kind_file *kf, struct ing_err *err)
{
    if (kf->fd < 0)
        return 0;
    int rc = kind_flush(kf, err);
    if (rc == 0 && fsync(kf->fd) != 0)
        rc = ing_err_errno(err, errno, "cannot fsync diagnostics file %s", kf->path);
    if (close(kf->fd) != 0 && rc == 0)
        rc = ing_err_errno(err, errno, "cannot close diagnostics file %s", kf->path);
    kf->fd = -1;
    return rc;
}

static int kind_open(struct diag_writer *w, enum diag_kind kind, struct ing_err *err)
{
    struct kind_file *kf = &w->k[kind];
    free(kf->path);
    kf->path = xasprintf("%s/%s_%d.json", w->dir, kinds[kind].prefix, kf->index);
    kf->fd = open(kf->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (kf->fd < 0)
        return ing_err_errno(err, errno, "cannot create diagnostics file %s", kf->path);
    kf->rows_in_file = 0;
    return 0;
}

int diag_writer_open(struct diag_writer **out, const char *dir, int64_t rows_per_file,
                     struct ing_err *err)
{
    *out = NULL;
    struct diag_writer *w = xcalloc(1, sizeof(*w));
    w->dir = xasprintf("%s/row_errors", dir);
    w->rows_per_file = rows_per_file > 0 ? rows_per_file : DIAG_ROWS_PER_FILE;
    for (int i = 0; i < DIAG_NKINDS; i++)
        w->k[i].fd = -1;
    int rc = fs_mkdirs(w->dir, err);
    if (rc != 0) {
        diag_writer_close(w, NULL);
        return rc;
    }
    *out = w;
    return 0;
}

/* One row as a JSON line into kf->out. */
static int format_row(struct buf *b, const struct diag_row *row)
{
    size_t raw_len = row->raw_len > DIAG_MAX_RAW ? DIAG_MAX_RAW : row->raw_len;
    int rc;
    if (row->kind == DIAG_PARSING) {
        rc = buf_append_str(b, "{\"_corrupt_record\":");
        if (rc == 0)
            rc = json_str(b, row->raw, row->raw ? raw_len : 0);
        if (rc == 0)
            rc = buf_printf(b, ",\"_errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]",
                            kinds[DIAG_PARSING].code, DIAG_CORRUPT_MSG);
    } else {
        rc = buf_printf(b, "{\"_errors\":[{\"code\":\"%s\",\"message\":", kinds[row->kind].code);
        if (rc == 0)
            rc = json_cstr(b, row->message ? row->message : kinds[row->kind].description);
        if (rc == 0)
            rc = buf_append_str(b, ",\"field\":");
        if (rc == 0)
            rc = json_cstr(b, row->field ? row->field : "");
        if (rc == 0)
            rc = buf_append_str(b, "}]");
    }
    if (rc == 0)
        rc = buf_append_str(b, ",\"_filename\":");
    if (rc == 0)
        rc = json_cstr(b, row->file ? row->file : "");
    if (rc == 0)
        rc = buf_printf(b, ",\"_row\":%lld", (long long)row->row);
    if (rc == 0 && row->kind != DIAG_PARSING) {
        rc = buf_append_str(b, ",\"_record\":");
        if (rc == 0)
            rc = json_str(b, row->raw, row->raw ? raw_len : 0);
    }
    if (rc == 0)
        rc = buf_append_str(b, "}\n");
    return rc;
}

int diag_writer_add(struct diag_writer *w, const struct diag_row *row, struct ing_err *err)
{
    if (!w || !row || !kind_ok(row->kind))
        return ing_err_set(err, ING_EINVAL, "diagnostics: a writer and a row of a known kind "
                                            "are required");
    struct kind_file *kf = &w->k[row->kind];
    int rc = 0;
    if (kf->fd >= 0 && kf->rows_in_file >= w->rows_per_file) {
        rc = kind_close(kf, err);
        kf->index++;
        if (rc != 0)
            return rc;
    }
    if (kf->fd < 0 && (rc = kind_open(w, row->kind, err)) != 0)
        return rc;
    rc = format_row(&kf->out, row);
    if (rc != 0)
        return ing_err_set(err, rc, "diagnostics: cannot format a row");
    kf->rows_in_file++;
    kf->rows++;
    if (kf->out.len >= DIAG_FLUSH_BYTES)
        rc = kind_flush(kf, err);
    return rc;
}

int64_t diag_writer_count(const struct diag_writer *w, enum diag_kind kind)
{
    return w && kind_ok(kind) ? w->k[kind].rows : 0;
}

int diag_writer_close(struct diag_writer *w, struct ing_err *err)
{
    if (!w)
        return 0;
    int rc = 0;
    for (int i = 0; i < DIAG_NKINDS; i++) {
        int r = kind_close(&w->k[i], rc == 0 ? err : NULL);
        if (rc == 0)
            rc = r;
        free(w->k[i].path);
        buf_free(&w->k[i].out);
    }
    if (rc == 0)
        rc = fs_fsync_path(w->dir, err);
    free(w->dir);
    free(w);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Listing, publishing, retention                                                               */

int diag_write_input_files(const char *dir, const json_t *files, struct ing_err *err)
{
    struct buf b = {0};
    size_t i;
    const json_t *f;
    int rc = fs_mkdirs(dir, err);
    json_array_foreach(files, i, f) {
        if (rc != 0)
            break;
        json_t *line = json_pack("{s:O, s:O}", "path", json_object_get(f, "name"), "size",
                                 json_object_get(f, "size"));
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        if (!text) {
            rc = ing_err_set(err, ING_EINVAL, "diagnostics: an input file needs a name and size");
            break;
        }
        rc = buf_append_str(&b, text);
        if (rc == 0)
            rc = buf_append_byte(&b, '\n');
        free(text);
        if (rc != 0)
            ing_err_set(err, rc, "diagnostics: input file listing too large");
    }
    if (rc == 0) {
        char *path = xasprintf("%s/input_files.json", dir);
        rc = fs_write_atomic(path, b.data ? (const void *)b.data : "", b.len, err);
        free(path);
    }
    buf_free(&b);
    return rc;
}

int diag_publish(const char *tmp_dir, const char *final_dir, const char *batch_id,
                 int64_t completed_ms, struct ing_err *err)
{
    json_t *meta = json_pack("{s:s, s:I}", "batchId", batch_id, "completed",
                             (json_int_t)completed_ms);
    char *text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    char *path = xasprintf("%s/_meta.json", tmp_dir);
    int rc = fs_mkdirs(tmp_dir, err);
    if (rc == 0)
        rc = fs_write_atomic(path, text, strlen(text), err);
    if (rc == 0)
        rc = fs_rm_rf(final_dir, err);
    if (rc == 0)
        rc = fs_rename_durable(tmp_dir, final_dir, err);
    free(path);
    free(text);
    return rc;
}

/* When the diagnostics in `dir` were completed (ms), or -1 when unknown. */
static int64_t completed_at(const char *dir)
{
    char *path = xasprintf("%s/_meta.json", dir);
    json_t *meta = json_load_file(path, 0, NULL);
    free(path);
    json_t *c = json_object_get(meta, "completed");
    int64_t at = json_is_integer(c) ? (int64_t)json_integer_value(c) : -1;
    json_decref(meta);
    if (at >= 0)
        return at;
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Sweep one sandbox's diagnostics folder. */
static int sweep_sandbox(const char *root, int64_t retention_ms, int64_t now_ms, int64_t *removed,
                         struct ing_err *err)
{
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT ? 0 : ing_err_errno(err, errno, "cannot list %s", root);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", ".." and folders being written */
        char *dir = xasprintf("%s/%s", root, e->d_name);
        int64_t at = completed_at(dir);
        if (at >= 0 && now_ms - at > retention_ms) {
            int r = fs_rm_rf(dir, err);
            if (r == 0 && removed)
                (*removed)++;
            if (rc == 0)
                rc = r;
        }
        free(dir);
    }
    closedir(d);
    return rc;
}

int diag_sweep(const char *data_dir, int64_t retention_ms, int64_t now_ms, int64_t *removed,
               struct ing_err *err)
{
    char *sandboxes = xasprintf("%s/sandboxes", data_dir);
    DIR *d = opendir(sandboxes);
    int rc = 0;
    if (!d) {
        if (errno != ENOENT)
            rc = ing_err_errno(err, errno, "cannot list %s", sandboxes);
        free(sandboxes);
        return rc;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *root = xasprintf("%s/%s/diagnostics", sandboxes, e->d_name);
        int r = sweep_sandbox(root, retention_ms, now_ms, removed, err);
        if (rc == 0)
            rc = r;
        free(root);
    }
    closedir(d);
    free(sandboxes);
    return rc;
}
