/*
 * fs.h - file-system helpers with the durability rules ingot relies on.
 *
 * A batch is made visible by rename(2) of a finished directory followed by fsync of the parent,
 * so every helper that publishes something fsyncs what it wrote and the directory that names it.
 * All functions are thread-safe; paths are borrowed.
 */
#ifndef ING_UTIL_FS_H
#define ING_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/err.h"

/* mkdir -p with mode 0755. 0 or ING_EIO. */
int fs_mkdirs(const char *path, struct ing_err *err);
/* Remove a file or a whole tree; missing is not an error. */
int fs_rm_rf(const char *path, struct ing_err *err);
/* fsync a file or directory by path. */
int fs_fsync_path(const char *path, struct ing_err *err);
/* fsync the directory containing `path`. */
int fs_fsync_parent(const char *path, struct ing_err *err);
/* Write all n bytes at offset off (retrying short writes and EINTR). 0, or the errno of the
 * failing write. */
int fs_pwrite_all(int fd, const void *p, size_t n, int64_t off);
/* Read up to n bytes at offset off into p, retrying EINTR and short reads until n bytes are read
 * or the file ends: the count (below n only at the end of the file), or -1 with errno set. */
ssize_t fs_pread_all(int fd, void *p, size_t n, int64_t off);
/* Start the write-back of the bytes written to fd since the last kick once they reach
 * FS_KICK_BYTES, so that the fsync that follows a long write finds little left to write.
 * `*kicked` and `written` count bytes from offset `base`. Only a hint: errors surface at the
 * fsync. */
#define FS_KICK_BYTES (8 << 20)
void fs_kick_writeback(int fd, int64_t base, int64_t *kicked, int64_t written);
/* Write `len` bytes to path via a temp file + fsync + rename + fsync(parent). */
int fs_write_atomic(const char *path, const void *data, size_t len, struct ing_err *err);
/* rename(2) then fsync of both parents. */
int fs_rename_durable(const char *from, const char *to, struct ing_err *err);
/* Size of a regular file, or -1 if it does not exist / is not a file. */
int64_t fs_file_size(const char *path);
bool fs_exists(const char *path);

/* True when `rel` is a safe relative path to keep under a root: not empty, not absolute, no "."
 * or ".." segment, no empty segment, no backslash or NUL, at most 1024 bytes, each segment at
 * most 255 bytes. */
bool fs_rel_path_ok(const char *rel);

/* Call fn for every regular file under root (recursively), with the path relative to root, in
 * sorted order. Stops early and returns fn's value if it returns non-zero. */
typedef int fs_walk_fn(void *ctx, const char *relpath, int64_t size);
int fs_walk_files(const char *root, fs_walk_fn *fn, void *ctx, struct ing_err *err);

#endif
