/* The library under injected system-call failures (tests/fault/fault.c,
 * Linux with glibc).  Each test runs one of the workloads below in a child
 * of this program with the shim preloaded, at a seeded rate, once per seed,
 * and judges it from outside: exit status 0 (the workload checks its own
 * invariants and fails on a violation), no hang, no descriptor left open
 * (the workload counts its own; the shim's report lists any left at exit),
 * and the report shows faults were injected, so that no run passes without
 * having been tested.
 *
 * The seeds, the rate, the calls and MIO_FAULT_FDS are the test's own unless
 * its environment sets MIO_FAULT_SEED (one run with it), MIO_FAULT_RATE,
 * MIO_FAULT_CALLS or MIO_FAULT_FDS; a MIO_FAULT_SCHEDULE there applies to
 * every run.  A workload also runs by hand under any schedule, and judges
 * itself the same:
 *
 *   LD_PRELOAD=build/libmio_fault.so MIO_FAULT_SCHEDULE=epoll_ctl@2=ENOSPC \
 *       build/test_faults echo_workload epoll
 *
 * Invariants of each:
 *   wake_workload   every wake that returned 0 is reported by a later wait,
 *                   whatever the waits and the poll's creation met;
 *   echo_workload   TCP echo through edge-triggered registrations: every byte
 *                   a write said it wrote comes back once and in order; a
 *                   registration refused says so, and its connection is closed
 *                   cleanly (its client sees the end and starts again);
 *   pipe_workload   the same through pipes (write, writev, read, readv);
 *   batch_workload  mio_udp_send_batch's count is exactly what went: each of
 *                   those datagrams arrives once, none of the others ever but
 *                   the segments of an entry sent in part, which the call
 *                   moved past them (sent again from there, the rest come);
 *   close_workload  close interrupted after closing: mio_close succeeds, and
 *                   no descriptor is closed twice (a number another thread got
 *                   meanwhile stays open) or left open;
 *   drain_rule_workload  every read and write cut short (rate 1): a reader
 *                   and a writer that wait after each short transfer, as
 *                   mio.h's rule lets them, still move every byte over TCP,
 *                   a Unix socket pair and a pipe.
 * None may lose an event: a wait with nothing due while work is left fails.
 * An error the environment names for injection is accepted where the
 * library passes it on; where an EAGAIN may be made up (a source in fact
 * ready, which the kernel never says is not), a quiet wait retries
 * everything instead.  On the uring backend the waits and registrations are
 * io_uring_enter, beyond the shim's reach: the wake test skips there, the
 * others run (their transfers and descriptors go through the C library).
 */
#include "harness.h"

#include "child.h"

/* The shim is built for Linux with glibc only (MIO_FAULT_SHIM): elsewhere the
 * tests skip, and the workloads are not built. */
#if !defined(_WIN32) && defined(MIO_FAULT_SHIM)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ---- what the workloads share ---- */

/* Descriptors open now, and how many of them are /dev/null: the library
 * keeps one of those in reserve (for accepting out of descriptors) from the
 * first listener on, on purpose. */
static void census(int *total, int *devnull)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[256];

    CHECK(d != NULL);
    *total = *devnull = 0;
    while ((e = readdir(d)) != NULL) {
        ssize_t n;
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        (*total)++;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        if (strcmp(target, "/dev/null") == 0)
            (*devnull)++;
    }
    closedir(d);
}

struct fds_at_start {
    int total, devnull;
};

static struct fds_at_start fds_start(void)
{
    struct fds_at_start s;
    census(&s.total, &s.devnull);
    return s;
}

/* The same descriptors as at the start, but the library's reserve. */
static void fds_check(struct fds_at_start s, const char *where)
{
    int total, devnull;
    census(&total, &devnull);
    if (devnull == s.devnull + 1)
        total--;
    if (total != s.total)
        FAIL("%s: %d descriptors open, %d at the start", where, total, s.total);
}

/* Whether err (a MIO_E* code) is an error the environment names for the
 * shim to inject (MIO_FAULT_CALLS, MIO_FAULT_SCHEDULE): a schedule written
 * elsewhere may name any, and the library then passes it on. */
static bool named(long err)
{
    static const char *const vars[] = { "MIO_FAULT_CALLS", "MIO_FAULT_SCHEDULE" };
    const char *name = err < 0 && err > -4096 ? strerrorname_np((int)-err) : NULL;
    size_t i;

    for (i = 0; name != NULL && i < 2; i++) {
        const char *v = getenv(vars[i]), *at;
        for (at = v; at != NULL && (at = strstr(at, name)) != NULL; at += strlen(name))
            if (!isalnum((unsigned char)at[strlen(name)]))
                return true;
    }
    return false;
}

/* A made-up EAGAIN on a source that is in fact ready (the kernel never
 * says that) leaves an edge-triggered program waiting for an edge that
 * does not come: where one may have been injected, a wait with nothing due
 * means that rather than a lost event, and the workload tries everything
 * again. */
static bool eagain_named(void)
{
    return named(MIO_EAGAIN);
}

/* What an injected failure of a call can be (the shim's defaults, or what
 * the environment names), as the library reports it; anything else fails
 * the workload. */
static bool transient(long err)
{
    return named(err) || err == MIO_EINTR || err == MIO_ENOMEM || err == MIO_ENOBUFS || err == MIO_EMFILE ||
           err == MIO_ENFILE || err == -ENOSPC || err == -ENODEV || err == MIO_ECONNABORTED ||
           err == -EPROTO || err == MIO_EPERM || err == MIO_EADDRNOTAVAIL || err == MIO_EAGAIN;
}

/* mio_close: 0, also when close(2) was interrupted after closing (it is
 * never retried); an error only if the environment named it, the
 * descriptor closed all the same. */
#define CLOSE_OK(fd)                                                          \
    do {                                                                      \
        int c_ = mio_close(fd);                                               \
        if (c_ != 0 && !named(c_))                                            \
            FAIL("mio_close(%s): %d (%s)", #fd, c_, mio_strerror(c_));        \
    } while (0)

#define CHECK_TRANSIENT(err)                                                  \
    do {                                                                      \
        long e_ = (long)(err);                                                \
        if (!transient(e_))                                                   \
            FAIL("%s: unexpected %ld (%s)", #err, e_, mio_strerror((int)e_)); \
    } while (0)

/* Set while another thread of the workload opens and closes descriptors:
 * counts taken meanwhile mean nothing. */
static bool fds_moving;

/* A poll on this run's backend, made again until the failures injected into
 * its creation let it be; each refusal leaves no descriptor behind. */
static mio_poll *poll_despite(unsigned *refused)
{
    for (;;) {
        struct fds_at_start s = fds_start();
        mio_poll *p = NULL;
        int err = mio_poll_new_backend(test_backend, &p);
        if (err == 0)
            return p;
        if (err == MIO_ENOSYS)
            SKIP("backend %s not available here", test_backend);
        CHECK_TRANSIENT(err);
        CHECK(p == NULL);
        if (!fds_moving)
            fds_check(s, "after a refused mio_poll_new");
        (*refused)++;
    }
}

/* A wait that may fail as injected (EINTR, and ENOMEM from poll(2)): -1
 * then, with nothing taken from the kernel. */
static int wait_despite(mio_poll *p, mio_event *ev, size_t cap, int64_t timeout,
                        unsigned *failed)
{
    int n = mio_poll_wait(p, ev, cap, timeout);
    if (n < 0) {
        CHECK(n == MIO_EINTR || n == MIO_ENOMEM || named(n));
        (*failed)++;
        return -1;
    }
    return n;
}

#define MS (1000 * 1000)

static void register_despite(mio_poll *p, mio_fd fd, mio_token t, uint32_t interest,
                             unsigned *refused)
{
    int err;
    while ((err = mio_register(p, fd, t, interest)) < 0) {
        CHECK_TRANSIENT(err);
        (*refused)++;
    }
}

/* ---- (a) wakers woken from another thread ---- */

enum { WAKERS = 4, WAKES = 3000 };

static mio_waker *wakers[WAKERS];
static atomic_long issued[WAKERS], acked[WAKERS];
static atomic_int wakes_done;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Wakes one waker at a time and waits for the poll to report it: a wake
 * that returned 0 must come out of a wait, however the waits failed. */
static void *waking(void *arg)
{
    long i;
    (void)arg;
    for (i = 1; i <= WAKES; i++) {
        int w = (int)(mix((uint64_t)i) % WAKERS), err;
        int64_t until;
        if (i % 7 == 0)
            test_sleep_ns(50 * 1000);   /* the waiter blocks in the kernel */
        atomic_store(&issued[w], i);
        if ((err = mio_waker_wake(wakers[w])) < 0)
            continue;                   /* refused: nothing to report */
        until = test_now_ns() + 3000 * (int64_t)MS;
        while (atomic_load(&acked[w]) < i) {
            if (test_now_ns() > until)
                FAIL("wake %ld of waker %d returned 0 but no wait reported it", i, w);
            sched_yield();
        }
    }
    atomic_store(&wakes_done, 1);
    CHECK_EQ(mio_waker_wake(wakers[0]), 0);
    return NULL;
}

CHILD_CASE(wake_workload)
{
    struct fds_at_start s = fds_start();
    unsigned refused = 0, failed = 0, i;
    mio_event ev[8];
    mio_poll *p;
    pthread_t t;

    test_watchdog(8);
    /* Creation: epoll_create1, the wake-up eventfd and its epoll_ctl. */
    for (i = 0; i < 20; i++)
        mio_poll_free(poll_despite(&refused));
    /* Pipes (pipe2) made despite failures, and closed. */
    for (i = 0; i < 20;) {
        mio_fd fds[2];
        int err = mio_pipe(fds);
        if (err < 0) {
            CHECK_TRANSIENT(err);
            refused++;
            continue;
        }
        CLOSE_OK(fds[0]);
        CLOSE_OK(fds[1]);
        i++;
    }
    fds_check(s, "after making and freeing polls and pipes");
    p = poll_despite(&refused);
    for (i = 0; i < WAKERS; i++)
        OK(mio_waker_new(p, i + 1, &wakers[i]));
    CHECK(pthread_create(&t, NULL, waking, NULL) == 0);
    for (i = 0; !atomic_load(&wakes_done); i++) {
        /* Blocking, with a timeout (epoll_pwait2, ppoll), and not at all. */
        int64_t timeout = i % 3 == 0 ? -1 : i % 3 == 1 ? 20 * MS : 0;
        int n = wait_despite(p, ev, 8, timeout, &failed), k;
        for (k = 0; k < n; k++) {
            mio_token w = ev[k].token - 1;
            CHECK(w < WAKERS);
            CHECK_EQ(ev[k].flags, MIO_READABLE);
            atomic_store(&acked[w], atomic_load(&issued[w]));
        }
    }
    CHECK(pthread_join(t, NULL) == 0);
    for (i = 0; i < WAKERS; i++)
        mio_waker_free(wakers[i]);
    mio_poll_free(p);
    fds_check(s, "at the end");
    fprintf(stderr, "wake_workload: %u creations refused, %u waits failed\n", refused, failed);
}

/* ---- (b) TCP echo through edge-triggered registrations ---- */

enum { CLIENTS = 6, ECHO_BYTES = 128 * 1024, SERVED = 2 * CLIENTS, ATTEMPTS = 100 };

enum { T_LISTENER = 1, T_CLIENT = 100, T_SERVED = 1000 };

static unsigned char pattern(int client, size_t off)
{
    return (unsigned char)(off * 131 + (size_t)client * 7 + (off >> 9));
}

struct echo_client {
    mio_fd fd;                  /* -1: none now */
    int attempts;
    size_t sent, got;           /* in this attempt */
    bool done, retry;
};

struct echo_served {
    mio_fd fd;                  /* -1: a free slot */
    unsigned char buf[8192];
    size_t len, off;            /* buf[off..len) is still to echo */
    bool retry, rearmed;
};

struct echo {
    mio_poll *p;
    mio_fd listener;
    mio_addr addr;
    bool accept_retry;
    struct echo_client c[CLIENTS];
    struct echo_served s[SERVED];
    unsigned reg_refused, restarts, io_failed, waits_failed, accept_failed;
};

/* Ends a descriptor's registration and the descriptor; both succeed
 * whatever close(2) said (it releases the number even when interrupted). */
static void drop_fd(mio_poll *p, mio_fd *fd)
{
    OK(mio_deregister(p, *fd));
    CLOSE_OK(*fd);
    *fd = -1;
}

/* The client's connection ended early (its server side was closed after a
 * refused registration): what came back was checked; it starts again. */
static void client_restart(struct echo *e, int i)
{
    struct echo_client *c = &e->c[i];
    drop_fd(e->p, &c->fd);
    e->restarts++;
    c->retry = true;
}

static void client_start(struct echo *e, int i)
{
    struct echo_client *c = &e->c[i];
    int err;

    if (++c->attempts > ATTEMPTS)
        FAIL("client %d: %d attempts", i, ATTEMPTS);
    if ((err = mio_tcp_connect(&e->addr, &c->fd)) < 0) {
        CHECK_TRANSIENT(err);
        c->fd = -1;
        c->retry = true;
        return;
    }
    if ((err = mio_register(e->p, c->fd, T_CLIENT + (mio_token)i,
                            MIO_READABLE | MIO_WRITABLE)) < 0) {
        CHECK_TRANSIENT(err);
        CLOSE_OK(c->fd);
        c->fd = -1;
        c->retry = true;
        e->reg_refused++;
        return;
    }
    c->sent = c->got = 0;
}

static void client_run(struct echo *e, int i)
{
    struct echo_client *c = &e->c[i];
    unsigned char buf[4096];
    bool more = true;

    if (c->done)
        return;
    if (c->fd < 0) {
        client_start(e, i);
        return;
    }
    while (more) {
        ssize_t w = MIO_EAGAIN, r;
        more = false;
        if (c->sent < ECHO_BYTES) {
            size_t n = ECHO_BYTES - c->sent, k;
            if (n > sizeof buf)
                n = sizeof buf;
            for (k = 0; k < n; k++)
                buf[k] = pattern(i, c->sent + k);
            if (i % 2 == 0) {
                w = mio_write(c->fd, buf, n);
            } else {
                mio_iovec iov[2] = { { buf, n / 3 }, { buf + n / 3, n - n / 3 } };
                w = mio_writev(c->fd, iov, 2);
            }
            if (w > 0) {
                CHECK((size_t)w <= n);
                c->sent += (size_t)w;
                more = true;
            } else if (w == MIO_EPIPE || w == MIO_ECONNRESET) {
                client_restart(e, i);
                return;
            } else if (w != MIO_EAGAIN) {
                CHECK(w == MIO_ENOBUFS || w == MIO_ENOMEM || named(w));
                e->io_failed++;
                c->retry = true;
            }
        }
        if (i % 2 == 0) {
            r = mio_read(c->fd, buf, sizeof buf);
        } else {
            mio_iovec iov[2] = { { buf, 1000 }, { buf + 1000, sizeof buf - 1000 } };
            r = mio_readv(c->fd, iov, 2);
        }
        if (r > 0) {
            size_t k;
            /* Nothing comes back that a write did not say it wrote. */
            if (c->got + (size_t)r > c->sent)
                FAIL("client %d: %zu bytes back, %zu written", i, c->got + (size_t)r, c->sent);
            for (k = 0; k < (size_t)r; k++)
                if (buf[k] != pattern(i, c->got + k))
                    FAIL("client %d: byte %zu came back wrong", i, c->got + k);
            c->got += (size_t)r;
            more = true;
            if (c->got == ECHO_BYTES) {
                drop_fd(e->p, &c->fd);
                c->done = true;
                return;
            }
        } else if (r == 0 || r == MIO_ECONNRESET) {
            client_restart(e, i);
            return;
        } else if (r != MIO_EAGAIN) {
            CHECK(r == MIO_ENOMEM || named(r));
            e->io_failed++;
            c->retry = true;
        }
    }
}

static void served_close(struct echo *e, struct echo_served *s)
{
    drop_fd(e->p, &s->fd);
    s->retry = false;
}

static void served_run(struct echo *e, struct echo_served *s)
{
    for (;;) {
        ssize_t r;
        while (s->off < s->len) {
            ssize_t w = mio_write(s->fd, s->buf + s->off, s->len - s->off);
            if (w > 0) {
                s->off += (size_t)w;
            } else if (w == MIO_EAGAIN) {
                return;         /* on with the next WRITABLE */
            } else if (w == MIO_EPIPE || w == MIO_ECONNRESET) {
                served_close(e, s);
                return;
            } else {
                CHECK(w == MIO_ENOBUFS || w == MIO_ENOMEM || named(w));
                e->io_failed++;
                s->retry = true;
                return;
            }
        }
        s->off = s->len = 0;
        r = mio_read(s->fd, s->buf, sizeof s->buf);
        if (r > 0) {
            s->len = (size_t)r;
            /* Once per connection, a change of registration that may be
             * refused too: the connection then ends. */
            if (!s->rearmed) {
                int err = mio_reregister(e->p, s->fd, T_SERVED + (mio_token)(s - e->s),
                                         MIO_READABLE | MIO_WRITABLE);
                s->rearmed = true;
                if (err < 0) {
                    CHECK_TRANSIENT(err);
                    e->reg_refused++;
                    served_close(e, s);
                    return;
                }
            }
        } else if (r == 0 || r == MIO_ECONNRESET) {
            served_close(e, s);
            return;
        } else if (r == MIO_EAGAIN) {
            return;
        } else {
            CHECK(r == MIO_ENOMEM || named(r));
            e->io_failed++;
            s->retry = true;
            return;
        }
    }
}

static void accept_run(struct echo *e)
{
    for (;;) {
        mio_fd fd;
        int err = mio_tcp_accept(e->listener, &fd, NULL), i;
        if (err == MIO_EAGAIN)
            return;
        if (err < 0) {
            /* Refused for the moment, the connection still queued: no new
             * edge will say so. */
            CHECK_TRANSIENT(err);
            e->accept_failed++;
            e->accept_retry = true;
            return;
        }
        for (i = 0; i < SERVED && e->s[i].fd >= 0; i++)
            ;
        CHECK(i < SERVED);
        if ((err = mio_register(e->p, fd, T_SERVED + (mio_token)i,
                                MIO_READABLE | MIO_WRITABLE)) < 0) {
            CHECK_TRANSIENT(err);
            e->reg_refused++;
            CLOSE_OK(fd);
            continue;
        }
        memset(&e->s[i], 0, sizeof e->s[i]);
        e->s[i].fd = fd;
    }
}

static bool echo_done(const struct echo *e)
{
    int i;
    for (i = 0; i < CLIENTS; i++)
        if (!e->c[i].done)
            return false;
    return true;
}

static void echo_stalled(const struct echo *e)
{
    int i;
    for (i = 0; i < CLIENTS; i++)
        fprintf(stderr, "client %d: fd %d sent %zu got %zu done %d\n", i, (int)e->c[i].fd,
                e->c[i].sent, e->c[i].got, e->c[i].done);
    for (i = 0; i < SERVED; i++)
        if (e->s[i].fd >= 0)
            fprintf(stderr, "served %d: fd %d holding %zu\n", i, (int)e->s[i].fd,
                    e->s[i].len - e->s[i].off);
    FAIL("nothing reported for a second with work left: an event was lost");
}

CHILD_CASE(echo_workload)
{
    static struct echo e;
    struct fds_at_start start = fds_start();
    unsigned refused = 0;
    mio_event ev[64];
    int i;

    test_watchdog(9);
    e.p = poll_despite(&refused);
    for (i = 0; i < SERVED; i++)
        e.s[i].fd = -1;
    for (i = 0; i < CLIENTS; i++)
        e.c[i].fd = -1;
    OK(mio_addr_parse("127.0.0.1:0", &e.addr));
    for (;;) {
        int err = mio_tcp_listen(&e.addr, 64, &e.listener);
        if (err == 0)
            break;
        CHECK_TRANSIENT(err);
    }
    OK(mio_local_addr(e.listener, &e.addr));
    for (;;) {
        int err = mio_register(e.p, e.listener, T_LISTENER, MIO_READABLE);
        if (err == 0)
            break;
        CHECK_TRANSIENT(err);
    }
    for (i = 0; i < CLIENTS; i++)
        client_start(&e, i);
    while (!echo_done(&e)) {
        bool retrying = e.accept_retry;
        int n, k;
        for (i = 0; i < CLIENTS; i++)
            retrying |= e.c[i].retry;
        for (i = 0; i < SERVED; i++)
            retrying |= e.s[i].fd >= 0 && e.s[i].retry;
        n = mio_poll_wait(e.p, ev, 64, retrying ? 1 * MS : eagain_named() ? 50 * MS : 1000 * MS);
        if (n < 0) {
            CHECK(n == MIO_EINTR || n == MIO_ENOMEM || named(n));
            e.waits_failed++;
            continue;
        }
        if (n == 0 && !retrying && !eagain_named())
            echo_stalled(&e);
        if (n == 0 && !retrying) {
            e.accept_retry = true;
            for (i = 0; i < CLIENTS; i++)
                e.c[i].retry = !e.c[i].done;
            for (i = 0; i < SERVED; i++)
                e.s[i].retry = e.s[i].fd >= 0;
        }
        for (k = 0; k < n; k++) {
            mio_token t = ev[k].token;
            if (t == T_LISTENER)
                accept_run(&e);
            else if (t >= T_SERVED && t < T_SERVED + SERVED && e.s[t - T_SERVED].fd >= 0)
                served_run(&e, &e.s[t - T_SERVED]);
            else if (t >= T_CLIENT && t < T_CLIENT + CLIENTS && e.c[t - T_CLIENT].fd >= 0)
                client_run(&e, (int)(t - T_CLIENT));
        }
        if (e.accept_retry) {
            e.accept_retry = false;
            accept_run(&e);
        }
        for (i = 0; i < SERVED; i++)
            if (e.s[i].fd >= 0 && e.s[i].retry) {
                e.s[i].retry = false;
                served_run(&e, &e.s[i]);
            }
        for (i = 0; i < CLIENTS; i++)
            if (e.c[i].retry) {
                e.c[i].retry = false;
                client_run(&e, i);
            }
    }
    /* The server's ends see the clients go. */
    for (;;) {
        bool open = false;
        for (i = 0; i < SERVED; i++)
            open |= e.s[i].fd >= 0;
        if (!open)
            break;
        int n = mio_poll_wait(e.p, ev, 64, 1 * MS), k;
        for (k = 0; k < (n > 0 ? n : 0); k++)
            if (ev[k].token >= T_SERVED && e.s[ev[k].token - T_SERVED].fd >= 0)
                served_run(&e, &e.s[ev[k].token - T_SERVED]);
        for (i = 0; i < SERVED; i++)
            if (e.s[i].fd >= 0 && e.s[i].retry) {
                e.s[i].retry = false;
                served_run(&e, &e.s[i]);
            }
    }
    drop_fd(e.p, &e.listener);
    mio_poll_free(e.p);
    fds_check(start, "at the end");
    fprintf(stderr, "echo_workload: %u registrations refused, %u restarts, %u transfers and "
                    "%u accepts failed, %u waits failed\n",
            e.reg_refused, e.restarts, e.io_failed, e.accept_failed, e.waits_failed);
}

/* ---- (b') the same through pipes: write, writev, read, readv ---- */

enum { PIPES = 4, PIPE_BYTES = 256 * 1024 };

struct stream {
    mio_fd r, w;
    size_t sent, got;
    bool retry;
};

/* Writes what the pipe takes, reads what it has; false when done. */
static bool stream_run(struct stream *st, int i, unsigned *failed)
{
    unsigned char buf[8192];
    bool more = true;

    while (more) {
        ssize_t n;
        more = false;
        if (st->sent < PIPE_BYTES) {
            size_t want = PIPE_BYTES - st->sent, k;
            if (want > sizeof buf)
                want = sizeof buf;
            for (k = 0; k < want; k++)
                buf[k] = pattern(i, st->sent + k);
            if (i % 2 == 0) {
                n = mio_write(st->w, buf, want);
            } else {
                size_t q = want / 4;
                mio_iovec iov[3] = { { buf, q }, { buf + q, q }, { buf + 2 * q, want - 2 * q } };
                n = mio_writev(st->w, iov, 3);
            }
            if (n > 0) {
                CHECK((size_t)n <= want);
                st->sent += (size_t)n;
                more = true;
            } else if (n != MIO_EAGAIN) {
                /* (ENOBUFS: the shim's default for every write) */
                CHECK(n == MIO_ENOMEM || n == MIO_ENOBUFS || named(n));
                (*failed)++;
                st->retry = true;
            }
        }
        if (i % 2 == 0) {
            n = mio_read(st->r, buf, sizeof buf);
        } else {
            mio_iovec iov[2] = { { buf, 3000 }, { buf + 3000, sizeof buf - 3000 } };
            n = mio_readv(st->r, iov, 2);
        }
        if (n > 0) {
            size_t k;
            if (st->got + (size_t)n > st->sent)
                FAIL("pipe %d: %zu bytes read, %zu written", i, st->got + (size_t)n, st->sent);
            for (k = 0; k < (size_t)n; k++)
                if (buf[k] != pattern(i, st->got + k))
                    FAIL("pipe %d: byte %zu read wrong (%zu written, %zd read, at %zu: %u not %u)", i, st->got + k, st->sent, n, k, buf[k], pattern(i, st->got + k));
            st->got += (size_t)n;
            more = true;
        } else if (n != MIO_EAGAIN) {
            CHECK(n == MIO_ENOMEM || named(n));
            (*failed)++;
            st->retry = true;
        }
    }
    return st->got < PIPE_BYTES;
}

CHILD_CASE(pipe_workload)
{
    static struct stream st[PIPES];
    struct fds_at_start start = fds_start();
    unsigned refused = 0, failed = 0, waits_failed = 0;
    mio_event ev[16];
    mio_poll *p;
    int i, left = PIPES;

    test_watchdog(8);
    p = poll_despite(&refused);
    for (i = 0; i < PIPES; i++) {
        mio_fd fds[2];
        int err;
        while ((err = mio_pipe(fds)) < 0) {
            CHECK_TRANSIENT(err);
            refused++;
        }
        st[i].r = fds[0];
        st[i].w = fds[1];
        register_despite(p, st[i].r, 10 + (mio_token)i, MIO_READABLE, &refused);
        register_despite(p, st[i].w, 20 + (mio_token)i, MIO_WRITABLE, &refused);
        st[i].retry = true;
    }
    while (left > 0) {
        bool retrying = false;
        int n, k;
        for (i = 0; i < PIPES; i++)
            retrying |= st[i].retry;
        n = wait_despite(p, ev, 16, retrying ? 1 * MS : eagain_named() ? 50 * MS : 1000 * MS,
                         &waits_failed);
        if (n == 0 && !retrying && !eagain_named())
            FAIL("nothing reported for a second with bytes left: an event was lost");
        for (i = 0; i < PIPES && n == 0 && !retrying; i++)
            st[i].retry = true;
        for (k = 0; k < n; k++)
            st[ev[k].token % 10].retry = true;
        for (i = 0, left = 0; i < PIPES; i++) {
            if (st[i].retry) {
                st[i].retry = false;
                (void)stream_run(&st[i], i, &failed);
            }
            left += st[i].got < PIPE_BYTES;
        }
    }
    for (i = 0; i < PIPES; i++) {
        drop_fd(p, &st[i].r);
        drop_fd(p, &st[i].w);
    }
    mio_poll_free(p);
    fds_check(start, "at the end");
    fprintf(stderr, "pipe_workload: %u creations refused, %u transfers and %u waits failed\n",
            refused, failed, waits_failed);
}

/* ---- (c) datagram batches ---- */

/* Entries: every fourth is cut into 2 to 4 segments (by the OS where it
 * offers the offload, else by the library, message by message); each
 * datagram starts with its entry's number and its segment's. */
enum { ENTRIES = 2000, BATCH = 32, WINDOW = 12, SEG = 120, DGRAM_MAX = 4 * SEG };

static size_t segments_of(uint32_t seq)
{
    return seq % 4 == 0 ? 2 + seq % 3 : 1;
}

static size_t entry_len(uint32_t seq)
{
    return segments_of(seq) > 1 ? (segments_of(seq) - 1) * SEG + 60 : 8 + seq * 37 % 400;
}

static unsigned char entry_byte(uint32_t seq, size_t k)
{
    return (unsigned char)(seq * 7 + k);
}

static void entry_fill(unsigned char *buf, uint32_t seq)
{
    size_t k, len = entry_len(seq);
    for (k = 0; k < len; k++)
        buf[k] = entry_byte(seq, k);
    for (k = 0; k < segments_of(seq); k++) {
        uint16_t seg = (uint16_t)k;
        memcpy(buf + k * SEG, &seq, 4);
        memcpy(buf + k * SEG + 4, &seg, 2);
    }
}

/* A UDP socket on loopback, despite refusals. */
static mio_fd udp_despite(mio_addr *addr)
{
    mio_fd fd;
    int err;
    OK(mio_addr_parse("127.0.0.1:0", addr));
    while ((err = mio_udp_bind(addr, &fd)) < 0)
        CHECK_TRANSIENT(err);
    OK(mio_local_addr(fd, addr));
    return fd;
}

CHILD_CASE(batch_workload)
{
    static unsigned char out[ENTRIES][DGRAM_MAX], in[BATCH][DGRAM_MAX];
    static uint8_t came[ENTRIES];           /* segments arrived, one bit each */
    struct fds_at_start start = fds_start();
    mio_datagram d[BATCH];                  /* d[0..pending): sent from next on */
    mio_addr to, from;
    mio_event ev[8];
    uint32_t next = 0, complete = 0, filled = 0;
    size_t pending = 0;
    unsigned refused = 0, send_failed = 0, recv_failed = 0, waits_failed = 0, partial = 0;
    unsigned in_part = 0;
    bool send_retry = false, recv_retry = false;
    mio_poll *p;
    mio_fd a, b;

    test_watchdog(8);
    p = poll_despite(&refused);
    a = udp_despite(&from);
    b = udp_despite(&to);
    register_despite(p, a, 1, MIO_WRITABLE, &refused);
    register_despite(p, b, 2, MIO_READABLE, &refused);
    while (complete < ENTRIES) {
        bool writable = send_retry, readable = recv_retry;
        int n, k;

        n = wait_despite(p, ev, 8,
                         send_retry || recv_retry ? 1 * MS : eagain_named() ? 50 * MS : 1000 * MS,
                         &waits_failed);
        for (k = 0; k < n; k++) {
            writable |= ev[k].token == 1;
            readable |= ev[k].token == 2;
        }
        if (n == 0 && !send_retry && !recv_retry && eagain_named())
            writable = readable = true;
        else if (n == 0 && !send_retry && !recv_retry)
            FAIL("nothing reported for a second: %u of %d entries sent, %u arrived", next,
                 ENTRIES, complete);
        send_retry = recv_retry = false;
        /* Sends what the window lets, in batches, until refused.  Entries not
         * counted stay as the call left them (one sent in part is moved past
         * what went) and go again from there. */
        while (writable && next < ENTRIES) {
            ssize_t r;
            size_t i;
            while (pending < BATCH && filled < ENTRIES && filled - complete < WINDOW) {
                mio_datagram *dg = &d[pending++];
                memset(dg, 0, sizeof *dg);
                entry_fill(out[filled], filled);
                dg->buf = out[filled];
                dg->len = entry_len(filled);
                dg->peer = to;
                dg->segment_size = segments_of(filled) > 1 ? SEG : 0;
                filled++;
            }
            if (pending == 0)
                break;          /* the window is full */
            r = mio_udp_send_batch(a, d, pending);
            if (r == MIO_EAGAIN)
                break;
            if (r < 0) {
                /* EIO: refused again once sent without the offload. */
                CHECK(r == MIO_ENOBUFS || r == MIO_ENOMEM || r == -EIO || named(r));
                send_failed++;
                send_retry = true;
                break;
            }
            CHECK((size_t)r <= pending);
            partial += (size_t)r < pending;
            next += (uint32_t)r;
            pending -= (size_t)r;
            memmove(d, d + r, pending * sizeof d[0]);
            for (i = 0; i < pending; i++)
                in_part += d[i].buf != out[next + i];
            if (pending > 0 && r == 0)
                break;
        }
        while (readable) {
            ssize_t r, i;
            {
                static mio_datagram rd[BATCH];
                for (i = 0; i < BATCH; i++) {
                    memset(&rd[i], 0, sizeof rd[i]);
                    rd[i].buf = in[i];
                    rd[i].size = sizeof in[i];
                }
                r = mio_udp_recv_batch(b, rd, BATCH);
                if (r == MIO_EAGAIN)
                    break;
                if (r < 0) {
                    CHECK(r == MIO_ENOMEM || named(r));
                    recv_failed++;
                    recv_retry = true;
                    break;
                }
                CHECK(r > 0 && r <= BATCH);
                for (i = 0; i < r; i++) {
                    uint32_t seq;
                    uint16_t seg;
                    size_t at, len, k2;
                    CHECK(rd[i].len >= 6);
                    memcpy(&seq, in[i], 4);
                    memcpy(&seg, in[i] + 4, 2);
                    CHECK(seq < ENTRIES && seg < segments_of(seq));
                    /* Only an entry counted as sent, or the first not
                     * counted, moved past segments that went. */
                    if (!(seq < next || (seq == next && pending > 0 && d[0].buf != out[seq])))
                        FAIL("entry %u (segment %u) arrived, but no send said it went "
                             "(%u counted)", seq, seg, next);
                    if (came[seq] & (1u << seg))
                        FAIL("entry %u segment %u arrived twice", seq, seg);
                    came[seq] |= (uint8_t)(1u << seg);
                    at = (size_t)seg * SEG;
                    len = segments_of(seq) > 1 ? (seg + 1u < segments_of(seq) ? SEG : 60)
                                               : entry_len(seq);
                    CHECK_EQ(rd[i].len, len);
                    CHECK_EQ(rd[i].flags, 0);
                    for (k2 = 6; k2 < len; k2++)
                        if (in[i][k2] != entry_byte(seq, at + k2))
                            FAIL("entry %u segment %u: byte %zu wrong", seq, seg, k2);
                    if (came[seq] == (1u << segments_of(seq)) - 1)
                        complete++;
                }
            }
            /* The window opened: the sender goes on without an edge. */
            send_retry |= next < ENTRIES;
        }
    }
    CHECK_EQ(next, ENTRIES);
    drop_fd(p, &a);
    drop_fd(p, &b);
    mio_poll_free(p);
    fds_check(start, "at the end");
    fprintf(stderr, "batch_workload: %u refused, %u sends and %u receives failed, %u batches "
                    "went in part (%u with an entry in part), %u waits failed\n",
            refused, send_failed, recv_failed, partial, in_part, waits_failed);
}

/* ---- (d) close interrupted after closing ---- */

static atomic_int closing_done;

/* Gets descriptors while the other thread closes: one closed twice would
 * often be one of these, just given the number. */
static void *holding(void *arg)
{
    (void)arg;
    while (!atomic_load(&closing_done)) {
        int fds[2], k, j;
        if (pipe2(fds, O_CLOEXEC) < 0) {
            CHECK(errno == EMFILE || errno == ENFILE || named(-errno));
            continue;
        }
        for (k = 0; k < 20; k++)
            for (j = 0; j < 2; j++)
                if (fcntl(fds[j], F_GETFD) < 0)
                    FAIL("descriptor %d closed under its owner: closed twice", fds[j]);
        for (j = 0; j < 2; j++)
            CHECK(close(fds[j]) == 0 || errno == EINTR || named(-errno));
    }
    return NULL;
}

/* Whether a call making something succeeded; one refused as injected is
 * counted (the workload then tries again). */
static bool made(int err, unsigned *refused)
{
    if (err == 0)
        return true;
    CHECK_TRANSIENT(err);
    (*refused)++;
    return false;
}

/* A connection to the listener at addr, both ends. */
static void connect_despite(mio_fd listener, const mio_addr *addr, mio_fd *client,
                            mio_fd *served, unsigned *refused)
{
    int64_t until = test_now_ns() + 2000 * (int64_t)MS;
    int err;

    while (!made(mio_tcp_connect(addr, client), refused))
        ;
    while ((err = mio_tcp_accept(listener, served, NULL)) < 0) {
        /* Refused as injected, the connection stays queued. */
        if (err != MIO_EAGAIN)
            CHECK_TRANSIENT(err);
        CHECK(test_now_ns() < until);
        sched_yield();
    }
}

CHILD_CASE(close_workload)
{
    struct fds_at_start start = fds_start();
    unsigned refused = 0, round;
    mio_addr addr;
    mio_fd listener;
    mio_poll *p;
    pthread_t t;

    test_watchdog(8);
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    while (!made(mio_tcp_listen(&addr, 16, &listener), &refused))
        ;
    OK(mio_local_addr(listener, &addr));
    fds_moving = true;
    CHECK(pthread_create(&t, NULL, holding, NULL) == 0);
    for (round = 0; round < 100; round++) {
        mio_fd fd[7];           /* a socket pair, a pipe, TCP both ends, UDP */
        bool registered[7] = { false };
        mio_addr any;
        mio_waker *w;
        int i;

        p = poll_despite(&refused);
        OK(mio_waker_new(p, 9, &w));
        while (!made(mio_socketpair(fd), &refused))
            ;
        while (!made(mio_pipe(fd + 2), &refused))
            ;
        connect_despite(listener, &addr, &fd[4], &fd[5], &refused);
        OK(mio_addr_parse("127.0.0.1:0", &any));
        while (!made(mio_udp_bind(&any, &fd[6]), &refused))
            ;
        for (i = 0; i < 7; i += 1 + (i == 0))
            registered[i] = made(mio_register(p, fd[i], (mio_token)i + 1,
                                              MIO_READABLE | (i == 5 ? MIO_WRITABLE : 0)),
                                 &refused);
        /* Some deregistered first, as asked; some left to mio_close. */
        for (i = 0; i < 7; i++)
            if (registered[i] && (round + (unsigned)i) % 2 == 0)
                OK(mio_deregister(p, fd[i]));
        for (i = 0; i < 7; i++)
            CLOSE_OK(fd[i]);
        mio_waker_free(w);
        mio_poll_free(p);
    }
    atomic_store(&closing_done, 1);
    CHECK(pthread_join(t, NULL) == 0);
    fds_moving = false;
    CLOSE_OK(listener);
    fds_check(start, "at the end");
    fprintf(stderr, "close_workload: %u rounds, %u creations and registrations refused\n",
            round, refused);
}


/* ---- (e) the drain rule through cut transfers ---- */

enum { RULE_BYTES = 48 * 1024, RULE_CHUNK = 16 * 1024 };

struct rule_counts {
    unsigned refused, failed, waits_failed;
    size_t waits;
};

/* One stream, r to w, moved by mio.h's drain rule: after an event, read
 * (write) until a transfer comes up short, then wait.  Under the test's own
 * settings every transfer is cut, so every step waits on the edge a cut
 * transfer is owed.  A transfer that failed as injected (no event will say
 * to try again) is retried after a short wait, as the example servers do. */
static void by_the_rule(mio_poll *p, mio_fd r, mio_fd w, const char *what,
                        struct rule_counts *c)
{
    static unsigned char out[RULE_BYTES], in[RULE_BYTES];
    size_t sent = 0, got = 0, i, waits = 0;
    bool retry_r = false, retry_w = false;
    mio_event ev[4];

    for (i = 0; i < RULE_BYTES; i++)
        out[i] = (unsigned char)(i * 7 + i / 251);
    register_despite(p, r, 1, MIO_READABLE, &c->refused);
    register_despite(p, w, 2, MIO_WRITABLE, &c->refused);
    while (got < RULE_BYTES) {
        bool retrying = retry_r || retry_w, do_r = retry_r, do_w = retry_w;
        int n = wait_despite(p, ev, 4,
                             retrying ? 1 * MS : eagain_named() ? 50 * MS : 2000 * MS,
                             &c->waits_failed), k;
        if (n == 0 && !retrying && !eagain_named())
            FAIL("%s: no event in 2 s after a short transfer (%zu of %d bytes written, "
                 "%zu read, %zu waits)", what, sent, RULE_BYTES, got, waits);
        waits++;
        for (k = 0; k < n; k++) {
            do_r |= ev[k].token == 1;
            do_w |= ev[k].token == 2;
        }
        if (n == 0 && !retrying)            /* a made-up EAGAIN: try both */
            do_r = do_w = true;
        retry_r = retry_w = false;
        if (do_w) {
            ssize_t m;
            size_t want;
            do {
                want = RULE_BYTES - sent < RULE_CHUNK ? RULE_BYTES - sent : RULE_CHUNK;
                m = want > 0 ? mio_write(w, out + sent, want) : 0;
                sent += m > 0 ? (size_t)m : 0;
            } while (want > 0 && m == (ssize_t)want);
            if (m < 0 && m != MIO_EAGAIN) {
                CHECK_TRANSIENT(m);
                c->failed++;
                retry_w = true;
            }
        }
        if (do_r) {
            ssize_t m;
            size_t want;
            do {
                want = RULE_BYTES - got;
                m = mio_read(r, in + got, want);
                CHECK(m != 0);              /* the writer is still there */
                got += m > 0 ? (size_t)m : 0;
            } while (got < RULE_BYTES && m == (ssize_t)want);
            if (m < 0 && m != MIO_EAGAIN) {
                CHECK_TRANSIENT(m);
                c->failed++;
                retry_r = true;
            }
        }
    }
    CHECK(memcmp(in, out, RULE_BYTES) == 0);
    OK(mio_deregister(p, r));
    OK(mio_deregister(p, w));
    c->waits += waits;
}

CHILD_CASE(drain_rule_workload)
{
    struct fds_at_start start = fds_start();
    struct rule_counts c = { 0, 0, 0, 0 };
    mio_fd listener, pair[2];
    mio_addr addr;
    mio_poll *p;
    int k;

    test_watchdog(20);
    p = poll_despite(&c.refused);
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    while (!made(mio_tcp_listen(&addr, 4, &listener), &c.refused))
        ;
    OK(mio_local_addr(listener, &addr));
    connect_despite(listener, &addr, &pair[1], &pair[0], &c.refused);
    CLOSE_OK(listener);
    by_the_rule(p, pair[0], pair[1], "TCP", &c);
    CLOSE_OK(pair[0]);
    CLOSE_OK(pair[1]);
    /* io_uring's polls are the kernel's: there a cut transfer on these has
     * no edge to be given (tests/fault/fault.c). */
    for (k = 0; k < 2 && strcmp(test_backend, "uring") != 0; k++) {
        while (!made(k == 0 ? mio_socketpair(pair) : mio_pipe(pair), &c.refused))
            ;
        by_the_rule(p, pair[0], pair[1], k == 0 ? "Unix socket" : "pipe", &c);
        CLOSE_OK(pair[0]);
        CLOSE_OK(pair[1]);
    }
    mio_poll_free(p);
    fds_check(start, "at the end");
    fprintf(stderr, "drain_rule_workload: %zu waits; %u creations and registrations refused, "
            "%u transfers and %u waits failed\n", c.waits, c.refused, c.failed, c.waits_failed);
}

#endif

#ifndef _WIN32
/* ---- running them under the shim ---- */

struct plan {
    const char *workload;
    const char *calls;          /* MIO_FAULT_CALLS */
    const char *rate;
    bool all_fds;               /* MIO_FAULT_FDS=all: pipes too */
    const char *must[4];        /* calls that must see faults over the seeds */
};

#ifdef MIO_FAULT_SHIM
static const char *const seeds[] = { "1", "2", "3", "4", "5" };

/* A setting of the test's own environment, which takes the plan's place:
 * MIO_FAULT_SEED (then the one seed), MIO_FAULT_RATE, MIO_FAULT_CALLS and
 * MIO_FAULT_FDS.  A MIO_FAULT_SCHEDULE there goes to every run as it is. */
static const char *given(const char *name, const char *planned)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : planned;
}
#endif

/* Runs the plan's workload once per seed and checks each run from outside. */
static void run_plan(const struct plan *pl)
{
#ifdef MIO_FAULT_SHIM
    unsigned long must_faults[4] = { 0, 0, 0, 0 };
    const char *self = child_self_path();
    char preload[4200], report[512], seed[32], err[16384], line[512], name[64];
    char calls_set[1024], rate[64], fds[16], one_seed[32];
    size_t i, m, nseeds = sizeof seeds / sizeof seeds[0];
    bool own_calls;

    TEST_NOT_ON_LIBKQUEUE("faults injected into its own system calls");
    if (test_on_valgrind())
        SKIP("valgrind does not follow the child the faults are injected into, and its "
             "own preload would be replaced by the shim's");
    CHECK(self != NULL);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MIO_FAULT_SHIM);
    /* Read before the runs' own settings replace them. */
    snprintf(calls_set, sizeof calls_set, "%s", given("MIO_FAULT_CALLS", pl->calls));
    snprintf(rate, sizeof rate, "%s", given("MIO_FAULT_RATE", pl->rate));
    snprintf(fds, sizeof fds, "%s", given("MIO_FAULT_FDS", pl->all_fds ? "all" : "sockets"));
    snprintf(one_seed, sizeof one_seed, "%s", given("MIO_FAULT_SEED", ""));
    own_calls = strcmp(calls_set, pl->calls) == 0;
    if (one_seed[0] != '\0')
        nseeds = 1;
    for (i = 0; i < nseeds; i++) {
        char *argv[] = { (char *)self, (char *)pl->workload, (char *)test_backend, NULL };
        unsigned long count, faults, total = 0, refused = 0;
        char calls[1024] = "";
        struct child c;
        FILE *f;
        int status;

        snprintf(report, sizeof report, "%s/report-%zu", test_tmp_dir(), i);
        snprintf(seed, sizeof seed, "%s", one_seed[0] != '\0' ? one_seed : seeds[i]);
        CHECK(setenv("MIO_FAULT_CALLS", calls_set, 1) == 0);
        CHECK(setenv("MIO_FAULT_RATE", rate, 1) == 0);
        CHECK(setenv("MIO_FAULT_SEED", seed, 1) == 0);
        CHECK(setenv("MIO_FAULT_REPORT", report, 1) == 0);
        CHECK(setenv("MIO_FAULT_FDS", fds, 1) == 0);
        /* A sanitizer's runtime may be a shared library that wants to be
         * first; leaks are the workload's to report. */
        CHECK(setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1) == 0);
        child_start(&c, argv, preload, CHILD_STDERR);
        child_read_all(&c, err, sizeof err);
        status = child_wait(&c);
        if (status == 77)
            SKIP("%s", err);
        if (status == 128 + 14)
            FAIL("%s hung under seed %s (rate %s); its stderr:\n%s", pl->workload, seed,
                 rate, err);
        if (status != 0)
            FAIL("%s exited %d under seed %s (rate %s); its stderr:\n%s", pl->workload, status,
                 seed, rate, err);
        if ((f = fopen(report, "r")) == NULL)
            FAIL("no report from %s under seed %s", pl->workload, seed);
        while (fgets(line, sizeof line, f) != NULL) {
            char target[400];
            if (sscanf(line, "call %63s %lu faults %lu", name, &count, &faults) == 3) {
                size_t used = strlen(calls);
                if (faults > 0)
                    snprintf(calls + used, sizeof calls - used, " %s %lu/%lu", name, faults,
                             count);
                total += faults;
                for (m = 0; m < 4 && pl->must[m] != NULL; m++)
                    if (strcmp(name, pl->must[m]) == 0)
                        must_faults[m] += faults;
            } else if (sscanf(line, "close EBADF %lu", &refused) == 1) {
                FAIL("seed %s: %lu closes of a descriptor not open (closed twice)", seed,
                     refused);
            } else if (sscanf(line, "fd %*d %399s", target) == 1 &&
                       strcmp(target, "/dev/null") != 0) {
                FAIL("seed %s: a descriptor left open at exit: %s", seed, line);
            }
        }
        fclose(f);
        printf("%s, seed %s, rate %s: %lu faults injected (of calls:%s)\n  %s", pl->workload,
               seed, rate, total, calls, err);
        if (total == 0)
            FAIL("seed %s: no fault was injected: the run tested nothing", seed);
    }
    for (m = 0; m < 4 && pl->must[m] != NULL && own_calls && nseeds > 1; m++)
        if (must_faults[m] == 0)
            FAIL("no %s failed under any seed", pl->must[m]);
#else
    (void)pl;
    SKIP("no system-call failure injection here (Linux with glibc only)");
#endif
}

/* The uring backend's waits and registrations are io_uring_enter, which
 * liburing makes without the C library: out of the shim's reach. */
static void not_on_uring(void)
{
    if (strcmp(test_backend, "uring") == 0)
        SKIP("io_uring_enter is made by liburing without the C library, out of the "
             "shim's reach: the waits and registrations cannot be failed");
}

POSIX_TEST(wakers_wake_through_failed_waits)
{
    static const struct plan pl = {
        "wake_workload",
        "epoll_wait,epoll_pwait,epoll_pwait2,poll,ppoll,eventfd,pipe2,epoll_create1,epoll_ctl",
        "0.2", false, { "eventfd", NULL },
    };
    not_on_uring();
    run_plan(&pl);
}

POSIX_TEST(echo_loses_no_byte)
{
    static const struct plan pl = {
        "echo_workload",
        "socket,connect,accept4:EMFILE/ENFILE/ECONNABORTED/ENOMEM,epoll_ctl,read,readv,"
        "recv,recvmsg,write,writev,send,sendmsg,close,epoll_wait,epoll_pwait2,ppoll",
        "0.15", false, { "accept4", "send", "read", NULL },
    };
    run_plan(&pl);
}

POSIX_TEST(pipes_lose_no_byte)
{
    static const struct plan pl = {
        "pipe_workload",
        "read,readv,write:EINTR/ENOMEM/short,writev:EINTR/ENOMEM/short,pipe2,epoll_ctl,"
        "epoll_wait,epoll_pwait2,ppoll",
        "0.2", true, { "write", "writev", "read", "readv" },
    };
    run_plan(&pl);
}

POSIX_TEST(batches_count_what_was_sent)
{
    static const struct plan pl = {
        "batch_workload",
        "sendmmsg:EINTR/ENOBUFS/ENOMEM/EIO,recvmmsg:EINTR/ENOMEM,socket,epoll_ctl",
        "0.2", false, { "sendmmsg", "recvmmsg", NULL },
    };
    run_plan(&pl);
}

POSIX_TEST(interrupted_close_closes_once)
{
    static const struct plan pl = { "close_workload", "close", "0.5", true, { "close", NULL } };
#ifdef TEST_UNDER_TSAN
    /* Its other thread opens and closes descriptors whose numbers this one
     * reuses at once; TSan's descriptor tracking takes that for a race and
     * its report then fails an internal check.  ASan and plain run it. */
    SKIP("TSan's descriptor tracking cannot follow numbers reused across threads");
#endif
    run_plan(&pl);
}

/* mio.h's drain rule holds through transfers the shim cuts short: each cut
 * one is followed by the edge the kernel would give for what is left. */
POSIX_TEST(cut_transfers_keep_the_drain_rule)
{
    static const struct plan pl = {
        "drain_rule_workload",
        "read:short,readv:short,recv:short,write:short,writev:short,send:short",
        "1", true, { "read", "send", NULL },
    };
    run_plan(&pl);
}

#endif
