/* timers on libev: ev_timer watchers (a 4-heap); output as timers_mio's. */
#include "driver.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

static size_t fired;

static void cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop; (void)t; (void)revents;
    fired++;
}

int main(int argc, char **argv)
{
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    struct timers_plan plan;
    size_t set_cancel, million, i;
    ev_timer *t;
    int64_t start, set_time, cancel_time, cpu;

    timers_args(argc, argv, &set_cancel, &million);
    if (set_cancel > 0) {
        timers_plan_make(&plan, set_cancel);
        if ((t = calloc(set_cancel, sizeof *t)) == NULL)
            bench_die("out of memory", 0);
        for (i = 0; i < set_cancel; i++)
            ev_timer_init(&t[i], cb, (double)plan.delay_ns[i] / 1e9, 0.);
        start = bench_now_ns();
        for (i = 0; i < set_cancel; i++)
            ev_timer_start(loop, &t[i]);
        set_time = bench_now_ns() - start;
        start = bench_now_ns();
        for (i = 0; i < set_cancel / 2; i++)
            ev_timer_stop(loop, &t[plan.order[i]]);
        cancel_time = bench_now_ns() - start;
        for (i = 0; i < set_cancel; i++)
            ev_timer_stop(loop, &t[i]);
        printf("timers_libev set_cancel timers=%zu set_ns=%.1f cancel_ns=%.1f\n", set_cancel,
               (double)set_time / (double)set_cancel, (double)cancel_time / (double)(set_cancel / 2));
        free(t);
    }
    if (million > 0) {
        double delay = 0;
        if ((t = calloc(million, sizeof *t)) == NULL)
            bench_die("out of memory", 0);
        for (i = 0; i < million; i++) {
            if (i % 1000 == 0)
                delay += 1e-3;
            ev_timer_init(&t[i], cb, delay, 0.);
        }
        ev_now_update(loop);
        start = bench_now_ns();
        for (i = 0; i < million; i++)
            ev_timer_start(loop, &t[i]);
        set_time = bench_now_ns() - start;
        fired = 0;
        start = bench_now_ns();
        cpu = bench_cpu_ns();
        ev_run(loop, 0);
        cpu = bench_cpu_ns() - cpu;
        if (fired != million)
            bench_die("timers lost", 0);
        printf("timers_libev million_timers timers=%zu set_ns=%.1f run_s=%.3f run_cpu_s=%.3f "
               "fire_ns=%.1f\n", million, (double)set_time / (double)million,
               (double)(bench_now_ns() - start) / 1e9, (double)cpu / 1e9, (double)cpu / (double)million);
        free(t);
    }
    return 0;
}
