/* wake on libuv: a uv_async_t per loop, uv_async_send from the other thread. */
#include "driver.h"

#include <stdlib.h>
#include <uv.h>

struct side {
    uv_loop_t loop;
    uv_async_t async;
};

static void cb(uv_async_t *a)
{
    (void)a;
}

static void *side_new(void)
{
    struct side *s = malloc(sizeof *s);
    if (s == NULL || uv_loop_init(&s->loop) < 0 || uv_async_init(&s->loop, &s->async, cb) < 0)
        bench_die("uv_async_init", 0);
    return s;
}

static void wake(void *arg)
{
    uv_async_send(&((struct side *)arg)->async);
}

static void wait_side(void *arg)
{
    uv_run(&((struct side *)arg)->loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "libuv", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
