/* The shared benchmark driver: see driver.h. */
#include "driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <time.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_die(const char *what, int err)
{
    fprintf(stderr, "bench: %s%s%s\n", what, err ? ": " : "", err ? strerror(-err) : "");
    exit(1);
}

static long number(const char *word, const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "bench: bad number in %s\n", word);
        exit(2);
    }
    return v;
}

void bench_parse(int argc, char **argv, struct bench_opts *o)
{
    int i;

    o->n = 100;
    o->a = 1;
    o->w = 10000;
    o->timers = 0;
    o->runs = 7;
    o->backend = NULL;
    o->level = 0;
    o->port = 9000;
    o->http = 0;
    o->loops = 1;
    o->mode = "handoff";
    o->pin = 0;
    o->pingpong = 0;
    o->conns = 100000;
    o->concurrency = 50;
    o->size = 64;
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t klen = eq ? (size_t)(eq - argv[i]) : 0;
        const char *v = eq ? eq + 1 : "";
#define KEY(k) (klen == sizeof k - 1 && strncmp(argv[i], k, klen) == 0)
        if (KEY("n"))
            o->n = number(argv[i], v);
        else if (KEY("a"))
            o->a = number(argv[i], v);
        else if (KEY("w"))
            o->w = number(argv[i], v);
        else if (KEY("timers"))
            o->timers = number(argv[i], v) != 0;
        else if (KEY("runs"))
            o->runs = (int)number(argv[i], v);
        else if (KEY("http"))
            o->http = number(argv[i], v) != 0;
        else if (KEY("port"))
            o->port = (int)number(argv[i], v);
        else if (KEY("backend"))
            o->backend = v;
        else if (KEY("trigger") && (strcmp(v, "edge") == 0 || strcmp(v, "level") == 0))
            o->level = strcmp(v, "level") == 0;
        else if (KEY("loops"))
            o->loops = number(argv[i], v);
        else if (KEY("mode"))
            o->mode = v;
        else if (KEY("pin"))
            o->pin = number(argv[i], v) != 0;
        else if (KEY("pingpong"))
            o->pingpong = number(argv[i], v);
        else if (KEY("conns"))
            o->conns = number(argv[i], v);
        else if (KEY("concurrency"))
            o->concurrency = number(argv[i], v);
        else if (KEY("size"))
            o->size = number(argv[i], v);
        else {
            fprintf(stderr, "bench: unknown option %s\n"
                    "options: n= a= w= timers=0|1 runs= backend= trigger=edge|level port= http=0|1 "
                    "loops= mode= pin=0|1 pingpong= conns= concurrency= size=\n", argv[i]);
            exit(2);
        }
#undef KEY
    }
    if (o->n < 1 || o->a < 1 || o->a > o->n || o->runs < 1) {
        fprintf(stderr, "bench: need n >= a >= 1 and runs >= 1\n");
        exit(2);
    }
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int count)
{
    qsort(v, (size_t)count, sizeof *v, compare);
    return count % 2 ? v[count / 2] : (v[count / 2 - 1] + v[count / 2]) / 2;
}

double bench_random(void)
{
    static uint64_t state = 0x2545f4914f6cdd1du;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

void bench_need_fds(long fds)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        bench_die("getrlimit", -errno);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        bench_die("setrlimit", -errno);
    if (rl.rlim_max != RLIM_INFINITY && (rlim_t)fds > rl.rlim_max) {
        fprintf(stderr, "bench: %ld descriptors needed, RLIMIT_NOFILE allows %llu\n",
                fds, (unsigned long long)rl.rlim_max);
        exit(3);
    }
}

int dispatch_main(int argc, char **argv, const struct dispatch_impl *impl)
{
    struct bench_opts o;
    struct dispatch d;
    double *setup, *run;
    void *ctx;
    long i, space;
    int r;

    bench_parse(argc, argv, &o);
    if (o.timers && !impl->supports_timers) {
        fprintf(stderr, "bench: %s has no timers variant\n", impl->lib);
        return 2;
    }
    bench_need_fds(2 * o.n + 64);
    memset(&d, 0, sizeof d);
    d.o = &o;
    d.drain = !o.level;
    d.fds = malloc(sizeof *d.fds * 2 * (size_t)o.n);
    setup = malloc(sizeof *setup * (size_t)o.runs);
    run = malloc(sizeof *run * (size_t)o.runs);
    if (d.fds == NULL || setup == NULL || run == NULL)
        bench_die("out of memory", 0);
    for (i = 0; i < o.n; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, d.fds + 2 * i) < 0)
            bench_die("socketpair", -errno);
    }
    ctx = impl->init(&d);
    space = o.n / o.a;
    for (r = 0; r < o.runs; r++) {
        int64_t t0, t1, t2;

        t0 = bench_now_ns();
        impl->setup(ctx, r == 0);
        t1 = bench_now_ns();
        d.count = 0;
        d.fired = 0;
        d.writes = o.w;
        for (i = 0; i < o.a; i++, d.fired++) {
            if (write(d.fds[2 * (i * space) + 1], "e", 1) != 1)
                bench_die("write", -errno);
        }
        impl->run(ctx);
        t2 = bench_now_ns();
        if (d.count != d.fired || d.fired != o.a + o.w)
            bench_die("dispatch lost bytes", 0);
        setup[r] = (double)(t1 - t0) / 1e3;
        run[r] = (double)(t2 - t1) / 1e3;
    }
    {
        double s = bench_median(setup, o.runs), dt = bench_median(run, o.runs);
        printf("dispatch lib=%s n=%ld a=%ld w=%ld timers=%d runs=%d setup_us=%.1f "
               "dispatch_us=%.1f event_ns=%.1f\n",
               impl->lib, o.n, o.a, o.w, o.timers, o.runs, s, dt,
               dt * 1e3 / (double)(o.a + o.w));
    }
    impl->fini(ctx);
    for (i = 0; i < 2 * o.n; i++)
        close(d.fds[i]);
    free(d.fds);
    free(setup);
    free(run);
    return 0;
}

/* ---- echo ---- */

int echo_http;

int echo_start(int argc, char **argv)
{
    static struct bench_opts o;
    bench_parse(argc, argv, &o);
    echo_http = o.http;
    signal(SIGPIPE, SIG_IGN);
    bench_need_fds(4096);
    return o.port;
}

int echo_listen(int port)
{
    struct sockaddr_in sin;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        bench_die("socket", -errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 1024) < 0)
        bench_die("bind/listen", -errno);
    return fd;
}

int echo_accept(int listener)
{
    int one = 1;
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int echo_io(struct echo_conn *c)
{
    ssize_t r, w;

    if (c->len > c->off) {
        w = write(c->fd, c->buf + c->off, c->len - c->off);
        if (w < 0)
            return errno == EAGAIN ? 1 : -1;
        c->off += (size_t)w;
        if (c->off < c->len)
            return 1;
        c->off = c->len = 0;
    }
    for (;;) {
        r = read(c->fd, c->buf, sizeof c->buf);
        if (r == 0)
            return -1;
        if (r < 0)
            return errno == EAGAIN ? 0 : -1;
        if (echo_http) {
            size_t k = http_requests(&c->matched, c->buf, (size_t)r), len = 0;
            const char *out = http_responses(k, &len);
            if (k == 0)
                continue;
            if (out == NULL)
                return -1;
            /* The responses replace the request in buf if they are held up. */
            w = write(c->fd, out, len);
            if (w < 0) {
                if (errno != EAGAIN)
                    return -1;
                w = 0;
            }
            if ((size_t)w < len) {
                memcpy(c->buf, out, len);
                c->off = (size_t)w;
                c->len = len;
                return 1;
            }
            if (r < (ssize_t)sizeof c->buf)
                return 0;
            continue;
        }
        w = write(c->fd, c->buf, (size_t)r);
        if (w < 0) {
            if (errno != EAGAIN)
                return -1;
            w = 0;
        }
        if (w < r) {
            c->off = (size_t)w;
            c->len = (size_t)r;
            return 1;
        }
        /* A short read emptied the socket: any later byte is a new edge. */
        if (r < (ssize_t)sizeof c->buf)
            return 0;
    }
}

/* ---- timers ---- */

int64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* timers_mio's generator, so every library gets the same delays. */
static uint64_t plan_rng = 0x2545f4914f6cdd1du;

static uint64_t random_below(uint64_t n)
{
    plan_rng ^= plan_rng << 13;
    plan_rng ^= plan_rng >> 7;
    plan_rng ^= plan_rng << 17;
    return plan_rng % n;
}

void timers_plan_make(struct timers_plan *plan, size_t n)
{
    const uint64_t ms = 1000000, s = 1000000000;
    size_t i;

    plan->n = n;
    plan->delay_ns = malloc(n * sizeof *plan->delay_ns);
    plan->order = malloc(n * sizeof *plan->order);
    if (plan->delay_ns == NULL || plan->order == NULL)
        bench_die("out of memory", 0);
    for (i = 0; i < n; i++) {
        plan->delay_ns[i] = ms + random_below(10 * s - ms);
        plan->order[i] = i;
    }
    for (i = n; i > 1; i--) {
        size_t j = (size_t)random_below(i), tmp = plan->order[i - 1];
        plan->order[i - 1] = plan->order[j];
        plan->order[j] = tmp;
    }
}

void timers_args(int argc, char **argv, size_t *set_cancel, size_t *million)
{
    *set_cancel = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    *million = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
}

/* ---- wake ---- */

struct wake_run {
    const struct wake_impl *impl;
    void *a, *b;
    long n;
    atomic_int done;
    atomic_long handled;    /* waits the draining side finished */
};

static void *pong(void *arg)
{
    struct wake_run *r = arg;
    long i;
    for (i = 0; i < r->n; i++) {
        r->impl->wait(r->b);
        r->impl->wake(r->a);
    }
    return NULL;
}

static void *drain(void *arg)
{
    struct wake_run *r = arg;
    while (!atomic_load(&r->done)) {
        r->impl->wait(r->b);
        atomic_fetch_add_explicit(&r->handled, 1, memory_order_relaxed);
    }
    return NULL;
}

int wake_main(int argc, char **argv, const struct wake_impl *impl)
{
    struct bench_opts o;
    struct wake_run r;
    double *rtt, *p50, *p99, *pp, *fl, *hd;
    int run;

    bench_parse(argc, argv, &o);
    if (o.n == 100)     /* the dispatch default: take this workload's */
        o.n = 100000;
    r.impl = impl;
    r.n = o.n;
    r.a = impl->side_new();
    r.b = impl->side_new();
    rtt = malloc(sizeof *rtt * (size_t)o.n);
    p50 = malloc(sizeof *p50 * (size_t)o.runs);
    p99 = malloc(sizeof *p99 * (size_t)o.runs);
    pp = malloc(sizeof *pp * (size_t)o.runs);
    fl = malloc(sizeof *fl * (size_t)o.runs);
    hd = malloc(sizeof *hd * (size_t)o.runs);
    if (rtt == NULL || p50 == NULL || p99 == NULL || pp == NULL || fl == NULL || hd == NULL)
        bench_die("out of memory", 0);
    for (run = 0; run < o.runs; run++) {
        pthread_t t;
        int64_t start, t0;
        long i;

        if (pthread_create(&t, NULL, pong, &r) != 0)
            bench_die("pthread_create", 0);
        start = bench_now_ns();
        for (i = 0; i < o.n; i++) {
            t0 = bench_now_ns();
            impl->wake(r.b);
            impl->wait(r.a);
            rtt[i] = (double)(bench_now_ns() - t0);
        }
        pp[run] = (double)o.n * 1e9 / (double)(bench_now_ns() - start);
        pthread_join(t, NULL);
        bench_median(rtt, (int)o.n);    /* sorts */
        p50[run] = rtt[o.n / 2];
        p99[run] = rtt[o.n * 99 / 100];

        atomic_store(&r.done, 0);
        atomic_store(&r.handled, 0);
        if (pthread_create(&t, NULL, drain, &r) != 0)
            bench_die("pthread_create", 0);
        /* The flood lasts at least 200 ms, so that the waiting side's count
         * of wake-ups it handled (callbacks, each covering the wakes since
         * its last) means something even when a wake costs nanoseconds. */
        start = bench_now_ns();
        i = 0;
        do {
            long k;
            for (k = 0; k < o.n; k++)
                impl->wake(r.b);
            i += o.n;
        } while (bench_now_ns() - start < 200000000);
        t0 = bench_now_ns() - start;
        fl[run] = (double)i * 1e9 / (double)t0;
        hd[run] = (double)atomic_load(&r.handled) * 1e9 / (double)t0;
        atomic_store(&r.done, 1);
        impl->wake(r.b);
        pthread_join(t, NULL);
    }
    printf("wake lib=%s n=%ld runs=%d rtt_p50_ns=%.0f rtt_p99_ns=%.0f pingpong_per_s=%.0f "
           "flood_per_s=%.0f handled_per_s=%.0f\n", impl->lib, o.n, o.runs,
           bench_median(p50, o.runs), bench_median(p99, o.runs), bench_median(pp, o.runs),
           bench_median(fl, o.runs), bench_median(hd, o.runs));
    return 0;
}

/* ---- http ---- */

static const char response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
#define RESPONSES 256
static char responses[RESPONSES * (sizeof response - 1)];
static size_t responses_ready;

size_t http_requests(unsigned *matched, const char *p, size_t n)
{
    static const char end[] = "\r\n\r\n";
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (p[i] == end[*matched])
            ++*matched;
        else
            *matched = p[i] == '\r' ? 1 : 0;
        if (*matched == 4) {
            k++;
            *matched = 0;
        }
    }
    return k;
}

const char *http_responses(size_t k, size_t *len)
{
    if (k > RESPONSES)
        return NULL;
    for (; responses_ready < k; responses_ready++)
        memcpy(responses + responses_ready * (sizeof response - 1), response, sizeof response - 1);
    *len = k * (sizeof response - 1);
    return responses;
}
