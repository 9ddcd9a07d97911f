/* The group of loops under load (bench/run.py's multi-core section).
 *
 *   group_mio port=P loops=N mode=reuseport|cpu|exclusive|handoff|least [pin=1] [http=1]
 *
 * serves echo (or the HTTP response, http=1) with N loops, the connections
 * spread the way mode says (cpu: MIO_GROUP_REUSEPORT_CPU, which pins loop i
 * to CPU i).  The main thread waits for signals: SIGUSR1 prints
 *   group lib=mio loops=N mode=M served=a,b,...
 *     ticks=t0,t1,... cpu_us=U
 * (connections each loop adopted so far, the ticks, that is waits, each
 * loop made, and the process's user + system CPU time from getrusage),
 * SIGTERM or SIGINT prints it once more and stops.
 *
 *   group_mio pingpong=N [runs=R] [pin=1]
 *
 * sends a message from loop 0 to loop 1 with mio_group_send, which sends
 * it back; N round trips per run, and prints
 *   pingpong lib=mio n=N runs=R rtt_p50_ns= rtt_p99_ns=
 * (medians over the runs). */
#include "driver.h"
#include "mio.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#define MAX_LOOPS 64

/* A loop's own: the connections it adopted, and its closed connections'
 * memory, used again (a 64 KiB buffer zeroed per connection would cost
 * more than the connection's system calls). */
struct loop_stat {
    atomic_long served;
    atomic_long ticks;
    struct spare *spare;
    char pad[64 - 2 * sizeof(atomic_long) - sizeof(void *)];
};

struct spare {
    struct spare *next;
};

static struct loop_stat stats[MAX_LOOPS];
static void *loop_ctx[MAX_LOOPS];
static mio_group *group;
static size_t loops;
static const char *mode_name;

/* ---- echo ---- */

static void adopt(mio_loop *l, void *arg, mio_fd fd, void *data)
{
    struct loop_stat *st = arg;
    struct echo_conn *c;
    int one = 1, err;

    (void)data;
    if (st->spare != NULL) {
        c = (struct echo_conn *)(void *)st->spare;
        st->spare = st->spare->next;
    } else if ((c = malloc(sizeof *c)) == NULL) {
        bench_die("out of memory", 0);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->off = c->len = 0;
    c->matched = 0;
    err = mio_register(mio_loop_poll(l), fd, (mio_token)c, MIO_READABLE);
    if (err < 0)
        bench_die("mio_register", err);
    atomic_fetch_add_explicit(&st->served, 1, memory_order_relaxed);
}

static void ready(mio_loop *l, void *arg, mio_token token, uint32_t readiness)
{
    struct loop_stat *st = arg;
    struct echo_conn *c = (struct echo_conn *)token;
    int state = echo_io(c);

    if (state < 0) {
        struct spare *s = (struct spare *)(void *)c;
        mio_deregister(mio_loop_poll(l), c->fd);
        mio_close(c->fd);
        s->next = st->spare;
        st->spare = s;
    } else if (state == 1) {
        mio_reregister(mio_loop_poll(l), c->fd, token, MIO_READABLE | MIO_WRITABLE);
    } else if (readiness & MIO_WRITABLE) {
        mio_reregister(mio_loop_poll(l), c->fd, token, MIO_READABLE);
    }
}

static void tick(mio_loop *l, void *arg)
{
    struct loop_stat *st = arg;
    (void)l;
    atomic_store_explicit(&st->ticks, atomic_load_explicit(&st->ticks, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void print_stats(void)
{
    struct rusage ru;
    long cpu_us;
    size_t i;

    getrusage(RUSAGE_SELF, &ru);
    cpu_us = (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
             ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    printf("group lib=mio loops=%zu mode=%s served=", loops, mode_name);
    for (i = 0; i < loops; i++)
        printf("%s%ld", i ? "," : "", atomic_load(&stats[i].served));
    printf(" ticks=");
    for (i = 0; i < loops; i++)
        printf("%s%ld", i ? "," : "", atomic_load(&stats[i].ticks));
    printf(" cpu_us=%ld\n", cpu_us);
    fflush(stdout);
}

static int mode_of(const char *name)
{
    static const struct { const char *name; int mode; } modes[] = {
        { "reuseport", MIO_GROUP_REUSEPORT }, { "cpu", MIO_GROUP_REUSEPORT_CPU },
        { "exclusive", MIO_GROUP_EXCLUSIVE }, { "handoff", MIO_GROUP_HANDOFF },
        { "least", MIO_GROUP_HANDOFF_LEAST },
    };
    size_t i;
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(name, modes[i].name) == 0)
            return modes[i].mode;
    fprintf(stderr, "bench: unknown mode %s\n", name);
    exit(2);
}

static int serve(const struct bench_opts *o)
{
    static const mio_group_handler h = { { ready, NULL, NULL, NULL, tick }, NULL, NULL, adopt };
    mio_group_config c;
    mio_addr addr;
    sigset_t set;
    char text[64];
    int mode = mode_of(o->mode), err, sig;

    /* Signals come to this thread only: the group's threads block them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    mio_group_config_default(&c);
    c.loops = (size_t)o->loops;
    c.pin = o->pin || mode == MIO_GROUP_REUSEPORT_CPU;
    c.loop.backend = o->backend;
    err = mio_group_new(&c, &group);
    if (err < 0)
        bench_die("mio_group_new", err);
    loops = mio_group_size(group);
    if (loops > MAX_LOOPS)
        bench_die("too many loops", 0);
    mode_name = o->mode;
    snprintf(text, sizeof text, "127.0.0.1:%d", o->port);
    if ((err = mio_addr_parse(text, &addr)) < 0 ||
        (err = mio_group_listen(group, &addr, 1024, mode, NULL)) < 0)
        bench_die("mio_group_listen", err);
    for (size_t i = 0; i < loops; i++)
        loop_ctx[i] = &stats[i];
    err = mio_group_start(group, &h, loop_ctx);
    if (err < 0)
        bench_die("mio_group_start", err);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            print_stats();
            continue;
        }
        break;
    }
    mio_group_shutdown(group);
    err = mio_group_join(group);
    print_stats();
    mio_group_free(group);
    return err < 0 ? 1 : 0;
}

/* ---- ping-pong between two loops ---- */

static long rounds, done_rounds;
static int64_t sent_at;
static double *rtt;

static void ping_notify(mio_loop *l, void *ctx, void *msg)
{
    int err;

    (void)ctx;
    if (mio_loop_index(l) == 1) {
        err = mio_group_send(group, 0, msg);        /* back */
    } else {
        rtt[done_rounds++] = (double)(bench_now_ns() - sent_at);
        if (done_rounds == rounds) {
            mio_group_shutdown(group);
            return;
        }
        sent_at = bench_now_ns();
        err = mio_group_send(group, 1, msg);
    }
    if (err < 0)
        bench_die("mio_group_send", err);
}

static int ping_start(mio_loop *l, void *ctx)
{
    (void)ctx;
    if (mio_loop_index(l) == 0) {
        sent_at = bench_now_ns();
        return mio_group_send(group, 1, NULL);
    }
    return 0;
}

static int pingpong(const struct bench_opts *o)
{
    static const mio_group_handler h = { { NULL, ping_notify, NULL, NULL, NULL }, ping_start,
                                         NULL, NULL };
    mio_group_config c;
    double *p50, *p99;
    int run, err;

    mio_group_config_default(&c);
    c.loops = 2;
    c.pin = o->pin;
    c.loop.backend = o->backend;
    err = mio_group_new(&c, &group);
    if (err < 0)
        bench_die("mio_group_new", err);
    rounds = o->pingpong;
    rtt = malloc(sizeof *rtt * (size_t)rounds);
    p50 = malloc(sizeof *p50 * (size_t)o->runs);
    p99 = malloc(sizeof *p99 * (size_t)o->runs);
    if (rtt == NULL || p50 == NULL || p99 == NULL)
        bench_die("out of memory", 0);
    for (run = 0; run < o->runs; run++) {
        done_rounds = 0;
        err = mio_group_run(group, &h, NULL);
        if (err < 0)
            bench_die("mio_group_run", err);
        bench_median(rtt, (int)rounds);     /* sorts */
        p50[run] = rtt[rounds / 2];
        p99[run] = rtt[rounds * 99 / 100];
    }
    printf("pingpong lib=mio n=%ld runs=%d rtt_p50_ns=%.0f rtt_p99_ns=%.0f\n", rounds, o->runs,
           bench_median(p50, o->runs), bench_median(p99, o->runs));
    mio_group_free(group);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;

    echo_start(argc, argv);
    bench_parse(argc, argv, &o);
    return o.pingpong > 0 ? pingpong(&o) : serve(&o);
}
