/* The event loop with a timer and a channel (mio 0.6's EventLoop example).
 *
 *   event_loop [SCALE]       (SCALE multiplies every delay; default 1)
 *
 * A thread sends NOTIFY, sleeps 5 s and sends END; meanwhile a 3 s timeout
 * fires; END shuts the loop down.  Each line printed says when it happened:
 *
 *   0.000 channel notify
 *   3.001 time out
 *   5.000 shutdown event loop
 */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum message { NOTIFY = 1, END };   /* sent as the message pointer's value */
#define TIMEOUT_ID 123

static double scale = 1.0;
static struct timespec start;

static void say(const char *what)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("%.3f %s\n", (double)(now.tv_sec - start.tv_sec) +
                            (double)(now.tv_nsec - start.tv_nsec) / 1e9, what);
    fflush(stdout);
}

static void *producer(void *arg)
{
    mio_sender *tx = arg;
    double delay = 5 * scale;
    struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };

    mio_sender_send(tx, (void *)NOTIFY);
    nanosleep(&ts, NULL);
    mio_sender_send(tx, (void *)END);
    mio_sender_free(tx);
    return NULL;
}

static void on_notify(mio_loop *loop, void *ctx, void *msg)
{
    (void)ctx;
    switch ((enum message)(uintptr_t)msg) {
    case NOTIFY:
        say("channel notify");
        break;
    case END:
        say("shutdown event loop");
        mio_loop_shutdown(loop);
        break;
    }
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    (void)loop;
    (void)ctx;
    if ((uintptr_t)arg == TIMEOUT_ID)
        say("time out");
}

int main(int argc, char **argv)
{
    const mio_handler handler = { .notify = on_notify, .timeout = on_timeout };
    mio_loop *loop;
    mio_sender *tx;
    pthread_t thread;
    int err;

    if (argc > 1 && (scale = atof(argv[1])) <= 0) {
        fprintf(stderr, "usage: %s [SCALE > 0]\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    if ((err = mio_loop_new(NULL, &loop)) < 0 ||
        (err = mio_loop_channel(loop, &tx)) < 0 ||
        (err = mio_loop_timeout(loop, (void *)TIMEOUT_ID,
                                (uint64_t)(3 * scale * (double)MIO_SEC), NULL)) < 0) {
        fprintf(stderr, "event_loop: %s\n", mio_strerror(err));
        return 1;
    }
    if (pthread_create(&thread, NULL, producer, tx) != 0) {
        fprintf(stderr, "event_loop: cannot start the producer thread\n");
        return 1;
    }
    err = mio_loop_run(loop, &handler, NULL);
    pthread_join(thread, NULL);
    mio_loop_free(loop);
    if (err < 0) {
        fprintf(stderr, "event_loop: %s\n", mio_strerror(err));
        return 1;
    }
    return 0;
}
