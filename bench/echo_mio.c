/* echo on libmio's Poll API (backend=epoll|poll, trigger=edge|level): the
 * connection is the token; it asks for writable only while part of an echo
 * is still to go. */
#include "driver.h"
#include "mio.h"

#include <stdlib.h>

#define EVENTS 1024
#define LISTENER ((mio_token)0)

int main(int argc, char **argv)
{
    struct bench_opts o;
    mio_event events[EVENTS];
    mio_poll *p;
    uint32_t trigger;
    int listener, i, n, err;

    echo_start(argc, argv);
    bench_parse(argc, argv, &o);
    trigger = o.level ? MIO_LEVEL : MIO_EDGE;
    listener = echo_listen(o.port);
    err = mio_poll_new_backend(o.backend, &p);
    if (err == 0)
        err = mio_register(p, listener, LISTENER, MIO_READABLE | MIO_LEVEL);
    if (err < 0)
        bench_die("mio_poll", err);
    for (;;) {
        n = mio_poll_wait(p, events, EVENTS, -1);
        for (i = 0; i < n; i++) {
            struct echo_conn *c = (struct echo_conn *)events[i].token;
            int fd, state;
            if (events[i].token == LISTENER) {
                while ((fd = echo_accept(listener)) >= 0) {
                    c = calloc(1, sizeof *c);
                    if (c == NULL)
                        bench_die("out of memory", 0);
                    c->fd = fd;
                    err = mio_register(p, fd, (mio_token)c, MIO_READABLE | trigger);
                    if (err < 0)
                        bench_die("mio_register", err);
                }
                continue;
            }
            state = echo_io(c);
            if (state < 0) {
                mio_deregister(p, c->fd);
                close(c->fd);
                free(c);
            } else if (state == 1) {
                mio_reregister(p, c->fd, (mio_token)c, MIO_READABLE | MIO_WRITABLE | trigger);
            } else if (events[i].flags & MIO_WRITABLE) {
                mio_reregister(p, c->fd, (mio_token)c, MIO_READABLE | trigger);
            }
        }
    }
}
