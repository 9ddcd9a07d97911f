/* The event loop and its channel: every callback's contract, shutdown and
 * re-run, the channel's bounds, FIFO order, wake-ups, concurrency and
 * lifetime, and ticks that allocate nothing. */
#include "harness.h"
#include "loop.h"
#include "timer.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#ifndef _WIN32
#include <signal.h>
#endif

/* ---- helpers ---- */

/* A loop on this run's backend; c may be NULL.  A hang in a test that waits
 * for something that never comes fails here rather than at ctest's limit. */
static mio_loop *new_loop(mio_loop_config *c)
{
    mio_loop_config def;
    mio_loop *l = NULL;
    int err;

    if (c == NULL) {
        mio_loop_config_default(&def);
        c = &def;
    }
    c->backend = test_backend;
    err = mio_loop_new(c, &l);
    if (err == MIO_ENOSYS)
        SKIP("backend %s not available here", test_backend);
    CHECK_EQ(err, 0);
    CHECK(l != NULL);
    CHECK(strcmp(mio_poll_backend(mio_loop_poll(l)), test_backend) == 0);
    test_watchdog(60);
    return l;
}

static mio_loop *new_loop_with(size_t notify_capacity, size_t messages_per_tick)
{
    mio_loop_config c = { 0 };
    c.notify_capacity = notify_capacity;
    c.messages_per_tick = messages_per_tick;
    return new_loop(&c);
}

/* A handler that records every call.  Kinds: R ready, N notify, T timeout,
 * I interrupted, K tick.  The kind in `stop_on` calls mio_loop_shutdown. */
struct rec {
    char log[512];
    size_t nlog;
    int ready, notify, timeouts, interrupted, ticks;
    mio_token token;
    uint32_t readiness;
    void *msgs[64];
    void *args[16];
    int64_t fired_at[16];
    char stop_on;
    int nested;                 /* what run_once returned from a callback */
    int try_nested;
};

static void record(struct rec *r, mio_loop *l, char kind)
{
    if (r->nlog < sizeof r->log - 1)
        r->log[r->nlog++] = kind;
    if (r->stop_on == kind)
        mio_loop_shutdown(l);
}

static const mio_handler recorder;

static void on_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct rec *r = ctx;
    r->token = token;
    r->readiness = readiness;
    r->ready++;
    record(r, l, 'R');
}

static void on_notify(mio_loop *l, void *ctx, void *msg)
{
    struct rec *r = ctx;
    if (r->notify < 64)
        r->msgs[r->notify] = msg;
    r->notify++;
    if (r->try_nested)
        r->nested = mio_loop_run_once(l, &recorder, r, 0);
    record(r, l, 'N');
}

static void on_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct rec *r = ctx;
    if (r->timeouts < 16) {
        r->args[r->timeouts] = arg;
        r->fired_at[r->timeouts] = test_now_ns();
    }
    r->timeouts++;
    record(r, l, 'T');
}

static void on_interrupted(mio_loop *l, void *ctx)
{
    struct rec *r = ctx;
    r->interrupted++;
    record(r, l, 'I');
}

static void on_tick(mio_loop *l, void *ctx)
{
    struct rec *r = ctx;
    r->ticks++;
    record(r, l, 'K');
}

static const mio_handler recorder = { on_ready, on_notify, on_timeout, on_interrupted, on_tick };

static void send_ok(mio_sender *s, void *msg)
{
    OK(mio_sender_send(s, msg));
}

/* ---- config and arguments ---- */

TEST(config_default_sizes_positive)
{
    mio_loop_config c;
    memset(&c, 0, sizeof c);
    c.backend = "garbage";
    mio_loop_config_default(&c);
    CHECK(c.notify_capacity > 0);
    CHECK(c.messages_per_tick > 0);
    CHECK(c.timer_wheel_size > 0);
    CHECK(c.timer_capacity > 0);
    CHECK(c.events_capacity > 0);
    CHECK(c.timer_tick_ns > 0);
    CHECK(c.backend == NULL);
    mio_loop_config_default(NULL);
}

TEST(null_config_takes_defaults)
{
    mio_loop *l = NULL;
    OK(mio_loop_new(NULL, &l));
    CHECK(mio_loop_poll(l) != NULL);
    CHECK(mio_poll_backend(mio_loop_poll(l)) != NULL);
    CHECK(mio_loop_is_running(l));
    mio_loop_free(l);
}

/* A zero field is the default: the channel holds the default 4096. */
TEST(zero_config_fields_take_defaults)
{
    mio_loop *l = new_loop_with(0, 0);
    mio_sender *s;
    int i;
    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 4096; i++)
        send_ok(s, NULL);
    CHECK_EQ(mio_sender_send(s, NULL), MIO_EAGAIN);
    mio_sender_free(s);
    mio_loop_free(l);
}

TEST(unknown_backend_is_enosys)
{
    mio_loop_config c = { 0 };
    mio_loop *l = (mio_loop *)&c;
    c.backend = "no-such-backend";
    CHECK_EQ(mio_loop_new(&c, &l), MIO_ENOSYS);
    CHECK(l == NULL);
}

TEST(null_arguments_are_einval)
{
    mio_loop *l = new_loop(NULL);
    char junk;
    mio_sender *s = (mio_sender *)(void *)&junk;    /* any non-NULL value */
    mio_timeout t = 1;

    CHECK_EQ(mio_loop_new(NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_loop_run(NULL, &recorder, NULL), MIO_EINVAL);
    CHECK_EQ(mio_loop_run(l, NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_loop_run_once(NULL, &recorder, NULL, 0), MIO_EINVAL);
    CHECK_EQ(mio_loop_run_once(l, NULL, NULL, 0), MIO_EINVAL);
    CHECK_EQ(mio_loop_timeout(NULL, NULL, 1, &t), MIO_EINVAL);
    CHECK_EQ(t, 0);
    CHECK(!mio_loop_clear_timeout(NULL, 1));
    CHECK_EQ(mio_loop_channel(NULL, &s), MIO_EINVAL);
    CHECK(s == NULL);
    CHECK_EQ(mio_loop_channel(l, NULL), MIO_EINVAL);
    CHECK_EQ(mio_sender_clone(NULL, &s), MIO_EINVAL);
    CHECK_EQ(mio_sender_send(NULL, NULL), MIO_EINVAL);
    CHECK(mio_loop_poll(NULL) == NULL);
    CHECK(!mio_loop_is_running(NULL));
    mio_loop_shutdown(NULL);
    mio_sender_free(NULL);
    mio_loop_free(NULL);
    mio_loop_free(l);
}

/* ---- ready ---- */

TEST(ready_gets_token_and_readiness)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_fd sv[2];
    int i;

    OK(mio_socketpair(sv));
    OK(mio_register(mio_loop_poll(l), sv[0], 42, MIO_READABLE));
    CHECK_EQ(mio_write(sv[1], "x", 1), 1);
    for (i = 0; i < 100 && r.ready == 0; i++)
        OK(mio_loop_run_once(l, &recorder, &r, 100 * MIO_MSEC));
    CHECK_EQ(r.ready, 1);
    CHECK_EQ(r.token, 42);
    CHECK(r.readiness & MIO_READABLE);
    CHECK(!(r.readiness & MIO_WRITABLE));
    mio_close(sv[0]);
    mio_close(sv[1]);
    mio_loop_free(l);
}

/* No more ready calls per tick than events_capacity; none lost. */
TEST(ready_calls_bounded_by_events_capacity)
{
    mio_loop_config c = { 0 };
    struct rec r = { .stop_on = 0 };
    mio_fd sv[5][2];
    mio_loop *l;
    int i, ticks = 0;

    c.events_capacity = 2;
    l = new_loop(&c);
    for (i = 0; i < 5; i++) {
        OK(mio_socketpair(sv[i]));
        OK(mio_register(mio_loop_poll(l), sv[i][0], (mio_token)i, MIO_READABLE));
        CHECK_EQ(mio_write(sv[i][1], "x", 1), 1);
    }
    while (r.ready < 5 && ticks < 100) {
        int before = r.ready;
        OK(mio_loop_run_once(l, &recorder, &r, 100 * MIO_MSEC));
        CHECK(r.ready - before <= 2);
        ticks++;
    }
    CHECK_EQ(r.ready, 5);
    for (i = 0; i < 5; i++) {
        mio_close(sv[i][0]);
        mio_close(sv[i][1]);
    }
    mio_loop_free(l);
}

/* The wake-ups of the loop's channel never reach ready. */
static void *send_later(void *arg)
{
    mio_sender *s = arg;
    int i;
    for (i = 0; i < 20; i++) {
        test_sleep_ms(2);
        send_ok(s, (void *)(uintptr_t)i);
    }
    return NULL;
}

TEST(channel_wakeups_never_reach_ready)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    pthread_t th;

    OK(mio_loop_channel(l, &s));
    CHECK_EQ(pthread_create(&th, NULL, send_later, s), 0);
    while (r.notify < 20)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(r.ready, 0);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* ---- notify and the channel ---- */

TEST(notify_in_fifo_order)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    uintptr_t i;

    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 64; i++)
        send_ok(s, (void *)(i * 3));
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 64);
    for (i = 0; i < 64; i++)
        CHECK_EQ((uintptr_t)r.msgs[i], i * 3);
    mio_sender_free(s);
    mio_loop_free(l);
}

TEST(null_message_is_delivered)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;

    OK(mio_loop_channel(l, &s));
    send_ok(s, NULL);
    send_ok(s, &r);
    send_ok(s, NULL);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 3);
    CHECK(r.msgs[0] == NULL && r.msgs[1] == &r && r.msgs[2] == NULL);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* 10 messages with messages_per_tick 3 arrive 3, 3, 3, 1; ticks with
 * messages left over do not block. */
TEST(messages_per_tick_respected)
{
    mio_loop *l = new_loop_with(0, 3);
    struct rec r = { .stop_on = 0 };
    const int expect[] = { 3, 6, 9, 10, 10 };
    mio_sender *s;
    int64_t start;
    int i;

    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 10; i++)
        send_ok(s, (void *)(uintptr_t)i);
    start = test_now_ns();
    for (i = 0; i < 4; i++) {
        OK(mio_loop_run_once(l, &recorder, &r, 20 * MIO_SEC));
        CHECK_EQ(r.notify, expect[i]);
    }
    CHECK(test_now_ns() - start < 10 * MIO_SEC);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, expect[4]);
    for (i = 0; i < 10; i++)
        CHECK_EQ((uintptr_t)r.msgs[i], i);
    mio_sender_free(s);
    mio_loop_free(l);
}

TEST(full_channel_is_eagain)
{
    mio_loop *l = new_loop_with(5, 0);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    int i;

    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 5; i++)
        send_ok(s, (void *)(uintptr_t)i);
    CHECK_EQ(mio_sender_send(s, NULL), MIO_EAGAIN);
    CHECK_EQ(mio_sender_send(s, NULL), MIO_EAGAIN);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 5);
    /* Room again, and the slots are reused in order. */
    for (i = 5; i < 10; i++)
        send_ok(s, (void *)(uintptr_t)i);
    CHECK_EQ(mio_sender_send(s, NULL), MIO_EAGAIN);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 10);
    for (i = 0; i < 10; i++)
        CHECK_EQ((uintptr_t)r.msgs[i], i);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* A channel of one slot holds one message, not a second over it. */
TEST(channel_of_one_holds_one)
{
    mio_loop *l = new_loop_with(1, 0);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    int i;

    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 3; i++) {
        send_ok(s, (void *)(uintptr_t)(2 * i));
        CHECK_EQ(mio_sender_send(s, (void *)(uintptr_t)(2 * i + 1)), MIO_EAGAIN);
        OK(mio_loop_run_once(l, &recorder, &r, 0));
        CHECK_EQ(r.notify, i + 1);
        CHECK_EQ((uintptr_t)r.msgs[i], 2 * i);
    }
    mio_sender_free(s);
    mio_loop_free(l);
}

TEST(cloned_senders_share_the_channel)
{
    mio_loop *l = new_loop_with(4, 0);
    struct rec r = { .stop_on = 0 };
    mio_sender *a, *b = NULL;

    OK(mio_loop_channel(l, &a));
    OK(mio_sender_clone(a, &b));
    CHECK(b != NULL && b != a);
    send_ok(a, (void *)1);
    send_ok(b, (void *)2);
    mio_sender_free(a);
    send_ok(b, (void *)3);
    send_ok(b, (void *)4);
    CHECK_EQ(mio_sender_send(b, (void *)5), MIO_EAGAIN);   /* one capacity for both */
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 4);
    CHECK(r.msgs[0] == (void *)1 && r.msgs[1] == (void *)2);
    CHECK(r.msgs[2] == (void *)3 && r.msgs[3] == (void *)4);
    mio_sender_free(b);
    mio_loop_free(l);
}

/* A send from another thread wakes a loop blocked with no timeout. */
TEST(send_wakes_a_blocked_loop)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    pthread_t th;
    int ticks = 0;

    OK(mio_loop_channel(l, &s));
    CHECK_EQ(pthread_create(&th, NULL, send_later, s), 0);
    while (r.notify < 20) {
        OK(mio_loop_run_once(l, &recorder, &r, -1));
        ticks++;
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(r.ticks, ticks);
    for (int i = 0; i < 20; i++)
        CHECK_EQ((uintptr_t)r.msgs[i], i);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* Producers x messages, each delivered exactly once and each producer's in
 * the order it sent them. */
#define PRODUCERS 4

struct producer {
    mio_sender *s;
    uintptr_t first, count;
    long eagain;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    uintptr_t i;
    for (i = 0; i < p->count; i++) {
        int err;
        while ((err = mio_sender_send(p->s, (void *)(p->first + i))) == MIO_EAGAIN) {
            p->eagain++;
            sched_yield();
        }
        CHECK_EQ(err, 0);
    }
    return NULL;
}

struct tally {
    uintptr_t per_producer;
    uintptr_t next[PRODUCERS];  /* next index expected from each producer */
    uintptr_t total;
};

static void count_message(mio_loop *l, void *ctx, void *msg)
{
    struct tally *t = ctx;
    uintptr_t v = (uintptr_t)msg, p = v / t->per_producer;
    (void)l;
    CHECK(p < PRODUCERS);
    CHECK_EQ(v % t->per_producer, t->next[p]);
    t->next[p]++;
    t->total++;
}

TEST(many_producers_deliver_exactly_once)
{
    static const mio_handler counter = { NULL, count_message, NULL, NULL, NULL };
    mio_loop *l = new_loop_with(1000, 0);      /* not a power of two: the division path */
    struct producer prod[PRODUCERS];
    struct tally t;
    pthread_t th[PRODUCERS];
    int i;

    memset(&t, 0, sizeof t);
    t.per_producer = (uintptr_t)test_scaled(100000);
    for (i = 0; i < PRODUCERS; i++) {
        OK(mio_loop_channel(l, &prod[i].s));
        prod[i].first = (uintptr_t)i * t.per_producer;   /* producer 0 sends NULL first */
        prod[i].count = t.per_producer;
        prod[i].eagain = 0;
        CHECK_EQ(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
    }
    while (t.total < PRODUCERS * t.per_producer)
        OK(mio_loop_run_once(l, &counter, &t, -1));
    for (i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(t.next[i], t.per_producer);
        mio_sender_free(prod[i].s);
    }
    OK(mio_loop_run_once(l, &counter, &t, 0));
    CHECK_EQ(t.total, PRODUCERS * t.per_producer);
    mio_loop_free(l);
}

/* ---- senders outliving the loop ---- */

TEST(sender_outliving_loop_gets_epipe)
{
    mio_loop *l = new_loop(NULL);
    mio_sender *a, *b;

    OK(mio_loop_channel(l, &a));
    OK(mio_sender_clone(a, &b));
    send_ok(a, (void *)1);      /* still queued when the loop goes: dropped */
    mio_loop_free(l);
    CHECK_EQ(mio_sender_send(a, (void *)2), MIO_EPIPE);
    CHECK_EQ(mio_sender_send(b, NULL), MIO_EPIPE);
    mio_sender_free(a);
    CHECK_EQ(mio_sender_send(b, NULL), MIO_EPIPE);
    mio_sender_free(b);
}

TEST(clone_after_loop_freed_still_epipe)
{
    mio_loop *l = new_loop(NULL);
    mio_sender *a, *b;

    OK(mio_loop_channel(l, &a));
    mio_loop_free(l);
    OK(mio_sender_clone(a, &b));
    mio_sender_free(a);
    CHECK_EQ(mio_sender_send(b, NULL), MIO_EPIPE);
    mio_sender_free(b);
}

/* Senders hammering a loop that sleeps, wakes and is freed under them: every
 * send succeeds, finds the channel full or finds it closed, nothing else. */
struct hammer {
    mio_sender *s;
    atomic_int closed_seen;
};

static void *hammer_sends(void *arg)
{
    struct hammer *h = arg;
    for (;;) {
        int err = mio_sender_send(h->s, NULL);
        if (err == MIO_EPIPE)
            break;
        CHECK(err == 0 || err == MIO_EAGAIN);
    }
    atomic_store(&h->closed_seen, 1);
    return NULL;
}

TEST(loop_freed_while_senders_send)
{
    mio_loop *l = new_loop_with(64, 0);
    struct rec r = { .stop_on = 0 };
    struct hammer h[2];
    pthread_t th[2];
    int i;

    for (i = 0; i < 2; i++) {
        OK(mio_loop_channel(l, &h[i].s));
        atomic_init(&h[i].closed_seen, 0);
        CHECK_EQ(pthread_create(&th[i], NULL, hammer_sends, &h[i]), 0);
    }
    for (i = 0; i < (int)test_scaled(2000); i++)
        OK(mio_loop_run_once(l, &recorder, &r, i % 2 ? -1 : 0));
    mio_loop_free(l);
    for (i = 0; i < 2; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK(atomic_load(&h[i].closed_seen));
        mio_sender_free(h[i].s);
    }
}

/* ---- timeouts ---- */

TEST(timeouts_fire_in_deadline_order_never_early)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    /* 100 ms apart: a slow set (valgrind) cannot swap their order. */
    const int64_t delay[3] = { 300 * MIO_MSEC, 100 * MIO_MSEC, 200 * MIO_MSEC };
    int64_t start = test_now_ns();
    mio_timeout t[3];
    int i;

    for (i = 0; i < 3; i++) {
        OK(mio_loop_timeout(l, (void *)(uintptr_t)(i + 1), (uint64_t)delay[i], &t[i]));
        CHECK(t[i] != 0);
    }
    while (r.timeouts < 3)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK(r.args[0] == (void *)2 && r.args[1] == (void *)3 && r.args[2] == (void *)1);
    CHECK(r.fired_at[0] - start >= delay[1]);
    CHECK(r.fired_at[1] - start >= delay[2]);
    CHECK(r.fired_at[2] - start >= delay[0]);
    CHECK(!mio_loop_clear_timeout(l, t[0]));    /* fired: no longer pending */
    mio_loop_free(l);
}

TEST(cleared_timeout_never_fires)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_timeout cleared;

    OK(mio_loop_timeout(l, (void *)1, 10 * MIO_MSEC, &cleared));
    OK(mio_loop_timeout(l, (void *)2, 40 * MIO_MSEC, NULL));
    CHECK(mio_loop_clear_timeout(l, cleared));
    CHECK(!mio_loop_clear_timeout(l, cleared));
    while (r.timeouts < 1)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK_EQ(r.timeouts, 1);
    CHECK(r.args[0] == (void *)2);
    mio_loop_free(l);
}

/* A timeout that re-arms itself with delay 0 fires once per tick: the
 * callbacks of one tick cannot keep it busy and starve I/O. */
struct rearm { int fired, ticks, fired_by_tick; };

static void rearm_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct rearm *r = ctx;
    (void)arg;
    r->fired++;
    OK(mio_loop_timeout(l, NULL, 0, NULL));
}

static void rearm_tick(mio_loop *l, void *ctx)
{
    struct rearm *r = ctx;
    (void)l;
    r->ticks++;
    if (r->fired > r->fired_by_tick + 1)
        FAIL("%d timeouts fired in one tick", r->fired - r->fired_by_tick);
    r->fired_by_tick = r->fired;
}

TEST(timeout_set_by_a_timeout_fires_in_a_later_tick)
{
    mio_loop *l = new_loop(NULL);
    mio_handler h = { .timeout = rearm_timeout, .tick = rearm_tick };
    struct rearm r = { 0, 0, 0 };
    int i;

    OK(mio_loop_timeout(l, NULL, 0, NULL));
    for (i = 0; i < 100; i++)
        OK(mio_loop_run_once(l, &h, &r, -1));
    CHECK_EQ(r.ticks, 100);
    CHECK_EQ(r.fired, 100);
    mio_loop_free(l);
}

/* The same with another timeout pending that is not due: it must not make
 * room in the tick for the re-armed one. */
TEST(timeout_set_by_a_timeout_waits_for_a_later_tick_beside_a_pending_one)
{
    mio_loop *l = new_loop(NULL);
    mio_handler h = { .timeout = rearm_timeout, .tick = rearm_tick };
    struct rearm r = { 0, 0, 0 };
    int i;

    OK(mio_loop_timeout(l, NULL, 0, NULL));
    OK(mio_loop_timeout(l, &r, 3600 * MIO_SEC, NULL));
    for (i = 0; i < 100; i++)
        OK(mio_loop_run_once(l, &h, &r, -1));
    CHECK_EQ(r.ticks, 100);
    CHECK_EQ(r.fired, 100);
    mio_loop_free(l);
}

/* With no timeout of its own, a tick still ends at the next timer deadline. */
TEST(blocking_tick_ends_at_timer_deadline)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    int64_t start = test_now_ns();
    int ticks = 0;

    OK(mio_loop_timeout(l, NULL, 30 * MIO_MSEC, NULL));
    while (r.timeouts == 0 && ticks++ < 1000)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK_EQ(r.timeouts, 1);
    CHECK(test_now_ns() - start >= 30 * MIO_MSEC);
    mio_loop_free(l);
}

TEST(timer_capacity_is_enospc)
{
    mio_loop_config c = { 0 };
    mio_loop *l;

    c.timer_capacity = 2;
    l = new_loop(&c);
    OK(mio_loop_timeout(l, NULL, MIO_SEC, NULL));
    OK(mio_loop_timeout(l, NULL, MIO_SEC, NULL));
    CHECK_EQ(mio_loop_timeout(l, NULL, MIO_SEC, NULL), MIO_ENOSPC);
    mio_loop_free(l);
}

/* ---- timeouts through the stage ---- */

/* Tries to catch an early timeout across the loop's stage: sets and resets
 * from ready, notify, timeout and tick callbacks and between ticks, each
 * made after a sleep, so that the loop's last clock reading is old when the
 * call is made (a delay counted from it would end early), with delays of 0
 * to three ticks.  Asserted: a reading taken in each timeout's callback is
 * at least the one taken before its last set or reset plus its delay, and
 * each fires once. */
#define STAGED 64
struct staged {
    mio_fd sv[2];
    mio_sender *tx;
    mio_timeout h[STAGED];
    int64_t before[STAGED];
    uint64_t delay[STAGED];
    bool pending[STAGED];
    long actions, target, pending_count;
    uint64_t rng;
};

static uint64_t staged_random(struct staged *s, uint64_t n)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng % n;
}

/* A sleep, then a set of a timeout not pending or a reset of one that is. */
static void staged_act(mio_loop *l, struct staged *s)
{
    size_t j = (size_t)staged_random(s, STAGED);
    uint64_t delay = staged_random(s, 3 * MIO_MSEC + 1);

    if (s->actions >= s->target)
        return;
    s->actions++;
    test_sleep_ns((int64_t)staged_random(s, 1500 * MIO_USEC));
    s->before[j] = test_now_ns();
    s->delay[j] = delay;
    if (s->pending[j]) {
        CHECK(mio_loop_reset_timeout(l, s->h[j], delay));
    } else {
        OK(mio_loop_timeout(l, (void *)(uintptr_t)j, delay, &s->h[j]));
        s->pending[j] = true;
        s->pending_count++;
    }
}

static void staged_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct staged *s = ctx;
    char b;
    (void)token;
    (void)readiness;
    while (mio_read(s->sv[0], &b, 1) == 1)
        ;
    staged_act(l, s);
    if (s->actions < s->target)
        CHECK_EQ(mio_write(s->sv[1], "x", 1), 1);
}

static void staged_notify(mio_loop *l, void *ctx, void *msg)
{
    struct staged *s = ctx;
    (void)msg;
    staged_act(l, s);
    if (s->actions < s->target)
        send_ok(s->tx, NULL);
}

static void staged_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct staged *s = ctx;
    size_t j = (size_t)(uintptr_t)arg;
    int64_t now = test_now_ns();

    CHECK(j < STAGED && s->pending[j]);
    if (now - s->before[j] < (int64_t)s->delay[j])
        FAIL("timeout %zu (delay %llu ns) fired %lld ns after its set", j,
             (unsigned long long)s->delay[j], (long long)(now - s->before[j]));
    s->pending[j] = false;
    s->pending_count--;
    staged_act(l, s);
}

static void staged_tick(mio_loop *l, void *ctx)
{
    staged_act(l, ctx);
}

TEST(timeouts_set_from_every_callback_never_early)
{
    static const mio_handler h = { staged_ready, staged_notify, staged_timeout, NULL,
                                   staged_tick };
    mio_loop *l = new_loop(NULL);
    struct staged s;

    memset(&s, 0, sizeof s);
    s.rng = 0x9e3779b97f4a7c15u;
    s.target = test_scaled(400);
    OK(mio_socketpair(s.sv));
    OK(mio_register(mio_loop_poll(l), s.sv[0], 1, MIO_READABLE));
    OK(mio_loop_channel(l, &s.tx));
    CHECK_EQ(mio_write(s.sv[1], "x", 1), 1);
    send_ok(s.tx, NULL);
    while (s.actions < s.target || s.pending_count > 0) {
        OK(mio_loop_run_once(l, &h, &s, -1));
        staged_act(l, &s);                      /* between ticks */
    }
    mio_sender_free(s.tx);
    mio_close(s.sv[0]);
    mio_close(s.sv[1]);
    mio_loop_free(l);
}

TEST(reset_timeout_fires_once_at_its_new_deadline)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_timeout t;
    int64_t before;

    OK(mio_loop_timeout(l, (void *)1, 20 * MIO_MSEC, &t));
    before = test_now_ns();
    CHECK(mio_loop_reset_timeout(l, t, 60 * MIO_MSEC));
    while (r.timeouts == 0)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK_EQ(r.timeouts, 1);
    CHECK(r.args[0] == (void *)1);
    CHECK(r.fired_at[0] - before >= 60 * MIO_MSEC);
    CHECK(!mio_loop_reset_timeout(l, t, MIO_MSEC));     /* fired */
    CHECK(!mio_loop_clear_timeout(l, t));
    CHECK(!mio_loop_reset_timeout(NULL, t, MIO_MSEC));
    mio_loop_free(l);
}

/* mio_loop_timeout_in is mio_loop_timeout with the time before arg: the
 * same timeouts, in deadline order whichever call set them. */
TEST(timeout_in_is_timeout_with_time_first)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    int64_t start = test_now_ns();
    mio_timeout t1, t2, t3;

    OK(mio_loop_timeout_in(l, 200 * MIO_MSEC, (void *)1, &t1));
    OK(mio_loop_timeout(l, (void *)2, 100 * MIO_MSEC, &t2));
    OK(mio_loop_timeout_in(l, 150 * MIO_MSEC, (void *)3, &t3));
    CHECK(t1 != 0 && t2 != 0 && t3 != 0);
    CHECK(mio_loop_clear_timeout(l, t3));
    while (r.timeouts < 2)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK(r.args[0] == (void *)2 && r.args[1] == (void *)1);
    CHECK(r.fired_at[1] - start >= 200 * MIO_MSEC);
    CHECK(!mio_loop_clear_timeout(l, t1));
    mio_loop_free(l);
}

/* An absolute deadline fires once the clock has reached it, never before;
 * one already reached fires at the next tick. */
TEST(timeout_at_fires_at_its_deadline)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    int64_t deadline = mio_clock_ns() + 30 * MIO_MSEC;
    mio_timeout t;

    OK(mio_loop_timeout_at(l, deadline, (void *)1, &t));
    CHECK(t != 0);
    OK(mio_loop_timeout_at(l, mio_clock_ns() - MIO_SEC, (void *)2, NULL));
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK(r.timeouts >= 1);                 /* 2 at once; 1 as well if 30 ms went by */
    CHECK(r.args[0] == (void *)2);
    while (r.timeouts < 2)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    CHECK(r.args[1] == (void *)1);
    CHECK(mio_clock_ns() >= deadline);
    mio_loop_free(l);
}

/* The recipe of mio.h: a job re-armed from its `timeout` at its planned
 * deadline plus the period.  Each firing comes at or after its deadline,
 * and the deadline the loop holds for the next is exactly the planned one
 * rounded up to the tick, period after period, however late the callback
 * ran: the plan does not drift (a deadline the loop is already past is due
 * at once, the catch-up). */
struct periodic {
    int64_t next, period;
    int fired, rounds;
    mio_timer *timer;
};

static void periodic_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct periodic *j = arg;
    int64_t planned, held, after;
    (void)ctx;
    CHECK(mio_clock_ns() >= j->next);       /* never early */
    if (++j->fired == j->rounds)
        return;
    j->next += j->period;                   /* the plan, not the clock */
    OK(mio_loop_timeout_at(l, j->next, j, NULL));
    after = mio_clock_ns();
    /* The only timeout pending: its deadline, as a time on the clock. */
    held = mio__timer_next_at(j->timer, 0);
    planned = (j->next + MIO_MSEC - 1) / MIO_MSEC * MIO_MSEC;
    if (j->next > after)
        CHECK_EQ(held, planned);
    else if (held != planned)
        CHECK(held <= after);               /* behind the plan: due at once */
}

TEST(timeout_at_periodic_does_not_drift)
{
    mio_loop *l = new_loop(NULL);
    mio_handler h = { .timeout = periodic_timeout };
    struct periodic j = { 0 };
    int64_t start = mio_clock_ns();

    j.period = 2 * MIO_MSEC + 300 * MIO_USEC;   /* no multiple of the 1 ms tick */
    j.rounds = (int)test_scaled(200);
    j.timer = l->timer;
    j.next = start + j.period;
    OK(mio_loop_timeout_at(l, j.next, &j, NULL));
    while (j.fired < j.rounds)
        OK(mio_loop_run_once(l, &h, NULL, -1));
    CHECK_EQ(j.next, start + j.rounds * j.period);
    mio_loop_free(l);
}

/* Bad arguments and a full timer wheel: an error, *out 0, nothing armed. */
TEST(timeout_in_and_at_errors_arm_nothing)
{
    mio_loop_config c = { 0 };
    struct rec r = { .stop_on = 0 };
    mio_timeout t = 42;
    mio_loop *l;

    CHECK_EQ(mio_loop_timeout_in(NULL, 0, NULL, &t), MIO_EINVAL);
    CHECK_EQ(t, 0);
    t = 42;
    CHECK_EQ(mio_loop_timeout_at(NULL, 0, NULL, &t), MIO_EINVAL);
    CHECK_EQ(t, 0);
    CHECK_EQ(mio_loop_timeout_at(NULL, 0, NULL, NULL), MIO_EINVAL);
    c.timer_capacity = 2;
    l = new_loop(&c);
    OK(mio_loop_timeout_in(l, 0, (void *)1, NULL));
    OK(mio_loop_timeout_at(l, 0, (void *)2, NULL));
    t = 42;
    CHECK_EQ(mio_loop_timeout_in(l, 0, (void *)3, &t), MIO_ENOSPC);
    CHECK_EQ(t, 0);
    t = 42;
    CHECK_EQ(mio_loop_timeout_at(l, 0, (void *)3, &t), MIO_ENOSPC);
    CHECK_EQ(t, 0);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.timeouts, 2);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.timeouts, 2);
    mio_loop_free(l);
}

/* ---- tick ---- */

TEST(tick_called_once_per_run_once)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    int i;

    OK(mio_loop_channel(l, &s));
    for (i = 1; i <= 5; i++) {
        if (i % 2)
            send_ok(s, NULL);
        OK(mio_loop_run_once(l, &recorder, &r, 0));
        CHECK_EQ(r.ticks, i);
    }
    OK(mio_loop_run_once(l, &recorder, &r, 5 * MIO_MSEC));
    CHECK_EQ(r.ticks, 6);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* One tick: ready, then notify, then timeout, then tick. */
TEST(callbacks_run_in_tick_order)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    mio_fd sv[2];
    int i;

    OK(mio_socketpair(sv));
    OK(mio_register(mio_loop_poll(l), sv[0], 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_loop_channel(l, &s));
    OK(mio_loop_timeout(l, NULL, 1 * MIO_MSEC, NULL));
    CHECK_EQ(mio_write(sv[1], "x", 1), 1);
    send_ok(s, NULL);
    test_sleep_ms(30);
    for (i = 0; i < 100 && r.timeouts == 0; i++)    /* a coarse timer may need more ticks */
        OK(mio_loop_run_once(l, &recorder, &r, 10 * MIO_MSEC));
    CHECK(r.nlog >= 4);
    CHECK(memcmp(r.log, "RNTK", 4) == 0);
    mio_sender_free(s);
    mio_close(sv[0]);
    mio_close(sv[1]);
    mio_loop_free(l);
}

/* ---- shutdown, run, is_running ---- */

/* Runs the loop with something for every callback and shutdown in `kind`
 * (for 'I', the caller sends signals): run returns 0 after that tick, whose
 * tick callback still ran. */
static void shutdown_from(char kind)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = kind };
    mio_sender *s;
    mio_fd sv[2];
    size_t last;

    OK(mio_socketpair(sv));
    OK(mio_register(mio_loop_poll(l), sv[0], 1, MIO_READABLE));
    OK(mio_loop_channel(l, &s));
    if (kind == 'R')
        CHECK_EQ(mio_write(sv[1], "x", 1), 1);
    if (kind == 'N')
        send_ok(s, NULL);
    if (kind == 'T' || kind == 'K')
        OK(mio_loop_timeout(l, NULL, 5 * MIO_MSEC, NULL));
    OK(mio_loop_run(l, &recorder, &r));
    CHECK(!mio_loop_is_running(l));
    /* The last tick is the one that shut down, and its tick still ran. */
    CHECK(r.nlog >= 2);
    CHECK_EQ(r.log[r.nlog - 1], 'K');
    last = r.nlog - 1;
    while (last > 0 && r.log[last - 1] != 'K')
        last--;
    CHECK(memchr(r.log + last, kind, r.nlog - last) != NULL);
    mio_sender_free(s);
    mio_close(sv[0]);
    mio_close(sv[1]);
    mio_loop_free(l);
}

TEST(shutdown_from_ready) { shutdown_from('R'); }
TEST(shutdown_from_notify) { shutdown_from('N'); }
TEST(shutdown_from_timeout) { shutdown_from('T'); }
TEST(shutdown_from_tick) { shutdown_from('K'); }

TEST(run_again_after_shutdown)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 'N' };
    mio_sender *s;

    OK(mio_loop_channel(l, &s));
    send_ok(s, (void *)1);
    OK(mio_loop_run(l, &recorder, &r));
    CHECK_EQ(r.notify, 1);
    CHECK(!mio_loop_is_running(l));
    send_ok(s, (void *)2);
    OK(mio_loop_run(l, &recorder, &r));
    CHECK_EQ(r.notify, 2);
    CHECK(r.msgs[1] == (void *)2);
    mio_sender_free(s);
    mio_loop_free(l);
}

static void check_running(mio_loop *l, void *ctx)
{
    *(int *)ctx = mio_loop_is_running(l);
    mio_loop_shutdown(l);
    *((int *)ctx + 1) = mio_loop_is_running(l);
}

TEST(is_running_until_shutdown)
{
    static const mio_handler h = { NULL, NULL, NULL, NULL, check_running };
    mio_loop *l = new_loop(NULL);
    int seen[2] = { -1, -1 };

    CHECK(mio_loop_is_running(l));
    mio_loop_shutdown(l);
    CHECK(!mio_loop_is_running(l));
    OK(mio_loop_timeout(l, NULL, 1 * MIO_MSEC, NULL));
    OK(mio_loop_run(l, &h, seen));
    CHECK_EQ(seen[0], 1);
    CHECK_EQ(seen[1], 0);
    CHECK(!mio_loop_is_running(l));
    mio_loop_free(l);
}

/* A run from the loop's own callback would wait for itself: MIO_EDEADLK,
 * its own code, so that it is not taken for another thread's wait. */
TEST(run_from_a_callback_is_edeadlk)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .try_nested = 1 };
    mio_sender *s;

    OK(mio_loop_channel(l, &s));
    send_ok(s, NULL);
    OK(mio_loop_run_once(l, &recorder, &r, 0));
    CHECK_EQ(r.notify, 1);
    CHECK_EQ(r.nested, MIO_EDEADLK);
    CHECK_EQ(r.ticks, 1);
    CHECK(strcmp(mio_strerror(MIO_EDEADLK), mio_strerror(MIO_EBUSY)) != 0);
    mio_sender_free(s);
    mio_loop_free(l);
}

/* Two loops on one thread: a callback of the outer one may run the inner
 * one; a callback of the inner one that runs the outer is MIO_EDEADLK; and
 * once both ticks are over, either runs again. */
struct pair_of_loops {
    mio_loop *outer, *inner;
    int inner_ran, outer_again, ticks;
};

static void inner_tick(mio_loop *l, void *ctx)
{
    struct pair_of_loops *p = ctx;
    (void)l;
    p->outer_again = mio_loop_run_once(p->outer, &(mio_handler){ 0 }, NULL, 0);
}

static void outer_tick(mio_loop *l, void *ctx)
{
    struct pair_of_loops *p = ctx;
    (void)l;
    p->ticks++;
    if (p->ticks == 1)
        p->inner_ran = mio_loop_run_once(p->inner, &(mio_handler){ .tick = inner_tick }, p, 0);
}

TEST(callback_may_run_another_loop)
{
    struct pair_of_loops p = { new_loop(NULL), new_loop(NULL), -1, -1, 0 };
    const mio_handler h = { .tick = outer_tick };

    OK(mio_loop_run_once(p.outer, &h, &p, 0));
    CHECK_EQ(p.inner_ran, 0);
    CHECK_EQ(p.outer_again, MIO_EDEADLK);
    OK(mio_loop_run_once(p.inner, &(mio_handler){ 0 }, NULL, 0));
    OK(mio_loop_run_once(p.outer, &h, &p, 0));
    CHECK_EQ(p.ticks, 2);
    mio_loop_free(p.inner);
    mio_loop_free(p.outer);
}

/* Another thread that runs the loop while its thread is in a callback (a
 * loop belongs to one thread: a bug) gets MIO_EBUSY, not MIO_EDEADLK. */
struct cross {
    mio_loop *l;
    atomic_int in_callback, other;
};

static void *run_from_other_thread(void *arg)
{
    struct cross *c = arg;
    while (!atomic_load(&c->in_callback))
        test_sleep_ms(1);
    atomic_store(&c->other, mio_loop_run_once(c->l, &(mio_handler){ 0 }, NULL, 0));
    return NULL;
}

static void wait_for_other(mio_loop *l, void *ctx)
{
    struct cross *c = ctx;
    (void)l;
    atomic_store(&c->in_callback, 1);
    while (atomic_load(&c->other) == 1)
        test_sleep_ms(1);
}

TEST(run_from_another_thread_mid_tick_is_ebusy)
{
    struct cross c;
    pthread_t t;

    c.l = new_loop(NULL);
    atomic_init(&c.in_callback, 0);
    atomic_init(&c.other, 1);
    test_watchdog(60);
    CHECK(pthread_create(&t, NULL, run_from_other_thread, &c) == 0);
    OK(mio_loop_run_once(c.l, &(mio_handler){ .tick = wait_for_other }, &c, 0));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ(atomic_load(&c.other), MIO_EBUSY);
    mio_loop_free(c.l);
}

/* ---- signals, which Windows lacks ---- */

#ifndef _WIN32
POSIX_TEST(interrupted_when_a_signal_cuts_the_wait)
{
    mio_loop *l = new_loop(NULL);
    struct rec r = { .stop_on = 0 };
    struct test_signaller s;
    int ticks = 0;

    test_signals_start(&s, SIGUSR1);
    while (r.interrupted == 0 && ticks++ < 500)
        OK(mio_loop_run_once(l, &recorder, &r, 10 * MIO_SEC));
    test_signals_stop(&s);
    CHECK_EQ(r.interrupted, 1);
    CHECK_EQ(r.ticks, ticks);
    CHECK(r.log[r.nlog - 2] == 'I' && r.log[r.nlog - 1] == 'K');
    mio_loop_free(l);
}

POSIX_TEST(shutdown_from_interrupted)
{
    struct test_signaller s;
    test_signals_start(&s, SIGUSR1);
    shutdown_from('I');
    test_signals_stop(&s);
}
#endif

/* ---- allocation ---- */

TEST(ticks_allocate_nothing)
{
    mio_loop *l;
    struct rec r = { .stop_on = 0 };
    mio_sender *s;
    mio_fd sv[2];
    long in_ticks = 0, before;
    int i;

    test_count_allocations();
    l = new_loop(NULL);
    OK(mio_socketpair(sv));
    OK(mio_register(mio_loop_poll(l), sv[0], 1, MIO_READABLE));
    OK(mio_loop_channel(l, &s));
    for (i = 0; i < 50; i++) {
        CHECK_EQ(mio_write(sv[1], "x", 1), 1);
        send_ok(s, NULL);
        send_ok(s, NULL);
        OK(mio_loop_timeout(l, NULL, 0, NULL));
        OK(mio_loop_timeout(l, NULL, 1 * MIO_MSEC, NULL));
        before = test_allocations();
        OK(mio_loop_run_once(l, &recorder, &r, 2 * MIO_MSEC));
        in_ticks += test_allocations() - before;
    }
    before = test_allocations();
    while (r.timeouts < 100)
        OK(mio_loop_run_once(l, &recorder, &r, -1));
    in_ticks += test_allocations() - before;
    CHECK(test_allocations() > 0);      /* the counter does count */
    CHECK_EQ(in_ticks, 0);
    CHECK(r.ready >= 1 && r.notify == 100 && r.timeouts == 100);
    mio_sender_free(s);
    mio_close(sv[0]);
    mio_close(sv[1]);
    mio_loop_free(l);
}
