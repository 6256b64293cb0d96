/*
 * pq_reader.c - streaming Parquet reader: footer and schema, column chunks and pages, record
 * assembly and JSON rendering; see pq_reader.h. Written from the Parquet format documents
 * (README, parquet.thrift, Encodings.md, LogicalTypes.md, Compression.md).
 *
 * Layout: "PAR1" <column chunks> <FileMetaData (Thrift compact)> <len:le32> "PAR1".
 * Each column chunk is read page by page (pread of the header, then of the body) when the row
 * cursor passes the end of the column's current page; a page is decoded into two level arrays
 * (definition, repetition; one byte per entry, absent when the max level is 0) and a value
 * array (fixed-width little-endian bytes, or slices into page buffers for BYTE_ARRAY /
 * FIXED_LEN_BYTE_ARRAY). Entries before the current row are dropped first, so a column holds
 * one page (plus the part of a row begun on earlier pages). Rows are cut at repetition level 0
 * and assembled
 * recursively over the schema tree: a node is null when the first entry of its range is
 * defined below the node's level, and a repeated node splits its range where the repetition
 * level equals the node's own.
 */
#include "parquet/pq_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parquet/pq_decode.h"
#include "parquet/pq_encode.h"
#include "parquet/pq_thrift.h"
#include "parquet/pq_uncompress.h"
#include "util/date.h"
#include "util/mem.h"
#include "util/utf8.h"

#define PQ_MIB ((size_t)1 << 20)
#define PQ_MAX_NODES (1 << 17)          /* schema elements */
#define PQ_MAX_NAME 4096                /* bytes in one field name */
#define PQ_MAX_FIXED_LEN (1 << 20)      /* FIXED_LEN_BYTE_ARRAY type_length */
#define PQ_MAX_RANGE_CELLS ((size_t)1 << 22) /* (max repetition + 1) * columns */
#define PQ_MAX_DECIMAL_BYTES 256
#define PQ_MAX_DECIMAL_SCALE 1000

/* parquet.thrift enums */
enum { PT_DATA_PAGE = 0, PT_INDEX_PAGE = 1, PT_DICTIONARY_PAGE = 2, PT_DATA_PAGE_V2 = 3 };
enum { PE_PLAIN = 0, PE_PLAIN_DICTIONARY = 2, PE_RLE = 3, PE_BIT_PACKED = 4,
       PE_DELTA_BINARY_PACKED = 5, PE_DELTA_LENGTH_BYTE_ARRAY = 6, PE_DELTA_BYTE_ARRAY = 7,
       PE_RLE_DICTIONARY = 8, PE_BYTE_STREAM_SPLIT = 9 };
/* ConvertedType */
enum { CT_UTF8 = 0, CT_MAP = 1, CT_MAP_KEY_VALUE = 2, CT_LIST = 3, CT_ENUM = 4, CT_DECIMAL = 5,
       CT_DATE = 6, CT_TIME_MILLIS = 7, CT_TIME_MICROS = 8, CT_TIMESTAMP_MILLIS = 9,
       CT_TIMESTAMP_MICROS = 10, CT_UINT_8 = 11, CT_UINT_64 = 14, CT_INT_8 = 15, CT_INT_64 = 18,
       CT_JSON = 19, CT_BSON = 20, CT_INTERVAL = 21 };
/* LogicalType union members */
enum { LT_NONE = 0, LT_STRING = 1, LT_MAP = 2, LT_LIST = 3, LT_ENUM = 4, LT_DECIMAL = 5,
       LT_DATE = 6, LT_TIME = 7, LT_TIMESTAMP = 8, LT_INTEGER = 10, LT_UNKNOWN = 11,
       LT_JSON = 12, LT_BSON = 13, LT_UUID = 14, LT_FLOAT16 = 15 };

/* One SchemaElement as read from the footer (strings borrowed from the footer buffer). */
struct selem {
    const uint8_t *name;
    size_t name_len;
    int type, type_length, rep, num_children, converted, scale, precision;
    int logical;                /* LT_* */
    int lt_unit;                /* TIME/TIMESTAMP: 0 millis, 1 micros, 2 nanos */
    bool lt_utc;
    int lt_bits;                /* INTEGER */
    bool lt_signed;
    int lt_scale, lt_precision; /* DECIMAL */
};

/* Column chunk metadata of one row group. */
struct cmeta {
    int64_t num_values, total_comp, data_off, dict_off;
    int8_t type, codec;
};

struct rgroup {
    int64_t num_rows;
    struct cmeta *cols;
};

struct slice {
    const uint8_t *p;
    size_t n;
};

/* A buffer holding page data (read, decompressed or decoded). It is released to the spares
 * once the column's window has dropped every entry before `until` (an entry number within the
 * column chunk); dictionary buffers keep UINT64_MAX until the chunk ends. */
struct block {
    uint8_t *p;
    size_t cap;
    uint64_t until;
};

/* Entry range of one column at one repetition depth. */
struct range {
    size_t s, e;
};

/* Decoded state of one column in the current row group: a window of entries (levels and
 * values) of the column chunk, from the start of the current row to the end of the last page
 * read. Pages are read one at a time when the row cursor passes the end of the window. */
struct rcol {
    const struct pq_rnode *leaf;
    int max_def, max_rep;
    size_t width;              /* fixed value width in bytes; 0 for slice types */
    uint8_t *def, *rep;
    size_t nent, def_cap, rep_cap;
    uint8_t *fv;               /* fixed-width values */
    struct slice *sv;          /* BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY values */
    size_t nval, fv_cap, sv_cap;
    uint8_t *dfv;              /* dictionary */
    struct slice *dsv;
    size_t ndict, dfv_cap, dsv_cap;
    bool has_dict;
    /* rows (window indices) */
    size_t row_s, row_e, row_v;
    size_t scan_e, scan_v;     /* rendering cursor */
    /* the column chunk, read page by page */
    int64_t ch_start;          /* file offset of its first page */
    size_t ch_len, ch_off;     /* its length; where the next page header is */
    int64_t ch_values;         /* entries its metadata declares */
    int codec;
    uint64_t base;             /* entries of the chunk dropped before the window */
    struct block *blocks;      /* page buffers the window (or the dictionary) still uses */
    size_t nblocks, blocks_cap;
};

struct pq_reader {
    struct pq_reader_opts opts;
    int fd;
    const uint8_t *mem;        /* memory mode */
    int64_t file_size;
    int64_t data_end;          /* where the footer starts */
    char *path;                /* for messages; "" in memory mode */

    uint8_t *footer;
    struct pq_rnode *nodes;
    int nnodes;
    int *col_node;             /* column -> node id */
    int ncols;
    int max_rep;
    char *created_by;

    struct rgroup *rgs;
    int nrgs;
    int64_t num_rows;

    /* iteration */
    int rg;                    /* current row group, rg_begin - 1 before the first */
    int rg_begin, rg_end;      /* the row groups read: [rg_begin, rg_end) */
    int64_t row_base;          /* rows of the file before rg_begin */
    int64_t rg_row, rg_rows;   /* rows handed out in / held by the current row group */
    int64_t row;               /* 1-based row in the file */
    bool done;                 /* pq_reader_next returned 0 */
    int failed;                /* sticky error of pq_reader_next */
    struct ing_err ferr;

    struct rcol *cols;
    struct range *rng;         /* (max_rep + 1) * ncols */
    struct block *spare;       /* released page buffers, reused by size */
    size_t nspare, spare_cap;
    uint8_t *raw;              /* scratch: a compressed page as read */
    size_t raw_cap;
    uint8_t *hdr;              /* scratch: the bytes read to parse a page header */
    size_t hdr_cap;
    size_t mem_used;           /* bytes allocated for decoded data, against the cap */
    uint32_t *idx;             /* scratch: dictionary indices */
    size_t idx_cap;
    uint64_t *dvals;           /* scratch: delta decoded values */
    size_t dvals_cap, dvals2_cap;
    uint64_t *dvals2;
    struct pq_unc *unc;
    struct buf keybuf;         /* scratch for map keys that are not strings */
    char **jkey;               /* per node: its name as a JSON key with the colon, or NULL when
                                  the name is not UTF-8 (rows then fail when they reach it) */
    size_t *jkey_len;
};

/* ---------------------------------------------------------------- errors */

static int rd_err(struct pq_reader *r, struct ing_err *err, int code, int rg, int column,
                  int64_t offset, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Fill err with the file, row group, column path and offset; returns code. */
static int rd_err(struct pq_reader *r, struct ing_err *err, int code, int rg, int column,
                  int64_t offset, const char *fmt, ...)
{
    if (!err)
        return code;
    char msg[ING_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *path = column >= 0 && column < r->ncols ? r->nodes[r->col_node[column]].path : "";
    if (rg >= 0 && column >= 0)
        ing_err_set(err, code, "Parquet row group %d, column %s: %s", rg, path, msg);
    else if (rg >= 0)
        ing_err_set(err, code, "Parquet row group %d: %s", rg, msg);
    else
        ing_err_set(err, code, "Parquet: %s", msg);
    if (column >= 0)
        ing_err_field(err, path);
    if (r->path && r->path[0] && !err->file[0])
        ing_err_file(err, r->path);
    err->offset = offset;
    return code;
}

/* ---------------------------------------------------------------- input */

static int read_at(struct pq_reader *r, int64_t off, void *dst, size_t n, struct ing_err *err)
{
    if (off < 0 || (uint64_t)off > (uint64_t)r->file_size ||
        n > (uint64_t)(r->file_size - off))
        return rd_err(r, err, ING_ESYNTAX, -1, -1, off, "read of %zu bytes past the end", n);
    if (r->mem) {
        if (n)
            memcpy(dst, r->mem + off, n);
        return 0;
    }
    uint8_t *p = dst;
    while (n) {
        ssize_t got = pread(r->fd, p, n, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int rc = ing_err_errno(err, errno, "read %s", r->path);
            if (err)
                err->offset = off;
            return rc;
        }
        if (got == 0)
            return rd_err(r, err, ING_ESYNTAX, -1, -1, off, "the file shrank while being read");
        p += got;
        off += got;
        n -= (size_t)got;
    }
    return 0;
}

/* ---------------------------------------------------------------- memory with a cap */

static int charge(struct pq_reader *r, size_t add)
{
    if (add > r->opts.max_row_group_bytes || r->mem_used > r->opts.max_row_group_bytes - add)
        return ING_ETOOBIG;
    r->mem_used += add;
    return 0;
}

/* Grow *p (of *cap elements of `elem` bytes) to hold `need`; charged against the cap. */
static int grow(struct pq_reader *r, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    if (nc > SIZE_MAX / elem)
        return ING_ETOOBIG;
    if (charge(r, (nc - *cap) * elem)) {
        nc = need; /* try the exact size before giving up */
        if (nc > SIZE_MAX / elem || charge(r, (nc - *cap) * elem))
            return ING_ETOOBIG;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) {
        r->mem_used -= (nc - *cap) * elem;
        return ING_ENOMEM;
    }
    *p = q;
    *cap = nc;
    return 0;
}

static void block_keep(struct block **arr, size_t *n, size_t *cap, struct block b)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = b;
}

static void spare_free(struct pq_reader *r);

/* A page buffer of column col, kept until released by block_release_upto. Released buffers are
 * reused (the smallest that fits): fresh allocations of page-sized buffers for every page would
 * each be mapped and faulted in again. */
static int block_new(struct pq_reader *r, struct rcol *col, size_t n, uint8_t **out)
{
    *out = NULL;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < r->nspare; i++)
        if (r->spare[i].cap >= n && (best == SIZE_MAX || r->spare[i].cap < r->spare[best].cap))
            best = i;
    struct block b;
    if (best != SIZE_MAX) {
        b = r->spare[best];
        r->spare[best] = r->spare[--r->nspare];
    } else {
        if (charge(r, n)) {
            spare_free(r); /* unused spares count against the cap too */
            if (charge(r, n))
                return ING_ETOOBIG;
        }
        b.p = malloc(n ? n : 1);
        b.cap = n;
        if (!b.p) {
            r->mem_used -= n;
            return ING_ENOMEM;
        }
    }
    b.until = UINT64_MAX;
    block_keep(&col->blocks, &col->nblocks, &col->blocks_cap, b);
    *out = b.p;
    return 0;
}

static void spare_free(struct pq_reader *r)
{
    for (size_t i = 0; i < r->nspare; i++) {
        free(r->spare[i].p);
        r->mem_used -= r->spare[i].cap;
    }
    r->nspare = 0;
}

/* Hand a buffer to the spares; beyond a few per column it is freed, so spares stay near one
 * page per column. */
static void block_release(struct pq_reader *r, struct block b)
{
    if (r->nspare < 2 * (size_t)r->ncols + 8) {
        block_keep(&r->spare, &r->nspare, &r->spare_cap, b);
        return;
    }
    free(b.p);
    r->mem_used -= b.cap;
}

/* Release the buffers of col whose entries all lie before chunk entry `upto`. */
static void block_release_upto(struct pq_reader *r, struct rcol *col, uint64_t upto)
{
    size_t kept = 0;
    for (size_t i = 0; i < col->nblocks; i++) {
        if (col->blocks[i].until <= upto)
            block_release(r, col->blocks[i]);
        else
            col->blocks[kept++] = col->blocks[i];
    }
    col->nblocks = kept;
}

static void blocks_free(struct pq_reader *r)
{
    for (int c = 0; r->cols && c < r->ncols; c++)
        block_release_upto(r, &r->cols[c], UINT64_MAX);
    spare_free(r);
}

/* ---------------------------------------------------------------- footer */

/* TimeUnit union: {1: MILLIS, 2: MICROS, 3: NANOS}, each an empty struct. */
static int parse_time_unit(struct pq_tr *t)
{
    int unit = -1;
    int16_t id;
    enum pq_ttype ty;
    pq_tr_struct_begin(t);
    while (pq_tr_field(t, &id, &ty)) {
        if (ty == PQ_T_STRUCT && id >= 1 && id <= 3)
            unit = id - 1;
        pq_tr_skip(t, ty);
    }
    return unit;
}

static void parse_logical(struct pq_tr *t, struct selem *e)
{
    int16_t id, fid;
    enum pq_ttype ty, fty;
    pq_tr_struct_begin(t);
    while (pq_tr_field(t, &id, &ty)) {
        if (ty != PQ_T_STRUCT) {
            pq_tr_skip(t, ty);
            continue;
        }
        e->logical = id;
        pq_tr_struct_begin(t);
        while (pq_tr_field(t, &fid, &fty)) {
            if (id == LT_DECIMAL && fid == 1)
                e->lt_scale = pq_tr_i32(t, fty);
            else if (id == LT_DECIMAL && fid == 2)
                e->lt_precision = pq_tr_i32(t, fty);
            else if ((id == LT_TIME || id == LT_TIMESTAMP) && fid == 1)
                e->lt_utc = pq_tr_bool(t, fty);
            else if ((id == LT_TIME || id == LT_TIMESTAMP) && fid == 2 && fty == PQ_T_STRUCT)
                e->lt_unit = parse_time_unit(t);
            else if (id == LT_INTEGER && fid == 1)
                e->lt_bits = pq_tr_i32(t, fty);
            else if (id == LT_INTEGER && fid == 2)
                e->lt_signed = pq_tr_bool(t, fty);
            else
                pq_tr_skip(t, fty);
        }
    }
}

static void parse_selem(struct pq_tr *t, struct selem *e)
{
    memset(e, 0, sizeof(*e));
    e->type = e->rep = e->num_children = e->converted = e->lt_unit = -1;
    e->lt_signed = true;
    int16_t id;
    enum pq_ttype ty;
    pq_tr_struct_begin(t);
    while (pq_tr_field(t, &id, &ty)) {
        switch (id) {
        case 1: e->type = pq_tr_i32(t, ty); break;
        case 2: e->type_length = pq_tr_i32(t, ty); break;
        case 3: e->rep = pq_tr_i32(t, ty); break;
        case 4: pq_tr_binary(t, ty, &e->name, &e->name_len); break;
        case 5: e->num_children = pq_tr_i32(t, ty); break;
        case 6: e->converted = pq_tr_i32(t, ty); break;
        case 7: e->scale = pq_tr_i32(t, ty); break;
        case 8: e->precision = pq_tr_i32(t, ty); break;
        case 10:
            if (ty == PQ_T_STRUCT)
                parse_logical(t, e);
            else
                pq_tr_skip(t, ty);
            break;
        default: pq_tr_skip(t, ty); break;
        }
    }
}

/* ColumnMetaData into cm; *seen collects which required fields were there. */
static void parse_colmeta(struct pq_tr *t, struct cmeta *cm, unsigned *seen)
{
    int16_t id;
    enum pq_ttype ty;
    pq_tr_struct_begin(t);
    while (pq_tr_field(t, &id, &ty)) {
        switch (id) {
        case 1: {
            int32_t v = pq_tr_i32(t, ty);
            cm->type = (int8_t)(v >= 0 && v <= 7 ? v : -1);
            *seen |= 1u;
            break;
        }
        case 4: {
            int32_t v = pq_tr_i32(t, ty);
            cm->codec = (int8_t)(v >= 0 && v < 100 ? v : 99);
            *seen |= 2u;
            break;
        }
        case 5: cm->num_values = pq_tr_i64(t, ty); *seen |= 4u; break;
        case 7: cm->total_comp = pq_tr_i64(t, ty); *seen |= 8u; break;
        case 9: cm->data_off = pq_tr_i64(t, ty); *seen |= 16u; break;
        case 11: cm->dict_off = pq_tr_i64(t, ty); break;
        default: pq_tr_skip(t, ty); break;
        }
    }
}

/* One ColumnChunk. Returns 0, or a message in *why. */
static void parse_chunk(struct pq_tr *t, struct cmeta *cm, const char **why)
{
    int16_t id;
    enum pq_ttype ty;
    unsigned seen = 0;
    memset(cm, 0, sizeof(*cm));
    cm->type = -1;
    pq_tr_struct_begin(t);
    while (pq_tr_field(t, &id, &ty)) {
        if (id == 1) {
            const uint8_t *p;
            size_t n;
            pq_tr_binary(t, ty, &p, &n);
            if (n)
                *why = "column chunks stored in other files are not supported";
        } else if (id == 3 && ty == PQ_T_STRUCT) {
            parse_colmeta(t, cm, &seen);
        } else if (id == 8 || id == 9) {
            *why = "encrypted columns are not supported";
            pq_tr_skip(t, ty);
        } else {
            pq_tr_skip(t, ty);
        }
    }
    if (!pq_tr_error(t) && !*why && seen != 31u)
        *why = "column chunk metadata lacks a required field";
}

static int parse_row_groups(struct pq_reader *r, struct pq_tr *t, enum pq_ttype ty,
                            struct ing_err *err)
{
    enum pq_ttype et;
    size_t n = pq_tr_list(t, ty, &et);
    if (pq_tr_error(t))
        return 0; /* reported by the caller */
    if (n && et != PQ_T_STRUCT)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "row_groups is not a list of structs");
    if (n > INT16_MAX * 2 + 1)
        return rd_err(r, err, ING_ETOOBIG, -1, -1, -1, "%zu row groups", n);
    r->rgs = xcalloc(n ? n : 1, sizeof(*r->rgs));
    for (size_t g = 0; g < n && !pq_tr_error(t); g++) {
        struct rgroup *rg = &r->rgs[g];
        r->nrgs++;
        bool have_rows = false, have_cols = false;
        int16_t id;
        enum pq_ttype fty;
        pq_tr_struct_begin(t);
        while (pq_tr_field(t, &id, &fty)) {
            if (id == 1 && !have_cols) {
                size_t nc = pq_tr_list(t, fty, &et);
                if (pq_tr_error(t))
                    break;
                if (nc != (size_t)r->ncols || (nc && et != PQ_T_STRUCT))
                    return rd_err(r, err, ING_ESYNTAX, (int)g, -1, -1,
                                  "%zu column chunks for %d columns", nc, r->ncols);
                rg->cols = xcalloc(nc ? nc : 1, sizeof(*rg->cols));
                for (size_t c = 0; c < nc && !pq_tr_error(t); c++) {
                    const char *why = NULL;
                    parse_chunk(t, &rg->cols[c], &why);
                    if (why && !pq_tr_error(t))
                        return rd_err(r, err, ING_ESYNTAX, (int)g, (int)c, -1, "%s", why);
                }
                have_cols = true;
            } else if (id == 3) {
                rg->num_rows = pq_tr_i64(t, fty);
                have_rows = true;
            } else {
                pq_tr_skip(t, fty);
            }
        }
        if (pq_tr_error(t))
            break;
        if (!have_rows || !have_cols)
            return rd_err(r, err, ING_ESYNTAX, (int)g, -1, -1, "row group lacks %s",
                          have_rows ? "columns" : "num_rows");
        if (rg->num_rows < 0 || rg->num_rows > INT64_MAX - r->num_rows)
            return rd_err(r, err, ING_ESYNTAX, (int)g, -1, -1, "bad num_rows %" PRId64,
                          rg->num_rows);
        r->num_rows += rg->num_rows;
    }
    return 0;
}

/* ---------------------------------------------------------------- schema */

static bool is_list_annotated(const struct selem *e)
{
    return e->logical == LT_LIST || (e->logical == LT_NONE && e->converted == CT_LIST);
}

static bool is_map_annotated(const struct selem *e)
{
    return e->logical == LT_MAP ||
           (e->logical == LT_NONE && (e->converted == CT_MAP || e->converted == CT_MAP_KEY_VALUE));
}

/* What a leaf's values mean; annotations that do not fit the physical type are ignored. */
static void leaf_rtype(const struct pq_reader *r, const struct selem *e, struct pq_rnode *n)
{
    enum pq_phys ph = n->phys;
    int lt = e->logical, ct = e->converted;
    n->utc = true;
    n->unit = PQ_UNIT_MILLIS;
    switch (ph) {
    case PQ_BOOLEAN: n->rtype = PQ_RT_BOOL; break;
    case PQ_INT32:
    case PQ_INT64: n->rtype = PQ_RT_INT; break;
    case PQ_INT96: n->rtype = PQ_RT_INT96; break;
    case PQ_FLOAT: n->rtype = PQ_RT_FLOAT; break;
    case PQ_DOUBLE: n->rtype = PQ_RT_DOUBLE; break;
    case PQ_BYTE_ARRAY:
        n->rtype = r->opts.binary_as_string ? PQ_RT_STRING : PQ_RT_BINARY;
        break;
    case PQ_FIXED_LEN_BYTE_ARRAY: n->rtype = PQ_RT_BINARY; break;
    }
    bool i32 = ph == PQ_INT32, i64 = ph == PQ_INT64, ba = ph == PQ_BYTE_ARRAY;
    bool fixed = ph == PQ_FIXED_LEN_BYTE_ARRAY;
    int scale = -1, precision = -1, unit = -1, bits = 0;
    bool is_signed = true;
    int kind = -1; /* LT_* meaning after merging the two annotation systems */
    if (lt != LT_NONE) {
        kind = lt;
        scale = e->lt_scale;
        precision = e->lt_precision;
        unit = e->lt_unit;
        n->utc = e->lt_utc;
        bits = e->lt_bits;
        is_signed = e->lt_signed;
    } else if (ct >= 0) {
        switch (ct) {
        case CT_UTF8: kind = LT_STRING; break;
        case CT_ENUM: kind = LT_ENUM; break;
        case CT_DECIMAL: kind = LT_DECIMAL; scale = e->scale; precision = e->precision; break;
        case CT_DATE: kind = LT_DATE; break;
        case CT_TIME_MILLIS: kind = LT_TIME; unit = 0; break;
        case CT_TIME_MICROS: kind = LT_TIME; unit = 1; break;
        case CT_TIMESTAMP_MILLIS: kind = LT_TIMESTAMP; unit = 0; break;
        case CT_TIMESTAMP_MICROS: kind = LT_TIMESTAMP; unit = 1; break;
        case CT_JSON: kind = LT_JSON; break;
        case CT_BSON: kind = LT_BSON; break;
        case CT_INTERVAL: kind = 100; break;
        default:
            if (ct >= CT_UINT_8 && ct <= CT_UINT_64) {
                kind = LT_INTEGER;
                is_signed = false;
                bits = 8 << (ct - CT_UINT_8);
            } else if (ct >= CT_INT_8 && ct <= CT_INT_64) {
                kind = LT_INTEGER;
                bits = 8 << (ct - CT_INT_8);
            }
            break;
        }
    }
    switch (kind) {
    case LT_STRING:
        if (ba)
            n->rtype = PQ_RT_STRING;
        break;
    case LT_ENUM:
        if (ba)
            n->rtype = PQ_RT_ENUM;
        break;
    case LT_JSON:
        if (ba)
            n->rtype = PQ_RT_JSON;
        break;
    case LT_BSON:
        if (ba)
            n->rtype = PQ_RT_BINARY;
        break;
    case LT_DECIMAL:
        if ((i32 || i64 || ba || fixed) && precision > 0 && scale >= 0 && scale <= precision &&
            scale <= PQ_MAX_DECIMAL_SCALE) {
            n->rtype = PQ_RT_DECIMAL;
            n->scale = scale;
            n->precision = precision;
        }
        break;
    case LT_DATE:
        if (i32)
            n->rtype = PQ_RT_DATE;
        break;
    case LT_TIME:
        if ((i32 && unit == 0) || (i64 && (unit == 1 || unit == 2))) {
            n->rtype = PQ_RT_TIME;
            n->unit = (enum pq_unit)unit;
        }
        break;
    case LT_TIMESTAMP:
        if (i64 && unit >= 0 && unit <= 2) {
            n->rtype = PQ_RT_TIMESTAMP;
            n->unit = (enum pq_unit)unit;
        }
        break;
    case LT_INTEGER:
        if ((i32 && (bits == 8 || bits == 16 || bits == 32)) || (i64 && bits == 64))
            n->rtype = is_signed ? PQ_RT_INT : PQ_RT_UINT;
        break;
    case LT_UNKNOWN:
        n->rtype = PQ_RT_NULL;
        break;
    case LT_UUID:
        if (fixed && n->type_length == 16)
            n->rtype = PQ_RT_UUID;
        break;
    case LT_FLOAT16:
        if (fixed && n->type_length == 2)
            n->rtype = PQ_RT_FLOAT16;
        break;
    case 100: /* INTERVAL */
        if (fixed && n->type_length == 12)
            n->rtype = PQ_RT_INTERVAL;
        break;
    default:
        break;
    }
}

struct sbuild {
    struct pq_reader *r;
    const struct selem *els;
    size_t nels, at;
    int ncols;
    struct ing_err *err;
};

static int build_node(struct sbuild *b, int parent, int depth)
{
    struct pq_reader *r = b->r;
    if (depth > r->opts.max_depth)
        return rd_err(r, b->err, ING_ETOOBIG, -1, -1, -1,
                      "the schema is nested deeper than %d levels", r->opts.max_depth);
    if (b->at >= b->nels)
        return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                      "num_children asks for more schema elements than the %zu there are",
                      b->nels);
    const struct selem *e = &b->els[b->at++];
    int id = r->nnodes++;
    struct pq_rnode *n = &r->nodes[id];
    memset(n, 0, sizeof(*n));
    n->parent = parent;
    n->column = -1;
    n->list_elem = n->map_key = n->map_value = -1;
    if (!e->name || e->name_len == 0 || e->name_len > PQ_MAX_NAME ||
        memchr(e->name, 0, e->name_len))
        return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                      "schema element %zu has no usable name", b->at - 1);
    n->name = xstrndup((const char *)e->name, e->name_len);
    if (parent < 0) {
        n->rep = PQ_REQUIRED;
        n->path = xstrdup("");
    } else {
        if (e->rep < 0 || e->rep > 2)
            return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                          "schema element '%s' has a bad repetition", n->name);
        n->rep = (enum pq_repetition)e->rep;
        const struct pq_rnode *p = &r->nodes[parent];
        n->path = p->path[0] ? xasprintf("%s.%s", p->path, n->name) : xstrdup(n->name);
        n->def_level = p->def_level + (n->rep != PQ_REQUIRED);
        n->rep_level = p->rep_level + (n->rep == PQ_REPEATED);
    }
    bool group = e->num_children > 0 || (parent < 0 && e->num_children >= 0);
    if (e->num_children == 0 && e->type < 0)
        group = true; /* an empty group: refused below */
    if (group) {
        int nc = e->num_children;
        if (nc <= 0)
            return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1, "group '%s' has no fields",
                          n->name);
        if ((size_t)nc > b->nels - b->at)
            return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                          "group '%s' claims %d fields, only %zu schema elements follow",
                          n->name, nc, b->nels - b->at);
        int *kids = xmalloc((size_t)nc * sizeof(int));
        n->children = kids;
        n->nchildren = nc;
        n->col_lo = b->ncols;
        for (int i = 0; i < nc; i++) {
            kids[i] = r->nnodes;
            int rc = build_node(b, id, depth + 1);
            if (rc)
                return rc;
        }
        n = &r->nodes[id];
        n->col_hi = b->ncols;
        n->kind = PQ_RK_STRUCT;
        const struct pq_rnode *k0 = &r->nodes[kids[0]];
        if (is_list_annotated(e) && nc == 1 && k0->rep == PQ_REPEATED) {
            /* LogicalTypes.md backward-compatibility rules for the element type. */
            n->kind = PQ_RK_LIST;
            size_t tl = strlen(n->name);
            bool tuple = strlen(k0->name) == tl + 6 && !strncmp(k0->name, n->name, tl) &&
                         !strcmp(k0->name + tl, "_tuple");
            if (k0->is_leaf || k0->nchildren > 1 || !strcmp(k0->name, "array") || tuple)
                n->list_elem = kids[0];
            else
                n->list_elem = k0->children[0];
        } else if (is_map_annotated(e) && nc == 1 && k0->rep == PQ_REPEATED && !k0->is_leaf &&
                   k0->nchildren <= 2 && r->nodes[k0->children[0]].is_leaf &&
                   r->nodes[k0->children[0]].rep != PQ_REPEATED) {
            n->kind = PQ_RK_MAP;
            n->map_key = k0->children[0];
            n->map_value = k0->nchildren == 2 ? k0->children[1] : -1;
        }
        return 0;
    }
    if (e->type < 0 || e->type > 7)
        return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                      "leaf '%s' has no valid physical type", n->name);
    n->is_leaf = true;
    n->kind = PQ_RK_VALUE;
    n->phys = (enum pq_phys)e->type;
    if (n->phys == PQ_FIXED_LEN_BYTE_ARRAY) {
        if (e->type_length <= 0 || e->type_length > PQ_MAX_FIXED_LEN)
            return rd_err(r, b->err, ING_ESYNTAX, -1, -1, -1,
                          "FIXED_LEN_BYTE_ARRAY '%s' has type_length %d", n->name,
                          e->type_length);
        n->type_length = e->type_length;
    }
    leaf_rtype(r, e, n);
    n->column = b->ncols++;
    n->col_lo = n->column;
    n->col_hi = n->column + 1;
    return 0;
}

static int build_schema(struct pq_reader *r, const struct selem *els, size_t nels,
                        struct ing_err *err)
{
    if (nels == 0)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "the schema is empty");
    if (nels > PQ_MAX_NODES)
        return rd_err(r, err, ING_ETOOBIG, -1, -1, -1, "the schema has %zu elements", nels);
    r->nodes = xcalloc(nels, sizeof(*r->nodes));
    struct sbuild b = {.r = r, .els = els, .nels = nels, .err = err};
    if (els[0].num_children <= 0)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "the schema root is not a group");
    int rc = build_node(&b, -1, 0);
    if (rc)
        return rc;
    if (b.at != nels)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, -1,
                      "the schema has %zu elements that belong to no group", nels - b.at);
    r->ncols = b.ncols;
    r->col_node = xmalloc((size_t)r->ncols * sizeof(int));
    for (int i = 0; i < r->nnodes; i++) {
        if (r->nodes[i].is_leaf) {
            r->col_node[r->nodes[i].column] = i;
            if (r->nodes[i].rep_level > r->max_rep)
                r->max_rep = r->nodes[i].rep_level;
        }
    }
    if ((size_t)(r->max_rep + 1) * (size_t)r->ncols > PQ_MAX_RANGE_CELLS)
        return rd_err(r, err, ING_ETOOBIG, -1, -1, -1,
                      "%d columns nested %d lists deep are too many", r->ncols, r->max_rep);
    return 0;
}

/* FileMetaData. */
static int parse_footer(struct pq_reader *r, const uint8_t *p, size_t n, struct ing_err *err)
{
    struct pq_tr t;
    pq_tr_init(&t, p, n);
    struct selem *els = NULL;
    bool have_schema = false, have_rgs = false;
    int rc = 0;
    int16_t id;
    enum pq_ttype ty;
    while (pq_tr_field(&t, &id, &ty)) {
        if (id == 2 && !have_schema) {
            enum pq_ttype et;
            size_t ne = pq_tr_list(&t, ty, &et);
            if (pq_tr_error(&t))
                break;
            if (ne && et != PQ_T_STRUCT) {
                rc = rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "schema is not a list of structs");
                goto out;
            }
            if (ne > PQ_MAX_NODES) {
                rc = rd_err(r, err, ING_ETOOBIG, -1, -1, -1, "the schema has %zu elements", ne);
                goto out;
            }
            els = xcalloc(ne ? ne : 1, sizeof(*els));
            for (size_t i = 0; i < ne && !pq_tr_error(&t); i++)
                parse_selem(&t, &els[i]);
            if (pq_tr_error(&t))
                break;
            rc = build_schema(r, els, ne, err);
            if (rc)
                goto out;
            have_schema = true;
        } else if (id == 4 && !have_rgs) {
            if (!have_schema) {
                rc = rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "row groups come before the schema");
                goto out;
            }
            rc = parse_row_groups(r, &t, ty, err);
            if (rc)
                goto out;
            have_rgs = true;
        } else if (id == 6 && ty == PQ_T_BINARY) {
            const uint8_t *s;
            size_t sn;
            pq_tr_binary(&t, ty, &s, &sn);
            if (!pq_tr_error(&t) && !r->created_by)
                r->created_by = xstrndup((const char *)s, sn);
        } else if (id == 8) {
            rc = rd_err(r, err, ING_EINVAL, -1, -1, -1, "encrypted files are not supported");
            goto out;
        } else {
            pq_tr_skip(&t, ty);
        }
    }
    if (pq_tr_error(&t)) {
        rc = rd_err(r, err, pq_tr_error(&t), -1, -1, -1,
                    "footer is corrupt at byte %zu of %zu: %s", pq_tr_offset(&t), n, t.why);
        goto out;
    }
    if (!have_schema || !have_rgs)
        rc = rd_err(r, err, ING_ESYNTAX, -1, -1, -1, "footer lacks the %s",
                    have_schema ? "row groups" : "schema");
out:
    free(els);
    return rc;
}

/* ---------------------------------------------------------------- open / free */

static void opts_defaults(struct pq_reader_opts *o, const struct pq_reader_opts *in)
{
    memset(o, 0, sizeof(*o));
    if (in)
        *o = *in;
    if (!o->max_footer_bytes)
        o->max_footer_bytes = 64 * PQ_MIB;
    if (!o->max_page_bytes)
        o->max_page_bytes = 256 * PQ_MIB;
    if (!o->max_row_group_bytes)
        o->max_row_group_bytes = 2048 * PQ_MIB;
    if (o->max_depth <= 0)
        o->max_depth = 64;
    if (o->max_depth > 250)
        o->max_depth = 250; /* levels are kept in one byte */
}

void pq_reader_free(struct pq_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    for (int i = 0; i < r->nnodes; i++) {
        free((void *)r->nodes[i].name);
        free((void *)r->nodes[i].path);
        free((void *)r->nodes[i].children);
    }
    for (int i = 0; r->jkey && i < r->nnodes; i++)
        free(r->jkey[i]);
    free(r->jkey);
    free(r->jkey_len);
    free(r->nodes);
    free(r->col_node);
    for (int g = 0; r->rgs && g < r->nrgs; g++)
        free(r->rgs[g].cols);
    free(r->rgs);
    for (int c = 0; r->cols && c < r->ncols; c++) {
        struct rcol *col = &r->cols[c];
        free(col->def);
        free(col->rep);
        free(col->fv);
        free(col->sv);
        free(col->dfv);
        free(col->dsv);
    }
    blocks_free(r);
    for (int c = 0; r->cols && c < r->ncols; c++)
        free(r->cols[c].blocks);
    free(r->cols);
    free(r->rng);
    free(r->spare);
    free(r->raw);
    free(r->hdr);
    free(r->idx);
    free(r->dvals);
    free(r->dvals2);
    pq_unc_free(r->unc);
    buf_free(&r->keybuf);
    free(r->footer);
    free(r->created_by);
    free(r->path);
    free(r);
}

static size_t fixed_width(enum pq_phys ph)
{
    switch (ph) {
    case PQ_BOOLEAN: return 1;
    case PQ_INT32:
    case PQ_FLOAT: return 4;
    case PQ_INT64:
    case PQ_DOUBLE: return 8;
    case PQ_INT96: return 12;
    default: return 0;
    }
}

static void render_keys(struct pq_reader *r);

/* Footer, schema, row group metadata; the reader is ready for pq_reader_next. */
static int open_common(struct pq_reader *r, struct ing_err *err)
{
    if (r->file_size < 12)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, 0,
                      "file of %" PRId64 " bytes is too small for Parquet", r->file_size);
    uint8_t head[4], tail[8];
    int rc = read_at(r, 0, head, 4, err);
    if (!rc)
        rc = read_at(r, r->file_size - 8, tail, 8, err);
    if (rc)
        return rc;
    if (!memcmp(tail + 4, "PARE", 4))
        return rd_err(r, err, ING_EINVAL, -1, -1, r->file_size - 4,
                      "encrypted Parquet files are not supported");
    if (memcmp(head, "PAR1", 4) || memcmp(tail + 4, "PAR1", 4))
        return rd_err(r, err, ING_ESYNTAX, -1, -1, 0, "not a Parquet file (no PAR1 magic)");
    uint32_t flen = pq_get_le32(tail);
    if ((int64_t)flen > r->file_size - 12)
        return rd_err(r, err, ING_ESYNTAX, -1, -1, r->file_size - 8,
                      "footer length %u passes the start of the file", flen);
    if (flen > r->opts.max_footer_bytes)
        return rd_err(r, err, ING_ETOOBIG, -1, -1, r->file_size - 8,
                      "footer of %u bytes is larger than the %zu byte limit", flen,
                      r->opts.max_footer_bytes);
    r->data_end = r->file_size - 8 - (int64_t)flen;
    r->footer = malloc(flen ? flen : 1);
    if (!r->footer)
        return rd_err(r, err, ING_ENOMEM, -1, -1, -1, "no memory for a %u byte footer", flen);
    rc = read_at(r, r->data_end, r->footer, flen, err);
    if (rc)
        return rc;
    rc = parse_footer(r, r->footer, flen, err);
    if (rc) {
        if (err && err->offset < 0)
            err->offset = r->data_end;
        return rc;
    }
    free(r->footer); /* everything needed was copied out */
    r->footer = NULL;
    r->cols = xcalloc((size_t)r->ncols, sizeof(*r->cols));
    for (int c = 0; c < r->ncols; c++) {
        struct rcol *col = &r->cols[c];
        col->leaf = &r->nodes[r->col_node[c]];
        col->max_def = col->leaf->def_level;
        col->max_rep = col->leaf->rep_level;
        col->width = fixed_width(col->leaf->phys);
    }
    r->rng = xcalloc((size_t)(r->max_rep + 1) * (size_t)r->ncols, sizeof(*r->rng));
    r->unc = pq_unc_new();
    render_keys(r);
    if (r->opts.first_row_group < 0 || r->opts.first_row_group > r->nrgs ||
        r->opts.num_row_groups < 0 ||
        r->opts.num_row_groups > r->nrgs - r->opts.first_row_group)
        return rd_err(r, err, ING_EINVAL, -1, -1, -1,
                      "row groups %d (+%d) asked for, the file has %d", r->opts.first_row_group,
                      r->opts.num_row_groups, r->nrgs);
    r->rg_begin = r->opts.first_row_group;
    r->rg_end = r->opts.num_row_groups ? r->rg_begin + r->opts.num_row_groups : r->nrgs;
    for (int g = 0; g < r->rg_begin; g++)
        r->row_base += r->rgs[g].num_rows;
    r->rg = r->rg_begin - 1;
    return 0;
}

static struct pq_reader *reader_new(const struct pq_reader_opts *opts, const char *path)
{
    struct pq_reader *r = xcalloc(1, sizeof(*r));
    opts_defaults(&r->opts, opts);
    r->fd = -1;
    r->path = xstrdup(path ? path : "");
    ing_err_clear(&r->ferr);
    return r;
}

int pq_reader_open(struct pq_reader **out, const char *path, const struct pq_reader_opts *opts,
                   struct ing_err *err)
{
    *out = NULL;
    struct pq_reader *r = reader_new(opts, path);
    int rc = 0;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = ing_err_errno(err, errno, "open %s", path);
        goto out;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        rc = ing_err_errno(err, errno, "stat %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rd_err(r, err, ING_EINVAL, -1, -1, -1, "%s is not a regular file", path);
        goto out;
    }
    r->file_size = (int64_t)st.st_size;
    rc = open_common(r, err);
    if (rc)
        goto out;
    *out = r;
    r = NULL;
out:
    pq_reader_free(r);
    return rc;
}

int pq_reader_open_mem(struct pq_reader **out, const void *data, size_t len,
                       const struct pq_reader_opts *opts, struct ing_err *err)
{
    *out = NULL;
    struct pq_reader *r = reader_new(opts, NULL);
    int rc = 0;
    if (len > INT64_MAX) {
        rc = rd_err(r, err, ING_ETOOBIG, -1, -1, -1, "input too large");
        goto out;
    }
    r->mem = data;
    r->file_size = (int64_t)len;
    rc = open_common(r, err);
    if (rc)
        goto out;
    *out = r;
    r = NULL;
out:
    pq_reader_free(r);
    return rc;
}

int64_t pq_reader_num_rows(const struct pq_reader *r)
{
    return r->num_rows;
}

int64_t pq_reader_row_group_rows(const struct pq_reader *r, int rg)
{
    return rg >= 0 && rg < r->nrgs ? r->rgs[rg].num_rows : -1;
}

int pq_reader_num_row_groups(const struct pq_reader *r)
{
    return r->nrgs;
}

size_t pq_reader_ncolumns(const struct pq_reader *r)
{
    return (size_t)r->ncols;
}

const char *pq_reader_column_path(const struct pq_reader *r, int column)
{
    if (column < 0 || column >= r->ncols)
        return "";
    return r->nodes[r->col_node[column]].path;
}

const char *pq_reader_created_by(const struct pq_reader *r)
{
    return r->created_by ? r->created_by : "";
}

int pq_reader_nnodes(const struct pq_reader *r)
{
    return r->nnodes;
}

const struct pq_rnode *pq_reader_node(const struct pq_reader *r, int id)
{
    if (id < 0 || id >= r->nnodes)
        return NULL;
    return &r->nodes[id];
}

const struct pq_rnode *pq_reader_column_node(const struct pq_reader *r, int column)
{
    if (column < 0 || column >= r->ncols)
        return NULL;
    return &r->nodes[r->col_node[column]];
}

int64_t pq_reader_row(const struct pq_reader *r)
{
    return r->row ? r->row_base + r->row : 0;
}

/* ---------------------------------------------------------------- pages */

/* Where a page is, for messages. */
struct pctx {
    struct pq_reader *r;
    struct rcol *col;
    int rg, column, codec;
    int64_t off;
    struct ing_err *err;
};

static int perr(struct pctx *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct pctx *x, int code, const char *fmt, ...)
{
    char msg[ING_ERR_MSG - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rd_err(x->r, x->err, code, x->rg, x->column, x->off, "%s", msg);
}

static int cap_err(struct pctx *x, int rc, const char *what)
{
    if (rc == ING_ETOOBIG)
        return perr(x, rc, "%s would pass the %zu byte row group memory limit", what,
                    x->r->opts.max_row_group_bytes);
    return perr(x, rc, "no memory for %s", what);
}

/* Where decoded values go: the data values or the dictionary of a column. */
struct vsink {
    uint8_t **fv;
    size_t *fv_cap;
    struct slice **sv;
    size_t *sv_cap;
    size_t *count;
};

static int sink_reserve(struct pctx *x, struct vsink *s, size_t n)
{
    struct rcol *col = x->col;
    if (n > SIZE_MAX - *s->count)
        return cap_err(x, ING_ETOOBIG, "values");
    size_t need = *s->count + n;
    int rc;
    if (col->width)
        rc = need > SIZE_MAX / col->width
                 ? ING_ETOOBIG
                 : grow(x->r, (void **)s->fv, s->fv_cap, need * col->width, 1);
    else
        rc = grow(x->r, (void **)s->sv, s->sv_cap, need, sizeof(struct slice));
    return rc ? cap_err(x, rc, "decoded values") : 0;
}

static int decode_plain(struct pctx *x, struct vsink *s, const uint8_t *p, size_t len, size_t n)
{
    struct rcol *col = x->col;
    int rc = sink_reserve(x, s, n);
    if (rc)
        return rc;
    const struct pq_rnode *leaf = col->leaf;
    if (leaf->phys == PQ_BOOLEAN) {
        if ((n + 7) / 8 > len)
            return perr(x, ING_ESYNTAX, "PLAIN booleans: %zu values in %zu bytes", n, len);
        uint8_t *o = *s->fv + *s->count;
        for (size_t i = 0; i < n; i++)
            o[i] = (uint8_t)((p[i >> 3] >> (i & 7)) & 1u);
    } else if (col->width) {
        if (n > len / col->width)
            return perr(x, ING_ESYNTAX, "PLAIN values: %zu values of %zu bytes in %zu bytes", n,
                        col->width, len);
        if (n)
            memcpy(*s->fv + *s->count * col->width, p, n * col->width);
    } else if (leaf->phys == PQ_FIXED_LEN_BYTE_ARRAY) {
        size_t w = (size_t)leaf->type_length;
        if (n > len / w)
            return perr(x, ING_ESYNTAX, "PLAIN values: %zu values of %zu bytes in %zu bytes", n,
                        w, len);
        struct slice *o = *s->sv + *s->count;
        for (size_t i = 0; i < n; i++)
            o[i] = (struct slice){p + i * w, w};
    } else {
        struct slice *o = *s->sv + *s->count;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            if (len - at < 4)
                return perr(x, ING_ESYNTAX, "PLAIN BYTE_ARRAY: value %zu of %zu is cut short", i,
                            n);
            uint32_t vl = pq_get_le32(p + at);
            at += 4;
            if (vl > len - at)
                return perr(x, ING_ESYNTAX,
                            "PLAIN BYTE_ARRAY: value %zu of %zu declares %u bytes, %zu left", i, n,
                            vl, len - at);
            o[i] = (struct slice){p + at, vl};
            at += vl;
        }
    }
    *s->count += n;
    return 0;
}

static int decode_dict_indices(struct pctx *x, struct vsink *s, const uint8_t *p, size_t len,
                               size_t n)
{
    struct rcol *col = x->col;
    struct pq_reader *r = x->r;
    if (!col->has_dict)
        return perr(x, ING_ESYNTAX, "dictionary-encoded page without a dictionary page");
    if (n == 0)
        return 0;
    if (len < 1)
        return perr(x, ING_ESYNTAX, "dictionary indices are missing");
    int bw = p[0];
    if (bw > 32)
        return perr(x, ING_ESYNTAX, "dictionary index bit width %d", bw);
    int rc = grow(r, (void **)&r->idx, &r->idx_cap, n, sizeof(uint32_t));
    if (rc)
        return cap_err(x, rc, "dictionary indices");
    struct ing_err e;
    ing_err_clear(&e);
    rc = pq_rle_decode_u32(p + 1, len - 1, bw, r->idx, n, &e);
    if (rc)
        return perr(x, rc, "dictionary indices: %s", e.msg);
    rc = sink_reserve(x, s, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (r->idx[i] >= col->ndict)
            return perr(x, ING_ESYNTAX, "dictionary index %u of a %zu entry dictionary",
                        r->idx[i], col->ndict);
    if (col->width) {
        uint8_t *o = *s->fv + *s->count * col->width;
        for (size_t i = 0; i < n; i++)
            memcpy(o + i * col->width, col->dfv + (size_t)r->idx[i] * col->width, col->width);
    } else {
        struct slice *o = *s->sv + *s->count;
        for (size_t i = 0; i < n; i++)
            o[i] = col->dsv[r->idx[i]];
    }
    *s->count += n;
    return 0;
}

/* DELTA_BINARY_PACKED of n values into r->dvals (or dvals2); *used as pq_delta_decode. */
static int delta_into(struct pctx *x, const uint8_t *p, size_t len, size_t n, bool second,
                      size_t *used)
{
    struct pq_reader *r = x->r;
    uint64_t **dst = second ? &r->dvals2 : &r->dvals;
    size_t *cap = second ? &r->dvals2_cap : &r->dvals_cap;
    int rc = grow(r, (void **)dst, cap, n ? n : 1, sizeof(uint64_t));
    if (rc)
        return cap_err(x, rc, "delta-decoded values");
    struct ing_err e;
    ing_err_clear(&e);
    rc = pq_delta_decode(p, len, *dst, n, used, &e);
    return rc ? perr(x, rc, "%s", e.msg) : 0;
}

/* Lengths from the delta scratch as slices over data[0..len); false when they do not fit. */
static bool lengths_fit(const uint64_t *lens, size_t n, size_t len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > INT32_MAX || lens[i] > len - total)
            return false;
        total += (size_t)lens[i];
    }
    return true;
}

static int decode_delta_bytes(struct pctx *x, struct vsink *s, int enc, const uint8_t *p,
                              size_t len, size_t n)
{
    struct pq_reader *r = x->r;
    const struct pq_rnode *leaf = x->col->leaf;
    size_t used, used2 = 0;
    int rc = sink_reserve(x, s, n);
    if (rc)
        return rc;
    struct slice *o = *s->sv + *s->count;
    if (enc == PE_DELTA_LENGTH_BYTE_ARRAY) {
        rc = delta_into(x, p, len, n, false, &used);
        if (rc)
            return rc;
        const uint8_t *data = p + used;
        size_t left = len - used;
        if (!lengths_fit(r->dvals, n, left))
            return perr(x, ING_ESYNTAX, "DELTA_LENGTH_BYTE_ARRAY lengths pass the page data");
        for (size_t i = 0; i < n; i++) {
            o[i] = (struct slice){data, (size_t)r->dvals[i]};
            data += r->dvals[i];
        }
        *s->count += n;
        return 0;
    }
    /* DELTA_BYTE_ARRAY: prefix lengths, suffix lengths, suffixes. */
    rc = delta_into(x, p, len, n, false, &used);
    if (!rc)
        rc = delta_into(x, p + used, len - used, n, true, &used2);
    if (rc)
        return rc;
    const uint8_t *data = p + used + used2;
    size_t left = len - used - used2;
    if (!lengths_fit(r->dvals2, n, left))
        return perr(x, ING_ESYNTAX, "DELTA_BYTE_ARRAY suffix lengths pass the page data");
    size_t total = 0, prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pre = r->dvals[i];
        if (pre > prev || (i == 0 && pre))
            return perr(x, ING_ESYNTAX, "DELTA_BYTE_ARRAY prefix %" PRIu64
                        " is longer than the previous value", pre);
        prev = (size_t)pre + (size_t)r->dvals2[i];
        if (leaf->phys == PQ_FIXED_LEN_BYTE_ARRAY && prev != (size_t)leaf->type_length)
            return perr(x, ING_ESYNTAX, "DELTA_BYTE_ARRAY value of %zu bytes in a %d byte column",
                        prev, leaf->type_length);
        if (prev > SIZE_MAX - total)
            return perr(x, ING_ETOOBIG, "DELTA_BYTE_ARRAY values are too large");
        total += prev;
    }
    uint8_t *out;
    rc = block_new(r, x->col, total, &out);
    if (rc)
        return cap_err(x, rc, "DELTA_BYTE_ARRAY values");
    const uint8_t *last = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t pre = (size_t)r->dvals[i], suf = (size_t)r->dvals2[i];
        if (pre)
            memcpy(out, last, pre);
        if (suf)
            memcpy(out + pre, data, suf);
        data += suf;
        o[i] = (struct slice){out, pre + suf};
        last = out;
        out += pre + suf;
    }
    *s->count += n;
    return 0;
}

static int decode_values(struct pctx *x, struct vsink *s, int enc, const uint8_t *p, size_t len,
                         size_t n)
{
    struct pq_reader *r = x->r;
    struct rcol *col = x->col;
    enum pq_phys ph = col->leaf->phys;
    int rc;
    switch (enc) {
    case PE_PLAIN:
        return decode_plain(x, s, p, len, n);
    case PE_PLAIN_DICTIONARY:
    case PE_RLE_DICTIONARY:
        return decode_dict_indices(x, s, p, len, n);
    case PE_RLE: {
        if (ph != PQ_BOOLEAN)
            break;
        if (len < 4 || pq_get_le32(p) > len - 4)
            return perr(x, ING_ESYNTAX, "RLE booleans: bad length prefix");
        rc = sink_reserve(x, s, n);
        if (rc)
            return rc;
        struct ing_err e;
        ing_err_clear(&e);
        rc = pq_rle_decode_u8(p + 4, pq_get_le32(p), 1, *s->fv + *s->count, n, &e);
        if (rc)
            return perr(x, rc, "RLE booleans: %s", e.msg);
        *s->count += n;
        return 0;
    }
    case PE_DELTA_BINARY_PACKED: {
        if (ph != PQ_INT32 && ph != PQ_INT64)
            break;
        size_t used;
        rc = delta_into(x, p, len, n, false, &used);
        if (!rc)
            rc = sink_reserve(x, s, n);
        if (rc)
            return rc;
        uint8_t *o = *s->fv + *s->count * col->width;
        for (size_t i = 0; i < n; i++) {
            if (ph == PQ_INT32)
                pq_put_le32(o + 4 * i, (uint32_t)r->dvals[i]);
            else
                pq_put_le64(o + 8 * i, r->dvals[i]);
        }
        *s->count += n;
        return 0;
    }
    case PE_DELTA_LENGTH_BYTE_ARRAY:
        if (ph != PQ_BYTE_ARRAY)
            break;
        return decode_delta_bytes(x, s, enc, p, len, n);
    case PE_DELTA_BYTE_ARRAY:
        if (ph != PQ_BYTE_ARRAY && ph != PQ_FIXED_LEN_BYTE_ARRAY)
            break;
        return decode_delta_bytes(x, s, enc, p, len, n);
    case PE_BYTE_STREAM_SPLIT: {
        if (ph == PQ_BOOLEAN || ph == PQ_BYTE_ARRAY || ph == PQ_INT96)
            break;
        rc = sink_reserve(x, s, n);
        if (rc)
            return rc;
        struct ing_err e;
        ing_err_clear(&e);
        if (col->width) {
            rc = pq_bss_decode(p, len, col->width, n, *s->fv + *s->count * col->width, &e);
        } else {
            size_t w = (size_t)col->leaf->type_length;
            uint8_t *out;
            if (n > SIZE_MAX / w)
                return perr(x, ING_ETOOBIG, "BYTE_STREAM_SPLIT values are too large");
            rc = block_new(r, x->col, n * w, &out);
            if (rc)
                return cap_err(x, rc, "BYTE_STREAM_SPLIT values");
            rc = pq_bss_decode(p, len, w, n, out, &e);
            for (size_t i = 0; !rc && i < n; i++)
                (*s->sv)[*s->count + i] = (struct slice){out + i * w, w};
        }
        if (rc)
            return perr(x, rc, "%s", e.msg);
        *s->count += n;
        return 0;
    }
    default:
        break;
    }
    return perr(x, ING_ESYNTAX, "encoding %d cannot hold %s values", enc,
                ph == PQ_BOOLEAN ? "BOOLEAN" : ph == PQ_INT32 ? "INT32" : ph == PQ_INT64 ? "INT64"
                : ph == PQ_INT96 ? "INT96" : ph == PQ_FLOAT ? "FLOAT" : ph == PQ_DOUBLE ? "DOUBLE"
                : ph == PQ_BYTE_ARRAY ? "BYTE_ARRAY" : "FIXED_LEN_BYTE_ARRAY");
}

struct page_hdr {
    int type;
    int32_t unc, comp;
    bool has_data, has_dict, has_v2;
    int32_t num_values, encoding, def_enc, rep_enc;  /* v1 and dictionary */
    int32_t num_nulls, num_rows, def_len, rep_len;   /* v2 */
    bool is_compressed;
};

static void parse_page_hdr(struct pq_tr *t, struct page_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->type = -1;
    h->is_compressed = true;
    h->def_enc = h->rep_enc = PE_RLE;
    int16_t id, fid;
    enum pq_ttype ty, fty;
    while (pq_tr_field(t, &id, &ty)) {
        if (id == 1) {
            h->type = pq_tr_i32(t, ty);
        } else if (id == 2) {
            h->unc = pq_tr_i32(t, ty);
        } else if (id == 3) {
            h->comp = pq_tr_i32(t, ty);
        } else if ((id == 5 || id == 7 || id == 8) && ty == PQ_T_STRUCT) {
            if (id == 5)
                h->has_data = true;
            else if (id == 7)
                h->has_dict = true;
            else
                h->has_v2 = true;
            pq_tr_struct_begin(t);
            while (pq_tr_field(t, &fid, &fty)) {
                if (fid == 1)
                    h->num_values = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 2)
                    h->num_nulls = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 3)
                    h->num_rows = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 4)
                    h->encoding = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 5)
                    h->def_len = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 6)
                    h->rep_len = pq_tr_i32(t, fty);
                else if (id == 8 && fid == 7)
                    h->is_compressed = pq_tr_bool(t, fty);
                else if (id != 8 && fid == 2)
                    h->encoding = pq_tr_i32(t, fty);
                else if (id == 5 && fid == 3)
                    h->def_enc = pq_tr_i32(t, fty);
                else if (id == 5 && fid == 4)
                    h->rep_enc = pq_tr_i32(t, fty);
                else
                    pq_tr_skip(t, fty);
            }
        } else {
            pq_tr_skip(t, ty);
        }
    }
}

/* The page body, decompressed when the chunk is compressed; *out stays valid as long as the
 * page's entries are in the column's window. */
static int page_body(struct pctx *x, const uint8_t *body, size_t comp, size_t unc,
                     const uint8_t **out, size_t *out_len)
{
    if (x->codec == PQ_RC_UNCOMPRESSED) {
        *out = body;
        *out_len = comp;
        return 0;
    }
    uint8_t *dst;
    int rc = block_new(x->r, x->col, unc, &dst);
    if (rc)
        return cap_err(x, rc, "a decompressed page");
    struct ing_err e;
    ing_err_clear(&e);
    rc = pq_unc_run(x->r->unc, x->codec, body, comp, dst, unc, &e);
    if (rc)
        return perr(x, rc, "%s", e.msg);
    *out = dst;
    *out_len = unc;
    return 0;
}

static int check_levels(struct pctx *x, const uint8_t *lv, size_t n, int max, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (lv[i] > max)
            return perr(x, ING_ESYNTAX, "%s level %d above the column's maximum %d", what, lv[i],
                        max);
    return 0;
}

/* v1 levels: RLE with a 4-byte length, or the deprecated BIT_PACKED. Advances *p / *left. */
static int v1_levels(struct pctx *x, int enc, int max, uint8_t *out, size_t n, const uint8_t **p,
                     size_t *left, const char *what)
{
    int bw = pq_bit_width((uint32_t)max);
    struct ing_err e;
    ing_err_clear(&e);
    int rc;
    if (enc == PE_RLE) {
        if (*left < 4 || pq_get_le32(*p) > *left - 4)
            return perr(x, ING_ESYNTAX, "%s levels: bad length prefix", what);
        size_t len = pq_get_le32(*p);
        rc = pq_rle_decode_u8(*p + 4, len, bw, out, n, &e);
        if (!rc) {
            *p += 4 + len;
            *left -= 4 + len;
        }
    } else if (enc == PE_BIT_PACKED) {
        size_t used;
        rc = pq_bitpacked_decode_u8(*p, *left, bw, out, n, &used, &e);
        if (!rc) {
            *p += used;
            *left -= used;
        }
    } else {
        return perr(x, ING_ESYNTAX, "%s levels in encoding %d", what, enc);
    }
    if (rc)
        return perr(x, rc, "%s levels: %s", what, e.msg);
    return check_levels(x, out, n, max, what);
}

static int reserve_entries(struct pctx *x, size_t n)
{
    struct rcol *col = x->col;
    if (n > SIZE_MAX - col->nent)
        return cap_err(x, ING_ETOOBIG, "levels");
    int rc = 0;
    if (col->max_def)
        rc = grow(x->r, (void **)&col->def, &col->def_cap, col->nent + n, 1);
    if (!rc && col->max_rep)
        rc = grow(x->r, (void **)&col->rep, &col->rep_cap, col->nent + n, 1);
    return rc ? cap_err(x, rc, "levels") : 0;
}

static size_t count_present(const struct rcol *col, size_t from, size_t n)
{
    if (!col->max_def)
        return n;
    size_t k = 0;
    const uint8_t *d = col->def + from;
    for (size_t i = 0; i < n; i++)
        k += d[i] == col->max_def;
    return k;
}

static int data_page(struct pctx *x, const struct page_hdr *h, const uint8_t *body)
{
    struct rcol *col = x->col;
    if (h->num_values < 0)
        return perr(x, ING_ESYNTAX, "page with %d values", h->num_values);
    size_t n = (size_t)h->num_values;
    int rc = reserve_entries(x, n);
    if (rc)
        return rc;
    const uint8_t *vals;
    size_t vlen;
    if (!h->has_v2) {
        rc = page_body(x, body, (size_t)h->comp, (size_t)h->unc, &vals, &vlen);
        if (rc)
            return rc;
        if (col->max_rep) {
            rc = v1_levels(x, h->rep_enc, col->max_rep, col->rep + col->nent, n, &vals, &vlen,
                           "repetition");
            if (rc)
                return rc;
        }
        if (col->max_def) {
            rc = v1_levels(x, h->def_enc, col->max_def, col->def + col->nent, n, &vals, &vlen,
                           "definition");
            if (rc)
                return rc;
        }
    } else {
        /* v2: levels first and never compressed, then the (maybe compressed) values. */
        if (h->rep_len < 0 || h->def_len < 0 ||
            (int64_t)h->rep_len + h->def_len > (int64_t)h->comp ||
            (int64_t)h->rep_len + h->def_len > (int64_t)h->unc)
            return perr(x, ING_ESYNTAX, "v2 page levels of %d + %d bytes in a %d byte page",
                        h->rep_len, h->def_len, h->comp);
        struct ing_err e;
        ing_err_clear(&e);
        if (col->max_rep) {
            rc = pq_rle_decode_u8(body, (size_t)h->rep_len, pq_bit_width((uint32_t)col->max_rep),
                                  col->rep + col->nent, n, &e);
            if (rc)
                return perr(x, rc, "repetition levels: %s", e.msg);
            rc = check_levels(x, col->rep + col->nent, n, col->max_rep, "repetition");
            if (rc)
                return rc;
        }
        if (col->max_def) {
            rc = pq_rle_decode_u8(body + h->rep_len, (size_t)h->def_len,
                                  pq_bit_width((uint32_t)col->max_def), col->def + col->nent, n,
                                  &e);
            if (rc)
                return perr(x, rc, "definition levels: %s", e.msg);
            rc = check_levels(x, col->def + col->nent, n, col->max_def, "definition");
            if (rc)
                return rc;
        }
        size_t lv = (size_t)h->rep_len + (size_t)h->def_len;
        const uint8_t *vbody = body + lv;
        size_t vcomp = (size_t)h->comp - lv, vunc = (size_t)h->unc - lv;
        if (h->is_compressed) {
            rc = page_body(x, vbody, vcomp, vunc, &vals, &vlen);
            if (rc)
                return rc;
        } else {
            vals = vbody;
            vlen = vcomp;
        }
    }
    if (col->max_rep && n && col->base + col->nent == 0 && col->rep[0] != 0)
        return perr(x, ING_ESYNTAX, "the first value does not start a row");
    size_t present = count_present(col, col->nent, n);
    struct vsink s = {&col->fv, &col->fv_cap, &col->sv, &col->sv_cap, &col->nval};
    rc = decode_values(x, &s, h->encoding, vals, vlen, present);
    if (rc)
        return rc;
    col->nent += n;
    return 0;
}

static int dict_page(struct pctx *x, const struct page_hdr *h, const uint8_t *body)
{
    struct rcol *col = x->col;
    if (col->has_dict || col->base + col->nent)
        return perr(x, ING_ESYNTAX, "a dictionary page that is not the chunk's first page");
    if (h->num_values < 0)
        return perr(x, ING_ESYNTAX, "dictionary of %d values", h->num_values);
    if (h->encoding != PE_PLAIN && h->encoding != PE_PLAIN_DICTIONARY)
        return perr(x, ING_ESYNTAX, "dictionary page in encoding %d", h->encoding);
    const uint8_t *vals;
    size_t vlen;
    int rc = page_body(x, body, (size_t)h->comp, (size_t)h->unc, &vals, &vlen);
    if (rc)
        return rc;
    col->ndict = 0;
    struct vsink s = {&col->dfv, &col->dfv_cap, &col->dsv, &col->dsv_cap, &col->ndict};
    rc = decode_plain(x, &s, vals, vlen, (size_t)h->num_values);
    if (rc)
        return rc;
    col->has_dict = true;
    return 0;
}

#define PQ_HDR_PROBE 256                /* bytes read first to parse a page header */
#define PQ_MAX_PAGE_HDR (64 * PQ_MIB)   /* a page header (statistics included) */

/* Start column chunk c of row group rg: check its metadata; no page is read yet. */
static int chunk_begin(struct pq_reader *r, int rg, int c, struct ing_err *err)
{
    struct rcol *col = &r->cols[c];
    const struct cmeta *cm = &r->rgs[rg].cols[c];
    struct pctx x = {.r = r, .col = col, .rg = rg, .column = c, .codec = cm->codec, .off = -1,
                     .err = err};
    block_release_upto(r, col, UINT64_MAX);
    col->nent = col->nval = col->ndict = 0;
    col->row_s = col->row_e = col->row_v = 0;
    col->base = 0;
    col->has_dict = false;
    col->ch_len = col->ch_off = 0;
    col->ch_values = 0;
    col->codec = cm->codec;
    if (cm->type != (int)col->leaf->phys)
        return perr(&x, ING_ESYNTAX, "chunk type %d does not match the schema's type %d",
                    cm->type, (int)col->leaf->phys);
    if (!pq_unc_supported(cm->codec))
        return perr(&x, ING_EINVAL, "compression codec %s (%d) is not supported",
                    pq_unc_name(cm->codec), cm->codec);
    int64_t start = cm->data_off;
    if (cm->dict_off > 0 && cm->dict_off < start)
        start = cm->dict_off;
    x.off = start;
    if (start < 4 || cm->total_comp < 0 || start > r->data_end ||
        cm->total_comp > r->data_end - start)
        return perr(&x, ING_ESYNTAX, "chunk of %" PRId64 " bytes at offset %" PRId64
                    " lies outside the data of the file", cm->total_comp, start);
    if (cm->num_values < 0)
        return perr(&x, ING_ESYNTAX, "chunk with %" PRId64 " values", cm->num_values);
    col->ch_start = start;
    col->ch_len = (size_t)cm->total_comp;
    col->ch_values = cm->num_values;
    return 0;
}

/* Whether the chunk has pages not read yet (pages past the declared values are not read). */
static bool chunk_more(const struct rcol *col)
{
    return col->ch_off < col->ch_len && (int64_t)(col->base + col->nent) < col->ch_values;
}

/* Drop the window's entries before the current row, their values, and the page buffers only
 * they used; the current row moves to the front. Costs the current row's size, not a page's. */
static void window_compact(struct pq_reader *r, struct rcol *col)
{
    size_t k = col->row_s, kv = col->row_v;
    if (k) {
        size_t keep = col->nent - k, keepv = col->nval - kv;
        if (keep && col->max_def)
            memmove(col->def, col->def + k, keep);
        if (keep && col->max_rep)
            memmove(col->rep, col->rep + k, keep);
        if (keepv && col->width)
            memmove(col->fv, col->fv + kv * col->width, keepv * col->width);
        else if (keepv)
            memmove(col->sv, col->sv + kv, keepv * sizeof(*col->sv));
        col->nent = keep;
        col->nval = keepv;
        col->base += k;
        col->row_e -= k;
        col->row_s = col->row_v = 0;
    }
    block_release_upto(r, col, col->base);
}

/* Read the next page of column c (header, then body) and decode it onto the window. Index pages
 * and unknown page types are skipped without reading their body. */
static int next_page(struct pq_reader *r, int c, struct ing_err *err)
{
    struct rcol *col = &r->cols[c];
    struct pctx x = {.r = r, .col = col, .rg = r->rg, .column = c, .codec = col->codec,
                     .off = col->ch_start + (int64_t)col->ch_off, .err = err};
    size_t left = col->ch_len - col->ch_off;
    size_t probe = left < PQ_HDR_PROBE ? left : PQ_HDR_PROBE;
    struct page_hdr h;
    size_t hlen;
    int rc;
    for (;;) {
        rc = grow(r, (void **)&r->hdr, &r->hdr_cap, probe ? probe : 1, 1);
        if (rc)
            return cap_err(&x, rc, "a page header");
        rc = read_at(r, x.off, r->hdr, probe, err);
        if (rc)
            return rc;
        struct pq_tr t;
        pq_tr_init(&t, r->hdr, probe);
        parse_page_hdr(&t, &h);
        if (!pq_tr_error(&t)) {
            hlen = pq_tr_offset(&t);
            break;
        }
        /* A header longer than the probe fails as cut short: read more, up to the chunk. */
        if (probe >= left || probe >= PQ_MAX_PAGE_HDR)
            return perr(&x, pq_tr_error(&t), "corrupt page header: %s", t.why);
        probe = left / 4 < probe ? left : probe * 4;
    }
    if (h.comp < 0 || h.unc < 0 || (size_t)h.comp > left - hlen)
        return perr(&x, ING_ESYNTAX, "page of %d bytes passes the end of the chunk", h.comp);
    if ((size_t)h.unc > r->opts.max_page_bytes)
        return perr(&x, ING_ETOOBIG, "page of %d bytes is larger than the %zu byte limit", h.unc,
                    r->opts.max_page_bytes);
    bool is_dict = h.type == PT_DICTIONARY_PAGE && h.has_dict;
    bool is_data = (h.type == PT_DATA_PAGE && h.has_data) ||
                   (h.type == PT_DATA_PAGE_V2 && h.has_v2);
    if (!is_dict && !is_data && (h.type == PT_DATA_PAGE || h.type == PT_DATA_PAGE_V2 ||
                                 h.type == PT_DICTIONARY_PAGE))
        return perr(&x, ING_ESYNTAX, "page of type %d lacks its header", h.type);
    size_t comp = (size_t)h.comp;
    if (is_dict || is_data) {
        /* Values point into the body when it is not decompressed: it must live as a block. */
        bool in_place = col->codec == PQ_RC_UNCOMPRESSED || (h.has_v2 && !h.is_compressed);
        size_t first_block = col->nblocks;
        uint8_t *body;
        if (in_place) {
            rc = block_new(r, col, comp, &body);
        } else {
            rc = grow(r, (void **)&r->raw, &r->raw_cap, comp ? comp : 1, 1);
            body = r->raw;
        }
        if (rc)
            return cap_err(&x, rc, "a page");
        size_t have = probe - hlen < comp ? probe - hlen : comp;
        if (have)
            memcpy(body, r->hdr + hlen, have);
        rc = read_at(r, x.off + (int64_t)(hlen + have), body + have, comp - have, err);
        if (rc)
            return rc;
        if (is_dict) {
            rc = dict_page(&x, &h, body);
        } else {
            rc = data_page(&x, &h, body);
            /* the page's buffers serve its entries only */
            for (size_t i = first_block; !rc && i < col->nblocks; i++)
                col->blocks[i].until = col->base + col->nent;
        }
        if (rc)
            return rc;
        if ((int64_t)(col->base + col->nent) > col->ch_values)
            return perr(&x, ING_ESYNTAX, "chunk holds more than the %" PRId64
                        " values its metadata says", col->ch_values);
    }
    col->ch_off += hlen + comp;
    return 0;
}

/* An error about the chunk of column c as a whole (at its offset). */
static int chunk_err(struct pq_reader *r, int c, struct ing_err *err, const char *what)
{
    struct rcol *col = &r->cols[c];
    if ((int64_t)(col->base + col->nent) != col->ch_values && !chunk_more(col))
        return rd_err(r, err, ING_ESYNTAX, r->rg, c, col->ch_start,
                      "chunk holds %" PRIu64 " values, its metadata says %" PRId64,
                      col->base + col->nent, col->ch_values);
    return rd_err(r, err, ING_ESYNTAX, r->rg, c, col->ch_start,
                  "chunk holds %s rows than the row group's %" PRId64, what, r->rg_rows);
}

/* Move column c to its next row (its first when `first`), reading pages as needed; a row of a
 * repeated column may continue on the following pages (until an entry of repetition level 0). */
static int col_next_row(struct pq_reader *r, int c, bool first, struct ing_err *err)
{
    struct rcol *col = &r->cols[c];
    if (!first) {
        col->row_v += count_present(col, col->row_s, col->row_e - col->row_s);
        col->row_s = col->row_e;
    }
    int rc;
    while (col->row_s >= col->nent) {
        if (!chunk_more(col))
            return chunk_err(r, c, err, "fewer");
        window_compact(r, col);
        rc = next_page(r, c, err);
        if (rc)
            return rc;
    }
    if (!col->max_rep) {
        col->row_e = col->row_s + 1;
        return 0;
    }
    size_t e = col->row_s + 1;
    for (;;) {
        while (e < col->nent && col->rep[e] != 0)
            e++;
        if (e < col->nent || !chunk_more(col))
            break;
        e -= col->row_s;
        window_compact(r, col);
        rc = next_page(r, c, err);
        if (rc)
            return rc;
    }
    col->row_e = e;
    return 0;
}

/* After the row group's last row (or for a row group of no rows): column c must hold no more
 * entries, and as many as its metadata declares. */
static int col_finish(struct pq_reader *r, int c, struct ing_err *err)
{
    struct rcol *col = &r->cols[c];
    while (col->row_e >= col->nent && chunk_more(col)) {
        window_compact(r, col);
        int rc = next_page(r, c, err);
        if (rc)
            return rc;
    }
    if (col->row_e < col->nent || (int64_t)(col->base + col->nent) != col->ch_values)
        return chunk_err(r, c, err, "more");
    return 0;
}

static int load_row_group(struct pq_reader *r, int rg, struct ing_err *err)
{
    r->rg = rg;
    r->rg_row = 0;
    r->rg_rows = r->rgs[rg].num_rows;
    for (int c = 0; c < r->ncols; c++) {
        int rc = chunk_begin(r, rg, c, err);
        if (!rc && r->rg_rows == 0)
            rc = col_finish(r, c, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int next_row(struct pq_reader *r, struct ing_err *err)
{
    while (r->rg < r->rg_begin || r->rg_row >= r->rg_rows) {
        if (r->rg + 1 >= r->rg_end) {
            blocks_free(r);
            r->done = true;
            return 0;
        }
        int rc = load_row_group(r, r->rg + 1, err);
        if (rc)
            return rc;
    }
    for (int c = 0; c < r->ncols; c++) {
        int rc = col_next_row(r, c, r->rg_row == 0, err);
        if (rc)
            return rc;
    }
    r->rg_row++;
    r->row++;
    for (int c = 0; r->rg_row == r->rg_rows && c < r->ncols; c++) {
        int rc = col_finish(r, c, err);
        if (rc)
            return rc;
    }
    return 1;
}

int pq_reader_next(struct pq_reader *r, struct ing_err *err)
{
    if (r->failed) {
        if (err)
            *err = r->ferr;
        return r->failed;
    }
    if (r->done)
        return 0;
    /* r->ferr is clean here (cleared at open, written only by the failure that sticks): no
     * per-row clear, which was a kilobyte memset per row. */
    int rc = next_row(r, &r->ferr);
    if (rc < 0) {
        r->failed = rc;
        if (err)
            *err = r->ferr;
    }
    return rc;
}

/* ---------------------------------------------------------------- JSON values */

struct jctx {
    struct pq_reader *r;
    struct buf *out;
    struct ing_err *err;
};

static int row_err(struct jctx *j, int code, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int row_err(struct jctx *j, int code, int column, const char *fmt, ...)
{
    if (!j->err)
        return code;
    char msg[ING_ERR_MSG - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rd_err(j->r, j->err, code, j->r->rg, column, -1, "%s", msg);
    j->err->row = pq_reader_row(j->r);
    return code;
}

static int out_err(struct jctx *j, int rc)
{
    return row_err(j, rc, -1, "the row's JSON text passes the buffer's limit");
}

/* Room for n more bytes without growing (and within the cap): the common case, kept inline
 * because a row is dozens of tiny appends and the out-of-line call showed in profiles. */
static inline bool has_room(const struct buf *b, size_t n)
{
    return b->data && n <= b->cap - b->len && (!b->limit || n <= b->limit - b->len);
}

static inline int put(struct jctx *j, const void *p, size_t n)
{
    struct buf *b = j->out;
    if (has_room(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
    }
    int rc = buf_append(b, p, n);
    return rc ? out_err(j, rc) : 0;
}

static inline int putc_(struct jctx *j, char c)
{
    struct buf *b = j->out;
    if (has_room(b, 1)) {
        b->data[b->len++] = (uint8_t)c;
        return 0;
    }
    int rc = buf_append_byte(b, (uint8_t)c);
    return rc ? out_err(j, rc) : 0;
}

static int putf(struct jctx *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int putf(struct jctx *j, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return row_err(j, ING_EINTERNAL, -1, "number formatting failed");
    return put(j, tmp, (size_t)n);
}

/* Decimal digits of v written backwards ending at `end`; returns the first digit. */
static char *fmt_u64(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static int put_u64(struct jctx *j, uint64_t v, bool neg)
{
    char tmp[24];
    char *p = fmt_u64(tmp + sizeof(tmp), v);
    if (neg)
        *--p = '-';
    return put(j, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int put_i64(struct jctx *j, int64_t v)
{
    /* the magnitude of INT64_MIN does not fit in int64_t: negate as unsigned */
    return v < 0 ? put_u64(j, 0 - (uint64_t)v, true) : put_u64(j, (uint64_t)v, false);
}

/* Exactly `width` digits of v (v < 10^width) at p. */
static void fmt_fixed(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* A JSON string of UTF-8 text; ING_ESYNTAX when the text is not UTF-8. */
static int put_jstring(struct jctx *j, const uint8_t *p, size_t n, int column)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_reserve(j->out, n + 2);
    if (rc)
        return out_err(j, rc);
    j->out->data[j->out->len++] = '"';
    size_t i = 0;
    while (i < n) {
        /* copy the longest run that needs no escaping in one go */
        size_t k = i;
        while (k < n && p[k] >= 0x20 && p[k] < 0x80 && p[k] != '"' && p[k] != '\\')
            k++;
        if (k > i) {
            if ((rc = put(j, p + i, k - i)))
                return rc;
            i = k;
            continue;
        }
        uint8_t c = p[i];
        if (c >= 0x80) {
            size_t len = utf8_seq(p + i, n - i, NULL);
            if (!len)
                return row_err(j, ING_ESYNTAX, column,
                               "text is not valid UTF-8 (byte %zu of a %zu byte value)", i, n);
            if ((rc = put(j, p + i, len)))
                return rc;
            i += len;
            continue;
        }
        char esc[7] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
            break;
        }
        if ((rc = put(j, esc, el)))
            return rc;
        i++;
    }
    return putc_(j, '"');
}

static int put_base64(struct jctx *j, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (n + 2) / 3 * 4;
    int rc = buf_reserve(j->out, olen + 2);
    if (rc)
        return out_err(j, rc);
    char *o = (char *)j->out->data + j->out->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    *o++ = '"';
    j->out->len = (size_t)((uint8_t *)o - j->out->data);
    return 0;
}

/* Floor division and the matching non-negative remainder (b > 0), without overflow. */
static void divmod_floor(int64_t a, int64_t b, int64_t *q, int64_t *r)
{
    *q = a / b;
    *r = a % b;
    if (*r < 0) {
        *r += b;
        *q -= 1;
    }
}

static int put_date_part(struct jctx *j, int64_t days)
{
    char tmp[10];
    if (date_put_ymd(tmp, days))
        return put(j, tmp, sizeof(tmp));
    int64_t y;
    int m, d;
    date_civil_from_days(days, &y, &m, &d);
    return putf(j, "%+05" PRId64 "-%02d-%02d", y, m, d);
}

static const int64_t unit_per_sec[] = {1000, 1000000, 1000000000};
static const int unit_digits[] = {3, 6, 9};

/* "YYYY-MM-DDTHH:MM:SS.fffZ" of `days` and `frac` units into the day (0 <= frac < 1 day). */
static int put_timestamp(struct jctx *j, int64_t days, int64_t in_day, enum pq_unit unit)
{
    int64_t ups = unit_per_sec[unit];
    int64_t secs = in_day / ups, frac = in_day % ups;
    int rc = putc_(j, '"');
    if (!rc)
        rc = put_date_part(j, days);
    if (rc)
        return rc;
    char tmp[24];
    int digits = unit_digits[unit];
    tmp[0] = 'T';
    fmt_fixed(tmp + 1, (uint64_t)(secs / 3600), 2);
    tmp[3] = ':';
    fmt_fixed(tmp + 4, (uint64_t)(secs / 60 % 60), 2);
    tmp[6] = ':';
    fmt_fixed(tmp + 7, (uint64_t)(secs % 60), 2);
    tmp[9] = '.';
    fmt_fixed(tmp + 10, (uint64_t)frac, digits);
    tmp[10 + digits] = 'Z';
    tmp[11 + digits] = '"';
    return put(j, tmp, (size_t)(12 + digits));
}

static int put_epoch(struct jctx *j, int64_t v, enum pq_unit unit)
{
    int64_t days, in_day;
    divmod_floor(v, 86400 * unit_per_sec[unit], &days, &in_day);
    return put_timestamp(j, days, in_day, unit);
}

/* Shortest %g text that reads back as the same value. */
static int put_double(struct jctx *j, double v, bool is_float)
{
    if (!isfinite(v))
        return put(j, "null", 4);
    /* Whole numbers below 1e15 (1e6 for floats) print as the shortest %g form would (plain
     * digits, no exponent), without the printf/strtod round trips; -0 keeps the slow path for
     * its sign. */
    double whole_max = is_float ? 1e6 : 1e15;
    if (v > -whole_max && v < whole_max && v == (double)(int64_t)v && (v != 0 || !signbit(v)))
        return put_i64(j, (int64_t)v);
    char tmp[40];
    int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == hi)
            break;
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    return put(j, tmp, strlen(tmp));
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 1024), exp - 25);
    return sign ? -v : v;
}

/* Decimal text of an unsigned magnitude held big-endian in mag[0..n) (destroyed). */
static size_t big_to_digits(uint8_t *mag, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    size_t start = 0;
    while (start < n && mag[start] == 0)
        start++;
    while (start < n) {
        /* divide by 10^9, collecting the remainder */
        uint64_t rem = 0;
        for (size_t i = start; i < n; i++) {
            uint64_t cur = (rem << 8) | mag[i];
            mag[i] = (uint8_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (start < n && mag[start] == 0)
            start++;
        for (int k = 0; k < 9 && len < cap; k++) {
            out[len++] = (char)('0' + rem % 10);
            rem /= 10;
            if (start >= n && rem == 0)
                break;
        }
    }
    if (len == 0)
        out[len++] = '0';
    for (size_t a = 0, b = len - 1; a < b; a++, b--) {
        char t = out[a];
        out[a] = out[b];
        out[b] = t;
    }
    return len;
}

/* A decimal number from a big-endian two's complement integer and a scale. */
static int put_decimal_be(struct jctx *j, const uint8_t *p, size_t n, int scale, int column)
{
    if (n > PQ_MAX_DECIMAL_BYTES)
        return row_err(j, ING_ETOOBIG, column, "DECIMAL of %zu bytes", n);
    uint8_t mag[PQ_MAX_DECIMAL_BYTES];
    bool neg = n && (p[0] & 0x80);
    memcpy(mag, p, n);
    if (neg) { /* two's complement negation: invert and add one */
        unsigned carry = 1;
        for (size_t i = n; i-- > 0;) {
            unsigned v = (uint8_t)~mag[i] + carry;
            mag[i] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    char digits[PQ_MAX_DECIMAL_BYTES * 3 + 8];
    size_t nd = big_to_digits(mag, n, digits, sizeof(digits));
    int rc = 0;
    if (neg && !(nd == 1 && digits[0] == '0'))
        rc = putc_(j, '-');
    if (rc)
        return rc;
    if (scale == 0)
        return put(j, digits, nd);
    if (nd <= (size_t)scale) {
        if ((rc = put(j, "0.", 2)))
            return rc;
        for (size_t k = nd; k < (size_t)scale; k++)
            if ((rc = putc_(j, '0')))
                return rc;
        return put(j, digits, nd);
    }
    if ((rc = put(j, digits, nd - (size_t)scale)) || (rc = putc_(j, '.')))
        return rc;
    return put(j, digits + nd - (size_t)scale, (size_t)scale);
}

static int put_decimal_int(struct jctx *j, int64_t v, int scale, int column)
{
    if (scale <= 18) {
        /* the common case without the big-number path */
        char tmp[48];
        uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        char *end = tmp + sizeof(tmp);
        char *p = fmt_u64(end, mag);
        if (scale > 0) {
            while (end - p <= scale) /* at least one digit before the point */
                *--p = '0';
            size_t nd = (size_t)(end - p);
            memmove(p - 1, p, nd - (size_t)scale);
            p--;
            p[nd - (size_t)scale] = '.';
        }
        if (v < 0)
            *--p = '-';
        return put(j, p, (size_t)(end - p));
    }
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    return put_decimal_be(j, be, 8, scale, column);
}

static int put_time(struct jctx *j, int64_t v, enum pq_unit unit)
{
    int64_t secs, frac, hours, in_hour;
    divmod_floor(v, unit_per_sec[unit], &secs, &frac);
    divmod_floor(secs, 3600, &hours, &in_hour);
    return putf(j, "\"%02" PRId64 ":%02d:%02d.%0*" PRId64 "\"", hours, (int)(in_hour / 60),
                (int)(in_hour % 60), unit_digits[unit], frac);
}

static int corrupt_row(struct jctx *j, int column)
{
    return row_err(j, ING_ESYNTAX, column,
                   "the definition and repetition levels of the row contradict each other");
}

/* Index of the value of entry `e` (a defined entry), moving the column's rendering cursor. Entries
 * are visited in order; skipped ones (under a null parent) are counted on the way. */
static int value_at(struct jctx *j, struct rcol *col, int column, size_t e, size_t *vi)
{
    if (!col->max_def) {
        *vi = col->row_v + (e - col->row_s);
    } else {
        if (e < col->scan_e)
            return corrupt_row(j, column);
        while (col->scan_e < e) {
            col->scan_v += col->def[col->scan_e] == col->max_def;
            col->scan_e++;
        }
        *vi = col->scan_v++;
        col->scan_e++;
    }
    if (*vi >= col->nval)
        return corrupt_row(j, column);
    return 0;
}

static int put_value(struct jctx *j, struct rcol *col, int column, size_t vi)
{
    const struct pq_rnode *n = col->leaf;
    const uint8_t *f = col->width ? col->fv + vi * col->width : NULL;
    const struct slice *sl = col->width ? NULL : &col->sv[vi];
    bool i64 = n->phys == PQ_INT64;
    int64_t iv = 0;
    if (n->phys == PQ_INT32)
        iv = (int32_t)pq_get_le32(f);
    else if (i64)
        iv = (int64_t)pq_get_le64(f);
    switch (n->rtype) {
    case PQ_RT_BOOL:
        return f[0] ? put(j, "true", 4) : put(j, "false", 5);
    case PQ_RT_INT:
        return put_i64(j, iv);
    case PQ_RT_UINT:
        return put_u64(j, i64 ? (uint64_t)iv : (uint64_t)(uint32_t)iv, false);
    case PQ_RT_FLOAT: {
        uint32_t bits = pq_get_le32(f);
        float v;
        memcpy(&v, &bits, 4);
        return put_double(j, v, true);
    }
    case PQ_RT_DOUBLE: {
        uint64_t bits = pq_get_le64(f);
        double v;
        memcpy(&v, &bits, 8);
        return put_double(j, v, false);
    }
    case PQ_RT_STRING:
    case PQ_RT_ENUM:
    case PQ_RT_JSON:
        return put_jstring(j, sl->p, sl->n, column);
    case PQ_RT_BINARY:
        return put_base64(j, sl->p, sl->n);
    case PQ_RT_DATE: {
        int rc = putc_(j, '"');
        if (!rc)
            rc = put_date_part(j, iv);
        return rc ? rc : putc_(j, '"');
    }
    case PQ_RT_TIME:
        return put_time(j, iv, n->unit);
    case PQ_RT_TIMESTAMP:
        return put_epoch(j, iv, n->unit);
    case PQ_RT_INT96: {
        /* nanoseconds of the day (le64), then the Julian day number (le32) */
        int64_t nanos = (int64_t)pq_get_le64(f), q, in_day;
        int64_t days = (int64_t)(int32_t)pq_get_le32(f + 8) - 2440588;
        divmod_floor(nanos, INT64_C(86400000000000), &q, &in_day);
        return put_timestamp(j, days + q, in_day, PQ_UNIT_NANOS);
    }
    case PQ_RT_DECIMAL:
        if (f)
            return put_decimal_int(j, iv, n->scale, column);
        return put_decimal_be(j, sl->p, sl->n, n->scale, column);
    case PQ_RT_UUID: {
        const uint8_t *u = sl->p;
        return putf(j, "\"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\"",
                    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                    u[12], u[13], u[14], u[15]);
    }
    case PQ_RT_FLOAT16:
        return put_double(j, half_to_float((uint16_t)(sl->p[0] | sl->p[1] << 8)), true);
    case PQ_RT_INTERVAL:
        return putf(j, "{\"months\":%u,\"days\":%u,\"millis\":%u}", pq_get_le32(sl->p),
                    pq_get_le32(sl->p + 4), pq_get_le32(sl->p + 8));
    case PQ_RT_NULL:
        return put(j, "null", 4);
    }
    return corrupt_row(j, column);
}

static struct range *rng_at(struct pq_reader *r, int lvl, int column)
{
    return &r->rng[(size_t)lvl * (size_t)r->ncols + (size_t)column];
}

/* Definition level of the first entry of node n's first column at level lvl; -1 when corrupt. */
static int first_def(struct jctx *j, const struct pq_rnode *n, int lvl)
{
    struct range *g = rng_at(j->r, lvl, n->col_lo);
    if (g->s >= g->e)
        return -1;
    const struct rcol *c = &j->r->cols[n->col_lo];
    return c->max_def ? c->def[g->s] : 0;
}

/* Cut the next instance of the repeated node rn out of the ranges at level lvl into the ranges
 * at rn's own repetition level: 1 when there is one, 0 after the last, or an error. */
static int next_instance(struct jctx *j, const struct pq_rnode *rn, int lvl, bool first)
{
    struct pq_reader *r = j->r;
    int nl = rn->rep_level;
    int state = -1;
    for (int c = rn->col_lo; c < rn->col_hi; c++) {
        struct range *outer = rng_at(r, lvl, c), *in = rng_at(r, nl, c);
        size_t s = first ? outer->s : in->e;
        int here = s < outer->e;
        if (state < 0)
            state = here;
        else if (state != here)
            return corrupt_row(j, c);
        if (!here)
            continue;
        const struct rcol *col = &r->cols[c];
        size_t e = s + 1;
        while (e < outer->e && col->rep[e] > nl)
            e++;
        in->s = s;
        in->e = e;
    }
    return state;
}

static int emit_present(struct jctx *j, int nid, int lvl);
static int emit_field(struct jctx *j, int nid, int lvl);

/* An array of the instances of repeated node rn; each renders as elem. */
static int emit_repeated(struct jctx *j, int rn_id, int elem, int lvl)
{
    const struct pq_rnode *rn = &j->r->nodes[rn_id];
    int d = first_def(j, rn, lvl);
    if (d < 0)
        return corrupt_row(j, rn->col_lo);
    if (d < rn->def_level)
        return put(j, "[]", 2);
    int rc = putc_(j, '[');
    for (bool first = true; !rc; first = false) {
        int got = next_instance(j, rn, lvl, first);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (!first && (rc = putc_(j, ',')))
            break;
        rc = elem == rn_id ? emit_present(j, rn_id, rn->rep_level)
                           : emit_field(j, elem, rn->rep_level);
    }
    return rc ? rc : putc_(j, ']');
}

/* Map keys are JSON strings: string values as they are, other values as their JSON text. */
static int emit_map_key(struct jctx *j, const struct pq_rnode *key, size_t vi)
{
    struct pq_reader *r = j->r;
    struct rcol *col = &r->cols[key->column];
    if (key->rtype == PQ_RT_STRING || key->rtype == PQ_RT_ENUM || key->rtype == PQ_RT_JSON)
        return put_jstring(j, col->sv[vi].p, col->sv[vi].n, key->column);
    struct buf *saved = j->out;
    buf_reset(&r->keybuf);
    j->out = &r->keybuf;
    int rc = put_value(j, col, key->column, vi);
    j->out = saved;
    if (rc)
        return rc;
    if (r->keybuf.len && r->keybuf.data[0] == '"')
        return put(j, r->keybuf.data, r->keybuf.len);
    /* numbers, booleans, null, interval objects: no quotes or backslashes in them */
    if ((rc = putc_(j, '"')) || (rc = put(j, r->keybuf.data, r->keybuf.len)))
        return rc;
    return putc_(j, '"');
}

static int emit_map(struct jctx *j, const struct pq_rnode *n, int lvl)
{
    struct pq_reader *r = j->r;
    int kv_id = n->children[0];
    const struct pq_rnode *kv = &r->nodes[kv_id];
    const struct pq_rnode *key = &r->nodes[n->map_key];
    int d = first_def(j, kv, lvl);
    if (d < 0)
        return corrupt_row(j, kv->col_lo);
    if (d < kv->def_level)
        return put(j, "{}", 2);
    int rc = putc_(j, '{');
    bool any = false;
    for (bool first = true; !rc; first = false) {
        int got = next_instance(j, kv, lvl, first);
        if (got <= 0) {
            rc = got;
            break;
        }
        struct range *g = rng_at(r, kv->rep_level, key->column);
        struct rcol *kc = &r->cols[key->column];
        if (g->e - g->s != 1)
            return corrupt_row(j, key->column);
        if (kc->max_def && kc->def[g->s] < key->def_level)
            continue; /* a null key (the format forbids them): the entry is left out */
        size_t vi;
        if ((rc = value_at(j, kc, key->column, g->s, &vi)))
            break;
        if (any && (rc = putc_(j, ',')))
            break;
        any = true;
        if ((rc = emit_map_key(j, key, vi)) || (rc = putc_(j, ':')))
            break;
        rc = n->map_value < 0 ? put(j, "null", 4) : emit_field(j, n->map_value, kv->rep_level);
    }
    return rc ? rc : putc_(j, '}');
}

/* A node known to be defined (its definition level reached) at level lvl. */
static int emit_present(struct jctx *j, int nid, int lvl)
{
    struct pq_reader *r = j->r;
    const struct pq_rnode *n = &r->nodes[nid];
    int rc = 0;
    switch (n->kind) {
    case PQ_RK_VALUE: {
        struct range *g = rng_at(r, lvl, n->column);
        if (g->e - g->s != 1)
            return corrupt_row(j, n->column);
        struct rcol *col = &r->cols[n->column];
        size_t vi;
        if ((rc = value_at(j, col, n->column, g->s, &vi)))
            return rc;
        return put_value(j, col, n->column, vi);
    }
    case PQ_RK_STRUCT:
        if ((rc = putc_(j, '{')))
            return rc;
        for (int i = 0; i < n->nchildren; i++) {
            int cid = n->children[i];
            const struct pq_rnode *c = &r->nodes[cid];
            if (i && (rc = putc_(j, ',')))
                return rc;
            if (r->jkey[cid])
                rc = put(j, r->jkey[cid], r->jkey_len[cid]);
            else if (!(rc = put_jstring(j, (const uint8_t *)c->name, strlen(c->name), c->col_lo)))
                rc = putc_(j, ':');
            if (rc || (rc = emit_field(j, cid, lvl)))
                return rc;
        }
        return putc_(j, '}');
    case PQ_RK_LIST:
        return emit_repeated(j, n->children[0], n->list_elem, lvl);
    case PQ_RK_MAP:
        return emit_map(j, n, lvl);
    }
    return corrupt_row(j, n->col_lo);
}

/* A field of a defined parent: null, a value, or (repeated) an array. */
static int emit_field(struct jctx *j, int nid, int lvl)
{
    const struct pq_rnode *n = &j->r->nodes[nid];
    if (n->rep == PQ_REPEATED)
        return emit_repeated(j, nid, nid, lvl);
    int d = first_def(j, n, lvl);
    if (d < 0)
        return corrupt_row(j, n->col_lo);
    if (d < n->def_level)
        return put(j, "null", 4);
    return emit_present(j, nid, lvl);
}

/* Every node's name as a JSON key, once per file instead of once per row. */
static void render_keys(struct pq_reader *r)
{
    r->jkey = xcalloc((size_t)r->nnodes, sizeof(char *));
    r->jkey_len = xcalloc((size_t)r->nnodes, sizeof(size_t));
    struct buf b = {0};
    struct jctx j = {.r = r, .out = &b, .err = NULL};
    for (int i = 1; i < r->nnodes; i++) {
        buf_reset(&b);
        const char *name = r->nodes[i].name;
        if (put_jstring(&j, (const uint8_t *)name, strlen(name), -1) || putc_(&j, ':'))
            continue;
        r->jkey[i] = xstrndup((const char *)b.data, b.len);
        r->jkey_len[i] = b.len;
    }
    buf_free(&b);
}

int pq_reader_row_json(struct pq_reader *r, struct buf *out, struct ing_err *err)
{
    if (r->failed || r->done || r->row == 0 || r->rg < r->rg_begin || r->rg_row == 0)
        return ing_err_set(err, ING_ESTATE, "no current Parquet row");
    for (int c = 0; c < r->ncols; c++) {
        struct rcol *col = &r->cols[c];
        *rng_at(r, 0, c) = (struct range){col->row_s, col->row_e};
        col->scan_e = col->row_s;
        col->scan_v = col->row_v;
    }
    struct jctx j = {.r = r, .out = out, .err = err};
    return emit_present(&j, 0, 0);
}

/* ---------------------------------------------------------------- the row, step by step */

int pq_reader_row_begin(struct pq_reader *r)
{
    if (r->failed || r->done || r->row == 0 || r->rg < r->rg_begin || r->rg_row == 0)
        return ING_ESTATE;
    for (int c = 0; c < r->ncols; c++) {
        struct rcol *col = &r->cols[c];
        *rng_at(r, 0, c) = (struct range){col->row_s, col->row_e};
        col->scan_e = col->row_s;
        col->scan_v = col->row_v;
    }
    return 0;
}

int pq_reader_row_defined(struct pq_reader *r, int nid, int lvl)
{
    struct jctx j = {.r = r};
    const struct pq_rnode *n = &r->nodes[nid];
    int d = first_def(&j, n, lvl);
    if (d < 0)
        return ING_ESYNTAX;
    return d >= n->def_level;
}

int pq_reader_row_instance(struct pq_reader *r, int rn, int lvl, bool first)
{
    struct jctx j = {.r = r};
    return next_instance(&j, &r->nodes[rn], lvl, first);
}

int pq_reader_row_value(struct pq_reader *r, int column, int lvl, struct pq_value *out)
{
    struct jctx j = {.r = r};
    struct range *g = rng_at(r, lvl, column);
    if (g->e - g->s != 1)
        return ING_ESYNTAX;
    struct rcol *col = &r->cols[column];
    size_t vi;
    int rc = value_at(&j, col, column, g->s, &vi);
    if (rc)
        return rc;
    out->leaf = col->leaf;
    out->index = vi;
    if (col->width) {
        out->fixed = col->fv + vi * col->width;
        out->p = NULL;
        out->n = 0;
    } else {
        out->fixed = NULL;
        out->p = col->sv[vi].p;
        out->n = col->sv[vi].n;
    }
    return 0;
}

int pq_reader_row_node_json(struct pq_reader *r, int nid, int lvl, bool as_field,
                            struct buf *out)
{
    struct jctx j = {.r = r, .out = out};
    if (nid < 0 || nid >= r->nnodes)
        return ING_EINVAL;
    return as_field ? emit_field(&j, nid, lvl) : emit_present(&j, nid, lvl);
}

int pq_reader_value_json(struct pq_reader *r, const struct pq_value *v, struct buf *out)
{
    struct jctx j = {.r = r, .out = out};
    int column = v->leaf->column;
    if (column < 0 || column >= r->ncols || v->index >= r->cols[column].nval)
        return ING_EINVAL;
    return put_value(&j, &r->cols[column], column, v->index);
}
