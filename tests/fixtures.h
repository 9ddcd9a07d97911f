/* What the tests share beyond the harness (fixtures.c, linked into every
 * test program; harness.h includes this): the I/O steps a test takes on its
 * sources, the sources themselves (socket pairs, pipes, loopback TCP),
 * expectations about what a wait reports, a counting allocator and, off
 * Windows, signals. */
#ifndef MIO_TEST_FIXTURES_H
#define MIO_TEST_FIXTURES_H

#include "mio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "Eventually": nothing a test waits for should take close to this. */
#define TEST_LONG_WAIT (5 * MIO_SEC)
/* How long a wait lasts that must report nothing. */
#define TEST_QUIET_WAIT (20 * MIO_MSEC)

/* ---- I/O: the steps that use readiness up -------------------------------- */

/* Reads until MIO_EAGAIN, the end of the stream or an error, into buf (as
 * much as fits; buf may be NULL) and past it; returns the bytes read and
 * stores the last result (MIO_EAGAIN, 0 or an error) in *last. */
size_t test_read_until(mio_fd fd, char *buf, size_t cap, ssize_t *last);
/* Reads until MIO_EAGAIN, as a user does after an event (the step that
 * re-arms an emulated edge); returns the bytes read. */
size_t test_drain(mio_fd fd);
/* Writes until MIO_EAGAIN: the write side is then not ready.  Returns the
 * bytes written. */
size_t test_fill(mio_fd fd);
/* Writes all of s, at once. */
void test_put(mio_fd fd, const char *s);

/* ---- sources ------------------------------------------------------------- */

/* Two connected ends: r is read from, w written to. */
struct test_source {
    mio_fd r, w;
};

/* A socket pair (TCP on Windows), r one end and w the other. */
struct test_source test_socket_source(void);
#ifndef _WIN32
/* A pipe: r its read end, w its write end (Windows has none). */
struct test_source test_pipe_source(void);
#endif
/* Closes both ends. */
void test_close_source(struct test_source s);

/* ---- loopback TCP -------------------------------------------------------- */

/* A listener on `text` ("127.0.0.1:0", "[::1]:0": any free port) and the
 * address it got. */
mio_fd test_listen(const char *text, mio_addr *bound);
/* Accepts one connection, waiting for it (TEST_LONG_WAIT at most) on a poll
 * of this run's backend; *peer (if not NULL) gets the client's address. */
mio_fd test_accept(mio_fd listener, mio_addr *peer);

/* A connected TCP pair on IPv4 loopback. */
struct test_tcp {
    mio_fd client, server;
};

/* The tokens test_tcp_pair registers the two ends with. */
enum { TEST_CLIENT = 1001, TEST_SERVER = 1002 };

/* A connected pair: the client's connect has completed (it was writable and
 * has no error) and the server's end is accepted.  With p, both ends are
 * registered there with `interest` (TEST_CLIENT, TEST_SERVER). */
struct test_tcp test_tcp_pair(mio_poll *p, uint32_t interest);
/* Closes both ends (deregistered first or not: closing forgets them). */
void test_close_tcp(struct test_tcp t);

/* ---- expectations about waits -------------------------------------------
 * Each fails the test at the caller's line, naming the token and the flags
 * it expected and those it saw. */

/* Waits, over as many waits as it takes within timeout_ns (one wait at least,
 * however short the timeout), until the flags reported for token, merged,
 * hold every bit of `flags`; returns them. */
#define EXPECT_EVENT(p, token, flags, timeout_ns)                             \
    test_expect_at(__FILE__, __LINE__, (p), (token), (flags), 0, (timeout_ns))
/* The same until they hold some bit of `any`. */
#define EXPECT_ANY(p, token, any, timeout_ns)                                 \
    test_expect_at(__FILE__, __LINE__, (p), (token), 0, (any), (timeout_ns))
/* As EXPECT_EVENT, and no wait on the way reports anything for `other` (a
 * token replaced, a registration refused or gone). */
#define EXPECT_EVENT_NOT(p, token, flags, other, timeout_ns)                  \
    test_expect_not_at(__FILE__, __LINE__, (p), (token), (flags), (other), (timeout_ns))
/* One wait (of timeout_ns at most) reports one event and nothing else:
 * token, with exactly `flags`. */
#define EXPECT_ONLY(p, token, flags, timeout_ns)                              \
    test_expect_only_at(__FILE__, __LINE__, (p), (token), (flags), (timeout_ns))
/* Waits up to timeout_ns, over as many waits as it takes, for an event of
 * token, whatever its flags; a wait cut short by a signal (MIO_EINTR: the
 * handler may run on this thread) goes on.  Whether one came. */
bool test_await(mio_poll *p, mio_token token, int64_t timeout_ns);
/* A wait of timeout_ns reports nothing for token. */
#define EXPECT_NO_EVENT(p, token, timeout_ns)                                 \
    test_expect_no_event_at(__FILE__, __LINE__, (p), (token), (timeout_ns))
/* A wait of timeout_ns reports nothing at all, and does not return before
 * its time (a readiness that cannot be reported must not make it spin). */
#define EXPECT_QUIET(p, timeout_ns)                                           \
    test_expect_quiet_at(__FILE__, __LINE__, (p), (timeout_ns))

uint32_t test_expect_at(const char *file, int line, mio_poll *p, mio_token token, uint32_t all,
                        uint32_t any, int64_t timeout_ns);
uint32_t test_expect_not_at(const char *file, int line, mio_poll *p, mio_token token,
                            uint32_t flags, mio_token other, int64_t timeout_ns);
void test_expect_only_at(const char *file, int line, mio_poll *p, mio_token token,
                         uint32_t flags, int64_t timeout_ns);
void test_expect_no_event_at(const char *file, int line, mio_poll *p, mio_token token,
                             int64_t timeout_ns);
void test_expect_quiet_at(const char *file, int line, mio_poll *p, int64_t timeout_ns);

/* ---- allocation ---------------------------------------------------------- */

/* Makes the library allocate through counters (before any other call, as
 * mio_set_allocator asks); none fails until test_fail_allocations_after. */
void test_count_allocations(void);
/* Blocks allocated and freed so far (a realloc of a block counts as both). */
long test_allocations(void);
long test_frees(void);
/* Blocks allocated and not freed yet. */
long test_allocations_live(void);
/* Allocations refused so far by the two calls below. */
long test_allocations_refused(void);
/* n more allocations succeed, then every one fails; n < 0: none fails. */
void test_fail_allocations_after(long n);
/* n more allocations succeed, the next one fails, and the ones after it
 * succeed again: a failure at one allocation site, then life goes on. */
void test_fail_allocation(long n);

/* ---- signals, which Windows lacks ---------------------------------------- */

#ifndef _WIN32
#include <pthread.h>
#include <stdatomic.h>

/* Catches sig with handler (NULL: one that does nothing), without
 * SA_RESTART: a wait the signal lands in returns MIO_EINTR. */
void test_catch_signal(int sig, void (*handler)(int));

/* Sends a signal to the thread that started it, every 10 ms, until
 * stopped: a signal that lands just before a wait blocks cuts nothing, the
 * next one does. */
struct test_signaller {
    pthread_t target, thread;
    int sig;
    atomic_int done;
};
/* Catches sig (doing nothing) and starts sending it to this thread. */
void test_signals_start(struct test_signaller *s, int sig);
void test_signals_stop(struct test_signaller *s);

/* ---- descriptor limits, which Windows lacks ---------------------------- */

/* Runs this process out of descriptors: RLIMIT_NOFILE `room` above the
 * highest descriptor open, every free number below the limit taken (by
 * close-on-exec duplicates of /dev/null, the "ballast"), then `left` of
 * them given back, so that exactly `left` are free. */
void test_fds_exhaust(int room, int left);
/* Closes the ballast and restores the limit. */
void test_fds_restore(void);
/* The ballast's descriptors (a forked child closes them to have room);
 * returns how many. */
int test_fds_ballast(const int **fds);
#endif

#endif
