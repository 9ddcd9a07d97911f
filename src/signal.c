/* Signal sources: signals (console control events on Windows) made
 * pollable.  The OS layer installs one process-wide handler per watched
 * signal (sys/signal_posix.c, sys/signal_win.c); this file keeps who
 * watches what and does what the handler does.
 *
 * The handler's path (mio__signal_deliver) must be async-signal-safe on
 * POSIX: a signal may interrupt any code, this library's included, on any
 * thread, in the middle of holding any lock.  So it takes no lock and
 * allocates nothing.  It walks the signal's list of watchers (one node per
 * source and signal, linked with atomic pointers), adds one to each node's
 * count and wakes each source: an atomic exchange of the source's `pending`
 * flag, and only for the delivery that sets it, one write() to the source's
 * own wake-up descriptor (an eventfd, or a pipe), which its poll watches
 * under the caller's token.  A storm of signals therefore costs one system
 * call per read the poller makes, not one per signal, and the poller is
 * woken once per read: no spin.
 *
 * Why not the user-space readiness of registration.c (mio_set_readiness):
 * its push is lock-free, but a push that finds the poller asleep calls the
 * backend's notify, which on kqueue is a kevent() call; libkqueue (the
 * kqueue backend on Linux) takes a mutex inside kevent(), which a handler
 * must never do.  A write() is async-signal-safe everywhere.  Windows has no
 * signal handlers (its console handler is an ordinary thread), and its
 * backend polls only sockets, so there the wake-up is a registration.
 *
 * No report is lost.  The reader drains the wake-up descriptor, then clears
 * `pending`, then takes each count with an exchange.  A delivery whose
 * exchange of `pending` came before the clear counted before the reader took
 * the counts; one whose exchange came after it writes again, after the
 * drain, and the next wait reports it.  (The reverse order, clear then
 * drain, could drain a write made after the clear and leave `pending` set
 * with nothing to report it: every later delivery would then be silent.)
 *
 * Kernel coalescing aside (a standard signal sent twice before its handler
 * runs runs it once), counts are handler runs: never more than were sent.
 *
 * Freeing a source while handlers may run.  The list is changed under
 * `lock` by the control calls only; a handler may be walking it at any
 * moment, on any thread.  A handler announces itself in one of two counters,
 * picked by the parity of `epoch`, for the time of its walk.  After
 * unlinking a source's nodes, free flips the epoch and waits for the old
 * parity's counter to drain, twice: a handler that could still reach an
 * unlinked node loaded the epoch before the first flip (its walk began
 * before the unlink), and after two flips no handler is counted under a
 * parity older than both waits.  Handlers that start meanwhile count under
 * the new parity, so the wait is bounded even during a storm.  (The
 * grace-period scheme of user-space RCU, with a handler's walk as the read
 * side.) */
#include "signals.h"
#include "poll_hooks.h"
#include "queue.h"     /* mio__yield */

#ifdef _WIN32
#include <windows.h>
#else
#include "sys/wakefd.h"
#include <signal.h>
#include <unistd.h>
#endif

#include <stdlib.h>
#include <string.h>

#define MAX_SIGNALS 64      /* per source */

struct node {
    _Atomic(struct node *) next;    /* the signal's next watcher */
    struct mio_signal *owner;
    int signo;
    atomic_uint count;              /* deliveries since the last read */
};

struct mio_signal {
    mio_poll *poll;
    mio_token token;
    int64_t pid;                    /* > 0: a child's SIGCHLD, woken on its exit only */
    atomic_int pending;             /* a wake-up was sent and not read since */
#ifdef _WIN32
    mio_registration *reg;
    mio_set_readiness *set;
#else
    struct mio_wakefd wake;
#endif
    size_t n;
    struct node nodes[];            /* one per signal, by number */
};

static mio_mutex lock = MIO_MUTEX_INIT;         /* the lists and the counts below */
static _Atomic(struct node *) watchers[MIO__NSIG];
static unsigned sources[MIO__NSIG];             /* nodes on each list */
static atomic_uint epoch;
static atomic_uint walking[2];                  /* handlers in their walk, by parity */

/* ---- the handler's side ---- */

static void wake(struct mio_signal *s)
{
    if (atomic_exchange(&s->pending, 1) != 0)
        return;                     /* a wake-up is on its way: it covers this */
#ifdef _WIN32
    (void)mio_set_readiness_set(s->set, MIO_READABLE);
#else
    (void)mio__wakefd_signal(s->wake.wfd);
#endif
}

bool mio__signal_deliver(int sig)
{
    unsigned parity;
    struct node *n;
    bool any = false;

    if (sig <= 0 || sig >= MIO__NSIG)
        return false;
    parity = atomic_load(&epoch) & 1u;
    atomic_fetch_add(&walking[parity], 1);
    for (n = atomic_load(&watchers[sig]); n != NULL; n = atomic_load(&n->next)) {
        struct mio_signal *s = n->owner;
        any = true;
#ifndef _WIN32
        if (s->pid > 0 && !mio__os_child_exited(s->pid))
            continue;               /* another child's SIGCHLD */
#endif
        atomic_fetch_add(&n->count, 1);
        wake(s);
    }
    atomic_fetch_sub(&walking[parity], 1);
    return any;
}

/* ---- the control side ---- */

/* Returns once no handler can still reach a node unlinked before the call.
 * Under lock. */
static void synchronize(void)
{
    int round;

    for (round = 0; round < 2; round++) {
        unsigned old = atomic_fetch_add(&epoch, 1) & 1u;
        while (atomic_load(&walking[old]) != 0)
            mio__yield();
    }
}

static void unlink_node(struct node *n)
{
    _Atomic(struct node *) *at = &watchers[n->signo];
    struct node *cur;

    while ((cur = atomic_load_explicit(at, memory_order_relaxed)) != NULL) {
        if (cur == n) {
            atomic_store(at, atomic_load_explicit(&n->next, memory_order_relaxed));
            return;
        }
        at = &cur->next;
    }
}

/* Takes the first `count` nodes of s off their lists; the last watcher of
 * a signal gives its disposition back.  Under lock. */
static void unwatch(struct mio_signal *s, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
        unlink_node(&s->nodes[i]);
        if (--sources[s->nodes[i].signo] == 0)
            mio__os_signal_unwatch(s->nodes[i].signo);
    }
    synchronize();
}

static int wake_open(struct mio_signal *s, mio_poll *p, mio_token token)
{
#ifdef _WIN32
    int err = mio_registration_new(&s->reg, &s->set);
    if (err == 0)
        err = mio_registration_register(p, s->reg, token, MIO_READABLE);
    if (err < 0) {
        mio_registration_free(s->reg);
        mio_set_readiness_free(s->set);
        s->reg = NULL;
        s->set = NULL;
    }
    return err;
#else
    int err = mio__wakefd_open(&s->wake);
    if (err < 0)
        return err;
    err = mio_register(p, s->wake.rfd, token, MIO_READABLE);
    if (err < 0)
        mio__wakefd_close(&s->wake);
    return err;
#endif
}

static void wake_close(struct mio_signal *s)
{
#ifdef _WIN32
    mio_registration_free(s->reg);
    mio_set_readiness_free(s->set);
#else
    (void)mio_deregister(s->poll, s->wake.rfd);
    mio__wakefd_close(&s->wake);
#endif
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int source_new(mio_poll *p, mio_token token, const int *signals, size_t n, int64_t pid,
                      mio_signal **out)
{
    int sorted[MAX_SIGNALS];
    struct mio_signal *s;
    size_t i, k = 0;
    int err;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || signals == NULL || n == 0 || n > MAX_SIGNALS ||
        token == MIO_TOKEN_RESERVED)
        return MIO_EINVAL;
    memcpy(sorted, signals, n * sizeof *signals);
    qsort(sorted, n, sizeof sorted[0], cmp_int);
    for (i = 0; i < n; i++) {
        if (sorted[i] <= 0 || sorted[i] >= MIO__NSIG ||
            (pid == 0 && mio__os_signal_check(sorted[i]) < 0))
            return MIO_EINVAL;
        if (k == 0 || sorted[k - 1] != sorted[i])
            sorted[k++] = sorted[i];
    }
    s = mio__calloc(1, sizeof *s + k * sizeof s->nodes[0]);
    if (s == NULL)
        return MIO_ENOMEM;
    s->poll = p;
    s->token = token;
    s->pid = pid;
    s->n = k;
    atomic_init(&s->pending, 0);
    for (i = 0; i < k; i++) {
        atomic_init(&s->nodes[i].next, NULL);
        atomic_init(&s->nodes[i].count, 0);
        s->nodes[i].owner = s;
        s->nodes[i].signo = sorted[i];
    }
    err = wake_open(s, p, token);
    if (err < 0) {
        mio__free(s);
        return err;
    }
    mio_mutex_lock(&lock);
    for (i = 0; i < k; i++) {
        struct node *nd = &s->nodes[i];
        /* Linked before the handler goes in: a signal that finds the
         * handler finds this source too, and one that comes before it
         * meets the disposition it replaces.  The other order would let a
         * signal in between be swallowed, reported to no one. */
        atomic_store(&nd->next, atomic_load_explicit(&watchers[nd->signo], memory_order_relaxed));
        atomic_store(&watchers[nd->signo], nd);     /* a handler may see it from here on */
        if (sources[nd->signo] == 0 && (err = mio__os_signal_watch(nd->signo)) < 0) {
            unlink_node(nd);
            break;
        }
        sources[nd->signo]++;
    }
    if (err < 0)
        unwatch(s, i);
    mio_mutex_unlock(&lock);
    if (err < 0) {
        wake_close(s);
        mio__free(s);
        return err;
    }
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: signal source %p, %u signals, token 0x%llx",
              (void *)p, (void *)s, (unsigned)k, (unsigned long long)token);
    *out = s;
    return 0;
}

int mio_signal_new(mio_poll *p, mio_token token, const int *signals, size_t n, mio_signal **out)
{
    return source_new(p, token, signals, n, 0, out);
}

int mio__signal_child(mio_poll *p, mio_token token, int64_t pid, mio_signal **out)
{
#ifdef _WIN32
    (void)p;
    (void)token;
    (void)pid;
    *out = NULL;
    return MIO_ENOSYS;
#else
    static const int chld[1] = { SIGCHLD };
    int err = source_new(p, token, chld, 1, pid, out);

    /* It may have exited before the handler was there to see it. */
    if (err == 0 && mio__os_child_exited(pid))
        wake(*out);
    return err;
#endif
}

int mio_signal_read(mio_signal *s, mio_signal_info *out, size_t cap)
{
    size_t i;
    int got = 0;

    if (s == NULL || out == NULL || cap == 0)
        return MIO_EINVAL;
    /* Drain, then clear, then take the counts: see the top. */
#ifdef _WIN32
    (void)mio_set_readiness_set(s->set, 0);
#else
    mio__wakefd_drain(s->wake.rfd);
    mio__io_eagain(s->wake.rfd, MIO_READABLE);     /* an emulated edge re-arms */
#endif
    atomic_store(&s->pending, 0);
    for (i = 0; i < s->n && (size_t)got < cap; i++) {
        unsigned c;
        if (atomic_load_explicit(&s->nodes[i].count, memory_order_relaxed) == 0)
            continue;
        c = atomic_exchange(&s->nodes[i].count, 0);
        if (c == 0)
            continue;
        out[got].signo = s->nodes[i].signo;
        out[got].count = c;
        got++;
    }
    return got;
}

void mio_signal_free(mio_signal *s)
{
    if (s == NULL)
        return;
    mio_mutex_lock(&lock);
    unwatch(s, s->n);
    mio_mutex_unlock(&lock);
    wake_close(s);
    MIO_TRACE(MIO_LOG_DEBUG, "signal source %p: freed", (void *)s);
    mio__free(s);
}
