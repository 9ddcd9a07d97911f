/* The timer wheel, alone.  It does not touch the backend; the harness still
 * runs every test once per backend.  Where a test needs "later" it asks the
 * timer as of a clock reading in the future (mio__timer_poll_at) instead of
 * sleeping, after placing what it set as of a real reading (set()); only the
 * never-early tests wait in real time, and they leave sets staged until the
 * timer reads the clock itself. */
#include "harness.h"
#include "timer.h"


static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t random_below(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static mio_timer *new_timer(uint64_t tick_ns, size_t wheel, size_t capacity)
{
    mio_timer *t = NULL;
    OK(mio_timer_new(tick_ns, wheel, capacity, &t));
    CHECK(t != NULL);
    return t;
}

/* A set left staged: its delay counts from the timer's next clock reading. */
static mio_timeout set_staged(mio_timer *t, uint64_t delay_ns, uintptr_t arg)
{
    mio_timeout h = 0;
    OK(mio_timer_set(t, delay_ns, (void *)arg, &h));
    CHECK(h != 0);
    return h;
}

/* A set placed at once, as of a reading taken after it, so that the
 * queries as of synthetic readings (the _at calls) see it. */
static mio_timeout set(mio_timer *t, uint64_t delay_ns, uintptr_t arg)
{
    mio_timeout h = set_staged(t, delay_ns, arg);
    mio__timer_flush(t, test_now_ns());
    return h;
}

/* Pops one timeout as of now_ns and returns its arg; fails if none is due. */
static uintptr_t pop_at(mio_timer *t, int64_t now)
{
    void *arg = NULL;
    CHECK(mio__timer_poll_at(t, now, &arg));
    return (uintptr_t)arg;
}

/* Sets timeouts of many delays (fixed and random, up to 40 ms) and polls in
 * real time: each must pop only once its delay has passed since before it
 * was set. */
static void check_never_early(uint64_t tick_ns, size_t wheel)
{
    enum { FIXED = 16, COUNT = 64 };
    static const int64_t fixed[FIXED] = {
        0, 1, 1000, 999 * MIO_USEC, MIO_MSEC, MIO_MSEC + 1, 1500 * MIO_USEC,
        2 * MIO_MSEC, 3333 * MIO_USEC, 7 * MIO_MSEC, 10 * MIO_MSEC,
        17 * MIO_MSEC, 25 * MIO_MSEC, 31 * MIO_MSEC, 33 * MIO_MSEC, 40 * MIO_MSEC,
    };
    int64_t delay[COUNT], start[COUNT], deadline;
    int fired[COUNT] = { 0 }, popped = 0, i;
    mio_timer *t = new_timer(tick_ns, wheel, COUNT);

    for (i = 0; i < COUNT; i++) {
        delay[i] = i < FIXED ? fixed[i] : (int64_t)random_below(40 * MIO_MSEC);
        start[i] = test_now_ns();
        set_staged(t, (uint64_t)delay[i], (uintptr_t)i);
    }
    deadline = test_now_ns() + 2 * MIO_SEC;
    while (popped < COUNT) {
        void *arg;
        if (mio_timer_poll(t, &arg)) {
            int64_t elapsed;
            i = (int)(uintptr_t)arg;
            elapsed = test_now_ns() - start[i];
            if (elapsed < delay[i])
                FAIL("timeout %d (delay %lld ns) fired after %lld ns", i,
                     (long long)delay[i], (long long)elapsed);
            CHECK_EQ(fired[i]++, 0);
            popped++;
        } else {
            CHECK(test_now_ns() < deadline);
            test_sleep_ns(100 * MIO_USEC);
        }
    }
    CHECK_EQ(mio_timer_next(t), -1);
    mio_timer_free(t);
}

TEST(never_early_default_tick)
{
    check_never_early(0, 0);
}

TEST(never_early_odd_tick)
{
    check_never_early(333333, 16);      /* not a power of two, many turns */
}

TEST(never_early_nanosecond_tick)
{
    check_never_early(1, 64);
}

TEST(never_early_coarse_tick)
{
    check_never_early(7 * MIO_MSEC, 4);
}

TEST(zero_delay_due_at_next_poll)
{
    mio_timer *t = new_timer(0, 0, 4);
    void *arg = NULL;
    set(t, 0, 1);
    CHECK(mio_timer_poll(t, &arg));
    CHECK_EQ((uintptr_t)arg, 1);
    set(t, 0, 2);                       /* after a poll moved the wheel */
    CHECK(mio_timer_poll(t, &arg));
    CHECK_EQ((uintptr_t)arg, 2);
    CHECK(!mio_timer_poll(t, &arg));
    mio_timer_free(t);
}

TEST(pops_earliest_first)
{
    /* Shuffled delays on an 8-slot wheel, polled long after all are due:
     * the wheel is many turns behind and must still pop in deadline order. */
    static const int64_t delay[] = { 30, 5, 12, 0, 3, 20, 1, 7, 50, 9, 64, 2 };
    enum { N = sizeof delay / sizeof delay[0] };
    mio_timer *t = new_timer(MIO_MSEC, 8, N);
    int64_t before[N], after[N], later;
    int i, last = -1;

    for (i = 0; i < N; i++) {
        before[i] = test_now_ns();
        set(t, (uint64_t)(delay[i] * MIO_MSEC), (uintptr_t)i);
        after[i] = test_now_ns();
    }
    later = test_now_ns() + 200 * MIO_MSEC;
    /* Each deadline lies in [before + delay, after + delay + tick]: a pop
     * whose deadline is surely earlier than the previous pop's is out of
     * order.  (With sets microseconds apart this is plain delay order.) */
    for (i = 0; i < N; i++) {
        int k = (int)pop_at(t, later);
        if (last >= 0)
            CHECK(after[k] + (delay[k] + 1) * MIO_MSEC >= before[last] + delay[last] * MIO_MSEC);
        last = k;
    }
    CHECK(!mio__timer_poll_at(t, later, NULL));
    mio_timer_free(t);
}

static void check_set_order(uint64_t delay_ns)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 16);
    int64_t later;
    uintptr_t i;
    for (i = 0; i < 16; i++)
        set(t, delay_ns, i);
    later = test_now_ns() + 100 * MIO_MSEC;
    for (i = 0; i < 16; i++)
        CHECK_EQ(pop_at(t, later), i);
    mio_timer_free(t);
}

TEST(equal_delays_pop_in_set_order)
{
    /* 5 ms is within the 8 ms window, 20 ms beyond it: both kinds of list. */
    check_set_order(5 * MIO_MSEC);
    check_set_order(20 * MIO_MSEC);
}

TEST(cancel_keeps_order_of_the_rest)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 8);
    mio_timeout h[5];
    int64_t later;
    uintptr_t i;
    for (i = 0; i < 5; i++)
        h[i] = set(t, 20 * MIO_MSEC, i);        /* beyond one turn: far list */
    CHECK(mio_timer_cancel(t, h[2]));
    CHECK(mio_timer_cancel(t, h[0]));
    later = test_now_ns() + 100 * MIO_MSEC;
    CHECK_EQ(pop_at(t, later), 1);
    CHECK_EQ(pop_at(t, later), 3);
    CHECK_EQ(pop_at(t, later), 4);
    CHECK(!mio__timer_poll_at(t, later, NULL));
    mio_timer_free(t);
}

TEST(not_due_before_deadline_tick)
{
    /* Deterministic never-early: as of one ns before the delay has passed
     * since before the set, nothing is due; one tick after it, it is. */
    mio_timer *t = new_timer(MIO_MSEC, 8, 4);
    int64_t before = test_now_ns(), after;
    set(t, 5 * MIO_MSEC + 1, 7);
    after = test_now_ns();
    CHECK(!mio__timer_poll_at(t, before + 5 * MIO_MSEC, NULL));
    CHECK(mio__timer_next_at(t, before + 5 * MIO_MSEC) > 0);
    CHECK_EQ(pop_at(t, after + 6 * MIO_MSEC + 1), 7);
    mio_timer_free(t);
}

/* The deadline is a tick boundary: due as of exactly that reading, not one
 * nanosecond before. */
static void check_due_at_boundary(uint64_t tick_ns)
{
    mio_timer *t = new_timer(tick_ns, 8, 4);
    int64_t before = test_now_ns(), boundary;
    set(t, 10 * MIO_MSEC, 1);
    boundary = before + mio__timer_next_at(t, before);
    CHECK(!mio__timer_poll_at(t, boundary - 1, NULL));
    CHECK_EQ(mio__timer_next_at(t, boundary - 1), 1);
    CHECK_EQ(mio__timer_next_at(t, boundary), 0);
    CHECK_EQ(pop_at(t, boundary), 1);
    mio_timer_free(t);
}

TEST(due_exactly_at_tick_boundary)
{
    check_due_at_boundary(MIO_MSEC);
    check_due_at_boundary(333333);
    check_due_at_boundary(1);
}

TEST(cancel_true_then_false)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout h = set(t, 10 * MIO_MSEC, 1);
    CHECK(mio_timer_cancel(t, h));
    CHECK(!mio_timer_cancel(t, h));
    CHECK(!mio__timer_poll_at(t, test_now_ns() + MIO_SEC, NULL));
    CHECK_EQ(mio_timer_next(t), -1);
    mio_timer_free(t);
}

TEST(cancel_after_fire_is_false)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout h = set(t, 0, 1);
    CHECK(mio_timer_poll(t, NULL));
    CHECK(!mio_timer_cancel(t, h));
    mio_timer_free(t);
}

TEST(stale_handle_after_reuse_rejected)
{
    /* Capacity 1: every set reuses the same slab node. */
    mio_timer *t = new_timer(0, 0, 1);
    mio_timeout a = set(t, 10 * MIO_MSEC, 1), b, c;
    CHECK(mio_timer_cancel(t, a));
    b = set(t, 10 * MIO_MSEC, 2);
    CHECK(a != b);
    CHECK(!mio_timer_cancel(t, a));             /* b stays pending */
    CHECK_EQ(pop_at(t, test_now_ns() + MIO_SEC), 2);
    c = set(t, 10 * MIO_MSEC, 3);
    CHECK(!mio_timer_cancel(t, a));
    CHECK(!mio_timer_cancel(t, b));
    CHECK(mio_timer_cancel(t, c));
    mio_timer_free(t);
}

TEST(garbage_handles_rejected)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout h = set(t, 10 * MIO_MSEC, 1);
    CHECK(!mio_timer_cancel(t, 0));
    CHECK(!mio_timer_cancel(t, h + 1));                 /* another index */
    CHECK(!mio_timer_cancel(t, h + ((uint64_t)1 << 32)));  /* another generation */
    CHECK(!mio_timer_cancel(t, h - ((uint64_t)1 << 32)));  /* a free node's generation */
    CHECK(!mio_timer_cancel(t, (h & 0xffffffff00000000u) | 5));   /* past capacity */
    CHECK(!mio_timer_cancel(t, UINT64_MAX));
    CHECK(!mio_timer_cancel(t, 2));                     /* a node never used */
    CHECK(mio_timer_cancel(t, h));
    CHECK(!mio_timer_cancel(t, h + ((uint64_t)1 << 32)));  /* the freed node's */
    mio_timer_free(t);
}

TEST(capacity_is_exact)
{
    static const size_t capacities[] = { 1, 3, 1000 };
    size_t k, i;
    for (k = 0; k < sizeof capacities / sizeof capacities[0]; k++) {
        mio_timer *t = new_timer(0, 0, capacities[k]);
        mio_timeout h = 0, first = 0;
        for (i = 0; i < capacities[k]; i++) {
            h = set(t, MIO_SEC, i);
            if (i == 0)
                first = h;
        }
        CHECK_EQ(mio_timer_set(t, MIO_SEC, NULL, &h), MIO_ENOSPC);
        CHECK(mio_timer_cancel(t, first));
        set(t, MIO_SEC, 0);
        CHECK_EQ(mio_timer_set(t, MIO_SEC, NULL, &h), MIO_ENOSPC);
        pop_at(t, test_now_ns() + 2 * MIO_SEC);      /* firing frees a node too */
        set(t, MIO_SEC, 0);
        CHECK_EQ(mio_timer_set(t, 0, NULL, &h), MIO_ENOSPC);
        mio_timer_free(t);
    }
}

TEST(long_delay_beyond_one_turn)
{
    /* 8 slots of 1 ms: a 50 ms delay goes round the wheel six times. */
    mio_timer *t = new_timer(MIO_MSEC, 8, 4);
    int64_t start = test_now_ns(), elapsed;
    set(t, 50 * MIO_MSEC, 1);
    for (;;) {
        void *arg = NULL;
        bool fired = mio_timer_poll(t, &arg);
        elapsed = test_now_ns() - start;
        if (fired) {
            CHECK_EQ((uintptr_t)arg, 1);
            break;
        }
        CHECK(elapsed < 2 * MIO_SEC);
        test_sleep_ns(MIO_MSEC / 2);
    }
    CHECK(elapsed >= 50 * MIO_MSEC);
    CHECK(!mio_timer_poll(t, NULL));
    mio_timer_free(t);
}

TEST(idle_gap_of_many_turns_is_cheap)
{
    /* 1 ns ticks: the gaps are 10^11 ticks and more, the timeouts stay
     * beyond the window most of the way.  Walking the ticks one by one would
     * never finish. */
    mio_timer *t = new_timer(1, 8, 4);
    int64_t later = test_now_ns() + 1000 * MIO_SEC;
    set(t, 900 * MIO_SEC, 1);
    set(t, 400 * MIO_SEC, 2);
    set(t, 2 * MIO_MSEC, 3);
    CHECK_EQ(pop_at(t, later), 3);
    CHECK_EQ(pop_at(t, later), 2);
    CHECK_EQ(pop_at(t, later), 1);
    set(t, 0, 4);
    CHECK_EQ(pop_at(t, later), 4);
    mio_timer_free(t);
}

TEST(many_random_fire_exactly_once)
{
    /* 100k timeouts, 0..200 ms on a 256-slot wheel of 100 us ticks (eight
     * turns), a quarter cancelled while setting and more while firing.  Time
     * is swept forward as of synthetic readings, so this is quick even under
     * valgrind. */
    enum { N = 100000, PENDING = 0, FIRED = 1, CANCELLED = 2 };
    mio_timer *t = new_timer(100 * MIO_USEC, 256, N);
    mio_timeout *handle = calloc(N, sizeof *handle);
    int64_t *due = calloc(N, sizeof *due);
    unsigned char *state = calloc(N, 1), *fires = calloc(N, 1);
    int64_t now, end;
    size_t i, fired = 0, cancelled = 0;

    CHECK(handle != NULL && due != NULL && state != NULL && fires != NULL);
    for (i = 0; i < N; i++) {
        uint64_t delay = random_below(200 * MIO_MSEC + 1);
        due[i] = test_now_ns() + (int64_t)delay;
        handle[i] = set_staged(t, delay, i);  /* some cancelled while staged */
        if (random_below(4) == 0) {
            size_t j = (size_t)random_below(i + 1);
            CHECK_EQ(mio_timer_cancel(t, handle[j]), state[j] == PENDING);
            if (state[j] == PENDING)
                cancelled++;
            state[j] = CANCELLED;
        }
    }
    now = test_now_ns();
    mio__timer_flush(t, now);
    end = now + 250 * MIO_MSEC;
    for (; now <= end; now += 37 * MIO_USEC) {
        void *arg;
        size_t j = (size_t)random_below(N);
        CHECK_EQ(mio_timer_cancel(t, handle[j]), state[j] == PENDING);
        if (state[j] == PENDING)
            cancelled++;
        state[j] = state[j] == PENDING ? CANCELLED : state[j];
        while (mio__timer_poll_at(t, now, &arg)) {
            i = (size_t)(uintptr_t)arg;
            CHECK(i < N);
            CHECK_EQ(fires[i]++, 0);
            CHECK_EQ(state[i], PENDING);
            CHECK(now >= due[i]);
            state[i] = FIRED;
            fired++;
        }
    }
    CHECK_EQ(fired + cancelled, N);
    for (i = 0; i < N; i++)
        CHECK_EQ(fires[i], state[i] == FIRED);
    CHECK_EQ(mio__timer_next_at(t, now), -1);
    free(handle);
    free(due);
    free(state);
    free(fires);
    mio_timer_free(t);
}

TEST(next_is_minus_one_when_empty)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout h;
    CHECK_EQ(mio_timer_next(t), -1);
    h = set(t, MIO_SEC, 1);
    CHECK(mio_timer_cancel(t, h));
    CHECK_EQ(mio_timer_next(t), -1);
    set(t, 0, 2);
    CHECK(mio_timer_poll(t, NULL));
    CHECK_EQ(mio_timer_next(t), -1);
    mio_timer_free(t);
}

TEST(next_counts_down_to_the_deadline)
{
    mio_timer *t = new_timer(MIO_MSEC, 0, 4);
    int64_t before = test_now_ns(), after, next;
    set(t, 10 * MIO_SEC, 1);
    after = test_now_ns();
    next = mio_timer_next(t);
    CHECK(next > 0 && next <= 10 * MIO_SEC + MIO_MSEC);
    next = mio__timer_next_at(t, after);
    CHECK(next >= before + 10 * MIO_SEC - after && next <= 10 * MIO_SEC + MIO_MSEC);
    CHECK(mio__timer_next_at(t, before + 10 * MIO_SEC - 1) > 0);
    CHECK_EQ(mio__timer_next_at(t, after + 10 * MIO_SEC + MIO_MSEC), 0);
    mio_timer_free(t);
}

TEST(next_is_zero_when_due)
{
    mio_timer *t = new_timer(0, 0, 4);
    set(t, 10 * MIO_SEC, 1);
    set(t, 0, 2);
    CHECK_EQ(mio_timer_next(t), 0);
    CHECK(mio_timer_poll(t, NULL));
    CHECK(mio_timer_next(t) > 0);
    mio_timer_free(t);
}

/* next as of `after`, for a timeout of `delay` set between before and after. */
static void check_next(mio_timer *t, int64_t before, int64_t after, int64_t delay)
{
    int64_t next = mio__timer_next_at(t, after);
    if (next < before + delay - after || next > delay + MIO_MSEC)
        FAIL("next %lld ns, expected about %lld", (long long)next, (long long)delay);
}

/* The loop's wait bound after the earliest timeout is cancelled: a lower
 * bound of the next deadline (no pass over the wheel yet), exact once that
 * bound is reached, and nothing fires there. */
TEST(wait_bound_after_cancel_is_a_lower_bound)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 8);
    int64_t before = test_now_ns(), now, bound;
    mio_timeout h = set(t, 200 * MIO_MSEC, 1);
    set(t, 300 * MIO_MSEC, 2);
    now = test_now_ns();
    CHECK_EQ(mio__timer_bound_at(t, now), mio__timer_next_at(t, now));
    CHECK(mio_timer_cancel(t, h));
    bound = mio__timer_bound_at(t, now);        /* still the cancelled deadline */
    CHECK(bound > 0 && bound <= 200 * MIO_MSEC + MIO_MSEC);
    CHECK(!mio__timer_poll_at(t, now + bound, NULL));
    CHECK_EQ(mio__timer_bound_at(t, now + bound), mio__timer_next_at(t, now + bound));
    CHECK(mio__timer_bound_at(t, now + bound) > 0);
    check_next(t, before, now, 300 * MIO_MSEC);
    CHECK_EQ(pop_at(t, now + 400 * MIO_MSEC), 2);
    CHECK_EQ(mio__timer_bound_at(t, now), -1);
    mio_timer_free(t);
}

TEST(next_follows_cancels_beyond_one_turn)
{
    /* 8 slots of 1 ms.  32, 24 and 16 ms land in one slot, beyond the
     * window, listed latest first; 5 ms is in the window. */
    mio_timer *t = new_timer(MIO_MSEC, 8, 8);
    int64_t before = test_now_ns(), after;
    mio_timeout h5, h16, h24;
    set(t, 32 * MIO_MSEC, 32);
    h24 = set(t, 24 * MIO_MSEC, 24);
    h16 = set(t, 16 * MIO_MSEC, 16);
    h5 = set(t, 5 * MIO_MSEC, 5);
    after = test_now_ns();
    check_next(t, before, after, 5 * MIO_MSEC);
    CHECK(mio_timer_cancel(t, h5));
    check_next(t, before, after, 16 * MIO_MSEC);
    CHECK(mio_timer_cancel(t, h16));
    check_next(t, before, after, 24 * MIO_MSEC);
    CHECK(mio_timer_cancel(t, h24));
    check_next(t, before, after, 32 * MIO_MSEC);
    CHECK_EQ(pop_at(t, after + 40 * MIO_MSEC), 32);
    CHECK_EQ(mio__timer_next_at(t, after), -1);
    mio_timer_free(t);
}

TEST(defaults_work)
{
    mio_timer *t = new_timer(0, 0, 0);
    int64_t start = test_now_ns();
    mio_timeout h;
    size_t i;
    void *arg = NULL;

    set(t, MIO_MSEC, 1);
    while (!mio_timer_poll(t, &arg)) {
        CHECK(test_now_ns() - start < 2 * MIO_SEC);
        test_sleep_ns(100 * MIO_USEC);
    }
    CHECK(test_now_ns() - start >= MIO_MSEC);
    CHECK_EQ((uintptr_t)arg, 1);
    for (i = 0; i < 65536; i++)                 /* the default capacity */
        set(t, i * MIO_USEC, i);
    CHECK_EQ(mio_timer_set(t, 0, NULL, &h), MIO_ENOSPC);
    mio_timer_free(t);
}

TEST(huge_delays_clamped)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout a = set(t, UINT64_MAX, 1);
    set(t, (uint64_t)INT64_MAX, 2);
    set(t, UINT64_MAX / 2 + 12345, 3);
    CHECK(mio_timer_next(t) > MIO_SEC * 3600 * 24 * 365 * 100);   /* centuries */
    CHECK(!mio_timer_poll(t, NULL));
    CHECK(!mio__timer_poll_at(t, test_now_ns() + MIO_SEC * 3600 * 24 * 1000, NULL));
    CHECK(mio_timer_cancel(t, a));
    mio_timer_free(t);
}

/* ---- the stage: a set reads no clock ---- */

/* Tries to catch an early fire across the stage.  Each round the timer's
 * last clock reading is let grow old (a sleep), then a burst of sets and
 * resets (more than the stage holds, some cancelled while staged and their
 * nodes set again) is polled at once and on: a deadline counted from any
 * reading older than the call would pop before its delay has passed.
 * Asserted: a reading taken after each pop is at least the one taken before
 * its set or reset plus its delay; every timeout pops once, unless
 * cancelled. */
static void check_stage_never_early(uint64_t tick_ns, size_t capacity)
{
    enum { PENDING = 1, FIRED = 2, CANCELLED = 3 };
    int64_t *before = calloc(capacity, sizeof *before), deadline;
    uint64_t *delay = calloc(capacity, sizeof *delay);
    mio_timeout *handle = calloc(capacity, sizeof *handle);
    unsigned char *state = calloc(capacity, 1);
    long rounds = test_scaled(40), r;
    size_t i, fired = 0, cancelled = 0, set_count = 0;
    mio_timer *t = new_timer(tick_ns, 16, capacity);
    void *arg;

    CHECK(before != NULL && delay != NULL && handle != NULL && state != NULL);
    for (r = 0; r < rounds; r++) {
        size_t burst = 1 + (size_t)random_below(capacity + capacity / 2), k;
        int64_t until;

        test_sleep_ns((int64_t)random_below(3 * tick_ns + 1));
        for (k = 0; k < burst; k++) {
            size_t j = (size_t)random_below(capacity);
            uint64_t choices[6] = { 0, 1, tick_ns - 1, tick_ns, tick_ns + 1,
                                    random_below(4 * tick_ns) };
            uint64_t d = choices[random_below(6)];
            if (state[j] == PENDING && random_below(4) == 0) {
                CHECK(mio_timer_cancel(t, handle[j]));
                state[j] = CANCELLED;
                cancelled++;
            } else if (state[j] == PENDING && random_below(3) == 0) {
                before[j] = test_now_ns();
                CHECK(mio_timer_reset(t, handle[j], d));
                delay[j] = d;
            } else if (state[j] != PENDING) {
                before[j] = test_now_ns();
                OK(mio_timer_set(t, d, (void *)(uintptr_t)j, &handle[j]));
                delay[j] = d;
                state[j] = PENDING;
                set_count++;
            }
        }
        /* Poll at once and for two ticks after, as fast as it goes. */
        until = test_now_ns() + 2 * (int64_t)tick_ns;
        do {
            while (mio_timer_poll(t, &arg)) {
                int64_t now = test_now_ns();
                i = (size_t)(uintptr_t)arg;
                CHECK(i < capacity);
                CHECK_EQ(state[i], PENDING);
                if (now - before[i] < (int64_t)delay[i])
                    FAIL("timeout %zu (delay %llu ns) popped %lld ns after its set", i,
                         (unsigned long long)delay[i], (long long)(now - before[i]));
                state[i] = FIRED;
                fired++;
            }
        } while (test_now_ns() < until);
    }
    deadline = test_now_ns() + 10 * MIO_SEC;    /* only that they all come */
    while (fired + cancelled < set_count) {
        CHECK(test_now_ns() < deadline);
        if (mio_timer_poll(t, &arg)) {
            i = (size_t)(uintptr_t)arg;
            CHECK_EQ(state[i], PENDING);
            CHECK(test_now_ns() - before[i] >= (int64_t)delay[i]);
            state[i] = FIRED;
            fired++;
        }
    }
    CHECK_EQ(mio_timer_next(t), -1);
    free(before);
    free(delay);
    free(handle);
    free(state);
    mio_timer_free(t);
}

TEST(stage_never_early_default_tick)
{
    check_stage_never_early(MIO_MSEC, 300);     /* the stage holds 256 */
}

TEST(stage_never_early_small_stage)
{
    check_stage_never_early(100 * MIO_USEC, 8); /* a stage of 8, often full */
}

TEST(stage_never_early_odd_tick)
{
    check_stage_never_early(333333, 64);
}

TEST(reset_moves_the_deadline_and_keeps_the_handle)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 4);
    mio_timeout h = set(t, 10 * MIO_MSEC, 1);
    int64_t before = test_now_ns(), after;

    CHECK(mio_timer_reset(t, h, 50 * MIO_MSEC));
    after = test_now_ns();
    mio__timer_flush(t, after);
    CHECK(!mio__timer_poll_at(t, before + 50 * MIO_MSEC - 1, NULL));
    CHECK(mio__timer_next_at(t, after) <= 51 * MIO_MSEC);
    CHECK_EQ(pop_at(t, after + 51 * MIO_MSEC), 1);
    CHECK(!mio_timer_reset(t, h, MIO_MSEC));     /* fired */
    CHECK(!mio_timer_cancel(t, h));
    CHECK_EQ(mio_timer_next(t), -1);
    mio_timer_free(t);
}

TEST(reset_to_zero_is_due_at_next_poll)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 4);
    mio_timeout h = set_staged(t, MIO_SEC, 7);
    void *arg = NULL;

    CHECK(mio_timer_reset(t, h, 0));            /* staged still */
    CHECK(mio_timer_poll(t, &arg));
    CHECK_EQ((uintptr_t)arg, 7);
    h = set(t, MIO_SEC, 8);
    CHECK(mio_timer_reset(t, h, 0));            /* in the wheel */
    CHECK(mio_timer_poll(t, &arg));
    CHECK_EQ((uintptr_t)arg, 8);
    CHECK(!mio_timer_poll(t, &arg));
    mio_timer_free(t);
}

TEST(reset_of_what_is_not_pending_is_false)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timeout h = set(t, MIO_SEC, 1);
    CHECK(!mio_timer_reset(NULL, h, 1));
    CHECK(!mio_timer_reset(t, 0, 1));
    CHECK(!mio_timer_reset(t, h + 1, 1));
    CHECK(!mio_timer_reset(t, h + ((uint64_t)1 << 32), 1));
    CHECK(mio_timer_cancel(t, h));
    CHECK(!mio_timer_reset(t, h, 1));
    CHECK_EQ(mio_timer_next(t), -1);
    mio_timer_free(t);
}

/* A reset counts as a new set: of two timeouts due at one tick, the one
 * reset after the other was set pops after it, staged or not. */
TEST(reset_comes_after_what_was_set_before)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 8);
    mio_timeout a = set_staged(t, 5 * MIO_MSEC, 1);
    int64_t later;

    set_staged(t, 5 * MIO_MSEC, 2);
    CHECK(mio_timer_reset(t, a, 5 * MIO_MSEC)); /* a staged one */
    a = set(t, 5 * MIO_MSEC, 3);
    set(t, 5 * MIO_MSEC, 4);
    CHECK(mio_timer_reset(t, a, 5 * MIO_MSEC)); /* a placed one */
    mio__timer_flush(t, test_now_ns());
    later = test_now_ns() + 100 * MIO_MSEC;
    CHECK_EQ(pop_at(t, later), 2);
    CHECK_EQ(pop_at(t, later), 1);
    CHECK_EQ(pop_at(t, later), 4);
    CHECK_EQ(pop_at(t, later), 3);
    CHECK(!mio__timer_poll_at(t, later, NULL));
    mio_timer_free(t);
}

/* A timeout cancelled while staged leaves its stage entry behind; its node
 * set again must pop in its new place in the set order, not the old one. */
TEST(node_cancelled_while_staged_and_set_again_keeps_set_order)
{
    mio_timer *t = new_timer(MIO_MSEC, 8, 2);
    mio_timeout a = set_staged(t, 5 * MIO_MSEC, 1), c;
    int64_t later;

    set_staged(t, 5 * MIO_MSEC, 2);
    CHECK(mio_timer_cancel(t, a));
    c = set_staged(t, 5 * MIO_MSEC, 3);          /* capacity 2: a's node */
    CHECK(c != a);
    CHECK(!mio_timer_cancel(t, a));
    mio__timer_flush(t, test_now_ns());
    later = test_now_ns() + 100 * MIO_MSEC;
    CHECK_EQ(pop_at(t, later), 2);
    CHECK_EQ(pop_at(t, later), 3);
    CHECK(!mio__timer_poll_at(t, later, NULL));
    mio_timer_free(t);
}

TEST(bad_arguments)
{
    mio_timer *t = new_timer(0, 0, 4);
    mio_timer *none = NULL;
    mio_timeout h = 0;
    void *arg = &h;

    CHECK_EQ(mio_timer_new(0, 0, 0, NULL), MIO_EINVAL);
    CHECK_EQ(mio_timer_new(0, (size_t)1 << 30, 0, &none), MIO_EINVAL);
    CHECK(none == NULL);
    CHECK_EQ(mio_timer_new(UINT64_MAX, 0, 0, &none), MIO_EINVAL);
    CHECK_EQ(mio_timer_set(NULL, 0, NULL, &h), MIO_EINVAL);
    CHECK_EQ(mio_timer_set(t, 0, NULL, NULL), MIO_EINVAL);
    CHECK(!mio_timer_cancel(NULL, 1));
    CHECK(!mio_timer_cancel(t, 0));
    CHECK_EQ(mio_timer_next(NULL), -1);
    CHECK(!mio_timer_poll(NULL, &arg));
    CHECK(arg == &h);
    CHECK(!mio_timer_poll(t, &arg));
    CHECK(arg == &h);
    mio_timer_free(NULL);
    mio_timer_free(t);
}

/* ---- absolute deadlines ---- */

/* The timers' clock is the monotonic one a program reads itself, and it
 * never goes back. */
TEST(clock_is_monotonic_and_the_timers)
{
    int64_t a = mio_clock_ns(), b = test_now_ns(), c = mio_clock_ns();
    mio_timer *t = new_timer(MIO_MSEC, 0, 4);
    mio_timeout h;
    int64_t next;

    CHECK(a <= c);
    CHECK(a <= b + MIO_MSEC && b <= c + MIO_MSEC);  /* the same clock, read apart */
    OK(mio_timer_set_at(t, mio_clock_ns() + 50 * MIO_MSEC, NULL, &h));
    next = mio_timer_next(t);
    CHECK(next > 0 && next <= 51 * MIO_MSEC);
    mio_timer_free(t);
}

/* Deadlines at and around tick boundaries pop at the first boundary at or
 * after them, never one tick before: asked as of clock readings, exactly. */
TEST(set_at_due_at_first_boundary_after_deadline)
{
    const int64_t tick = MIO_MSEC;
    mio_timer *t = new_timer((uint64_t)tick, 64, 16);
    /* a boundary ahead, far enough that no slow run (valgrind) reaches it */
    int64_t base = (mio_clock_ns() / tick + 1000) * tick;
    static const int64_t offset[] = { 0, 1, tick - 1, tick, tick + 1, 5 * tick + 123 };
    size_t i;

    for (i = 0; i < sizeof offset / sizeof offset[0]; i++) {
        int64_t deadline = base + offset[i];
        int64_t due = (deadline + tick - 1) / tick * tick;
        mio_timeout h;
        OK(mio_timer_set_at(t, deadline, (void *)(uintptr_t)(i + 1), &h));
        CHECK(!mio__timer_poll_at(t, due - 1, NULL));
        CHECK_EQ(pop_at(t, due), i + 1);
        CHECK(!mio_timer_cancel(t, h));
    }
    mio_timer_free(t);
}

/* A deadline already reached, or negative, is due at the next poll, like a
 * delay of 0; one too far to represent is clamped, as delays are. */
TEST(set_at_reached_deadline_due_at_once)
{
    mio_timer *t = new_timer(MIO_MSEC, 0, 4);
    mio_timeout h;
    void *arg = NULL;

    OK(mio_timer_set_at(t, mio_clock_ns() - MIO_SEC, (void *)1, &h));
    CHECK_EQ(mio_timer_next(t), 0);
    CHECK(mio_timer_poll(t, &arg));
    CHECK(arg == (void *)1);
    OK(mio_timer_set_at(t, INT64_MIN, (void *)2, &h));
    OK(mio_timer_set_at(t, mio_clock_ns(), (void *)3, &h));
    CHECK(mio_timer_poll(t, &arg));
    CHECK(arg == (void *)2);
    CHECK(mio_timer_poll(t, &arg));
    CHECK(arg == (void *)3);
    OK(mio_timer_set_at(t, INT64_MAX, (void *)4, &h));
    CHECK(mio_timer_next(t) > MIO_SEC * 3600 * 24 * 365 * 100);   /* centuries */
    CHECK(mio_timer_cancel(t, h));
    mio_timer_free(t);
}

/* A periodic timeout re-armed from its planned deadline keeps to the plan:
 * over many periods (one that is no multiple of the tick), polled late by
 * up to most of a period each time, the k-th pops exactly at the first tick
 * boundary at or after start + k * period, never earlier, never later. */
TEST(set_at_periodic_does_not_drift)
{
    const int64_t tick = MIO_MSEC, period = 2 * MIO_MSEC + 500 * MIO_USEC;
    const int rounds = 2000;
    mio_timer *t = new_timer((uint64_t)tick, 256, 4);
    int64_t start = mio_clock_ns() + MIO_SEC, next = start + period;
    mio_timeout h;
    int k;

    OK(mio_timer_set_at(t, next, (void *)7, &h));
    for (k = 1; k <= rounds; k++) {
        int64_t due = (start + k * period + tick - 1) / tick * tick;
        int64_t late = (int64_t)random_below((uint64_t)(period - tick));
        CHECK_EQ(next, start + k * period);
        CHECK(!mio__timer_poll_at(t, due - 1, NULL));
        CHECK_EQ(pop_at(t, due + late), 7);
        next += period;     /* from the plan, not from the late poll */
        OK(mio_timer_set_at(t, next, (void *)7, &h));
    }
    CHECK_EQ(mio__timer_pending(t), 1);
    mio_timer_free(t);
}

/* Bad arguments and a full timer: an error, and nothing armed. */
TEST(set_at_bad_arguments_change_nothing)
{
    mio_timer *t = new_timer(0, 0, 2);
    mio_timeout h = 42;

    CHECK_EQ(mio_timer_set_at(NULL, 0, NULL, &h), MIO_EINVAL);
    CHECK_EQ(h, 42);
    CHECK_EQ(mio_timer_set_at(t, 0, NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio__timer_pending(t), 0);
    OK(mio_timer_set_at(t, mio_clock_ns() + MIO_SEC, NULL, &h));
    OK(mio_timer_set(t, MIO_SEC, NULL, &h));
    h = 42;
    CHECK_EQ(mio_timer_set_at(t, mio_clock_ns(), NULL, &h), MIO_ENOSPC);
    CHECK_EQ(h, 42);
    CHECK_EQ(mio__timer_pending(t), 2);
    CHECK(!mio_timer_poll(t, NULL));
    mio_timer_free(t);
}
