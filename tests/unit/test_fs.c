/*
 * test_fs.c - unit tests for the file helpers of util/fs: positioned reads and writes, and the
 * write-back kick that long uploads use before their fsync.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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

/* Reads fill the whole request from the offset; the end of the file shortens the count (0 past
 * it); a failure is -1 with errno. A read larger than one page cache page at an odd offset
 * crosses pages and still comes back whole. */
static void test_pread_all(void **state)
{
    (void)state;
    int fd = temp_fd();
    size_t n = 3 * 4096 + 123;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(fs_pwrite_all(fd, data, n, 0), 0);
    char *got = calloc(1, n);
    assert_non_null(got);
    assert_int_equal(fs_pread_all(fd, got, n - 7, 7), (ssize_t)(n - 7));
    assert_memory_equal(got, data + 7, n - 7);
    memset(got, 0, n);
    assert_int_equal(fs_pread_all(fd, got, 100, (int64_t)n - 10), 10);
    assert_memory_equal(got, data + n - 10, 10);
    assert_int_equal(fs_pread_all(fd, got, 100, (int64_t)n), 0);
    assert_int_equal(fs_pread_all(fd, got, 100, (int64_t)n + 5000), 0);
    assert_int_equal(fs_pread_all(fd, got, 0, 0), 0);
    close(fd);
    errno = 0;
    assert_int_equal(fs_pread_all(fd, got, 10, 0), -1);
    assert_int_equal(errno, EBADF);
    free(got);
    free(data);
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
        cmocka_unit_test(test_pread_all),
        cmocka_unit_test(test_kick_writeback_every_few_mib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
