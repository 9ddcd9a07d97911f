/* The backend-neutral Poll: backend choice, the busy flag, the deadline loop
 * around the backend's wait, and wakers.  Descriptor registrations are
 * registry.c's. */
#include "registry.h"
#include "poll_hooks.h"
#include "readyq.h"
#include "waker.h"

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
#if defined(MIO_HAVE_URING)
    &mio__backend_uring,    /* by name only: epoll stays the default */
#endif
};

void mio__backends_release(mio_fd fd)
{
    size_t i;
    for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->release != NULL)
            backends[i]->release(fd);
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
    mio_mutex_init(&p->reg_lock);
    p->emulated = ops->rearm != NULL;
    atomic_init(&p->nrecords, 0);
    p->token_limit = MIO_TOKEN_RESERVED;
    mio__queue_init(&p->rearmq, 0);
    err = ops->init(p);
    if (err < 0) {
        mio_mutex_destroy(&p->reg_lock);
        mio_mutex_destroy(&p->lock);
        mio__free(p);
        return err;
    }
    if (p->emulated)
        atomic_fetch_add(&mio__emulating_polls, 1);
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
    if (p == NULL)
        return;
    mio__registry_detach(p);
    if (p->emulated)
        atomic_fetch_sub(&mio__emulating_polls, 1);
    mio__wakers_detach(p);      /* they outlive the poll as no-ops */
    if (p->readyq != NULL)
        mio__readyq_detach(p);
    p->ops->fini(p);
    mio_mutex_destroy(&p->reg_lock);
    mio_mutex_destroy(&p->lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: freed", (void *)p);
    mio__free(p);
}

/* The general wait: a deadline to keep across internal wake-ups, queued
 * user-space readiness, emulated edges to re-arm.  now: a clock reading
 * taken before the wait began, or -1. */
static int wait_general(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns,
                        int64_t now)
{
    int64_t deadline = 0;
    int n;

    if (timeout_ns > 0) {
        if (now < 0)
            now = mio__now_ns();
        /* A deadline past INT64_MAX is never reached anyway: saturate. */
        deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }
    for (;;) {
        int64_t t = timeout_ns;
        size_t first = 0;

        if (p->emulated)
            mio__registry_prepare(p, &t);
        /* Queued user-space readiness first takes its share of the room (and
         * then the kernel's wait must not block), the rest of it after. */
        if (p->readyq != NULL)
            first = mio__readyq_prepare(p, events, capacity, &t);
        if (t != 0 && mio__wakers_sleep(p))
            t = 0;
        n = first < capacity ? p->ops->wait(p, events + first, capacity - first, t) : 0;
        if (p->emulated)
            mio__registry_awake(p);
        if (n < 0 && first > 0)
            n = 0;  /* what was taken from the queue must be returned */
        if (n >= 0)
            n += (int)first;
        if (n >= 0)
            n += (int)mio__wakers_take(p, events + n, capacity - (size_t)n);
        if (p->readyq != NULL && n >= 0)
            n += (int)mio__readyq_drain(p, events + n, capacity - (size_t)n);
        if (n != 0 || timeout_ns == 0 ||
            atomic_load_explicit(&p->woken, memory_order_acquire))
            return n;
        /* Nothing for the caller: an internal wake-up or the timeout. */
        if (timeout_ns > 0) {
            now = mio__now_ns();
            if (now >= deadline)
                return 0;
            timeout_ns = deadline - now;
        }
    }
}

/* mio_poll_wait, and the loop's wait with the clock reading it already
 * has (now >= 0), which spares a reading of its own. */
int mio__poll_wait_at(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns,
                      int64_t now)
{
    int n;

    if (p == NULL || events == NULL || capacity == 0)
        return MIO_EINVAL;
    if (capacity > INT32_MAX)
        capacity = INT32_MAX;
    if (atomic_exchange_explicit(&p->waiting, 1, memory_order_acquire) != 0)
        return MIO_EBUSY;
    /* The common case, a kernel with its own edges and nothing queued, is
     * one call into the backend.  An internal wake-up (0 events before the
     * timeout) goes on in the general wait, which needs to know when the
     * wait began if it has a timeout. */
    if (MIO_LIKELY(!p->emulated && p->readyq == NULL && p->hub == NULL &&
                   (timeout_ns <= 0 || now >= 0))) {
        n = p->ops->wait(p, events, capacity, timeout_ns);
        if (MIO_UNLIKELY(n == 0) && timeout_ns != 0 &&
            !atomic_load_explicit(&p->woken, memory_order_acquire)) {
            if (timeout_ns > 0) {
                int64_t deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
                now = mio__now_ns();
                timeout_ns = deadline > now ? deadline - now : 0;
            }
            if (timeout_ns != 0)
                n = wait_general(p, events, capacity, timeout_ns, now);
        }
    } else {
        n = wait_general(p, events, capacity, timeout_ns, now);
    }
    /* Returning answers every mio__poll_wake() made so far. */
    if (atomic_load_explicit(&p->woken, memory_order_relaxed))
        atomic_store_explicit(&p->woken, 0, memory_order_relaxed);
    atomic_store_explicit(&p->waiting, 0, memory_order_release);
    if (MIO_TRACING(MIO_LOG_TRACE))
        mio__log_wait(p, events, n);
    return n;
}

int mio_poll_wait(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns)
{
    return mio__poll_wait_at(p, events, capacity, timeout_ns, -1);
}

size_t mio__poll_records(const mio_poll *p)
{
    return atomic_load_explicit(&p->nrecords, memory_order_relaxed);
}

void mio__poll_keep_tokens(mio_poll *p, mio_token first)
{
    p->token_limit = first;
}

uint32_t mio__poll_private_interest(const mio_poll *p)
{
    return p->ops->private_interest;
}

int mio__poll_wake(mio_poll *p)
{
    atomic_store_explicit(&p->woken, 1, memory_order_release);
    return p->ops->notify(p);
}
