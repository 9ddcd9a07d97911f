#include "harness.h"

#include <time.h>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

const char *test_backend;
static struct test_case *cases;

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
    int n = mio_poll_wait(p, ev, cap, timeout_ns);
    CHECK(n >= 0);
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
#include <windows.h>

/* Handles stand in for descriptors: leaks show up the same way. */
int test_open_fds(void)
{
    DWORD n = 0;
    CHECK(GetProcessHandleCount(GetCurrentProcess(), &n));
    return (int)n;
}
#include <direct.h>

char *test_mkdtemp(char *templ)
{
    if (_mktemp_s(templ, strlen(templ) + 1) != 0 || _mkdir(templ) != 0)
        return NULL;
    return templ;
}

int test_on_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
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
#endif

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

void test_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

long test_scaled(long n)
{
    const char *s = getenv("MIO_TEST_SCALE");
    long scale = s != NULL ? atol(s) : 1;
    if (scale > 1)
        n /= scale;
    return n > 0 ? n : 1;
}

int test_edge_emulated(void)
{
    return strcmp(test_backend, "poll") == 0 || strcmp(test_backend, "iocp") == 0;
}

int main(int argc, char **argv)
{
    struct test_case *t;

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (t = cases; t != NULL; t = t->next)
            printf("%s\n", t->name);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s TEST BACKEND | --list\n", argv[0]);
        return 2;
    }
    test_backend = argv[2];
    for (t = cases; t != NULL; t = t->next) {
        if (strcmp(t->name, argv[1]) == 0) {
            t->fn();
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
