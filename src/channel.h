/* The event loop's channel (channel.c), as loop.c sees it: a bounded
 * multi-producer single-consumer queue of `void *` messages, shared by the
 * loop and its senders and freed with the last of them. */
#ifndef MIO_CHANNEL_H
#define MIO_CHANNEL_H

#include "common.h"

struct mio_channel;

/* A channel of `capacity` slots whose senders wake `poll` when the loop may
 * be asleep.  The caller holds its one reference. */
int  mio__channel_new(size_t capacity, mio_poll *poll, struct mio_channel **out);
/* The loop's side goes away: later sends fail with MIO_EPIPE, queued
 * messages are dropped, and the caller's reference is released.  Returns only
 * once no sender can touch the poll any more, so the poll may be freed next. */
void mio__channel_close(struct mio_channel *c);
/* A new sender handle (one more reference). */
int  mio__channel_sender(struct mio_channel *c, mio_sender **out);

/* Consumer side, the loop's thread only. */
bool mio__channel_recv(struct mio_channel *c, void **msg);
/* Tells senders the loop is about to block, so the next send wakes it;
 * returns true when messages are already queued (the loop must not block). */
bool mio__channel_sleep(struct mio_channel *c);
/* The loop is awake again: sends stop waking it. */
void mio__channel_awake(struct mio_channel *c);

#endif
