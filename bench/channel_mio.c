/* Channel throughput: messages per second from 1, 2 and 4 producer threads
 * into one event loop, through mio_sender_send and the loop's `notify`.
 *
 *   channel_mio [MESSAGES] [BACKEND]      (MESSAGES: 10000000 in all per run)
 *
 * One line per producer count:
 *   channel_mio producers=2 messages=10000000 seconds=0.612 msgs_per_s=16339869 full=1234
 * where `full` counts sends that found the channel full (MIO_EAGAIN) and were
 * retried after a yield.  The default config is used (4096 slots, 256
 * messages per tick), so the loop also pays for its ticks and wake-ups. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct producer {
    mio_sender *tx;
    long count;
    long full;
    atomic_int *go;
};

struct consumer {
    long expected, received;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    long i;

    while (!atomic_load_explicit(p->go, memory_order_acquire))
        sched_yield();
    for (i = 0; i < p->count; i++) {
        while (mio_sender_send(p->tx, (void *)(uintptr_t)i) == MIO_EAGAIN) {
            p->full++;
            sched_yield();
        }
    }
    return NULL;
}

static void on_notify(mio_loop *loop, void *ctx, void *msg)
{
    struct consumer *c = ctx;
    (void)msg;
    if (++c->received == c->expected)
        mio_loop_shutdown(loop);
}

static int run(int producers, long messages, const char *backend)
{
    const mio_handler handler = { .notify = on_notify };
    struct producer p[4];
    struct consumer c = { 0, 0 };
    pthread_t th[4];
    mio_loop_config config;
    mio_loop *loop;
    atomic_int go;
    long full = 0;
    double start, secs;
    int i, err;

    mio_loop_config_default(&config);
    config.backend = backend;
    if ((err = mio_loop_new(&config, &loop)) < 0) {
        fprintf(stderr, "channel_mio: %s\n", mio_strerror(err));
        return 1;
    }
    atomic_init(&go, 0);
    c.expected = messages / producers * producers;
    for (i = 0; i < producers; i++) {
        p[i].count = messages / producers;
        p[i].full = 0;
        p[i].go = &go;
        if (mio_loop_channel(loop, &p[i].tx) < 0 ||
            pthread_create(&th[i], NULL, produce, &p[i]) != 0) {
            fprintf(stderr, "channel_mio: cannot start producers\n");
            return 1;
        }
    }
    start = now_s();
    atomic_store_explicit(&go, 1, memory_order_release);
    err = mio_loop_run(loop, &handler, &c);
    secs = now_s() - start;
    for (i = 0; i < producers; i++) {
        pthread_join(th[i], NULL);
        full += p[i].full;
        mio_sender_free(p[i].tx);
    }
    mio_loop_free(loop);
    if (err < 0) {
        fprintf(stderr, "channel_mio: %s\n", mio_strerror(err));
        return 1;
    }
    printf("channel_mio producers=%d messages=%ld seconds=%.3f msgs_per_s=%.0f full=%ld\n",
           producers, c.received, secs, (double)c.received / secs, full);
    return 0;
}

int main(int argc, char **argv)
{
    long messages = argc > 1 ? atol(argv[1]) : 10000000;
    const char *backend = argc > 2 ? argv[2] : NULL;
    const int counts[] = { 1, 2, 4 };
    size_t i;

    if (messages < 4) {
        fprintf(stderr, "usage: %s [MESSAGES >= 4] [BACKEND]\n", argv[0]);
        return 2;
    }
    for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (run(counts[i], messages, backend) != 0)
            return 1;
    return 0;
}
