/* Timer wheel costs, in two shapes:
 *
 *   set_cancel      TIMERS timeouts of random delays (1 ms .. 10 s) are set,
 *                   then half of them, in random order, cancelled: the time
 *                   per set and per cancel.
 *   million_timers  libuv's benchmark shape: TIMERS timeouts, the delay 1 ms
 *                   more every 1000 (1 .. TIMERS/1000 ms), run until all have
 *                   fired, waiting in mio_poll_wait bounded by mio_timer_next.
 *                   Reported: the set time, the run's wall and CPU time (the
 *                   wall time is mostly the wait for the last deadline), and
 *                   the CPU time per fired timeout.
 *
 *   timers_mio [SET_CANCEL_TIMERS [MILLION_TIMERS [WHEEL_SIZE [TICK_NS]]]]
 *
 * Defaults: 1000000, 10000000, and the timer's own wheel and tick (1024
 * slots of 1 ms).  One line per shape (here with 1000000 timers for both):
 *   timers_mio set_cancel timers=1000000 wheel=1024 tick_ns=1000000 new_ms=55.4 set_ns=207.7 cancel_ns=584.2
 *   timers_mio million_timers timers=1000000 wheel=1024 tick_ns=1000000 new_ms=49.4 set_s=0.135
 *       set_ns=134.6 run_s=1.001 run_cpu_s=0.065 fire_ns=64.7
 * A set reads no clock itself: the timer places sets in batches with one
 * reading taken after them (every 256 sets, and when it is polled or asked
 * for its next deadline), which the set times include, but for the last
 * batch, placed as the run begins (clock_ns, printed first, is what one
 * reading costs here); new_ms is mio_timer_new, which
 * allocates and initialises the whole slab. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}

static int64_t wall_ns(void) { return clock_of(CLOCK_MONOTONIC); }
static int64_t cpu_ns(void) { return clock_of(CLOCK_PROCESS_CPUTIME_ID); }

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t random_below(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "timers_mio: %s: %s\n", what, mio_strerror(err));
    exit(1);
}

/* The slab is allocated and initialised here: that time is reported apart
 * (new_ms) rather than spread over the sets. */
static mio_timer *new_timer(uint64_t tick_ns, size_t wheel, size_t capacity, double *new_ms)
{
    mio_timer *t = NULL;
    int64_t start = wall_ns();
    int err = mio_timer_new(tick_ns, wheel, capacity, &t);
    if (err < 0)
        die("mio_timer_new", err);
    *new_ms = (double)(wall_ns() - start) / 1e6;
    return t;
}

static void clock_cost(void)
{
    enum { READS = 1000000 };
    volatile int64_t sink;
    int64_t start = wall_ns();
    int i;
    for (i = 0; i < READS; i++)
        sink = wall_ns();
    (void)sink;
    printf("timers_mio clock reads=%d clock_ns=%.1f\n", READS,
           (double)(wall_ns() - start) / READS);
}

static void set_cancel(size_t n, size_t wheel, uint64_t tick_ns)
{
    double new_ms;
    mio_timer *t = new_timer(tick_ns, wheel, n, &new_ms);
    mio_timeout *handle = malloc(n * sizeof *handle);
    uint64_t *delay = malloc(n * sizeof *delay);
    size_t *order = malloc(n * sizeof *order);
    size_t i, cancels = n / 2;
    int64_t start, set_time, cancel_time;

    if (handle == NULL || delay == NULL || order == NULL)
        die("malloc", MIO_ENOMEM);
    for (i = 0; i < n; i++) {
        delay[i] = MIO_MSEC + random_below(10 * MIO_SEC - MIO_MSEC);
        order[i] = i;
    }
    for (i = n; i > 1; i--) {       /* shuffle: cancel in random order */
        size_t j = (size_t)random_below(i), tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }

    start = wall_ns();
    for (i = 0; i < n; i++) {
        int err = mio_timer_set(t, delay[i], (void *)(uintptr_t)i, &handle[i]);
        if (err < 0)
            die("mio_timer_set", err);
    }
    set_time = wall_ns() - start;

    start = wall_ns();
    for (i = 0; i < cancels; i++)
        if (!mio_timer_cancel(t, handle[order[i]]))
            die("mio_timer_cancel", MIO_ENOENT);
    cancel_time = wall_ns() - start;

    printf("timers_mio set_cancel timers=%zu wheel=%zu tick_ns=%llu new_ms=%.1f set_ns=%.1f "
           "cancel_ns=%.1f\n",
           n, wheel, (unsigned long long)tick_ns, new_ms, (double)set_time / (double)n,
           (double)cancel_time / (double)cancels);
    mio_timer_free(t);
    free(handle);
    free(delay);
    free(order);
}

static void million_timers(size_t n, size_t wheel, uint64_t tick_ns)
{
    double new_ms;
    mio_timer *t = new_timer(tick_ns, wheel, n, &new_ms);
    mio_poll *p = NULL;
    mio_event ev[1];
    uint64_t delay = 0;
    size_t i, fired = 0;
    int64_t start, set_time, run_wall, run_cpu;
    int err;
    void *arg;

    err = mio_poll_new(&p);
    if (err < 0)
        die("mio_poll_new", err);

    start = wall_ns();
    for (i = 0; i < n; i++) {
        mio_timeout h;
        if (i % 1000 == 0)
            delay += MIO_MSEC;
        err = mio_timer_set(t, delay, NULL, &h);
        if (err < 0)
            die("mio_timer_set", err);
    }
    set_time = wall_ns() - start;

    start = wall_ns();
    run_cpu = cpu_ns();
    while (fired < n) {
        int64_t next = mio_timer_next(t);
        if (next > 0) {
            err = mio_poll_wait(p, ev, 1, next);
            if (err < 0 && err != MIO_EINTR)
                die("mio_poll_wait", err);
        }
        while (mio_timer_poll(t, &arg))
            fired++;
    }
    run_cpu = cpu_ns() - run_cpu;
    run_wall = wall_ns() - start;

    printf("timers_mio million_timers timers=%zu wheel=%zu tick_ns=%llu new_ms=%.1f set_s=%.3f "
           "set_ns=%.1f run_s=%.3f run_cpu_s=%.3f fire_ns=%.1f\n",
           n, wheel, (unsigned long long)tick_ns, new_ms, (double)set_time / 1e9,
           (double)set_time / (double)n, (double)run_wall / 1e9, (double)run_cpu / 1e9,
           (double)run_cpu / (double)n);
    mio_poll_free(p);
    mio_timer_free(t);
}

int main(int argc, char **argv)
{
    size_t set_cancel_timers = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t million = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000000;
    size_t wheel = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
    uint64_t tick_ns = argc > 4 ? strtoull(argv[4], NULL, 10) : (uint64_t)MIO_MSEC;

    clock_cost();
    if (set_cancel_timers > 0)
        set_cancel(set_cancel_timers, wheel, tick_ns);
    if (million > 0)
        million_timers(million, wheel, tick_ns);
    return 0;
}
