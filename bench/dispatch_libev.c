/* dispatch on libev: an ev_io per read end; timers=1 adds an ev_timer per fd
 * re-armed with ev_timer_again, libev's idiom for an idle timeout. */
#include "driver.h"

#include <ev.h>
#include <stdlib.h>

struct watcher {
    ev_io io;
    ev_timer timer;
    long idx;
};

struct ctx {
    struct dispatch *d;
    struct ev_loop *loop;
    struct watcher *w;
};

static struct ctx *self;

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop; (void)t; (void)revents;
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct watcher *w = (struct watcher *)io;
    (void)revents;
    dispatch_readable(self->d, w->idx);
    if (self->d->o->timers) {
        w->timer.repeat = dispatch_timeout_s();
        ev_timer_again(loop, &w->timer);
    }
}

static void *init(struct dispatch *d)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (c == NULL || (c->w = calloc((size_t)d->o->n, sizeof *c->w)) == NULL)
        bench_die("out of memory", 0);
    c->d = d;
    d->drain = 0;   /* level-triggered */
    c->loop = ev_default_loop(EVBACKEND_EPOLL);
    if (c->loop == NULL)
        bench_die("ev_default_loop", 0);
    self = c;
    return c;
}

static void setup(void *arg, int first)
{
    struct ctx *c = arg;
    long i;

    for (i = 0; i < c->d->o->n; i++) {
        struct watcher *w = &c->w[i];
        if (!first) {
            ev_io_stop(c->loop, &w->io);
            if (c->d->o->timers)
                ev_timer_stop(c->loop, &w->timer);
        }
        w->idx = i;
        ev_io_init(&w->io, read_cb, c->d->fds[2 * i], EV_READ);
        ev_io_start(c->loop, &w->io);
        if (c->d->o->timers) {
            ev_timer_init(&w->timer, timer_cb, 0., dispatch_timeout_s());
            ev_timer_again(c->loop, &w->timer);
        }
    }
}

static void run(void *arg)
{
    struct ctx *c = arg;
    while (c->d->count != c->d->fired)
        ev_run(c->loop, EVRUN_ONCE);
}

static void fini(void *arg)
{
    struct ctx *c = arg;
    long i;
    for (i = 0; i < c->d->o->n; i++) {
        ev_io_stop(c->loop, &c->w[i].io);
        ev_timer_stop(c->loop, &c->w[i].timer);
    }
    free(c->w);
    free(c);
}

int main(int argc, char **argv)
{
    static const struct dispatch_impl impl = { "libev", 1, init, setup, run, fini, NULL };
    return dispatch_main(argc, argv, &impl);
}
