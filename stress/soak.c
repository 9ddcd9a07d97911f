/* Soak: a mixed workload in one process for a set time, watching memory and
 * descriptors.  One event loop runs:
 *   - TCP connections churning on loopback: CONNS at a time, each connects,
 *     sends a request of 1..4096 bytes, reads the echo back (checked byte by
 *     byte), and closes; the server side echoes and closes on end of stream;
 *     every connection has an idle timeout that a stall would fire;
 *   - TIMERS timeouts re-arming themselves with delays of 0..20 ms;
 *   - a channel fed from another thread, in bursts;
 *   - SIGUSR1 sent to the process by that thread every 2 ms, watched by two
 *     mio_signal sources, one of which is freed and made anew every second
 *     (the other keeps the disposition meanwhile).
 * It prints RSS (VmRSS of /proc/self/status) and the open descriptors
 * (/proc/self/fd) at the start, every REPORT seconds and at the end, the
 * descriptors also without the connections open at that moment ("base":
 * what must not change).  After WARMUP seconds the figures are the
 * baseline; the run fails (exit 1) if by the end RSS grew by more than
 * RSS_TOLERANCE_KB, the base descriptor count changed at all, a
 * connection stalled or an echo came back wrong.  Linux (it reads /proc).
 *
 *   soak [-b BACKEND] [-d SECONDS] [-w WARMUP] [-r REPORT] */
#define _GNU_SOURCE
#include "mio.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNS 32                /* client connections at a time */
#define SLOTS (CONNS * 4)       /* clients and the server sides */
#define TIMERS 100
#define REQUEST_MAX 4096
#define IDLE_NS (5 * MIO_SEC)
#define RSS_TOLERANCE_KB 2048
#define LISTENER 1
#define SIGNAL_A 2
#define SIGNAL_B 3
#define REPORT_TIMER ((void *)1)
#define SIGNAL_CHURN ((void *)2)
#define FIRST_SLOT 100

enum { FREE, CLIENT, SERVER };

struct conn {
    int kind;
    mio_fd fd;
    size_t id, len, sent, got;
    bool connected;
    mio_timeout idle;
    unsigned char buf[REQUEST_MAX];
};

struct soak {
    mio_loop *loop;
    mio_fd listener;
    mio_addr addr;
    mio_signal *sig[2];
    struct conn conns[SLOTS];
    size_t open_fds, clients, next_id;
    bool stopping;
    uint64_t done, stalled, bad, messages, signals, timeouts, interrupts;
    int timer_arg[TIMERS];
    unsigned rng;
};

static atomic_bool producer_stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned rnd(struct soak *s)
{
    s->rng = s->rng * 1103515245u + 12345u;
    return s->rng >> 8;
}

static unsigned char pattern(size_t id, size_t at)
{
    return (unsigned char)(id * 131 + at * 7 + 1);
}

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long fd_count(void)
{
    long n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;               /* the directory's own descriptor */
}

static void die(const char *what, int err)
{
    fprintf(stderr, "soak: %s: %s\n", what, mio_strerror(err));
    exit(2);
}

static struct conn *slot_for(struct soak *s, int kind, mio_fd fd)
{
    size_t i;
    for (i = 0; i < SLOTS; i++)
        if (s->conns[i].kind == FREE) {
            struct conn *c = &s->conns[i];
            c->kind = kind;
            c->fd = fd;
            c->sent = c->got = 0;
            c->connected = kind == SERVER;
            c->idle = 0;
            s->open_fds++;
            return c;
        }
    return NULL;
}

static void close_conn(struct soak *s, struct conn *c)
{
    mio_deregister(mio_loop_poll(s->loop), c->fd);
    mio_close(c->fd);
    if (c->idle != 0)
        mio_loop_clear_timeout(s->loop, c->idle);
    if (c->kind == CLIENT)
        s->clients--;
    c->kind = FREE;
    s->open_fds--;
}

static void start_client(struct soak *s)
{
    mio_fd fd;
    struct conn *c;
    size_t i;
    int err;

    if ((err = mio_tcp_connect(&s->addr, &fd)) != 0)
        die("connect", err);
    if ((c = slot_for(s, CLIENT, fd)) == NULL) {
        mio_close(fd);
        return;
    }
    s->clients++;
    c->id = s->next_id++;
    c->len = 1 + rnd(s) % REQUEST_MAX;
    for (i = 0; i < c->len; i++)
        c->buf[i] = pattern(c->id, i);
    if ((err = mio_register(mio_loop_poll(s->loop), fd, (mio_token)(FIRST_SLOT + (c - s->conns)),
                            MIO_READABLE | MIO_WRITABLE)) != 0)
        die("register", err);
    if ((err = mio_loop_timeout(s->loop, c, IDLE_NS, &c->idle)) != 0)
        die("timeout", err);
}

/* The client: writes its request once connected, then reads the echo. */
static void client_ready(struct soak *s, struct conn *c)
{
    unsigned char in[REQUEST_MAX];
    ssize_t n;

    if (!c->connected) {
        if (mio_socket_error(c->fd) != 0) {
            s->bad++;
            close_conn(s, c);
            return;
        }
        c->connected = true;
    }
    while (c->sent < c->len && (n = mio_write(c->fd, c->buf + c->sent, c->len - c->sent)) > 0)
        c->sent += (size_t)n;
    while (c->got < c->len && (n = mio_read(c->fd, in, sizeof in)) > 0) {
        size_t i;
        for (i = 0; i < (size_t)n; i++)
            if (c->got + i >= c->len || in[i] != pattern(c->id, c->got + i))
                s->bad++;
        c->got += (size_t)n;
    }
    if (c->got >= c->len) {
        s->done++;
        close_conn(s, c);
    }
}

/* The server side: echoes until end of stream. */
static void server_ready(struct soak *s, struct conn *c)
{
    unsigned char in[REQUEST_MAX];
    ssize_t n;

    for (;;) {
        n = mio_read(c->fd, in, sizeof in);
        if (n == MIO_EAGAIN)
            return;
        if (n <= 0) {
            close_conn(s, c);
            return;
        }
        if (mio_write(c->fd, in, (size_t)n) != n) {
            s->bad++;           /* loopback takes a few KiB at once */
            close_conn(s, c);
            return;
        }
    }
}

static void accept_all(struct soak *s)
{
    mio_fd fd;
    struct conn *c;
    int err;

    while ((err = mio_tcp_accept(s->listener, &fd, NULL)) == 0) {
        if ((c = slot_for(s, SERVER, fd)) == NULL) {
            mio_close(fd);
            s->bad++;
            continue;
        }
        if ((err = mio_register(mio_loop_poll(s->loop), fd,
                                (mio_token)(FIRST_SLOT + (c - s->conns)), MIO_READABLE)) != 0)
            die("register", err);
        server_ready(s, c);
    }
    if (err != MIO_EAGAIN)
        die("accept", err);
}

static void read_signals(struct soak *s, mio_signal *sig)
{
    mio_signal_info info[4];
    int n, i;
    while ((n = mio_signal_read(sig, info, 4)) > 0)
        for (i = 0; i < n; i++)
            s->signals += info[i].count;
}

static void on_ready(mio_loop *l, void *ctx, mio_token token, uint32_t flags)
{
    struct soak *s = ctx;
    (void)l;
    (void)flags;
    if (token == LISTENER) {
        accept_all(s);
    } else if (token == SIGNAL_A || token == SIGNAL_B) {
        if (s->sig[token - SIGNAL_A] != NULL)
            read_signals(s, s->sig[token - SIGNAL_A]);
    } else if (token >= FIRST_SLOT && token < FIRST_SLOT + SLOTS) {
        struct conn *c = &s->conns[token - FIRST_SLOT];
        if (c->kind == CLIENT)
            client_ready(s, c);
        else if (c->kind == SERVER)
            server_ready(s, c);
    }
}

static void on_notify(mio_loop *l, void *ctx, void *msg)
{
    struct soak *s = ctx;
    (void)l;
    (void)msg;
    s->messages++;
}

static void new_signal(struct soak *s, int which)
{
    static const int sigs[] = { SIGUSR1 };
    int err = mio_signal_new(mio_loop_poll(s->loop), (mio_token)(SIGNAL_A + which), sigs, 1,
                             &s->sig[which]);
    if (err != 0)
        die("signal", err);
}

static void on_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct soak *s = ctx;
    int err;

    s->timeouts++;
    if (arg == SIGNAL_CHURN) {
        /* Source B comes and goes; A keeps SIGUSR1 caught meanwhile. */
        read_signals(s, s->sig[1]);
        mio_signal_free(s->sig[1]);
        new_signal(s, 1);
        if ((err = mio_loop_timeout(l, SIGNAL_CHURN, MIO_SEC, NULL)) != 0)
            die("timeout", err);
    } else if (arg >= (void *)s->timer_arg && arg < (void *)(s->timer_arg + TIMERS)) {
        if ((err = mio_loop_timeout(l, arg, (uint64_t)(rnd(s) % 21) * MIO_MSEC, NULL)) != 0)
            die("timeout", err);
    } else if (arg >= (void *)s->conns && arg < (void *)(s->conns + SLOTS)) {
        struct conn *c = arg;
        c->idle = 0;
        s->stalled++;
        close_conn(s, c);
    }
}

static void on_interrupted(mio_loop *l, void *ctx)
{
    struct soak *s = ctx;
    (void)l;
    s->interrupts++;
}

static void *producer(void *arg)
{
    mio_sender *tx = arg;
    struct timespec pause = { 0, 1000000 };
    unsigned n = 0;
    int i;

    while (!atomic_load(&producer_stop)) {
        for (i = 0; i < 64; i++)
            if (mio_sender_send(tx, (void *)(uintptr_t)n++) != 0)
                break;          /* full: the loop catches up */
        if (n % 2 == 0)
            kill(getpid(), SIGUSR1);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

struct sample {
    double t;
    long rss, fds, base;
};

static struct sample sample(const struct soak *s, double t0)
{
    struct sample x;
    x.t = now_s() - t0;
    x.rss = rss_kb();
    x.fds = fd_count();
    x.base = x.fds - (long)s->open_fds;
    return x;
}

static void print(const char *what, const struct soak *s, struct sample x)
{
    printf("soak: %-8s %6.0f s  rss %6ld kB  fds %4ld (base %ld)  connections %llu  "
           "messages %llu  signals %llu  timeouts %llu\n",
           what, x.t, x.rss, x.fds, x.base, (unsigned long long)s->done,
           (unsigned long long)s->messages, (unsigned long long)s->signals,
           (unsigned long long)s->timeouts);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct soak st;
    struct soak *s = &st;
    static const mio_handler h = {
        .ready = on_ready, .notify = on_notify, .timeout = on_timeout,
        .interrupted = on_interrupted,
    };
    mio_loop_config cfg = { 0 };
    const char *backend = NULL;
    double duration = 300, warmup = -1, report = -1, t0, next_report;
    struct sample start, warm, end;
    bool warmed = false;
    long idle_fds;
    mio_sender *tx;
    pthread_t thread;
    int opt, err, i;

    while ((opt = getopt(argc, argv, "b:d:w:r:")) != -1) {
        switch (opt) {
        case 'b': backend = optarg; break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'r': report = atof(optarg); break;
        default:
            fprintf(stderr, "usage: soak [-b BACKEND] [-d SECONDS] [-w WARMUP] [-r REPORT]\n");
            return 2;
        }
    }
    if (warmup < 0)
        warmup = duration / 5 < 60 ? duration / 5 : 60;
    if (report <= 0)
        report = duration / 10 < 5 ? 5 : duration / 10;
    s->rng = 12345;
    cfg.backend = backend;
    if ((err = mio_loop_new(&cfg, &s->loop)) != 0)
        die("loop", err);
    if ((err = mio_addr_parse("127.0.0.1:0", &s->addr)) != 0 ||
        (err = mio_tcp_listen(&s->addr, 1024, &s->listener)) != 0 ||
        (err = mio_local_addr(s->listener, &s->addr)) != 0 ||
        (err = mio_register(mio_loop_poll(s->loop), s->listener, LISTENER, MIO_READABLE)) != 0)
        die("listen", err);
    new_signal(s, 0);
    new_signal(s, 1);
    for (i = 0; i < TIMERS; i++)
        if ((err = mio_loop_timeout(s->loop, &s->timer_arg[i], (uint64_t)i * MIO_MSEC / 5,
                                    NULL)) != 0)
            die("timeout", err);
    if ((err = mio_loop_timeout(s->loop, SIGNAL_CHURN, MIO_SEC, NULL)) != 0)
        die("timeout", err);
    if ((err = mio_loop_channel(s->loop, &tx)) != 0)
        die("channel", err);
    if (pthread_create(&thread, NULL, producer, tx) != 0)
        die("thread", MIO_ENOMEM);

    t0 = now_s();
    start = sample(s, t0);
    printf("soak: %s backend, %.0f s, warm-up %.0f s, %d connections at a time, %d timers, "
           "tolerance %d kB RSS and 0 descriptors\n",
           backend != NULL ? backend : "default", duration, warmup, CONNS, TIMERS,
           RSS_TOLERANCE_KB);
    print("start", s, start);
    next_report = report;
    for (;;) {
        double t = now_s() - t0;
        if (t >= duration)
            break;
        while (s->clients < CONNS)
            start_client(s);
        if ((err = mio_loop_run_once(s->loop, &h, s, 10 * MIO_MSEC)) != 0)
            die("run", err);
        if (!warmed && t >= warmup) {
            warm = sample(s, t0);
            print("warm", s, warm);
            warmed = true;
        }
        if (t >= next_report) {
            print("now", s, sample(s, t0));
            next_report += report;
        }
    }
    end = sample(s, t0);
    print("end", s, end);
    if (!warmed)
        warm = start;

    /* Wind down: no new connections, the ones in flight finish. */
    atomic_store(&producer_stop, true);
    pthread_join(thread, NULL);
    {
        double stop = now_s() + 10;
        while (s->open_fds > 0 && now_s() < stop)
            if ((err = mio_loop_run_once(s->loop, &h, s, 10 * MIO_MSEC)) != 0)
                die("run", err);
    }
    idle_fds = fd_count();
    printf("soak: idle: %zu connections open, fds %ld; %llu connections, %llu stalled, "
           "%llu bad, %llu interrupted waits\n",
           s->open_fds, idle_fds, (unsigned long long)s->done,
           (unsigned long long)s->stalled, (unsigned long long)s->bad,
           (unsigned long long)s->interrupts);
    printf("soak: after warm-up: rss %+ld kB (%ld -> %ld), base fds %+ld (%ld -> %ld)\n",
           end.rss - warm.rss, warm.rss, end.rss, end.base - warm.base, warm.base, end.base);

    err = 0;
    if (end.rss - warm.rss > RSS_TOLERANCE_KB) {
        printf("soak: FAIL: RSS grew by more than %d kB\n", RSS_TOLERANCE_KB);
        err = 1;
    }
    if (end.base != warm.base || s->open_fds != 0 || idle_fds != warm.base) {
        printf("soak: FAIL: descriptors leaked\n");
        err = 1;
    }
    if (s->stalled != 0 || s->bad != 0 || s->done == 0) {
        printf("soak: FAIL: connections stalled or went wrong\n");
        err = 1;
    }
    mio_sender_free(tx);
    mio_signal_free(s->sig[0]);
    mio_signal_free(s->sig[1]);
    mio_close(s->listener);
    mio_loop_free(s->loop);
    if (err == 0)
        printf("soak: OK\n");
    return err;
}
