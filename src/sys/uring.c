/* The io_uring backend (Linux 5.13 or later, through liburing): readiness
 * from IORING_OP_POLL_ADD requests, with every registration change queued
 * and submitted by the next wait, in the same io_uring_enter that waits.
 *
 * Triggers.  An io_uring poll request is either single-shot (one completion,
 * then it is gone) or multishot (a completion for every wake-up of the file
 * that matches its mask, the mask read at that moment, until cancelled): the
 * kernel's own EPOLLET, so edge is native here.
 * - edge: one multishot request per registration.  Several completions for
 *   one registration in a batch (or waiting beyond the caller's capacity)
 *   merge into one event, as epoll's ready list would have it.
 * - level: a single-shot request, asked again by the wait after the one that
 *   reported it; it completes at once while the source is still ready, so
 *   each wait reports it again.
 * - oneshot: a single-shot request that nothing but a reregister asks again.
 * Adding a request reports what is ready at that moment, as EPOLL_CTL_ADD and
 * EPOLL_CTL_MOD do; a multishot request that ends by itself (a full
 * completion queue ends it, its one last completion kept) is added again.
 *
 * Entries.  The poll keeps a table of entries, one per registration and one
 * for the internal wake-up (which wakers use too, waker.c): a request's user
 * data is its entry's index and a sequence number counted per entry, never
 * a pointer.  A reregister makes the completions of earlier requests stale
 * (`since`), a deregister retires the entry; an entry is reused only once
 * every request it sent has completed (`inflight`), so a late completion
 * never reaches another registration, nor memory that was freed (the
 * registry's records never appear in a request).  While nothing changed
 * since its request in force was asked, an entry keeps that request's user
 * data (`key`): a completion that matches it needs no other check, the
 * wait's common case.
 *
 * Changes.  The table, the lists and the submission queue are under the
 * poll's lock, a futex word the waiter takes twice per wait.  register,
 * reregister and deregister only change the table and put the entry on the
 * change list; the waiting thread turns the list into SQEs (a cancel of the
 * request in force, an add of the new one) and submits them with the
 * io_uring_enter that waits.  A change made while a wait is in progress
 * (`busy`) also signals the internal wake-up, an eventfd the ring polls, so
 * that the waiter comes out, and the next round of its wait submits the
 * change.
 *
 * Threads.  io_uring completes a request on the thread that submitted it
 * (its task work), and a request whose thread has exited completes only with
 * ECANCELED, late, at its next wake-up.  So only a waiting thread submits
 * requests, and a wait on another thread than the last re-submits the
 * requests in force first (`owner`).  Other threads submit only cancels.
 *
 * Files.  A poll request holds a reference on its file: until the request
 * is cancelled, a close() of the descriptor does not close the socket.  A
 * deregistration's cancel goes with the next wait, or at once when the
 * descriptor is closed with mio_close (release) or forgotten by it
 * (forget). */
#include "../registry.h"
#include "wakefd.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 8192u

#define HOT static inline __attribute__((always_inline))   /* the wait's per-completion path */

#define NIL UINT32_MAX
#define SEQ_MASK 0x7fffffffu
#define UD_CANCEL (UINT64_C(1) << 63)   /* a cancel's own completion */
#define NO_KEY UINT64_MAX                /* no request's user data */

_Static_assert(MIO_READABLE == POLLIN && MIO_PRIORITY == POLLPRI && MIO_WRITABLE == POLLOUT &&
               MIO_ERROR == POLLERR, "flag values follow poll's");

enum kind { K_FREE, K_FD, K_NOTIFY, K_GONE };
enum mode { M_EDGE, M_LEVEL, M_ONESHOT };

/* What a completion reads comes first. */
struct entry {
    /* The user data of a K_FD request in force whose completions need no
     * other check: nothing changed since it was asked (no renew, retire or
     * last completion).  NO_KEY otherwise. */
    uint64_t key;
    mio_token token;
    uint32_t mask;          /* poll events asked of the kernel */
    uint32_t batch, at;     /* the wait that reported it, and where in its events */
    uint32_t flags;         /* readiness waiting on the ready list */
    bool queued;            /* on the ready list */
    bool fifo;              /* a pipe: POLLERR is its reader gone */
    uint8_t kind, mode;
    bool armed;             /* should have a request in the kernel */
    bool live;              /* request `seq` was queued and has not completed */
    bool cancel;            /* request `seq` is to be cancelled */
    bool dirty;             /* on the change list */
    bool dead;              /* the kernel found no such descriptor (EBADF) */
    uint32_t seq;           /* the latest request's sequence number */
    uint32_t since;         /* completions of requests before this one are stale */
    uint32_t inflight;      /* requests sent and not completed, any sequence */
    uint32_t prev, next;    /* ready list */
    uint32_t link;          /* change list, free list */
    int fd;
    uint32_t interest;      /* K_FD: as registered */
    dev_t dev;              /* K_FD: the file registered */
    ino_t ino;
};

struct uring_poll {
    mio_poll base;
    struct io_uring ring;
    atomic_uint lock;           /* everything below, and the submission queue */
    struct entry *entries;
    uint32_t count, cap;        /* entries in use or retired, allocated */
    uint32_t free;              /* free list */
    uint32_t changes;           /* change list */
    uint32_t rearm, rearm_tail; /* level entries this wait reported: the next wait's changes */
    uint32_t head, tail;        /* ready list, oldest first */
    uint32_t batch;             /* counts the waits */
    uint32_t held;              /* retired entries whose request is still to be cancelled */
    uint32_t notify;            /* the internal wake-up's entry */
    int wakefd;
    bool taskrun;               /* the ring flags completions still to become CQEs */
    bool skip;                  /* a cancel that succeeds can post no CQE of its own */
    bool busy;                  /* a waiter has SQEs out or sits in the kernel */
    bool kicked;                /* ... and was signalled since */
    bool notified;              /* this wait took the internal wake-up's completion */
    pid_t owner;                /* the thread whose requests are in force */
    struct uring_poll *prev_poll, *next_poll;   /* every uring poll, for release */
};

/* ---- every uring poll, for mio_close ---- */

static mio_mutex polls_lock = MIO_MUTEX_INIT;
static struct uring_poll *polls;
static atomic_uint held_total;     /* the polls' `held`, summed */

/* ---- the poll's lock ----
 * A futex word: 0 free, 1 held, 2 held and maybe slept on.  The waiter takes
 * it twice per wait; uncontended that is one atomic operation each way, not
 * a call into pthreads. */

static void lock_wait(atomic_uint *l)
{
    while (atomic_exchange_explicit(l, 2, memory_order_acquire) != 0)
        (void)syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static void lock_wake(atomic_uint *l)
{
    (void)syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void lock(struct uring_poll *p)
{
    unsigned free_ = 0;
    if (MIO_UNLIKELY(!atomic_compare_exchange_strong_explicit(&p->lock, &free_, 1,
                                                              memory_order_acquire,
                                                              memory_order_relaxed)))
        lock_wait(&p->lock);
}

static inline void unlock(struct uring_poll *p)
{
    if (MIO_UNLIKELY(atomic_exchange_explicit(&p->lock, 0, memory_order_release) == 2))
        lock_wake(&p->lock);
}

/* ---- entries ---- */

static uint32_t entry_new(struct uring_poll *p)
{
    uint32_t i = p->free;
    struct entry *e;

    if (i != NIL) {
        p->free = p->entries[i].link;
    } else {
        if (p->count == p->cap) {
            uint32_t cap = p->cap != 0 ? 2 * p->cap : 64;
            struct entry *grown;
            if (cap > SEQ_MASK || (grown = mio__realloc(p->entries, cap * sizeof *grown)) == NULL)
                return NIL;
            p->entries = grown;
            p->cap = cap;
        }
        i = p->count++;
        p->entries[i].seq = 0;
    }
    e = &p->entries[i];
    e->key = NO_KEY;
    e->token = 0;
    e->interest = 0;
    e->mask = 0;
    e->fd = -1;
    e->kind = K_FREE;
    e->mode = M_EDGE;
    e->armed = e->live = e->cancel = e->dirty = e->queued = e->dead = e->fifo = false;
    e->since = (e->seq + 1) & SEQ_MASK;
    e->inflight = 0;
    e->flags = 0;
    e->batch = 0;
    e->at = 0;
    e->prev = e->next = e->link = NIL;
    e->dev = 0;
    e->ino = 0;
    return i;
}

/* The sequence number keeps counting across reuses. */
static void entry_free(struct uring_poll *p, uint32_t i)
{
    p->entries[i].kind = K_FREE;
    p->entries[i].link = p->free;
    p->free = i;
}

static void mark(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    if (!e->dirty) {
        e->dirty = true;
        e->link = p->changes;
        p->changes = i;
    }
}

/* A level entry this wait reported is asked again by the next wait, not in
 * this one's own enter (where it would complete at once, the event not yet
 * handled): it waits on the rearm list, which the next wait puts before its
 * changes.  Dirty there as on the change list, so a change made meanwhile
 * finds it queued already. */
static void mark_next(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    if (!e->dirty) {
        e->dirty = true;
        e->link = p->rearm;
        if (p->rearm == NIL)
            p->rearm_tail = i;
        p->rearm = i;
    }
}

static void enqueue(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    e->queued = true;
    e->next = NIL;
    e->prev = p->tail;
    if (p->tail != NIL)
        p->entries[p->tail].next = i;
    else
        p->head = i;
    p->tail = i;
}

static void dequeue(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    if (!e->queued)
        return;
    if (e->prev != NIL)
        p->entries[e->prev].next = e->next;
    else
        p->head = e->next;
    if (e->next != NIL)
        p->entries[e->next].prev = e->prev;
    else
        p->tail = e->prev;
    e->queued = false;
    e->flags = 0;
}

/* Whether a completion of request `seq` is older than what e stands for. */
static bool stale(const struct entry *e, uint32_t seq)
{
    return ((seq - e->since) & SEQ_MASK) >= (SEQ_MASK >> 1);
}

static uint64_t user_data(uint32_t i, uint32_t seq)
{
    return (uint64_t)seq << 32 | i;
}

/* Makes the request in force stale: the next one is asked afresh. */
static inline void renew(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    if (e->live)
        e->cancel = true;
    e->key = NO_KEY;
    e->since = (e->seq + 1) & SEQ_MASK;
    dequeue(p, i);
    mark(p, i);
}

/* Takes entry i out of service: its requests are cancelled, their
 * completions dropped, and the entry freed once the last one is in. */
static void retire(struct uring_poll *p, uint32_t i)
{
    struct entry *e = &p->entries[i];
    dequeue(p, i);
    e->key = NO_KEY;
    e->kind = K_GONE;
    e->armed = false;
    if (e->live)
        e->cancel = true;
    if (e->cancel) {    /* counted until the cancel is written */
        p->held++;
        atomic_fetch_add_explicit(&held_total, 1, memory_order_relaxed);
    }
    mark(p, i);
}

/* A change was made while a wait may be in the kernel: bring it out. */
static void kick(struct uring_poll *p)
{
    if (p->busy && !p->kicked) {
        p->kicked = true;
        (void)mio__wakefd_signal(p->wakefd);
    }
}

/* ---- the submission queue (under the lock, never while busy) ---- */

static unsigned publish(struct uring_poll *p)
{
    struct io_uring_sq *sq = &p->ring.sq;
    sq->sqe_head = sq->sqe_tail;
    io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
    return sq->sqe_tail - io_uring_smp_load_acquire(sq->khead);
}

static int enter(struct uring_poll *p, unsigned submit, unsigned wait, unsigned flags,
                 struct io_uring_getevents_arg *arg)
{
    return io_uring_enter2((unsigned)p->ring.ring_fd, submit, wait, flags, (sigset_t *)arg,
                           arg != NULL ? sizeof *arg : 0);
}

/* A free SQE; with the queue full, what is in it is submitted first.  NULL
 * if the kernel takes nothing (the change then waits for the next wait). */
static struct io_uring_sqe *get_sqe_full(struct uring_poll *p)
{
    struct io_uring_sqe *sqe;
    int tries = 0;

    while ((sqe = io_uring_get_sqe(&p->ring)) == NULL) {
        unsigned pending = publish(p);
        int r = enter(p, pending, 0, IORING_ENTER_GETEVENTS, NULL);
        if (r <= 0 && ++tries > 3)
            return NULL;
    }
    return sqe;
}

HOT struct io_uring_sqe *get_sqe(struct uring_poll *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
    return MIO_LIKELY(sqe != NULL) ? sqe : get_sqe_full(p);
}

/* Cancels request `ud` at once, through io_uring_register, for a thread
 * that does not wait on the poll.  A cancel submitted as an SQE would make
 * that thread the target of the ring's task work, which cuts the thread's
 * own blocking calls short (its other polls' waits return EINTR).  False
 * where the kernel lacks it (before Linux 6.0): the caller submits one. */
static atomic_int no_sync_cancel;

static bool cancel_sync(struct uring_poll *p, uint64_t ud)
{
    struct io_uring_sync_cancel_reg reg;
    int r;

    if (atomic_load_explicit(&no_sync_cancel, memory_order_relaxed))
        return false;
    memset(&reg, 0, sizeof reg);
    reg.addr = ud;
    reg.fd = -1;
    reg.timeout.tv_sec = -1;    /* no limit: a poll request is never in flight elsewhere */
    reg.timeout.tv_nsec = -1;
    r = io_uring_register_sync_cancel(&p->ring, &reg);
    if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP) {
        atomic_store_explicit(&no_sync_cancel, 1, memory_order_relaxed);
        return false;
    }
    return true;    /* 0, or ENOENT: it had completed already */
}

/* Turns the change list into SQEs: cancels, and (for the waiting thread)
 * the requests to add.  Returns how many SQEs are queued, not submitted. */
static unsigned flush(struct uring_poll *p, bool waiter)
{
    uint32_t i = p->changes, keep = NIL;

    p->changes = NIL;
    while (i != NIL) {
        struct entry *e = &p->entries[i];
        uint32_t next = e->link;
        struct io_uring_sqe *sqe;

        if (e->cancel) {
            if (e->live) {
                uint64_t ud = user_data(i, e->seq);
                if (waiter || !cancel_sync(p, ud)) {
                    if ((sqe = get_sqe(p)) == NULL)
                        goto full;
                    io_uring_prep_cancel64(sqe, ud, 0);
                    sqe->user_data = UD_CANCEL;
                    /* Its request's own last completion says enough: a
                     * deregistration of many costs half the CQEs, and far
                     * less overflows the ring. */
                    if (p->skip)
                        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
                }
                e->live = false;
            }
            e->cancel = false;
            if (e->kind == K_GONE) {
                p->held--;
                atomic_fetch_sub_explicit(&held_total, 1, memory_order_relaxed);
            }
        }
        if (e->kind == K_GONE) {
            e->dirty = false;
            if (e->inflight == 0)
                entry_free(p, i);
        } else if (!waiter) {
            e->link = keep;     /* the waiter adds it */
            keep = i;
        } else {
            if (e->armed && !e->live && !e->dead) {
                uint32_t seq = (e->seq + 1) & SEQ_MASK;
                uint64_t ud = user_data(i, seq);
                if ((sqe = get_sqe(p)) == NULL)
                    goto full;
                if (e->mode == M_EDGE)
                    io_uring_prep_poll_multishot(sqe, e->fd, e->mask);
                else
                    io_uring_prep_poll_add(sqe, e->fd, e->mask);
                sqe->user_data = ud;
                if (e->kind == K_FD)
                    e->key = ud;
                /* Every earlier request has completed or was cancelled (and
                 * made stale then): only this one is current.  Without this
                 * a level registration asked again at every wait would
                 * drift out of the window stale() allows. */
                e->since = seq;
                e->seq = seq;
                e->live = true;
                e->inflight++;
            }
            e->dirty = false;
        }
        i = next;
        continue;
full:
        /* The kernel took nothing more: the rest waits for the next wait. */
        while (i != NIL) {
            next = p->entries[i].link;
            p->entries[i].link = keep;
            keep = i;
            i = next;
        }
        break;
    }
    p->changes = keep;
    return publish(p);
}

/* ---- completions ---- */

/* The readiness a completion's poll mask `res` says, as epoll.c decodes it;
 * a pipe whose reader is gone (POLLERR on a FIFO) is also WRITE_CLOSED. */
static uint32_t decode(const struct entry *e, uint32_t res)
{
    uint32_t m = res & (e->mask | POLLERR | POLLHUP);
    uint32_t r = m & (POLLIN | POLLPRI | POLLOUT | POLLERR);

    if (m & (POLLHUP | POLLRDHUP))
        r |= MIO_READ_CLOSED;
    if ((m & POLLHUP) || ((m & POLLERR) && e->fifo))
        r |= MIO_WRITE_CLOSED;
    return r;
}

/* Entry i is reported at events[n]. */
HOT void reported(struct uring_poll *p, uint32_t i, uint32_t n)
{
    struct entry *e = &p->entries[i];
    e->batch = p->batch;
    e->at = n;
    if (e->mode == M_LEVEL && e->armed && !e->live)
        mark_next(p, i);
}

/* `multishot`: i's request in force goes on (an edge), nothing to ask again. */
HOT size_t report_as(struct uring_poll *p, uint32_t i, uint32_t flags, mio_event *events,
                     size_t cap, size_t n, bool multishot)
{
    struct entry *e = &p->entries[i];

    if (MIO_LIKELY(!e->queued && e->batch != p->batch && n < cap)) {
        events[n].token = e->token;
        events[n].flags = flags;
        if (multishot) {
            e->batch = p->batch;
            e->at = (uint32_t)n;
        } else {
            reported(p, i, (uint32_t)n);
        }
        n++;
    } else if (e->queued) {
        e->flags |= flags;
    } else if (e->batch == p->batch) {
        events[e->at].flags |= flags;   /* once per batch */
    } else {
        e->flags = flags;
        enqueue(p, i);
    }
    return n;
}

HOT size_t report(struct uring_poll *p, uint32_t i, uint32_t flags, mio_event *events,
                  size_t cap, size_t n)
{
    return report_as(p, i, flags, events, cap, n, false);
}

/* A completion of K_FD entry i's request in force, with the poll mask res;
 * `more` (IORING_CQE_F_MORE): a multishot request that goes on. */
HOT size_t readiness(struct uring_poll *p, uint32_t i, uint32_t res, bool more,
                     mio_event *events, size_t cap, size_t n)
{
    struct entry *e = &p->entries[i];
    uint32_t flags;

    if (MIO_LIKELY(!(res & (POLLERR | POLLHUP | POLLRDHUP))))
        flags = res & e->mask & (POLLIN | POLLPRI | POLLOUT);   /* decode's result then */
    else
        flags = decode(e, res);
    if (more)
        return flags != 0 ? report_as(p, i, flags, events, cap, n, true) : n;
    /* Its last completion: a multishot request ended by itself is asked
     * again, and so is a single-shot one that found nothing asked for. */
    if (!e->live && e->armed && (e->mode == M_EDGE || flags == 0))
        mark(p, i);
    if (flags == 0)
        return n;
    if (e->mode == M_ONESHOT)
        e->armed = false;
    return report(p, i, flags, events, cap, n);
}

static __attribute__((noinline)) size_t
complete(struct uring_poll *p, const struct io_uring_cqe *cqe, mio_event *events, size_t cap,
         size_t n)
{
    uint64_t ud = cqe->user_data;
    uint32_t i = (uint32_t)ud, seq = (uint32_t)(ud >> 32);
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    struct entry *e;

    if ((ud & UD_CANCEL) || i >= p->count)
        return n;
    e = &p->entries[i];
    if (!more) {
        e->inflight--;
        if (e->live && seq == e->seq) {
            e->live = false;
            e->key = NO_KEY;
        }
    }
    if (e->kind == K_GONE) {
        if (e->inflight == 0 && !e->dirty)
            entry_free(p, i);
        return n;
    }
    if (e->kind == K_FREE || stale(e, seq))
        return n;
    if (cqe->res < 0) {
        /* EBADF: the descriptor was closed before the request was submitted;
         * ECANCELED: the kernel dropped it (the thread that submitted it
         * exited); anything else (ENOMEM) is worth asking again. */
        if (cqe->res == -EBADF)
            e->dead = true;
        else if (e->armed && !e->live)
            mark(p, i);
        return n;
    }
    if (e->kind == K_NOTIFY) {
        if (e->armed && !e->live)
            mark(p, i);     /* its multishot request ended by itself */
        p->notified = true;
        return n;
    }
    return readiness(p, i, (uint32_t)cqe->res, more && e->live && e->mode == M_EDGE, events, cap,
                     n);
}

static bool cq_overflow(const struct uring_poll *p)
{
    return (IO_URING_READ_ONCE(*p->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0;
}

/* Reads the completions in the ring (16-byte CQEs: no IORING_SETUP_CQE32).
 * A completion of the request in force of an entry that nothing changed
 * since it was asked (its key) needs no check but its own mask; the rest go
 * the long way.  Nothing here moves the table. */
HOT size_t drain_cq(struct uring_poll *p, mio_event *events, size_t cap, size_t n,
                    unsigned *seen)
{
    struct io_uring_cq *cq = &p->ring.cq;
    unsigned head = *cq->khead, tail = io_uring_smp_load_acquire(cq->ktail), k;
    const struct io_uring_cqe *cqes = cq->cqes;
    const unsigned ring_mask = cq->ring_mask;
    struct entry *const entries = p->entries;
    const uint32_t count = p->count;

    if (head == tail)
        return n;
    for (k = head; k != tail; k++) {
        const struct io_uring_cqe *cqe = &cqes[k & ring_mask];
        uint64_t ud = cqe->user_data;
        uint32_t i = (uint32_t)ud;
        struct entry *e;

        if (MIO_UNLIKELY(i >= count || (e = &entries[i])->key != ud || cqe->res < 0)) {
            n = complete(p, cqe, events, cap, n);
            continue;
        }
        if (MIO_LIKELY(cqe->flags & IORING_CQE_F_MORE)) {
            n = readiness(p, i, (uint32_t)cqe->res, true, events, cap, n);
            continue;
        }
        e->inflight--;
        e->live = false;
        e->key = NO_KEY;
        n = readiness(p, i, (uint32_t)cqe->res, false, events, cap, n);
    }
    io_uring_smp_store_release(cq->khead, tail);
    *seen += tail - head;
    return n;
}

/* What overflowed the ring: the kernel flushes it into the ring on enter. */
static size_t harvest_overflow(struct uring_poll *p, mio_event *events, size_t cap, size_t n,
                               unsigned *seen)
{
    int rounds = 0;

    do {
        (void)enter(p, 0, 0, IORING_ENTER_GETEVENTS, NULL);
        n = drain_cq(p, events, cap, n, seen);
    } while (cq_overflow(p) && ++rounds < 4);
    return n;
}

/* Reads every completion there is, and what overflowed the ring. */
HOT size_t harvest(struct uring_poll *p, mio_event *events, size_t cap, size_t n, unsigned *seen)
{
    n = drain_cq(p, events, cap, n, seen);
    if (MIO_UNLIKELY(cq_overflow(p)))
        n = harvest_overflow(p, events, cap, n, seen);
    return n;
}

/* The ready list first: what did not fit the caller's room before. */
static size_t take_ready_all(struct uring_poll *p, mio_event *events, size_t cap, size_t n)
{
    while (n < cap && p->head != NIL) {
        uint32_t i = p->head;
        uint32_t flags = p->entries[i].flags;
        dequeue(p, i);
        events[n].token = p->entries[i].token;
        events[n].flags = flags;
        reported(p, i, (uint32_t)n);
        n++;
    }
    return n;
}

static inline size_t take_ready(struct uring_poll *p, mio_event *events, size_t cap, size_t n)
{
    return p->head == NIL ? n : take_ready_all(p, events, cap, n);
}

static pid_t thread_id(void)
{
    static _Thread_local pid_t tid;
    if (tid == 0)
        tid = (pid_t)syscall(SYS_gettid);
    return tid;
}

/* This thread waits where another did: its requests are asked again from
 * here (that thread may exit, and its requests with it). */
static void adopt(struct uring_poll *p, pid_t self)
{
    uint32_t i;

    for (i = 0; i < p->count; i++) {
        struct entry *e = &p->entries[i];
        if (e->kind != K_FREE && e->kind != K_GONE && e->live)
            renew(p, i);
    }
    p->owner = self;
}

/* ---- the backend ---- */

static int ur_init(mio_poll *base)
{
    struct uring_poll *p = (struct uring_poll *)base;
    struct io_uring_params params;
    const unsigned need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_RSRC_TAGS;
    unsigned k;
    int err;

    /* COOP_TASKRUN: completions become CQEs when this process next enters
     * the kernel, rather than by interrupting the thread that submitted
     * the request at once; that interruption (a signal-like kick per
     * wake-up) halves an echo server's throughput. */
    memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL |
                   IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    params.cq_entries = CQ_ENTRIES;
    err = io_uring_queue_init_params(SQ_ENTRIES, &p->ring, &params);
    if (err == -EINVAL) {   /* before Linux 5.19 */
        memset(&params, 0, sizeof params);
        params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        params.cq_entries = CQ_ENTRIES;
        err = io_uring_queue_init_params(SQ_ENTRIES, &p->ring, &params);
    }
    if (err < 0)
        return err == -EINVAL ? MIO_ENOSYS : err;   /* EPERM, ENOSYS, EMFILE, ENOMEM */
    p->taskrun = (params.flags & IORING_SETUP_TASKRUN_FLAG) != 0;
    p->skip = (params.features & IORING_FEAT_CQE_SKIP) != 0;   /* Linux 5.17 */
    /* Multishot polls, poll updates and tagged resources came together
     * (5.13); the nanosecond wait (EXT_ARG) and lossless completions before. */
    if ((params.features & need) != need) {
        io_uring_queue_exit(&p->ring);
        return MIO_ENOSYS;
    }
    /* The contract: every descriptor the library creates is non-blocking.
     * io_uring_enter does not look at it. */
    if (fcntl(p->ring.ring_fd, F_SETFL, O_NONBLOCK) < 0) {
        err = mio__err();
        io_uring_queue_exit(&p->ring);
        return err;
    }
    for (k = 0; k < p->ring.sq.ring_entries; k++)
        p->ring.sq.array[k] = k;

    p->free = p->changes = p->rearm = p->rearm_tail = p->head = p->tail = NIL;
    p->entries = NULL;
    p->count = p->cap = 0;
    p->batch = 1;
    {
        struct mio_wakefd wf;
        if ((err = mio__wakefd_open(&wf)) < 0) {
            io_uring_queue_exit(&p->ring);
            return err;
        }
        p->wakefd = wf.rfd;
    }
    if ((p->notify = entry_new(p)) == NIL) {
        struct mio_wakefd wf = { p->wakefd, p->wakefd };
        mio__wakefd_close(&wf);
        io_uring_queue_exit(&p->ring);
        return MIO_ENOMEM;
    }
    p->entries[p->notify].kind = K_NOTIFY;
    p->entries[p->notify].fd = p->wakefd;
    p->entries[p->notify].mask = POLLIN;
    p->entries[p->notify].armed = true;
    mark(p, p->notify);     /* submitted by the first wait */
    atomic_init(&p->lock, 0);

    mio_mutex_lock(&polls_lock);
    p->prev_poll = NULL;
    p->next_poll = polls;
    if (polls != NULL)
        polls->prev_poll = p;
    polls = p;
    mio_mutex_unlock(&polls_lock);
    return 0;
}

static void ur_fini(mio_poll *base)
{
    struct uring_poll *p = (struct uring_poll *)base;
    struct mio_wakefd wf = { p->wakefd, p->wakefd };

    mio_mutex_lock(&polls_lock);
    if (p->prev_poll != NULL)
        p->prev_poll->next_poll = p->next_poll;
    else
        polls = p->next_poll;
    if (p->next_poll != NULL)
        p->next_poll->prev_poll = p->prev_poll;
    atomic_fetch_sub_explicit(&held_total, p->held, memory_order_relaxed);
    mio_mutex_unlock(&polls_lock);
    /* Closing the ring cancels every request (the kernel lets go of their
     * files shortly after). */
    io_uring_queue_exit(&p->ring);
    mio__wakefd_close(&wf);
    mio__free(p->entries);
}

/* r's entry, or NIL. */
static uint32_t entry_of(const struct uring_poll *p, const struct mio_fdrec *r)
{
    size_t i = r->slot - 1;
    return r->slot != 0 && i < p->count && p->entries[i].kind == K_FD ? (uint32_t)i : NIL;
}

static uint32_t to_poll(uint32_t interest)
{
    uint32_t m = interest & (MIO_READABLE | MIO_PRIORITY | MIO_WRITABLE);
    if (interest & MIO_READABLE)
        m |= POLLRDHUP;
    /* io_uring leaves POLLPRI out when it matches a wake-up against the
     * mask, and urgent data wakes with POLLIN|POLLPRI|POLLRDBAND: asking
     * for POLLRDBAND too lets that wake-up through (sockets never report
     * it, so it adds nothing to what completes the request). */
    if (interest & MIO_PRIORITY)
        m |= POLLRDBAND;
    return m;
}

/* Entry i asks for token and interest from the next wait on. */
static inline void set_interest(struct uring_poll *p, uint32_t i, mio_token token, uint32_t interest)
{
    struct entry *e = &p->entries[i];
    e->token = token;
    e->interest = interest;
    e->mask = to_poll(interest);
    e->mode = (interest & MIO_ONESHOT) ? M_ONESHOT : (interest & MIO_LEVEL) ? M_LEVEL : M_EDGE;
    e->armed = true;
    renew(p, i);
}

/* fd's file, or MIO_EBADF when fd is closed. */
static int identify(mio_fd fd, struct stat *st)
{
    if (fstat(fd, st) < 0) {
        if (errno == EBADF)
            return MIO_EBADF;
        memset(st, 0, sizeof *st);
    }
    return 0;
}

static int ur_add(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest,
                  bool again)
{
    struct uring_poll *p = (struct uring_poll *)base;
    struct stat st;
    uint32_t i;
    int err = identify(r->fd, &st);

    if (err < 0)
        return err;
    lock(p);
    i = again ? entry_of(p, r) : NIL;
    if (i != NIL && !p->entries[i].dead && p->entries[i].dev == st.st_dev &&
        p->entries[i].ino == st.st_ino) {
        err = MIO_EEXIST;
    } else {
        /* New, or the number was closed behind our back and now names
         * another file, which takes the entry over. */
        if (i == NIL && (i = entry_new(p)) == NIL) {
            err = MIO_ENOMEM;
        } else {
            struct entry *e = &p->entries[i];
            e->kind = K_FD;
            e->fd = r->fd;
            e->dev = st.st_dev;
            e->ino = st.st_ino;
            e->fifo = S_ISFIFO(st.st_mode);
            e->dead = false;
            r->slot = (size_t)i + 1;
            set_interest(p, i, token, interest);
            mio__rec_set(r, token, interest);
            kick(p);
        }
    }
    unlock(p);
    return err;
}

/* No system call: a reregister of a descriptor closed behind the library's
 * back is refused once the kernel said so (its request failed EBADF). */
static int ur_mod(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    struct uring_poll *p = (struct uring_poll *)base;
    uint32_t i;
    int err = 0;

    lock(p);
    i = entry_of(p, r);
    if (i == NIL || p->entries[i].dead) {
        err = mio__unix_fd_unknown(r->fd);
    } else {
        set_interest(p, i, token, interest);
        mio__rec_set(r, token, interest);
        kick(p);
    }
    unlock(p);
    return err;
}

/* Goes in every case; says MIO_EBADF for a descriptor closed behind our back
 * and MIO_ENOENT if its number now names another file. */
static int ur_del(mio_poll *base, struct mio_fdrec *r)
{
    struct uring_poll *p = (struct uring_poll *)base;
    struct stat st;
    uint32_t i;
    int err = identify(r->fd, &st);

    lock(p);
    i = entry_of(p, r);
    if (i != NIL) {
        const struct entry *e = &p->entries[i];
        if (err == 0 && (e->dead || e->dev != st.st_dev || e->ino != st.st_ino))
            err = MIO_ENOENT;
        retire(p, i);
        kick(p);
    } else if (err == 0) {
        err = MIO_ENOENT;
    }
    r->slot = 0;
    unlock(p);
    return err;
}

/* Writes and submits the cancels of retired entries now, unless a waiter
 * is busy (it is kicked instead, and submits them itself). */
static void cancel_now(struct uring_poll *p)
{
    if (p->busy) {
        kick(p);
        return;
    }
    if (flush(p, false) != 0)
        (void)enter(p, p->ring.sq.sqe_tail - io_uring_smp_load_acquire(p->ring.sq.khead), 0, 0,
                    NULL);
}

/* mio_close is about to close r's descriptor: the request goes at once, so
 * that the close closes the file. */
static void ur_forget(mio_poll *base, struct mio_fdrec *r)
{
    struct uring_poll *p = (struct uring_poll *)base;
    uint32_t i;

    lock(p);
    if ((i = entry_of(p, r)) != NIL) {
        retire(p, i);
        cancel_now(p);
    }
    r->slot = 0;
    unlock(p);
}

/* mio_close is about to close fd, deregistered already: a cancel still
 * queued for it goes now. */
static void ur_release(mio_fd fd)
{
    struct uring_poll *p;

    if (atomic_load_explicit(&held_total, memory_order_relaxed) == 0)
        return;
    mio_mutex_lock(&polls_lock);
    for (p = polls; p != NULL; p = p->next_poll) {
        uint32_t i;
        lock(p);
        for (i = p->held != 0 ? p->changes : NIL; i != NIL; i = p->entries[i].link) {
            const struct entry *e = &p->entries[i];
            if (e->kind == K_GONE && e->cancel && e->fd == fd) {
                cancel_now(p);
                break;
            }
        }
        unlock(p);
    }
    mio_mutex_unlock(&polls_lock);
}

static int ur_wait(mio_poll *base, mio_event *events, size_t cap, int64_t timeout_ns)
{
    struct uring_poll *p = (struct uring_poll *)base;
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    unsigned submit, wait, flags = 0, seen = 0;
    pid_t self = thread_id();
    int64_t start = 0;
    size_t n;
    int r;

    lock(p);
    p->batch++;
    p->notified = false;
    if (p->rearm != NIL) {
        p->entries[p->rearm_tail].link = p->changes;
        p->changes = p->rearm;
        p->rearm = NIL;
    }
    n = take_ready(p, events, cap, 0);
    n = harvest(p, events, cap, n, &seen);
    if (p->owner != self)
        adopt(p, self);
    /* Without changes, only what an earlier enter left unsubmitted. */
    submit = p->changes != NIL ? flush(p, true)
                               : p->ring.sq.sqe_tail - io_uring_smp_load_acquire(p->ring.sq.khead);
    /* A wake-up's completion taken here (its task work ran on the way in,
     * after the caller announced its sleep) is the wake-up itself: the
     * kernel has nothing more to say of it, so blocking would lose it. */
    wait = n == 0 && p->head == NIL && timeout_ns != 0 && !p->notified;
    if (submit == 0 && !wait &&
        (n > 0 || (p->taskrun && !(IO_URING_READ_ONCE(*p->ring.sq.kflags) & IORING_SQ_TASKRUN)))) {
        unlock(p);
        return (int)n;      /* nothing to tell the kernel, nothing to wait for or run */
    }
    p->busy = true;
    p->kicked = false;
    unlock(p);

    if (wait || n == 0)
        flags |= IORING_ENTER_GETEVENTS;
    if (wait && timeout_ns > 0) {
        ts.tv_sec = timeout_ns / MIO_SEC;
        ts.tv_nsec = timeout_ns % MIO_SEC;
        memset(&arg, 0, sizeof arg);
        arg.ts = (uint64_t)(uintptr_t)&ts;
        flags |= IORING_ENTER_EXT_ARG;
        if (submit != 0)
            start = mio__now_ns();
    }
    r = enter(p, submit, wait, flags, (flags & IORING_ENTER_EXT_ARG) ? &arg : NULL);

    lock(p);
    p->busy = false;
    seen = 0;
    n = harvest(p, events, cap, n, &seen);
    n = take_ready(p, events, cap, n);
    unlock(p);

    if (n > 0)
        return (int)n;
    if (r == -EINTR)
        return MIO_EINTR;
    /* An enter that submitted says how many it took, not why its wait
     * ended: with nothing completed, before the timeout, a signal. */
    if (wait && submit != 0 && r == (int)submit && seen == 0 &&
        (timeout_ns < 0 || mio__now_ns() - start < timeout_ns))
        return MIO_EINTR;
    if (r < 0 && r != -ETIME && r != -EAGAIN && r != -EBUSY)
        return r;
    return 0;
}

static int ur_notify(mio_poll *base)
{
    return mio__wakefd_signal(((struct uring_poll *)base)->wakefd);
}

const struct mio_backend mio__backend_uring = {
    .name = "uring",
    .size = sizeof(struct uring_poll),
    .init = ur_init,
    .fini = ur_fini,
    .add = ur_add,
    .mod = ur_mod,
    .del = ur_del,
    .unknown = mio__unix_fd_unknown,
    .wait = ur_wait,
    .notify = ur_notify,
    .forget = ur_forget,
    .release = ur_release,
};
