/* Signals: a timer signal every 100 us for 10 s while STREAMS TCP streams
 * flow at full speed, their writers and the poller all open to the signal.
 * The writers send in bursts, so the poller also sleeps in its waits: those
 * return MIO_EINTR and are retried; the I/O calls retry by themselves.
 * Every byte must arrive, in order, and every stream must finish.
 *
 *   signals [-b BACKEND] [-d SECONDS] [-i INTERVAL_US] */
#define _GNU_SOURCE
#include "mio.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STREAMS 8

static atomic_long signals_seen;
static atomic_bool stop;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char pattern(size_t stream, uint64_t at)
{
    return (unsigned char)(stream * 31 + at + (at >> 12));
}

struct stream {
    size_t id;
    mio_fd out, in;
    uint64_t sent, received;
    long bad;
};

static void *writer(void *arg)
{
    struct stream *s = arg;
    unsigned char buf[16384];
    size_t i;

    if (s->id != 1) {
        /* The signal goes to the poller and to one writer. */
        sigset_t alarm;
        sigemptyset(&alarm);
        sigaddset(&alarm, SIGALRM);
        pthread_sigmask(SIG_BLOCK, &alarm, NULL);
    }
    while (!atomic_load(&stop)) {
        ssize_t n;
        for (i = 0; i < sizeof buf; i++)
            buf[i] = pattern(s->id, s->sent + i);
        n = mio_write(s->out, buf, sizeof buf);
        if (n > 0) {
            /* Bursts with pauses between, so the poller also sleeps in its
             * wait (where the signal cuts it short). */
            if ((s->sent + (uint64_t)n) / 131072 != s->sent / 131072) {
                struct timespec pause = { 0, 5000000 };
                nanosleep(&pause, NULL);
            }
            s->sent += (uint64_t)n;
        } else if (n == MIO_EAGAIN) {
            struct pollfd pfd = { s->out, POLLOUT, 0 };
            poll(&pfd, 1, 10);          /* EINTR here is fine too */
        } else {
            fprintf(stderr, "signals: write: %s\n", mio_strerror((int)n));
            exit(1);
        }
    }
    mio_shutdown(s->out, MIO_SHUT_WR);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *backend = "epoll";
    double seconds = 10;
    long interval_us = 100, eintr = 0, waits = 0;
    struct stream st[STREAMS];
    pthread_t threads[STREAMS];
    struct sigaction sa;
    struct itimerval it, off;
    mio_addr a;
    mio_fd l;
    mio_poll *p;
    double t0, last_progress;
    int open_streams = STREAMS, opt, i;
    uint64_t total = 0;
    long bad = 0;

    while ((opt = getopt(argc, argv, "b:d:i:")) != -1) {
        if (opt == 'b')
            backend = optarg;
        else if (opt == 'd')
            seconds = atof(optarg);
        else if (opt == 'i')
            interval_us = atol(optarg);
        else
            return 2;
    }
    if (mio_poll_new_backend(backend, &p) != 0 || mio_addr_parse("127.0.0.1:0", &a) != 0 ||
        mio_tcp_listen(&a, 64, &l) != 0 || mio_local_addr(l, &a) != 0)
        return 1;
    for (i = 0; i < STREAMS; i++) {
        st[i].id = (size_t)i;
        st[i].sent = st[i].received = 0;
        st[i].bad = 0;
        if (mio_tcp_connect(&a, &st[i].out) != 0)
            return 1;
        while (mio_tcp_accept(l, &st[i].in, NULL) != 0)
            usleep(1000);
        if (mio_register(p, st[i].in, (mio_token)i, MIO_READABLE | MIO_LEVEL) != 0)
            return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;           /* no SA_RESTART: calls are cut short */
    sigaction(SIGALRM, &sa, NULL);
    for (i = 0; i < STREAMS; i++)
        pthread_create(&threads[i], NULL, writer, &st[i]);
    it.it_interval.tv_sec = it.it_value.tv_sec = 0;
    it.it_interval.tv_usec = it.it_value.tv_usec = interval_us;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &it, NULL);
    t0 = last_progress = now_s();
    while (open_streams > 0) {
        mio_event ev[STREAMS * 2];
        int n, k;
        if (!atomic_load(&stop) && now_s() - t0 >= seconds)
            atomic_store(&stop, true);
        if (now_s() - last_progress > 10) {
            fprintf(stderr, "signals: stuck with %d streams open\n", open_streams);
            return 1;
        }
        n = mio_poll_wait(p, ev, STREAMS * 2, 100 * MIO_MSEC);
        waits++;
        if (n == MIO_EINTR) {
            eintr++;
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "signals: wait: %s\n", mio_strerror(n));
            return 1;
        }
        for (k = 0; k < n; k++) {
            struct stream *s = &st[ev[k].token];
            unsigned char buf[65536];
            ssize_t r = MIO_EAGAIN, j;
            int rounds = 0;
            /* A few reads per event (level: the rest comes with the next
             * wait), so the poller keeps going back to waiting. */
            while (rounds++ < 4 && (r = mio_read(s->in, buf, sizeof buf)) > 0) {
                for (j = 0; j < r; j++)
                    if (buf[j] != pattern(s->id, s->received + (uint64_t)j))
                        s->bad++;
                s->received += (uint64_t)r;
                last_progress = now_s();
            }
            if (r == 0) {
                mio_deregister(p, s->in);
                open_streams--;
            } else if (r < 0 && r != MIO_EAGAIN) {
                fprintf(stderr, "signals: read: %s\n", mio_strerror((int)r));
                return 1;
            }
        }
    }
    setitimer(ITIMER_REAL, &off, NULL);
    for (i = 0; i < STREAMS; i++) {
        pthread_join(threads[i], NULL);
        if (st[i].received != st[i].sent)
            bad++;
        bad += st[i].bad;
        total += st[i].received;
        mio_close(st[i].in);
        mio_close(st[i].out);
    }
    printf("signals %s: %ld signals in %.1f s (every %ld us), %ld of %ld waits "
           "interrupted, %llu bytes verified over %d streams, %ld lost or wrong\n",
           backend, atomic_load(&signals_seen), now_s() - t0, interval_us, eintr, waits,
           (unsigned long long)total, STREAMS, bad);
    mio_close(l);
    mio_poll_free(p);
    return bad == 0 && atomic_load(&signals_seen) > 0 ? 0 : 1;
}
