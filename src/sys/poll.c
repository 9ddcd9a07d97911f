/* The poll(2) backend: the portable fallback for Unixes without epoll or
 * kqueue.
 *
 * The poll keeps the array the kernel reads (`pfds`), a parallel array of what
 * each slot means (`entries`) and a map from descriptor to slot, so that add,
 * mod and del are O(1) (delete swaps the last slot in).  Slot 0 is the
 * internal wake-up descriptor used by notify.
 *
 * poll(2) has no edge trigger and no oneshot, so both are emulated by taking
 * directions out of a slot's `events` after reporting them: oneshot until mod,
 * edge until a libmio I/O call on that fd says EAGAIN (rearm).  Hang-up and
 * error are reported whatever `events` says, which gives edge registrations
 * their "the peer went away" event for free, but they stay true: once
 * reported, the slot is muted (a negative fd, which poll(2) skips) until it is
 * re-armed.
 *
 * Other threads may register while one thread sits in poll(2), but the kernel
 * reads the arrays for the whole call, and growing them would free them under
 * it.  So a change first brings the waiter out: it counts itself in
 * `changers`, signals the wake-up descriptor and waits until the waiter has
 * left the kernel; the waiter in turn waits until every counted change is
 * applied before it reads revents, then returns (0 events if that is all
 * there was) and poll.c calls wait again with the new arrays. */
#include "../sys.h"

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

enum entry_kind { ENTRY_FD, ENTRY_WAKER, ENTRY_NOTIFY, ENTRY_DEAD };

/* What a descriptor refers to.  A muted slot is out of poll(2)'s view, so a
 * descriptor closed behind the library's back is not noticed there (no
 * POLLNVAL); if its number is then reused, the identity tells the new file
 * from the registered one. */
struct file_id {
    dev_t dev;
    ino_t ino;
};

struct entry {
    mio_token token;
    int fd;             /* the descriptor, also while pfds[i].fd is disabled */
    struct file_id id;  /* of an ENTRY_FD, taken at add */
    uint32_t interest;  /* directions and trigger, as registered */
    uint32_t armed;     /* directions the kernel is asked about now */
    bool muted;         /* out of the kernel's view until re-armed */
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
    uint32_t *slot_of;          /* fd -> slot; 0 is "none" (slot 0 is notify's) */
    size_t nslots;
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

/* The same readiness epoll.c reports for the same situation. */
static uint32_t from_poll(short re, uint32_t interest)
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
    /* A pipe whose reader is gone says POLLERR (with POLLOUT if asked). */
    if ((re & POLLHUP) || ((re & POLLERR) && ((re & POLLOUT) || re == POLLERR)))
        r |= MIO_WRITE_CLOSED;
    return r;
}

/* Uses up what a report of revents `re` told an edge or oneshot registration.
 * Hang-up and error stay true until the fd is dealt with, and poll(2) reports
 * them whatever `events` says: after them, nothing is left to wait for. */
static void disarm(struct entry *e, short re)
{
    if ((e->interest & MIO_ONESHOT) || (re & (POLLHUP | POLLERR))) {
        e->armed = 0;
        e->muted = true;
        return;
    }
    if (re & (POLLIN | RDHUP))
        e->armed &= ~(uint32_t)MIO_READABLE;
    if (re & POLLPRI)
        e->armed &= ~(uint32_t)MIO_PRIORITY;
    if (re & POLLOUT)
        e->armed &= ~(uint32_t)MIO_WRITABLE;
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

static size_t find(const struct pollfd_poll *p, int fd)
{
    return (size_t)fd < p->nslots ? p->slot_of[fd] : 0;
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

/* Room for one more slot and a map entry for fd.  Called paused. */
static int reserve(struct pollfd_poll *p, int fd)
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
    if ((size_t)fd >= p->nslots) {
        size_t n = (size_t)fd + 1 > 2 * p->nslots ? (size_t)fd + 1 : 2 * p->nslots;
        uint32_t *map = mio__realloc(p->slot_of, n * sizeof *map);
        if (map == NULL)
            return MIO_ENOMEM;
        memset(map + p->nslots, 0, (n - p->nslots) * sizeof *map);
        p->slot_of = map;
        p->nslots = n;
    }
    return 0;
}

/* (Re)starts slot i with every direction of the interest armed. */
static void arm(struct pollfd_poll *p, size_t i, mio_token token, uint32_t interest)
{
    struct entry *e = &p->entries[i];
    e->token = token;
    e->interest = interest;
    e->armed = interest & MIO_INTERESTS;
    e->muted = false;
    sync_slot(p, i);
}

static int append(struct pollfd_poll *p, int fd, enum entry_kind kind,
                  mio_token token, uint32_t interest)
{
    int err = reserve(p, fd);
    if (err < 0)
        return err;
    p->entries[p->count].fd = fd;
    p->entries[p->count].kind = kind;
    arm(p, p->count, token, interest);
    p->slot_of[fd] = (uint32_t)p->count++;
    return 0;
}

static void remove_slot(struct pollfd_poll *p, size_t i)
{
    size_t last = --p->count;
    p->slot_of[p->entries[i].fd] = 0;
    if (i != last) {
        p->pfds[i] = p->pfds[last];     /* revents travel along */
        p->entries[i] = p->entries[last];
        p->slot_of[p->entries[i].fd] = (uint32_t)i;
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
    if ((err = append(p, p->wake.rfd, ENTRY_NOTIFY, MIO_TOKEN_RESERVED, MIO_READABLE)) < 0)
        goto fail_all;
    return 0;

fail_all:
    mio__free(p->pfds);
    mio__free(p->entries);
    mio__free(p->slot_of);
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
    mio__free(p->slot_of);
    mio__wakefd_close(&p->wake);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
}

/* Removes fd's slot if it has one of this kind; says whether it had. */
static bool drop(struct pollfd_poll *p, int fd, enum entry_kind kind)
{
    size_t i;
    bool found;

    pthread_mutex_lock(&p->lock);
    i = find(p, fd);
    found = i != 0 && p->entries[i].kind == kind;
    if (found) {
        pause_waiter(p);
        remove_slot(p, i);
        resume_waiter(p);
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

/* mio_close is about to close fd. */
static void pp_forget(mio_poll *base, mio_fd fd)
{
    (void)drop((struct pollfd_poll *)base, fd, ENTRY_FD);
}

/* epoll forgets a closed fd by itself and refuses it with EBADF; so does this
 * backend, for every call on a closed fd (MIO_EBADF here).  Otherwise fills
 * *id (zero if the OS will not say). */
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

/* Slot i holds fd, but registered for another file that had the number
 * before: that file was closed behind the library's back.  Called paused. */
static bool stale(const struct pollfd_poll *p, size_t i, const struct file_id *id)
{
    const struct entry *e = &p->entries[i];
    return e->kind == ENTRY_FD && (e->id.dev != id->dev || e->id.ino != id->ino);
}

/* add (a new slot) and mod (re-arms everything, so readiness still present
 * is reported at once, as EPOLL_CTL_MOD does). */
static int set(struct pollfd_poll *p, mio_fd fd, mio_token token, uint32_t interest, bool add)
{
    struct file_id id;
    size_t i;
    int err = identify(fd, &id);

    if (err < 0) {
        (void)drop(p, fd, ENTRY_FD);
        return err;
    }
    pthread_mutex_lock(&p->lock);
    pause_waiter(p);
    i = find(p, fd);
    if (i != 0 && stale(p, i, &id)) {
        remove_slot(p, i);
        i = 0;
    }
    if (add && i != 0) {
        err = MIO_EEXIST;
    } else if (!add && (i == 0 || p->entries[i].kind != ENTRY_FD)) {
        err = MIO_ENOENT;
    } else if (add) {
        err = append(p, fd, ENTRY_FD, token, interest);
        if (err == 0)
            p->entries[p->count - 1].id = id;
    } else {
        arm(p, i, token, interest);
    }
    resume_waiter(p);
    pthread_mutex_unlock(&p->lock);
    return err;
}

static int pp_add(mio_poll *base, mio_fd fd, mio_token token, uint32_t interest)
{
    return set((struct pollfd_poll *)base, fd, token, interest, true);
}

static int pp_mod(mio_poll *base, mio_fd fd, mio_token token, uint32_t interest)
{
    return set((struct pollfd_poll *)base, fd, token, interest, false);
}

static int pp_del(mio_poll *base, mio_fd fd)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct file_id id;
    int err = identify(fd, &id);
    size_t i;

    if (err < 0) {
        (void)drop(p, fd, ENTRY_FD);
        return err;
    }
    pthread_mutex_lock(&p->lock);
    i = find(p, fd);
    err = i != 0 && p->entries[i].kind == ENTRY_FD ? 0 : MIO_ENOENT;
    if (err == 0) {
        /* A stale slot goes too, but fd itself was never registered. */
        if (stale(p, i, &id))
            err = MIO_ENOENT;
        pause_waiter(p);
        remove_slot(p, i);
        resume_waiter(p);
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

/* An emulated edge comes back for `dir` once the fd said EAGAIN in that
 * direction.  Urgent data has no I/O call of its own: it re-arms with reads. */
static void pp_rearm(mio_poll *base, mio_fd fd, uint32_t dir)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    uint32_t want = dir == MIO_READABLE ? MIO_READABLE | MIO_PRIORITY : MIO_WRITABLE;
    size_t i;

    pthread_mutex_lock(&p->lock);
    i = find(p, fd);
    if (i != 0) {
        struct entry *e = &p->entries[i];
        want &= e->interest & ~e->armed;
        /* Level never disarms; oneshot waits for mod. */
        if (e->kind == ENTRY_FD && !(e->interest & (MIO_LEVEL | MIO_ONESHOT)) && want != 0) {
            pause_waiter(p);
            e->armed |= want;
            e->muted = false;
            sync_slot(p, i);
            resume_waiter(p);
        }
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
    bool dead = false;

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
                /* Closed behind our back: forget it, as epoll would. */
                e->kind = ENTRY_DEAD;
                dead = true;
            } else if (e->kind == ENTRY_WAKER) {
                mio__wakefd_drain(e->fd);   /* wakes coalesce into one event */
                events[n].token = e->token;
                events[n++].flags = MIO_READABLE;
            } else if (e->kind == ENTRY_FD) {
                uint32_t flags = from_poll(re, e->interest);
                if (flags != 0) {
                    events[n].token = e->token;
                    events[n++].flags = flags;
                }
                if (!(e->interest & MIO_LEVEL) || (e->interest & MIO_ONESHOT))
                    disarm(e, re);
                sync_slot(p, i);
            }
        }
        if (++i == p->count)
            i = 1;
    }
    p->next = i;
    /* From the end down, so every slot swapped in has been looked at. */
    if (dead)
        for (i = p->count - 1; i >= 1; i--)
            if (p->entries[i].kind == ENTRY_DEAD)
                remove_slot(p, i);
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

/* A waker is a wake-up descriptor of its own in the array: its read end in
 * `fd`, its write end in `id`, so that waking never touches the poll. */
static int pp_waker_add(mio_poll *base, struct mio_waker *w)
{
    struct pollfd_poll *p = (struct pollfd_poll *)base;
    struct mio_wakefd wf;
    int err = mio__wakefd_open(&wf);

    if (err < 0)
        return err;
    pthread_mutex_lock(&p->lock);
    pause_waiter(p);
    err = append(p, wf.rfd, ENTRY_WAKER, w->token, MIO_READABLE);
    resume_waiter(p);
    pthread_mutex_unlock(&p->lock);
    if (err < 0) {
        mio__wakefd_close(&wf);
        return err;
    }
    w->fd = wf.rfd;
    w->id = (uintptr_t)wf.wfd;
    return 0;
}

static int pp_waker_wake(struct mio_waker *w)
{
    return mio__wakefd_signal((int)w->id);
}

static void pp_waker_del(mio_poll *base, struct mio_waker *w)
{
    (void)drop((struct pollfd_poll *)base, w->fd, ENTRY_WAKER);
}

static void pp_waker_close(struct mio_waker *w)
{
    struct mio_wakefd wf = { w->fd, (int)w->id };
    mio__wakefd_close(&wf);
}

const struct mio_backend mio__backend_poll = {
    .name = "poll",
    .size = sizeof(struct pollfd_poll),
    .init = pp_init,
    .fini = pp_fini,
    .add = pp_add,
    .mod = pp_mod,
    .del = pp_del,
    .wait = pp_wait,
    .notify = pp_notify,
    .waker_add = pp_waker_add,
    .waker_wake = pp_waker_wake,
    .waker_del = pp_waker_del,
    .waker_close = pp_waker_close,
    .rearm = pp_rearm,
    .forget = pp_forget,
};
