/*
 * engine.c - the ingestion engine: input files in, validated Parquet part files out; see engine.h.
 *
 * For every input file (in sorted name order, so a batch always produces the same output):
 * jsplit cuts records, shred validates, converts and appends each good record to the part file
 * of that input (part-00000.parquet, part-00001.parquet, ...), and every bad record becomes one
 * row error naming file, row, byte offset and field (and, when a diagnostics writer is given, one
 * row_errors line with the raw record). The pq_writer bounds memory by row group, so one part file
 * per input file keeps memory flat however large the input is. Compressed inputs are read through
 * inread, which the splitter pulls from.
 */
#include "ingest/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/inread.h"
#include "ingest/shred.h"
#include "json/jsplit.h"
#include "util/fs.h"
#include "util/mem.h"

/* Row errors kept in the result; the counts go on past this. */
#define ENGINE_MAX_ROW_ERRORS 1000

/* Batch-level error code for an input file that cannot be read or decompressed. */
#define ENGINE_UNREADABLE_CODE "400"

/* AEP's batch-level error for an input file without records (notes 1.11, code 106). */
#define ENGINE_EMPTY_CODE "106"
#define ENGINE_EMPTY_MSG "Dataset file is empty. Please upload file with data."

/* One engine run: the borrowed inputs and the writer of the current part file. */
struct run {
    const struct engine_opts *opts;
    const char *out_dir;
    struct engine_result *res;
    struct shred *sh;
    struct pq_writer *w;        /* open part file, or NULL */
    const struct pq_schema *pq;
    char *part_path;            /* path of the open part file */
    char part_name[32];
    bool row_limit_hit;         /* the run stopped because of max_failed_rows */
    bool fault_used;            /* opts->fault_write_errno has fired */
};

/* The AEP error code of a row error, or NULL when the code is not about a row. */
static const char *row_code_name(int code)
{
    switch (code) {
    case ING_ESYNTAX:
    case ING_ETOOBIG: return "INGEST-1401-400";   /* corrupt or unreadable row */
    case ING_EREQUIRED: return "INGEST-1555-400"; /* required field missing or null */
    case ING_ETYPE: return "INGEST-1560-400";     /* conversion */
    case ING_ECONSTRAINT: return "INGEST-1570-400"; /* validation */
    default: return NULL;
    }
}

static const char *file_label(const struct engine_file *f)
{
    return f->name ? f->name : f->path;
}

static int cmp_files(const void *a, const void *b)
{
    const struct engine_file *fa = *(const struct engine_file *const *)a;
    const struct engine_file *fb = *(const struct engine_file *const *)b;
    return strcmp(file_label(fa), file_label(fb));
}

static void append_error_item(struct engine_result *res, const struct ing_err *e, const char *code)
{
    if (json_array_size(res->errors) >= ENGINE_MAX_ROW_ERRORS)
        return;
    json_array_append_new(res->errors,
                          json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "file", e->file, "row",
                                    (json_int_t)e->row, "offset", (json_int_t)e->offset, "field",
                                    e->field, "code", code, "message", e->msg));
}

/* A write failure that may pass if the batch runs again (a full disk, a flaky device). */
static bool is_transient(const struct ing_err *e, int rc)
{
    return rc == ING_EIO && (e->sys_errno == ENOSPC || e->sys_errno == EIO ||
                             e->sys_errno == EDQUOT);
}

/*
 * Record a bad row: count it, keep its description, remember the first one, write it to the
 * diagnostics. Returns 0 to go on with the next record, or the row's code when failures passed
 * opts.max_failed_rows (err then holds the row error).
 */
static int row_failed(struct run *r, const struct engine_file *f, struct ing_err *rerr,
                      const char *raw, size_t raw_len, struct ing_err *err)
{
    struct engine_result *res = r->res;
    res->failed_records++;
    int kind = diag_kind_of(rerr->code);
    if (kind >= 0)
        res->failed_by_kind[kind]++;
    ing_err_file(rerr, file_label(f));
    if (!rerr->msg[0])
        snprintf(rerr->msg, sizeof(rerr->msg),
                 "The row has corrupted data and cannot be read or parsed.");
    append_error_item(res, rerr, row_code_name(rerr->code));
    if (res->first_error.code == 0)
        res->first_error = *rerr;
    if (r->opts->diag && kind >= 0) {
        struct diag_row drow = {.kind = (enum diag_kind)kind, .file = file_label(f),
                                .row = rerr->row, .field = rerr->field, .message = rerr->msg,
                                .raw = raw, .raw_len = raw_len};
        struct ing_err derr;
        ing_err_clear(&derr);
        int rc = diag_writer_add(r->opts->diag, &drow, &derr);
        if (rc != 0) {
            res->transient = is_transient(&derr, rc);
            if (err)
                *err = derr;
            return rc;
        }
    }
    if (r->opts->max_failed_rows >= 0 && res->failed_records > r->opts->max_failed_rows) {
        r->row_limit_hit = true;
        if (err)
            *err = *rerr;
        return rerr->code;
    }
    return 0;
}

/* A batch-level error about one input file, kept as an error item too (row 0). */
static int file_error(struct run *r, const struct engine_file *f, int code, const char *aep_code,
                      struct ing_err *err)
{
    ing_err_file(err, file_label(f));
    if (err)
        append_error_item(r->res, err, aep_code);
    return code;
}

/* The input has no records: a batch-level error, reported in AEP's words. */
static int empty_file(struct run *r, const struct engine_file *f, struct ing_err *err)
{
    struct ing_err e;
    ing_err_clear(&e);
    e.code = ING_EINVAL;
    ing_err_file(&e, file_label(f));
    snprintf(e.msg, sizeof(e.msg), "%s", ENGINE_EMPTY_MSG);
    append_error_item(r->res, &e, ENGINE_EMPTY_CODE);
    if (err)
        *err = e;
    return ING_EINVAL;
}

static int open_part(struct run *r, struct ing_err *err)
{
    snprintf(r->part_name, sizeof(r->part_name), "part-%05lld.parquet",
             (long long)r->res->output_files);
    free(r->part_path);
    r->part_path = xasprintf("%s/%s", r->out_dir, r->part_name);
    return pq_writer_open(&r->w, r->pq, r->part_path, &r->opts->parquet, err);
}

/* Finish the current part file; a part that got no rows (every record bad) is removed. */
static int close_part(struct run *r, struct ing_err *err)
{
    if (!r->w)
        return 0;
    if (r->opts->fault_write_errno && !r->fault_used) {
        /* The test hook: the file was written, its last write "fails". */
        r->fault_used = true;
        pq_writer_abort(r->w);
        r->w = NULL;
        return ing_err_errno(err, r->opts->fault_write_errno, "write %s (injected fault)",
                             r->part_path);
    }
    struct pq_file_info info = {0};
    int rc = pq_writer_close(r->w, &info, err);
    r->w = NULL;
    if (rc != 0)
        return rc;
    if (info.rows == 0) {
        unlink(r->part_path);
        return 0;
    }
    struct engine_result *res = r->res;
    res->output_files++;
    res->output_records += info.rows;
    res->output_bytes += info.bytes;
    json_array_append_new(res->files, json_pack("{s:s, s:I, s:I}", "name", r->part_name, "size",
                                                (json_int_t)info.bytes, "records",
                                                (json_int_t)info.rows));
    return 0;
}

/* One record that the splitter cut out of the file. */
static int run_record(struct run *r, const struct engine_file *f, const struct jsplit_record *rec,
                      struct ing_err *err)
{
    struct ing_err rerr;
    ing_err_clear(&rerr);
    int rc;
    if (rec->corrupt) {
        rc = ing_err_set(&rerr, ING_ESYNTAX,
                         "The row has corrupted data and cannot be read or parsed.");
    } else {
        if (!r->w && (rc = open_part(r, err)) != 0) {
            r->res->transient = is_transient(err, rc);
            return rc;
        }
        json_t *converted = NULL;
        json_t *preview = r->res->preview;
        bool want = preview && json_array_size(preview) < (size_t)r->opts->preview_rows;
        rc = shred_record(r->sh, rec->data, rec->len, r->w, want ? &converted : NULL, &rerr);
        if (rc == 0) {
            if (converted)
                json_array_append_new(preview, converted);
            return 0;
        }
        json_decref(converted);
        if (!row_code_name(rc)) {
            /* Not a data problem (a write failure, a bug): the batch fails as a whole. */
            ing_err_file(&rerr, file_label(f));
            rerr.row = rec->row;
            *err = rerr;
            r->res->transient = is_transient(&rerr, rc);
            return rc ? rc : ING_EINTERNAL;
        }
    }
    rerr.code = rc;
    rerr.row = rec->row;
    /* shred reports offsets inside the record; diagnostics want them in the file. */
    rerr.offset = rerr.offset >= 0 ? rec->offset + rerr.offset : rec->offset;
    return row_failed(r, f, &rerr, rec->data, rec->len, err);
}

static int run_file(struct run *r, const struct engine_file *f, struct ing_err *err)
{
    struct jsplit *split = NULL;
    struct inread *in = NULL;
    int rc = 0;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ing_err_errno(err, errno, "cannot open input file %s", file_label(f));
        return file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ing_err_errno(err, errno ? errno : EINVAL, "cannot read input file %s",
                           file_label(f));
        rc = file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
        goto out;
    }
    r->res->input_bytes += (int64_t)st.st_size;
    if (st.st_size == 0) {
        rc = empty_file(r, f, err);
        goto out;
    }
    rc = inread_open(&in, fd, err);
    if (rc != 0) {
        rc = file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
        goto out;
    }
    struct jsplit_opts jopts = {.mode = JSPLIT_AUTO, .multiline = r->opts->multiline};
    split = jsplit_new_reader(inread_read, in, &jopts);
    int64_t records = 0;
    for (;;) {
        struct jsplit_record rec;
        struct ing_err serr;
        ing_err_clear(&serr);
        int got = jsplit_next(split, &rec, &serr);
        if (got == 0)
            break;
        if (got > 0) {
            records++;
            r->res->input_records++;
            rc = run_record(r, f, &rec, err);
            if (rc != 0)
                goto out;
            continue;
        }
        if (inread_corrupt(in)) {
            /* Not a bad row: the file itself is broken. */
            if (err) {
                *err = serr;
                ing_err_set(err, ING_EINVAL, "%.200s: %.300s", file_label(f), serr.msg);
            }
            rc = file_error(r, f, ING_EINVAL, ENGINE_UNREADABLE_CODE, err);
            goto out;
        }
        if (got == ING_ESYNTAX || got == ING_ETOOBIG) {
            /* The splitter cannot find the next record: the rest of the file is one bad row. */
            records++;
            r->res->input_records++;
            serr.code = got;
            rc = row_failed(r, f, &serr, NULL, 0, err);
            goto out_close;
        }
        rc = got;
        if (err)
            *err = serr;
        rc = file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
        goto out;
    }
    if (records == 0) {
        rc = empty_file(r, f, err);
        goto out;
    }
out_close:
    if (rc == 0) {
        rc = close_part(r, err);
        r->res->transient = is_transient(err, rc);
    }
out:
    jsplit_free(split);
    inread_free(in);
    close(fd);
    return rc;
}

int engine_run(const struct xdm_plan *plan, const struct engine_file *files, size_t nfiles,
               const struct engine_opts *opts, const char *out_dir, struct engine_result *res,
               struct ing_err *err)
{
    memset(res, 0, sizeof(*res));
    ing_err_clear(&res->first_error);
    /* Internally err is never NULL: where a failure came from decides whether it is transient. */
    struct ing_err local;
    ing_err_clear(&local);
    struct ing_err *caller_err = err;
    err = &local;
    res->errors = json_array();
    res->files = json_array();
    res->preview = opts->preview_rows > 0 ? json_array() : NULL;

    struct run r = {.opts = opts, .out_dir = out_dir, .res = res};
    const struct engine_file **sorted = NULL;
    int rc;
    if (!plan || !plan->pq || !out_dir || nfiles == 0) {
        rc = ing_err_set(err, ING_EINVAL, "engine: a plan, an output folder and input files "
                                          "are required");
        goto out;
    }
    if (opts->format != ENGINE_JSON) {
        rc = ing_err_set(err, ING_EINVAL, "engine: only JSON input is supported");
        goto out;
    }
    rc = fs_mkdirs(out_dir, err);
    if (rc != 0)
        goto out;
    sorted = xcalloc(nfiles, sizeof(*sorted));
    for (size_t i = 0; i < nfiles; i++)
        sorted[i] = &files[i];
    qsort(sorted, nfiles, sizeof(*sorted), cmp_files);

    r.pq = plan->pq;
    r.sh = shred_new(plan);
    for (size_t i = 0; i < nfiles && rc == 0; i++)
        rc = run_file(&r, sorted[i], err);
    res->unknown_fields = shred_get_stats(r.sh)->unknown_fields;
out:
    res->batch_error = rc != 0 && !r.row_limit_hit;
    if (rc == 0)
        res->transient = false;
    if (caller_err && rc != 0)
        *caller_err = local;
    /* On failure the caller throws the output folder away; only the handle needs closing. */
    pq_writer_abort(r.w);
    shred_free(r.sh);
    free(r.part_path);
    free(sorted);
    return rc;
}

void engine_result_free(struct engine_result *res)
{
    if (!res)
        return;
    json_decref(res->errors);
    json_decref(res->preview);
    json_decref(res->files);
    res->errors = res->preview = res->files = NULL;
}
