/* A TCP port forwarder on the event loop: every connection accepted on ADDR
 * is relayed, both ways, to a new connection to UPSTREAM.
 *
 *   proxy [-b BACKEND] [-n SECONDS] [-k IDLE_SECONDS] [-s BYTES] [ADDR] UPSTREAM
 *
 * ADDR defaults to 127.0.0.1:0.  The first line of stdout is "listening on
 * ADDR:PORT backend NAME".  A relay that moves no byte either way for
 * IDLE_SECONDS (default 60; the upstream connect counts) is closed.  Each
 * direction of each relay buffers at most BYTES (default 65536).  It serves
 * until Ctrl-C or SIGTERM (on Windows: Ctrl-C or Ctrl-Break in its console;
 * see stop.h) or for SECONDS, then frees everything, prints "stopped" and
 * exits 0; a backend this build lacks exits 77.  Try it in front of
 * echo_server: `proxy 127.0.0.1:7000 ECHO_ADDR`, then `nc 127.0.0.1 7000`.
 *
 * What it shows: a non-blocking connect left alone until an event says it
 * settled, then checked with mio_socket_error; a bounded buffer per
 * direction and back-pressure both ways (a side whose peer cannot take more
 * is not read, and is read again once that peer drains, without waiting
 * for an event that edge triggering would not send); edge-triggered
 * sockets drained by the rule in mio.h (MIO_EAGAIN, or a short transfer
 * unless the event said MIO_READ_CLOSED); half-close passed on each way with
 * mio_shutdown; pointer tokens, and relays freed only at the end of the
 * tick because both sockets of one relay often come in the same batch; an
 * idle timer per relay that activity re-arms without touching the timer
 * wheel; transient errors retried on that timer, the others closing the
 * relay (errors.h); a listener that rests on a timer when descriptors run
 * out; Nagle off on both sides, so small writes are relayed at once. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"
#include "stop.h"

/* Tokens: the listener, the signal waker, and for each socket of a relay
 * the address of its struct side (a pointer is never 0 or 1). */
#define LISTENER 0
#define STOP     1

/* Bytes on their way from one socket to the other: buf[head..head+len),
 * wrapping at size.  Read into the room and written from the data with
 * mio_readv and mio_writev, at most two pieces each. */
struct ring {
    char *buf;
    size_t size, head, len;
};

/* One socket of a relay and what is known of it.  An edge-triggered event
 * comes once per rise of readiness, so the state between events is kept
 * here: `readable` stays true until a read drained the socket, also while
 * the socket is left unread because its buffer is full, so that reading
 * resumes as soon as there is room again, with no event needed. */
struct side {
    struct relay *relay;
    mio_fd fd;
    bool connected;     /* the upstream's connect settled (the client: always) */
    bool readable;      /* a read may find bytes or the end of stream */
    bool writable;      /* a write may find room */
    bool hup;           /* an event said MIO_READ_CLOSED: read on to the end */
    bool eof;           /* a read returned 0 */
    bool shut;          /* its write side is shut: the peer has its end of stream */
};

/* A client, its upstream connection, a buffer each way. */
struct relay {
    struct side client, upstream;
    struct ring up, down;       /* client to upstream, upstream to client */
    bool dead;                  /* closed; freed at the end of the tick */
    bool stalled;               /* a transient error: the timer retries */
    bool moved;                 /* bytes moved in this pump */
    mio_timeout timer;          /* the idle check, or the retry */
    int64_t active_at;          /* when bytes last moved */
    struct relay *prev, *next;  /* in the live list, or (next) the dead one */
};

struct proxy {
    mio_loop *loop;
    mio_fd listener;
    bool resting;               /* the listener is not watched for a while */
    mio_addr upstream;
    char upstream_name[MIO_ADDR_STRLEN];
    size_t buffer;              /* bytes per direction */
    uint64_t idle_ns;
    struct relay *live;         /* open relays */
    struct relay *dead;         /* closed this tick, freed by on_tick */
};

/* Timer arguments besides relays (whose argument is the relay). */
static char end_of_run, listener_wakes;

static int ring_data(const struct ring *g, mio_iovec iov[2])
{
    size_t first = g->size - g->head < g->len ? g->size - g->head : g->len;
    iov[0].base = g->buf + g->head;
    iov[0].len = first;
    iov[1].base = g->buf;
    iov[1].len = g->len - first;
    return iov[1].len > 0 ? 2 : 1;
}

static int ring_room(const struct ring *g, mio_iovec iov[2])
{
    size_t tail = (g->head + g->len) % g->size, room = g->size - g->len;
    size_t first = g->size - tail < room ? g->size - tail : room;
    iov[0].base = g->buf + tail;
    iov[0].len = first;
    iov[1].base = g->buf;
    iov[1].len = room - first;
    return iov[1].len > 0 ? 2 : 1;
}

static void ring_taken(struct ring *g, size_t n)
{
    g->len -= n;
    g->head = g->len == 0 ? 0 : (g->head + n) % g->size;
}

static mio_token token_of(struct side *s)
{
    return (mio_token)(uintptr_t)s;
}

/* Both sockets are deregistered and closed at once, so no later wait
 * reports them.  The memory is another matter: the batch being dispatched
 * may still hold an event for the other socket of this relay (a client and
 * its upstream are often ready together), and that event's token is a
 * pointer into this relay.  Freeing here would leave it pointing at freed
 * memory (or at a new relay that malloc put in the same place).  So the
 * relay is only marked dead, which makes on_ready ignore its events, and
 * on_tick frees it once the batch is over.  (The alternative is a table of
 * relays with a generation count in each token, checked on every event.) */
static void relay_close(struct proxy *p, struct relay *r)
{
    mio_poll *poll = mio_loop_poll(p->loop);

    if (r->dead)
        return;
    r->dead = true;
    mio_loop_clear_timeout(p->loop, r->timer);
    mio_deregister(poll, r->client.fd);
    mio_close(r->client.fd);
    if (r->upstream.fd != MIO_INVALID_FD) {
        mio_deregister(poll, r->upstream.fd);
        mio_close(r->upstream.fd);
    }
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        p->live = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->next = p->dead;
    p->dead = r;
}

/* A transient error (errors.h): nothing happened and no event may come to
 * say when to try again, so the relay's timer does, after RETRY_NS. */
static void relay_stall(struct proxy *p, struct relay *r)
{
    if (r->stalled)
        return;
    r->stalled = true;
    mio_loop_clear_timeout(p->loop, r->timer);
    if (mio_loop_timeout(p->loop, r, RETRY_NS, &r->timer) < 0)
        relay_close(p, r);          /* no timer: it would hang for good */
}

/* An I/O call failed: false if that closed the relay. */
static bool relay_failed(struct proxy *p, struct relay *r, int err)
{
    if (error_is_transient(err)) {
        relay_stall(p, r);
        return !r->dead;
    }
    relay_close(p, r);              /* a reset, a peer gone: nothing to relay to */
    return false;
}

/* Moves bytes from `from` through g to `to` until one of them has to wait;
 * false if the relay was closed. */
static bool flow(struct proxy *p, struct relay *r, struct side *from, struct side *to,
                 struct ring *g)
{
    mio_iovec iov[2];
    size_t asked;
    ssize_t n;
    int pieces;

    for (;;) {
        /* Out first: what is held makes room for more. */
        while (g->len > 0 && to->connected && to->writable) {
            pieces = ring_data(g, iov);
            asked = g->len;
            n = mio_writev(to->fd, iov, pieces);
            if (n == MIO_EAGAIN) {
                to->writable = false;           /* WRITABLE comes with room */
                break;
            }
            if (n < 0)
                return relay_failed(p, r, (int)n);
            ring_taken(g, (size_t)n);
            r->moved = true;
            if ((size_t)n < asked)
                to->writable = false;           /* short: full, as MIO_EAGAIN */
        }
        if (from->eof) {
            /* All of `from` went out: pass its end on.  The other direction
             * goes on: the peer may still answer. */
            if (g->len == 0 && to->connected && !to->shut) {
                to->shut = true;
                if ((n = mio_shutdown(to->fd, MIO_SHUT_WR)) < 0)
                    return relay_failed(p, r, (int)n);
            }
            return true;
        }
        /* Back-pressure: with the buffer full, `from` is not read (its
         * `readable` is kept) until `to` has taken some. */
        if (!from->readable || g->len == g->size)
            return true;
        pieces = ring_room(g, iov);
        asked = g->size - g->len;
        n = mio_readv(from->fd, iov, pieces);
        if (n == MIO_EAGAIN) {
            from->readable = false;
            return true;
        }
        if (n == 0) {
            from->eof = true;
            continue;
        }
        if (n < 0)
            return relay_failed(p, r, (int)n);
        g->len += (size_t)n;
        r->moved = true;
        /* A short read drained the stream: the next bytes bring an event,
         * so the read that would only say MIO_EAGAIN is skipped.  Not when
         * the end of stream came with these bytes: no event will say so. */
        if ((size_t)n < asked && !from->hup)
            from->readable = false;
    }
}

/* Both directions, as far as they go.  A relay whose ends both went
 * through (each side's write is shut) is done. */
static void relay_pump(struct proxy *p, struct relay *r)
{
    r->moved = false;
    if (!flow(p, r, &r->client, &r->upstream, &r->up) ||
        !flow(p, r, &r->upstream, &r->client, &r->down))
        return;
    if (r->client.shut && r->upstream.shut)
        relay_close(p, r);
    else if (r->moved)
        r->active_at = clock_now_ns();  /* the idle timer reads it when it fires */
}

/* An event on the upstream socket while its connect is in progress.  The
 * socket is neither written nor read before this: only now does
 * mio_socket_error tell how the connect went. */
static void upstream_settle(struct proxy *p, struct relay *r, uint32_t readiness)
{
    struct side *u = &r->upstream;
    mio_addr peer;
    int err = mio_socket_error(u->fd);

    if (err == 0 && mio_peer_addr(u->fd, &peer) == MIO_ENOTCONN) {
        /* Not settled: a spurious event, unless the socket is closed (its
         * error read by someone else first: libkqueue does). */
        if ((readiness & (MIO_ERROR | MIO_READ_CLOSED | MIO_WRITE_CLOSED)) == 0)
            return;
        err = MIO_ECONNREFUSED;
    }
    if (err != 0) {
        fprintf(stderr, "proxy: upstream %s: %s\n", p->upstream_name, mio_strerror(err));
        relay_close(p, r);              /* the client sees its connection end */
        return;
    }
    u->connected = u->readable = u->writable = true;
    mio_tcp_set_nodelay(u->fd, true);
    r->active_at = clock_now_ns();
    relay_pump(p, r);                   /* what the client sent meanwhile */
}

/* The listener is not watched for BACKOFF_NS, then registered again (which
 * reports the clients already queued at once). */
static void listener_rest(struct proxy *p)
{
    if (!p->resting)
        mio_deregister(mio_loop_poll(p->loop), p->listener);
    p->resting = true;
    if (mio_loop_timeout(p->loop, &listener_wakes, BACKOFF_NS, NULL) < 0 &&
        mio_register(mio_loop_poll(p->loop), p->listener, LISTENER, MIO_READABLE) == 0)
        p->resting = false;         /* no timer: watch it again now, not never */
}

static void listener_resume(struct proxy *p)
{
    if (mio_register(mio_loop_poll(p->loop), p->listener, LISTENER, MIO_READABLE) == 0)
        p->resting = false;
    else
        listener_rest(p);
}

/* A relay for an accepted client: the upstream connect starts, both
 * sockets are registered, the idle timer runs.  Returns what failed. */
static int relay_open(struct proxy *p, mio_fd fd)
{
    mio_poll *poll = mio_loop_poll(p->loop);
    struct relay *r = calloc(1, sizeof *r + 2 * p->buffer);
    int err;

    if (r == NULL) {
        mio_close(fd);
        return MIO_ENOMEM;
    }
    r->client = (struct side){ .relay = r, .fd = fd, .connected = true, .writable = true };
    r->upstream = (struct side){ .relay = r, .fd = MIO_INVALID_FD };
    r->up = (struct ring){ .buf = (char *)(r + 1), .size = p->buffer };
    r->down = (struct ring){ .buf = (char *)(r + 1) + p->buffer, .size = p->buffer };
    r->active_at = clock_now_ns();
    r->next = p->live;
    if (p->live != NULL)
        p->live->prev = r;
    p->live = r;
    mio_tcp_set_nodelay(fd, true);
    /* Edge, both ways, on both sockets: WRITABLE rises only after a write
     * said MIO_EAGAIN (or came up short), so it costs nothing meanwhile. */
    if ((err = mio_tcp_connect(&p->upstream, &r->upstream.fd)) < 0 ||
        (err = mio_register(poll, fd, token_of(&r->client), MIO_READABLE | MIO_WRITABLE)) < 0 ||
        (err = mio_register(poll, r->upstream.fd, token_of(&r->upstream),
                            MIO_READABLE | MIO_WRITABLE)) < 0 ||
        (err = mio_loop_timeout(p->loop, r, p->idle_ns, &r->timer)) < 0) {
        fprintf(stderr, "proxy: a client turned away (upstream %s): %s\n", p->upstream_name,
                mio_strerror(err));
        relay_close(p, r);
    }
    return err;
}

/* Accepts until MIO_EAGAIN, or until the listener rests: it never returns
 * with the listener watched but not drained, which an edge (native or
 * emulated) would not report again. */
static void accept_all(struct proxy *p)
{
    int skipped = 0;
    for (;;) {
        mio_fd fd;
        int err = mio_tcp_accept(p->listener, &fd, NULL);
        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* Out of descriptors: turn the queued clients away rather than
             * leave them hanging; if even that fails, rest. */
            if (mio_tcp_shed(p->listener) < 0)
                listener_rest(p);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;                   /* that client is gone: the next */
        if (err < 0) {
            fprintf(stderr, "proxy: accept: %s\n", mio_strerror(err));
            listener_rest(p);           /* try again later, without spinning */
            return;
        }
        err = relay_open(p, fd);
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* A client but no descriptor for its upstream: stop taking
             * clients for a while rather than accept and drop each. */
            listener_rest(p);
            return;
        }
    }
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct proxy *p = ctx;
    struct side *s;
    int err;

    if (token == LISTENER) {
        accept_all(p);
        return;
    }
    if (token == STOP) {
        mio_loop_shutdown(loop);
        return;
    }
    s = (struct side *)(uintptr_t)token;
    if (s->relay->dead)
        return;                         /* closed earlier in this batch */
    if (!s->connected) {
        upstream_settle(p, s->relay, readiness);
        return;
    }
    if (readiness & (MIO_READABLE | MIO_READ_CLOSED))
        s->readable = true;
    if (readiness & MIO_READ_CLOSED)
        s->hup = true;
    if (readiness & (MIO_WRITABLE | MIO_WRITE_CLOSED))
        s->writable = true;
    /* A reset can come while the socket is not being read or written (its
     * direction waits for the other side): the error says it now. */
    if ((readiness & MIO_ERROR) && (err = mio_socket_error(s->fd)) != 0 &&
        !relay_failed(p, s->relay, err))
        return;
    relay_pump(p, s->relay);
}

/* A relay's timer: a retry after a transient error, or the idle check.
 * Activity only writes active_at; the timer, set for the whole idle time,
 * finds out when it fires whether it came too early and is set again for
 * the rest.  Clearing and setting it on every read would cost more for the
 * same result. */
static void relay_timer(struct proxy *p, struct relay *r)
{
    int64_t idle;

    r->timer = 0;
    if (r->stalled) {
        r->stalled = false;
        relay_pump(p, r);
        if (r->dead || r->stalled)
            return;                     /* closed, or the retry is set again */
    }
    idle = clock_now_ns() - r->active_at;
    if (idle >= (int64_t)p->idle_ns)
        relay_close(p, r);              /* idle too long */
    else if (mio_loop_timeout(p->loop, r, p->idle_ns - (uint64_t)idle, &r->timer) < 0)
        relay_close(p, r);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct proxy *p = ctx;

    if (arg == &end_of_run)
        mio_loop_shutdown(loop);
    else if (arg == &listener_wakes)
        listener_resume(p);
    else if (!((struct relay *)arg)->dead)   /* a closed relay's timer is cleared */
        relay_timer(p, arg);
}

/* The end of every tick: no event of the batch is left to name the relays
 * closed during it. */
static void on_tick(mio_loop *loop, void *ctx)
{
    struct proxy *p = ctx;
    (void)loop;
    while (p->dead != NULL) {
        struct relay *r = p->dead;
        p->dead = r->next;
        free(r);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: proxy [-b BACKEND] [-n SECONDS] [-k IDLE_SECONDS] [-s BYTES] "
            "[ADDR] UPSTREAM\n");
    return 2;
}

int main(int argc, char **argv)
{
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout, .tick = on_tick };
    static struct proxy p;
    mio_loop_config config;
    char name[MIO_ADDR_STRLEN];
    double seconds = 0;
    mio_waker *waker = NULL;
    mio_addr addr;
    int arg, err;

    mio_loop_config_default(&config);
    p.buffer = 65536;
    p.idle_ns = 60 * MIO_SEC;
    /* Options, each with its value ("-k 30"), then [ADDR] UPSTREAM. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && (seconds = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-k") == 0 && atof(value) > 0)
            p.idle_ns = (uint64_t)(atof(value) * 1e9);
        else if (strcmp(argv[arg], "-s") == 0 && atol(value) > 0)
            p.buffer = (size_t)atol(value);
        else
            return usage();
    }
    if (argc - arg < 1 || argc - arg > 2 ||
        mio_addr_parse(argc - arg == 2 ? argv[arg] : "127.0.0.1:0", &addr) < 0 ||
        mio_addr_parse(argv[argc - 1], &p.upstream) < 0)
        return usage();
    mio_addr_format(&p.upstream, p.upstream_name, sizeof p.upstream_name);

    p.listener = MIO_INVALID_FD;
    err = mio_loop_new(&config, &p.loop);
    if (err == MIO_ENOSYS) {
        fprintf(stderr, "proxy: backend %s not available\n", config.backend);
        return 77;
    }
    /* Each step may fail; whatever was made before is undone below. */
    if (err == 0 &&
        (err = mio_tcp_listen(&addr, 1024, &p.listener)) == 0 &&
        (err = mio_register(mio_loop_poll(p.loop), p.listener, LISTENER, MIO_READABLE)) == 0 &&
        (err = mio_waker_new(mio_loop_poll(p.loop), STOP, &waker)) == 0 &&
        (seconds <= 0 || (err = mio_loop_timeout(p.loop, &end_of_run,
                                                 (uint64_t)(seconds * 1e9), NULL)) == 0) &&
        (err = mio_local_addr(p.listener, &addr)) == 0) {
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(mio_loop_poll(p.loop)));
        fflush(stdout);
        /* A wait that failed for want of memory is tried again. */
        while ((err = mio_loop_run(p.loop, &handler, &p)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);           /* no wake after the waker is gone */
    }

    while (p.live != NULL)
        relay_close(&p, p.live);
    on_tick(p.loop, &p);
    if (p.listener != MIO_INVALID_FD) {
        mio_deregister(mio_loop_poll(p.loop), p.listener);
        mio_close(p.listener);
    }
    mio_waker_free(waker);
    mio_loop_free(p.loop);
    if (err < 0) {
        fprintf(stderr, "proxy: %s\n", mio_strerror(err));
        return 1;
    }
    printf("stopped\n");               /* the last line: all freed */
    return 0;
}
