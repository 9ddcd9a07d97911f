/* The kqueue backend (macOS, iOS, the BSDs): the default where it exists.
 *
 * Each direction of a descriptor is its own kernel filter: EVFILT_READ for
 * READABLE, EVFILT_WRITE for WRITABLE and, where the OS has it (macOS,
 * OpenBSD, DragonFly), EVFILT_EXCEPT with NOTE_OOB for PRIORITY; elsewhere
 * (FreeBSD, NetBSD, libkqueue) kqueue cannot see out-of-band data and
 * PRIORITY is MIO_ENOSYS.  Edge is EV_CLEAR, level the plain filter, oneshot
 * EV_DISPATCH (see ONESHOT_FLAG).  The token rides in each filter's udata, so one
 * source may come back as two events of a batch, read and write apart.
 *
 * The kernel takes a second EV_ADD of a filter as a modify, so whether a
 * descriptor is registered is the registration records' to say (registry.h);
 * a mutex makes a record's token and interest, which add and mod change from
 * any thread, agree with what wait reads of them.  Changes go in one kevent() call with EV_RECEIPT, one receipt
 * per change.  A reregister deletes the old filters and adds the new ones: the
 * kernel keeps the EV_CLEAR/EV_DISPATCH of a filter it already has, and a new
 * filter reports readiness still present, like EPOLL_CTL_MOD.  If the kernel
 * refuses the new ones, the old ones are put back as they were.
 *
 * notify(), which wakers use too, is EVFILT_USER with NOTE_TRIGGER; where the
 * OS lacks it, a wake descriptor (wakefd.c) read edge-triggered.
 *
 * struct kevent is two to four times a mio_event, so wait reads the kernel's
 * events into a small array on the stack, chunk by chunk until the caller's
 * array is full or nothing more is ready, and decodes each straight into the
 * caller's array: no per-poll buffer, no allocation.  wait takes the table's
 * mutex only for a chunk holding a oneshot event (disarm_siblings).
 *
 * On Linux the backend builds against libkqueue, to run the tests there.  The
 * tests allow for libkqueue's known differences themselves, so that they run
 * what a BSD runs; the one thing done for libkqueue here (LIBKQUEUE, in
 * close_kqueue) only adds a wait a BSD has no need of. */
#include "../registry.h"
#include "wakefd.h"

#include <fcntl.h>
#include <poll.h>
#ifdef __NetBSD__
#include <sys/param.h>      /* __NetBSD_Version__ */
#endif
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#if defined(EVFILT_EXCEPT) && defined(NOTE_OOB)
#define HAVE_EXCEPT 1
#endif
/* -DMIO_KQUEUE_PIPE_WAKE forces the wake-descriptor path, to test it where
 * EVFILT_USER exists. */
#if defined(EVFILT_USER) && !defined(MIO_KQUEUE_PIPE_WAKE)
#define USE_EVFILT_USER 1
#endif

/* NetBSD before 10 declares udata as intptr_t. */
#if defined(__NetBSD__) && defined(__NetBSD_Version__) && __NetBSD_Version__ < 1000000000
#define UDATA(token) ((intptr_t)(token))
#else
#define UDATA(token) ((void *)(token))
#endif

/* A oneshot filter is disabled once it fired (EV_DISPATCH), not deleted as
 * with EV_ONESHOT: the kernel keeps the registration, so the EEXIST probe,
 * reregister and deregister find it, whichever direction fired.  Where
 * EV_DISPATCH is missing, a fired filter's ENOENT counts as deleted. */
#ifdef EV_DISPATCH
#define ONESHOT_FLAG EV_DISPATCH
#else
#define ONESHOT_FLAG EV_ONESHOT
#endif

#ifdef LIBKQUEUE
extern void libkqueue_drain_pending_close(void) __attribute__((weak));
#endif

enum {
    MAX_CHANGES = 6,    /* three filters deleted and three added */
    WAIT_CHUNK = 64,    /* kernel events read per kevent() call in wait */
    MAX_WAIT_SEC = 86400 /* longer waits return 0 and poll.c resumes them */
};

struct kqueue_poll {
    mio_poll base;
    int kq;
    mio_mutex lock;             /* records' token, interest, armed: add/mod/del
                                   and wait may race */
#ifndef USE_EVFILT_USER
    struct mio_wakefd wake;     /* notify(), read with the reserved token */
#endif
};

/* The filters that make up an interest. */
static const struct {
    uint32_t interest;
    short filter;
    unsigned fflags;
} filters[] = {
    { MIO_READABLE, EVFILT_READ, 0 },
    { MIO_WRITABLE, EVFILT_WRITE, 0 },
#ifdef HAVE_EXCEPT
    { MIO_PRIORITY, EVFILT_EXCEPT, NOTE_OOB },
#endif
};
#define NFILTERS (sizeof filters / sizeof filters[0])

/* ---- changes and their receipts ---- */

struct changes {
    struct kevent ev[MAX_CHANGES];
    int err[MAX_CHANGES];       /* each change's result: 0 or a MIO_E* code */
    int n;
};

static void change(struct changes *c, uintptr_t ident, short filter, unsigned short flags,
                   unsigned fflags, mio_token token)
{
    struct kevent *k = &c->ev[c->n++];
    memset(k, 0, sizeof *k);
    k->ident = ident;
    k->filter = filter;
    k->flags = flags;
    k->fflags = fflags;
    k->udata = UDATA(token);
}

static unsigned short trigger_flags(uint32_t interest)
{
    unsigned short f = 0;
    if (!(interest & MIO_LEVEL))
        f |= EV_CLEAR;
    if (interest & MIO_ONESHOT)
        f |= ONESHOT_FLAG;
    return f;
}

static void add_filters(struct changes *c, int fd, mio_token token, uint32_t interest)
{
    size_t i;
    for (i = 0; i < NFILTERS; i++)
        if (interest & filters[i].interest)
            change(c, (uintptr_t)fd, filters[i].filter, EV_ADD | trigger_flags(interest),
                   filters[i].fflags, token);
}

static void delete_filters(struct changes *c, int fd, uint32_t interest)
{
    size_t i;
    for (i = 0; i < NFILTERS; i++)
        if (interest & filters[i].interest)
            change(c, (uintptr_t)fd, filters[i].filter, EV_DELETE, 0, 0);
}

/* Applies the changes in order and fills in each one's result.  With
 * EV_RECEIPT every change yields one EV_ERROR entry (data 0 on success); as
 * many entries as changes, so no pending event is taken along. */
static void apply(int kq, struct changes *c)
{
#ifdef EV_RECEIPT
    static const struct timespec zero = { 0, 0 };
    struct kevent out[MAX_CHANGES];
    int i, n;

    for (i = 0; i < c->n; i++) {
        c->ev[i].flags |= EV_RECEIPT;
        c->err[i] = -EIO;       /* unless its receipt says otherwise */
    }
    n = kevent(kq, c->ev, c->n, out, c->n, &zero);
    if (n < 0) {
        int err = mio__err();
        for (i = 0; i < c->n; i++)
            c->err[i] = err;
        return;
    }
    /* Receipts come in changelist order. */
    for (i = 0; i < n && i < c->n; i++) {
        if ((out[i].flags & EV_ERROR) && out[i].ident == c->ev[i].ident &&
            out[i].filter == c->ev[i].filter)
            c->err[i] = -(int)out[i].data;
    }
#else
    /* No receipts: one change per call, whose error comes back as errno. */
    int i;
    for (i = 0; i < c->n; i++)
        c->err[i] = kevent(kq, &c->ev[i], 1, NULL, 0, NULL) < 0 ? mio__err() : 0;
#endif
}

/* ---- registrations ----
 * A record's `armed` is 0 once its oneshot fired (the filters are disabled
 * then), else its directions. */

/* Whether fd's registration r still stands: 0, MIO_ENOENT when the descriptor
 * was closed since (kqueue dropped its filters; the number may have been
 * reused) or MIO_EBADF when it is closed now.  The probe is a modify that
 * restates the registration (same udata and fflags, no EV_ADD, no EV_ENABLE);
 * the kernel re-evaluates the filter, which at worst reports it once more, a
 * spurious event. */
static int check_registered(struct kqueue_poll *p, int fd, const struct mio_fdrec *r)
{
    struct changes c;
    size_t i;
    int k, err = MIO_ENOENT;

    c.n = 0;
    for (i = 0; i < NFILTERS; i++)
        if (r->interest & filters[i].interest)
            change(&c, (uintptr_t)fd, filters[i].filter, trigger_flags(r->interest),
                   filters[i].fflags, r->token);
    apply(p->kq, &c);
    for (k = 0; k < c.n; k++) {
        if (c.err[k] != MIO_ENOENT && c.err[k] != MIO_EBADF)
            return 0;
        if (c.err[k] == MIO_EBADF)
            err = MIO_EBADF;
    }
    return err;
}

/* Takes back the additions c.ev[from..] that succeeded. */
static void undo_adds(struct kqueue_poll *p, int fd, const struct changes *c, int from)
{
    struct changes undo;
    int k;

    undo.n = 0;
    for (k = from; k < c->n; k++)
        if (c->err[k] == 0)
            change(&undo, (uintptr_t)fd, c->ev[k].filter, EV_DELETE, 0, 0);
    if (undo.n > 0)
        apply(p->kq, &undo);
}

/* The result of deleting filters c.ev[0..n) of a registration with the
 * given interest.  ENOENT means the descriptor was closed since (its number
 * perhaps reused), but for a oneshot filter under EV_ONESHOT, which the
 * kernel deletes itself once it fired. */
static int deleted(const struct changes *c, int n, uint32_t interest)
{
    int k, err = 0;
    for (k = 0; k < n; k++) {
        if (c->err[k] == MIO_ENOENT && (interest & MIO_ONESHOT) && ONESHOT_FLAG == EV_ONESHOT)
            continue;
        if (c->err[k] == MIO_EBADF)
            return MIO_EBADF;
        if (err == 0)
            err = c->err[k];
    }
    return err;
}

static int first_error(const struct changes *c, int from)
{
    int k;
    for (k = from; k < c->n; k++)
        if (c->err[k] != 0)
            return c->err[k];
    return 0;
}

/* Adds back the filters of r that a failed change had deleted, as they were
 * (disabled if its oneshot had fired), so that the registration is what it
 * was before.  0, or the error that kept it from coming back whole; then none
 * of it is left. */
static int restore(struct kqueue_poll *p, int fd, const struct mio_fdrec *r)
{
    struct changes c;
    int k, err;

    c.n = 0;
    add_filters(&c, fd, r->token, r->interest);
    if (r->armed == 0)
        for (k = 0; k < c.n; k++)
            c.ev[k].flags |= EV_DISABLE;
    apply(p->kq, &c);
    err = first_error(&c, 0);
    if (err < 0)
        undo_adds(p, fd, &c, 0);
    return err;
}

/* ---- the backend ---- */

static void close_kqueue(int kq)
{
    close(kq);
#ifdef LIBKQUEUE
    /* libkqueue closes a kqueue's own descriptors later, from a thread of its
     * own; recent versions let us wait, so that they are closed when the
     * poll is, as a kernel's are.  Without the wait, every closed kqueue also
     * races that thread as ThreadSanitizer sees it. */
    if (libkqueue_drain_pending_close != NULL)
        libkqueue_drain_pending_close();
#endif
}

static int kq_init(mio_poll *base)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    struct changes c;
    int err;

#if defined(KQUEUE_CLOEXEC)
    p->kq = kqueuex(KQUEUE_CLOEXEC);
#elif defined(__NetBSD__)
    p->kq = kqueue1(O_CLOEXEC);
#else
    p->kq = kqueue();
    if (p->kq >= 0)
        (void)fcntl(p->kq, F_SETFD, FD_CLOEXEC);
#endif
    if (p->kq < 0)
        return mio__err();
    /* kevent() never blocks on it, but every descriptor the library creates
     * is non-blocking where the OS lets it. */
    (void)fcntl(p->kq, F_SETFL, O_NONBLOCK);
    c.n = 0;
#ifdef USE_EVFILT_USER
    /* Ident 0: the only user filter. */
    change(&c, 0, EVFILT_USER, EV_ADD | EV_CLEAR, 0, MIO_TOKEN_RESERVED);
    apply(p->kq, &c);
    err = c.err[0];
#else
    err = mio__wakefd_open(&p->wake);
    if (err == 0) {
        change(&c, (uintptr_t)p->wake.rfd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, MIO_TOKEN_RESERVED);
        apply(p->kq, &c);
        err = c.err[0];
        if (err < 0)
            mio__wakefd_close(&p->wake);
    }
#endif
    if (err < 0) {
        close_kqueue(p->kq);
        return err;
    }
    mio_mutex_init(&p->lock);
    return 0;
}

static void kq_fini(mio_poll *base)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
#ifndef USE_EVFILT_USER
    mio__wakefd_close(&p->wake);
#endif
    close_kqueue(p->kq);
    mio_mutex_destroy(&p->lock);
}

/* The change went through: the record says so. */
static void registered(struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    mio__rec_set(r, token, interest);
    r->armed = interest & MIO_INTERESTS;
}

/* again: the registry has a record of fd on this poll already; it stands
 * unless the kernel dropped its filters (the descriptor was closed since,
 * and its number reused). */
static int kq_add(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest,
                  bool again)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    int fd = r->fd;
    struct changes c;
    int err = 0, ndel;

#ifndef HAVE_EXCEPT
    if (interest & MIO_PRIORITY)
        return MIO_ENOSYS;
#endif
    c.n = 0;
    mio_mutex_lock(&p->lock);
    if (again) {
        if (check_registered(p, fd, r) == 0) {
            mio_mutex_unlock(&p->lock);
            return MIO_EEXIST;
        }
        delete_filters(&c, fd, r->interest);    /* what is left of it, if anything */
    }
    ndel = c.n;
    add_filters(&c, fd, token, interest);
    apply(p->kq, &c);
    err = first_error(&c, ndel);
    if (err < 0)
        undo_adds(p, fd, &c, ndel);
    else
        registered(r, token, interest);
    mio_mutex_unlock(&p->lock);
    return err;
}

static int kq_mod(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    int fd = r->fd;
    struct changes c;
    int err, ndel;

#ifndef HAVE_EXCEPT
    if (interest & MIO_PRIORITY)
        return MIO_ENOSYS;
#endif
    mio_mutex_lock(&p->lock);
    c.n = 0;
    delete_filters(&c, fd, r->interest);
    ndel = c.n;
    add_filters(&c, fd, token, interest);
    apply(p->kq, &c);
    if ((err = deleted(&c, ndel, r->interest)) < 0) {
        /* Closed since: its filters are gone with it, and so is the
         * registration (the registry drops it). */
        undo_adds(p, fd, &c, ndel);
    } else if ((err = first_error(&c, ndel)) < 0) {
        /* Refused: the old filters come back, as a refused EPOLL_CTL_MOD
         * changes nothing.  Should even that fail, nothing is left. */
        undo_adds(p, fd, &c, ndel);
        if (restore(p, fd, r) < 0)
            err = MIO_ENOENT;
    } else {
        registered(r, token, interest);
    }
    mio_mutex_unlock(&p->lock);
    return err;
}

static int kq_del(mio_poll *base, struct mio_fdrec *r)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    struct changes c;
    int err;

    mio_mutex_lock(&p->lock);
    c.n = 0;
    delete_filters(&c, r->fd, r->interest);
    apply(p->kq, &c);
    err = deleted(&c, c.n, r->interest);
    mio_mutex_unlock(&p->lock);
    return err;
}

/* Whether fd's connection is shut both ways (poll(2)'s POLLHUP): the peer is
 * gone entirely, not half-closed. */
static bool hung_up(int fd)
{
    struct pollfd pf;

    pf.fd = fd;
    pf.events = 0;
    pf.revents = 0;
    return poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP);
}

/* kqueue says end-of-file per filter; the contract says what epoll says, for
 * whichever directions were asked for.  A peer gone entirely closes both
 * sides, whichever filter saw it; a pipe whose reader is gone is an error for
 * its writer.  System calls, but on the end-of-file path only. */
static uint32_t eof(const struct kevent *k)
{
    int fd = (int)k->ident;

    if (k->filter == EVFILT_READ) {
        if (k->fflags != 0) /* the socket's pending error: the connection failed */
            return MIO_READ_CLOSED | MIO_WRITE_CLOSED | MIO_ERROR;
        return hung_up(fd) ? MIO_READ_CLOSED | MIO_WRITE_CLOSED : MIO_READ_CLOSED;
    }
    /* The write filter: only a peer gone entirely closes the read side too
     * (a refused connect, a reset, a Unix socket's peer closed). */
    if (k->fflags == 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
            return MIO_WRITE_CLOSED | MIO_ERROR;
    }
    return MIO_WRITE_CLOSED | (k->fflags != 0 ? MIO_ERROR : 0) |
           (hung_up(fd) ? MIO_READ_CLOSED : 0);
}

static uint32_t readiness(const struct kevent *k)
{
    uint32_t r = 0;

    switch (k->filter) {
    case EVFILT_READ:
        r = MIO_READABLE;
        break;
    case EVFILT_WRITE:
        r = MIO_WRITABLE;
        break;
#ifdef HAVE_EXCEPT
    case EVFILT_EXCEPT:
        return MIO_PRIORITY | (k->flags & EV_ERROR ? MIO_ERROR : 0);
#endif
#ifdef USE_EVFILT_USER
    case EVFILT_USER:
        return MIO_READABLE;
#endif
    case EVFILT_PROC:               /* NOTE_EXIT; its EV_EOF is no descriptor's */
        return MIO_READABLE;
    default:
        break;
    }
    /* EV_EOF carries the socket's pending error in fflags (a refused connect
     * comes as the write filter with ECONNREFUSED). */
    if (MIO_UNLIKELY(k->flags & EV_EOF))
        r |= eof(k);
    if (MIO_UNLIKELY(k->flags & EV_ERROR))
        r |= MIO_ERROR;
    return r;
}

/* The kernel disarms the filter that fired; a oneshot registration of more
 * than one direction disarms them all, as epoll's does, so its other filters
 * are disabled before the wait returns.  The table is read under its lock, so
 * it matches what the kernel holds: an event whose token is the entry's
 * counts as that registration's one event, even when another thread re-armed
 * it during the wait (the caller cannot tell the two apart, and re-arms after
 * handling it).  An event whose token differs is from a registration replaced
 * since: the new one is left armed. */
static void disarm_siblings(struct kqueue_poll *p, const struct kevent *kev, int n)
{
    int i;

    mio_mutex_lock(&p->lock);
    for (i = 0; i < n; i++) {
        struct mio_fdrec *r;
        struct changes c;
        size_t f;

        if (!(kev[i].flags & ONESHOT_FLAG) || kev[i].filter == EVFILT_PROC)
            continue;
        /* Valid while the lock is held: kq_del takes it (registry.h). */
        r = mio__rec_lookup(&p->base, (mio_fd)kev[i].ident);
        if (r == NULL || !(r->interest & MIO_ONESHOT) ||
            r->token != (mio_token)(uintptr_t)kev[i].udata)
            continue;
        r->armed = 0;
        c.n = 0;
        for (f = 0; f < NFILTERS; f++)
            if ((r->interest & filters[f].interest) && filters[f].filter != kev[i].filter)
                change(&c, kev[i].ident, filters[f].filter, EV_DISABLE, 0, 0);
        if (c.n > 0)
            apply(p->kq, &c);
    }
    mio_mutex_unlock(&p->lock);
}

static int kq_wait(mio_poll *base, mio_event *events, size_t cap, int64_t timeout_ns)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    struct kevent kev[WAIT_CHUNK];
    struct timespec ts, *tsp = NULL;
    size_t j = 0;

    if (timeout_ns >= 0) {
        if (timeout_ns / MIO_SEC >= MAX_WAIT_SEC) {
            ts.tv_sec = MAX_WAIT_SEC;
            ts.tv_nsec = 0;
        } else {
            ts.tv_sec = (time_t)(timeout_ns / MIO_SEC);
            ts.tv_nsec = (long)(timeout_ns % MIO_SEC);
        }
        tsp = &ts;
    }
    /* Chunks after the first only take what is already there, until the
     * caller's array is full or the kernel has nothing more. */
    for (;;) {
        int want = cap - j < WAIT_CHUNK ? (int)(cap - j) : WAIT_CHUNK;
        int n = kevent(p->kq, NULL, 0, kev, want, tsp), i;
        bool oneshot = false;

        if (n < 0) {
            if (j > 0)
                break;          /* the error comes back with the next wait */
            return mio__err();
        }
        for (i = 0; i < n; i++) {
            mio_token token = (mio_token)(uintptr_t)kev[i].udata;
            if (MIO_UNLIKELY(token == MIO_TOKEN_RESERVED))
                continue;       /* notify() */
            events[j].token = token;
            events[j].flags = readiness(&kev[i]);
            j++;
            oneshot |= (kev[i].flags & ONESHOT_FLAG) != 0;
        }
        if (MIO_UNLIKELY(oneshot))
            disarm_siblings(p, kev, n);
        if (n < want || j == cap)
            break;
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
        tsp = &ts;
    }
    return (int)j;
}

#ifdef USE_EVFILT_USER
static int trigger(int kq, uintptr_t ident, mio_token token)
{
    struct kevent k;
    int saved = errno;  /* callable from signal handlers: leave errno alone */
    int err = 0;

    /* The udata of a modify replaces the filter's: pass the same one. */
    memset(&k, 0, sizeof k);
    k.ident = ident;
    k.filter = EVFILT_USER;
    k.fflags = NOTE_TRIGGER;
    k.udata = UDATA(token);
    if (kevent(kq, &k, 1, NULL, 0, NULL) < 0)
        err = mio__err();
    errno = saved;
    return err;
}
#else
/* The wake descriptor is read edge-triggered and never drained, so a full
 * pipe would stop saying anything new: empty it and write again. */
static int kick(int rfd, int wfd)
{
    int saved = errno, err = 0;
    char one = 1;

    if (rfd == wfd)                     /* an eventfd: its counter never fills */
        return mio__wakefd_signal(wfd);
    for (;;) {
        if (write(wfd, &one, 1) == 1)
            break;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            mio__wakefd_drain(rfd);
            continue;
        }
        if (errno != EINTR) {
            err = mio__err();
            break;
        }
    }
    errno = saved;
    return err;
}
#endif

static int kq_notify(mio_poll *base)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
#ifdef USE_EVFILT_USER
    return trigger(p->kq, 0, MIO_TOKEN_RESERVED);
#else
    return kick(p->wake.rfd, p->wake.wfd);
#endif
}

/* ---- child processes ----
 * EVFILT_PROC with NOTE_EXIT: the kernel reports the exit (once: it drops
 * the filter then) without reaping the child.  The ident is the pid, no
 * descriptor, so no record is involved. */
static int kq_proc(mio_poll *base, int64_t pid, mio_token token, bool add)
{
    struct kqueue_poll *p = (struct kqueue_poll *)base;
    struct changes c;

    c.n = 0;
    change(&c, (uintptr_t)pid, EVFILT_PROC, add ? EV_ADD | EV_CLEAR : EV_DELETE, NOTE_EXIT,
           token);
    apply(p->kq, &c);
    if (!add && (c.err[0] == MIO_ENOENT || c.err[0] == MIO_ESRCH))
        return 0;
    return c.err[0];
}

const struct mio_backend mio__backend_kqueue = {
    .name = "kqueue",
    .size = sizeof(struct kqueue_poll),
    .init = kq_init,
    .fini = kq_fini,
    .add = kq_add,
    .mod = kq_mod,
    .del = kq_del,
    .unknown = mio__unix_fd_unknown,
    .wait = kq_wait,
    .notify = kq_notify,
    .proc = kq_proc,
};
