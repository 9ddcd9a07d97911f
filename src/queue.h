/* A poll's intrusive multi-producer, single-consumer queue, and the
 * handshake that lets its consumer sleep (the user-space readiness of
 * registration.c and the re-arms of emulated edges in registry.c).
 *
 * The list is Vyukov's intrusive MPSC queue.  A push exchanges `head`, then
 * links the previous element to the new one; only the consumer pops, from
 * `tail`.  Until that link is stored (a few instructions later) the list
 * ends early: pop says nothing and `empty` says "not empty", so the consumer
 * spins but neither blocks nor loses the element.
 *
 * Sleeping.  Before a blocking wait the consumer stores sleeping = 1, then
 * looks at head; a pusher exchanges head, then reads sleeping (all
 * sequentially consistent).  Either the consumer sees the push and does not
 * block, or the pusher reads the 1 and notifies, or it reads a 0 stored
 * later: by a pusher that took the 1 and notifies, or by the consumer after
 * its wait, whose next look at head then sees the push.  The pusher that
 * swaps the 1 for 0 makes the one system call; the others only push.
 *
 * A pusher that notifies uses the poll after its link is stored; it counts
 * itself in `waking` until it is done, so that freeing the poll can wait
 * for it (mio__queue_quiesce). */
#ifndef MIO_QUEUE_H
#define MIO_QUEUE_H

#include "common.h"

#ifndef _WIN32
#include <sched.h>
#endif


struct mio_qlink {
    _Atomic(struct mio_qlink *) next;
};

struct mio_queue {
    _Atomic(struct mio_qlink *) head;   /* pushers exchange it */
    struct mio_qlink *tail;             /* the consumer pops here */
    struct mio_qlink stub;              /* keeps the list non-empty */
    atomic_int sleeping;                /* the consumer may block: pushers notify */
    atomic_int waking;                  /* pushers between their link and notify */
};

static inline void mio__queue_init(struct mio_queue *q, int sleeping)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
    atomic_init(&q->sleeping, sleeping);
    atomic_init(&q->waking, 0);
}

/* Appends l.  With p, also wakes p's waiter through notify (its backend's)
 * if it may be asleep; linking first lets a waiter that wakes at once find
 * the element. */
static inline void mio__queue_push(struct mio_queue *q, struct mio_qlink *l, mio_poll *p,
                                   int (*notify)(mio_poll *))
{
    struct mio_qlink *prev;
    bool wake;

    atomic_store_explicit(&l->next, NULL, memory_order_relaxed);
    prev = atomic_exchange_explicit(&q->head, l, memory_order_seq_cst);
    wake = p != NULL && atomic_load_explicit(&q->sleeping, memory_order_seq_cst) &&
           atomic_exchange_explicit(&q->sleeping, 0, memory_order_seq_cst);
    if (wake)
        atomic_fetch_add_explicit(&q->waking, 1, memory_order_relaxed);
    atomic_store_explicit(&prev->next, l, memory_order_release);
    if (wake) {
        (void)notify(p);
        atomic_fetch_sub_explicit(&q->waking, 1, memory_order_release);
    }
}

static inline bool mio__queue_empty(struct mio_queue *q)
{
    return q->tail == &q->stub &&
           atomic_load_explicit(&q->head, memory_order_seq_cst) == &q->stub;
}

/* The oldest element, or NULL if none is (completely) pushed.  Consumer
 * only. */
static inline struct mio_qlink *mio__queue_pop(struct mio_queue *q)
{
    struct mio_qlink *tail = q->tail;
    struct mio_qlink *next = atomic_load_explicit(&tail->next, memory_order_acquire);

    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next == NULL) {
        if (tail != atomic_load_explicit(&q->head, memory_order_seq_cst))
            return NULL;                /* a push is not linked yet */
        mio__queue_push(q, &q->stub, NULL, NULL);   /* so tail can move past the last */
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
        if (next == NULL)
            return NULL;
    }
    q->tail = next;
    return tail;
}

/* The consumer is about to block: pushes from now on notify.  Returns true
 * when something is queued already (then it must not block). */
static inline bool mio__queue_sleep(struct mio_queue *q)
{
    atomic_store_explicit(&q->sleeping, 1, memory_order_seq_cst);
    return !mio__queue_empty(q);
}

/* The consumer is awake: pushes stop notifying. */
static inline void mio__queue_awake(struct mio_queue *q)
{
    atomic_store_explicit(&q->sleeping, 0, memory_order_seq_cst);
}

static inline void mio__yield(void)
{
#ifdef _WIN32
    SwitchToThread();
#else
    sched_yield();
#endif
}

/* Returns once no pusher is still notifying the poll. */
static inline void mio__queue_quiesce(struct mio_queue *q)
{
    while (atomic_load_explicit(&q->waking, memory_order_acquire) != 0)
        mio__yield();
}

#endif
