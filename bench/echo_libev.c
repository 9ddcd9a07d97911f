/* echo on libev: an ev_io per connection, switched to read+write only while
 * part of an echo is still to go. */
#include "driver.h"

#include <ev.h>
#include <stdlib.h>

struct conn {
    ev_io io;
    struct echo_conn c;
};

static void conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct conn *k = (struct conn *)io;
    int state = echo_io(&k->c);
    int want = state == 1 ? EV_READ | EV_WRITE : EV_READ;

    (void)revents;
    if (state < 0) {
        ev_io_stop(loop, io);
        close(k->c.fd);
        free(k);
    } else if (want != (io->events & (EV_READ | EV_WRITE))) {
        ev_io_stop(loop, io);
        ev_io_set(io, k->c.fd, want);
        ev_io_start(loop, io);
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    int fd;
    (void)revents;
    while ((fd = echo_accept(io->fd)) >= 0) {
        struct conn *k = calloc(1, sizeof *k);
        if (k == NULL)
            bench_die("out of memory", 0);
        k->c.fd = fd;
        ev_io_init(&k->io, conn_cb, fd, EV_READ);
        ev_io_start(loop, &k->io);
    }
}

int main(int argc, char **argv)
{
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    ev_io lw;

    ev_io_init(&lw, accept_cb, echo_listen(echo_start(argc, argv)), EV_READ);
    ev_io_start(loop, &lw);
    ev_run(loop, 0);
    return 0;
}
