/* The backend-neutral Poll: backend choice, the busy flag, the deadline loop
 * around the backend's wait, and wakers.  Descriptor registrations are
 * registry.c's. */
#include "registry.h"
#include "poll_hooks.h"
#include "readyq.h"
#include "waker.h"

#include <stdio.h>
#include <stdlib.h>
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

/* Every name a backend of libmio has, built here or not. */
static const char *const all_names[] = { "epoll", "kqueue", "iocp", "poll", "uring" };

static bool same_name(const char *a, const char *b, bool nocase)
{
    if (!nocase)
        return strcmp(a, b) == 0;
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        if (x != *b)
            return false;
    }
    return *a == *b;
}

static const struct mio_backend *find_backend(const char *name, bool nocase)
{
    size_t i;
    for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (same_name(name, backends[i]->name, nocase))
            return backends[i];
    return NULL;
}

/* "epoll, poll, uring": the backends of this build, the default first. */
static const char *built_names(char *buf, size_t size)
{
    size_t i, at = 0;
    buf[0] = '\0';
    for (i = 0; i < sizeof backends / sizeof backends[0] && at < size; i++) {
        int n = snprintf(buf + at, size - at, "%s%s", i > 0 ? ", " : "", backends[i]->name);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    return buf;
}

/* Why `name` gives no backend, for the log: a name of libmio's that this
 * build or OS lacks, or no backend's name at all. */
static const char *why_none(const char *name, bool nocase)
{
    size_t i;
    for (i = 0; i < sizeof all_names / sizeof all_names[0]; i++)
        if (same_name(name, all_names[i], nocase))
            return "not available in this build or on this OS";
    return "no backend has this name";
}

#if !MIO_CHECKS
/* MIO_CHECK asks for checks this build does not have: say so, once. */
static void check_unbuilt(void)
{
    static atomic_int told;
    const char *v = getenv("MIO_CHECK");

    if (v != NULL && *v != '\0' && strcmp(v, "none") != 0 && strcmp(v, "0") != 0 &&
        atomic_exchange(&told, 1) == 0)
        mio__log_alert(MIO_LOG_WARN, "MIO_CHECK=%.40s: this build of libmio has no debug "
                                     "checks (built with NDEBUG; -DMIO_CHECKS=ON adds them)",
                       v);
}
#endif

int mio_poll_new_backend(const char *name, mio_poll **out)
{
    const struct mio_backend *ops;
    const char *env = NULL;
    char names[64];
    mio_poll *p;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = NULL;
    mio__log_init();
    /* No name: MIO_BACKEND's choice, else the default.  A name given by
     * the environment that gives no backend fails rather than falling back:
     * whoever set it is told, and not misled by a run on another backend. */
    if (name == NULL && (env = getenv("MIO_BACKEND")) != NULL && *env == '\0')
        env = NULL;
    if (name != NULL)
        ops = find_backend(name, false);
    else if (env != NULL)
        ops = find_backend(env, true);
    else
        ops = backends[0];
    if (ops == NULL) {
        if (env != NULL)
            mio__log_alert(MIO_LOG_ERROR, "MIO_BACKEND=%.40s: %s; this build has: %s", env,
                           why_none(env, true), built_names(names, sizeof names));
        else
            MIO_TRACE(MIO_LOG_WARN, "backend \"%.40s\": %s; this build has: %s", name,
                      why_none(name, false), built_names(names, sizeof names));
        return MIO_ENOSYS;
    }

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
        if (env != NULL)
            mio__log_alert(MIO_LOG_ERROR, "MIO_BACKEND=%.40s: the %s backend cannot start here: %s",
                           env, ops->name, mio_strerror(err));
        mio_mutex_destroy(&p->reg_lock);
        mio_mutex_destroy(&p->lock);
        mio__free(p);
        return err;
    }
#if MIO_CHECKS
    /* Out of memory for it, the poll just goes unchecked. */
    if (mio__check_wanted() && !p->emulated)
        p->check = mio__check_new();
    if (p->emulated || p->check != NULL)
        atomic_fetch_add(&mio__emulating_polls, 1);
#else
    check_unbuilt();
    if (p->emulated)
        atomic_fetch_add(&mio__emulating_polls, 1);
#endif
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
#if MIO_CHECKS
    if (p->emulated || p->check != NULL)
        atomic_fetch_sub(&mio__emulating_polls, 1);
    mio__check_free(p->check);
#else
    if (p->emulated)
        atomic_fetch_sub(&mio__emulating_polls, 1);
#endif
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
#if MIO_CHECKS
        if (p->check != NULL && n > 0)
            mio__check_reported(p, events + first, n);
#endif
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
#if MIO_CHECKS
        if (p->check != NULL && n > 0)
            mio__check_reported(p, events, n);
#endif
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
