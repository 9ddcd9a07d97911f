/* The examples are programs people copy and run: check them end to end, with
 * examples/echo_client loading examples/echo_server on this run's backend,
 * and a plain socket client talking to each of the other servers. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct server {
    pid_t pid;
    char addr[MIO_ADDR_STRLEN];
};

struct summary {
    double requests_per_s;
    unsigned long long errors, verified;
};

static void example_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("MIO_EXAMPLES_DIR");
#ifdef MIO_EXAMPLES_DIR
    if (dir == NULL)
        dir = MIO_EXAMPLES_DIR;
#endif
    if (dir == NULL)
        SKIP("examples not built (set MIO_EXAMPLES_DIR)");
    CHECK(snprintf(buf, size, "%s/%s", dir, name) < (int)size);
    if (access(buf, X_OK) != 0)
        SKIP("%s not built", buf);
}

/* Runs argv[0] with its stdout on a pipe whose read end is returned in *out. */
static pid_t spawn(char *const argv[], int *out)
{
    int fds[2];
    pid_t pid;
    CHECK(pipe(fds) == 0);
    CHECK(fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    *out = fds[0];
    return pid;
}

/* Reads up to the first newline (or the end) of fd. */
static void read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
}

static int exit_status(pid_t pid)
{
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Servers still running when a check fails: killed on the way out, or ctest
 * would wait for them (they hold the test's stderr). */
static pid_t running_servers[4];

static void server_kill(void)
{
    size_t i;
    for (i = 0; i < sizeof running_servers / sizeof running_servers[0]; i++)
        if (running_servers[i] > 0)
            kill(running_servers[i], SIGKILL);
}

static void server_running(pid_t pid, bool running)
{
    size_t i;
    for (i = 0; i < sizeof running_servers / sizeof running_servers[0]; i++) {
        if (running && running_servers[i] == 0) {
            running_servers[i] = pid;
            return;
        }
        if (!running && running_servers[i] == pid) {
            running_servers[i] = 0;
            return;
        }
    }
    CHECK(!running);
}

/* Starts the example server `name` (echo_server if not said) on this run's
 * backend, with an extra option if not NULL (it exits by itself after a
 * minute should the test die), and reads its address from its first line.  A
 * descriptor limit (max_fds, if not NULL) is set by a shell in between: under
 * valgrind, setrlimit before exec would only change valgrind's idea of it. */
static struct server example_server_start(const char *name, const char *max_fds,
                                          const char *option, const char *value)
{
    struct server s;
    char path[4096], line[256], backend[32], limit[64];
    char *argv[] = { "/bin/sh", "-c", limit, path, "-b", (char *)test_backend,
                     "-n", "60", (char *)option, (char *)value, "127.0.0.1:0", NULL };
    int fd, status;

    if (option == NULL)
        argv[8] = argv[10];             /* no extra option: ADDR goes there */
    example_path(path, sizeof path, name);
    if (max_fds != NULL)
        snprintf(limit, sizeof limit, "ulimit -n %s && exec \"$0\" \"$@\"", max_fds);
    s.pid = spawn(max_fds != NULL ? argv : argv + 3, &fd);
    server_running(s.pid, true);
    atexit(server_kill);
    read_line(fd, line, sizeof line);
    close(fd);
    if (line[0] == '\0') {
        status = exit_status(s.pid);
        server_running(s.pid, false);
        if (status == 77)
            SKIP("%s has no backend %s", name, test_backend);
        FAIL("%s printed nothing and exited %d", name, status);
    }
    CHECK(sscanf(line, "listening on %79s backend %31s", s.addr, backend) == 2);
    CHECK(strcmp(backend, test_backend) == 0);
    return s;
}

static struct server server_start(const char *max_fds)
{
    return example_server_start("echo_server", max_fds, NULL, NULL);
}

/* SIGTERM is the clean way out: everything freed, exit status 0. */
static void server_stop(struct server *s)
{
    CHECK(kill(s->pid, SIGTERM) == 0);
    server_running(s->pid, false);
    CHECK_EQ(exit_status(s->pid), 0);
}

static struct summary client_run(const struct server *s, const char *conns,
                                 const char *seconds, const char *bytes)
{
    struct summary r;
    char path[4096], line[256];
    char *argv[] = { path, "-b", (char *)test_backend, "-c", (char *)conns, "-d",
                     (char *)seconds, "-s", (char *)bytes, (char *)s->addr, NULL };
    int fd;
    pid_t pid;

    example_path(path, sizeof path, "echo_client");
    pid = spawn(argv, &fd);
    read_line(fd, line, sizeof line);
    close(fd);
    CHECK_EQ(exit_status(pid), 0);
    CHECK(sscanf(line, "requests/s %lf p50 %*f us p99 %*f us errors %llu bytes verified %llu",
                 &r.requests_per_s, &r.errors, &r.verified) == 3);
    return r;
}

TEST(echo_client_against_echo_server)
{
    struct server s = server_start(NULL);
    struct summary r = client_run(&s, "10", "1", "64");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified > 0);
    CHECK_EQ(r.verified % 64, 0);
    server_stop(&s);
}

/* Messages far larger than the socket buffers: the server's writes come up
 * short and its output backs up while the client is still sending. */
TEST(echo_large_messages)
{
    struct server s = server_start(NULL);
    struct summary r = client_run(&s, "3", "0.5", "4000000");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.verified % 4000000, 0);
    server_stop(&s);
}

static int server_fds(pid_t pid)
{
    char path[64];
    int n = 0;
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    if ((d = opendir(path)) == NULL)
        SKIP("no %s", path);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Clients that fill the server's output and then reset: the server closes
 * them all (no descriptor left behind) and goes on serving. */
TEST(echo_server_survives_resets)
{
    static char junk[65536];
    struct server s = server_start(NULL);
    struct linger hard = { 1, 0 };
    int baseline = server_fds(s.pid), i, waited;
    mio_addr addr;

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
                nanosleep(&(struct timespec){ 0, MIO_MSEC }, NULL);
            }
        }
        CHECK(written > 0);
        CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
        OK(mio_close(fd));          /* with linger 0: a reset */
    }
    for (waited = 0; server_fds(s.pid) != baseline && waited < 10000; waited += 10)
        nanosleep(&(struct timespec){ 0, 10 * MIO_MSEC }, NULL);
    CHECK_EQ(server_fds(s.pid), baseline);
    CHECK(client_run(&s, "4", "0.2", "100").requests_per_s > 0);
    server_stop(&s);
}

/* With too few descriptors for every client, the server stops accepting
 * when it runs out and starts again as connections close: every client is
 * served in the end. */
TEST(echo_server_resumes_after_emfile)
{
    struct server s = server_start("16");
    struct summary r = client_run(&s, "40", "0.3", "64");
    CHECK(r.requests_per_s > 0);
    CHECK_EQ(r.errors, 0);
    CHECK(r.verified >= 40 * 64);
    server_stop(&s);
}

/* ---- chat_server, http_server, udp_echo, multi_connect, event_loop ---- */

/* A blocking socket of `type` connected to addr, whose reads give up after
 * 10 s (a server that never answers fails the check, not the timeout). */
static int socket_to(const char *text, int type)
{
    struct timeval limit = { 10, 0 };
    mio_addr addr;
    int fd;
    OK(mio_addr_parse(text, &addr));
    fd = socket(addr.u.sa.sa_family, type, 0);
    CHECK(fd >= 0);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    CHECK(connect(fd, &addr.u.sa, addr.len) == 0);
    return fd;
}

static void send_text(int fd, const char *text)
{
    CHECK_EQ(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* The next line from fd is `want` (without its newline). */
static void expect_line(int fd, const char *want)
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
    struct server s = example_server_start("chat_server", NULL, NULL, NULL);
    int a = socket_to(s.addr, SOCK_STREAM), b, c;

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

    close(b);
    expect_line(a, "* 2 left");
    expect_line(c, "* 2 left");
    close(a);
    expect_line(c, "* 1 left");
    close(c);
    server_stop(&s);
}

/* Reads one 200 response (body NULL: to a HEAD, no body follows its
 * Content-Length); returns the body in `body` and whether it said
 * "Connection: close". */
static bool http_response(int fd, char *body, size_t size)
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
        CHECK_EQ(recv(fd, body, len, MSG_WAITALL), (ssize_t)len);
    body[len] = '\0';
    return strstr(head, "\r\nConnection: close\r\n") != NULL;
}

/* Several requests on one connection, pipelined, answered in order; the
 * connection stays open until a request asks for close. */
TEST(http_server_keep_alive_and_pipelining)
{
    struct server s = example_server_start("http_server", NULL, NULL, NULL);
    int fd = socket_to(s.addr, SOCK_STREAM), i;
    char body[64];

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
    close(fd);
    server_stop(&s);
}

/* An idle connection is closed after -k seconds, never before. */
TEST(http_server_closes_idle_connections)
{
    struct server s = example_server_start("http_server", NULL, "-k", "0.2");
    struct timespec t0, t1;
    char byte;
    int fd = socket_to(s.addr, SOCK_STREAM);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(recv(fd, &byte, 1, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 >= 0.19);
    close(fd);
    server_stop(&s);
}

/* Every datagram comes back, whole, to the socket that sent it. */
TEST(udp_echo_returns_datagrams)
{
    struct server s = example_server_start("udp_echo", NULL, NULL, NULL);
    int fd = socket_to(s.addr, SOCK_DGRAM), i;
    char msg[64], got[128];

    for (i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "datagram %d", i);
        send_text(fd, msg);
        CHECK_EQ(recv(fd, got, sizeof got, 0), (ssize_t)strlen(msg));
        CHECK(memcmp(got, msg, strlen(msg)) == 0);
    }
    send_text(fd, "");                      /* an empty datagram is one too */
    CHECK_EQ(recv(fd, got, sizeof got, 0), 0);
    close(fd);
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
    struct server a = server_start(NULL), b = server_start(NULL);
    char path[4096], refused[MIO_ADDR_STRLEN], line[256], name[MIO_ADDR_STRLEN], reply[64];
    char *argv[] = { path, "-b", (char *)test_backend, "-m", "hi there", a.addr, refused,
                     b.addr, NULL };
    double ms;
    int fd;
    pid_t pid;

    example_path(path, sizeof path, "multi_connect");
    refused_addr(refused, sizeof refused);
    pid = spawn(argv, &fd);
    read_line(fd, line, sizeof line);
    CHECK(sscanf(line, "%79s ok %lf ms %63[^\n]", name, &ms, reply) == 3);
    CHECK(strcmp(name, a.addr) == 0 && strcmp(reply, "hi there") == 0);
    read_line(fd, line, sizeof line);
    CHECK(sscanf(line, "%79s error %63[^\n]", name, reply) == 2);
    CHECK(strcmp(name, refused) == 0 && strcmp(reply, mio_strerror(MIO_ECONNREFUSED)) == 0);
    read_line(fd, line, sizeof line);
    CHECK(sscanf(line, "%79s ok %lf ms %63[^\n]", name, &ms, reply) == 3);
    CHECK(strcmp(name, b.addr) == 0 && strcmp(reply, "hi there") == 0);
    close(fd);
    CHECK_EQ(exit_status(pid), 1);
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
    mio_poll *p;
    double at;
    int fd, i;
    pid_t pid;

    OK(mio_poll_new(&p));
    if (strcmp(mio_poll_backend(p), test_backend) != 0) {
        mio_poll_free(p);
        SKIP("event_loop runs on the default backend only");
    }
    mio_poll_free(p);
    example_path(path, sizeof path, "event_loop");
    pid = spawn(argv, &fd);
    for (i = 0; i < 3; i++) {
        read_line(fd, line, sizeof line);
        CHECK(sscanf(line, "%lf %63[^\n]", &at, what) == 2);
        if (strcmp(what, want[i]) != 0)
            FAIL("line %d is \"%s\", expected \"%s\"", i + 1, line, want[i]);
        CHECK(at >= not_before[i] - 0.001);  /* printed with 3 decimals */
    }
    read_line(fd, line, sizeof line);
    CHECK(line[0] == '\0');                 /* nothing more */
    close(fd);
    CHECK_EQ(exit_status(pid), 0);
}
