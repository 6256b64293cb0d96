/*
 * test_jsplit.c - unit tests for the JSON record splitter (src/json/jsplit.c).
 *
 * Every case runs over memory input and over a temporary file, with chunk sizes from 1 byte up,
 * so records straddle chunk boundaries at every position; the records, rows, offsets, corrupt
 * flags, the final result and the error position must be the same in all runs. The Luma
 * tutorial files are split and every record tokenized (INGOT_LUMA_DIR overrides their folder).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json/jsplit.h"
#include "json/jtok.h"

struct want_rec {
    const char *data;
    int64_t offset;
    bool corrupt;
};

struct split_case {
    const char *input;
    size_t len;                 /* 0: strlen(input) */
    enum jsplit_mode mode;
    bool multiline;
    size_t max_record;
    enum jsplit_mode want_mode;
    const struct want_rec *recs;
    size_t nrecs;
    int want_rc;                /* 0 or the ING_E* that ends the split */
    int64_t err_offset;         /* when want_rc != 0 */
};

static const size_t chunk_sizes[] = {1, 2, 3, 7, 16, 4096, 0};

static int tmp_file_with(const char *data, size_t len)
{
    char path[] = "/tmp/test_jsplit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* lazy: opts.lazy_corrupt; JSON Lines records then come `unchecked`, and jsplit_line_corrupt
 * must give the corrupt flag the full scan gives. */
static void run_one(const struct split_case *c, size_t len, size_t chunk, bool use_fd, bool lazy)
{
    struct jsplit_opts o = {.mode = c->mode, .multiline = c->multiline, .chunk_bytes = chunk,
                            .max_record = c->max_record, .lazy_corrupt = lazy};
    int fd = -1;
    struct jsplit *s;
    if (use_fd) {
        fd = tmp_file_with(c->input, len);
        s = jsplit_new(fd, &o);
    } else {
        s = jsplit_new_mem(c->input, len, &o);
    }
    assert_non_null(s);
    if (c->mode == JSPLIT_AUTO)
        assert_int_equal(jsplit_mode(s), JSPLIT_AUTO);
    struct jsplit_record r;
    struct ing_err err;
    ing_err_clear(&err);
    size_t i = 0;
    int rc;
    while ((rc = jsplit_next(s, &r, &err)) == 1) {
        if (i >= c->nrecs)
            fail_msg("<%s> chunk %zu fd %d: extra record %zu <%.*s>", c->input, chunk, use_fd,
                     i, (int)r.len, r.data);
        const struct want_rec *w = &c->recs[i];
        if (r.len != strlen(w->data) || memcmp(r.data, w->data, r.len) != 0)
            fail_msg("<%s> chunk %zu fd %d: record %zu is <%.*s>, want <%s>", c->input, chunk,
                     use_fd, i, (int)r.len, r.data, w->data);
        assert_int_equal(r.row, (int64_t)i + 1);
        if (r.offset != w->offset)
            fail_msg("<%s> chunk %zu: record %zu offset %lld, want %lld", c->input, chunk, i,
                     (long long)r.offset, (long long)w->offset);
        bool lines = jsplit_mode(s) == JSPLIT_LINES;
        assert_int_equal(r.unchecked, lazy && lines);
        bool corrupt = r.unchecked ? !r.corrupt && jsplit_line_corrupt(r.data, r.len) : r.corrupt;
        if (corrupt != w->corrupt)
            fail_msg("<%s> chunk %zu lazy %d: record %zu corrupt=%d", c->input, chunk, lazy, i,
                     corrupt);
        i++;
    }
    if (rc != c->want_rc)
        fail_msg("<%s> chunk %zu fd %d: rc %d (%s), want %d", c->input, chunk, use_fd, rc,
                 err.msg, c->want_rc);
    if (i != c->nrecs)
        fail_msg("<%s> chunk %zu fd %d: %zu records, want %zu", c->input, chunk, use_fd, i,
                 c->nrecs);
    assert_int_equal(jsplit_mode(s), c->want_mode);
    if (rc == 0) {
        assert_int_equal(jsplit_bytes_read(s), (int64_t)len);
        assert_int_equal(jsplit_next(s, &r, &err), 0); /* stays at the end */
    } else {
        if (err.offset != c->err_offset)
            fail_msg("<%s> chunk %zu: error offset %lld, want %lld (%s)", c->input, chunk,
                     (long long)err.offset, (long long)c->err_offset, err.msg);
        assert_int_equal(err.row, (int64_t)c->nrecs + 1);
        assert_int_equal(err.code, rc);
        assert_true(strlen(err.msg) > 0);
        ing_err_clear(&err);
        assert_int_equal(jsplit_next(s, &r, &err), rc); /* sticky, with the same position */
        assert_int_equal(err.offset, c->err_offset);
    }
    jsplit_free(s);
    if (fd >= 0)
        close(fd);
}

static void run_case(const struct split_case *c)
{
    size_t len = c->len ? c->len : strlen(c->input);
    for (size_t k = 0; k < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); k++) {
        run_one(c, len, chunk_sizes[k], false, false);
        run_one(c, len, chunk_sizes[k], true, false);
        run_one(c, len, chunk_sizes[k], false, true);
        run_one(c, len, chunk_sizes[k], true, true);
    }
}

#define RECS(...) (const struct want_rec[]){__VA_ARGS__}, \
                  sizeof((const struct want_rec[]){__VA_ARGS__}) / sizeof(struct want_rec)

static void test_lines_basic(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "{\"a\":1}\n{\"b\":[1,2]}\n\"s\"\n42\n",
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":1}", 0, false}, {"{\"b\":[1,2]}", 8, false}, {"\"s\"", 20, false},
             {"42", 24, false}),
    };
    run_case(&c);
}

static void test_lines_crlf_blank_final(void **state)
{
    (void)state;
    /* CRLF, blank and whitespace-only lines, leading blanks, a last line without newline */
    struct split_case c = {
        .input = "\r\n{\"a\":1}\r\n\r\n   \n  {\"b\":2}  \r\n\t\n{\"c\":3}",
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":1}", 2, false}, {"{\"b\":2}", 19, false}, {"{\"c\":3}", 32, false}),
    };
    run_case(&c);
}

static void test_lines_bom(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "\xef\xbb\xbf{\"a\":\"\xc3\xa9\"}\n{}\n",
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":\"\xc3\xa9\"}", 3, false}, {"{}", 14, false}),
    };
    run_case(&c);
    /* a BOM alone is an empty file */
    struct split_case e = {.input = "\xef\xbb\xbf", .want_mode = JSPLIT_LINES};
    run_case(&e);
    /* a partial BOM is data, not skipped */
    struct split_case p = {.input = "\xef\xbb{}\n", .want_mode = JSPLIT_LINES,
                           RECS({"\xef\xbb{}", 0, false})};
    run_case(&p);
}

static void test_lines_strings_with_brackets(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "{\"a\":\"}]\\\"{[\",\"b\":\"\\\\\"}\n{\"c\":\"x\\\\\\\"]\"}\n",
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":\"}]\\\"{[\",\"b\":\"\\\\\"}", 0, false},
             {"{\"c\":\"x\\\\\\\"]\"}", 24, false}),
    };
    run_case(&c);
}

static void test_lines_corrupt(void **state)
{
    (void)state;
    /* broken lines come back flagged and splitting carries on with the next line */
    struct split_case c = {
        .input = "{\"a\":1\n"          /* not closed */
                 "{\"a\":\"x}\n"       /* string not closed */
                 "{\"a\":1}}\n"        /* one close too many */
                 "{\"a\":[1}]\n"       /* mismatched brackets */
                 "]\n"
                 "{\"ok\":true}\n"
                 "{\"a\":\"x\\\n"      /* backslash right before the newline */
                 "{missingQuotes: 'v1'}\n" /* balanced: jtok will reject it, not the splitter */
                 "[1,2]\n",
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":1", 0, true}, {"{\"a\":\"x}", 7, true}, {"{\"a\":1}}", 16, true},
             {"{\"a\":[1}]", 25, true}, {"]", 35, true}, {"{\"ok\":true}", 37, false},
             {"{\"a\":\"x\\", 49, true}, {"{missingQuotes: 'v1'}", 58, false},
             {"[1,2]", 80, false}),
        .mode = JSPLIT_LINES,
    };
    c.want_mode = JSPLIT_LINES;
    run_case(&c);
    /* an unclosed last line without newline */
    struct split_case d = {.input = "{}\n{\"a\":[", .want_mode = JSPLIT_LINES,
                           RECS({"{}", 0, false}, {"{\"a\":[", 3, true})};
    run_case(&d);
}

static void test_lines_max_record(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "{\"a\":1}\n{\"b\":\"0123456789\"}\n{}\n",
        .max_record = 10,
        .want_mode = JSPLIT_LINES,
        RECS({"{\"a\":1}", 0, false}),
        .want_rc = ING_ETOOBIG,
        .err_offset = 8,
    };
    run_case(&c);
    /* exactly at the limit is fine */
    struct split_case d = {.input = "0123456789\n", .max_record = 10,
                           .want_mode = JSPLIT_LINES, RECS({"0123456789", 0, false})};
    run_case(&d);
}

static void test_empty_inputs(void **state)
{
    (void)state;
    struct split_case a = {.input = "", .want_mode = JSPLIT_LINES};
    run_case(&a);
    struct split_case b = {.input = " \n\r\n\t ", .want_mode = JSPLIT_LINES};
    run_case(&b);
    struct split_case c = {.input = "\n\n", .multiline = true, .want_mode = JSPLIT_CONCAT};
    run_case(&c);
    struct split_case d = {.input = "[]", .want_mode = JSPLIT_ARRAY};
    run_case(&d);
    struct split_case e = {.input = " \n[ \n\t ]\n ", .want_mode = JSPLIT_ARRAY};
    run_case(&e);
    /* an empty file cannot be a JSON array when array mode is forced */
    struct split_case f = {.input = "  ", .mode = JSPLIT_ARRAY, .want_mode = JSPLIT_ARRAY,
                           .want_rc = ING_ESYNTAX, .err_offset = 2};
    run_case(&f);
}

static void test_array_basic(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "[{\"a\":1},{\"b\":[1,[2]]} ,\n {\"c\":{\"d\":{}}}]\n",
        .want_mode = JSPLIT_ARRAY,
        RECS({"{\"a\":1}", 1, false}, {"{\"b\":[1,[2]]}", 9, false},
             {"{\"c\":{\"d\":{}}}", 26, false}),
    };
    run_case(&c);
}

static void test_array_pretty_multiline(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "\xef\xbb\xbf[\r\n  {\r\n    \"a\": \"x]\",\r\n    \"b\": [\r\n      1\r\n    ]\r\n"
                 "  },\r\n  {\"c\": \"\\\"}\"}\r\n]\r\n",
        .want_mode = JSPLIT_ARRAY,
        RECS({"{\r\n    \"a\": \"x]\",\r\n    \"b\": [\r\n      1\r\n    ]\r\n  }", 8, false},
             {"{\"c\": \"\\\"}\"}", 63, false}),
    };
    run_case(&c);
}

static void test_array_scalars_and_nested(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "[1, \"s]\\\"\", true,null , -2.5e3,[1,[]],[],{}]",
        .want_mode = JSPLIT_ARRAY,
        RECS({"1", 1, false}, {"\"s]\\\"\"", 4, false}, {"true", 12, false},
             {"null", 17, false}, {"-2.5e3", 24, false}, {"[1,[]]", 31, false},
             {"[]", 38, false}, {"{}", 41, false}),
    };
    run_case(&c);
}

static void test_array_errors(void **state)
{
    (void)state;
    const struct split_case cases[] = {
        /* trailing garbage after ']' */
        {.input = "[{\"a\":1}] x", .want_mode = JSPLIT_ARRAY, RECS({"{\"a\":1}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 10},
        {.input = "[]]", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX, .err_offset = 2},
        /* trailing comma, leading comma, double comma, missing comma */
        {.input = "[{},]", .want_mode = JSPLIT_ARRAY, RECS({"{}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 4},
        {.input = "[,{}]", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX, .err_offset = 1},
        {.input = "[{},,{}]", .want_mode = JSPLIT_ARRAY, RECS({"{}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 4},
        {.input = "[{} {}]", .want_mode = JSPLIT_ARRAY, RECS({"{}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 4},
        /* not closed */
        {.input = "[{\"a\":1},", .want_mode = JSPLIT_ARRAY, RECS({"{\"a\":1}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 9},
        {.input = "[{\"a\":1}", .want_mode = JSPLIT_ARRAY, RECS({"{\"a\":1}", 1, false}),
         .want_rc = ING_ESYNTAX, .err_offset = 8},
        {.input = "[{\"a\":[1,2}", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX,
         .err_offset = 10},
        {.input = "[{\"a\":\"xyz", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX,
         .err_offset = 10},
        /* mismatched brackets inside a record */
        {.input = "[{\"a\":1], {}]", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX,
         .err_offset = 7},
        /* a closing bracket where a record should start */
        {.input = "[}]", .want_mode = JSPLIT_ARRAY, .want_rc = ING_ESYNTAX, .err_offset = 1},
        /* forced array mode on something else */
        {.input = "{\"a\":1}", .mode = JSPLIT_ARRAY, .want_mode = JSPLIT_ARRAY,
         .want_rc = ING_ESYNTAX, .err_offset = 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_array_max_record(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "[{\"a\":1}, {\"b\":\"0123456789\"}]",
        .max_record = 12,
        .want_mode = JSPLIT_ARRAY,
        RECS({"{\"a\":1}", 1, false}),
        .want_rc = ING_ETOOBIG,
        .err_offset = 10,
    };
    run_case(&c);
}

static void test_concat(void **state)
{
    (void)state;
    struct split_case c = {
        .input = "{\n  \"a\": 1\n}\n{\"b\":\n[2,\n3]}  {\"c\":\"}\"}\n\n7 \"x\" [1]\n",
        .multiline = true,
        .want_mode = JSPLIT_CONCAT,
        RECS({"{\n  \"a\": 1\n}", 0, false}, {"{\"b\":\n[2,\n3]}", 13, false},
             {"{\"c\":\"}\"}", 28, false}, {"7", 39, false}, {"\"x\"", 41, false},
             {"[1]", 45, false}),
    };
    run_case(&c);
    /* forced concatenated mode */
    struct split_case d = {.input = "{}{}", .mode = JSPLIT_CONCAT, .want_mode = JSPLIT_CONCAT,
                           RECS({"{}", 0, false}, {"{}", 2, false})};
    run_case(&d);
    /* JSON Lines read as concatenated values gives the same records */
    struct split_case e = {.input = "{\"a\":1}\r\n{\"b\":2}", .multiline = true,
                           .want_mode = JSPLIT_CONCAT,
                           RECS({"{\"a\":1}", 0, false}, {"{\"b\":2}", 9, false})};
    run_case(&e);
    /* AUTO with multiline still detects an array */
    struct split_case f = {.input = "[{}]", .multiline = true, .want_mode = JSPLIT_ARRAY,
                           RECS({"{}", 1, false})};
    run_case(&f);
}

static void test_concat_errors(void **state)
{
    (void)state;
    const struct split_case cases[] = {
        {.input = "{\"a\":1}\n{\"b\":", .multiline = true, .want_mode = JSPLIT_CONCAT,
         RECS({"{\"a\":1}", 0, false}), .want_rc = ING_ESYNTAX, .err_offset = 13},
        {.input = "{}, {}", .multiline = true, .want_mode = JSPLIT_CONCAT,
         RECS({"{}", 0, false}), .want_rc = ING_ESYNTAX, .err_offset = 2},
        {.input = "{]", .multiline = true, .want_mode = JSPLIT_CONCAT,
         .want_rc = ING_ESYNTAX, .err_offset = 1},
        {.input = "\"abc", .multiline = true, .want_mode = JSPLIT_CONCAT,
         .want_rc = ING_ESYNTAX, .err_offset = 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_binary_and_nul_bytes(void **state)
{
    (void)state;
    /* NUL bytes are ordinary bytes to the splitter (jtok rejects them later) */
    static const char in[] = "{\"a\":\"x\0y\"}\n\0\n";
    /* checked by hand: the strlen-based case tables cannot hold NULs */
    struct jsplit *s = jsplit_new_mem(in, sizeof(in) - 1, &(struct jsplit_opts){.chunk_bytes = 3});
    struct jsplit_record r;
    assert_int_equal(jsplit_next(s, &r, NULL), 1);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.data, in, 11);
    assert_false(r.corrupt);
    assert_int_equal(jsplit_next(s, &r, NULL), 1);
    assert_int_equal(r.len, 1);
    assert_int_equal(r.offset, 12);
    assert_int_equal(jsplit_next(s, &r, NULL), 0);
    jsplit_free(s);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* deeper than the bracket-kind bit set: counted, still split correctly */
    size_t depth = 5000;
    char *in = malloc(depth * 2 + 4);
    assert_non_null(in);
    in[0] = '[';
    memset(in + 1, '[', depth);
    memset(in + 1 + depth, ']', depth);
    in[1 + 2 * depth] = ']';
    in[2 + 2 * depth] = 0;
    struct jsplit *s = jsplit_new_mem(in, strlen(in), &(struct jsplit_opts){.chunk_bytes = 7});
    struct jsplit_record r;
    assert_int_equal(jsplit_next(s, &r, NULL), 1);
    assert_int_equal(r.len, 2 * depth);
    assert_int_equal(r.offset, 1);
    assert_int_equal(jsplit_next(s, &r, NULL), 0);
    assert_int_equal(jsplit_mode(s), JSPLIT_ARRAY);
    jsplit_free(s);
    free(in);
}

/* Records long enough for the 16-byte block scanner, with quotes, brackets, escapes and the
 * newline at every position relative to a block; built in code, checked in every mode. */
static void test_block_positions(void **state)
{
    (void)state;
    enum { NREC = 48 };
    char *recs[NREC];
    size_t lens[NREC];
    for (int i = 0; i < NREC; i++) {
        char pad[64];
        memset(pad, 'x', (size_t)i);
        pad[i] = 0;
        /* odd records carry escapes (the byte-loop block), even ones do not */
        recs[i] = malloc(256);
        assert_non_null(recs[i]);
        int n = snprintf(recs[i], 256,
                         i % 2 ? "{\"p\":\"%s\",\"a\":[1,{\"b\":\"]}\\\"[\"}],\"c\":\"\\\\\",\"d\":{}}"
                               : "{\"p\":\"%s\",\"a\":[1,{\"b\":\"]}[{\"}],\"c\":\"\",\"d\":[[]]}",
                         pad);
        lens[i] = (size_t)n;
    }
    static const enum jsplit_mode modes[] = {JSPLIT_LINES, JSPLIT_ARRAY, JSPLIT_CONCAT};
    for (size_t m = 0; m < 3; m++) {
        char *in = malloc(NREC * 260 + 4);
        assert_non_null(in);
        size_t len = 0;
        int64_t offs[NREC];
        if (modes[m] == JSPLIT_ARRAY)
            in[len++] = '[';
        for (int i = 0; i < NREC; i++) {
            if (i && modes[m] == JSPLIT_ARRAY)
                in[len++] = ',';
            offs[i] = (int64_t)len;
            memcpy(in + len, recs[i], lens[i]);
            len += lens[i];
            in[len++] = '\n';
        }
        if (modes[m] == JSPLIT_ARRAY)
            in[len++] = ']';
        for (size_t k = 0; k < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); k++) {
            struct jsplit *sp = jsplit_new_mem(
                in, len, &(struct jsplit_opts){.mode = modes[m], .chunk_bytes = chunk_sizes[k]});
            struct jsplit_record r;
            for (int i = 0; i < NREC; i++) {
                assert_int_equal(jsplit_next(sp, &r, NULL), 1);
                assert_int_equal(r.len, lens[i]);
                assert_memory_equal(r.data, recs[i], lens[i]);
                assert_int_equal(r.offset, offs[i]);
                assert_false(r.corrupt);
            }
            assert_int_equal(jsplit_next(sp, &r, NULL), 0);
            jsplit_free(sp);
        }
        /* JSON Lines: drop each record's last '}' and every line must come back corrupt */
        if (modes[m] == JSPLIT_LINES) {
            size_t o = 0;
            for (int i = 0; i < NREC; i++) {
                memcpy(in + o, recs[i], lens[i] - 1);
                o += lens[i] - 1;
                in[o++] = '\n';
            }
            struct jsplit *sp = jsplit_new_mem(in, o, NULL);
            struct jsplit_record r;
            for (int i = 0; i < NREC; i++) {
                assert_int_equal(jsplit_next(sp, &r, NULL), 1);
                assert_int_equal(r.len, lens[i] - 1);
                assert_true(r.corrupt);
            }
            assert_int_equal(jsplit_next(sp, &r, NULL), 0);
            jsplit_free(sp);
        }
        free(in);
    }
    for (int i = 0; i < NREC; i++)
        free(recs[i]);
}

static void test_free_null_and_defaults(void **state)
{
    (void)state;
    jsplit_free(NULL);
    /* NULL options: AUTO, default chunk and limit */
    struct jsplit *s = jsplit_new_mem("{}\n", 3, NULL);
    struct jsplit_record r;
    assert_int_equal(jsplit_next(s, &r, NULL), 1);
    assert_int_equal(jsplit_mode(s), JSPLIT_LINES);
    assert_int_equal(jsplit_next(s, &r, NULL), 0);
    assert_int_equal(jsplit_bytes_read(s), 3);
    jsplit_free(s);
}

static void test_fd_read_error(void **state)
{
    (void)state;
    /* a directory cannot be read: ING_EIO with errno */
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    struct jsplit *s = jsplit_new(fd, NULL);
    struct jsplit_record r;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(jsplit_next(s, &r, &err), ING_EIO);
    assert_int_equal(err.code, ING_EIO);
    assert_true(err.sys_errno != 0);
    jsplit_free(s);
    close(fd);
}

/* The Luma tutorial files: split by fd (default and 7-byte chunks), tokenize every record. */
static void check_luma(const char *name, int64_t want_records, enum jsplit_mode want_mode)
{
    const char *dir = getenv("INGOT_LUMA_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/reference/luma", name);
    struct stat st;
    if (stat(path, &st) != 0) {
        print_message("skipping: %s not found\n", path);
        skip();
    }
    static const size_t chunks[] = {0, 7};
    for (size_t k = 0; k < 2; k++) {
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        struct jsplit *s = jsplit_new(fd, &(struct jsplit_opts){.chunk_bytes = chunks[k]});
        struct jsplit_record r;
        struct ing_err err;
        ing_err_clear(&err);
        int64_t n = 0, prev_end = 0;
        int rc;
        while ((rc = jsplit_next(s, &r, &err)) == 1) {
            n++;
            assert_int_equal(r.row, n);
            assert_false(r.corrupt);
            assert_true(r.offset >= prev_end);
            prev_end = r.offset + (int64_t)r.len;
            struct jlex lx;
            struct jtok t;
            jlex_init(&lx, r.data, r.len);
            assert_int_equal(jlex_next(&lx, &t, &err), 0);
            assert_int_equal(t.type, JT_OBJ_BEGIN);
            do {
                if (jlex_next(&lx, &t, &err) != 0)
                    fail_msg("%s record %lld: %s", name, (long long)n, err.msg);
            } while (t.type != JT_END);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(n, want_records);
        assert_int_equal(jsplit_mode(s), want_mode);
        assert_int_equal(jsplit_bytes_read(s), st.st_size);
        jsplit_free(s);
        close(fd);
    }
}

static void test_luma_loyalty(void **state)
{
    (void)state;
    check_luma("luma-loyalty.json", 1000, JSPLIT_ARRAY);
}

static void test_luma_crm(void **state)
{
    (void)state;
    check_luma("luma-crm.json", 1001, JSPLIT_ARRAY);
}

static void test_luma_offline_purchases(void **state)
{
    (void)state;
    check_luma("luma-offline-purchases.json", 1000, JSPLIT_ARRAY);
}

static void test_luma_offline_purchases_jsonl(void **state)
{
    (void)state;
    check_luma("platform-utils/luma-offline-purchases.json", 1000, JSPLIT_LINES);
}

static void test_luma_pretty_loyalty(void **state)
{
    (void)state;
    check_luma("platform-utils/luma-loyalty.json", 1000, JSPLIT_ARRAY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_basic),
        cmocka_unit_test(test_lines_crlf_blank_final),
        cmocka_unit_test(test_lines_bom),
        cmocka_unit_test(test_lines_strings_with_brackets),
        cmocka_unit_test(test_lines_corrupt),
        cmocka_unit_test(test_lines_max_record),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_array_basic),
        cmocka_unit_test(test_array_pretty_multiline),
        cmocka_unit_test(test_array_scalars_and_nested),
        cmocka_unit_test(test_array_errors),
        cmocka_unit_test(test_array_max_record),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_concat_errors),
        cmocka_unit_test(test_binary_and_nul_bytes),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_block_positions),
        cmocka_unit_test(test_free_null_and_defaults),
        cmocka_unit_test(test_fd_read_error),
        cmocka_unit_test(test_luma_loyalty),
        cmocka_unit_test(test_luma_crm),
        cmocka_unit_test(test_luma_offline_purchases),
        cmocka_unit_test(test_luma_offline_purchases_jsonl),
        cmocka_unit_test(test_luma_pretty_loyalty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
