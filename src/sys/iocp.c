/* The Windows backend: one I/O completion port, sockets polled through AFD.
 *
 * Each registered socket has a `struct sock` (its registration record's
 * `data`, registry.h) holding its base handle and at most one IOCTL_AFD_POLL
 * in flight, issued on a helper handle to
 * \Device\Afd that a group of sockets shares (afd.c).  The poll completes on
 * the port when any of the asked-for AFD events holds; wait dequeues
 * completions with GetQueuedCompletionStatusEx and turns each into at most
 * one event; the socket's next poll follows.  notify (which wakers use)
 * posts a completion of its own.
 *
 * AFD polls are level-triggered and one-shot by nature.  A completed socket's
 * next poll is issued when the next wait starts, so that it asks about the
 * socket as it is then (a level registration drained in between is not
 * reported again).  Oneshot registrations ask for nothing more until mod;
 * edge is emulated by dropping a reported direction from the next polls
 * until a libmio call drains it (the registry then calls rearm).  Hang-up
 * and error stay true once they happen, so an edge or oneshot registration
 * stops asking for them after reporting them, until mod.
 *
 * Changes from other threads: add, mod, del and rearm take the poll's lock
 * and issue or cancel polls themselves; a completion they cause wakes the
 * waiter, which processes completions under the same lock.  Interest that
 * widens cancels the poll in flight (its completion, cancelled or not, then
 * issues the new one); interest that narrows keeps it, and events no longer
 * asked for are dropped when it completes.  A socket deregistered with a poll
 * in flight is only marked: its memory goes when that poll completes, and a
 * new registration of the socket meanwhile issues its first poll only then
 * (one socket in two polls at once can lose events).  What AFD refuses (a
 * poll that cannot be issued, a cancel that fails twice) is reported with
 * MIO_ERROR, in a later wait if the batch is full.
 *
 * One closed without deregistering goes when AFD reports the close
 * (AFD_POLL_LOCAL_CLOSE), or at once when mio_close closes it; its record
 * then has no socket state, which the next call on the handle treats as
 * stale.  For that
 * every poll asks for the close, and a socket with nothing armed still has
 * one in flight; one closed while it has none (between a completion and the
 * next wait) fails its next poll as an invalid handle and goes then, as in
 * wepoll and mio.  Either way nothing is reported for it. */
#include "../registry.h"
#include "afd.h"
#include "win.h"

#include <limits.h>
#include <string.h>

#define COMPLETION_AFD    1
#define COMPLETION_NOTIFY 2

/* Sockets sharing one AFD helper handle. */
#define GROUP_SIZE 32
/* Completions dequeued per wait at most (bounded by the caller's capacity). */
#define ENTRIES 256

/* AFD events that stay true once they happen. */
#define AFD_STICKY (MIO_AFD_POLL_DISCONNECT | MIO_AFD_POLL_ABORT | MIO_AFD_POLL_CONNECT_FAIL)

struct afd_group {
    HANDLE afd;
    unsigned users;             /* sock states on this helper, freed ones not */
    struct afd_group *next;
};

struct sock {
    IO_STATUS_BLOCK iosb;       /* first: its address is the completion's OVERLAPPED */
    struct mio_afd_poll_info info;
    SOCKET fd, base;
    struct mio_fdrec *rec;      /* its registration (token, interest); NULL once dropped */
    uint32_t armed;             /* directions the next poll asks for */
    ULONG spent;                /* sticky AFD events already reported (edge, oneshot) */
    ULONG asked;                /* AFD events of the poll in flight */
    bool pending;               /* a poll is in flight */
    bool cancelling;            /* ... and it was cancelled */
    bool deleted;               /* off the table; freed when the poll completes */
    bool queued;                /* on the poll's list of polls to issue */
    bool failed;                /* a MIO_ERROR is owed for it (issue_queued) */
    struct afd_group *group;
    struct sock *prev, *next;   /* the poll's registered sockets */
    struct sock *queue_next;
    struct sock *dying_next;
    struct sock *blocker;       /* deleted, same socket, poll still in flight */
    struct sock *heir;          /* (of a blocker) the one it holds back */
};

struct iocp_poll {
    mio_poll base;
    HANDLE port;
    mio_mutex lock;             /* guards everything below but `notified`, and
                                   the records' sock states, tokens, interests */
    struct sock *socks;         /* registered sockets */
    size_t in_flight;           /* polls issued and not yet dequeued */
    struct sock *queue;         /* completed sockets whose next poll waits */
    struct sock *dying;         /* deleted sockets whose poll is in flight */
    struct afd_group *groups;
    bool reissue;               /* the queue holds polls cancelled to widen,
                                   or held back (see iocp_add) */
    atomic_int notified;
    OVERLAPPED_ENTRY entries[ENTRIES];  /* the (single) waiter's */
};

static struct iocp_poll *to_iocp(mio_poll *p)
{
    return (struct iocp_poll *)(void *)p;
}

/* ---- the registered sockets ---- */

static void link_sock(struct iocp_poll *p, struct sock *s)
{
    s->prev = NULL;
    s->next = p->socks;
    if (s->next != NULL)
        s->next->prev = s;
    p->socks = s;
}

/* Takes s off the list and from its record, which then has no socket
 * state (a stale registration, see iocp_add). */
static void unlink_sock(struct iocp_poll *p, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        p->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (s->rec != NULL)
        s->rec->data = NULL;
    s->rec = NULL;
}

static int join_group(struct iocp_poll *p, struct sock *s)
{
    struct afd_group *g;
    int err;

    for (g = p->groups; g != NULL; g = g->next)
        if (g->users < GROUP_SIZE)
            break;
    if (g == NULL) {
        g = mio__calloc(1, sizeof *g);
        if (g == NULL)
            return MIO_ENOMEM;
        err = mio__afd_open(p->port, COMPLETION_AFD, &g->afd);
        if (err < 0) {
            mio__free(g);
            return err;
        }
        g->next = p->groups;
        p->groups = g;
    }
    g->users++;
    s->group = g;
    return 0;
}

/* Helpers stay open until the poll is freed: a socket coming and going does
 * not reopen the device each time. */
static void free_sock(struct sock *s)
{
    s->group->users--;
    mio__free(s);
}

/* Puts a completed socket on the list whose polls the next wait issues. */
static void enqueue(struct iocp_poll *p, struct sock *s)
{
    if (!s->queued) {
        s->queued = true;
        s->queue_next = p->queue;
        p->queue = s;
    }
}

static int iocp_notify(mio_poll *base);

/* Takes the socket off the table; its memory goes now, or once nothing
 * refers to it any more (its poll in flight, the list of polls to issue).
 * One whose poll is in flight is kept on the dying list meanwhile (see
 * iocp_add); a cancel that fails is tried again by the next wait, and if
 * that fails too the poll is left to complete by itself (a new registration
 * of the socket waits as long). */
static void drop(struct iocp_poll *p, struct sock *s)
{
    unlink_sock(p, s);
    if (s->blocker != NULL) {
        s->blocker->heir = NULL;
        s->blocker = NULL;
    }
    if (s->pending) {
        s->deleted = true;
        s->dying_next = p->dying;
        p->dying = s;
        if (!s->cancelling) {
            if (mio__afd_cancel(s->group->afd, &s->iosb) == 0) {
                s->cancelling = true;
            } else {
                enqueue(p, s);
                (void)iocp_notify(&p->base);
            }
        }
    } else if (s->queued) {
        s->deleted = true;      /* issue_queued frees it */
    } else {
        free_sock(s);
    }
}

/* The deleted registration of socket fd whose poll is still in flight. */
static struct sock *dying_of(const struct iocp_poll *p, SOCKET fd)
{
    struct sock *s;
    for (s = p->dying; s != NULL; s = s->dying_next)
        if (s->fd == fd)
            return s;
    return NULL;
}

static void unlink_dying(struct iocp_poll *p, struct sock *s)
{
    struct sock **pp;
    for (pp = &p->dying; *pp != NULL; pp = &(*pp)->dying_next) {
        if (*pp == s) {
            *pp = s->dying_next;
            return;
        }
    }
}

/* ---- polls in flight ---- */

static ULONG afd_events(const struct sock *s)
{
    ULONG ev = AFD_STICKY & ~s->spent;
    if (s->armed & MIO_READABLE)
        ev |= MIO_AFD_POLL_RECEIVE | MIO_AFD_POLL_ACCEPT;
    if (s->armed & MIO_PRIORITY)
        ev |= MIO_AFD_POLL_RECEIVE_EXPEDITED;
    if (s->armed & MIO_WRITABLE)
        ev |= MIO_AFD_POLL_SEND;
    return ev;
}

/* Issues the socket's next poll.  One is kept in flight even when nothing
 * is armed (a fired oneshot, a used-up edge): it asks for the close at least,
 * which is how a socket closed without deregistering is noticed.  MIO_EBADF:
 * the socket is gone (closed behind the library's back). */
static int submit(struct iocp_poll *p, struct sock *s)
{
    ULONG ev = afd_events(s);
    int err;

    if (s->pending || s->deleted || s->blocker != NULL)
        return 0;
    s->info.timeout.QuadPart = INT64_MAX;
    s->info.count = 1;
    s->info.exclusive = FALSE;
    s->info.handles[0].handle = (HANDLE)s->base;
    s->info.handles[0].events = ev | MIO_AFD_POLL_LOCAL_CLOSE;
    s->info.handles[0].status = 0;
    err = mio__afd_poll(s->group->afd, &s->info, &s->iosb);
    MIO_TRACE(MIO_LOG_TRACE, "iocp: socket %llu: poll of AFD events %#lx issued: %d",
              (unsigned long long)s->fd, (unsigned long)ev, err);
    if (err < 0)
        return err;
    s->pending = true;
    s->cancelling = false;
    s->asked = ev;
    p->in_flight++;
    return 0;
}

/* Cancels the poll in flight if it misses some of the socket's wishes: its
 * completion then issues the new one. */
static int widen(struct sock *s)
{
    int err;

    if (s->cancelling || (afd_events(s) & ~s->asked) == 0)
        return 0;
    err = mio__afd_cancel(s->group->afd, &s->iosb);
    if (err == 0)
        s->cancelling = true;
    return err;
}

/* After the socket's wishes changed (mod, rearm).  A socket found closed is
 * forgotten (MIO_EBADF).  A cancel that fails leaves the poll in flight
 * asking for less than is wanted, and issuing a second beside it is unsafe
 * (see iocp_add): the next wait tries the cancel again, and reports
 * MIO_ERROR if it fails there too (issue_queued).  Either way the wider
 * interest is polled once the poll in flight completes. */
static int update(struct iocp_poll *p, struct sock *s)
{
    int err;

    if (!s->pending) {
        err = submit(p, s);
        if (err == MIO_EBADF)
            drop(p, s);
        return err;
    }
    if (widen(s) < 0) {
        enqueue(p, s);
        (void)iocp_notify(&p->base);
    }
    return 0;
}

/* The same readiness epoll.c reports for the same situation. */
static uint32_t readiness(ULONG ev)
{
    uint32_t r = 0;
    if (ev & (MIO_AFD_POLL_RECEIVE | MIO_AFD_POLL_ACCEPT))
        r |= MIO_READABLE;
    if (ev & MIO_AFD_POLL_RECEIVE_EXPEDITED)
        r |= MIO_PRIORITY;
    if (ev & MIO_AFD_POLL_SEND)
        r |= MIO_WRITABLE;
    if (ev & MIO_AFD_POLL_DISCONNECT)
        r |= MIO_READABLE | MIO_READ_CLOSED;
    if (ev & MIO_AFD_POLL_ABORT)
        r |= MIO_READABLE | MIO_WRITABLE | MIO_READ_CLOSED | MIO_WRITE_CLOSED;
    if (ev & MIO_AFD_POLL_CONNECT_FAIL)
        r |= MIO_WRITABLE | MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED;
    return r;
}

/* One completed poll: fills *out and returns true if it has an event. */
static bool complete(struct iocp_poll *p, struct sock *s, mio_event *out)
{
    ULONG ev = 0;
    uint32_t r, interest;

    s->pending = false;
    p->in_flight--;
    /* This line and submit's are read by tests/test_iocp.c. */
    MIO_TRACE(MIO_LOG_TRACE, "iocp: socket %llu: AFD events %#lx (asked %#lx), status %#lx%s",
              (unsigned long long)s->fd, (unsigned long)s->info.handles[0].events,
              (unsigned long)s->asked, (unsigned long)s->iosb.Status,
              s->deleted ? ", deregistered" : "");
    if (s->deleted) {
        unlink_dying(p, s);
        if (s->heir != NULL) {
            /* The socket was registered again meanwhile: its poll now. */
            s->heir->blocker = NULL;
            enqueue(p, s->heir);
            p->reissue = true;
        }
        if (!s->queued)
            free_sock(s);   /* else issue_queued does */
        return false;
    }
    if (s->iosb.Status == MIO_NT_STATUS_CANCELLED) {
        /* Cancelled to widen the interest: nothing to report, asked again
         * before this wait returns. */
        p->reissue = true;
    } else if (s->iosb.Status < 0) {
        /* The socket is gone from under AFD: report it once. */
        ev = MIO_AFD_POLL_CONNECT_FAIL;
        s->armed = 0;
        s->spent = AFD_STICKY;
    } else if (s->info.count >= 1) {
        ev = s->info.handles[0].events;
    }
    if (ev & MIO_AFD_POLL_LOCAL_CLOSE) {
        /* Closed without deregistering: forget it, as epoll would. */
        drop(p, s);
        return false;
    }
    interest = s->rec->interest;
    r = readiness(ev);
    r &= (interest & MIO_INTERESTS) | MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED;
    if (s->failed) {
        /* The MIO_ERROR still owed for a cancel that failed goes with this,
         * and the next poll is issued as usual (issue_queued). */
        s->failed = false;
        r |= MIO_ERROR;
    }
    if (r != 0) {
        if (interest & MIO_ONESHOT) {
            s->armed = 0;
            s->spent = AFD_STICKY;
        } else if (!(interest & MIO_LEVEL)) {
            /* Not what was drained meanwhile (registry.h). */
            s->armed &= ~mio__rec_reported(s->rec, r & MIO_INTERESTS);
            s->spent |= ev & AFD_STICKY;
        }
        out->token = s->rec->token;
        out->flags = r;
    }
    enqueue(p, s);
    return r != 0;
}

/* Issues the polls of the sockets completed by earlier waits and retries
 * the cancels that failed.  What cannot be done is reported with MIO_ERROR,
 * once: a poll that cannot be issued (the socket then asks for nothing until
 * mod), a cancel that fails again (the poll in flight stays).  Errors past
 * cap stay queued for the next wait: none is lost. */
static size_t issue_queued(struct iocp_poll *p, mio_event *events, size_t cap)
{
    struct sock *s, *next;
    size_t n = 0;
    int err;

    for (s = p->queue, p->queue = NULL; s != NULL; s = next) {
        next = s->queue_next;
        s->queued = false;
        if (s->deleted) {
            if (!s->pending)
                free_sock(s);
            else if (!s->cancelling && mio__afd_cancel(s->group->afd, &s->iosb) == 0)
                s->cancelling = true;
            continue;
        }
        if (s->failed) {
            /* owed from an earlier wait */
        } else if (s->pending) {
            s->failed = widen(s) < 0;
        } else if ((err = submit(p, s)) == MIO_EBADF) {
            drop(p, s);     /* closed behind the library's back */
            continue;
        } else if (err < 0) {
            s->failed = true;
            s->armed = 0;
            s->spent = AFD_STICKY;
        }
        if (s->failed && n < cap) {
            s->failed = false;
            events[n].token = s->rec->token;
            events[n].flags = MIO_ERROR;
            n++;
        } else if (s->failed) {
            enqueue(p, s);
        }
    }
    return n;
}

/* ---- the backend ---- */

static int iocp_init(mio_poll *base)
{
    struct iocp_poll *p = to_iocp(base);
    int err;

    if ((err = mio__afd_init()) < 0 || (err = mio__wsa_init()) < 0)
        return err;
    p->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    if (p->port == NULL)
        return mio__win_error(GetLastError());
    mio_mutex_init(&p->lock);
    atomic_init(&p->notified, 0);
    return 0;
}

static void iocp_fini(mio_poll *base)
{
    struct iocp_poll *p = to_iocp(base);
    struct afd_group *g, *next;
    int rounds;

    mio_mutex_lock(&p->lock);
    {
        struct sock *s, *snext;
        for (s = p->queue, p->queue = NULL; s != NULL; s = snext) {
            snext = s->queue_next;
            s->queued = false;
            if (s->deleted && !s->pending)
                free_sock(s);
        }
    }
    {
        struct sock *s;
        for (s = p->dying; s != NULL; s = s->dying_next)
            if (!s->cancelling)
                (void)mio__afd_cancel(s->group->afd, &s->iosb);
    }
    {
        struct sock *s, *snext;
        for (s = p->socks, p->socks = NULL; s != NULL; s = snext) {
            snext = s->next;
            if (s->pending) {
                s->deleted = true;
                (void)mio__afd_cancel(s->group->afd, &s->iosb);
            } else {
                free_sock(s);
            }
        }
    }
    mio_mutex_unlock(&p->lock);

    /* The kernel writes into every poll in flight until it completes: wait
     * them out (cancelled polls complete promptly) before freeing them. */
    for (rounds = 0; p->in_flight > 0 && rounds < 100; rounds++) {
        ULONG got = 0, k;
        if (!GetQueuedCompletionStatusEx(p->port, p->entries, ENTRIES, &got, 100, FALSE))
            continue;
        for (k = 0; k < got; k++) {
            if (p->entries[k].lpCompletionKey == COMPLETION_AFD) {
                struct sock *s = (struct sock *)(void *)p->entries[k].lpOverlapped;
                p->in_flight--;
                free_sock(s);
            }
        }
    }
    for (g = p->groups; g != NULL; g = next) {
        next = g->next;
        CloseHandle(g->afd);
        mio__free(g);
    }
    CloseHandle(p->port);
    mio_mutex_destroy(&p->lock);
}

/* A handle that is not a socket: a closed one (EBADF), or a file AFD cannot
 * poll (EPERM). */
static int not_a_socket(SOCKET fd)
{
    if (GetFileType((HANDLE)fd) == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR)
        return MIO_EBADF;
    return MIO_EPERM;
}

/* again: the registry holds a record for this socket already.  It stands
 * while it has socket state; without (the socket was closed behind the
 * library's back and AFD said so) the handle now names another socket,
 * which takes the record over. */
static int iocp_add(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest,
                    bool again)
{
    struct iocp_poll *p = to_iocp(base);
    SOCKET fd = r->fd;
    struct sock *s;
    SOCKET sbase;
    int err;

    if (again) {
        mio_mutex_lock(&p->lock);
        err = r->data != NULL ? MIO_EEXIST : 0;
        mio_mutex_unlock(&p->lock);
        if (err < 0)
            return err;
    }
    err = mio__afd_base_socket(fd, &sbase);
    if (err < 0)
        return err == MIO_ENOTSOCK || err == MIO_EINVAL || err == MIO_EBADF ? not_a_socket(fd) : err;
    s = mio__calloc(1, sizeof *s);
    if (s == NULL)
        return MIO_ENOMEM;
    s->fd = fd;
    s->base = sbase;
    s->armed = interest & MIO_INTERESTS;

    mio_mutex_lock(&p->lock);
    if ((err = join_group(p, s)) == 0) {
        /* Deregistered with its poll still in flight (cancelled, but not yet
         * completed): a second poll of one socket beside it can lose events
         * (wepoll has seen it), so this one is issued once that completes. */
        s->blocker = dying_of(p, fd);
        if (s->blocker != NULL)
            s->blocker->heir = s;
        err = submit(p, s);
        if (err == 0) {
            s->rec = r;
            r->data = s;
            mio__rec_set(r, token, interest);
            link_sock(p, s);
        } else {
            if (s->blocker != NULL)
                s->blocker->heir = NULL;
            s->group->users--;
        }
    }
    mio_mutex_unlock(&p->lock);
    if (err < 0)
        mio__free(s);
    return err;
}

/* For a socket without state: MIO_EBADF if it is no socket at all (as
 * epoll says for a closed descriptor), else MIO_ENOENT. */
static int not_registered(SOCKET fd)
{
    int type, len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == SOCKET_ERROR &&
        WSAGetLastError() == WSAENOTSOCK)
        return MIO_EBADF;
    return MIO_ENOENT;
}

static int iocp_mod(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    struct iocp_poll *p = to_iocp(base);
    struct sock *s;
    int err = MIO_ENOENT;

    mio_mutex_lock(&p->lock);
    s = r->data;
    if (s != NULL) {
        mio__rec_set(r, token, interest);
        s->armed = interest & MIO_INTERESTS;
        s->spent = 0;
        s->failed = false;      /* an error owed is about the old interest */
        err = update(p, s);
    }
    mio_mutex_unlock(&p->lock);
    return err == MIO_ENOENT ? not_registered(r->fd) : err;
}

static int iocp_del(mio_poll *base, struct mio_fdrec *r)
{
    struct iocp_poll *p = to_iocp(base);
    struct sock *s;
    int err = MIO_ENOENT;

    mio_mutex_lock(&p->lock);
    s = r->data;
    if (s != NULL) {
        drop(p, s);
        err = 0;
    }
    mio_mutex_unlock(&p->lock);
    return err == MIO_ENOENT ? not_registered(r->fd) : err;
}

static void iocp_forget(mio_poll *base, struct mio_fdrec *r)
{
    (void)iocp_del(base, r);
}

/* Directions drained since they were reported are asked for again (called
 * by the waiting thread between waits). */
static void iocp_rearm(mio_poll *base, struct mio_fdrec *r, uint32_t dirs)
{
    struct iocp_poll *p = to_iocp(base);
    struct sock *s;

    mio_mutex_lock(&p->lock);
    s = r->data;
    if (s != NULL && (r->interest & dirs & ~s->armed) != 0) {
        s->armed |= r->interest & dirs & MIO_INTERESTS;
        (void)update(p, s);
    }
    mio_mutex_unlock(&p->lock);
}

/* Dequeues completions (at most cap, the first waited for up to ms) and
 * turns them into events; how many, or the wait's error. */
static int dequeue(struct iocp_poll *p, mio_event *events, size_t cap, DWORD ms)
{
    ULONG want = cap < ENTRIES ? (ULONG)cap : ENTRIES, got = 0, k;
    int n = 0;

    if (!GetQueuedCompletionStatusEx(p->port, p->entries, want, &got, ms, FALSE)) {
        DWORD err = GetLastError();
        return err == WAIT_TIMEOUT ? 0 : mio__win_error(err);
    }
    mio_mutex_lock(&p->lock);
    for (k = 0; k < got; k++) {
        OVERLAPPED_ENTRY *e = &p->entries[k];
        if (e->lpCompletionKey == COMPLETION_AFD) {
            struct sock *s = (struct sock *)(void *)e->lpOverlapped;
            if (complete(p, s, &events[n]))
                n++;
        } else if (e->lpCompletionKey == COMPLETION_NOTIFY) {
            atomic_store_explicit(&p->notified, 0, memory_order_release);
        }
    }
    mio_mutex_unlock(&p->lock);
    return n;
}

static int iocp_wait(mio_poll *base, mio_event *events, size_t cap, int64_t timeout_ns)
{
    struct iocp_poll *p = to_iocp(base);
    DWORD ms;
    int n, got;
    bool again;

    mio_mutex_lock(&p->lock);
    n = (int)issue_queued(p, events, cap);
    mio_mutex_unlock(&p->lock);
    if (n > 0)
        timeout_ns = 0;
    if ((size_t)n == cap)
        return n;
    if (timeout_ns < 0)
        ms = INFINITE;
    else if (timeout_ns / MIO_MSEC >= INFINITE - 1)
        ms = INFINITE - 1;
    else
        ms = (DWORD)((timeout_ns + MIO_MSEC - 1) / MIO_MSEC);  /* never early */
    got = dequeue(p, events + n, cap - (size_t)n, ms);
    if (got < 0)
        return n > 0 ? n : got;
    n += got;
    /* A poll that was cancelled to ask for more (or held back) is issued
     * here, and what it finds at once is taken in this same wait: a mod is
     * seen by the next wait, even one that does not block. */
    if ((size_t)n == cap)
        return n;
    mio_mutex_lock(&p->lock);
    again = p->reissue;
    p->reissue = false;
    if (again)
        n += (int)issue_queued(p, events + n, cap - (size_t)n);
    mio_mutex_unlock(&p->lock);
    if (again && (size_t)n < cap && (got = dequeue(p, events + n, cap - (size_t)n, 0)) > 0)
        n += got;
    return n;
}

static int iocp_notify(mio_poll *base)
{
    struct iocp_poll *p = to_iocp(base);
    if (atomic_exchange(&p->notified, 1) != 0)
        return 0;
    if (!PostQueuedCompletionStatus(p->port, 0, COMPLETION_NOTIFY, NULL)) {
        atomic_store(&p->notified, 0);
        return mio__win_error(GetLastError());
    }
    return 0;
}

const struct mio_backend mio__backend_iocp = {
    .name = "iocp",
    .size = sizeof(struct iocp_poll),
    .init = iocp_init,
    .fini = iocp_fini,
    .add = iocp_add,
    .mod = iocp_mod,
    .del = iocp_del,
    .unknown = not_registered,
    .wait = iocp_wait,
    .notify = iocp_notify,
    .rearm = iocp_rearm,
    .forget = iocp_forget,
};
