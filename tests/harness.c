#include "harness.h"

#include <time.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#include <sys/wait.h>
#endif

/* Room for a path under the temporary directory. */
enum { PATH_CAP = 512 };

const char *test_backend;
static struct test_case *cases;

int test_on_libkqueue(void)
{
#ifdef MIO_TEST_LIBKQUEUE
    return test_backend != NULL && strcmp(test_backend, "kqueue") == 0;
#else
    return 0;
#endif
}

void test_add(struct test_case *t)
{
    t->next = cases;
    cases = t;
}

mio_poll *test_poll(void)
{
    mio_poll *p = NULL;
    int err = mio_poll_new_backend(test_backend, &p);
    if (err == MIO_ENOSYS)
        SKIP("backend %s not available here", test_backend);
    CHECK_EQ(err, 0);
    CHECK(p != NULL);
    CHECK(strcmp(mio_poll_backend(p), test_backend) == 0);
    return p;
}

int test_wait(mio_poll *p, mio_event *ev, size_t cap, int64_t timeout_ns)
{
    const uint32_t readiness = MIO_READABLE | MIO_WRITABLE | MIO_PRIORITY | MIO_ERROR |
                               MIO_READ_CLOSED | MIO_WRITE_CLOSED;
    int n = mio_poll_wait(p, ev, cap, timeout_ns), i;
    CHECK_EQ(n < 0 ? n : 0, 0);
    CHECK((size_t)n <= cap);
    for (i = 0; i < n; i++) {
        CHECK(ev[i].token != MIO_TOKEN_RESERVED);
        CHECK(ev[i].flags != 0);
        CHECK_EQ(ev[i].flags & ~readiness, 0);
    }
    return n;
}

uint32_t test_flags(const mio_event *ev, int n, mio_token token)
{
    uint32_t f = 0;
    int i;
    for (i = 0; i < n; i++)
        if (ev[i].token == token)
            f |= ev[i].flags;
    return f;
}

uint32_t test_wait_token(mio_poll *p, mio_token token, int64_t timeout_ns)
{
    mio_event ev[64];
    int n = test_wait(p, ev, 64, timeout_ns);
    return test_flags(ev, n, token);
}

#ifdef _WIN32
/* Handles stand in for descriptors: leaks show up the same way. */
int test_open_fds(void)
{
    DWORD n = 0;
    CHECK(GetProcessHandleCount(GetCurrentProcess(), &n));
    return (int)n;
}

int test_inheritable(mio_fd fd)
{
    DWORD flags = 0;
    CHECK(GetHandleInformation((HANDLE)fd, &flags));
    return (flags & HANDLE_FLAG_INHERIT) != 0;
}

int test_on_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

static int make_dir(char *path, size_t cap)
{
    char base[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof base, base);
    unsigned i;

    if (n == 0 || n >= sizeof base)
        return -1;
    for (i = 0; i < 100; i++) {
        snprintf(path, cap, "%smio-test-%lu-%u", base, (unsigned long)GetCurrentProcessId(), i);
        if (CreateDirectoryA(path, NULL))
            return 0;
        if (GetLastError() != ERROR_ALREADY_EXISTS)
            return -1;
    }
    return -1;
}

/* The entries of dir but "." and ".." (-1 if it cannot be read); with
 * `remove`, deletes them and then dir. */
static int scan_dir(const char *dir, int remove)
{
    char path[PATH_CAP];
    WIN32_FIND_DATAA e;
    HANDLE h;
    int n = 0;

    snprintf(path, sizeof path, "%s\\*", dir);
    h = FindFirstFileA(path, &e);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    do {
        if (strcmp(e.cFileName, ".") == 0 || strcmp(e.cFileName, "..") == 0)
            continue;
        n++;
        if (remove) {
            snprintf(path, sizeof path, "%s\\%s", dir, e.cFileName);
            (void)DeleteFileA(path);
        }
    } while (FindNextFileA(h, &e));
    FindClose(h);
    if (remove)
        (void)RemoveDirectoryA(dir);
    return n;
}
#else
int test_on_wine(void)
{
    return 0;
}

int test_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

int test_inheritable(mio_fd fd)
{
    int flags = fcntl(fd, F_GETFD);
    CHECK(flags >= 0);
    return !(flags & FD_CLOEXEC);
}

static int make_dir(char *path, size_t cap)
{
    snprintf(path, cap, "%s", "/tmp/mio-test-XXXXXX");
    return mkdtemp(path) != NULL ? 0 : -1;
}

/* The entries of dir but "." and ".." (-1 if it cannot be read); with
 * `remove`, deletes them and then dir. */
static int scan_dir(const char *dir, int remove)
{
    char path[PATH_CAP];
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (remove) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            (void)unlink(path);
        }
    }
    closedir(d);
    if (remove)
        (void)rmdir(dir);
    return n;
}
#endif

void test_hang_up(mio_fd fd)
{
#ifdef _WIN32
    struct linger reset = { 1, 0 };
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, (const char *)&reset, sizeof reset) == 0);
#endif
    OK(mio_close(fd));
}

static char tmp_dir[PATH_CAP];

static void remove_tmp_dir(void)
{
    (void)scan_dir(tmp_dir, 1);
}

const char *test_tmp_dir(void)
{
    if (tmp_dir[0] == '\0') {
        CHECK(make_dir(tmp_dir, sizeof tmp_dir) == 0);
        atexit(remove_tmp_dir);
    }
    return tmp_dir;
}

int test_dir_entries(const char *dir)
{
    int n = scan_dir(dir, 0);
    CHECK(n >= 0);
    return n;
}

void test_settle(void)
{
#ifdef _WIN32
    Sleep(100);
#endif
}

int64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}

void test_sleep_ns(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / MIO_SEC), (long)(ns % MIO_SEC) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void test_sleep_ms(int ms)
{
    test_sleep_ns((int64_t)ms * MIO_MSEC);
}

long test_scaled(long n)
{
    const char *s = getenv("MIO_TEST_SCALE");
    long scale = s != NULL ? atol(s) : 1;
    if (scale > 1)
        n /= scale;
    return n > 0 ? n : 1;
}

#ifdef _WIN32
/* The GetTickCount64 reading test_watchdog set (0: none), watched by a thread
 * that main starts before the test, so that its handles never show up in a
 * test's count. */
static volatile LONG64 watchdog_deadline;

static DWORD WINAPI watch(void *arg)
{
    LONG64 deadline;
    (void)arg;
    do {
        Sleep(100);
        deadline = InterlockedCompareExchange64(&watchdog_deadline, 0, 0);
    } while (deadline == 0 || (LONG64)GetTickCount64() < deadline);
    fprintf(stderr, "watchdog: the test ran out of time\n");
    TerminateProcess(GetCurrentProcess(), 1);
    return 1;
}

void test_watchdog(unsigned seconds)
{
    LONG64 deadline = seconds == 0 ? 0 : (LONG64)GetTickCount64() + (LONG64)seconds * 1000;
    InterlockedExchange64(&watchdog_deadline, deadline);
}
#else
void test_watchdog(unsigned seconds)
{
    signal(SIGALRM, SIG_DFL);
    alarm(seconds);
}
#endif

void test_setenv(const char *name, const char *value)
{
#ifdef _WIN32
    /* The C library's copy, which getenv reads, and the process's block,
     * which children inherit. */
    CHECK(_putenv_s(name, value != NULL ? value : "") == 0);
    CHECK(SetEnvironmentVariableA(name, value));
#else
    CHECK((value != NULL ? setenv(name, value, 1) : unsetenv(name)) == 0);
#endif
}

int test_edge_emulated(void)
{
    return strcmp(test_backend, "poll") == 0 || strcmp(test_backend, "iocp") == 0;
}

int test_on_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* The ring is made in a child process: closing a ring later runs io_uring's
 * clean-up as task work on the thread that made it, which would interrupt a
 * blocking call of the test's with a timeout (EINTR from a recv under
 * SO_RCVTIMEO). */
int test_uring_refused(void)
{
#if defined(__linux__) && defined(__NR_io_uring_setup)
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        unsigned char params[120];     /* struct io_uring_params */
        long fd;
        memset(params, 0, sizeof params);
        fd = syscall(__NR_io_uring_setup, 1, params);
        _exit(fd >= 0 ? 0 : errno == EPERM || errno == ENOSYS || errno == EACCES ? errno : 0);
    }
    CHECK(pid > 0);
    while (waitpid(pid, &status, 0) < 0)
        CHECK(errno == EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
#else
    return 0;
#endif
}

/* The names ctest runs (found in the source by CMake) against the tests
 * this program holds: every one of each must be in the other. */
static int check_registered(int n, char **names)
{
    struct test_case *t;
    int i, bad = 0;

    for (t = cases; t != NULL; t = t->next) {
        for (i = 0; i < n && strcmp(names[i], t->name) != 0; i++)
            ;
        if (!t->child && i == n) {
            fprintf(stderr, "test %s is in this program but ctest does not run it "
                            "(write it as TEST(name) at the start of a line)\n", t->name);
            bad = 1;
        } else if (t->child && i < n) {
            fprintf(stderr, "%s is a CHILD_CASE but ctest runs it\n", t->name);
            bad = 1;
        }
    }
    for (i = 0; i < n; i++) {
        for (t = cases; t != NULL && strcmp(t->name, names[i]) != 0; t = t->next)
            ;
        if (t == NULL) {
            fprintf(stderr, "ctest runs %s, which this program does not hold\n", names[i]);
            bad = 1;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    struct test_case *t;

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (t = cases; t != NULL; t = t->next)
            if (!t->child)
                printf("%s\n", t->name);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--registered") == 0)
        return check_registered(argc - 2, argv + 2);
    if (argc != 3) {
        fprintf(stderr, "usage: %s TEST BACKEND | --list | --registered NAME...\n", argv[0]);
        return 2;
    }
    test_backend = argv[2];
#ifdef _WIN32
    {
        HANDLE watcher = CreateThread(NULL, 0, watch, NULL, 0, NULL);
        CHECK(watcher != NULL);
        CloseHandle(watcher);
    }
#endif
    for (t = cases; t != NULL; t = t->next) {
        if (strcmp(t->name, argv[1]) == 0) {
            int refused;
            /* The backend is the command line's: a MIO_BACKEND of the
             * user's would move the tests that take the default.  (A child
             * case keeps it: the test that starts one sets it on purpose.) */
            if (!t->child)
                test_setenv("MIO_BACKEND", NULL);
            /* io_uring refused by the kernel (kernel.io_uring_disabled) or
             * by a seccomp filter, as in many containers: the backend says
             * MIO_EPERM or MIO_ENOSYS (tested on its own), its tests skip. */
            if (!t->child && strcmp(test_backend, "uring") == 0 &&
                (refused = test_uring_refused()) != 0)
                SKIP("io_uring refused here (%s)", strerror(refused));
            /* valgrind (3.19) runs io_uring_enter holding the lock that lets
             * one thread run at a time: a wait blocked there stops every
             * other thread and signal, and the test hangs. */
            if (strcmp(test_backend, "uring") == 0 && test_on_valgrind())
                SKIP("valgrind holds its thread lock across io_uring_enter: "
                     "the uring backend is not tested under valgrind");
            t->fn();
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
