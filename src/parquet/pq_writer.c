/*
 * pq_writer.c - streaming Parquet writer: column buffers with levels, data pages v1,
 * per-chunk dictionaries with PLAIN fallback, statistics, row groups and the footer; see
 * pq_writer.h. The file layout is "PAR1" <column chunks...> <FileMetaData> <len:le32> "PAR1".
 *
 * Memory: each column keeps its pending page (values + levels, about opts.page_bytes), its
 * finished compressed pages and its dictionary until the row group is written; all buffers are
 * reused across row groups. No allocation per value: buffers grow geometrically.
 *
 * Levels are kept as runs of equal (definition, repetition) pairs, not one entry per value: a
 * schema of hundreds of optional columns of which a file fills a few (the tutorial's profile
 * schemas) costs one increment per null, a few bytes of memory per column and one RLE run per
 * page. The per-row work is independent of the number of columns too: the writes count the
 * columns that started a row and queue the columns whose page is full, so pq_writer_end_row
 * checks one counter and cuts only the queued pages; the full scan runs only to name the column
 * of a broken row.
 *
 * Null spans: a wide subtree that a file never fills gets the same pq_write_nulls(first, last,
 * def, 0) in every row. Rather than touching each of its columns every row, the writer keeps the
 * call as a span with a count of pending rows (one increment per row whatever the width) and
 * applies the count to the columns in bulk: every SPAN_MAX_PENDING rows, before any other write
 * to one of its columns (the span is dropped then), and before a row group is written or a row
 * is checked column by column. The row group size estimate counts the span's levels at once.
 * A null set (pq_write_null_set) is the same for several ranges at once: all the null ranges of
 * a record shape, named by the caller's key, cost one step per row.
 *
 * zstd: a column whose pages compress poorly at the normal level (few repeats: random ids as
 * text, measured numbers) gets its next pages in the codec's entropy mode, which skips most of
 * the match search (see cut_page).
 */
#include "parquet/pq_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "parquet/pq_codec.h"
#include "parquet/pq_encode.h"
#include "parquet/pq_int.h"
#include "parquet/pq_thrift.h"
#include "util/bigmem.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

#define PQ_MIB ((size_t)1 << 20)
#define PQ_DEFAULT_CREATED_BY "ingot version 0.1"
/* Statistics for longer strings are truncated (min) or left out (max) to keep footers small. */
#define PQ_STAT_MAX_BYTES 64
/* Keeps dictionary offsets within uint32_t. */
#define PQ_DICT_HARD_MAX ((size_t)1 << 30)
/* After this many values of a chunk went to its dictionary, a column whose values were nearly
 * all distinct (ids, e-mail addresses) goes PLAIN for the rest of the chunk: hashing them only
 * to overflow the dictionary later cost a cache miss per value (a tenth of a whole run). */
#define PQ_DICT_PROBE 4096u
#define PQ_DICT_PROBE_DISTINCT (PQ_DICT_PROBE / 4 * 3)
/* Room kept before a column's pending values, so that a page's levels (usually a few bytes of
 * RLE runs) can be put right before them and the page compressed from there without copying
 * the values into one buffer first. */
#define VALS_HEAD ((size_t)64)
/* Room before each compressed page body in the chunk buffer for its header, which is written
 * once the compressed size is known (at most about 30 bytes for a data page header). */
#define PAGE_HDR_ROOM ((size_t)48)

/* Data pages of a column switch to zstd's entropy mode after a page compressed at the normal
 * level to more than 3/10 of its size; every ENTROPY_PROBE_EVERY-th page after that is
 * compressed at the normal level again, and the column goes back to it when that page did not
 * pass 3/10, or at once when a page in the entropy mode went below 1/5 (cut_page). Pages under
 * 64 KiB do not count. */
#define ENTROPY_ON_NUM 3u
#define ENTROPY_ON_DEN 10u
#define ENTROPY_OFF_NUM 1u
#define ENTROPY_OFF_DEN 5u
#define ENTROPY_PROBE_EVERY 16u
#define ENTROPY_MIN_PAGE ((size_t)64 << 10)

/* Parquet enum values (parquet.thrift). */
enum { PT_PLAIN = 0, PT_RLE = 3, PT_RLE_DICTIONARY = 8 };
enum { PT_DATA_PAGE = 0, PT_DICTIONARY_PAGE = 2 };

/* Bytes [off, off + len) of a column's chunk buffer: one page, header and body. */
struct page_seg {
    size_t off, len;
};

struct pq_col {
    /* The fields every write touches come first and fill one cache line, so that writing the
     * nulls of a row across hundreds of columns touches one line per column. */
    _Alignas(64) int32_t max_def, max_rep;
    uint32_t cur_key, cur_len; /* the open level run: def | rep << 16, and its length */
    int64_t rows;              /* rows started (rep 0 entries) in this row group */
    size_t nlev;               /* level entries (values and nulls) in the pending page */
    int64_t nulls;
    size_t pend;               /* estimated bytes of the pending page */
    uint8_t lev_bytes;         /* estimated bytes per level entry: one per kind of level */
    bool cut_due;              /* queued in w->cut_list */

    const struct pq_column_desc *desc;
    enum pq_phys phys;

    /* Pending page. */
    struct buf vals;           /* PLAIN values, or one 0/1 byte per boolean */
    uint32_t *idx;             /* dictionary indices of the pending page */
    size_t nidx, idx_bytes;    /* indices, and the bytes allocated for them (big_resize) */
    uint32_t *run_key;         /* closed level runs (as cur_key), kept only when a max level > 0 */
    uint32_t *run_len;         /* entries in each run */
    size_t nruns, run_cap;

    /* Finished pages of the chunk: each page's header and compressed body lie together in
     * `pages`, at the spans in `segs`, with a few unused bytes before each header (see
     * emit_page); the dictionary page joins them when the chunk is written. */
    struct buf pages;
    struct page_seg *segs;
    size_t nsegs, seg_cap;
    int64_t chunk_values;
    int64_t unc_bytes, comp_bytes; /* page headers + bodies */
    int dict_pages;            /* data pages that use the dictionary */
    unsigned encodings;        /* bit per Parquet Encoding value */
    bool entropy;              /* zstd: data pages in the entropy mode (see cut_page) */
    unsigned entropy_pages;    /* pages in the entropy mode since the last at the normal level */

    /* Dictionary (BYTE_ARRAY only): PLAIN entries, open-addressing hash of entry ids. */
    bool use_dict;             /* values go to the dictionary (until it overflows) */
    uint32_t dict_vals;        /* values interned in this chunk, counted up to the probe */
    struct buf dict;
    uint32_t *dict_off, *dict_hash;
    uint32_t ndict, dict_cap;
    /* Hash table: entry id + 1 in the low half (0 = empty), the entry's hash in the high half,
     * so a probe reads no other array before the entry that matches; a power of two. */
    uint64_t *slots;
    uint32_t nslots;

    /* Statistics of the chunk. */
    int64_t nans;
    bool has_minmax;
    int64_t imin, imax;        /* INT32, INT64, BOOLEAN */
    double dmin, dmax;         /* FLOAT, DOUBLE */
    struct buf smin, smax;     /* BYTE_ARRAY */
    uint64_t smin_key, smax_key; /* their first 8 bytes as a number (see byte_key) */
};

/* Rows of nulls kept as one span before they are applied to its columns (bounds how far a
 * column's pending page may outgrow page_bytes: one level byte or two per row). */
#define SPAN_MAX_PENDING 1024u
/* Narrower null ranges are written column by column. */
#define SPAN_MIN_COLS 4

/* Columns first..last took a null at `def` (rep 0) in `pending` rows not yet applied to them.
 * A null set (pq_write_null_set) is a span of several ranges: `ranges` holds (first, last, def)
 * triples and first is -1, so pq_write_nulls never takes it for one of its own. */
struct null_span {
    int first, last, def;
    uint32_t pending;
    int64_t last_row;          /* w->rows of the latest row that used the span */
    size_t lev_sum;            /* level bytes of one row over the columns */
    int ncols;                 /* columns held */
    int32_t *ranges;           /* null sets only: nranges (first, last, def) triples */
    int nranges;
    uint64_t key;              /* null sets only: the caller's name of the ranges */
};

/* iovecs queued before a writev; Linux takes up to 1024 (IOV_MAX). */
#define OUT_IOV_MAX 1024

struct pq_writer {
    const struct pq_schema *schema;
    int fd;
    char *path;
    int64_t pos;               /* bytes written to the file or queued for the next writev */
    enum pq_codec codec;
    size_t row_group_bytes, page_bytes, dict_max_bytes;
    char *created_by;
    struct pq_codec_ctx *cc;

    struct pq_col *cols;
    int ncols;
    int64_t rows, rg_rows;
    int row_groups;

    struct buf raw, hdr;       /* page scratch, reused */
    struct buf lev_scratch;    /* level encoder scratch, reused */
    int *cut_list;             /* columns whose pending page is full, cut at the row's end */
    int ncut;
    struct null_span *spans;   /* live null spans and sets (disjoint: at most ncols) */
    int nspans;
    int last_set;              /* the span index of the null set used last, or -1 */
    int *span_of_first;        /* per column: the span starting there, or -1 */
    int *span_cover;           /* per column: the span holding it, or -1 */
    int64_t row_starts;        /* columns that got their rep-0 entry in the current row */
    bool row_doubled;          /* a column got a second rep-0 entry in the current row */
    size_t rg_bytes;           /* estimated buffered bytes of the row group */
    struct buf footer_rgs;     /* serialised RowGroup structs, in order */
    /* Bytes queued for the file (counted in pos already), written by out_flush with writev:
     * a row group is a few hundred pages (most of them the tiny pages of empty columns), and a
     * write(2) each was ~2,300 system calls per million records. What they point at stays put
     * until the flush (see write_chunk). */
    struct iovec iov[OUT_IOV_MAX];
    int niov;
    int64_t kicked;            /* bytes handed to write-back (fs_kick_writeback) */

    int failed;                /* sticky error code once the file is unusable */
    struct ing_err ferr;       /* what failed */
    bool misuse;               /* a pq_write_* call broke the contract */
    char misuse_msg[200];
};

static _Noreturn void die_oom(void)
{
    fprintf(stderr, "ingot: parquet writer: out of memory\n");
    abort();
}

/* Room for n more bytes at the end of b; returns where to write them and counts them. */
static inline uint8_t *buf_grab(struct buf *b, size_t n)
{
    if (b->cap - b->len < n && buf_reserve(b, n))
        die_oom();
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

/*
 * The large buffers of a column (pending values, finished pages, dictionary, indices) move to a
 * huge-page mapping of their own (bigmem, grown by mremap) once they need BIG_MAP_MIN bytes.
 * Why: a writer on a helper thread allocates from that thread's malloc arena, whose growth glibc
 * does not give huge pages, so filling a row group's buffers there faulted in ~5,000 small pages
 * per million records (each a trap to the hypervisor on this VM), and every doubling by realloc
 * copied the buffer. Below BIG_MAP_MIN they stay on the heap: a mapping is resident in whole
 * 2 MiB pages once touched, so mapping smaller buffers would multiply the memory of a schema
 * with many filled columns; from BIG_MAP_MIN on a buffer holds at least a quarter of its
 * mapping. Which kind a buffer is follows from its capacity (heap capacities stay below
 * BIG_MAP_MIN), so these buffers go through big_resize / big_grab / big_free only, never
 * buf_reserve or buf_free.
 */
#define BIG_MAP_MIN ((size_t)512 << 10)

/* p (capacity cap bytes, the first `keep` of them in use) with room for `need` bytes; *cap is
 * updated. Doubles, so filling a buffer a value at a time is amortised. */
static void *big_resize(void *p, size_t *cap, size_t need, size_t keep)
{
    if (need > SIZE_MAX / 4)
        die_oom();
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    if (need < BIG_MAP_MIN) {
        if (c >= BIG_MAP_MIN)
            c = BIG_MAP_MIN - 1;
        p = xrealloc(p, c);
    } else if (*cap < BIG_MAP_MIN) {
        void *q = bigmem_alloc(c);
        if (keep)
            memcpy(q, p, keep);
        free(p);
        p = q;
    } else {
        p = bigmem_realloc(p, c);
    }
    *cap = c;
    return p;
}

static inline void big_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        if (n > SIZE_MAX / 4 - b->len)
            die_oom();
        b->data = big_resize(b->data, &b->cap, b->len + n, b->len);
    }
}

static inline uint8_t *big_grab(struct buf *b, size_t n)
{
    big_reserve(b, n);
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

static void big_release(void *p, size_t cap)
{
    if (cap >= BIG_MAP_MIN)
        bigmem_free(p);
    else
        free(p);
}

static void big_free(struct buf *b)
{
    big_release(b->data, b->cap);
    *b = (struct buf){0};
}

/* Remember the first broken contract; pq_writer_end_row reports it. */
static void misuse(struct pq_writer *w, const char *what, int column)
{
    if (w->misuse)
        return;
    w->misuse = true;
    snprintf(w->misuse_msg, sizeof(w->misuse_msg), "%s: column %d (%s)", what, column,
             column >= 0 && column < w->ncols ? w->cols[column].desc->path : "?");
}

/* ---------------------------------------------------------------- levels and values */

static void close_run(struct pq_col *c);

/* k rows of nulls at `def` (rep 0) on columns first..last. */
static void apply_range(struct pq_writer *w, int first, int last, int def, uint32_t k)
{
    uint32_t key = (uint32_t)def;
    for (int column = first; column <= last; column++) {
        struct pq_col *c = &w->cols[column];
        /* lev_bytes > 0: a span holds only columns that can be null (max_def > 0). */
        if (c->cur_key == key && c->cur_len && c->cur_len <= UINT32_MAX - k) {
            c->cur_len += k;
        } else {
            if (c->cur_len)
                close_run(c);
            c->cur_key = key;
            c->cur_len = k;
        }
        c->nlev += k;
        c->rows += k;
        c->nulls += k;
        c->pend += (size_t)k * c->lev_bytes;
        if (c->pend >= w->page_bytes && !c->cut_due) {
            c->cut_due = true;
            w->cut_list[w->ncut++] = column;
        }
    }
}

/* Apply a span's pending rows to its columns. */
static void span_apply(struct pq_writer *w, struct null_span *sp)
{
    uint32_t k = sp->pending;
    if (!k)
        return;
    sp->pending = 0;
    if (!sp->ranges) {
        apply_range(w, sp->first, sp->last, sp->def, k);
        return;
    }
    for (int r = 0; r < sp->nranges; r++)
        apply_range(w, sp->ranges[3 * r], sp->ranges[3 * r + 1], sp->ranges[3 * r + 2], k);
}

/* Point span_cover (and span_of_first for a single range) of sp's columns at `i`. */
static void span_mark(struct pq_writer *w, const struct null_span *sp, int i)
{
    if (!sp->ranges) {
        for (int column = sp->first; column <= sp->last; column++)
            w->span_cover[column] = i;
        w->span_of_first[sp->first] = i;
        return;
    }
    for (int r = 0; r < sp->nranges; r++)
        for (int column = sp->ranges[3 * r]; column <= sp->ranges[3 * r + 1]; column++)
            w->span_cover[column] = i;
}

static void spans_apply_all(struct pq_writer *w)
{
    for (int i = 0; i < w->nspans; i++)
        span_apply(w, &w->spans[i]);
}

/* Apply span i and forget it (its columns are written one by one again). */
static void span_drop(struct pq_writer *w, int i)
{
    struct null_span *sp = &w->spans[i];
    span_apply(w, sp);
    span_mark(w, sp, -1);
    free(sp->ranges);
    if (w->last_set == i)
        w->last_set = -1;
    int last = --w->nspans;
    if (i != last) {
        /* The last span moves into the hole: renumber its columns. */
        w->spans[i] = w->spans[last];
        span_mark(w, &w->spans[i], i);
        if (w->last_set == last)
            w->last_set = i;
    }
}

/* One more row of span sp. */
static inline void span_hit(struct pq_writer *w, struct null_span *sp)
{
    /* Twice in one row: the row is broken; applying lets the end-of-row scan name it. */
    w->row_doubled |= sp->last_row == w->rows;
    sp->last_row = w->rows;
    sp->pending++;
    w->rg_bytes += sp->lev_sum;
    w->row_starts += sp->ncols;
    if (sp->pending >= SPAN_MAX_PENDING)
        span_apply(w, sp);
}

/*
 * The rep-0 nulls of columns first..last as one span row. Returns false when the range cannot be
 * a span (a bad definition level for one of the columns: the caller reports it).
 */
static bool span_row(struct pq_writer *w, int first, int last, int def)
{
    int i = w->span_of_first[first];
    if (i >= 0 && w->spans[i].last == last && w->spans[i].def == def) {
        span_hit(w, &w->spans[i]);
        return true;
    }
    size_t lev_sum = 0;
    for (int column = first; column <= last; column++) {
        struct pq_col *c = &w->cols[column];
        if (def < 0 || def >= c->max_def)
            return false;
        lev_sum += c->lev_bytes;
    }
    for (int column = first; column <= last; column++)
        if (w->span_cover[column] >= 0)
            span_drop(w, w->span_cover[column]);
    i = w->nspans++;
    struct null_span *sp = &w->spans[i];
    *sp = (struct null_span){.first = first, .last = last, .def = def, .pending = 1,
                             .last_row = w->rows, .lev_sum = lev_sum, .ncols = last - first + 1};
    for (int column = first; column <= last; column++) {
        struct pq_col *c = &w->cols[column];
        w->row_doubled |= c->rows != w->rg_rows;
        w->span_cover[column] = i;
    }
    w->span_of_first[first] = i;
    w->rg_bytes += lev_sum;
    w->row_starts += last - first + 1;
    return true;
}

static inline struct pq_col *col_for(struct pq_writer *w, int column, int rep)
{
    if (column < 0 || column >= w->ncols) {
        misuse(w, "write to a column that does not exist", column);
        return NULL;
    }
    if (w->span_cover[column] >= 0)
        span_drop(w, w->span_cover[column]);
    struct pq_col *c = &w->cols[column];
    if (rep < 0 || rep > c->max_rep || (rep > 0 && c->rows != w->rg_rows + 1)) {
        misuse(w, "bad repetition level", column);
        return NULL;
    }
    return c;
}

/* Move the open level run to the closed ones. */
static void close_run(struct pq_col *c)
{
    if (c->nruns == c->run_cap) {
        size_t cap = c->run_cap ? c->run_cap * 2 : 64;
        c->run_key = xrealloc(c->run_key, cap * sizeof(uint32_t));
        c->run_len = xrealloc(c->run_len, cap * sizeof(uint32_t));
        c->run_cap = cap;
    }
    c->run_key[c->nruns] = c->cur_key;
    c->run_len[c->nruns] = c->cur_len;
    c->nruns++;
    c->cur_len = 0;
}

static inline void push_levels(struct pq_writer *w, struct pq_col *c, int def, int rep)
{
    if (c->lev_bytes) {
        uint32_t key = (uint32_t)def | (uint32_t)rep << 16;
        if (c->cur_key == key && c->cur_len && c->cur_len < UINT32_MAX) {
            c->cur_len++;
        } else {
            if (c->cur_len)
                close_run(c);
            c->cur_key = key;
            c->cur_len = 1;
        }
    }
    c->nlev++;
    if (rep == 0) {
        w->row_doubled |= c->rows != w->rg_rows;
        c->rows++;
        w->row_starts++;
    }
}

static size_t pending_bytes(const struct pq_col *c)
{
    return c->vals.len - VALS_HEAD + c->nidx * 4 + c->nlev * c->lev_bytes;
}

/* Account for a write to c that added `pend_add` bytes to its pending page and `rg_add` to the
 * row group (both without the levels), and queue its page when it is full. */
static inline void wrote(struct pq_writer *w, struct pq_col *c, size_t pend_add, size_t rg_add)
{
    c->pend += pend_add + c->lev_bytes;
    w->rg_bytes += rg_add + c->lev_bytes;
    if (c->pend >= w->page_bytes && !c->cut_due) {
        c->cut_due = true;
        w->cut_list[w->ncut++] = (int)(c - w->cols);
    }
}

static inline struct pq_col *value_col(struct pq_writer *w, int column, int rep,
                                       enum pq_phys phys)
{
    struct pq_col *c = col_for(w, column, rep);
    if (!c)
        return NULL;
    if (c->phys != phys && !(phys == PQ_DOUBLE && c->phys == PQ_FLOAT)) {
        misuse(w, "value of the wrong type", column);
        return NULL;
    }
    push_levels(w, c, c->max_def, rep);
    return c;
}

void pq_write_null(struct pq_writer *w, int column, int def, int rep)
{
    struct pq_col *c = col_for(w, column, rep);
    if (!c)
        return;
    if (def < 0 || def >= c->max_def) {
        misuse(w, "null with a bad definition level", column);
        return;
    }
    push_levels(w, c, def, rep);
    c->nulls++;
    wrote(w, c, 0, 0);
}

static void write_nulls_slow(struct pq_writer *w, int first_column, int last_column, int def,
                             int rep);

void pq_write_nulls(struct pq_writer *w, int first_column, int last_column, int def, int rep)
{
    /* The common case first: the same absent range as in the rows before, already a span (the
     * span's existence vouches for the columns and the level; span_row does the rest). The
     * rest is a function of its own, so this path pays for no register saves. */
    if (rep == 0 && first_column >= 0 && first_column < w->ncols) {
        int i = w->span_of_first[first_column];
        if (i >= 0 && w->spans[i].last == last_column && w->spans[i].def == def) {
            span_hit(w, &w->spans[i]);
            return;
        }
    }
    write_nulls_slow(w, first_column, last_column, def, rep);
}

__attribute__((noinline)) static void write_nulls_slow(struct pq_writer *w, int first_column,
                                                       int last_column, int def, int rep)
{
    if (first_column < 0 || last_column >= w->ncols || first_column > last_column) {
        misuse(w, "null range outside the columns", first_column);
        return;
    }
    if (rep > 0) {
        for (int column = first_column; column <= last_column; column++)
            pq_write_null(w, column, def, rep);
        return;
    }
    if (last_column - first_column + 1 >= SPAN_MIN_COLS &&
        span_row(w, first_column, last_column, def))
        return;
    /* The common case (a subtree absent from a record), with the checks of pq_write_null and
     * push_levels specialised for rep 0. */
    uint32_t key = (uint32_t)def;
    for (int column = first_column; column <= last_column; column++) {
        if (w->span_cover[column] >= 0)
            span_drop(w, w->span_cover[column]);
        struct pq_col *c = &w->cols[column];
        if (def < 0 || def >= c->max_def) {
            misuse(w, "null with a bad definition level", column);
            return;
        }
        if (c->cur_key == key && c->cur_len && c->cur_len < UINT32_MAX) {
            c->cur_len++;
        } else {
            if (c->cur_len)
                close_run(c);
            c->cur_key = key;
            c->cur_len = 1;
        }
        c->nlev++;
        w->row_doubled |= c->rows != w->rg_rows;
        c->rows++;
        c->nulls++;
        wrote(w, c, 0, 0);
    }
    w->row_starts += last_column - first_column + 1;
}

static void null_set_slow(struct pq_writer *w, const int32_t *ranges, size_t n, uint64_t key);

void pq_write_null_set(struct pq_writer *w, const int32_t *ranges, size_t n, uint64_t key)
{
    /* The common case: the set of the rows before, still live. */
    int i = w->last_set;
    if (i >= 0 && w->spans[i].key == key) {
        span_hit(w, &w->spans[i]);
        return;
    }
    null_set_slow(w, ranges, n, key);
}

__attribute__((noinline)) static void null_set_slow(struct pq_writer *w, const int32_t *ranges,
                                                    size_t n, uint64_t key)
{
    if (n == 0)
        return;
    for (int i = 0; i < w->nspans; i++) {
        if (w->spans[i].ranges && w->spans[i].key == key) {
            w->last_set = i;
            span_hit(w, &w->spans[i]);
            return;
        }
    }
    /* Check every range as pq_write_nulls would; anything off is written range by range, so
     * that the misuse is reported by the same code, in the same words. */
    size_t lev_sum = 0;
    int ncols = 0;
    bool fits = n <= INT32_MAX / 3;
    for (size_t r = 0; r < n; r++) {
        int first = ranges[3 * r], last = ranges[3 * r + 1], def = ranges[3 * r + 2];
        bool ok = fits && first >= 0 && last < w->ncols && first <= last;
        for (int column = first; ok && column <= last; column++) {
            const struct pq_col *c = &w->cols[column];
            ok = def >= 0 && def < c->max_def;
            lev_sum += c->lev_bytes;
        }
        if (!ok) {
            for (r = 0; r < n; r++)
                pq_write_nulls(w, ranges[3 * r], ranges[3 * r + 1], ranges[3 * r + 2], 0);
            return;
        }
        ncols += last - first + 1;
    }
    for (size_t r = 0; r < n; r++)
        for (int column = ranges[3 * r]; column <= ranges[3 * r + 1]; column++)
            if (w->span_cover[column] >= 0)
                span_drop(w, w->span_cover[column]);
    int i = w->nspans++;
    struct null_span *sp = &w->spans[i];
    *sp = (struct null_span){.first = -1, .last = -1, .def = -1, .pending = 1,
                             .last_row = w->rows, .lev_sum = lev_sum, .ncols = ncols,
                             .nranges = (int)n, .key = key};
    sp->ranges = xmalloc(n * 3 * sizeof(int32_t));
    memcpy(sp->ranges, ranges, n * 3 * sizeof(int32_t));
    for (size_t r = 0; r < n; r++) {
        for (int column = ranges[3 * r]; column <= ranges[3 * r + 1]; column++) {
            struct pq_col *c = &w->cols[column];
            /* A column that already has this row's entry, or two ranges over one column: the
             * row has a column twice, which the end-of-row check names. */
            w->row_doubled |= c->rows != w->rg_rows || w->span_cover[column] == i;
            w->span_cover[column] = i;
        }
    }
    w->last_set = i;
    w->rg_bytes += lev_sum;
    w->row_starts += ncols;
}

static inline void stat_int(struct pq_col *c, int64_t v)
{
    if (!c->has_minmax) {
        c->imin = c->imax = v;
        c->has_minmax = true;
    } else if (v < c->imin) {
        c->imin = v;
    } else if (v > c->imax) {
        c->imax = v;
    }
}

void pq_write_bool(struct pq_writer *w, int column, bool v, int rep)
{
    struct pq_col *c = value_col(w, column, rep, PQ_BOOLEAN);
    if (!c)
        return;
    *big_grab(&c->vals, 1) = v ? 1 : 0;
    stat_int(c, v ? 1 : 0);
    wrote(w, c, 1, 1);
}

void pq_write_i32(struct pq_writer *w, int column, int32_t v, int rep)
{
    struct pq_col *c = value_col(w, column, rep, PQ_INT32);
    if (!c)
        return;
    pq_put_le32(big_grab(&c->vals, 4), (uint32_t)v);
    stat_int(c, v);
    wrote(w, c, 4, 4);
}

void pq_write_i64(struct pq_writer *w, int column, int64_t v, int rep)
{
    struct pq_col *c = value_col(w, column, rep, PQ_INT64);
    if (!c)
        return;
    pq_put_le64(big_grab(&c->vals, 8), (uint64_t)v);
    stat_int(c, v);
    wrote(w, c, 8, 8);
}

void pq_write_double(struct pq_writer *w, int column, double v, int rep)
{
    struct pq_col *c = value_col(w, column, rep, PQ_DOUBLE);
    if (!c)
        return;
    if (c->phys == PQ_FLOAT) {
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        pq_put_le32(big_grab(&c->vals, 4), bits);
        v = f;
    } else {
        uint64_t bits;
        memcpy(&bits, &v, 8);
        pq_put_le64(big_grab(&c->vals, 8), bits);
    }
    /* NaN has no place in min/max under TYPE_ORDER; it is counted instead. */
    if (isnan(v)) {
        c->nans++;
    } else if (!c->has_minmax) {
        c->dmin = c->dmax = v;
        c->has_minmax = true;
    } else if (v < c->dmin) {
        c->dmin = v;
    } else if (v > c->dmax) {
        c->dmax = v;
    }
    wrote(w, c, c->phys == PQ_FLOAT ? 4 : 8, c->phys == PQ_FLOAT ? 4 : 8);
}

/* Unsigned byte-wise order, a shorter prefix first. */
static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r)
        return r;
    return an < bn ? -1 : an > bn;
}

static void set_bytes(struct buf *b, const void *p, size_t n)
{
    buf_reset(b);
    if (n)
        memcpy(buf_grab(b, n), p, n);
}

/* The first 8 bytes, zero-padded, as a big-endian number: byte_key(a) < byte_key(b) implies
 * a < b in bytes_cmp's order (a difference in the first 8 bytes decides it the same way, and a
 * shorter string's padding is never above the longer one's bytes), so only equal keys need the
 * full comparison. A value of a PLAIN column is compared with both min and max. */
static inline uint64_t byte_key(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    if (n >= 8) {
        memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#else
        v = 0;
        for (size_t i = 0; i < 8; i++)
            v = v << 8 | p[i];
#endif
        return v;
    }
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (i < n ? p[i] : 0);
    return v;
}

static inline void stat_bytes(struct pq_col *c, const void *p, size_t n)
{
    uint64_t k = byte_key(p, n);
    if (!c->has_minmax) {
        set_bytes(&c->smin, p, n);
        set_bytes(&c->smax, p, n);
        c->smin_key = c->smax_key = k;
        c->has_minmax = true;
    } else if (k < c->smin_key ||
               (k == c->smin_key && bytes_cmp(p, n, c->smin.data, c->smin.len) < 0)) {
        set_bytes(&c->smin, p, n);
        c->smin_key = k;
    } else if (k > c->smax_key ||
               (k == c->smax_key && bytes_cmp(p, n, c->smax.data, c->smax.len) > 0)) {
        set_bytes(&c->smax, p, n);
        c->smax_key = k;
    }
}

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    /* The last 1..7 bytes in two overlapping loads (no byte loop; n is in the seed). */
    uint64_t k = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        k = (uint64_t)lo | (uint64_t)hi << 32;
    } else if (n) {
        k = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
    }
    h = (h ^ k) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return (uint32_t)h ^ (uint32_t)(h >> 32);
}

/* The hash table is made at a column's first dictionary value: most columns of a wide schema
 * never get one, and 8 KiB of zeroed slots per string column (and a memset per row group)
 * was a first-touch cost of every writer. */
#define DICT_FIRST_SLOTS 1024u

static void dict_rehash(struct pq_col *c, uint32_t nslots)
{
    free(c->slots);
    c->slots = xcalloc(nslots, sizeof(uint64_t));
    c->nslots = nslots;
    uint32_t mask = nslots - 1;
    for (uint32_t e = 0; e < c->ndict; e++) {
        uint32_t s = c->dict_hash[e] & mask;
        while (c->slots[s])
            s = (s + 1) & mask;
        c->slots[s] = (uint64_t)c->dict_hash[e] << 32 | (e + 1);
    }
}

/* Entry id of the value, inserting it when new (then also updating min/max: only new
 * dictionary entries can move them). */
static uint32_t dict_intern(struct pq_col *c, const void *p, size_t n)
{
    uint32_t h = hash_bytes(p, n);
    if (!c->slots)
        dict_rehash(c, DICT_FIRST_SLOTS);
    uint32_t mask = c->nslots - 1;
    uint32_t s = h & mask;
    for (;;) {
        uint64_t slot = c->slots[s];
        if (!slot)
            break;
        if ((uint32_t)(slot >> 32) == h) {
            uint32_t e = (uint32_t)slot - 1;
            const uint8_t *q = c->dict.data + c->dict_off[e];
            if (pq_get_le32(q) == n && buf_same_bytes(q + 4, p, n))
                return e;
        }
        s = (s + 1) & mask;
    }
    if (c->ndict == c->dict_cap) {
        uint32_t cap = c->dict_cap ? c->dict_cap * 2 : 256;
        c->dict_off = xrealloc(c->dict_off, (size_t)cap * sizeof(uint32_t));
        c->dict_hash = xrealloc(c->dict_hash, (size_t)cap * sizeof(uint32_t));
        c->dict_cap = cap;
    }
    uint32_t e = c->ndict++;
    c->dict_off[e] = (uint32_t)c->dict.len;
    c->dict_hash[e] = h;
    uint8_t *q = big_grab(&c->dict, 4 + n);
    pq_put_le32(q, (uint32_t)n);
    if (n)
        memcpy(q + 4, p, n);
    c->slots[s] = (uint64_t)h << 32 | (e + 1);
    if ((uint64_t)c->ndict * 2 > c->nslots)
        dict_rehash(c, c->nslots * 2);
    stat_bytes(c, p, n);
    return e;
}

/* The dictionary is full: the pending page's indices become PLAIN values, and the rest of the
 * chunk is written PLAIN. Pages already cut keep using the dictionary. */
static void dict_fall_back(struct pq_col *c)
{
    for (size_t i = 0; i < c->nidx; i++) {
        const uint8_t *q = c->dict.data + c->dict_off[c->idx[i]];
        size_t n = 4 + (size_t)pq_get_le32(q);
        memcpy(big_grab(&c->vals, n), q, n);
    }
    c->nidx = 0;
    c->use_dict = false;
}

void pq_write_bytes(struct pq_writer *w, int column, const void *p, size_t n, int rep)
{
    if (n > UINT32_MAX - 8) {
        misuse(w, "a value larger than 4 GiB", column);
        return;
    }
    struct pq_col *c = value_col(w, column, rep, PQ_BYTE_ARRAY);
    if (!c)
        return;
    if (c->use_dict) {
        uint32_t before = c->ndict;
        uint32_t e = dict_intern(c, p, n);
        if (c->nidx == c->idx_bytes / sizeof(uint32_t))
            /* A page's indices (up to page_bytes / 4 of them) kept as the values are. */
            c->idx = big_resize(c->idx, &c->idx_bytes, (c->nidx + 1) * sizeof(uint32_t),
                                c->nidx * sizeof(uint32_t));
        c->idx[c->nidx++] = e;
        wrote(w, c, 4, 4 + (c->ndict != before ? 4 + n : 0));
        bool mostly_distinct = c->dict_vals < PQ_DICT_PROBE && ++c->dict_vals == PQ_DICT_PROBE &&
                               c->ndict > PQ_DICT_PROBE_DISTINCT;
        if (c->dict.len > w->dict_max_bytes || mostly_distinct) {
            dict_fall_back(c);
            c->pend = pending_bytes(c); /* the indices became PLAIN values */
        }
        return;
    }
    uint8_t *q = big_grab(&c->vals, 4 + n);
    pq_put_le32(q, (uint32_t)n);
    if (n)
        memcpy(q + 4, p, n);
    stat_bytes(c, p, n);
    wrote(w, c, 4 + n, 4 + n);
}

/* ---------------------------------------------------------------- pages */

/* Write the queued bytes (retrying short writes and EINTR). */
static int out_flush(struct pq_writer *w)
{
    struct iovec *v = w->iov;
    int n = w->niov;
    w->niov = 0;
    while (n > 0) {
        ssize_t got = writev(w->fd, v, n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return ing_err_errno(&w->ferr, errno, "write %s", w->path);
        }
        size_t left = (size_t)got;
        while (n > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (uint8_t *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

/* Queue p[0, n) for the file; p must stay as it is until the next out_flush. */
static int out_add(struct pq_writer *w, const void *p, size_t n)
{
    if (!n)
        return 0;
    if (w->niov == OUT_IOV_MAX) {
        int rc = out_flush(w);
        if (rc)
            return rc;
    }
    w->iov[w->niov++] = (struct iovec){.iov_base = (void *)(uintptr_t)p, .iov_len = n};
    w->pos += (int64_t)n;
    return 0;
}

/* The page header of a page of `unc` bytes compressed to `comp`, into w->hdr. */
static void page_header(struct pq_writer *w, int page_type, int32_t num_values, int encoding,
                        size_t unc, size_t comp)
{
    buf_reset(&w->hdr);
    struct pq_tw t;
    pq_tw_init(&t, &w->hdr);
    pq_tw_field_i32(&t, 1, page_type);
    pq_tw_field_i32(&t, 2, (int32_t)unc);
    pq_tw_field_i32(&t, 3, (int32_t)comp);
    if (page_type == PT_DATA_PAGE) {
        pq_tw_field_struct_begin(&t, 5);
        pq_tw_field_i32(&t, 1, num_values);
        pq_tw_field_i32(&t, 2, encoding);
        pq_tw_field_i32(&t, 3, PT_RLE);
        pq_tw_field_i32(&t, 4, PT_RLE);
        pq_tw_struct_end(&t);
    } else {
        pq_tw_field_struct_begin(&t, 7);
        pq_tw_field_i32(&t, 1, num_values);
        pq_tw_field_i32(&t, 2, encoding);
        pq_tw_struct_end(&t);
    }
    pq_tw_struct_end(&t);
    if (pq_tw_error(&t))
        die_oom();
}

/* A page of src[0..n) (levels then values, or the dictionary's entries), compressed straight
 * into the column's chunk buffer after PAGE_HDR_ROOM bytes, its header then written just before
 * the body: no copy of the compressed bytes. The page's span is *seg; returns the sizes, and
 * the body's in *body_len. */
static int emit_page(struct pq_writer *w, struct pq_col *c, int page_type, const uint8_t *src,
                     size_t n, int32_t num_values, int encoding, bool entropy,
                     struct page_seg *seg, int64_t *unc, int64_t *comp, size_t *body_len)
{
    size_t seg_at = c->pages.len;
    size_t bound = pq_codec_bound(w->cc, n);
    if (bound > SIZE_MAX / 4)
        return ing_err_set(&w->ferr, ING_ETOOBIG, "a Parquet page passed 2 GiB");
    big_reserve(&c->pages, PAGE_HDR_ROOM + bound);
    size_t body_at = seg_at + PAGE_HDR_ROOM;
    size_t blen = 0;
    int rc = pq_codec_compress_to(w->cc, src, n, c->pages.data + body_at, bound, entropy, &blen,
                                  &w->ferr);
    if (rc)
        return rc;
    if (n > INT32_MAX || blen > INT32_MAX)
        return ing_err_set(&w->ferr, ING_ETOOBIG, "a Parquet page passed 2 GiB");
    page_header(w, page_type, num_values, encoding, n, blen);
    if (w->hdr.len > PAGE_HDR_ROOM)
        return ing_err_set(&w->ferr, ING_EINTERNAL, "a page header of %zu bytes", w->hdr.len);
    memcpy(c->pages.data + body_at - w->hdr.len, w->hdr.data, w->hdr.len);
    c->pages.len = body_at + blen;
    *seg = (struct page_seg){body_at - w->hdr.len, w->hdr.len + blen};
    *unc = (int64_t)(w->hdr.len + n);
    *comp = (int64_t)(w->hdr.len + blen);
    *body_len = blen;
    return 0;
}

/* The pending values of c start VALS_HEAD bytes into c->vals. */
static void vals_reset(struct pq_col *c)
{
    buf_reset(&c->vals);
    big_grab(&c->vals, VALS_HEAD);
}

/* Encode and compress the pending page of c into c->pages. Called at row boundaries only, so
 * every page starts with repetition level 0. */
static int cut_page(struct pq_writer *w, struct pq_col *c)
{
    if (c->nlev == 0)
        return 0;
    if (c->nlev > INT32_MAX)
        return ing_err_set(&w->ferr, ING_ETOOBIG, "too many values in one page");
    buf_reset(&w->raw);
    int rc = 0;
    if (c->cur_len)
        close_run(c);
    if (c->max_rep)
        rc = pq_rle_encode_level_runs(&w->raw, c->run_key, c->run_len, c->nruns, 16, 0xFFFF,
                                      pq_bit_width((uint32_t)c->max_rep), &w->lev_scratch);
    if (!rc && c->max_def)
        rc = pq_rle_encode_level_runs(&w->raw, c->run_key, c->run_len, c->nruns, 0, 0xFFFF,
                                      pq_bit_width((uint32_t)c->max_def), &w->lev_scratch);
    if (rc)
        die_oom();
    int encoding = PT_PLAIN;
    size_t nvals = c->vals.len - VALS_HEAD;
    const uint8_t *src = NULL; /* the page, when it is not w->raw */
    size_t n = 0;
    if (c->nidx) {
        /* Indices are < ndict now; later entries only raise the width of later pages. */
        int bw = pq_bit_width(c->ndict - 1);
        if (bw == 0)
            bw = 1;
        *buf_grab(&w->raw, 1) = (uint8_t)bw;
        if (pq_rle_encode(&w->raw, c->idx, c->nidx, bw))
            die_oom();
        encoding = PT_RLE_DICTIONARY;
        c->dict_pages++;
    } else if (c->phys == PQ_BOOLEAN) {
        if (pq_bool_pack(&w->raw, c->vals.data + VALS_HEAD, nvals))
            die_oom();
    } else if (nvals && w->raw.len <= VALS_HEAD) {
        /* The levels go into the room before the values: one contiguous page, no copy. */
        uint8_t *at = c->vals.data + VALS_HEAD - w->raw.len;
        if (w->raw.len)
            memcpy(at, w->raw.data, w->raw.len);
        src = at;
        n = w->raw.len + nvals;
    } else if (nvals) {
        memcpy(buf_grab(&w->raw, nvals), c->vals.data + VALS_HEAD, nvals);
    }
    if (!src) {
        src = w->raw.data;
        n = w->raw.len;
    }
    /* zstd's level 1 spends most of its time looking for repeats; a page it could not shrink
     * below ENTROPY_ON of its size had few (random ids as text, measured numbers) and shrank by
     * entropy coding, which the entropy mode does at about half the cost. The column's next
     * pages take that mode until one shrinks below ENTROPY_OFF (repeats came back). The entropy
     * mode finds fewer repeats than level 1, so its sizes cannot say when level 1 would be under
     * ENTROPY_ON again: now and then a page (the probe) is compressed at level 1 to ask. Small
     * pages say too little either way. */
    bool measured = w->codec == PQ_CODEC_ZSTD && n >= ENTROPY_MIN_PAGE;
    bool probe = measured && c->entropy && c->entropy_pages >= ENTROPY_PROBE_EVERY;
    bool entropy = c->entropy && !probe;
    int64_t unc = 0, comp = 0;
    size_t body_len = 0;
    struct page_seg seg;
    rc = emit_page(w, c, PT_DATA_PAGE, src, n, (int32_t)c->nlev, encoding, entropy, &seg, &unc,
                   &comp, &body_len);
    if (rc)
        return rc;
    /* Most columns of a wide schema get one page per row group: start small. */
    BUF_ARRAY_RESERVE(c->segs, c->seg_cap, c->nsegs + 1, 4);
    c->segs[c->nsegs++] = seg;
    if (measured && !entropy) {
        c->entropy = body_len * ENTROPY_ON_DEN > n * ENTROPY_ON_NUM;
        c->entropy_pages = 0;
    } else if (measured && body_len * ENTROPY_OFF_DEN < n * ENTROPY_OFF_NUM) {
        c->entropy = false;
    } else if (measured) {
        c->entropy_pages++;
    }
    c->encodings |= 1u << encoding | 1u << PT_RLE;
    c->unc_bytes += unc;
    c->comp_bytes += comp;
    c->chunk_values += (int64_t)c->nlev;
    c->nlev = 0;
    c->nruns = 0;
    c->pend = 0;
    c->nidx = 0;
    vals_reset(c);
    return 0;
}

/* ---------------------------------------------------------------- row groups */

static void write_stats(struct pq_tw *t, struct pq_col *c)
{
    uint8_t mn[8], mx[8];
    size_t mnlen = 0, mxlen = 0;
    const uint8_t *mnp = mn, *mxp = mx;
    bool min_exact = true;
    if (c->has_minmax) {
        switch (c->phys) {
        case PQ_BOOLEAN:
            mn[0] = (uint8_t)c->imin;
            mx[0] = (uint8_t)c->imax;
            mnlen = mxlen = 1;
            break;
        case PQ_INT32:
            pq_put_le32(mn, (uint32_t)(int32_t)c->imin);
            pq_put_le32(mx, (uint32_t)(int32_t)c->imax);
            mnlen = mxlen = 4;
            break;
        case PQ_INT64:
            pq_put_le64(mn, (uint64_t)c->imin);
            pq_put_le64(mx, (uint64_t)c->imax);
            mnlen = mxlen = 8;
            break;
        case PQ_FLOAT:
        case PQ_DOUBLE: {
            /* Zero bounds are widened to -0.0 / +0.0 as the spec asks for TYPE_ORDER. */
            double lo = c->dmin == 0 ? -0.0 : c->dmin;
            double hi = c->dmax == 0 ? 0.0 : c->dmax;
            if (c->phys == PQ_FLOAT) {
                float flo = (float)lo, fhi = (float)hi;
                uint32_t b;
                memcpy(&b, &flo, 4);
                pq_put_le32(mn, b);
                memcpy(&b, &fhi, 4);
                pq_put_le32(mx, b);
                mnlen = mxlen = 4;
            } else {
                uint64_t b;
                memcpy(&b, &lo, 8);
                pq_put_le64(mn, b);
                memcpy(&b, &hi, 8);
                pq_put_le64(mx, b);
                mnlen = mxlen = 8;
            }
            break;
        }
        default:
            mnp = c->smin.data;
            mnlen = c->smin.len;
            mxp = c->smax.data;
            mxlen = c->smax.len;
            if (mnlen > PQ_STAT_MAX_BYTES) {
                /* A prefix is a valid lower bound; cut at a UTF-8 character boundary so the
                 * bound is still a valid string. */
                mnlen = PQ_STAT_MAX_BYTES;
                while (mnlen > 0 && (mnp[mnlen] & 0xC0) == 0x80)
                    mnlen--;
                min_exact = false;
            }
            break;
        }
    }
    pq_tw_field_struct_begin(t, 12);
    pq_tw_field_i64(t, 3, c->nulls);
    if (c->has_minmax) {
        bool write_max = mxlen <= PQ_STAT_MAX_BYTES; /* an upper bound cannot just be cut */
        if (write_max)
            pq_tw_field_binary(t, 5, mxp, mxlen);
        pq_tw_field_binary(t, 6, mnp, mnlen);
        if (write_max)
            pq_tw_field_bool(t, 7, true);
        pq_tw_field_bool(t, 8, min_exact);
    }
    if (c->phys == PQ_FLOAT || c->phys == PQ_DOUBLE)
        pq_tw_field_i64(t, 9, c->nans);
    pq_tw_struct_end(t);
}

static void reset_chunk(struct pq_col *c)
{
    buf_reset(&c->pages);
    c->nsegs = 0;
    c->chunk_values = c->unc_bytes = c->comp_bytes = 0;
    c->dict_pages = 0;
    c->encodings = 0;
    c->rows = 0;
    c->use_dict = c->phys == PQ_BYTE_ARRAY;
    c->dict_vals = 0;
    if (c->use_dict) {
        buf_reset(&c->dict);
        if (c->ndict)
            memset(c->slots, 0, (size_t)c->nslots * sizeof(uint64_t));
        c->ndict = 0;
    }
    c->nulls = c->nans = 0;
    c->has_minmax = false;
}

/* Write one column chunk to the file and its ColumnChunk struct to the footer. */
static int write_chunk(struct pq_writer *w, struct pq_col *c, struct pq_tw *t, int64_t *unc_total,
                       int64_t *comp_total, int64_t *first_offset)
{
    int rc = cut_page(w, c);
    if (rc)
        return rc;
    int64_t dict_offset = -1, unc = c->unc_bytes, comp = c->comp_bytes;
    /* The chunk's bytes are queued, not written: they stay in c->pages, which nothing touches
     * again before the row group's out_flush (the dictionary page goes there too, after the
     * data pages, before anything of the chunk is queued, since growing may move the buffer). */
    if (c->dict_pages) {
        struct page_seg seg;
        int64_t du = 0, dc = 0;
        size_t blen = 0;
        rc = emit_page(w, c, PT_DICTIONARY_PAGE, c->dict.data, c->dict.len, (int32_t)c->ndict,
                       PT_PLAIN, false, &seg, &du, &dc, &blen);
        if (rc)
            return rc;
        dict_offset = w->pos;
        rc = out_add(w, c->pages.data + seg.off, seg.len);
        if (rc)
            return rc;
        unc += du;
        comp += dc;
        c->encodings |= 1u << PT_PLAIN;
    }
    int64_t data_offset = w->pos;
    for (size_t i = 0; i < c->nsegs; i++) {
        rc = out_add(w, c->pages.data + c->segs[i].off, c->segs[i].len);
        if (rc)
            return rc;
    }
    if (*first_offset < 0)
        *first_offset = dict_offset >= 0 ? dict_offset : data_offset;
    *unc_total += unc;
    *comp_total += comp;

    const struct pq_column_desc *d = c->desc;
    pq_tw_struct_begin(t);            /* ColumnChunk */
    pq_tw_field_i64(t, 2, 0);         /* file_offset: no metadata outside the footer */
    pq_tw_field_struct_begin(t, 3);   /* ColumnMetaData */
    pq_tw_field_i32(t, 1, (int32_t)c->phys);
    int nenc = 0;
    for (unsigned e = 0; e < 32; e++)
        nenc += (c->encodings >> e) & 1u;
    pq_tw_field_list(t, 2, PQ_T_I32, (size_t)nenc);
    for (unsigned e = 0; e < 32; e++)
        if ((c->encodings >> e) & 1u)
            pq_tw_zigzag(t, e);
    pq_tw_field_list(t, 3, PQ_T_BINARY, (size_t)d->nparts);
    for (int i = 0; i < d->nparts; i++)
        pq_tw_binary(t, d->parts[i], strlen(d->parts[i]));
    pq_tw_field_i32(t, 4, (int32_t)w->codec);
    pq_tw_field_i64(t, 5, c->chunk_values);
    pq_tw_field_i64(t, 6, unc);
    pq_tw_field_i64(t, 7, comp);
    pq_tw_field_i64(t, 9, data_offset);
    if (dict_offset >= 0)
        pq_tw_field_i64(t, 11, dict_offset);
    write_stats(t, c);
    pq_tw_struct_end(t);              /* ColumnMetaData */
    pq_tw_struct_end(t);              /* ColumnChunk */
    reset_chunk(c);
    return 0;
}

static int flush_row_group(struct pq_writer *w)
{
    spans_apply_all(w);
    if (w->rg_rows == 0)
        return 0;
    if (w->row_groups >= INT16_MAX)
        return ing_err_set(&w->ferr, ING_ETOOBIG, "too many row groups in one file");
    struct pq_tw t;
    pq_tw_init(&t, &w->footer_rgs);
    pq_tw_struct_begin(&t);           /* RowGroup */
    pq_tw_field_list(&t, 1, PQ_T_STRUCT, (size_t)w->ncols);
    int64_t unc = 0, comp = 0, first = -1;
    for (int i = 0; i < w->ncols; i++) {
        int rc = write_chunk(w, &w->cols[i], &t, &unc, &comp, &first);
        if (rc)
            return rc;
    }
    pq_tw_field_i64(&t, 2, unc);
    pq_tw_field_i64(&t, 3, w->rg_rows);
    pq_tw_field_i64(&t, 5, first);
    pq_tw_field_i64(&t, 6, comp);
    pq_tw_field_i16(&t, 7, (int16_t)w->row_groups);
    pq_tw_struct_end(&t);
    if (pq_tw_error(&t))
        die_oom();
    int rc = out_flush(w);
    if (rc)
        return rc;
    /* Start writing the row group back now, so the fsync at close finds little left. */
    fs_kick_writeback(w->fd, 0, &w->kicked, w->pos);
    w->row_groups++;
    w->rg_rows = 0;
    w->rg_bytes = 0;
    for (int i = 0; i < w->ncut; i++)
        w->cols[w->cut_list[i]].cut_due = false;
    w->ncut = 0;
    return 0;
}

static void fail(struct pq_writer *w, int rc)
{
    if (!w->failed)
        w->failed = rc ? rc : ING_EINTERNAL;
}

static int report(struct pq_writer *w, struct ing_err *err)
{
    if (err) {
        *err = w->ferr;
        if (!err->file[0])
            ing_err_file(err, w->path);
    }
    return w->failed;
}

int pq_writer_end_row(struct pq_writer *w, struct ing_err *err)
{
    if (!w->failed && w->misuse) {
        ing_err_set(&w->ferr, ING_EINVAL, "%s", w->misuse_msg);
        fail(w, ING_EINVAL);
    }
    if (w->failed)
        return report(w, err);
    /* Every column started exactly one record when ncols columns did and none did twice; only
     * otherwise is the scan needed, to name the column. */
    if (w->row_starts != w->ncols || w->row_doubled) {
        spans_apply_all(w);
        for (int i = 0; i < w->ncols; i++) {
            struct pq_col *c = &w->cols[i];
            if (c->rows != w->rg_rows + 1) {
                ing_err_set(&w->ferr, ING_EINVAL, "row %lld has %lld records for column %s",
                            (long long)(w->rows + 1), (long long)(c->rows - w->rg_rows),
                            c->desc->path);
                ing_err_field(&w->ferr, c->desc->path);
                fail(w, ING_EINVAL);
                return report(w, err);
            }
        }
    }
    w->row_starts = 0;
    for (int i = 0; i < w->ncut; i++) {
        struct pq_col *c = &w->cols[w->cut_list[i]];
        c->cut_due = false;
        int rc = cut_page(w, c);
        if (rc) {
            fail(w, rc);
            return report(w, err);
        }
    }
    w->ncut = 0;
    w->rg_rows++;
    w->rows++;
    if (w->rg_bytes >= w->row_group_bytes) {
        int rc = flush_row_group(w);
        if (rc) {
            fail(w, rc);
            return report(w, err);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- footer */

static void write_logical(struct pq_tw *t, enum pq_logical lg)
{
    int16_t member = 0, bits = 0;
    switch (lg) {
    case PQ_LOG_NONE:
        return;
    case PQ_LOG_STRING: member = 1; break;
    case PQ_LOG_MAP: member = 2; break;
    case PQ_LOG_LIST: member = 3; break;
    case PQ_LOG_DATE: member = 6; break;
    case PQ_LOG_TIMESTAMP_MILLIS:
    case PQ_LOG_TIMESTAMP_MICROS: member = 8; break;
    case PQ_LOG_INT8: member = 10; bits = 8; break;
    case PQ_LOG_INT16: member = 10; bits = 16; break;
    case PQ_LOG_INT32: member = 10; bits = 32; break;
    case PQ_LOG_INT64: member = 10; bits = 64; break;
    case PQ_LOG_JSON: member = 12; break;
    }
    pq_tw_field_struct_begin(t, 10);  /* LogicalType union */
    pq_tw_field_struct_begin(t, member);
    if (member == 8) {                /* TimestampType */
        pq_tw_field_bool(t, 1, true); /* isAdjustedToUTC */
        pq_tw_field_struct_begin(t, 2);
        pq_tw_field_empty_struct(t, lg == PQ_LOG_TIMESTAMP_MILLIS ? 1 : 2);
        pq_tw_struct_end(t);
    } else if (member == 10) {        /* IntType */
        pq_tw_field_byte(t, 1, (int8_t)bits);
        pq_tw_field_bool(t, 2, true);
    }
    pq_tw_struct_end(t);
    pq_tw_struct_end(t);
}

static int converted_type(enum pq_logical lg)
{
    switch (lg) {
    case PQ_LOG_NONE: return -1;
    case PQ_LOG_STRING: return 0;            /* UTF8 */
    case PQ_LOG_MAP: return 1;
    case PQ_LOG_LIST: return 3;
    case PQ_LOG_DATE: return 6;
    case PQ_LOG_TIMESTAMP_MILLIS: return 9;
    case PQ_LOG_TIMESTAMP_MICROS: return 10;
    case PQ_LOG_INT8: return 15;
    case PQ_LOG_INT16: return 16;
    case PQ_LOG_INT32: return 17;
    case PQ_LOG_INT64: return 18;
    case PQ_LOG_JSON: return 19;
    }
    return -1;
}

static void write_schema(struct pq_tw *t, const struct pq_schema *s)
{
    pq_tw_field_list(t, 2, PQ_T_STRUCT, (size_t)s->nnodes);
    for (int i = 0; i < s->nnodes; i++) {
        const struct pq_node *n = &s->nodes[s->dfs[i]];
        pq_tw_struct_begin(t);
        if (n->is_leaf)
            pq_tw_field_i32(t, 1, (int32_t)n->phys);
        if (n->parent >= 0)
            pq_tw_field_i32(t, 3, (int32_t)n->rep);
        pq_tw_field_string(t, 4, n->name);
        if (!n->is_leaf)
            pq_tw_field_i32(t, 5, n->nchildren);
        int ct = converted_type(n->logical);
        if (ct >= 0)
            pq_tw_field_i32(t, 6, ct);
        write_logical(t, n->logical);
        pq_tw_struct_end(t);
    }
}

static int write_footer(struct pq_writer *w)
{
    struct buf meta = {0};
    struct pq_tw t;
    pq_tw_init(&t, &meta);
    /* Version 2: the LogicalType/statistics era of the format. */
    pq_tw_field_i32(&t, 1, 2);
    write_schema(&t, w->schema);
    pq_tw_field_i64(&t, 3, w->rows);
    pq_tw_field_list(&t, 4, PQ_T_STRUCT, (size_t)w->row_groups);
    pq_tw_raw(&t, w->footer_rgs.data, w->footer_rgs.len);
    pq_tw_field_string(&t, 6, w->created_by);
    /* column_orders must accompany min_value/max_value: TYPE_ORDER for every column. */
    pq_tw_field_list(&t, 7, PQ_T_STRUCT, (size_t)w->ncols);
    for (int i = 0; i < w->ncols; i++) {
        pq_tw_struct_begin(&t);
        pq_tw_field_empty_struct(&t, 1);
        pq_tw_struct_end(&t);
    }
    pq_tw_struct_end(&t);
    int rc = pq_tw_error(&t);
    if (rc) {
        rc = ing_err_set(&w->ferr, rc, "no memory for the Parquet footer");
        goto out;
    }
    if (meta.len > UINT32_MAX) {
        rc = ing_err_set(&w->ferr, ING_ETOOBIG, "Parquet footer passed 4 GiB");
        goto out;
    }
    uint8_t tail[8];
    pq_put_le32(tail, (uint32_t)meta.len);
    memcpy(tail + 4, "PAR1", 4);
    rc = out_add(w, meta.data, meta.len);
    if (!rc)
        rc = out_add(w, tail, sizeof(tail));
    if (!rc)
        rc = out_flush(w);
out:
    buf_free(&meta);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static void free_writer(struct pq_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    for (int i = 0; w->cols && i < w->ncols; i++) {
        struct pq_col *c = &w->cols[i];
        big_free(&c->vals);
        big_release(c->idx, c->idx_bytes);
        free(c->run_key);
        free(c->run_len);
        big_free(&c->pages);
        free(c->segs);
        big_free(&c->dict);
        free(c->dict_off);
        free(c->dict_hash);
        free(c->slots);
        buf_free(&c->smin);
        buf_free(&c->smax);
    }
    free(w->cols);
    buf_free(&w->raw);
    buf_free(&w->hdr);
    buf_free(&w->lev_scratch);
    free(w->cut_list);
    for (int i = 0; w->spans && i < w->nspans; i++)
        free(w->spans[i].ranges);
    free(w->spans);
    free(w->span_of_first);
    free(w->span_cover);
    buf_free(&w->footer_rgs);
    pq_codec_free(w->cc);
    free(w->created_by);
    free(w->path);
    free(w);
}

int pq_writer_open(struct pq_writer **out, const struct pq_schema *s, const char *path,
                   const struct pq_writer_opts *opts, struct ing_err *err)
{
    *out = NULL;
    if (!s || !s->finished)
        return ing_err_set(err, ING_EINVAL, "Parquet schema not finished");
    if (s->invalid)
        return ing_err_set(err, ING_EINVAL, "invalid Parquet schema: %s", s->why);
    struct pq_writer *w = xcalloc(1, sizeof(*w));
    int rc = 0;
    w->fd = -1;
    w->schema = s;
    w->path = xstrdup(path);
    w->codec = PQ_CODEC_ZSTD;
    /* Level 1: on ingestion data it compresses within 2% of level 3 (about DuckDB's size on the
     * loyalty benchmark) and takes a fifth less CPU time of the whole run. */
    int level = 1;
    w->row_group_bytes = 64 * PQ_MIB;
    w->page_bytes = PQ_MIB;
    w->dict_max_bytes = PQ_MIB;
    const char *created_by = PQ_DEFAULT_CREATED_BY;
    if (opts) {
        w->codec = opts->codec;
        if (opts->zstd_level)
            level = opts->zstd_level;
        if (opts->row_group_bytes)
            w->row_group_bytes = opts->row_group_bytes;
        if (opts->page_bytes)
            w->page_bytes = opts->page_bytes;
        if (opts->dict_max_bytes)
            w->dict_max_bytes = opts->dict_max_bytes;
        if (opts->created_by)
            created_by = opts->created_by;
    }
    if (w->dict_max_bytes > PQ_DICT_HARD_MAX)
        w->dict_max_bytes = PQ_DICT_HARD_MAX;
    w->created_by = xstrdup(created_by);
    rc = pq_codec_new(&w->cc, w->codec, level, err);
    if (rc)
        goto out;
    w->ncols = s->ncols;
    /* struct pq_col is cache-line aligned, which calloc does not promise. */
    size_t cols_bytes = (size_t)(w->ncols ? w->ncols : 1) * sizeof(*w->cols);
    w->cols = aligned_alloc(_Alignof(struct pq_col), cols_bytes);
    if (!w->cols)
        die_oom();
    memset(w->cols, 0, cols_bytes);
    w->cut_list = xcalloc((size_t)w->ncols + 1, sizeof(int));
    /* Spans and null sets do not overlap and hold a column or more. */
    w->spans = xcalloc((size_t)w->ncols + 1, sizeof(*w->spans));
    w->last_set = -1;
    w->span_of_first = xmalloc(((size_t)w->ncols + 1) * sizeof(int));
    w->span_cover = xmalloc(((size_t)w->ncols + 1) * sizeof(int));
    for (int i = 0; i <= w->ncols; i++)
        w->span_of_first[i] = w->span_cover[i] = -1;
    for (int i = 0; i < w->ncols; i++) {
        struct pq_col *c = &w->cols[i];
        c->desc = &s->cols[i];
        c->phys = s->nodes[c->desc->node].phys;
        c->max_def = c->desc->max_def;
        c->max_rep = c->desc->max_rep;
        c->lev_bytes = (uint8_t)((c->max_def ? 1 : 0) + (c->max_rep ? 1 : 0));
        if (c->max_def > 0xFFFF || c->max_rep > 0xFFFF) {
            rc = ing_err_set(err, ING_ETOOBIG, "column %s is nested too deeply", c->desc->path);
            goto out;
        }
        reset_chunk(c);
        vals_reset(c);
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = ing_err_errno(err, errno, "open %s", path);
        goto out;
    }
    rc = out_add(w, "PAR1", 4);
    if (rc) {
        if (err)
            *err = w->ferr;
        goto out;
    }
    *out = w;
    w = NULL;
out:
    free_writer(w);
    return rc;
}

int pq_writer_close(struct pq_writer *w, struct pq_file_info *info, struct ing_err *err)
{
    if (!w)
        return ing_err_set(err, ING_EINVAL, "no Parquet writer");
    if (!w->failed && w->misuse) {
        ing_err_set(&w->ferr, ING_EINVAL, "%s", w->misuse_msg);
        fail(w, ING_EINVAL);
    }
    int rc = 0;
    spans_apply_all(w);
    if (!w->failed) {
        for (int i = 0; i < w->ncols && !w->failed; i++)
            if (w->cols[i].rows != w->rg_rows) {
                ing_err_set(&w->ferr, ING_EINVAL, "values written after the last end_row (%s)",
                            w->cols[i].desc->path);
                fail(w, ING_EINVAL);
            }
    }
    if (!w->failed) {
        rc = flush_row_group(w);
        if (!rc)
            rc = write_footer(w);
        if (!rc && fsync(w->fd) != 0)
            rc = ing_err_errno(&w->ferr, errno, "fsync %s", w->path);
        if (!rc) {
            int fd = w->fd;
            w->fd = -1;
            if (close(fd) != 0)
                rc = ing_err_errno(&w->ferr, errno, "close %s", w->path);
        }
        if (rc)
            fail(w, rc);
    }
    if (w->failed)
        rc = report(w, err);
    else if (info) {
        info->rows = w->rows;
        info->bytes = w->pos;
        info->row_groups = w->row_groups;
    }
    free_writer(w);
    return rc;
}

void pq_writer_abort(struct pq_writer *w)
{
    free_writer(w);
}
