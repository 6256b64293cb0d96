/* fs.c - durable file-system helpers; see fs.h. */
#include "util/fs.h"
#include "util/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdirs(const char *path, struct ing_err *err)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return ing_err_set(err, ING_EINVAL, "path too long: %s", path);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return ing_err_errno(err, errno, "mkdir %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return ing_err_errno(err, errno, "mkdir %s", tmp);
    return 0;
}

int fs_rm_rf(const char *path, struct ing_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : ing_err_errno(err, errno, "stat %s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return ing_err_errno(err, errno, "unlink %s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return ing_err_errno(err, errno, "opendir %s", path);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *child = xasprintf("%s/%s", path, de->d_name);
        rc = fs_rm_rf(child, err);
        free(child);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = ing_err_errno(err, errno, "rmdir %s", path);
    return rc;
}

int fs_fsync_path(const char *path, struct ing_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ing_err_errno(err, errno, "open %s", path);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = ing_err_errno(err, errno, "fsync %s", path);
    close(fd);
    return rc;
}

int fs_fsync_parent(const char *path, struct ing_err *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash)
        return fs_fsync_path(".", err);
    if (slash == tmp)
        slash[1] = '\0';
    else
        *slash = '\0';
    return fs_fsync_path(tmp, err);
}

int fs_write_atomic(const char *path, const void *data, size_t len, struct ing_err *err)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ing_err_errno(err, errno, "open %s", tmp);
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = ing_err_errno(err, errno, "write %s", tmp);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = ing_err_errno(err, errno, "fsync %s", tmp);
        goto out;
    }
    close(fd);
    fd = -1;
    rc = fs_rename_durable(tmp, path, err);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int fs_rename_durable(const char *from, const char *to, struct ing_err *err)
{
    if (rename(from, to) != 0)
        return ing_err_errno(err, errno, "rename %s -> %s", from, to);
    int rc = fs_fsync_parent(to, err);
    if (rc == 0)
        rc = fs_fsync_parent(from, err);
    return rc;
}

int64_t fs_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    return (int64_t)st.st_size;
}

bool fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool fs_rel_path_ok(const char *rel)
{
    size_t n = rel ? strlen(rel) : 0;
    if (n == 0 || n > 1024 || rel[0] == '/')
        return false;
    const char *seg = rel;
    for (size_t i = 0; i <= n; i++) {
        char c = rel[i];
        if (c == '\\')
            return false;
        if (c == '/' || c == '\0') {
            size_t len = (size_t)(rel + i - seg);
            if (len == 0 || len > 255)
                return false;
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            seg = rel + i + 1;
        } else if ((unsigned char)c < 0x20) {
            return false;
        }
    }
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(const char *root, const char *rel, fs_walk_fn *fn, void *ctx, struct ing_err *err)
{
    char *dir = rel[0] ? xasprintf("%s/%s", root, rel) : xstrdup(root);
    DIR *d = opendir(dir);
    if (!d) {
        int rc = errno == ENOENT ? 0 : ing_err_errno(err, errno, "opendir %s", dir);
        free(dir);
        return rc;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[count++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(*names), cmp_names);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        char *childrel = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
        char *full = xasprintf("%s/%s", root, childrel);
        struct stat st;
        if (lstat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(root, childrel, fn, ctx, err);
            else if (S_ISREG(st.st_mode))
                rc = fn(ctx, childrel, (int64_t)st.st_size);
        }
        free(full);
        free(childrel);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    free(dir);
    return rc;
}

int fs_walk_files(const char *root, fs_walk_fn *fn, void *ctx, struct ing_err *err)
{
    return walk(root, "", fn, ctx, err);
}

int fs_pwrite_all(int fd, const void *p, size_t n, int64_t off)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        b += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t fs_pread_all(int fd, void *p, size_t n, int64_t off)
{
    char *b = p;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, b + done, n - done, (off_t)off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

void fs_kick_writeback(int fd, int64_t base, int64_t *kicked, int64_t written)
{
    if (written - *kicked < FS_KICK_BYTES)
        return;
    (void)sync_file_range(fd, base + *kicked, written - *kicked, SYNC_FILE_RANGE_WRITE);
    *kicked = written;
}
