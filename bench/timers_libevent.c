/* timers on libevent 2: timeout-only events (a min-heap); output as
 * timers_mio's. */
#include "driver.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>

static size_t fired;

static void cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    fired++;
}

static struct timeval tv_of(uint64_t ns)
{
    struct timeval tv;
    tv.tv_sec = (long)(ns / 1000000000);
    tv.tv_usec = (long)(ns % 1000000000 / 1000);
    return tv;
}

int main(int argc, char **argv)
{
    struct event_base *base = event_base_new();
    struct timers_plan plan;
    size_t set_cancel, million, i;
    struct event *ev;
    struct timeval *tv;
    int64_t start, set_time, cancel_time, cpu;

    timers_args(argc, argv, &set_cancel, &million);
    if (set_cancel > 0) {
        timers_plan_make(&plan, set_cancel);
        ev = calloc(set_cancel, sizeof *ev);
        tv = calloc(set_cancel, sizeof *tv);
        if (ev == NULL || tv == NULL)
            bench_die("out of memory", 0);
        for (i = 0; i < set_cancel; i++) {
            event_assign(&ev[i], base, -1, 0, cb, NULL);
            tv[i] = tv_of(plan.delay_ns[i]);
        }
        start = bench_now_ns();
        for (i = 0; i < set_cancel; i++)
            event_add(&ev[i], &tv[i]);
        set_time = bench_now_ns() - start;
        start = bench_now_ns();
        for (i = 0; i < set_cancel / 2; i++)
            event_del(&ev[plan.order[i]]);
        cancel_time = bench_now_ns() - start;
        for (i = 0; i < set_cancel; i++)
            event_del(&ev[i]);
        printf("timers_libevent set_cancel timers=%zu set_ns=%.1f cancel_ns=%.1f\n", set_cancel,
               (double)set_time / (double)set_cancel, (double)cancel_time / (double)(set_cancel / 2));
        free(ev);
        free(tv);
    }
    if (million > 0) {
        uint64_t delay = 0;
        ev = calloc(million, sizeof *ev);
        tv = calloc(million, sizeof *tv);
        if (ev == NULL || tv == NULL)
            bench_die("out of memory", 0);
        for (i = 0; i < million; i++) {
            if (i % 1000 == 0)
                delay += 1000000;
            event_assign(&ev[i], base, -1, 0, cb, NULL);
            tv[i] = tv_of(delay);
        }
        start = bench_now_ns();
        for (i = 0; i < million; i++)
            event_add(&ev[i], &tv[i]);
        set_time = bench_now_ns() - start;
        fired = 0;
        start = bench_now_ns();
        cpu = bench_cpu_ns();
        event_base_dispatch(base);
        cpu = bench_cpu_ns() - cpu;
        if (fired != million)
            bench_die("timers lost", 0);
        printf("timers_libevent million_timers timers=%zu set_ns=%.1f run_s=%.3f run_cpu_s=%.3f "
               "fire_ns=%.1f\n", million, (double)set_time / (double)million,
               (double)(bench_now_ns() - start) / 1e9, (double)cpu / 1e9, (double)cpu / (double)million);
    }
    return 0;
}
