/* The poll(2) backend: the portable fallback for Unixes without epoll or
 * kqueue.
 *
 * The poll keeps the array the kernel reads (`pfds`) and a parallel array of
 * what each slot means (`entries`); a registration's record (registry.h)
 * remembers its slot, so that add, mod and del are O(1) (delete swaps the
 * last slot in).  Slot 0 is the internal wake-up descriptor used by notify.
 *
 * poll(2) has no edge trigger and no oneshot, so both are emulated by taking
 * directions out of a slot's `events` after reporting them: oneshot until mod,
 * edge until a libmio call drains that direction (the registry then calls
 * rearm).  Hang-up and error are reported whatever `events` says, which gives
 * edge registrations their "the peer went away" event for free, but they
 * stay true: once reported, the slot is muted (a negative fd, which poll(2)
 * skips) until it is re-armed.  A descriptor closed behind the library's back
 * (POLLNVAL) is muted for good; its record goes with the next call on it.
 *
 * Other threads may register while one thread sits in poll(2), but the kernel
 * reads the arrays for the whole call, and growing them would free them under
 * it.  So a change first brings the waiter out: it counts itself in
 * `changers`, signals the wake-up descriptor and waits until the waiter has
 * left the kernel; the waiter in turn waits until every counted change is
 * applied before it reads revents, then returns (0 events if that is all
 * there was) and poll.c calls wait again with the new arrays. */
#include "../registry.h"
#include "wakefd.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#define HAVE_PPOLL 1
#endif

/* Linux says when the peer shut its writing side only if asked. */
#ifdef POLLRDHUP
#define RDHUP POLLRDHUP
#else
#define RDHUP 0
#endif

enum entry_kind { ENTRY_FD, ENTRY_NOTIFY, ENTRY_DEAD };

/* Which file a descriptor is: a number closed behind the library's back
 * and reused names another one. */
struct file_id {
    dev_t dev;
    ino_t ino;
};

struct entry {
    struct mio_fdrec *rec;  /* ENTRY_FD, ENTRY_DEAD: its registration */
    struct file_id id;      /* ENTRY_FD: its file, taken at add */
    int fd;                 /* the descriptor, also while pfds[i].fd is disabled */
    uint32_t armed;         /* directions the kernel is asked about now */
    bool muted;             /* out of the kernel's view until re-armed */
    enum entry_kind kind;
};

struct pollfd_poll {
    mio_poll base;
    pthread_mutex_t lock;       /* guards everything below but `wake` */
    pthread_cond_t changed;     /* the waiter left poll(2), or changes are done */
    bool polling;               /* the waiter is inside poll(2) */
    unsigned changers;          /* threads changing, or waiting to */
    struct pollfd *pfds;
    struct entry *entries;
    size_t count, cap;
    size_t next;                /* where the next scan of ready slots starts */
    struct mio_wakefd wake;
};

static short to_poll(uint32_t armed)
{
    short ev = 0;
    if (armed & MIO_READABLE)
        ev |= POLLIN | RDHUP;
    if (armed & MIO_PRIORITY)
        ev |= POLLPRI;
    if (armed & MIO_WRITABLE)
        ev |= POLLOUT;
    return ev;
}

/* POLLERR without POLLHUP: a pending error on a socket (which works on), or
 * a pipe whose reader is gone.  A system call, on this path only. */
static bool is_pipe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* The readiness epoll.c reports for the same situation, but that a pipe
 * whose reader is gone is also MIO_WRITE_CLOSED here. */
static uint32_t from_poll(int fd, short re, uint32_t interest)
{
    uint32_t r = 0;
    if (re & POLLIN)
        r |= interest & MIO_READABLE;
    if (re & POLLPRI)
        r |= interest & MIO_PRIORITY;
    if (re & POLLOUT)
        r |= interest & MIO_WRITABLE;
    if (re & POLLERR)
        r |= MIO_ERROR;
    if (re & (POLLHUP | RDHUP))
        r |= MIO_READ_CLOSED;
    if ((re & POLLHUP) || ((re & POLLERR) && is_pipe(fd)))
        r |= MIO_WRITE_CLOSED;
    return r;
}

/* Uses up what a report of revents `re` told an edge or oneshot registration
 * (directions drained since they were armed stay armed: see registry.h).
 * Hang-up and error stay true until the fd is dealt with, and poll(2) reports
 * them whatever `events` says: after them, nothing is left to wait for. */
static void disarm(struct entry *e, short re)
{
    uint32_t dirs = 0;

    if (e->rec->interest & MIO_ONESHOT) {
        e->armed = 0;
        e->muted = true;
        return;
    }
    if (re & (POLLHUP | POLLERR))
        dirs = e->rec->interest & MIO_INTERESTS;
    if (re & (POLLIN | RDHUP))
        dirs |= MIO_READABLE;
    if (re & POLLPRI)
        dirs |= MIO_PRIORITY;
    if (re & POLLOUT)
        dirs |= MIO_WRITABLE;
    e->armed &= ~mio__rec_reported(e->rec, dirs);
    if ((re & (POLLHUP | POLLERR)) && e->armed == 0)
        e->muted = true;
}

/* Makes slot i ask the kernel for exactly its armed directions.  An edge slot
 * with none stays in view (events 0) to hear of hang-up and error. */
static void sync_slot(struct pollfd_poll *p, size_t i)
{
    const struct entry *e = &p->entries[i];
    p->pfds[i].fd = e->muted ? -1 : e->fd;
    p->pfds[i].events = to_poll(e->armed);
    p->pfds[i].revents = 0;
}

/* r's slot, or 0 if it has none (any more). */
static size_t slot_of(const struct pollfd_poll *p, const struct mio_fdrec *r)
{
    return r->slot != 0 && r->slot < p->count && p->entries[r->slot].rec == r ? r->slot : 0;
}

/* ---- changes while another thread may be inside poll(2) ---- */

/* With the lock held: returns once the waiter is out of the kernel; it then
 * stays out until resume_waiter. */
static void pause_waiter(struct pollfd_poll *p)
{
    p->changers++;
    if (p->polling) {
        (void)mio__wakefd_signal(p->wake.wfd);
        while (p->polling)
            pthread_cond_wait(&p->changed, &p->lock);
    }
}

static void resume_waiter(struct pollfd_poll *p)
{
    if (--p->changers == 0)
        pthread_cond_broadcast(&p->changed);
}

/* Room for one more slot.  Called paused. */
static int reserve(struct pollfd_poll *p)
{
    if (p->count == p->cap) {
        size_t cap = p->cap != 0 ? 2 * p->cap : 8;
        struct pollfd *pfds;
        struct entry *entries;
        if ((pfds = mio__realloc(p->pfds, cap * sizeof *pfds)) == NULL)
            return MIO_ENOMEM;
        p->pfds = pfds;
        if ((entries = mio__realloc(p->entries, cap * sizeof *entries)) == NULL)
            return MIO_ENOMEM;
        p->entries = entries;
        p->cap = cap;
    }
    return 0;
}

/* (Re)starts slot i with every direction of `interest` armed. */
static void arm(struct pollfd_poll *p, size_t i, uint32_t interest)
{
    struct entry *e = &p->entries[i];
    e->armed = interest & MIO_INTERESTS;
    e->muted = false;
    sync_slot(p, i);
}

/* A new slot for fd: a registration's (rec) or the library's own. */
static int append(struct pollfd_poll *p, int fd, enum entry_kind kind, struct mio_fdrec *rec)
{
    int err = reserve(p);
    if (err < 0)
        return err;
    p->entries[p->count].fd = fd;
    p->entries[p->count].kind = kind;
    p->entries[p->count].rec = rec;
    if (rec != NULL)
        rec->slot = p->count;
    arm(p, p->count, rec != NULL ? rec->interest : MIO_READABLE);
    p->count++;
    return 0;
}

static void remove_slot(struct pollfd_poll *p, size_t i)
{
    size_t last = --p->count;
    if (p->entries[i].rec != NULL)
        p->entries[i].rec->slot = 0;
    if (i != last) {
        p->pfds[i] = p->pfds[last];     /* revents travel along */
        p->entries[i] = p->entries[last];
        if (p->entries[i].rec != NULL)
            p->entries[i].rec->slot = i;
    }
}

/* ---- the backend ---- */

static int pp_init(mio_poll *base)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    int err;

    p->wake.rfd = p->wake.wfd = -1;
    if ((err = -pthread_mutex_init(&p->lock, NULL)) < 0)
        return err;
    if ((err = -pthread_cond_init(&p->changed, NULL)) < 0)
        goto fail_lock;
    if ((err = mio__wakefd_open(&p->wake)) < 0)
        goto fail_cond;
    if ((err = append(p, p->wake.rfd, ENTRY_NOTIFY, NULL)) < 0)
        goto fail_all;
    return 0;

fail_all:
    mio__free(p->pfds);
    mio__free(p->entries);
    mio__wakefd_close(&p->wake);
fail_cond:
    pthread_cond_destroy(&p->changed);
fail_lock:
    pthread_mutex_destroy(&p->lock);
    return err;
}

static void pp_fini(mio_poll *base)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    mio__free(p->pfds);
    mio__free(p->entries);
    mio__wakefd_close(&p->wake);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
}

/* Takes slot i out of the array, the waiter kept out of poll(2) meanwhile.
 * Under the lock. */
static void drop_slot(struct pollfd_poll *p, size_t i)
{
    pause_waiter(p);
    remove_slot(p, i);
    resume_waiter(p);
}

/* mio_close is about to close r's descriptor. */
static void pp_forget(mio_poll *base, struct mio_fdrec *r)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    size_t i;

    pthread_mutex_lock(&p->lock);
    if ((i = slot_of(p, r)) != 0)
        drop_slot(p, i);
    pthread_mutex_unlock(&p->lock);
}

/* fd's file, or MIO_EBADF when fd is closed: epoll forgets a closed fd by
 * itself and refuses it with EBADF, and so does this backend. */
static int identify(mio_fd fd, struct file_id *id)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        if (errno == EBADF)
            return MIO_EBADF;
        memset(&st, 0, sizeof st);
    }
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    return 0;
}

/* Slot i no longer stands for the file it was registered for: the number
 * was closed behind our back and reused (poll(2) says POLLNVAL only while
 * the number is free, and a muted slot never hears even that).  Eventfds,
 * timerfds and epoll descriptors share one inode on Linux, so between those
 * a reuse goes unseen. */
static bool stale(const struct pollfd_poll *p, size_t i, const struct file_id *id)
{
    const struct entry *e = &p->entries[i];
    return e->kind == ENTRY_DEAD || e->id.dev != id->dev || e->id.ino != id->ino;
}

/* A record the registry already holds (again) stands unless its slot went
 * stale: then the file now behind the number takes the slot over. */
static int pp_add(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest,
                  bool again)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct file_id id;
    size_t i;
    int err = identify(r->fd, &id);

    if (err < 0)
        return err;
    pthread_mutex_lock(&p->lock);
    i = slot_of(p, r);
    if (again && i != 0 && !stale(p, i, &id)) {
        err = MIO_EEXIST;
    } else {
        pause_waiter(p);
        mio__rec_set(r, token, interest);
        if (i == 0 && (err = append(p, r->fd, ENTRY_FD, r)) == 0)
            i = p->count - 1;
        if (err == 0) {
            p->entries[i].kind = ENTRY_FD;
            p->entries[i].id = id;
            arm(p, i, interest);
        }
        resume_waiter(p);
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

/* mod re-arms everything, so readiness still present is reported at once,
 * as EPOLL_CTL_MOD does. */
static int pp_mod(mio_poll *base, struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct file_id id;
    int err = identify(r->fd, &id);
    size_t i;

    pthread_mutex_lock(&p->lock);
    i = slot_of(p, r);
    if (i == 0 || err < 0 || stale(p, i, &id)) {
        if (i != 0)
            drop_slot(p, i);
        if (err == 0)
            err = MIO_ENOENT;
    } else {
        pause_waiter(p);
        mio__rec_set(r, token, interest);
        arm(p, i, interest);
        resume_waiter(p);
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

static int pp_del(mio_poll *base, struct mio_fdrec *r)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct file_id id;
    int err = identify(r->fd, &id);
    size_t i;

    pthread_mutex_lock(&p->lock);
    if ((i = slot_of(p, r)) != 0) {
        /* A stale slot goes too, but fd itself was never registered. */
        if (err == 0 && stale(p, i, &id))
            err = MIO_ENOENT;
        drop_slot(p, i);
    } else if (err == 0) {
        err = MIO_ENOENT;
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

/* Directions drained since they were reported come back into view (called
 * by the waiting thread between waits).  Urgent data re-arms with reads. */
static void pp_rearm(mio_poll *base, struct mio_fdrec *r, uint32_t dirs)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    size_t i;

    pthread_mutex_lock(&p->lock);
    i = slot_of(p, r);
    if (i != 0 && p->entries[i].kind == ENTRY_FD) {
        struct entry *e = &p->entries[i];
        e->armed |= dirs & r->interest & MIO_INTERESTS;
        e->muted = false;
        sync_slot(p, i);
    }
    pthread_mutex_unlock(&p->lock);
}

/* poll(2) itself; the timeout never rounds down.  A clamped timeout returns
 * early, but with 0 events, and poll.c waits again for the rest. */
static int kernel_poll(struct pollfd *pfds, nfds_t n, int64_t timeout_ns)
{
#ifdef HAVE_PPOLL
    struct timespec ts;
    if (timeout_ns < 0)
        return ppoll(pfds, n, NULL, NULL);
    ts.tv_sec = timeout_ns / MIO_SEC > INT32_MAX ? INT32_MAX : (time_t)(timeout_ns / MIO_SEC);
    ts.tv_nsec = (long)(timeout_ns % MIO_SEC);
    return ppoll(pfds, n, &ts, NULL);
#else
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns / MIO_MSEC >= INT_MAX)
        ms = INT_MAX;
    else
        ms = (int)((timeout_ns + MIO_MSEC - 1) / MIO_MSEC);
    return poll(pfds, n, ms);
#endif
}

/* Turns `ready` slots with revents into at most cap events, starting where the
 * last scan stopped so that no slot starves when cap is smaller than the ready
 * set.  Slots left unreported keep their arming and come again next wait. */
static int collect(struct pollfd_poll *p, mio_event *events, size_t cap, int ready)
{
    size_t n = 0, i, seen;

    if (p->pfds[0].revents != 0) {
        ready--;
        mio__wakefd_drain(p->wake.rfd);
    }
    i = p->next >= 1 && p->next < p->count ? p->next : 1;
    for (seen = 1; seen < p->count && ready > 0 && n < cap; seen++) {
        struct entry *e = &p->entries[i];
        short re = p->pfds[i].revents;

        if (re != 0) {
            ready--;
            if (re & POLLNVAL) {
                /* Closed behind our back: out of view for good, as epoll
                 * forgets it; the slot goes with the next call on it. */
                if (e->kind == ENTRY_FD)
                    e->kind = ENTRY_DEAD;
                e->muted = true;
                sync_slot(p, i);
            } else if (e->kind == ENTRY_FD) {
                uint32_t interest = e->rec->interest;
                uint32_t flags = from_poll(e->fd, re, interest);
                if (flags != 0) {
                    events[n].token = e->rec->token;
                    events[n++].flags = flags;
                }
                if (!(interest & MIO_LEVEL) || (interest & MIO_ONESHOT))
                    disarm(e, re);
                sync_slot(p, i);
            }
        }
        if (++i == p->count)
            i = 1;
    }
    p->next = i;
    return (int)n;
}

static int pp_wait(mio_poll *base, mio_event *events, size_t cap, int64_t timeout_ns)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct pollfd *pfds;
    nfds_t count;
    int r, err = 0;

    pthread_mutex_lock(&p->lock);
    pfds = p->pfds;
    count = (nfds_t)p->count;
    p->polling = true;
    pthread_mutex_unlock(&p->lock);

    r = kernel_poll(pfds, count, timeout_ns);
    if (r < 0)
        err = mio__err();   /* before pthread calls can touch errno */

    pthread_mutex_lock(&p->lock);
    p->polling = false;
    if (p->changers > 0) {
        pthread_cond_broadcast(&p->changed);
        while (p->changers > 0)
            pthread_cond_wait(&p->changed, &p->lock);
    }
    if (r > 0)
        r = collect(p, events, cap, r);
    pthread_mutex_unlock(&p->lock);
    return r < 0 ? err : r;
}

static int pp_notify(mio_poll *base)
{
    return mio__wakefd_signal(((struct pollfd_poll *)base)->wake.wfd);
}

const struct mio_backend mio__backend_poll = {
    .name = "poll",
    .size = sizeof(struct pollfd_poll),
    .init = pp_init,
    .fini = pp_fini,
    .add = pp_add,
    .mod = pp_mod,
    .del = pp_del,
    .unknown = mio__unix_fd_unknown,
    .wait = pp_wait,
    .notify = pp_notify,
    .rearm = pp_rearm,
    .forget = pp_forget,
};
