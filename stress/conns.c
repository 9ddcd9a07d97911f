/* Many connections: a client process and a server process on loopback, each
 * holding as many connections as its descriptor limit allows, every one
 * echoing 64 KiB that the client checks byte for byte.
 *
 *   conns [-b BACKEND] [-n CONNS] [-s BYTES]
 *
 * CONNS defaults to what the hard RLIMIT_NOFILE leaves after a margin.  The
 * server listens on several ports so the client's connections are spread
 * over several (address, port) pairs.  Prints one line of figures and exits 0
 * when every connection was held at once and every byte came back. */
#define _GNU_SOURCE
#include "mio.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORTS     8
#define MARGIN    64            /* descriptors kept for the poll and friends */
#define BUF       4096
#define IN_FLIGHT 512           /* connects started and not yet done */
#define EVENTS    1024

static const char *backend = "epoll";
static size_t conns = 0, bytes = 65536;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char pattern(size_t conn, size_t at)
{
    return (unsigned char)(conn * 131 + at * 7 + (at >> 8));
}

static void die(const char *what, int err)
{
    fprintf(stderr, "conns: %s: %s\n", what, mio_strerror(err));
    exit(1);
}

/* ---- the server: echo on every connection ---- */

struct echo {
    mio_fd fd;
    unsigned char buf[BUF];
    size_t head, tail;
};

static void server(mio_fd *listeners, int ready_fd)
{
    mio_poll *p;
    struct echo *c = calloc(conns + MARGIN, sizeof *c);
    mio_event *ev = calloc(EVENTS, sizeof *ev);
    size_t live = 0, peak = 0, i;
    int err;

    if (c == NULL || ev == NULL)
        die("calloc", MIO_ENOMEM);
    if ((err = mio_poll_new_backend(backend, &p)) < 0)
        die("poll", err);
    for (i = 0; i < PORTS; i++)
        if ((err = mio_register(p, listeners[i], i, MIO_READABLE)) < 0)
            die("register listener", err);
    if (write(ready_fd, "r", 1) != 1)
        die("ready", MIO_EPIPE);
    for (;;) {
        int n = mio_poll_wait(p, ev, EVENTS, 30 * MIO_SEC), k;
        if (n == MIO_EINTR)
            continue;
        if (n <= 0)
            break;                      /* idle for 30 s: the client is gone */
        for (k = 0; k < n; k++) {
            mio_token t = ev[k].token;
            struct echo *e;
            if (t < PORTS) {
                mio_fd fd;
                while ((err = mio_tcp_accept(listeners[t], &fd, NULL)) == 0) {
                    e = &c[fd];
                    e->fd = fd;
                    e->head = e->tail = 0;
                    if ((err = mio_register(p, fd, PORTS + (mio_token)fd,
                                            MIO_READABLE | MIO_WRITABLE)) < 0)
                        die("register", err);
                    if (++live > peak)
                        peak = live;
                }
                if (err == MIO_EMFILE)
                    mio_tcp_shed(listeners[t]);
                else if (err != MIO_EAGAIN && err != MIO_ECONNABORTED)
                    die("accept", err);
                continue;
            }
            e = &c[t - PORTS];
            for (;;) {
                ssize_t r;
                while (e->head < e->tail) {
                    r = mio_write(e->fd, e->buf + e->head, e->tail - e->head);
                    if (r < 0)
                        break;
                    e->head += (size_t)r;
                }
                if (e->head < e->tail)
                    break;              /* MIO_EAGAIN: wait for WRITABLE */
                e->head = e->tail = 0;
                r = mio_read(e->fd, e->buf, BUF);
                if (r == MIO_EAGAIN)
                    break;
                if (r <= 0) {
                    mio_deregister(p, e->fd);
                    mio_close(e->fd);
                    live--;
                    if (live == 0) {
                        printf("server: peak %zu connections\n", peak);
                        fflush(stdout);
                    }
                    break;
                }
                e->tail = (size_t)r;
            }
        }
    }
    mio_poll_free(p);
    free(c);
    free(ev);
}

/* ---- the client: open all, then echo 64 KiB on each, all at once ---- */

struct conn {
    mio_fd fd;
    bool connected;
    size_t sent, received;
};

static int client(const mio_addr *addrs)
{
    mio_poll *p;
    struct conn *c = calloc(conns, sizeof *c);
    mio_event *ev = calloc(EVENTS, sizeof *ev);
    unsigned char *out = malloc(bytes + 256), buf[BUF];
    size_t opened = 0, connected = 0, done = 0, i, verified = 0, held = 0;
    double t0 = now_s(), t_held = 0;
    int err, bad = 0;
    bool kicked = false;

    if (c == NULL || ev == NULL || out == NULL)
        die("calloc", MIO_ENOMEM);
    if ((err = mio_poll_new_backend(backend, &p)) < 0)
        die("poll", err);
    while (done < conns) {
        int n, k;
        /* Keep IN_FLIGHT connects going until all are open. */
        while (opened < conns && opened - connected < IN_FLIGHT) {
            struct conn *x = &c[opened];
            if ((err = mio_tcp_connect(&addrs[opened % PORTS], &x->fd)) < 0)
                die("connect", err);
            if ((err = mio_register(p, x->fd, opened, MIO_READABLE | MIO_WRITABLE)) < 0)
                die("register", err);
            opened++;
        }
        if (now_s() - t0 > 300) {
            fprintf(stderr, "conns: stuck: %zu opened, %zu connected, %zu done\n",
                    opened, connected, done);
            return 1;
        }
        n = mio_poll_wait(p, ev, EVENTS, MIO_SEC);
        if (n == MIO_EINTR)
            continue;
        if (n < 0)
            die("wait", n);
        for (k = 0; k < n; k++) {
            size_t id = (size_t)ev[k].token;
            struct conn *x = &c[id];
            if (!x->connected) {
                if (!(ev[k].flags & (MIO_WRITABLE | MIO_ERROR | MIO_WRITE_CLOSED)))
                    continue;
                if ((err = mio_socket_error(x->fd)) != 0)
                    die("connect (async)", err);
                x->connected = true;
                if (++connected == conns) {
                    held = conns;
                    t_held = now_s() - t0;
                }
            }
            /* Echo only once every connection is open: all are held at once. */
            if (!kicked)
                continue;
            if (x->sent < bytes) {
                size_t j, len = bytes - x->sent;
                ssize_t r;
                for (j = 0; j < len && j < sizeof buf; j++)
                    out[j] = pattern(id, x->sent + j);
                while (x->sent < bytes &&
                       (r = mio_write(x->fd, out, len < sizeof buf ? len : sizeof buf)) > 0) {
                    x->sent += (size_t)r;
                    len = bytes - x->sent;
                    for (j = 0; j < len && j < sizeof buf; j++)
                        out[j] = pattern(id, x->sent + j);
                }
            }
            for (;;) {
                ssize_t r = mio_read(x->fd, buf, sizeof buf), j;
                if (r <= 0) {
                    if (r != MIO_EAGAIN)
                        die("read", r == 0 ? MIO_ECONNRESET : (int)r);
                    break;
                }
                for (j = 0; j < r; j++)
                    if (buf[j] != pattern(id, x->received + (size_t)j))
                        bad++;
                x->received += (size_t)r;
                verified += (size_t)r;
            }
            if (x->received == bytes && x->sent == bytes) {
                x->received++;          /* counted once */
                done++;
            }
        }
        if (connected == conns && !kicked) {
            /* The connect events came and went before all were open: start
             * every connection's send here (edge: no new WRITABLE comes). */
            for (i = 0; i < conns; i++) {
                struct conn *x = &c[i];
                size_t j;
                ssize_t r;
                while (x->sent < bytes) {
                    size_t len = bytes - x->sent < sizeof buf ? bytes - x->sent : sizeof buf;
                    for (j = 0; j < len; j++)
                        out[j] = pattern(i, x->sent + j);
                    if ((r = mio_write(x->fd, out, len)) <= 0)
                        break;
                    x->sent += (size_t)r;
                }
            }
            kicked = true;
        }
    }
    printf("conns %s: %zu connections held at once (all open after %.1f s), "
           "%zu bytes verified, %zu lost, %d wrong, %.1f s\n",
           backend, held, t_held, verified, conns * bytes - verified, bad, now_s() - t0);
    for (i = 0; i < conns; i++)
        mio_close(c[i].fd);
    mio_poll_free(p);
    free(c);
    free(ev);
    free(out);
    return held == conns && verified == conns * bytes && bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct rlimit lim;
    mio_fd listeners[PORTS], ready[2];
    mio_addr addrs[PORTS];
    int opt, status, rc, i;
    pid_t pid;
    char c;

    while ((opt = getopt(argc, argv, "b:n:s:")) != -1) {
        if (opt == 'b')
            backend = optarg;
        else if (opt == 'n')
            conns = (size_t)atol(optarg);
        else if (opt == 's')
            bytes = (size_t)atol(optarg);
        else
            return 2;
    }
    /* As many descriptors as the hard limit allows, for both processes. */
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    if (conns == 0 || conns > lim.rlim_cur - MARGIN)
        conns = lim.rlim_cur - MARGIN;
    for (i = 0; i < PORTS; i++) {
        int err;
        if ((err = mio_addr_parse("127.0.0.1:0", &addrs[i])) < 0 ||
            (err = mio_tcp_listen(&addrs[i], 4096, &listeners[i])) < 0 ||
            (err = mio_local_addr(listeners[i], &addrs[i])) < 0)
            die("listen", err);
    }
    if (mio_pipe(ready) < 0)
        die("pipe", MIO_EMFILE);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        server(listeners, ready[1]);
        _exit(0);
    }
    for (i = 0; i < PORTS; i++)
        mio_close(listeners[i]);
    while (read(ready[0], &c, 1) != 1)
        ;
    rc = client(addrs);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return rc;
}
