#include "harness.h"

#include <stdarg.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

/* ---- I/O ---- */

size_t test_read_until(mio_fd fd, char *buf, size_t cap, ssize_t *last)
{
    char scratch[4096];
    size_t got = 0;
    ssize_t n;

    for (;;) {
        if (buf != NULL && got < cap)
            n = mio_read(fd, buf + got, cap - got);
        else
            n = mio_read(fd, scratch, sizeof scratch);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *last = n;
    return got;
}

size_t test_drain(mio_fd fd)
{
    ssize_t last;
    size_t got = test_read_until(fd, NULL, 0, &last);
    CHECK_EQ(last, MIO_EAGAIN);
    return got;
}

size_t test_fill(mio_fd fd)
{
    static const char block[4096];
    size_t total = 0;
    ssize_t n;

    while ((n = mio_write(fd, block, sizeof block)) > 0)
        total += (size_t)n;
    CHECK_EQ(n, MIO_EAGAIN);
    return total;
}

void test_put(mio_fd fd, const char *s)
{
    CHECK_EQ(mio_write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* ---- sources ---- */

/* The two descriptors a call like mio_socketpair makes, as a source. */
static struct test_source source_from(int (*make)(mio_fd fds[2]))
{
    mio_fd fds[2];
    struct test_source s;
    OK(make(fds));
    s.r = fds[0];
    s.w = fds[1];
    return s;
}

struct test_source test_socket_source(void)
{
    return source_from(mio_socketpair);
}

#ifndef _WIN32
struct test_source test_pipe_source(void)
{
    return source_from(mio_pipe);
}
#endif

void test_close_source(struct test_source s)
{
    OK(mio_close(s.r));
    OK(mio_close(s.w));
}

/* ---- loopback TCP ---- */

mio_fd test_listen(const char *text, mio_addr *bound)
{
    mio_addr a;
    mio_fd l = MIO_INVALID_FD;

    OK(mio_addr_parse(text, &a));
    OK(mio_tcp_listen(&a, 0, &l));
    CHECK(l != MIO_INVALID_FD);
    OK(mio_local_addr(l, bound));
    return l;
}

mio_fd test_accept(mio_fd listener, mio_addr *peer)
{
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    mio_poll *p = test_poll();
    mio_fd fd = MIO_INVALID_FD;
    mio_event ev[4];
    int err;

    OK(mio_register(p, listener, 1, MIO_READABLE));
    while ((err = mio_tcp_accept(listener, &fd, peer)) == MIO_EAGAIN) {
        if (test_now_ns() >= deadline)
            FAIL("no connection to accept in %d s", (int)(TEST_LONG_WAIT / MIO_SEC));
        test_wait(p, ev, 4, 100 * MIO_MSEC);
    }
    OK(err);
    CHECK(fd != MIO_INVALID_FD);
    OK(mio_deregister(p, listener));
    mio_poll_free(p);
    return fd;
}

struct test_tcp test_tcp_pair(mio_poll *p, uint32_t interest)
{
    mio_poll *own = test_poll();
    mio_addr bound;
    mio_fd l = test_listen("127.0.0.1:0", &bound);
    struct test_tcp t;

    OK(mio_tcp_connect(&bound, &t.client));
    OK(mio_register(own, t.client, TEST_CLIENT, MIO_WRITABLE));
    t.server = test_accept(l, NULL);
    EXPECT_EVENT(own, TEST_CLIENT, MIO_WRITABLE, TEST_LONG_WAIT);
    OK(mio_socket_error(t.client));
    OK(mio_deregister(own, t.client));
    mio_poll_free(own);
    OK(mio_close(l));
    if (p != NULL) {
        OK(mio_register(p, t.client, TEST_CLIENT, interest));
        OK(mio_register(p, t.server, TEST_SERVER, interest));
    }
    return t;
}

void test_close_tcp(struct test_tcp t)
{
    OK(mio_close(t.client));
    OK(mio_close(t.server));
}

/* ---- expectations ---- */

static void fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* The flags by name ("READABLE|WRITE_CLOSED", "nothing"); one of four
 * buffers, so that a message can hold a few. */
static const char *flag_names(uint32_t flags)
{
    static const struct { uint32_t flag; const char *name; } names[] = {
        { MIO_READABLE, "READABLE" }, { MIO_WRITABLE, "WRITABLE" },
        { MIO_PRIORITY, "PRIORITY" }, { MIO_ERROR, "ERROR" },
        { MIO_READ_CLOSED, "READ_CLOSED" }, { MIO_WRITE_CLOSED, "WRITE_CLOSED" },
    };
    static char bufs[4][128];
    static int next;
    char *buf = bufs[next++ % 4];
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (flags & names[i].flag) {
            n += (size_t)snprintf(buf + n, sizeof bufs[0] - n, "%s%s", n ? "|" : "",
                                  names[i].name);
            flags &= ~names[i].flag;
        }
    }
    if (flags != 0)
        snprintf(buf + n, sizeof bufs[0] - n, "%s%#x", n ? "|" : "", (unsigned)flags);
    else if (n == 0)
        snprintf(buf, sizeof bufs[0], "nothing");
    return buf;
}

/* Waits as test_expect_at says; fails if a wait reports `other` (when
 * has_other). */
static uint32_t expect(const char *file, int line, mio_poll *p, mio_token token, uint32_t all,
                       uint32_t any, bool has_other, mio_token other, int64_t timeout_ns)
{
    int64_t deadline = test_now_ns() + timeout_ns;
    uint32_t seen = 0;
    mio_event ev[64];

    for (;;) {
        int64_t left = deadline - test_now_ns();
        int n = test_wait(p, ev, 64, left > 0 ? left : 0);
        seen |= test_flags(ev, n, token);
        if (has_other && test_flags(ev, n, other) != 0)
            fail_at(file, line, "token %llu: expected no event while waiting for token %llu, saw %s",
                    (unsigned long long)other, (unsigned long long)token,
                    flag_names(test_flags(ev, n, other)));
        if ((seen & all) == all && (any == 0 || (seen & any) != 0))
            return seen;
        if (left <= 0)
            break;
    }
    if (any != 0)
        fail_at(file, line, "token %llu: expected any of %s within %lld ms, saw %s",
                (unsigned long long)token, flag_names(any), (long long)(timeout_ns / MIO_MSEC),
                flag_names(seen));
    fail_at(file, line, "token %llu: expected %s within %lld ms, saw %s",
            (unsigned long long)token, flag_names(all), (long long)(timeout_ns / MIO_MSEC),
            flag_names(seen));
    return 0;
}

uint32_t test_expect_at(const char *file, int line, mio_poll *p, mio_token token, uint32_t all,
                        uint32_t any, int64_t timeout_ns)
{
    return expect(file, line, p, token, all, any, false, 0, timeout_ns);
}

uint32_t test_expect_not_at(const char *file, int line, mio_poll *p, mio_token token,
                            uint32_t flags, mio_token other, int64_t timeout_ns)
{
    return expect(file, line, p, token, flags, 0, true, other, timeout_ns);
}

bool test_await(mio_poll *p, mio_token token, int64_t timeout_ns)
{
    int64_t deadline = test_now_ns() + timeout_ns;
    mio_event ev[64];

    for (;;) {
        int64_t left = deadline - test_now_ns();
        int n = mio_poll_wait(p, ev, 64, left > 0 ? left : 0);
        if (n == MIO_EINTR)
            continue;
        CHECK(n >= 0);
        if (test_flags(ev, n, token) != 0)
            return true;
        if (left <= 0)
            return false;
    }
}

void test_expect_only_at(const char *file, int line, mio_poll *p, mio_token token,
                         uint32_t flags, int64_t timeout_ns)
{
    mio_event ev[8];
    int n = test_wait(p, ev, 8, timeout_ns);

    if (n != 1 || ev[0].token != token || ev[0].flags != flags)
        fail_at(file, line, "token %llu: expected one event of %s, saw %d event%s%s%llu %s",
                (unsigned long long)token, flag_names(flags), n, n == 1 ? "" : "s",
                n > 0 ? ", the first token " : "", n > 0 ? (unsigned long long)ev[0].token : 0,
                n > 0 ? flag_names(ev[0].flags) : "");
}

void test_expect_no_event_at(const char *file, int line, mio_poll *p, mio_token token,
                             int64_t timeout_ns)
{
    mio_event ev[64];
    uint32_t f = test_flags(ev, test_wait(p, ev, 64, timeout_ns), token);

    if (f != 0)
        fail_at(file, line, "token %llu: expected no event, saw %s", (unsigned long long)token,
                flag_names(f));
}

void test_expect_quiet_at(const char *file, int line, mio_poll *p, int64_t timeout_ns)
{
    mio_event ev[8];
    int64_t start = test_now_ns(), took;
    int n = test_wait(p, ev, 8, timeout_ns);

    took = test_now_ns() - start;
    if (n != 0)
        fail_at(file, line, "expected no event, saw %d, the first token %llu %s", n,
                (unsigned long long)ev[0].token, flag_names(ev[0].flags));
    if (took < timeout_ns)
        fail_at(file, line, "a wait of %lld ns with nothing to report returned after %lld ns",
                (long long)timeout_ns, (long long)took);
}

/* ---- allocation ---- */

static atomic_long allocs, frees, refused;
static atomic_long fail_after = -1;    /* allocations left before failing; < 0: never */
static atomic_int fail_for_good;       /* once failing, every later one fails too */

static int may_allocate(void)
{
    long left;

    if (atomic_load(&fail_after) < 0)
        return 1;
    left = atomic_fetch_sub(&fail_after, 1);
    if (left != 0)                      /* < 0: another thread took the one failure */
        return 1;
    if (atomic_load(&fail_for_good))
        atomic_store(&fail_after, 0);
    atomic_fetch_add(&refused, 1);
    return 0;
}

static void *count_malloc(size_t n)
{
    void *q = may_allocate() ? malloc(n) : NULL;
    if (q != NULL)
        atomic_fetch_add(&allocs, 1);
    return q;
}

static void *count_calloc(size_t c, size_t n)
{
    void *q = may_allocate() ? calloc(c, n) : NULL;
    if (q != NULL)
        atomic_fetch_add(&allocs, 1);
    return q;
}

static void *count_realloc(void *old, size_t n)
{
    void *q;
    if (!may_allocate())
        return NULL;
    q = realloc(old, n);
    if (q != NULL)
        atomic_fetch_add(&allocs, 1);
    /* Reallocating an existing block is still an allocation on a hot path. */
    if (q != NULL && old != NULL)
        atomic_fetch_add(&frees, 1);
    return q;
}

static void count_free(void *q)
{
    if (q != NULL)
        atomic_fetch_add(&frees, 1);
    free(q);
}

void test_count_allocations(void)
{
    atomic_store(&fail_after, -1);
    OK(mio_set_allocator(count_malloc, count_realloc, count_calloc, count_free));
}

long test_allocations(void)
{
    return atomic_load(&allocs);
}

long test_frees(void)
{
    return atomic_load(&frees);
}

long test_allocations_live(void)
{
    return atomic_load(&allocs) - atomic_load(&frees);
}

long test_allocations_refused(void)
{
    return atomic_load(&refused);
}

void test_fail_allocations_after(long n)
{
    atomic_store(&fail_for_good, 1);
    atomic_store(&fail_after, n);
}

void test_fail_allocation(long n)
{
    atomic_store(&fail_for_good, 0);
    atomic_store(&fail_after, n);
}

/* ---- signals ---- */

#ifndef _WIN32
static void ignore_signal(int sig)
{
    (void)sig;
}

void test_catch_signal(int sig, void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler != NULL ? handler : ignore_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART */
    CHECK_EQ(sigaction(sig, &sa, NULL), 0);
}

static void *send_signals(void *arg)
{
    struct test_signaller *s = arg;
    while (!atomic_load(&s->done)) {
        test_sleep_ms(10);
        if (!atomic_load(&s->done))
            pthread_kill(s->target, s->sig);
    }
    return NULL;
}

void test_signals_start(struct test_signaller *s, int sig)
{
    test_catch_signal(sig, NULL);
    s->target = pthread_self();
    s->sig = sig;
    atomic_init(&s->done, 0);
    CHECK_EQ(pthread_create(&s->thread, NULL, send_signals, s), 0);
}

void test_signals_stop(struct test_signaller *s)
{
    atomic_store(&s->done, 1);
    CHECK_EQ(pthread_join(s->thread, NULL), 0);
}

/* ---- descriptor limits ---- */

static struct rlimit fds_old;
static int ballast[8192], nballast = -1;

void test_fds_exhaust(int room, int left)
{
    struct rlimit lim;
    int fd, highest = 0, null;

    CHECK_EQ(nballast, -1);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(null >= 0);
    for (fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            highest = fd;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &fds_old), 0);
    lim = fds_old;
    lim.rlim_cur = (rlim_t)highest + 1 + (rlim_t)room;
    CHECK(lim.rlim_cur <= fds_old.rlim_cur);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
    ballast[0] = null;
    nballast = 1;
    while ((fd = fcntl(null, F_DUPFD_CLOEXEC, 0)) >= 0) {
        CHECK(nballast < (int)(sizeof ballast / sizeof ballast[0]));
        ballast[nballast++] = fd;
    }
    CHECK_EQ(errno, EMFILE);
    CHECK(left < nballast);
    while (left-- > 0)
        CHECK_EQ(close(ballast[--nballast]), 0);
}

void test_fds_restore(void)
{
    CHECK(nballast >= 0);
    while (nballast > 0)
        CHECK_EQ(close(ballast[--nballast]), 0);
    nballast = -1;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &fds_old), 0);
}

int test_fds_ballast(const int **fds)
{
    *fds = ballast;
    return nballast;
}
#endif
