/* The event loop's channel (channel.c), as loop.c sees it: a bounded
 * multi-producer single-consumer queue of messages, shared by the loop and
 * its senders and freed with the last of them.
 *
 * A message has a kind: the caller's `void *` (mio_sender_send,
 * mio_group_send: the loop's `notify`), or a descriptor with a `void *`
 * handed to a loop of a group (its `adopt`), or nothing (a claimed slot
 * given up).  The kinds share one queue, so a loop sees them in the order
 * they were sent. */
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

/* The kinds of message; recv returns MIO__MSG_NONE when the queue is empty. */
#define MIO__MSG_NONE  0
#define MIO__MSG_USER  1    /* msg for `notify` */
#define MIO__MSG_ADOPT 2    /* fd and msg (its data) for `adopt` */
#define MIO__MSG_VOID  3    /* a claimed slot given up: skipped */

/* Producer side, any thread: one message, as mio_sender_send (MIO_EAGAIN
 * when full, MIO_EPIPE once closed). */
int  mio__channel_send(struct mio_channel *c, int kind, void *msg, mio_fd fd);
/* The same in two steps: claim takes the next position (or fails as send
 * would), publish fills it in and wakes the loop.  Between the two the loop
 * sees nothing past the claimed position, so a claim must be published
 * soon, with MIO__MSG_VOID if there is nothing to say after all. */
struct mio_chan_claim {
    void *slot;
    uint64_t pos;
};
int  mio__channel_claim(struct mio_channel *c, struct mio_chan_claim *t);
void mio__channel_publish(struct mio_channel *c, const struct mio_chan_claim *t, int kind,
                          void *msg, mio_fd fd);

/* Consumer side, the loop's thread only (or any one thread while no loop
 * runs): the next message's kind, MIO__MSG_NONE if there is none. */
int  mio__channel_recv(struct mio_channel *c, void **msg, mio_fd *fd);
/* Tells senders the loop is about to block, so the next send wakes it;
 * returns true when messages are already queued (the loop must not block). */
bool mio__channel_sleep(struct mio_channel *c);
/* The loop is awake again: sends stop waking it. */
void mio__channel_awake(struct mio_channel *c);

#endif
