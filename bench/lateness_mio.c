/* Timer lateness on the event loop: 1000 timeouts of random delays in
 * [1, 100] ms, each fired on an otherwise idle loop; how late each one comes
 * after its deadline (mean, p99, max).  Never early is checked too. */
#include <mio.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TIMERS 1000

struct run {
    int64_t due[TIMERS];
    int64_t late[TIMERS];
    int fired, early;
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

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static struct run r;
    mio_loop_config c;
    mio_handler h = { .timeout = on_timeout };
    mio_loop *l;
    double sum = 0;
    size_t i;
    int err;

    mio_loop_config_default(&c);
    if (argc > 1)
        c.backend = argv[1];
    if (argc > 2)
        c.timer_tick_ns = (uint64_t)strtoull(argv[2], NULL, 10);
    err = mio_loop_new(&c, &l);
    if (err < 0) {
        fprintf(stderr, "lateness_mio: %s\n", mio_strerror(err));
        return err == MIO_ENOSYS ? 77 : 1;
    }
    srand(42);
    for (i = 0; i < TIMERS; i++) {
        uint64_t delay = (uint64_t)(1 + rand() % 100) * MIO_MSEC;
        r.due[i] = now_ns() + (int64_t)delay;
        if (mio_loop_timeout(l, (void *)(uintptr_t)i, delay, NULL) < 0)
            return 1;
    }
    err = mio_loop_run(l, &h, &r);
    mio_loop_free(l);
    if (err < 0)
        return 1;
    qsort(r.late, TIMERS, sizeof r.late[0], cmp);
    for (i = 0; i < TIMERS; i++)
        sum += (double)r.late[i];
    printf("lateness_mio backend=%s tick_ns=%llu timers=%d mean_us=%.1f p50_us=%.1f "
           "p99_us=%.1f max_us=%.1f early=%d\n",
           c.backend != NULL ? c.backend : "best", (unsigned long long)c.timer_tick_ns,
           TIMERS, sum / TIMERS / 1e3, (double)r.late[TIMERS / 2] / 1e3,
           (double)r.late[TIMERS * 99 / 100] / 1e3, (double)r.late[TIMERS - 1] / 1e3, r.early);
    return r.early == 0 ? 0 : 1;
}
