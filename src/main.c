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
#include "http/http.h"
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
            "  --threads N         HTTP threads (default 4)\n");
}

static int cmd_serve(int argc, char **argv)
{
    const char *data = "./data", *listen = "127.0.0.1:8080", *tenant = "techmarketingdemos";
    const char *org = "ingot@AdobeOrg";
    unsigned workers = 2, threads = 4;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"listen", required_argument, NULL, 'l'},
        {"tenant", required_argument, NULL, 't'}, {"org", required_argument, NULL, 'o'},
        {"workers", required_argument, NULL, 'w'}, {"threads", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
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
    struct app app = {.tenant = tenant, .ims_org = org};
    struct http_server *srv = NULL;
    struct http_route *routes = NULL;
    char *spool = NULL;
    int rc = 1;

    if (fs_mkdirs(data, &err) != 0 || store_open(&app.store, data, &err) != 0 ||
        registry_new(&app.registry, app.store, tenant, &err) != 0 ||
        catalog_new(&app.catalog, app.store, app.registry, &err) != 0 ||
        lake_open(&app.lake, data, &err) != 0)
        goto out;
    struct pipeline_opts popts = {.workers = workers ? workers : 2};
    if (pipeline_start(&app.pipeline, app.catalog, app.registry, app.lake, &popts, &err) != 0)
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
    pipeline_stop(app.pipeline);
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
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "ingot: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
