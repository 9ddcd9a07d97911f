/* The Windows backend's own machinery, which the portable tests cannot
 * reach: AFD calls that fail (made to fail through mio__afd_fail_next), a
 * socket polled twice at once (watched through the trace), and the search
 * for a socket's base handle behind layered providers (a stand-in provider).
 * Each is a WINDOWS_TEST: other systems build this file with no test in it. */
#include "harness.h"

#ifdef _WIN32
#include "sys/afd.h"

/* A socket pair whose read end is registered as `token` with `interest`. */
static struct test_source pair_on(mio_poll *p, mio_token token, uint32_t interest)
{
    struct test_source s = test_socket_source();
    OK(mio_register(p, s.r, token, interest));
    return s;
}

/* A pair registered for reading whose poll is in flight, and the next
 * `cancels` cancels of it made to fail. */
static struct test_source polled_pair(mio_poll *p, int cancels)
{
    struct test_source s = pair_on(p, 1, MIO_READABLE);
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    mio__afd_fail_next(0, cancels);
    return s;
}

static void close_pair(mio_poll *p, struct test_source s)
{
    OK(mio_deregister(p, s.r));
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- AFD calls that fail ---- */

/* Polls that cannot be issued are reported with MIO_ERROR, once each, and
 * those past the caller's capacity come with later waits. */
WINDOWS_TEST(poll_failures_beyond_capacity_all_reported)
{
    mio_poll *p = test_poll();
    struct test_source s[3];
    mio_event ev[8];
    int seen[3] = { 0 }, errors[3] = { 0 };
    int i, k, n;

    for (i = 0; i < 3; i++)
        s[i] = pair_on(p, (mio_token)i, MIO_WRITABLE | MIO_LEVEL);
    /* Each reported once: each has its next poll waiting for a wait. */
    for (k = 0; k < 20 && !(seen[0] && seen[1] && seen[2]); k++) {
        n = test_wait(p, ev, 8, 100 * MIO_MSEC);
        for (i = 0; i < n; i++)
            seen[ev[i].token]++;
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    mio__afd_fail_next(3, 0);
    for (k = 0; k < 10; k++) {
        n = test_wait(p, ev, 1, 20 * MIO_MSEC);
        if (n == 1 && (ev[0].flags & MIO_ERROR)) {
            CHECK_EQ(ev[0].flags, MIO_ERROR);
            errors[ev[0].token]++;
        }
    }
    mio__afd_fail_next(0, 0);
    for (i = 0; i < 3; i++)
        CHECK_EQ(errors[i], 1);
    for (i = 0; i < 3; i++) {
        OK(mio_deregister(p, s[i].r));
        test_close_source(s[i]);
    }
    mio_poll_free(p);
}

/* A wider interest cancels the poll in flight; a cancel that fails is tried
 * again by the next wait, and the wider poll follows. */
WINDOWS_TEST(failed_cancel_is_retried)
{
    mio_poll *p = test_poll();
    struct test_source s = polled_pair(p, 1);

    OK(mio_reregister(p, s.r, 1, MIO_READABLE | MIO_WRITABLE));
    EXPECT_EVENT(p, 1, MIO_WRITABLE, MIO_SEC);
    close_pair(p, s);
}

/* A cancel that fails again is reported with MIO_ERROR, once; the poll in
 * flight keeps serving what it asked for, and once it completes the wider
 * interest is polled. */
WINDOWS_TEST(cancel_failing_twice_reported_once)
{
    mio_poll *p = test_poll();
    struct test_source s = polled_pair(p, 2);

    OK(mio_reregister(p, s.r, 1, MIO_READABLE | MIO_WRITABLE));
    CHECK_EQ(test_wait_token(p, 1, MIO_SEC), MIO_ERROR);
    EXPECT_NO_EVENT(p, 1, 50 * MIO_MSEC);
    test_put(s.w, "x");
    EXPECT_EVENT(p, 1, MIO_READABLE | MIO_WRITABLE, MIO_SEC);
    close_pair(p, s);
}

/* Deregistering cancels the socket's poll; a cancel that fails is tried
 * again by the next wait, so that a new registration of the socket, whose
 * poll waits for the old one's completion, is not held back for good. */
WINDOWS_TEST(failed_cancel_on_deregister_is_retried)
{
    mio_poll *p = test_poll();
    struct test_source s = polled_pair(p, 1);

    OK(mio_deregister(p, s.r));
    OK(mio_register(p, s.r, 2, MIO_WRITABLE));
    EXPECT_EVENT(p, 2, MIO_WRITABLE, MIO_SEC);
    close_pair(p, s);
}

/* ---- one poll per socket at a time ---- */

/* Polls issued and completions dequeued for one socket, from the backend's
 * trace lines (iocp.c writes them in submit and complete). */
static mio_fd watched;
static int in_flight, most_in_flight, issued;

static void count_polls(int level, const char *msg, void *ud)
{
    unsigned long long fd;
    unsigned long events;
    int err;

    (void)level;
    (void)ud;
    if (sscanf(msg, "iocp: socket %llu: poll of AFD events %lx issued: %d", &fd, &events,
               &err) == 3) {
        if (fd == (unsigned long long)watched && err == 0) {
            issued++;
            if (++in_flight > most_in_flight)
                most_in_flight = in_flight;
        }
    } else if (sscanf(msg, "iocp: socket %llu:", &fd) == 1 && strstr(msg, ": AFD events ") != NULL) {
        if (fd == (unsigned long long)watched)
            in_flight--;
    }
}

/* Deregistering cancels the socket's poll; registering it again at once
 * must not issue a second poll beside the cancelled one (AFD may lose
 * events with one socket in two polls): the new poll waits for the old
 * one's completion.  Events still come, for the new token. */
WINDOWS_TEST(reregistered_socket_never_polled_twice)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    char c;
    int i;

    watched = s.r;
    mio_set_log(count_polls, NULL);
    for (i = 0; i < 20; i++) {
        OK(mio_register(p, s.r, (mio_token)i, MIO_READABLE));
        OK(mio_deregister(p, s.r));
        OK(mio_register(p, s.r, (mio_token)(100 + i), MIO_READABLE));
        test_put(s.w, "x");
        EXPECT_EVENT(p, (mio_token)(100 + i), MIO_READABLE, MIO_SEC);
        CHECK_EQ(mio_read(s.r, &c, 1), 1);
        OK(mio_deregister(p, s.r));
    }
    mio_set_log(NULL, NULL);
    CHECK(issued >= 40);
    CHECK_EQ(most_in_flight, 1);
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- the base handle behind layered service providers ---- */

/* A stand-in for a chain of providers over sockets 100, 200, ...: each
 * answers the four requests as its entry in `layers` says (0: fail, else
 * the socket it names). */
struct layer {
    SOCKET s;
    SOCKET base, bsp_select, bsp_poll, bsp;
};

static const struct layer *layers;
static int asked;

static int fake_ioctl(SOCKET s, DWORD code, SOCKET *out)
{
    const struct layer *l;
    SOCKET r = 0;

    asked++;
    for (l = layers; l->s != 0; l++)
        if (l->s == s)
            break;
    if (l->s == 0)
        return MIO_EBADF;   /* no such socket */
    switch (code) {
    case MIO_SIO_BASE_HANDLE: r = l->base; break;
    case MIO_SIO_BSP_HANDLE_SELECT: r = l->bsp_select; break;
    case MIO_SIO_BSP_HANDLE_POLL: r = l->bsp_poll; break;
    case MIO_SIO_BSP_HANDLE: r = l->bsp; break;
    }
    if (r == 0)
        return MIO_ENOSYS;
    *out = r;
    return 0;
}

static int base_of(const struct layer *chain, SOCKET s, SOCKET *base)
{
    layers = chain;
    asked = 0;
    *base = INVALID_SOCKET;
    return mio__afd_base_socket_via(s, fake_ioctl, base);
}

WINDOWS_TEST(base_socket_found_past_layered_providers)
{
    /* No provider in the way. */
    static const struct layer plain[] = { { 100, 100, 100, 100, 100 }, { 0 } };
    /* Providers that refuse SIO_BASE_HANDLE and answer the select() request
     * with the socket itself (Komodia does), over a second such layer:
     * unwrapped one layer at a time down to the base. */
    static const struct layer komodia[] = {
        { 100, 0, 100, 200, 0 }, { 200, 0, 200, 300, 0 }, { 300, 300, 0, 0, 0 }, { 0 }
    };
    /* One answering only the plain provider request. */
    static const struct layer bsp_only[] = { { 100, 0, 0, 0, 200 }, { 200, 200, 0, 0, 0 }, { 0 } };
    /* One answering the select() request truthfully. */
    static const struct layer select_only[] = { { 100, 0, 200, 0, 0 }, { 200, 200, 0, 0, 0 }, { 0 } };
    /* Ones that answer everything with the socket itself, or go round in a
     * circle: an error (SIO_BASE_HANDLE's), not a loop. */
    static const struct layer itself[] = { { 100, 0, 100, 100, 100 }, { 0 } };
    static const struct layer circle[] = { { 100, 0, 200, 0, 0 }, { 200, 0, 100, 0, 0 }, { 0 } };
    SOCKET base;

    OK(base_of(plain, 100, &base));
    CHECK_EQ(base, 100);
    CHECK_EQ(asked, 1);
    OK(base_of(komodia, 100, &base));
    CHECK_EQ(base, 300);
    OK(base_of(bsp_only, 100, &base));
    CHECK_EQ(base, 200);
    OK(base_of(select_only, 100, &base));
    CHECK_EQ(base, 200);
    CHECK_EQ(base_of(itself, 100, &base), MIO_ENOSYS);
    CHECK_EQ(base_of(circle, 100, &base), MIO_ENOSYS);
    CHECK(asked < 100);
    /* Not a socket at all: no provider to look past. */
    CHECK_EQ(base_of(plain, 999, &base), MIO_EBADF);
    CHECK_EQ(asked, 1);
}

#endif
