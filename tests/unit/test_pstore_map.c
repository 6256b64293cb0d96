/* test_pstore_map.c - unit tests of how a reader of stored answers (src/store/pstore_view.c)
 * maps profile.db again after the background checkpoint grew it: every remap it asks for must
 * really change the connection's mapping limit (SQLite ignores a request for the limit it
 * already has, and cuts one above its ceiling down to the ceiling), however many checkpoints
 * passed between two snapshots and whatever SQLite's ceiling. White-box: the checkpoint counter
 * and the idle reader come from src/store/pstore_int.h. Also the one scan of a dictionary
 * bucket (pstore__dict_scan, pstore_int.h) that the lookup, the hint and the batch reads share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pstore.h"
#include "store/pstore_int.h"
#include "util/buf.h"
#include "util/fs.h"

struct fixture {
    char dir[64];
    struct pstore *ps;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-pmap-XXXXXX");
    struct pstore_opts o = {.fast = true, .no_lookup_hint = true};
    if (!mkdtemp(fx->dir) || pstore_open(&fx->ps, fx->dir, &o, NULL) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pstore_close(fx->ps);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

/* One lookup (nothing is stored: "not found"), which begins a reader's snapshot; returns that
 * reader, idle again. */
static struct pstore_conn *lookup(struct pstore *ps)
{
    struct buf b = {0};
    int64_t stamp = 0;
    assert_int_equal(pstore_view_get(ps, 1, "x", &stamp, &b, NULL), ING_ENOTFOUND);
    buf_free(&b);
    assert_non_null(ps->view_free);
    return ps->view_free;
}

static sqlite3_int64 map_limit(struct pstore_conn *c)
{
    sqlite3_int64 limit = -1; /* only reads it */
    assert_int_equal(sqlite3_file_control(c->db, "main", SQLITE_FCNTL_MMAP_SIZE, &limit),
                     SQLITE_OK);
    return limit;
}

/* What a commit does to idle readers: their snapshots end, the next lookup begins one. */
static void commit_nothing(struct pstore *ps)
{
    struct pstore_tx *tx = NULL;
    assert_int_equal(pstore_begin(ps, &tx, NULL), 0);
    assert_int_equal(pstore_commit(tx, NULL), 0);
}

/* Checkpoints that copied pages since the reader's last snapshot: 1, 2 (the count's parity
 * unchanged) or 3; none leaves the mapping alone. */
static void remaps_every_time(struct pstore *ps)
{
    struct pstore_conn *c = lookup(ps);
    sqlite3_int64 before = map_limit(c);
    assert_true(before > 65536);
    const unsigned checkpoints[] = {1, 2, 2, 3, 0, 1};
    for (size_t i = 0; i < sizeof(checkpoints) / sizeof(checkpoints[0]); i++) {
        atomic_fetch_add(&ps->ckpt_copied, checkpoints[i]);
        commit_nothing(ps);
        assert_ptr_equal(lookup(ps), c);
        sqlite3_int64 now = map_limit(c);
        if (checkpoints[i] == 0)
            assert_true(now == before);
        else
            assert_true(now != before);
        assert_true(now > 0 && now <= PSTORE_MMAP_BYTES);
        before = now;
    }
}

static void test_remap_whatever_the_count(void **state)
{
    struct fixture *fx = *state;
    remaps_every_time(fx->ps);
}

/* SQLite's ceiling below the limits asked for (a build or a process configured with a smaller
 * one): both would be cut to the ceiling, so only a limit below the current one changes it. */
#define LOW_CEILING ((sqlite3_int64)1 << 20)

static int setup_low_ceiling(void **state)
{
    if (sqlite3_shutdown() != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MMAP_SIZE, (sqlite3_int64)0, LOW_CEILING) != SQLITE_OK ||
        sqlite3_initialize() != SQLITE_OK)
        return -1;
    return setup(state);
}

static int teardown_low_ceiling(void **state)
{
    teardown(state);
    /* back to the compile-time defaults */
    if (sqlite3_shutdown() != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MMAP_SIZE, (sqlite3_int64)-1, (sqlite3_int64)-1) !=
            SQLITE_OK ||
        sqlite3_initialize() != SQLITE_OK)
        return -1;
    return 0;
}

static void test_remap_under_a_low_ceiling(void **state)
{
    struct fixture *fx = *state;
    assert_true(map_limit(lookup(fx->ps)) == LOW_CEILING);
    remaps_every_time(fx->ps);
}

/* A bucket body of entries (fp, label), PSTORE_DICT_ENTRY bytes each, little-endian 48-bit. */
static void put_entry(uint8_t *p, uint64_t fp, uint64_t label)
{
    for (int i = 0; i < 6; i++) {
        p[i] = (uint8_t)(fp >> (8 * i));
        p[6 + i] = (uint8_t)(label >> (8 * i));
    }
}

static void test_dict_scan(void **state)
{
    (void)state;
    /* Sorted by fingerprint, with a run of three equal ones and both ends of the 48-bit range. */
    const uint64_t fps[] = {0, 5, 0x123456789AULL, 0x123456789AULL, 0x123456789AULL,
                            0x800000000000ULL, 0xFFFFFFFFFFFFULL};
    enum { N = sizeof(fps) / sizeof(fps[0]) };
    uint8_t body[N * PSTORE_DICT_ENTRY];
    for (size_t i = 0; i < N; i++)
        put_entry(body + i * PSTORE_DICT_ENTRY, fps[i], 100 + i);
    int64_t labels[4] = {-1, -1, -1, -1};
    assert_int_equal(pstore__dict_scan(body, N, 0x123456789AULL, labels, 4), 3);
    assert_true(labels[0] == 102 && labels[1] == 103 && labels[2] == 104 && labels[3] == -1);
    /* cap below the count: the first cap are filled, all are counted */
    labels[0] = labels[1] = -1;
    assert_int_equal(pstore__dict_scan(body, N, 0x123456789AULL, labels, 1), 3);
    assert_true(labels[0] == 102 && labels[1] == -1);
    assert_int_equal(pstore__dict_scan(body, N, 0x123456789AULL, NULL, 0), 3);
    assert_int_equal(pstore__dict_scan(body, N, 0, labels, 4), 1);
    assert_true(labels[0] == 100);
    assert_int_equal(pstore__dict_scan(body, N, 0xFFFFFFFFFFFFULL, labels, 4), 1);
    assert_true(labels[0] == 106);
    assert_int_equal(pstore__dict_scan(body, N, 0x800000000000ULL, labels, 4), 1);
    assert_true(labels[0] == 105);
    /* absent: between entries, below and above all, and an empty bucket */
    assert_int_equal(pstore__dict_scan(body, N, 6, labels, 4), 0);
    assert_int_equal(pstore__dict_scan(body + PSTORE_DICT_ENTRY, N - 1, 0, labels, 4), 0);
    assert_int_equal(pstore__dict_scan(body, N - 1, 0xFFFFFFFFFFFFULL, labels, 4), 0);
    assert_int_equal(pstore__dict_scan(body, 0, 5, labels, 4), 0);
    /* every fingerprint of a long bucket is found where the gallop starts from its guess */
    enum { LONG = 300 };
    uint8_t *big = malloc(LONG * PSTORE_DICT_ENTRY);
    assert_non_null(big);
    for (size_t i = 0; i < LONG; i++)
        put_entry(big + i * PSTORE_DICT_ENTRY, (uint64_t)i * i * 3000000ULL, i);
    for (size_t i = 0; i < LONG; i++) {
        assert_int_equal(pstore__dict_scan(big, LONG, (uint64_t)i * i * 3000000ULL, labels, 4), 1);
        assert_true(labels[0] == (int64_t)i);
        assert_int_equal(pstore__dict_scan(big, LONG, (uint64_t)i * i * 3000000ULL + 1, labels, 4),
                         0);
    }
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_scan),
        cmocka_unit_test_setup_teardown(test_remap_whatever_the_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remap_under_a_low_ceiling, setup_low_ceiling,
                                        teardown_low_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
