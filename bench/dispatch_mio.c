/* dispatch on libmio.  timers=0: the Poll API (backend=epoll|poll|uring,
 * trigger=edge|level|oneshot), the pair's index as token; a oneshot
 * registration is re-armed with mio_reregister after each event, as a
 * server handing connections to workers would.  timers=1: the event loop,
 * whose ready callback re-arms the pair's timeout (mio_loop_reset_timeout,
 * as libev's ev_timer_again). */
#include "driver.h"
#include "mio.h"

#include <stdlib.h>
#include <string.h>

#define EVENTS 1024

struct ctx {
    struct dispatch *d;
    mio_poll *poll;             /* the loop's under timers=1 */
    mio_loop *loop;
    mio_timeout *timeouts;
    uint32_t interest;
};

static void *init(struct dispatch *d)
{
    struct ctx *c = calloc(1, sizeof *c);
    int err;

    if (c == NULL)
        bench_die("out of memory", 0);
    c->d = d;
    c->interest = MIO_READABLE | (d->o->level ? MIO_LEVEL : MIO_EDGE) |
                  (d->o->oneshot ? MIO_ONESHOT : 0);
    if (d->o->timers) {
        mio_loop_config cfg;
        mio_loop_config_default(&cfg);
        cfg.backend = d->o->backend;
        cfg.timer_capacity = (size_t)d->o->n + 16;
        cfg.events_capacity = EVENTS;
        err = mio_loop_new(&cfg, &c->loop);
        if (err < 0)
            bench_die("mio_loop_new", err);
        c->poll = mio_loop_poll(c->loop);
        c->timeouts = calloc((size_t)d->o->n, sizeof *c->timeouts);
        if (c->timeouts == NULL)
            bench_die("out of memory", 0);
    } else {
        err = mio_poll_new_backend(d->o->backend, &c->poll);
        if (err < 0)
            bench_die("mio_poll_new_backend", err);
    }
    return c;
}

static uint64_t timeout_ns(void)
{
    return (uint64_t)(dispatch_timeout_s() * 1e9);
}

static void setup(void *arg, int first)
{
    struct ctx *c = arg;
    long i;
    int err;

    for (i = 0; i < c->d->o->n; i++) {
        int fd = c->d->fds[2 * i];
        if (!first) {
            mio_deregister(c->poll, fd);
            if (c->loop)
                mio_loop_clear_timeout(c->loop, c->timeouts[i]);
        }
        err = mio_register(c->poll, fd, (mio_token)i, c->interest);
        if (err < 0)
            bench_die("mio_register", err);
        if (c->loop) {
            err = mio_loop_timeout(c->loop, NULL, timeout_ns(), &c->timeouts[i]);
            if (err < 0)
                bench_die("mio_loop_timeout", err);
        }
    }
}

static void ready(mio_loop *l, void *arg, mio_token token, uint32_t readiness)
{
    struct ctx *c = arg;
    (void)readiness;
    dispatch_readable(c->d, (long)token);
    if (!mio_loop_reset_timeout(l, c->timeouts[token], timeout_ns()))
        bench_die("mio_loop_reset_timeout", 0);
}

static void run(void *arg)
{
    struct ctx *c = arg;

    if (c->loop) {
        static const mio_handler h = { ready, NULL, NULL, NULL, NULL };
        while (c->d->count != c->d->fired) {
            int err = mio_loop_run_once(c->loop, &h, c, -1);
            if (err < 0)
                bench_die("mio_loop_run_once", err);
        }
        return;
    }
    while (c->d->count != c->d->fired) {
        mio_event events[EVENTS];
        int i, n = mio_poll_wait(c->poll, events, EVENTS, -1);
        if (n < 0 && n != MIO_EINTR)
            bench_die("mio_poll_wait", n);
        for (i = 0; i < n; i++) {
            long idx = (long)events[i].token;
            dispatch_readable(c->d, idx);
            if (c->d->o->oneshot) {
                int err = mio_reregister(c->poll, c->d->fds[2 * idx], (mio_token)idx, c->interest);
                if (err < 0)
                    bench_die("mio_reregister", err);
            }
        }
    }
}

/* A wait that returns at once: the uring backend hands the registrations to
 * the kernel here (epoll made them in setup already). */
static void arm(void *arg)
{
    struct ctx *c = arg;
    mio_event events[8];
    int n;

    if (c->loop != NULL) {
        static const mio_handler h = { NULL, NULL, NULL, NULL, NULL };
        n = mio_loop_run_once(c->loop, &h, c, 0);
    } else {
        n = mio_poll_wait(c->poll, events, 8, 0);
    }
    if (n != 0)
        bench_die("arming wait", n < 0 ? n : 0);
}

static void fini(void *arg)
{
    struct ctx *c = arg;
    if (c->loop)
        mio_loop_free(c->loop);
    else
        mio_poll_free(c->poll);
    free(c->timeouts);
    free(c);
}

int main(int argc, char **argv)
{
    static const struct dispatch_impl impl = { "mio", 1, init, setup, run, fini, arm };
    return dispatch_main(argc, argv, &impl);
}
