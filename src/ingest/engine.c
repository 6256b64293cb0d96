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
 *
 * A large plain JSON Lines file is cut into byte ranges at line starts (parallel.h) and each range
 * runs on its own thread with its own splitter, shredder and part file. A range knows only its own
 * row numbers, so its bad rows go to a private spill file (row relative, offset absolute, the raw
 * bytes when diagnostics are on) and the calling thread replays them in range order through the
 * same row_failed the sequential path uses, renumbered: counts, errors[], first_error, the row
 * limit and the diagnostics files come out exactly as in a one-thread run.
 *
 * A Parquet file of several row groups goes the same way: its row groups are cut into contiguous
 * ranges of about equal rows, each read by its own pq_reader limited to the range, and merged by
 * the same code (rows spilled relative to the range; the rows before a range are its row_base).
 * Parquet rows reach the shredder as typed values (pq_shred); only rows that path hands back
 * (bad ones, shapes it leaves to the JSON rules) and preview rows are rendered as JSON text.
 *
 * A speculative run (engine_spec_*) is the ranges machinery over a file still arriving: range 0
 * reads through a callback that hands out only bytes the source says are there and blocks at the
 * mark; when the final size becomes known, what range 0 has not read yet is cut at a line start
 * and range 1 starts on a thread of its own. engine_run adopts a finished run by merging its
 * ranges exactly as it merges its own, so the outcome is the sequential one.
 */
#include "ingest/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/inread.h"
#include "ingest/parallel.h"
#include "ingest/pq_bind.h"
#include "ingest/pq_shred.h"
#include "ingest/shred.h"
#include "parquet/pq_reader.h"
#include "json/jsplit.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

/* The JSON rendering of one Parquet row is capped like a JSON record (jsplit's default). */
#define ENGINE_MAX_PARQUET_ROW ((size_t)64 << 20)

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
    const struct xdm_plan *plan;
    const char *out_dir;
    struct engine_result *res;
    int threads;                /* ranges (and threads) for a large JSON Lines file */
    int64_t split_min;          /* smallest file worth cutting */
    int64_t unknown_fields;     /* of the range shredders (the sequential one counts its own) */
    struct ing_err rerr;        /* the current record's error; shred_record clears it lazily */
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

/* A JSON line that failed: when the splitter would have called it corrupt (brackets that do not
 * match, a string left open), that is the error, in the splitter's words, as before lines were
 * split lazily. `rc` is the shredder's row error; returns the code to report. */
static int corrupt_line_error(const struct jsplit_record *rec, int rc, struct ing_err *rerr)
{
    if (!rec->unchecked || !jsplit_line_corrupt(rec->data, rec->len))
        return rc;
    ing_err_clear(rerr);
    return ing_err_set(rerr, ING_ESYNTAX,
                       "The row has corrupted data and cannot be read or parsed.");
}

/* One record that the splitter cut out of the file. */
static int run_record(struct run *r, const struct engine_file *f, const struct jsplit_record *rec,
                      struct ing_err *err)
{
    /* Not cleared here: shred_record clears it only when a previous row left it dirty (a 1 KiB
     * memset per record was measurable). */
    struct ing_err *rerr = &r->rerr;
    int rc;
    /* Before the part file is open, a corrupt line must not open it (as before lazy lines). */
    if (rec->corrupt || (!r->w && rec->unchecked && jsplit_line_corrupt(rec->data, rec->len))) {
        ing_err_clear(rerr);
        rc = ing_err_set(rerr, ING_ESYNTAX,
                         "The row has corrupted data and cannot be read or parsed.");
    } else {
        if (!r->w && (rc = open_part(r, err)) != 0) {
            r->res->transient = is_transient(err, rc);
            return rc;
        }
        json_t *converted = NULL;
        json_t *preview = r->res->preview;
        bool want = preview && json_array_size(preview) < (size_t)r->opts->preview_rows;
        rc = shred_record(r->sh, rec->data, rec->len, r->w, want ? &converted : NULL, rerr);
        if (rc == 0) {
            if (converted)
                json_array_append_new(preview, converted);
            return 0;
        }
        json_decref(converted);
        if (!row_code_name(rc)) {
            /* Not a data problem (a write failure, a bug): the batch fails as a whole. */
            ing_err_file(rerr, file_label(f));
            rerr->row = rec->row;
            *err = *rerr;
            r->res->transient = is_transient(rerr, rc);
            return rc ? rc : ING_EINTERNAL;
        }
        rc = corrupt_line_error(rec, rc, rerr);
    }
    rerr->code = rc;
    rerr->row = rec->row;
    /* shred reports offsets inside the record; diagnostics want them in the file. A Parquet row
     * has no byte offset of its own (rec->offset < 0): its errors carry none. */
    if (rec->offset < 0)
        rerr->offset = -1;
    else
        rerr->offset = rerr->offset >= 0 ? rec->offset + rerr->offset : rec->offset;
    return row_failed(r, f, rerr, rec->data, rec->len, err);
}

/* ------------------------------------------------------------------------------------------ */
/* One large JSON Lines file on several threads                                                */

/* run_file_ranges: the file is not worth cutting or cannot be cut safely; read it in one piece. */
#define RANGES_NOT_SPLIT 1

/* Bytes looked at to tell JSON Lines from an array before cutting. */
#define RANGES_PEEK_BYTES 65536

/* A spilled row was the splitter giving up (the rest of the file is one bad row); its message
 * names the record and offset, which the merge writes again with file-absolute numbers. */
#define SPILL_SPLIT_FAIL 1u

/* One bad row of a range, as spilled: the strings follow it (field, message, raw bytes). */
struct spill_hdr {
    int32_t code;
    uint32_t flags;
    uint32_t field_len, msg_len, raw_len;
    int64_t row;                /* in the range, from 1 */
    int64_t offset;             /* in the file */
};

/* One byte range of the file and what its thread made of it. */
struct range_job {
    struct par_range range;     /* JSON Lines: the bytes of the range */
    int rg_first, rg_count;     /* Parquet: the row groups of the range */
    int64_t row_base;           /* Parquet: rows of the file before rg_first */
    int index;
    int fault_errno;            /* opts->fault_write_errno, when it fires on this range */
    char part_name[32];
    char *part_path;
    bool opened;                /* a part file was created */
    bool has_part;              /* ... and closed with rows in it */
    struct pq_file_info info;
    int64_t records;            /* records read, bad ones included */
    int64_t failed;             /* bad rows spilled */
    FILE *spill;                /* bad rows, or NULL while there were none */
    json_t *preview;            /* converted rows, at most preview_want */
    int64_t *preview_row;       /* the row (in the range) of each */
    size_t preview_want;
    int64_t unknown_fields;
    bool limit_hit;             /* stopped: more bad rows than opts.max_failed_rows */
    bool ended_file;            /* the splitter gave up: later ranges do not count */
    bool abandoned;             /* stopped because an earlier range ended the run */
    int rc;                     /* batch-level failure, with err */
    bool rc_file_level;         /* ... reported as an unreadable file (an item in errors[]) */
    bool rc_at_close;           /* ... closing the part file: reported after every bad row */
    struct ing_err err;
};

struct ranges {
    struct run *r;
    const struct engine_file *f;
    int fd;
    int n;
    bool keep_raw;              /* spilled rows keep their raw text (diagnostics want it) */
    jsplit_read_fn *read0;      /* range 0 reads through this instead of the fd (a speculative
                                   run over a file still arriving), with read0_ctx */
    void *read0_ctx;
    int64_t first_part;         /* output_files when the file started */
    struct range_job *jobs;
    atomic_int stop_at;         /* lowest range that ended the run; later ranges may stop */
};

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > PAR_MAX_RANGES ? PAR_MAX_RANGES : (int)n;
}

static void stop_from(struct ranges *rs, int index)
{
    int cur = atomic_load(&rs->stop_at);
    while (index < cur && !atomic_compare_exchange_weak(&rs->stop_at, &cur, index))
        ;
}

/* What the start of a file says about cutting it into ranges of lines. */
enum head_kind {
    HEAD_LINES,       /* plain text that does not start an array: JSON Lines, may be cut */
    HEAD_COMPRESSED,  /* gzip or zstd: decompressed by inread as one stream, read whole */
    HEAD_WHOLE,       /* an array, or a start too blank to tell: the sequential splitter decides */
};

static bool is_bom(const uint8_t *p, size_t n)
{
    return n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF;
}

/*
 * The first n bytes of a file (RANGES_PEEK_BYTES, or the whole file when shorter), classified
 * the way the whole-file path reads it: compressed by the magic bytes inread_open looks for
 * (inread_kind_of), else an array or a blank start by the first byte after a byte-order mark and
 * white space, which is what the sequential splitter decides on. The run over a whole file
 * (ranges_ok) and the read-ahead run over a file still arriving (spec_check_head) both ask here,
 * so a read-ahead run is never adopted for a file the whole-file path would read differently.
 */
static enum head_kind head_kind(const uint8_t *p, size_t n)
{
    if (inread_kind_of(p, n) != INREAD_PLAIN)
        return HEAD_COMPRESSED;
    size_t i = is_bom(p, n) ? 3 : 0;
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    return i == n || p[i] == '[' ? HEAD_WHOLE : HEAD_LINES;
}

/* Does a byte-order mark start at `at` of a file of `size` bytes? A range's splitter would skip
 * it where the whole file's reads it as part of a line. 1 = yes, 0 = no, or ING_EIO. */
static int bom_at(int fd, int64_t at, int64_t size, struct ing_err *err)
{
    if (size - at < 3)
        return 0;
    uint8_t b[3];
    ssize_t got = fs_pread_all(fd, b, 3, at);
    if (got < 0)
        return ing_err_errno(err, errno, "cannot read the input file");
    return is_bom(b, (size_t)got) ? 1 : 0;
}

/*
 * Is the file JSON Lines that may be cut (not compressed, and not an array, which the sequential
 * splitter detects by its first byte)? And does no range start with a byte-order mark? 1 = yes,
 * 0 = no, or ING_E*.
 */
static int ranges_ok(int fd, int64_t size, const struct par_range *ranges, int n,
                     struct ing_err *err)
{
    uint8_t *peek = xmalloc(RANGES_PEEK_BYTES);
    int rc = 0;
    ssize_t got = fs_pread_all(fd, peek, RANGES_PEEK_BYTES, 0);
    if (got < 0) {
        rc = ing_err_errno(err, errno, "cannot read the input file");
        goto out;
    }
    if (head_kind(peek, (size_t)got) != HEAD_LINES)
        goto out;
    for (int k = 1; k < n; k++) {
        rc = bom_at(fd, ranges[k].start, size, err);
        if (rc != 0) {
            rc = rc > 0 ? 0 : rc;
            goto out;
        }
    }
    rc = 1;
out:
    free(peek);
    return rc;
}

/* Keep one bad row of a range for the merge. raw is kept only when diagnostics want it. */
static int spill_row(struct ranges *rs, struct range_job *job, const struct ing_err *e,
                     uint32_t flags, const char *raw, size_t raw_len, struct ing_err *err)
{
    if (!job->spill) {
        /* Beside the output (the data disk, not a tmpfs), unlinked at once: nothing is left
         * behind whatever happens. */
        char *path = xasprintf("%s/.rows-%d.tmp", rs->r->out_dir, job->index);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        int rc = 0;
        if (fd < 0) {
            rc = ing_err_errno(err, errno, "cannot create %s", path);
        } else {
            unlink(path);
            job->spill = fdopen(fd, "w+b");
            if (!job->spill) {
                rc = ing_err_errno(err, errno, "cannot open %s", path);
                close(fd);
            }
        }
        free(path);
        if (rc != 0)
            return rc;
    }
    if (!rs->keep_raw || !raw)
        raw_len = 0;
    if (raw_len > DIAG_MAX_RAW)
        raw_len = DIAG_MAX_RAW;
    struct spill_hdr h = {.code = e->code, .flags = flags,
                          .field_len = (uint32_t)strnlen(e->field, sizeof(e->field)),
                          .msg_len = (uint32_t)strnlen(e->msg, sizeof(e->msg)),
                          .raw_len = (uint32_t)raw_len, .row = e->row, .offset = e->offset};
    errno = 0;
    fwrite(&h, sizeof(h), 1, job->spill);
    fwrite(e->field, 1, h.field_len, job->spill);
    fwrite(e->msg, 1, h.msg_len, job->spill);
    if (raw_len)
        fwrite(raw, 1, raw_len, job->spill);
    if (ferror(job->spill))
        return ing_err_errno(err, errno ? errno : EIO, "cannot keep the bad rows of a range");
    job->failed++;
    return 0;
}

/* A batch-level failure of a range: kept for the merge, and later ranges may stop. */
static void range_fail(struct ranges *rs, struct range_job *job, int rc, const struct ing_err *e,
                       bool file_level)
{
    job->rc = rc ? rc : ING_EINTERNAL;
    job->err = *e;
    ing_err_file(&job->err, file_label(rs->f));
    job->rc_file_level = file_level;
    stop_from(rs, job->index);
}

/* A bad row of a range: spilled; the range stops when it alone has more than the run allows. */
static int range_bad_row(struct ranges *rs, struct range_job *job, const struct ing_err *e,
                         uint32_t flags, const char *raw, size_t raw_len)
{
    struct ing_err serr;
    ing_err_clear(&serr);
    int rc = spill_row(rs, job, e, flags, raw, raw_len, &serr);
    if (rc != 0) {
        range_fail(rs, job, rc, &serr, false);
        return rc;
    }
    int64_t limit = rs->r->opts->max_failed_rows;
    if (limit >= 0 && job->failed > limit) {
        /* The whole file has at least as many bad rows up to here: the run stops in this range
         * (the merge finds exactly where). */
        job->limit_hit = true;
        stop_from(rs, job->index);
        return e->code;
    }
    return 0;
}

static int range_open_part(struct ranges *rs, struct range_job *job, struct pq_writer **w,
                           struct ing_err *err)
{
    snprintf(job->part_name, sizeof(job->part_name), "part-%05lld.parquet",
             (long long)(rs->first_part + job->index));
    job->part_path = xasprintf("%s/%s", rs->r->out_dir, job->part_name);
    job->opened = true;
    return pq_writer_open(w, rs->r->pq, job->part_path, &rs->r->opts->parquet, err);
}

static int range_close_part(struct range_job *job, struct pq_writer *w)
{
    struct ing_err e;
    ing_err_clear(&e);
    int rc;
    if (job->fault_errno) {
        /* The test hook, as close_part has it: the file was written, its last write "fails". */
        pq_writer_abort(w);
        rc = ing_err_errno(&e, job->fault_errno, "write %s (injected fault)", job->part_path);
    } else {
        rc = pq_writer_close(w, &job->info, &e);
    }
    if (rc != 0) {
        job->rc = rc;
        job->err = e;
        job->rc_at_close = true;
        return rc;
    }
    if (job->info.rows == 0)
        unlink(job->part_path);
    else
        job->has_part = true;
    return 0;
}

/* The thread of one range: the sequential per-record loop, with bad rows spilled. */
static int range_work(void *ctx, int index, struct ing_err *unused)
{
    (void)unused;
    struct ranges *rs = ctx;
    struct range_job *job = &rs->jobs[index];
    struct par_reader reader;
    par_reader_init(&reader, rs->fd, &job->range);
    /* Lines whatever the range starts with: the file as a whole was found to be JSON Lines. */
    struct jsplit_opts jopts = {.mode = JSPLIT_LINES, .lazy_corrupt = true};
    struct jsplit *split = index == 0 && rs->read0
                               ? jsplit_new_reader(rs->read0, rs->read0_ctx, &jopts)
                               : jsplit_new_reader(par_read, &reader, &jopts);
    struct shred *sh = shred_new(rs->r->plan);
    struct pq_writer *w = NULL;
    struct ing_err rerr, serr;
    ing_err_clear(&rerr);
    ing_err_clear(&serr);
    for (;;) {
        if (atomic_load_explicit(&rs->stop_at, memory_order_relaxed) < index) {
            job->abandoned = true;
            break;
        }
        struct jsplit_record rec;
        int got = jsplit_next(split, &rec, &serr);
        if (got == 0)
            break;
        if (got < 0) {
            if (got == ING_ESYNTAX || got == ING_ETOOBIG) {
                /* The rest of the file is one bad row, as in the sequential path. */
                job->records++;
                job->ended_file = true;
                serr.code = got;
                if (serr.offset >= 0)
                    serr.offset += job->range.start;
                stop_from(rs, index);
                range_bad_row(rs, job, &serr, SPILL_SPLIT_FAIL, NULL, 0);
                break;
            }
            if (serr.offset >= 0)
                serr.offset += job->range.start;
            range_fail(rs, job, got, &serr, true);
            break;
        }
        job->records++;
        int rc;
        if (rec.corrupt || (!w && rec.unchecked && jsplit_line_corrupt(rec.data, rec.len))) {
            ing_err_clear(&rerr);
            rc = ing_err_set(&rerr, ING_ESYNTAX,
                             "The row has corrupted data and cannot be read or parsed.");
        } else {
            if (!w && (rc = range_open_part(rs, job, &w, &rerr)) != 0) {
                range_fail(rs, job, rc, &rerr, false);
                break;
            }
            json_t *converted = NULL;
            bool want = job->preview && json_array_size(job->preview) < job->preview_want;
            rc = shred_record(sh, rec.data, rec.len, w, want ? &converted : NULL, &rerr);
            if (rc == 0) {
                if (converted) {
                    job->preview_row[json_array_size(job->preview)] = rec.row;
                    json_array_append_new(job->preview, converted);
                }
                continue;
            }
            json_decref(converted);
            if (!row_code_name(rc)) {
                rerr.row = rec.row;
                range_fail(rs, job, rc, &rerr, false);
                break;
            }
            rc = corrupt_line_error(&rec, rc, &rerr);
        }
        rerr.code = rc;
        rerr.row = rec.row;
        int64_t at = job->range.start + rec.offset;
        rerr.offset = rerr.offset >= 0 ? at + rerr.offset : at;
        if (range_bad_row(rs, job, &rerr, 0, rec.data, rec.len) != 0)
            break;
        ing_err_clear(&rerr);
    }
    job->unknown_fields = shred_get_stats(sh)->unknown_fields;
    if (w && !job->rc && !job->limit_hit && !job->abandoned)
        range_close_part(job, w);
    else if (w) {
        pq_writer_abort(w);
        unlink(job->part_path);
    }
    shred_free(sh);
    jsplit_free(split);
    return job->rc;
}

/* Replay the bad rows of one range through row_failed, numbered in the file. On a stop (the row
 * limit, a diagnostics write failure) *stop_row is the row it stopped at. */
static int replay_range(struct run *r, const struct engine_file *f, struct range_job *job,
                        int64_t rows_before, char **raw, size_t *raw_cap, int64_t *stop_row,
                        struct ing_err *err)
{
    if (!job->spill)
        return 0;
    if (fflush(job->spill) != 0 || fseek(job->spill, 0, SEEK_SET) != 0)
        return ing_err_errno(err, errno, "cannot read back the bad rows of a range");
    for (int64_t n = 0; n < job->failed; n++) {
        struct spill_hdr h;
        struct ing_err e;
        ing_err_clear(&e);
        if (fread(&h, sizeof(h), 1, job->spill) != 1 || h.field_len >= sizeof(e.field) ||
            h.msg_len >= sizeof(e.msg))
            return ing_err_set(err, ING_EIO, "cannot read back the bad rows of a range");
        if (h.raw_len >= *raw_cap) {
            *raw_cap = (size_t)h.raw_len + 1;
            *raw = xrealloc(*raw, *raw_cap);
        }
        if ((h.field_len && fread(e.field, 1, h.field_len, job->spill) != h.field_len) ||
            (h.msg_len && fread(e.msg, 1, h.msg_len, job->spill) != h.msg_len) ||
            (h.raw_len && fread(*raw, 1, h.raw_len, job->spill) != h.raw_len))
            return ing_err_set(err, ING_EIO, "cannot read back the bad rows of a range");
        e.code = h.code;
        e.row = h.row + rows_before;
        e.offset = h.offset;
        if (h.flags & SPILL_SPLIT_FAIL) {
            /* jsplit's words, with the numbers the whole file would have given. */
            char *tail = strstr(e.msg, " (record ");
            if (tail)
                *tail = 0;
            char head[ING_ERR_MSG];
            snprintf(head, sizeof(head), "%s", e.msg);
            snprintf(e.msg, sizeof(e.msg), "%.400s (record %lld, byte offset %lld)", head,
                     (long long)e.row, (long long)e.offset);
        }
        int rc = row_failed(r, f, &e, h.raw_len ? *raw : NULL, h.raw_len, err);
        if (rc != 0) {
            *stop_row = e.row;
            return rc;
        }
    }
    return 0;
}

/* The preview rows of ranges 0..last in order, those of range `last` only before its row
 * `before_row` (a run that stopped there had not read further). */
static void merge_previews(struct run *r, const struct ranges *rs, int last, int64_t before_row)
{
    json_t *out = r->res->preview;
    for (int i = 0; i <= last && out; i++) {
        const struct range_job *job = &rs->jobs[i];
        for (size_t k = 0; k < json_array_size(job->preview); k++) {
            if (json_array_size(out) >= (size_t)r->opts->preview_rows ||
                (i == last && job->preview_row[k] >= before_row))
                return;
            json_array_append(out, json_array_get(job->preview, k));
        }
    }
}

/*
 * Merge the ranges in order, as if one thread had read the file: bad rows replayed with file row
 * numbers, the first batch-level failure, then the part files renamed to consecutive numbers and
 * the previews taken from the first ranges.
 */
static int merge_ranges(struct run *r, const struct engine_file *f, struct ranges *rs,
                        struct ing_err *err)
{
    struct engine_result *res = r->res;
    int last = rs->n - 1;       /* the last range that counts */
    int close_failed = -1;
    int64_t rows_before = 0;
    char *raw = NULL;
    size_t raw_cap = 0;
    int rc = 0;
    for (int i = 0; i <= last; i++) {
        struct range_job *job = &rs->jobs[i];
        if (job->abandoned) {
            rc = ing_err_set(err, ING_EINTERNAL, "engine: range %d stopped without a cause", i);
            goto out;
        }
        int64_t stop_row = 0;
        rc = replay_range(r, f, job, rows_before, &raw, &raw_cap, &stop_row, err);
        if (rc != 0) {
            res->input_records += stop_row ? stop_row : rows_before + job->records;
            merge_previews(r, rs, i, stop_row ? stop_row - rows_before : job->records);
            if (!r->row_limit_hit)
                res->transient = is_transient(err, rc);
            goto out;
        }
        if (job->rc && !job->rc_at_close) {
            res->input_records += rows_before + job->records;
            merge_previews(r, rs, i, job->records);
            *err = job->err;
            if (err->row > 0)
                err->row += rows_before;
            res->transient = is_transient(err, job->rc);
            rc = job->rc_file_level ? file_error(r, f, job->rc, ENGINE_UNREADABLE_CODE, err)
                                    : job->rc;
            goto out;
        }
        if (job->limit_hit) {
            /* Cannot happen: the replay meets the limit inside this range. */
            rc = ing_err_set(err, ING_EINTERNAL, "engine: the row limit was not met in range %d",
                             i);
            goto out;
        }
        if (job->rc && close_failed < 0)
            close_failed = i;
        rows_before += job->records;
        if (job->ended_file)
            last = i;
    }
    res->input_records += rows_before;
    if (rows_before == 0) {
        rc = empty_file(r, f, err);
        goto out;
    }
    if (close_failed >= 0) {
        *err = rs->jobs[close_failed].err;
        rc = rs->jobs[close_failed].rc;
        res->transient = is_transient(err, rc);
        goto out;
    }
    for (int i = 0; i <= last; i++) {
        struct range_job *job = &rs->jobs[i];
        if (!job->has_part)
            continue;
        char name[sizeof(job->part_name)];
        snprintf(name, sizeof(name), "part-%05lld.parquet", (long long)res->output_files);
        char *to = xasprintf("%s/%s", r->out_dir, name);
        if (strcmp(to, job->part_path) != 0) {
            /* An earlier range wrote no rows (close the gap so names stay consecutive), or the
             * part was written by a speculative run into its own folder. */
            int e = rename(job->part_path, to) == 0 ? 0 : errno;
            if (e) {
                free(to);
                rc = ing_err_errno(err, e, "cannot rename %s", job->part_path);
                res->transient = is_transient(err, rc);
                goto out;
            }
            memcpy(job->part_name, name, sizeof(name));
            free(job->part_path);
            job->part_path = to;
        } else {
            free(to);
        }
        res->output_files++;
        res->output_records += job->info.rows;
        res->output_bytes += job->info.bytes;
        json_array_append_new(res->files,
                              json_pack("{s:s, s:I, s:I}", "name", job->part_name, "size",
                                        (json_int_t)job->info.bytes, "records",
                                        (json_int_t)job->info.rows));
        job->has_part = false;
    }
    merge_previews(r, rs, last, INT64_MAX);
out:
    /* Parts past the end of the file's rows (a splitter failure earlier) are not output. */
    for (int i = 0; i < rs->n; i++)
        if (rs->jobs[i].has_part && (i > last || rc != 0))
            unlink(rs->jobs[i].part_path);
    free(raw);
    return rc;
}

/*
 * Run the prepared jobs of rs (their ranges set) on r->threads threads with `work`, then merge
 * them as one sequential run would have read the file; frees the jobs.
 */
static int run_jobs(struct run *r, const struct engine_file *f, struct ranges *rs,
                    par_work_fn *work, struct ing_err *err)
{
    int n = rs->n;
    rs->r = r;
    rs->f = f;
    rs->first_part = r->res->output_files;
    rs->keep_raw = r->opts->diag != NULL;
    atomic_init(&rs->stop_at, INT_MAX);
    size_t preview_have = r->res->preview ? json_array_size(r->res->preview) : 0;
    for (int i = 0; i < n; i++) {
        struct range_job *job = &rs->jobs[i];
        job->index = i;
        ing_err_clear(&job->err);
        if (r->res->preview && preview_have < (size_t)r->opts->preview_rows) {
            job->preview = json_array();
            job->preview_want = (size_t)r->opts->preview_rows - preview_have;
            job->preview_row = xcalloc(job->preview_want, sizeof(*job->preview_row));
        }
    }
    if (r->opts->fault_write_errno && !r->fault_used) {
        rs->jobs[0].fault_errno = r->opts->fault_write_errno;
        r->fault_used = true;
    }
    /* Each range's failure is in its job; the merge decides which one the file reports. */
    par_run(r->threads, n, work, rs, NULL);
    if (rs->jobs[0].fault_errno && !rs->jobs[0].opened)
        r->fault_used = false; /* no part file to fail: the next one gets it, as sequentially */
    int rc = merge_ranges(r, f, rs, err);
    for (int i = 0; i < n; i++) {
        r->unknown_fields += rs->jobs[i].unknown_fields;
        if (rs->jobs[i].spill)
            fclose(rs->jobs[i].spill);
        json_decref(rs->jobs[i].preview);
        free(rs->jobs[i].preview_row);
        free(rs->jobs[i].part_path);
    }
    free(rs->jobs);
    rs->jobs = NULL;
    return rc;
}

/*
 * A plain JSON Lines file of `size` bytes on r->threads threads. Returns RANGES_NOT_SPLIT when
 * the file should be read sequentially instead (nothing was done), else what run_file returns.
 */
static int run_file_ranges(struct run *r, const struct engine_file *f, int fd, int64_t size,
                           struct ing_err *err)
{
    struct par_range ranges[PAR_MAX_RANGES];
    int n = par_split_lines(fd, size, r->threads, ranges, err);
    if (n < 0)
        return file_error(r, f, n, ENGINE_UNREADABLE_CODE, err);
    if (n < 2)
        return RANGES_NOT_SPLIT;
    int ok = ranges_ok(fd, size, ranges, n, err);
    if (ok < 0)
        return file_error(r, f, ok, ENGINE_UNREADABLE_CODE, err);
    if (ok == 0)
        return RANGES_NOT_SPLIT;

    struct ranges rs = {.fd = fd, .n = n};
    rs.jobs = xcalloc((size_t)n, sizeof(*rs.jobs));
    for (int i = 0; i < n; i++)
        rs.jobs[i].range = ranges[i];
    return run_jobs(r, f, &rs, range_work, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Parquet input                                                                              */

/* A Parquet file is compressed and columnar: a second thread pays off at an eighth of the
 * JSON Lines size. */
#define PQ_SPLIT_DIVISOR 8

/* The thread of one row-group range of a Parquet file: its own reader (limited to the range),
 * shredder and part file; bad rows are spilled with rows relative to the range, which the merge
 * turns back into file rows by adding the rows of the ranges before it. */
static int pq_range_work(void *ctx, int index, struct ing_err *unused)
{
    (void)unused;
    struct ranges *rs = ctx;
    struct range_job *job = &rs->jobs[index];
    const struct engine_file *f = rs->f;
    struct pq_reader *pr = NULL;
    struct shred *sh = NULL;
    struct pq_shred *ps = NULL;
    struct pq_writer *w = NULL;
    struct buf row = {.limit = ENGINE_MAX_PARQUET_ROW};
    struct ing_err rerr;
    ing_err_clear(&rerr);
    struct pq_reader_opts ropts = {.first_row_group = job->rg_first,
                                   .num_row_groups = job->rg_count};
    int rc = pq_reader_open(&pr, f->path, &ropts, &rerr);
    if (rc != 0) {
        struct ing_err e = rerr;
        ing_err_set(&e, rc, "%.200s is not a readable Parquet file: %.300s", file_label(f),
                    rerr.msg);
        range_fail(rs, job, rc, &e, true);
        goto out;
    }
    sh = shred_new(rs->r->plan);
    ps = pq_shred_new(pr, sh, rs->r->plan, ENGINE_MAX_PARQUET_ROW);
    for (;;) {
        if (atomic_load_explicit(&rs->stop_at, memory_order_relaxed) < index) {
            job->abandoned = true;
            break;
        }
        int got = pq_reader_next(pr, &rerr);
        if (got == 0)
            break;
        if (got < 0) {
            struct ing_err e = rerr;
            ing_err_set(&e, got, "%.200s: %.300s", file_label(f), rerr.msg);
            range_fail(rs, job, got, &e, true);
            break;
        }
        job->records++;
        int64_t rowno = pq_reader_row(pr) - job->row_base;
        bool want = job->preview && json_array_size(job->preview) < job->preview_want;
        if (!want && pq_shred_row(ps) == 0) {
            /* The typed path took the row whole: commit it (run_parquet_file has the why). */
            if (!w && (rc = range_open_part(rs, job, &w, &rerr)) != 0) {
                range_fail(rs, job, rc, &rerr, false);
                break;
            }
            if ((rc = shred_end(sh, w, &rerr)) != 0) {
                rerr.row = rowno;
                range_fail(rs, job, rc, &rerr, false);
                break;
            }
            continue;
        }
        buf_reset(&row);
        if (pq_reader_row_json(pr, &row, &rerr) != 0) {
            /* A corrupt row (INGEST-1401), the reader's words kept, as run_parquet_file has it. */
            rerr.code = ING_ESYNTAX;
            rerr.row = rowno;
            rerr.offset = -1;
            ing_err_field(&rerr, "");
            if (range_bad_row(rs, job, &rerr, 0, NULL, 0) != 0)
                break;
            ing_err_clear(&rerr);
            continue;
        }
        if (!w && (rc = range_open_part(rs, job, &w, &rerr)) != 0) {
            range_fail(rs, job, rc, &rerr, false);
            break;
        }
        json_t *converted = NULL;
        rc = shred_record(sh, (const char *)row.data, row.len, w, want ? &converted : NULL,
                          &rerr);
        if (rc == 0) {
            if (converted) {
                job->preview_row[json_array_size(job->preview)] = rowno;
                json_array_append_new(job->preview, converted);
            }
            continue;
        }
        json_decref(converted);
        rerr.row = rowno;
        if (!row_code_name(rc)) {
            range_fail(rs, job, rc, &rerr, false);
            break;
        }
        rerr.code = rc;
        rerr.offset = -1; /* a Parquet row has no byte offset of its own */
        if (range_bad_row(rs, job, &rerr, 0, (const char *)row.data, row.len) != 0)
            break;
        ing_err_clear(&rerr);
    }
out:
    job->unknown_fields = sh ? shred_get_stats(sh)->unknown_fields : 0;
    if (w && !job->rc && !job->limit_hit && !job->abandoned)
        range_close_part(job, w);
    else if (w) {
        pq_writer_abort(w);
        unlink(job->part_path);
    }
    pq_shred_free(ps);
    shred_free(sh);
    pq_reader_free(pr);
    buf_free(&row);
    return job->rc;
}

/*
 * The row groups of an open Parquet file cut into up to r->threads contiguous ranges of about
 * the same number of rows, run on their own threads and merged in order. RANGES_NOT_SPLIT when
 * the file has one row group or is too small to be worth it (nothing was done).
 */
static int run_parquet_ranges(struct run *r, const struct engine_file *f,
                              const struct pq_reader *pr, int64_t size, struct ing_err *err)
{
    int nrgs = pq_reader_num_row_groups(pr);
    int n = r->threads < nrgs ? r->threads : nrgs;
    if (n < 2 || size < r->split_min / PQ_SPLIT_DIVISOR)
        return RANGES_NOT_SPLIT;
    int64_t total = pq_reader_num_rows(pr);
    struct ranges rs = {.fd = -1, .n = n};
    rs.jobs = xcalloc((size_t)n, sizeof(*rs.jobs));
    int k = 0;
    int64_t cum = 0;
    for (int g = 0; g < nrgs; g++) {
        cum += pq_reader_row_group_rows(pr, g);
        rs.jobs[k].rg_count++;
        int groups_left = nrgs - 1 - g, ranges_left = n - 1 - k;
        /* Cut when every later range needs one of the remaining groups, or when this range is
         * nearer its share of the rows now than it would be with the next group too. */
        double share = (double)total * (k + 1) / n;
        double with_next = groups_left ? (double)(cum + pq_reader_row_group_rows(pr, g + 1)) : 0;
        if (ranges_left > 0 &&
            (groups_left == ranges_left || (double)cum >= share ||
             with_next - share > share - (double)cum)) {
            k++;
            rs.jobs[k].rg_first = g + 1;
            rs.jobs[k].row_base = cum;
        }
    }
    return run_jobs(r, f, &rs, pq_range_work, err);
}

/*
 * One Parquet input file. Each row goes first through the typed path (pq_shred: the reader's
 * values straight into the shredder, no JSON text), which takes a row only when it is good as a
 * whole; every other row (a bad value, a shape left to the JSON rules) and every preview row is
 * rendered as a JSON object and goes through run_record exactly as a JSON record would. Either
 * way types convert by the same rules (the shredder's), and every error names the file, the row
 * and the field path in the JSON path's words, with the row's JSON text for the diagnostics.
 * Columns that bind to no XDM field are dropped and counted like unknown JSON properties
 * (pq_bind says which, for the log). A row the reader cannot render (levels that contradict each
 * other, text that is not UTF-8) is a corrupt row; a corrupt footer, schema or row group fails
 * the file.
 */
static int run_parquet_file(struct run *r, const struct engine_file *f, struct ing_err *err)
{
    struct pq_reader *pr = NULL;
    struct pq_shred *ps = NULL;
    struct pq_bind_report bind = {0};
    struct buf row = {.limit = ENGINE_MAX_PARQUET_ROW};
    int rc = 0;
    int64_t size = fs_file_size(f->path);
    if (size < 0) {
        rc = ing_err_errno(err, errno ? errno : ENOENT, "cannot read input file %s",
                           file_label(f));
        return file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
    }
    r->res->input_bytes += size;
    if (size == 0)
        return empty_file(r, f, err);
    rc = pq_reader_open(&pr, f->path, NULL, err);
    if (rc != 0) {
        ing_err_set(err, rc, "%.200s is not a readable Parquet file: %.300s", file_label(f),
                    err->msg);
        rc = file_error(r, f, rc, ENGINE_UNREADABLE_CODE, err);
        goto out;
    }
    if (pq_bind_check(pr, r->plan, &bind, NULL) == 0 && bind.n_unknown + bind.n_shape > 0)
        log_info("parquet input %s: %zu of %zu columns bind to no field of the schema, %zu have "
                 "another shape",
                 file_label(f), bind.n_unknown, pq_reader_ncolumns(pr), bind.n_shape);
    if (r->threads > 1) {
        rc = run_parquet_ranges(r, f, pr, size, err);
        if (rc != RANGES_NOT_SPLIT)
            goto out;
        rc = 0;
    }
    ps = pq_shred_new(pr, r->sh, r->plan, ENGINE_MAX_PARQUET_ROW);
    int64_t records = 0;
    /* Written only when a row fails (then cleared again): one clear, not a kilobyte per row. */
    struct ing_err rerr;
    ing_err_clear(&rerr);
    for (;;) {
        int got = pq_reader_next(pr, &rerr);
        if (got == 0)
            break;
        if (got < 0) {
            if (err) {
                *err = rerr;
                ing_err_set(err, got, "%.200s: %.300s", file_label(f), rerr.msg);
            }
            rc = file_error(r, f, got, ENGINE_UNREADABLE_CODE, err);
            goto out;
        }
        records++;
        r->res->input_records++;
        int64_t rowno = pq_reader_row(pr);
        json_t *preview = r->res->preview;
        if (!(preview && json_array_size(preview) < (size_t)r->opts->preview_rows) &&
            pq_shred_row(ps) == 0) {
            /* The typed path took the row whole (staged, not written): commit it where the
             * JSON path would have (the part file opened first, as run_record does). Rows it
             * hands back, and preview rows, go the JSON way below. */
            if (!r->w && (rc = open_part(r, err)) != 0) {
                r->res->transient = is_transient(err, rc);
                goto out;
            }
            if ((rc = shred_end(r->sh, r->w, err)) != 0) {
                /* Not a data problem (the writer failed): the batch fails as a whole. */
                ing_err_file(err, file_label(f));
                err->row = rowno;
                r->res->transient = is_transient(err, rc);
                goto out;
            }
            continue;
        }
        buf_reset(&row);
        if (pq_reader_row_json(pr, &row, &rerr) != 0) {
            /* The row cannot be rendered: a corrupt row (INGEST-1401), the reader's words kept. */
            r->rerr = rerr;
            r->rerr.code = ING_ESYNTAX;
            r->rerr.row = rowno;
            r->rerr.offset = -1;
            ing_err_field(&r->rerr, "");
            ing_err_clear(&rerr);
            rc = row_failed(r, f, &r->rerr, NULL, 0, err);
            if (rc != 0)
                goto out;
            continue;
        }
        struct jsplit_record rec = {.data = (const char *)row.data, .len = row.len, .row = rowno,
                                    .offset = -1};
        rc = run_record(r, f, &rec, err);
        if (rc != 0)
            goto out;
    }
    if (records == 0) {
        rc = empty_file(r, f, err);
        goto out;
    }
    rc = close_part(r, err);
    r->res->transient = is_transient(err, rc);
out:
    pq_shred_free(ps);
    pq_bind_report_free(&bind);
    pq_reader_free(pr);
    buf_free(&row);
    return rc;
}

static int adopt_spec(struct run *r, const struct engine_file *f, struct ing_err *err);

static int run_file(struct run *r, const struct engine_file *f, struct ing_err *err)
{
    if (r->opts->format == ENGINE_PARQUET)
        return run_parquet_file(r, f, err);
    if (f->spec) {
        int taken = adopt_spec(r, f, err);
        if (taken != RANGES_NOT_SPLIT)
            return taken;
    }
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
    if (r->threads > 1 && inread_kind(in) == INREAD_PLAIN && !r->opts->multiline &&
        (int64_t)st.st_size >= r->split_min) {
        rc = run_file_ranges(r, f, fd, (int64_t)st.st_size, err);
        if (rc != RANGES_NOT_SPLIT)
            goto out;
        rc = 0;
    }
    /* Every record is shredded, which checks the whole grammar: lines are only cut here. */
    struct jsplit_opts jopts = {.mode = JSPLIT_AUTO, .multiline = r->opts->multiline,
                                .lazy_corrupt = true};
    split = jsplit_new_reader(inread_read, in, &jopts);
    int64_t records = 0;
    /* jsplit fills it only when it stops, so one clear serves the whole file. */
    struct ing_err serr;
    ing_err_clear(&serr);
    for (;;) {
        struct jsplit_record rec;
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

/* ------------------------------------------------------------------------------------------ */
/* Speculative runs: a file read while it arrives                                              */

struct engine_spec {
    struct engine_opts opts;    /* the caller's, without diag and fault hook */
    struct engine_result res;   /* the private run's (the merge fills the adopting run's) */
    struct run run;             /* out_dir: the private folder */
    struct ranges rs;           /* one range, two once the tail is cut */
    struct engine_source src;
    struct engine_file file;    /* a name for errors until the run is adopted */
    char *out_dir;
    int fd;
    dev_t dev;
    ino_t ino;
    /* The reader of range 0 (its thread only). */
    int64_t pos;                /* bytes handed to the splitter */
    int64_t end;                /* where range 0 ends (INT64_MAX until known) */
    int64_t avail;              /* bytes there, as the source said last */
    int64_t final;              /* the final size (-1 until known) */
    bool checked;               /* the start was looked at (not compressed, not an array) */
    bool unusable;              /* gave up, stopped or cannot be adopted */
    bool ran;                   /* engine_spec_run returned */
    bool tail_live;             /* range 1 runs on `tail` */
    pthread_t tail;
};

/* Ask the source for more than s->avail bytes (have < 0: only look, never block); the first
 * final size cuts the tail. */
static int spec_wait(struct engine_spec *s, int64_t have, struct ing_err *err);

/* The start of the file decides whether it may be read as lines at all: not compressed, not an
 * array, not too blank to tell (what ranges_ok and inread decide for a whole file). */
static int spec_check_head(struct engine_spec *s, struct ing_err *err)
{
    while (s->final < 0 && s->avail < RANGES_PEEK_BYTES) {
        int rc = spec_wait(s, s->avail, err);
        if (rc != 0)
            return rc;
    }
    size_t want = s->avail < RANGES_PEEK_BYTES ? (size_t)s->avail : RANGES_PEEK_BYTES;
    uint8_t *peek = xmalloc(want + 1);
    int rc = 0;
    ssize_t got = fs_pread_all(s->fd, peek, want, 0);
    if (got < 0) {
        rc = ing_err_errno(err, errno, "cannot read the input file");
        goto out;
    }
    switch (head_kind(peek, (size_t)got)) {
    case HEAD_COMPRESSED:
        rc = ing_err_set(err, ING_EINVAL, "a compressed file is read whole");
        break;
    case HEAD_WHOLE:
        rc = ing_err_set(err, ING_EINVAL, "an array (or a blank start) is read whole");
        break;
    case HEAD_LINES:
        break;
    }
out:
    free(peek);
    s->checked = rc == 0;
    return rc;
}

static void *spec_tail_main(void *arg)
{
    struct engine_spec *s = arg;
    range_work(&s->rs, 1, NULL);
    return NULL;
}

/* The final size is known: cut what range 0 has not read yet in two at a line start, when that
 * is worth a thread, and start the second range. */
static void spec_cut_tail(struct engine_spec *s)
{
    int64_t left = s->final - s->pos;
    log_debug("engine: speculative run: final size %lld bytes, %lld left", (long long)s->final,
              (long long)left);
    if (s->run.threads < 2 || left < 2)
        return;
    int64_t cut = -1;
    if (s->run.threads == 2 && s->final >= s->run.split_min) {
        /* Where a two-thread run of the whole file cuts it: when range 0 has not passed that
         * line yet, the ranges and so the part files are that run's, byte for byte. */
        struct par_range whole[2];
        if (par_split_lines(s->fd, s->final, 2, whole, NULL) == 2 && whole[1].start > s->pos)
            cut = whole[1].start;
    }
    if (cut < 0 && left < s->run.split_min)
        return;
    if (cut < 0) {
        /* The line start after the middle of what is left; a failed read leaves the file
         * uncut (range 0 then reads on and meets the failure itself). */
        int64_t mid = par_next_line_start(s->fd, s->pos + left / 2 + 1, s->final, NULL);
        cut = mid < 0 ? -1 : mid;
    }
    /* A range's splitter would skip a byte-order mark the whole file's reads as text. A failed
     * read does not stop the cut: range 1 then fails on it itself. */
    if (cut > 0 && cut < s->final && bom_at(s->fd, cut, s->final, NULL) > 0)
        cut = -1;
    if (cut <= 0 || cut >= s->final)
        return;
    s->rs.jobs[1].range = (struct par_range){cut, s->final};
    s->rs.n = 2;
    if (pthread_create(&s->tail, NULL, spec_tail_main, s) != 0) {
        s->rs.n = 1;
        return;
    }
    s->tail_live = true;
    s->end = cut;
}

static int spec_wait(struct engine_spec *s, int64_t have, struct ing_err *err)
{
    int64_t avail = 0, final = -1;
    int rc = s->src.wait(s->src.ctx, have, &avail, &final, err);
    if (rc != 0)
        return rc;
    if (final >= 0)
        avail = final;
    if (avail > s->avail)
        s->avail = avail;
    if (final >= 0 && s->final < 0) {
        s->final = final;
        if (s->end > final)
            s->end = final;
        if (s->checked)
            spec_cut_tail(s);
    }
    return 0;
}

/* jsplit's read callback for range 0: bytes below the mark, blocking at it. */
static int64_t spec_read(void *ctx, void *buf, size_t n, struct ing_err *err)
{
    struct engine_spec *s = ctx;
    int rc = 0;
    if (!s->checked) {
        rc = spec_check_head(s, err);
        if (rc == 0 && s->final >= 0)
            spec_cut_tail(s); /* the final size came before the check */
    } else if (s->final < 0) {
        /* The reader is often behind the upload: learn the final size as soon as it is known,
         * so that what is left is cut for the second thread then, not when the reader catches
         * up. */
        rc = spec_wait(s, -1, err);
    }
    for (;;) {
        if (rc != 0 || atomic_load(&s->rs.stop_at) < 0) {
            s->unusable = true;
            return rc ? rc : ing_err_set(err, ING_ESTATE, "the speculative run was stopped");
        }
        int64_t limit = s->avail < s->end ? s->avail : s->end;
        if (s->pos < limit) {
            size_t want = (int64_t)n < limit - s->pos ? n : (size_t)(limit - s->pos);
            ssize_t got = fs_pread_all(s->fd, buf, want, s->pos);
            if (got <= 0) {
                s->unusable = true;
                return ing_err_errno(err, got < 0 ? errno : EIO, "cannot read the input file");
            }
            s->pos += got;
            return got;
        }
        if (s->pos >= s->end || s->final >= 0)
            return 0;
        rc = spec_wait(s, s->avail, err);
    }
}

int engine_spec_new(struct engine_spec **out, const struct xdm_plan *plan,
                    const struct engine_opts *opts, bool diagnostics, int fd,
                    const struct engine_source *src, const char *out_dir, struct ing_err *err)
{
    *out = NULL;
    struct stat st;
    if (!plan || !plan->pq || !opts || !src || !src->wait || !out_dir || fd < 0 ||
        fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return ing_err_set(err, ING_EINVAL, "engine: a plan, options, a source, a folder and "
                                            "an open file are required");
    }
    int rc = fs_mkdirs(out_dir, err);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    struct engine_spec *s = xcalloc(1, sizeof(*s));
    s->opts = *opts;
    s->opts.diag = NULL;
    s->opts.fault_write_errno = 0;
    s->src = *src;
    s->out_dir = xstrdup(out_dir);
    s->fd = fd;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->end = INT64_MAX;
    s->final = -1;
    s->res.errors = json_array();
    s->res.files = json_array();
    s->run = (struct run){.opts = &s->opts, .plan = plan, .out_dir = s->out_dir, .res = &s->res,
                          .threads = opts->threads > 0 ? opts->threads : online_cpus(),
                          .split_min = opts->split_min_bytes > 0 ? opts->split_min_bytes
                                                                 : PAR_MIN_SPLIT_BYTES,
                          .pq = plan->pq};
    ing_err_clear(&s->run.rerr);
    s->file = (struct engine_file){.path = "", .name = ""};
    s->rs = (struct ranges){.r = &s->run, .f = &s->file, .fd = fd, .n = 1,
                            .keep_raw = diagnostics, .read0 = spec_read, .read0_ctx = s};
    atomic_init(&s->rs.stop_at, INT_MAX);
    s->rs.jobs = xcalloc(2, sizeof(*s->rs.jobs));
    for (int i = 0; i < 2; i++) {
        struct range_job *job = &s->rs.jobs[i];
        job->index = i;
        ing_err_clear(&job->err);
        if (opts->preview_rows > 0) {
            job->preview = json_array();
            job->preview_want = (size_t)opts->preview_rows;
            job->preview_row = xcalloc(job->preview_want, sizeof(*job->preview_row));
        }
    }
    s->rs.jobs[0].range = (struct par_range){0, INT64_MAX};
    *out = s;
    return 0;
}

void engine_spec_run(struct engine_spec *s)
{
    if (!s || s->ran)
        return;
    /* jansson seeds its object hashing once; before this thread builds preview rows. */
    json_object_seed(0);
    range_work(&s->rs, 0, NULL);
    if (s->tail_live)
        pthread_join(s->tail, NULL);
    s->tail_live = false;
    for (int i = 0; i < s->rs.n; i++)
        if (s->rs.jobs[i].rc != 0)
            s->unusable = true; /* a batch-level failure: the usual run reports it */
    s->ran = true;
}

void engine_spec_stop(struct engine_spec *s)
{
    if (s)
        stop_from(&s->rs, -1);
}

/* engine_run's use of a finished speculative run; RANGES_NOT_SPLIT when it cannot be used. */
static int adopt_spec(struct run *r, const struct engine_file *f, struct ing_err *err)
{
    struct engine_spec *s = f->spec;
    const struct engine_opts *o = r->opts, *so = &s->opts;
    if (!s->ran || s->unusable || atomic_load(&s->rs.stop_at) < 0 || o->multiline ||
        so->multiline || o->max_failed_rows != so->max_failed_rows ||
        o->preview_rows != so->preview_rows || (o->diag != NULL) != s->rs.keep_raw ||
        memcmp(&o->parquet, &so->parquet, sizeof(o->parquet)) != 0 ||
        (o->fault_write_errno && !r->fault_used))
        return RANGES_NOT_SPLIT;
    struct stat st;
    if (stat(f->path, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino ||
        (s->final >= 0 && (int64_t)st.st_size != s->final))
        return RANGES_NOT_SPLIT;
    log_debug("engine: speculative run adopted path=%s ranges=%d", f->path, s->rs.n);
    r->res->input_bytes += (int64_t)st.st_size;
    s->rs.r = r;
    s->rs.f = f;
    int rc = merge_ranges(r, f, &s->rs, err);
    for (int i = 0; i < s->rs.n; i++)
        r->unknown_fields += s->rs.jobs[i].unknown_fields;
    s->unusable = true; /* merged once: its parts moved or removed */
    return rc;
}

void engine_spec_free(struct engine_spec *s)
{
    if (!s)
        return;
    if (s->tail_live) {
        engine_spec_stop(s);
        pthread_join(s->tail, NULL);
    }
    for (int i = 0; i < 2; i++) {
        struct range_job *job = &s->rs.jobs[i];
        if (job->has_part)
            unlink(job->part_path);
        if (job->spill)
            fclose(job->spill);
        json_decref(job->preview);
        free(job->preview_row);
        free(job->part_path);
    }
    free(s->rs.jobs);
    engine_result_free(&s->res);
    close(s->fd);
    fs_rm_rf(s->out_dir, NULL);
    free(s->out_dir);
    free(s);
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

    struct run r = {.opts = opts, .plan = plan, .out_dir = out_dir, .res = res,
                    .threads = opts->threads > 0 ? opts->threads : online_cpus(),
                    .split_min = opts->split_min_bytes > 0 ? opts->split_min_bytes
                                                           : PAR_MIN_SPLIT_BYTES};
    if (r.threads > PAR_MAX_RANGES)
        r.threads = PAR_MAX_RANGES;
    ing_err_clear(&r.rerr);
    const struct engine_file **sorted = NULL;
    int rc;
    if (!plan || !plan->pq || !out_dir || nfiles == 0) {
        rc = ing_err_set(err, ING_EINVAL, "engine: a plan, an output folder and input files "
                                          "are required");
        goto out;
    }
    if (opts->format != ENGINE_JSON && opts->format != ENGINE_PARQUET) {
        rc = ing_err_set(err, ING_EINVAL, "engine: unknown input format %d", (int)opts->format);
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
    /* jansson seeds its object hashing once; do it before helper threads build preview rows. */
    json_object_seed(0);
    for (size_t i = 0; i < nfiles && rc == 0; i++)
        rc = run_file(&r, sorted[i], err);
    res->unknown_fields = shred_get_stats(r.sh)->unknown_fields + r.unknown_fields;
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
