/* Triggers as mio.h describes them: edge, level and oneshot on sockets and
 * pipes, short reads and writes that count as drains, the emulated edge's
 * re-arm by each I/O call that says MIO_EAGAIN (from any thread, taking no
 * lock of another poll), the readiness flags a hang-up or urgent data
 * brings, and hang-ups on registrations whose edge is used up or whose
 * oneshot fired.  Most tests are scripts (a table of steps, each with what
 * the waits must report) run over a socket pair and, off Windows, a pipe. */
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* No SIGPIPE to keep away where the flag is missing (Windows). */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define R MIO_READABLE
#define W MIO_WRITABLE
#define RC MIO_READ_CLOSED
#define WC MIO_WRITE_CLOSED

/* How a socket pair's end hears its peer close: a hang-up both ways on a
 * Unix socket pair; on Windows the pair is TCP, and the peer's FIN closes
 * the reading side only (a write would then meet a reset). */
#ifdef _WIN32
#define PEER_GONE RC
#else
#define PEER_GONE (RC | WC)
#endif

/* ---- scripts ----
 * A script registers one end of a source (token 1) with the interest its
 * test gives, acts on the source and checks each wait. */

enum op {
    OP_END, OP_REGISTER_R, OP_REGISTER_W, OP_REREGISTER, OP_PUT, OP_READ, OP_READ_ONE,
    OP_DRAIN, OP_DRAIN_WRITTEN, OP_FILL, OP_SHORT_WRITE, OP_HANG_UP, OP_SHUTDOWN,
    OP_WRITE_FAILS, OP_EXPECT, OP_EXPECT_NOW, OP_EXACTLY, OP_NO_EVENT, OP_QUIET,
};

struct step {
    enum op op;
    uint32_t flags, mask;
    const char *text;
    int n;
};

/* The steps, and what each checks. */
#define REGISTER_R       { .op = OP_REGISTER_R }  /* register the read end */
#define REGISTER_W       { .op = OP_REGISTER_W }  /* register the write end */
#define REREGISTER       { .op = OP_REREGISTER }  /* the same interest again: re-arms */
#define REREGISTER_AS(t) { .op = OP_REREGISTER, .n = (t) }  /* ... under token t */
#define PUT(s)           { .op = OP_PUT, .text = (s) }  /* write s to the write end */
#define READ(k)          { .op = OP_READ, .n = (k) }  /* a read with room for 64: k bytes */
#define READ_ONE         { .op = OP_READ_ONE }  /* a read of one byte: some may be left */
#define DRAIN(k)         { .op = OP_DRAIN, .n = (k) }  /* read until MIO_EAGAIN: k bytes */
#define DRAIN_SOME       { .op = OP_DRAIN, .n = -1 }  /* ... some bytes */
#define DRAIN_WRITTEN    { .op = OP_DRAIN_WRITTEN }  /* ... what the last write wrote, at least */
#define FILL             { .op = OP_FILL }  /* write until MIO_EAGAIN */
#define SHORT_WRITE      { .op = OP_SHORT_WRITE }  /* one write of more than fits: short */
#define HANG_UP          { .op = OP_HANG_UP }  /* close the write end */
#define SHUTDOWN         { .op = OP_SHUTDOWN }  /* shut the write end's writing */
#define WRITE_FAILS      { .op = OP_WRITE_FAILS }  /* a write to the registered end fails */
#define EXPECT(f)        { .op = OP_EXPECT, .flags = (f), .n = 1 }  /* f, within TEST_LONG_WAIT */
#define EXPECT_EACH(f, k) { .op = OP_EXPECT, .flags = (f), .n = (k) }  /* ... from k waits */
#define EXPECT_NOW(f)    { .op = OP_EXPECT_NOW, .flags = (f) }  /* f, from a wait of no time */
#define EXACTLY(f, m)    { .op = OP_EXACTLY, .flags = (f), .mask = (m) }  /* f, none else of m */
#define NO_EVENT         { .op = OP_NO_EVENT }  /* a short wait: nothing for the token */
#define NO_EVENT_OF(m)   { .op = OP_NO_EVENT, .mask = (m) }  /* ... nothing of m */
#define QUIET            { .op = OP_QUIET }  /* 50 ms of nothing at all, and no spinning */
#define END              { .op = OP_END }

/* Where a failing script was, said on the way out. */
static const char *script_at;
static int step_at;

static void say_where(void)
{
    if (script_at != NULL)
        fprintf(stderr, "(in the script of %s, step %d)\n", script_at, step_at);
}

#define RUN(steps, interest, source) run(#steps, steps, interest, source)

static void run(const char *name, const struct step *steps, uint32_t interest,
                struct test_source s)
{
    enum { BIG = 4 << 20 };
    mio_poll *p = test_poll();
    mio_token token = 1;
    mio_fd fd = MIO_INVALID_FD;
    size_t written = 0;
    bool w_open = true;
    uint32_t f;
    char buf[64];
    int i;

    script_at = name;
    atexit(say_where);
    for (step_at = 0; steps[step_at].op != OP_END; step_at++) {
        const struct step *st = &steps[step_at];
        switch (st->op) {
        case OP_END:
            break;
        case OP_REGISTER_R:
        case OP_REGISTER_W:
            fd = st->op == OP_REGISTER_R ? s.r : s.w;
            OK(mio_register(p, fd, token, interest));
            break;
        case OP_REREGISTER:
            if (st->n != 0)
                token = (mio_token)st->n;
            OK(mio_reregister(p, fd, token, interest));
            break;
        case OP_PUT:
            test_put(s.w, st->text);
            break;
        case OP_READ:
            CHECK_EQ(mio_read(s.r, buf, sizeof buf), st->n);
            break;
        case OP_READ_ONE:
            CHECK_EQ(mio_read(s.r, buf, 1), 1);
            break;
        case OP_DRAIN:
            if (st->n >= 0)
                CHECK_EQ(test_drain(s.r), st->n);
            else
                CHECK(test_drain(s.r) > 0);
            break;
        case OP_DRAIN_WRITTEN:
            CHECK(test_drain(s.r) >= written);
            break;
        case OP_FILL:
            test_fill(s.w);
            break;
        case OP_SHORT_WRITE: {
            char *big = calloc(1, BIG);
            ssize_t n;
            CHECK(big != NULL);
            n = mio_write(s.w, big, BIG);
            CHECK(n > 0 && n < BIG);
            written = (size_t)n;
            free(big);
            break;
        }
        case OP_HANG_UP:
            OK(mio_close(s.w));
            w_open = false;
            break;
        case OP_SHUTDOWN:
            OK(mio_shutdown(s.w, MIO_SHUT_WR));
            break;
        case OP_WRITE_FAILS: {
            ssize_t err = mio_write(fd, "x", 1);
            CHECK(err == MIO_EPIPE || err == MIO_ECONNRESET);   /* reset: on Windows */
            break;
        }
        case OP_EXPECT:
            for (i = 0; i < st->n; i++)
                EXPECT_EVENT(p, token, st->flags, TEST_LONG_WAIT);
            break;
        case OP_EXPECT_NOW:
            EXPECT_EVENT(p, token, st->flags, 0);
            break;
        case OP_EXACTLY:
            f = EXPECT_EVENT(p, token, st->flags, TEST_LONG_WAIT);
            CHECK_EQ(f & st->mask, st->flags);
            break;
        case OP_NO_EVENT:
            if (st->mask == 0) {
                EXPECT_NO_EVENT(p, token, TEST_QUIET_WAIT);
            } else {
                mio_event ev[8];
                int n = test_wait(p, ev, 8, TEST_QUIET_WAIT);
                CHECK_EQ(test_flags(ev, n, token) & st->mask, 0);
            }
            break;
        case OP_QUIET:
            EXPECT_QUIET(p, 50 * MIO_MSEC);
            break;
        }
    }
    script_at = NULL;
    OK(mio_close(s.r));
    if (w_open)
        OK(mio_close(s.w));
    mio_poll_free(p);
}

/* ---- edge ---- */

/* Once per rise: no new event while the data stays, nor after a drain with
 * nothing new; new data after a drain to MIO_EAGAIN is a new rise. */
static const struct step edge_read_once_per_rise[] = {
    REGISTER_R, NO_EVENT, PUT("a"), EXPECT(R), NO_EVENT,
    DRAIN(1), NO_EVENT, PUT("bc"), EXPECT(R), NO_EVENT,
    DRAIN(2), END
};

TEST(edge_socket_reports_once_per_rise)
{
    RUN(edge_read_once_per_rise, R, test_socket_source());
}

/* A write side: writable once, then again only after it was full (MIO_EAGAIN
 * from mio_write) and the peer made room, round after round. */
static const struct step edge_write_once_per_rise[] = {
    REGISTER_W, EXPECT(W), NO_EVENT,
    FILL, NO_EVENT, DRAIN_SOME, EXPECT(W), NO_EVENT,
    FILL, NO_EVENT, DRAIN_SOME, EXPECT(W), NO_EVENT,
    FILL, NO_EVENT, DRAIN_SOME, EXPECT(W), NO_EVENT, END
};

TEST(edge_writable_reports_once_per_rise)
{
    RUN(edge_write_once_per_rise, W, test_socket_source());
}

/* A short write drains the write side as MIO_EAGAIN does: once the peer
 * makes room, WRITABLE comes again, with no call in between that says
 * MIO_EAGAIN (mio.h: "keep the rest for the next WRITABLE"). */
static const struct step edge_short_write[] = {
    REGISTER_W, EXPECT(W), SHORT_WRITE, DRAIN_WRITTEN, EXPECT(W), END
};

TEST(edge_short_write_reports_writable_again)
{
    RUN(edge_short_write, W, test_socket_source());
}

/* A short read of a stream drains it too: the next arrival is a new event
 * without a read that says MIO_EAGAIN. */
static const struct step edge_short_read[] = {
    REGISTER_R,
    PUT("abc"), EXPECT(R), READ(3),
    PUT("abc"), EXPECT(R), READ(3),
    PUT("abc"), EXPECT(R), READ(3), END
};

TEST(edge_short_read_counts_as_drained)
{
    RUN(edge_short_read, R, test_socket_source());
}

/* Both directions on one registration: both reported (perhaps in two events
 * of the batch), each once per rise. */
static const struct step edge_both_directions[] = {
    REGISTER_R, EXPECT(W), PUT("x"), EXPECT(R), DRAIN(1),
    NO_EVENT_OF(R), END
};

TEST(edge_read_and_write_on_one_registration)
{
    RUN(edge_both_directions, R | W, test_socket_source());
}

/* Reregister re-arms a used-up edge, and readiness still there is reported
 * (under the new token). */
static const struct step edge_reregistered[] = {
    REGISTER_R, PUT("a"), EXPECT(R), NO_EVENT,
    REREGISTER_AS(9), EXPECT(R), END
};

TEST(edge_reregister_reports_present_readiness)
{
    RUN(edge_reregistered, R, test_socket_source());
}

/* ---- level ---- */

/* Every wait while ready, a partial read leaving it ready; none once drained. */
static const struct step level_read_every_wait[] = {
    REGISTER_R, NO_EVENT, PUT("abc"), EXPECT_EACH(R, 5),
    READ_ONE, EXPECT(R), DRAIN(2), NO_EVENT, END
};

TEST(level_socket_reports_every_wait)
{
    RUN(level_read_every_wait, R | MIO_LEVEL, test_socket_source());
}

static const struct step level_write_every_wait[] = {
    REGISTER_W, EXPECT_EACH(W, 5), FILL, NO_EVENT, END
};

TEST(level_writable_socket_reports_every_wait)
{
    RUN(level_write_every_wait, W | MIO_LEVEL, test_socket_source());
}

/* ---- oneshot ---- */

/* Disarmed after one event: nothing while ready, nothing for new data,
 * nothing after a drain to MIO_EAGAIN and more data.  Re-armed, readiness
 * still present is reported at once, once; re-armed with nothing ready, the
 * next data is. */
static const struct step oneshot_until_reregister[] = {
    REGISTER_R, PUT("a"), EXPECT(R), NO_EVENT,
    PUT("b"), NO_EVENT, DRAIN(2), PUT("c"), NO_EVENT,
    REREGISTER, EXPECT_NOW(R), NO_EVENT, DRAIN(1),
    REREGISTER, NO_EVENT, PUT("d"), EXPECT(R), NO_EVENT, END
};

TEST(oneshot_socket_reports_once_until_reregister)
{
    RUN(oneshot_until_reregister, R | MIO_ONESHOT, test_socket_source());
}

TEST(oneshot_level_reports_once_until_reregister)
{
    RUN(oneshot_until_reregister, R | MIO_ONESHOT | MIO_LEVEL, test_socket_source());
}

/* A oneshot event disarms the whole registration, not one direction. */
TEST(oneshot_disarms_every_direction)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 1, R | W | MIO_ONESHOT));
    EXPECT_EVENT(p, 1, W, MIO_SEC);
    test_put(s.w, "x");
    EXPECT_NO_EVENT(p, 1, TEST_QUIET_WAIT);
    OK(mio_reregister(p, s.r, 1, R | MIO_ONESHOT));
    EXPECT_EVENT(p, 1, R, MIO_SEC);
    test_close_source(s);
    mio_poll_free(p);
}

/* ---- a source ready before it is registered: reported at once ---- */

static const struct step ready_at_register[] = {
    PUT("x"), REGISTER_R, EXPECT_NOW(R), END
};

TEST(register_ready_socket_reports_at_once)
{
    RUN(ready_at_register, R | MIO_EDGE, test_socket_source());
}

TEST(register_ready_level_reports_at_once)
{
    RUN(ready_at_register, R | MIO_LEVEL, test_socket_source());
}

TEST(register_ready_oneshot_reports_at_once)
{
    RUN(ready_at_register, R | MIO_ONESHOT, test_socket_source());
}

/* ---- the same on pipes, which Windows lacks ---- */

#ifndef _WIN32
POSIX_TEST(edge_pipe_reports_once_per_rise)
{
    RUN(edge_read_once_per_rise, R, test_pipe_source());
}

POSIX_TEST(level_pipe_reports_every_wait)
{
    RUN(level_read_every_wait, R | MIO_LEVEL, test_pipe_source());
}

POSIX_TEST(level_writable_pipe_reports_every_wait)
{
    RUN(level_write_every_wait, W | MIO_LEVEL, test_pipe_source());
}

POSIX_TEST(edge_short_pipe_read_counts_as_drained)
{
    RUN(edge_short_read, R, test_pipe_source());
}

POSIX_TEST(oneshot_pipe_reports_once_until_reregister)
{
    RUN(oneshot_until_reregister, R | MIO_ONESHOT, test_pipe_source());
}

POSIX_TEST(register_ready_pipe_reports_at_once)
{
    RUN(ready_at_register, R | MIO_EDGE, test_pipe_source());
}
#endif

/* ---- readiness flags ---- */

/* The peer's close: readable (the end of the stream) and closed, and no
 * longer writable. */
static const struct step peer_closed[] = {
    REGISTER_R, HANG_UP, EXACTLY(R | PEER_GONE, R | W | RC | WC), END
};

TEST(peer_close_flags)
{
    RUN(peer_closed, R | MIO_LEVEL, test_socket_source());
}

/* The peer's shutdown of its writing: readable, the write side still open.
 * Only Linux's poll(2) tells a half-close from data. */
static const struct step peer_shut_down[] = {
    REGISTER_R, SHUTDOWN,
#ifdef __linux__
    EXACTLY(R | RC, R | RC | WC),
#else
    EXACTLY(R, R | WC),
#endif
    END
};

TEST(peer_shutdown_write_flags)
{
    RUN(peer_shut_down, R | MIO_LEVEL, test_socket_source());
}

/* Closed and error flags come without being asked for, after a writable
 * edge that was used up and nothing written since (an idle connection that
 * only watches for writability); the write then fails.  test_hang_up resets
 * the connection on Windows. */
TEST(closed_flags_reported_without_interest)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    ssize_t err;

    OK(mio_register(p, s.r, 1, W));
    EXPECT_EVENT(p, 1, W, MIO_SEC);
    test_hang_up(s.w);
    EXPECT_ANY(p, 1, WC | MIO_ERROR, TEST_LONG_WAIT);
    err = mio_write(s.r, "x", 1);
    CHECK(err == MIO_EPIPE || err == MIO_ECONNRESET);   /* reset: on Windows */
    OK(mio_deregister(p, s.r));
    OK(mio_close(s.r));
    mio_poll_free(p);
}

#ifndef _WIN32
POSIX_TEST(pipe_reader_gone_flags)
{
    mio_poll *p = test_poll();
    struct test_source s = test_pipe_source();
    uint32_t f;

    OK(mio_register(p, s.w, 1, W | MIO_LEVEL));
    OK(mio_close(s.r));
    f = EXPECT_EVENT(p, 1, MIO_ERROR, MIO_SEC);
    /* epoll says only EPOLLERR, as for a socket's pending error (mio.h). */
    CHECK_EQ(f & (MIO_ERROR | WC), MIO_ERROR | (strcmp(test_backend, "epoll") != 0 ? WC : 0));
    CHECK_EQ(f & R, 0);
    CHECK_EQ(mio_write(s.w, "x", 1), MIO_EPIPE);
    OK(mio_close(s.w));
    mio_poll_free(p);
}
#endif

/* Registers t's server end for urgent data as token 2; false where this
 * kqueue cannot watch for it. */
static bool register_priority(mio_poll *p, struct test_tcp t)
{
    int err = mio_register(p, t.server, 2, MIO_PRIORITY);
    if (err == MIO_ENOSYS && strcmp(test_backend, "kqueue") == 0)
        return false;
    OK(err);
    return true;
}

TEST(priority_reports_urgent_data)
{
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(NULL, 0);

    if (!register_priority(p, t))
        SKIP("this kqueue has no out-of-band filter");
    EXPECT_NO_EVENT(p, 2, 0);
    CHECK_EQ(send(t.client, "!", 1, MSG_OOB | MSG_NOSIGNAL), 1);
    EXPECT_EVENT(p, 2, MIO_PRIORITY, MIO_SEC);
    test_close_tcp(t);
    mio_poll_free(p);
}

/* An edge registration for urgent data reports every new urgent byte once
 * the last was read and a read said MIO_EAGAIN: where edges are emulated,
 * urgent data re-arms with reads, having no I/O call of its own. */
TEST(edge_priority_reports_each_urgent_byte)
{
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(NULL, 0);
    char c;
    int i;

    if (!register_priority(p, t))
        SKIP("this kqueue has no out-of-band filter");
    for (i = 0; i < 2; i++) {
        CHECK_EQ(send(t.client, "!", 1, MSG_OOB | MSG_NOSIGNAL), 1);
        EXPECT_EVENT(p, 2, MIO_PRIORITY, MIO_SEC);
        CHECK_EQ(recv(t.server, &c, 1, MSG_OOB), 1);
        CHECK_EQ(c, '!');
        CHECK_EQ(mio_read(t.server, &c, 1), MIO_EAGAIN);
    }
    test_close_tcp(t);
    mio_poll_free(p);
}

/* ---- hang-ups on registrations that cannot report again ---- */

/* The hang-up is reported; then the edge is used up and the wait sleeps. */
static const struct step hangup_used_up_edge[] = {
    REGISTER_R, HANG_UP, EXPECT(RC), QUIET, END
};

TEST(hangup_on_used_up_edge_does_not_spin)
{
    RUN(hangup_used_up_edge, R, test_socket_source());
}

/* A used-up writable edge still hears the peer go away, once; a write then
 * fails (on Windows the peer's FIN leaves writing open for a first write). */
static const struct step hangup_after_used_up_edge[] = {
    REGISTER_R, EXPECT(W), QUIET, HANG_UP, EXACTLY(PEER_GONE, PEER_GONE),
    QUIET,
#ifndef _WIN32
    WRITE_FAILS,
#endif
    END
};

TEST(hangup_after_used_up_edge_reported_once)
{
    RUN(hangup_after_used_up_edge, W, test_socket_source());
}

/* A fired oneshot does not report the hang-up, and does not spin on it;
 * reregister re-arms, and the hang-up is there to report. */
static const struct step hangup_disarmed_oneshot[] = {
    REGISTER_R, PUT("o"), EXPECT(R), READ_ONE, HANG_UP, QUIET,
    REREGISTER, EXPECT(RC), END
};

TEST(hangup_on_disarmed_oneshot_does_not_spin)
{
    RUN(hangup_disarmed_oneshot, R | MIO_LEVEL | MIO_ONESHOT, test_socket_source());
}

/* ---- the emulated edge re-arms when a libmio I/O call says MIO_EAGAIN ----
 * Each call in turn: rounds of making the source ready, the event, and
 * using the readiness up through that call alone until it says MIO_EAGAIN.
 * (mio_read and mio_write: the edge scripts above, through test_drain and
 * test_fill.) */

struct rearm {
    mio_fd fd, peer;        /* watched, and its other end (if any) */
    mio_addr addr;          /* where to connect or send */
};

static void rearm_rounds(uint32_t interest, void (*ready)(struct rearm *),
                         void (*use_up)(struct rearm *), struct rearm *r)
{
    mio_poll *p = test_poll();
    int round;

    OK(mio_register(p, r->fd, 1, interest));
    for (round = 0; round < 4; round++) {
        ready(r);
        EXPECT_EVENT(p, 1, interest, TEST_LONG_WAIT);
        use_up(r);
    }
    OK(mio_deregister(p, r->fd));
    OK(mio_close(r->fd));
    if (r->peer != MIO_INVALID_FD)
        OK(mio_close(r->peer));
    mio_poll_free(p);
}

static struct rearm socket_pair_rearm(void)
{
    struct test_source s = test_socket_source();
    struct rearm r;
    memset(&r, 0, sizeof r);
    r.fd = s.r;
    r.peer = s.w;
    return r;
}

static void byte_from_peer(struct rearm *r)
{
    test_put(r->peer, "v");
}

static void readv_until_eagain(struct rearm *r)
{
    char buf[8];
    mio_iovec iov = { buf, sizeof buf };
    CHECK_EQ(mio_readv(r->fd, &iov, 1), 1);
    CHECK_EQ(mio_readv(r->fd, &iov, 1), MIO_EAGAIN);
}

TEST(readv_eagain_rearms_edge)
{
    struct rearm r = socket_pair_rearm();
    rearm_rounds(R, byte_from_peer, readv_until_eagain, &r);
}

static void connect_to(struct rearm *r)
{
    OK(mio_tcp_connect(&r->addr, &r->peer));
}

static void accept_until_eagain(struct rearm *r)
{
    mio_fd s, none;
    OK(mio_tcp_accept(r->fd, &s, NULL));
    CHECK_EQ(mio_tcp_accept(r->fd, &none, NULL), MIO_EAGAIN);
    OK(mio_close(s));
    OK(mio_close(r->peer));
    r->peer = MIO_INVALID_FD;
}

TEST(accept_eagain_rearms_edge)
{
    struct rearm r;
    r.fd = test_listen("127.0.0.1:0", &r.addr);
    r.peer = MIO_INVALID_FD;
    rearm_rounds(R, connect_to, accept_until_eagain, &r);
}

/* mio_accept, the name for TCP and Unix listeners alike, drains as
 * mio_tcp_accept does. */
static void mio_accept_until_eagain(struct rearm *r)
{
    mio_addr peer;
    mio_fd s, none;
    OK(mio_accept(r->fd, &s, &peer));
    CHECK_EQ(peer.u.sa.sa_family, r->addr.u.sa.sa_family);
    CHECK_EQ(mio_accept(r->fd, &none, NULL), MIO_EAGAIN);
    CHECK(none == MIO_INVALID_FD);
    OK(mio_close(s));
    OK(mio_close(r->peer));
    r->peer = MIO_INVALID_FD;
}

TEST(mio_accept_eagain_rearms_edge)
{
    struct rearm r;
    r.fd = test_listen("127.0.0.1:0", &r.addr);
    r.peer = MIO_INVALID_FD;
    rearm_rounds(R, connect_to, mio_accept_until_eagain, &r);
}

static char unix_path[256];

static void connect_unix(struct rearm *r)
{
    OK(mio_unix_connect(unix_path, &r->peer));
}

TEST(mio_accept_eagain_rearms_edge_unix)
{
    struct rearm r;
    int err;

    snprintf(unix_path, sizeof unix_path, "%s/accept.sock", test_tmp_dir());
    err = mio_unix_listen(unix_path, 0, &r.fd);
    if (err == MIO_EAFNOSUPPORT)
        SKIP("no Unix stream sockets here");
    OK(err);
    OK(mio_addr_unix(unix_path, &r.addr));
    r.peer = MIO_INVALID_FD;
    rearm_rounds(R, connect_unix, mio_accept_until_eagain, &r);
}

static void datagram_to(struct rearm *r)
{
    CHECK_EQ(mio_udp_send_to(r->peer, "u", 1, &r->addr), 1);
}

static void recv_from_until_eagain(struct rearm *r)
{
    char buf[8];
    CHECK_EQ(mio_udp_recv_from(r->fd, buf, sizeof buf, NULL), 1);
    CHECK_EQ(mio_udp_recv_from(r->fd, buf, sizeof buf, NULL), MIO_EAGAIN);
}

TEST(recv_from_eagain_rearms_edge)
{
    struct rearm r;
    mio_addr any;
    OK(mio_addr_parse("127.0.0.1:0", &any));
    OK(mio_udp_bind(&any, &r.fd));
    OK(mio_local_addr(r.fd, &r.addr));
    OK(mio_udp_bind(&any, &r.peer));
    rearm_rounds(R, datagram_to, recv_from_until_eagain, &r);
}

static void room_from_peer(struct rearm *r)
{
    test_drain(r->peer);
}

static void writev_until_eagain(struct rearm *r)
{
    static char chunk[65536];
    mio_iovec iov = { chunk, sizeof chunk };
    ssize_t n;
    while ((n = mio_writev(r->fd, &iov, 1)) > 0)
        ;
    CHECK_EQ(n, MIO_EAGAIN);
}

TEST(writev_eagain_rearms_edge)
{
    struct rearm r = socket_pair_rearm();
    rearm_rounds(W, room_from_peer, writev_until_eagain, &r);
}

/* ---- re-arms from other threads ---- */

struct drainer {
    mio_fd fd, peer;
};

static void *drain_then_write(void *arg)
{
    struct drainer *d = arg;
    test_sleep_ms(50);
    test_drain(d->fd);
    test_put(d->peer, "z");
    return NULL;
}

/* The MIO_EAGAIN that re-arms comes from another thread while the wait
 * blocks. */
TEST(edge_rearm_from_thread_during_wait)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    struct drainer d = { s.r, s.w };
    pthread_t t;

    OK(mio_register(p, s.r, 7, R));
    test_put(s.w, "y");
    EXPECT_EVENT(p, 7, R, MIO_SEC);
    OK(pthread_create(&t, NULL, drain_then_write, &d));
    EXPECT_EVENT(p, 7, R, 10 * MIO_SEC);
    OK(pthread_join(t, NULL));
    test_close_source(s);
    mio_poll_free(p);
}

/* Events go to one thread, the reads that drain them happen on another, as
 * in a thread-pool server: a drain may land between the kernel saying
 * "readable" and the waiter disarming the edge.  No edge is lost: every byte
 * written is read, one at a time, each after its own event. */
enum { DRAIN_PAIRS = 8 };

struct cross_drain {
    mio_poll *p;
    struct test_source s[DRAIN_PAIRS];
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
        for (i = 0; i < DRAIN_PAIRS; i++)
            if (atomic_exchange(&c->ready[i], 0))
                atomic_fetch_add(&c->got[i], (long)test_drain(c->s[i].r));
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
        c.s[i] = test_socket_source();
        atomic_init(&c.ready[i], 0);
        atomic_init(&c.got[i], 0);
        OK(mio_register(c.p, c.s[i].r, (mio_token)i, R));
    }
    CHECK_EQ(pthread_create(&tw, NULL, cross_waiter, &c), 0);
    CHECK_EQ(pthread_create(&tr, NULL, cross_reader, &c), 0);
    for (k = 0; k < rounds; k++) {
        int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
        seed = seed * 1103515245u + 12345u;
        i = (int)((seed >> 16) % DRAIN_PAIRS);
        test_put(c.s[i].w, "x");
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
        test_close_source(c.s[i]);
    }
    mio_poll_free(c.p);
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
    struct test_source s = test_socket_source();
    long k;

    OK(mio_register(o->mine, s.r, 1, R));
    for (k = 0; k < o->rounds; k++) {
        char buf[16];
        int i;

        test_put(s.w, "ping");
        nlocked = 0;
        EXPECT_EVENT(o->mine, 1, R, MIO_SEC);
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
    test_close_source(s);
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
