/* A TCP echo server on the Poll API: every byte a client sends comes back.
 *
 *   echo_server [-b BACKEND] [-n SECONDS] [-t LOOPS [-m MODE]] [ADDR]
 *                                                      (ADDR: 127.0.0.1:0)
 *
 * -t serves with a group of LOOPS event loops, one thread each (0: one per
 * CPU), the connections spread by MODE: handoff (the default), least,
 * exclusive, reuseport or cpu (docs/multicore.md); each loop runs the same
 * connection code on its own table.
 *
 * The first line of stdout is "listening on ADDR:PORT backend NAME", with
 * " loops N mode MODE" after it under -t.  It runs
 * until Ctrl-C or SIGTERM (on Windows: Ctrl-C or Ctrl-Break in its console)
 * or for SECONDS, then frees everything, prints "stopped" and exits 0.
 * Another program stops it with `kill -TERM PID`, or on Windows by attaching
 * to its console and sending a Ctrl-C there (see stop.h).  A backend this
 * build lacks exits 77.
 *
 * What it shows: edge-triggered sources drained until MIO_EAGAIN, a partial
 * write kept in a per-connection buffer until the socket is WRITABLE again,
 * back-pressure (a client whose echo is backed up is not read), connections in
 * a table indexed by token, EMFILE handled without spinning or stalling,
 * transient errors retried and the others closing the connection (errors.h),
 * the wait's timeout as the clock for those retries, and a signal turned into
 * an event with a waker. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"
#include "stop.h"

#define LISTENER  0     /* tokens: the listener, the waker, then connections */
#define WAKER     1
#define FIRST_CONN 2
#define BUF_SIZE  16384
#define EVENTS    256

struct conn {
    mio_fd fd;              /* MIO_INVALID_FD while the slot is free */
    size_t next_free;       /* free slots are chained through this */
    char *buf;              /* bytes read, not yet echoed: buf[head..tail) */
    size_t head, tail;
    bool stalled;           /* a transient error: try again at retry_at */
};

struct server {
    mio_poll *poll;
    mio_fd listener;
    bool accepting;         /* false while the listener rests */
    int64_t accept_at;      /* when a resting listener is watched again (0: not resting) */
    int64_t retry_at;       /* when stalled connections try again (0: none is) */
    bool retry_set;         /* (-t) a loop timeout will call retry_stalled */
    struct conn *conns;     /* slot i has token FIRST_CONN + i */
    size_t capacity, free_head, live;
};

/* Watches the listener again (a registration reports clients already
 * queued at once); if that fails too, rests again. */
static void listener_resume(struct server *s)
{
    s->accept_at = 0;
    if (s->accepting)
        return;
    if (mio_register(s->poll, s->listener, LISTENER, MIO_READABLE) == 0)
        s->accepting = true;
    else
        s->accept_at = clock_now_ns() + BACKOFF_NS;
}

/* Stops watching the listener until a connection closes or BACKOFF_NS has
 * passed, whichever comes first: the wait's timeout is the clock, so the
 * server never depends on a close that may not come. */
static void listener_rest(struct server *s)
{
    if (s->accepting)
        mio_deregister(s->poll, s->listener);
    s->accepting = false;
    s->accept_at = clock_now_ns() + BACKOFF_NS;
}

/* A transient error on connection c: it is tried again after RETRY_NS. */
static void conn_stall(struct server *s, struct conn *c)
{
    c->stalled = true;
    if (s->retry_at == 0)
        s->retry_at = clock_now_ns() + RETRY_NS;
}

/* A free slot, growing the table when none is left; SIZE_MAX if out of memory. */
static size_t slot_take(struct server *s)
{
    size_t i;
    if (s->free_head == s->capacity) {
        size_t cap = s->capacity ? s->capacity * 2 : 64;
        struct conn *c = realloc(s->conns, cap * sizeof *c);
        if (c == NULL)
            return SIZE_MAX;
        for (i = s->capacity; i < cap; i++) {
            c[i].fd = MIO_INVALID_FD;
            c[i].next_free = i + 1;
        }
        s->conns = c;
        s->capacity = cap;
    }
    i = s->free_head;
    s->free_head = s->conns[i].next_free;
    return i;
}

static int usage(void)
{
    fprintf(stderr, "usage: echo_server [-b epoll|poll|...] [-n SECONDS] "
            "[-t LOOPS [-m handoff|least|exclusive|reuseport|cpu]] [ADDR]\n");
    return 2;
}

static void conn_close(struct server *s, size_t i)
{
    struct conn *c = &s->conns[i];
    mio_deregister(s->poll, c->fd);
    mio_close(c->fd);
    free(c->buf);
    c->fd = MIO_INVALID_FD;
    c->next_free = s->free_head;
    s->free_head = i;
    s->live--;
    /* A descriptor came free: accept again, without waiting for the rest to
     * end. */
    if (!s->accepting)
        listener_resume(s);
}

/* Echoes until the client has nothing more to say (read says MIO_EAGAIN, or
 * comes up short) or cannot take more (write says MIO_EAGAIN).  Only an
 * empty buffer is refilled, so a client that does not read its echo is not
 * read either; its WRITABLE event brings us back here, and reading resumes
 * with no new READABLE edge.  A read shorter than the buffer drained the
 * stream (mio.h): the next bytes bring a new event, so the read that would
 * only say MIO_EAGAIN is skipped, unless `readiness` says the peer's end
 * came too.  (A client sending as fast as we echo keeps this loop going; a
 * server facing many would cap the rounds and come back to it after the
 * others.) */
static void conn_ready(struct server *s, size_t i, uint32_t readiness)
{
    struct conn *c = &s->conns[i];
    bool drained = false;
    /* The end of stream came with the data: read on to see it. */
    bool to_the_end = (readiness & MIO_READ_CLOSED) != 0;

    for (;;) {
        ssize_t n;
        while (c->head < c->tail) {
            n = mio_write(c->fd, c->buf + c->head, c->tail - c->head);
            if (n == MIO_EAGAIN)
                return;                 /* wait for WRITABLE */
            if (n < 0 && error_is_transient((int)n)) {
                conn_stall(s, c);       /* keep the data, try again soon */
                return;
            }
            if (n < 0) {
                conn_close(s, i);       /* reset, broken pipe */
                return;
            }
            c->head += (size_t)n;
        }
        c->head = c->tail = 0;
        if (drained)
            return;
        n = mio_read(c->fd, c->buf, BUF_SIZE);
        if (n == MIO_EAGAIN)
            return;                     /* wait for READABLE */
        if (n < 0 && error_is_transient((int)n)) {
            conn_stall(s, c);
            return;
        }
        if (n <= 0) {
            conn_close(s, i);           /* end of stream or error */
            return;
        }
        c->tail = (size_t)n;
        drained = c->tail < BUF_SIZE && !to_the_end;
    }
}

/* Takes a new connection into the table and serves what it sent already. */
static void conn_adopt(struct server *s, mio_fd fd)
{
    char *buf = malloc(BUF_SIZE);
    size_t i = buf != NULL ? slot_take(s) : SIZE_MAX;

    if (i == SIZE_MAX) {
        free(buf);
        mio_close(fd);                  /* out of memory: refuse this one */
        return;
    }
    s->conns[i].fd = fd;
    s->conns[i].buf = buf;
    s->conns[i].head = s->conns[i].tail = 0;
    s->conns[i].stalled = false;
    s->live++;
    mio_tcp_set_nodelay(fd, true);
    /* Both directions, edge-triggered, once: WRITABLE only rises again
     * after a write said MIO_EAGAIN, so it costs nothing while idle. */
    if (mio_register(s->poll, fd, FIRST_CONN + i, MIO_READABLE | MIO_WRITABLE) < 0)
        conn_close(s, i);
    else
        conn_ready(s, i, 0);            /* the client may have spoken already */
}

/* Retries the connections a transient error stalled, once retry_at came. */
static void retry_stalled(struct server *s)
{
    size_t slot;
    s->retry_at = 0;
    for (slot = 0; slot < s->capacity; slot++)
        if (s->conns[slot].fd != MIO_INVALID_FD && s->conns[slot].stalled) {
            s->conns[slot].stalled = false;
            conn_ready(s, slot, MIO_READ_CLOSED);   /* read on */
        }
}

/* Accepts until MIO_EAGAIN, or until the listener has to rest: it never
 * returns with the listener watched but not drained, which an edge (native
 * or emulated) would not report again. */
static void accept_all(struct server *s)
{
    int skipped = 0;
    for (;;) {
        mio_fd fd;
        int err = mio_tcp_accept(s->listener, &fd, NULL);
        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* Out of descriptors.  With connections open, rest the listener
             * until one closes or BACKOFF_NS passes (clients wait in the
             * queue).  With none, no close will come: drop the queued
             * clients so they are not left hanging, and if even that fails,
             * rest and try again. */
            if (s->live == 0 && mio_tcp_shed(s->listener) >= 0)
                return;         /* queue empty: the next client is an event */
            listener_rest(s);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;                   /* that client is gone: the next */
        if (err < 0) {
            fprintf(stderr, "echo_server: accept: %s\n", mio_strerror(err));
            listener_rest(s);           /* try again later, without spinning */
            return;
        }
        conn_adopt(s, fd);
    }
}

/* ---- -t: the same connections on a group of loops ----
 * Each loop has a struct server of its own (its poll, its table, no
 * listener: the group accepts and hands it connections through `adopt`).
 * Stalled connections are retried on a timeout of the loop's, the signal
 * waker lives on loop 0's poll, and any loop stops them all. */

static char end_of_run;         /* the -n timeout's argument */

static void group_adopt(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    (void)l;
    (void)data;
    conn_adopt(ctx, fd);
}

static void group_ready(mio_loop *l, void *ctx, mio_token t, uint32_t readiness)
{
    struct server *s = ctx;
    if (t == WAKER)
        mio_group_shutdown(mio_loop_group(l));
    else if (t >= FIRST_CONN && s->conns[t - FIRST_CONN].fd != MIO_INVALID_FD)
        conn_ready(s, t - FIRST_CONN, readiness);
}

static void group_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct server *s = ctx;
    if (arg == &end_of_run) {
        mio_group_shutdown(mio_loop_group(l));
    } else {
        s->retry_set = false;
        retry_stalled(s);
    }
}

/* After each tick: a stall this tick made gets its retry timeout (if none
 * can be had, the next tick tries again). */
static void group_tick(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    if (s->retry_at > 0 && !s->retry_set) {
        int64_t wait = s->retry_at - clock_now_ns();
        s->retry_set = mio_loop_timeout(l, s, wait > 0 ? (uint64_t)wait : 0, NULL) == 0;
    }
}

static void group_stop(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    size_t slot;
    (void)l;
    for (slot = 0; slot < s->capacity; slot++)
        if (s->conns[slot].fd != MIO_INVALID_FD)
            conn_close(s, slot);
}

static int serve_group(const char *backend, size_t loops, const char *mode_name,
                       const mio_addr *addr, int64_t deadline)
{
    static const struct { const char *name; int mode; } modes[] = {
        { "handoff", MIO_GROUP_HANDOFF }, { "least", MIO_GROUP_HANDOFF_LEAST },
        { "exclusive", MIO_GROUP_EXCLUSIVE }, { "reuseport", MIO_GROUP_REUSEPORT },
        { "cpu", MIO_GROUP_REUSEPORT_CPU },
    };
    const mio_group_handler h = {
        .loop = { .ready = group_ready, .timeout = group_timeout, .tick = group_tick },
        .stop = group_stop,
        .adopt = group_adopt,
    };
    mio_group_config config;
    struct server *servers = NULL;
    char name[MIO_ADDR_STRLEN];
    mio_waker *waker = NULL;
    mio_group *g = NULL;
    mio_addr bound;
    void **ctx = NULL;
    int mode = -1, err;
    size_t i;

    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode_name, modes[i].name) == 0)
            mode = modes[i].mode;
    if (mode < 0)
        return usage();
    mio_group_config_default(&config);
    config.loops = loops;
    config.loop.backend = backend;
    config.pin = mode == MIO_GROUP_REUSEPORT_CPU;   /* it needs loop i on CPU i */
    err = mio_group_new(&config, &g);
    if (err == MIO_ENOSYS && !config.pin) {
        fprintf(stderr, "echo_server: backend %s not available\n", backend);
        return 77;
    }
    if (err == 0) {
        loops = mio_group_size(g);
        servers = calloc(loops, sizeof *servers);
        ctx = calloc(loops, sizeof *ctx);
        if (servers == NULL || ctx == NULL)
            err = MIO_ENOMEM;
    }
    for (i = 0; err == 0 && i < loops; i++) {
        servers[i].poll = mio_loop_poll(mio_group_loop(g, i));
        servers[i].listener = MIO_INVALID_FD;
        servers[i].accepting = true;    /* the group's listener, always */
        ctx[i] = &servers[i];
    }
    if (err == 0 && (err = mio_waker_new(servers[0].poll, WAKER, &waker)) == 0 &&
        (err = mio_group_listen(g, addr, 1024, mode, NULL)) >= 0 &&
        (err = mio_group_local_addr(g, err, &bound)) == 0 && deadline > 0)
        err = mio_loop_timeout(mio_group_loop(g, 0), &end_of_run,
                               (uint64_t)(deadline - clock_now_ns()), NULL);
    if (err < 0) {
        fprintf(stderr, "echo_server: -t %zu -m %s: %s\n", loops, mode_name, mio_strerror(err));
    } else {
        stop_on_signal(waker);
        mio_addr_format(&bound, name, sizeof name);
        printf("listening on %s backend %s loops %zu mode %s\n", name,
               mio_poll_backend(servers[0].poll), loops, mode_name);
        fflush(stdout);
        /* Loop 0 on this thread, which takes the signals; a wait that
         * failed for want of memory is tried again. */
        while ((err = mio_group_run(g, &h, ctx)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);
        if (err < 0)
            fprintf(stderr, "echo_server: %s\n", mio_strerror(err));
    }
    mio_waker_free(waker);
    mio_group_free(g);                  /* the loops closed their connections */
    for (i = 0; servers != NULL && i < loops; i++)
        free(servers[i].conns);
    free(servers);
    free(ctx);
    if (err < 0)
        return 1;
    printf("stopped\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct server s = { NULL, MIO_INVALID_FD, true, 0, 0, false, NULL, 0, 0, 0 };
    const char *backend = NULL, *text = "127.0.0.1:0", *mode = "handoff";
    int64_t deadline = 0;
    long loops = -1;
    char name[MIO_ADDR_STRLEN];
    mio_event events[EVENTS];
    mio_waker *waker = NULL;
    mio_addr addr;
    bool stop = false;
    size_t slot;
    int arg, err;

    /* Options, each with its value ("-b epoll"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && atof(value) > 0)
            deadline = clock_now_ns() + (int64_t)(atof(value) * 1e9);
        else if (strcmp(argv[arg], "-t") == 0 && (loops = atol(value)) >= 0)
            ;
        else if (strcmp(argv[arg], "-m") == 0)
            mode = value;
        else
            return usage();
    }
    if (arg < argc)
        text = argv[arg++];
    if (arg != argc || mio_addr_parse(text, &addr) < 0)
        return usage();
    if (loops >= 0)
        return serve_group(backend, (size_t)loops, mode, &addr, deadline);

    err = mio_poll_new_backend(backend, &s.poll);
    if (err == MIO_ENOSYS) {
        fprintf(stderr, "echo_server: backend %s not available\n", backend);
        return 77;
    }
    if (err == 0 && (err = mio_waker_new(s.poll, WAKER, &waker)) == 0 &&
        (err = mio_tcp_listen(&addr, 1024, &s.listener)) == 0 &&
        (err = mio_register(s.poll, s.listener, LISTENER, MIO_READABLE)) == 0)
        err = mio_local_addr(s.listener, &addr);
    if (err < 0) {
        fprintf(stderr, "echo_server: %s: %s\n", text, mio_strerror(err));
        stop = true;
    } else {
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(s.poll));
        fflush(stdout);
    }

    while (!stop) {
        /* The wait ends by the earliest of: the -n deadline, the retry of
         * stalled connections, the listener's rest. */
        int64_t now = clock_now_ns(), timeout = -1, at = deadline;
        int i, n;
        if (s.retry_at > 0 && (at == 0 || s.retry_at < at))
            at = s.retry_at;
        if (s.accept_at > 0 && (at == 0 || s.accept_at < at))
            at = s.accept_at;
        if (at > 0)
            timeout = at > now ? at - now : 0;
        if (deadline > 0 && now >= deadline)
            break;
        n = mio_poll_wait(s.poll, events, EVENTS, timeout);
        now = clock_now_ns();
        if (s.accept_at > 0 && now >= s.accept_at)
            listener_resume(&s);
        if (s.retry_at > 0 && now >= s.retry_at)
            retry_stalled(&s);
        if (n < 0 && error_is_transient(n))
            continue;   /* a signal (the waker reports it too), or short of memory */
        if (n < 0) {
            fprintf(stderr, "echo_server: wait: %s\n", mio_strerror(n));
            err = n;
            break;
        }
        for (i = 0; i < n; i++) {
            mio_token t = events[i].token;
            if (t == LISTENER)
                accept_all(&s);
            else if (t == WAKER)
                stop = true;
            /* A slot closed earlier in this batch may hold a new connection:
             * the event is then merely spurious, which the contract allows. */
            else if (s.conns[t - FIRST_CONN].fd != MIO_INVALID_FD)
                conn_ready(&s, t - FIRST_CONN, events[i].flags);
        }
    }

    stop_on_signal(NULL);               /* no wake after the waker is gone */
    for (slot = 0; slot < s.capacity; slot++)
        if (s.conns[slot].fd != MIO_INVALID_FD)
            conn_close(&s, slot);
    free(s.conns);
    if (s.listener != MIO_INVALID_FD)
        mio_close(s.listener);
    mio_waker_free(waker);
    mio_poll_free(s.poll);
    if (err < 0)
        return 1;
    printf("stopped\n");               /* the last line: all freed */
    return 0;
}
