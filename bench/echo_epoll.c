/* echo on hand-written epoll: edge-triggered connections (trigger=level for
 * the level variant), a level-triggered listener; a connection waits for
 * writable only while part of an echo is still to go. */
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#define EVENTS 1024

static int epfd;

static void watch(int op, struct echo_conn *c, uint32_t dir, int level)
{
    struct epoll_event ev;
    ev.events = dir | (level ? 0 : EPOLLET);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
        bench_die("epoll_ctl", -errno);
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct epoll_event events[EVENTS], lev;
    int listener, i, n;

    echo_start(argc, argv);
    bench_parse(argc, argv, &o);
    listener = echo_listen(o.port);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    lev.events = EPOLLIN;
    lev.data.ptr = NULL;
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) < 0)
        bench_die("epoll", -errno);
    for (;;) {
        n = epoll_wait(epfd, events, EVENTS, -1);
        for (i = 0; i < n; i++) {
            struct echo_conn *c = events[i].data.ptr;
            int fd, state;
            if (c == NULL) {
                while ((fd = echo_accept(listener)) >= 0) {
                    c = calloc(1, sizeof *c);
                    if (c == NULL)
                        bench_die("out of memory", 0);
                    c->fd = fd;
                    watch(EPOLL_CTL_ADD, c, EPOLLIN, o.level);
                }
                continue;
            }
            state = echo_io(c);
            if (state < 0) {
                close(c->fd);   /* closing removes it from the epoll set */
                free(c);
            } else if (state == 1) {
                watch(EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT, o.level);
            } else if (events[i].events & EPOLLOUT) {
                watch(EPOLL_CTL_MOD, c, EPOLLIN, o.level);
            }
        }
    }
}
