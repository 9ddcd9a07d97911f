/* wake on libuv: a uv_async_t per loop, uv_async_send from the other thread. */
#include "driver.h"

#include <stdlib.h>
#include <uv.h>

struct side {
    uv_async_t async;           /* first: the callback finds its side */
    uv_loop_t loop;
    unsigned long fired, seen;  /* callbacks, and those a wait consumed */
};

static void cb(uv_async_t *a)
{
    ((struct side *)a)->fired++;
}

static void *side_new(void)
{
    struct side *s = calloc(1, sizeof *s);
    if (s == NULL || uv_loop_init(&s->loop) < 0 || uv_async_init(&s->loop, &s->async, cb) < 0)
        bench_die("uv_async_init", 0);
    return s;
}

static void wake(void *arg)
{
    uv_async_send(&((struct side *)arg)->async);
}

/* An iteration may end without the callback (a wake-up consumed earlier). */
static void wait_side(void *arg)
{
    struct side *s = arg;
    while (s->fired == s->seen)
        uv_run(&s->loop, UV_RUN_ONCE);
    s->seen = s->fired;
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "libuv", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
