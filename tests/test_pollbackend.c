/* What a backend without edge triggers or thread-safe registration has to
 * build itself (the machinery of the poll(2) and Windows backends), checked
 * through the public API so that every backend must agree: changes from other threads during a
 * wait, emulated edges re-armed by EAGAIN, disarmed registrations that hang
 * up, descriptors closed without deregistering, and fairness when more is
 * ready than the caller asked for. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#ifndef _WIN32
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif

/* What a BSD kernel does at close(), libkqueue cannot see: the filters stay,
 * and the next descriptor with that number finds them. */
#define CLOSE_UNSEEN "close() leaves the filters behind, for the number's next owner"

/* Reads until MIO_EAGAIN: the step that re-arms an emulated edge. */
static void drain(mio_fd fd)
{
    char buf[4096];
    ssize_t r;
    while ((r = mio_read(fd, buf, sizeof buf)) > 0)
        ;
    CHECK_EQ(r, MIO_EAGAIN);
}

/* ---- changes from another thread while a wait blocks ---- */

struct helper {
    mio_poll *p;
    mio_fd fd;          /* what the helper registers or deregisters */
    mio_fd peer;        /* what it writes to */
    mio_waker *waker;
    atomic_int done;
};

static void *register_later(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(50);
    CHECK_EQ(mio_write(h->peer, "x", 1), 1);
    OK(mio_register(h->p, h->fd, 42, MIO_READABLE));
    return NULL;
}

TEST(register_from_thread_wakes_wait)
{
    struct helper h = { 0 };
    mio_fd sv[2];
    mio_event ev[8];
    pthread_t t;
    int64_t start;
    int n;

    h.p = test_poll();
    OK(mio_socketpair(sv));
    h.fd = sv[0];
    h.peer = sv[1];
    OK(pthread_create(&t, NULL, register_later, &h));
    start = test_now_ns();
    n = test_wait(h.p, ev, 8, 10 * MIO_SEC);
    CHECK(test_now_ns() - start < 5 * MIO_SEC);
    CHECK(test_flags(ev, n, 42) & MIO_READABLE);
    OK(pthread_join(t, NULL));
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(h.p);
}

static void *deregister_later(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(50);
    OK(mio_deregister(h->p, h->fd));
    CHECK_EQ(mio_write(h->peer, "x", 1), 1);
    test_sleep_ms(20);
    OK(mio_waker_wake(h->waker));
    return NULL;
}

TEST(deregister_from_thread_during_wait)
{
    struct helper h = { 0 };
    mio_fd sv[2];
    mio_event ev[8];
    pthread_t t;
    int n;

    h.p = test_poll();
    OK(mio_socketpair(sv));
    h.fd = sv[0];
    h.peer = sv[1];
    OK(mio_register(h.p, sv[0], 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_waker_new(h.p, 2, &h.waker));
    OK(pthread_create(&t, NULL, deregister_later, &h));
    n = test_wait(h.p, ev, 8, 10 * MIO_SEC);
    OK(pthread_join(t, NULL));
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK_EQ(test_flags(ev, n, 2), MIO_READABLE);
    CHECK_EQ(test_wait_token(h.p, 1, 20 * MIO_MSEC), 0);
    mio_waker_free(h.waker);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(h.p);
}

/* Registrations come and go (the backend's arrays grow and shrink) while the
 * other thread keeps waiting; every event must carry a token in use. */
#define CHURN_ROUNDS 200
#define CHURN_BASE 1000

static void *churn(void *arg)
{
    struct helper *h = arg;
    mio_fd sv[CHURN_ROUNDS][2];
    int i;

    test_sleep_ms(20);   /* let the other thread block first */
    for (i = 0; i < CHURN_ROUNDS; i++) {
        OK(mio_socketpair(sv[i]));
        OK(mio_register(h->p, sv[i][0], CHURN_BASE + (mio_token)i, MIO_WRITABLE | MIO_LEVEL));
        if (i % 3 == 2) {   /* keep some, drop others: slots swap around */
            OK(mio_deregister(h->p, sv[i - 1][0]));
            OK(mio_close(sv[i - 1][0]));
            OK(mio_close(sv[i - 1][1]));
            sv[i - 1][0] = MIO_INVALID_FD;
        }
    }
    for (i = 0; i < CHURN_ROUNDS; i++) {
        if (sv[i][0] != MIO_INVALID_FD) {
            OK(mio_deregister(h->p, sv[i][0]));
            OK(mio_close(sv[i][0]));
            OK(mio_close(sv[i][1]));
        }
    }
    atomic_store(&h->done, 1);
    OK(mio_waker_wake(h->waker));
    return NULL;
}

TEST(registration_churn_during_waits)
{
    struct helper h = { 0 };
    mio_event ev[16];
    pthread_t t;
    int i, n;

    h.p = test_poll();
    OK(mio_waker_new(h.p, 1, &h.waker));
    OK(pthread_create(&t, NULL, churn, &h));
    do {
        n = test_wait(h.p, ev, 16, MIO_SEC);
        for (i = 0; i < n; i++)
            CHECK(ev[i].token == 1 ||
                  (ev[i].token >= CHURN_BASE && ev[i].token < CHURN_BASE + CHURN_ROUNDS));
    } while (!atomic_load(&h.done));
    OK(pthread_join(t, NULL));
    /* Everything is gone: only the waker may still speak. */
    n = test_wait(h.p, ev, 16, 0);
    for (i = 0; i < n; i++)
        CHECK_EQ(ev[i].token, 1);
    mio_waker_free(h.waker);
    mio_poll_free(h.p);
}

/* A thread pool's pattern: one thread waits and hands each event to another,
 * which handles it and re-arms the oneshot registration, mostly while the
 * wait is blocked.  The source is readable and writable throughout, so each
 * arm can fire both ways: the whole registration is disarmed by its first
 * event, and no wait reports the token twice between two re-arms (both
 * directions in one wait is one report). */
#define REARM_TOKEN 77
#define REARM_INTEREST (MIO_READABLE | MIO_WRITABLE | MIO_ONESHOT)

struct rearm {
    mio_poll *p;
    mio_fd fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int handed;             /* events passed on and not yet re-armed */
    int stop;
    atomic_int armed;       /* re-armed since the token was last reported */
};

static void *rearm_each_event(void *arg)
{
    struct rearm *r = arg;
    int round;

    for (round = 0;; round++) {
        OK(pthread_mutex_lock(&r->lock));
        while (r->handed == 0 && !r->stop)
            OK(pthread_cond_wait(&r->cond, &r->lock));
        if (r->stop) {
            OK(pthread_mutex_unlock(&r->lock));
            return NULL;
        }
        r->handed--;
        OK(pthread_mutex_unlock(&r->lock));
        /* Most rounds let the waiter block first; some race it. */
        if (round % 4 != 0)
            test_sleep_ms(1);
        atomic_store(&r->armed, 1);
        if (round % 2 == 0) {
            OK(mio_reregister(r->p, r->fd, REARM_TOKEN, REARM_INTEREST));
        } else {
            OK(mio_deregister(r->p, r->fd));
            OK(mio_register(r->p, r->fd, REARM_TOKEN, REARM_INTEREST));
        }
    }
}

TEST(oneshot_rearmed_from_thread_reports_once_per_arm)
{
    struct rearm r;
    long rounds = test_scaled(1000), i;
    mio_event ev[8];
    mio_fd sv[2];
    pthread_t t;

    memset(&r, 0, sizeof r);
    r.p = test_poll();
    OK(pthread_mutex_init(&r.lock, NULL));
    OK(pthread_cond_init(&r.cond, NULL));
    OK(mio_socketpair(sv));
    r.fd = sv[0];
    CHECK_EQ(mio_write(sv[1], "r", 1), 1);     /* never read: readable throughout */
    atomic_store(&r.armed, 1);
    OK(mio_register(r.p, r.fd, REARM_TOKEN, REARM_INTEREST));
    OK(pthread_create(&t, NULL, rearm_each_event, &r));
    test_watchdog(60);
    for (i = 0; i < rounds; i++) {
        int n = test_wait(r.p, ev, 8, 5 * MIO_SEC);
        CHECK(n > 0);       /* every arm is reported */
        CHECK(test_flags(ev, n, REARM_TOKEN) & (MIO_READABLE | MIO_WRITABLE));
        if (atomic_exchange(&r.armed, 0) != 1)
            FAIL("round %ld: the token came again before the registration was re-armed", i);
        OK(pthread_mutex_lock(&r.lock));
        if (i + 1 < rounds)
            r.handed++;
        else
            r.stop = 1;
        OK(pthread_cond_signal(&r.cond));
        OK(pthread_mutex_unlock(&r.lock));
    }
    OK(pthread_join(t, NULL));
    /* The last arm is used up: nothing more comes. */
    CHECK_EQ(test_wait_token(r.p, REARM_TOKEN, 50 * MIO_MSEC), 0);
    test_watchdog(0);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    OK(pthread_cond_destroy(&r.cond));
    OK(pthread_mutex_destroy(&r.lock));
    mio_poll_free(r.p);
}

/* ---- edge triggers ---- */

TEST(edge_read_rearms_after_eagain)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    char c;

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 5, MIO_READABLE));
    CHECK_EQ(mio_write(sv[1], "a", 1), 1);
    CHECK(test_wait_token(p, 5, MIO_SEC) & MIO_READABLE);
    /* No new data, no new edge. */
    CHECK_EQ(test_wait_token(p, 5, 20 * MIO_MSEC), 0);
    CHECK_EQ(mio_read(sv[0], &c, 1), 1);
    CHECK_EQ(c, 'a');
    CHECK_EQ(mio_read(sv[0], &c, 1), MIO_EAGAIN);
    CHECK_EQ(mio_write(sv[1], "b", 1), 1);
    CHECK(test_wait_token(p, 5, MIO_SEC) & MIO_READABLE);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

TEST(edge_write_rearms_after_eagain)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    char buf[4096];
    ssize_t r;

    memset(buf, 'w', sizeof buf);
    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 6, MIO_WRITABLE));
    CHECK(test_wait_token(p, 6, MIO_SEC) & MIO_WRITABLE);
    CHECK_EQ(test_wait_token(p, 6, 20 * MIO_MSEC), 0);
    while ((r = mio_write(sv[0], buf, sizeof buf)) > 0)
        ;
    CHECK_EQ(r, MIO_EAGAIN);
    drain(sv[1]);
    CHECK(test_wait_token(p, 6, MIO_SEC) & MIO_WRITABLE);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

static void *drain_then_write(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(50);
    drain(h->fd);
    CHECK_EQ(mio_write(h->peer, "z", 1), 1);
    return NULL;
}

/* The EAGAIN that re-arms comes from another thread while the wait blocks. */
TEST(edge_rearm_from_thread_during_wait)
{
    struct helper h = { 0 };
    mio_fd sv[2];
    pthread_t t;

    h.p = test_poll();
    OK(mio_socketpair(sv));
    h.fd = sv[0];
    h.peer = sv[1];
    OK(mio_register(h.p, sv[0], 7, MIO_READABLE));
    CHECK_EQ(mio_write(sv[1], "y", 1), 1);
    CHECK(test_wait_token(h.p, 7, MIO_SEC) & MIO_READABLE);
    OK(pthread_create(&t, NULL, drain_then_write, &h));
    CHECK(test_wait_token(h.p, 7, 10 * MIO_SEC) & MIO_READABLE);
    OK(pthread_join(t, NULL));
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(h.p);
}

/* Reregister re-arms a used-up edge and reports readiness still there. */
TEST(edge_reregister_reports_present_readiness)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 8, MIO_READABLE));
    CHECK_EQ(mio_write(sv[1], "a", 1), 1);
    CHECK(test_wait_token(p, 8, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(test_wait_token(p, 8, 20 * MIO_MSEC), 0);
    OK(mio_reregister(p, sv[0], 9, MIO_READABLE));
    CHECK(test_wait_token(p, 9, MIO_SEC) & MIO_READABLE);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

/* Edge events beyond the capacity wait for later calls, they are not lost. */
TEST(edge_events_beyond_capacity_not_lost)
{
    mio_poll *p = test_poll();
    mio_fd sv[10][2];
    mio_event ev[3];
    int seen[10] = { 0 };
    int i, k, n, total = 0;

    for (i = 0; i < 10; i++) {
        OK(mio_socketpair(sv[i]));
        OK(mio_register(p, sv[i][0], (mio_token)i, MIO_READABLE));
        CHECK_EQ(mio_write(sv[i][1], "e", 1), 1);
    }
    for (k = 0; k < 8 && total < 10; k++) {
        n = test_wait(p, ev, 3, 100 * MIO_MSEC);
        for (i = 0; i < n; i++) {
            CHECK(ev[i].token < 10);
            CHECK_EQ(seen[ev[i].token]++, 0);   /* once per edge */
            total++;
        }
    }
    CHECK_EQ(total, 10);
    for (i = 0; i < 10; i++) {
        OK(mio_close(sv[i][0]));
        OK(mio_close(sv[i][1]));
    }
    mio_poll_free(p);
}

/* ---- hang-ups on disarmed registrations ---- */

/* How a socket pair's end hears its peer close: a hang-up both ways on a
 * Unix socket pair; on Windows the pair is TCP, and the peer's FIN closes
 * the reading side only (a write would then meet a reset). */
#ifdef _WIN32
#define PEER_GONE MIO_READ_CLOSED
#else
#define PEER_GONE (MIO_READ_CLOSED | MIO_WRITE_CLOSED)
#endif

/* Times a wait that must see nothing for `token`: it must not spin out early. */
static void check_quiet(mio_poll *p, mio_token token)
{
    mio_event ev[8];
    int64_t start = test_now_ns();
    int n = test_wait(p, ev, 8, 50 * MIO_MSEC);
    CHECK_EQ(test_flags(ev, n, token), 0);
    CHECK_EQ(n, 0);
    CHECK(test_now_ns() - start >= 50 * MIO_MSEC);
}

TEST(hangup_on_used_up_edge_does_not_spin)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 3, MIO_READABLE));
    OK(mio_close(sv[1]));
    CHECK(test_wait_token(p, 3, MIO_SEC) & MIO_READ_CLOSED);
    check_quiet(p, 3);
    OK(mio_close(sv[0]));
    mio_poll_free(p);
}

/* A used-up edge still hears the peer go away, once. */
TEST(hangup_after_used_up_edge_reported_once)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 3, MIO_WRITABLE));
    CHECK(test_wait_token(p, 3, MIO_SEC) & MIO_WRITABLE);
    check_quiet(p, 3);
    OK(mio_close(sv[1]));
    CHECK_EQ(test_wait_token(p, 3, MIO_SEC) & PEER_GONE, PEER_GONE);
    check_quiet(p, 3);
    OK(mio_close(sv[0]));
    mio_poll_free(p);
}

TEST(hangup_on_disarmed_oneshot_does_not_spin)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    char c;

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 4, MIO_READABLE | MIO_LEVEL | MIO_ONESHOT));
    CHECK_EQ(mio_write(sv[1], "o", 1), 1);
    CHECK(test_wait_token(p, 4, MIO_SEC) & MIO_READABLE);
    CHECK_EQ(mio_read(sv[0], &c, 1), 1);
    OK(mio_close(sv[1]));
    check_quiet(p, 4);
    /* Reregister re-arms: the hang-up is there to report. */
    OK(mio_reregister(p, sv[0], 4, MIO_READABLE | MIO_LEVEL | MIO_ONESHOT));
    CHECK(test_wait_token(p, 4, MIO_SEC) & MIO_READ_CLOSED);
    OK(mio_close(sv[0]));
    mio_poll_free(p);
}

/* ---- what epoll reports, every backend reports ---- */

TEST(peer_close_flags)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    uint32_t f;

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_close(sv[1]));
    f = test_wait_token(p, 1, MIO_SEC);
    CHECK_EQ(f & (MIO_READABLE | MIO_READ_CLOSED | MIO_WRITE_CLOSED), MIO_READABLE | PEER_GONE);
    CHECK_EQ(f & MIO_WRITABLE, 0);
    OK(mio_close(sv[0]));
    mio_poll_free(p);
}

TEST(peer_shutdown_write_flags)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    uint32_t f;

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[0], 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_shutdown(sv[1], MIO_SHUT_WR));
    f = test_wait_token(p, 1, MIO_SEC);
    CHECK(f & MIO_READABLE);
    CHECK_EQ(f & MIO_WRITE_CLOSED, 0);
#ifdef __linux__
    /* Elsewhere poll(2) cannot tell a half-close from data. */
    CHECK(f & MIO_READ_CLOSED);
#endif
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

#ifndef _WIN32
POSIX_TEST(pipe_reader_gone_flags)
{
    mio_poll *p = test_poll();
    mio_fd fds[2];
    uint32_t f;

    OK(mio_pipe(fds));
    OK(mio_register(p, fds[1], 1, MIO_WRITABLE | MIO_LEVEL));
    OK(mio_close(fds[0]));
    f = test_wait_token(p, 1, MIO_SEC);
    /* epoll says only EPOLLERR, as for a socket's pending error (mio.h). */
    CHECK_EQ(f & (MIO_ERROR | MIO_WRITE_CLOSED),
             MIO_ERROR | (strcmp(test_backend, "epoll") != 0 ? MIO_WRITE_CLOSED : 0));
    CHECK_EQ(f & MIO_READABLE, 0);
    CHECK_EQ(mio_write(fds[1], "x", 1), MIO_EPIPE);
    OK(mio_close(fds[1]));
    mio_poll_free(p);
}

/* ---- descriptors closed while registered ---- */

/* Makes the free number `fd` one end of a new socket pair again and returns
 * the other end. */
static mio_fd reuse_number(mio_fd fd)
{
    mio_fd sv[2];
    OK(mio_socketpair(sv));
    if (sv[0] == fd || sv[1] == fd)
        return sv[0] == fd ? sv[1] : sv[0];
    CHECK(dup2(sv[0], fd) == fd);
    OK(mio_close(sv[0]));
    return sv[1];
}

POSIX_TEST(closed_without_deregister_is_dropped)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    mio_poll *p = test_poll();
    mio_fd sv[2], fd, peer;

    OK(mio_socketpair(sv));
    fd = sv[0];
    OK(mio_register(p, fd, 1, MIO_READABLE | MIO_WRITABLE | MIO_LEVEL));
    CHECK_EQ(close(fd), 0);         /* behind the library's back */
    check_quiet(p, 1);
    check_quiet(p, 1);
    peer = reuse_number(fd);
    OK(mio_register(p, fd, 2, MIO_WRITABLE | MIO_LEVEL));
    CHECK(test_wait_token(p, 2, MIO_SEC) & MIO_WRITABLE);
    OK(mio_deregister(p, fd));
    OK(mio_close(fd));
    OK(mio_close(peer));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

POSIX_TEST(mio_close_forgets_registration)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    mio_poll *p = test_poll();
    mio_fd sv[2], fd, peer;

    OK(mio_socketpair(sv));
    fd = sv[0];
    OK(mio_register(p, fd, 1, MIO_WRITABLE | MIO_LEVEL));
    OK(mio_close(fd));
    peer = reuse_number(fd);    /* at once: no wait has looked in between */
    OK(mio_register(p, fd, 2, MIO_WRITABLE | MIO_LEVEL));
    CHECK_EQ(test_wait_token(p, 1, 20 * MIO_MSEC), 0);
    OK(mio_deregister(p, fd));
    OK(mio_close(fd));
    OK(mio_close(peer));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

POSIX_TEST(deregister_closed_fd_is_ebadf)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    mio_poll *p = test_poll();
    mio_fd sv[2], fd, peer;

    OK(mio_socketpair(sv));
    fd = sv[0];
    OK(mio_register(p, fd, 1, MIO_READABLE));
    CHECK_EQ(close(fd), 0);
    CHECK_EQ(mio_deregister(p, fd), MIO_EBADF);
    CHECK_EQ(mio_reregister(p, fd, 1, MIO_READABLE), MIO_EBADF);
    CHECK_EQ(mio_register(p, fd, 1, MIO_READABLE), MIO_EBADF);
    peer = reuse_number(fd);
    OK(mio_register(p, fd, 2, MIO_READABLE));
    CHECK_EQ(mio_register(p, fd, 2, MIO_READABLE), MIO_EEXIST);
    OK(mio_deregister(p, fd));
    CHECK_EQ(mio_deregister(p, fd), MIO_ENOENT);
    CHECK_EQ(mio_reregister(p, fd, 2, MIO_READABLE), MIO_ENOENT);
    OK(mio_close(fd));
    OK(mio_close(peer));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

#endif

/* Closes fd behind the library's back: no deregister, no mio_close. */
static void close_behind_back(mio_fd fd)
{
#ifdef _WIN32
    CHECK_EQ(closesocket(fd), 0);
#else
    CHECK_EQ(close(fd), 0);
#endif
}

/* A new UDP socket (writable at once) whose descriptor is the free value fd
 * again if the OS hands it out: POSIX takes it with dup2, Windows gives freed
 * handle values back soon, so new sockets are made until one has it (or 64
 * were tried, and the last is returned). */
static mio_fd udp_socket_at(mio_fd fd)
{
    mio_addr a;
    mio_fd s;

    OK(mio_addr_parse("127.0.0.1:0", &a));
    OK(mio_udp_bind(&a, &s));
#ifdef _WIN32
    {
        mio_fd tried[64];
        int i, n = 0;
        while (s != fd && n < 64) {
            tried[n++] = s;
            OK(mio_udp_bind(&a, &s));
        }
        for (i = 0; i < n; i++)
            OK(mio_close(tried[i]));
    }
#else
    if (s != fd) {
        CHECK(dup2(s, fd) == fd);
        OK(mio_close(s));
        s = fd;
    }
#endif
    return s;
}

/* A registration whose socket is closed behind the library's back is
 * forgotten once a wait has looked, whatever its trigger left armed (a fired
 * oneshot, a used-up edge), closed right after its event or a wait later:
 * no event for its token, not even an error, and a new socket with the same
 * descriptor value registers afresh. */
TEST(closed_behind_back_forgotten_in_every_mode)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    static const uint32_t modes[] = { MIO_LEVEL, MIO_EDGE, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT };
    int k;

    for (k = 0; k < 8; k++) {
        mio_poll *p = test_poll();
        mio_fd sv[2], fd;
        mio_event ev[8];
        int i, n, rounds;
        uint32_t seen = 0;

        OK(mio_socketpair(sv));
        OK(mio_register(p, sv[0], 1, MIO_WRITABLE | modes[k % 4]));
        CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_WRITABLE);
        if (k >= 4)
            (void)test_wait(p, ev, 8, 20 * MIO_MSEC);
        close_behind_back(sv[0]);
        check_quiet(p, 1);
        check_quiet(p, 1);
        fd = udp_socket_at(sv[0]);
        OK(mio_register(p, fd, 2, MIO_WRITABLE | MIO_LEVEL));
        for (rounds = 0; rounds < 3; rounds++) {
            n = test_wait(p, ev, 8, 50 * MIO_MSEC);
            for (i = 0; i < n; i++) {
                CHECK_EQ(ev[i].token, 2);
                seen |= ev[i].flags;
            }
        }
        CHECK(seen & MIO_WRITABLE);
        OK(mio_deregister(p, fd));
        CHECK_EQ(mio_deregister(p, fd), MIO_ENOENT);
        OK(mio_close(fd));
        OK(mio_close(sv[1]));
        mio_poll_free(p);
    }
}

/* ---- fairness ---- */

TEST(capacity_smaller_than_ready_set_rotates)
{
    mio_poll *p = test_poll();
    mio_fd sv[10][2];
    mio_event ev[3];
    int seen[10] = { 0 };
    int i, k, n;

    for (i = 0; i < 10; i++) {
        OK(mio_socketpair(sv[i]));
        OK(mio_register(p, sv[i][0], (mio_token)i, MIO_WRITABLE | MIO_LEVEL));
    }
    for (k = 0; k < 4; k++) {
        n = test_wait(p, ev, 3, MIO_SEC);
        CHECK_EQ(n, 3);
        for (i = 0; i < n; i++) {
            CHECK(ev[i].token < 10);
            seen[ev[i].token]++;
        }
    }
    for (i = 0; i < 10; i++)
        CHECK(seen[i] > 0);
    for (i = 0; i < 10; i++) {
        OK(mio_close(sv[i][0]));
        OK(mio_close(sv[i][1]));
    }
    mio_poll_free(p);
}

/* ---- wakers, signals, timeouts ---- */

TEST(waker_wakes_coalesce_into_one_event)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    mio_event ev[8];
    int n;

    OK(mio_waker_new(p, 11, &w));
    OK(mio_waker_wake(w));
    OK(mio_waker_wake(w));
    OK(mio_waker_wake(w));
    n = test_wait(p, ev, 8, MIO_SEC);
    CHECK_EQ(n, 1);
    CHECK_EQ(ev[0].token, 11);
    CHECK_EQ(ev[0].flags, MIO_READABLE);
    CHECK_EQ(test_wait(p, ev, 8, 20 * MIO_MSEC), 0);
    OK(mio_waker_wake(w));
    CHECK_EQ(test_wait_token(p, 11, MIO_SEC), MIO_READABLE);
    mio_waker_free(w);
    mio_poll_free(p);
}

#ifndef _WIN32
static void on_signal(int sig)
{
    (void)sig;
}

static void *interrupt_later(void *arg)
{
    test_sleep_ms(50);
    pthread_kill(*(pthread_t *)arg, SIGUSR1);
    return NULL;
}

POSIX_TEST(signal_interrupts_wait)
{
    mio_poll *p = test_poll();
    struct sigaction sa;
    mio_event ev[8];
    pthread_t self = pthread_self(), t;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    OK(sigaction(SIGUSR1, &sa, NULL));
    OK(pthread_create(&t, NULL, interrupt_later, &self));
    CHECK_EQ(mio_poll_wait(p, ev, 8, 10 * MIO_SEC), MIO_EINTR);
    OK(pthread_join(t, NULL));
    mio_poll_free(p);
}

#endif

TEST(timeout_never_early)
{
    mio_poll *p = test_poll();
    mio_event ev[8];
    int64_t timeouts[] = { 1, 1500 * MIO_USEC, 20 * MIO_MSEC + 1 };
    size_t i;

    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t start = test_now_ns();
        CHECK_EQ(test_wait(p, ev, 8, timeouts[i]), 0);
        CHECK(test_now_ns() - start >= timeouts[i]);
    }
    mio_poll_free(p);
}
