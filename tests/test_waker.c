/* Wakers: a poll reports the waker's token READABLE after a wake from any
 * thread or signal handler; wakes coalesce; a waker may outlive its poll. */
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#ifndef _WIN32
#include <signal.h>
#include <sys/time.h>
#endif

/* How many events of one wait carry `token`. */
static int count_token(const mio_event *ev, int n, mio_token token)
{
    int i, c = 0;
    for (i = 0; i < n; i++)
        c += ev[i].token == token;
    return c;
}

/* ---- waking ---- */

struct wake_later {
    mio_waker *w;
    int delay_ms;
};

static void *wake_after_delay(void *arg)
{
    struct wake_later *wl = arg;
    test_sleep_ms(wl->delay_ms);
    OK(mio_waker_wake(wl->w));
    return NULL;
}

TEST(wake_from_thread_ends_blocking_wait)
{
    mio_poll *p = test_poll();
    struct wake_later wl = { NULL, 50 };
    mio_event ev[8];
    pthread_t t;
    int n;

    OK(mio_waker_new(p, 21, &wl.w));
    CHECK_EQ(test_wait(p, ev, 8, 0), 0);
    CHECK_EQ(pthread_create(&t, NULL, wake_after_delay, &wl), 0);
    n = test_wait(p, ev, 8, -1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(test_flags(ev, n, 21) & MIO_READABLE);
    mio_waker_free(wl.w);
    mio_poll_free(p);
}

TEST(wake_before_wait_is_reported)
{
    mio_poll *p = test_poll();
    mio_waker *w;

    OK(mio_waker_new(p, 0, &w));
    OK(mio_waker_wake(w));
    CHECK(test_wait_token(p, 0, MIO_SEC) & MIO_READABLE);
    mio_waker_free(w);
    mio_poll_free(p);
}

/* Any number of wakes before a wait is one event, READABLE and nothing
 * else, and nothing more after it. */
TEST(wakes_coalesce)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    int i;

    OK(mio_waker_new(p, 5, &w));
    for (i = 0; i < 10; i++)
        OK(mio_waker_wake(w));
    EXPECT_ONLY(p, 5, MIO_READABLE, MIO_SEC);
    EXPECT_QUIET(p, TEST_QUIET_WAIT);
    mio_waker_free(w);
    mio_poll_free(p);
}

/* A reported wake leaves the waker ready for the next one. */
TEST(wake_again_after_report)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    int i;

    OK(mio_waker_new(p, 6, &w));
    for (i = 0; i < 100; i++) {
        OK(mio_waker_wake(w));
        CHECK(test_wait_token(p, 6, MIO_SEC) & MIO_READABLE);
    }
    CHECK_EQ(test_wait_token(p, 6, 20 * MIO_MSEC), 0);
    mio_waker_free(w);
    mio_poll_free(p);
}

TEST(several_wakers_report_own_tokens)
{
    mio_poll *p = test_poll();
    mio_waker *w[3];
    mio_event ev[16];
    int i, n;

    for (i = 0; i < 3; i++)
        OK(mio_waker_new(p, (mio_token)(100 + i), &w[i]));
    OK(mio_waker_wake(w[1]));
    n = test_wait(p, ev, 16, MIO_SEC);
    CHECK_EQ(count_token(ev, n, 100), 0);
    CHECK_EQ(count_token(ev, n, 101), 1);
    CHECK_EQ(count_token(ev, n, 102), 0);
    for (i = 0; i < 3; i++)
        OK(mio_waker_wake(w[i]));
    {
        int seen[3] = { 0 }, rounds;
        /* All three, over as many waits as the backend needs. */
        for (rounds = 0; rounds < 10 && !(seen[0] && seen[1] && seen[2]); rounds++) {
            n = test_wait(p, ev, 16, MIO_SEC);
            for (i = 0; i < n; i++) {
                CHECK(ev[i].token >= 100 && ev[i].token < 103);
                CHECK(ev[i].flags & MIO_READABLE);
                CHECK_EQ(seen[ev[i].token - 100]++, 0);
            }
        }
        CHECK(seen[0] && seen[1] && seen[2]);
    }
    for (i = 0; i < 3; i++)
        mio_waker_free(w[i]);
    mio_poll_free(p);
}

/* A waker and a socket on one poll do not mix their events. */
TEST(waker_beside_a_socket)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    mio_fd sv[2];
    mio_event ev[16];
    int n;

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 1, MIO_READABLE));
    OK(mio_waker_new(p, 2, &w));
    OK(mio_waker_wake(w));
    n = test_wait(p, ev, 16, MIO_SEC);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK_EQ(mio_write(sv[1], "x", 1), 1);
    n = test_wait(p, ev, 16, MIO_SEC);
    CHECK(test_flags(ev, n, 1) & MIO_READABLE);
    CHECK_EQ(test_flags(ev, n, 2), 0);
    mio_waker_free(w);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

/* ---- from several threads at once ---- */

struct hammer {
    mio_waker *w;
    atomic_int running;
};

static void *wake_many(void *arg)
{
    struct hammer *h = arg;
    int i;
    for (i = 0; i < 1000; i++)
        OK(mio_waker_wake(h->w));
    atomic_fetch_sub(&h->running, 1);
    return NULL;
}

TEST(concurrent_wakes_from_threads)
{
    mio_poll *p = test_poll();
    struct hammer h;
    pthread_t t[4];
    mio_event ev[16];
    int i, n, events = 0;

    OK(mio_waker_new(p, 8, &h.w));
    atomic_init(&h.running, 4);
    for (i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, wake_many, &h), 0);
    while (atomic_load(&h.running) > 0) {
        n = test_wait(p, ev, 16, 100 * MIO_MSEC);
        CHECK(count_token(ev, n, 8) <= 1);
        events += count_token(ev, n, 8);
    }
    for (i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    /* The last wakes may not have been collected yet: one more wait. */
    n = test_wait(p, ev, 16, 20 * MIO_MSEC);
    events += count_token(ev, n, 8);
    CHECK(events >= 1);
    /* Everything was answered: quiet now. */
    CHECK_EQ(test_wait_token(p, 8, 20 * MIO_MSEC), 0);
    mio_waker_free(h.w);
    mio_poll_free(p);
}

struct new_waker_later {
    mio_poll *p;
    mio_waker *w;
};

static void *create_and_wake(void *arg)
{
    struct new_waker_later *nw = arg;
    test_sleep_ms(30);
    OK(mio_waker_new(nw->p, 31, &nw->w));
    OK(mio_waker_wake(nw->w));
    return NULL;
}

/* A waker made by another thread while the poll waits works at once. */
TEST(waker_created_during_wait)
{
    struct new_waker_later nw = { NULL, NULL };
    mio_event ev[8];
    pthread_t t;
    int n;

    nw.p = test_poll();
    CHECK_EQ(pthread_create(&t, NULL, create_and_wake, &nw), 0);
    n = test_wait(nw.p, ev, 8, -1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(test_flags(ev, n, 31) & MIO_READABLE);
    mio_waker_free(nw.w);
    mio_poll_free(nw.p);
}

struct free_later {
    mio_waker *gone, *last;
};

static void *free_then_wake(void *arg)
{
    struct free_later *fl = arg;
    test_sleep_ms(30);
    OK(mio_waker_wake(fl->gone));
    mio_waker_free(fl->gone);
    test_sleep_ms(10);
    OK(mio_waker_wake(fl->last));
    return NULL;
}

/* Freed by another thread while the poll waits: its token is never seen. */
TEST(waker_freed_during_wait)
{
    mio_poll *p = test_poll();
    struct free_later fl;
    mio_event ev[8];
    pthread_t t;
    int n;

    OK(mio_waker_new(p, 41, &fl.gone));
    OK(mio_waker_new(p, 42, &fl.last));
    CHECK_EQ(pthread_create(&t, NULL, free_then_wake, &fl), 0);
    /* The first wake may end this wait before the free: then it reports 41,
     * which is fine; what matters is after the free. */
    do {
        n = test_wait(p, ev, 8, -1);
    } while (test_flags(ev, n, 42) == 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(test_wait_token(p, 41, 20 * MIO_MSEC), 0);
    mio_waker_free(fl.last);
    mio_poll_free(p);
}

/* ---- lifetime ---- */

TEST(freed_waker_reports_nothing)
{
    mio_poll *p = test_poll();
    mio_waker *a, *b;
    mio_event ev[8];
    int n;

    OK(mio_waker_new(p, 1, &a));
    OK(mio_waker_new(p, 2, &b));
    OK(mio_waker_wake(a));
    mio_waker_free(a);
    OK(mio_waker_wake(b));
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    CHECK_EQ(test_wait(p, ev, 8, 20 * MIO_MSEC), 0);
    mio_waker_free(b);
    mio_poll_free(p);
}

/* A wake still queued when its waker is freed belongs to that waker alone:
 * a new waker, which the allocator may well put at the same address, is not
 * reported for it. */
TEST(freed_wakers_wake_not_credited_to_next_waker)
{
    mio_poll *p = test_poll();
    mio_waker *a, *b;
    mio_event ev[8];
    int i, n;

    for (i = 0; i < 10; i++) {
        OK(mio_waker_new(p, 1, &a));
        OK(mio_waker_wake(a));
        mio_waker_free(a);
        OK(mio_waker_new(p, 2, &b));
        n = test_wait(p, ev, 8, 20 * MIO_MSEC);
        CHECK_EQ(test_flags(ev, n, 1), 0);
        CHECK_EQ(test_flags(ev, n, 2), 0);
        mio_waker_free(b);
    }
    mio_poll_free(p);
}

/* Wakes racing mio_poll_free: each round, threads wake a poll's wakers
 * while the poll is waited on (so that wakes reach the OS, not just coalesce)
 * and then freed; every wake returns 0, before, during and after the free.
 * The wakers are freed once the threads have let go of them. */
#define RACE_WAKERS 4
#define RACE_THREADS 1

struct free_race {
    mio_waker *w[RACE_WAKERS];
    atomic_int round;               /* being woken; 0 between rounds, -1 ends */
    atomic_int started[RACE_THREADS], done[RACE_THREADS];  /* rounds of each thread */
    atomic_int wakes, failures, first_error;
};

struct race_thread {
    struct free_race *r;
    int id;
};

static void *wake_while_round(void *arg)
{
    struct race_thread *t = arg;
    struct free_race *r = t->r;
    int round, i, err;

    while ((round = atomic_load(&r->round)) >= 0) {
        if (round == 0 || round == atomic_load(&r->done[t->id])) {
            sched_yield();
            continue;
        }
        atomic_store(&r->started[t->id], round);
        while (atomic_load(&r->round) == round) {
            for (i = 0; i < RACE_WAKERS; i++) {
                err = mio_waker_wake(r->w[i]);
                atomic_fetch_add(&r->wakes, 1);
                if (err != 0 && atomic_fetch_add(&r->failures, 1) == 0)
                    atomic_store(&r->first_error, err);
            }
            sched_yield();
        }
        atomic_store(&r->done[t->id], round);
    }
    return NULL;
}

TEST(wakes_racing_poll_free_all_succeed)
{
    static struct free_race r;
    struct race_thread t[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    mio_event ev[8];
    long rounds = test_scaled(2000), k;
    int i, j;

    atomic_init(&r.round, 0);
    for (i = 0; i < RACE_THREADS; i++) {
        atomic_init(&r.started[i], 0);
        atomic_init(&r.done[i], 0);
        t[i].r = &r;
        t[i].id = i;
        CHECK_EQ(pthread_create(&th[i], NULL, wake_while_round, &t[i]), 0);
    }
    for (k = 1; k <= rounds; k++) {
        mio_poll *p = test_poll();
        for (i = 0; i < RACE_WAKERS; i++)
            OK(mio_waker_new(p, (mio_token)i, &r.w[i]));
        atomic_store(&r.round, (int)k);
        for (i = 0; i < RACE_THREADS; i++)
            while (atomic_load(&r.started[i]) != (int)k)
                sched_yield();
        for (j = 0; j < (int)(k % 4); j++)
            CHECK(test_wait(p, ev, 8, 0) >= 0);
        mio_poll_free(p);
        for (j = 0; j < 20; j++)
            sched_yield();      /* more wakes, on the freed poll's wakers */
        atomic_store(&r.round, 0);
        for (i = 0; i < RACE_THREADS; i++)
            while (atomic_load(&r.done[i]) != (int)k)
                sched_yield();
        for (i = 0; i < RACE_WAKERS; i++)
            mio_waker_free(r.w[i]);
    }
    atomic_store(&r.round, -1);
    for (i = 0; i < RACE_THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK(atomic_load(&r.wakes) > 0);
    if (atomic_load(&r.failures) != 0)
        FAIL("%d of %d wakes failed, the first with %d (%s)", atomic_load(&r.failures),
             atomic_load(&r.wakes), atomic_load(&r.first_error),
             mio_strerror(atomic_load(&r.first_error)));
}

TEST(waker_outlives_poll)
{
    mio_poll *p = test_poll();
    mio_waker *w, *v;
    int fds;

    mio_poll_free(p);
    fds = test_open_fds();
    p = test_poll();
    OK(mio_waker_new(p, 1, &w));
    OK(mio_waker_new(p, 2, &v));
    OK(mio_waker_wake(v));
    mio_poll_free(p);
    /* Detached: a wake has nowhere to go, but it returns. */
    (void)mio_waker_wake(w);
    (void)mio_waker_wake(w);
    (void)mio_waker_wake(v);
    mio_waker_free(w);
    mio_waker_free(v);
    CHECK_EQ(test_open_fds(), fds);
}

/* A wake racing the waiter's announcement that it goes to sleep is never
 * lost: each round the waiter blocks (no timeout) until its waker's event,
 * and the waking thread wakes at a varying moment around that block. */
struct sleeper_race {
    mio_waker *w;
    long rounds;
    bool slow;              /* valgrind: one thread runs at a time */
    atomic_long taken;      /* rounds the waiter finished */
};

static void *wake_each_round(void *arg)
{
    struct sleeper_race *r = arg;
    uint32_t seed = 7;
    long k;

    for (k = 0; k < r->rounds; k++) {
        int spin;
        while (atomic_load(&r->taken) < k)
            if (r->slow)
                test_sleep_ms(0);   /* hand the one running slot over */
        seed = seed * 1103515245u + 12345u;
        for (spin = (int)((seed >> 16) % 2000); spin > 0; spin--)
            atomic_signal_fence(memory_order_seq_cst);
        OK(mio_waker_wake(r->w));
    }
    return NULL;
}

TEST(wake_racing_sleep_is_never_lost)
{
    mio_poll *p = test_poll();
    struct sleeper_race r;
    pthread_t t;
    long k;

    OK(mio_waker_new(p, 5, &r.w));
    /* valgrind runs one thread at a time, handing over only when a slice
     * ends: a spin there costs whole slices, and cannot race the waiter
     * anyway (plain and TSan runs do). */
    r.slow = test_on_valgrind();
    r.rounds = r.slow ? 100 : test_scaled(10000);
    atomic_init(&r.taken, 0);
    test_watchdog(60);
    CHECK_EQ(pthread_create(&t, NULL, wake_each_round, &r), 0);
    for (k = 0; k < r.rounds; k++) {
        mio_event ev[4];
        int n = test_wait(p, ev, 4, k % 3 == 0 ? 0 : -1), i;
        bool woken = false;
        for (i = 0; i < n; i++)
            woken |= ev[i].token == 5;
        if (!woken) {
            k--;        /* a non-blocking look that came too early */
            continue;
        }
        atomic_store(&r.taken, k + 1);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    test_watchdog(0);
    mio_waker_free(r.w);
    mio_poll_free(p);
}

/* Freeing a waker may race freeing its poll, in either order (TSan, ASan). */
struct waker_freer {
    mio_waker *w;
    atomic_int go;
};

static void *free_waker_now(void *arg)
{
    struct waker_freer *f = arg;
    while (!atomic_load(&f->go))
        ;
    mio_waker_free(f->w);
    return NULL;
}

TEST(waker_free_racing_poll_free)
{
    long rounds = test_scaled(2000), k;

    for (k = 0; k < rounds; k++) {
        mio_poll *p = test_poll();
        struct waker_freer f;
        pthread_t t;

        OK(mio_waker_new(p, 1, &f.w));
        if (k % 2)
            OK(mio_waker_wake(f.w));
        atomic_init(&f.go, 0);
        CHECK_EQ(pthread_create(&t, NULL, free_waker_now, &f), 0);
        atomic_store(&f.go, 1);
        mio_poll_free(p);
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
}

TEST(waker_token_reused_after_free)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    int i;

    for (i = 0; i < 3; i++) {
        OK(mio_waker_new(p, 9, &w));
        OK(mio_waker_wake(w));
        CHECK(test_wait_token(p, 9, MIO_SEC) & MIO_READABLE);
        mio_waker_free(w);
    }
    CHECK_EQ(test_wait_token(p, 9, 20 * MIO_MSEC), 0);
    mio_poll_free(p);
}

TEST(waker_null_arguments)
{
    mio_poll *p = test_poll();
    mio_waker *w = NULL;
    mio_event ev[4];

    CHECK_EQ(mio_waker_new(NULL, 1, &w), MIO_EINVAL);
    CHECK(w == NULL);
    CHECK_EQ(mio_waker_new(p, 1, NULL), MIO_EINVAL);
    CHECK_EQ(mio_waker_new(p, MIO_TOKEN_RESERVED, &w), MIO_EINVAL);
    CHECK(w == NULL);
    CHECK_EQ(mio_waker_wake(NULL), MIO_EINVAL);
    mio_waker_free(NULL);
    /* None of it left a waker behind. */
    CHECK_EQ(test_wait(p, ev, 4, 20 * MIO_MSEC), 0);
    mio_poll_free(p);
}

/* ---- signal handlers, which Windows lacks ---- */

#ifndef _WIN32

static mio_waker *signal_waker;

static void wake_in_handler(int sig)
{
    (void)sig;
    (void)mio_waker_wake(signal_waker);
}

struct kicker {
    pthread_t target;
    int signo;
};

/* The wake from the handler is reported; the signal itself may end a wait
 * first with MIO_EINTR. */
static void expect_wake_past_signal(mio_poll *p, mio_token token, int64_t timeout_ns)
{
    mio_event ev[8];
    int n = MIO_EINTR, tries;

    for (tries = 0; tries < 3 && n == MIO_EINTR; tries++)
        n = mio_poll_wait(p, ev, 8, timeout_ns);
    CHECK(n >= 1);
    CHECK(test_flags(ev, n, token) & MIO_READABLE);
}

static void *kick_after_delay(void *arg)
{
    struct kicker *k = arg;
    test_sleep_ms(30);
    pthread_kill(k->target, k->signo);
    return NULL;
}

POSIX_TEST(wake_from_signal_handler)
{
    struct kicker k;
    mio_poll *p = test_poll();
    pthread_t t;

    OK(mio_waker_new(p, 51, &signal_waker));
    test_catch_signal(SIGUSR1, wake_in_handler);
    k.target = pthread_self();
    k.signo = SIGUSR1;
    CHECK_EQ(pthread_create(&t, NULL, kick_after_delay, &k), 0);
    expect_wake_past_signal(p, 51, -1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    mio_waker_free(signal_waker);
    mio_poll_free(p);
}

/* A process-directed signal from a timer, whichever thread takes it. */
POSIX_TEST(wake_from_alarm_handler)
{
    struct itimerval it;
    mio_poll *p = test_poll();

    OK(mio_waker_new(p, 52, &signal_waker));
    test_catch_signal(SIGALRM, wake_in_handler);
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 30000;
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    expect_wake_past_signal(p, 52, 10 * MIO_SEC);
    memset(&it, 0, sizeof it);
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    mio_waker_free(signal_waker);
    mio_poll_free(p);
}
#endif
