/*
 * lake.c - the on-disk layout of staged uploads and the Parquet data lake; see lake.h.
 *
 * The lake is only paths and renames: it keeps the data directory and derives every other
 * location from (sandbox, dataset, batch). Publishing a batch's output is one durable rename of
 * its temporary folder, so a reader never sees half a batch.
 */
#include "lake/lake.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/id.h"
#include "util/mem.h"

struct lake {
    char *data_dir;
};

int lake_open(struct lake **out, const char *data_dir, struct ing_err *err)
{
    *out = NULL;
    if (!data_dir || !data_dir[0])
        return ing_err_set(err, ING_EINVAL, "lake: no data directory given");
    struct lake *lake = xcalloc(1, sizeof(*lake));
    lake->data_dir = xstrdup(data_dir);
    char *sandboxes = xasprintf("%s/sandboxes", data_dir);
    char *spool = lake_spool_dir(lake);
    int rc = fs_mkdirs(sandboxes, err);
    if (rc == 0)
        rc = fs_mkdirs(spool, err);
    free(sandboxes);
    free(spool);
    if (rc != 0) {
        lake_free(lake);
        return rc;
    }
    *out = lake;
    return 0;
}

void lake_free(struct lake *lake)
{
    if (!lake)
        return;
    free(lake->data_dir);
    free(lake);
}

const char *lake_data_dir(const struct lake *lake)
{
    return lake->data_dir;
}

char *lake_spool_dir(const struct lake *lake)
{
    return xasprintf("%s/spool", lake->data_dir);
}

char *lake_staging_dir(const struct lake *lake, const char *sandbox, const char *batch_id,
                       const char *dataset_id)
{
    return xasprintf("%s/sandboxes/%s/staging/%s/%s", lake->data_dir, sandbox, batch_id,
                     dataset_id);
}

char *lake_upload_dir(const struct lake *lake, const char *sandbox, const char *batch_id,
                      const char *dataset_id)
{
    return xasprintf("%s/sandboxes/%s/uploads/%s/%s", lake->data_dir, sandbox, batch_id,
                     dataset_id);
}

char *lake_batch_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                     const char *batch_id)
{
    return xasprintf("%s/sandboxes/%s/lake/%s/%s", lake->data_dir, sandbox, dataset_id, batch_id);
}

char *lake_batch_tmp_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                         const char *batch_id)
{
    return xasprintf("%s/sandboxes/%s/lake/%s/.tmp-%s", lake->data_dir, sandbox, dataset_id,
                     batch_id);
}

char *lake_spec_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                    const char *batch_id, unsigned n)
{
    return xasprintf("%s/sandboxes/%s/lake/%s/.spec-%s-%u", lake->data_dir, sandbox, dataset_id,
                     batch_id, n);
}

/* Sub-folders of `dir` (not starting with '.'), for the sweep's walk. NULL-terminated, new. */
static char **list_dirs(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 8;
    char **out = xcalloc(cap, sizeof(*out));
    size_t plen = prefix ? strlen(prefix) : 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (prefix ? strncmp(e->d_name, prefix, plen) != 0 : e->d_name[0] == '.')
            continue;
        if (n + 1 >= cap) {
            cap *= 2;
            out = xrealloc(out, cap * sizeof(*out));
        }
        out[n++] = xasprintf("%s/%s", dir, e->d_name);
    }
    out[n] = NULL;
    closedir(d);
    return out;
}

static void free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

int lake_sweep_spec_dirs(struct lake *lake)
{
    int removed = 0;
    char *root = xasprintf("%s/sandboxes", lake->data_dir);
    char **sandboxes = list_dirs(root, NULL);
    for (size_t i = 0; sandboxes && sandboxes[i]; i++) {
        char *lake_dir = xasprintf("%s/lake", sandboxes[i]);
        char **datasets = list_dirs(lake_dir, NULL);
        for (size_t k = 0; datasets && datasets[k]; k++) {
            char **spec = list_dirs(datasets[k], ".spec-");
            for (size_t j = 0; spec && spec[j]; j++)
                if (fs_rm_rf(spec[j], NULL) == 0)
                    removed++;
            free_list(spec);
        }
        free_list(datasets);
        free(lake_dir);
    }
    free_list(sandboxes);
    free(root);
    return removed;
}

/* Every id ends up in a path: refuse anything that could climb out of the data directory. */
static int check_ids(const char *sandbox, const char *dataset_id, const char *batch_id,
                     struct ing_err *err)
{
    if (!id_is_safe(sandbox) || !id_is_safe(dataset_id) || !id_is_safe(batch_id))
        return ing_err_set(err, ING_EINVAL, "lake: unsafe sandbox, dataset or batch id");
    return 0;
}

int lake_promote(struct lake *lake, const char *sandbox, const char *dataset_id,
                 const char *batch_id, struct ing_err *err)
{
    int rc = check_ids(sandbox, dataset_id, batch_id, err);
    if (rc != 0)
        return rc;
    char *tmp = lake_batch_tmp_dir(lake, sandbox, dataset_id, batch_id);
    char *final = lake_batch_dir(lake, sandbox, dataset_id, batch_id);
    if (!fs_exists(tmp)) {
        rc = ing_err_set(err, ING_ENOTFOUND, "lake: batch %s has no output to promote", batch_id);
        goto out;
    }
    /* rename(2) would happily replace an empty final folder; a batch is promoted once only. */
    if (fs_exists(final)) {
        rc = ing_err_set(err, ING_EEXIST, "lake: batch %s is already in the lake", batch_id);
        goto out;
    }
    /* The files inside were fsynced by their writers; the folder entries need it too. */
    rc = fs_fsync_path(tmp, err);
    if (rc == 0)
        rc = fs_rename_durable(tmp, final, err);
out:
    free(tmp);
    free(final);
    return rc;
}

int lake_discard_output(struct lake *lake, const char *sandbox, const char *dataset_id,
                        const char *batch_id, struct ing_err *err)
{
    int rc = check_ids(sandbox, dataset_id, batch_id, err);
    if (rc != 0)
        return rc;
    char *final = lake_batch_dir(lake, sandbox, dataset_id, batch_id);
    bool had_output = fs_exists(final);
    char *paths[4] = {
        lake_staging_dir(lake, sandbox, batch_id, dataset_id),
        lake_upload_dir(lake, sandbox, batch_id, dataset_id),
        lake_batch_tmp_dir(lake, sandbox, dataset_id, batch_id),
        final,
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(paths); i++) {
        int one = fs_rm_rf(paths[i], err);
        if (rc == 0)
            rc = one;
    }
    /* Promotion made the folder durable with an fsync of its parent; its removal needs the same,
     * or a crash could bring a reverted batch's files back. */
    if (rc == 0 && had_output)
        rc = fs_fsync_parent(final, err);
    for (size_t i = 0; i < ING_ARRAY_LEN(paths); i++)
        free(paths[i]);
    /* The batch's staging and upload folders hold one folder per dataset; drop them once empty
     * (rmdir fails harmlessly while other datasets' files are still there). */
    static const char *const per_batch[] = {"staging", "uploads"};
    for (size_t i = 0; i < ING_ARRAY_LEN(per_batch); i++) {
        char *dir = xasprintf("%s/sandboxes/%s/%s/%s", lake->data_dir, sandbox, per_batch[i],
                              batch_id);
        rmdir(dir);
        free(dir);
    }
    return rc;
}
