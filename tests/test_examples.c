/* The examples are programs people copy and run: check them end to end, with
 * examples/echo_client loading examples/echo_server on this run's backend. */
#include "harness.h"

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

/* A server still running when a check fails: killed on the way out, or ctest
 * would wait for it (it holds the test's stderr). */
static pid_t running_server;

static void server_kill(void)
{
    if (running_server > 0)
        kill(running_server, SIGKILL);
}

/* Starts echo_server on this run's backend (it exits by itself after a minute
 * should the test die) and reads its address from its first line.  A
 * descriptor limit (max_fds, if not NULL) is set by a shell in between: under
 * valgrind, setrlimit before exec would only change valgrind's idea of it. */
static struct server server_start(const char *max_fds)
{
    struct server s;
    char path[4096], line[256], backend[32], limit[64];
    char *argv[] = { "/bin/sh", "-c", limit, path, "-b", (char *)test_backend,
                     "-n", "60", "127.0.0.1:0", NULL };
    int fd, status;

    example_path(path, sizeof path, "echo_server");
    if (max_fds != NULL)
        snprintf(limit, sizeof limit, "ulimit -n %s && exec \"$0\" \"$@\"", max_fds);
    s.pid = spawn(max_fds != NULL ? argv : argv + 3, &fd);
    running_server = s.pid;
    atexit(server_kill);
    read_line(fd, line, sizeof line);
    close(fd);
    if (line[0] == '\0') {
        status = exit_status(s.pid);
        running_server = 0;
        if (status == 77)
            SKIP("echo_server has no backend %s", test_backend);
        FAIL("echo_server printed nothing and exited %d", status);
    }
    CHECK(sscanf(line, "listening on %79s backend %31s", s.addr, backend) == 2);
    CHECK(strcmp(backend, test_backend) == 0);
    return s;
}

/* SIGTERM is the clean way out: everything freed, exit status 0. */
static void server_stop(struct server *s)
{
    CHECK(kill(s->pid, SIGTERM) == 0);
    running_server = 0;
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
