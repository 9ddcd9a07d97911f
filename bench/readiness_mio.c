/* User-space readiness against a waker: the time from mio_set_readiness_set
 * to the event, and updates per second from 1, 2 and 4 producer threads.
 *
 *   readiness_mio [ROUNDS] [BACKEND]       (ROUNDS: 100000)
 *
 * latency: one producer and the poller play ping-pong ROUNDS times.  The
 * producer notes the time, makes readiness rise (or wakes), and waits for the
 * poller to have seen the event; the poller takes the time when its wait
 * returns.  "blocked" waits with no timeout (every round wakes the poller
 * from the kernel), "busy" polls with a zero timeout (no wake-up needed).
 *   readiness_mio latency via=set_readiness poller=blocked p50_ns=.. p99_ns=..
 *
 * throughput: for half a second, each producer sets its own registration in a
 * loop, every set a rise (READABLE and WRITABLE alternate), or wakes its own
 * waker, while the poller waits and counts events.  Updates that land before
 * the poller looks coalesce into one event: with set_readiness they cost one
 * CAS then, a waker always pays a system call.
 *   readiness_mio throughput via=waker producers=2 updates_per_s=.. events_per_s=.. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum via { VIA_SET, VIA_WAKER };

static const char *backend;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}

static void check(int err, const char *what)
{
    if (err < 0) {
        fprintf(stderr, "readiness_mio: %s: %s\n", what, mio_strerror(err));
        exit(1);
    }
}

/* One source of events: a registration's set_readiness handle or a waker. */
struct source {
    mio_registration *reg;
    mio_set_readiness *set;
    mio_waker *waker;
};

static void source_open(mio_poll *p, enum via via, mio_token token, struct source *s)
{
    memset(s, 0, sizeof *s);
    if (via == VIA_SET) {
        check(mio_registration_new(&s->reg, &s->set), "mio_registration_new");
        check(mio_registration_register(p, s->reg, token, MIO_READABLE | MIO_WRITABLE),
              "mio_registration_register");
    } else {
        check(mio_waker_new(p, token, &s->waker), "mio_waker_new");
    }
}

static void source_fire(struct source *s, long i)
{
    if (s->set != NULL)
        check(mio_set_readiness_set(s->set, i & 1 ? MIO_READABLE : MIO_WRITABLE), "set");
    else
        check(mio_waker_wake(s->waker), "wake");
}

static void source_close(struct source *s)
{
    mio_registration_free(s->reg);
    mio_set_readiness_free(s->set);
    mio_waker_free(s->waker);
}

/* ---- latency ---- */

struct pingpong {
    struct source src;
    long rounds;
    atomic_llong sent_at;
    atomic_long seen;       /* rounds the poller has seen */
};

static void *ping(void *arg)
{
    struct pingpong *pp = arg;
    long i;

    for (i = 0; i < pp->rounds; i++) {
        atomic_store(&pp->sent_at, now_ns());
        source_fire(&pp->src, i);
        while (atomic_load(&pp->seen) <= i)
            sched_yield();
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void latency(enum via via, int busy, long rounds)
{
    struct pingpong pp;
    mio_poll *p;
    pthread_t t;
    int64_t *lat = malloc((size_t)rounds * sizeof *lat);
    long i;

    if (lat == NULL)
        exit(1);
    check(mio_poll_new_backend(backend, &p), "mio_poll_new_backend");
    memset(&pp, 0, sizeof pp);
    source_open(p, via, 1, &pp.src);
    pp.rounds = rounds;
    pthread_create(&t, NULL, ping, &pp);
    for (i = 0; i < rounds; i++) {
        mio_event ev[4];
        int n;
        do
            n = mio_poll_wait(p, ev, 4, busy ? 0 : -1);
        while (n == 0 || n == MIO_EINTR);
        check(n, "mio_poll_wait");
        lat[i] = now_ns() - atomic_load(&pp.sent_at);
        atomic_store(&pp.seen, i + 1);
    }
    pthread_join(t, NULL);
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_i64);
    printf("readiness_mio latency via=%s poller=%s backend=%s rounds=%ld p50_ns=%lld p99_ns=%lld\n",
           via == VIA_SET ? "set_readiness" : "waker", busy ? "busy" : "blocked",
           mio_poll_backend(p), rounds, (long long)lat[rounds / 2],
           (long long)lat[rounds * 99 / 100]);
    source_close(&pp.src);
    mio_poll_free(p);
    free(lat);
}

/* ---- throughput ---- */

struct producer {
    struct source src;
    long updates;
    atomic_int *go, *stop;
};

static void *produce(void *arg)
{
    struct producer *pr = arg;

    while (!atomic_load(pr->go))
        sched_yield();
    while (!atomic_load_explicit(pr->stop, memory_order_relaxed))
        source_fire(&pr->src, pr->updates++);
    return NULL;
}

static void throughput(enum via via, int producers)
{
    struct producer pr[4];
    pthread_t t[4];
    atomic_int go = 0, stop = 0;
    mio_poll *p;
    long events = 0, updates = 0;
    int64_t start, end;
    int i;

    check(mio_poll_new_backend(backend, &p), "mio_poll_new_backend");
    for (i = 0; i < producers; i++) {
        source_open(p, via, (mio_token)i, &pr[i].src);
        pr[i].updates = 0;
        pr[i].go = &go;
        pr[i].stop = &stop;
        pthread_create(&t[i], NULL, produce, &pr[i]);
    }
    start = now_ns();
    atomic_store(&go, 1);
    while (now_ns() - start < MIO_SEC / 2) {
        mio_event ev[256];
        int n = mio_poll_wait(p, ev, 256, 10 * MIO_MSEC);
        if (n > 0)
            events += n;
    }
    atomic_store(&stop, 1);
    end = now_ns();
    for (i = 0; i < producers; i++) {
        pthread_join(t[i], NULL);
        updates += pr[i].updates;
    }
    printf("readiness_mio throughput via=%s producers=%d backend=%s seconds=%.3f "
           "updates_per_s=%.0f events_per_s=%.0f\n",
           via == VIA_SET ? "set_readiness" : "waker", producers, mio_poll_backend(p),
           (double)(end - start) / 1e9, (double)updates * 1e9 / (double)(end - start),
           (double)events * 1e9 / (double)(end - start));
    for (i = 0; i < producers; i++)
        source_close(&pr[i].src);
    mio_poll_free(p);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 100000;
    static const int counts[] = { 1, 2, 4 };
    int via, busy, i;

    backend = argc > 2 ? argv[2] : NULL;
    if (rounds < 100)
        rounds = 100;
    for (via = VIA_SET; via <= VIA_WAKER; via++)
        for (busy = 0; busy <= 1; busy++)
            latency((enum via)via, busy, rounds);
    for (i = 0; i < 3; i++)
        for (via = VIA_SET; via <= VIA_WAKER; via++)
            throughput((enum via)via, counts[i]);
    return 0;
}
