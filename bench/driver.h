/* The benchmark driver shared by every program under bench/: option parsing,
 * the clock, medians, socket pairs, and the dispatch workload's main loop.
 *
 * Every program takes options as key=value words and prints one result line
 *   <workload> lib=<name> key=value ...
 * which bench/run.py collects into bench/RESULTS.md. */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Options every workload understands; a program reads the ones it needs. */
struct bench_opts {
    long n;             /* dispatch: socket pairs */
    long a;             /* dispatch: active chains */
    long w;             /* dispatch: writes after the first a */
    int timers;         /* dispatch: a re-armed idle timeout per fd */
    int runs;           /* measured runs; the median is reported */
    const char *backend;/* libmio backend (NULL: the best) */
    int level;          /* libmio and hand-written epoll: level trigger */
    int port;           /* echo: the server's port on 127.0.0.1 */
    int http;           /* echo servers: answer HTTP/1.1 keep-alive instead */
    long loops;         /* group: loops (0: one per CPU) */
    const char *mode;   /* group: reuseport|cpu|exclusive|handoff|least */
    int pin;            /* group: loop i on CPU i */
    long pingpong;      /* group: round trips between loops 0 and 1 instead of serving */
    long conns;         /* connects: connections in all */
    long concurrency;   /* connects: open at once */
    long size;          /* connects: bytes each sends and gets back */
};

int64_t bench_now_ns(void);
/* Parses key=value words into o (defaults first); exits 2 on a bad word. */
void bench_parse(int argc, char **argv, struct bench_opts *o);
void bench_die(const char *what, int err);   /* err: -errno or 0 */
/* Sorts v in place and returns its median. */
double bench_median(double *v, int count);
/* A random double in [0, 1), the same sequence in every program. */
double bench_random(void);
/* Lifts RLIMIT_NOFILE to its hard limit; exits when fds are more than that. */
void bench_need_fds(long fds);

/* ---- dispatch: libevent's test/bench.c and libev's benchmark ----
 * n non-blocking stream socket pairs; the read end of pair i is fds[2i], the
 * write end fds[2i+1].  A run writes one byte into a pairs spread evenly; each
 * byte read is passed on, one write of one byte, to the next pair, until w
 * more writes were made.  Setup (registering the n read ends, with a timeout
 * each under timers=1) and dispatch are timed apart. */
struct dispatch {
    const struct bench_opts *o;
    int *fds;
    int drain;          /* edge-triggered: read all that is there */
    long count;         /* bytes read */
    long fired;         /* bytes written */
    long writes;        /* writes still to make */
};

/* Called by each library's readable callback for pair idx.  Level-triggered
 * programs read one byte, as libevent's bench does (another byte waiting
 * makes another event); edge-triggered ones must empty the socket, so they
 * read up to 16 bytes and pass each on by itself.  While no two chains meet
 * in one pair, which is all the time unless a is close to n, both make one
 * read and one write per event. */
static inline void dispatch_readable(struct dispatch *d, long idx)
{
    char buf[16];
    ssize_t r, i;
    long next = idx + 1 == d->o->n ? 0 : idx + 1;

    do {
        r = read(d->fds[2 * idx], buf, d->drain ? sizeof buf : 1);
        for (i = 0; i < r; i++) {
            d->count++;
            if (d->writes > 0 && write(d->fds[2 * next + 1], "e", 1) == 1) {
                d->writes--;
                d->fired++;
            }
        }
    } while (r == (ssize_t)sizeof buf);
}

/* The timeout of the timers=1 variant: 10 to 11 s, so it never fires. */
static inline double dispatch_timeout_s(void) { return 10.0 + bench_random(); }

struct dispatch_impl {
    const char *lib;
    int supports_timers;
    /* Creates the loop; d->fds are open, d->drain says whether the program
     * is edge-triggered (!o->level), which a level-only library clears. */
    void *(*init)(struct dispatch *d);
    /* Registers every read end (first run) or removes and registers again. */
    void (*setup)(void *ctx, int first);
    /* Runs the loop until d->count == d->fired. */
    void (*run)(void *ctx);
    void (*fini)(void *ctx);
};

/* Parses, runs o.runs timed setup+dispatch rounds and prints
 *   dispatch lib=L n= a= w= timers= runs= setup_us= dispatch_us= event_ns= */
int dispatch_main(int argc, char **argv, const struct dispatch_impl *impl);

/* ---- echo: a TCP echo server per library, loaded by bench_echo_client ----
 * Every server but libuv's (which reads through its own streams) moves bytes
 * with echo_io: reads of ECHO_BUF bytes, each written straight back. */
#define ECHO_BUF 65536

struct echo_conn {
    int fd;
    size_t off, len;            /* bytes of buf still to write back */
    unsigned matched;           /* http: bytes of "\r\n\r\n" seen so far */
    char buf[ECHO_BUF];
};

/* http=1: every server answers each request (a GET without body, as wrk
 * sends) with the same short keep-alive response instead of echoing. */
extern int echo_http;
/* http: counts the requests completed by the n bytes at p; *matched carries
 * the part of a request's end seen so far from one call to the next. */
size_t http_requests(unsigned *matched, const char *p, size_t n);
/* http: k responses back to back, in a buffer of the driver's (NULL if k is
 * more than it holds); *len is their length. */
const char *http_responses(size_t k, size_t *len);

/* Parses the options (port=, http=) and ignores SIGPIPE; returns the port. */
int echo_start(int argc, char **argv);
/* A non-blocking listener on 127.0.0.1:port; exits on failure. */
int echo_listen(int port);
/* One accepted connection, non-blocking with TCP_NODELAY; -1 when none. */
int echo_accept(int listener);
/* Serves c until it would block: 0 to wait for readable, 1 for writable
 * (part of an echo is still to go), -1 when the peer is gone (close it). */
int echo_io(struct echo_conn *c);

/* ---- timers: the shapes of bench/timers_mio.c for the peers ----
 * set_cancel: SET_CANCEL timeouts of random delays (1 ms .. 10 s) armed, then
 * half of them cancelled in random order.  million_timers: libuv's shape,
 * MILLION timeouts, the delay 1 ms more every 1000, run until all fired.
 * Handles are initialised before the clock starts: a set is the arming. */
struct timers_plan {
    size_t n;
    uint64_t *delay_ns;     /* n random delays */
    size_t *order;          /* a random permutation: the cancel order */
};
/* The same delays and order as timers_mio's (same generator, same seed). */
void timers_plan_make(struct timers_plan *plan, size_t n);
/* Arguments [SET_CANCEL [MILLION]], default 1000000 each. */
void timers_args(int argc, char **argv, size_t *set_cancel, size_t *million);
int64_t bench_cpu_ns(void);

/* ---- wake: cross-thread wake-ups ----
 * ping-pong: two threads, each with its own loop, wake each other in turn, n
 * round trips (rate and latency).  flood: one thread wakes the other's loop
 * n times as fast as it can (wakes coalesce; the wake call's rate). */
struct wake_impl {
    const char *lib;
    /* A loop with a wake-up source, owned by the thread that waits on it. */
    void *(*side_new)(void);
    /* From any thread. */
    void (*wake)(void *side);
    /* Blocks until the side was woken at least once since the last wait. */
    void (*wait)(void *side);
};

/* Options n= (round trips, default 100000) and runs=; prints
 *   wake lib=L n= runs= rtt_p50_ns= rtt_p99_ns= pingpong_per_s= flood_per_s= */
int wake_main(int argc, char **argv, const struct wake_impl *impl);

#endif
