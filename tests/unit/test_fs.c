/*
 * test_fs.c - unit tests for the file helpers of util/fs: positioned writes and the write-back
 * kick that long uploads use before their fsync.
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
#include <unistd.h>

#include "util/fs.h"

static int temp_fd(void)
{
    char path[] = "/tmp/ingot-test-fs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Bytes land at their offsets; a gap reads as zeros. */
static void test_pwrite_all_at_offsets(void **state)
{
    (void)state;
    int fd = temp_fd();
    assert_int_equal(fs_pwrite_all(fd, "world", 5, 6), 0);
    assert_int_equal(fs_pwrite_all(fd, "hello", 5, 0), 0);
    char got[11];
    assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
    assert_memory_equal(got, "hello\0world", sizeof(got));
    close(fd);
    /* A closed descriptor gives the errno of the failing write. */
    assert_int_not_equal(fs_pwrite_all(fd, "x", 1, 0), 0);
}

/* The kick waits for FS_KICK_BYTES since the last one, then covers everything written. */
static void test_kick_writeback_every_few_mib(void **state)
{
    (void)state;
    int fd = temp_fd();
    size_t n = FS_KICK_BYTES + 4096;
    char *data = calloc(1, n);
    assert_non_null(data);
    assert_int_equal(fs_pwrite_all(fd, data, n, 4096), 0);
    int64_t kicked = 0;
    fs_kick_writeback(fd, 4096, &kicked, FS_KICK_BYTES - 1);
    assert_int_equal(kicked, 0);
    fs_kick_writeback(fd, 4096, &kicked, FS_KICK_BYTES + 10);
    assert_int_equal(kicked, FS_KICK_BYTES + 10);
    fs_kick_writeback(fd, 4096, &kicked, (int64_t)n);
    assert_int_equal(kicked, FS_KICK_BYTES + 10);
    free(data);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pwrite_all_at_offsets),
        cmocka_unit_test(test_kick_writeback_every_few_mib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
