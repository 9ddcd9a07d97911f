/* wake on libmio: a mio_waker per poll (backend=epoll|poll|uring, the
 * default if none). */
#include "driver.h"
#include "mio.h"

#include <stdlib.h>

static struct bench_opts opts;

struct side {
    mio_poll *poll;
    mio_waker *waker;
};

static void *side_new(void)
{
    struct side *s = malloc(sizeof *s);
    int err;
    if (s == NULL)
        bench_die("out of memory", 0);
    err = mio_poll_new_backend(opts.backend, &s->poll);
    if (err == 0)
        err = mio_waker_new(s->poll, 1, &s->waker);
    if (err < 0)
        bench_die("mio_waker_new", err);
    return s;
}

static void wake(void *arg)
{
    int err = mio_waker_wake(((struct side *)arg)->waker);
    if (err < 0)
        bench_die("mio_waker_wake", err);
}

static void wait_side(void *arg)
{
    mio_event ev[8];
    while (mio_poll_wait(((struct side *)arg)->poll, ev, 8, -1) <= 0)
        ;
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "mio", side_new, wake, wait_side };
    bench_parse(argc, argv, &opts);
    return wake_main(argc, argv, &impl);
}
