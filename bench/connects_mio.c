/* Short connections, for the balance of a group's listener:
 *
 *   connects_mio port=P conns=N concurrency=C size=S
 *
 * opens N connections to 127.0.0.1:P in all, C at a time; each sends S
 * bytes, reads them back (checked), and is closed with a reset (SO_LINGER
 * 0), so that no TIME_WAIT is left to run the ephemeral ports out.  Prints
 *   connects lib=mio conns=N conns_per_s= errors=
 * where errors counts connections that failed or echoed wrong bytes. */
#include "driver.h"
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct slot {
    mio_fd fd;
    size_t sent, got;
};

static long started, finished, errors;
static long total, size;
static mio_addr addr;
static mio_poll *poll_;

static void open_one(struct slot *s, mio_token token)
{
    int err;

    s->sent = s->got = 0;
    err = mio_tcp_connect(&addr, &s->fd);
    if (err == 0)
        err = mio_register(poll_, s->fd, token, MIO_READABLE | MIO_WRITABLE);
    if (err < 0)
        bench_die("connect", err);
    started++;
}

static void close_one(struct slot *s, bool failed)
{
    struct linger reset = { 1, 0 };

    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    mio_deregister(poll_, s->fd);
    mio_close(s->fd);
    s->fd = MIO_INVALID_FD;
    finished++;
    errors += failed;
}

/* Moves the connection on; true once it is done (closed). */
static bool serve(struct slot *s, const char *out, char *in)
{
    ssize_t r;

    while (s->sent < (size_t)size) {
        r = mio_write(s->fd, out + s->sent, (size_t)size - s->sent);
        if (r == MIO_EAGAIN || r == MIO_ENOTCONN)
            return false;
        if (r < 0) {
            close_one(s, true);
            return true;
        }
        s->sent += (size_t)r;
    }
    while ((r = mio_read(s->fd, in + s->got, (size_t)size - s->got)) > 0)
        s->got += (size_t)r;
    if (s->got == (size_t)size) {
        close_one(s, memcmp(in, out, (size_t)size) != 0);
        return true;
    }
    if (r != MIO_EAGAIN) {
        close_one(s, true);
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct slot *slots;
    mio_event ev[256];
    char text[64], *out, *in;
    int64_t start;
    long i;
    int err;

    bench_parse(argc, argv, &o);
    bench_need_fds(o.concurrency + 64);
    total = o.conns;
    size = o.size > 0 ? o.size : 1;
    snprintf(text, sizeof text, "127.0.0.1:%d", o.port);
    if ((err = mio_addr_parse(text, &addr)) < 0 || (err = mio_poll_new(&poll_)) < 0)
        bench_die("set-up", err);
    slots = calloc((size_t)o.concurrency, sizeof *slots);
    out = malloc((size_t)size);
    in = malloc((size_t)size * (size_t)o.concurrency);
    if (slots == NULL || out == NULL || in == NULL)
        bench_die("out of memory", 0);
    for (i = 0; i < size; i++)
        out[i] = (char)('a' + i % 26);
    start = bench_now_ns();
    for (i = 0; i < o.concurrency && started < total; i++)
        open_one(&slots[i], (mio_token)i);
    while (finished < total) {
        int n = mio_poll_wait(poll_, ev, 256, 5 * MIO_SEC), k;
        if (n == 0)
            bench_die("no progress for 5 s", 0);
        for (k = 0; k < n; k++) {
            struct slot *s = &slots[ev[k].token];
            if (s->fd == MIO_INVALID_FD)
                continue;
            if (serve(s, out, in + ev[k].token * (size_t)size) && started < total)
                open_one(s, ev[k].token);
        }
    }
    printf("connects lib=mio conns=%ld conns_per_s=%.0f errors=%ld\n", total,
           (double)total * 1e9 / (double)(bench_now_ns() - start), errors);
    return 0;
}
