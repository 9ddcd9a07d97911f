/* dispatch on libuv: a uv_poll_t per read end, so the callback makes the
 * same read and write calls as every other program (a uv_pipe_t would read
 * through libuv's own 64 KiB buffers); timers=1 adds a uv_timer_t per fd,
 * restarted by the callback. */
#include "driver.h"

#include <stdlib.h>
#include <uv.h>

struct watcher {
    uv_poll_t poll;
    uv_timer_t timer;
    long idx;
};

struct ctx {
    struct dispatch *d;
    uv_loop_t loop;
    struct watcher *w;
};

static struct ctx *self;

static uint64_t timeout_ms(void)
{
    return (uint64_t)(dispatch_timeout_s() * 1e3);
}

static void timer_cb(uv_timer_t *t)
{
    (void)t;
}

static void read_cb(uv_poll_t *p, int status, int events)
{
    struct watcher *w = (struct watcher *)p;
    (void)status; (void)events;
    dispatch_readable(self->d, w->idx);
    if (self->d->o->timers)
        uv_timer_start(&w->timer, timer_cb, timeout_ms(), 0);
}

static void *init(struct dispatch *d)
{
    struct ctx *c = calloc(1, sizeof *c);
    long i;

    if (c == NULL || (c->w = calloc((size_t)d->o->n, sizeof *c->w)) == NULL)
        bench_die("out of memory", 0);
    c->d = d;
    d->drain = 0;   /* level-triggered */
    if (uv_loop_init(&c->loop) < 0)
        bench_die("uv_loop_init", 0);
    for (i = 0; i < d->o->n; i++) {
        c->w[i].idx = i;
        if (uv_poll_init(&c->loop, &c->w[i].poll, d->fds[2 * i]) < 0 ||
            uv_timer_init(&c->loop, &c->w[i].timer) < 0)
            bench_die("uv_poll_init", 0);
    }
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
            uv_poll_stop(&w->poll);
            if (c->d->o->timers)
                uv_timer_stop(&w->timer);
        }
        uv_poll_start(&w->poll, UV_READABLE, read_cb);
        if (c->d->o->timers)
            uv_timer_start(&w->timer, timer_cb, timeout_ms(), 0);
    }
}

static void run(void *arg)
{
    struct ctx *c = arg;
    while (c->d->count != c->d->fired)
        uv_run(&c->loop, UV_RUN_ONCE);
}

static void fini(void *arg)
{
    struct ctx *c = arg;
    long i;
    for (i = 0; i < c->d->o->n; i++) {
        uv_close((uv_handle_t *)&c->w[i].poll, NULL);
        uv_close((uv_handle_t *)&c->w[i].timer, NULL);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c->w);
    free(c);
}

int main(int argc, char **argv)
{
    static const struct dispatch_impl impl = { "libuv", 1, init, setup, run, fini, NULL };
    return dispatch_main(argc, argv, &impl);
}
