/*
 * lookup_bench.c - profile lookups over HTTP at a fixed concurrency (product.md: p99 under 2 ms at
 * 20,000 requests/s with a million profiles).
 *
 * Builds N profiles straight into the profile store (a loyalty id linked to a CRM id, one
 * loyalty fragment each, through the same idg_apply_batch and pstore calls as the downstream
 * stages), starts the real HTTP server with ingot's whole route table on a free port, then runs
 * C client threads, each with one keep-alive connection, for D seconds: GET
 * /data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=<random loyalty id>
 * &entityIdNS=lumaLoyaltyId (the default merge policy: stitched, timestamp ordered). Prints
 * requests/s and the latency percentiles.
 *
 *   make BUILD=release OUT=build/release
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/lookup_bench.c build/release/libingot.a \
 *       $(pkg-config --libs jansson sqlite3 libzstd snappy zlib liblz4 libmicrohttpd) \
 *       -lm -pthread -o build/lookup_bench
 *   build/lookup_bench [profiles=1000000] [concurrency=16] [seconds=10] [http-threads=4] [rate=0]
 *
 * Closed loop (rate 0): each client sends its next request when the previous answer arrived;
 * latency is per request. Open loop (rate R > 0, requests/s in total): requests are scheduled
 * at fixed times, R/concurrency per second on each connection, and latency is measured from
 * the scheduled send time, so time spent waiting behind a slow answer counts (no coordinated
 * omission); the achieved rate is printed too. With concurrency 0 it only serves for the given seconds (port printed), for an outside load
 * generator: wrk -t2 -c64 -d10s --latency -s bench/lookup.lua http://127.0.0.1:PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/app.h"
#include "http/http.h"
#include "identity/idgraph.h"
#include "profile/profile.h"
#include "store/pstore.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/mem.h"

#define DIR "/tmp/ingot-lookup-bench"

static int die(const char *what, const struct ing_err *err)
{
    fprintf(stderr, "lookup_bench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* N profiles in batches of 100,000: loyalty id 5000000+i linked to crm id, one fragment. */
static void populate(struct app *app, struct pstore *ps, long n)
{
    struct ing_err err;
    ing_err_clear(&err);
    const char *bodies[] = {
        "{\"name\":\"Luma Loyalty Id\",\"code\":\"lumaLoyaltyId\",\"idType\":\"CROSS_DEVICE\"}",
        "{\"name\":\"Luma CRM Id\",\"code\":\"lumaCrmId\",\"idType\":\"CROSS_DEVICE\"}",
    };
    int64_t gid[2] = {0, 0};
    struct pstore_tx *tx = NULL;
    if (pstore_begin(ps, &tx, &err))
        die("begin", &err);
    for (int k = 0; k < 2; k++) {
        json_t *body = json_loads(bodies[k], 0, NULL), *ns = NULL;
        if (registry_namespace_create(app->registry, "prod", body, &ns, &err) ||
            pstore_tx_ns_ensure(tx, "prod", json_string_value(json_object_get(ns, "code")),
                                json_integer_value(json_object_get(ns, "id")), "CROSS_DEVICE",
                                &gid[k], &err))
            die("namespace", &err);
        json_decref(body);
        json_decref(ns);
    }
    if (pstore_commit(tx, &err))
        die("commit", &err);
    int64_t t0 = clock_mono_ns();
    const long chunk = 100000;
    for (long first = 0; first < n; first += chunk) {
        long end = first + chunk < n ? first + chunk : n;
        char batch[32];
        snprintf(batch, sizeof(batch), "B%ld", first / chunk);
        int64_t seq = 0;
        struct idg_batch *b = idg_batch_new();
        struct idg_apply_result res;
        if (pstore_begin(ps, &tx, &err) || pstore_tx_batch_seq(tx, batch, "dsL", &seq, &err))
            die("begin", &err);
        for (long i = first; i < end; i++) {
            char lid[24], cid[40], doc[512];
            snprintf(lid, sizeof(lid), "%ld", 5000000 + i);
            snprintf(cid, sizeof(cid), "crm%016lx", (unsigned long)i * 2654435761UL);
            const char *vals[2] = {lid, cid};
            idg_batch_add_row(b, gid, vals, 2);
            snprintf(doc, sizeof(doc),
                     "{\"person\":{\"name\":{\"firstName\":\"First%ld\",\"lastName\":\"Last\"}},"
                     "\"homeAddress\":{\"city\":\"Portland\"},\"loyalty\":{\"tier\":\"gold\","
                     "\"points\":%ld},\"_techmarketingdemos\":{\"systemIdentifier\":"
                     "{\"loyaltyId\":\"%s\",\"crmId\":\"%s\"}}}",
                     i, i % 100000, lid, cid);
            if (pstore_tx_frag_put(tx, gid[0], lid, "dsL", seq, 1000, false, doc, &err))
                die("fragment", &err);
        }
        if (idg_apply_batch(app->idgraph, tx, b, seq, 1000, &res, &err) || pstore_commit(tx, &err))
            die("apply", &err);
        idg_batch_free(b);
    }
    printf("populated %ld profiles in %.1f s\n", n, (double)(clock_mono_ns() - t0) / 1e9);
}

struct client {
    int port;
    long profiles;
    int64_t until_ns;
    int64_t start_ns, interval_ns; /* open loop: request k is due at start + k * interval */
    int64_t *lat_us;
    size_t n, cap;
    long errors;
    unsigned seed;
};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on a keep-alive connection; returns the status, or -1 when the connection broke. */
static int request(int fd, const char *req, size_t len, char *buf, size_t cap)
{
    if (write(fd, req, len) != (ssize_t)len)
        return -1;
    size_t got = 0;
    long body = -1;
    size_t head = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got - 1);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (!head) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            head = (size_t)(end - buf) + 4;
            char *cl = strcasestr(buf, "content-length:");
            body = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (got >= head + (size_t)body)
            break;
        if (got + 1 >= cap)
            return -1;
    }
    return atoi(buf + 9);
}

static void sleep_until(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    char *buf = xmalloc(1 << 16);
    int fd = connect_to(c->port);
    int64_t k = 0;
    while (fd >= 0 && clock_mono_ns() < c->until_ns) {
        int64_t due = c->start_ns + k * c->interval_ns;
        if (c->interval_ns > 0) {
            if (due >= c->until_ns)
                break;
            sleep_until(due); /* returns at once when behind schedule */
            k++;
        }
        long i = (long)(rand_r(&c->seed) % (unsigned)c->profiles);
        char req[512];
        int len = snprintf(req, sizeof(req),
                           "GET /data/core/ups/access/entities?schema.name=_xdm.context.profile"
                           "&entityId=%ld&entityIdNS=lumaLoyaltyId HTTP/1.1\r\nHost: b\r\n\r\n",
                           5000000 + i);
        int64_t t0 = c->interval_ns > 0 ? due : clock_mono_ns();
        int status = request(fd, req, (size_t)len, buf, 1 << 16);
        int64_t us = (clock_mono_ns() - t0) / 1000;
        if (status != 200) {
            c->errors++;
            close(fd);
            fd = connect_to(c->port);
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->lat_us = xrealloc(c->lat_us, c->cap * sizeof(*c->lat_us));
        }
        c->lat_us[c->n++] = us;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long profiles = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    int conc = argc > 2 ? atoi(argv[2]) : 16;
    int secs = argc > 3 ? atoi(argv[3]) : 10;
    unsigned threads = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
    double rate = argc > 5 ? strtod(argv[5], NULL) : 0;
    struct ing_err err;
    ing_err_clear(&err);
    fs_rm_rf(DIR, NULL);
    struct app app = {.tenant = "techmarketingdemos", .ims_org = "bench@AdobeOrg"};
    struct pstore *ps = NULL;
    struct pstore_opts po = {.fast = true}; /* population speed only; lookups do not write */
    if (store_open(&app.store, DIR, &err) ||
        registry_new(&app.registry, app.store, app.tenant, &err) ||
        catalog_new(&app.catalog, app.store, app.registry, &err) ||
        lake_open(&app.lake, DIR, &err) || pstore_open(&ps, DIR, &po, &err) ||
        idgraph_new(&app.idgraph, ps, app.registry, NULL, &err) ||
        profiles_new(&app.profiles, app.store, app.idgraph, &err))
        die("open", &err);
    populate(&app, ps, profiles);

    size_t nroutes = 0;
    struct http_route *routes = api_all_routes(&nroutes);
    char *spool = lake_spool_dir(app.lake);
    struct http_server_opts ho = {.listen = "127.0.0.1:0", .spool_dir = spool, .threads = threads};
    struct http_server *srv = NULL;
    if (http_server_start(&srv, &ho, routes, nroutes, &app, &err))
        die("http", &err);
    int port = http_server_port(srv);
    if (conc == 0) {
        printf("serving on port %d for %d s\n", port, secs);
        fflush(stdout);
        sleep((unsigned)secs);
        http_server_stop(srv);
        free(routes);
        free(spool);
        profiles_free(app.profiles);
        idgraph_free(app.idgraph);
        pstore_close(ps);
        lake_free(app.lake);
        catalog_free(app.catalog);
        registry_free(app.registry);
        store_close(app.store);
        fs_rm_rf(DIR, NULL);
        return 0;
    }

    struct client *cs = xcalloc((size_t)conc, sizeof(*cs));
    pthread_t *th = xcalloc((size_t)conc, sizeof(*th));
    int64_t t0 = clock_mono_ns();
    /* open loop: each connection sends every conc/rate seconds, the connections staggered */
    int64_t interval = rate > 0 ? (int64_t)(1e9 * conc / rate) : 0;
    for (int i = 0; i < conc; i++) {
        cs[i] = (struct client){.port = port, .profiles = profiles,
                                .until_ns = t0 + (int64_t)secs * 1000000000LL,
                                .start_ns = t0 + 100000000LL + interval * i / conc,
                                .interval_ns = interval,
                                .seed = (unsigned)i * 7919u + 1u};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        total += cs[i].n;
        errors += cs[i].errors;
    }
    double elapsed = (double)(clock_mono_ns() - t0) / 1e9;
    int64_t *all = xcalloc(total ? total : 1, sizeof(*all));
    size_t k = 0;
    for (int i = 0; i < conc; i++) {
        memcpy(all + k, cs[i].lat_us, cs[i].n * sizeof(*all));
        k += cs[i].n;
        free(cs[i].lat_us);
    }
    qsort(all, total, sizeof(*all), cmp_i64);
    if (total && rate > 0) {
        printf("profiles=%ld open loop at %.0f req/s over %d connections, http_threads=%u: "
               "%zu answers in %.1f s = %.0f req/s, errors=%ld, latency from the scheduled "
               "send: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
               profiles, rate, conc, threads, total, elapsed - 0.1,
               (double)total / (elapsed - 0.1), errors, (double)all[total / 2] / 1000.0,
               (double)all[total * 9 / 10] / 1000.0, (double)all[total * 99 / 100] / 1000.0,
               (double)all[total * 999 / 1000] / 1000.0, (double)all[total - 1] / 1000.0);
    } else if (total) {
        printf("profiles=%ld concurrency=%d http_threads=%u: %zu requests in %.1f s = %.0f req/s, "
               "errors=%ld, latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               profiles, conc, threads, total, elapsed, (double)total / elapsed, errors,
               (double)all[total / 2] / 1000.0, (double)all[total * 9 / 10] / 1000.0,
               (double)all[total * 99 / 100] / 1000.0, (double)all[total - 1] / 1000.0);
    } else {
        printf("no successful request (errors=%ld)\n", errors);
    }
    free(all);
    free(cs);
    free(th);
    http_server_stop(srv);
    free(routes);
    free(spool);
    profiles_free(app.profiles);
    idgraph_free(app.idgraph);
    pstore_close(ps);
    lake_free(app.lake);
    catalog_free(app.catalog);
    registry_free(app.registry);
    store_close(app.store);
    fs_rm_rf(DIR, NULL);
    return total ? 0 : 1;
}
