/* A TCP chat server: every line a client sends goes to every other client,
 * as "<id>: <line>".  Clients are told "* <id> joined" and "* <id> left".
 *
 *   chat_server [-b BACKEND] [-n SECONDS] [ADDR]       (ADDR: 127.0.0.1:0)
 *
 * The first line of stdout is "listening on ADDR:PORT backend NAME".  It runs
 * until Ctrl-C or SIGTERM (on Windows: Ctrl-C or Ctrl-Break in its console;
 * see stop.h) or for SECONDS, then frees everything, prints "stopped" and
 * exits 0; a backend this build lacks exits 77.  Try it with a few
 * `nc 127.0.0.1 PORT`.
 *
 * What it shows: one client's input fanned out to many outputs; an outbox
 * per client flushed at once and, when the socket is full, on WRITABLE;
 * a slow reader disconnected once its outbox passes a bound, so no client
 * can make the server buffer without limit; transient errors retried and
 * the others ending the client (errors.h), with the wait's timeout as the
 * clock for retries and for a listener resting after EMFILE. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"
#include "stop.h"

#define LISTENER    0           /* tokens: the listener, the signal waker, */
#define STOP        1           /* then client i is token FIRST_CLIENT + i */
#define FIRST_CLIENT 2
#define MAX_CLIENTS 256
#define MAX_LINE    1024        /* longer lines are cut into pieces */
#define MAX_OUTBOX  (1 << 20)   /* a client this far behind is dropped */

struct client {
    mio_fd fd;                  /* MIO_INVALID_FD: the slot is free */
    unsigned id;
    char line[MAX_LINE];        /* the line being received */
    size_t line_len;
    char *out;                  /* bytes for this client: out[head..len) */
    size_t head, len, cap;
    bool stalled;               /* a transient error: try again at retry_at */
};

static struct client clients[MAX_CLIENTS];
static mio_poll *poll_;
static unsigned next_id = 1;
static int64_t retry_at;        /* when stalled clients try again (0: none is) */
static int64_t accept_at;       /* when a resting listener is watched again (0: not resting) */

/* A transient error on c: it reads and writes again after RETRY_NS. */
static void client_stall(struct client *c)
{
    c->stalled = true;
    if (retry_at == 0)
        retry_at = clock_now_ns() + RETRY_NS;
}

/* Stops watching the listener for BACKOFF_NS (the wait's timeout brings it
 * back, see main). */
static void listener_rest(mio_fd listener)
{
    if (accept_at == 0)
        mio_deregister(poll_, listener);
    accept_at = clock_now_ns() + BACKOFF_NS;
}

static void listener_resume(mio_fd listener)
{
    accept_at = 0;
    if (mio_register(poll_, listener, LISTENER, MIO_READABLE) < 0)
        listener_rest(listener);
}

static void client_close(struct client *c)
{
    mio_deregister(poll_, c->fd);
    mio_close(c->fd);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = MIO_INVALID_FD;
}

/* Writes the outbox until it is empty or the socket is full (then the next
 * WRITABLE edge calls this again).  false if the client is gone. */
static bool client_flush(struct client *c)
{
    while (c->head < c->len) {
        ssize_t n = mio_write(c->fd, c->out + c->head, c->len - c->head);
        if (n == MIO_EAGAIN)
            return true;
        if (n < 0 && error_is_transient((int)n)) {
            client_stall(c);            /* keep the outbox, try again soon */
            return true;
        }
        if (n < 0)
            return false;               /* reset, broken pipe */
        c->head += (size_t)n;
    }
    c->head = c->len = 0;
    return true;
}

/* Queues text for c and tries to send it now.  false if c is gone. */
static bool client_send(struct client *c, const char *text, size_t len)
{
    if (c->len - c->head + len > MAX_OUTBOX)
        return false;                   /* too slow: let it go */
    if (c->len + len > c->cap && c->head > 0) {     /* room at the front? */
        memmove(c->out, c->out + c->head, c->len - c->head);
        c->len -= c->head;
        c->head = 0;
    }
    if (c->len + len > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        char *out;
        while (cap < c->len + len)
            cap *= 2;
        if ((out = realloc(c->out, cap)) == NULL)
            return false;
        c->out = out;
        c->cap = cap;
    }
    memcpy(c->out + c->len, text, len);
    c->len += len;
    return client_flush(c);
}

static void broadcast(const struct client *from, const char *text, size_t len);

static void client_leave(struct client *c)
{
    char note[64];
    unsigned id = c->id;
    client_close(c);
    broadcast(NULL, note, (size_t)snprintf(note, sizeof note, "* %u left\n", id));
}

/* Sends text to every client but `from` (NULL: to all); the clients that
 * cannot take it leave (which the others are told in turn). */
static void broadcast(const struct client *from, const char *text, size_t len)
{
    size_t i;
    for (i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (c->fd != MIO_INVALID_FD && c != from && !client_send(c, text, len))
            client_leave(c);
    }
}

/* Reads until MIO_EAGAIN, broadcasting each complete line. */
static void client_read(struct client *c)
{
    char buf[4096], msg[MAX_LINE + 32];
    for (;;) {
        ssize_t n = mio_read(c->fd, buf, sizeof buf), k;
        if (n == MIO_EAGAIN)
            return;
        if (n < 0 && error_is_transient((int)n)) {
            client_stall(c);
            return;
        }
        if (n <= 0) {
            client_leave(c);            /* end of stream or error */
            return;
        }
        for (k = 0; k < n; k++) {
            c->line[c->line_len++] = buf[k];
            if (buf[k] == '\n' || c->line_len == MAX_LINE) {
                int len = snprintf(msg, sizeof msg, "%u: %.*s%s", c->id, (int)c->line_len,
                                   c->line, buf[k] == '\n' ? "" : "\n");
                c->line_len = 0;
                broadcast(c, msg, (size_t)len);
                if (c->fd == MIO_INVALID_FD)
                    return;     /* dropped as too slow while others left */
            }
        }
    }
}

/* Accepts until MIO_EAGAIN, or until the listener rests: it never returns
 * with the listener watched but not drained, which an edge (native or
 * emulated) would not report again. */
static void accept_all(mio_fd listener)
{
    int skipped = 0;
    for (;;) {
        char note[64];
        mio_fd fd;
        size_t i;
        int err = mio_tcp_accept(listener, &fd, NULL);
        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* Out of descriptors: turn the queued clients away rather than
             * leave them hanging (an edge listener would not report them
             * again, a level one would spin); if even that fails, rest. */
            if (mio_tcp_shed(listener) < 0)
                listener_rest(listener);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;   /* the client left before we took it */
        if (err < 0) {
            fprintf(stderr, "chat_server: accept: %s\n", mio_strerror(err));
            listener_rest(listener);    /* try again later, without spinning */
            return;
        }
        for (i = 0; i < MAX_CLIENTS && clients[i].fd != MIO_INVALID_FD; i++)
            ;
        if (i == MAX_CLIENTS ||
            mio_register(poll_, fd, FIRST_CLIENT + i, MIO_READABLE | MIO_WRITABLE) < 0) {
            mio_close(fd);              /* full: turn it away */
            continue;
        }
        mio_tcp_set_nodelay(fd, true);  /* each line goes out at once */
        clients[i].fd = fd;
        clients[i].id = next_id++;
        broadcast(NULL, note, (size_t)snprintf(note, sizeof note, "* %u joined\n", clients[i].id));
    }
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *text = "127.0.0.1:0";
    mio_fd listener = MIO_INVALID_FD;
    mio_event events[64];
    char name[MIO_ADDR_STRLEN];
    int64_t deadline = 0;
    mio_waker *waker = NULL;
    mio_addr addr;
    bool stop = false;
    int arg, err, i;

    /* Options, each with its value ("-b epoll"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && atof(value) > 0)
            deadline = clock_now_ns() + (int64_t)(atof(value) * 1e9);
        else
            goto usage;
    }
    if (arg < argc)
        text = argv[arg++];
    if (arg != argc || mio_addr_parse(text, &addr) < 0)
        goto usage;
    for (i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = MIO_INVALID_FD;

    if ((err = mio_poll_new_backend(backend, &poll_)) == MIO_ENOSYS)
        return 77;
    if (err == 0 && (err = mio_waker_new(poll_, STOP, &waker)) == 0 &&
        (err = mio_tcp_listen(&addr, 128, &listener)) == 0 &&
        (err = mio_register(poll_, listener, LISTENER, MIO_READABLE)) == 0 &&
        (err = mio_local_addr(listener, &addr)) == 0) {
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(poll_));
        fflush(stdout);
    } else {
        fprintf(stderr, "chat_server: %s: %s\n", text, mio_strerror(err));
        stop = true;
    }

    while (!stop) {
        /* The wait ends by the earliest of: the -n deadline, the retry of
         * stalled clients, the listener's rest. */
        int64_t now = clock_now_ns(), timeout = -1, at = deadline;
        int n;
        if (retry_at > 0 && (at == 0 || retry_at < at))
            at = retry_at;
        if (accept_at > 0 && (at == 0 || accept_at < at))
            at = accept_at;
        if (at > 0)
            timeout = at > now ? at - now : 0;
        if (deadline > 0 && now >= deadline)
            break;
        n = mio_poll_wait(poll_, events, 64, timeout);
        now = clock_now_ns();
        if (accept_at > 0 && now >= accept_at)
            listener_resume(listener);
        if (retry_at > 0 && now >= retry_at) {
            retry_at = 0;
            for (i = 0; i < MAX_CLIENTS; i++) {
                struct client *c = &clients[i];
                if (c->fd == MIO_INVALID_FD || !c->stalled)
                    continue;
                c->stalled = false;
                if (!client_flush(c))
                    client_leave(c);
                else
                    client_read(c);
            }
        }
        if (n < 0 && !error_is_transient(n)) {
            fprintf(stderr, "chat_server: wait: %s\n", mio_strerror(n));
            err = n;
            break;
        }
        for (i = 0; i < n; i++) {
            mio_token t = events[i].token;
            struct client *c;
            if (t == LISTENER) {
                accept_all(listener);
                continue;
            }
            if (t == STOP) {
                stop = true;
                continue;
            }
            /* A slot freed earlier in this batch (or freed and taken again):
             * at worst a spurious event, which the calls below tolerate. */
            c = &clients[t - FIRST_CLIENT];
            if (c->fd != MIO_INVALID_FD && (events[i].flags & MIO_WRITABLE) && !client_flush(c))
                client_leave(c);
            if (c->fd != MIO_INVALID_FD && (events[i].flags & (MIO_READABLE | MIO_READ_CLOSED | MIO_ERROR)))
                client_read(c);
        }
    }

    stop_on_signal(NULL);               /* no wake after the waker is gone */
    for (i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd != MIO_INVALID_FD)
            client_close(&clients[i]);
    if (listener != MIO_INVALID_FD)
        mio_close(listener);
    mio_waker_free(waker);
    mio_poll_free(poll_);
    if (err < 0)
        return 1;
    printf("stopped\n");               /* the last line: all freed */
    return 0;

usage:
    fprintf(stderr, "usage: chat_server [-b epoll|poll|...] [-n SECONDS] [ADDR]\n");
    return 2;
}
