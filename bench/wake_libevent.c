/* wake on libevent 2: event_active from the other thread on an fd-less event
 * of a base with pthreads locking (its notify descriptor wakes the loop). */
#include "driver.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdlib.h>

struct side {
    struct event_base *base;
    struct event *ev;
    unsigned long fired, seen;  /* callbacks, and those a wait consumed */
};

static void cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    ((struct side *)arg)->fired++;
}

static void *side_new(void)
{
    struct side *s = calloc(1, sizeof *s);
    static int threads;
    if (!threads++ && evthread_use_pthreads() < 0)
        bench_die("evthread_use_pthreads", 0);
    if (s == NULL || (s->base = event_base_new()) == NULL ||
        (s->ev = event_new(s->base, -1, 0, cb, s)) == NULL)
        bench_die("event_base_new", 0);
    return s;
}

static void wake(void *arg)
{
    event_active(((struct side *)arg)->ev, EV_READ, 1);
}

/* An iteration may end without the callback (a wake-up consumed earlier). */
static void wait_side(void *arg)
{
    struct side *s = arg;
    while (s->fired == s->seen)
        event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY);
    s->seen = s->fired;
}

int main(int argc, char **argv)
{
    static const struct wake_impl impl = { "libevent", side_new, wake, wait_side };
    return wake_main(argc, argv, &impl);
}
