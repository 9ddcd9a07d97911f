/* The test harness: each TEST is one behaviour, run in its own process as
 *   test_<area> <name> <backend>
 * so ctest isolates and times every (test, backend) pair.  Exit 0 passes,
 * 77 skips, anything else fails. */
#ifndef MIO_TEST_HARNESS_H
#define MIO_TEST_HARNESS_H

#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
    struct test_case *next;
    int child;          /* a CHILD_CASE: run by other tests, not by ctest */
};
void test_add(struct test_case *t);

#define TEST_CASE_(name, child)                                               \
    static void test_##name(void);                                            \
    static struct test_case case_##name = { #name, test_##name, NULL, child };\
    __attribute__((constructor)) static void register_##name(void)           \
    {                                                                         \
        test_add(&case_##name);                                               \
    }                                                                         \
    static void test_##name(void)

/* One behaviour, run by ctest once per backend.  CMake finds the names in
 * the source; each program also checks that list against the tests it
 * holds (`--registered`, a ctest of its own), so a test the source scan
 * missed fails loudly instead of never running. */
#define TEST(name) TEST_CASE_(name, 0)

/* A case another test runs in a child process of this program (child.h):
 * runnable by name like a TEST, but no ctest of its own. */
#define CHILD_CASE(name) TEST_CASE_(name, 1)

/* The backend this run is for ("epoll", "poll", ...). */
extern const char *test_backend;

#define FAIL(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fprintf(stderr, "\n");                                                \
        exit(1);                                                              \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            FAIL("check failed: %s", #cond);                                  \
    } while (0)

/* Integers compared as long long, printed on failure (with mio_strerror). */
#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_)                                                         \
            FAIL("%s == %s failed: %lld (%s) != %lld", #a, #b, a_,            \
                 a_ < 0 && a_ > -4096 ? mio_strerror((int)a_) : "", b_);      \
    } while (0)

/* Calls that must succeed. */
#define OK(call) CHECK_EQ((call), 0)

/* Skips the test (exit 77) with a reason. */
#define SKIP(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "skipped: ");                                         \
        fprintf(stderr, __VA_ARGS__);                                         \
        fprintf(stderr, "\n");                                                \
        exit(77);                                                             \
    } while (0)

/* Whether this Windows program runs under wine (never elsewhere). */
int test_on_wine(void);
/* Whether this program runs under valgrind (which keeps its own descriptor
 * limit, and runs everything much slower). */
int test_on_valgrind(void);
/* TEST_UNDER_TSAN: defined when built with ThreadSanitizer. */
#if defined(__SANITIZE_THREAD__)
#define TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#endif
/* Skips a test for a known difference of wine from Windows. */
#define TEST_NOT_ON_WINE(why)                                                 \
    do {                                                                      \
        if (test_on_wine())                                                   \
            SKIP("wine differs from Windows: %s", why);                       \
    } while (0)

/* Whether this run is on the kqueue backend built against libkqueue (on
 * Linux, to test the backend there), which differs from a BSD kernel in the
 * ways the README lists; never elsewhere. */
int test_on_libkqueue(void);
/* Skips a test for a known difference of libkqueue from a BSD kernel. */
#define TEST_NOT_ON_LIBKQUEUE(why)                                            \
    do {                                                                      \
        if (test_on_libkqueue())                                              \
            SKIP("libkqueue differs from a BSD kernel: %s", why);             \
    } while (0)

/* A test of what Windows lacks (signals, rlimits, fork and exec, fcntl,
 * pipes, Unix socketpairs): declared like TEST inside `#ifndef _WIN32`, and
 * registered with ctest off Windows only, so a Windows run has no such test
 * rather than a skipped one.  Left undefined on Windows, so that one written
 * outside such a section does not build there. */
#ifndef _WIN32
#define POSIX_TEST(name) TEST(name)
#endif

/* Its counterpart: a test of the Windows backend's own machinery (through
 * the hooks src/sys/win.h has for tests), registered with ctest on Windows
 * only and undefined elsewhere. */
#ifdef _WIN32
#define WINDOWS_TEST(name) TEST(name)
#endif

/* A poll on this run's backend (skips if the host lacks it). */
mio_poll *test_poll(void);

/* Waits up to timeout_ns for events and returns how many, each checked
 * well formed: no internal token, some readiness and nothing else, never
 * more than cap. */
int test_wait(mio_poll *p, mio_event *ev, size_t cap, int64_t timeout_ns);
/* Finds the merged readiness of `token` in ev[0..n) (0 if absent). */
uint32_t test_flags(const mio_event *ev, int n, mio_token token);
/* Waits up to timeout_ns for an event for token and returns its flags,
 * merged over the batch; 0 if none came. */
uint32_t test_wait_token(mio_poll *p, mio_token token, int64_t timeout_ns);

/* The number of descriptors open in this process (of handles on Windows). */
int test_open_fds(void);
/* Whether a child process would get fd: it is not close-on-exec, or (on
 * Windows, where fd may be any handle) it is inheritable. */
int test_inheritable(mio_fd fd);

/* Closes one end of a mio_socketpair so that the other end sees the
 * connection gone both ways.  On Windows the pair is TCP, where a close ends
 * only this end's sending (the peer may still write): there it resets. */
void test_hang_up(mio_fd fd);

/* A fresh empty directory, made at the first call and removed with what is
 * in it at exit; and how many entries a directory has. */
const char *test_tmp_dir(void);
int test_dir_entries(const char *dir);

/* The monotonic clock in nanoseconds, and sleeps that finish their time. */
int64_t test_now_ns(void);
void test_sleep_ns(int64_t ns);
void test_sleep_ms(int ms);

/* n divided by $MIO_TEST_SCALE (set under valgrind and TSan), at least 1:
 * stress tests size their loops with it. */
long test_scaled(long n);

/* Fails the test if it is still running `seconds` from now (0 cancels): a
 * wait that is never woken fails here rather than at ctest's limit. */
void test_watchdog(unsigned seconds);

/* Lets readiness the OS reports asynchronously arrive before a test relies
 * on one wait seeing all of it (AFD completions on Windows); a no-op where
 * readiness is known at once. */
void test_settle(void);

/* Whether this process may not use io_uring: the errno io_uring_setup
 * fails with (EPERM for a seccomp filter or kernel.io_uring_disabled, ENOSYS
 * where the kernel lacks it), 0 if it works or this is not Linux.  Tests on
 * the uring backend skip when it is refused. */
int test_uring_refused(void);

/* Sets an environment variable of this process (NULL: removes it), for the
 * library's getenv and for children alike.  MIO_BACKEND is removed before
 * every TEST: the backend is the command line's. */
void test_setenv(const char *name, const char *value);

/* Whether this run's backend emulates edge triggers. */
int test_edge_emulated(void);

/* Sources, I/O steps, expectations about waits, allocation and signals. */
#include "fixtures.h"

#endif
