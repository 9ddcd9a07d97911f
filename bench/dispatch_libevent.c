/* dispatch on libevent 2: a persistent EV_READ event per read end, as in
 * libevent's own test/bench.c; timers=1 adds each event with a timeout, and
 * the callback adds it again to re-arm that timeout. */
#include "driver.h"

#include <event2/event.h>
#include <stdlib.h>

struct ctx {
    struct dispatch *d;
    struct event_base *base;
    struct event **ev;
};

static struct ctx *self;

static struct timeval timeout_tv(void)
{
    double s = dispatch_timeout_s();
    struct timeval tv;
    tv.tv_sec = (long)s;
    tv.tv_usec = (long)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    long idx = (long)(intptr_t)arg;
    (void)fd; (void)what;
    dispatch_readable(self->d, idx);
    if (self->d->o->timers) {
        struct timeval tv = timeout_tv();
        event_add(self->ev[idx], &tv);
    }
}

static void *init(struct dispatch *d)
{
    struct ctx *c = calloc(1, sizeof *c);
    long i;

    if (c == NULL || (c->ev = calloc((size_t)d->o->n, sizeof *c->ev)) == NULL)
        bench_die("out of memory", 0);
    c->d = d;
    d->drain = 0;   /* level-triggered */
    c->base = event_base_new();
    if (c->base == NULL)
        bench_die("event_base_new", 0);
    for (i = 0; i < d->o->n; i++) {
        c->ev[i] = event_new(c->base, d->fds[2 * i], EV_READ | EV_PERSIST, read_cb,
                             (void *)(intptr_t)i);
        if (c->ev[i] == NULL)
            bench_die("event_new", 0);
    }
    self = c;
    return c;
}

static void setup(void *arg, int first)
{
    struct ctx *c = arg;
    long i;

    for (i = 0; i < c->d->o->n; i++) {
        if (!first)
            event_del(c->ev[i]);
        if (c->d->o->timers) {
            struct timeval tv = timeout_tv();
            event_add(c->ev[i], &tv);
        } else {
            event_add(c->ev[i], NULL);
        }
    }
}

static void run(void *arg)
{
    struct ctx *c = arg;
    while (c->d->count != c->d->fired)
        event_base_loop(c->base, EVLOOP_ONCE);
}

static void fini(void *arg)
{
    struct ctx *c = arg;
    long i;
    for (i = 0; i < c->d->o->n; i++)
        event_free(c->ev[i]);
    event_base_free(c->base);
    free(c->ev);
    free(c);
}

int main(int argc, char **argv)
{
    static const struct dispatch_impl impl = { "libevent", 1, init, setup, run, fini, NULL };
    return dispatch_main(argc, argv, &impl);
}
