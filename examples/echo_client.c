/* A load client for echo servers: CONNS connections each send a BYTES-long
 * message, wait for all of its echo, check every byte, and start over, until
 * SECONDS have passed.
 *
 *   echo_client [-b BACKEND] [-c CONNS] [-d SECONDS] [-s BYTES] ADDR
 *
 * Prints one line
 *   requests/s N  p50 X us  p99 Y us  errors E  bytes verified B
 * and exits 1 if a connection failed or an echo differed (2: bad usage,
 * 77: the backend is not available). */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define EVENTS 256
#define GRACE_NS (10 * MIO_SEC)     /* for the last round trips after SECONDS */

/* Latencies in nanoseconds go into a log-linear histogram: values below 128
 * have a bucket each, above that every power of two is split in 64, so a
 * percentile is right to within 1/64 in constant memory.  Values are capped
 * at 2^41 ns (36 minutes). */
#define SUB_BITS 6
#define SUB (1u << SUB_BITS)
#define MAX_BITS 41
#define BUCKETS ((MAX_BITS - SUB_BITS) * SUB + SUB)

enum state { CONNECTING, RUNNING, DONE };

struct conn {
    mio_fd fd;
    enum state state;
    unsigned char *msg;         /* the message in flight */
    size_t sent, received;
    uint64_t seq;               /* requests so far, stamped into each message */
    int64_t started;            /* when the current request began */
};

struct client {
    mio_poll *poll;
    struct conn *conns;
    size_t nconns, open, size;
    int64_t stop_at;            /* no new request starts after this */
    uint64_t requests, verified, errors;
    uint64_t histogram[BUCKETS];
};

static unsigned char scratch[65536];

static size_t bucket_of(uint64_t ns)
{
    unsigned top = 0;
    if (ns >= (uint64_t)1 << MAX_BITS)
        ns = ((uint64_t)1 << MAX_BITS) - 1;
    if (ns < 2 * SUB)
        return (size_t)ns;
    while (ns >> (top + 1))
        top++;
    return (size_t)(top - SUB_BITS) * SUB + (size_t)(ns >> (top - SUB_BITS));
}

/* The middle of a bucket, in microseconds. */
static double bucket_us(size_t i)
{
    unsigned shift;
    if (i < 2 * SUB)
        return (double)i / 1e3;
    shift = (unsigned)(i / SUB) - 1;
    return ((double)((uint64_t)(i % SUB + SUB) << shift) + (double)((uint64_t)1 << shift) / 2) / 1e3;
}

static double percentile_us(const struct client *cl, double p)
{
    uint64_t rank = (uint64_t)(p * (double)cl->requests + 0.999999), seen = 0;
    size_t i;
    for (i = 0; i < BUCKETS; i++) {
        seen += cl->histogram[i];
        if (seen >= rank && seen > 0)
            return bucket_us(i);
    }
    return 0;
}

static void conn_end(struct client *cl, struct conn *c, const char *why, int err)
{
    if (why != NULL) {
        fprintf(stderr, "echo_client: connection %zu: %s%s%s\n", (size_t)(c - cl->conns),
                why, err ? ": " : "", err ? mio_strerror(err) : "");
        cl->errors++;
    }
    if (c->fd != MIO_INVALID_FD) {
        mio_deregister(cl->poll, c->fd);
        mio_close(c->fd);
        c->fd = MIO_INVALID_FD;
    }
    c->state = DONE;
    cl->open--;
}

/* Each message differs from the last by its first bytes (the request count). */
static void request_start(struct client *cl, struct conn *c, int64_t now)
{
    uint64_t seq = ++c->seq;
    size_t i;
    for (i = 0; i < cl->size && i < sizeof seq; i++, seq >>= 8)
        c->msg[i] = (unsigned char)seq;
    c->sent = c->received = 0;
    c->started = now;
}

/* Writes what is left of the message and reads its echo until a read says
 * MIO_EAGAIN; the write has then either finished or said MIO_EAGAIN too, so
 * both directions are armed for their next edge.  Reading goes on while
 * writing is blocked: the server stops reading a client that does not read. */
static void conn_ready(struct client *cl, struct conn *c)
{
    for (;;) {
        ssize_t n;
        size_t want;
        while (c->sent < cl->size) {
            n = mio_write(c->fd, c->msg + c->sent, cl->size - c->sent);
            if (n == MIO_EAGAIN)
                break;
            if (n < 0) {
                conn_end(cl, c, "write", (int)n);
                return;
            }
            c->sent += (size_t)n;
        }
        want = cl->size - c->received;
        n = mio_read(c->fd, scratch, want < sizeof scratch ? want : sizeof scratch);
        if (n == MIO_EAGAIN)
            return;
        if (n <= 0) {
            conn_end(cl, c, n == 0 ? "closed by the server" : "read", (int)n);
            return;
        }
        if (memcmp(scratch, c->msg + c->received, (size_t)n) != 0) {
            conn_end(cl, c, "echo differs from what was sent", 0);
            return;
        }
        c->received += (size_t)n;
        cl->verified += (uint64_t)n;
        if (c->received == cl->size) {
            int64_t now = clock_now_ns();
            cl->histogram[bucket_of((uint64_t)(now - c->started))]++;
            cl->requests++;
            if (now >= cl->stop_at) {
                conn_end(cl, c, NULL, 0);       /* done, cleanly */
                return;
            }
            request_start(cl, c, now);
        }
    }
}

/* A connect in progress reports WRITABLE (or an error) once it is done. */
static void conn_connected(struct client *cl, struct conn *c, uint32_t flags)
{
    int err;
    if ((flags & (MIO_WRITABLE | MIO_ERROR | MIO_WRITE_CLOSED)) == 0)
        return;                         /* spurious */
    if ((err = mio_socket_error(c->fd)) != 0) {
        conn_end(cl, c, "connect", err);
        return;
    }
    mio_tcp_set_nodelay(c->fd, true);
    c->state = RUNNING;
    request_start(cl, c, clock_now_ns());
    conn_ready(cl, c);
}

static int usage(void)
{
    fprintf(stderr, "usage: echo_client [-b BACKEND] [-c CONNS] [-d SECONDS] [-s BYTES] ADDR\n");
    return 2;
}

int main(int argc, char **argv)
{
    static struct client cl;            /* static: the histogram is large */
    const char *backend = NULL;
    double seconds = 3, elapsed;
    long conns = 10, size = 64;
    mio_event events[EVENTS];
    int64_t start, give_up;
    mio_addr addr;
    size_t i, j;
    int arg, err;

    /* Options, each with its value ("-c 50"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            backend = value;
        else if (strcmp(argv[arg], "-c") == 0 && (conns = atol(value)) > 0)
            continue;
        else if (strcmp(argv[arg], "-d") == 0 && (seconds = atof(value)) > 0)
            continue;
        else if (strcmp(argv[arg], "-s") == 0 && (size = atol(value)) > 0)
            continue;
        else
            return usage();
    }
    if (arg + 1 != argc || mio_addr_parse(argv[arg], &addr) < 0)
        return usage();

    err = mio_poll_new_backend(backend, &cl.poll);
    if (err == MIO_ENOSYS) {
        fprintf(stderr, "echo_client: backend %s not available\n", backend);
        return 77;
    }
    if (err < 0 || (cl.conns = calloc((size_t)conns, sizeof *cl.conns)) == NULL) {
        fprintf(stderr, "echo_client: %s\n", mio_strerror(err < 0 ? err : MIO_ENOMEM));
        mio_poll_free(cl.poll);
        return 1;
    }
    cl.size = (size_t)size;
    start = clock_now_ns();
    cl.stop_at = start + (int64_t)(seconds * 1e9);
    give_up = cl.stop_at + GRACE_NS;

    /* Every connection starts at once; the poll tells us when each is up. */
    for (i = 0; i < (size_t)conns; i++) {
        struct conn *c = &cl.conns[i];
        c->fd = MIO_INVALID_FD;
        c->state = CONNECTING;
        cl.nconns++;
        cl.open++;
        if ((c->msg = malloc(cl.size)) == NULL) {
            conn_end(&cl, c, "message", MIO_ENOMEM);
            continue;
        }
        for (j = 0; j < cl.size; j++)
            c->msg[j] = (unsigned char)(i * 131 + j * 7 + 1);
        if ((err = mio_tcp_connect(&addr, &c->fd)) < 0 ||
            (err = mio_register(cl.poll, c->fd, i, MIO_READABLE | MIO_WRITABLE)) < 0)
            conn_end(&cl, c, "connect", err);
    }

    while (cl.open > 0) {
        int n;
        int64_t left = give_up - clock_now_ns();
        if (left <= 0) {
            for (i = 0; i < cl.nconns; i++)
                if (cl.conns[i].state != DONE)
                    conn_end(&cl, &cl.conns[i], "no echo in time", 0);
            break;
        }
        n = mio_poll_wait(cl.poll, events, EVENTS, left);
        if (n < 0 && n != MIO_EINTR) {
            fprintf(stderr, "echo_client: wait: %s\n", mio_strerror(n));
            cl.errors++;
            break;
        }
        for (j = 0; j < (size_t)(n > 0 ? n : 0); j++) {
            struct conn *c = &cl.conns[events[j].token];
            if (c->state == CONNECTING)
                conn_connected(&cl, c, events[j].flags);
            else if (c->state == RUNNING)
                conn_ready(&cl, c);
        }
    }
    elapsed = (double)(clock_now_ns() - start) / 1e9;

    printf("requests/s %.0f  p50 %.1f us  p99 %.1f us  errors %llu  bytes verified %llu\n",
           (double)cl.requests / elapsed, percentile_us(&cl, 0.50), percentile_us(&cl, 0.99),
           (unsigned long long)cl.errors, (unsigned long long)cl.verified);
    for (i = 0; i < cl.nconns; i++) {
        if (cl.conns[i].state != DONE)
            conn_end(&cl, &cl.conns[i], NULL, 0);
        free(cl.conns[i].msg);
    }
    free(cl.conns);
    mio_poll_free(cl.poll);
    return cl.errors > 0 ? 1 : 0;
}
