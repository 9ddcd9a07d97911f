/* User-space readiness: mio 0.6's Registration / SetReadiness, kept small.
 *
 * The node.  A registration is one node shared by its two halves.  All that
 * producers touch is one atomic word, `state`: the readiness, the interest with
 * its trigger, and the flags below.  mio_set_readiness_set is one CAS on it;
 * the same CAS decides, from the old and the new word, whether the node must
 * be queued and if so sets QUEUED.  Only the thread whose CAS set QUEUED pushes
 * the node, and QUEUED is cleared only after the poller has popped it, so a
 * node is in the queue at most once.
 *
 * The queue.  One per poll, made by the first registration registered on it:
 * queue.h's MPSC list, with its handshake for a poller about to sleep.
 *
 * No state is lost.  The poller pops a node, then reads the word and clears
 * QUEUED in one CAS, and reports the readiness it read.  A set ordered before
 * that CAS is in the report; a set ordered after it sees QUEUED clear and
 * queues the node again if it is a rise (edge) or ready at all (level).  So
 * the last readiness set is always reported, unless it was no rise.  Level
 * nodes that were reported keep QUEUED and are pushed again after the drain.
 *
 * Token and interest.  Only the control calls (register, reregister,
 * deregister, free) change them and ST_REGISTERED, under poll->lock; the poller
 * pops and reports under the same lock, so an event pairs a token with the
 * interest in force when it was taken.  The interest is in the state word, so
 * a concurrent set sees the old or the new one, never a mix, and a control
 * call that makes present readiness visible queues the node itself.
 *
 * Lifetime.  Whoever clears the last of the owner bits frees the node:
 * REG_OWNED (the mio_registration), SET_OWNED (the set_readiness handles,
 * counted apart in `setters`) and QUEUED (the queue, or a pusher about to
 * push).  The bits share the word, so exactly one thread sees the last go.
 *
 * A pusher uses the queue from the CAS that set QUEUED until it stores its
 * link, and if it notifies, the poll too: it counts itself in `waking` before
 * the link and out after the notify.  mio_poll_free therefore clears
 * ST_REGISTERED on every node bound to the poll (no new push can start), pops
 * until no bound node is QUEUED (each pop proves a link stored, and so the
 * count taken before it), then waits for `waking` to be 0.  A freed
 * registration still QUEUED stays on the list until popped, so the list holds
 * every node a pusher may push.  A
 * registration stays bound to its first poll until that poll is freed: a node
 * that may still sit in one poll's queue cannot join another's. */
#include "registry.h"
#include "readyq.h"

#define READINESS (MIO_READABLE | MIO_WRITABLE | MIO_PRIORITY | MIO_ERROR | \
                   MIO_READ_CLOSED | MIO_WRITE_CLOSED)
#define ALWAYS    (MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED)

/* The state word. */
#define READY_MASK     0x3Fu        /* readiness, bits 0-5 */
#define INTEREST_SHIFT 8            /* interest and trigger, bits 8-15 */
#define INTEREST_MASK  (0xFFu << INTEREST_SHIFT)
#define ST_REGISTERED     (1u << 16)   /* the bound poll wants events */
#define QUEUED         (1u << 17)   /* in the queue, or about to be pushed */
#define DISARMED       (1u << 18)   /* a oneshot fired; reregister re-arms */
#define REG_OWNED      (1u << 19)   /* the mio_registration is not freed */
#define SET_OWNED      (1u << 20)   /* some mio_set_readiness is not freed */
#define OWNERS         (QUEUED | REG_OWNED | SET_OWNED)

_Static_assert((READINESS & ~READY_MASK) == 0, "readiness fits its field");
_Static_assert(((MIO_INTERESTS | MIO_TRIGGERS) & ~0xFFu) == 0, "interest fits its field");

struct mio_registration {
    struct mio_qlink link;          /* first: queue elements are nodes */
    atomic_uint state;
    atomic_uint setters;            /* mio_set_readiness handles alive */
    _Atomic(mio_poll *) poll;       /* the poll it is bound to, or NULL */
    mio_token token;                /* under poll->lock */
    struct mio_registration *prev, *next;   /* poll's bound list, under poll->lock */
    struct mio_registration *again; /* the readyq's `again` list */
};

struct mio_set_readiness {
    struct mio_registration *reg;
};

struct mio_readyq {
    struct mio_queue q;
    unsigned turn;                  /* who gets the odd slot (see prepare) */
    struct mio_registration *again, **again_end;   /* level nodes reported */
    struct mio_registration *bound; /* nodes bound to this poll, under poll->lock */
};

static uint32_t interest_of(uint32_t s)
{
    return (s & INTEREST_MASK) >> INTEREST_SHIFT;
}

/* What an event for state s carries: readiness-only flags are always
 * reported, as for descriptors. */
static uint32_t visible(uint32_t s)
{
    return s & READY_MASK & ((interest_of(s) & MIO_INTERESTS) | ALWAYS);
}

/* Whether new state s must be queued, given what was visible before. */
static bool should_queue(uint32_t s, uint32_t before)
{
    uint32_t v = visible(s);

    if ((s & (ST_REGISTERED | QUEUED | DISARMED)) != ST_REGISTERED || v == 0)
        return false;
    return (interest_of(s) & MIO_LEVEL) != 0 || (v & ~before) != 0;
}

/* Clears bits; frees the node if that took the last owner. */
static void release(struct mio_registration *r, uint32_t bits)
{
    uint32_t old = atomic_fetch_and_explicit(&r->state, ~bits, memory_order_acq_rel);
    if ((old & ~bits & OWNERS) == 0)
        mio__free(r);
}

/* ---- the poller's side (called by poll.c) ---- */

static void unbind(struct mio_readyq *q, struct mio_registration *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        q->bound = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Takes a popped node out of the queue: clears QUEUED, or keeps it for a
 * level node still ready; disarms a oneshot.  Returns the event's flags. */
static uint32_t take(struct mio_readyq *q, struct mio_registration *r, uint32_t *s)
{
    uint32_t old = atomic_load_explicit(&r->state, memory_order_acquire), ev;

    /* A freed registration (REG_OWNED only ever goes, and only under
     * p->lock, which the caller holds) is never pushed again: take it off the
     * bound list while QUEUED still keeps it alive, then let go.  Unbinding
     * after clearing QUEUED would race the last mio_set_readiness_free, which
     * frees the node as soon as it sees no owner left. */
    if (!(old & REG_OWNED)) {
        unbind(q, r);
        *s = 0;
        release(r, QUEUED);
        return 0;
    }
    do {
        *s = old & ~QUEUED;
        ev = (old & (ST_REGISTERED | DISARMED)) == ST_REGISTERED ? visible(old) : 0;
        if (ev != 0 && (interest_of(old) & MIO_ONESHOT))
            *s |= DISARMED;
        else if (ev != 0 && (interest_of(old) & MIO_LEVEL))
            *s |= QUEUED;
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, *s,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire));
    return ev;
}

/* Pushes back the level nodes reported by this wait, for the next one. */
static void requeue(struct mio_readyq *q)
{
    struct mio_registration *r;

    while ((r = q->again) != NULL) {
        q->again = r->again;
        mio__queue_push(&q->q, &r->link, NULL, NULL);
    }
    q->again_end = &q->again;
}

/* Moves queued readiness into events.  Level nodes reported wait on the
 * `again` list until the wait's last drain, so none appears twice in a batch. */
static size_t drain(mio_poll *p, struct mio_readyq *q, mio_event *events, size_t cap, bool last)
{
    struct mio_registration *r;
    size_t n = 0;

    mio__queue_awake(&q->q);
    if (cap > 0 && !mio__queue_empty(&q->q)) {
        mio_mutex_lock(&p->lock);
        while (n < cap && (r = (struct mio_registration *)(void *)mio__queue_pop(&q->q)) != NULL) {
            uint32_t s, ev = take(q, r, &s);
            if (ev != 0) {
                events[n].token = r->token;
                events[n].flags = ev;
                n++;
            }
            if (s & QUEUED) {
                r->again = NULL;
                *q->again_end = r;
                q->again_end = &r->again;
            }
        }
        mio_mutex_unlock(&p->lock);
    }
    if (last)
        requeue(q);
    return n;
}

size_t mio__readyq_drain(mio_poll *p, mio_event *events, size_t cap)
{
    return drain(p, p->readyq, events, cap, true);
}

size_t mio__readyq_prepare(mio_poll *p, mio_event *events, size_t cap, int64_t *timeout_ns)
{
    struct mio_readyq *q = p->readyq;
    size_t share;

    requeue(q);     /* in case the last wait ended before its last drain */
    if (*timeout_ns != 0 ? !mio__queue_sleep(&q->q) : mio__queue_empty(&q->q))
        return 0;
    /* Queued readiness takes half the room before the kernel's events, the
     * odd slot alternating, so that neither can starve the other. */
    *timeout_ns = 0;
    share = (cap + q->turn) / 2;
    q->turn ^= 1;
    return drain(p, q, events, share, false);
}

void mio__readyq_detach(mio_poll *p)
{
    struct mio_readyq *q = p->readyq;
    struct mio_registration *r, *next;
    bool busy;

    requeue(q);
    mio_mutex_lock(&p->lock);
    for (r = q->bound; r != NULL; r = r->next)
        atomic_fetch_and_explicit(&r->state, ~ST_REGISTERED, memory_order_acq_rel);
    do {    /* wait for the pushes already committed: see the top */
        uint32_t s;
        while ((r = (struct mio_registration *)(void *)mio__queue_pop(&q->q)) != NULL)
            (void)take(q, r, &s);
        busy = !mio__queue_empty(&q->q);
        for (r = q->bound; r != NULL && !busy; r = r->next)
            busy = (atomic_load_explicit(&r->state, memory_order_acquire) & QUEUED) != 0;
        if (busy)
            mio__yield();
    } while (busy);
    mio__queue_quiesce(&q->q);
    for (r = q->bound; r != NULL; r = next) {
        next = r->next;
        r->prev = r->next = NULL;
        atomic_store_explicit(&r->poll, NULL, memory_order_release);
    }
    mio_mutex_unlock(&p->lock);
    p->readyq = NULL;
    mio__free(q);
}

/* ---- the control calls ---- */

static int check_interest(uint32_t interest)
{
    if ((interest & MIO_INTERESTS) == 0 ||
        (interest & ~(uint32_t)(MIO_INTERESTS | MIO_TRIGGERS)) != 0)
        return MIO_EINVAL;
    return 0;
}

/* Sets token and interest, registers, re-arms, and queues the node if
 * readiness is present.  Under p->lock, r bound to p. */
static void arm(mio_poll *p, mio_registration *r, mio_token token, uint32_t interest)
{
    uint32_t old = atomic_load_explicit(&r->state, memory_order_relaxed), s;
    bool queue;

    r->token = token;
    do {
        s = (old & ~(INTEREST_MASK | DISARMED)) | (interest << INTEREST_SHIFT) | ST_REGISTERED;
        queue = should_queue(s, 0);
        if (queue)
            s |= QUEUED;
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (queue)
        mio__queue_push(&p->readyq->q, &r->link, p, p->ops->notify);
}

static bool registered_on(mio_poll *p, mio_registration *r)
{
    return atomic_load_explicit(&r->poll, memory_order_relaxed) == p &&
           (atomic_load_explicit(&r->state, memory_order_relaxed) & ST_REGISTERED) != 0;
}

int mio_registration_new(mio_registration **reg, mio_set_readiness **set)
{
    mio_registration *r;
    mio_set_readiness *s;

    if (reg != NULL)
        *reg = NULL;
    if (set != NULL)
        *set = NULL;
    if (reg == NULL || set == NULL)
        return MIO_EINVAL;
    r = mio__calloc(1, sizeof *r);
    s = mio__calloc(1, sizeof *s);
    if (r == NULL || s == NULL) {
        mio__free(r);
        mio__free(s);
        return MIO_ENOMEM;
    }
    atomic_init(&r->link.next, NULL);
    atomic_init(&r->state, REG_OWNED | SET_OWNED);
    atomic_init(&r->setters, 1);
    atomic_init(&r->poll, NULL);
    s->reg = r;
    *reg = r;
    *set = s;
    return 0;
}

int mio_registration_register(mio_poll *p, mio_registration *r, mio_token token, uint32_t interest)
{
    struct mio_readyq *q;
    mio_poll *bound = NULL;
    int err = 0;

    if (p == NULL || r == NULL || !mio__token_ok(p, token) || check_interest(interest) < 0)
        return MIO_EINVAL;
    mio_mutex_lock(&p->lock);
    q = p->readyq;
    if (q == NULL) {
        q = mio__calloc(1, sizeof *q);
        if (q != NULL) {
            /* A thread may be blocked in this poll's wait already, having
             * found no queue to announce its sleep on: the first push must
             * wake it.  Later waits keep the flag themselves. */
            mio__queue_init(&q->q, 1);
            q->again_end = &q->again;
            p->readyq = q;      /* an atomic store: the waiter may be looking */
        }
    }
    if (q == NULL) {
        err = MIO_ENOMEM;
    } else if (!atomic_compare_exchange_strong(&r->poll, &bound, p)) {
        if (bound != p || registered_on(p, r))
            err = MIO_EEXIST;   /* registered, or bound to another poll */
        else
            arm(p, r, token, interest);
    } else {
        r->next = q->bound;
        if (r->next != NULL)
            r->next->prev = r;
        q->bound = r;
        arm(p, r, token, interest);
    }
    mio_mutex_unlock(&p->lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: register registration %p token 0x%llx interest %s: %s",
              (void *)p, (void *)r, (unsigned long long)token, MIO__INTEREST(interest),
              MIO__RESULT(err));
    return err;
}

int mio_registration_reregister(mio_poll *p, mio_registration *r, mio_token token, uint32_t interest)
{
    int err = 0;

    if (p == NULL || r == NULL || !mio__token_ok(p, token) || check_interest(interest) < 0)
        return MIO_EINVAL;
    mio_mutex_lock(&p->lock);
    if (registered_on(p, r))
        arm(p, r, token, interest);
    else
        err = MIO_ENOENT;
    mio_mutex_unlock(&p->lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: reregister registration %p token 0x%llx interest %s: %s",
              (void *)p, (void *)r, (unsigned long long)token, MIO__INTEREST(interest),
              MIO__RESULT(err));
    return err;
}

int mio_registration_deregister(mio_poll *p, mio_registration *r)
{
    int err = 0;

    if (p == NULL || r == NULL)
        return MIO_EINVAL;
    mio_mutex_lock(&p->lock);
    if (registered_on(p, r))    /* stays bound; a queued node is dropped when popped */
        atomic_fetch_and_explicit(&r->state, ~ST_REGISTERED, memory_order_acq_rel);
    else
        err = MIO_ENOENT;
    mio_mutex_unlock(&p->lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: deregister registration %p: %s", (void *)p, (void *)r,
              MIO__RESULT(err));
    return err;
}

void mio_registration_free(mio_registration *r)
{
    mio_poll *p;

    if (r == NULL)
        return;
    p = atomic_load_explicit(&r->poll, memory_order_acquire);
    if (p == NULL) {
        release(r, REG_OWNED);
        return;
    }
    mio_mutex_lock(&p->lock);
    /* A QUEUED node stays on the list for mio_poll_free until it is popped. */
    if (!(atomic_fetch_and_explicit(&r->state, ~ST_REGISTERED, memory_order_acq_rel) & QUEUED))
        unbind(p->readyq, r);
    release(r, REG_OWNED);
    mio_mutex_unlock(&p->lock);
}

/* ---- the producers' side ---- */

int mio_set_readiness_set(mio_set_readiness *h, uint32_t readiness)
{
    mio_registration *r;
    uint32_t old, s;
    bool queue;

    if (h == NULL || (readiness & ~(uint32_t)READINESS) != 0)
        return MIO_EINVAL;
    r = h->reg;
    old = atomic_load_explicit(&r->state, memory_order_relaxed);
    do {
        if ((old & READY_MASK) == readiness)
            return 0;   /* no change, so no rise */
        s = (old & ~READY_MASK) | readiness;
        queue = should_queue(s, visible(old));
        if (queue)
            s |= QUEUED;
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (queue) {
        /* ST_REGISTERED was set after poll and readyq were: the CAS sees both. */
        mio_poll *p = atomic_load_explicit(&r->poll, memory_order_relaxed);
        mio__queue_push(&p->readyq->q, &r->link, p, p->ops->notify);
    }
    return 0;
}

uint32_t mio_set_readiness_get(const mio_set_readiness *h)
{
    if (h == NULL)
        return 0;
    return atomic_load_explicit(&h->reg->state, memory_order_acquire) & READY_MASK;
}

int mio_set_readiness_clone(mio_set_readiness *h, mio_set_readiness **out)
{
    mio_set_readiness *c;

    if (out != NULL)
        *out = NULL;
    if (h == NULL || out == NULL)
        return MIO_EINVAL;
    c = mio__calloc(1, sizeof *c);
    if (c == NULL)
        return MIO_ENOMEM;
    c->reg = h->reg;
    atomic_fetch_add_explicit(&h->reg->setters, 1, memory_order_relaxed);
    *out = c;
    return 0;
}

void mio_set_readiness_free(mio_set_readiness *h)
{
    mio_registration *r;

    if (h == NULL)
        return;
    r = h->reg;
    mio__free(h);
    if (atomic_fetch_sub_explicit(&r->setters, 1, memory_order_acq_rel) == 1)
        release(r, SET_OWNED);
}
