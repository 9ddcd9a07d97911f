/* The backend-neutral Poll: argument checks, backend choice, the busy flag,
 * the deadline loop around the backend's wait, wakers, and the list of polls
 * whose backend emulates edge triggers (the I/O calls re-arm them). */
#include "sys.h"
#include "poll_hooks.h"
#include "readyq.h"

#include <string.h>

static const struct mio_backend *const backends[] = {
#if defined(MIO_HAVE_EPOLL)
    &mio__backend_epoll,
#endif
#if defined(MIO_HAVE_KQUEUE)
    &mio__backend_kqueue,
#endif
#if defined(MIO_HAVE_IOCP)
    &mio__backend_iocp,
#endif
#if defined(MIO_HAVE_POLL)
    &mio__backend_poll,
#endif
};

/* Polls whose backend has no edge trigger of its own.  The I/O calls walk this
 * list on EAGAIN, so it is guarded by a mutex and announced by a counter that
 * keeps the common case (no such poll) to one load. */
static mio_mutex edge_lock = MIO_MUTEX_INIT;
static mio_poll *edge_polls;
static atomic_int edge_count;

/* Guards every waker's `poll` link against its poll going away: freeing a
 * waker may race freeing its poll.  Taken only by those two calls. */
static mio_mutex wakers_lock = MIO_MUTEX_INIT;

static int check_interest(uint32_t interest)
{
    if ((interest & MIO_INTERESTS) == 0 ||
        (interest & ~(uint32_t)(MIO_INTERESTS | MIO_TRIGGERS)) != 0)
        return MIO_EINVAL;
    return 0;
}

int mio_poll_new(mio_poll **out)
{
    return mio_poll_new_backend(NULL, out);
}

int mio_poll_new_backend(const char *name, mio_poll **out)
{
    const struct mio_backend *ops = NULL;
    mio_poll *p;
    size_t i;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = NULL;
    mio__log_init();
    for (i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (name == NULL || strcmp(name, backends[i]->name) == 0) {
            ops = backends[i];
            break;
        }
    }
    if (ops == NULL)
        return MIO_ENOSYS;

    p = mio__calloc(1, ops->size);
    if (p == NULL)
        return MIO_ENOMEM;
    p->ops = ops;
    atomic_init(&p->waiting, 0);
    atomic_init(&p->woken, 0);
    mio_mutex_init(&p->lock);
    err = ops->init(p);
    if (err < 0) {
        mio_mutex_destroy(&p->lock);
        mio__free(p);
        return err;
    }
    if (ops->rearm != NULL) {
        mio_mutex_lock(&edge_lock);
        p->edge_next = edge_polls;
        edge_polls = p;
        atomic_fetch_add(&edge_count, 1);
        mio_mutex_unlock(&edge_lock);
    }
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: new, backend %s", (void *)p, ops->name);
    *out = p;
    return 0;
}

const char *mio_poll_backend(const mio_poll *p)
{
    return p != NULL ? p->ops->name : NULL;
}

void mio_poll_free(mio_poll *p)
{
    struct mio_waker *w;

    if (p == NULL)
        return;
    if (p->ops->rearm != NULL) {
        mio_poll **pp;
        mio_mutex_lock(&edge_lock);
        for (pp = &edge_polls; *pp != NULL; pp = &(*pp)->edge_next) {
            if (*pp == p) {
                *pp = p->edge_next;
                break;
            }
        }
        atomic_fetch_sub(&edge_count, 1);
        mio_mutex_unlock(&edge_lock);
    }
    /* Wakers outlive the poll as no-ops: their own descriptor stays theirs. */
    mio_mutex_lock(&wakers_lock);
    mio_mutex_lock(&p->lock);
    for (w = p->wakers; w != NULL; w = w->next) {
        p->ops->waker_del(p, w);
        w->poll = NULL;
    }
    p->wakers = NULL;
    mio_mutex_unlock(&p->lock);
    mio_mutex_unlock(&wakers_lock);
    if (p->readyq != NULL)
        mio__readyq_detach(p);
    p->ops->fini(p);
    mio_mutex_destroy(&p->lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: freed", (void *)p);
    mio__free(p);
}

/* A wake while one is pending makes no system call: the poll has not
 * returned since, so the event it owes covers this wake too.  Clearing after
 * the backend's wait (which took any event the wakes caused) and before the
 * caller sees the batch loses no wake: one that set `pending` before the
 * clear either reached this batch or will write and be seen by the next. */
static void rearm_wakers(mio_poll *p)
{
    struct mio_waker *w;

    mio_mutex_lock(&p->lock);
    for (w = p->wakers; w != NULL; w = w->next)
        atomic_store(&w->pending, 0);
    mio_mutex_unlock(&p->lock);
}

int mio_poll_wait(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns)
{
    int64_t deadline = 0;
    int n;

    if (p == NULL || events == NULL || capacity == 0)
        return MIO_EINVAL;
    if (capacity > INT32_MAX)
        capacity = INT32_MAX;
    if (atomic_exchange_explicit(&p->waiting, 1, memory_order_acquire) != 0)
        return MIO_EBUSY;
    if (timeout_ns > 0) {
        int64_t now = mio__now_ns();
        /* A deadline past INT64_MAX is never reached anyway: saturate. */
        deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }

    for (;;) {
        int64_t t = timeout_ns;
        size_t first = 0;

        /* Queued user-space readiness first takes its share of the room (and
         * then the kernel's wait must not block), the rest of it after. */
        if (p->readyq != NULL)
            first = mio__readyq_prepare(p, events, capacity, &t);
        n = first < capacity ? p->ops->wait(p, events + first, capacity - first, t) : 0;
        if (n < 0 && first > 0)
            n = 0;  /* what was taken from the queue must be returned */
        if (n >= 0)
            n += (int)first;
        if (p->readyq != NULL && n >= 0)
            n += (int)mio__readyq_drain(p, events + n, capacity - (size_t)n);
        if (n != 0 || timeout_ns == 0 ||
            atomic_load_explicit(&p->woken, memory_order_acquire))
            break;
        /* Nothing for the caller: an internal wake-up or the timeout. */
        if (timeout_ns > 0) {
            int64_t now = mio__now_ns();
            if (now >= deadline)
                break;
            timeout_ns = deadline - now;
        }
    }
    if (atomic_load_explicit(&p->nwakers, memory_order_relaxed) != 0)
        rearm_wakers(p);
    /* Returning answers every mio__poll_wake() made so far. */
    if (atomic_load_explicit(&p->woken, memory_order_relaxed))
        atomic_store_explicit(&p->woken, 0, memory_order_relaxed);
    atomic_store_explicit(&p->waiting, 0, memory_order_release);
    MIO_TRACE(MIO_LOG_TRACE, "poll %p: wait returned %d", (void *)p, n);
    return n;
}

int mio__poll_wake(mio_poll *p)
{
    atomic_store_explicit(&p->woken, 1, memory_order_release);
    return p->ops->notify(p);
}

static bool bad_fd(mio_fd fd)
{
#ifdef _WIN32
    return fd == MIO_INVALID_FD;
#else
    return fd < 0;
#endif
}

/* register and reregister: the same checks, then the backend's add or mod. */
static int set_interest(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest, bool add)
{
    int err;

    if (p == NULL || token == MIO_TOKEN_RESERVED || check_interest(interest) < 0)
        return MIO_EINVAL;
    if (bad_fd(fd))
        return MIO_EBADF;
    err = add ? p->ops->add(p, fd, token, interest) : p->ops->mod(p, fd, token, interest);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: %s fd %lld token %llu interest %#x: %d", (void *)p,
              add ? "register" : "reregister", (long long)fd, (unsigned long long)token,
              interest, err);
    return err;
}

int mio_register(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    return set_interest(p, fd, token, interest, true);
}

int mio_reregister(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    return set_interest(p, fd, token, interest, false);
}

int mio_deregister(mio_poll *p, mio_fd fd)
{
    int err;

    if (p == NULL)
        return MIO_EINVAL;
    if (bad_fd(fd))
        return MIO_EBADF;
    err = p->ops->del(p, fd);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: deregister fd %lld: %d", (void *)p, (long long)fd, err);
    return err;
}

/* ---- wakers ---- */

int mio_waker_new(mio_poll *p, mio_token token, mio_waker **out)
{
    struct mio_waker *w;
    int err;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token == MIO_TOKEN_RESERVED)
        return MIO_EINVAL;
    w = mio__calloc(1, sizeof *w);
    if (w == NULL)
        return MIO_ENOMEM;
    w->ops = p->ops;
    w->poll = p;
    w->token = token;
    w->fd = MIO_INVALID_FD;
    mio_mutex_lock(&p->lock);
    err = p->ops->waker_add(p, w);
    if (err == 0) {
        w->next = p->wakers;
        if (w->next != NULL)
            w->next->prev = w;
        p->wakers = w;
        atomic_fetch_add(&p->nwakers, 1);
    }
    mio_mutex_unlock(&p->lock);
    if (err < 0) {
        mio__free(w);
        return err;
    }
    *out = w;
    return 0;
}

int mio_waker_wake(mio_waker *w)
{
    int err;

    if (w == NULL)
        return MIO_EINVAL;
    if (atomic_exchange(&w->pending, 1) != 0)
        return 0;
    err = w->ops->waker_wake(w);
    if (err < 0)
        atomic_store(&w->pending, 0);   /* nothing was sent: let the next try */
    return err;
}

void mio_waker_free(mio_waker *w)
{
    mio_poll *p;

    if (w == NULL)
        return;
    mio_mutex_lock(&wakers_lock);
    p = w->poll;
    if (p != NULL) {
        mio_mutex_lock(&p->lock);
        p->ops->waker_del(p, w);
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            p->wakers = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        atomic_fetch_sub(&p->nwakers, 1);
        mio_mutex_unlock(&p->lock);
    }
    mio_mutex_unlock(&wakers_lock);
    w->ops->waker_close(w);
    mio__free(w);
}

/* ---- emulated edges ---- */

static void edge_walk(mio_fd fd, uint32_t dir)
{
    mio_poll *p;

    mio_mutex_lock(&edge_lock);
    for (p = edge_polls; p != NULL; p = p->edge_next) {
        if (dir != 0)
            p->ops->rearm(p, fd, dir);
        else if (p->ops->forget != NULL)
            p->ops->forget(p, fd);
    }
    mio_mutex_unlock(&edge_lock);
}

void mio__io_eagain(mio_fd fd, uint32_t dir)
{
    if (atomic_load_explicit(&edge_count, memory_order_acquire) != 0)
        edge_walk(fd, dir);
}

void mio__io_close(mio_fd fd)
{
    if (atomic_load_explicit(&edge_count, memory_order_acquire) != 0)
        edge_walk(fd, 0);
}
