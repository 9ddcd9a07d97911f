/* The examples are programs people copy and run: check them end to end, with
 * examples/echo_client loading examples/echo_server on this run's backend,
 * and a plain socket client talking to each of the other servers. */
#include "harness.h"

#include "child.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0          /* Windows: no SIGPIPE to keep away */
#endif

struct server {
    struct child child;
    char addr[MIO_ADDR_STRLEN];
};

struct summary {
    double requests_per_s;
    unsigned long long errors, verified;
};

static void example_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("MIO_EXAMPLES_DIR"), *suffix = "";
    FILE *f;
#ifdef MIO_EXAMPLES_DIR
    if (dir == NULL)
        dir = MIO_EXAMPLES_DIR;
#endif
#ifdef MIO_EXAMPLES_SUFFIX
    suffix = MIO_EXAMPLES_SUFFIX;       /* ".exe" on Windows */
#endif
    if (dir == NULL)
        SKIP("examples not built (set MIO_EXAMPLES_DIR)");
    CHECK(snprintf(buf, size, "%s/%s%s", dir, name, suffix) < (int)size);
    if ((f = fopen(buf, "rb")) == NULL)
        SKIP("%s not built", buf);
    fclose(f);
}

/* Runs a server (argv: its command line) and reads its address from its
 * first line, "listening on ADDR backend NAME". */
static void server_run(struct server *s, const char *name, char *const argv[], const char *env)
{
    char line[256], backend[32];
    int status;

    child_start(&s->child, argv, env, CHILD_STDOUT);
    child_read_line(&s->child, line, sizeof line);
    if (line[0] == '\0') {
        status = child_wait(&s->child);
        if (status == 77)
            SKIP("%s has no backend %s", name, test_backend);
        FAIL("%s printed nothing and exited %d", name, status);
    }
    CHECK(sscanf(line, "listening on %79s backend %31s", s->addr, backend) == 2);
    CHECK(strcmp(backend, test_backend) == 0);
}

/* Starts the example server `name` on this run's backend, with an extra
 * option if not NULL; it exits by itself after a minute should the test
 * die. */
static void example_server_start(struct server *s, const char *name, const char *option,
                                 const char *value)
{
    char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "60", (char *)option,
                     (char *)value, "127.0.0.1:0", NULL };

    if (option == NULL) {               /* no extra option: ADDR goes there */
        argv[5] = argv[7];
        argv[6] = NULL;
    }
    example_path(path, sizeof path, name);
    server_run(s, name, argv, NULL);
}

static void server_start(struct server *s)
{
    example_server_start(s, "echo_server", NULL, NULL);
}

/* The example server `name` with a group of `loops` loops spreading its
 * connections by `mode` (-t, -m); skips when this OS lacks the mode (the
 * server then says so and exits 1 before its first line). */
static void example_group_start(struct server *s, const char *name, const char *loops,
                                const char *mode)
{
    char path[4096], line[256], backend[32], tail[64];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "60", "-t", (char *)loops, "-m",
                     (char *)mode, "127.0.0.1:0", NULL };
    int status;

    example_path(path, sizeof path, name);
    child_start(&s->child, argv, NULL, CHILD_STDOUT);
    child_read_line(&s->child, line, sizeof line);
    if (line[0] == '\0') {
        status = child_wait(&s->child);
        if (status == 77)
            SKIP("%s has no backend %s", name, test_backend);
        if (strcmp(mode, "handoff") != 0 && strcmp(mode, "least") != 0 &&
            strcmp(mode, "exclusive") != 0)
            SKIP("%s -m %s: not on this OS (exit %d)", name, mode, status);
        FAIL("%s printed nothing and exited %d", name, status);
    }
    CHECK(sscanf(line, "listening on %79s backend %31s loops %*s mode %63s", s->addr, backend,
                 tail) == 3);
    CHECK(strcmp(backend, test_backend) == 0);
    CHECK(strcmp(tail, mode) == 0);
}

/* The clean way out (SIGTERM; Ctrl-C in its console on Windows): the server
 * frees everything, says "stopped" and exits 0.  The line shows that its own
 * handling ran: wine's default for Ctrl-C exits 0 as well. */
static void server_stop(struct server *s)
{
    char line[64];
    child_stop(&s->child);
    child_read_line(&s->child, line, sizeof line);
    CHECK_EQ(child_wait(&s->child), 0);
    if (strcmp(line, "stopped") != 0)
        FAIL("the server's last line is \"%s\", not \"stopped\"", line);
}

static struct summary client_run(const struct server *s, const char *conns,
                                 const char *seconds, const char *bytes)
{
    struct summary r;
    char path[4096], line[256];
    char *argv[] = { path, "-b", (char *)test_backend, "-c", (char *)conns, "-d",
                     (char *)seconds, "-s", (char *)bytes, (char *)s->addr, NULL };
    struct child c;

    example_path(path, sizeof path, "echo_client");
    child_start(&c, argv, NULL, CHILD_STDOUT);
    child_read_line(&c, line, sizeof line);
    CHECK_EQ(child_wait(&c), 0);
    CHECK(sscanf(line, "requests/s %lf p50 %*f us p99 %*f us errors %llu bytes verified %llu",
                 &r.requests_per_s, &r.errors, &r.verified) == 3);
    return r;
}

/* examples/echo_client's load against a started echo server, which it then
 * stops: every byte comes back, in whole messages. */
static void echo_load_on(struct server *s, const char *seconds)
{
    struct summary r = client_run(s, "10", seconds, "64");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified > 0);
    CHECK_EQ(r.verified % 64, 0);
    server_stop(s);
}

/* The same against the echo server `name`. */
static void echo_load(const char *name, const char *seconds)
{
    struct server s;
    example_server_start(&s, name, NULL, NULL);
    echo_load_on(&s, seconds);
}

TEST(echo_client_against_echo_server)
{
    echo_load("echo_server", "1");
}

/* The same load on the event loop's echo server. */
TEST(echo_client_against_loop_echo_server)
{
    echo_load("loop_echo_server", "0.5");
}

/* echo_server -t: every byte back, whichever loop the connection went to. */
static void echo_group_load(const char *mode)
{
    struct server s;
    example_group_start(&s, "echo_server", "2", mode);
    echo_load_on(&s, "1");
}

TEST(echo_server_loops_handoff)
{
    echo_group_load("handoff");
}

TEST(echo_server_loops_least)
{
    echo_group_load("least");
}

TEST(echo_server_loops_exclusive)
{
    echo_group_load("exclusive");
}

TEST(echo_server_loops_reuseport)
{
    echo_group_load("reuseport");
}

/* Messages far larger than the socket buffers: the server's writes come up
 * short and its output backs up while the client is still sending. */
TEST(echo_large_messages)
{
    struct server s;
    struct summary r;
    server_start(&s);
    r = client_run(&s, "3", "0.5", "4000000");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.verified % 4000000, 0);
    server_stop(&s);
}

static int server_fds(const struct server *s)
{
    int n = child_descriptors(&s->child);
    if (n < 0)
        SKIP("this system does not tell a process's descriptors");
    return n;
}

/* Clients that fill the server's output and then reset: the server closes
 * them all (no descriptor left behind) and goes on serving. */
TEST(echo_server_survives_resets)
{
    static char junk[65536];
    struct server s;
    struct linger hard = { 1, 0 };
    int baseline, i, waited;
    mio_addr addr;

    server_start(&s);
    baseline = server_fds(&s);
    OK(mio_addr_parse(s.addr, &addr));
    for (i = 0; i < 5; i++) {
        int64_t written = 0;
        mio_fd fd;
        OK(mio_tcp_connect(&addr, &fd));
        /* Write until both ends' buffers are full and the server has stopped
         * reading us; an in-progress connect also says MIO_EAGAIN at first. */
        for (waited = 0; waited < 2000; waited++) {
            ssize_t n = mio_write(fd, junk, sizeof junk);
            if (n > 0) {
                written += n;
                waited = 0;
            } else {
                CHECK_EQ(n, MIO_EAGAIN);
                if (written > 0 && waited > 50)
                    break;
                test_sleep_ms(1);
            }
        }
        CHECK(written > 0);
        CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard) == 0);
        OK(mio_close(fd));          /* with linger 0: a reset */
    }
    for (waited = 0; server_fds(&s) != baseline && waited < 10000; waited += 10)
        test_sleep_ms(10);
    CHECK_EQ(server_fds(&s), baseline);
    CHECK(client_run(&s, "4", "0.2", "100").requests_per_s > 0);
    server_stop(&s);
}

#ifndef _WIN32
/* With too few descriptors for every client, the server stops accepting
 * when it runs out and starts again as connections close: every client is
 * served in the end.  The limit is set by a shell in between: under
 * valgrind, the test's own setrlimit would only change valgrind's idea of
 * it. */
POSIX_TEST(echo_server_resumes_after_emfile)
{
    char path[4096];
    char *argv[] = { "/bin/sh", "-c", "ulimit -n 16 && exec \"$0\" \"$@\"", path, "-b",
                     (char *)test_backend, "-n", "60", "127.0.0.1:0", NULL };
    struct server s;
    struct summary r;

    /* libkqueue's first kqueue opens a dozen descriptors of its own: 16 would
     * not even start the server.  40 clients still run it out. */
    if (test_on_libkqueue())
        argv[2] = "ulimit -n 28 && exec \"$0\" \"$@\"";
    example_path(path, sizeof path, "echo_server");
    server_run(&s, "echo_server", argv, NULL);
    r = client_run(&s, "40", "0.3", "64");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified >= 40 * 64);
    server_stop(&s);
}
#endif

/* ---- chat_server, http_server, udp_echo, multi_connect, event_loop ---- */

/* A blocking socket of `type` connected to addr, whose reads give up after
 * 10 s (a server that never answers fails the check, not the timeout). */
static mio_fd socket_to(const char *text, int type)
{
#ifdef _WIN32
    DWORD limit = 10000;                /* milliseconds */
    WSADATA wsa;
#else
    struct timeval limit = { 10, 0 };
#endif
    mio_addr addr;
    mio_fd fd;
#ifdef _WIN32
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);   /* counted: once per socket is fine */
#endif
    OK(mio_addr_parse(text, &addr));
    fd = socket(addr.u.sa.sa_family, type, 0);
    CHECK(fd != MIO_INVALID_FD);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, (const char *)&limit, sizeof limit) == 0);
    CHECK(connect(fd, &addr.u.sa, addr.len) == 0);
    return fd;
}

static void send_text(mio_fd fd, const char *text)
{
    CHECK_EQ(send(fd, text, (int)strlen(text), MSG_NOSIGNAL), (long long)strlen(text));
}

/* The next line from fd, without its newline; fails if none comes in time. */
static void read_line(mio_fd fd, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        CHECK(n + 1 < size);
        CHECK_EQ(recv(fd, line + n, 1, 0), 1);
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
}

/* The next line from fd is `want`. */
static void expect_line(mio_fd fd, const char *want)
{
    char line[256];
    read_line(fd, line, sizeof line);
    if (strcmp(line, want) != 0)
        FAIL("got line \"%s\", expected \"%s\"", line, want);
}

/* Every line a client sends reaches every other client, not the sender;
 * arrivals and departures reach everyone. */
TEST(chat_server_broadcasts)
{
    struct server s;
    mio_fd a, b, c;

    example_server_start(&s, "chat_server", NULL, NULL);
    a = socket_to(s.addr, SOCK_STREAM);
    expect_line(a, "* 1 joined");
    b = socket_to(s.addr, SOCK_STREAM);
    expect_line(a, "* 2 joined");
    expect_line(b, "* 2 joined");
    c = socket_to(s.addr, SOCK_STREAM);
    expect_line(a, "* 3 joined");
    expect_line(b, "* 3 joined");
    expect_line(c, "* 3 joined");

    send_text(a, "hello all\n");
    expect_line(b, "1: hello all");
    expect_line(c, "1: hello all");
    send_text(c, "in two ");
    send_text(c, "pieces\n");
    expect_line(a, "3: in two pieces");     /* not its own line first */
    expect_line(b, "3: in two pieces");

    mio_close(b);
    expect_line(a, "* 2 left");
    expect_line(c, "* 2 left");
    mio_close(a);
    expect_line(c, "* 1 left");
    mio_close(c);
    server_stop(&s);
}

/* Reads one 200 response (body NULL: to a HEAD, no body follows its
 * Content-Length); returns the body in `body` and whether it said
 * "Connection: close". */
static bool http_response(mio_fd fd, char *body, size_t size)
{
    char head[1024];
    size_t n = 0, len = 0;
    const char *v;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        CHECK(n + 1 < sizeof head);
        CHECK_EQ(recv(fd, head + n, 1, 0), 1);
        n++;
    }
    head[n] = '\0';
    CHECK(strncmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK((v = strstr(head, "\r\nContent-Length: ")) != NULL);
    len = strtoul(v + 18, NULL, 10);
    CHECK_EQ(len, 14);
    if (body == NULL)
        return strstr(head, "\r\nConnection: close\r\n") != NULL;
    CHECK(len < size);
    if (len > 0)
        CHECK_EQ(recv(fd, body, (int)len, MSG_WAITALL), (long long)len);
    body[len] = '\0';
    return strstr(head, "\r\nConnection: close\r\n") != NULL;
}

/* Several requests on one connection, pipelined, answered in order; the
 * connection stays open until a request asks for close. */
TEST(http_server_keep_alive_and_pipelining)
{
    struct server s;
    char body[64];
    mio_fd fd;
    int i;

    example_server_start(&s, "http_server", NULL, NULL);
    fd = socket_to(s.addr, SOCK_STREAM);
    send_text(fd, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    CHECK(!http_response(fd, body, sizeof body));
    CHECK(strcmp(body, "Hello, world!\n") == 0);
    send_text(fd, "GET /a HTTP/1.1\r\nHost: test\r\n\r\nGET /b HTTP/1.1\r\nHost: test\r\n\r\n"
                  "HEAD /c HTTP/1.1\r\nHost: test\r\n\r\n");
    for (i = 0; i < 2; i++) {
        CHECK(!http_response(fd, body, sizeof body));
        CHECK(strcmp(body, "Hello, world!\n") == 0);
    }
    CHECK(!http_response(fd, NULL, 0));     /* HEAD: no body */
    send_text(fd, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    CHECK(http_response(fd, body, sizeof body));
    CHECK(strcmp(body, "Hello, world!\n") == 0);
    CHECK_EQ(recv(fd, body, sizeof body, 0), 0);    /* then the server closes */
    mio_close(fd);
    server_stop(&s);
}

/* http_server -t: keep-alive on each of several connections, spread over
 * two loops. */
TEST(http_server_loops_keep_alive)
{
    struct server s;
    char body[64];
    mio_fd fd[4];
    int i, round;

    example_group_start(&s, "http_server", "2", "handoff");
    for (i = 0; i < 4; i++)
        fd[i] = socket_to(s.addr, SOCK_STREAM);
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 4; i++)
            send_text(fd[i], "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
        for (i = 0; i < 4; i++) {
            CHECK(!http_response(fd[i], body, sizeof body));
            CHECK(strcmp(body, "Hello, world!\n") == 0);
        }
    }
    for (i = 0; i < 4; i++)
        mio_close(fd[i]);
    server_stop(&s);
}

/* An idle connection is closed after -k seconds, never before. */
TEST(http_server_closes_idle_connections)
{
    struct server s;
    int64_t start;
    char byte;
    mio_fd fd;

    example_server_start(&s, "http_server", "-k", "0.2");
    fd = socket_to(s.addr, SOCK_STREAM);
    start = test_now_ns();
    CHECK_EQ(recv(fd, &byte, 1, 0), 0);
    CHECK(test_now_ns() - start >= 190 * MIO_MSEC);
    mio_close(fd);
    server_stop(&s);
}

/* Every datagram comes back, whole, to the socket that sent it. */
TEST(udp_echo_returns_datagrams)
{
    struct server s;
    char msg[64], got[128];
    mio_fd fd;
    int i;

    example_server_start(&s, "udp_echo", NULL, NULL);
    fd = socket_to(s.addr, SOCK_DGRAM);
    for (i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "datagram %d", i);
        send_text(fd, msg);
        CHECK_EQ(recv(fd, got, sizeof got, 0), (long long)strlen(msg));
        CHECK(memcmp(got, msg, strlen(msg)) == 0);
    }
    send_text(fd, "");                      /* an empty datagram is one too */
    CHECK_EQ(recv(fd, got, sizeof got, 0), 0);
    mio_close(fd);
    server_stop(&s);
}

/* A loopback port nobody listens on: bound, then closed. */
static void refused_addr(char *buf, size_t size)
{
    mio_addr addr;
    mio_fd fd;
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    OK(mio_udp_bind(&addr, &fd));           /* any free port number will do */
    OK(mio_local_addr(fd, &addr));
    OK(mio_close(fd));
    CHECK(mio_addr_format(&addr, buf, size) > 0);
}

/* Two echo servers answer and a closed port refuses: one line each, in the
 * order given, and exit status 1 for the failure. */
TEST(multi_connect_reports_each_server)
{
    struct server a, b;
    char path[4096], refused[MIO_ADDR_STRLEN], line[256], name[MIO_ADDR_STRLEN], reply[64];
    char *argv[] = { path, "-b", (char *)test_backend, "-m", "hi there", a.addr, refused,
                     b.addr, NULL };
    /* libkqueue reads a failed connect's error to report it, which clears
     * it: the example's mio_socket_error would find none, and the refused
     * address would only time out.  There the two servers are enough. */
    int refusal = !test_on_libkqueue();
    struct child c;
    double ms;

    server_start(&a);
    server_start(&b);
    example_path(path, sizeof path, "multi_connect");
    refused_addr(refused, sizeof refused);
    if (!refusal) {
        argv[6] = b.addr;
        argv[7] = NULL;
    }
    child_start(&c, argv, NULL, CHILD_STDOUT);
    child_read_line(&c, line, sizeof line);
    CHECK(sscanf(line, "%79s ok %lf ms %63[^\n]", name, &ms, reply) == 3);
    CHECK(strcmp(name, a.addr) == 0 && strcmp(reply, "hi there") == 0);
    if (refusal) {
        child_read_line(&c, line, sizeof line);
        CHECK(sscanf(line, "%79s error %63[^\n]", name, reply) == 2);
        CHECK(strcmp(name, refused) == 0 && strcmp(reply, mio_strerror(MIO_ECONNREFUSED)) == 0);
    }
    child_read_line(&c, line, sizeof line);
    CHECK(sscanf(line, "%79s ok %lf ms %63[^\n]", name, &ms, reply) == 3);
    CHECK(strcmp(name, b.addr) == 0 && strcmp(reply, "hi there") == 0);
    CHECK_EQ(child_wait(&c), refusal ? 1 : 0);
    server_stop(&a);
    server_stop(&b);
}

/* Examples that take the default backend run once: on the others they skip. */
static void default_backend_only(const char *name)
{
    mio_poll *p;
    OK(mio_poll_new(&p));
    if (strcmp(mio_poll_backend(p), test_backend) != 0) {
        mio_poll_free(p);
        SKIP("%s runs on the default backend only", name);
    }
    mio_poll_free(p);
}

/* examples/event_loop's three lines, in order, each printed no earlier than
 * not_before (NULL: whenever) seconds after it started. */
static void event_loop_lines(struct child *c, const double *not_before)
{
    static const char *const want[] = { "channel notify", "time out", "shutdown event loop" };
    char line[256], what[64];
    double at;
    int i;

    for (i = 0; i < 3; i++) {
        child_read_line(c, line, sizeof line);
        CHECK(sscanf(line, "%lf %63[^\n]", &at, what) == 2);
        if (strcmp(what, want[i]) != 0)
            FAIL("line %d is \"%s\", expected \"%s\"", i + 1, line, want[i]);
        if (not_before != NULL)
            CHECK(at >= not_before[i] - 0.001);  /* printed with 3 decimals */
    }
}

/* examples/event_loop at a tenth of its delays: the channel message at once,
 * the timeout after 0.3 s, the shutdown message after 0.5 s, in that order
 * and never early.  It takes the default backend, so it runs once. */
TEST(event_loop_example_runs_in_order)
{
    static const double not_before[] = { 0, 0.3, 0.5 };
    char path[4096], line[256];
    char *argv[] = { path, "0.1", NULL };
    struct child c;

    default_backend_only("event_loop");
    example_path(path, sizeof path, "event_loop");
    child_start(&c, argv, NULL, CHILD_STDOUT);
    event_loop_lines(&c, not_before);
    child_read_line(&c, line, sizeof line);
    CHECK(line[0] == '\0');                 /* nothing more */
    CHECK_EQ(child_wait(&c), 0);
}

/* ---- proxy: streams through it, both ways, every byte checked ----------
 * The test is the proxy's upstream (a listener on its own poll) and all of
 * its clients at once, driven by one poll on this run's backend: for each
 * planned relay a client connects to the proxy and sends its number, the
 * upstream end that the proxy connects finds its plan by that number, and
 * the two ends then send each other a stream of bytes (a pattern of their
 * own), shut their write side and read the other's stream to its end. */

/* How one relay is driven. */
enum relay_order {
    TOGETHER,           /* both ends send at once */
    CLIENT_FIRST,       /* the upstream end sends once it read the client's end */
    UPSTREAM_FIRST,     /* the client sends once it read the upstream's end */
};

/* Which end reads nothing until its peer's writes have stalled. */
enum relay_pause { NO_PAUSE, PAUSE_UPSTREAM, PAUSE_CLIENT };

struct relay_plan {
    uint64_t up, down;          /* bytes from the client, bytes to it */
    enum relay_order order;
    enum relay_pause pause;
    bool hold;                  /* neither end shuts: the proxy's idle timer ends it */
    int trickle_ms;             /* > 0: the client sends a byte per trickle_ms */
    bool reset;                 /* neither end shuts; once every such relay is up, each
                                   upstream end sends and its client resets at once */
};

/* One end of a relay, as the test drives it. */
struct relay_end {
    mio_fd fd;
    int plan;                   /* -1: an upstream end that has not read its number */
    bool upstream;
    uint32_t seed_out, seed_in; /* the streams it sends and expects */
    uint64_t out, sent, in, got;
    unsigned char number[4];    /* the plan's number: sent by the client first */
    size_t number_done;
    bool wait_for_eof;          /* sends only after reading the other's end */
    bool hold, paused, reset;
    bool shut, eof, closed;
    bool shut_held;             /* would shut, but waits for its peer (libkqueue) */
    bool blocked;               /* the last write said MIO_EAGAIN */
    int64_t progress_at;        /* when it last wrote */
    int64_t trickle_ns, send_at;
};

struct proxy_world {
    struct server proxy;
    mio_poll *poll;
    mio_fd listener;            /* the upstream (proxy_world_bind) */
    char upstream[MIO_ADDR_STRLEN];
    int fds;                    /* the proxy's descriptors when idle (-1: unknown) */
    /* One run: */
    const struct relay_plan *plans;
    struct relay_end *ends;     /* clients first, then upstream ends as accepted */
    size_t nplans, nends;
    int64_t max_gap;            /* the longest pause between trickled bytes */
    int64_t stalled_at;         /* (PAUSE_*) bytes taken when the writer stalled */
    const char *error;          /* what went wrong, NULL if nothing */
};

#define PROXY_WORLD_EVENTS 64

/* Byte k of stream `seed`: a position-dependent pattern, so that a byte
 * lost, repeated or moved is seen. */
static unsigned char stream_byte(uint32_t seed, uint64_t k)
{
    uint64_t x = (k >> 3) * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)seed << 32;
    x ^= x >> 31;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 29;
    return (unsigned char)(x >> (8 * (k & 7)));
}

static void proxy_world_fail(struct proxy_world *w, const char *what)
{
    if (w->error == NULL)
        w->error = what;
}

/* The upstream end has read its number: it takes its part of the plan. */
static void relay_end_adopt(struct proxy_world *w, struct relay_end *e)
{
    const struct relay_plan *pl;
    uint32_t n = (uint32_t)e->number[0] | (uint32_t)e->number[1] << 8 |
                 (uint32_t)e->number[2] << 16 | (uint32_t)e->number[3] << 24;
    if (n >= w->nplans) {
        proxy_world_fail(w, "an upstream connection sent a number no client has");
        return;
    }
    pl = &w->plans[n];
    e->plan = (int)n;
    e->seed_out = 2 * n + 2;
    e->seed_in = 2 * n + 1;
    e->out = pl->down;
    e->in = pl->up;
    e->wait_for_eof = pl->order == CLIENT_FIRST;
    e->hold = pl->hold || pl->reset;
    e->reset = pl->reset;
    e->paused = pl->pause == PAUSE_UPSTREAM;
}

static void relay_end_close(struct proxy_world *w, struct relay_end *e)
{
    mio_deregister(w->poll, e->fd);
    mio_close(e->fd);
    e->closed = true;
}

static struct relay_end *relay_upstream_end(struct proxy_world *w, size_t i);

/* Whether end e may shut its write side now that all is sent.  Elsewhere at
 * once; on libkqueue once its peer has received every byte.  libkqueue gives
 * EVFILT_READ no EV_EOF while bytes remain unread on a socket that also has
 * a write filter (tools/libkqueue_eof_with_data.c): an end that reached the
 * proxy with the last bytes would never be seen by a proxy that drains with
 * a short read, as edge triggering allows.  Shut after the proxy has read
 * everything, the end arrives alone and is reported. */
static bool relay_end_may_shut(struct proxy_world *w, const struct relay_end *e)
{
    const struct relay_end *peer;

    if (!test_on_libkqueue())
        return true;
    peer = e->upstream ? &w->ends[e->plan] : relay_upstream_end(w, (size_t)e->plan);
    return peer != NULL && peer->plan >= 0 && (peer->got == peer->in || peer->closed);
}

/* Reads until MIO_EAGAIN (checking every byte) and writes until MIO_EAGAIN
 * or the end of what it sends. */
static void relay_end_pump(struct proxy_world *w, struct relay_end *e)
{
    static unsigned char buf[65536];
    int64_t now = test_now_ns();
    ssize_t n;
    size_t i;

    while (!e->closed && !e->paused && !e->eof) {
        n = mio_read(e->fd, buf, sizeof buf);
        if (n == MIO_EAGAIN)
            break;
        if (n < 0) {
            if (!e->reset)
                proxy_world_fail(w, e->upstream ? "an upstream end's read failed"
                                                : "a client's read failed");
            relay_end_close(w, e);
            return;
        }
        if (n == 0) {
            e->eof = true;
            if (e->got != e->in && !e->reset)
                proxy_world_fail(w, e->upstream ? "an upstream end's stream ended early"
                                                : "a client's stream ended early");
            break;
        }
        for (i = 0; i < (size_t)n; i++) {
            if (e->plan < 0) {                  /* the number comes first */
                e->number[e->number_done++] = buf[i];
                if (e->number_done == 4)
                    relay_end_adopt(w, e);
                continue;                       /* (a paused end checks what it has) */
            }
            if (e->got == e->in) {
                proxy_world_fail(w, "more bytes than were sent");
                break;
            }
            if (buf[i] != stream_byte(e->seed_in, e->got)) {
                proxy_world_fail(w, "a byte differs");
                break;
            }
            e->got++;
        }
    }
    if (e->closed || e->plan < 0)
        return;
    if (e->reset && e->eof) {
        relay_end_close(w, e);
        return;
    }

    /* The client's number, then its stream (a byte at a time when it
     * trickles), then the end of it. */
    while (!e->upstream && e->number_done < 4) {
        n = mio_write(e->fd, e->number + e->number_done, 4 - e->number_done);
        if (n == MIO_EAGAIN) {
            e->blocked = true;
            return;
        }
        if (n < 0) {
            proxy_world_fail(w, "a client's write failed");
            relay_end_close(w, e);
            return;
        }
        e->number_done += (size_t)n;
    }
    while (e->sent < e->out && (!e->wait_for_eof || e->eof)) {
        uint64_t k, chunk = e->out - e->sent;
        if (e->trickle_ns > 0) {                /* send_at: the last byte's time */
            if (e->send_at > 0 && now - e->send_at < e->trickle_ns)
                break;
            if (e->send_at > 0 && now - e->send_at > w->max_gap)
                w->max_gap = now - e->send_at;
            e->send_at = now;
            chunk = 1;
        }
        if (chunk > sizeof buf)
            chunk = sizeof buf;
        for (k = 0; k < chunk; k++)
            buf[k] = stream_byte(e->seed_out, e->sent + k);
        n = mio_write(e->fd, buf, (size_t)chunk);
        if (n == MIO_EAGAIN) {
            e->blocked = true;
            break;
        }
        if (n < 0) {
            if (!e->reset)
                proxy_world_fail(w, e->upstream ? "an upstream end's write failed"
                                                : "a client's write failed");
            relay_end_close(w, e);
            return;
        }
        e->blocked = false;
        e->sent += (uint64_t)n;
        e->progress_at = now;
    }
    e->shut_held = false;
    if (e->sent == e->out && !e->shut && !e->hold && (!e->wait_for_eof || e->eof)) {
        if (relay_end_may_shut(w, e)) {
            CHECK_EQ(mio_shutdown(e->fd, MIO_SHUT_WR), 0);
            e->shut = true;
        } else {
            e->shut_held = true;
        }
    }
    if (e->eof && (e->shut || e->hold)) {
        if (e->sent != e->out)
            proxy_world_fail(w, "a connection ended before all was sent");
        relay_end_close(w, e);
    }
}

/* The CPU time (user and system) child c has used, in nanoseconds; -1
 * where the system does not tell (Linux's /proc only). */
static int64_t process_cpu_ns(const struct child *c)
{
#ifdef __linux__
    char path[64], text[1024], *p;
    unsigned long long user, sys;
    long ticks = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)c->pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* After the command's name, in parentheses: fields 3 to 15. */
    if ((p = strrchr(text, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user, &sys) != 2 ||
        ticks <= 0)
        return -1;
    return (int64_t)((user + sys) * (unsigned long long)(MIO_SEC / ticks));
#else
    (void)c;
    return -1;
#endif
}

/* How often child c was switched out (it slept, or was preempted), or -1
 * where the system does not tell (Linux's /proc only). */
static long long process_switches(const struct child *c)
{
#ifdef __linux__
    char path[64], line[256];
    long long n = 0, v;
    int found = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)c->pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1) {
            n += v;
            found++;
        }
    fclose(f);
    return found == 2 ? n : -1;
#else
    (void)c;
    return -1;
#endif
}

/* A relay with a paused reader: its writer must stall, having sent less
 * than all (the proxy buffers a bounded amount); and then the proxy must
 * not spin.  Over a second in which the writer makes no progress the proxy
 * has nothing to do: it should sleep through it.  A loop that spins uses
 * most of that second of CPU on an idle machine and, on a loaded one, is
 * switched out hundreds of times, where a sleeping proxy is switched out a
 * few times at most.  Then the reader goes on. */
static void relay_pause_check(struct proxy_world *w, struct relay_end *writer,
                              struct relay_end *reader)
{
    static const int64_t quiet = 300 * MIO_MSEC, window = MIO_SEC;
    static int64_t cpu0, window_at;
    static long long switches0;
    static uint64_t sent0;
    int64_t now = test_now_ns(), cpu;
    long long switches;

    if (writer->sent == writer->out) {
        proxy_world_fail(w, "the proxy took a whole stream that nobody read");
        reader->paused = false;
        return;
    }
    if (!writer->blocked || now - writer->progress_at < quiet)
        return;
    if (window_at == 0 || writer->sent != sent0) {      /* (again) from here */
        window_at = now;
        sent0 = writer->sent;
        cpu0 = process_cpu_ns(&w->proxy.child);
        switches0 = process_switches(&w->proxy.child);
        return;
    }
    if (now - window_at < window && cpu0 >= 0)
        return;
    cpu = process_cpu_ns(&w->proxy.child);
    switches = process_switches(&w->proxy.child);
    if ((cpu0 >= 0 && cpu >= 0 && cpu - cpu0 > window * 3 / 10) ||
        (switches0 >= 0 && switches >= 0 && switches - switches0 > 50))
        FAIL("the proxy used %.0f ms of CPU and was switched out %lld times in %.0f ms "
             "while nothing could move", (double)(cpu - cpu0) / 1e6, switches - switches0,
             (double)(now - window_at) / 1e6);
    w->stalled_at = (int64_t)writer->sent;
    window_at = 0;
    reader->paused = false;
    relay_end_pump(w, reader);
}

/* The upstream end of client i, or NULL while there is none. */
static struct relay_end *relay_upstream_end(struct proxy_world *w, size_t i)
{
    size_t j;
    for (j = w->nplans; j < w->nends; j++)
        if (w->ends[j].plan == (int)i)
            return &w->ends[j];
    return NULL;
}

/* Once every relay planned to reset is up, all of them in one burst: its
 * upstream end sends a few bytes, and right after its client resets the
 * connection.  Both reach the proxy at about the same time. */
static void relay_reset_all(struct proxy_world *w)
{
    static unsigned char bytes[1000];
    struct linger hard = { 1, 0 };
    size_t i;

    for (i = 0; i < w->nplans; i++) {
        struct relay_end *u = relay_upstream_end(w, i);
        if (w->plans[i].reset && (w->ends[i].number_done < 4 || u == NULL))
            return;                             /* not all up yet */
    }
    for (i = 0; i < w->nplans; i++) {
        struct relay_end *c = &w->ends[i], *u = relay_upstream_end(w, i);
        if (!w->plans[i].reset || c->closed)
            continue;
        if (!u->closed)
            (void)mio_write(u->fd, bytes, sizeof bytes);
        CHECK(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard) == 0);
        relay_end_close(w, c);
    }
}

/* Runs the plans (at most 256), all at once, through the proxy; returns
 * what went wrong, or NULL.  Every connection has then ended and the proxy
 * holds no more descriptors than before. */
static const char *proxy_world_run(struct proxy_world *w, const struct relay_plan *plans,
                                   size_t n)
{
    mio_event ev[PROXY_WORLD_EVENTS];
    int64_t deadline = test_now_ns() + 90 * MIO_SEC;
    mio_addr addr;
    size_t i, open;

    CHECK(n <= 256);
    w->plans = plans;
    w->nplans = n;
    w->nends = n;
    w->max_gap = 0;
    w->stalled_at = -1;
    w->error = NULL;
    CHECK((w->ends = calloc(2 * n, sizeof *w->ends)) != NULL);
    OK(mio_addr_parse(w->proxy.addr, &addr));
    for (i = 0; i < n; i++) {
        struct relay_end *e = &w->ends[i];
        e->plan = (int)i;
        e->seed_out = 2 * (uint32_t)i + 1;
        e->seed_in = 2 * (uint32_t)i + 2;
        e->out = plans[i].up;
        e->in = plans[i].down;
        e->number[0] = (unsigned char)i;
        e->wait_for_eof = plans[i].order == UPSTREAM_FIRST;
        e->hold = plans[i].hold || plans[i].reset;
        e->reset = plans[i].reset;
        e->paused = plans[i].pause == PAUSE_CLIENT;
        e->trickle_ns = plans[i].trickle_ms * MIO_MSEC;
        e->progress_at = test_now_ns();
        OK(mio_tcp_connect(&addr, &e->fd));
        OK(mio_register(w->poll, e->fd, 1 + i, MIO_READABLE | MIO_WRITABLE));
    }

    for (;;) {
        int64_t now = test_now_ns(), wait = 20 * MIO_MSEC;
        int k, got;

        for (i = 0, open = 0; i < w->nends; i++)
            open += !w->ends[i].closed;
        if ((open == 0 && w->nends == 2 * n) || w->error != NULL)
            break;
        if (now > deadline) {
            proxy_world_fail(w, "the relays did not finish in time");
            break;
        }
        got = mio_poll_wait(w->poll, ev, PROXY_WORLD_EVENTS, wait);
        if (got == MIO_EINTR)
            continue;
        CHECK(got >= 0);
        for (k = 0; k < got; k++) {
            if (ev[k].token == 0) {             /* the proxy connects to us */
                mio_fd fd;
                int err;
                while ((err = mio_tcp_accept(w->listener, &fd, NULL)) == 0) {
                    struct relay_end *e;
                    CHECK(w->nends < 2 * n);
                    e = &w->ends[w->nends];
                    e->fd = fd;
                    e->plan = -1;
                    e->upstream = true;
                    e->progress_at = test_now_ns();
                    OK(mio_register(w->poll, fd, 1 + w->nends, MIO_READABLE | MIO_WRITABLE));
                    w->nends++;
                }
                CHECK_EQ(err, MIO_EAGAIN);
            } else {
                relay_end_pump(w, &w->ends[ev[k].token - 1]);
            }
        }
        relay_reset_all(w);
        /* Trickles and paused readers act on time, not on events. */
        for (i = 0; i < w->nends; i++) {
            struct relay_end *e = &w->ends[i], *peer = NULL;
            size_t j;
            if (e->closed || e->plan < 0)
                continue;
            if ((e->trickle_ns > 0 && e->sent < e->out) || e->shut_held)
                relay_end_pump(w, e);
            if (!e->paused)
                continue;
            for (j = 0; j < w->nends; j++)
                if (j != i && w->ends[j].plan == e->plan)
                    peer = &w->ends[j];
            if (peer != NULL)
                relay_pause_check(w, peer, e);
        }
    }

    for (i = 0; i < w->nends; i++)
        if (!w->ends[i].closed)
            relay_end_close(w, &w->ends[i]);
    free(w->ends);
    w->ends = NULL;
    /* Every relay ended: the proxy closed both of its sockets. */
    if (w->error == NULL && w->fds >= 0) {
        int waited;
        for (waited = 0; child_descriptors(&w->proxy.child) != w->fds && waited < 10000;
             waited += 10)
            test_sleep_ms(10);
        if (child_descriptors(&w->proxy.child) != w->fds)
            proxy_world_fail(w, "the proxy holds more descriptors than before");
    }
    return w->error;
}

static void proxy_world_listen(struct proxy_world *w)
{
    CHECK(listen(w->listener, 1024) == 0);
    OK(mio_register(w->poll, w->listener, 0, MIO_READABLE));
}

/* The upstream: a TCP socket bound to a free loopback port, close-on-exec
 * (not inherited by the proxy), listening only once `listening` says so:
 * until then connects to it are refused, and the port stays the test's. */
static void proxy_world_bind(struct proxy_world *w, bool listening)
{
    mio_addr addr;
#ifdef _WIN32
    u_long on = 1;
    WSADATA wsa;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
#endif
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    w->listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(w->listener != MIO_INVALID_FD);
#ifdef _WIN32
    CHECK(SetHandleInformation((HANDLE)w->listener, HANDLE_FLAG_INHERIT, 0));
    CHECK(ioctlsocket(w->listener, FIONBIO, &on) == 0);
#else
    CHECK(fcntl(w->listener, F_SETFD, FD_CLOEXEC) == 0);
    CHECK(fcntl(w->listener, F_SETFL, fcntl(w->listener, F_GETFL) | O_NONBLOCK) == 0);
#endif
    CHECK(bind(w->listener, &addr.u.sa, addr.len) == 0);
    OK(mio_local_addr(w->listener, &addr));
    CHECK(mio_addr_format(&addr, w->upstream, sizeof w->upstream) > 0);
    if (listening)
        proxy_world_listen(w);
}

/* Starts the proxy in front of a new upstream, listening or (`refused`)
 * not yet, idle time `idle` seconds (NULL: its default). */
static void proxy_world_start(struct proxy_world *w, const char *idle, bool refused)
{
    char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "100", "-k", (char *)idle,
                     "127.0.0.1:0", w->upstream, NULL };

    memset(w, 0, sizeof *w);
    w->listener = MIO_INVALID_FD;
    w->poll = test_poll();
    proxy_world_bind(w, !refused);
    if (idle == NULL) {
        argv[5] = argv[7];
        argv[6] = argv[8];
        argv[7] = NULL;
    }
    example_path(path, sizeof path, "proxy");
    server_run(&w->proxy, "proxy", argv, NULL);
    w->fds = child_descriptors(&w->proxy.child);
}

static void proxy_world_stop(struct proxy_world *w)
{
    server_stop(&w->proxy);
    mio_deregister(w->poll, w->listener);
    mio_close(w->listener);
    mio_poll_free(w->poll);
}

static void proxy_world_check(struct proxy_world *w, const struct relay_plan *plans, size_t n)
{
    const char *error = proxy_world_run(w, plans, n);
    if (error != NULL)
        FAIL("proxy: %s", error);
}

/* Relays at once on libkqueue.  It drops edge-triggered events that do not
 * fit the caller's event list (tools/libkqueue_lost_edges.c): the backend
 * asks for 64, and each socket ready both ways makes two.  15 relays are 30
 * sockets on each side (and a listener, a waker): at most 62 events. */
#define PROXY_LIBKQUEUE_RELAYS 15

static size_t proxy_relays(size_t n)
{
    if (test_on_libkqueue() && n > PROXY_LIBKQUEUE_RELAYS) {
        fprintf(stderr, "libkqueue loses edges when many descriptors are ready both ways: "
                        "%d relays, not %zu\n", PROXY_LIBKQUEUE_RELAYS, n);
        return PROXY_LIBKQUEUE_RELAYS;
    }
    return n;
}

/* Many clients at once, each with streams of its own length each way (from
 * nothing to a few hundred kilobytes, and a few of several megabytes). */
TEST(proxy_relays_many_clients)
{
    static struct relay_plan plans[64];
    struct proxy_world w;
    size_t i, n = proxy_relays((size_t)test_scaled(64));

    test_watchdog(110);
    for (i = 0; i < n; i++) {
        plans[i].up = (uint64_t)(i * 7919 % 300001) * (i % 5 != 0);
        plans[i].down = (uint64_t)(i * 104729 % 250007) * (i % 7 != 3);
        if (i % 16 == 1)
            plans[i].up = plans[i].down = 3000000 + i;
    }
    proxy_world_start(&w, NULL, false);
    proxy_world_check(&w, plans, n);
    proxy_world_check(&w, plans, n);        /* and again, on the same proxy */
    proxy_world_stop(&w);
}

/* A reader that does not read, one way and then the other: the writer's
 * writes stall with part of its stream sent (the proxy stopped reading the
 * side whose peer could take no more), the proxy spins meanwhile, and once
 * the reader reads, every byte arrives.  Both ways carry data each time. */
TEST(proxy_back_pressure_both_ways)
{
    /* More than the kernel's buffers on the way can hold (Linux lets a
     * loopback receive buffer grow to 32 MB), however the run is scaled:
     * a stream that fits in them never stalls. */
    const uint64_t big = (uint64_t)(test_scaled(96) > 40 ? test_scaled(96) : 40) << 20;
    const struct relay_plan up = { .up = big, .down = 1 << 20, .pause = PAUSE_UPSTREAM };
    const struct relay_plan down = { .up = 1 << 20, .down = big, .pause = PAUSE_CLIENT };
    struct proxy_world w;

    if (test_on_valgrind())
        SKIP("tens of megabytes checked byte by byte take minutes under valgrind "
             "(ASan and TSan run it)");
    test_watchdog(110);
    proxy_world_start(&w, NULL, false);
    proxy_world_check(&w, &up, 1);
    CHECK(w.stalled_at >= 0 && (uint64_t)w.stalled_at < big);
    proxy_world_check(&w, &down, 1);
    CHECK(w.stalled_at >= 0 && (uint64_t)w.stalled_at < big);
    proxy_world_stop(&w);
}

/* Clients that reset while their upstream is still sending, all at once:
 * the proxy then often has an event for each socket of a relay in one
 * batch, the first of which closes the relay.  It goes on serving, holds
 * no descriptor more, and stops cleanly (with ASan, touching a relay
 * freed earlier in the batch ends it). */
TEST(proxy_survives_resets)
{
    static struct relay_plan plans[48];
    static const struct relay_plan after = { .up = 200000, .down = 200000 };
    struct proxy_world w;
    size_t i, n = proxy_relays(sizeof plans / sizeof plans[0]);

    TEST_NOT_ON_WINE("a reset is not sent at once");
    test_watchdog(110);
    for (i = 0; i < n; i++)
        plans[i].reset = true;
    proxy_world_start(&w, NULL, false);
    for (i = 0; i < 5; i++)
        proxy_world_check(&w, plans, n);
    proxy_world_check(&w, &after, 1);
    proxy_world_stop(&w);
}

/* Half-close passed on both ways: a client that sends and shuts its write
 * side still gets the whole answer, which the upstream sends only after it
 * saw that end; an upstream that sends and shuts its side first still gets
 * all the client sends afterwards.  With and without bytes. */
TEST(proxy_half_close_each_way)
{
    static const struct relay_plan plans[] = {
        { .up = 300000, .down = 500000, .order = CLIENT_FIRST },
        { .up = 500000, .down = 300000, .order = UPSTREAM_FIRST },
        { .up = 1, .down = 1, .order = CLIENT_FIRST },
        { .up = 1, .down = 1, .order = UPSTREAM_FIRST },
        { .up = 0, .down = 4000, .order = CLIENT_FIRST },
        { .up = 4000, .down = 0, .order = UPSTREAM_FIRST },
        { .up = 0, .down = 0, .order = CLIENT_FIRST },
        { .up = 0, .down = 0, .order = UPSTREAM_FIRST },
    };
    struct proxy_world w;

    test_watchdog(110);
    proxy_world_start(&w, NULL, false);
    proxy_world_check(&w, plans, sizeof plans / sizeof plans[0]);
    proxy_world_stop(&w);
}

/* An upstream that refuses: each client's connection is closed (not left
 * hanging: its read would give up after 10 s and fail the check), and the
 * proxy goes on serving; once the upstream listens, clients get through. */
TEST(proxy_upstream_refused)
{
    static const struct relay_plan plans[] = {
        { .up = 100000, .down = 100000 },
        { .up = 1000, .down = 1000, .order = CLIENT_FIRST },
    };
    struct proxy_world w;
    char byte;
    mio_fd fd[8];
    int i, waited;

    /* libkqueue reports a refused connect only by timing out (see
     * multi_connect_reports_each_server): the proxy's idle timer would end
     * it, a minute later. */
    TEST_NOT_ON_LIBKQUEUE("a refused connect is not reported");
    test_watchdog(110);
    proxy_world_start(&w, NULL, true);
    for (i = 0; i < 8; i++)
        fd[i] = socket_to(w.proxy.addr, SOCK_STREAM);
    send_text(fd[0], "a request nobody will get");
    for (i = 0; i < 8; i++) {
        /* The end of stream or a reset; a read that gave up is a failure. */
        long long n = recv(fd[i], &byte, 1, 0);
#ifdef _WIN32
        CHECK(n == 0 || (n < 0 && WSAGetLastError() != WSAETIMEDOUT));
#else
        CHECK(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK));
#endif
        mio_close(fd[i]);
    }
    for (waited = 0; w.fds >= 0 && child_descriptors(&w.proxy.child) != w.fds && waited < 10000;
         waited += 10)
        test_sleep_ms(10);
    if (w.fds >= 0)
        CHECK_EQ(child_descriptors(&w.proxy.child), w.fds);
    proxy_world_listen(&w);                 /* the upstream is there now */
    proxy_world_check(&w, plans, sizeof plans / sizeof plans[0]);
    proxy_world_stop(&w);
}

/* A relay that moves nothing is closed after the idle time (-k), never
 * before, whether or not bytes went through first; one that keeps moving
 * bytes, however few, is not. */
TEST(proxy_idle_timeout)
{
    static const struct relay_plan idle[] = {
        { .up = 0, .down = 0, .hold = true },
        { .up = 5000, .down = 7000, .hold = true },
    };
    /* A byte every 50 ms for 2 s: four times the idle time. */
    static const struct relay_plan trickle = { .up = 40, .hold = true, .trickle_ms = 50 };
    struct proxy_world w;
    int64_t start;
    int attempt;

    test_watchdog(110);
    proxy_world_start(&w, "0.5", false);
    start = test_now_ns();
    proxy_world_check(&w, idle, sizeof idle / sizeof idle[0]);
    CHECK(test_now_ns() - start >= 500 * MIO_MSEC);
    /* Only a gap the test itself made between two bytes (a machine so
     * loaded that this process did not run for a while) may let the relay
     * go idle: then it is tried again, and after three such runs the
     * check is left undecided rather than failed. */
    for (attempt = 1;; attempt++) {
        const char *error = proxy_world_run(&w, &trickle, 1);
        if (error == NULL)
            break;
        if (w.max_gap < 250 * MIO_MSEC)
            FAIL("proxy: %s, with a byte every %.0f ms at most", error, (double)w.max_gap / 1e6);
        if (attempt == 3) {
            fprintf(stderr, "the test paused too long between bytes: left undecided\n");
            break;
        }
    }
    proxy_world_stop(&w);
}

/* ---- processes and signals ---- */

/* What run_with_timeout runs: this program again, as one of these. */
CHILD_CASE(print_and_exit_3)
{
    printf("out line\n");
    fflush(stdout);
    fprintf(stderr, "err line\n");
    exit(3);
}

CHILD_CASE(print_and_hang)
{
    printf("started\n");
    fflush(stdout);
    test_sleep_ms(60000);
    exit(0);
}

/* run_with_timeout -b BACKEND SECONDS <this program> CASE BACKEND. */
static void run_with_timeout(struct child *c, const char *seconds, const char *what)
{
    static char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, (char *)seconds,
                     (char *)child_self_path(), (char *)what, (char *)test_backend, NULL };
    CHECK(argv[4] != NULL);
    example_path(path, sizeof path, "run_with_timeout");
    child_start(c, argv, NULL, CHILD_STDOUT);
}

TEST(run_with_timeout_streams_output_and_exits_with_its_status)
{
    struct child c;
    char line[256];

    run_with_timeout(&c, "60", "print_and_exit_3");
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "out line") == 0);
    child_read_line(&c, line, sizeof line);
    CHECK(line[0] == '\0');
    CHECK_EQ(child_wait(&c), 3);
    run_with_timeout(&c, "60", "no_such_case");     /* the harness says 2 */
    CHECK_EQ(child_wait(&c), 2);
}

TEST(run_with_timeout_ends_a_command_past_its_deadline)
{
    struct child c;
    char line[256];
    int64_t start = test_now_ns();

    /* Long enough for the command to start under a sanitizer or wine. */
    run_with_timeout(&c, "3", "print_and_hang");
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "started") == 0);
    CHECK_EQ(child_wait(&c), 124);
    CHECK(test_now_ns() - start >= 3 * MIO_SEC);
    CHECK(test_now_ns() - start < 30 * MIO_SEC);
}

TEST(run_with_timeout_says_a_missing_program_is_missing)
{
    static char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "10", "no-such-program-anywhere", NULL };
    struct child c;
    char line[256];

    example_path(path, sizeof path, "run_with_timeout");
    child_start(&c, argv, NULL, CHILD_STDERR);
    child_read_line(&c, line, sizeof line);
    CHECK(strstr(line, "no such file") != NULL);
    CHECK_EQ(child_wait(&c), 125);
}

/* Reads "started worker I pid P" and returns P. */
static long long started_worker(struct child *c, int i)
{
    char line[256];
    int idx;
    long long pid;
    child_read_line(c, line, sizeof line);
    if (sscanf(line, "started worker %d pid %lld", &idx, &pid) != 2 || idx != i)
        FAIL("expected worker %d to start, got \"%s\"", i, line);
    return pid;
}

static void end_process(long long pid)
{
#ifdef _WIN32
    HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE, (DWORD)pid);
    CHECK(h != NULL);
    CHECK(TerminateProcess(h, 9));
    CloseHandle(h);
#else
    CHECK_EQ(kill((pid_t)pid, SIGKILL), 0);
#endif
}

TEST(supervisor_restarts_workers_and_stops_gracefully)
{
    char path[4096], line[256], want[256];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "2", NULL };
    struct child c;
    long long pid0, pid1;
    int i;

    example_path(path, sizeof path, "supervisor");
    child_start(&c, argv, NULL, CHILD_STDOUT);
    pid0 = started_worker(&c, 0);
    pid1 = started_worker(&c, 1);
    /* A worker that dies comes back. */
    end_process(pid1);
    child_read_line(&c, line, sizeof line);
#ifdef _WIN32
    snprintf(want, sizeof want, "worker 1 pid %lld exited with code 9", pid1);
#else
    snprintf(want, sizeof want, "worker 1 pid %lld killed by signal %d", pid1, SIGKILL);
#endif
    if (strcmp(line, want) != 0)
        FAIL("got \"%s\", expected \"%s\"", line, want);
    pid1 = started_worker(&c, 1);
#ifndef _WIN32
    /* SIGHUP: all of them, each after its exit. */
    CHECK_EQ(kill(c.pid, SIGHUP), 0);
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "restarting all") == 0);
    for (i = 0; i < 4; i++) {
        child_read_line(&c, line, sizeof line);
        /* A worker just started may not watch SIGTERM yet: it dies of it. */
        CHECK(strstr(line, "exited with code 0") != NULL || strncmp(line, "started", 7) == 0 ||
              strstr(line, "killed by signal 15") != NULL);
    }
#endif
    (void)pid0;
    child_stop(&c);
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "stopping") == 0);
    for (i = 0; i < 2; i++) {
        child_read_line(&c, line, sizeof line);
        CHECK(strncmp(line, "worker ", 7) == 0);
    }
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "stopped") == 0);
    CHECK_EQ(child_wait(&c), 0);
}

#ifndef _WIN32
/* ---- under injected system-call failures --------------------------------
 * The examples run with tests/fault/fault.c preloaded, which makes accept,
 * reads, writes, epoll_ctl, the waits and the constructors fail as the
 * kernel does (Linux with glibc; elsewhere these tests skip).  Whatever
 * failed, a server must afterwards still accept and serve a clean client
 * (every byte checked), hold no descriptor more than before, and stop
 * cleanly, freeing everything: the library's report at exit lists every
 * descriptor left open that was not open at load (only the library's
 * reserve, /dev/null, is kept on purpose). */
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

struct faulty {
    struct server s;
    char control[512], report[512], tally[512];
};

/* What a run's report says. */
struct fault_report {
    unsigned long faults;       /* injected, all calls together */
    unsigned long nodelay;      /* TCP_NODELAY turned on, how often */
};

/* Sets up the injection for the next child (calls: MIO_FAULT_CALLS, NULL
 * for all; rate and schedule: NULL for none), switched on or off from the
 * start, and returns the environment string that preloads the library. */
static const char *faults_prepare(struct faulty *f, const char *calls, const char *rate,
                                  const char *schedule, bool on)
{
#ifdef MIO_FAULT_SHIM
    static char preload[4200];
    static int runs;
    FILE *file;
    int n = runs++;

    /* The shim would fail libkqueue's own epoll and eventfd calls, which a
     * BSD kernel does not make (and libkqueue leaks on some of them). */
    TEST_NOT_ON_LIBKQUEUE("faults injected into its own system calls");

    snprintf(f->control, sizeof f->control, "%s/control-%d", test_tmp_dir(), n);
    snprintf(f->report, sizeof f->report, "%s/report-%d", test_tmp_dir(), n);
    snprintf(f->tally, sizeof f->tally, "%s/tally-%d", test_tmp_dir(), n);
    CHECK((file = fopen(f->control, "w")) != NULL);
    CHECK(fputc(on ? '1' : '0', file) != EOF);
    CHECK(fclose(file) == 0);
    CHECK((file = fopen(f->tally, "w")) != NULL);
    CHECK(fclose(file) == 0);
    CHECK(setenv("MIO_FAULT_CONTROL", f->control, 1) == 0);
    CHECK(setenv("MIO_FAULT_TALLY", f->tally, 1) == 0);
    CHECK(setenv("MIO_FAULT_REPORT", f->report, 1) == 0);
    CHECK((calls != NULL ? setenv("MIO_FAULT_CALLS", calls, 1)
                         : unsetenv("MIO_FAULT_CALLS")) == 0);
    CHECK((rate != NULL ? setenv("MIO_FAULT_RATE", rate, 1) : unsetenv("MIO_FAULT_RATE")) == 0);
    CHECK((schedule != NULL ? setenv("MIO_FAULT_SCHEDULE", schedule, 1)
                            : unsetenv("MIO_FAULT_SCHEDULE")) == 0);
    /* A sanitizer's runtime may be a shared library that wants to be first. */
    CHECK(setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1) == 0);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MIO_FAULT_SHIM);
    return preload;
#else
    (void)f, (void)calls, (void)rate, (void)schedule, (void)on;
    SKIP("no system-call failure injection here (Linux with glibc only)");
#endif
}

/* The settings stay with the child that got them; later children (the
 * clients) run clean. */
static void faults_forget(void)
{
    static const char *const names[] = { "MIO_FAULT_CONTROL", "MIO_FAULT_REPORT",
                                         "MIO_FAULT_TALLY", "MIO_FAULT_CALLS",
                                         "MIO_FAULT_RATE", "MIO_FAULT_SCHEDULE" };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(unsetenv(names[i]) == 0);
}

/* The faults injected so far in the running server. */
static unsigned long faults_so_far(const struct faulty *f)
{
    unsigned long n = 0;
    FILE *file = fopen(f->tally, "r");
    CHECK(file != NULL);
    if (fscanf(file, "%lu", &n) != 1)
        n = 0;
    fclose(file);
    return n;
}

static void faults_switch(const struct faulty *f, bool on)
{
    int fd = open(f->control, O_WRONLY);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, on ? "1" : "0", 1, 0) == 1);
    CHECK(close(fd) == 0);
}

/* Reads the report of a finished run; fails on a descriptor it left open. */
static struct fault_report faults_report(const struct faulty *f)
{
    struct fault_report r = { 0, 0 };
    char line[512], name[64], target[400];
    unsigned long count, faults;
    int value;
    FILE *file = fopen(f->report, "r");

    if (file == NULL)
        FAIL("no report from the run (%s): it did not exit normally", f->report);
    while (fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "call %63s %lu faults %lu", name, &count, &faults) == 3)
            r.faults += faults;
        else if (sscanf(line, "setsockopt TCP_NODELAY=%d %lu", &value, &count) == 2 && value)
            r.nodelay += count;
        else if (sscanf(line, "fd %*d %399s", target) == 1 && strcmp(target, "/dev/null") != 0)
            FAIL("a descriptor left open at exit: %s", line);
    }
    fclose(file);
    return r;
}

/* Starts example server `name` on this run's backend with faults set up as
 * for faults_prepare. */
static void faulty_start(struct faulty *f, const char *name, const char *calls, const char *rate,
                         const char *schedule, bool on)
{
    char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "60", "127.0.0.1:0", NULL };
    const char *env = faults_prepare(f, calls, rate, schedule, on);

    example_path(path, sizeof path, name);
    server_run(&f->s, name, argv, env);
    faults_forget();
}

static struct fault_report faulty_stop(struct faulty *f)
{
    faults_switch(f, false);
    server_stop(&f->s);
    return faults_report(f);
}

/* Waits (10 s at most) until the server holds `fds` descriptors again. */
static void fds_back_to(const struct server *s, int fds)
{
    int waited;
    for (waited = 0; server_fds(s) != fds && waited < 10000; waited += 10)
        test_sleep_ms(10);
    CHECK_EQ(server_fds(s), fds);
}

/* A blocking socket to addr whose reads give up after `ms`. */
static mio_fd socket_within(const char *text, int type, int ms)
{
    struct timeval limit = { ms / 1000, ms % 1000 * 1000 };
    mio_fd fd = socket_to(text, type);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    return fd;
}

/* ---- clean clients: every byte checked ---- */

/* echo_client's load: no error, every byte back. */
static void echo_check(const struct server *s)
{
    struct summary r = client_run(s, "4", "0.3", "1000");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified > 0);
    CHECK_EQ(r.verified % 1000, 0);
}

/* Two clients: each is told of the other, a line from one reaches the
 * other, a departure is announced. */
static void chat_check(const struct server *s)
{
    char line[256], want[256];
    unsigned a_id, b_id;
    mio_fd a, b;
    int i;

    a = socket_to(s->addr, SOCK_STREAM);
    read_line(a, line, sizeof line);
    CHECK(sscanf(line, "* %u joined", &a_id) == 1);
    b = socket_to(s->addr, SOCK_STREAM);
    read_line(b, line, sizeof line);
    CHECK(sscanf(line, "* %u joined", &b_id) == 1);
    snprintf(want, sizeof want, "* %u joined", b_id);
    expect_line(a, want);
    for (i = 0; i < 50; i++) {
        char text[64];
        snprintf(text, sizeof text, "line %d of a clean client\n", i);
        send_text(a, text);
        snprintf(want, sizeof want, "%u: line %d of a clean client", a_id, i);
        expect_line(b, want);
    }
    mio_close(b);
    snprintf(want, sizeof want, "* %u left", b_id);
    expect_line(a, want);
    mio_close(a);
}

/* One keep-alive connection, requests pipelined, every reply whole. */
static void http_check(const struct server *s)
{
    char body[64];
    mio_fd fd = socket_to(s->addr, SOCK_STREAM);
    int i;

    for (i = 0; i < 20; i++)
        send_text(fd, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    for (i = 0; i < 20; i++) {
        CHECK(!http_response(fd, body, sizeof body));
        CHECK(strcmp(body, "Hello, world!\n") == 0);
    }
    send_text(fd, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    CHECK(http_response(fd, body, sizeof body));
    CHECK_EQ(recv(fd, body, sizeof body, 0), 0);
    mio_close(fd);
}

/* Every datagram comes back whole. */
static void udp_check(const struct server *s)
{
    char msg[64], got[128];
    mio_fd fd = socket_to(s->addr, SOCK_DGRAM);
    int i;
    for (i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "datagram %d", i);
        send_text(fd, msg);
        CHECK_EQ(recv(fd, got, sizeof got, 0), (long long)strlen(msg));
        CHECK(memcmp(got, msg, strlen(msg)) == 0);
    }
    mio_close(fd);
}

/* ---- loads that tolerate what the faults do to them ---- */

/* echo_client's load; its errors (connections the server shed) are let go. */
static void echo_load_faulty(const struct server *s)
{
    char path[4096], line[256];
    char *argv[] = { path, "-b", (char *)test_backend, "-c", "10", "-d", "0.5", "-s", "3000",
                     (char *)s->addr, NULL };
    struct child c;
    example_path(path, sizeof path, "echo_client");
    child_start(&c, argv, NULL, CHILD_STDOUT);
    child_read_line(&c, line, sizeof line);
    child_wait(&c);
    CHECK(strncmp(line, "requests/s ", 11) == 0);
}

/* `clients` connections each send `request` `times` times without waiting,
 * then read whatever comes until the server has been quiet for a while;
 * closed connections and lost replies are let go. */
static void raw_load(const struct server *s, int type, int clients, const char *request,
                     int times)
{
    struct pollfd pfd[16];
    char buf[4096];
    int64_t end = test_now_ns() + 2 * MIO_SEC;
    int i, k, open = 0;

    CHECK(clients <= 16);
    for (i = 0; i < clients; i++) {
        pfd[i].fd = socket_within(s->addr, type, 100);
        pfd[i].events = POLLIN;
        for (k = 0; k < times; k++)
            (void)send(pfd[i].fd, request, strlen(request), MSG_NOSIGNAL | MSG_DONTWAIT);
        open++;
    }
    while (open > 0 && test_now_ns() < end) {
        int n = poll(pfd, (nfds_t)clients, 300);
        if (n <= 0)
            break;                      /* quiet for 300 ms */
        for (i = 0; i < clients; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            if (recv(pfd[i].fd, buf, sizeof buf, MSG_DONTWAIT) <= 0 && type == SOCK_STREAM) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open--;
            }
        }
    }
    for (i = 0; i < clients; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
}

enum example_kind { ECHO, CHAT, HTTP, UDP };

static enum example_kind kind_of(const char *name)
{
    if (strcmp(name, "chat_server") == 0)
        return CHAT;
    if (strcmp(name, "http_server") == 0)
        return HTTP;
    if (strcmp(name, "udp_echo") == 0)
        return UDP;
    return ECHO;
}

static void clean_check(const struct server *s, const char *name)
{
    switch (kind_of(name)) {
    case ECHO: echo_check(s); break;
    case CHAT: chat_check(s); break;
    case HTTP: http_check(s); break;
    case UDP: udp_check(s); break;
    }
}

static void faulty_load(const struct server *s, const char *name)
{
    switch (kind_of(name)) {
    case ECHO: echo_load_faulty(s); break;
    case CHAT: raw_load(s, SOCK_STREAM, 6, "a line to everyone\n", 40); break;
    case HTTP: raw_load(s, SOCK_STREAM, 6, "GET / HTTP/1.1\r\nHost: test\r\n\r\n", 40); break;
    case UDP: raw_load(s, SOCK_DGRAM, 4, "a datagram", 100); break;
    }
}

/* The whole cycle: serve a load while 5% of the server's calls fail (every
 * call, every error of its kind), then, injection off, give back every
 * descriptor, serve a clean client exactly, stop cleanly and leave nothing
 * open; a TCP server turns Nagle off on what it accepts. */
static void survives_faults(const char *name)
{
    struct faulty f;
    struct fault_report r;
    int baseline, i;

    faulty_start(&f, name, NULL, "0.05", NULL, false);
    baseline = server_fds(&f.s);
    faults_switch(&f, true);
    /* A seed may spare every call of one load (a server answering in
     * batches makes few): the load goes again until one failed. */
    for (i = 0; i < 20 && (i == 0 || faults_so_far(&f) == 0); i++)
        faulty_load(&f.s, name);
    faults_switch(&f, false);
    fds_back_to(&f.s, baseline);
    clean_check(&f.s, name);
    fds_back_to(&f.s, baseline);
    r = faulty_stop(&f);
    CHECK(r.faults > 0);
    if (kind_of(name) != UDP)
        CHECK(r.nodelay > 0);
}

POSIX_TEST(faults_echo_server)
{
    survives_faults("echo_server");
}

POSIX_TEST(faults_loop_echo_server)
{
    survives_faults("loop_echo_server");
}

POSIX_TEST(faults_chat_server)
{
    survives_faults("chat_server");
}

POSIX_TEST(faults_http_server)
{
    survives_faults("http_server");
}

POSIX_TEST(faults_udp_echo)
{
    survives_faults("udp_echo");
}

/* Every call the proxy makes may fail, and its transfers come up short:
 * the shim gives a cut transfer the edge the kernel would (the rest
 * arriving, or room opening, the moment after), so the proxy's reliance on
 * mio.h's drain rule is tested too. */
#define PROXY_FAULTS                                                          \
    "accept,accept4,socket,socketpair,pipe,pipe2,connect,epoll_create,"      \
    "epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,epoll_pwait2,poll,ppoll,"  \
    "eventfd,close,read,readv,recv,recvfrom,recvmsg,write,writev,send,sendto,sendmsg"

/* The proxy, with faults set up as for faults_prepare, in front of a clean
 * echo_server: echo_client's checks then hold through it. */
static void faulty_proxy_start(struct faulty *f, struct server *echo, const char *calls,
                               const char *rate, const char *schedule, bool on)
{
    char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "-n", "60", "127.0.0.1:0", echo->addr,
                     NULL };
    const char *env;

    server_start(echo);
    env = faults_prepare(f, calls, rate, schedule, on);
    example_path(path, sizeof path, "proxy");
    server_run(&f->s, "proxy", argv, env);
    faults_forget();
}

/* survives_faults for the proxy: 5% of its calls fail under load (its
 * upstream connects too), then it gives back every descriptor, relays a
 * clean client exactly and stops cleanly. */
POSIX_TEST(faults_proxy)
{
    struct server echo;
    struct faulty f;
    struct fault_report r;
    int baseline, i;

    faulty_proxy_start(&f, &echo, PROXY_FAULTS, "0.05", NULL, false);
    baseline = server_fds(&f.s);
    faults_switch(&f, true);
    for (i = 0; i < 20 && (i == 0 || faults_so_far(&f) == 0); i++)
        echo_load_faulty(&f.s);
    faults_switch(&f, false);
    fds_back_to(&f.s, baseline);
    echo_check(&f.s);
    fds_back_to(&f.s, baseline);
    r = faulty_stop(&f);
    CHECK(r.faults > 0);
    CHECK(r.nodelay > 0);
    server_stop(&echo);
}

/* Accept errors a server must live through: clients gone before they were
 * taken and the kernel short of memory for a moment (skip and go on), and
 * running out of descriptors while no connection is open, with the queue
 * shed failing too (then only a retry later can bring the listener back).
 * Either way the clients that come are served, and the scheduled faults all
 * happened. */
static void accepts_after_errors(const char *name)
{
    static const char *const schedules[] = {
        "accept4@1=ECONNABORTED,accept4@2=EPROTO,accept4@3=EPERM,accept4@4=ENOBUFS,"
        "accept4@5=ENOMEM,accept4@6=EINTR",
        "accept4@1=EMFILE,accept4@2=EMFILE",
    };
    static const unsigned long faults[] = { 6, 2 };
    size_t i;

    for (i = 0; i < 2; i++) {
        struct faulty f;
        struct fault_report r;
        faulty_start(&f, name, "accept4", NULL, schedules[i], true);
        clean_check(&f.s, name);
        r = faulty_stop(&f);
        CHECK_EQ(r.faults, faults[i]);
    }
}

POSIX_TEST(faults_accept_echo_server)
{
    accepts_after_errors("echo_server");
}

POSIX_TEST(faults_accept_loop_echo_server)
{
    accepts_after_errors("loop_echo_server");
}

POSIX_TEST(faults_accept_chat_server)
{
    accepts_after_errors("chat_server");
}

POSIX_TEST(faults_accept_http_server)
{
    accepts_after_errors("http_server");
}

/* Writes and reads that fail for a moment (no buffer memory, a signal, a
 * short count) lose no connection and no byte: the server keeps what it has
 * not sent and tries again, even where no event would tell it to. */
static void survives_transient_io(const char *name)
{
    struct faulty f;
    int i;
    faulty_start(&f, name,
                 "send:ENOBUFS/ENOMEM/EINTR/short,write:ENOBUFS/ENOMEM/short,"
                 "sendmsg:ENOBUFS/ENOMEM/short,writev:ENOBUFS/ENOMEM/short,"
                 "read:ENOMEM/short,recv:ENOMEM/short,readv:ENOMEM/short",
                 "0.3", NULL, true);
    for (i = 0; i < 20 && (i == 0 || faults_so_far(&f) == 0); i++)
        clean_check(&f.s, name);
    CHECK(faulty_stop(&f).faults > 0);
}

POSIX_TEST(faults_transient_io_echo_server)
{
    survives_transient_io("echo_server");
}

POSIX_TEST(faults_transient_io_loop_echo_server)
{
    survives_transient_io("loop_echo_server");
}

POSIX_TEST(faults_transient_io_chat_server)
{
    survives_transient_io("chat_server");
}

POSIX_TEST(faults_transient_io_http_server)
{
    survives_transient_io("http_server");
}

/* The proxy keeps every byte through transient read and write errors and
 * short transfers on either of its sockets. */
POSIX_TEST(faults_transient_io_proxy)
{
    struct server echo;
    struct faulty f;

    faulty_proxy_start(&f, &echo,
                       "send:ENOBUFS/ENOMEM/EINTR/short,write:ENOBUFS/ENOMEM/short,"
                       "sendmsg:ENOBUFS/ENOMEM/short,writev:ENOBUFS/ENOMEM/short,"
                       "read:ENOMEM/short,recv:ENOMEM/short,readv:ENOMEM/short",
                       "0.3", NULL, true);
    echo_check(&f.s);
    CHECK(faulty_stop(&f).faults > 0);
    server_stop(&echo);
}

/* Every start-up step failing in turn (the N-th descriptor-making or
 * registering call, N = 1, 2, ...): the example either reports it and exits
 * 1, or starts, serves and stops; in both cases it frees everything (no
 * descriptor left open; under ASan, no leak).  Ends at the first N that
 * start-up never reaches. */
static void startup_sweep(const char *name, char *const extra[])
{
    const char *calls = "socket,socketpair,pipe2,eventfd,epoll_create1,epoll_ctl,connect";
    char path[4096], schedule[32], line[256];
    char *argv[16] = { path };
    int n, argc = 1, i, status;

    example_path(path, sizeof path, name);
    for (i = 0; extra[i] != NULL; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    for (n = 1; n < 60; n++) {
        struct faulty f;
        struct fault_report r;
        const char *env;
        snprintf(schedule, sizeof schedule, "*@%d", n);
        env = faults_prepare(&f, calls, NULL, schedule, true);
        child_start(&f.s.child, argv, env, CHILD_STDOUT);
        faults_forget();
        child_read_line(&f.s.child, line, sizeof line);
        if (strncmp(line, "listening on ", 13) == 0) {
            child_stop(&f.s.child);
            child_read_line(&f.s.child, line, sizeof line);
            CHECK_EQ(child_wait(&f.s.child), 0);
            if (strcmp(line, "stopped") != 0)
                FAIL("fault %d: the last line is \"%s\", not \"stopped\"", n, line);
        } else {
            child_read_all(&f.s.child, line, sizeof line);
            status = child_wait(&f.s.child);
            if (status != 0 && status != 1)
                FAIL("fault %d: exit status %d", n, status);
        }
        r = faults_report(&f);
        if (r.faults == 0)
            return;                     /* start-up had fewer calls: done */
    }
    FAIL("start-up has more than %d calls?", n);
}

/* The servers take the same command line. */
static void server_startup_sweep(const char *name)
{
    char *extra[] = { "-b", (char *)test_backend, "-n", "60", "127.0.0.1:0", NULL };
    startup_sweep(name, extra);
}

POSIX_TEST(faults_startup_echo_server)
{
    server_startup_sweep("echo_server");
}

POSIX_TEST(faults_startup_loop_echo_server)
{
    server_startup_sweep("loop_echo_server");
}

POSIX_TEST(faults_startup_chat_server)
{
    server_startup_sweep("chat_server");
}

POSIX_TEST(faults_startup_http_server)
{
    server_startup_sweep("http_server");
}

POSIX_TEST(faults_startup_udp_echo)
{
    server_startup_sweep("udp_echo");
}

POSIX_TEST(faults_startup_proxy)
{
    char upstream[MIO_ADDR_STRLEN];
    char *extra[] = { "-b", (char *)test_backend, "-n", "60", "127.0.0.1:0", upstream, NULL };
    refused_addr(upstream, sizeof upstream);
    startup_sweep("proxy", extra);
}

POSIX_TEST(faults_startup_event_loop)
{
    char *extra[] = { "0.01", NULL };
    default_backend_only("event_loop");
    startup_sweep("event_loop", extra);
}

POSIX_TEST(faults_startup_multi_connect)
{
    struct server a;
    char *extra[] = { "-b", (char *)test_backend, "-t", "2", a.addr, a.addr, NULL };
    server_start(&a);
    startup_sweep("multi_connect", extra);
    server_stop(&a);
}

/* multi_connect with a third of its reads and writes failing for a moment
 * (and its waits interrupted): every server still answers, on connections
 * with Nagle off. */
POSIX_TEST(faults_multi_connect)
{
    struct server a, b;
    struct faulty f;
    struct fault_report r;
    char path[4096], line[256], name[MIO_ADDR_STRLEN], reply[64];
    char *argv[] = { path, "-b", (char *)test_backend, "-m", "a longer line to cut short",
                     a.addr, b.addr, a.addr, b.addr, NULL };
    const char *env;
    double ms;
    int i, run = 0;

    server_start(&a);
    server_start(&b);
    example_path(path, sizeof path, "multi_connect");
    /* A seed may spare every call of a run (it makes a few dozen): the next
     * seed runs then, until one failed. */
    do {
        if (run > 0) {
            const char *given = getenv("MIO_FAULT_SEED");
            char next[32];
            snprintf(next, sizeof next, "%llu",
                     (given != NULL ? strtoull(given, NULL, 0) : 1) + 1);
            CHECK(setenv("MIO_FAULT_SEED", next, 1) == 0);
        }
        env = faults_prepare(&f, "send:ENOBUFS/ENOMEM/short,read:ENOMEM/short,epoll_wait,"
                                 "epoll_pwait2,poll,ppoll", "0.3", NULL, true);
        child_start(&f.s.child, argv, env, CHILD_STDOUT);
        faults_forget();
        for (i = 0; i < 4; i++) {
            child_read_line(&f.s.child, line, sizeof line);
            if (sscanf(line, "%79s ok %lf ms %63[^\n]", name, &ms, reply) != 3 ||
                strcmp(reply, "a longer line to cut short") != 0)
                FAIL("line %d: \"%s\"", i + 1, line);
        }
        CHECK_EQ(child_wait(&f.s.child), 0);
        r = faults_report(&f);
        CHECK_EQ(r.nodelay, 4);
    } while (r.faults == 0 && ++run < 10);
    CHECK(r.faults > 0);
    server_stop(&a);
    server_stop(&b);
}

/* The event loop example with its waits interrupted or failing for want of
 * memory: every line in order, a clean exit. */
POSIX_TEST(faults_event_loop)
{
    struct faulty f;
    char path[4096];
    char *argv[] = { path, "0.05", NULL };
    const char *env;

    default_backend_only("event_loop");
    example_path(path, sizeof path, "event_loop");
    env = faults_prepare(&f, "epoll_wait,epoll_pwait2,poll,ppoll", "0.3", NULL, true);
    child_start(&f.s.child, argv, env, CHILD_STDOUT);
    faults_forget();
    event_loop_lines(&f.s.child, NULL);
    CHECK_EQ(child_wait(&f.s.child), 0);
    faults_report(&f);
}
#endif
