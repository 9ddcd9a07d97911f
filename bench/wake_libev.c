/* wake on libev: an ev_async per loop, ev_async_send from the other thread. */
#include "driver.h"

#include <ev.h>
#include <stdlib.h>

struct side {
    ev_async async;             /* first: the callback finds its side */
    struct ev_loop *loop;
    unsigned long fired, seen;  /* callbacks, and those a wait consumed */
};

static void cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop; (void)revents;
    ((struct side *)a)->fired++;
}

static void *side_new(void)
{
    struct side *s = calloc(1, sizeof *s);
    if (s == NULL || (s->loop = ev_loop_new(EVBACKEND_EPOLL)) == NULL)
        bench_die("ev_loop_new", 0);
    ev_async_init(&s->async, cb);
    ev_async_start(s->loop, &s->async);
    return s;
}

static void wake(void *arg)
{
    struct side *s = arg;
    ev_async_send(s->loop, &s->async);
}

/* An iteration may end without the callback (a wake-up consumed earlier). */
static void wait_side(void *arg)
{
    struct side *s = arg;
    while (s->fired == s->seen)
        ev_run(s->loop, EVRUN_ONCE);
    s->seen = s->fired;
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "libev", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
