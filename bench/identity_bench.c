/*
 * identity_bench.c - identity stitching of N generated records, persisted (product.md: a million
 * records in under 2 s).
 *
 * Each record carries a loyalty id and a CRM id (Luma-shaped); one record in ten shares its CRM id
 * with the previous record, so clusters merge inside the batch. The batch is gathered in memory
 * (struct idg_batch), stitched with idg_apply_batch and committed with synchronous=FULL, exactly
 * as the downstream identity stage does; then a second batch of N/10 records that link to
 * existing identities measures the incremental merge. Reading and validating the rows is the
 * ingestion benchmark's business and is not timed here. Printed per batch: wall and thread CPU
 * time, and the process's minor page faults (first touches of memory: a trap each on a VM).
 *
 *   make BUILD=release OUT=build/release   (for libingot.a)
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/identity_bench.c build/release/libingot.a \
 *       $(pkg-config --libs jansson sqlite3 libzstd snappy zlib liblz4 libmicrohttpd) \
 *       -lm -pthread -o build/identity_bench
 *   build/identity_bench [N] [dir]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "identity/idgraph.h"
#include "store/pstore.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/mem.h"

static double ms_since(int64_t t0)
{
    return (double)(clock_mono_ns() - t0) / 1e6;
}

/* CPU time of this thread, ms: on a shared machine wall time also counts other processes. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Minor page faults of the process so far: first touches of memory, which cost a trap each on
 * a paravirtualised VM (the largest single cost of a fresh batch before huge pages). */
static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static int die(const char *what, const struct ing_err *err)
{
    fprintf(stderr, "identity_bench: %s: %s\n", what, err->msg);
    return 1;
}

/* Stitch one generated batch; prints the timings. */
static int run_batch(struct pstore *ps, struct idgraph *g, int64_t loyalty, int64_t crm,
                     const char *name, long first, long n, long link_back)
{
    struct ing_err err;
    ing_err_clear(&err);
    /* The values as a reader would hand them over; making them is not timed. */
    char (*lids)[24] = malloc((size_t)n * sizeof(*lids));
    char (*cids)[40] = malloc((size_t)n * sizeof(*cids));
    for (long i = first; i < first + n; i++) {
        snprintf(lids[i - first], sizeof(*lids), "%ld", 5000000 + i);
        /* every tenth record reuses the previous CRM id: a merge; link_back points the record
         * at an identity of an earlier batch */
        long c = (i % 10 == 9) ? i - 1 : i;
        if (link_back)
            c = i - link_back;
        snprintf(cids[i - first], sizeof(*cids), "crm%016lx", (unsigned long)c * 2654435761UL);
    }
    int64_t t0 = clock_mono_ns();
    double c0 = cpu_ms();
    long f0 = minor_faults();
    struct idg_batch *b = idg_batch_new();
    for (long i = 0; i < n; i++) {
        int64_t gids[2] = {loyalty, crm};
        const char *vals[2] = {lids[i], cids[i]};
        idg_batch_add_row(b, gids, vals, 2);
    }
    double gather = ms_since(t0);
    int64_t t1 = clock_mono_ns();
    struct pstore_tx *tx = NULL;
    int64_t seq = 0;
    struct idg_apply_result res;
    if (pstore_begin(ps, &tx, &err) || pstore_tx_batch_seq(tx, name, "ds", &seq, &err) ||
        idg_apply_batch(g, tx, b, seq, 1000 + first, &res, &err)) {
        pstore_rollback(tx);
        idg_batch_free(b);
        free(lids);
        free(cids);
        return die("apply", &err);
    }
    double apply = ms_since(t1);
    int64_t t2 = clock_mono_ns();
    if (pstore_commit(tx, &err)) {
        idg_batch_free(b);
        free(lids);
        free(cids);
        return die("commit", &err);
    }
    double commit = ms_since(t2);
    double total = ms_since(t0), cpu = cpu_ms() - c0;
    long faults = minor_faults() - f0;
    printf("%s: records=%ld identities=%zu new=%lld links=%lld merged=%lld | gather %.0f ms, "
           "stitch+write %.0f ms, commit %.0f ms, total %.0f ms wall, %.0f ms cpu, "
           "%ld page faults (%.0f records/s wall)\n",
           name, n, idg_batch_identities(b), (long long)res.identities_new,
           (long long)res.links, (long long)res.clusters_merged, gather, apply, commit, total,
           cpu, faults, (double)n / (total / 1000.0));
    idg_batch_free(b);
    free(lids);
    free(cids);
    return 0;
}

int main(int argc, char **argv)
{
    mem_tune_process(argv); /* as `ingot serve` does (util/mem.h) */
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    const char *dir = argc > 2 ? argv[2] : "/tmp/ingot-identity-bench";
    struct ing_err err;
    ing_err_clear(&err);
    fs_rm_rf(dir, NULL);
    struct pstore *ps = NULL;
    struct idgraph *g = NULL;
    struct idg_settings s = {.max_identities = IDG_DEFAULT_LIMIT, .removal = IDG_REMOVE_AEP};
    if (pstore_open(&ps, dir, NULL, &err) || idgraph_new(&g, ps, NULL, &s, &err))
        return die("open", &err);
    struct pstore_tx *tx = NULL;
    int64_t loyalty = 0, crm = 0;
    if (pstore_begin(ps, &tx, &err) ||
        pstore_tx_ns_ensure(tx, "prod", "lumaLoyaltyId", 1001, "CROSS_DEVICE", &loyalty, &err) ||
        pstore_tx_ns_ensure(tx, "prod", "lumaCrmId", 1002, "CROSS_DEVICE", &crm, &err) ||
        pstore_commit(tx, &err))
        return die("namespaces", &err);
    int rc = run_batch(ps, g, loyalty, crm, "fresh", 0, n, 0);
    if (rc == 0)
        rc = run_batch(ps, g, loyalty, crm, "incremental", n, n / 10, n / 2);
    idgraph_free(g);
    pstore_close(ps);
    /* what was written: the database after the WAL's checkpoint at close */
    char *path = NULL;
    struct stat sb;
    if (asprintf(&path, "%s/profile.db", dir) > 0 && stat(path, &sb) == 0)
        printf("profile.db: %.1f MB\n", (double)sb.st_size / 1e6);
    free(path);
    fs_rm_rf(dir, NULL);
    return rc;
}
