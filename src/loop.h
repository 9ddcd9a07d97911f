/* The event loop's insides, shared by loop.c and the group of loops
 * (group.c), which runs loops on threads of its own and takes part in their
 * ticks: its listeners' events, the connections handed to a loop, its own
 * timers. */
#ifndef MIO_LOOP_H
#define MIO_LOOP_H

#include "channel.h"
#include "sys.h"

struct mio_loop {
    mio_poll *poll;
    mio_timer *timer;
    struct mio_channel *chan;
    mio_event *events;
    size_t events_capacity;
    size_t messages_per_tick;
    bool running;           /* not shut down (see mio_loop_is_running) */
    bool in_tick;           /* calling the handler: no nested run */
    /* The batch `ready` goes through: nevents events, the one at
     * `dispatching` being handled (mio_loop_handoff drops later ones). */
    size_t nevents, dispatching;
    /* A loop of a group (NULL: none) and its index there. */
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

/* The group's part in a tick of one of its loops (group.c), on the loop's
 * thread with the handler's ctx: an event with one of the group's tokens;
 * a message that is not the caller's; a timeout, which returns false when
 * arg is not one of the group's (then it is the caller's); and the end of
 * the tick, before the caller's `tick`. */
void mio__group_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness);
void mio__group_message(mio_loop *l, void *ctx, int kind, void *msg, mio_fd fd);
bool mio__group_timeout(mio_loop *l, void *ctx, void *arg);
void mio__group_tick(mio_loop *l, void *ctx);
/* Whether the loop's group was told to shut down; any thread. */
bool mio__group_stopping(const mio_loop *l);

#endif
