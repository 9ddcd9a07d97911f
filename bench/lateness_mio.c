/* Timer lateness on the event loop: 1000 timeouts of random delays in
 * [1, 100] ms, each fired on an otherwise idle loop; how late each one comes
 * after its deadline (mean, p99, max).  Never early is checked too.
 *
 *   lateness_mio [BACKEND|best [TICK_NS [from=outside|ready]]]
 *
 * from=outside (the default) sets them all before the loop runs; from=ready
 * sets them from the ready callback of a socket pair, ten per tick, whose
 * delays count from the loop's reading after that tick's callbacks.  The
 * deadline is taken as a reading before each set. */
#include <mio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMERS 1000
#define PER_TICK 10

struct run {
    int64_t due[TIMERS];
    int64_t late[TIMERS];
    int fired, early;
    int set;                /* from=ready: how many are set so far */
    mio_fd pair[2];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}

static void on_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct run *r = ctx;
    size_t i = (size_t)(uintptr_t)arg;
    int64_t late = now_ns() - r->due[i];

    if (late < 0)
        r->early++;
    r->late[r->fired++] = late;
    if (r->fired == TIMERS)
        mio_loop_shutdown(l);
}

static int set_next(mio_loop *l, struct run *r)
{
    uint64_t delay = (uint64_t)(1 + rand() % 100) * MIO_MSEC;
    r->due[r->set] = now_ns() + (int64_t)delay;
    if (mio_loop_timeout(l, (void *)(uintptr_t)r->set, delay, NULL) < 0)
        return -1;
    r->set++;
    return 0;
}

/* from=ready: ten sets per readable edge, and a byte for the next tick. */
static void on_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct run *r = ctx;
    char b;
    int i;

    (void)token;
    (void)readiness;
    while (mio_read(r->pair[0], &b, 1) == 1)
        ;
    for (i = 0; i < PER_TICK && r->set < TIMERS; i++)
        if (set_next(l, r) < 0)
            exit(1);
    if (r->set < TIMERS && mio_write(r->pair[1], "x", 1) != 1)
        exit(1);
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static struct run r;
    mio_loop_config c;
    mio_handler h = { .ready = on_ready, .timeout = on_timeout };
    mio_loop *l;
    double sum = 0;
    size_t i;
    int err;
    bool from_ready = argc > 3 && strcmp(argv[3], "from=ready") == 0;

    mio_loop_config_default(&c);
    if (argc > 1 && strcmp(argv[1], "best") != 0)
        c.backend = argv[1];
    if (argc > 2)
        c.timer_tick_ns = (uint64_t)strtoull(argv[2], NULL, 10);
    err = mio_loop_new(&c, &l);
    if (err < 0) {
        fprintf(stderr, "lateness_mio: %s\n", mio_strerror(err));
        return err == MIO_ENOSYS ? 77 : 1;
    }
    srand(42);
    if (from_ready) {
        if (mio_socketpair(r.pair) < 0 ||
            mio_register(mio_loop_poll(l), r.pair[0], 0, MIO_READABLE | MIO_EDGE) < 0 ||
            mio_write(r.pair[1], "x", 1) != 1)
            return 1;
    } else {
        for (i = 0; i < TIMERS; i++)
            if (set_next(l, &r) < 0)
                return 1;
    }
    err = mio_loop_run(l, &h, &r);
    mio_loop_free(l);
    if (from_ready) {
        mio_close(r.pair[0]);
        mio_close(r.pair[1]);
    }
    if (err < 0)
        return 1;
    qsort(r.late, TIMERS, sizeof r.late[0], cmp);
    for (i = 0; i < TIMERS; i++)
        sum += (double)r.late[i];
    printf("lateness_mio backend=%s tick_ns=%llu from=%s timers=%d mean_us=%.1f p50_us=%.1f "
           "p99_us=%.1f max_us=%.1f early=%d\n",
           c.backend != NULL ? c.backend : "best", (unsigned long long)c.timer_tick_ns,
           from_ready ? "ready" : "outside",
           TIMERS, sum / TIMERS / 1e3, (double)r.late[TIMERS / 2] / 1e3,
           (double)r.late[TIMERS * 99 / 100] / 1e3, (double)r.late[TIMERS - 1] / 1e3, r.early);
    return r.early == 0 ? 0 : 1;
}
