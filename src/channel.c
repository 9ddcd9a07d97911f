/* The event loop's channel: a bounded lock-free queue of `void *` messages
 * from any number of threads to the loop, and the sender handles.
 *
 * The queue is Dmitry Vyukov's bounded array queue: every slot carries a
 * sequence number saying whose turn it is, so producers claim positions with
 * one compare-and-swap and the single consumer needs none.  A slot's sequence
 * is `pos` while it waits for the message of position `pos`, `pos + 1` once
 * that message is in, and `pos + capacity` after the loop took it (free for
 * the next round).  No message value is special: NULL is a message like any
 * other.  Positions are 64-bit and never wrap in practice (584 years at a
 * billion messages a second), so any capacity works, not just powers of two
 * (those find their slot with a mask, the others with a division).
 *
 * Waking: the loop raises `sleeping` before it blocks and then looks at the
 * queue once more; a sender publishes its message and then looks at
 * `sleeping`.  Both pairs are sequentially consistent, so at least one side
 * sees the other: either the loop finds the message and does not block, or
 * the sender finds the flag, takes it (only one sender does) and wakes the
 * poll.  A busy loop is never woken: sends cost no system call.
 *
 * Lifetime: the channel is shared by the loop and its senders and freed by
 * the last one to let go.  The poll is the loop's and dies with it, so a
 * sender announces itself in `waking` before touching it, and closing waits
 * until no sender is in there. */
#include "channel.h"
#include "poll_hooks.h"

#ifdef _WIN32
#define yield_cpu() SwitchToThread()
#else
#include <sched.h>
#define yield_cpu() sched_yield()
#endif

#define CACHE_LINE 64

struct slot {
    _Atomic uint64_t seq;
    uint32_t kind;                      /* MIO__MSG_* */
    mio_fd fd;                          /* MIO__MSG_ADOPT's descriptor */
    void *msg;
};

/* Producers' and the consumer's hot fields sit on different cache lines
 * (padding rather than alignas: the allocator only promises max_align_t). */
struct mio_channel {
    _Atomic uint64_t tail;              /* next position a producer claims */
    char pad0[CACHE_LINE - sizeof(uint64_t)];
    uint64_t head;                      /* next position the loop reads */
    char pad1[CACHE_LINE - sizeof(uint64_t)];
    atomic_int sleeping;                /* the loop may be blocked in its poll */
    atomic_int waking;                  /* senders inside wake() */
    char pad2[CACHE_LINE - 2 * sizeof(atomic_int)];
    atomic_int closed;                  /* the loop is gone: sends fail */
    atomic_size_t refs;                 /* the loop's and every sender's */
    mio_poll *poll;
    size_t capacity;                    /* slots (2 for a capacity of 1) */
    uint64_t mask;                      /* capacity - 1 for a power of two, else 0 */
    bool one;                           /* a capacity of 1, see claim() */
    struct slot slots[];
};

struct mio_sender {
    struct mio_channel *chan;
};

int mio__channel_new(size_t capacity, mio_poll *poll, struct mio_channel **out)
{
    struct mio_channel *c;
    size_t i;
    bool one;

    *out = NULL;
    if (capacity == 0 || capacity > (SIZE_MAX - sizeof *c) / sizeof(struct slot))
        return MIO_EINVAL;
    one = capacity == 1;
    if (one)
        capacity = 2;
    c = mio__malloc(sizeof *c + capacity * sizeof(struct slot));
    if (c == NULL)
        return MIO_ENOMEM;
    atomic_init(&c->tail, 0);
    c->head = 0;
    atomic_init(&c->sleeping, 0);
    atomic_init(&c->waking, 0);
    atomic_init(&c->closed, 0);
    atomic_init(&c->refs, 1);
    c->poll = poll;
    c->capacity = capacity;
    c->one = one;
    c->mask = (capacity & (capacity - 1)) == 0 ? capacity - 1 : 0;
    for (i = 0; i < capacity; i++) {
        atomic_init(&c->slots[i].seq, i);
        c->slots[i].kind = MIO__MSG_NONE;
        c->slots[i].fd = MIO_INVALID_FD;
        c->slots[i].msg = NULL;
    }
    *out = c;
    return 0;
}

static void release(struct mio_channel *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        mio__free(c);
}

void mio__channel_close(struct mio_channel *c)
{
    atomic_store_explicit(&c->closed, 1, memory_order_seq_cst);
    /* A sender that saw the channel open may still be waking the poll; the
     * window is one system call, so yielding beats any heavier handshake. */
    while (atomic_load_explicit(&c->waking, memory_order_seq_cst) != 0)
        yield_cpu();
    release(c);
}

int mio__channel_sender(struct mio_channel *c, mio_sender **out)
{
    mio_sender *s = mio__malloc(sizeof *s);

    if (s == NULL)
        return MIO_ENOMEM;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    s->chan = c;
    *out = s;
    return 0;
}

/* The slot of position pos.  The division costs as much as the rest of a
 * send, hence the mask whenever the capacity allows it. */
static inline struct slot *slot_at(struct mio_channel *c, uint64_t pos)
{
    return &c->slots[c->mask != 0 ? pos & c->mask : pos % c->capacity];
}

/* ---- the loop's side ---- */

static bool has_message(struct mio_channel *c)
{
    struct slot *s = slot_at(c, c->head);
    return atomic_load_explicit(&s->seq, memory_order_seq_cst) == c->head + 1;
}

int mio__channel_recv(struct mio_channel *c, void **msg, mio_fd *fd)
{
    struct slot *s = slot_at(c, c->head);
    int kind;

    /* A producer that claimed `head` but has not published yet makes the
     * queue look empty until it does (and then wakes the loop): FIFO holds. */
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != c->head + 1)
        return MIO__MSG_NONE;
    kind = (int)s->kind;
    *msg = s->msg;
    *fd = s->fd;
    atomic_store_explicit(&s->seq, c->head + c->capacity, memory_order_release);
    c->head++;
    return kind;
}

bool mio__channel_sleep(struct mio_channel *c)
{
    atomic_store_explicit(&c->sleeping, 1, memory_order_seq_cst);
    return has_message(c);
}

void mio__channel_awake(struct mio_channel *c)
{
    if (atomic_load_explicit(&c->sleeping, memory_order_relaxed))
        atomic_store_explicit(&c->sleeping, 0, memory_order_relaxed);
}

/* ---- senders, any thread ---- */

/* Claims the next position: its slot is ours to fill until published. */
static struct slot *claim(struct mio_channel *c, uint64_t *claimed)
{
    uint64_t pos = atomic_load_explicit(&c->tail, memory_order_relaxed);

    for (;;) {
        struct slot *s = slot_at(c, pos);
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t lag = (int64_t)(seq - pos);

        if (lag == 0) {
            /* With one slot, a full slot's `pos + 1` would read as free for
             * the next position, and the unread message be overwritten: a
             * capacity of 1 has two slots, and a position is free only once
             * the one before it was taken by the loop (`pos - 1 + 2`). */
            if (c->one && atomic_load_explicit(&slot_at(c, pos - 1)->seq,
                                               memory_order_acquire) != pos + 1)
                return NULL;
            if (atomic_compare_exchange_weak_explicit(&c->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *claimed = pos;
                return s;
            }
            /* The failed CAS reloaded pos. */
        } else if (lag < 0) {
            return NULL;                /* the slot still holds last round's message */
        } else {
            pos = atomic_load_explicit(&c->tail, memory_order_relaxed);
        }
    }
}

static void publish(struct slot *s, uint64_t pos, int kind, void *msg, mio_fd fd)
{
    s->kind = (uint32_t)kind;
    s->fd = fd;
    s->msg = msg;
    /* seq_cst, not just release: it pairs with the loop's store of
     * `sleeping` (see the top of this file). */
    atomic_store_explicit(&s->seq, pos + 1, memory_order_seq_cst);
}

static void wake(struct mio_channel *c)
{
    atomic_fetch_add_explicit(&c->waking, 1, memory_order_seq_cst);
    /* A failed wake-up leaves nothing to undo: the message is queued and is
     * seen on the loop's next tick whatever woke it. */
    if (!atomic_load_explicit(&c->closed, memory_order_seq_cst))
        (void)mio__poll_wake(c->poll);
    atomic_fetch_sub_explicit(&c->waking, 1, memory_order_release);
}

/* After a publish: wakes the loop if it may be asleep. */
static void notify(struct mio_channel *c)
{
    if (atomic_load_explicit(&c->sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(&c->sleeping, 0, memory_order_relaxed))
        wake(c);
}

int mio__channel_send(struct mio_channel *c, int kind, void *msg, mio_fd fd)
{
    struct slot *s;
    uint64_t pos;

    if (atomic_load_explicit(&c->closed, memory_order_acquire))
        return MIO_EPIPE;
    if ((s = claim(c, &pos)) == NULL)
        return MIO_EAGAIN;
    publish(s, pos, kind, msg, fd);
    notify(c);
    return 0;
}

int mio__channel_claim(struct mio_channel *c, struct mio_chan_claim *t)
{
    if (atomic_load_explicit(&c->closed, memory_order_acquire))
        return MIO_EPIPE;
    t->slot = claim(c, &t->pos);
    return t->slot != NULL ? 0 : MIO_EAGAIN;
}

void mio__channel_publish(struct mio_channel *c, const struct mio_chan_claim *t, int kind,
                          void *msg, mio_fd fd)
{
    publish(t->slot, t->pos, kind, msg, fd);
    notify(c);
}

int mio_sender_send(mio_sender *s, void *msg)
{
    if (s == NULL)
        return MIO_EINVAL;
    return mio__channel_send(s->chan, MIO__MSG_USER, msg, MIO_INVALID_FD);
}

int mio_sender_clone(mio_sender *s, mio_sender **out)
{
    if (out != NULL)
        *out = NULL;
    if (s == NULL || out == NULL)
        return MIO_EINVAL;
    return mio__channel_sender(s->chan, out);
}

void mio_sender_free(mio_sender *s)
{
    if (s == NULL)
        return;
    release(s->chan);
    mio__free(s);
}
