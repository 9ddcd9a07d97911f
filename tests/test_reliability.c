/* Reliability: the library under descriptor exhaustion, peers that behave
 * badly, fork and exec, and signals.  Each test is a short, bounded version
 * of what `make stress` runs at length (stress/).  Descriptor limits, fork
 * and signals are POSIX's; the rest runs on Windows too. */
#include "harness.h"

#include "child.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#endif

/* ---- out of descriptors ---- */
#ifndef _WIN32

static int64_t cpu_ns(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * MIO_SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * MIO_USEC;
}

/* Knocks on `addr` for `ms` milliseconds from a forked child with its own
 * descriptors: connect, then wait up to 3 s for the server to answer (a close
 * or a reset).  Writes {answered, unanswered} to report and exits. */
static void knock(const struct sockaddr_in *addr, int ms, int report, const int *ballast, int nb)
{
    int64_t end = test_now_ns() + ms * MIO_MSEC;
    int counts[2] = { 0, 0 }, i;

    for (i = 0; i < nb; i++)
        close(ballast[i]);
    while (test_now_ns() < end) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct pollfd pfd;
        char c;
        if (s < 0)
            _exit(3);
        if (connect(s, (const struct sockaddr *)addr, sizeof *addr) < 0) {
            close(s);
            _exit(4);
        }
        pfd.fd = s;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 3000) == 1 && read(s, &c, 1) <= 0)
            counts[0]++;
        else
            counts[1]++;
        close(s);
        test_sleep_ns(MIO_MSEC);     /* a knock a millisecond */
    }
    if (write(report, counts, sizeof counts) != (ssize_t)sizeof counts)
        _exit(5);
    _exit(0);
}

/* A process at its descriptor limit with a client knocking for 1 s, answering
 * MIO_EMFILE with mio_tcp_shed: the listener (registered with `trigger`) must
 * neither spin nor stall, every client must get an answer, and once a
 * descriptor is free the listener accepts again. */
static void emfile_scenario(uint32_t trigger)
{
    mio_poll *p = test_poll();
    mio_addr la;
    mio_fd l = test_listen("127.0.0.1:0", &la), report[2], c, s;
    int emfiles = 0, counts[2] = { -1, -1 }, wstatus;
    int64_t wall0, cpu0, wall, cpu;
    pid_t pid;
    bool done = false;

    OK(mio_pipe(report));
    OK(mio_register(p, l, 1, MIO_READABLE | trigger));
    OK(mio_register(p, report[0], 2, MIO_READABLE));

    /* Every descriptor taken, up to a limit a little above the highest:
     * the knocking child gives the ballast back for its own. */
    test_fds_exhaust(63, 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        const int *ballast;
        int nb = test_fds_ballast(&ballast);
        knock(&la.u.v4, 1000, report[1], ballast, nb);
    }

    wall0 = test_now_ns();
    cpu0 = cpu_ns();
    while (!done) {
        mio_event ev[8];
        int i, n = test_wait(p, ev, 8, TEST_LONG_WAIT);
        CHECK(n > 0);       /* nothing for 5 s: the listener stalled */
        for (i = 0; i < n; i++) {
            if (ev[i].token == 2) {
                CHECK_EQ(read(report[0], counts, sizeof counts), sizeof counts);
                done = true;
                continue;
            }
            for (;;) {
                int err = mio_tcp_accept(l, &c, NULL);
                if (err == MIO_EAGAIN)
                    break;
                if (err == MIO_EMFILE) {
                    emfiles++;
                    CHECK(mio_tcp_shed(l) >= 0);
                    break;  /* the queue is empty: wait for the next */
                }
                FAIL("accept at the limit: %s", mio_strerror(err));
            }
        }
    }
    wall = test_now_ns() - wall0;
    cpu = cpu_ns() - cpu0;
    fprintf(stderr, "%s %s: %d knocks answered, %d not, %d EMFILE, cpu %.3f s in %.3f s\n",
            test_backend, trigger == MIO_LEVEL ? "level" : "edge", counts[0], counts[1],
            emfiles, (double)cpu / MIO_SEC, (double)wall / MIO_SEC);
    CHECK_EQ(waitpid(pid, &wstatus, 0), pid);
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    CHECK(counts[0] >= 10);         /* the client knocked and was answered */
    CHECK_EQ(counts[1], 0);         /* none left hanging in the backlog */
    CHECK(emfiles >= 1);
    CHECK(cpu < wall / 2);          /* no spinning */

    /* Descriptors free again: the listener accepts. */
    test_fds_restore();
    OK(mio_tcp_connect(&la, &c));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    OK(mio_tcp_accept(l, &s, NULL));
    CHECK_EQ(mio_write(c, "hi", 2), 2);
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
    OK(mio_close(report[0]));
    OK(mio_close(report[1]));
    mio_poll_free(p);
}

POSIX_TEST(emfile_level_does_not_spin)
{
    emfile_scenario(MIO_LEVEL);
}

POSIX_TEST(emfile_edge_does_not_stall)
{
    emfile_scenario(MIO_EDGE);
}

/* At the limit, accept says MIO_EMFILE and leaves the connection queued;
 * mio_tcp_shed closes it for its client, and then finds nothing more. */
POSIX_TEST(emfile_shed_drops_queued_connection)
{
    mio_addr la;
    mio_fd l = test_listen("127.0.0.1:0", &la), c, s;
    struct pollfd pfd;
    char byte;

    /* valgrind keeps its own descriptor limit and checks it after the
     * call, so an accept at that limit is not the kernel's EMFILE. */
    if (test_on_valgrind())
        SKIP("valgrind emulates the descriptor limit");
    OK(mio_tcp_connect(&la, &c));
    test_fds_exhaust(7, 0);
    test_sleep_ns(10 * MIO_MSEC);        /* the handshake completes in the kernel */
    CHECK_EQ(mio_tcp_accept(l, &s, NULL), MIO_EMFILE);
    CHECK_EQ(mio_tcp_accept(l, &s, NULL), MIO_EMFILE);
    CHECK_EQ(mio_tcp_shed(l), 1);
    CHECK_EQ(mio_tcp_shed(l), 0);
    CHECK_EQ(mio_tcp_accept(l, &s, NULL), MIO_EMFILE);     /* still full */
    test_fds_restore();
    pfd.fd = c;
    pfd.events = POLLIN;
    CHECK_EQ(poll(&pfd, 1, 5000), 1);
    CHECK(mio_read(c, &byte, 1) <= 0);  /* end of stream or reset */
    OK(mio_close(c));
    OK(mio_close(l));
}

/* An accept that fails with something other than MIO_EAGAIN leaves an edge
 * listener armed: a client that comes after it is reported, on every
 * backend (a kernel edge reports the new arrival; an emulated one re-arms on
 * the error).  A server that simply tries again later must not wedge. */
POSIX_TEST(accept_error_leaves_edge_armed)
{
    mio_poll *p = test_poll();
    mio_addr la;
    mio_fd l = test_listen("127.0.0.1:0", &la), c1, c2, s1, s2;

    if (test_on_valgrind())
        SKIP("valgrind emulates the descriptor limit");

    OK(mio_register(p, l, 1, MIO_READABLE));
    OK(mio_tcp_connect(&la, &c1));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    /* No descriptor left: the accept fails, the connection stays queued. */
    test_fds_exhaust(8, 0);
    CHECK_EQ(mio_tcp_accept(l, &s1, NULL), MIO_EMFILE);
    test_fds_restore();
    /* The server gives up on this round; a new client is reported. */
    OK(mio_tcp_connect(&la, &c2));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    OK(mio_tcp_accept(l, &s1, NULL));
    OK(mio_tcp_accept(l, &s2, NULL));
    OK(mio_close(s1));
    OK(mio_close(s2));
    OK(mio_close(c1));
    OK(mio_close(c2));
    OK(mio_deregister(p, l));
    OK(mio_close(l));
    mio_poll_free(p);
}
#endif

static void *shed_loop(void *arg)
{
    mio_fd l = *(mio_fd *)arg;
    long i;
    for (i = 0; i < test_scaled(2000); i++)
        if (mio_tcp_shed(l) < 0)
            return (void *)1;
    return NULL;
}

/* Threads shedding at once take turns on the reserve: none fails, no
 * descriptor leaks, and the reserve is still there afterwards (the process
 * holds the same number of descriptors). */
TEST(shed_from_threads_keeps_the_reserve)
{
    mio_addr la[3];
    mio_fd l[3];
    pthread_t t[3];
    int i, fds;
    void *res;

    for (i = 0; i < 3; i++)
        l[i] = test_listen("127.0.0.1:0", &la[i]);
    fds = test_open_fds();
    for (i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, shed_loop, &l[i]), 0);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(t[i], &res), 0);
        CHECK(res == NULL);
    }
    CHECK_EQ(test_open_fds(), fds);
    for (i = 0; i < 3; i++)
        OK(mio_close(l[i]));
}

/* ---- peers behaving badly ---- */

/* The peer resets while we write: writes end with a reset or broken pipe
 * (never SIGPIPE), and the poll reports the failure. */
TEST(peer_reset_mid_write)
{
    mio_poll *p = test_poll();
    struct test_tcp t;
    struct linger lg = { 1, 0 };
    static char chunk[65536];
    ssize_t n = 0;
    int64_t deadline;
    uint32_t seen = 0;

    t = test_tcp_pair(NULL, 0);
    OK(mio_register(p, t.server, 1, MIO_WRITABLE | MIO_READABLE));
    test_fill(t.server);
    CHECK_EQ(setsockopt(t.client, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg), 0);
    OK(mio_close(t.client));               /* unread data + linger 0: a reset */
    deadline = test_now_ns() + TEST_LONG_WAIT;
    for (;;) {
        mio_event ev[4];
        CHECK(test_now_ns() < deadline);
        seen |= test_flags(ev, test_wait(p, ev, 4, 100 * MIO_MSEC), 1);
        n = mio_write(t.server, chunk, sizeof chunk);
        if (n == MIO_ECONNRESET || n == MIO_EPIPE)
            break;
        CHECK(n == MIO_EAGAIN || n > 0);
    }
    seen |= test_wait_token(p, 1, 0);
    CHECK(seen & (MIO_ERROR | MIO_WRITE_CLOSED | MIO_READ_CLOSED));
    OK(mio_close(t.server));
    mio_poll_free(p);
}

/* Half-close: the peer shuts its write side after a request; we read the
 * request, see end of stream, and can still send the whole answer. */
TEST(peer_half_close_still_gets_answer)
{
    mio_poll *p = test_poll();
    struct test_tcp t;
    static char answer[200000], got[200000];
    char req[16];
    size_t sent = 0, recvd = 0, got_req = 0, i;
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;

    for (i = 0; i < sizeof answer; i++)
        answer[i] = (char)(i * 7);
    t = test_tcp_pair(NULL, 0);
    OK(mio_register(p, t.server, 1, MIO_READABLE | MIO_WRITABLE));
    OK(mio_register(p, t.client, 2, MIO_READABLE));
    CHECK_EQ(mio_write(t.client, "request", 7), 7);
    OK(mio_shutdown(t.client, MIO_SHUT_WR));
    /* MIO_READ_CLOSED is a hint (some systems flag the shutdown only once
     * the data before it is read): end of stream is a read of 0. */
    for (;;) {
        ssize_t n = mio_read(t.server, req + got_req, sizeof req - got_req);
        if (n == 0)
            break;
        CHECK(n > 0 || n == MIO_EAGAIN);
        if (n > 0)
            got_req += (size_t)n;
        else
            EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    }
    CHECK_EQ(got_req, 7);
    CHECK(memcmp(req, "request", 7) == 0);
    while (recvd < sizeof answer) {
        mio_event ev[4];
        ssize_t n;
        CHECK(test_now_ns() < deadline);
        while (sent < sizeof answer && (n = mio_write(t.server, answer + sent, sizeof answer - sent)) > 0)
            sent += (size_t)n;
        if (sent == sizeof answer)
            OK(mio_shutdown(t.server, MIO_SHUT_WR));
        while ((n = mio_read(t.client, got + recvd, sizeof got - recvd)) > 0)
            recvd += (size_t)n;
        CHECK(n == MIO_EAGAIN || (n == 0 && recvd == sizeof answer));
        if (recvd < sizeof answer)
            test_wait(p, ev, 4, 100 * MIO_MSEC);
    }
    CHECK(memcmp(got, answer, sizeof answer) == 0);
    test_close_tcp(t);
    mio_poll_free(p);
}

/* The child's part of peer_process_vanishes: connects to $MIO_TEST_PEER,
 * sends a byte, says so on stdout and waits to be killed. */
CHILD_CASE(vanishing_peer)
{
    mio_poll *p = test_poll();
    mio_addr a;
    mio_fd fd;
    const char *peer = getenv("MIO_TEST_PEER");

    CHECK(peer != NULL);
    OK(mio_addr_parse(peer, &a));
    OK(mio_tcp_connect(&a, &fd));
    OK(mio_register(p, fd, 1, MIO_WRITABLE));
    EXPECT_EVENT(p, 1, MIO_WRITABLE, TEST_LONG_WAIT);
    OK(mio_socket_error(fd));
    CHECK_EQ(mio_write(fd, "x", 1), 1);
    printf("connected\n");
    fflush(stdout);
    for (;;)
        test_sleep_ms(1000);
}

/* The process on the other end is killed: the system closes its socket and
 * we see end of stream, reported as READ_CLOSED. */
TEST(peer_process_vanishes)
{
    mio_poll *p = test_poll();
    const char *self = child_self_path();
    char *argv[] = { (char *)self, "vanishing_peer", (char *)test_backend, NULL };
    char env[32 + MIO_ADDR_STRLEN], line[64], buf[64];
    mio_addr la;
    mio_fd l = test_listen("127.0.0.1:0", &la), s;
    struct child c;

    if (self == NULL)
        SKIP("this system does not tell a program its own path");
    strcpy(env, "MIO_TEST_PEER=");
    CHECK(mio_addr_format(&la, env + strlen(env), MIO_ADDR_STRLEN) > 0);
    child_start(&c, argv, env, CHILD_STDOUT);
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "connected") == 0);
    OK(mio_tcp_accept(l, &s, NULL));
    OK(mio_register(p, s, 1, MIO_READABLE));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(s, buf, sizeof buf), 1);
    CHECK_EQ(mio_read(s, buf, sizeof buf), MIO_EAGAIN);
    child_kill(&c);
    CHECK(child_wait(&c) != 0);
    EXPECT_EVENT(p, 1, MIO_READ_CLOSED, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(s, buf, sizeof buf), 0);
    OK(mio_close(s));
    OK(mio_close(l));
    mio_poll_free(p);
}

struct slow_writer {
    mio_fd fd;
    size_t len;
};

static void *slow_write(void *arg)
{
    struct slow_writer *w = arg;
    size_t i;
    for (i = 0; i < w->len; i++) {
        char c = (char)('a' + i % 26);
        while (mio_write(w->fd, &c, 1) != 1)
            test_sleep_ns(100 * MIO_USEC);
        if (i % 8 == 0)
            test_sleep_ns(50 * MIO_USEC);
    }
    return NULL;
}

/* A slowloris client dribbling a byte at a time: every byte arrives in
 * order, and the edge-triggered reader wakes at most once per byte (plus
 * a little): it never spins. */
TEST(slowloris_byte_at_a_time)
{
    mio_poll *p = test_poll();
    struct test_tcp t;
    struct slow_writer w;
    pthread_t th;
    size_t len = (size_t)test_scaled(2000), got = 0;
    long wakes = 0;
    int64_t deadline = test_now_ns() + 30 * MIO_SEC;

    t = test_tcp_pair(NULL, 0);
    OK(mio_tcp_set_nodelay(t.client, true));
    OK(mio_register(p, t.server, 1, MIO_READABLE));
    w.fd = t.client;
    w.len = len;
    CHECK_EQ(pthread_create(&th, NULL, slow_write, &w), 0);
    while (got < len) {
        mio_event ev[4];
        char buf[64];
        ssize_t n;
        CHECK(test_now_ns() < deadline);
        if (test_wait(p, ev, 4, TEST_LONG_WAIT) == 0)
            FAIL("stalled after %zu of %zu bytes", got, len);
        wakes++;
        while ((n = mio_read(t.server, buf, sizeof buf)) > 0) {
            ssize_t i;
            for (i = 0; i < n; i++, got++)
                CHECK_EQ(buf[i], 'a' + got % 26);
        }
        CHECK_EQ(n, MIO_EAGAIN);
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(wakes <= (long)len + 10);
    test_close_tcp(t);
    mio_poll_free(p);
}

/* A zero-length read or write is 0 and consumes nothing: data still waits,
 * and a level registration still reports it. */
TEST(zero_length_io_consumes_nothing)
{
    mio_poll *p = test_poll();
    mio_fd sp[2];
    char buf[8];

    OK(mio_socketpair(sp));
    OK(mio_register(p, sp[1], 1, MIO_READABLE | MIO_LEVEL));
    CHECK_EQ(mio_write(sp[0], buf, 0), 0);
    CHECK_EQ(test_wait_token(p, 1, 50 * MIO_MSEC), 0);    /* nothing sent */
    CHECK_EQ(mio_write(sp[0], "abc", 3), 3);
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(sp[1], buf, 0), 0);
    CHECK(test_wait_token(p, 1, TEST_LONG_WAIT) & MIO_READABLE);
    CHECK_EQ(mio_read(sp[1], buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    OK(mio_close(sp[0]));
    OK(mio_close(sp[1]));
    mio_poll_free(p);
}

/* ---- many connections ---- */

#define ECHO_SIZE 4096
#define ECHO_CONNS 5000
#define ECHO_IN_FLIGHT 256      /* connects started and not yet accepted */
#define ECHO_LISTENER 0         /* tokens: clients odd, accepted ends even */

struct echo_end {
    mio_fd fd;
    size_t out, in;             /* client: bytes sent and checked back */
    char buf[ECHO_SIZE];        /* server: what is read and not yet echoed */
    size_t have, sent;
};

/* Client i's bytes differ from every other client's. */
static char echo_byte(long i, size_t at)
{
    return (char)((unsigned long)i * 131u + (unsigned long)at * 7u + (at >> 8));
}

/* Sends what is left of the client's bytes and checks what came back, until
 * MIO_EAGAIN; true once all came back. */
static bool echo_client_pump(struct echo_end *c, long i)
{
    char buf[ECHO_SIZE];
    ssize_t r;
    size_t k;

    while (c->out < ECHO_SIZE) {
        char chunk[ECHO_SIZE];
        for (k = 0; k < ECHO_SIZE - c->out; k++)
            chunk[k] = echo_byte(i, c->out + k);
        r = mio_write(c->fd, chunk, ECHO_SIZE - c->out);
        if (r == MIO_EAGAIN || r == MIO_ENOTCONN)   /* not connected yet */
            break;
        if (r < 0)
            FAIL("client %ld: write: %s", i, mio_strerror((int)r));
        c->out += (size_t)r;
    }
    while (c->in < ECHO_SIZE) {
        r = mio_read(c->fd, buf, sizeof buf);
        if (r == MIO_EAGAIN || r == MIO_ENOTCONN)
            break;
        if (r <= 0)
            FAIL("client %ld: read after %zu bytes: %s", i, c->in,
                 r == 0 ? "end of stream" : mio_strerror((int)r));
        CHECK(c->in + (size_t)r <= c->out);
        for (k = 0; k < (size_t)r; k++)
            if (buf[k] != echo_byte(i, c->in + k))
                FAIL("client %ld: byte %zu differs", i, c->in + k);
        c->in += (size_t)r;
    }
    return c->in == ECHO_SIZE;
}

/* Echoes until MIO_EAGAIN either way (the peer's end of stream stays for the
 * close at the end). */
static void echo_server_pump(struct echo_end *s)
{
    for (;;) {
        ssize_t r;
        while (s->sent < s->have) {
            r = mio_write(s->fd, s->buf + s->sent, s->have - s->sent);
            if (r == MIO_EAGAIN)
                return;
            if (r < 0)
                FAIL("server: write: %s", mio_strerror((int)r));
            s->sent += (size_t)r;
        }
        s->have = s->sent = 0;
        r = mio_read(s->fd, s->buf, sizeof s->buf);
        if (r == MIO_EAGAIN || r == 0)
            return;
        if (r < 0)
            FAIL("server: read: %s", mio_strerror((int)r));
        s->have = (size_t)r;
    }
}

/* Many connections on one edge-triggered poll, read and write interest on
 * each: clients send 4 KiB each to an echo server on the same poll and
 * check every byte that comes back.  All stay open until the last is done,
 * so the poll ends up holding every connection's both ends. */
TEST(many_connections_echo_through_one_edge_poll)
{
    const uint32_t interest = MIO_READABLE | MIO_WRITABLE;
    long n = test_scaled(ECHO_CONNS), started = 0, accepted = 0, done = 0, i;
    struct echo_end *client, *server;
    mio_poll *p = test_poll();
    mio_event ev[256];
    mio_addr la;
    mio_fd l;

#ifndef _WIN32
    {
        /* Both ends of every connection, and a margin. */
        struct rlimit lim;
        rlim_t want = (rlim_t)(2 * n + 64);
        CHECK_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
        if (lim.rlim_cur < want) {
            lim.rlim_cur = lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want ? lim.rlim_max
                                                                                : want;
            (void)setrlimit(RLIMIT_NOFILE, &lim);   /* valgrind may keep its own */
            CHECK_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
        }
        if (lim.rlim_cur < want) {
            n = ((long)lim.rlim_cur - 64) / 2;
            fprintf(stderr, "descriptor limit %ld: %ld connections\n", (long)lim.rlim_cur, n);
            CHECK(n >= 100);
        }
    }
#endif
    /* libkqueue takes as many descriptors from epoll as the caller has room
     * for events, but one ready both ways makes two; once the room is full it
     * drops the rest, and a dropped edge never comes again (README).  Up to
     * 15 connections, 31 descriptors make at most 61 events, which always
     * fit the 64 the backend asks for. */
    if (test_on_libkqueue() && n > 15) {
        fprintf(stderr, "libkqueue loses edges when many descriptors are ready both ways: "
                        "15 connections, not %ld\n", n);
        n = 15;
    }
    client = calloc((size_t)n, sizeof *client);
    server = calloc((size_t)n, sizeof *server);
    CHECK(client != NULL && server != NULL);
    OK(mio_addr_parse("127.0.0.1:0", &la));
    OK(mio_tcp_listen(&la, 1024, &l));
    OK(mio_local_addr(l, &la));
    OK(mio_register(p, l, ECHO_LISTENER, MIO_READABLE));
    test_watchdog(110);

    while (done < n) {
        int got, k;
        /* A bounded number of connects waits for accept at any time: a full
         * backlog would drop them for a second or more. */
        while (started < n && started - accepted < ECHO_IN_FLIGHT) {
            OK(mio_tcp_connect(&la, &client[started].fd));
            OK(mio_register(p, client[started].fd, (mio_token)(2 * started + 1), interest));
            started++;
        }
        got = test_wait(p, ev, sizeof ev / sizeof ev[0], 10 * MIO_SEC);
        if (got == 0)
            FAIL("no event for 10 s: %ld connections started, %ld accepted, %ld done", started,
                 accepted, done);
        for (k = 0; k < got; k++) {
            mio_token t = ev[k].token;
            if (t == ECHO_LISTENER) {
                mio_fd fd;
                int err;
                while ((err = mio_tcp_accept(l, &fd, NULL)) == 0) {
                    CHECK(accepted < started);
                    server[accepted].fd = fd;
                    OK(mio_register(p, fd, (mio_token)(2 * accepted + 2), interest));
                    accepted++;
                }
                CHECK_EQ(err, MIO_EAGAIN);
            } else if (t % 2 == 1) {
                i = (long)(t / 2);
                CHECK(i < started);
                if (client[i].in < ECHO_SIZE && echo_client_pump(&client[i], i))
                    done++;
            } else {
                i = (long)(t / 2 - 1);
                CHECK(i < accepted);
                echo_server_pump(&server[i]);
            }
        }
    }
    test_watchdog(0);
    CHECK_EQ(accepted, n);
    for (i = 0; i < n; i++) {
        OK(mio_deregister(p, client[i].fd));
        OK(mio_deregister(p, server[i].fd));
        OK(mio_close(client[i].fd));
        OK(mio_close(server[i].fd));
    }
    OK(mio_deregister(p, l));
    OK(mio_close(l));
    free(client);
    free(server);
    mio_poll_free(p);
}

/* ---- fork and exec ---- */
#ifndef _WIN32

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Everything the library holds open (poll, wakers, the user-space readiness
 * queue, a loop, the accept reserve, sockets, pipes) is gone in an exec'd
 * child: compared through /proc/<child>/fd. */
POSIX_TEST(exec_child_inherits_no_library_fd)
{
    char *argv[] = { "/bin/sleep", "60", NULL };
    mio_poll *p;
    mio_waker *w;
    mio_registration *r;
    mio_set_readiness *sr;
    mio_loop *loop;
    mio_loop_config cfg;
    mio_addr la;
    mio_fd l, sp[2], pp[2], u;
    int fd, checked = 0;
    struct child c;
    static bool inherited[1024];    /* open before the test: not ours */

    for (fd = 0; fd < 1024; fd++)
        inherited[fd] = fd_open(fd);
    p = test_poll();
    l = test_listen("127.0.0.1:0", &la);
    OK(mio_waker_new(p, 1, &w));
    OK(mio_registration_new(&r, &sr));
    OK(mio_registration_register(p, r, 2, MIO_READABLE));
    mio_loop_config_default(&cfg);
    cfg.backend = test_backend;
    OK(mio_loop_new(&cfg, &loop));
    OK(mio_socketpair(sp));
    OK(mio_pipe(pp));
    OK(mio_addr_parse("127.0.0.1:0", &la));
    OK(mio_udp_bind(&la, &u));
    child_start(&c, argv, NULL, CHILD_STDOUT);
    for (fd = 3; fd < 1024; fd++) {
        if (inherited[fd] || fd == c.pipe || !fd_open(fd))
            continue;
        checked++;
        if (child_holds(&c, fd))
            FAIL("the child inherited fd %d", fd);
    }
    CHECK(checked >= 8);
    child_kill(&c);
    child_wait(&c);
    OK(mio_close(u));
    OK(mio_close(sp[0]));
    OK(mio_close(sp[1]));
    OK(mio_close(pp[0]));
    OK(mio_close(pp[1]));
    OK(mio_close(l));
    mio_loop_free(loop);
    mio_registration_free(r);
    mio_set_readiness_free(sr);
    mio_waker_free(w);
    mio_poll_free(p);
}

/* The documented fork contract: a forked child leaves its parent's poll
 * alone and builds its own.  The child registers an inherited socket on a
 * poll of its own and uses it; the parent's poll, waker and registrations
 * keep working afterwards. */
POSIX_TEST(forked_child_leaves_parent_poll_working)
{
    mio_poll *p = test_poll();
    mio_waker *w;
    mio_fd sp[2];
    int wstatus;
    pid_t pid;
    char buf[8];

    OK(mio_waker_new(p, 7, &w));
    OK(mio_socketpair(sp));
    OK(mio_register(p, sp[1], 1, MIO_READABLE));
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        mio_poll *mine;
        mio_event ev[4];
        int n;
        if (mio_poll_new_backend(test_backend, &mine) != 0 ||
            mio_register(mine, sp[1], 3, MIO_READABLE) != 0 ||
            mio_write(sp[0], "c", 1) != 1)
            _exit(1);
        n = mio_poll_wait(mine, ev, 4, TEST_LONG_WAIT);
        if (n != 1 || ev[0].token != 3 || mio_read(sp[1], buf, sizeof buf) != 1)
            _exit(2);
        mio_poll_free(mine);
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &wstatus, 0), pid);
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    /* The child's byte may have woken us already; drain and go on. */
    test_wait(p, (mio_event[4]){ { 0, 0 } }, 4, 0);
    OK(mio_waker_wake(w));
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_write(sp[0], "p", 1), 1);
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(sp[1], buf, sizeof buf), 1);
    CHECK_EQ(buf[0], 'p');
    OK(mio_close(sp[0]));
    OK(mio_close(sp[1]));
    mio_waker_free(w);
    mio_poll_free(p);
}

/* ---- signals ---- */

static atomic_long signals_seen;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
}

struct pump {
    mio_fd fd;
    size_t len;
};

static void *pump_out(void *arg)
{
    struct pump *pu = arg;
    static char chunk[4096];
    size_t sent = 0, i;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);     /* signals go to the poller */
    for (i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i % 251);
    while (sent < pu->len) {
        size_t off = sent % sizeof chunk, n = sizeof chunk - off;
        ssize_t k;
        struct pollfd pfd = { pu->fd, POLLOUT, 0 };
        if (n > pu->len - sent)
            n = pu->len - sent;
        k = mio_write(pu->fd, chunk + off, n);
        if (k > 0)
            sent += (size_t)k;
        else if (k == MIO_EAGAIN)
            poll(&pfd, 1, 100);
        else
            return (void *)1;
    }
    return NULL;
}

/* A timer signal every 200 us for a second while bytes stream in: the waits
 * return MIO_EINTR and are retried, no byte is lost or reordered, and the
 * stream completes. */
POSIX_TEST(signal_storm_loses_nothing)
{
    mio_poll *p = test_poll();
    struct test_tcp t;
    struct pump pu;
    struct itimerval it = { { 0, 200 }, { 0, 200 } }, off = { { 0, 0 }, { 0, 0 } };
    pthread_t th;
    void *res;
    size_t got = 0;
    long eintr = 0;
    int64_t deadline = test_now_ns() + 60 * MIO_SEC, until = test_now_ns() + MIO_SEC;

    t = test_tcp_pair(NULL, 0);
    pu.fd = t.client;
    pu.len = (size_t)test_scaled(64L << 20);
    test_catch_signal(SIGALRM, on_alarm);      /* no SA_RESTART: waits are interrupted */
    OK(mio_register(p, t.server, 1, MIO_READABLE));
    CHECK_EQ(pthread_create(&th, NULL, pump_out, &pu), 0);
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    while (got < pu.len || test_now_ns() < until) {
        mio_event ev[4];
        static char buf[65536];
        ssize_t n;
        int k;
        CHECK(test_now_ns() < deadline);
        k = mio_poll_wait(p, ev, 4, 100 * MIO_MSEC);
        if (k == MIO_EINTR) {
            eintr++;
            continue;
        }
        CHECK(k >= 0);
        while ((n = mio_read(t.server, buf, sizeof buf)) > 0) {
            ssize_t i;
            for (i = 0; i < n; i++, got++)
                if ((unsigned char)buf[i] != (got % 4096) % 251)
                    FAIL("byte %zu is wrong", got);
        }
        CHECK(n == MIO_EAGAIN);
    }
    CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);
    CHECK_EQ(pthread_join(th, &res), 0);
    CHECK(res == NULL);
    CHECK_EQ(got, pu.len);
    fprintf(stderr, "%ld signals, %ld interrupted waits, %zu bytes\n",
            atomic_load(&signals_seen), eintr, got);
    CHECK(atomic_load(&signals_seen) > 0);
    test_close_tcp(t);
    mio_poll_free(p);
}
#endif
