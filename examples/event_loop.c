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

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

enum message { NOTIFY = 1, END };   /* sent as the message pointer's value */
#define TIMEOUT_ID 123

static double scale = 1.0;
static int64_t start;

static void say(const char *what)
{
    printf("%.3f %s\n", (double)(clock_now_ns() - start) / 1e9, what);
    fflush(stdout);
}

/* The producer thread: NOTIFY at once, END 5 s later. */
static void produce(mio_sender *tx);

/* Threads and sleep: the one place where Windows and POSIX differ here. */
#ifdef _WIN32
static HANDLE thread;

static DWORD WINAPI thread_main(void *tx)
{
    produce(tx);
    return 0;
}

static bool thread_start(mio_sender *tx)
{
    return (thread = CreateThread(NULL, 0, thread_main, tx, 0, NULL)) != NULL;
}

static void thread_join(void)
{
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
}

static void sleep_s(double s)
{
    Sleep((DWORD)(s * 1e3 + 0.999));    /* whole milliseconds, none short */
}
#else
static pthread_t thread;

static void *thread_main(void *tx)
{
    produce(tx);
    return NULL;
}

static bool thread_start(mio_sender *tx)
{
    return pthread_create(&thread, NULL, thread_main, tx) == 0;
}

static void thread_join(void)
{
    pthread_join(thread, NULL);
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0)
        ;                               /* cut short by a signal: the rest */
}
#endif

static void produce(mio_sender *tx)
{
    mio_sender_send(tx, (void *)NOTIFY);
    sleep_s(5 * scale);
    mio_sender_send(tx, (void *)END);
    mio_sender_free(tx);
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
    mio_sender *tx = NULL;
    int err;

    if (argc > 1 && (scale = atof(argv[1])) <= 0) {
        fprintf(stderr, "usage: %s [SCALE > 0]\n", argv[0]);
        return 2;
    }
    start = clock_now_ns();
    /* Whatever start-up made is freed again if a later step fails. */
    if ((err = mio_loop_new(NULL, &loop)) < 0) {
        fprintf(stderr, "event_loop: %s\n", mio_strerror(err));
        return 1;
    }
    if ((err = mio_loop_channel(loop, &tx)) < 0 ||
        (err = mio_loop_timeout(loop, (void *)TIMEOUT_ID,
                                (uint64_t)(3 * scale * (double)MIO_SEC), NULL)) < 0) {
        fprintf(stderr, "event_loop: %s\n", mio_strerror(err));
        mio_sender_free(tx);
        mio_loop_free(loop);
        return 1;
    }
    if (!thread_start(tx)) {            /* the thread frees tx once it has run */
        fprintf(stderr, "event_loop: cannot start the producer thread\n");
        mio_sender_free(tx);
        mio_loop_free(loop);
        return 1;
    }
    /* A wait that failed for want of memory is tried again. */
    while ((err = mio_loop_run(loop, &handler, NULL)) == MIO_ENOMEM)
        ;
    thread_join();
    mio_loop_free(loop);
    if (err < 0) {
        fprintf(stderr, "event_loop: %s\n", mio_strerror(err));
        return 1;
    }
    return 0;
}
