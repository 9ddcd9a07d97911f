/* User-space readiness (mio_registration / mio_set_readiness): the trigger
 * modes as for descriptors, argument errors, lifetimes that end while other
 * threads still set readiness, wake-ups of a blocked wait, and stress runs
 * checked against a model.  Every test runs on every backend. */
#include "harness.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define R MIO_READABLE
#define W MIO_WRITABLE
#define P MIO_PRIORITY
#define ALL_READINESS (R | W | P | MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED)

/* A small xorshift generator: each thread its own, reproducible. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Sanitizers and valgrind run stress loops much slower: shrink them when the
 * run did not say how (MIO_TEST_SCALE). */
static long stress_scaled(long n)
{
    int slow = test_on_valgrind();
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    slow = 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
    slow = 1;
#endif
#endif
    if (slow && getenv("MIO_TEST_SCALE") == NULL)
        n /= 20;
    return test_scaled(n);
}

static void new_pair(mio_registration **r, mio_set_readiness **s)
{
    OK(mio_registration_new(r, s));
    CHECK(*r != NULL && *s != NULL);
}

/* A poll and one registration, with its readiness handle. */
struct user {
    mio_poll *p;
    mio_registration *r;
    mio_set_readiness *s;
};

static struct user user_open(void)
{
    struct user u;
    u.p = test_poll();
    new_pair(&u.r, &u.s);
    return u;
}

static void user_close(struct user u)
{
    mio_registration_free(u.r);
    mio_set_readiness_free(u.s);
    mio_poll_free(u.p);
}

/* ---- semantics ----
 * Scripts: what is done to one registration and its readiness, and what
 * each wait must report (one event, exactly, or none at all). */

enum user_op { U_END, U_REGISTER, U_REREGISTER, U_DEREGISTER, U_SET, U_GET, U_EVENT, U_NONE };

struct user_step {
    enum user_op op;
    mio_token token;
    uint32_t flags;     /* interest, readiness, or the event's flags */
    int result;         /* what a deregister returns */
};

#define REGISTER(t, i)   { .op = U_REGISTER, .token = (t), .flags = (i) }
#define REREGISTER(t, i) { .op = U_REREGISTER, .token = (t), .flags = (i) }
#define DEREGISTER(e)    { .op = U_DEREGISTER, .result = (e) }  /* returning e */
#define SET(v)           { .op = U_SET, .flags = (v) }
#define GET(v)           { .op = U_GET, .flags = (v) }          /* mio_set_readiness_get */
#define EVENT(t, f)      { .op = U_EVENT, .token = (t), .flags = (f) }
#define NONE             { .op = U_NONE }
#define END              { .op = U_END }

static void run(const struct user_step *st)
{
    struct user u = user_open();

    for (; st->op != U_END; st++) {
        switch (st->op) {
        case U_END:
            break;
        case U_REGISTER:
            OK(mio_registration_register(u.p, u.r, st->token, st->flags));
            break;
        case U_REREGISTER:
            OK(mio_registration_reregister(u.p, u.r, st->token, st->flags));
            break;
        case U_DEREGISTER:
            CHECK_EQ(mio_registration_deregister(u.p, u.r), st->result);
            break;
        case U_SET:
            OK(mio_set_readiness_set(u.s, st->flags));
            break;
        case U_GET:
            CHECK_EQ(mio_set_readiness_get(u.s), st->flags);
            break;
        case U_EVENT:
            EXPECT_ONLY(u.p, st->token, st->flags, MIO_SEC);
            break;
        case U_NONE:
            EXPECT_QUIET(u.p, 0);
            break;
        }
    }
    user_close(u);
}

/* A rise of what is asked for: the same value again, or one that adds only
 * what is not asked for, is none. */
TEST(edge_reports_once_per_rise)
{
    static const struct user_step steps[] = {
        REGISTER(7, R | MIO_EDGE), NONE, SET(R), EVENT(7, R), NONE,
        SET(R), NONE, SET(R | W), NONE, SET(0), NONE, SET(R), EVENT(7, R), END
    };
    run(steps);
}

TEST(set_replaces_readiness)
{
    static const struct user_step steps[] = {
        REGISTER(1, R | W), SET(R), GET(R), EVENT(1, R),
        SET(W), GET(W), EVENT(1, W),            /* W rises, R is gone */
        SET(R | W), EVENT(1, R | W), END        /* R rises again */
    };
    run(steps);
}

/* Readiness-only flags are always reported, as for descriptors. */
TEST(events_carry_readiness_and_interest)
{
    static const struct user_step steps[] = {
        REGISTER(3, R | P), SET(R | W | P), EVENT(3, R | P), SET(W), NONE,
        SET(W | MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED),
        EVENT(3, MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED), END
    };
    run(steps);
}

TEST(level_reports_every_wait_while_ready)
{
    static const struct user_step steps[] = {
        REGISTER(5, R | MIO_LEVEL), NONE, SET(R | W),
        EVENT(5, R), EVENT(5, R), EVENT(5, R), EVENT(5, R), EVENT(5, R),
        SET(W), NONE, NONE, SET(R), EVENT(5, R), EVENT(5, R), END
    };
    run(steps);
}

/* Re-arming reports the readiness still present at once. */
TEST(oneshot_disarms_until_reregister)
{
    static const struct user_step steps[] = {
        REGISTER(9, R | MIO_ONESHOT), SET(R), EVENT(9, R), SET(0), SET(R), NONE,
        REREGISTER(10, R | MIO_ONESHOT), EVENT(10, R), NONE, END
    };
    run(steps);
}

TEST(level_oneshot_reports_once)
{
    static const struct user_step steps[] = {
        SET(W), REGISTER(4, W | MIO_LEVEL | MIO_ONESHOT), EVENT(4, W), NONE,
        REREGISTER(4, W | MIO_LEVEL), EVENT(4, W), EVENT(4, W), END
    };
    run(steps);
}

TEST(register_reports_present_readiness)
{
    static const struct user_step steps[] = {
        SET(R | W), REGISTER(2, W), EVENT(2, W), NONE, END
    };
    run(steps);
}

/* A change while the node is queued is what gets reported. */
TEST(reregister_changes_token_and_interest)
{
    static const struct user_step steps[] = {
        REGISTER(1, W), SET(R), NONE, REREGISTER(2, R), EVENT(2, R),
        SET(0), SET(R | W), REREGISTER(3, W), EVENT(3, W), NONE, END
    };
    run(steps);
}

/* What was queued, never reported, goes too. */
TEST(deregister_stops_events)
{
    static const struct user_step steps[] = {
        REGISTER(1, R | MIO_LEVEL), SET(R), DEREGISTER(0), NONE, SET(0), SET(R), NONE,
        DEREGISTER(MIO_ENOENT), REGISTER(6, R), EVENT(6, R), END
    };
    run(steps);
}

TEST(errors)
{
    mio_poll *p = test_poll(), *q = test_poll();
    mio_registration *r, *r2;
    mio_set_readiness *s, *c = NULL;

    CHECK_EQ(mio_registration_new(NULL, &s), MIO_EINVAL);
    CHECK_EQ(mio_registration_new(&r, NULL), MIO_EINVAL);
    CHECK(r == NULL);
    new_pair(&r, &s);
    new_pair(&r2, &c);
    mio_set_readiness_free(c);

    CHECK_EQ(mio_registration_register(NULL, r, 1, R), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, NULL, 1, R), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, r, MIO_TOKEN_RESERVED, R), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, r, 1, 0), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, r, 1, MIO_LEVEL), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, r, 1, R | MIO_ERROR), MIO_EINVAL);
    CHECK_EQ(mio_registration_register(p, r, 1, R | 0x100), MIO_EINVAL);
    CHECK_EQ(mio_registration_reregister(p, r, 1, R), MIO_ENOENT);
    CHECK_EQ(mio_registration_deregister(p, r), MIO_ENOENT);

    OK(mio_registration_register(p, r, 1, R));
    CHECK_EQ(mio_registration_register(p, r, 1, R), MIO_EEXIST);
    CHECK_EQ(mio_registration_register(q, r, 1, R), MIO_EEXIST);
    CHECK_EQ(mio_registration_reregister(q, r, 1, R), MIO_ENOENT);
    CHECK_EQ(mio_registration_deregister(q, r), MIO_ENOENT);
    CHECK_EQ(mio_registration_reregister(p, r, MIO_TOKEN_RESERVED, R), MIO_EINVAL);
    CHECK_EQ(mio_registration_reregister(p, r, 1, W | 0x200), MIO_EINVAL);
    CHECK_EQ(mio_registration_reregister(NULL, r, 1, R), MIO_EINVAL);
    CHECK_EQ(mio_registration_deregister(NULL, r), MIO_EINVAL);
    CHECK_EQ(mio_registration_deregister(p, NULL), MIO_EINVAL);

    CHECK_EQ(mio_set_readiness_set(NULL, R), MIO_EINVAL);
    CHECK_EQ(mio_set_readiness_set(s, MIO_LEVEL), MIO_EINVAL);
    CHECK_EQ(mio_set_readiness_set(s, R | 0x100), MIO_EINVAL);
    CHECK_EQ(mio_set_readiness_get(s), 0);
    OK(mio_set_readiness_set(s, ALL_READINESS));
    CHECK_EQ(mio_set_readiness_get(s), ALL_READINESS);
    CHECK_EQ(mio_set_readiness_get(NULL), 0);
    CHECK_EQ(mio_set_readiness_clone(NULL, &c), MIO_EINVAL);
    CHECK(c == NULL);
    CHECK_EQ(mio_set_readiness_clone(s, NULL), MIO_EINVAL);

    /* Bound to its first poll: after deregistering, another poll refuses it. */
    OK(mio_registration_deregister(p, r));
    CHECK_EQ(mio_registration_register(q, r, 1, R), MIO_EEXIST);
    OK(mio_registration_register(p, r, 1, R));

    mio_registration_free(NULL);
    mio_set_readiness_free(NULL);
    mio_registration_free(r);
    mio_registration_free(r2);
    mio_set_readiness_free(s);
    mio_poll_free(p);
    mio_poll_free(q);
}

TEST(clones_share_readiness)
{
    mio_poll *p = test_poll();
    mio_registration *r;
    mio_set_readiness *s, *c;

    new_pair(&r, &s);
    OK(mio_set_readiness_clone(s, &c));
    CHECK(c != NULL && c != s);
    OK(mio_registration_register(p, r, 8, R | W));
    OK(mio_set_readiness_set(c, W));
    CHECK_EQ(mio_set_readiness_get(s), W);
    EXPECT_ONLY(p, 8, W, MIO_SEC);
    mio_set_readiness_free(s);          /* the clone still works */
    OK(mio_set_readiness_set(c, R));
    EXPECT_ONLY(p, 8, R, MIO_SEC);
    mio_registration_free(r);           /* sets are now no-ops for the poll */
    OK(mio_set_readiness_set(c, W));
    CHECK_EQ(mio_set_readiness_get(c), W);
    EXPECT_QUIET(p, 0);
    mio_set_readiness_free(c);
    mio_poll_free(p);
}

TEST(free_registration_while_queued)
{
    mio_poll *p = test_poll();
    mio_registration *r;
    mio_set_readiness *s;

    new_pair(&r, &s);
    OK(mio_registration_register(p, r, 1, R | MIO_LEVEL));
    OK(mio_set_readiness_set(s, R));
    mio_set_readiness_free(s);
    mio_registration_free(r);   /* still in the queue: the poll frees it */
    EXPECT_QUIET(p, 0);
    mio_poll_free(p);
}

TEST(poll_free_detaches_registrations)
{
    mio_poll *p = test_poll(), *q;
    mio_registration *r1, *r2;
    mio_set_readiness *s1, *s2;

    new_pair(&r1, &s1);
    new_pair(&r2, &s2);
    OK(mio_registration_register(p, r1, 1, R | MIO_LEVEL));
    OK(mio_registration_register(p, r2, 2, R));
    OK(mio_set_readiness_set(s1, R));   /* queued when the poll goes */
    mio_poll_free(p);
    OK(mio_set_readiness_set(s1, W));
    OK(mio_set_readiness_set(s2, R));
    /* Detached: free to join another poll, which reports what is present. */
    q = test_poll();
    CHECK_EQ(mio_registration_deregister(q, r1), MIO_ENOENT);
    OK(mio_registration_register(q, r2, 22, R));
    EXPECT_ONLY(q, 22, R, MIO_SEC);
    mio_registration_free(r1);
    mio_registration_free(r2);
    mio_set_readiness_free(s1);
    mio_set_readiness_free(s2);
    mio_poll_free(q);
}

/* ---- capacity and fairness ---- */

TEST(more_ready_than_capacity)
{
    enum { N = 50 };
    mio_poll *p = test_poll();
    mio_registration *r[N];
    mio_set_readiness *s[N];
    int seen[N] = { 0 }, total = 0, i, round;

    for (i = 0; i < N; i++) {
        new_pair(&r[i], &s[i]);
        OK(mio_registration_register(p, r[i], (mio_token)i, i % 2 ? R : R | MIO_LEVEL));
        OK(mio_set_readiness_set(s[i], R));
    }
    /* Edge ones come once, level ones on every round: all within rounds. */
    for (round = 0; round < 20 && total < N; round++) {
        mio_event ev[7];
        int n = test_wait(p, ev, 7, 0);
        CHECK(n <= 7);
        for (i = 0; i < n; i++) {
            CHECK(ev[i].token < N);
            CHECK_EQ(ev[i].flags, R);
            if (seen[ev[i].token]++ == 0)
                total++;
            CHECK(ev[i].token % 2 == 0 || seen[ev[i].token] == 1);
        }
    }
    CHECK_EQ(total, N);
    for (i = 0; i < N; i++) {
        mio_registration_free(r[i]);
        mio_set_readiness_free(s[i]);
    }
    mio_poll_free(p);
}

TEST(fair_with_kernel_events)
{
    mio_poll *p = test_poll();
    mio_registration *r;
    mio_set_readiness *s;
    mio_fd sv[2];
    int user = 0, kernel = 0, i;

    OK(mio_socketpair(sv));
    CHECK_EQ(mio_write(sv[1], "x", 1), 1);
    OK(mio_register(p, sv[0], 1, R | MIO_LEVEL));
    new_pair(&r, &s);
    OK(mio_registration_register(p, r, 2, R | MIO_LEVEL));
    OK(mio_set_readiness_set(s, R));
    /* Both stay ready: a batch of one must not always go to the same. */
    for (i = 0; i < 10; i++) {
        mio_event ev[1];
        CHECK_EQ(test_wait(p, ev, 1, MIO_SEC), 1);
        if (ev[0].token == 1)
            kernel++;
        else if (ev[0].token == 2)
            user++;
    }
    CHECK(kernel >= 3 && user >= 3);
    mio_registration_free(r);
    mio_set_readiness_free(s);
    OK(mio_deregister(p, sv[0]));
    mio_close(sv[0]);
    mio_close(sv[1]);
    mio_poll_free(p);
}

/* ---- other threads ---- */

/* What another thread does to u, 50 ms after it starts, while the wait
 * blocks: register it (as token 12), set its readiness to W, or both. */
enum { SET, REGISTER, REGISTER_THEN_SET };

struct later {
    struct user u;
    int what;
};

static void *act_later(void *arg)
{
    struct later *l = arg;
    test_sleep_ms(50);
    if (l->what != SET)
        OK(mio_registration_register(l->u.p, l->u.r, 12, W));
    if (l->what != REGISTER)
        OK(mio_set_readiness_set(l->u.s, W));
    return NULL;
}

/* A wait with no timeout, woken by that: one event, token with W. */
static void wakes_blocked_wait(struct later *l, mio_token token)
{
    pthread_t t;

    test_watchdog(20);
    CHECK_EQ(pthread_create(&t, NULL, act_later, l), 0);
    EXPECT_ONLY(l->u.p, token, W, -1);
    pthread_join(t, NULL);
    test_watchdog(0);
}

TEST(set_from_thread_wakes_blocked_wait)
{
    struct later l = { user_open(), SET };

    OK(mio_registration_register(l.u.p, l.u.r, 11, W));
    wakes_blocked_wait(&l, 11);
    user_close(l.u);
}

TEST(register_from_thread_wakes_blocked_wait)
{
    struct later l = { user_open(), REGISTER };
    mio_registration *other;
    mio_set_readiness *other_s;

    /* The first registration makes the queue; the second arrives ready
     * while the wait blocks. */
    new_pair(&other, &other_s);
    OK(mio_registration_register(l.u.p, other, 1, R));
    OK(mio_set_readiness_set(l.u.s, W));
    wakes_blocked_wait(&l, 12);
    mio_registration_free(other);
    mio_set_readiness_free(other_s);
    user_close(l.u);
}

/* The first registration a poll ever gets, made ready by another thread
 * while a wait with no timeout blocks there: the queue does not exist when
 * the wait starts, and the wait must still wake. */
static void first_registration_wakes(int register_ready)
{
    struct later l = { user_open(), register_ready ? REGISTER : REGISTER_THEN_SET };

    if (register_ready)
        OK(mio_set_readiness_set(l.u.s, W));
    wakes_blocked_wait(&l, 12);
    user_close(l.u);
}

TEST(first_registration_ready_wakes_blocked_wait)
{
    first_registration_wakes(1);
}

TEST(first_registration_then_set_wakes_blocked_wait)
{
    first_registration_wakes(0);
}

/* 8 producers, each hammering its own registration and one shared one, while
 * the poller waits; every producer ends with a rise to a final value that the
 * poller must report last. */
enum { PRODUCERS = 8, SHARED = PRODUCERS };

struct hammer {
    mio_set_readiness *own, *shared;
    long iterations;
    uint32_t final;
    atomic_int *running;
};

static uint32_t final_value(int i)
{
    static const uint32_t v[] = { R, W, R | W, P, R | P, W | P, R | W | P, MIO_ERROR };
    return v[i];
}

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)(uintptr_t)h;
    long i;

    for (i = 0; i < h->iterations; i++) {
        OK(mio_set_readiness_set(h->own, next_random(&seed) & ALL_READINESS));
        if ((i & 3) == 0)
            OK(mio_set_readiness_set(h->shared, next_random(&seed) & ALL_READINESS));
    }
    OK(mio_set_readiness_set(h->own, 0));
    OK(mio_set_readiness_set(h->own, h->final));
    OK(mio_set_readiness_set(h->shared, R | W));
    atomic_fetch_sub(h->running, 1);
    return NULL;
}

static uint32_t mask_of(uint32_t interest)
{
    return (interest & (R | W | P)) | MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED;
}

TEST(producers_final_state_is_reported)
{
    mio_poll *p = test_poll();
    mio_registration *r[PRODUCERS + 1];
    mio_set_readiness *s[PRODUCERS + 1], *shared_clone[PRODUCERS];
    uint32_t interest[PRODUCERS + 1], last[PRODUCERS + 1] = { 0 };
    struct hammer h[PRODUCERS];
    pthread_t t[PRODUCERS];
    atomic_int running = PRODUCERS;
    long events = 0;
    int64_t deadline;
    int i, done = 0;

    for (i = 0; i <= PRODUCERS; i++) {
        new_pair(&r[i], &s[i]);
        interest[i] = i == SHARED ? R | W | MIO_LEVEL : (i % 2 ? R | W | P : (R | W | P) | MIO_LEVEL);
        OK(mio_registration_register(p, r[i], (mio_token)i, interest[i]));
    }
    for (i = 0; i < PRODUCERS; i++) {
        OK(mio_set_readiness_clone(s[SHARED], &shared_clone[i]));
        h[i] = (struct hammer){ s[i], shared_clone[i], stress_scaled(1000000), final_value(i), &running };
        CHECK_EQ(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    deadline = test_now_ns() + 60 * MIO_SEC;
    while (!done) {
        mio_event ev[64];
        int n = test_wait(p, ev, 64, 10 * MIO_MSEC), j;
        for (j = 0; j < n; j++) {
            mio_token k = ev[j].token;
            CHECK(k <= PRODUCERS);
            CHECK(ev[j].flags != 0);
            CHECK_EQ(ev[j].flags & ~mask_of(interest[k]), 0);
            last[k] = ev[j].flags;
        }
        events += n;
        if (atomic_load(&running) == 0) {
            /* Finished producers: the last event of each is its final value.
             * Level ones keep reporting it; edge ones reported it once. */
            done = last[SHARED] == (R | W);
            for (i = 0; i < PRODUCERS; i++)
                done = done && last[i] == (final_value(i) & mask_of(interest[i]));
        }
        CHECK(test_now_ns() < deadline);
    }
    for (i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    /* Edge registrations stay quiet once their final rise is reported. */
    {
        mio_event ev[64];
        int n = test_wait(p, ev, 64, 0), j;
        for (j = 0; j < n; j++)
            CHECK(ev[j].token == SHARED || ev[j].token % 2 == 0);
    }
    CHECK(events > 0);
    for (i = 0; i <= PRODUCERS; i++) {
        mio_registration_free(r[i]);
        mio_set_readiness_free(s[i]);
        if (i < PRODUCERS)
            mio_set_readiness_free(shared_clone[i]);
    }
    mio_poll_free(p);
}

/* ---- lifetimes racing producers ---- */

struct racer {
    mio_set_readiness *s;
    atomic_int *stop;
    atomic_long *sets;
};

static void *race_run(void *arg)
{
    struct racer *rc = arg;
    uint32_t seed = 12345u ^ (uint32_t)(uintptr_t)rc;

    while (!atomic_load(rc->stop)) {
        OK(mio_set_readiness_set(rc->s, next_random(&seed) & (R | W)));
        atomic_fetch_add(rc->sets, 1);
    }
    mio_set_readiness_free(rc->s);
    return NULL;
}

/* Threads setting random readiness, each through its own clone of a
 * registration's handle, until stopped. */
enum { RACERS = 4 };

struct race {
    struct user u;
    struct racer rc[RACERS];
    pthread_t t[RACERS];
    atomic_int stop;
    atomic_long sets;
};

/* Registers race->u (token 1, interest) on its poll and starts the racers. */
static void race_start(struct race *ra, uint32_t interest)
{
    int i;

    ra->u = user_open();
    atomic_init(&ra->stop, 0);
    atomic_init(&ra->sets, 0);
    OK(mio_registration_register(ra->u.p, ra->u.r, 1, interest));
    for (i = 0; i < RACERS; i++) {
        ra->rc[i].stop = &ra->stop;
        ra->rc[i].sets = &ra->sets;
        OK(mio_set_readiness_clone(ra->u.s, &ra->rc[i].s));
        CHECK_EQ(pthread_create(&ra->t[i], NULL, race_run, &ra->rc[i]), 0);
    }
}

static void race_stop(struct race *ra)
{
    int i;
    atomic_store(&ra->stop, 1);
    for (i = 0; i < RACERS; i++)
        pthread_join(ra->t[i], NULL);
}

/* Waits until the racers made some progress. */
static void let_run(struct race *ra, long at_least)
{
    long start = atomic_load(&ra->sets);
    int64_t deadline = test_now_ns() + 10 * MIO_SEC;
    while (atomic_load(&ra->sets) - start < at_least && test_now_ns() < deadline)
        sched_yield();
}

/* Whether to run round k of a race: three at least, then as many as fit in
 * 5 s (a loaded machine does fewer) up to the scaled count. */
static bool another_round(long k, int64_t end)
{
    return k < stress_scaled(100) && (k < 3 || test_now_ns() < end);
}

TEST(free_registration_racing_set)
{
    int64_t end = test_now_ns() + 5 * MIO_SEC;
    long k;

    for (k = 0; another_round(k, end); k++) {
        struct race ra;
        mio_event ev[16];
        int i;

        race_start(&ra, k % 2 ? R | W | MIO_LEVEL : R | W);
        mio_set_readiness_free(ra.u.s);     /* the racers hold clones */
        test_wait(ra.u.p, ev, 16, 0);
        let_run(&ra, 100);
        mio_registration_free(ra.u.r);
        /* No event for it once freed, though the racers go on setting. */
        for (i = 0; i < 3; i++)
            EXPECT_QUIET(ra.u.p, 0);
        let_run(&ra, 100);
        race_stop(&ra);
        mio_poll_free(ra.u.p);
    }
}

TEST(free_poll_racing_set)
{
    int64_t end = test_now_ns() + 5 * MIO_SEC;
    long k;

    for (k = 0; another_round(k, end); k++) {
        struct race ra;
        mio_event ev[16];
        int j;

        race_start(&ra, R | W);
        /* Draining lets the racers push (and notify, after blocking waits)
         * again, so pushes are in flight when the poll goes. */
        for (j = 0; j < 50; j++)
            test_wait(ra.u.p, ev, 16, j % 2 ? MIO_MSEC : 0);
        mio_poll_free(ra.u.p);
        let_run(&ra, 100);
        /* Detached while the racers still set: it can join another poll. */
        ra.u.p = test_poll();
        OK(mio_registration_register(ra.u.p, ra.u.r, 2, R | W | MIO_LEVEL));
        OK(mio_set_readiness_set(ra.u.s, R));
        race_stop(&ra);
        OK(mio_set_readiness_set(ra.u.s, R));
        CHECK_EQ(test_wait_token(ra.u.p, 2, MIO_SEC), R);
        user_close(ra.u);
    }
}

/* Registrations freed while their nodes are queued: the poller's pops (and
 * the poll's detach) race the producer letting go of its last handle to be
 * each node's last owner.  Whoever wins, nothing touches a node after it is
 * freed (ASan). */
struct churner {
    mio_poll *p;
    long rounds;
    atomic_int stop, done;
};

static void *churn_orphans(void *arg)
{
    struct churner *c = arg;
    long i;

    for (i = 0; i < c->rounds && !atomic_load(&c->stop); i++) {
        mio_registration *r;
        mio_set_readiness *s;
        new_pair(&r, &s);
        OK(mio_registration_register(c->p, r, 1, R | (i % 2 ? MIO_LEVEL : 0)));
        OK(mio_set_readiness_set(s, R));
        mio_registration_free(r);
        mio_set_readiness_free(s);
    }
    atomic_store(&c->done, 1);
    return NULL;
}

enum { ORPHANS = 64 };

struct orphans {
    mio_set_readiness *s[ORPHANS];
    atomic_int go;
};

static void *free_orphans(void *arg)
{
    struct orphans *o = arg;
    int i;
    while (!atomic_load(&o->go))
        ;
    for (i = 0; i < ORPHANS; i++)
        mio_set_readiness_free(o->s[i]);
    return NULL;
}

TEST(pop_racing_last_set_free)
{
    mio_poll *p = test_poll();
    mio_registration *other;
    mio_set_readiness *other_s;
    struct churner c;
    int64_t end = test_now_ns() + 3 * MIO_SEC;
    pthread_t t;
    long k;

    /* A live node bound to the poll too, whose links unbinding writes. */
    new_pair(&other, &other_s);
    OK(mio_registration_register(p, other, 2, R));
    c.p = p;
    c.rounds = LONG_MAX;    /* until `end` */
    atomic_init(&c.stop, 0);
    atomic_init(&c.done, 0);
    CHECK_EQ(pthread_create(&t, NULL, churn_orphans, &c), 0);
    while (!atomic_load(&c.done)) {
        mio_event ev[4];
        int n = test_wait(p, ev, 4, 0), i;
        for (i = 0; i < n; i++)
            CHECK_EQ(ev[i].token, 1);   /* reported before its free: fine */
        if (test_now_ns() > end)
            atomic_store(&c.stop, 1);
    }
    pthread_join(t, NULL);

    /* The same race through the poll's detach. */
    for (k = 0; k < stress_scaled(2000); k++) {
        struct orphans o;
        mio_poll *q = test_poll();
        int i;

        for (i = 0; i < ORPHANS; i++) {
            mio_registration *r;
            new_pair(&r, &o.s[i]);
            OK(mio_registration_register(q, r, 1, R));
            OK(mio_set_readiness_set(o.s[i], R));
            mio_registration_free(r);
        }
        atomic_init(&o.go, 0);
        CHECK_EQ(pthread_create(&t, NULL, free_orphans, &o), 0);
        atomic_store(&o.go, 1);
        mio_poll_free(q);
        pthread_join(t, NULL);
    }
    mio_registration_free(other);
    mio_set_readiness_free(other_s);
    mio_poll_free(p);
}

/* ---- model-based stress ----
 * The poller thread changes registrations at random and waits; producers set
 * random readiness and record every value they set before setting it.  The
 * model is what the poller itself did (token, interest, registered, oneshot
 * fired), so every event can be checked exactly against it, and its flags
 * against the values set. */

enum { MODEL_REGS = 4, MODEL_PRODUCERS = 3 };

struct model_reg {
    mio_registration *r;
    mio_set_readiness *s;
    atomic_ullong ever;         /* bit v: readiness v was set at some point */
    mio_token token;
    uint32_t interest;
    bool registered, fired;
};

struct model_producer {
    struct model_reg *regs;
    mio_set_readiness *s[MODEL_REGS];
    long iterations;
    uint32_t seed;
};

static void *model_produce(void *arg)
{
    struct model_producer *mp = arg;
    long i;

    for (i = 0; i < mp->iterations; i++) {
        uint32_t k = next_random(&mp->seed) % MODEL_REGS;
        uint32_t v = next_random(&mp->seed) & ALL_READINESS;
        atomic_fetch_or(&mp->regs[k].ever, 1ull << v);
        OK(mio_set_readiness_set(mp->s[k], v));
    }
    return NULL;
}

static uint32_t random_interest(uint32_t *seed)
{
    static const uint32_t triggers[] = { MIO_EDGE, MIO_LEVEL, MIO_ONESHOT, MIO_LEVEL | MIO_ONESHOT };
    uint32_t dirs = 0;
    while (dirs == 0)
        dirs = next_random(seed) & (R | W | P);
    return dirs | triggers[next_random(seed) % 4];
}

static void model_check(struct model_reg *regs, const mio_event *ev, int n)
{
    int i, k;
    for (i = 0; i < n; i++) {
        struct model_reg *m = NULL;
        unsigned long long ever;
        bool consistent = false;
        uint32_t v;

        for (k = 0; k < MODEL_REGS; k++)
            if (regs[k].registered && regs[k].token == ev[i].token)
                m = &regs[k];
        if (m == NULL)
            FAIL("event for token %llu, not registered", (unsigned long long)ev[i].token);
        if (m->fired)
            FAIL("second event for a oneshot (token %llu)", (unsigned long long)ev[i].token);
        if (ev[i].flags == 0 || (ev[i].flags & ~mask_of(m->interest)) != 0)
            FAIL("flags %#x outside interest %#x", ev[i].flags, m->interest);
        ever = atomic_load(&m->ever);
        for (v = 0; v <= ALL_READINESS; v++)
            if ((ever >> v & 1) && (v & mask_of(m->interest)) == ev[i].flags)
                consistent = true;
        if (!consistent)
            FAIL("flags %#x match no readiness ever set", ev[i].flags);
        if (m->interest & MIO_ONESHOT)
            m->fired = true;
    }
}

TEST(model_stress)
{
    mio_poll *p = test_poll();
    struct model_reg regs[MODEL_REGS];
    struct model_producer mp[MODEL_PRODUCERS];
    pthread_t t[MODEL_PRODUCERS];
    uint32_t seed = 2463534242u;
    mio_token next_token = 1;
    long steps = stress_scaled(200000), i;
    int k, j;

    memset(regs, 0, sizeof regs);
    for (k = 0; k < MODEL_REGS; k++) {
        new_pair(&regs[k].r, &regs[k].s);
        atomic_init(&regs[k].ever, 1ull);   /* readiness starts at 0 */
    }
    for (j = 0; j < MODEL_PRODUCERS; j++) {
        mp[j].regs = regs;
        for (k = 0; k < MODEL_REGS; k++)
            OK(mio_set_readiness_clone(regs[k].s, &mp[j].s[k]));
        mp[j].iterations = steps * 4;
        mp[j].seed = 0xdeadbeefu + (uint32_t)j * 7919u;
        CHECK_EQ(pthread_create(&t[j], NULL, model_produce, &mp[j]), 0);
    }
    for (i = 0; i < steps; i++) {
        uint32_t op = next_random(&seed) % 100;
        struct model_reg *m = &regs[next_random(&seed) % MODEL_REGS];
        if (op < 10) {
            mio_token tok = next_token++;
            uint32_t interest = random_interest(&seed);
            if (m->registered) {
                OK(mio_registration_reregister(p, m->r, tok, interest));
            } else {
                CHECK_EQ(mio_registration_reregister(p, m->r, tok, interest), MIO_ENOENT);
                OK(mio_registration_register(p, m->r, tok, interest));
            }
            m->token = tok;
            m->interest = interest;
            m->registered = true;
            m->fired = false;
        } else if (op < 14) {
            CHECK_EQ(mio_registration_deregister(p, m->r), m->registered ? 0 : MIO_ENOENT);
            m->registered = false;
        } else {
            mio_event ev[3];
            int n = test_wait(p, ev, 1 + next_random(&seed) % 3, op == 14 ? MIO_MSEC : 0);
            model_check(regs, ev, n);
        }
    }
    for (j = 0; j < MODEL_PRODUCERS; j++)
        pthread_join(t[j], NULL);
    /* The final readiness, whatever it is, is reported once re-armed. */
    for (k = 0; k < MODEL_REGS; k++) {
        if (regs[k].registered)
            OK(mio_registration_deregister(p, regs[k].r));
        regs[k].registered = false;
    }
    EXPECT_QUIET(p, 0);
    for (k = 0; k < MODEL_REGS; k++) {
        uint32_t final = mio_set_readiness_get(regs[k].s);
        mio_event ev[8];
        int n;
        OK(mio_registration_register(p, regs[k].r, 1000, R | W | P));
        n = test_wait(p, ev, 8, final != 0 ? MIO_SEC : 0);
        CHECK_EQ(n, final != 0);
        CHECK(n == 0 || (ev[0].token == 1000 && ev[0].flags == final));
        EXPECT_QUIET(p, 0);
        OK(mio_registration_deregister(p, regs[k].r));
    }
    for (k = 0; k < MODEL_REGS; k++) {
        for (j = 0; j < MODEL_PRODUCERS; j++)
            mio_set_readiness_free(mp[j].s[k]);
        mio_registration_free(regs[k].r);
        mio_set_readiness_free(regs[k].s);
    }
    mio_poll_free(p);
}

/* ---- allocation ---- */

static void *set_from_thread(void *arg)
{
    mio_set_readiness *s = arg;
    int i;
    for (i = 0; i < 200; i++) {
        OK(mio_set_readiness_set(s, i % 2 ? R : W));
        if (i % 20 == 0)
            test_sleep_ms(1);
    }
    OK(mio_set_readiness_set(s, 0));
    OK(mio_set_readiness_set(s, R | W));
    return NULL;
}

TEST(no_allocation_on_set_and_wait)
{
    mio_poll *p;
    mio_registration *r, *lr;
    mio_set_readiness *s, *ls;
    mio_event ev[8];
    pthread_t t;
    long before;
    int i;

    test_count_allocations();
    p = test_poll();
    new_pair(&r, &s);
    new_pair(&lr, &ls);
    OK(mio_registration_register(p, r, 1, R | W));
    OK(mio_registration_register(p, lr, 2, R | MIO_LEVEL));
    CHECK(test_allocations() > 0);   /* the allocator is in use */
    before = test_allocations();
    for (i = 0; i < 1000; i++) {
        OK(mio_set_readiness_set(s, i % 2 ? R : W));
        OK(mio_set_readiness_set(ls, i % 3 ? R : 0));
        test_wait(p, ev, 8, 0);
    }
    CHECK_EQ(pthread_create(&t, NULL, set_from_thread, s), 0);
    for (i = 0; i < 10000 && test_wait_token(p, 1, MIO_SEC) != (R | W); i++)
        ;
    CHECK(i < 10000);
    pthread_join(t, NULL);
    OK(mio_registration_reregister(p, r, 3, R));
    OK(mio_registration_deregister(p, lr));
    test_wait(p, ev, 8, 0);
    CHECK_EQ(test_allocations(), before);
    mio_registration_free(r);
    mio_registration_free(lr);
    mio_set_readiness_free(s);
    mio_set_readiness_free(ls);
    mio_poll_free(p);
    OK(mio_set_allocator(NULL, NULL, NULL, NULL));
}
