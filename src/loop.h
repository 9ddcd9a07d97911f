/* The event loop's insides, shared by loop.c and the group of loops
 * (group.c), which runs loops on threads of its own and takes part in their
 * ticks: its listeners' events, the connections handed to a loop, its own
 * timers.  The group is above the loop: it calls the loop, and the loop
 * reaches it only through the hooks the group gives it. */
#ifndef MIO_LOOP_H
#define MIO_LOOP_H

#include "channel.h"

/* The group's part in a tick of one of its loops, on the loop's thread with
 * the handler's ctx: an event with one of the group's tokens (ready); a
 * message that is not the caller's (message); a timeout, which returns
 * false when arg is not one of the group's, so that it goes to the caller
 * (timeout); the end of the tick, before the caller's `tick` (tick).  And
 * for mio_loop_is_running and mio_loop_shutdown: whether the group was told
 * to shut down (stopping, any thread), and shutting it down (shutdown). */
struct mio_loop_hooks {
    void (*ready)(mio_loop *l, void *ctx, mio_token token, uint32_t readiness);
    void (*message)(mio_loop *l, void *ctx, int kind, void *msg, mio_fd fd);
    bool (*timeout)(mio_loop *l, void *ctx, void *arg);
    void (*tick)(mio_loop *l, void *ctx);
    bool (*stopping)(const mio_loop *l);
    void (*shutdown)(mio_loop *l);
};

struct mio_loop {
    mio_poll *poll;
    mio_timer *timer;
    struct mio_channel *chan;
    mio_event *events;
    size_t events_capacity;
    size_t messages_per_tick;
    bool running;           /* not shut down (see mio_loop_is_running) */
    bool in_tick;           /* calling the handler: no nested run */
    struct mio_loop *outer; /* while in_tick: the loop this thread was in before */
    /* The batch `ready` goes through: nevents events, the one at
     * `dispatching` being handled (mio_loop_handoff drops later ones).
     * Both stay after the batch: `dispatching` is then its last event (or
     * nevents is 0), so that a hand-off from a later callback drops none,
     * and the tick's trace reads nevents. */
    size_t nevents, dispatching;
    size_t messages;        /* the channel messages this tick took */
    /* A loop of a group: its hooks (NULL: in no group), the group and the
     * loop's index there. */
    const struct mio_loop_hooks *hooks;
    struct mio_group *group;
    size_t index;
};

/* The token the group's hooks ignore: a hand-off puts it in the events of
 * its batch that it drops. */
#define MIO__TOKEN_DROPPED (MIO_TOKEN_RESERVED - 1)

/* mio_loop_free for a group's loop too. */
void mio__loop_free(mio_loop *l);

/* One tick (mio_loop_run_once without the checks). */
int mio__loop_tick(mio_loop *l, const mio_handler *h, void *ctx, int64_t timeout_ns);

#endif
