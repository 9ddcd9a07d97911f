/* timers on libuv: uv_timer_t handles (a heap, millisecond delays); output
 * as timers_mio's.  The handles are left to the process's exit. */
#include "driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static size_t fired;

static void cb(uv_timer_t *t)
{
    (void)t;
    fired++;
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    struct timers_plan plan;
    size_t set_cancel, million, i;
    uv_timer_t *t;
    int64_t start, set_time, cancel_time, cpu;

    timers_args(argc, argv, &set_cancel, &million);
    if (set_cancel > 0) {
        timers_plan_make(&plan, set_cancel);
        if ((t = calloc(set_cancel, sizeof *t)) == NULL)
            bench_die("out of memory", 0);
        for (i = 0; i < set_cancel; i++)
            uv_timer_init(loop, &t[i]);
        start = bench_now_ns();
        for (i = 0; i < set_cancel; i++)
            uv_timer_start(&t[i], cb, plan.delay_ns[i] / 1000000, 0);
        set_time = bench_now_ns() - start;
        start = bench_now_ns();
        for (i = 0; i < set_cancel / 2; i++)
            uv_timer_stop(&t[plan.order[i]]);
        cancel_time = bench_now_ns() - start;
        for (i = 0; i < set_cancel; i++)
            uv_timer_stop(&t[i]);
        printf("timers_libuv set_cancel timers=%zu set_ns=%.1f cancel_ns=%.1f\n", set_cancel,
               (double)set_time / (double)set_cancel, (double)cancel_time / (double)(set_cancel / 2));
    }
    if (million > 0) {
        uint64_t delay = 0;
        uv_loop_t *l2 = malloc(sizeof *l2);
        if ((t = calloc(million, sizeof *t)) == NULL || l2 == NULL || uv_loop_init(l2) < 0)
            bench_die("out of memory", 0);
        for (i = 0; i < million; i++)
            uv_timer_init(l2, &t[i]);
        start = bench_now_ns();
        for (i = 0; i < million; i++) {
            if (i % 1000 == 0)
                delay++;
            uv_timer_start(&t[i], cb, delay, 0);
        }
        set_time = bench_now_ns() - start;
        fired = 0;
        start = bench_now_ns();
        cpu = bench_cpu_ns();
        uv_run(l2, UV_RUN_DEFAULT);
        cpu = bench_cpu_ns() - cpu;
        if (fired != million)
            bench_die("timers lost", 0);
        printf("timers_libuv million_timers timers=%zu set_ns=%.1f run_s=%.3f run_cpu_s=%.3f "
               "fire_ns=%.1f\n", million, (double)set_time / (double)million,
               (double)(bench_now_ns() - start) / 1e9, (double)cpu / 1e9, (double)cpu / (double)million);
    }
    return 0;
}
