/* echo on libevent 2: raw persistent events (a bufferevent would copy every
 * message through an evbuffer); a connection's event takes EV_WRITE only
 * while part of an echo is still to go. */
#include "driver.h"

#include <event2/event.h>
#include <stdlib.h>

struct conn {
    struct event *ev;
    short what;
    struct echo_conn c;
};

static struct event_base *base;

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *k = arg;
    int state = echo_io(&k->c);
    short want = (short)(EV_PERSIST | EV_READ | (state == 1 ? EV_WRITE : 0));

    (void)fd; (void)what;
    if (state < 0) {
        event_free(k->ev);
        close(k->c.fd);
        free(k);
    } else if (want != k->what) {
        event_del(k->ev);
        event_assign(k->ev, base, k->c.fd, want, conn_cb, k);
        event_add(k->ev, NULL);
        k->what = want;
    }
}

static void accept_cb(evutil_socket_t listener, short what, void *arg)
{
    int fd;
    (void)what; (void)arg;
    while ((fd = echo_accept(listener)) >= 0) {
        struct conn *k = calloc(1, sizeof *k);
        if (k == NULL)
            bench_die("out of memory", 0);
        k->c.fd = fd;
        k->what = EV_PERSIST | EV_READ;
        k->ev = event_new(base, fd, k->what, conn_cb, k);
        event_add(k->ev, NULL);
    }
}

int main(int argc, char **argv)
{
    int listener = echo_listen(echo_start(argc, argv));
    base = event_base_new();
    event_add(event_new(base, listener, EV_READ | EV_PERSIST, accept_cb, NULL), NULL);
    event_base_dispatch(base);
    return 0;
}
