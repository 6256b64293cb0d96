/*
 * main.c - the `ingot` command: wiring, signals and subcommands.
 *
 *   ingot serve [--data DIR] [--listen HOST:PORT] [--tenant NAME] [--org ID] [--workers N]
 *
 * `serve` opens the store and the lake under the data directory, starts the batch workers
 * (which first recover batches interrupted by a crash), then serves the API until SIGTERM or
 * SIGINT, and shuts down in the reverse order: stop accepting requests, let running batches
 * finish, close the store.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/app.h"
#include "cli/gen.h"
#include "cli/ingest.h"
#include "http/http.h"
#include "ingest/downstream.h"
#include "store/pstore.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ingot serve [--data DIR] [--listen HOST:PORT] [--tenant NAME] [--org ID]\n"
            "                   [--workers N] [--threads N]\n"
            "\n"
            "  --data DIR          data directory (default ./data)\n"
            "  --listen HOST:PORT  address to serve the API on (default 127.0.0.1:8080)\n"
            "  --tenant NAME       tenant id for custom fields, _NAME (default techmarketingdemos)\n"
            "  --org ID            IMS org recorded when requests carry none\n"
            "  --workers N         batch worker threads (default 2)\n"
            "  --threads N         HTTP threads (default 4)\n"
            "  --max-put-bytes N   largest file one PUT takes (default 268435456, 256 MB)\n"
            "  --max-chunk-bytes N largest chunk of a large file (default 512000000)\n"
            "  --max-batch-files N files per batch (default 1500)\n"
            "  --max-batch-bytes N bytes per batch (default 107374182400, 100 GB)\n"
            "  --diagnostics-retention-days N  keep batch error diagnostics N days (default 30)\n"
            "  --parquet-codec C   lake compression: zstd (default), snappy, gzip or none\n"
            "  --ingest-threads N  threads per batch for a large JSON Lines file (default 2)\n"
            "  --retries N         reruns of a batch after a transient write failure (default 3)\n"
            "  --retry-backoff-ms N  first wait before a rerun, doubled each time (default 1000)\n"
            "  --identity-limit N  identities per identity graph (default 50, 0 = no limit)\n"
            "  --identity-removal aep|oldest|keep  over the limit: remove by AEP's order (kind,\n"
            "                      then oldest), the oldest, or keep all (lookups answer 422)\n"
            "  --notify-timeout-ms N      webhook request and challenge timeout (default 10000)\n"
            "  --notify-retry-first-ms N  first webhook retry after (default 60000)\n"
            "  --notify-retry-cap-ms N    longest wait between retries (default 900000)\n"
            "  --notify-retry-window-ms N retry this long, then disable (default 86400000)\n"
            "  --notify-journal-days N    keep notification events N days (default 7)\n"
            "  --notify-threads N         webhook delivery threads (default 2)\n"
            "\n"
            "       ingot ingest --schema SCHEMA.json --out DIR [--codec zstd|snappy|none] FILE...\n"
            "                    (the ingestion engine on local files; ingot ingest --help)\n"
            "       ingot gen --kind loyalty|crm|purchases|products [--records N] [--seed S]\n"
            "                 (Luma-shaped test data; ingot gen --help)\n");
}

/* The catalog's retire hook: a batch that became inactive loses its files. */
static void retire_output(void *lake, const char *sandbox, const char *dataset_id,
                          const char *batch_id)
{
    struct ing_err err;
    ing_err_clear(&err);
    if (lake_discard_output(lake, sandbox, dataset_id, batch_id, &err) != 0)
        log_warn("inactive batch output not removed sandbox=%s batch=%s: %s", sandbox, batch_id,
                 err.msg);
}

static int cmd_serve(int argc, char **argv)
{
    const char *data = "./data", *listen = "127.0.0.1:8080", *tenant = "techmarketingdemos";
    const char *org = "ingot@AdobeOrg";
    unsigned workers = 2, threads = 4;
    struct pipeline_opts popts = {0};
    struct idg_settings idg = {.max_identities = IDG_DEFAULT_LIMIT, .removal = IDG_REMOVE_AEP};
    int64_t limits[4] = {0}; /* --max-put-bytes, --max-chunk-bytes, --max-batch-files/-bytes */
    struct notify_opts nopts = {0};
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"listen", required_argument, NULL, 'l'},
        {"tenant", required_argument, NULL, 't'}, {"org", required_argument, NULL, 'o'},
        {"workers", required_argument, NULL, 'w'}, {"threads", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        /* Diagnostics retention and transient-failure retries (pipeline.h). The retention in
         * seconds and the sweep period are for tests (not in the usage text). */
        {"diagnostics-retention-days", required_argument, NULL, 1001},
        {"diagnostics-retention-seconds", required_argument, NULL, 1002},
        {"diagnostics-sweep-ms", required_argument, NULL, 1003},
        {"retries", required_argument, NULL, 1004},
        {"parquet-codec", required_argument, NULL, 1006},
        {"ingest-threads", required_argument, NULL, 1007},
        {"retry-backoff-ms", required_argument, NULL, 1005},
        /* Batch Ingestion limits (struct app); 0 keeps AEP's default. */
        {"max-put-bytes", required_argument, NULL, 2001},
        {"max-chunk-bytes", required_argument, NULL, 2002},
        {"max-batch-files", required_argument, NULL, 2003},
        {"max-batch-bytes", required_argument, NULL, 2004},
        /* The identity graph guardrail (identity/idgraph.h). */
        {"identity-limit", required_argument, NULL, 3001},
        {"identity-removal", required_argument, NULL, 3002},
        /* Notifications (notify/notify.h); 0 keeps the default. The journal retention in ms,
         * the sweep and poll periods are for tests (not in the usage text). */
        {"notify-timeout-ms", required_argument, NULL, 4001},
        {"notify-retry-first-ms", required_argument, NULL, 4002},
        {"notify-retry-cap-ms", required_argument, NULL, 4003},
        {"notify-retry-window-ms", required_argument, NULL, 4004},
        {"notify-journal-days", required_argument, NULL, 4005},
        {"notify-journal-retention-ms", required_argument, NULL, 4006},
        {"notify-sweep-ms", required_argument, NULL, 4007},
        {"notify-poll-ms", required_argument, NULL, 4008},
        {"notify-threads", required_argument, NULL, 4009},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "d:l:t:o:w:T:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'l': listen = optarg; break;
        case 't': tenant = optarg; break;
        case 'o': org = optarg; break;
        case 'w': workers = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'T': threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case 1001: popts.diag_retention_ms = strtoll(optarg, NULL, 10) * 86400000LL; break;
        case 1002: popts.diag_retention_ms = strtoll(optarg, NULL, 10) * 1000LL; break;
        case 1003: popts.sweep_interval_ms = strtoll(optarg, NULL, 10); break;
        case 1007: popts.ingest_threads = atoi(optarg); break;
        case 1006:
            popts.codec_set = true;
            if (!strcmp(optarg, "zstd"))
                popts.codec = PQ_CODEC_ZSTD;
            else if (!strcmp(optarg, "snappy"))
                popts.codec = PQ_CODEC_SNAPPY;
            else if (!strcmp(optarg, "gzip"))
                popts.codec = PQ_CODEC_GZIP;
            else if (!strcmp(optarg, "none") || !strcmp(optarg, "uncompressed"))
                popts.codec = PQ_CODEC_UNCOMPRESSED;
            else {
                fprintf(stderr, "ingot serve: --parquet-codec takes zstd, snappy, gzip or none\n");
                return 2;
            }
            break;
        case 1004: {
            int n = (int)strtol(optarg, NULL, 10);
            popts.retries = n > 0 ? n : -1; /* 0 retries: the pipeline's "none" */
            break;
        }
        case 1005: popts.retry_backoff_ms = strtoll(optarg, NULL, 10); break;
        case 2001: case 2002: case 2003: case 2004: {
            char *end = NULL;
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0) {
                fprintf(stderr, "ingot serve: --max-* takes a byte or file count\n");
                return 2;
            }
            limits[c - 2001] = v;
            break;
        }
        case 3001: idg.max_identities = (int)strtol(optarg, NULL, 10); break;
        case 3002:
            if (idg_removal_parse(optarg, &idg.removal) != 0) {
                fprintf(stderr, "ingot serve: --identity-removal takes aep, oldest or keep\n");
                return 2;
            }
            break;
        case 4001: nopts.timeout_ms = strtoll(optarg, NULL, 10); break;
        case 4002: nopts.retry_first_ms = strtoll(optarg, NULL, 10); break;
        case 4003: nopts.retry_cap_ms = strtoll(optarg, NULL, 10); break;
        case 4004: nopts.retry_window_ms = strtoll(optarg, NULL, 10); break;
        case 4005: nopts.journal_retention_ms = strtoll(optarg, NULL, 10) * 86400000LL; break;
        case 4006: nopts.journal_retention_ms = strtoll(optarg, NULL, 10); break;
        case 4007: nopts.sweep_ms = strtoll(optarg, NULL, 10); break;
        case 4008: nopts.poll_ms = strtoll(optarg, NULL, 10); break;
        case 4009: nopts.threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (tenant[0] == '_')
        tenant++;

    /* Block the stop signals before any thread starts, so every thread inherits the mask and
     * only the main thread's sigsuspend receives them; a signal arriving between the check of
     * g_stop and the wait stays pending instead of being lost. */
    sigset_t stopset, waitset;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopset, &waitset);

    struct ing_err err;
    ing_err_clear(&err);
    struct app app = {.tenant = tenant, .ims_org = org, .max_put_bytes = limits[0],
                      .max_chunk_bytes = limits[1], .max_batch_files = limits[2],
                      .max_batch_bytes = limits[3]};
    struct http_server *srv = NULL;
    struct http_route *routes = NULL;
    struct pstore *pstore = NULL;
    struct downstream *downstream = NULL;
    char *spool = NULL;
    int rc = 1;

    if (fs_mkdirs(data, &err) != 0 || store_open(&app.store, data, &err) != 0 ||
        registry_new(&app.registry, app.store, tenant, &err) != 0 ||
        catalog_new(&app.catalog, app.store, app.registry, &err) != 0 ||
        lake_open(&app.lake, data, &err) != 0)
        goto out;
    /* Webhook delivery from the outbox; undelivered events from before a crash go out first. */
    if (notify_new(&app.notify, app.store, &nopts, &err) != 0 ||
        notify_start(app.notify, &err) != 0)
        goto out;
    /* Reverted and replaced batches leave the lake after their catalog commit; finish any such
     * removal a crash cut short. */
    catalog_set_retire_hook(app.catalog, retire_output, app.lake);
    if (catalog_retire_sweep(app.catalog, &err) != 0)
        log_warn("retired batches not swept: %s", err.msg);
    ing_err_clear(&err);
    popts.workers = workers ? workers : 2;
    if (pipeline_start(&app.pipeline, app.catalog, app.registry, app.lake, &popts, &err) != 0)
        goto out;
    /* Identity graph and profile store: the runner takes successful batches downstream. */
    if (pstore_open(&pstore, data, NULL, &err) != 0 ||
        idgraph_new(&app.idgraph, pstore, app.registry, &idg, &err) != 0 ||
        profiles_new(&app.profiles, app.store, app.idgraph, &err) != 0 ||
        downstream_new(&downstream, app.store, app.registry, app.lake, app.idgraph, NULL,
                       &err) != 0 ||
        downstream_start(downstream, &err) != 0)
        goto out;

    size_t nroutes = 0;
    routes = api_all_routes(&nroutes);
    spool = lake_spool_dir(app.lake);
    struct http_server_opts hopts = {.listen = listen, .spool_dir = spool, .threads = threads};
    if (http_server_start(&srv, &hopts, routes, nroutes, &app, &err) != 0)
        goto out;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* With port 0 the kernel picks one: print the real address so tests can find it. */
    char host[256];
    snprintf(host, sizeof(host), "%s", listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    log_info("ingot serving on http://%s:%d data=%s tenant=_%s", host, http_server_port(srv), data,
             tenant);
    printf("ingot listening on %s:%d\n", host, http_server_port(srv));
    fflush(stdout);
    while (!g_stop)
        sigsuspend(&waitset);
    log_info("shutting down");
    rc = 0;
out:
    if (rc != 0)
        log_error("ingot serve: %s", err.msg[0] ? err.msg : "start-up failed");
    http_server_stop(srv);
    downstream_free(downstream);
    pipeline_stop(app.pipeline);
    notify_free(app.notify);
    profiles_free(app.profiles);
    idgraph_free(app.idgraph);
    pstore_close(pstore);
    lake_free(app.lake);
    catalog_free(app.catalog);
    registry_free(app.registry);
    store_close(app.store);
    free(routes);
    free(spool);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "serve") || !strcmp(argv[1], "ingest"))
        mem_tune_process(argv);
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ingest"))
        return cli_ingest_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gen"))
        return gen_main(argc - 1, argv + 1);
    fprintf(stderr, "ingot: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
