/* The poll object as a user reads it in mio.h: creating one and the
 * arguments it refuses, waits and their timeouts, more ready than the caller
 * has room for, one waiter at a time (the busy flag), signals cutting a
 * wait, the allocator, and the descriptors a poll opens.  Every check goes
 * through the public API, so each backend must pass it as written.  Signals
 * and descriptor limits are POSIX_TESTs: Windows has none of them. */
#include "harness.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif

/* ---- creating a poll, and arguments ---- */

TEST(poll_new_arguments)
{
    mio_poll *p = (mio_poll *)&p, *q;
    const char *best;

    CHECK_EQ(mio_poll_new(NULL), MIO_EINVAL);
    CHECK_EQ(mio_poll_new_backend(test_backend, NULL), MIO_EINVAL);
    CHECK_EQ(mio_poll_new_backend(NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_poll_new_backend("nonesuch", &p), MIO_ENOSYS);
    CHECK_EQ(mio_poll_new_backend("", &p), MIO_ENOSYS);
    CHECK_EQ(mio_poll_new_backend("EPOLL ", &p), MIO_ENOSYS);
    /* The best backend is one of the names, and is what NULL picks. */
    OK(mio_poll_new(&p));
    CHECK(p != NULL);
    best = mio_poll_backend(p);
    CHECK(best != NULL);
    OK(mio_poll_new_backend(NULL, &q));
    CHECK(strcmp(mio_poll_backend(q), best) == 0);
    mio_poll_free(q);
    OK(mio_poll_new_backend(best, &q));
    CHECK(strcmp(mio_poll_backend(q), best) == 0);
    mio_poll_free(q);
    mio_poll_free(p);
    /* This run's backend names itself. */
    p = test_poll();
    CHECK(strcmp(mio_poll_backend(p), test_backend) == 0);
    mio_poll_free(p);
}

/* ---- MIO_BACKEND ---- */

static char env_log[4096];

static void env_collect(int level, const char *msg, void *ud)
{
    size_t n = strlen(env_log);
    (void)ud;
    snprintf(env_log + n, sizeof env_log - n, "%d %s\n", level, msg);
}

/* MIO_BACKEND (any case) picks the backend of everything made without a
 * name: mio_poll_new, NULL for mio_poll_new_backend, a loop and a group's
 * loops; an explicit name is unaffected. */
TEST(env_backend_selects_the_default)
{
    char upper[16];
    mio_loop *l;
    mio_group *g;
    mio_group_config gc;
    mio_poll *p, *q;
    size_t i;

    for (i = 0; test_backend[i] != '\0' && i + 1 < sizeof upper; i++)
        upper[i] = (char)(i % 2 == 0 && test_backend[i] >= 'a' && test_backend[i] <= 'z'
                              ? test_backend[i] - 'a' + 'A' : test_backend[i]);
    upper[i] = '\0';
    test_setenv("MIO_BACKEND", upper);
    if (mio_poll_new(&p) == MIO_ENOSYS)
        SKIP("backend %s not available here", test_backend);
    CHECK_EQ(strcmp(mio_poll_backend(p), test_backend), 0);
    OK(mio_poll_new_backend(NULL, &q));
    CHECK_EQ(strcmp(mio_poll_backend(q), test_backend), 0);
    mio_poll_free(q);
    mio_poll_free(p);
    OK(mio_loop_new(NULL, &l));
    CHECK_EQ(strcmp(mio_poll_backend(mio_loop_poll(l)), test_backend), 0);
    mio_loop_free(l);
    mio_group_config_default(&gc);
    gc.loops = 2;
    OK(mio_group_new(&gc, &g));
    for (i = 0; i < 2; i++)
        CHECK_EQ(strcmp(mio_poll_backend(mio_loop_poll(mio_group_loop(g, i))), test_backend), 0);
    mio_group_free(g);
    /* A name given by the program wins. */
    test_setenv("MIO_BACKEND", strcmp(test_backend, "poll") == 0 ? "nonesuch" : "poll");
    p = test_poll();
    mio_poll_free(p);
    /* Empty is unset. */
    test_setenv("MIO_BACKEND", "");
    OK(mio_poll_new(&p));
    OK(mio_poll_new_backend(NULL, &q));
    CHECK_EQ(strcmp(mio_poll_backend(p), mio_poll_backend(q)), 0);
    mio_poll_free(q);
    mio_poll_free(p);
}

/* A MIO_BACKEND that gives no backend fails whatever takes the default,
 * MIO_ENOSYS as for the same name given to mio_poll_new_backend, and says
 * at error level which backends this build has; it never falls back. */
TEST(env_backend_unknown_is_refused)
{
    static const char *const bad[] = { "nonesuch", "epol", " poll", "iocp", "kqueue" };
    mio_poll *p = (mio_poll *)&p;
    mio_loop *l = (mio_loop *)&l;
    mio_group *g = (mio_group *)&g;
    mio_group_config gc;
    char expect[128], best[16];
    size_t i;

    OK(mio_poll_new(&p));
    snprintf(best, sizeof best, "%s", mio_poll_backend(p));
    mio_poll_free(p);
    mio_set_log(env_collect, NULL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mio_poll *probe;
        /* The BSD and Windows names where this build has them. */
        if (mio_poll_new_backend(bad[i], &probe) == 0) {
            mio_poll_free(probe);
            continue;
        }
        env_log[0] = '\0';
        test_setenv("MIO_BACKEND", bad[i]);
        CHECK_EQ(mio_poll_new(&p), MIO_ENOSYS);
        CHECK(p == NULL);
        snprintf(expect, sizeof expect, "%d MIO_BACKEND=%s: ", MIO_LOG_ERROR, bad[i]);
        CHECK(strstr(env_log, expect) == env_log);
        CHECK(strstr(env_log, i == 3 || i == 4 ? ": not available in this build or on this OS;"
                                               : ": no backend has this name;") != NULL);
        snprintf(expect, sizeof expect, "this build has: %s", best);
        CHECK(strstr(env_log, expect) != NULL);
        CHECK(strstr(env_log, test_backend) != NULL || strcmp(test_backend, "kqueue") == 0);
        CHECK_EQ(mio_poll_new_backend(NULL, &p), MIO_ENOSYS);
        CHECK_EQ(mio_loop_new(NULL, &l), MIO_ENOSYS);
        CHECK(l == NULL);
        mio_group_config_default(&gc);
        gc.loops = 1;
        CHECK_EQ(mio_group_new(&gc, &g), MIO_ENOSYS);
        CHECK(g == NULL);
    }
    /* An explicit name that gives none is only traced, at warn level. */
    test_setenv("MIO_BACKEND", NULL);
    env_log[0] = '\0';
    CHECK_EQ(mio_poll_new_backend("nonesuch", &p), MIO_ENOSYS);
    snprintf(expect, sizeof expect, "%d backend \"nonesuch\": no backend has this name;",
             MIO_LOG_WARN);
    CHECK(strstr(env_log, expect) == env_log);
    mio_set_log(NULL, NULL);
}

TEST(wait_rejects_bad_arguments)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_event ev[8];

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    test_put(s.w, "x");
    CHECK_EQ(mio_poll_wait(NULL, ev, 8, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, NULL, 8, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, ev, 0, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, NULL, 0, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, ev, 0, -1), MIO_EINVAL);
    /* The refused calls took nothing and left no busy flag behind. */
    EXPECT_EVENT(p, 1, MIO_READABLE, 0);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(strerror_never_null)
{
    static const int codes[] = {
        0, MIO_EAGAIN, MIO_EINTR, MIO_EINVAL, MIO_EEXIST, MIO_ENOENT, MIO_EBADF,
        MIO_ENOMEM, MIO_EBUSY, MIO_EPIPE, MIO_ECONNREFUSED, MIO_ECONNRESET,
        MIO_EADDRINUSE, MIO_ENAMETOOLONG, MIO_EMFILE, MIO_ENOSYS, MIO_ETIMEDOUT,
        MIO_ENOTCONN, MIO_ENOSPC, MIO_EDEADLK,
    };
    static const int garbage[] = { 1, 12345, -99999, -4095, INT_MIN, INT_MAX, -1000000 };
    size_t i, k;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = mio_strerror(codes[i]);
        CHECK(s != NULL);
        CHECK(s[0] != '\0');
        if (codes[i] == 0)
            continue;
        CHECK(codes[i] < 0);
        /* Each named code has its own text. */
        for (k = 1; k < i; k++)
            CHECK(strcmp(s, mio_strerror(codes[k])) != 0);
    }
    for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        const char *s = mio_strerror(garbage[i]);
        CHECK(s != NULL);
        CHECK(s[0] != '\0');
    }
}

TEST(version_string_matches_macros)
{
    char want[64];
    const char *v = mio_version_string();
    CHECK(v != NULL);
    snprintf(want, sizeof want, "%d.%d.%d", MIO_VERSION_MAJOR, MIO_VERSION_MINOR,
             MIO_VERSION_PATCH);
    CHECK(strcmp(v, want) == 0);
}

/* The poll never owns the caller's descriptors. */
TEST(poll_free_leaves_sources_open)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    char c;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    OK(mio_register(p, s.w, 2, MIO_WRITABLE | MIO_LEVEL));
    mio_poll_free(p);
    test_put(s.w, "x");
    CHECK_EQ(mio_read(s.r, &c, 1), 1);
    CHECK_EQ(c, 'x');
    /* And a new poll takes them as never registered. */
    p = test_poll();
    OK(mio_register(p, s.r, 3, MIO_READABLE));
    test_put(s.w, "y");
    EXPECT_EVENT(p, 3, MIO_READABLE, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- timeouts ---- */

TEST(timeout_zero_returns_at_once)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_event ev[8];
    int64_t start;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    start = test_now_ns();
    CHECK_EQ(test_wait(p, ev, 8, 0), 0);
    CHECK(test_now_ns() - start < 500 * MIO_MSEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* Each timeout, `times` times over, on a poll with or without a
 * registration: no wait returns before its time (a backend that counts in
 * milliseconds must round up, never down). */
static void never_early(const int64_t *timeouts, size_t n, int times, bool registered)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    size_t i;
    int k;

    if (registered)
        OK(mio_register(p, s.r, 1, MIO_READABLE));
    for (i = 0; i < n; i++)
        for (k = 0; k < times; k++)
            EXPECT_QUIET(p, timeouts[i]);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(timeout_sub_millisecond_never_early)
{
    static const int64_t ns[] = { 1, 300 * MIO_USEC };
    never_early(ns, sizeof ns / sizeof ns[0], 5, false);
}

TEST(timeout_milliseconds_never_early)
{
    static const int64_t ns[] = { MIO_MSEC, 1500 * MIO_USEC, 5 * MIO_MSEC, 20 * MIO_MSEC,
                                  20 * MIO_MSEC + 1 };
    never_early(ns, sizeof ns / sizeof ns[0], 3, true);
}

struct writer {
    mio_fd fd;
    int delay_ms;
};

static void *write_later(void *arg)
{
    struct writer *w = arg;
    test_sleep_ms(w->delay_ms);
    test_put(w->fd, "x");
    return NULL;
}

/* Blocks (timeout_ns) until a thread writes after 50 ms. */
static void wait_for_late_write(int64_t timeout_ns)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    struct writer w = { s.w, 50 };
    mio_event ev[8];
    pthread_t t;
    int n;

    OK(mio_register(p, s.r, 9, MIO_READABLE));
    CHECK_EQ(pthread_create(&t, NULL, write_later, &w), 0);
    n = test_wait(p, ev, 8, timeout_ns);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(test_flags(ev, n, 9) & MIO_READABLE);
    CHECK_EQ(test_drain(s.r), 1);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(timeout_negative_blocks_until_event)
{
    wait_for_late_write(-1);
}

TEST(timeout_huge_blocks_until_event)
{
    wait_for_late_write(INT64_MAX);
}

/* ---- more ready than the caller has room for ---- */

enum { MANY = 100, CAP = 7 };

static void make_ready_many(mio_poll *p, struct test_source *s, uint32_t trigger)
{
    int i;
    for (i = 0; i < MANY; i++) {
        s[i] = test_socket_source();
        test_put(s[i].w, "x");
        OK(mio_register(p, s[i].r, (mio_token)i, MIO_READABLE | trigger));
    }
    test_settle();
}

/* Edge events beyond the capacity wait for later calls, once each: they are
 * neither lost nor repeated. */
TEST(capacity_smaller_than_ready_set_edge)
{
    mio_poll *p = test_poll();
    struct test_source s[MANY];
    int seen[MANY];
    int round, i, total;

    make_ready_many(p, s, MIO_EDGE);
    for (round = 0; round < 2; round++) {
        memset(seen, 0, sizeof seen);
        for (total = 0; total < MANY;) {
            mio_event ev[CAP];
            int want = MANY - total < CAP ? MANY - total : CAP;
            int n = test_wait(p, ev, CAP, MIO_SEC);
            /* Exactly capacity while more are ready, the rest after. */
#ifdef _WIN32
            /* Re-armed sockets are polled again asynchronously there: a
             * batch holds what has arrived, never more than the room. */
            CHECK(n >= 1 && n <= want);
#else
            CHECK_EQ(n, want);
#endif
            for (i = 0; i < n; i++) {
                CHECK(ev[i].token < MANY);
                CHECK(ev[i].flags & MIO_READABLE);
                CHECK_EQ(++seen[ev[i].token], 1);
            }
            total += n;
        }
        /* Each rise was reported once: nothing more until re-armed. */
        EXPECT_QUIET(p, TEST_QUIET_WAIT);
        for (i = 0; i < MANY; i++) {
            CHECK_EQ(test_drain(s[i].r), 1);
            test_put(s[i].w, "y");
        }
        test_settle();
    }
    for (i = 0; i < MANY; i++)
        test_close_source(s[i]);
    mio_poll_free(p);
}

/* Level registrations that stay ready take turns: a full batch every wait,
 * and every token comes round. */
TEST(capacity_smaller_than_ready_set_level)
{
    mio_poll *p = test_poll();
    struct test_source s[MANY];
    int seen[MANY] = { 0 };
    int waits, i, missing = MANY;

    make_ready_many(p, s, MIO_LEVEL);
    /* Nobody drains, everyone stays ready: every token still comes round. */
    for (waits = 0; waits < (MANY + CAP - 1) / CAP + 1 && missing > 0; waits++) {
        mio_event ev[CAP];
        int n = test_wait(p, ev, CAP, MIO_SEC);
        CHECK_EQ(n, CAP);
        for (i = 0; i < n; i++) {
            CHECK(ev[i].token < MANY);
            if (seen[ev[i].token]++ == 0)
                missing--;
        }
    }
    CHECK_EQ(missing, 0);
    for (i = 0; i < MANY; i++)
        test_close_source(s[i]);
    mio_poll_free(p);
}

TEST(capacity_one)
{
    mio_poll *p = test_poll();
    struct test_source s[3];
    mio_event ev[1];
    int seen[3] = { 0 };
    int i;

    for (i = 0; i < 3; i++) {
        s[i] = test_socket_source();
        test_put(s[i].w, "x");
        OK(mio_register(p, s[i].r, (mio_token)i, MIO_READABLE));
    }
    for (i = 0; i < 3; i++) {
        CHECK_EQ(test_wait(p, ev, 1, MIO_SEC), 1);
        CHECK(ev[0].token < 3);
        CHECK_EQ(++seen[ev[0].token], 1);
    }
    EXPECT_QUIET(p, TEST_QUIET_WAIT);
    for (i = 0; i < 3; i++)
        test_close_source(s[i]);
    mio_poll_free(p);
}

/* ---- one waiter at a time ---- */

struct waiter {
    mio_poll *p;
    atomic_int entering;
    int result;
    uint32_t flags;
};

static void *wait_blocking(void *arg)
{
    struct waiter *w = arg;
    mio_event ev[8];
    int n;

    atomic_store(&w->entering, 1);
    /* The main thread's probes may win the flag for a moment: retry. */
    while ((n = mio_poll_wait(w->p, ev, 8, -1)) == MIO_EBUSY)
        ;
    w->result = n;
    w->flags = n > 0 ? test_flags(ev, n, 77) : 0;
    return NULL;
}

TEST(concurrent_wait_is_ebusy)
{
    struct waiter w = { 0 };
    mio_waker *wk;
    mio_event ev[8];
    pthread_t t;
    int i, r = 0;

    w.p = test_poll();
    OK(mio_waker_new(w.p, 77, &wk));
    CHECK_EQ(pthread_create(&t, NULL, wait_blocking, &w), 0);
    while (!atomic_load(&w.entering))
        test_sleep_ms(1);
    for (i = 0; i < 2000; i++) {
        test_sleep_ms(1);
        r = mio_poll_wait(w.p, ev, 8, 0);
        if (r == MIO_EBUSY)
            break;
        CHECK_EQ(r, 0);
    }
    CHECK_EQ(r, MIO_EBUSY);
    OK(mio_waker_wake(wk));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.result >= 1);
    CHECK(w.flags & MIO_READABLE);
    /* The blocked waiter is gone: waiting is free again. */
    CHECK_EQ(mio_poll_wait(w.p, ev, 8, 0), 0);
    mio_waker_free(wk);
    mio_poll_free(w.p);
}

/* ---- signals, which Windows lacks ---- */

#ifndef _WIN32
/* A signal (no SA_RESTART) cuts the wait short with MIO_EINTR, and the cut
 * wait leaves the poll free for the next. */
static void signal_interrupts(int64_t timeout_ns)
{
    struct test_signaller s;
    mio_poll *p = test_poll();
    mio_event ev[8];
    int r;

    test_watchdog(20);
    test_signals_start(&s, SIGUSR1);
    r = mio_poll_wait(p, ev, 8, timeout_ns);
    test_signals_stop(&s);
    CHECK_EQ(r, MIO_EINTR);
    CHECK(mio_poll_wait(p, ev, 8, 0) >= 0);
    mio_poll_free(p);
}

POSIX_TEST(signal_interrupts_blocking_wait)
{
    signal_interrupts(-1);
}

POSIX_TEST(signal_interrupts_timed_wait)
{
    signal_interrupts(10 * MIO_SEC);
}
#endif

/* ---- allocation ---- */

TEST(no_allocation_while_waiting)
{
    mio_poll *p;
    struct test_source a, b;
    mio_waker *w;
    long before;
    int round;

    test_count_allocations();           /* before any other call */
    p = test_poll();
    a = test_socket_source();
#ifdef _WIN32
    b = test_socket_source();           /* no pipes there */
#else
    b = test_pipe_source();
#endif
    OK(mio_register(p, a.r, 1, MIO_READABLE));
    OK(mio_register(p, b.r, 2, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(p, a.w, 3, MIO_WRITABLE | MIO_LEVEL));
    OK(mio_waker_new(p, 4, &w));
    before = test_allocations();
    for (round = 0; round < 10000; round++) {
        mio_event ev[8];
        char buf[8];
        int n;
        test_put(a.w, "x");
        test_put(b.w, "y");
        if (round % 3 == 0)
            OK(mio_waker_wake(w));
        n = test_wait(p, ev, 8, MIO_SEC);
        CHECK(test_flags(ev, n, 1) & MIO_READABLE);
        CHECK(test_flags(ev, n, 2) & MIO_READABLE);
        CHECK(test_flags(ev, n, 3) & MIO_WRITABLE);
        CHECK_EQ(mio_read(a.r, buf, sizeof buf), 1);
        CHECK_EQ(mio_read(a.r, buf, sizeof buf), MIO_EAGAIN);
        CHECK_EQ(mio_read(b.r, buf, sizeof buf), 1);
        CHECK_EQ(mio_read(b.r, buf, sizeof buf), MIO_EAGAIN);
    }
    CHECK_EQ(test_allocations() - before, 0);
    mio_waker_free(w);
    test_close_source(a);
    test_close_source(b);
    mio_poll_free(p);
    CHECK_EQ(test_allocations(), test_frees());
}

/* Every allocation failing in turn: each failure is MIO_ENOMEM, and leaves
 * no memory and no descriptor behind. */
TEST(failing_allocator_is_enomem_and_leaks_nothing)
{
    mio_poll *p;
    mio_waker *w;
    long k;
    int fds, err;

    test_count_allocations();
    p = test_poll();                    /* skips if the backend is missing */
    mio_poll_free(p);
    fds = test_open_fds();

    /* Nothing at all. */
    test_fail_allocations_after(0);
    p = (mio_poll *)&p;
    CHECK_EQ(mio_poll_new_backend(test_backend, &p), MIO_ENOMEM);
    CHECK(p == NULL);
    CHECK_EQ(test_open_fds(), fds);
    CHECK_EQ(test_allocations(), test_frees());

    for (k = 0;; k++) {
        CHECK(k < 100);
        test_fail_allocations_after(k);
        err = mio_poll_new_backend(test_backend, &p);
        if (err == 0) {
            err = mio_waker_new(p, 1, &w);
            if (err == 0)
                mio_waker_free(w);
            mio_poll_free(p);
        }
        test_fail_allocations_after(-1);
        CHECK_EQ(test_open_fds(), fds);
        CHECK_EQ(test_allocations(), test_frees());
        if (err == 0)
            break;
        CHECK_EQ(err, MIO_ENOMEM);
    }
}

TEST(set_allocator_needs_all_or_none)
{
    mio_poll *p;
    long before;

    CHECK_EQ(mio_set_allocator(malloc, NULL, NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(NULL, realloc, calloc, free), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(malloc, realloc, NULL, free), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(malloc, realloc, calloc, NULL), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(NULL, NULL, NULL, free), MIO_EINVAL);
    /* The refused calls changed nothing: the counting allocator stays. */
    test_count_allocations();
    CHECK_EQ(mio_set_allocator(malloc, NULL, calloc, free), MIO_EINVAL);
    p = test_poll();
    CHECK(test_allocations() > 0);
    mio_poll_free(p);
    CHECK_EQ(test_allocations(), test_frees());
    /* All NULL restores the C library's. */
    OK(mio_set_allocator(NULL, NULL, NULL, NULL));
    before = test_allocations();
    p = test_poll();
    mio_poll_free(p);
    CHECK_EQ(test_allocations(), before);
}

/* ---- descriptors ---- */

TEST(create_free_cycles_leak_no_fd)
{
    mio_poll *p = test_poll();
    int fds, i;

    mio_poll_free(p);
    fds = test_open_fds();
    for (i = 0; i < 2000; i++) {
        mio_waker *a, *b;
        OK(mio_poll_new_backend(test_backend, &p));
        OK(mio_waker_new(p, 1, &a));
        OK(mio_waker_new(p, 2, &b));
        if (i % 2 == 0) {
            mio_waker_free(a);
            mio_poll_free(p);
            mio_waker_free(b);      /* a waker may outlive its poll */
        } else {
            mio_waker_free(b);
            mio_waker_free(a);
            mio_poll_free(p);
        }
    }
    CHECK_EQ(test_open_fds(), fds);
}

#ifdef _WIN32
/* The handles open now; returns how many.  No public call lists them, but
 * every open handle answers GetHandleInformation, and handle values are
 * multiples of 4, low in a process this small. */
static int list_fds(mio_fd *out, int max)
{
    uintptr_t h;
    DWORD flags;
    int n = 0;
    for (h = 4; h < 0x10000; h += 4) {
        if (GetHandleInformation((HANDLE)h, &flags)) {
            CHECK(n < max);
            out[n++] = (mio_fd)h;
        }
    }
    return n;
}
#else
/* The descriptors open now; returns how many. */
static int list_fds(mio_fd *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0, self;
    CHECK(d != NULL);
    self = dirfd(d);
    while ((e = readdir(d)) != NULL) {
        int fd;
        if (e->d_name[0] == '.')
            continue;
        fd = atoi(e->d_name);
        if (fd != self) {
            CHECK(n < max);
            out[n++] = fd;
        }
    }
    closedir(d);
    return n;
}
#endif

static int listed(const mio_fd *fds, int n, mio_fd fd)
{
    int i;
    for (i = 0; i < n; i++)
        if (fds[i] == fd)
            return 1;
    return 0;
}

/* What a poll, a waker and a registration open is close-on-exec (on
 * Windows: not inheritable) and non-blocking.  The Windows ones are a
 * completion port and AFD handles, which are never read or written, so
 * blocking means nothing for them. */
TEST(created_fds_are_cloexec_and_nonblocking)
{
    static mio_fd before[4096], after[4096];
    mio_poll *p, *first = NULL;
    mio_waker *w;
    struct test_source s;
    int nb, na, i, created = 0;

    /* libkqueue's first kqueue opens descriptors for the whole process, not
     * all of them close-on-exec: they are not the library's, so they are
     * made before the count. */
    if (test_on_libkqueue())
        first = test_poll();
    s = test_socket_source();           /* some churn first, so numbers are not trivial */
    test_close_source(s);
    nb = list_fds(before, 4096);
    p = test_poll();
    OK(mio_waker_new(p, 1, &w));
    s = test_socket_source();
    OK(mio_register(p, s.r, 2, MIO_READABLE));
    na = list_fds(after, 4096);
    for (i = 0; i < na; i++) {
        mio_fd fd = after[i];
        if (listed(before, nb, fd) || fd == s.r || fd == s.w)
            continue;
        created++;
        CHECK(!test_inheritable(fd));
#ifndef _WIN32
        /* Behind each kqueue libkqueue keeps an epoll and eventfds of its
         * own, blocking, which only it reads. */
        if (!test_on_libkqueue())
            CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
#endif
    }
    CHECK(created >= 1);
    mio_waker_free(w);
    test_close_source(s);
    mio_poll_free(p);
    mio_poll_free(first);
}

/* ---- descriptor limits, which Windows lacks ---- */

#ifndef _WIN32
/* Out of descriptors at every step of building a poll and a waker: each
 * failure is MIO_EMFILE and leaves nothing open behind. */
POSIX_TEST(descriptor_exhaustion_is_emfile_and_leaks_nothing)
{
    mio_poll *p = test_poll();
    int fds, left, failures = 0, done = 0;

    mio_poll_free(p);
    fds = test_open_fds();
    for (left = 0; left < 16 && !done; left++) {
        mio_waker *w;
        int err;
        test_fds_exhaust(16, left);
        err = mio_poll_new_backend(test_backend, &p);
        if (err == 0) {
            err = mio_waker_new(p, 1, &w);
            if (err == 0) {
                mio_waker_free(w);
                done = 1;
            }
            mio_poll_free(p);
        }
        test_fds_restore();
        if (err != 0) {
            /* libkqueue says EBADF when it cannot open its own descriptors. */
            if (!test_on_libkqueue() || err != MIO_EBADF)
                CHECK_EQ(err, MIO_EMFILE);
            failures++;
        }
        CHECK_EQ(test_open_fds(), fds);
    }
    CHECK(done);
    CHECK(failures >= 1);
}
#endif
