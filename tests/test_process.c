/* Child processes: spawned with each standard stream set up as asked, the
 * exit reported through a poll with its exact status, reaped by libmio only
 * (never a child it did not start), no zombie left, no descriptor leaked,
 * a failed exec an error in the parent.  The children are this program
 * itself, running one of the CHILD_CASEs below. */
#include "harness.h"
#include "child.h"

#include <pthread.h>
#include <stdatomic.h>
#ifdef _WIN32
#include <direct.h>
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#define getcwd _getcwd
#define chdir _chdir
#else
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---- what the children run ---- */

CHILD_CASE(exit_with)
{
    const char *code = getenv("MIO_TEST_EXIT");
    exit(code != NULL ? atoi(code) : 0);
}

CHILD_CASE(echo_stdin)
{
    char buf[65536];
    size_t n;
#ifdef _WIN32
    _setmode(0, _O_BINARY);
    _setmode(1, _O_BINARY);
#endif
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, n, stdout) != n)
            exit(2);
    fflush(stdout);
    exit(ferror(stdin) ? 1 : 0);
}

CHILD_CASE(sleep_long)
{
    test_sleep_ms(60000);
    exit(0);
}

CHILD_CASE(print_env_and_cwd)
{
    char cwd[1024];
    const char *v = getenv("MIO_TEST_VAR");
    printf("%s|%s\n", v != NULL ? v : "(unset)", getcwd(cwd, sizeof cwd) != NULL ? cwd : "?");
    fflush(stdout);
    exit(0);
}

CHILD_CASE(close_stdout_early)
{
    printf("bye\n");
    fflush(stdout);
    fclose(stdout);
    test_sleep_ms(300);
    exit(3);
}

CHILD_CASE(close_stdin_early)
{
    fclose(stdin);
    test_sleep_ms(1000);
    exit(0);
}

CHILD_CASE(write_stderr)
{
    fprintf(stderr, "to stderr\n");
    exit(0);
}

#ifndef _WIN32
/* Prints the descriptors it has, one per line (without the directory's). */
CHILD_CASE(list_fds)
{
    DIR *d = opendir("/dev/fd");
    struct dirent *e;
    if (d == NULL)
        exit(9);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            printf("%s\n", e->d_name);
    closedir(d);
    exit(0);
}

/* Prints how many signals it has blocked and ignored. */
CHILD_CASE(signal_state)
{
    sigset_t mask;
    int sig, blocked = 0, ignored = 0;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    for (sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigismember(&mask, sig))
            blocked++;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            ignored++;
    }
    printf("%d %d\n", blocked, ignored);
    exit(0);
}
#endif

/* ---- helpers ---- */

/* Options to run CHILD_CASE `name` of this program. */
struct run {
    const char *argv[4];
    const char *env[8];
    mio_process_options o;
};

static const char *self_path;   /* child_self_path(), which is not thread-safe */

static void run_case(struct run *r, const char *name)
{
    memset(r, 0, sizeof *r);
    if (self_path == NULL)
        self_path = child_self_path();
    r->argv[0] = self_path;
    CHECK(r->argv[0] != NULL);
    r->argv[1] = name;
    r->argv[2] = test_backend;
    r->o.argv = r->argv;
}

/* An environment of PATH (and SYSTEMROOT on Windows) and `extra`. */
static void run_env(struct run *r, const char *extra)
{
    static char path[4096], root[1024];
    int n = 0;
    const char *v = getenv("PATH");
    snprintf(path, sizeof path, "PATH=%s", v != NULL ? v : "");
    r->env[n++] = path;
#ifdef _WIN32
    v = getenv("SYSTEMROOT");
    snprintf(root, sizeof root, "SYSTEMROOT=%s", v != NULL ? v : "C:\\windows");
    r->env[n++] = root;
#else
    (void)root;
#endif
    if (extra != NULL)
        r->env[n++] = extra;
    r->env[n] = NULL;
    r->o.env = r->env;
}

/* Waits for the exit event of c, then its status. */
static mio_exit_status wait_exit(mio_poll *p, mio_process *c, mio_token token)
{
    mio_exit_status st;
    int64_t deadline = test_now_ns() + 30 * MIO_SEC;
    int r;

    while ((r = mio_process_try_wait(c, &st)) == MIO_EAGAIN) {
        CHECK(test_now_ns() < deadline);
        (void)test_await(p, token, 1 * MIO_SEC);
    }
    OK(r);
    return st;
}

/* Reads fd to its end through p (token), into buf. */
static size_t read_all(mio_poll *p, mio_fd fd, mio_token token, char *buf, size_t size)
{
    size_t got = 0;
    int64_t deadline = test_now_ns() + 30 * MIO_SEC;

    for (;;) {
        ssize_t n = mio_read(fd, buf + got, size - 1 - got);
        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            CHECK(got < size - 1);
            continue;
        }
        CHECK_EQ(n, MIO_EAGAIN);
        CHECK(test_now_ns() < deadline);
        (void)test_await(p, token, 1 * MIO_SEC);
    }
    buf[got] = '\0';
    return got;
}

#ifndef _WIN32
/* Whether this process has any child left, exited or not. */
static bool any_child(void)
{
    return waitid(P_ALL, 0, &(siginfo_t){ 0 }, WEXITED | WNOHANG | WNOWAIT) == 0;
}

extern int mio__process_force_sigchld;
#endif

/* ---- the tests ---- */

TEST(arguments_are_checked)
{
    mio_process_options o;
    mio_process *c = (mio_process *)1;
    mio_fd pipes[3];
    const char *argv[2] = { NULL, NULL };
    mio_poll *p = test_poll();

    memset(&o, 0, sizeof o);
    CHECK_EQ(mio_process_spawn(NULL, NULL, &c), MIO_EINVAL);
    CHECK(c == NULL);
    CHECK_EQ(mio_process_spawn(&o, NULL, &c), MIO_EINVAL);      /* no argv */
    o.argv = argv;
    CHECK_EQ(mio_process_spawn(&o, NULL, &c), MIO_EINVAL);      /* no argv[0] */
    argv[0] = child_self_path();
    o.stdio[1].how = 99;
    CHECK_EQ(mio_process_spawn(&o, pipes, &c), MIO_EINVAL);
    o.stdio[1].how = MIO_STDIO_PIPE;
    CHECK_EQ(mio_process_spawn(&o, NULL, &c), MIO_EINVAL);      /* nowhere for the end */
    CHECK_EQ(mio_process_pid(NULL), -1);
    CHECK_EQ(mio_process_try_wait(NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_process_kill(NULL, 0), MIO_EINVAL);
    CHECK_EQ(mio_process_register(p, NULL, 1), MIO_EINVAL);
    mio_process_free(NULL);
    mio_poll_free(p);
}

TEST(exit_status_is_reported_through_the_poll)
{
    mio_poll *p = test_poll();
    static const int codes[] = { 0, 1, 7, 42, 255 };
    size_t i;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct run r;
        char var[32];
        mio_process *c;
        mio_exit_status st;

        run_case(&r, "exit_with");
        snprintf(var, sizeof var, "MIO_TEST_EXIT=%d", codes[i]);
        run_env(&r, var);
        OK(mio_process_spawn(&r.o, NULL, &c));
        CHECK(mio_process_pid(c) > 0);
        OK(mio_process_register(p, c, 10 + i));
        CHECK_EQ(mio_process_register(p, c, 10 + i), MIO_EEXIST);
        CHECK(test_await(p, 10 + i, 30 * MIO_SEC));
        OK(mio_process_try_wait(c, &st));
        CHECK_EQ(st.code, codes[i]);
        CHECK_EQ(st.signal, 0);
        OK(mio_process_try_wait(c, &st));               /* the same again */
        CHECK_EQ(st.code, codes[i]);
        CHECK_EQ(mio_process_kill(c, 0), MIO_ESRCH);    /* reaped */
        OK(mio_process_deregister(p, c));
        CHECK_EQ(mio_process_deregister(p, c), MIO_ENOENT);
        mio_process_free(c);
    }
    mio_poll_free(p);
}

TEST(running_child_says_eagain_until_killed)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_exit_status st;

    run_case(&r, "sleep_long");
    OK(mio_process_spawn(&r.o, NULL, &c));
    OK(mio_process_register(p, c, 3));
    CHECK(!test_await(p, 3, 100 * MIO_MSEC));
    CHECK_EQ(mio_process_try_wait(c, &st), MIO_EAGAIN);
    OK(mio_process_kill(c, 0));
    OK(mio_process_kill(c, SIGTERM));
    st = wait_exit(p, c, 3);
    CHECK_EQ(st.signal, SIGTERM);
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(registering_after_the_exit_reports_at_once)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_exit_status st;

    run_case(&r, "exit_with");
    run_env(&r, "MIO_TEST_EXIT=5");
    OK(mio_process_spawn(&r.o, NULL, &c));
#ifdef _WIN32
    {
        HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)mio_process_pid(c));
        CHECK(h != NULL);
        CHECK_EQ(WaitForSingleObject(h, 30000), WAIT_OBJECT_0);
        CloseHandle(h);
    }
#else
    {
        siginfo_t si;
        CHECK_EQ(waitid(P_PID, (id_t)mio_process_pid(c), &si, WEXITED | WNOWAIT), 0);
    }
#endif
    OK(mio_process_register(p, c, 4));
    CHECK(test_await(p, 4, 10 * MIO_SEC));
    OK(mio_process_try_wait(c, &st));
    CHECK_EQ(st.code, 5);
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(deregistered_child_is_not_reported)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_exit_status st;

    run_case(&r, "exit_with");
    OK(mio_process_spawn(&r.o, NULL, &c));
    OK(mio_process_register(p, c, 4));
    OK(mio_process_deregister(p, c));
    test_sleep_ms(300);
    CHECK(!test_await(p, 4, 200 * MIO_MSEC));
    OK(mio_process_register(p, c, 5));      /* again, after its exit */
    CHECK(test_await(p, 5, 10 * MIO_SEC));
    OK(mio_process_try_wait(c, &st));
    CHECK_EQ(mio_process_register(p, c, 6), MIO_EEXIST);
    OK(mio_process_deregister(p, c));
    CHECK_EQ(mio_process_register(p, c, 6), MIO_ESRCH);     /* reaped */
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(missing_program_is_an_error_in_the_parent)
{
    struct run r;
    mio_process *c = (mio_process *)1;
    mio_fd pipes[3];
    int before = test_open_fds();

    run_case(&r, "exit_with");
#ifdef _WIN32
    r.o.file = "C:\\no\\such\\program.exe";
#else
    r.o.file = "/no/such/program";
#endif
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    CHECK_EQ(mio_process_spawn(&r.o, pipes, &c), MIO_ENOENT);
    CHECK(c == NULL);
    CHECK(pipes[1] == MIO_INVALID_FD);
    r.o.file = "no-such-program-anywhere-in-path";
    CHECK_EQ(mio_process_spawn(&r.o, pipes, &c), MIO_ENOENT);
    r.o.file = NULL;
    r.o.cwd = "/no/such/directory";
    CHECK_EQ(mio_process_spawn(&r.o, pipes, &c), MIO_ENOENT);
    CHECK_EQ(test_open_fds(), before);
#ifndef _WIN32
    CHECK(!any_child());                /* the failed child was reaped */
    r.o.cwd = NULL;
    r.o.file = test_tmp_dir();          /* a directory: found, not runnable */
    CHECK_EQ(mio_process_spawn(&r.o, pipes, &c), MIO_EACCES);
    CHECK(!any_child());
#endif
}

TEST(environment_and_directory_are_the_childs)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    char out[4096], expect[4096], cwd[1024];
    mio_exit_status st;

    run_case(&r, "print_env_and_cwd");
    run_env(&r, "MIO_TEST_VAR=hello world");
    r.o.cwd = test_tmp_dir();
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    CHECK(pipes[0] == MIO_INVALID_FD && pipes[2] == MIO_INVALID_FD);
    CHECK(!test_inheritable(pipes[1]));
    OK(mio_register(p, pipes[1], 1, MIO_READABLE));
    read_all(p, pipes[1], 1, out, sizeof out);
    /* The child's view of the directory, as this process sees it. */
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(test_tmp_dir()) == 0);
    CHECK(getcwd(expect + 12, sizeof expect - 12) != NULL);
    CHECK(chdir(cwd) == 0);
    memcpy(expect, "hello world|", 12);
    strcat(expect, "\n");
#ifdef _WIN32
    {   /* the CRT's text mode */
        size_t len = strlen(out);
        if (len >= 2 && out[len - 2] == '\r') {
            out[len - 2] = '\n';
            out[len - 1] = '\0';
        }
    }
#endif
    CHECK(strcmp(out, expect) == 0);
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    OK(mio_process_register(p, c, 2));
    st = wait_exit(p, c, 2);
    CHECK_EQ(st.code, 0);
    mio_process_free(c);
    mio_poll_free(p);
}

/* cat through two pipes: far more than a pipe holds, both ways at once, so
 * a parent that wrote all before reading would deadlock with the child. */
TEST(pipes_both_ways_with_back_pressure)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    size_t total = (size_t)test_scaled(8 << 20), sent = 0, got = 0;
    unsigned char *in = malloc(total), *back = malloc(total);
    bool closed_in = false;
    int64_t deadline = test_now_ns() + 60 * MIO_SEC;
    mio_exit_status st;
    size_t i;

    if (total < (1 << 20))
        total = 1 << 20;
    in = realloc(in, total);
    back = realloc(back, total);
    CHECK(in != NULL && back != NULL);
    for (i = 0; i < total; i++)
        in[i] = (unsigned char)(i * 7 + i / 4096);
    run_case(&r, "echo_stdin");
    r.o.stdio[0].how = MIO_STDIO_PIPE;
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    OK(mio_register(p, pipes[0], 1, MIO_WRITABLE));
    OK(mio_register(p, pipes[1], 2, MIO_READABLE));
    while (got < total) {
        ssize_t n;
        CHECK(test_now_ns() < deadline);
        while (sent < total && (n = mio_write(pipes[0], in + sent, total - sent)) > 0)
            sent += (size_t)n;
        if (sent == total && !closed_in) {
            OK(mio_deregister(p, pipes[0]));
            OK(mio_close(pipes[0]));
            closed_in = true;
        }
        while ((n = mio_read(pipes[1], back + got, total - got)) > 0)
            got += (size_t)n;
        CHECK(n != 0 || got == total);
        if (got < total) {
            mio_event ev[4];
            n = mio_poll_wait(p, ev, 4, 1 * MIO_SEC);
            CHECK(n >= 0 || n == MIO_EINTR);
        }
    }
    CHECK(sent == total && memcmp(in, back, total) == 0);
    CHECK_EQ(read_all(p, pipes[1], 2, (char *)back, total), 0);    /* then its end */
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    OK(mio_process_register(p, c, 3));
    st = wait_exit(p, c, 3);
    CHECK_EQ(st.code, 0);
    mio_process_free(c);
    mio_poll_free(p);
    free(in);
    free(back);
}

TEST(child_closing_its_output_early_is_end_of_stream_before_its_exit)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    char out[64];
    mio_exit_status st;

    run_case(&r, "close_stdout_early");
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    OK(mio_register(p, pipes[1], 1, MIO_READABLE));
    OK(mio_process_register(p, c, 2));
    read_all(p, pipes[1], 1, out, sizeof out);
#ifdef _WIN32
    CHECK(strcmp(out, "bye\r\n") == 0);
#else
    CHECK(strcmp(out, "bye\n") == 0);
#endif
    /* It sleeps on.  (wine: a socket the child closed ends only with the
     * child.) */
    if (!test_on_wine())
        CHECK_EQ(mio_process_try_wait(c, &st), MIO_EAGAIN);
    st = wait_exit(p, c, 2);
    CHECK_EQ(st.code, 3);
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(writing_to_a_child_that_closed_its_input_is_epipe)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    char buf[4096];
    int64_t deadline = test_now_ns() + 30 * MIO_SEC;
    ssize_t n;

    memset(buf, 'x', sizeof buf);
    run_case(&r, "close_stdin_early");
    r.o.stdio[0].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    OK(mio_register(p, pipes[0], 1, MIO_WRITABLE));
    /* Once the child's end is gone, writes fail (without SIGPIPE). */
    while ((n = mio_write(pipes[0], buf, sizeof buf)) >= 0 || n == MIO_EAGAIN) {
        CHECK(test_now_ns() < deadline);
        if (n == MIO_EAGAIN)
            (void)test_await(p, 1, 100 * MIO_MSEC);
        else
            test_sleep_ms(5);
    }
    CHECK(n == MIO_EPIPE || n == MIO_ECONNRESET);
    OK(mio_deregister(p, pipes[0]));
    OK(mio_close(pipes[0]));
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(null_closed_and_given_streams)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pair[2], pipes[3];
    char out[256];
    mio_exit_status st;

    /* stdin the null device: echo sees its end at once. */
    run_case(&r, "echo_stdin");
    r.o.stdio[0].how = MIO_STDIO_NULL;
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    OK(mio_register(p, pipes[1], 1, MIO_READABLE));
    CHECK_EQ(read_all(p, pipes[1], 1, out, sizeof out), 0);
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    OK(mio_process_register(p, c, 2));
    CHECK_EQ(wait_exit(p, c, 2).code, 0);
    mio_process_free(c);

    /* stderr a descriptor of ours (a socket pair's end), which we keep. */
    OK(mio_socketpair(pair));
    run_case(&r, "write_stderr");
    r.o.stdio[2].how = MIO_STDIO_FD;
    r.o.stdio[2].fd = pair[1];
    OK(mio_process_spawn(&r.o, NULL, &c));
    OK(mio_process_register(p, c, 2));
    st = wait_exit(p, c, 2);
    CHECK_EQ(st.code, 0);
    mio_process_free(c);
    OK(mio_close(pair[1]));
    OK(mio_register(p, pair[0], 3, MIO_READABLE));
    read_all(p, pair[0], 3, out, sizeof out);
    CHECK(strncmp(out, "to stderr", 9) == 0);
    OK(mio_deregister(p, pair[0]));
    OK(mio_close(pair[0]));

    /* stderr closed: the write fails in the child, which still exits 0. */
    run_case(&r, "write_stderr");
    r.o.stdio[2].how = MIO_STDIO_CLOSE;
    OK(mio_process_spawn(&r.o, NULL, &c));
    OK(mio_process_register(p, c, 2));
    CHECK_EQ(wait_exit(p, c, 2).code, 0);
    mio_process_free(c);
    mio_poll_free(p);
}

TEST(free_of_a_running_child_ends_and_reaps_it)
{
    struct run r;
    mio_process *c;
    int64_t pid;

    run_case(&r, "sleep_long");
    OK(mio_process_spawn(&r.o, NULL, &c));
    pid = mio_process_pid(c);
    mio_process_free(c);
#ifdef _WIN32
    {
        HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
        if (h != NULL) {
            CHECK_EQ(WaitForSingleObject(h, 0), WAIT_OBJECT_0);
            CloseHandle(h);
        }
    }
#else
    CHECK(kill((pid_t)pid, 0) < 0 && errno == ESRCH);   /* no zombie either */
    CHECK(!any_child());
#endif
}

/* Many children through one poll, a few dozen at a time, each exit seen
 * once with its exact status, and none left behind. */
TEST(ten_thousand_children_reaped_with_exact_statuses)
{
    enum { AT_ONCE = 32 };
    mio_poll *p = test_poll();
    mio_process *slot[AT_ONCE] = { 0 };
    int expect[AT_ONCE];
    long total = test_scaled(10000), started = 0, done = 0;
#if defined(__SANITIZE_ADDRESS__)
    total /= 5;     /* a start costs much more under ASan; the full count runs plain */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    total /= 5;
#endif
#endif
    mio_event ev[AT_ONCE];
    /* Each exit takes the same path on every backend but the poll's last
     * step: the full count runs on the platform's own (epoll, kqueue). */
    if (strcmp(test_backend, "poll") == 0 || strcmp(test_backend, "uring") == 0)
        total /= 5;
#ifdef _WIN32
    struct run r0, r1;
    run_case(&r0, "exit_with");
    run_env(&r0, "MIO_TEST_EXIT=0");
    run_case(&r1, "exit_with");
    run_env(&r1, "MIO_TEST_EXIT=1");
    if (total > (test_on_wine() ? 100 : 1000))
        total = test_on_wine() ? 100 : 1000;    /* a start costs milliseconds, and more */
#else
    /* By path: a PATH search would add failed execs to every start. */
    static const char *const t_argv[] = { "/usr/bin/true", NULL },
                             *const f_argv[] = { "/usr/bin/false", NULL };
#endif

    test_watchdog(600);
    while (done < total) {
        int i, n;
        for (i = 0; i < AT_ONCE && started < total; i++) {
            mio_process_options o;
            if (slot[i] != NULL)
                continue;
            memset(&o, 0, sizeof o);
            expect[i] = (int)(started % 3 == 0);
#ifdef _WIN32
            o = expect[i] ? r1.o : r0.o;
#else
            o.argv = expect[i] ? f_argv : t_argv;
#endif
            OK(mio_process_spawn(&o, NULL, &slot[i]));
            OK(mio_process_register(p, slot[i], (mio_token)i));
            started++;
        }
        n = mio_poll_wait(p, ev, AT_ONCE, 10 * MIO_SEC);
        if (n == MIO_EINTR)
            continue;
        CHECK(n > 0);
        for (i = 0; i < n; i++) {
            size_t k = (size_t)ev[i].token;
            mio_exit_status st;
            int rc;
            CHECK(k < AT_ONCE && slot[k] != NULL);
            rc = mio_process_try_wait(slot[k], &st);
            if (rc == MIO_EAGAIN)
                continue;       /* spurious: the SIGCHLD path may give some */
            OK(rc);
            CHECK_EQ(st.signal, 0);
            CHECK_EQ(st.code, expect[k]);
            mio_process_free(slot[k]);
            slot[k] = NULL;
            done++;
        }
    }
#ifndef _WIN32
    CHECK(!any_child());
#endif
    mio_poll_free(p);
}

/* Spawns from several threads at once, each child reading a pipe to its
 * end: a child that held another's pipe (a descriptor leaked by a
 * concurrent spawn) would keep that one from ever seeing its end. */
static void *spawn_many(void *arg)
{
    mio_poll *p = test_poll();
    int i, rounds = (int)test_scaled(100);
    (void)arg;
    for (i = 0; i < rounds; i++) {
        struct run r;
        mio_process *c;
        mio_fd pipes[3];
        char out[16];

        run_case(&r, "echo_stdin");
        r.o.stdio[0].how = MIO_STDIO_PIPE;
        r.o.stdio[1].how = MIO_STDIO_PIPE;
        OK(mio_process_spawn(&r.o, pipes, &c));
        CHECK_EQ(mio_write(pipes[0], "hi", 2), 2);
        OK(mio_close(pipes[0]));
        OK(mio_register(p, pipes[1], 1, MIO_READABLE));
        CHECK_EQ(read_all(p, pipes[1], 1, out, sizeof out), 2);
        OK(mio_deregister(p, pipes[1]));
        OK(mio_close(pipes[1]));
        OK(mio_process_register(p, c, 2));
        CHECK_EQ(wait_exit(p, c, 2).code, 0);
        mio_process_free(c);
    }
    mio_poll_free(p);
    return NULL;
}

TEST(concurrent_spawns_leak_nothing_into_each_other)
{
    pthread_t t[4];
    int i;

    test_watchdog(300);
    self_path = child_self_path();      /* before the threads read it */
    for (i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, spawn_many, NULL), 0);
    for (i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
}

#ifndef _WIN32

/* The child has its three streams and nothing else, even of descriptors
 * this process left inheritable. */
POSIX_TEST(child_gets_only_its_standard_streams)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    char out[4096];
    int leak = dup(2);      /* no close-on-exec */

    CHECK(leak > 2);
    run_case(&r, "list_fds");
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    OK(mio_register(p, pipes[1], 1, MIO_READABLE));
    read_all(p, pipes[1], 1, out, sizeof out);
    CHECK(strcmp(out, "0\n1\n2\n") == 0);
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    OK(mio_process_register(p, c, 2));
    CHECK_EQ(wait_exit(p, c, 2).code, 0);
    mio_process_free(c);
    close(leak);
    mio_poll_free(p);
}

/* Blocked signals and ignored ones are not the child's: a program started
 * by a server that ignores SIGPIPE still dies of it. */
POSIX_TEST(child_starts_with_default_signals_and_empty_mask)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    mio_fd pipes[3];
    char out[64];
    sigset_t set, old;
    int usr1 = SIGUSR1;
    mio_signal *s;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    OK(mio_signal_new(p, 9, &usr1, 1, &s));     /* a handler of libmio's */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    run_case(&r, "signal_state");
    r.o.stdio[1].how = MIO_STDIO_PIPE;
    OK(mio_process_spawn(&r.o, pipes, &c));
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    OK(mio_register(p, pipes[1], 1, MIO_READABLE));
    read_all(p, pipes[1], 1, out, sizeof out);
    CHECK(strcmp(out, "0 0\n") == 0);
    OK(mio_deregister(p, pipes[1]));
    OK(mio_close(pipes[1]));
    OK(mio_process_register(p, c, 2));
    CHECK_EQ(wait_exit(p, c, 2).code, 0);
    mio_process_free(c);
    mio_signal_free(s);
    mio_poll_free(p);
}

/* A child of the program's own is never reaped by libmio, even on the
 * SIGCHLD path, which wakes on every child's exit. */
POSIX_TEST(foreign_children_are_never_reaped)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    pid_t mine;
    int st, i;

    for (i = 0; i < 2; i++) {
        mio__process_force_sigchld = i;
        mine = fork();
        CHECK(mine >= 0);
        if (mine == 0)
            _exit(33);
        run_case(&r, "exit_with");
        run_env(&r, "MIO_TEST_EXIT=4");
        OK(mio_process_spawn(&r.o, NULL, &c));
        OK(mio_process_register(p, c, 1));
        CHECK_EQ(wait_exit(p, c, 1).code, 4);
        mio_process_free(c);
        CHECK_EQ(waitpid(mine, &st, 0), mine);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 33);
    }
    mio__process_force_sigchld = 0;
    mio_poll_free(p);
}

/* The path where neither a process descriptor nor kqueue serves: SIGCHLD
 * through a signal source that wakes only for its own child. */
POSIX_TEST(sigchld_path_reports_each_child_alone)
{
    mio_poll *p = test_poll();
    struct run r1, r2;
    mio_process *slow, *fast;
    mio_exit_status st;

    mio__process_force_sigchld = 1;
    run_case(&r1, "sleep_long");
    OK(mio_process_spawn(&r1.o, NULL, &slow));
    OK(mio_process_register(p, slow, 1));
    run_case(&r2, "exit_with");
    run_env(&r2, "MIO_TEST_EXIT=8");
    OK(mio_process_spawn(&r2.o, NULL, &fast));
    OK(mio_process_register(p, fast, 2));
    CHECK(test_await(p, 2, 30 * MIO_SEC));
    CHECK(!test_await(p, 1, 100 * MIO_MSEC));   /* not woken by the other's exit */
    OK(mio_process_try_wait(fast, &st));
    CHECK_EQ(st.code, 8);
    OK(mio_process_kill(slow, SIGKILL));
    CHECK(test_await(p, 1, 30 * MIO_SEC));
    OK(mio_process_try_wait(slow, &st));
    CHECK_EQ(st.signal, SIGKILL);
    mio_process_free(fast);
    mio_process_free(slow);
    mio__process_force_sigchld = 0;
    mio_poll_free(p);
}

/* Reaped behind libmio's back: MIO_ECHILD, not a hang or a wrong status. */
POSIX_TEST(child_reaped_by_someone_else_is_echild)
{
    mio_poll *p = test_poll();
    struct run r;
    mio_process *c;
    int st;

    run_case(&r, "exit_with");
    OK(mio_process_spawn(&r.o, NULL, &c));
    CHECK_EQ(waitpid((pid_t)mio_process_pid(c), &st, 0), (pid_t)mio_process_pid(c));
    CHECK_EQ(mio_process_try_wait(c, NULL), MIO_ECHILD);
    CHECK_EQ(mio_process_register(p, c, 1), MIO_ECHILD);
    mio_process_free(c);
    mio_poll_free(p);
}

#endif
