/* dispatch on hand-written epoll: the floor every library is measured
 * against.  Edge-triggered by default (trigger=level for the level variant);
 * the pair's index is the event's user data. */
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#define EVENTS 1024

struct ctx {
    struct dispatch *d;
    int epfd;
};

static void *init(struct dispatch *d)
{
    struct ctx *c = malloc(sizeof *c);
    if (c == NULL)
        bench_die("out of memory", 0);
    c->d = d;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0)
        bench_die("epoll_create1", -errno);
    return c;
}

static void setup(void *arg, int first)
{
    struct ctx *c = arg;
    struct epoll_event ev;
    long i;

    for (i = 0; i < c->d->o->n; i++) {
        int fd = c->d->fds[2 * i];
        if (!first)
            epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
        ev.events = c->d->o->level ? EPOLLIN : EPOLLIN | EPOLLET;
        ev.data.u64 = (uint64_t)i;
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            bench_die("epoll_ctl", -errno);
    }
}

static void run(void *arg)
{
    struct ctx *c = arg;
    struct epoll_event events[EVENTS];

    while (c->d->count != c->d->fired) {
        int i, n = epoll_wait(c->epfd, events, EVENTS, -1);
        if (n < 0 && errno != EINTR)
            bench_die("epoll_wait", -errno);
        for (i = 0; i < n; i++)
            dispatch_readable(c->d, (long)events[i].data.u64);
    }
}

static void fini(void *arg)
{
    struct ctx *c = arg;
    close(c->epfd);
    free(c);
}

int main(int argc, char **argv)
{
    static const struct dispatch_impl impl = { "epoll", 0, init, setup, run, fini, NULL };
    return dispatch_main(argc, argv, &impl);
}
