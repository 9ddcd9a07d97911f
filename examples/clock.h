/* A monotonic clock for the examples' deadlines and latencies: it never
 * jumps when the wall clock is set.  QueryPerformanceCounter on Windows,
 * clock_gettime(CLOCK_MONOTONIC) elsewhere (which needs _POSIX_C_SOURCE
 * 200809L defined before the first #include, as the examples do). */
#ifndef EXAMPLES_CLOCK_H
#define EXAMPLES_CLOCK_H

#include "mio.h"

#ifdef _WIN32
#include <windows.h>

static int64_t clock_now_ns(void)
{
    static LARGE_INTEGER freq;  /* ticks per second, fixed at boot */
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    /* Seconds and the remainder apart: ticks * 1e9 would overflow. */
    return now.QuadPart / freq.QuadPart * MIO_SEC +
           now.QuadPart % freq.QuadPart * MIO_SEC / freq.QuadPart;
}

#else
#include <time.h>

static int64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}
#endif

#endif
