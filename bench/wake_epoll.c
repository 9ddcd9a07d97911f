/* wake on hand-written epoll: an eventfd registered edge-triggered, so a
 * write is a new edge and nobody reads the counter (libmio's own scheme). */
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

struct side {
    int epfd, efd;
};

static void *side_new(void)
{
    struct side *s = malloc(sizeof *s);
    struct epoll_event ev;
    if (s == NULL)
        bench_die("out of memory", 0);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = 1;
    if (s->epfd < 0 || s->efd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ev) < 0)
        bench_die("epoll/eventfd", -errno);
    return s;
}

static void wake(void *arg)
{
    static const uint64_t one = 1;
    if (write(((struct side *)arg)->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        bench_die("write", -errno);
}

static void wait_side(void *arg)
{
    struct epoll_event ev[8];
    while (epoll_wait(((struct side *)arg)->epfd, ev, 8, -1) <= 0)
        ;
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "epoll", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
