/* Allocation failure at every site in turn: each scenario runs once with
 * its first allocation refused, once with its second, and so on, until a
 * run refuses none; then all over again with every allocation from the Nth
 * on refused, until a call says so.  Each call that allocates either
 * succeeds or returns MIO_ENOMEM (any other error fails the test); after
 * MIO_ENOMEM the object the call was made on must be unchanged and usable
 * (checked with memory to be had again, then the call is made again and
 * must succeed: a half-made change would show as MIO_EEXIST and the like),
 * and at the end of every run no block and no descriptor is left. */
#include "harness.h"
#ifndef _WIN32
#include "child.h"
#endif

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#endif

#define R MIO_READABLE
#define W MIO_WRITABLE

/* ---- the driver ---- */

static int enomem;      /* MIO_ENOMEM results in this run */
static int for_good;    /* this run fails every allocation from the Nth on */
static char run_name[64];   /* which refusal this run makes */

static long long may_at(int line, const char *what, long long r)
{
    if (r == MIO_ENOMEM) {
        enomem++;
        /* The failure reached the caller: from here on memory is there
         * again, for the checks and the call made again. */
        if (for_good)
            test_fail_allocation(-1);
    } else if (r < 0) {
        fprintf(stderr, "%s:%d: %s: %s (%lld) where only MIO_ENOMEM may come\n", __FILE__,
                line, what, mio_strerror((int)r), r);
        exit(1);
    }
    return r;
}

/* A call that may allocate: its result; an error other than MIO_ENOMEM
 * fails the test. */
#define MAY(call) may_at(__LINE__, #call, (long long)(call))

/* A call that may allocate.  After MIO_ENOMEM, `then` checks that what the
 * call was made on is unchanged and usable, and the call is made again: the
 * allocator now gives what it is asked for, so it must succeed. */
#define ALLOC(call, ...)  /* then: the checks (commas and all) */           \
    do {                                                                      \
        if (MAY(call) == MIO_ENOMEM) {                                        \
            __VA_ARGS__;                                                      \
            long long again_ = (call);                                        \
            if (again_ < 0)                                                   \
                FAIL("%s again: %s", #call, mio_strerror((int)again_));       \
        }                                                                     \
    } while (0)

/* Runs `run` with the 1st, 2nd, ... allocation refused until a run refuses
 * none: first refusing that one only, then that one and every one after it
 * until a call returns MIO_ENOMEM.  Returns how many allocations a run
 * makes. */
static long drive(const char *name, void (*run)(void))
{
    long live, n = 0, made_up = 0;
    int fds;

    live = test_allocations_live();
    fds = test_open_fds();
    for (for_good = 0; for_good < 2; for_good++) {
        for (n = 0;; n++) {
            long refused = test_allocations_refused();
            CHECK(n < 5000);
            enomem = 0;
            snprintf(run_name, sizeof run_name, "allocation %ld refused%s", n + 1,
                     for_good ? " for good" : "");
            if (for_good)
                test_fail_allocations_after(n);
            else
                test_fail_allocation(n);
            run();
            test_fail_allocation(-1);
            if (test_allocations_live() != live)
                FAIL("%s, %s: %ld blocks left", name, run_name, test_allocations_live() - live);
            if (test_open_fds() != fds)
                FAIL("%s, %s: %d descriptors left", name, run_name, test_open_fds() - fds);
            if (test_allocations_refused() == refused) {
                CHECK_EQ(enomem, 0);
                break;
            }
            if (enomem == 0)
                made_up++;      /* refused, and the library did without */
        }
    }
    printf("%s on %s: %ld allocations, every one refused in turn (%ld refusals made up for)\n",
           name, test_backend, n, made_up);
    return n;
}

/* Counts allocations from the first call on; skips a missing backend.
 * The first listener opens the process's reserve descriptor (for accept
 * out of descriptors), which stays: opened here, before the count. */
static void start(void)
{
    mio_addr a;
    mio_fd l;

    test_count_allocations();
    mio_poll_free(test_poll());
    OK(mio_addr_parse("127.0.0.1:0", &a));
    OK(mio_tcp_listen(&a, 1, &l));
    OK(mio_close(l));
}

static mio_poll *new_poll(void)
{
    mio_poll *p = NULL;
    ALLOC(mio_poll_new_backend(test_backend, &p), CHECK(p == NULL));
    return p;
}

/* A byte on s.w reaches p as token's READABLE; then drained. */
static void still_reports(mio_poll *p, struct test_source s, mio_token token)
{
    test_put(s.w, "x");
    EXPECT_EVENT(p, token, R, TEST_LONG_WAIT);
    test_drain(s.r);
}

/* ---- poll, registrations of descriptors ---- */

/* Enough for every backend's tables to grow (poll(2) from 8, io_uring from
 * 64; IOCP opens an AFD handle per 32 sockets, and its sources are socket
 * pairs, slow under wine: fewer there). */
#ifdef _WIN32
enum { SOURCES = 34, ON_BOTH = 4 };
#else
enum { SOURCES = 70, ON_BOTH = 20 };
#endif
static struct test_source src[SOURCES];

/* p reports each of the first `sources` sources, as token base + i. */
static void every_source_reports(mio_poll *p, mio_token base, int sources)
{
    bool seen[SOURCES];
    mio_event ev[16];
    int left;

    memset(seen, 0, sizeof seen);
    for (left = sources; left > 0;) {
        int n = test_wait(p, ev, 16, TEST_LONG_WAIT), k;
        CHECK(n > 0);
        for (k = 0; k < n; k++) {
            mio_token i = ev[k].token - base;
            CHECK(ev[k].token >= base && i < (mio_token)sources);
            if (!seen[i]) {
                seen[i] = true;
                left--;
            }
        }
    }
}

static void run_poll(void)
{
    mio_poll *p = new_poll(), *q = new_poll();
    int i;

    for (i = 0; i < SOURCES; i++) {
        uint32_t trigger = i % 3 == 0 ? MIO_LEVEL : i % 3 == 1 ? MIO_ONESHOT : MIO_EDGE;
        ALLOC(mio_register(p, src[i].r, (mio_token)i, R | trigger), {
            CHECK_EQ(mio_deregister(p, src[i].r), MIO_ENOENT);
            if (i > 0)
                still_reports(p, src[0], 0);
        });
    }
    /* Some of them on a second poll too (enough for its table to grow):
     * records chained to the first ones. */
    for (i = 0; i < ON_BOTH; i++)
        ALLOC(mio_register(q, src[i].r, (mio_token)(1000 + i), R), {
            CHECK_EQ(mio_deregister(q, src[i].r), MIO_ENOENT);
            if (i > 0)
                still_reports(q, src[0], 1000);
        });
    for (i = 0; i < SOURCES; i++)
        test_put(src[i].w, "x");
    every_source_reports(p, 0, SOURCES);
    every_source_reports(q, 1000, ON_BOTH);
    for (i = 0; i < SOURCES; i++) {
        test_drain(src[i].r);
        ALLOC(mio_reregister(p, src[i].r, (mio_token)(i + 100), R | MIO_EDGE), {
            /* The others (src[0] is reregistered already, src[2] edge
             * still, drained first to re-arm an emulated edge), and src[i]
             * as it was where it can report again. */
            if (i == 0)
                test_drain(src[2].r);
            still_reports(p, i > 0 ? src[0] : src[2], i > 0 ? 100 : 2);
            if (i % 3 == 0)
                still_reports(p, src[i], (mio_token)i);
        });
    }
    still_reports(p, src[SOURCES - 1], SOURCES - 1 + 100);
    for (i = 0; i < SOURCES; i++)
        OK(mio_deregister(p, src[i].r));
    for (i = 0; i < ON_BOTH; i++)
        OK(mio_deregister(q, src[i].r));
    mio_poll_free(q);
    mio_poll_free(p);
}

TEST(poll_registers_and_waits)
{
    int i;
    start();
    for (i = 0; i < SOURCES; i++)
        src[i] = i % 2 == 0 ? test_socket_source() :
#ifdef _WIN32
                              test_socket_source();
#else
                              test_pipe_source();
#endif
    CHECK(drive("poll", run_poll) > 0);
    for (i = 0; i < SOURCES; i++)
        test_close_source(src[i]);
}

#ifndef _WIN32
/* The process-wide index from descriptor to registrations grows by a leaf
 * for a descriptor number far above the others (and keeps it: the one block
 * allowed to stay). */
POSIX_TEST(descriptor_index_grows)
{
    struct test_source low, s;
    mio_poll *p;
    long live, n;
    int high, err;

    start();
    p = test_poll();
    low = test_socket_source();
    s = test_socket_source();
    high = fcntl(s.r, F_DUPFD_CLOEXEC, 5000);
    CHECK(high >= 5000);
    OK(mio_register(p, low.r, 1, R));
    live = test_allocations_live();
    for (n = 0;; n++) {
        CHECK(n < 100);
        test_fail_allocation(n);
        err = (int)MAY(mio_register(p, high, 2, R));
        test_fail_allocation(-1);
        if (err == 0)
            break;
        CHECK_EQ(mio_deregister(p, high), MIO_ENOENT);
        still_reports(p, low, 1);
    }
    CHECK(n > 0);
    test_put(s.w, "x");
    EXPECT_EVENT(p, 2, R, TEST_LONG_WAIT);
    OK(mio_deregister(p, high));
    OK(mio_close(high));
    OK(mio_deregister(p, low.r));
    CHECK_EQ(test_allocations_live(), live + 1);
    test_close_source(low);
    test_close_source(s);
    mio_poll_free(p);
    printf("descriptor index on %s: %ld allocations, every one refused in turn\n", test_backend, n);
}
#endif

/* ---- wakers ---- */

static void run_wakers(void)
{
    mio_poll *p = new_poll();
    mio_waker *w[3];
    int i;

    for (i = 0; i < 3; i++)
        ALLOC(mio_waker_new(p, (mio_token)(10 + i), &w[i]), {
            CHECK(w[i] == NULL);
            if (i > 0) {
                OK(mio_waker_wake(w[0]));
                CHECK(test_await(p, 10, TEST_LONG_WAIT));
            }
        });
    for (i = 0; i < 3; i++) {
        OK(mio_waker_wake(w[i]));
        CHECK(test_await(p, (mio_token)(10 + i), TEST_LONG_WAIT));
    }
    mio_waker_free(w[1]);
    mio_poll_free(p);
    mio_waker_free(w[0]);       /* a waker may outlive its poll */
    mio_waker_free(w[2]);
}

TEST(wakers)
{
    start();
    CHECK(drive("wakers", run_wakers) > 0);
}

#ifndef _WIN32
/* ---- changes while another thread waits ---- */

enum { WAITED = 10, WAKER_BIT = WAITED, REG_BIT = WAITED + 1 };

struct waiter {
    mio_poll *p;
    atomic_uint seen;       /* bit i: token i came (WAKER_BIT: 50, REG_BIT: 51) */
    atomic_int stop;
};

static void *wait_on(void *arg)
{
    struct waiter *w = arg;
    mio_event ev[16];

    while (!atomic_load(&w->stop)) {
        int n = mio_poll_wait(w->p, ev, 16, TEST_LONG_WAIT), k;
        CHECK(n >= 0 || n == MIO_EINTR);
        for (k = 0; k < n; k++) {
            unsigned bit = ev[k].token < WAITED ? (unsigned)ev[k].token :
                           ev[k].token == 50 ? WAKER_BIT : REG_BIT;
            atomic_fetch_or(&w->seen, 1u << bit);
        }
    }
    return NULL;
}

/* The waiting thread saw bit (and it is cleared again). */
static void waiter_saw(struct waiter *w, unsigned bit)
{
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    while (!(atomic_load(&w->seen) & (1u << bit))) {
        if (test_now_ns() >= deadline)
            FAIL("%s: the waiting thread saw nothing of event %u", run_name, bit);
        test_sleep_ms(1);
    }
    atomic_fetch_and(&w->seen, ~(1u << bit));
}

/* A byte on s.w reaches the waiting thread as token; then drained (which
 * re-arms an emulated edge). */
static void waiter_sees(struct waiter *w, struct test_source s, unsigned token)
{
    test_put(s.w, "x");
    waiter_saw(w, token);
    test_drain(s.r);
}

static void run_while_waiting(void)
{
    struct test_source s[WAITED];
    struct waiter w;
    mio_waker *wk = NULL;
    mio_registration *r = NULL;
    mio_set_readiness *set = NULL;
    pthread_t t;
    int i;

    w.p = new_poll();
    atomic_init(&w.seen, 0);
    atomic_init(&w.stop, 0);
    CHECK_EQ(pthread_create(&t, NULL, wait_on, &w), 0);
    for (i = 0; i < WAITED; i++) {
        s[i] = test_socket_source();
        ALLOC(mio_register(w.p, s[i].r, (mio_token)i, R), {
            CHECK_EQ(mio_deregister(w.p, s[i].r), MIO_ENOENT);
            if (i > 0)
                waiter_sees(&w, s[0], 0);
        });
        waiter_sees(&w, s[i], (unsigned)i);
    }
    ALLOC(mio_waker_new(w.p, 50, &wk), waiter_sees(&w, s[0], 0));
    OK(mio_waker_wake(wk));
    waiter_saw(&w, WAKER_BIT);
    ALLOC(mio_registration_new(&r, &set), (void)0);
    ALLOC(mio_registration_register(w.p, r, 51, R), {
        OK(mio_waker_wake(wk));
        waiter_saw(&w, WAKER_BIT);
    });
    OK(mio_set_readiness_set(set, R));
    waiter_saw(&w, REG_BIT);
    atomic_store(&w.stop, 1);
    OK(mio_waker_wake(wk));
    CHECK_EQ(pthread_join(t, NULL), 0);
    mio_registration_free(r);
    mio_set_readiness_free(set);
    mio_waker_free(wk);
    for (i = 0; i < WAITED; i++)
        test_close_source(s[i]);
    mio_poll_free(w.p);
}

POSIX_TEST(changes_while_another_thread_waits)
{
    start();
    CHECK(drive("while waiting", run_while_waiting) > 0);
}
#endif

/* ---- user-space readiness ---- */

static void set_and_see(mio_poll *p, mio_set_readiness *s, mio_token token)
{
    OK(mio_set_readiness_set(s, R));
    CHECK(test_await(p, token, TEST_LONG_WAIT));
    OK(mio_set_readiness_set(s, 0));
}

static void run_registrations(void)
{
    mio_poll *p = new_poll(), *q;
    mio_registration *r[2];
    mio_set_readiness *s[2], *clone;
    int i;

    for (i = 0; i < 2; i++) {
        ALLOC(mio_registration_new(&r[i], &s[i]), {
            CHECK(r[i] == NULL);
            CHECK(s[i] == NULL);
        });
        ALLOC(mio_registration_register(p, r[i], (mio_token)(20 + i), R | W), {
            CHECK_EQ(mio_registration_deregister(p, r[i]), MIO_ENOENT);
            if (i > 0)
                set_and_see(p, s[0], 20);
        });
    }
    ALLOC(mio_set_readiness_clone(s[0], &clone), {
        CHECK(clone == NULL);
        set_and_see(p, s[0], 20);
    });
    set_and_see(p, clone, 20);
    set_and_see(p, s[1], 21);
    ALLOC(mio_registration_reregister(p, r[0], 22, R | MIO_LEVEL), set_and_see(p, s[0], 20));
    set_and_see(p, clone, 22);
    OK(mio_registration_deregister(p, r[1]));
    mio_registration_free(r[0]);
    mio_set_readiness_free(s[0]);
    OK(mio_set_readiness_set(clone, R));        /* reaches no poll now */
    mio_set_readiness_free(clone);
    mio_poll_free(p);
    /* Free of its first poll, r[1] may go to another. */
    q = new_poll();
    ALLOC(mio_registration_register(q, r[1], 23, R),
          CHECK_EQ(mio_registration_deregister(q, r[1]), MIO_ENOENT));
    set_and_see(q, s[1], 23);
    mio_poll_free(q);
    mio_registration_free(r[1]);
    mio_set_readiness_free(s[1]);
}

TEST(registrations)
{
    start();
    CHECK(drive("registrations", run_registrations) > 0);
}

/* ---- timers, the loop and its channel ---- */

struct loop_counts {
    int ready, notified, timeouts;
    mio_fd drain;
};

static void on_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct loop_counts *c = ctx;
    (void)l;
    (void)token;
    (void)readiness;
    c->ready++;
    test_drain(c->drain);
}

static void on_notify(mio_loop *l, void *ctx, void *msg)
{
    (void)l;
    (void)msg;
    ((struct loop_counts *)ctx)->notified++;
}

static void on_timeout(mio_loop *l, void *ctx, void *arg)
{
    (void)l;
    (void)arg;
    ((struct loop_counts *)ctx)->timeouts++;
}

static const mio_handler counting = { on_ready, on_notify, on_timeout, NULL, NULL };

/* Runs l until *count reaches want. */
#define run_until(l, c, count, want) run_until_at(__LINE__, (l), (c), (count), (want))
static void run_until_at(int line, mio_loop *l, struct loop_counts *c, const int *count, int want)
{
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    while (*count < want) {
        if (test_now_ns() >= deadline)
            FAIL("line %d, %s: %d of %d (ready %d, notified %d, timeouts %d)", line, run_name,
                 *count, want, c->ready, c->notified, c->timeouts);
        OK(mio_loop_run_once(l, &counting, c, 10 * MIO_MSEC));
    }
}

static void run_loop(void)
{
    struct loop_counts c = { 0, 0, 0, MIO_INVALID_FD };
    mio_loop_config cfg = { 0 };
    struct test_source s = test_socket_source();
    mio_timer *t = NULL;
    mio_loop *l = NULL;
    mio_sender *a = NULL, *b = NULL;
    mio_timeout h;
    void *arg;

    /* The wheel by itself. */
    ALLOC(mio_timer_new(MIO_MSEC, 64, 16, &t), CHECK(t == NULL));
    OK(mio_timer_set(t, 0, &c, &h));
    CHECK(mio_timer_poll(t, &arg) && arg == &c);
    mio_timer_free(t);

    cfg.backend = test_backend;
    cfg.notify_capacity = 16;
    cfg.timer_capacity = 16;
    cfg.timer_wheel_size = 64;
    cfg.events_capacity = 8;
    c.drain = s.r;
    ALLOC(mio_loop_new(&cfg, &l), CHECK(l == NULL));
    ALLOC(mio_loop_channel(l, &a), {
        CHECK(a == NULL);
        OK(mio_loop_timeout(l, NULL, 0, NULL));
        run_until(l, &c, &c.timeouts, c.timeouts + 1);
    });
    ALLOC(mio_sender_clone(a, &b), {
        CHECK(b == NULL);
        OK(mio_sender_send(a, NULL));
        run_until(l, &c, &c.notified, c.notified + 1);
    });
    ALLOC(mio_register(mio_loop_poll(l), s.r, 1, R), {
        int notified = c.notified, timeouts = c.timeouts;   /* one tick may bring both */
        OK(mio_sender_send(b, NULL));
        OK(mio_loop_timeout(l, NULL, MIO_MSEC, NULL));
        run_until(l, &c, &c.notified, notified + 1);
        run_until(l, &c, &c.timeouts, timeouts + 1);
    });
    test_put(s.w, "x");
    OK(mio_loop_timeout(l, NULL, 2 * MIO_MSEC, NULL));
    OK(mio_sender_send(a, NULL));
    OK(mio_sender_send(b, NULL));
    c.ready = c.notified = c.timeouts = 0;
    run_until(l, &c, &c.ready, 1);
    run_until(l, &c, &c.notified, 2);
    run_until(l, &c, &c.timeouts, 1);
    mio_sender_free(b);
    mio_loop_free(l);
    CHECK_EQ(mio_sender_send(a, NULL), MIO_EPIPE);
    mio_sender_free(a);
    test_close_source(s);
}

TEST(loop_timers_and_channel)
{
    start();
    CHECK(drive("loop", run_loop) > 0);
}

/* ---- sockets ---- */

static mio_fd accept_on(mio_poll *p, mio_fd listener, mio_token token)
{
    mio_fd fd = MIO_INVALID_FD;
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    int err;

    while ((err = mio_tcp_accept(listener, &fd, NULL)) == MIO_EAGAIN) {
        CHECK(test_now_ns() < deadline);
        test_await(p, token, 10 * MIO_MSEC);
    }
    OK(err);
    return fd;
}

/* client and server: a byte each way through p. */
static void exchange(mio_poll *p, mio_fd client, mio_token ct, mio_fd server, mio_token st)
{
    char b;
    test_put(client, "c");
    EXPECT_EVENT(p, st, R, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(server, &b, 1), 1);
    test_put(server, "s");
    EXPECT_EVENT(p, ct, R, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(client, &b, 1), 1);
}

static void run_sockets(void)
{
    mio_poll *p = new_poll();
    mio_addr a;
    mio_fd tl, tc, ts, pr[2], sp[2], dp[2];
#ifndef _WIN32
    mio_fd ul, uc, us;
    char path[512];
#endif
    char b;
    int err;

    OK(mio_addr_parse("127.0.0.1:0", &a));
    OK(mio_tcp_listen(&a, 16, &tl));
    OK(mio_local_addr(tl, &a));
    ALLOC(mio_register(p, tl, 1, R), CHECK_EQ(mio_deregister(p, tl), MIO_ENOENT));
    OK(mio_tcp_connect(&a, &tc));
    ALLOC(mio_register(p, tc, 2, R | W), {
        CHECK_EQ(mio_deregister(p, tc), MIO_ENOENT);
        CHECK(test_await(p, 1, TEST_LONG_WAIT));
    });
    EXPECT_EVENT(p, 2, W, TEST_LONG_WAIT);
    ts = accept_on(p, tl, 1);
    ALLOC(mio_register(p, ts, 3, R), CHECK_EQ(mio_deregister(p, ts), MIO_ENOENT));
    exchange(p, tc, 2, ts, 3);

#ifndef _WIN32
    snprintf(path, sizeof path, "%s/alloc.sock", test_tmp_dir());
    unlink(path);
    OK(mio_unix_listen(path, 16, &ul));
    ALLOC(mio_register(p, ul, 4, R), CHECK_EQ(mio_deregister(p, ul), MIO_ENOENT));
    OK(mio_unix_connect(path, &uc));
    ALLOC(mio_register(p, uc, 5, R), CHECK_EQ(mio_deregister(p, uc), MIO_ENOENT));
    us = accept_on(p, ul, 4);
    ALLOC(mio_register(p, us, 6, R), CHECK_EQ(mio_deregister(p, us), MIO_ENOENT));
    exchange(p, uc, 5, us, 6);
    OK(mio_pipe(pr));
#else
    OK(mio_socketpair(pr));
#endif
    ALLOC(mio_register(p, pr[0], 7, R), CHECK_EQ(mio_deregister(p, pr[0]), MIO_ENOENT));
    test_put(pr[1], "p");
    EXPECT_EVENT(p, 7, R, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(pr[0], &b, 1), 1);
    OK(mio_socketpair(sp));
    ALLOC(mio_register(p, sp[0], 8, R), CHECK_EQ(mio_deregister(p, sp[0]), MIO_ENOENT));
    ALLOC(mio_register(p, sp[1], 9, R), CHECK_EQ(mio_deregister(p, sp[1]), MIO_ENOENT));
    exchange(p, sp[0], 8, sp[1], 9);
    err = mio_dgram_pair(dp);
    if (err != MIO_EAFNOSUPPORT) {      /* Windows has no Unix datagram sockets */
        OK(err);
        ALLOC(mio_register(p, dp[0], 10, R), CHECK_EQ(mio_deregister(p, dp[0]), MIO_ENOENT));
        ALLOC(mio_register(p, dp[1], 11, R), CHECK_EQ(mio_deregister(p, dp[1]), MIO_ENOENT));
        exchange(p, dp[0], 10, dp[1], 11);
        OK(mio_close(dp[0]));
        OK(mio_close(dp[1]));
    }

    /* Closing forgets the registrations. */
    OK(mio_close(tl));
    OK(mio_close(tc));
    OK(mio_close(ts));
#ifndef _WIN32
    OK(mio_close(ul));
    OK(mio_close(uc));
    OK(mio_close(us));
    unlink(path);
#endif
    OK(mio_close(pr[0]));
    OK(mio_close(pr[1]));
    OK(mio_close(sp[0]));
    OK(mio_close(sp[1]));
    mio_poll_free(p);
}

TEST(sockets_and_pipes)
{
    start();
    CHECK(drive("sockets", run_sockets) > 0);
}

/* ---- a group of loops ---- */

static atomic_int adopted, notified, started, stopped;

static void group_notify(mio_loop *l, void *ctx, void *msg)
{
    (void)l;
    (void)ctx;
    (void)msg;
    atomic_fetch_add(&notified, 1);
}

static int group_start(mio_loop *l, void *ctx)
{
    (void)l;
    (void)ctx;
    atomic_fetch_add(&started, 1);
    return 0;
}

static void group_stop(mio_loop *l, void *ctx)
{
    (void)l;
    (void)ctx;
    atomic_fetch_add(&stopped, 1);
}

static void group_adopt(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    (void)l;
    (void)ctx;
    (void)data;
    OK(mio_close(fd));
    atomic_fetch_add(&adopted, 1);
}

static const mio_group_handler group_handler = {
    { NULL, group_notify, NULL, NULL, NULL }, group_start, group_stop, group_adopt
};

static void wait_for(atomic_int *count, int want)
{
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    while (atomic_load(count) < want) {
        CHECK(test_now_ns() < deadline);
        test_sleep_ms(1);
    }
}

static void run_group(void)
{
    mio_group_config cfg;
    mio_group *g = NULL;
    mio_addr a;
    mio_fd client[3];
    int listener = -1, listeners, i;

    mio_group_config_default(&cfg);
    cfg.loops = 2;
    cfg.loop.backend = test_backend;
    cfg.loop.notify_capacity = 16;
    cfg.loop.timer_capacity = 16;
    cfg.loop.timer_wheel_size = 64;
    cfg.loop.events_capacity = 16;
    atomic_store(&adopted, 0);
    atomic_store(&notified, 0);
    atomic_store(&started, 0);
    atomic_store(&stopped, 0);
    ALLOC(mio_group_new(&cfg, &g), CHECK(g == NULL));
    OK(mio_addr_parse("127.0.0.1:0", &a));
    ALLOC(listener = mio_group_listen(g, &a, 16, MIO_GROUP_HANDOFF, NULL), {
        /* No listener came of it: a group without one still runs. */
        CHECK_EQ(mio_group_local_addr(g, 0, &a), MIO_EINVAL);
        OK(mio_group_start(g, &group_handler, NULL));
        OK(mio_group_send(g, 1, NULL));
        wait_for(&notified, 1);
        mio_group_shutdown(g);
        OK(mio_group_join(g));
        atomic_store(&notified, 0);
    });
    CHECK_EQ(listener, 0);
    /* One socket in every loop's poll, and one socket per loop. */
    ALLOC(listener = mio_group_listen(g, &a, 16, MIO_GROUP_EXCLUSIVE, NULL),
          CHECK_EQ(mio_group_local_addr(g, 1, &a), MIO_EINVAL));
    CHECK_EQ(listener, 1);
    listener = mio_group_listen(g, &a, 16, MIO_GROUP_REUSEPORT, NULL);
    if (listener != MIO_ENOSYS && MAY(listener) == MIO_ENOMEM) {  /* ENOSYS: no such mode here */
        CHECK_EQ(mio_group_local_addr(g, 2, &a), MIO_EINVAL);
        listener = mio_group_listen(g, &a, 16, MIO_GROUP_REUSEPORT, NULL);
    }
    CHECK(listener == 2 || listener == MIO_ENOSYS);
    listeners = listener == 2 ? 3 : 2;
    ALLOC(mio_group_start(g, &group_handler, NULL), CHECK_EQ(mio_group_join(g), 0));
    for (i = 0; i < listeners; i++) {
        OK(mio_group_local_addr(g, i, &a));
        OK(mio_tcp_connect(&a, &client[i]));
    }
    wait_for(&adopted, listeners);
    OK(mio_group_send(g, 1, NULL));
    OK(mio_group_send(g, 0, NULL));
    wait_for(&notified, 2);
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    CHECK_EQ(atomic_load(&started), atomic_load(&stopped));
    mio_group_free(g);
    for (i = 0; i < listeners; i++)
        OK(mio_close(client[i]));
}

TEST(group_of_loops)
{
    start();
    CHECK(drive("group", run_group) > 0);
}

/* ---- datagram batches ---- */

enum { DGRAMS = 4, SEGMENT = 100 };
static char rbuf[DGRAMS][65535];

static void run_udp(void)
{
    mio_poll *p = new_poll();
    mio_udp_capabilities caps;
    mio_datagram d[DGRAMS];
    mio_addr a, to;
    mio_fd tx, rx;
    static char payload[3 * SEGMENT - 50];
    size_t want = 0, got = 0;
    int64_t deadline;
    uint32_t options;
    ssize_t n;
    int i;

    OK(mio_addr_parse("127.0.0.1:0", &a));
    OK(mio_udp_bind(&a, &tx));
    OK(mio_udp_bind(&a, &rx));
    OK(mio_local_addr(rx, &to));
    OK(mio_udp_caps(rx, &caps));
    options = caps.available & (MIO_UDP_RECV_ECN | MIO_UDP_RECV_LOCAL | MIO_UDP_GRO);
    if (options != 0)
        ALLOC(mio_udp_enable(rx, options), (void)0);
    ALLOC(mio_register(p, rx, 1, R), CHECK_EQ(mio_deregister(p, rx), MIO_ENOENT));
    memset(d, 0, sizeof d);
    for (i = 0; i < DGRAMS; i++) {
        d[i].buf = payload;
        d[i].len = i == 0 ? sizeof payload : (size_t)(10 + i);
        d[i].segment_size = i == 0 ? SEGMENT : 0;
        d[i].ecn = (uint8_t)(i % 4);
        d[i].peer = to;
        want += d[i].len;
    }
    n = (ssize_t)MAY(mio_udp_send_batch(tx, d, DGRAMS));
    if (n == MIO_ENOMEM) {
        /* Nothing went: the socket still sends, and the same batch again. */
        CHECK_EQ(mio_udp_send_to(tx, "z", 1, &to), 1);
        want++;
        n = mio_udp_send_batch(tx, d, DGRAMS);
    }
    CHECK_EQ(n, DGRAMS);
    deadline = test_now_ns() + TEST_LONG_WAIT;
    while (got < want) {
        CHECK(test_now_ns() < deadline);
        for (i = 0; i < DGRAMS; i++) {
            memset(&d[i], 0, sizeof d[i]);
            d[i].buf = rbuf[i];
            d[i].size = sizeof rbuf[i];
        }
        n = mio_udp_recv_batch(rx, d, DGRAMS);
        if (n == MIO_EAGAIN) {
            test_await(p, 1, 10 * MIO_MSEC);
            continue;
        }
        CHECK(n > 0);
        for (i = 0; i < n; i++)
            got += d[i].len;
    }
    CHECK_EQ(got, want);
    OK(mio_close(tx));
    OK(mio_close(rx));
    mio_poll_free(p);
}

TEST(datagram_batches)
{
    start();
    CHECK(drive("datagrams", run_udp) > 0);
}

#ifndef _WIN32
/* ---- a refused segmentation offload, remembered in memory ----
 * The fault shim fails every send that carries a segment size with EIO.
 * A socket whose offload failed is remembered in a page of bits allocated
 * then: refused, the socket is not remembered, and the next batch tries
 * the offload again and falls back again (no error: there is none to give
 * for a send that went). */

static void send_segments(mio_fd s, const mio_addr *to, mio_fd r, mio_poll *p)
{
    static char data[3000];
    char in[4][2048];
    mio_datagram out, d[4];
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    size_t got = 0;
    int i;

    memset(&out, 0, sizeof out);
    out.buf = data;
    out.len = sizeof data;
    out.segment_size = 1000;
    out.peer = *to;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    while (got < 3) {
        ssize_t n;
        CHECK(test_now_ns() < deadline);
        memset(d, 0, sizeof d);
        for (i = 0; i < 4; i++) {
            d[i].buf = in[i];
            d[i].size = sizeof in[i];
        }
        n = mio_udp_recv_batch(r, d, 4);
        if (n == MIO_EAGAIN) {
            test_await(p, 1, 10 * MIO_MSEC);
            continue;
        }
        CHECK(n > 0);
        for (i = 0; i < n; i++)
            CHECK_EQ(d[i].len, 1000);
        got += (size_t)n;
    }
    CHECK_EQ(got, 3);
}

CHILD_CASE(gso_memory_refused_child)
{
    mio_udp_capabilities caps;
    mio_addr a, to;
    mio_fd s, r;
    mio_poll *p;
    long live, refused;

    start();
    p = test_poll();
    OK(mio_addr_parse("127.0.0.1:0", &a));
    OK(mio_udp_bind(&a, &s));
    OK(mio_udp_bind(&a, &r));
    OK(mio_local_addr(r, &to));
    OK(mio_register(p, r, 1, R));
    OK(mio_udp_caps(s, &caps));
    if (caps.gso_segments != 64)
        SKIP("no segmentation offload");
    live = test_allocations_live();
    refused = test_allocations_refused();
    test_fail_allocation(0);
    send_segments(s, &to, r, p);
    test_fail_allocation(-1);
    CHECK_EQ(test_allocations_refused(), refused + 1);
    CHECK_EQ(test_allocations_live(), live);
    OK(mio_udp_caps(s, &caps));
    CHECK_EQ(caps.gso_segments, 64);        /* not remembered */
    send_segments(s, &to, r, p);            /* tries again, and remembers */
    CHECK_EQ(test_allocations_live(), live + 1);
    OK(mio_udp_caps(s, &caps));
    CHECK_EQ(caps.gso_segments, 1);
    send_segments(s, &to, r, p);            /* without trying */
    OK(mio_close(s));
    OK(mio_close(r));
    mio_poll_free(p);
}

POSIX_TEST(gso_fallback_memory_refused)
{
#ifdef MIO_FAULT_SHIM
    char path[4096], report[512], line[256], preload[4200], err[4096];
    char *argv[] = { path, "gso_memory_refused_child", (char *)test_backend, NULL };
    unsigned long count = 0, faults = 0, c, f;
    const char *self = child_self_path();
    struct child ch;
    FILE *file;
    int status;

    TEST_NOT_ON_LIBKQUEUE("faults injected into its own system calls");
    CHECK(self != NULL);
    snprintf(path, sizeof path, "%s", self);
    snprintf(report, sizeof report, "%s/report", test_tmp_dir());
    CHECK(setenv("MIO_FAULT_CALLS", "sendmmsg:EIO", 1) == 0);
    CHECK(setenv("MIO_FAULT_RATE", "1", 1) == 0);
    CHECK(setenv("MIO_FAULT_GSO", "1", 1) == 0);
    CHECK(setenv("MIO_FAULT_REPORT", report, 1) == 0);
    CHECK(setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1) == 0);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MIO_FAULT_SHIM);
    child_start(&ch, argv, preload, CHILD_STDERR);
    child_read_all(&ch, err, sizeof err);
    status = child_wait(&ch);
    if (status == 77)
        SKIP("no segmentation offload");
    if (status != 0)
        FAIL("the child failed (%d): %s", status, err);
    CHECK((file = fopen(report, "r")) != NULL);
    while (fgets(line, sizeof line, file) != NULL)
        if (sscanf(line, "call sendmmsg %lu faults %lu", &c, &f) == 2) {
            count = c;
            faults = f;
        }
    fclose(file);
    CHECK(count >= 2);
    CHECK_EQ(faults, 2);        /* the first two batches, not the third */
#else
    SKIP("no system-call failure injection here (Linux with glibc only)");
#endif
}
#endif

#ifndef _WIN32

/* ---- signal sources ---- */

static void (*handler_before)(int);

static void caught(int sig)
{
    (void)sig;
}

static void disposition_is_ours(int sig)
{
    struct sigaction now;
    CHECK_EQ(sigaction(sig, NULL, &now), 0);
    CHECK(now.sa_handler == handler_before);
}

/* s reports one delivery of sig through p. */
static void delivers(mio_poll *p, mio_signal *s, mio_token token, int sig)
{
    mio_signal_info info[4];
    int k, seen = 0;
    CHECK(test_await(p, token, TEST_LONG_WAIT));
    k = mio_signal_read(s, info, 4);
    CHECK(k >= 1);
    while (k-- > 0)
        seen |= info[k].signo == sig;
    CHECK(seen);
}

static void run_signals(void)
{
    static const int sigs[] = { SIGUSR1, SIGUSR2 };
    mio_poll *p = new_poll(), *q = new_poll();
    mio_signal *a = NULL, *b = NULL;

    ALLOC(mio_signal_new(p, 1, sigs, 1, &a), {
        CHECK(a == NULL);
        disposition_is_ours(SIGUSR1);
    });
    ALLOC(mio_signal_new(q, 2, sigs, 2, &b), {
        CHECK(b == NULL);
        disposition_is_ours(SIGUSR2);
        CHECK_EQ(raise(SIGUSR1), 0);
        delivers(p, a, 1, SIGUSR1);
    });
    CHECK_EQ(raise(SIGUSR1), 0);
    delivers(p, a, 1, SIGUSR1);
    delivers(q, b, 2, SIGUSR1);
    CHECK_EQ(raise(SIGUSR2), 0);
    delivers(q, b, 2, SIGUSR2);
    mio_signal_free(b);
    disposition_is_ours(SIGUSR2);
    mio_signal_free(a);
    disposition_is_ours(SIGUSR1);
    mio_poll_free(q);
    mio_poll_free(p);
}

POSIX_TEST(signal_sources)
{
    start();
    /* Our own handler first, so that a disposition left changed shows. */
    test_catch_signal(SIGUSR1, caught);
    test_catch_signal(SIGUSR2, caught);
    handler_before = caught;
    CHECK(drive("signals", run_signals) > 0);
}

/* ---- child processes ---- */

static int by_sigchld;   /* the exit comes through a SIGCHLD source */
static void (*sigchld_before)(int);

static void run_process(void)
{
    static const char *const argv[] = { "sh", "-c", "echo hi; exit 3", NULL };
    static const char *const env[] = { "PATH=/nowhere::/usr/bin:/bin", NULL };
    mio_process_options o;
    mio_process *c = NULL;
    mio_exit_status st;
    mio_poll *p = new_poll();
    mio_fd pipes[3];
    char buf[16];
    int64_t deadline;
    int err;

    memset(&o, 0, sizeof o);
    o.argv = argv;               /* "sh": looked up in PATH */
    if (by_sigchld)
        o.env = env;
    o.stdio[0].how = MIO_STDIO_NULL;
    o.stdio[1].how = MIO_STDIO_PIPE;
    ALLOC(mio_process_spawn(&o, pipes, &c), CHECK(c == NULL));
    ALLOC(mio_register(p, pipes[1], 1, R), CHECK_EQ(mio_deregister(p, pipes[1]), MIO_ENOENT));
    ALLOC(mio_process_register(p, c, 2), {
        struct sigaction now;
        CHECK_EQ(mio_process_deregister(p, c), MIO_ENOENT);
        CHECK(mio_process_kill(c, 0) == 0);
        CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
        CHECK(now.sa_handler == sigchld_before);
    });
    deadline = test_now_ns() + TEST_LONG_WAIT;
    while ((err = mio_process_try_wait(c, &st)) == MIO_EAGAIN) {
        CHECK(test_now_ns() < deadline);
        test_await(p, 2, 10 * MIO_MSEC);
    }
    OK(err);
    CHECK_EQ(st.code, 3);
    CHECK_EQ(st.signal, 0);
    /* It wrote before it exited (the waits above took that event). */
    CHECK_EQ(mio_read(pipes[1], buf, sizeof buf), 3);
    CHECK(memcmp(buf, "hi\n", 3) == 0);
    mio_process_free(c);
    OK(mio_close(pipes[1]));
    mio_poll_free(p);
}

POSIX_TEST(child_processes)
{
    struct sigaction now;
    start();
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    sigchld_before = now.sa_handler;
    CHECK(drive("processes", run_process) > 0);
}

/* Where there are no pidfds and no EVFILT_PROC. */
extern int mio__process_force_sigchld;

POSIX_TEST(child_processes_by_sigchld)
{
    struct sigaction now;
    start();
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    sigchld_before = now.sa_handler;
    mio__process_force_sigchld = 1;
    by_sigchld = 1;
    CHECK(drive("processes by SIGCHLD", run_process) > 0);
    mio__process_force_sigchld = 0;
}

#endif
