/* A TCP echo server written on the event loop: every byte a client sends
 * comes back.
 *
 *   loop_echo_server [-b BACKEND] [-n SECONDS] [ADDR]     (ADDR: 127.0.0.1:0)
 *
 * Same command line and first line of stdout as echo_server ("listening on
 * ADDR:PORT backend NAME"), so echo_client can load either.  It serves until
 * Ctrl-C or SIGTERM (on Windows: Ctrl-C or Ctrl-Break in its console; see
 * stop.h) or for SECONDS, then frees everything, prints "stopped" and exits
 * 0; a backend this build lacks exits 77.
 *
 * What it shows: the handler's callbacks instead of a hand-written wait loop;
 * tokens as indices into a connection table; edge-triggered sockets pumped
 * until MIO_EAGAIN, with a write that does not fit kept until WRITABLE (and
 * reading paused meanwhile); accepting until MIO_EAGAIN whatever single
 * clients do, and a listener that rests on a timer when descriptors run out;
 * transient errors retried on a timer, the others closing the connection
 * (errors.h); Nagle off for request/response traffic; a timer and a signal,
 * each ending the loop; every start-up failure undone. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "stop.h"

#define LISTENER   0            /* tokens: the listener, the signal waker, */
#define STOP       1            /* then connection i is token FIRST_CONN + i */
#define FIRST_CONN 2
#define MAX_CONNS  1024

struct conn {
    mio_fd fd;
    size_t index;               /* in conns[]: its token is FIRST_CONN + index */
    mio_timeout retry;          /* pending after a transient error (0: none) */
    size_t head, tail;          /* bytes read but not yet echoed: buf[head..tail) */
    char buf[16384];
};

struct server {
    mio_fd listener;
    bool resting;               /* the listener is not watched for a while */
    struct conn *conns[MAX_CONNS];
};

/* Timer arguments besides connections (whose timer argument is the conn). */
static char end_of_run, listener_wakes;

static void conn_close(mio_loop *loop, struct server *s, size_t i)
{
    mio_loop_clear_timeout(loop, s->conns[i]->retry);
    mio_deregister(mio_loop_poll(loop), s->conns[i]->fd);
    mio_close(s->conns[i]->fd);
    free(s->conns[i]);
    s->conns[i] = NULL;
}

/* A transient error: the connection is pumped again after RETRY_NS.  No event
 * may come before (nothing about the socket changed), hence the timer; if
 * even that cannot be had, the connection is closed rather than forgotten. */
static void conn_stall(mio_loop *loop, struct server *s, size_t i)
{
    struct conn *c = s->conns[i];
    if (c->retry == 0 && mio_loop_timeout(loop, c, RETRY_NS, &c->retry) < 0)
        conn_close(loop, s, i);
}

/* Echoes until the socket has nothing more to read or cannot take more
 * (MIO_EAGAIN on write: WRITABLE will call this again).  A read shorter
 * than the buffer drained the stream (mio.h): the next bytes bring a new
 * event, so the read that would only say MIO_EAGAIN is skipped, unless the
 * event said the peer's end came too. */
static void conn_pump(mio_loop *loop, struct server *s, size_t i, uint32_t readiness)
{
    struct conn *c = s->conns[i];
    bool drained = false;
    /* The end of stream came with the data: read on to see it. */
    bool to_the_end = (readiness & MIO_READ_CLOSED) != 0;

    for (;;) {
        ssize_t n;

        while (c->head < c->tail) {
            n = mio_write(c->fd, c->buf + c->head, c->tail - c->head);
            if (n == MIO_EAGAIN)
                return;
            if (n < 0 && error_is_transient((int)n)) {
                conn_stall(loop, s, i);     /* keep the data, try again soon */
                return;
            }
            if (n < 0) {
                conn_close(loop, s, i);     /* reset, broken pipe */
                return;
            }
            c->head += (size_t)n;
        }
        c->head = c->tail = 0;
        if (drained)
            return;
        n = mio_read(c->fd, c->buf, sizeof c->buf);
        if (n == MIO_EAGAIN)
            return;
        if (n < 0 && error_is_transient((int)n)) {
            conn_stall(loop, s, i);
            return;
        }
        if (n <= 0) {               /* end of stream or error */
            conn_close(loop, s, i);
            return;
        }
        c->tail = (size_t)n;
        drained = c->tail < sizeof c->buf && !to_the_end;
    }
}

/* The listener is not watched for BACKOFF_NS, then registered again (which
 * reports the clients already queued at once). */
static void listener_rest(mio_loop *loop, struct server *s)
{
    if (!s->resting)
        mio_deregister(mio_loop_poll(loop), s->listener);
    s->resting = true;
    if (mio_loop_timeout(loop, &listener_wakes, BACKOFF_NS, NULL) < 0) {
        /* No timer to be had: watch it again now rather than never. */
        if (mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
            s->resting = false;
    }
}

static void listener_resume(mio_loop *loop, struct server *s)
{
    if (mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
        s->resting = false;
    else
        listener_rest(loop, s);     /* try again later */
}

/* Accepts until MIO_EAGAIN, or until the listener rests: it never returns
 * with the listener watched but not drained, which an edge (native or
 * emulated) would not report again. */
static void accept_all(mio_loop *loop, struct server *s)
{
    int skipped = 0;
    for (;;) {
        struct conn *c;
        mio_fd fd;
        size_t i;
        int err = mio_tcp_accept(s->listener, &fd, NULL);

        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* Out of descriptors: turn the queued clients away rather than
             * leave them hanging; if even that fails, rest and retry. */
            if (mio_tcp_shed(s->listener) < 0)
                listener_rest(loop, s);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;               /* that client is gone: the next */
        if (err < 0) {
            fprintf(stderr, "loop_echo_server: accept: %s\n", mio_strerror(err));
            listener_rest(loop, s); /* try again later, without spinning */
            return;
        }
        for (i = 0; i < MAX_CONNS && s->conns[i] != NULL; i++)
            ;
        if (i == MAX_CONNS || (c = malloc(sizeof *c)) == NULL) {
            mio_close(fd);          /* full: turn the client away */
            continue;
        }
        c->fd = fd;
        c->index = i;
        c->retry = 0;
        c->head = c->tail = 0;
        s->conns[i] = c;
        /* Replies go out at once, not held back by Nagle's algorithm until
         * the client acknowledges the previous segment (which it delays). */
        mio_tcp_set_nodelay(fd, true);
        err = mio_register(mio_loop_poll(loop), fd, FIRST_CONN + i, MIO_READABLE | MIO_WRITABLE);
        if (err < 0) {
            fprintf(stderr, "loop_echo_server: register: %s\n", mio_strerror(err));
            mio_close(fd);
            free(c);
            s->conns[i] = NULL;
        }
    }
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct server *s = ctx;

    if (token == LISTENER)
        accept_all(loop, s);
    else if (token == STOP)
        mio_loop_shutdown(loop);
    else if (s->conns[token - FIRST_CONN] != NULL)   /* may have closed this tick */
        conn_pump(loop, s, token - FIRST_CONN, readiness);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct server *s = ctx;
    struct conn *c = arg;

    if (arg == &end_of_run) {
        mio_loop_shutdown(loop);
    } else if (arg == &listener_wakes) {
        listener_resume(loop, s);
    } else {                        /* a stalled connection's retry */
        c->retry = 0;
        conn_pump(loop, s, c->index, MIO_READ_CLOSED);   /* read on */
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: loop_echo_server [-b BACKEND] [-n SECONDS] [ADDR]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    static struct server s;
    mio_loop_config config;
    char text[MIO_ADDR_STRLEN];
    double seconds = 0;
    mio_loop *loop = NULL;
    mio_addr addr;
    mio_waker *waker = NULL;
    size_t i;
    int arg, err;

    mio_loop_config_default(&config);
    /* Options, each with its value ("-b epoll"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && (seconds = atof(value)) > 0)
            continue;
        else
            return usage();
    }
    if (arg + 1 < argc || mio_addr_parse(arg < argc ? argv[arg] : "127.0.0.1:0", &addr) < 0)
        return usage();

    s.listener = MIO_INVALID_FD;
    err = mio_loop_new(&config, &loop);
    if (err == MIO_ENOSYS) {
        fprintf(stderr, "loop_echo_server: backend %s not available\n", config.backend);
        return 77;
    }
    /* Each step may fail; whatever was made before is undone below. */
    if (err == 0 &&
        (err = mio_tcp_listen(&addr, 1024, &s.listener)) == 0 &&
        (err = mio_register(mio_loop_poll(loop), s.listener, LISTENER, MIO_READABLE)) == 0 &&
        (err = mio_waker_new(mio_loop_poll(loop), STOP, &waker)) == 0 &&
        (seconds <= 0 || (err = mio_loop_timeout(loop, &end_of_run,
                                                 (uint64_t)(seconds * (double)MIO_SEC), NULL)) == 0) &&
        (err = mio_local_addr(s.listener, &addr)) == 0) {
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, text, sizeof text);
        printf("listening on %s backend %s\n", text, mio_poll_backend(mio_loop_poll(loop)));
        fflush(stdout);
        /* A wait that failed for want of memory is tried again. */
        while ((err = mio_loop_run(loop, &handler, &s)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);           /* no wake after the waker is gone */
    }

    for (i = 0; i < MAX_CONNS; i++)
        if (s.conns[i] != NULL)
            conn_close(loop, &s, i);
    if (s.listener != MIO_INVALID_FD) {
        mio_deregister(mio_loop_poll(loop), s.listener);
        mio_close(s.listener);
    }
    mio_waker_free(waker);
    mio_loop_free(loop);
    if (err < 0) {
        fprintf(stderr, "loop_echo_server: %s\n", mio_strerror(err));
        return 1;
    }
    printf("stopped\n");               /* the last line: all freed */
    return 0;
}
