/* The epoll backend (Linux, Android): the default where it exists.
 *
 * Tokens go straight into the kernel's user data, and the kernel writes its
 * events into the caller's own array, which is then decoded in place: no
 * per-poll buffer, no allocation, per-event work is decoding flags. */
#include "../registry.h"
#include "wakefd.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

struct epoll_poll {
    mio_poll base;
    int epfd;
    struct mio_wakefd wake;     /* notify(), reported with the reserved token */
};

/* READABLE, PRIORITY, WRITABLE and ERROR are epoll's own bit values, so most
 * of the decoding is one mask. */
_Static_assert(MIO_READABLE == EPOLLIN && MIO_PRIORITY == EPOLLPRI &&
               MIO_WRITABLE == EPOLLOUT && MIO_ERROR == EPOLLERR,
               "flag values follow epoll's");

/* Linux 4.5; older headers lack the name, older kernels ignore the bit. */
#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

static uint32_t to_epoll(uint32_t interest)
{
    uint32_t e = interest & (MIO_READABLE | MIO_PRIORITY | MIO_WRITABLE);
    /* An exclusive entry takes only in, out and the trigger (the kernel
     * refuses EPOLLRDHUP, EPOLLPRI and EPOLLONESHOT with it): the group's
     * listeners, which need nothing else. */
    if (MIO_UNLIKELY(interest & MIO__EXCLUSIVE))
        return (e & (EPOLLIN | EPOLLOUT)) | EPOLLEXCLUSIVE |
               (interest & MIO_LEVEL ? 0 : EPOLLET);
    if (interest & MIO_READABLE)
        e |= EPOLLRDHUP;
    if (!(interest & MIO_LEVEL))
        e |= EPOLLET;
    if (interest & MIO_ONESHOT)
        e |= EPOLLONESHOT;
    return e;
}

static inline uint32_t from_epoll(uint32_t e)
{
    uint32_t r = e & (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR);
    if (MIO_LIKELY((e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) == 0))
        return r;               /* no hang-up, no error: the common case */
    if (e & (EPOLLHUP | EPOLLRDHUP))
        r |= MIO_READ_CLOSED;
    /* EPOLLERR alone is a pending error: a UDP socket's ICMP report, after
     * which it works as before.  A pipe whose reader is gone says the same,
     * and only the token comes back: it stays MIO_ERROR (mio.h says so). */
    if (e & EPOLLHUP)
        r |= MIO_WRITE_CLOSED;
    return r;
}

static int ctl(struct epoll_poll *p, int op, int fd, mio_token token, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)token;
    return epoll_ctl(p->epfd, op, fd, &ev) < 0 ? mio__err() : 0;
}

static int ep_init(mio_poll *base)
{
    struct epoll_poll *p = (struct epoll_poll *)base;
    int err;

    p->wake.rfd = p->wake.wfd = -1;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return mio__err();
    /* epoll_wait ignores O_NONBLOCK, but the contract promises it on every
     * descriptor the library creates, and epoll_create1 cannot set it. */
    if (fcntl(p->epfd, F_SETFL, O_NONBLOCK) < 0) {
        err = mio__err();
        close(p->epfd);
        return err;
    }
    err = mio__wakefd_open(&p->wake);
    if (err == 0)
        err = ctl(p, EPOLL_CTL_ADD, p->wake.rfd, MIO_TOKEN_RESERVED, EPOLLIN | EPOLLET);
    if (err < 0) {
        mio__wakefd_close(&p->wake);
        close(p->epfd);
    }
    return err;
}

static void ep_fini(mio_poll *base)
{
    struct epoll_poll *p = (struct epoll_poll *)base;
    mio__wakefd_close(&p->wake);
    close(p->epfd);
}

/* The kernel keeps the registrations and answers EEXIST itself: a record
 * the registry still holds for a descriptor closed behind our back (its
 * number reused) is replaced by a successful add. */
static int ep_add(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest,
                  bool again)
{
    int err = ctl((struct epoll_poll *)base, EPOLL_CTL_ADD, r->fd, token, to_epoll(interest));
    (void)again;
    if (err == 0)
        mio__rec_set(r, token, interest);
    return err;
}

static int ep_mod(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    int err = ctl((struct epoll_poll *)base, EPOLL_CTL_MOD, r->fd, token, to_epoll(interest));
    if (err == 0)
        mio__rec_set(r, token, interest);
    return err;
}

static int ep_del(mio_poll *base, struct mio_fdrec *r)
{
    return ctl((struct epoll_poll *)base, EPOLL_CTL_DEL, r->fd, 0, 0);
}

/* epoll_pwait2 (Linux 5.11) takes a timespec; older kernels say ENOSYS once
 * and we fall back to milliseconds, rounded up so a wait is never short. */
#ifdef SYS_epoll_pwait2
static atomic_int no_pwait2;
#endif

static int kernel_wait(int epfd, struct epoll_event *kev, int kcap, int64_t timeout_ns)
{
    int ms;

    if (timeout_ns <= 0)
        return epoll_wait(epfd, kev, kcap, timeout_ns < 0 ? -1 : 0);
#ifdef SYS_epoll_pwait2
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct { int64_t sec, nsec; } ts = { timeout_ns / MIO_SEC, timeout_ns % MIO_SEC };
        int n = (int)syscall(SYS_epoll_pwait2, epfd, kev, kcap, &ts, NULL, (size_t)8);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
#endif
    ms = timeout_ns / MIO_MSEC >= INT_MAX ? INT_MAX
                                          : (int)((timeout_ns + MIO_MSEC - 1) / MIO_MSEC);
    return epoll_wait(epfd, kev, kcap, ms);
}

static int ep_wait(mio_poll *base, mio_event *events, size_t cap, int64_t timeout_ns)
{
    struct epoll_poll *p = (struct epoll_poll *)base;
    const size_t mio_sz = sizeof(mio_event), ep_sz = sizeof(struct epoll_event);
    struct epoll_event one, *kev;
    size_t kcap, off;
    int n, i, j;

    /* The kernel writes into the tail of the caller's array; decoding walks
     * forward and each mio_event written ends before the next epoll_event
     * still to be read (mio_event is never smaller per index than the gap). */
    kcap = ep_sz <= mio_sz ? cap : cap * mio_sz / ep_sz;
    if (kcap == 0) {
        kev = &one;
        kcap = 1;
    } else {
        off = cap * mio_sz - kcap * ep_sz;
        kev = (struct epoll_event *)(void *)((char *)events + off);
    }
    n = kernel_wait(p->epfd, kev, (int)kcap, timeout_ns);
    if (n < 0)
        return mio__err();
    for (i = 0, j = 0; i < n; i++) {
        struct epoll_event ev;
        memcpy(&ev, &kev[i], sizeof ev);
        if (MIO_UNLIKELY(ev.data.u64 == (uint64_t)MIO_TOKEN_RESERVED))
            continue;   /* notify(): its eventfd is edge-triggered, no drain */
        events[j].token = (mio_token)ev.data.u64;
        events[j].flags = from_epoll(ev.events);
        j++;
    }
    return j;
}

static int ep_notify(mio_poll *base)
{
    return mio__wakefd_signal(((struct epoll_poll *)base)->wake.wfd);
}

const struct mio_backend mio__backend_epoll = {
    .name = "epoll",
    .size = sizeof(struct epoll_poll),
    .init = ep_init,
    .fini = ep_fini,
    .add = ep_add,
    .mod = ep_mod,
    .del = ep_del,
    .unknown = mio__unix_fd_unknown,
    .wait = ep_wait,
    .notify = ep_notify,
    .private_interest = MIO__EXCLUSIVE,
};
