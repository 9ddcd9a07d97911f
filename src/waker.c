/* Wakers, all of a poll's through one hub and the poll's own notify.
 *
 * A wake marks its waker pending and the hub `any`; it makes a system call
 * only when the poll's waiter announced it may block (`sleeping`), as the
 * channel and the user-space readiness queue do.  While the waiter is busy,
 * a wake is two atomic operations, and the waiter finds it before it would
 * block.  The events come from the pending marks, not from the kernel: after
 * each backend wait the waiter clears `any`, then takes every pending mark,
 * one event per waker however many wakes (they coalesce).
 *
 * No wake is lost.  A wake sets `pending`, then `any`, then reads
 * `sleeping`; the waiter stores `sleeping`, then reads `any` before it
 * blocks, and after the wait clears `any` before it takes the marks (all
 * sequentially consistent).  A mark set after the waiter took marks comes
 * with an `any` the next look sees; a wake that finds `sleeping` notifies.
 *
 * Lifetime.  The hub is shared by the poll and its wakers (counted in
 * `refs`), so a waker may outlive its poll and its free may race the
 * poll's: after the poll goes, wakes are no-ops.  A wake that notifies
 * counts itself in `busy` before it looks at the poll; freeing the poll
 * clears the hub's poll, then waits for `busy` to be 0, so no wake touches a
 * freed poll or a closed descriptor.  Everything a wake touches is atomic:
 * it is async-signal-safe wherever the backend's notify is. */
#include "waker.h"
#include "poll_hooks.h"
#include "registry.h"

struct mio_wakehub {
    atomic_int refs;            /* the poll's and every waker's */
    atomic_int any;             /* a waker was woken since the waiter looked */
    atomic_int sleeping;        /* the waiter may block: a wake notifies */
    atomic_int busy;            /* wakes between reading `poll` and notifying */
    _Atomic(mio_poll *) poll;   /* NULL once the poll is freed */
    mio_mutex lock;             /* guards the list */
    struct mio_waker *wakers;
};

struct mio_waker {
    struct mio_wakehub *hub;
    mio_token token;
    atomic_int pending;         /* woken since the waiter last took it */
    struct mio_waker *prev, *next;
};

static void hub_release(struct mio_wakehub *h)
{
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) {
        mio_mutex_destroy(&h->lock);
        mio__free(h);
    }
}

/* ---- the waiter's side (poll.c) ---- */

bool mio__wakers_sleep(mio_poll *p)
{
    struct mio_wakehub *h = atomic_load_explicit(&p->hub, memory_order_acquire);

    if (h == NULL)
        return false;
    atomic_store_explicit(&h->sleeping, 1, memory_order_seq_cst);
    return atomic_load_explicit(&h->any, memory_order_seq_cst) != 0;
}

size_t mio__wakers_take(mio_poll *p, mio_event *events, size_t cap)
{
    struct mio_wakehub *h = atomic_load_explicit(&p->hub, memory_order_acquire);
    struct mio_waker *w;
    size_t n = 0;

    if (h == NULL)
        return 0;
    atomic_store_explicit(&h->sleeping, 0, memory_order_seq_cst);
    if (atomic_load_explicit(&h->any, memory_order_seq_cst) == 0 || cap == 0)
        return 0;
    atomic_store_explicit(&h->any, 0, memory_order_seq_cst);
    mio_mutex_lock(&h->lock);
    for (w = h->wakers; w != NULL; w = w->next) {
        if (n == cap) {
            /* No room: the rest stay marked for the next wait. */
            atomic_store_explicit(&h->any, 1, memory_order_seq_cst);
            break;
        }
        if (atomic_load_explicit(&w->pending, memory_order_relaxed) &&
            atomic_exchange_explicit(&w->pending, 0, memory_order_seq_cst)) {
            events[n].token = w->token;
            events[n].flags = MIO_READABLE;
            n++;
        }
    }
    mio_mutex_unlock(&h->lock);
    return n;
}

void mio__wakers_detach(mio_poll *p)
{
    struct mio_wakehub *h = atomic_load_explicit(&p->hub, memory_order_acquire);

    if (h == NULL)
        return;
    atomic_store_explicit(&h->poll, NULL, memory_order_seq_cst);
    while (atomic_load_explicit(&h->busy, memory_order_seq_cst) != 0)
        mio__yield();
    hub_release(h);
}

/* ---- the public calls ---- */

int mio_waker_new(mio_poll *p, mio_token token, mio_waker **out)
{
    struct mio_wakehub *h;
    struct mio_waker *w;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || !mio__token_ok(p, token))
        return MIO_EINVAL;
    w = mio__calloc(1, sizeof *w);
    if (w == NULL)
        return MIO_ENOMEM;
    mio_mutex_lock(&p->lock);
    h = atomic_load_explicit(&p->hub, memory_order_relaxed);
    if (h == NULL && (h = mio__calloc(1, sizeof *h)) != NULL) {
        atomic_init(&h->refs, 1);
        atomic_init(&h->any, 0);
        /* A thread may be blocked in the poll's wait already, having found
         * no hub to announce its sleep on: the first wake must notify. */
        atomic_init(&h->sleeping, 1);
        atomic_init(&h->busy, 0);
        atomic_init(&h->poll, p);
        mio_mutex_init(&h->lock);
        atomic_store_explicit(&p->hub, h, memory_order_release);
    }
    mio_mutex_unlock(&p->lock);
    if (h == NULL) {
        mio__free(w);
        return MIO_ENOMEM;
    }
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    w->hub = h;
    w->token = token;
    atomic_init(&w->pending, 0);
    mio_mutex_lock(&h->lock);
    w->next = h->wakers;
    if (w->next != NULL)
        w->next->prev = w;
    h->wakers = w;
    mio_mutex_unlock(&h->lock);
    *out = w;
    return 0;
}

int mio_waker_wake(mio_waker *w)
{
    struct mio_wakehub *h;
    int err = 0;

    if (w == NULL)
        return MIO_EINVAL;
    if (atomic_load_explicit(&w->pending, memory_order_relaxed) ||
        atomic_exchange_explicit(&w->pending, 1, memory_order_seq_cst))
        return 0;   /* not taken since the last wake: that one covers this */
    h = w->hub;
    atomic_store_explicit(&h->any, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&h->sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(&h->sleeping, 0, memory_order_seq_cst)) {
        mio_poll *p;

        atomic_fetch_add_explicit(&h->busy, 1, memory_order_seq_cst);
        p = atomic_load_explicit(&h->poll, memory_order_seq_cst);
        if (p != NULL && (err = p->ops->notify(p)) < 0) {
            /* Nothing was sent: this wake failed, the next one tries. */
            atomic_store_explicit(&w->pending, 0, memory_order_seq_cst);
            atomic_store_explicit(&h->sleeping, 1, memory_order_seq_cst);
        }
        atomic_fetch_sub_explicit(&h->busy, 1, memory_order_seq_cst);
    }
    return err;
}

void mio_waker_free(mio_waker *w)
{
    struct mio_wakehub *h;

    if (w == NULL)
        return;
    h = w->hub;
    mio_mutex_lock(&h->lock);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        h->wakers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    mio_mutex_unlock(&h->lock);
    mio__free(w);
    hub_release(h);
}
