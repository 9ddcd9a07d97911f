/* The event loop (mio 0.6's EventLoop): a poll, a timer wheel and a channel
 * driven by one thread, which calls the handler's callbacks once per tick.
 *
 * The loop wakes itself for its channel with mio__poll_wake(), not with a
 * waker: a waker reports a token, and every token but MIO_TOKEN_RESERVED
 * belongs to the caller (the backends keep that one for themselves), so any
 * token the loop picked could collide with one the caller registers.  Nothing
 * of the loop's own ever reaches `ready`, and it costs no descriptor.
 *
 * Everything a tick needs is allocated by mio_loop_new: a tick allocates
 * nothing.
 *
 * A loop of a group (group.c) runs the same ticks on a thread of the
 * group's, which calls mio__loop_tick; the group's own tokens, messages and
 * timeouts go to its hooks instead of the handler. */
#include "loop.h"
#include "poll_hooks.h"
#include "timer.h"

#ifdef _MSC_VER
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

/* The loop whose callbacks this thread is in, innermost first through
 * mio_loop.outer (a callback may run another loop): tells a run nested in
 * a loop's own callback from one on another thread. */
static THREAD_LOCAL mio_loop *dispatching;

void mio_loop_config_default(mio_loop_config *c)
{
    if (c == NULL)
        return;
    c->notify_capacity = 4096;
    c->messages_per_tick = 256;
    c->timer_wheel_size = 1024;
    c->timer_capacity = 65536;
    c->events_capacity = 1024;
    c->timer_tick_ns = (uint64_t)MIO_MSEC;
    c->backend = NULL;
}

/* A zero field of the caller's config takes the default, so `{0}` plus the
 * fields one cares about is a complete config. */
static void merge_config(mio_loop_config *c, const mio_loop_config *user)
{
    mio_loop_config_default(c);
    if (user == NULL)
        return;
    if (user->notify_capacity != 0)
        c->notify_capacity = user->notify_capacity;
    if (user->messages_per_tick != 0)
        c->messages_per_tick = user->messages_per_tick;
    if (user->timer_wheel_size != 0)
        c->timer_wheel_size = user->timer_wheel_size;
    if (user->timer_capacity != 0)
        c->timer_capacity = user->timer_capacity;
    if (user->events_capacity != 0)
        c->events_capacity = user->events_capacity;
    if (user->timer_tick_ns != 0)
        c->timer_tick_ns = user->timer_tick_ns;
    c->backend = user->backend;
}

int mio_loop_new(const mio_loop_config *config, mio_loop **out)
{
    mio_loop_config c;
    mio_loop *l;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = NULL;
    merge_config(&c, config);
    l = mio__calloc(1, sizeof *l);
    if (l == NULL)
        return MIO_ENOMEM;
    l->events_capacity = c.events_capacity;
    l->messages_per_tick = c.messages_per_tick;
    l->running = true;
    err = mio_poll_new_backend(c.backend, &l->poll);
    if (err == 0)
        err = mio_timer_new(c.timer_tick_ns, c.timer_wheel_size, c.timer_capacity, &l->timer);
    if (err == 0)
        mio__timer_defer(l->timer, false);  /* between ticks nothing reads the clock soon */
    if (err == 0)
        err = mio__channel_new(c.notify_capacity, l->poll, &l->chan);
    if (err == 0) {
        l->events = mio__calloc(c.events_capacity, sizeof *l->events);
        if (l->events == NULL)
            err = MIO_ENOMEM;
    }
    if (err < 0) {
        mio_loop_free(l);
        return err;
    }
    MIO_TRACE(MIO_LOG_DEBUG, "loop %p: new, backend %s", (void *)l, mio_poll_backend(l->poll));
    *out = l;
    return 0;
}

void mio_loop_free(mio_loop *l)
{
    if (l == NULL || l->hooks != NULL)
        return;     /* a group's loop goes with its group */
    mio__loop_free(l);
}

void mio__loop_free(mio_loop *l)
{
    /* The channel first: once closed, no sender touches the poll. */
    if (l->chan != NULL)
        mio__channel_close(l->chan);
    mio_poll_free(l->poll);
    mio_timer_free(l->timer);
    mio__free(l->events);
    mio__free(l);
}

mio_poll *mio_loop_poll(mio_loop *l)
{
    return l != NULL ? l->poll : NULL;
}

/* One tick.  The wait is bounded by the next timer deadline, and does not
 * block at all while messages are queued (the previous tick may have left
 * some behind, at most messages_per_tick are taken each time). */
int mio__loop_tick(mio_loop *l, const mio_handler *h, void *ctx, int64_t timeout_ns)
{
    int64_t start = mio__now_ns();
    int64_t next = mio__timer_begin(l->timer, start);
    bool interrupted = false;
    int64_t now;
    mio_fd fd;
    size_t i;
    void *arg;
    int n, kind;

    if (next >= 0 && (timeout_ns < 0 || next < timeout_ns))
        timeout_ns = next;
    if (timeout_ns != 0 && mio__channel_sleep(l->chan))
        timeout_ns = 0;
    n = mio__poll_wait_at(l->poll, l->events, l->events_capacity, timeout_ns, start);
    mio__channel_awake(l->chan);
    if (n == MIO_EINTR) {
        interrupted = true;
        n = 0;
    } else if (n < 0) {
        mio__timer_defer(l->timer, false);
        return n;
    }

    l->in_tick = true;
    l->outer = dispatching;
    dispatching = l;
    /* A group's tokens are the highest: one comparison tells them apart. */
    l->nevents = (size_t)n;
    for (i = 0; i < (size_t)n; i++) {
        mio_token token = l->events[i].token;
        l->dispatching = i;
        if (MIO_UNLIKELY(token >= MIO_GROUP_TOKEN_FIRST) && l->hooks != NULL)
            l->hooks->ready(l, ctx, token, l->events[i].flags);
        else if (h->ready != NULL)
            h->ready(l, ctx, token, l->events[i].flags);
    }
    for (i = 0; i < l->messages_per_tick &&
                (kind = mio__channel_recv(l->chan, &arg, &fd)) != MIO__MSG_NONE; i++) {
        if (MIO_LIKELY(kind == MIO__MSG_USER)) {
            if (h->notify != NULL)
                h->notify(l, ctx, arg);
        } else if (l->hooks != NULL) {
            l->hooks->message(l, ctx, kind, arg, fd);
        }
    }
    l->messages = i;        /* and i counts on through the timeouts, for the trace */
    /* One clock reading for the deadlines of the timeouts set so far in this
     * tick and for its expiries, and only timeouts set before these began:
     * one that a callback sets (even with delay 0, due at
     * once) fires in a later tick, so a callback that keeps re-arming cannot
     * starve I/O.  (Counting the timeouts pending at the start was not
     * enough: once a callback cleared one or an earlier one was not due, a
     * new one took its place in the count.) */
    now = mio__now_ns();
    if (mio__timer_new_round(l->timer, now))
        for (; mio__timer_poll_old_at(l->timer, now, &arg); i++)
            if ((l->hooks == NULL || !l->hooks->timeout(l, ctx, arg)) && h->timeout != NULL)
                h->timeout(l, ctx, arg);
    if (MIO_TRACING(MIO_LOG_TRACE))
        mio__log_tick(l, (size_t)n, i - l->messages, l->messages, interrupted);
    if (interrupted && h->interrupted != NULL)
        h->interrupted(l, ctx);
    if (l->hooks != NULL)
        l->hooks->tick(l, ctx);
    if (h->tick != NULL)
        h->tick(l, ctx);
    dispatching = l->outer;
    l->in_tick = false;
    return 0;
}

/* Why l cannot run now: this thread is inside one of l's callbacks (it
 * would wait for itself), or another thread runs l. */
static int busy(const mio_loop *l)
{
    const mio_loop *d;
    for (d = dispatching; d != NULL; d = d->outer)
        if (d == l)
            return MIO_EDEADLK;
    return MIO_EBUSY;
}

int mio_loop_run_once(mio_loop *l, const mio_handler *h, void *ctx, int64_t timeout_ns)
{
    if (l == NULL || h == NULL || l->hooks != NULL)
        return MIO_EINVAL;
    if (l->in_tick)
        return busy(l);
    return mio__loop_tick(l, h, ctx, timeout_ns);
}

int mio_loop_run(mio_loop *l, const mio_handler *h, void *ctx)
{
    int err = 0;

    if (l == NULL || h == NULL || l->hooks != NULL)
        return MIO_EINVAL;
    if (l->in_tick)
        return busy(l);
    l->running = true;
    while (l->running && err == 0)
        err = mio__loop_tick(l, h, ctx, -1);
    return err;
}

void mio_loop_shutdown(mio_loop *l)
{
    if (l == NULL)
        return;
    l->running = false;
    if (l->hooks != NULL)
        l->hooks->shutdown(l);
}

bool mio_loop_is_running(const mio_loop *l)
{
    return l != NULL && l->running && (l->hooks == NULL || !l->hooks->stopping(l));
}

/* Set from a ready or notify callback, the timeout's delay counts from the
 * loop's clock reading after them; set elsewhere, from a reading taken at
 * once (see mio__timer_begin). */
int mio_loop_timeout(mio_loop *l, void *arg, uint64_t delay_ns, mio_timeout *out)
{
    if (l == NULL) {
        if (out != NULL)
            *out = 0;
        return MIO_EINVAL;
    }
    return mio__timer_set(l->timer, delay_ns, arg, out);
}

bool mio_loop_reset_timeout(mio_loop *l, mio_timeout timeout, uint64_t delay_ns)
{
    return l != NULL && mio_timer_reset(l->timer, timeout, delay_ns);
}

int mio_loop_timeout_in(mio_loop *l, uint64_t delay_ns, void *arg, mio_timeout *out)
{
    return mio_loop_timeout(l, arg, delay_ns, out);
}

int mio_loop_timeout_at(mio_loop *l, int64_t deadline_ns, void *arg, mio_timeout *out)
{
    mio_timeout t = 0;
    int err = l != NULL ? mio_timer_set_at(l->timer, deadline_ns, arg, &t) : MIO_EINVAL;

    if (out != NULL)
        *out = err == 0 ? t : 0;
    return err;
}

bool mio_loop_clear_timeout(mio_loop *l, mio_timeout timeout)
{
    return l != NULL && mio_timer_cancel(l->timer, timeout);
}

int mio_loop_channel(mio_loop *l, mio_sender **out)
{
    if (out != NULL)
        *out = NULL;
    if (l == NULL || out == NULL)
        return MIO_EINVAL;
    return mio__channel_sender(l->chan, out);
}
