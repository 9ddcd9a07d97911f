/* The examples are programs people copy and run: check them end to end, with
 * examples/echo_client loading examples/echo_server on this run's backend,
 * and a plain socket client talking to each of the other servers. */
#include "harness.h"

#include "child.h"

#ifndef _WIN32
#include <sys/time.h>
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
static void server_run(struct server *s, const char *name, char *const argv[])
{
    char line[256], backend[32];
    int status;

    child_start(&s->child, argv, NULL, CHILD_STDOUT);
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
    server_run(s, name, argv);
}

static void server_start(struct server *s)
{
    example_server_start(s, "echo_server", NULL, NULL);
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

/* examples/echo_client's load against the echo server `name`: every byte
 * comes back, in whole messages. */
static void echo_load(const char *name, const char *seconds)
{
    struct server s;
    struct summary r;
    example_server_start(&s, name, NULL, NULL);
    r = client_run(&s, "10", seconds, "64");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified > 0);
    CHECK_EQ(r.verified % 64, 0);
    server_stop(&s);
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
    server_run(&s, "echo_server", argv);
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

/* The next line from fd is `want` (without its newline). */
static void expect_line(mio_fd fd, const char *want)
{
    char line[256];
    size_t n = 0;
    for (;;) {
        CHECK(n + 1 < sizeof line);
        CHECK_EQ(recv(fd, line + n, 1, 0), 1);
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
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

/* examples/event_loop at a tenth of its delays: the channel message at once,
 * the timeout after 0.3 s, the shutdown message after 0.5 s, in that order
 * and never early.  It takes the default backend, so it runs once. */
TEST(event_loop_example_runs_in_order)
{
    static const char *const want[] = { "channel notify", "time out", "shutdown event loop" };
    static const double not_before[] = { 0, 0.3, 0.5 };
    char path[4096], line[256], what[64];
    char *argv[] = { path, "0.1", NULL };
    struct child c;
    mio_poll *p;
    double at;
    int i;

    OK(mio_poll_new(&p));
    if (strcmp(mio_poll_backend(p), test_backend) != 0) {
        mio_poll_free(p);
        SKIP("event_loop runs on the default backend only");
    }
    mio_poll_free(p);
    example_path(path, sizeof path, "event_loop");
    child_start(&c, argv, NULL, CHILD_STDOUT);
    for (i = 0; i < 3; i++) {
        child_read_line(&c, line, sizeof line);
        CHECK(sscanf(line, "%lf %63[^\n]", &at, what) == 2);
        if (strcmp(what, want[i]) != 0)
            FAIL("line %d is \"%s\", expected \"%s\"", i + 1, line, want[i]);
        CHECK(at >= not_before[i] - 0.001);  /* printed with 3 decimals */
    }
    child_read_line(&c, line, sizeof line);
    CHECK(line[0] == '\0');                 /* nothing more */
    CHECK_EQ(child_wait(&c), 0);
}
