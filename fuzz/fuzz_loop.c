/* libFuzzer target: the event loop against a model of its timers, channel
 * and registrations.
 *
 * This target brings its own mio__now_ns (the Makefile leaves src/time.c
 * out): a virtual clock that only the input moves, so each input runs the
 * same way every time and a model can say exactly which timeouts fire in
 * which tick, with no sleep.  The first three bytes choose the backend, the
 * timer's tick and wheel size, its capacity, the channel's capacity and
 * messages per tick; then each three bytes are one operation:
 *   - set a timeout (delays of zero, under a tick, a few ticks, and beyond a
 *     turn of the wheel) with an action for its callback: none, clear
 *     another timeout, set a new one, or try to run the loop from inside it;
 *   - clear a timeout (pending, fired, cleared or never valid);
 *   - move the clock forward;
 *   - run one tick (timeout 0) and check it;
 *   - send a message (from this thread), some of whose callbacks send again;
 *   - register, deregister, write to, read from, close and reopen socket
 *     pairs on the loop's poll.
 * What every tick must do:
 *   - fire exactly the timeouts pending when it began that are due (due at
 *     the first tick boundary at or after set time + delay, at once for a
 *     delay of 0: never early), earliest deadline first, those of one tick
 *     in the order they were set; never one cleared (clear returns true
 *     exactly while it is pending) and never one set during the tick;
 *   - MIO_ENOSPC exactly when timer_capacity timeouts are pending;
 *   - deliver min(queued, messages_per_tick) messages, in send order;
 *     MIO_EAGAIN exactly when notify_capacity are queued;
 *   - report sockets as fuzz_poll checks it (token, readable only with
 *     data or hang-up, level always, edge after every rise, oneshot once);
 *   - MIO_EDEADLK from run_once inside a callback. */
#include "mio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCES 3
#define MAXT 64             /* timeouts one input may set */
#define MAXM 256            /* messages one input may send */
#define MAX_PENDING 2048
#define NO_INDEX (-1)

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_loop: %s (line %d, op %zu)\n", #cond,       \
                    __LINE__, op_index);                                      \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* ---- the virtual clock ---------------------------------------------------- */

static int64_t fake_now;

int64_t mio__now_ns(void);
int64_t mio__now_ns(void)
{
    return fake_now;
}

/* ---- the model ------------------------------------------------------------ */

enum { T_UNUSED, T_PENDING, T_FIRED, T_CLEARED };
enum { ACT_NONE, ACT_CLEAR, ACT_SET, ACT_REENTER };

struct timeout {
    int state;
    mio_timeout handle;
    uint64_t deadline;      /* in ticks */
    unsigned seq;           /* set order */
    unsigned tick_set;      /* the tick during which it was set (0: outside) */
    int action, victim;
    uint64_t next_delay;
};

struct source {
    mio_fd fd, peer;
    bool registered;
    mio_token token;
    uint32_t interest;
    size_t pending;
    bool peer_gone, armed, fired;
    uint32_t seen;          /* flags reported in the current tick */
    bool reported;
};

struct state {
    mio_loop *loop;
    mio_sender *sender;
    uint64_t tick_ns;
    size_t timer_capacity, notify_capacity, per_tick;
    struct timeout t[MAXT];
    int nt;
    unsigned seq;
    size_t timers_pending;
    unsigned tick;          /* the tick running now, 0 between ticks */
    unsigned ticks;
    /* channel: message ids queued, in order */
    int queue[MAXM * 2];
    size_t qhead, qtail;
    int nm;
    bool resend[MAXM * 2];
    size_t delivered_this_tick;
    struct source src[SOURCES];
    unsigned generation;
};

static size_t op_index;

static uint64_t ticks_floor(const struct state *s, uint64_t ns)
{
    return ns / s->tick_ns;
}

static uint64_t deadline_of(const struct state *s, uint64_t delay)
{
    uint64_t now = (uint64_t)fake_now;
    if (delay == 0)
        return ticks_floor(s, now);
    return (now + delay + s->tick_ns - 1) / s->tick_ns;
}

static void set_timeout(struct state *s, uint64_t delay, int action, int victim,
                        uint64_t next_delay)
{
    struct timeout *t;
    mio_timeout h = 0;
    int err;

    if (s->nt == MAXT)
        return;
    t = &s->t[s->nt];
    err = mio_loop_timeout(s->loop, t, delay, &h);
    if (s->timers_pending == s->timer_capacity) {
        REQUIRE(err == MIO_ENOSPC);
        return;
    }
    REQUIRE(err == 0);
    REQUIRE(h != 0);
    if (getenv("FUZZ_TRACE") != NULL)
        fprintf(stderr, "set %d: delay %llu, deadline %llu, now %llu, tick %u\n", s->nt,
                (unsigned long long)delay, (unsigned long long)deadline_of(s, delay),
                (unsigned long long)ticks_floor(s, (uint64_t)fake_now), s->tick);
    s->nt++;
    t->state = T_PENDING;
    t->handle = h;
    t->deadline = deadline_of(s, delay);
    t->seq = s->seq++;
    t->tick_set = s->tick;
    t->action = action;
    t->victim = victim;
    t->next_delay = next_delay;
    s->timers_pending++;
}

static void clear_timeout(struct state *s, int i)
{
    struct timeout *t = &s->t[i];
    bool was = mio_loop_clear_timeout(s->loop, t->handle);
    REQUIRE(was == (t->state == T_PENDING));
    if (was) {
        t->state = T_CLEARED;
        s->timers_pending--;
    }
}

/* Due in the running tick: pending when it began, and its deadline reached. */
static bool due(const struct state *s, const struct timeout *t)
{
    return t->state == T_PENDING && t->tick_set != s->tick &&
           t->deadline <= ticks_floor(s, (uint64_t)fake_now);
}

static const mio_handler handler;

static void on_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct state *s = ctx;
    struct timeout *t = arg;
    int i;

    REQUIRE(l == s->loop);
    REQUIRE(t >= s->t && t < s->t + s->nt);
    if (getenv("FUZZ_TRACE") != NULL)
        fprintf(stderr, "fire %d: deadline %llu, now %llu, set in tick %u, tick %u\n",
                (int)(t - s->t), (unsigned long long)t->deadline,
                (unsigned long long)ticks_floor(s, (uint64_t)fake_now), t->tick_set, s->tick);
    REQUIRE(due(s, t));     /* not early, not cleared, not fired, not new */
    /* Earliest deadline first; one deadline in set order. */
    for (i = 0; i < s->nt; i++) {
        const struct timeout *o = &s->t[i];
        if (o != t && due(s, o))
            REQUIRE(o->deadline > t->deadline ||
                    (o->deadline == t->deadline && o->seq > t->seq));
    }
    t->state = T_FIRED;
    s->timers_pending--;
    switch (t->action) {
    case ACT_CLEAR:
        if (t->victim < s->nt)
            clear_timeout(s, t->victim);
        break;
    case ACT_SET:
        set_timeout(s, t->next_delay, ACT_NONE, 0, 0);
        break;
    case ACT_REENTER:
        REQUIRE(mio_loop_run_once(l, &handler, s, 0) == MIO_EDEADLK);
        break;
    }
}

static void send_message(struct state *s, bool resend)
{
    int err;
    if (s->nm == MAXM * 2)
        return;
    err = mio_sender_send(s->sender, (void *)(intptr_t)s->nm);
    if (s->qtail - s->qhead == s->notify_capacity) {
        REQUIRE(err == MIO_EAGAIN);
        return;
    }
    REQUIRE(err == 0);
    s->resend[s->nm] = resend;
    s->queue[s->qtail++ % (MAXM * 2)] = s->nm++;
}

static void on_notify(mio_loop *l, void *ctx, void *msg)
{
    struct state *s = ctx;
    int id = (int)(intptr_t)msg;

    REQUIRE(l == s->loop);
    REQUIRE(s->qtail > s->qhead);
    REQUIRE(id == s->queue[s->qhead % (MAXM * 2)]);     /* in send order */
    s->qhead++;
    s->delivered_this_tick++;
    REQUIRE(s->delivered_this_tick <= s->per_tick);
    /* A send from the loop's own callback, once per chain. */
    if (s->resend[id] && s->nm < MAXM)
        send_message(s, false);
}

static bool readable(const struct source *c)
{
    return c->pending > 0 || c->peer_gone;
}

static void on_ready(mio_loop *l, void *ctx, mio_token token, uint32_t flags)
{
    struct state *s = ctx;
    int i;

    REQUIRE(l == s->loop);
    for (i = 0; i < SOURCES; i++)
        if (s->src[i].registered && s->src[i].token == token)
            break;
    REQUIRE(i < SOURCES);
    {
        struct source *c = &s->src[i];
        REQUIRE(!((c->interest & MIO_ONESHOT) && c->fired && !c->reported));
        if (flags & MIO_READABLE)
            REQUIRE(readable(c));
        c->seen |= flags;
        c->reported = true;
    }
}

static const mio_handler handler = {
    .ready = on_ready,
    .notify = on_notify,
    .timeout = on_timeout,
};

static void run_tick(struct state *s)
{
    size_t queued = s->qtail - s->qhead;
    int i;

    for (i = 0; i < SOURCES; i++) {
        s->src[i].seen = 0;
        s->src[i].reported = false;
    }
    s->tick = ++s->ticks;
    s->delivered_this_tick = 0;
    REQUIRE(mio_loop_run_once(s->loop, &handler, s, 0) == 0);
    /* Every timeout due at the start has fired. */
    for (i = 0; i < s->nt; i++)
        REQUIRE(!due(s, &s->t[i]));
    s->tick = 0;
    /* As many messages as were queued, up to the tick's share (those sent
     * from callbacks may fill the rest of it). */
    REQUIRE(s->delivered_this_tick >= (queued < s->per_tick ? queued : s->per_tick));
    REQUIRE(s->delivered_this_tick == s->per_tick || s->qtail == s->qhead);
    for (i = 0; i < SOURCES; i++) {
        struct source *c = &s->src[i];
        bool oneshot_done = (c->interest & MIO_ONESHOT) && c->fired;
        if (!c->registered)
            continue;
        if (!oneshot_done && (c->interest & MIO_READABLE) && readable(c)) {
            if (c->interest & MIO_LEVEL)
                REQUIRE(c->seen & MIO_READABLE);
            else if (c->armed && !c->peer_gone)
                REQUIRE(c->seen & MIO_READABLE);
        }
        if (!oneshot_done && (c->interest & MIO_WRITABLE) && (c->interest & MIO_LEVEL) &&
            !c->peer_gone)
            REQUIRE(c->reported);
        if (c->seen & MIO_READABLE)
            c->armed = false;
        if (c->reported)
            c->fired = true;
    }
}

static void open_pair(struct source *c)
{
    mio_fd sp[2];
    REQUIRE(mio_socketpair(sp) == 0);
    memset(c, 0, sizeof *c);
    c->fd = sp[0];
    c->peer = sp[1];
}

static uint32_t interest_of(uint8_t b)
{
    static const uint32_t dirs[] = { MIO_READABLE, MIO_READABLE, MIO_WRITABLE,
                                     MIO_READABLE | MIO_WRITABLE };
    static const uint32_t modes[] = { MIO_EDGE, MIO_LEVEL, MIO_EDGE | MIO_ONESHOT,
                                      MIO_LEVEL | MIO_ONESHOT };
    return dirs[b & 3] | modes[(b >> 2) & 3];
}

/* Delays from zero to several turns of the wheel, most of them near a
 * tick boundary, where rounding goes wrong if it does. */
static uint64_t delay_of(const struct state *s, uint8_t a, uint8_t b, size_t wheel)
{
    switch (a & 3) {
    case 0: return b < 64 ? 0 : b;                          /* zero or under a tick */
    case 1: { /* around tick boundaries */
        uint64_t d = (uint64_t)(b & 15) * s->tick_ns + (b >> 4);
        return d >= 8 ? d - 8 : d;
    }
    case 2: return (uint64_t)b * s->tick_ns / 4;            /* a few ticks */
    default: return (uint64_t)(b + 1) * s->tick_ns * wheel / 8; /* up to many turns */
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Inputs leave sources undrained on purpose: the debug build's drain check
 * still runs, but its warnings (a write to stderr each) are not wanted. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mio_set_log(NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const backends[] = { "epoll", "poll" };
    static const uint64_t ticks[] = { 1000, 1000000, 333, 4096 };
    static struct state st;
    struct state *s = &st;
    static char buf[MAX_PENDING];
    mio_loop_config cfg = { 0 };
    size_t wheel, at;
    int i;

    if (size < 3)
        return 0;
    memset(s, 0, sizeof *s);
    /* The clock starts anywhere, boundaries included. */
    fake_now = (int64_t)(data[1] & 0x80 ? 1000000000 : 7) * (data[2] | 1);
    s->tick_ns = ticks[data[0] >> 6];
    wheel = (size_t)1 << ((data[0] >> 1) & 7);              /* 1..128 slots */
    s->timer_capacity = 1 + (data[1] & 31);
    s->notify_capacity = 1 + (data[2] & 15);
    s->per_tick = 1 + ((data[2] >> 4) & 7);
    cfg.backend = backends[data[0] & 1];
    cfg.timer_tick_ns = s->tick_ns;
    cfg.timer_wheel_size = wheel;
    cfg.timer_capacity = s->timer_capacity;
    cfg.notify_capacity = s->notify_capacity;
    cfg.messages_per_tick = s->per_tick;
    cfg.events_capacity = 64;
    if (mio_loop_new(&cfg, &s->loop) != 0)
        return 0;
    REQUIRE(mio_loop_channel(s->loop, &s->sender) == 0);
    for (i = 0; i < SOURCES; i++)
        open_pair(&s->src[i]);
    op_index = 0;
    for (at = 3; at + 3 <= size; at += 3, op_index++) {
        uint8_t op = data[at] % 14, a = data[at + 1], b = data[at + 2];
        struct source *c = &s->src[a % SOURCES];
        mio_poll *p = mio_loop_poll(s->loop);
        ssize_t n;
        int err;

        switch (op) {
        case 0: /* set a timeout */
        case 1:
            set_timeout(s, delay_of(s, a, b, wheel), (a >> 2) & 3, (a >> 4) % MAXT,
                        delay_of(s, b, a, wheel));
            break;
        case 2: /* clear one */
            if (s->nt > 0)
                clear_timeout(s, (int)(((unsigned)a << 8 | b) % (unsigned)s->nt));
            break;
        case 3: /* a handle never given out: generation 0, or 0 itself */
            REQUIRE(!mio_loop_clear_timeout(s->loop, (mio_timeout)a << 8 | b));
            break;
        case 4: /* time passes */
            fake_now += (int64_t)delay_of(s, a, b, wheel);
            break;
        case 5: /* a tick */
        case 6:
            run_tick(s);
            break;
        case 7: /* a message; some make their callback send one more */
            send_message(s, a & 1);
            break;
        case 8: { /* register */
            mio_token t = (mio_token)((a % SOURCES) * 100 + 1 + (++s->generation % 90));
            err = mio_register(p, c->fd, t, interest_of(b));
            if (c->registered) {
                REQUIRE(err == MIO_EEXIST);
                break;
            }
            REQUIRE(err == 0);
            c->registered = true;
            c->token = t;
            c->interest = interest_of(b);
            c->armed = true;
            c->fired = false;
            break;
        }
        case 9: /* deregister */
            err = mio_deregister(p, c->fd);
            REQUIRE(err == (c->registered ? 0 : MIO_ENOENT));
            c->registered = false;
            break;
        case 10: /* the peer writes */
            if (c->peer_gone || c->pending + b + 1 > MAX_PENDING)
                break;
            memset(buf, b, (size_t)b + 1);
            REQUIRE(mio_write(c->peer, buf, (size_t)b + 1) == (ssize_t)b + 1);
            c->pending += (size_t)b + 1;
            break;
        case 11: /* read */
            n = mio_read(c->fd, buf, (size_t)b + 1);
            if (c->pending > 0) {
                size_t want = c->pending < (size_t)b + 1 ? c->pending : (size_t)b + 1;
                REQUIRE(n == (ssize_t)want);
                c->pending -= want;
            } else if (c->peer_gone) {
                REQUIRE(n == 0);
            } else {
                REQUIRE(n == MIO_EAGAIN);
                c->armed = true;
            }
            break;
        case 12: /* the peer goes away */
            if (!c->peer_gone) {
                REQUIRE(mio_close(c->peer) == 0);
                c->peer_gone = true;
                c->armed = true;
            }
            break;
        case 13: /* close without deregistering, and a new pair */
            REQUIRE(mio_close(c->fd) == 0);
            if (!c->peer_gone)
                REQUIRE(mio_close(c->peer) == 0);
            open_pair(c);
            break;
        }
    }
    /* Past every deadline, twice over (callbacks of the first round set
     * more): everything fires. */
    for (i = 0; i < 3; i++) {
        fake_now += (int64_t)(s->tick_ns * wheel * 64 + 1000000);
        run_tick(s);
    }
    for (i = 0; i < s->nt; i++)
        REQUIRE(s->t[i].state != T_PENDING);
    for (i = 0; i < SOURCES; i++) {
        if (s->src[i].registered)
            REQUIRE(mio_deregister(mio_loop_poll(s->loop), s->src[i].fd) == 0);
        mio_close(s->src[i].fd);
        if (!s->src[i].peer_gone)
            mio_close(s->src[i].peer);
    }
    mio_sender_free(s->sender);
    mio_loop_free(s->loop);
    return 0;
}
