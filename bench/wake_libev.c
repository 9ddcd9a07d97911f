/* wake on libev: an ev_async per loop, ev_async_send from the other thread. */
#include "driver.h"

#include <ev.h>
#include <stdlib.h>

struct side {
    struct ev_loop *loop;
    ev_async async;
};

static void cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop; (void)a; (void)revents;
}

static void *side_new(void)
{
    struct side *s = malloc(sizeof *s);
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

static void wait_side(void *arg)
{
    ev_run(((struct side *)arg)->loop, EVRUN_ONCE);
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "libev", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
