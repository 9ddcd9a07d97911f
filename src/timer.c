/* The hashed timer wheel.
 *
 * Time is cut into ticks of tick_ns; a timeout is due at the absolute tick
 * `deadline`, its delay rounded up to a tick boundary so it never fires early.
 * `cur` is a lower bound of every pending deadline, and the wheel's window is
 * the next `wheel` ticks [cur, cur + wheel).  Each slot s has two lists:
 *
 *   near  the timeouts due at the one tick of the window that maps to s,
 *         in the order they were set;
 *   far   the timeouts of slot s due beyond the window (later turns).
 *
 * So the earliest deadline is the first non-empty near list after cur (a
 * bitmap finds it), and popping is taking that list's head.  When cur moves
 * forward, the slots it passes now stand for ticks one turn later; their far
 * lists are walked once and what entered the window moves to near.  Each far
 * timeout is thus touched once per turn it waits, the usual cost of a hashed
 * wheel.  Polls move cur to the earliest deadline, or to the clock when
 * nothing is due, never further: a timeout set later is never before cur.
 * The earliest far deadline is kept per slot, so even a wheel whose window
 * is empty answers mio_timer_next() exactly with one pass over the slots.
 * That pass is put off: cancelling or popping the earliest timeout leaves
 * `earliest` a lower bound, exact again only when asked for or reached.  A
 * server that re-arms an idle timeout on every event keeps cancelling the
 * earliest one and would otherwise pay for the pass once per loop tick.
 *
 * Every timeout lives in one slab of exactly `capacity` nodes allocated up
 * front; lists link slab indices.  The list heads are sentinel nodes placed
 * after the slab, which makes every list circular: unlinking needs no
 * branch and no knowledge of which list holds the node.  A handle is the
 * node's index plus one (so 0 is never valid) under its generation, which
 * is odd while the node is pending and moves on each time it is set or
 * released: a stale handle does not match a reused node (short of 2^31
 * reuses of that one node, when the 32-bit generation wraps). */
#include "timer.h"

#include "common.h"

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#define NIL UINT32_MAX
#define NO_TICK UINT64_MAX

#define DEFAULT_TICK_NS  MIO_MSEC
#define DEFAULT_WHEEL    1024u
#define DEFAULT_CAPACITY 65536u
/* Indices are 32 bits: the slab, two sentinels per slot and NIL must fit. */
#define MAX_WHEEL        (1u << 24)
#define MAX_CAPACITY     (1u << 31)

struct node {
    uint64_t deadline;          /* absolute tick at which it is due */
    void *arg;
    uint32_t next, prev;        /* links (slab indices); free nodes use next */
    uint32_t gen;               /* odd while pending; carried by the handle */
    uint32_t round;             /* the timer's round when it was set */
};

/* The earliest deadline of a far list.  Cancelling that very timeout leaves
 * `min` a lower bound marked stale; it is made exact again when needed. */
struct far_min {
    uint64_t min;               /* NO_TICK when the list is empty */
    bool stale;
};

struct mio_timer {
    struct node *nodes;         /* capacity timeouts, then near and far heads */
    uint64_t *near_bits;        /* per slot: its near list may be non-empty */
    struct far_min *far;        /* per slot */
    uint64_t tick_ns;
    uint64_t tick_inverse;      /* UINT64_MAX / tick_ns, to divide by multiplying */
    uint64_t max_ns;            /* deadlines are clamped here: ticks * tick_ns fits */
    uint64_t cur;               /* no pending deadline is earlier */
    uint64_t earliest;          /* no pending deadline is earlier (pending > 0) */
    bool earliest_exact;        /* and one is due then */
    uint32_t wheel, mask, words;
    uint32_t capacity;
    uint32_t free_head;
    uint32_t pending, far_pending;
    uint32_t round;             /* see mio__timer_new_round */
};

/* ---- arithmetic ---------------------------------------------------------- */

static uint64_t mul_high(uint64_t a, uint64_t b)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)a * b) >> 64);
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64))
    return __umulh(a, b);
#else
    uint64_t a_lo = (uint32_t)a, a_hi = a >> 32, b_lo = (uint32_t)b, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi;
    uint64_t mid = (lo_lo >> 32) + (uint32_t)hi_lo + (uint32_t)lo_hi;
    return a_hi * b_hi + (hi_lo >> 32) + (lo_hi >> 32) + (mid >> 32);
#endif
}

static unsigned lowest_bit(uint64_t x)     /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64))
    unsigned long i;
    _BitScanForward64(&i, x);
    return (unsigned)i;
#else
    unsigned i = 0;
    while ((x & 1) == 0) {
        x >>= 1;
        i++;
    }
    return i;
#endif
}

/* floor(ns / tick_ns) without a division.  With inverse = floor((2^64-1)/d),
 * ns * inverse / 2^64 falls short of ns / d by less than one for any 64-bit
 * ns, so the product's high half is the quotient or one below it, and the
 * remainder tells which. */
static uint64_t ticks_of(const mio_timer *t, uint64_t ns)
{
    uint64_t q = mul_high(ns, t->tick_inverse);
    if (ns - q * t->tick_ns >= t->tick_ns)
        q++;
    return q;
}

static uint64_t clamp_now(const mio_timer *t, int64_t now_ns)
{
    if (now_ns < 0)
        return 0;
    return (uint64_t)now_ns < t->max_ns ? (uint64_t)now_ns : t->max_ns;
}

/* ---- circular lists over the slab ---------------------------------------- */

static uint32_t near_head(const mio_timer *t, uint32_t slot)
{
    return t->capacity + slot;
}

static uint32_t far_head(const mio_timer *t, uint32_t slot)
{
    return t->capacity + t->wheel + slot;
}

static bool list_empty(const mio_timer *t, uint32_t head)
{
    return t->nodes[head].next == head;
}

static void list_append(mio_timer *t, uint32_t head, uint32_t i)
{
    struct node *n = t->nodes;
    uint32_t tail = n[head].prev;
    n[i].prev = tail;
    n[i].next = head;
    n[tail].next = i;
    n[head].prev = i;
}

static void list_unlink(mio_timer *t, uint32_t i)
{
    struct node *n = t->nodes;
    n[n[i].prev].next = n[i].next;
    n[n[i].next].prev = n[i].prev;
}

static void near_mark(mio_timer *t, uint32_t slot)
{
    t->near_bits[slot >> 6] |= (uint64_t)1 << (slot & 63);
}

static void near_unmark(mio_timer *t, uint32_t slot)
{
    t->near_bits[slot >> 6] &= ~((uint64_t)1 << (slot & 63));
}

/* Window ticks are [cur, cur + wheel); everything later waits in far lists. */
static bool is_far(const mio_timer *t, uint64_t deadline)
{
    return deadline - t->cur >= t->wheel;
}

/* ---- the earliest deadline ----------------------------------------------- */

/* The first slot from `from` on, wrapping around, whose near bit is set; NIL
 * if none.  The last word is looked at twice: the second time for the bits
 * below `from`. */
static uint32_t near_next_marked(const mio_timer *t, uint32_t from)
{
    uint32_t w = from >> 6, i;
    uint64_t bits = t->near_bits[w] & (~(uint64_t)0 << (from & 63));
    for (i = 0; i <= t->words; i++) {
        if (bits != 0)
            return (w << 6) + lowest_bit(bits);
        w = w + 1 == t->words ? 0 : w + 1;
        bits = t->near_bits[w];
    }
    return NIL;
}

/* The exact earliest deadline of far list `slot`.  A stale minimum is still a
 * lower bound, so the walk stops as soon as it meets a timeout due then. */
static uint64_t far_earliest(mio_timer *t, uint32_t slot)
{
    struct far_min *f = &t->far[slot];
    if (f->stale) {
        uint32_t head = far_head(t, slot), i;
        uint64_t best = NO_TICK;
        for (i = t->nodes[head].next; i != head; i = t->nodes[i].next) {
            uint64_t d = t->nodes[i].deadline;
            if (d < best)
                best = d;
            if (d == f->min)
                break;
        }
        f->min = best;
        f->stale = false;
    }
    return f->min;
}

/* Finds the earliest pending deadline (pending > 0): the first non-empty near
 * list of the window if any, else the earliest far deadline of any slot.
 * Near bits are only hints (cancelling does not clear them), so a bit whose
 * list turns out empty is cleared here. */
static uint64_t find_earliest(mio_timer *t)
{
    uint64_t best = NO_TICK;
    uint32_t start = (uint32_t)(t->cur & t->mask), slot;

    while ((slot = near_next_marked(t, start)) != NIL) {
        if (!list_empty(t, near_head(t, slot)))
            return t->cur + ((slot - start) & t->mask);
        near_unmark(t, slot);
    }
    for (slot = 0; slot < t->wheel && t->far_pending > 0; slot++) {
        uint64_t d = far_earliest(t, slot);
        if (d < best)
            best = d;
    }
    return best;
}

/* The exact earliest deadline (pending > 0).  Only the cache changes, never
 * what the timer holds, which is why the const queries may call this. */
static uint64_t earliest(const mio_timer *ct)
{
    mio_timer *t = (mio_timer *)ct;   /* every mio_timer is heap-allocated, never const */
    if (!t->earliest_exact) {
        t->earliest = find_earliest(t);
        t->earliest_exact = true;
    }
    return t->earliest;
}

/* ---- moving the window ---------------------------------------------------- */

/* Moves the far timeouts of `slot` that the window now covers to its near
 * list (in their set order, which the far list kept), and recomputes the
 * earliest of those left. */
static void far_promote(mio_timer *t, uint32_t slot)
{
    uint32_t head = far_head(t, slot), near = near_head(t, slot);
    uint32_t i = t->nodes[head].next, next;
    uint64_t best = NO_TICK;
    bool moved = false;

    for (; i != head; i = next) {
        uint64_t d = t->nodes[i].deadline;
        next = t->nodes[i].next;
        if (!is_far(t, d)) {
            list_unlink(t, i);
            list_append(t, near, i);
            t->far_pending--;
            moved = true;
        } else if (d < best) {
            best = d;
        }
    }
    if (moved)
        near_mark(t, slot);
    t->far[slot].min = best;
    t->far[slot].stale = false;
}

/* Moves cur to `to`, which no pending deadline precedes.  The slots of the
 * ticks passed now stand for ticks one turn later (after a whole turn or
 * more, every slot does), so their far lists are promoted. */
static void advance(mio_timer *t, uint64_t to)
{
    uint64_t from = t->cur, passed = to - from, k;

    t->cur = to;
    if (passed > t->wheel)
        passed = t->wheel;
    for (k = 0; k < passed && t->far_pending > 0; k++) {
        uint32_t slot = (uint32_t)((from + k) & t->mask);
        if (!list_empty(t, far_head(t, slot)))
            far_promote(t, slot);
    }
}

/* ---- public calls --------------------------------------------------------- */

int mio_timer_new(uint64_t tick_ns, size_t wheel_size, size_t capacity, mio_timer **out)
{
    mio_timer *t;
    size_t wheel = 1, nodes, i;

    if (out == NULL)
        return MIO_EINVAL;
    *out = NULL;
    if (tick_ns == 0)
        tick_ns = DEFAULT_TICK_NS;
    if (wheel_size == 0)
        wheel_size = DEFAULT_WHEEL;
    if (capacity == 0)
        capacity = DEFAULT_CAPACITY;
    if (tick_ns > (uint64_t)INT64_MAX / 2 || wheel_size > MAX_WHEEL || capacity > MAX_CAPACITY)
        return MIO_EINVAL;
    while (wheel < wheel_size)      /* a power of two, so slots are a mask away */
        wheel <<= 1;
    nodes = capacity + 2 * wheel;
    if (nodes > SIZE_MAX / sizeof(struct node))
        return MIO_ENOMEM;

    t = mio__calloc(1, sizeof *t);
    if (t == NULL)
        return MIO_ENOMEM;
    t->wheel = (uint32_t)wheel;
    t->mask = (uint32_t)wheel - 1;
    t->words = (uint32_t)((wheel + 63) / 64);
    t->capacity = (uint32_t)capacity;
    t->nodes = mio__malloc(nodes * sizeof *t->nodes);
    t->near_bits = mio__calloc(t->words, sizeof *t->near_bits);
    t->far = mio__malloc(wheel * sizeof *t->far);
    if (t->nodes == NULL || t->near_bits == NULL || t->far == NULL) {
        mio_timer_free(t);
        return MIO_ENOMEM;
    }

    t->tick_ns = tick_ns;
    t->tick_inverse = UINT64_MAX / tick_ns;
    t->max_ns = (uint64_t)INT64_MAX - tick_ns;
    t->cur = ticks_of(t, clamp_now(t, mio__now_ns()));
    for (i = 0; i < capacity; i++) {
        t->nodes[i].next = i + 1 < capacity ? (uint32_t)(i + 1) : NIL;
        t->nodes[i].gen = 0;
    }
    t->free_head = 0;
    for (i = capacity; i < nodes; i++)
        t->nodes[i].next = t->nodes[i].prev = (uint32_t)i;
    for (i = 0; i < wheel; i++) {
        t->far[i].min = NO_TICK;
        t->far[i].stale = false;
    }
    *out = t;
    return 0;
}

void mio_timer_free(mio_timer *t)
{
    if (t == NULL)
        return;
    mio__free(t->nodes);
    mio__free(t->near_bits);
    mio__free(t->far);
    mio__free(t);
}

/* mio_timer_set (when is a delay) and mio_timer_set_at (when is a clock
 * reading, absolute).  Inlined into each, where `absolute` is a constant:
 * mio_timer_set, on every re-armed idle timeout, pays nothing for the
 * other. */
static MIO_INLINE int arm(mio_timer *t, uint64_t when, bool absolute, void *arg,
                          mio_timeout *out)
{
    uint64_t now, deadline;
    uint32_t i, slot;
    struct node *n;

    if (t == NULL || out == NULL)
        return MIO_EINVAL;
    if (MIO_UNLIKELY(t->free_head == NIL))
        return MIO_ENOSPC;

    now = clamp_now(t, mio__now_ns());
    if (MIO_UNLIKELY(t->pending == 0)) {   /* nothing to promote: the window may jump */
        uint64_t now_tick = ticks_of(t, now);
        if (now_tick > t->cur)
            t->cur = now_tick;
    }
    /* Due at the first tick boundary at or after now + delay, or the
     * deadline; a zero delay, or a deadline reached, is due at once (at the
     * tick already begun). */
    if (absolute ? when <= now : when == 0) {
        deadline = ticks_of(t, now);
    } else {
        uint64_t due = absolute ? (when < t->max_ns ? when : t->max_ns)
                                : (when < t->max_ns - now ? now + when : t->max_ns);
        deadline = ticks_of(t, due + t->tick_ns - 1);
    }
    if (MIO_UNLIKELY(deadline < t->cur))   /* a poll_at() was given a later reading */
        deadline = t->cur;

    i = t->free_head;
    n = &t->nodes[i];
    t->free_head = n->next;
    n->deadline = deadline;
    n->arg = arg;
    n->gen++;
    n->round = t->round;

    slot = (uint32_t)(deadline & t->mask);
    if (!is_far(t, deadline)) {
        list_append(t, near_head(t, slot), i);
        near_mark(t, slot);
    } else {
        struct far_min *f = &t->far[slot];
        list_append(t, far_head(t, slot), i);
        t->far_pending++;
        if (deadline <= f->min) {   /* at or below a stale bound is exact too */
            f->min = deadline;
            f->stale = false;
        }
    }
    if (t->pending == 0 || deadline <= t->earliest) {
        t->earliest = deadline;
        t->earliest_exact = true;
    }
    t->pending++;
    *out = ((uint64_t)n->gen << 32) | (i + 1);
    return 0;
}

int mio_timer_set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out)
{
    return arm(t, delay_ns, false, arg, out);
}

int mio_timer_set_at(mio_timer *t, int64_t deadline_ns, void *arg, mio_timeout *out)
{
    return arm(t, deadline_ns > 0 ? (uint64_t)deadline_ns : 0, true, arg, out);
}

/* Returns node i to the free list; its generation moves on, so its handle
 * is stale from now on. */
static void release(mio_timer *t, uint32_t i)
{
    t->nodes[i].gen++;
    t->nodes[i].next = t->free_head;
    t->free_head = i;
    t->pending--;
}

bool mio_timer_cancel(mio_timer *t, mio_timeout timeout)
{
    uint32_t i, gen, slot;
    uint64_t deadline;

    if (t == NULL)
        return false;
    i = (uint32_t)timeout - 1;      /* 0 wraps to NIL, out of range */
    gen = (uint32_t)(timeout >> 32);
    if (i >= t->capacity || (gen & 1) == 0 || t->nodes[i].gen != gen)
        return false;

    deadline = t->nodes[i].deadline;
    slot = (uint32_t)(deadline & t->mask);
    list_unlink(t, i);
    if (is_far(t, deadline)) {
        t->far_pending--;
        if (deadline == t->far[slot].min)
            t->far[slot].stale = true;
        if (deadline == t->earliest)
            t->earliest_exact = false;
    } else if (deadline == t->earliest && list_empty(t, near_head(t, slot))) {
        t->earliest_exact = false;
    }
    release(t, i);
    return true;
}

int64_t mio__timer_next_at(const mio_timer *t, int64_t now_ns)
{
    uint64_t due, now;

    if (t == NULL || t->pending == 0)
        return -1;
    now = clamp_now(t, now_ns);
    due = earliest(t) * t->tick_ns;
    return due > now ? (int64_t)(due - now) : 0;
}

int64_t mio__timer_bound_at(const mio_timer *t, int64_t now_ns)
{
    uint64_t due, now;

    if (t == NULL || t->pending == 0)
        return -1;
    now = clamp_now(t, now_ns);
    due = t->earliest * t->tick_ns;
    if (due <= now && !t->earliest_exact)   /* a stale bound reached: look */
        due = earliest(t) * t->tick_ns;
    return due > now ? (int64_t)(due - now) : 0;
}

int64_t mio_timer_next(const mio_timer *t)
{
    if (t == NULL || t->pending == 0)
        return -1;
    return mio__timer_next_at(t, mio__now_ns());
}

/* Only a timeout of zero delay set in this round can be due at once, and it
 * is due at the latest tick that is (delay > 0 is due at a later tick than
 * the clock's), behind every timeout of that tick set before: so the first
 * one of this round at the head of the earliest list means that no earlier
 * timeout is left due. */
static bool poll_at(mio_timer *t, int64_t now_ns, void **arg, bool old_only)
{
    uint64_t due, now_tick;
    uint32_t slot, head, i;

    if (t == NULL || t->pending == 0)
        return false;
    due = t->earliest;
    now_tick = ticks_of(t, clamp_now(t, now_ns));
    if (due <= now_tick && !t->earliest_exact)
        due = earliest(t);
    if (due > now_tick) {
        /* Keep the window on the clock, so that timeouts set from now on
         * land in near lists: the far ones are promoted a few slots at a
         * time as ticks pass rather than all at once later. */
        if (now_tick > t->cur)
            advance(t, now_tick);
        return false;
    }
    if (due != t->cur)
        advance(t, due);

    slot = (uint32_t)(due & t->mask);
    head = near_head(t, slot);
    i = t->nodes[head].next;
    if (old_only && t->nodes[i].round == t->round)
        return false;
    list_unlink(t, i);
    if (list_empty(t, head)) {
        near_unmark(t, slot);
        t->earliest_exact = false;
    }
    if (arg != NULL)
        *arg = t->nodes[i].arg;
    release(t, i);
    return true;
}

bool mio__timer_poll_at(mio_timer *t, int64_t now_ns, void **arg)
{
    return poll_at(t, now_ns, arg, false);
}

void mio__timer_new_round(mio_timer *t)
{
    t->round++;
}

bool mio__timer_poll_old_at(mio_timer *t, int64_t now_ns, void **arg)
{
    return poll_at(t, now_ns, arg, true);
}

size_t mio__timer_pending(const mio_timer *t)
{
    return t != NULL ? t->pending : 0;
}

bool mio_timer_poll(mio_timer *t, void **arg)
{
    if (t == NULL || t->pending == 0)
        return false;
    return mio__timer_poll_at(t, mio__now_ns(), arg);
}
