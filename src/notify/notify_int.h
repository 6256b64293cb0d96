/*
 * notify_int.h - what the files of the notify module share: the notifier object.
 * Not for use outside src/notify/.
 */
#ifndef ING_NOTIFY_NOTIFY_INT_H
#define ING_NOTIFY_NOTIFY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "notify/notify.h"

struct notify {
    struct store *st;
    struct notify_opts o;
    pthread_mutex_t mu;     /* guards inflight, next_sweep; the outbox scan runs under it */
    pthread_cond_t cv;      /* an item finished, or stop */
    atomic_bool stop;
    json_t *inflight;       /* "<sandbox>/<outbox id>" -> true while a thread delivers it */
    int64_t next_sweep;     /* wall-clock ms of the next journal sweep */
    pthread_t *threads;
    unsigned nthreads;      /* started */
};

/* Verify a webhook with the challenge: 0 when it answered right, else ING_EINVAL with the
 * reason in err (deliver.c and subs.c share it through this header). */
int notify__verify(const struct notify *n, const char *url, struct ing_err *err);

#endif
