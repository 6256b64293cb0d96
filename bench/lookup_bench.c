/*
 * lookup_bench.c - profile lookups over HTTP at a fixed concurrency (product.md: p99 under 2 ms at
 * 20,000 requests/s with a million profiles).
 *
 * Builds N profiles straight into the profile store (a loyalty id linked to a CRM id, one
 * loyalty fragment each, through the same idg_apply_batch and pstore calls as the downstream
 * stages), starts the real HTTP server with ingot's whole route table on a free port, then loads
 * it from one client thread over C keep-alive connections (epoll) for D seconds: GET
 * /data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=<random loyalty id>
 * &entityIdNS=lumaLoyaltyId (the default merge policy: stitched, timestamp ordered). Prints
 * requests/s, the latency percentiles and the server's CPU per answer (process CPU minus the
 * client thread's).
 *
 *   make BUILD=release OUT=build/release
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/lookup_bench.c build/release/libingot.a \
 *       $(pkg-config --libs jansson sqlite3 libzstd snappy zlib liblz4 libmicrohttpd libcurl \
 *       libsodium libbrotlidec) -lm -pthread -o build/lookup_bench
 *   build/lookup_bench [profiles=1000000] [connections=16] [seconds=10] [http-threads=4]
 *                      [rate=0] [warm-up seconds=3]
 *
 * First a warm-up, not counted: closed loop for the given seconds (pages of the stored answers
 * and SQLite's caches warm, as on a server that has been up a while). Closed loop (rate 0):
 * each connection sends its next request when the previous answer arrived. Open loop (rate R
 * > 0, requests/s in total, like wrk2): request k is due at start + k/R and goes out on an idle
 * connection; latency is measured from the due time, so waiting behind slow answers counts (no
 * coordinated omission). With 0 connections it only serves for the given seconds (port
 * printed, then the process CPU used), for an outside load generator (LOOKUP_BENCH_DIR names the
 * data directory, default /tmp/ingot-lookup-bench):
 *   PROFILES=N wrk -t1 -c64 -d10s --latency -s bench/lookup.lua http://127.0.0.1:PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

/* The data directory (removed at the start and the end); LOOKUP_BENCH_DIR overrides it, so that
 * two runs on one machine (A/B binaries, or two engineers) do not remove each other's data. */
#define DEFAULT_DIR "/tmp/ingot-lookup-bench"

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

/* The load generator: one thread, epoll over `conc` keep-alive connections, so that the client
 * costs one thread's scheduling, not one per connection (like wrk2). Each connection has at most
 * one request in flight. Closed loop (rate 0): a connection sends its next request as soon as
 * its answer arrived. Open loop (rate R): request k is due at start + k/R; a due request goes
 * out on any idle connection (or waits for one) and its latency is taken from the due time, so
 * time spent waiting behind slow answers counts (no coordinated omission). */
struct conn {
    int fd;
    bool busy;
    int64_t sent_ns;   /* when the request in flight was due (open loop) or sent (closed) */
    size_t got;        /* bytes of the answer read so far */
    char buf[1 << 16];
};

struct load {
    int port, nconn, ep;
    long profiles;
    struct conn *conns;
    unsigned seed;
    bool record;
    int64_t *lat_us;
    size_t n, cap;
    long errors;
    size_t waited;     /* open loop: requests sent over 1 ms after their due time */
    int64_t tick_ns;   /* open loop: the shortest sleep between sends */
};

static int connect_to(int port)
{
    /* connected before it turns non-blocking: a write on a socket still connecting fails */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void conn_open(struct load *l, struct conn *c)
{
    c->fd = connect_to(l->port);
    c->busy = false;
    c->got = 0;
    if (c->fd < 0)
        die("connect", NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_reopen(struct load *l, struct conn *c)
{
    l->errors++;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_open(l, c);
}

/* Send one lookup of a random profile; `due` is what its latency counts from. */
static void conn_send(struct load *l, struct conn *c, int64_t due)
{
    long i = (long)(rand_r(&l->seed) % (unsigned)l->profiles);
    char req[512];
    int len = snprintf(req, sizeof(req),
                       "GET /data/core/ups/access/entities?schema.name=_xdm.context.profile"
                       "&entityId=%ld&entityIdNS=lumaLoyaltyId HTTP/1.1\r\nHost: b\r\n\r\n",
                       5000000 + i);
    c->busy = true;
    c->got = 0;
    c->sent_ns = due;
    /* a small request on an idle keep-alive socket: the send buffer takes it whole */
    for (int tries = 0; write(c->fd, req, (size_t)len) != len; tries++) {
        if (tries > 100)
            die("send", NULL);
        conn_reopen(l, c);
        c->busy = true;
        c->sent_ns = due;
    }
}

/* Read what arrived; true when a whole answer is in (status in *status). */
static bool conn_read(struct load *l, struct conn *c, int *status)
{
    /* one read per readiness: an answer is one segment on loopback, and epoll is level
     * triggered, so a rest comes with the next wake-up (a second read would be an EAGAIN, one
     * more system call per request) */
    ssize_t r = read(c->fd, c->buf + c->got, sizeof(c->buf) - c->got - 1);
    if (r < 0 && errno == EAGAIN)
        return false;
    if (r <= 0 || c->got + (size_t)r + 1 >= sizeof(c->buf)) {
        conn_reopen(l, c);
        return false;
    }
    c->got += (size_t)r;
    c->buf[c->got] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return false;
    size_t head = (size_t)(end - c->buf) + 4;
    char *cl = strcasestr(c->buf, "content-length:");
    long body = cl && cl < end ? strtol(cl + 15, NULL, 10) : 0;
    if (c->got < head + (size_t)body)
        return false;
    *status = atoi(c->buf + 9);
    c->busy = false;
    c->got = 0;
    return true;
}

static void record(struct load *l, int64_t us)
{
    if (!l->record)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->lat_us = xrealloc(l->lat_us, l->cap * sizeof(*l->lat_us));
    }
    l->lat_us[l->n++] = us;
}

/* Run from now until `until`: closed loop when interval_ns is 0, else open loop at one request
 * per interval_ns. Answers still in flight at the end are waited for (up to 2 s) and counted. */
static void run_load(struct load *l, int64_t until, int64_t interval_ns)
{
    int64_t start = clock_mono_ns();
    int64_t next_due = start;
    size_t nidle = 0;
    for (int i = 0; i < l->nconn; i++) {
        if (!l->conns[i].busy && interval_ns == 0)
            conn_send(l, &l->conns[i], clock_mono_ns());
        nidle += !l->conns[i].busy;
    }
    int rr = 0; /* where the search for an idle connection starts */
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = clock_mono_ns();
        bool sending = now < until;
        size_t busy = (size_t)l->nconn - nidle;
        if (!sending && (busy == 0 || now > until + 2000000000LL))
            break;
        /* open loop: every due request goes out on an idle connection */
        while (interval_ns > 0 && sending && next_due <= now && nidle > 0) {
            struct conn *c = NULL;
            for (int k = 0; k < l->nconn && !c; k++) {
                struct conn *x = &l->conns[(rr + k) % l->nconn];
                if (!x->busy)
                    c = x;
            }
            rr = (int)(c - l->conns + 1) % l->nconn;
            if (now - next_due > 1000000)
                l->waited++; /* over 1 ms late: it waited for a connection */
            conn_send(l, c, next_due);
            nidle--;
            next_due += interval_ns;
        }
        int64_t wait_ns = (sending ? until : until + 2000000000LL) - now;
        /* sleep until the next due time, but at least one tick: every wake-up of this thread
         * is a few microseconds of kernel time on a VM, so requests due within a tick go out
         * together (each still counted from its own due time) */
        int64_t wake = next_due > now + l->tick_ns ? next_due : now + l->tick_ns;
        if (interval_ns > 0 && sending && nidle > 0 && wake - now < wait_ns)
            wait_ns = wake - now;
        if (wait_ns < 0)
            wait_ns = 0;
        struct timespec ts = {(time_t)(wait_ns / 1000000000LL), (long)(wait_ns % 1000000000LL)};
        int n = epoll_pwait2(l->ep, evs, 64, &ts, NULL);
        if (n < 0 && errno != EINTR)
            die("epoll", NULL);
        int64_t done = clock_mono_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->busy) { /* the server closed an idle connection */
                conn_reopen(l, c);
                continue;
            }
            int status = 0;
            if (!conn_read(l, c, &status)) {
                if (c->busy)
                    continue; /* the answer is not whole yet */
                nidle++;      /* reopened after a failure: that request is lost */
                if (interval_ns == 0 && done < until) {
                    conn_send(l, c, done);
                    nidle--;
                }
                continue;
            }
            if (status == 200)
                record(l, (done - c->sent_ns) / 1000);
            else
                l->errors++;
            nidle++;
            if (interval_ns == 0 && done < until) {
                conn_send(l, c, done);
                nidle--;
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    mem_tune_process(argv); /* as `ingot serve` does (util/mem.h) */
    long profiles = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    int conc = argc > 2 ? atoi(argv[2]) : 16;
    int secs = argc > 3 ? atoi(argv[3]) : 10;
    unsigned threads = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
    double rate = argc > 5 ? strtod(argv[5], NULL) : 0;
    double warmup = argc > 6 ? strtod(argv[6], NULL) : 3;
    struct ing_err err;
    ing_err_clear(&err);
    const char *dir = getenv("LOOKUP_BENCH_DIR");
    if (!dir || !*dir)
        dir = DEFAULT_DIR;
    fs_rm_rf(dir, NULL);
    struct app app = {.tenant = "techmarketingdemos", .ims_org = "bench@AdobeOrg"};
    struct pstore *ps = NULL;
    struct pstore_opts po = {.fast = true}; /* population speed only; lookups do not write */
    if (store_open(&app.store, dir, &err) ||
        registry_new(&app.registry, app.store, app.tenant, &err) ||
        catalog_new(&app.catalog, app.store, app.registry, &err) ||
        lake_open(&app.lake, dir, &err) || pstore_open(&ps, dir, &po, &err) ||
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
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        sleep((unsigned)secs);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        /* divide by the load generator's request count for the server's CPU per request */
        printf("server CPU while serving: %.2f s\n",
               (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
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
        fs_rm_rf(dir, NULL);
        return 0;
    }

    const char *tick = getenv("LOOKUP_BENCH_TICK_US");
    struct load l = {.port = port, .nconn = conc, .profiles = profiles, .seed = 12345u,
                     .ep = epoll_create1(0), .tick_ns = (tick ? atol(tick) : 100) * 1000};
    l.conns = xcalloc((size_t)conc, sizeof(*l.conns));
    for (int i = 0; i < conc; i++)
        conn_open(&l, &l.conns[i]);
    /* Warm-up, not counted: closed loop, so that the pages of the stored answers, SQLite's
     * caches and the server's threads are warm before the first counted request. */
    if (warmup > 0) {
        run_load(&l, clock_mono_ns() + (int64_t)(warmup * 1e9), 0);
        printf("warm-up: %ld s closed loop over %d connections, %ld errors\n", (long)warmup,
               conc, l.errors);
        l.errors = 0;
    }
    l.record = true;
    struct timespec cpu0, cpu1, me0, me1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &me0);
    int64_t t0 = clock_mono_ns();
    run_load(&l, t0 + (int64_t)secs * 1000000000LL, rate > 0 ? (int64_t)(1e9 / rate) : 0);
    double elapsed = (double)(clock_mono_ns() - t0) / 1e9;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &me1);
    double proc_cpu = (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    double client_cpu = (double)(me1.tv_sec - me0.tv_sec) + (double)(me1.tv_nsec - me0.tv_nsec) / 1e9;
    size_t total = l.n;
    long errors = l.errors;
    int64_t *all = l.lat_us;
    qsort(all, total, sizeof(*all), cmp_i64);
    if (total) {
        double sec_per = (proc_cpu - client_cpu) / (double)total * 1e6;
        if (rate > 0)
            printf("profiles=%ld open loop at %.0f req/s over %d connections (one client thread), "
                   "http_threads=%u: %zu answers in %.1f s = %.0f req/s, errors=%ld, %zu sent over "
                   "1 ms late (client behind, or no idle connection); latency from the scheduled send: p50 %.2f ms, "
                   "p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                   profiles, rate, conc, threads, total, elapsed, (double)total / elapsed, errors,
                   l.waited, (double)all[total / 2] / 1000.0,
                   (double)all[total * 9 / 10] / 1000.0, (double)all[total * 99 / 100] / 1000.0,
                   (double)all[total * 999 / 1000] / 1000.0, (double)all[total - 1] / 1000.0);
        else
            printf("profiles=%ld closed loop, %d connections (one client thread), http_threads=%u: "
                   "%zu requests in %.1f s = %.0f req/s, errors=%ld, latency p50 %.2f ms, "
                   "p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                   profiles, conc, threads, total, elapsed, (double)total / elapsed, errors,
                   (double)all[total / 2] / 1000.0, (double)all[total * 9 / 10] / 1000.0,
                   (double)all[total * 99 / 100] / 1000.0,
                   (double)all[total * 999 / 1000] / 1000.0, (double)all[total - 1] / 1000.0);
        printf("CPU over the counted run: server %.2f s (%.1f us per answer), client thread "
               "%.2f s\n", proc_cpu - client_cpu, sec_per, client_cpu);
    } else {
        printf("no successful request (errors=%ld)\n", errors);
    }
    for (int i = 0; i < conc; i++)
        close(l.conns[i].fd);
    close(l.ep);
    free(l.conns);
    free(all);
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
    fs_rm_rf(dir, NULL);
    return total ? 0 : 1;
}
