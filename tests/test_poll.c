/* The Poll contract as a user reads it in mio.h: timeouts, edge, level and
 * oneshot on sockets and pipes, reregister and deregister, every refused
 * argument, capacity smaller than the ready set, the busy flag, signals, the
 * allocator, descriptor hygiene and tracing.  Every check goes through the
 * public API, so each backend must pass it as written.  Pipes, signals and
 * descriptor limits are POSIX_TESTs: Windows has none of them. */
#include "harness.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#ifndef _WIN32
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

/* No SIGPIPE to keep away where the flag is missing (Windows). */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Reads until MIO_EAGAIN, as a user does after an event; returns the bytes. */
static size_t drain(mio_fd fd)
{
    char buf[4096];
    size_t total = 0;
    ssize_t r;
    while ((r = mio_read(fd, buf, sizeof buf)) > 0)
        total += (size_t)r;
    CHECK_EQ(r, MIO_EAGAIN);
    return total;
}

/* Writes until MIO_EAGAIN: the write side is then not ready. */
static void fill(mio_fd fd)
{
    static const char block[4096];
    ssize_t r;
    while ((r = mio_write(fd, block, sizeof block)) > 0)
        ;
    CHECK_EQ(r, MIO_EAGAIN);
}

static void put(mio_fd fd, const char *s)
{
    CHECK_EQ(mio_write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* A socketpair or (off Windows) a pipe: r is read from, w written to. */
struct source { mio_fd r, w; };

static struct source new_socket(void)
{
    mio_fd sv[2];
    struct source s;
    OK(mio_socketpair(sv));
    s.r = sv[0];
    s.w = sv[1];
    return s;
}

static void close_source(struct source s)
{
    OK(mio_close(s.r));
    OK(mio_close(s.w));
}

/* ---- locks taken, per thread ----
 * The test programs link the library statically, so this definition of
 * pthread_mutex_lock is the one the library calls: it notes each mutex a
 * thread locks, then locks it with the C library's (not under TSan, which
 * has its own). */
#if !defined(_WIN32) && !defined(__SANITIZE_THREAD__)
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NO_LOCK_TRACE 1
#endif
#endif
static _Thread_local const void *locked[64];
static _Thread_local int nlocked;
#ifndef NO_LOCK_TRACE
#include <dlfcn.h>
#include <malloc.h>
#define LOCK_TRACE 1

int pthread_mutex_lock(pthread_mutex_t *m)
{
    static int (*real)(pthread_mutex_t *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    if (nlocked < 64)
        locked[nlocked] = m;
    nlocked++;
    return real(m);
}
#endif
#endif

/* ---- timeouts ---- */

TEST(timeout_zero_returns_at_once)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int64_t start;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    start = test_now_ns();
    CHECK_EQ(test_wait(p, ev, 8, 0), 0);
    CHECK(test_now_ns() - start < 500 * MIO_MSEC);
    close_source(s);
    mio_poll_free(p);
}

TEST(timeout_sub_millisecond_never_early)
{
    mio_poll *p = test_poll();
    mio_event ev[8];
    int i;

    for (i = 0; i < 5; i++) {
        int64_t start = test_now_ns();
        CHECK_EQ(test_wait(p, ev, 8, 300 * MIO_USEC), 0);
        CHECK(test_now_ns() - start >= 300 * MIO_USEC);
    }
    mio_poll_free(p);
}

TEST(timeout_milliseconds_never_early)
{
    static const int ms[] = { 1, 5, 20 };
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    size_t i;
    int k;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    for (i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        for (k = 0; k < 3; k++) {
            int64_t start = test_now_ns();
            CHECK_EQ(test_wait(p, ev, 8, ms[i] * MIO_MSEC), 0);
            CHECK(test_now_ns() - start >= ms[i] * MIO_MSEC);
        }
    }
    close_source(s);
    mio_poll_free(p);
}

struct writer {
    mio_fd fd;
    int delay_ms;
};

static void *write_later(void *arg)
{
    struct writer *w = arg;
    test_sleep_ms(w->delay_ms);
    put(w->fd, "x");
    return NULL;
}

/* Blocks (timeout_ns) until a thread writes after 50 ms. */
static void wait_for_late_write(int64_t timeout_ns)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    struct writer w = { s.w, 50 };
    mio_event ev[8];
    pthread_t t;
    int n;

    OK(mio_register(p, s.r, 9, MIO_READABLE));
    CHECK_EQ(pthread_create(&t, NULL, write_later, &w), 0);
    n = test_wait(p, ev, 8, timeout_ns);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(test_flags(ev, n, 9) & MIO_READABLE);
    CHECK_EQ(drain(s.r), 1);
    close_source(s);
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

struct churn {
    mio_poll *p;
    mio_fd fd;
};

static void *churn_registrations(void *arg)
{
    struct churn *c = arg;
    mio_waker *w;
    test_sleep_ms(10);
    OK(mio_register(c->p, c->fd, 3, MIO_READABLE));
    test_sleep_ms(10);
    OK(mio_waker_new(c->p, 4, &w));
    test_sleep_ms(10);
    mio_waker_free(w);
    OK(mio_deregister(c->p, c->fd));
    return NULL;
}

/* Internal wake-ups (another thread changing registrations) are not events
 * and do not cut the caller's timeout short. */
TEST(timeout_not_shortened_by_registration_changes)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    struct churn c = { p, s.r };
    mio_event ev[8];
    pthread_t t;
    int64_t start;

    CHECK_EQ(pthread_create(&t, NULL, churn_registrations, &c), 0);
    start = test_now_ns();
    CHECK_EQ(test_wait(p, ev, 8, 100 * MIO_MSEC), 0);
    CHECK(test_now_ns() - start >= 100 * MIO_MSEC);
    CHECK_EQ(pthread_join(t, NULL), 0);
    close_source(s);
    mio_poll_free(p);
}

/* ---- edge ---- */

static void edge_once_per_rise(struct source s)
{
    mio_poll *p = test_poll();

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK_EQ(test_wait_token(p, 1, 0), 0);
    put(s.w, "a");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    /* Still ready, not drained: no new rise, no event. */
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    CHECK_EQ(drain(s.r), 1);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    /* Drained to MIO_EAGAIN, new data: a new rise. */
    put(s.w, "bc");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    CHECK_EQ(drain(s.r), 2);
    close_source(s);
    mio_poll_free(p);
}

TEST(edge_socket_reports_once_per_rise)
{
    edge_once_per_rise(new_socket());
}

/* A socket's write side: writable once, then again only after it was full
 * (MIO_EAGAIN) and the peer made room. */
TEST(edge_writable_reports_once_per_rise)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();

    OK(mio_register(p, s.w, 2, MIO_WRITABLE));
    CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    CHECK_EQ(test_wait_token(p, 2, 20 * MIO_MSEC), 0);
    fill(s.w);
    CHECK_EQ(test_wait_token(p, 2, 20 * MIO_MSEC), 0);
    CHECK(drain(s.r) > 0);
    CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    CHECK_EQ(test_wait_token(p, 2, 20 * MIO_MSEC), 0);
    close_source(s);
    mio_poll_free(p);
}

/* A short write drains the write side as MIO_EAGAIN does: once the peer
 * makes room, WRITABLE comes again, with no call in between that says
 * MIO_EAGAIN (mio.h: "keep the rest for the next WRITABLE"). */
TEST(edge_short_write_reports_writable_again)
{
    enum { BIG = 4 << 20 };
    mio_poll *p = test_poll();
    struct source s = new_socket();
    char *big = calloc(1, BIG);
    ssize_t n;

    CHECK(big != NULL);
    OK(mio_register(p, s.w, 2, MIO_WRITABLE));
    CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    n = mio_write(s.w, big, BIG);
    CHECK(n > 0 && n < BIG);
    CHECK(drain(s.r) >= (size_t)n);
    CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    free(big);
    close_source(s);
    mio_poll_free(p);
}

/* A short read of a stream drains it too: the next arrival is a new event
 * without a read that says MIO_EAGAIN. */
static void edge_short_read_is_drained(struct source s)
{
    mio_poll *p = test_poll();
    char buf[64];
    int round;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    for (round = 0; round < 3; round++) {
        put(s.w, "abc");
        CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
        CHECK_EQ(mio_read(s.r, buf, sizeof buf), 3);
    }
    close_source(s);
    mio_poll_free(p);
}

TEST(edge_short_read_counts_as_drained)
{
    edge_short_read_is_drained(new_socket());
}

/* Both directions on one registration: both reported (perhaps in two events
 * of the batch), each once per rise. */
TEST(edge_read_and_write_on_one_registration)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    uint32_t f;

    OK(mio_register(p, s.r, 5, MIO_READABLE | MIO_WRITABLE));
    CHECK(test_wait_token(p, 5, MIO_SEC) & MIO_WRITABLE);
    put(s.w, "x");
    f = test_wait_token(p, 5, MIO_SEC);
    CHECK(f & MIO_READABLE);
    CHECK_EQ(drain(s.r), 1);
    CHECK_EQ(test_wait_token(p, 5, 20 * MIO_MSEC) & MIO_READABLE, 0);
    close_source(s);
    mio_poll_free(p);
}

/* ---- level ---- */

static void level_every_wait(struct source s)
{
    mio_poll *p = test_poll();
    int i;

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    CHECK_EQ(test_wait_token(p, 1, 0), 0);
    put(s.w, "abc");
    for (i = 0; i < 5; i++)
        CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    /* A partial read leaves it ready: still reported. */
    {
        char c;
        CHECK_EQ(mio_read(s.r, &c, 1), 1);
    }
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(drain(s.r), 2);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(level_socket_reports_every_wait)
{
    level_every_wait(new_socket());
}

static void level_writable_every_wait(struct source s)
{
    mio_poll *p = test_poll();
    int i;

    OK(mio_register(p, s.w, 2, MIO_WRITABLE | MIO_LEVEL));
    for (i = 0; i < 5; i++)
        CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    fill(s.w);
    CHECK_EQ(test_wait_token(p, 2, 20 * MIO_MSEC), 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(level_writable_socket_reports_every_wait)
{
    level_writable_every_wait(new_socket());
}

/* ---- oneshot ---- */

static void oneshot_until_reregister(struct source s, uint32_t trigger)
{
    mio_poll *p = test_poll();
    uint32_t interest = MIO_READABLE | MIO_ONESHOT | trigger;

    OK(mio_register(p, s.r, 1, interest));
    put(s.w, "a");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    /* Disarmed: nothing while ready, nothing for new data, nothing after a
     * drain to MIO_EAGAIN and more data. */
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    put(s.w, "b");
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    CHECK_EQ(drain(s.r), 2);
    put(s.w, "c");
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    /* Re-armed: readiness still present is reported at once, once. */
    OK(mio_reregister(p, s.r, 1, interest));
    CHECK(test_wait_token(p, 1, 0) & MIO_READABLE);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    CHECK_EQ(drain(s.r), 1);
    /* Re-armed with nothing ready: the next data is reported. */
    OK(mio_reregister(p, s.r, 1, interest));
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    put(s.w, "d");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(oneshot_socket_reports_once_until_reregister)
{
    oneshot_until_reregister(new_socket(), MIO_EDGE);
}

TEST(oneshot_level_reports_once_until_reregister)
{
    oneshot_until_reregister(new_socket(), MIO_LEVEL);
}

/* A oneshot event disarms the whole registration, not one direction. */
TEST(oneshot_disarms_every_direction)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_WRITABLE | MIO_ONESHOT));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_WRITABLE);
    put(s.w, "x");
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_reregister(p, s.r, 1, MIO_READABLE | MIO_ONESHOT));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

/* A disarmed oneshot is still registered until deregistered. */
TEST(oneshot_disarmed_is_still_registered)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_ONESHOT));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(mio_register(p, s.r, 2, MIO_READABLE), MIO_EEXIST);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(mio_reregister(p, s.r, 1, MIO_READABLE | MIO_ONESHOT), MIO_ENOENT);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    close_source(s);
    mio_poll_free(p);
}

/* ---- a source ready before it is registered ---- */

static void ready_at_register(struct source s, uint32_t trigger)
{
    mio_poll *p = test_poll();

    put(s.w, "x");
    OK(mio_register(p, s.r, 1, MIO_READABLE | trigger));
    CHECK(test_wait_token(p, 1, 0) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(register_ready_socket_reports_at_once)
{
    ready_at_register(new_socket(), MIO_EDGE);
}

TEST(register_ready_level_reports_at_once)
{
    ready_at_register(new_socket(), MIO_LEVEL);
}

TEST(register_ready_oneshot_reports_at_once)
{
    ready_at_register(new_socket(), MIO_ONESHOT);
}

/* ---- the same on pipes, which Windows lacks ---- */

#ifndef _WIN32
static struct source new_pipe(void)
{
    mio_fd fds[2];
    struct source s;
    OK(mio_pipe(fds));
    s.r = fds[0];
    s.w = fds[1];
    return s;
}

POSIX_TEST(edge_pipe_reports_once_per_rise)
{
    edge_once_per_rise(new_pipe());
}

POSIX_TEST(level_pipe_reports_every_wait)
{
    level_every_wait(new_pipe());
}

POSIX_TEST(level_writable_pipe_reports_every_wait)
{
    level_writable_every_wait(new_pipe());
}

POSIX_TEST(edge_short_pipe_read_counts_as_drained)
{
    edge_short_read_is_drained(new_pipe());
}

POSIX_TEST(oneshot_pipe_reports_once_until_reregister)
{
    oneshot_until_reregister(new_pipe(), MIO_EDGE);
}

POSIX_TEST(register_ready_pipe_reports_at_once)
{
    ready_at_register(new_pipe(), MIO_EDGE);
}
#endif

/* ---- reregister ---- */

TEST(reregister_replaces_token)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int i, n;

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    OK(mio_reregister(p, s.r, 2, MIO_READABLE | MIO_LEVEL));
    for (i = 0; i < 3; i++) {
        n = test_wait(p, ev, 8, MIO_SEC);
        CHECK_EQ(test_flags(ev, n, 1), 0);
        CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    }
    close_source(s);
    mio_poll_free(p);
}

/* Readiness that arrived before the reregister, and was never waited for,
 * is reported under the new token only. */
TEST(reregister_pending_readiness_carries_new_token)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    put(s.w, "x");
    OK(mio_reregister(p, s.r, 2, MIO_READABLE));
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    n = test_wait(p, ev, 8, 20 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(reregister_writable_to_readable)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, MIO_WRITABLE));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_WRITABLE);
    OK(mio_reregister(p, s.r, 2, MIO_READABLE | MIO_LEVEL));
    /* Writable all along, but no longer asked for. */
    n = test_wait(p, ev, 8, 20 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK_EQ(test_flags(ev, n, 2) & MIO_WRITABLE, 0);
    put(s.w, "x");
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    CHECK_EQ(test_flags(ev, n, 2) & MIO_WRITABLE, 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(reregister_readable_to_writable_reports_at_once)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    uint32_t f;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_reregister(p, s.r, 2, MIO_WRITABLE));
#ifdef _WIN32
    /* The new interest is polled asynchronously: the next wait that lasts. */
    f = test_wait_token(p, 2, MIO_SEC);
#else
    f = test_wait_token(p, 2, 0);
#endif
    CHECK(f & MIO_WRITABLE);
    CHECK_EQ(f & MIO_READABLE, 0);
    close_source(s);
    mio_poll_free(p);
}

TEST(reregister_edge_to_level)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    int i;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_reregister(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    for (i = 0; i < 3; i++)
        CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

/* ---- deregister ---- */

TEST(deregister_stops_events)
{
    mio_poll *p = test_poll();
    struct source a = new_socket(), b = new_socket();
    mio_event ev[8];
    int n;

    OK(mio_register(p, a.r, 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(p, b.r, 2, MIO_READABLE | MIO_LEVEL));
    put(a.w, "x");
    put(b.w, "x");
    OK(mio_deregister(p, a.r));
    n = test_wait(p, ev, 8, 50 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    put(a.w, "y");
    n = test_wait(p, ev, 8, 50 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    close_source(a);
    close_source(b);
    mio_poll_free(p);
}

/* What deregister promises when another thread waits: no wait that starts
 * after mio_deregister returns reports the fd.  A level registration of a
 * readable socket is reported by every wait until then. */
struct deregisterer {
    mio_poll *p;
    mio_fd fd;
    atomic_int done;        /* mio_deregister returned */
};

static void *deregister_soon(void *arg)
{
    struct deregisterer *d = arg;
    test_sleep_ms(20);
    OK(mio_deregister(d->p, d->fd));
    atomic_store(&d->done, 1);
    return NULL;
}

TEST(no_wait_after_deregister_reports_it)
{
    int round;

    for (round = 0; round < 20; round++) {
        mio_poll *p = test_poll();
        struct source s = new_socket();
        struct deregisterer d = { p, s.r, 0 };
        pthread_t t;
        int waits_after = 0;

        put(s.w, "x");
        OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
        CHECK_EQ(pthread_create(&t, NULL, deregister_soon, &d), 0);
        while (waits_after < 5) {
            mio_event ev[4];
            int after = atomic_load(&d.done), n;
            n = test_wait(p, ev, 4, round % 2 ? MIO_MSEC : 0);
            if (after) {
                CHECK_EQ(test_flags(ev, n, 1), 0);
                waits_after++;
            }
        }
        CHECK_EQ(pthread_join(t, NULL), 0);
        close_source(s);
        mio_poll_free(p);
    }
}

TEST(deregister_after_event_reported)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(test_wait_token(p, 1, 50 * MIO_MSEC), 0);
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    close_source(s);
    mio_poll_free(p);
}

TEST(register_again_after_deregister)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    OK(mio_deregister(p, s.r));
    OK(mio_register(p, s.r, 2, MIO_READABLE));
    put(s.w, "x");
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

/* The poll never owns the caller's descriptors. */
TEST(poll_free_leaves_sources_open)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    char c;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    OK(mio_register(p, s.w, 2, MIO_WRITABLE | MIO_LEVEL));
    mio_poll_free(p);
    put(s.w, "x");
    CHECK_EQ(mio_read(s.r, &c, 1), 1);
    CHECK_EQ(c, 'x');
    /* And a new poll takes them as never registered. */
    p = test_poll();
    OK(mio_register(p, s.r, 3, MIO_READABLE));
    put(s.w, "y");
    CHECK(test_wait_token(p, 3, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

/* ---- tokens and several polls ---- */

TEST(tokens_round_trip)
{
    static int anchor;
    const mio_token tokens[] = { 0, 1, (mio_token)1 << 31, (mio_token)&anchor,
                                 MIO_TOKEN_RESERVED - 1 };
    enum { N = sizeof tokens / sizeof tokens[0] };
    mio_poll *p = test_poll();
    struct source s[N];
    mio_event ev[16];
    int i, n;

    for (i = 0; i < N; i++) {
        s[i] = new_socket();
        put(s[i].w, "x");
        OK(mio_register(p, s[i].r, tokens[i], MIO_READABLE | MIO_LEVEL));
    }
    n = test_wait(p, ev, 16, MIO_SEC);
    for (i = 0; i < n; i++) {
        int k, known = 0;
        for (k = 0; k < N; k++)
            known |= ev[i].token == tokens[k];
        CHECK(known);
    }
    for (i = 0; i < N; i++) {
        CHECK(test_flags(ev, n, tokens[i]) & MIO_READABLE);
        close_source(s[i]);
    }
    mio_poll_free(p);
}

TEST(one_source_on_two_polls)
{
    mio_poll *p = test_poll(), *q = test_poll();
    struct source s = new_socket();

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(q, s.r, 2, MIO_READABLE | MIO_LEVEL));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    CHECK(test_wait_token(q, 2, MIO_SEC) & MIO_READABLE);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    CHECK(test_wait_token(q, 2, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
    mio_poll_free(q);
}

#ifndef _WIN32
#ifndef LOCK_TRACE
static size_t malloc_usable_size(void *p)
{
    (void)p;
    return 0;
}
#endif

/* Two threads, each driving its own poll, each draining its own sockets:
 * an I/O call that re-arms an emulated edge takes no lock at all, and a
 * wait takes none of the other poll's (nothing process-wide, nothing of
 * another poll's serialises them).  Bytes and events are checked too. */
struct own_poll {
    mio_poll *mine, *other;
    long rounds;
    int io_locks;       /* locks taken by the I/O calls */
    int foreign_locks;  /* locks inside the other poll's object */
};

static void *drive_own_poll(void *arg)
{
    struct own_poll *o = arg;
    struct source s = new_socket();
    long k;

    OK(mio_register(o->mine, s.r, 1, MIO_READABLE));
    for (k = 0; k < o->rounds; k++) {
        char buf[16];
        int i;

        put(s.w, "ping");
        nlocked = 0;
        CHECK(test_wait_token(o->mine, 1, MIO_SEC) & MIO_READABLE);
        for (i = 0; i < nlocked && i < 64; i++)
            if ((const char *)locked[i] >= (const char *)o->other &&
                (const char *)locked[i] < (const char *)o->other + malloc_usable_size(o->other))
                o->foreign_locks++;
        nlocked = 0;
        CHECK_EQ(mio_read(s.r, buf, sizeof buf), 4);
        CHECK(memcmp(buf, "ping", 4) == 0);
        CHECK_EQ(mio_read(s.r, buf, sizeof buf), MIO_EAGAIN);
        o->io_locks += nlocked;
    }
    OK(mio_deregister(o->mine, s.r));
    close_source(s);
    return NULL;
}

POSIX_TEST(rearm_takes_no_lock_of_another_poll)
{
    mio_poll *a = test_poll(), *b = test_poll();
    struct own_poll oa = { a, b, test_scaled(2000), 0, 0 }, ob = { b, a, test_scaled(2000), 0, 0 };
    pthread_t ta, tb;

    CHECK_EQ(pthread_create(&ta, NULL, drive_own_poll, &oa), 0);
    CHECK_EQ(pthread_create(&tb, NULL, drive_own_poll, &ob), 0);
    CHECK_EQ(pthread_join(ta, NULL), 0);
    CHECK_EQ(pthread_join(tb, NULL), 0);
    /* ThreadSanitizer has its own pthread_mutex_lock: nothing is counted. */
    CHECK_EQ(oa.io_locks + ob.io_locks, 0);
    CHECK_EQ(oa.foreign_locks + ob.foreign_locks, 0);
    mio_poll_free(a);
    mio_poll_free(b);
}
#endif

/* Events go to one thread, the reads that drain them happen on another, as
 * in a thread-pool server: a drain may land between the kernel saying
 * "readable" and the waiter disarming the edge.  No edge is lost: every byte
 * written is read, one at a time, each after its own event. */
enum { DRAIN_PAIRS = 8 };

struct cross_drain {
    mio_poll *p;
    struct source s[DRAIN_PAIRS];
    atomic_int ready[DRAIN_PAIRS];
    atomic_long got[DRAIN_PAIRS];
    atomic_int stop;
};

static void *cross_waiter(void *arg)
{
    struct cross_drain *c = arg;
    while (!atomic_load(&c->stop)) {
        mio_event ev[DRAIN_PAIRS];
        int n = test_wait(c->p, ev, DRAIN_PAIRS, 10 * MIO_MSEC), i;
        for (i = 0; i < n; i++)
            atomic_store(&c->ready[ev[i].token], 1);
    }
    return NULL;
}

static void *cross_reader(void *arg)
{
    struct cross_drain *c = arg;
    while (!atomic_load(&c->stop)) {
        int i;
        for (i = 0; i < DRAIN_PAIRS; i++) {
            char buf[8];
            ssize_t r;
            if (!atomic_exchange(&c->ready[i], 0))
                continue;
            while ((r = mio_read(c->s[i].r, buf, sizeof buf)) > 0)
                atomic_fetch_add(&c->got[i], r);
            CHECK_EQ(r, MIO_EAGAIN);
        }
        sched_yield();
    }
    return NULL;
}

TEST(drain_on_another_thread_loses_no_edge)
{
    struct cross_drain c;
    pthread_t tw, tr;
    long rounds = test_scaled(20000), k, sent[DRAIN_PAIRS] = { 0 };
    uint32_t seed = 1;
    int i;

    c.p = test_poll();
    atomic_init(&c.stop, 0);
    for (i = 0; i < DRAIN_PAIRS; i++) {
        c.s[i] = new_socket();
        atomic_init(&c.ready[i], 0);
        atomic_init(&c.got[i], 0);
        OK(mio_register(c.p, c.s[i].r, (mio_token)i, MIO_READABLE));
    }
    CHECK_EQ(pthread_create(&tw, NULL, cross_waiter, &c), 0);
    CHECK_EQ(pthread_create(&tr, NULL, cross_reader, &c), 0);
    for (k = 0; k < rounds; k++) {
        int64_t deadline = test_now_ns() + 5 * MIO_SEC;
        seed = seed * 1103515245u + 12345u;
        i = (int)((seed >> 16) % DRAIN_PAIRS);
        put(c.s[i].w, "x");
        sent[i]++;
        while (atomic_load(&c.got[i]) != sent[i]) {
            if (test_now_ns() > deadline)
                FAIL("pair %d: byte %ld never reported (an edge was lost)", i, sent[i]);
            sched_yield();
        }
    }
    atomic_store(&c.stop, 1);
    CHECK_EQ(pthread_join(tw, NULL), 0);
    CHECK_EQ(pthread_join(tr, NULL), 0);
    for (i = 0; i < DRAIN_PAIRS; i++) {
        OK(mio_deregister(c.p, c.s[i].r));
        close_source(c.s[i]);
    }
    mio_poll_free(c.p);
}

/* ---- readiness flags ---- */

/* Closed and error flags come without being asked for. */
TEST(closed_flags_reported_without_interest)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    uint32_t f;

    OK(mio_register(p, s.r, 1, MIO_WRITABLE));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_WRITABLE);
    test_hang_up(s.w);
    f = test_wait_token(p, 1, MIO_SEC);
    CHECK(f & (MIO_WRITE_CLOSED | MIO_ERROR));
    OK(mio_close(s.r));
    mio_poll_free(p);
}

/* A connected TCP pair made with p's help (tokens 1 and 3, deregistered
 * again); *lfd is the listener. */
static void tcp_pair(mio_poll *p, mio_fd *lfd, mio_fd *cfd, mio_fd *sfd)
{
    mio_addr addr;

    OK(mio_addr_parse("127.0.0.1:0", &addr));
    OK(mio_tcp_listen(&addr, 0, lfd));
    OK(mio_local_addr(*lfd, &addr));
    OK(mio_register(p, *lfd, 1, MIO_READABLE));
    OK(mio_tcp_connect(&addr, cfd));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    OK(mio_tcp_accept(*lfd, sfd, NULL));
    OK(mio_register(p, *cfd, 3, MIO_WRITABLE));
    CHECK(test_wait_token(p, 3, MIO_SEC) & MIO_WRITABLE);
    OK(mio_socket_error(*cfd));
    OK(mio_deregister(p, *lfd));
    OK(mio_deregister(p, *cfd));
}

TEST(priority_reports_urgent_data)
{
    mio_poll *p = test_poll();
    mio_fd lfd, cfd, sfd;
    uint32_t f;
    int err;

    tcp_pair(p, &lfd, &cfd, &sfd);
    err = mio_register(p, sfd, 2, MIO_PRIORITY);
    if (err == MIO_ENOSYS && strcmp(test_backend, "kqueue") == 0)
        SKIP("this kqueue has no out-of-band filter");
    OK(err);
    CHECK_EQ(test_wait_token(p, 2, 0) & MIO_PRIORITY, 0);
    CHECK_EQ(send(cfd, "!", 1, MSG_OOB | MSG_NOSIGNAL), 1);
    f = test_wait_token(p, 2, MIO_SEC);
    CHECK(f & MIO_PRIORITY);
    OK(mio_close(cfd));
    OK(mio_close(sfd));
    OK(mio_close(lfd));
    mio_poll_free(p);
}

/* An edge registration for urgent data reports every new urgent byte once
 * the last was read and a read said MIO_EAGAIN: where edges are emulated,
 * urgent data re-arms with reads, having no I/O call of its own. */
TEST(edge_priority_reports_each_urgent_byte)
{
    mio_poll *p = test_poll();
    mio_fd lfd, cfd, sfd;
    char c;
    int err, i;

    tcp_pair(p, &lfd, &cfd, &sfd);
    err = mio_register(p, sfd, 2, MIO_PRIORITY);
    if (err == MIO_ENOSYS && strcmp(test_backend, "kqueue") == 0)
        SKIP("this kqueue has no out-of-band filter");
    OK(err);
    for (i = 0; i < 2; i++) {
        CHECK_EQ(send(cfd, "!", 1, MSG_OOB | MSG_NOSIGNAL), 1);
        CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_PRIORITY);
        CHECK_EQ(recv(sfd, &c, 1, MSG_OOB), 1);
        CHECK_EQ(c, '!');
        CHECK_EQ(mio_read(sfd, &c, 1), MIO_EAGAIN);
    }
    OK(mio_close(cfd));
    OK(mio_close(sfd));
    OK(mio_close(lfd));
    mio_poll_free(p);
}

/* ---- refused arguments: an error, and nothing changed ---- */

TEST(wait_rejects_bad_arguments)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    put(s.w, "x");
    CHECK_EQ(mio_poll_wait(NULL, ev, 8, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, NULL, 8, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, ev, 0, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, NULL, 0, 0), MIO_EINVAL);
    CHECK_EQ(mio_poll_wait(p, ev, 0, -1), MIO_EINVAL);
    /* The refused calls took nothing and left no busy flag behind. */
    CHECK(test_wait_token(p, 1, 0) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(reserved_token_refused)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_waker *w = NULL;

    put(s.w, "x");
    CHECK_EQ(mio_register(p, s.r, MIO_TOKEN_RESERVED, MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(test_wait_token(p, MIO_TOKEN_RESERVED, 20 * MIO_MSEC), 0);
    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_LEVEL));
    CHECK_EQ(mio_reregister(p, s.r, MIO_TOKEN_RESERVED, MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(mio_waker_new(p, MIO_TOKEN_RESERVED, &w), MIO_EINVAL);
    CHECK(w == NULL);
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(bad_interest_refused)
{
    static const uint32_t bad[] = {
        0, MIO_EDGE, MIO_LEVEL, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT,
        MIO_READABLE | 0x100u, MIO_WRITABLE | (1u << 31), 0x100u, 1u << 31,
        MIO_ERROR, MIO_READ_CLOSED, MIO_WRITE_CLOSED,
        MIO_READABLE | MIO_ERROR, MIO_READABLE | MIO_READ_CLOSED,
        MIO_WRITABLE | MIO_WRITE_CLOSED, MIO_ERROR | MIO_LEVEL, 0xffffffffu,
    };
    mio_poll *p = test_poll();
    struct source s = new_socket();
    size_t i;

    put(s.w, "x");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(mio_register(p, s.r, 1, bad[i]), MIO_EINVAL);
    /* Nothing was registered: nothing reported, and a good call succeeds. */
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_register(p, s.r, 2, MIO_READABLE | MIO_LEVEL));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(mio_reregister(p, s.r, 3, bad[i]), MIO_EINVAL);
    /* The registration kept its token and interest. */
    {
        mio_event ev[8];
        int n = test_wait(p, ev, 8, MIO_SEC);
        CHECK_EQ(test_flags(ev, n, 3), 0);
        CHECK(test_flags(ev, n, 2) & MIO_READABLE);
    }
    close_source(s);
    mio_poll_free(p);
}

TEST(every_interest_combination_accepted)
{
    static const uint32_t dirs[] = {
        MIO_READABLE, MIO_WRITABLE, MIO_PRIORITY, MIO_READABLE | MIO_WRITABLE,
        MIO_READABLE | MIO_PRIORITY, MIO_READABLE | MIO_WRITABLE | MIO_PRIORITY,
    };
    static const uint32_t triggers[] = {
        MIO_EDGE, MIO_LEVEL, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT,
    };
    mio_poll *p = test_poll();
    struct source s = new_socket();
    size_t i, k;
    bool no_priority = false;

    if (mio_register(p, s.r, 1, MIO_PRIORITY) == MIO_ENOSYS && strcmp(test_backend, "kqueue") == 0)
        no_priority = true;
    else
        OK(mio_deregister(p, s.r));

    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        for (k = 0; k < sizeof triggers / sizeof triggers[0]; k++) {
            /* kqueue without EVFILT_EXCEPT cannot watch for urgent data. */
            if (((dirs[i] | dirs[(i + 1) % 6]) & MIO_PRIORITY) && no_priority)
                continue;
            OK(mio_register(p, s.r, 1, dirs[i] | triggers[k]));
            OK(mio_reregister(p, s.r, 2, dirs[(i + 1) % 6] | triggers[k]));
            OK(mio_deregister(p, s.r));
        }
    }
    close_source(s);
    mio_poll_free(p);
}

TEST(register_twice_is_eexist)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK_EQ(mio_register(p, s.r, 2, MIO_WRITABLE | MIO_LEVEL), MIO_EEXIST);
    CHECK_EQ(mio_register(p, s.r, 1, MIO_READABLE), MIO_EEXIST);
    /* The first registration, token and interest, is the one in force. */
    n = test_wait(p, ev, 8, 20 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, 2), 0);
    CHECK_EQ(test_flags(ev, n, 1) & MIO_WRITABLE, 0);
    put(s.w, "x");
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(test_flags(ev, n, 2), 0);
    CHECK(test_flags(ev, n, 1) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(unregistered_fd_is_enoent)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();

    put(s.w, "x");
    CHECK_EQ(mio_reregister(p, s.r, 1, MIO_READABLE), MIO_ENOENT);
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    /* The refused reregister did not register it. */
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(invalid_fd_is_ebadf)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    mio_fd closed = s.r;
    const mio_fd bad[] = { -1, -2, INT_MIN, 1 << 20, INT_MAX };
    size_t i;

    OK(mio_close(s.r));
    OK(mio_close(s.w));
    CHECK_EQ(mio_register(p, closed, 1, MIO_READABLE), MIO_EBADF);
    CHECK_EQ(mio_reregister(p, closed, 1, MIO_READABLE), MIO_EBADF);
    CHECK_EQ(mio_deregister(p, closed), MIO_EBADF);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mio_register(p, bad[i], 1, MIO_READABLE), MIO_EBADF);
        CHECK_EQ(mio_reregister(p, bad[i], 1, MIO_READABLE), MIO_EBADF);
        CHECK_EQ(mio_deregister(p, bad[i]), MIO_EBADF);
    }
    /* Still a working poll. */
    s = new_socket();
    OK(mio_register(p, s.r, 1, MIO_READABLE));
    put(s.w, "x");
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
    close_source(s);
    mio_poll_free(p);
}

TEST(null_poll_refused)
{
    struct source s = new_socket();
    CHECK_EQ(mio_register(NULL, s.r, 1, MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(mio_reregister(NULL, s.r, 1, MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(mio_deregister(NULL, s.r), MIO_EINVAL);
    CHECK(mio_poll_backend(NULL) == NULL);
    mio_poll_free(NULL);
    close_source(s);
}

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

TEST(strerror_never_null)
{
    static const int codes[] = {
        0, MIO_EAGAIN, MIO_EINTR, MIO_EINVAL, MIO_EEXIST, MIO_ENOENT, MIO_EBADF,
        MIO_ENOMEM, MIO_EBUSY, MIO_EPIPE, MIO_ECONNREFUSED, MIO_ECONNRESET,
        MIO_EADDRINUSE, MIO_ENAMETOOLONG, MIO_EMFILE, MIO_ENOSYS, MIO_ETIMEDOUT,
        MIO_ENOTCONN, MIO_ENOSPC,
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

/* ---- more ready than the caller has room for ---- */

enum { MANY = 100, CAP = 7 };

static void make_ready_many(mio_poll *p, struct source *s, uint32_t trigger)
{
    int i;
    for (i = 0; i < MANY; i++) {
        s[i] = new_socket();
        put(s[i].w, "x");
        OK(mio_register(p, s[i].r, (mio_token)i, MIO_READABLE | trigger));
    }
    test_settle();
}

TEST(capacity_smaller_than_ready_set_edge)
{
    mio_poll *p = test_poll();
    struct source s[MANY];
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
        {
            mio_event ev[CAP];
            CHECK_EQ(test_wait(p, ev, CAP, 20 * MIO_MSEC), 0);
        }
        for (i = 0; i < MANY; i++) {
            CHECK_EQ(drain(s[i].r), 1);
            put(s[i].w, "y");
        }
        test_settle();
    }
    for (i = 0; i < MANY; i++)
        close_source(s[i]);
    mio_poll_free(p);
}

TEST(capacity_smaller_than_ready_set_level)
{
    mio_poll *p = test_poll();
    struct source s[MANY];
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
        close_source(s[i]);
    mio_poll_free(p);
}

TEST(capacity_one)
{
    mio_poll *p = test_poll();
    struct source s[3];
    mio_event ev[1];
    int seen[3] = { 0 };
    int i;

    for (i = 0; i < 3; i++) {
        s[i] = new_socket();
        put(s[i].w, "x");
        OK(mio_register(p, s[i].r, (mio_token)i, MIO_READABLE));
    }
    for (i = 0; i < 3; i++) {
        CHECK_EQ(test_wait(p, ev, 1, MIO_SEC), 1);
        CHECK(ev[0].token < 3);
        CHECK_EQ(++seen[ev[0].token], 1);
    }
    CHECK_EQ(test_wait(p, ev, 1, 20 * MIO_MSEC), 0);
    for (i = 0; i < 3; i++)
        close_source(s[i]);
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

static void on_sigusr1(int sig)
{
    (void)sig;
}

struct signaller {
    pthread_t target;
    mio_waker *waker;
    atomic_int done;
};

/* Keeps signalling until the wait has returned, so a signal that lands
 * before the wait blocks cannot make the test hang; the waker is the last
 * resort, and then the test fails on the result. */
static void *signal_until_done(void *arg)
{
    struct signaller *s = arg;
    int i;
    for (i = 0; i < 200 && !atomic_load(&s->done); i++) {
        test_sleep_ms(10);
        if (!atomic_load(&s->done))
            pthread_kill(s->target, SIGUSR1);
    }
    if (!atomic_load(&s->done))
        OK(mio_waker_wake(s->waker));
    return NULL;
}

static void signal_interrupts(int64_t timeout_ns)
{
    struct sigaction sa, old;
    struct signaller s;
    mio_poll *p = test_poll();
    mio_event ev[8];
    pthread_t t;
    int r;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART */
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
    s.target = pthread_self();
    atomic_init(&s.done, 0);
    OK(mio_waker_new(p, 1, &s.waker));
    CHECK_EQ(pthread_create(&t, NULL, signal_until_done, &s), 0);
    r = mio_poll_wait(p, ev, 8, timeout_ns);
    atomic_store(&s.done, 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(r, MIO_EINTR);
    /* The interrupted wait released the poll. */
    CHECK(mio_poll_wait(p, ev, 8, 0) >= 0);
    mio_waker_free(s.waker);
    mio_poll_free(p);
    CHECK_EQ(sigaction(SIGUSR1, &old, NULL), 0);
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

static atomic_long allocs, frees;
static atomic_long fail_after;      /* allocations left before failing; < 0: never */

static int may_allocate(void)
{
    if (atomic_load(&fail_after) < 0)
        return 1;
    return atomic_fetch_sub(&fail_after, 1) > 0;
}

static void *count_malloc(size_t n)
{
    void *q = may_allocate() ? malloc(n) : NULL;
    if (q != NULL)
        atomic_fetch_add(&allocs, 1);
    return q;
}

static void *count_calloc(size_t c, size_t n)
{
    void *q = may_allocate() ? calloc(c, n) : NULL;
    if (q != NULL)
        atomic_fetch_add(&allocs, 1);
    return q;
}

static void *count_realloc(void *old, size_t n)
{
    void *q;
    if (!may_allocate())
        return NULL;
    q = realloc(old, n);
    if (q != NULL && old == NULL)
        atomic_fetch_add(&allocs, 1);
    /* Reallocating an existing block is still an allocation on a hot path. */
    if (q != NULL && old != NULL)
        atomic_fetch_add(&allocs, 1), atomic_fetch_add(&frees, 1);
    return q;
}

static void count_free(void *q)
{
    if (q != NULL)
        atomic_fetch_add(&frees, 1);
    free(q);
}

static void use_counting_allocator(void)
{
    atomic_store(&fail_after, -1);
    OK(mio_set_allocator(count_malloc, count_realloc, count_calloc, count_free));
}

TEST(no_allocation_while_waiting)
{
    mio_poll *p;
    struct source a, b;
    mio_waker *w;
    long before;
    int round;

    use_counting_allocator();          /* before any other call */
    p = test_poll();
    a = new_socket();
#ifdef _WIN32
    b = new_socket();   /* no pipes there */
#else
    b = new_pipe();
#endif
    OK(mio_register(p, a.r, 1, MIO_READABLE));
    OK(mio_register(p, b.r, 2, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(p, a.w, 3, MIO_WRITABLE | MIO_LEVEL));
    OK(mio_waker_new(p, 4, &w));
    before = atomic_load(&allocs);
    for (round = 0; round < 10000; round++) {
        mio_event ev[8];
        char buf[8];
        int n;
        put(a.w, "x");
        put(b.w, "y");
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
    CHECK_EQ(atomic_load(&allocs) - before, 0);
    mio_waker_free(w);
    close_source(a);
    close_source(b);
    mio_poll_free(p);
    CHECK_EQ(atomic_load(&allocs), atomic_load(&frees));
}

/* Every allocation failing in turn: each failure is MIO_ENOMEM, and leaves
 * no memory and no descriptor behind. */
TEST(failing_allocator_is_enomem_and_leaks_nothing)
{
    mio_poll *p;
    mio_waker *w;
    long k;
    int fds, err;

    use_counting_allocator();
    p = test_poll();                    /* skips if the backend is missing */
    mio_poll_free(p);
    fds = test_open_fds();

    /* Nothing at all. */
    atomic_store(&fail_after, 0);
    p = (mio_poll *)&p;
    CHECK_EQ(mio_poll_new_backend(test_backend, &p), MIO_ENOMEM);
    CHECK(p == NULL);
    CHECK_EQ(test_open_fds(), fds);
    CHECK_EQ(atomic_load(&allocs), atomic_load(&frees));

    for (k = 0;; k++) {
        CHECK(k < 100);
        atomic_store(&fail_after, k);
        err = mio_poll_new_backend(test_backend, &p);
        if (err == 0) {
            err = mio_waker_new(p, 1, &w);
            if (err == 0)
                mio_waker_free(w);
            mio_poll_free(p);
        }
        atomic_store(&fail_after, -1);
        CHECK_EQ(test_open_fds(), fds);
        CHECK_EQ(atomic_load(&allocs), atomic_load(&frees));
        if (err == 0)
            break;
        CHECK_EQ(err, MIO_ENOMEM);
    }
}

TEST(set_allocator_needs_all_or_none)
{
    mio_poll *p;
    CHECK_EQ(mio_set_allocator(malloc, NULL, NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(NULL, realloc, calloc, free), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(malloc, realloc, NULL, free), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(malloc, realloc, calloc, NULL), MIO_EINVAL);
    CHECK_EQ(mio_set_allocator(NULL, NULL, NULL, free), MIO_EINVAL);
    /* The refused calls changed nothing: the counting allocator stays. */
    use_counting_allocator();
    CHECK_EQ(mio_set_allocator(count_malloc, NULL, count_calloc, count_free), MIO_EINVAL);
    p = test_poll();
    CHECK(atomic_load(&allocs) > 0);
    mio_poll_free(p);
    CHECK_EQ(atomic_load(&allocs), atomic_load(&frees));
    /* All NULL restores the C library's. */
    OK(mio_set_allocator(NULL, NULL, NULL, NULL));
    {
        long before = atomic_load(&allocs);
        p = test_poll();
        mio_poll_free(p);
        CHECK_EQ(atomic_load(&allocs), before);
    }
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
    struct source s;
    int nb, na, i, created = 0;

    /* libkqueue's first kqueue opens descriptors for the whole process, not
     * all of them close-on-exec: they are not the library's, so they are
     * made before the count. */
    if (test_on_libkqueue())
        first = test_poll();
    s = new_socket();           /* some churn first, so numbers are not trivial */
    close_source(s);
    nb = list_fds(before, 4096);
    p = test_poll();
    OK(mio_waker_new(p, 1, &w));
    s = new_socket();
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
    close_source(s);
    mio_poll_free(p);
    mio_poll_free(first);
}

/* ---- descriptor limits, which Windows lacks ---- */

#ifndef _WIN32
/* Fills every free descriptor number below the highest open one, so that a
 * limit just above it leaves an exact number free; returns how many. */
static int fill_holes(int base, int *ballast, int max)
{
    int n = 0, fd, highest = 0;
    for (fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            highest = fd;
    for (;;) {
        fd = fcntl(base, F_DUPFD_CLOEXEC, 0);
        CHECK(fd >= 0);
        if (fd > highest) {
            close(fd);
            return n;
        }
        CHECK(n < max);
        ballast[n++] = fd;
    }
}

/* Out of descriptors at every step of building a poll and a waker: each
 * failure is MIO_EMFILE and leaves nothing open behind. */
POSIX_TEST(descriptor_exhaustion_is_emfile_and_leaks_nothing)
{
    static int ballast[4096];
    struct rlimit old, lim;
    mio_poll *p = test_poll();
    int base, fds, extra, failures = 0, done = 0;

    mio_poll_free(p);
    base = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(base >= 0);
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    fds = test_open_fds();
    for (extra = 0; extra < 16 && !done; extra++) {
        mio_waker *w;
        int err, nb = fill_holes(base, ballast, 4096), i, highest = 0, fd;
        for (fd = 0; fd < 4096; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                highest = fd;
        lim = old;
        lim.rlim_cur = (rlim_t)highest + 1 + (rlim_t)extra;
        CHECK(lim.rlim_cur <= old.rlim_cur);
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
        err = mio_poll_new_backend(test_backend, &p);
        if (err == 0) {
            err = mio_waker_new(p, 1, &w);
            if (err == 0) {
                mio_waker_free(w);
                done = 1;
            }
            mio_poll_free(p);
        }
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
        for (i = 0; i < nb; i++)
            close(ballast[i]);
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
    close(base);
}

/* A reregister the backend refuses leaves the registration as it was, as a
 * refused EPOLL_CTL_MOD does: the old token and interest, armed or (a oneshot
 * that fired) disarmed, and the descriptor still registered.  A kernel that
 * took a descriptor seldom refuses it a second time (it would take running
 * out of kernel memory), but libkqueue spends a descriptor on each filter of
 * a regular file: out of descriptors, its reregister fails after taking the
 * old filters away.  Where nothing is refused the new interest is simply in
 * force, which is right too. */
static void refused_reregister(uint32_t trigger)
{
    static int ballast[4096];
    const char *dir = test_tmp_dir();
    char path[512];
    struct rlimit old, lim;
    mio_poll *p = test_poll();
    mio_event ev[8];
    int fd, err, n = 0, i, highest = 0, dup_fd;

    snprintf(path, sizeof path, "%s/data", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "data", 4), 4);   /* readable: bytes past the offset */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    err = mio_register(p, fd, 1, MIO_READABLE | trigger);
    if (err == MIO_EPERM)
        SKIP("%s cannot poll a regular file", test_backend);
    OK(err);
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);

    /* No descriptor left to spare, and then the change. */
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    for (i = 0; i < 4096; i++)
        if (fcntl(i, F_GETFD) >= 0)
            highest = i;
    lim = old;
    lim.rlim_cur = (rlim_t)highest + 1 + 16;
    CHECK(lim.rlim_cur <= old.rlim_cur);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
    while ((dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
        CHECK(n < 4096);
        ballast[n++] = dup_fd;
    }
    CHECK_EQ(errno, EMFILE);
    err = mio_reregister(p, fd, 2, MIO_READABLE | MIO_WRITABLE | trigger);
    for (i = 0; i < n; i++)
        close(ballast[i]);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);

    if (err == 0) {
        CHECK_EQ(test_wait_token(p, 2, MIO_SEC) & (MIO_READABLE | MIO_WRITABLE),
                 MIO_READABLE | MIO_WRITABLE);
    } else {
        CHECK(err < 0);
        n = test_wait(p, ev, 8, trigger & MIO_ONESHOT ? 50 * MIO_MSEC : MIO_SEC);
        if (trigger & MIO_ONESHOT) {
            CHECK_EQ(n, 0);         /* still disarmed */
        } else {
            CHECK(test_flags(ev, n, 1) & MIO_READABLE);
            CHECK_EQ(test_flags(ev, n, 1) & MIO_WRITABLE, 0);
            CHECK_EQ(test_flags(ev, n, 2), 0);
        }
        CHECK_EQ(mio_register(p, fd, 3, MIO_READABLE), MIO_EEXIST);
        /* And a change that can be made is made. */
        OK(mio_reregister(p, fd, 2, MIO_READABLE | MIO_WRITABLE | trigger));
        CHECK_EQ(test_wait_token(p, 2, MIO_SEC) & (MIO_READABLE | MIO_WRITABLE),
                 MIO_READABLE | MIO_WRITABLE);
    }
    OK(mio_deregister(p, fd));
    CHECK_EQ(close(fd), 0);
    mio_poll_free(p);
}

POSIX_TEST(reregister_refused_keeps_registration)
{
    refused_reregister(MIO_LEVEL);
}

POSIX_TEST(reregister_refused_keeps_fired_oneshot_disarmed)
{
    refused_reregister(MIO_LEVEL | MIO_ONESHOT);
}
#endif

/* ---- tracing ---- */

static char trace[8192];
static int trace_calls;

static void collect(int level, const char *msg, void *ud)
{
    CHECK(ud == (void *)trace);
    CHECK(level >= MIO_LOG_ERROR && level <= MIO_LOG_TRACE);
    CHECK(msg != NULL);
    trace_calls++;
    if (strlen(trace) + strlen(msg) + 2 < sizeof trace) {
        strcat(trace, msg);
        strcat(trace, "\n");
    }
}

TEST(log_callback_sees_register_and_deregister)
{
    mio_poll *p = test_poll();
    struct source s = new_socket();
    int calls;

    mio_set_log(collect, trace);
    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK(trace_calls > 0);
    CHECK(strstr(trace, "register") != NULL);
    trace[0] = '\0';
    OK(mio_deregister(p, s.r));
    CHECK(strstr(trace, "deregister") != NULL);

    mio_set_log(NULL, NULL);
    calls = trace_calls;
    OK(mio_register(p, s.r, 1, MIO_READABLE));
    OK(mio_reregister(p, s.r, 1, MIO_WRITABLE));
    CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_WRITABLE);
    OK(mio_deregister(p, s.r));
    mio_poll_free(p);
    CHECK_EQ(trace_calls, calls);
    close_source(s);
}
