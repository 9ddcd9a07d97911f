/* An HTTP/1.1 "hello" server on the event loop, with keep-alive and
 * pipelining: every GET or HEAD is answered "Hello, world!".
 *
 *   http_server [-b BACKEND] [-n SECONDS] [-k IDLE_SECONDS] [-t LOOPS [-m MODE]] [ADDR]
 *
 * ADDR defaults to 127.0.0.1:0.  The first line of stdout is "listening on
 * ADDR:PORT backend NAME" (with " loops N mode MODE" after it under -t).
 * -t serves with a group of LOOPS event loops, one thread each (0: one per
 * CPU), running the same callbacks, each with its own connection table; the
 * group spreads the connections by MODE: handoff (the default), least,
 * exclusive, reuseport or cpu (docs/multicore.md).  A connection idle for
 * IDLE_SECONDS (default 5) is
 * closed.  It serves until Ctrl-C or SIGTERM (on Windows: Ctrl-C or
 * Ctrl-Break in its console; see stop.h) or for SECONDS, then frees
 * everything, prints "stopped" and exits 0; a backend this build lacks
 * exits 77.  Try `curl -v http://ADDR/ http://ADDR/` (one connection, two
 * requests).
 *
 * What it shows: the loop's `ready` and `timeout` callbacks; an idle timer
 * per connection, re-armed on each request and cleared on close; requests
 * parsed as they arrive, several per read when pipelined; replies queued and
 * flushed on WRITABLE, with parsing paused while the queue is full; the same
 * timer retrying after a transient error, while the others close the
 * connection (errors.h); a listener that rests on a timer when descriptors
 * run out; Nagle off, so a reply is not held back. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "stop.h"

#define LISTENER   0            /* tokens: the listener, the signal waker, */
#define STOP       1            /* then connection i is token FIRST_CONN + i */
#define FIRST_CONN 2
#define MAX_CONNS  1024
#define IN_SIZE    8192         /* a request head must fit */
#define OUT_SIZE   16384
#define END_OF_RUN ((void *)&max_idle)   /* the -n timer's argument */

static const char body[] = "Hello, world!\n";

struct conn {
    mio_fd fd;
    size_t token;
    mio_timeout idle;           /* closes the connection when it fires, */
    bool stalled;               /* or, when set, retries after a transient error */
    bool closing;               /* close once `out` is sent */
    char in[IN_SIZE];           /* bytes received, not yet parsed: in[0..in_len) */
    size_t in_len;
    char out[OUT_SIZE];         /* replies not yet sent: out[out_head..out_len) */
    size_t out_head, out_len;
};

struct server {
    mio_fd listener;
    bool resting;               /* the listener is not watched for a while */
    struct conn *conns[MAX_CONNS];
};

static uint64_t max_idle = 5 * MIO_SEC;
static char listener_wakes;     /* the resting listener's timer argument */

/* (Re)arms the connection's one timer: its idle limit, or with `stalled` a
 * retry after RETRY_NS (no event may come after a transient error: nothing
 * about the socket changed).  false if no timer could be had. */
static bool conn_timer(mio_loop *loop, struct conn *c, bool stalled)
{
    mio_loop_clear_timeout(loop, c->idle);
    c->idle = 0;
    c->stalled = stalled;
    return mio_loop_timeout(loop, c, stalled ? RETRY_NS : max_idle, &c->idle) == 0;
}

static void conn_close(mio_loop *loop, struct server *s, struct conn *c)
{
    mio_loop_clear_timeout(loop, c->idle);
    mio_deregister(mio_loop_poll(loop), c->fd);
    mio_close(c->fd);
    s->conns[c->token - FIRST_CONN] = NULL;
    free(c);
}

/* Whether the first n characters of a and b match, ignoring case as HTTP
 * does for header names and tokens.  b has n characters: a shorter a differs
 * at its NUL and is not read past it. */
static bool equal_ignoring_case(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}

/* The value of header `name` in the head (NULL if absent), its length in *len. */
static const char *header(const char *head, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p != NULL && p[2] != '\r') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (equal_ignoring_case(line, name, n) && line[n] == ':') {
            line += n + 1;
            while (*line == ' ' || *line == '\t')
                line++;
            *len = (size_t)(end - line);
            return line;
        }
        p = end;
    }
    return NULL;
}

static bool has_token(const char *value, size_t len, const char *token)
{
    size_t n = strlen(token), i;
    for (i = 0; i + n <= len; i++)
        if (equal_ignoring_case(value + i, token, n))
            return true;
    return false;
}

/* Appends a reply to `out`; false if it does not fit (try after a flush). */
static bool reply(struct conn *c, int status, const char *reason, bool with_body)
{
    int n = snprintf(c->out + c->out_len, OUT_SIZE - c->out_len,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s",
                     status, reason, status == 200 ? sizeof body - 1 : 0,
                     c->closing ? "Connection: close\r\n" : "",
                     status == 200 && with_body ? body : "");
    if (n < 0 || (size_t)n >= OUT_SIZE - c->out_len)
        return false;
    c->out_len += (size_t)n;
    return true;
}

/* Answers the complete requests in `in` while there is room for the replies.
 * Pipelined requests are answered in order; bodies (Content-Length) are
 * skipped once they have arrived. */
static void parse(struct conn *c)
{
    while (!c->closing) {
        char *end, method[16], version[16];
        const char *v;
        size_t head_len, body_len = 0, len, saved = c->out_len;
        bool bad;

        c->in[c->in_len] = '\0';
        if ((end = strstr(c->in, "\r\n\r\n")) == NULL) {
            if (c->in_len == IN_SIZE - 1) {     /* a head too large to buffer */
                c->closing = true;
                reply(c, 431, "Request Header Fields Too Large", false);
            }
            return;
        }
        head_len = (size_t)(end - c->in) + 4;
        if ((v = header(c->in, "Content-Length", &len)) != NULL)
            body_len = strtoul(v, NULL, 10);
        if (body_len > IN_SIZE - 1 - head_len) {
            c->closing = true;
            reply(c, 413, "Content Too Large", false);
            return;
        }
        if (c->in_len < head_len + body_len)
            return;                             /* the body is on its way */

        bad = sscanf(c->in, "%15s %*s %15s", method, version) != 2 ||
              strncmp(version, "HTTP/1.", 7) != 0;
        v = header(c->in, "Connection", &len);
        /* HTTP/1.1 keeps the connection unless told not to; 1.0 the reverse. */
        if (bad || (v != NULL && has_token(v, len, "close")) ||
            (strcmp(version, "HTTP/1.0") == 0 && (v == NULL || !has_token(v, len, "keep-alive"))))
            c->closing = true;
        if (!(bad ? reply(c, 400, "Bad Request", false)
              : strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
                  ? reply(c, 200, "OK", strcmp(method, "GET") == 0)
                  : reply(c, 405, "Method Not Allowed", false))) {
            c->out_len = saved;
            c->closing = false;
            return;                             /* `out` is full: after a flush */
        }
        c->in_len -= head_len + body_len;
        memmove(c->in, c->in + head_len + body_len, c->in_len);
    }
}

enum flushed { SENT, STALLED, DONE };

/* Sends what is queued.  DONE once the connection is done with (an error,
 * or everything sent on a closing connection); STALLED after a transient
 * error, with what is queued kept. */
static enum flushed flush(struct conn *c)
{
    while (c->out_head < c->out_len) {
        ssize_t n = mio_write(c->fd, c->out + c->out_head, c->out_len - c->out_head);
        if (n == MIO_EAGAIN)
            return SENT;                        /* WRITABLE brings us back */
        if (n < 0)
            return error_is_transient((int)n) ? STALLED : DONE;
        c->out_head += (size_t)n;
    }
    c->out_head = c->out_len = 0;
    return c->closing ? DONE : SENT;
}

/* Reads, answers and writes until the socket says MIO_EAGAIN both ways (or
 * the replies back up: then WRITABLE resumes it).  A read shorter than asked
 * drained the stream (mio.h): the next bytes bring a new event, so the read
 * that would only say MIO_EAGAIN is skipped, unless `readiness` says the
 * client's end came too. */
static void conn_pump(mio_loop *loop, struct server *s, struct conn *c, uint32_t readiness)
{
    bool drained = false;
    /* The end of stream came with the data: read on to see it. */
    bool to_the_end = (readiness & MIO_READ_CLOSED) != 0;

    for (;;) {
        enum flushed f;
        size_t asked;
        ssize_t n;
        parse(c);
        if ((f = flush(c)) == DONE) {
            conn_close(loop, s, c);
            return;
        }
        if (f == STALLED) {
            if (!conn_timer(loop, c, true))
                conn_close(loop, s, c);         /* no timer: cannot go on */
            return;
        }
        if (c->out_len > 0 || c->closing)
            return;                             /* waiting to send */
        if (c->in_len == IN_SIZE - 1)
            continue;                           /* parse() answers it */
        if (drained)
            return;
        asked = IN_SIZE - 1 - c->in_len;
        n = mio_read(c->fd, c->in + c->in_len, asked);
        if (n == MIO_EAGAIN)
            return;
        if (n < 0 && error_is_transient((int)n)) {
            if (!conn_timer(loop, c, true))
                conn_close(loop, s, c);
            return;
        }
        if (n <= 0) {
            conn_close(loop, s, c);             /* the client is done */
            return;
        }
        c->in_len += (size_t)n;
        drained = (size_t)n < asked && !to_the_end;
        /* Activity: the idle clock starts again. */
        if (!conn_timer(loop, c, false)) {
            conn_close(loop, s, c);
            return;
        }
    }
}

/* The listener is not watched for BACKOFF_NS, then registered again (which
 * reports the clients already queued at once). */
static void listener_rest(mio_loop *loop, struct server *s)
{
    if (!s->resting)
        mio_deregister(mio_loop_poll(loop), s->listener);
    s->resting = true;
    if (mio_loop_timeout(loop, &listener_wakes, BACKOFF_NS, NULL) < 0 &&
        mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
        s->resting = false;         /* no timer: watch it again now, not never */
}

static void listener_resume(mio_loop *loop, struct server *s)
{
    if (mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
        s->resting = false;
    else
        listener_rest(loop, s);     /* try again later */
}

/* Takes a new connection into the table, with its idle timer. */
static void conn_adopt(mio_loop *loop, struct server *s, mio_fd fd)
{
    struct conn *c;
    size_t i;

    for (i = 0; i < MAX_CONNS && s->conns[i] != NULL; i++)
        ;
    if (i == MAX_CONNS || (c = calloc(1, sizeof *c)) == NULL) {
        mio_close(fd);
        return;
    }
    c->fd = fd;
    c->token = FIRST_CONN + i;
    s->conns[i] = c;
    mio_tcp_set_nodelay(fd, true);      /* replies go out at once */
    if (mio_loop_timeout(loop, c, max_idle, &c->idle) < 0 ||
        mio_register(mio_loop_poll(loop), fd, c->token, MIO_READABLE | MIO_WRITABLE) < 0)
        conn_close(loop, s, c);
}

/* Accepts until MIO_EAGAIN, or until the listener rests: it never returns
 * with the listener watched but not drained, which an edge (native or
 * emulated) would not report again. */
static void accept_all(mio_loop *loop, struct server *s)
{
    int skipped = 0;
    for (;;) {
        mio_fd fd;
        int err = mio_tcp_accept(s->listener, &fd, NULL);
        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* Out of descriptors: turn the queued clients away rather than
             * leave them hanging (an edge listener would not report them
             * again, a level one would spin); if even that fails, rest. */
            if (mio_tcp_shed(s->listener) < 0)
                listener_rest(loop, s);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;   /* the client left before we took it */
        if (err < 0) {
            fprintf(stderr, "http_server: accept: %s\n", mio_strerror(err));
            listener_rest(loop, s);     /* try again later, without spinning */
            return;
        }
        conn_adopt(loop, s, fd);
    }
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct server *s = ctx;
    if (token == LISTENER)
        accept_all(loop, s);
    else if (token == STOP)
        mio_loop_shutdown(loop);
    else if (s->conns[token - FIRST_CONN] != NULL)
        conn_pump(loop, s, s->conns[token - FIRST_CONN], readiness);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct server *s = ctx;
    struct conn *c = arg;
    if (arg == END_OF_RUN) {
        mio_loop_shutdown(loop);
        return;
    }
    if (arg == &listener_wakes) {
        listener_resume(loop, s);
        return;
    }
    c->idle = 0;            /* fired: nothing to clear any more */
    if (!c->stalled)
        conn_close(loop, s, c);                 /* idle too long */
    else if (!conn_timer(loop, c, false))       /* the retry: idle clock again */
        conn_close(loop, s, c);
    else
        conn_pump(loop, s, c, MIO_READ_CLOSED);  /* read on */
}

/* ---- -t: the same callbacks on a group of loops ----
 * Each loop has a struct server of its own (its table; no listener: the
 * group accepts and hands it connections through `adopt`).  The signal
 * waker is on loop 0's poll, as is the -n timer: mio_loop_shutdown on any
 * loop of a group stops them all. */

static void group_adopt(mio_loop *loop, void *ctx, mio_fd fd, void *data)
{
    (void)data;
    conn_adopt(loop, ctx, fd);
}

static void group_stop(mio_loop *loop, void *ctx)
{
    struct server *s = ctx;
    size_t i;
    for (i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] != NULL)
            conn_close(loop, s, s->conns[i]);
}

static int serve_group(const char *backend, size_t loops, const char *mode_name,
                       const mio_addr *addr, double seconds)
{
    static const struct { const char *name; int mode; } modes[] = {
        { "handoff", MIO_GROUP_HANDOFF }, { "least", MIO_GROUP_HANDOFF_LEAST },
        { "exclusive", MIO_GROUP_EXCLUSIVE }, { "reuseport", MIO_GROUP_REUSEPORT },
        { "cpu", MIO_GROUP_REUSEPORT_CPU },
    };
    const mio_group_handler h = {
        .loop = { .ready = on_ready, .timeout = on_timeout },
        .stop = group_stop,
        .adopt = group_adopt,
    };
    mio_group_config config;
    struct server *servers = NULL;
    char name[MIO_ADDR_STRLEN];
    mio_waker *waker = NULL;
    mio_group *g = NULL;
    mio_loop *first;
    mio_addr bound;
    void **ctx = NULL;
    int mode = -1, err;
    size_t i;

    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode_name, modes[i].name) == 0)
            mode = modes[i].mode;
    if (mode < 0)
        return 2;
    mio_group_config_default(&config);
    config.loops = loops;
    config.loop.backend = backend;
    config.pin = mode == MIO_GROUP_REUSEPORT_CPU;   /* it needs loop i on CPU i */
    if ((err = mio_group_new(&config, &g)) == MIO_ENOSYS && !config.pin)
        return 77;
    if (err == 0) {
        loops = mio_group_size(g);
        servers = calloc(loops, sizeof *servers);
        ctx = calloc(loops, sizeof *ctx);
        if (servers == NULL || ctx == NULL)
            err = MIO_ENOMEM;
    }
    for (i = 0; err == 0 && i < loops; i++) {
        servers[i].listener = MIO_INVALID_FD;
        ctx[i] = &servers[i];
    }
    first = mio_group_loop(g, 0);
    if (err == 0 && (err = mio_waker_new(mio_loop_poll(first), STOP, &waker)) == 0 &&
        (err = mio_group_listen(g, addr, 1024, mode, NULL)) >= 0 &&
        (err = mio_group_local_addr(g, err, &bound)) == 0 && seconds > 0)
        err = mio_loop_timeout(first, END_OF_RUN, (uint64_t)(seconds * 1e9), NULL);
    if (err == 0) {
        stop_on_signal(waker);
        mio_addr_format(&bound, name, sizeof name);
        printf("listening on %s backend %s loops %zu mode %s\n", name,
               mio_poll_backend(mio_loop_poll(first)), loops, mode_name);
        fflush(stdout);
        /* Loop 0 on this thread, which takes the signals; a wait that
         * failed for want of memory is tried again. */
        while ((err = mio_group_run(g, &h, ctx)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);
    }
    if (err < 0)
        fprintf(stderr, "http_server: -t %zu -m %s: %s\n", loops, mode_name, mio_strerror(err));
    mio_waker_free(waker);
    mio_group_free(g);                  /* the loops closed their connections */
    free(servers);
    free(ctx);
    if (err < 0)
        return 1;
    printf("stopped\n");
    return 0;
}

int main(int argc, char **argv)
{
    static struct server s;
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    const char *text = "127.0.0.1:0", *mode = "handoff";
    mio_loop_config config = { 0 };
    long loops = -1;
    char name[MIO_ADDR_STRLEN];
    double seconds = 0;
    mio_waker *waker = NULL;
    mio_loop *loop;
    mio_addr addr;
    int arg, err;
    size_t i;

    /* Options, each with its value ("-k 0.5"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && (seconds = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-k") == 0 && atof(value) > 0)
            max_idle = (uint64_t)(atof(value) * 1e9);
        else if (strcmp(argv[arg], "-t") == 0 && (loops = atol(value)) >= 0)
            ;
        else if (strcmp(argv[arg], "-m") == 0)
            mode = value;
        else
            goto usage;
    }
    if (arg < argc)
        text = argv[arg++];
    if (arg != argc || mio_addr_parse(text, &addr) < 0)
        goto usage;
    if (loops >= 0 && (err = serve_group(config.backend, (size_t)loops, mode, &addr,
                                         seconds)) != 2)
        return err;
    if (loops >= 0)
        goto usage;

    s.listener = MIO_INVALID_FD;
    if ((err = mio_loop_new(&config, &loop)) == MIO_ENOSYS)
        return 77;
    if (err < 0) {
        fprintf(stderr, "http_server: %s\n", mio_strerror(err));
        return 1;
    }
    if ((err = mio_waker_new(mio_loop_poll(loop), STOP, &waker)) == 0 &&
        (err = mio_tcp_listen(&addr, 1024, &s.listener)) == 0 &&
        (err = mio_register(mio_loop_poll(loop), s.listener, LISTENER, MIO_READABLE)) == 0 &&
        (err = mio_local_addr(s.listener, &addr)) == 0 &&
        (seconds <= 0 || (err = mio_loop_timeout(loop, END_OF_RUN,
                                                 (uint64_t)(seconds * 1e9), NULL)) == 0)) {
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(mio_loop_poll(loop)));
        fflush(stdout);
        /* A wait that failed for want of memory is tried again. */
        while ((err = mio_loop_run(loop, &handler, &s)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);           /* no wake after the waker is gone */
    }
    if (err < 0)
        fprintf(stderr, "http_server: %s: %s\n", text, mio_strerror(err));

    for (i = 0; i < MAX_CONNS; i++)
        if (s.conns[i] != NULL)
            conn_close(loop, &s, s.conns[i]);
    if (s.listener != MIO_INVALID_FD)
        mio_close(s.listener);
    mio_waker_free(waker);
    mio_loop_free(loop);
    if (err < 0)
        return 1;
    printf("stopped\n");               /* the last line: all freed */
    return 0;

usage:
    fprintf(stderr, "usage: http_server [-b epoll|poll|...] [-n SECONDS] [-k IDLE_SECONDS] "
            "[-t LOOPS [-m handoff|least|exclusive|reuseport|cpu]] [ADDR]\n");
    return 2;
}
