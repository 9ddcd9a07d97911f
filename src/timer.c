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
 * wheel.  Polls move cur to the earliest deadline, and placing new timeouts
 * moves it to the clock (once it lags by an eighth of a turn) when nothing
 * is due before, never further: a timeout set later is never before cur.
 * A lower bound of its far deadlines is kept per slot, lowered when one is
 * placed and left alone when one goes, so even a wheel whose window is
 * empty answers mio_timer_next() exactly with one pass over the slots,
 * which walks the far lists whose bound is below the best found so far; and
 * moving cur walks only the far lists whose bound may be in the window.
 * That pass is put off: cancelling, resetting or popping the earliest
 * timeout leaves `earliest` a lower bound, exact again only when asked for
 * or reached.  A server that re-arms an idle timeout on every event keeps
 * moving the earliest one and would otherwise pay for the pass once per
 * loop tick.
 *
 * Every timeout lives in one slab of exactly `capacity` nodes allocated up
 * front; lists link slab indices.  Nodes never used yet are handed out in
 * order (`fresh`), released ones from a free list: a run of sets on a new
 * timer chases no link.  The list heads are sentinel nodes placed
 * after the slab, which makes every list circular: unlinking needs no
 * branch and no knowledge of which list holds the node.  A handle is the
 * node's index plus one (so 0 is never valid) under its generation, which
 * is odd while the node is pending and moves on each time it is set or
 * released: a stale handle does not match a reused node (short of 2^31
 * reuses of that one node, when the 32-bit generation wraps).
 *
 * A set reads no clock: its node waits on a small stage, in no list, with
 * its delay, until the timer next has a clock reading (mio_timer_next and
 * mio_timer_poll take one, the loop hands it its own, and a full stage takes
 * one), which was taken after the set and so is never too early to count
 * the delay from.  Flushing the stage gives each node its deadline as of
 * that reading and places it.  Reading the clock costs several times what a
 * set does otherwise.  A stage entry is the handle: an entry whose node was
 * cancelled, or cancelled and set again (a later entry), no longer matches
 * its generation and is passed over, so each set is placed once, in set
 * order. */
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
/* Sets per clock reading at most: the reading's cost spread thin, the
 * staged nodes still in the cache when they are placed. */
#define STAGE            256u
/* Indices are 32 bits: the slab, two sentinels per slot and NIL must fit. */
#define MAX_WHEEL        (1u << 24)
#define MAX_CAPACITY     (1u << 31)

/* The sets, resets and cancels are leaves: their rare ends (a flush) are
 * functions apart, and what they share is inlined. */
#if defined(__GNUC__) || defined(__clang__)
#define COLD __attribute__((noinline, cold))
#define INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define COLD __declspec(noinline)
#define INLINE static __forceinline
#else
#define COLD
#define INLINE static inline
#endif

/* prev and next apart: stored side by side, GCC pairs them through a
 * vector register, which costs more than it saves. */
struct node {
    uint64_t deadline;          /* absolute tick at which it is due; staged: the delay */
    void *arg;
    uint32_t prev;              /* links (slab indices); NIL while staged (in no list) */
    uint32_t gen;               /* odd while pending; carried by the handle */
    uint32_t next;              /* free nodes use next */
    uint32_t round;             /* the timer's round when it was set */
};

struct mio_timer {
    struct node *nodes;         /* capacity timeouts, then near and far heads */
    uint64_t *near_bits;        /* per slot: its near list may be non-empty */
    uint64_t *far_min;          /* per slot: no deadline of its far list is earlier */
    uint64_t *stage;            /* handles set since the last flush, in set order */
    uint64_t tick_ns;
    uint64_t tick_inverse;      /* UINT64_MAX / tick_ns, to divide by multiplying */
    uint64_t max_ns;            /* deadlines are clamped here: ticks * tick_ns fits */
    uint64_t cur;               /* no pending deadline is earlier */
    uint64_t move_ns;           /* a reading there moves cur to the clock, if it can */
    uint64_t earliest;          /* no pending deadline is earlier (pending > 0) */
    bool earliest_exact;        /* and one is due then */
    uint32_t wheel, mask, words;
    uint32_t lag;               /* ticks cur may fall behind the clock (move_ns) */
    uint32_t capacity;
    uint32_t free_head;         /* released nodes; NIL: none */
    uint32_t fresh;             /* nodes ever handed out: the rest never were */
    uint32_t pending;           /* in the wheel (staged ones are not) */
    uint32_t staged, stage_size;    /* stage entries */
    uint32_t stage_limit;       /* entries that make a flush: 1 sets eagerly */
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

/* The exact earliest deadline of far list `slot`, which becomes its bound.
 * A timeout due at the bound ends the walk: the bound is exact. */
static uint64_t far_exact(mio_timer *t, uint32_t slot)
{
    uint32_t head = far_head(t, slot), i;
    uint64_t best = NO_TICK, bound = t->far_min[slot];

    for (i = t->nodes[head].next; i != head && best != bound; i = t->nodes[i].next)
        if (t->nodes[i].deadline < best)
            best = t->nodes[i].deadline;
    t->far_min[slot] = best;
    return best;
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
    for (slot = 0; slot < t->wheel; slot++) {
        if (t->far_min[slot] < best) {
            uint64_t d = far_exact(t, slot);
            if (d < best)
                best = d;
        }
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
            moved = true;
        } else if (d < best) {
            best = d;
        }
    }
    if (moved)
        near_mark(t, slot);
    t->far_min[slot] = best;
}

/* Moves cur to `to`, which no pending deadline precedes.  The slots of the
 * ticks passed now stand for ticks one turn later (after a whole turn or
 * more, every slot does), so their far lists are promoted, those whose
 * bound says that some of it may now be in the window. */
static void advance(mio_timer *t, uint64_t to)
{
    uint64_t from = t->cur, passed = to - from, k;

    t->cur = to;
    t->move_ns = (to + t->lag) * t->tick_ns;
    if (passed > t->wheel)
        passed = t->wheel;
    for (k = 0; k < passed; k++) {
        uint32_t slot = (uint32_t)((from + k) & t->mask);
        if (t->far_min[slot] < to + t->wheel && !list_empty(t, far_head(t, slot)))
            far_promote(t, slot);
    }
}

/* ---- placing ---------------------------------------------------------------- */

/* The deadline of a delay as of `now` (a clamped reading; room: max_ns -
 * now): the first tick boundary at or after now + delay, or at once (the
 * tick already begun) for a zero delay. */
INLINE uint64_t deadline_of(const mio_timer *t, uint64_t delay, uint64_t now, uint64_t room)
{
    const uint64_t tick = t->tick_ns;
    uint64_t d;

    if (MIO_LIKELY(delay != 0)) {
        uint64_t due = (delay < room ? now + delay : t->max_ns) + tick - 1;
        d = mul_high(due, t->tick_inverse);     /* ticks_of(due) */
        if (due - d * tick >= tick)
            d++;
    } else {
        d = ticks_of(t, now);
    }
    return d < t->cur ? t->cur : d;     /* a poll_at() was given a later reading */
}

/* Links staged node i into the wheel at deadline d; with `count`, counts it
 * pending too (else the caller does).  Returns the list's head. */
INLINE uint32_t place(mio_timer *t, uint32_t i, uint64_t d, bool count)
{
    struct node *nodes = t->nodes, *n = &nodes[i];
    uint32_t slot = (uint32_t)d & t->mask, head, tail;

    if (d - t->cur < t->wheel) {
        head = t->capacity + slot;
        t->near_bits[slot >> 6] |= (uint64_t)1 << (slot & 63);
    } else {
        head = t->capacity + t->wheel + slot;
        if (d < t->far_min[slot])
            t->far_min[slot] = d;
    }
    if (count && (t->pending++ == 0 || d <= t->earliest)) {
        t->earliest = d;
        t->earliest_exact = true;
    }
    tail = nodes[head].prev;
    n->deadline = d;
    n->prev = tail;
    n->next = head;
    nodes[tail].next = i;
    nodes[head].prev = i;
    return head;
}

/* Before placing as of `now`: moves the window to the clock, so that what
 * is placed lands in near lists when it can, unless a deadline comes
 * first (`earliest` is a lower bound of them all).  Once cur lags by an
 * eighth of a turn, not every tick: each call costs more than a slot. */
static COLD void keep_window(mio_timer *t, uint64_t now)
{
    uint64_t now_tick = ticks_of(t, now);
    uint64_t to = t->pending == 0 || now_tick < t->earliest ? now_tick : t->earliest;
    if (to > t->cur)
        advance(t, to);
}

/* Places the stage as of `now`, a clamped reading.  batch (a constant): the
 * counts are kept in locals and written once, which costs less per timeout
 * and more per call (t's fields cannot stay in registers across the node
 * stores); and a timeout whose delay is the one placed just before has its
 * deadline, so it goes right after it: timeouts set together often share
 * their delay. */
INLINE void place_stage(mio_timer *t, uint64_t now, bool batch)
{
    const uint64_t *e = t->stage, *end = e + t->staged;
    uint64_t room = t->max_ns - now, first = NO_TICK, last = 0, d = 0;
    uint32_t placed = t->staged, head = NIL, after = NIL;  /* after: the one placed last */

    t->staged = 0;
    if (MIO_UNLIKELY(now >= t->move_ns))
        keep_window(t, now);
    for (; e != end; e++) {
        struct node *nodes = t->nodes;
        uint32_t i = (uint32_t)*e - 1;
        if (nodes[i].gen != (uint32_t)(*e >> 32)) {
            placed--;   /* cancelled */
            continue;
        }
        if (batch && nodes[i].deadline == last && after != NIL) {
            nodes[i].deadline = d;
            nodes[i].prev = after;
            nodes[i].next = head;
            nodes[after].next = i;
            nodes[head].prev = i;
        } else {
            last = nodes[i].deadline;
            d = deadline_of(t, last, now, room);
            first = d < first ? d : first;
            head = place(t, i, d, !batch);
        }
        after = i;
    }
    if (batch && placed != 0) {
        if (t->pending == 0 || first <= t->earliest) {
            t->earliest = first;
            t->earliest_exact = true;
        }
        t->pending += placed;
    }
}

static void flush(mio_timer *t, int64_t now_ns)
{
    place_stage(t, clamp_now(t, now_ns < 0 ? mio__now_ns() : now_ns), true);
}

void mio__timer_flush(mio_timer *t, int64_t now_ns)
{
    if (t->staged != 0)
        flush(t, now_ns);
}

size_t mio__timer_pending(mio_timer *t)
{
    mio__timer_flush(t, -1);
    return t->pending;
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
    t->stage_size = capacity < STAGE ? (uint32_t)capacity : STAGE;
    t->stage_limit = t->stage_size;
    t->nodes = mio__malloc(nodes * sizeof *t->nodes);
    t->near_bits = mio__calloc(t->words, sizeof *t->near_bits);
    t->far_min = mio__malloc(wheel * sizeof *t->far_min);
    t->stage = mio__malloc(t->stage_size * sizeof *t->stage);
    if (t->nodes == NULL || t->near_bits == NULL || t->far_min == NULL || t->stage == NULL) {
        mio_timer_free(t);
        return MIO_ENOMEM;
    }

    t->tick_ns = tick_ns;
    t->tick_inverse = UINT64_MAX / tick_ns;
    t->max_ns = (uint64_t)INT64_MAX - tick_ns;
    t->lag = t->wheel >= 16 ? t->wheel / 8 : 1;
    t->cur = ticks_of(t, clamp_now(t, mio__now_ns()));
    t->move_ns = (t->cur + t->lag) * tick_ns;
    for (i = 0; i < capacity; i++)     /* the pages are touched here, not by the sets */
        t->nodes[i].gen = 0;
    t->free_head = NIL;
    for (i = capacity; i < nodes; i++)
        t->nodes[i].next = t->nodes[i].prev = (uint32_t)i;
    for (i = 0; i < wheel; i++)
        t->far_min[i] = NO_TICK;
    *out = t;
    return 0;
}

void mio_timer_free(mio_timer *t)
{
    if (t == NULL)
        return;
    mio__free(t->nodes);
    mio__free(t->near_bits);
    mio__free(t->far_min);
    mio__free(t->stage);
    mio__free(t);
}

void mio__timer_defer(mio_timer *t, bool defer)
{
    t->stage_limit = defer ? t->stage_size : 1;
    if (!defer)
        mio__timer_flush(t, -1);
}

/* Stages pending node i, whose handle is h: true when the stage is full. */
INLINE bool stage(mio_timer *t, uint32_t i, mio_timeout h, uint64_t delay_ns)
{
    struct node *n = &t->nodes[i];
    uint32_t k = t->staged;

    n->deadline = delay_ns;
    n->prev = NIL;
    n->round = t->round;
    t->stage[k] = h;
    t->staged = ++k;
    return k >= t->stage_limit;
}

/* The end of a set that filled the stage: a clock reading, taken after all
 * of them, places them. */
static COLD int flush_full(mio_timer *t)
{
    flush(t, -1);
    return 0;
}

INLINE int set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out)
{
    uint32_t i = t->free_head, gen;
    struct node *n;
    mio_timeout h;

    if (i != NIL) {
        t->free_head = t->nodes[i].next;
    } else if (MIO_LIKELY(t->fresh != t->capacity)) {
        i = t->fresh++;
    } else {
        if (out != NULL)
            *out = 0;
        return MIO_ENOSPC;
    }
    n = &t->nodes[i];
    gen = n->gen + 1;
    n->arg = arg;
    n->gen = gen;
    h = ((uint64_t)gen << 32) | (i + 1);
    if (out != NULL)
        *out = h;
    if (MIO_UNLIKELY(stage(t, i, h, delay_ns)))
        return flush_full(t);
    return 0;
}

int mio__timer_set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out)
{
    return set(t, delay_ns, arg, out);
}

int mio_timer_set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out)
{
    if (t == NULL || out == NULL)
        return MIO_EINVAL;
    return set(t, delay_ns, arg, out);
}

/* Placed at once rather than staged: an absolute deadline needs no later
 * clock reading to be never early.  What was staged before goes first, so
 * equal deadlines still pop in set order. */
int mio_timer_set_at(mio_timer *t, int64_t deadline_ns, void *arg, mio_timeout *out)
{
    uint64_t now, when = deadline_ns > 0 ? (uint64_t)deadline_ns : 0;
    uint32_t i, gen;
    struct node *n;

    if (t == NULL || out == NULL)
        return MIO_EINVAL;
    mio__timer_flush(t, -1);
    if ((i = t->free_head) != NIL)
        t->free_head = t->nodes[i].next;
    else if (t->fresh != t->capacity)
        i = t->fresh++;
    else
        return MIO_ENOSPC;
    now = clamp_now(t, mio__now_ns());
    if (MIO_UNLIKELY(now >= t->move_ns))
        keep_window(t, now);
    n = &t->nodes[i];
    gen = n->gen + 1;
    n->arg = arg;
    n->gen = gen;
    n->round = t->round;
    place(t, i, deadline_of(t, when > now ? when - now : 0, now, t->max_ns - now), true);
    *out = ((uint64_t)gen << 32) | (i + 1);
    return 0;
}

/* The node of a pending timeout's handle, or NIL. */
INLINE uint32_t pending_node(const mio_timer *t, mio_timeout timeout)
{
    uint32_t i = (uint32_t)timeout - 1, gen = (uint32_t)(timeout >> 32);

    /* 0 wraps to NIL, out of range; an even generation is a free node's */
    if (t == NULL || i >= t->fresh || (gen & 1) == 0 || t->nodes[i].gen != gen)
        return NIL;
    return i;
}

/* Takes pending node i out of the wheel, if it is there (a staged one is in
 * no list). */
INLINE void detach(mio_timer *t, uint32_t i)
{
    struct node *nodes = t->nodes;
    uint32_t prev = nodes[i].prev, next = nodes[i].next;

    if (prev == NIL)
        return;
    if (nodes[i].deadline == t->earliest)
        t->earliest_exact = false;
    t->pending--;
    nodes[prev].next = next;
    nodes[next].prev = prev;
}

/* Returns pending node i to the free list; its generation moves on, so its
 * handle (and its stage entry) is stale from now on. */
INLINE void release(mio_timer *t, uint32_t i)
{
    t->nodes[i].gen++;
    t->nodes[i].next = t->free_head;
    t->free_head = i;
}

bool mio_timer_cancel(mio_timer *t, mio_timeout timeout)
{
    uint32_t i = pending_node(t, timeout);

    if (i == NIL)
        return false;
    detach(t, i);
    release(t, i);
    return true;
}

/* A reset of a staged timeout places it first: it is set anew, after those
 * staged since, and its new entry must come after theirs. */
static COLD bool reset_staged(mio_timer *t, mio_timeout timeout, uint64_t delay_ns)
{
    flush(t, -1);
    return mio_timer_reset(t, timeout, delay_ns);
}

bool mio_timer_reset(mio_timer *t, mio_timeout timeout, uint64_t delay_ns)
{
    uint32_t i = pending_node(t, timeout);

    if (i == NIL)
        return false;
    if (MIO_UNLIKELY(t->nodes[i].prev == NIL))
        return reset_staged(t, timeout, delay_ns);
    detach(t, i);
    if (MIO_UNLIKELY(stage(t, i, timeout, delay_ns)))
        return flush_full(t) == 0;
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

/* A stale bound reached: the exact earliest is looked for (apart, so that
 * the bound is a leaf). */
static COLD int64_t bound_reached(const mio_timer *t, int64_t now_ns)
{
    return mio__timer_next_at(t, now_ns);
}

int64_t mio__timer_bound_at(const mio_timer *t, int64_t now_ns)
{
    uint64_t due, now;

    if (t == NULL || t->pending == 0)
        return -1;
    now = clamp_now(t, now_ns);
    due = t->earliest * t->tick_ns;
    if (due <= now && !t->earliest_exact)
        return bound_reached(t, now_ns);
    return due > now ? (int64_t)(due - now) : 0;
}

int64_t mio_timer_next(const mio_timer *t)
{
    int64_t now;

    if (t == NULL || (t->pending == 0 && t->staged == 0))
        return -1;
    now = mio__now_ns();
    mio__timer_flush((mio_timer *)t, now);  /* every mio_timer is heap-allocated */
    return mio__timer_next_at(t, now);
}

/* Only a timeout of zero delay placed in this round can be due at once, and
 * it is due at the latest tick that is (delay > 0 is due at a later tick
 * than the clock's), behind every timeout of that tick set before: so the
 * first one of this round at the head of the earliest list means that no
 * earlier timeout is left due. */
static bool poll_at(mio_timer *t, int64_t now_ns, void **arg, bool old_only)
{
    uint64_t due, now;
    uint32_t slot, head, i;

    if (t == NULL || t->pending == 0)
        return false;
    now = clamp_now(t, now_ns);
    if (now < t->earliest * t->tick_ns)     /* the common case: a bound not reached */
        return false;
    due = t->earliest_exact ? t->earliest : earliest(t);
    if (due > ticks_of(t, now))
        return false;
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
    t->pending--;
    release(t, i);
    return true;
}

bool mio__timer_poll_at(mio_timer *t, int64_t now_ns, void **arg)
{
    return poll_at(t, now_ns, arg, false);
}

/* begin with something staged, apart (see COLD).  Nothing is, as the loop
 * places everything before its tick ends. */
static COLD int64_t begin_flush(mio_timer *t, int64_t now_ns)
{
    flush(t, now_ns);
    return mio__timer_begin(t, now_ns);
}

int64_t mio__timer_begin(mio_timer *t, int64_t now_ns)
{
    if (t->staged != 0)
        return begin_flush(t, now_ns);
    t->stage_limit = t->stage_size;
    return mio__timer_bound_at(t, now_ns);
}

/* Most ticks have something staged: the flush is inlined here.  The loop's
 * reading needs no clamp (a monotonic clock is not negative, nor 292 years
 * on). */
bool mio__timer_new_round(mio_timer *t, int64_t now_ns)
{
    if (t->staged != 0)
        place_stage(t, (uint64_t)now_ns, false);
    t->stage_limit = 1;
    t->round++;
    return t->pending != 0 && now_ns >= (int64_t)(t->earliest * t->tick_ns);
}

bool mio__timer_poll_old_at(mio_timer *t, int64_t now_ns, void **arg)
{
    if (t->pending == 0 || now_ns < (int64_t)(t->earliest * t->tick_ns))
        return false;   /* the common case, before poll_at's prologue */
    return poll_at(t, now_ns, arg, true);
}

bool mio_timer_poll(mio_timer *t, void **arg)
{
    int64_t now;

    if (t == NULL || (t->pending == 0 && t->staged == 0))
        return false;
    now = mio__now_ns();
    mio__timer_flush(t, now);
    return poll_at(t, now, arg, false);
}
