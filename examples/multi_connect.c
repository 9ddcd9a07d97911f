/* A client talking to many servers at once: connects to every address given,
 * sends each one line and reads one line back, all on one thread.
 *
 *   multi_connect [-b BACKEND] [-t SECONDS] [-m MESSAGE] ADDR...
 *
 * MESSAGE defaults to "hello", SECONDS (for everything) to 5.  One line per
 * address, in the order given:
 *
 *   127.0.0.1:7000 ok 0.2 ms hello
 *   127.0.0.1:7001 error connection refused
 *   127.0.0.1:7002 error timed out
 *
 * Exits 0 if every server answered, 1 otherwise; a backend this build lacks
 * exits 77.  Try it against a few echo_server (or chat_server) instances.
 *
 * What it shows: non-blocking connects finished on WRITABLE and checked with
 * mio_socket_error (a failed connect is reported as an event too, with
 * MIO_ERROR); one state machine per connection, driven by events whatever
 * their order; a single deadline shared by all; transient read and write
 * errors retried with the wait's timeout as the clock, the others ending
 * that connection (errors.h); Nagle off, so a request cut short by the
 * kernel does not wait for the server's delayed acknowledgement. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"

enum state { CONNECTING, SENDING, RECEIVING, DONE };

struct conn {
    const char *name;
    mio_fd fd;
    enum state state;
    int err;                    /* the result once DONE: 0 or a MIO_E* code */
    size_t sent;
    char reply[256];
    size_t got;
    int64_t start, end;
    bool stalled;               /* a transient error: try again at retry_at */
};

static const char *message = "hello";
static char request[258];
static size_t request_len;
static int64_t retry_at;        /* when stalled connections try again (0: none is) */

static void stall(struct conn *c)
{
    c->stalled = true;
    if (retry_at == 0)
        retry_at = clock_now_ns() + RETRY_NS;
}

static void finish(mio_poll *poll, struct conn *c, int err)
{
    if (c->fd != MIO_INVALID_FD) {
        mio_deregister(poll, c->fd);
        mio_close(c->fd);
        c->fd = MIO_INVALID_FD;
    }
    c->err = err;
    c->end = clock_now_ns();
    c->state = DONE;
}

/* Moves c as far as it can go without blocking.  Any event may be spurious,
 * so each step checks for itself rather than trusting the flags. */
static void conn_pump(mio_poll *poll, struct conn *c)
{
    mio_addr peer;
    ssize_t n;
    int err;

    if (c->state == CONNECTING) {
        if ((err = mio_socket_error(c->fd)) != 0) {
            finish(poll, c, err);           /* refused, unreachable, ... */
            return;
        }
        if (mio_peer_addr(c->fd, &peer) == MIO_ENOTCONN)
            return;                         /* not yet: WRITABLE will come */
        mio_tcp_set_nodelay(c->fd, true);
        c->state = SENDING;
    }
    while (c->state == SENDING) {
        n = mio_write(c->fd, request + c->sent, request_len - c->sent);
        if (n == MIO_EAGAIN)
            return;
        if (n < 0 && error_is_transient((int)n)) {
            stall(c);                       /* try again soon */
            return;
        }
        if (n < 0) {
            finish(poll, c, (int)n);
            return;
        }
        if ((c->sent += (size_t)n) == request_len)
            c->state = RECEIVING;
    }
    while (c->state == RECEIVING) {
        n = mio_read(c->fd, c->reply + c->got, sizeof c->reply - 1 - c->got);
        if (n == MIO_EAGAIN)
            return;
        if (n < 0 && error_is_transient((int)n)) {
            stall(c);
            return;
        }
        if (n <= 0) {
            finish(poll, c, n == 0 ? MIO_ECONNRESET : (int)n);  /* closed early */
            return;
        }
        c->got += (size_t)n;
        c->reply[c->got] = '\0';
        if (strchr(c->reply, '\n') != NULL || c->got == sizeof c->reply - 1) {
            c->reply[strcspn(c->reply, "\n")] = '\0';
            finish(poll, c, 0);
        }
    }
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    double seconds = 5;
    struct conn *conns;
    mio_event events[64];
    mio_poll *poll;
    int64_t deadline;
    size_t count, i, pending = 0, failed = 0;
    int arg, err;

    /* Options, each with its value ("-m hi"), then the addresses. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            backend = value;
        else if (strcmp(argv[arg], "-t") == 0 && (seconds = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-m") == 0 && strlen(value) < sizeof request - 2 &&
                 !strchr(value, '\n'))
            message = value;
        else
            goto usage;
    }
    if (arg == argc)
        goto usage;
    request_len = (size_t)snprintf(request, sizeof request, "%s\n", message);
    count = (size_t)(argc - arg);
    if ((conns = calloc(count, sizeof *conns)) == NULL)
        return 1;
    if ((err = mio_poll_new_backend(backend, &poll)) < 0) {
        fprintf(stderr, "multi_connect: %s\n", mio_strerror(err));
        free(conns);
        return err == MIO_ENOSYS ? 77 : 1;
    }

    /* Start every connect; the token is the connection's index. */
    for (i = 0; i < count; i++) {
        struct conn *c = &conns[i];
        mio_addr addr;
        c->name = argv[arg + (int)i];
        c->fd = MIO_INVALID_FD;
        c->start = clock_now_ns();
        if ((err = mio_addr_parse(c->name, &addr)) < 0 ||
            (err = mio_tcp_connect(&addr, &c->fd)) < 0 ||
            (err = mio_register(poll, c->fd, i, MIO_READABLE | MIO_WRITABLE)) < 0)
            finish(poll, c, err);
        else
            pending++;
    }

    deadline = clock_now_ns() + (int64_t)(seconds * 1e9);
    while (pending > 0) {
        int64_t now = clock_now_ns(), left = deadline - now;
        int n, k;
        if (left <= 0)
            break;
        if (retry_at > 0 && retry_at - now < left)
            left = retry_at > now ? retry_at - now : 0;
        n = mio_poll_wait(poll, events, 64, left);
        if (retry_at > 0 && clock_now_ns() >= retry_at) {
            retry_at = 0;
            for (i = 0; i < count; i++)
                if (conns[i].stalled && conns[i].state != DONE) {
                    conns[i].stalled = false;
                    conn_pump(poll, &conns[i]);
                    pending -= conns[i].state == DONE;
                }
        }
        if (n < 0 && !error_is_transient(n)) {
            fprintf(stderr, "multi_connect: wait: %s\n", mio_strerror(n));
            break;                          /* the rest time out */
        }
        for (k = 0; k < n; k++) {
            struct conn *c = &conns[events[k].token];
            if (c->state != DONE) {
                conn_pump(poll, c);
                pending -= c->state == DONE;
            }
        }
    }

    for (i = 0; i < count; i++) {
        struct conn *c = &conns[i];
        if (c->state != DONE)
            finish(poll, c, MIO_ETIMEDOUT);
        if (c->err == 0)
            printf("%s ok %.1f ms %s\n", c->name, (double)(c->end - c->start) / 1e6, c->reply);
        else
            printf("%s error %s\n", c->name, mio_strerror(c->err));
        failed += c->err != 0;
    }
    mio_poll_free(poll);
    free(conns);
    return failed > 0;

usage:
    fprintf(stderr, "usage: multi_connect [-b epoll|poll|...] [-t SECONDS] [-m MESSAGE] ADDR...\n");
    return 2;
}
