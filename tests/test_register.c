/* Registering descriptors: what register, reregister and deregister do to
 * the events that follow (tokens, interest, readiness already there, a
 * disarmed oneshot), every argument they refuse and what a refusal leaves
 * unchanged, descriptors closed behind the library's back, changes made by
 * other threads while a wait blocks, and one descriptor on several polls.
 * (User-space readiness has its own: test_registration.c.) */
#include "harness.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

#define R MIO_READABLE
#define W MIO_WRITABLE

/* ---- reregister ---- */

TEST(reregister_replaces_token)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    int i;

    OK(mio_register(p, s.r, 1, R | MIO_LEVEL));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    OK(mio_reregister(p, s.r, 2, R | MIO_LEVEL));
    for (i = 0; i < 3; i++)
        EXPECT_EVENT_NOT(p, 2, R, 1, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* Readiness that arrived before the reregister, and was never waited for,
 * is reported under the new token only. */
TEST(reregister_pending_readiness_carries_new_token)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R));
    test_put(s.w, "x");
    OK(mio_reregister(p, s.r, 2, R));
    EXPECT_EVENT_NOT(p, 2, R, 1, MIO_SEC);
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(reregister_writable_to_readable)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, W));
    EXPECT_EVENT(p, 1, W, MIO_SEC);
    OK(mio_reregister(p, s.r, 2, R | MIO_LEVEL));
    /* Writable all along, but no longer asked for. */
    n = test_wait(p, ev, 8, TEST_QUIET_WAIT);
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK_EQ(test_flags(ev, n, 2) & W, 0);
    test_put(s.w, "x");
    CHECK_EQ(EXPECT_EVENT_NOT(p, 2, R, 1, MIO_SEC) & W, 0);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(reregister_readable_to_writable_reports_at_once)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    uint32_t f;

    OK(mio_register(p, s.r, 1, R));
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_reregister(p, s.r, 2, W));
#ifdef _WIN32
    /* The new interest is polled asynchronously: the next wait that lasts. */
    f = test_wait_token(p, 2, MIO_SEC);
#else
    f = test_wait_token(p, 2, 0);
#endif
    CHECK(f & W);
    CHECK_EQ(f & R, 0);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(reregister_edge_to_level)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    int i;

    OK(mio_register(p, s.r, 1, R));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_reregister(p, s.r, 1, R | MIO_LEVEL));
    for (i = 0; i < 3; i++)
        EXPECT_EVENT(p, 1, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- deregister ---- */

TEST(deregister_stops_events)
{
    mio_poll *p = test_poll();
    struct test_source a = test_socket_source(), b = test_socket_source();

    OK(mio_register(p, a.r, 1, R | MIO_LEVEL));
    OK(mio_register(p, b.r, 2, R | MIO_LEVEL));
    test_put(a.w, "x");
    test_put(b.w, "x");
    OK(mio_deregister(p, a.r));
    EXPECT_EVENT_NOT(p, 2, R, 1, MIO_SEC);
    test_put(a.w, "y");
    EXPECT_NO_EVENT(p, 1, 50 * MIO_MSEC);
    test_close_source(a);
    test_close_source(b);
    mio_poll_free(p);
}

TEST(deregister_after_event_reported)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R | MIO_LEVEL));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    OK(mio_deregister(p, s.r));
    EXPECT_NO_EVENT(p, 1, 50 * MIO_MSEC);
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(register_again_after_deregister)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R));
    OK(mio_deregister(p, s.r));
    OK(mio_register(p, s.r, 2, R));
    test_put(s.w, "x");
    EXPECT_EVENT_NOT(p, 2, R, 1, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* A disarmed oneshot is still registered until deregistered. */
TEST(oneshot_disarmed_is_still_registered)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R | MIO_ONESHOT));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    CHECK_EQ(mio_register(p, s.r, 2, R), MIO_EEXIST);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(mio_reregister(p, s.r, 1, R | MIO_ONESHOT), MIO_ENOENT);
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- tokens, and several polls ---- */

TEST(tokens_round_trip)
{
    static int anchor;
    const mio_token tokens[] = { 0, 1, (mio_token)1 << 31, (mio_token)&anchor,
                                 MIO_TOKEN_RESERVED - 1 };
    enum { N = sizeof tokens / sizeof tokens[0] };
    mio_poll *p = test_poll();
    struct test_source s[N];
    mio_event ev[16];
    int i, n;

    for (i = 0; i < N; i++) {
        s[i] = test_socket_source();
        test_put(s[i].w, "x");
        OK(mio_register(p, s[i].r, tokens[i], R | MIO_LEVEL));
    }
    n = test_wait(p, ev, 16, MIO_SEC);
    for (i = 0; i < n; i++) {
        int k, known = 0;
        for (k = 0; k < N; k++)
            known |= ev[i].token == tokens[k];
        CHECK(known);
    }
    for (i = 0; i < N; i++) {
        CHECK(test_flags(ev, n, tokens[i]) & R);
        test_close_source(s[i]);
    }
    mio_poll_free(p);
}

TEST(one_source_on_two_polls)
{
    mio_poll *p = test_poll(), *q = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R | MIO_LEVEL));
    OK(mio_register(q, s.r, 2, R | MIO_LEVEL));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    EXPECT_EVENT(q, 2, R, MIO_SEC);
    OK(mio_deregister(p, s.r));
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    EXPECT_EVENT(q, 2, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
    mio_poll_free(q);
}

/* ---- refused arguments: an error, and nothing changed ---- */

TEST(reserved_token_refused)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_waker *w = NULL;

    test_put(s.w, "x");
    CHECK_EQ(mio_register(p, s.r, MIO_TOKEN_RESERVED, R), MIO_EINVAL);
    EXPECT_NO_EVENT(p, MIO_TOKEN_RESERVED, TEST_QUIET_WAIT);
    OK(mio_register(p, s.r, 1, R | MIO_LEVEL));
    CHECK_EQ(mio_reregister(p, s.r, MIO_TOKEN_RESERVED, R), MIO_EINVAL);
    CHECK_EQ(mio_waker_new(p, MIO_TOKEN_RESERVED, &w), MIO_EINVAL);
    CHECK(w == NULL);
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(bad_interest_refused)
{
    static const uint32_t bad[] = {
        0, MIO_EDGE, MIO_LEVEL, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT,
        R | 0x100u, W | (1u << 31), 0x100u, 1u << 31,
        MIO_ERROR, MIO_READ_CLOSED, MIO_WRITE_CLOSED,
        R | MIO_ERROR, R | MIO_READ_CLOSED,
        W | MIO_WRITE_CLOSED, MIO_ERROR | MIO_LEVEL, 0xffffffffu,
    };
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    size_t i;

    test_put(s.w, "x");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(mio_register(p, s.r, 1, bad[i]), MIO_EINVAL);
    /* Nothing was registered: nothing reported, and a good call succeeds. */
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_register(p, s.r, 2, R | MIO_LEVEL));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(mio_reregister(p, s.r, 3, bad[i]), MIO_EINVAL);
    /* The registration kept its token and interest. */
    EXPECT_EVENT_NOT(p, 2, R, 3, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(every_interest_combination_accepted)
{
    static const uint32_t dirs[] = {
        R, W, MIO_PRIORITY, R | W, R | MIO_PRIORITY, R | W | MIO_PRIORITY,
    };
    static const uint32_t triggers[] = {
        MIO_EDGE, MIO_LEVEL, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT,
    };
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
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
    test_close_source(s);
    mio_poll_free(p);
}

TEST(register_twice_is_eexist)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_event ev[8];
    int n;

    OK(mio_register(p, s.r, 1, R));
    CHECK_EQ(mio_register(p, s.r, 2, W | MIO_LEVEL), MIO_EEXIST);
    CHECK_EQ(mio_register(p, s.r, 1, R), MIO_EEXIST);
    /* The first registration, token and interest, is the one in force. */
    n = test_wait(p, ev, 8, TEST_QUIET_WAIT);
    CHECK_EQ(test_flags(ev, n, 2), 0);
    CHECK_EQ(test_flags(ev, n, 1) & W, 0);
    test_put(s.w, "x");
    EXPECT_EVENT_NOT(p, 1, R, 2, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(unregistered_fd_is_enoent)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    test_put(s.w, "x");
    CHECK_EQ(mio_reregister(p, s.r, 1, R), MIO_ENOENT);
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    /* The refused reregister did not register it. */
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_register(p, s.r, 1, R));
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(invalid_fd_is_ebadf)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_fd closed = s.r;
    const mio_fd bad[] = { -1, -2, INT_MIN, 1 << 20, INT_MAX };
    size_t i;

    test_close_source(s);
    CHECK_EQ(mio_register(p, closed, 1, R), MIO_EBADF);
    CHECK_EQ(mio_reregister(p, closed, 1, R), MIO_EBADF);
    CHECK_EQ(mio_deregister(p, closed), MIO_EBADF);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mio_register(p, bad[i], 1, R), MIO_EBADF);
        CHECK_EQ(mio_reregister(p, bad[i], 1, R), MIO_EBADF);
        CHECK_EQ(mio_deregister(p, bad[i]), MIO_EBADF);
    }
    /* Still a working poll. */
    s = test_socket_source();
    OK(mio_register(p, s.r, 1, R));
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

TEST(null_poll_refused)
{
    struct test_source s = test_socket_source();
    CHECK_EQ(mio_register(NULL, s.r, 1, R), MIO_EINVAL);
    CHECK_EQ(mio_reregister(NULL, s.r, 1, R), MIO_EINVAL);
    CHECK_EQ(mio_deregister(NULL, s.r), MIO_EINVAL);
    CHECK(mio_poll_backend(NULL) == NULL);
    mio_poll_free(NULL);
    test_close_source(s);
}

/* ---- a reregister the backend refuses, which Windows cannot provoke ---- */

#ifndef _WIN32
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
    const char *dir = test_tmp_dir();
    char path[512];
    mio_poll *p = test_poll();
    mio_event ev[8];
    int fd, err, n;

    snprintf(path, sizeof path, "%s/data", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "data", 4), 4);   /* readable: bytes past the offset */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    err = mio_register(p, fd, 1, R | trigger);
    if (err == MIO_EPERM)
        SKIP("%s cannot poll a regular file", test_backend);
    OK(err);
    EXPECT_EVENT(p, 1, R, MIO_SEC);

    /* No descriptor left to spare, and then the change. */
    test_fds_exhaust(16, 0);
    err = mio_reregister(p, fd, 2, R | W | trigger);
    test_fds_restore();

    if (err == 0) {
        EXPECT_EVENT(p, 2, R | W, MIO_SEC);
    } else {
        CHECK(err < 0);
        n = test_wait(p, ev, 8, trigger & MIO_ONESHOT ? 50 * MIO_MSEC : MIO_SEC);
        if (trigger & MIO_ONESHOT) {
            CHECK_EQ(n, 0);         /* still disarmed */
        } else {
            CHECK(test_flags(ev, n, 1) & R);
            CHECK_EQ(test_flags(ev, n, 1) & W, 0);
            CHECK_EQ(test_flags(ev, n, 2), 0);
        }
        CHECK_EQ(mio_register(p, fd, 3, R), MIO_EEXIST);
        /* And a change that can be made is made. */
        OK(mio_reregister(p, fd, 2, R | W | trigger));
        EXPECT_EVENT(p, 2, R | W, MIO_SEC);
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

/* ---- descriptors closed while registered ---- */

/* What a BSD kernel does at close(), libkqueue cannot see: the filters stay,
 * and the next descriptor with that number finds them. */
#define CLOSE_UNSEEN "close() leaves the filters behind, for the number's next owner"

/* How long a wait lasts that must not report a closed descriptor. */
#define CLOSED_QUIET (50 * MIO_MSEC)

#ifndef _WIN32
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
    struct test_source s = test_socket_source();
    mio_fd peer;

    OK(mio_register(p, s.r, 1, R | W | MIO_LEVEL));
    CHECK_EQ(close(s.r), 0);        /* behind the library's back */
    EXPECT_QUIET(p, CLOSED_QUIET);
    EXPECT_QUIET(p, CLOSED_QUIET);
    peer = reuse_number(s.r);
    OK(mio_register(p, s.r, 2, W | MIO_LEVEL));
    EXPECT_EVENT(p, 2, W, MIO_SEC);
    OK(mio_deregister(p, s.r));
    test_close_source(s);
    OK(mio_close(peer));
    mio_poll_free(p);
}

POSIX_TEST(mio_close_forgets_registration)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_fd peer;

    OK(mio_register(p, s.r, 1, W | MIO_LEVEL));
    OK(mio_close(s.r));
    peer = reuse_number(s.r);   /* at once: no wait has looked in between */
    OK(mio_register(p, s.r, 2, W | MIO_LEVEL));
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_deregister(p, s.r));
    test_close_source(s);
    OK(mio_close(peer));
    mio_poll_free(p);
}

POSIX_TEST(deregister_closed_fd_is_ebadf)
{
    TEST_NOT_ON_LIBKQUEUE(CLOSE_UNSEEN);
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_fd peer;

    OK(mio_register(p, s.r, 1, R));
    CHECK_EQ(close(s.r), 0);
    CHECK_EQ(mio_deregister(p, s.r), MIO_EBADF);
    CHECK_EQ(mio_reregister(p, s.r, 1, R), MIO_EBADF);
    CHECK_EQ(mio_register(p, s.r, 1, R), MIO_EBADF);
    peer = reuse_number(s.r);
    OK(mio_register(p, s.r, 2, R));
    CHECK_EQ(mio_register(p, s.r, 2, R), MIO_EEXIST);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    CHECK_EQ(mio_reregister(p, s.r, 2, R), MIO_ENOENT);
    test_close_source(s);
    OK(mio_close(peer));
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
        struct test_source s = test_socket_source();
        mio_event ev[8];
        int i, n, rounds;
        uint32_t seen = 0;
        mio_fd fd;

        OK(mio_register(p, s.r, 1, W | modes[k % 4]));
        EXPECT_EVENT(p, 1, W, MIO_SEC);
        if (k >= 4)
            (void)test_wait(p, ev, 8, TEST_QUIET_WAIT);
        close_behind_back(s.r);
        EXPECT_QUIET(p, CLOSED_QUIET);
        EXPECT_QUIET(p, CLOSED_QUIET);
        fd = udp_socket_at(s.r);
        OK(mio_register(p, fd, 2, W | MIO_LEVEL));
        for (rounds = 0; rounds < 3; rounds++) {
            n = test_wait(p, ev, 8, 50 * MIO_MSEC);
            for (i = 0; i < n; i++) {
                CHECK_EQ(ev[i].token, 2);
                seen |= ev[i].flags;
            }
        }
        CHECK(seen & W);
        OK(mio_deregister(p, fd));
        CHECK_EQ(mio_deregister(p, fd), MIO_ENOENT);
        OK(mio_close(fd));
        OK(mio_close(s.w));
        mio_poll_free(p);
    }
}

/* ---- changes from another thread while a wait blocks ---- */

struct helper {
    mio_poll *p;
    struct test_source s;   /* s.r is registered or deregistered, s.w written */
    mio_waker *waker;
    atomic_int done;
};

static void *register_later(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(50);
    test_put(h->s.w, "x");
    OK(mio_register(h->p, h->s.r, 42, R));
    return NULL;
}

TEST(register_from_thread_wakes_wait)
{
    struct helper h = { 0 };
    mio_event ev[8];
    pthread_t t;
    int64_t start;
    int n;

    h.p = test_poll();
    h.s = test_socket_source();
    OK(pthread_create(&t, NULL, register_later, &h));
    start = test_now_ns();
    n = test_wait(h.p, ev, 8, 10 * MIO_SEC);
    CHECK(test_now_ns() - start < 5 * MIO_SEC);
    CHECK(test_flags(ev, n, 42) & R);
    OK(pthread_join(t, NULL));
    test_close_source(h.s);
    mio_poll_free(h.p);
}

static void *deregister_later(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(50);
    OK(mio_deregister(h->p, h->s.r));
    test_put(h->s.w, "x");
    test_sleep_ms(20);
    OK(mio_waker_wake(h->waker));
    return NULL;
}

TEST(deregister_from_thread_during_wait)
{
    struct helper h = { 0 };
    mio_event ev[8];
    pthread_t t;
    int n;

    h.p = test_poll();
    h.s = test_socket_source();
    OK(mio_register(h.p, h.s.r, 1, R | MIO_LEVEL));
    OK(mio_waker_new(h.p, 2, &h.waker));
    OK(pthread_create(&t, NULL, deregister_later, &h));
    n = test_wait(h.p, ev, 8, 10 * MIO_SEC);
    OK(pthread_join(t, NULL));
    CHECK_EQ(test_flags(ev, n, 1), 0);
    CHECK_EQ(test_flags(ev, n, 2), R);
    EXPECT_NO_EVENT(h.p, 1, TEST_QUIET_WAIT);
    mio_waker_free(h.waker);
    test_close_source(h.s);
    mio_poll_free(h.p);
}

/* What deregister promises when another thread waits: no wait that starts
 * after mio_deregister returns reports the fd.  A level registration of a
 * readable socket is reported by every wait until then. */
static void *deregister_soon(void *arg)
{
    struct helper *h = arg;
    test_sleep_ms(20);
    OK(mio_deregister(h->p, h->s.r));
    atomic_store(&h->done, 1);
    return NULL;
}

TEST(no_wait_after_deregister_reports_it)
{
    int round;

    for (round = 0; round < 20; round++) {
        struct helper h = { 0 };
        pthread_t t;
        int waits_after = 0;

        h.p = test_poll();
        h.s = test_socket_source();
        test_put(h.s.w, "x");
        OK(mio_register(h.p, h.s.r, 1, R | MIO_LEVEL));
        CHECK_EQ(pthread_create(&t, NULL, deregister_soon, &h), 0);
        while (waits_after < 5) {
            mio_event ev[4];
            int after = atomic_load(&h.done), n;
            n = test_wait(h.p, ev, 4, round % 2 ? MIO_MSEC : 0);
            if (after) {
                CHECK_EQ(test_flags(ev, n, 1), 0);
                waits_after++;
            }
        }
        CHECK_EQ(pthread_join(t, NULL), 0);
        test_close_source(h.s);
        mio_poll_free(h.p);
    }
}

/* Registrations come and go (the backend's arrays grow and shrink) while the
 * other thread keeps waiting; every event must carry a token in use. */
#define CHURN_ROUNDS 200
#define CHURN_BASE 1000

static void *churn(void *arg)
{
    struct helper *h = arg;
    struct test_source s[CHURN_ROUNDS];
    int i;

    test_sleep_ms(20);   /* let the other thread block first */
    for (i = 0; i < CHURN_ROUNDS; i++) {
        s[i] = test_socket_source();
        OK(mio_register(h->p, s[i].r, CHURN_BASE + (mio_token)i, W | MIO_LEVEL));
        if (i % 3 == 2) {   /* keep some, drop others: slots swap around */
            OK(mio_deregister(h->p, s[i - 1].r));
            test_close_source(s[i - 1]);
            s[i - 1].r = MIO_INVALID_FD;
        }
    }
    for (i = 0; i < CHURN_ROUNDS; i++) {
        if (s[i].r != MIO_INVALID_FD) {
            OK(mio_deregister(h->p, s[i].r));
            test_close_source(s[i]);
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

/* Internal wake-ups (another thread changing registrations) are not events
 * and do not cut the caller's timeout short. */
static void *change_registrations(void *arg)
{
    struct helper *h = arg;
    mio_waker *w;
    test_sleep_ms(10);
    OK(mio_register(h->p, h->s.r, 3, R));
    test_sleep_ms(10);
    OK(mio_waker_new(h->p, 4, &w));
    test_sleep_ms(10);
    mio_waker_free(w);
    OK(mio_deregister(h->p, h->s.r));
    return NULL;
}

TEST(timeout_not_shortened_by_registration_changes)
{
    struct helper h = { 0 };
    pthread_t t;

    h.p = test_poll();
    h.s = test_socket_source();
    CHECK_EQ(pthread_create(&t, NULL, change_registrations, &h), 0);
    EXPECT_QUIET(h.p, 100 * MIO_MSEC);
    CHECK_EQ(pthread_join(t, NULL), 0);
    test_close_source(h.s);
    mio_poll_free(h.p);
}

/* A thread pool's pattern: one thread waits and hands each event to another,
 * which handles it and re-arms the oneshot registration, mostly while the
 * wait is blocked.  The source is readable and writable throughout, so each
 * arm can fire both ways: the whole registration is disarmed by its first
 * event, and no wait reports the token twice between two re-arms (both
 * directions in one wait is one report). */
#define REARM_TOKEN 77
#define REARM_INTEREST (R | W | MIO_ONESHOT)

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
    struct test_source s = test_socket_source();
    mio_event ev[8];
    pthread_t t;

    memset(&r, 0, sizeof r);
    r.p = test_poll();
    OK(pthread_mutex_init(&r.lock, NULL));
    OK(pthread_cond_init(&r.cond, NULL));
    r.fd = s.r;
    test_put(s.w, "r");     /* never read: readable throughout */
    atomic_store(&r.armed, 1);
    OK(mio_register(r.p, r.fd, REARM_TOKEN, REARM_INTEREST));
    OK(pthread_create(&t, NULL, rearm_each_event, &r));
    test_watchdog(60);
    for (i = 0; i < rounds; i++) {
        int n = test_wait(r.p, ev, 8, 5 * MIO_SEC);
        CHECK(n > 0);       /* every arm is reported */
        CHECK(test_flags(ev, n, REARM_TOKEN) & (R | W));
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
    EXPECT_NO_EVENT(r.p, REARM_TOKEN, 50 * MIO_MSEC);
    test_watchdog(0);
    test_close_source(s);
    OK(pthread_cond_destroy(&r.cond));
    OK(pthread_mutex_destroy(&r.lock));
    mio_poll_free(r.p);
}
